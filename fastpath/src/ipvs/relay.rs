//! ICMP errors about connections (reference 6.5): relayed to the real
//! server by the connection's method, or back to the client from the VIP.

use super::forward::{after_relay, forward};
use super::Ipvs;
use crate::conn::{self, ConnKey};
use crate::io::{Buf, Io};
use crate::output::egress::Egress;
use crate::stats::{DropReason, Event};
use crate::xmit::{icmp, Endpoint};

impl Ipvs {
    /// An ICMP error about a connection (reference 6.5). `inbound`: it
    /// came to a VIP from the client side, about a packet the client got
    /// (from the VIP); else from a NAT real server about a client packet.
    /// Either way the quoted packet names the connection; the error goes
    /// to the real server by the connection's method, or back to the
    /// client from the VIP.
    // The engine, the egress part and the I/O, then the packet: one
    // argument over clippy's limit, which a struct would only rename.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn icmp<B: Buf, I: Io<Buf = B>>(
        &mut self,
        eg: &mut Egress<B>,
        io: &mut I,
        port: usize,
        mut pkt: B,
        now: u64,
        handed: bool,
        inbound: bool,
    ) {
        let e = match icmp::classify(pkt.data()) {
            // Errors from the path to a tunnel real server are not relayed
            // yet (documented); nor is anything about other connections.
            icmp::Classified::Error(e) if e.tunnel.is_none() => e,
            icmp::Classified::BadChecksum => return eg.stats.count_drop(DropReason::BadChecksum),
            icmp::Classified::Malformed => return eg.stats.count_drop(DropReason::Malformed),
            icmp::Classified::Fragment | icmp::Classified::EmbeddedFragment => {
                return eg.stats.count_drop(DropReason::Fragment)
            }
            _ if inbound => return eg.stats.count_drop(DropReason::NoService),
            _ => return eg.stats.count_drop(DropReason::UnknownDestination),
        };
        // The quoted packet went director/VIP → client (inbound) or
        // client → real server (outbound): the client is its destination
        // or its source.
        let client = if inbound { e.dst } else { e.src };
        // From the client side, the error's own source is a router's or
        // the client's, never a martian (Linux drops those in routing).
        if inbound {
            let src = pkt.data().get(26..30).map(|b| [b[0], b[1], b[2], b[3]]);
            if src.is_some_and(|b| self.own.is_martian(b.into())) {
                return eg.stats.count_drop(DropReason::MartianSource);
            }
        }
        let n = io.nworkers();
        if !handed && n > 1 {
            let owner = conn::owner_core(client.addr, client.port, n);
            if owner != io.worker() {
                pkt.set_port(port);
                eg.stats.redirected(false);
                return io.to_peer(owner, pkt);
            }
        }
        let key = ConnKey::new(e.proto, e.dst.addr, e.dst.port, e.src.addr, e.src.port);
        let found = if inbound {
            self.conns.lookup_in(&key)
        } else {
            self.conns.lookup_out(&key)
        };
        let Some(c) = found.and_then(|id| self.conns.get(id)).copied() else {
            let why = if inbound {
                DropReason::NoConnection
            } else {
                DropReason::UnknownDestination
            };
            return eg.stats.count_drop(why);
        };
        eg.stats.event(Event::IcmpRelayed);
        if inbound {
            return forward(eg, io, pkt, &c, now, None);
        }
        let (vip, rs) = (
            Endpoint::new(c.vaddr, c.vport),
            Endpoint::new(c.daddr, c.dport),
        );
        let mtu = eg.mtu_towards(client.addr);
        let v = icmp::translate_to_client(&mut pkt, rs, vip, mtu);
        after_relay(eg, io, pkt, v, now);
    }
}
