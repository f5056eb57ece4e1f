//! The two configurations shipped in conf/ parse into exactly what their
//! comments promise; plus the valid corners of the schema.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use conf::*;

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// A service with every optional key at its default.
fn svc(protocol: Protocol, vip: IpAddr, port: u16) -> Service {
    Service {
        protocol,
        vip,
        port,
        fwmark: None,
        scheduler: "wlc".into(),
        sched_flags: SchedFlags::default(),
        persistent: None,
        netmask: Ipv4Addr::BROADCAST,
        one_packet: false,
        quiescent: false,
        sorry_server: None,
        real_servers: vec![],
    }
}

#[test]
fn default_config() {
    let c = parse(DEFAULT_CONFIG, "ripvs.toml").unwrap();
    let expected = Config {
        eal: Eal {
            args: [
                "--no-huge",
                "--no-pci",
                "-m",
                "256",
                "--no-shconf",
                "--log-level=error",
            ]
            .map(String::from)
            .to_vec(),
            main_lcore: 0,
            worker_lcores: vec![1],
        },
        dataplane: Dataplane::default(),
        ports: vec![Port {
            name: "p0".into(),
            device: Device::Vdev {
                name: "net_tap0".into(),
                args: "iface=ripvs-p0".into(),
            },
            mtu: 1500,
            mac: None,
            addresses: vec![IfAddr {
                addr: v4(10, 10, 0, 1),
                prefix_len: 24,
            }],
            exception: Exception {
                enabled: true,
                iface: "rip-p0".into(),
                device: None,
            },
        }],
        routes: vec![],
        neighbours: vec![],
        services: vec![
            svc(Protocol::Tcp, v4(10, 10, 0, 100), 80),
            svc(Protocol::Udp, v4(10, 10, 0, 100), 53),
        ],
        fwmarks: vec![],
        ipvs: Ipvs::default(),
        defence: Defence::default(),
        sync: Sync::default(),
        vrrp: vec![],
    };
    assert_eq!(c, expected);
    assert_eq!(c.ports[0].device.to_string(), "net_tap0,iface=ripvs-p0");
    // The file on disk is the embedded one.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ripvs.toml");
    assert_eq!(load(&path).unwrap(), expected);
}

#[test]
fn default_config_route_example_is_valid_when_uncommented() {
    let uncommented = DEFAULT_CONFIG
        .replace("# [[routes]]", "[[routes]]")
        .replace("# prefix = ", "prefix = ")
        .replace("# via = ", "via = ")
        .replace("# port = ", "port = ");
    let c = parse(&uncommented, "ripvs.toml").unwrap();
    assert_eq!(
        c.routes,
        vec![Route {
            prefix: v4(10, 20, 0, 0),
            prefix_len: 16,
            via: Some(v4(10, 10, 0, 254)),
            port: "p0".into(),
        }]
    );
}

#[test]
fn production_example() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("production.example.toml");
    let c = load(&path).unwrap();
    assert_eq!(
        c.eal,
        Eal {
            args: ["-n", "4", "--file-prefix", "ripvs", "--log-level=notice"]
                .map(String::from)
                .to_vec(),
            main_lcore: 1,
            worker_lcores: vec![2, 3, 4, 5],
        }
    );
    assert!(!c.eal.args.iter().any(|a| a == "--no-huge"));
    assert_eq!(
        c.dataplane,
        Dataplane {
            mbufs_per_socket: 65535,
            mbuf_cache: 256,
            rx_descriptors: 1024,
            tx_descriptors: 1024,
            max_connections: 4_194_304,
        }
    );
    assert_eq!(
        c.ports,
        vec![
            Port {
                name: "client".into(),
                device: Device::Pci("0000:01:00.0".into()),
                mtu: 1500,
                mac: None,
                addresses: vec![IfAddr {
                    addr: v4(192, 0, 2, 10),
                    prefix_len: 24,
                }],
                exception: Exception {
                    enabled: true,
                    iface: "rip-client".into(),
                    device: None,
                },
            },
            Port {
                name: "server".into(),
                device: Device::Pci("0000:01:00.1".into()),
                mtu: 9000,
                mac: None,
                addresses: vec![IfAddr {
                    addr: v4(198, 51, 100, 1),
                    prefix_len: 24,
                }],
                exception: Exception {
                    enabled: true,
                    iface: "rip-server".into(),
                    device: None,
                },
            },
        ]
    );
    assert_eq!(
        c.routes,
        vec![Route {
            prefix: v4(0, 0, 0, 0),
            prefix_len: 0,
            via: Some(v4(192, 0, 2, 1)),
            port: "client".into(),
        }]
    );
    assert_eq!(
        c.neighbours,
        vec![Neighbour {
            addr: v4(192, 0, 2, 1),
            mac: [0x02, 0x00, 0x5e, 0x00, 0x02, 0x01],
            port: "client".into(),
        }]
    );
    let services: Vec<(Protocol, IpAddr, u16)> = c
        .services
        .iter()
        .map(|s| (s.protocol, s.vip, s.port))
        .collect();
    assert_eq!(
        services,
        vec![
            (Protocol::Tcp, v4(192, 0, 2, 100), 80),
            (Protocol::Tcp, v4(192, 0, 2, 100), 443),
            (Protocol::Udp, v4(192, 0, 2, 53), 53),
        ]
    );
}

