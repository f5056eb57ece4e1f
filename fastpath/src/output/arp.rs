//! ARP frames the director originates: who-has requests that resolve
//! next hops (sent from neighbour resolution and its timers) and the
//! frame builder that gratuitous announcements (`local::arp`) share.
//!
//! They live on the way out, not with the answering side in
//! `local::arp`, because [`crate::output::egress`] sends requests while
//! `local::arp` feeds what it learns back into the egress part: kept
//! there, the two would import each other.

use crate::io::{Buf, Io};
use crate::output::egress::PortConfig;
use crate::stats::{DropReason, Event, WorkerStats};
use crate::wire::arp::{self, ArpPacket};
use crate::wire::{ethernet, EtherType, EthernetFrame, MacAddr};
use core::net::Ipv4Addr;

/// Builds a 60-byte (minimum Ethernet) ARP frame in a fresh buffer.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build<I: Io>(
    io: &mut I,
    eth_dst: MacAddr,
    op: u16,
    sha: MacAddr,
    spa: Ipv4Addr,
    tha: MacAddr,
    tpa: Ipv4Addr,
) -> Option<I::Buf> {
    let mut b = io.alloc()?;
    if !b.set_len(ethernet::MIN_FRAME_LEN) {
        return None;
    }
    let d = b.data_mut();
    d.fill(0);
    let mut eth = EthernetFrame::new_checked(&mut d[..]).ok()?;
    eth.set_dst(eth_dst);
    eth.set_src(sha);
    eth.set_ethertype(EtherType::ARP);
    ArpPacket::emit(eth.payload_mut(), op, sha, spa, tha, tpa).ok()?;
    Some(b)
}

/// Asks who has `ip` on `port`: broadcast, or unicast to confirm a known MAC.
pub fn send_request<I: Io>(
    io: &mut I,
    ports: &[PortConfig],
    stats: &WorkerStats,
    port: usize,
    ip: Ipv4Addr,
    unicast: Option<MacAddr>,
) {
    let p = &ports[port];
    let src = p
        .addrs
        .iter()
        .find(|&&(a, len)| crate::output::route::contains(a, len, ip))
        .or(p.addrs.first())
        .map_or(Ipv4Addr::UNSPECIFIED, |&(a, _)| a);
    let dst = unicast.unwrap_or(MacAddr::BROADCAST);
    match build(io, dst, arp::OP_REQUEST, p.mac, src, MacAddr::ZERO, ip) {
        Some(b) => {
            stats.event(Event::ArpRequestSent);
            io.tx(port, b);
        }
        None => stats.count_drop(DropReason::NoBuffer),
    }
}
