//! The clean, validated configuration handed to the rest of ripvs.
//!
//! Nothing here carries source positions: by the time a value of these
//! types exists, every check has passed.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// Highest number of lcores DPDK was built for (`RTE_MAX_LCORE` in
/// Debian's build); lcore ids are `0..MAX_LCORE`.
pub const MAX_LCORE: u32 = 128;

/// Longest kernel interface name (`IFNAMSIZ - 1`).
pub const MAX_IFNAME_LEN: usize = 15;

/// A whole, validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub eal: Eal,
    pub dataplane: Dataplane,
    pub ports: Vec<Port>,
    pub routes: Vec<Route>,
    pub neighbours: Vec<Neighbour>,
    pub services: Vec<Service>,
    pub fwmarks: Vec<Fwmark>,
    pub ipvs: Ipvs,
    pub defence: Defence,
    pub sync: Sync,
    /// `[[vrrp]]`, in file order.
    pub vrrp: Vec<Vrrp>,
}

impl Config {
    /// The port called `name`.
    pub fn port(&self, name: &str) -> Option<&Port> {
        self.ports.iter().find(|p| p.name == name)
    }
}

/// `[eal]`: DPDK environment arguments and the lcore layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Eal {
    /// Extra EAL arguments, passed through verbatim (lcore options excluded:
    /// those come from `main_lcore` and `worker_lcores`).
    pub args: Vec<String>,
    pub main_lcore: u32,
    /// Unique, non-empty, never containing `main_lcore`.
    pub worker_lcores: Vec<u32>,
}

impl Default for Eal {
    fn default() -> Self {
        Eal {
            args: Vec::new(),
            main_lcore: 0,
            worker_lcores: vec![1],
        }
    }
}

/// `[dataplane]`: sizing of pools, rings and tables.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataplane {
    pub mbufs_per_socket: u32,
    pub mbuf_cache: u32,
    pub rx_descriptors: u16,
    pub tx_descriptors: u16,
    pub max_connections: u32,
}

impl Default for Dataplane {
    fn default() -> Self {
        Dataplane {
            mbufs_per_socket: 16383,
            mbuf_cache: 256,
            rx_descriptors: 1024,
            tx_descriptors: 1024,
            max_connections: 1_048_576,
        }
    }
}

/// What DPDK device backs a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    /// A PCI address, normalised to `dddd:bb:dd.f` (lower-case hex, with domain).
    Pci(String),
    /// A virtual device: `name` is the part before the first comma (always
    /// starting with `net_`), `args` the rest (possibly empty).
    Vdev { name: String, args: String },
}

impl fmt::Display for Device {
    /// The device string as given to DPDK (`-a`/`--vdev` argument form).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Pci(addr) => f.write_str(addr),
            Device::Vdev { name, args } if args.is_empty() => f.write_str(name),
            Device::Vdev { name, args } => write!(f, "{name},{args}"),
        }
    }
}

/// `[[ports]]`: one DPDK port.
#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    pub name: String,
    pub device: Device,
    pub mtu: u16,
    /// Overrides the device's own MAC address when set.
    pub mac: Option<[u8; 6]>,
    /// Interface addresses; may be empty.
    pub addresses: Vec<IfAddr>,
    pub exception: Exception,
}

impl Port {
    /// True if `ip` lies inside one of this port's connected networks.
    pub fn is_connected(&self, ip: IpAddr) -> bool {
        self.addresses.iter().any(|a| a.contains(ip))
    }
}

/// An interface address with its prefix length, e.g. `10.0.0.1/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfAddr {
    pub addr: IpAddr,
    pub prefix_len: u8,
}

impl IfAddr {
    /// The connected network's address (host bits cleared).
    pub fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & v4_mask(self.prefix_len))),
            IpAddr::V6(a) => {
                let bits = u128::from(a);
                let mask = if self.prefix_len == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix_len.min(128)))
                };
                IpAddr::V6((bits & mask).into())
            }
        }
    }

    /// True if `ip` lies in this address's connected network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                IfAddr {
                    addr: ip,
                    prefix_len: self.prefix_len,
                }
                .network()
                    == self.network()
            }
            _ => false,
        }
    }
}

