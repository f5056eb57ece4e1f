//! ICMPv4 messages (RFC 792): the common header, echo fields, and the
//! fields of error messages (the quoted datagram itself is read with
//! [`super::ipv4::QuotedIpv4`]).

use super::{checksum, get_u16, get_u32, put_u16, Error, Result};

pub const HEADER_LEN: usize = 8;
pub const TYPE_ECHO_REPLY: u8 = 0;
pub const TYPE_DEST_UNREACH: u8 = 3;
pub const TYPE_SOURCE_QUENCH: u8 = 4;
pub const TYPE_REDIRECT: u8 = 5;
pub const TYPE_ECHO_REQUEST: u8 = 8;
pub const TYPE_TIME_EXCEEDED: u8 = 11;
pub const TYPE_PARAM_PROBLEM: u8 = 12;
/// DEST_UNREACH codes.
pub const CODE_PORT_UNREACH: u8 = 3;
pub const CODE_FRAG_NEEDED: u8 = 4;
/// TIME_EXCEEDED code: TTL reached zero in transit.
pub const CODE_TTL_EXCEEDED: u8 = 0;
/// Linux's NR_ICMP_TYPES: types above it count as errors (so nobody answers
/// an unknown message, which might be an error, with an error).
const LAST_CLASSIC_TYPE: u8 = 18;

/// Whether a message of type `t` is an error (RFC 1122 3.2.2: never send
/// an ICMP error about one).
pub fn is_error_type(t: u8) -> bool {
    matches!(
        t,
        TYPE_DEST_UNREACH
            | TYPE_SOURCE_QUENCH
            | TYPE_REDIRECT
            | TYPE_TIME_EXCEEDED
            | TYPE_PARAM_PROBLEM
    ) || t > LAST_CLASSIC_TYPE
}

#[derive(Debug, Clone)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// `buf` must be exactly the ICMP message (the IP payload).
    pub fn new_checked(buf: T) -> Result<Self> {
        if buf.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(Icmpv4Packet { buf })
    }
    pub fn msg_type(&self) -> u8 {
        self.buf.as_ref()[0]
    }
    pub fn code(&self) -> u8 {
        self.buf.as_ref()[1]
    }
    pub fn checksum(&self) -> u16 {
        get_u16(self.buf.as_ref(), 2)
    }
    pub fn echo_ident(&self) -> u16 {
        get_u16(self.buf.as_ref(), 4)
    }
    pub fn echo_seq(&self) -> u16 {
        get_u16(self.buf.as_ref(), 6)
    }
    /// The second 32-bit word ("rest of header"): unused, pointer, gateway
    /// or next-hop MTU depending on the type.
    pub fn rest(&self) -> u32 {
        get_u32(self.buf.as_ref(), 4)
    }
    /// Next-hop MTU of a fragmentation-needed message (RFC 1191); 0 from
    /// routers that predate it.
    pub fn next_hop_mtu(&self) -> u16 {
        get_u16(self.buf.as_ref(), 6)
    }
    /// What follows the 8-byte header: for errors, the quoted datagram.
    pub fn data(&self) -> &[u8] {
        &self.buf.as_ref()[HEADER_LEN..]
    }
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(self.buf.as_ref(), 0)) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    /// Changes the type, keeping the checksum valid incrementally (the type
    /// and code share the first 16-bit word).
    pub fn set_msg_type(&mut self, t: u8) {
        let b = self.buf.as_mut();
        let old = get_u16(b, 0);
        b[0] = t;
        let new = get_u16(b, 0);
        let c = checksum::update16(get_u16(b, 2), old, new);
        put_u16(b, 2, c);
    }
    /// Sets type, code and the rest-of-header word; the checksum is left
    /// stale for [`Self::fill_checksum`].
    pub fn set_header(&mut self, t: u8, code: u8, rest: u32) {
        let b = self.buf.as_mut();
        b[0] = t;
        b[1] = code;
        b[4..8].copy_from_slice(&rest.to_be_bytes());
    }
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf.as_mut()[HEADER_LEN..]
    }
    pub fn fill_checksum(&mut self) {
        let b = self.buf.as_mut();
        put_u16(b, 2, 0);
        let c = checksum::checksum(b);
        put_u16(b, 2, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_request_to_reply_keeps_checksum_valid() {
        let mut b = [8u8, 0, 0, 0, 0x12, 0x34, 0, 1, b'h', b'i', b'!'];
        Icmpv4Packet::new_checked(&mut b[..])
            .unwrap()
            .fill_checksum();
        let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!((p.echo_ident(), p.echo_seq()), (0x1234, 1));
        let mut p = Icmpv4Packet::new_checked(&mut b[..]).unwrap();
        p.set_msg_type(TYPE_ECHO_REPLY);
        assert!(p.verify_checksum());
        let incremental = p.checksum();
        p.fill_checksum();
        assert_eq!(incremental, p.checksum());
        assert_eq!(
            Icmpv4Packet::new_checked(&b[..7]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn error_fields() {
        let mut b = [0u8; 12];
        let mut p = Icmpv4Packet::new_checked(&mut b[..]).unwrap();
        p.set_header(TYPE_DEST_UNREACH, CODE_FRAG_NEEDED, 1480);
        p.data_mut().copy_from_slice(&[0x45, 0, 0, 1]);
        p.fill_checksum();
        assert_eq!(b[..2], [3, 4]);
        assert_eq!(b[4..8], [0, 0, 0x05, 0xc8]);
        let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!((p.msg_type(), p.code(), p.next_hop_mtu()), (3, 4, 1480));
        assert_eq!(p.rest(), 1480);
        assert_eq!(p.data(), [0x45, 0, 0, 1]);
        for t in [3, 4, 5, 11, 12, 19, 43, 255] {
            assert!(is_error_type(t), "{t}");
        }
        for t in [0, 1, 8, 13, 14, 17, 18] {
            assert!(!is_error_type(t), "{t}");
        }
    }
}
