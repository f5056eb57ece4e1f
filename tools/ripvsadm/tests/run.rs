//! Whole invocations against a scripted daemon: the requests sent, the
//! output, and the exit status.

mod common;

use common::*;
use ctrl_api::*;
use ripvsadm::run::{socket_path, Daemon, Out, Trouble};
use std::cell::RefCell;
use std::rc::Rc;

type Answer = Box<dyn FnMut(&Request) -> Result<Response, Trouble>>;

struct Fake {
    log: Rc<RefCell<Vec<Request>>>,
    answer: Answer,
}

impl Daemon for Fake {
    fn call(&mut self, req: Request) -> Result<Response, Trouble> {
        self.log.borrow_mut().push(req.clone());
        (self.answer)(&req)
    }
}

struct Ran {
    code: i32,
    out: String,
    err: String,
    sent: Vec<Request>,
    path: String,
}

fn go(args: &str, stdin: &str, answer: Answer) -> Ran {
    let log = Rc::new(RefCell::new(Vec::new()));
    let mut o = Vec::new();
    let mut e = Vec::new();
    let mut path = String::new();
    let mut answer = Some(answer);
    let l2 = log.clone();
    let code = {
        let mut out = Out {
            out: &mut o,
            err: &mut e,
        };
        ripvsadm::run(
            "ipvsadm",
            &words(args),
            Some("/env/sock"),
            &names(),
            &mut stdin.as_bytes(),
            &mut out,
            &mut |p| {
                path = p.to_string();
                Box::new(Fake {
                    log: l2.clone(),
                    answer: answer.take().unwrap(),
                }) as Box<dyn Daemon>
            },
        )
    };
    let sent = log.borrow().clone();
    Ran {
        code,
        out: String::from_utf8(o).unwrap(),
        err: String::from_utf8(e).unwrap(),
        sent,
        path,
    }
}

fn ok_all() -> Answer {
    Box::new(|r| {
        Ok(match r {
            Request::Apply(c) => Response::Applied(c.iter().map(|_| Ok(())).collect()),
            Request::Info => Response::Info(info()),
            Request::Services(None) => Response::Services(reference_table()),
            Request::Services(Some(k)) => Response::Services(
                reference_table()
                    .into_iter()
                    .filter(|s| s.spec.key == *k)
                    .collect(),
            ),
            Request::Timeouts => Response::Timeouts(Timeouts {
                tcp: 900,
                tcpfin: 120,
                udp: 300,
            }),
            Request::Connections { .. } => Response::Connections(ConnPage {
                conns: vec![],
                next: None,
            }),
            Request::Reload => Response::Reloaded,
            Request::Health(None) => Response::Health(reference_health()),
            Request::Health(Some(k)) => Response::Health(
                reference_health()
                    .into_iter()
                    .filter(|s| s.key == *k)
                    .collect(),
            ),
            Request::StartDaemon(_) | Request::StopDaemon(_) | Request::SyncFull => Response::Done,
            Request::Daemons => Response::Daemons(reference_daemons()),
            Request::Vrrp => Response::Vrrp(reference_vrrp()),
            Request::Defence(_) => Response::Defence(reference_defence()),
        })
    })
}

fn refuse(errno: Errno) -> Answer {
    Box::new(move |r| match r {
        Request::Apply(c) => Ok(Response::Applied(
            c.iter()
                .map(|_| Err(ApiError::new(errno, "detail text")))
                .collect(),
        )),
        _ => Ok(Response::Error(ApiError::new(errno, "detail text"))),
    })
}

#[test]
fn a_change_is_one_apply() {
    let r = go("-A -t 10.0.0.1:80 -s rr", "", ok_all());
    assert_eq!((r.code, r.out.as_str(), r.err.as_str()), (0, "", ""));
    assert_eq!(
        r.sent,
        vec![Request::Apply(vec![Command::AddService(spec(
            tcp("10.0.0.1", 80),
            "rr"
        ))])]
    );
    assert_eq!(r.path, "/env/sock");
    let r = go("-C --socket /opt/s", "", ok_all());
    assert_eq!(r.path, "/opt/s");
    assert_eq!(socket_path(None, None), DEFAULT_SOCKET);
    assert_eq!(socket_path(None, Some("")), DEFAULT_SOCKET);
    assert_eq!(socket_path(Some("/a"), Some("/b")), "/a");
}

