//! Where a service is chosen: the virtual services of one config snapshot,
//! their real servers, and the lookup a packet for a VIP goes through.
//!
//! The table is immutable once built (by the control plane, from the config
//! or from ripvsadm changes); workers read it without locks and pick up a
//! new one between bursts. Lookup follows IPVS (reference 4.4): the fwmark
//! service of a marked packet, else the exact (protocol, VIP, port)
//! service, else the VIP's port-0 (all ports) service.
//!
//! ripvs has no iptables: a packet's firewall mark is computed here from the
//! configured match rules (protocol, destination prefix, port range).

pub mod counters;

use core::net::Ipv4Addr;
use hashbrown::HashMap;

/// IP protocol numbers of the services IPVS balances.
pub const TCP: u8 = 6;
pub const UDP: u8 = 17;
pub const SCTP: u8 = 132;

/// Forwarding method, numbered as IPVS's connection flags (FWD_MASK).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Method {
    Nat = 0,
    Tun = 2,
    Dr = 3,
}

/// A real server (IPVS "destination") of one service.
#[derive(Debug, Clone, PartialEq)]
pub struct Dest {
    /// Stable across snapshots: indexes the per-core real-server counters,
    /// and connections refer to their server by it.
    pub id: u32,
    pub addr: Ipv4Addr,
    pub port: u16,
    pub method: Method,
    pub weight: u32,
    /// The weight mh builds its table with (kernel rule: the weight when
    /// added, then every non-zero weight set later), so quiescing a server
    /// does not remap the Maglev table.
    pub last_weight: u32,
    pub u_threshold: u32,
    pub l_threshold: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// Stable across snapshots; indexes per-core service counters.
    pub id: u32,
    /// TCP for fwmark services, as IPVS stores them.
    pub proto: u8,
    pub vip: Ipv4Addr,
    /// 0: all ports (persistent services only).
    pub port: u16,
    pub fwmark: Option<u32>,
    pub scheduler: crate::sched::Kind,
    pub flags: crate::sched::Flags,
    /// Persistence timeout in seconds.
    pub persistent: Option<u32>,
    /// Persistence granularity, as a mask on the client address.
    pub netmask: Ipv4Addr,
    /// One-packet scheduling (UDP).
    pub ops: bool,
    /// SYN proxy (`crate::synproxy`): TCP, NAT real servers only (the
    /// config checks).
    pub synproxy: bool,
    /// In IPVS list order: the newest server first.
    pub dests: Vec<Dest>,
}

/// A fwmark match rule (config `[[fwmarks.match]]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkRule {
    pub mark: u32,
    /// 0: TCP, UDP and SCTP.
    pub proto: u8,
    pub dest: Ipv4Addr,
    pub dest_len: u8,
    pub ports: (u16, u16),
}

impl MarkRule {
    fn matches(&self, proto: u8, dst: Ipv4Addr, dport: u16) -> bool {
        (self.proto == 0 || self.proto == proto)
            && crate::output::route::contains(self.dest, self.dest_len, dst)
            && (self.ports.0..=self.ports.1).contains(&dport)
    }
}

/// The services of one snapshot, indexed for per-packet lookup.
#[derive(Debug, Clone, Default)]
pub struct ServiceTable {
    services: Vec<Service>,
    exact: HashMap<(u8, Ipv4Addr, u16), u32>,
    by_mark: HashMap<u32, u32>,
    rules: Vec<MarkRule>,
    /// Service id → index in `services` (`u32::MAX`: none). Connections
    /// name their service by id, which outlives any one snapshot.
    index: Vec<u32>,
    /// Bit per real-server id: in this snapshot (IPVS's AVAILABLE flag; a
    /// deleted server's connections live on without it).
    live: Vec<u64>,
}

/// Why a table could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableError {
    Duplicate(String),
    UnknownMark(u32),
    /// A service or real-server id beyond the counter blocks.
    IdTooLarge(u32),
}