#[test]
fn production_example_sync_section_is_valid_when_uncommented() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("production.example.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let c = parse(&text, "production.example.toml").unwrap();
    // Shown, but commented out: no daemon unless asked for.
    assert_eq!(c.ipvs, Ipvs::default());
    assert_eq!(c.sync, Sync::default());
    let uncommented = uncomment(&text, "[sync]");
    let c = parse(&uncommented, "production.example.toml").unwrap();
    assert_eq!(
        c.sync,
        Sync {
            interface: Some("eno1".into()),
            maxlen: Some(1472),
            ..Sync::default()
        }
    );
    // And it is a real backup or master configuration once a role is set.
    let backup = parse(
        &uncommented.replace("state = \"none\"", "state = \"backup\""),
        "production.example.toml",
    )
    .unwrap();
    assert!(backup.sync.backup && !backup.sync.master);
}

/// `text` with the commented-out block that starts `# HEADER` uncommented:
/// its lines up to the next line that is not `# ...`.
fn uncomment(text: &str, header: &str) -> String {
    let start = text
        .find(&format!("\n# {header}\n"))
        .unwrap_or_else(|| panic!("a commented {header}"))
        + 1;
    let len = text[start..]
        .split_inclusive('\n')
        .take_while(|l| l.starts_with("# "))
        .map(str::len)
        .sum::<usize>();
    let block: String = text[start..start + len]
        .split_inclusive('\n')
        .map(|l| &l[2..])
        .collect();
    format!("{}{block}{}", &text[..start], &text[start + len..])
}

#[test]
fn production_example_vrrp_section_is_valid_when_uncommented() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("production.example.toml");
    let text = std::fs::read_to_string(path).unwrap();
    // Shown, but commented out: no failover unless asked for.
    assert_eq!(
        parse(&text, "production.example.toml").unwrap().vrrp,
        vec![]
    );
    let uncommented = uncomment(&text, "[[vrrp]]");
    let c = parse(&uncommented, "production.example.toml").unwrap();
    let vi = Vrrp {
        name: "VI_client".into(),
        port: "client".into(),
        vrid: 51,
        priority: 150,
        version: 3,
        advert_int_cs: 10,
        preempt: true,
        preempt_delay_s: 0,
        initial: VrrpInitial::Backup,
        addresses: vec![Ipv4Addr::new(192, 0, 2, 100), Ipv4Addr::new(192, 0, 2, 53)],
        unicast_peers: vec![Ipv4Addr::new(192, 0, 2, 11)],
        auth_pass: None,
        garp_master_delay_s: 5,
        garp_master_repeat: 5,
        garp_master_refresh_s: 0,
        garp_master_refresh_repeat: 1,
        notify_master: None,
        notify_backup: None,
        notify_fault: None,
        notify: Some("/etc/ripvs/vrrp-notify".into()),
        sync_daemon: false,
        use_vmac: false,
    };
    assert_eq!(c.vrrp, vec![vi.clone()]);
    // With the [sync] block too, the instance can drive the sync roles
    // once [sync] state is left out, as the comment says.
    let both = uncomment(&uncomment(&text, "[sync]"), "[[vrrp]]")
        .replace("state = \"none\"\n", "")
        .replace("sync_daemon = false", "sync_daemon = true");
    let c = parse(&both, "production.example.toml").unwrap();
    assert_eq!(
        c.vrrp,
        vec![Vrrp {
            sync_daemon: true,
            ..vi
        }]
    );
    assert_eq!(c.sync.interface.as_deref(), Some("eno1"));
    assert!(!c.sync.master && !c.sync.backup);
    // And [sync] state is refused next to it.
    let e = parse(
        &both.replace("[sync]\ninterface", "[sync]\nstate = \"backup\"\ninterface"),
        "production.example.toml",
    )
    .unwrap_err();
    assert_eq!(e.key, "vrrp[0].sync_daemon");
}

const P0: &str = "[[ports]]\nname = \"p0\"\ndevice = \"net_tap0\"\naddresses = [\"10.0.0.1/24\"]\n";

#[test]
fn minimal_config_takes_every_default() {
    let c = parse(
        "[[ports]]\nname = \"p0\"\ndevice = \"net_null0\"\n",
        "m.toml",
    )
    .unwrap();
    assert_eq!(c.eal, Eal::default());
    assert_eq!(
        c.eal,
        Eal {
            args: vec![],
            main_lcore: 0,
            worker_lcores: vec![1],
        }
    );
    assert_eq!(
        c.dataplane,
        Dataplane {
            mbufs_per_socket: 16383,
            mbuf_cache: 256,
            rx_descriptors: 1024,
            tx_descriptors: 1024,
            max_connections: 1_048_576,
        }
    );
    let p = &c.ports[0];
    assert_eq!(p.mtu, 1500);
    assert_eq!(p.mac, None);
    assert!(p.addresses.is_empty());
    assert_eq!(
        p.exception,
        Exception {
            enabled: true,
            iface: "rip-p0".into(),
            device: None,
        }
    );
    assert_eq!(
        p.device,
        Device::Vdev {
            name: "net_null0".into(),
            args: String::new(),
        }
    );
    assert!(c.routes.is_empty() && c.neighbours.is_empty() && c.services.is_empty());
}

