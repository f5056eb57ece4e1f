//! The SYN proxy of NAT services (DPVS's synproxy): the director answers
//! a client's SYN itself with a cookie SYN-ACK ([`cookie`]) and keeps
//! nothing; only the client's ACK that returns a valid cookie creates the
//! connection, whose SYN then goes to the real server. The server's
//! SYN-ACK is absorbed, the client's ACK (with any data, and whatever
//! else the client sent meanwhile, up to [`HOLD_PKTS`]) is released to
//! the server, and from then on every segment is translated between the
//! two sequence spaces ([`seq`]). A SYN flood then costs the real servers
//! nothing and the director one SYN-ACK per SYN.
//!
//! Only NAT can do this: the director must see the server's SYN-ACK and
//! every reply to translate them (DR and TUN replies bypass it).
//!
//! What lives where: the cookie codec and the option and sequence
//! arithmetic here, pure functions of bytes; a connection's translation in
//! a side table ([`Side`]) beside the connection table, indexed by its
//! [`ConnId`] and valid while the entry carries
//! [`flags::SYNPROXY`](crate::conn::flags::SYNPROXY) (the 64-byte entry
//! has no room, and most connections do not need it); the packets held
//! for a connection waiting for its server in [`Held`], a fixed pool the
//! egress part keeps, as the neighbour table keeps packets waiting for
//! ARP. The engine's hooks are `ipvs/synproxy.rs`.

pub mod cookie;
pub mod opts;
pub mod seq;

use crate::conn::ConnId;
use crate::io::Buf;
use crate::wire::checksum::{checksum, fold, pseudo_header_v4, sum};
use crate::wire::{ethernet, ipv4, EtherType};
use arrayvec::ArrayVec;
use core::net::Ipv4Addr;

/// The window scale the director announces to clients that offer one.
/// The server's windows are rescaled to it ([`seq::Adjust`]); 7 is what
/// Linux announces with its default buffers, so usually nothing changes.
pub const WSCALE: u8 = 7;

/// The window of the cookie SYN-ACK (never scaled, RFC 7323).
pub const SYNACK_WINDOW: u16 = 65535;

/// Connections that can wait for their server at once, per worker.
pub const HOLD_SLOTS: usize = 256;

/// Packets held per waiting connection: the ACK, and what the client
/// sends before the server answers (an HTTP request right after the
/// ACK). Beyond this they are dropped as an ACK storm.
pub const HOLD_PKTS: usize = 4;

/// A waiting connection whose server has not answered for this long is
/// given up: its slot may be taken, and its next packet removes it.
pub const HOLD_MS: u64 = 3000;

/// The server's SYN is sent again when a client packet arrives this long
/// after the last one.
pub const SYN_RETRY_MS: u64 = 1000;

/// "No slot" for [`State::hold`].
pub const NO_HOLD: u16 = u16::MAX;

/// One proxied connection's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    /// While [`State::waiting`]: `seq` holds the cookie and `ts` the
    /// director's SYN-ACK TSval as the client echoed it; after, the
    /// translation.
    pub adjust: seq::Adjust,
    /// The server's SYN-ACK has not come yet.
    pub waiting: bool,
    /// The client's window scale, if it offered one.
    pub client_ws: Option<u8>,
    /// The [`Held`] slot while waiting.
    pub hold: u16,
}

impl Default for State {
    fn default() -> Self {
        State {
            adjust: seq::Adjust::default(),
            waiting: false,
            client_ws: None,
            hold: NO_HOLD,
        }
    }
}

/// The states of one worker's proxied connections, by [`ConnId`]. Empty
/// until a snapshot has a SYN-proxy service; then one [`State`] for
/// every connection slot (24 bytes), allocated once.
#[derive(Debug, Default)]
pub struct Side {
    states: Vec<State>,
    pub secret: cookie::Secret,
}

impl Side {
    /// Makes room for every connection of a table of `capacity` slots
    /// (once; later calls do nothing).
    pub fn ensure(&mut self, capacity: usize) {
        if self.states.len() < capacity {
            self.states = vec![State::default(); capacity];
        }
    }

    pub fn is_ready(&self) -> bool {
        !self.states.is_empty()
    }

    #[inline]
    pub fn get(&self, id: ConnId) -> Option<&State> {
        self.states.get(id.0 as usize)
    }

    #[inline]
    pub fn get_mut(&mut self, id: ConnId) -> Option<&mut State> {
        self.states.get_mut(id.0 as usize)
    }
}

/// What the server's SYN is built from, kept with the held packets so it
/// can be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syn {
    pub client: (Ipv4Addr, u16),
    pub server: (Ipv4Addr, u16),
    /// The client's ISN.
    pub isn: u32,
    pub opts: cookie::Opts,
    /// The client's latest TSval (when it uses timestamps).
    pub tsval: u32,
    pub window: u16,
}

