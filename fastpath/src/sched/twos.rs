//! Power of two choices (ip_vs_twos.c): draw two servers at random in
//! proportion to weight, keep the one with less overhead per weight.
//!
//! The kernel draws with `get_random_u32()`; a data-plane core cannot make
//! that syscall-backed call per connection, so each instance owns a
//! SplitMix64 generator seeded at construction. Statistically the choice is
//! the same; the exact sequence of course differs from any kernel run.
//!
//! Kernel quirk kept on purpose: the draws are uniform over
//! `0..=total_weight` (total + 1 values) and a server is taken once the draw
//! minus the running weight sum is <= 0, so the first available server gets
//! one extra value: weights 1, 2, 3 are drawn with probabilities 2/7, 2/7,
//! 3/7.

use super::{heavier, overhead, Dests, Packet, Scheduler};

#[derive(Debug)]
pub struct Twos {
    state: u64,
}

impl Twos {
    /// Same seed, same sequence of draws: for tests and replays.
    pub fn with_seed(seed: u64) -> Twos {
        Twos { state: seed }
    }

    fn next_u32(&mut self) -> u32 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 32) as u32
    }
}

impl Scheduler for Twos {
    fn name(&self) -> &'static str {
        "twos"
    }

    fn update(&mut self, _d: &dyn Dests) {}

    fn schedule(&mut self, d: &dyn Dests, _pkt: &Packet, _now_ms: u64) -> Option<usize> {
        let n = d.len();
        let avail = |i: usize| !d.overloaded(i) && d.weight(i) > 0;
        let total: u64 = (0..n)
            .filter(|&i| avail(i))
            .map(|i| u64::from(d.weight(i)))
            .sum();
        if total == 0 {
            return None;
        }
        let mut r1 = (u64::from(self.next_u32()) % (total + 1)) as i64;
        let mut r2 = (u64::from(self.next_u32()) % (total + 1)) as i64;
        let (mut c1, mut c2) = (None, None);
        for i in (0..n).filter(|&i| avail(i)) {
            let w = i64::from(d.weight(i));
            r1 -= w;
            r2 -= w;
            if r1 <= 0 && c1.is_none() {
                c1 = Some(i);
            }
            if r2 <= 0 && c2.is_none() {
                c2 = Some(i);
            }
            if c1.is_some() && c2.is_some() {
                break;
            }
        }
        // Both draws are <= total, so both walks end on a server.
        let (c1, c2) = (c1?, c2?);
        let (w1, w2) = (d.weight(c1), d.weight(c2));
        // choice2 when w2 * oh1 > w1 * oh2, i.e. oh1 / w1 > oh2 / w2.
        if heavier(overhead(d, c1), w1, overhead(d, c2), w2) {
            Some(c2)
        } else {
            Some(c1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn counts(s: &mut Twos, l: &List, n: usize) -> Vec<usize> {
        let mut c = vec![0; l.0.len()];
        for _ in 0..n {
            c[s.schedule(l, &any(), 0).unwrap()] += 1;
        }
        c
    }

    /// |got - n p| within 5 standard deviations of a binomial.
    fn near(got: usize, n: usize, p: f64) -> bool {
        let mean = n as f64 * p;
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        (got as f64 - mean).abs() <= 5.0 * sd
    }

    #[test]
    fn idle_servers_follow_the_kernel_draw() {
        // No load: never choice2, so this is the draw of choice1.
        let l = list(&[1, 2, 3]);
        let mut s = Twos::with_seed(1);
        let n = 70_000;
        let c = counts(&mut s, &l, n);
        assert!(near(c[0], n, 2.0 / 7.0), "{c:?}");
        assert!(near(c[1], n, 2.0 / 7.0), "{c:?}");
        assert!(near(c[2], n, 3.0 / 7.0), "{c:?}");
        // And not the naive weight share 1/6.
        assert!(!near(c[0], n, 1.0 / 6.0), "{c:?}");
    }

    #[test]
    fn keeps_the_less_loaded_of_the_two() {
        // Equal weights, total 2: a draw lands on A for 0 and 1, B for 2.
        // A is loaded, so A is chosen only when both draws land on A: 4/9.
        let mut l = list(&[1, 1]);
        l.0[0].active = 10;
        let mut s = Twos::with_seed(7);
        let n = 90_000;
        let c = counts(&mut s, &l, n);
        assert!(near(c[0], n, 4.0 / 9.0), "{c:?}");
        // Unloaded, A would get 2/3.
        l.0[0].active = 0;
        let c = counts(&mut s, &l, n);
        assert!(near(c[0], n, 2.0 / 3.0), "{c:?}");
    }

    #[test]
    fn load_is_compared_per_weight() {
        // B has twice A's overhead but four times its weight: B is lighter.
        let mut l = list(&[1, 4]);
        l.0[0].active = 1;
        l.0[1].active = 2;
        let mut s = Twos::with_seed(3);
        // P(A) = P(both draws on A) = (2/6)^2.
        let n = 60_000;
        let c = counts(&mut s, &l, n);
        assert!(near(c[0], n, 1.0 / 9.0), "{c:?}");
    }

    #[test]
    fn seeded_sequences_repeat() {
        let l = list(&[1, 1, 1, 1]);
        let seq = |seed| {
            let mut s = Twos::with_seed(seed);
            run(&mut s, &l, 64)
        };
        assert_eq!(seq(42), seq(42));
        assert_ne!(seq(42), seq(43));
    }

    #[test]
    fn quiescent_and_overloaded_are_never_drawn() {
        let mut l = list(&[5, 0, 5, 1]);
        l.0[2].overloaded = true;
        let mut s = Twos::with_seed(9);
        let c = counts(&mut s, &l, 10_000);
        assert_eq!((c[1], c[2]), (0, 0));
        assert!(c[0] > 0 && c[3] > 0, "{c:?}");
        l.0[0].weight = 0;
        l.0[3].overloaded = true;
        assert_eq!(s.schedule(&l, &any(), 0), None);
        assert_eq!(s.schedule(&List::default(), &any(), 0), None);
    }
}
