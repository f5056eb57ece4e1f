//! IPv4 headers (RFC 791). The checked constructor validates version, IHL
//! and total length against the buffer, so `payload()` is the datagram's
//! real payload even when the link layer padded the frame.
//!
//! [`QuotedIpv4`] is the other view: a datagram quoted inside an ICMP
//! error, whose header is whole but whose payload was cut off.

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
    #[inline]
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
    /// The fixed part of the header, which `new_checked` guarantees: one
    /// length check instead of one per byte read. (The zeros are never
    /// returned; they keep this total without a panic path.)
    #[inline]
    fn fixed(&self) -> &[u8; MIN_HEADER_LEN] {
        self.buf
            .as_ref()
            .first_chunk()
            .unwrap_or(&[0; MIN_HEADER_LEN])
    }
    #[inline]
    pub fn header_len(&self) -> usize {
        ((self.fixed()[0] & 0x0f) as usize) * 4
    }
    #[inline]
    pub fn tos(&self) -> u8 {
        self.fixed()[1]
    }
    #[inline]
    pub fn total_len(&self) -> u16 {
        get_u16(self.fixed(), 2)
    }
    #[inline]
    pub fn ident(&self) -> u16 {
        get_u16(self.fixed(), 4)
    }
    #[inline]
    pub fn dont_frag(&self) -> bool {
        get_u16(self.fixed(), 6) & FLAG_DF != 0
    }
    /// True for any fragment: MF set or a non-zero offset.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        get_u16(self.fixed(), 6) & (FLAG_MF | FRAG_OFFSET_MASK) != 0
    }
    /// Fragment offset in bytes (0 for whole datagrams and first fragments).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (get_u16(self.fixed(), 6) & FRAG_OFFSET_MASK) << 3
    }
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.fixed()[8]
    }
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.fixed()[9]
    }
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.fixed(), 10)
    }
    #[inline]
    pub fn src(&self) -> Ipv4Addr {
        get_ipv4(self.fixed(), 12)
    }
    #[inline]
    pub fn dst(&self) -> Ipv4Addr {
        get_ipv4(self.fixed(), 16)
    }
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        let b = self.buf.as_ref();
        let hl = self.header_len();
        let s = match b.first_chunk() {
            Some(h) if hl == MIN_HEADER_LEN => checksum::sum20(h, 0),
            _ => checksum::sum(&b[..hl], 0),
        };
        checksum::fold(s) == 0xffff
    }
    /// The options: the header past its fixed 20 bytes (empty for most).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buf.as_ref()[MIN_HEADER_LEN..self.header_len()]
    }
    /// [`Self::options`] checked as Linux's receive path checks them
    /// ([`super::ipv4_options::check`]).
    pub fn check_options(&self) -> Result<()> {
        super::ipv4_options::check(self.options())
    }
    /// The payload up to the total length (link-layer padding excluded).
    #[inline]
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
    /// TTL minus one with the checksum updated incrementally (RFC 1624), as
    /// a router forwards: a header that arrived with a bad checksum keeps a
    /// bad one. Wraps at 0: callers check for TTL <= 1 first.
    #[inline]
    pub fn decrement_ttl(&mut self) {
        decrement_ttl_in(self.buf.as_mut())
    }
    pub fn set_tos(&mut self, tos: u8) {
        self.buf.as_mut()[1] = tos
    }
    /// Sets or clears DF, leaving MF and the offset alone; checksum stale.
    pub fn set_dont_frag(&mut self, df: bool) {
        let b = self.buf.as_mut();
        let f = get_u16(b, 6) & !FLAG_DF;
        put_u16(b, 6, if df { f | FLAG_DF } else { f });
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
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let b = self.buf.as_ref();
        let s = match b.first_chunk() {
            Some(h) if hl == MIN_HEADER_LEN => checksum::sum20(h, 0),
            _ => checksum::sum(&b[..hl], 0),
        };
        self.set_checksum(!checksum::fold(s));
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, tl) = (self.header_len(), self.total_len() as usize);
        &mut self.buf.as_mut()[hl..tl]
    }
}

