//! Weighted fail-over (ip_vs_fo.c): everything to the non-overloaded server
//! with the highest weight, so standbys get traffic only when the primary
//! is quiesced or overloaded.

use super::{Dests, Packet, Scheduler};

#[derive(Debug, Default)]
pub struct Fo;

impl Scheduler for Fo {
    fn name(&self) -> &'static str {
        "fo"
    }

    fn update(&mut self, _d: &dyn Dests) {}

    fn schedule(&mut self, d: &dyn Dests, _pkt: &Packet, _now_ms: u64) -> Option<usize> {
        let mut best: Option<usize> = None;
        let mut hw = 0;
        for i in 0..d.len() {
            // Starting from 0 with a strict `>` excludes weight 0 and keeps
            // the first of equal weights.
            if !d.overloaded(i) && d.weight(i) > hw {
                best = Some(i);
                hw = d.weight(i);
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn pick(l: &List) -> Option<usize> {
        Fo.schedule(l, &any(), 0)
    }

    #[test]
    fn highest_weight_first_of_equals() {
        let mut l = list(&[2, 5, 5]);
        l.0[1].active = 1000; // load does not matter
        assert_eq!(pick(&l), Some(1));
        l.0[1].overloaded = true;
        assert_eq!(pick(&l), Some(2));
        l.0[2].weight = 0;
        assert_eq!(pick(&l), Some(0));
        l.0[0].weight = 0;
        assert_eq!(pick(&l), None);
    }
}
