//! NIC RSS that agrees with [`owner_core`] (design 2): the per-port plan,
//! pure and DPDK-free (the `rss_hf` bits are plain constants), so it is
//! tested without EAL; `dataplane` applies it to the devices.
//!
//! # What the NIC must hash
//!
//! [`owner_core`] is `reta_entry(toeplitz(RSS_KEY, caddr ‖ cport))`: the
//! Toeplitz hash with the standard key over the client address then the
//! client port, both in network order (4 + 2 bytes for IPv4, 16 + 2 for
//! IPv6), and the hash's low bits pick a RETA bucket. A NIC told to hash
//! IPv4/IPv6 TCP, UDP and SCTP with `RTE_ETH_RSS_L3_SRC_ONLY |
//! RTE_ETH_RSS_L4_SRC_ONLY` feeds Toeplitz exactly `src_ip ‖ src_port` (the
//! selected fields in header order: the RSS specification's 4-tuple with
//! the unselected address and port left out, as mlx5, i40e and ice build
//! it), so with [`RSS_KEY`] programmed its hash is
//! [`rss_hash`]`(src_ip, src_port)`; with `_DST_ONLY` it is
//! `rss_hash(dst_ip, dst_port)`. The unit tests below check this against
//! the bit-by-bit Toeplitz of the specification (pinned by its published
//! vector). On a real NIC it can be confirmed from `mbuf.hash.rss`, which
//! must equal `rss_hash` of the client endpoint. Filling bucket `i` with
//! `reta_entry(i)` then sends every packet to the queue of its owner,
//! because worker `q` polls rx queue `q`.
//!
//! # Which side each port sees
//!
//! The client endpoint is the source of packets from clients and the
//! destination of NAT replies from real servers. So a port facing clients
//! hashes source fields and a port facing NAT real servers destination
//! fields ([`port_sides`] decides which from the config). A port facing
//! both (a one-armed director) can only hash one way: it hashes the source,
//! so client packets land on their owner, and NAT replies arriving there
//! are handed to their owner in software (counted as redirects). DR and TUN
//! replies never pass the director; packets without ports (ICMP, fragments)
//! are not hashed (they arrive on queue 0) and are redirected in software.
//!
//! Where a device cannot do this (no SRC_ONLY/DST_ONLY, no RETA, a RETA
//! size that cannot agree, every virtual device here), [`program`] says
//! why and the port keeps the driver's default RSS: software redirects
//! carry the load, as before.

use conf::{Config, IfAddr, Method};
use dpdk_sys::ethdev::rss_hf;
use fastpath::conn::rss::{reta_entry, RSS_KEY, RSS_RETA_BASE};
#[cfg(doc)]
use fastpath::conn::{owner_core, rss_hash};
use std::fmt;
use std::net::IpAddr;

/// Which endpoint of its connections' client a port sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Clients send to VIPs here: the client endpoint is the source.
    Clients,
    /// NAT real servers reply to clients here: the client endpoint is the
    /// destination.
    Servers,
    /// Both (one-armed director): hashed as [`Side::Clients`]; the NAT
    /// replies are redirected in software.
    Both,
}

impl Side {
    /// The fields the NIC hashes on a port facing this side.
    pub fn fields(self) -> Fields {
        match self {
            Side::Servers => Fields::Destination,
            Side::Clients | Side::Both => Fields::Source,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Clients => "client-facing",
            Side::Servers => "server-facing",
            Side::Both => "client- and server-facing",
        })
    }
}

/// The hash input the NIC is told to use: one address and one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fields {
    /// Source address and source port.
    Source,
    /// Destination address and destination port.
    Destination,
}

impl Fields {
    /// The RTE_ETH_RSS_L3/L4 `_ONLY` modifiers selecting these fields.
    pub fn modifiers(self) -> u64 {
        match self {
            Fields::Source => rss_hf::L3_SRC_ONLY | rss_hf::L4_SRC_ONLY,
            Fields::Destination => rss_hf::L3_DST_ONLY | rss_hf::L4_DST_ONLY,
        }
    }
}

impl fmt::Display for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fields::Source => "source address+port",
            Fields::Destination => "destination address+port",
        })
    }
}

