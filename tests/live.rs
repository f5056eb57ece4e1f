//! Live changes under traffic: a stream of UDP datagrams through one NAT
//! service, every one of them a new connection scheduled by the worker,
//! keeps flowing without a single loss while ripvsadm adds and removes
//! 1,000 other services (each add and each delete a new snapshot the
//! worker picks up between bursts). Real kernel sockets on both sides,
//! ripvsd on net_af_packet ports. Needs root.

mod common;

use common::{counter, ripvsadm, Daemon, Scratch};
use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn sh(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn run(args: &[&str]) {
    let out = sh(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two namespaces, each wired to one director port by a veth pair: the
/// client on 10.70.0.0/24 (director p0, VIP 10.70.0.100), the real server
/// on 10.71.0.0/24 (director p1) with its default route through the
/// director, as NAT needs. Removed on drop, even when the test fails.
struct Net {
    p: String,
}

impl Net {
    fn up(p: &str) -> Net {
        let net = Net { p: p.to_string() };
        net.down();
        for (ns, inner, outer, addr, gw) in [
            ("c", "c0", "d0", "10.70.0.2/24", "10.70.0.1"),
            ("s", "eth0", "d1", "10.71.0.12/24", "10.71.0.1"),
        ] {
            let ns = format!("{p}{ns}");
            let outer = format!("{p}{outer}");
            run(&["ip", "netns", "add", &ns]);
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
            run(&[
                "ip", "link", "add", &outer, "type", "veth", "peer", "name", inner, "netns", &ns,
            ]);
            // Checksums filled in by the kernel, not left to an offload
            // that af_packet never performs (dpdk-notes).
            run(&[
                "ip", "netns", "exec", &ns, "ethtool", "-K", inner, "tx", "off", "tso", "off",
                "gso", "off",
            ]);
            run(&[
                "ethtool", "-K", &outer, "tx", "off", "tso", "off", "gso", "off",
            ]);
            run(&[
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{outer}.disable_ipv6=1"),
            ]);
            run(&["ip", "link", "set", &outer, "up"]);
            run(&["ip", "-n", &ns, "link", "set", inner, "up"]);
            run(&["ip", "-n", &ns, "addr", "add", addr, "dev", inner]);
            run(&["ip", "-n", &ns, "route", "add", "default", "via", gw]);
        }
        net
    }

    fn spawn(&self, ns: &str, script: &str, args: &[&str]) -> Child {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &format!("{}{ns}", self.p),
                "python3",
                "-c",
                script,
            ])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn down(&self) {
        for ns in ["c", "s"] {
            let _ = sh(&["ip", "netns", "del", &format!("{}{ns}", self.p)]);
        }
        for l in ["d0", "d1"] {
            let _ = sh(&["ip", "link", "del", &format!("{}{l}", self.p)]);
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.down();
    }
}

/// Counts datagrams carrying distinct sequence numbers; ends one second
/// after the last, printing how many arrived and the highest number seen.
const RECEIVER: &str = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("0.0.0.0", 9000))
print("ready", flush=True)
seen = set()
while True:
    try:
        data, _ = s.recvfrom(64)
    except socket.timeout:
        break
    seen.add(int(data))
    s.settimeout(1.0)
print(len(seen), max(seen), flush=True)
"#;

/// Sends numbered datagrams to the VIP, each from a fresh socket (so each
/// is a new connection the worker must schedule), about one a millisecond,
/// until stdin closes; prints how many it sent.
const SENDER: &str = r#"
import socket, sys, select, time
n = 0
next_at = time.monotonic()
while True:
    if select.select([sys.stdin], [], [], 0)[0]:
        break
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(str(n).encode(), ("10.70.0.100", 9000))
    s.close()
    n += 1
    if n == 1:
        # Both ends' next hops are resolved on the first datagram (the
        # client's ARP for the VIP, the director's for the real server,
        # which holds at most 8 packets meanwhile): let that finish.
        time.sleep(0.5)
        next_at = time.monotonic()
    next_at += 0.001
    delay = next_at - time.monotonic()
    if delay > 0:
        time.sleep(delay)
print(n, flush=True)
"#;

#[test]
fn a_thousand_services_come_and_go_without_losing_a_datagram() {
    common::require_root();
    let p = format!("lv{}", std::process::id() % 100000);
    let net = Net::up(&p);
    let dir = Scratch::new("live");
    let cfg = format!(
        r#"
[eal]
args = ["--no-huge", "--no-pci", "-m", "256", "--no-shconf", "--log-level=error"]
worker_lcores = [1]
[dataplane]
max_connections = 262144
[[ports]]
name = "p0"
device = "net_af_packet0,iface={p}d0"
addresses = ["10.70.0.1/24"]
exception = {{ enabled = false }}
[[ports]]
name = "p1"
device = "net_af_packet1,iface={p}d1"
addresses = ["10.71.0.1/24"]
exception = {{ enabled = false }}
[[services]]
protocol = "udp"
vip = "10.70.0.100"
port = 9000
scheduler = "rr"
[[services.real_servers]]
address = "10.71.0.12"
method = "nat"
"#
    );
    std::fs::write(dir.path("ripvs.toml"), cfg).unwrap();
    let d = Daemon::start(&dir.path("ripvs.toml"));
    let adm = |args: &[&str], input: &str| {
        let mut c = ripvsadm(&d.socket)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ripvsadm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };

    let mut receiver = net.spawn("s", RECEIVER, &[]);
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(receiver.stdout.as_mut().unwrap()),
        &mut ready,
    )
    .unwrap();
    assert_eq!(ready, "ready\n");
    let mut sender = Command::new("ip")
        .args(["netns", "exec", &format!("{p}c"), "python3", "-c", SENDER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();

    // Traffic first, then the churn: 1,000 services added one command (one
    // snapshot) at a time, a real server each in one restore, then each
    // deleted on its own.
    std::thread::sleep(Duration::from_millis(500));
    let churn = Instant::now();
    for i in 0..1000 {
        adm(
            &[
                "-A",
                "-t",
                &format!("10.70.0.100:{}", 10000 + i),
                "-s",
                "wlc",
            ],
            "",
        );
    }
    let reals: String = (0..1000)
        .map(|i| format!("-a -t 10.70.0.100:{} -r 10.71.0.12:80 -m\n", 10000 + i))
        .collect();
    adm(&["-R"], &reals);
    assert_eq!(adm(&["-S", "-n"], "").lines().count(), 2 + 2000);
    for i in 0..1000 {
        adm(&["-D", "-t", &format!("10.70.0.100:{}", 10000 + i)], "");
    }
    let churned = churn.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    drop(sender.stdin.take());
    let sent: u64 = String::from_utf8(sender.wait_with_output().unwrap().stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let received = String::from_utf8(receiver.wait_with_output().unwrap().stdout).unwrap();
    let listed = adm(&["-L", "-n", "--stats", "--exact"], "");
    let log = d.stop();
    drop(net);
    println!("churn took {churned:?}; sent {sent}; receiver: {received}; {listed}");
    assert!(
        sent > 1000,
        "the stream ran through the churn ({sent} sent)"
    );
    // Every datagram arrived: as many distinct numbers as were sent, the
    // last one included.
    assert_eq!(
        received,
        format!("{sent} {}\n", sent - 1),
        "ripvsd's counters: {log:#?}"
    );
    // And the director counted each one into the service that stayed.
    let inpkts: Vec<&str> = listed
        .lines()
        .filter(|l| l.starts_with("UDP  10.70.0.100:9000"))
        .flat_map(|l| l.split_whitespace().nth(3))
        .collect();
    assert_eq!(inpkts, [sent.to_string()], "{listed}");
    assert_eq!(counter(&log, "drop", "no_service"), 0, "{log:?}");
}
