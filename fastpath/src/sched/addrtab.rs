//! The per-service table of lblc and lblcr: destination address -> entry,
//! with the kernel's bucket layout and garbage collector.
//!
//! The kernel allocates an entry per new destination (GFP_ATOMIC) and lets
//! the table grow without bound, trimming it from a 60 s timer. A data-plane
//! core must not allocate, so the entries live in a slab preallocated at
//! creation; when it is full a new destination is simply not remembered,
//! which is the kernel's own path when its allocation fails. The buckets
//! are the kernel's 1024 `hash_32(addr, 10)` chains because the collector
//! walks them from a rover and stops after the bucket where its goal is
//! met: which entries survive a partial pass depends on that order.

use super::hash::{fold_addr, hash_32};
use super::{Ident, NONE};
use core::net::{IpAddr, Ipv4Addr};

/// `CONFIG_IP_VS_LBLC_TAB_BITS` / `CONFIG_IP_VS_LBLCR_TAB_BITS`.
pub const TAB_BITS: u32 = 10;
pub const TAB_SIZE: usize = 1 << TAB_BITS;
const TAB_MASK: usize = TAB_SIZE - 1;
/// Above this many entries the timer starts evicting idle ones.
pub const MAX_SIZE: usize = TAB_SIZE * 16;
/// Preallocated entries: room above the GC threshold so a burst of new
/// destinations between two timer runs is still remembered.
pub const DEFAULT_CAPACITY: usize = 2 * MAX_SIZE;
pub const CHECK_EXPIRE_INTERVAL_MS: u64 = 60_000;
/// Idle time after which an entry may go when the table is over MAX_SIZE.
pub const ENTRY_TIMEOUT_MS: u64 = 6 * 60_000;
/// Default of the lblc_expiration / lblcr_expiration sysctls.
pub const DEFAULT_EXPIRATION_MS: u64 = 24 * 3_600_000;
/// Timer runs without a partial pass before a full expiration scan.
pub const COUNT_FOR_FULL_EXPIRATION: u32 = 30;

/// A remembered real server. The identity outlives the server's place in
/// the list: the kernel holds a reference to a deleted dest, which stays
/// unavailable until re-added (revived from the trash), and then counts
/// again. `idx` is its current index, or NONE while it is not in the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DestRef {
    pub id: Ident,
    pub idx: u32,
}

impl DestRef {
    pub const EMPTY: DestRef = DestRef {
        id: (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        idx: NONE,
    };
}

#[derive(Clone, Copy)]
struct Slot<V> {
    key: IpAddr,
    lastuse: u64,
    next: u32,
    val: V,
}

/// No Debug: tens of thousands of slots are not worth printing.
#[derive(Clone)]
pub(crate) struct AddrTable<V> {
    heads: Box<[u32]>,
    slots: Box<[Slot<V>]>,
    free: u32,
    entries: usize,
    rover: usize,
    counter: u32,
    next_gc: Option<u64>,
}

fn bucket(key: IpAddr) -> usize {
    hash_32(fold_addr(key), TAB_BITS) as usize & TAB_MASK
}

impl<V: Copy> AddrTable<V> {
    pub fn new(capacity: usize, blank: V) -> AddrTable<V> {
        let capacity = capacity.min(NONE as usize - 1);
        let slots: Vec<Slot<V>> = (0..capacity)
            .map(|i| Slot {
                key: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                lastuse: 0,
                next: if i + 1 < capacity {
                    (i + 1) as u32
                } else {
                    NONE
                },
                val: blank,
            })
            .collect();
        AddrTable {
            heads: vec![NONE; TAB_SIZE].into_boxed_slice(),
            slots: slots.into_boxed_slice(),
            free: if capacity > 0 { 0 } else { NONE },
            entries: 0,
            rover: 0,
            counter: 1,
            next_gc: None,
        }
    }

    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn find(&self, key: IpAddr) -> Option<u32> {
        let mut s = *self.heads.get(bucket(key))?;
        while let Some(slot) = self.slots.get(s as usize) {
            if slot.key == key {
                return Some(s);
            }
            s = slot.next;
        }
        None
    }

    /// A new entry at the head of its bucket (as `hlist_add_head`); None
    /// when every preallocated slot is in use.
    pub fn insert(&mut self, key: IpAddr, now: u64, val: V) -> Option<u32> {
        let s = self.free;
        let b = bucket(key);
        let head = *self.heads.get(b)?;
        let slot = self.slots.get_mut(s as usize)?;
        self.free = slot.next;
        *slot = Slot {
            key,
            lastuse: now,
            next: head,
            val,
        };
        self.heads[b] = s;
        self.entries += 1;
        Some(s)
    }

    pub fn touch(&mut self, s: u32, now: u64) {
        if let Some(slot) = self.slots.get_mut(s as usize) {
            slot.lastuse = now;
        }
    }

    pub fn val(&self, s: u32) -> Option<&V> {
        self.slots.get(s as usize).map(|x| &x.val)
    }

    pub fn val_mut(&mut self, s: u32) -> Option<&mut V> {
        self.slots.get_mut(s as usize).map(|x| &mut x.val)
    }

