//! ARP for the director's own addresses and VIPs: replies, learning,
//! gratuitous announcements. (Requests for next hops belong to the way
//! out, [`crate::output::arp`].) These take the whole [`Host`]: what they
//! answer for is its addresses, and what they learn goes into its egress
//! part.
//!
//! Like Linux with `arp_ignore=0`, a port answers for its own addresses; it
//! also answers for every VIP, which is what makes it the director. Replies
//! to the kernel's own requests (sent through the exception tap) are copied
//! to the kernel so its neighbour cache works on a DPDK-owned port.

use crate::host::{Host, Local};
use crate::io::{copy_of, Buf, Io};
use crate::local::exception::to_kernel;
use crate::output::arp::build;
use crate::output::egress::Egress;
use crate::stats::{DropReason, Event};
use crate::wire::arp::{self, ArpPacket};
use crate::wire::{ethernet, EthernetFrame, MacAddr};

/// Rewrites a request for one of our addresses into its reply, in place.
/// The frame keeps its length, so a padded request gives a padded reply,
/// but the padding is zeroed: Linux builds its reply afresh and the NIC
/// pads it with zeros, where the request's padding could be anything the
/// sender left there (RFC 1042 leaves it unspecified; the "Etherleak"
/// class of leaks is padding copied from elsewhere).
fn turn_into_reply(frame: &mut [u8], my_mac: MacAddr) -> Option<()> {
    frame
        .get_mut(ethernet::HEADER_LEN + arp::PACKET_LEN..)?
        .fill(0);
    let mut eth = EthernetFrame::new_checked(frame).ok()?;
    let mut a = ArpPacket::new_checked(eth.payload_mut()).ok()?;
    let (sha, spa, tpa) = (a.sender_mac(), a.sender_ip(), a.target_ip());
    a.set_operation(arp::OP_REPLY);
    a.set_target(sha, spa);
    a.set_sender(my_mac, tpa);
    eth.set_dst(sha);
    eth.set_src(my_mac);
    Some(())
}

/// Announces every interface address and VIP on every port with a
/// gratuitous ARP request (sender = target address, as Linux does), so
/// switches and neighbours learn where the director is at start-up.
pub fn announce<B: Buf, I: Io<Buf = B>>(host: &Host<B>, io: &mut I) {
    for (i, p) in host.egress.ports.iter().enumerate() {
        let addrs = p.addrs.iter().map(|&(a, _)| a);
        let vips = host
            .vips()
            .iter()
            .copied()
            .filter(|&v| host.is_vip(v))
            .filter(|v| !host.standby() && !p.addrs.iter().any(|&(a, _)| a == *v));
        for a in addrs.chain(vips) {
            match build(
                io,
                MacAddr::BROADCAST,
                arp::OP_REQUEST,
                p.mac,
                a,
                MacAddr::ZERO,
                a,
            ) {
                Some(b) => {
                    host.egress.stats.event(Event::GratuitousArpSent);
                    io.tx(i, b);
                }
                None => host.egress.stats.count_drop(DropReason::NoBuffer),
            }
        }
    }
}

