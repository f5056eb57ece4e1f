//! Maglev hashing (ip_vs_mh.c): a client address (and, with mh-port, port)
//! maps through a prime-sized table to a server, and adding or removing one
//! server moves only about 1/N of the clients.
//!
//! Table size is `CONFIG_IP_VS_MH_TAB_INDEX` 12's prime, 4093 (not the
//! paper's 65537). Each server gets a preference order over the slots from
//! two keyed hashes of its address and port (offset, skip); servers then
//! take turns claiming their next free preferred slot, each claiming
//! `turns` slots per round in list order, until the table is full. Turns
//! come from the *last non-zero* weight, so quiescing a server (weight 0)
//! leaves the table alone and only makes its slots fail (or fall back),
//! which keeps every other client where it was.

use super::hash::{fold_addr, hsiphash_u32, HsipKey};
use super::sh::has_ports;
use super::{ident, usable, Dests, Flags, Ident, Packet, Scheduler, NONE};

/// The table size, and the most servers mh can place.
pub const TAB_SIZE: usize = 4093;
/// `IP_VS_MH_TAB_BITS`: weights are scaled down to at most this many bits.
const TAB_BITS: u32 = 6;

/// The fixed keys of `generate_hash_secret`: the kernel uses constants, not
/// random keys, so every director builds the same table.
pub const KEY1: HsipKey = HsipKey([2_654_435_761, 2_654_435_761]);
pub const KEY2: HsipKey = HsipKey([2_654_446_892, 2_654_446_892]);

#[derive(Debug, Clone)]
pub struct Mh {
    lookup: Box<[u32]>,
    /// The (identity, last weight) list `lookup` was built from: a rebuild
    /// is skipped when it did not change, and servers are re-found by
    /// identity when a rebuild is refused.
    seen: Vec<(Ident, u32)>,
    fallback: bool,
    port: bool,
}

