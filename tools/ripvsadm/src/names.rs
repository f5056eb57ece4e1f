//! Address and port text, both ways, as ipvsadm's C library calls do it.
//!
//! ipvsadm parses with `inet_aton`/`inet_pton`/`gethostbyname` and
//! `getservbyname`, and prints with `inet_ntop`, `gethostbyaddr` and
//! `getservbyport`. The parsers and `inet_ntop` are reimplemented here
//! so their quirks (`10.1` is an address, `::0.1.0.2` style output) match;
//! the look-ups that need the system go through [`Names`] so tests can
//! pin them.

use ctrl_api::Proto;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};
use std::sync::OnceLock;

/// The look-ups ipvsadm leaves to the C library.
pub trait Names {
    /// `gethostbyname`: the first IPv4 address of a host name.
    fn host_to_v4(&self, name: &str) -> Option<Ipv4Addr>;
    /// `gethostbyaddr`: the name of an address, if any.
    fn addr_to_host(&self, addr: IpAddr) -> Option<String>;
    /// `getservbyname(name, proto)`. `proto` None is ipvsadm's
    /// "protocol 0" (before any service option, or a fwmark template),
    /// which never matches.
    fn service_to_port(&self, name: &str, proto: Option<Proto>) -> Option<u16>;
    /// `getservbyport(port, proto)`.
    fn port_to_service(&self, port: u16, proto: Option<Proto>) -> Option<String>;
}

/// The machine's resolver and `/etc/services`.
#[derive(Debug, Default)]
pub struct SystemNames {
    services: OnceLock<Services>,
    hosts: std::sync::Mutex<HashMap<IpAddr, Option<String>>>,
}

impl SystemNames {
    pub fn new() -> Self {
        Self::default()
    }

    fn services(&self) -> &Services {
        self.services.get_or_init(|| {
            std::fs::read_to_string("/etc/services")
                .map(|t| Services::parse(&t))
                .unwrap_or_default()
        })
    }
}

impl Names for SystemNames {
    fn host_to_v4(&self, name: &str) -> Option<Ipv4Addr> {
        if name.is_empty() {
            return None;
        }
        // getaddrinfo through std; ipvsadm takes only IPv4, first answer.
        (name, 0u16)
            .to_socket_addrs()
            .ok()?
            .find_map(|a| match a.ip() {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            })
    }

    fn addr_to_host(&self, addr: IpAddr) -> Option<String> {
        // A listing names the same real server many times: ask once.
        let mut cache = match self.hosts.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        cache
            .entry(addr)
            .or_insert_with(|| dns_lookup::lookup_addr(&addr).ok())
            .clone()
    }

    fn service_to_port(&self, name: &str, proto: Option<Proto>) -> Option<u16> {
        self.services()
            .by_name
            .get(&(proto?, name.to_string()))
            .copied()
    }

    fn port_to_service(&self, port: u16, proto: Option<Proto>) -> Option<String> {
        self.services().by_port.get(&(proto?, port)).cloned()
    }
}

/// `/etc/services`, per protocol: names and aliases to ports, ports to
/// the first line's primary name (what `getservbyport` returns).
#[derive(Debug, Default, Clone)]
pub struct Services {
    by_name: HashMap<(Proto, String), u16>,
    by_port: HashMap<(Proto, u16), String>,
}

impl Services {
    pub fn parse(text: &str) -> Self {
        let mut s = Services::default();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let (Some(name), Some(pp)) = (words.next(), words.next()) else {
                continue;
            };
            let Some((port, proto)) = pp.split_once('/') else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            let proto = match proto {
                "tcp" => Proto::Tcp,
                "udp" => Proto::Udp,
                "sctp" => Proto::Sctp,
                _ => continue,
            };
            s.by_port
                .entry((proto, port))
                .or_insert_with(|| name.to_string());
            for n in std::iter::once(name).chain(words) {
                s.by_name.entry((proto, n.to_string())).or_insert(port);
            }
        }
        s
    }

    pub fn port(&self, name: &str, proto: Proto) -> Option<u16> {
        self.by_name.get(&(proto, name.to_string())).copied()
    }

    pub fn name(&self, port: u16, proto: Proto) -> Option<&str> {
        self.by_port.get(&(proto, port)).map(String::as_str)
    }
}

