//! Real TCP through ripvsd: curl in a client namespace against HTTP
//! servers in real-server namespaces, through a DR service and a NAT
//! service (tools/topology builds the network; ripvsd runs on
//! net_af_packet ports). Needs root.

mod common;

use common::{counter, Daemon, Scratch};
use std::process::Command;

/// The topology, torn down even when the test fails.
struct Topology(String);

impl Topology {
    fn up(prefix: &str) -> Topology {
        let t = Topology(prefix.to_string());
        let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tools/topology"))
            .args(["up", prefix])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "topology: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t
    }
    fn curl(&self, url: &str) -> String {
        let ns = format!("{}c", self.0);
        let out = Command::new("ip")
            .args(["netns", "exec", &ns, "curl", "-s", "-m", "5", url])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        let _ = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tools/topology"))
            .args(["down", &self.0])
            .output();
    }
}

/// One at a time within this binary too (nextest's test group covers
/// separate processes): see .config/nextest.toml.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs the DR and NAT services on `workers` and returns ripvsd's final
/// counters.
fn through_ripvsd(prefix: &str, workers: &str) -> Vec<String> {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(
        String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout)
            .unwrap()
            .trim(),
        "0",
        "needs root (namespaces)"
    );
    let p = format!("{prefix}{}", std::process::id() % 10000);
    let topo = Topology::up(&p);
    let dir = Scratch::new("e2e-smoke");
    let cfg = format!(
        r#"
[eal]
args = ["--no-huge", "--no-pci", "-m", "256", "--no-shconf", "--log-level=error"]
worker_lcores = {workers}
[dataplane]
max_connections = 65536
[[ports]]
name = "p0"
device = "net_af_packet0,iface={p}d0"
addresses = ["10.60.0.1/24"]
exception = {{ enabled = false }}
[[ports]]
name = "p1"
device = "net_af_packet1,iface={p}d1"
addresses = ["10.61.0.1/24"]
exception = {{ enabled = false }}
[[services]]
protocol = "tcp"
vip = "10.60.0.100"
port = 80
scheduler = "rr"
[[services.real_servers]]
address = "10.60.0.11"
[[services]]
protocol = "tcp"
vip = "10.60.0.100"
port = 8080
scheduler = "rr"
[[services.real_servers]]
address = "10.61.0.12"
port = 80
method = "nat"
"#
    );
    std::fs::write(dir.path("ripvs.toml"), cfg).unwrap();
    let d = Daemon::start(&dir.path("ripvs.toml"));
    for _ in 0..5 {
        assert_eq!(
            topo.curl("http://10.60.0.100/"),
            format!("{p}r1"),
            "DR service"
        );
        assert_eq!(
            topo.curl("http://10.60.0.100:8080/"),
            format!("{p}r2"),
            "NAT service"
        );
    }
    let log = d.stop();
    assert_eq!(counter(&log, "drop", "no_connection"), 0, "{log:?}");
    assert_eq!(counter(&log, "drop", "unknown_destination"), 0, "{log:?}");
    log
}

#[test]
fn http_through_dr_and_nat_services() {
    let log = through_ripvsd("s", "[1]");
    assert_eq!(
        counter(&log, "event", "redirected"),
        0,
        "one worker owns everything"
    );
}

#[test]
fn two_workers_hand_packets_to_their_owner() {
    // af_packet ports have one queue: worker 0 receives everything and
    // hands what worker 1 owns over (NAT replies included); worker 1
    // transmits through worker 0's queue.
    let log = through_ripvsd("w", "[1, 2]");
    assert!(counter(&log, "event", "redirected") > 0, "{log:?}");
}
