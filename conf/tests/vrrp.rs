//! `[[vrrp]]`: what parses (every key, every default), and the exact error
//! for each way to get an instance wrong.

use conf::*;
use std::net::Ipv4Addr;

/// Two ports, eight lines: p0 on 10.0.0.0/24, p1 on 192.168.1.0/24.
const PORTS: &str = "[[ports]]\nname = \"p0\"\ndevice = \"net_ring0\"\naddresses = [\"10.0.0.1/24\"]\n\
                     [[ports]]\nname = \"p1\"\ndevice = \"net_ring1\"\naddresses = [\"192.168.1.1/24\"]\n";

fn parse_with(text: &str) -> Config {
    match parse(&format!("{PORTS}{text}"), "t.toml") {
        Ok(c) => c,
        Err(e) => panic!("{text:?} refused: {e}"),
    }
}

fn err(text: &str) -> String {
    match parse(&format!("{PORTS}{text}"), "t.toml") {
        Ok(c) => panic!("expected an error, got {:?}", c.vrrp),
        Err(e) => e.to_string(),
    }
}

/// A minimal instance on p0, five lines; `extra` follows on the sixth.
fn inst(name: &str, vrid: u32, addr: &str, extra: &str) -> String {
    format!(
        "[[vrrp]]\nname = \"{name}\"\nport = \"p0\"\nvrid = {vrid}\naddresses = [\"{addr}\"]\n{extra}"
    )
}

/// One instance `VI_1` (lines 9-13) with `extra` from line 14.
fn one(extra: &str) -> String {
    err(&inst("VI_1", 51, "10.0.0.100", extra))
}

fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

/// `VI_1` with every key at its default.
fn default_vi1() -> Vrrp {
    Vrrp {
        name: "VI_1".into(),
        port: "p0".into(),
        vrid: 51,
        priority: 100,
        version: 3,
        advert_int_cs: 100,
        preempt: true,
        preempt_delay_s: 0,
        initial: VrrpInitial::Backup,
        addresses: vec![ip(10, 0, 0, 100)],
        unicast_peers: vec![],
        auth_pass: None,
        garp_master_delay_s: 5,
        garp_master_repeat: 5,
        garp_master_refresh_s: 0,
        garp_master_refresh_repeat: 1,
        notify_master: None,
        notify_backup: None,
        notify_fault: None,
        notify: None,
        sync_daemon: false,
        use_vmac: false,
    }
}

// ------------------------------------------------------------ valid

#[test]
fn no_section_no_instances() {
    assert_eq!(parse_with("").vrrp, vec![]);
}

#[test]
fn defaults() {
    let c = parse_with(&inst("VI_1", 51, "10.0.0.100", ""));
    assert_eq!(c.vrrp, vec![default_vi1()]);
    assert_eq!(
        c.vrrp[0].advert_interval(),
        std::time::Duration::from_secs(1)
    );
    assert_eq!(VRRP_MULTICAST_GROUP, ip(224, 0, 0, 18));
}

