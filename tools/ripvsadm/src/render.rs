//! ipvsadm 1.31's listings, byte for byte: printf padding (and so the
//! trailing spaces), the 33/28-byte truncations, the largenum units, and
//! libipvs's sort with its signed 32-bit differences.

use crate::cli::Format;
use crate::names::{ntop, Names};
use ctrl_api::{
    sched_flags, ConnInfo, ConnProto, DaemonInfo, DestInfo, HealthService, Info, Method, Netmask,
    Proto, ServiceInfo, SvcKey, SyncRole, Timeouts, TunType, VrrpInfo,
};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

const SCHED_BITS: u32 = sched_flags::FLAG_1 | sched_flags::FLAG_2 | sched_flags::FLAG_3;
const AF_INET: i32 = 2;
const AF_INET6: i32 = 10;

/// `print_largenum`: counters in a 9-wide column, scaled with a unit
/// letter once they no longer fit; `--exact` widens instead.
pub fn largenum(i: u64, exact: bool) -> String {
    if exact {
        let len = i.to_string().len();
        let w = if len <= 8 { 9 } else { len + 1 };
        return format!("{i:>w$}");
    }
    if i < 100_000_000 {
        format!("{i:>9}")
    } else if i < 1_000_000_000 {
        format!("{:>8}K", i / 1000)
    } else if i < 100_000_000_000 {
        format!("{:>8}M", i / 1_000_000)
    } else if i < 100_000_000_000_000 {
        format!("{:>8}G", i / 1_000_000_000)
    } else {
        format!("{:>8}T", i / 1_000_000_000_000)
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// `addrport_to_anyname`: numeric, or host and service names when
/// they exist; ipvsadm's 60-byte buffer caps it at 59.
pub fn addrport(
    addr: IpAddr,
    port: u16,
    proto: Option<Proto>,
    numeric: bool,
    names: &dyn Names,
) -> String {
    let (host, port) = if numeric {
        (ntop(addr), port.to_string())
    } else {
        (
            names.addr_to_host(addr).unwrap_or_else(|| ntop(addr)),
            names
                .port_to_service(port, proto)
                .unwrap_or_else(|| port.to_string()),
        )
    };
    let s = match addr {
        IpAddr::V4(_) => format!("{host}:{port}"),
        IpAddr::V6(_) => format!("[{host}]:{port}"),
    };
    truncate(s, 59)
}

/// ipvsadm's words for the scheduler flag bits, which depend on the
/// scheduler: sh and mh name the two bits they use, others are numbered.
pub fn sched_flag_words(sched: &str, flags: u32) -> String {
    let words: &[(u32, &str)] = match sched {
        "sh" => &[
            (sched_flags::FLAG_1, "sh-fallback"),
            (sched_flags::FLAG_2, "sh-port"),
        ],
        "mh" => &[
            (sched_flags::FLAG_1, "mh-fallback"),
            (sched_flags::FLAG_2, "mh-port"),
        ],
        _ => &[
            (sched_flags::FLAG_1, "flag-1"),
            (sched_flags::FLAG_2, "flag-2"),
            (sched_flags::FLAG_3, "flag-3"),
        ],
    };
    words
        .iter()
        .filter(|(b, _)| flags & b != 0)
        .map(|(_, w)| *w)
        .collect::<Vec<_>>()
        .join(",")
}

fn words(a: IpAddr) -> [u32; 4] {
    match a {
        IpAddr::V4(v4) => [u32::from(v4), 0, 0, 0],
        IpAddr::V6(v6) => {
            let o = v6.octets();
            let w = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            [w(0), w(4), w(8), w(12)]
        }
    }
}

/// C's `int r = a - b` on unsigned 32-bit values.
fn diff(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

fn addr_cmp(a: IpAddr, b: IpAddr) -> i32 {
    let (wa, wb) = (words(a), words(b));
    if a.is_ipv6() {
        wa.iter()
            .zip(wb.iter())
            .map(|(x, y)| diff(*x, *y))
            .find(|r| *r != 0)
            .unwrap_or(0)
    } else {
        diff(wa[0], wb[0])
    }
}

/// libipvs `ipvs_cmp_services`.
pub fn cmp_services(a: &SvcKey, b: &SvcKey) -> i32 {
    // (fwmark, af, protocol, address, port) as the kernel reports them;
    // fwmark services carry TCP, ipvsadm's placeholder.
    let f = |k: &SvcKey| match *k {
        SvcKey::Fwmark { mark, v6 } => (
            mark,
            if v6 { AF_INET6 } else { AF_INET },
            6,
            if v6 {
                IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
            } else {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            },
            0u16,
        ),
        SvcKey::Addr { proto, addr, port } => (
            0,
            if addr.is_ipv6() { AF_INET6 } else { AF_INET },
            i32::from(proto.number()),
            addr,
            port,
        ),
    };
    let (ma, afa, pa, aa, porta) = f(a);
    let (mb, afb, pb, ab, portb) = f(b);
    let r = diff(ma, mb);
    if r != 0 {
        return r;
    }
    if afa != afb {
        return afa - afb;
    }
    if pa != pb {
        return pa - pb;
    }
    let r = addr_cmp(aa, ab);
    if r != 0 {
        return r;
    }
    i32::from(porta) - i32::from(portb)
}

/// libipvs `ipvs_cmp_dests`.
pub fn cmp_dests(a: &DestInfo, b: &DestInfo) -> i32 {
    let r = addr_cmp(a.spec.addr, b.spec.addr);
    if r != 0 {
        return r;
    }
    i32::from(a.spec.port) - i32::from(b.spec.port)
}

/// glibc's qsort is a merge sort; with ipvsadm's inconsistent comparator
/// the order depends on the algorithm, so use the same one (and one that
/// cannot panic on an inconsistent order).
pub fn msort<T>(v: &mut Vec<T>, cmp: &dyn Fn(&T, &T) -> i32) {
    if v.len() <= 1 {
        return;
    }
    let mut right = v.split_off(v.len() / 2);
    msort(v, cmp);
    msort(&mut right, cmp);
    let left = std::mem::take(v);
    let mut l = left.into_iter().peekable();
    let mut r = right.into_iter().peekable();
    loop {
        let take_left = match (l.peek(), r.peek()) {
            (Some(a), Some(b)) => cmp(a, b) <= 0,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_left { l.next() } else { r.next() };
        v.extend(next);
    }
}

fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "TCP",
        Proto::Udp => "UDP",
        Proto::Sctp => "SCTP",
    }
}

fn proto_option(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "-t",
        Proto::Udp => "-u",
        Proto::Sctp => "--sctp-service",
    }
}

/// The protocol ipvsadm looks port names up with: the service's own, TCP
/// for fwmark services.
fn svc_proto(k: &SvcKey) -> Proto {
    match *k {
        SvcKey::Addr { proto, .. } => proto,
        SvcKey::Fwmark { .. } => Proto::Tcp,
    }
}

fn svc_name(k: &SvcKey, fmt: &Format, names: &dyn Names) -> String {
    match *k {
        SvcKey::Fwmark { mark, v6 } => match (fmt.rule, v6) {
            (true, true) => format!("-f {mark} -6"),
            (true, false) => format!("-f {mark}"),
            (false, true) => format!("FWM  {mark} IPv6"),
            (false, false) => format!("FWM  {mark}"),
        },
        SvcKey::Addr { proto, addr, port } => {
            let v = addrport(addr, port, Some(proto), fmt.numeric, names);
            if fmt.rule {
                format!("{} {v}", proto_option(proto))
            } else {
                let s = format!("{:<4} {v}", proto_name(proto));
                if addr.is_ipv6() {
                    s
                } else {
                    truncate(s, 33)
                }
            }
        }
    }
}

fn fwd_name(m: Method) -> &'static str {
    match m {
        Method::Nat => "Masq",
        Method::Local => "Local",
        Method::Tun => "Tunnel",
        Method::Dr => "Route",
    }
}

