//! End to end: curl and UDP clients in client namespaces, nginx and UDP
//! echo servers in three real-server namespaces, ripvsd in between on
//! net_af_packet ports, driven with ripvsadm (tools/topology draws the
//! network). Every scenario runs with one worker and with two; with two,
//! af_packet's single queue makes worker 0 receive everything and hand
//! the other worker's packets over, NAT replies included, which the
//! `redirected` counter shows. Needs root.
//!
//! Each test is its own process (nextest) with its own topology and
//! daemon, run one at a time (the `kernel-traffic` group).

mod common;

use common::topo::Topology;
use common::{counter, Daemon, Scratch};
use std::collections::BTreeMap;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const DR_VIP: &str = "10.60.0.100";
const TUN_VIP: &str = "10.60.0.101";
const NAT_VIP: &str = "10.60.0.102";
const SERVERS: [&str; 3] = ["r1", "r2", "r3"];
/// The bytes of /big on each server (tools/topology).
const BIG: usize = 1 << 20;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Dr,
    Tun,
    Nat,
}

impl Mode {
    fn vip(self) -> &'static str {
        match self {
            Mode::Dr => DR_VIP,
            Mode::Tun => TUN_VIP,
            Mode::Nat => NAT_VIP,
        }
    }
    /// ipvsadm's forwarding flag.
    fn flag(self) -> &'static str {
        match self {
            Mode::Dr => "-g",
            Mode::Tun => "-i",
            Mode::Nat => "-m",
        }
    }
    /// Real server `n` (1..=3) as the director reaches it in this mode:
    /// on the front segment for DR and TUN, on the back one for NAT.
    fn server(self, n: usize) -> String {
        match self {
            Mode::Dr | Mode::Tun => format!("10.60.0.1{n}"),
            Mode::Nat => format!("10.61.0.1{n}"),
        }
    }
}

/// A topology with ripvsd running on its two director ports and no
/// services yet: each test adds its own with ripvsadm.
struct Bench {
    // Dropped in this order: the daemon before the network it runs on.
    daemon: Option<Daemon>,
    topo: Topology,
    _dir: Scratch,
}

impl Bench {
    fn new(tag: &str, workers: &str) -> Bench {
        common::require_root();
        // Unique per process: other runs of the suite may share the machine.
        let p = format!("{tag}{}", std::process::id() % 10000);
        let topo = Topology::up(&p);
        let dir = Scratch::new(&format!("e2e-{tag}"));
        let cfg = common::topo::director_config(&p, workers, false);
        std::fs::write(dir.path("ripvs.toml"), cfg).unwrap();
        let daemon = Daemon::start(&dir.path("ripvs.toml"));
        Bench {
            daemon: Some(daemon),
            topo,
            _dir: dir,
        }
    }

    fn ns(&self, short: &str) -> String {
        self.topo.ns(short)
    }

    /// `ripvsadm ARGS` against this daemon; must succeed. Its stdout.
    fn adm(&self, args: &[&str]) -> String {
        let out = common::ripvsadm(&self.daemon.as_ref().unwrap().socket)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ripvsadm {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A TCP service on port 80 of `mode`'s VIP, its servers with `weights`
    /// (server n+1 gets weights[n]; 0-length: none).
    fn tcp_service(&self, mode: Mode, sched: &[&str], weights: &[u32]) {
        let vs = format!("{}:80", mode.vip());
        let mut a = vec!["-A", "-t", &vs];
        a.extend_from_slice(sched);
        self.adm(&a);
        for (i, w) in weights.iter().enumerate() {
            self.add_server(mode, &vs, i + 1, *w);
        }
    }

    fn add_server(&self, mode: Mode, vs: &str, n: usize, weight: u32) {
        let rs = format!("{}:80", mode.server(n));
        let w = weight.to_string();
        self.adm(&["-a", "-t", vs, "-r", &rs, mode.flag(), "-w", &w]);
    }

    fn run(&self, ns: &str, args: &[&str]) -> Output {
        self.topo.run(ns, args)
    }

    fn http(&self, ns: &str, vip: &str, n: usize) -> Vec<String> {
        self.topo.http(ns, vip, n)
    }

    /// The connection entries (`-L -n -c`) whose virtual address is `vs`.
    fn conns(&self, vs: &str) -> Vec<ConnEntry> {
        self.adm(&["-L", "-n", "-c"])
            .lines()
            .skip(2)
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() == 6 && f[4] == vs).then(|| ConnEntry {
                    proto: f[0].to_string(),
                    state: f[2].to_string(),
                    client: f[3].to_string(),
                    dest: f[5].to_string(),
                })
            })
            .collect()
    }

    /// Stops ripvsd; its final counters.
    fn stop(mut self) -> Vec<String> {
        let log = self.daemon.take().unwrap().stop();
        assert_eq!(counter(&log, "drop", "no_connection"), 0, "{log:?}");
        assert_eq!(counter(&log, "drop", "unknown_destination"), 0, "{log:?}");
        log
    }
}

