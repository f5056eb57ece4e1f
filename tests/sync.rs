//! Connection sync between ripvsd processes, each director in a network
//! namespace of its own (a master and a backup in one namespace would see
//! each other's sync sources as local addresses), their `net_af_packet`
//! ports on veths into one bridge, the exception taps carrying the sync
//! multicast, and a client namespace that injects exact frames.
//!
//! - [`master_and_backup_agree_packet_for_packet`]: a two-worker master
//!   forwards known packets of DR, TUN, NAT, UDP, persistent and fwmark
//!   connections; every sync message it sends is captured on the wire and
//!   read by the Python peer written from the kernel's C
//!   (`ctrl/tests/sync_peer.py`) and by Wireshark's dissector, field by
//!   field; a two-worker `backup_only` backup on the same bridge lists the
//!   same entries; stopping its backup daemon takes it out of standby, and
//!   each flow's next packet then goes where the synced entry says,
//!   without a new scheduling decision.
//! - [`bad_sync_input_is_counted_by_reason`]: truncated, oversized,
//!   wrong-version, damaged-option, foreign and random datagrams, and a
//!   flood, sent to a backup's group and port: each refusal is counted
//!   under its reason, good records in a damaged message are installed,
//!   the table's own size bounds what a flood installs, and the daemon
//!   keeps installing.
//!
//! Needs root; `/usr/bin/python3` (the peer), tcpdump and tshark.

mod common;

use common::frames::{eth, ip, ipv4, tcp, udp};
use common::{counter, read_pcap, write_pcap, Daemon, Scratch};
use ctrl_api::{ConnInfo, DaemonInfo, Response, SyncStats};
use fastpath::conn::owner_core;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Debian's Python, which has what the scripts here need; the `python3`
/// on PATH may be another.
const PY: &str = "/usr/bin/python3";
const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/ctrl/tests/sync_peer.py");

const MASTER_IP: &str = "10.77.0.1";
const BACKUP_IP: &str = "10.77.0.2";
const CLIENT: &str = "10.77.0.9";
const RS_A: &str = "10.77.0.21";
const RS_B: &str = "10.77.0.22";
const DR_VIP: &str = "10.77.0.100";
const TUN_VIP: &str = "10.77.0.101";
const NAT_VIP: &str = "10.77.0.102";
const PST_VIP: &str = "10.77.0.103";
const FWM_VIP: &str = "10.77.0.104";
const MARK: u32 = 5;
/// Persistence timeouts of the two persistent services.
const PST_TIMEOUT: u32 = 600;
const FWM_TIMEOUT: u32 = 300;
const SYNCID: u8 = 42;
const GROUP: &str = "224.0.0.81";

const CLIENT_MAC: [u8; 6] = [0x02, 0x77, 0, 0, 0, 0x09];
/// The real servers never send: their MACs stay unknown to the bridge,
/// which floods what is sent to them past every capture.
const A_MAC: [u8; 6] = [0x02, 0x77, 0, 0, 0, 0x21];
const B_MAC: [u8; 6] = [0x02, 0x77, 0, 0, 0, 0x22];

// IPVS connection flags (include/uapi/linux/ip_vs.h).
const MASQ: u32 = 0;
const TUNNEL: u32 = 2;
const DROUTE: u32 = 3;
const NOOUTPUT: u32 = 0x80;
const INACTIVE: u32 = 0x100;
const TEMPLATE: u32 = 0x1000;

// IPVS TCP states.
const ES: u16 = 1;
const FW: u16 = 4;
const CL: u16 = 6;
const CW: u16 = 7;

// TCP flags.
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
const FIN: u8 = 0x01;

// ------------------------------------------------------------ plumbing