fn fwd_switch(m: Method) -> &'static str {
    match m {
        Method::Nat => "-m",
        Method::Tun => "-i",
        Method::Local | Method::Dr => "-g",
    }
}

const CSUM_WORDS: [&str; 3] = ["-c", "+c", "r+c"];
const CSUM_OPTS: [&str; 3] = ["--tun-nocsum", "--tun-csum", "--tun-remcsum"];

fn tun_info(d: &DestInfo) -> String {
    if d.spec.method != Method::Tun {
        return "n/a".to_string();
    }
    let c = |n: u8| CSUM_WORDS.get(usize::from(n)).copied().unwrap_or("?");
    match d.spec.tun {
        None => "ipip".to_string(),
        Some(t) => match t.kind {
            TunType::Ipip => "ipip".to_string(),
            TunType::Gue => format!("gue:{}:{}", t.port, c(t.csum)),
            TunType::Gre => format!("gre:{}", c(t.csum)),
        },
    }
}

/// `print_title`.
pub fn title(fmt: &Format) -> String {
    if fmt.stats {
        format!(
            "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n",
            "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        )
    } else if fmt.rate {
        format!(
            "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n",
            "Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        )
    } else if fmt.thresholds {
        format!(
            "{:<33} {:<10} {:<10} {:<10} {:<10}\n  -> RemoteAddress:Port\n",
            "Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        )
    } else if fmt.persistent_conn {
        format!(
            "{:<33} {:<9} {:<11} {:<10} {:<10}\n  -> RemoteAddress:Port\n",
            "Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn"
        )
    } else if fmt.tun_info {
        "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n".to_string()
    } else if !fmt.rule {
        "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n".to_string()
    } else {
        String::new()
    }
}

/// `print_service_entry`: the service line (or `-A` rule) and its real
/// servers.
pub fn service_entry(s: &ServiceInfo, fmt: &Format, names: &dyn Names) -> String {
    let mut o = String::new();
    let sp = &s.spec;
    let name = svc_name(&sp.key, fmt, names);
    let ln = |n: u64| largenum(n, fmt.exact);
    let mask = |prefix: &str| match sp.netmask {
        Netmask::V4(m) if m != Ipv4Addr::BROADCAST => format!(" {prefix} {m}"),
        Netmask::V6(n) if n != 128 => format!(" {prefix} {n}"),
        _ => String::new(),
    };
    if fmt.rule {
        let _ = write!(o, "-A {name} -s {}", sp.scheduler);
        if let Some(t) = sp.persistent {
            let _ = write!(o, " -p {t}{}", mask("-M"));
        }
        if let Some(pe) = sp.pe.as_deref().filter(|p| !p.is_empty()) {
            let _ = write!(o, " --pe {pe}");
        }
        if sp.ops {
            o.push_str(" -o");
        }
        if sp.sched_flags & SCHED_BITS != 0 {
            let _ = write!(o, " -b {}", sched_flag_words(&sp.scheduler, sp.sched_flags));
        }
    } else if fmt.stats {
        let st = &s.stats;
        let _ = write!(
            o,
            "{name:<33}{}{}{}{}{}",
            ln(st.conns),
            ln(st.inpkts),
            ln(st.outpkts),
            ln(st.inbytes),
            ln(st.outbytes)
        );
    } else if fmt.rate {
        let r = &s.rates;
        let _ = write!(
            o,
            "{name:<33}{}{}{}{}{}",
            ln(u64::from(r.cps)),
            ln(u64::from(r.inpps)),
            ln(u64::from(r.outpps)),
            ln(r.inbps),
            ln(r.outbps)
        );
    } else {
        let _ = write!(o, "{name} {}", sp.scheduler);
        if sp.sched_flags & SCHED_BITS != 0 {
            let _ = write!(o, " ({})", sched_flag_words(&sp.scheduler, sp.sched_flags));
        }
        if let Some(t) = sp.persistent {
            let _ = write!(o, " persistent {t}{}", mask("mask"));
            if let Some(pe) = sp.pe.as_deref().filter(|p| !p.is_empty()) {
                let _ = write!(o, " pe {pe}");
            }
        }
        if sp.ops {
            o.push_str(" ops");
        }
    }
    o.push('\n');

    let mut dests: Vec<&DestInfo> = s.dests.iter().collect();
    if !fmt.nosort {
        msort(&mut dests, &|a, b| cmp_dests(a, b));
    }
    let proto = svc_proto(&sp.key);
    for d in dests {
        let e = &d.spec;
        let mut dname = addrport(e.addr, e.port, Some(proto), fmt.numeric, names);
        if !fmt.rule && e.addr.is_ipv4() {
            dname = truncate(dname, 28);
        }
        if fmt.rule {
            let _ = write!(
                o,
                "-a {name} -r {dname} {} -w {}",
                fwd_switch(e.method),
                e.weight
            );
            if e.method == Method::Tun {
                let c = |n: u8| CSUM_OPTS.get(usize::from(n)).copied().unwrap_or("");
                match e.tun {
                    None => o.push_str(" --tun-type ipip"),
                    Some(t) => match t.kind {
                        TunType::Ipip => o.push_str(" --tun-type ipip"),
                        TunType::Gue => {
                            let _ =
                                write!(o, " --tun-type gue --tun-port {} {}", t.port, c(t.csum));
                        }
                        TunType::Gre => {
                            let _ = write!(o, " --tun-type gre {}", c(t.csum));
                        }
                    },
                }
            }
            o.push('\n');
        } else if fmt.stats {
            let st = &d.stats;
            let _ = writeln!(
                o,
                "  -> {dname:<28}{}{}{}{}{}",
                ln(st.conns),
                ln(st.inpkts),
                ln(st.outpkts),
                ln(st.inbytes),
                ln(st.outbytes)
            );
        } else if fmt.rate {
            let r = &d.rates;
            let _ = writeln!(
                o,
                "  -> {dname:<28} {:>8} {:>8} {:>8}{}{}",
                r.cps,
                r.inpps,
                r.outpps,
                ln(r.inbps),
                ln(r.outbps)
            );
        } else if fmt.thresholds {
            let _ = writeln!(
                o,
                "  -> {dname:<28} {:<10} {:<10} {:<10} {:<10}",
                e.u_threshold, e.l_threshold, d.active, d.inactive
            );
        } else if fmt.persistent_conn {
            let _ = writeln!(
                o,
                "  -> {dname:<28} {:<9} {:<11} {:<10} {:<10}",
                e.weight as u32, d.persist, d.active, d.inactive
            );
        } else if fmt.tun_info {
            let _ = writeln!(
                o,
                "  -> {dname:<28} {:<7} {:<13} {:<6} {:<10} {:<10}",
                fwd_name(e.method),
                tun_info(d),
                e.weight,
                d.active,
                d.inactive
            );
        } else {
            let _ = writeln!(
                o,
                "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}",
                fwd_name(e.method),
                e.weight,
                d.active,
                d.inactive
            );
        }
    }
    o
}

fn sorted<'a>(services: &'a [ServiceInfo], fmt: &Format) -> Vec<&'a ServiceInfo> {
    let mut v: Vec<&ServiceInfo> = services.iter().collect();
    if !fmt.nosort {
        msort(&mut v, &|a, b| cmp_services(&a.spec.key, &b.spec.key));
    }
    v
}

/// `ipvsadm -L`: the version line, the title, every service.
pub fn list_all(info: &Info, services: &[ServiceInfo], fmt: &Format, names: &dyn Names) -> String {
    let mut o = format!(
        "IP Virtual Server version {} (size={})\n",
        info.version, info.conn_tab_size
    );
    o.push_str(&title(fmt));
    for s in sorted(services, fmt) {
        o.push_str(&service_entry(s, fmt, names));
    }
    o
}

/// `ipvsadm -L -t svc`: no version line.
pub fn list_service(s: &ServiceInfo, fmt: &Format, names: &dyn Names) -> String {
    let mut o = title(fmt);
    o.push_str(&service_entry(s, fmt, names));
    o
}

/// `ipvsadm -S [-n]`.
pub fn save(services: &[ServiceInfo], numeric: bool, names: &dyn Names) -> String {
    let fmt = Format {
        numeric,
        rule: true,
        ..Format::default()
    };
    sorted(services, &fmt)
        .into_iter()
        .map(|s| service_entry(s, &fmt, names))
        .collect()
}

/// `ipvsadm -L -c`: ipvsadm's reading of /proc/net/ip_vs_conn.
pub fn connections(conns: &[ConnInfo], fmt: &Format, names: &dyn Names) -> String {
    let mut o = String::from("IPVS connection entries\n");
    if fmt.persistent_conn {
        let _ = writeln!(
            o,
            "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} pe_data",
            "state", "source", "virtual", "destination", "pe name"
        );
    } else {
        let _ = writeln!(
            o,
            "pro expire {:<11} {:<18} {:<18} destination",
            "state", "source", "virtual"
        );
    }
    for c in conns {
        let (pname, proto) = match c.proto {
            ConnProto::Tcp => ("TCP", Some(Proto::Tcp)),
            ConnProto::Udp => ("UDP", Some(Proto::Udp)),
            ConnProto::Sctp => ("SCTP", Some(Proto::Sctp)),
            ConnProto::Ip => ("IP", None),
        };
        let secs = c.expires_ms / 1000;
        let expire = format!("{:02}:{:02}", secs / 60, secs % 60);
        let a = |ip, port| addrport(ip, port, proto, fmt.numeric, names);
        let _ = writeln!(
            o,
            "{pname:<3} {expire:<6} {:<11} {:<18} {:<18} {}",
            c.state,
            a(c.caddr, c.cport),
            a(c.vaddr, c.vport),
            a(c.daddr, c.dport)
        );
    }
    o
}

/// `ipvsadm -L --timeout`.
pub fn timeouts(t: &Timeouts) -> String {
    format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        t.tcp, t.tcpfin, t.udp
    )
}