/// Whether `a` can be one host's unicast address: not 0.0.0.0/8 ("this
/// network", RFC 1122 3.2.1.3), loopback, multicast, class E (RFC 1812
/// 5.3.7) or the limited broadcast. Linux's routing refuses every one of
/// these as a source (`ip_route_input_slow`'s martian checks), except
/// class E which it leaves to the route table; RFC 1812 has routers
/// refuse it too, and so does the director.
#[inline]
pub fn is_host_address(a: Ipv4Addr) -> bool {
    let top = a.octets()[0];
    top != 0 && top != 127 && top < 224
}

/// [`Ipv4Packet::decrement_ttl`] on the header at the start of `b`, for a
/// caller that validated it already; nothing if `b` is shorter than 12
/// bytes.
#[inline]
pub fn decrement_ttl_in(b: &mut [u8]) {
    let Some(h) = b.first_chunk_mut::<12>() else {
        return;
    };
    let c = u16::from_be_bytes([h[10], h[11]]);
    let c = if h[8] != 0 {
        // The TTL/protocol word drops by 0x0100, so ~old + new is 0xfeff:
        // update16's sum with the constant folded in.
        !checksum::fold(!c as u32 + 0xfeff)
    } else {
        let old = u16::from_be_bytes([h[8], h[9]]);
        checksum::update16(c, old, old.wrapping_sub(0x0100))
    };
    h[8] = h[8].wrapping_sub(1);
    h[10..12].copy_from_slice(&c.to_be_bytes());
}

/// A datagram quoted in an ICMP error (RFC 792, RFC 1812 4.3.2.3): the
/// whole IP header plus at least the first 8 bytes of what followed it.
/// The total length field describes the original datagram, not the quote,
/// so it is not checked; [`Self::l4`] is whatever part of the payload was
/// quoted.
#[derive(Debug, Clone)]
pub struct QuotedIpv4<T: AsRef<[u8]>> {
    buf: T,
}

/// Bytes of the original payload every ICMP error must quote.
pub const QUOTED_L4_MIN: usize = 8;

