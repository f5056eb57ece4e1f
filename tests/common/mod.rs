//! Shared helpers for tests that run ripvsd as a separate process: pcap
//! files in and out, config files in a scratch directory, and the daemon's
//! final counters.

#![allow(dead_code)]

pub mod frames;
pub mod topo;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A scratch directory removed when dropped (kept if KEEP_TEST_DIRS is set).
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("ripvs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
    pub fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Writes a classic (microsecond) pcap of Ethernet frames.
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut b = Vec::new();
    b.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&0i32.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&65535u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    for (i, f) in frames.iter().enumerate() {
        b.extend_from_slice(&(i as u32).to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&(f.len() as u32).to_le_bytes());
        b.extend_from_slice(&(f.len() as u32).to_le_bytes());
        b.extend_from_slice(f);
    }
    std::fs::write(path, b).unwrap();
}

/// Reads the frames of a pcap file (either timestamp resolution, either
/// byte order); timestamps are ignored.
pub fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let mut d = Vec::new();
    std::fs::File::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .read_to_end(&mut d)
        .unwrap();
    assert!(d.len() >= 24, "{}: no pcap header", path.display());
    let magic = u32::from_le_bytes(d[0..4].try_into().unwrap());
    let le = matches!(magic, 0xa1b2c3d4 | 0xa1b23c4d);
    assert!(
        le || matches!(magic.swap_bytes(), 0xa1b2c3d4 | 0xa1b23c4d),
        "bad pcap magic"
    );
    let u32at = |at: usize| {
        let b: [u8; 4] = d[at..at + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= d.len() {
        let caplen = u32at(at + 8) as usize;
        frames.push(d[at + 16..at + 16 + caplen].to_vec());
        at += 16 + caplen;
    }
    frames
}

/// Tests that make namespaces, veths and taps need root; say so plainly.
pub fn require_root() {
    let out = Command::new("id").arg("-u").output().expect("running id");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0",
        "this test needs root (network namespaces, veths and taps); run it as root"
    );
}

/// The head of a config for one pcap port (10.0.0.1/24, MAC
/// 02:00:00:00:00:01) that replays `DIR/{rx}` and writes `DIR/out.pcap`,
/// its exception path a pcap pair too (`DIR/kernel.pcap` out), one
/// worker; "DIR" is left for the caller to replace with its scratch
/// directory, as in the rest of its config.
pub fn pcap_port(rx: &str) -> String {
    format!(
        r#"
[eal]
args = ["--no-huge", "--no-pci", "-m", "128", "--no-shconf", "--log-level=error"]
main_lcore = 0
worker_lcores = [1]

[[ports]]
name = "p0"
device = "net_pcap0,rx_pcap=DIR/{rx},tx_pcap=DIR/out.pcap"
mac = "02:00:00:00:00:01"
addresses = ["10.0.0.1/24"]
exception = {{ device = "net_pcap1,rx_pcap=DIR/none.pcap,tx_pcap=DIR/kernel.pcap" }}
"#
    )
}

pub fn ripvsd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ripvsd"))
}

