//! Weighted overflow (ip_vs_ovf.c): the highest-weight server until its
//! active connections exceed its weight, then the next. Only active
//! connections count, so UDP (never active) does not overflow.

use super::{Dests, Packet, Scheduler};

#[derive(Debug, Default)]
pub struct Ovf;

impl Scheduler for Ovf {
    fn name(&self) -> &'static str {
        "ovf"
    }

    fn update(&mut self, _d: &dyn Dests) {}

    fn schedule(&mut self, d: &dyn Dests, _pkt: &Packet, _now_ms: u64) -> Option<usize> {
        let mut best: Option<(usize, u32)> = None;
        for i in 0..d.len() {
            let w = d.weight(i);
            if d.overloaded(i) || d.active(i) > w || w == 0 {
                continue;
            }
            if best.is_none_or(|(_, hw)| w > hw) {
                best = Some((i, w));
            }
        }
        best.map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn pick(l: &List) -> Option<usize> {
        Ovf.schedule(l, &any(), 0)
    }

    #[test]
    fn overflows_past_weight() {
        let mut l = list(&[2, 3, 3]);
        l.0[1].active = 3; // at its weight: still taken
        l.0[1].inactive = 1000; // inactive do not count
        assert_eq!(pick(&l), Some(1));
        l.0[1].active = 4;
        assert_eq!(pick(&l), Some(2));
        l.0[2].overloaded = true;
        assert_eq!(pick(&l), Some(0));
        l.0[0].active = 3;
        assert_eq!(pick(&l), None);
    }

    #[test]
    fn weight_zero_is_never_chosen() {
        let l = list(&[0, 0]);
        assert_eq!(pick(&l), None);
        let l = list(&[0, 1]);
        assert_eq!(pick(&l), Some(1));
    }
}
