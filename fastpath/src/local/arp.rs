//! ARP for the director's own addresses and VIPs: replies, learning,
//! requests for next hops, gratuitous announcements.
//!
//! Like Linux with `arp_ignore=0`, a port answers for its own addresses; it
//! also answers for every VIP, which is what makes it the director. Replies
//! to the kernel's own requests (sent through the exception tap) are copied
//! to the kernel so its neighbour cache works on a DPDK-owned port.

use crate::host::Host;
use crate::io::{copy_of, Buf, Io};
use crate::output::arp::build;
use crate::stats::{DropReason, Event};
use crate::wire::arp::{self, ArpPacket};
use crate::wire::{ethernet, EthernetFrame, MacAddr};

/// Rewrites a request for one of our addresses into its reply, in place:
/// the frame keeps its length (and padding), as Linux's reply would be padded.
fn turn_into_reply(frame: &mut [u8], my_mac: MacAddr) -> Option<()> {
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

impl<B: Buf> Host<B> {
    /// Announces every interface address and VIP on every port with a
    /// gratuitous ARP request (sender = target address, as Linux does), so
    /// switches and neighbours learn where the director is at start-up.
    pub fn announce<I: Io<Buf = B>>(&self, io: &mut I) {
        for (i, p) in self.egress.ports.iter().enumerate() {
            let addrs = p.addrs.iter().map(|&(a, _)| a);
            let vips = self
                .vips()
                .iter()
                .copied()
                .filter(|v| !self.standby() && !p.addrs.iter().any(|&(a, _)| a == *v));
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
                        self.egress.stats.event(Event::GratuitousArpSent);
                        io.tx(i, b);
                    }
                    None => self.egress.stats.count_drop(DropReason::NoBuffer),
                }
            }
        }
    }

    /// An ARP frame from `port`. `from_peer`: a copy another worker already
    /// answered; only learn from it.
    pub fn arp_input<I: Io<Buf = B>>(
        &mut self,
        io: &mut I,
        port: usize,
        mut pkt: B,
        now: u64,
        from_peer: bool,
    ) {
        let Ok(a) = ArpPacket::new_checked(&pkt.data()[ethernet::HEADER_LEN..]) else {
            return self.egress.stats.count_drop(DropReason::Malformed);
        };
        let (op, sha, spa, tpa) = (a.operation(), a.sender_mac(), a.sender_ip(), a.target_ip());
        if !sha.is_unicast() || (op != arp::OP_REQUEST && op != arp::OP_REPLY) {
            return self.egress.stats.count_drop(DropReason::Malformed);
        }
        let for_us = self.answers_arp(port, tpa);
        let is_iface = self.egress.ports[port].addrs.iter().any(|&(x, _)| x == tpa);
        // Learn the sender unless it is a probe (0.0.0.0) or claims one of
        // our own addresses. Requests aimed at us create an entry, as Linux
        // does, since we are about to talk to the sender; replies update
        // (and complete) only entries we asked for.
        let learnable =
            !spa.is_unspecified() && self.egress.on_link(port, spa) && !self.answers_arp(port, spa);
        if learnable {
            let confirmed = op == arp::OP_REPLY;
            let create = for_us && op == arp::OP_REQUEST;
            let learned = self
                .egress
                .neigh
                .learn(port, spa, sha, now, confirmed, create);
            let is_learned = learned.is_some();
            if let Some(held) = learned {
                self.egress.release(io, port, sha, held.into_iter());
            }
            // A reply to one of our addresses may answer another worker's
            // request (all replies arrive on the queue RSS picks, often
            // not the asker's): hand it over even if this worker had no
            // entry. Peers only complete entries they asked for.
            let maybe_theirs = op == arp::OP_REPLY && is_iface;
            if !from_peer && (is_learned || maybe_theirs) {
                self.share_with_peers(io, port, &pkt);
            }
        }
        if from_peer {
            return;
        }
        if op == arp::OP_REQUEST && for_us {
            if turn_into_reply(pkt.data_mut(), self.egress.ports[port].mac).is_none() {
                return self.egress.stats.count_drop(DropReason::Malformed);
            }
            self.egress.stats.event(Event::ArpReplySent);
            io.tx(port, pkt);
        } else if op == arp::OP_REPLY && is_iface {
            // An answer to the kernel's own request through the tap.
            self.to_kernel(io, port, pkt);
        } else {
            self.egress.stats.count_drop(DropReason::ArpNotForUs);
        }
    }

    /// Other workers keep their own neighbour tables: give each a copy.
    fn share_with_peers<I: Io<Buf = B>>(&self, io: &mut I, port: usize, pkt: &B) {
        let (me, n) = (io.worker(), io.nworkers());
        for w in (0..n).filter(|&w| w != me) {
            match copy_of(io, pkt) {
                Some(mut c) => {
                    c.set_port(port);
                    self.egress.stats.event(Event::PeerCopySent);
                    io.to_peer(w, c);
                }
                None => self.egress.stats.count_drop(DropReason::NoBuffer),
            }
        }
    }
}
