//! The clean, validated configuration handed to the rest of ripvs.
//!
//! Nothing here carries source positions: by the time a value of these
//! types exists, every check has passed.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

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
    pub protocol: Protocol,
    pub vip: IpAddr,
    /// 0 means every port.
    pub port: u16,
}
