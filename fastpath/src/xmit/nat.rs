//! NAT (reference 6.4): inbound packets get the real server's address and
//! port as destination (DNAT), its replies get the VIP's as source (SNAT).
//!
//! Checksums follow IPVS: the IPv4 header and TCP/UDP checksums are updated
//! incrementally (RFC 1624) for the address and port deltas, pseudo-header
//! included, so a packet corrupted in transit stays detectably corrupt. A
//! UDP datagram without a checksum (0) gets a fully computed one, and a
//! UDP result of 0 is sent as 0xffff. SCTP's CRC32c has no pseudo-header:
//! it is recomputed over the whole packet, and only when the port changes.
//! Like IPVS, that recomputation does not check the old CRC first (a second
//! pass over the packet), so a corrupt SCTP packet leaves with a valid CRC;
//! the CRC's linearity would allow an O(log n) incremental update that
//! keeps corruption visible, should that ever matter.
//! Other protocols (IPVS balances AH and ESP too) have only their address
//! rewritten; ICMP is refused with [`Verdict::Mismatch`]: its errors need
//! [`super::icmp`]'s translation of the quoted packet.
//!
//! NAT needs whole datagrams: fragments get [`Verdict::Fragment`], since the
//! ports are only in the first one and a full UDP or SCTP checksum covers
//! them all (reference 6.6: reassemble before NAT).

use super::{check_ttl_mtu, finish, has_ports, ip_of, Endpoint, Hdr, Verdict, IP_AT};
use crate::io::Buf;
use crate::wire::checksum::{update32, update_addr_port};
use crate::wire::{ipv4, SctpPacket, TcpPacket, UdpPacket};
use core::net::Ipv4Addr;

/// Client → real server: the destination `from` (VIP, vport) becomes `to`
/// (real server, its port), then the packet leaves through a link of `mtu`
/// bytes towards the real server. The packet must carry `from` (else
/// [`Verdict::Mismatch`]): the caller's lookup and the packet agree.
pub fn dnat<B: Buf>(frame: &mut B, from: Endpoint, to: Endpoint, mtu: u16) -> Verdict {
    match ip_of(frame.data()) {
        Ok(ip) => {
            let h = Hdr::of(&ip);
            rewrite(frame, &h, Side::Dst, from, to, mtu)
        }
        Err(v) => v,
    }
}

/// [`dnat`] for a frame whose header the caller validated as `ip`.
#[inline]
pub(crate) fn dnat_checked<B: Buf>(
    frame: &mut B,
    ip: &Hdr,
    from: Endpoint,
    to: Endpoint,
    mtu: u16,
) -> Verdict {
    rewrite(frame, ip, Side::Dst, from, to, mtu)
}

/// Real server → client: the source `from` (real server, its port) becomes
/// `to` (VIP, vport), then the packet leaves through a link of `mtu` bytes
/// towards the client. The checks of reference 6.1 apply as on the forward
/// path the reply takes through a Linux director (errors go back to the
/// real server, which sent it). The packet must carry `from` as source.
pub fn snat<B: Buf>(frame: &mut B, from: Endpoint, to: Endpoint, mtu: u16) -> Verdict {
    match ip_of(frame.data()) {
        Ok(ip) => {
            let h = Hdr::of(&ip);
            rewrite(frame, &h, Side::Src, from, to, mtu)
        }
        Err(v) => v,
    }
}

/// [`snat`] for a frame whose header the caller validated as `ip`.
#[inline]
pub(crate) fn snat_checked<B: Buf>(
    frame: &mut B,
    ip: &Hdr,
    from: Endpoint,
    to: Endpoint,
    mtu: u16,
) -> Verdict {
    rewrite(frame, ip, Side::Src, from, to, mtu)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Src,
    Dst,
}

/// What the validation pass learned, so the rewrite pass cannot fail.
struct Plan {
    hl: usize,
    total: usize,
    proto: u8,
    /// The addresses as they will be after the rewrite (UDP full checksum).
    src: Ipv4Addr,
    dst: Ipv4Addr,
}

