//! Golden listings: exact text from the reference's formats and examples
//! (ipvs-behaviour.md §2), trailing spaces included.

mod common;

use common::*;
use ctrl_api::*;
use ripvsadm::render::{self, largenum};
use ripvsadm::Format;

fn num() -> Format {
    Format {
        numeric: true,
        ..Format::default()
    }
}

#[test]
fn default_listing_is_the_reference_example() {
    let want = refx(
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
",
    );
    let got = render::list_all(&info(), &reference_table(), &num(), &names());
    assert_eq!(got, want);
}

#[test]
fn nosort_keeps_daemon_order() {
    let f = Format {
        nosort: true,
        ..num()
    };
    let got = render::list_all(&info(), &reference_table(), &f, &names());
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(
        lines[3],
        "FWM  7 sh (sh-fallback,sh-port) persistent 300 mask 255.255.255.0"
    );
    assert_eq!(lines[5], "UDP  10.0.0.100:53 rr persistent 360");
    assert_eq!(
        lines[8],
        "  -> 10.0.1.12:80                 Masq    2      25         81        "
    );
}

#[test]
fn save_is_the_reference_example() {
    let want = "-A -t 10.0.0.100:80 -s wlc
-a -t 10.0.0.100:80 -r 10.0.1.11:80 -m -w 1
-a -t 10.0.0.100:80 -r 10.0.1.12:80 -m -w 2
-A -u 10.0.0.100:53 -s rr -p 360
-a -u 10.0.0.100:53 -r 10.0.1.11:53 -g -w 1
-A -f 7 -s sh -p 300 -M 255.255.255.0 -b sh-fallback,sh-port
-a -f 7 -r 10.0.2.21:0 -i -w 100 --tun-type ipip
";
    assert_eq!(render::save(&reference_table(), true, &names()), want);
}

#[test]
fn save_without_n_resolves_names() {
    let got = render::save(&reference_table(), false, &names());
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines[0], "-A -t vip.example.com:http -s wlc");
    assert_eq!(
        lines[1],
        "-a -t vip.example.com:http -r rs1.example.com:http -m -w 1"
    );
    // Not truncated to 28 in rules, but ipvsadm's 60-byte buffer still
    // caps the text at 59 bytes: here the port is cut off.
    assert_eq!(
        lines[2],
        "-a -t vip.example.com:http -r a-very-long-real-server-name.with.a.long.domain.example.com -m -w 2"
    );
    assert_eq!(lines[3], "-A -u vip.example.com:domain -s rr -p 360");
}

#[test]
fn names_and_truncation_in_listings() {
    let got = render::list_all(&info(), &reference_table(), &Format::default(), &names());
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines[3], "TCP  vip.example.com:http wlc");
    assert_eq!(
        lines[4],
        "  -> rs1.example.com:http         Masq    1      12         40        "
    );
    // RS text is cut at 28 bytes, so the column stays aligned.
    assert_eq!(
        lines[5],
        "  -> a-very-long-real-server-name Masq    2      25         81        "
    );
    let mut long = spec(tcp("10.0.1.12", 443), "rr");
    long.ops = false;
    let got = render::list_service(&svc(long, vec![]), &Format::default(), &names());
    // Service text is cut at 33 bytes.
    assert_eq!(
        got.lines().nth(2).unwrap(),
        "TCP  a-very-long-real-server-name rr"
    );
}

#[test]
fn stats_is_the_reference_example() {
    let mut s = svc(
        spec(tcp("10.0.0.100", 80), "wlc"),
        vec![dest("10.0.1.11", 80, Method::Nat, 1, 0, 0)],
    );
    s.stats = Stats {
        conns: 1523,
        inpkts: 18233,
        outpkts: 16120,
        inbytes: 1843211,
        outbytes: 523_345_678,
    };
    s.dests[0].stats = Stats {
        conns: 761,
        inpkts: 9100,
        outpkts: 8050,
        inbytes: 921000,
        outbytes: 261_000_999,
    };
    let want = "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  10.0.0.100:80                    1523    18233    16120  1843211  523345K
  -> 10.0.1.11:80                      761     9100     8050   921000  261000K
";
    let f = Format {
        stats: true,
        ..num()
    };
    assert_eq!(render::list_all(&info(), &[s], &f, &names()), want);
}

