//! Counters and rates of services and real servers, from the per-core
//! blocks the workers write.
//!
//! Zeroing does not touch the workers' counters (they have one writer
//! each, and it is not us): as the kernel keeps `kstats0`, a zero stores
//! the current sums as a baseline that listings subtract (reference 2.3).
//!
//! Rates follow the kernel's estimator (reference 2.4) to the bit, so
//! `ipvsadm --rate` figures match IPVS for the same traffic.

use ctrl_api::{Rates, Stats};
use fastpath::service::counters::CoreCounters;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The estimator's period.
pub const INTERVAL: Duration = Duration::from_secs(2);

/// One real server's counters summed over cores.
pub fn dest_sums(cores: &[Arc<CoreCounters>], id: u32) -> Stats {
    let mut s = Stats::default();
    for d in cores.iter().filter_map(|c| c.dests.get(id as usize)) {
        s.conns = s.conns.wrapping_add(d.conns.get());
        s.inpkts = s.inpkts.wrapping_add(d.in_pkts.get());
        s.outpkts = s.outpkts.wrapping_add(d.out_pkts.get());
        s.inbytes = s.inbytes.wrapping_add(d.in_bytes.get());
        s.outbytes = s.outbytes.wrapping_add(d.out_bytes.get());
    }
    s
}

/// One service's counters summed over cores.
pub fn service_sums(cores: &[Arc<CoreCounters>], id: u32) -> Stats {
    let mut s = Stats::default();
    for d in cores.iter().filter_map(|c| c.services.get(id as usize)) {
        s.conns = s.conns.wrapping_add(d.conns.get());
        s.inpkts = s.inpkts.wrapping_add(d.in_pkts.get());
        s.outpkts = s.outpkts.wrapping_add(d.out_pkts.get());
        s.inbytes = s.inbytes.wrapping_add(d.in_bytes.get());
        s.outbytes = s.outbytes.wrapping_add(d.out_bytes.get());
    }
    s
}

/// A real server's ActiveConn, InActConn and PersistConn over all cores.
/// One core's gauge may be negative for a moment while another's is
/// positive only if connections moved, which they do not; the sum is
/// clamped anyway so a listing never shows a wrapped number.
pub fn dest_gauges(cores: &[Arc<CoreCounters>], id: u32) -> (u32, u32, u32) {
    let (mut a, mut i, mut p) = (0i64, 0i64, 0i64);
    for d in cores.iter().filter_map(|c| c.dests.get(id as usize)) {
        a += d.active.get();
        i += d.inactive.get();
        p += d.persist.get();
    }
    let c = |v: i64| v.clamp(0, u32::MAX as i64) as u32;
    (c(a), c(i), c(p))
}

fn minus(a: &Stats, b: &Stats) -> Stats {
    Stats {
        conns: a.conns.wrapping_sub(b.conns),
        inpkts: a.inpkts.wrapping_sub(b.inpkts),
        outpkts: a.outpkts.wrapping_sub(b.outpkts),
        inbytes: a.inbytes.wrapping_sub(b.inbytes),
        outbytes: a.outbytes.wrapping_sub(b.outbytes),
    }
}

/// The kernel's rate estimator for one counter set (`struct
/// ip_vs_estimator`): averages are kept scaled (×2^10 per second for
/// conns and packets, ×2^5 for bytes) so integer EWMA loses little.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Estimator {
    last: Stats,
    cps: i64,
    inpps: i64,
    outpps: i64,
    inbps: i64,
    outbps: i64,
}

impl Estimator {
    /// Starts from the counters as they are now, with all rates 0.
    pub fn new(now: &Stats) -> Self {
        Estimator {
            last: *now,
            ..Default::default()
        }
    }

    /// One 2-second period ends with the counters at `now`.
    pub fn sample(&mut self, now: &Stats) {
        // Deltas over 2 s: << 9 is ×2^10 per second for conns and packets,
        // << 4 is ×2^5 per second for bytes. Arithmetic >> 2 floors, as the
        // kernel's signed shift does.
        fn ewma(avg: &mut i64, delta: u64, shift: u32) {
            let rate = (delta.min(i64::MAX as u64 >> shift) as i64) << shift;
            *avg += (rate - *avg) >> 2;
        }
        let d = minus(now, &self.last);
        ewma(&mut self.cps, d.conns, 9);
        ewma(&mut self.inpps, d.inpkts, 9);
        ewma(&mut self.outpps, d.outpkts, 9);
        ewma(&mut self.inbps, d.inbytes, 4);
        ewma(&mut self.outbps, d.outbytes, 4);
        self.last = *now;
    }

