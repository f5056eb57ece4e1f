//! Stage 1: what each frame of a burst is, parsed once.

use crate::conn::{self, ConnKey};
use crate::host::{Host, Local};
use crate::io::{Buf, Csum};
use crate::ipvs::L4;
use crate::wire::{checksum, ipv4, EtherType};
use crate::xmit;
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
    ///
    /// The common case only, read straight from the first 54 bytes: an
    /// untagged IPv4 frame to this port's MAC (or a VRRP virtual MAC it
    /// takes), a 20-byte header, no
    /// fragment, TCP or UDP. Anything else (IP options, SCTP, ICMP,
    /// fragments, short or inconsistent frames) is [`Class::Other`] and
    /// meets [`Host::input`]'s full checks, which come to the same verdict
    /// for what this accepts.
    #[inline]
    pub(super) fn classify_frame(
        &self,
        port: usize,
        p: &B,
        me: usize,
        n: usize,
        memo: &mut Memo,
    ) -> Class {
        let f = p.data();
        // Ethernet (14), IPv4 (20), the ports and (TCP) the flags byte.
        let Some(b) = f.first_chunk::<48>() else {
            return Class::Other;
        };
        let be16 = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let be32 = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let to_port = b[..6] == self.egress.ports[port].mac.0
            || self.accepts_mac(port, crate::wire::MacAddr::from_bytes(&b[..6]));
        if !to_port || be16(12) != EtherType::IPV4 || b[14] != 0x45 {
            return Class::Other;
        }
        let proto = b[23];
        let min = match proto {
            ipv4::PROTO_TCP => 40,
            ipv4::PROTO_UDP => 28,
            _ => return Class::Other,
        };
        let (total, frag) = (be16(16), be16(20));
        if frag & 0x3fff != 0 || (total as usize) < min || total as usize > f.len() - 14 {
            return Class::Other;
        }
        let csum_ok = match p.rx_offload().ip {
            Csum::Good => true,
            Csum::Bad => false,
            Csum::Unknown => b
                .split_first_chunk::<14>()
                .and_then(|(_, ip)| ip.first_chunk::<20>())
                .is_some_and(|h| checksum::fold(checksum::sum20(h, 0)) == 0xffff),
        };
        if !csum_ok {
            return Class::Other;
        }
        let (src, dst) = (Ipv4Addr::from_bits(be32(26)), Ipv4Addr::from_bits(be32(30)));
        let inbound = match self.dst_class(dst, memo) {
            Dst::Vip => true,
            Dst::Away => false,
            Dst::Other => return Class::Other,
        };
        let h = L4 {
            sport: be16(34),
            dport: be16(36),
            flags: if proto == ipv4::PROTO_TCP { b[47] } else { 0 },
            next_chunk: None,
            ip: xmit::Hdr {
                hl: 20,
                proto,
                ttl: b[22],
                df: frag & 0x4000 != 0,
                fragment: false,
                icmp_error: false,
                total,
                src,
                dst,
            },
        };
        if n > 1 {
            let (caddr, cport) = if inbound {
                (src, h.sport)
            } else {
                (dst, h.dport)
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