#[test]
fn daemon_refusals_are_worded_by_errno_and_command() {
    let cases = [
        ("-A -t 10.0.0.1:80", Errno::Eexist, "Service already exists"),
        (
            "-A -t 10.0.0.1:80 -s xx",
            Errno::Enoent,
            "Scheduler or persistence engine not found",
        ),
        (
            "-E -t 10.0.0.1:80",
            Errno::Enoent,
            "Scheduler or persistence engine not found",
        ),
        ("-E -t 10.0.0.1:80", Errno::Esrch, "No such service"),
        ("-D -t 10.0.0.1:80", Errno::Esrch, "No such service"),
        ("-Z -t 10.0.0.1:80", Errno::Esrch, "No such service"),
        (
            "-a -t 10.0.0.1:80 -r 10.0.0.2",
            Errno::Esrch,
            "Service not defined",
        ),
        (
            "-e -t 10.0.0.1:80 -r 10.0.0.2",
            Errno::Esrch,
            "Service not defined",
        ),
        (
            "-d -t 10.0.0.1:80 -r 10.0.0.2",
            Errno::Esrch,
            "Service not defined",
        ),
        (
            "-a -t 10.0.0.1:80 -r 10.0.0.2",
            Errno::Eexist,
            "Destination already exists",
        ),
        (
            "-e -t 10.0.0.1:80 -r 10.0.0.2",
            Errno::Enoent,
            "No such destination",
        ),
        (
            "-d -t 10.0.0.1:80 -r 10.0.0.2",
            Errno::Enoent,
            "No such destination",
        ),
        ("-C", Errno::Eperm, "Permission denied (you must be root)"),
        (
            "-a -t 10.0.0.1:80 -r 10.0.0.2",
            Errno::Einval,
            "Invalid operation.  Possibly wrong module version, address not unicast, ...",
        ),
        ("--set 1 2 3", Errno::Enomem, "Memory allocation problem"),
        (
            "-A -t [::1]:80",
            Errno::Eopnotsupp,
            "Operation not supported with IPv6",
        ),
        (
            "-A -t [::1]:80",
            Errno::Eafnosupport,
            "Operation not supported with specified address family",
        ),
        (
            "-a -t 10.0.0.1:80 -r 10.0.0.2 -y 5",
            Errno::Erange,
            "Numerical result out of range",
        ),
        ("-D -t 10.0.0.1:80", Errno::Eexist, "File exists"),
        ("-E -t 10.0.0.1:80", Errno::Eexist, "File exists"),
        (
            "-a -t 10.0.0.1:80 -r 10.0.0.2",
            Errno::Enoent,
            "No such file or directory",
        ),
        ("-A -t 10.0.0.1:80", Errno::Esrch, "No such process"),
        ("-C", Errno::Other, "detail text"),
    ];
    for (args, errno, msg) in cases {
        let r = go(args, "", refuse(errno));
        assert_eq!(
            (r.code, r.err),
            (255, format!("{msg}\n")),
            "{args} {errno:?}"
        );
        assert_eq!(r.out, "");
    }
}

