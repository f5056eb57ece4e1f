//! Weighted round robin (ip_vs_wrr.c).
//!
//! Passes over the list with a falling threshold `cw`, from `mw` down to 1
//! in steps of `di`; a server is chosen in every pass whose threshold its
//! weight reaches. `mw` is the maximum weight minus `di - 1` so that the
//! last pass is at 1 and still catches a server whose weight was lowered
//! below `di` while running. Higher weights therefore come first within a
//! cycle: weights 4, 3, 2 give A A B A B C A B C.
//!
//! The kernel resets the cursor and recomputes `di`/`mw`/`cw` on every
//! server add, delete or edit. `update` here does that when the list of
//! (identity, weight) pairs changed, and nothing otherwise, so unrelated
//! snapshots do not restart the cycle. (An edit that changes only, say, a
//! threshold resets the kernel's cycle but not ours; see the crate notes.)

use super::{Dests, Ident, Packet, Scheduler};

#[derive(Debug)]
pub struct Wrr {
    /// Last chosen index; None = the list head.
    cl: Option<usize>,
    /// Current threshold. Signed: it steps below zero before being reset.
    cw: i64,
    mw: i64,
    di: i64,
    seen: Vec<(Ident, u32)>,
}

impl Default for Wrr {
    fn default() -> Wrr {
        // As init_svc on an empty service: gcd defaults to 1, max weight 0.
        Wrr {
            cl: None,
            cw: 0,
            mw: 0,
            di: 1,
            seen: Vec::new(),
        }
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Wrr {
    pub fn new() -> Wrr {
        Wrr::default()
    }

    /// (cw, mw, di), for tests and diagnostics.
    pub fn state(&self) -> (i64, i64, i64) {
        (self.cw, self.mw, self.di)
    }
}

impl Scheduler for Wrr {
    fn name(&self) -> &'static str {
        "wrr"
    }

    fn update(&mut self, d: &dyn Dests) {
        let seen: Vec<(Ident, u32)> = (0..d.len())
            .map(|i| ((d.addr(i), d.port(i)), d.weight(i)))
            .collect();
        if seen == self.seen {
            return;
        }
        let g = seen.iter().map(|s| s.1).filter(|&w| w > 0).fold(0, gcd);
        let max = seen.iter().map(|s| s.1).max().unwrap_or(0);
        self.cl = None;
        self.di = i64::from(g.max(1));
        self.mw = i64::from(max) - (self.di - 1);
        if self.cw > self.mw || self.cw == 0 {
            self.cw = self.mw;
        } else if self.di > 1 {
            self.cw = (self.cw / self.di) * self.di + 1;
        }
        self.seen = seen;
    }

    fn schedule(&mut self, d: &dyn Dests, _pkt: &Packet, _now_ms: u64) -> Option<usize> {
        if self.mw == 0 {
            return None;
        }
        let n = d.len();
        let last = self.cl;
        let mut pos = self.cl;
        let mut stop = None;
        let (mut last_pass, mut restarted) = (false, false);
        loop {
            for i in pos.map_or(0, |p| p + 1)..n {
                if !d.overloaded(i) && i64::from(d.weight(i)) >= self.cw {
                    self.cl = Some(i);
                    return Some(i);
                }
                if stop == Some(i) {
                    // Every server was tried at the lowest threshold.
                    self.cl = Some(i);
                    return None;
                }
            }
            pos = None;
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                // A pass at the lowest threshold already covered the whole
                // list (or started from the head): nothing can be chosen.
                if last_pass || last.is_none() {
                    self.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                // The first lowest-threshold pass began after `last`; this
                // one must also cover the servers up to `last`, then stop.
                stop = last;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn sched(l: &List) -> Wrr {
        let mut s = Wrr::new();
        s.update(l);
        s
    }

    #[test]
    fn reference_example() {
        let l = list(&[4, 3, 2]);
        let mut s = sched(&l);
        assert_eq!(s.state(), (4, 4, 1));
        assert_eq!(letters(&run(&mut s, &l, 18)), "AABABCABCAABABCABC");
    }

    #[test]
    fn gcd_steps() {
        let l = list(&[4, 2, 2]);
        let mut s = sched(&l);
        // di = 2, mw = 4 - (2 - 1) = 3.
        assert_eq!(s.state(), (3, 3, 2));
        assert_eq!(letters(&run(&mut s, &l, 8)), "AABCAABC");
        let l = list(&[6, 9, 3]);
        let mut s = sched(&l);
        assert_eq!(s.state(), (7, 7, 3));
        assert_eq!(letters(&run(&mut s, &l, 12)), "BABABCBABABC");
    }

    #[test]
    fn equal_weights_are_plain_round_robin() {
        let l = list(&[5, 5, 5]);
        let mut s = sched(&l);
        assert_eq!(s.state(), (1, 1, 5));
        assert_eq!(letters(&run(&mut s, &l, 6)), "ABCABC");
    }

    #[test]
    fn quiescent_servers_are_skipped() {
        let l = list(&[0, 2, 0, 1]);
        let mut s = sched(&l);
        assert_eq!(letters(&run(&mut s, &l, 6)), "BBDBBD");
    }

    #[test]
    fn all_quiescent_is_no_destination() {
        let l = list(&[0, 0]);
        let mut s = sched(&l);
        assert_eq!(s.state(), (0, 0, 1));
        assert_eq!(letters(&run(&mut s, &l, 2)), "--");
        assert_eq!(Wrr::new().schedule(&List::default(), &any(), 0), None);
    }

    #[test]
    fn overloaded_servers_are_skipped() {
        let mut l = list(&[4, 3, 2]);
        l.0[0].overloaded = true;
        let mut s = sched(&l);
        assert_eq!(letters(&run(&mut s, &l, 10)), "BBCBCBBCBC");
    }

    #[test]
    fn all_overloaded_fails_from_anywhere_and_recovers() {
        let mut l = list(&[4, 3, 2]);
        let mut s = sched(&l);
        assert_eq!(letters(&run(&mut s, &l, 3)), "AAB");
        for r in &mut l.0 {
            r.overloaded = true;
        }
        assert_eq!(letters(&run(&mut s, &l, 3)), "---");
        // The failed walk (cw 3 -> 2 -> 1, then wrapping at the lowest
        // threshold) leaves the cursor at the head and cw at mw.
        assert_eq!(s.state().0, 4);
        for r in &mut l.0 {
            r.overloaded = false;
        }
        assert_eq!(letters(&run(&mut s, &l, 3)), "AAB");
        for r in &mut l.0 {
            r.overloaded = true;
        }
        // A failure from the head...
        let mut h = sched(&l);
        assert_eq!(letters(&run(&mut h, &l, 2)), "--");
        for r in &mut l.0 {
            r.overloaded = false;
        }
        // ...and recovery, with cw back at mw.
        assert_eq!(h.state().0, 4);
        assert_eq!(letters(&run(&mut h, &l, 3)), "AAB");
    }

    #[test]
    fn failure_after_a_restart_stops_at_the_cursor() {
        let mut l = list(&[4, 3, 2]);
        let mut s = sched(&l);
        // After 8 picks the cursor is on B in the last pass (cw 1).
        assert_eq!(letters(&run(&mut s, &l, 8)), "AABABCAB");
        assert_eq!(s.state().0, 1);
        for r in &mut l.0 {
            r.overloaded = true;
        }
        // The walk restarts at mw, comes down to the last pass again and
        // stops on reaching B: cursor still on B, cw back at 1.
        assert_eq!(letters(&run(&mut s, &l, 1)), "-");
        assert_eq!(s.state().0, 1);
        for r in &mut l.0 {
            r.overloaded = false;
        }
        assert_eq!(letters(&run(&mut s, &l, 3)), "CAA");
    }

    #[test]
    fn only_low_weight_server_available_is_still_found() {
        // cw starts at 4; the only usable server has weight 1.
        let mut l = list(&[4, 1]);
        l.0[0].overloaded = true;
        let mut s = sched(&l);
        assert_eq!(letters(&run(&mut s, &l, 3)), "BBB");
    }

    #[test]
    fn update_rounds_cw_and_resets_the_cursor() {
        let mut l = list(&[6, 4, 2]);
        let mut s = sched(&l);
        assert_eq!(s.state(), (5, 5, 2));
        assert_eq!(letters(&run(&mut s, &l, 3)), "AAB");
        assert_eq!(s.state().0, 3);
        for (r, w) in l.0.iter_mut().zip([8, 4, 4]) {
            r.weight = w;
        }
        s.update(&l);
        // di = 4, mw = 5; cw 3 rounds to (3 / 4) * 4 + 1 = 1; cursor at head.
        assert_eq!(s.state(), (1, 5, 4));
        assert_eq!(letters(&run(&mut s, &l, 7)), "ABCAABC");
    }

    #[test]
    fn update_clamps_cw_to_mw() {
        let mut l = list(&[9, 1]);
        let mut s = sched(&l);
        assert_eq!(letters(&run(&mut s, &l, 1)), "A");
        assert_eq!(s.state().0, 9);
        l.0[0].weight = 3;
        s.update(&l);
        assert_eq!(s.state(), (3, 3, 1));
    }

    #[test]
    fn unchanged_update_keeps_the_cycle() {
        let l = list(&[4, 3, 2]);
        let mut s = sched(&l);
        assert_eq!(letters(&run(&mut s, &l, 4)), "AABA");
        s.update(&l.clone());
        assert_eq!(letters(&run(&mut s, &l, 5)), "BCABC");
    }

    #[test]
    fn removal_restarts_from_the_head() {
        let mut l = list(&[2, 2, 1]);
        let mut s = sched(&l);
        assert_eq!(letters(&run(&mut s, &l, 2)), "AB");
        l.0.remove(1);
        s.update(&l);
        // cw is still 2: A first, then the weight-1 pass.
        assert_eq!(letters(&run(&mut s, &l, 4)), "AABA");
    }
}
