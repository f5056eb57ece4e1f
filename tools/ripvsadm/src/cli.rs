//! ipvsadm 1.31's command line: popt's tokenising, then ipvsadm's own
//! option processing and checks, in ipvsadm's order, so the first error
//! a user sees is the one ipvsadm would print.

use crate::names::{c_atoi, c_strtol_whole, inet_aton, string_to_number, Names};
use ctrl_api::{
    sched_flags, Command, DaemonConfig, DestSpec, Method, Netmask, Proto, SvcKey, SvcSpec,
    SyncRole, TunSpec, TunType,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest persistence or protocol timeout ipvsadm accepts (31 days).
pub const MAX_TIMEOUT: i64 = 86400 * 31;
/// `-p` without a value: libipvs's IPVS_SVC_PERSISTENT_TIMEOUT.
pub const DEFAULT_PERSISTENT: u32 = 360;
/// ipvsadm copies at most this many bytes of `-s` (IP_VS_SCHEDNAME_MAXLEN - 1).
const SCHED_NAME_MAX: usize = 15;
/// ... and of `--mcast-interface` (IP_VS_IFNAME_MAXLEN - 1).
const IFNAME_MAX: usize = 15;
/// The interface ipvsadm sends when `--start-daemon` has no
/// `--mcast-interface` (its DEF_MCAST_IFN).
pub const DEFAULT_MCAST_IFN: &str = "eth0";
/// Largest `--sync-maxlen`: the UDP payload of a 65535-byte IPv4 datagram.
const SYNC_MAXLEN_MAX: i64 = 65535 - 20 - 8;

/// A refusal: what goes to stderr (complete lines) and the exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fail {
    pub code: i32,
    pub text: String,
}

impl Fail {
    /// ipvsadm's `fail(2, ...)`.
    pub fn two(msg: impl Into<String>) -> Self {
        let mut text = msg.into();
        text.push('\n');
        Fail { code: 2, text }
    }

    /// ipvsadm's `tryhelp_exit(argv[0], -1)`.
    pub fn tryhelp(program: &str) -> Self {
        Fail {
            code: 255,
            text: format!("Try `{program} -h' or '{program} --help' for more information.\n"),
        }
    }
}

/// Which listing layout; ipvsadm's FMT_* bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Format {
    pub numeric: bool,
    pub stats: bool,
    pub rate: bool,
    pub thresholds: bool,
    pub persistent_conn: bool,
    pub tun_info: bool,
    pub nosort: bool,
    pub exact: bool,
    /// `-S`: rules instead of a table.
    pub rule: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListWhat {
    All,
    Service(SvcKey),
    Connections,
    Timeouts,
    /// `--daemon`: the running sync daemons.
    Daemons,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    pub what: ListWhat,
    pub fmt: Format,
    /// ripvs extra: print the daemon's answer as JSON.
    pub json: bool,
}

/// What one command line (or one `-R` line) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Apply(Command),
    List(List),
    Save {
        numeric: bool,
    },
    Restore,
    Usage,
    Version,
    RipvsHelp,
    Reload,
    /// ripvs extra: health-check state of one service or all.
    Health {
        svc: Option<SvcKey>,
        numeric: bool,
        json: bool,
    },
    StartDaemon(DaemonConfig),
    /// `--stop-daemon`; a `--syncid` with it is accepted and ignored, as
    /// the kernel does.
    StopDaemon(SyncRole),
    /// ripvs extra: a full sync-table transfer.
    SyncFull,
    /// ripvs extra: the VRRP instances (`-n` is accepted and changes
    /// nothing: their addresses are always numeric).
    Vrrp {
        json: bool,
    },
    /// ripvs extra: the overload defences, with `name=value` words to set
    /// (`drop_entry=1`, as `sysctl -w net.ipv4.vs.drop_entry=1` would).
    Defence {
        set: ctrl_api::DefenceSet,
        json: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub action: Action,
    /// `--socket PATH`, if given.
    pub socket: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArgKind {
    None,
    Required,
    Optional,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Id {
    Cmd(Cmd),
    Tcp,
    Udp,
    Sctp,
    Fwmark,
    Sched,
    Persistent,
    Netmask,
    Real,
    Masq,
    Ipip,
    Gate,
    Weight,
    UThr,
    LThr,
    Numeric,
    Connection,
    Timeout,
    Stats,
    Rate,
    Thresholds,
    PersistConn,
    NoSort,
    Sort,
    Exact,
    Ipv6,
    Ops,
    Pe,
    SchedFlags,
    TunInfo,
    TunType,
    TunPort,
    TunNocsum,
    TunCsum,
    TunRemcsum,
    Socket,
    Json,
    McastIfn,
    Syncid,
    Daemon,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Add,
    Edit,
    Del,
    Flush,
    List,
    AddDest,
    DelDest,
    EditDest,
    Set,
    StartDaemon,
    StopDaemon,
    Restore,
    Save,
    Zero,
    Help,
    Version,
    Reload,
    Health,
    HelpRipvs,
    SyncFull,
    Vrrp,
    Defence,
}

impl Cmd {
    fn name(self) -> &'static str {
        match self {
            Cmd::Add => "add-service",
            Cmd::Edit => "edit-service",
            Cmd::Del => "delete-service",
            Cmd::Flush => "flush",
            Cmd::List => "list",
            Cmd::AddDest => "add-server",
            Cmd::DelDest => "delete-server",
            Cmd::EditDest => "edit-server",
            Cmd::Set => "set",
            Cmd::StartDaemon => "start-daemon",
            Cmd::StopDaemon => "stop-daemon",
            Cmd::Restore => "restore",
            Cmd::Save => "save",
            Cmd::Zero => "zero",
            Cmd::Help => "help",
            Cmd::Version => "version",
            Cmd::Reload => "reload",
            Cmd::Health => "health",
            Cmd::HelpRipvs => "help-ripvs",
            Cmd::SyncFull => "sync-full",
            Cmd::Vrrp => "vrrp",
            Cmd::Defence => "defence",
        }
    }

    /// ipvsadm's commands_v_options row (plus the `json` column):
    /// '+' required, 'x' illegal, '1' at most one of them, ' ' optional.
    fn row(self) -> &'static [u8; NOPT] {
        match self {
            Cmd::Add | Cmd::Edit => b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxxx",
            Cmd::Del => b"xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::List => b" 11xxxxxxxxx11       xxxxxxx xxxxx ",
            Cmd::AddDest | Cmd::EditDest => b"xx+xxx+    xxxxxxxxxxxxxxxxxx     x",
            Cmd::DelDest => b"xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::Save => b" xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::Zero => b"xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::Health => b" x xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx ",
            Cmd::Vrrp | Cmd::Defence => b" xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx ",
            Cmd::StartDaemon => b"xxxxxxxxxxx xxxxxxx xxxx    xxxxxxx",
            Cmd::StopDaemon => b"xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxxx",
            _ => b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        }
    }
}

