//! `[services.health]`, per-real-server overrides, `quiescent` and
//! `sorry_server`: what a valid file builds.

use conf::{parse, Check, Health, HttpCheck, Method, SorryServer};
use std::time::Duration;

const P0: &str = r#"[[ports]]
name = "p0"
device = "net_tap0"
addresses = ["10.0.0.1/24"]
"#;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn service_check_with_overrides_quiescent_and_sorry_server() {
    let text = r#"
[[services]]
protocol = "tcp"
vip = "10.0.0.100"
port = 80
quiescent = true
sorry_server = { address = "10.0.0.99", method = "nat", port = 8080 }

[services.health]
checker = "http"
interval = 2
timeout = 0.5
delay = 1.25
retries = 2
successes = 3
path = "/health"
host = "www.example.com"
status = "200-204"
expect = "OK"
source = "10.0.0.1"
interface = "eth1"

[[services.real_servers]]
address = "10.0.0.11"

[[services.real_servers]]
address = "10.0.0.12"
health = { checker = "tcp", port = 8081, initial = "down" }

[[services.real_servers]]
address = "10.0.0.13"
health = { checker = "none" }

[[services.real_servers]]
address = "10.0.0.14"
[services.real_servers.health]
checker = "exec"
command = ["/usr/local/bin/check", "-v"]
timeout = 2
"#;
    let c = parse(&format!("{P0}{text}"), "t.toml").unwrap();
    let s = &c.services[0];
    assert!(s.quiescent);
    assert_eq!(
        s.sorry_server,
        Some(SorryServer {
            addr: "10.0.0.99".parse().unwrap(),
            port: 8080,
            method: Method::Nat
        })
    );
    let http = Health {
        check: Check::Http(HttpCheck {
            tls: false,
            path: "/health".into(),
            host: Some("www.example.com".into()),
            status: (200, 204),
            expect: Some("OK".into()),
        }),
        interval: ms(2000),
        timeout: ms(500),
        delay: ms(1250),
        retries: 2,
        successes: 3,
        initial_up: true,
        port: None,
        source: Some("10.0.0.1".parse().unwrap()),
        interface: Some("eth1".into()),
    };
    assert_eq!(s.real_servers[0].health, Some(http.clone()));
    assert_eq!(
        s.real_servers[1].health,
        Some(Health {
            check: Check::Tcp,
            port: Some(8081),
            initial_up: false,
            ..http.clone()
        })
    );
    assert_eq!(s.real_servers[2].health, None);
    assert_eq!(
        s.real_servers[3].health,
        Some(Health {
            check: Check::Exec {
                command: vec!["/usr/local/bin/check".into(), "-v".into()]
            },
            timeout: ms(2000),
            source: None,
            interface: None,
            ..http
        })
    );
}

#[test]
fn defaults_and_unchecked_services() {
    let text = r#"
[[services]]
protocol = "udp"
vip = "10.0.0.100"
port = 53
health = { checker = "udp" }
[[services.real_servers]]
address = "10.0.0.11"

[[services]]
protocol = "tcp"
vip = "10.0.0.100"
port = 22
[[services.real_servers]]
address = "10.0.0.11"
"#;
    let c = parse(&format!("{P0}{text}"), "t.toml").unwrap();
    assert_eq!(
        c.services[0].real_servers[0].health,
        Some(Health {
            check: Check::Udp {
                payload: String::new(),
                expect: None
            },
            interval: ms(5000),
            timeout: ms(3000),
            delay: ms(0),
            retries: 3,
            successes: 1,
            initial_up: true,
            port: None,
            source: None,
            interface: None,
        })
    );
    assert!(!c.services[0].quiescent);
    assert_eq!(c.services[0].sorry_server, None);
    assert_eq!(c.services[1].real_servers[0].health, None);
    // The default timeout never exceeds a short interval.
    let short = text.replace("checker = \"udp\"", "checker = \"tcp\", interval = 1");
    let c = parse(&format!("{P0}{short}"), "t.toml").unwrap();
    let h = c.services[0].real_servers[0].health.as_ref().unwrap();
    assert_eq!((h.interval, h.timeout), (ms(1000), ms(1000)));
    // https: http over TLS, with the http keys.
    let tls = text.replace(
        "checker = \"udp\"",
        "checker = \"https\", host = \"www.example.com\"",
    );
    let c = parse(&format!("{P0}{tls}"), "t.toml").unwrap();
    let h = c.services[0].real_servers[0].health.as_ref().unwrap();
    assert_eq!(
        h.check,
        Check::Http(HttpCheck {
            tls: true,
            path: "/".into(),
            host: Some("www.example.com".into()),
            status: (200, 299),
            expect: None
        })
    );
    assert_eq!(h.check.name(), "https");
}
