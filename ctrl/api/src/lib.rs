//! The control protocol between `ripvsd` and its clients (`ripvsadm`).
//!
//! Framing: every message is a 4-byte big-endian length followed by that
//! many bytes of JSON. A client sends one [`Envelope`] and reads one
//! [`Response`]; a connection may carry any number of such exchanges.
//! The server refuses an envelope whose `version` is not [`VERSION`], and
//! drops a peer that announces more than [`MAX_MESSAGE`] bytes.
//!
//! The types mirror what ipvsadm sends to the kernel and gets back, so
//! ripvsadm can reproduce ipvsadm's messages and listings exactly: errors
//! carry the kernel's errno (ipvsadm words its messages by errno and
//! command), services and real servers carry the fields ipvsadm prints.
//! This crate depends on nothing of the data plane: ripvsadm links it and
//! `conf` only.

#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr};

/// Protocol version; bump on any incompatible change. A new request or
/// response is not one: a peer that predates it answers "undecodable"
/// (an `Other` error) instead of misreading it, and every message both
/// know keeps its meaning.
pub const VERSION: u32 = 1;

/// Largest message either side accepts: room for a restore of 100,000
/// real servers in one batch.
pub const MAX_MESSAGE: usize = 64 << 20;

/// Default control socket.
pub const DEFAULT_SOCKET: &str = "/run/ripvs/ripvsd.sock";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Sctp => 132,
        }
    }
}

/// A virtual service, as `-t/-u/--sctp-service ADDR:PORT` or `-f MARK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SvcKey {
    Addr {
        proto: Proto,
        addr: IpAddr,
        port: u16,
    },
    Fwmark {
        mark: u32,
        v6: bool,
    },
}

/// Forwarding method; `Local` exists only in listings of old kernels and
/// is never produced by ripvsd, but ipvsadm's words cover it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    Nat,
    Local,
    Tun,
    Dr,
}

/// Persistence granularity: a dotted mask for IPv4, a prefix length for IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Netmask {
    V4(std::net::Ipv4Addr),
    V6(u8),
}

/// Scheduler flag bits, as IPVS numbers them (reference 1.4).
pub mod sched_flags {
    pub const FLAG_1: u32 = 0x0008;
    pub const FLAG_2: u32 = 0x0010;
    pub const FLAG_3: u32 = 0x0020;
}

/// Everything `-A`/`-E` sends: an edit replaces all of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SvcSpec {
    pub key: SvcKey,
    /// The name as given; the daemon refuses unknown ones (ENOENT).
    pub scheduler: String,
    /// Persistence timeout in seconds; None: not persistent.
    pub persistent: Option<u32>,
    pub netmask: Netmask,
    /// One-packet scheduling (`-o`).
    pub ops: bool,
    /// Persistence engine (`--pe`); ripvsd refuses every one (ENOENT):
    /// it has no SIP engine.
    pub pe: Option<String>,
    /// [`sched_flags`] bits.
    pub sched_flags: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TunType {
    Ipip,
    Gue,
    Gre,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunSpec {
    pub kind: TunType,
    pub port: u16,
    /// 0 nocsum, 1 csum, 2 remcsum (ipvsadm's numbering).
    pub csum: u8,
}

/// Everything `-a`/`-e` sends for a real server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestSpec {
    pub addr: IpAddr,
    pub port: u16,
    pub method: Method,
    pub weight: i32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    /// Tunnel options (`-i` only); None is plain IPIP.
    pub tun: Option<TunSpec>,
}

