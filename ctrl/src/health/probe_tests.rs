//! Each checker's decision against a local server that misbehaves in one
//! way. Every assertion is on the verdict's exact text; the only timing
//! involved is that a silent peer outlasts a short timeout.

use super::*;
use conf::{Check, Health, HttpCheck};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn health(check: Check, timeout_ms: u64) -> Health {
    Health {
        check,
        interval: Duration::from_secs(10),
        timeout: Duration::from_millis(timeout_ms),
        delay: Duration::ZERO,
        retries: 1,
        successes: 1,
        initial_up: true,
        port: None,
        source: None,
        interface: None,
    }
}

fn target(port: u16, check: Check, timeout_ms: u64) -> Target {
    Target {
        addr: LOCAL,
        port,
        health: health(check, timeout_ms),
    }
}

/// Runs one check to its verdict, as the checker thread would.
fn run(t: &Target) -> Verdict {
    let deadline = Instant::now() + t.health.timeout;
    let mut p = Probe::start(t)?;
    loop {
        if let Some(v) = p.poll() {
            return v;
        }
        if Instant::now() >= deadline {
            let (why, children) = p.expire();
            for mut c in children {
                c.wait().unwrap();
            }
            return Err(why);
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind((LOCAL, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http(status: &str, expect: Option<&str>) -> Check {
    let (lo, hi) = status.split_once('-').unwrap_or((status, status));
    Check::Http(HttpCheck {
        tls: false,
        path: "/health".into(),
        host: None,
        status: (lo.parse().unwrap(), hi.parse().unwrap()),
        expect: expect.map(String::from),
    })
}

/// Serves one HTTP exchange: reads the request, waits `delay`, answers
/// `response` and closes. Returns the port and the request it read.
fn http_server(response: &'static str, delay: Duration) -> (u16, thread::JoinHandle<String>) {
    let l = TcpListener::bind((LOCAL, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    let h = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let req = read_request(&mut s);
        thread::sleep(delay);
        let _ = s.write_all(response.as_bytes());
        req
    });
    (port, h)
}

fn read_request(s: &mut TcpStream) -> String {
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        req.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(req).unwrap()
}

#[test]
fn tcp_accepted_refused_and_unanswered() {
    let l = TcpListener::bind((LOCAL, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    assert_eq!(run(&target(port, Check::Tcp, 2000)), Ok(()));
    assert_eq!(
        run(&target(closed_port(), Check::Tcp, 2000)),
        Err("connect: connection refused".into())
    );
    // A listener whose accept queue is full drops SYNs: the connect hangs.
    let full = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    full.bind(&SockAddr::from(SocketAddr::new(LOCAL, 0)))
        .unwrap();
    full.listen(0).unwrap();
    let port = full.local_addr().unwrap().as_socket().unwrap().port();
    let _queued = TcpStream::connect((LOCAL, port)).unwrap();
    assert_eq!(
        run(&target(port, Check::Tcp, 200)),
        Err("timeout after 0.2 s connecting".into())
    );
}

#[test]
fn http_good_answer_and_the_exact_request() {
    let (port, h) = http_server(
        "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nall is OK",
        Duration::ZERO,
    );
    assert_eq!(run(&target(port, http("200", Some("is OK")), 2000)), Ok(()));
    assert_eq!(
        h.join().unwrap(),
        format!("GET /health HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: ripvsd-health\r\nConnection: close\r\n\r\n")
    );
    // A Host header of the config's choosing.
    let (port, h) = http_server("HTTP/1.0 204 No Content\r\n\r\n", Duration::ZERO);
    let mut t = target(port, http("200-299", None), 2000);
    if let Check::Http(c) = &mut t.health.check {
        c.host = Some("www.example.com".into());
    }
    assert_eq!(run(&t), Ok(()));
    assert!(h.join().unwrap().contains("\r\nHost: www.example.com\r\n"));
}

#[test]
fn http_wrong_status_and_wrong_body() {
    let (port, _h) = http_server("HTTP/1.1 503 Service Unavailable\r\n\r\nOK", Duration::ZERO);
    assert_eq!(
        run(&target(port, http("200-299", Some("OK")), 2000)),
        Err("http: status 503 (expected 200-299)".into())
    );
    let (port, _h) = http_server("HTTP/1.1 200 OK\r\n\r\nmaintenance", Duration::ZERO);
    assert_eq!(
        run(&target(port, http("200", Some("OK")), 2000)),
        Err("http: body does not contain \"OK\"".into())
    );
    // The expected text in a header is not in the body.
    let (port, _h) = http_server("HTTP/1.1 200 OK\r\nX-State: OK\r\n\r\nno", Duration::ZERO);
    assert_eq!(
        run(&target(port, http("200", Some("OK")), 2000)),
        Err("http: body does not contain \"OK\"".into())
    );
    let (port, _h) = http_server("SSH-2.0-OpenSSH_9.2\r\n", Duration::ZERO);
    assert_eq!(
        run(&target(port, http("200", None), 2000)),
        Err("http: malformed status line \"SSH-2.0-OpenSSH_9.2\"".into())
    );
    let (port, _h) = http_server("", Duration::ZERO);
    assert_eq!(
        run(&target(port, http("200", None), 2000)),
        Err("http: connection closed without a response".into())
    );
}

#[test]
fn http_slow_answer_within_the_timeout_passes() {
    let (port, _h) = http_server("HTTP/1.1 200 OK\r\n\r\nOK", Duration::from_millis(300));
    assert_eq!(run(&target(port, http("200", Some("OK")), 5000)), Ok(()));
}

#[test]
fn http_silent_server_times_out_refused_and_reset() {
    // Listening but never accepting: the kernel completes the handshake
    // and takes the request, and no answer ever comes.
    let l = TcpListener::bind((LOCAL, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    assert_eq!(
        run(&target(port, http("200", None), 200)),
        Err("timeout after 0.2 s waiting for the response".into())
    );
    assert_eq!(
        run(&target(closed_port(), http("200", None), 2000)),
        Err("connect: connection refused".into())
    );
    // Half an answer, then nothing.
    let l = TcpListener::bind((LOCAL, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    let h = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        read_request(&mut s);
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-").unwrap();
        thread::sleep(Duration::from_secs(3));
    });
    assert_eq!(
        run(&target(port, http("200", Some("OK")), 300)),
        Err("timeout after 0.3 s reading the response".into())
    );
    drop(h);
    // Reset: accepted, then closed with SO_LINGER 0.
    let l = TcpListener::bind((LOCAL, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    let h = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        read_request(&mut s);
        let s = Socket::from(s);
        s.set_linger(Some(Duration::ZERO)).unwrap();
    });
    let v = run(&target(port, http("200", None), 2000));
    h.join().unwrap();
    assert_eq!(v, Err("read: connection reset by peer".into()));
}

#[test]
fn udp_reply_wrong_reply_refused_and_silence() {
    let echo = UdpSocket::bind((LOCAL, 0)).unwrap();
    let port = echo.local_addr().unwrap().port();
    let h = thread::spawn(move || {
        for reply in [&b"PONG ok"[..], b"PONG busy"] {
            let mut buf = [0u8; 64];
            let (n, from) = echo.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"PING");
            echo.send_to(reply, from).unwrap();
        }
    });
    let udp = |expect: Option<&str>| Check::Udp {
        payload: "PING".into(),
        expect: expect.map(String::from),
    };
    assert_eq!(run(&target(port, udp(Some("ok")), 2000)), Ok(()));
    assert_eq!(
        run(&target(port, udp(Some("ok")), 2000)),
        Err("udp: reply does not contain \"ok\"".into())
    );
    h.join().unwrap();
    let closed = {
        let s = UdpSocket::bind((LOCAL, 0)).unwrap();
        s.local_addr().unwrap().port()
    };
    assert_eq!(
        run(&target(closed, udp(None), 2000)),
        Err("udp: connection refused".into())
    );
    let silent = UdpSocket::bind((LOCAL, 0)).unwrap();
    let port = silent.local_addr().unwrap().port();
    assert_eq!(
        run(&target(port, udp(None), 200)),
        Err("timeout after 0.2 s waiting for a reply".into())
    );
}

fn exec(script: &str) -> Check {
    Check::Exec {
        command: vec!["/bin/sh".into(), "-c".into(), script.into(), "check".into()],
    }
}

#[test]
fn exec_gets_address_and_port_and_its_exit_status_decides() {
    let t = |script: &str, timeout_ms| Target {
        addr: "10.0.0.11".parse().unwrap(),
        port: 8080,
        health: health(exec(script), timeout_ms),
    };
    assert_eq!(run(&t("[ \"$1 $2\" = \"10.0.0.11 8080\" ]", 5000)), Ok(()));
    assert_eq!(
        run(&t("exit 3", 5000)),
        Err("exec: /bin/sh exited with status 3".into())
    );
    assert_eq!(
        run(&t("kill -TERM $$", 5000)),
        Err("exec: /bin/sh killed by signal 15".into())
    );
    assert_eq!(
        run(&t("exec sleep 30", 200)),
        Err("exec: /bin/sh still running after 0.2 s: killed".into())
    );
    // What the command started goes with it.
    let dir = std::env::temp_dir().join(format!("ripvs-exec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("pid");
    let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
    assert_eq!(
        run(&t(&script, 300)),
        Err("exec: /bin/sh still running after 0.3 s: killed".into())
    );
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let stat = format!("/proc/{}/stat", pid.trim());
    let dead = || {
        std::fs::read_to_string(&stat).map_or(true, |s| {
            s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    };
    let mut waited = 0;
    while !dead() && waited < 500 {
        thread::sleep(Duration::from_millis(10));
        waited += 1;
    }
    assert!(dead(), "the command's own child outlived it");
    std::fs::remove_dir_all(&dir).unwrap();
    let mut missing = t("", 1000);
    missing.health.check = Check::Exec {
        command: vec!["/nonexistent/check".into()],
    };
    assert_eq!(
        run(&missing),
        Err("exec: cannot run /nonexistent/check: no such file or directory".into())
    );
}

#[test]
fn source_address_and_interface() {
    let l = TcpListener::bind((LOCAL, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    let mut t = target(port, Check::Tcp, 2000);
    t.health.source = Some(LOCAL);
    t.health.interface = Some("lo".into());
    assert_eq!(run(&t), Ok(()));
    let (s, from) = l.accept().unwrap();
    drop(s);
    assert_eq!(from.ip(), LOCAL);
    t.health.interface = Some("nosuchif0".into());
    assert_eq!(run(&t), Err("interface nosuchif0: no such device".into()));
    t.health.interface = None;
    // TEST-NET-3: never one of this machine's addresses; nothing is sent.
    t.health.source = Some("203.0.113.7".parse().unwrap());
    assert_eq!(
        run(&t),
        Err("source 203.0.113.7: cannot assign requested address".into())
    );
    // A health port other than the real server's.
    let mut t = target(closed_port(), Check::Tcp, 2000);
    t.health.port = Some(port);
    assert_eq!(run(&t), Ok(()));
}

#[test]
fn io_errors_are_worded_for_log_lines() {
    let e = std::io::Error::from_raw_os_error(111);
    assert_eq!(reason(&e), "connection refused");
    assert_eq!(reason(&std::io::Error::other("Odd")), "odd");
}

/// Serves one HTTP exchange over TLS with a fresh self-signed certificate
/// for www.example.com; returns the port, and the request and SNI name
/// it got.
fn https_server(response: &'static str) -> (u16, thread::JoinHandle<(String, Option<String>)>) {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let ck = rcgen::generate_simple_self_signed(vec!["www.example.com".to_string()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .unwrap();
    let l = TcpListener::bind((LOCAL, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    let h = thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let conn = rustls::ServerConnection::new(Arc::new(cfg)).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, s);
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.ends_with(b"\r\n\r\n") {
            match tls.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => req.extend_from_slice(&buf[..n]),
            }
        }
        let sni = tls.conn.server_name().map(String::from);
        let _ = tls.write_all(response.as_bytes());
        tls.conn.send_close_notify();
        let _ = tls.flush();
        (String::from_utf8(req).unwrap(), sni)
    });
    (port, h)
}

fn https(status: &str, expect: Option<&str>, host: Option<&str>) -> Check {
    let Check::Http(mut h) = http(status, expect) else {
        unreachable!()
    };
    h.tls = true;
    h.host = host.map(String::from);
    Check::Http(h)
}

#[test]
fn https_without_certificate_checks_status_and_body() {
    let (port, h) = https_server("HTTP/1.1 200 OK\r\n\r\nall is OK");
    let t = target(
        port,
        https("200", Some("OK"), Some("www.example.com")),
        5000,
    );
    assert_eq!(run(&t), Ok(()));
    let (req, sni) = h.join().unwrap();
    assert_eq!(
        req,
        "GET /health HTTP/1.0\r\nHost: www.example.com\r\nUser-Agent: ripvsd-health\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(sni.as_deref(), Some("www.example.com"));
    // No Host: the address, and no SNI (the certificate's name does not
    // match either way: it is not checked).
    let (port, h) = https_server("HTTP/1.1 500 Oops\r\n\r\n");
    assert_eq!(
        run(&target(port, https("200", None, None), 5000)),
        Err("http: status 500 (expected 200)".into())
    );
    assert_eq!(h.join().unwrap().1, None);
}

#[test]
fn https_to_a_plain_server_or_a_silent_one() {
    // A plain HTTP server answers the ClientHello with an HTTP error.
    let l = TcpListener::bind((LOCAL, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    let _h = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    });
    let v = run(&target(port, https("200", None, None), 5000));
    assert!(v.as_ref().is_err_and(|e| e.starts_with("tls: ")), "{v:?}");
    let l = TcpListener::bind((LOCAL, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    assert_eq!(
        run(&target(port, https("200", None, None), 200)),
        Err("timeout after 0.2 s in the TLS handshake".into())
    );
}