/// An ARP frame from `port`. `from_peer`: a copy another worker already
/// answered; only learn from it.
pub fn input<B: Buf, I: Io<Buf = B>>(
    host: &mut Host<B>,
    io: &mut I,
    port: usize,
    mut pkt: B,
    now: u64,
    from_peer: bool,
) {
    let Ok(a) = ArpPacket::new_checked(&pkt.data()[ethernet::HEADER_LEN..]) else {
        return host.egress.stats.count_drop(DropReason::Malformed);
    };
    let (op, sha, spa, tpa) = (a.operation(), a.sender_mac(), a.sender_ip(), a.target_ip());
    if !sha.is_unicast() || (op != arp::OP_REQUEST && op != arp::OP_REPLY) {
        return host.egress.stats.count_drop(DropReason::Malformed);
    }
    if !from_peer && !spa.is_unspecified() {
        if let Some(why) = refused_sender(host, port, sha, spa) {
            return host.egress.stats.count_drop(why);
        }
    }
    let for_us = host.answers_arp(port, tpa);
    let is_iface = host.egress.ports[port].addrs.iter().any(|&(x, _)| x == tpa);
    // Learn the sender unless it is a probe (0.0.0.0) or claims one of
    // our own addresses. Requests aimed at us create an entry, as Linux
    // does, since we are about to talk to the sender; replies update
    // (and complete) only entries we asked for.
    let learnable =
        !spa.is_unspecified() && host.egress.on_link(port, spa) && !host.answers_arp(port, spa);
    if learnable {
        let confirmed = op == arp::OP_REPLY;
        let create = for_us && op == arp::OP_REQUEST;
        let learned = host
            .egress
            .neigh
            .learn(port, spa, sha, now, confirmed, create);
        let is_learned = learned.is_some();
        if let Some(held) = learned {
            host.egress.release(io, port, sha, held.into_iter());
        }
        // A reply to one of our addresses may answer another worker's
        // request (all replies arrive on the queue RSS picks, often
        // not the asker's): hand it over even if this worker had no
        // entry. Peers only complete entries they asked for.
        let maybe_theirs = op == arp::OP_REPLY && is_iface;
        if !from_peer && (is_learned || maybe_theirs) {
            share_with_peers(&host.egress, io, port, &pkt);
        }
    }
    if from_peer {
        return;
    }
    if op == arp::OP_REQUEST && for_us {
        if turn_into_reply(pkt.data_mut(), host.arp_mac(port, tpa)).is_none() {
            return host.egress.stats.count_drop(DropReason::Malformed);
        }
        host.egress.stats.event(Event::ArpReplySent);
        io.tx(port, pkt);
    } else if op == arp::OP_REPLY && is_iface {
        // An answer to the kernel's own request through the tap.
        to_kernel(&host.egress, io, port, pkt);
    } else {
        host.egress.stats.count_drop(DropReason::ArpNotForUs);
    }
}

/// Why ARP from `sha`/`spa` (not 0.0.0.0: a duplicate address probe,
/// answered as Linux answers it) is neither answered nor learnt from:
///
/// - `spa` is one of ours and `sha` another host's: an address conflict
///   (a gratuitous ARP claiming it, or any other ARP using it). Linux
///   answers no request from a local source (`arp_process` routes the
///   request with `ip_route_input_noref`, whose source check fails) and
///   learns nothing for its own address; it does not say so either,
///   which leaves an operator blind to a host that took a VIP. This is
///   counted, and the control thread logs when the count moves.
/// - `spa` is one of ours and `sha` ours too: our own frame come back.
/// - `spa` is a VIP another director holds (VRRP backup, sync standby):
///   no objection.
/// - `spa` is any other martian (broadcast, multicast, loopback...):
///   Linux's routing refuses it as a source.
fn refused_sender<B: Buf>(
    host: &Host<B>,
    port: usize,
    sha: MacAddr,
    spa: core::net::Ipv4Addr,
) -> Option<DropReason> {
    if !host.is_martian(spa) {
        return None;
    }
    let claimed = match host.classify(spa) {
        Some(Local::Iface(_)) => true,
        Some(Local::Vip) if !host.standby() => true,
        // A VIP another director holds now: its announcements are its
        // right, and what they teach is learnt as before.
        Some(Local::Vip) | Some(Local::Backup) => return None,
        _ => false,
    };
    Some(match claimed {
        true if host.accepts_mac(port, sha) => DropReason::ArpNotForUs,
        true => DropReason::ArpConflict,
        false => DropReason::MartianSource,
    })
}

/// Other workers keep their own neighbour tables: give each a copy.
fn share_with_peers<B: Buf, I: Io<Buf = B>>(eg: &Egress<B>, io: &mut I, port: usize, pkt: &B) {
    let (me, n) = (io.worker(), io.nworkers());
    for w in (0..n).filter(|&w| w != me) {
        match copy_of(io, pkt) {
            Some(mut c) => {
                c.set_port(port);
                eg.stats.event(Event::PeerCopySent);
                io.to_peer(w, c);
            }
            None => eg.stats.count_drop(DropReason::NoBuffer),
        }
    }
}