/// A change. Each is validated completely and applied whole or not at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    AddService(SvcSpec),
    EditService(SvcSpec),
    DelService(SvcKey),
    Clear,
    AddDest(SvcKey, DestSpec),
    EditDest(SvcKey, DestSpec),
    DelDest {
        svc: SvcKey,
        addr: IpAddr,
        port: u16,
    },
    /// Zero the counters of one service (and its real servers) or all.
    Zero(Option<SvcKey>),
    /// `--set tcp tcpfin udp`, seconds; 0 keeps the current value.
    SetTimeouts {
        tcp: u32,
        tcpfin: u32,
        udp: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Apply the commands in order, each on its own (as `ipvsadm -R` runs
    /// its lines): one failing does not stop the rest. The workers see one
    /// new snapshot after the last.
    Apply(Vec<Command>),
    /// Version line data.
    Info,
    /// Services (one, or all) with their real servers, counters and rates.
    Services(Option<SvcKey>),
    Timeouts,
    /// A page of connection entries (and templates). `cursor` None starts
    /// from the beginning; at most `max` entries come back.
    Connections {
        cursor: Option<Cursor>,
        max: u32,
    },
    /// Re-read the config file and apply the difference (ripvs extra).
    Reload,
    /// Health-check state of the checked services (one, or all) (ripvs
    /// extra).
    Health(Option<SvcKey>),
    /// `ipvsadm --start-daemon`: start the sync daemon in one role.
    StartDaemon(DaemonConfig),
    /// `ipvsadm --stop-daemon`.
    StopDaemon(SyncRole),
    /// The running sync daemons (`-L --daemon`), master first.
    Daemons,
    /// A full table transfer (ripvs extra): a backup asks its master for
    /// the whole table, a master sends it.
    SyncFull,
    /// The VRRP instances, in config order (ripvs extra, `--vrrp`).
    Vrrp,
    /// The overload defences (ripvs extra, `--defence`): the values given
    /// are set (all or none), then every value is answered.
    Defence(DefenceSet),
}

/// New values for the overload defences, as sysctl writes: `None` keeps
/// a value. The modes are IPVS's 0 to 3.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefenceSet {
    pub drop_entry: Option<u8>,
    pub drop_packet: Option<u8>,
    pub secure_tcp: Option<u8>,
    pub am_droprate: Option<u32>,
    /// `[defence] table_threshold`, per mille.
    pub table_threshold_permille: Option<u16>,
}

/// The defences as `/proc/sys/net/ipv4/vs/*` would show them: an
/// automatic mode reads 2 while it is on in any worker (the kernel has
/// one table; ripvs has one a worker), and each worker's own state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefenceInfo {
    pub drop_entry: u8,
    pub drop_packet: u8,
    pub secure_tcp: u8,
    pub am_droprate: u32,
    pub table_threshold_permille: u16,
    pub workers: Vec<WorkerDefence>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerDefence {
    pub drop_entry: u8,
    pub drop_packet: u8,
    pub secure_tcp: u8,
    /// drop_packet's current rate: one in this many (0: not dropping).
    pub drop_rate: u32,
    /// The connection table at the last evaluation.
    pub conns: u32,
    pub capacity: u32,
}

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub version: u32,
    pub request: Request,
}

/// The kernel errno a change failed with; ipvsadm words its message from
/// this and the command (reference 1.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Errno {
    Eexist,
    Enoent,
    Esrch,
    Einval,
    Erange,
    Enomem,
    Eperm,
    Eopnotsupp,
    Eafnosupport,
    /// A failure IPVS has no errno for; ripvsadm prints `detail`.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub errno: Errno,
    /// What exactly was wrong, for logs, `Other`, and ripvs's own extras.
    pub detail: String,
}

