//! Semantic validation of the raw (serde) structs and construction of the
//! clean ones. Each `build_*` function checks one section in document
//! order and returns the first error; nothing outside this module ever sees
//! a partly checked value.

use std::net::{IpAddr, Ipv4Addr};

use toml::Spanned;

use crate::error::{ConfigError, Source};
use crate::health;
use crate::model::*;
use crate::net;
use crate::raw::*;
use crate::vrrp;

pub(crate) type Result<T> = std::result::Result<T, ConfigError>;

pub(crate) fn build(src: &Source<'_>, raw: &RawConfig) -> Result<Config> {
    let eal = build_eal(src, raw.eal.as_ref())?;
    let dataplane = build_dataplane(src, raw.dataplane.as_ref())?;
    let ports = build_ports(src, raw.ports.as_ref())?;
    let routes = build_routes(src, &raw.routes, &ports)?;
    let neighbours = build_neighbours(src, &raw.neighbours, &ports)?;
    let fwmarks = build_fwmarks(src, &raw.fwmarks)?;
    let services = build_services(src, &raw.services, &fwmarks)?;
    let ipvs = build_ipvs(src, raw.ipvs.as_ref())?;
    let defence = build_defence(src, raw.defence.as_ref())?;
    let sync = build_sync(src, raw.sync.as_ref())?;
    let vrrp = vrrp::build(src, &raw.vrrp, &ports, &sync, raw.sync.as_deref())?;
    Ok(Config {
        eal,
        dataplane,
        ports,
        routes,
        neighbours,
        services,
        fwmarks,
        ipvs,
        defence,
        sync,
        vrrp,
    })
}

/// `value` as a `T` in `lo..=hi`.
pub(crate) fn int<T: TryFrom<i64>>(
    src: &Source<'_>,
    value: &Spanned<i64>,
    key: &str,
    lo: i64,
    hi: i64,
) -> Result<T> {
    let n = *value.get_ref();
    let range_err = || {
        src.at(
            value,
            key,
            format!("{n} is out of range (expected {lo}..={hi})"),
        )
    };
    if n < lo || n > hi {
        return Err(range_err());
    }
    T::try_from(n).map_err(|_| range_err())
}

/// An optional integer key with its default.
pub(crate) fn opt_int<T: TryFrom<i64>>(
    src: &Source<'_>,
    value: Option<&Spanned<i64>>,
    key: &str,
    lo: i64,
    hi: i64,
    default: T,
) -> Result<T> {
    value.map_or(Ok(default), |v| int(src, v, key, lo, hi))
}

// ---------------------------------------------------------------- [eal]

/// EAL options that would fight `main_lcore`/`worker_lcores`.
fn sets_lcores(arg: &str) -> bool {
    let long = |name: &str| arg == name || arg.starts_with(&format!("{name}="));
    // Short options may carry their value glued on: `-l1-3`, `-c0x3`.
    let short = arg.starts_with("-l") || arg.starts_with("-c");
    short || long("--lcores") || long("--main-lcore") || long("--master-lcore")
}

fn build_eal(src: &Source<'_>, raw: Option<&Table<RawEal>>) -> Result<Eal> {
    let Some(raw) = raw else {
        return Ok(Eal::default());
    };
    let mut args = Vec::new();
    for (i, arg) in raw.args.iter().flatten().enumerate() {
        if sets_lcores(arg.get_ref()) {
            return Err(src.at(
                arg,
                format!("eal.args[{i}]"),
                format!(
                    "\"{}\" sets lcores; use eal.main_lcore and eal.worker_lcores instead",
                    arg.get_ref()
                ),
            ));
        }
        args.push(arg.get_ref().clone());
    }
    let max = i64::from(MAX_LCORE) - 1;
    let main_lcore = opt_int(src, raw.main_lcore.as_ref(), "eal.main_lcore", 0, max, 0u32)?;
    let worker_lcores = match &raw.worker_lcores {
        None => Eal::default().worker_lcores,
        Some(list) => {
            if list.get_ref().is_empty() {
                return Err(src.at(
                    list,
                    "eal.worker_lcores",
                    "at least one worker lcore is required",
                ));
            }
            let mut out: Vec<u32> = Vec::new();
            for (i, v) in list.get_ref().iter().enumerate() {
                let key = format!("eal.worker_lcores[{i}]");
                let lcore: u32 = int(src, v, &key, 0, max)?;
                if lcore == main_lcore {
                    return Err(src.at(
                        v,
                        key,
                        format!("lcore {lcore} is the main lcore (eal.main_lcore); workers need other lcores"),
                    ));
                }
                if let Some(j) = out.iter().position(|&l| l == lcore) {
                    return Err(src.at(
                        v,
                        key,
                        format!("duplicate worker lcore {lcore} (also eal.worker_lcores[{j}])"),
                    ));
                }
                out.push(lcore);
            }
            out
        }
    };
    Ok(Eal {
        args,
        main_lcore,
        worker_lcores,
    })
}

// ---------------------------------------------------------- [dataplane]

fn descriptors(src: &Source<'_>, value: Option<&Spanned<i64>>, key: &str) -> Result<u16> {
    let Some(value) = value else {
        return Ok(1024);
    };
    let n = *value.get_ref();
    if !(64..=32768).contains(&n) || n.count_ones() != 1 {
        return Err(src.at(
            value,
            key,
            format!("{n} is out of range (expected a power of two in 64..=32768)"),
        ));
    }
    Ok(n as u16)
}

