use super::*;
use crate::model::MAX_TIMEOUT;
use ctrl_api::{DestSpec, Method, Netmask, Proto, Rates, Stats, SvcSpec};
use std::net::{IpAddr, Ipv4Addr};

#[derive(Default)]
struct Fake {
    cores: Vec<Arc<CoreCounters>>,
    published: Vec<(ServiceTable, Timeouts)>,
    sync: Vec<(Option<fastpath::sync::SyncParams>, bool)>,
    defence: fastpath::defence::DefenceSettings,
}

impl Fake {
    fn new() -> Self {
        Fake {
            cores: vec![
                Arc::new(CoreCounters::default()),
                Arc::new(CoreCounters::default()),
            ],
            published: Vec::new(),
            sync: Vec::new(),
            defence: Default::default(),
        }
    }
}

impl Dataplane for Fake {
    fn publish(&mut self, table: ServiceTable, timeouts: Timeouts) {
        self.published.push((table, timeouts));
    }
    fn cores(&self) -> Vec<Arc<CoreCounters>> {
        self.cores.clone()
    }
    fn connections(&mut self, cursor: Option<Cursor>, max: u32) -> ConnPage {
        assert_eq!((cursor, max), (None, 10));
        ConnPage {
            conns: vec![],
            next: None,
        }
    }
    fn conn_tab_size(&self) -> u32 {
        4096
    }
    fn set_sync(&mut self, sync: Option<fastpath::sync::SyncParams>, standby: bool) {
        self.sync.push((sync, standby));
    }
    fn set_defence(&mut self, d: fastpath::defence::DefenceSettings) {
        self.defence = d;
    }
    fn defence(
        &self,
    ) -> (
        fastpath::defence::DefenceSettings,
        Vec<fastpath::defence::View>,
    ) {
        (self.defence, vec![Default::default(); self.cores.len()])
    }
}

const BASE: &str = r#"
[[ports]]
name = "p0"
device = "net_ring0"
addresses = ["10.0.0.1/24"]

[[fwmarks]]
mark = 5
[[fwmarks.match]]
destination = "10.0.0.64/26"
"#;

