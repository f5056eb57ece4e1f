//! The 14 IPVS schedulers, one file each, behind one small trait.
//!
//! Each scheduler replays its kernel counterpart (`net/netfilter/ipvs/
//! ip_vs_<name>.c`) decision for decision, so a service moved from a kernel
//! director to ripvs spreads new connections the same way, and the hashing
//! ones (dh, sh, mh) send a given client or destination to the same real
//! server a kernel would.
//!
//! Split of work, and why:
//! * [`Scheduler::update`] runs on the control path whenever the service's
//!   real-server list, a weight or a service flag may have changed. It may
//!   allocate, and it is where tables are (re)built. It may be called when
//!   nothing relevant changed (a new snapshot for an unrelated edit), so
//!   every scheduler compares what it depends on and leaves its state alone
//!   otherwise: an unrelated edit must not reset a wrr cycle or an rr cursor.
//! * [`Scheduler::schedule`] runs on a data-plane core for every new
//!   connection: no allocation, no lock, no syscall, no panic.
//! * [`Scheduler::tick`] is the owner's periodic call (lblc/lblcr GC).
//!
//! Contract between the two: `schedule` sees the same real-server list
//! (same length, order and identities) that the last `update` saw; weights,
//! flags and counters are read live through [`Dests`] on every call, as the
//! kernel reads them live from `struct ip_vs_dest`. An index cached in a
//! table is bounds-checked anyway, so a broken contract gives "no
//! destination", never a panic.
//!
//! Real-server identity is (address, port), which is what the kernel uses
//! to find a dest inside one service. Schedulers that must remember a real
//! server across list changes (rr's cursor, lblc/lblcr mappings) remember
//! the identity and re-find its index in `update`.

use core::fmt;
use core::net::IpAddr;
use core::str::FromStr;

pub mod dh;
pub mod fo;
pub mod hash;
pub mod lblc;
pub mod lblcr;
pub mod lc;
pub mod mh;
pub mod nq;
pub mod ovf;
pub mod rr;
pub mod sed;
pub mod sh;
pub mod twos;
pub mod wlc;
pub mod wrr;

mod addrtab;

/// What a scheduler may ask about the real servers of one service, in IPVS
/// list order (newest first). Implemented by the service layer over live
/// per-core counters (sums over all cores), and by tests over plain structs.
///
/// Indices are `0..len()`; every method may assume `i < len()`.
pub trait Dests {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// IPv4 now; `IpAddr` so IPv6 needs no interface change.
    fn addr(&self, i: usize) -> IpAddr;
    fn port(&self, i: usize) -> u16;
    /// 0 = quiescent.
    fn weight(&self, i: usize) -> u32;
    /// Only mh uses it, so quiescing a server does not remap the Maglev
    /// table. Kernel rule (`__ip_vs_update_dest`): set to the weight when the
    /// server is added (even 0), and on every edit that sets a non-zero
    /// weight.
    fn last_weight(&self, i: usize) -> u32;
    /// The `IP_VS_DEST_F_OVERLOAD` flag (thresholds, reference 3.2); the
    /// service layer owns it, schedulers only read it.
    fn overloaded(&self, i: usize) -> bool;
    fn active(&self, i: usize) -> u32;
    fn inactive(&self, i: usize) -> u32;
}

/// The fields of a new connection's first packet the hashing schedulers key
/// on: sh/mh on the client side (`src`, `sport`), dh/lblc/lblcr on `dst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    /// IP protocol number; sh-port/mh-port only use the port for TCP, UDP
    /// and SCTP, as the kernel does.
    pub proto: u8,
}

/// Service flags that change scheduling (`ipvsadm -b`, `IP_VS_SVC_F_SCHED1..3`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    pub sh_fallback: bool,
    pub sh_port: bool,
    pub mh_fallback: bool,
    pub mh_port: bool,
}

