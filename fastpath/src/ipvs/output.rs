//! Packets that are not for the director: a NAT real server's reply,
//! translated back to the VIP and sent to its client (kernel IPVS's
//! `ip_vs_out`), or nothing the director knows.

use super::forward::after_xmit;
use super::l4::{is_icmp, parse_l4, L4};
use super::Ipvs;
use crate::conn::{self, ConnId, ConnKey};
use crate::io::{Buf, Io};
use crate::output::egress::Egress;
use crate::proto::Dir;
use crate::stats::DropReason;
use crate::xmit::{self, Endpoint, Verdict};

impl Ipvs {
    /// A packet that is not for us: a NAT real server's reply to a client,
    /// or nothing we know.
    pub fn output<B: Buf, I: Io<Buf = B>>(
        &mut self,
        eg: &mut Egress<B>,
        io: &mut I,
        port: usize,
        mut pkt: B,
        now: u64,
        handed: bool,
    ) {
        if is_icmp(pkt.data()) {
            return self.icmp(eg, io, port, pkt, now, handed, false);
        }
        let h = match parse_l4(pkt.data()) {
            Ok(h) => h,
            Err(_) => return eg.stats.count_drop(DropReason::UnknownDestination),
        };
        let n = io.nworkers();
        if !handed && n > 1 {
            let owner = conn::owner_core(h.ip.dst, h.dport, n);
            if owner != io.worker() {
                pkt.set_port(port);
                eg.stats.redirected(true);
                return io.to_peer(owner, pkt);
            }
        }
        let key = ConnKey::new(h.ip.proto, h.ip.src, h.sport, h.ip.dst, h.dport);
        let Some(id) = self.conns.lookup_out(&key) else {
            return eg.stats.count_drop(self.stray(&h));
        };
        self.out_conn(eg, io, pkt, &h, id, now);
    }

    /// Why a packet to nowhere of ours that is no NAT reply is dropped.
    /// One from a VIP (port to a client of ours) is a DR or TUN real
    /// server's reply that came back through the director: the server
    /// routes via the director, or the network routes asymmetrically. On
    /// Linux it is a martian (its source is local); it is told apart here
    /// because it means a misconfiguration, not an attack. The check runs
    /// on the owner of the client's connections, where output brought it.
    #[cold]
    fn stray(&self, h: &L4) -> DropReason {
        if !self.own.is_martian(h.ip.src) {
            return DropReason::UnknownDestination;
        }
        let back = ConnKey::new(h.ip.proto, h.ip.dst, h.dport, h.ip.src, h.sport);
        match self.conns.lookup_in(&back) {
            Some(_) => DropReason::ReplyViaBackPort,
            None => DropReason::MartianSource,
        }
    }

    /// A reply of connection `id`, which this worker owns.
    #[inline]
    pub(crate) fn out_conn<B: Buf, I: Io<Buf = B>>(
        &mut self,
        eg: &mut Egress<B>,
        io: &mut I,
        mut pkt: B,
        h: &L4,
        id: ConnId,
        now: u64,
    ) {
        // The out lookup matches DR and TUN entries too (by the VIP, the
        // source their servers answer from), but only NAT replies pass
        // through the director by design: this is a DR or TUN server's
        // answer that came back through it (see `stray`). It must not move
        // the entry's state or counters, which are the input half's.
        if self
            .conns
            .get(id)
            .is_some_and(|c| c.fwd() != conn::flags::MASQ)
        {
            return eg.stats.count_drop(DropReason::ReplyViaBackPort);
        }
        let tick = (now / conn::TICK_MS as u64) as conn::Tick;
        if self
            .conns
            .get(id)
            .is_some_and(|c| c.flags & conn::flags::SYNPROXY != 0)
        {
            match self.synproxy_out(eg, io, pkt, h, id, now) {
                Some(p) => pkt = p,
                None => return,
            }
        }
        self.on_packet(id, h, Dir::Output, tick);
        let Some(c) = self.conns.get(id).copied() else {
            return;
        };
        self.count(&c, h.ip.total as u64, false);
        let hop = eg.next_hop(h.ip.dst);
        let mtu = match hop {
            Some(nh) => nh.mtu,
            None => eg.mtu_by_route(h.ip.dst),
        };
        let v = xmit::nat::snat_checked(
            &mut pkt,
            &h.ip,
            Endpoint::new(c.daddr, c.dport),
            Endpoint::new(c.vaddr, c.vport),
            mtu,
        );
        match (v, hop) {
            // The client is the destination: what `send_ip` would find,
            // with the size already checked against this hop's MTU.
            (Verdict::Forward, Some(nh)) => eg.send_l2(io, nh.port(), nh.mac, pkt),
            // Linux checks a forwarded reply's TTL and size in
            // `ip_forward`, before IPVS's FORWARD hook translates it: the
            // error is about the real server's packet as sent, and comes
            // from the director's own address towards the real server
            // (`icmp_send` on a route that is not local), not the VIP.
            _ => {
                let src = eg.src_towards(h.ip.src);
                after_xmit(eg, io, pkt, v, src, now)
            }
        }
    }
}
