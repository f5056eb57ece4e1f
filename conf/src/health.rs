//! Validation of `[services.health]` and its per-real-server overrides.
//!
//! A real server's check is the service's table with the server's own
//! `health` table laid over it key by key, so a key's error points at
//! whichever table the value came from. The service's table is also
//! checked alone, so a mistake in it is reported even when no real server
//! uses it yet.

use std::net::IpAddr;
use std::time::Duration;

use toml::Spanned;

use crate::error::{ConfigError, Source};
use crate::model::{Check, Health, HttpCheck};
use crate::net;
use crate::raw::RawHealth;

type Result<T> = std::result::Result<T, ConfigError>;

/// The checkers, as the file names them.
pub const CHECKERS: [&str; 6] = ["tcp", "http", "https", "udp", "exec", "none"];

/// Longest interval, timeout or delay: a day.
const MAX_SECS: f64 = 86_400.0;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// The timeout when none is given: this, or the interval if shorter.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
const DEFAULT_RETRIES: u32 = 3;
const DEFAULT_SUCCESSES: u32 = 1;

/// Where a real server's check settings come from.
pub(crate) struct Layers<'a> {
    /// `services[i].health`
    pub svc: Option<&'a RawHealth>,
    pub svc_key: String,
    /// `services[i].real_servers[j].health`
    pub rs: Option<&'a RawHealth>,
    pub rs_key: String,
    /// Where to point when a whole table is at fault and has no value to
    /// point at (`health = {}`).
    pub fallback: usize,
}

/// Where a value was written: its offset and key path.
type Written = Option<(usize, String)>;

/// A value and the key path it was written under.
type Picked<'a, T> = Option<(&'a Spanned<T>, String)>;

impl<'a> Layers<'a> {
    fn get<T>(
        &self,
        f: impl Fn(&'a RawHealth) -> Option<&'a Spanned<T>>,
        name: &str,
    ) -> Picked<'a, T> {
        if let Some(v) = self.rs.and_then(&f) {
            return Some((v, format!("{}.{name}", self.rs_key)));
        }
        self.svc
            .and_then(&f)
            .map(|v| (v, format!("{}.{name}", self.svc_key)))
    }

    /// The key path of the innermost table present.
    fn base(&self) -> &str {
        if self.rs.is_some() {
            &self.rs_key
        } else {
            &self.svc_key
        }
    }

    fn first_value(&self) -> usize {
        self.rs
            .and_then(first_span)
            .or_else(|| self.svc.and_then(first_span))
            .unwrap_or(self.fallback)
    }
}

/// Where the first value of a health table is.
fn first_span(h: &RawHealth) -> Option<usize> {
    let spans = [
        h.checker.as_ref().map(|v| v.span()),
        h.interval.as_ref().map(|v| v.span()),
        h.timeout.as_ref().map(|v| v.span()),
        h.delay.as_ref().map(|v| v.span()),
        h.retries.as_ref().map(|v| v.span()),
        h.successes.as_ref().map(|v| v.span()),
        h.initial.as_ref().map(|v| v.span()),
        h.port.as_ref().map(|v| v.span()),
        h.source.as_ref().map(|v| v.span()),
        h.interface.as_ref().map(|v| v.span()),
        h.path.as_ref().map(|v| v.span()),
        h.host.as_ref().map(|v| v.span()),
        h.status.as_ref().map(|v| v.span()),
        h.expect.as_ref().map(|v| v.span()),
        h.payload.as_ref().map(|v| v.span()),
        h.command.as_ref().map(|v| v.span()),
    ];
    spans.into_iter().flatten().map(|s| s.start).min()
}

/// Seconds as a duration of whole milliseconds, at least `min_ms`.
fn secs(src: &Source<'_>, (v, key): (&Spanned<f64>, String), min_ms: u64) -> Result<Duration> {
    let x = *v.get_ref();
    let lo = if min_ms == 0 { "0" } else { "0.001" };
    let bad = || {
        src.at(
            v,
            &key,
            format!("{x} is out of range (expected {lo}..={MAX_SECS} seconds)"),
        )
    };
    if !x.is_finite() || !(0.0..=MAX_SECS).contains(&x) {
        return Err(bad());
    }
    let ms = (x * 1000.0).round() as u64;
    if ms < min_ms {
        return Err(bad());
    }
    Ok(Duration::from_millis(ms))
}

fn count(src: &Source<'_>, picked: Picked<'_, i64>, default: u32) -> Result<u32> {
    let Some((v, key)) = picked else {
        return Ok(default);
    };
    let n = *v.get_ref();
    if !(1..=100).contains(&n) {
        return Err(src.at(v, key, format!("{n} is out of range (expected 1..=100)")));
    }
    Ok(n as u32)
}

