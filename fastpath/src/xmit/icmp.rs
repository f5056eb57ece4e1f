//! ICMP errors (reference 6.5, and the tunnel case of 6.3): reading the
//! packet an error is about, translating errors across NAT, and building
//! the errors the director itself sends.
//!
//! The flow for an ICMP error arriving at the director:
//! 1. [`classify`] it. Only DEST_UNREACH, SOURCE_QUENCH and TIME_EXCEEDED
//!    concern IPVS; the result names the quoted packet's protocol, source
//!    and destination, as it was sent.
//! 2. The caller looks the quoted packet up. For an error from the client
//!    side the quoted packet went director → client (for NAT, the SNATed
//!    reply: VIP:vport → client), so it matches the connection with source
//!    and destination swapped, as an incoming packet. For an error from the
//!    real-server side the quoted packet is the client's request as the
//!    director forwarded it (for NAT: client → real server), so it matches
//!    with source and destination swapped, as a reply from the real server
//!    (IPVS's outgoing lookup). For [`Embedded::tunnel`] errors the quoted
//!    packet is the client's original request inside the director's IPIP
//!    packet: an incoming lookup without swapping.
//! 3. NAT: [`translate_to_real_server`] or [`translate_to_client`], then
//!    route the result. DR and TUN: relay the error unchanged with
//!    [`super::dr::transmit`] or [`super::tun::encapsulate`], as IPVS does.
//!    Tunnel errors: [`build_tunnel_error`] makes the error for the client.
//!
//! Errors the director sends itself ([`build_error`]) follow Linux's
//! `icmp_send`: never about an ICMP error, a non-first fragment or a packet
//! from or to a non-unicast address; TOS precedence "internetwork control";
//! DF clear; the offending datagram quoted up to a 576-byte message.

use super::{check_ttl_mtu, finish, has_ports, ip_of, Endpoint, Hdr, Verdict, IP_AT, MIN_MTU};
use crate::io::Buf;
use crate::wire::checksum::{update16, update32};
use crate::wire::icmpv4::{self, Icmpv4Packet};
use crate::wire::{get_u16, ipv4, tcp, udp, EtherType, Ipv4Packet, QuotedIpv4};
use core::net::Ipv4Addr;

/// Largest error message the director sends, IP header included (RFC 1812
/// 4.3.2.3, and Linux's limit for IPv4).
pub const MAX_ERROR_LEN: usize = 576;

/// Outer IP header and ICMP header of an error the director builds.
const ERROR_HEADERS: usize = ipv4::MIN_HEADER_LEN + icmpv4::HEADER_LEN;
/// TOS precedence "internetwork control", which Linux gives its errors.
const TOS_INTERNETWORK_CONTROL: u8 = 0xc0;
/// Linux's IPTOS_TOS_MASK: the old TOS bits kept from the offending packet.
const TOS_MASK: u8 = 0x1e;

/// The IPIP packet an error was about, when the error concerns the
/// director's own tunnel traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelQuote {
    /// The outer source: the director's address (the caller checks it is).
    pub director: Ipv4Addr,
    /// The outer destination: the real server (the caller checks it is a
    /// known IPIP destination, as IPVS requires).
    pub real_server: Ipv4Addr,
}

/// An ICMP error and the packet it quotes. For tunnel errors the addresses
/// and ports are those of the inner (client's) packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Embedded {
    pub icmp_type: u8,
    pub code: u8,
    /// The second word of the ICMP header; for frag-needed its low half is
    /// the next-hop MTU.
    pub rest: u32,
    pub proto: u8,
    /// Source and destination of the quoted packet as it was sent; ports
    /// are 0 for protocols without them.
    pub src: Endpoint,
    pub dst: Endpoint,
    /// DF of the quoted (for tunnels: the inner) packet.
    pub dont_frag: bool,
    pub tunnel: Option<TunnelQuote>,
}

