//! The state machine and [`Health::desired`] on their own; the effects on
//! a live table are tested through `Control` (control_tests.rs).

use super::*;
use std::time::Duration;

const TEXT: &str = r#"
[[ports]]
name = "p0"
device = "net_ring0"
addresses = ["10.0.0.1/24"]

[[services]]
protocol = "tcp"
vip = "10.0.0.100"
port = 80
sorry_server = { address = "10.0.0.99" }
health = { checker = "tcp", retries = 3, successes = 2, initial = "down" }
[[services.real_servers]]
address = "10.0.1.1"
[[services.real_servers]]
address = "10.0.1.2"
health = { checker = "none" }
weight = 0

[[services]]
protocol = "udp"
vip = "10.0.0.100"
port = 53
quiescent = true
health = { checker = "udp", initial = "down" }
[[services.real_servers]]
address = "10.0.1.3"
weight = 2
"#;

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn addrs(c: &Config, s: usize) -> Vec<(String, u16, u32)> {
    c.services[s]
        .real_servers
        .iter()
        .map(|r| (r.addr.to_string(), r.port, r.weight))
        .collect()
}

#[test]
fn desired_table_follows_states() {
    let cfg = conf::parse(TEXT, "t.toml").unwrap();
    let mut h = Health::new(&cfg, t0());
    // Unchecked servers are not tracked.
    assert_eq!(h.targets().len(), 2);
    let d = h.desired(&cfg);
    // Removal: the down server is left out; the unchecked one has weight
    // 0, so nothing is available and the sorry server is in.
    assert_eq!(
        addrs(&d, 0),
        [("10.0.1.2".into(), 80, 0), ("10.0.0.99".into(), 80, 1)]
    );
    // Quiescent: weight 0; no sorry server configured.
    assert_eq!(addrs(&d, 1), [("10.0.1.3".into(), 53, 0)]);
    let id = h.targets()[0].0;
    assert!(h.record(id, Ok(()), t0()).is_empty());
    assert_eq!(h.record(id, Ok(()), t0()).len(), 1);
    let d = h.desired(&cfg);
    assert_eq!(
        addrs(&d, 0),
        [("10.0.1.1".into(), 80, 1), ("10.0.1.2".into(), 80, 0)]
    );
}

#[test]
fn counters_reset_on_the_other_verdict_and_results_of_unknown_ids_are_ignored() {
    let cfg = conf::parse(
        &TEXT.replace(
            "initial = \"down\" }\n[[services.real_servers]]\naddress = \"10.0.1.1\"",
            "initial = \"up\" }\n[[services.real_servers]]\naddress = \"10.0.1.1\"",
        ),
        "t.toml",
    )
    .unwrap();
    let mut h = Health::new(&cfg, t0());
    let id = h.targets()[0].0;
    let fail = || Err("connect: connection refused".to_string());
    for _ in 0..2 {
        assert!(h.record(id, fail(), t0()).is_empty());
    }
    assert!(h.record(id, Ok(()), t0()).is_empty());
    for _ in 0..2 {
        assert!(h.record(id, fail(), t0()).is_empty());
    }
    let cmds = h.record(id, fail(), t0());
    assert_eq!(
        cmds,
        [Command::DelDest {
            svc: SvcKey::Addr {
                proto: Proto::Tcp,
                addr: "10.0.0.100".parse().unwrap(),
                port: 80
            },
            addr: "10.0.1.1".parse().unwrap(),
            port: 80
        }]
    );
    // Further failures change nothing.
    assert!(h.record(id, fail(), t0()).is_empty());
    assert!(h.record(9999, fail(), t0()).is_empty());
    assert_eq!(
        h.take_log(),
        ["health: TCP 10.0.0.100:80 -> 10.0.1.1:80 down (connect: connection refused) after 3 failures: removed"]
    );
}

#[test]
fn reconfigure_keeps_ids_and_state_of_servers_that_stay() {
    let cfg = conf::parse(TEXT, "t.toml").unwrap();
    let mut h = Health::new(&cfg, t0());
    let before = h.targets();
    let id = before[0].0;
    h.record(id, Ok(()), t0());
    h.record(id, Ok(()), t0());
    let cfg2 = conf::parse(&TEXT.replace("retries = 3", "retries = 4"), "t.toml").unwrap();
    h.reconfigure(&cfg2, t0() + Duration::from_secs(60));
    let after = h.targets();
    assert_eq!(
        after.iter().map(|t| t.0).collect::<Vec<_>>(),
        [id, before[1].0]
    );
    assert_eq!(after[0].1.health.retries, 4);
    // Still up: it is in the table.
    assert_eq!(addrs(&h.desired(&cfg2), 0)[0], ("10.0.1.1".into(), 80, 1));
}

#[test]
fn labels() {
    assert_eq!(svc_label(&SvcKey::Fwmark { mark: 7, v6: false }), "FWM 7");
    assert_eq!(
        svc_label(&SvcKey::Addr {
            proto: Proto::Udp,
            addr: "10.0.0.1".parse().unwrap(),
            port: 53
        }),
        "UDP 10.0.0.1:53"
    );
}