pub trait Scheduler: Send {
    fn name(&self) -> &'static str;
    /// The RS list, a weight or a flag changed (IPVS calls update_service).
    /// Rebuild tables here (may allocate: control path). May be called when
    /// nothing this scheduler depends on changed; must then be a no-op.
    fn update(&mut self, dests: &dyn Dests);
    /// Choose for a new connection; None = no destination. MUST NOT
    /// allocate, lock or syscall (runs on a data-plane core).
    fn schedule(&mut self, dests: &dyn Dests, pkt: &Packet, now_ms: u64) -> Option<usize>;
    /// Periodic work (lblc/lblcr garbage collection), called by the owner
    /// every second or so with the clock `schedule` gets; default no-op.
    fn tick(&mut self, _now_ms: u64) {}
    /// True only for [`Keep`], the placeholder of a snapshot's scheduler
    /// set.
    fn is_keep(&self) -> bool {
        false
    }
    /// A copy for another core, built tables and all, for schedulers whose
    /// tables cost more to build than to copy (mh's Maglev table); `None`
    /// for the rest, which the control thread then builds per core (their
    /// state, like twos's random generator, must be each core's own).
    fn duplicate(&self) -> Option<Box<dyn Scheduler>> {
        None
    }
}

/// In the scheduler set that comes with a snapshot, the place of a service
/// whose scheduler the worker already runs: it keeps its own (and its
/// state). A zero-sized box: sending it allocates nothing.
pub struct Keep;

impl Scheduler for Keep {
    fn name(&self) -> &'static str {
        "keep"
    }
    fn update(&mut self, _dests: &dyn Dests) {}
    fn schedule(&mut self, _dests: &dyn Dests, _pkt: &Packet, _now_ms: u64) -> Option<usize> {
        None
    }
    fn is_keep(&self) -> bool {
        true
    }
    fn duplicate(&self) -> Option<Box<dyn Scheduler>> {
        Some(Box::new(Keep))
    }
}

/// The ipvsadm scheduler names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Rr,
    Wrr,
    Lc,
    Wlc,
    Sed,
    Nq,
    Lblc,
    Lblcr,
    Dh,
    Sh,
    Mh,
    Fo,
    Ovf,
    Twos,
}

impl Kind {
    pub const ALL: [Kind; 14] = [
        Kind::Rr,
        Kind::Wrr,
        Kind::Lc,
        Kind::Wlc,
        Kind::Sed,
        Kind::Nq,
        Kind::Lblc,
        Kind::Lblcr,
        Kind::Dh,
        Kind::Sh,
        Kind::Mh,
        Kind::Fo,
        Kind::Ovf,
        Kind::Twos,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Kind::Rr => "rr",
            Kind::Wrr => "wrr",
            Kind::Lc => "lc",
            Kind::Wlc => "wlc",
            Kind::Sed => "sed",
            Kind::Nq => "nq",
            Kind::Lblc => "lblc",
            Kind::Lblcr => "lblcr",
            Kind::Dh => "dh",
            Kind::Sh => "sh",
            Kind::Mh => "mh",
            Kind::Fo => "fo",
            Kind::Ovf => "ovf",
            Kind::Twos => "twos",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of the 14 schedulers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownScheduler(pub String);

impl fmt::Display for UnknownScheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown scheduler {:?}", self.0)
    }
}

impl std::error::Error for UnknownScheduler {}

impl FromStr for Kind {
    type Err = UnknownScheduler;
    /// Exact, case-sensitive names, as the kernel's scheduler lookup.
    fn from_str(s: &str) -> Result<Kind, UnknownScheduler> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownScheduler(s.to_owned()))
    }
}

