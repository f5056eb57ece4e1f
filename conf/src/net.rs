//! Parsers for the address-like strings of the schema. They return plain
//! messages; the caller attaches file, position and key.

use std::net::{IpAddr, Ipv4Addr};

use crate::model::{v4_mask, Device, IfAddr};

pub(crate) const IPV6_UNSUPPORTED: &str = "IPv6 is not supported yet";

/// `ADDRESS/LEN` as written, without judging whether it suits its use.
pub(crate) fn parse_prefix(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let bad = || format!("invalid IPv4 prefix \"{s}\" (expected ADDRESS/LEN)");
    let (addr, len) = s.split_once('/').ok_or_else(bad)?;
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let IpAddr::V4(addr) = addr else {
        return Err(IPV6_UNSUPPORTED.to_string());
    };
    if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let len: u8 = len.parse().map_err(|_| bad())?;
    if len > 32 {
        return Err(format!(
            "prefix length {len} is out of range (expected 0..=32)"
        ));
    }
    Ok((addr, len))
}

/// A plain IPv4 address.
pub(crate) fn parse_v4(s: &str) -> Result<Ipv4Addr, String> {
    match s.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => Ok(a),
        Ok(IpAddr::V6(_)) => Err(IPV6_UNSUPPORTED.to_string()),
        Err(_) => Err(format!("invalid IPv4 address \"{s}\"")),
    }
}

/// Rejects addresses that can never be a host: unspecified, loopback,
/// multicast, limited broadcast.
pub(crate) fn check_host(a: Ipv4Addr) -> Result<(), String> {
    if a.is_unspecified() {
        Err(format!("address {a} is unspecified"))
    } else if a.is_loopback() {
        Err(format!("address {a} is loopback"))
    } else if a.is_multicast() {
        Err(format!("address {a} is multicast"))
    } else if a.is_broadcast() {
        Err(format!("address {a} is the limited broadcast address"))
    } else {
        Ok(())
    }
}

/// An interface address `10.0.0.1/24`: a host address that is neither the
/// network nor the broadcast address of its prefix (except on /31, /32).
pub(crate) fn parse_ifaddr(s: &str) -> Result<IfAddr, String> {
    let (addr, len) = parse_prefix(s)?;
    check_host(addr)?;
    if len == 0 {
        return Err(
            "prefix length 0 is not valid for an interface address (expected 1..=32)".into(),
        );
    }
    let ifaddr = IfAddr {
        addr: IpAddr::V4(addr),
        prefix_len: len,
    };
    if len <= 30 {
        let bits = u32::from(addr);
        let net = Ipv4Addr::from(bits & v4_mask(len));
        if bits == u32::from(net) {
            return Err(format!(
                "address {addr} is the network address of {net}/{len}"
            ));
        }
        if bits | !v4_mask(len) == bits {
            return Err(format!(
                "address {addr} is the broadcast address of {net}/{len}"
            ));
        }
    }
    Ok(ifaddr)
}

/// A route prefix: host bits must be zero.
pub(crate) fn parse_route_prefix(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let (addr, len) = parse_prefix(s)?;
    let net = Ipv4Addr::from(u32::from(addr) & v4_mask(len));
    if net != addr {
        return Err(format!(
            "prefix {addr}/{len} has host bits set (did you mean {net}/{len}?)"
        ));
    }
    Ok((addr, len))
}

/// `02:00:00:00:00:01`: six colon-separated hex bytes of a unicast,
/// non-zero address.
pub(crate) fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let bad =
        || format!("invalid MAC address \"{s}\" (expected six hex bytes like 02:00:00:00:00:01)");
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for byte in &mut mac {
        let p = parts.next().ok_or_else(bad)?;
        if p.len() != 2 {
            return Err(bad());
        }
        *byte = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    if mac == [0; 6] {
        return Err(format!("MAC address {} is all zeros", format_mac(&mac)));
    }
    if mac[0] & 1 != 0 {
        return Err(format!(
            "MAC address {} is multicast (expected unicast)",
            format_mac(&mac)
        ));
    }
    Ok(mac)
}

pub(crate) fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn hex_field(s: &str, digits: usize) -> Option<u32> {
    if s.len() == digits && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        u32::from_str_radix(s, 16).ok()
    } else {
        None
    }
}

/// `[DDDD:]BB:DD.F` to the normalised `dddd:bb:dd.f`.
pub(crate) fn parse_pci(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.split(':').collect();
    let (domain, bus, devfn) = match parts[..] {
        [d, b, df] => (hex_field(d, 4)?, b, df),
        [b, df] => (0, b, df),
        _ => return None,
    };
    let bus = hex_field(bus, 2)?;
    let (dev, func) = devfn.split_once('.')?;
    let dev = hex_field(dev, 2).filter(|d| *d <= 0x1f)?;
    let func = hex_field(func, 1).filter(|f| *f <= 7)?;
    Some(format!("{domain:04x}:{bus:02x}:{dev:02x}.{func:x}"))
}