#[test]
fn every_key_set() {
    let c = parse_with(
        r#"[[vrrp]]
name = "web.front-2"
port = "p1"
vrid = 255
priority = 255
version = 2
advert_int = 3
preempt = true
preempt_delay = 1000
state = "backup"
addresses = ["192.0.2.100", "192.0.2.53", "10.0.0.200"]
unicast_peers = ["192.168.1.2", "192.168.1.3"]
auth_pass = "s3cret!!"
garp_master_delay = 0
garp_master_repeat = 255
garp_master_refresh = 65535
garp_master_refresh_repeat = 255
notify_master = "/etc/ripvs/master.sh web"
notify_backup = "/etc/ripvs/backup.sh"
notify_fault = "logger -t ripvs fault"
notify = "/etc/ripvs/notify.sh"
sync_daemon = true

[[vrrp]]
name = "VI_1"
port = "p0"
vrid = 255
advert_int = 0.1
state = "master"
addresses = ["10.0.0.100"]
sync_daemon = false

[sync]
interface = "rip-p1"
maxlen = 1024
"#,
    );
    assert_eq!(
        c.vrrp,
        vec![
            Vrrp {
                name: "web.front-2".into(),
                port: "p1".into(),
                vrid: 255,
                priority: 255,
                version: 2,
                advert_int_cs: 300,
                preempt: true,
                preempt_delay_s: 1000,
                initial: VrrpInitial::Backup,
                addresses: vec![ip(192, 0, 2, 100), ip(192, 0, 2, 53), ip(10, 0, 0, 200)],
                unicast_peers: vec![ip(192, 168, 1, 2), ip(192, 168, 1, 3)],
                auth_pass: Some("s3cret!!".into()),
                garp_master_delay_s: 0,
                garp_master_repeat: 255,
                garp_master_refresh_s: 65535,
                garp_master_refresh_repeat: 255,
                notify_master: Some("/etc/ripvs/master.sh web".into()),
                notify_backup: Some("/etc/ripvs/backup.sh".into()),
                notify_fault: Some("logger -t ripvs fault".into()),
                notify: Some("/etc/ripvs/notify.sh".into()),
                sync_daemon: true,
                use_vmac: false,
            },
            Vrrp {
                vrid: 255,
                advert_int_cs: 10,
                initial: VrrpInitial::Master,
                ..default_vi1()
            },
        ]
    );
    // [sync] names no role: the instance drives it.
    assert!(!c.sync.master && !c.sync.backup);
    assert_eq!(c.sync.interface.as_deref(), Some("rip-p1"));
}

#[test]
fn advert_int_units() {
    let cs = |extra: &str| parse_with(&inst("VI_1", 51, "10.0.0.100", extra)).vrrp[0].advert_int_cs;
    assert_eq!(cs("advert_int = 0.01\n"), 1);
    assert_eq!(cs("advert_int = 0.07\n"), 7);
    assert_eq!(cs("advert_int = 0.35\n"), 35);
    assert_eq!(cs("advert_int = 40.95\n"), 4095);
    assert_eq!(cs("advert_int = 2\n"), 200);
    assert_eq!(cs("version = 2\n"), 100);
    assert_eq!(cs("version = 2\nadvert_int = 1\n"), 100);
    assert_eq!(cs("version = 2\nadvert_int = 255.0\n"), 25500);
    let c = parse_with(&inst("VI_1", 51, "10.0.0.100", "advert_int = 0.1\n"));
    assert_eq!(
        c.vrrp[0].advert_interval(),
        std::time::Duration::from_millis(100)
    );
}

#[test]
fn same_vrid_on_two_ports_and_peers_anywhere_on_the_port() {
    let c = parse_with(&format!(
        "{}{}",
        inst("a", 1, "10.0.0.100", "unicast_peers = [\"10.0.0.2\"]\n"),
        "[[vrrp]]\nname = \"b\"\nport = \"p1\"\nvrid = 1\naddresses = [\"10.0.0.101\"]\nunicast_peers = [\"192.168.1.254\"]\n"
    ));
    assert_eq!(c.vrrp.len(), 2);
    assert_eq!(c.vrrp[1].unicast_peers, vec![ip(192, 168, 1, 254)]);
}

// ------------------------------------------------------- identity

#[test]
fn duplicate_name() {
    assert_eq!(
        one(&inst("VI_1", 52, "10.0.0.101", "")),
        "t.toml:15:8: key `vrrp[1].name`: instance name `VI_1` is already used by vrrp[0]"
    );
}

