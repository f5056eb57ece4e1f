//! Validation of `[[vrrp]]`: VRRP instances with keepalived's semantics
//! (`vrrp_instance`), checked against the ports (the instance's port, its
//! networks, its addresses) and `[sync]` (the instance that drives the
//! sync daemon roles).
//!
//! Runs after ports and `[sync]` are built. Instances are checked in file
//! order, so a clash is reported at the later of the two.

use std::net::{IpAddr, Ipv4Addr};

use toml::Spanned;

use crate::error::Source;
use crate::model::{Port, Sync, Vrrp, VrrpInitial};
use crate::net;
use crate::raw::{RawSync, RawVrrp, Table};
use crate::validate::{int, lookup_port, opt_int, Result, SYNC_BACKUP_MAXLEN_MIN, SYNC_MAXLEN_MAX};

/// Longest instance name (keepalived allows more; 32 keeps log lines and
/// `ripvsadm --vrrp` columns sane).
const MAX_NAME_LEN: usize = 32;
/// An advert's address count is 8 bits.
const MAX_ADDRESSES: usize = 255;
/// IPv4 header (adverts carry no options) and VRRP header.
const ADVERT_OVERHEAD: usize = 20 + 8;
/// Version 2 adverts always end in 8 bytes of authentication data.
const V2_AUTH_LEN: usize = 8;
/// Tolerance when deciding that a float of seconds is a whole number of
/// centiseconds (or seconds): 0.07 * 100 is 7.000000000000001.
const EPS: f64 = 1e-6;

/// Instances a director runs (`fastpath::gate::MAX_INSTANCES`).
pub const MAX_INSTANCES: usize = 64;

