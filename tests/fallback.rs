//! The stateless fallback, end to end: with no backup director at all, a
//! download through a DR or TUN service survives `kill -9` of ripvsd and
//! a restart of it, because `sloppy_tcp` lets a mid-stream ACK create a
//! connection entry on the restarted director and a stateless scheduler
//! (sh, mh) maps the client to the same real server as before. With the
//! default settings the same download breaks: its mid-stream packets find
//! no entry and are dropped (`drop no_connection`), as in kernel IPVS.
//!
//! Each scenario runs in its own topology (tools/topology) with its own
//! ripvsd, whose config file holds the services, so the restarted daemon
//! comes back with them. The download is paced by the servers (nginx
//! limit_rate); a probe of new connections to the other service measures
//! how long after the kill the restarted director forwards again, and
//! each test prints it. Needs root; runs in the `kernel-traffic` group.

mod common;

use common::topo::Topology;
use common::{counter, Daemon, Scratch};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DR_VIP: &str = "10.60.0.100";
const TUN_VIP: &str = "10.60.0.101";
/// Client 2 (tools/topology), the one that downloads.
const CLIENT: &str = "10.60.0.3";
/// The bytes of /big on each server (tools/topology).
const BIG: u64 = 1 << 20;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Dr,
    Tun,
}

impl Mode {
    fn vip(self) -> &'static str {
        match self {
            Mode::Dr => DR_VIP,
            Mode::Tun => TUN_VIP,
        }
    }
    /// The other service's VIP, which the probe uses (so that the
    /// download's service counts the download alone).
    fn other_vip(self) -> &'static str {
        match self {
            Mode::Dr => TUN_VIP,
            Mode::Tun => DR_VIP,
        }
    }
}

/// The director's config: the topology's two ports, one worker, a DR and
/// a TUN service on port 80 over the three servers (weight 1 each) with
/// `sched`, and `sloppy_tcp = true` or the default `[ipvs]` settings.
fn config(p: &str, sched: &str, sloppy: bool) -> String {
    let mut c = common::topo::director_config(p, "[1]", false);
    if sloppy {
        c.push_str("\n[ipvs]\nsloppy_tcp = true\n");
    }
    for (vip, method) in [(DR_VIP, "dr"), (TUN_VIP, "tun")] {
        c.push_str(&format!(
            "\n[[services]]\nprotocol = \"tcp\"\nvip = \"{vip}\"\nport = 80\nscheduler = \"{sched}\"\n"
        ));
        for n in 1..=3 {
            c.push_str(&format!(
                "[[services.real_servers]]\naddress = \"10.60.0.1{n}\"\nmethod = \"{method}\"\nweight = 1\n"
            ));
        }
    }
    c
}

/// A topology and the director on it. Dropped in field order: the
/// director before the network it runs on, the scratch directory last.
struct Bench {
    daemon: Option<Daemon>,
    topo: Topology,
    dir: Scratch,
}

impl Bench {
    fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().unwrap()
    }

    /// `ripvsadm ARGS` against the running director; must succeed.
    fn adm(&self, args: &[&str]) -> String {
        let out = common::ripvsadm(&self.daemon().socket)
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

    /// The connection entries (`-L -n -c`) of the download's client on
    /// `vs`: (client address:port, state, real server address:port).
    fn client_conns(&self, vs: &str) -> Vec<(String, String, String)> {
        self.adm(&["-L", "-n", "-c"])
            .lines()
            .skip(2)
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() == 6 && f[4] == vs && f[3].starts_with(&format!("{CLIENT}:")))
                    .then(|| (f[3].to_string(), f[2].to_string(), f[5].to_string()))
            })
            .collect()
    }
}

/// A child process killed (and reaped) when dropped, so that a failing
/// test leaves no client behind; declared after the [`Bench`], it goes
/// first.
struct Bg(Option<Child>);