#[test]
fn invalid_name() {
    assert_eq!(
        err(&inst("VI 1", 51, "10.0.0.100", "")),
        "t.toml:10:8: key `vrrp[0].name`: invalid instance name \"VI 1\" (expected 1-32 characters from A-Z, a-z, 0-9, _, . and -)"
    );
    assert_eq!(
        err(&inst(&"x".repeat(33), 51, "10.0.0.100", "")),
        format!("t.toml:10:8: key `vrrp[0].name`: invalid instance name \"{}\" (expected 1-32 characters from A-Z, a-z, 0-9, _, . and -)", "x".repeat(33))
    );
}

#[test]
fn duplicate_port_and_vrid() {
    assert_eq!(
        one(&inst("VI_2", 51, "10.0.0.101", "")),
        "t.toml:17:8: key `vrrp[1].vrid`: VRID 51 is already used on port `p0` by vrrp[0] (`VI_1`)"
    );
}

#[test]
fn vrid_range() {
    assert_eq!(
        err(&inst("VI_1", 0, "10.0.0.100", "")),
        "t.toml:12:8: key `vrrp[0].vrid`: 0 is out of range (expected 1..=255)"
    );
    assert_eq!(
        err(&inst("VI_1", 256, "10.0.0.100", "")),
        "t.toml:12:8: key `vrrp[0].vrid`: 256 is out of range (expected 1..=255)"
    );
}

#[test]
fn missing_required_keys() {
    assert_eq!(
        err("[[vrrp]]\nname = \"VI_1\"\nport = \"p0\"\naddresses = [\"10.0.0.100\"]\n"),
        "t.toml:9:1: key `vrrp[0].vrid`: missing required key"
    );
    assert_eq!(
        err("[[vrrp]]\nname = \"VI_1\"\nport = \"p0\"\nvrid = 1\n"),
        "t.toml:9:1: key `vrrp[0].addresses`: missing required key"
    );
}

#[test]
fn unknown_port() {
    assert_eq!(
        err("[[vrrp]]\nname = \"VI_1\"\nport = \"p9\"\nvrid = 1\naddresses = [\"10.0.0.100\"]\n"),
        "t.toml:11:8: key `vrrp[0].port`: no port named `p9`"
    );
}

#[test]
fn port_without_address() {
    assert_eq!(
        err("[[ports]]\nname = \"p2\"\ndevice = \"net_ring2\"\n\
             [[vrrp]]\nname = \"VI_1\"\nport = \"p2\"\nvrid = 1\naddresses = [\"10.0.0.100\"]\n"),
        "t.toml:14:8: key `vrrp[0].port`: port `p2` has no IPv4 address: VRRP adverts are sent from the port's first address"
    );
}

// ------------------------------------------------- protocol values

#[test]
fn priority_range() {
    assert_eq!(
        one("priority = 0\n"),
        "t.toml:14:12: key `vrrp[0].priority`: 0 is out of range (expected 1..=255)"
    );
    assert_eq!(
        one("priority = 256\n"),
        "t.toml:14:12: key `vrrp[0].priority`: 256 is out of range (expected 1..=255)"
    );
}

#[test]
fn version_4() {
    assert_eq!(
        one("version = 4\n"),
        "t.toml:14:11: key `vrrp[0].version`: invalid VRRP version 4 (expected 2 or 3)"
    );
}

#[test]
fn advert_int_too_short_for_v3() {
    assert_eq!(
        one("advert_int = 0.005\n"),
        "t.toml:14:14: key `vrrp[0].advert_int`: 0.005 is out of range (expected 0.01..=40.95 seconds for VRRP version 3, whose interval is 12 bits of centiseconds)"
    );
    assert_eq!(
        one("advert_int = 0\n"),
        "t.toml:14:14: key `vrrp[0].advert_int`: 0 is out of range (expected 0.01..=40.95 seconds for VRRP version 3, whose interval is 12 bits of centiseconds)"
    );
}

#[test]
fn advert_int_too_long_for_v3() {
    assert_eq!(
        one("advert_int = 41\n"),
        "t.toml:14:14: key `vrrp[0].advert_int`: 41 is out of range (expected 0.01..=40.95 seconds for VRRP version 3, whose interval is 12 bits of centiseconds)"
    );
}