#[test]
fn rate_is_the_reference_example() {
    let mut s = svc(
        spec(tcp("10.0.0.100", 80), "wlc"),
        vec![dest("10.0.1.11", 80, Method::Nat, 1, 0, 0)],
    );
    s.rates = Rates {
        cps: 12,
        inpps: 140,
        outpps: 120,
        inbps: 14502,
        outbps: 201442,
    };
    s.dests[0].rates = Rates {
        cps: 6,
        inpps: 70,
        outpps: 60,
        inbps: 7251,
        outbps: 100721,
    };
    let want = "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS
  -> RemoteAddress:Port
TCP  10.0.0.100:80                      12      140      120    14502   201442
  -> 10.0.1.11:80                        6       70       60     7251   100721
";
    let f = Format {
        rate: true,
        ..num()
    };
    assert_eq!(render::list_service(&s, &f, &names()), want);
}

#[test]
fn rate_rows_use_plain_numbers_for_rs_counts_and_largenum_for_bytes() {
    let mut s = svc(
        spec(tcp("10.0.0.100", 80), "wlc"),
        vec![dest("10.0.1.11", 80, Method::Nat, 1, 0, 0)],
    );
    s.rates.cps = 123_456_789;
    s.dests[0].rates = Rates {
        cps: 123_456_789,
        inpps: 1,
        outpps: 2,
        inbps: 5_000_000_000,
        outbps: 3,
    };
    let f = Format {
        rate: true,
        ..num()
    };
    let got = render::list_service(&s, &f, &names());
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(
        lines[2],
        "TCP  10.0.0.100:80                 123456K        0        0        0        0"
    );
    assert_eq!(
        lines[3],
        "  -> 10.0.1.11:80                 123456789        1        2    5000M        3"
    );
}

#[test]
fn largenum_at_each_boundary() {
    let cases: &[(u64, &str)] = &[
        (0, "        0"),
        (99_999_999, " 99999999"),
        (100_000_000, "  100000K"),
        (999_999_999, "  999999K"),
        (1_000_000_000, "    1000M"),
        (99_999_999_999, "   99999M"),
        (100_000_000_000, "     100G"),
        (99_999_999_999_999, "   99999G"),
        (100_000_000_000_000, "     100T"),
        (u64::MAX, "18446744T"),
    ];
    for (n, want) in cases {
        assert_eq!(largenum(*n, false), *want, "{n}");
    }
    assert_eq!(largenum(12, true), "       12");
    assert_eq!(largenum(99_999_999, true), " 99999999");
    assert_eq!(largenum(100_000_000, true), " 100000000");
    assert_eq!(largenum(u64::MAX, true), " 18446744073709551615");
}

#[test]
fn exact_stats_widen_instead_of_scaling() {
    let mut s = svc(spec(tcp("10.0.0.100", 80), "wlc"), vec![]);
    s.stats = Stats {
        conns: 5,
        inpkts: 100_000_000,
        outpkts: 99_999_999_999,
        inbytes: 100_000_000_000_000,
        outbytes: 7,
    };
    let exact = Format {
        stats: true,
        exact: true,
        ..num()
    };
    let got = render::list_service(&s, &exact, &names());
    assert_eq!(
        got.lines().nth(2).unwrap(),
        "TCP  10.0.0.100:80                       5 100000000 99999999999 100000000000000        7"
    );
    let scaled = Format {
        stats: true,
        ..num()
    };
    let got = render::list_service(&s, &scaled, &names());
    assert_eq!(
        got.lines().nth(2).unwrap(),
        "TCP  10.0.0.100:80                       5  100000K   99999M     100T        7"
    );
}

#[test]
fn thresholds_is_the_reference_example() {
    let mut d = dest("10.0.1.11", 80, Method::Nat, 1, 12, 40);
    d.spec.u_threshold = 1000;
    d.spec.l_threshold = 750;
    let s = svc(spec(tcp("10.0.0.100", 80), "wlc"), vec![d]);
    let want = refx(
        "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn ⏎
  -> RemoteAddress:Port⏎
TCP  10.0.0.100:80 wlc⏎
  -> 10.0.1.11:80                 1000       750        12         40        ⏎
",
    );
    let f = Format {
        thresholds: true,
        ..num()
    };
    assert_eq!(render::list_service(&s, &f, &names()), want);
}

#[test]
fn persistent_conn_listing() {
    let mut d = dest("10.0.1.11", 80, Method::Dr, 3, 12, 40);
    d.persist = 17;
    let mut sp = spec(tcp("10.0.0.100", 80), "wlc");
    sp.persistent = Some(360);
    let s = svc(sp, vec![d]);
    let want = "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n  -> RemoteAddress:Port\nTCP  10.0.0.100:80 wlc persistent 360\n  -> 10.0.1.11:80                 3         17          12         40        \n";
    let f = Format {
        persistent_conn: true,
        ..num()
    };
    assert_eq!(render::list_service(&s, &f, &names()), want);
}

