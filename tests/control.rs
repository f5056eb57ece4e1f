//! The control socket of a running ripvsd: live changes reach the workers,
//! errors come back with IPVS's errnos, listings reflect the table, and a
//! SIGHUP re-reads the config.

mod common;

use common::{Daemon, Scratch};
use ctrl_api::{
    read_msg, write_msg, ApiError, Command, Envelope, Errno, Netmask, Proto, Request, Response,
    SvcKey, SvcSpec, VERSION,
};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;

fn ask(d: &Daemon, request: Request) -> Response {
    let mut s = UnixStream::connect(&d.socket).expect("control socket");
    write_msg(
        &mut s,
        &Envelope {
            version: VERSION,
            request,
        },
    )
    .unwrap();
    read_msg(&mut s).unwrap().expect("a response")
}

fn spec(port: u16, sched: &str) -> SvcSpec {
    SvcSpec {
        key: SvcKey::Addr {
            proto: Proto::Tcp,
            addr: "10.0.0.100".parse().unwrap(),
            port,
        },
        scheduler: sched.into(),
        persistent: None,
        netmask: Netmask::V4(Ipv4Addr::BROADCAST),
        ops: false,
        pe: None,
        sched_flags: 0,
        synproxy: false,
    }
}

/// Services etc., after `common::pcap_port`.
const CONFIG: &str = r#"
[[services]]
protocol = "tcp"
vip = "10.0.0.100"
port = 80
"#;