impl fmt::Display for IfAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// The netmask of an IPv4 prefix length (`len` <= 32).
pub(crate) fn v4_mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    }
}

/// `[ports.exception]`: the kernel tap that receives what the data plane
/// does not handle itself (ARP, ICMP to the director, SSH, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Exception {
    pub enabled: bool,
    /// Kernel interface name; defaults to `rip-<port name>`.
    pub iface: String,
    /// Replaces the tap vdev (tests use e.g. `net_pcap9,rx_pcap=a.pcap,...`).
    pub device: Option<String>,
}

/// `[[routes]]`: a static route.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub prefix: IpAddr,
    pub prefix_len: u8,
    /// Next hop; `None` for a route directly out of `port`.
    pub via: Option<IpAddr>,
    /// Always set: inferred from `via` when the file omits it.
    pub port: String,
}

/// `[[neighbours]]`: a static neighbour (ARP) entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbour {
    pub addr: IpAddr,
    pub mac: [u8; 6],
    /// Always set: inferred from `address` when the file omits it.
    pub port: String,
}

/// Transport protocol of a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// The lower-case name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[[services]]`: a virtual service (IPVS "virtual server").
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// For a fwmark service: TCP, as ipvsadm sets internally.
    pub protocol: Protocol,
    /// For a fwmark service: 0.0.0.0.
    pub vip: IpAddr,
    /// 0 means every port (persistent services only, as in IPVS).
    pub port: u16,
    /// A fwmark service: packets matching this mark's `[[fwmarks]]` rules.
    pub fwmark: Option<u32>,
    /// One of the 14 IPVS scheduler names; `wlc` when omitted, as ipvsadm.
    pub scheduler: String,
    pub sched_flags: SchedFlags,
    /// Persistence timeout in seconds; `None`: not persistent.
    pub persistent: Option<u32>,
    /// Persistence granularity (client network mask).
    pub netmask: Ipv4Addr,
    /// One-packet scheduling (UDP and fwmark services only).
    pub one_packet: bool,
    /// What a failed health check does to a real server: `true` sets its
    /// weight to 0 (its connections carry on, as ldirectord's
    /// `quiescent=yes`), `false` (the default, as keepalived) removes it.
    pub quiescent: bool,
    /// Takes every new connection while no real server is available.
    pub sorry_server: Option<SorryServer>,
    pub real_servers: Vec<RealServer>,
}

impl Service {
    /// `tcp 10.0.0.100:80` or `fwmark 1`, as error messages name services.
    pub fn label(&self) -> String {
        match self.fwmark {
            Some(m) => format!("fwmark {m}"),
            None => format!("{} {}:{}", self.protocol, self.vip, self.port),
        }
    }
}

/// Scheduler flags (ipvsadm `-b`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedFlags {
    pub sh_fallback: bool,
    pub sh_port: bool,
    pub mh_fallback: bool,
    pub mh_port: bool,
}

/// How packets reach a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// Direct routing (`-g`, the ipvsadm default): MAC rewrite only.
    Dr,
    /// IP-in-IP tunnel (`-i`).
    Tun,
    /// Masquerading (`-m`): destination rewritten, replies return through us.
    Nat,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Dr => "dr",
            Method::Tun => "tun",
            Method::Nat => "nat",
        }
    }
}

/// `[[services.real_servers]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RealServer {
    pub addr: IpAddr,
    /// The service port when omitted; always the service port for DR and
    /// TUN on non-fwmark services (they cannot change ports).
    pub port: u16,
    pub method: Method,
    /// 0..=65535; 0 is quiescent (no new connections).
    pub weight: u32,
    /// Connection count at which the server is marked overloaded (0: none).
    pub upper_threshold: u32,
    /// Count below which the overload mark is cleared (0: 75 % of upper).
    pub lower_threshold: u32,
    /// The service's `[services.health]` with this server's overrides;
    /// `None`: not checked (no table, or `checker = "none"`).
    pub health: Option<Health>,
}