/// `ip_vs_mh_hashkey`: offset, port and folded address added as host-order
/// integers, then the 4 bytes of that sum hashed.
pub fn hashkey(addr: core::net::IpAddr, port: u16, key: &HsipKey, offset: u32) -> u32 {
    let v = offset
        .wrapping_add(u32::from(port))
        .wrapping_add(fold_addr(addr));
    hsiphash_u32(key, v)
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Bits needed to hold `x` (the kernel's `fls`).
fn fls(x: u32) -> u32 {
    32 - x.leading_zeros()
}

impl Mh {
    pub fn new(flags: Flags) -> Mh {
        Mh {
            lookup: vec![NONE; TAB_SIZE].into_boxed_slice(),
            seen: Vec::new(),
            fallback: flags.mh_fallback,
            port: flags.mh_port,
        }
    }

    /// Slot -> list index (`u32::MAX` = empty); for tests and diagnostics.
    pub fn table(&self) -> &[u32] {
        &self.lookup
    }

    /// How many slots each server claims per round, by the kernel's rule.
    pub fn turns(d: &dyn Dests) -> Vec<u32> {
        let lw = |i| d.last_weight(i);
        let g = (0..d.len()).map(lw).filter(|&w| w > 0).fold(0, gcd);
        if g == 0 {
            return vec![0; d.len()];
        }
        let max = (0..d.len()).map(lw).max().unwrap_or(0);
        let shift = fls(max / g).saturating_sub(TAB_BITS);
        (0..d.len())
            .map(|i| match (lw(i) / g) >> shift {
                0 => u32::from(lw(i) != 0),
                t => t,
            })
            .collect()
    }

    fn populate(&mut self, d: &dyn Dests) {
        let n = d.len();
        let turns = Mh::turns(d);
        self.lookup.fill(NONE);
        if turns.iter().all(|&t| t == 0) {
            return;
        }
        let m = TAB_SIZE as u32;
        let mut perm = Vec::with_capacity(n);
        let mut skip = Vec::with_capacity(n);
        for i in 0..n {
            let (a, p) = (d.addr(i), d.port(i));
            perm.push(hashkey(a, p, &KEY1, 0) % m);
            skip.push(hashkey(a, p, &KEY2, 0) % (m - 1) + 1);
        }
        let mut taken = vec![false; TAB_SIZE];
        let mut filled = 0;
        let mut claims = 0;
        'full: loop {
            let mut i = 0;
            while i < n {
                if turns[i] == 0 {
                    i += 1;
                    continue;
                }
                while taken[perm[i] as usize] {
                    perm[i] += skip[i];
                    if perm[i] >= m {
                        perm[i] -= m;
                    }
                }
                let c = perm[i] as usize;
                taken[c] = true;
                self.lookup[c] = i as u32;
                filled += 1;
                if filled == TAB_SIZE {
                    break 'full;
                }
                claims += 1;
                if claims >= turns[i] {
                    claims = 0;
                    i += 1;
                }
            }
        }
    }

    fn dest(&self, d: &dyn Dests, slot: u32) -> Option<usize> {
        let i = *self.lookup.get(slot as usize)?;
        (i != NONE).then_some(i as usize).filter(|&i| i < d.len())
    }
}

impl Scheduler for Mh {
    fn name(&self) -> &'static str {
        "mh"
    }

    fn duplicate(&self) -> Option<Box<dyn Scheduler>> {
        Some(Box::new(self.clone()))
    }

    fn update(&mut self, d: &dyn Dests) {
        let seen: Vec<(Ident, u32)> = (0..d.len())
            .map(|i| (ident(d, i), d.last_weight(i)))
            .collect();
        if seen == self.seen {
            return;
        }
        if d.len() > TAB_SIZE {
            // The kernel refuses the rebuild (EINVAL) and keeps the old
            // table; keep it too, re-pointing its slots at the same servers
            // in the new list (a removed server's slots become empty).
            let pos: std::collections::HashMap<Ident, u32> =
                (0..d.len()).map(|i| (ident(d, i), i as u32)).collect();
            for slot in self.lookup.iter_mut().filter(|s| **s != NONE) {
                let id = self.seen.get(*slot as usize).map(|s| &s.0);
                *slot = id.and_then(|id| pos.get(id)).copied().unwrap_or(NONE);
            }
        } else {
            self.populate(d);
        }
        self.seen = seen;
    }

    fn schedule(&mut self, d: &dyn Dests, pkt: &Packet, _now_ms: u64) -> Option<usize> {
        let port = if self.port && has_ports(pkt.proto) {
            pkt.sport
        } else {
            0
        };
        let m = TAB_SIZE as u32;
        let ihash = hashkey(pkt.src, port, &KEY1, 0) % m;
        let first = self.dest(d, ihash)?;
        if usable(d, first) {
            return Some(first);
        }
        if !self.fallback {
            return None;
        }
        for off in 0..m {
            let roff = (off + ihash) % m;
            let i = self.dest(d, hashkey(pkt.src, port, &KEY1, roff) % m)?;
            if usable(d, i) {
                return Some(i);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    // Expected values below come from mh_model.py, an independent Python
    // model of ip_vs_mh.c (its SipHash-1-3 checked against CPython's own and
    // the kernel's hsiphash self-test vectors): servers 10.0.0.1:80 w1,
    // 10.0.0.2:80 w1, 10.0.0.3:80 w2, in that list order.

    fn sched(l: &List, flags: Flags) -> Mh {
        let mut s = Mh::new(flags);
        s.update(l);
        s
    }

    fn from(src: &str, sport: u16) -> Packet {
        Packet {
            src: ip(src),
            dst: ip("198.51.100.1"),
            sport,
            dport: 80,
            proto: 6,
        }
    }

    fn srcs() -> Vec<String> {
        (1..=8).map(|i| format!("192.0.2.{i}")).collect()
    }

    #[test]
    fn keyed_hashes_of_servers() {
        let l = list(&[1, 1, 2]);
        let h = |i: usize, k| hashkey(l.0[i].addr, 80, k, 0);
        assert_eq!(
            [h(0, &KEY1), h(1, &KEY1), h(2, &KEY1)],
            [0x439c0cbe, 0xa1cf683b, 0x2cdf0afa]
        );
        assert_eq!(
            [h(0, &KEY2), h(1, &KEY2), h(2, &KEY2)],
            [0x97b3dc47, 0xfa5d46df, 0xedeb33d0]
        );
        // offset = h1 % 4093, skip = h2 % 4092 + 1
        let m = TAB_SIZE as u32;
        assert_eq!((h(0, &KEY1) % m, h(0, &KEY2) % (m - 1) + 1), (3167, 700));
    }

    #[test]
    fn table_matches_the_model() {
        let l = list(&[1, 1, 2]);
        let s = sched(&l, Flags::default());
        assert_eq!(
            s.table()[..16],
            [0, 1, 2, 2, 2, 2, 1, 2, 2, 0, 0, 1, 1, 0, 0, 2]
        );
        let count = |i| s.table().iter().filter(|&&x| x == i).count();
        assert_eq!((count(0), count(1), count(2)), (1024, 1023, 2046));
        // Each server's first claim is its offset.
        assert_eq!(
            (s.table()[3167], s.table()[1231], s.table()[1631]),
            (0, 1, 2)
        );
    }

    #[test]
    fn lookups_match_the_model() {
        let l = list(&[1, 1, 2]);
        let mut s = sched(&l, Flags::default());
        let got: Vec<_> = srcs()
            .iter()
            .map(|a| s.schedule(&l, &from(a, 12345), 0))
            .collect();
        let want = [2, 1, 2, 2, 1, 2, 1, 2].map(Some);
        assert_eq!(got, want);
        // Slots of those sources, for the record.
        let slots: Vec<u32> = srcs()
            .iter()
            .map(|a| hashkey(ip(a), 0, &KEY1, 0) % TAB_SIZE as u32)
            .collect();
        assert_eq!(slots, [2891, 746, 998, 3044, 3958, 4037, 1589, 1122]);
    }

    #[test]
    fn mh_port_hashes_the_source_port() {
        let l = list(&[1, 1, 2]);
        let flags = Flags {
            mh_port: true,
            ..Flags::default()
        };
        let mut s = sched(&l, flags);
        let got: Vec<_> = srcs()
            .iter()
            .map(|a| s.schedule(&l, &from(a, 12345), 0))
            .collect();
        assert_eq!(got, [2, 0, 0, 0, 1, 2, 0, 2].map(Some));
        // No ports for ICMP: as without the flag.
        let mut icmp = from("192.0.2.2", 12345);
        icmp.proto = 1;
        assert_eq!(s.schedule(&l, &icmp, 0), Some(1));
    }

    #[test]
    fn unavailable_fails_or_falls_back() {
        let mut l = list(&[1, 1, 2]);
        l.0[2].overloaded = true;
        let mut plain = sched(&l, Flags::default());
        let flags = Flags {
            mh_fallback: true,
            ..Flags::default()
        };
        let mut fb = sched(&l, flags);
        let got: Vec<_> = srcs()
            .iter()
            .map(|a| plain.schedule(&l, &from(a, 0), 0))
            .collect();
        assert_eq!(
            got,
            [None, Some(1), None, None, Some(1), None, Some(1), None]
        );
        let got: Vec<_> = srcs()
            .iter()
            .map(|a| fb.schedule(&l, &from(a, 0), 0))
            .collect();
        assert_eq!(got, [0, 1, 0, 0, 1, 1, 1, 1].map(Some));
        l.0[0].weight = 0;
        let got: Vec<_> = srcs()
            .iter()
            .map(|a| fb.schedule(&l, &from(a, 0), 0))
            .collect();
        assert_eq!(got, [Some(1); 8]);
        l.0[1].weight = 0;
        assert_eq!(fb.schedule(&l, &from("192.0.2.1", 0), 0), None);
    }

    #[test]
    fn quiescing_keeps_the_table() {
        let mut l = list(&[1, 1, 2]);
        let mut s = sched(&l, Flags::default());
        let before = s.table().to_vec();
        l.0[2].weight = 0; // last_weight stays 2
        s.update(&l);
        assert_eq!(s.table(), &before[..]);
        // Clients of C now fail; others are untouched.
        let got: Vec<_> = srcs()
            .iter()
            .map(|a| s.schedule(&l, &from(a, 0), 0))
            .collect();
        assert_eq!(
            got,
            [None, Some(1), None, None, Some(1), None, Some(1), None]
        );
    }

    #[test]
    fn removing_a_server_moves_few_other_clients() {
        let mut l = list(&[1, 1, 2]);
        let before = sched(&l, Flags::default()).table().to_vec();
        l.0.remove(1);
        let after = sched(&l, Flags::default()).table().to_vec();
        let moved = before
            .iter()
            .zip(&after)
            .filter(|(&b, &a)| b != 1 && [0, u32::MAX, 1][b as usize] != a)
            .count();
        assert_eq!(moved, 3);
    }

    #[test]
    fn turns_scale_weights() {
        let mut l = list(&[128, 1]);
        assert_eq!(Mh::turns(&l), [32, 1]); // fls(128) = 8: shift 2
        let s = sched(&l, Flags::default());
        let count = |i| s.table().iter().filter(|&&x| x == i).count();
        assert_eq!((count(0), count(1)), (3969, 124));
        l = list(&[1000, 3000, 0]);
        assert_eq!(Mh::turns(&l), [1, 3, 0]); // gcd 1000
        let s = sched(&l, Flags::default());
        let count = |i| s.table().iter().filter(|&&x| x == i).count();
        assert_eq!((count(0), count(1), count(2)), (1024, 3069, 0));
        assert_eq!(s.table()[..8], [0, 1, 1, 1, 1, 0, 1, 1]);
        assert_eq!(Mh::turns(&list(&[63, 1])), [63, 1]); // fls(63) = 6: no shift
        assert_eq!(Mh::turns(&list(&[64, 1])), [32, 1]);
        assert_eq!(Mh::turns(&list(&[0, 0])), [0, 0]);
    }

    #[test]
    fn no_weights_no_table() {
        let l = list(&[0, 0]);
        let mut s = sched(&l, Flags::default());
        assert!(s.table().iter().all(|&x| x == NONE));
        assert_eq!(s.schedule(&l, &from("192.0.2.1", 0), 0), None);
        let mut e = sched(&List::default(), Flags::default());
        assert_eq!(e.schedule(&List::default(), &from("192.0.2.1", 0), 0), None);
    }

    #[test]
    fn too_many_servers_keeps_the_old_table() {
        let mut l = list(&[1, 1, 2]);
        let mut s = sched(&l, Flags::default());
        let before = s.table().to_vec();
        // 4094 servers, the old three at the end of the list now.
        let mut big: Vec<_> = (0..TAB_SIZE + 1 - 3)
            .map(|i| rs(&format!("10.1.{}.{}", i / 250, i % 250 + 1), 80, 1))
            .collect();
        big.append(&mut l.0);
        let l = List(big);
        s.update(&l);
        let shift = (TAB_SIZE + 1 - 3) as u32;
        let want: Vec<u32> = before.iter().map(|&i| i + shift).collect();
        assert_eq!(s.table(), &want[..]);
    }
}
