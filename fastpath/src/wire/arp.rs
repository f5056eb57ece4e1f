//! ARP for IPv4 over Ethernet (RFC 826), the only combination the director
//! speaks; any other hardware/protocol type is malformed for our purposes.

use super::{get_ipv4, get_u16, put_ipv4, put_u16, Error, MacAddr, Result};
use core::net::Ipv4Addr;

pub const PACKET_LEN: usize = 28;
pub const OP_REQUEST: u16 = 1;
pub const OP_REPLY: u16 = 2;

#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Accepts only Ethernet/IPv4 ARP (htype 1, ptype 0x0800, hlen 6, plen 4).
    pub fn new_checked(buf: T) -> Result<Self> {
        let b = buf.as_ref();
        if b.len() < PACKET_LEN {
            return Err(Error::Truncated);
        }
        if get_u16(b, 0) != 1 || get_u16(b, 2) != 0x0800 || b[4] != 6 || b[5] != 4 {
            return Err(Error::Malformed);
        }
        Ok(ArpPacket { buf })
    }
    pub fn operation(&self) -> u16 {
        get_u16(self.buf.as_ref(), 6)
    }
    pub fn sender_mac(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buf.as_ref()[8..14])
    }
    pub fn sender_ip(&self) -> Ipv4Addr {
        get_ipv4(self.buf.as_ref(), 14)
    }
    pub fn target_mac(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buf.as_ref()[18..24])
    }
    pub fn target_ip(&self) -> Ipv4Addr {
        get_ipv4(self.buf.as_ref(), 24)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Writes a complete Ethernet/IPv4 ARP packet into `buf` (at least 28 bytes).
    pub fn emit(
        buf: T,
        op: u16,
        sha: MacAddr,
        spa: Ipv4Addr,
        tha: MacAddr,
        tpa: Ipv4Addr,
    ) -> Result<Self> {
        let mut buf = buf;
        {
            let b = buf.as_mut();
            if b.len() < PACKET_LEN {
                return Err(Error::Truncated);
            }
            put_u16(b, 0, 1);
            put_u16(b, 2, 0x0800);
            b[4] = 6;
            b[5] = 4;
        }
        let mut p = ArpPacket { buf };
        p.set_operation(op);
        p.set_sender(sha, spa);
        p.set_target(tha, tpa);
        Ok(p)
    }
    pub fn set_operation(&mut self, op: u16) {
        put_u16(self.buf.as_mut(), 6, op)
    }
    pub fn set_sender(&mut self, mac: MacAddr, ip: Ipv4Addr) {
        let b = self.buf.as_mut();
        b[8..14].copy_from_slice(&mac.0);
        put_ipv4(b, 14, ip);
    }
    pub fn set_target(&mut self, mac: MacAddr, ip: Ipv4Addr) {
        let b = self.buf.as_mut();
        b[18..24].copy_from_slice(&mac.0);
        put_ipv4(b, 24, ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: [u8; 28] = [
        0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 2, 10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1,
    ];

    #[test]
    fn parse_request() {
        let p = ArpPacket::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(p.operation(), OP_REQUEST);
        assert_eq!(p.sender_mac(), MacAddr([2, 0, 0, 0, 0, 2]));
        assert_eq!(p.sender_ip(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(p.target_mac(), MacAddr::ZERO);
        assert_eq!(p.target_ip(), Ipv4Addr::new(10, 0, 0, 1));
    }

    #[test]
    fn rejects_other_protocols_and_short_buffers() {
        assert_eq!(
            ArpPacket::new_checked(&REQUEST[..27]).unwrap_err(),
            Error::Truncated
        );
        let mut b = REQUEST;
        b[3] = 0xdd; // ptype 0x08dd
        assert_eq!(
            ArpPacket::new_checked(&b[..]).unwrap_err(),
            Error::Malformed
        );
        let mut b = REQUEST;
        b[4] = 8; // hlen
        assert_eq!(
            ArpPacket::new_checked(&b[..]).unwrap_err(),
            Error::Malformed
        );
    }

    #[test]
    fn emit_matches_parse() {
        let mut b = [0u8; 28];
        ArpPacket::emit(
            &mut b[..],
            OP_REQUEST,
            MacAddr([2, 0, 0, 0, 0, 2]),
            Ipv4Addr::new(10, 0, 0, 2),
            MacAddr::ZERO,
            Ipv4Addr::new(10, 0, 0, 1),
        )
        .unwrap();
        assert_eq!(b, REQUEST);
    }
}