#[derive(Debug)]
struct ConnEntry {
    proto: String,
    state: String,
    client: String,
    dest: String,
}

/// How many answers each server gave (every server present).
fn tally<S: AsRef<str>>(names: &[S]) -> BTreeMap<String, usize> {
    let mut t: BTreeMap<String, usize> = SERVERS.iter().map(|s| (s.to_string(), 0)).collect();
    for n in names {
        *t.get_mut(n.as_ref()).unwrap() += 1;
    }
    t
}

/// The server name of an address the director uses ("10.61.0.12:80" → r2).
fn name_of(addr: &str) -> String {
    let ip = addr.split(':').next().unwrap();
    format!(
        "r{}",
        ip.rsplit('.').next().unwrap().strip_prefix('1').unwrap()
    )
}

/// Every service and real server line of `-L -n --stats --exact`, keyed by
/// address ("TCP 10.60.0.100:80", or the service key + " -> 10.60.0.11:80"):
/// Conns, InPkts, OutPkts, InBytes, OutBytes.
fn stats(listing: &str) -> BTreeMap<String, [u64; 5]> {
    let mut m = BTreeMap::new();
    let mut svc = String::new();
    for l in listing.lines().skip(3) {
        let f: Vec<&str> = l.split_whitespace().collect();
        let nums = |at: usize| -> [u64; 5] {
            std::array::from_fn(|i| {
                f[at + i]
                    .parse()
                    .unwrap_or_else(|_| panic!("not a number in {l:?}"))
            })
        };
        if f[0] == "->" {
            m.insert(format!("{svc} -> {}", f[1]), nums(2));
        } else {
            svc = format!("{} {}", f[0], f[1]);
            m.insert(svc.clone(), nums(2));
        }
    }
    m
}

/// Polls `f` every 100 ms until it returns true, for at most `secs`.
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

/// With two workers on af_packet's single queue, worker 0 receives every
/// frame and hands each to the core that owns its client endpoint,
/// requests and NAT replies alike; `redirected_replies` counts the NAT
/// replies among them. (Every caller's traffic includes a NAT service.)
/// A reply not handed over would also find no connection on worker 0
/// (`drop no_connection`, which `Bench::stop` asserts is 0) and its request
/// would go unanswered.
fn assert_redirects(log: &[String], workers: usize) {
    let r = counter(log, "event", "redirected");
    let replies = counter(log, "event", "redirected_replies");
    if workers == 1 {
        assert_eq!((r, replies), (0, 0), "one worker owns everything: {log:?}");
    } else {
        assert!(
            replies > 0 && r > replies,
            "two workers on one queue must hand over requests and NAT replies: {log:?}"
        );
    }
}

const ONE: &str = "[1]";
const TWO: &str = "[1, 2]";

// ---------------------------------------------------------------- wrr

