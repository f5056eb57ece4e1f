//! Locality-based least connection with replication (ip_vs_lblcr.c): like
//! lblc, but a busy destination address may be served by a *set* of
//! servers, grown when every member is overloaded and shrunk again (the
//! most loaded member dropped) once the set has not changed for
//! lblcr_expiration.
//!
//! Sets live in a second preallocated pool; when it is exhausted a server
//! is used without being added, the kernel's path when its allocation
//! fails. A member that was removed from the service is never chosen (it
//! is not AVAILABLE) and revives if re-added, as in the kernel.

use super::addrtab::{AddrTable, DestRef, DEFAULT_CAPACITY, DEFAULT_EXPIRATION_MS};
use super::lblc::{live, remap};
use super::{
    heavier, ident, lblc_overloaded, overhead, wlc_pick, Dests, Ident, Packet, Scheduler, NONE,
};

pub use super::addrtab::{
    CHECK_EXPIRE_INTERVAL_MS, COUNT_FOR_FULL_EXPIRATION, ENTRY_TIMEOUT_MS, MAX_SIZE, TAB_SIZE,
};

/// Set members preallocated per table entry on average. Sets are usually
/// one or two servers; this leaves room for hot destinations to replicate.
pub const DEFAULT_MEMBERS_PER_ENTRY: usize = 2;

#[derive(Debug, Clone, Copy)]
struct Set {
    /// First member (newest first, as `list_add_rcu`), NONE if empty.
    head: u32,
    size: u32,
    lastmod: u64,
}

const EMPTY_SET: Set = Set {
    head: NONE,
    size: 0,
    lastmod: 0,
};

#[derive(Debug, Clone, Copy)]
struct Member {
    dest: DestRef,
    next: u32,
}

/// Set members of all entries, with a free list threaded through `next`.
#[derive(Clone)]
struct Pool {
    m: Box<[Member]>,
    free: u32,
}

impl Pool {
    fn new(capacity: usize) -> Pool {
        let capacity = capacity.min(NONE as usize - 1);
        let m: Vec<Member> = (0..capacity)
            .map(|i| Member {
                dest: DestRef::EMPTY,
                next: if i + 1 < capacity {
                    (i + 1) as u32
                } else {
                    NONE
                },
            })
            .collect();
        Pool {
            m: m.into_boxed_slice(),
            free: if capacity > 0 { 0 } else { NONE },
        }
    }

    fn get(&self, e: u32) -> Option<&Member> {
        self.m.get(e as usize)
    }

