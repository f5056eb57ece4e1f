//! Locality-based least connection (ip_vs_lblc.c), for cache clusters: each
//! destination address sticks to the server that first got it, so that
//! server's cache stays hot, until that server is unusable or overloaded
//! while another server is under half its weight.
//!
//! Kernel details kept: a remembered server is reused whatever its
//! OVERLOAD flag (only weight 0, removal, or the lblc-sense overload move
//! it); the choice when it moves is wlc over the whole service; the entry's
//! idle clock restarts on every lookup, used or not.

use super::addrtab::{AddrTable, DestRef, DEFAULT_CAPACITY, DEFAULT_EXPIRATION_MS};
use super::{ident, lblc_overloaded, wlc_pick, Dests, Ident, Packet, Scheduler, NONE};
use std::collections::HashMap;

pub use super::addrtab::{
    CHECK_EXPIRE_INTERVAL_MS, COUNT_FOR_FULL_EXPIRATION, ENTRY_TIMEOUT_MS, MAX_SIZE, TAB_SIZE,
};

#[derive(Clone)]
pub struct Lblc {
    table: AddrTable<DestRef>,
    expiration_ms: u64,
    ids: Vec<Ident>,
}

impl Default for Lblc {
    fn default() -> Lblc {
        Lblc::with_params(DEFAULT_CAPACITY, DEFAULT_EXPIRATION_MS)
    }
}

/// Re-find remembered servers in a new list (control path).
pub(crate) fn remap(ids: &[Ident]) -> impl Fn(&mut DestRef) {
    let pos: HashMap<Ident, u32> = ids
        .iter()
        .enumerate()
        .map(|(i, &id)| (id, i as u32))
        .collect();
    move |r: &mut DestRef| r.idx = pos.get(&r.id).copied().unwrap_or(NONE)
}

/// The remembered server's index if it is in the list now.
pub(crate) fn live(d: &dyn Dests, r: &DestRef) -> Option<usize> {
    let i = r.idx as usize;
    (i < d.len()).then_some(i)
}

impl Lblc {
    /// Default capacity (2 x the GC threshold) and lblc_expiration (24 h).
    pub fn new() -> Lblc {
        Lblc::default()
    }

    /// `capacity` entries preallocated; `expiration_ms` is the
    /// lblc_expiration sysctl.
    pub fn with_params(capacity: usize, expiration_ms: u64) -> Lblc {
        Lblc {
            table: AddrTable::new(capacity, DestRef::EMPTY),
            expiration_ms,
            ids: Vec::new(),
        }
    }

    /// Remembered destinations.
    pub fn entries(&self) -> usize {
        self.table.len()
    }

    /// The server remembered for a destination, by identity.
    pub fn mapping(&self, dst: core::net::IpAddr) -> Option<(core::net::IpAddr, u16)> {
        let s = self.table.find(dst)?;
        self.table.val(s).map(|r| r.id)
    }
}

