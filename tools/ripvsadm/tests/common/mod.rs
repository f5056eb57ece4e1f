//! Builders shared by the integration tests.

#![allow(dead_code)]

use ctrl_api::*;
use ripvsadm::{names::Services, Fail, Invocation, StaticNames};
use std::net::IpAddr;

/// Reference text uses `⏎` to show where lines end (trailing spaces).
pub fn refx(s: &str) -> String {
    s.replace('⏎', "")
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn names() -> StaticNames {
    let mut n = StaticNames {
        services: Services::parse(
            "http 80/tcp www\nhttp 80/udp\ndomain 53/tcp\ndomain 53/udp\nhttps 443/tcp\nsip 5060/sctp\n",
        ),
        ..StaticNames::default()
    };
    n.hosts.insert("web1".into(), "10.0.0.5".parse().unwrap());
    n.hosts
        .insert("mask24".into(), "255.255.255.0".parse().unwrap());
    n.rev.insert(ip("10.0.0.100"), "vip.example.com".into());
    n.rev.insert(ip("10.0.1.11"), "rs1.example.com".into());
    n.rev.insert(
        ip("10.0.1.12"),
        "a-very-long-real-server-name.with.a.long.domain.example.com".into(),
    );
    n
}

pub fn tcp(a: &str, port: u16) -> SvcKey {
    SvcKey::Addr {
        proto: Proto::Tcp,
        addr: ip(a),
        port,
    }
}

pub fn udp(a: &str, port: u16) -> SvcKey {
    SvcKey::Addr {
        proto: Proto::Udp,
        addr: ip(a),
        port,
    }
}

pub fn fwm(mark: u32) -> SvcKey {
    SvcKey::Fwmark { mark, v6: false }
}

pub fn spec(key: SvcKey, sched: &str) -> SvcSpec {
    SvcSpec {
        key,
        scheduler: sched.into(),
        persistent: None,
        netmask: match key {
            SvcKey::Addr { addr, .. } if addr.is_ipv6() => Netmask::V6(128),
            SvcKey::Fwmark { v6: true, .. } => Netmask::V6(128),
            _ => Netmask::V4("255.255.255.255".parse().unwrap()),
        },
        ops: false,
        pe: None,
        sched_flags: 0,
        synproxy: false,
    }
}

pub fn dspec(a: &str, port: u16, method: Method, weight: i32) -> DestSpec {
    DestSpec {
        addr: ip(a),
        port,
        method,
        weight,
        u_threshold: 0,
        l_threshold: 0,
        tun: None,
    }
}

pub fn dest(a: &str, port: u16, method: Method, weight: i32, act: u32, inact: u32) -> DestInfo {
    DestInfo {
        spec: dspec(a, port, method, weight),
        active: act,
        inactive: inact,
        persist: 0,
        stats: Stats::default(),
        rates: Rates::default(),
    }
}

pub fn svc(spec: SvcSpec, dests: Vec<DestInfo>) -> ServiceInfo {
    ServiceInfo {
        spec,
        stats: Stats::default(),
        rates: Rates::default(),
        dests,
    }
}

pub fn info() -> Info {
    Info {
        version: "1.2.1".into(),
        conn_tab_size: 4096,
        daemon_version: "0.1.0".into(),
    }
}

/// The reference's example table (§2.2 / §2.8), in kernel order.
pub fn reference_table() -> Vec<ServiceInfo> {
    let mut fw = spec(fwm(7), "sh");
    fw.persistent = Some(300);
    fw.netmask = Netmask::V4("255.255.255.0".parse().unwrap());
    fw.sched_flags = sched_flags::FLAG_1 | sched_flags::FLAG_2;
    let mut u = spec(udp("10.0.0.100", 53), "rr");
    u.persistent = Some(360);
    vec![
        svc(fw, vec![dest("10.0.2.21", 0, Method::Tun, 100, 3, 1)]),
        svc(u, vec![dest("10.0.1.11", 53, Method::Dr, 1, 0, 7)]),
        svc(
            spec(tcp("10.0.0.100", 80), "wlc"),
            // Newest first, as the kernel lists them.
            vec![
                dest("10.0.1.12", 80, Method::Nat, 2, 25, 81),
                dest("10.0.1.11", 80, Method::Nat, 1, 12, 40),
            ],
        ),
    ]
}

pub fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

pub fn parse(s: &str) -> Result<Invocation, Fail> {
    ripvsadm::parse("ipvsadm", &words(s), &names())
}

/// Health state of a quiescent web service whose servers are split (one
/// down, one up) and a removal-mode DNS service that fell back on its
/// sorry server.
pub fn reference_health() -> Vec<HealthService> {
    let d =
        |a: &str, port, checker: &str, up, weight, f, s, last: Option<Option<&str>>| HealthDest {
            addr: ip(a),
            port,
            checker: checker.into(),
            up,
            weight,
            failures: f,
            successes: s,
            last: last.map(|l| CheckResult {
                failure: l.map(String::from),
                at_ms: 1_795_300_000_000,
            }),
            since_ms: 1_795_292_465_000,
        };
    vec![
        HealthService {
            key: tcp("10.0.0.100", 80),
            quiescent: true,
            sorry: None,
            dests: vec![
                d("10.0.1.11", 80, "http", true, 1, 0, 12, Some(None)),
                d(
                    "10.0.1.12",
                    80,
                    "http",
                    false,
                    2,
                    3,
                    0,
                    Some(Some("http: status 503 (expected 200-299)")),
                ),
            ],
        },
        HealthService {
            key: udp("10.0.0.100", 53),
            quiescent: false,
            sorry: Some(SorryInfo {
                addr: ip("10.0.0.99"),
                port: 53,
                active: true,
            }),
            dests: vec![
                d(
                    "10.0.1.11",
                    53,
                    "udp",
                    false,
                    1,
                    4,
                    0,
                    Some(Some("timeout after 1 s waiting for a reply")),
                ),
                d("10.0.1.13", 53, "exec", false, 1, 0, 0, None),
            ],
        },
    ]
}

/// A running sync daemon with the kernel's defaults on `rip-p0`.
pub fn daemon_info(role: SyncRole) -> DaemonInfo {
    DaemonInfo {
        role,
        mcast_ifn: "rip-p0".into(),
        syncid: 0,
        maxlen: 1472,
        group: ip("224.0.0.81"),
        port: 8848,
        ttl: 1,
        stats: SyncStats::default(),
    }
}

/// Both daemons, backup first (the listing puts the master first).
pub fn reference_daemons() -> Vec<DaemonInfo> {
    let mut backup = daemon_info(SyncRole::Backup);
    backup.syncid = 9;
    backup.group = ip("239.1.1.1");
    backup.port = 8900;
    backup.stats = SyncStats {
        messages: 120,
        records: 3000,
        bytes: 96_000,
        installed: 2990,
        rejected: [("bad_syncid".to_string(), 10)].into_iter().collect(),
        ring_drops: vec![],
        send_errors: 0,
        full_sync: FullSync {
            complete: true,
            transfers: 1,
            records: 2500,
            duration_ms: 40,
        },
    };
    let mut master = daemon_info(SyncRole::Master);
    master.syncid = 3;
    master.ttl = 2;
    master.stats.ring_drops = vec![0, 4];
    vec![backup, master]
}

/// Two VRRP instances: a v3 master, and a v2 backup that has ignored
/// some adverts (reasons inserted out of order).
pub fn reference_vrrp() -> Vec<VrrpInfo> {
    let master = VrrpInfo {
        name: "VI_1".into(),
        port: "p0".into(),
        vrid: 51,
        version: 3,
        state: VrrpState::Master,
        priority: 150,
        advert_int_cs: 100,
        master_advert_int_cs: 100,
        preempt: true,
        master: Some("10.60.0.1".parse().unwrap()),
        master_priority: 150,
        addresses: vec!["10.60.0.100".parse().unwrap()],
        unicast_peers: vec![],
        since_ms: 61_000,
        stats: VrrpStats {
            adverts_sent: 1234,
            adverts_received: 5,
            transitions: 2,
            became_master: 1,
            gratuitous_arps: 5,
            ..VrrpStats::default()
        },
    };
    let backup = VrrpInfo {
        name: "VI_2".into(),
        port: "p1".into(),
        vrid: 52,
        version: 2,
        state: VrrpState::Backup,
        priority: 100,
        advert_int_cs: 100,
        master_advert_int_cs: 100,
        preempt: false,
        master: Some("10.61.0.4".parse().unwrap()),
        master_priority: 200,
        addresses: vec!["10.61.0.100".parse().unwrap()],
        unicast_peers: vec!["10.61.0.4".parse().unwrap()],
        since_ms: 817_000,
        stats: VrrpStats {
            adverts_received: 817,
            transitions: 1,
            rejected: [("unknown_vrid".to_string(), 1), ("bad_ttl".to_string(), 3)]
                .into_iter()
                .collect(),
            ..VrrpStats::default()
        },
    };
    vec![master, backup]
}

/// `ripvsadm --vrrp` of [`reference_vrrp`].
pub const REFERENCE_VRRP_TEXT: &str = "VRRP instances
Name             Port   VRID Ver State   Prio Master            Sent   Received Trans
VI_1             p0       51  v3 MASTER   150 10.60.0.1         1234          5     2
VI_2             p1       52  v2 BACKUP   100 10.61.0.4            0        817     1
  VI_2: ignored bad_ttl 3, unknown_vrid 1
";