/// `ipvsadm -L --daemon`: a line per running daemon, master first, as
/// ipvsadm's print_daemon words it. ipvsadm leaves out what an old kernel
/// does not report, which reaches it as 0; a 0 here is left out alike.
pub fn daemons(list: &[DaemonInfo]) -> String {
    let mut o = String::new();
    for role in [SyncRole::Master, SyncRole::Backup] {
        for d in list.iter().filter(|d| d.role == role) {
            let word = match role {
                SyncRole::Master => "master",
                SyncRole::Backup => "backup",
            };
            let _ = write!(
                o,
                "{word} sync daemon (mcast={}, syncid={}",
                d.mcast_ifn, d.syncid
            );
            if d.maxlen != 0 {
                let _ = write!(o, ", maxlen={}", d.maxlen);
            }
            let _ = write!(o, ", group={}", ntop(d.group));
            if d.port != 0 {
                let _ = write!(o, ", port={}", d.port);
            }
            if d.ttl != 0 {
                let _ = write!(o, ", ttl={}", d.ttl);
            }
            o.push_str(")\n");
        }
    }
    o
}

/// `--defence`: the values as `/proc/sys/net/ipv4/vs/*` holds them, one
/// `name value` line each (an automatic mode reads 2 while it is on), then
/// each worker's own state and table.
pub fn defence(i: &ctrl_api::DefenceInfo) -> String {
    let mut o = format!(
        "drop_entry {}\ndrop_packet {}\nsecure_tcp {}\nam_droprate {}\ntable_threshold {:.3}\n",
        i.drop_entry,
        i.drop_packet,
        i.secure_tcp,
        i.am_droprate,
        f64::from(i.table_threshold_permille) / 1000.0
    );
    let line = |c: [&dyn std::fmt::Display; 7]| {
        format!(
            "{:<7} {:>10} {:>10} {:>10} {:>11} {:>10} {:>8}\n",
            c[0], c[1], c[2], c[3], c[4], c[5], c[6]
        )
    };
    o.push_str(&line([
        &"Worker",
        &"Conns",
        &"Capacity",
        &"drop_entry",
        &"drop_packet",
        &"secure_tcp",
        &"DropRate",
    ]));
    for (n, w) in i.workers.iter().enumerate() {
        o.push_str(&line([
            &n,
            &w.conns,
            &w.capacity,
            &w.drop_entry,
            &w.drop_packet,
            &w.secure_tcp,
            &w.drop_rate,
        ]));
    }
    o
}

