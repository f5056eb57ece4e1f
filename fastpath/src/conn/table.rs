//! The table: a slab of cache-line slots, hash chains through them, and
//! the timer wheel's lists (in `wheel.rs`) through the same slots.

use super::addr::{Addr, ConnKey};
use super::entry::{flags, Conn};
use super::hash::{reduce, Seed};
use super::wheel::{clamp, Tick, Wheel, FREE};
use crate::io::BURST;
use core::fmt;
use core::net::Ipv4Addr;

/// End of a chain or list.
pub(super) const NIL: u32 = u32::MAX;

/// Slot indices stay below 2^31: the wheel's back links use the top bit.
pub const MAX_CAPACITY: usize = (1 << 31) - 1;

/// A connection's place in its table: valid until it is removed or expires.
/// Another table's ids are meaningless here (but never unsafe: a stale or
/// foreign id finds nothing, or some other live entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u32);

/// The table is full: the new connection is refused (counted in
/// [`ConnTable::refused`]); no established entry is ever evicted for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// One connection and its links: exactly one cache line for IPv4.
/// `bucket` is the head of hash bucket number *this slot's index*, not of
/// anything to do with the connection stored here (see the module docs of
/// `conn` for why).
#[derive(Clone, Copy)]
#[repr(align(64))]
pub(super) struct Slot<A> {
    pub(super) conn: Conn<A>,
    /// Next entry in the same hash chain; for a free slot, the next free.
    pub(super) hnext: u32,
    /// Timer-wheel list links (see `wheel.rs` for the encoding of `wprev`).
    pub(super) wnext: u32,
    pub(super) wprev: u32,
    pub(super) bucket: u32,
}

/// One worker's connections. Single-threaded by design: no locks, no
/// atomics; the worker that owns it is the only one to touch it.
///
/// All memory is allocated and written in [`new`](Self::new), so that no
/// later operation allocates or takes a page fault. Nothing on the
/// per-packet path (lookups, insert, touch, remove, expire) allocates,
/// locks, makes a system call or panics on any input.
pub struct ConnTable<A: Addr = Ipv4Addr> {
    /// `max(capacity, 1)` slots; also the number of hash buckets.
    pub(super) slots: Box<[Slot<A>]>,
    pub(super) capacity: u32,
    pub(super) len: u32,
    /// Head of the free list of recycled slots.
    free: u32,
    /// Slots from here on have never been used: listings stop here, and
    /// a lightly loaded table is listed without scanning its capacity.
    fresh: u32,
    /// Live entries with NO_CPORT; while zero, a miss is not retried.
    no_cport: u32,
    refused: u64,
    /// Bumped whenever a slot gains or loses an entry or an entry its
    /// hash key: see [`changes`](Self::changes).
    changes: u32,
    seed: Seed,
    pub(super) wheel: Wheel,
}

impl<A: Addr> fmt::Debug for ConnTable<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnTable")
            .field("len", &self.len)
            .field("capacity", &self.capacity)
            .field("refused", &self.refused)
            .finish_non_exhaustive()
    }
}

impl<A: Addr> ConnTable<A> {
    /// A table for up to `capacity` connections (the config's
    /// `max_connections / workers`). `seed` keys the bucket hash: give each
    /// table a random one, or floods can be aimed at one bucket.
    ///
    /// # Panics
    /// If `capacity` exceeds [`MAX_CAPACITY`], or memory runs out.
    pub fn new(capacity: usize, seed: u64) -> Self {
        Self::with_memory_advice(capacity, seed, |_, _| {})
    }