impl Bg {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().unwrap()
    }
    /// Waits at most `secs` for the process to exit by itself (its own
    /// timeouts bound it); its stdout and status.
    fn wait(&mut self, secs: u64, what: &str) -> (std::process::ExitStatus, String) {
        let end = Instant::now() + Duration::from_secs(secs);
        let status = loop {
            if let Some(s) = self.child().try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < end, "{what} still running after {secs} s");
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut out = String::new();
        if let Some(mut o) = self.child().stdout.take() {
            use std::io::Read;
            o.read_to_string(&mut out).unwrap();
        }
        self.0 = None;
        (status, out)
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts ripvsd on `cfg` and waits for its control socket. DPDK's
/// af_packet PMD names each port's PACKET_FANOUT group (getpid() ^
/// ifindex) & 0xffff, and fanout group ids are shared by every process in
/// the network namespace: on a machine where other tests run af_packet
/// ripvsds too, a new pid now and then meets a group of another device,
/// and the PMD fails (EINVAL, "could not set PACKET_FANOUT"). A new pid
/// gives a new id: such a start is tried again, at most twice, and said.
fn start(cfg: &Path, label: &str) -> Daemon {
    for attempt in 1.. {
        let mut d = Daemon::spawn_with(None, cfg, &[]);
        match d.try_wait_for("ripvsd: control socket", Duration::from_secs(30)) {
            Ok(()) => return d,
            Err(e) if e.contains("could not set PACKET_FANOUT") && attempt < 3 => {
                println!("{label}: start {attempt}: af_packet fanout id taken, again: {e}");
            }
            Err(e) => panic!("{label}: {e}"),
        }
    }
    unreachable!()
}

/// Polls `f` every 20 ms until it returns true, for at most `secs`.
fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success(), "sha256sum {}", path.display());
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The server name of a real server address ("10.60.0.12:80" → r2).
fn name_of(addr: &str) -> String {
    let ip = addr.split(':').next().unwrap();
    format!(
        "r{}",
        ip.rsplit('.').next().unwrap().strip_prefix('1').unwrap()
    )
}

/// New connections from client 1 to a VIP (argv 1), one every ~20 ms
/// with a 100 ms connect timeout, until its stdin closes. It creates file
/// argv 2 after its first success; at the end it prints two lines, "ok"
/// and "fail", each followed by the CLOCK_BOOTTIME seconds at which those
/// attempts started (the clock of /proc/uptime, see [`uptime`]).
const PROBE: &str = r#"
import select, socket, sys, time
ok, fail = [], []
while True:
    t = time.clock_gettime(time.CLOCK_BOOTTIME)
    try:
        s = socket.create_connection((sys.argv[1], 80), timeout=0.1)
        s.close()
        if not ok:
            open(sys.argv[2], "w").close()
        ok.append(t)
    except OSError:
        fail.append(t)
    if select.select([sys.stdin], [], [], 0.02)[0]:
        break
print("ok", *("%.3f" % t for t in ok))
print("fail", *("%.3f" % t for t in fail), flush=True)
"#;

/// CLOCK_BOOTTIME in seconds, to 10 ms, as /proc/uptime gives it.
fn uptime() -> f64 {
    let s = std::fs::read_to_string("/proc/uptime").unwrap();
    s.split_whitespace().next().unwrap().parse().unwrap()
}

/// What the probe saw around a kill at `kill` (CLOCK_BOOTTIME seconds):
/// milliseconds from the kill to the first connect after it that
/// succeeded, failures before that, failures after that, and the longest
/// time in milliseconds between the starts of two successive successes.
fn probe_report(out: &str, kill: f64) -> (u64, usize, usize, u64) {
    let times = |tag: &str| -> Vec<f64> {
        out.lines()
            .find_map(|l| l.strip_prefix(tag))
            .unwrap_or_default()
            .split_whitespace()
            .map(|t| t.parse().unwrap())
            .collect()
    };
    let (ok, fail) = (times("ok"), times("fail"));
    // /proc/uptime truncates: the kill was in [kill, kill + 10 ms), so
    // only attempts after that window count (and the time reported may be
    // up to 10 ms too long).
    let back = *ok
        .iter()
        .find(|&&t| t > kill + 0.01)
        .unwrap_or_else(|| panic!("no new connection succeeded after the kill: {out}"));
    let before = fail
        .iter()
        .filter(|&&t| t > kill - 0.02 && t < back)
        .count();
    let after = fail.iter().filter(|&&t| t > back).count();
    let gap = ok.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    let ms = |s: f64| (s.max(0.0) * 1000.0).round() as u64;
    (ms(back - kill), before, after, ms(gap))
}

