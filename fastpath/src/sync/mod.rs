//! Connection sync, the data plane's half (the daemon itself, with its
//! sockets and wire format, is `ctrl::sync`).
//!
//! A master's worker offers each connection it forwards an incoming
//! packet for to [`rules::needed`] (IPVS's rules, reference 8.2); what
//! passes goes onto the worker's [`ring`] as a [`SyncConn`], which the
//! sync thread batches into messages. A full ring loses the record and
//! counts it: the worker never waits. A backup's sync thread hands
//! received records to the worker that owns each client, which installs
//! them in its own table ([`install`]).

pub mod install;
pub mod post;
pub mod record;
pub mod ring;
pub mod rules;

pub use install::{Installed, Synced};
pub use post::{sync_post, Refused, SyncBox, SyncMail, SyncPost, SyncReply};
pub use record::SyncConn;
pub use ring::{ring, Consumer, Producer};
pub use rules::SyncParams;

use crate::conn::{self, flags, Conn};
use core::net::Ipv4Addr;

/// Records a worker's ring holds: 40 bytes each, 1.3 MB per worker, over
/// 100 ms of a million new connections a second.
pub const RING_RECORDS: usize = 32768;

/// What a master worker does for a connection after an incoming packet:
/// `pkts` is the entry's incoming count, `now_s` the worker's clock in
/// seconds.
#[inline]
pub fn offer(p: &SyncParams, tx: &mut Producer, c: &mut Conn<Ipv4Addr>, pkts: u16, now_s: u32) {
    let controlled = c.control != conn::NONE;
    if c.flags & flags::ONE_PACKET != 0 {
        // One-packet entries are never synced, only their templates.
        if controlled {
            tx.push(&template_only(c));
        }
        return;
    }
    if rules::needed(p, c, pkts, now_s) {
        tx.push(&SyncConn::of(c));
    } else if controlled && count_due(p, pkts) {
        // IPVS considers the template on every packet of its connections
        // (and, with the default period, sends it every time); ripvs
        // considers it when the count rule would send the connection,
        // which keeps a persistent client's template as fresh on the
        // backup without a record per packet. See the README.
        tx.push(&template_only(c));
    }
}

fn template_only(c: &Conn<Ipv4Addr>) -> SyncConn {
    SyncConn {
        template_only: true,
        ..SyncConn::of(c)
    }
}

#[inline]
fn count_due(p: &SyncParams, pkts: u16) -> bool {
    if p.period > 0 {
        pkts % p.period == p.threshold
    } else {
        pkts == p.threshold
    }
}
