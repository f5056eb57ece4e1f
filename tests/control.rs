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
