//! Single-producer, single-consumer mbuf rings between two threads.
//!
//! The ring is created lock-free for one producer and one consumer
//! (`RING_F_SP_ENQ | RING_F_SC_DEQ`). Its two ends are separate handles that are
//! `Send` but neither `Clone` nor `Sync`, so each is used by one thread at a time and
//! the type system keeps the ring at one producer and one consumer.

use std::ffi::{c_int, c_void, CString};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use arrayvec::ArrayVec;

use crate::eal::{self, LIVE_OBJECTS};
use crate::{raw, Error, Mbuf};

/// The shared ring behind a [`RingTx`]/[`RingRx`] pair; freed, with any mbufs still
/// in it, when both ends are gone.
pub struct MbufRing(NonNull<raw::rte_ring>);

// SAFETY: the ring lives in EAL shared memory, and MbufRing itself only frees it,
// from whichever thread drops the last end.
unsafe impl Send for MbufRing {}
// SAFETY: MbufRing has no methods through &self; the ends do the bursting.
unsafe impl Sync for MbufRing {}

/// The producer end: the only one allowed to enqueue.
pub struct RingTx {
    r: NonNull<raw::rte_ring>,
    _ring: Arc<MbufRing>,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

/// The consumer end: the only one allowed to dequeue.
pub struct RingRx {
    r: NonNull<raw::rte_ring>,
    _ring: Arc<MbufRing>,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

// SAFETY: an end is a unique handle (not Clone) and not Sync, so wherever it moves
// only one thread at a time can burst through it: the ring keeps a single producer
// and a single consumer.
unsafe impl Send for RingTx {}
// SAFETY: as for RingTx.
unsafe impl Send for RingRx {}

/// Creates a ring of `count` slots (a power of two; `count - 1` usable) on `socket`
/// and returns its two ends, like a channel.
pub fn create(name: &str, count: u32, socket: i32) -> Result<(RingTx, RingRx), Error> {
    const OP: &str = "rte_ring_create";
    let _up = eal::hold(OP)?;
    let cname = CString::new(name).map_err(|_| Error::new(OP, raw::EINVAL as c_int))?;
    let flags = raw::RING_F_SP_ENQ | raw::RING_F_SC_DEQ;
    // SAFETY: cname is a valid C string for the call; DPDK validates count.
    let r = unsafe { raw::rte_ring_create(cname.as_ptr(), count, socket, flags) };
    let r = NonNull::new(r).ok_or_else(|| Error::last(OP))?;
    LIVE_OBJECTS.fetch_add(1, Ordering::AcqRel);
    let ring = Arc::new(MbufRing(r));
    let tx = RingTx {
        r,
        _ring: ring.clone(),
        _not_sync: PhantomData,
    };
    let rx = RingRx {
        r,
        _ring: ring,
        _not_sync: PhantomData,
    };
    Ok((tx, rx))
}

impl MbufRing {
    /// Same as [`create`], for callers who name the type.
    #[allow(clippy::new_ret_no_self)] // the ring is only ever used through its ends
    pub fn create(name: &str, count: u32, socket: i32) -> Result<(RingTx, RingRx), Error> {
        create(name, count, socket)
    }
}

/// Mbufs in the ring: a snapshot, since the other end moves concurrently.
fn count(r: NonNull<raw::rte_ring>) -> usize {
    // SAFETY: the ring is live (the caller's end holds it); the count is two loads.
    unsafe { raw::ripvs_ring_count(r.as_ptr()) as usize }
}

/// Dequeues at most `max` into the free capacity of `out`; returns how many came out.
///
/// # Safety
/// The caller must be the ring's only consumer for the duration of the call.
#[inline]
unsafe fn sc_dequeue<const N: usize>(
    r: NonNull<raw::rte_ring>,
    out: &mut ArrayVec<Mbuf, N>,
    max: usize,
) -> usize {
    let room = out.remaining_capacity().min(max).min(u32::MAX as usize);
    if room == 0 {
        return 0;
    }
    let len = out.len();
    // SAFETY: single consumer by this function's contract; the `room` slots after len
    // are within capacity, and the ring writes there `got` mbuf pointers, each put in
    // by the producer end from an owned Mbuf, before they are counted.
    unsafe {
        let slots = out.as_mut_ptr().add(len).cast::<*mut c_void>();
        let got =
            raw::ripvs_ring_sc_dequeue_burst(r.as_ptr(), slots, room as u32, std::ptr::null_mut())
                as usize;
        out.set_len(len + got);
        got
    }
}

impl RingTx {
    /// Enqueues from the front of `pkts` as many as fit: those leave `pkts` (the ring
    /// owns them now) and the rest stay in order. Returns how many went in.
    #[inline]
    pub fn enqueue_burst<const N: usize>(&self, pkts: &mut ArrayVec<Mbuf, N>) -> usize {
        let len = pkts.len().min(u32::MAX as usize);
        if len == 0 {
            return 0;
        }
        let base = pkts.as_mut_ptr();
        // SAFETY: this end is the ring's only producer and, not being Sync, is used by
        // one thread at a time; base holds len valid mbuf pointers (Mbuf is
        // `rte_mbuf *`), the first `done` of which the ring now owns: they are
        // overwritten without being dropped, as in ethdev::tx_burst.
        unsafe {
            let objs = base.cast::<*mut c_void>();
            let done = raw::ripvs_ring_sp_enqueue_burst(
                self.r.as_ptr(),
                objs,
                len as u32,
                std::ptr::null_mut(),
            );
            let done = done as usize;
            if done > 0 {
                let total = pkts.len();
                pkts.set_len(0);
                std::ptr::copy(base.add(done), base, total - done);
                pkts.set_len(total - done);
            }
            done
        }
    }

    /// Mbufs waiting in the ring.
    pub fn len(&self) -> usize {
        count(self.r)
    }

    /// Whether the consumer has caught up.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RingRx {
    /// Dequeues into the free capacity of `out`; returns how many came out.
    #[inline]
    pub fn dequeue_burst<const N: usize>(&self, out: &mut ArrayVec<Mbuf, N>) -> usize {
        self.dequeue_burst_max(out, N)
    }

    /// Like [`RingRx::dequeue_burst`], but takes at most `max`.
    #[inline]
    pub fn dequeue_burst_max<const N: usize>(
        &self,
        out: &mut ArrayVec<Mbuf, N>,
        max: usize,
    ) -> usize {
        // SAFETY: this end is the ring's only consumer and, not being Sync, is used by
        // one thread at a time.
        unsafe { sc_dequeue(self.r, out, max) }
    }

    /// Mbufs waiting in the ring.
    pub fn len(&self) -> usize {
        count(self.r)
    }

    /// Whether there is nothing to dequeue.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for MbufRing {
    fn drop(&mut self) {
        let mut left: ArrayVec<Mbuf, 64> = ArrayVec::new();
        // SAFETY: both ends are gone (this was the last Arc), so this thread is the
        // only consumer.
        while unsafe { sc_dequeue(self.0, &mut left, 64) } > 0 {
            left.clear(); // frees the mbufs nobody dequeued
        }
        // SAFETY: the ring is empty and nothing else refers to it.
        unsafe { raw::rte_ring_free(self.0.as_ptr()) };
        LIVE_OBJECTS.fetch_sub(1, Ordering::AcqRel);
    }
}