#[inline]
fn rewrite<B: Buf>(
    frame: &mut B,
    ip: &Hdr,
    side: Side,
    from: Endpoint,
    to: Endpoint,
    mtu: u16,
) -> Verdict {
    let plan = match validate(frame.data(), ip, side, from, to, mtu) {
        Ok(p) => p,
        Err(v) => return v,
    };
    let d = frame.data_mut();
    let (ip_hdr, rest) = d[IP_AT..].split_at_mut(plan.hl);
    let l4 = &mut rest[..plan.total - plan.hl];
    let (old_a, new_a) = (from.addr.to_bits(), to.addr.to_bits());
    let (old_p, new_p) = (from.port, to.port);
    match plan.proto {
        ipv4::PROTO_TCP => {
            if let Ok(mut t) = TcpPacket::new_fixed(l4) {
                let c = update_addr_port(t.checksum(), old_a, new_a, old_p, new_p);
                match side {
                    Side::Src => t.set_src_port(new_p),
                    Side::Dst => t.set_dst_port(new_p),
                }
                t.set_checksum(c);
            }
        }
        ipv4::PROTO_UDP => {
            if let Ok(mut u) = UdpPacket::new_fixed(l4) {
                let old_c = u.checksum();
                match side {
                    Side::Src => u.set_src_port(new_p),
                    Side::Dst => u.set_dst_port(new_p),
                }
                if old_c == 0 {
                    u.fill_checksum_over_payload(plan.src, plan.dst);
                } else {
                    let c = update_addr_port(old_c, old_a, new_a, old_p, new_p);
                    u.set_checksum(if c == 0 { 0xffff } else { c });
                }
            }
        }
        ipv4::PROTO_SCTP if old_p != new_p => {
            if let Ok(mut s) = SctpPacket::new_checked(l4) {
                match side {
                    Side::Src => s.set_src_port(new_p),
                    Side::Dst => s.set_dst_port(new_p),
                }
                s.fill_checksum();
            }
        }
        _ => {}
    }
    // The IP header: address and checksum (the TTL follows in `finish`).
    let at = match side {
        Side::Src => 12,
        Side::Dst => 16,
    };
    ip_hdr[at..at + 4].copy_from_slice(&to.addr.octets());
    let c = u16::from_be_bytes([ip_hdr[10], ip_hdr[11]]);
    ip_hdr[10..12].copy_from_slice(&update32(c, old_a, new_a).to_be_bytes());
    finish(frame, plan.total)
}

#[inline]
fn validate(
    frame: &[u8],
    ip: &Hdr,
    side: Side,
    from: Endpoint,
    to: Endpoint,
    mtu: u16,
) -> Result<Plan, Verdict> {
    if ip.fragment {
        return Err(Verdict::Fragment);
    }
    let addr = match side {
        Side::Src => ip.src,
        Side::Dst => ip.dst,
    };
    if addr != from.addr {
        return Err(Verdict::Mismatch);
    }
    let proto = ip.proto;
    if proto == ipv4::PROTO_ICMP {
        // ICMP is no IPVS protocol; its errors are translated with their
        // quote by `icmp::translate_*`, never by address alone.
        return Err(Verdict::Mismatch);
    }
    let (hl, total) = (ip.hl as usize, ip.total as usize);
    let l4 = frame
        .get(IP_AT + hl..IP_AT + total)
        .ok_or(Verdict::Malformed)?;
    if has_ports(proto) {
        // The fixed header must be there, as IPVS makes it writable; the
        // TCP data offset and the UDP length are the receiver's to check
        // (IPVS forwards them as they are, by every method).
        let ports = match proto {
            ipv4::PROTO_TCP => TcpPacket::new_fixed(l4).map(|t| (t.src_port(), t.dst_port())),
            ipv4::PROTO_UDP => UdpPacket::new_fixed(l4).map(|u| (u.src_port(), u.dst_port())),
            _ => SctpPacket::new_checked(l4).map(|s| (s.src_port(), s.dst_port())),
        };
        let (sport, dport) = ports.map_err(|_| Verdict::Malformed)?;
        let port = match side {
            Side::Src => sport,
            Side::Dst => dport,
        };
        if port != from.port {
            return Err(Verdict::Mismatch);
        }
    }
    check_ttl_mtu(ip, mtu)?;
    let (src, dst) = match side {
        Side::Src => (to.addr, ip.dst),
        Side::Dst => (ip.src, to.addr),
    };
    Ok(Plan {
        hl,
        total,
        proto,
        src,
        dst,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::mem::VecBuf;
    use crate::wire::Ipv4Packet;

    #[test]
    fn rewritten_header_still_parses() {
        // 10.0.0.2 -> 10.0.0.100, protocol 50 (ESP: no ports), 4 bytes.
        let mut f = vec![0u8; 14];
        f[12] = 8;
        let mut ip = [
            0x45, 0, 0, 24, 0, 1, 0x40, 0, 64, 50, 0, 0, 10, 0, 0, 2, 10, 0, 0, 100, 1, 2, 3, 4,
        ];
        let c = crate::wire::checksum::checksum(&ip[..20]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        let mut b = VecBuf::new(&f);
        let vip = Endpoint::new(Ipv4Addr::new(10, 0, 0, 100), 0);
        let rs = Endpoint::new(Ipv4Addr::new(10, 1, 0, 5), 0);
        assert_eq!(dnat(&mut b, vip, rs, 1500), Verdict::Forward);
        let ip = Ipv4Packet::new_checked(&b.bytes[IP_AT..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(
            (ip.dst(), ip.ttl(), ip.payload()),
            (rs.addr, 63, &[1, 2, 3, 4][..])
        );
    }
}
