//! Stages 3 and 4: the established connection's one mutable visit, then
//! rewrite, counters and transmit over every frame noted so far.
//!
//! What qualifies is exactly what leaves the scalar engine's state
//! handling with nothing to do but restart the timer (`on_packet`'s
//! ESTABLISHED-ACK shortcut, and UDP, whose one state never changes):
//! everything the scalar code would do for such a packet is done here, in
//! the same order as far as anything outside the entry can tell, so the
//! two paths give the same bytes and counters (the differential tests).

use super::classify::Meta;
use crate::conn::{self, flags, ConnId, Tick};
use crate::host::{Host, NextHop};
use crate::io::{Buf, Io, BURST};
use crate::proto::tcp;
use crate::service::counters::CoreCounters;
use crate::wire::ipv4;
use crate::xmit::{self, Endpoint, Verdict};
use arrayvec::ArrayVec;
use core::net::Ipv4Addr;

/// How a noted frame leaves: its connection's facts, copied at the update
/// so the rewrite stage need not visit the entry again.
#[derive(Clone, Copy)]
pub(super) struct Act {
    method: u16,
    inbound: bool,
    hop: NextHop,
    vaddr: Ipv4Addr,
    vport: u16,
    daddr: Ipv4Addr,
    dport: u16,
    dest: u32,
    svc: u32,
    h: xmit::Hdr,
}

/// The frames noted since the last flush, in arrival order.
pub(super) struct Pending<B> {
    frames: ArrayVec<(B, Act), BURST>,
}

impl<B> Default for Pending<B> {
    fn default() -> Self {
        Pending {
            frames: ArrayVec::new(),
        }
    }
}

impl<B> Pending<B> {
    #[inline]
    pub(super) fn push(&mut self, p: B, a: Act) {
        self.frames.push((p, a));
    }
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

/// Per-burst sums of the packet and byte counters: a burst's frames
/// mostly go to a few real servers, whose shared counter lines are then
/// written once per burst instead of once per packet.
#[derive(Default)]
struct Sums {
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
            count(mine, dest, svc, inbound, 1, len);
        }
    }

    #[inline]
    fn settle(&self, mine: &CoreCounters) {
        for &(dest, svc, inbound, pkts, bytes) in &self.rows[..self.n] {
            count(mine, dest, svc, inbound, pkts, bytes);
        }
    }
}

#[inline]
fn count(mine: &CoreCounters, dest: u32, svc: u32, inbound: bool, pkts: u64, bytes: u64) {
    if let Some(d) = mine.dests.get(dest as usize) {
        if inbound { &d.in_pkts } else { &d.out_pkts }.add(pkts);
        if inbound { &d.in_bytes } else { &d.out_bytes }.add(bytes);
    }
    if let Some(s) = mine.services.get(svc as usize) {
        if inbound { &s.in_pkts } else { &s.out_pkts }.add(pkts);
        if inbound { &s.in_bytes } else { &s.out_bytes }.add(bytes);
    }
}

/// Whether a TCP segment with `flags` keeps an ESTABLISHED entry
/// ESTABLISHED in every state table (`ipvs::established_ack`).
#[inline(always)]
fn established_ack(flags: u8) -> bool {
    use crate::wire::tcp::{FLAG_ACK, FLAG_FIN, FLAG_RST, FLAG_SYN};
    flags & (FLAG_ACK | FLAG_FIN | FLAG_RST | FLAG_SYN) == FLAG_ACK
}

impl<B: Buf> Host<B> {
    /// Stage 3 for frame `m` of connection `id`: if the established path
    /// takes it, the entry's update, and how the frame leaves. `None`: the
    /// scalar engine's, and nothing has been changed.
    #[inline]
    pub(super) fn fast_update(&mut self, id: ConnId, m: &Meta, tick: Tick) -> Option<Act> {
        let h = &m.h;
        let tcp = h.ip.proto == ipv4::PROTO_TCP;
        if !(tcp && established_ack(h.flags) || h.ip.proto == ipv4::PROTO_UDP) {
            return None;
        }
        let e = &self.ipvs;
        let c = e.conns.get(id)?;
        let method = c.flags & flags::FWD_MASK;
        let plain = matches!(method, flags::DROUTE | flags::TUNNEL | flags::MASQ);
        if !plain
            || (tcp && c.state != tcp::State::Established as u8)
            || c.flags & flags::ONE_PACKET != 0
            || c.dest == conn::NONE
            || !e.table.dest_live(c.dest)
        {
            return None;
        }
        // A reply: only NAT entries see them, and only once output is
        // known (the state tables clear NOOUTPUT); a UDP reply assures
        // its template, which the scalar code does.
        if !m.inbound
            && (method != flags::MASQ
                || c.flags & flags::NOOUTPUT != 0
                || (!tcp && c.control != conn::NONE))
        {
            return None;
        }
        let (dest, daddr) = (c.dest, c.daddr);
        let hop = if m.inbound {
            self.hop_to_dest(dest, daddr)?
        } else {
            self.next_hop(h.ip.dst)?
        };
        let e = &mut self.ipvs;
        let timeout = if tcp {
            e.timeouts.tcp(tcp::State::Established)
        } else {
            e.timeouts.udp()
        };
        let c = e.conns.get_mut(id)?;
        c.timeout = timeout / conn::TICK_MS;
        let pkts = if m.inbound { c.count_in_pkt() } else { 0 };
        let act = Act {
            method,
            inbound: m.inbound,
            hop,
            vaddr: c.vaddr,
            vport: c.vport,
            daddr,
            dport: c.dport,
            dest,
            svc: c.svc,
            h: h.ip,
        };
        let cflags = c.flags;
        e.conns.touch(id, tick);
        if let (Some(p), true) = (&e.settings.sync, m.inbound) {
            if !crate::sync::quiet(p, cflags, pkts) {
                e.sync_offer(id, pkts, tick);
            }
        }
        Some(act)
    }

    /// Stage 4: rewrites, counts and queues every noted frame.
    pub(super) fn flush_pending<I: Io<Buf = B>>(
        &mut self,
        io: &mut I,
        pending: &mut Pending<B>,
        now: u64,
    ) {
        let mut sums = Sums::default();
        for (mut p, a) in pending.frames.drain(..) {
            sums.add(self.ipvs.mine(), a.dest, a.svc, a.inbound, a.h.total as u64);
            let (vip, rs) = (
                Endpoint::new(a.vaddr, a.vport),
                Endpoint::new(a.daddr, a.dport),
            );
            let mtu = a.hop.mtu;
            let v = match a.method {
                _ if !a.inbound => xmit::nat::snat_checked(&mut p, &a.h, rs, vip, mtu),
                flags::DROUTE => xmit::dr::transmit_checked(&mut p, &a.h, mtu),
                flags::TUNNEL => {
                    let ident = self.ipvs.next_ident();
                    let t = xmit::tun::TunParams::new(a.hop.src, a.daddr, mtu, ident);
                    xmit::tun::encapsulate(&mut p, &t)
                }
                _ => xmit::nat::dnat_checked(&mut p, &a.h, vip, rs, mtu),
            };
            match v {
                Verdict::Forward => self.send_l2(io, a.hop.port(), a.hop.mac, p),
                v => self.after_xmit(io, p, v, a.vaddr, now),
            }
        }
        sums.settle(self.ipvs.mine());
    }
}