fn build_dataplane(src: &Source<'_>, raw: Option<&Table<RawDataplane>>) -> Result<Dataplane> {
    let d = Dataplane::default();
    let Some(raw) = raw else {
        return Ok(d);
    };
    Ok(Dataplane {
        mbufs_per_socket: opt_int(
            src,
            raw.mbufs_per_socket.as_ref(),
            "dataplane.mbufs_per_socket",
            1023,
            i64::from(u32::MAX),
            d.mbufs_per_socket,
        )?,
        // RTE_MEMPOOL_CACHE_MAX_SIZE
        mbuf_cache: opt_int(
            src,
            raw.mbuf_cache.as_ref(),
            "dataplane.mbuf_cache",
            0,
            512,
            d.mbuf_cache,
        )?,
        rx_descriptors: descriptors(src, raw.rx_descriptors.as_ref(), "dataplane.rx_descriptors")?,
        tx_descriptors: descriptors(src, raw.tx_descriptors.as_ref(), "dataplane.tx_descriptors")?,
        max_connections: opt_int(
            src,
            raw.max_connections.as_ref(),
            "dataplane.max_connections",
            1,
            1 << 30,
            d.max_connections,
        )?,
    })
}

// ------------------------------------------------------------ [[ports]]

/// Names already taken, with the key that took them, for "already used by".
#[derive(Default)]
struct Taken {
    entries: Vec<(String, String)>,
}

impl Taken {
    fn find(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, k)| k.as_str())
    }
    fn add(&mut self, name: &str, key: &str) {
        self.entries.push((name.to_string(), key.to_string()));
    }
}

