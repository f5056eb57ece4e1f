//! Stage 1: what each frame of a burst is, parsed once.

use crate::conn::{self, ConnKey};
use crate::host::{Host, Local};
use crate::io::Buf;
use crate::ipvs::{l4_of, L4};
use crate::wire::{ethernet, ipv4, EtherType, EthernetFrame, Ipv4Packet};
use core::net::Ipv4Addr;

/// A TCP/UDP/SCTP packet of a connection this worker owns, passing every
/// check [`Host::input`] makes on its way to the engine.
#[derive(Clone, Copy)]
pub(super) struct Meta {
    pub(super) h: L4,
    /// Client to director (looked up as `in`), else a NAT reply.
    pub(super) inbound: bool,
}

impl Meta {
    #[inline]
    pub(super) fn key(&self) -> ConnKey<Ipv4Addr> {
        let h = &self.h;
        ConnKey::new(h.ip.proto, h.ip.src, h.sport, h.ip.dst, h.dport)
    }
}

#[derive(Clone, Copy)]
pub(super) enum Class {
    Mine(Meta),
    /// Such a packet, of a connection worker `owner` owns; `reply`: a NAT
    /// reply (counted apart).
    Peer {
        owner: u8,
        reply: bool,
    },
    /// Anything else: the scalar code's.
    Other,
}

/// What a destination address is to the engine.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dst {
    /// A VIP the director serves now.
    Vip,
    /// Nothing of ours: a NAT reply, or not ours at all.
    Away,
    /// Local, broadcast, a fwmark rule's, or a VIP on standby.
    Other,
}

/// The last destination classified: nearly every frame of a burst goes to
/// the same VIP, whose class then costs a compare.
#[derive(Default)]
pub(super) struct Memo {
    dst: Option<(u32, Dst)>,
}

impl<B: Buf> Host<B> {
    #[inline]
    fn dst_class(&self, dst: Ipv4Addr, memo: &mut Memo) -> Dst {
        let d = dst.to_bits();
        if let Some((a, c)) = memo.dst {
            if a == d {
                return c;
            }
        }
        let c = match self.classify(dst) {
            Some(Local::Vip) if self.standby() => Dst::Other,
            Some(Local::Vip) => Dst::Vip,
            None if !self.ipvs.table.marks_dest(dst) => Dst::Away,
            _ => Dst::Other,
        };
        memo.dst = Some((d, c));
        c
    }

    /// Stage 1 for one frame received on `port` by worker `me` of `n`.
    #[inline]
    pub(super) fn classify_frame(
        &self,
        port: usize,
        p: &B,
        me: usize,
        n: usize,
        memo: &mut Memo,
    ) -> Class {
        let frame = p.data();
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return Class::Other;
        };
        if eth.dst() != self.ports[port].mac || eth.ethertype() != EtherType::IPV4 {
            return Class::Other;
        }
        let Ok(ip) = Ipv4Packet::new_checked(&frame[ethernet::HEADER_LEN..]) else {
            return Class::Other;
        };
        if ip.protocol() == ipv4::PROTO_ICMP || !crate::io::ip_csum_ok(p, &ip) {
            return Class::Other;
        }
        let inbound = match self.dst_class(ip.dst(), memo) {
            Dst::Vip => true,
            Dst::Away => false,
            Dst::Other => return Class::Other,
        };
        let Ok(h) = l4_of(&ip) else {
            return Class::Other;
        };
        if n > 1 {
            let (caddr, cport) = if inbound {
                (h.ip.src, h.sport)
            } else {
                (h.ip.dst, h.dport)
            };
            let owner = conn::owner_core(caddr, cport, n);
            if owner != me {
                return Class::Peer {
                    owner: owner as u8,
                    reply: !inbound,
                };
            }
        }
        Class::Mine(Meta { h, inbound })
    }
}
