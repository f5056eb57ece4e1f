//! Turns a validated [`conf::Config`] into the data plane's [`HostConfig`].
//!
//! The config names ports; the data plane numbers them (config order, which
//! is also the order the daemon gives them to the workers' I/O). MACs come
//! from the devices, which only the daemon can ask, so they are an input.

use conf::Config;
use fastpath::sched;
use fastpath::service::{self, Dest, MarkRule, Method, Service, ServiceTable};
use fastpath::wire::MacAddr;
use fastpath::{HostConfig, PortConfig, StaticNeighbour, StaticRoute};
use std::net::{IpAddr, Ipv4Addr};

/// Neighbour entries per worker: far more next hops than a director talks
/// to (real servers, gateways), small enough to scan every tick.
pub const NEIGH_LIMIT: usize = 4096;

fn v4(a: IpAddr) -> Option<Ipv4Addr> {
    match a {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    }
}

/// `macs[i]` is the MAC of `cfg.ports[i]`. IPv6 entries are skipped: the
/// config rejects them today, and the data plane is IPv4-only for now.
pub fn host_config(cfg: &Config, macs: &[MacAddr]) -> HostConfig {
    let index = |name: &str| {
        cfg.ports
            .iter()
            .position(|p| p.name == name)
            .expect("validated: port exists")
    };
    let ports = cfg
        .ports
        .iter()
        .zip(macs)
        .map(|(p, &mac)| PortConfig {
            mac,
            mtu: p.mtu,
            addrs: p
                .addresses
                .iter()
                .filter_map(|a| v4(a.addr).map(|x| (x, a.prefix_len)))
                .collect(),
            exception: p.exception.enabled,
        })
        .collect();
    // A fwmark's /32 destinations are VIPs too; wider prefixes are networks
    // routed to the director, not addresses it answers ARP for.
    let mark_vips = cfg
        .fwmarks
        .iter()
        .flat_map(|f| &f.rules)
        .filter(|r| r.dest_len == 32)
        .filter_map(|r| v4(r.dest));
    let service_vips = cfg
        .services
        .iter()
        .filter(|s| s.fwmark.is_none())
        .filter_map(|s| v4(s.vip));
    let mut vips: Vec<Ipv4Addr> = service_vips.chain(mark_vips).collect();
    vips.sort();
    vips.dedup();
    let routes = cfg
        .routes
        .iter()
        .filter_map(|r| {
            Some(StaticRoute {
                net: v4(r.prefix)?,
                prefix_len: r.prefix_len,
                via: r.via.and_then(v4),
                port: index(&r.port),
            })
        })
        .collect();
    let neighbours = cfg
        .neighbours
        .iter()
        .filter_map(|n| {
            Some(StaticNeighbour {
                port: index(&n.port),
                ip: v4(n.addr)?,
                mac: MacAddr(n.mac),
            })
        })
        .collect();
    let mut timeouts = fastpath::proto::Timeouts::default();
    timeouts.set(
        cfg.ipvs.timeout_tcp,
        cfg.ipvs.timeout_tcpfin,
        cfg.ipvs.timeout_udp,
    );
    let settings = fastpath::ipvs::Settings {
        expire_nodest_conn: cfg.ipvs.expire_nodest_conn,
        expire_quiescent_template: cfg.ipvs.expire_quiescent_template,
        conn_reuse_mode: cfg.ipvs.conn_reuse_mode,
        sloppy_tcp: cfg.ipvs.sloppy_tcp,
        sloppy_sctp: cfg.ipvs.sloppy_sctp,
    };
    HostConfig {
        ports,
        vips,
        routes,
        neighbours,
        neigh_limit: NEIGH_LIMIT,
        services: services(cfg),
        settings,
        timeouts,
        max_connections: cfg.dataplane.max_connections as usize,
    }
}

fn proto(p: conf::Protocol) -> u8 {
    match p {
        conf::Protocol::Tcp => service::TCP,
        conf::Protocol::Udp => service::UDP,
        conf::Protocol::Sctp => service::SCTP,
    }
}

