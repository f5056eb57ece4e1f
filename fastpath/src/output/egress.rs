//! The one way out of a worker: the ports as the director configures
//! them, routes, neighbours, the next-hop cache in front of them, and
//! frame emission. Everything that sends — the IPVS engine forwarding to
//! a real server or back to a client, ARP and ICMP answering for the
//! director itself, the ICMP errors the director originates — takes this
//! part, and nothing here knows about the director's own addresses or
//! the engine: that is what lets `host`, `ipvs` and `local` depend on it
//! without depending on one another.

use crate::io::{Buf, Io};
use crate::output::arp;
use crate::output::neigh::{NeighTable, Resolve, StaticNeighbour, Timer};
use crate::output::route::{self, Route, RouteTable, StaticRoute};
use crate::stats::{DropReason, Event, WorkerStats};
use crate::wire::arp::OP_REQUEST;
use crate::wire::{ethernet, EtherType, EthernetFrame, Ipv4Packet, MacAddr};
use crate::xmit::icmp;
use core::net::Ipv4Addr;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub struct PortConfig {
    pub mac: MacAddr,
    pub mtu: u16,
    /// (address, prefix length), primary first.
    pub addrs: Vec<(Ipv4Addr, u8)>,
    /// Frames for the director itself go to a kernel tap.
    pub exception: bool,
    /// The daemon programmed this port's RSS (key, hash fields, RETA) to
    /// spread flows by `conn::owner_core`. Then a received TCP, UDP or
    /// SCTP non-fragment's [`Buf::rss_hash`], when present, equals
    /// [`conn::rss::rss_hash`](crate::conn::rss::rss_hash) of its client
    /// endpoint as this port's side sees it (the source on a client-facing
    /// port, the destination on a server-facing one), so the data plane
    /// may take it instead of computing the Toeplitz hash in software. On
    /// a port facing both, which hashes sources, that holds for client
    /// packets only: a NAT reply's hash there is its real server's. False
    /// (the driver's own RSS, or none) means the NIC hashed something else
    /// and its hash must not stand in for `rss_hash`.
    pub rss_owner: bool,
}

/// TTL of packets the director originates (Linux's default).
pub const DEFAULT_TTL: u8 = 64;

/// A worker's egress part: private to its core, like the rest of the
/// worker, so nothing here is shared or locked.
pub struct Egress<B> {
    pub(crate) ports: Vec<PortConfig>,
    pub(crate) routes: RouteTable,
    pub(crate) neigh: NeighTable<B>,
    /// Resolved next hops by destination, so forwarding to a real server
    /// costs a tag compare instead of a route scan and a neighbour lookup.
    nh: Box<[NextHop]>,
    pub(crate) stats: Arc<WorkerStats>,
    /// The IPv4 identification of the last packet the director built
    /// itself (a TUN outer header, an ICMP error); seeded per worker so
    /// that two workers' sequences do not start together.
    ident: u16,
    /// Each real server's way out ([`super::adj`]).
    pub(crate) adj: super::adj::Adjacency,
    /// Packets of SYN-proxied connections waiting for their real server's
    /// SYN-ACK, as the neighbour table holds packets waiting for ARP.
    pub(crate) held: crate::synproxy::Held<B>,
}

/// Entries in the next-hop cache: direct-mapped, a power of two.
const NH_SLOTS: usize = 1024;

/// Where packets to the neighbour `dst` (a destination on a connected
/// network, or the gateway of a route) leave: valid while the neighbour table's
/// generation is `gen` (routes never change under a worker). Only
/// confirmed neighbours (reachable or static) are cached; anything else
/// takes the full path, which drives the neighbour state machine.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NextHop {
    dst: u32,
    gen: u32,
    /// Port + 1: 0 is an empty slot.
    port1: u16,
    pub(crate) mtu: u16,
    pub(crate) mac: MacAddr,
    /// The director's source address on the route (the TUN outer source).
    pub(crate) src: Ipv4Addr,
}

impl NextHop {
    pub(crate) const EMPTY: NextHop = NextHop {
        dst: 0,
        gen: 0,
        port1: 0,
        mtu: 0,
        mac: MacAddr::ZERO,
        src: Ipv4Addr::UNSPECIFIED,
    };

    pub(crate) fn port(&self) -> usize {
        self.port1 as usize - 1
    }
}

#[inline]
fn nh_slot(dst: Ipv4Addr) -> usize {
    (dst.to_bits().wrapping_mul(0x9e37_79b1) >> 22) as usize & (NH_SLOTS - 1)
}

