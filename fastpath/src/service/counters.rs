//! Per-core counters of services and real servers, and the cross-core load
//! view the schedulers read.
//!
//! Each worker owns one [`CoreCounters`] block and is its only writer
//! (plain load + store, no read-modify-write); the control thread and the
//! other workers read every core's block and sum. A connection lives and
//! dies on one core, so a core's ActiveConn/InActConn gauges never go
//! below zero; their sum over cores is what `ipvsadm -L` shows and what the
//! least-connection schedulers weigh.

use crate::sched::Dests;
use crate::service::Dest;
use crate::stats::Counter;
use core::net::IpAddr;
use core::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};
use std::sync::Arc;

/// Real-server ids are below this; the counter blocks are sized for it up
/// front so live changes never reallocate them.
pub const MAX_DESTS: usize = 131072;
/// Service ids are below a number the control plane derives from the
/// configured `[dataplane] max_services` (twice it, so at most twice
/// `conf::MAX_SERVICES_LIMIT`, this); the service counters are sized for
/// that number up front, like the real servers'.
pub const MAX_SERVICES: usize = 524_288;
/// The service counters of [`CoreCounters::default`]: the config's default.
pub const DEFAULT_SERVICES: usize = 16384;

/// A single-writer gauge that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    #[inline]
    pub fn add(&self, n: i64) {
        self.0.store(self.0.load(Relaxed) + n, Relaxed);
    }
    #[inline]
    pub fn get(&self) -> i64 {
        self.0.load(Relaxed)
    }
}

/// One real server's counters on one core: one cache line.
#[repr(align(64))]
#[derive(Debug, Default)]
pub struct DestCounters {
    pub conns: Counter,
    pub in_pkts: Counter,
    pub out_pkts: Counter,
    pub in_bytes: Counter,
    pub out_bytes: Counter,
    pub active: Gauge,
    pub inactive: Gauge,
    /// Persistence templates bound to the server (ipvsadm's PersistConn).
    pub persist: Gauge,
}

/// One service's counters on one core.
#[repr(align(64))]
#[derive(Debug, Default)]
pub struct SvcCounters {
    pub conns: Counter,
    pub in_pkts: Counter,
    pub out_pkts: Counter,
    pub in_bytes: Counter,
    pub out_bytes: Counter,
}

/// Everything one core counts about services.
#[derive(Debug)]
pub struct CoreCounters {
    pub dests: Box<[DestCounters]>,
    pub services: Box<[SvcCounters]>,
}

impl CoreCounters {
    /// Adds `pkts` packets of `bytes` bytes to real server `dest` and
    /// service `svc` (`inbound`: client to server); ids out of range (a
    /// connection bound to no local server) count nowhere.
    #[inline]
    pub fn add_traffic(&self, dest: u32, svc: u32, inbound: bool, pkts: u64, bytes: u64) {
        if let Some(d) = self.dests.get(dest as usize) {
            if inbound { &d.in_pkts } else { &d.out_pkts }.add(pkts);
            if inbound { &d.in_bytes } else { &d.out_bytes }.add(bytes);
        }
        if let Some(s) = self.services.get(svc as usize) {
            if inbound { &s.in_pkts } else { &s.out_pkts }.add(pkts);
            if inbound { &s.in_bytes } else { &s.out_bytes }.add(bytes);
        }
    }
}

impl CoreCounters {
    /// Counters for service ids below `services` (at most
    /// [`MAX_SERVICES`]) and every real-server id.
    pub fn new(services: usize) -> Self {
        CoreCounters {
            dests: (0..MAX_DESTS).map(|_| DestCounters::default()).collect(),
            services: (0..services.min(MAX_SERVICES))
                .map(|_| SvcCounters::default())
                .collect(),
        }
    }
}

impl Default for CoreCounters {
    fn default() -> Self {
        CoreCounters::new(DEFAULT_SERVICES)
    }
}

/// The overload mark of every real server (reference 3.2). Shared by all
/// cores: whichever core binds or unbinds a connection re-evaluates it from
/// the summed counts. Two cores racing can only delay the mark by one
/// connection, which IPVS's own per-CPU counting also tolerates.
#[derive(Debug)]
pub struct Overload(Box<[AtomicBool]>);

impl Default for Overload {
    fn default() -> Self {
        Overload((0..MAX_DESTS).map(|_| AtomicBool::new(false)).collect())
    }
}

impl Overload {
    #[inline]
    pub fn get(&self, id: u32) -> bool {
        self.0.get(id as usize).is_some_and(|b| b.load(Relaxed))
    }
    pub fn set(&self, id: u32, on: bool) {
        if let Some(b) = self.0.get(id as usize) {
            b.store(on, Relaxed);
        }
    }
}

/// Sums of one real server's gauges over all cores.
#[inline]
pub fn load(cores: &[&CoreCounters], id: u32) -> (u32, u32) {
    let (mut a, mut i) = (0i64, 0i64);
    for c in cores {
        if let Some(d) = c.dests.get(id as usize) {
            a += d.active.get();
            i += d.inactive.get();
        }
    }
    (a.max(0) as u32, i.max(0) as u32)
}

/// What a scheduler sees of one service's real servers: configuration from
/// the snapshot, load summed over every core's counters at the moment of
/// asking.
pub struct Load<'a> {
    pub dests: &'a [Dest],
    pub cores: &'a [Arc<CoreCounters>],
    pub overload: &'a Overload,
}