impl<T: AsRef<[u8]>> QuotedIpv4<T> {
    /// `buf` is the ICMP error's data, from the quoted IP header to the end
    /// of the message.
    pub fn new_checked(buf: T) -> Result<Self> {
        let b = buf.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[0] >> 4 != 4 {
            return Err(Error::Malformed);
        }
        let hl = ((b[0] & 0x0f) as usize) * 4;
        if hl < MIN_HEADER_LEN {
            return Err(Error::Malformed);
        }
        if hl + QUOTED_L4_MIN > b.len() {
            return Err(Error::Truncated);
        }
        Ok(QuotedIpv4 { buf })
    }
    pub fn header_len(&self) -> usize {
        ((self.buf.as_ref()[0] & 0x0f) as usize) * 4
    }
    pub fn tos(&self) -> u8 {
        self.buf.as_ref()[1]
    }
    /// The original datagram's length (usually more than was quoted).
    pub fn total_len(&self) -> u16 {
        get_u16(self.buf.as_ref(), 2)
    }
    pub fn dont_frag(&self) -> bool {
        get_u16(self.buf.as_ref(), 6) & FLAG_DF != 0
    }
    pub fn frag_offset(&self) -> u16 {
        (get_u16(self.buf.as_ref(), 6) & FRAG_OFFSET_MASK) << 3
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
    /// The quoted part of the payload: at least [`QUOTED_L4_MIN`] bytes.
    pub fn l4(&self) -> &[u8] {
        &self.buf.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> QuotedIpv4<T> {
    pub fn set_src(&mut self, a: Ipv4Addr) {
        put_ipv4(self.buf.as_mut(), 12, a)
    }
    pub fn set_dst(&mut self, a: Ipv4Addr) {
        put_ipv4(self.buf.as_mut(), 16, a)
    }
    pub fn fill_checksum(&mut self) {
        put_u16(self.buf.as_mut(), 10, 0);
        let hl = self.header_len();
        let c = checksum::checksum(&self.buf.as_ref()[..hl]);
        put_u16(self.buf.as_mut(), 10, c);
    }
    pub fn l4_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buf.as_mut()[hl..]
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
    fn ttl_decrement_is_rfc1624_for_every_ttl_and_checksum() {
        for ttl in 0..=255u8 {
            for c in (0..=0xffffu16)
                .step_by(251)
                .chain([0, 1, 0xfeff, 0xff00, 0xfffe, 0xffff])
            {
                let mut h = [0x45, 0, 0, 20, 0, 0, 0, 0, ttl, 6, 0, 0];
                h[10..12].copy_from_slice(&c.to_be_bytes());
                decrement_ttl_in(&mut h);
                let old = u16::from_be_bytes([ttl, 6]);
                let new = u16::from_be_bytes([ttl.wrapping_sub(1), 6]);
                assert_eq!(h[8], ttl.wrapping_sub(1));
                assert_eq!(
                    u16::from_be_bytes([h[10], h[11]]),
                    checksum::update16(c, old, new),
                    "{ttl} {c:#x}"
                );
            }
        }
    }

    #[test]
    fn ttl_tos_and_df_setters() {
        let mut b = packet();
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        p.decrement_ttl();
        assert_eq!(p.ttl(), 63);
        assert!(p.verify_checksum());
        // Worked by hand: the TTL/protocol word drops by 0x0100, so the
        // checksum rises by 0x0100.
        assert_eq!(p.checksum(), 0x7bd9);
        p.set_dont_frag(false);
        assert!(!p.dont_frag());
        p.set_tos(0xb8);
        p.fill_checksum();
        assert_eq!(b[1], 0xb8);
        assert_eq!(b[6..8], [0, 0]);
        let mut frag = packet();
        frag[6..8].copy_from_slice(&0x2003u16.to_be_bytes()); // MF, offset 3
        let p = Ipv4Packet::new_checked(&frag[..]).unwrap();
        assert!(p.is_fragment());
        assert_eq!(p.frag_offset(), 24);
    }

    #[test]
    fn quoted_header_allows_a_cut_payload() {
        // 84-byte datagram quoted with 8 bytes of payload.
        let mut q = [0u8; 28];
        q[..20].copy_from_slice(&HDR);
        q[20..28].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(Ipv4Packet::new_checked(&q[..]).is_err());
        let v = QuotedIpv4::new_checked(&q[..]).unwrap();
        assert_eq!((v.total_len(), v.protocol(), v.ttl()), (84, PROTO_ICMP, 64));
        assert_eq!(v.dst(), Ipv4Addr::new(10, 0, 0, 1));
        assert!(v.verify_checksum() && v.dont_frag());
        assert_eq!(v.l4(), [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            QuotedIpv4::new_checked(&q[..27]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            QuotedIpv4::new_checked(&q[..19]).unwrap_err(),
            Error::Truncated
        );
        let mut bad = q;
        bad[0] = 0x44;
        assert_eq!(
            QuotedIpv4::new_checked(&bad[..]).unwrap_err(),
            Error::Malformed
        );
        bad[0] = 0x55;
        assert_eq!(
            QuotedIpv4::new_checked(&bad[..]).unwrap_err(),
            Error::Malformed
        );
        let mut v = QuotedIpv4::new_checked(&mut q[..]).unwrap();
        v.set_src(Ipv4Addr::new(192, 168, 1, 1));
        assert!(!v.verify_checksum());
        v.fill_checksum();
        assert!(v.verify_checksum());
        v.l4_mut()[0] = 9;
        assert_eq!(q[20], 9);
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