impl ServiceTable {
    pub fn new(services: Vec<Service>, rules: Vec<MarkRule>) -> Result<Self, TableError> {
        let mut exact = HashMap::new();
        let mut by_mark = HashMap::new();
        for (i, s) in services.iter().enumerate() {
            let dup = match s.fwmark {
                Some(m) => by_mark.insert(m, i as u32).is_some(),
                None => exact.insert((s.proto, s.vip, s.port), i as u32).is_some(),
            };
            if dup {
                return Err(TableError::Duplicate(match s.fwmark {
                    Some(m) => format!("fwmark {m}"),
                    None => format!("{}/{}:{}", s.proto, s.vip, s.port),
                }));
            }
            if let Some(m) = s.fwmark {
                if !rules.iter().any(|r| r.mark == m) {
                    return Err(TableError::UnknownMark(m));
                }
            }
        }
        let mut index = Vec::new();
        let mut live = Vec::new();
        for (i, s) in services.iter().enumerate() {
            if s.id as usize >= counters::MAX_SERVICES {
                return Err(TableError::IdTooLarge(s.id));
            }
            if index.len() <= s.id as usize {
                index.resize(s.id as usize + 1, u32::MAX);
            }
            index[s.id as usize] = i as u32;
            for d in &s.dests {
                if d.id as usize >= counters::MAX_DESTS {
                    return Err(TableError::IdTooLarge(d.id));
                }
                let w = d.id as usize / 64;
                if live.len() <= w {
                    live.resize(w + 1, 0u64);
                }
                live[w] |= 1 << (d.id % 64);
            }
        }
        Ok(ServiceTable {
            services,
            exact,
            by_mark,
            rules,
            index,
            live,
        })
    }

    /// The service with stable id `id`, if this snapshot has it.
    #[inline]
    pub fn by_id(&self, id: u32) -> Option<&Service> {
        let i = *self.index.get(id as usize)?;
        self.services.get(i as usize)
    }

    /// The index of the service with id `id`.
    #[inline]
    pub fn index_of(&self, id: u32) -> Option<u32> {
        self.index
            .get(id as usize)
            .copied()
            .filter(|&i| i != u32::MAX)
    }