fn valid_port_name(s: &str) -> bool {
    (1..=15).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

struct PortChecker {
    names: Taken,
    /// DPDK device identities: normalised PCI address or vdev name.
    devices: Taken,
    /// Kernel interface names (exception taps, `iface=` of tap vdevs).
    ifaces: Taken,
}

impl PortChecker {
    fn device(
        &mut self,
        src: &Source<'_>,
        value: &Spanned<String>,
        id: &str,
        key: &str,
    ) -> Result<()> {
        if let Some(other) = self.devices.find(id) {
            return Err(src.at(
                value,
                key,
                format!("device {id} is already used by {other}"),
            ));
        }
        self.devices.add(id, key);
        Ok(())
    }

    fn iface(&mut self, src: &Source<'_>, at: usize, name: &str, key: &str) -> Result<()> {
        if let Some(other) = self.ifaces.find(name) {
            return Err(src.error(
                at,
                key,
                format!("interface name `{name}` is already used by {other}"),
            ));
        }
        self.ifaces.add(name, key);
        Ok(())
    }

    /// Registers a vdev spec's identity and any kernel interface it makes.
    fn vdev(
        &mut self,
        src: &Source<'_>,
        value: &Spanned<String>,
        name: &str,
        args: &str,
        key: &str,
    ) -> Result<()> {
        self.device(src, value, name, key)?;
        if let Some(iface) = net::vdev_kernel_iface(name, args) {
            self.iface(src, value.span().start, iface, key)?;
        }
        Ok(())
    }
}

fn build_ports(src: &Source<'_>, raw: Option<&Vec<Spanned<Table<RawPort>>>>) -> Result<Vec<Port>> {
    let list = raw.map(Vec::as_slice).unwrap_or_default();
    if list.is_empty() {
        // At `ports = []` if that is what the file says, else at the top.
        let at = src.top_level_value_start("ports").unwrap_or(0);
        return Err(src.error(at, "ports", "at least one [[ports]] is required"));
    }
    let mut checker = PortChecker {
        names: Taken::default(),
        devices: Taken::default(),
        ifaces: Taken::default(),
    };
    let mut ports: Vec<Port> = Vec::new();
    for (i, raw_port) in list.iter().enumerate() {
        ports.push(build_port(src, &mut checker, &ports, i, raw_port)?);
    }
    Ok(ports)
}

fn build_port(
    src: &Source<'_>,
    checker: &mut PortChecker,
    earlier: &[Port],
    i: usize,
    table: &Spanned<Table<RawPort>>,
) -> Result<Port> {
    let raw = table.get_ref();
    let base = format!("ports[{i}]");
    let key = |k: &str| format!("{base}.{k}");

    let name = raw.name.get_ref();
    if !valid_port_name(name) {
        return Err(src.at(
            &raw.name,
            key("name"),
            format!(
                "invalid port name \"{name}\" (expected 1-15 characters from a-z, 0-9, _ and -)"
            ),
        ));
    }
    if let Some(other) = checker.names.find(name) {
        return Err(src.at(
            &raw.name,
            key("name"),
            format!("port name `{name}` is already used by {other}"),
        ));
    }
    checker.names.add(name, &base);

    let device = net::parse_device(raw.device.get_ref())
        .map_err(|m| src.at(&raw.device, key("device"), m))?;
    match &device {
        Device::Pci(addr) => checker.device(src, &raw.device, addr, &key("device"))?,
        Device::Vdev { name, args } => {
            checker.vdev(src, &raw.device, name, args, &key("device"))?
        }
    }

    let mtu = opt_int(src, raw.mtu.as_ref(), &key("mtu"), 68, 9000, 1500u16)?;

    let mac = match &raw.mac {
        None => None,
        Some(m) => Some(net::parse_mac(m.get_ref()).map_err(|e| src.at(m, key("mac"), e))?),
    };

    let mut addresses: Vec<IfAddr> = Vec::new();
    for (j, a) in raw.addresses.iter().enumerate() {
        let akey = format!("{base}.addresses[{j}]");
        let ifaddr = net::parse_ifaddr(a.get_ref()).map_err(|m| src.at(a, &akey, m))?;
        let same = |x: &IfAddr| x.addr == ifaddr.addr;
        let clash = earlier
            .iter()
            .enumerate()
            .find_map(|(pi, p)| {
                p.addresses
                    .iter()
                    .position(same)
                    .map(|ai| (pi, p.name.as_str(), ai))
            })
            .or_else(|| {
                addresses
                    .iter()
                    .position(same)
                    .map(|ai| (i, name.as_str(), ai))
            });
        if let Some((pi, pname, ai)) = clash {
            return Err(src.at(
                a,
                akey,
                format!(
                    "address {} is already configured on port `{pname}` (ports[{pi}].addresses[{ai}])",
                    ifaddr.addr
                ),
            ));
        }
        addresses.push(ifaddr);
    }

    let exception = build_exception(src, checker, &base, name, table)?;

    Ok(Port {
        name: name.clone(),
        device,
        mtu,
        mac,
        addresses,
        exception,
    })
}

fn build_exception(
    src: &Source<'_>,
    checker: &mut PortChecker,
    base: &str,
    port_name: &str,
    port_table: &Spanned<Table<RawPort>>,
) -> Result<Exception> {
    let raw = port_table.get_ref().exception.as_ref();
    let key = |k: &str| format!("{base}.exception.{k}");
    let enabled = raw
        .and_then(|e| e.enabled.as_ref())
        .is_none_or(|v| *v.get_ref());

    let iface = match raw.and_then(|e| e.iface.as_ref()) {
        Some(v) => {
            net::check_ifname(v.get_ref()).map_err(|m| src.at(v, key("iface"), m))?;
            checker.iface(src, v.span().start, v.get_ref(), &key("iface"))?;
            v.get_ref().clone()
        }
        None => {
            let name = format!("rip-{port_name}");
            // Point at the port's table, where the key would go.
            let at = port_table.span().start;
            if name.len() > MAX_IFNAME_LEN {
                return Err(src.error(
                    at,
                    key("iface"),
                    format!("default \"{name}\" is longer than {MAX_IFNAME_LEN} bytes; set it explicitly"),
                ));
            }
            checker.iface(src, at, &name, &key("iface"))?;
            name
        }
    };

    let device = match raw.and_then(|e| e.device.as_ref()) {
        None => None,
        Some(v) => {
            let (name, args) =
                net::parse_vdev(v.get_ref()).map_err(|m| src.at(v, key("device"), m))?;
            checker.vdev(src, v, &name, &args, &key("device"))?;
            Some(v.get_ref().clone())
        }
    };

    Ok(Exception {
        enabled,
        iface,
        device,
    })
}

// ------------------------------------------------- routes and neighbours

/// Where `ip` is one of the director's own addresses.
fn own_address(ports: &[Port], ip: IpAddr) -> Option<String> {
    ports.iter().enumerate().find_map(|(pi, p)| {
        p.addresses
            .iter()
            .position(|a| a.addr == ip)
            .map(|ai| format!("ports[{pi}].addresses[{ai}]"))
    })
}

pub(crate) fn lookup_port<'p>(
    src: &Source<'_>,
    ports: &'p [Port],
    name: &Spanned<String>,
    key: &str,
) -> Result<&'p Port> {
    ports
        .iter()
        .find(|p| p.name == *name.get_ref())
        .ok_or_else(|| src.at(name, key, format!("no port named `{}`", name.get_ref())))
}

/// A host address (`via` of a route, `address` of a neighbour) that must
/// lie in a connected network: of `port` if given, else of exactly one
/// port, whose name is returned.
fn connected_port(
    src: &Source<'_>,
    ports: &[Port],
    port: Option<&Spanned<String>>,
    port_key: &str,
    value: &Spanned<String>,
    key: &str,
    what: &str,
) -> Result<String> {
    let ip = IpAddr::V4(parse_host(src, value, key)?);
    if let Some(own) = own_address(ports, ip) {
        return Err(src.at(
            value,
            key,
            format!("{what} {ip} is an address of this director ({own})"),
        ));
    }
    if let Some(port) = port {
        let p = lookup_port(src, ports, port, port_key)?;
        if p.is_connected(ip) {
            return Ok(p.name.clone());
        }
        let nets = if p.addresses.is_empty() {
            "it has no addresses".to_string()
        } else {
            let nets: Vec<String> = p
                .addresses
                .iter()
                .map(|a| format!("{}/{}", a.network(), a.prefix_len))
                .collect();
            nets.join(", ")
        };
        return Err(src.at(
            value,
            key,
            format!(
                "{what} {ip} is not inside a connected network of port `{}` ({nets})",
                p.name
            ),
        ));
    }
    let candidates: Vec<&Port> = ports.iter().filter(|p| p.is_connected(ip)).collect();
    match candidates[..] {
        [p] => Ok(p.name.clone()),
        [] => Err(src.at(
            value,
            key,
            format!("{what} {ip} is not inside any port's connected network"),
        )),
        _ => {
            let names: Vec<String> = candidates.iter().map(|p| format!("`{}`", p.name)).collect();
            Err(src.at(
                value,
                key,
                format!(
                    "{what} {ip} is inside connected networks of several ports ({}); set `port`",
                    names.join(", ")
                ),
            ))
        }
    }
}

