//! VRRP advertisements: version 2 (RFC 3768) and version 3 (RFC 5798,
//! IPv4), the only message type either defines.
//!
//! ```text
//!  v2: version=2 | type=1 | VRID | priority | count | auth type | adver int (s) | checksum
//!      count IPv4 addresses, then 8 bytes of authentication data
//!  v3: version=3 | type=1 | VRID | priority | count | rsvd(4) max adver int (12 bits, cs) | checksum
//!      count IPv4 addresses
//! ```
//!
//! The two versions checksum differently: v2 over the message alone, v3
//! over the message and the IPv4 pseudo-header (RFC 5798 §5.2.8; RFC 9568
//! says so outright for IPv4). The checked constructor validates the
//! version, the type and that `count` addresses (and v2's authentication
//! data) fit; the checksum is the caller's to verify, since a v3 one needs
//! the IP addresses around it.

use super::{checksum, get_ipv4, get_u16, put_ipv4, put_u16, Error, Result};
use core::net::Ipv4Addr;

/// IP protocol number.
pub const PROTO: u8 = 112;
/// The IPv4 multicast group of every advert (RFC 5798 §5.1.1.2).
pub const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// Adverts are sent, and must arrive, with TTL 255: one that crossed a
/// router cannot be from this segment.
pub const TTL: u8 = 255;
pub const HEADER_LEN: usize = 8;
/// v2's authentication data after the addresses.
pub const AUTH_LEN: usize = 8;
/// ADVERTISEMENT, the only type.
pub const TYPE_ADVERT: u8 = 1;
/// v2 authentication types (RFC 2338; 3768 keeps only 0, keepalived and
/// others still send 1).
pub const AUTH_NONE: u8 = 0;
pub const AUTH_PASS: u8 = 1;
/// Priority 0: the master is stopping, take over now.
pub const PRIO_STOP: u8 = 0;
/// Priority 255: the owner of the addresses.
pub const PRIO_OWNER: u8 = 255;

/// The virtual router MAC of `vrid` (RFC 5798 §7.3).
pub const fn virtual_mac(vrid: u8) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, 0x01, vrid]
}

#[derive(Debug, Clone)]
pub struct VrrpPacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> VrrpPacket<T> {
    /// `buf` is the IP payload. Refuses versions other than 2 and 3,
    /// types other than ADVERTISEMENT, and a count of addresses (with
    /// v2's authentication data) longer than the buffer.
    pub fn new_checked(buf: T) -> Result<Self> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let version = b[0] >> 4;
        if !(version == 2 || version == 3) || b[0] & 0x0f != TYPE_ADVERT {
            return Err(Error::Malformed);
        }
        let p = VrrpPacket { buf };
        if p.message_len() > p.buf.as_ref().len() {
            return Err(Error::Truncated);
        }
        Ok(p)
    }
    /// What the header declares: header, addresses, and v2's
    /// authentication data. Bytes after it (link padding) are not part of
    /// the message.
    pub fn message_len(&self) -> usize {
        let b = self.buf.as_ref();
        let auth = if b[0] >> 4 == 2 { AUTH_LEN } else { 0 };
        HEADER_LEN + 4 * b[3] as usize + auth
    }
    pub fn version(&self) -> u8 {
        self.buf.as_ref()[0] >> 4
    }
    pub fn vrid(&self) -> u8 {
        self.buf.as_ref()[1]
    }
    pub fn priority(&self) -> u8 {
        self.buf.as_ref()[2]
    }
    pub fn count(&self) -> u8 {
        self.buf.as_ref()[3]
    }
    /// v2 only (in v3 these bits are reserved and the interval's top).
    pub fn auth_type(&self) -> u8 {
        self.buf.as_ref()[4]
    }
    /// The advertisement interval in centiseconds: v3's 12-bit field, or
    /// v2's seconds times 100.
    pub fn interval_cs(&self) -> u16 {
        let b = self.buf.as_ref();
        if self.version() == 2 {
            b[5] as u16 * 100
        } else {
            get_u16(b, 4) & 0x0fff
        }
    }
    pub fn checksum(&self) -> u16 {
        get_u16(self.buf.as_ref(), 6)
    }
    /// The `i`-th address (`i < count`).
    pub fn address(&self, i: usize) -> Ipv4Addr {
        get_ipv4(self.buf.as_ref(), HEADER_LEN + 4 * i)
    }
    pub fn addresses(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        (0..self.count() as usize).map(|i| self.address(i))
    }
    /// v2's authentication data (8 bytes; empty for v3).
    pub fn auth_data(&self) -> &[u8] {
        if self.version() != 2 {
            return &[];
        }
        let at = HEADER_LEN + 4 * self.count() as usize;
        &self.buf.as_ref()[at..at + AUTH_LEN]
    }
    /// Whether the checksum is right for a message between `src` and
    /// `dst` (the IP header's; v2 ignores them).
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        self.compute_checksum(src, dst) == self.checksum()
    }
    /// The checksum field this message should carry.
    pub fn compute_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
        let b = &self.buf.as_ref()[..self.message_len()];
        let init = if self.version() == 3 {
            checksum::pseudo_header_v4(src, dst, PROTO, b.len() as u16)
        } else {
            0
        };
        let s = checksum::sum(&b[..6], init);
        !checksum::fold(checksum::sum(&b[HEADER_LEN..], s))
    }
}

