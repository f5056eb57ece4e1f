//! The live service table in control-plane form: what `ipvsadm -L` lists
//! and what ripvsadm commands change. The data plane never sees this; it
//! gets immutable [`ServiceTable`] snapshots built from it ([`Model::to_table`]).
//!
//! Every command is validated completely before anything changes, and fails
//! with the errno the kernel would return (reference 1.9), checked in the
//! kernel's order, so ripvsadm words its messages exactly as ipvsadm.
//!
//! Ids: each service and real server gets an id that indexes the per-core
//! counter blocks and by which connections refer to it. An id never changes
//! while its owner exists, so counters and connections survive unrelated
//! changes. A deleted owner's id goes to a trash, as the kernel keeps a
//! deleted destination on its trash list while connections hold it: it is
//! reused only once no connection or template counts against it any more
//! (see [`Model::collect_trash`]), so an old connection never counts
//! against a new server.

use conf::Config;
use ctrl_api::{ApiError, Command, DestSpec, Errno, Method, Netmask, Proto, SvcKey, SvcSpec};
use fastpath::proto::Timeouts;
use fastpath::sched;
use fastpath::service::counters::{CoreCounters, MAX_DESTS};
use fastpath::service::{self, Dest, MarkRule, Service, ServiceTable};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// Largest `--set` value the kernel takes: INT_MAX jiffies at HZ=1000.
/// Also keeps the data plane's millisecond timeouts inside a u32.
pub const MAX_TIMEOUT: u32 = (i32::MAX / 1000) as u32;

/// The kernel's IP_VS_SCHEDNAME_MAXLEN less the terminating NUL.
const SCHED_NAME_MAX: usize = 15;

/// A real server as the control plane keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestEntry {
    pub id: u32,
    pub spec: DestSpec,
    /// The weight mh builds its table with: the weight when added, then
    /// every non-zero weight set later (kernel `last_weight`).
    pub last_weight: u32,
}

/// A virtual service as the control plane keeps it.
#[derive(Debug, Clone)]
pub struct SvcEntry {
    pub id: u32,
    pub spec: SvcSpec,
    kind: sched::Kind,
    /// Oldest first (the order they were added); listings reverse it.
    dests: Vec<DestEntry>,
    by_addr: HashMap<(IpAddr, u16), usize>,
}

impl SvcEntry {
    /// Newest first, as the kernel lists and schedules them.
    pub fn dests(&self) -> impl Iterator<Item = &DestEntry> {
        self.dests.iter().rev()
    }

    pub fn dest(&self, addr: IpAddr, port: u16) -> Option<&DestEntry> {
        self.by_addr.get(&(addr, port)).map(|&i| &self.dests[i])
    }

    /// After a removal at `from`: the servers behind it moved up one.
    fn reindex_from(&mut self, from: usize) {
        for (i, d) in self.dests.iter().enumerate().skip(from) {
            self.by_addr.insert((d.spec.addr, d.spec.port), i);
        }
    }
}

/// A deleted real server whose id may still be counted by connections.
#[derive(Debug, Clone)]
struct TrashDest {
    id: u32,
    /// Where it was: re-adding the same server to the same service takes
    /// it back out of the trash with its id, as the kernel does, so its
    /// old connections count against it again.
    svc: SvcKey,
    addr: IpAddr,
    port: u16,
    /// Survived one collection: every worker has had time to drop the
    /// snapshot that still listed it.
    aged: bool,
}

/// A deleted service: its connections are bound to its real servers, so
/// its id is free once all of theirs are idle.
#[derive(Debug, Clone)]
struct TrashSvc {
    id: u32,
    dests: Vec<u32>,
    aged: bool,
}

/// An id space: fresh ids in order from 0 (so a config's ids match its
/// order), then reused ones.
#[derive(Debug, Clone)]
struct Ids {
    next: u32,
    limit: u32,
    free: Vec<u32>,
}

impl Ids {
    fn new(limit: usize) -> Self {
        Ids {
            next: 0,
            limit: limit as u32,
            free: Vec::new(),
        }
    }

    fn available(&self) -> usize {
        self.free.len() + (self.limit - self.next) as usize
    }

    fn alloc(&mut self) -> Option<u32> {
        if let Some(id) = self.free.pop() {
            return Some(id);
        }
        (self.next < self.limit).then(|| {
            self.next += 1;
            self.next - 1
        })
    }
}

/// The live table.
#[derive(Debug, Clone)]
pub struct Model {
    /// Insertion order, as the kernel lists services.
    services: Vec<SvcEntry>,
    by_key: HashMap<SvcKey, usize>,
    rules: Vec<MarkRule>,
    marks: HashSet<u32>,
    timeouts: Timeouts,
    /// `[dataplane] max_services`: the live services allowed.
    max_services: usize,
    svc_ids: Ids,
    dest_ids: Ids,
    svc_trash: Vec<TrashSvc>,
    dest_trash: Vec<TrashDest>,
}