/// A plain IPv4 host address.
fn parse_host(src: &Source<'_>, value: &Spanned<String>, key: &str) -> Result<Ipv4Addr> {
    net::parse_v4(value.get_ref())
        .and_then(|a| net::check_host(a).map(|()| a))
        .map_err(|m| src.at(value, key, m))
}

fn build_routes(
    src: &Source<'_>,
    raw: &[Spanned<Table<RawRoute>>],
    ports: &[Port],
) -> Result<Vec<Route>> {
    let mut routes: Vec<Route> = Vec::new();
    for (i, table) in raw.iter().enumerate() {
        let r = table.get_ref();
        let key = |k: &str| format!("routes[{i}].{k}");
        let (prefix, prefix_len) = net::parse_route_prefix(r.prefix.get_ref())
            .map_err(|m| src.at(&r.prefix, key("prefix"), m))?;
        let prefix = IpAddr::V4(prefix);
        if let Some(j) = routes
            .iter()
            .position(|o| o.prefix == prefix && o.prefix_len == prefix_len)
        {
            return Err(src.at(
                &r.prefix,
                key("prefix"),
                format!("duplicate route {prefix}/{prefix_len} (also routes[{j}])"),
            ));
        }
        let (via, port) = match (&r.via, &r.port) {
            (None, None) => {
                return Err(src.at(
                    table,
                    key("port"),
                    "missing required key (a route needs `port`, `via` or both)",
                ))
            }
            (None, Some(port)) => (
                None,
                lookup_port(src, ports, port, &key("port"))?.name.clone(),
            ),
            (Some(via), port) => {
                let name = connected_port(
                    src,
                    ports,
                    port.as_ref(),
                    &key("port"),
                    via,
                    &key("via"),
                    "via",
                )?;
                let ip = net::parse_v4(via.get_ref()).map(IpAddr::V4).ok();
                (ip, name)
            }
        };
        routes.push(Route {
            prefix,
            prefix_len,
            via,
            port,
        });
    }
    Ok(routes)
}

fn build_neighbours(
    src: &Source<'_>,
    raw: &[Spanned<Table<RawNeighbour>>],
    ports: &[Port],
) -> Result<Vec<Neighbour>> {
    let mut out: Vec<Neighbour> = Vec::new();
    for (i, table) in raw.iter().enumerate() {
        let n = table.get_ref();
        let key = |k: &str| format!("neighbours[{i}].{k}");
        let port = connected_port(
            src,
            ports,
            n.port.as_ref(),
            &key("port"),
            &n.address,
            &key("address"),
            "address",
        )?;
        let addr = IpAddr::V4(parse_host(src, &n.address, &key("address"))?);
        if let Some(j) = out.iter().position(|o| o.addr == addr && o.port == port) {
            return Err(src.at(
                &n.address,
                key("address"),
                format!("duplicate neighbour {addr} on port `{port}` (also neighbours[{j}])"),
            ));
        }
        let mac = net::parse_mac(n.mac.get_ref()).map_err(|m| src.at(&n.mac, key("mac"), m))?;
        out.push(Neighbour { addr, mac, port });
    }
    Ok(out)
}

// ---------------------------------------------------------- [[services]]

/// The scheduler names IPVS ships (reference 3.3).
pub const SCHEDULERS: [&str; 14] = [
    "rr", "wrr", "lc", "wlc", "sed", "nq", "lblc", "lblcr", "dh", "sh", "mh", "fo", "ovf", "twos",
];

/// Longest persistence ipvsadm accepts: 31 days.
const MAX_PERSISTENT: i64 = 2_678_400;

fn parse_protocol(src: &Source<'_>, v: &Spanned<String>, key: &str) -> Result<Protocol> {
    match v.get_ref().as_str() {
        "tcp" => Ok(Protocol::Tcp),
        "udp" => Ok(Protocol::Udp),
        "sctp" => Ok(Protocol::Sctp),
        other => Err(src.at(
            v,
            key,
            format!("invalid protocol \"{other}\" (expected \"tcp\", \"udp\" or \"sctp\")"),
        )),
    }
}

fn build_services(
    src: &Source<'_>,
    raw: &[Spanned<Table<RawService>>],
    fwmarks: &[Fwmark],
) -> Result<Vec<Service>> {
    let mut out: Vec<Service> = Vec::new();
    for (i, table) in raw.iter().enumerate() {
        let s = build_service(src, i, table, fwmarks)?;
        let same = |o: &Service| {
            (o.protocol, o.vip, o.port, o.fwmark) == (s.protocol, s.vip, s.port, s.fwmark)
        };
        if let Some(j) = out.iter().position(same) {
            let r = table.get_ref();
            let (span, k) = match (&r.fwmark, &r.vip) {
                (Some(m), _) => (m.span(), "fwmark"),
                (None, Some(v)) => (v.span(), "vip"),
                (None, None) => (table.span(), "vip"),
            };
            return Err(src.error(
                span.start,
                format!("services[{i}].{k}"),
                format!("duplicate service {} (also services[{j}])", s.label()),
            ));
        }
        out.push(s);
    }
    Ok(out)
}