#[test]
fn tun_info_listing() {
    let mut gue = dest("192.168.10.1", 80, Method::Tun, 1, 0, 0);
    gue.spec.tun = Some(TunSpec {
        kind: TunType::Gue,
        port: 6080,
        csum: 0,
    });
    let mut gre = dest("192.168.10.2", 80, Method::Tun, 2, 0, 0);
    gre.spec.tun = Some(TunSpec {
        kind: TunType::Gre,
        port: 0,
        csum: 1,
    });
    let ipip = dest("192.168.10.3", 80, Method::Tun, 3, 0, 0);
    let nat = dest("192.168.10.4", 80, Method::Nat, 4, 0, 0);
    let s = svc(spec(tcp("10.0.0.100", 80), "rr"), vec![gue, gre, ipip, nat]);
    let f = Format {
        tun_info: true,
        ..num()
    };
    let want = refx(
        "Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn
TCP  10.0.0.100:80 rr
  -> 192.168.10.1:80              Tunnel  gue:6080:-c   1      0          0         ⏎
  -> 192.168.10.2:80              Tunnel  gre:+c        2      0          0         ⏎
  -> 192.168.10.3:80              Tunnel  ipip          3      0          0         ⏎
  -> 192.168.10.4:80              Masq    n/a           4      0          0         ⏎
",
    );
    assert_eq!(render::list_service(&s, &f, &names()), want);
}

#[test]
fn every_forward_word_and_service_decoration() {
    let mut sp = spec(udp("10.0.0.1", 53), "wrr");
    sp.persistent = Some(60);
    sp.netmask = Netmask::V4("255.255.0.0".parse().unwrap());
    sp.ops = true;
    sp.pe = Some("sip".into());
    sp.sched_flags = sched_flags::FLAG_1 | sched_flags::FLAG_3;
    let s = svc(
        sp,
        vec![
            dest("10.0.0.11", 53, Method::Nat, 0, 0, 0),
            dest("10.0.0.12", 53, Method::Local, 1, 0, 0),
            dest("10.0.0.13", 53, Method::Tun, 65535, 0, 0),
            dest("10.0.0.14", 53, Method::Dr, 7, 4294967295, 0),
        ],
    );
    let want = refx(
        "Prot LocalAddress:Port Scheduler Flags⏎
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn⏎
UDP  10.0.0.1:53 wrr (flag-1,flag-3) persistent 60 mask 255.255.0.0 pe sip ops⏎
  -> 10.0.0.11:53                 Masq    0      0          0         ⏎
  -> 10.0.0.12:53                 Local   1      0          0         ⏎
  -> 10.0.0.13:53                 Tunnel  65535  0          0         ⏎
  -> 10.0.0.14:53                 Route   7      4294967295 0         ⏎
",
    );
    assert_eq!(render::list_service(&s, &num(), &names()), want);
    let saved = render::save(std::slice::from_ref(&s), true, &names());
    assert_eq!(
        saved.lines().next().unwrap(),
        "-A -u 10.0.0.1:53 -s wrr -p 60 -M 255.255.0.0 --pe sip -o -b flag-1,flag-3"
    );
    assert_eq!(
        saved.lines().nth(2).unwrap(),
        "-a -u 10.0.0.1:53 -r 10.0.0.12:53 -g -w 1"
    );

    // mh words; a mask is shown only when persistent; IPv6 services.
    let mut mh = spec(tcp("2001:db8::1", 443), "mh");
    mh.sched_flags = sched_flags::FLAG_2;
    mh.persistent = Some(30);
    mh.netmask = Netmask::V6(64);
    let mut fw6 = spec(SvcKey::Fwmark { mark: 5, v6: true }, "wlc");
    fw6.netmask = Netmask::V6(64);
    let mut v4 = spec(tcp("10.0.0.2", 80), "wlc");
    v4.netmask = Netmask::V4("255.0.0.0".parse().unwrap());
    let table = vec![
        svc(mh, vec![dest("2001:db8::10", 443, Method::Nat, 1, 0, 0)]),
        svc(fw6, vec![]),
        svc(v4, vec![]),
    ];
    let got = render::list_all(&info(), &table, &num(), &names());
    let want = refx(
        "IP Virtual Server version 1.2.1 (size=4096)⏎
Prot LocalAddress:Port Scheduler Flags⏎
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn⏎
TCP  10.0.0.2:80 wlc⏎
TCP  [2001:db8::1]:443 mh (mh-port) persistent 30 mask 64⏎
  -> [2001:db8::10]:443           Masq    1      0          0         ⏎
FWM  5 IPv6 wlc⏎
",
    );
    assert_eq!(got, want);
    let saved = render::save(&table, true, &names());
    assert_eq!(
        saved,
        "-A -t 10.0.0.2:80 -s wlc
-A -t [2001:db8::1]:443 -s mh -p 30 -M 64 -b mh-port
-a -t [2001:db8::1]:443 -r [2001:db8::10]:443 -m -w 1
-A -f 5 -6 -s wlc
"
    );
}

