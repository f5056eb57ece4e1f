//! Where a packet enters: one Ethernet frame from a port, classified once
//! and handed to the part of the data plane that owns it.
//!
//! - ARP → `local::arp` (answers for interface addresses and VIPs);
//! - IPv4 to a VIP → ICMP echo here; services come next (dropped and
//!   counted as `no_service` until a service table exists);
//! - IPv4 to an interface address → ICMP echo here, the rest to the kernel;
//! - VRRP (to its group or an interface address) → the control plane, when
//!   it runs instances; to a VIP another director holds → dropped, counted;
//! - broadcast/multicast and non-IP frames → the kernel;
//! - anything else is not ours: dropped and counted.

use crate::host::{Host, Local};
use crate::io::{ip_csum_ok, Buf, Io};
use crate::local::{arp, exception, icmp};
use crate::stats::DropReason;
use crate::wire::{ethernet, ipv4, vrrp, EtherType, EthernetFrame, Ipv4Packet};

impl<B: Buf> Host<B> {
    pub fn input<I: Io<Buf = B>>(&mut self, io: &mut I, port: usize, pkt: B, now: u64) {
        let Ok(eth) = EthernetFrame::new_checked(pkt.data()) else {
            return self.egress.stats.count_drop(DropReason::Malformed);
        };
        let dst = eth.dst();
        if !dst.is_multicast() && !self.accepts_mac(port, dst) {
            return self.egress.stats.count_drop(DropReason::NotForUs);
        }
        match eth.ethertype() {
            EtherType::IPV4 => self.ipv4_input(io, port, pkt, now),
            EtherType::ARP => arp::input(self, io, port, pkt, now, false),
            _ => exception::to_kernel(&self.egress, io, port, pkt),
        }
    }

    /// A frame another worker handed over: ARP to learn from, or a packet of
    /// a connection this worker owns.
    pub fn peer_input<I: Io<Buf = B>>(&mut self, io: &mut I, pkt: B, now: u64) {
        let port = pkt.port();
        if port >= self.egress.ports.len() {
            return self.egress.stats.count_drop(DropReason::Malformed);
        }
        let ty = EthernetFrame::new_checked(pkt.data()).map(|e| e.ethertype());
        match ty {
            Ok(EtherType::ARP) => arp::input(self, io, port, pkt, now, true),
            // Handed over because this worker owns the connection: to a
            // VIP (or a marked destination) it is inbound, else a reply.
            Ok(EtherType::IPV4) => {
                let dst =
                    Ipv4Packet::new_checked(&pkt.data()[ethernet::HEADER_LEN..]).map(|ip| ip.dst());
                match dst {
                    Ok(d) if self.is_vip(d) || self.ipvs.table.marks_dest(d) => {
                        self.ipvs.input(&mut self.egress, io, port, pkt, now, true)
                    }
                    Ok(_) => self.ipvs.output(&mut self.egress, io, port, pkt, now, true),
                    Err(_) => self.egress.stats.count_drop(DropReason::Malformed),
                }
            }
            _ => self.egress.stats.count_drop(DropReason::Malformed),
        }
    }

    fn ipv4_input<I: Io<Buf = B>>(&mut self, io: &mut I, port: usize, pkt: B, now: u64) {
        let Ok(ip) = Ipv4Packet::new_checked(&pkt.data()[ethernet::HEADER_LEN..]) else {
            return self.egress.stats.count_drop(DropReason::Malformed);
        };
        if !ip_csum_ok(&pkt, &ip) {
            return self.egress.stats.count_drop(DropReason::BadChecksum);
        }
        // Options are rare: a header longer than 20 bytes is what costs
        // the walk (the burst pass never takes one).
        if ip.header_len() > ipv4::MIN_HEADER_LEN && ip.check_options().is_err() {
            return self.egress.stats.count_drop(DropReason::BadIpOptions);
        }
        let echo = ip.protocol() == ipv4::PROTO_ICMP && icmp::is_echo_request(ip.payload());
        let frag = ip.is_fragment();
        let (src, dst) = (ip.src(), ip.dst());
        let class = self.classify(dst);
        if ip.protocol() == vrrp::PROTO {
            if let Some(c) = &self.control {
                if dst == vrrp::GROUP || matches!(class, Some(Local::Iface(_))) {
                    return c.pass_up(&self.egress, port, pkt);
                }
            }
        }
        match class {
            Some(Local::Backup) => self.egress.stats.count_drop(DropReason::NotMaster),
            Some(Local::Vip) if self.standby() => self.egress.stats.count_drop(DropReason::Standby),
            // Linux's routing drops these before ICMP sees them: no echo
            // reply to a broadcast, a multicast group or ourselves.
            Some(Local::Vip) | Some(Local::Iface(_)) if echo && !frag && self.is_martian(src) => {
                self.egress.stats.count_drop(DropReason::MartianSource)
            }
            Some(Local::Vip) if echo && !frag => icmp::echo_reply(&mut self.egress, io, pkt, now),
            Some(Local::Vip) => self.ipvs.input(&mut self.egress, io, port, pkt, now, false),
            Some(Local::Iface(_)) if echo && !frag => {
                icmp::echo_reply(&mut self.egress, io, pkt, now)
            }
            Some(Local::Iface(_)) | Some(Local::Broadcast) => {
                exception::to_kernel(&self.egress, io, port, pkt)
            }
            None if self.ipvs.table.marks_dest(dst) && self.standby() => {
                self.egress.stats.count_drop(DropReason::Standby)
            }
            None if self.ipvs.table.marks_dest(dst) => {
                self.ipvs.input(&mut self.egress, io, port, pkt, now, false)
            }
            // Not ours: a NAT real server's reply, or unknown.
            None => self
                .ipvs
                .output(&mut self.egress, io, port, pkt, now, false),
        }
    }
}