fn seconds(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}

/// `200` or `200-299`.
fn parse_status(s: &str) -> Option<(u16, u16)> {
    let (lo, hi) = s.split_once('-').unwrap_or((s, s));
    let (lo, hi): (u16, u16) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
    ((100..=599).contains(&lo) && (100..=599).contains(&hi) && lo <= hi).then_some((lo, hi))
}

/// Text that goes on an HTTP request line or header as is.
fn header_safe(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())
}

/// The check of one real server (`port` is its port), or of the service's
/// table alone (`port` None). `None`: not checked.
pub(crate) fn build(src: &Source<'_>, l: &Layers<'_>, port: Option<u16>) -> Result<Option<Health>> {
    if l.svc.is_none() && l.rs.is_none() {
        return Ok(None);
    }
    macro_rules! pick {
        ($field:ident) => {
            l.get(|h| h.$field.as_ref(), stringify!($field))
        };
    }
    // An override that changes the checker keeps the service's common
    // settings but not what belonged to the service's checker.
    let own = Layers {
        svc: l.svc.filter(|_| {
            let checker = |h: &RawHealth| h.checker.as_ref().map(|c| c.get_ref().clone());
            l.rs.and_then(checker).is_none() || l.rs.and_then(checker) == l.svc.and_then(checker)
        }),
        svc_key: l.svc_key.clone(),
        rs: l.rs,
        rs_key: l.rs_key.clone(),
        fallback: l.fallback,
    };
    macro_rules! specific {
        ($field:ident) => {
            own.get(|h| h.$field.as_ref(), stringify!($field))
        };
    }
    let Some((checker, checker_key)) = pick!(checker) else {
        return Err(src.error(
            l.first_value(),
            format!("{}.checker", l.base()),
            "missing required key",
        ));
    };
    let name = checker.get_ref().as_str();
    if !CHECKERS.contains(&name) {
        return Err(src.at(
            checker,
            checker_key,
            format!(
                "unknown checker \"{name}\" (expected \"tcp\", \"http\", \"https\", \"udp\", \"exec\" or \"none\")"
            ),
        ));
    }
    // Keys that belong to one kind of check only.
    let owners: [(&str, Written, &[&str]); 6] = [
        (
            "path",
            specific!(path).map(|(v, k)| (v.span().start, k)),
            &["http", "https"],
        ),
        (
            "host",
            specific!(host).map(|(v, k)| (v.span().start, k)),
            &["http", "https"],
        ),
        (
            "status",
            specific!(status).map(|(v, k)| (v.span().start, k)),
            &["http", "https"],
        ),
        (
            "expect",
            specific!(expect).map(|(v, k)| (v.span().start, k)),
            &["http", "https", "udp"],
        ),
        (
            "payload",
            specific!(payload).map(|(v, k)| (v.span().start, k)),
            &["udp"],
        ),
        (
            "command",
            specific!(command).map(|(v, k)| (v.span().start, k)),
            &["exec"],
        ),
    ];
    if name != "none" {
        for (key, set, for_checkers) in owners {
            if let Some((offset, whose)) = set.filter(|_| !for_checkers.contains(&name)) {
                return Err(src.error(
                    offset,
                    whose,
                    format!(
                        "`{key}` does not apply to the {name} checker (it is for {})",
                        match for_checkers {
                            [one] => one.to_string(),
                            [init @ .., last] => format!("{} and {last}", init.join(", ")),
                            [] => String::new(),
                        }
                    ),
                ));
            }
        }
    }
    if name == "exec" {
        for (key, v) in [("source", pick!(source)), ("interface", pick!(interface))] {
            let table = |k: &str| k.rsplit_once('.').map(|(t, _)| t.to_string());
            // Inherited from a service-wide setting, it is simply unused.
            if let Some((v, k)) = v.filter(|(_, k)| table(k) == table(&checker_key)) {
                return Err(src.at(
                    v,
                    k,
                    format!("`{key}` does not apply to the exec checker: the command chooses how it connects"),
                ));
            }
        }
    }

    let interval = match pick!(interval) {
        Some(p) => secs(src, p, 1)?,
        None => DEFAULT_INTERVAL,
    };
    let timeout = match pick!(timeout) {
        Some(p) => {
            let (v, key) = (p.0, p.1.clone());
            let t = secs(src, p, 1)?;
            if t > interval {
                return Err(src.at(
                    v,
                    key,
                    format!(
                        "timeout {} s is longer than interval {} s: a check would still run when the next is due",
                        seconds(t),
                        seconds(interval)
                    ),
                ));
            }
            t
        }
        None => DEFAULT_TIMEOUT.min(interval),
    };
    let delay = match pick!(delay) {
        Some(p) => secs(src, p, 0)?,
        None => Duration::ZERO,
    };
    let retries = count(src, pick!(retries), DEFAULT_RETRIES)?;
    let successes = count(src, pick!(successes), DEFAULT_SUCCESSES)?;
    let initial_up = match pick!(initial) {
        None => true,
        Some((v, key)) => match v.get_ref().as_str() {
            "up" => true,
            "down" => false,
            other => {
                return Err(src.at(
                    v,
                    key,
                    format!("invalid initial state \"{other}\" (expected \"up\" or \"down\")"),
                ))
            }
        },
    };
    let check_port = match pick!(port) {
        None => None,
        Some((v, key)) => {
            let n = *v.get_ref();
            if !(1..=65535).contains(&n) {
                return Err(src.at(v, key, format!("{n} is out of range (expected 1..=65535)")));
            }
            Some(n as u16)
        }
    };
    let source = match pick!(source) {
        None => None,
        Some((v, key)) => Some(IpAddr::V4(
            net::parse_v4(v.get_ref()).map_err(|m| src.at(v, key, m))?,
        )),
    };
    let interface = match pick!(interface) {
        None => None,
        Some((v, key)) => {
            net::check_ifname(v.get_ref()).map_err(|m| src.at(v, &key, m))?;
            Some(v.get_ref().clone())
        }
    };
    let expect = match specific!(expect) {
        None => None,
        Some((v, key)) if v.get_ref().is_empty() => {
            return Err(src.at(
                v,
                key,
                "`expect` is empty: leave it out to accept any answer",
            ))
        }
        Some((v, _)) => Some(v.get_ref().clone()),
    };
    let check = match name {
        "none" => return Ok(None),
        "tcp" => Check::Tcp,
        "http" | "https" => {
            let path = match specific!(path) {
                None => "/".to_string(),
                Some((v, key)) => {
                    let p = v.get_ref();
                    if !p.starts_with('/') || !header_safe(p) {
                        return Err(src.at(
                            v,
                            key,
                            format!("invalid path \"{p}\" (expected an absolute path like /health, without spaces)"),
                        ));
                    }
                    p.clone()
                }
            };
            let host = match specific!(host) {
                None => None,
                Some((v, key)) => {
                    if !header_safe(v.get_ref()) {
                        return Err(src.at(
                            v,
                            key,
                            format!(
                                "invalid host \"{}\" (expected a host name, without spaces)",
                                v.get_ref()
                            ),
                        ));
                    }
                    Some(v.get_ref().clone())
                }
            };
            let status = match specific!(status) {
                None => (200, 299),
                Some((v, key)) => parse_status(v.get_ref()).ok_or_else(|| {
                    src.at(
                        v,
                        key,
                        format!(
                            "invalid status \"{}\" (expected CODE or LOW-HIGH, codes in 100..=599)",
                            v.get_ref()
                        ),
                    )
                })?,
            };
            Check::Http(HttpCheck {
                tls: name == "https",
                path,
                host,
                status,
                expect,
            })
        }
        "udp" => Check::Udp {
            payload: specific!(payload)
                .map(|(v, _)| v.get_ref().clone())
                .unwrap_or_default(),
            expect,
        },
        _ => {
            let Some((cmd, key)) = specific!(command) else {
                return Err(src.at(
                    checker,
                    format!("{}.command", l.base()),
                    "the exec checker needs `command` ([PROGRAM, ARGS...]; the real server's address and port are appended)",
                ));
            };
            let words: Vec<String> = cmd.get_ref().iter().map(|w| w.get_ref().clone()).collect();
            if words.first().is_none_or(|w| w.is_empty()) {
                return Err(src.at(cmd, key, "`command` needs a program ([PROGRAM, ARGS...])"));
            }
            Check::Exec { command: words }
        }
    };
    if let (Some(0), None, false) = (port, check_port, matches!(check, Check::Exec { .. })) {
        return Err(src.at(
            checker,
            format!("{}.port", l.base()),
            format!(
                "the real server has no port (fwmark service): the {name} checker needs `port`"
            ),
        ));
    }
    let (source, interface) = match check {
        Check::Exec { .. } => (None, None),
        _ => (source, interface),
    };
    Ok(Some(Health {
        check,
        interval,
        timeout,
        delay,
        retries,
        successes,
        initial_up,
        port: check_port,
        source,
        interface,
    }))
}
