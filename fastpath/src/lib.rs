//! ripvs data plane, free of DPDK: it runs on any [`io::Io`], so every line
//! of packet logic is testable on byte buffers.
//!
//! Reading order for a newcomer: [`worker`] (the loop) → [`path`] (where a
//! burst enters: established connections forwarded in stages over the
//! burst) → [`input`] (where the scalar code takes any other frame) →
//! [`local`] (frames for the director itself) or [`ipvs`] (the engine:
//! connections, scheduling, state, forwarding) → [`output`] (routes,
//! neighbours, each real server's adjacency, where frames leave). [`wire`]
//! holds the header views everything else parses with; [`persist`] the
//! persistence templates all workers share; [`sync`] what a master's
//! workers offer its backups and what a backup's workers are handed
//! (the engine installs it: `ipvs/synced.rs`); [`defence`] the overload
//! defences' rules (the engine applies them: `ipvs/defend.rs`).
//!
//! No module imports one that imports it back, directly or through
//! others (`tests/module_graph.rs` checks): the engine imports `sync`
//! and `persist`, neither imports the engine.

#![forbid(unsafe_code)]

pub mod conn;
pub mod control_link;
pub mod defence;
pub mod gate;
pub mod host;
pub mod input;
pub mod io;
pub mod ipvs;
pub mod local;
pub mod mailbox;
mod martian;
pub mod output;
pub mod path;
pub mod persist;
pub mod proto;
pub mod sched;
pub mod service;
pub mod stats;
pub mod sync;
pub mod synproxy;
pub mod wire;
pub mod worker;
pub mod xmit;

pub use host::HostConfig;
pub use io::{Buf, Io, BURST};
pub use output::egress::PortConfig;
pub use output::neigh::StaticNeighbour;
pub use output::route::StaticRoute;
pub use stats::WorkerStats;
pub use worker::Worker;