#[test]
fn listings_ask_for_what_they_print() {
    let r = go("-L -n", "", ok_all());
    assert_eq!(r.code, 0);
    assert_eq!(r.sent, vec![Request::Info, Request::Services(None)]);
    assert!(r
        .out
        .starts_with("IP Virtual Server version 1.2.1 (size=4096)\n"));
    assert!(r.out.contains("TCP  10.0.0.100:80 wlc\n"));

    let r = go("-L -n -t 10.0.0.100:80", "", ok_all());
    assert_eq!(r.sent, vec![Request::Services(Some(tcp("10.0.0.100", 80)))]);
    assert!(r
        .out
        .starts_with("Prot LocalAddress:Port Scheduler Flags\n"));

    let r = go("-L -t 10.0.0.100:80", "", refuse(Errno::Esrch));
    assert_eq!(
        (r.code, r.out.as_str(), r.err.as_str()),
        (1, "", "No such service\n")
    );
    // An empty answer is the same as the daemon's Esrch.
    let r = go("-L -t 10.9.9.9:80", "", ok_all());
    assert_eq!((r.code, r.err.as_str()), (1, "No such service\n"));

    let r = go("-L --timeout", "", ok_all());
    assert_eq!(r.out, "Timeout (tcp tcpfin udp): 900 120 300\n");
    assert_eq!(r.sent, vec![Request::Timeouts]);

    let r = go("-S -n", "", ok_all());
    assert_eq!(r.sent, vec![Request::Services(None)]);
    assert!(r.out.starts_with("-A -t 10.0.0.100:80 -s wlc\n"));

    let r = go("-L -n --json", "", ok_all());
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert!(v.get("Services").is_some(), "{}", r.out);

    let r = go("--reload", "", ok_all());
    assert_eq!((r.code, r.sent.clone()), (0, vec![Request::Reload]));

    let r = go("--health -n -u 10.0.0.100:53", "", ok_all());
    assert_eq!(r.sent, vec![Request::Health(Some(udp("10.0.0.100", 53)))]);
    assert_eq!(r.code, 0);
    assert_eq!(
        r.out.lines().nth(2),
        Some("UDP  10.0.0.100:53 remove 10.0.0.99:53 active")
    );
    assert_eq!(r.out.lines().count(), 5);
    let r = go("--health --json", "", ok_all());
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["Health"][1]["sorry"]["active"], true, "{}", r.out);
    let r = go("--health -t 10.0.0.1:80", "", refuse(Errno::Esrch));
    assert_eq!((r.code, r.err.as_str()), (1, "No such service\n"));
    let r = go("--reload", "", refuse(Errno::Einval));
    assert_eq!((r.code, r.err.as_str()), (255, "detail text\n"));

    for quiet in [
        "-h",
        "-v",
        "--help-ripvs",
        "-A -t 80",
        "--start-daemon slave",
        "--stop-daemon master --mcast-ttl 1",
    ] {
        let r = go(quiet, "", ok_all());
        assert!(r.sent.is_empty(), "{quiet}");
    }
}

#[test]
fn sync_daemon_commands_send_their_request() {
    let r = go(
        "--start-daemon backup --mcast-interface rip-p0 --syncid 9 --mcast-group 239.1.1.1",
        "",
        ok_all(),
    );
    assert_eq!((r.code, r.out.as_str(), r.err.as_str()), (0, "", ""));
    assert_eq!(
        r.sent,
        vec![Request::StartDaemon(DaemonConfig {
            role: SyncRole::Backup,
            mcast_ifn: "rip-p0".into(),
            syncid: 9,
            maxlen: None,
            group: Some(ip("239.1.1.1")),
            port: None,
            ttl: None,
        })]
    );
    let r = go("--stop-daemon master", "", ok_all());
    assert_eq!((r.code, r.out.as_str(), r.err.as_str()), (0, "", ""));
    assert_eq!(r.sent, vec![Request::StopDaemon(SyncRole::Master)]);
    let r = go("--sync-full", "", ok_all());
    assert_eq!((r.code, r.out.as_str(), r.err.as_str()), (0, "", ""));
    assert_eq!(r.sent, vec![Request::SyncFull]);

    let r = go("-L --daemon", "", ok_all());
    assert_eq!(r.sent, vec![Request::Daemons]);
    assert_eq!((r.code, r.err.as_str()), (0, ""));
    assert_eq!(
        r.out,
        "master sync daemon (mcast=rip-p0, syncid=3, maxlen=1472, group=224.0.0.81, port=8848, ttl=2)
backup sync daemon (mcast=rip-p0, syncid=9, maxlen=1472, group=239.1.1.1, port=8900, ttl=1)
"
    );
    let none: Answer = Box::new(|_| Ok(Response::Daemons(vec![])));
    let r = go("-L --daemon", "", none);
    assert_eq!((r.code, r.out.as_str(), r.err.as_str()), (0, "", ""));

    // --json: the answer as it came, counters and all.
    let r = go("-L --daemon --json", "", ok_all());
    assert_eq!(r.sent, vec![Request::Daemons]);
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    let d = &v["Daemons"];
    assert_eq!(d.as_array().map(Vec::len), Some(2), "{}", r.out);
    assert_eq!(d[0]["role"], "Backup");
    assert_eq!(d[0]["group"], "239.1.1.1");
    assert_eq!(d[0]["stats"]["rejected"]["bad_syncid"], 10);
    assert_eq!(d[0]["stats"]["full_sync"]["complete"], true);
    assert_eq!(d[1]["role"], "Master");
    assert_eq!(d[1]["stats"]["ring_drops"][1], 4);
    let back: Response = serde_json::from_str(&r.out).unwrap();
    assert_eq!(back, Response::Daemons(reference_daemons()));
    assert!(
        r.out.starts_with("{\n  \"Daemons\": [\n"),
        "pretty: {}",
        r.out
    );
}