    /// Every live entry's value (control path: remapping after a list change).
    pub fn for_each_mut(&mut self, mut f: impl FnMut(&mut V)) {
        for b in 0..TAB_SIZE {
            let mut s = self.heads[b];
            while let Some(slot) = self.slots.get_mut(s as usize) {
                f(&mut slot.val);
                s = slot.next;
            }
        }
    }

    /// Remove the entries of bucket `b` for which `dead(lastuse)` holds,
    /// handing each value to `release` first; returns how many went.
    fn sweep(
        &mut self,
        b: usize,
        dead: impl Fn(u64) -> bool,
        release: &mut impl FnMut(&V),
    ) -> usize {
        let mut removed = 0;
        let mut prev = NONE;
        let mut s = self.heads[b];
        while (s as usize) < self.slots.len() {
            let Slot { lastuse, next, .. } = self.slots[s as usize];
            if dead(lastuse) {
                release(&self.slots[s as usize].val);
                if prev == NONE {
                    self.heads[b] = next;
                } else {
                    self.slots[prev as usize].next = next;
                }
                self.slots[s as usize].next = self.free;
                self.free = s;
                self.entries -= 1;
                removed += 1;
            } else {
                prev = s;
            }
            s = next;
        }
        removed
    }

    /// The kernel's periodic timer (`ip_vs_lblc_check_expire`). The first
    /// call only starts the clock; afterwards a run happens every
    /// CHECK_EXPIRE_INTERVAL_MS. Each run either scans the whole table for
    /// entries idle at least `expiration` (every 30th run unless partial
    /// passes intervened), or, when over MAX_SIZE entries, removes entries
    /// idle at least ENTRY_TIMEOUT_MS bucket by bucket until about 4/3 of
    /// the excess (at most MAX_SIZE/2) went. `release` sees every removed
    /// value (lblcr frees its server set).
    pub fn tick(&mut self, now: u64, expiration: u64, mut release: impl FnMut(&V)) {
        match self.next_gc {
            None => {
                self.next_gc = Some(now.saturating_add(CHECK_EXPIRE_INTERVAL_MS));
                return;
            }
            Some(t) if now < t => return,
            Some(_) => self.next_gc = Some(now.saturating_add(CHECK_EXPIRE_INTERVAL_MS)),
        }
        if self.counter.is_multiple_of(COUNT_FOR_FULL_EXPIRATION) {
            let mut j = self.rover;
            for _ in 0..TAB_SIZE {
                j = (j + 1) & TAB_MASK;
                self.sweep(
                    j,
                    |last| now >= last.saturating_add(expiration),
                    &mut release,
                );
            }
            self.rover = j;
            self.counter = 1;
            return;
        }
        if self.entries <= MAX_SIZE {
            self.counter += 1;
            return;
        }
        let goal = ((self.entries - MAX_SIZE) * 4 / 3).min(MAX_SIZE / 2);
        let mut removed = 0;
        let mut j = self.rover;
        for _ in 0..TAB_SIZE {
            j = (j + 1) & TAB_MASK;
            removed += self.sweep(
                j,
                |last| now >= last.saturating_add(ENTRY_TIMEOUT_MS),
                &mut release,
            );
            if removed >= goal {
                break;
            }
        }
        self.rover = j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(i: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
    }

    #[test]
    fn insert_find_and_capacity() {
        let mut t = AddrTable::new(3, 0u32);
        for i in 0..3 {
            assert!(t.insert(addr(i), 0, i).is_some());
        }
        assert_eq!(t.insert(addr(9), 0, 9), None);
        assert_eq!(t.len(), 3);
        for i in 0..3 {
            assert_eq!(t.val(t.find(addr(i)).unwrap()), Some(&i));
        }
        assert_eq!(t.find(addr(9)), None);
        let empty = AddrTable::new(0, 0u32);
        assert_eq!(empty.find(addr(0)), None);
    }

    #[test]
    fn same_bucket_chains() {
        // 1024 buckets: 2000 keys must share some.
        let mut t = AddrTable::new(2000, 0u32);
        for i in 0..2000 {
            t.insert(addr(i * 7), 0, i).unwrap();
        }
        for i in 0..2000 {
            assert_eq!(t.val(t.find(addr(i * 7)).unwrap()), Some(&i));
        }
    }

    #[test]
    fn timer_runs_every_minute_after_the_first_tick() {
        let mut t = AddrTable::new(4, 0u32);
        t.insert(addr(1), 0, 1).unwrap();
        let exp = 10 * 60_000;
        let mut released = Vec::new();
        t.tick(0, exp, |v| released.push(*v)); // starts the clock
        t.tick(59_999, exp, |v| released.push(*v)); // first run due at 60 s
        assert_eq!(t.counter, 1);
        // Runs 1..=29 only count; run 30 (at 30 min) is the full scan.
        for m in 1..30 {
            t.tick(m * 60_000, exp, |v| released.push(*v));
            t.tick(m * 60_000 + 59_999, exp, |v| released.push(*v)); // not yet due
        }
        assert_eq!(t.len(), 1);
        assert_eq!(t.counter, 30);
        t.tick(30 * 60_000, exp, |v| released.push(*v));
        assert_eq!(t.len(), 0);
        assert_eq!(released, [1]);
        assert_eq!(t.counter, 1);
    }
}