/// Service ids (and per-worker service counters) for `max_services`
/// services: twice as many, so that the ids of removed services, held
/// until no connection counts against them, do not make a `-C` and a
/// full restore in one batch overflow.
pub fn service_ids(max_services: u32) -> usize {
    2 * max_services as usize
}

/// A client's string for an error: quoted, and only its start when long
/// (a request may carry megabytes in one name).
fn shown(s: &str) -> String {
    const MAX: usize = 32;
    match s.char_indices().nth(MAX) {
        None => format!("{s:?}"),
        Some((end, _)) => format!("{:?}... ({} bytes)", &s[..end], s.len()),
    }
}

fn err(errno: Errno, detail: impl Into<String>) -> ApiError {
    ApiError::new(errno, detail)
}

/// `tcp 10.0.0.1:80` / `fwmark 7`, for error details.
pub fn key_label(k: &SvcKey) -> String {
    match k {
        SvcKey::Addr { proto, addr, port } => {
            let p = match proto {
                Proto::Tcp => "tcp",
                Proto::Udp => "udp",
                Proto::Sctp => "sctp",
            };
            match addr {
                IpAddr::V4(a) => format!("{p} {a}:{port}"),
                IpAddr::V6(a) => format!("{p} [{a}]:{port}"),
            }
        }
        SvcKey::Fwmark { mark, v6 } => {
            format!("fwmark {mark}{}", if *v6 { " (IPv6)" } else { "" })
        }
    }
}

fn conf_proto(p: conf::Protocol) -> Proto {
    match p {
        conf::Protocol::Tcp => Proto::Tcp,
        conf::Protocol::Udp => Proto::Udp,
        conf::Protocol::Sctp => Proto::Sctp,
    }
}

fn proto_number(p: Proto) -> u8 {
    match p {
        Proto::Tcp => service::TCP,
        Proto::Udp => service::UDP,
        Proto::Sctp => service::SCTP,
    }
}

/// The config's service in protocol form.
pub fn svc_spec(s: &conf::Service) -> SvcSpec {
    let f = s.sched_flags;
    let mut bits = 0;
    if f.sh_fallback || f.mh_fallback {
        bits |= ctrl_api::sched_flags::FLAG_1;
    }
    if f.sh_port || f.mh_port {
        bits |= ctrl_api::sched_flags::FLAG_2;
    }
    SvcSpec {
        key: match s.fwmark {
            Some(mark) => SvcKey::Fwmark { mark, v6: false },
            None => SvcKey::Addr {
                proto: conf_proto(s.protocol),
                addr: s.vip,
                port: s.port,
            },
        },
        scheduler: s.scheduler.clone(),
        persistent: s.persistent,
        netmask: Netmask::V4(s.netmask),
        ops: s.one_packet,
        pe: None,
        sched_flags: bits,
        synproxy: s.synproxy,
    }
}

/// The config's real server in protocol form.
pub fn dest_spec(r: &conf::RealServer) -> DestSpec {
    DestSpec {
        addr: r.addr,
        port: r.port,
        method: match r.method {
            conf::Method::Dr => Method::Dr,
            conf::Method::Tun => Method::Tun,
            conf::Method::Nat => Method::Nat,
        },
        weight: i32::try_from(r.weight).unwrap_or(i32::MAX),
        u_threshold: r.upper_threshold,
        l_threshold: r.lower_threshold,
        tun: None,
    }
}

fn mark_rules(cfg: &Config) -> Vec<MarkRule> {
    cfg.fwmarks
        .iter()
        .flat_map(|f| f.rules.iter().map(move |r| (f.mark, r)))
        .filter_map(|(mark, r)| {
            let IpAddr::V4(dest) = r.dest else {
                return None;
            };
            Some(MarkRule {
                mark,
                proto: r.protocol.map_or(0, |p| proto_number(conf_proto(p))),
                dest,
                dest_len: r.dest_len,
                ports: r.ports,
            })
        })
        .collect()
}

fn config_timeouts(cfg: &Config) -> Timeouts {
    let mut t = Timeouts::default();
    t.set(
        cfg.ipvs.timeout_tcp,
        cfg.ipvs.timeout_tcpfin,
        cfg.ipvs.timeout_udp,
    );
    t
}

/// The data plane forwards IPv4 only; IPVS itself would take IPv6.
fn need_v4(a: IpAddr, what: &str) -> Result<Ipv4Addr, ApiError> {
    match a {
        IpAddr::V4(a) => Ok(a),
        IpAddr::V6(a) => Err(err(
            Errno::Eafnosupport,
            format!("{what} {a}: ripvs forwards IPv4 only"),
        )),
    }
}

fn check_key_family(k: &SvcKey) -> Result<(), ApiError> {
    match k {
        SvcKey::Addr { addr, .. } => need_v4(*addr, "service address").map(|_| ()),
        SvcKey::Fwmark { v6: true, mark } => Err(err(
            Errno::Eafnosupport,
            format!("IPv6 fwmark service {mark}: ripvs forwards IPv4 only"),
        )),
        SvcKey::Fwmark { .. } => Ok(()),
    }
}

