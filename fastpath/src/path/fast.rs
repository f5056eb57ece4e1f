//! Stages 3 and 4: the established connection's one mutable visit, its
//! rewrite and its transmit, with the packet and byte counters summed
//! over the burst.
//!
//! What qualifies is exactly what leaves the scalar engine's state
//! handling with nothing to do but restart the timer (`on_packet`'s
//! ESTABLISHED-ACK shortcut, and UDP, whose one state never changes):
//! everything the scalar code would do for such a packet is done here, in
//! the same order as far as anything outside the entry can tell, so the
//! two paths give the same bytes and counters (the differential tests).

use super::classify::Meta;
use crate::conn::{self, flags, ConnId, Tick};
use crate::host::Host;
use crate::io::{Buf, Io};
use crate::ipvs::established_ack;
use crate::ipvs::forward::after_xmit;
use crate::proto::tcp;
use crate::service::counters::CoreCounters;
use crate::wire::ipv4;
use crate::xmit::{self, Endpoint, Verdict};

/// Per-burst sums of the packet and byte counters: a burst's frames
/// mostly go to a few real servers, whose shared counter lines are then
/// written once per burst instead of once per packet.
#[derive(Default)]
pub(super) struct Sums {
    n: usize,
    rows: [(u32, u32, bool, u64, u64); 4],
}

impl Sums {
    #[inline]
    fn add(&mut self, mine: &CoreCounters, dest: u32, svc: u32, inbound: bool, len: u64) {
        for r in &mut self.rows[..self.n] {
            if r.0 == dest && r.1 == svc && r.2 == inbound {
                r.3 += 1;
                r.4 += len;
                return;
            }
        }
        if self.n < self.rows.len() {
            self.rows[self.n] = (dest, svc, inbound, 1, len);
            self.n += 1;
        } else {
            mine.add_traffic(dest, svc, inbound, 1, len);
        }
    }

    #[inline]
    fn settle(&mut self, mine: &CoreCounters) {
        for &(dest, svc, inbound, pkts, bytes) in &self.rows[..self.n] {
            mine.add_traffic(dest, svc, inbound, pkts, bytes);
        }
        self.n = 0;
    }
}

impl<B: Buf> Host<B> {
    /// Stages 3 and 4 for frame `p` (`m`) of connection `id`: if the
    /// established path takes it, the entry's update, the rewrite and the
    /// transmit; its packet and byte counts go to `sums`. `Err(p)`: the
    /// scalar engine's, and nothing has been changed.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(super) fn fast_forward<I: Io<Buf = B>>(
        &mut self,
        io: &mut I,
        id: ConnId,
        m: &Meta,
        mut p: B,
        tick: Tick,
        now: u64,
        sums: &mut Sums,
    ) -> Result<(), B> {
        let h = &m.h;
        let tcp = h.ip.proto == ipv4::PROTO_TCP;
        if !(tcp && established_ack(h.flags) || h.ip.proto == ipv4::PROTO_UDP) {
            return Err(p);
        }
        // One visit to the entry: checked, then updated, while the
        // egress part (a different field) finds the way out.
        let e = &mut self.ipvs;
        let Some(c) = e.conns.get_mut(id) else {
            return Err(p);
        };
        let method = c.flags & flags::FWD_MASK;
        let plain = matches!(method, flags::DROUTE | flags::TUNNEL | flags::MASQ);
        // A SYN-proxied connection's segments are translated (or held) by
        // the scalar engine; its flag shares the one-packet test, so the
        // DR and TUN path pays nothing for it.
        if !plain
            || (tcp && c.state != tcp::State::Established as u8)
            || c.flags & (flags::ONE_PACKET | flags::SYNPROXY) != 0
            || c.dest == conn::NONE
            || !e.table.dest_live(c.dest)
        {
            return Err(p);
        }
        // A reply: only NAT entries see them, and only once output is
        // known (the state tables clear NOOUTPUT); a UDP reply assures
        // its template, which the scalar code does.
        if !m.inbound
            && (method != flags::MASQ
                || c.flags & flags::NOOUTPUT != 0
                || (!tcp && c.control != conn::NONE))
        {
            return Err(p);
        }
        let (dest, daddr) = (c.dest, c.daddr);
        let hop = if m.inbound {
            self.egress.hop_to_dest(dest, daddr)
        } else {
            self.egress.next_hop(h.ip.dst)
        };
        let Some(hop) = hop else {
            return Err(p);
        };
        // The update: what the state tables would do (restart the timer
        // with the ESTABLISHED or UDP timeout), the incoming packet count,
        // and the sync offer.
        c.timeout = if tcp {
            e.timeouts.tcp(tcp::State::Established)
        } else {
            e.timeouts.udp()
        } / conn::TICK_MS;
        let pkts = if m.inbound { c.count_in_pkt() } else { 0 };
        let (cflags, svc) = (c.flags, c.svc);
        let vip = Endpoint::new(c.vaddr, c.vport);
        let rs = Endpoint::new(daddr, c.dport);
        e.conns.touch(id, tick);
        if let (Some(sp), true) = (&e.settings.sync, m.inbound) {
            if !crate::sync::quiet(sp, cflags, pkts) {
                e.sync_offer(id, pkts, tick);
            }
        }
        sums.add(e.mine(), dest, svc, m.inbound, h.ip.total as u64);
        // The rewrite and the way out.
        let mtu = hop.mtu;
        let v = match method {
            _ if !m.inbound => xmit::nat::snat_checked(&mut p, &h.ip, rs, vip, mtu),
            flags::DROUTE => xmit::dr::transmit_checked(&mut p, &h.ip, mtu),
            flags::TUNNEL => {
                let ident = self.egress.next_ident();
                let t = xmit::tun::TunParams::new(hop.src, daddr, mtu, ident);
                xmit::tun::encapsulate(&mut p, &t)
            }
            _ => xmit::nat::dnat_checked(&mut p, &h.ip, vip, rs, mtu),
        };
        match v {
            Verdict::Forward => self.egress.send_l2(io, hop.port(), hop.mac, p),
            // As `Ipvs::out_conn`: a reply's errors come from the
            // director's address towards the real server.
            v if !m.inbound => {
                let src = self.egress.src_towards(h.ip.src);
                after_xmit(&mut self.egress, io, p, v, src, now)
            }
            v => after_xmit(&mut self.egress, io, p, v, vip.addr, now),
        }
        Ok(())
    }

    /// Writes the burst's summed counts to this worker's counters.
    #[inline]
    pub(super) fn settle(&self, sums: &mut Sums) {
        if sums.n != 0 {
            sums.settle(self.ipvs.mine());
        }
    }
}