    /// [`new`](Self::new), first showing `advise` the slot memory (start,
    /// bytes) while it is allocated but not yet written. A table of
    /// millions of connections on 4 KiB pages misses the TLB on nearly
    /// every lookup; the daemon passes a closure that asks for transparent
    /// huge pages (`madvise(MADV_HUGEPAGE)` on the 2 MiB-aligned part of
    /// the range), which `fastpath` cannot call without `unsafe`.
    pub fn with_memory_advice(
        capacity: usize,
        seed: u64,
        advise: impl FnOnce(*const u8, usize),
    ) -> Self {
        assert!(
            capacity <= MAX_CAPACITY,
            "connection table capacity {capacity} above {MAX_CAPACITY}"
        );
        let empty = Slot {
            conn: Conn::new(
                ConnKey::new(0, A::UNSPECIFIED, 0, A::UNSPECIFIED, 0),
                A::UNSPECIFIED,
                0,
            ),
            hnext: NIL,
            wnext: NIL,
            wprev: FREE,
            bucket: NIL,
        };
        let n = capacity.max(1);
        let mut slots: Vec<Slot<A>> = Vec::with_capacity(n);
        advise(slots.as_ptr().cast(), n * size_of::<Slot<A>>());
        // Writes every slot now, so the packet path never page-faults.
        slots.resize(n, empty);
        ConnTable {
            slots: slots.into_boxed_slice(),
            capacity: capacity as u32,
            len: 0,
            free: NIL,
            fresh: 0,
            no_cport: 0,
            refused: 0,
            changes: 0,
            seed: Seed::new(seed),
            wheel: Wheel::new(),
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    #[inline]
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }
    /// Inserts refused because the table was full, since creation.
    #[inline]
    pub fn refused(&self) -> u64 {
        self.refused
    }
    /// Bytes the table holds: its slots (connections and index) and the
    /// timer wheel.
    pub fn memory_bytes(&self) -> usize {
        core::mem::size_of_val(&*self.slots) + self.wheel.memory_bytes()
    }

    /// A counter that moves whenever an id may stop naming the entry a
    /// lookup found: an insert (a freed slot reused), a removal or expiry,
    /// a client port filled in. While it stands still, the ids of earlier
    /// lookups still hold their entries, which still match their keys;
    /// that holds as long as nobody changes an entry's virtual address or
    /// port through [`get_mut`](Self::get_mut) (nothing on the packet path
    /// does; only a template's invalidation would).
    #[inline]
    pub fn changes(&self) -> u32 {
        self.changes
    }

    #[inline]
    pub(super) fn live(&self, id: ConnId) -> Option<usize> {
        let i = id.0 as usize;
        match self.slots.get(i) {
            Some(s) if s.wprev != FREE => Some(i),
            _ => None,
        }
    }

    #[inline]
    pub fn get(&self, id: ConnId) -> Option<&Conn<A>> {
        self.live(id).map(|i| &self.slots[i].conn)
    }

    /// Writable access to everything but the hash key and the expiry.
    /// Change `timeout` and then [`touch`](Self::touch) to restart the
    /// timer with it.
    #[inline]
    pub fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn<A>> {
        self.live(id).map(|i| &mut self.slots[i].conn)
    }

    #[inline(always)]
    fn bucket_of(&self, proto: u8, caddr: A, cport: u16) -> usize {
        reduce(self.seed.hash(proto, caddr, cport), self.slots.len() as u32)
    }

    /// Hash buckets: as many as slots.
    #[inline]
    pub fn buckets(&self) -> usize {
        self.slots.len()
    }

    /// The bucket a client endpoint's entries hash to.
    #[inline]
    pub fn bucket_index(&self, proto: u8, caddr: A, cport: u16) -> usize {
        self.bucket_of(proto, caddr, cport)
    }

    /// Calls `f` for each entry of bucket `b` (none if `b` is out of
    /// range): the overload defences' scans visit the table by bucket, as
    /// the kernel's drop_entry does.
    pub fn bucket(&self, b: usize, mut f: impl FnMut(ConnId, &Conn<A>)) {
        let Some(head) = self.slots.get(b) else {
            return;
        };
        let mut i = head.bucket;
        while i != NIL {
            let s = &self.slots[i as usize];
            f(ConnId(i), &s.conn);
            i = s.hnext;
        }
    }

    /// Adds an entry, expiring at `now + conn.timeout`. Duplicates are not
    /// checked (IPVS does not either): callers look up first. New entries
    /// go to the head of their chain, so after a connection reuse the new
    /// entry shadows the old one until that expires. Set NO_CPORT, if at
    /// all, before inserting.
    pub fn insert(&mut self, mut conn: Conn<A>, now: Tick) -> Result<ConnId, Full> {
        if self.len >= self.capacity {
            self.refused += 1;
            return Err(Full);
        }
        self.changes = self.changes.wrapping_add(1);
        let i = if self.free != NIL {
            let i = self.free;
            self.free = self.slots[i as usize].hnext;
            i
        } else {
            self.fresh += 1;
            self.fresh - 1
        };
        conn.expires = now.wrapping_add(clamp(conn.timeout));
        if conn.flags & flags::NO_CPORT != 0 {
            self.no_cport += 1;
        }
        let b = self.bucket_of(conn.proto(), conn.caddr(), conn.cport());
        let at = conn.expires;
        let head = self.slots[b].bucket;
        let s = &mut self.slots[i as usize];
        s.conn = conn;
        s.hnext = head;
        self.slots[b].bucket = i;
        self.len += 1;
        self.wheel_link(i as usize, at);
        Ok(ConnId(i))
    }

    /// Removes an entry now and returns it; `None` if `id` is not live.
    /// The caller settles what the entry held (server counters, the
    /// controlling template's `n_control`), as for an expired one.
    pub fn remove(&mut self, id: ConnId) -> Option<Conn<A>> {
        let i = self.live(id)?;
        self.wheel_unlink(i);
        self.hash_unlink(i);
        Some(self.release(i))
    }

    /// Gives an entry that is out of both indexes back to the free list.
    pub(super) fn release(&mut self, i: usize) -> Conn<A> {
        self.changes = self.changes.wrapping_add(1);
        let s = &mut self.slots[i];
        s.wprev = FREE;
        s.hnext = self.free;
        self.free = i as u32;
        self.len -= 1;
        if s.conn.flags & flags::NO_CPORT != 0 {
            self.no_cport = self.no_cport.saturating_sub(1);
        }
        s.conn
    }

    pub(super) fn hash_unlink(&mut self, i: usize) {
        let c = &self.slots[i].conn;
        let b = self.bucket_of(c.proto(), c.caddr(), c.cport());
        let next = self.slots[i].hnext;
        let mut at = self.slots[b].bucket;
        if at == i as u32 {
            self.slots[b].bucket = next;
            return;
        }
        while at != NIL {
            let s = &mut self.slots[at as usize];
            if s.hnext == i as u32 {
                s.hnext = next;
                return;
            }
            at = s.hnext;
        }
    }

    /// Gives a NO_CPORT entry (FTP NAT data) the client port its first
    /// packet brought, and rehashes it (IPVS `ip_vs_conn_fill_cport`).
    /// Returns false if `id` is not live or has no NO_CPORT flag.
    ///
    /// The new port may give the connection another owner core; moving it
    /// there is the caller's business.
    pub fn fill_cport(&mut self, id: ConnId, cport: u16) -> bool {
        let Some(i) = self.live(id) else {
            return false;
        };
        if self.slots[i].conn.flags & flags::NO_CPORT == 0 {
            return false;
        }
        self.changes = self.changes.wrapping_add(1);
        self.hash_unlink(i);
        let c = &mut self.slots[i].conn;
        c.flags &= !flags::NO_CPORT;
        c.cport = cport;
        let (proto, caddr) = (c.proto, c.caddr);
        let b = self.bucket_of(proto, caddr, cport);
        self.slots[i].hnext = self.slots[b].bucket;
        self.slots[b].bucket = i as u32;
        self.no_cport = self.no_cport.saturating_sub(1);
        true
    }

    #[inline(always)]
    fn walk(&self, mut i: u32, m: impl Fn(&Conn<A>) -> bool) -> Option<ConnId> {
        while i != NIL {
            let s = &self.slots[i as usize];
            if m(&s.conn) {
                return Some(ConnId(i));
            }
            i = s.hnext;
        }
        None
    }

    #[inline(always)]
    fn head(&self, proto: u8, caddr: A, cport: u16) -> u32 {
        self.slots[self.bucket_of(proto, caddr, cport)].bucket
    }

    /// The connection of a client→director packet: `k.src:k.sport` the
    /// client, `k.dst:k.dport` the virtual service (IPVS
    /// `ip_vs_conn_in_get`). Templates never match; while NO_CPORT entries
    /// exist, a miss is retried with client port 0, as in IPVS.
    #[inline]
    pub fn lookup_in(&self, k: &ConnKey<A>) -> Option<ConnId> {
        let h = self.head(k.proto, k.src, k.sport);
        self.walk(h, |c| c.matches_in(k))
            .or_else(|| self.retry_no_cport(k))
    }

    #[inline]
    fn retry_no_cport(&self, k: &ConnKey<A>) -> Option<ConnId> {
        if self.no_cport == 0 || k.sport == 0 {
            return None;
        }
        let k0 = ConnKey { sport: 0, ..*k };
        self.walk(self.head(k.proto, k.src, 0), |c| c.matches_in(&k0))
    }

    /// The connection of a director-bound reply: `k.src:k.sport` the real
    /// server (NAT) or the VIP (other methods), `k.dst:k.dport` the
    /// client (IPVS `ip_vs_conn_out_get`).
    #[inline]
    pub fn lookup_out(&self, k: &ConnKey<A>) -> Option<ConnId> {
        let h = self.head(k.proto, k.dst, k.dport);
        self.walk(h, |c| c.matches_out(k))
    }

    /// A valid persistence template (IPVS `ip_vs_ct_in_get`): client
    /// network `snet`, no client port, and not invalidated. For a fwmark
    /// service, `proto` is 0 and `vaddr` the mark.
    #[inline]
    pub fn lookup_template(&self, proto: u8, snet: A, vaddr: A, vport: u16) -> Option<ConnId> {
        let h = self.head(proto, snet, 0);
        self.walk(h, |c| c.matches_template(proto, snet, vaddr, vport))
    }

    /// [`lookup_in`](Self::lookup_in) for a burst: `out[i]` for `keys[i]`,
    /// for the first `min(keys.len(), out.len())` keys.
    ///
    /// Done in stages over up to [`BURST`] keys, as DPDK's
    /// `rte_hash_lookup_bulk`: hash every key and prefetch its bucket
    /// head, then read the heads and prefetch each chain's first entry,
    /// then compare those entries, then walk what is left. A stage's
    /// prefetches do not depend on each other, so the CPU has a whole
    /// burst's cache misses in flight at once instead of one after
    /// another, and by the time a stage reads a line the one before
    /// started loading it, a burst's worth of work earlier. (The hints
    /// come from the `prefetch` crate: `fastpath` forbids `unsafe`.)
    pub fn lookup_in_burst(&self, keys: &[ConnKey<A>], out: &mut [Option<ConnId>]) {
        self.burst::<false>(keys, out);
    }

    /// [`lookup_out`](Self::lookup_out) for a burst, as
    /// [`lookup_in_burst`](Self::lookup_in_burst).
    pub fn lookup_out_burst(&self, keys: &[ConnKey<A>], out: &mut [Option<ConnId>]) {
        self.burst::<true>(keys, out);
    }

    #[inline(always)]
    fn burst<const OUT: bool>(&self, keys: &[ConnKey<A>], out: &mut [Option<ConnId>]) {
        let matches = |c: &Conn<A>, k: &ConnKey<A>| {
            if OUT {
                c.matches_out(k)
            } else {
                c.matches_in(k)
            }
        };
        for (keys, out) in keys.chunks(BURST).zip(out.chunks_mut(BURST)) {
            let mut at = [NIL; BURST];
            // 1: bucket numbers, and their heads on the way.
            for (a, k) in at.iter_mut().zip(keys) {
                let b = if OUT {
                    self.bucket_of(k.proto, k.dst, k.dport)
                } else {
                    self.bucket_of(k.proto, k.src, k.sport)
                };
                prefetch::read(&self.slots[b]);
                *a = b as u32;
            }
            let n = keys.len().min(out.len());
            // 2: bucket heads, and the chains' first entries on the way.
            for a in &mut at[..n] {
                *a = self.slots[*a as usize].bucket;
                if let Some(s) = self.slots.get(*a as usize) {
                    prefetch::read(s);
                }
            }
            // 3: the first entry of each chain; at load factor ≤ 1 most
            // lookups end here.
            for ((a, k), o) in at.iter_mut().zip(keys).zip(out.iter_mut()) {
                *o = None;
                if *a != NIL {
                    let s = &self.slots[*a as usize];
                    if matches(&s.conn, k) {
                        *o = Some(ConnId(*a));
                        *a = NIL;
                    } else {
                        *a = s.hnext;
                    }
                }
            }
            // 4: the rest of the chains, one key at a time.
            for ((a, k), o) in at.iter().zip(keys).zip(out.iter_mut()) {
                if *a != NIL {
                    *o = self.walk(*a, |c| matches(c, k));
                }
            }
            if !OUT && self.no_cport != 0 {
                for (k, o) in keys.iter().zip(out.iter_mut()) {
                    if o.is_none() {
                        *o = self.retry_no_cport(k);
                    }
                }
            }
        }
    }

    /// One page of a listing: calls `f` for each live entry among the next
    /// `max` slots from `cursor` (start at 0), and returns the cursor to
    /// continue from, or `None` at the end. The work per call is bounded
    /// by `max` whatever the table holds, so a worker can serve listings
    /// of millions between bursts. Like `/proc/net/ip_vs_conn`, a listing
    /// taken while traffic flows sees each entry that lives throughout
    /// exactly once, and may or may not see those created or removed
    /// meanwhile.
    pub fn page(
        &self,
        cursor: u32,
        max: usize,
        mut f: impl FnMut(ConnId, &Conn<A>),
    ) -> Option<u32> {
        let end = self.fresh as usize;
        let start = (cursor as usize).min(end);
        let stop = start.saturating_add(max).min(end);
        for (i, s) in self.slots[start..stop].iter().enumerate() {
            if s.wprev != FREE {
                f(ConnId((start + i) as u32), &s.conn);
            }
        }
        (stop < end).then_some(stop as u32)
    }
}

#[cfg(test)]
impl<A: Addr> ConnTable<A> {
    /// The bucket a client endpoint hashes to (tests force collisions).
    pub(super) fn bucket_for(&self, proto: u8, caddr: A, cport: u16) -> usize {
        self.bucket_of(proto, caddr, cport)
    }
    pub(super) fn chain_len(&self, b: usize) -> usize {
        let mut n = 0;
        let mut i = self.slots[b].bucket;
        while i != NIL {
            n += 1;
            i = self.slots[i as usize].hnext;
        }
        n
    }
}