/// The kernel accepts a real server whose address is unicast or local
/// (`inet_addr_type`); these are the ones it calls broadcast or multicast
/// before consulting routes (0.0.0.0/8, 255.255.255.255, 224.0.0.0/4).
/// Subnet broadcast addresses of the director's own networks pass here.
fn is_unicast(a: Ipv4Addr) -> bool {
    !(a.octets()[0] == 0 || a.is_broadcast() || a.is_multicast())
}

/// The scheduler a service names. `none` is refused too: the kernel's
/// "no scheduler" mode only serves persistence templates and SIP, and
/// ripvs has neither a scheduler-less data path nor SIP.
fn scheduler_of(spec: &SvcSpec) -> Result<sched::Kind, ApiError> {
    if spec.scheduler.len() > SCHED_NAME_MAX {
        return Err(err(
            Errno::Einval,
            format!(
                "scheduler name {} is longer than 15 bytes",
                shown(&spec.scheduler)
            ),
        ));
    }
    spec.scheduler.parse::<sched::Kind>().map_err(|_| {
        err(
            Errno::Enoent,
            format!("scheduler {:?} not found", spec.scheduler),
        )
    })
}

impl Model {
    /// An empty table that knows the config's mark rules and timeouts.
    pub fn empty(cfg: &Config) -> Model {
        let rules = mark_rules(cfg);
        Model {
            services: Vec::new(),
            by_key: HashMap::new(),
            marks: rules.iter().map(|r| r.mark).collect(),
            rules,
            timeouts: config_timeouts(cfg),
            max_services: cfg.dataplane.max_services as usize,
            svc_ids: Ids::new(service_ids(cfg.dataplane.max_services)),
            dest_ids: Ids::new(MAX_DESTS),
            svc_trash: Vec::new(),
            dest_trash: Vec::new(),
        }
    }

    #[cfg(test)]
    fn with_limits(cfg: &Config, svcs: usize, dests: usize) -> Model {
        let mut m = Model::empty(cfg);
        m.svc_ids = Ids::new(svcs);
        m.max_services = svcs;
        m.dest_ids = Ids::new(dests);
        m
    }

    /// The config's table. Ids follow the file's order from 0: services by
    /// position, real servers counted across services.
    pub fn from_config(cfg: &Config) -> Result<Model, ApiError> {
        let mut m = Model::empty(cfg);
        for cmd in config_commands(cfg) {
            m.apply(&cmd)?;
        }
        Ok(m)
    }

    pub fn services(&self) -> impl Iterator<Item = &SvcEntry> {
        self.services.iter()
    }

    pub fn service(&self, key: &SvcKey) -> Option<&SvcEntry> {
        self.by_key.get(key).map(|&i| &self.services[i])
    }

    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Ids waiting in the trash: (services, real servers).
    pub fn trash_len(&self) -> (usize, usize) {
        (self.svc_trash.len(), self.dest_trash.len())
    }

    /// Applies one command, or changes nothing and says why. `Zero` only
    /// checks that its service exists: counters are not part of the table
    /// (see [`crate::stats`]).
    pub fn apply(&mut self, cmd: &Command) -> Result<(), ApiError> {
        match cmd {
            Command::AddService(spec) => self.add_service(spec),
            Command::EditService(spec) => self.edit_service(spec),
            Command::DelService(key) => {
                check_key_family(key)?;
                let i = self.svc_index(key)?;
                self.remove_service(i);
                Ok(())
            }
            Command::Clear => {
                self.by_key.clear();
                for s in std::mem::take(&mut self.services) {
                    self.trash_service(s);
                }
                Ok(())
            }
            Command::AddDest(key, spec) => self.add_dest(key, spec),
            Command::EditDest(key, spec) => self.edit_dest(key, spec),
            Command::DelDest { svc, addr, port } => {
                check_key_family(svc)?;
                let si = self.svc_index(svc)?;
                let s = &self.services[si];
                let Some(&di) = s.by_addr.get(&(*addr, *port)) else {
                    return Err(no_dest(*addr, *port));
                };
                let s = &mut self.services[si];
                let d = s.dests.remove(di);
                s.by_addr.remove(&(d.spec.addr, d.spec.port));
                s.reindex_from(di);
                self.dest_trash.push(TrashDest {
                    id: d.id,
                    svc: *svc,
                    addr: d.spec.addr,
                    port: d.spec.port,
                    aged: false,
                });
                Ok(())
            }
            Command::Zero(Some(key)) => {
                check_key_family(key)?;
                self.svc_index(key).map(|_| ())
            }
            Command::Zero(None) => Ok(()),
            Command::SetTimeouts { tcp, tcpfin, udp } => {
                for (name, v) in [("tcp", tcp), ("tcpfin", tcpfin), ("udp", udp)] {
                    if *v > MAX_TIMEOUT {
                        return Err(err(
                            Errno::Einval,
                            format!("{name} timeout {v} exceeds {MAX_TIMEOUT} s"),
                        ));
                    }
                }
                self.timeouts.set(*tcp, *tcpfin, *udp);
                Ok(())
            }
        }
    }

