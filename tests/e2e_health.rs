//! Health checks end to end: ripvsd checks the nginx real servers of
//! tools/topology from its own kernel stack (through the ports' exception
//! taps, as a director does), and the tests stop servers, change their
//! pages and flip exec checks, then watch the table, the log and what
//! curl clients get. Needs root; one at a time (`kernel-traffic`).

mod common;

use common::topo::Topology;
use common::{counter, ripvsadm, Daemon, Scratch};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const DR_VIP: &str = "10.60.0.100";
const TUN_VIP: &str = "10.60.0.101";
const NAT_VIP: &str = "10.60.0.102";

/// Check timing shared by the services below: a server is down after
/// `RETRIES` failed checks `INTERVAL` apart, each given `TIMEOUT`.
const INTERVAL: f64 = 1.0;
const TIMEOUT: f64 = 0.8;
const RETRIES: u32 = 2;
/// What the issue promises (interval × retries + timeout), plus room for
/// a loaded CI machine: a process start, curl, scheduling.
fn down_within() -> Duration {
    Duration::from_secs_f64(INTERVAL * RETRIES as f64 + TIMEOUT + 3.0)
}

struct Bench {
    daemon: Option<Daemon>,
    topo: Topology,
    dir: Scratch,
}

impl Bench {
    /// The topology, and ripvsd on it with exception taps (the checks'
    /// way out) and `services` from the config file.
    fn new(tag: &str, services: &str) -> Bench {
        common::require_root();
        let p = format!("{tag}{}", std::process::id() % 10000);
        let topo = Topology::up(&p);
        let dir = Scratch::new(&format!("e2e-health-{tag}"));
        let services = services.replace("DIR", &dir.0.display().to_string());
        let cfg = common::topo::director_config(&p, "[1]", true) + &services;
        std::fs::write(dir.path("ripvs.toml"), cfg).unwrap();
        let daemon = Daemon::start(&dir.path("ripvs.toml"));
        Bench {
            daemon: Some(daemon),
            topo,
            dir,
        }
    }

    fn d(&mut self) -> &mut Daemon {
        self.daemon.as_mut().unwrap()
    }

