//! ripvs control plane. It meets the data plane at one narrow interface,
//! as Katran's does: immutable config snapshots go in ([`snapshot`] at
//! start-up, then [`control::Dataplane::publish`] for every change), and
//! per-core counters come out to be summed and reported ([`report`],
//! [`stats`]). Nothing here runs per packet.
//!
//! The live table is a [`model::Model`], changed only by validated
//! commands; [`control::Control`] answers one request of the control
//! protocol at a time on the daemon's main thread, and [`server::Server`]
//! carries requests to it from the Unix socket without ever blocking it.

#![forbid(unsafe_code)]

pub mod control;
pub mod defence;
pub mod health;
pub mod model;
pub mod report;
pub mod server;
pub mod snapshot;
pub mod stats;
pub mod sync;
pub mod vrrp;