#[test]
fn advert_int_not_centiseconds_for_v3() {
    assert_eq!(
        one("advert_int = 0.015\n"),
        "t.toml:14:14: key `vrrp[0].advert_int`: 0.015 is not a whole number of centiseconds: VRRP version 3 advertises in hundredths of a second"
    );
}

#[test]
fn advert_int_fraction_for_v2() {
    assert_eq!(
        one("version = 2\nadvert_int = 1.5\n"),
        "t.toml:15:14: key `vrrp[0].advert_int`: 1.5 is not a whole number of seconds: VRRP version 2 advertises in whole seconds (set version = 3 for intervals in hundredths of a second)"
    );
    assert_eq!(
        one("version = 2\nadvert_int = 0.5\n"),
        "t.toml:15:14: key `vrrp[0].advert_int`: 0.5 is not a whole number of seconds: VRRP version 2 advertises in whole seconds (set version = 3 for intervals in hundredths of a second)"
    );
}

#[test]
fn advert_int_range_for_v2() {
    assert_eq!(
        one("version = 2\nadvert_int = 256\n"),
        "t.toml:15:14: key `vrrp[0].advert_int`: 256 is out of range (expected 1..=255 seconds for VRRP version 2)"
    );
    assert_eq!(
        one("version = 2\nadvert_int = 0\n"),
        "t.toml:15:14: key `vrrp[0].advert_int`: 0 is out of range (expected 1..=255 seconds for VRRP version 2)"
    );
}

#[test]
fn advert_int_type() {
    assert_eq!(
        one("advert_int = \"1s\"\n"),
        "t.toml:14:14: key `vrrp[0].advert_int`: invalid type: string \"1s\", expected a number"
    );
}

#[test]
fn invalid_state() {
    assert_eq!(
        one("state = \"MASTER\"\n"),
        "t.toml:14:9: key `vrrp[0].state`: invalid state \"MASTER\" (expected \"backup\" or \"master\")"
    );
}

#[test]
fn preempt_combinations() {
    assert_eq!(
        one("state = \"master\"\npreempt = false\n"),
        "t.toml:15:11: key `vrrp[0].preempt`: preempt = false needs state = \"backup\": an instance that starts as master takes over at once"
    );
    assert_eq!(
        one("priority = 255\npreempt = false\n"),
        "t.toml:15:11: key `vrrp[0].preempt`: preempt = false cannot apply to priority 255: the addresses' owner always preempts (RFC 5798)"
    );
    assert_eq!(
        one("preempt = false\npreempt_delay = 10\n"),
        "t.toml:15:17: key `vrrp[0].preempt_delay`: preempt_delay has no effect with preempt = false"
    );
    assert_eq!(
        one("state = \"master\"\npreempt_delay = 10\n"),
        "t.toml:15:17: key `vrrp[0].preempt_delay`: preempt_delay has no effect with state = \"master\": an instance that starts as master takes over at once"
    );
    assert_eq!(
        one("preempt_delay = 1001\n"),
        "t.toml:14:17: key `vrrp[0].preempt_delay`: 1001 is out of range (expected 0..=1000)"
    );
    // 0 says nothing, so it goes with anything.
    let c = parse_with(&inst(
        "VI_1",
        51,
        "10.0.0.100",
        "preempt = false\npreempt_delay = 0\n",
    ));
    assert!(!c.vrrp[0].preempt);
}

#[test]
fn auth_pass_with_v3() {
    assert_eq!(
        one("auth_pass = \"secret\"\n"),
        "t.toml:14:13: key `vrrp[0].auth_pass`: auth_pass is for VRRP version 2 only (version 3 has no authentication, RFC 5798): remove it or set version = 2"
    );
    assert_eq!(
        one("version = 3\nauth_pass = \"secret\"\n"),
        "t.toml:15:13: key `vrrp[0].auth_pass`: auth_pass is for VRRP version 2 only (version 3 has no authentication, RFC 5798): remove it or set version = 2"
    );
}

