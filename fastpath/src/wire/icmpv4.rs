//! ICMPv4 messages (RFC 792): the common header plus echo fields.

use super::{checksum, get_u16, put_u16, Error, Result};

pub const HEADER_LEN: usize = 8;
pub const TYPE_ECHO_REPLY: u8 = 0;
pub const TYPE_DEST_UNREACH: u8 = 3;
pub const TYPE_ECHO_REQUEST: u8 = 8;
pub const TYPE_TIME_EXCEEDED: u8 = 11;

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
}