#[test]
fn sync_daemon_refusals_are_libipvs_words() {
    let cases = [
        (
            "--start-daemon master",
            Errno::Eexist,
            "Daemon has already run",
        ),
        ("--stop-daemon backup", Errno::Esrch, "No daemon is running"),
        // The call decides: the other command's errno is plain strerror.
        ("--start-daemon master", Errno::Esrch, "No such process"),
        ("--stop-daemon backup", Errno::Eexist, "File exists"),
        (
            "--start-daemon master --mcast-group ff02::1",
            Errno::Einval,
            "Invalid operation.  Possibly wrong module version, address not unicast, ...",
        ),
        (
            "--start-daemon master",
            Errno::Eperm,
            "Permission denied (you must be root)",
        ),
        (
            "--start-daemon backup",
            Errno::Enomem,
            "Memory allocation problem",
        ),
        (
            "--start-daemon master --mcast-group ff02::1",
            Errno::Eafnosupport,
            "Operation not supported with specified address family",
        ),
        (
            "--start-daemon master",
            Errno::Enoent,
            "No such file or directory",
        ),
        ("--start-daemon master", Errno::Other, "detail text"),
        ("--stop-daemon master", Errno::Other, "detail text"),
        // ripvs's extra speaks for itself.
        ("--sync-full", Errno::Esrch, "detail text"),
        ("--sync-full", Errno::Other, "detail text"),
    ];
    for (args, errno, msg) in cases {
        let r = go(args, "", refuse(errno));
        assert_eq!(
            (r.code, r.err),
            (255, format!("{msg}\n")),
            "{args} {errno:?}"
        );
        assert_eq!(r.out, "");
    }
    let bare: Answer = Box::new(|_| Ok(Response::Error(ApiError::new(Errno::Esrch, ""))));
    let r = go("--sync-full", "", bare);
    assert_eq!((r.code, r.err.as_str()), (255, "No such process\n"));

    // A refused listing: the reason, exit 1.
    let r = go("-L --daemon", "", refuse(Errno::Other));
    assert_eq!(
        (r.code, r.out.as_str(), r.err.as_str()),
        (1, "", "detail text\n")
    );
    let r = go("-L --daemon --json", "", refuse(Errno::Eperm));
    assert_eq!(
        (r.code, r.out.as_str(), r.err.as_str()),
        (1, "", "Permission denied (you must be root)\n")
    );
    // Answers that do not fit the request.
    for args in [
        "--start-daemon master",
        "--stop-daemon master",
        "--sync-full",
        "-L --daemon",
    ] {
        let odd: Answer = Box::new(|_| Ok(Response::Reloaded));
        let r = go(args, "", odd);
        assert_eq!(
            (r.code, r.err.as_str()),
            (2, "Unexpected answer from ripvsd\n"),
            "{args}"
        );
    }
    let gone: Answer = Box::new(|_| Err(Trouble::Connect("Connection refused".into())));
    let r = go("--start-daemon master", "", gone);
    assert_eq!(
        (r.code, r.err.as_str()),
        (
            2,
            "Can't initialize ipvs: Connection refused\nAre you sure that ripvsd is running?\n"
        )
    );
}