#[test]
fn auth_pass_length() {
    assert_eq!(
        one("version = 2\nauth_pass = \"123456789\"\n"),
        "t.toml:15:13: key `vrrp[0].auth_pass`: auth_pass is 9 bytes long (expected 1..=8: the advert's authentication data is 8 bytes)"
    );
    assert_eq!(
        one("version = 2\nauth_pass = \"\"\n"),
        "t.toml:15:13: key `vrrp[0].auth_pass`: auth_pass is 0 bytes long (expected 1..=8: the advert's authentication data is 8 bytes)"
    );
}

#[test]
fn garp_ranges() {
    assert_eq!(
        one("garp_master_delay = 256\n"),
        "t.toml:14:21: key `vrrp[0].garp_master_delay`: 256 is out of range (expected 0..=255)"
    );
    assert_eq!(
        one("garp_master_repeat = 0\n"),
        "t.toml:14:22: key `vrrp[0].garp_master_repeat`: 0 is out of range (expected 1..=255)"
    );
    assert_eq!(
        one("garp_master_refresh = 65536\n"),
        "t.toml:14:23: key `vrrp[0].garp_master_refresh`: 65536 is out of range (expected 0..=65535)"
    );
    assert_eq!(
        one("garp_master_refresh_repeat = 0\n"),
        "t.toml:14:30: key `vrrp[0].garp_master_refresh_repeat`: 0 is out of range (expected 1..=255)"
    );
}

#[test]
fn empty_notify() {
    assert_eq!(
        one("notify_fault = \"  \"\n"),
        "t.toml:14:16: key `vrrp[0].notify_fault`: empty command (leave the key out for none)"
    );
}

// -------------------------------------------------------- addresses

#[test]
fn empty_addresses() {
    assert_eq!(
        err("[[vrrp]]\nname = \"VI_1\"\nport = \"p0\"\nvrid = 1\naddresses = []\n"),
        "t.toml:13:13: key `vrrp[0].addresses`: at least one address is required"
    );
}

#[test]
fn address_with_prefix() {
    assert_eq!(
        err(&inst("VI_1", 51, "10.0.0.100/24", "")),
        "t.toml:13:14: key `vrrp[0].addresses[0]`: invalid IPv4 address \"10.0.0.100/24\" (a VRRP address is written without a prefix length)"
    );
    assert_eq!(
        err(&inst("VI_1", 51, "224.0.0.18", "")),
        "t.toml:13:14: key `vrrp[0].addresses[0]`: address 224.0.0.18 is multicast"
    );
}

#[test]
fn address_is_an_interface_address() {
    assert_eq!(
        err(&inst("VI_1", 51, "192.168.1.1", "")),
        "t.toml:13:14: key `vrrp[0].addresses[0]`: address 192.168.1.1 is an interface address of port `p1` (ports[1].addresses[0]): owning an interface address is not supported; use an address no port has"
    );
}

#[test]
fn duplicate_address_in_one_instance() {
    assert_eq!(
        err("[[vrrp]]\nname = \"VI_1\"\nport = \"p0\"\nvrid = 1\naddresses = [\"10.0.0.100\", \"10.0.0.100\"]\n"),
        "t.toml:13:28: key `vrrp[0].addresses[1]`: duplicate address 10.0.0.100 (also vrrp[0].addresses[0])"
    );
}

#[test]
fn address_in_two_instances() {
    assert_eq!(
        one(&inst("VI_2", 52, "10.0.0.100", "")),
        "t.toml:18:14: key `vrrp[1].addresses[0]`: address 10.0.0.100 is already held by instance `VI_1` (vrrp[0].addresses[0])"
    );
}

