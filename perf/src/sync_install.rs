//! A backup's share of connection sync, without a NIC or a socket: the
//! records per second one worker installs in its connection table through
//! `Ipvs::install_synced`, in batches of `BATCH` (256, the sync thread's
//! `ctrl::sync::MAX_BATCH`), as its sync mailbox hands them over.
//!
//! The worker's config has one VIP:80 DR service over three real servers;
//! every record is a TCP connection ESTABLISHED from its own client
//! (address in 10.200/16, port) to it, bound to one of the servers, as a
//! master's v1 message carries it. Its table has `CAPACITY` slots (default
//! 1,048,576).
//!
//! - `new`: records of connections the table does not hold. Setup installs
//!   `BASE` of them (default half the capacity); the measured ones come on
//!   top, `RECORDS` of them (default the rest, so the table ends full),
//!   each a lookup that misses and an insert. A fresh table per round.
//! - `update`: records of connections already there, as a master sends
//!   every 50th packet of each: setup fills the table (`CAPACITY` records),
//!   then `RECORDS` records (default `CAPACITY`) update them, each a lookup
//!   that hits, the entry's state, flags and timeout, and its timer.
//!
//! Records arrive in a random order (a different one for the updates than
//! for the installs), so that, as on a busy backup, every record touches
//! a bucket and an entry anywhere in a table larger than the caches.
//!
//! `sync_install MODE [RECORDS]` prints the best of `ROUNDS` (default 3)
//! in records per second. Under callgrind, two runs with different
//! `RECORDS` after the same setup give instructions per record (see
//! perf/sync_install.sh). Every run checks what became of every record.

use fastpath::conn::{flags, NONE};
use fastpath::ipvs::{Ipvs, Settings, Shared};
use fastpath::proto::tcp::State;
use fastpath::proto::Timeouts;
use fastpath::sched::Kind;
use fastpath::service::{Dest, Method, Service, ServiceTable, TCP};
use fastpath::sync::{Installed, SyncConn, Synced};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
/// The clock the records are installed at (ticks): any fixed time.
const TICK: u32 = 1000;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn services() -> Arc<ServiceTable> {
    let dests = (0..3)
        .map(|i| Dest {
            id: i,
            addr: Ipv4Addr::new(10, 1, 0, 11 + i as u8),
            port: 80,
            method: Method::Dr,
            weight: 1,
            last_weight: 1,
            u_threshold: 0,
            l_threshold: 0,
        })
        .collect();
    let svc = Service {
        id: 0,
        proto: TCP,
        vip: VIP,
        port: 80,
        fwmark: None,
        scheduler: Kind::Wlc,
        flags: Default::default(),
        persistent: None,
        netmask: Ipv4Addr::BROADCAST,
        ops: false,
        synproxy: false,
        dests,
    };
    Arc::new(ServiceTable::new(vec![svc], vec![]).expect("a valid table"))
}

/// Connection `k`'s record as the master sends it: its client from the
/// low 16 bits (address) and the rest (port), its server one of three.
fn record(k: u32) -> Synced {
    Synced {
        rec: SyncConn {
            proto: TCP,
            state: State::Established as u8,
            flags: flags::DROUTE | flags::NOOUTPUT,
            caddr: Ipv4Addr::from_bits(0x0ac8_0000 | (k & 0xffff)),
            cport: 1024 + (k >> 16) as u16,
            vaddr: VIP,
            vport: 80,
            daddr: Ipv4Addr::new(10, 1, 0, 11 + (k % 3) as u8),
            dport: 80,
            timeout_s: 900,
            svc: NONE,
            dest: NONE,
            controlled: false,
            template_only: false,
        },
        fwmark: 0,
    }
}

