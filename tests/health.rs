//! Health checks in a running ripvsd: verdicts change the table the
//! workers get, each change is one log line, and `ripvsadm --health`
//! shows the state. The checker is exec (a file per real server says
//! whether it is up), so no packet leaves the test; the network checkers
//! have their own tests against local servers (ctrl/src/health).

mod common;

use common::{ripvsadm, Daemon, Scratch};
use std::time::Duration;

/// Services etc., after `common::pcap_port`.
const CONFIG: &str = r#"
[[services]]
protocol = "tcp"
vip = "10.0.0.100"
port = 80
sorry_server = { address = "10.0.0.99", method = "nat" }
[services.health]
checker = "exec"
command = ["/bin/sh", "-c", "test -e DIR/up-$1", "check"]
interval = 0.2
timeout = 0.2
retries = 2
[[services.real_servers]]
address = "10.0.0.11"
weight = 3
[[services.real_servers]]
address = "10.0.0.12"
weight = 5
"#;

const WAIT: Duration = Duration::from_secs(30);

fn listing(d: &Daemon, args: &[&str]) -> String {
    let out = ripvsadm(&d.socket).args(args).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The real-server lines of `-Ln`, without counters.
fn servers(d: &Daemon) -> Vec<String> {
    listing(d, &["-Ln"])
        .lines()
        .filter(|l| l.starts_with("  -> ") && !l.contains("RemoteAddress"))
        .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn failures_and_recoveries_change_the_table_and_are_logged() {
    let dir = Scratch::new("health");
    common::write_pcap(&dir.path("none.pcap"), &[]);
    let cfg =
        (common::pcap_port("none.pcap") + CONFIG).replace("DIR", &dir.0.display().to_string());
    std::fs::write(dir.path("ripvs.toml"), &cfg).unwrap();
    std::fs::write(dir.path("up-10.0.0.11"), "").unwrap();
    let mut d = Daemon::start(&dir.path("ripvs.toml"));

    d.wait_for(
        "ripvsd: health: TCP 10.0.0.100:80 -> 10.0.0.12:80 down (exec: /bin/sh exited with status 1) after 2 failures: removed",
        WAIT,
    );
    assert_eq!(servers(&d), ["-> 10.0.0.11:80 Route 3"]);
    let h = listing(&d, &["--health", "-n"]);
    let lines: Vec<&str> = h.lines().collect();
    assert_eq!(lines[2], "TCP  10.0.0.100:80 remove 10.0.0.99:80 standby");
    let cols = |l: &str| l.split_whitespace().take(6).collect::<Vec<_>>().join(" ");
    assert!(
        cols(lines[3]).starts_with("-> 10.0.0.11:80 exec up 3 "),
        "{h}"
    );
    assert!(
        cols(lines[4]).starts_with("-> 10.0.0.12:80 exec down 5 "),
        "{h}"
    );
    assert!(
        lines[4].ends_with(" failed: exec: /bin/sh exited with status 1"),
        "{h}"
    );

    // The last server fails: the sorry server takes over.
    std::fs::remove_file(dir.path("up-10.0.0.11")).unwrap();
    d.wait_for(
        "ripvsd: health: TCP 10.0.0.100:80 sorry server 10.0.0.99:80 in: no real server available",
        WAIT,
    );
    assert_eq!(servers(&d), ["-> 10.0.0.99:80 Masq 1"]);

    // One recovers (one pass is enough): back with its weight, sorry out.
    std::fs::write(dir.path("up-10.0.0.12"), "").unwrap();
    d.wait_for(
        "ripvsd: health: TCP 10.0.0.100:80 -> 10.0.0.12:80 up after 1 success: reinstated with weight 5",
        WAIT,
    );
    d.wait_for(
        "ripvsd: health: TCP 10.0.0.100:80 sorry server 10.0.0.99:80 out: a real server is available",
        WAIT,
    );
    assert_eq!(servers(&d), ["-> 10.0.0.12:80 Route 5"]);
    let out = d.stop();
    let health: Vec<&String> = out.iter().filter(|l| l.contains(" health: ")).collect();
    assert_eq!(health.len(), 5, "{health:#?}");
}
