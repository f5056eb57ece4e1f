//! SCTP common headers (RFC 9260 section 3.1) and their CRC32c checksum
//! (RFC 9260 appendix A, RFC 3309).
//!
//! Unlike TCP and UDP, the SCTP checksum has no pseudo-header, so rewriting
//! addresses leaves it valid; a port rewrite means a pass over the whole
//! packet. The CRC is computed here in software, slicing by 8 with tables
//! built at compile time, because the data plane cannot count on a NIC
//! offload or on the CPU's crc32 instruction without `unsafe`.

use super::{get_u16, get_u32, put_u16, Error, Result};

pub const HEADER_LEN: usize = 12;
/// Offset of the checksum field in the common header.
const CHECKSUM_AT: usize = 8;
/// Chunk type of ABORT, which IPVS never answers with an ICMP error.
pub const CHUNK_ABORT: u8 = 6;

/// CRC32c (Castagnoli) polynomial 0x1EDC6F41, bit-reflected.
const POLY: u32 = 0x82f6_3b78;

/// `TABLES[k][b]` is the CRC contribution of byte `b` followed by `k` zero
/// bytes: what lets [`crc32c`] consume eight bytes per step.
static TABLES: [[u32; 256]; 8] = make_tables();

const fn make_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut s = 1;
    while s < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        s += 1;
    }
    t
}

/// Continues a CRC32c over `data` from the raw (not inverted) register
/// `crc`: lets callers feed a packet in pieces, e.g. around the checksum
/// field, without copying it.
pub fn crc32c_update(mut crc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let lo = crc ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        let hi = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
        crc = TABLES[7][(lo & 0xff) as usize]
            ^ TABLES[6][((lo >> 8) & 0xff) as usize]
            ^ TABLES[5][((lo >> 16) & 0xff) as usize]
            ^ TABLES[4][(lo >> 24) as usize]
            ^ TABLES[3][(hi & 0xff) as usize]
            ^ TABLES[2][((hi >> 8) & 0xff) as usize]
            ^ TABLES[1][((hi >> 16) & 0xff) as usize]
            ^ TABLES[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        crc = (crc >> 8) ^ TABLES[0][((crc ^ b as u32) & 0xff) as usize];
    }
    crc
}

/// CRC32c of `data` as RFC 3720 defines it (initial all-ones, final
/// inversion).
pub fn crc32c(data: &[u8]) -> u32 {
    !crc32c_update(!0, data)
}

#[derive(Debug, Clone)]
pub struct SctpPacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> SctpPacket<T> {
    /// `buf` is the IP payload: the whole SCTP packet, since the checksum
    /// covers all of it.
    pub fn new_checked(buf: T) -> Result<Self> {
        if buf.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(SctpPacket { buf })
    }
    pub fn src_port(&self) -> u16 {
        get_u16(self.buf.as_ref(), 0)
    }
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buf.as_ref(), 2)
    }
    pub fn verification_tag(&self) -> u32 {
        get_u32(self.buf.as_ref(), 4)
    }
    /// The checksum as the CRC value (it travels least significant byte
    /// first, the order the reflected CRC is computed in).
    pub fn checksum(&self) -> u32 {
        let b = self.buf.as_ref();
        u32::from_le_bytes([b[8], b[9], b[10], b[11]])
    }
    /// Type of the first chunk, if there is one.
    pub fn first_chunk_type(&self) -> Option<u8> {
        self.buf.as_ref().get(HEADER_LEN).copied()
    }
    /// The CRC of the packet with its checksum field taken as zero.
    pub fn compute_checksum(&self) -> u32 {
        let b = self.buf.as_ref();
        let c = crc32c_update(!0, &b[..CHECKSUM_AT]);
        let c = crc32c_update(c, &[0; 4]);
        !crc32c_update(c, &b[HEADER_LEN..])
    }
    pub fn verify_checksum(&self) -> bool {
        self.compute_checksum() == self.checksum()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> SctpPacket<T> {
    pub fn set_src_port(&mut self, p: u16) {
        put_u16(self.buf.as_mut(), 0, p)
    }
    pub fn set_dst_port(&mut self, p: u16) {
        put_u16(self.buf.as_mut(), 2, p)
    }
    pub fn set_checksum(&mut self, c: u32) {
        self.buf.as_mut()[CHECKSUM_AT..HEADER_LEN].copy_from_slice(&c.to_le_bytes());
    }
    pub fn fill_checksum(&mut self) {
        let c = self.compute_checksum();
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bit-at-a-time CRC32c, the definition the tables must agree with.
    fn crc32c_bitwise(data: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in data {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            }
        }
        !c
    }

    #[test]
    fn crc32c_check_values() {
        // The CRC catalogue's check value for CRC-32/ISCSI.
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        // RFC 3720 appendix B.4: 32 bytes of zeros, and of 0xff.
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62a8_ab43);
        // 32 bytes incrementing 0..31.
        let inc: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c(&inc), 0x46dd_794e);
    }

    #[test]
    fn sliced_matches_bitwise_at_every_length_and_alignment() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for start in 0..8 {
            for end in start..data.len() {
                assert_eq!(
                    crc32c(&data[start..end]),
                    crc32c_bitwise(&data[start..end]),
                    "{start}..{end}"
                );
            }
        }
    }

    #[test]
    fn header_fields_and_checksum() {
        // INIT chunk header only; the checksum value was computed with
        // the bitwise reference over the packet with a zero field.
        let mut b = [0u8; 16];
        b[0..2].copy_from_slice(&5000u16.to_be_bytes());
        b[2..4].copy_from_slice(&80u16.to_be_bytes());
        b[12] = 1;
        b[15] = 4;
        let want = crc32c_bitwise(&b);
        let mut p = SctpPacket::new_checked(&mut b[..]).unwrap();
        p.fill_checksum();
        assert_eq!(p.checksum(), want);
        assert!(p.verify_checksum());
        assert_eq!((p.src_port(), p.dst_port()), (5000, 80));
        assert_eq!(p.first_chunk_type(), Some(1));
        // Stored least significant byte first.
        assert_eq!(b[8..12], want.to_le_bytes());
        p = SctpPacket::new_checked(&mut b[..]).unwrap();
        p.set_dst_port(8080);
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(
            SctpPacket::new_checked(&b[..11]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            SctpPacket::new_checked(&b[..12])
                .unwrap()
                .first_chunk_type(),
            None
        );
    }
}
