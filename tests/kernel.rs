//! Real kernel traffic: a network namespace plays the client, attached to
//! ripvsd through a `net_tap` port whose kernel end is moved into it. The
//! kernel's own ping, arping and TCP (through the exception path) must work
//! against the director. Needs root (CI runs as root).

mod common;

use common::{Daemon, Scratch};
use std::process::{Command, Output};

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

/// A namespace deleted when dropped, even if the test panics.
struct Netns(String);

impl Netns {
    fn new(name: &str) -> Netns {
        let _ = sh(&["ip", "netns", "del", name]);
        ok(&["ip", "netns", "add", name]);
        Netns(name.to_string())
    }
    fn exec(&self, args: &[&str]) -> Output {
        let mut a = vec!["ip", "netns", "exec", &self.0];
        a.extend_from_slice(args);
        sh(&a)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = sh(&["ip", "netns", "del", &self.0]);
    }
}

#[test]
fn ping_arping_and_tcp_from_a_namespace() {
    common::require_root();
    let id = std::process::id() % 10000;
    let (port_if, exc_if, ns) = (format!("rvk{id}"), format!("rvx{id}"), format!("rvk{id}"));
    let net = 100 + (id % 100);
    let (dir_ip, cli_ip, vip) = (
        format!("10.{net}.0.1"),
        format!("10.{net}.0.2"),
        format!("10.{net}.0.100"),
    );
    let dir = Scratch::new("kernel");
    let cfg = format!(
        r#"
[eal]
args = ["--no-huge", "--no-pci", "-m", "128", "--no-shconf", "--log-level=error"]
worker_lcores = [1]

[[ports]]
name = "p0"
device = "net_tap0,iface={port_if}"
addresses = ["{dir_ip}/24"]
exception = {{ iface = "{exc_if}" }}

[[services]]
protocol = "tcp"
vip = "{vip}"
port = 80
"#
    );
    std::fs::write(dir.path("ripvs.toml"), cfg).unwrap();
    let ns = Netns::new(&ns);
    let d = Daemon::start(&dir.path("ripvs.toml"));
    // "port p0 de:42:...:2a (1 queue(s))"
    let running = d
        .output
        .iter()
        .find(|l| l.contains("ripvsd: running"))
        .unwrap()
        .clone();
    let mac = running
        .split("port p0 ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_uppercase();

    // The exception tap carries the port's MAC and addresses.
    let exc = ok(&["ip", "-br", "addr", "show", "dev", &exc_if]);
    assert!(exc.contains(&format!("{dir_ip}/24")), "{exc}");
    let exc_link = ok(&["ip", "-br", "link", "show", "dev", &exc_if]);
    assert!(
        exc_link.to_uppercase().contains(&mac),
        "{exc_link} vs {mac}"
    );

    // The tap PMD gives its kernel end the port's MAC too: give the client
    // its own before using it.
    ok(&["ip", "link", "set", &port_if, "netns", &ns.0]);
    for cmd in [
        vec!["ip", "link", "set", "lo", "up"],
        vec![
            "ip",
            "link",
            "set",
            &port_if,
            "address",
            "02:00:00:00:c0:02",
        ],
        vec![
            "ip",
            "addr",
            "add",
            &format!("{cli_ip}/24"),
            "dev",
            &port_if,
        ],
        vec!["ip", "link", "set", &port_if, "up"],
    ] {
        let out = ns.exec(&cmd);
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    for target in [&dir_ip, &vip] {
        let out = ns.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "2", target]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("3 received"),
            "ping {target}: {text}"
        );
    }
    let out = ns.exec(&["arping", "-c", "2", "-w", "4", "-I", &port_if, &vip]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("reply from {vip} [{mac}]")),
        "arping: {text}"
    );

    // TCP to the director's own address goes through the exception path to
    // the kernel's stack and back, as SSH would.
    let listener = std::net::TcpListener::bind(format!("{dir_ip}:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        use std::io::Write;
        let (mut s, peer) = listener.accept().unwrap();
        s.write_all(b"hello from the director's kernel\n").unwrap();
        peer
    });
    let out = ns.exec(&[
        "bash",
        "-c",
        &format!("exec 3<>/dev/tcp/{dir_ip}/{port}; timeout 5 head -1 <&3"),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from the director's kernel\n"
    );
    assert_eq!(server.join().unwrap().ip().to_string(), cli_ip);

    let log = d.stop();
    // Nothing is left behind that would stop an immediate restart: the same
    // taps, the same names, at once.
    let again = Daemon::start(&dir.path("ripvs.toml"));
    again.stop();
    assert!(
        common::counter(&log, "event", "echo_replies_sent") >= 6,
        "{log:?}"
    );
    assert!(
        common::counter(&log, "event", "exception_to_kernel") >= 3,
        "{log:?}"
    );
    assert!(
        common::counter(&log, "event", "exception_from_kernel") >= 2,
        "{log:?}"
    );
}