/// A fixed-seed xorshift64*, enough to shuffle reproducibly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The records of connections `from..to` in a random order.
fn records(from: u32, to: u32, seed: u64) -> Vec<Synced> {
    let mut v: Vec<u32> = (from..to).collect();
    let mut r = Rng(seed);
    for i in (1..v.len()).rev() {
        let j = (r.next() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v.into_iter().map(record).collect()
}

struct Backup {
    ipvs: Ipvs,
    shared: Arc<Shared>,
}

impl Backup {
    fn new(capacity: usize) -> Self {
        let shared = Arc::new(Shared::new(1, 64));
        let ipvs = Ipvs::new(
            services(),
            shared.clone(),
            0,
            capacity,
            Timeouts::default(),
            Settings::default(),
            None,
        );
        Backup { ipvs, shared }
    }

    /// Connections counted against the real servers (active + inactive).
    fn live(&self) -> i64 {
        let c = &self.shared.cores[0];
        (0..3)
            .map(|d| c.dests[d].active.get() + c.dests[d].inactive.get())
            .sum()
    }

    /// Installs `recs` a batch at a time, as the worker's sync mailbox
    /// hands them over. Out of line, so that callgrind shows it apart.
    #[inline(never)]
    fn install(&mut self, recs: &[Synced], batch: usize) -> Installed {
        let mut sum = Installed::default();
        for b in recs.chunks(batch) {
            let r = self.ipvs.install_synced(std::hint::black_box(b), TICK);
            sum.created += r.created;
            sum.updated += r.updated;
            sum.stale += r.stale;
            sum.invalid += r.invalid;
            sum.full += r.full;
        }
        sum
    }
}

/// Fails loudly unless every record became what it should.
fn check(what: &str, got: Installed, want: Installed, b: &Backup, live: i64) {
    if got != want || b.live() != live {
        eprintln!(
            "{what}: records did not install as they should: {got:?}, expected {want:?}; \
             {} connections counted, expected {live}",
            b.live()
        );
        std::process::exit(1);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str);
    if !matches!(mode, Some("new" | "update")) {
        eprintln!(
            "usage: [CAPACITY=1048576] [BASE=CAPACITY/2] [BATCH=256] [ROUNDS=3] \
             sync_install new|update [RECORDS]"
        );
        std::process::exit(2);
    }
    let capacity = env("CAPACITY", 1 << 20).max(2);
    let batch = env("BATCH", 256).max(1);
    let rounds = env("ROUNDS", 3).max(1);
    let new = mode == Some("new");
    // Connections in the table before the measured records.
    let base = if new {
        env("BASE", capacity / 2).min(capacity)
    } else {
        capacity
    };
    let default = if new { capacity - base } else { capacity };
    let n = args
        .get(2)
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(default);
    if new && base + n > capacity {
        eprintln!(
            "new: BASE + RECORDS ({}) exceed CAPACITY ({capacity})",
            base + n
        );
        std::process::exit(2);
    }
    let setup = records(0, base as u32, 0x9e37_79b9_7f4a_7c15);
    // The measured records are the first `n` of a pool that does not
    // depend on `n` (as long as `n` fits the table), so that two runs
    // differing in `n` have the same setup.
    let pool = if new {
        records(base as u32, capacity as u32, 0x5851_f42d_4c95_7f2d)
    } else {
        // The table's connections in another order, as often as needed.
        let order = records(0, base as u32, 0x5851_f42d_4c95_7f2d);
        let copies = n.div_ceil(base.max(1)).max(1);
        order.iter().copied().cycle().take(copies * base).collect()
    };
    let measured = &pool[..n];
    let mut best = 0f64;
    let mut backup: Option<Backup> = None;
    for _ in 0..rounds {
        if new || backup.is_none() {
            // Drop the last table before building the next.
            drop(backup.take());
            let mut b = Backup::new(capacity);
            let r = b.install(&setup, batch);
            let want = Installed {
                created: base as u32,
                ..Default::default()
            };
            check("setup", r, want, &b, base as i64);
            backup = Some(b);
        }
        let b = backup.as_mut().expect("set up");
        let start = Instant::now();
        let r = b.install(measured, batch);
        let secs = start.elapsed().as_secs_f64();
        let want = if new {
            Installed {
                created: n as u32,
                ..Default::default()
            }
        } else {
            Installed {
                updated: n as u32,
                ..Default::default()
            }
        };
        check(
            mode.unwrap_or_default(),
            r,
            want,
            b,
            (base + n * new as usize) as i64,
        );
        let rate = n as f64 / secs;
        println!(
            "{} {n} records, batches of {batch}, table of {capacity} ({base} before): \
             {:.2} M records/s ({:.0} ns each)",
            mode.unwrap_or_default(),
            rate / 1e6,
            1e9 / rate
        );
        best = best.max(rate);
    }
    println!(
        "{} best of {rounds}: {:.2} M records/s ({:.0} ns a record)",
        mode.unwrap_or_default(),
        best / 1e6,
        1e9 / best
    );
}