impl Load<'_> {
    fn sum(&self, i: usize, g: impl Fn(&DestCounters) -> &Gauge) -> u32 {
        let id = self.dests[i].id as usize;
        let n: i64 = self
            .cores
            .iter()
            .filter_map(|c| c.dests.get(id))
            .map(|d| g(d).get())
            .sum();
        n.max(0) as u32
    }
}

impl Dests for Load<'_> {
    fn len(&self) -> usize {
        self.dests.len()
    }
    fn addr(&self, i: usize) -> IpAddr {
        IpAddr::V4(self.dests[i].addr)
    }
    fn port(&self, i: usize) -> u16 {
        self.dests[i].port
    }
    fn weight(&self, i: usize) -> u32 {
        self.dests[i].weight
    }
    fn last_weight(&self, i: usize) -> u32 {
        self.dests[i].last_weight
    }
    fn overloaded(&self, i: usize) -> bool {
        self.overload.get(self.dests[i].id)
    }
    fn active(&self, i: usize) -> u32 {
        self.sum(i, |d| &d.active)
    }
    fn inactive(&self, i: usize) -> u32 {
        self.sum(i, |d| &d.inactive)
    }
}

/// After a bind (`bound`) or unbind, the overload mark per reference 3.2:
/// set at `active + inactive >= upper`; cleared below `lower`, or below 75 %
/// of `upper` when there is no lower threshold, or unconditionally when
/// there is neither.
pub fn update_overload(ov: &Overload, id: u32, total: u32, upper: u32, lower: u32, bound: bool) {
    if bound {
        if upper != 0 && total >= upper {
            ov.set(id, true);
        }
    } else if lower != 0 {
        if total < lower {
            ov.set(id, false);
        }
    } else if upper != 0 {
        if (total as u64) * 4 < (upper as u64) * 3 {
            ov.set(id, false);
        }
    } else {
        ov.set(id, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_sum_over_cores() {
        let (a, b) = (CoreCounters::default(), CoreCounters::default());
        a.dests[7].active.add(3);
        b.dests[7].active.add(2);
        b.dests[7].inactive.add(5);
        a.dests[7].active.add(-1);
        assert_eq!(load(&[&a, &b], 7), (4, 5));
        assert_eq!(load(&[&a, &b], 8), (0, 0));
        assert_eq!(
            load(&[&a, &b], MAX_DESTS as u32),
            (0, 0),
            "out of range reads as idle"
        );
        assert_eq!(core::mem::size_of::<DestCounters>(), 64);
    }

    #[test]
    fn load_view_sums_cores_for_the_schedulers() {
        use crate::service::Method;
        let cores = [
            Arc::new(CoreCounters::default()),
            Arc::new(CoreCounters::default()),
        ];
        let dest = |id, w| Dest {
            id,
            addr: core::net::Ipv4Addr::new(10, 0, 0, id as u8),
            port: 80,
            method: Method::Dr,
            weight: w,
            last_weight: w,
            u_threshold: 0,
            l_threshold: 0,
        };
        let dests = [dest(4, 1), dest(5, 1)];
        let ov = Overload::default();
        // Server 4 is busier once both cores are counted: wlc picks 5.
        cores[0].dests[4].active.add(1);
        cores[1].dests[4].active.add(2);
        cores[0].dests[5].active.add(2);
        let load = Load {
            dests: &dests,
            cores: &cores,
            overload: &ov,
        };
        assert_eq!((load.active(0), load.active(1)), (3, 2));
        let mut wlc = crate::sched::new(crate::sched::Kind::Wlc, Default::default());
        wlc.update(&load);
        let pkt = crate::sched::Packet {
            src: IpAddr::V4(core::net::Ipv4Addr::new(1, 1, 1, 1)),
            dst: IpAddr::V4(core::net::Ipv4Addr::new(10, 0, 0, 100)),
            sport: 1000,
            dport: 80,
            proto: 6,
        };
        assert_eq!(wlc.schedule(&load, &pkt, 0), Some(1));
        ov.set(5, true);
        assert_eq!(
            wlc.schedule(&load, &pkt, 0),
            Some(0),
            "overloaded server skipped"
        );
    }

    #[test]
    fn overload_hysteresis() {
        let ov = Overload::default();
        // upper 10, no lower: set at 10, cleared below 7.5.
        update_overload(&ov, 1, 9, 10, 0, true);
        assert!(!ov.get(1));
        update_overload(&ov, 1, 10, 10, 0, true);
        assert!(ov.get(1));
        update_overload(&ov, 1, 8, 10, 0, false);
        assert!(ov.get(1), "8 is not below 75 %");
        update_overload(&ov, 1, 7, 10, 0, false);
        assert!(!ov.get(1));
        // upper 10, lower 4: cleared only below 4.
        update_overload(&ov, 2, 10, 10, 4, true);
        update_overload(&ov, 2, 4, 10, 4, false);
        assert!(ov.get(2));
        update_overload(&ov, 2, 3, 10, 4, false);
        assert!(!ov.get(2));
        // No thresholds: any unbind clears.
        ov.set(3, true);
        update_overload(&ov, 3, 100, 0, 0, false);
        assert!(!ov.get(3));
    }
}