/// One `--vrrp` line; the header and the rows share this format, so
/// their widths cannot drift apart.
fn vrrp_line(cols: [&dyn std::fmt::Display; 10]) -> String {
    let [name, port, vrid, ver, state, prio, master, sent, received, trans] = cols;
    format!(
        "{name:<16} {port:<6} {vrid:>4} {ver:>3} {state:<7} {prio:>4} {master:<15} {sent:>6} {received:>10} {trans:>5}\n"
    )
}

/// `--vrrp`: a title, a header, a row per instance in the daemon's order,
/// then a line per instance that ignored adverts, by reason.
pub fn vrrp(list: &[VrrpInfo]) -> String {
    let mut o = String::from("VRRP instances\n");
    o.push_str(&vrrp_line([
        &"Name",
        &"Port",
        &"VRID",
        &"Ver",
        &"State",
        &"Prio",
        &"Master",
        &"Sent",
        &"Received",
        &"Trans",
    ]));
    for v in list {
        let master = v.master.map_or_else(|| "-".to_string(), |m| m.to_string());
        o.push_str(&vrrp_line([
            &v.name,
            &v.port,
            &v.vrid,
            &format!("v{}", v.version),
            &v.state.name(),
            &v.priority,
            &master,
            &v.stats.adverts_sent,
            &v.stats.adverts_received,
            &v.stats.transitions,
        ]));
    }
    for v in list.iter().filter(|v| !v.stats.rejected.is_empty()) {
        let why: Vec<String> = v
            .stats
            .rejected
            .iter()
            .map(|(reason, n)| format!("{reason} {n}"))
            .collect();
        let _ = writeln!(o, "  {}: ignored {}", v.name, why.join(", "));
    }
    o
}

