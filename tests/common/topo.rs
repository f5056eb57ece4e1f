//! tools/topology from a test: the namespaces, bridges and nginx real
//! servers of the end-to-end tests, removed even when the test fails.

use std::path::PathBuf;
use std::process::{Command, Output};

const TOPOLOGY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/topology");

pub struct Topology(pub String);

impl Topology {
    /// `tools/topology up PREFIX`; panics with its message if that fails.
    pub fn up(prefix: &str) -> Topology {
        Topology::up_with(prefix, &[])
    }

    /// `tools/topology up PREFIX backup`: also the backup director's
    /// namespace (`bk`) and ports, for [`backup_director_config`].
    pub fn up_with_backup(prefix: &str) -> Topology {
        Topology::up_with(prefix, &["backup"])
    }

    fn up_with(prefix: &str, extra: &[&str]) -> Topology {
        let t = Topology(prefix.to_string());
        let out = Command::new(TOPOLOGY)
            .args(["up", prefix])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tools/topology up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t
    }

    /// The full name of namespace `short` (`c1`, `r2`, ...).
    pub fn ns(&self, short: &str) -> String {
        format!("{}{short}", self.0)
    }

    /// Runs `args` in namespace `short`.
    pub fn run(&self, short: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(short)])
            .args(args)
            .output()
            .unwrap()
    }

    /// `n` HTTP requests from client `ns` to `vip`, one connection each
    /// (the server closes after answering), one after the other: the name
    /// of the server that answered each (each page is its server's name).
    /// Every request must be answered.
    pub fn http(&self, ns: &str, vip: &str, n: usize) -> Vec<String> {
        let url = format!("http://{vip}/?[1-{n}]");
        let out = self.run(
            ns,
            &["curl", "-sS", "-m", "5", "-H", "Connection: close", &url],
        );
        let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        assert!(
            out.status.success() && names.len() == n,
            "{n} requests to {vip} from {ns}: {} answers {names:?}; curl: {}",
            names.len(),
            String::from_utf8_lossy(&out.stderr)
        );
        for name in &names {
            assert!(
                ["r1", "r2", "r3"].contains(&name.as_str()),
                "answer {name:?}"
            );
        }
        names
    }

    /// Real server `name`'s files: nginx.conf, www/ (its pages).
    pub fn server_dir(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("/tmp/ripvs-topo-{}/{name}", self.0))
    }

    /// Stops (`false`) or starts (`true`) nginx in real server `name`.
    pub fn nginx(&self, name: &str, running: bool) {
        let d = self.server_dir(name);
        let (conf, dir, log) = (
            d.join("nginx.conf").display().to_string(),
            d.display().to_string(),
            d.join("error.log").display().to_string(),
        );
        let mut args = vec!["nginx", "-q", "-e", &log, "-c", &conf, "-p", &dir];
        if !running {
            args.extend(["-s", "stop"]);
        }
        let out = self.run(name, &args);
        assert!(
            out.status.success(),
            "nginx {} in {name}: {}",
            if running { "start" } else { "stop" },
            String::from_utf8_lossy(&out.stderr)
        );
        // `-s stop` only signals; wait until nothing listens on port 80.
        for _ in 0..100 {
            let probe = self.run(name, &["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/80"]);
            if probe.status.success() == running {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!(
            "nginx in {name} did not {}",
            if running { "start" } else { "stop" }
        );
    }
}

/// The head of a ripvsd config for topology `p`: EAL, `workers` (a TOML
/// list of lcores), and the two director ports on the topology's veths,
/// with an exception tap each (`{p}x0`, `{p}x1`: the director's own
/// kernel stack, which health checks use) or none.
pub fn director_config(p: &str, workers: &str, exception_taps: bool) -> String {
    let exc = |i: usize| {
        if exception_taps {
            format!("{{ iface = \"{p}x{i}\" }}")
        } else {
            "{ enabled = false }".to_string()
        }
    };
    format!(
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
exception = {}
[[ports]]
name = "p1"
device = "net_af_packet1,iface={p}d1"
addresses = ["10.61.0.1/24"]
exception = {}
"#,
        exc(0),
        exc(1)
    )
}

/// The head of the backup director's config for topology `p` (started
/// up with [`Topology::up_with_backup`], run in its namespace `bk`): like
/// [`director_config`], on its ports `{p}e0` / `{p}e1` as 10.60.0.4 /
/// 10.61.0.4, with exception taps `{p}y0` / `{p}y1` (connection sync
/// travels on a tap).
pub fn backup_director_config(p: &str, workers: &str) -> String {
    format!(
        r#"
[eal]
args = ["--no-huge", "--no-pci", "-m", "256", "--no-shconf", "--log-level=error"]
worker_lcores = {workers}
[dataplane]
max_connections = 65536
[[ports]]
name = "p0"
device = "net_af_packet0,iface={p}e0"
addresses = ["10.60.0.4/24"]
exception = {{ iface = "{p}y0" }}
[[ports]]
name = "p1"
device = "net_af_packet1,iface={p}e1"
addresses = ["10.61.0.4/24"]
exception = {{ iface = "{p}y1" }}
"#
    )
}

impl Drop for Topology {
    fn drop(&mut self) {
        let _ = Command::new(TOPOLOGY).args(["down", &self.0]).output();
    }
}
