//! Martian sources: packets whose source address no host on the network
//! can have, or which claim to come from the director itself. Linux drops
//! them in routing (`ip_route_input_slow`, `fib_validate_source`) before
//! IPVS or ICMP sees them; ripvs checks them where it would act on one:
//! where a connection is created and where the director answers (echo,
//! ARP).
//!
//! Linux runs the check for every packet. ripvs does not on an
//! established connection's packets: an entry's client address is its
//! packets' source, and it was checked when the entry was created (by
//! this director, or by the master that synced it, which runs the same
//! check), so an established packet that matches its entry cannot have a
//! martian source. The one address that can turn martian later is one
//! the director takes after the connection started (a VIP or interface
//! address added at run time that a client already used as its source),
//! and such a connection would have been a martian's on Linux from its
//! next packet; that is left to time out rather than paid for on every
//! packet.

use crate::wire::ipv4::is_host_address;
use core::net::Ipv4Addr;
use std::sync::Arc;

/// The director's own addresses as a source must not be: interface
/// addresses, the broadcast addresses of their networks, and the VIPs
/// (held here or not: a VRRP peer's VIP is still this cluster's).
#[derive(Debug, Clone, Default)]
pub(crate) struct OwnAddrs {
    /// Interface and broadcast addresses, as integers (a handful: a scan).
    local: Box<[u32]>,
    /// Sorted.
    vips: Arc<[Ipv4Addr]>,
}

impl OwnAddrs {
    pub(crate) fn new(local: Box<[u32]>, vips: Arc<[Ipv4Addr]>) -> Self {
        OwnAddrs { local, vips }
    }

    /// Takes a new VIP snapshot's list (sorted). The old one is still held
    /// by the caller, so nothing is freed here.
    pub(crate) fn set_vips(&mut self, vips: Arc<[Ipv4Addr]>) {
        self.vips = vips;
    }

    /// Whether a packet from `src` is a martian's.
    #[inline]
    pub(crate) fn is_martian(&self, src: Ipv4Addr) -> bool {
        !is_host_address(src)
            || self.local.contains(&src.to_bits())
            || self.vips.binary_search(&src).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind() {
        let a = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let own = OwnAddrs::new(
            [a("10.0.0.1"), a("10.0.0.255"), Ipv4Addr::BROADCAST]
                .map(|x| x.to_bits())
                .into(),
            vec![a("10.0.0.100"), a("192.0.2.7")].into(),
        );
        for m in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.255.254",
            "224.0.0.1",
            "239.255.255.255",
            "240.0.0.1",
            "255.255.255.254",
            "255.255.255.255",
            "10.0.0.1",
            "10.0.0.255",
            "10.0.0.100",
            "192.0.2.7",
        ] {
            assert!(own.is_martian(a(m)), "{m}");
        }
        for ok in ["1.0.0.0", "10.0.0.2", "126.255.255.255", "223.255.255.255"] {
            assert!(!own.is_martian(a(ok)), "{ok}");
        }
    }
}
