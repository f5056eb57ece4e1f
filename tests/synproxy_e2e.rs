//! The SYN proxy end to end: curl in a client namespace downloads files
//! of several sizes (up to a few MB, so window scaling, SACK and
//! timestamps are all at work) from nginx through a SYN-proxied NAT
//! service, byte-exact; SYNs from scapy get cookie SYN-ACKs that scapy
//! decodes (options, checksums) and leave no connection entry; the final
//! counters show cookies sent and validated and nothing rejected.
//! Needs root; one at a time with the other kernel-traffic tests.

mod common;

use common::topo::Topology;
use common::{counter, Daemon, Scratch};

const VIP: &str = "10.60.0.102";

/// Deterministic incompressible content (xorshift), so a byte dropped,
/// duplicated or misplaced anywhere shows.
fn content(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

const PROBE: &str = r#"
import sys
from scapy.all import IP, TCP, sr1, raw, conf
conf.verb = 0
vip = sys.argv[1]
linux = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (12345, 0)), ("NOP", None), ("WScale", 7)]
for sport, opts in [(41001, linux), (41002, [("MSS", 1300)]), (41003, [])]:
    r = sr1(IP(dst=vip) / TCP(sport=sport, dport=80, flags="S", seq=1000, window=512, options=opts), timeout=3)
    if r is None:
        print(sport, "no answer")
        continue
    t = r[TCP]
    again = IP(raw(r))
    del again.chksum
    del again[TCP].chksum
    again = IP(raw(again))
    ok = again.chksum == r.chksum and again[TCP].chksum == t.chksum
    shown = [("Timestamp-ecr", v[1]) if k == "Timestamp" else (k, v) for k, v in t.options]
    print(sport, r.src, t.sport, t.flags, t.ack, t.window, shown, "checksums", ok)
"#;

#[test]
fn curl_downloads_through_a_syn_proxied_nat_service() {
    downloads("sp", "[1]");
}

/// Two workers: af_packet's one queue gives worker 0 every frame, and
/// it hands the other's (cookies, held packets, the server's SYN-ACK)
/// over; both check cookies with the same key.
#[test]
fn curl_downloads_through_a_syn_proxied_nat_service_two_workers() {
    downloads("sq", "[1, 2]");
}

fn downloads(tag: &str, workers: &str) {
    common::require_root();
    let p = format!("{tag}{}", std::process::id() % 10000);
    let topo = Topology::up(&p);
    let dir = Scratch::new(&format!("synproxy-e2e-{tag}"));
    let cfg = common::topo::director_config(&p, workers, false);
    std::fs::write(dir.path("ripvs.toml"), cfg).unwrap();
    let daemon = Daemon::start(&dir.path("ripvs.toml"));
    let adm = |args: &[&str]| {
        let out = common::ripvsadm(&daemon.socket)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ripvsadm {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let vs = format!("{VIP}:80");
    adm(&["-A", "-t", &vs, "-s", "rr", "-j", "enable"]);
    adm(&["-a", "-t", &vs, "-r", "10.61.0.11:80", "-m"]);
    // A DR server cannot join it.
    let out = common::ripvsadm(&daemon.socket)
        .args(["-a", "-t", &vs, "-r", "10.60.0.12:80", "-g"])
        .output()
        .unwrap();
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).as_ref()
        ),
        (
            Some(255),
            "Invalid operation.  Possibly wrong module version, address not unicast, ...\n"
        )
    );
    assert_eq!(
        adm(&["-L", "-n"]),
        format!(
            "IP Virtual Server version 1.2.1 (size=65536)\n\
             Prot LocalAddress:Port Scheduler Flags\n  \
             -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
             TCP  {VIP}:80 rr synproxy\n  \
             -> 10.61.0.11:80                Masq    1      0          0         \n"
        )
    );

    // SYNs alone: cookie SYN-ACKs from the VIP, and no entries.
    let out = topo.run("c1", &["/usr/bin/python3", "-c", PROBE, VIP]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text,
        format!(
            "41001 {VIP} 80 SA 1001 65535 [('MSS', 1460), ('SAckOK', b''), ('Timestamp-ecr', 12345), ('NOP', None), ('WScale', 7)] checksums True\n\
             41002 {VIP} 80 SA 1001 65535 [('MSS', 1300)] checksums True\n\
             41003 {VIP} 80 SA 1001 65535 [('MSS', 536)] checksums True\n"
        )
    );
    let conns = adm(&["-L", "-n", "-c"]);
    assert_eq!(conns.lines().count(), 2, "no entry for a SYN: {conns}");

    // Downloads of several sizes, byte-exact.
    let www = topo.server_dir("r1").join("www");
    let sizes = [1usize, 1448, 100_000, 1 << 20, 3_000_000, 5_000_000];
    for (i, &n) in sizes.iter().enumerate() {
        std::fs::write(www.join(format!("f{i}")), content(n, 7 + i as u64)).unwrap();
    }
    for (i, &n) in sizes.iter().enumerate() {
        let got = dir.path(&format!("got{i}"));
        let url = format!("http://{VIP}/f{i}");
        let out = topo.run(
            "c1",
            &["curl", "-sS", "-m", "30", "-o", got.to_str().unwrap(), &url],
        );
        assert!(
            out.status.success(),
            "{url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let body = std::fs::read(&got).unwrap();
        assert_eq!(body.len(), n, "{url}");
        assert!(body == content(n, 7 + i as u64), "{url}: content differs");
    }
    // And several connections in one curl run, one after another.
    let names = topo.http("c1", VIP, 20);
    assert!(names.iter().all(|n| n == "r1"), "{names:?}");

    let log = daemon.stop();
    for l in log
        .iter()
        .filter(|l| l.starts_with("drop ") || l.contains("synproxy"))
    {
        println!("{l}");
    }
    let downloads = (sizes.len() + 20) as u64;
    assert_eq!(
        counter(&log, "event", "synproxy_validated"),
        downloads,
        "{log:?}"
    );
    assert!(
        counter(&log, "event", "synproxy_cookies_sent") >= downloads + 3,
        "{log:?}"
    );
    assert_eq!(counter(&log, "drop", "synproxy_rejected"), 0, "{log:?}");
    assert_eq!(counter(&log, "drop", "synproxy_hold_full"), 0, "{log:?}");
    // The client kernel's RSTs to the probes' SYN-ACKs.
    assert_eq!(counter(&log, "drop", "no_connection"), 3, "{log:?}");
    drop(topo);
}