#[test]
fn too_many_addresses() {
    let list = |n: u32| {
        (0..n)
            .map(|k| format!("\"172.16.{}.{}\"", k / 200, k % 200 + 1))
            .collect::<Vec<_>>()
            .join(",")
    };
    // 255 fit; the 256th does not.
    let c = parse_with(&format!(
        "[[vrrp]]\nname = \"VI_1\"\nport = \"p0\"\nvrid = 1\naddresses = [{}]\n",
        list(255)
    ));
    assert_eq!(c.vrrp[0].addresses.len(), 255);
    let e = err(&format!(
        "[[vrrp]]\nname = \"VI_1\"\nport = \"p0\"\nvrid = 1\naddresses = [{}]\n",
        list(256)
    ));
    assert!(
        e.ends_with("key `vrrp[0].addresses[255]`: too many addresses: an advert carries at most 255 (its count is 8 bits)"),
        "{e}"
    );
    // On a small MTU the advert itself is the limit: (68 - 20 - 8) / 4.
    assert_eq!(
        err(&format!(
            "[[ports]]\nname = \"p2\"\ndevice = \"net_ring2\"\nmtu = 68\naddresses = [\"10.2.0.1/24\"]\n\
             [[vrrp]]\nname = \"VI_1\"\nport = \"p2\"\nvrid = 1\naddresses = [{}]\n",
            list(11)
        )),
        "t.toml:18:145: key `vrrp[0].addresses[10]`: too many addresses: at most 10 fit in a version 3 advert on port `p2` (MTU 68)"
    );
}

// ---------------------------------------------------- unicast peers

#[test]
fn unicast_peer_off_the_ports_networks() {
    assert_eq!(
        one("unicast_peers = [\"192.168.1.2\"]\n"),
        "t.toml:14:18: key `vrrp[0].unicast_peers[0]`: unicast peer 192.168.1.2 is not inside a connected network of port `p0` (10.0.0.0/24)"
    );
}

#[test]
fn unicast_peer_is_not_ours() {
    assert_eq!(
        one("unicast_peers = [\"10.0.0.1\"]\n"),
        "t.toml:14:18: key `vrrp[0].unicast_peers[0]`: unicast peer 10.0.0.1 is an address of this director (ports[0].addresses[0])"
    );
    assert_eq!(
        one("unicast_peers = [\"10.0.0.100\"]\n"),
        "t.toml:14:18: key `vrrp[0].unicast_peers[0]`: unicast peer 10.0.0.100 is a VRRP address (vrrp[0].addresses[0]): a peer is another router's own address"
    );
    assert_eq!(
        one(&format!(
            "unicast_peers = [\"10.0.0.2\"]\n{}",
            inst("VI_2", 52, "10.0.0.2", "")
        )),
        "t.toml:19:14: key `vrrp[1].addresses[0]`: address 10.0.0.2 is a unicast peer of instance `VI_1` (vrrp[0].unicast_peers[0]): a peer is another router's own address"
    );
}

#[test]
fn unicast_peer_values() {
    assert_eq!(
        one("unicast_peers = [\"10.0.0.2\", \"10.0.0.2\"]\n"),
        "t.toml:14:30: key `vrrp[0].unicast_peers[1]`: duplicate unicast peer 10.0.0.2 (also vrrp[0].unicast_peers[0])"
    );
    assert_eq!(
        one("unicast_peers = [\"224.0.0.18\"]\n"),
        "t.toml:14:18: key `vrrp[0].unicast_peers[0]`: address 224.0.0.18 is multicast"
    );
}

// -------------------------------------------------------- sync_daemon

#[test]
fn two_sync_daemon_instances() {
    assert_eq!(
        err(&format!(
            "{}{}[sync]\ninterface = \"rip-p0\"\n",
            inst("VI_1", 51, "10.0.0.100", "sync_daemon = true\n"),
            inst("VI_2", 52, "10.0.0.101", "sync_daemon = true\n"),
        )),
        "t.toml:20:15: key `vrrp[1].sync_daemon`: instance `VI_1` (vrrp[0]) already sets sync_daemon: one instance drives the sync daemon roles"
    );
}