#[test]
fn restore_runs_daemon_lines_in_place() {
    let input = "\
-A -t 10.0.0.1:80 -s rr
--start-daemon master --mcast-interface rip-p0
--stop-daemon backup
-C
--start-daemon master
";
    let answer: Answer = Box::new(|r| match r {
        Request::Apply(c) => Ok(Response::Applied(c.iter().map(|_| Ok(())).collect())),
        Request::StartDaemon(c) if c.mcast_ifn == "eth0" => {
            Ok(Response::Error(ApiError::new(Errno::Eexist, "")))
        }
        Request::StartDaemon(_) => Ok(Response::Done),
        Request::StopDaemon(_) => Ok(Response::Error(ApiError::new(Errno::Esrch, ""))),
        _ => panic!("{r:?}"),
    });
    let r = go("-R", input, answer);
    let start = |ifn: &str| {
        Request::StartDaemon(DaemonConfig {
            role: SyncRole::Master,
            mcast_ifn: ifn.into(),
            syncid: 0,
            maxlen: None,
            group: None,
            port: None,
            ttl: None,
        })
    };
    assert_eq!(
        r.sent,
        vec![
            Request::Apply(vec![Command::AddService(spec(tcp("10.0.0.1", 80), "rr"))]),
            start("rip-p0"),
            Request::StopDaemon(SyncRole::Backup),
            Request::Apply(vec![Command::Clear]),
            start("eth0"),
        ]
    );
    assert_eq!(r.err, "No daemon is running\nDaemon has already run\n");
    assert_eq!(r.code, 255, "the last line failed");
    // A bad daemon line stops the restore before anything is sent.
    let r = go("-R", "-C\n--start-daemon master --mcast-ttl 0\n", ok_all());
    assert_eq!(
        (r.code, r.err.as_str()),
        (2, "illegal mcast-ttl specified\n")
    );
    assert!(r.sent.is_empty());
}

#[test]
fn connections_come_in_pages() {
    let page = |n: u16, next: Option<Cursor>| {
        Response::Connections(ConnPage {
            conns: vec![ConnInfo {
                proto: ConnProto::Tcp,
                caddr: ip("192.168.5.20"),
                cport: n,
                vaddr: ip("10.0.0.100"),
                vport: 80,
                daddr: ip("10.0.1.11"),
                dport: 80,
                state: "ESTABLISHED".into(),
                expires_ms: 61_000,
                template: false,
            }],
            next,
        })
    };
    let c1 = Cursor { source: 0, pos: 7 };
    let c2 = Cursor {
        source: u32::MAX,
        pos: 0,
    };
    let answer: Answer = Box::new(move |r| match r {
        Request::Connections { cursor: None, .. } => Ok(page(1, Some(c1))),
        Request::Connections {
            cursor: Some(c), ..
        } if *c == c1 => Ok(page(2, Some(c2))),
        Request::Connections {
            cursor: Some(c), ..
        } if *c == c2 => Ok(page(3, None)),
        _ => panic!("{r:?}"),
    });
    let r = go("-L -n -c", "", answer);
    assert_eq!(r.code, 0);
    let max = ripvsadm::run::CONN_PAGE;
    assert_eq!(
        r.sent,
        vec![
            Request::Connections { cursor: None, max },
            Request::Connections {
                cursor: Some(c1),
                max
            },
            Request::Connections {
                cursor: Some(c2),
                max
            },
        ]
    );
    assert_eq!(
        r.out,
        "IPVS connection entries
pro expire state       source             virtual            destination
TCP 01:01  ESTABLISHED 192.168.5.20:1     10.0.0.100:80      10.0.1.11:80
TCP 01:01  ESTABLISHED 192.168.5.20:2     10.0.0.100:80      10.0.1.11:80
TCP 01:01  ESTABLISHED 192.168.5.20:3     10.0.0.100:80      10.0.1.11:80
"
    );
    // A daemon that keeps answering the same cursor does not hang us.
    let stuck: Answer = Box::new(move |_| Ok(page(1, Some(c1))));
    let r = go("-L -n -c", "", stuck);
    assert_eq!(
        (r.code, r.err.as_str()),
        (2, "Unexpected answer from ripvsd\n")
    );
}