fn cfg(extra: &str) -> conf::Config {
    conf::parse(&format!("{BASE}{extra}"), "t.toml").unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp(vip: &str, port: u16) -> SvcKey {
    SvcKey::Addr {
        proto: Proto::Tcp,
        addr: ip(vip),
        port,
    }
}

fn svc(key: SvcKey, sched: &str) -> SvcSpec {
    SvcSpec {
        key,
        scheduler: sched.into(),
        persistent: None,
        netmask: Netmask::V4(Ipv4Addr::BROADCAST),
        ops: false,
        pe: None,
        sched_flags: 0,
    }
}

fn dest(addr: &str, port: u16, method: Method, weight: i32) -> DestSpec {
    DestSpec {
        addr: ip(addr),
        port,
        method,
        weight,
        u_threshold: 0,
        l_threshold: 0,
        tun: None,
    }
}

fn control(extra: &str) -> Control<Fake> {
    let model = Model::from_config(&cfg(extra)).unwrap();
    Control::new(Fake::new(), model, "/nonexistent/ripvs.toml")
}

fn apply(c: &mut Control<Fake>, cmds: Vec<Command>) -> Vec<Result<(), Errno>> {
    match c.handle(Request::Apply(cmds)) {
        Response::Applied(r) => r.into_iter().map(|r| r.map_err(|e| e.errno)).collect(),
        other => panic!("unexpected {other:?}"),
    }
}

fn one(c: &mut Control<Fake>, cmd: Command) -> Result<(), Errno> {
    apply(c, vec![cmd]).remove(0)
}

fn listing(c: &mut Control<Fake>, key: Option<SvcKey>) -> Vec<ServiceInfo> {
    match c.handle(Request::Services(key)) {
        Response::Services(s) => s,
        other => panic!("unexpected {other:?}"),
    }
}

/// Everything the data plane would see, ids included, for "nothing
/// changed" checks.
fn table_view(c: &Control<Fake>) -> String {
    format!("{:?}", c.model().to_table().unwrap().services())
}

#[test]
fn service_commands_and_their_errnos() {
    let mut c = control("");
    let k = tcp("10.0.0.100", 80);
    assert_eq!(one(&mut c, Command::AddService(svc(k, "wlc"))), Ok(()));
    let before = table_view(&c);
    let cases: Vec<(Command, Errno)> = vec![
        (Command::AddService(svc(k, "rr")), Errno::Eexist),
        (
            Command::AddService(svc(tcp("10.0.0.101", 80), "none")),
            Errno::Enoent,
        ),
        (
            Command::AddService(svc(tcp("10.0.0.101", 80), "bogus")),
            Errno::Enoent,
        ),
        (
            Command::AddService(svc(tcp("10.0.0.101", 80), "sixteen-chars-xx")),
            Errno::Einval,
        ),
        (
            Command::AddService(SvcSpec {
                pe: Some("sip".into()),
                ..svc(tcp("10.0.0.101", 80), "rr")
            }),
            Errno::Enoent,
        ),
        (
            Command::AddService(svc(tcp("2001:db8::1", 80), "rr")),
            Errno::Eafnosupport,
        ),
        (
            Command::AddService(svc(SvcKey::Fwmark { mark: 5, v6: true }, "rr")),
            Errno::Eafnosupport,
        ),
        (
            Command::AddService(svc(tcp("10.0.0.101", 0), "rr")),
            Errno::Einval,
        ),
        (
            Command::AddService(SvcSpec {
                ops: true,
                ..svc(tcp("10.0.0.101", 80), "rr")
            }),
            Errno::Einval,
        ),
        (
            Command::EditService(svc(tcp("10.0.0.101", 80), "rr")),
            Errno::Esrch,
        ),
        (Command::EditService(svc(k, "none")), Errno::Enoent),
        (Command::DelService(tcp("10.0.0.101", 80)), Errno::Esrch),
        (Command::Zero(Some(tcp("10.0.0.101", 80))), Errno::Esrch),
        (
            Command::SetTimeouts {
                tcp: MAX_TIMEOUT + 1,
                tcpfin: 0,
                udp: 0,
            },
            Errno::Einval,
        ),
    ];
    let n = c.dataplane().published.len();
    for (cmd, errno) in cases {
        assert_eq!(one(&mut c, cmd.clone()), Err(errno), "{cmd:?}");
    }
    assert_eq!(table_view(&c), before, "failed commands change nothing");
    assert_eq!(c.dataplane().published.len(), n, "nor publish anything");

    // A fwmark needs a [[fwmarks]] rule, since ripvs has no iptables.
    let r = c.handle(Request::Apply(vec![Command::AddService(svc(
        SvcKey::Fwmark { mark: 7, v6: false },
        "rr",
    ))]));
    let Response::Applied(r) = r else { panic!() };
    let e = r[0].clone().unwrap_err();
    assert_eq!(e.errno, Errno::Other);
    assert_eq!(
        e.detail,
        "fwmark 7 has no match rule in the config; ripvs has no iptables, marks are defined in [[fwmarks]]"
    );
    let f5 = SvcKey::Fwmark { mark: 5, v6: false };
    assert_eq!(
        one(
            &mut c,
            Command::AddService(SvcSpec {
                persistent: Some(360),
                ops: true,
                ..svc(f5, "sh")
            })
        ),
        Ok(())
    );
    // A persistent port-0 service is the wildcard service.
    let wild = tcp("10.0.0.100", 0);
    let spec = SvcSpec {
        persistent: Some(60),
        ..svc(wild, "rr")
    };
    assert_eq!(one(&mut c, Command::AddService(spec)), Ok(()));

    // An edit replaces the whole definition.
    let edited = SvcSpec {
        persistent: Some(300),
        netmask: Netmask::V4(Ipv4Addr::new(255, 255, 255, 0)),
        sched_flags: ctrl_api::sched_flags::FLAG_2,
        ..svc(k, "sh")
    };
    assert_eq!(one(&mut c, Command::EditService(edited.clone())), Ok(()));
    assert_eq!(c.model().service(&k).unwrap().spec, edited);
    let t = &c.dataplane().published.last().unwrap().0;
    let s = t.services().iter().find(|s| s.port == 80).unwrap();
    assert_eq!(s.scheduler, fastpath::sched::Kind::Sh);
    assert!(s.flags.sh_port && !s.flags.sh_fallback);
    assert_eq!(s.netmask, Ipv4Addr::new(255, 255, 255, 0));

    assert_eq!(
        one(
            &mut c,
            Command::SetTimeouts {
                tcp: 100,
                tcpfin: 0,
                udp: 7
            }
        ),
        Ok(())
    );
    assert_eq!(
        c.handle(Request::Timeouts),
        Response::Timeouts(ctrl_api::Timeouts {
            tcp: 100,
            tcpfin: 120,
            udp: 7
        })
    );
    assert_eq!(
        c.dataplane().published.last().unwrap().1.listed(),
        (100, 120, 7)
    );

    assert_eq!(one(&mut c, Command::DelService(k)), Ok(()));
    assert!(c.model().service(&k).is_none());
    assert_eq!(one(&mut c, Command::Clear), Ok(()));
    assert_eq!(c.model().services().count(), 0);
    assert_eq!(
        one(&mut c, Command::Clear),
        Ok(()),
        "clearing nothing is fine"
    );
}

#[test]
fn real_server_commands_and_their_errnos() {
    let mut c = control("");
    let k = tcp("10.0.0.100", 80);
    let f5 = SvcKey::Fwmark { mark: 5, v6: false };
    apply(
        &mut c,
        vec![
            Command::AddService(svc(k, "wlc")),
            Command::AddService(svc(f5, "wlc")),
        ],
    );
    assert_eq!(
        one(
            &mut c,
            Command::AddDest(k, dest("10.0.1.1", 80, Method::Dr, 1))
        ),
        Ok(())
    );
    let before = table_view(&c);
    let mut bad_thresholds = dest("10.0.1.2", 80, Method::Nat, 1);
    bad_thresholds.l_threshold = 5;
    let cases: Vec<(Command, Errno)> = vec![
        (
            Command::AddDest(tcp("10.0.0.9", 80), dest("10.0.1.2", 80, Method::Dr, 1)),
            Errno::Esrch,
        ),
        (
            Command::AddDest(k, dest("10.0.1.1", 80, Method::Dr, 3)),
            Errno::Eexist,
        ),
        // DR cannot change ports: 8080 becomes 80, which exists.
        (
            Command::AddDest(k, dest("10.0.1.1", 8080, Method::Dr, 3)),
            Errno::Eexist,
        ),
        (
            Command::AddDest(k, dest("10.0.1.2", 80, Method::Nat, -1)),
            Errno::Erange,
        ),
        (Command::AddDest(k, bad_thresholds.clone()), Errno::Erange),
        (Command::EditDest(k, bad_thresholds), Errno::Erange),
        (
            Command::AddDest(k, dest("224.0.0.5", 80, Method::Nat, 1)),
            Errno::Einval,
        ),
        (
            Command::AddDest(k, dest("0.0.0.0", 80, Method::Nat, 1)),
            Errno::Einval,
        ),
        (
            Command::AddDest(k, dest("255.255.255.255", 80, Method::Nat, 1)),
            Errno::Einval,
        ),
        (
            Command::AddDest(k, dest("2001:db8::5", 80, Method::Tun, 1)),
            Errno::Eafnosupport,
        ),
        (
            Command::EditDest(k, dest("10.0.1.9", 80, Method::Dr, 1)),
            Errno::Enoent,
        ),
        (
            Command::EditDest(tcp("10.0.0.9", 80), dest("10.0.1.1", 80, Method::Dr, 1)),
            Errno::Esrch,
        ),
        (
            Command::DelDest {
                svc: k,
                addr: ip("10.0.1.9"),
                port: 80,
            },
            Errno::Enoent,
        ),
        (
            Command::DelDest {
                svc: tcp("10.0.0.9", 80),
                addr: ip("10.0.1.1"),
                port: 80,
            },
            Errno::Esrch,
        ),
    ];
    for (cmd, errno) in cases {
        assert_eq!(one(&mut c, cmd.clone()), Err(errno), "{cmd:?}");
    }
    assert_eq!(table_view(&c), before, "failed commands change nothing");

    // NAT keeps its port; on a fwmark service DR keeps it too.
    assert_eq!(
        one(
            &mut c,
            Command::AddDest(k, dest("10.0.1.2", 8080, Method::Nat, 2))
        ),
        Ok(())
    );
    assert_eq!(
        one(
            &mut c,
            Command::AddDest(f5, dest("10.0.1.3", 0, Method::Dr, 1))
        ),
        Ok(())
    );
    assert!(c
        .model()
        .service(&f5)
        .unwrap()
        .dest(ip("10.0.1.3"), 0)
        .is_some());
    assert_eq!(
        one(
            &mut c,
            Command::AddDest(k, dest("10.0.1.4", 9999, Method::Tun, 1))
        ),
        Ok(())
    );
    assert!(c
        .model()
        .service(&k)
        .unwrap()
        .dest(ip("10.0.1.4"), 80)
        .is_some());

    // Edit: weight and method change, id stays; last_weight follows the
    // kernel rule (only non-zero weights).
    let id = c
        .model()
        .service(&k)
        .unwrap()
        .dest(ip("10.0.1.2"), 8080)
        .unwrap()
        .id;
    assert_eq!(
        one(
            &mut c,
            Command::EditDest(k, dest("10.0.1.2", 8080, Method::Nat, 0))
        ),
        Ok(())
    );
    let d = c
        .model()
        .service(&k)
        .unwrap()
        .dest(ip("10.0.1.2"), 8080)
        .unwrap();
    assert_eq!((d.id, d.spec.weight, d.last_weight), (id, 0, 2));
    one(
        &mut c,
        Command::EditDest(k, dest("10.0.1.2", 8080, Method::Nat, 7)),
    )
    .unwrap();
    let t = &c.dataplane().published.last().unwrap().0;
    let td = t.services()[0].dests.iter().find(|d| d.id == id).unwrap();
    assert_eq!((td.weight, td.last_weight), (7, 7));

    assert_eq!(
        one(
            &mut c,
            Command::DelDest {
                svc: k,
                addr: ip("10.0.1.2"),
                port: 8080
            }
        ),
        Ok(())
    );
    assert!(c
        .model()
        .service(&k)
        .unwrap()
        .dest(ip("10.0.1.2"), 8080)
        .is_none());
}

#[test]
fn a_batch_applies_each_command_alone_and_publishes_once() {
    let mut c = control("");
    let k = tcp("10.0.0.100", 80);
    let r = apply(
        &mut c,
        vec![
            Command::AddService(svc(k, "rr")),
            Command::AddDest(k, dest("10.0.1.1", 80, Method::Dr, 1)),
            Command::AddDest(k, dest("10.0.1.1", 80, Method::Dr, 1)),
            Command::AddDest(k, dest("10.0.1.2", 80, Method::Dr, -4)),
            Command::AddDest(k, dest("10.0.1.3", 80, Method::Dr, 1)),
        ],
    );
    assert_eq!(
        r,
        vec![
            Ok(()),
            Ok(()),
            Err(Errno::Eexist),
            Err(Errno::Erange),
            Ok(())
        ]
    );
    assert_eq!(c.dataplane().published.len(), 1);
    let t = &c.dataplane().published[0].0;
    let addrs: Vec<_> = t.services()[0]
        .dests
        .iter()
        .map(|d| d.addr.to_string())
        .collect();
    assert_eq!(
        addrs,
        ["10.0.1.3", "10.0.1.1"],
        "newest first, failed ones absent"
    );

    // Nothing succeeds (or only a zero): nothing is published.
    apply(
        &mut c,
        vec![Command::DelService(tcp("1.1.1.1", 1)), Command::Zero(None)],
    );
    assert_eq!(c.dataplane().published.len(), 1);
}

#[test]
fn ids_stay_put_across_unrelated_changes() {
    let mut c = control(
        r#"
[[services]]
protocol = "tcp"
vip = "10.0.0.100"
port = 80
[[services.real_servers]]
address = "10.0.1.1"
[[services.real_servers]]
address = "10.0.1.2"

[[services]]
protocol = "udp"
vip = "10.0.0.100"
port = 53
[[services.real_servers]]
address = "10.0.1.3"
"#,
    );
    let ids = |c: &Control<Fake>| -> Vec<(u32, Vec<u32>)> {
        c.model()
            .services()
            .map(|s| (s.id, s.dests().map(|d| d.id).collect()))
            .collect()
    };
    assert_eq!(ids(&c), vec![(0, vec![1, 0]), (1, vec![2])], "config order");
    let k = tcp("10.0.0.100", 80);
    apply(
        &mut c,
        vec![
            Command::DelDest {
                svc: k,
                addr: ip("10.0.1.1"),
                port: 80,
            },
            Command::AddService(svc(tcp("10.0.0.100", 443), "rr")),
            Command::AddDest(k, dest("10.0.1.9", 80, Method::Dr, 1)),
            Command::EditService(svc(k, "lc")),
        ],
    );
    assert_eq!(
        ids(&c),
        vec![(0, vec![3, 1]), (1, vec![2]), (2, vec![])],
        "untouched keep theirs; a deleted id is not handed out at once"
    );
    let t = &c.dataplane().published[0].0;
    assert_eq!(
        t.services().iter().map(|s| s.id).collect::<Vec<_>>(),
        [0, 1, 2]
    );
}

#[test]
fn trashed_ids_wait_for_their_connections() {
    let mut c = control("");
    let k = tcp("10.0.0.100", 80);
    apply(
        &mut c,
        vec![
            Command::AddService(svc(k, "rr")),
            Command::AddDest(k, dest("10.0.1.1", 80, Method::Dr, 1)),
        ],
    );
    let old = c
        .model()
        .service(&k)
        .unwrap()
        .dest(ip("10.0.1.1"), 80)
        .unwrap()
        .id;
    let cores = c.dataplane().cores.clone();
    // A connection and a template still count against it on core 1.
    cores[1].dests[old as usize].inactive.add(1);
    cores[0].dests[old as usize].persist.add(1);
    cores[1].dests[old as usize].conns.add(9);
    let del = Command::DelDest {
        svc: k,
        addr: ip("10.0.1.1"),
        port: 80,
    };
    one(&mut c, del.clone()).unwrap();
    let t0 = Instant::now();
    for s in 0..3 {
        c.tick(t0 + std::time::Duration::from_secs(s));
    }
    one(
        &mut c,
        Command::AddDest(k, dest("10.0.1.2", 80, Method::Dr, 1)),
    )
    .unwrap();
    let new = c
        .model()
        .service(&k)
        .unwrap()
        .dest(ip("10.0.1.2"), 80)
        .unwrap()
        .id;
    assert_ne!(new, old, "busy id is not reused");
    assert_eq!(c.model().trash_len(), (0, 1));

    // Re-adding the same server takes it back with its id, as the kernel
    // takes a destination back from its trash.
    one(
        &mut c,
        Command::AddDest(k, dest("10.0.1.1", 80, Method::Nat, 1)),
    )
    .unwrap();
    assert_eq!(
        c.model()
            .service(&k)
            .unwrap()
            .dest(ip("10.0.1.1"), 80)
            .unwrap()
            .id,
        old
    );
    assert_eq!(c.model().trash_len(), (0, 0));
    one(&mut c, del).unwrap();

    // The last one goes: the id is freed after one more collection, then
    // reused, and its new owner's counters start at 0.
    cores[1].dests[old as usize].inactive.add(-1);
    c.tick(t0 + std::time::Duration::from_secs(4));
    assert_eq!(c.model().trash_len(), (0, 1), "persist still counts");
    cores[0].dests[old as usize].persist.add(-1);
    c.tick(t0 + std::time::Duration::from_secs(5));
    assert_eq!(c.model().trash_len(), (0, 0));
    one(
        &mut c,
        Command::AddDest(k, dest("10.0.1.3", 80, Method::Dr, 1)),
    )
    .unwrap();
    assert_eq!(
        c.model()
            .service(&k)
            .unwrap()
            .dest(ip("10.0.1.3"), 80)
            .unwrap()
            .id,
        old
    );
    let l = listing(&mut c, Some(k));
    let d3 = l[0]
        .dests
        .iter()
        .find(|d| d.spec.addr == ip("10.0.1.3"))
        .unwrap();
    assert_eq!(d3.stats, Stats::default());

    // A deleted service's id waits for its real servers' connections.
    let sid = c.model().service(&k).unwrap().id;
    cores[0].dests[new as usize].active.add(1);
    one(&mut c, Command::DelService(k)).unwrap();
    c.tick(t0 + std::time::Duration::from_secs(6));
    c.tick(t0 + std::time::Duration::from_secs(7));
    assert_eq!(c.model().trash_len().0, 1);
    let k2 = tcp("10.0.0.100", 81);
    one(&mut c, Command::AddService(svc(k2, "rr"))).unwrap();
    assert_ne!(c.model().service(&k2).unwrap().id, sid);
    cores[0].dests[new as usize].active.add(-1);
    c.tick(t0 + std::time::Duration::from_secs(8));
    assert_eq!(c.model().trash_len(), (0, 0));
    let k3 = tcp("10.0.0.100", 82);
    one(&mut c, Command::AddService(svc(k3, "rr"))).unwrap();
    assert_eq!(c.model().service(&k3).unwrap().id, sid);
}

#[test]
fn out_of_ids_is_enomem() {
    let mut c = control("");
    let cmds = (0..=fastpath::service::counters::MAX_SERVICES as u32)
        .map(|i| {
            Command::AddService(svc(
                tcp(&Ipv4Addr::from(0x0a00_0000 + i).to_string(), 80),
                "rr",
            ))
        })
        .collect();
    let r = apply(&mut c, cmds);
    assert!(r[..r.len() - 1].iter().all(|r| r.is_ok()));
    assert_eq!(r.last(), Some(&Err(Errno::Enomem)));
}

#[test]
fn ten_thousand_services_with_a_hundred_thousand_servers_load() {
    let mut text = String::new();
    for s in 0..10_000u32 {
        let vip = Ipv4Addr::from(0x0a00_0000 + s);
        text.push_str(&format!(
            "[[services]]\nprotocol = \"tcp\"\nvip = \"{vip}\"\nport = 80\n"
        ));
        for r in 0..10u32 {
            let rs = Ipv4Addr::from(0x0b00_0000 + s * 10 + r);
            text.push_str(&format!("[[services.real_servers]]\naddress = \"{rs}\"\n"));
        }
    }
    let cfg = cfg(&text);
    let m = Model::from_config(&cfg).unwrap();
    let t = m.to_table().unwrap();
    assert_eq!(t.services().len(), 10_000);
    assert_eq!(t.services()[9_999].dests[0].id, 99_999);
}

#[test]
fn listing_shows_newest_first_and_counts_since_zero() {
    let mut c = control(
        r#"
[[services]]
protocol = "tcp"
vip = "10.0.0.100"
port = 80
[[services.real_servers]]
address = "10.0.1.1"
[[services.real_servers]]
address = "10.0.1.2"
weight = 3
"#,
    );
    let k = tcp("10.0.0.100", 80);
    let cores = c.dataplane().cores.clone();
    cores[0].services[0].conns.add(5);
    cores[1].services[0].in_bytes.add(1500);
    cores[0].dests[1].conns.add(2);
    cores[1].dests[1].conns.add(3);
    cores[1].dests[1].active.add(2);
    cores[0].dests[1].inactive.add(1);
    cores[0].dests[0].persist.add(4);

    let l = listing(&mut c, None);
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].spec.scheduler, "wlc");
    assert_eq!(l[0].stats.conns, 5);
    assert_eq!(l[0].stats.inbytes, 1500);
    let rs: Vec<_> = l[0]
        .dests
        .iter()
        .map(|d| {
            (
                d.spec.addr,
                d.spec.weight,
                d.active,
                d.inactive,
                d.persist,
                d.stats.conns,
            )
        })
        .collect();
    assert_eq!(
        rs,
        vec![
            (ip("10.0.1.2"), 3, 2, 1, 0, 5),
            (ip("10.0.1.1"), 1, 0, 0, 4, 0)
        ]
    );
    assert_eq!(listing(&mut c, Some(k)), l);
    assert_eq!(
        c.handle(Request::Services(Some(tcp("10.0.0.100", 81)))),
        Response::Error(ApiError::new(Errno::Esrch, "no service tcp 10.0.0.100:81"))
    );

    // Rates: the first 2 s period ends.
    let t0 = Instant::now();
    c.tick(t0);
    cores[0].services[0].conns.add(20);
    c.tick(t0 + stats::INTERVAL);
    // 25 conns since tracking began: (25 << 9) / 4 = 3200 → 3.
    assert_eq!(listing(&mut c, Some(k))[0].rates.cps, 3);

    assert_eq!(one(&mut c, Command::Zero(Some(k))), Ok(()));
    let l = listing(&mut c, Some(k));
    assert_eq!(
        (l[0].stats, l[0].rates),
        (Stats::default(), Rates::default())
    );
    assert!(l[0].dests.iter().all(|d| d.stats == Stats::default()));
    assert_eq!(l[0].dests[0].active, 2, "gauges are not zeroed");
    cores[1].dests[0].conns.add(1);
    let l = listing(&mut c, None);
    assert_eq!(l[0].dests[1].stats.conns, 1);
    one(&mut c, Command::Zero(None)).unwrap();
    assert_eq!(listing(&mut c, None)[0].dests[1].stats.conns, 0);
}