fn valid_name(s: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

pub(crate) fn build(
    src: &Source<'_>,
    raw: &[Spanned<Table<RawVrrp>>],
    ports: &[Port],
    sync: &Sync,
    raw_sync: Option<&RawSync>,
) -> Result<Vec<Vrrp>> {
    let mut out: Vec<Vrrp> = Vec::new();
    for (i, table) in raw.iter().enumerate() {
        // Each instance is one bit of the workers' mastery word.
        if i == MAX_INSTANCES {
            return Err(src.at(
                table,
                format!("vrrp[{i}]"),
                format!("too many instances: a director runs at most {MAX_INSTANCES}"),
            ));
        }
        let v = build_one(src, i, table, ports, &out)?;
        if let Some(flag) = table
            .get_ref()
            .sync_daemon
            .as_ref()
            .filter(|_| v.sync_daemon)
        {
            check_sync_daemon(src, i, &v.name, flag, &out, sync, raw_sync)?;
        }
        out.push(v);
    }
    Ok(out)
}

/// An instance with `sync_daemon = true` fits `[sync]` and is the only one.
fn check_sync_daemon(
    src: &Source<'_>,
    i: usize,
    name: &str,
    flag: &Spanned<bool>,
    earlier: &[Vrrp],
    sync: &Sync,
    raw_sync: Option<&RawSync>,
) -> Result<()> {
    let key = format!("vrrp[{i}].sync_daemon");
    if let Some((j, other)) = earlier.iter().enumerate().find(|(_, o)| o.sync_daemon) {
        return Err(src.at(
            flag,
            key,
            format!(
                "instance `{}` (vrrp[{j}]) already sets sync_daemon: one instance drives the sync daemon roles",
                other.name
            ),
        ));
    }
    if raw_sync.is_some_and(|s| s.state.is_some()) {
        return Err(src.at(
            flag,
            key,
            format!(
                "the sync daemon roles follow instance `{name}` (master while it is master, backup otherwise): remove `state` from [sync]"
            ),
        ));
    }
    if sync.interface.is_none() {
        return Err(src.at(
            flag,
            key,
            "requires `interface` in [sync]: the kernel interface the sync multicast goes through",
        ));
    }
    // This node is a sync backup whenever the instance is: the backup's
    // floor applies even though [sync] names no role.
    if let Some(m) = raw_sync.and_then(|s| s.maxlen.as_ref()) {
        if *m.get_ref() < SYNC_BACKUP_MAXLEN_MIN {
            return Err(src.at(
                m,
                "sync.maxlen",
                format!(
                    "{} is out of range for a backup (expected {SYNC_BACKUP_MAXLEN_MIN}..={SYNC_MAXLEN_MAX}): with vrrp[{i}].sync_daemon this node is a sync backup whenever instance `{name}` is",
                    m.get_ref()
                ),
            ));
        }
    }
    Ok(())
}

/// A plain IPv4 host address; a prefix length gets its own hint.
fn host(src: &Source<'_>, v: &Spanned<String>, key: &str, what: &str) -> Result<Ipv4Addr> {
    let s = v.get_ref();
    if s.contains('/') {
        return Err(src.at(
            v,
            key,
            format!("invalid IPv4 address \"{s}\" ({what} is written without a prefix length)"),
        ));
    }
    net::parse_v4(s)
        .and_then(|a| net::check_host(a).map(|()| a))
        .map_err(|m| src.at(v, key, m))
}

/// Where `ip` is an interface address: port index, port, address index.
fn interface_address(ports: &[Port], ip: Ipv4Addr) -> Option<(usize, &Port, usize)> {
    ports.iter().enumerate().find_map(|(pi, p)| {
        p.addresses
            .iter()
            .position(|a| a.addr == IpAddr::V4(ip))
            .map(|ai| (pi, p, ai))
    })
}

/// Where `ip` is a VRRP address of an earlier instance or of this one
/// (`own`, whose index is `earlier.len()`).
fn vrrp_address(earlier: &[Vrrp], own: &[Ipv4Addr], ip: Ipv4Addr) -> Option<String> {
    earlier
        .iter()
        .map(|v| v.addresses.as_slice())
        .chain([own])
        .enumerate()
        .find_map(|(vi, list)| {
            list.iter()
                .position(|&a| a == ip)
                .map(|ai| format!("vrrp[{vi}].addresses[{ai}]"))
        })
}

/// `advert_int` in centiseconds.
fn advert_int(src: &Source<'_>, v: Option<&Spanned<f64>>, key: &str, version: u8) -> Result<u16> {
    let Some(v) = v else { return Ok(100) };
    let x = *v.get_ref();
    let err = |m: String| Err(src.at(v, key, m));
    if !x.is_finite() {
        return err(format!("{x} is not a number of seconds"));
    }
    if version == 2 {
        if (x - x.round()).abs() > EPS {
            return err(format!(
                "{x} is not a whole number of seconds: VRRP version 2 advertises in whole seconds (set version = 3 for intervals in hundredths of a second)"
            ));
        }
        let s = x.round();
        if !(1.0..=255.0).contains(&s) {
            return err(format!(
                "{x} is out of range (expected 1..=255 seconds for VRRP version 2)"
            ));
        }
        return Ok(s as u16 * 100);
    }
    let cs = x * 100.0;
    if !(1.0 - EPS..=4095.0 + EPS).contains(&cs) {
        return err(format!(
            "{x} is out of range (expected 0.01..=40.95 seconds for VRRP version 3, whose interval is 12 bits of centiseconds)"
        ));
    }
    if (cs - cs.round()).abs() > EPS {
        return err(format!(
            "{x} is not a whole number of centiseconds: VRRP version 3 advertises in hundredths of a second"
        ));
    }
    Ok(cs.round() as u16)
}

/// A `notify*` command: non-empty when given.
fn command(src: &Source<'_>, v: Option<&Spanned<String>>, key: &str) -> Result<Option<String>> {
    let Some(v) = v else { return Ok(None) };
    if v.get_ref().trim().is_empty() {
        return Err(src.at(v, key, "empty command (leave the key out for none)"));
    }
    Ok(Some(v.get_ref().clone()))
}

fn build_one(
    src: &Source<'_>,
    i: usize,
    table: &Spanned<Table<RawVrrp>>,
    ports: &[Port],
    earlier: &[Vrrp],
) -> Result<Vrrp> {
    let r = table.get_ref();
    let key = |k: &str| format!("vrrp[{i}].{k}");

    let name = r.name.get_ref();
    if !valid_name(name) {
        return Err(src.at(
            &r.name,
            key("name"),
            format!(
                "invalid instance name \"{name}\" (expected 1-{MAX_NAME_LEN} characters from A-Z, a-z, 0-9, _, . and -)"
            ),
        ));
    }
    if let Some(j) = earlier.iter().position(|o| o.name == *name) {
        return Err(src.at(
            &r.name,
            key("name"),
            format!("instance name `{name}` is already used by vrrp[{j}]"),
        ));
    }

    let port = lookup_port(src, ports, &r.port, &key("port"))?;
    if !port.addresses.iter().any(|a| a.addr.is_ipv4()) {
        return Err(src.at(
            &r.port,
            key("port"),
            format!(
                "port `{}` has no IPv4 address: VRRP adverts are sent from the port's first address",
                port.name
            ),
        ));
    }

    let vrid: u8 = int(src, &r.vrid, &key("vrid"), 1, 255)?;
    if let Some(j) = earlier
        .iter()
        .position(|o| o.port == port.name && o.vrid == vrid)
    {
        return Err(src.at(
            &r.vrid,
            key("vrid"),
            format!(
                "VRID {vrid} is already used on port `{}` by vrrp[{j}] (`{}`)",
                port.name, earlier[j].name
            ),
        ));
    }

    let priority = opt_int(src, r.priority.as_ref(), &key("priority"), 1, 255, 100u8)?;

    let version = match &r.version {
        None => 3,
        Some(v) => match *v.get_ref() {
            2 => 2,
            3 => 3,
            n => {
                return Err(src.at(
                    v,
                    key("version"),
                    format!("invalid VRRP version {n} (expected 2 or 3)"),
                ))
            }
        },
    };

    let advert_int_cs = advert_int(src, r.advert_int.as_ref(), &key("advert_int"), version)?;

    let initial = match &r.state {
        None => VrrpInitial::Backup,
        Some(v) => match v.get_ref().as_str() {
            "backup" => VrrpInitial::Backup,
            "master" => VrrpInitial::Master,
            other => {
                return Err(src.at(
                    v,
                    key("state"),
                    format!("invalid state \"{other}\" (expected \"backup\" or \"master\")"),
                ))
            }
        },
    };

    let preempt = r.preempt.as_ref().is_none_or(|p| *p.get_ref());
    if let Some(p) = r.preempt.as_ref().filter(|_| !preempt) {
        if initial == VrrpInitial::Master {
            return Err(src.at(
                p,
                key("preempt"),
                "preempt = false needs state = \"backup\": an instance that starts as master takes over at once",
            ));
        }
        if priority == 255 {
            return Err(src.at(
                p,
                key("preempt"),
                "preempt = false cannot apply to priority 255: the addresses' owner always preempts (RFC 5798)",
            ));
        }
    }
    let preempt_delay_s = opt_int(
        src,
        r.preempt_delay.as_ref(),
        &key("preempt_delay"),
        0,
        1000,
        0u16,
    )?;
    if let Some(d) = r.preempt_delay.as_ref().filter(|_| preempt_delay_s > 0) {
        if !preempt {
            return Err(src.at(
                d,
                key("preempt_delay"),
                "preempt_delay has no effect with preempt = false",
            ));
        }
        if initial == VrrpInitial::Master {
            return Err(src.at(
                d,
                key("preempt_delay"),
                "preempt_delay has no effect with state = \"master\": an instance that starts as master takes over at once",
            ));
        }
    }

    let list = r.addresses.get_ref();
    if list.is_empty() {
        return Err(src.at(
            &r.addresses,
            key("addresses"),
            "at least one address is required",
        ));
    }
    let auth = if version == 2 { V2_AUTH_LEN } else { 0 };
    let fit = (usize::from(port.mtu) - ADVERT_OVERHEAD - auth) / 4;
    let mut addresses: Vec<Ipv4Addr> = Vec::new();
    for (j, a) in list.iter().enumerate() {
        let akey = key(&format!("addresses[{j}]"));
        let ip = host(src, a, &akey, "a VRRP address")?;
        if j >= MAX_ADDRESSES || j >= fit {
            let why = if fit < MAX_ADDRESSES {
                format!(
                    "at most {fit} fit in a version {version} advert on port `{}` (MTU {})",
                    port.name, port.mtu
                )
            } else {
                format!("an advert carries at most {MAX_ADDRESSES} (its count is 8 bits)")
            };
            return Err(src.at(a, akey, format!("too many addresses: {why}")));
        }
        if let Some((pi, p, ai)) = interface_address(ports, ip) {
            return Err(src.at(
                a,
                akey,
                format!(
                    "address {ip} is an interface address of port `{}` (ports[{pi}].addresses[{ai}]): owning an interface address is not supported; use an address no port has",
                    p.name
                ),
            ));
        }
        if let Some(k) = addresses.iter().position(|&o| o == ip) {
            return Err(src.at(
                a,
                akey,
                format!("duplicate address {ip} (also vrrp[{i}].addresses[{k}])"),
            ));
        }
        if let Some((vi, v, k)) = earlier.iter().enumerate().find_map(|(vi, v)| {
            v.addresses
                .iter()
                .position(|&o| o == ip)
                .map(|k| (vi, v, k))
        }) {
            return Err(src.at(
                a,
                akey,
                format!(
                    "address {ip} is already held by instance `{}` (vrrp[{vi}].addresses[{k}])",
                    v.name
                ),
            ));
        }
        if let Some((vi, v, k)) = earlier.iter().enumerate().find_map(|(vi, v)| {
            v.unicast_peers
                .iter()
                .position(|&o| o == ip)
                .map(|k| (vi, v, k))
        }) {
            return Err(src.at(
                a,
                akey,
                format!(
                    "address {ip} is a unicast peer of instance `{}` (vrrp[{vi}].unicast_peers[{k}]): a peer is another router's own address",
                    v.name
                ),
            ));
        }
        addresses.push(ip);
    }

    let use_vmac = r.use_vmac.as_ref().is_some_and(|v| *v.get_ref());
    if let Some(v) = r.use_vmac.as_ref().filter(|_| use_vmac) {
        if r.unicast_peers.as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(src.at(
                v,
                key("use_vmac"),
                "use_vmac with unicast_peers is not supported: unicast adverts leave with the port's MAC; drop one of them",
            ));
        }
    }
    let mut unicast_peers: Vec<Ipv4Addr> = Vec::new();
    for (j, a) in r.unicast_peers.iter().flatten().enumerate() {
        let pkey = key(&format!("unicast_peers[{j}]"));
        let ip = host(src, a, &pkey, "a unicast peer")?;
        if let Some((pi, _, ai)) = interface_address(ports, ip) {
            return Err(src.at(
                a,
                pkey,
                format!(
                    "unicast peer {ip} is an address of this director (ports[{pi}].addresses[{ai}])"
                ),
            ));
        }
        if let Some(at) = vrrp_address(earlier, &addresses, ip) {
            return Err(src.at(
                a,
                pkey,
                format!(
                    "unicast peer {ip} is a VRRP address ({at}): a peer is another router's own address"
                ),
            ));
        }
        if let Some(k) = unicast_peers.iter().position(|&o| o == ip) {
            return Err(src.at(
                a,
                pkey,
                format!("duplicate unicast peer {ip} (also vrrp[{i}].unicast_peers[{k}])"),
            ));
        }
        if !port.is_connected(IpAddr::V4(ip)) {
            let nets: Vec<String> = port
                .addresses
                .iter()
                .map(|n| format!("{}/{}", n.network(), n.prefix_len))
                .collect();
            return Err(src.at(
                a,
                pkey,
                format!(
                    "unicast peer {ip} is not inside a connected network of port `{}` ({})",
                    port.name,
                    nets.join(", ")
                ),
            ));
        }
        unicast_peers.push(ip);
    }

    let auth_pass = match &r.auth_pass {
        None => None,
        Some(p) if version != 2 => {
            return Err(src.at(
                p,
                key("auth_pass"),
                "auth_pass is for VRRP version 2 only (version 3 has no authentication, RFC 5798): remove it or set version = 2",
            ))
        }
        Some(p) => {
            let n = p.get_ref().len();
            if !(1..=8).contains(&n) {
                return Err(src.at(
                    p,
                    key("auth_pass"),
                    format!(
                        "auth_pass is {n} bytes long (expected 1..=8: the advert's authentication data is 8 bytes)"
                    ),
                ));
            }
            Some(p.get_ref().clone())
        }
    };

    let garp = |v: &Option<Spanned<i64>>, k: &str, lo, hi, default| {
        opt_int(src, v.as_ref(), &key(k), lo, hi, default)
    };
    let garp_master_delay_s = garp(&r.garp_master_delay, "garp_master_delay", 0, 255, 5)?;
    let garp_master_repeat = garp(&r.garp_master_repeat, "garp_master_repeat", 1, 255, 5)?;
    let garp_master_refresh_s = garp(&r.garp_master_refresh, "garp_master_refresh", 0, 65535, 0)?;
    let garp_master_refresh_repeat = garp(
        &r.garp_master_refresh_repeat,
        "garp_master_refresh_repeat",
        1,
        255,
        1,
    )?;

    Ok(Vrrp {
        name: name.clone(),
        port: port.name.clone(),
        vrid,
        priority,
        version,
        advert_int_cs,
        preempt,
        preempt_delay_s,
        initial,
        addresses,
        unicast_peers,
        auth_pass,
        garp_master_delay_s,
        garp_master_repeat,
        garp_master_refresh_s,
        garp_master_refresh_repeat,
        use_vmac,
        notify_master: command(src, r.notify_master.as_ref(), &key("notify_master"))?,
        notify_backup: command(src, r.notify_backup.as_ref(), &key("notify_backup"))?,
        notify_fault: command(src, r.notify_fault.as_ref(), &key("notify_fault"))?,
        notify: command(src, r.notify.as_ref(), &key("notify"))?,
        sync_daemon: r.sync_daemon.as_ref().is_some_and(|s| *s.get_ref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("VI_1"));
        assert!(valid_name("web.front-2"));
        assert!(valid_name(&"a".repeat(32)));
        assert!(!valid_name(&"a".repeat(33)));
        assert!(!valid_name(""));
        assert!(!valid_name("a b"));
        assert!(!valid_name("é"));
    }
}