/// A fresh scheduler with no real servers; call `update` before `schedule`.
/// twos gets a random seed here (control path) so cores do not draw the
/// same sequence; use [`twos::Twos::with_seed`] for reproducible runs.
pub fn new(kind: Kind, flags: Flags) -> Box<dyn Scheduler> {
    match kind {
        Kind::Rr => Box::new(rr::Rr::new()),
        Kind::Wrr => Box::new(wrr::Wrr::new()),
        Kind::Lc => Box::new(lc::Lc),
        Kind::Wlc => Box::new(wlc::Wlc),
        Kind::Sed => Box::new(sed::Sed),
        Kind::Nq => Box::new(nq::Nq),
        Kind::Lblc => Box::new(lblc::Lblc::new()),
        Kind::Lblcr => Box::new(lblcr::Lblcr::new()),
        Kind::Dh => Box::new(dh::Dh::new()),
        Kind::Sh => Box::new(sh::Sh::new(flags)),
        Kind::Mh => Box::new(mh::Mh::new(flags)),
        Kind::Fo => Box::new(fo::Fo),
        Kind::Ovf => Box::new(ovf::Ovf),
        Kind::Twos => Box::new(twos::Twos::with_seed(random_seed())),
    }
}

/// Per-process random keys, distinct per call; no unsafe, no extra crate.
fn random_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64)
}

// ---- helpers shared by several schedulers --------------------------------

/// "No real server" in the index tables of dh, sh, mh and lblc/lblcr.
pub(crate) const NONE: u32 = u32::MAX;

/// How a scheduler recognises a real server across list changes.
pub(crate) type Ident = (IpAddr, u16);

pub(crate) fn ident(d: &dyn Dests, i: usize) -> Ident {
    (d.addr(i), d.port(i))
}

pub(crate) fn idents(d: &dyn Dests) -> Vec<Ident> {
    (0..d.len()).map(|i| ident(d, i)).collect()
}

/// `ip_vs_dest_conn_overhead`. u64 because the sum over cores of ActiveConn
/// can pass 2^24, where the kernel's `int` would wrap.
#[inline]
pub(crate) fn overhead(d: &dyn Dests, i: usize) -> u64 {
    u64::from(d.active(i)) * 256 + u64::from(d.inactive(i))
}

/// The common "available" test of reference 3.1.
#[inline]
pub(crate) fn usable(d: &dyn Dests, i: usize) -> bool {
    d.weight(i) > 0 && !d.overloaded(i)
}

/// `a_oh / a_w > b_oh / b_w` by cross-multiplication, as the kernel does.
/// u128 because a u64 overhead times a u32 weight can pass 2^64.
#[inline]
pub(crate) fn heavier(a_oh: u64, a_w: u32, b_oh: u64, b_w: u32) -> bool {
    u128::from(a_oh) * u128::from(b_w) > u128::from(b_oh) * u128::from(a_w)
}

/// The weighted-least-load loop shared by wlc, sed, lblc and lblcr: the
/// first usable server seeds the search; later ones only need to be not
/// overloaded, because a weight of 0 can never win the strict comparison.
/// Strict `>` keeps the earlier server on ties.
#[inline]
pub(crate) fn weighted_least(
    d: &dyn Dests,
    oh: impl Fn(&dyn Dests, usize) -> u64,
) -> Option<usize> {
    let n = d.len();
    let mut least = (0..n).find(|&i| usable(d, i))?;
    let mut loh = oh(d, least);
    for i in least + 1..n {
        if d.overloaded(i) {
            continue;
        }
        let doh = oh(d, i);
        if heavier(loh, d.weight(least), doh, d.weight(i)) {
            least = i;
            loh = doh;
        }
    }
    Some(least)
}

/// wlc over the whole service (also the fallback of lblc and lblcr).
#[inline]
pub(crate) fn wlc_pick(d: &dyn Dests) -> Option<usize> {
    weighted_least(d, overhead)
}

/// The lblc/lblcr notion of "overloaded": this server has more active
/// connections than its weight while some server of the service is under
/// half of its weight, so moving the mapping is worth losing locality.
pub(crate) fn lblc_overloaded(d: &dyn Dests, i: usize) -> bool {
    if d.active(i) <= d.weight(i) {
        return false;
    }
    (0..d.len()).any(|j| u64::from(d.active(j)) * 2 < u64::from(d.weight(j)))
}

/// A plain-struct [`Dests`] for the unit tests of every scheduler.
#[cfg(test)]
pub(crate) mod testutil {
    use super::*;

    #[derive(Debug, Clone)]
    pub struct Rs {
        pub addr: IpAddr,
        pub port: u16,
        pub weight: u32,
        pub last_weight: u32,
        pub overloaded: bool,
        pub active: u32,
        pub inactive: u32,
    }

