//! Turns a validated [`conf::Config`] into the data plane's [`HostConfig`].
//!
//! The config names ports; the data plane numbers them (config order, which
//! is also the order the daemon gives them to the workers' I/O). MACs come
//! from the devices, which only the daemon can ask, so they are an input.

use crate::model::Model;
use conf::Config;
use ctrl_api::ApiError;
use fastpath::service::ServiceTable;
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

/// The data plane's start-up config and the live table it came from, so
/// ids agree from boot on. `macs[i]` is the MAC of `cfg.ports[i]`. IPv6
/// entries are skipped: the config rejects them today, and the data plane
/// is IPv4-only for now. Fails only when the table does not fit the
/// counter blocks (more than `MAX_SERVICES` services or `MAX_DESTS` real
/// servers).
pub fn build(cfg: &Config, macs: &[MacAddr]) -> Result<(HostConfig, Model), ApiError> {
    let model = Model::from_config(cfg)?;
    let table = model.to_table()?;
    Ok((host(cfg, macs, table), model))
}

/// [`build`] without the model, for callers that make no live changes.
///
/// # Panics
/// When the config holds more services or real servers than the counter
/// blocks have room for; [`build`] reports that instead.
pub fn host_config(cfg: &Config, macs: &[MacAddr]) -> HostConfig {
    match build(cfg, macs) {
        Ok((h, _)) => h,
        Err(e) => panic!("config does not fit the data plane: {}", e.detail),
    }
}

fn host(cfg: &Config, macs: &[MacAddr], services: ServiceTable) -> HostConfig {
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
            // Known only once the daemon has programmed the NIC.
            rss_owner: false,
        })
        .collect();
    let vips = services.vips();
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
        // The control thread turns candidates on once the master runs.
        sync: None,
        // A backup_only backup stands by from its first packet: it must
        // not announce the VIPs at start, even for a moment.
        standby: cfg.ipvs.backup_only && cfg.sync.backup,
        defence: defence_settings(cfg),
    };
    HostConfig {
        ports,
        vips,
        owned: owned_addresses(cfg),
        vmacs: virtual_macs(cfg),
        routes,
        neighbours,
        neigh_limit: NEIGH_LIMIT,
        services,
        settings,
        timeouts,
        max_connections: cfg.dataplane.max_connections as usize,
        // The daemon's business (it needs `unsafe`, which this crate lacks).
        memory_advice: None,
    }
}

/// The defences' settings as the workers take them.
pub fn defence_settings(cfg: &Config) -> fastpath::defence::DefenceSettings {
    fastpath::defence::DefenceSettings {
        drop_entry: cfg.ipvs.drop_entry,
        drop_packet: cfg.ipvs.drop_packet,
        secure_tcp: cfg.ipvs.secure_tcp,
        am_droprate: cfg.ipvs.am_droprate,
        threshold_permille: (cfg.defence.table_threshold * 1000.0).round() as u16,
    }
}

/// Every VRRP instance's addresses with the instance's index, the gate
/// the workers hold them by (`fastpath::local::gate`).
pub fn owned_addresses(cfg: &Config) -> Vec<(std::net::Ipv4Addr, u8)> {
    cfg.vrrp
        .iter()
        .enumerate()
        .flat_map(|(i, v)| v.addresses.iter().map(move |&a| (a, i as u8)))
        .collect()
}

/// The VRRP instances that answer with the virtual router MAC: (port
/// index, instance index, MAC).
pub fn virtual_macs(cfg: &Config) -> Vec<(usize, u8, MacAddr)> {
    cfg.vrrp
        .iter()
        .enumerate()
        .filter(|(_, v)| v.use_vmac)
        .filter_map(|(i, v)| {
            let p = cfg.ports.iter().position(|p| p.name == v.port)?;
            Some((
                p,
                i as u8,
                MacAddr(fastpath::wire::vrrp::virtual_mac(v.vrid)),
            ))
        })
        .collect()
}

/// The config's service table, with the ids [`Model::from_config`] gives.
pub fn services(cfg: &Config) -> Result<ServiceTable, ApiError> {
    Model::from_config(cfg)?.to_table()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastpath::sched;
    use fastpath::service::{self, Method};

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
                    exception: true,
                    rss_owner: false,
                },
                PortConfig {
                    mac: macs[1],
                    mtu: 9000,
                    addrs: vec![(ip("10.1.0.1"), 24), (ip("10.2.0.1"), 16)],
                    exception: false,
                    rss_owner: false,
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
        let t = services(&cfg).unwrap();
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