    fn svc_index(&self, key: &SvcKey) -> Result<usize, ApiError> {
        self.by_key
            .get(key)
            .copied()
            .ok_or_else(|| err(Errno::Esrch, format!("no service {}", key_label(key))))
    }

    /// Service checks the kernel makes before it looks the service up.
    fn check_svc_spec(&self, spec: &SvcSpec) -> Result<(), ApiError> {
        check_key_family(&spec.key)?;
        if !matches!(spec.netmask, Netmask::V4(_)) {
            return Err(err(Errno::Einval, "an IPv4 service needs a dotted netmask"));
        }
        match spec.key {
            SvcKey::Addr {
                port: 0, ref addr, ..
            } if spec.persistent.is_none() => {
                return Err(err(
                    Errno::Einval,
                    format!("zero port specified for non-persistent service {addr}"),
                ));
            }
            SvcKey::Addr {
                proto: Proto::Tcp | Proto::Sctp,
                ..
            } if spec.ops => {
                return Err(err(
                    Errno::Einval,
                    "one-packet scheduling is only for UDP and fwmark services",
                ));
            }
            _ => {}
        }
        if spec.synproxy {
            let tcp = match spec.key {
                SvcKey::Addr { proto, .. } => proto == Proto::Tcp,
                SvcKey::Fwmark { mark, .. } => self
                    .rules
                    .iter()
                    .filter(|r| r.mark == mark)
                    .all(|r| r.proto == fastpath::service::TCP),
            };
            if !tcp {
                return Err(err(
                    Errno::Einval,
                    "synproxy is only for TCP services (a fwmark service's rules must all be TCP)",
                ));
            }
        }
        Ok(())
    }

    /// A SYN-proxy service must see its real servers' replies: only NAT
    /// servers can join one.
    fn check_synproxy_dest(svc: &SvcSpec, d: &DestSpec) -> Result<(), ApiError> {
        if svc.synproxy && d.method != Method::Nat {
            return Err(err(
                Errno::Einval,
                format!(
                    "service {} uses synproxy: real server {} must be NAT (-m), its replies must pass the director",
                    key_label(&svc.key),
                    dest_label(d.addr, d.port)
                ),
            ));
        }
        Ok(())
    }

    /// Checks the kernel makes after finding (or not) the service.
    fn check_sched_pe(&self, spec: &SvcSpec) -> Result<sched::Kind, ApiError> {
        let kind = scheduler_of(spec)?;
        if let Some(pe) = &spec.pe {
            return Err(err(
                Errno::Enoent,
                format!(
                    "persistence engine {} not found: ripvs has no SIP engine",
                    shown(pe)
                ),
            ));
        }
        Ok(kind)
    }

    fn add_service(&mut self, spec: &SvcSpec) -> Result<(), ApiError> {
        self.check_svc_spec(spec)?;
        if self.by_key.contains_key(&spec.key) {
            return Err(err(
                Errno::Eexist,
                format!("service {} exists", key_label(&spec.key)),
            ));
        }
        let kind = self.check_sched_pe(spec)?;
        if let SvcKey::Fwmark { mark, .. } = spec.key {
            if !self.marks.contains(&mark) {
                return Err(err(
                    Errno::Other,
                    format!(
                        "fwmark {mark} has no match rule in the config; ripvs has no iptables, marks are defined in [[fwmarks]]"
                    ),
                ));
            }
        }
        if self.services.len() >= self.max_services {
            return Err(err(
                Errno::Enomem,
                format!(
                    "more than dataplane.max_services = {} services",
                    self.max_services
                ),
            ));
        }
        let id = self.svc_ids.alloc().ok_or_else(|| {
            err(
                Errno::Enomem,
                "the ids of removed services are all still held by their connections",
            )
        })?;
        self.by_key.insert(spec.key, self.services.len());
        self.services.push(SvcEntry {
            id,
            spec: spec.clone(),
            kind,
            dests: Vec::new(),
            by_addr: HashMap::new(),
        });
        Ok(())
    }

    fn edit_service(&mut self, spec: &SvcSpec) -> Result<(), ApiError> {
        self.check_svc_spec(spec)?;
        let i = self.svc_index(&spec.key)?;
        let kind = self.check_sched_pe(spec)?;
        if kind == sched::Kind::Mh && self.services[i].dests.len() > sched::mh::TAB_SIZE {
            return Err(mh_full());
        }
        for d in &self.services[i].dests {
            Self::check_synproxy_dest(spec, &d.spec)?;
        }
        let s = &mut self.services[i];
        s.spec = spec.clone();
        s.kind = kind;
        Ok(())
    }

    fn remove_service(&mut self, i: usize) {
        let s = self.services.remove(i);
        self.by_key.remove(&s.spec.key);
        for (j, t) in self.services.iter().enumerate().skip(i) {
            self.by_key.insert(t.spec.key, j);
        }
        self.trash_service(s);
    }

