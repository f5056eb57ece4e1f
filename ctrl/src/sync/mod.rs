//! Connection sync (reference 8; design 8): a master tells its backups
//! about the connections it forwards, in kernel IPVS's own wire format, so
//! that a backup already holds them, in its owner cores' tables, when it
//! takes over; a kernel IPVS backup and Wireshark understand the same
//! messages.
//!
//! - [`codec`]: the v1 and v0 wire formats, and ripvs's full-transfer
//!   control messages;
//! - [`master`]: candidates from the workers' rings become messages;
//! - [`backup`]: messages become installs, routed to each client's owner;
//! - [`daemon`]: the sync thread that runs both, and the handle the
//!   control thread drives it with;
//! - [`admin`]: the control thread's side (commands, `[sync]`);
//! - [`socket`]: the kernel sockets.
//!
//! The data plane's half (which packets make a candidate, and how a
//! worker installs one) is `fastpath::sync`.

pub mod admin;
pub mod backup;
pub mod codec;
pub mod daemon;
pub mod master;
pub mod socket;

use fastpath::ipvs::Shared;
use fastpath::service::ServiceTable;
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// Candidates taken from one ring per pass (a pass is about a
/// millisecond), so one busy worker cannot starve the others.
pub const MAX_PER_RING: usize = 8192;
/// Slots a worker scans per page of a full transfer.
pub const FULL_PAGE: usize = 1024;
/// Messages a full transfer sends per pass: about 300,000 records a
/// second, which a backup's socket and workers absorb without loss.
pub const FULL_MSGS_PER_PASS: usize = 8;
/// Records per install message to a worker.
pub const MAX_BATCH: usize = 256;

/// Where a daemon's messages travel (the `--mcast-*`, `--syncid` and
/// `--sync-maxlen` of `--start-daemon`, defaults filled in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub ifname: String,
    pub syncid: u8,
    /// UDP payload bytes per message (a backup: the largest it takes).
    pub maxlen: u16,
    pub group: Ipv4Addr,
    pub port: u16,
    pub ttl: u8,
}

/// What both roles look things up in.
pub struct Ctx<'a> {
    /// The service table the workers run.
    pub table: &'a ServiceTable,
    /// Each real server's forwarding method, by id.
    pub methods: &'a HashMap<u32, u16>,
    pub shared: &'a Shared,
    /// The workers' clock (template expiry times are in it).
    pub now_ms: u64,
}

impl Ctx<'_> {
    /// The forwarding method of real server `dest` (DR if unknown).
    pub fn method_of(&self, dest: u32) -> u16 {
        self.methods
            .get(&dest)
            .copied()
            .unwrap_or(fastpath::conn::flags::DROUTE)
    }
}

/// Each real server's method, for templates (which hold only its id).
pub fn methods(table: &ServiceTable) -> HashMap<u32, u16> {
    table
        .services()
        .iter()
        .flat_map(|s| s.dests.iter().map(|d| (d.id, d.method as u16)))
        .collect()
}