/// wrr with weights 1:2:1 through each forwarding method: 400 connections
/// give each server its share within ±5 % (IPVS's wrr is deterministic:
/// one worker gives exactly 100/200/100; with two, each core runs its own
/// sequence over the connections it owns).
fn wrr(tag: &str, workers: &str, n_workers: usize) {
    let b = Bench::new(tag, workers);
    for mode in [Mode::Dr, Mode::Tun, Mode::Nat] {
        b.tcp_service(mode, &["-s", "wrr"], &[1, 2, 1]);
    }
    for mode in [Mode::Dr, Mode::Tun, Mode::Nat] {
        let t = tally(&b.http("c1", mode.vip(), 400));
        println!("{mode:?} wrr 1:2:1 over 400 connections: {t:?}");
        for (name, share) in [("r1", 100), ("r2", 200), ("r3", 100)] {
            let got = t[name];
            assert!(
                got.abs_diff(share) * 100 <= share * 5,
                "{mode:?}: {name} answered {got} of 400, expected {share} ± 5 %: {t:?}"
            );
        }
        if n_workers == 1 {
            assert_eq!(
                t.values().copied().collect::<Vec<_>>(),
                [100, 200, 100],
                "{mode:?}"
            );
        }
    }
    assert_redirects(&b.stop(), n_workers);
}

#[test]
fn wrr_1_2_1_through_dr_tun_nat() {
    wrr("wa", ONE, 1);
}

#[test]
fn wrr_1_2_1_through_dr_tun_nat_two_workers() {
    wrr("wb", TWO, 2);
}

// -------------------------------------------------------- persistence

/// An HTTP/1.1 keep-alive connection from client namespace `ns` to
/// `vip`:80 that has had one answer (`server`, the name of the real server
/// behind it) and stays open until dropped.
struct Held {
    child: Child,
    server: String,
}

const HOLD: &str = r#"
import socket, sys
s = socket.create_connection((sys.argv[1], 80), timeout=5)
s.sendall(b"GET / HTTP/1.1\r\nHost: ripvs\r\n\r\n")
data = b""
def done():
    if b"\r\n\r\n" not in data:
        return False
    head, body = data.split(b"\r\n\r\n", 1)
    length = [l for l in head.lower().split(b"\r\n") if l.startswith(b"content-length:")]
    return bool(length) and len(body) >= int(length[0].split(b":")[1])
while not done():
    chunk = s.recv(4096)
    if not chunk:
        sys.exit("closed before the answer")
    data += chunk
print(data.split(b"\r\n\r\n", 1)[1].decode().strip(), flush=True)
sys.stdin.read()
s.close()
"#;