fn build_service(
    src: &Source<'_>,
    i: usize,
    table: &Spanned<Table<RawService>>,
    fwmarks: &[Fwmark],
) -> Result<Service> {
    let s = table.get_ref();
    let key = |k: &str| format!("services[{i}].{k}");
    let missing = |k: &str| src.at(table, key(k), "missing required key");
    let (protocol, vip, port, fwmark) = match &s.fwmark {
        Some(m) => {
            for (k, set) in [
                ("protocol", s.protocol.is_some()),
                ("vip", s.vip.is_some()),
                ("port", s.port.is_some()),
            ] {
                if set {
                    return Err(src.at(m, key("fwmark"), format!("a fwmark service has no `{k}`: its packets are chosen by the mark's rules")));
                }
            }
            let mark: u32 = int(src, m, &key("fwmark"), 1, u32::MAX as i64)?;
            if !fwmarks.iter().any(|f| f.mark == mark) {
                return Err(src.at(
                    m,
                    key("fwmark"),
                    format!("no [[fwmarks]] defines mark {mark}"),
                ));
            }
            (
                Protocol::Tcp,
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                0,
                Some(mark),
            )
        }
        None => {
            let protocol = parse_protocol(
                src,
                s.protocol.as_ref().ok_or_else(|| missing("protocol"))?,
                &key("protocol"),
            )?;
            let vip = IpAddr::V4(parse_host(
                src,
                s.vip.as_ref().ok_or_else(|| missing("vip"))?,
                &key("vip"),
            )?);
            let port = int(
                src,
                s.port.as_ref().ok_or_else(|| missing("port"))?,
                &key("port"),
                0,
                65535,
            )?;
            (protocol, vip, port, None)
        }
    };
    let scheduler = match &s.scheduler {
        None => "wlc".to_string(),
        Some(v) if SCHEDULERS.contains(&v.get_ref().as_str()) => v.get_ref().clone(),
        Some(v) => {
            return Err(src.at(
                v,
                key("scheduler"),
                format!(
                    "unknown scheduler \"{}\" (expected one of {})",
                    v.get_ref(),
                    SCHEDULERS.join(", ")
                ),
            ))
        }
    };
    let mut sched_flags = SchedFlags::default();
    for (j, f) in s.sched_flags.iter().flatten().enumerate() {
        let k = key(&format!("sched_flags[{j}]"));
        let (needs, flag) = match f.get_ref().as_str() {
            "sh-fallback" => ("sh", &mut sched_flags.sh_fallback),
            "sh-port" => ("sh", &mut sched_flags.sh_port),
            "mh-fallback" => ("mh", &mut sched_flags.mh_fallback),
            "mh-port" => ("mh", &mut sched_flags.mh_port),
            other => {
                return Err(src.at(f, k, format!("invalid scheduler flag \"{other}\" (expected sh-fallback, sh-port, mh-fallback or mh-port)")))
            }
        };
        if scheduler != needs {
            return Err(src.at(
                f,
                k,
                format!(
                    "incompatible scheduler flag \"{}\": it is for the {needs} scheduler",
                    f.get_ref()
                ),
            ));
        }
        *flag = true;
    }
    let persistent = s
        .persistent
        .as_ref()
        .map(|p| int::<u32>(src, p, &key("persistent"), 1, MAX_PERSISTENT))
        .transpose()?;
    let netmask = match &s.netmask {
        None => Ipv4Addr::BROADCAST,
        Some(v) => net::parse_v4(v.get_ref())
            .ok()
            .filter(|m| {
                m.to_bits().leading_ones() + m.to_bits().trailing_zeros() == 32
                    && !m.is_unspecified()
            })
            .ok_or_else(|| {
                src.at(
                    v,
                    key("netmask"),
                    format!(
                        "invalid netmask \"{}\" (expected a contiguous mask like 255.255.255.0)",
                        v.get_ref()
                    ),
                )
            })?,
    };
    if port == 0 && fwmark.is_none() && persistent.is_none() {
        let at = s.port.as_ref().expect("non-fwmark services have a port");
        return Err(src.at(
            at,
            key("port"),
            "port 0 (all ports) is only allowed for persistent services, as in IPVS",
        ));
    }
    let one_packet = match &s.one_packet {
        Some(v) if *v.get_ref() && protocol != Protocol::Udp && fwmark.is_none() => {
            return Err(src.at(
                v,
                key("one_packet"),
                "one-packet scheduling is only for UDP and fwmark services",
            ))
        }
        Some(v) => *v.get_ref(),
        None => false,
    };
    health::build(
        src,
        &health::Layers {
            svc: s.health.as_deref(),
            svc_key: key("health"),
            rs: None,
            rs_key: String::new(),
            fallback: table.span().start,
        },
        None,
    )?;
    let mut real_servers: Vec<RealServer> = Vec::new();
    for (j, t) in s.real_servers.iter().enumerate() {
        let rkey = |k: &str| key(&format!("real_servers[{j}].{k}"));
        let r = t.get_ref();
        let addr = IpAddr::V4(parse_host(src, &r.address, &rkey("address"))?);
        let method = parse_method(src, r.method.as_ref(), &rkey("method"))?;
        let rport = dest_port(src, r.port.as_ref(), &rkey("port"), method, port, fwmark)?;
        let weight = opt_int(src, r.weight.as_ref(), &rkey("weight"), 0, 65535, 1)?;
        let upper_threshold = opt_int(
            src,
            r.upper_threshold.as_ref(),
            &rkey("upper_threshold"),
            0,
            i32::MAX as i64,
            0,
        )?;
        let lower_threshold = opt_int(
            src,
            r.lower_threshold.as_ref(),
            &rkey("lower_threshold"),
            0,
            i32::MAX as i64,
            0,
        )?;
        if let Some(l) = &r.lower_threshold {
            if lower_threshold > upper_threshold {
                return Err(src.at(
                    l,
                    rkey("lower_threshold"),
                    format!(
                    "lower_threshold {lower_threshold} is above upper_threshold {upper_threshold}"
                ),
                ));
            }
        }
        if let Some(k) = real_servers
            .iter()
            .position(|o| (o.addr, o.port) == (addr, rport))
        {
            return Err(src.at(
                &r.address,
                rkey("address"),
                format!("duplicate real server {addr}:{rport} (also real_servers[{k}])"),
            ));
        }
        let health = health::build(
            src,
            &health::Layers {
                svc: s.health.as_deref(),
                svc_key: key("health"),
                rs: r.health.as_deref(),
                rs_key: rkey("health"),
                fallback: t.span().start,
            },
            Some(rport),
        )?;
        real_servers.push(RealServer {
            addr,
            port: rport,
            method,
            weight,
            upper_threshold,
            lower_threshold,
            health,
        });
    }
    let sorry_server = match &s.sorry_server {
        None => None,
        Some(raw) => {
            let skey = |k: &str| key(&format!("sorry_server.{k}"));
            let addr = IpAddr::V4(parse_host(src, &raw.address, &skey("address"))?);
            let method = parse_method(src, raw.method.as_ref(), &skey("method"))?;
            let sport = dest_port(src, raw.port.as_ref(), &skey("port"), method, port, fwmark)?;
            if let Some(k) = real_servers
                .iter()
                .position(|o| (o.addr, o.port) == (addr, sport))
            {
                return Err(src.at(
                    &raw.address,
                    skey("address"),
                    format!("sorry server {addr}:{sport} is also real_servers[{k}]"),
                ));
            }
            Some(SorryServer {
                addr,
                port: sport,
                method,
            })
        }
    };
    Ok(Service {
        protocol,
        vip,
        port,
        fwmark,
        scheduler,
        sched_flags,
        persistent,
        netmask,
        one_packet,
        quiescent: s.quiescent.as_ref().is_some_and(|q| *q.get_ref()),
        sorry_server,
        real_servers,
    })
}

