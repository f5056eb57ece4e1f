//! Never queue (ip_vs_nq.c): the first server with no active connection,
//! whatever its weight; when every server is busy, as sed.

use super::sed::sed_overhead;
use super::{heavier, Dests, Packet, Scheduler};

#[derive(Debug, Default)]
pub struct Nq;

impl Scheduler for Nq {
    fn name(&self) -> &'static str {
        "nq"
    }

    fn update(&mut self, _d: &dyn Dests) {}

    fn schedule(&mut self, d: &dyn Dests, _pkt: &Packet, _now_ms: u64) -> Option<usize> {
        let mut least: Option<(usize, u64)> = None;
        for i in 0..d.len() {
            if d.overloaded(i) || d.weight(i) == 0 {
                continue;
            }
            if d.active(i) == 0 {
                return Some(i);
            }
            let doh = sed_overhead(d, i);
            if least.is_none_or(|(l, loh)| heavier(loh, d.weight(l), doh, d.weight(i))) {
                least = Some((i, doh));
            }
        }
        least.map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::sed::Sed;
    use super::super::testutil::*;
    use super::*;

    fn pick(l: &List) -> Option<usize> {
        Nq.schedule(l, &any(), 0)
    }

    #[test]
    fn first_idle_server_wins_outright() {
        let mut l = list(&[1, 1, 10]);
        l.0[0].active = 2;
        l.0[1].inactive = 100; // idle means no *active* connection
        assert_eq!(pick(&l), Some(1));
        // sed would rather take the idle weight-10 server.
        assert_eq!(Sed.schedule(&l, &any(), 0), Some(2));
    }

    #[test]
    fn all_busy_is_sed() {
        let mut l = list(&[1, 3, 3]);
        l.0[0].active = 1; // 2/1
        l.0[1].active = 3; // 4/3
        l.0[2].active = 2; // 3/3: least
        assert_eq!(pick(&l), Some(2));
        assert_eq!(Sed.schedule(&l, &any(), 0), Some(2));
        l.0[2].active = 3; // tie with B: first
        assert_eq!(pick(&l), Some(1));
    }

    #[test]
    fn quiescent_and_overloaded_idle_servers_are_skipped() {
        let mut l = list(&[0, 1, 1]);
        l.0[1].overloaded = true;
        l.0[2].active = 9;
        assert_eq!(pick(&l), Some(2));
        l.0[2].weight = 0;
        assert_eq!(pick(&l), None);
    }
}
