//! Destination hashing (ip_vs_dh.c): a static 256-bucket table from the
//! packet's destination address to a server, for cache clusters where the
//! same origin must always hit the same cache.
//!
//! The table deals the servers out one bucket each, round robin over the
//! list, weights ignored; a bucket whose server is quiescent or overloaded
//! fails (no fallback), so a cache miss goes to the no-destination path
//! rather than polluting another cache. The kernel rebuilds it on server
//! add and delete only; since the table depends only on the list, rebuilding
//! when the identity list changed is the same thing.

use super::hash::{fold_addr, hash_32};
use super::{idents, usable, Dests, Ident, Packet, Scheduler, NONE};

pub const TAB_BITS: u32 = 8;
pub const TAB_SIZE: usize = 1 << TAB_BITS;

#[derive(Debug, Clone)]
pub struct Dh {
    table: Box<[u32; TAB_SIZE]>,
    ids: Vec<Ident>,
}

impl Default for Dh {
    fn default() -> Dh {
        Dh {
            table: Box::new([NONE; TAB_SIZE]),
            ids: Vec::new(),
        }
    }
}

impl Dh {
    pub fn new() -> Dh {
        Dh::default()
    }

    /// Bucket -> list index (`u32::MAX` = empty), as the kernel's
    /// `buckets[]`; for tests and diagnostics.
    pub fn table(&self) -> &[u32; TAB_SIZE] {
        &self.table
    }

    pub fn bucket(addr: core::net::IpAddr) -> usize {
        hash_32(fold_addr(addr), TAB_BITS) as usize
    }
}

impl Scheduler for Dh {
    fn name(&self) -> &'static str {
        "dh"
    }

    fn duplicate(&self) -> Option<Box<dyn Scheduler>> {
        Some(Box::new(self.clone()))
    }

    fn update(&mut self, d: &dyn Dests) {
        let ids = idents(d);
        if ids == self.ids {
            return;
        }
        let n = ids.len();
        for (b, slot) in self.table.iter_mut().enumerate() {
            *slot = if n == 0 { NONE } else { (b % n) as u32 };
        }
        self.ids = ids;
    }

    fn schedule(&mut self, d: &dyn Dests, pkt: &Packet, _now_ms: u64) -> Option<usize> {
        let i = self.table[Dh::bucket(pkt.dst) & (TAB_SIZE - 1)] as usize;
        (i < d.len() && usable(d, i)).then_some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    /// hash_32(x, 8) from its definition, without the implementation.
    fn bucket_ref(a: &str) -> usize {
        let x = u64::from(u32::from(a.parse::<core::net::Ipv4Addr>().unwrap()));
        (((x * 0x61C8_8647) & 0xffff_ffff) >> 24) as usize
    }

    fn to(dst: &str) -> Packet {
        pkt("192.0.2.1", dst)
    }

    #[test]
    fn table_deals_servers_round_robin() {
        let l = list(&[1, 5, 0]);
        let mut s = Dh::new();
        s.update(&l);
        let want: Vec<u32> = (0..256).map(|b| b % 3).collect();
        assert_eq!(s.table().to_vec(), want);
    }

    #[test]
    fn destination_picks_its_bucket() {
        let l = list(&[1, 1, 1]);
        let mut s = Dh::new();
        s.update(&l);
        // Two pinned literally (computed with Python from the definition).
        assert_eq!(bucket_ref("10.0.0.1"), 0x27);
        assert_eq!(bucket_ref("203.0.113.9"), 0x40);
        for dst in [
            "10.0.0.1",
            "203.0.113.9",
            "198.51.100.77",
            "0.0.0.0",
            "255.255.255.255",
        ] {
            let want = bucket_ref(dst) % 3;
            assert_eq!(Dh::bucket(ip(dst)), bucket_ref(dst), "{dst}");
            assert_eq!(s.schedule(&l, &to(dst), 0), Some(want), "{dst}");
            // The source does not matter.
            let mut p = to(dst);
            p.src = ip("192.0.2.200");
            p.sport = 1;
            assert_eq!(s.schedule(&l, &p, 0), Some(want), "{dst}");
        }
    }

    #[test]
    fn unavailable_bucket_fails_without_fallback() {
        let mut l = list(&[1, 1, 1]);
        let mut s = Dh::new();
        s.update(&l);
        let dst = "10.0.0.1";
        let i = bucket_ref(dst) % 3;
        l.0[i].weight = 0;
        s.update(&l); // a weight edit: table unchanged
        assert_eq!(s.table()[bucket_ref(dst)], i as u32);
        assert_eq!(s.schedule(&l, &to(dst), 0), None);
        l.0[i].weight = 1;
        l.0[i].overloaded = true;
        assert_eq!(s.schedule(&l, &to(dst), 0), None);
        l.0[i].overloaded = false;
        assert_eq!(s.schedule(&l, &to(dst), 0), Some(i));
    }

    #[test]
    fn add_and_delete_rebuild() {
        let mut l = list(&[1, 1, 1]);
        let mut s = Dh::new();
        s.update(&l);
        l.0.remove(0);
        s.update(&l);
        assert_eq!(
            s.table().to_vec(),
            (0..256).map(|b| b % 2).collect::<Vec<u32>>()
        );
        l.0.clear();
        s.update(&l);
        assert!(s.table().iter().all(|&x| x == NONE));
        assert_eq!(s.schedule(&l, &to("10.0.0.1"), 0), None);
    }

    #[test]
    fn ipv6_destinations_fold() {
        let l = list(&[1, 1, 1, 1, 1]);
        let mut s = Dh::new();
        s.update(&l);
        // 2001:db8::1 folds to 0x20010db8 ^ 1.
        let x = u64::from(0x2001_0db8u32 ^ 1);
        let want = ((((x * 0x61C8_8647) & 0xffff_ffff) >> 24) % 5) as usize;
        let p = Packet {
            src: ip("2001:db8::2"),
            dst: ip("2001:db8::1"),
            sport: 1,
            dport: 80,
            proto: 6,
        };
        assert_eq!(s.schedule(&l, &p, 0), Some(want));
    }
}
