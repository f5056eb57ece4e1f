//! The SYN proxy's hooks in the engine ([`crate::synproxy`] has the
//! what and why): a packet with no connection to a SYN-proxy service is
//! answered with a cookie or validated here, a proxied connection's
//! packets are held while it waits for its server and translated after,
//! and the server's SYN-ACK is absorbed.

use super::l4::{parse_l4, L4};
use super::Ipvs;
use crate::conn::{self, flags, ConnId, ConnKey};
use crate::io::{Buf, Io};
use crate::output::egress::Egress;
use crate::proto::Dir;
use crate::stats::{DropReason, Event};
use crate::synproxy::{self, cookie, opts, seq, Refused, Segment, State, Syn};
use crate::wire::ethernet;
use crate::wire::ipv4::PROTO_TCP;
use crate::wire::tcp::{FLAG_ACK, FLAG_FIN, FLAG_RST, FLAG_SYN, MIN_HEADER_LEN};
use arrayvec::ArrayVec;

const IP_AT: usize = ethernet::HEADER_LEN;

/// The TCP segment of a frame whose validated header is `h.ip`, and its
/// header length.
fn segment<'a>(frame: &'a [u8], h: &L4) -> Option<(&'a [u8], usize)> {
    let at = IP_AT + h.ip.hl as usize;
    let seg = frame.get(at..IP_AT + h.ip.total as usize)?;
    let hl = (*seg.get(12)? >> 4) as usize * 4;
    (hl >= MIN_HEADER_LEN && hl <= seg.len()).then_some((seg, hl))
}

fn segment_mut<'a>(frame: &'a mut [u8], h: &L4) -> Option<&'a mut [u8]> {
    let at = IP_AT + h.ip.hl as usize;
    frame.get_mut(at..IP_AT + h.ip.total as usize)
}

fn be32(b: &[u8], at: usize) -> u32 {
    opts::be32(b, at).unwrap_or(0)
}

fn flow(h: &L4) -> cookie::Flow {
    cookie::Flow {
        saddr: h.ip.src.to_bits(),
        daddr: h.ip.dst.to_bits(),
        sport: h.sport,
        dport: h.dport,
    }
}

/// Sends the real server the SYN `s`.
fn send_syn<B: Buf, I: Io<Buf = B>>(eg: &mut Egress<B>, io: &mut I, s: &Syn, now: u64) {
    let Some(mut b) = io.alloc() else {
        return eg.stats.count_drop(DropReason::NoBuffer);
    };
    let mut o = [0u8; opts::MAX_SYN_OPTS];
    let o_ = &s.opts;
    let n = opts::write_syn(
        &mut o,
        o_.mss,
        o_.sack,
        o_.ts.then_some((s.tsval, 0)),
        o_.wscale,
    );
    let seg = Segment {
        src: s.client,
        dst: s.server,
        seq: s.isn,
        ack: 0,
        flags: FLAG_SYN,
        window: s.window,
        opts: &o[..n],
    };
    let ident = eg.next_ident();
    if !synproxy::write_segment(&mut b, &seg, ident) {
        return eg.stats.count_drop(DropReason::NoBuffer);
    }
    eg.send_ip(io, b, now);
}

impl Ipvs {
    /// Whether a packet without a connection is for a SYN-proxy service.
    #[inline]
    pub(super) fn synproxied(&self, h: &L4) -> bool {
        self.sp.is_ready()
            && h.ip.proto == PROTO_TCP
            && self
                .table
                .lookup(h.ip.proto, h.ip.dst, h.dport)
                .is_some_and(|i| self.table.services()[i as usize].synproxy)
    }