    fn trash_service(&mut self, s: SvcEntry) {
        for d in &s.dests {
            self.dest_trash.push(TrashDest {
                id: d.id,
                svc: s.spec.key,
                addr: d.spec.addr,
                port: d.spec.port,
                aged: false,
            });
        }
        self.svc_trash.push(TrashSvc {
            id: s.id,
            dests: s.dests.iter().map(|d| d.id).collect(),
            aged: false,
        });
    }

    /// The real server as the kernel stores it: DR and TUN cannot change
    /// ports, so on an address service they take the service's (ipvsadm
    /// forces this before the kernel sees it).
    fn effective_dest(svc: &SvcKey, spec: &DestSpec) -> DestSpec {
        let mut d = spec.clone();
        if let SvcKey::Addr { port, .. } = svc {
            if matches!(d.method, Method::Dr | Method::Tun) {
                d.port = *port;
            }
        }
        d
    }

    /// Real-server checks shared by add and edit, in the kernel's order.
    fn check_dest_spec(d: &DestSpec) -> Result<Ipv4Addr, ApiError> {
        let addr = need_v4(d.addr, "real server")?;
        if d.weight < 0 {
            return Err(err(
                Errno::Erange,
                format!("weight {} is negative", d.weight),
            ));
        }
        if d.l_threshold > d.u_threshold {
            return Err(err(
                Errno::Erange,
                format!(
                    "lower threshold {} is above upper threshold {}",
                    d.l_threshold, d.u_threshold
                ),
            ));
        }
        match d.method {
            Method::Local => {
                return Err(err(
                    Errno::Einval,
                    "local forwarding is not a method ripvs has",
                ))
            }
            Method::Tun => {}
            Method::Dr | Method::Nat if d.tun.is_some() => {
                return Err(err(Errno::Einval, "tunnel options need the tunnel method"))
            }
            Method::Dr | Method::Nat => {}
        }
        if let Some(t) = d.tun {
            match t.kind {
                ctrl_api::TunType::Gue if t.port == 0 => {
                    return Err(err(Errno::Einval, "a GUE tunnel needs a port"))
                }
                ctrl_api::TunType::Ipip => {}
                other => {
                    return Err(err(
                        Errno::Other,
                        format!("ripvs tunnels with IPIP only, not {other:?}"),
                    ))
                }
            }
        }
        Ok(addr)
    }

    fn add_dest(&mut self, key: &SvcKey, spec: &DestSpec) -> Result<(), ApiError> {
        check_key_family(key)?;
        let si = self.svc_index(key)?;
        let spec = Self::effective_dest(key, spec);
        let addr = Self::check_dest_spec(&spec)?;
        Self::check_synproxy_dest(&self.services[si].spec, &spec)?;
        if self.services[si].dest(spec.addr, spec.port).is_some() {
            return Err(err(
                Errno::Eexist,
                format!("real server {} exists", dest_label(spec.addr, spec.port)),
            ));
        }
        if !is_unicast(addr) {
            return Err(err(
                Errno::Einval,
                format!("real server address {addr} is not unicast"),
            ));
        }
        if self.services[si].kind == sched::Kind::Mh
            && self.services[si].dests.len() >= sched::mh::TAB_SIZE
        {
            return Err(mh_full());
        }
        let restored = self
            .dest_trash
            .iter()
            .position(|t| t.svc == *key && t.addr == spec.addr && t.port == spec.port);
        let id = match restored {
            Some(t) => self.dest_trash.swap_remove(t).id,
            None => self
                .dest_ids
                .alloc()
                .ok_or_else(|| err(Errno::Enomem, format!("more than {MAX_DESTS} real servers")))?,
        };
        let s = &mut self.services[si];
        s.by_addr.insert((spec.addr, spec.port), s.dests.len());
        s.dests.push(DestEntry {
            id,
            last_weight: spec.weight as u32,
            spec,
        });
        Ok(())
    }

    fn edit_dest(&mut self, key: &SvcKey, spec: &DestSpec) -> Result<(), ApiError> {
        check_key_family(key)?;
        let si = self.svc_index(key)?;
        let spec = Self::effective_dest(key, spec);
        Self::check_dest_spec(&spec)?;
        Self::check_synproxy_dest(&self.services[si].spec, &spec)?;
        let s = &mut self.services[si];
        let Some(&di) = s.by_addr.get(&(spec.addr, spec.port)) else {
            return Err(no_dest(spec.addr, spec.port));
        };
        let d = &mut s.dests[di];
        if spec.weight > 0 {
            d.last_weight = spec.weight as u32;
        }
        d.spec = spec;
        Ok(())
    }