/// The service table of a validated config. Real servers are listed
/// newest first, as IPVS keeps them: the file's order is the order they
/// were added. Ids are positions for now (stable ids across reloads come
/// with live changes).
pub fn services(cfg: &Config) -> ServiceTable {
    let mut next_dest = 0u32;
    let services = cfg
        .services
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut dests: Vec<Dest> = s
                .real_servers
                .iter()
                .filter_map(|r| {
                    next_dest += 1;
                    Some(Dest {
                        id: next_dest - 1,
                        addr: v4(r.addr)?,
                        port: r.port,
                        method: match r.method {
                            conf::Method::Dr => Method::Dr,
                            conf::Method::Tun => Method::Tun,
                            conf::Method::Nat => Method::Nat,
                        },
                        weight: r.weight,
                        last_weight: r.weight,
                        u_threshold: r.upper_threshold,
                        l_threshold: r.lower_threshold,
                    })
                })
                .collect();
            dests.reverse();
            let f = s.sched_flags;
            Service {
                id: i as u32,
                proto: proto(s.protocol),
                vip: v4(s.vip).unwrap_or(Ipv4Addr::UNSPECIFIED),
                port: s.port,
                fwmark: s.fwmark,
                scheduler: s.scheduler.parse().expect("validated: a known scheduler"),
                flags: sched::Flags {
                    sh_fallback: f.sh_fallback,
                    sh_port: f.sh_port,
                    mh_fallback: f.mh_fallback,
                    mh_port: f.mh_port,
                },
                persistent: s.persistent,
                netmask: s.netmask,
                ops: s.one_packet,
                dests,
            }
        })
        .collect();
    let rules = cfg
        .fwmarks
        .iter()
        .flat_map(|f| f.rules.iter().map(move |r| (f.mark, r)))
        .filter_map(|(mark, r)| {
            Some(MarkRule {
                mark,
                proto: r.protocol.map_or(0, proto),
                dest: v4(r.dest)?,
                dest_len: r.dest_len,
                ports: r.ports,
            })
        })
        .collect();
    ServiceTable::new(services, rules)
        .expect("a validated config has no duplicate services or unknown marks")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_routes_neighbours_and_vips_map_by_index() {
        let text = r#"
[[ports]]
name = "client"
device = "net_ring0"
addresses = ["10.0.0.1/24"]

[[ports]]
name = "server"
device = "net_ring1"
addresses = ["10.1.0.1/24", "10.2.0.1/16"]
mtu = 9000
exception = { enabled = false }

[[routes]]
prefix = "0.0.0.0/0"
via = "10.0.0.254"
port = "client"

[[routes]]
prefix = "172.16.0.0/12"
via = "10.2.7.7"
port = "server"

[[neighbours]]
address = "10.1.0.9"
mac = "02:00:00:00:00:09"
port = "server"

[[services]]
protocol = "tcp"
vip = "10.0.0.100"
port = 80

[[services]]
protocol = "udp"
vip = "10.0.0.100"
port = 53

[[services]]
protocol = "tcp"
vip = "10.0.0.5"
port = 443
"#;
        let cfg = conf::parse(text, "t.toml").unwrap();
        let macs = [MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2])];
        let h = host_config(&cfg, &macs);
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(
            h.ports,
            vec![
                PortConfig {
                    mac: macs[0],
                    mtu: 1500,
                    addrs: vec![(ip("10.0.0.1"), 24)],
                    exception: true
                },
                PortConfig {
                    mac: macs[1],
                    mtu: 9000,
                    addrs: vec![(ip("10.1.0.1"), 24), (ip("10.2.0.1"), 16)],
                    exception: false
                },
            ]
        );
        assert_eq!(h.vips, vec![ip("10.0.0.5"), ip("10.0.0.100")]);
        assert_eq!(
            h.routes,
            vec![
                StaticRoute {
                    net: ip("0.0.0.0"),
                    prefix_len: 0,
                    via: Some(ip("10.0.0.254")),
                    port: 0
                },
                StaticRoute {
                    net: ip("172.16.0.0"),
                    prefix_len: 12,
                    via: Some(ip("10.2.7.7")),
                    port: 1
                },
            ]
        );
        assert_eq!(
            h.neighbours,
            vec![StaticNeighbour {
                port: 1,
                ip: ip("10.1.0.9"),
                mac: MacAddr([2, 0, 0, 0, 0, 9])
            }]
        );
    }

    #[test]
    fn services_list_real_servers_newest_first_with_ids() {
        let text = r#"
[[ports]]
name = "p0"
device = "net_ring0"
addresses = ["10.0.0.1/24"]

[[fwmarks]]
mark = 5
[[fwmarks.match]]
protocol = "udp"
destination = "10.0.0.64/26"
ports = "5000-5999"

[[services]]
protocol = "udp"
vip = "10.0.0.100"
port = 53
scheduler = "sh"
sched_flags = ["sh-port"]
one_packet = true
[[services.real_servers]]
address = "10.0.0.11"
[[services.real_servers]]
address = "10.0.0.12"
method = "nat"
port = 5353
weight = 4

[[services]]
fwmark = 5
persistent = 60
netmask = "255.255.255.0"
[[services.real_servers]]
address = "10.0.0.13"
method = "tun"
"#;
        let cfg = conf::parse(text, "t.toml").unwrap();
        let t = services(&cfg);
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let s0 = t.get(0);
        assert_eq!(
            (s0.proto, s0.vip, s0.port, s0.scheduler, s0.ops),
            (service::UDP, ip("10.0.0.100"), 53, sched::Kind::Sh, true)
        );
        assert!(s0.flags.sh_port && !s0.flags.sh_fallback);
        let dests: Vec<_> = s0
            .dests
            .iter()
            .map(|d| (d.id, d.addr, d.port, d.method, d.weight))
            .collect();
        assert_eq!(
            dests,
            vec![
                (1, ip("10.0.0.12"), 5353, Method::Nat, 4),
                (0, ip("10.0.0.11"), 53, Method::Dr, 1)
            ]
        );
        let s1 = t.get(1);
        assert_eq!(
            (s1.fwmark, s1.persistent, s1.netmask),
            (Some(5), Some(60), ip("255.255.255.0"))
        );
        assert_eq!(s1.dests[0].id, 2);
        assert_eq!(t.lookup(service::UDP, ip("10.0.0.70"), 5001), Some(1));
        assert_eq!(t.lookup(service::TCP, ip("10.0.0.70"), 5001), None);
        assert_eq!(t.lookup(service::UDP, ip("10.0.0.100"), 53), Some(0));
    }

    #[test]
    fn config_scheduler_names_are_the_data_planes() {
        // conf cannot depend on fastpath (ripvsadm links conf alone), so the
        // list is kept twice; this keeps the two in step.
        let names: Vec<&str> = sched::Kind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names, conf::SCHEDULERS);
    }
}