    /// Whether real server `id` is in this snapshot.
    #[inline]
    pub fn dest_live(&self, id: u32) -> bool {
        self.live
            .get(id as usize / 64)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    pub fn rules(&self) -> &[MarkRule] {
        &self.rules
    }

    /// The addresses the director answers for as VIPs, sorted: every
    /// service's, and each single address a fwmark rule matches (wider
    /// prefixes are networks routed to the director, not addresses it
    /// answers ARP for).
    pub fn vips(&self) -> Vec<Ipv4Addr> {
        let mut v: Vec<Ipv4Addr> = self
            .services
            .iter()
            .filter(|s| s.fwmark.is_none())
            .map(|s| s.vip)
            .chain(
                self.rules
                    .iter()
                    .filter(|r| r.dest_len == 32)
                    .map(|r| r.dest),
            )
            .collect();
        v.sort();
        v.dedup();
        v
    }

    pub fn services(&self) -> &[Service] {
        &self.services
    }

    pub fn get(&self, i: u32) -> &Service {
        &self.services[i as usize]
    }

    /// The firewall mark ripvs gives this packet: the first matching rule's.
    #[inline]
    pub fn mark_of(&self, proto: u8, dst: Ipv4Addr, dport: u16) -> Option<u32> {
        self.rules
            .iter()
            .find(|r| r.matches(proto, dst, dport))
            .map(|r| r.mark)
    }

    /// The service for a packet (reference 4.4 step 2), by index.
    #[inline]
    pub fn lookup(&self, proto: u8, dst: Ipv4Addr, dport: u16) -> Option<u32> {
        if !self.rules.is_empty() {
            if let Some(i) = self
                .mark_of(proto, dst, dport)
                .and_then(|m| self.by_mark.get(&m))
            {
                return Some(*i);
            }
        }
        self.exact
            .get(&(proto, dst, dport))
            .or_else(|| self.exact.get(&(proto, dst, 0)))
            .copied()
    }

    /// The service a synced entry belongs to (IPVS `ip_vs_service_find`):
    /// by its fwmark when it has one, else by protocol, address and port,
    /// then the address's port-0 service. Marks are not matched again: the
    /// master already did, and sent the mark.
    pub fn find_synced(&self, fwmark: u32, proto: u8, vaddr: Ipv4Addr, vport: u16) -> Option<u32> {
        if fwmark != 0 {
            return self.by_mark.get(&fwmark).copied();
        }
        self.exact
            .get(&(proto, vaddr, vport))
            .or_else(|| self.exact.get(&(proto, vaddr, 0)))
            .copied()
    }

    /// Whether any rule could mark packets to `dst` (so they are not
    /// "unknown destination" even though `dst` is no VIP).
    pub fn marks_dest(&self, dst: Ipv4Addr) -> bool {
        self.rules
            .iter()
            .any(|r| crate::output::route::contains(r.dest, r.dest_len, dst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn svc(id: u32, proto: u8, vip: &str, port: u16, fwmark: Option<u32>) -> Service {
        Service {
            id,
            proto,
            vip: ip(vip),
            port,
            fwmark,
            scheduler: crate::sched::Kind::Wlc,
            flags: Default::default(),
            persistent: (port == 0).then_some(300),
            netmask: Ipv4Addr::BROADCAST,
            ops: false,
            synproxy: false,
            dests: vec![],
        }
    }

    #[test]
    fn lookup_order_is_fwmark_exact_then_port_zero() {
        let rules = vec![MarkRule {
            mark: 9,
            proto: TCP,
            dest: ip("10.0.0.200"),
            dest_len: 32,
            ports: (8000, 8999),
        }];
        let t = ServiceTable::new(
            vec![
                svc(0, TCP, "10.0.0.100", 80, None),
                svc(1, TCP, "10.0.0.100", 0, None),
                svc(2, UDP, "10.0.0.100", 53, None),
                svc(3, TCP, "0.0.0.0", 0, Some(9)),
                svc(4, TCP, "10.0.0.200", 8080, None),
            ],
            rules,
        )
        .unwrap();
        let l = |p, d: &str, port| t.lookup(p, ip(d), port);
        assert_eq!(l(TCP, "10.0.0.100", 80), Some(0));
        assert_eq!(
            l(TCP, "10.0.0.100", 443),
            Some(1),
            "port-0 service catches the rest"
        );
        assert_eq!(l(UDP, "10.0.0.100", 53), Some(2));
        assert_eq!(l(UDP, "10.0.0.100", 54), None, "no UDP port-0 service");
        assert_eq!(
            l(TCP, "10.0.0.200", 8080),
            Some(3),
            "the mark wins over the exact service"
        );
        assert_eq!(l(UDP, "10.0.0.200", 8080), None, "rule is TCP only");
        assert_eq!(l(TCP, "10.0.0.200", 9000), None);
        assert!(t.marks_dest(ip("10.0.0.200")) && !t.marks_dest(ip("10.0.0.100")));
    }

    #[test]
    fn duplicates_and_unknown_marks_are_refused() {
        let dup = ServiceTable::new(
            vec![
                svc(0, TCP, "10.0.0.1", 80, None),
                svc(1, TCP, "10.0.0.1", 80, None),
            ],
            vec![],
        );
        assert_eq!(
            dup.unwrap_err(),
            TableError::Duplicate("6/10.0.0.1:80".into())
        );
        let nomark = ServiceTable::new(vec![svc(0, TCP, "0.0.0.0", 0, Some(4))], vec![]);
        assert_eq!(nomark.unwrap_err(), TableError::UnknownMark(4));
    }
}