/// What an ICMP message is to IPVS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classified {
    /// Not DEST_UNREACH, SOURCE_QUENCH or TIME_EXCEEDED (or not ICMP at
    /// all): not IPVS's business, handled as any other packet.
    NotError,
    Error(Embedded),
    /// An error about a non-first fragment: no ports to look up, ignored as
    /// IPVS ignores it.
    EmbeddedFragment,
    /// The ICMP message itself is a fragment: reassemble first.
    Fragment,
    /// Truncated or inconsistent, including a quote shorter than the IP
    /// header plus 8 bytes (RFC 792), also for the inner packet of a tunnel.
    Malformed,
    BadChecksum,
}

/// Where the parts of an ICMP error lie in its frame.
struct Parsed {
    /// Total length of the outer datagram.
    total: usize,
    /// Offset in the frame of the innermost quoted IP header.
    quote_at: usize,
    /// Header length of the outer quoted header of a tunnel error.
    tunnel_hl: usize,
    embedded: Embedded,
}

/// Reads an ICMP error (the whole frame) as IPVS does before looking up
/// its connection; the checksum is verified last, only for errors IPVS
/// would act on.
pub fn classify(frame: &[u8]) -> Classified {
    match parse(frame) {
        Ok(p) => Classified::Error(p.embedded),
        Err(c) => c,
    }
}

fn parse(frame: &[u8]) -> Result<Parsed, Classified> {
    let ip = ip_of(frame).map_err(|_| Classified::Malformed)?;
    if ip.protocol() != ipv4::PROTO_ICMP {
        return Err(Classified::NotError);
    }
    if ip.is_fragment() {
        return Err(Classified::Fragment);
    }
    let icmp = Icmpv4Packet::new_checked(ip.payload()).map_err(|_| Classified::Malformed)?;
    if !matches!(
        icmp.msg_type(),
        icmpv4::TYPE_DEST_UNREACH | icmpv4::TYPE_SOURCE_QUENCH | icmpv4::TYPE_TIME_EXCEEDED
    ) {
        return Err(Classified::NotError);
    }
    let data = icmp.data();
    let mut quote_at = IP_AT + ip.header_len() + icmpv4::HEADER_LEN;
    let mut q = QuotedIpv4::new_checked(data).map_err(|_| Classified::Malformed)?;
    if q.frag_offset() != 0 {
        return Err(Classified::EmbeddedFragment);
    }
    let mut tunnel = None;
    let mut tunnel_hl = 0;
    if q.protocol() == ipv4::PROTO_IPIP {
        tunnel = Some(TunnelQuote {
            director: q.src(),
            real_server: q.dst(),
        });
        tunnel_hl = q.header_len();
        quote_at += tunnel_hl;
        q = QuotedIpv4::new_checked(&data[tunnel_hl..]).map_err(|_| Classified::Malformed)?;
        if q.frag_offset() != 0 {
            return Err(Classified::EmbeddedFragment);
        }
    }
    let (sport, dport) = if has_ports(q.protocol()) {
        let l4 = q.l4();
        (get_u16(l4, 0), get_u16(l4, 2))
    } else {
        (0, 0)
    };
    if !icmp.verify_checksum() {
        return Err(Classified::BadChecksum);
    }
    Ok(Parsed {
        total: ip.total_len() as usize,
        quote_at,
        tunnel_hl,
        embedded: Embedded {
            icmp_type: icmp.msg_type(),
            code: icmp.code(),
            rest: icmp.rest(),
            proto: q.protocol(),
            src: Endpoint::new(q.src(), sport),
            dst: Endpoint::new(q.dst(), dport),
            dont_frag: q.dont_frag(),
            tunnel,
        },
    })
}

/// An error from the client side about a reply of a NAT connection, on its
/// way to the real server that sent the reply: the outer destination, the
/// quoted source `from` (VIP, vport) becomes `to` (real server, its port).
/// Then the checks of 6.1 for a link of `mtu` bytes.
pub fn translate_to_real_server<B: Buf>(
    frame: &mut B,
    from: Endpoint,
    to: Endpoint,
    mtu: u16,
) -> Verdict {
    translate(frame, Toward::RealServer, from, to, mtu)
}

