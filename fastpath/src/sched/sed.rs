//! Shortest expected delay (ip_vs_sed.c): minimise (ActiveConn + 1) /
//! weight. The +1 counts the connection being placed, so a fast idle
//! server beats a slow idle one; inactive connections are ignored.

use super::{weighted_least, Dests, Packet, Scheduler};

#[derive(Debug, Default)]
pub struct Sed;

pub(crate) fn sed_overhead(d: &dyn Dests, i: usize) -> u64 {
    u64::from(d.active(i)) + 1
}

impl Scheduler for Sed {
    fn name(&self) -> &'static str {
        "sed"
    }

    fn update(&mut self, _d: &dyn Dests) {}

    fn schedule(&mut self, d: &dyn Dests, _pkt: &Packet, _now_ms: u64) -> Option<usize> {
        weighted_least(d, sed_overhead)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::wlc::Wlc;
    use super::*;

    fn pick(l: &List) -> Option<usize> {
        Sed.schedule(l, &any(), 0)
    }

    #[test]
    fn idle_heavier_server_wins() {
        let l = list(&[1, 3]);
        assert_eq!(pick(&l), Some(1)); // 1/1 vs 1/3
        assert_eq!(Wlc.schedule(&l, &any(), 0), Some(0)); // 0 vs 0: first
    }

    #[test]
    fn counts_the_new_connection() {
        let mut l = list(&[1, 3]);
        l.0[1].active = 2; // 3/3 == 1/1: tie keeps the first
        assert_eq!(pick(&l), Some(0));
        l.0[1].active = 1; // 2/3 < 1
        assert_eq!(pick(&l), Some(1));
        // wlc on the same load: 0 vs 256/3, the first.
        assert_eq!(Wlc.schedule(&l, &any(), 0), Some(0));
    }

    #[test]
    fn inactive_connections_are_ignored() {
        let mut l = list(&[1, 1]);
        l.0[0].inactive = 1000;
        assert_eq!(pick(&l), Some(0));
        assert_eq!(Wlc.schedule(&l, &any(), 0), Some(1));
    }

    #[test]
    fn quiescent_and_overloaded_are_skipped() {
        let mut l = list(&[0, 1, 5]);
        l.0[2].overloaded = true;
        l.0[1].active = 50;
        assert_eq!(pick(&l), Some(1));
        l.0[1].overloaded = true;
        assert_eq!(pick(&l), None);
    }
}
