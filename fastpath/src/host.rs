//! The director's own network presence on one worker: the addresses it
//! answers for (its interface addresses and the VIPs), and the two parts
//! that act on packets, [`Egress`] (the way out) and [`Ipvs`] (the
//! engine), held side by side so each can be lent to the other's
//! callers as a separate borrow.
//!
//! The control plane describes all of this in a [`HostConfig`] snapshot;
//! each worker builds its private `Host` from it, so nothing here is shared
//! between cores.

use crate::ipvs::Ipvs;
use crate::output::egress::{Egress, PortConfig};
use crate::output::neigh::{NeighTable, StaticNeighbour};
use crate::output::route::{self, RouteTable, StaticRoute};
use crate::stats::WorkerStats;
use core::net::Ipv4Addr;
use std::sync::Arc;

/// What the control plane tells the data plane about the director itself.
#[derive(Debug, Clone, Default)]
pub struct HostConfig {
    /// Indexed by the port numbers [`Io`](crate::io::Io) uses.
    pub ports: Vec<PortConfig>,
    /// Virtual addresses the director answers ARP and ping for on every port.
    pub vips: Vec<Ipv4Addr>,
    /// The VRRP instances' addresses and the instance owning each: held
    /// (answered, forwarded) only while that instance is master here.
    /// They join `vips` (see `gate`).
    pub owned: Vec<(Ipv4Addr, u8)>,
    /// VRRP virtual MACs: (port, instance, MAC). The port receives frames
    /// to the MAC too, and answers ARP for the instance's addresses with
    /// it while the instance is master.
    pub vmacs: Vec<(usize, u8, crate::wire::MacAddr)>,
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
    /// A VIP of a VRRP instance that is not master here.
    Backup,
    /// Limited or directed broadcast, or multicast: for the kernel.
    Broadcast,
}

pub struct Host<B> {
    /// Interface and broadcast addresses, sorted and deduplicated by
    /// address; an interface address that is also a VIP counts as the
    /// interface (it answers as both).
    local: Vec<(Ipv4Addr, Local)>,
    /// `local`'s addresses as integers, scanned in order: a port has a
    /// handful of addresses, where a linear scan beats a binary search.
    local_keys: Box<[u32]>,
    /// Sorted; replaced with each service snapshot (ripvsadm adds VIPs).
    vips: Arc<[Ipv4Addr]>,
    /// Each VIP's VRRP instance (`gate`), in `vips` order; empty
    /// when no instance owns any.
    gate: Arc<[u8]>,
    /// Frames for the control plane go up this (VRRP); `None`: no
    /// control plane speaks any protocol, and they go to the kernel.
    pub(crate) control: Option<crate::control_link::WorkerEnd>,
    /// `HostConfig::vmacs`.
    vmacs: Vec<(usize, u8, crate::wire::MacAddr)>,
    /// Whether some address in `local` is also a VIP (it then counts as
    /// local). While none is, a VIP is known not to be local without
    /// scanning `local`, which is what nearly every packet is sent to.
    vip_is_local: bool,
    pub(crate) egress: Egress<B>,
    pub(crate) ipvs: Ipvs,
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

impl<B: crate::io::Buf> Host<B> {
    /// `shared`: what all workers share; `me`: this worker's index in it.
    pub fn new(
        cfg: &HostConfig,
        stats: Arc<WorkerStats>,
        shared: Arc<crate::ipvs::Shared>,
        me: usize,
    ) -> Self {
        let mut local = Vec::new();
        for (i, p) in cfg.ports.iter().enumerate() {
            for &(a, len) in &p.addrs {
                local.push((a, Local::Iface(i)));
                if len < 31 {
                    let bcast = Ipv4Addr::from_bits(a.to_bits() | !route::mask(len));
                    local.push((bcast, Local::Broadcast));
                }
            }
        }
        local.push((Ipv4Addr::BROADCAST, Local::Broadcast));
        let (vips, gate) = crate::gate::gated(&cfg.vips, &cfg.owned);
        local.sort_by_key(|&(a, _)| a);
        local.dedup_by_key(|&mut (a, _)| a);
        let mut host = Host {
            local_keys: local.iter().map(|&(a, _)| a.to_bits()).collect(),
            local,
            vips,
            gate,
            control: None,
            vmacs: cfg.vmacs.clone(),
            vip_is_local: false,
            egress: Egress::new(
                &cfg.ports,
                &cfg.routes,
                &cfg.neighbours,
                cfg.neigh_limit,
                stats,
                me,
            ),
            ipvs: Ipvs::new(
                Arc::new(cfg.services.clone()),
                shared.clone(),
                me,
                cfg.max_connections / shared.cores.len().max(1),
                cfg.timeouts,
                cfg.settings,
                cfg.memory_advice,
            ),
        };
        host.vip_is_local = host
            .local
            .iter()
            .any(|&(a, _)| find_sorted(&host.vips, a, |&v| v).is_some());
        host.ipvs.own = crate::martian::OwnAddrs::new(host.local_keys.clone(), host.vips.clone());
        host
    }

    /// Whether a packet from `src` is a martian's ([`crate::martian`]).
    #[inline]
    pub(crate) fn is_martian(&self, src: Ipv4Addr) -> bool {
        self.ipvs.own.is_martian(src)
    }