// Option columns, ipvsadm's OPTC_* order; `json` is ripvs's.
const O_NUMERIC: usize = 0;
const O_CONNECTION: usize = 1;
const O_SERVICE: usize = 2;
const O_SCHEDULER: usize = 3;
const O_PERSISTENT: usize = 4;
const O_NETMASK: usize = 5;
const O_SERVER: usize = 6;
const O_FORWARD: usize = 7;
const O_WEIGHT: usize = 8;
const O_UTHRESHOLD: usize = 9;
const O_LTHRESHOLD: usize = 10;
const O_MCAST: usize = 11;
const O_TIMEOUT: usize = 12;
const O_DAEMON: usize = 13;
const O_STATS: usize = 14;
const O_RATE: usize = 15;
const O_THRESHOLDS: usize = 16;
const O_PERSISTENTCONN: usize = 17;
const O_NOSORT: usize = 18;
const O_SYNCID: usize = 19;
const O_EXACT: usize = 20;
const O_ONEPACKET: usize = 21;
const O_PE: usize = 22;
const O_SCHED_FLAGS: usize = 23;
const O_MCAST_GROUP: usize = 24;
const O_MCAST_PORT: usize = 25;
const O_MCAST_TTL: usize = 26;
const O_SYNC_MAXLEN: usize = 27;
const O_TUN_INFO: usize = 28;
const O_TUN_TYPE: usize = 29;
const O_TUN_PORT: usize = 30;
const O_TUN_NOCSUM: usize = 31;
const O_TUN_CSUM: usize = 32;
const O_TUN_REMCSUM: usize = 33;
const O_JSON: usize = 34;
const NOPT: usize = 35;

const OPTNAMES: [&str; NOPT] = [
    "numeric",
    "connection",
    "service-address",
    "scheduler",
    "persistent",
    "netmask",
    "real-server",
    "forwarding-method",
    "weight",
    "u-threshold",
    "l-threshold",
    "mcast-interface",
    "timeout",
    "daemon",
    "stats",
    "rate",
    "thresholds",
    "persistent-conn",
    "nosort",
    "syncid",
    "exact",
    "ops",
    "pe",
    "sched-flags",
    "mcast-group",
    "mcast-port",
    "mcast-ttl",
    "sync-maxlen",
    "tun-info",
    "tun-type",
    "tun-port",
    "tun-nocsum",
    "tun-csum",
    "tun-remcsum",
    "json",
];

#[derive(Debug)]
struct Spec {
    long: &'static str,
    short: Option<char>,
    arg: ArgKind,
    id: Id,
}

const fn o(long: &'static str, short: Option<char>, arg: ArgKind, id: Id) -> Spec {
    Spec {
        long,
        short,
        arg,
        id,
    }
}

use ArgKind::{None as N, Optional as Opt, Required as Req};