    /// Per-second rates, rounded as the kernel reads them out.
    pub fn rates(&self) -> Rates {
        let small =
            |avg: i64| u32::try_from(avg.max(0).saturating_add(0x1ff) >> 10).unwrap_or(u32::MAX);
        let big = |avg: i64| (avg.max(0).saturating_add(0xf) >> 5) as u64;
        Rates {
            cps: small(self.cps),
            inpps: small(self.inpps),
            outpps: small(self.outpps),
            inbps: big(self.inbps),
            outbps: big(self.outbps),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Track {
    base: Stats,
    est: Estimator,
}

impl Track {
    fn start(now: Stats) -> Self {
        Track {
            base: now,
            est: Estimator::new(&now),
        }
    }
}

/// Baselines and estimators of every live service and real server, by id.
#[derive(Debug, Default)]
pub struct Tracker {
    svcs: HashMap<u32, Track>,
    dests: HashMap<u32, Track>,
    next: Option<Instant>,
}

impl Tracker {
    pub fn new() -> Self {
        Tracker::default()
    }

    /// Starts tracking ids that are new and forgets ids that are gone. A
    /// new id starts from the counters as they are: an id reused from the
    /// trash still holds its old owner's totals, which the new owner must
    /// not show. Call after every change, before the data plane sees it.
    pub fn sync(
        &mut self,
        cores: &[Arc<CoreCounters>],
        svcs: impl IntoIterator<Item = u32>,
        dests: impl IntoIterator<Item = u32>,
    ) {
        fn one(
            map: &mut HashMap<u32, Track>,
            ids: impl IntoIterator<Item = u32>,
            sums: impl Fn(u32) -> Stats,
        ) {
            let mut next = HashMap::with_capacity(map.len());
            for id in ids {
                let t = map.remove(&id).unwrap_or_else(|| Track::start(sums(id)));
                next.insert(id, t);
            }
            *map = next;
        }
        one(&mut self.svcs, svcs, |id| service_sums(cores, id));
        one(&mut self.dests, dests, |id| dest_sums(cores, id));
    }

    /// Tracks the ids of the table the workers booted with. Their counters
    /// have counted for them alone since the workers started, which may be
    /// before the control loop looks: packets that arrive in between must
    /// not vanish into a baseline.
    pub fn boot(
        &mut self,
        svcs: impl IntoIterator<Item = u32>,
        dests: impl IntoIterator<Item = u32>,
    ) {
        let zero = Stats::default();
        self.svcs = svcs
            .into_iter()
            .map(|id| (id, Track::start(zero)))
            .collect();
        self.dests = dests
            .into_iter()
            .map(|id| (id, Track::start(zero)))
            .collect();
    }

    /// `-Z` of one service: it and its real servers count from now, and
    /// their rates restart from 0.
    pub fn zero(&mut self, cores: &[Arc<CoreCounters>], svc: u32, dests: &[u32]) {
        self.svcs
            .insert(svc, Track::start(service_sums(cores, svc)));
        for &d in dests {
            self.dests.insert(d, Track::start(dest_sums(cores, d)));
        }
    }

    /// `-Z` of everything tracked.
    pub fn zero_all(&mut self, cores: &[Arc<CoreCounters>]) {
        for (id, t) in self.svcs.iter_mut() {
            *t = Track::start(service_sums(cores, *id));
        }
        for (id, t) in self.dests.iter_mut() {
            *t = Track::start(dest_sums(cores, *id));
        }
    }

    /// Runs the estimators if a period has ended. The first call only
    /// starts the clock. A late call runs one period with everything since
    /// the last (the kernel's timer does the same when it fires late).
    pub fn tick(&mut self, cores: &[Arc<CoreCounters>], now: Instant) {
        let Some(next) = self.next else {
            self.next = Some(now + INTERVAL);
            return;
        };
        if now < next {
            return;
        }
        for (id, t) in self.svcs.iter_mut() {
            t.est.sample(&service_sums(cores, *id));
        }
        for (id, t) in self.dests.iter_mut() {
            t.est.sample(&dest_sums(cores, *id));
        }
        let after = next + INTERVAL;
        self.next = Some(if after <= now { now + INTERVAL } else { after });
    }

    /// A service's counters since its creation or last zero, and its rates.
    pub fn service(&self, cores: &[Arc<CoreCounters>], id: u32) -> (Stats, Rates) {
        let now = service_sums(cores, id);
        match self.svcs.get(&id) {
            Some(t) => (minus(&now, &t.base), t.est.rates()),
            None => (now, Rates::default()),
        }
    }

    /// A real server's counters since its creation or last zero, and its
    /// rates.
    pub fn dest(&self, cores: &[Arc<CoreCounters>], id: u32) -> (Stats, Rates) {
        let now = dest_sums(cores, id);
        match self.dests.get(&id) {
            Some(t) => (minus(&now, &t.base), t.est.rates()),
            None => (now, Rates::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(conns: u64, pkts: u64, bytes: u64) -> Stats {
        Stats {
            conns,
            inpkts: pkts,
            outpkts: pkts / 2,
            inbytes: bytes,
            outbytes: bytes / 2,
        }
    }

    #[test]
    fn estimator_matches_the_kernels_arithmetic() {
        let mut e = Estimator::new(&stats(0, 0, 0));
        // 200 conns, 2000 packets, 300000 bytes in 2 s: 100 cps, 1000 pps,
        // 150000 Bps.
        e.sample(&stats(200, 2000, 300_000));
        // avg = (200 << 9) / 4 = 25600 → (25600 + 511) >> 10 = 25.
        // bytes: (300000 << 4) / 4 = 1200000 → (1200000 + 15) >> 5 = 37500.
        assert_eq!(
            e.rates(),
            Rates {
                cps: 25,
                inpps: 250,
                outpps: 125,
                inbps: 37500,
                outbps: 18750
            }
        );
        // Second period, same traffic: avg = 25600 + (102400 - 25600) / 4
        // = 44800 → 44; pps 448000 → 437 (448000 + 511 = 448511 >> 10).
        e.sample(&stats(400, 4000, 600_000));
        let r = e.rates();
        assert_eq!((r.cps, r.inpps, r.inbps), (44, 437, 65625));
        // The average converges to the true rate.
        for i in 3..=80u64 {
            e.sample(&stats(200 * i, 2000 * i, 300_000 * i));
        }
        let r = e.rates();
        assert_eq!((r.cps, r.inpps, r.outpps), (100, 1000, 500));
        assert_eq!((r.inbps, r.outbps), (150_000, 75_000));
        // Traffic stops: the average decays by 3/4 a period, with the
        // kernel's floor on the negative step.
        e.sample(&stats(16_000, 160_000, 24_000_000));
        assert_eq!(e.rates().cps, 75);
    }

    #[test]
    fn estimator_saturates_instead_of_overflowing() {
        let mut e = Estimator::new(&Stats::default());
        let max = Stats {
            conns: u64::MAX,
            inpkts: u64::MAX,
            outpkts: u64::MAX,
            inbytes: u64::MAX,
            outbytes: u64::MAX,
        };
        for _ in 0..100 {
            e.sample(&max);
            e.sample(&Stats::default());
        }
        let r = e.rates();
        assert!(r.cps > 0 && r.inbps > 0);
    }

    #[test]
    fn estimator_rounds_small_rates_up_from_half() {
        let mut e = Estimator::new(&Stats::default());
        // One connection in 2 s: 0.5/s; avg = 512/4 = 128 → (128+511)>>10 = 0.
        e.sample(&stats(1, 0, 0));
        assert_eq!(e.rates().cps, 0);
        // Four in 2 s: avg 128 + (2048-128)/4 = 608 → (608+511)>>10 = 1.
        e.sample(&stats(5, 0, 0));
        assert_eq!(e.rates().cps, 1);
    }

    #[test]
    fn boot_ids_keep_what_was_counted_before_tracking() {
        let cores = vec![Arc::new(CoreCounters::default())];
        // The workers ran before the control loop started tracking.
        cores[0].services[1].conns.add(3);
        cores[0].dests[2].in_pkts.add(5);
        let mut t = Tracker::new();
        t.boot([1], [2]);
        assert_eq!(t.service(&cores, 1).0.conns, 3);
        assert_eq!(t.dest(&cores, 2).0.inpkts, 5);
        // A later sync keeps them as they are.
        t.sync(&cores, [1], [2]);
        assert_eq!(t.service(&cores, 1).0.conns, 3);
    }

    #[test]
    fn sums_baselines_zeroing_and_ticks() {
        let cores = vec![
            Arc::new(CoreCounters::default()),
            Arc::new(CoreCounters::default()),
        ];
        let mut t = Tracker::new();
        t.sync(&cores, [3], [7, 8]);
        cores[0].services[3].conns.add(4);
        cores[1].services[3].conns.add(6);
        cores[0].dests[7].in_bytes.add(1000);
        cores[1].dests[7].in_bytes.add(500);
        cores[1].dests[7].active.add(2);
        cores[0].dests[7].persist.add(1);
        assert_eq!(t.service(&cores, 3).0.conns, 10);
        assert_eq!(t.dest(&cores, 7).0.inbytes, 1500);
        assert_eq!(dest_gauges(&cores, 7), (2, 0, 1));

        let t0 = Instant::now();
        t.tick(&cores, t0);
        cores[0].services[3].conns.add(10);
        t.tick(&cores, t0 + Duration::from_secs(1));
        assert_eq!(t.service(&cores, 3).1.cps, 0, "no period ended yet");
        t.tick(&cores, t0 + INTERVAL);
        // 20 conns since tracking began: (20 << 9) / 4 = 2560 → 2.
        assert_eq!(t.service(&cores, 3).1.cps, 2);

        t.zero(&cores, 3, &[7]);
        assert_eq!(t.service(&cores, 3), (Stats::default(), Rates::default()));
        assert_eq!(t.dest(&cores, 7).0, Stats::default());
        cores[0].dests[7].in_bytes.add(64);
        cores[1].dests[8].conns.add(2);
        assert_eq!(t.dest(&cores, 7).0.inbytes, 64, "counts from the zero");
        assert_eq!(t.dest(&cores, 8).0.conns, 2, "8 was not zeroed");
        t.zero_all(&cores);
        assert_eq!(t.dest(&cores, 8).0.conns, 0);

        // A reused id starts from its counters as they are.
        t.sync(&cores, [3], [7]);
        cores[0].dests[8].conns.add(5);
        t.sync(&cores, [3], [7, 8]);
        assert_eq!(t.dest(&cores, 8).0.conns, 0);
    }
}
