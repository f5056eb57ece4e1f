//! One director's VRRP life on its own: with no peer it becomes master
//! after the master-down interval; its port's link going down puts the
//! instance in FAULT and up again starts it over; keepalived's notify
//! scripts run for each state with the arguments keepalived gives them;
//! SIGTERM sends the priority-0 advert (seen on the wire). The port is a
//! `net_tap` whose kernel end the test sets down and up (the tap driver
//! reports that as the link; af_packet ports report no link). Needs root.

mod common;

use common::{ripvsadm, Daemon, Scratch};
use std::process::Command;
use std::time::{Duration, Instant};

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// The head of a config: one worker, one `net_tap` port `tap` as
/// 10.NET.0.1/24, no exception path.
fn tap_port(tap: &str, net: u32) -> String {
    format!(
        r#"
[eal]
args = ["--no-huge", "--no-pci", "-m", "128", "--no-shconf", "--log-level=error"]
worker_lcores = [1]

[[ports]]
name = "p0"
device = "net_tap0,iface={tap}"
addresses = ["10.{net}.0.1/24"]
exception = {{ enabled = false }}
"#
    )
}

fn state(d: &Daemon) -> serde_json::Value {
    let out = ripvsadm(&d.socket)
        .args(["--vrrp", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["Vrrp"][0].clone()
}

#[test]
fn link_down_is_fault_and_every_state_runs_its_script() {
    common::require_root();
    let id = std::process::id() % 10000;
    let tap = format!("rvv{id}");
    let net = 100 + (id % 100);
    let dir = Scratch::new("vrrp");
    let d = dir.path("");
    let notify = dir.path("notify.sh");
    std::fs::write(
        &notify,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\n",
            dir.path("notify.log").display()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&notify)
        .status()
        .unwrap();
    let cfg = tap_port(&tap, net)
        + &format!(
            r#"
[[vrrp]]
name = "VI_9"
port = "p0"
vrid = 9
priority = 120
advert_int = 0.1
addresses = ["10.{net}.0.100"]
notify_master = "touch {d}/master"
notify_backup = "touch {d}/backup"
notify_fault = "touch {d}/fault"
notify = "{notify}"
"#,
            d = d.display(),
            notify = notify.display()
        );
    std::fs::write(dir.path("ripvs.toml"), cfg).unwrap();
    let mut dmn = Daemon::start(&dir.path("ripvs.toml"));
    dmn.wait_for("vrrp VI_9: BACKUP -> MASTER", Duration::from_secs(5));
    assert!(
        wait_until(5, || dir.path("master").exists()),
        "notify_master"
    );
    assert!(dir.path("backup").exists(), "notify_backup at start-up");
    let s = state(&dmn);
    assert_eq!(
        (s["state"].as_str(), s["priority"].as_u64()),
        (Some("Master"), Some(120))
    );

    // What the adverts look like on the tap's kernel end: tshark's VRRP
    // dissector, with the checksum checked.
    let cap = Command::new("timeout")
        .args(["10", "tshark", "-i", &tap, "-c", "3", "-f", "ip proto 112"])
        .args(["-o", "vrrp.v3_checksum_as_in_v2:FALSE", "-T", "fields"])
        .args([
            "-e",
            "ip.src",
            "-e",
            "ip.dst",
            "-e",
            "ip.ttl",
            "-e",
            "vrrp.version",
        ])
        .args([
            "-e",
            "vrrp.virt_rtr_id",
            "-e",
            "vrrp.prio",
            "-e",
            "vrrp.checksum.status",
        ])
        .output()
        .unwrap();
    let lines = String::from_utf8_lossy(&cap.stdout).into_owned();
    let want = format!("10.{net}.0.1\t224.0.0.18\t255\t3\t9\t120\t1");
    assert!(
        lines.lines().count() == 3 && lines.lines().all(|l| l == want),
        "tshark: {lines:?} (want {want:?}); {}",
        String::from_utf8_lossy(&cap.stderr)
    );

    // Link down: FAULT, its script; up: backup, then master again.
    ip(&["link", "set", "dev", &tap, "down"]);
    dmn.wait_for(
        "vrrp VI_9: MASTER -> FAULT (link down)",
        Duration::from_secs(5),
    );
    assert!(wait_until(5, || dir.path("fault").exists()), "notify_fault");
    assert_eq!(state(&dmn)["state"], "Fault");
    ip(&["link", "set", "dev", &tap, "up"]);
    dmn.wait_for("vrrp VI_9: FAULT -> BACKUP", Duration::from_secs(5));
    let again = Instant::now();
    assert!(wait_until(5, || state(&dmn)["state"] == "Master"));
    println!(
        "master again {} ms after the link came up",
        again.elapsed().as_millis()
    );
    let s = state(&dmn);
    assert_eq!(s["stats"]["transitions"], 5, "{s}");
    assert_eq!(s["stats"]["became_master"], 2, "{s}");

    // The generic script saw each state with keepalived's arguments.
    assert!(wait_until(5, || {
        std::fs::read_to_string(dir.path("notify.log")).is_ok_and(|l| l.lines().count() == 5)
    }));
    assert_eq!(
        std::fs::read_to_string(dir.path("notify.log")).unwrap(),
        "INSTANCE VI_9 BACKUP 120\nINSTANCE VI_9 MASTER 120\nINSTANCE VI_9 FAULT 120\n\
         INSTANCE VI_9 BACKUP 120\nINSTANCE VI_9 MASTER 120\n"
    );

    // A reload cannot turn on the virtual MAC (the port's MAC filter is
    // set at start-up): refused as a whole, the instance goes on.
    let text = std::fs::read_to_string(dir.path("ripvs.toml")).unwrap();
    std::fs::write(
        dir.path("ripvs.toml"),
        text.replace("priority = 120\n", "priority = 120\nuse_vmac = true\n"),
    )
    .unwrap();
    let out = ripvsadm(&dmn.socket).arg("--reload").output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("use_vmac"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = state(&dmn);
    assert_eq!(
        (s["state"].as_str(), s["stats"]["transitions"].as_u64()),
        (Some("Master"), Some(5))
    );

    // SIGTERM: the last advert says priority 0. tcpdump hands over and
    // writes each packet as it comes (--immediate-mode -U): the tap goes
    // away with ripvsd, and packets still in the capture buffer with it.
    let pcap = dir.path("stop.pcap");
    let mut cap = Command::new("tcpdump")
        .args(["-i", &tap, "--immediate-mode", "-U", "-n", "-w"])
        .arg(&pcap)
        .arg("ip proto 112")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let mut err = std::io::BufReader::new(cap.stderr.take().unwrap());
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 && !line.contains("listening on") {
        line.clear();
    }
    std::thread::sleep(Duration::from_millis(300));
    let log = dmn.stop();
    let _ = cap.wait();
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .args(["-T", "fields", "-e", "vrrp.prio"])
        .output()
        .unwrap();
    let prios = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(prios.lines().last(), Some("0"), "{prios:?} {log:?}");
    assert!(log
        .iter()
        .any(|l| l.contains("vrrp VI_9: MASTER -> INIT (stopping)")));
}

/// `use_vmac`: the master speaks with the virtual router MAC
/// 00:00:5e:00:01:VRID: its adverts and gratuitous ARPs come from it, it
/// answers ARP for the VIP with it, and takes frames sent to it (a ping
/// of the VIP from the tap's other end).
#[test]
fn with_use_vmac_the_master_is_the_virtual_router_mac() {
    common::require_root();
    let id = std::process::id() % 10000;
    let tap = format!("rvw{id}");
    let net = 100 + (id % 100);
    let vip = format!("10.{net}.0.100");
    let dir = Scratch::new("vrrp-vmac");
    let cfg = tap_port(&tap, net)
        + &format!(
            r#"
[[vrrp]]
name = "VI_7"
port = "p0"
vrid = 7
advert_int = 0.1
addresses = ["{vip}"]
use_vmac = true
"#
        );
    std::fs::write(dir.path("ripvs.toml"), cfg).unwrap();
    let mut dmn = Daemon::start(&dir.path("ripvs.toml"));
    // The tap's kernel end plays the client, in this namespace: moved to
    // another, the tap driver could no longer read its link and would
    // report it down. It carries the port's MAC until given its own.
    for cmd in [
        vec!["link", "set", &tap, "address", "02:00:00:00:c0:07"],
        vec!["addr", "add", &format!("10.{net}.0.2/24"), "dev", &tap],
        vec!["link", "set", &tap, "up"],
    ] {
        ip(&cmd);
    }
    dmn.wait_for("vrrp VI_7: BACKUP -> MASTER", Duration::from_secs(5));
    let vmac = "00:00:5e:00:01:07";
    let cap = Command::new("timeout")
        .args(["10", "tshark", "-i", &tap, "-c", "2", "-f", "ip proto 112"])
        .args(["-T", "fields", "-e", "eth.src", "-e", "vrrp.virt_rtr_id"])
        .output()
        .unwrap();
    let adverts = String::from_utf8_lossy(&cap.stdout).into_owned();
    assert_eq!(adverts, format!("{vmac}\t7\n{vmac}\t7\n"), "adverts");
    let exec = |args: &[&str]| {
        let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let arp = exec(&["arping", "-c", "2", "-w", "4", "-I", &tap, &vip]);
    assert!(
        arp.to_lowercase()
            .contains(&format!("reply from {vip} [{vmac}]")),
        "arping: {arp}"
    );
    let ping = exec(&["ping", "-c", "3", "-i", "0.2", "-W", "2", &vip]);
    assert!(ping.contains("3 received"), "ping {vip}: {ping}");
    let neigh = exec(&["ip", "neigh", "show", &vip]);
    assert!(neigh.contains(vmac), "the client's entry: {neigh}");
    let log = dmn.stop();
    assert_eq!(common::counter(&log, "drop", "not_for_us"), 0, "{log:?}");
}