    /// A packet to a SYN-proxy service without a connection: a SYN gets
    /// its cookie, an ACK returning a good one its connection (and the
    /// server its SYN), anything else is dropped.
    pub(super) fn synproxy_new<B: Buf, I: Io<Buf = B>>(
        &mut self,
        eg: &mut Egress<B>,
        io: &mut I,
        pkt: B,
        h: &L4,
        now: u64,
    ) {
        let f = h.flags;
        if f & (FLAG_SYN | FLAG_ACK | FLAG_RST | FLAG_FIN) == FLAG_SYN {
            return self.synproxy_answer(eg, io, pkt, h, now);
        }
        if f & (FLAG_SYN | FLAG_RST | FLAG_ACK) != FLAG_ACK {
            return eg.stats.count_drop(DropReason::NoConnection);
        }
        let Some((seg, hl)) = segment(pkt.data(), h) else {
            return eg.stats.count_drop(DropReason::Malformed);
        };
        let (sq, ack) = (be32(seg, 4), be32(seg, 8));
        let win = u16::from_be_bytes([seg[14], seg[15]]);
        let isn = sq.wrapping_sub(1);
        let cookie = ack.wrapping_sub(1);
        let o = match cookie::decode(&self.sp.secret, &flow(h), isn, cookie, now) {
            Ok(o) => o,
            Err(_) => return eg.stats.count_drop(DropReason::SynproxyRejected),
        };
        let ts = opts::scan(&seg[MIN_HEADER_LEN..hl]).ts_values(&seg[MIN_HEADER_LEN..hl]);
        eg.stats.event(Event::SynproxyValidated);
        // The connection as the SYN would have made it: scheduled, bound,
        // SYN_RECV.
        let tick = (now / conn::TICK_MS as u64) as conn::Tick;
        let key = ConnKey::new(h.ip.proto, h.ip.src, h.sport, h.ip.dst, h.dport);
        let hs = L4 {
            flags: FLAG_SYN,
            ..*h
        };
        let Some(id) = self.new_conn(eg, io, &hs, key, &pkt, now, tick) else {
            return;
        };
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        if c.fwd() != flags::MASQ {
            // The config refuses this; a server added since cannot be
            // proxied, so its connection is not made.
            self.unbind(id, now);
            self.conns.remove(id);
            return eg.stats.count_drop(DropReason::NoDestination);
        }
        c.flags |= flags::SYNPROXY;
        let server = (c.daddr, c.dport);
        self.on_packet(id, &hs, Dir::Input, tick);
        let scaled = (win as u32) << o.wscale.unwrap_or(0);
        let syn = Syn {
            client: (h.ip.src, h.sport),
            server,
            isn,
            opts: o,
            tsval: ts.map_or(0, |t| t.0),
            window: scaled.min(u16::MAX as u32) as u16,
        };
        if let Some(st) = self.sp.get_mut(id) {
            *st = State {
                adjust: seq::Adjust {
                    seq: cookie,
                    ts: ts.filter(|_| o.ts).map(|t| t.1),
                    ..Default::default()
                },
                waiting: true,
                client_ws: o.wscale,
                hold: synproxy::NO_HOLD,
            };
        }
        self.synproxy_hold(eg, io, pkt, id, Some(syn), now);
    }

    /// A SYN to a SYN-proxy service: answered in its own buffer with the
    /// cookie SYN-ACK, from the VIP.
    fn synproxy_answer<B: Buf, I: Io<Buf = B>>(
        &mut self,
        eg: &mut Egress<B>,
        io: &mut I,
        mut pkt: B,
        h: &L4,
        now: u64,
    ) {
        let Some((seg, hl)) = segment(pkt.data(), h) else {
            return eg.stats.count_drop(DropReason::Malformed);
        };
        let isn = be32(seg, 4);
        let o_bytes = &seg[MIN_HEADER_LEN..hl];
        let l = opts::scan(o_bytes);
        let o = cookie::Opts::from_syn(l.mss, l.wscale, l.sack_perm, l.ts.is_some());
        let cookie = cookie::encode(&self.sp.secret, &flow(h), isn, now, &o);
        // The director's TSval: its clock; the client echoes it, which is
        // how the server's timestamps are later moved onto it.
        let ts = l.ts_values(o_bytes).map(|(v, _)| (now as u32, v));
        let mut ob = [0u8; opts::MAX_SYN_OPTS];
        let n = opts::write_syn(
            &mut ob,
            o.mss,
            o.sack,
            ts,
            o.wscale.map(|_| synproxy::WSCALE),
        );
        let s = Segment {
            src: (h.ip.dst, h.dport),
            dst: (h.ip.src, h.sport),
            seq: cookie,
            ack: isn.wrapping_add(1),
            flags: FLAG_SYN | FLAG_ACK,
            window: synproxy::SYNACK_WINDOW,
            opts: &ob[..n],
        };
        if !synproxy::write_segment(&mut pkt, &s, 0) {
            return eg.stats.count_drop(DropReason::NoBuffer);
        }
        eg.stats.event(Event::SynproxyCookiesSent);
        eg.send_ip(io, pkt, now);
    }

    /// Holds a packet of connection `id` until its server answers (`syn`:
    /// the SYN for a connection that has no slot yet), sending the SYN
    /// when it is due.
    fn synproxy_hold<B: Buf, I: Io<Buf = B>>(
        &mut self,
        eg: &mut Egress<B>,
        io: &mut I,
        pkt: B,
        id: ConnId,
        syn: Option<Syn>,
        now: u64,
    ) {
        let slot = self.sp.get(id).map_or(synproxy::NO_HOLD, |s| s.hold);
        match eg.held.hold(id, slot, syn, pkt, now) {
            Ok((slot, due)) => {
                if let Some(st) = self.sp.get_mut(id) {
                    st.hold = slot;
                }
                if let (true, Some(s)) = (due, eg.held.syn(id, slot)) {
                    send_syn(eg, io, &s, now);
                }
            }
            Err((Refused::Storm { syn }, _)) => {
                eg.stats.count_drop(DropReason::SynproxyAckStorm);
                if let (true, Some(s)) = (syn, eg.held.syn(id, slot)) {
                    send_syn(eg, io, &s, now);
                }
            }
            Err((Refused::Full, _)) => eg.stats.count_drop(DropReason::SynproxyHoldFull),
            Err((Refused::Gone, _)) => {
                // Its server never answered: the client starts over.
                self.unbind(id, now);
                self.conns.remove(id);
                eg.stats.count_drop(DropReason::NoConnection);
            }
        }
    }

