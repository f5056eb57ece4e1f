//! Expiry: a hashed timer wheel through the table's slots, re-armed lazily.
//!
//! Time is counted in ticks of 100 ms ([`TICKS_PER_SEC`]): finer than any
//! IPVS timeout needs (the shortest is 2 s, listings show seconds), and a
//! u32 tick counter wraps only every 13.6 years (comparisons are
//! wrap-safe all the same). The wheel has 16384 slots, one per tick,
//! so one revolution (27 min) holds every default state timeout (at most
//! 15 min): a connection sits in the slot of its expiry tick and is
//! visited once. Longer timeouts (persistence, `--set tcp 7200`) stay in
//! the slot of their tick modulo 16384 and are looked at once per
//! revolution until due. Memory: 64 KiB of list heads per table.
//!
//! Lazy re-arming: a packet only writes `expires` into its entry (a line
//! the packet has loaded anyway) instead of moving the entry between lists
//! (which would touch two neighbours' lines per packet). When a slot comes
//! due, entries whose `expires` moved on are re-linked at their new slot;
//! the others are handed to the caller. This needs the slot an entry sits
//! in to come due no later than its `expires`; so when `expires` moves
//! *earlier* (a state change to a shorter timeout, a few times per
//! connection) the entry is re-linked at once.
//!
//! Each list is doubly linked, so removing an entry is O(1); `wprev` holds
//! either the previous entry or, with [`HEAD`] set, the number of the list
//! the entry heads. Inserting at a list's head touches the previous head,
//! which is normally a connection created in the same 100 ms with the same
//! timeout, so still in cache.

use super::addr::Addr;
use super::entry::Conn;
use super::table::{ConnId, ConnTable, NIL};

/// Time in ticks since an arbitrary origin; wraps, compared with wrapping
/// arithmetic.
pub type Tick = u32;
pub const TICKS_PER_SEC: u32 = 10;
/// 100 ms ticks.
pub const TICK_MS: u32 = 1000 / TICKS_PER_SEC;
/// Slots of the wheel: ticks per revolution.
pub const WHEEL_SLOTS: usize = 1 << 14;
/// Longest timeout (3.4 years); longer ones are cut to it. Keeps every
/// expiry within half the tick range of the wheel's position, so that
/// wrapping comparisons are exact.
pub const MAX_TIMEOUT: Tick = 1 << 30;

/// Seconds to ticks, saturating at [`MAX_TIMEOUT`].
pub const fn secs(s: u32) -> Tick {
    let t = s.saturating_mul(TICKS_PER_SEC);
    if t > MAX_TIMEOUT {
        MAX_TIMEOUT
    } else {
        t
    }
}

#[inline]
pub(super) fn clamp(timeout: Tick) -> Tick {
    timeout.min(MAX_TIMEOUT)
}

/// `a` is strictly earlier than `b`.
#[inline]
fn before(a: Tick, b: Tick) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `wprev` of an entry that heads list `HEAD | n`.
pub(super) const HEAD: u32 = 1 << 31;
/// `wprev` of a slot holding no connection.
pub(super) const FREE: u32 = u32::MAX;
/// `wprev` of an entry out of the wheel while the expiry callback decides.
const DETACHED: u32 = u32::MAX - 1;
/// The list of entries taken from a due slot and not yet looked at: an
/// expiry pass that runs out of budget leaves them there for the next.
const PENDING: usize = WHEEL_SLOTS;
const MASK: usize = WHEEL_SLOTS - 1;

pub(super) struct Wheel {
    /// One list head per slot, and [`PENDING`]'s.
    heads: Box<[u32]>,
    /// The next tick whose slot has not been taken.
    cur: Tick,
}

impl Wheel {
    pub(super) fn new() -> Wheel {
        Wheel {
            heads: vec![NIL; WHEEL_SLOTS + 1].into_boxed_slice(),
            cur: 0,
        }
    }
    pub(super) fn memory_bytes(&self) -> usize {
        core::mem::size_of_val(&*self.heads)
    }
}

/// What to do with an entry whose time has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireAction {
    /// Unlink and free it.
    Remove,
    /// Keep it, with this new timeout from now: IPVS keeps an entry that
    /// still controls others for another 60 s at a time.
    Rearm(Tick),
}

/// What one [`ConnTable::expire`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpireReport {
    pub removed: u32,
    pub rearmed: u32,
    /// Entries found touched since they were linked, and moved on.
    pub postponed: u32,
    /// Everything due up to `now` has been handled; false when the budget
    /// ran out first (call again).
    pub done: bool,
}

impl<A: Addr> ConnTable<A> {
    /// Restarts an entry's timer: it expires at `now + timeout` unless
    /// touched again. Called for every packet. False if `id` is not live.
    #[inline]
    pub fn touch(&mut self, id: ConnId, now: Tick) -> bool {
        let Some(i) = self.live(id) else {
            return false;
        };
        let c = &mut self.slots[i].conn;
        let old = c.expires;
        c.expires = now.wrapping_add(clamp(c.timeout));
        if before(c.expires, old) {
            let at = c.expires;
            self.relink(i, at);
        }
        true
    }

