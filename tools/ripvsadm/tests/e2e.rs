//! The built binary against an in-test ripvsd stand-in on a Unix socket.

mod common;

use common::*;
use ctrl_api::*;
use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::{Command as Proc, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A socket path in a directory of its own, removed when dropped.
struct Sock {
    dir: PathBuf,
    path: PathBuf,
}

impl Drop for Sock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl std::ops::Deref for Sock {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.path
    }
}

fn sock_path() -> Sock {
    let dir = std::env::temp_dir().join(format!(
        "ripvsadm-e2e-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ripvsd.sock");
    Sock { dir, path }
}

/// Serves one client connection; returns the requests it saw.
fn serve(
    path: &PathBuf,
    answer: impl Fn(&Request) -> Response + Send + 'static,
) -> JoinHandle<Vec<Request>> {
    let l = UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut seen = Vec::new();
        while let Some(env) = read_msg::<Envelope>(&mut s).unwrap() {
            assert_eq!(env.version, VERSION);
            write_msg(&mut s, &answer(&env.request)).unwrap();
            seen.push(env.request);
        }
        seen
    })
}

struct Out {
    code: i32,
    out: String,
    err: String,
}

fn ripvsadm(args: &[&str], env_sock: Option<&str>, stdin: &str) -> Out {
    let mut cmd = Proc::new(env!("CARGO_BIN_EXE_ripvsadm"));
    cmd.args(args)
        .env_remove("RIPVS_SOCKET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(s) = env_sock {
        cmd.env("RIPVS_SOCKET", s);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    Out {
        code: o.status.code().unwrap(),
        out: String::from_utf8(o.stdout).unwrap(),
        err: String::from_utf8(o.stderr).unwrap(),
    }
}

#[test]
fn listing_over_the_socket() {
    let p = sock_path();
    let srv = serve(&p, |r| match r {
        Request::Info => Response::Info(info()),
        Request::Services(None) => Response::Services(reference_table()),
        _ => Response::Error(ApiError::new(Errno::Einval, "unexpected")),
    });
    let o = ripvsadm(&["--socket", p.to_str().unwrap(), "-Ln"], None, "");
    assert_eq!(o.err, "");
    assert_eq!(o.code, 0);
    assert_eq!(
        o.out,
        refx(
            "IP Virtual Server version 1.2.1 (size=4096)⏎
Prot LocalAddress:Port Scheduler Flags⏎
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn⏎
TCP  10.0.0.100:80 wlc⏎
  -> 10.0.1.11:80                 Masq    1      12         40        ⏎
  -> 10.0.1.12:80                 Masq    2      25         81        ⏎
UDP  10.0.0.100:53 rr persistent 360⏎
  -> 10.0.1.11:53                 Route   1      0          7         ⏎
FWM  7 sh (sh-fallback,sh-port) persistent 300 mask 255.255.255.0⏎
  -> 10.0.2.21:0                  Tunnel  100    3          1         ⏎
"
        )
    );
    assert_eq!(
        srv.join().unwrap(),
        vec![Request::Info, Request::Services(None)]
    );
}

#[test]
fn rejected_change_over_the_socket() {
    let p = sock_path();
    let srv = serve(&p, |r| match r {
        Request::Apply(c) => Response::Applied(
            c.iter()
                .map(|_| Err(ApiError::new(Errno::Eexist, "service exists")))
                .collect(),
        ),
        _ => Response::Error(ApiError::new(Errno::Einval, "unexpected")),
    });
    // The socket from the environment.
    let o = ripvsadm(
        &["-A", "-t", "10.0.0.1:80", "-s", "rr"],
        Some(p.to_str().unwrap()),
        "",
    );
    assert_eq!(
        (o.code, o.out.as_str(), o.err.as_str()),
        (255, "", "Service already exists\n")
    );
    assert_eq!(
        srv.join().unwrap(),
        vec![Request::Apply(vec![Command::AddService(spec(
            tcp("10.0.0.1", 80),
            "rr"
        ))])]
    );
}

#[test]
fn restore_from_stdin_over_the_socket() {
    let p = sock_path();
    let srv = serve(&p, |r| match r {
        Request::Apply(c) => Response::Applied(c.iter().map(|_| Ok(())).collect()),
        _ => Response::Error(ApiError::new(Errno::Einval, "unexpected")),
    });
    let rules = "-A -t 210.77.132.8:80 -s rr
-a -t 210.77.132.8:80 -r 192.168.0.2:80 -m -w 1
-a -t 210.77.132.8:80 -r 192.168.0.3:80 -m -w 1
";
    let o = ripvsadm(&["-R", "--socket", p.to_str().unwrap()], None, rules);
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    let sent = srv.join().unwrap();
    assert_eq!(sent.len(), 1, "one Apply for the whole file");
    let Request::Apply(c) = &sent[0] else {
        panic!("{sent:?}")
    };
    assert_eq!(c.len(), 3);
}

#[test]
fn unreachable_socket() {
    let p = sock_path();
    let o = ripvsadm(&["-L", "-n", "--socket", p.to_str().unwrap()], None, "");
    assert_eq!(o.code, 2);
    assert_eq!(o.out, "");
    assert_eq!(
        o.err,
        "Can't initialize ipvs: No such file or directory\nAre you sure that ripvsd is running?\n"
    );
}

#[test]
fn no_daemon_needed_for_help_and_errors() {
    let p = sock_path();
    let s = p.to_str().unwrap();
    let o = ripvsadm(&["-h", "--socket", s], None, "");
    assert_eq!(o.code, 0);
    assert!(o.out.contains("Usage:\n"));
    let o = ripvsadm(&["-v"], Some(s), "");
    assert_eq!(
        (o.code, o.out.as_str()),
        (
            0,
            "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n"
        )
    );
    let o = ripvsadm(&["-n", "-L"], Some(s), "");
    assert_eq!(o.code, 255);
    assert!(o.err.starts_with("Try `"), "{}", o.err);
    let o = ripvsadm(&["-A", "-t", "1.2.3.4:80", "-m"], Some(s), "");
    assert_eq!(
        (o.code, o.err.as_str()),
        (
            2,
            "Illegal 'forwarding-method' option with the 'add-service' command\n"
        )
    );
}

#[test]
fn vrrp_over_the_socket() {
    let p = sock_path();
    let srv = serve(&p, |r| match r {
        Request::Vrrp => Response::Vrrp(reference_vrrp()),
        _ => Response::Error(ApiError::new(Errno::Einval, "unexpected")),
    });
    let o = ripvsadm(&["--vrrp", "--socket", p.to_str().unwrap()], None, "");
    assert_eq!(
        (o.code, o.out.as_str(), o.err.as_str()),
        (0, REFERENCE_VRRP_TEXT, "")
    );
    assert_eq!(srv.join().unwrap(), vec![Request::Vrrp]);

    let p = sock_path();
    let srv = serve(&p, |r| match r {
        Request::Vrrp => Response::Vrrp(reference_vrrp()),
        _ => Response::Error(ApiError::new(Errno::Einval, "unexpected")),
    });
    let o = ripvsadm(&["--vrrp", "-n", "--json"], Some(p.to_str().unwrap()), "");
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    assert_eq!(o.out, VRRP_JSON);
    assert_eq!(srv.join().unwrap(), vec![Request::Vrrp]);
}

/// `ripvsadm --vrrp --json` of [`reference_vrrp`]: serde_json's pretty
/// form of the Response, as every `--json` answer is printed.
const VRRP_JSON: &str = r#"{
  "Vrrp": [
    {
      "name": "VI_1",
      "port": "p0",
      "vrid": 51,
      "version": 3,
      "state": "Master",
      "priority": 150,
      "advert_int_cs": 100,
      "master_advert_int_cs": 100,
      "preempt": true,
      "master": "10.60.0.1",
      "master_priority": 150,
      "addresses": [
        "10.60.0.100"
      ],
      "unicast_peers": [],
      "since_ms": 61000,
      "stats": {
        "adverts_sent": 1234,
        "adverts_received": 5,
        "transitions": 2,
        "became_master": 1,
        "priority_zero_sent": 0,
        "priority_zero_received": 0,
        "gratuitous_arps": 5,
        "rejected": {}
      }
    },
    {
      "name": "VI_2",
      "port": "p1",
      "vrid": 52,
      "version": 2,
      "state": "Backup",
      "priority": 100,
      "advert_int_cs": 100,
      "master_advert_int_cs": 100,
      "preempt": false,
      "master": "10.61.0.4",
      "master_priority": 200,
      "addresses": [
        "10.61.0.100"
      ],
      "unicast_peers": [
        "10.61.0.4"
      ],
      "since_ms": 817000,
      "stats": {
        "adverts_sent": 0,
        "adverts_received": 817,
        "transitions": 1,
        "became_master": 0,
        "priority_zero_sent": 0,
        "priority_zero_received": 0,
        "gratuitous_arps": 0,
        "rejected": {
          "bad_ttl": 3,
          "unknown_vrid": 1
        }
      }
    }
  ]
}
"#;
