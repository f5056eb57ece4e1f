//! UDP headers (RFC 768).
//!
//! Over IPv4 a zero checksum means "none"; a computed checksum that comes
//! out as zero is therefore sent as 0xffff, its one's-complement twin.

use super::{checksum, get_u16, put_u16, Error, Result};
use core::net::Ipv4Addr;

pub const HEADER_LEN: usize = 8;
/// Offset of the checksum field (always inside an ICMP error's 8-byte quote).
pub const CHECKSUM_AT: usize = 6;

#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// `buf` is the IP payload with at least the 8-byte header; the length
    /// field is not looked at. What IPVS needs to forward a datagram (its
    /// NAT handlers check no more); [`Self::compute_checksum`] then covers
    /// what the length field and the buffer both hold.
    pub fn new_fixed(buf: T) -> Result<Self> {
        if buf.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(UdpPacket { buf })
    }
    /// `buf` is the IP payload; the UDP length must be within it.
    pub fn new_checked(buf: T) -> Result<Self> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let len = get_u16(b, 4) as usize;
        if len < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if len > b.len() {
            return Err(Error::Truncated);
        }
        Ok(UdpPacket { buf })
    }
    pub fn src_port(&self) -> u16 {
        get_u16(self.buf.as_ref(), 0)
    }
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buf.as_ref(), 2)
    }
    pub fn len(&self) -> u16 {
        get_u16(self.buf.as_ref(), 4)
    }
    pub fn is_empty(&self) -> bool {
        self.len() as usize == HEADER_LEN
    }
    pub fn checksum(&self) -> u16 {
        get_u16(self.buf.as_ref(), CHECKSUM_AT)
    }
    /// The checksum field value for this datagram between `src` and `dst`
    /// (the current field is ignored; never 0).
    pub fn compute_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
        let b = self.buf.as_ref();
        let b = b.get(..self.len() as usize).unwrap_or(b);
        let ph = checksum::pseudo_header_v4(src, dst, super::ipv4::PROTO_UDP, self.len());
        let s = checksum::sum(&b[..CHECKSUM_AT], ph);
        let c = !checksum::fold(checksum::sum(&b[HEADER_LEN..], s));
        if c == 0 {
            0xffff
        } else {
            c
        }
    }
    /// True when the checksum is absent (zero) or right.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let c = self.checksum();
        c == 0 || c == self.compute_checksum(src, dst)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    pub fn set_src_port(&mut self, p: u16) {
        put_u16(self.buf.as_mut(), 0, p)
    }
    pub fn set_dst_port(&mut self, p: u16) {
        put_u16(self.buf.as_mut(), 2, p)
    }
    pub fn set_checksum(&mut self, c: u16) {
        put_u16(self.buf.as_mut(), CHECKSUM_AT, c)
    }
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        let c = self.compute_checksum(src, dst);
        self.set_checksum(c);
    }
    /// The checksum IPVS's NAT fills in for a datagram that had none: over
    /// the whole buffer (the IP payload), its length in the pseudo-header,
    /// whatever the length field says (`udp_dnat_handler` sums
    /// `skb->len - udphoff` bytes). The same as [`Self::fill_checksum`]
    /// when the length field is right.
    pub fn fill_checksum_over_payload(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let b = self.buf.as_ref();
        let len = b.len().min(u16::MAX as usize) as u16;
        let ph = checksum::pseudo_header_v4(src, dst, super::ipv4::PROTO_UDP, len);
        let c = !checksum::fold(checksum::sum(b, ph));
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_reject() {
        let b = [0x30, 0x39, 0, 53, 0, 9, 0, 0, 0xaa];
        let u = UdpPacket::new_checked(&b[..]).unwrap();
        assert_eq!((u.src_port(), u.dst_port(), u.len()), (12345, 53, 9));
        assert_eq!(
            UdpPacket::new_checked(&b[..8]).unwrap_err(),
            Error::Truncated
        );
        let bad = [0, 1, 0, 2, 0, 7, 0, 0];
        assert_eq!(
            UdpPacket::new_checked(&bad[..]).unwrap_err(),
            Error::Malformed
        );
    }

    #[test]
    fn checksum_fill_verify_and_zero_rule() {
        let (s, d) = (Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 1));
        // 10.0.0.2:12345 -> 10.0.0.1:53, payload "ab" (the trailing 0xee
        // lies beyond the UDP length). Worked by hand: pseudo-header
        // 0x0a00+0x0002+0x0a00+0x0001+0x0011+0x000a, header
        // 0x3039+0x0035+0x000a, data 0x6162: sum 0xa5f8, checksum 0x5a07.
        let mut b = [0x30, 0x39, 0, 53, 0, 10, 0, 0, b'a', b'b', 0xee];
        let mut u = UdpPacket::new_checked(&mut b[..]).unwrap();
        assert!(u.verify_checksum(s, d), "zero means no checksum");
        u.fill_checksum(s, d);
        assert_eq!(u.checksum(), 0x5a07);
        assert!(u.verify_checksum(s, d));
        u.set_src_port(1);
        assert!(!u.verify_checksum(s, d));
        u.set_dst_port(2);
        assert_eq!((u.src_port(), u.dst_port()), (1, 2));
        // Payload chosen so that the one's-complement sum is 0xffff: the
        // checksum must then read 0xffff, never 0.
        let mut z = [0u8; 10];
        z[4..6].copy_from_slice(&10u16.to_be_bytes());
        let u = UdpPacket::new_checked(&mut z[..]).unwrap();
        let partial = !u.compute_checksum(s, d); // sum with a zero payload
        u.buf[8..10].copy_from_slice(&(!partial).to_be_bytes());
        assert_eq!(u.compute_checksum(s, d), 0xffff);
    }
}