/// `ipvsadm -v`.
pub fn version() -> String {
    "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n".to_string()
}

/// ipvsadm 1.31's usage text; `%s` is the program name.
const USAGE: &str = "Usage:
  %s -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]
  %s -D virtual-service
  %s -C
  %s -R
  %s -S [-n]
  %s -a|e virtual-service -r server-address [options]
  %s -d virtual-service -r server-address
  %s -L|l [virtual-service] [options]
  %s -Z [virtual-service]
  %s --set tcp tcpfin udp
  %s --start-daemon {master|backup} [daemon-options]
  %s --stop-daemon {master|backup}
  %s -h

Commands:
Either long or short options are allowed.
  --add-service     -A        add virtual service with options
  --edit-service    -E        edit virtual service with options
  --delete-service  -D        delete virtual service
  --clear           -C        clear the whole table
  --restore         -R        restore rules from stdin
  --save            -S        save rules to stdout
  --add-server      -a        add real server with options
  --edit-server     -e        edit real server with options
  --delete-server   -d        delete real server
  --list            -L|-l     list the table
  --zero            -Z        zero counters in a service or all services
  --set tcp tcpfin udp        set connection timeout values
  --start-daemon              start connection sync daemon
  --stop-daemon               stop connection sync daemon
  --help            -h        display this help message

