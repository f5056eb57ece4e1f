//! The ARP frames the director originates, built in a fresh buffer: the
//! who-has requests that resolve next hops ([`crate::output::egress`])
//! and the gratuitous announcements of `local::arp`.
//!
//! The builder lives here, on the way out, and not with the answering
//! side in `local::arp`: the egress part sends requests, while
//! `local::arp` feeds what it learns back into the egress part; kept
//! there, the two would import each other.

use crate::io::{Buf, Io};
use crate::wire::arp::ArpPacket;
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
