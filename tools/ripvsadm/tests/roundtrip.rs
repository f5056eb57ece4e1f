//! `-S` output read back by the parser gives the commands that build the
//! same table; the classic NAT rule file parses and lists as ipvsadm's.

mod common;

use common::*;
use ctrl_api::*;
use ripvsadm::cli::{parse_restore_line, restore_tokens};
use ripvsadm::{render, Action, Format};

fn restore(text: &str) -> Vec<Command> {
    text.lines()
        .map(restore_tokens)
        .filter(|t| !t.is_empty())
        .map(|t| match parse_restore_line("ipvsadm", &t, &names()) {
            Ok(Action::Apply(c)) => c,
            other => panic!("{t:?}: {other:?}"),
        })
        .collect()
}

/// The commands that build `table`, services in listing order and each
/// service's real servers in address order (as -S prints them).
fn build(table: &[ServiceInfo]) -> Vec<Command> {
    let mut out = Vec::new();
    for s in table {
        out.push(Command::AddService(s.spec.clone()));
        for d in &s.dests {
            out.push(Command::AddDest(s.spec.key, d.spec.clone()));
        }
    }
    out
}

#[test]
fn save_parses_back_to_the_same_commands() {
    let scheds = [
        "rr", "wrr", "lc", "wlc", "sed", "nq", "lblc", "lblcr", "dh", "sh", "mh", "fo", "ovf",
        "twos",
    ];
    let methods = [Method::Dr, Method::Tun, Method::Nat];
    let mut table = Vec::new();
    for (i, sched) in scheds.iter().enumerate() {
        let port = 1000 + i as u16;
        let mut sp = spec(tcp("10.0.0.1", port), sched);
        match i % 4 {
            0 => {}
            1 => sp.persistent = Some(360),
            2 => {
                sp.persistent = Some(1 + i as u32);
                sp.netmask = Netmask::V4("255.255.255.0".parse().unwrap());
            }
            _ => sp.persistent = Some(2678400),
        }
        sp.sched_flags = match *sched {
            "sh" | "mh" => sched_flags::FLAG_1 | sched_flags::FLAG_2,
            "wrr" => sched_flags::FLAG_3,
            _ => 0,
        };
        let dests = methods
            .iter()
            .enumerate()
            .map(|(j, m)| {
                let p = if *m == Method::Nat {
                    8000 + j as u16
                } else {
                    port
                };
                dest(
                    &format!("10.1.{i}.{}", j + 1),
                    p,
                    *m,
                    (i * 3 + j) as i32,
                    0,
                    0,
                )
            })
            .collect();
        table.push(svc(sp, dests));
    }
    let mut u = spec(udp("10.0.0.1", 53), "rr");
    u.ops = true;
    let mut gue = dest("10.9.0.1", 53, Method::Tun, 5, 0, 0);
    gue.spec.tun = Some(TunSpec {
        kind: TunType::Gue,
        port: 6080,
        csum: 2,
    });
    let mut gre = dest("10.9.0.2", 53, Method::Tun, 6, 0, 0);
    gre.spec.tun = Some(TunSpec {
        kind: TunType::Gre,
        port: 0,
        csum: 1,
    });
    table.push(svc(u, vec![gue, gre]));
    let mut v6 = spec(tcp("2001:db8::1", 443), "wlc");
    v6.persistent = Some(60);
    v6.netmask = Netmask::V6(64);
    table.push(svc(
        v6,
        vec![dest("2001:db8::10", 8443, Method::Nat, 1, 0, 0)],
    ));
    let mut fw = spec(fwm(7), "sh");
    fw.persistent = Some(300);
    fw.sched_flags = sched_flags::FLAG_1;
    table.push(svc(
        fw,
        vec![
            dest("10.2.0.1", 0, Method::Dr, 1, 0, 0),
            dest("10.2.0.2", 0, Method::Nat, 2, 0, 0),
            dest("10.2.0.3", 0, Method::Tun, 3, 0, 0),
        ],
    ));
    let mut fw6 = spec(SvcKey::Fwmark { mark: 8, v6: true }, "mh");
    fw6.sched_flags = sched_flags::FLAG_2;
    fw6.pe = Some("sip".into());
    table.push(svc(fw6, vec![dest("2001:db8::20", 0, Method::Dr, 4, 0, 0)]));

    let text = render::save(&table, true, &names());
    assert_eq!(restore(&text), build(&table), "{text}");
    // Saving what the parser made gives the same text again.
    let again: Vec<ServiceInfo> = table.clone();
    assert_eq!(render::save(&again, true, &names()), text);
    // Every scheduler and method appears in the text.
    for s in scheds {
        assert!(text.contains(&format!(" -s {s}")), "{s}");
    }
    for m in [" -g ", " -i ", " -m ", "-A -f 7 ", "-A -f 8 -6 "] {
        assert!(text.contains(m), "{m}");
    }
}

#[test]
fn reference_save_example_parses_back() {
    let text = render::save(&reference_table(), true, &names());
    let mut sorted = reference_table();
    // Listing order: TCP, UDP, then the fwmark service; RSs by address.
    sorted.reverse();
    sorted[0].dests.reverse();
    assert_eq!(restore(&text), build(&sorted));
}

const RULES: &str = "-A -t 210.77.132.8:80 -s rr
-a -t 210.77.132.8:80 -r 192.168.0.2:80 -m -w 1
-a -t 210.77.132.8:80 -r 192.168.0.3:80 -m -w 1
";

#[test]
fn real_world_rule_file() {
    let key = tcp("210.77.132.8", 80);
    let want = vec![
        Command::AddService(spec(key, "rr")),
        Command::AddDest(key, dspec("192.168.0.2", 80, Method::Nat, 1)),
        Command::AddDest(key, dspec("192.168.0.3", 80, Method::Nat, 1)),
    ];
    assert_eq!(restore(RULES), want);
    // The same lines with the program name in front, as scripts write them.
    let prefixed: String = RULES.lines().map(|l| format!("ipvsadm {l}\n\n")).collect();
    assert_eq!(restore(&prefixed), want);

    // ripvsd lists real servers newest first; ipvsadm sorts them.
    let table = vec![svc(
        spec(key, "rr"),
        vec![
            dest("192.168.0.3", 80, Method::Nat, 1, 0, 0),
            dest("192.168.0.2", 80, Method::Nat, 1, 0, 0),
        ],
    )];
    let f = Format {
        numeric: true,
        ..Format::default()
    };
    let want = refx(
        "IP Virtual Server version 1.2.1 (size=4096)⏎
Prot LocalAddress:Port Scheduler Flags⏎
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn⏎
TCP  210.77.132.8:80 rr⏎
  -> 192.168.0.2:80               Masq    1      0          0         ⏎
  -> 192.168.0.3:80               Masq    1      0          0         ⏎
",
    );
    assert_eq!(render::list_all(&info(), &table, &f, &names()), want);
    assert_eq!(render::save(&table, true, &names()), RULES);
}