#[test]
fn sort_uses_signed_32_bit_differences() {
    let table = vec![
        svc(spec(tcp("10.0.0.1", 80), "rr"), vec![]),
        svc(
            spec(tcp("200.0.0.1", 80), "rr"),
            vec![
                dest("10.0.0.1", 80, Method::Nat, 1, 0, 0),
                dest("10.0.0.3", 80, Method::Nat, 1, 0, 0),
                dest("200.0.0.1", 80, Method::Nat, 1, 0, 0),
                dest("10.0.0.2", 80, Method::Nat, 1, 0, 0),
            ],
        ),
    ];
    let got = render::list_all(&info(), &table, &num(), &names());
    let want = refx(
        "IP Virtual Server version 1.2.1 (size=4096)⏎
Prot LocalAddress:Port Scheduler Flags⏎
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn⏎
TCP  200.0.0.1:80 rr⏎
  -> 200.0.0.1:80                 Masq    1      0          0         ⏎
  -> 10.0.0.1:80                  Masq    1      0          0         ⏎
  -> 10.0.0.2:80                  Masq    1      0          0         ⏎
  -> 10.0.0.3:80                  Masq    1      0          0         ⏎
TCP  10.0.0.1:80 rr⏎
",
    );
    assert_eq!(got, want);
    // Without the quirk's reach (less than 2^31 apart) the order is plain.
    let plain = vec![
        svc(spec(tcp("10.0.0.2", 80), "rr"), vec![]),
        svc(spec(udp("10.0.0.1", 80), "rr"), vec![]),
        svc(spec(tcp("10.0.0.1", 81), "rr"), vec![]),
        svc(spec(tcp("10.0.0.1", 80), "rr"), vec![]),
        svc(spec(fwm(1), "rr"), vec![]),
    ];
    let got = render::save(&plain, true, &names());
    assert_eq!(
        got,
        "-A -t 10.0.0.1:80 -s rr
-A -t 10.0.0.1:81 -s rr
-A -t 10.0.0.2:80 -s rr
-A -u 10.0.0.1:80 -s rr
-A -f 1 -s rr
"
    );
}

/// One entry: protocol, "client virtual destination" as `addr:port`
/// words, state, milliseconds left.
fn conn(proto: ConnProto, addrs: &str, state: &str, ms: u64) -> ConnInfo {
    let a: Vec<(&str, u16)> = addrs
        .split(' ')
        .map(|w| {
            let (h, p) = w.rsplit_once(':').unwrap();
            (h, p.parse().unwrap())
        })
        .collect();
    let [(c, cp), (v, vp), (d, dp)] = a[..] else {
        panic!("{addrs}")
    };
    ConnInfo {
        proto,
        caddr: ip(c),
        cport: cp,
        vaddr: ip(v),
        vport: vp,
        daddr: ip(d),
        dport: dp,
        state: state.into(),
        expires_ms: ms,
        template: cp == 0,
    }
}

