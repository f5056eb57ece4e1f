//! The address family a table holds, and the 5-tuple lookups take.
//!
//! A table holds one family: `ConnTable<Ipv4Addr>` today, and
//! `ConnTable<Ipv6Addr>` with the same code and API when IPv6 services come
//! (as IPVS, whose entries carry an `af` and are never matched across
//! families). What differs between families is only here: how an address
//! feeds the table hash and the RSS hash. Mixed-family entries (an IPv6
//! service tunnelling to an IPv4 real server) would live in the IPv6 table
//! with the server's address v4-mapped.

use core::fmt::Debug;
use core::hash::Hash;
use core::net::{Ipv4Addr, Ipv6Addr};

mod sealed {
    pub trait Sealed {}
    impl Sealed for core::net::Ipv4Addr {}
    impl Sealed for core::net::Ipv6Addr {}
}

/// An address family the connection table can hold (sealed: the hashing
/// below relies on the exact representations).
pub trait Addr: Copy + Eq + Hash + Debug + sealed::Sealed {
    /// Bytes of the address on the wire (4 or 16).
    const LEN: usize;
    const UNSPECIFIED: Self;
    /// The address as two 64-bit words, high first (IPv4: `[0, bits]`), so
    /// hashing is two or one multiplications with no byte loops.
    fn words(self) -> [u64; 2];
    /// Network-order bytes into `out[..LEN]`, as RSS hashes them.
    fn write_octets(self, out: &mut [u8; 16]);
}

impl Addr for Ipv4Addr {
    const LEN: usize = 4;
    const UNSPECIFIED: Self = Ipv4Addr::UNSPECIFIED;
    #[inline]
    fn words(self) -> [u64; 2] {
        [0, u64::from(self.to_bits())]
    }
    #[inline]
    fn write_octets(self, out: &mut [u8; 16]) {
        out[..4].copy_from_slice(&self.octets());
    }
}

impl Addr for Ipv6Addr {
    const LEN: usize = 16;
    const UNSPECIFIED: Self = Ipv6Addr::UNSPECIFIED;
    #[inline]
    fn words(self) -> [u64; 2] {
        let b = self.to_bits();
        [(b >> 64) as u64, b as u64]
    }
    #[inline]
    fn write_octets(self, out: &mut [u8; 16]) {
        *out = self.octets();
    }
}

/// A packet's 5-tuple as it is on the wire, sender first. The lookups give
/// it meaning: for [`lookup_in`](super::ConnTable::lookup_in) the sender is
/// the client and `dst` the virtual service; for
/// [`lookup_out`](super::ConnTable::lookup_out) the sender is the real
/// server (or the VIP) and `dst` the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnKey<A> {
    pub proto: u8,
    pub src: A,
    pub sport: u16,
    pub dst: A,
    pub dport: u16,
}

impl<A: Addr> ConnKey<A> {
    pub fn new(proto: u8, src: A, sport: u16, dst: A, dport: u16) -> Self {
        ConnKey {
            proto,
            src,
            sport,
            dst,
            dport,
        }
    }
}
