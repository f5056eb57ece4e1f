//! Packet-buffer pools.

use std::ffi::{c_int, CString};
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use arrayvec::ArrayVec;

use crate::eal::{self, LIVE_OBJECTS};
use crate::{raw, Error, Mbuf};

/// Data room for one standard frame plus DPDK's headroom (RTE_MBUF_DEFAULT_BUF_SIZE).
pub const DEFAULT_DATA_ROOM: u16 = raw::RTE_MBUF_DEFAULT_BUF_SIZE as u16;

/// An mbuf pool (rte_pktmbuf_pool_create). Clones share it, so workers and the rx
/// queues fed from it keep it alive; it is freed when the last clone goes.
#[derive(Clone)]
pub struct PktPool {
    /// Copy of the owner's pointer, so the per-packet paths skip the Arc indirection.
    mp: NonNull<raw::rte_mempool>,
    _owner: Arc<Owner>,
}

/// Frees the pool when the last [`PktPool`] clone drops.
struct Owner(NonNull<raw::rte_mempool>);

// SAFETY: Debian's default mempool ops (ring_mp_mc) are multi-producer/multi-consumer,
// and mbuf allocation from any thread is supported (non-EAL threads bypass the cache).
unsafe impl Send for PktPool {}
// SAFETY: as above; every operation through &PktPool is thread-safe in DPDK.
unsafe impl Sync for PktPool {}
// SAFETY: Owner only frees the pool, from whichever thread drops the last clone.
unsafe impl Send for Owner {}
// SAFETY: Owner has no methods taking &self.
unsafe impl Sync for Owner {}

impl PktPool {
    /// Creates a pool of `n_mbufs` mbufs (2^q - 1 is the most compact) with a per-lcore
    /// cache of `cache` and `data_room` bytes of buffer each, headroom included
    /// ([`DEFAULT_DATA_ROOM`] fits a standard frame).
    pub fn create(
        name: &str,
        n_mbufs: u32,
        cache: u32,
        data_room: u16,
        socket: i32,
    ) -> Result<PktPool, Error> {
        const OP: &str = "rte_pktmbuf_pool_create";
        let _up = eal::hold(OP)?;
        let cname = CString::new(name).map_err(|_| Error::new(OP, raw::EINVAL as c_int))?;
        // SAFETY: cname is a valid C string for the call; EAL is up (held above).
        let mp = unsafe {
            raw::rte_pktmbuf_pool_create(cname.as_ptr(), n_mbufs, cache, 0, data_room, socket)
        };
        let mp = NonNull::new(mp).ok_or_else(|| Error::last(OP))?;
        LIVE_OBJECTS.fetch_add(1, Ordering::AcqRel);
        Ok(PktPool {
            mp,
            _owner: Arc::new(Owner(mp)),
        })
    }

    /// Takes one mbuf, reset and empty; `None` when the pool is exhausted. Prefer
    /// [`PktPool::alloc_bulk`] on the fast path.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: self.mp is a live pool (kept by self._owner).
        let m = unsafe { raw::ripvs_pktmbuf_alloc(self.mp.as_ptr()) };
        // SAFETY: a freshly allocated mbuf has refcnt 1 and no other user.
        NonNull::new(m).map(|m| unsafe { Mbuf::from_raw(m) })
    }

    /// Appends exactly `n` reset, empty mbufs to `out`, or nothing (false) if the pool
    /// has fewer than `n` or `out` lacks room: DPDK's bulk calls are all-or-nothing.
    #[inline]
    pub fn alloc_bulk<const N: usize>(&self, out: &mut ArrayVec<Mbuf, N>, n: usize) -> bool {
        if n > out.remaining_capacity() {
            return false;
        }
        let len = out.len();
        // SAFETY: the n slots after len are within out's capacity; Mbuf has the layout
        // of `rte_mbuf *`, so DPDK writes n valid pointers there or nothing; only on
        // success are those slots counted as initialised.
        unsafe {
            let slots = out.as_mut_ptr().add(len).cast::<*mut raw::rte_mbuf>();
            if raw::ripvs_pktmbuf_alloc_bulk(self.mp.as_ptr(), slots, n as u32) != 0 {
                return false;
            }
            out.set_len(len + n);
        }
        true
    }

    /// Mbufs free in the pool, per-lcore caches included.
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is live; the count is a racy snapshot, which is documented.
        unsafe { raw::rte_mempool_avail_count(self.mp.as_ptr()) }
    }

    /// Mbufs out of the pool: held by the application, rings or driver queues.
    pub fn in_use(&self) -> u32 {
        // SAFETY: as in available().
        unsafe { raw::rte_mempool_in_use_count(self.mp.as_ptr()) }
    }

    /// The raw pool, for rte_eth_rx_queue_setup and other raw calls; it stays valid as
    /// long as this handle (or a clone) lives.
    pub fn as_ptr(&self) -> *mut raw::rte_mempool {
        self.mp.as_ptr()
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        // SAFETY: the pool is live until this drop completes.
        let out = unsafe { raw::rte_mempool_in_use_count(self.0.as_ptr()) };
        if out != 0 {
            // An mbuf still out would return into freed memory: leak the pool instead
            // (and keep EAL cleanup refusing, since mbufs still point into EAL memory).
            log::warn!("mempool dropped with {out} mbufs still in use: leaking it");
            return;
        }
        // SAFETY: every mbuf is back, and this was the last handle (the Arc count hit
        // zero, and rx queues hold clones until their port is closed).
        unsafe { raw::rte_mempool_free(self.0.as_ptr()) };
        LIVE_OBJECTS.fetch_sub(1, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for PktPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PktPool")
            .field("available", &self.available())
            .field("in_use", &self.in_use())
            .finish()
    }
}