fn parse_method(src: &Source<'_>, raw: Option<&Spanned<String>>, key: &str) -> Result<Method> {
    match raw.map(|m| (m, m.get_ref().as_str())) {
        None | Some((_, "dr")) => Ok(Method::Dr),
        Some((_, "tun")) => Ok(Method::Tun),
        Some((_, "nat")) => Ok(Method::Nat),
        Some((m, other)) => Err(src.at(
            m,
            key,
            format!("invalid method \"{other}\" (expected \"dr\", \"tun\" or \"nat\")"),
        )),
    }
}

/// A real (or sorry) server's port: the service's when left out.
fn dest_port(
    src: &Source<'_>,
    raw: Option<&Spanned<i64>>,
    key: &str,
    method: Method,
    port: u16,
    fwmark: Option<u32>,
) -> Result<u16> {
    let Some(p) = raw else { return Ok(port) };
    let rp: u16 = int(src, p, key, 0, 65535)?;
    if method != Method::Nat && fwmark.is_none() && rp != port {
        return Err(src.at(
            p,
            key,
            format!(
                "a {} real server cannot change the port: it must be the service port {port} (or be left out)",
                method.as_str()
            ),
        ));
    }
    Ok(rp)
}

// ----------------------------------------------------------- [[fwmarks]]

fn build_fwmarks(src: &Source<'_>, raw: &[Spanned<Table<RawFwmark>>]) -> Result<Vec<Fwmark>> {
    let mut out: Vec<Fwmark> = Vec::new();
    for (i, table) in raw.iter().enumerate() {
        let f = table.get_ref();
        let key = |k: &str| format!("fwmarks[{i}].{k}");
        let mark: u32 = int(src, &f.mark, &key("mark"), 1, u32::MAX as i64)?;
        if let Some(j) = out.iter().position(|o| o.mark == mark) {
            return Err(src.at(
                &f.mark,
                key("mark"),
                format!("duplicate mark {mark} (also fwmarks[{j}])"),
            ));
        }
        if f.rules.is_empty() {
            return Err(src.at(
                &f.mark,
                key("match"),
                format!("mark {mark} has no [[fwmarks.match]] rule, so no packet could carry it"),
            ));
        }
        let mut rules = Vec::new();
        for (j, r) in f.rules.iter().enumerate() {
            let r = r.get_ref();
            let rkey = |k: &str| key(&format!("match[{j}].{k}"));
            let protocol = r
                .protocol
                .as_ref()
                .map(|p| parse_protocol(src, p, &rkey("protocol")))
                .transpose()?;
            let (dest, dest_len) = net::parse_route_prefix(r.destination.get_ref())
                .map_err(|m| src.at(&r.destination, rkey("destination"), m))?;
            let ports = match &r.ports {
                None => (0, 65535),
                Some(p) => parse_port_range(p.get_ref()).ok_or_else(|| {
                    src.at(
                        p,
                        rkey("ports"),
                        format!(
                            "invalid port range \"{}\" (expected PORT or LOW-HIGH)",
                            p.get_ref()
                        ),
                    )
                })?,
            };
            rules.push(MarkRule {
                protocol,
                dest: IpAddr::V4(dest),
                dest_len,
                ports,
            });
        }
        out.push(Fwmark { mark, rules });
    }
    Ok(out)
}