struct Slot<B> {
    id: u32,
    since: u64,
    last_syn: u64,
    syn: Syn,
    pkts: ArrayVec<B, HOLD_PKTS>,
}

/// The packets of connections waiting for their server (see the module
/// docs): [`HOLD_SLOTS`] slots, allocated once.
pub struct Held<B> {
    slots: Vec<Slot<B>>,
}

/// Why [`Held::hold`] did not take a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The connection already holds [`HOLD_PKTS`]: an ACK storm. `syn`:
    /// the server's SYN is due again all the same.
    Storm { syn: bool },
    /// No free slot.
    Full,
    /// The slot the connection had was given up ([`HOLD_MS`]).
    Gone,
}

impl<B: Buf> Held<B> {
    pub fn new() -> Self {
        Held {
            slots: (0..HOLD_SLOTS)
                .map(|_| Slot {
                    id: u32::MAX,
                    since: 0,
                    last_syn: 0,
                    syn: Syn {
                        client: (Ipv4Addr::UNSPECIFIED, 0),
                        server: (Ipv4Addr::UNSPECIFIED, 0),
                        isn: 0,
                        opts: cookie::Opts::default(),
                        tsval: 0,
                        window: 0,
                    },
                    pkts: ArrayVec::new(),
                })
                .collect(),
        }
    }

    /// How many connections are waiting (for tests and listings).
    pub fn waiting(&self) -> usize {
        self.slots.iter().filter(|s| s.id != u32::MAX).count()
    }

    /// Holds `pkt` for connection `id`: in its `slot` (from its
    /// [`State::hold`]), or, for a connection without one, in a new slot
    /// whose SYN is `syn`. Held: the slot, and whether the server's SYN
    /// is due (first, or again after [`SYN_RETRY_MS`]); else the packet
    /// back, with why.
    pub fn hold(
        &mut self,
        id: ConnId,
        slot: u16,
        syn: Option<Syn>,
        pkt: B,
        now: u64,
    ) -> Result<(u16, bool), (Refused, B)> {
        if let Some(s) = self.slots.get_mut(slot as usize).filter(|s| s.id == id.0) {
            let again = now.saturating_sub(s.last_syn) >= SYN_RETRY_MS;
            if again {
                s.last_syn = now;
            }
            if s.pkts.is_full() {
                return Err((Refused::Storm { syn: again }, pkt));
            }
            s.pkts.push(pkt);
            return Ok((slot, again));
        }
        let Some(syn) = syn else {
            return Err((Refused::Gone, pkt));
        };
        let free = self
            .slots
            .iter()
            .position(|s| s.id == u32::MAX || now.saturating_sub(s.since) >= HOLD_MS);
        let Some(i) = free else {
            return Err((Refused::Full, pkt));
        };
        let s = &mut self.slots[i];
        // A given-up connection's packets go back to their pool.
        s.pkts.clear();
        s.id = id.0;
        s.since = now;
        s.last_syn = now;
        s.syn = syn;
        s.pkts.push(pkt);
        Ok((i as u16, true))
    }

    /// The SYN of connection `id`'s slot, with the client's latest TSval.
    pub fn syn(&self, id: ConnId, slot: u16) -> Option<Syn> {
        self.slots
            .get(slot as usize)
            .filter(|s| s.id == id.0)
            .map(|s| s.syn)
    }

    /// Frees connection `id`'s slot, handing its packets to `out` in the
    /// order they came.
    pub fn release(&mut self, id: ConnId, slot: u16, out: &mut ArrayVec<B, HOLD_PKTS>) {
        if let Some(s) = self.slots.get_mut(slot as usize).filter(|s| s.id == id.0) {
            s.id = u32::MAX;
            out.extend(s.pkts.drain(..));
        }
    }
}

impl<B: Buf> Default for Held<B> {
    fn default() -> Self {
        Self::new()
    }
}

/// A segment without data the director builds (a SYN-ACK or a SYN).
pub struct Segment<'a> {
    pub src: (Ipv4Addr, u16),
    pub dst: (Ipv4Addr, u16),
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub opts: &'a [u8],
}

const IP_AT: usize = ethernet::HEADER_LEN;