/// ipvsadm 1.31's popt table, then ripvs's extras.
static TABLE: &[Spec] = &[
    o("add-service", Some('A'), N, Id::Cmd(Cmd::Add)),
    o("edit-service", Some('E'), N, Id::Cmd(Cmd::Edit)),
    o("delete-service", Some('D'), N, Id::Cmd(Cmd::Del)),
    o("clear", Some('C'), N, Id::Cmd(Cmd::Flush)),
    o("list", Some('L'), N, Id::Cmd(Cmd::List)),
    o("list", Some('l'), N, Id::Cmd(Cmd::List)),
    o("zero", Some('Z'), N, Id::Cmd(Cmd::Zero)),
    o("add-server", Some('a'), N, Id::Cmd(Cmd::AddDest)),
    o("edit-server", Some('e'), N, Id::Cmd(Cmd::EditDest)),
    o("delete-server", Some('d'), N, Id::Cmd(Cmd::DelDest)),
    o("set", None, N, Id::Cmd(Cmd::Set)),
    o("help", Some('h'), N, Id::Cmd(Cmd::Help)),
    o("version", Some('v'), N, Id::Cmd(Cmd::Version)),
    o("restore", Some('R'), N, Id::Cmd(Cmd::Restore)),
    o("save", Some('S'), N, Id::Cmd(Cmd::Save)),
    o("start-daemon", None, Req, Id::Cmd(Cmd::StartDaemon)),
    o("stop-daemon", None, Req, Id::Cmd(Cmd::StopDaemon)),
    o("tcp-service", Some('t'), Req, Id::Tcp),
    o("udp-service", Some('u'), Req, Id::Udp),
    o("sctp-service", None, Req, Id::Sctp),
    o("fwmark-service", Some('f'), Req, Id::Fwmark),
    o("scheduler", Some('s'), Req, Id::Sched),
    o("persistent", Some('p'), Opt, Id::Persistent),
    o("netmask", Some('M'), Req, Id::Netmask),
    o("real-server", Some('r'), Req, Id::Real),
    o("masquerading", Some('m'), N, Id::Masq),
    o("ipip", Some('i'), N, Id::Ipip),
    o("gatewaying", Some('g'), N, Id::Gate),
    o("weight", Some('w'), Req, Id::Weight),
    o("u-threshold", Some('x'), Req, Id::UThr),
    o("l-threshold", Some('y'), Req, Id::LThr),
    o("numeric", Some('n'), N, Id::Numeric),
    o("connection", Some('c'), N, Id::Connection),
    o("mcast-interface", None, Req, Id::McastIfn),
    o("syncid", None, Req, Id::Syncid),
    o("timeout", None, N, Id::Timeout),
    o("daemon", None, N, Id::Daemon),
    o("stats", None, N, Id::Stats),
    o("rate", None, N, Id::Rate),
    o("thresholds", None, N, Id::Thresholds),
    o("persistent-conn", None, N, Id::PersistConn),
    o("nosort", None, N, Id::NoSort),
    o("sort", None, N, Id::Sort),
    o("exact", Some('X'), N, Id::Exact),
    o("ipv6", Some('6'), N, Id::Ipv6),
    o("ops", Some('o'), N, Id::Ops),
    o("pe", None, Req, Id::Pe),
    o("sched-flags", Some('b'), Req, Id::SchedFlags),
    o("mcast-group", None, Req, Id::McastGroup),
    o("mcast-port", None, Req, Id::McastPort),
    o("mcast-ttl", None, Req, Id::McastTtl),
    o("sync-maxlen", None, Req, Id::SyncMaxlen),
    o("tun-info", None, N, Id::TunInfo),
    o("tun-type", None, Req, Id::TunType),
    o("tun-port", None, Req, Id::TunPort),
    o("tun-nocsum", None, N, Id::TunNocsum),
    o("tun-csum", None, N, Id::TunCsum),
    o("tun-remcsum", None, N, Id::TunRemcsum),
    // ripvs extras.
    o("socket", None, Req, Id::Socket),
    o("json", None, N, Id::Json),
    o("reload", None, N, Id::Cmd(Cmd::Reload)),
    o("health", None, N, Id::Cmd(Cmd::Health)),
    o("help-ripvs", None, N, Id::Cmd(Cmd::HelpRipvs)),
    o("sync-full", None, N, Id::Cmd(Cmd::SyncFull)),
    o("vrrp", None, N, Id::Cmd(Cmd::Vrrp)),
    o("defence", None, N, Id::Cmd(Cmd::Defence)),
];

/// One option as popt returns it (the table entry and its argument), or
/// popt's error with the argv word it names.
#[derive(Debug)]
enum Ev {
    Opt {
        spec: &'static Spec,
        arg: Option<String>,
    },
    Bad {
        word: String,
        err: &'static str,
    },
}

/// The argument an option takes from the next word, `args[*i]`: always
/// for a required one (an error if there is none), only a word that does
/// not start with '-' for an optional one, never otherwise.
fn following(
    kind: ArgKind,
    args: &[String],
    i: &mut usize,
) -> Result<Option<String>, &'static str> {
    let next = args.get(*i);
    let take = match kind {
        ArgKind::None => false,
        ArgKind::Required if next.is_none() => return Err("missing argument"),
        ArgKind::Required => true,
        ArgKind::Optional => next.is_some_and(|n| !n.starts_with('-')),
    };
    if take {
        *i += 1;
    }
    Ok(next.filter(|_| take).cloned())
}

/// popt's scan: options in order (bundles, `=`, optional arguments taken
/// only when the next word does not start with `-`), every other word
/// collected for later, `--` ends options. Stops at the first error, as
/// popt does.
fn tokenise(args: &[String]) -> (Vec<Ev>, Vec<String>, bool) {
    let mut evs = Vec::new();
    let mut rest = Vec::new();
    let mut i = 0;
    let mut only_args = false;
    while i < args.len() {
        let w = &args[i];
        i += 1;
        if only_args || !w.starts_with('-') || w == "-" {
            rest.push(w.clone());
            continue;
        }
        if w == "--" {
            only_args = true;
            continue;
        }
        if let Some(body) = w.strip_prefix("--") {
            let (name, val) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let Some(spec) = TABLE.iter().find(|s| s.long == name) else {
                evs.push(Ev::Bad {
                    word: w.clone(),
                    err: "unknown option",
                });
                return (evs, rest, only_args);
            };
            let arg = match (spec.arg, val) {
                (ArgKind::None, Some(_)) => {
                    evs.push(Ev::Bad {
                        word: w.clone(),
                        err: "option does not take an argument",
                    });
                    return (evs, rest, only_args);
                }
                (_, Some(v)) => Some(v),
                (kind, None) => match following(kind, args, &mut i) {
                    Ok(a) => a,
                    Err(err) => {
                        evs.push(Ev::Bad {
                            word: w.clone(),
                            err,
                        });
                        return (evs, rest, only_args);
                    }
                },
            };
            evs.push(Ev::Opt { spec, arg });
            continue;
        }
        // A bundle of short options; an option taking an argument eats
        // the rest of the word (after one optional '=').
        let mut chars = w[1..].char_indices();
        while let Some((pos, c)) = chars.next() {
            let Some(spec) = TABLE.iter().find(|s| s.short == Some(c)) else {
                evs.push(Ev::Bad {
                    word: w.clone(),
                    err: "unknown option",
                });
                return (evs, rest, only_args);
            };
            let after = &w[1 + pos + c.len_utf8()..];
            let attached = (!after.is_empty()).then(|| after.strip_prefix('=').unwrap_or(after));
            if spec.arg == ArgKind::None {
                evs.push(Ev::Opt { spec, arg: None });
                if let Some(a) = attached {
                    if a.is_empty() {
                        evs.push(Ev::Bad {
                            word: w.clone(),
                            err: "unknown option",
                        });
                        return (evs, rest, only_args);
                    }
                    if a.len() != after.len() {
                        // Skip the '=' popt skips.
                        chars.next();
                    }
                }
                continue;
            }
            let arg = match attached {
                Some(a) => Some(a.to_string()),
                None => match following(spec.arg, args, &mut i) {
                    Ok(a) => a,
                    Err(err) => {
                        evs.push(Ev::Bad {
                            word: w.clone(),
                            err,
                        });
                        return (evs, rest, only_args);
                    }
                },
            };
            evs.push(Ev::Opt { spec, arg });
            break;
        }
    }
    (evs, rest, only_args)
}