/// `[services.sorry_server]`: the fallback (ldirectord `fallback`,
/// keepalived `sorry_server`), forwarded like a real server of weight 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SorryServer {
    pub addr: IpAddr,
    pub port: u16,
    pub method: Method,
}

/// A real server's resolved health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub check: Check,
    /// From the start of one check to the start of the next.
    pub interval: Duration,
    /// A check not decided by then fails; never longer than `interval`.
    pub timeout: Duration,
    /// Before the first check.
    pub delay: Duration,
    /// Consecutive failed checks that mark an up server down.
    pub retries: u32,
    /// Consecutive passed checks that mark a down server up.
    pub successes: u32,
    /// State before the first result: up (keepalived's default) or down
    /// (keepalived's `alpha`).
    pub initial_up: bool,
    /// Port to check; `None`: the real server's.
    pub port: Option<u16>,
    /// Address to check from (bind).
    pub source: Option<IpAddr>,
    /// Kernel interface to check through (SO_BINDTODEVICE).
    pub interface: Option<String>,
}

/// What is checked, and what counts as up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// A TCP connection is accepted.
    Tcp,
    /// http and https.
    Http(HttpCheck),
    /// A reply to `payload` comes back (containing `expect`, if set).
    Udp {
        payload: String,
        expect: Option<String>,
    },
    /// `command[0]` run with `command[1..]`, then the real server's address
    /// and port, exits 0.
    Exec { command: Vec<String> },
}

impl Check {
    /// The name used in the config file.
    pub fn name(&self) -> &'static str {
        match self {
            Check::Tcp => "tcp",
            Check::Http(h) if h.tls => "https",
            Check::Http(_) => "http",
            Check::Udp { .. } => "udp",
            Check::Exec { .. } => "exec",
        }
    }
}

/// `GET path` answered with a status in `status` and a body containing
/// `expect` (ldirectord's request/receive, keepalived's HTTP_GET).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    /// https: the same over TLS, without verifying the certificate (as
    /// ldirectord and keepalived by default): the check is whether the
    /// server answers, not whom to trust. `host` is sent as SNI.
    pub tls: bool,
    pub path: String,
    /// `Host:` header; the real server's address when `None`.
    pub host: Option<String>,
    /// Inclusive status code range.
    pub status: (u16, u16),
    pub expect: Option<String>,
}

/// `[[fwmarks]]`: ripvs has no iptables, so a firewall mark is defined by
/// the packets it matches.
#[derive(Debug, Clone, PartialEq)]
pub struct Fwmark {
    pub mark: u32,
    pub rules: Vec<MarkRule>,
}

/// `[[fwmarks.match]]`: one rule; a packet matching any rule gets the mark.
#[derive(Debug, Clone, PartialEq)]
pub struct MarkRule {
    /// `None`: TCP, UDP and SCTP.
    pub protocol: Option<Protocol>,
    pub dest: IpAddr,
    pub dest_len: u8,
    /// Inclusive destination port range; (0, 65535) when omitted.
    pub ports: (u16, u16),
}