/// What an advert says; [`emit`] writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert<'a> {
    pub version: u8,
    pub vrid: u8,
    pub priority: u8,
    /// Centiseconds; v2 sends `interval_cs / 100` seconds.
    pub interval_cs: u16,
    pub addresses: &'a [Ipv4Addr],
    /// v2 simple password (at most 8 bytes; zero-padded), `None`: type 0.
    pub password: Option<&'a [u8]>,
}

impl Advert<'_> {
    /// Bytes [`emit`] writes.
    pub fn message_len(&self) -> usize {
        HEADER_LEN + 4 * self.addresses.len() + if self.version == 2 { AUTH_LEN } else { 0 }
    }
}

/// Writes `a` into the front of `out` with its checksum for the IP
/// addresses `src` and `dst`; returns the length, or `None` if `out` is
/// too short or `a` cannot be said (more than 255 addresses, a v3
/// interval beyond 12 bits, a password longer than 8 bytes).
pub fn emit(a: &Advert, src: Ipv4Addr, dst: Ipv4Addr, out: &mut [u8]) -> Option<usize> {
    let len = a.message_len();
    let count = u8::try_from(a.addresses.len()).ok()?;
    if out.len() < len
        || !(a.version == 2 || a.version == 3)
        || (a.version == 3 && a.interval_cs > 0x0fff)
        || a.password.is_some_and(|p| p.len() > AUTH_LEN)
    {
        return None;
    }
    let b = &mut out[..len];
    b[0] = (a.version << 4) | TYPE_ADVERT;
    b[1] = a.vrid;
    b[2] = a.priority;
    b[3] = count;
    if a.version == 2 {
        b[4] = if a.password.is_some() {
            AUTH_PASS
        } else {
            AUTH_NONE
        };
        b[5] = (a.interval_cs / 100).min(255) as u8;
    } else {
        put_u16(b, 4, a.interval_cs);
    }
    put_u16(b, 6, 0);
    for (i, &addr) in a.addresses.iter().enumerate() {
        put_ipv4(b, HEADER_LEN + 4 * i, addr);
    }
    if a.version == 2 {
        let at = HEADER_LEN + 4 * a.addresses.len();
        b[at..at + AUTH_LEN].fill(0);
        if let Some(p) = a.password {
            b[at..at + p.len()].copy_from_slice(p);
        }
    }
    let c = VrrpPacket::new_checked(&*b)
        .ok()?
        .compute_checksum(src, dst);
    put_u16(b, 6, c);
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    /// A v3 advert as keepalived 2.2 sends it (VRID 51, priority 100, 1 s,
    /// one address 10.0.0.100, from 10.0.0.2): checksum worked out by hand
    /// over the pseudo-header.
    #[test]
    fn v3_advert_bytes_and_checksum() {
        let mut out = [0u8; 64];
        let addrs = [a("10.0.0.100")];
        let adv = Advert {
            version: 3,
            vrid: 51,
            priority: 100,
            interval_cs: 100,
            addresses: &addrs,
            password: None,
        };
        let n = emit(&adv, a("10.0.0.2"), GROUP, &mut out).unwrap();
        assert_eq!(n, 12);
        // Sum: pseudo-header 0a00 0002 e000 0012 0070 000c,
        // message 3133 6401 0064 0a00 0064.
        let words: [u32; 11] = [
            0x0a00, 0x0002, 0xe000, 0x0012, 0x0070, 0x000c, 0x3133, 0x6401, 0x0064, 0x0a00, 0x0064,
        ];
        let mut s: u32 = words.iter().sum();
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        let want = !(s as u16);
        assert_eq!(
            &out[..12],
            &[
                0x31,
                51,
                100,
                1,
                0x00,
                0x64,
                (want >> 8) as u8,
                want as u8,
                10,
                0,
                0,
                100
            ]
        );
        let p = VrrpPacket::new_checked(&out[..n]).unwrap();
        assert!(p.verify_checksum(a("10.0.0.2"), GROUP));
        // The pseudo-header counts: another source fails.
        assert!(!p.verify_checksum(a("10.0.0.3"), GROUP));
        assert_eq!(p.interval_cs(), 100);
        assert_eq!(p.addresses().collect::<Vec<_>>(), addrs);
    }

    /// v2: seconds, auth type and data, checksum over the message only.
    #[test]
    fn v2_advert_with_a_password() {
        let mut out = [0u8; 64];
        let addrs = [a("192.168.1.10"), a("192.168.1.11")];
        let adv = Advert {
            version: 2,
            vrid: 7,
            priority: 150,
            interval_cs: 300,
            addresses: &addrs,
            password: Some(b"secret"),
        };
        let n = emit(&adv, a("1.2.3.4"), GROUP, &mut out).unwrap();
        assert_eq!(n, 8 + 8 + 8);
        assert_eq!(&out[..6], &[0x21, 7, 150, 2, AUTH_PASS, 3]);
        assert_eq!(&out[16..24], b"secret\0\0");
        assert_eq!(
            checksum::checksum(&out[..n]),
            0,
            "sums to zero with its checksum"
        );
        let p = VrrpPacket::new_checked(&out[..n]).unwrap();
        assert!(
            p.verify_checksum(a("9.9.9.9"), a("8.8.8.8")),
            "v2 ignores the IP addresses"
        );
        assert_eq!(p.auth_type(), AUTH_PASS);
        assert_eq!(p.auth_data(), b"secret\0\0");
        assert_eq!(p.interval_cs(), 300);
    }

    #[test]
    fn refuses_what_does_not_fit_or_is_not_an_advert() {
        let mut out = [0u8; 64];
        let addrs = [a("10.0.0.1"), a("10.0.0.2")];
        let adv = Advert {
            version: 3,
            vrid: 1,
            priority: 1,
            interval_cs: 10,
            addresses: &addrs,
            password: None,
        };
        let n = emit(&adv, a("10.0.0.9"), GROUP, &mut out).unwrap();
        assert!(
            VrrpPacket::new_checked(&out[..n - 1]).is_err(),
            "count says 2"
        );
        assert!(VrrpPacket::new_checked(&out[..7]).is_err());
        let mut bad = out;
        bad[0] = 0x41;
        assert_eq!(
            VrrpPacket::new_checked(&bad[..n]).err(),
            Some(Error::Malformed)
        );
        bad[0] = 0x32;
        assert_eq!(
            VrrpPacket::new_checked(&bad[..n]).err(),
            Some(Error::Malformed)
        );
        // Link padding after the message is not part of it.
        let p = VrrpPacket::new_checked(&out[..n + 6]).unwrap();
        assert!(p.verify_checksum(a("10.0.0.9"), GROUP));
        assert!(emit(&adv, a("10.0.0.9"), GROUP, &mut out[..n - 1]).is_none());
        let long = Advert {
            interval_cs: 4096,
            ..adv.clone()
        };
        assert!(emit(&long, a("10.0.0.9"), GROUP, &mut out).is_none());
        let pw = Advert {
            version: 2,
            interval_cs: 100,
            password: Some(b"123456789"),
            ..adv
        };
        assert!(emit(&pw, a("10.0.0.9"), GROUP, &mut out).is_none());
    }

    #[test]
    fn virtual_mac_is_the_iana_block() {
        assert_eq!(virtual_mac(51), [0, 0, 0x5e, 0, 1, 51]);
    }
}