    #[inline]
    pub fn classify(&self, dst: Ipv4Addr) -> Option<Local> {
        if dst.is_multicast() {
            return Some(Local::Broadcast);
        }
        if !self.vip_is_local {
            if let Some(i) = find_sorted(&self.vips, dst, |&v| v) {
                return Some(self.vip_class(i));
            }
        }
        let d = dst.to_bits();
        if let Some(i) = self.local_keys.iter().position(|&a| a == d) {
            return self.local.get(i).map(|&(_, l)| l);
        }
        if self.vip_is_local {
            return find_sorted(&self.vips, dst, |&v| v).map(|i| self.vip_class(i));
        }
        None
    }

    /// The `i`-th VIP is held here unless its VRRP instance is not master.
    #[inline]
    fn vip_class(&self, i: usize) -> Local {
        match self.gate.get(i) {
            Some(&g) if g != crate::gate::UNGATED && !self.ipvs.shared.mastery.is_master(g) => {
                Local::Backup
            }
            _ => Local::Vip,
        }
    }

    /// Takes the VIPs of a new snapshot (sorted, deduplicated) and their
    /// gate; returns the old ones for the control thread to free.
    pub fn set_vips(
        &mut self,
        vips: Arc<[Ipv4Addr]>,
        gate: Arc<[u8]>,
    ) -> (Arc<[Ipv4Addr]>, Arc<[u8]>) {
        self.ipvs.own.set_vips(vips.clone());
        let old = core::mem::replace(&mut self.vips, vips);
        let old_gate = core::mem::replace(&mut self.gate, gate);
        self.vip_is_local = self
            .local
            .iter()
            .any(|&(a, _)| find_sorted(&self.vips, a, |&v| v).is_some());
        (old, old_gate)
    }

    /// Whether `port` takes frames sent to `dst`: its MAC, or one of its
    /// VRRP virtual MACs.
    #[inline]
    pub fn accepts_mac(&self, port: usize, dst: crate::wire::MacAddr) -> bool {
        dst == self.egress.ports[port].mac || self.takes_vmac(port, &dst.0)
    }

    /// Whether `dst` is one of `port`'s VRRP virtual MACs: one length
    /// test where none is configured; the search stays out of line.
    #[inline]
    pub(crate) fn takes_vmac(&self, port: usize, dst: &[u8]) -> bool {
        !self.vmacs.is_empty() && self.vmac_of(port, dst)
    }

    #[inline(never)]
    fn vmac_of(&self, port: usize, dst: &[u8]) -> bool {
        self.vmacs.iter().any(|&(p, _, m)| p == port && m.0 == dst)
    }

    /// The MAC `port` answers ARP for `a` with: the virtual MAC of the VRRP
    /// instance holding it, if that instance uses one on this port, else
    /// the port's own.
    pub fn arp_mac(&self, port: usize, a: Ipv4Addr) -> crate::wire::MacAddr {
        let own = self.egress.ports[port].mac;
        if self.vmacs.is_empty() {
            return own;
        }
        let Some(g) = find_sorted(&self.vips, a, |&v| v).and_then(|i| self.gate.get(i)) else {
            return own;
        };
        self.vmacs
            .iter()
            .find(|&&(p, inst, _)| p == port && inst == *g)
            .map_or(own, |&(_, _, m)| m)
    }

    /// An address the director holds as a VIP right now.
    #[inline]
    pub fn is_vip(&self, a: Ipv4Addr) -> bool {
        find_sorted(&self.vips, a, |&v| v).is_some_and(|i| self.vip_class(i) == Local::Vip)
    }

    pub fn vips(&self) -> &[Ipv4Addr] {
        &self.vips
    }

    /// Whether `port` answers ARP for `a`: its own addresses and every VIP
    /// (VIPs only while the director is not on standby).
    pub fn answers_arp(&self, port: usize, a: Ipv4Addr) -> bool {
        self.egress.ports[port].addrs.iter().any(|&(x, _)| x == a)
            || (!self.standby() && self.is_vip(a))
    }

    /// IPVS `backup_only` with a backup daemon running: VIPs are neither
    /// answered nor forwarded.
    #[inline]
    pub fn standby(&self) -> bool {
        self.ipvs.settings.standby
    }

    pub fn neighbours(&self) -> &NeighTable<B> {
        self.egress.neighbours()
    }

    pub fn routes(&self) -> &RouteTable {
        self.egress.routes()
    }

    pub fn egress(&self) -> &Egress<B> {
        &self.egress
    }

    /// The IPVS engine, read-only: its connection table and service table,
    /// for listings and for tests that compare whole engine states.
    pub fn ipvs(&self) -> &crate::ipvs::Ipvs {
        &self.ipvs
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
        h.set_vips(vec![a("10.0.0.100")].into(), Arc::from([]));
        want(&h, Some(Local::Iface(0)));
        h.set_vips(vec![a("10.0.0.1"), a("10.0.0.100")].into(), Arc::from([]));
        want(&h, Some(Local::Iface(0)));
        h.set_vips(vec![a("10.0.0.100"), a("10.0.0.255")].into(), Arc::from([]));
        assert_eq!(h.classify(a("10.0.0.255")), Some(Local::Broadcast));
        h.set_vips(vec![].into(), Arc::from([]));
        assert_eq!(h.classify(a("10.0.0.100")), None);
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