/// The workspace's ripvsadm, built next to ripvsd: `cargo nextest run
/// --workspace` (the README's test command) builds every workspace binary
/// before it runs a test. Cargo exposes only this package's binaries to
/// its tests, so the path is derived, and a missing binary is an error
/// naming the command that builds it.
#[allow(dead_code)] // not every test binary drives ripvsadm
pub fn ripvsadm(socket: &Path) -> Command {
    let bin = Path::new(env!("CARGO_BIN_EXE_ripvsd")).with_file_name("ripvsadm");
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo nextest run --workspace` (or `cargo build -p ripvsadm` first)",
        bin.display()
    );
    let mut c = Command::new(bin);
    c.env("RIPVS_SOCKET", socket);
    c
}

/// A running ripvsd whose output is collected line by line.
pub struct Daemon {
    child: Child,
    /// Its control socket, next to its config (tests run in parallel).
    pub socket: PathBuf,
    lines: mpsc::Receiver<String>,
    pub output: Vec<String>,
}

impl Daemon {
    /// Starts `ripvsd -c config` and waits until it reports it is running.
    pub fn start(config: &Path) -> Daemon {
        Daemon::start_with(None, config, &[])
    }

    /// [`Daemon::start`] inside network namespace `ns`.
    pub fn start_in(ns: &str, config: &Path) -> Daemon {
        Daemon::start_with(Some(ns), config, &[])
    }

    /// Starts `ripvsd -c config -- EAL` in network namespace `netns` (or
    /// this one) and waits until it reports it is running. The child is
    /// ripvsd itself (`ip netns exec` execs it), so signals reach it.
    pub fn start_with(netns: Option<&str>, config: &Path, eal: &[&str]) -> Daemon {
        let mut d = Daemon::spawn_with(netns, config, eal);
        d.wait_for("ripvsd: control socket", Duration::from_secs(30));
        d
    }

    /// [`Daemon::start_with`] without waiting: the caller waits for the
    /// control socket line itself ([`Daemon::try_wait_for`]).
    pub fn spawn_with(netns: Option<&str>, config: &Path, eal: &[&str]) -> Daemon {
        let socket = config.with_extension("sock");
        let mut cmd = match netns {
            None => ripvsd(),
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_ripvsd")]);
                c
            }
        };
        cmd.arg("-c").arg(config).arg("--socket").arg(&socket);
        if !eal.is_empty() {
            cmd.arg("--").args(eal);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ripvsd");
        let (tx, rx) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(l);
                }
            });
        }
        Daemon {
            child,
            socket,
            lines: rx,
            output: Vec::new(),
        }
    }

    #[allow(dead_code)] // not every test binary signals the daemon
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for a line containing `needle`; panics with all output so far.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) {
        if let Err(e) = self.try_wait_for(needle, timeout) {
            panic!("{e}");
        }
    }

    /// [`Daemon::wait_for`] that returns the reason (with all output so
    /// far) instead of panicking: the timeout passed, or ripvsd exited.
    pub fn try_wait_for(&mut self, needle: &str, timeout: Duration) -> Result<(), String> {
        let end = Instant::now() + timeout;
        loop {
            if self.output.iter().any(|l| l.contains(needle)) {
                return Ok(());
            }
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.output.push(l),
                Err(_) => {
                    let status = self.child.try_wait().ok().flatten();
                    return Err(format!(
                        "no `{needle}` from ripvsd (exit: {status:?}); output:\n{}",
                        self.output.join("\n")
                    ));
                }
            }
        }
    }

    /// SIGTERM, wait for exit, return the whole output.
    pub fn stop(mut self) -> Vec<String> {
        let (status, output) = self.terminate();
        assert!(
            status.success(),
            "ripvsd exited with {status}; output:\n{}",
            output.join("\n")
        );
        output
    }

    /// SIGKILL, as a crash or `kill -9` does: no clean-up, no final
    /// counters. Returns once the process has exited and been reaped, so
    /// that the devices it held (af_packet sockets, taps) are free again;
    /// its exit status and whatever it printed before.
    #[allow(dead_code)] // not every test binary kills the daemon
    pub fn kill9(mut self) -> (std::process::ExitStatus, Vec<String>) {
        // Child::kill is kill(pid, SIGKILL) on the child itself, which is
        // ripvsd (`ip netns exec` execs it rather than forking).
        let _ = self.child.kill();
        let status = self.child.wait().unwrap();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.output.push(l);
        }
        (status, std::mem::take(&mut self.output))
    }

    /// [`Daemon::stop`] without judging the exit: for a test that is
    /// about to fail, to show the final counters with its reason.
    pub fn terminate(&mut self) -> (std::process::ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.output.push(l);
        }
        (status, std::mem::take(&mut self.output))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of a `drop NAME N` / `event NAME N` line in the final counters.
pub fn counter(output: &[String], kind: &str, name: &str) -> u64 {
    let prefix = format!("{kind} {name} ");
    output
        .iter()
        .find_map(|l| l.strip_prefix(&prefix).map(|n| n.trim().parse().unwrap()))
        .unwrap_or(0)
}
