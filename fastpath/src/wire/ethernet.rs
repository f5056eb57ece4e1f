//! Ethernet II frames (no 802.1Q tag handling yet: tagged frames are
//! classified by their outer EtherType 0x8100 and not parsed further).

use super::{get_u16, put_u16, Error, MacAddr, Result};

pub const HEADER_LEN: usize = 14;
/// Frames shorter than this (without FCS) are padded on the wire.
pub const MIN_FRAME_LEN: usize = 60;

/// EtherType values the director looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EtherType;
impl EtherType {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const VLAN: u16 = 0x8100;
    pub const IPV6: u16 = 0x86dd;
}

#[derive(Debug, Clone)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    pub fn new_checked(buf: T) -> Result<Self> {
        if buf.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(EthernetFrame { buf })
    }
    pub fn dst(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buf.as_ref()[0..6])
    }
    pub fn src(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buf.as_ref()[6..12])
    }
    pub fn ethertype(&self) -> u16 {
        get_u16(self.buf.as_ref(), 12)
    }
    pub fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[HEADER_LEN..]
    }
    pub fn into_inner(self) -> T {
        self.buf
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    pub fn set_dst(&mut self, m: MacAddr) {
        self.buf.as_mut()[0..6].copy_from_slice(&m.0);
    }
    pub fn set_src(&mut self, m: MacAddr) {
        self.buf.as_mut()[6..12].copy_from_slice(&m.0);
    }
    pub fn set_ethertype(&mut self, t: u16) {
        put_u16(self.buf.as_mut(), 12, t)
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buf.as_mut()[HEADER_LEN..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let mut b = [0u8; 20];
        assert_eq!(
            EthernetFrame::new_checked(&b[..13]).unwrap_err(),
            Error::Truncated
        );
        let mut f = EthernetFrame::new_checked(&mut b[..]).unwrap();
        f.set_dst(MacAddr::BROADCAST);
        f.set_src(MacAddr([2, 0, 0, 0, 0, 1]));
        f.set_ethertype(EtherType::ARP);
        assert_eq!(
            &b[..14],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 8, 6]
        );
        let f = EthernetFrame::new_checked(&b[..]).unwrap();
        assert!(f.dst().is_broadcast());
        assert_eq!(f.ethertype(), EtherType::ARP);
        assert_eq!(f.payload().len(), 6);
    }
}