/// Numeric-only names: what `-n` needs and what tests start from.
#[derive(Debug, Default, Clone)]
pub struct StaticNames {
    pub hosts: HashMap<String, Ipv4Addr>,
    pub rev: HashMap<IpAddr, String>,
    pub services: Services,
}

impl Names for StaticNames {
    fn host_to_v4(&self, name: &str) -> Option<Ipv4Addr> {
        self.hosts.get(name).copied()
    }
    fn addr_to_host(&self, addr: IpAddr) -> Option<String> {
        self.rev.get(&addr).cloned()
    }
    fn service_to_port(&self, name: &str, proto: Option<Proto>) -> Option<u16> {
        self.services.port(name, proto?)
    }
    fn port_to_service(&self, port: u16, proto: Option<Proto>) -> Option<String> {
        self.services.name(port, proto?).map(str::to_string)
    }
}

/// C `strtol(s, &end, base)` with ipvsadm's "whole string" check: leading
/// white space and a sign are allowed, at least one digit, nothing after.
/// None on overflow of i64 (C's ERANGE).
pub fn c_strtol_whole(s: &str) -> Option<i64> {
    let t = s.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut v: i64 = 0;
    for b in digits.bytes() {
        v = v.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
    }
    Some(if neg { -v } else { v })
}

/// ipvsadm's `string_to_number`: a whole decimal in `min..=max`.
pub fn string_to_number(s: &str, min: i64, max: i64) -> Option<i64> {
    c_strtol_whole(s).filter(|n| (min..=max).contains(n))
}