virtual-service:
  --tcp-service|-t  service-address   service-address is host[:port]
  --udp-service|-u  service-address   service-address is host[:port]
  --sctp-service    service-address   service-address is host[:port]
  --fwmark-service|-f fwmark          fwmark is an integer greater than zero

Options:
  --ipv6         -6                   fwmark entry uses IPv6
  --scheduler    -s scheduler         one of rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh,
                                      the default scheduler is wlc.
  --pe            engine              alternate persistence engine may be sip,
                                      not set by default.
  --persistent   -p [timeout]         persistent service
  --netmask      -M netmask           persistent granularity mask
  --real-server  -r server-address    server-address is host (and port)
  --gatewaying   -g                   gatewaying (direct routing) (default)
  --ipip         -i                   ipip encapsulation (tunneling)
  --masquerading -m                   masquerading (NAT)
  --tun-type      type                one of ipip|gue|gre,
                                      the default tunnel type is ipip.
  --tun-port      port                tunnel destination port
  --tun-nocsum                        tunnel encapsulation without checksum
  --tun-csum                          tunnel encapsulation with checksum
  --tun-remcsum                       tunnel encapsulation with remote checksum
  --weight       -w weight            capacity of real server
  --u-threshold  -x uthreshold        upper threshold of connections
  --l-threshold  -y lthreshold        lower threshold of connections
  --connection   -c                   output of current IPVS connections
  --timeout                           output of timeout (tcp tcpfin udp)
  --daemon                            output of daemon information
  --stats                             output of statistics information
  --rate                              output of rate information
  --exact                             expand numbers (display exact values)
  --thresholds                        output of thresholds information
  --persistent-conn                   output of persistent connection info
  --tun-info                          output of tunnel information
  --nosort                            disable sorting output of service/server entries
  --sort                              does nothing, for backwards compatibility
  --ops          -o                   one-packet scheduling
  --numeric      -n                   numeric output of addresses and ports
  --sched-flags  -b flags             scheduler flags (comma-separated)