    #[derive(Debug, Clone, Default)]
    pub struct List(pub Vec<Rs>);

    pub fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Servers 10.0.0.1, 10.0.0.2, ... port 80, with these weights, in list
    /// order (index 0 = "A").
    pub fn list(weights: &[u32]) -> List {
        List(
            weights
                .iter()
                .enumerate()
                .map(|(i, &w)| rs(&format!("10.0.0.{}", i + 1), 80, w))
                .collect(),
        )
    }

    pub fn rs(addr: &str, port: u16, weight: u32) -> Rs {
        Rs {
            addr: ip(addr),
            port,
            weight,
            last_weight: weight,
            overloaded: false,
            active: 0,
            inactive: 0,
        }
    }

    impl Dests for List {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn addr(&self, i: usize) -> IpAddr {
            self.0[i].addr
        }
        fn port(&self, i: usize) -> u16 {
            self.0[i].port
        }
        fn weight(&self, i: usize) -> u32 {
            self.0[i].weight
        }
        fn last_weight(&self, i: usize) -> u32 {
            self.0[i].last_weight
        }
        fn overloaded(&self, i: usize) -> bool {
            self.0[i].overloaded
        }
        fn active(&self, i: usize) -> u32 {
            self.0[i].active
        }
        fn inactive(&self, i: usize) -> u32 {
            self.0[i].inactive
        }
    }

    pub fn pkt(src: &str, dst: &str) -> Packet {
        Packet {
            src: ip(src),
            dst: ip(dst),
            sport: 40000,
            dport: 80,
            proto: 6,
        }
    }

    /// Some packet, for schedulers that do not look at it.
    pub fn any() -> Packet {
        pkt("192.0.2.1", "198.51.100.1")
    }

    /// `n` choices in a row, as list indices (None = no destination).
    pub fn run(s: &mut dyn Scheduler, d: &List, n: usize) -> Vec<Option<usize>> {
        (0..n).map(|_| s.schedule(d, &any(), 0)).collect()
    }

    /// Letters for readable sequences: index 0 = 'A', None = '-'.
    pub fn letters(v: &[Option<usize>]) -> String {
        v.iter()
            .map(|c| c.map_or('-', |i| (b'A' + i as u8) as char))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in Kind::ALL {
            assert_eq!(k.name().parse::<Kind>().unwrap(), k);
            assert_eq!(new(k, Flags::default()).name(), k.name());
            assert_eq!(k.to_string(), k.name());
        }
        assert_eq!("WLC".parse::<Kind>(), Err(UnknownScheduler("WLC".into())));
        assert!("".parse::<Kind>().is_err());
        assert!("wrrr".parse::<Kind>().is_err());
    }

    #[test]
    fn heavier_is_strict_and_wide() {
        assert!(!heavier(256, 1, 512, 2)); // equal ratios: keep the first
        assert!(heavier(257, 1, 512, 2));
        // Products above 2^64 still compare correctly.
        assert!(heavier(u64::MAX, u32::MAX, u64::MAX - 1, u32::MAX));
        assert!(!heavier(u64::MAX - 1, u32::MAX, u64::MAX, u32::MAX));
    }

    #[test]
    fn overhead_does_not_wrap() {
        let mut l = list(&[1]);
        l.0[0].active = u32::MAX;
        l.0[0].inactive = 7;
        assert_eq!(overhead(&l, 0), u64::from(u32::MAX) * 256 + 7);
    }

    #[test]
    fn lblc_overload_needs_a_less_loaded_server() {
        let mut l = list(&[2, 4]);
        l.0[0].active = 3; // above its weight
        l.0[1].active = 2; // 2*2 == 4: not under half
        assert!(!lblc_overloaded(&l, 0));
        l.0[1].active = 1; // 1*2 < 4
        assert!(lblc_overloaded(&l, 0));
        l.0[0].active = 2; // not above its weight
        assert!(!lblc_overloaded(&l, 0));
    }
}