    /// Frees the ids in the trash that nothing counts against any more:
    /// no connection or template on any core (active + inactive + persist
    /// summed over cores is 0). An id is kept for at least one collection
    /// after its deletion, so every worker has moved to a snapshot without
    /// it. Returns how many ids were freed.
    pub fn collect_trash(&mut self, cores: &[Arc<CoreCounters>]) -> usize {
        let idle = |id: u32| {
            cores
                .iter()
                .filter_map(|c| c.dests.get(id as usize))
                .map(|d| d.active.get() + d.inactive.get() + d.persist.get())
                .sum::<i64>()
                == 0
        };
        let mut freed = 0;
        let mut keep = Vec::with_capacity(self.dest_trash.len());
        for mut t in std::mem::take(&mut self.dest_trash) {
            if t.aged && idle(t.id) {
                self.dest_ids.free.push(t.id);
                freed += 1;
            } else {
                t.aged = true;
                keep.push(t);
            }
        }
        self.dest_trash = keep;
        let mut keep = Vec::with_capacity(self.svc_trash.len());
        for mut t in std::mem::take(&mut self.svc_trash) {
            if t.aged && t.dests.iter().all(|&d| idle(d)) {
                self.svc_ids.free.push(t.id);
                freed += 1;
            } else {
                t.aged = true;
                keep.push(t);
            }
        }
        self.svc_trash = keep;
        freed
    }

    /// The most services the table holds (`[dataplane] max_services` at
    /// start: the workers' counters are sized for it).
    pub fn max_services(&self) -> usize {
        self.max_services
    }

    /// Ids still free: (services, real servers).
    pub fn free_ids(&self) -> (usize, usize) {
        (self.svc_ids.available(), self.dest_ids.available())
    }