impl ApiError {
    pub fn new(errno: Errno, detail: impl Into<String>) -> Self {
        ApiError {
            errno,
            detail: detail.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
}

/// The estimator's readout (reference 2.4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rates {
    pub cps: u32,
    pub inpps: u32,
    pub outpps: u32,
    pub inbps: u64,
    pub outbps: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestInfo {
    pub spec: DestSpec,
    pub active: u32,
    pub inactive: u32,
    /// Persistence templates bound to it (PersistConn).
    pub persist: u32,
    pub stats: Stats,
    pub rates: Rates,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub spec: SvcSpec,
    pub stats: Stats,
    pub rates: Rates,
    /// Newest first, as the kernel lists them.
    pub dests: Vec<DestInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    /// IPVS version ripvs mirrors ("1.2.1").
    pub version: String,
    /// Connection hash table size, the `size=` of the version line.
    pub conn_tab_size: u32,
    pub daemon_version: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    pub tcp: u32,
    pub tcpfin: u32,
    pub udp: u32,
}

/// The protocol column of a connection entry; `Ip` is a fwmark template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConnProto {
    Tcp,
    Udp,
    Sctp,
    Ip,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnInfo {
    pub proto: ConnProto,
    pub caddr: IpAddr,
    pub cport: u16,
    /// For fwmark templates, the mark as an address (mark 7 → 0.0.0.7).
    pub vaddr: IpAddr,
    pub vport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
    /// State name as /proc/net/ip_vs_conn prints it (`ESTABLISHED`, `UDP`,
    /// `NONE`, ...).
    pub state: String,
    /// Time left on the entry's timer, milliseconds.
    pub expires_ms: u64,
    pub template: bool,
}

/// Where the next page of connections starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Worker index, or `u32::MAX` for the shared template table.
    pub source: u32,
    pub pos: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnPage {
    pub conns: Vec<ConnInfo>,
    pub next: Option<Cursor>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// One result per command of an `Apply`, in order.
    Applied(Vec<Result<(), ApiError>>),
    Info(Info),
    Services(Vec<ServiceInfo>),
    Timeouts(Timeouts),
    Connections(ConnPage),
    Reloaded,
    /// Checked services in table order, their real servers in config order.
    Health(Vec<HealthService>),
    /// Running sync daemons, master first; empty when none runs.
    Daemons(Vec<DaemonInfo>),
    /// VRRP instances in config order; empty when none is configured.
    Vrrp(Vec<VrrpInfo>),
    Defence(DefenceInfo),
    /// A `StartDaemon`, `StopDaemon` or `SyncFull` that succeeded. They
    /// fail as [`Response::Error`]: `Eexist` for a role already running,
    /// `Esrch` for stopping one that is not, `Einval` for bad values,
    /// `Other` (with `detail`) for anything IPVS has no errno for.
    Done,
    /// The request as a whole failed (bad version, undecodable, a listing
    /// of a service that does not exist: `Esrch`).
    Error(ApiError),
}

/// A service with health-checked real servers or a sorry server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthService {
    pub key: SvcKey,
    /// A failed server is set to weight 0 (`true`) or removed.
    pub quiescent: bool,
    pub sorry: Option<SorryInfo>,
    pub dests: Vec<HealthDest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SorryInfo {
    pub addr: IpAddr,
    pub port: u16,
    /// In the table now: no real server is available.
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthDest {
    pub addr: IpAddr,
    pub port: u16,
    /// `tcp`, `http`, `udp` or `exec`.
    pub checker: String,
    pub up: bool,
    /// The weight the server has, or gets back when it recovers: the
    /// configured one, or the last one an operator set.
    pub weight: i32,
    /// Consecutive failed / passed checks so far.
    pub failures: u32,
    pub successes: u32,
    /// The latest verdict; `None` before the first check.
    pub last: Option<CheckResult>,
    /// When the state last changed (or checking began), ms since the epoch.
    pub since_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// `None`: passed; otherwise why it failed.
    pub failure: Option<String>,
    /// ms since the epoch.
    pub at_ms: u64,
}

/// A sync daemon's role; a node may run both at once (IPVS `sync_state`
/// is a bitmask).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRole {
    Master,
    Backup,
}

/// `ipvsadm --start-daemon`: what the operator gave. `None` is
/// ipvsadm's "not given": the kernel's default applies, and the daemon
/// fills it in, since only it knows the interface's MTU (the backup's
/// default maxlen) and ripvs's own defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonConfig {
    pub role: SyncRole,
    /// Kernel interface the multicast goes through; ipvsadm sends `eth0`
    /// when `--mcast-interface` is not given.
    pub mcast_ifn: String,
    /// Stamped on every message by a master; a backup with a syncid other
    /// than 0 ignores messages with another.
    pub syncid: u8,
    /// UDP payload bytes per message.
    pub maxlen: Option<u16>,
    pub group: Option<IpAddr>,
    pub port: Option<u16>,
    pub ttl: Option<u8>,
}

/// A VRRP instance's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VrrpState {
    Init,
    Backup,
    Master,
    /// Its port's link is down: it neither sends nor answers.
    Fault,
}