/// `[ipvs]`: the IPVS sysctls ripvs implements, and `--set` timeouts.
#[derive(Debug, Clone, PartialEq)]
pub struct Ipvs {
    pub expire_nodest_conn: bool,
    pub expire_quiescent_template: bool,
    /// 0..=3, default 1 (reference 5.4).
    pub conn_reuse_mode: u8,
    pub sloppy_tcp: bool,
    pub sloppy_sctp: bool,
    /// Seconds; TCP ESTABLISHED, TCP FIN_WAIT, UDP (as `ipvsadm --set`).
    pub timeout_tcp: u32,
    pub timeout_tcpfin: u32,
    pub timeout_udp: u32,
    /// The kernel's `backup_only`: while the backup sync daemon runs, this
    /// node is no director (its VIPs are neither answered nor forwarded).
    /// The kernel has it to stop DR/TUN packets looping between two
    /// directors; it also keeps a standby that holds the synced table
    /// quiet until VRRP (or an operator) makes it master.
    pub backup_only: bool,
    /// The overload defences' modes (reference 7): 0 off, 1 automatic
    /// (off now), 2 automatic (on now), 3 always on.
    pub drop_entry: u8,
    pub drop_packet: u8,
    pub secure_tcp: u8,
    /// drop_packet's rate in mode 3: one in this many new connections.
    pub am_droprate: u32,
}

impl Default for Ipvs {
    fn default() -> Self {
        Ipvs {
            expire_nodest_conn: false,
            expire_quiescent_template: false,
            conn_reuse_mode: 1,
            sloppy_tcp: false,
            sloppy_sctp: false,
            timeout_tcp: 900,
            timeout_tcpfin: 120,
            timeout_udp: 300,
            backup_only: false,
            drop_entry: 0,
            drop_packet: 0,
            secure_tcp: 0,
            am_droprate: 10,
        }
    }
}

/// `[defence]`: when the defences' automatic modes engage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Defence {
    /// The fill of a worker's connection table (and of the template
    /// table), as a fraction of its capacity, above which the table is
    /// short: IPVS's `amemthresh`, which counts free memory, turned into
    /// the free part of a preallocated table (1 − this).
    pub table_threshold: f64,
}

impl Default for Defence {
    fn default() -> Self {
        Defence {
            table_threshold: 0.9,
        }
    }
}

/// `[sync]`: the connection sync daemons ripvsd starts with (`ipvsadm
/// --start-daemon` can start one later), and the IPVS sysctls that shape
/// syncing however a daemon was started.
#[derive(Debug, Clone, PartialEq)]
pub struct Sync {
    /// `sync_state` bits: `state = "both"` sets the two.
    pub master: bool,
    pub backup: bool,
    /// Kernel interface the multicast goes through (a port's exception
    /// tap or a management NIC); always set when a role is.
    pub interface: Option<String>,
    pub syncid: u8,
    pub group: Ipv4Addr,
    pub port: u16,
    pub ttl: u8,
    /// UDP payload bytes per message; `None`: the kernel's default (1472
    /// for a master, the interface MTU less headers for a backup).
    pub maxlen: Option<u16>,
    /// `sync_version`: 0 (pre-2.6.39 peers) or 1.
    pub version: u8,
    /// `sync_threshold` (both values): a connection is synced each time
    /// its incoming packet count modulo `period` equals `threshold`. With
    /// `period` and `refresh_period` 0, only state changes are synced (and
    /// the packet that makes the count `threshold`).
    pub threshold: u32,
    pub period: u32,
    /// `sync_refresh_period`, seconds; 0: off. A connection whose state
    /// did not change is synced again only once its timer has moved this
    /// much (or half its timeout, if less), which keeps busy connections
    /// from flooding the group.
    pub refresh_period: u32,
    /// `sync_retries`, 0..=3: a refresh is sent this many more times,
    /// `refresh_period / 8` apart, in case one was lost.
    pub retries: u8,
    /// `sync_persist_mode`: for persistent services only the templates
    /// are synced, not the connections under them, to cut sync traffic.
    /// After a failover their packets find the server through the
    /// template, which for TCP and SCTP needs sloppy_tcp / sloppy_sctp on
    /// the backup (the first packet seen is mid-stream).
    pub persist_mode: bool,
    /// ripvs extra: a starting backup asks its master for the whole
    /// table instead of waiting for each connection's next packet.
    pub full_sync: bool,
}