#[test]
fn restore_batches_changes_and_reports_each_failure() {
    let input = "\
ipvsadm -A -t 10.0.0.1:80 -s rr
-a -t 10.0.0.1:80 -r 10.0.0.2 -m

-L --timeout
ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.3 -m
-D -t 10.0.0.9:80
";
    let answer: Answer = Box::new(|r| match r {
        Request::Apply(c) => Ok(Response::Applied(
            c.iter()
                .map(|c| match c {
                    Command::AddDest(..) => Err(ApiError::new(Errno::Eexist, "")),
                    Command::DelService(_) => Err(ApiError::new(Errno::Esrch, "")),
                    _ => Ok(()),
                })
                .collect(),
        )),
        Request::Timeouts => Ok(Response::Timeouts(Timeouts {
            tcp: 1,
            tcpfin: 2,
            udp: 3,
        })),
        _ => panic!("{r:?}"),
    });
    let r = go("-R", input, answer);
    let k = tcp("10.0.0.1", 80);
    assert_eq!(
        r.sent,
        vec![
            Request::Apply(vec![
                Command::AddService(spec(k, "rr")),
                Command::AddDest(k, dspec("10.0.0.2", 80, Method::Nat, 1)),
            ]),
            Request::Timeouts,
            Request::Apply(vec![
                Command::AddDest(k, dspec("10.0.0.3", 80, Method::Nat, 1)),
                Command::DelService(tcp("10.0.0.9", 80)),
            ]),
        ]
    );
    assert_eq!(r.out, "Timeout (tcp tcpfin udp): 1 2 3\n");
    assert_eq!(
        r.err,
        "Destination already exists\nDestination already exists\nNo such service\n"
    );
    assert_eq!(r.code, 255, "the last line failed");

    // A failure earlier on does not decide the status.
    let r = go(
        "-R",
        "-a -t 10.0.0.1:80 -r 10.0.0.2\n-C\n",
        Box::new(|r| match r {
            Request::Apply(c) => Ok(Response::Applied(
                vec![Err(ApiError::new(Errno::Esrch, "")), Ok(())][..c.len()].to_vec(),
            )),
            _ => panic!(),
        }),
    );
    assert_eq!((r.code, r.err.as_str()), (0, "Service not defined\n"));
}

#[test]
fn restore_checks_every_line_before_sending() {
    let input = "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.0.2 -w 70000\n-C\n";
    let r = go("-R", input, ok_all());
    assert_eq!((r.code, r.err.as_str()), (2, "illegal weight specified\n"));
    assert!(r.sent.is_empty());
    for bad in ["-R\n", "-L -Q\n", "bogus\n", "-L --socket /x\n"] {
        let r = go("-R", bad, ok_all());
        assert_eq!(r.code, 2, "{bad}");
        assert!(r.sent.is_empty());
    }
    let r = go("-R", "", ok_all());
    assert_eq!((r.code, r.sent.len()), (0, 0));
    // -h in a restore prints the usage and ends it, as in ipvsadm.
    let r = go("-R", "-C\n-h\n-C\n", ok_all());
    assert_eq!(r.code, 0);
    assert_eq!(r.sent, vec![Request::Apply(vec![Command::Clear])]);
    assert!(r.out.contains("Usage:"));
}

