//! `[sync]` and `[ipvs] backup_only`: what parses, and the exact error for
//! each way to get them wrong.

use conf::*;
use std::net::Ipv4Addr;

const P0: &str =
    "[[ports]]\nname = \"p0\"\ndevice = \"net_ring0\"\naddresses = [\"10.0.0.1/24\"]\n";

fn parse_with(text: &str) -> Config {
    match parse(&format!("{P0}{text}"), "t.toml") {
        Ok(c) => c,
        Err(e) => panic!("{text:?} refused: {e}"),
    }
}

fn err(text: &str) -> String {
    match parse(&format!("{P0}{text}"), "t.toml") {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

/// `[sync]` (line 5), a state (line 6) and an interface (line 7), then
/// `rest` from line 8.
fn sync(state: &str, rest: &str) -> String {
    err(&format!(
        "[sync]\nstate = \"{state}\"\ninterface = \"rip-p0\"\n{rest}"
    ))
}

#[test]
fn absent_or_none_runs_no_daemon() {
    let c = parse_with("");
    assert_eq!(c.sync, Sync::default());
    assert_eq!(
        Sync::default(),
        Sync {
            master: false,
            backup: false,
            interface: None,
            syncid: 0,
            group: Ipv4Addr::new(224, 0, 0, 81),
            port: 8848,
            ttl: 1,
            maxlen: None,
            version: 1,
            threshold: 3,
            period: 50,
            refresh_period: 0,
            retries: 0,
            persist_mode: false,
            full_sync: true,
        }
    );
    assert!(!c.ipvs.backup_only);
    // "none" needs no interface; the other keys are still checked.
    let c = parse_with("[sync]\nstate = \"none\"\nsyncid = 7\n");
    assert_eq!(
        c.sync,
        Sync {
            syncid: 7,
            ..Sync::default()
        }
    );
    assert_eq!(
        err("[sync]\nstate = \"none\"\nttl = 0\n"),
        "t.toml:7:7: key `sync.ttl`: 0 is out of range (expected 1..=255)"
    );
}

#[test]
fn every_key_set() {
    let c = parse_with(
        r#"[ipvs]
backup_only = true

[sync]
state = "both"
interface = "eth-mgmt0"
syncid = 255
group = "239.1.2.3"
port = 65535
ttl = 255
maxlen = 65507
version = 0
threshold = 0
period = 0
refresh_period = 32767
retries = 3
persist_mode = true
full_sync = false
"#,
    );
    assert!(c.ipvs.backup_only);
    assert_eq!(
        c.ipvs,
        Ipvs {
            backup_only: true,
            ..Ipvs::default()
        }
    );
    assert_eq!(
        c.sync,
        Sync {
            master: true,
            backup: true,
            interface: Some("eth-mgmt0".into()),
            syncid: 255,
            group: Ipv4Addr::new(239, 1, 2, 3),
            port: 65535,
            ttl: 255,
            maxlen: Some(65507),
            version: 0,
            threshold: 0,
            period: 0,
            refresh_period: 32767,
            retries: 3,
            persist_mode: true,
            full_sync: false,
        }
    );
}

#[test]
fn roles_and_maxlen_ranges() {
    let role = |state: &str, maxlen: i64| {
        let s = parse_with(&format!(
            "[sync]\nstate = \"{state}\"\ninterface = \"rip-p0\"\nmaxlen = {maxlen}\n"
        ))
        .sync;
        (s.master, s.backup, s.maxlen)
    };
    assert_eq!(role("master", 1), (true, false, Some(1)));
    assert_eq!(role("backup", 1024), (false, true, Some(1024)));
    assert_eq!(role("both", 1024), (true, true, Some(1024)));
    assert_eq!(role("none", 1), (false, false, Some(1)));
    assert_eq!(
        sync("master", "maxlen = 0\n"),
        "t.toml:8:10: key `sync.maxlen`: 0 is out of range (expected 1..=65507)"
    );
    assert_eq!(
        sync("master", "maxlen = 65508\n"),
        "t.toml:8:10: key `sync.maxlen`: 65508 is out of range (expected 1..=65507)"
    );
    // The kernel would clamp these up to 1024; the file is refused instead.
    assert_eq!(
        sync("backup", "maxlen = 1023\n"),
        "t.toml:8:10: key `sync.maxlen`: 1023 is out of range for a backup (expected 1024..=65507)"
    );
    assert_eq!(
        sync("both", "maxlen = 1\n"),
        "t.toml:8:10: key `sync.maxlen`: 1 is out of range for a backup (expected 1024..=65507)"
    );
    assert_eq!(
        sync("backup", "maxlen = 65508\n"),
        "t.toml:8:10: key `sync.maxlen`: 65508 is out of range (expected 1..=65507)"
    );
}

#[test]
fn state_and_interface() {
    assert_eq!(
        err("[sync]\nstate = \"slave\"\n"),
        "t.toml:6:9: key `sync.state`: invalid sync state \"slave\" (expected \"none\", \"master\", \"backup\" or \"both\")"
    );
    for state in ["master", "backup", "both"] {
        assert_eq!(
            err(&format!("[sync]\nstate = \"{state}\"\n")),
            format!("t.toml:6:9: key `sync.interface`: required when state is \"{state}\": the kernel interface the sync multicast goes through")
        );
    }
    assert_eq!(
        err("[sync]\nstate = \"master\"\ninterface = \"a-very-long-name\"\n"),
        "t.toml:7:13: key `sync.interface`: invalid interface name \"a-very-long-name\" (expected 1-15 bytes without \"/\", \":\" or spaces)"
    );
    assert_eq!(
        err("[sync]\ninterface = \"\"\n"),
        "t.toml:6:13: key `sync.interface`: invalid interface name \"\" (expected 1-15 bytes without \"/\", \":\" or spaces)"
    );
    assert_eq!(
        err("[sync]\nstate = 1\n"),
        "t.toml:6:9: key `sync.state`: invalid type: integer `1`, expected a string"
    );
}

#[test]
fn group_port_ttl_syncid_version_retries() {
    assert_eq!(
        sync("master", "group = \"10.0.0.1\"\n"),
        "t.toml:8:9: key `sync.group`: address 10.0.0.1 is not multicast (expected one in 224.0.0.0/4)"
    );
    assert_eq!(
        sync("master", "group = \"ff02::12\"\n"),
        "t.toml:8:9: key `sync.group`: IPv6 is not supported yet"
    );
    assert_eq!(
        sync("master", "group = \"224.0.0\"\n"),
        "t.toml:8:9: key `sync.group`: invalid IPv4 address \"224.0.0\""
    );
    assert_eq!(
        sync("master", "port = 0\n"),
        "t.toml:8:8: key `sync.port`: 0 is out of range (expected 1..=65535)"
    );
    assert_eq!(
        sync("master", "port = 65536\n"),
        "t.toml:8:8: key `sync.port`: 65536 is out of range (expected 1..=65535)"
    );
    assert_eq!(
        sync("master", "ttl = 256\n"),
        "t.toml:8:7: key `sync.ttl`: 256 is out of range (expected 1..=255)"
    );
    assert_eq!(
        sync("master", "syncid = 256\n"),
        "t.toml:8:10: key `sync.syncid`: 256 is out of range (expected 0..=255)"
    );
    assert_eq!(
        sync("master", "syncid = -1\n"),
        "t.toml:8:10: key `sync.syncid`: -1 is out of range (expected 0..=255)"
    );
    assert_eq!(
        sync("master", "version = 2\n"),
        "t.toml:8:11: key `sync.version`: 2 is out of range (expected 0..=1)"
    );
    assert_eq!(
        sync("master", "retries = 4\n"),
        "t.toml:8:11: key `sync.retries`: 4 is out of range (expected 0..=3)"
    );
    assert_eq!(
        sync("master", "persist_mode = 1\n"),
        "t.toml:8:16: key `sync.persist_mode`: invalid type: integer `1`, expected a boolean"
    );
}

#[test]
fn threshold_period_and_refresh() {
    assert_eq!(
        sync("master", "threshold = 50\n"),
        "t.toml:8:13: key `sync.threshold`: threshold 50 must be below period 50 (or period 0), as the kernel's sync_threshold requires"
    );
    assert_eq!(
        sync("master", "threshold = 9\nperiod = 4\n"),
        "t.toml:8:13: key `sync.threshold`: threshold 9 must be below period 4 (or period 0), as the kernel's sync_threshold requires"
    );
    assert_eq!(
        sync("master", "period = 3\n"),
        "t.toml:8:10: key `sync.period`: period 3 must be above threshold 3 (or 0), as the kernel's sync_threshold requires"
    );
    assert_eq!(
        sync("master", "threshold = -1\n"),
        "t.toml:8:13: key `sync.threshold`: -1 is out of range (expected 0..=2147483647)"
    );
    assert_eq!(
        sync("master", "period = 2147483648\n"),
        "t.toml:8:10: key `sync.period`: 2147483648 is out of range (expected 0..=2147483647)"
    );
    // Period 0 takes any threshold.
    let s = parse_with("[sync]\nthreshold = 1000\nperiod = 0\n").sync;
    assert_eq!((s.threshold, s.period), (1000, 0));
    assert_eq!(
        sync("master", "refresh_period = 32768\n"),
        "t.toml:8:18: key `sync.refresh_period`: 32768 is out of range (expected 0..=32767: ripvs keeps each connection's next sync time in 16-bit seconds, which orders times less than 2^15 s apart)"
    );
    assert_eq!(
        sync("master", "refresh_period = -1\n"),
        "t.toml:8:18: key `sync.refresh_period`: -1 is out of range (expected 0..=32767: ripvs keeps each connection's next sync time in 16-bit seconds, which orders times less than 2^15 s apart)"
    );
}

#[test]
fn unknown_keys_and_backup_only_type() {
    assert_eq!(
        sync("master", "mcast_ttl = 1\n"),
        "t.toml:8:1: key `sync.mcast_ttl`: unknown key `mcast_ttl`, expected one of `state`, `interface`, `syncid`, `group`, `port`, `ttl`, `maxlen`, `version`, `threshold`, `period`, `refresh_period`, `retries`, `persist_mode`, `full_sync`"
    );
    assert_eq!(
        err("[ipvs]\nbackup_only = \"yes\"\n"),
        "t.toml:6:15: key `ipvs.backup_only`: invalid type: string \"yes\", expected a boolean"
    );
    assert_eq!(
        parse(&format!("sync = 1\n{P0}"), "t.toml")
            .unwrap_err()
            .to_string(),
        "t.toml:1:8: key `sync`: invalid type: integer `1`, expected a table"
    );
}