    /// A timer brought forward (a shorter timeout): rare, so kept out of
    /// [`touch`](Self::touch), which then inlines into the packet path.
    #[cold]
    #[inline(never)]
    fn relink(&mut self, i: usize, at: Tick) {
        self.wheel_unlink(i);
        self.wheel_link(i, at);
    }

    /// Makes an entry due now, so that the next [`expire`](Self::expire)
    /// hands it to the caller's callback with everything else that expires
    /// (IPVS `ip_vs_conn_expire_now`, used for connection reuse and
    /// `expire_nodest_conn`). False if `id` is not live.
    pub fn expire_now(&mut self, id: ConnId, now: Tick) -> bool {
        let Some(i) = self.live(id) else {
            return false;
        };
        self.slots[i].conn.expires = now;
        self.wheel_unlink(i);
        self.wheel_link(i, now);
        true
    }

    /// Handles entries due at or before `now`, doing at most `max` units of
    /// work (one per slot passed, one per entry looked at), so a worker
    /// never stalls however much is due; what is left waits for the next
    /// call. `f` decides each due entry's fate; while it runs the entry is
    /// still in the hash table but out of the wheel.
    ///
    /// The wheel starts at tick 0; after a gap of more than a revolution
    /// it skips to the last revolution before `now`, which visits every
    /// slot once all the same.
    pub fn expire(
        &mut self,
        now: Tick,
        max: usize,
        mut f: impl FnMut(ConnId, &Conn<A>) -> ExpireAction,
    ) -> ExpireReport {
        let mut r = ExpireReport::default();
        let mut budget = max;
        if !before(now, self.wheel.cur) && now.wrapping_sub(self.wheel.cur) >= WHEEL_SLOTS as u32 {
            self.wheel.cur = now.wrapping_sub(WHEEL_SLOTS as u32 - 1);
        }
        while budget > 0 {
            let i = self.wheel.heads[PENDING];
            if i == NIL {
                if before(now, self.wheel.cur) {
                    break;
                }
                // Take the due slot whole: entries re-linked into it while
                // we go are then not seen twice.
                let slot = self.wheel.cur as usize & MASK;
                let h = core::mem::replace(&mut self.wheel.heads[slot], NIL);
                self.wheel.heads[PENDING] = h;
                if h != NIL {
                    self.slots[h as usize].wprev = HEAD | PENDING as u32;
                }
                self.wheel.cur = self.wheel.cur.wrapping_add(1);
                budget -= 1;
                continue;
            }
            budget -= 1;
            let i = i as usize;
            self.wheel_unlink(i);
            let expires = self.slots[i].conn.expires;
            if before(now, expires) {
                self.wheel_link(i, expires);
                r.postponed += 1;
                continue;
            }
            self.slots[i].wprev = DETACHED;
            match f(ConnId(i as u32), &self.slots[i].conn) {
                ExpireAction::Remove => {
                    self.hash_unlink(i);
                    self.release(i);
                    r.removed += 1;
                }
                ExpireAction::Rearm(timeout) => {
                    let c = &mut self.slots[i].conn;
                    c.timeout = timeout;
                    c.expires = now.wrapping_add(clamp(timeout));
                    let at = c.expires;
                    self.wheel_link(i, at);
                    r.rearmed += 1;
                }
            }
        }
        r.done = self.wheel.heads[PENDING] == NIL && before(now, self.wheel.cur);
        r
    }

    /// Links entry `i` into the slot of tick `at`, or of the next tick not
    /// yet taken if `at` is past.
    pub(super) fn wheel_link(&mut self, i: usize, at: Tick) {
        let at = if before(at, self.wheel.cur) {
            self.wheel.cur
        } else {
            at
        };
        let list = at as usize & MASK;
        let head = self.wheel.heads[list];
        let s = &mut self.slots[i];
        s.wnext = head;
        s.wprev = HEAD | list as u32;
        if head != NIL {
            self.slots[head as usize].wprev = i as u32;
        }
        self.wheel.heads[list] = i as u32;
    }

    pub(super) fn wheel_unlink(&mut self, i: usize) {
        let (prev, next) = (self.slots[i].wprev, self.slots[i].wnext);
        if next != NIL {
            self.slots[next as usize].wprev = prev;
        }
        // Only linked entries come here; `get_mut` keeps a broken link
        // from turning into a panic all the same.
        let at = if prev & HEAD != 0 {
            self.wheel.heads.get_mut((prev & !HEAD) as usize)
        } else {
            self.slots.get_mut(prev as usize).map(|s| &mut s.wnext)
        };
        if let Some(at) = at {
            *at = next;
        }
    }
}