#[test]
fn an_unreachable_daemon() {
    let gone: Answer = Box::new(|_| Err(Trouble::Connect("No such file or directory".into())));
    let r = go("-L", "", gone);
    assert_eq!(
        (r.code, r.err.as_str()),
        (
            2,
            "Can't initialize ipvs: No such file or directory\nAre you sure that ripvsd is running?\n"
        )
    );
    let lost: Answer = Box::new(|_| Err(Trouble::Lost("ripvsd closed the connection".into())));
    let r = go("-C", "", lost);
    assert_eq!(
        (r.code, r.err.as_str()),
        (
            2,
            "Lost the connection to ripvsd: ripvsd closed the connection\n"
        )
    );
}

#[test]
fn vrrp_lists_the_instances() {
    for args in ["--vrrp", "--vrrp -n", "-R"] {
        let stdin = if args == "-R" { "--vrrp\n" } else { "" };
        let r = go(args, stdin, ok_all());
        assert_eq!(r.sent, vec![Request::Vrrp], "{args}");
        assert_eq!(
            (r.code, r.out.as_str(), r.err.as_str()),
            (0, REFERENCE_VRRP_TEXT, ""),
            "{args}"
        );
    }
    let none: Answer = Box::new(|_| Ok(Response::Vrrp(vec![])));
    let r = go("--vrrp", "", none);
    assert_eq!(
        (r.code, r.out.as_str(), r.err.as_str()),
        (
            0,
            "VRRP instances\nName             Port   VRID Ver State   Prio Master            Sent   Received Trans\n",
            ""
        )
    );

    // --json: the answer as it came, every field.
    let r = go("--vrrp --json -n", "", ok_all());
    assert_eq!((r.code, r.err.as_str()), (0, ""));
    assert_eq!(r.sent, vec![Request::Vrrp]);
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    let i = &v["Vrrp"];
    assert_eq!(i.as_array().map(Vec::len), Some(2), "{}", r.out);
    assert_eq!(i[0]["state"], "Master");
    assert_eq!(i[0]["master"], "10.60.0.1");
    assert_eq!(i[1]["stats"]["rejected"]["bad_ttl"], 3);
    assert_eq!(i[1]["unicast_peers"][0], "10.61.0.4");
    let back: Response = serde_json::from_str(&r.out).unwrap();
    assert_eq!(back, Response::Vrrp(reference_vrrp()));
    assert!(r.out.starts_with("{\n  \"Vrrp\": [\n"), "pretty: {}", r.out);
    // No master known: null.
    let faulty: Answer = Box::new(|_| {
        let mut v = reference_vrrp();
        v[1].state = VrrpState::Fault;
        v[1].master = None;
        Ok(Response::Vrrp(v))
    });
    let r = go("--vrrp --json", "", faulty);
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["Vrrp"][1]["state"], "Fault");
    assert!(v["Vrrp"][1]["master"].is_null(), "{}", r.out);
    let none: Answer = Box::new(|_| Ok(Response::Vrrp(vec![])));
    let r = go("--vrrp --json", "", none);
    assert_eq!((r.code, r.out.as_str()), (0, "{\n  \"Vrrp\": []\n}\n"));

    // A refusal: ripvsd's reason (its own words, as for the other
    // extras), a listing's exit 1, with or without --json.
    for args in ["--vrrp", "--vrrp --json"] {
        let r = go(args, "", refuse(Errno::Other));
        assert_eq!(
            (r.code, r.out.as_str(), r.err.as_str()),
            (1, "", "detail text\n"),
            "{args}"
        );
        let bare: Answer = Box::new(|_| Ok(Response::Error(ApiError::new(Errno::Eperm, ""))));
        let r = go(args, "", bare);
        assert_eq!(
            (r.code, r.err.as_str()),
            (1, "Permission denied (you must be root)\n"),
            "{args}"
        );
    }
    // A refusal ends a restore, as a failed listing does.
    let r = go("-R", "--vrrp\n-C\n", refuse(Errno::Other));
    assert_eq!((r.code, r.sent), (1, vec![Request::Vrrp]));
    let odd: Answer = Box::new(|_| Ok(Response::Reloaded));
    let r = go("--vrrp", "", odd);
    assert_eq!(
        (r.code, r.out.as_str(), r.err.as_str()),
        (2, "", "Unexpected answer from ripvsd\n")
    );
    let gone: Answer = Box::new(|_| Err(Trouble::Connect("Connection refused".into())));
    let r = go("--vrrp --json", "", gone);
    assert_eq!(
        (r.code, r.out.as_str(), r.err.as_str()),
        (
            2,
            "",
            "Can't initialize ipvs: Connection refused\nAre you sure that ripvsd is running?\n"
        )
    );
    // Refused on the command line: nothing is sent.
    for args in ["--vrrp -t 10.0.0.1:80", "--vrrp x", "-L --vrrp"] {
        let r = go(args, "", ok_all());
        assert_eq!((r.code, r.sent.len()), (2, 0), "{args}");
    }
}

