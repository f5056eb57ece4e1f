//! Counter reports: the data plane's per-core counters summed, and the
//! NIC's own, in a stable one-counter-per-token format that operators can
//! grep and tests can parse.

use fastpath::stats::{DropReason, Event};
use fastpath::WorkerStats;
use std::fmt::Write;
use std::time::{Duration, Instant};

/// A port's hardware/driver counters, as the daemon reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortCounters {
    /// `port NAME` or `exception NAME`.
    pub label: String,
    pub device: String,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_missed: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_nombuf: u64,
}

/// Sum of one counter over all workers.
pub fn total_drops(workers: &[&WorkerStats], r: DropReason) -> u64 {
    workers.iter().map(|w| w.drops(r)).sum()
}

pub fn total_events(workers: &[&WorkerStats], e: Event) -> u64 {
    workers.iter().map(|w| w.count(e)).sum()
}

/// Tells the operator when another host claims one of the director's
/// addresses. The workers cannot log; they count `arp_conflict` drops, and
/// the control thread, polling this, says so in one line when the count
/// has moved: at once for the first conflict, then at most once per
/// [`ConflictWatch::EVERY`], so a flood of forged ARP cannot flood the log.
#[derive(Debug, Default)]
pub struct ConflictWatch {
    /// The count last reported.
    told: u64,
    last: Option<Instant>,
}

impl ConflictWatch {
    pub const EVERY: Duration = Duration::from_secs(10);

    pub fn new() -> Self {
        Self::default()
    }

    /// A line to log if the count moved and the last line is old enough.
    pub fn pass<'a>(
        &mut self,
        workers: impl IntoIterator<Item = &'a WorkerStats>,
        now: Instant,
    ) -> Option<String> {
        let n: u64 = workers
            .into_iter()
            .map(|w| w.drops(DropReason::ArpConflict))
            .sum();
        if n == self.told || self.last.is_some_and(|t| now < t + Self::EVERY) {
            return None;
        }
        let new = n.wrapping_sub(self.told);
        (self.told, self.last) = (n, Some(now));
        Some(format!(
            "warning: address conflict: {new} ARP frame(s) from another host claimed an address of this director (drop {} {n})",
            DropReason::ArpConflict.name()
        ))
    }
}

/// The report ripvsd prints when it stops. Zero data-plane counters are
/// left out; port counters are always shown.
pub fn final_counters(ports: &[PortCounters], workers: &[&WorkerStats]) -> String {
    let mut s = String::new();
    for p in ports {
        let _ = writeln!(
            s,
            "{} ({}): rx_packets {} rx_bytes {} tx_packets {} tx_bytes {} rx_missed {} rx_errors {} tx_errors {} rx_nombuf {}",
            p.label,
            p.device,
            p.rx_packets,
            p.rx_bytes,
            p.tx_packets,
            p.tx_bytes,
            p.rx_missed,
            p.rx_errors,
            p.tx_errors,
            p.rx_nombuf
        );
    }
    let drops: u64 = DropReason::ALL
        .iter()
        .map(|&r| total_drops(workers, r))
        .sum();
    let _ = writeln!(s, "drops total {drops}");
    for &r in DropReason::ALL {
        let n = total_drops(workers, r);
        if n > 0 {
            let _ = writeln!(s, "drop {} {}", r.name(), n);
        }
    }
    for &e in Event::ALL {
        let n = total_events(workers, e);
        if n > 0 {
            let _ = writeln!(s, "event {} {}", e.name(), n);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_are_told_once_per_interval() {
        let (a, b) = (WorkerStats::default(), WorkerStats::default());
        let mut w = ConflictWatch::new();
        let t0 = Instant::now();
        assert_eq!(w.pass([&a, &b], t0), None, "nothing yet");
        a.count_drop(DropReason::ArpConflict);
        b.count_drops(DropReason::ArpConflict, 2);
        let line = "warning: address conflict: 3 ARP frame(s) from another host claimed an address of this director (drop arp_conflict 3)";
        assert_eq!(w.pass([&a, &b], t0).as_deref(), Some(line));
        assert_eq!(
            w.pass([&a, &b], t0 + Duration::from_secs(60)),
            None,
            "no move"
        );
        a.count_drop(DropReason::ArpConflict);
        let t1 = t0 + Duration::from_secs(61);
        assert!(w.pass([&a, &b], t1).is_some());
        b.count_drop(DropReason::ArpConflict);
        let soon = t1 + ConflictWatch::EVERY - Duration::from_millis(1);
        assert_eq!(w.pass([&a, &b], soon), None, "too soon after the last line");
        assert_eq!(
            w.pass([&a, &b], t1 + ConflictWatch::EVERY).as_deref(),
            Some("warning: address conflict: 1 ARP frame(s) from another host claimed an address of this director (drop arp_conflict 5)")
        );
    }

    #[test]
    fn sums_over_workers_and_omits_zeroes() {
        let a = WorkerStats::default();
        let b = WorkerStats::default();
        a.count_drop(DropReason::NotForUs);
        b.count_drops(DropReason::NotForUs, 2);
        b.count_drop(DropReason::NoRoute);
        a.event(Event::EchoReplySent);
        let port = PortCounters {
            label: "port p0".into(),
            device: "net_ring0".into(),
            rx_packets: 5,
            rx_bytes: 420,
            tx_packets: 1,
            tx_bytes: 98,
            ..Default::default()
        };
        assert_eq!(
            final_counters(&[port], &[&a, &b]),
            "port p0 (net_ring0): rx_packets 5 rx_bytes 420 tx_packets 1 tx_bytes 98 rx_missed 0 rx_errors 0 tx_errors 0 rx_nombuf 0\n\
             drops total 4\n\
             drop not_for_us 3\n\
             drop no_route 1\n\
             event echo_replies_sent 1\n"
        );
    }
}
