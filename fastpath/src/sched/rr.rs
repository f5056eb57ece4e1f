//! Round robin (ip_vs_rr.c).
//!
//! The kernel's cursor is a pointer into the service's list: either the
//! list head ("before the first server") or the last server chosen. Adding a
//! server (at the front) leaves it alone; deleting the server under it moves
//! it to that server's predecessor, so the server after the deleted one is
//! next, not the first one again.
//!
//! Here the cursor is an index plus the identity list it indexes. `update`
//! re-finds the cursor's server by identity in the new list; if it is gone,
//! the nearest predecessor (in the old list) that survived, which is where
//! one kernel deletion after another would leave it; if none survived, the
//! head. Deletions are assumed to happen before additions in one update
//! (with one change per update, the usual case, there is no difference).

use super::{idents, usable, Dests, Ident, Packet, Scheduler};

#[derive(Debug, Default)]
pub struct Rr {
    /// None = the list head.
    cursor: Option<usize>,
    ids: Vec<Ident>,
}

impl Rr {
    pub fn new() -> Rr {
        Rr::default()
    }
}

impl Scheduler for Rr {
    fn name(&self) -> &'static str {
        "rr"
    }

    fn update(&mut self, d: &dyn Dests) {
        let new = idents(d);
        if new == self.ids {
            return;
        }
        let find = |id: &Ident| new.iter().position(|n| n == id);
        self.cursor = self.cursor.and_then(|c| {
            let c = c.min(self.ids.len().checked_sub(1)?);
            self.ids[..=c].iter().rev().find_map(find)
        });
        self.ids = new;
    }

    fn schedule(&mut self, d: &dyn Dests, _pkt: &Packet, _now_ms: u64) -> Option<usize> {
        let n = d.len();
        if n == 0 {
            return None;
        }
        // From the head: one pass over the list. From a server: the rest of
        // the list, then from the start up to and including that server.
        let start = self.cursor.map_or(0, |c| c + 1);
        let hit = (0..n).map(|k| (start + k) % n).find(|&i| usable(d, i))?;
        self.cursor = Some(hit);
        Some(hit)
    }
}

#[cfg(test)]
mod tests {
    use super::super::ident;
    use super::super::testutil::*;
    use super::*;

    fn sched(l: &List) -> Rr {
        let mut s = Rr::new();
        s.update(l);
        s
    }

    #[test]
    fn cycles_in_list_order() {
        let l = list(&[1, 1, 1]);
        let mut s = sched(&l);
        assert_eq!(letters(&run(&mut s, &l, 7)), "ABCABCA");
    }

    #[test]
    fn weight_only_matters_as_zero_or_not() {
        let l = list(&[5, 1, 3]);
        let mut s = sched(&l);
        assert_eq!(letters(&run(&mut s, &l, 6)), "ABCABC");
    }

    #[test]
    fn skips_quiescent_and_overloaded() {
        let mut l = list(&[1, 0, 1, 1]);
        l.0[3].overloaded = true;
        let mut s = sched(&l);
        assert_eq!(letters(&run(&mut s, &l, 4)), "ACAC");
    }

    #[test]
    fn nothing_available_keeps_the_cursor() {
        let mut l = list(&[1, 1, 1]);
        let mut s = sched(&l);
        assert_eq!(letters(&run(&mut s, &l, 2)), "AB");
        for r in &mut l.0 {
            r.overloaded = true;
        }
        assert_eq!(letters(&run(&mut s, &l, 2)), "--");
        for r in &mut l.0 {
            r.overloaded = false;
        }
        // Continues after B, where it stopped.
        assert_eq!(letters(&run(&mut s, &l, 2)), "CA");
        assert_eq!(Rr::new().schedule(&List::default(), &any(), 0), None);
    }

    #[test]
    fn the_cursor_itself_is_tried_last() {
        let mut l = list(&[1, 1, 1]);
        let mut s = sched(&l);
        assert_eq!(letters(&run(&mut s, &l, 2)), "AB");
        l.0[0].weight = 0;
        l.0[2].weight = 0;
        assert_eq!(letters(&run(&mut s, &l, 2)), "BB");
    }

    #[test]
    fn deleting_the_server_under_the_cursor_moves_it_back() {
        let mut l = list(&[1, 1, 1, 1]);
        let mut s = sched(&l);
        assert_eq!(letters(&run(&mut s, &l, 2)), "AB");
        l.0.remove(1); // B, under the cursor: A C D remain
        s.update(&l);
        // The next is C (index 1 now), not A again.
        assert_eq!(run(&mut s, &l, 3), [Some(1), Some(2), Some(0)]);
    }

    #[test]
    fn deleting_the_first_server_under_the_cursor_goes_to_the_head() {
        let mut l = list(&[1, 1, 1]);
        let mut s = sched(&l);
        assert_eq!(letters(&run(&mut s, &l, 1)), "A");
        l.0.remove(0);
        s.update(&l);
        assert_eq!(letters(&run(&mut s, &l, 3)), "ABA"); // old B, C, B
    }

    #[test]
    fn several_deletions_fall_back_to_the_nearest_survivor() {
        let mut l = list(&[1, 1, 1, 1]);
        let mut s = sched(&l);
        assert_eq!(letters(&run(&mut s, &l, 3)), "ABC");
        let d = l.0[3].addr;
        l.0.drain(1..3); // B and C: A D remain, cursor falls back to A
        s.update(&l);
        assert_eq!(s.schedule(&l, &any(), 0).map(|i| l.0[i].addr), Some(d));
    }

    #[test]
    fn deleting_another_server_keeps_the_position() {
        let mut l = list(&[1, 1, 1, 1]);
        let mut s = sched(&l);
        assert_eq!(letters(&run(&mut s, &l, 3)), "ABC");
        let d = l.0[3].addr;
        l.0.remove(0);
        s.update(&l);
        assert_eq!(s.schedule(&l, &any(), 0).map(|i| l.0[i].addr), Some(d));
    }

    #[test]
    fn adding_at_the_front_keeps_the_position() {
        let mut l = list(&[1, 1, 1]);
        let mut s = sched(&l);
        assert_eq!(letters(&run(&mut s, &l, 2)), "AB");
        l.0.insert(0, rs("10.0.0.9", 80, 1)); // newest first: N A B C
        s.update(&l);
        // C, then N (wrapping), then A, B.
        assert_eq!(letters(&run(&mut s, &l, 4)), "DABC");
    }

    #[test]
    fn unrelated_updates_keep_the_cursor() {
        let mut l = list(&[1, 1, 1]);
        let mut s = sched(&l);
        assert_eq!(letters(&run(&mut s, &l, 2)), "AB");
        l.0[0].weight = 7;
        s.update(&l);
        assert_eq!(letters(&run(&mut s, &l, 1)), "C");
    }

    #[test]
    fn ident_is_address_and_port() {
        let mut l = list(&[1, 1]);
        l.0[1].addr = l.0[0].addr;
        l.0[1].port = 81;
        let mut s = sched(&l);
        assert_eq!(letters(&run(&mut s, &l, 2)), "AB");
        l.0.remove(1);
        s.update(&l);
        assert_eq!(letters(&run(&mut s, &l, 1)), "A");
        assert_eq!(ident(&l, 0), (l.0[0].addr, 80));
    }
}