/// Writes `s` over the frame `pkt` as an untagged IPv4 frame (the
/// Ethernet addresses are the sender's business), with DF set, TTL 64,
/// and full checksums. False if the buffer cannot hold it.
pub fn write_segment<B: Buf>(pkt: &mut B, s: &Segment, ident: u16) -> bool {
    let tcp_len = 20 + s.opts.len();
    let total = 20 + tcp_len;
    if !s.opts.len().is_multiple_of(4) || s.opts.len() > 40 || !pkt.set_len(IP_AT + total) {
        return false;
    }
    let f = pkt.data_mut();
    f[12..14].copy_from_slice(&EtherType::IPV4.to_be_bytes());
    let ip = &mut f[IP_AT..IP_AT + 20];
    ip.fill(0);
    ip[0] = 0x45;
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = ipv4::PROTO_TCP;
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&ident.to_be_bytes());
    ip[12..16].copy_from_slice(&s.src.0.octets());
    ip[16..20].copy_from_slice(&s.dst.0.octets());
    let c = checksum(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let t = &mut f[IP_AT + 20..IP_AT + total];
    t[0..2].copy_from_slice(&s.src.1.to_be_bytes());
    t[2..4].copy_from_slice(&s.dst.1.to_be_bytes());
    t[4..8].copy_from_slice(&s.seq.to_be_bytes());
    t[8..12].copy_from_slice(&s.ack.to_be_bytes());
    t[12] = ((tcp_len / 4) << 4) as u8;
    t[13] = s.flags;
    t[14..16].copy_from_slice(&s.window.to_be_bytes());
    t[16..20].fill(0);
    t[20..].copy_from_slice(s.opts);
    let ph = pseudo_header_v4(s.src.0, s.dst.0, ipv4::PROTO_TCP, tcp_len as u16);
    let c = !fold(sum(t, ph));
    t[16..18].copy_from_slice(&c.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::mem::VecBuf;

    #[test]
    fn a_side_entry_is_24_bytes() {
        // The cost per connection slot of a worker with a proxied service.
        assert_eq!(core::mem::size_of::<State>(), 24);
    }

    fn syn() -> Syn {
        Syn {
            client: (Ipv4Addr::new(10, 0, 0, 2), 40000),
            server: (Ipv4Addr::new(10, 1, 0, 12), 80),
            isn: 7,
            opts: cookie::Opts::default(),
            tsval: 0,
            window: 0,
        }
    }

    #[test]
    fn the_hold_keeps_order_refuses_and_gives_up() {
        let mut h: Held<VecBuf> = Held::new();
        let (a, b) = (ConnId(3), ConnId(4));
        let p = |n: u8| VecBuf::new(&[n]);
        // First packet: a new slot and the SYN due; then held in order,
        // the SYN due again only after SYN_RETRY_MS.
        assert_eq!(
            h.hold(a, NO_HOLD, Some(syn()), p(1), 0).ok(),
            Some((0, true))
        );
        assert_eq!(h.hold(a, 0, None, p(2), 10).ok(), Some((0, false)));
        assert_eq!(h.hold(a, 0, None, p(3), SYN_RETRY_MS).ok(), Some((0, true)));
        assert_eq!(
            h.hold(a, 0, None, p(4), SYN_RETRY_MS + 1).ok(),
            Some((0, false))
        );
        assert!(matches!(
            h.hold(a, 0, None, p(5), SYN_RETRY_MS + 2),
            Err((Refused::Storm { syn: false }, _))
        ));
        // Another connection cannot use a's slot, and without a SYN has
        // nothing to start one with.
        assert!(matches!(
            h.hold(b, 0, None, p(9), 0),
            Err((Refused::Gone, _))
        ));
        assert_eq!(h.hold(b, 0, Some(syn()), p(9), 0).ok(), Some((1, true)));
        assert_eq!(h.waiting(), 2);
        let mut out = ArrayVec::new();
        h.release(a, 0, &mut out);
        let got: Vec<u8> = out.iter().map(|b| b.bytes[0]).collect();
        assert_eq!(got, [1, 2, 3, 4]);
        assert_eq!(h.waiting(), 1);
        // Fill every slot (a's freed one first), then a slot given up
        // after HOLD_MS (b's, the oldest) is taken by the next one.
        for i in 2..HOLD_SLOTS as u32 {
            assert!(h
                .hold(ConnId(100 + i), NO_HOLD, Some(syn()), p(0), 1)
                .is_ok());
        }
        assert_eq!(h.waiting(), HOLD_SLOTS - 1);
        assert_eq!(
            h.hold(ConnId(9), NO_HOLD, Some(syn()), p(0), 2).ok(),
            Some((255, true))
        );
        assert!(matches!(
            h.hold(ConnId(10), NO_HOLD, Some(syn()), p(0), 2),
            Err((Refused::Full, _))
        ));
        assert_eq!(
            h.hold(ConnId(10), NO_HOLD, Some(syn()), p(0), HOLD_MS).ok(),
            Some((1, true))
        );
        // b's slot went to 10: b's next packet finds it gone.
        assert!(matches!(
            h.hold(b, 1, None, p(0), HOLD_MS),
            Err((Refused::Gone, _))
        ));
    }
}