/// ipvsadm's `struct ipvs_command_entry` while options are read.
struct St<'a> {
    names: &'a dyn Names,
    cmd: Cmd,
    opts: u64,
    proto: Option<Proto>,
    svc_v6: bool,
    svc_addr: IpAddr,
    svc_port: u16,
    fwmark: u32,
    sched: Option<String>,
    persistent: Option<u32>,
    netmask: Netmask,
    ops: bool,
    pe: Option<String>,
    sched_flags_arg: Option<String>,
    dest_v6: bool,
    dest_addr: IpAddr,
    dest_port: u16,
    method: Method,
    weight: i32,
    u_threshold: u32,
    l_threshold: u32,
    tun_type: TunType,
    tun_port: u16,
    tun_flags: u8,
    fmt: Format,
    daemon: DaemonConfig,
}

impl St<'_> {
    fn set_option(&mut self, o: usize) -> Result<(), Fail> {
        if self.opts & (1 << o) != 0 {
            return Err(Fail::two(format!(
                "multiple '{}' options specified",
                OPTNAMES[o]
            )));
        }
        self.opts |= 1 << o;
        Ok(())
    }

    fn has(&self, o: usize) -> bool {
        self.opts & (1 << o) != 0
    }

    fn key(&self) -> SvcKey {
        if self.fwmark != 0 {
            SvcKey::Fwmark {
                mark: self.fwmark,
                v6: self.svc_v6,
            }
        } else {
            SvcKey::Addr {
                proto: self.proto.unwrap_or(Proto::Tcp),
                addr: self.svc_addr,
                port: self.svc_port,
            }
        }
    }
}

/// ipvsadm's `parse_service`: None when no address could be read; the
/// port is None when the text had none.
pub fn parse_service(
    buf: &str,
    proto: Option<Proto>,
    names: &dyn Names,
) -> Option<(IpAddr, Option<u16>)> {
    if buf.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut host = buf;
    let mut portp: Option<&str> = None;
    if let Some(inner) = buf.strip_prefix('[') {
        let close = inner.find(']')?;
        let after = inner[close + 1..].strip_prefix(':')?;
        host = &inner[..close];
        portp = Some(after);
    }
    let addr = if let Ok(v6) = host.parse::<Ipv6Addr>() {
        IpAddr::V6(v6)
    } else {
        // ipvsadm looks for the port again inside what is left, so
        // "[1.2.3.4]:80" is 1.2.3.4 without a port.
        portp = None;
        if let Some(c) = host.rfind(':') {
            portp = Some(&host[c + 1..]);
            host = &host[..c];
        }
        IpAddr::V4(inet_aton(host).or_else(|| names.host_to_v4(host))?)
    };
    let port = match portp {
        None => None,
        Some(p) => Some(match string_to_number(p, 0, 65535) {
            Some(n) => n as u16,
            None => names.service_to_port(p, proto)?,
        }),
    };
    Some((addr, port))
}

fn parse_timeout(arg: Option<&str>, min: i64, max: i64) -> Result<u32, Fail> {
    let Some(a) = arg else {
        return Ok(DEFAULT_PERSISTENT);
    };
    string_to_number(a, min, max)
        .map(|n| n as u32)
        .ok_or_else(|| Fail::two(format!("invalid timeout value `{a}' specified")))
}

fn parse_fwmark(a: &str) -> Result<u32, Fail> {
    c_strtol_whole(a)
        .filter(|&n| n > 0)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| Fail::two(format!("invalid fwmark value `{a}' specified")))
}

fn parse_sched_flags(sched: &str, arg: &str) -> Result<u32, Fail> {
    let mut flags = 0;
    let mut any = false;
    for flag in arg.split(',').filter(|f| !f.is_empty()) {
        any = true;
        let (bit, only) = match flag {
            "flag-1" => (sched_flags::FLAG_1, None),
            "flag-2" => (sched_flags::FLAG_2, None),
            "flag-3" => (sched_flags::FLAG_3, None),
            "sh-fallback" => (sched_flags::FLAG_1, Some("sh")),
            "sh-port" => (sched_flags::FLAG_2, Some("sh")),
            "mh-fallback" => (sched_flags::FLAG_1, Some("mh")),
            "mh-port" => (sched_flags::FLAG_2, Some("mh")),
            _ => return Err(Fail::two(format!("invalid scheduler flag `{flag}'"))),
        };
        if only.is_some_and(|s| s != sched) {
            return Err(Fail::two(format!("incompatible scheduler flag `{flag}'")));
        }
        flags |= bit;
    }
    if !any {
        return Err(Fail::two(format!("invalid scheduler flag `{arg}'")));
    }
    Ok(flags)
}

