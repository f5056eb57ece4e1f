//! Weighted least connection (ip_vs_wlc.c), the IPVS default: the server
//! with the smallest overhead / weight.

use super::{wlc_pick, Dests, Packet, Scheduler};

#[derive(Debug, Default)]
pub struct Wlc;

impl Scheduler for Wlc {
    fn name(&self) -> &'static str {
        "wlc"
    }

    fn update(&mut self, _d: &dyn Dests) {}

    fn schedule(&mut self, d: &dyn Dests, _pkt: &Packet, _now_ms: u64) -> Option<usize> {
        wlc_pick(d)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn pick(l: &List) -> Option<usize> {
        Wlc.schedule(l, &any(), 0)
    }

    #[test]
    fn overhead_per_weight() {
        let mut l = list(&[1, 3]);
        l.0[0].active = 1; // 256 / 1
        l.0[1].active = 2; // 512 / 3: lighter, unlike lc
        assert_eq!(pick(&l), Some(1));
    }

    #[test]
    fn inactive_connections_count() {
        let mut l = list(&[1, 1]);
        l.0[0].inactive = 10;
        assert_eq!(pick(&l), Some(1));
    }

    #[test]
    fn equal_ratios_keep_the_first() {
        let mut l = list(&[1, 2, 4]);
        l.0[0].active = 1; // 256 / 1
        l.0[1].active = 2; // 512 / 2
        l.0[2].active = 4; // 1024 / 4
        assert_eq!(pick(&l), Some(0));
        l.0[2].inactive = 0;
        l.0[2].active = 3; // 768 / 4 < 256
        assert_eq!(pick(&l), Some(2));
    }

    #[test]
    fn idle_servers_tie_on_zero() {
        let l = list(&[1, 100]);
        assert_eq!(pick(&l), Some(0));
    }

    #[test]
    fn quiescent_and_overloaded_are_skipped() {
        let mut l = list(&[0, 1, 1]);
        l.0[1].active = 5;
        l.0[2].overloaded = true;
        // A weight-0 server with no load is still never chosen.
        assert_eq!(pick(&l), Some(1));
        l.0[1].weight = 0;
        assert_eq!(pick(&l), None);
    }
}
