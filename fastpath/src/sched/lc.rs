//! Least connection (ip_vs_lc.c): the smallest overhead among servers with a
//! non-zero weight; the weight's size does not matter (that is wlc).

use super::{overhead, Dests, Packet, Scheduler};

#[derive(Debug, Default)]
pub struct Lc;

impl Scheduler for Lc {
    fn name(&self) -> &'static str {
        "lc"
    }

    fn update(&mut self, _d: &dyn Dests) {}

    fn schedule(&mut self, d: &dyn Dests, _pkt: &Packet, _now_ms: u64) -> Option<usize> {
        let mut least: Option<(usize, u64)> = None;
        for i in 0..d.len() {
            if d.overloaded(i) || d.weight(i) == 0 {
                continue;
            }
            let doh = overhead(d, i);
            // Strict: the first of equally loaded servers wins.
            if least.is_none_or(|(_, loh)| doh < loh) {
                least = Some((i, doh));
            }
        }
        least.map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn pick(l: &List) -> Option<usize> {
        Lc.schedule(l, &any(), 0)
    }

    #[test]
    fn least_overhead_ignoring_weight() {
        let mut l = list(&[1, 3]);
        l.0[0].active = 1; // 256
        l.0[1].active = 2; // 512, though per weight it is the lighter
        assert_eq!(pick(&l), Some(0));
        l.0[0].inactive = 257; // 513
        assert_eq!(pick(&l), Some(1));
    }

    #[test]
    fn ties_keep_the_first() {
        let mut l = list(&[1, 1, 1]);
        l.0[0].active = 1;
        l.0[1].inactive = 5;
        l.0[2].inactive = 5;
        assert_eq!(pick(&l), Some(1));
    }

    #[test]
    fn one_active_outweighs_255_inactive() {
        let mut l = list(&[1, 1]);
        l.0[0].active = 1;
        l.0[1].inactive = 255;
        assert_eq!(pick(&l), Some(1));
        l.0[1].inactive = 256;
        assert_eq!(pick(&l), Some(0));
    }

    #[test]
    fn quiescent_and_overloaded_are_skipped() {
        let mut l = list(&[0, 1, 1]);
        l.0[1].overloaded = true;
        l.0[2].active = 100;
        assert_eq!(pick(&l), Some(2));
        l.0[2].overloaded = true;
        assert_eq!(pick(&l), None);
        assert_eq!(pick(&List::default()), None);
    }
}