/// C `atoi`: leading blanks, sign, digits up to the first non-digit; 0
/// when there are none. Saturates instead of C's undefined overflow.
pub fn c_atoi(s: &str) -> i64 {
    let t = s.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let (neg, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut v: i64 = 0;
    for b in rest.bytes().take_while(u8::is_ascii_digit) {
        v = v.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if neg {
        -v
    } else {
        v
    }
}

/// glibc `inet_aton`: one to four parts, each decimal, octal (leading 0)
/// or hex (0x); the last part fills the remaining bytes. Text after a
/// white-space character is ignored, as glibc does.
pub fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let s = s
        .split(|c: char| c.is_ascii_whitespace())
        .next()
        .unwrap_or("");
    let mut parts: Vec<u64> = Vec::with_capacity(4);
    for p in s.split('.') {
        if parts.len() == 4 {
            return None;
        }
        parts.push(c_strtoul_part(p)?);
    }
    let v: u64 = match parts.as_slice() {
        [a] => *a,
        [a, b] if *a <= 0xff && *b <= 0xff_ffff => (a << 24) | b,
        [a, b, c] if *a <= 0xff && *b <= 0xff && *c <= 0xffff => (a << 24) | (b << 16) | c,
        [a, b, c, d] if [a, b, c, d].iter().all(|x| **x <= 0xff) => {
            (a << 24) | (b << 16) | (c << 8) | d
        }
        _ => return None,
    };
    u32::try_from(v).ok().map(Ipv4Addr::from)
}

/// One `inet_aton` part: must start with a digit, base by prefix.
fn c_strtoul_part(p: &str) -> Option<u64> {
    let b = p.as_bytes();
    if !b.first()?.is_ascii_digit() {
        return None;
    }
    let (radix, digits) = if b.len() >= 2 && b[0] == b'0' && (b[1] == b'x' || b[1] == b'X') {
        (16, &p[2..])
    } else if b[0] == b'0' {
        (8, p)
    } else {
        (10, p)
    };
    if digits.is_empty() {
        // "0x" alone is 0 for glibc.
        return Some(0);
    }
    let mut v: u64 = 0;
    for c in digits.chars() {
        let d = c.to_digit(radix)?;
        v = v.checked_mul(u64::from(radix))?.checked_add(u64::from(d))?;
        if v > u64::from(u32::MAX) {
            return None;
        }
    }
    Some(v)
}

/// glibc `inet_ntop(AF_INET6)`: the longest run (two or more) of zero
/// words becomes `::`, and `::a.b.c.d` / `::ffff:a.b.c.d` keep the
/// dotted tail. Rust's Display differs on the `::a.b.c.d` form.
pub fn ntop6(a: Ipv6Addr) -> String {
    let w = a.segments();
    let (mut best, mut best_len) = (usize::MAX, 0usize);
    let mut i = 0;
    while i < 8 {
        if w[i] == 0 {
            let start = i;
            while i < 8 && w[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                best = start;
                best_len = i - start;
            }
        } else {
            i += 1;
        }
    }
    if best_len < 2 {
        best = usize::MAX;
    }
    let mut out = String::new();
    for i in 0..8 {
        if best != usize::MAX && i >= best && i < best + best_len {
            if i == best {
                out.push(':');
            }
            continue;
        }
        if i != 0 {
            out.push(':');
        }
        if i == 6 && best == 0 && (best_len == 6 || (best_len == 5 && w[5] == 0xffff)) {
            let o = a.octets();
            out.push_str(&format!("{}.{}.{}.{}", o[12], o[13], o[14], o[15]));
            return out;
        }
        out.push_str(&format!("{:x}", w[i]));
    }
    if best != usize::MAX && best + best_len == 8 {
        out.push(':');
    }
    out
}

/// `inet_ntop` for either family.
pub fn ntop(a: IpAddr) -> String {
    match a {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => ntop6(v6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inet_aton_follows_glibc() {
        assert_eq!(inet_aton("10.1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(inet_aton("1.2.3.4"), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(inet_aton("0x0a.010.0.1"), Some(Ipv4Addr::new(10, 8, 0, 1)));
        assert_eq!(inet_aton("167772161"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(inet_aton("1.2.3.256"), None);
        assert_eq!(inet_aton("1.2.3.4.5"), None);
        assert_eq!(inet_aton("08.1.1.1"), None);
        assert_eq!(inet_aton("a.b"), None);
        assert_eq!(inet_aton(""), None);
        assert_eq!(inet_aton("1..2"), None);
    }

    #[test]
    fn ntop6_follows_glibc() {
        let t = |s: &str| ntop6(s.parse().unwrap());
        assert_eq!(t("2001:db8::1"), "2001:db8::1");
        assert_eq!(t("::"), "::");
        assert_eq!(t("::1"), "::1");
        assert_eq!(t("::ffff:1.2.3.4"), "::ffff:1.2.3.4");
        assert_eq!(t("::1:2"), "::0.1.0.2");
        assert_eq!(t("1:0:2:0:0:3:0:4"), "1:0:2::3:0:4");
        assert_eq!(t("1::"), "1::");
        assert_eq!(t("1:2:3:4:5:6:7:8"), "1:2:3:4:5:6:7:8");
        assert_eq!(t("fe80::1:0:0:0"), "fe80::1:0:0:0");
    }

    #[test]
    fn numbers_follow_c() {
        assert_eq!(string_to_number(" +80", 0, 65535), Some(80));
        assert_eq!(string_to_number("80x", 0, 65535), None);
        assert_eq!(string_to_number("", 0, 65535), None);
        assert_eq!(string_to_number("65536", 0, 65535), None);
        assert_eq!(string_to_number("99999999999999999999999", 0, 9), None);
        assert_eq!(c_atoi("64abc"), 64);
        assert_eq!(c_atoi("x"), 0);
    }

    #[test]
    fn services_file_per_protocol() {
        let s = Services::parse(
            "http 80/tcp www # web\nhttp 80/udp\ndomain 53/udp\nwww-alt 80/tcp\n#x 1/tcp\n",
        );
        assert_eq!(s.port("www", Proto::Tcp), Some(80));
        assert_eq!(s.port("domain", Proto::Tcp), None);
        assert_eq!(s.name(80, Proto::Tcp), Some("http"));
        assert_eq!(s.name(53, Proto::Udp), Some("domain"));
        assert_eq!(s.name(1, Proto::Tcp), None);
    }
}
