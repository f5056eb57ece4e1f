//! Where a packet enters: one Ethernet frame from a port, classified once
//! and handed to the part of the data plane that owns it.
//!
//! - ARP → `local::arp` (answers for interface addresses and VIPs);
//! - IPv4 to a VIP → ICMP echo here; services come next (dropped and
//!   counted as `no_service` until a service table exists);
//! - IPv4 to an interface address → ICMP echo here, the rest to the kernel;
//! - broadcast/multicast and non-IP frames → the kernel;
//! - anything else is not ours: dropped and counted.

use crate::conn::{self, ConnId, ConnKey};
use crate::host::{Host, Local};
use crate::io::{Buf, Io, BURST};
use crate::ipvs::{l4_of, L4};
use crate::local::{arp, exception, icmp};
use crate::stats::DropReason;
use crate::wire::{ethernet, ipv4, EtherType, EthernetFrame, Ipv4Packet};
use arrayvec::ArrayVec;
use core::net::Ipv4Addr;

/// A frame of an IPVS connection this worker owns, as the first pass over a
/// burst found it.
#[derive(Clone, Copy)]
struct Owned {
    h: L4,
    /// Client to director (looked up as `in`), else a NAT reply.
    inbound: bool,
}

impl Owned {
    #[inline]
    fn key(&self) -> ConnKey<Ipv4Addr> {
        let h = &self.h;
        ConnKey::new(h.ip.proto, h.ip.src, h.sport, h.ip.dst, h.dport)
    }
}

impl<B: Buf> Host<B> {
    /// A burst from `port`, in order. Frames of connections this worker
    /// owns have their connections looked up together first (the table's
    /// burst lookup overlaps the cache misses of the whole burst); they
    /// then go straight to the engine, parsed once. Everything else, and
    /// whatever the first pass is unsure of, takes [`Host::input`].
    pub fn input_burst<I: Io<Buf = B>>(
        &mut self,
        io: &mut I,
        port: usize,
        burst: &mut ArrayVec<B, BURST>,
        now: u64,
    ) {
        let mut owned: [Option<Owned>; BURST] = [None; BURST];
        let mut keys: ArrayVec<ConnKey<Ipv4Addr>, BURST> = ArrayVec::new();
        let mut at: ArrayVec<u8, BURST> = ArrayVec::new();
        let mut out_keys: ArrayVec<ConnKey<Ipv4Addr>, BURST> = ArrayVec::new();
        let mut out_at: ArrayVec<u8, BURST> = ArrayVec::new();
        let (me, n) = (io.worker(), io.nworkers());
        // The parsed frames stay where they are written and are passed on
        // by reference: copying them in and out cost more than the parse.
        for ((i, p), slot) in burst.iter().enumerate().zip(owned.iter_mut()) {
            *slot = self.owned(port, p.data(), me, n);
            if let Some(o) = slot {
                let (k, a) = if o.inbound {
                    (&mut keys, &mut at)
                } else {
                    (&mut out_keys, &mut out_at)
                };
                k.push(o.key());
                a.push(i as u8);
            }
        }
        let mut found: [Option<ConnId>; BURST] = [None; BURST];
        let changes = self.ipvs.conns.changes();
        let mut tmp: [Option<ConnId>; BURST] = [None; BURST];
        self.ipvs.conns.lookup_in_burst(&keys, &mut tmp);
        for (&i, &f) in at.iter().zip(&tmp) {
            found[i as usize] = f;
        }
        self.ipvs.conns.lookup_out_burst(&out_keys, &mut tmp);
        for (&i, &f) in out_at.iter().zip(&tmp) {
            found[i as usize] = f;
        }
        for ((p, o), &id) in burst.drain(..).zip(&owned).zip(&found) {
            // Handling an earlier frame of the burst may have removed an
            // entry (one-packet scheduling, reuse) and a new one taken its
            // slot: once the table has changed (the counter only moves
            // on, and a burst cannot wrap it), the id must be seen to
            // still hold the frame's connection.
            let conns = &self.ipvs.conns;
            let hit = o.as_ref().zip(id).filter(|(o, id)| {
                conns.changes() == changes
                    || conns.get(*id).is_some_and(|c| {
                        if o.inbound {
                            c.matches_in(&o.key())
                        } else {
                            c.matches_out(&o.key())
                        }
                    })
            });
            match (o, hit) {
                (_, Some((o, id))) if o.inbound => {
                    self.ipvs
                        .in_conn(&mut self.egress, io, p, &o.h, Some(id), now)
                }
                (_, Some((o, id))) => self.ipvs.out_conn(&mut self.egress, io, p, &o.h, id, now),
                // A new connection's first packet (or one whose entry went
                // during the burst): where `input` would take it after
                // parsing it again, with the lookup the burst made unless
                // the table has changed since.
                (Some(o), None) if o.inbound => {
                    let found = if id.is_none() && conns.changes() == changes {
                        None
                    } else {
                        conns.lookup_in(&o.key())
                    };
                    self.ipvs.in_conn(&mut self.egress, io, p, &o.h, found, now)
                }
                _ => self.input(io, port, p, now),
            }
        }
    }

    /// Whether `frame` is a TCP/UDP/SCTP packet of a connection worker
    /// `me` of `n` would own, to a VIP or (a NAT reply) to a client,
    /// passing every check [`Host::input`] makes on the way to the engine.
    #[inline]
    fn owned(&self, port: usize, frame: &[u8], me: usize, n: usize) -> Option<Owned> {
        let eth = EthernetFrame::new_checked(frame).ok()?;
        if eth.dst() != self.egress.ports[port].mac || eth.ethertype() != EtherType::IPV4 {
            return None;
        }
        let ip = Ipv4Packet::new_checked(&frame[ethernet::HEADER_LEN..]).ok()?;
        if ip.protocol() == ipv4::PROTO_ICMP || !ip.verify_checksum() {
            return None;
        }
        let dst = ip.dst();
        let inbound = match self.classify(dst) {
            Some(Local::Vip) if self.standby() => return None,
            Some(Local::Vip) => true,
            None if !self.ipvs.table.marks_dest(dst) => false,
            _ => return None,
        };
        let h = l4_of(&ip).ok()?;
        let (caddr, cport) = if inbound {
            (h.ip.src, h.sport)
        } else {
            (h.ip.dst, h.dport)
        };
        if n > 1 && conn::owner_core(caddr, cport, n) != me {
            return None;
        }
        Some(Owned { h, inbound })
    }

    pub fn input<I: Io<Buf = B>>(&mut self, io: &mut I, port: usize, pkt: B, now: u64) {
        let Ok(eth) = EthernetFrame::new_checked(pkt.data()) else {
            return self.egress.stats.count_drop(DropReason::Malformed);
        };
        let dst = eth.dst();
        if dst != self.egress.ports[port].mac && !dst.is_multicast() {
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
        if !ip.verify_checksum() {
            return self.egress.stats.count_drop(DropReason::BadChecksum);
        }
        let echo = ip.protocol() == ipv4::PROTO_ICMP && icmp::is_echo_request(ip.payload());
        let frag = ip.is_fragment();
        let dst = ip.dst();
        match self.classify(dst) {
            Some(Local::Vip) if self.standby() => self.egress.stats.count_drop(DropReason::Standby),
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