/// An error from the real-server side about a client's packet of a NAT
/// connection, on its way to the client: the outer source becomes the VIP,
/// the quoted destination `from` (real server, its port) becomes `to`
/// (VIP, vport). Then the checks of 6.1 for a link of `mtu` bytes.
pub fn translate_to_client<B: Buf>(
    frame: &mut B,
    from: Endpoint,
    to: Endpoint,
    mtu: u16,
) -> Verdict {
    translate(frame, Toward::Client, from, to, mtu)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Toward {
    RealServer,
    Client,
}

fn translate<B: Buf>(
    frame: &mut B,
    way: Toward,
    from: Endpoint,
    to: Endpoint,
    mtu: u16,
) -> Verdict {
    let p = match check_translate(frame.data(), way, from, mtu) {
        Ok(p) => p,
        Err(v) => return v,
    };
    let proto = p.embedded.proto;
    let d = &mut frame.data_mut()[..IP_AT + p.total];

    // The quoted packet: address, port, its IP checksum in full (as IPVS
    // does), and its transport checksum incrementally where the quote holds
    // it, so the quote reads as the packet did on the other side.
    let Ok(mut q) = QuotedIpv4::new_checked(&mut d[p.quote_at..]) else {
        return Verdict::Malformed;
    };
    let port_at = match way {
        Toward::RealServer => {
            q.set_src(to.addr);
            0
        }
        Toward::Client => {
            q.set_dst(to.addr);
            2
        }
    };
    q.fill_checksum();
    if has_ports(proto) {
        let l4 = q.l4_mut();
        l4[port_at..port_at + 2].copy_from_slice(&to.port.to_be_bytes());
        let csum_at = match proto {
            ipv4::PROTO_TCP => tcp::CHECKSUM_AT,
            ipv4::PROTO_UDP => udp::CHECKSUM_AT,
            // SCTP's CRC covers the cut-off payload: left as it is.
            _ => usize::MAX,
        };
        if let Some(field) = l4.get_mut(csum_at..csum_at.saturating_add(2)) {
            let old = u16::from_be_bytes([field[0], field[1]]);
            let c = update16(
                update32(old, from.addr.to_bits(), to.addr.to_bits()),
                from.port,
                to.port,
            );
            let c = match proto {
                ipv4::PROTO_UDP if old == 0 => 0, // no checksum stays none
                ipv4::PROTO_UDP if c == 0 => 0xffff,
                _ => c,
            };
            field.copy_from_slice(&c.to_be_bytes());
        }
    }

    // The outer header: destination (to the real server) or source (to the
    // client), its checksum incrementally; then the ICMP checksum anew.
    let Ok(mut ip) = Ipv4Packet::new_checked(&mut d[IP_AT..]) else {
        return Verdict::Malformed;
    };
    let old = match way {
        Toward::RealServer => ip.dst(),
        Toward::Client => ip.src(),
    };
    match way {
        Toward::RealServer => ip.set_dst(to.addr),
        Toward::Client => ip.set_src(to.addr),
    }
    let c = update32(ip.checksum(), old.to_bits(), to.addr.to_bits());
    ip.set_checksum(c);
    if let Ok(mut icmp) = Icmpv4Packet::new_checked(ip.payload_mut()) {
        icmp.fill_checksum();
    }
    finish(frame, p.total)
}

fn check_translate(frame: &[u8], way: Toward, from: Endpoint, mtu: u16) -> Result<Parsed, Verdict> {
    let p = parse(frame).map_err(|c| match c {
        Classified::Fragment => Verdict::Fragment,
        Classified::Malformed => Verdict::Malformed,
        Classified::BadChecksum => Verdict::BadChecksum,
        _ => Verdict::Mismatch,
    })?;
    let e = p.embedded;
    let quoted = match way {
        Toward::RealServer => e.src,
        Toward::Client => e.dst,
    };
    let port_ok = !has_ports(e.proto) || quoted.port == from.port;
    if e.tunnel.is_some() || quoted.addr != from.addr || !port_ok {
        return Err(Verdict::Mismatch);
    }
    check_ttl_mtu(&Hdr::of(&ip_of(frame)?), mtu)?;
    Ok(p)
}

/// An error the director sends about a packet it could not forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Type 11 code 0: the TTL ran out (reference 6.1).
    TimeExceeded,
    /// Type 3 code 4 with the next-hop MTU (reference 6.1, 6.3).
    FragNeeded { mtu: u16 },
    /// Type 3 code 3: no real server available (reference 4.6), or a NAT
    /// real server's packet without a connection (`nat_icmp_send`).
    PortUnreachable,
    /// Any type and code with the given rest-of-header word: tunnel errors
    /// relayed to the client.
    Relay { icmp_type: u8, code: u8, rest: u32 },
}

