//! Services, real servers, fwmarks and `[ipvs]`: what parses, and the exact
//! error for each way to get them wrong.

use conf::*;
use std::net::{IpAddr, Ipv4Addr};

const P0: &str =
    "[[ports]]\nname = \"p0\"\ndevice = \"net_ring0\"\naddresses = [\"10.0.0.1/24\"]\n";

fn err(text: &str) -> String {
    match parse(&format!("{P0}{text}"), "t.toml") {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn a_full_service_parses() {
    let text = r#"
[[services]]
protocol = "tcp"
vip = "10.0.0.100"
port = 443
scheduler = "sh"
sched_flags = ["sh-fallback", "sh-port"]
persistent = 360
netmask = "255.255.255.0"

[[services.real_servers]]
address = "10.1.0.11"
weight = 3

[[services.real_servers]]
address = "10.1.0.12"
port = 8443
method = "nat"
weight = 0
upper_threshold = 100
lower_threshold = 50

[[services.real_servers]]
address = "10.1.0.13"
method = "tun"
"#;
    let c = parse(&format!("{P0}{text}"), "t.toml").unwrap();
    let s = &c.services[0];
    assert_eq!(s.label(), "tcp 10.0.0.100:443");
    assert_eq!(s.scheduler, "sh");
    assert_eq!(
        s.sched_flags,
        SchedFlags {
            sh_fallback: true,
            sh_port: true,
            ..Default::default()
        }
    );
    assert_eq!(s.persistent, Some(360));
    assert_eq!(s.netmask, Ipv4Addr::new(255, 255, 255, 0));
    assert_eq!(
        s.real_servers,
        vec![
            RealServer {
                addr: ip("10.1.0.11"),
                port: 443,
                method: Method::Dr,
                weight: 3,
                upper_threshold: 0,
                lower_threshold: 0,
                health: None
            },
            RealServer {
                addr: ip("10.1.0.12"),
                port: 8443,
                method: Method::Nat,
                weight: 0,
                upper_threshold: 100,
                lower_threshold: 50,
                health: None
            },
            RealServer {
                addr: ip("10.1.0.13"),
                port: 443,
                method: Method::Tun,
                weight: 1,
                upper_threshold: 0,
                lower_threshold: 0,
                health: None
            },
        ]
    );
    assert_eq!(c.ipvs, Ipvs::default());
}

#[test]
fn fwmark_services_and_ipvs_settings() {
    let text = r#"
[[fwmarks]]
mark = 7
[[fwmarks.match]]
protocol = "tcp"
destination = "10.0.0.0/28"
ports = "80-81"
[[fwmarks.match]]
destination = "10.0.0.200/32"

[[services]]
fwmark = 7
scheduler = "rr"
persistent = 60
one_packet = true

[ipvs]
expire_nodest_conn = true
conn_reuse_mode = 2
timeout_tcp = 3600
drop_entry = 1
drop_packet = 3
secure_tcp = 2
am_droprate = 20

[defence]
table_threshold = 0.75
"#;
    let c = parse(&format!("{P0}{text}"), "t.toml").unwrap();
    assert_eq!(
        c.fwmarks,
        vec![Fwmark {
            mark: 7,
            rules: vec![
                MarkRule {
                    protocol: Some(Protocol::Tcp),
                    dest: ip("10.0.0.0"),
                    dest_len: 28,
                    ports: (80, 81)
                },
                MarkRule {
                    protocol: None,
                    dest: ip("10.0.0.200"),
                    dest_len: 32,
                    ports: (0, 65535)
                },
            ]
        }]
    );
    let s = &c.services[0];
    assert_eq!(
        (s.fwmark, s.port, s.label()),
        (Some(7), 0, "fwmark 7".to_string())
    );
    assert!(s.one_packet);
    assert_eq!(
        c.ipvs,
        Ipvs {
            expire_nodest_conn: true,
            conn_reuse_mode: 2,
            timeout_tcp: 3600,
            drop_entry: 1,
            drop_packet: 3,
            secure_tcp: 2,
            am_droprate: 20,
            ..Ipvs::default()
        }
    );
    assert_eq!(
        c.defence,
        Defence {
            table_threshold: 0.75
        }
    );
}

#[test]
fn service_errors() {
    let svc = "[[services]]\nprotocol = \"tcp\"\nvip = \"10.0.0.100\"\nport = 80\n";
    assert_eq!(
        err(&format!("{svc}scheduler = \"fastest\"\n")),
        "t.toml:9:13: key `services[0].scheduler`: unknown scheduler \"fastest\" (expected one of rr, wrr, lc, wlc, sed, nq, lblc, lblcr, dh, sh, mh, fo, ovf, twos)"
    );
    assert_eq!(
        err(&format!("{svc}scheduler = \"rr\"\nsched_flags = [\"sh-port\"]\n")),
        "t.toml:10:16: key `services[0].sched_flags[0]`: incompatible scheduler flag \"sh-port\": it is for the sh scheduler"
    );
    assert_eq!(
        err(&format!("{svc}sched_flags = [\"flag-9\"]\n")),
        "t.toml:9:16: key `services[0].sched_flags[0]`: invalid scheduler flag \"flag-9\" (expected sh-fallback, sh-port, mh-fallback or mh-port)"
    );
    assert_eq!(
        err("[[services]]\nprotocol = \"tcp\"\nvip = \"10.0.0.100\"\nport = 0\n"),
        "t.toml:8:8: key `services[0].port`: port 0 (all ports) is only allowed for persistent services, as in IPVS"
    );
    assert_eq!(
        err(&format!("{svc}one_packet = true\n")),
        "t.toml:9:14: key `services[0].one_packet`: one-packet scheduling is only for UDP and fwmark services"
    );
    assert_eq!(
        err(&format!("{svc}persistent = 0\n")),
        "t.toml:9:14: key `services[0].persistent`: 0 is out of range (expected 1..=2678400)"
    );
    assert_eq!(
        err(&format!("{svc}netmask = \"255.0.255.0\"\n")),
        "t.toml:9:11: key `services[0].netmask`: invalid netmask \"255.0.255.0\" (expected a contiguous mask like 255.255.255.0)"
    );
    assert_eq!(
        err("[[services]]\nprotocol = \"tcp\"\nport = 80\n"),
        "t.toml:5:1: key `services[0].vip`: missing required key"
    );
}

#[test]
fn real_server_errors() {
    let svc = "[[services]]\nprotocol = \"tcp\"\nvip = \"10.0.0.100\"\nport = 80\n[[services.real_servers]]\n";
    assert_eq!(
        err(&format!("{svc}address = \"10.1.0.1\"\nmethod = \"fullnat\"\n")),
        "t.toml:11:10: key `services[0].real_servers[0].method`: invalid method \"fullnat\" (expected \"dr\", \"tun\" or \"nat\")"
    );
    assert_eq!(
        err(&format!("{svc}address = \"10.1.0.1\"\nport = 8080\n")),
        "t.toml:11:8: key `services[0].real_servers[0].port`: a dr real server cannot change the port: it must be the service port 80 (or be left out)"
    );
    assert_eq!(
        err(&format!("{svc}address = \"10.1.0.1\"\nweight = 65536\n")),
        "t.toml:11:10: key `services[0].real_servers[0].weight`: 65536 is out of range (expected 0..=65535)"
    );
    assert_eq!(
        err(&format!("{svc}address = \"10.1.0.1\"\nlower_threshold = 5\n")),
        "t.toml:11:19: key `services[0].real_servers[0].lower_threshold`: lower_threshold 5 is above upper_threshold 0"
    );
    assert_eq!(
        err(&format!("{svc}address = \"10.1.0.1\"\n[[services.real_servers]]\naddress = \"10.1.0.1\"\n")),
        "t.toml:12:11: key `services[0].real_servers[1].address`: duplicate real server 10.1.0.1:80 (also real_servers[0])"
    );
    assert_eq!(
        err(&format!("{svc}address = \"10.1.0.300\"\n")),
        "t.toml:10:11: key `services[0].real_servers[0].address`: invalid IPv4 address \"10.1.0.300\""
    );
}

#[test]
fn fwmark_errors() {
    let mark = "[[fwmarks]]\nmark = 3\n[[fwmarks.match]]\ndestination = \"10.0.0.0/24\"\n";
    assert_eq!(
        err("[[services]]\nfwmark = 3\n"),
        "t.toml:6:10: key `services[0].fwmark`: no [[fwmarks]] defines mark 3"
    );
    assert_eq!(
        err(&format!("{mark}[[services]]\nfwmark = 3\nvip = \"10.0.0.1\"\n")),
        "t.toml:10:10: key `services[0].fwmark`: a fwmark service has no `vip`: its packets are chosen by the mark's rules"
    );
    assert_eq!(
        err("[[fwmarks]]\nmark = 3\n"),
        "t.toml:6:8: key `fwmarks[0].match`: mark 3 has no [[fwmarks.match]] rule, so no packet could carry it"
    );
    assert_eq!(
        err(&format!("{mark}ports = \"90-80\"\n")),
        "t.toml:9:9: key `fwmarks[0].match[0].ports`: invalid port range \"90-80\" (expected PORT or LOW-HIGH)"
    );
    assert_eq!(
        err(&format!(
            "{mark}[[fwmarks]]\nmark = 3\n[[fwmarks.match]]\ndestination = \"10.0.1.0/24\"\n"
        )),
        "t.toml:10:8: key `fwmarks[1].mark`: duplicate mark 3 (also fwmarks[0])"
    );
    assert_eq!(
        err(&format!(
            "{mark}[[services]]\nfwmark = 3\n[[services]]\nfwmark = 3\n"
        )),
        "t.toml:12:10: key `services[1].fwmark`: duplicate service fwmark 3 (also services[0])"
    );
    assert_eq!(
        err("[ipvs]\nconn_reuse_mode = 4\n"),
        "t.toml:6:19: key `ipvs.conn_reuse_mode`: 4 is out of range (expected 0..=3)"
    );
    assert_eq!(
        err("[ipvs]\nsecure_tcp = 4\n"),
        "t.toml:6:14: key `ipvs.secure_tcp`: 4 is out of range (expected 0..=3)"
    );
    assert_eq!(
        err("[ipvs]\ndrop_packet = -1\n"),
        "t.toml:6:15: key `ipvs.drop_packet`: -1 is out of range (expected 0..=3)"
    );
    assert_eq!(
        err("[ipvs]\nam_droprate = 0\n"),
        "t.toml:6:15: key `ipvs.am_droprate`: 0 is out of range (expected 1..=2147483647)"
    );
    assert_eq!(
        err("[defence]\ntable_threshold = 1.5\n"),
        "t.toml:6:19: key `defence.table_threshold`: 1.5 is out of range (expected a fraction, 0.0..=1.0)"
    );
    assert_eq!(
        err("[defence]\nthreshold = 0.5\n"),
        "t.toml:6:1: key `defence.threshold`: unknown key `threshold`, expected `table_threshold`"
    );
}