    /// The data plane's snapshot of this table.
    pub fn to_table(&self) -> Result<ServiceTable, ApiError> {
        let services = self
            .services
            .iter()
            .map(|s| {
                let bits = s.spec.sched_flags;
                let (f1, f2) = (
                    bits & ctrl_api::sched_flags::FLAG_1 != 0,
                    bits & ctrl_api::sched_flags::FLAG_2 != 0,
                );
                let flags = match s.kind {
                    sched::Kind::Sh => sched::Flags {
                        sh_fallback: f1,
                        sh_port: f2,
                        ..Default::default()
                    },
                    sched::Kind::Mh => sched::Flags {
                        mh_fallback: f1,
                        mh_port: f2,
                        ..Default::default()
                    },
                    _ => sched::Flags::default(),
                };
                let (proto, vip, port, fwmark) = match s.spec.key {
                    SvcKey::Addr { proto, addr, port } => (
                        proto_number(proto),
                        need_v4(addr, "service address")?,
                        port,
                        None,
                    ),
                    SvcKey::Fwmark { mark, .. } => {
                        (service::TCP, Ipv4Addr::UNSPECIFIED, 0, Some(mark))
                    }
                };
                let netmask = match s.spec.netmask {
                    Netmask::V4(m) => m,
                    Netmask::V6(_) => Ipv4Addr::BROADCAST,
                };
                let dests = s
                    .dests()
                    .map(|d| {
                        Ok(Dest {
                            id: d.id,
                            addr: need_v4(d.spec.addr, "real server")?,
                            port: d.spec.port,
                            method: match d.spec.method {
                                Method::Nat => service::Method::Nat,
                                Method::Tun => service::Method::Tun,
                                Method::Dr | Method::Local => service::Method::Dr,
                            },
                            weight: d.spec.weight.max(0) as u32,
                            last_weight: d.last_weight,
                            u_threshold: d.spec.u_threshold,
                            l_threshold: d.spec.l_threshold,
                        })
                    })
                    .collect::<Result<Vec<_>, ApiError>>()?;
                Ok(Service {
                    id: s.id,
                    proto,
                    vip,
                    port,
                    fwmark,
                    scheduler: s.kind,
                    flags,
                    persistent: s.spec.persistent,
                    netmask,
                    ops: s.spec.ops,
                    synproxy: s.spec.synproxy,
                    dests,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        ServiceTable::new(services, self.rules.clone())
            .map_err(|e| err(Errno::Other, format!("service table refused: {e:?}")))
    }

    /// Makes the table the config's: computes the fewest commands that do
    /// it, applies them all or none, and returns them. Services and real
    /// servers that stay keep their ids, so their counters and connections
    /// are untouched; ones that change are edited in place. Real servers
    /// that stay keep their place in the list, new ones go to its head,
    /// as live additions do. The config's mark rules and `[ipvs]` timeouts
    /// replace the current ones; other sections need a restart.
    pub fn reload(&mut self, cfg: &Config) -> Result<Vec<Command>, ApiError> {
        let cmds = self.diff(cfg);
        let mut next = self.clone();
        next.rules = mark_rules(cfg);
        next.marks = next.rules.iter().map(|r| r.mark).collect();
        for c in &cmds {
            next.apply(c)?;
        }
        next.to_table()?;
        *self = next;
        Ok(cmds)
    }

    fn diff(&self, cfg: &Config) -> Vec<Command> {
        let mut out = Vec::new();
        let wanted: HashMap<SvcKey, &conf::Service> =
            cfg.services.iter().map(|s| (svc_spec(s).key, s)).collect();
        for s in &self.services {
            if !wanted.contains_key(&s.spec.key) {
                out.push(Command::DelService(s.spec.key));
            }
        }
        for cs in &cfg.services {
            let spec = svc_spec(cs);
            let key = spec.key;
            let dests: Vec<DestSpec> = cs
                .real_servers
                .iter()
                .map(|r| Self::effective_dest(&key, &dest_spec(r)))
                .collect();
            match self.service(&key) {
                None => {
                    out.push(Command::AddService(spec));
                    out.extend(dests.into_iter().map(|d| Command::AddDest(key, d)));
                }
                Some(cur) => {
                    if cur.spec != spec {
                        out.push(Command::EditService(spec));
                    }
                    let keep: HashSet<(IpAddr, u16)> =
                        dests.iter().map(|d| (d.addr, d.port)).collect();
                    for d in &cur.dests {
                        if !keep.contains(&(d.spec.addr, d.spec.port)) {
                            out.push(Command::DelDest {
                                svc: key,
                                addr: d.spec.addr,
                                port: d.spec.port,
                            });
                        }
                    }
                    for d in dests {
                        match cur.dest(d.addr, d.port) {
                            None => out.push(Command::AddDest(key, d)),
                            Some(c) if c.spec != d => out.push(Command::EditDest(key, d)),
                            Some(_) => {}
                        }
                    }
                }
            }
        }
        let (tcp, tcpfin, udp) = config_timeouts(cfg).listed();
        if (tcp, tcpfin, udp) != self.timeouts.listed() {
            out.push(Command::SetTimeouts { tcp, tcpfin, udp });
        }
        out
    }
}

fn dest_label(a: IpAddr, port: u16) -> String {
    match a {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// Maglev gives every server at least one slot, as the kernel's mh does.
fn mh_full() -> ApiError {
    err(
        Errno::Einval,
        format!("mh schedules at most {} real servers", sched::mh::TAB_SIZE),
    )
}

fn no_dest(a: IpAddr, port: u16) -> ApiError {
    err(
        Errno::Enoent,
        format!("no real server {}", dest_label(a, port)),
    )
}

/// The commands that build the config's table on an empty one.
pub fn config_commands(cfg: &Config) -> Vec<Command> {
    let mut out = Vec::new();
    for s in &cfg.services {
        let spec = svc_spec(s);
        let key = spec.key;
        out.push(Command::AddService(spec));
        out.extend(
            s.real_servers
                .iter()
                .map(|r| Command::AddDest(key, dest_spec(r))),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[[ports]]
name = "p0"
device = "net_ring0"
addresses = ["10.0.0.1/24"]
"#;

    fn cfg(services: &[(u16, &[&str])]) -> Config {
        let mut t = BASE.to_string();
        for (port, rs) in services {
            t.push_str(&format!(
                "[[services]]\nprotocol = \"tcp\"\nvip = \"10.0.0.100\"\nport = {port}\n"
            ));
            for a in rs.iter() {
                t.push_str(&format!("[[services.real_servers]]\naddress = \"{a}\"\n"));
            }
        }
        conf::parse(&t, "t.toml").unwrap()
    }

    fn key(port: u16) -> SvcKey {
        SvcKey::Addr {
            proto: Proto::Tcp,
            addr: "10.0.0.100".parse().unwrap(),
            port,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn indexes_follow_deletions_in_the_middle() {
        let c = cfg(&[
            (80, &["10.0.1.1", "10.0.1.2", "10.0.1.3"]),
            (81, &[]),
            (82, &["10.0.1.9"]),
        ]);
        let mut m = Model::from_config(&c).unwrap();
        m.apply(&Command::DelDest {
            svc: key(80),
            addr: ip("10.0.1.2"),
            port: 80,
        })
        .unwrap();
        let s = m.service(&key(80)).unwrap();
        assert_eq!(s.dest(ip("10.0.1.3"), 80).unwrap().id, 2);
        assert_eq!(s.dest(ip("10.0.1.1"), 80).unwrap().id, 0);
        assert!(s.dest(ip("10.0.1.2"), 80).is_none());
        m.apply(&Command::DelService(key(81))).unwrap();
        assert_eq!(m.service(&key(82)).unwrap().id, 2);
        assert_eq!(
            m.apply(&Command::DelService(key(81))).unwrap_err().errno,
            Errno::Esrch
        );
        m.apply(&Command::Clear).unwrap();
        assert_eq!(m.services().count(), 0);
        assert_eq!(m.trash_len(), (3, 4));
        // Nothing counts against them: freed on the second collection.
        let cores = [Arc::new(CoreCounters::default())];
        assert_eq!(m.collect_trash(&cores), 0);
        assert_eq!(m.collect_trash(&cores), 7);
        assert_eq!(m.trash_len(), (0, 0));
    }

    #[test]
    fn long_names_are_shown_by_their_start() {
        assert_eq!(shown("wlc"), "\"wlc\"");
        let long = "x".repeat(1 << 20);
        assert_eq!(
            shown(&long),
            format!("\"{}\"... (1048576 bytes)", "x".repeat(32))
        );
    }

    #[test]
    fn a_reload_that_does_not_fit_changes_nothing() {
        let c1 = cfg(&[(80, &["10.0.1.1"])]);
        let mut m = Model::with_limits(&c1, 4, 2);
        for cmd in config_commands(&c1) {
            m.apply(&cmd).unwrap();
        }
        let c2 = cfg(&[(80, &["10.0.1.1", "10.0.1.2"]), (81, &["10.0.1.3"])]);
        let before = format!("{:?}", m.to_table().unwrap().services());
        let e = m.reload(&c2).unwrap_err();
        assert_eq!(e.errno, Errno::Enomem);
        assert_eq!(format!("{:?}", m.to_table().unwrap().services()), before);
        assert_eq!(m.free_ids(), (3, 1));
        // A deleted server's id stays in the trash until collected.
        let c3 = cfg(&[(80, &["10.0.1.2"])]);
        let cmds = m.reload(&c3).unwrap();
        assert_eq!(cmds.len(), 2, "{cmds:?}");
        assert_eq!(m.free_ids(), (3, 0));
        let c4 = cfg(&[(80, &["10.0.1.2"]), (81, &["10.0.1.3"])]);
        assert_eq!(m.reload(&c4).unwrap_err().errno, Errno::Enomem);
        let cores = [Arc::new(CoreCounters::default())];
        m.collect_trash(&cores);
        m.collect_trash(&cores);
        assert_eq!(m.reload(&c4).unwrap().len(), 2);
        assert_eq!(m.free_ids(), (2, 0));
    }

    #[test]
    fn mh_takes_at_most_its_table_size_of_servers() {
        let mut m = Model::from_config(&cfg(&[])).unwrap();
        let spec = SvcSpec {
            key: key(80),
            scheduler: "mh".into(),
            persistent: None,
            netmask: Netmask::V4(Ipv4Addr::BROADCAST),
            ops: false,
            pe: None,
            sched_flags: 0,
            synproxy: false,
        };
        m.apply(&Command::AddService(spec)).unwrap();
        let add = |i: u32| {
            Command::AddDest(
                key(80),
                DestSpec {
                    addr: IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i)),
                    port: 80,
                    method: Method::Nat,
                    weight: 1,
                    u_threshold: 0,
                    l_threshold: 0,
                    tun: None,
                },
            )
        };
        for i in 0..sched::mh::TAB_SIZE as u32 {
            m.apply(&add(i)).unwrap();
        }
        let e = m.apply(&add(99_999)).unwrap_err();
        assert_eq!(e.errno, Errno::Einval);
    }

    #[test]
    fn synproxy_services_take_only_tcp_and_nat_servers() {
        let mut m = Model::from_config(&cfg(&[])).unwrap();
        let spec = SvcSpec {
            key: key(80),
            scheduler: "rr".into(),
            persistent: None,
            netmask: Netmask::V4(Ipv4Addr::BROADCAST),
            ops: false,
            pe: None,
            sched_flags: 0,
            synproxy: true,
        };
        let dest = |last: u8, method| DestSpec {
            addr: IpAddr::V4(Ipv4Addr::new(10, 0, 1, last)),
            port: 80,
            method,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tun: None,
        };
        let udp = SvcSpec {
            key: SvcKey::Addr {
                proto: Proto::Udp,
                addr: "10.0.0.100".parse().unwrap(),
                port: 53,
            },
            ..spec.clone()
        };
        let e = m.apply(&Command::AddService(udp)).unwrap_err();
        assert_eq!(
            (e.errno, e.detail.as_str()),
            (
                Errno::Einval,
                "synproxy is only for TCP services (a fwmark service's rules must all be TCP)"
            )
        );
        m.apply(&Command::AddService(spec.clone())).unwrap();
        m.apply(&Command::AddDest(key(80), dest(1, Method::Nat)))
            .unwrap();
        let why = "service tcp 10.0.0.100:80 uses synproxy: real server 10.0.1.2:80 must be NAT (-m), its replies must pass the director";
        for method in [Method::Dr, Method::Tun] {
            let e = m
                .apply(&Command::AddDest(key(80), dest(2, method)))
                .unwrap_err();
            assert_eq!((e.errno, e.detail.as_str()), (Errno::Einval, why));
        }
        let e = m
            .apply(&Command::EditDest(key(80), dest(1, Method::Dr)))
            .unwrap_err();
        assert_eq!(e.errno, Errno::Einval);
        // Turning it off lets a DR server in; on again is refused then,
        // and a refused command leaves the service as it was.
        let off = SvcSpec {
            synproxy: false,
            ..spec.clone()
        };
        m.apply(&Command::EditService(off)).unwrap();
        m.apply(&Command::AddDest(key(80), dest(2, Method::Dr)))
            .unwrap();
        let e = m.apply(&Command::EditService(spec)).unwrap_err();
        assert_eq!(e.errno, Errno::Einval);
        assert!(!m.to_table().unwrap().services()[0].synproxy);
    }
}