    /// A client packet of proxied connection `id`: held while it waits,
    /// else translated and given back for forwarding.
    #[inline(never)]
    pub(super) fn synproxy_in<B: Buf, I: Io<Buf = B>>(
        &mut self,
        eg: &mut Egress<B>,
        io: &mut I,
        mut pkt: B,
        h: &L4,
        id: ConnId,
        now: u64,
    ) -> Option<B> {
        let st = *self.sp.get(id)?;
        if st.waiting {
            self.synproxy_hold(eg, io, pkt, id, None, now);
            return None;
        }
        if let Some(seg) = segment_mut(pkt.data_mut(), h) {
            seq::to_server(seg, &st.adjust);
        }
        Some(pkt)
    }

    /// A server packet of proxied connection `id`: its SYN-ACK ends the
    /// wait (absorbed; the held packets go), an RST while waiting is
    /// passed on in the client's terms, anything else while waiting is
    /// dropped; after, it is translated and given back for forwarding.
    #[inline(never)]
    pub(super) fn synproxy_out<B: Buf, I: Io<Buf = B>>(
        &mut self,
        eg: &mut Egress<B>,
        io: &mut I,
        mut pkt: B,
        h: &L4,
        id: ConnId,
        now: u64,
    ) -> Option<B> {
        let mut st = *self.sp.get(id)?;
        if !st.waiting {
            if let Some(seg) = segment_mut(pkt.data_mut(), h) {
                seq::to_client(seg, &st.adjust);
            }
            return Some(pkt);
        }
        let Some((seg, hl)) = segment(pkt.data(), h) else {
            eg.stats.count_drop(DropReason::Malformed);
            return None;
        };
        let (sq, ack) = (be32(seg, 4), be32(seg, 8));
        let cookie = st.adjust.seq;
        let syn = eg.held.syn(id, st.hold);
        let f = h.flags;
        if f & (FLAG_SYN | FLAG_ACK | FLAG_RST) == FLAG_SYN | FLAG_ACK
            && syn.is_some_and(|s| ack == s.isn.wrapping_add(1))
        {
            let l = opts::scan(&seg[MIN_HEADER_LEN..hl]);
            let server_ts = l.ts_values(&seg[MIN_HEADER_LEN..hl]);
            st.adjust = seq::Adjust {
                seq: cookie.wrapping_sub(sq),
                ts: match (st.adjust.ts, server_ts) {
                    (Some(ours), Some((theirs, _))) => Some(ours.wrapping_sub(theirs)),
                    _ => None,
                },
                ws_server: match (st.client_ws, l.wscale) {
                    (Some(_), Some(w)) => w.min(cookie::WSCALE_MAX),
                    _ => 0,
                },
                ws_client: if st.client_ws.is_some() {
                    synproxy::WSCALE
                } else {
                    0
                },
                ws_unscale: match (st.client_ws, l.wscale) {
                    (Some(c), None) => c,
                    _ => 0,
                },
            };
            let slot = st.hold;
            st.waiting = false;
            st.hold = synproxy::NO_HOLD;
            if let Some(s) = self.sp.get_mut(id) {
                *s = st;
            }
            let tick = (now / conn::TICK_MS as u64) as conn::Tick;
            self.on_packet(id, h, Dir::Output, tick);
            if let Some(c) = self.conns.get(id) {
                self.count(c, h.ip.total as u64, false);
            }
            drop(pkt);
            let mut out: ArrayVec<B, { synproxy::HOLD_PKTS }> = ArrayVec::new();
            eg.held.release(id, slot, &mut out);
            for p in out {
                match parse_l4(p.data()) {
                    Ok(ph) => self.in_conn(eg, io, p, &ph, Some(id), now),
                    Err(r) => eg.stats.count_drop(r),
                }
            }
            return None;
        }
        if f & FLAG_RST != 0 {
            // The server refused: the client hears it as from the peer it
            // knows, at the sequence number it expects.
            st.adjust = seq::Adjust {
                seq: cookie.wrapping_add(1).wrapping_sub(sq),
                ..Default::default()
            };
            let mut out: ArrayVec<B, { synproxy::HOLD_PKTS }> = ArrayVec::new();
            eg.held.release(id, st.hold, &mut out);
            st.waiting = false;
            st.hold = synproxy::NO_HOLD;
            if let Some(s) = self.sp.get_mut(id) {
                *s = st;
            }
            if let Some(seg) = segment_mut(pkt.data_mut(), h) {
                seq::to_client(seg, &st.adjust);
            }
            return Some(pkt);
        }
        eg.stats.count_drop(DropReason::NoConnection);
        None
    }
}
