//! DPDK 22.11 for ripvs: the raw bindings, and a thin safe layer over the calls the
//! director makes.
//!
//! The layer adds no packet logic and allocates nothing on the fast path: the burst
//! calls fill or drain the caller's `ArrayVec`, whose elements ([`Mbuf`]) have the
//! layout of `struct rte_mbuf *`, so DPDK reads and writes them in place.
//!
//! Ownership follows DPDK: an [`Mbuf`] owns one mbuf and frees it on drop; handing it
//! to `tx_burst` or a ring moves it out of the caller's vector. A [`PktPool`] or a
//! ring is freed only once nothing can reach it any more, and [`eal::Eal::cleanup`]
//! refuses to tear EAL down while either still exists.

#![warn(
    missing_docs,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

/// The bindgen output for `wrapper.h` plus the `ripvs_*` C shim for DPDK's inline
/// functions; everything the safe modules do not cover is reachable here.
pub mod raw {
    #![allow(
        non_upper_case_globals,
        non_camel_case_types,
        non_snake_case,
        dead_code,
        missing_docs,
        unsafe_op_in_unsafe_fn,
        clippy::all,
        clippy::undocumented_unsafe_blocks
    )]
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

pub mod eal;
mod error;
pub mod ethdev;
pub mod mbuf;
pub mod mempool;
pub mod ring;
pub mod thp;

pub use error::Error;
pub use mbuf::Mbuf;
pub use mempool::PktPool;
pub use ring::{MbufRing, RingRx, RingTx};
pub use thp::advise_hugepage;
