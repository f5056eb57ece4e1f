//! Every kind of configuration error, asserted as the exact one-line text
//! an operator sees: `FILE:LINE:COL: key `KEY`: MESSAGE`.

use conf::{parse, ConfigError};

/// A valid port section, four lines long, that most cases build on.
const P0: &str = r#"[[ports]]
name = "p0"
device = "net_tap0"
addresses = ["10.0.0.1/24"]
"#;

fn err(text: &str) -> String {
    match parse(text, "t.toml") {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

fn with_p0(rest: &str) -> String {
    format!("{P0}{rest}")
}

#[test]
fn error_fields_match_display() {
    let e: ConfigError = parse(&with_p0("mtu = 67\n"), "dir/x.toml").unwrap_err();
    assert_eq!(
        e,
        ConfigError {
            file: "dir/x.toml".into(),
            line: 5,
            column: 7,
            key: "ports[0].mtu".into(),
            message: "67 is out of range (expected 68..=9000)".into(),
        }
    );
    let boxed: Box<dyn std::error::Error> = Box::new(e);
    assert_eq!(
        boxed.to_string(),
        "dir/x.toml:5:7: key `ports[0].mtu`: 67 is out of range (expected 68..=9000)"
    );
}

// ------------------------------------------------------- unknown keys

#[test]
fn unknown_key_top_level() {
    assert_eq!(
        err(&format!("bogus = 1\n{P0}")),
        "t.toml:1:1: key `bogus`: unknown key `bogus`, expected one of `eal`, `dataplane`, `ports`, `routes`, `neighbours`, `services`, `fwmarks`, `ipvs`, `defence`, `sync`, `vrrp`"
    );
    assert_eq!(
        err(&format!("{P0}[eals]\n")),
        "t.toml:5:2: key `eals`: unknown key `eals`, expected one of `eal`, `dataplane`, `ports`, `routes`, `neighbours`, `services`, `fwmarks`, `ipvs`, `defence`, `sync`, `vrrp`"
    );
}

#[test]
fn unknown_key_nested() {
    assert_eq!(
        err(&with_p0("foo = 1\n")),
        "t.toml:5:1: key `ports[0].foo`: unknown key `foo`, expected one of `name`, `device`, `mtu`, `mac`, `addresses`, `exception`"
    );
    assert_eq!(
        err(&with_p0("[ports.exception]\nifac = \"x\"\n")),
        "t.toml:6:1: key `ports[0].exception.ifac`: unknown key `ifac`, expected one of `enabled`, `iface`, `device`"
    );
    assert_eq!(
        err(&with_p0("exception = { ifac = \"x\" }\n")),
        "t.toml:5:15: key `ports[0].exception.ifac`: unknown key `ifac`, expected one of `enabled`, `iface`, `device`"
    );
    assert_eq!(
        err(&format!("[eal]\nmain_lcore = 0\nworkers = [1]\n{P0}")),
        "t.toml:3:1: key `eal.workers`: unknown key `workers`, expected one of `args`, `main_lcore`, `worker_lcores`"
    );
    assert_eq!(
        err(&with_p0("[[services]]\nprotocol = \"tcp\"\nvip = \"10.0.0.9\"\nport = 1\ncolour = \"rr\"\n")),
        "t.toml:9:1: key `services[0].colour`: unknown key `colour`, expected one of `protocol`, `vip`, `port`, `fwmark`, `scheduler`, `sched_flags`, `persistent`, `netmask`, `one_packet`, `quiescent`, `sorry_server`, `health`, `real_servers`"
    );
}

// ---------------------------------------------- missing keys and types

#[test]
fn missing_port_section() {
    assert_eq!(
        err("[eal]\nmain_lcore = 0\n"),
        "t.toml:1:1: key `ports`: at least one [[ports]] is required"
    );
    assert_eq!(
        err(""),
        "t.toml:1:1: key `ports`: at least one [[ports]] is required"
    );
    assert_eq!(
        err("# nothing\nports = []\n"),
        "t.toml:2:9: key `ports`: at least one [[ports]] is required"
    );
}

#[test]
fn missing_required_key_points_at_table() {
    assert_eq!(
        err(&with_p0("[[ports]]\nname = \"p1\"\n")),
        "t.toml:5:1: key `ports[1].device`: missing required key"
    );
    assert_eq!(
        err("ports = [{ name = \"p0\" }]\n"),
        "t.toml:1:10: key `ports[0].device`: missing required key"
    );
    assert_eq!(
        err(&with_p0("\n[[services]]\nprotocol = \"tcp\"\nport = 80\n")),
        "t.toml:6:1: key `services[0].vip`: missing required key"
    );
    assert_eq!(
        err(&with_p0("[[routes]]\nprefix = \"10.1.0.0/16\"\n")),
        "t.toml:5:1: key `routes[0].port`: missing required key (a route needs `port`, `via` or both)"
    );
}

#[test]
fn type_errors() {
    assert_eq!(
        err(&with_p0("mtu = \"big\"\n")),
        "t.toml:5:7: key `ports[0].mtu`: invalid type: string \"big\", expected an integer"
    );
    assert_eq!(
        err(&with_p0("mtu = 1.5\n")),
        "t.toml:5:7: key `ports[0].mtu`: invalid type: float `1.5`, expected an integer"
    );
    assert_eq!(
        err(&with_p0("[ports.exception]\nenabled = \"no\"\n")),
        "t.toml:6:11: key `ports[0].exception.enabled`: invalid type: string \"no\", expected a boolean"
    );
    assert_eq!(
        err(&with_p0("[eal]\nargs = [\"a\",\n  1]\n")),
        "t.toml:7:3: key `eal.args[1]`: invalid type: integer `1`, expected a string"
    );
    assert_eq!(
        err(&with_p0("[eal]\nargs = \"--no-huge\"\n")),
        "t.toml:6:8: key `eal.args`: invalid type: string \"--no-huge\", expected an array"
    );
    assert_eq!(
        err(&format!("eal = [1]\n{P0}")),
        "t.toml:1:7: key `eal`: invalid type: array, expected a table"
    );
    assert_eq!(
        err(&format!("[[eal]]\n{P0}")),
        "t.toml:1:1: key `eal`: invalid type: array, expected a table"
    );
    assert_eq!(
        err("[ports]\nname = \"p0\"\n"),
        "t.toml:1:1: key `ports`: invalid type: table, expected an array"
    );
    assert_eq!(
        err(&with_p0("name2 = 1\n").replace("\"net_tap0\"", "1979-05-27")),
        "t.toml:3:10: key `ports[0].device`: invalid type: datetime, expected a string"
    );
}

#[test]
fn syntax_errors_keep_a_key_when_they_can() {
    assert_eq!(
        err(&with_p0("[[ports]]\nname = \"p1\n")),
        "t.toml:6:11: key `ports[1].name`: invalid basic string"
    );
    assert_eq!(
        err("[eal]\nmain_lcore = 1\nmain_lcore = 2\n"),
        "t.toml:3:1: key `eal.main_lcore`: duplicate key `main_lcore` in table `eal`"
    );
    assert_eq!(err("\n\n junk\n"), "t.toml:3:6: expected `.`, `=`");
    // Always one line, even where toml's message has several.
    let two = err(&with_p0("[eal]\n[eal]\n"));
    assert!(!two.contains('\n'), "{two}");
    assert!(two.starts_with("t.toml:6:"), "{two}");
}

// ------------------------------------------------------------- [eal]

#[test]
fn bad_lcore_sets() {
    assert_eq!(
        err(&format!("[eal]\nworker_lcores = []\n{P0}")),
        "t.toml:2:17: key `eal.worker_lcores`: at least one worker lcore is required"
    );
    assert_eq!(
        err(&format!("[eal]\nworker_lcores = [1, 2, 1]\n{P0}")),
        "t.toml:2:24: key `eal.worker_lcores[2]`: duplicate worker lcore 1 (also eal.worker_lcores[0])"
    );
    assert_eq!(
        err(&format!("[eal]\nworker_lcores = [0]\n{P0}")),
        "t.toml:2:18: key `eal.worker_lcores[0]`: lcore 0 is the main lcore (eal.main_lcore); workers need other lcores"
    );
    assert_eq!(
        err(&format!("[eal]\nmain_lcore = 3\nworker_lcores = [1, 3]\n{P0}")),
        "t.toml:3:21: key `eal.worker_lcores[1]`: lcore 3 is the main lcore (eal.main_lcore); workers need other lcores"
    );
    assert_eq!(
        err(&format!("[eal]\nworker_lcores = [1, 128]\n{P0}")),
        "t.toml:2:21: key `eal.worker_lcores[1]`: 128 is out of range (expected 0..=127)"
    );
    assert_eq!(
        err(&format!("[eal]\nworker_lcores = [-1]\n{P0}")),
        "t.toml:2:18: key `eal.worker_lcores[0]`: -1 is out of range (expected 0..=127)"
    );
    assert_eq!(
        err(&format!("[eal]\nmain_lcore = 1024\n{P0}")),
        "t.toml:2:14: key `eal.main_lcore`: 1024 is out of range (expected 0..=127)"
    );
    // The default worker set [1] collides with main_lcore = 1.
    assert_eq!(
        err(&format!("[eal]\nmain_lcore = 1\nworker_lcores = [1]\n{P0}")),
        "t.toml:3:18: key `eal.worker_lcores[0]`: lcore 1 is the main lcore (eal.main_lcore); workers need other lcores"
    );
}

#[test]
fn lcore_options_in_args_are_refused() {
    assert_eq!(
        err(&format!("[eal]\nargs = [\"--no-huge\", \"-l\", \"1-3\"]\n{P0}")),
        "t.toml:2:22: key `eal.args[1]`: \"-l\" sets lcores; use eal.main_lcore and eal.worker_lcores instead"
    );
    assert_eq!(
        err(&format!("[eal]\nargs = [\"--lcores=1-3\"]\n{P0}")),
        "t.toml:2:9: key `eal.args[0]`: \"--lcores=1-3\" sets lcores; use eal.main_lcore and eal.worker_lcores instead"
    );
}

// ------------------------------------------------------- [dataplane]

#[test]
fn dataplane_ranges() {
    assert_eq!(
        err(&with_p0("[dataplane]\nmbuf_cache = 513\n")),
        "t.toml:6:14: key `dataplane.mbuf_cache`: 513 is out of range (expected 0..=512)"
    );
    assert_eq!(
        err(&with_p0("[dataplane]\nmax_connections = 0\n")),
        "t.toml:6:19: key `dataplane.max_connections`: 0 is out of range (expected 1..=1073741824)"
    );
    assert_eq!(
        err(&with_p0("[dataplane]\nmbuf_cache = 513\n")),
        "t.toml:6:14: key `dataplane.mbuf_cache`: 513 is out of range (expected 0..=512)"
    );
    assert_eq!(
        err(&with_p0("[dataplane]\nrx_descriptors = 1000\n")),
        "t.toml:6:18: key `dataplane.rx_descriptors`: 1000 is out of range (expected a power of two in 64..=32768)"
    );
    assert_eq!(
        err(&with_p0("[dataplane]\ntx_descriptors = 65536\n")),
        "t.toml:6:18: key `dataplane.tx_descriptors`: 65536 is out of range (expected a power of two in 64..=32768)"
    );
    assert_eq!(
        err(&with_p0("[dataplane]\nmbufs_per_socket = 100\n")),
        "t.toml:6:20: key `dataplane.mbufs_per_socket`: 100 is out of range (expected 1023..=4294967295)"
    );
    assert_eq!(
        err(&with_p0("[dataplane]\nmax_connections = 0\n")),
        "t.toml:6:19: key `dataplane.max_connections`: 0 is out of range (expected 1..=1073741824)"
    );
}

// ------------------------------------------------------------ ports

#[test]
fn bad_address() {
    assert_eq!(
        err("[[ports]]\nname = \"p0\"\ndevice = \"net_tap0\"\naddresses = [\"10.0.0.1/24\", \"10.0.0.300/24\"]\n"),
        "t.toml:4:29: key `ports[0].addresses[1]`: invalid IPv4 prefix \"10.0.0.300/24\" (expected ADDRESS/LEN)"
    );
    let one = |a: &str| err(&P0.replace("10.0.0.1/24", a));
    assert_eq!(
        one("10.0.0.1"),
        "t.toml:4:14: key `ports[0].addresses[0]`: invalid IPv4 prefix \"10.0.0.1\" (expected ADDRESS/LEN)"
    );
    assert_eq!(
        one("10.0.0.1/33"),
        "t.toml:4:14: key `ports[0].addresses[0]`: prefix length 33 is out of range (expected 0..=32)"
    );
    assert_eq!(
        one("10.0.0.0/24"),
        "t.toml:4:14: key `ports[0].addresses[0]`: address 10.0.0.0 is the network address of 10.0.0.0/24"
    );
    assert_eq!(
        one("10.0.0.255/24"),
        "t.toml:4:14: key `ports[0].addresses[0]`: address 10.0.0.255 is the broadcast address of 10.0.0.0/24"
    );
    assert_eq!(
        one("0.0.0.0/8"),
        "t.toml:4:14: key `ports[0].addresses[0]`: address 0.0.0.0 is unspecified"
    );
    assert_eq!(
        one("224.0.0.5/24"),
        "t.toml:4:14: key `ports[0].addresses[0]`: address 224.0.0.5 is multicast"
    );
    assert_eq!(
        one("fd00::1/64"),
        "t.toml:4:14: key `ports[0].addresses[0]`: IPv6 is not supported yet"
    );
}

#[test]
fn address_on_two_ports() {
    assert_eq!(
        err(&with_p0("[[ports]]\nname = \"p1\"\ndevice = \"net_tap1\"\naddresses = [\"10.0.0.1/16\"]\n")),
        "t.toml:8:14: key `ports[1].addresses[0]`: address 10.0.0.1 is already configured on port `p0` (ports[0].addresses[0])"
    );
    assert_eq!(
        err(&P0.replace("\"10.0.0.1/24\"", "\"10.0.0.1/24\", \"10.0.0.1/25\"")),
        "t.toml:4:29: key `ports[0].addresses[1]`: address 10.0.0.1 is already configured on port `p0` (ports[0].addresses[0])"
    );
}

#[test]
fn bad_pci_address() {
    let dev = |d: &str| err(&format!("[[ports]]\nname = \"p0\"\ndevice = \"{d}\"\n"));
    let msg = |d: &str| {
        format!(
            "t.toml:3:10: key `ports[0].device`: invalid device \"{d}\" (expected a PCI address DDDD:BB:DD.F or a virtual device \"net_<driver><n>[,args]\")"
        )
    };
    for bad in [
        "0000:01:00",
        "0000:01:00.8",
        "0000:01:20.0",
        "00000:01:00.0",
        "0000:g1:00.0",
        "eth0",
        "",
    ] {
        assert_eq!(dev(bad), msg(bad));
    }
    assert_eq!(
        dev("net_"),
        "t.toml:3:10: key `ports[0].device`: invalid virtual device name \"net_\" (expected \"net_\" then letters, digits or _)"
    );
}

#[test]
fn duplicate_ports_devices_and_ifaces() {
    assert_eq!(
        err(&with_p0(
            "[[ports]]\nname = \"p0\"\ndevice = \"net_tap1\"\n"
        )),
        "t.toml:6:8: key `ports[1].name`: port name `p0` is already used by ports[0]"
    );
    assert_eq!(
        err(&with_p0(
            "[[ports]]\nname = \"p1\"\ndevice = \"net_tap0,iface=other\"\n"
        )),
        "t.toml:7:10: key `ports[1].device`: device net_tap0 is already used by ports[0].device"
    );
    assert_eq!(
        err("[[ports]]\nname = \"a\"\ndevice = \"0000:01:00.0\"\n[[ports]]\nname = \"b\"\ndevice = \"01:00.0\"\n"),
        "t.toml:6:10: key `ports[1].device`: device 0000:01:00.0 is already used by ports[0].device"
    );
    assert_eq!(
        err(&with_p0("[ports.exception]\ndevice = \"net_tap0,iface=x\"\n")),
        "t.toml:6:10: key `ports[0].exception.device`: device net_tap0 is already used by ports[0].device"
    );
    assert_eq!(
        err(&with_p0("[[ports]]\nname = \"p1\"\ndevice = \"net_tap1\"\n[ports.exception]\niface = \"rip-p0\"\n")),
        "t.toml:9:9: key `ports[1].exception.iface`: interface name `rip-p0` is already used by ports[0].exception.iface"
    );
    // The kernel side of a tap vdev counts too.
    assert_eq!(
        err(&with_p0("[[ports]]\nname = \"p1\"\ndevice = \"net_tap1,iface=rip-p0\"\n")),
        "t.toml:7:10: key `ports[1].device`: interface name `rip-p0` is already used by ports[0].exception.iface"
    );
}

#[test]
fn bad_port_fields() {
    assert_eq!(
        err("[[ports]]\nname = \"P0\"\ndevice = \"net_tap0\"\n"),
        "t.toml:2:8: key `ports[0].name`: invalid port name \"P0\" (expected 1-15 characters from a-z, 0-9, _ and -)"
    );
    assert_eq!(
        err(&with_p0("mtu = 9001\n")),
        "t.toml:5:7: key `ports[0].mtu`: 9001 is out of range (expected 68..=9000)"
    );
    assert_eq!(
        err(&with_p0("mac = \"03:00:00:00:00:01\"\n")),
        "t.toml:5:7: key `ports[0].mac`: MAC address 03:00:00:00:00:01 is multicast (expected unicast)"
    );
    assert_eq!(
        err("[[ports]]\nname = \"averyverylongna\"\ndevice = \"net_tap0\"\n"),
        "t.toml:1:1: key `ports[0].exception.iface`: default \"rip-averyverylongna\" is longer than 15 bytes; set it explicitly"
    );
    assert_eq!(
        err(&with_p0("[ports.exception]\niface = \"a/b\"\n")),
        "t.toml:6:9: key `ports[0].exception.iface`: invalid interface name \"a/b\" (expected 1-15 bytes without \"/\", \":\" or spaces)"
    );
    assert_eq!(
        err(&with_p0("[ports.exception]\nenabled = false\ndevice = \"pcap0\"\n")),
        "t.toml:7:10: key `ports[0].exception.device`: invalid virtual device \"pcap0\" (expected \"net_<driver><n>[,args]\")"
    );
}

// ----------------------------------------------------------- routes

const ROUTE: &str = "[[routes]]\nprefix = \"0.0.0.0/0\"\n";

#[test]
fn route_to_unknown_port() {
    assert_eq!(
        err(&with_p0(&format!(
            "{ROUTE}via = \"10.0.0.254\"\nport = \"p9\"\n"
        ))),
        "t.toml:8:8: key `routes[0].port`: no port named `p9`"
    );
    assert_eq!(
        err(&with_p0(&format!("{ROUTE}port = \"p9\"\n"))),
        "t.toml:7:8: key `routes[0].port`: no port named `p9`"
    );
}

#[test]
fn via_outside_connected_networks() {
    assert_eq!(
        err(&with_p0(&format!("{ROUTE}via = \"10.9.0.254\"\nport = \"p0\"\n"))),
        "t.toml:7:7: key `routes[0].via`: via 10.9.0.254 is not inside a connected network of port `p0` (10.0.0.0/24)"
    );
    assert_eq!(
        err(&with_p0(&format!("{ROUTE}via = \"10.9.0.254\"\n"))),
        "t.toml:7:7: key `routes[0].via`: via 10.9.0.254 is not inside any port's connected network"
    );
    assert_eq!(
        err(&with_p0(&format!(
            "[[ports]]\nname = \"p1\"\ndevice = \"net_tap1\"\n{ROUTE}via = \"10.0.0.254\"\nport = \"p1\"\n"
        ))),
        "t.toml:10:7: key `routes[0].via`: via 10.0.0.254 is not inside a connected network of port `p1` (it has no addresses)"
    );
    assert_eq!(
        err(&with_p0(&format!(
            "[[ports]]\nname = \"p1\"\ndevice = \"net_tap1\"\naddresses = [\"10.0.0.2/16\"]\n{ROUTE}via = \"10.0.0.254\"\n"
        ))),
        "t.toml:11:7: key `routes[0].via`: via 10.0.0.254 is inside connected networks of several ports (`p0`, `p1`); set `port`"
    );
    assert_eq!(
        err(&with_p0(&format!("{ROUTE}via = \"10.0.0.1\"\n"))),
        "t.toml:7:7: key `routes[0].via`: via 10.0.0.1 is an address of this director (ports[0].addresses[0])"
    );
    assert_eq!(
        err(&with_p0(&format!("{ROUTE}via = \"fe80::1\"\n"))),
        "t.toml:7:7: key `routes[0].via`: IPv6 is not supported yet"
    );
}

#[test]
fn bad_route_prefixes() {
    let route = |p: &str| {
        err(&with_p0(&format!(
            "[[routes]]\nprefix = \"{p}\"\nport = \"p0\"\n"
        )))
    };
    assert_eq!(
        route("10.1.0.1/16"),
        "t.toml:6:10: key `routes[0].prefix`: prefix 10.1.0.1/16 has host bits set (did you mean 10.1.0.0/16?)"
    );
    assert_eq!(
        route("default"),
        "t.toml:6:10: key `routes[0].prefix`: invalid IPv4 prefix \"default\" (expected ADDRESS/LEN)"
    );
    assert_eq!(
        err(&with_p0(&format!(
            "{ROUTE}port = \"p0\"\n{ROUTE}via = \"10.0.0.254\"\n"
        ))),
        "t.toml:9:10: key `routes[1].prefix`: duplicate route 0.0.0.0/0 (also routes[0])"
    );
}

// ------------------------------------------------------- neighbours

#[test]
fn bad_neighbours() {
    let n = |addr: &str, mac: &str| {
        err(&with_p0(&format!(
            "[[neighbours]]\naddress = \"{addr}\"\nmac = \"{mac}\"\nport = \"p0\"\n"
        )))
    };
    assert_eq!(
        n("10.0.0.254", "01:00:5e:00:00:01"),
        "t.toml:7:7: key `neighbours[0].mac`: MAC address 01:00:5e:00:00:01 is multicast (expected unicast)"
    );
    assert_eq!(
        n("10.0.0.254", "00:00:00:00:00:00"),
        "t.toml:7:7: key `neighbours[0].mac`: MAC address 00:00:00:00:00:00 is all zeros"
    );
    assert_eq!(
        n("10.0.0.254", "02:00:5e:00:00"),
        "t.toml:7:7: key `neighbours[0].mac`: invalid MAC address \"02:00:5e:00:00\" (expected six hex bytes like 02:00:00:00:00:01)"
    );
    assert_eq!(
        n("10.0.0.254", "02:00:5e:00:00:zz"),
        "t.toml:7:7: key `neighbours[0].mac`: invalid MAC address \"02:00:5e:00:00:zz\" (expected six hex bytes like 02:00:00:00:00:01)"
    );
    assert_eq!(
        n("10.1.0.254", "02:00:00:00:00:01"),
        "t.toml:6:11: key `neighbours[0].address`: address 10.1.0.254 is not inside a connected network of port `p0` (10.0.0.0/24)"
    );
    assert_eq!(
        err(&with_p0(
            "[[neighbours]]\naddress = \"10.0.0.9\"\nmac = \"02:00:00:00:00:01\"\n\
             [[neighbours]]\naddress = \"10.0.0.9\"\nmac = \"02:00:00:00:00:02\"\n"
        )),
        "t.toml:9:11: key `neighbours[1].address`: duplicate neighbour 10.0.0.9 on port `p0` (also neighbours[0])"
    );
    assert_eq!(
        err(&with_p0(
            "[[neighbours]]\naddress = \"10.0.0.9\"\nmac = \"02:00:00:00:00:01\"\nport = \"p7\"\n"
        )),
        "t.toml:8:8: key `neighbours[0].port`: no port named `p7`"
    );
}

// --------------------------------------------------------- services

fn service(proto: &str, vip: &str, port: i64) -> String {
    format!("[[services]]\nprotocol = \"{proto}\"\nvip = \"{vip}\"\nport = {port}\n")
}

#[test]
fn duplicate_service() {
    assert_eq!(
        err(&with_p0(&format!(
            "{}{}{}",
            service("tcp", "10.0.0.100", 80),
            service("udp", "10.0.0.100", 80),
            service("tcp", "10.0.0.100", 80)
        ))),
        "t.toml:15:7: key `services[2].vip`: duplicate service tcp 10.0.0.100:80 (also services[0])"
    );
}

#[test]
fn bad_services() {
    assert_eq!(
        err(&with_p0(&service("icmp", "10.0.0.100", 80))),
        "t.toml:6:12: key `services[0].protocol`: invalid protocol \"icmp\" (expected \"tcp\", \"udp\" or \"sctp\")"
    );
    assert_eq!(
        err(&with_p0(&service("tcp", "10.0.0.100", 65536))),
        "t.toml:8:8: key `services[0].port`: 65536 is out of range (expected 0..=65535)"
    );
    assert_eq!(
        err(&with_p0(&service("tcp", "10.0.0.x", 80))),
        "t.toml:7:7: key `services[0].vip`: invalid IPv4 address \"10.0.0.x\""
    );
    assert_eq!(
        err(&with_p0(&service("tcp", "2001:db8::1", 80))),
        "t.toml:7:7: key `services[0].vip`: IPv6 is not supported yet"
    );
    assert_eq!(
        err(&with_p0(&service("tcp", "239.1.1.1", 80))),
        "t.toml:7:7: key `services[0].vip`: address 239.1.1.1 is multicast"
    );
}

#[test]
fn first_error_wins() {
    // Two errors: the one earlier in schema (and document) order is reported.
    assert_eq!(
        err(&format!("[eal]\nmain_lcore = 999\n{P0}mtu = 1\n")),
        "t.toml:2:14: key `eal.main_lcore`: 999 is out of range (expected 0..=127)"
    );
}

#[test]
fn load_reports_io_errors() {
    let e = conf::load(std::path::Path::new("/nonexistent/ripvs.toml")).unwrap_err();
    assert_eq!((e.line, e.column, e.key.as_str()), (1, 1, ""));
    assert!(e.message.starts_with("cannot read: "), "{e}");
    assert!(
        e.to_string()
            .starts_with("/nonexistent/ripvs.toml:1:1: cannot read: "),
        "{e}"
    );
}

#[test]
fn dotted_keys_and_sub_tables() {
    assert_eq!(
        err(&with_p0("[ports.bogus]\nx = 1\n")),
        "t.toml:5:8: key `ports[0].bogus`: unknown key `bogus`, expected one of `name`, `device`, `mtu`, `mac`, `addresses`, `exception`"
    );
    assert_eq!(
        err(&format!("eal.bogus = 1\n{P0}")),
        "t.toml:1:5: key `eal.bogus`: unknown key `bogus`, expected one of `args`, `main_lcore`, `worker_lcores`"
    );
    assert_eq!(
        err(&format!("[eal.sub]\nx = 1\n{P0}")),
        "t.toml:1:6: key `eal.sub`: unknown key `sub`, expected one of `args`, `main_lcore`, `worker_lcores`"
    );
    assert_eq!(
        err(&with_p0("[ports.exception.deep]\nx = 1\n")),
        "t.toml:5:18: key `ports[0].exception.deep`: unknown key `deep`, expected one of `enabled`, `iface`, `device`"
    );
    assert_eq!(
        err("[[ports]]\nname.x = \"a\"\ndevice = \"net_tap0\"\n"),
        "t.toml:2:6: key `ports[0].name`: invalid type: table, expected a plain value"
    );
    assert_eq!(
        err(&format!("[eal]\nworker_lcores.x = 1\n{P0}")),
        "t.toml:2:15: key `eal.worker_lcores`: invalid type: table, expected a plain value"
    );
    assert_eq!(
        err("ports.x = 1\n"),
        "t.toml:1:1: key `ports`: invalid type: table, expected an array"
    );
    assert_eq!(
        err(&with_p0("[[ports.exception]]\n")),
        "t.toml:5:1: key `ports[0].exception`: invalid type: array, expected a table"
    );
    // Dotted keys that name real keys are fine.
    let c = parse(
        &format!("eal.main_lcore = 2\n{P0}exception.iface = \"k0\"\n"),
        "t.toml",
    )
    .unwrap();
    assert_eq!(c.eal.main_lcore, 2);
    assert_eq!(c.ports[0].exception.iface, "k0");
}

// ---------------------------------------------------- health checks

/// A service on line 5, its health table's first key on line 10.
fn health(keys: &str) -> String {
    err(&with_p0(&format!(
        "[[services]]\nprotocol = \"tcp\"\nvip = \"10.0.0.100\"\nport = 80\n[services.health]\n{keys}\n[[services.real_servers]]\naddress = \"10.0.0.11\"\n"
    )))
}

#[test]
fn health_errors() {
    assert_eq!(
        health("checker = \"icmp\""),
        "t.toml:10:11: key `services[0].health.checker`: unknown checker \"icmp\" (expected \"tcp\", \"http\", \"https\", \"udp\", \"exec\" or \"none\")"
    );
    assert_eq!(
        health("checker = \"tcp\"\ninterval = 0"),
        "t.toml:11:12: key `services[0].health.interval`: 0 is out of range (expected 0.001..=86400 seconds)"
    );
    assert_eq!(
        health("checker = \"tcp\"\ninterval = -1"),
        "t.toml:11:12: key `services[0].health.interval`: -1 is out of range (expected 0.001..=86400 seconds)"
    );
    assert_eq!(
        health("checker = \"tcp\"\ninterval = 2\ntimeout = 2.5"),
        "t.toml:12:11: key `services[0].health.timeout`: timeout 2.5 s is longer than interval 2 s: a check would still run when the next is due"
    );
    assert_eq!(
        health("checker = \"tcp\"\ntimeout = 10"),
        "t.toml:11:11: key `services[0].health.timeout`: timeout 10 s is longer than interval 5 s: a check would still run when the next is due"
    );
    assert_eq!(
        health("checker = \"exec\""),
        "t.toml:10:11: key `services[0].health.command`: the exec checker needs `command` ([PROGRAM, ARGS...]; the real server's address and port are appended)"
    );
    assert_eq!(
        health("checker = \"exec\"\ncommand = []"),
        "t.toml:11:11: key `services[0].health.command`: `command` needs a program ([PROGRAM, ARGS...])"
    );
    assert_eq!(
        health("checker = \"exec\"\ncommand = [\"/bin/true\"]\nsource = \"10.0.0.1\""),
        "t.toml:12:10: key `services[0].health.source`: `source` does not apply to the exec checker: the command chooses how it connects"
    );
    assert_eq!(
        health("interval = 1"),
        "t.toml:10:12: key `services[0].health.checker`: missing required key"
    );
    assert_eq!(
        health("checker = \"tcp\"\npath = \"/\""),
        "t.toml:11:8: key `services[0].health.path`: `path` does not apply to the tcp checker (it is for http and https)"
    );
    assert_eq!(
        health("checker = \"udp\"\nstatus = \"200\""),
        "t.toml:11:10: key `services[0].health.status`: `status` does not apply to the udp checker (it is for http and https)"
    );
    assert_eq!(
        health("checker = \"http\"\nstatus = \"200-99\""),
        "t.toml:11:10: key `services[0].health.status`: invalid status \"200-99\" (expected CODE or LOW-HIGH, codes in 100..=599)"
    );
    assert_eq!(
        health("checker = \"http\"\npath = \"health\""),
        "t.toml:11:8: key `services[0].health.path`: invalid path \"health\" (expected an absolute path like /health, without spaces)"
    );
    assert_eq!(
        health("checker = \"http\"\nhost = \"a b\""),
        "t.toml:11:8: key `services[0].health.host`: invalid host \"a b\" (expected a host name, without spaces)"
    );
    assert_eq!(
        health("checker = \"http\"\nexpect = \"\""),
        "t.toml:11:10: key `services[0].health.expect`: `expect` is empty: leave it out to accept any answer"
    );
    assert_eq!(
        health("checker = \"tcp\"\nretries = 0"),
        "t.toml:11:11: key `services[0].health.retries`: 0 is out of range (expected 1..=100)"
    );
    assert_eq!(
        health("checker = \"tcp\"\nsuccesses = 101"),
        "t.toml:11:13: key `services[0].health.successes`: 101 is out of range (expected 1..=100)"
    );
    assert_eq!(
        health("checker = \"tcp\"\ninitial = \"maybe\""),
        "t.toml:11:11: key `services[0].health.initial`: invalid initial state \"maybe\" (expected \"up\" or \"down\")"
    );
    assert_eq!(
        health("checker = \"tcp\"\nport = 0"),
        "t.toml:11:8: key `services[0].health.port`: 0 is out of range (expected 1..=65535)"
    );
    assert_eq!(
        health("checker = \"tcp\"\nsource = \"10.0.0\""),
        "t.toml:11:10: key `services[0].health.source`: invalid IPv4 address \"10.0.0\""
    );
    assert_eq!(
        health("checker = \"tcp\"\ninterface = \"a-very-long-interface\""),
        "t.toml:11:13: key `services[0].health.interface`: invalid interface name \"a-very-long-interface\" (expected 1-15 bytes without \"/\", \":\" or spaces)"
    );
    assert_eq!(
        health("checker = \"tcp\"\ninterval = \"5s\""),
        "t.toml:11:12: key `services[0].health.interval`: invalid type: string \"5s\", expected a number"
    );
    assert_eq!(
        health("checker = \"tcp\"\nevery = 5"),
        "t.toml:11:1: key `services[0].health.every`: unknown key `every`, expected one of `checker`, `interval`, `timeout`, `delay`, `retries`, `successes`, `initial`, `port`, `source`, `interface`, `path`, `host`, `status`, `expect`, `payload`, `command`"
    );
}

#[test]
fn health_keys_name_their_checkers() {
    assert_eq!(
        health("checker = \"exec\"\ncommand = [\"/bin/true\"]\nexpect = \"x\""),
        "t.toml:12:10: key `services[0].health.expect`: `expect` does not apply to the exec checker (it is for http, https and udp)"
    );
    assert_eq!(
        health("checker = \"https\"\npayload = \"x\""),
        "t.toml:11:11: key `services[0].health.payload`: `payload` does not apply to the https checker (it is for udp)"
    );
}

#[test]
fn health_override_and_sorry_server_errors() {
    let svc = "[[services]]\nprotocol = \"tcp\"\nvip = \"10.0.0.100\"\nport = 80\n";
    // An override names its own table; the service's table is fine alone.
    assert_eq!(
        err(&with_p0(&format!(
            "{svc}health = {{ checker = \"tcp\", interval = 2 }}\n[[services.real_servers]]\naddress = \"10.0.0.11\"\nhealth = {{ timeout = 3 }}\n"
        ))),
        "t.toml:12:22: key `services[0].real_servers[0].health.timeout`: timeout 3 s is longer than interval 2 s: a check would still run when the next is due"
    );
    assert_eq!(
        err(&with_p0(&format!(
            "{svc}[[services.real_servers]]\naddress = \"10.0.0.11\"\nhealth = {{ interval = 3 }}\n"
        ))),
        "t.toml:11:23: key `services[0].real_servers[0].health.checker`: missing required key"
    );
    // A real server of a fwmark service has no port to check.
    assert_eq!(
        err(&with_p0(
            "[[fwmarks]]\nmark = 1\n[[fwmarks.match]]\ndestination = \"10.0.0.100/32\"\n[[services]]\nfwmark = 1\nhealth = { checker = \"tcp\" }\n[[services.real_servers]]\naddress = \"10.0.0.11\"\n"
        )),
        "t.toml:11:22: key `services[0].health.port`: the real server has no port (fwmark service): the tcp checker needs `port`"
    );
    assert_eq!(
        err(&with_p0(&format!(
            "{svc}sorry_server = {{ address = \"10.0.0.11\" }}\n[[services.real_servers]]\naddress = \"10.0.0.11\"\n"
        ))),
        "t.toml:9:28: key `services[0].sorry_server.address`: sorry server 10.0.0.11:80 is also real_servers[0]"
    );
    assert_eq!(
        err(&with_p0(&format!(
            "{svc}sorry_server = {{ address = \"10.0.0.99\", port = 8080 }}\n"
        ))),
        "t.toml:9:48: key `services[0].sorry_server.port`: a dr real server cannot change the port: it must be the service port 80 (or be left out)"
    );
    assert_eq!(
        err(&with_p0(&format!("{svc}sorry_server = {{ port = 80 }}\n"))),
        "t.toml:9:16: key `services[0].sorry_server.address`: missing required key"
    );
    assert_eq!(
        err(&with_p0(&format!("{svc}quiescent = \"yes\"\n"))),
        "t.toml:9:13: key `services[0].quiescent`: invalid type: string \"yes\", expected a boolean"
    );
}