#[test]
fn port_is_inferred_from_via_and_address() {
    let text = format!(
        "{P0}[[ports]]\nname = \"p1\"\ndevice = \"net_tap1\"\naddresses = [\"192.168.5.1/24\"]\n\
         [[routes]]\nprefix = \"172.16.0.0/12\"\nvia = \"192.168.5.254\"\n\
         [[routes]]\nprefix = \"10.9.0.0/16\"\nport = \"p0\"\n\
         [[neighbours]]\naddress = \"10.0.0.254\"\nmac = \"02:00:00:00:00:fe\"\n"
    );
    let c = parse(&text, "t.toml").unwrap();
    assert_eq!(c.routes[0].port, "p1");
    assert_eq!(c.routes[0].via, Some(v4(192, 168, 5, 254)));
    assert_eq!(
        c.routes[1],
        Route {
            prefix: v4(10, 9, 0, 0),
            prefix_len: 16,
            via: None,
            port: "p0".into(),
        }
    );
    assert_eq!(
        c.neighbours,
        vec![Neighbour {
            addr: v4(10, 0, 0, 254),
            mac: [2, 0, 0, 0, 0, 0xfe],
            port: "p0".into(),
        }]
    );
}

#[test]
fn valid_corners() {
    let text = format!(
        "{P0}mac = \"02:AA:bb:00:00:01\"\nmtu = 9000\n\
         [ports.exception]\nenabled = false\niface = \"x0\"\ndevice = \"net_pcap9,rx_pcap=a.pcap,tx_pcap=b.pcap\"\n\
         [[services]]\nprotocol = \"sctp\"\nvip = \"10.0.0.1\"\nport = 0\npersistent = 300\n\
         [[services]]\nprotocol = \"tcp\"\nvip = \"10.0.0.1\"\nport = 0\npersistent = 300\n"
    );
    let c = parse(&text, "t.toml").unwrap();
    let p = &c.ports[0];
    assert_eq!(p.mac, Some([0x02, 0xaa, 0xbb, 0, 0, 1]));
    assert_eq!(p.mtu, 9000);
    assert_eq!(
        p.exception,
        Exception {
            enabled: false,
            iface: "x0".into(),
            device: Some("net_pcap9,rx_pcap=a.pcap,tx_pcap=b.pcap".into()),
        }
    );
    // A VIP may be an interface address; port 0 means every port.
    assert_eq!(
        c.services[0],
        Service {
            persistent: Some(300),
            ..svc(Protocol::Sctp, v4(10, 0, 0, 1), 0)
        }
    );
    assert_eq!(c.services.len(), 2);
    assert!(p.is_connected(v4(10, 0, 0, 200)));
    assert!(!p.is_connected(v4(10, 0, 1, 1)));
    assert_eq!(p.addresses[0].network(), v4(10, 0, 0, 0));
    assert_eq!(p.addresses[0].to_string(), "10.0.0.1/24");
    assert_eq!(
        Device::Pci("0000:01:00.0".into()).to_string(),
        "0000:01:00.0"
    );
    assert_eq!(c.port("p0").map(|p| p.mtu), Some(9000));
    assert_eq!(Protocol::Sctp.to_string(), "sctp");
}

#[test]
fn inline_tables_work_like_headers() {
    let text =
        "ports = [{ name = \"p0\", device = \"0000:3b:00.1\", exception = { iface = \"k0\" } }]\n\
                eal = { main_lcore = 2, worker_lcores = [0, 1] }\n";
    let c = parse(text, "t.toml").unwrap();
    assert_eq!(c.ports[0].device, Device::Pci("0000:3b:00.1".into()));
    assert_eq!(c.ports[0].exception.iface, "k0");
    assert_eq!(c.eal.worker_lcores, vec![0, 1]);
}

/// The pair's two configs parse, and once each director's own interface
/// addresses and its priority are set aside, they are the same config:
/// what README.md promises an operator who runs a pair.
#[test]
fn pair_configs_differ_only_in_own_addresses_and_priority() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/");
    let a = load(std::path::Path::new(&format!("{dir}pair-a.toml"))).unwrap();
    let b = load(std::path::Path::new(&format!("{dir}pair-b.toml"))).unwrap();
    assert_eq!((a.vrrp[0].priority, b.vrrp[0].priority), (150, 100));
    assert!(a.vrrp[0].sync_daemon);
    assert_ne!(a.ports, b.ports);
    let strip = |mut c: Config| {
        for p in &mut c.ports {
            p.addresses.clear();
        }
        for v in &mut c.vrrp {
            v.priority = 0;
        }
        c
    };
    assert_eq!(strip(a), strip(b));
}
