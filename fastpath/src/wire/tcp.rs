//! TCP headers (RFC 9293): ports, sequence numbers and flags.

use super::{get_u16, get_u32, put_u16, Error, Result};

pub const MIN_HEADER_LEN: usize = 20;
pub const FLAG_FIN: u8 = 0x01;
pub const FLAG_SYN: u8 = 0x02;
pub const FLAG_RST: u8 = 0x04;
pub const FLAG_ACK: u8 = 0x10;
/// Offset of the checksum field: an ICMP error's quote of a TCP header
/// holds it only if it is at least this long plus two.
pub const CHECKSUM_AT: usize = 16;

#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// `buf` is the IP payload with at least the fixed 20-byte header; the
    /// data offset is not looked at (every accessor reads the fixed part
    /// only). What IPVS needs to forward a segment: its NAT handlers make
    /// the fixed header writable and nothing more, so a bad data offset
    /// is the receiver's to refuse.
    pub fn new_fixed(buf: T) -> Result<Self> {
        if buf.as_ref().len() < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(TcpPacket { buf })
    }
    /// `buf` is the IP payload; the data offset must fit inside it.
    pub fn new_checked(buf: T) -> Result<Self> {
        let b = buf.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        let off = ((b[12] >> 4) as usize) * 4;
        if off < MIN_HEADER_LEN {
            return Err(Error::Malformed);
        }
        if off > b.len() {
            return Err(Error::Truncated);
        }
        Ok(TcpPacket { buf })
    }
    pub fn src_port(&self) -> u16 {
        get_u16(self.buf.as_ref(), 0)
    }
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buf.as_ref(), 2)
    }
    pub fn seq(&self) -> u32 {
        get_u32(self.buf.as_ref(), 4)
    }
    pub fn ack(&self) -> u32 {
        get_u32(self.buf.as_ref(), 8)
    }
    pub fn header_len(&self) -> usize {
        ((self.buf.as_ref()[12] >> 4) as usize) * 4
    }
    pub fn flags(&self) -> u8 {
        self.buf.as_ref()[13]
    }
    pub fn checksum(&self) -> u16 {
        get_u16(self.buf.as_ref(), CHECKSUM_AT)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    pub fn set_src_port(&mut self, p: u16) {
        put_u16(self.buf.as_mut(), 0, p)
    }
    pub fn set_dst_port(&mut self, p: u16) {
        put_u16(self.buf.as_mut(), 2, p)
    }
    pub fn set_checksum(&mut self, c: u16) {
        put_u16(self.buf.as_mut(), CHECKSUM_AT, c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_syn() {
        let mut b = [0u8; 24];
        b[0..2].copy_from_slice(&40000u16.to_be_bytes());
        b[2..4].copy_from_slice(&22u16.to_be_bytes());
        b[4..8].copy_from_slice(&7u32.to_be_bytes());
        b[12] = 6 << 4;
        b[13] = FLAG_SYN;
        let t = TcpPacket::new_checked(&b[..]).unwrap();
        assert_eq!((t.src_port(), t.dst_port(), t.seq()), (40000, 22, 7));
        assert_eq!(t.header_len(), 24);
        assert_eq!(t.flags(), FLAG_SYN);
        assert_eq!(
            TcpPacket::new_checked(&b[..23]).unwrap_err(),
            Error::Truncated
        );
        b[12] = 4 << 4;
        assert_eq!(
            TcpPacket::new_checked(&b[..]).unwrap_err(),
            Error::Malformed
        );
    }

    #[test]
    fn setters_write_in_place() {
        let mut b = [0u8; 20];
        b[12] = 5 << 4;
        let mut t = TcpPacket::new_checked(&mut b[..]).unwrap();
        t.set_src_port(0x1234);
        t.set_dst_port(0x5678);
        t.set_checksum(0x9abc);
        assert_eq!(
            (t.src_port(), t.dst_port(), t.checksum()),
            (0x1234, 0x5678, 0x9abc)
        );
        assert_eq!(b[..4], [0x12, 0x34, 0x56, 0x78]);
        assert_eq!(b[16..18], [0x9a, 0xbc]);
    }
}
