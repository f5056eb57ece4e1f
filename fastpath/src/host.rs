//! The director's own network presence on one worker: its ports and
//! addresses, the VIPs it answers for, routes and neighbours, and the one
//! way out for packets it originates or forwards at layer 3 ([`Host::send_ip`]).
//!
//! The control plane describes all of this in a [`HostConfig`] snapshot;
//! each worker builds its private `Host` from it, so nothing here is shared
//! between cores.

use crate::io::{Buf, Io};
use crate::local::arp;
use crate::output::neigh::{NeighTable, Resolve, Timer};
use crate::output::route::{self, Route, RouteTable};
use crate::stats::{DropReason, Event, WorkerStats};
use crate::wire::{ethernet, EtherType, EthernetFrame, Ipv4Packet, MacAddr};
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

#[derive(Debug, Clone, PartialEq)]
pub struct StaticRoute {
    pub net: Ipv4Addr,
    pub prefix_len: u8,
    pub via: Option<Ipv4Addr>,
    pub port: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StaticNeighbour {
    pub port: usize,
    pub ip: Ipv4Addr,
    pub mac: MacAddr,
}

/// What the control plane tells the data plane about the director itself.
#[derive(Debug, Clone, Default)]
pub struct HostConfig {
    /// Indexed by the port numbers [`Io`] uses.
    pub ports: Vec<PortConfig>,
    /// Virtual addresses the director answers ARP and ping for on every port.
    pub vips: Vec<Ipv4Addr>,
    pub routes: Vec<StaticRoute>,
    pub neighbours: Vec<StaticNeighbour>,
    /// Neighbour entries per worker.
    pub neigh_limit: usize,
    pub services: crate::service::ServiceTable,
    pub settings: crate::ipvs::Settings,
    pub timeouts: crate::proto::Timeouts,
    /// Connection entries, over all workers.
    pub max_connections: usize,
    /// Shown each connection table's memory (start, bytes) before it is
    /// first written; see [`ConnTable::with_memory_advice`]. The daemon
    /// asks for transparent huge pages here, which `fastpath` cannot do
    /// itself without `unsafe`; `None` leaves the memory as allocated.
    ///
    /// [`ConnTable::with_memory_advice`]: crate::conn::ConnTable::with_memory_advice
    pub memory_advice: Option<fn(*const u8, usize)>,
}

/// What a destination address is to the director.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    /// An interface address of this port index.
    Iface(usize),
    Vip,
    /// Limited or directed broadcast, or multicast: for the kernel.
    Broadcast,
}

