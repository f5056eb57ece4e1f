//! Source hashing (ip_vs_sh.c): a 256-bucket table from the client address
//! (and, with sh-port, its port) to a server, so a client sticks to one
//! server without persistence templates.
//!
//! The table walks the list circularly giving each server `weight`
//! consecutive buckets (a quiescent server still one), so weights shape the
//! share of clients. It is a pure function of the list and its weights,
//! rebuilt on every update as the kernel does on add, delete and edit. A
//! bucket whose server is unavailable fails, unless sh-fallback probes
//! other buckets in a fixed, hash-dependent order.

use super::hash::{fold_addr, hash_32};
use super::{usable, Dests, Flags, Packet, Scheduler, NONE};

pub const TAB_BITS: u32 = 8;
pub const TAB_SIZE: usize = 1 << TAB_BITS;
const MASK: usize = TAB_SIZE - 1;

#[derive(Debug, Clone)]
pub struct Sh {
    table: Box<[u32; TAB_SIZE]>,
    fallback: bool,
    port: bool,
}

/// Protocols whose first four transport bytes are the ports.
pub(crate) fn has_ports(proto: u8) -> bool {
    matches!(proto, 6 | 17 | 132)
}

impl Sh {
    pub fn new(flags: Flags) -> Sh {
        Sh {
            table: Box::new([NONE; TAB_SIZE]),
            fallback: flags.sh_fallback,
            port: flags.sh_port,
        }
    }

    /// Bucket -> list index (`u32::MAX` = empty); for tests and diagnostics.
    pub fn table(&self) -> &[u32; TAB_SIZE] {
        &self.table
    }

    /// `ip_vs_sh_hashkey`: port and address added as host-order integers.
    fn hashkey(key: u32, offset: usize) -> usize {
        (offset + hash_32(key, TAB_BITS) as usize) & MASK
    }

    fn dest(&self, d: &dyn Dests, b: usize) -> Option<usize> {
        let i = self.table[b & MASK];
        (i != NONE).then_some(i as usize).filter(|&i| i < d.len())
    }
}