impl Default for Sync {
    fn default() -> Self {
        Sync {
            master: false,
            backup: false,
            interface: None,
            syncid: 0,
            group: Ipv4Addr::new(224, 0, 0, 81),
            port: 8848,
            ttl: 1,
            maxlen: None,
            version: 1,
            threshold: 3,
            period: 50,
            refresh_period: 0,
            retries: 0,
            persist_mode: false,
            full_sync: true,
        }
    }
}

/// The group VRRP adverts are multicast to when an instance has no
/// `unicast_peers` (RFC 5798 section 5.1.1.2).
pub const VRRP_MULTICAST_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

/// `[[vrrp]]`: one VRRP instance (keepalived's `vrrp_instance`). Its
/// addresses are held (answered, forwarded, announced by gratuitous ARP)
/// only while the instance is master.
#[derive(Debug, Clone, PartialEq)]
pub struct Vrrp {
    /// 1..=32 characters from `A-Za-z0-9_.-`, unique among instances.
    pub name: String,
    /// The `[[ports]]` adverts are sent and received on.
    pub port: String,
    /// 1..=255; unique per port.
    pub vrid: u8,
    /// 1..=255, default 100; 255 is the addresses' owner (RFC 5798), which
    /// always preempts.
    pub priority: u8,
    /// 2 or 3, default 3.
    pub version: u8,
    /// Advertisement interval in centiseconds: 1..=4095 for version 3,
    /// a whole number of seconds (100..=25500) for version 2.
    pub advert_int_cs: u16,
    /// A higher-priority backup takes over from a lower-priority master.
    /// Never false with `initial` master or priority 255.
    pub preempt: bool,
    /// Seconds after start-up during which this node does not preempt;
    /// 0 unless `preempt`.
    pub preempt_delay_s: u16,
    /// keepalived's `state`, accepted for its configs and checked against
    /// `preempt`; as keepalived 2.2 does, every instance below priority 255
    /// starts as backup and the election decides.
    pub initial: VrrpInitial,
    /// The virtual addresses; non-empty, at most 255, each held by one
    /// instance, none an interface address of a port.
    pub addresses: Vec<Ipv4Addr>,
    /// Adverts go to these instead of [`VRRP_MULTICAST_GROUP`] when
    /// non-empty; each inside a connected network of `port`.
    pub unicast_peers: Vec<Ipv4Addr>,
    /// Version 2 simple password (authentication type 1), 1..=8 bytes.
    pub auth_pass: Option<String>,
    /// Seconds after becoming master before the second gratuitous ARP
    /// burst; 0: no second burst.
    pub garp_master_delay_s: u16,
    /// Gratuitous ARPs per address in each burst, 1..=255.
    pub garp_master_repeat: u16,
    /// Seconds between periodic bursts while master; 0: none.
    pub garp_master_refresh_s: u16,
    /// Gratuitous ARPs per address in each periodic burst, 1..=255.
    pub garp_master_refresh_repeat: u16,
    /// Run by `sh -c` on entering master, backup or fault.
    pub notify_master: Option<String>,
    pub notify_backup: Option<String>,
    pub notify_fault: Option<String>,
    /// Run by `sh -c` on every transition with `INSTANCE NAME STATE
    /// PRIORITY` appended (keepalived's generic `notify`).
    pub notify: Option<String>,
    /// This instance drives the sync daemon roles (keepalived's
    /// `lvs_sync_daemon`): at most one instance; `[sync] interface` is set
    /// and `[sync] state` is not.
    pub sync_daemon: bool,
    /// The master answers and announces with the virtual router MAC
    /// 00:00:5e:00:01:VRID (RFC 5798 §7.3) instead of its port's MAC, so a
    /// takeover changes no neighbour's ARP entry, only the switches'
    /// forwarding (keepalived's `use_vmac`). Not with unicast peers.
    pub use_vmac: bool,
}

impl Vrrp {
    /// The advertisement interval.
    pub fn advert_interval(&self) -> Duration {
        Duration::from_millis(u64::from(self.advert_int_cs) * 10)
    }
}

/// The state a VRRP instance starts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VrrpInitial {
    Backup,
    Master,
}