    /// Members of a set, in set order.
    fn iter(&self, set: &Set) -> impl Iterator<Item = &Member> + '_ {
        let mut e = set.head;
        core::iter::from_fn(move || {
            let m = self.get(e)?;
            e = m.next;
            Some(m)
        })
    }

    /// `ip_vs_dest_set_insert`.
    fn insert(&mut self, set: &mut Set, dest: DestRef, check: bool, now: u64) {
        if check && self.iter(set).any(|m| m.dest.id == dest.id) {
            return;
        }
        let e = self.free;
        let Some(m) = self.m.get_mut(e as usize) else {
            return; // pool exhausted
        };
        self.free = m.next;
        *m = Member {
            dest,
            next: set.head,
        };
        set.head = e;
        set.size += 1;
        set.lastmod = now;
    }

    /// `ip_vs_dest_set_erase`: the first member that is this server.
    fn erase(&mut self, set: &mut Set, id: Ident, now: u64) {
        let mut prev = NONE;
        let mut e = set.head;
        while let Some(&m) = self.get(e) {
            if m.dest.id == id {
                if prev == NONE {
                    set.head = m.next;
                } else if let Some(p) = self.m.get_mut(prev as usize) {
                    p.next = m.next;
                }
                if let Some(x) = self.m.get_mut(e as usize) {
                    x.next = self.free;
                }
                self.free = e;
                set.size -= 1;
                set.lastmod = now;
                return;
            }
            prev = e;
            e = m.next;
        }
    }

    fn release(&mut self, set: &Set) {
        let mut e = set.head;
        while let Some(m) = self.m.get_mut(e as usize) {
            let next = m.next;
            m.next = self.free;
            self.free = e;
            e = next;
        }
    }

    /// `ip_vs_dest_set_min`: weighted least loaded usable member.
    fn min(&self, set: &Set, d: &dyn Dests) -> Option<usize> {
        let mut least: Option<(usize, u64)> = None;
        for m in self.iter(set) {
            let Some(i) = live(d, &m.dest) else {
                continue; // not AVAILABLE
            };
            if d.overloaded(i) {
                continue;
            }
            let doh = overhead(d, i);
            match least {
                None if d.weight(i) > 0 => least = Some((i, doh)),
                Some((l, loh)) if heavier(loh, d.weight(l), doh, d.weight(i)) => {
                    least = Some((i, doh));
                }
                _ => {}
            }
        }
        least.map(|(i, _)| i)
    }

    /// `ip_vs_dest_set_max`: the weighted most loaded member with a
    /// non-zero weight, overloaded or not. A member no longer in the
    /// service has no weight or counters here, so it is not a candidate
    /// (the kernel would still see the deleted dest's last values).
    fn max(&self, set: &Set, d: &dyn Dests) -> Option<Ident> {
        let mut most: Option<(usize, u64)> = None;
        for m in self.iter(set) {
            let Some(i) = live(d, &m.dest) else {
                continue;
            };
            if d.weight(i) == 0 {
                continue;
            }
            let doh = overhead(d, i);
            match most {
                None => most = Some((i, doh)),
                Some((x, moh)) if heavier(doh, d.weight(i), moh, d.weight(x)) => {
                    most = Some((i, doh));
                }
                _ => {}
            }
        }
        most.map(|(i, _)| ident(d, i))
    }
}

#[derive(Clone)]
pub struct Lblcr {
    table: AddrTable<Set>,
    pool: Pool,
    expiration_ms: u64,
    ids: Vec<Ident>,
}

impl Default for Lblcr {
    fn default() -> Lblcr {
        Lblcr::with_params(
            DEFAULT_CAPACITY,
            DEFAULT_CAPACITY * DEFAULT_MEMBERS_PER_ENTRY,
            DEFAULT_EXPIRATION_MS,
        )
    }
}

impl Lblcr {
    pub fn new() -> Lblcr {
        Lblcr::default()
    }

    /// `entries` destinations and `members` set members preallocated;
    /// `expiration_ms` is the lblcr_expiration sysctl.
    pub fn with_params(entries: usize, members: usize, expiration_ms: u64) -> Lblcr {
        Lblcr {
            table: AddrTable::new(entries, EMPTY_SET),
            pool: Pool::new(members),
            expiration_ms,
            ids: Vec::new(),
        }
    }

    pub fn entries(&self) -> usize {
        self.table.len()
    }

    /// The set for a destination, by identity, in set order (newest first).
    pub fn members(&self, dst: core::net::IpAddr) -> Option<Vec<Ident>> {
        let set = self.table.val(self.table.find(dst)?)?;
        Some(self.pool.iter(set).map(|m| m.dest.id).collect())
    }
}