impl ErrorKind {
    fn header(self) -> (u8, u8, u32) {
        match self {
            ErrorKind::TimeExceeded => (icmpv4::TYPE_TIME_EXCEEDED, icmpv4::CODE_TTL_EXCEEDED, 0),
            ErrorKind::FragNeeded { mtu } => (
                icmpv4::TYPE_DEST_UNREACH,
                icmpv4::CODE_FRAG_NEEDED,
                mtu as u32,
            ),
            ErrorKind::PortUnreachable => (icmpv4::TYPE_DEST_UNREACH, icmpv4::CODE_PORT_UNREACH, 0),
            ErrorKind::Relay {
                icmp_type,
                code,
                rest,
            } => (icmp_type, code, rest),
        }
    }
}

/// The outer header of an error the director sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorParams {
    /// Source address. Linux answers a packet addressed to one of its own
    /// addresses from that address, so for packets to a VIP (every case
    /// IPVS sends errors for) pass the VIP.
    pub src: Ipv4Addr,
    /// IP ID: the caller's per-worker counter.
    pub ident: u16,
    pub ttl: u8,
}

/// What [`build_error`] made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Built {
    /// `out` holds the error as a frame: a zeroed Ethernet header with type
    /// IPv4 (the caller routes it and fills the addresses in), then the IP
    /// datagram to the offending packet's source.
    Ready,
    /// The offending packet is itself an ICMP error (RFC 1122 3.2.2).
    AboutIcmpError,
    /// The offending packet is a fragment other than the first.
    NotFirstFragment,
    /// The offending packet came from an address that is not one host's
    /// (0.0.0.0, loopback, broadcast, multicast, class E) or went to a
    /// multicast or broadcast address (RFC 1812 4.3.2.7).
    NotUnicast,
    /// A tunnel frag-needed about a client packet without DF: the client
    /// does not do path MTU discovery, so there is nothing to tell it.
    NotNeeded,
    /// The offending packet (or the ICMP error holding it) cannot be read.
    Malformed,
    /// `out` cannot hold the message.
    NoRoom,
}

/// Builds into `out` (a fresh buffer from the caller) the error `kind`
/// about the IPv4 frame `offending`, quoting as much of it as fits in
/// [`MAX_ERROR_LEN`].
pub fn build_error<B: Buf>(
    out: &mut B,
    offending: &[u8],
    kind: ErrorKind,
    p: &ErrorParams,
) -> Built {
    match ip_of(offending) {
        Ok(ip) => build(
            out,
            &offending[IP_AT..IP_AT + ip.total_len() as usize],
            kind,
            p,
        ),
        Err(_) => Built::Malformed,
    }
}