pub struct Host<B> {
    pub(crate) ports: Vec<PortConfig>,
    /// Interface and broadcast addresses, sorted and deduplicated by
    /// address; an interface address that is also a VIP counts as the
    /// interface (it answers as both).
    local: Vec<(Ipv4Addr, Local)>,
    /// `local`'s addresses as integers, scanned in order: a port has a
    /// handful of addresses, where a linear scan beats a binary search.
    local_keys: Box<[u32]>,
    /// Sorted; replaced with each service snapshot (ripvsadm adds VIPs).
    vips: Arc<[Ipv4Addr]>,
    /// Whether some address in `local` is also a VIP (it then counts as
    /// local). While none is, a VIP is known not to be local without
    /// scanning `local`, which is what nearly every packet is sent to.
    vip_is_local: bool,
    pub(crate) routes: RouteTable,
    pub(crate) neigh: NeighTable<B>,
    pub(crate) stats: Arc<WorkerStats>,
    pub(crate) ipvs: crate::ipvs::Ipvs,
    /// Resolved next hops by destination, so forwarding to a real server
    /// costs a tag compare instead of a route scan and a neighbour lookup.
    nh: Box<[NextHop]>,
    /// Each real server's way out, for the established path.
    pub(crate) adj: crate::path::Adjacency,
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

/// Where `x` is in `v`, sorted by `key`: a binary search on the address
/// as an integer (`Ipv4Addr`'s own ordering compares octet arrays, several
/// times the cost per probe) without an `Ordering` per step; every packet
/// runs it on the way in.
#[inline]
fn find_sorted<T>(v: &[T], x: Ipv4Addr, key: impl Fn(&T) -> Ipv4Addr) -> Option<usize> {
    let x = x.to_bits();
    let (mut base, mut size) = (0, v.len());
    if size == 0 {
        return None;
    }
    while size > 1 {
        let half = size / 2;
        if key(&v[base + half]).to_bits() <= x {
            base += half;
        }
        size -= half;
    }
    (key(&v[base]).to_bits() == x).then_some(base)
}

#[inline]
fn nh_slot(dst: Ipv4Addr) -> usize {
    (dst.to_bits().wrapping_mul(0x9e37_79b1) >> 22) as usize & (NH_SLOTS - 1)
}

impl<B: Buf> Host<B> {
    /// `shared`: what all workers share; `me`: this worker's index in it.
    pub fn new(
        cfg: &HostConfig,
        stats: Arc<WorkerStats>,
        shared: Arc<crate::ipvs::Shared>,
        me: usize,
    ) -> Self {
        let mut local = Vec::new();
        let mut routes = Vec::new();
        for (i, p) in cfg.ports.iter().enumerate() {
            for &(a, len) in &p.addrs {
                local.push((a, Local::Iface(i)));
                if len < 31 {
                    let bcast = Ipv4Addr::from_bits(a.to_bits() | !route::mask(len));
                    local.push((bcast, Local::Broadcast));
                }
                routes.push(Route {
                    net: a,
                    prefix_len: len,
                    port: i,
                    gateway: None,
                    src: a,
                });
            }
        }
        local.push((Ipv4Addr::BROADCAST, Local::Broadcast));
        let mut vips = cfg.vips.clone();
        vips.sort();
        vips.dedup();
        local.sort_by_key(|&(a, _)| a);
        local.dedup_by_key(|&mut (a, _)| a);
        let mut host = Host {
            ports: cfg.ports.clone(),
            local_keys: local.iter().map(|&(a, _)| a.to_bits()).collect(),
            local,
            vips: vips.into(),
            vip_is_local: false,
            routes: RouteTable::default(),
            neigh: NeighTable::new(cfg.neigh_limit.max(16)),
            nh: vec![NextHop::EMPTY; NH_SLOTS].into_boxed_slice(),
            adj: Default::default(),
            stats,
            ipvs: crate::ipvs::Ipvs::new(
                Arc::new(cfg.services.clone()),
                shared.clone(),
                me,
                cfg.max_connections / shared.cores.len().max(1),
                cfg.timeouts,
                cfg.settings,
                cfg.memory_advice,
            ),
        };
        for r in &cfg.routes {
            let src = host.source_for(r.port, r.via.unwrap_or(r.net));
            routes.push(Route {
                net: r.net,
                prefix_len: r.prefix_len,
                port: r.port,
                gateway: r.via,
                src,
            });
        }
        host.routes = RouteTable::new(routes);
        host.vip_is_local = host.local.iter().any(|&(a, _)| host.is_vip(a));
        for n in &cfg.neighbours {
            host.neigh.add_permanent(n.port, n.ip, n.mac);
        }
        host
    }

    #[inline]
    pub fn classify(&self, dst: Ipv4Addr) -> Option<Local> {
        if dst.is_multicast() {
            return Some(Local::Broadcast);
        }
        if !self.vip_is_local && self.is_vip(dst) {
            return Some(Local::Vip);
        }
        let d = dst.to_bits();
        if let Some(i) = self.local_keys.iter().position(|&a| a == d) {
            return self.local.get(i).map(|&(_, l)| l);
        }
        (self.vip_is_local && self.is_vip(dst)).then_some(Local::Vip)
    }

    /// Takes the VIPs of a new snapshot (sorted, deduplicated); returns
    /// the old set for the control thread to free.
    pub fn set_vips(&mut self, vips: Arc<[Ipv4Addr]>) -> Arc<[Ipv4Addr]> {
        let old = core::mem::replace(&mut self.vips, vips);
        self.vip_is_local = self.local.iter().any(|&(a, _)| self.is_vip(a));
        old
    }

    #[inline]
    pub fn is_vip(&self, a: Ipv4Addr) -> bool {
        find_sorted(&self.vips, a, |&v| v).is_some()
    }

    pub fn vips(&self) -> &[Ipv4Addr] {
        &self.vips
    }

    /// Whether `port` answers ARP for `a`: its own addresses and every VIP
    /// (VIPs only while the director is not on standby).
    pub fn answers_arp(&self, port: usize, a: Ipv4Addr) -> bool {
        self.ports[port].addrs.iter().any(|&(x, _)| x == a) || (!self.standby() && self.is_vip(a))
    }

    /// IPVS `backup_only` with a backup daemon running: VIPs are neither
    /// answered nor forwarded.
    #[inline]
    pub fn standby(&self) -> bool {
        self.ipvs.settings.standby
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
        let addrs = &self.ports[port].addrs;
        addrs
            .iter()
            .find(|&&(a, len)| route::contains(a, len, peer))
            .or(addrs.first())
            .map_or(Ipv4Addr::UNSPECIFIED, |&(a, _)| a)
    }