#[test]
fn live_changes_listings_and_reload_over_the_socket() {
    let dir = Scratch::new("control");
    common::write_pcap(&dir.path("none.pcap"), &[]);
    let cfg =
        (common::pcap_port("none.pcap") + CONFIG).replace("DIR", &dir.0.display().to_string());
    std::fs::write(dir.path("ripvs.toml"), &cfg).unwrap();
    let mut d = Daemon::start(&dir.path("ripvs.toml"));

    let Response::Info(info) = ask(&d, Request::Info) else {
        panic!("no info")
    };
    assert_eq!(info.version, "1.2.1");
    let r = ask(
        &d,
        Request::Apply(vec![
            Command::AddService(spec(443, "rr")),
            Command::AddService(spec(80, "wlc")),
            Command::AddService(spec(8080, "nosuch")),
        ]),
    );
    let Response::Applied(results) = r else {
        panic!("{r:?}")
    };
    assert_eq!(results[0], Ok(()));
    assert_eq!(results[1].as_ref().unwrap_err().errno, Errno::Eexist);
    assert_eq!(results[2].as_ref().unwrap_err().errno, Errno::Enoent);
    let Response::Services(list) = ask(&d, Request::Services(None)) else {
        panic!("no listing")
    };
    let ports: Vec<_> = list
        .iter()
        .map(|s| match s.spec.key {
            SvcKey::Addr { port, .. } => (port, s.spec.scheduler.clone()),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(ports, vec![(80, "wlc".into()), (443, "rr".into())]);
    let missing = ask(&d, Request::Services(Some(spec(8080, "rr").key)));
    assert!(
        matches!(
            missing,
            Response::Error(ApiError {
                errno: Errno::Esrch,
                ..
            })
        ),
        "{missing:?}"
    );
    let Response::Connections(page) = ask(
        &d,
        Request::Connections {
            cursor: None,
            max: 100,
        },
    ) else {
        panic!("no connections")
    };
    assert!(page.conns.is_empty() && page.next.is_none());

    // A reload applies only the difference: 443 was added live and is not
    // in the file, 81 is new in it.
    std::fs::write(
        dir.path("ripvs.toml"),
        format!("{cfg}\n[[services]]\nprotocol = \"tcp\"\nvip = \"10.0.0.100\"\nport = 81\n"),
    )
    .unwrap();
    let pid = d.pid().to_string();
    std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    d.wait_for(
        "ripvsd: configuration reloaded",
        std::time::Duration::from_secs(10),
    );
    let Response::Services(list) = ask(&d, Request::Services(None)) else {
        panic!("no listing")
    };
    let ports: Vec<_> = list
        .iter()
        .map(|s| match s.spec.key {
            SvcKey::Addr { port, .. } => port,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(ports, vec![80, 81]);

    // VRRP is set up with the daemon (its thread, the workers' control
    // link): a reload that adds an instance is refused whole.
    let vrrp =
        "\n[[vrrp]]\nname = \"VI_1\"\nport = \"p0\"\nvrid = 1\naddresses = [\"10.0.0.100\"]\n";
    std::fs::write(dir.path("ripvs.toml"), format!("{cfg}{vrrp}")).unwrap();
    let Response::Error(e) = ask(&d, Request::Reload) else {
        panic!("a reload adding [[vrrp]] is refused")
    };
    assert_eq!(
        e.detail,
        "[[vrrp]] instances added by a reload need a restart of ripvsd"
    );
    let Response::Services(list) = ask(&d, Request::Services(None)) else {
        panic!("no listing")
    };
    assert_eq!(
        list.len(),
        2,
        "the refused reload changed nothing: 80 and 81 stay"
    );
    d.stop();
}

fn control_daemon(name: &str) -> (Scratch, Daemon) {
    let dir = Scratch::new(name);
    common::write_pcap(&dir.path("none.pcap"), &[]);
    let cfg =
        (common::pcap_port("none.pcap") + CONFIG).replace("DIR", &dir.0.display().to_string());
    std::fs::write(dir.path("ripvs.toml"), &cfg).unwrap();
    let d = Daemon::start(&dir.path("ripvs.toml"));
    (dir, d)
}

const LISTING: &str = "IP Virtual Server version 1.2.1 (size=1048576)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.0.100:80 wlc
";

/// 200 clients that connect and say nothing, reconnecting (after 200 ms)
/// whenever the daemon closes them, do not keep ripvsadm out.
#[test]
fn idle_and_reconnecting_clients_do_not_lock_out_the_operator() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    let (_dir, d) = control_daemon("control-idle");
    let stop = Arc::new(AtomicBool::new(false));
    let hogs: Vec<_> = (0..200)
        .map(|_| {
            let (path, stop) = (d.socket.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut connects = 0;
                while !stop.load(Ordering::SeqCst) && connects < 50 {
                    let Ok(mut s) = UnixStream::connect(&path) else {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    };
                    connects += 1;
                    s.set_read_timeout(Some(Duration::from_millis(100)))
                        .unwrap();
                    let mut buf = [0u8; 1];
                    // Until the daemon closes it, or the test ends.
                    while !stop.load(Ordering::SeqCst) {
                        match std::io::Read::read(&mut s, &mut buf) {
                            Ok(0) => break,
                            Ok(_) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                            Err(_) => break,
                        }
                    }
                    // Slowly reconnecting: a client that reconnects at
                    // once, 200 of them, turns every slot over in a few
                    // milliseconds, and no admission policy keeps a slot
                    // for a new client longer than the churn allows.
                    std::thread::sleep(Duration::from_millis(200));
                }
                connects
            })
        })
        .collect();
    // Let them fill every slot.
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..3 {
        let t0 = Instant::now();
        let out = common::ripvsadm(&d.socket)
            .args(["-L", "-n"])
            .output()
            .unwrap();
        let took = t0.elapsed();
        assert_eq!(
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).as_ref(),
                String::from_utf8_lossy(&out.stderr).as_ref()
            ),
            (Some(0), LISTING, "")
        );
        assert!(took < Duration::from_secs(1), "ripvsadm took {took:?}");
    }
    stop.store(true, Ordering::SeqCst);
    let connects: usize = hogs.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(connects >= 200, "{connects}");
    d.stop();
}

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Several clients each sending a maximum-size frame at once: the
/// daemon's peak memory grows by about one frame, not one per client, and
/// each gets an answer.
#[test]
fn max_size_frames_from_several_clients_stay_within_the_request_budget() {
    use std::io::Write;
    use std::sync::Arc;
    let (_dir, d) = control_daemon("control-big");
    let Response::Info(_) = ask(&d, Request::Info) else {
        panic!("no info")
    };
    // The worker builds its tables after the socket is up: the baseline
    // is the peak once it has settled.
    let mut before = vm_hwm_kib(d.pid());
    let mut steady = 0;
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let now = vm_hwm_kib(d.pid());
        steady = if now == before { steady + 1 } else { 0 };
        before = now;
        if steady == 10 {
            break;
        }
    }
    // Valid JSON up to a request that never comes: undecodable, after
    // the whole frame was read.
    let n = ctrl_api::MAX_MESSAGE;
    let mut frame = Vec::with_capacity(n + 4);
    frame.extend_from_slice(&(n as u32).to_be_bytes());
    frame.extend_from_slice(b"{\"version\":1,\"request\":");
    frame.resize(n + 3, b' ');
    frame.push(b'x');
    let frame = Arc::new(frame);
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let (path, frame) = (d.socket.clone(), frame.clone());
            std::thread::spawn(move || {
                let mut s = UnixStream::connect(&path).unwrap();
                s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
                    .unwrap();
                // The daemon may refuse before reading it all.
                let _ = s.write_all(&frame);
                match read_msg::<Response>(&mut s) {
                    Ok(Some(Response::Error(e))) => e.detail,
                    other => panic!("{other:?}"),
                }
            })
        })
        .collect();
    let answers: Vec<String> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    for a in &answers {
        assert!(
            a.starts_with("undecodable request: ") || a.starts_with("ripvsd is busy: "),
            "{a}"
        );
    }
    assert!(
        answers.iter().any(|a| a.starts_with("undecodable")),
        "{answers:?}"
    );
    let grown = vm_hwm_kib(d.pid()).saturating_sub(before);
    // One frame in flight and change; six at once were 384 MiB.
    let bound = (n as u64 >> 10) + (32 << 10);
    assert!(
        grown < bound,
        "peak memory grew by {grown} KiB (bound {bound} KiB), answers {answers:?}"
    );
    // And the daemon still answers.
    assert!(matches!(ask(&d, Request::Info), Response::Info(_)));
    d.stop();
}