impl Scheduler for Lblcr {
    fn name(&self) -> &'static str {
        "lblcr"
    }

    fn duplicate(&self) -> Option<Box<dyn Scheduler>> {
        Some(Box::new(self.clone()))
    }

    fn update(&mut self, d: &dyn Dests) {
        let ids: Vec<Ident> = (0..d.len()).map(|i| ident(d, i)).collect();
        if ids == self.ids {
            return;
        }
        let f = remap(&ids);
        let pool = &mut self.pool;
        self.table.for_each_mut(|set| {
            let mut e = set.head;
            while let Some(m) = pool.m.get_mut(e as usize) {
                f(&mut m.dest);
                e = m.next;
            }
        });
        self.ids = ids;
    }

    fn schedule(&mut self, d: &dyn Dests, pkt: &Packet, now_ms: u64) -> Option<usize> {
        let dref = |i: usize| DestRef {
            id: ident(d, i),
            idx: i as u32,
        };
        if let Some(s) = self.table.find(pkt.dst) {
            self.table.touch(s, now_ms);
            let set = self.table.val_mut(s)?;
            let chosen = self.pool.min(set, d);
            // Not modified for a whole expiration: drop the busiest member
            // so a set grown under a burst shrinks back.
            if set.size > 1 && now_ms > set.lastmod.saturating_add(self.expiration_ms) {
                if let Some(m) = self.pool.max(set, d) {
                    self.pool.erase(set, m, now_ms);
                }
            }
            if let Some(i) = chosen.filter(|&i| !lblc_overloaded(d, i)) {
                return Some(i);
            }
            let i = wlc_pick(d)?;
            self.pool.insert(set, dref(i), true, now_ms);
            return Some(i);
        }
        let i = wlc_pick(d)?;
        let mut set = EMPTY_SET;
        self.pool.insert(&mut set, dref(i), false, now_ms);
        if self.table.insert(pkt.dst, now_ms, set).is_none() {
            // Table full: give the member back.
            self.pool.release(&set);
        }
        Some(i)
    }

    fn tick(&mut self, now_ms: u64) {
        let pool = &mut self.pool;
        self.table
            .tick(now_ms, self.expiration_ms, |set| pool.release(set));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    const MIN: u64 = 60_000;
    const DST: &str = "203.0.113.1";

    fn sched(l: &List) -> Lblcr {
        let mut s = Lblcr::new();
        s.update(l);
        s
    }

    fn to(dst: &str) -> Packet {
        pkt("192.0.2.1", dst)
    }

    fn names(s: &Lblcr, dst: &str) -> Vec<String> {
        s.members(ip(dst))
            .unwrap_or_default()
            .iter()
            .map(|(a, _)| a.to_string())
            .collect()
    }

    #[test]
    fn miss_creates_a_one_member_set() {
        let mut l = list(&[1, 1]);
        l.0[0].active = 1;
        let mut s = sched(&l);
        assert_eq!(s.schedule(&l, &to(DST), 0), Some(1));
        assert_eq!(names(&s, DST), ["10.0.0.2"]);
        // Sticks while not lblc-overloaded, whatever wlc would say.
        l.0[1].active = 1;
        l.0[1].inactive = 100;
        assert_eq!(s.schedule(&l, &to(DST), 1), Some(1));
    }

    #[test]
    fn replicates_when_the_member_is_overloaded() {
        let mut l = list(&[1, 1, 4]);
        let mut s = sched(&l);
        assert_eq!(s.schedule(&l, &to(DST), 0), Some(0));
        l.0[0].active = 2; // > weight 1, and C is under half its weight
        assert_eq!(s.schedule(&l, &to(DST), 0), Some(1)); // wlc: B (0) before C (0)
        assert_eq!(names(&s, DST), ["10.0.0.2", "10.0.0.1"]);
        // Now the set's least loaded member is used: B.
        assert_eq!(s.schedule(&l, &to(DST), 0), Some(1));
        // B busy too: per weight A 512, B 768 -> A is the set's min, but A is
        // lblc-overloaded, so wlc over the service picks C and adds it.
        l.0[1].active = 3;
        assert_eq!(s.schedule(&l, &to(DST), 0), Some(2));
        assert_eq!(names(&s, DST), ["10.0.0.3", "10.0.0.2", "10.0.0.1"]);
        // Adding a server already in the set does not duplicate it.
        l.0[2].active = 3; // C 768/4 = 192 per weight, least of the set
        assert_eq!(s.schedule(&l, &to(DST), 0), Some(2));
        assert_eq!(names(&s, DST).len(), 3);
    }

    #[test]
    fn set_min_skips_overloaded_quiescent_and_removed() {
        let mut l = list(&[1, 1, 1]);
        let mut s = sched(&l);
        assert_eq!(s.schedule(&l, &to(DST), 0), Some(0));
        l.0[0].active = 2;
        assert_eq!(s.schedule(&l, &to(DST), 0), Some(1)); // set {B, A}
        l.0[0].active = 0;
        l.0[1].active = 1;
        assert_eq!(s.schedule(&l, &to(DST), 0), Some(0)); // min of {B, A}: A
        l.0[0].overloaded = true;
        assert_eq!(s.schedule(&l, &to(DST), 0), Some(1));
        l.0[0].overloaded = false;
        l.0[0].weight = 0;
        assert_eq!(s.schedule(&l, &to(DST), 0), Some(1));
        l.0[0].weight = 1;
        let a = l.0.remove(0);
        s.update(&l); // B C: A is not AVAILABLE
        assert_eq!(s.schedule(&l, &to(DST), 0), Some(0));
        l.0.insert(0, a);
        s.update(&l); // A revives
        assert_eq!(s.schedule(&l, &to(DST), 0), Some(0));
        assert_eq!(names(&s, DST), ["10.0.0.2", "10.0.0.1"]);
    }

    #[test]
    fn set_shrinks_after_expiration_without_change() {
        let mut l = list(&[1, 1, 4]);
        let mut s = Lblcr::with_params(64, 128, 10 * MIN);
        s.update(&l);
        assert_eq!(s.schedule(&l, &to(DST), 0), Some(0));
        l.0[0].active = 2;
        assert_eq!(s.schedule(&l, &to(DST), MIN), Some(1)); // {B, A}, lastmod 1 min
                                                            // Exactly at lastmod + expiration: not yet (strictly after).
        assert_eq!(s.schedule(&l, &to(DST), 11 * MIN), Some(1));
        assert_eq!(names(&s, DST).len(), 2);
        // After: the busiest (A, 512 per weight) goes; B is still used.
        assert_eq!(s.schedule(&l, &to(DST), 11 * MIN + 1), Some(1));
        assert_eq!(names(&s, DST), ["10.0.0.2"]);
        // A single member is never dropped.
        assert_eq!(s.schedule(&l, &to(DST), 100 * MIN), Some(1));
        assert_eq!(names(&s, DST), ["10.0.0.2"]);
    }

    #[test]
    fn shrink_happens_even_if_it_drops_the_chosen_member() {
        // The kernel picks the min before trimming; with equal loads the
        // first member is both min and max, and is still returned.
        let mut l = list(&[1, 1]);
        let mut s = Lblcr::with_params(64, 128, MIN);
        s.update(&l);
        assert_eq!(s.schedule(&l, &to(DST), 0), Some(0));
        l.0[0].active = 2;
        assert_eq!(s.schedule(&l, &to(DST), 0), Some(1)); // {B, A}
        l.0[0].active = 0;
        assert_eq!(s.schedule(&l, &to(DST), 2 * MIN), Some(1));
        assert_eq!(names(&s, DST), ["10.0.0.1"]);
    }

    #[test]
    fn gc_removes_idle_entries_and_frees_their_members() {
        let l = list(&[1, 1]);
        let mut s = Lblcr::with_params(4, 4, 10 * MIN);
        s.update(&l);
        s.tick(0);
        for i in 1..=4 {
            s.schedule(&l, &to(&format!("203.0.113.{i}")), 0);
        }
        assert_eq!(s.entries(), 4);
        // Table and pool are full: a fifth destination is served, not kept.
        assert_eq!(s.schedule(&l, &to("203.0.113.5"), 0), Some(0));
        assert_eq!(s.entries(), 4);
        for m in 1..=30 {
            s.tick(m * MIN);
        }
        assert_eq!(s.entries(), 0);
        // Members went back to the pool: four new sets fit again.
        for i in 1..=4 {
            s.schedule(&l, &to(&format!("203.0.113.{i}")), 31 * MIN);
            assert_eq!(names(&s, &format!("203.0.113.{i}")).len(), 1);
        }
    }

    #[test]
    fn exhausted_pool_serves_without_remembering() {
        let mut l = list(&[1, 1]);
        let mut s = Lblcr::with_params(8, 1, DEFAULT_EXPIRATION_MS);
        s.update(&l);
        assert_eq!(s.schedule(&l, &to(DST), 0), Some(0));
        l.0[0].active = 2;
        // B would join the set, but there is no member left.
        assert_eq!(s.schedule(&l, &to(DST), 0), Some(1));
        assert_eq!(names(&s, DST), ["10.0.0.1"]);
        // A second destination gets an entry with an empty set.
        assert_eq!(s.schedule(&l, &to("203.0.113.2"), 0), Some(1));
        assert_eq!(s.entries(), 2);
        assert_eq!(names(&s, "203.0.113.2"), Vec::<String>::new());
        l.0[0].active = 0;
        assert_eq!(s.schedule(&l, &to("203.0.113.2"), 0), Some(0));
    }

    #[test]
    fn wlc_choosing_a_member_does_not_duplicate_it() {
        // C only makes A and B "lblc-overloaded" (it is under half its
        // weight) but is never chosen: its OVERLOAD flag is set.
        let mut l = list(&[1, 1, 4]);
        l.0[2].overloaded = true;
        let mut s = Lblcr::with_params(64, 128, 10 * MIN);
        s.update(&l);
        assert_eq!(s.schedule(&l, &to(DST), 0), Some(0));
        l.0[0].active = 2;
        assert_eq!(s.schedule(&l, &to(DST), MIN), Some(1)); // {B, A}
        l.0[1].active = 2;
        // Set min is B (first of equals), overloaded; wlc over the service
        // picks A, already a member: no duplicate, and no modification.
        assert_eq!(s.schedule(&l, &to(DST), 5 * MIN), Some(0));
        assert_eq!(names(&s, DST), ["10.0.0.2", "10.0.0.1"]);
        // lastmod is still 1 min: the set shrinks after 11 min, not 15.
        assert_eq!(s.schedule(&l, &to(DST), 11 * MIN + 1), Some(0));
        assert_eq!(names(&s, DST).len(), 1);
    }

    #[test]
    fn quiescent_members_in_set_min_and_set_max() {
        let mut l = list(&[1, 1, 4]);
        let mut s = Lblcr::with_params(64, 128, 10 * MIN);
        s.update(&l);
        assert_eq!(s.schedule(&l, &to(DST), 0), Some(0));
        l.0[0].active = 2;
        assert_eq!(s.schedule(&l, &to(DST), 0), Some(1)); // {B, A}
                                                          // B, first in the set and idle, is quiescent: min must skip it
                                                          // rather than seed the search with it.
        l.0[1].weight = 0;
        l.0[0].active = 1;
        assert_eq!(s.schedule(&l, &to(DST), MIN), Some(0));
        // Shrinking ignores weight-0 members even when they are the
        // busiest: A goes, the quiescent B stays.
        l.0[1].active = 100;
        assert_eq!(s.schedule(&l, &to(DST), 11 * MIN), Some(0));
        assert_eq!(names(&s, DST), ["10.0.0.2"]);
    }

    #[test]
    fn full_table_returns_the_member_it_took() {
        let mut l = list(&[1, 1]);
        let mut s = Lblcr::with_params(1, 2, DEFAULT_EXPIRATION_MS);
        s.update(&l);
        assert_eq!(s.schedule(&l, &to(DST), 0), Some(0));
        for i in 2..10 {
            // No room in the table: served, nothing kept, member returned.
            assert_eq!(s.schedule(&l, &to(&format!("203.0.113.{i}")), 0), Some(0));
        }
        // So the one set can still grow.
        l.0[0].active = 2;
        assert_eq!(s.schedule(&l, &to(DST), 0), Some(1));
        assert_eq!(names(&s, DST), ["10.0.0.2", "10.0.0.1"]);
    }

    #[test]
    fn nothing_usable_is_no_destination() {
        let mut l = list(&[0, 1]);
        l.0[1].overloaded = true;
        let mut s = sched(&l);
        assert_eq!(s.schedule(&l, &to(DST), 0), None);
        assert_eq!(s.entries(), 0);
    }
}