/// The error for the client about a client packet that an error from the
/// tunnel path concerns (reference 6.3): frag-needed carries the MTU left
/// inside the tunnel (`path_mtu`, the caller's updated path MTU to the real
/// server if it keeps one, else the MTU the error reported, less the outer
/// header); other errors keep their type, code and rest-of-header word.
/// `icmp_frame` is the error as received ([`classify`] found
/// [`Embedded::tunnel`] set); the client's packet is quoted from it.
pub fn build_tunnel_error<B: Buf>(
    out: &mut B,
    icmp_frame: &[u8],
    path_mtu: Option<u16>,
    p: &ErrorParams,
) -> Built {
    let parsed = match parse(icmp_frame) {
        Ok(parsed) if parsed.embedded.tunnel.is_some() => parsed,
        _ => return Built::Malformed,
    };
    let e = parsed.embedded;
    let kind = if e.icmp_type == icmpv4::TYPE_DEST_UNREACH && e.code == icmpv4::CODE_FRAG_NEEDED {
        if !e.dont_frag {
            return Built::NotNeeded;
        }
        let mtu = path_mtu.unwrap_or(e.rest as u16);
        // As IPVS: subtract the tunnel header only where that leaves a
        // usable MTU, else pass on what was reported.
        let overhead = parsed.tunnel_hl as u16;
        let mtu = if mtu > MIN_MTU + overhead {
            mtu - overhead
        } else {
            mtu
        };
        ErrorKind::FragNeeded { mtu }
    } else {
        ErrorKind::Relay {
            icmp_type: e.icmp_type,
            code: e.code,
            rest: e.rest,
        }
    };
    let quote_end = IP_AT + parsed.total;
    match icmp_frame.get(parsed.quote_at..quote_end) {
        Some(client_packet) => build(out, client_packet, kind, p),
        None => Built::Malformed,
    }
}

/// `ip` starts at the offending IP header and may end anywhere after it
/// (a quote inside another error is cut short).
fn build<B: Buf>(out: &mut B, ip: &[u8], kind: ErrorKind, p: &ErrorParams) -> Built {
    if ip.len() < ipv4::MIN_HEADER_LEN || ip[0] >> 4 != 4 {
        return Built::Malformed;
    }
    let hl = ((ip[0] & 0x0f) as usize) * 4;
    let total = get_u16(ip, 2) as usize;
    if hl < ipv4::MIN_HEADER_LEN || hl > ip.len() || total < hl {
        return Built::Malformed;
    }
    let ip = &ip[..total.min(ip.len())];
    if get_u16(ip, 6) & 0x1fff != 0 {
        return Built::NotFirstFragment;
    }
    if ip[9] == ipv4::PROTO_ICMP {
        match ip.get(hl) {
            Some(&t) if !icmpv4::is_error_type(t) => {}
            Some(_) => return Built::AboutIcmpError,
            None => return Built::Malformed,
        }
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    if !ipv4::is_host_address(src) || dst.is_multicast() || dst.is_broadcast() {
        return Built::NotUnicast;
    }
    let quote = ip.len().min(MAX_ERROR_LEN - ERROR_HEADERS);
    let len = ERROR_HEADERS + quote;
    if !out.set_len(IP_AT + len) {
        return Built::NoRoom;
    }
    let o = out.data_mut();
    o[..IP_AT].fill(0);
    o[12..IP_AT].copy_from_slice(&EtherType::IPV4.to_be_bytes());
    let Ok(mut hdr) = Ipv4Packet::emit(
        &mut o[IP_AT..],
        p.src,
        src,
        ipv4::PROTO_ICMP,
        (icmpv4::HEADER_LEN + quote) as u16,
        p.ttl,
        p.ident,
    ) else {
        return Built::NoRoom;
    };
    hdr.set_dont_frag(false);
    hdr.set_tos((ip[1] & TOS_MASK) | TOS_INTERNETWORK_CONTROL);
    hdr.fill_checksum();
    let Ok(mut icmp) = Icmpv4Packet::new_checked(hdr.payload_mut()) else {
        return Built::NoRoom;
    };
    let (t, code, rest) = kind.header();
    icmp.set_header(t, code, rest);
    icmp.data_mut().copy_from_slice(&ip[..quote]);
    icmp.fill_checksum();
    Built::Ready
}