impl Scheduler for Sh {
    fn name(&self) -> &'static str {
        "sh"
    }

    fn duplicate(&self) -> Option<Box<dyn Scheduler>> {
        Some(Box::new(self.clone()))
    }

    fn update(&mut self, d: &dyn Dests) {
        let n = d.len();
        let (mut p, mut count) = (0, 0);
        for slot in self.table.iter_mut() {
            if n == 0 {
                *slot = NONE;
                continue;
            }
            *slot = p as u32;
            count += 1;
            if count >= d.weight(p) {
                p = (p + 1) % n;
                count = 0;
            }
        }
    }

    fn schedule(&mut self, d: &dyn Dests, pkt: &Packet, _now_ms: u64) -> Option<usize> {
        let port = if self.port && has_ports(pkt.proto) {
            pkt.sport
        } else {
            0
        };
        let key = u32::from(port).wrapping_add(fold_addr(pkt.src));
        let h = Sh::hashkey(key, 0);
        let first = self.dest(d, h)?;
        if usable(d, first) {
            return Some(first);
        }
        if !self.fallback {
            return None;
        }
        for k in 0..TAB_SIZE {
            let b = Sh::hashkey(key, (k + h) % TAB_SIZE);
            let i = self.dest(d, b)?;
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

    /// hash_32(x, 8) from its definition.
    fn h8(x: u32) -> usize {
        (((u64::from(x) * 0x61C8_8647) & 0xffff_ffff) >> 24) as usize
    }

    fn v4(a: &str) -> u32 {
        u32::from(a.parse::<core::net::Ipv4Addr>().unwrap())
    }

    fn from(src: &str, sport: u16, proto: u8) -> Packet {
        Packet {
            src: ip(src),
            dst: ip("198.51.100.1"),
            sport,
            dport: 80,
            proto,
        }
    }

    fn sched(l: &List, flags: Flags) -> Sh {
        let mut s = Sh::new(flags);
        s.update(l);
        s
    }

    #[test]
    fn table_gives_each_server_weight_consecutive_buckets() {
        let l = list(&[1, 2, 3]);
        let s = sched(&l, Flags::default());
        let pattern = [0, 1, 1, 2, 2, 2];
        let want: Vec<u32> = (0..256).map(|b| pattern[b % 6]).collect();
        assert_eq!(s.table().to_vec(), want);
        let count = |i| s.table().iter().filter(|&&x| x == i).count();
        // 42 full rounds of 6 and then A, B, B, C.
        assert_eq!((count(0), count(1), count(2)), (43, 86, 127));
    }

    #[test]
    fn quiescent_server_keeps_one_bucket_and_big_weights_fill_all() {
        let l = list(&[0, 1]);
        let s = sched(&l, Flags::default());
        assert_eq!(s.table().iter().filter(|&&x| x == 0).count(), 128);
        let l = list(&[300, 1]);
        let s = sched(&l, Flags::default());
        assert!(s.table().iter().all(|&x| x == 0));
        let s = sched(&List::default(), Flags::default());
        assert!(s.table().iter().all(|&x| x == NONE));
    }

    #[test]
    fn weight_edit_rebuilds() {
        let mut l = list(&[1, 1]);
        let mut s = sched(&l, Flags::default());
        assert_eq!(s.table()[..4], [0, 1, 0, 1]);
        l.0[0].weight = 3;
        s.update(&l);
        assert_eq!(s.table()[..8], [0, 0, 0, 1, 0, 0, 0, 1]);
    }

    #[test]
    fn source_address_picks_its_bucket() {
        let l = list(&[1, 2, 3]);
        let mut s = sched(&l, Flags::default());
        let pattern = [0, 1, 1, 2, 2, 2];
        for src in ["192.0.2.1", "192.0.2.2", "10.9.8.7", "172.16.0.1"] {
            let want = pattern[h8(v4(src)) % 6];
            // Port and destination ignored without sh-port.
            assert_eq!(s.schedule(&l, &from(src, 1000, 6), 0), Some(want), "{src}");
            assert_eq!(s.schedule(&l, &from(src, 2000, 6), 0), Some(want), "{src}");
        }
    }

    #[test]
    fn sh_port_adds_the_source_port_for_tcp_udp_sctp() {
        let l = list(&[1; 7]);
        let flags = Flags {
            sh_port: true,
            ..Flags::default()
        };
        let mut s = sched(&l, flags);
        let a = v4("192.0.2.1");
        let mut seen = std::collections::BTreeSet::new();
        for proto in [6, 17, 132] {
            for port in [1000u16, 1001, 1002, 40000, 65535] {
                let want = h8(a.wrapping_add(u32::from(port))) % 7;
                assert_eq!(
                    s.schedule(&l, &from("192.0.2.1", port, proto), 0),
                    Some(want)
                );
                seen.insert(want);
            }
        }
        assert!(seen.len() > 1, "ports should spread a client: {seen:?}");
        // ICMP has no ports: 0 is used.
        let want = h8(a) % 7;
        assert_eq!(s.schedule(&l, &from("192.0.2.1", 1000, 1), 0), Some(want));
        // The sum wraps at 32 bits: 255.255.255.255 + port 1 hashes as 0.
        assert_eq!(s.schedule(&l, &from("255.255.255.255", 1, 17), 0), Some(0));
    }

    #[test]
    fn unavailable_without_fallback_fails() {
        let mut l = list(&[1, 1, 1, 1]);
        let mut s = sched(&l, Flags::default());
        let src = "192.0.2.1";
        let i = h8(v4(src)) % 4;
        l.0[i].overloaded = true;
        assert_eq!(s.schedule(&l, &from(src, 1, 6), 0), None);
        l.0[i].overloaded = false;
        l.0[i].weight = 0;
        s.update(&l); // weight 0 still takes one bucket a round: same table
        assert_eq!(s.table()[h8(v4(src))] as usize, i);
        assert_eq!(s.schedule(&l, &from(src, 1, 6), 0), None);
    }

    #[test]
    fn fallback_probes_in_the_kernel_order() {
        let mut l = list(&[1; 8]);
        let flags = Flags {
            sh_fallback: true,
            ..Flags::default()
        };
        let mut s = sched(&l, flags);
        let src = "192.0.2.77";
        let h = h8(v4(src));
        // Probe k looks at bucket ((k + h) % 256 + h) % 256; bucket b holds b % 8.
        let probe = |k: usize| ((k + h) % 256 + h) % 256 % 8;
        let first = h % 8;
        assert_eq!(s.schedule(&l, &from(src, 1, 6), 0), Some(first));
        // Take away the first server and every server of the early probes
        // except one, then check that exactly that one is found.
        let mut off = vec![first];
        let mut k = 0;
        let survivor = loop {
            let c = probe(k);
            if !off.contains(&c) {
                if off.len() < 4 {
                    off.push(c);
                } else {
                    break c;
                }
            }
            k += 1;
        };
        for &i in &off {
            l.0[i].overloaded = true;
        }
        assert_eq!(s.schedule(&l, &from(src, 1, 6), 0), Some(survivor));
        // Without the flag: nothing.
        let mut plain = sched(&l, Flags::default());
        assert_eq!(plain.schedule(&l, &from(src, 1, 6), 0), None);
        // Every server unavailable: nothing even with fallback.
        for r in &mut l.0 {
            r.weight = 0;
        }
        assert_eq!(s.schedule(&l, &from(src, 1, 6), 0), None);
    }
}