#[test]
fn info_and_connections_come_from_the_dataplane() {
    let mut c = control("");
    let Response::Info(i) = c.handle(Request::Info) else {
        panic!()
    };
    assert_eq!((i.version.as_str(), i.conn_tab_size), ("1.2.1", 4096));
    assert_eq!(
        c.handle(Request::Connections {
            cursor: None,
            max: 10
        }),
        Response::Connections(ConnPage {
            conns: vec![],
            next: None
        })
    );
}

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ripvs-ctrl-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("ripvs.toml")
}

#[test]
fn reload_applies_the_difference_and_keeps_untouched_ids() {
    let path = temp_path("reload");
    let v1 = r#"
[[services]]
protocol = "tcp"
vip = "10.0.0.100"
port = 80
[[services.real_servers]]
address = "10.0.1.1"
[[services.real_servers]]
address = "10.0.1.2"

[[services]]
protocol = "udp"
vip = "10.0.0.100"
port = 53
[[services.real_servers]]
address = "10.0.1.3"

[[services]]
protocol = "tcp"
vip = "10.0.0.100"
port = 443
[[services.real_servers]]
address = "10.0.1.4"
"#;
    std::fs::write(&path, format!("{BASE}{v1}")).unwrap();
    let model = Model::from_config(&conf::load(&path).unwrap()).unwrap();
    let mut c = Control::new(Fake::new(), model, &path);
    let web = tcp("10.0.0.100", 80);
    let dns = SvcKey::Addr {
        proto: Proto::Udp,
        addr: ip("10.0.0.100"),
        port: 53,
    };
    // A live change the reload will undo.
    one(
        &mut c,
        Command::AddService(svc(tcp("10.0.0.100", 8080), "rr")),
    )
    .unwrap();

    let v2 = r#"
[[services]]
protocol = "tcp"
vip = "10.0.0.100"
port = 80
[[services.real_servers]]
address = "10.0.1.1"
[[services.real_servers]]
address = "10.0.1.2"

[[services]]
protocol = "udp"
vip = "10.0.0.100"
port = 53
scheduler = "rr"
[[services.real_servers]]
address = "10.0.1.3"
weight = 5
[[services.real_servers]]
address = "10.0.1.5"

[[services]]
fwmark = 5
[[services.real_servers]]
address = "10.0.1.6"

[ipvs]
timeout_udp = 30
"#;
    std::fs::write(&path, format!("{BASE}{v2}")).unwrap();
    let cmds = c
        .model()
        .clone()
        .reload(&conf::load(&path).unwrap())
        .unwrap();
    assert_eq!(
        cmds.iter()
            .map(|c| format!("{c:?}")
                .split('(')
                .next()
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .to_string())
            .collect::<Vec<_>>(),
        [
            "DelService",
            "DelService",
            "EditService",
            "EditDest",
            "AddDest",
            "AddService",
            "AddDest",
            "SetTimeouts"
        ]
    );
    let before: Vec<_> = c
        .model()
        .service(&web)
        .unwrap()
        .dests()
        .map(|d| d.id)
        .collect();
    let n = c.dataplane().published.len();
    assert_eq!(c.handle(Request::Reload), Response::Reloaded);
    assert_eq!(c.dataplane().published.len(), n + 1);
    let m = c.model();
    let w = m.service(&web).unwrap();
    assert_eq!(w.id, 0, "untouched service keeps its id");
    assert_eq!(w.dests().map(|d| d.id).collect::<Vec<_>>(), before);
    let d = m.service(&dns).unwrap();
    assert_eq!((d.id, d.spec.scheduler.as_str()), (1, "rr"));
    let rs: Vec<_> = d
        .dests()
        .map(|x| (x.spec.addr, x.id, x.spec.weight))
        .collect();
    assert_eq!(rs[1], (ip("10.0.1.3"), 2, 5), "edited in place, same id");
    assert_eq!(rs[0].0, ip("10.0.1.5"));
    assert_eq!(m.services().count(), 3);
    assert_eq!(m.timeouts().listed().2, 30);

    // A broken config changes nothing and says where it is broken.
    std::fs::write(&path, format!("{BASE}[[services]]\nprotocol = \"tcp\"\n")).unwrap();
    let before = table_view(&c);
    let Response::Error(e) = c.handle(Request::Reload) else {
        panic!()
    };
    assert_eq!(e.errno, Errno::Other);
    assert!(
        e.detail.starts_with(&path.display().to_string()),
        "{}",
        e.detail
    );
    assert!(!e.detail.contains('\n'));
    assert_eq!(table_view(&c), before);

    // Reloading the same file again is a no-op for ids.
    std::fs::write(&path, format!("{BASE}{v2}")).unwrap();
    assert_eq!(c.handle(Request::Reload), Response::Reloaded);
    assert_eq!(table_view(&c), {
        let mut again = c.model().clone();
        assert!(again
            .reload(&conf::load(&path).unwrap())
            .unwrap()
            .is_empty());
        format!("{:?}", again.to_table().unwrap().services())
    });
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

// ------------------------------------------------------- health checks

mod health {
    use super::*;
    use crate::health::checker::{Checker, Outcome};
    use crate::health::Health;
    use std::time::{Duration, SystemTime};

    /// Two checked real servers (weights 3 and 5) and a sorry server;
    /// two failures take a server down, two passes bring it back.
    fn web(quiescent: bool, initial: &str) -> String {
        format!(
            r#"
[[services]]
protocol = "tcp"
vip = "10.0.0.100"
port = 80
quiescent = {quiescent}
sorry_server = {{ address = "10.0.0.99", method = "nat" }}
[services.health]
checker = "tcp"
retries = 2
successes = 2
initial = "{initial}"
[[services.real_servers]]
address = "10.0.1.1"
weight = 3
[[services.real_servers]]
address = "10.0.1.2"
weight = 5
"#
        )
    }

    fn checked(text: &str) -> Control<Fake> {
        let cfg = cfg(text);
        let h = Health::new(&cfg, at(0));
        let model = Model::from_config(&h.desired(&cfg)).unwrap();
        Control::new(Fake::new(), model, "/nonexistent/ripvs.toml").with_health(h, None)
    }

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
    }

    /// Id of the `n`th checked server (config order).
    fn id(c: &Control<Fake>, n: usize) -> u64 {
        c.health().targets()[n].0
    }

    fn verdicts(c: &mut Control<Fake>, n: usize, v: &[Result<(), &str>]) -> Vec<String> {
        let id = id(c, n);
        let out: Vec<Outcome> = v
            .iter()
            .enumerate()
            .map(|(i, r)| Outcome {
                id,
                verdict: r.map_err(String::from),
                at: at(10 + i as u64),
            })
            .collect();
        c.take_outcomes(out)
    }

    /// (address, weight) of the published table's real servers.
    fn table(c: &Control<Fake>) -> Vec<(String, u32)> {
        let t = &c.dataplane().published.last().unwrap().0;
        t.get(0)
            .dests
            .iter()
            .map(|d| (d.addr.to_string(), d.weight))
            .collect()
    }

    fn model_dests(c: &Control<Fake>) -> Vec<(String, i32)> {
        c.model()
            .service(&tcp("10.0.0.100", 80))
            .unwrap()
            .dests()
            .map(|d| (d.spec.addr.to_string(), d.spec.weight))
            .collect()
    }

    const REFUSED: Result<(), &str> = Err("connect: connection refused");

    #[test]
    fn quiescent_failures_zero_the_weight_then_the_sorry_server_steps_in() {
        let mut c = checked(&web(true, "up"));
        assert_eq!(
            model_dests(&c),
            [("10.0.1.2".into(), 5), ("10.0.1.1".into(), 3)]
        );
        // One failure is not enough.
        assert_eq!(verdicts(&mut c, 0, &[REFUSED]), Vec::<String>::new());
        assert!(c.dataplane().published.is_empty());
        assert_eq!(
            verdicts(&mut c, 0, &[REFUSED]),
            ["health: TCP 10.0.0.100:80 -> 10.0.1.1:80 down (connect: connection refused) after 2 failures: weight 0"]
        );
        assert_eq!(table(&c), [("10.0.1.2".into(), 5), ("10.0.1.1".into(), 0)]);
        // A pass in between starts the count again.
        assert!(verdicts(&mut c, 1, &[REFUSED, Ok(()), REFUSED]).is_empty());
        assert_eq!(
            verdicts(&mut c, 1, &[Err("timeout after 3 s connecting")]),
            [
                "health: TCP 10.0.0.100:80 -> 10.0.1.2:80 down (timeout after 3 s connecting) after 2 failures: weight 0",
                "health: TCP 10.0.0.100:80 sorry server 10.0.0.99:80 in: no real server available",
            ]
        );
        assert_eq!(
            table(&c),
            [
                ("10.0.0.99".into(), 1),
                ("10.0.1.2".into(), 0),
                ("10.0.1.1".into(), 0)
            ]
        );
        // The operator's new weight for a down server waits for its recovery.
        one(
            &mut c,
            Command::EditDest(tcp("10.0.0.100", 80), dest("10.0.1.2", 80, Method::Dr, 7)),
        )
        .unwrap();
        assert_eq!(table(&c)[1], ("10.0.1.2".into(), 0));
        assert_eq!(
            c.health_pass(),
            ["health: TCP 10.0.0.100:80 -> 10.0.1.2:80 is down: weight 7 kept for its recovery"]
        );
        assert!(verdicts(&mut c, 1, &[Ok(())]).is_empty());
        assert_eq!(
            verdicts(&mut c, 1, &[Ok(())]),
            [
                "health: TCP 10.0.0.100:80 -> 10.0.1.2:80 up after 2 successes: weight 7 restored",
                "health: TCP 10.0.0.100:80 sorry server 10.0.0.99:80 out: a real server is available",
            ]
        );
        assert_eq!(table(&c), [("10.0.1.2".into(), 7), ("10.0.1.1".into(), 0)]);
    }

    #[test]
    fn an_edit_of_a_down_server_at_weight_0_keeps_the_weight_to_restore() {
        let mut c = checked(&web(true, "up"));
        verdicts(&mut c, 0, &[REFUSED, REFUSED]);
        let mut d = dest("10.0.1.1", 80, Method::Dr, 0);
        d.u_threshold = 100;
        one(&mut c, Command::EditDest(tcp("10.0.0.100", 80), d)).unwrap();
        assert!(c.health_pass().is_empty());
        verdicts(&mut c, 0, &[Ok(()), Ok(())]);
        let s = c.model().service(&tcp("10.0.0.100", 80)).unwrap();
        let r = &s.dest(ip("10.0.1.1"), 80).unwrap().spec;
        assert_eq!((r.weight, r.u_threshold), (3, 100));
    }

    #[test]
    fn removal_and_reinstatement_with_the_operators_weight() {
        let mut c = checked(&web(false, "up"));
        // Set while up: the weight to restore from now on.
        one(
            &mut c,
            Command::EditDest(tcp("10.0.0.100", 80), dest("10.0.1.1", 80, Method::Dr, 9)),
        )
        .unwrap();
        assert_eq!(
            verdicts(&mut c, 0, &[REFUSED, REFUSED]),
            ["health: TCP 10.0.0.100:80 -> 10.0.1.1:80 down (connect: connection refused) after 2 failures: removed"]
        );
        assert_eq!(table(&c), [("10.0.1.2".into(), 5)]);
        let id_before = c
            .model()
            .service(&tcp("10.0.0.100", 80))
            .unwrap()
            .dest(ip("10.0.1.2"), 80)
            .unwrap()
            .id;
        assert_eq!(
            verdicts(&mut c, 0, &[Ok(()), Ok(())]),
            ["health: TCP 10.0.0.100:80 -> 10.0.1.1:80 up after 2 successes: reinstated with weight 9"]
        );
        assert_eq!(table(&c), [("10.0.1.1".into(), 9), ("10.0.1.2".into(), 5)]);
        // The other server was not touched.
        let s = c.model().service(&tcp("10.0.0.100", 80)).unwrap();
        assert_eq!(s.dest(ip("10.0.1.2"), 80).unwrap().id, id_before);
        // Both down: the sorry server is all there is.
        verdicts(&mut c, 0, &[REFUSED, REFUSED]);
        let lines = verdicts(&mut c, 1, &[REFUSED, REFUSED]);
        assert_eq!(
            lines[1],
            "health: TCP 10.0.0.100:80 sorry server 10.0.0.99:80 in: no real server available"
        );
        assert_eq!(table(&c), [("10.0.0.99".into(), 1)]);
    }

    #[test]
    fn initial_down_keeps_servers_out_until_they_pass() {
        let mut c = checked(&web(false, "down"));
        assert_eq!(model_dests(&c), [("10.0.0.99".into(), 1)]);
        assert!(verdicts(&mut c, 1, &[Ok(())]).is_empty());
        assert_eq!(
            verdicts(&mut c, 1, &[Ok(())]),
            [
                "health: TCP 10.0.0.100:80 -> 10.0.1.2:80 up after 2 successes: reinstated with weight 5",
                "health: TCP 10.0.0.100:80 sorry server 10.0.0.99:80 out: a real server is available",
            ]
        );
        assert_eq!(table(&c), [("10.0.1.2".into(), 5)]);
    }

    #[test]
    fn an_operator_delete_ends_the_checks() {
        let mut c = checked(&web(true, "up"));
        one(
            &mut c,
            Command::DelDest {
                svc: tcp("10.0.0.100", 80),
                addr: ip("10.0.1.1"),
                port: 80,
            },
        )
        .unwrap();
        assert_eq!(
            c.health_pass(),
            ["health: TCP 10.0.0.100:80 -> 10.0.1.1:80 deleted by the operator: no longer checked"]
        );
        assert_eq!(c.health().targets().len(), 1);
        // Removing the service ends the rest.
        one(&mut c, Command::DelService(tcp("10.0.0.100", 80))).unwrap();
        assert!(c.health().targets().is_empty());
    }

    #[test]
    fn reload_keeps_the_state_of_servers_that_stay() {
        let path = temp_path("health-reload");
        std::fs::write(&path, format!("{BASE}{}", web(false, "up"))).unwrap();
        let cfg = conf::load(&path).unwrap();
        let h = Health::new(&cfg, at(0));
        let model = Model::from_config(&h.desired(&cfg)).unwrap();
        let mut c = Control::new(Fake::new(), model, &path).with_health(h, None);
        verdicts(&mut c, 0, &[REFUSED, REFUSED]);
        assert_eq!(table(&c), [("10.0.1.2".into(), 5)]);
        // New weights; a third server; the down one is still down and out.
        let v2 = web(false, "up")
            .replace("weight = 3", "weight = 4")
            .replace(
                "weight = 5\n",
                "weight = 5\n[[services.real_servers]]\naddress = \"10.0.1.3\"\n",
            );
        std::fs::write(&path, format!("{BASE}{v2}")).unwrap();
        assert_eq!(c.handle(Request::Reload), Response::Reloaded);
        assert_eq!(table(&c), [("10.0.1.3".into(), 1), ("10.0.1.2".into(), 5)]);
        let Response::Health(h) = c.handle(Request::Health(None)) else {
            panic!("no health listing");
        };
        let states: Vec<_> = h[0]
            .dests
            .iter()
            .map(|d| (d.addr.to_string(), d.up, d.weight, d.failures))
            .collect();
        assert_eq!(
            states,
            [
                ("10.0.1.1".into(), false, 4, 2),
                ("10.0.1.2".into(), true, 5, 0),
                ("10.0.1.3".into(), true, 1, 0)
            ]
        );
        assert_eq!(
            verdicts(&mut c, 0, &[Ok(()), Ok(())]),
            ["health: TCP 10.0.0.100:80 -> 10.0.1.1:80 up after 2 successes: reinstated with weight 4"]
        );
    }

    #[test]
    fn the_health_listing() {
        let mut c = checked(&web(true, "up"));
        verdicts(&mut c, 0, &[REFUSED]);
        let Response::Health(h) = c.handle(Request::Health(Some(tcp("10.0.0.100", 80)))) else {
            panic!("no health listing");
        };
        assert_eq!(
            h,
            [ctrl_api::HealthService {
                key: tcp("10.0.0.100", 80),
                quiescent: true,
                sorry: Some(ctrl_api::SorryInfo {
                    addr: ip("10.0.0.99"),
                    port: 80,
                    active: false
                }),
                dests: vec![
                    ctrl_api::HealthDest {
                        addr: ip("10.0.1.1"),
                        port: 80,
                        checker: "tcp".into(),
                        up: true,
                        weight: 3,
                        failures: 1,
                        successes: 0,
                        last: Some(ctrl_api::CheckResult {
                            failure: Some("connect: connection refused".into()),
                            at_ms: 1_800_000_010_000
                        }),
                        since_ms: 1_800_000_000_000,
                    },
                    ctrl_api::HealthDest {
                        addr: ip("10.0.1.2"),
                        port: 80,
                        checker: "tcp".into(),
                        up: true,
                        weight: 5,
                        failures: 0,
                        successes: 0,
                        last: None,
                        since_ms: 1_800_000_000_000,
                    }
                ]
            }]
        );
        let e = c.handle(Request::Health(Some(tcp("10.0.0.100", 81))));
        assert_eq!(
            e,
            Response::Error(ApiError::new(Errno::Esrch, "no service tcp 10.0.0.100:81"))
        );
    }

    /// Hundreds of servers that never answer, with a long timeout: the
    /// control loop answers requests and runs its passes while every one
    /// of those checks is still pending.
    #[test]
    fn silent_servers_do_not_hold_up_requests() {
        // Listening, never accepting: connections complete, HTTP requests
        // are taken, and no answer ever comes.
        let l = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let mut text = format!(
            "[[services]]\nprotocol = \"tcp\"\nvip = \"10.0.0.100\"\nport = {port}\nhealth = {{ checker = \"http\", interval = 120, timeout = 60 }}\n"
        );
        for i in 0..300 {
            text.push_str(&format!(
                "[[services.real_servers]]\naddress = \"10.0.{}.{}\"\n",
                i / 250 + 1,
                i % 250 + 1
            ));
        }
        let mut cfg = cfg(&text);
        // The config takes no loopback real server; all of 127.0.0.0/8
        // reaches the listener, and no check leaves this machine.
        for (i, r) in cfg.services[0].real_servers.iter_mut().enumerate() {
            r.addr = IpAddr::V4(Ipv4Addr::new(
                127,
                0,
                (i / 250 + 1) as u8,
                (i % 250 + 1) as u8,
            ));
        }
        let h = Health::new(&cfg, SystemTime::now());
        let model = Model::from_config(&h.desired(&cfg)).unwrap();
        let checker = Checker::spawn().unwrap();
        let mut c = Control::new(Fake::new(), model, "/nonexistent").with_health(h, Some(checker));
        // Checks are under way once their connections arrive.
        l.set_nonblocking(true).unwrap();
        let mut first = None;
        for _ in 0..1000 {
            if let Ok((s, _)) = l.accept() {
                first = Some(s);
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(first.is_some(), "no check reached the listener");
        for _ in 0..20 {
            assert!(c.health_pass().is_empty());
            let Response::Services(s) = c.handle(Request::Services(None)) else {
                panic!("no listing");
            };
            assert_eq!(s[0].dests.len(), 300);
            std::thread::sleep(Duration::from_millis(10));
        }
        let Response::Health(h) = c.handle(Request::Health(None)) else {
            panic!("no health listing");
        };
        assert_eq!(h[0].dests.len(), 300);
        let done: Vec<_> = h[0]
            .dests
            .iter()
            .filter(|d| d.last.is_some())
            .map(|d| (d.addr, d.last.clone()))
            .collect();
        assert!(done.is_empty(), "{done:?}");
    }
}

#[test]
fn defence_writes_are_whole_publish_a_snapshot_and_follow_a_reload() {
    use ctrl_api::DefenceSet;
    let dir = std::env::temp_dir().join(format!("ripvs-defence-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ripvs.toml");
    std::fs::write(&path, format!("{BASE}[ipvs]\ndrop_entry = 1\n")).unwrap();
    let cfg = conf::load(&path).unwrap();
    let model = Model::from_config(&cfg).unwrap();
    let mut fake = Fake::new();
    fake.defence = crate::snapshot::defence_settings(&cfg);
    let mut c = Control::new(fake, model, &path);
    let info = |r: Response| match r {
        Response::Defence(i) => i,
        other => panic!("{other:?}"),
    };
    // A read changes nothing and publishes nothing.
    let i = info(c.handle(Request::Defence(DefenceSet::default())));
    assert_eq!((i.drop_entry, i.drop_packet, i.secure_tcp), (1, 0, 0));
    assert_eq!((i.am_droprate, i.table_threshold_permille), (10, 900));
    assert_eq!(i.workers.len(), 2);
    assert!(c.dataplane().published.is_empty());
    // One bad value: nothing is set.
    let bad = DefenceSet {
        secure_tcp: Some(3),
        drop_packet: Some(7),
        ..Default::default()
    };
    match c.handle(Request::Defence(bad)) {
        Response::Error(e) => assert_eq!(e.detail, "drop_packet must be 0, 1, 2 or 3, not 7"),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.dataplane().defence.secure_tcp, 0);
    assert!(c.dataplane().published.is_empty());
    // A good write reaches the workers with a snapshot.
    let set = DefenceSet {
        secure_tcp: Some(3),
        table_threshold_permille: Some(500),
        ..Default::default()
    };
    let i = info(c.handle(Request::Defence(set)));
    assert_eq!((i.secure_tcp, i.table_threshold_permille), (3, 500));
    assert_eq!(c.dataplane().published.len(), 1);
    // A reload sets what the file says.
    std::fs::write(
        &path,
        format!("{BASE}[ipvs]\ndrop_packet = 2\n[defence]\ntable_threshold = 0.8\n"),
    )
    .unwrap();
    assert!(matches!(c.handle(Request::Reload), Response::Reloaded));
    let d = c.dataplane().defence;
    assert_eq!(
        (
            d.drop_entry,
            d.drop_packet,
            d.secure_tcp,
            d.threshold_permille
        ),
        (0, 2, 0, 800)
    );
    // A reload that fails leaves them as they were.
    std::fs::write(&path, format!("{BASE}[ipvs]\nsecure_tcp = 9\n")).unwrap();
    assert!(matches!(c.handle(Request::Reload), Response::Error(_)));
    assert_eq!(c.dataplane().defence, d);
    std::fs::remove_dir_all(&dir).unwrap();
}