/// The shared body: a rate-limited download of /big through `mode`'s VIP
/// (scheduler `sched`) from client 2; once part of it has arrived, ripvsd
/// is killed with SIGKILL and started again on the same config and
/// devices. With `sloppy`, the download must complete whole, from the same
/// server, its connection picked up mid-stream by the new director; without
/// it, the download must stall and fail short.
fn fallback(tag: &str, mode: Mode, sched: &str, sloppy: bool) {
    common::require_root();
    let label = format!(
        "{mode:?}+{sched}, sloppy_tcp {}",
        if sloppy { "on" } else { "off" }
    );
    // Unique per process: other runs of the suite may share the machine.
    let p = format!("{tag}{}", std::process::id() % 10000);
    let topo = Topology::up(&p);
    let dir = Scratch::new(&format!("fallback-{tag}"));
    let cfg = dir.path("ripvs.toml");
    std::fs::write(&cfg, config(&p, sched, sloppy)).unwrap();
    // The servers send /big at 128 KiB/s (8 s for 1 MiB): nginx's
    // limit_rate, added to this topology's nginx.conf. A client-side limit
    // (curl --limit-rate, as tests/e2e.rs uses) is not enough here: on a
    // loaded machine curl 7.88 was seen reading the whole MiB in 1.4 s, the
    // rest of it already in its socket before the kill, and then the
    // restart tests nothing. With the server pacing, everything after the
    // kill has yet to be sent, and acknowledged through the new director.
    for name in ["r1", "r2", "r3"] {
        let conf = topo.server_dir(name).join("nginx.conf");
        let text = std::fs::read_to_string(&conf).unwrap();
        assert!(text.contains("access_log off;"), "{text}");
        let paced = text.replace("access_log off;", "access_log off;\n  limit_rate 128k;");
        std::fs::write(&conf, paced).unwrap();
        topo.nginx(name, false);
        topo.nginx(name, true);
    }
    let mut b = Bench {
        daemon: Some(start(&cfg, &label)),
        topo,
        dir,
    };
    let vip = mode.vip();
    let vs = format!("{vip}:80");

    // 1 MiB at 128 KiB/s: 8 s. curl gives up after 6 s without a byte
    // (and after 40 s in all), so a broken download ends on its own.
    let file: PathBuf = b.dir.path("big");
    let mut download = Bg(Some(
        Command::new("ip")
            .args(["netns", "exec", &b.topo.ns("c2"), "curl", "-sS"])
            .args(["-m", "40", "--speed-limit", "1", "--speed-time", "6"])
            .arg("-o")
            .arg(&file)
            .args([
                "-w",
                "%{size_download} %{num_connects} %{local_port} %{time_total}",
            ])
            .arg(format!("http://{vip}/big"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let mut before = Vec::new();
    assert!(
        wait_until(15, || {
            before = b.client_conns(&vs);
            before.iter().any(|e| e.1 == "ESTABLISHED") && file_len(&file) >= 128 << 10
        }),
        "{label}: the download never got going: {before:?}, {} bytes",
        file_len(&file)
    );
    assert_eq!(before.len(), 1, "{label}: one connection: {before:?}");
    let (client, _, server) = before.pop().unwrap();
    let name = name_of(&server);
    let expected = sha256(&b.topo.server_dir(&name).join("www/big"));

    let ready = b.dir.path("probe-ready");
    let mut probe = Bg(Some(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &b.topo.ns("c1"),
                "python3",
                "-c",
                PROBE,
                mode.other_vip(),
            ])
            .arg(&ready)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    // The probe is forwarded before the kill (then a few more).
    assert!(
        wait_until(10, || ready.exists()),
        "{label}: no new connection from c1 before the kill"
    );
    std::thread::sleep(Duration::from_millis(100));

    let old = b.daemon.take().unwrap();
    let pid = old.pid();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_eq!(
        exe.file_name().unwrap(),
        "ripvsd",
        "the process to kill is ripvsd itself"
    );
    let at_kill = file_len(&file);
    assert!(
        download.child().try_wait().unwrap().is_none() && at_kill < BIG / 2,
        "{label}: the download must be well under way at the kill: {at_kill} bytes"
    );
    let kill_at = uptime();
    let killed = Instant::now();
    let (status, _) = old.kill9();
    let reaped = killed.elapsed();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "{label}: ripvsd died of SIGKILL");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "{label}: ripvsd {pid} is gone"
    );
    // The same config (services included), the same af_packet devices:
    // free again once the old process has exited (its sockets close with
    // it). EAL runs with --no-shconf (director_config): no runtime files.
    // (With shared config and the same --file-prefix a restart works too,
    // once the old primary is gone: its lock on the runtime config dies
    // with it; only a second primary beside a live one is refused.)
    b.daemon = Some(start(&cfg, &label));
    let restarted = killed.elapsed();
    assert!(
        b.daemon()
            .output
            .iter()
            .any(|l| l.contains("ripvsd: running")),
        "{label}: {:?}",
        b.daemon().output
    );
    if !sloppy {
        assert!(
            b.client_conns(&vs).is_empty(),
            "{label}: the new director starts with no connection"
        );
    }

    // The download's next packet to reach the new director: an ACK or a
    // window update, never a SYN (curl does not reconnect).
    let mut after = Vec::new();
    let picked = wait_until(if sloppy { 15 } else { 8 }, || {
        after = b.client_conns(&vs);
        !after.is_empty()
    });
    let pickup = killed.elapsed();
    let (status, out) = download.wait(45, "curl");
    drop(probe.child().stdin.take());
    let (_, probed) = probe.wait(10, "the probe");
    let (back, lost, late, gap) = probe_report(&probed, kill_at);
    let stats = b.adm(&["-L", "-n", "--stats", "--exact"]);
    let log = b.daemon.take().unwrap().stop();
    let got = file_len(&file);
    let curl: Vec<&str> = out.split_whitespace().collect();

    println!("{label}: /big from {name} ({server}), client {client}; curl (bytes connects port seconds): {out}");
    println!(
        "{label}: {at_kill} bytes at the kill; ripvsd reaped after {} ms, \
         restarted (control socket up, forwarding) {} ms after the kill",
        reaped.as_millis(),
        restarted.as_millis()
    );
    println!(
        "{label}: new connections from c1 to {}: forwarded again {back} ms after the kill \
         ({lost} connects failed in between, {late} after; longest gap between \
         successes {gap} ms)",
        mode.other_vip()
    );
    println!("restarted director's stats:\n{stats}");
    let no_conn = counter(&log, "drop", "no_connection");
    // Conns of the download's service on the new director.
    let svc_conns: u64 = stats
        .lines()
        .find(|l| l.contains(&vs) && l.starts_with("TCP"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX);
    println!("{label}: restarted director: drop no_connection {no_conn}");
    if sloppy {
        println!(
            "{label}: the download's connection was picked up {} ms after the kill: {after:?}",
            pickup.as_millis()
        );
        assert!(picked, "{label}: the new director never saw the download");
        assert_eq!(
            after,
            [(client.clone(), "ESTABLISHED".to_string(), server.clone())],
            "{label}: the same connection, established at once (no SYN), to the same server"
        );
        assert!(
            status.success(),
            "{label}: curl {status} after {got} bytes: {out}"
        );
        assert_eq!(got, BIG, "{label}: the whole of /big");
        assert_eq!(sha256(&file), expected, "{label}: /big as {name} serves it");
        assert_eq!(
            curl[..3],
            [
                BIG.to_string().as_str(),
                "1",
                client.rsplit(':').next().unwrap()
            ],
            "{label}: one connection, the one the old director had"
        );
        assert_eq!(svc_conns, 1, "{label}: the download alone: {stats}");
        // The rest of the download was acknowledged through the new
        // director (the server paces it, so most of it was sent after
        // the kill): typically 200-400 ACKs, one per two or three of the
        // ~600 segments left; 20 is already more than could have been
        // sent without the new director.
        let in_pkts: u64 = stats
            .lines()
            .skip_while(|l| !(l.starts_with("TCP") && l.contains(&vs)))
            .find(|l| l.trim_start().starts_with(&format!("-> {server}")))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        println!("{label}: restarted director: InPkts {in_pkts} to {server}");
        assert!(
            in_pkts >= 20,
            "{label}: the new director forwarded the download's ACKs to {server} \
             (InPkts {in_pkts}): {stats}"
        );
    } else {
        println!("{label}: curl {status} after {got} of {BIG} bytes: {out}; entries: {after:?}");
        assert!(
            !picked,
            "{label}: without sloppy_tcp no mid-stream packet may create an entry: {after:?}"
        );
        assert_eq!(
            svc_conns, 0,
            "{label}: no entry on the new director: {stats}"
        );
        assert!(!status.success(), "{label}: the download must break");
        assert!(got < BIG, "{label}: a short transfer: {got}");
        assert!(
            no_conn > 0,
            "{label}: its packets were dropped for want of a connection: {log:?}"
        );
    }
}

#[test]
fn dr_sh_download_survives_a_director_restart() {
    fallback("ka", Mode::Dr, "sh", true);
}

#[test]
fn dr_mh_download_survives_a_director_restart() {
    fallback("kb", Mode::Dr, "mh", true);
}

#[test]
fn tun_sh_download_survives_a_director_restart() {
    fallback("kc", Mode::Tun, "sh", true);
}

#[test]
fn tun_mh_download_survives_a_director_restart() {
    fallback("kd", Mode::Tun, "mh", true);
}

#[test]
fn dr_sh_download_breaks_without_sloppy_tcp() {
    fallback("ke", Mode::Dr, "sh", false);
}