#[test]
fn sync_daemon_without_sync_interface() {
    assert_eq!(
        one("sync_daemon = true\n"),
        "t.toml:14:15: key `vrrp[0].sync_daemon`: requires `interface` in [sync]: the kernel interface the sync multicast goes through"
    );
    assert_eq!(
        one("sync_daemon = true\n[sync]\nsyncid = 3\n"),
        "t.toml:14:15: key `vrrp[0].sync_daemon`: requires `interface` in [sync]: the kernel interface the sync multicast goes through"
    );
}

#[test]
fn sync_daemon_with_sync_state() {
    let msg = "t.toml:14:15: key `vrrp[0].sync_daemon`: the sync daemon roles follow instance `VI_1` (master while it is master, backup otherwise): remove `state` from [sync]";
    for state in ["none", "master", "backup", "both"] {
        assert_eq!(
            one(&format!(
                "sync_daemon = true\n[sync]\nstate = \"{state}\"\ninterface = \"rip-p0\"\n"
            )),
            msg,
            "{state}"
        );
    }
}

#[test]
fn sync_daemon_maxlen_is_a_backups() {
    assert_eq!(
        one("sync_daemon = true\n[sync]\ninterface = \"rip-p0\"\nmaxlen = 1023\n"),
        "t.toml:17:10: key `sync.maxlen`: 1023 is out of range for a backup (expected 1024..=65507): with vrrp[0].sync_daemon this node is a sync backup whenever instance `VI_1` is"
    );
    // Without sync_daemon, [sync] alone decides.
    let c = parse_with(&inst(
        "VI_1",
        51,
        "10.0.0.100",
        "sync_daemon = false\n[sync]\nstate = \"master\"\ninterface = \"rip-p0\"\nmaxlen = 1023\n",
    ));
    assert!(c.sync.master && !c.vrrp[0].sync_daemon);
}

// ------------------------------------------------------------ schema

#[test]
fn unknown_key() {
    assert_eq!(
        one("nopreempt = true\n"),
        "t.toml:14:1: key `vrrp[0].nopreempt`: unknown key `nopreempt`, expected one of `name`, `port`, `vrid`, `priority`, `version`, `advert_int`, `preempt`, `preempt_delay`, `state`, `addresses`, `unicast_peers`, `auth_pass`, `garp_master_delay`, `garp_master_repeat`, `garp_master_refresh`, `garp_master_refresh_repeat`, `notify_master`, `notify_backup`, `notify_fault`, `notify`, `sync_daemon`, `use_vmac`"
    );
}

/// The 65th instance has no mastery bit in the data plane.
#[test]
fn at_most_64_instances() {
    let many: String = (1..=65)
        .map(|n| inst(&format!("VI_{n}"), n, &format!("10.0.0.{}", 100 + n), ""))
        .collect();
    let e = err(&many);
    assert!(
        e.starts_with(
            "t.toml:329:1: key `vrrp[64]`: too many instances: a director runs at most 64"
        ),
        "{e}"
    );
}

/// The virtual MAC: on by key, refused with unicast peers (their adverts
/// leave by the data plane's routing, with the port's MAC).
#[test]
fn use_vmac() {
    let c = parse_with(&inst("VI_1", 51, "10.0.0.100", "use_vmac = true\n"));
    assert!(c.vrrp[0].use_vmac);
    assert!(!parse_with(&inst("VI_1", 51, "10.0.0.100", "")).vrrp[0].use_vmac);
    assert_eq!(
        one("use_vmac = true\nunicast_peers = [\"10.0.0.2\"]\n"),
        "t.toml:14:12: key `vrrp[0].use_vmac`: use_vmac with unicast_peers is not supported: unicast adverts leave with the port's MAC; drop one of them"
    );
}
