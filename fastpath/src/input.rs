//! Where a packet enters: one Ethernet frame from a port, classified once
//! and handed to the part of the data plane that owns it.
//!
//! - ARP → `local::arp` (answers for interface addresses and VIPs);
//! - IPv4 to a VIP → ICMP echo here; services come next (dropped and
//!   counted as `no_service` until a service table exists);
//! - IPv4 to an interface address → ICMP echo here, the rest to the kernel;
//! - broadcast/multicast and non-IP frames → the kernel;
//! - anything else is not ours: dropped and counted.

use crate::host::{Host, Local};
use crate::io::{Buf, Io};
use crate::local::icmp;
use crate::stats::DropReason;
use crate::wire::{ethernet, ipv4, EtherType, EthernetFrame, Ipv4Packet};

impl<B: Buf> Host<B> {
    pub fn input<I: Io<Buf = B>>(&mut self, io: &mut I, port: usize, pkt: B, now: u64) {
        let Ok(eth) = EthernetFrame::new_checked(pkt.data()) else {
            return self.stats.count_drop(DropReason::Malformed);
        };
        let dst = eth.dst();
        if dst != self.ports[port].mac && !dst.is_multicast() {
            return self.stats.count_drop(DropReason::NotForUs);
        }
        match eth.ethertype() {
            EtherType::IPV4 => self.ipv4_input(io, port, pkt, now),
            EtherType::ARP => self.arp_input(io, port, pkt, now, false),
            _ => self.to_kernel(io, port, pkt),
        }
    }

    /// A frame another worker handed over (today only ARP, to learn from).
    pub fn peer_input<I: Io<Buf = B>>(&mut self, io: &mut I, pkt: B, now: u64) {
        let port = pkt.port();
        if port >= self.ports.len() {
            return self.stats.count_drop(DropReason::Malformed);
        }
        match EthernetFrame::new_checked(pkt.data()).map(|e| e.ethertype()) {
            Ok(EtherType::ARP) => self.arp_input(io, port, pkt, now, true),
            _ => self.stats.count_drop(DropReason::Malformed),
        }
    }

    fn ipv4_input<I: Io<Buf = B>>(&mut self, io: &mut I, port: usize, pkt: B, now: u64) {
        let Ok(ip) = Ipv4Packet::new_checked(&pkt.data()[ethernet::HEADER_LEN..]) else {
            return self.stats.count_drop(DropReason::Malformed);
        };
        if !ip.verify_checksum() {
            return self.stats.count_drop(DropReason::BadChecksum);
        }
        let echo = ip.protocol() == ipv4::PROTO_ICMP && icmp::is_echo_request(ip.payload());
        let frag = ip.is_fragment();
        match self.classify(ip.dst()) {
            Some(Local::Vip) if echo && !frag => self.echo_reply(io, pkt, now),
            Some(Local::Vip) if frag => self.stats.count_drop(DropReason::Fragment),
            Some(Local::Vip) => self.stats.count_drop(DropReason::NoService),
            Some(Local::Iface(_)) if echo && !frag => self.echo_reply(io, pkt, now),
            Some(Local::Iface(_)) | Some(Local::Broadcast) => self.to_kernel(io, port, pkt),
            None => self.stats.count_drop(DropReason::UnknownDestination),
        }
    }
}
