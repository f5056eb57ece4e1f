//! The route table: connected networks from port addresses plus static
//! routes, longest prefix first.
//!
//! A director has a handful of routes (a default, a few server networks), so
//! a linear scan over entries sorted by prefix length is both the simplest
//! correct structure and faster than a trie at this size; the scan stops at
//! the first hit. DIR-24-8 (DPDK's rte_lpm) is the upgrade path if route
//! counts grow into the thousands.

use core::net::Ipv4Addr;

/// A route as the control plane configures it; the data plane adds the
/// source address it will use ([`Route::src`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StaticRoute {
    pub net: Ipv4Addr,
    pub prefix_len: u8,
    pub via: Option<Ipv4Addr>,
    pub port: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub net: Ipv4Addr,
    pub prefix_len: u8,
    pub port: usize,
    /// None for a connected network (the destination is the next hop).
    pub gateway: Option<Ipv4Addr>,
    /// Source address for packets the director originates on this route.
    pub src: Ipv4Addr,
}

impl Route {
    pub fn next_hop(&self, dst: Ipv4Addr) -> Ipv4Addr {
        self.gateway.unwrap_or(dst)
    }
}

pub fn mask(prefix_len: u8) -> u32 {
    if prefix_len == 0 {
        0
    } else {
        u32::MAX << (32 - prefix_len as u32)
    }
}

pub fn contains(net: Ipv4Addr, prefix_len: u8, a: Ipv4Addr) -> bool {
    (a.to_bits() ^ net.to_bits()) & mask(prefix_len) == 0
}

#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    /// Sorted by prefix length, longest first; ties keep insertion order,
    /// so a connected network wins over a static route of the same length.
    routes: Vec<Route>,
    /// (network, mask) of each route, in the same order: the scan a NAT
    /// reply to a client behind a gateway pays reads these 8 bytes a
    /// route, not the whole route and a mask computed from its length.
    keys: Vec<(u32, u32)>,
}

impl RouteTable {
    pub fn new(mut routes: Vec<Route>) -> Self {
        for r in &mut routes {
            r.net = Ipv4Addr::from_bits(r.net.to_bits() & mask(r.prefix_len));
        }
        routes.sort_by_key(|r| core::cmp::Reverse(r.prefix_len));
        let keys = routes
            .iter()
            .map(|r| (r.net.to_bits(), mask(r.prefix_len)))
            .collect();
        RouteTable { routes, keys }
    }

    #[inline]
    pub fn lookup(&self, dst: Ipv4Addr) -> Option<&Route> {
        let d = dst.to_bits();
        let i = self.keys.iter().position(|&(net, m)| d & m == net)?;
        self.routes.get(i)
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn route(net: &str, len: u8, port: usize, gw: Option<&str>) -> Route {
        Route {
            net: ip(net),
            prefix_len: len,
            port,
            gateway: gw.map(ip),
            src: ip("10.0.0.1"),
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let t = RouteTable::new(vec![
            route("0.0.0.0", 0, 0, Some("10.0.0.254")),
            route("10.0.0.0", 24, 0, None),
            route("192.168.0.0", 16, 1, Some("10.1.0.254")),
            route("192.168.7.0", 24, 1, Some("10.1.0.7")),
            route("192.168.7.9", 32, 0, Some("10.0.0.9")),
        ]);
        let hop = |d: &str| t.lookup(ip(d)).map(|r| (r.port, r.next_hop(ip(d))));
        assert_eq!(hop("10.0.0.77"), Some((0, ip("10.0.0.77"))));
        assert_eq!(hop("192.168.1.1"), Some((1, ip("10.1.0.254"))));
        assert_eq!(hop("192.168.7.1"), Some((1, ip("10.1.0.7"))));
        assert_eq!(hop("192.168.7.9"), Some((0, ip("10.0.0.9"))));
        assert_eq!(hop("8.8.8.8"), Some((0, ip("10.0.0.254"))));
    }

    #[test]
    fn no_default_no_route_and_host_bits_ignored() {
        let t = RouteTable::new(vec![route("10.0.0.5", 24, 0, None)]);
        assert_eq!(t.routes()[0].net, ip("10.0.0.0"));
        assert!(t.lookup(ip("10.0.0.200")).is_some());
        assert!(t.lookup(ip("10.0.1.1")).is_none());
    }

    #[test]
    fn masks() {
        assert_eq!(mask(0), 0);
        assert_eq!(mask(1), 0x8000_0000);
        assert_eq!(mask(24), 0xffff_ff00);
        assert_eq!(mask(32), u32::MAX);
        assert!(contains(ip("10.0.0.0"), 8, ip("10.255.1.2")));
        assert!(!contains(ip("10.0.0.0"), 9, ip("10.255.1.2")));
    }
}
