//! Packet-exact tests: ripvsd runs as its own process on `net_pcap`
//! devices; frames go in from a pcap file and every frame that comes out
//! (of the port, or of the exception path) is compared byte for byte.

mod common;

use common::frames::{arp, echo, eth, ipv4, tcp_syn, BCAST};
use common::{counter, read_pcap, write_pcap, Daemon, Scratch};

const DIR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const CLIENT_MAC: [u8; 6] = [0x02, 0xc0, 0, 0, 0, 0x02];
const OTHER_MAC: [u8; 6] = [0x02, 0xc0, 0, 0, 0, 0x03];

struct Run {
    out: Vec<Vec<u8>>,
    to_kernel: Vec<Vec<u8>>,
    log: Vec<String>,
}

/// Runs ripvsd with one pcap port (10.0.0.1/24, VIP 10.0.0.100) whose
/// exception path is another pcap, feeding `input`; `extra` is appended to
/// the config.
fn run(name: &str, input: &[Vec<u8>], extra: &str) -> Run {
    let dir = Scratch::new(name);
    write_pcap(&dir.path("in.pcap"), input);
    write_pcap(&dir.path("none.pcap"), &[]);
    let cfg = common::pcap_port("in.pcap").replace("DIR", &dir.0.display().to_string())
        + &format!(
            "\n[[services]]\nprotocol = \"tcp\"\nvip = \"10.0.0.100\"\nport = 80\n{extra}\n"
        );
    std::fs::write(dir.path("ripvs.toml"), cfg).unwrap();
    let d = Daemon::start(&dir.path("ripvs.toml"));
    // net_pcap replays its file at once; give the worker time to drain it.
    std::thread::sleep(std::time::Duration::from_millis(700));
    let log = d.stop();
    Run {
        out: read_pcap(&dir.path("out.pcap")),
        to_kernel: read_pcap(&dir.path("kernel.pcap")),
        log,
    }
}