/// Flow types without which programming is pointless: IPv4 TCP and UDP.
pub const REQUIRED_FLOWS: u64 = rss_hf::NONFRAG_IPV4_TCP | rss_hf::NONFRAG_IPV4_UDP;

/// Further flow types with ports, hashed when the device can.
pub const OPTIONAL_FLOWS: u64 = rss_hf::NONFRAG_IPV4_SCTP
    | rss_hf::NONFRAG_IPV6_TCP
    | rss_hf::NONFRAG_IPV6_UDP
    | rss_hf::NONFRAG_IPV6_SCTP;

/// Shortest key that covers the longest input (IPv6 address and port):
/// Toeplitz reads `input + 4` key bytes, so a shorter device key is a
/// prefix of [`RSS_KEY`] and a longer one is padded (with zeros) past it.
const MIN_KEY: usize = 16 + 2 + 4;

/// What a device reports about its RSS (from `rte_eth_dev_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// `flow_type_rss_offloads`.
    pub rss_offloads: u64,
    /// `reta_size`.
    pub reta_size: u16,
    /// `hash_key_size`; 0 means DPDK's default of 40.
    pub hash_key_size: u8,
}

/// What to program into a port so its RSS agrees with `owner_core`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub side: Side,
    pub fields: Fields,
    /// `rss_conf.rss_hf`: flow types and field modifiers.
    pub hf: u64,
    /// `rss_conf.rss_key`: [`RSS_KEY`] in the device's key length.
    pub key: Vec<u8>,
    /// The RETA: bucket `i` to rx queue (= worker) `reta_entry(i)`.
    pub reta: Vec<u16>,
}

/// The port (index into `cfg.ports`) through which the data plane reaches
/// `ip`: the longest matching connected network or static route, a
/// connected network winning a tie, as the fast path's route table does.
pub fn egress_port(cfg: &Config, ip: IpAddr) -> Option<usize> {
    let connected = cfg.ports.iter().enumerate().flat_map(|(i, p)| {
        p.addresses
            .iter()
            .filter(move |a| a.contains(ip))
            .map(move |a| (a.prefix_len, 1u8, i))
    });
    let routed = cfg.routes.iter().filter_map(|r| {
        let net = IfAddr {
            addr: r.prefix,
            prefix_len: r.prefix_len,
        };
        let i = cfg.ports.iter().position(|p| p.name == r.port)?;
        net.contains(ip).then_some((r.prefix_len, 0u8, i))
    });
    // Longest prefix, then connected (1) over routed (0), then the first.
    connected
        .chain(routed)
        .max_by_key(|&(len, conn, i)| (len, conn, std::cmp::Reverse(i)))
        .map(|(_, _, i)| i)
}

/// The side each port of `cfg` faces, in `cfg.ports` order.
///
/// Server-facing: the port the data plane reaches a NAT real server
/// through ([`egress_port`]), or that holds a static neighbour entry for
/// one. Client-facing as well, when it carries a VIP's connected network,
/// the default route, or is the only port. Every other port is
/// client-facing.
pub fn port_sides(cfg: &Config) -> Vec<Side> {
    let n = cfg.ports.len();
    let mut servers = vec![false; n];
    let nat_servers = cfg
        .services
        .iter()
        .flat_map(|s| &s.real_servers)
        .filter(|r| r.method == Method::Nat)
        .map(|r| r.addr);
    for rs in nat_servers {
        if let Some(i) = egress_port(cfg, rs) {
            servers[i] = true;
        }
        for nb in cfg.neighbours.iter().filter(|nb| nb.addr == rs) {
            if let Some(i) = cfg.ports.iter().position(|p| p.name == nb.port) {
                servers[i] = true;
            }
        }
    }
    let vips: Vec<IpAddr> = cfg
        .services
        .iter()
        .filter(|s| s.fwmark.is_none())
        .map(|s| s.vip)
        .chain(cfg.fwmarks.iter().flat_map(|f| &f.rules).map(|r| r.dest))
        .collect();
    cfg.ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let clients = n == 1
                || vips.iter().any(|&v| p.is_connected(v))
                || cfg
                    .routes
                    .iter()
                    .any(|r| r.prefix_len == 0 && r.port == p.name);
            match (servers[i], clients) {
                (false, _) => Side::Clients,
                (true, false) => Side::Servers,
                (true, true) => Side::Both,
            }
        })
        .collect()
}