/// The address the director uses as source towards `peer` on a port with
/// `addrs`: the port's address in the peer's network, else its primary.
fn source_in(addrs: &[(Ipv4Addr, u8)], peer: Ipv4Addr) -> Ipv4Addr {
    addrs
        .iter()
        .find(|&&(a, len)| route::contains(a, len, peer))
        .or(addrs.first())
        .map_or(Ipv4Addr::UNSPECIFIED, |&(a, _)| a)
}

/// Asks who has `ip` on `port`: broadcast, or unicast to confirm a known MAC.
fn send_request<I: Io>(
    io: &mut I,
    ports: &[PortConfig],
    stats: &WorkerStats,
    port: usize,
    ip: Ipv4Addr,
    unicast: Option<MacAddr>,
) {
    let p = &ports[port];
    let src = source_in(&p.addrs, ip);
    let dst = unicast.unwrap_or(MacAddr::BROADCAST);
    match arp::build(io, dst, OP_REQUEST, p.mac, src, MacAddr::ZERO, ip) {
        Some(b) => {
            stats.event(Event::ArpRequestSent);
            io.tx(port, b);
        }
        None => stats.count_drop(DropReason::NoBuffer),
    }
}

impl<B: Buf> Egress<B> {
    /// The ports, indexed by the port numbers [`Io`] uses; their
    /// connected networks become routes, ahead of `static_routes`.
    /// `neigh_limit`: neighbour entries (at least 16); `me`: the worker's
    /// index, which seeds its IPv4 identifications.
    pub fn new(
        ports: &[PortConfig],
        static_routes: &[StaticRoute],
        neighbours: &[StaticNeighbour],
        neigh_limit: usize,
        stats: Arc<WorkerStats>,
        me: usize,
    ) -> Self {
        let mut routes = Vec::new();
        for (i, p) in ports.iter().enumerate() {
            for &(a, len) in &p.addrs {
                routes.push(Route {
                    net: a,
                    prefix_len: len,
                    port: i,
                    gateway: None,
                    src: a,
                });
            }
        }
        for r in static_routes {
            let src = source_in(&ports[r.port].addrs, r.via.unwrap_or(r.net));
            routes.push(Route {
                net: r.net,
                prefix_len: r.prefix_len,
                port: r.port,
                gateway: r.via,
                src,
            });
        }
        let mut neigh = NeighTable::new(neigh_limit.max(16));
        for n in neighbours {
            neigh.add_permanent(n.port, n.ip, n.mac);
        }
        Egress {
            ports: ports.to_vec(),
            routes: RouteTable::new(routes),
            neigh,
            nh: vec![NextHop::EMPTY; NH_SLOTS].into_boxed_slice(),
            stats,
            ident: (me as u16).wrapping_mul(0x3b1d),
            adj: Default::default(),
            held: crate::synproxy::Held::new(),
        }
    }

    pub fn neighbours(&self) -> &NeighTable<B> {
        &self.neigh
    }

    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    /// The identification for the next packet the director builds.
    #[inline]
    pub(crate) fn next_ident(&mut self) -> u16 {
        self.ident = self.ident.wrapping_add(1);
        self.ident
    }

    /// Whether `a` lies in a network connected to `port`.
    pub fn on_link(&self, port: usize, a: Ipv4Addr) -> bool {
        self.ports[port]
            .addrs
            .iter()
            .any(|&(net, len)| route::contains(net, len, a))
    }

    /// The address the director uses as source towards `peer` on `port`:
    /// the port's address in the peer's network, else its primary address.
    pub fn source_for(&self, port: usize, peer: Ipv4Addr) -> Ipv4Addr {
        source_in(&self.ports[port].addrs, peer)
    }

    /// Sends an IPv4 packet (a whole frame whose Ethernet header will be
    /// rewritten) towards its destination: route, MTU, next hop.
    pub fn send_ip<I: Io<Buf = B>>(&mut self, io: &mut I, pkt: B, now: u64) {
        let Ok(ip) = Ipv4Packet::new_checked(&pkt.data()[ethernet::HEADER_LEN..]) else {
            return self.stats.count_drop(DropReason::Malformed);
        };
        let dst = ip.dst();
        self.send_via(io, pkt, dst, now)
    }

    /// Whether a next hop taken from a cache still holds: no neighbour has
    /// changed since.
    #[inline]
    pub(crate) fn hop_current(&self, e: &NextHop) -> bool {
        e.port1 != 0 && e.gen == self.neigh.generation()
    }

