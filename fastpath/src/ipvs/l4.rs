//! The fields of a packet that the engine keys on, parsed once on the way
//! in (by [`crate::input`] for a burst, or here for a packet that takes
//! the long way).

use crate::stats::DropReason;
use crate::wire::{ethernet, ipv4, Ipv4Packet};
use crate::xmit;

/// The fields of a packet the engine keys on, parsed once: the ports and
/// flags here, the protocol and addresses in the validated header `ip`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct L4 {
    pub(crate) sport: u16,
    pub(crate) dport: u16,
    /// TCP flags, or the first SCTP chunk type.
    pub(crate) flags: u8,
    /// The chunk after the first (SCTP), for ABORT bundling.
    pub(crate) next_chunk: Option<u8>,
    /// The validated IPv4 header, for the transmit functions.
    pub(crate) ip: xmit::Hdr,
}

pub(super) fn is_icmp(frame: &[u8]) -> bool {
    frame.get(ethernet::HEADER_LEN + 9) == Some(&ipv4::PROTO_ICMP)
}

pub(super) fn parse_l4(frame: &[u8]) -> Result<L4, DropReason> {
    let ip = Ipv4Packet::new_checked(&frame[ethernet::HEADER_LEN..])
        .map_err(|_| DropReason::Malformed)?;
    l4_of(&ip)
}

/// The connection key fields of a validated IPv4 datagram.
#[inline]
pub(crate) fn l4_of(ip: &Ipv4Packet<&[u8]>) -> Result<L4, DropReason> {
    if ip.is_fragment() {
        return Err(DropReason::Fragment);
    }
    let p = ip.payload();
    let proto = ip.protocol();
    let (flags, next_chunk, min) = match proto {
        ipv4::PROTO_TCP => (p.get(13).copied().unwrap_or(0), None, 20),
        ipv4::PROTO_UDP => (0, None, 8),
        ipv4::PROTO_SCTP => {
            let first = p.get(12).copied().unwrap_or(0);
            let len = p
                .get(14..16)
                .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]) as usize);
            let next = 12 + ((len + 3) & !3);
            (first, p.get(next).copied().filter(|_| len >= 4), 16)
        }
        _ => return Err(DropReason::NoService),
    };
    if p.len() < min {
        return Err(DropReason::Malformed);
    }
    Ok(L4 {
        sport: u16::from_be_bytes([p[0], p[1]]),
        dport: u16::from_be_bytes([p[2], p[3]]),
        flags,
        next_chunk,
        ip: xmit::Hdr::of(ip),
    })
}