/// ipvsadm's `--mcast-group`: an address with a ':' must be IPv6
/// multicast, any other IPv4 multicast, both in inet_pton's strict form
/// (std's parsers are as strict: four decimal parts, no leading zeros).
fn parse_mcast_group(a: &str) -> Result<IpAddr, Fail> {
    if a.contains(':') {
        a.parse::<Ipv6Addr>()
            .ok()
            .filter(Ipv6Addr::is_multicast)
            .map(IpAddr::V6)
            .ok_or_else(|| Fail::two(format!("invalid IPv6 mcast-group `{a}'")))
    } else {
        a.parse::<Ipv4Addr>()
            .ok()
            .filter(Ipv4Addr::is_multicast)
            .map(IpAddr::V4)
            .ok_or_else(|| Fail::two(format!("invalid IPv4 mcast-group `{a}'")))
    }
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Parses a command line (without the program name).
pub fn parse(program: &str, args: &[String], names: &dyn Names) -> Result<Invocation, Fail> {
    parse_words(program, args, names, false)
}

/// Parses one `-R` input line (tokens after removing `ipvsadm`/`ripvsadm`).
pub fn parse_restore_line(
    program: &str,
    tokens: &[String],
    names: &dyn Names,
) -> Result<Action, Fail> {
    parse_words(program, tokens, names, true).map(|i| i.action)
}

fn parse_words(
    program: &str,
    args: &[String],
    names: &dyn Names,
    in_restore: bool,
) -> Result<Invocation, Fail> {
    let (evs, mut rest, dashdash) = tokenise(args);
    let mut socket: Option<String> = None;
    let mut evs = evs.into_iter().peekable();

    // ripvs's --socket may come before the command: it says where the
    // daemon is, not what to do.
    while let Some(Ev::Opt { spec, arg, .. }) = evs.peek() {
        if spec.id != Id::Socket {
            break;
        }
        if in_restore {
            return Err(Fail::two(
                "The 'socket' option is not allowed in restore input",
            ));
        }
        if socket.is_some() {
            return Err(Fail::two("multiple 'socket' options specified"));
        }
        socket = arg.clone();
        evs.next();
    }

    let mut role = SyncRole::Master;
    let cmd = match evs.next() {
        None if rest.is_empty() && !dashdash && !in_restore => {
            // No arguments at all: ipvsadm lists the table.
            return Ok(Invocation {
                action: Action::List(List {
                    what: ListWhat::All,
                    fmt: Format::default(),
                    json: false,
                }),
                socket,
            });
        }
        Some(Ev::Opt { spec, arg, .. }) => match spec.id {
            Id::Cmd(Cmd::Help) => {
                return Ok(Invocation {
                    action: Action::Usage,
                    socket,
                })
            }
            Id::Cmd(Cmd::Version) => {
                return Ok(Invocation {
                    action: Action::Version,
                    socket,
                })
            }
            Id::Cmd(Cmd::HelpRipvs) => {
                return Ok(Invocation {
                    action: Action::RipvsHelp,
                    socket,
                })
            }
            Id::Cmd(c @ (Cmd::StartDaemon | Cmd::StopDaemon)) => {
                role = match arg.as_deref() {
                    Some("master") => SyncRole::Master,
                    Some("backup") => SyncRole::Backup,
                    // Both wordings are ipvsadm's own.
                    _ if c == Cmd::StartDaemon => {
                        return Err(Fail::two("illegal start-daemon parameter specified"))
                    }
                    _ => return Err(Fail::two("illegal start_daemon specified")),
                };
                c
            }
            Id::Cmd(Cmd::Restore) if in_restore => return Err(Fail::tryhelp(program)),
            Id::Cmd(c) => c,
            _ => return Err(Fail::tryhelp(program)),
        },
        _ => return Err(Fail::tryhelp(program)),
    };

    let mut st = St {
        names,
        cmd,
        opts: 0,
        proto: None,
        svc_v6: false,
        svc_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        svc_port: 0,
        fwmark: 0,
        sched: None,
        persistent: None,
        netmask: Netmask::V4(Ipv4Addr::BROADCAST),
        ops: false,
        pe: None,
        sched_flags_arg: None,
        dest_v6: false,
        dest_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        dest_port: 0,
        method: Method::Dr,
        weight: 1,
        u_threshold: 0,
        l_threshold: 0,
        tun_type: TunType::Ipip,
        tun_port: 0,
        tun_flags: 0,
        fmt: Format::default(),
        daemon: DaemonConfig {
            role,
            mcast_ifn: String::new(),
            syncid: 0,
            maxlen: None,
            group: None,
            port: None,
            ttl: None,
        },
    };

    for ev in evs {
        let (spec, arg) = match ev {
            Ev::Bad { word, err } => {
                return Err(Fail {
                    code: 255,
                    text: format!("{word}: {err}\n"),
                })
            }
            Ev::Opt { spec, arg, .. } => (spec, arg),
        };
        let a = arg.as_deref().unwrap_or("");
        match spec.id {
            Id::Cmd(_) => return Err(Fail::two("multiple commands specified")),
            Id::Tcp | Id::Udp | Id::Sctp => {
                st.set_option(O_SERVICE)?;
                st.proto = Some(match spec.id {
                    Id::Tcp => Proto::Tcp,
                    Id::Udp => Proto::Udp,
                    _ => Proto::Sctp,
                });
                let (addr, port) = parse_service(a, st.proto, st.names)
                    .ok_or_else(|| Fail::two("illegal virtual server address[:port] specified"))?;
                st.svc_addr = addr;
                st.svc_v6 = addr.is_ipv6();
                if st.svc_v6 {
                    st.netmask = Netmask::V6(128);
                }
                if let Some(p) = port {
                    st.svc_port = p;
                }
            }
            Id::Fwmark => {
                st.set_option(O_SERVICE)?;
                st.svc_v6 = false;
                st.proto = Some(Proto::Tcp);
                st.fwmark = parse_fwmark(a)?;
            }
            Id::Sched => {
                st.set_option(O_SCHEDULER)?;
                st.sched = Some(truncate(a, SCHED_NAME_MAX));
            }
            Id::Persistent => {
                st.set_option(O_PERSISTENT)?;
                st.persistent = Some(parse_timeout(arg.as_deref(), 1, MAX_TIMEOUT)?);
            }
            Id::Netmask => {
                st.set_option(O_NETMASK)?;
                if !st.svc_v6 {
                    let m = inet_aton(a)
                        .or_else(|| st.names.host_to_v4(a))
                        .ok_or_else(|| {
                            Fail::two("illegal virtual server persistent mask specified")
                        })?;
                    st.netmask = Netmask::V4(m);
                } else {
                    let m = c_atoi(a);
                    if !(1..=128).contains(&m) {
                        return Err(Fail::two("illegal ipv6 netmask specified"));
                    }
                    st.netmask = Netmask::V6(m as u8);
                }
            }
            Id::Real => {
                st.set_option(O_SERVER)?;
                let (addr, port) = parse_service(a, st.proto, st.names)
                    .ok_or_else(|| Fail::two("illegal real server address[:port] specified"))?;
                st.dest_addr = addr;
                st.dest_v6 = addr.is_ipv6();
                st.dest_port = port.unwrap_or(st.svc_port);
            }
            Id::Masq | Id::Ipip | Id::Gate => {
                st.set_option(O_FORWARD)?;
                st.method = match spec.id {
                    Id::Masq => Method::Nat,
                    Id::Ipip => Method::Tun,
                    _ => Method::Dr,
                };
            }
            Id::Weight => {
                st.set_option(O_WEIGHT)?;
                st.weight = string_to_number(a, 0, 65535)
                    .ok_or_else(|| Fail::two("illegal weight specified"))?
                    as i32;
            }
            Id::UThr => {
                st.set_option(O_UTHRESHOLD)?;
                st.u_threshold = string_to_number(a, 0, i64::from(i32::MAX))
                    .ok_or_else(|| Fail::two("illegal u_threshold specified"))?
                    as u32;
            }
            Id::LThr => {
                st.set_option(O_LTHRESHOLD)?;
                st.l_threshold = string_to_number(a, 0, i64::from(i32::MAX))
                    .ok_or_else(|| Fail::two("illegal l_threshold specified"))?
                    as u32;
            }
            Id::Connection => st.set_option(O_CONNECTION)?,
            Id::Numeric => {
                st.set_option(O_NUMERIC)?;
                st.fmt.numeric = true;
            }
            Id::Timeout => st.set_option(O_TIMEOUT)?,
            Id::Stats => {
                st.set_option(O_STATS)?;
                st.fmt.stats = true;
            }
            Id::Rate => {
                st.set_option(O_RATE)?;
                st.fmt.rate = true;
            }
            Id::Thresholds => {
                st.set_option(O_THRESHOLDS)?;
                st.fmt.thresholds = true;
            }
            Id::PersistConn => {
                st.set_option(O_PERSISTENTCONN)?;
                st.fmt.persistent_conn = true;
            }
            Id::NoSort => {
                st.set_option(O_NOSORT)?;
                st.fmt.nosort = true;
            }
            Id::Sort => {}
            Id::Exact => {
                st.set_option(O_EXACT)?;
                st.fmt.exact = true;
            }
            Id::Ipv6 => {
                if st.fwmark == 0 {
                    return Err(Fail::two("-6 used before -f"));
                }
                st.svc_v6 = true;
                st.netmask = Netmask::V6(128);
            }
            Id::Ops => {
                st.set_option(O_ONEPACKET)?;
                st.ops = true;
            }
            Id::Pe => {
                st.set_option(O_PE)?;
                st.pe = Some(a.to_string());
            }
            Id::SchedFlags => {
                st.set_option(O_SCHED_FLAGS)?;
                st.sched_flags_arg = Some(a.to_string());
            }
            Id::TunInfo => {
                st.set_option(O_TUN_INFO)?;
                st.fmt.tun_info = true;
            }
            Id::TunType => {
                st.set_option(O_TUN_TYPE)?;
                st.tun_type = match a {
                    "ipip" => TunType::Ipip,
                    "gue" => TunType::Gue,
                    "gre" => TunType::Gre,
                    _ => return Err(Fail::two("illegal tunnel type specified")),
                };
            }
            Id::TunPort => {
                st.set_option(O_TUN_PORT)?;
                st.tun_port = string_to_number(a, 1, 65535)
                    .ok_or_else(|| Fail::two("illegal tunnel port specified"))?
                    as u16;
            }
            Id::TunNocsum => st.set_option(O_TUN_NOCSUM)?,
            Id::TunCsum => {
                st.set_option(O_TUN_CSUM)?;
                st.tun_flags |= 1;
            }
            Id::TunRemcsum => {
                st.set_option(O_TUN_REMCSUM)?;
                st.tun_flags |= 2;
            }
            Id::Json => st.set_option(O_JSON)?,
            Id::McastIfn => {
                st.set_option(O_MCAST)?;
                st.daemon.mcast_ifn = truncate(a, IFNAME_MAX);
            }
            Id::Syncid => {
                st.set_option(O_SYNCID)?;
                st.daemon.syncid = string_to_number(a, 0, 255)
                    .ok_or_else(|| Fail::two("illegal syncid specified"))?
                    as u8;
            }
            Id::Daemon => st.set_option(O_DAEMON)?,
            Id::McastGroup => {
                st.set_option(O_MCAST_GROUP)?;
                st.daemon.group = Some(parse_mcast_group(a)?);
            }
            Id::McastPort => {
                st.set_option(O_MCAST_PORT)?;
                st.daemon.port = Some(
                    string_to_number(a, 1, 65535)
                        .ok_or_else(|| Fail::two("illegal mcast-port specified"))?
                        as u16,
                );
            }
            Id::McastTtl => {
                st.set_option(O_MCAST_TTL)?;
                st.daemon.ttl = Some(
                    string_to_number(a, 1, 255)
                        .ok_or_else(|| Fail::two("illegal mcast-ttl specified"))?
                        as u8,
                );
            }
            Id::SyncMaxlen => {
                st.set_option(O_SYNC_MAXLEN)?;
                st.daemon.maxlen = Some(
                    string_to_number(a, 1, SYNC_MAXLEN_MAX)
                        .ok_or_else(|| Fail::two("illegal sync-maxlen specified"))?
                        as u16,
                );
            }
            Id::Socket => {
                if in_restore {
                    return Err(Fail::two(
                        "The 'socket' option is not allowed in restore input",
                    ));
                }
                if socket.is_some() {
                    return Err(Fail::two("multiple 'socket' options specified"));
                }
                socket = arg.clone();
            }
        }
    }

    let mut set_values = None;
    if st.cmd == Cmd::Set {
        if rest.len() < 3 {
            return Err(Fail::two("--set option requires 3 timeout values"));
        }
        let v: Vec<String> = rest.drain(..3).collect();
        set_values = Some((
            parse_timeout(Some(&v[0]), 0, MAX_TIMEOUT)?,
            parse_timeout(Some(&v[1]), 0, MAX_TIMEOUT)?,
            parse_timeout(Some(&v[2]), 0, MAX_TIMEOUT)?,
        ));
    }
    let mut defence = ctrl_api::DefenceSet::default();
    if st.cmd == Cmd::Defence {
        defence = parse_defence(&rest)?;
        rest.clear();
    }
    if let Some(w) = rest.first() {
        return Err(Fail::two(format!("unexpected argument {w}")));
    }
    let mut flags = 0;
    if let Some(arg) = st.sched_flags_arg.as_deref().filter(|a| !a.is_empty()) {
        flags = parse_sched_flags(st.sched.as_deref().unwrap_or("wlc"), arg)?;
    }

    generic_opt_check(st.cmd, st.opts)?;

    if matches!(st.cmd, Cmd::Add | Cmd::Edit) {
        if st.fwmark == 0 && st.svc_port == 0 && st.persistent.is_none() {
            return Err(Fail::two("Zero port specified for non-persistent service"));
        }
        if st.ops && st.fwmark == 0 && st.proto != Some(Proto::Udp) {
            return Err(Fail::two(
                "One-Packet Scheduling is only for UDP virtual services",
            ));
        }
    }

    if matches!(st.cmd, Cmd::AddDest | Cmd::EditDest) {
        if st.fwmark == 0 && matches!(st.method, Method::Dr | Method::Tun) {
            st.dest_port = st.svc_port;
        }
        if st.dest_v6 != st.svc_v6 && st.method != Method::Tun {
            return Err(Fail::two(
                "Different address family is allowed only for tunneling servers",
            ));
        }
        let tun_opts = [
            O_TUN_TYPE,
            O_TUN_PORT,
            O_TUN_NOCSUM,
            O_TUN_CSUM,
            O_TUN_REMCSUM,
        ];
        if tun_opts.iter().any(|&o| st.has(o)) && st.method != Method::Tun {
            return Err(Fail::two("Tunnel options conflict with forward method"));
        }
        tunnel_opt_check(st.tun_type, st.opts)?;
    }

    let key = st.key();
    let action = match st.cmd {
        Cmd::Add | Cmd::Edit => {
            let spec = SvcSpec {
                key,
                scheduler: st.sched.clone().unwrap_or_else(|| "wlc".to_string()),
                persistent: st.persistent,
                netmask: st.netmask,
                ops: st.ops,
                pe: st.pe.clone(),
                sched_flags: flags,
            };
            Action::Apply(if st.cmd == Cmd::Add {
                Command::AddService(spec)
            } else {
                Command::EditService(spec)
            })
        }
        Cmd::Del => Action::Apply(Command::DelService(key)),
        Cmd::Flush => Action::Apply(Command::Clear),
        Cmd::Zero => Action::Apply(Command::Zero(st.has(O_SERVICE).then_some(key))),
        Cmd::AddDest | Cmd::EditDest => {
            let tun = match (st.method, st.tun_type) {
                (Method::Tun, TunType::Gue | TunType::Gre) => Some(TunSpec {
                    kind: st.tun_type,
                    port: st.tun_port,
                    csum: st.tun_flags,
                }),
                _ => None,
            };
            let dest = DestSpec {
                addr: st.dest_addr,
                port: st.dest_port,
                method: st.method,
                weight: st.weight,
                u_threshold: st.u_threshold,
                l_threshold: st.l_threshold,
                tun,
            };
            Action::Apply(if st.cmd == Cmd::AddDest {
                Command::AddDest(key, dest)
            } else {
                Command::EditDest(key, dest)
            })
        }
        Cmd::DelDest => Action::Apply(Command::DelDest {
            svc: key,
            addr: st.dest_addr,
            port: st.dest_port,
        }),
        Cmd::Set => {
            let (tcp, tcpfin, udp) = set_values.unwrap_or((0, 0, 0));
            Action::Apply(Command::SetTimeouts { tcp, tcpfin, udp })
        }
        Cmd::List => {
            let o = |x| st.has(x);
            if ((o(O_CONNECTION) || o(O_TIMEOUT) || o(O_DAEMON))
                && (o(O_STATS) || o(O_RATE) || o(O_THRESHOLDS)))
                || ((o(O_TIMEOUT) || o(O_DAEMON)) && o(O_PERSISTENTCONN))
            {
                return Err(Fail::two("options conflicts in the list command"));
            }
            let what = if o(O_CONNECTION) {
                ListWhat::Connections
            } else if o(O_SERVICE) {
                ListWhat::Service(key)
            } else if o(O_TIMEOUT) {
                ListWhat::Timeouts
            } else if o(O_DAEMON) {
                ListWhat::Daemons
            } else {
                ListWhat::All
            };
            Action::List(List {
                what,
                fmt: st.fmt,
                json: o(O_JSON),
            })
        }
        Cmd::Save => Action::Save {
            numeric: st.fmt.numeric,
        },
        Cmd::Restore => Action::Restore,
        Cmd::Reload => Action::Reload,
        Cmd::Health => Action::Health {
            svc: st.has(O_SERVICE).then_some(key),
            numeric: st.fmt.numeric,
            json: st.has(O_JSON),
        },
        Cmd::StartDaemon => {
            let mut cfg = st.daemon.clone();
            // An empty `--mcast-interface ''` too, as ipvsadm tests the
            // length, not whether the option was given.
            if cfg.mcast_ifn.is_empty() {
                cfg.mcast_ifn = DEFAULT_MCAST_IFN.to_string();
            }
            Action::StartDaemon(cfg)
        }
        Cmd::StopDaemon => Action::StopDaemon(st.daemon.role),
        Cmd::SyncFull => Action::SyncFull,
        Cmd::Vrrp => Action::Vrrp {
            json: st.has(O_JSON),
        },
        Cmd::Defence => Action::Defence {
            set: defence,
            json: st.has(O_JSON),
        },
        // Answered before the options were read.
        Cmd::Help | Cmd::Version | Cmd::HelpRipvs => return Err(Fail::tryhelp(program)),
    };
    Ok(Invocation { action, socket })
}

/// `--defence`'s `name=value` words: the sysctls' names, each at most
/// once; `table_threshold` a fraction, the others integers.
fn parse_defence(words: &[String]) -> Result<ctrl_api::DefenceSet, Fail> {
    let mut set = ctrl_api::DefenceSet::default();
    for w in words {
        let Some((name, value)) = w.split_once('=') else {
            return Err(Fail::two(format!(
                "--defence takes name=value settings, not {w}"
            )));
        };
        let int = |max: u64| {
            value
                .parse::<u64>()
                .ok()
                .filter(|&v| v <= max)
                .ok_or_else(|| Fail::two(format!("illegal {name} value {value}")))
        };
        let dup = || Fail::two(format!("{name} given twice"));
        match name {
            "drop_entry" | "drop_packet" | "secure_tcp" => {
                let v = int(3)? as u8;
                let slot = match name {
                    "drop_entry" => &mut set.drop_entry,
                    "drop_packet" => &mut set.drop_packet,
                    _ => &mut set.secure_tcp,
                };
                if slot.replace(v).is_some() {
                    return Err(dup());
                }
            }
            "am_droprate" => {
                let v = int(i32::MAX as u64)? as u32;
                if v == 0 {
                    return Err(Fail::two(format!("illegal {name} value {value}")));
                }
                if set.am_droprate.replace(v).is_some() {
                    return Err(dup());
                }
            }
            "table_threshold" => {
                let v = value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| (0.0..=1.0).contains(v))
                    .ok_or_else(|| Fail::two(format!("illegal {name} value {value}")))?;
                if set
                    .table_threshold_permille
                    .replace((v * 1000.0).round() as u16)
                    .is_some()
                {
                    return Err(dup());
                }
            }
            _ => {
                return Err(Fail::two(format!(
                    "unknown defence setting {name} (drop_entry, drop_packet, secure_tcp, am_droprate, table_threshold)"
                )))
            }
        }
    }
    Ok(set)
}