Daemon Options:
  --syncid sid                        syncid for connection sync (default=255)
  --sync-maxlen length                Max sync message length (default=1472)
  --mcast-interface interface         multicast interface for connection sync
  --mcast-group address               IPv4/IPv6 group (default=224.0.0.81)
  --mcast-port port                   UDP port (default=8848)
  --mcast-ttl ttl                     Multicast TTL (default=1)
";

/// `ipvsadm -h`: the version line and the usage, with the program name
/// as invoked (ipvsadm prints its `argv[0]`).
pub fn usage(p: &str) -> String {
    version() + &USAGE.replace("%s", p)
}

const RIPVS_HELP: &str = "%s: ipvsadm 1.31 for ripvsd. Everything `%s -h` lists works as in
ipvsadm.

Extra options:
  --socket PATH   ripvsd's control socket (default: $RIPVS_SOCKET, else %d)
  --json          with -L: print ripvsd's answer as JSON
  --reload        make ripvsd re-read its configuration file
  --health        health-check state of every checked real server (with
                  -n, --json, and -t/-u/-f SERVICE for one service)
  --sync-full     full sync-table transfer: a backup sync daemon asks its
                  master for the whole connection table, a master sends it
  --defence [name=value ...]
                  the overload defences (drop_entry, drop_packet, secure_tcp
                  0..3, am_droprate, table_threshold), set and shown as
                  /proc/sys/net/ipv4/vs would (with --json: as JSON)
  --vrrp          the VRRP instances: state, master, advert counters (with
                  --json: ripvsd's whole answer)
  --help-ripvs    display this help message
";

/// `--help-ripvs`: what ripvsadm adds to ipvsadm.
pub fn ripvs_help(p: &str) -> String {
    RIPVS_HELP
        .replace("%s", p)
        .replace("%d", ctrl_api::DEFAULT_SOCKET)
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of a time in ms since the epoch.
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `--health`: one line per service (what a failure does, and its sorry
/// server), one per checked real server, in the daemon's order (the
/// config's). Fixed columns as ipvsadm's listing; the last one, the
/// latest verdict, runs to the end of the line.
pub fn health(services: &[HealthService], numeric: bool, names: &dyn Names) -> String {
    let fmt = Format {
        numeric,
        ..Format::default()
    };
    let mut o = String::from(
        "Prot LocalAddress:Port OnFailure [SorryServer State]\n  -> RemoteAddress:Port           Check State Weight Streak   Since (UTC)         LastResult\n",
    );
    for s in services {
        let proto = match s.key {
            SvcKey::Addr { proto, .. } => Some(proto),
            SvcKey::Fwmark { .. } => None,
        };
        let _ = write!(
            o,
            "{} {}",
            svc_name(&s.key, &fmt, names),
            if s.quiescent { "quiescent" } else { "remove" }
        );
        if let Some(sorry) = &s.sorry {
            let _ = write!(
                o,
                " {} {}",
                addrport(sorry.addr, sorry.port, proto, numeric, names),
                if sorry.active { "active" } else { "standby" }
            );
        }
        o.push('\n');
        for d in &s.dests {
            let streak = match (d.failures, d.successes) {
                (0, 0) => "-".to_string(),
                (0, n) => format!("{n} ok"),
                (n, _) => format!("{n} fail"),
            };
            let last = match &d.last {
                None => "-".to_string(),
                Some(r) => match &r.failure {
                    None => "ok".to_string(),
                    Some(why) => format!("failed: {why}"),
                },
            };
            let _ = writeln!(
                o,
                "  -> {:<28} {:<5} {:<5} {:<6} {:<8} {:<19} {last}",
                addrport(d.addr, d.port, proto, numeric, names),
                d.checker,
                if d.up { "up" } else { "down" },
                d.weight,
                streak,
                utc(d.since_ms),
            );
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctrl_api::{VrrpState, VrrpStats};

    #[allow(clippy::too_many_arguments)]
    fn vi(
        name: &str,
        port: &str,
        vrid: u8,
        version: u8,
        state: VrrpState,
        priority: u8,
        master: Option<&str>,
        counts: (u64, u64, u64),
        rejected: &[(&str, u64)],
    ) -> VrrpInfo {
        VrrpInfo {
            name: name.into(),
            port: port.into(),
            vrid,
            version,
            state,
            priority,
            advert_int_cs: 100,
            master_advert_int_cs: 100,
            preempt: true,
            master: master.map(|m| m.parse().unwrap()),
            master_priority: priority,
            addresses: vec![],
            unicast_peers: vec![],
            since_ms: 0,
            stats: VrrpStats {
                adverts_sent: counts.0,
                adverts_received: counts.1,
                transitions: counts.2,
                rejected: rejected.iter().map(|(r, n)| (r.to_string(), *n)).collect(),
                ..VrrpStats::default()
            },
        }
    }

    const HEADER: &str = "VRRP instances\nName             Port   VRID Ver State   Prio Master            Sent   Received Trans\n";

    #[test]
    fn vrrp_listing_exact_bytes() {
        let list = [
            vi(
                "VI_1",
                "p0",
                51,
                3,
                VrrpState::Master,
                150,
                Some("10.60.0.1"),
                (1234, 5, 2),
                &[],
            ),
            // Inserted out of order: printed in the map's (sorted) order.
            vi(
                "VI_2",
                "p1",
                52,
                2,
                VrrpState::Backup,
                100,
                Some("10.61.0.4"),
                (0, 817, 1),
                &[("unknown_vrid", 1), ("bad_ttl", 3)],
            ),
            vi(
                "vi_edge_uplink_1",
                "uplink",
                255,
                3,
                VrrpState::Fault,
                255,
                None,
                (18_446_744_073_709_551_615, 0, 3),
                &[("bad_auth", 12)],
            ),
            vi(
                "VI_NEW",
                "p3",
                1,
                2,
                VrrpState::Init,
                1,
                Some("255.255.255.254"),
                (0, 0, 0),
                &[],
            ),
        ];
        let want = String::from(HEADER)
            + "VI_1             p0       51  v3 MASTER   150 10.60.0.1         1234          5     2\n"
            + "VI_2             p1       52  v2 BACKUP   100 10.61.0.4            0        817     1\n"
            + "vi_edge_uplink_1 uplink  255  v3 FAULT    255 -               18446744073709551615          0     3\n"
            + "VI_NEW           p3        1  v2 INIT       1 255.255.255.254      0          0     0\n"
            + "  VI_2: ignored bad_ttl 3, unknown_vrid 1\n"
            + "  vi_edge_uplink_1: ignored bad_auth 12\n";
        assert_eq!(vrrp(&list), want);
    }

    #[test]
    fn vrrp_listing_without_instances() {
        assert_eq!(vrrp(&[]), HEADER);
    }
}