/// `net_<driver>[,args]`: returns (name, args).
pub(crate) fn parse_vdev(s: &str) -> Result<(String, String), String> {
    let (name, args) = s.split_once(',').unwrap_or((s, ""));
    let driver = name.strip_prefix("net_").ok_or_else(|| {
        format!("invalid virtual device \"{s}\" (expected \"net_<driver><n>[,args]\")")
    })?;
    if driver.is_empty()
        || !driver
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(format!(
            "invalid virtual device name \"{name}\" (expected \"net_\" then letters, digits or _)"
        ));
    }
    Ok((name.to_string(), args.to_string()))
}

/// A port device: a PCI address or a `net_` virtual device.
pub(crate) fn parse_device(s: &str) -> Result<Device, String> {
    if s.starts_with("net_") {
        let (name, args) = parse_vdev(s)?;
        return Ok(Device::Vdev { name, args });
    }
    parse_pci(s).map(Device::Pci).ok_or_else(|| {
        format!(
            "invalid device \"{s}\" (expected a PCI address DDDD:BB:DD.F or a virtual device \"net_<driver><n>[,args]\")"
        )
    })
}

/// The kernel interface a `net_tap`/`net_tun` vdev creates, if named.
pub(crate) fn vdev_kernel_iface<'a>(name: &str, args: &'a str) -> Option<&'a str> {
    if !(name.starts_with("net_tap") || name.starts_with("net_tun")) {
        return None;
    }
    args.split(',').find_map(|kv| kv.strip_prefix("iface="))
}

/// A kernel interface name: 1..=15 bytes, none of `/`, `:` or whitespace,
/// and not `.` or `..`.
pub(crate) fn check_ifname(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= crate::model::MAX_IFNAME_LEN
        && s != "."
        && s != ".."
        && !s
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid interface name \"{s}\" (expected 1-15 bytes without \"/\", \":\" or spaces)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_forms() {
        assert_eq!(parse_pci("0000:01:00.0").as_deref(), Some("0000:01:00.0"));
        assert_eq!(parse_pci("01:00.1").as_deref(), Some("0000:01:00.1"));
        assert_eq!(parse_pci("ABCD:Ef:1f.7").as_deref(), Some("abcd:ef:1f.7"));
        for bad in [
            "",
            "01:00",
            "0000:01:00.8",
            "0000:01:20.0",
            "000:01:00.0",
            "1:00.0",
            "0000:01:00.0.1",
            "x0:00.0",
        ] {
            assert_eq!(parse_pci(bad), None, "{bad}");
        }
    }

    #[test]
    fn ifaddr_rules() {
        assert!(parse_ifaddr("10.0.0.1/24").is_ok());
        assert!(parse_ifaddr("10.0.0.0/31").is_ok());
        assert!(parse_ifaddr("10.0.0.7/32").is_ok());
        assert_eq!(
            parse_ifaddr("10.0.0.255/24").unwrap_err(),
            "address 10.0.0.255 is the broadcast address of 10.0.0.0/24"
        );
        assert_eq!(
            parse_ifaddr("10.0.0.1/0").unwrap_err(),
            "prefix length 0 is not valid for an interface address (expected 1..=32)"
        );
        assert_eq!(
            parse_ifaddr("10.0.0.1/+4").unwrap_err(),
            "invalid IPv4 prefix \"10.0.0.1/+4\" (expected ADDRESS/LEN)"
        );
        assert_eq!(parse_ifaddr("fd00::1/64").unwrap_err(), IPV6_UNSUPPORTED);
    }

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("02:00:00:00:00:FE").unwrap(),
            [2, 0, 0, 0, 0, 0xfe]
        );
        assert!(parse_mac("02:00:00:00:00").is_err());
        assert!(parse_mac("02:00:00:00:00:00:00").is_err());
        assert!(parse_mac("02-00-00-00-00-01").is_err());
        assert!(parse_mac("2:00:00:00:00:01").is_err());
    }

    #[test]
    fn vdevs() {
        assert_eq!(
            parse_vdev("net_tap0,iface=a,x=y").unwrap(),
            ("net_tap0".to_string(), "iface=a,x=y".to_string())
        );
        assert_eq!(vdev_kernel_iface("net_tap0", "x=1,iface=ab"), Some("ab"));
        assert_eq!(vdev_kernel_iface("net_pcap0", "iface=ab"), None);
        assert!(parse_vdev("net_").is_err());
        assert!(parse_vdev("eth_tap0").is_err());
    }
}