impl Held {
    fn open(topo: &Topology, ns: &str, vip: &str) -> Held {
        use std::io::BufRead;
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &topo.ns(ns),
                "/usr/bin/python3",
                "-c",
                HOLD,
                vip,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let server = line.trim().to_string();
        assert!(
            SERVERS.contains(&server.as_str()),
            "held connection: {line:?}"
        );
        Held { child, server }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // Closing its stdin lets the client close the connection.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// A persistent rr service (`-p 1`, FIN_WAIT timeout 1 s so closed
/// connections go quickly): every connection from one client reaches one
/// server; once the connections and then the template have expired, the
/// scheduler chooses again. rr moves on from the server it chose, so with
/// one worker each round lands on a new server; with two, each core keeps
/// its own rr position, and over three rounds at least one core chooses
/// twice, so the rounds cannot all reach the same server.
fn persistence(tag: &str, workers: &str, n_workers: usize) {
    let b = Bench::new(tag, workers);
    b.adm(&["--set", "0", "1", "0"]);
    b.tcp_service(Mode::Dr, &["-s", "rr", "-p", "1"], &[1, 1, 1]);
    let vs = format!("{DR_VIP}:80");
    let mut rounds = Vec::new();
    for round in 0..3 {
        // A connection held open keeps the template alive however slowly
        // the requests and the listing below run on a loaded machine (a
        // template never expires while it controls a connection); with
        // only the 1 s timeouts, a listing late by a second finds nothing.
        let held = Held::open(&b.topo, "c1", DR_VIP);
        let mut names = b.http("c1", DR_VIP, 20);
        names.push(held.server.clone());
        let t = tally(&names);
        println!("round {round}: {t:?}");
        assert!(
            names.iter().all(|n| *n == names[0]),
            "round {round}: one client, one server while the template lives: {t:?}"
        );
        // The template is listed as a connection with client port 0.
        let c = b.conns(&vs);
        assert!(
            c.iter()
                .any(|e| e.client == "10.60.0.2:0" && name_of(&e.dest) == names[0]),
            "a template for 10.60.0.2 → {}: {c:?}",
            names[0]
        );
        drop(held);
        rounds.push(names[0].clone());
        assert!(
            wait_until(30, || b.conns(&vs).is_empty()),
            "connections and template never expired: {:?}",
            b.conns(&vs)
        );
    }
    println!("persistent rounds reached {rounds:?}");
    if n_workers == 1 {
        assert!(
            rounds.windows(2).all(|w| w[0] != w[1]),
            "rr after the template expired: {rounds:?}"
        );
    } else {
        assert!(rounds.iter().any(|r| *r != rounds[0]), "{rounds:?}");
    }
    b.stop();
}

#[test]
fn persistence_one_client_one_server_until_the_template_expires() {
    persistence("pa", ONE, 1);
}

#[test]
fn persistence_one_client_one_server_until_the_template_expires_two_workers() {
    persistence("pb", TWO, 2);
}

// ------------------------------------------- weight 0, delete and add

/// A rate-limited download from client 2 (1 MiB at 128 KiB/s: 8 s, ample time for the changes below), started
/// before its server is made quiescent.
fn slow_download(b: &Bench, vip: &str) -> Child {
    Command::new("ip")
        .args(["netns", "exec", &b.ns("c2"), "curl", "-sS", "-m", "60"])
        .args(["--limit-rate", "128k", &format!("http://{vip}/big")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// With rr over the three servers: a download starts on server S; S is
/// set to weight 0 (`-e -w 0`) and then gets no new connection while the
/// download goes on; another server T is deleted (`-d`) and gets none
/// either; T added back (`-a`) takes the very next connections with the
/// remaining server; the download completes whole, from S.
fn quiesce(b: &Bench, mode: Mode) {
    let vip = mode.vip();
    let vs = format!("{vip}:80");
    b.tcp_service(mode, &["-s", "rr"], &[1, 1, 1]);
    let mut download = slow_download(b, vip);
    let mut entry = None;
    assert!(
        wait_until(10, || {
            entry = b
                .conns(&vs)
                .into_iter()
                .find(|e| e.client.starts_with("10.60.0.3:") && e.state == "ESTABLISHED");
            entry.is_some()
        }),
        "{mode:?}: the download's connection never showed: {:?}",
        b.conns(&vs)
    );
    let s_addr = entry.unwrap().dest;
    let s = name_of(&s_addr);
    b.adm(&["-e", "-t", &vs, "-r", &s_addr, mode.flag(), "-w", "0"]);
    let after_quiesce = tally(&b.http("c1", vip, 60));
    println!("{mode:?}: {s} at weight 0 (downloading): {after_quiesce:?}");
    assert_eq!(after_quiesce[&s], 0, "{mode:?}: weight 0 server {s}");

    let (t_n, u_n) = match s.as_str() {
        "r1" => (2, 3),
        "r2" => (3, 1),
        _ => (1, 2),
    };
    let (t, u) = (format!("r{t_n}"), format!("r{u_n}"));
    b.adm(&["-d", "-t", &vs, "-r", &format!("{}:80", mode.server(t_n))]);
    let after_delete = tally(&b.http("c1", vip, 30));
    println!("{mode:?}: {t} deleted: {after_delete:?}");
    assert_eq!(after_delete[&u], 30, "{mode:?}: only {u} is left");

    b.add_server(mode, &vs, t_n, 1);
    let after_add = tally(&b.http("c1", vip, 30));
    println!("{mode:?}: {t} added back: {after_add:?}");
    assert_eq!(after_add[&s], 0, "{mode:?}: {s} still at weight 0");
    // rr alternates between the two (per core: two workers may each be
    // one step off).
    for n in [&t, &u] {
        assert!(after_add[n] >= 13, "{mode:?}: {n}: {after_add:?}");
    }
    assert!(
        download.try_wait().unwrap().is_none(),
        "{mode:?}: the download must still be running here to test anything"
    );
    let out = download.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{mode:?}: download: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), BIG, "{mode:?}: the whole of /big");
    let digit = s.as_bytes()[1];
    assert!(
        out.stdout.iter().all(|&c| c == digit),
        "{mode:?}: /big from {s} throughout"
    );
}

fn weight0_delete_add(tag: &str, workers: &str, n_workers: usize) {
    let b = Bench::new(tag, workers);
    quiesce(&b, Mode::Dr);
    quiesce(&b, Mode::Nat);
    assert_redirects(&b.stop(), n_workers);
}

#[test]
fn weight_0_delete_and_add_real_servers() {
    weight0_delete_add("qa", ONE, 1);
}

#[test]
fn weight_0_delete_and_add_real_servers_two_workers() {
    weight0_delete_add("qb", TWO, 2);
}

// ---------------------------------------------------------------- udp

/// 300 datagrams, each from its own source port (so each is a new
/// connection): the server that answered each.
fn udp_ask(b: &Bench, vip: &str, base_port: u16) -> Vec<String> {
    let script = format!(
        "import socket\n\
         for i in range(300):\n\
         \x20   s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         \x20   s.bind(('10.60.0.2', {base_port} + i))\n\
         \x20   s.settimeout(3)\n\
         \x20   s.sendto(b'who', ('{vip}', 5353))\n\
         \x20   print(s.recv(64).decode().strip())\n\
         \x20   s.close()\n"
    );
    let out = b.run("c1", &["python3", "-c", &script]);
    assert!(
        out.status.success(),
        "UDP client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// rr UDP services (DR and NAT): 300 datagrams from 300 source ports are
/// balanced 100 each (±5 %), and `-L -n -c` lists one UDP entry per source
/// port with the server that answered it.
fn udp(tag: &str, workers: &str, n_workers: usize) {
    let b = Bench::new(tag, workers);
    for (mode, base) in [(Mode::Dr, 20000), (Mode::Nat, 30000)] {
        let vs = format!("{}:5353", mode.vip());
        b.adm(&["-A", "-u", &vs, "-s", "rr"]);
        for n in 1..=3 {
            let rs = format!("{}:5353", mode.server(n));
            b.adm(&["-a", "-u", &vs, "-r", &rs, mode.flag()]);
        }
        let names = udp_ask(&b, mode.vip(), base);
        assert_eq!(names.len(), 300);
        let t = tally(&names);
        println!("{mode:?} UDP rr over 300 datagrams: {t:?}");
        for (name, got) in &t {
            assert!(got.abs_diff(100) <= 5, "{mode:?}: {name}: {t:?}");
        }
        let entries = b.conns(&vs);
        assert_eq!(entries.len(), 300, "{mode:?}: {entries:?}");
        let mut listed = BTreeMap::new();
        for e in &entries {
            assert_eq!(
                (e.proto.as_str(), e.state.as_str()),
                ("UDP", "UDP"),
                "{e:?}"
            );
            let port: u16 = e
                .client
                .strip_prefix("10.60.0.2:")
                .unwrap()
                .parse()
                .unwrap();
            listed.insert(port - base, name_of(&e.dest));
        }
        let answered: BTreeMap<u16, String> = (0..).zip(names).collect();
        assert_eq!(listed, answered, "{mode:?}: entries vs answers");
    }
    assert_redirects(&b.stop(), n_workers);
}

#[test]
fn udp_datagrams_are_balanced_and_listed() {
    udp("ua", ONE, 1);
}

#[test]
fn udp_datagrams_are_balanced_and_listed_two_workers() {
    udp("ub", TWO, 2);
}

// -------------------------------------------------------------- stats

/// The client's side of the exchange, counted by nftables in its
/// namespace: packets and bytes (IP length, as IPVS counts) it sent to
/// each VIP's port 80 and received from it.
const NFT: &str = "table ip e2e {
  chain out {
    type filter hook output priority 0;
    ip daddr 10.60.0.100 tcp dport 80 counter
    ip daddr 10.60.0.101 tcp dport 80 counter
    ip daddr 10.60.0.102 tcp dport 80 counter
  }
  chain in {
    type filter hook input priority 0;
    ip saddr 10.60.0.100 tcp sport 80 counter
    ip saddr 10.60.0.101 tcp sport 80 counter
    ip saddr 10.60.0.102 tcp sport 80 counter
  }
}
";

/// (packets, bytes) per nft rule, in the order of NFT: out DR, TUN, NAT,
/// in DR, TUN, NAT.
fn nft_counters(b: &Bench) -> Vec<(u64, u64)> {
    let out = b.run("c1", &["nft", "list", "table", "ip", "e2e"]);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let at = f.iter().position(|w| *w == "packets")?;
            Some((f[at + 1].parse().unwrap(), f[at + 3].parse().unwrap()))
        })
        .collect()
}

/// 200 connections to each of a DR, a TUN and a NAT service (wrr 1:2:1),
/// then `-L -n --stats --exact`: Conns is 200 per service and, per real
/// server, the number of answers it gave; InPkts/InBytes equal what the
/// client sent to the VIP (nftables counts it); for NAT, OutPkts/OutBytes
/// equal what the client received from the VIP, and for DR and TUN, whose
/// replies bypass the director, they are 0. Real server lines add up to
/// their service's.
fn stats_match(tag: &str, workers: &str, n_workers: usize) {
    let b = Bench::new(tag, workers);
    let mut nft = Command::new("ip")
        .args(["netns", "exec", &b.ns("c1"), "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    nft.stdin.take().unwrap().write_all(NFT.as_bytes()).unwrap();
    assert!(nft.wait().unwrap().success(), "nft");
    let modes = [Mode::Dr, Mode::Tun, Mode::Nat];
    for mode in modes {
        b.tcp_service(mode, &["-s", "wrr"], &[1, 2, 1]);
    }
    let mut answers = Vec::new();
    for mode in modes {
        answers.push(tally(&b.http("c1", mode.vip(), 200)));
    }
    // The last ACKs of the closes may still be on their way: the
    // comparison is made once both sides have stopped moving, and then
    // asserted exactly.
    let read = || {
        (
            stats(&b.adm(&["-L", "-n", "--stats", "--exact"])),
            nft_counters(&b),
        )
    };
    let mut last = read();
    wait_until(5, || {
        std::thread::sleep(Duration::from_millis(300));
        let now = read();
        let same = now == last;
        last = now;
        same
    });
    let (st, nf) = last;
    println!("{}", b.adm(&["-L", "-n", "--stats", "--exact"]));
    println!("client's nft counters (out DR TUN NAT, in DR TUN NAT): {nf:?}");
    assert_eq!(nf.len(), 6, "{nf:?}");
    for (i, mode) in modes.iter().enumerate() {
        let key = format!("TCP {}:80", mode.vip());
        let [conns, in_pkts, out_pkts, in_bytes, out_bytes] = st[&key];
        if conns != 200 {
            // What the entries were, for the failure report.
            println!(
                "{key}: {conns} connections counted; entries:\n{}",
                b.adm(&["-L", "-n", "-c"])
            );
        }
        assert_eq!(conns, 200, "{key}");
        assert_eq!(
            (in_pkts, in_bytes),
            nf[i],
            "{key}: in vs what the client sent"
        );
        // Each connection: at least SYN, handshake ACK, request, FIN.
        assert!(in_pkts >= 4 * 200, "{key}");
        if *mode == Mode::Nat {
            assert_eq!(
                (out_pkts, out_bytes),
                nf[3 + i],
                "{key}: out vs what the client received"
            );
        } else {
            assert_eq!((out_pkts, out_bytes), (0, 0), "{key}: replies bypass us");
            assert!(nf[3 + i].0 >= 3 * 200, "{key}: the client got its replies");
        }
        let mut sum = [0u64; 5];
        for n in 1..=3 {
            let rs = format!("{key} -> {}:80", mode.server(n));
            let line = st[&rs];
            assert_eq!(
                line[0] as usize,
                answers[i][&format!("r{n}")],
                "{rs}: Conns vs answers"
            );
            for (s, v) in sum.iter_mut().zip(line) {
                *s += v;
            }
        }
        assert_eq!(sum, st[&key], "{key}: real servers add up");
    }
    assert_redirects(&b.stop(), n_workers);
}

#[test]
fn stats_match_what_the_clients_sent() {
    stats_match("sa", ONE, 1);
}

#[test]
fn stats_match_what_the_clients_sent_two_workers() {
    stats_match("sb", TWO, 2);
}