    /// The cached next hop towards `dst`, if it is resolved and current.
    #[inline]
    pub(crate) fn cached_hop(&self, dst: Ipv4Addr) -> Option<NextHop> {
        let e = self.nh[nh_slot(dst)];
        (e.port1 != 0 && e.dst == dst.to_bits() && e.gen == self.neigh.generation()).then_some(e)
    }

    /// The next hop towards `dst`, from the cache or filled into it when
    /// its neighbour is confirmed.
    #[inline]
    pub(crate) fn next_hop(&mut self, dst: Ipv4Addr) -> Option<NextHop> {
        if let Some(e) = self.cached_hop(dst) {
            return Some(e);
        }
        self.fill_hop(dst)
    }

    /// [`Egress::next_hop`] on a cache miss: kept out of line so the hit
    /// inlines into the forwarding path.
    #[inline(never)]
    fn fill_hop(&mut self, dst: Ipv4Addr) -> Option<NextHop> {
        let r = self.routes.lookup(dst)?;
        let (port, hop, src) = (r.port, r.next_hop(dst), r.src);
        // Entries are keyed by the neighbour, not the destination: every
        // destination behind a gateway (NAT replies to a million clients)
        // shares the gateway's one entry instead of missing, and none of
        // them evicts a real server's.
        if hop != dst {
            if let Some(e) = self.cached_hop(hop) {
                return Some(e);
            }
        }
        let (state, mac) = self.neigh.state(port, hop)?;
        use crate::output::neigh::State;
        if !matches!(state, State::Reachable | State::Permanent) {
            return None;
        }
        let e = NextHop {
            dst: hop.to_bits(),
            gen: self.neigh.generation(),
            port1: port as u16 + 1,
            mtu: self.ports[port].mtu,
            mac,
            src,
        };
        self.nh[nh_slot(hop)] = e;
        Some(e)
    }

    /// Sends an IPv4 frame towards `toward` rather than its destination
    /// (direct routing: the real server is the next hop, the VIP stays the
    /// destination).
    pub fn send_via<I: Io<Buf = B>>(&mut self, io: &mut I, pkt: B, toward: Ipv4Addr, now: u64) {
        let Ok(ip) = Ipv4Packet::new_checked(&pkt.data()[ethernet::HEADER_LEN..]) else {
            return self.stats.count_drop(DropReason::Malformed);
        };
        let (dst, total) = (toward, ip.total_len());
        if let Some(nh) = self.cached_hop(dst) {
            if total > nh.mtu {
                return self.stats.count_drop(DropReason::TooBig);
            }
            return self.send_l2(io, nh.port(), nh.mac, pkt);
        }
        let Some(r) = self.routes.lookup(dst) else {
            return self.stats.count_drop(DropReason::NoRoute);
        };
        let (port, hop) = (r.port, r.next_hop(dst));
        if total > self.ports[port].mtu {
            return self.stats.count_drop(DropReason::TooBig);
        }
        match self.neigh.resolve(port, hop, now, pkt) {
            Resolve::Ready(mac, pkt) => self.send_l2(io, port, mac, pkt),
            Resolve::Queued { request, evicted } => {
                if evicted.is_some() {
                    self.stats.count_drop(DropReason::NeighQueueFull);
                }
                if request {
                    send_request(io, &self.ports, &self.stats, port, hop, None);
                }
            }
            Resolve::TableFull(_) => self.stats.count_drop(DropReason::NeighTableFull),
        }
    }

    /// Fills in the Ethernet header for `port` and transmits.
    #[inline]
    pub(crate) fn send_l2<I: Io<Buf = B>>(
        &self,
        io: &mut I,
        port: usize,
        dst: MacAddr,
        mut pkt: B,
    ) {
        let Ok(mut eth) = EthernetFrame::new_checked(pkt.data_mut()) else {
            return self.stats.count_drop(DropReason::Malformed);
        };
        eth.set_dst(dst);
        eth.set_src(self.ports[port].mac);
        eth.set_ethertype(EtherType::IPV4);
        io.tx(port, pkt);
    }

    /// Sends the packets a neighbour entry was holding.
    pub(crate) fn release<I: Io<Buf = B>>(
        &self,
        io: &mut I,
        port: usize,
        mac: MacAddr,
        pkts: impl Iterator<Item = B>,
    ) {
        for p in pkts {
            self.stats.event(Event::NeighResolved);
            self.send_l2(io, port, mac, p);
        }
    }

