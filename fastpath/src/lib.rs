//! ripvs data plane, free of DPDK: it runs on any [`io::Io`], so every line
//! of packet logic is testable on byte buffers.
//!
//! Reading order for a newcomer: [`worker`] (the loop) → [`input`] (where a
//! frame enters and is classified) → [`local`] (frames for the director
//! itself) → [`output`] (routes, neighbours, where frames leave). [`wire`]
//! holds the header views everything else parses with.

#![forbid(unsafe_code)]

pub mod conn;
pub mod host;
pub mod input;
pub mod io;
pub mod ipvs;
pub mod local;
pub mod mailbox;
pub mod output;
pub mod path;
pub mod proto;
pub mod sched;
pub mod service;
pub mod stats;
pub mod sync;
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
