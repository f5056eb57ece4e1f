//! A safe cache prefetch hint: [`read`] starts loading the cache line of a
//! value the caller is about to read.
//!
//! Why a crate of its own: `fastpath` is `#![forbid(unsafe_code)]`, and the
//! prefetch intrinsics are `unsafe` functions, although a prefetch can
//! neither fault nor change memory. Without them the connection table's
//! burst lookup had to issue the loads themselves to overlap a burst's
//! cache misses, which stalls retirement where a prefetch would not (DPDK's
//! `rte_hash_lookup_bulk` prefetches between its stages). The project's
//! rule is that `unsafe` lives only in `dpdk-sys` and its mbuf wrapper;
//! this crate is the one exception, as the packet-pipeline issue allows
//! ("in dpdk-sys or a tiny wrapper"): `fastpath` must stay DPDK-free, so
//! it cannot take the hint from `dpdk-sys`. The whole of the exception is
//! the one `unsafe` block below.
//!
//! On x86-64 the hint is `prefetcht0` (into every cache level), SSE being
//! part of the baseline. Elsewhere it compiles to nothing: correct, only
//! slower, and nothing ripvs runs on today.

#![no_std]
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

/// Starts loading the cache line holding the start of `*r` into L1, so that
/// a read of it a few hundred cycles later does not wait for memory. Only a
/// hint: it never blocks, and nothing observable changes if the CPU ignores
/// it. Inlined so that it costs one instruction at the call site.
#[inline(always)]
pub fn read<T: ?Sized>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        let p = (r as *const T).cast::<i8>();
        // SAFETY: prefetcht0 is a hint that never faults and has no effect
        // on memory or registers, whatever the address (here a valid one,
        // from a reference); SSE, which provides it, is in the x86-64
        // baseline, so the instruction always exists.
        unsafe { core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

#[cfg(test)]
mod tests {
    /// The hint has no observable effect: values of any shape, sized or
    /// not, read back unchanged after it (a prefetch that wrote, or one
    /// built from the wrong pointer, would show here or fault).
    #[test]
    fn prefetching_changes_nothing() {
        let x = [7u64; 64];
        for v in &x {
            super::read(v);
        }
        super::read(&x[..]);
        super::read("str");
        super::read(&());
        assert_eq!(x, [7u64; 64]);
    }
}