impl VrrpState {
    /// keepalived's upper-case name, as its logs and notify scripts use.
    pub fn name(self) -> &'static str {
        match self {
            VrrpState::Init => "INIT",
            VrrpState::Backup => "BACKUP",
            VrrpState::Master => "MASTER",
            VrrpState::Fault => "FAULT",
        }
    }
}

/// One VRRP instance as `--vrrp` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VrrpInfo {
    pub name: String,
    /// The `[[ports]]` name its adverts use.
    pub port: String,
    pub vrid: u8,
    /// 2 or 3.
    pub version: u8,
    pub state: VrrpState,
    /// Its configured priority (255: the addresses' owner).
    pub priority: u8,
    /// This director's advert interval, centiseconds.
    pub advert_int_cs: u16,
    /// The master's interval as learned from its adverts (v3), cs.
    pub master_advert_int_cs: u16,
    pub preempt: bool,
    /// The current master's primary address: this director's own while
    /// it is master, `None` while no master is known.
    pub master: Option<Ipv4Addr>,
    /// The master's priority as last advertised (own while master).
    pub master_priority: u8,
    pub addresses: Vec<Ipv4Addr>,
    /// Unicast peers; empty: multicast to 224.0.0.18.
    pub unicast_peers: Vec<Ipv4Addr>,
    /// Milliseconds since the last transition.
    pub since_ms: u64,
    pub stats: VrrpStats,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VrrpStats {
    pub adverts_sent: u64,
    pub adverts_received: u64,
    /// Every change of state, INIT to BACKUP included.
    pub transitions: u64,
    pub became_master: u64,
    /// Adverts with priority 0 sent (stopping while master) and received.
    pub priority_zero_sent: u64,
    pub priority_zero_received: u64,
    pub gratuitous_arps: u64,
    /// Adverts ignored, by reason (counter name -> count): bad_ttl,
    /// bad_version, bad_checksum, bad_length, bad_count, bad_auth,
    /// bad_interval (v2), bad_type, unknown_vrid (counted on every
    /// instance of the port), address_mismatch (counted, accepted).
    pub rejected: std::collections::BTreeMap<String, u64>,
}

/// A running sync daemon as `-L --daemon` shows it, and its counters
/// (`--json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonInfo {
    pub role: SyncRole,
    pub mcast_ifn: String,
    pub syncid: u8,
    pub maxlen: u16,
    pub group: IpAddr,
    pub port: u16,
    pub ttl: u8,
    pub stats: SyncStats,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncStats {
    /// Master: sent; backup: received.
    pub messages: u64,
    pub records: u64,
    pub bytes: u64,
    /// Backup: records installed in a worker's table or the template table.
    pub installed: u64,
    /// Refused messages/records by reason (counter name -> count).
    pub rejected: std::collections::BTreeMap<String, u64>,
    /// Master: sync candidates lost because a worker's ring was full, per
    /// worker.
    pub ring_drops: Vec<u64>,
    /// Master: datagrams the socket refused to send.
    pub send_errors: u64,
    pub full_sync: FullSync,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FullSync {
    /// Backup: a full transfer was requested and has completed.
    pub complete: bool,
    /// Transfers requested (backup) or served (master).
    pub transfers: u64,
    /// Records in the last transfer, and how long it took.
    pub records: u64,
    pub duration_ms: u64,
}

/// Writes one framed message.
pub fn write_msg<T: Serialize>(w: &mut impl Write, msg: &T) -> io::Result<()> {
    let body = serde_json::to_vec(msg).map_err(io::Error::other)?;
    if body.len() > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("message of {} bytes exceeds {MAX_MESSAGE}", body.len()),
        ));
    }
    w.write_all(&(body.len() as u32).to_be_bytes())?;
    w.write_all(&body)?;
    w.flush()
}

