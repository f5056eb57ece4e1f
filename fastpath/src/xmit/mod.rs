//! The packet transformations of IPVS's three forwarding methods (reference
//! section 6): direct routing ([`dr`]), IPIP tunnelling ([`tun`]) and NAT
//! ([`nat`]), plus ICMP error relay and generation ([`icmp`]).
//!
//! Everything here is a pure function of one frame and a few parameters:
//! the connection table, the scheduler, routes and neighbours live with the
//! caller. The caller chooses the real server, looks up the route towards
//! it (for its MTU and, for TUN, the director's source address), calls one
//! function here, and on [`Verdict::Forward`] fills in the Ethernet header
//! (next-hop MACs; for DR the real server's MAC) and transmits through the
//! host output path. The functions work from the IP header on; they never
//! read or write the Ethernet addresses, and they drop link-layer padding so
//! the frame ends where the IP datagram does.
//!
//! A verdict other than `Forward` leaves the frame exactly as it arrived, so
//! the caller can quote it in an ICMP error ([`icmp::build_error`]): the
//! checks of section 6.1 run before any rewrite. That also means the quoted
//! header carries the TTL the client sent, as a router's errors do, where
//! IPVS quotes it after its decrement.
//!
//! No function here allocates, locks, makes a system call or panics on any
//! input: every length is checked through the [`crate::wire`] views.

pub mod dr;
pub mod icmp;
pub mod nat;
pub mod tun;

use crate::io::Buf;
use crate::wire::{ethernet, icmpv4, ipv4, EtherType, Ipv4Packet};
use core::net::Ipv4Addr;

/// Where the IP header starts: frames are untagged Ethernet II, as
/// everywhere else in the data plane.
pub const IP_AT: usize = ethernet::HEADER_LEN;

/// The smallest MTU IPv4 allows (RFC 791); a tunnel leaving less than this
/// for the inner packet is unusable.
pub const MIN_MTU: u16 = 68;

/// What became of a frame handed to a transmit or translate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Rewritten and ready: the caller fills in the Ethernet header and
    /// sends it.
    Forward,
    /// The TTL would expire here: send ICMP time exceeded to the source
    /// ([`icmp::ErrorKind::TimeExceeded`]) and drop.
    TimeExceeded,
    /// DF set and larger than `mtu`: send ICMP fragmentation needed
    /// carrying `mtu` to the source ([`icmp::ErrorKind::FragNeeded`]) and
    /// drop. For TUN, `mtu` already allows for the outer header.
    FragNeeded { mtu: u16 },
    /// Larger than the MTU but may not be answered with frag-needed (DF
    /// clear, an ICMP error being relayed, or a tunnel without PMTU
    /// discovery). IPVS fragments these; ripvs does not fragment yet, so the
    /// caller counts this as a drop.
    NeedsFragmentation,
    /// The route MTU minus the tunnel header is below 68: drop, as IPVS does.
    TunnelMtuTooSmall,
    /// Lengths or fields inconsistent (frame, IP, transport or quoted
    /// headers): drop.
    Malformed,
    /// The ICMP checksum is wrong: drop rather than recompute it over
    /// corrupt content.
    BadChecksum,
    /// An IP fragment where NAT must see the whole datagram (reference 6.6:
    /// reassemble first): drop.
    Fragment,
    /// The packet does not carry the addresses or ports the caller said it
    /// would (a lookup bug, not a network event): drop.
    Mismatch,
    /// The buffer cannot grow by the encapsulation header: drop.
    NoRoom,
}

/// An address and port; the port is ignored for protocols without ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub addr: Ipv4Addr,
    pub port: u16,
}

impl Endpoint {
    pub const fn new(addr: Ipv4Addr, port: u16) -> Self {
        Endpoint { addr, port }
    }
}

/// Whether `proto` has 16-bit source and destination ports at the start of
/// its header, the ones IPVS connections are keyed on.
pub(crate) fn has_ports(proto: u8) -> bool {
    matches!(proto, ipv4::PROTO_TCP | ipv4::PROTO_UDP | ipv4::PROTO_SCTP)
}

/// The IPv4 datagram of an Ethernet frame.
#[inline]
pub(crate) fn ip_of(frame: &[u8]) -> Result<Ipv4Packet<&[u8]>, Verdict> {
    if frame.len() < IP_AT || frame[12..14] != EtherType::IPV4.to_be_bytes() {
        return Err(Verdict::Malformed);
    }
    Ipv4Packet::new_checked(&frame[IP_AT..]).map_err(|_| Verdict::Malformed)
}

/// The fields of a validated IPv4 header that forwarding decides on, read
/// once by whoever validated it ([`Hdr::of`]). The data plane's fast path
/// validates a frame's header as it classifies the frame and hands this on,
/// so the transmit functions (`*_checked`) need not parse the header again;
/// the public ones parse it themselves and then do the same.
///
/// Holding a `Hdr` is a promise that the frame's IPv4 header passed
/// [`Ipv4Packet::new_checked`] (and, from an Ethernet frame, [`ip_of`]) and
/// has not changed since. Breaking it cannot make anything read out of
/// bounds (every access is still checked), only forward wrong bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hdr {
    pub(crate) hl: u8,
    pub(crate) proto: u8,
    pub(crate) ttl: u8,
    pub(crate) df: bool,
    pub(crate) fragment: bool,
    pub(crate) icmp_error: bool,
    pub(crate) total: u16,
    pub(crate) src: Ipv4Addr,
    pub(crate) dst: Ipv4Addr,
}

impl Hdr {
    #[inline]
    pub(crate) fn of(ip: &Ipv4Packet<&[u8]>) -> Hdr {
        Hdr {
            hl: ip.header_len() as u8,
            proto: ip.protocol(),
            ttl: ip.ttl(),
            df: ip.dont_frag(),
            fragment: ip.is_fragment(),
            icmp_error: is_icmp_error(ip),
            total: ip.total_len(),
            src: ip.src(),
            dst: ip.dst(),
        }
    }
}

/// The checks of reference 6.1 on a packet about to leave through a link
/// of `mtu` bytes, in IPVS's order: TTL first, then size.
#[inline]
pub(crate) fn check_ttl_mtu(ip: &Hdr, mtu: u16) -> Result<(), Verdict> {
    if ip.ttl <= 1 {
        return Err(Verdict::TimeExceeded);
    }
    if ip.total > mtu {
        // IPVS never answers an ICMP error it relays with another error.
        return Err(if ip.df && !ip.icmp_error {
            Verdict::FragNeeded { mtu }
        } else {
            Verdict::NeedsFragmentation
        });
    }
    Ok(())
}

/// True for an ICMP error message (not for a fragment's tail).
#[inline]
pub(crate) fn is_icmp_error(ip: &Ipv4Packet<&[u8]>) -> bool {
    ip.protocol() == ipv4::PROTO_ICMP
        && ip.frag_offset() == 0
        && ip
            .payload()
            .first()
            .is_some_and(|&t| icmpv4::is_error_type(t))
}

/// The last step of every forward: TTL down by one (incremental checksum)
/// and link-layer padding dropped. The header was validated by the caller
/// and `total` is its total length.
#[inline]
pub(crate) fn finish<B: Buf>(frame: &mut B, total: usize) -> Verdict {
    if let Some(h) = frame.data_mut().get_mut(IP_AT..) {
        ipv4::decrement_ttl_in(h);
    }
    if !frame.set_len(IP_AT + total) {
        return Verdict::NoRoom;
    }
    Verdict::Forward
}