#[test]
fn connections_are_the_reference_example() {
    let conns = vec![
        conn(
            ConnProto::Tcp,
            "192.168.5.20:51234 10.0.0.100:80 10.0.1.11:80",
            "ESTABLISHED",
            898_999,
        ),
        conn(
            ConnProto::Tcp,
            "192.168.5.21:40012 10.0.0.100:80 10.0.1.12:80",
            "FIN_WAIT",
            107_000,
        ),
        conn(
            ConnProto::Udp,
            "192.168.5.20:33001 10.0.0.100:53 10.0.1.11:53",
            "UDP",
            299_500,
        ),
        conn(
            ConnProto::Tcp,
            "192.168.5.0:0 10.0.0.100:80 10.0.1.11:80",
            "NONE",
            359_000,
        ),
        conn(
            ConnProto::Ip,
            "192.168.5.20:0 0.0.0.7:0 10.0.2.21:0",
            "NONE",
            252_000,
        ),
        conn(
            ConnProto::Tcp,
            "192.168.5.22:1 10.0.0.100:80 10.0.1.11:80",
            "NONE",
            6_000_000,
        ),
        conn(
            ConnProto::Sctp,
            "192.168.5.23:2 10.0.0.100:80 10.0.1.11:80",
            "ESTABLISHED",
            59_999,
        ),
    ];
    let want = "IPVS connection entries
pro expire state       source             virtual            destination
TCP 14:58  ESTABLISHED 192.168.5.20:51234 10.0.0.100:80      10.0.1.11:80
TCP 01:47  FIN_WAIT    192.168.5.21:40012 10.0.0.100:80      10.0.1.12:80
UDP 04:59  UDP         192.168.5.20:33001 10.0.0.100:53      10.0.1.11:53
TCP 05:59  NONE        192.168.5.0:0      10.0.0.100:80      10.0.1.11:80
IP  04:12  NONE        192.168.5.20:0     0.0.0.7:0          10.0.2.21:0
TCP 100:00 NONE        192.168.5.22:1     10.0.0.100:80      10.0.1.11:80
SCTP 00:59  ESTABLISHED 192.168.5.23:2     10.0.0.100:80      10.0.1.11:80
";
    assert_eq!(render::connections(&conns, &num(), &names()), want);

    let pc = Format {
        persistent_conn: true,
        ..num()
    };
    let got = render::connections(&conns[..1], &pc, &names());
    assert_eq!(
        got,
        "IPVS connection entries
pro expire state       source             virtual            destination        pe name          pe_data
TCP 14:58  ESTABLISHED 192.168.5.20:51234 10.0.0.100:80      10.0.1.11:80
"
    );

    // Names: port names by the entry's protocol; none for IP templates.
    let got = render::connections(&conns[3..5], &Format::default(), &names());
    assert_eq!(
        got.lines().nth(2).unwrap(),
        "TCP 05:59  NONE        192.168.5.0:0      vip.example.com:http rs1.example.com:http"
    );
    assert_eq!(
        got.lines().nth(3).unwrap(),
        "IP  04:12  NONE        192.168.5.20:0     0.0.0.7:0          10.0.2.21:0"
    );
}

#[test]
fn timeouts_line() {
    let t = Timeouts {
        tcp: 900,
        tcpfin: 120,
        udp: 300,
    };
    assert_eq!(
        render::timeouts(&t),
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    );
}

#[test]
fn daemon_lines() {
    let master = daemon_info(SyncRole::Master);
    let backup = daemon_info(SyncRole::Backup);
    let m = "master sync daemon (mcast=rip-p0, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n";
    let b = "backup sync daemon (mcast=rip-p0, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n";
    assert_eq!(render::daemons(std::slice::from_ref(&master)), m);
    assert_eq!(render::daemons(std::slice::from_ref(&backup)), b);
    // Master first, whatever order they come in.
    let both = format!("{m}{b}");
    assert_eq!(render::daemons(&[backup.clone(), master.clone()]), both);
    assert_eq!(render::daemons(&[master.clone(), backup.clone()]), both);
    // Nothing runs, nothing printed.
    assert_eq!(render::daemons(&[]), "");
    assert_eq!(
        render::daemons(&reference_daemons()),
        "master sync daemon (mcast=rip-p0, syncid=3, maxlen=1472, group=224.0.0.81, port=8848, ttl=2)
backup sync daemon (mcast=rip-p0, syncid=9, maxlen=1472, group=239.1.1.1, port=8900, ttl=1)
"
    );
    // inet_ntop's IPv6 form.
    let v6 = DaemonInfo {
        group: ip("ff02::12"),
        mcast_ifn: "eth0".into(),
        syncid: 255,
        maxlen: 65487,
        ..backup.clone()
    };
    assert_eq!(
        render::daemons(&[v6]),
        "backup sync daemon (mcast=eth0, syncid=255, maxlen=65487, group=ff02::12, port=8848, ttl=1)\n"
    );
    // What an old kernel does not report reaches ipvsadm as 0, and is
    // left out.
    let bare = DaemonInfo {
        maxlen: 0,
        port: 0,
        ttl: 0,
        ..master
    };
    assert_eq!(
        render::daemons(&[bare]),
        "master sync daemon (mcast=rip-p0, syncid=0, group=224.0.0.81)\n"
    );
}