    pub fn neighbours(&self) -> &NeighTable<B> {
        &self.neigh
    }

    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    /// The IPVS engine, read-only: its connection table and service table,
    /// for listings and for tests that compare whole engine states.
    pub fn ipvs(&self) -> &crate::ipvs::Ipvs {
        &self.ipvs
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

    /// The cached next hop towards `dst`, if it is resolved and current.
    #[inline]
    pub(crate) fn cached_hop(&self, dst: Ipv4Addr) -> Option<NextHop> {
        let e = self.nh[nh_slot(dst)];
        (e.port1 != 0 && e.dst == dst.to_bits() && e.gen == self.neigh.generation()).then_some(e)
    }

    /// Whether a next hop taken from a cache still holds: no neighbour has
    /// changed since.
    #[inline]
    pub(crate) fn hop_current(&self, e: &NextHop) -> bool {
        e.port1 != 0 && e.gen == self.neigh.generation()
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

    /// [`Host::next_hop`] on a cache miss: kept out of line so the hit
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
                    arp::send_request(io, &self.ports, &self.stats, port, hop, None);
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
        let Host {
            neigh,
            ports,
            stats,
            ..
        } = self;
        neigh.tick(now, |t| match t {
            Timer::Request { port, ip, unicast } => {
                arp::send_request(io, ports, stats, port, ip, unicast)
            }
            Timer::Failed(_) => stats.count_drop(DropReason::NeighUnresolved),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::{find_sorted, Host, HostConfig, Local, PortConfig};
    use crate::io::mem::VecBuf;
    use crate::wire::MacAddr;
    use core::net::Ipv4Addr;
    use std::sync::Arc;

    fn a(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    /// A host with one port, 10.0.0.1/24, and the rest of `cfg`.
    fn one_port(cfg: HostConfig) -> Host<VecBuf> {
        let cfg = HostConfig {
            ports: vec![PortConfig {
                mac: MacAddr([2, 0, 0, 0, 0, 1]),
                mtu: 1500,
                addrs: vec![(a("10.0.0.1"), 24)],
                exception: true,
                rss_owner: false,
            }],
            neigh_limit: 16,
            max_connections: 16,
            ..cfg
        };
        let shared = Arc::new(crate::ipvs::Shared::new(1, 16));
        Host::new(&cfg, Default::default(), shared, 0)
    }

    /// An interface address that is also a VIP counts as the interface,
    /// whichever order the snapshots came in.
    #[test]
    fn an_interface_address_that_is_a_vip_stays_local() {
        let mut h = one_port(HostConfig {
            vips: vec![a("10.0.0.100"), a("10.0.0.1")],
            ..Default::default()
        });
        let want = |h: &Host<VecBuf>, both: Option<Local>| {
            assert_eq!(h.classify(a("10.0.0.1")), both);
            assert_eq!(h.classify(a("10.0.0.100")), Some(Local::Vip));
            assert_eq!(h.classify(a("10.0.0.255")), Some(Local::Broadcast));
            assert_eq!(h.classify(a("255.255.255.255")), Some(Local::Broadcast));
            assert_eq!(h.classify(a("224.0.0.1")), Some(Local::Broadcast));
            assert_eq!(h.classify(a("10.0.0.2")), None);
        };
        want(&h, Some(Local::Iface(0)));
        h.set_vips(vec![a("10.0.0.100")].into());
        want(&h, Some(Local::Iface(0)));
        h.set_vips(vec![a("10.0.0.1"), a("10.0.0.100")].into());
        want(&h, Some(Local::Iface(0)));
        h.set_vips(vec![a("10.0.0.100"), a("10.0.0.255")].into());
        assert_eq!(h.classify(a("10.0.0.255")), Some(Local::Broadcast));
        h.set_vips(vec![].into());
        assert_eq!(h.classify(a("10.0.0.100")), None);
    }

    /// Destinations behind a gateway share the gateway's next-hop entry,
    /// which follows the gateway's MAC when it changes; an on-link
    /// destination keeps its own.
    #[test]
    fn next_hops_behind_a_gateway_share_its_entry() {
        let mut h = one_port(HostConfig {
            routes: vec![super::StaticRoute {
                net: a("10.200.0.0"),
                prefix_len: 16,
                via: Some(a("10.0.0.2")),
                port: 0,
            }],
            ..Default::default()
        });
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

    #[test]
    fn find_sorted_agrees_with_binary_search() {
        let all: Vec<Ipv4Addr> = [0u32, 1, 0x0a00_0001, 0x0a00_0064, 0x7fff_ffff, 0x8000_0000]
            .into_iter()
            .chain([0xe000_0001, 0xffff_fffe, u32::MAX])
            .map(Ipv4Addr::from_bits)
            .collect();
        for n in 0..=all.len() {
            let v = &all[..n];
            for probe in (0..12u32)
                .map(|i| i.wrapping_mul(0x1fff_ffff))
                .chain(all.iter().map(|a| a.to_bits()))
            {
                let p = Ipv4Addr::from_bits(probe);
                assert_eq!(
                    find_sorted(v, p, |&a| a),
                    v.binary_search(&p).ok(),
                    "{n} {p}"
                );
            }
        }
    }
}