    /// Neighbour timers: retries, probes and failures.
    pub fn tick<I: Io<Buf = B>>(&mut self, io: &mut I, now: u64) {
        let Egress {
            neigh,
            ports,
            stats,
            ..
        } = self;
        neigh.tick(now, |t| match t {
            Timer::Request { port, ip, unicast } => {
                send_request(io, ports, stats, port, ip, unicast)
            }
            Timer::Failed(_) => stats.count_drop(DropReason::NeighUnresolved),
        });
    }

    pub(crate) fn mtu_towards(&mut self, a: Ipv4Addr) -> u16 {
        if let Some(nh) = self.next_hop(a) {
            return nh.mtu;
        }
        self.mtu_by_route(a)
    }

    /// The MTU towards `a` when no next hop is resolved (1500 unrouted).
    pub(crate) fn mtu_by_route(&self, a: Ipv4Addr) -> u16 {
        self.routes
            .lookup(a)
            .map_or(1500, |r| self.ports[r.port].mtu)
    }

    /// The source address of the director's own packets to `a`: its route's
    /// (0.0.0.0 unrouted, which `send_ip` then refuses as `no_route`).
    pub(crate) fn src_towards(&self, a: Ipv4Addr) -> Ipv4Addr {
        self.routes
            .lookup(a)
            .map_or(Ipv4Addr::UNSPECIFIED, |r| r.src)
    }

    /// Sends an ICMP error about `offending` back to its source.
    pub(crate) fn icmp_error<I: Io<Buf = B>>(
        &mut self,
        io: &mut I,
        offending: &[u8],
        kind: icmp::ErrorKind,
        src: Ipv4Addr,
        now: u64,
    ) {
        let Some(mut out) = io.alloc() else {
            return self.stats.count_drop(DropReason::NoBuffer);
        };
        let p = icmp::ErrorParams {
            src,
            ident: self.next_ident(),
            ttl: DEFAULT_TTL,
        };
        if icmp::build_error(&mut out, offending, kind, &p) == icmp::Built::Ready {
            self.stats.event(Event::IcmpErrorSent);
            self.send_ip(io, out, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Egress, PortConfig};
    use crate::io::mem::VecBuf;
    use crate::output::route::StaticRoute;
    use crate::wire::MacAddr;
    use core::net::Ipv4Addr;

    fn a(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    /// Destinations behind a gateway share the gateway's next-hop entry,
    /// which follows the gateway's MAC when it changes; an on-link
    /// destination keeps its own.
    #[test]
    fn next_hops_behind_a_gateway_share_its_entry() {
        let port = PortConfig {
            mac: MacAddr([2, 0, 0, 0, 0, 1]),
            mtu: 1500,
            addrs: vec![(a("10.0.0.1"), 24)],
            exception: true,
            rss_owner: false,
        };
        let route = StaticRoute {
            net: a("10.200.0.0"),
            prefix_len: 16,
            via: Some(a("10.0.0.2")),
            port: 0,
        };
        let mut h: Egress<VecBuf> = Egress::new(&[port], &[route], &[], 16, Default::default(), 0);
        let (gw, old, new) = (
            MacAddr([2, 0, 0, 0, 0, 2]),
            MacAddr([2, 0, 0, 0, 0, 3]),
            MacAddr([2, 0, 0, 0, 0, 9]),
        );
        assert!(h.next_hop(a("10.200.1.1")).is_none(), "gateway unresolved");
        h.neigh.learn(0, a("10.0.0.2"), gw, 0, true, true);
        h.neigh.learn(0, a("10.0.0.3"), old, 0, true, true);
        for client in ["10.200.1.1", "10.200.7.9", "10.200.255.254"] {
            let e = h.next_hop(a(client)).unwrap();
            assert_eq!((e.port(), e.mac, e.src), (0, gw, a("10.0.0.1")), "{client}");
        }
        let filled: Vec<u32> =
            h.nh.iter()
                .filter(|e| e.port1 != 0)
                .map(|e| e.dst)
                .collect();
        assert_eq!(
            filled,
            [a("10.0.0.2").to_bits()],
            "one entry, the gateway's"
        );
        assert_eq!(
            h.next_hop(a("10.0.0.3")).unwrap().mac,
            old,
            "on-link: its own"
        );
        h.neigh.learn(0, a("10.0.0.2"), new, 1, true, false);
        assert_eq!(h.next_hop(a("10.200.7.9")).unwrap().mac, new);
        assert_eq!(h.next_hop(a("10.0.0.3")).unwrap().mac, old);
    }
}