fn reference_defence() -> ctrl_api::DefenceInfo {
    ctrl_api::DefenceInfo {
        drop_entry: 2,
        drop_packet: 0,
        secure_tcp: 3,
        am_droprate: 10,
        table_threshold_permille: 900,
        workers: vec![
            ctrl_api::WorkerDefence {
                drop_entry: 2,
                drop_packet: 0,
                secure_tcp: 3,
                drop_rate: 0,
                conns: 19_000,
                capacity: 20_000,
            },
            ctrl_api::WorkerDefence {
                drop_entry: 1,
                drop_packet: 0,
                secure_tcp: 3,
                drop_rate: 0,
                conns: 12,
                capacity: 20_000,
            },
        ],
    }
}

#[test]
fn defence_shows_and_sets_the_sysctls() {
    let want = "drop_entry 2\n\
                drop_packet 0\n\
                secure_tcp 3\n\
                am_droprate 10\n\
                table_threshold 0.900\n\
                Worker       Conns   Capacity drop_entry drop_packet secure_tcp DropRate\n\
                0            19000      20000          2           0          3        0\n\
                1               12      20000          1           0          3        0\n";
    let r = go("--defence", "", ok_all());
    assert_eq!(r.sent, vec![Request::Defence(Default::default())]);
    assert_eq!((r.code, r.out.as_str(), r.err.as_str()), (0, want, ""));
    let r = go(
        "--defence drop_entry=1 secure_tcp=3 am_droprate=5 table_threshold=0.75",
        "",
        ok_all(),
    );
    assert_eq!(
        r.sent,
        vec![Request::Defence(ctrl_api::DefenceSet {
            drop_entry: Some(1),
            drop_packet: None,
            secure_tcp: Some(3),
            am_droprate: Some(5),
            table_threshold_permille: Some(750),
        })]
    );
    assert_eq!(r.code, 0);
    let r = go("--defence --json", "", ok_all());
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["Defence"]["workers"][0]["conns"], 19000);
    // Bad words never reach ripvsd.
    for (args, err) in [
        ("--defence drop_entry=4", "illegal drop_entry value 4"),
        ("--defence secure_tcp", "--defence takes name=value settings, not secure_tcp"),
        ("--defence am_droprate=0", "illegal am_droprate value 0"),
        ("--defence table_threshold=2", "illegal table_threshold value 2"),
        ("--defence drop_packet=1 drop_packet=2", "drop_packet given twice"),
        (
            "--defence amemthresh=1024",
            "unknown defence setting amemthresh (drop_entry, drop_packet, secure_tcp, am_droprate, table_threshold)",
        ),
    ] {
        let r = go(args, "", ok_all());
        assert!(r.sent.is_empty(), "{args}");
        assert_eq!(r.code, 2, "{args}");
        assert!(r.err.contains(err), "{args}: {}", r.err);
    }
    // ripvsd's refusal: its words, exit 1.
    let r = go("--defence drop_entry=1", "", refuse(Errno::Einval));
    assert_eq!((r.code, r.out.as_str()), (1, ""));
}
