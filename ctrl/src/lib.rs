//! ripvs control plane. It meets the data plane at one narrow interface,
//! as Katran's does: immutable config snapshots go in ([`snapshot`]), and
//! per-core counters come out to be summed and reported ([`report`]).
//! Nothing here runs per packet.

#![forbid(unsafe_code)]

pub mod control;
pub mod model;
pub mod report;
pub mod server;
pub mod snapshot;
pub mod stats;
