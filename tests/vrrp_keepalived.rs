//! VRRP interop against a real keepalived (Debian's package, 2.2.7 when
//! this was written): ripvsd's `[[vrrp]]` instance and a keepalived
//! `vrrp_instance` with the same VRID on one bridge, version 2 (advert_int
//! 1 s, with and without `auth_type PASS`) and version 3 (advert_int
//! 0.1 s), multicast. Each scenario asserts on both sides' view: ripvsd's
//! `ripvsadm --vrrp --json` and log lines, keepalived's log lines, and
//! tshark's decode of every advert and gratuitous ARP on the bridge
//! (version, VRID, priority, interval, TTL, addresses, and tshark's own
//! checksum verdict), and measures the failover times.
//!
//! The topology is this test's own, removed on drop:
//!
//! ```text
//!   bridge {p}br, 10.60.0.0/24
//!     ├── {p}d0f ── {p}d0        ripvsd's af_packet port p0, 10.60.0.1 (root namespace)
//!     ├── {p}k1f ── {p}k1:eth0   keepalived, 10.60.0.5
//!     └── {p}c1f ── {p}c1:eth0   a client for arping, 10.60.0.2
//! ```
//!
//! `RIPVS_VRRP_DUT=keepalived` puts a second keepalived (namespace `{p}d`,
//! 10.60.0.1) where ripvsd would be, to check the harness itself: the
//! same scenarios, minus what only ripvsd reports (its JSON). Needs root,
//! keepalived, tshark and arping (tools/setup installs them).

mod common;

use common::{ripvsadm, Daemon, Scratch};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const VIP: &str = "10.60.0.100";
const DUT_IP: &str = "10.60.0.1";
const KA_IP: &str = "10.60.0.5";
const CLIENT_IP: &str = "10.60.0.2";
const VRID: u8 = 51;

#[derive(Clone, Copy, Debug)]
struct Mode {
    version: u8,
    /// The advertisement interval in centiseconds.
    advert_cs: u32,
    /// v2 simple password "secret" on both sides.
    auth: bool,
}

const V2: Mode = Mode {
    version: 2,
    advert_cs: 100,
    auth: false,
};
const V2_AUTH: Mode = Mode {
    version: 2,
    advert_cs: 100,
    auth: true,
};
const V3: Mode = Mode {
    version: 3,
    advert_cs: 10,
    auth: false,
};

