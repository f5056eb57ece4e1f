//! Zero-copy views over packet headers, in the style of smoltcp's `wire`.
//!
//! Every view wraps a byte buffer, is built by a checked constructor that
//! validates lengths once, and then reads and writes fields in place. The
//! rest of the data plane parses a frame once and passes these views around,
//! so a malformed packet is rejected at the edge and nothing downstream can
//! index out of bounds on packet content.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmpv4;
pub mod ipv4;
pub mod ipv4_options;
pub mod sctp;
pub mod tcp;
pub mod udp;
pub mod vrrp;

use core::fmt;

pub use arp::ArpPacket;
pub use ethernet::{EtherType, EthernetFrame};
pub use icmpv4::Icmpv4Packet;
pub use ipv4::{Ipv4Packet, QuotedIpv4};
pub use sctp::SctpPacket;
pub use tcp::TcpPacket;
pub use udp::UdpPacket;
pub use vrrp::VrrpPacket;

/// Why a view could not be built over a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The buffer is shorter than the header (or its declared length).
    Truncated,
    /// A field holds a value the protocol forbids (version, header length...).
    Malformed,
}

pub type Result<T> = core::result::Result<T, Error>;

/// An Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    pub fn from_bytes(b: &[u8]) -> MacAddr {
        let mut m = [0u8; 6];
        m.copy_from_slice(&b[..6]);
        MacAddr(m)
    }
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }
    pub fn is_broadcast(&self) -> bool {
        self.0 == [0xff; 6]
    }
    /// Group bit set: multicast, broadcast included.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast() && *self != Self::ZERO
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[inline]
pub(crate) fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
#[inline]
pub(crate) fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}
#[inline]
pub(crate) fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
#[inline]
pub(crate) fn get_ipv4(b: &[u8], at: usize) -> core::net::Ipv4Addr {
    core::net::Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}
#[inline]
pub(crate) fn put_ipv4(b: &mut [u8], at: usize, a: core::net::Ipv4Addr) {
    b[at..at + 4].copy_from_slice(&a.octets());
}