/// `80` or `1024-65535`.
fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    let (lo, hi) = s.split_once('-').unwrap_or((s, s));
    let (lo, hi): (u16, u16) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
    (lo <= hi).then_some((lo, hi))
}

// ---------------------------------------------------------------- [ipvs]

fn build_ipvs(src: &Source<'_>, raw: Option<&Table<RawIpvs>>) -> Result<Ipvs> {
    let d = Ipvs::default();
    let Some(r) = raw else { return Ok(d) };
    let flag = |v: &Option<Spanned<bool>>, default| v.as_ref().map_or(default, |b| *b.get_ref());
    // 0 is not "keep" here (that is --set's meaning): the file states values.
    let timeout = |v: &Option<Spanned<i64>>, k: &str, default| {
        opt_int(src, v.as_ref(), k, 1, MAX_PERSISTENT, default)
    };
    Ok(Ipvs {
        expire_nodest_conn: flag(&r.expire_nodest_conn, d.expire_nodest_conn),
        expire_quiescent_template: flag(&r.expire_quiescent_template, d.expire_quiescent_template),
        conn_reuse_mode: opt_int(
            src,
            r.conn_reuse_mode.as_ref(),
            "ipvs.conn_reuse_mode",
            0,
            3,
            d.conn_reuse_mode,
        )?,
        sloppy_tcp: flag(&r.sloppy_tcp, d.sloppy_tcp),
        sloppy_sctp: flag(&r.sloppy_sctp, d.sloppy_sctp),
        timeout_tcp: timeout(&r.timeout_tcp, "ipvs.timeout_tcp", d.timeout_tcp)?,
        timeout_tcpfin: timeout(&r.timeout_tcpfin, "ipvs.timeout_tcpfin", d.timeout_tcpfin)?,
        timeout_udp: timeout(&r.timeout_udp, "ipvs.timeout_udp", d.timeout_udp)?,
        backup_only: flag(&r.backup_only, d.backup_only),
        drop_entry: opt_int(src, r.drop_entry.as_ref(), "ipvs.drop_entry", 0, 3, 0)?,
        drop_packet: opt_int(src, r.drop_packet.as_ref(), "ipvs.drop_packet", 0, 3, 0)?,
        secure_tcp: opt_int(src, r.secure_tcp.as_ref(), "ipvs.secure_tcp", 0, 3, 0)?,
        // The kernel takes any int; 0 or less in mode 3 drops nothing,
        // which is mode 0 said another way: refuse it.
        am_droprate: opt_int(
            src,
            r.am_droprate.as_ref(),
            "ipvs.am_droprate",
            1,
            i64::from(i32::MAX),
            d.am_droprate,
        )?,
    })
}

// ---------------------------------------------------------------- [defence]

fn build_defence(src: &Source<'_>, raw: Option<&Table<RawDefence>>) -> Result<Defence> {
    let d = Defence::default();
    let Some(r) = raw else { return Ok(d) };
    let table_threshold = match &r.table_threshold {
        None => d.table_threshold,
        Some(v) => {
            let t = *v.get_ref();
            // Per mille is what the workers use: finer is meaningless.
            if !(0.0..=1.0).contains(&t) || t.is_nan() {
                return Err(src.at(
                    v,
                    "defence.table_threshold",
                    format!("{t} is out of range (expected a fraction, 0.0..=1.0)"),
                ));
            }
            t
        }
    };
    Ok(Defence { table_threshold })
}

// ---------------------------------------------------------------- [sync]

/// Largest UDP payload in an IPv4 datagram (65535 less IP and UDP
/// headers): the kernel's upper clamp of `sync_maxlen`.
pub(crate) const SYNC_MAXLEN_MAX: i64 = 65535 - 20 - 8;
/// The kernel's lower clamp of a backup's `sync_maxlen`.
pub(crate) const SYNC_BACKUP_MAXLEN_MIN: i64 = 1024;
/// ripvs keeps a connection's next sync time as 16-bit seconds compared
/// modulo 2^16, which orders two times only less than 2^15 s apart.
const SYNC_REFRESH_MAX: i64 = (1 << 15) - 1;