impl Mode {
    fn adv(&self) -> f64 {
        self.advert_cs as f64 / 100.0
    }
    /// RFC 5798 Skew_Time for a router of priority `prio`.
    fn skew(&self, prio: u8) -> f64 {
        (256 - prio as u32) as f64 * self.adv() / 256.0
    }
    /// RFC 5798 Master_Down_Interval for a backup of priority `prio`.
    fn master_down(&self, prio: u8) -> f64 {
        3.0 * self.adv() + self.skew(prio)
    }
    /// What this slow, shared 2-CPU machine may add to a timer: the
    /// measured times are printed, this only bounds them.
    fn margin(&self) -> f64 {
        if self.version == 3 {
            0.25
        } else {
            0.5
        }
    }
    /// advert_int as both configs write it.
    fn advert_int(&self) -> String {
        if self.version == 3 {
            format!("{:.2}", self.adv())
        } else {
            format!("{}", self.advert_cs / 100)
        }
    }
    fn secs(&self, s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(args[0]).args(&args[1..]).output().unwrap()
}

fn must(args: &[&str]) {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sleep(d: Duration) {
    std::thread::sleep(d)
}

// ------------------------------------------------------------ network

/// The bridge, ripvsd's veth, keepalived's and the client's namespaces.
struct Net {
    p: String,
    namespaces: Vec<String>,
    links: Vec<String>,
}

impl Net {
    fn new(p: &str, keepalived_dut: bool) -> Net {
        common::require_root();
        let mut n = Net {
            p: p.to_string(),
            namespaces: vec![format!("{p}k1"), format!("{p}c1"), format!("{p}d")],
            links: vec![
                format!("{p}d0"),
                format!("{p}d0f"),
                format!("{p}k1f"),
                format!("{p}c1f"),
                format!("{p}br"),
            ],
        };
        n.cleanup();
        let br = format!("{p}br");
        must(&["ip", "link", "add", &br, "type", "bridge"]);
        must(&[
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{br}.disable_ipv6=1"),
        ]);
        must(&["ip", "link", "set", &br, "up"]);
        if keepalived_dut {
            n.ns_veth(&format!("{p}d"), &format!("{p}d0f"), DUT_IP);
        } else {
            let (d, f) = (format!("{p}d0"), format!("{p}d0f"));
            must(&["ip", "link", "add", &d, "type", "veth", "peer", "name", &f]);
            for l in [&d, &f] {
                must(&[
                    "sysctl",
                    "-qw",
                    &format!("net.ipv6.conf.{l}.disable_ipv6=1"),
                ]);
            }
            must(&["ethtool", "-K", &d, "tx", "off", "tso", "off", "gso", "off"]);
            must(&["ip", "link", "set", &d, "up"]);
            must(&["ip", "link", "set", &f, "master", &br, "up"]);
        }
        n.ns_veth(&format!("{p}k1"), &format!("{p}k1f"), KA_IP);
        n.ns_veth(&format!("{p}c1"), &format!("{p}c1f"), CLIENT_IP);
        n
    }

    /// Namespace `ns` with an `eth0` at `ip`/24 whose peer `outer` is a
    /// port of the bridge: no IPv6, no transmit checksum offload.
    fn ns_veth(&self, ns: &str, outer: &str, ip: &str) {
        let br = format!("{}br", self.p);
        must(&["ip", "netns", "add", ns]);
        must(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        must(&[
            "ip",
            "netns",
            "exec",
            ns,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ]);
        must(&[
            "ip", "link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", ns,
        ]);
        must(&[
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{outer}.disable_ipv6=1"),
        ]);
        must(&["ip", "-n", ns, "link", "set", "eth0", "up"]);
        must(&[
            "ip", "netns", "exec", ns, "ethtool", "-K", "eth0", "tx", "off", "tso", "off", "gso",
            "off",
        ]);
        must(&[
            "ip",
            "-n",
            ns,
            "addr",
            "add",
            &format!("{ip}/24"),
            "dev",
            "eth0",
        ]);
        must(&["ip", "link", "set", outer, "master", &br, "up"]);
    }

    fn ns(&self, short: &str) -> String {
        format!("{}{short}", self.p)
    }

    /// The MAC of `eth0` in namespace `short`, or of root's `{p}d0`.
    fn mac(&self, short: Option<&str>) -> String {
        let out = match short {
            Some(s) => run(&[
                "ip",
                "netns",
                "exec",
                &self.ns(s),
                "cat",
                "/sys/class/net/eth0/address",
            ]),
            None => run(&["cat", &format!("/sys/class/net/{}d0/address", self.p)]),
        };
        String::from_utf8_lossy(&out.stdout).trim().to_lowercase()
    }

    /// Takes keepalived's port off the bridge (its link stays up, so it
    /// sees no fault, only silence) or puts it back.
    fn keepalived_attached(&self, on: bool) {
        let port = format!("{}k1f", self.p);
        if on {
            must(&[
                "ip",
                "link",
                "set",
                &port,
                "master",
                &format!("{}br", self.p),
            ]);
        } else {
            must(&["ip", "link", "set", &port, "nomaster"]);
        }
    }

    /// `arping` from the client to the VIP: the MACs that answered, one
    /// per reply (iputils arping, broadcast requests throughout).
    fn arping(&self, count: u32) -> Vec<String> {
        let out = run(&[
            "ip",
            "netns",
            "exec",
            &self.ns("c1"),
            "arping",
            "-b",
            "-c",
            &count.to_string(),
            "-w",
            &(count + 2).to_string(),
            "-I",
            "eth0",
            VIP,
        ]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("reply from"))
            .filter_map(|l| {
                let a = l.find('[')?;
                let b = l.find(']')?;
                Some(l[a + 1..b].to_lowercase())
            })
            .collect()
    }

    fn cleanup(&mut self) {
        for ns in &self.namespaces {
            if !Path::new(&format!("/run/netns/{ns}")).exists() {
                continue;
            }
            let out = run(&["ip", "netns", "pids", ns]);
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = run(&["kill", "-KILL", pid]);
            }
            let _ = run(&["ip", "netns", "del", ns]);
        }
        for l in &self.links {
            if Path::new(&format!("/sys/class/net/{l}")).exists() {
                let _ = run(&["ip", "link", "del", l]);
            }
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.cleanup();
    }
}

// ---------------------------------------------------------- keepalived

type Lines = Arc<Mutex<Vec<(Instant, String)>>>;

/// A keepalived (VRRP only) in a namespace, its log (stderr: `-l`) kept
/// with the time each line arrived.
struct Keepalived {
    child: Child,
    name: String,
    vrrp_pid: PathBuf,
    lines: Lines,
    /// Where the next [`Keepalived::next`] search starts.
    cursor: usize,
}

fn keepalived_conf(name: &str, mode: Mode, priority: u8) -> String {
    let auth = if mode.auth {
        "authentication {\n    auth_type PASS\n    auth_pass secret\n  }"
    } else {
        ""
    };
    format!(
        r#"global_defs {{
  enable_script_security
  script_user root
  router_id {name}
  vrrp_version {v}
  max_auto_priority -1
}}
vrrp_instance VI_1 {{
  state BACKUP
  interface eth0
  virtual_router_id {VRID}
  priority {priority}
  advert_int {adv}
  {auth}
  virtual_ipaddress {{
    {VIP}
  }}
}}
"#,
        v = mode.version,
        adv = mode.advert_int()
    )
}

impl Keepalived {
    fn start(ns: &str, dir: &Path, name: &str, conf: &str) -> Keepalived {
        let cf = dir.join(format!("{name}.conf"));
        std::fs::write(&cf, conf).unwrap();
        let pid = dir.join(format!("{name}.pid"));
        let vrrp_pid = dir.join(format!("{name}.vrrp.pid"));
        let _ = std::fs::remove_file(&vrrp_pid);
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "keepalived",
                "-n",
                "-l",
                "-D",
                "-P",
                "-G",
            ])
            .arg("-f")
            .arg(&cf)
            .arg("-p")
            .arg(&pid)
            .arg("-r")
            .arg(&vrrp_pid)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn keepalived (apt-get install keepalived)");
        let lines: Lines = Arc::default();
        for s in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(s).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push((Instant::now(), l));
                }
            });
        }
        let mut k = Keepalived {
            child,
            name: name.to_string(),
            vrrp_pid,
            lines,
            cursor: 0,
        };
        k.next("Startup complete", Duration::from_secs(10));
        k.cursor = 0;
        k
    }

    fn len(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    fn log(&self) -> String {
        let l = self.lines.lock().unwrap();
        l.iter()
            .map(|(_, s)| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The lines from index `from` on.
    fn since(&self, from: usize) -> Vec<String> {
        let l = self.lines.lock().unwrap();
        l.iter().skip(from).map(|(_, s)| s.clone()).collect()
    }

    /// The first line at or after index `from` containing `needle`.
    fn find(&self, needle: &str, from: usize) -> Option<(usize, Instant, String)> {
        let l = self.lines.lock().unwrap();
        l.iter()
            .enumerate()
            .skip(from)
            .find(|(_, (_, s))| s.contains(needle))
            .map(|(i, (t, s))| (i, *t, s.clone()))
    }

    /// Waits for a line containing `needle` after the cursor, moves the
    /// cursor past it, returns when it arrived; panics with the log.
    fn next(&mut self, needle: &str, timeout: Duration) -> Instant {
        let end = Instant::now() + timeout;
        loop {
            if let Some((i, t, _)) = self.find(needle, self.cursor) {
                self.cursor = i + 1;
                return t;
            }
            if Instant::now() > end {
                panic!(
                    "keepalived {}: no `{needle}` within {timeout:?} (exit {:?}); log:\n{}",
                    self.name,
                    self.child.try_wait().ok().flatten(),
                    self.log()
                );
            }
            sleep(Duration::from_millis(5));
        }
    }

    /// Lines since `from` in which keepalived complains about a packet.
    fn complaints(&self, from: usize) -> Vec<String> {
        const WORDS: &[&str] = &[
            "invalid",
            "bad ",
            "expecting",
            "ttl",
            "checksum",
            "wrong",
            "error",
            "mismatch",
            "malformed",
            "short",
            "unknown",
            "not match",
        ];
        self.since(from)
            .into_iter()
            .filter(|l| {
                let l = l.to_lowercase();
                WORDS.iter().any(|w| l.contains(w))
            })
            .collect()
    }

    fn vrrp_child(&self) -> Option<String> {
        std::fs::read_to_string(&self.vrrp_pid)
            .ok()
            .map(|s| s.trim().to_string())
    }

    /// The host dies: no priority-0 advert, no cleanup. The parent is
    /// stopped first so that it neither respawns its VRRP child nor
    /// sends the child a SIGTERM (which would make it say goodbye).
    fn kill9(&mut self) {
        let parent = self.child.id().to_string();
        must(&["kill", "-STOP", &parent]);
        if let Some(c) = self.vrrp_child() {
            must(&["kill", "-KILL", &c]);
        }
        must(&["kill", "-KILL", &parent]);
        let _ = self.child.wait();
    }

    /// SIGTERM: keepalived sends its priority-0 advert and exits.
    fn term(&mut self) {
        let parent = self.child.id().to_string();
        must(&["kill", "-TERM", &parent]);
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            sleep(Duration::from_millis(20));
        }
        panic!("keepalived {} did not exit on SIGTERM", self.name);
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let parent = self.child.id().to_string();
            let _ = run(&["kill", "-STOP", &parent]);
            if let Some(c) = self.vrrp_child() {
                let _ = run(&["kill", "-KILL", &c]);
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// -------------------------------------------------------------- tshark

/// tshark on the bridge: every VRRP advert and ARP into a pcapng file.
struct Capture {
    child: Child,
    file: PathBuf,
}

#[derive(Debug, Clone)]
struct Advert {
    t: f64,
    eth_src: String,
    eth_dst: String,
    src: String,
    dst: String,
    ttl: u32,
    ip_checksum: String,
    version: u32,
    vrid: u32,
    prio: u32,
    count: u32,
    /// v2: seconds (vrrp.adver_int); v3: centiseconds (short_adver_int).
    interval: u32,
    checksum: String,
    auth_type: String,
    auth_string: String,
    addrs: String,
}

#[derive(Debug, Clone)]
struct Arp {
    t: f64,
    eth_src: String,
    opcode: u32,
    src_ip: String,
    dst_ip: String,
}

impl Arp {
    fn gratuitous_for_vip(&self) -> bool {
        self.src_ip == VIP && self.dst_ip == VIP
    }
}

/// tshark's decode of `file` with display filter `filter`: one row of
/// `fields` per frame (tshark verifies IP checksums only when told to;
/// it always verifies VRRP's).
fn tshark_fields(file: &Path, filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
    let mut c = Command::new("tshark");
    c.arg("-r")
        .arg(file)
        .args(["-o", "ip.check_checksum:TRUE", "-Y", filter])
        .args(["-T", "fields", "-E", "separator=|", "-E", "occurrence=a"]);
    for f in fields {
        c.args(["-e", f]);
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "tshark -r: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect()
}

impl Capture {
    fn start(iface: &str, file: PathBuf) -> Capture {
        let mut child = Command::new("tshark")
            .args(["-i", iface, "-f", "ip proto 112 or arp", "-q", "-w"])
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tshark (apt-get install tshark)");
        let (tx, rx) = std::sync::mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let end = Instant::now() + Duration::from_secs(15);
        let mut seen = Vec::new();
        loop {
            match rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
                Ok(l) if l.contains("Capturing on") => break,
                Ok(l) => seen.push(l),
                Err(_) => panic!("tshark did not start capturing: {seen:?}"),
            }
        }
        Capture { child, file }
    }

    /// Stops the capture (SIGINT: tshark flushes the file) and decodes it.
    fn stop(&mut self) -> (Vec<Advert>, Vec<Arp>, Vec<String>) {
        // Let the last frames reach the file.
        sleep(Duration::from_millis(300));
        let _ = run(&["kill", "-INT", &self.child.id().to_string()]);
        let end = Instant::now() + Duration::from_secs(10);
        while !matches!(self.child.try_wait(), Ok(Some(_))) {
            assert!(Instant::now() < end, "tshark did not stop on SIGINT");
            sleep(Duration::from_millis(20));
        }
        let num = |s: &str| s.parse::<u32>().unwrap_or(u32::MAX);
        let adverts = tshark_fields(
            &self.file,
            "vrrp",
            &[
                "frame.time_epoch",
                "eth.src",
                "eth.dst",
                "ip.src",
                "ip.dst",
                "ip.ttl",
                "ip.checksum.status",
                "vrrp.version",
                "vrrp.virt_rtr_id",
                "vrrp.prio",
                "vrrp.addr_count",
                "vrrp.adver_int",
                "vrrp.short_adver_int",
                "vrrp.checksum.status",
                "vrrp.auth_type",
                "vrrp.auth_string",
                "vrrp.ip_addr",
            ],
        )
        .into_iter()
        .map(|f| Advert {
            t: f[0].parse().unwrap(),
            eth_src: f[1].clone(),
            eth_dst: f[2].clone(),
            src: f[3].clone(),
            dst: f[4].clone(),
            ttl: num(&f[5]),
            ip_checksum: f[6].clone(),
            version: num(&f[7]),
            vrid: num(&f[8]),
            prio: num(&f[9]),
            count: num(&f[10]),
            interval: if f[7] == "3" {
                num(&f[12])
            } else {
                num(&f[11])
            },
            checksum: f[13].clone(),
            auth_type: f[14].clone(),
            auth_string: f[15].clone(),
            addrs: f[16].clone(),
        })
        .collect();
        let arps = tshark_fields(
            &self.file,
            "arp",
            &[
                "frame.time_epoch",
                "eth.src",
                "arp.opcode",
                "arp.src.proto_ipv4",
                "arp.dst.proto_ipv4",
            ],
        )
        .into_iter()
        .map(|f| Arp {
            t: f[0].parse().unwrap(),
            eth_src: f[1].clone(),
            opcode: num(&f[2]),
            src_ip: f[3].clone(),
            dst_ip: f[4].clone(),
        })
        .collect();
        // tshark's expert notes (a bad checksum is one) on VRRP frames.
        let expert = tshark_fields(
            &self.file,
            "vrrp && _ws.expert",
            &["frame.number", "ip.src", "_ws.expert.message"],
        )
        .into_iter()
        .map(|f| f.join(" "))
        .collect();
        (adverts, arps, expert)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ------------------------------------------------- the device under test

enum Dut {
    None,
    Ripvsd(Daemon),
    Keepalived(Keepalived),
}

/// One scenario's world. Dropped in field order: capture, processes, then
/// the network and the scratch directory.
struct World {
    cap: Option<Capture>,
    ka: Option<Keepalived>,
    dut: Dut,
    net: Net,
    dir: Scratch,
    mode: Mode,
    keepalived_dut: bool,
    /// ripvsd's (or the stand-in's) MAC on the bridge.
    dut_mac: String,
    ka_mac: String,
    /// Capture times (epoch seconds) are compared with these.
    t0_epoch: f64,
    t0: Instant,
}

fn keepalived_dut() -> bool {
    std::env::var("RIPVS_VRRP_DUT").is_ok_and(|v| v == "keepalived")
}

fn ripvsd_conf(p: &str, mode: Mode, priority: u8) -> String {
    let auth = if mode.auth {
        "auth_pass = \"secret\"\n"
    } else {
        ""
    };
    format!(
        r#"
[eal]
args = ["--no-huge", "--no-pci", "-m", "256", "--no-shconf", "--log-level=error"]
worker_lcores = [1]
[[ports]]
name = "p0"
device = "net_af_packet0,iface={p}d0"
addresses = ["{DUT_IP}/24"]
exception = {{ enabled = false }}
[[vrrp]]
name = "VI_1"
port = "p0"
vrid = {VRID}
priority = {priority}
version = {v}
advert_int = {adv}
preempt = true
state = "backup"
addresses = ["{VIP}"]
{auth}"#,
        v = mode.version,
        adv = if mode.version == 3 {
            mode.advert_int()
        } else {
            format!("{}.0", mode.advert_cs / 100)
        }
    )
}

fn epoch_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

impl World {
    fn new(tag: &str, mode: Mode) -> World {
        let kd = keepalived_dut();
        let p = format!("{tag}{}", std::process::id() % 1000);
        let net = Net::new(&p, kd);
        let dir = Scratch::new(&format!("vrrp-ka-{tag}"));
        let dut_mac = if kd {
            net.mac(Some("d"))
        } else {
            net.mac(None)
        };
        let ka_mac = net.mac(Some("k1"));
        let cap = Capture::start(&format!("{p}br"), dir.path("bridge.pcapng"));
        eprintln!(
            "vrrp_keepalived {tag}: {mode:?}, dut {} at {DUT_IP} ({dut_mac}), keepalived at {KA_IP} ({ka_mac})",
            if kd { "keepalived" } else { "ripvsd" }
        );
        World {
            cap: Some(cap),
            ka: None,
            dut: Dut::None,
            net,
            dir,
            mode,
            keepalived_dut: kd,
            dut_mac,
            ka_mac,
            t0_epoch: epoch_now(),
            t0: Instant::now(),
        }
    }

    /// Capture time (epoch) of an Instant.
    fn epoch(&self, t: Instant) -> f64 {
        self.t0_epoch + t.duration_since(self.t0).as_secs_f64()
    }

    fn start_keepalived(&mut self, priority: u8) {
        let conf = keepalived_conf("ka", self.mode, priority);
        self.ka = Some(Keepalived::start(
            &self.net.ns("k1"),
            &self.dir.0,
            "ka",
            &conf,
        ));
    }

    fn ka(&mut self) -> &mut Keepalived {
        self.ka.as_mut().unwrap()
    }

    fn start_dut(&mut self, priority: u8) {
        if self.keepalived_dut {
            let conf = keepalived_conf("dut", self.mode, priority);
            self.dut = Dut::Keepalived(Keepalived::start(
                &self.net.ns("d"),
                &self.dir.0,
                "dut",
                &conf,
            ));
        } else {
            let cf = self.dir.path("ripvsd.toml");
            std::fs::write(&cf, ripvsd_conf(&self.net.p, self.mode, priority)).unwrap();
            let prefix = format!("--file-prefix=ripvs-{}", self.net.p);
            self.dut = Dut::Ripvsd(Daemon::start_with(None, &cf, &[&prefix]));
        }
    }

    /// Waits for the device's transition `from -> to` (INIT, BACKUP,
    /// MASTER): ripvsd's log line `vrrp VI_1: FROM -> TO`, or the stand-in
    /// keepalived's `Entering TO STATE`. Returns when it was seen.
    fn dut_wait(&mut self, from: &str, to: &str, timeout: Duration) -> Instant {
        match &mut self.dut {
            Dut::Ripvsd(d) => {
                let needle = format!("{from} -> {to}");
                d.wait_for(&needle, timeout);
                let t = Instant::now();
                assert!(
                    d.output
                        .iter()
                        .any(|l| l.contains("vrrp VI_1:") && l.contains(&needle)),
                    "no `vrrp VI_1: {needle}` line:\n{}",
                    d.output.join("\n")
                );
                t
            }
            Dut::Keepalived(k) => {
                let needle = if from == "INIT" {
                    format!("Entering {to} STATE (init)")
                } else {
                    format!("Entering {to} STATE")
                };
                k.next(&needle, timeout)
            }
            Dut::None => panic!("no device under test"),
        }
    }

    /// ripvsd's `ripvsadm --vrrp --json` entry for VI_1 (None for the
    /// keepalived stand-in).
    fn dut_json(&self) -> Option<serde_json::Value> {
        let Dut::Ripvsd(d) = &self.dut else {
            return None;
        };
        let out = ripvsadm(&d.socket)
            .args(["--vrrp", "--json"])
            .output()
            .unwrap();
        if !out.status.success() {
            let alive = run(&["kill", "-0", &d.pid().to_string()]).status.success();
            panic!(
                "ripvsadm --vrrp --json: {}; ripvsd (pid {}) {}; socket {} exists: {}; its output so far:\n{}",
                String::from_utf8_lossy(&out.stderr),
                d.pid(),
                if alive { "is running" } else { "is gone" },
                d.socket.display(),
                d.socket.exists(),
                d.output.join("\n")
            );
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "ripvsadm --vrrp --json: {e}: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        let list = if v.is_array() { v } else { v["Vrrp"].clone() };
        let i = list
            .as_array()
            .and_then(|a| a.iter().find(|i| i["name"] == "VI_1"))
            .unwrap_or_else(|| panic!("no VI_1 in ripvsadm --vrrp --json: {list}"));
        Some(i.clone())
    }

    /// The device's state by its own account: "Master", "Backup", ...
    fn dut_state(&self) -> String {
        match &self.dut {
            Dut::Ripvsd(_) => self.dut_json().unwrap()["state"]
                .as_str()
                .unwrap_or("?")
                .to_string(),
            Dut::Keepalived(k) => {
                let l = k.lines.lock().unwrap();
                l.iter()
                    .rev()
                    .find_map(|(_, s)| {
                        if s.contains("Entering MASTER STATE") {
                            Some("Master")
                        } else if s.contains("Entering BACKUP STATE") {
                            Some("Backup")
                        } else if s.contains("FAULT state") {
                            Some("Fault")
                        } else {
                            None
                        }
                    })
                    .unwrap_or("Init")
                    .to_string()
            }
            Dut::None => "none".into(),
        }
    }

    fn dut_log(&self) -> String {
        match &self.dut {
            Dut::Ripvsd(d) => d.output.join("\n"),
            Dut::Keepalived(k) => k.log(),
            Dut::None => String::new(),
        }
    }

    /// SIGTERM the device (a master says goodbye with priority 0).
    fn dut_term(&mut self) -> Vec<String> {
        match std::mem::replace(&mut self.dut, Dut::None) {
            Dut::Ripvsd(d) => d.stop(),
            Dut::Keepalived(mut k) => {
                k.term();
                let out = k.since(0);
                self.dut = Dut::Keepalived(k);
                out
            }
            Dut::None => Vec::new(),
        }
    }

    fn stop_capture(&mut self) -> (Vec<Advert>, Vec<Arp>, Vec<String>) {
        let (adverts, arps, expert) = self.cap.as_mut().unwrap().stop();
        eprintln!(
            "tshark: {} adverts, {} ARP frames",
            adverts.len(),
            arps.len()
        );
        for a in adverts.iter().take(3) {
            eprintln!("  e.g. {a:?}");
        }
        (adverts, arps, expert)
    }

    /// Holds for `d` while asserting the device keeps `state`.
    fn hold(&self, state: &str, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            let s = self.dut_state();
            assert_eq!(
                s,
                state,
                "the device left {state}; its log:\n{}",
                self.dut_log()
            );
            sleep(Duration::from_millis(100));
        }
    }
}

/// Checks every advert from `src` in `adverts` (between times `from` and
/// `to`, epoch seconds) against `mode` and `prio`; returns them.
fn check_adverts(
    adverts: &[Advert],
    src: &str,
    mac: &str,
    mode: Mode,
    prio: u32,
    from: f64,
    to: f64,
) -> Vec<Advert> {
    let mine: Vec<Advert> = adverts
        .iter()
        .filter(|a| a.src == src && a.t >= from && a.t <= to)
        .cloned()
        .collect();
    for a in &mine {
        let want_interval = if mode.version == 3 {
            mode.advert_cs
        } else {
            mode.advert_cs / 100
        };
        let ok = a.eth_src == mac
            && a.eth_dst == "01:00:5e:00:00:12"
            && a.dst == "224.0.0.18"
            && a.ttl == 255
            && a.ip_checksum == "1"
            && a.version == mode.version as u32
            && a.vrid == VRID as u32
            && a.prio == prio
            && a.count == 1
            && a.addrs == VIP
            && a.interval == want_interval
            && a.checksum == "1"
            && (mode.version == 3
                || (mode.auth && a.auth_type == "1" && a.auth_string == "secret")
                || (!mode.auth && a.auth_type == "0"));
        assert!(
            ok,
            "advert from {src} not as expected ({mode:?}, priority {prio}, from {mac}; \
             checksum statuses 1 = Good): {a:?}"
        );
    }
    mine
}

/// Every advert as "+seconds source/priority", for failure messages.
fn timeline(adverts: &[Advert]) -> String {
    let t0 = adverts.first().map(|a| a.t).unwrap_or(0.0);
    adverts
        .iter()
        .map(|a| format!("+{:.4} {}/{}", a.t - t0, a.src, a.prio))
        .collect::<Vec<_>>()
        .join(", ")
}

/// No burst: at most two of `adverts` (one periodic, one sent at once in
/// answer to a peer's claim) within any half advert interval. A data
/// plane that holds frames back and then sends them together fails this.
fn assert_no_burst(adverts: &[Advert], mode: Mode, all: &[Advert]) {
    let w = 0.5 * mode.adv();
    for (i, a) in adverts.iter().enumerate() {
        let n = adverts[i..].iter().take_while(|b| b.t - a.t < w).count();
        assert!(
            n <= 2,
            "{n} adverts from {} within {:.4} s (under half an advert interval); all adverts \
             (s after the first, source/priority): {}",
            a.src,
            adverts[i + n - 1].t - a.t,
            timeline(all)
        );
    }
}

/// Mean gap between successive adverts.
fn mean_gap(adverts: &[Advert]) -> f64 {
    if adverts.len() < 2 {
        return f64::NAN;
    }
    (adverts.last().unwrap().t - adverts[0].t) / (adverts.len() - 1) as f64
}

// ----------------------------------------------------------- scenarios

/// Scenario 1: ripvsd 150, keepalived 100: keepalived is master alone first, ripvsd
/// starts as backup, ignores the lower priority, takes over after its
/// master-down interval, keepalived yields and stays backup.
fn ripvsd_wins_on_priority(tag: &str, mode: Mode) {
    let mut w = World::new(tag, mode);
    w.start_keepalived(100);
    let md = |p| mode.secs(mode.master_down(p));
    w.ka().next(
        "Entering MASTER STATE",
        md(100) * 2 + Duration::from_secs(5),
    );
    let from = w.ka().len();
    w.start_dut(150);
    let t_start = Instant::now();
    let t_master = w.dut_wait("BACKUP", "MASTER", md(150) * 2 + Duration::from_secs(10));
    eprintln!(
        "dut became MASTER {:.3} s after it reported running (master-down {:.3} s)",
        t_master.duration_since(t_start).as_secs_f64(),
        mode.master_down(150)
    );
    let t_ka_backup = w.ka().next(
        "Entering BACKUP STATE",
        mode.secs(mode.adv() * 3.0) + Duration::from_secs(2),
    );
    let yielded = w
        .ka()
        .find(
            &format!("Master received advert from {DUT_IP} with higher priority 150, ours 100"),
            from,
        )
        .unwrap_or_else(|| {
            panic!(
                "keepalived did not name the dut's advert:\n{}",
                w.ka().log()
            )
        });
    eprintln!("keepalived: {}", yielded.2);
    let ka_from = w.ka().cursor;
    w.hold("Master", md(100) * 2 + Duration::from_millis(500));
    let k = w.ka.as_ref().unwrap();
    assert!(
        k.find("Entering MASTER STATE", ka_from).is_none(),
        "keepalived took over again from the dut's adverts:\n{}",
        k.log()
    );
    assert_eq!(
        k.complaints(0),
        Vec::<String>::new(),
        "keepalived complained"
    );
    if let Some(j) = w.dut_json() {
        eprintln!("ripvsadm --vrrp --json: {j}");
        assert_eq!(j["state"], "Master");
        assert_eq!(j["priority"], 150);
        assert_eq!(j["version"], mode.version);
        assert_eq!(j["vrid"], VRID);
        assert_eq!(j["advert_int_cs"], mode.advert_cs);
        assert_eq!(j["stats"]["became_master"], 1);
        assert!(j["stats"]["adverts_sent"].as_u64().unwrap() >= 3, "{j}");
        assert!(j["stats"]["adverts_received"].as_u64().unwrap() >= 1, "{j}");
        assert_rejected_none(&j);
    }
    let (adverts, arps, expert) = w.stop_capture();
    assert_eq!(
        expert,
        Vec::<String>::new(),
        "tshark expert notes on adverts"
    );
    let ka_ads = check_adverts(&adverts, KA_IP, &w.ka_mac, mode, 100, 0.0, f64::MAX);
    assert!(!ka_ads.is_empty(), "no advert from keepalived captured");
    let dut_ads = check_adverts(&adverts, DUT_IP, &w.dut_mac, mode, 150, 0.0, f64::MAX);
    assert!(dut_ads.len() >= 3, "adverts from the dut: {dut_ads:?}");
    // The regular cadence, once keepalived is quiet: while it still
    // claimed mastership the dut also advertised at once on each of its
    // adverts (as keepalived does when "forcing a new election").
    let quiet = ka_ads.last().unwrap().t + 0.5 * mode.adv();
    let steady: Vec<Advert> = dut_ads.iter().filter(|a| a.t > quiet).cloned().collect();
    let extra = dut_ads.len() - steady.len();
    eprintln!(
        "dut adverts while keepalived still advertised: {extra}; keepalived adverts after the dut's first: {}",
        ka_ads.iter().filter(|a| a.t > dut_ads[0].t).count()
    );
    assert!(steady.len() >= 3, "steady adverts from the dut: {steady:?}");
    assert_no_burst(&dut_ads, mode, &adverts);
    let gap = mean_gap(&steady);
    eprintln!(
        "dut: {} adverts, steady mean interval {:.3} s (advert_int {:.2} s); keepalived yielded {:.3} s after the dut's MASTER line",
        steady.len(),
        gap,
        mode.adv(),
        t_ka_backup.saturating_duration_since(t_master).as_secs_f64()
    );
    assert!(
        gap >= 0.8 * mode.adv() && gap <= 1.3 * mode.adv(),
        "the dut's adverts come every {gap:.3} s, not every {:.2} s; all adverts (s after the first, source, priority): {}",
        mode.adv(),
        timeline(&adverts)
    );
    // Keepalived stops advertising once it is backup.
    let last_dut_first = dut_ads[0].t;
    let late_ka: Vec<_> = ka_ads
        .iter()
        .filter(|a| a.t > last_dut_first + mode.adv() * 2.0)
        .collect();
    assert!(
        late_ka.is_empty(),
        "keepalived still advertising: {late_ka:?}"
    );
    let garps = arps
        .iter()
        .filter(|a| a.eth_src == w.dut_mac && a.gratuitous_for_vip())
        .count();
    eprintln!("gratuitous ARPs for {VIP} from the dut: {garps}");
    assert!(
        garps >= 1,
        "the new master sent no gratuitous ARP: {arps:?}"
    );
}

fn assert_rejected_none(j: &serde_json::Value) {
    let r = &j["stats"]["rejected"];
    let total: u64 = r
        .as_object()
        .map(|o| o.values().filter_map(|v| v.as_u64()).sum())
        .unwrap_or(0);
    assert_eq!(total, 0, "ripvsd rejected adverts: {r}");
}

/// Scenario 2: ripvsd 100 (master alone first), keepalived 150 starts: keepalived
/// discards ripvsd's lower priority, takes over, ripvsd yields, reports
/// keepalived as the master, stays silent and does not answer ARP.
fn keepalived_wins_on_priority(tag: &str, mode: Mode) {
    let mut w = World::new(tag, mode);
    let md = |p| mode.secs(mode.master_down(p));
    w.start_dut(100);
    w.dut_wait("BACKUP", "MASTER", md(100) * 2 + Duration::from_secs(10));
    assert!(
        w.net.arping(2).contains(&w.dut_mac),
        "the dut, master, does not answer ARP for {VIP}"
    );
    w.start_keepalived(150);
    let t_ka = w.ka().next(
        "Entering MASTER STATE",
        md(150) * 2 + Duration::from_secs(5),
    );
    let discarded = w
        .ka()
        .find(
            &format!("received lower priority (100) advert from {DUT_IP}"),
            0,
        )
        .unwrap_or_else(|| panic!("keepalived never saw the dut's advert:\n{}", w.ka().log()));
    eprintln!("keepalived: {}", discarded.2);
    let t_yield = w.dut_wait(
        "MASTER",
        "BACKUP",
        mode.secs(mode.adv() * 3.0) + Duration::from_secs(2),
    );
    eprintln!(
        "the dut yielded {:.3} s after keepalived's MASTER line",
        t_yield.saturating_duration_since(t_ka).as_secs_f64()
    );
    let hold_from = Instant::now();
    w.hold("Backup", md(100) * 2 + Duration::from_millis(500));
    if let Some(j) = w.dut_json() {
        eprintln!("ripvsadm --vrrp --json: {j}");
        assert_eq!(j["state"], "Backup");
        assert_eq!(j["master"], KA_IP);
        assert_eq!(j["master_priority"], 150);
        assert_eq!(j["master_advert_int_cs"], mode.advert_cs);
        assert_rejected_none(&j);
    }
    let replies = w.net.arping(3);
    eprintln!("arping {VIP}: replies from {replies:?}");
    assert!(
        !replies.contains(&w.dut_mac),
        "the dut answers ARP for {VIP} as a backup: {replies:?}"
    );
    assert!(
        !replies.is_empty() && replies.iter().all(|m| *m == w.ka_mac),
        "keepalived (master) should answer ARP for {VIP}: {replies:?}"
    );
    let k = w.ka.as_ref().unwrap();
    assert_eq!(
        k.complaints(0),
        Vec::<String>::new(),
        "keepalived complained"
    );
    let (adverts, _arps, expert) = w.stop_capture();
    assert_eq!(
        expert,
        Vec::<String>::new(),
        "tshark expert notes on adverts"
    );
    check_adverts(&adverts, KA_IP, &w.ka_mac, mode, 150, 0.0, f64::MAX);
    let dut_ads = check_adverts(&adverts, DUT_IP, &w.dut_mac, mode, 100, 0.0, f64::MAX);
    assert!(!dut_ads.is_empty(), "the dut never advertised as master");
    let silent_from = w.epoch(hold_from);
    let late: Vec<_> = dut_ads.iter().filter(|a| a.t > silent_from).collect();
    assert!(late.is_empty(), "the dut advertises as a backup: {late:?}");
}

/// Starts keepalived 150 (master alone), then the device at 100, which
/// must come up as backup under it.
fn keepalived_master_dut_backup(w: &mut World) {
    let mode = w.mode;
    let md = |p| mode.secs(mode.master_down(p));
    w.start_keepalived(150);
    w.ka().next(
        "Entering MASTER STATE",
        md(150) * 2 + Duration::from_secs(5),
    );
    w.start_dut(100);
    w.dut_wait("INIT", "BACKUP", Duration::from_secs(10));
    w.hold("Backup", md(100) * 2 + Duration::from_millis(500));
    if let Some(j) = w.dut_json() {
        assert_eq!(j["state"], "Backup", "{j}");
        assert_eq!(j["master"], KA_IP, "{j}");
        assert_eq!(j["master_priority"], 150, "{j}");
        assert_eq!(j["stats"]["became_master"], 0, "{j}");
    }
}

/// Scenario 3: keepalived 150 master, ripvsd 100 backup; keepalived is killed
/// (SIGKILL, no goodbye): ripvsd takes over within its master-down
/// interval, announces the VIP by gratuitous ARP and answers ARP for it.
fn killed_keepalived_master(tag: &str, mode: Mode) {
    let mut w = World::new(tag, mode);
    keepalived_master_dut_backup(&mut w);
    let t_kill = Instant::now();
    w.ka().kill9();
    // keepalived died without removing the VIP from its interface; its
    // kernel would keep answering ARP for it, as a dead host would not.
    must(&[
        "ip",
        "-n",
        &w.net.ns("k1"),
        "addr",
        "del",
        &format!("{VIP}/32"),
        "dev",
        "eth0",
    ]);
    let md = mode.master_down(100);
    let t_master = w.dut_wait(
        "BACKUP",
        "MASTER",
        mode.secs(md + mode.margin()) + Duration::from_secs(5),
    );
    let wall = t_master.duration_since(t_kill).as_secs_f64();
    // The gratuitous ARPs go out at once; give the burst a moment.
    sleep(Duration::from_millis(500));
    let replies = w.net.arping(3);
    eprintln!("arping {VIP} after the takeover: replies from {replies:?}");
    let json = w.dut_json();
    let (adverts, arps, expert) = w.stop_capture();
    assert_eq!(
        expert,
        Vec::<String>::new(),
        "tshark expert notes on adverts"
    );
    let ka_ads = check_adverts(&adverts, KA_IP, &w.ka_mac, mode, 150, 0.0, f64::MAX);
    let last_ka = ka_ads.last().expect("no keepalived advert captured").t;
    let dut_ads = check_adverts(&adverts, DUT_IP, &w.dut_mac, mode, 100, last_ka, f64::MAX);
    let first_dut = dut_ads
        .first()
        .expect("no advert from the dut after the kill")
        .t;
    let early: Vec<_> = adverts
        .iter()
        .filter(|a| a.src == DUT_IP && a.t < last_ka)
        .collect();
    assert!(
        early.is_empty(),
        "the dut advertised as a backup: {early:?}"
    );
    let takeover = first_dut - last_ka;
    eprintln!(
        "MEASURED {tag}: keepalived's last advert -> the dut's first advert: {takeover:.3} s \
         (master-down interval {md:.3} s, bound {:.3} s); kill -> the dut's MASTER log line: {wall:.3} s",
        md + mode.margin()
    );
    assert!(
        takeover >= 3.0 * mode.adv() && takeover <= md + mode.margin(),
        "takeover after {takeover:.3} s, not within [{:.3}, {:.3}] s",
        3.0 * mode.adv(),
        md + mode.margin()
    );
    let garps: Vec<&Arp> = arps
        .iter()
        .filter(|a| a.eth_src == w.dut_mac && a.gratuitous_for_vip() && a.t >= last_ka)
        .collect();
    eprintln!(
        "gratuitous ARPs for {VIP} from the dut: {} (first {:.3} s after its first advert; opcodes {:?})",
        garps.len(),
        garps.first().map(|a| a.t - first_dut).unwrap_or(f64::NAN),
        garps.iter().map(|a| a.opcode).collect::<Vec<_>>()
    );
    assert!(
        !garps.is_empty(),
        "no gratuitous ARP from the new master: {arps:?}"
    );
    assert!(
        !replies.is_empty() && replies.iter().all(|m| *m == w.dut_mac),
        "the new master should answer ARP for {VIP}: {replies:?}"
    );
    if let Some(j) = json {
        eprintln!("ripvsadm --vrrp --json: {j}");
        assert_eq!(j["state"], "Master");
        assert_eq!(j["stats"]["became_master"], 1);
        assert!(j["stats"]["gratuitous_arps"].as_u64().unwrap() >= 1, "{j}");
        assert_rejected_none(&j);
    }
}

/// Scenario 4: ripvsd 150 master, keepalived 100 backup; ripvsd gets SIGTERM and
/// says goodbye with priority 0: keepalived takes over within its skew
/// time, not its master-down interval.
fn stopped_ripvsd_master(tag: &str, mode: Mode) {
    let mut w = World::new(tag, mode);
    let md = |p| mode.secs(mode.master_down(p));
    w.start_dut(150);
    w.dut_wait("BACKUP", "MASTER", md(150) * 2 + Duration::from_secs(10));
    w.start_keepalived(100);
    w.ka()
        .next("Entering BACKUP STATE (init)", Duration::from_secs(5));
    let from = w.ka().cursor;
    w.hold("Master", md(100) * 2 + Duration::from_millis(500));
    let k = w.ka.as_ref().unwrap();
    assert!(
        k.find("Entering MASTER STATE", from).is_none(),
        "keepalived took over from a live dut master:\n{}",
        k.log()
    );
    if let Some(j) = w.dut_json() {
        assert_eq!(j["state"], "Master", "{j}");
        assert_eq!(j["stats"]["priority_zero_sent"], 0, "{j}");
    }
    let t_term = Instant::now();
    w.dut_term();
    let t_p0 = w.ka().next(
        "Backup received priority 0 advertisement",
        Duration::from_secs(5),
    );
    let t_ka = w.ka().next("Entering MASTER STATE", Duration::from_secs(5));
    let (adverts, _arps, expert) = w.stop_capture();
    assert_eq!(
        expert,
        Vec::<String>::new(),
        "tshark expert notes on adverts"
    );
    let zero: Vec<Advert> = adverts
        .iter()
        .filter(|a| a.src == DUT_IP && a.prio == 0)
        .cloned()
        .collect();
    assert!(!zero.is_empty(), "no priority-0 advert from the dut");
    check_adverts(&zero, DUT_IP, &w.dut_mac, mode, 0, 0.0, f64::MAX);
    let t0 = zero[0].t;
    let dut_ads = check_adverts(&adverts, DUT_IP, &w.dut_mac, mode, 150, 0.0, t0 - 1e-6);
    assert!(!dut_ads.is_empty());
    let ka_after: Vec<&Advert> = adverts
        .iter()
        .filter(|a| a.src == KA_IP && a.t > t0)
        .collect();
    let first_ka = ka_after
        .first()
        .expect("keepalived did not advertise after the goodbye")
        .t;
    let takeover = first_ka - t0;
    let skew = mode.skew(100);
    eprintln!(
        "MEASURED {tag}: the dut's priority-0 advert -> keepalived's first advert: {takeover:.3} s \
         (skew time {skew:.3} s, bound {:.3} s; master-down {:.3} s); SIGTERM -> keepalived's \
         'priority 0' line {:.3} s, -> its MASTER line {:.3} s; {} priority-0 adverts",
        skew + mode.margin(),
        mode.master_down(100),
        t_p0.duration_since(t_term).as_secs_f64(),
        t_ka.duration_since(t_term).as_secs_f64(),
        zero.len()
    );
    assert!(
        takeover <= skew + mode.margin() && takeover < mode.master_down(100),
        "keepalived took {takeover:.3} s after the priority-0 advert"
    );
    // Nothing from the dut after its goodbye.
    let after: Vec<_> = adverts
        .iter()
        .filter(|a| a.src == DUT_IP && a.t > t0 && a.prio != 0)
        .collect();
    assert!(
        after.is_empty(),
        "the dut advertised after its goodbye: {after:?}"
    );
    let k = w.ka.as_ref().unwrap();
    assert_eq!(
        k.complaints(0),
        Vec::<String>::new(),
        "keepalived complained"
    );
}

/// Scenario 5: Equal priorities (100): both are masters while keepalived's port is
/// off the bridge; once it is back, the higher primary address
/// (keepalived's 10.60.0.5 over the dut's 10.60.0.1) wins on both sides.
fn equal_priority_higher_address_wins(tag: &str, mode: Mode) {
    let mut w = World::new(tag, mode);
    let md = |p| mode.secs(mode.master_down(p));
    w.net.keepalived_attached(false);
    w.start_keepalived(100);
    w.start_dut(100);
    w.ka().next(
        "Entering MASTER STATE",
        md(100) * 2 + Duration::from_secs(5),
    );
    w.dut_wait("BACKUP", "MASTER", md(100) * 2 + Duration::from_secs(10));
    let from = w.ka().len();
    let t_join = Instant::now();
    w.net.keepalived_attached(true);
    let t_yield = w.dut_wait(
        "MASTER",
        "BACKUP",
        mode.secs(mode.adv() * 3.0) + Duration::from_secs(3),
    );
    eprintln!(
        "MEASURED {tag}: the dut yielded {:.3} s after the two masters met",
        t_yield.duration_since(t_join).as_secs_f64()
    );
    let hold_from = Instant::now();
    w.hold("Backup", md(100) * 2 + Duration::from_millis(500));
    let k = w.ka.as_ref().unwrap();
    let saw = k.since(from);
    eprintln!("keepalived after the join: {saw:?}");
    assert!(
        saw.iter().all(|l| !l.contains("Entering BACKUP STATE")),
        "keepalived (the higher address) yielded:\n{}",
        k.log()
    );
    // Which side spoke first after the join is a race: if the dut's
    // advert reached keepalived before keepalived's reached the dut,
    // keepalived says so ("... with lower priority 100, ours 100, forcing
    // new election"); either way it must stay master (above).
    eprintln!(
        "keepalived saw the dut's advert after the join: {}",
        saw.iter()
            .any(|l| l.contains(&format!("advert from {DUT_IP}")) && l.contains("priority 100"))
    );
    assert_eq!(
        k.complaints(0),
        Vec::<String>::new(),
        "keepalived complained"
    );
    if let Some(j) = w.dut_json() {
        eprintln!("ripvsadm --vrrp --json: {j}");
        assert_eq!(j["state"], "Backup");
        assert_eq!(j["master"], KA_IP);
        assert_eq!(j["master_priority"], 100);
        assert_rejected_none(&j);
    }
    let replies = w.net.arping(2);
    assert!(
        !replies.contains(&w.dut_mac),
        "the dut answers ARP for {VIP} as a backup: {replies:?}"
    );
    let (adverts, _arps, expert) = w.stop_capture();
    assert_eq!(
        expert,
        Vec::<String>::new(),
        "tshark expert notes on adverts"
    );
    check_adverts(&adverts, KA_IP, &w.ka_mac, mode, 100, 0.0, f64::MAX);
    let dut_ads = check_adverts(&adverts, DUT_IP, &w.dut_mac, mode, 100, 0.0, f64::MAX);
    let silent_from = w.epoch(hold_from);
    let late: Vec<_> = dut_ads.iter().filter(|a| a.t > silent_from).collect();
    assert!(late.is_empty(), "the dut advertises as a backup: {late:?}");
}

/// The MAC the client's kernel has for the VIP ("" when none).
fn client_neighbour(w: &World) -> String {
    let out = run(&["ip", "-n", &w.net.ns("c1"), "neigh", "show", VIP]);
    let s = String::from_utf8_lossy(&out.stdout).to_string();
    s.split_whitespace()
        .skip_while(|t| *t != "lladdr")
        .nth(1)
        .unwrap_or("")
        .to_lowercase()
}

/// Scenario 6: keepalived 150 is master and the client has the VIP's neighbour
/// entry; the device (priority 100) is started, watched for a master-down
/// interval and stopped, three times: a backup that starts under a live
/// master must stay silent. One whose master-down timer runs before its
/// data plane delivers adverts claims mastership at start-up: it
/// advertises and sends gratuitous ARPs for the VIP (the client's kernel
/// moves the VIP to its MAC until keepalived, "forcing a new election",
/// sends its own again).
fn backup_started_under_a_master_stays_silent(tag: &str, mode: Mode) {
    let mut w = World::new(tag, mode);
    let md = |p| mode.secs(mode.master_down(p));
    w.start_keepalived(150);
    w.ka().next(
        "Entering MASTER STATE",
        md(150) * 2 + Duration::from_secs(5),
    );
    let ping = run(&[
        "ip",
        "netns",
        "exec",
        &w.net.ns("c1"),
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        VIP,
    ]);
    assert!(
        ping.status.success(),
        "the client cannot reach keepalived's VIP"
    );
    assert_eq!(
        client_neighbour(&w),
        w.ka_mac,
        "the client's neighbour entry for {VIP}"
    );
    let from = w.ka().len();
    let mut became = Vec::new();
    for round in 0..3 {
        w.start_dut(100);
        w.dut_wait("INIT", "BACKUP", Duration::from_secs(10));
        // Every state the device reports while it should be backup.
        let mut states = Vec::new();
        let end = Instant::now() + md(100) + Duration::from_millis(500);
        while Instant::now() < end {
            let st = w.dut_state();
            if states.last() != Some(&st) {
                states.push(st);
            }
            sleep(Duration::from_millis(20));
        }
        if let Some(j) = w.dut_json() {
            eprintln!("round {round}: ripvsadm --vrrp --json: {j}");
            became.push(j["stats"]["became_master"].as_u64().unwrap_or(u64::MAX));
        }
        let neighbour = client_neighbour(&w);
        let log = w.dut_term();
        if w.keepalived_dut {
            w.dut = Dut::None;
        }
        let claimed: Vec<&String> = log
            .iter()
            .filter(|l| l.contains("vrrp VI_1:") || l.contains("Entering MASTER"))
            .collect();
        assert!(
            states == ["Backup"] && became.iter().all(|&b| b == 0),
            "round {round}: the backup, started under a live master (keepalived 150 at {KA_IP}), \
             claimed mastership: states seen {states:?}; its transitions {claimed:#?}; \
             became_master per round {became:?}; the client's neighbour entry for {VIP} is now \
             {neighbour} (keepalived {}, the dut {}); keepalived since:\n{}",
            w.ka_mac,
            w.dut_mac,
            w.ka.as_ref().unwrap().since(from).join("\n")
        );
        assert_eq!(
            neighbour, w.ka_mac,
            "round {round}: the client's neighbour entry for {VIP} moved"
        );
    }
    let k = w.ka.as_ref().unwrap();
    let heard: Vec<String> = k
        .since(from)
        .into_iter()
        .filter(|l| l.contains(&format!("from {DUT_IP} ")))
        .collect();
    assert!(heard.is_empty(), "keepalived heard the backup: {heard:?}");
    assert!(
        k.find("Entering BACKUP STATE", from).is_none(),
        "keepalived yielded:\n{}",
        k.log()
    );
    let (adverts, arps, expert) = w.stop_capture();
    assert_eq!(
        expert,
        Vec::<String>::new(),
        "tshark expert notes on adverts"
    );
    check_adverts(&adverts, KA_IP, &w.ka_mac, mode, 150, 0.0, f64::MAX);
    let from_dut: Vec<&Advert> = adverts.iter().filter(|a| a.src == DUT_IP).collect();
    assert!(from_dut.is_empty(), "adverts from the backup: {from_dut:?}");
    let garps: Vec<&Arp> = arps
        .iter()
        .filter(|a| a.eth_src == w.dut_mac && a.src_ip == VIP)
        .collect();
    assert!(garps.is_empty(), "ARP for {VIP} from the backup: {garps:?}");
}

#[test]
fn v2_ripvsd_started_under_a_master_stays_silent() {
    backup_started_under_a_master_stays_silent("k6a", V2);
}
#[test]
fn v3_ripvsd_started_under_a_master_stays_silent() {
    backup_started_under_a_master_stays_silent("k6c", V3);
}

#[test]
fn v2_ripvsd_higher_priority_becomes_master() {
    ripvsd_wins_on_priority("k1a", V2);
}
#[test]
fn v2_auth_ripvsd_higher_priority_becomes_master() {
    ripvsd_wins_on_priority("k1b", V2_AUTH);
}
#[test]
fn v3_ripvsd_higher_priority_becomes_master() {
    ripvsd_wins_on_priority("k1c", V3);
}
#[test]
fn v2_keepalived_higher_priority_becomes_master() {
    keepalived_wins_on_priority("k2a", V2);
}
#[test]
fn v2_auth_keepalived_higher_priority_becomes_master() {
    keepalived_wins_on_priority("k2b", V2_AUTH);
}
#[test]
fn v3_keepalived_higher_priority_becomes_master() {
    keepalived_wins_on_priority("k2c", V3);
}
#[test]
fn v2_killed_keepalived_master_ripvsd_takes_over() {
    killed_keepalived_master("k3a", V2);
}
#[test]
fn v3_killed_keepalived_master_ripvsd_takes_over() {
    killed_keepalived_master("k3c", V3);
}
#[test]
fn v2_stopped_ripvsd_master_keepalived_takes_over() {
    stopped_ripvsd_master("k4a", V2);
}
#[test]
fn v3_stopped_ripvsd_master_keepalived_takes_over() {
    stopped_ripvsd_master("k4c", V3);
}
#[test]
fn v2_equal_priority_higher_address_wins() {
    equal_priority_higher_address_wins("k5a", V2);
}
#[test]
fn v3_equal_priority_higher_address_wins() {
    equal_priority_higher_address_wins("k5c", V3);
}