#[test]
fn ripvs_help_lists_the_extras() {
    let h = render::ripvs_help("ripvsadm");
    assert!(h.starts_with("ripvsadm: ipvsadm 1.31 for ripvsd. Everything `ripvsadm -h` lists works as in\nipvsadm.\n"), "{h}");
    assert!(h.contains("\n  --sync-full     full sync-table transfer: a backup sync daemon asks its\n                  master for the whole connection table, a master sends it\n"), "{h}");
    assert!(h.contains("\n  --vrrp          the VRRP instances: state, master, advert counters (with\n                  --json: ripvsd's whole answer)\n"), "{h}");
    assert!(h.contains(&format!("else {})\n", DEFAULT_SOCKET)), "{h}");
    assert!(!h.contains("does not have"), "{h}");
}

#[test]
fn usage_and_version() {
    assert_eq!(
        render::version(),
        "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n"
    );
    let u = render::usage("ipvsadm");
    assert!(u.starts_with(
        "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\nUsage:\n  ipvsadm -A|E virtual-service [-s scheduler]"
    ));
    assert!(u.contains(
        "\n  --numeric      -n                   numeric output of addresses and ports\n"
    ));
    assert!(u.ends_with("  --mcast-ttl ttl                     Multicast TTL (default=1)\n"));
    assert_eq!(u.lines().count(), 82);
}

#[test]
fn health_listing() {
    let want = refx(
        "Prot LocalAddress:Port OnFailure [SorryServer State]
  -> RemoteAddress:Port           Check State Weight Streak   Since (UTC)         LastResult
TCP  10.0.0.100:80 quiescent
  -> 10.0.1.11:80                 http  up    1      12 ok    2026-11-21 20:21:05 ok
  -> 10.0.1.12:80                 http  down  2      3 fail   2026-11-21 20:21:05 failed: http: status 503 (expected 200-299)
UDP  10.0.0.100:53 remove 10.0.0.99:53 active
  -> 10.0.1.11:53                 udp   down  1      4 fail   2026-11-21 20:21:05 failed: timeout after 1 s waiting for a reply
  -> 10.0.1.13:53                 exec  down  1      -        2026-11-21 20:21:05 -
",
    );
    assert_eq!(render::health(&reference_health(), true, &names()), want);
    // Without -n, names as the other listings have them.
    let named = render::health(&reference_health(), false, &names());
    assert!(
        named.contains(
            "\nTCP  vip.example.com:http quiescent\n  -> rs1.example.com:http         http  up "
        ),
        "{named}"
    );
    assert!(
        named.contains("\nUDP  vip.example.com:domain remove 10.0.0.99:domain active\n"),
        "{named}"
    );
    assert_eq!(
        render::health(&[], true, &names()),
        "Prot LocalAddress:Port OnFailure [SorryServer State]\n  -> RemoteAddress:Port           Check State Weight Streak   Since (UTC)         LastResult\n"
    );
}

#[test]
fn utc_dates() {
    assert_eq!(render::utc(0), "1970-01-01 00:00:00");
    assert_eq!(render::utc(951_782_400_000), "2000-02-29 00:00:00");
    assert_eq!(render::utc(1_795_292_465_999), "2026-11-21 20:21:05");
    assert_eq!(render::utc(4_107_542_399_000), "2100-02-28 23:59:59");
}

#[test]
fn a_syn_proxy_service_lists_saves_and_restores() {
    let mut sp = spec(tcp("10.0.0.1", 80), "rr");
    sp.synproxy = true;
    let s = svc(
        sp.clone(),
        vec![dest("10.0.0.11", 8080, Method::Nat, 1, 0, 0)],
    );
    // DPVS's listing: `synproxy` after the other flags.
    let want = refx(
        "Prot LocalAddress:Port Scheduler Flags⏎
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn⏎
TCP  10.0.0.1:80 rr synproxy⏎
  -> 10.0.0.11:8080               Masq    1      0          0         ⏎
",
    );
    assert_eq!(render::list_service(&s, &num(), &names()), want);
    let saved = render::save(std::slice::from_ref(&s), true, &names());
    let first = saved.lines().next().unwrap();
    assert_eq!(first, "-A -t 10.0.0.1:80 -s rr -j enable");
    // What -S writes, -R reads back as the same service.
    match parse(first).unwrap().action {
        ripvsadm::Action::Apply(Command::AddService(back)) => assert_eq!(back, sp),
        a => panic!("{a:?}"),
    }
}
