//! IPIP tunnelling (reference 6.3): the client's datagram, TTL decremented,
//! inside a new IPv4 header from the director to the real server, which
//! decapsulates it and answers the client directly.
//!
//! Only IPIP (protocol 4) is implemented; IPVS's GUE and GRE encapsulations
//! (`--tun-type gue|gre`) are not, and neither are IPv6 tunnels.

use super::{ip_of, Verdict, IP_AT, MIN_MTU};
use crate::io::Buf;
use crate::wire::{ipv4, Ipv4Packet};
use core::net::Ipv4Addr;

/// Size of the outer header (no options).
pub const OVERHEAD: u16 = ipv4::MIN_HEADER_LEN as u16;

/// How the inner ECN field is carried into the outer header. Both copy the
/// DSCP and pass Not-ECT, ECT(0) and ECT(1) through; they differ on CE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EcnEncap {
    /// RFC 6040 normal mode: the ECN field is copied, CE included, so a
    /// congestion mark made before the director survives decapsulation at
    /// any RFC 6040 decapsulator.
    #[default]
    Normal,
    /// What Linux IPVS does (`INET_ECN_encapsulate`, RFC 3168's
    /// full-functionality option): an inner CE becomes ECT(0) outside, so
    /// the outer header tells only of congestion on the tunnel path.
    Rfc3168Full,
}

const ECN_MASK: u8 = 0b11;
const ECN_ECT0: u8 = 0b10;
const ECN_CE: u8 = 0b11;

/// The outer TOS byte for an inner TOS byte.
pub fn outer_tos(inner: u8, mode: EcnEncap) -> u8 {
    match mode {
        EcnEncap::Rfc3168Full if inner & ECN_MASK == ECN_CE => (inner & !ECN_MASK) | ECN_ECT0,
        _ => inner,
    }
}

/// Everything the tunnel header needs that the packet does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunParams {
    /// The director's source address on the route to the real server.
    pub src: Ipv4Addr,
    /// The real server.
    pub dst: Ipv4Addr,
    /// MTU of the route to the real server (outer packet size).
    pub mtu: u16,
    /// IP ID of the outer header: the caller's per-worker counter.
    pub ident: u16,
    /// IPVS's `pmtu_disc` sysctl (default on): copy DF from the inner header
    /// and answer DF packets that do not fit with frag-needed. Off, the
    /// outer header never has DF and oversized packets would be fragmented.
    pub pmtu_disc: bool,
    pub ecn: EcnEncap,
}

impl TunParams {
    /// Parameters with IPVS's defaults (`pmtu_disc=1`) and RFC 6040 ECN.
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, mtu: u16, ident: u16) -> Self {
        TunParams {
            src,
            dst,
            mtu,
            ident,
            pmtu_disc: true,
            ecn: EcnEncap::Normal,
        }
    }
}

/// Encapsulates `frame` (needs [`OVERHEAD`] bytes of headroom). Also relays
/// ICMP errors for TUN connections (reference 6.5). On `Forward` the frame
/// is the Ethernet header the packet arrived with, the outer header and
/// the inner datagram.
pub fn encapsulate<B: Buf>(frame: &mut B, p: &TunParams) -> Verdict {
    let (total, ttl, tos, df) = match ip_of(frame.data()) {
        Ok(ip) => {
            if ip.ttl() <= 1 {
                return Verdict::TimeExceeded;
            }
            let Some(mtu) = p.mtu.checked_sub(OVERHEAD).filter(|&m| m >= MIN_MTU) else {
                return Verdict::TunnelMtuTooSmall;
            };
            if ip.total_len() > mtu {
                return if p.pmtu_disc && ip.dont_frag() && !super::is_icmp_error(&ip) {
                    Verdict::FragNeeded { mtu }
                } else {
                    Verdict::NeedsFragmentation
                };
            }
            (
                ip.total_len() as usize,
                ip.ttl() - 1,
                ip.tos(),
                p.pmtu_disc && ip.dont_frag(),
            )
        }
        Err(v) => return v,
    };
    // Headroom first: a failure must leave the frame as it was.
    if !frame.prepend(OVERHEAD as usize) {
        return Verdict::NoRoom;
    }
    let hdr = OVERHEAD as usize;
    let d = frame.data_mut();
    d.copy_within(hdr..hdr + IP_AT, 0);
    if let Ok(mut inner) = Ipv4Packet::new_checked(&mut d[IP_AT + hdr..]) {
        inner.decrement_ttl();
    }
    let outer = Ipv4Packet::emit(
        &mut d[IP_AT..],
        p.src,
        p.dst,
        ipv4::PROTO_IPIP,
        total as u16,
        ttl,
        p.ident,
    );
    let Ok(mut outer) = outer else {
        return Verdict::Malformed;
    };
    outer.set_tos(outer_tos(tos, p.ecn));
    outer.set_dont_frag(df);
    outer.fill_checksum();
    if !frame.set_len(IP_AT + hdr + total) {
        return Verdict::NoRoom;
    }
    Verdict::Forward
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecn_modes() {
        for dscp in [0u8, 0xb8] {
            for ecn in 0..4 {
                let inner = dscp | ecn;
                assert_eq!(outer_tos(inner, EcnEncap::Normal), inner);
                let full = if ecn == 3 { dscp | 2 } else { inner };
                assert_eq!(outer_tos(inner, EcnEncap::Rfc3168Full), full);
            }
        }
    }
}