fn generic_opt_check(cmd: Cmd, opts: u64) -> Result<(), Fail> {
    let row = cmd.row();
    let mut last: Option<usize> = None;
    for (j, &rule) in row.iter().enumerate() {
        if opts & (1 << j) == 0 {
            if rule == b'+' {
                return Err(Fail::two(format!(
                    "You need to supply the '{}' option for the '{}' command",
                    OPTNAMES[j],
                    cmd.name()
                )));
            }
            continue;
        }
        match rule {
            b'x' => {
                return Err(Fail::two(format!(
                    "Illegal '{}' option with the '{}' command",
                    OPTNAMES[j],
                    cmd.name()
                )))
            }
            b'1' => match last {
                None => last = Some(j),
                Some(l) => {
                    return Err(Fail::two(format!(
                        "The option '{}' conflicts with the '{}' option in the '{}' command",
                        OPTNAMES[j],
                        OPTNAMES[l],
                        cmd.name()
                    )))
                }
            },
            _ => {}
        }
    }
    Ok(())
}

fn tunnel_opt_check(kind: TunType, opts: u64) -> Result<(), Fail> {
    let (name, row): (&str, &[u8; 4]) = match kind {
        TunType::Ipip => ("ipip", b"xxxx"),
        TunType::Gue => ("gue", b"+111"),
        TunType::Gre => ("gre", b"x11x"),
    };
    let cols = [O_TUN_PORT, O_TUN_NOCSUM, O_TUN_CSUM, O_TUN_REMCSUM];
    let mut last: Option<usize> = None;
    for (j, &k) in cols.iter().enumerate() {
        if opts & (1 << k) == 0 {
            if row[j] == b'+' {
                return Err(Fail::two(format!(
                    "You need to supply the '{}' option for the '{name}' tunnel type",
                    OPTNAMES[k]
                )));
            }
            continue;
        }
        match row[j] {
            b'x' => {
                return Err(Fail::two(format!(
                    "Illegal '{}' option with the '{name}' tunnel type",
                    OPTNAMES[k]
                )))
            }
            b'1' => match last {
                None => last = Some(k),
                Some(l) => {
                    return Err(Fail::two(format!(
                    "The option '{}' conflicts with the '{}' option in the '{name}' tunnel type",
                    OPTNAMES[k], OPTNAMES[l]
                )))
                }
            },
            _ => {}
        }
    }
    Ok(())
}

/// Splits a `-R` input line as ipvsadm's config_stream does: on blanks
/// and tabs, dropping the words `ipvsadm` and `ripvsadm`.
pub fn restore_tokens(line: &str) -> Vec<String> {
    line.split([' ', '\t', '\r'])
        .filter(|w| !w.is_empty() && *w != "ipvsadm" && *w != "ripvsadm")
        .map(str::to_string)
        .collect()
}