impl Scheduler for Lblc {
    fn name(&self) -> &'static str {
        "lblc"
    }

    fn duplicate(&self) -> Option<Box<dyn Scheduler>> {
        Some(Box::new(self.clone()))
    }

    fn update(&mut self, d: &dyn Dests) {
        let ids: Vec<Ident> = (0..d.len()).map(|i| ident(d, i)).collect();
        if ids != self.ids {
            self.table.for_each_mut(remap(&ids));
            self.ids = ids;
        }
    }

    fn schedule(&mut self, d: &dyn Dests, pkt: &Packet, now_ms: u64) -> Option<usize> {
        let found = self.table.find(pkt.dst);
        if let Some(s) = found {
            self.table.touch(s, now_ms);
            let hit = self.table.val(s).and_then(|r| live(d, r));
            if let Some(i) = hit.filter(|&i| d.weight(i) > 0 && !lblc_overloaded(d, i)) {
                return Some(i);
            }
        }
        let i = wlc_pick(d)?;
        let r = DestRef {
            id: ident(d, i),
            idx: i as u32,
        };
        match found {
            // Re-pointing in place is the kernel's delete + re-add, minus
            // the allocation (order within a bucket is not observable).
            Some(s) => {
                if let Some(v) = self.table.val_mut(s) {
                    *v = r;
                }
            }
            // A new entry; with the table full the server is still used,
            // just not remembered.
            None => _ = self.table.insert(pkt.dst, now_ms, r),
        }
        Some(i)
    }

    fn tick(&mut self, now_ms: u64) {
        self.table.tick(now_ms, self.expiration_ms, |_| {});
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    const MIN: u64 = 60_000;

    fn sched(l: &List) -> Lblc {
        let mut s = Lblc::new();
        s.update(l);
        s
    }

    fn to(dst: &str) -> Packet {
        pkt("192.0.2.1", dst)
    }

    #[test]
    fn first_choice_is_wlc_and_then_sticks() {
        let mut l = list(&[1, 1, 1]);
        l.0[0].active = 1;
        let mut s = sched(&l);
        assert_eq!(s.schedule(&l, &to("203.0.113.1"), 0), Some(1));
        // B is now the busiest; the destination still goes there.
        l.0[1].active = 1;
        l.0[1].inactive = 50;
        assert_eq!(s.schedule(&l, &to("203.0.113.1"), 1), Some(1));
        // A new destination goes by wlc: C.
        assert_eq!(s.schedule(&l, &to("203.0.113.2"), 2), Some(2));
        assert_eq!(s.entries(), 2);
        assert_eq!(s.mapping(ip("203.0.113.1")), Some((ip("10.0.0.2"), 80)));
    }

    #[test]
    fn moves_when_overloaded_and_someone_is_under_half() {
        let mut l = list(&[2, 4]);
        let mut s = sched(&l);
        assert_eq!(s.schedule(&l, &to("203.0.113.1"), 0), Some(0));
        l.0[0].active = 3; // above its weight of 2
        l.0[1].active = 2; // exactly half: not "under half"
        assert_eq!(s.schedule(&l, &to("203.0.113.1"), 0), Some(0));
        l.0[1].active = 1;
        // wlc: A 768/2 vs B 256/4 -> B, and the mapping moves.
        assert_eq!(s.schedule(&l, &to("203.0.113.1"), 0), Some(1));
        l.0[1].active = 3;
        assert_eq!(s.schedule(&l, &to("203.0.113.1"), 0), Some(1));
        assert_eq!(s.entries(), 1);
    }

    #[test]
    fn overload_flag_does_not_move_a_mapping() {
        let mut l = list(&[1, 1]);
        let mut s = sched(&l);
        assert_eq!(s.schedule(&l, &to("203.0.113.1"), 0), Some(0));
        l.0[0].overloaded = true;
        assert_eq!(s.schedule(&l, &to("203.0.113.1"), 0), Some(0));
        // But new destinations avoid it.
        assert_eq!(s.schedule(&l, &to("203.0.113.2"), 0), Some(1));
    }

    #[test]
    fn quiescent_server_loses_its_mappings() {
        let mut l = list(&[1, 1]);
        let mut s = sched(&l);
        assert_eq!(s.schedule(&l, &to("203.0.113.1"), 0), Some(0));
        l.0[0].weight = 0;
        s.update(&l);
        assert_eq!(s.schedule(&l, &to("203.0.113.1"), 0), Some(1));
        l.0[0].weight = 1;
        assert_eq!(s.schedule(&l, &to("203.0.113.1"), 0), Some(1));
        l.0[1].weight = 0;
        l.0[0].weight = 0;
        assert_eq!(s.schedule(&l, &to("203.0.113.1"), 0), None);
    }

    #[test]
    fn removed_server_is_replaced_and_revived_if_re_added() {
        let mut l = list(&[1, 1, 1]);
        let mut s = sched(&l);
        l.0[0].active = 1;
        assert_eq!(s.schedule(&l, &to("203.0.113.1"), 0), Some(1)); // B
        assert_eq!(s.schedule(&l, &to("203.0.113.2"), 0), Some(1)); // B again (ties)
        let b = l.0.remove(1);
        s.update(&l);
        // A C: wlc picks C for .1 now.
        assert_eq!(s.schedule(&l, &to("203.0.113.1"), 0), Some(1));
        // B comes back (at the front, newest first): .2 still remembers it.
        l.0.insert(0, b);
        s.update(&l);
        assert_eq!(s.schedule(&l, &to("203.0.113.2"), 0), Some(0));
        assert_eq!(s.schedule(&l, &to("203.0.113.1"), 0), Some(2));
    }

    #[test]
    fn nothing_usable_is_no_destination_and_no_entry() {
        let mut l = list(&[1]);
        l.0[0].overloaded = true;
        let mut s = sched(&l);
        assert_eq!(s.schedule(&l, &to("203.0.113.1"), 0), None);
        assert_eq!(s.entries(), 0);
    }

    #[test]
    fn full_table_still_schedules() {
        let l = list(&[1, 1]);
        let mut s = Lblc::with_params(2, DEFAULT_EXPIRATION_MS);
        s.update(&l);
        for i in 1..=3 {
            assert_eq!(s.schedule(&l, &to(&format!("203.0.113.{i}")), 0), Some(0));
        }
        assert_eq!(s.entries(), 2);
        assert_eq!(s.mapping(ip("203.0.113.3")), None);
    }

    #[test]
    fn full_scan_expires_idle_entries() {
        let l = list(&[1, 1]);
        let mut s = sched(&l);
        s.tick(0);
        s.schedule(&l, &to("203.0.113.1"), 0);
        s.schedule(&l, &to("203.0.113.2"), 0);
        // Timer runs every minute; the full scans are at 30, 60, ... min.
        let mut t = 0;
        let day = 24 * 60 * MIN;
        while t < day {
            t += MIN;
            if t == 12 * 60 * MIN {
                s.schedule(&l, &to("203.0.113.2"), t); // used again at 12 h
            }
            s.tick(t);
        }
        // At 24 h (a full scan, 48th): .1 is exactly 24 h idle and goes.
        assert_eq!(s.mapping(ip("203.0.113.1")), None);
        assert!(s.mapping(ip("203.0.113.2")).is_some());
        // .2 goes at the first full scan 24 h after its last use.
        while t < day + 12 * 60 * MIN {
            t += MIN;
            s.tick(t);
        }
        assert_eq!(s.entries(), 0);
    }

    #[test]
    fn full_scan_uses_the_configured_expiration() {
        let l = list(&[1]);
        let mut s = Lblc::with_params(16, 10 * MIN);
        s.update(&l);
        s.tick(0);
        s.schedule(&l, &to("203.0.113.1"), 0);
        for m in 1..30 {
            s.tick(m * MIN);
        }
        assert_eq!(s.entries(), 1); // idle 29 min, but no full scan yet
        s.tick(30 * MIN);
        assert_eq!(s.entries(), 0);
    }

    #[test]
    fn over_the_threshold_idle_entries_are_trimmed() {
        let l = list(&[1]);
        let mut s = sched(&l);
        s.tick(0);
        let n = MAX_SIZE + 300;
        let dst = |i: usize| Packet {
            dst: core::net::IpAddr::V4(core::net::Ipv4Addr::from(0x0b00_0000 + i as u32)),
            ..to("0.0.0.0")
        };
        // 300 old entries at t=0, the rest fresh at 5 min.
        for i in 0..n {
            s.schedule(&l, &dst(i), if i < 300 { 0 } else { 5 * MIN });
        }
        assert_eq!(s.entries(), n);
        s.tick(MIN); // entries > MAX_SIZE, but nothing idle 6 min yet
        assert_eq!(s.entries(), n);
        s.tick(6 * MIN); // the old 300 are 6 min idle; goal 400 > 300
        assert_eq!(s.entries(), MAX_SIZE);
        for i in 0..n {
            assert_eq!(s.mapping(dst(i).dst).is_some(), i >= 300, "{i}");
        }
        // At the threshold, not above it: nothing more goes.
        s.tick(20 * MIN);
        assert_eq!(s.entries(), MAX_SIZE);
    }

    #[test]
    fn partial_pass_stops_after_the_goal_bucket() {
        let l = list(&[1]);
        let mut s = sched(&l);
        s.tick(0);
        // Every entry idle: goal = 30 * 4 / 3 = 40, met within a few
        // buckets of the rover, so most idle entries survive this pass.
        let n = MAX_SIZE + 30;
        for i in 0..n {
            let p = Packet {
                dst: core::net::IpAddr::V4(core::net::Ipv4Addr::from(0x0c00_0000 + i as u32)),
                ..to("0.0.0.0")
            };
            s.schedule(&l, &p, 0);
        }
        s.tick(10 * MIN);
        let left = s.entries();
        assert!(left <= n - 40 && left > n - 200, "{left}");
    }
}