/// tshark's verdict on a frame's IPv4 and ICMP checksums and its ICMP type:
/// "ip.checksum.status,icmp.checksum.status,icmp.type" (status 1 is good,
/// 0 bad, 2 unverified).
fn tshark_checksums(frame: &[u8]) -> String {
    let dir = Scratch::new("tshark");
    write_pcap(&dir.path("f.pcap"), &[frame.to_vec()]);
    let out = std::process::Command::new("tshark")
        .args([
            "-o",
            "ip.check_checksum:TRUE",
            "-T",
            "fields",
            "-E",
            "separator=,",
        ])
        .args([
            "-e",
            "ip.checksum.status",
            "-e",
            "icmp.checksum.status",
            "-e",
            "icmp.type",
            "-r",
        ])
        .arg(dir.path("f.pcap"))
        .output()
        .expect("tshark (tools/setup installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn garps() -> Vec<Vec<u8>> {
    ["10.0.0.1", "10.0.0.100"]
        .iter()
        .map(|a| eth(BCAST, DIR_MAC, 0x0806, &arp(1, DIR_MAC, a, [0; 6], a)))
        .collect()
}

fn ping(src: &str, dst: &str, mac: [u8; 6]) -> Vec<u8> {
    eth(
        DIR_MAC,
        mac,
        0x0800,
        &ipv4(src, dst, 1, 64, &echo(8, 0x4242, 1, &[0x61; 56])),
    )
}

fn pong(src: &str, dst: &str, mac: [u8; 6]) -> Vec<u8> {
    eth(
        mac,
        DIR_MAC,
        0x0800,
        &ipv4(src, dst, 1, 64, &echo(0, 0x4242, 1, &[0x61; 56])),
    )
}

#[test]
fn arp_request_for_a_vip_gets_the_exact_reply() {
    let req = eth(
        BCAST,
        CLIENT_MAC,
        0x0806,
        &arp(1, CLIENT_MAC, "10.0.0.2", [0; 6], "10.0.0.100"),
    );
    let r = run("arp-vip", &[req], "");
    let reply = eth(
        CLIENT_MAC,
        DIR_MAC,
        0x0806,
        &arp(2, DIR_MAC, "10.0.0.100", CLIENT_MAC, "10.0.0.2"),
    );
    assert_eq!(r.out, [garps(), vec![reply]].concat());
    assert_eq!(counter(&r.log, "event", "arp_replies_sent"), 1);
}

#[test]
fn echo_to_an_interface_address_gets_the_exact_reply() {
    // A static neighbour, so the reply needs no resolution.
    let neigh =
        "[[neighbours]]\naddress = \"10.0.0.2\"\nmac = \"02:c0:00:00:00:02\"\nport = \"p0\"\n";
    let r = run(
        "echo-iface",
        &[ping("10.0.0.2", "10.0.0.1", CLIENT_MAC)],
        neigh,
    );
    assert_eq!(
        r.out,
        [garps(), vec![pong("10.0.0.1", "10.0.0.2", CLIENT_MAC)]].concat()
    );
    // An independent decoder agrees the checksums are right.
    assert_eq!(tshark_checksums(&r.out[2]), "1,1,0");
    assert_eq!(counter(&r.log, "event", "echo_replies_sent"), 1);
    assert_eq!(counter(&r.log, "drops", "total"), 0, "{:?}", r.log);
}

#[test]
fn a_frame_to_an_unknown_address_is_dropped_and_counted() {
    let r = run("unknown", &[ping("10.0.0.2", "10.0.0.77", CLIENT_MAC)], "");
    assert_eq!(r.out, garps());
    assert!(r.to_kernel.is_empty());
    assert_eq!(
        counter(&r.log, "drop", "unknown_destination"),
        1,
        "{:?}",
        r.log
    );
    assert!(r.log.iter().any(|l| l == "drops total 1"), "{:?}", r.log);
    assert!(
        r.log
            .iter()
            .any(|l| l.starts_with("port p0 (net_pcap0,") && l.contains("rx_packets 1 ")),
        "{:?}",
        r.log
    );
}

#[test]
fn ssh_syn_to_the_director_comes_out_of_the_exception_path() {
    let syn = eth(
        DIR_MAC,
        CLIENT_MAC,
        0x0800,
        &tcp_syn("10.0.0.2", "10.0.0.1", 40000, 22),
    );
    let r = run("exception", std::slice::from_ref(&syn), "");
    assert_eq!(r.to_kernel, vec![syn]);
    assert_eq!(r.out, garps());
    assert_eq!(counter(&r.log, "event", "exception_to_kernel"), 1);
}

#[test]
fn unresolved_next_hop_is_asked_for_and_the_packet_sent_on_reply() {
    let reply = eth(
        DIR_MAC,
        OTHER_MAC,
        0x0806,
        &arp(2, OTHER_MAC, "10.0.0.3", DIR_MAC, "10.0.0.1"),
    );
    let r = run(
        "resolve",
        &[ping("10.0.0.3", "10.0.0.100", OTHER_MAC), reply.clone()],
        "",
    );
    let who_has = eth(
        BCAST,
        DIR_MAC,
        0x0806,
        &arp(1, DIR_MAC, "10.0.0.1", [0; 6], "10.0.0.3"),
    );
    assert_eq!(
        r.out,
        [
            garps(),
            vec![who_has, pong("10.0.0.100", "10.0.0.3", OTHER_MAC)]
        ]
        .concat()
    );
    // The ARP reply also reached the kernel's side, for its own cache.
    assert_eq!(r.to_kernel, vec![reply]);
    assert_eq!(counter(&r.log, "event", "neigh_resolved"), 1);
}

/// AnonHugePages of process `pid`, in kB (from /proc/PID/smaps_rollup).
fn anon_huge_kb(pid: u32) -> u64 {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    rollup
        .lines()
        .find_map(|l| l.strip_prefix("AnonHugePages:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no AnonHugePages in smaps_rollup:\n{rollup}"))
}

/// The worker's connection table (a million 64-byte entries here, 64 MiB)
/// is advised onto transparent huge pages before it is first written, so
/// with THP in `madvise` mode (Debian's default) it is backed by 2 MiB
/// pages; a small table, which holds no whole huge page, stays on 4 KiB
/// ones, and with it the process has none (so the huge pages of the first
/// run are the table's, not DPDK's or the allocator's).
#[test]
fn the_connection_table_is_on_transparent_huge_pages() {
    let mode =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    if mode.is_empty() || mode.contains("[never]") {
        eprintln!("SKIPPED: transparent huge pages are off on this machine ({mode:?})");
        return;
    }
    let huge_kb = |max_connections: u32, said: &str| {
        let dir = Scratch::new(&format!("thp{max_connections}"));
        write_pcap(&dir.path("in.pcap"), &[]);
        write_pcap(&dir.path("none.pcap"), &[]);
        let cfg = common::pcap_port("in.pcap").replace("DIR", &dir.0.display().to_string())
            + &format!("\n[dataplane]\nmax_connections = {max_connections}\n");
        std::fs::write(dir.path("ripvs.toml"), cfg).unwrap();
        let mut d = Daemon::start(&dir.path("ripvs.toml"));
        d.wait_for(said, std::time::Duration::from_secs(10));
        // Workers answer a connection listing from their loop, so once it
        // is answered the table has been written.
        let listed = common::ripvsadm(&d.socket)
            .args(["-L", "-n", "-c"])
            .output()
            .unwrap();
        assert!(listed.status.success(), "{listed:?}");
        let kb = anon_huge_kb(d.pid());
        d.stop();
        kb
    };
    let big = huge_kb(
        1 << 20,
        "connection tables (64 MiB each) on transparent huge pages",
    );
    assert!(big >= 32 << 10, "{big} kB of huge pages for a 64 MiB table");
    let small = huge_kb(1024, "connection tables (0 MiB each) on 4 KiB pages");
    assert_eq!(small, 0, "huge pages without a table to put on them");
}

/// scapy's reading of a TCP frame: addresses, ports, flags, ack, window,
/// options, and whether both checksums are what it computes itself.
fn scapy_tcp(frame: &[u8]) -> String {
    let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
    let script = r#"
import sys
from scapy.all import Ether, IP, TCP, raw
p = Ether(bytes.fromhex(sys.argv[1]))
ip, t = p[IP], p[TCP]
again = IP(raw(ip))
del again.chksum
del again[TCP].chksum
again = IP(raw(again))
ok = again.chksum == ip.chksum and again[TCP].chksum == t.chksum
opts = [("Timestamp-ecr", v[1]) if k == "Timestamp" else (k, v) for k, v in t.options]
print(ip.src, ip.dst, ip.ttl, t.sport, t.dport, t.flags, t.ack, t.window, opts, ok)
"#;
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script, &hex])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn a_syn_to_a_syn_proxy_service_gets_a_cookie_and_a_bad_ack_is_counted() {
    // Linux's SYN options: MSS 1460, SACK-permitted, TS 777/0, NOP, WS 7.
    let mut seg = common::frames::tcp("10.0.0.2", "10.0.0.100", 40000, 80, 0x02, &[]);
    seg[12] = 0xa0;
    seg.splice(
        20..20,
        [
            2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 3, 9, 0, 0, 0, 0, 1, 3, 3, 7,
        ],
    );
    seg[16..18].copy_from_slice(&[0, 0]);
    let c = common::frames::l4_csum("10.0.0.2", "10.0.0.100", 6, &seg);
    seg[16..18].copy_from_slice(&c.to_be_bytes());
    let syn = eth(
        DIR_MAC,
        CLIENT_MAC,
        0x0800,
        &ipv4("10.0.0.2", "10.0.0.100", 6, 64, &seg),
    );
    let arp_reply = eth(
        DIR_MAC,
        CLIENT_MAC,
        0x0806,
        &arp(2, CLIENT_MAC, "10.0.0.2", DIR_MAC, "10.0.0.1"),
    );
    // An ACK whose cookie was never sent (frames::tcp's fixed numbers).
    let bad = eth(
        DIR_MAC,
        CLIENT_MAC,
        0x0800,
        &ipv4(
            "10.0.0.2",
            "10.0.0.100",
            6,
            64,
            &common::frames::tcp("10.0.0.2", "10.0.0.100", 40001, 80, 0x10, &[]),
        ),
    );
    let r = run(
        "synproxy",
        &[syn, arp_reply, bad],
        "scheduler = \"rr\"\nsynproxy = true\n[[services.real_servers]]\naddress = \"10.0.0.12\"\nmethod = \"nat\"\n",
    );
    let who_has = eth(
        BCAST,
        DIR_MAC,
        0x0806,
        &arp(1, DIR_MAC, "10.0.0.1", [0; 6], "10.0.0.2"),
    );
    // Nothing towards the real server: the director's ARP for the client,
    // then the SYN-ACK from the VIP with the options a cookie carries.
    assert_eq!(r.out.len(), 4, "{:?}", r.out);
    assert_eq!(r.out[..3], [garps(), vec![who_has]].concat()[..]);
    assert_eq!(&r.out[3][..12], &[CLIENT_MAC, DIR_MAC].concat()[..]);
    assert_eq!(
        scapy_tcp(&r.out[3]),
        "10.0.0.100 10.0.0.2 64 80 40000 SA 287454021 65535 [('MSS', 1460), ('SAckOK', b''), ('Timestamp-ecr', 777), ('NOP', None), ('WScale', 7)] True"
    );
    assert_eq!(counter(&r.log, "event", "synproxy_cookies_sent"), 1);
    assert_eq!(counter(&r.log, "drop", "synproxy_rejected"), 1);
    assert_eq!(counter(&r.log, "event", "synproxy_validated"), 0);
}

/// Another host announcing the VIP as its own: not answered, counted, and
/// said once in ripvsd's log by the control thread (the workers cannot log).
#[test]
fn a_gratuitous_arp_claiming_the_vip_is_logged_as_a_conflict() {
    let garp = eth(
        BCAST,
        OTHER_MAC,
        0x0806,
        &arp(1, OTHER_MAC, "10.0.0.100", [0; 6], "10.0.0.100"),
    );
    let r = run("garp-claim", &[garp], "");
    assert_eq!(r.out, garps(), "no reply");
    assert!(r.to_kernel.is_empty());
    assert_eq!(counter(&r.log, "drop", "arp_conflict"), 1, "{:?}", r.log);
    let said: Vec<&String> = r
        .log
        .iter()
        .filter(|l| l.contains("address conflict") || l.contains("arp_conflict"))
        .collect();
    assert_eq!(
        said,
        [
            "ripvsd: warning: address conflict: 1 ARP frame(s) from another host claimed an address of this director (drop arp_conflict 1)",
            "drop arp_conflict 1",
        ],
        "{:?}",
        r.log
    );
}