/// Reads one framed message's bytes. `Ok(None)`: the peer closed cleanly
/// before a new message. Oversized announcements are `InvalidData`
/// without reading the body.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let n = u32::from_be_bytes(len) as usize;
    if n > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message of {n} bytes exceeds {MAX_MESSAGE}"),
        ));
    }
    let mut body = vec![0u8; n];
    r.read_exact(&mut body)?;
    Ok(Some(body))
}

/// Decodes a frame's bytes.
pub fn decode<T: for<'de> Deserialize<'de>>(body: &[u8]) -> io::Result<T> {
    serde_json::from_slice(body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Reads and decodes one message; `Ok(None)` on a clean close.
pub fn read_msg<T: for<'de> Deserialize<'de>>(r: &mut impl Read) -> io::Result<Option<T>> {
    read_frame(r)?.map(|b| decode(&b)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_oversize_is_refused() {
        let env = Envelope {
            version: VERSION,
            request: Request::Apply(vec![Command::DelService(SvcKey::Fwmark {
                mark: 7,
                v6: false,
            })]),
        };
        let mut buf = Vec::new();
        write_msg(&mut buf, &env).unwrap();
        let back: Envelope = read_msg(&mut buf.as_slice()).unwrap().unwrap();
        assert_eq!(back, env);
        assert!(read_msg::<Envelope>(&mut &[][..]).unwrap().is_none());
        let big = ((MAX_MESSAGE + 1) as u32).to_be_bytes();
        let e = read_frame(&mut &big[..]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        let garbage = [0, 0, 0, 3, b'x', b'y', b'z'];
        assert!(read_msg::<Envelope>(&mut &garbage[..]).is_err());
    }

    #[test]
    fn sync_daemon_messages_round_trip() {
        let start = Envelope {
            version: VERSION,
            request: Request::StartDaemon(DaemonConfig {
                role: SyncRole::Backup,
                mcast_ifn: "eth0".into(),
                syncid: 9,
                maxlen: None,
                group: Some("ff02::12".parse().unwrap()),
                port: Some(8848),
                ttl: None,
            }),
        };
        let mut buf = Vec::new();
        write_msg(&mut buf, &start).unwrap();
        assert_eq!(
            read_msg::<Envelope>(&mut buf.as_slice()).unwrap(),
            Some(start)
        );

        let mut stats = SyncStats {
            messages: 3,
            ring_drops: vec![0, 2],
            ..SyncStats::default()
        };
        stats.rejected.insert("bad_syncid".into(), 1);
        let r = Response::Daemons(vec![DaemonInfo {
            role: SyncRole::Master,
            mcast_ifn: "rip-p0".into(),
            syncid: 0,
            maxlen: 1472,
            group: "224.0.0.81".parse().unwrap(),
            port: 8848,
            ttl: 1,
            stats,
        }]);
        let mut buf = Vec::new();
        write_msg(&mut buf, &r).unwrap();
        assert_eq!(read_msg::<Response>(&mut buf.as_slice()).unwrap(), Some(r));
        for r in [Response::Done, Response::Daemons(vec![])] {
            let mut buf = Vec::new();
            write_msg(&mut buf, &r).unwrap();
            assert_eq!(read_msg::<Response>(&mut buf.as_slice()).unwrap(), Some(r));
        }
    }
}