/// The RETA for `reta_size` buckets and `nworkers` queues: bucket `i` holds
/// `reta_entry(i)`. `None` when no table of that size can agree with
/// `owner_core` for this worker count. NICs pick the bucket from the hash's
/// low bits, so the size must be a power of two; below
/// [`RSS_RETA_BASE`] (128), the smaller table must still give every hash
/// the owner's bucket, which holds only when `nworkers` divides the size.
pub fn reta(reta_size: usize, nworkers: usize) -> Option<Vec<u16>> {
    if nworkers == 0 || nworkers > RSS_RETA_BASE || !reta_size.is_power_of_two() {
        return None;
    }
    let table: Vec<u16> = (0..reta_size)
        .map(|i| reta_entry(i, nworkers) as u16)
        .collect();
    let agrees = (0..reta_size.max(RSS_RETA_BASE))
        .all(|h| usize::from(table[h & (reta_size - 1)]) == reta_entry(h, nworkers));
    agrees.then_some(table)
}

/// What to program into a port facing `side` with `nqueues` rx queues
/// (queue `q` polled by worker `q`) so that it delivers each packet to its
/// owner; or why the device cannot.
pub fn program(side: Side, caps: &Caps, nqueues: u16) -> Result<Program, String> {
    let fields = side.fields();
    if nqueues < 2 {
        return Err(format!("{nqueues} rx queue(s): nothing to spread"));
    }
    if caps.rss_offloads & REQUIRED_FLOWS != REQUIRED_FLOWS {
        return Err(format!(
            "no IPv4 TCP/UDP RSS (offloads {:#x})",
            caps.rss_offloads
        ));
    }
    if caps.rss_offloads & fields.modifiers() != fields.modifiers() {
        return Err(format!(
            "cannot hash on {fields} only (offloads {:#x})",
            caps.rss_offloads
        ));
    }
    let key_len = match caps.hash_key_size {
        0 => RSS_KEY.len(),
        n => usize::from(n),
    };
    if key_len < MIN_KEY {
        return Err(format!("{key_len}-byte hash key, {MIN_KEY} needed"));
    }
    let mut key = vec![0u8; key_len];
    let common = key_len.min(RSS_KEY.len());
    key[..common].copy_from_slice(&RSS_KEY[..common]);
    let reta = reta(usize::from(caps.reta_size), usize::from(nqueues)).ok_or_else(|| {
        format!(
            "a {}-entry RETA cannot map hashes to {nqueues} queues as owner_core does",
            caps.reta_size
        )
    })?;
    let hf = REQUIRED_FLOWS | (OPTIONAL_FLOWS & caps.rss_offloads) | fields.modifiers();
    Ok(Program {
        side,
        fields,
        hf,
        key,
        reta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastpath::conn::owner_core;
    use fastpath::conn::rss::{rss_hash, toeplitz};
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// What an ixgbe/i40e/mlx5-class NIC offers: everything ripvs asks.
    fn full_caps(reta_size: u16, hash_key_size: u8) -> Caps {
        Caps {
            rss_offloads: REQUIRED_FLOWS
                | OPTIONAL_FLOWS
                | rss_hf::L3_SRC_ONLY
                | rss_hf::L4_SRC_ONLY
                | rss_hf::L3_DST_ONLY
                | rss_hf::L4_DST_ONLY,
            reta_size,
            hash_key_size,
        }
    }

    /// The NIC's Toeplitz input for the selected fields of a packet:
    /// address then port, network order (the RSS specification's tuple
    /// with the unselected address and port left out).
    fn nic_input(fields: Fields, src: (IpAddr, u16), dst: (IpAddr, u16)) -> Vec<u8> {
        let (addr, port) = match fields {
            Fields::Source => src,
            Fields::Destination => dst,
        };
        let mut v = match addr {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        v.extend_from_slice(&port.to_be_bytes());
        v
    }

    /// The rx queue a NIC programmed with `p` puts this packet on: the
    /// bit-by-bit Toeplitz with the programmed key, low bits of the hash
    /// into the RETA.
    fn nic_queue(p: &Program, src: (IpAddr, u16), dst: (IpAddr, u16)) -> usize {
        let h = toeplitz(&p.key, &nic_input(p.fields, src, dst)) as usize;
        usize::from(p.reta[h & (p.reta.len() - 1)])
    }

    /// Sample client endpoints, IPv4 and IPv6, spread over the space.
    fn clients() -> Vec<(IpAddr, u16)> {
        let mut v = Vec::new();
        let mut x: u32 = 0x9e37_79b9;
        for i in 0..500u32 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let port = (x >> 16) as u16 | 1024;
            v.push((IpAddr::V4(Ipv4Addr::from(x.wrapping_add(i))), port));
            if i % 5 == 0 {
                let a = Ipv6Addr::from((u128::from(x) << 64) | (u128::from(i) * 0x1_0001));
                v.push((IpAddr::V6(a), port ^ 0x5a5a));
            }
        }
        v.push((IpAddr::V4(Ipv4Addr::new(66, 9, 149, 187)), 2794));
        v
    }

    fn owner(c: (IpAddr, u16), n: usize) -> usize {
        match c.0 {
            IpAddr::V4(a) => owner_core(a, c.1, n),
            IpAddr::V6(a) => owner_core(a, c.1, n),
        }
    }

    #[test]
    fn owner_core_hashes_what_a_src_only_nic_hashes() {
        // The specification's Toeplitz with the standard key: its published
        // IPv4 vector (66.9.149.187:2794 -> 161.142.100.80:1766) pins the key
        // and the bit order the simulation uses.
        let spec_input = [66, 9, 149, 187, 161, 142, 100, 80, 0x0a, 0xea, 0x06, 0xe6];
        assert_eq!(toeplitz(&RSS_KEY, &spec_input), 0x51cc_c178);
        assert_eq!(toeplitz(&RSS_KEY, &spec_input[..8]), 0x323e_8fc2);
        // L3_SRC_ONLY|L4_SRC_ONLY: the NIC hashes src_ip ‖ src_port, which is
        // exactly rss_hash(client addr, client port); _DST_ONLY on a reply
        // hashes dst_ip ‖ dst_port, the same client endpoint.
        let server = (IpAddr::V4(Ipv4Addr::new(198, 51, 100, 11)), 8443);
        for c in clients() {
            let want = match c.0 {
                IpAddr::V4(a) => rss_hash(a, c.1),
                IpAddr::V6(a) => rss_hash(a, c.1),
            };
            let src = nic_input(Fields::Source, c, server);
            let dst = nic_input(Fields::Destination, server, c);
            assert_eq!(toeplitz(&RSS_KEY, &src), want, "{c:?}");
            assert_eq!(toeplitz(&RSS_KEY, &dst), want, "{c:?}");
        }
    }

    #[test]
    fn nic_delivers_every_sample_flow_to_its_owner() {
        let vip = (IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100)), 443);
        let rs = (IpAddr::V4(Ipv4Addr::new(198, 51, 100, 11)), 8443);
        for reta_size in [128u16, 512] {
            // 40 bytes (ixgbe, mlx5) and 52 (i40e, ice): the padding lies
            // beyond what a 6- or 18-byte input reads.
            for key_size in [0u8, 40, 52] {
                for n in [1usize, 2, 4] {
                    let caps = full_caps(reta_size, key_size);
                    if n == 1 {
                        assert!(program(Side::Clients, &caps, 1).is_err());
                        let t = reta(usize::from(reta_size), 1).unwrap();
                        assert!(t.iter().all(|&q| q == 0));
                        continue;
                    }
                    let q = n as u16;
                    let cli = program(Side::Clients, &caps, q).unwrap();
                    let srv = program(Side::Servers, &caps, q).unwrap();
                    let both = program(Side::Both, &caps, q).unwrap();
                    assert_eq!(cli.reta.len(), usize::from(reta_size));
                    let key_len = if key_size == 0 { 40 } else { key_size };
                    assert_eq!(cli.key.len(), usize::from(key_len));
                    assert_eq!(cli.key[..40], RSS_KEY);
                    let mut seen = vec![0; n];
                    for c in clients() {
                        let o = owner(c, n);
                        seen[o] += 1;
                        // Client -> VIP on a client-facing port.
                        assert_eq!(nic_queue(&cli, c, vip), o, "{c:?} n={n} reta={reta_size}");
                        // NAT reply real server -> client on a server-facing port.
                        assert_eq!(nic_queue(&srv, rs, c), o, "{c:?} n={n} reta={reta_size}");
                        // One-armed: clients land on their owner.
                        assert_eq!(nic_queue(&both, c, vip), o);
                    }
                    assert!(seen.iter().all(|&s| s > 0), "{seen:?}");
                }
            }
        }
    }

    #[test]
    fn reta_buckets_equal_reta_entry() {
        for size in [128usize, 512] {
            for n in [1usize, 2, 4] {
                let t = reta(size, n).unwrap();
                assert_eq!(t.len(), size);
                for (i, &q) in t.iter().enumerate() {
                    assert_eq!(usize::from(q), reta_entry(i, n));
                    assert!(usize::from(q) < n);
                }
            }
        }
        // 64 buckets (VFs) agree only when the worker count divides 64.
        assert!(reta(64, 4).is_some());
        assert!(reta(64, 3).is_none());
        assert!(reta(128, 3).is_some());
        assert!(reta(0, 2).is_none());
        assert!(reta(96, 2).is_none());
    }

    #[test]
    fn hash_fields_follow_the_side() {
        let caps = full_caps(512, 40);
        let cli = program(Side::Clients, &caps, 4).unwrap();
        let srv = program(Side::Servers, &caps, 4).unwrap();
        let both = program(Side::Both, &caps, 4).unwrap();
        assert_eq!(cli.fields, Fields::Source);
        assert_eq!(both.fields, Fields::Source);
        assert_eq!(srv.fields, Fields::Destination);
        let src = rss_hf::L3_SRC_ONLY | rss_hf::L4_SRC_ONLY;
        let dst = rss_hf::L3_DST_ONLY | rss_hf::L4_DST_ONLY;
        assert_eq!(cli.hf & (src | dst), src);
        assert_eq!(srv.hf & (src | dst), dst);
        assert_eq!(cli.hf & !(src | dst), REQUIRED_FLOWS | OPTIONAL_FLOWS);
        assert_eq!(&cli.key[..], &RSS_KEY[..]);
        // Only what the device offers is asked for.
        let v4_only = Caps {
            rss_offloads: REQUIRED_FLOWS | src,
            ..caps
        };
        assert_eq!(
            program(Side::Clients, &v4_only, 2).unwrap().hf,
            REQUIRED_FLOWS | src
        );
    }

    #[test]
    fn devices_that_cannot_agree_fall_back() {
        let full = full_caps(128, 40);
        // Virtual devices: no RSS at all (net_ring, net_pcap...) or plain
        // 4-tuple hashing without the _ONLY modifiers.
        let none = Caps {
            rss_offloads: 0,
            reta_size: 0,
            hash_key_size: 0,
        };
        assert!(program(Side::Clients, &none, 2).is_err());
        let plain = Caps {
            rss_offloads: REQUIRED_FLOWS | OPTIONAL_FLOWS,
            ..full
        };
        assert!(program(Side::Clients, &plain, 2).is_err());
        // Source-only but not destination-only: fine for clients only.
        let src_only = Caps {
            rss_offloads: REQUIRED_FLOWS | rss_hf::L3_SRC_ONLY | rss_hf::L4_SRC_ONLY,
            ..full
        };
        assert!(program(Side::Clients, &src_only, 2).is_ok());
        assert!(program(Side::Both, &src_only, 2).is_ok());
        assert!(program(Side::Servers, &src_only, 2).is_err());
        // No RETA, an odd RETA, a key too short, or a single queue.
        assert!(program(
            Side::Clients,
            &Caps {
                reta_size: 0,
                ..full
            },
            2
        )
        .is_err());
        assert!(program(
            Side::Clients,
            &Caps {
                reta_size: 64,
                ..full
            },
            3
        )
        .is_err());
        assert!(program(
            Side::Clients,
            &Caps {
                reta_size: 64,
                ..full
            },
            2
        )
        .is_ok());
        assert!(program(
            Side::Clients,
            &Caps {
                hash_key_size: 16,
                ..full
            },
            2
        )
        .is_err());
        assert!(program(Side::Clients, &full, 1).is_err());
    }

    fn cfg(text: &str) -> Config {
        conf::parse(text, "t.toml").unwrap()
    }

    #[test]
    fn two_armed_director_has_a_client_and_a_server_side() {
        let c = cfg(include_str!("../conf/production.example.toml"));
        let names: Vec<&str> = c.ports.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["client", "server"]);
        // The default route on "client" also covers the NAT servers, but
        // their /24 on "server" is the longer match.
        assert_eq!(port_sides(&c), [Side::Clients, Side::Servers]);
        assert_eq!(egress_port(&c, "198.51.100.11".parse().unwrap()), Some(1));
        assert_eq!(egress_port(&c, "203.0.113.9".parse().unwrap()), Some(0));
    }

    const ONE_ARMED: &str = "\
[[ports]]
name = \"p0\"
device = \"net_tap0,iface=rtap0\"
addresses = [\"10.0.0.1/24\"]
[[services]]
protocol = \"tcp\"
vip = \"10.0.0.100\"
port = 80
[[services.real_servers]]
address = \"10.0.0.11\"
method = \"nat\"
";

    #[test]
    fn one_armed_director_faces_both_and_hashes_the_source() {
        let c = cfg(ONE_ARMED);
        assert_eq!(port_sides(&c), [Side::Both]);
        assert_eq!(Side::Both.fields(), Fields::Source);
    }

    #[test]
    fn dr_only_ports_face_clients() {
        let c = cfg(&ONE_ARMED.replace("method = \"nat\"", "method = \"dr\""));
        assert_eq!(port_sides(&c), [Side::Clients]);
    }

    #[test]
    fn server_side_found_by_route_or_neighbour() {
        // Clients on p0 (VIP, default route); NAT servers behind a router
        // on p1 (static route), and one pinned by a static neighbour on p2.
        let text = "\
[[ports]]
name = \"p0\"
device = \"net_ring0\"
addresses = [\"192.0.2.10/24\"]
[[ports]]
name = \"p1\"
device = \"net_ring1\"
addresses = [\"10.1.0.1/24\"]
[[ports]]
name = \"p2\"
device = \"net_ring2\"
addresses = [\"10.2.0.1/24\"]
[[ports]]
name = \"p3\"
device = \"net_ring3\"
addresses = [\"10.3.0.1/24\"]
[[routes]]
prefix = \"0.0.0.0/0\"
via = \"192.0.2.1\"
[[routes]]
prefix = \"172.16.0.0/16\"
via = \"10.1.0.254\"
[[neighbours]]
address = \"10.2.0.7\"
mac = \"02:00:00:00:00:07\"
[[services]]
protocol = \"tcp\"
vip = \"192.0.2.100\"
port = 80
[[services.real_servers]]
address = \"172.16.5.5\"
method = \"nat\"
[[services.real_servers]]
address = \"10.2.0.7\"
method = \"nat\"
[[services.real_servers]]
address = \"10.3.0.9\"
method = \"dr\"
";
        let c = cfg(text);
        assert_eq!(
            port_sides(&c),
            [Side::Clients, Side::Servers, Side::Servers, Side::Clients]
        );
    }

    #[test]
    fn a_server_port_with_the_default_route_faces_both() {
        let text = "\
[[ports]]
name = \"p0\"
device = \"net_ring0\"
addresses = [\"192.0.2.10/24\"]
[[ports]]
name = \"p1\"
device = \"net_ring1\"
addresses = [\"10.1.0.1/24\"]
[[routes]]
prefix = \"0.0.0.0/0\"
via = \"10.1.0.254\"
[[services]]
protocol = \"udp\"
vip = \"192.0.2.53\"
port = 53
[[services.real_servers]]
address = \"10.1.0.5\"
method = \"nat\"
";
        assert_eq!(port_sides(&cfg(text)), [Side::Clients, Side::Both]);
    }
}