    fn adm(&self, args: &[&str]) -> String {
        let out = ripvsadm(&self.daemon.as_ref().unwrap().socket)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ripvsadm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The `-> ADDR:PORT FORWARD WEIGHT` lines of one service in `-L -n`.
    fn servers(&self, vs: &str) -> Vec<String> {
        let listing = self.adm(&["-L", "-n", "-t", vs]);
        listing
            .lines()
            .filter(|l| l.starts_with("  -> ") && !l.contains("RemoteAddress"))
            .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
            .collect()
    }

    /// `n` requests from client 1, one connection each; every one must be
    /// answered (a failed request fails the test). The names that answered.
    fn http(&self, vip: &str, n: usize) -> Vec<String> {
        self.topo.http("c1", vip, n)
    }

    /// Waits for a log line containing `needle`, at most `within`; how
    /// long it took from `since`.
    fn logged(&mut self, needle: &str, since: Instant, within: Duration) -> Duration {
        self.d().wait_for(needle, within + Duration::from_secs(10));
        let took = since.elapsed();
        assert!(
            took <= within,
            "`{needle}` after {took:?}, more than {within:?}"
        );
        took
    }

    fn stop(mut self) -> Vec<String> {
        let log = self.daemon.take().unwrap().stop();
        assert_eq!(counter(&log, "drop", "no_connection"), 0, "{log:?}");
        log
    }
}

fn set(names: &[String]) -> BTreeSet<&str> {
    names.iter().map(String::as_str).collect()
}

/// NAT, tcp checks, removal: a stopped nginx leaves the table within
/// interval × retries + timeout and no client request fails after that;
/// with both servers down the sorry server answers; a restarted nginx
/// comes back after `successes` checks and the sorry server leaves.
#[test]
fn nat_servers_leave_and_return_and_the_sorry_server_stands_in() {
    let mut b = Bench::new(
        "hn",
        &format!(
            r#"
[[services]]
protocol = "tcp"
vip = "{NAT_VIP}"
port = 80
scheduler = "rr"
quiescent = false
sorry_server = {{ address = "10.61.0.13", method = "nat" }}
[services.health]
checker = "tcp"
interval = {INTERVAL}
timeout = {TIMEOUT}
retries = {RETRIES}
successes = 2
[[services.real_servers]]
address = "10.61.0.11"
method = "nat"
weight = 2
[[services.real_servers]]
address = "10.61.0.12"
method = "nat"
"#
        ),
    );
    let vs = format!("{NAT_VIP}:80");
    assert_eq!(set(&b.http(NAT_VIP, 6)), BTreeSet::from(["r1", "r2"]));

    b.topo.nginx("r2", false);
    let took = b.logged(
        &format!(
            "ripvsd: health: TCP {vs} -> 10.61.0.12:80 down (connect: connection refused) after 2 failures: removed"
        ),
        Instant::now(),
        down_within(),
    );
    println!("r2 removed {took:?} after its nginx stopped");
    assert_eq!(b.servers(&vs), ["-> 10.61.0.11:80 Masq 2"]);
    assert_eq!(set(&b.http(NAT_VIP, 20)), BTreeSet::from(["r1"]));
    let health = b.adm(&["--health", "-n", "-t", &vs]);
    let r2 = health
        .lines()
        .find(|l| l.contains("10.61.0.12:80"))
        .unwrap_or_else(|| panic!("{health}"));
    assert!(
        r2.contains(" tcp ") && r2.contains(" down ") && r2.contains("connection refused"),
        "{health}"
    );

    b.topo.nginx("r1", false);
    b.logged(
        &format!(
            "ripvsd: health: TCP {vs} sorry server 10.61.0.13:80 in: no real server available"
        ),
        Instant::now(),
        down_within(),
    );
    assert_eq!(b.servers(&vs), ["-> 10.61.0.13:80 Masq 1"]);
    assert_eq!(set(&b.http(NAT_VIP, 10)), BTreeSet::from(["r3"]));

    b.topo.nginx("r2", true);
    let back = Duration::from_secs_f64(INTERVAL * 2.0 + TIMEOUT + 3.0);
    let t = Instant::now();
    b.logged(
        &format!("ripvsd: health: TCP {vs} -> 10.61.0.12:80 up after 2 successes: reinstated with weight 1"),
        t,
        back,
    );
    b.logged(
        &format!(
            "ripvsd: health: TCP {vs} sorry server 10.61.0.13:80 out: a real server is available"
        ),
        t,
        back,
    );
    assert_eq!(b.servers(&vs), ["-> 10.61.0.12:80 Masq 1"]);
    assert_eq!(set(&b.http(NAT_VIP, 10)), BTreeSet::from(["r2"]));
    b.stop();
}

/// DR, http checks that expect each server's name in its page,
/// quiescent: a server whose page changes drops to weight 0 (and gets no
/// new requests), an operator's weight set meanwhile is what it gets back
/// when its page is right again.
#[test]
fn a_changed_page_quiesces_a_dr_server_until_it_is_right_again() {
    let servers: String = (1..=3)
        .map(|n| {
            format!(
                "[[services.real_servers]]\naddress = \"10.60.0.1{n}\"\nhealth = {{ expect = \"r{n}\" }}\n"
            )
        })
        .collect();
    let mut b = Bench::new(
        "hd",
        &format!(
            r#"
[[services]]
protocol = "tcp"
vip = "{DR_VIP}"
port = 80
scheduler = "rr"
quiescent = true
[services.health]
checker = "http"
path = "/"
interval = {INTERVAL}
timeout = {TIMEOUT}
retries = {RETRIES}
{servers}"#
        ),
    );
    let vs = format!("{DR_VIP}:80");
    assert_eq!(set(&b.http(DR_VIP, 6)), BTreeSet::from(["r1", "r2", "r3"]));

    let page = b.topo.server_dir("r2").join("www/index.html");
    std::fs::write(&page, "down for maintenance\n").unwrap();
    b.logged(
        &format!("ripvsd: health: TCP {vs} -> 10.60.0.12:80 down (http: body does not contain \"r2\") after 2 failures: weight 0"),
        Instant::now(),
        down_within(),
    );
    assert_eq!(
        b.servers(&vs),
        [
            "-> 10.60.0.11:80 Route 1",
            "-> 10.60.0.12:80 Route 0",
            "-> 10.60.0.13:80 Route 1"
        ]
    );
    assert_eq!(set(&b.http(DR_VIP, 20)), BTreeSet::from(["r1", "r3"]));
    // The operator raises its weight while it is down: kept for later.
    b.adm(&["-e", "-t", &vs, "-r", "10.60.0.12:80", "-g", "-w", "4"]);
    assert!(b
        .servers(&vs)
        .contains(&"-> 10.60.0.12:80 Route 0".to_string()));

    std::fs::write(&page, "r2\n").unwrap();
    b.logged(
        &format!("ripvsd: health: TCP {vs} -> 10.60.0.12:80 up after 1 success: weight 4 restored"),
        Instant::now(),
        Duration::from_secs_f64(INTERVAL + TIMEOUT + 3.0),
    );
    assert!(b
        .servers(&vs)
        .contains(&"-> 10.60.0.12:80 Route 4".to_string()));
    assert!(b.http(DR_VIP, 12).iter().any(|n| n == "r2"));
    b.stop();
}

/// TUN, exec checks: a command's exit code (here read from a file per
/// server) decides, and traffic through the tunnel follows it.
#[test]
fn an_exec_checks_exit_code_drives_a_tun_server() {
    let mut b = Bench::new(
        "ht",
        &format!(
            r#"
[[services]]
protocol = "tcp"
vip = "{TUN_VIP}"
port = 80
scheduler = "rr"
[services.health]
checker = "exec"
command = ["/bin/sh", "-c", "exit $(cat DIR/rc-$1 2>/dev/null || echo 0)", "check"]
interval = {INTERVAL}
timeout = {TIMEOUT}
retries = {RETRIES}
[[services.real_servers]]
address = "10.60.0.11"
method = "tun"
[[services.real_servers]]
address = "10.60.0.13"
method = "tun"
"#
        ),
    );
    let vs = format!("{TUN_VIP}:80");
    assert_eq!(set(&b.http(TUN_VIP, 4)), BTreeSet::from(["r1", "r3"]));
    std::fs::write(b.dir.path("rc-10.60.0.13"), "3").unwrap();
    b.logged(
        &format!("ripvsd: health: TCP {vs} -> 10.60.0.13:80 down (exec: /bin/sh exited with status 3) after 2 failures: removed"),
        Instant::now(),
        down_within(),
    );
    assert_eq!(b.servers(&vs), ["-> 10.60.0.11:80 Tunnel 1"]);
    assert_eq!(set(&b.http(TUN_VIP, 10)), BTreeSet::from(["r1"]));
    std::fs::write(b.dir.path("rc-10.60.0.13"), "0").unwrap();
    b.logged(
        &format!("ripvsd: health: TCP {vs} -> 10.60.0.13:80 up after 1 success: reinstated with weight 1"),
        Instant::now(),
        Duration::from_secs_f64(INTERVAL + TIMEOUT + 3.0),
    );
    assert_eq!(set(&b.http(TUN_VIP, 4)), BTreeSet::from(["r1", "r3"]));
    b.stop();
}
