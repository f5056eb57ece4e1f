//! IPv4 headers (RFC 791). The checked constructor validates version, IHL
//! and total length against the buffer, so `payload()` is the datagram's
//! real payload even when the link layer padded the frame.

use super::{checksum, get_ipv4, get_u16, put_ipv4, put_u16, Error, Result};
use core::net::Ipv4Addr;

pub const MIN_HEADER_LEN: usize = 20;
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_IPIP: u8 = 4;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_SCTP: u8 = 132;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const FRAG_OFFSET_MASK: u16 = 0x1fff;

#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    pub fn new_checked(buf: T) -> Result<Self> {
        let b = buf.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[0] >> 4 != 4 {
            return Err(Error::Malformed);
        }
        let hl = ((b[0] & 0x0f) as usize) * 4;
        let tl = get_u16(b, 2) as usize;
        if hl < MIN_HEADER_LEN || tl < hl {
            return Err(Error::Malformed);
        }
        if tl > b.len() {
            return Err(Error::Truncated);
        }
        Ok(Ipv4Packet { buf })
    }
    pub fn header_len(&self) -> usize {
        ((self.buf.as_ref()[0] & 0x0f) as usize) * 4
    }
    pub fn tos(&self) -> u8 {
        self.buf.as_ref()[1]
    }
    pub fn total_len(&self) -> u16 {
        get_u16(self.buf.as_ref(), 2)
    }
    pub fn ident(&self) -> u16 {
        get_u16(self.buf.as_ref(), 4)
    }
    pub fn dont_frag(&self) -> bool {
        get_u16(self.buf.as_ref(), 6) & FLAG_DF != 0
    }
    /// True for any fragment: MF set or a non-zero offset.
    pub fn is_fragment(&self) -> bool {
        get_u16(self.buf.as_ref(), 6) & (FLAG_MF | FRAG_OFFSET_MASK) != 0
    }
    pub fn ttl(&self) -> u8 {
        self.buf.as_ref()[8]
    }
    pub fn protocol(&self) -> u8 {
        self.buf.as_ref()[9]
    }
    pub fn checksum(&self) -> u16 {
        get_u16(self.buf.as_ref(), 10)
    }
    pub fn src(&self) -> Ipv4Addr {
        get_ipv4(self.buf.as_ref(), 12)
    }
    pub fn dst(&self) -> Ipv4Addr {
        get_ipv4(self.buf.as_ref(), 16)
    }
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(&self.buf.as_ref()[..self.header_len()], 0)) == 0xffff
    }
    /// The payload up to the total length (link-layer padding excluded).
    pub fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[self.header_len()..self.total_len() as usize]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Writes a 20-byte header (no options) with DF set and a valid checksum.
    #[allow(clippy::too_many_arguments)]
    pub fn emit(
        buf: T,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: u8,
        payload_len: u16,
        ttl: u8,
        ident: u16,
    ) -> Result<Self> {
        let mut buf = buf;
        {
            let b = buf.as_mut();
            let total = MIN_HEADER_LEN + payload_len as usize;
            if b.len() < total {
                return Err(Error::Truncated);
            }
            b[0] = 0x45;
            b[1] = 0;
            put_u16(b, 2, total as u16);
            put_u16(b, 4, ident);
            put_u16(b, 6, FLAG_DF);
            b[8] = ttl;
            b[9] = proto;
            put_ipv4(b, 12, src);
            put_ipv4(b, 16, dst);
        }
        let mut p = Ipv4Packet { buf };
        p.fill_checksum();
        Ok(p)
    }
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buf.as_mut()[8] = ttl
    }
    pub fn set_src(&mut self, a: Ipv4Addr) {
        put_ipv4(self.buf.as_mut(), 12, a)
    }
    pub fn set_dst(&mut self, a: Ipv4Addr) {
        put_ipv4(self.buf.as_mut(), 16, a)
    }
    pub fn set_checksum(&mut self, c: u16) {
        put_u16(self.buf.as_mut(), 10, c)
    }
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = checksum::checksum(&self.buf.as_ref()[..hl]);
        self.set_checksum(c);
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, tl) = (self.header_len(), self.total_len() as usize);
        &mut self.buf.as_mut()[hl..tl]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 10.0.0.2 -> 10.0.0.1, ICMP, 84 bytes; checksum computed independently (python).
    const HDR: [u8; 20] = [
        0x45, 0x00, 0x00, 0x54, 0xab, 0xcd, 0x40, 0x00, 0x40, 0x01, 0x7a, 0xd9, 10, 0, 0, 2, 10, 0,
        0, 1,
    ];

    fn packet() -> [u8; 84] {
        let mut b = [0u8; 84];
        b[..20].copy_from_slice(&HDR);
        b
    }

    #[test]
    fn parse_and_verify() {
        let b = packet();
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 84);
        assert_eq!(p.protocol(), PROTO_ICMP);
        assert_eq!(p.src(), Ipv4Addr::new(10, 0, 0, 2));
        assert!(p.dont_frag());
        assert!(!p.is_fragment());
        assert!(p.verify_checksum());
        assert_eq!(p.payload().len(), 64);
    }

    #[test]
    fn padding_is_not_payload() {
        let mut b = [0u8; 100];
        b[..84].copy_from_slice(&packet());
        assert_eq!(Ipv4Packet::new_checked(&b[..]).unwrap().payload().len(), 64);
    }

    #[test]
    fn rejects_bad_headers() {
        let b = packet();
        assert_eq!(
            Ipv4Packet::new_checked(&b[..19]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Ipv4Packet::new_checked(&b[..83]).unwrap_err(),
            Error::Truncated
        );
        let mut v6 = packet();
        v6[0] = 0x65;
        assert_eq!(
            Ipv4Packet::new_checked(&v6[..]).unwrap_err(),
            Error::Malformed
        );
        let mut short_ihl = packet();
        short_ihl[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&short_ihl[..]).unwrap_err(),
            Error::Malformed
        );
        let mut tl_lt_hl = packet();
        tl_lt_hl[3] = 10;
        assert_eq!(
            Ipv4Packet::new_checked(&tl_lt_hl[..]).unwrap_err(),
            Error::Malformed
        );
        let mut bad_sum = packet();
        bad_sum[11] ^= 1;
        assert!(!Ipv4Packet::new_checked(&bad_sum[..])
            .unwrap()
            .verify_checksum());
    }

    #[test]
    fn emit_matches_reference() {
        let mut b = [0u8; 84];
        Ipv4Packet::emit(
            &mut b[..],
            Ipv4Addr::new(10, 0, 0, 2),
            Ipv4Addr::new(10, 0, 0, 1),
            PROTO_ICMP,
            64,
            64,
            0xabcd,
        )
        .unwrap();
        assert_eq!(b[..20], HDR);
    }
}
