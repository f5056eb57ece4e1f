//! drop_entry (IPVS `ip_vs_random_dropentry`, `todrop_entry`): which
//! entries a scan may drop, at what rate, and which buckets it visits.
//!
//! The kernel scans `table size / 32` buckets a second, each chosen at
//! random, in one go from its defence timer. A worker cannot stall for
//! that long between bursts (32,768 random buckets of a million-entry
//! table are as many cache misses), so [`Scan`] spreads the same second's
//! buckets over the worker's ticks. The candidates and rates are the
//! kernel's:
//!
//! - entries that control others (FTP control connections) stay;
//! - TCP SYN_RECV and SYNACK, SCTP INIT1 and INIT: always dropped;
//! - TCP and SCTP ESTABLISHED, and every UDP entry: dropped only when
//!   [`Rates::todrop`] says so, i.e. idle for 60 s or more and with 1 to
//!   8 incoming packets, every k-th of those with k packets;
//! - every other TCP and SCTP state stays.

use crate::conn::{Conn, Tick, TICKS_PER_SEC};
use crate::proto::{sctp, tcp};
use crate::wire::ipv4;
use core::net::Ipv4Addr;

/// How long an entry must have gone untouched before the rated rule may
/// drop it (the kernel's 60 s: "enough time for normal connection to get
/// through").
pub const IDLE_TICKS: Tick = 60 * TICKS_PER_SEC;

/// Worker ticks a second's scan is spread over: half a second of the
/// worker's 10 ms ticks, so the scan is done within the second even when
/// busy bursts stretch the ticks.
pub const TICKS_PER_SCAN: usize = 50;

/// What the scan does with an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    /// Dropped whatever its age: a half-open handshake.
    Always,
    /// Dropped if [`Rates::todrop`] agrees.
    Rated,
}

/// The kernel's choice for entry `c` (templates live in the shared
/// template table and are the template scan's business).
pub fn verdict(c: &Conn<Ipv4Addr>) -> Verdict {
    if c.n_control > 0 || c.is_template() {
        return Verdict::Keep;
    }
    match c.proto() {
        ipv4::PROTO_TCP => match tcp::State::from_u8(c.state) {
            Some(tcp::State::SynRecv | tcp::State::SynAck) => Verdict::Always,
            Some(tcp::State::Established) => Verdict::Rated,
            _ => Verdict::Keep,
        },
        ipv4::PROTO_SCTP => match sctp::State::from_u8(c.state) {
            Some(sctp::State::Init1 | sctp::State::Init) => Verdict::Always,
            Some(sctp::State::Established) => Verdict::Rated,
            _ => Verdict::Keep,
        },
        _ => Verdict::Rated,
    }
}

/// Whether `c` is one a full table may give up for a new connection: a
/// half-open handshake nobody controls, the scan's unconditional case.
#[inline]
pub fn evictable(c: &Conn<Ipv4Addr>) -> bool {
    verdict(c) == Verdict::Always
}

/// The per-packet-count rates of `todrop_entry`: an entry with k incoming
/// packets (1 ≤ k ≤ 8) is dropped every k-th time one is considered, so
/// entries that carried less are dropped more often; 0 and more than 8
/// are never dropped. The kernel keeps the counters in statics shared by
/// all its CPUs; here each worker has its own.
#[derive(Debug, Clone, Default)]
pub struct Rates {
    counter: [i8; 9],
}

impl Rates {
    /// `todrop_entry` for `c` at `now`.
    pub fn todrop(&mut self, c: &Conn<Ipv4Addr>, now: Tick) -> bool {
        // The timer was last restarted at expires − timeout.
        let touched = c.expires().wrapping_sub(c.timeout);
        if now.wrapping_sub(touched) < IDLE_TICKS {
            return false;
        }
        let k = c.in_pkts as usize;
        if k == 0 || k > 8 {
            return false;
        }
        self.counter[k] -= 1;
        if self.counter[k] > 0 {
            return false;
        }
        self.counter[k] = k as i8;
        true
    }
}

/// Spreads a second's worth of random buckets over the worker's ticks.
#[derive(Debug, Clone)]
pub struct Scan {
    rng: u64,
    /// Buckets still to visit this second.
    left: usize,
}

impl Scan {
    pub fn new(seed: u64) -> Self {
        Scan {
            rng: seed | 1,
            left: 0,
        }
    }

    /// A new second of drop_entry: 1/32 of `buckets` to visit.
    pub fn start(&mut self, buckets: usize) {
        self.left = buckets >> 5;
    }

    /// drop_entry went off: the rest of the second's scan is dropped.
    pub fn stop(&mut self) {
        self.left = 0;
    }

    pub fn left(&self) -> usize {
        self.left
    }

    /// The next at most `max` buckets of this second's scan, each in
    /// `0..buckets` at random.
    pub fn next_buckets(&mut self, buckets: usize, max: usize, mut f: impl FnMut(usize)) {
        let n = self.left.min(max);
        self.left -= n;
        for _ in 0..n {
            f(self.random(buckets));
        }
    }

    /// A bucket in `0..n` (xorshift64*; the kernel's get_random_u32 need
    /// not be cryptographic here either: the table's hash is seeded).
    fn random(&mut self, n: usize) -> usize {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (((r >> 32) * n as u64) >> 32) as usize
    }
}