fn build_sync(src: &Source<'_>, raw: Option<&Table<RawSync>>) -> Result<Sync> {
    let d = Sync::default();
    let Some(r) = raw else { return Ok(d) };
    let flag = |v: &Option<Spanned<bool>>, default| v.as_ref().map_or(default, |b| *b.get_ref());
    let (master, backup) = match r.state.as_ref() {
        None => (false, false),
        Some(v) => match v.get_ref().as_str() {
            "none" => (false, false),
            "master" => (true, false),
            "backup" => (false, true),
            "both" => (true, true),
            other => {
                return Err(src.at(
                    v,
                    "sync.state",
                    format!(
                        "invalid sync state \"{other}\" (expected \"none\", \"master\", \"backup\" or \"both\")"
                    ),
                ))
            }
        },
    };
    let interface = match (&r.interface, &r.state) {
        (Some(v), _) => {
            net::check_ifname(v.get_ref()).map_err(|m| src.at(v, "sync.interface", m))?;
            Some(v.get_ref().clone())
        }
        (None, Some(state)) if master || backup => {
            return Err(src.at(
                state,
                "sync.interface",
                format!(
                    "required when state is \"{}\": the kernel interface the sync multicast goes through",
                    state.get_ref()
                ),
            ))
        }
        (None, _) => None,
    };
    let syncid = opt_int(src, r.syncid.as_ref(), "sync.syncid", 0, 255, d.syncid)?;
    let group = match &r.group {
        None => d.group,
        Some(v) => {
            let a = net::parse_v4(v.get_ref()).map_err(|m| src.at(v, "sync.group", m))?;
            if !a.is_multicast() {
                return Err(src.at(
                    v,
                    "sync.group",
                    format!("address {a} is not multicast (expected one in 224.0.0.0/4)"),
                ));
            }
            a
        }
    };
    let port = opt_int(src, r.port.as_ref(), "sync.port", 1, 65535, d.port)?;
    let ttl = opt_int(src, r.ttl.as_ref(), "sync.ttl", 1, 255, d.ttl)?;
    let maxlen = match &r.maxlen {
        None => None,
        // The kernel clamps what a backup is given to its receive range;
        // a file that asks for less gets an error, not another value.
        Some(v) if backup && *v.get_ref() < SYNC_BACKUP_MAXLEN_MIN => {
            return Err(src.at(
                v,
                "sync.maxlen",
                format!(
                    "{} is out of range for a backup (expected {SYNC_BACKUP_MAXLEN_MIN}..={SYNC_MAXLEN_MAX})",
                    v.get_ref()
                ),
            ))
        }
        Some(v) => Some(int(src, v, "sync.maxlen", 1, SYNC_MAXLEN_MAX)?),
    };
    let version = opt_int(src, r.version.as_ref(), "sync.version", 0, 1, d.version)?;
    let max = i64::from(i32::MAX);
    let threshold = opt_int(
        src,
        r.threshold.as_ref(),
        "sync.threshold",
        0,
        max,
        d.threshold,
    )?;
    let period = opt_int(src, r.period.as_ref(), "sync.period", 0, max, d.period)?;
    if period != 0 && threshold >= period {
        // At whichever of the two the file sets, threshold first (the
        // defaults themselves are valid, so one of them is set).
        let at_threshold = r.threshold.as_ref().map(|t| {
            (t, "sync.threshold", format!(
                "threshold {threshold} must be below period {period} (or period 0), as the kernel's sync_threshold requires"
            ))
        });
        let at_period = r.period.as_ref().map(|p| {
            (p, "sync.period", format!(
                "period {period} must be above threshold {threshold} (or 0), as the kernel's sync_threshold requires"
            ))
        });
        if let Some((v, key, msg)) = at_threshold.or(at_period) {
            return Err(src.at(v, key, msg));
        }
    }
    let refresh_period = match &r.refresh_period {
        None => d.refresh_period,
        Some(v) => {
            let n = *v.get_ref();
            if !(0..=SYNC_REFRESH_MAX).contains(&n) {
                return Err(src.at(
                    v,
                    "sync.refresh_period",
                    format!(
                        "{n} is out of range (expected 0..={SYNC_REFRESH_MAX}: ripvs keeps each connection's next sync time in 16-bit seconds, which orders times less than 2^15 s apart)"
                    ),
                ));
            }
            n as u32
        }
    };
    let retries = opt_int(src, r.retries.as_ref(), "sync.retries", 0, 3, d.retries)?;
    Ok(Sync {
        master,
        backup,
        interface,
        syncid,
        group,
        port,
        ttl,
        maxlen,
        version,
        threshold,
        period,
        refresh_period,
        retries,
        persist_mode: flag(&r.persist_mode, d.persist_mode),
        full_sync: flag(&r.full_sync, d.full_sync),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lcore_options_are_spotted() {
        for a in [
            "-l",
            "-l1-3",
            "-c",
            "-c0x3",
            "--lcores",
            "--lcores=1@2",
            "--main-lcore=0",
            "--master-lcore",
        ] {
            assert!(sets_lcores(a), "{a}");
        }
        for a in [
            "--log-level=error",
            "-m",
            "--no-huge",
            "--lcoresx",
            "--no-pci",
        ] {
            assert!(!sets_lcores(a), "{a}");
        }
    }

    #[test]
    fn port_names() {
        assert!(valid_port_name("p0"));
        assert!(valid_port_name("wan_side-1"));
        assert!(valid_port_name("abcdefghijklmno"));
        assert!(!valid_port_name("abcdefghijklmnop"));
        assert!(!valid_port_name(""));
        assert!(!valid_port_name("P0"));
        assert!(!valid_port_name("p 0"));
    }
}