fn sh(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn ok(args: &[&str]) -> String {
    let out = sh(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A bridge, and per role a namespace `{p}{role}` joined to it by a veth
/// (`{p}{role}h` on the bridge, `{p}{role}n` inside), IPv6 off so that
/// nothing but the test's traffic crosses it. Everything is removed when
/// dropped, even after a failure.
struct Lan {
    p: String,
    roles: Vec<&'static str>,
}

impl Lan {
    fn up(tag: &str, roles: &[&'static str]) -> Lan {
        common::require_root();
        let lan = Lan {
            p: format!("y{tag}{}", std::process::id() % 100_000),
            roles: roles.to_vec(),
        };
        lan.teardown();
        let br = lan.bridge();
        ok(&["ip", "link", "add", &br, "type", "bridge"]);
        ok(&[
            "sysctl",
            "-q",
            "-w",
            &format!("net.ipv6.conf.{br}.disable_ipv6=1"),
        ]);
        ok(&["ip", "link", "set", &br, "up"]);
        for r in roles {
            let (ns, h, n) = (lan.ns(r), lan.host_if(r), lan.ns_if(r));
            ok(&["ip", "netns", "add", &ns]);
            lan.ok_in(
                r,
                &[
                    "sysctl",
                    "-q",
                    "-w",
                    "net.ipv6.conf.all.disable_ipv6=1",
                    "net.ipv6.conf.default.disable_ipv6=1",
                ],
            );
            ok(&["ip", "link", "add", &h, "type", "veth", "peer", "name", &n]);
            ok(&[
                "sysctl",
                "-q",
                "-w",
                &format!("net.ipv6.conf.{h}.disable_ipv6=1"),
            ]);
            ok(&["ip", "link", "set", &h, "master", &br, "up"]);
            ok(&["ip", "link", "set", &n, "netns", &ns]);
            // Checksums computed before frames leave: a veth would hand
            // on partial ones, which no NIC delivers.
            lan.ok_in(
                r,
                &["ethtool", "-K", &n, "tx", "off", "tso", "off", "gso", "off"],
            );
            lan.ok_in(r, &["ip", "link", "set", "lo", "up"]);
            lan.ok_in(r, &["ip", "link", "set", &n, "up"]);
        }
        lan
    }

    fn bridge(&self) -> String {
        format!("{}br", self.p)
    }
    fn ns(&self, role: &str) -> String {
        format!("{}{role}", self.p)
    }
    fn host_if(&self, role: &str) -> String {
        format!("{}{role}h", self.p)
    }
    fn ns_if(&self, role: &str) -> String {
        format!("{}{role}n", self.p)
    }
    /// The exception tap of the director in `role`, its sync interface.
    fn tap(&self, role: &str) -> String {
        format!("{}{role}x", self.p)
    }

    fn ok_in(&self, role: &str, args: &[&str]) -> String {
        let ns = self.ns(role);
        let mut a = vec!["ip", "netns", "exec", &ns];
        a.extend_from_slice(args);
        ok(&a)
    }

    fn teardown(&self) {
        for r in &self.roles {
            let _ = sh(&["ip", "netns", "del", &self.ns(r)]);
            let _ = sh(&["ip", "link", "del", &self.host_if(r)]);
        }
        let _ = sh(&["ip", "link", "del", &self.bridge()]);
    }

    /// Sends `frames` out of `role`'s veth (AF_PACKET), `gap` apart.
    fn inject(&self, role: &str, frames: &[Vec<u8>], gap: Duration) {
        const SEND: &str = "import socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
gap = float(sys.argv[2])
for line in sys.stdin:
    if line.strip():
        s.send(bytes.fromhex(line.strip()))
        time.sleep(gap)
";
        let lines: Vec<String> = frames.iter().map(|f| hex(f)).collect();
        let gap = format!("{}", gap.as_secs_f64());
        let ns = self.ns(role);
        let iface = self.ns_if(role);
        run_with_input(
            &["ip", "netns", "exec", &ns, PY, "-c", SEND, &iface, &gap],
            &lines,
        );
    }

    /// Sends each payload as a UDP datagram from `src` (an address of
    /// `role`'s veth) to the sync group and port; a line `pause S` waits.
    fn send_sync(&self, role: &str, src: &str, lines: &[String]) {
        const SEND: &str = "import socket, sys, time
src = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(src))
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
s.bind((src, 0))
for line in sys.stdin:
    line = line.strip()
    if line.startswith('pause '):
        time.sleep(float(line[6:]))
    elif line.startswith('m'):
        s.sendto(bytes.fromhex(line[1:]), (sys.argv[2], 8848))
";
        let ns = self.ns(role);
        run_with_input(
            &["ip", "netns", "exec", &ns, PY, "-c", SEND, src, GROUP],
            lines,
        );
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// Runs `args` with `lines` on its stdin; it must succeed. Its stdout.
fn run_with_input(args: &[&str], lines: &[String]) -> String {
    let mut child = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", args[0]));
    let mut stdin = child.stdin.take().unwrap();
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    // From a thread: the child may answer while it reads.
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        &args[..args.len().min(6)],
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// tcpdump on an interface of the bridge, writing every frame to a file.
struct Capture {
    child: Child,
    path: PathBuf,
}

impl Capture {
    fn start(iface: &str, path: PathBuf) -> Capture {
        let mut child = Command::new("tcpdump")
            .args(["-i", iface, "-n", "-U", "--immediate-mode", "-s", "0", "-w"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Drained to the end: tcpdump reports its counts there on exit.
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let c = Capture { child, path };
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            match rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
                Ok(l) if l.contains("listening on") => return c,
                Ok(_) => {}
                Err(_) => panic!("tcpdump on {iface} did not start"),
            }
        }
    }

    /// Stops tcpdump; the frames it captured.
    fn stop(mut self) -> Vec<Vec<u8>> {
        let pid = self.child.id().to_string();
        ok(&["kill", "-INT", &pid]);
        self.child.wait().unwrap();
        read_pcap(&self.path)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------------ frames

/// An IPv4 packet as a frame carries it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Pkt {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    /// Ports for TCP/UDP, 0 otherwise.
    sport: u16,
    dport: u16,
    /// IP-in-IP: the inner packet.
    inner: Option<Box<Pkt>>,
}

/// The IPv4 packet `p` (header onwards), unfragmented, else None.
fn parse_ip(p: &[u8]) -> Option<(Pkt, &[u8])> {
    if p.len() < 20 || p[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(p[0] & 15) * 4;
    let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
    if u16::from_be_bytes([p[6], p[7]]) & 0x3fff != 0 || total > p.len() || total < ihl {
        return None;
    }
    let addr = |at: usize| Ipv4Addr::new(p[at], p[at + 1], p[at + 2], p[at + 3]);
    let body = &p[ihl..total];
    let mut pkt = Pkt {
        src: addr(12),
        dst: addr(16),
        proto: p[9],
        sport: 0,
        dport: 0,
        inner: None,
    };
    let mut payload = body;
    match pkt.proto {
        6 | 17 if body.len() >= 8 => {
            pkt.sport = u16::from_be_bytes([body[0], body[1]]);
            pkt.dport = u16::from_be_bytes([body[2], body[3]]);
            payload = if pkt.proto == 17 {
                &body[8..]
            } else {
                &body[(usize::from(body[12] >> 4) * 4).min(body.len())..]
            };
        }
        4 => pkt.inner = parse_ip(body).map(|(i, _)| Box::new(i)),
        _ => {}
    }
    Some((pkt, payload))
}

/// (destination MAC, source MAC, packet, L4 payload) of an IPv4 frame.
type Parsed = ([u8; 6], [u8; 6], Pkt, Vec<u8>);

fn parse_frame(f: &[u8]) -> Option<Parsed> {
    if f.len() < 14 || f[12..14] != [0x08, 0x00] {
        return None;
    }
    let (pkt, payload) = parse_ip(&f[14..])?;
    Some((
        f[0..6].try_into().unwrap(),
        f[6..12].try_into().unwrap(),
        pkt,
        payload.to_vec(),
    ))
}

fn pkt(src: &str, dst: &str, proto: u8, sport: u16, dport: u16) -> Pkt {
    Pkt {
        src: ip(src),
        dst: ip(dst),
        proto,
        sport,
        dport,
        inner: None,
    }
}

/// A client's TCP segment to `vip:vport`, to the director at `mac`.
fn tcp_in(mac: [u8; 6], cport: u16, vip: &str, vport: u16, flags: u8) -> Vec<u8> {
    let data: &[u8] = if flags & PSH != 0 { b"hello" } else { b"" };
    eth(
        mac,
        CLIENT_MAC,
        0x0800,
        &ipv4(
            CLIENT,
            vip,
            6,
            64,
            &tcp(CLIENT, vip, cport, vport, flags, data),
        ),
    )
}

fn udp_in(mac: [u8; 6], cport: u16, vip: &str, vport: u16) -> Vec<u8> {
    eth(
        mac,
        CLIENT_MAC,
        0x0800,
        &ipv4(
            CLIENT,
            vip,
            17,
            64,
            &udp(CLIENT, vip, cport, vport, b"query", true),
        ),
    )
}

/// NAT real server A's reply from `rport` to the client.
fn tcp_reply(mac: [u8; 6], rport: u16, cport: u16) -> Vec<u8> {
    eth(
        mac,
        A_MAC,
        0x0800,
        &ipv4(
            RS_A,
            CLIENT,
            6,
            64,
            &tcp(RS_A, CLIENT, rport, cport, ACK | PSH, b"reply"),
        ),
    )
}

/// The first client port from `from` up whose connections worker `owner`
/// of two owns.
fn port_of(from: u16, owner: usize) -> u16 {
    (from..)
        .find(|&p| owner_core(ip(CLIENT), p, 2) == owner)
        .unwrap()
}

fn owner(cport: u16) -> usize {
    owner_core(ip(CLIENT), cport, 2)
}

/// The port MAC a director reports: "port p0 de:42:...:2a (...)".
fn port_mac(d: &Daemon) -> [u8; 6] {
    let line = d
        .output
        .iter()
        .find(|l| l.contains("ripvsd: running"))
        .expect("running line");
    let text = line
        .split("port p0 ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    let b: Vec<u8> = text
        .split(':')
        .map(|x| u8::from_str_radix(x, 16).unwrap())
        .collect();
    b.try_into().unwrap()
}

// ------------------------------------------------------------ directors

/// A director's config: two workers, port `p0` on `role`'s veth with
/// address `addr`, the sync daemon `sync` ("master" or "backup") on its
/// exception tap, `backup_only`, static neighbours for the client and
/// both real servers, and eight services over A and B with weights
/// `(wa, wb)`.
fn config(
    lan: &Lan,
    role: &str,
    addr: &str,
    sync: &str,
    (wa, wb): (u32, u32),
    max_conns: u32,
    sync_extra: &str,
) -> String {
    let (n, x, p) = (lan.ns_if(role), lan.tap(role), &lan.p);
    let mut c = format!(
        r#"
[eal]
args = ["--no-huge", "--no-pci", "-m", "256", "--no-shconf", "--file-prefix={p}{role}", "--log-level=error"]
main_lcore = 0
worker_lcores = [1, 2]

[dataplane]
max_connections = {max_conns}

[[ports]]
name = "p0"
device = "net_af_packet0,iface={n}"
addresses = ["{addr}/24"]
exception = {{ iface = "{x}" }}

[ipvs]
backup_only = true

[sync]
state = "{sync}"
interface = "{x}"
syncid = {SYNCID}
full_sync = false
{sync_extra}

[[neighbours]]
address = "{CLIENT}"
mac = "02:77:00:00:00:09"
port = "p0"
[[neighbours]]
address = "{RS_A}"
mac = "02:77:00:00:00:21"
port = "p0"
[[neighbours]]
address = "{RS_B}"
mac = "02:77:00:00:00:22"
port = "p0"

[[fwmarks]]
mark = {MARK}
[[fwmarks.match]]
protocol = "tcp"
destination = "{FWM_VIP}/32"
ports = "8080-8081"
"#
    );
    // protocol ("": the fwmark service), VIP, port, method, real server
    // port, more keys.
    type Svc<'a> = (&'a str, &'a str, u16, &'a str, Option<u16>, &'a str);
    let services: [Svc; 8] = [
        ("tcp", DR_VIP, 80, "dr", None, ""),
        ("tcp", TUN_VIP, 80, "tun", None, ""),
        ("tcp", NAT_VIP, 80, "nat", Some(8080), ""),
        ("udp", DR_VIP, 53, "dr", None, ""),
        ("udp", NAT_VIP, 53, "nat", Some(5353), ""),
        ("tcp", PST_VIP, 443, "dr", None, "persistent = 600\n"),
        ("tcp", NAT_VIP, 443, "nat", Some(8443), "persistent = 600\n"),
        ("", "", 0, "dr", None, "persistent = 300\n"),
    ];
    for (proto, vip, port, method, rport, extra) in services {
        c += "\n[[services]]\n";
        if proto.is_empty() {
            c += &format!("fwmark = {MARK}\n");
        } else {
            c += &format!("protocol = \"{proto}\"\nvip = \"{vip}\"\nport = {port}\n");
        }
        c += &format!("scheduler = \"wrr\"\n{extra}");
        for (rs, w) in [(RS_A, wa), (RS_B, wb)] {
            c += &format!(
                "[[services.real_servers]]\naddress = \"{rs}\"\nmethod = \"{method}\"\nweight = {w}\n"
            );
            if let Some(r) = rport {
                c += &format!("port = {r}\n");
            }
        }
    }
    c
}

/// `ripvsadm ARGS` against `d`, which must succeed; its stdout.
fn adm(d: &Daemon, args: &[&str]) -> String {
    let out = common::ripvsadm(&d.socket).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ripvsadm {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn adm_json(d: &Daemon, args: &[&str]) -> Response {
    let mut a = args.to_vec();
    a.push("--json");
    let text = adm(d, &a);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
}

/// The running sync daemon of `role`'s counters.
fn sync_stats(d: &Daemon, role: &str) -> SyncStats {
    let Response::Daemons(list) = adm_json(d, &["-L", "--daemon"]) else {
        panic!("not a daemon list")
    };
    let info: &DaemonInfo = list
        .iter()
        .find(|i| format!("{:?}", i.role).eq_ignore_ascii_case(role))
        .unwrap_or_else(|| panic!("no {role} daemon: {list:?}"));
    info.stats.clone()
}

fn conns(d: &Daemon) -> Vec<ConnInfo> {
    let Response::Connections(page) = adm_json(d, &["-L", "-n", "-c"]) else {
        panic!("not a connection page")
    };
    page.conns
}

/// Polls `f` every 100 ms until it holds, for at most `secs`.
fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Per real server line of `-L -n --persistent-conn` ("TCP 10.77.0.100:80
/// -> 10.77.0.21:80"): weight, PersistConn, ActiveConn, InActConn.
fn dest_counts(listing: &str) -> BTreeMap<String, [u64; 4]> {
    let mut m = BTreeMap::new();
    let mut svc = String::new();
    for l in listing.lines().skip(3) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f[0] == "->" {
            let n = |i: usize| f[i].parse::<u64>().unwrap();
            m.insert(format!("{svc} -> {}", f[1]), [n(2), n(3), n(4), n(5)]);
        } else {
            svc = format!("{} {}", f[0], f[1]);
        }
    }
    m
}

/// Per service line of `-L -n --stats --exact`: Conns, InPkts, OutPkts.
fn service_stats(listing: &str) -> BTreeMap<String, [u64; 3]> {
    listing
        .lines()
        .skip(3)
        .filter(|l| !l.starts_with("  ->"))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let n = |i: usize| f[i].parse::<u64>().unwrap();
            (format!("{} {}", f[0], f[1]), [n(2), n(3), n(4)])
        })
        .collect()
}

// ------------------------------------------------------------ the peer

/// `sync_peer.py decode [--syncid N]`: one JSON verdict per datagram.
fn peer_decode(msgs: &[Vec<u8>], syncid: Option<u8>) -> Vec<Value> {
    let mut args = vec![PY.to_string(), PEER.to_string(), "decode".into()];
    if let Some(s) = syncid {
        args.extend(["--syncid".into(), s.to_string()]);
    }
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let lines: Vec<String> = msgs.iter().map(|m| hex(m)).collect();
    let out = run_with_input(&a, &lines);
    let v: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(v.len(), msgs.len(), "one verdict per datagram");
    v
}

/// `sync_peer.py encode`: the kernel master's bytes for each description.
fn peer_encode(descs: &[Value]) -> Vec<Vec<u8>> {
    let lines: Vec<String> = descs.iter().map(Value::to_string).collect();
    let out = run_with_input(&[PY, PEER, "encode"], &lines);
    let v: Vec<Vec<u8>> = out.lines().map(unhex).collect();
    assert_eq!(v.len(), descs.len());
    v
}

/// A v1 IPv4 record as the peer decodes it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Rec {
    proto: u8,
    flags: u32,
    state: u16,
    cport: u16,
    vport: u16,
    dport: u16,
    fwmark: u32,
    timeout: u32,
    caddr: String,
    vaddr: String,
    daddr: String,
}

impl Rec {
    fn of(v: &Value) -> Rec {
        let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"));
        let s = |k: &str| v[k].as_str().unwrap().to_string();
        Rec {
            proto: n("proto") as u8,
            flags: n("flags") as u32,
            state: n("state") as u16,
            cport: n("cport") as u16,
            vport: n("vport") as u16,
            dport: n("dport") as u16,
            fwmark: n("fwmark") as u32,
            timeout: n("timeout") as u32,
            caddr: s("caddr"),
            vaddr: s("vaddr"),
            daddr: s("daddr"),
        }
    }

    /// The peer's description of this record, to encode.
    fn desc(&self) -> Value {
        json!({
            "proto": self.proto, "flags": self.flags, "state": self.state,
            "cport": self.cport, "vport": self.vport, "dport": self.dport,
            "fwmark": self.fwmark, "timeout": self.timeout,
            "caddr": self.caddr, "vaddr": self.vaddr, "daddr": self.daddr,
        })
    }
}

// ------------------------------------------------- master and backup

/// Where a frame is forwarded: its destination MAC and packet.
type Forwarded = Option<([u8; 6], Pkt)>;

/// One connection of the test.
struct Flow {
    name: &'static str,
    /// What the master is sent, in order.
    to_master: Vec<Vec<u8>>,
    /// The records it must send for them, in order.
    synced: Vec<Rec>,
    /// Once the backup has taken over: what it is sent, and for each
    /// frame the destination MAC and packet it must forward (None: it
    /// must forward nothing).
    to_backup: Vec<(Vec<u8>, Forwarded)>,
}

/// A connection record of the client's, to server A.
#[allow(clippy::too_many_arguments)]
fn conn_rec(
    proto: u8,
    flags: u32,
    state: u16,
    cport: u16,
    vip: &str,
    vport: u16,
    dport: u16,
    timeout: u32,
) -> Rec {
    Rec {
        proto,
        flags,
        state,
        cport,
        vport,
        dport,
        fwmark: 0,
        timeout,
        caddr: CLIENT.into(),
        vaddr: vip.into(),
        daddr: RS_A.into(),
    }
}

/// The flows, as sent to the master at `mm` and, later, to the backup at
/// `bm`; their client ports are chosen so that each of the two workers
/// owns some.
fn flows(mm: [u8; 6], bm: [u8; 6]) -> Vec<Flow> {
    let mut n = 0u16;
    let mut next = |owner: usize| {
        n += 1;
        port_of(40000 + n * 100, owner)
    };
    let dr = NOOUTPUT | DROUTE;
    let tun = NOOUTPUT | TUNNEL;
    let to_a = |p: Pkt| Some((A_MAC, p));
    let mut v = Vec::new();

    // DR, established: SYN, ACK, data; the third packet syncs it.
    let c = next(0);
    v.push(Flow {
        name: "dr established",
        to_master: [SYN, ACK, ACK | PSH]
            .map(|f| tcp_in(mm, c, DR_VIP, 80, f))
            .to_vec(),
        synced: vec![conn_rec(6, dr, ES, c, DR_VIP, 80, 80, 900)],
        to_backup: vec![(
            tcp_in(bm, c, DR_VIP, 80, ACK | PSH),
            to_a(pkt(CLIENT, DR_VIP, 6, c, 80)),
        )],
    });
    // DR, then the client's FIN: FIN_WAIT (input-only table), synced at
    // once, inactive, with the FIN timeout.
    let c = next(1);
    v.push(Flow {
        name: "dr fin_wait",
        to_master: [SYN, ACK, ACK | PSH, FIN | ACK]
            .map(|f| tcp_in(mm, c, DR_VIP, 80, f))
            .to_vec(),
        synced: vec![
            conn_rec(6, dr, ES, c, DR_VIP, 80, 80, 900),
            conn_rec(6, dr | INACTIVE, FW, c, DR_VIP, 80, 80, 120),
        ],
        to_backup: vec![(
            tcp_in(bm, c, DR_VIP, 80, ACK),
            to_a(pkt(CLIENT, DR_VIP, 6, c, 80)),
        )],
    });
    // TUN, then a RST: CLOSE, synced at once.
    let tunneled = |c: u16| {
        Some((
            A_MAC,
            Pkt {
                inner: Some(Box::new(pkt(CLIENT, TUN_VIP, 6, c, 80))),
                ..pkt(BACKUP_IP, RS_A, 4, 0, 0)
            },
        ))
    };
    let c = next(0);
    v.push(Flow {
        name: "tun close",
        to_master: [SYN, ACK, ACK | PSH, RST | ACK]
            .map(|f| tcp_in(mm, c, TUN_VIP, 80, f))
            .to_vec(),
        synced: vec![
            conn_rec(6, tun, ES, c, TUN_VIP, 80, 80, 900),
            conn_rec(6, tun | INACTIVE, CL, c, TUN_VIP, 80, 80, 10),
        ],
        to_backup: vec![(tcp_in(bm, c, TUN_VIP, 80, ACK), tunneled(c))],
    });
    let c = next(1);
    v.push(Flow {
        name: "tun established",
        to_master: [SYN, ACK, ACK | PSH]
            .map(|f| tcp_in(mm, c, TUN_VIP, 80, f))
            .to_vec(),
        synced: vec![conn_rec(6, tun, ES, c, TUN_VIP, 80, 80, 900)],
        to_backup: vec![(tcp_in(bm, c, TUN_VIP, 80, ACK | PSH), tunneled(c))],
    });
    // NAT: the server's reply passes (and is never synced: only incoming
    // packets count), then the client's FIN: CLOSE_WAIT (full tables).
    let c = next(1);
    v.push(Flow {
        name: "nat close_wait",
        to_master: vec![
            tcp_in(mm, c, NAT_VIP, 80, SYN),
            tcp_in(mm, c, NAT_VIP, 80, ACK),
            tcp_reply(mm, 8080, c),
            tcp_in(mm, c, NAT_VIP, 80, ACK | PSH),
            tcp_in(mm, c, NAT_VIP, 80, FIN | ACK),
        ],
        synced: vec![
            conn_rec(6, MASQ, ES, c, NAT_VIP, 80, 8080, 900),
            conn_rec(6, MASQ | INACTIVE, CW, c, NAT_VIP, 80, 8080, 60),
        ],
        to_backup: vec![
            (
                tcp_reply(bm, 8080, c),
                Some((CLIENT_MAC, pkt(NAT_VIP, CLIENT, 6, 80, c))),
            ),
            (
                tcp_in(bm, c, NAT_VIP, 80, ACK),
                to_a(pkt(CLIENT, RS_A, 6, c, 8080)),
            ),
        ],
    });
    let c = next(0);
    v.push(Flow {
        name: "nat established",
        to_master: [SYN, ACK, ACK | PSH]
            .map(|f| tcp_in(mm, c, NAT_VIP, 80, f))
            .to_vec(),
        synced: vec![conn_rec(6, MASQ, ES, c, NAT_VIP, 80, 8080, 900)],
        to_backup: vec![(
            tcp_in(bm, c, NAT_VIP, 80, ACK | PSH),
            to_a(pkt(CLIENT, RS_A, 6, c, 8080)),
        )],
    });
    // UDP: inactive for life; the third datagram syncs it.
    let c = next(0);
    v.push(Flow {
        name: "udp dr",
        to_master: vec![udp_in(mm, c, DR_VIP, 53); 3],
        synced: vec![conn_rec(17, dr | INACTIVE, 0, c, DR_VIP, 53, 53, 300)],
        to_backup: vec![(
            udp_in(bm, c, DR_VIP, 53),
            to_a(pkt(CLIENT, DR_VIP, 17, c, 53)),
        )],
    });
    let c = next(1);
    v.push(Flow {
        name: "udp nat",
        to_master: vec![udp_in(mm, c, NAT_VIP, 53); 3],
        synced: vec![conn_rec(17, MASQ | INACTIVE, 0, c, NAT_VIP, 53, 5353, 300)],
        to_backup: vec![(
            udp_in(bm, c, NAT_VIP, 53),
            to_a(pkt(CLIENT, RS_A, 17, c, 5353)),
        )],
    });
    // Persistent: the connection and, after it, its template (client port
    // 0, assured once the connection was established), with the
    // kernel's flags for a template bound to a DR server (ip_vs_bind_dest
    // gives it the server's conn_flags: method, NOOUTPUT, INACTIVE).
    let tpl = TEMPLATE | INACTIVE | NOOUTPUT | DROUTE;
    let c = next(1);
    let fresh = next(0);
    v.push(Flow {
        name: "persistent",
        to_master: [SYN, ACK, ACK | PSH]
            .map(|f| tcp_in(mm, c, PST_VIP, 443, f))
            .to_vec(),
        synced: vec![
            conn_rec(6, dr, ES, c, PST_VIP, 443, 443, 900),
            conn_rec(6, tpl, 1, 0, PST_VIP, 443, 443, PST_TIMEOUT),
        ],
        // A new connection from the client follows the synced template
        // to A, which has weight 0 on the backup.
        to_backup: vec![
            (
                tcp_in(bm, c, PST_VIP, 443, ACK | PSH),
                to_a(pkt(CLIENT, PST_VIP, 6, c, 443)),
            ),
            (
                tcp_in(bm, fresh, PST_VIP, 443, SYN),
                to_a(pkt(CLIENT, PST_VIP, 6, fresh, 443)),
            ),
        ],
    });
    // A persistent NAT service: its template has no NOOUTPUT (NAT
    // servers' replies pass the director) and the server's port.
    let c = next(0);
    v.push(Flow {
        name: "persistent nat",
        to_master: [SYN, ACK, ACK | PSH]
            .map(|f| tcp_in(mm, c, NAT_VIP, 443, f))
            .to_vec(),
        synced: vec![
            conn_rec(6, MASQ, ES, c, NAT_VIP, 443, 8443, 900),
            conn_rec(
                6,
                TEMPLATE | INACTIVE | MASQ,
                1,
                0,
                NAT_VIP,
                443,
                8443,
                PST_TIMEOUT,
            ),
        ],
        to_backup: vec![(
            tcp_in(bm, c, NAT_VIP, 443, ACK | PSH),
            to_a(pkt(CLIENT, RS_A, 6, c, 8443)),
        )],
    });
    // A persistent fwmark service: the connection carries the mark; the
    // template is keyed on protocol 0 and the mark as address, port 0.
    let c = next(0);
    let fresh = next(1);
    v.push(Flow {
        name: "fwmark",
        to_master: [SYN, ACK, ACK | PSH]
            .map(|f| tcp_in(mm, c, FWM_VIP, 8080, f))
            .to_vec(),
        synced: vec![
            Rec {
                fwmark: MARK,
                ..conn_rec(6, dr, ES, c, FWM_VIP, 8080, 8080, 900)
            },
            Rec {
                fwmark: MARK,
                vaddr: Ipv4Addr::from(MARK).to_string(),
                ..conn_rec(0, tpl, 1, 0, FWM_VIP, 0, 0, FWM_TIMEOUT)
            },
        ],
        to_backup: vec![
            (
                tcp_in(bm, c, FWM_VIP, 8080, ACK | PSH),
                to_a(pkt(CLIENT, FWM_VIP, 6, c, 8080)),
            ),
            (
                tcp_in(bm, fresh, FWM_VIP, 8081, SYN),
                to_a(pkt(CLIENT, FWM_VIP, 6, fresh, 8081)),
            ),
        ],
    });
    // Never synced: a SYN alone (SYN_RECV), and SYN+ACK (established on
    // the second packet: a change into ESTABLISHED waits for the count).
    // On the backup its next segment finds nothing (and, not being a SYN,
    // is not scheduled either).
    let c = next(0);
    v.push(Flow {
        name: "syn only",
        to_master: vec![tcp_in(mm, c, DR_VIP, 80, SYN)],
        synced: vec![],
        to_backup: vec![],
    });
    let c = next(1);
    v.push(Flow {
        name: "syn ack",
        to_master: [SYN, ACK].map(|f| tcp_in(mm, c, DR_VIP, 80, f)).to_vec(),
        synced: vec![],
        to_backup: vec![(tcp_in(bm, c, DR_VIP, 80, ACK | PSH), None)],
    });
    // A new client connection on the backup: its scheduler picks B, the
    // only server with weight there, so A above is the synced entries'
    // doing.
    let c = next(0);
    v.push(Flow {
        name: "fresh on the backup",
        to_master: vec![],
        synced: vec![],
        to_backup: vec![(
            tcp_in(bm, c, DR_VIP, 80, SYN),
            Some((B_MAC, pkt(CLIENT, DR_VIP, 6, c, 80))),
        )],
    });
    v
}

/// The sync datagrams `from` sent, in order, from captured frames.
fn sync_payloads(frames: &[Vec<u8>], from: &str) -> Vec<Vec<u8>> {
    frames
        .iter()
        .filter_map(|f| parse_frame(f))
        .filter(|(_, _, p, _)| {
            p.proto == 17 && p.src == ip(from) && p.dst == ip(GROUP) && p.dport == 8848
        })
        .map(|(_, _, _, payload)| payload)
        .collect()
}

/// What `tshark -T fields` shows of each sync message: per field, the
/// values of its occurrences.
const TSHARK_FIELDS: &[&str] = &[
    "ipvs.syncid",
    "ipvs.size",
    "ipvs.conncount",
    "ipvs.version",
    "ipvs.type",
    "ipvs.proto",
    "ipvs.ver",
    "ipvs.size.v1",
    "ipvs.flags.v1",
    "ipvs.state",
    "ipvs.cport",
    "ipvs.vport",
    "ipvs.dport",
    "ipvs.fwmark",
    "ipvs.timeout",
    "ipvs.caddr",
    "ipvs.vaddr",
    "ipvs.daddr",
];

/// Wireshark's IPVS dissector on the captured sync frames (`pcap`): each
/// message's header and every record's fields must be those the peer
/// decoded (`verdicts`), and it must find no malformed packet.
fn tshark_agrees(pcap: &Path, verdicts: &[Value]) {
    let mut args = vec![
        "-r".to_string(),
        pcap.display().to_string(),
        "-T".into(),
        "fields".into(),
    ];
    for f in TSHARK_FIELDS {
        args.extend(["-e".to_string(), f.to_string()]);
    }
    let out = Command::new("tshark").args(&args).output().expect("tshark");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .arg("-V")
        .output()
        .unwrap();
    let tree = String::from_utf8_lossy(&tree.stdout);
    assert_eq!(
        tree.matches("IP Virtual Services Sync Daemon").count(),
        verdicts.len(),
        "{tree}"
    );
    assert!(!tree.contains("Malformed"), "{tree}");
    let text = String::from_utf8(out.stdout).unwrap();
    let frames: Vec<Vec<Vec<String>>> = text
        .lines()
        .map(|l| {
            l.split('\t')
                .map(|f| f.split(',').map(str::to_string).collect())
                .collect()
        })
        .collect();
    assert_eq!(frames.len(), verdicts.len(), "{text}");
    for (i, (frame, v)) in frames.iter().zip(verdicts).enumerate() {
        let field = |name: &str| -> &Vec<String> {
            &frame[TSHARK_FIELDS.iter().position(|f| *f == name).unwrap()]
        };
        let recs = v["records"].as_array().unwrap();
        for (name, want) in [
            ("ipvs.syncid", v["syncid"].to_string()),
            ("ipvs.size", v["size"].to_string()),
            ("ipvs.conncount", v["nr_conns"].to_string()),
            ("ipvs.version", v["version"].to_string()),
        ] {
            assert_eq!(field(name), &vec![want], "message {i}: {name}");
        }
        for (k, r) in recs.iter().enumerate() {
            let n = |key: &str| r[key].as_u64().unwrap();
            let want = [
                ("ipvs.type", n("type").to_string()),
                ("ipvs.proto", format!("0x{:02x}", n("proto"))),
                ("ipvs.ver", "0".into()),
                ("ipvs.size.v1", n("size").to_string()),
                ("ipvs.flags.v1", format!("0x{:08x}", n("flags"))),
                ("ipvs.state", format!("0x{:04x}", n("state"))),
                ("ipvs.cport", n("cport").to_string()),
                ("ipvs.vport", n("vport").to_string()),
                ("ipvs.dport", n("dport").to_string()),
                ("ipvs.fwmark", format!("0x{:08x}", n("fwmark"))),
                ("ipvs.timeout", n("timeout").to_string()),
                ("ipvs.caddr", r["caddr"].as_str().unwrap().to_string()),
                ("ipvs.vaddr", r["vaddr"].as_str().unwrap().to_string()),
                ("ipvs.daddr", r["daddr"].as_str().unwrap().to_string()),
            ];
            for (name, value) in want {
                assert_eq!(
                    field(name).get(k),
                    Some(&value),
                    "message {i}, record {k}: {name} ({:?})",
                    field(name)
                );
            }
        }
    }
}

/// A listing entry without its expiry, and the expiry.
fn entry_key(c: &ConnInfo) -> String {
    format!(
        "{:?} {}:{} {}:{} {}:{} {} template={}",
        c.proto, c.caddr, c.cport, c.vaddr, c.vport, c.daddr, c.dport, c.state, c.template
    )
}

/// The IPVS name of TCP state `s` (and UDP's one state).
fn state_name(proto: u8, s: u16) -> &'static str {
    const TCP: [&str; 11] = [
        "NONE",
        "ESTABLISHED",
        "SYN_SENT",
        "SYN_RECV",
        "FIN_WAIT",
        "TIME_WAIT",
        "CLOSE",
        "CLOSE_WAIT",
        "LAST_ACK",
        "LISTEN",
        "SYNACK",
    ];
    if proto == 17 {
        "UDP"
    } else {
        TCP[s as usize]
    }
}

/// `-L -n -c` with the expiry column masked, sorted, without the lines
/// of client ports `hidden`.
fn masked_listing(listing: &str, hidden: &[u16]) -> Vec<String> {
    let mut v: Vec<String> = listing
        .lines()
        .skip(2)
        .filter(|l| !hidden.iter().any(|p| l.contains(&format!("{CLIENT}:{p} "))))
        .map(|l| format!("{}mm:ss{}", &l[..4], &l[9..]))
        .collect();
    v.sort();
    v
}

#[test]
fn master_and_backup_agree_packet_for_packet() {
    let lan = Lan::up("s", &["m", "b", "c"]);
    let dir = Scratch::new("sync-pcap");
    let cfg = |role, addr, sync, w| {
        let path = dir.path(&format!("{sync}.toml"));
        std::fs::write(&path, config(&lan, role, addr, sync, w, 65536, "")).unwrap();
        path
    };
    // Fresh scheduling picks A on the master and B on the backup.
    let (mcfg, bcfg) = (
        cfg("m", MASTER_IP, "master", (1, 0)),
        cfg("b", BACKUP_IP, "backup", (0, 1)),
    );
    lan.ok_in(
        "c",
        &[
            "ip",
            "link",
            "set",
            &lan.ns_if("c"),
            "address",
            "02:77:00:00:00:09",
        ],
    );
    let mut backup = Daemon::start_in(&lan.ns("b"), &bcfg);
    backup.wait_for("sync backup: started", Duration::from_secs(10));
    let mut master = Daemon::start_in(&lan.ns("m"), &mcfg);
    master.wait_for("sync master: started", Duration::from_secs(10));
    let (mm, bm) = (port_mac(&master), port_mac(&backup));
    let flows = flows(mm, bm);
    let expected: Vec<Rec> = flows.iter().flat_map(|f| f.synced.clone()).collect();
    // Each worker owns some of the flows (worker 1 the NAT flow whose
    // server replies, so that a reply is handed over too).
    let owners: BTreeSet<usize> = flows
        .iter()
        .flat_map(|f| &f.to_backup)
        .map(|(fr, _)| parse_frame(fr).unwrap().2)
        .map(|p| {
            owner(if p.src == ip(CLIENT) {
                p.sport
            } else {
                p.dport
            })
        })
        .collect();
    assert_eq!(owners.len(), 2);

    // The master gets every flow's packets; its sync messages are
    // captured where they leave it.
    let wire = Capture::start(&lan.host_if("m"), dir.path("master.pcap"));
    let to_master: Vec<Vec<u8>> = flows.iter().flat_map(|f| f.to_master.clone()).collect();
    lan.inject("c", &to_master, Duration::from_millis(2));
    let synced = wait_until(15, || {
        sync_stats(&backup, "backup").installed >= expected.len() as u64
    });
    let mstats = sync_stats(&master, "master");
    let bstats = sync_stats(&backup, "backup");
    if !synced {
        let (_, blog) = backup.terminate();
        let (_, mlog) = master.terminate();
        panic!(
            "the backup installed too little: {bstats:?}; master: {mstats:?}\nbackup:\n{}\nmaster:\n{}",
            blog.join("\n"),
            mlog.join("\n")
        );
    }
    // Nothing more is on its way: one more flush period passes.
    std::thread::sleep(Duration::from_millis(100));
    let frames = wire.stop();
    let msgs = sync_payloads(&frames, MASTER_IP);

    // (c) The backup lists exactly what the master synced, each entry in
    // its last synced state, expiring within 2 s of the master's.
    let hidden: Vec<u16> = flows
        .iter()
        .filter(|f| f.synced.is_empty())
        .flat_map(|f| {
            f.to_master
                .iter()
                .filter_map(|fr| parse_frame(fr))
                .map(|(_, _, p, _)| p.sport)
        })
        .collect();
    let on_master: BTreeMap<String, u64> = conns(&master)
        .iter()
        .filter(|c| !hidden.contains(&c.cport))
        .map(|c| (entry_key(c), c.expires_ms))
        .collect();
    let on_backup: BTreeMap<String, u64> = conns(&backup)
        .iter()
        .map(|c| (entry_key(c), c.expires_ms))
        .collect();
    assert_eq!(
        on_backup.keys().collect::<Vec<_>>(),
        on_master.keys().collect::<Vec<_>>(),
        "backup vs master entries"
    );
    for (k, m) in &on_master {
        let b = on_backup[k];
        assert!(
            m.abs_diff(b) <= 2000,
            "{k}: expires in {b} ms on the backup, {m} ms on the master"
        );
    }
    // Each connection's last record decides its state there.
    let last: BTreeSet<String> = flows
        .iter()
        .flat_map(|f| {
            let conn = f.synced.iter().rfind(|r| r.flags & TEMPLATE == 0);
            conn.map(|r| {
                let proto = if r.proto == 6 { "Tcp" } else { "Udp" };
                format!(
                    "{proto} {}:{} {}:{} {}:{} {} template=false",
                    r.caddr,
                    r.cport,
                    r.vaddr,
                    r.vport,
                    r.daddr,
                    r.dport,
                    state_name(r.proto, r.state)
                )
            })
        })
        .collect();
    let listed: BTreeSet<String> = on_backup
        .keys()
        .filter(|k| k.ends_with("template=false"))
        .cloned()
        .collect();
    assert_eq!(listed, last);
    assert_eq!(
        on_backup.len(),
        last.len() + 3,
        "and the three templates: {on_backup:?}"
    );
    // The ipvsadm listing itself says the same.
    assert_eq!(
        masked_listing(&adm(&backup, &["-L", "-n", "-c"]), &[]),
        masked_listing(&adm(&master, &["-L", "-n", "-c"]), &hidden)
    );
    // Synced entries count against their servers as the master's do:
    // ActiveConn for established ones, InActConn for the rest, and the
    // templates in PersistConn.
    let counts = dest_counts(&adm(&backup, &["-L", "-n", "--persistent-conn"]));
    let a = |svc: &str, rport: u16| format!("{svc} -> {RS_A}:{rport}");
    let mut want: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    for (svc, rport, counts) in [
        (format!("TCP {DR_VIP}:80"), 80, [0, 1, 1]),
        (format!("TCP {TUN_VIP}:80"), 80, [0, 1, 1]),
        (format!("TCP {NAT_VIP}:80"), 8080, [0, 1, 1]),
        (format!("UDP {DR_VIP}:53"), 53, [0, 0, 1]),
        (format!("UDP {NAT_VIP}:53"), 5353, [0, 0, 1]),
        (format!("TCP {PST_VIP}:443"), 443, [1, 1, 0]),
        (format!("TCP {NAT_VIP}:443"), 8443, [1, 1, 0]),
        (format!("FWM {MARK}"), 0, [1, 1, 0]),
    ] {
        let [p, act, inact] = counts;
        want.insert(a(&svc, rport), [0, p, act, inact]);
        want.insert(format!("{svc} -> {RS_B}:{rport}"), [1, 0, 0, 0]);
    }
    assert_eq!(counts, want);

    // A standby backup (backup_only) forwards nothing for its VIPs.
    let probe = &flows[0].to_backup[0].0;
    lan.inject("c", std::slice::from_ref(probe), Duration::ZERO);

    // (c) Stopping the backup daemon ends standby: each flow's next
    // packet goes where its synced entry says.
    let out = Capture::start(&lan.host_if("b"), dir.path("backup.pcap"));
    adm(&backup, &["--stop-daemon", "backup"]);
    std::thread::sleep(Duration::from_millis(1000));
    let to_backup: Vec<&(Vec<u8>, Forwarded)> =
        flows.iter().flat_map(|f| f.to_backup.iter()).collect();
    let frames_in: Vec<Vec<u8>> = to_backup.iter().map(|(f, _)| f.clone()).collect();
    lan.inject("c", &frames_in, Duration::from_millis(2));
    std::thread::sleep(Duration::from_millis(500));
    let forwarded: Vec<([u8; 6], Pkt)> = out
        .stop()
        .iter()
        .filter_map(|f| parse_frame(f))
        // Not the IGMP leave of its sync socket's group.
        .filter(|(dst, src, _, _)| *src == bm && dst[0] & 1 == 0)
        .map(|(dst, _, p, _)| (dst, p))
        .collect();
    let mut want_out: Vec<([u8; 6], Pkt)> =
        to_backup.iter().filter_map(|(_, o)| o.clone()).collect();
    let mut got_out = forwarded.clone();
    want_out.sort();
    got_out.sort();
    assert_eq!(got_out, want_out, "what the backup forwarded");
    let stats = service_stats(&adm(&backup, &["-L", "-n", "--stats", "--exact"]));
    // Conns counts scheduling decisions: the new connection to the DR
    // service (to B) and the two that followed templates; InPkts and
    // OutPkts every packet forwarded.
    let want_stats: BTreeMap<String, [u64; 3]> = [
        (format!("TCP {DR_VIP}:80"), [1, 3, 0]),
        (format!("TCP {TUN_VIP}:80"), [0, 2, 0]),
        (format!("TCP {NAT_VIP}:80"), [0, 2, 1]),
        (format!("UDP {DR_VIP}:53"), [0, 1, 0]),
        (format!("UDP {NAT_VIP}:53"), [0, 1, 0]),
        (format!("TCP {PST_VIP}:443"), [1, 2, 0]),
        (format!("TCP {NAT_VIP}:443"), [0, 1, 0]),
        (format!("FWM {MARK}"), [1, 2, 0]),
    ]
    .into_iter()
    .collect();
    assert_eq!(stats, want_stats);

    // (a) Every message, decoded by the kernel's reading of it: v1, the
    // syncid, its size, every record whole and installable...
    assert!(!msgs.is_empty());
    let verdicts = peer_decode(&msgs, Some(SYNCID));
    let mut received = Vec::new();
    for (m, v) in msgs.iter().zip(&verdicts) {
        assert_eq!(v["version"], 1, "{v}");
        assert_eq!(v["syncid"], SYNCID, "{v}");
        assert_eq!(v["size"], m.len(), "{v}");
        assert_eq!(v["error"], Value::Null, "{v}");
        let recs = v["records"].as_array().unwrap();
        assert_eq!(v["nr_conns"], recs.len(), "{v}");
        for r in recs {
            for (k, want) in [
                ("status", json!("ok")),
                ("af", json!(4)),
                ("type", json!(0)),
                ("size", json!(36)),
                ("seq", Value::Null),
                ("pe_data", Value::Null),
                ("pe_name", Value::Null),
            ] {
                assert_eq!(r[k], want, "{k} of {r}");
            }
            received.push(Rec::of(r));
        }
    }
    // ...and the records exactly those expected, field by field, each
    // flow's in order.
    let mut got = received.clone();
    let mut all = expected.clone();
    got.sort();
    all.sort();
    assert_eq!(got, all, "records on the wire");
    for f in &flows {
        let mine: Vec<&Rec> = received.iter().filter(|r| f.synced.contains(r)).collect();
        assert_eq!(
            mine,
            f.synced.iter().collect::<Vec<_>>(),
            "{}: order",
            f.name
        );
    }
    // (b) Wireshark reads the same.
    let sync_frames: Vec<Vec<u8>> = frames
        .iter()
        .filter(|f| {
            parse_frame(f).is_some_and(|(_, _, p, _)| p.src == ip(MASTER_IP) && p.dport == 8848)
        })
        .cloned()
        .collect();
    write_pcap(&dir.path("sync.pcap"), &sync_frames);
    tshark_agrees(&dir.path("sync.pcap"), &verdicts);

    // Both daemons' counters agree with the wire.
    let bytes: u64 = msgs.iter().map(|m| m.len() as u64).sum();
    let n = expected.len() as u64;
    assert_eq!(
        (
            mstats.messages,
            mstats.records,
            mstats.bytes,
            mstats.send_errors
        ),
        (msgs.len() as u64, n, bytes, 0),
        "{mstats:?}"
    );
    assert_eq!(mstats.ring_drops, [0, 0], "{mstats:?}");
    assert!(mstats.rejected.is_empty(), "{mstats:?}");
    assert_eq!(
        (
            bstats.messages,
            bstats.records,
            bstats.bytes,
            bstats.installed
        ),
        (msgs.len() as u64, n, bytes, n),
        "{bstats:?}"
    );
    assert!(bstats.rejected.is_empty(), "{bstats:?}");

    assert!(backup.running() && master.running());
    let blog = backup.stop();
    let mlog = master.stop();
    // Worker 0 reads af_packet's one queue and hands each packet of a
    // client that worker 1 owns over to it (redirected; NAT replies among
    // them, by their destination). The owner then found the synced entry
    // in its own table: every packet of a synced flow went where the
    // entry says, and the one unsynced flow's segment found nothing.
    let to_1 = |frames: &[&Vec<u8>], replies: bool| {
        frames
            .iter()
            .map(|f| parse_frame(f).unwrap().2)
            .filter(|p| replies == (p.src == ip(RS_A)))
            .filter(|p| {
                owner(if p.src == ip(CLIENT) {
                    p.sport
                } else {
                    p.dport
                }) == 1
            })
            .count() as u64
    };
    let bframes: Vec<&Vec<u8>> = to_backup.iter().map(|(f, _)| f).collect();
    let mframes: Vec<&Vec<u8>> = to_master.iter().collect();
    assert_eq!(
        counter(&blog, "event", "redirected"),
        to_1(&bframes, false) + to_1(&bframes, true),
        "{blog:?}"
    );
    assert_eq!(counter(&blog, "event", "redirected_replies"), 1, "{blog:?}");
    assert_eq!(counter(&blog, "drop", "no_connection"), 1, "{blog:?}");
    assert_eq!(counter(&blog, "drop", "standby"), 1, "{blog:?}");
    assert_eq!(
        counter(&mlog, "event", "redirected"),
        to_1(&mframes, false) + to_1(&mframes, true),
        "{mlog:?}"
    );
    assert_eq!(counter(&mlog, "event", "redirected_replies"), 1, "{mlog:?}");
    assert_eq!(counter(&mlog, "drop", "no_connection"), 0, "{mlog:?}");
    // Per-worker ring losses are reported at stop.
    for log in [&mlog, &blog] {
        for w in 0..2 {
            let line = format!("worker {w} sync_ring_drops 0");
            assert!(log.contains(&line), "{line}: {log:?}");
        }
    }
}

// ------------------------------------------------------ bad input

/// The backup's connection table in the bad-input test, split over its
/// two workers as `max_connections` is.
const SMALL_TABLE: usize = 1024;
/// The bad-input backup's maxlen, its least: longer datagrams are
/// refused as `too_long`. (Below the default 1472 so that a longer
/// datagram reaches it at all: the af_packet PMD's socket reassembles
/// fragments, and the exception tap refuses frames over its MTU.)
const BACKUP_MAXLEN: usize = 1024;

/// A connection's key: protocol, client, virtual address and port.
type Key = (u8, String, u16, String, u16);

/// What the backup must count: ripvs's rules applied to the kernel
/// peer's reading of each datagram, and each worker's table.
#[derive(Default)]
struct Model {
    messages: u64,
    records: u64,
    bytes: u64,
    installed: u64,
    rejected: BTreeMap<String, u64>,
    /// Per worker: (proto, caddr, cport, vaddr, vport) -> (daddr, dport).
    tables: [BTreeMap<Key, (String, u16)>; 2],
}

impl Model {
    fn reject(&mut self, why: &str) {
        *self.rejected.entry(why.to_string()).or_default() += 1;
    }

    /// Accounts for datagram `d`, which the peer read as `v`; returns the
    /// reasons it was refused for, in order (empty: all taken).
    fn datagram(&mut self, d: &[u8], v: &Value) -> Vec<String> {
        let before = self.rejected.clone();
        if d.len() > BACKUP_MAXLEN {
            self.reject("too_long");
        } else if let Some(r) = v["reject"].as_str() {
            self.reject(r);
        } else {
            self.messages += 1;
            self.bytes += d.len() as u64;
            for r in v["records"].as_array().unwrap() {
                self.record(r);
            }
            if let Some(e) = v["error"].as_str() {
                self.reject(e);
            }
        }
        let mut why = Vec::new();
        for (k, n) in &self.rejected {
            for _ in before.get(k).copied().unwrap_or(0)..*n {
                why.push(k.clone());
            }
        }
        why
    }

    /// One record the kernel got to. ripvs refuses what the kernel does,
    /// under the same names; it also refuses IPv6 records (it holds IPv4
    /// only), and it checks the persistence data while decoding, before
    /// protocol and state (ctrl::sync::codec explains both).
    fn record(&mut self, r: &Value) {
        let status = r["status"].as_str().unwrap();
        let pe_data = r["pe_data"].is_string();
        let name = r["pe_name"].as_str().map(unhex);
        let skipped = match status {
            "option_unknown" => Some("option_unknown"),
            _ if r["af"] == 6 => Some("ipv6"),
            _ if pe_data && name.is_none() => Some("pe_without_name"),
            _ if pe_data
                && name
                    .as_ref()
                    .is_some_and(|n| std::str::from_utf8(n).is_err()) =>
            {
                Some("pe_unknown")
            }
            _ => None,
        };
        if let Some(why) = skipped {
            return self.reject(why);
        }
        self.records += 1;
        if status != "ok" {
            return self.reject(status);
        }
        let rec = Rec::of(r);
        assert_eq!(rec.flags & TEMPLATE, 0, "templates are left out here: {r}");
        let key = (
            rec.proto,
            rec.caddr.clone(),
            rec.cport,
            rec.vaddr.clone(),
            rec.vport,
        );
        let table = &mut self.tables[owner_core(ip(&rec.caddr), rec.cport, 2)];
        let dest = (rec.daddr.clone(), rec.dport);
        match table.get(&key) {
            Some(d) if *d == dest => {}
            Some(_) if rec.flags & INACTIVE != 0 => return self.reject("stale"),
            Some(_) => {
                table.remove(&key);
                table.insert(key, dest);
            }
            None if table.len() >= SMALL_TABLE / 2 => return self.reject("table_full"),
            None => {
                table.insert(key, dest);
            }
        }
        self.installed += 1;
    }

    fn stats(&self) -> (u64, u64, u64, u64, BTreeMap<String, u64>) {
        (
            self.messages,
            self.records,
            self.bytes,
            self.installed,
            self.rejected.clone(),
        )
    }
}

fn observed(s: &SyncStats) -> (u64, u64, u64, u64, BTreeMap<String, u64>) {
    (
        s.messages,
        s.records,
        s.bytes,
        s.installed,
        s.rejected.clone(),
    )
}

/// A TCP record of client `caddr:cport` established on the DR service.
fn established(caddr: &str, cport: u16) -> Rec {
    Rec {
        caddr: caddr.into(),
        ..conn_rec(6, NOOUTPUT | DROUTE, ES, cport, DR_VIP, 80, 80, 900)
    }
}

fn message(records: &[Value]) -> Value {
    json!({"version": 1, "syncid": SYNCID, "records": records})
}

/// xorshift64*: deterministic, so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Random datagrams: a third random bytes; a third a sound v1 header
/// over random records; a third v1 records with random fields and
/// options (never templates, whose table is sharded by a hash the test
/// does not know).
fn random_datagrams(seed: u64, n: usize) -> Vec<Vec<u8>> {
    let mut r = Rng(seed);
    (0..n)
        .map(|i| {
            if i % 3 == 0 {
                let len = r.below(120);
                return r.bytes(len);
            }
            let nr = 1 + r.below(3);
            let mut m = vec![0, SYNCID, 0, 0, nr as u8, 1, 0, 0];
            if i % 3 == 1 {
                let len = r.below(150);
                m.extend(r.bytes(len));
            } else {
                for _ in 0..nr {
                    let v6 = r.below(8) == 0;
                    let fixed = if v6 { 72 } else { 36 };
                    let opts = if r.below(2) == 0 { 0 } else { r.below(9) };
                    let mut rec = r.bytes(fixed + opts);
                    rec[0] = v6 as u8;
                    rec[1] = [6, 17, 132, 47, 0][r.below(5)];
                    let size = if r.below(10) == 0 {
                        r.below(4096)
                    } else {
                        fixed + opts
                    };
                    rec[2..4].copy_from_slice(&(size as u16).to_be_bytes());
                    rec[6] &= !0x10; // not a template
                    rec[8] = 0;
                    rec[9] = r.below(16) as u8;
                    if opts >= 2 && r.below(2) == 0 {
                        // A plausible option: a known or optional type.
                        rec[fixed] = [1, 2, 3, 0x41, 9][r.below(5)];
                        rec[fixed + 1] = r.below(opts) as u8;
                    }
                    m.extend(rec);
                    m.resize(m.len().next_multiple_of(4), 0);
                }
            }
            let len = (m.len() as u16).to_be_bytes();
            m[2..4].copy_from_slice(&len);
            m
        })
        .collect()
}

/// Sends `msgs` to the backup's group from the client (a pause every
/// `batch`), accounts for them in `model`, and waits until the backup's
/// counters are the model's. Each datagram's refusal reasons.
fn phase(
    lan: &Lan,
    backup: &mut Daemon,
    name: &str,
    msgs: &[Vec<u8>],
    batch: usize,
    model: &mut Model,
) -> Vec<Vec<String>> {
    let verdicts = peer_decode(msgs, Some(SYNCID));
    let why: Vec<Vec<String>> = msgs
        .iter()
        .zip(&verdicts)
        .map(|(m, v)| model.datagram(m, v))
        .collect();
    let mut lines = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        if i > 0 && i % batch == 0 {
            lines.push("pause 0.03".to_string());
        }
        lines.push(format!("m{}", hex(m)));
    }
    lan.send_sync("c", CLIENT, &lines);
    let want = model.stats();
    let mut got = None;
    let same = wait_until(20, || {
        got = Some(observed(&sync_stats(backup, "backup")));
        got.as_ref() == Some(&want)
    });
    if !same {
        let (_, log) = backup.terminate();
        panic!(
            "{name}: backup counted {:?}, expected {want:?}; its output:\n{}",
            got.unwrap(),
            log.join("\n")
        );
    }
    why
}

#[test]
fn bad_sync_input_is_counted_by_reason() {
    let lan = Lan::up("b", &["b", "c"]);
    let dir = Scratch::new("sync-bad");
    let cfg = dir.path("backup.toml");
    std::fs::write(
        &cfg,
        config(
            &lan,
            "b",
            BACKUP_IP,
            "backup",
            (1, 1),
            SMALL_TABLE as u32,
            &format!("maxlen = {BACKUP_MAXLEN}"),
        ),
    )
    .unwrap();
    // The sender's socket needs an address; the client namespace sends
    // nothing else.
    lan.ok_in(
        "c",
        &[
            "ip",
            "addr",
            "add",
            &format!("{CLIENT}/24"),
            "dev",
            &lan.ns_if("c"),
        ],
    );
    let mut backup = Daemon::start_in(&lan.ns("b"), &cfg);
    backup.wait_for("sync backup: started", Duration::from_secs(10));
    let mut model = Model::default();

    // Damaged messages, each built from the kernel peer's encoding of a
    // good one; the peer's verdict on each is asserted too, so that the
    // model's expectations are the kernel's.
    let k0 = established("192.0.2.250", 1000);
    let enc = |recs: Vec<Value>| peer_encode(&[message(&recs)]).remove(0);
    let good = enc(vec![k0.desc()]);
    let with = |f: &dyn Fn(&mut Value)| {
        let mut d = k0.desc();
        f(&mut d);
        enc(vec![d])
    };
    let patched = |at: usize, f: &dyn Fn(&mut u8)| {
        let mut m = good.clone();
        f(&mut m[at]);
        m
    };
    let mut oversized = vec![0, SYNCID, 0x05, 0x78, 0, 1, 0, 0];
    oversized.resize(1400, 0);
    let mut short_size = with(&|d| d["extra_options"] = json!([[0x41, "00"]]));
    short_size[11] = 37; // the record ends inside the option's header
    let mut overrun = with(&|d| d["extra_options"] = json!([[0x41, "00"]]));
    overrun[8 + 37] = 30; // the option runs past its record
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("too_short", vec![]),
        ("too_short", vec![0, SYNCID, 0]),
        ("size_mismatch", good[..30].to_vec()),
        ("too_long", oversized),
        ("syncid", {
            let mut d = message(&[k0.desc()]);
            d["syncid"] = json!(7);
            peer_encode(&[d]).remove(0)
        }),
        // A v1 receiver reads version 2 as v0, whose count (the reserved
        // byte) is 0: nothing to refuse, nothing to install.
        ("", patched(5, &|b| *b = 2)),
        // A reserved byte of 1 is a v0 count of 1: the v0 record read
        // from the v1 header has protocol 1.
        ("protocol", patched(0, &|b| *b = 1)),
        ("record_version", patched(10, &|b| *b |= 0x10)),
        ("record_type", patched(8, &|b| *b = 2)),
        ("record_size", patched(11, &|b| *b = 20)),
        // A count of 1 and no record.
        ("record_truncated", vec![0, SYNCID, 0, 8, 1, 1, 0, 0]),
        (
            "option_length",
            with(&|d| d["extra_options"] = json!([[9, ""]])),
        ),
        ("option_length", overrun),
        ("option_truncated", short_size),
        (
            "option_unknown",
            with(&|d| d["extra_options"] = json!([[9, "0000"]])),
        ),
        (
            "option_duplicate",
            with(&|d| {
                d["flags"] = json!(NOOUTPUT | DROUTE | 0x400);
                d["extra_options"] = json!([[1, "00".repeat(24)]]);
            }),
        ),
        (
            "pe_name_too_long",
            with(&|d| d["extra_options"] = json!([[3, "61".repeat(17)]])),
        ),
        ("pe_without_name", with(&|d| d["pe_data"] = json!("aabb"))),
        (
            "pe_unknown",
            with(&|d| {
                d["pe_data"] = json!("aabb");
                d["pe_name"] = json!("sip");
            }),
        ),
        ("protocol", with(&|d| d["proto"] = json!(47))),
        ("state", with(&|d| d["state"] = json!(11))),
        (
            "ipv6",
            with(&|d| {
                d["af"] = json!(6);
                d["caddr"] = json!("2001:db8::9");
                d["vaddr"] = json!("2001:db8::100");
                d["daddr"] = json!("2001:db8::21");
            }),
        ),
        ("", peer_encode(&[message(&[])]).remove(0)),
    ];
    let msgs: Vec<Vec<u8>> = bad.iter().map(|(_, m)| m.clone()).collect();
    let why = phase(&lan, &mut backup, "malformed", &msgs, 1000, &mut model);
    for ((want, m), got) in bad.iter().zip(&why) {
        let want: Vec<String> = if want.is_empty() {
            vec![]
        } else {
            vec![want.to_string()]
        };
        assert_eq!(*got, want, "{}", hex(m));
    }
    assert_eq!(model.installed, 0);
    assert!(backup.running());

    // A good message is installed after all that.
    let k1 = established("192.0.2.1", 1001);
    let k2 = Rec {
        caddr: "192.0.2.2".into(),
        ..conn_rec(
            17,
            NOOUTPUT | DROUTE | INACTIVE,
            0,
            1002,
            DR_VIP,
            53,
            53,
            300,
        )
    };
    phase(
        &lan,
        &mut backup,
        "good",
        &[enc(vec![k1.desc(), k2.desc()])],
        1000,
        &mut model,
    );
    assert_eq!(model.installed, 2);

    // Good records before a bad one are installed, the rest of the
    // message is not; a record refused alone does not stop the next.
    let k = |n: u16| established(&format!("192.0.2.{n}"), 1000 + n);
    let opt = |r: &Rec, o: Value| {
        let mut d = r.desc();
        d["extra_options"] = o;
        d
    };
    let mut trunc = enc(vec![k(7).desc()]);
    trunc[4] = 2;
    let mixed = vec![
        enc(vec![
            k(3).desc(),
            opt(&k(40), json!([[9, ""]])),
            k(4).desc(),
        ]),
        enc(vec![
            k(5).desc(),
            opt(&k(41), json!([[9, "0000"]])),
            k(6).desc(),
        ]),
        trunc,
        enc(vec![Rec { proto: 47, ..k(8) }.desc(), k(9).desc()]),
    ];
    let why = phase(&lan, &mut backup, "good then bad", &mixed, 1000, &mut model);
    assert_eq!(
        why,
        [
            ["option_length"],
            ["option_unknown"],
            ["record_truncated"],
            ["protocol"]
        ]
        .map(|w| vec![w[0].to_string()])
    );
    let listed: BTreeSet<(String, u16, String)> = conns(&backup)
        .iter()
        .map(|c| (c.caddr.to_string(), c.cport, c.state.clone()))
        .collect();
    let want: BTreeSet<(String, u16, String)> = [&k1, &k(3), &k(5), &k(6), &k(7), &k(9)]
        .iter()
        .map(|r| (r.caddr.clone(), r.cport, "ESTABLISHED".to_string()))
        .chain([(k2.caddr.clone(), k2.cport, "UDP".to_string())])
        .collect();
    assert_eq!(listed, want);

    // A flood: 3000 messages of two records each in about a second. The
    // table takes what its size allows, per worker, and refuses the rest.
    let flood_recs: Vec<Rec> = (0..6000u32)
        .map(|i| {
            established(
                &format!("10.{}.{}.{}", 200 + i / 62500, i / 250 % 250, i % 250 + 1),
                30000 + (i % 7) as u16,
            )
        })
        .collect();
    let flood: Vec<Vec<u8>> = peer_encode(
        &flood_recs
            .chunks(2)
            .map(|c| message(&c.iter().map(Rec::desc).collect::<Vec<_>>()))
            .collect::<Vec<_>>(),
    );
    let started = Instant::now();
    phase(&lan, &mut backup, "flood", &flood, 100, &mut model);
    println!(
        "flood of {} messages taken in {:?}",
        flood.len(),
        started.elapsed()
    );
    assert_eq!(
        model.tables.iter().map(|t| t.len()).sum::<usize>(),
        SMALL_TABLE
    );
    assert!(model.rejected["table_full"] > 4000, "{:?}", model.rejected);
    assert_eq!(
        conns(&backup).len(),
        SMALL_TABLE,
        "memory bounded by the table"
    );

    // Random datagrams: each refused (or taken) as the kernel would.
    let random = random_datagrams(0x5eed_1234, 300);
    let before = model.rejected.clone();
    phase(&lan, &mut backup, "random", &random, 50, &mut model);
    let reasons: BTreeSet<&String> = model
        .rejected
        .iter()
        .filter(|(k, n)| before.get(*k) != Some(n))
        .map(|(k, _)| k)
        .collect();
    println!("random datagrams were refused for {reasons:?}");
    assert!(reasons.len() >= 8, "too little variety: {reasons:?}");

    // Still installing: an update of an entry it holds goes in even with
    // the table full (k1 closes); a new entry does not.
    let k1_fin = Rec {
        flags: NOOUTPUT | DROUTE | INACTIVE,
        state: FW,
        timeout: 120,
        ..k1.clone()
    };
    let why = phase(
        &lan,
        &mut backup,
        "update",
        &[enc(vec![k1_fin.desc(), k(99).desc()])],
        1000,
        &mut model,
    );
    assert_eq!(why, [vec!["table_full".to_string()]]);
    let k1_now: Vec<ConnInfo> = conns(&backup)
        .into_iter()
        .filter(|c| c.caddr.to_string() == k1.caddr && c.cport == k1.cport)
        .collect();
    assert_eq!(k1_now.len(), 1);
    assert_eq!(k1_now[0].state, "FIN_WAIT");

    assert!(backup.running(), "the backup survived it all");
    let log = backup.stop();
    for w in 0..2 {
        let line = format!("worker {w} sync_ring_drops 0");
        assert!(log.contains(&line), "{line}: {log:?}");
    }
}
