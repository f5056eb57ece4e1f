//! Real-server health checks: what the checker thread finds, and what it
//! does to the live table.
//!
//! The checks themselves run on their own thread ([`checker`]) and never
//! hold up the control loop; their verdicts come back over a channel, and
//! the control loop feeds them to [`Health::record`] on its next pass.
//! This module is pure bookkeeping over the [`Model`]: it turns state
//! changes into ordinary [`Command`]s, so a health change is validated and
//! applied exactly as an operator's would be.
//!
//! # States
//!
//! A checked real server is up or down. It starts up, as keepalived's
//! real servers do (a restarted director keeps serving while the first
//! checks run), unless its check says `initial = "down"` (keepalived's
//! `alpha`): then it stays out of service until `successes` checks pass.
//! `retries` consecutive failures take an up server down; `successes`
//! consecutive passes bring a down server back.
//!
//! # Effects
//!
//! * `quiescent = true`: a down server's weight is 0, so it gets no new
//!   connections and keeps the ones it has (ldirectord `quiescent=yes`).
//! * `quiescent = false`: a down server leaves the table (keepalived), and
//!   is added back on recovery.
//!
//! Either way the weight restored on recovery is the configured one, or
//! the last one an operator set with `ripvsadm -e`: an edit of a down
//! server's weight is kept for its recovery, and the server stays out of
//! service until its checks pass. An operator who deletes a checked real
//! server (or its service) ends its checks; a config reload starts them
//! again if the server is still configured.
//!
//! A service's `sorry_server` is in the table exactly while no other real
//! server is available (present with a weight above 0), as ldirectord's
//! `fallback` and keepalived's `sorry_server`.

pub mod checker;
pub mod probe;

use crate::model::{dest_spec, svc_spec, Model};
use conf::Config;
use ctrl_api::{
    CheckResult, Command, DestSpec, HealthDest, HealthService, Method, Proto, SorryInfo, SvcKey,
};
use probe::{Target, Verdict};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::SystemTime;

/// `TCP 10.0.0.1:80` or `FWM 1`, as ipvsadm lists services.
pub fn svc_label(k: &SvcKey) -> String {
    match k {
        SvcKey::Addr { proto, addr, port } => {
            let p = match proto {
                Proto::Tcp => "TCP",
                Proto::Udp => "UDP",
                Proto::Sctp => "SCTP",
            };
            format!("{p} {}", endpoint(*addr, *port))
        }
        SvcKey::Fwmark { mark, .. } => format!("FWM {mark}"),
    }
}

fn endpoint(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

fn plural(n: u32, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One checked real server.
#[derive(Debug, Clone)]
struct Tracked {
    svc: SvcKey,
    target: Target,
    /// What goes back into the table on recovery; its weight is the one
    /// to restore.
    spec: DestSpec,
    up: bool,
    failures: u32,
    successes: u32,
    last: Option<(SystemTime, Verdict)>,
    since: SystemTime,
}

impl Tracked {
    fn label(&self) -> String {
        format!(
            "{} -> {}",
            svc_label(&self.svc),
            endpoint(self.spec.addr, self.spec.port)
        )
    }

    fn key(&self) -> (SvcKey, IpAddr, u16) {
        (self.svc, self.spec.addr, self.spec.port)
    }
}

#[derive(Debug, Clone)]
struct Policy {
    quiescent: bool,
    sorry: Option<DestSpec>,
}

/// Health state of every checked real server, and each service's policy.
#[derive(Debug, Clone, Default)]
pub struct Health {
    /// By id. Ids are handed out in config order and kept across reloads,
    /// so this is config order with later additions last.
    servers: BTreeMap<u64, Tracked>,
    next_id: u64,
    /// Config order.
    services: Vec<(SvcKey, Policy)>,
    /// Log lines not yet handed to the daemon.
    log: Vec<String>,
}

impl Health {
    /// The config's checks, each server in its initial state since `now`.
    pub fn new(cfg: &Config, now: SystemTime) -> Health {
        let mut h = Health::default();
        h.reconfigure(cfg, now);
        h
    }

    /// True when nothing is checked and no service has a sorry server.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty() && self.services.iter().all(|(_, p)| p.sorry.is_none())
    }

    /// Takes in a (re)loaded config. A server still configured with a
    /// check keeps its state and counters; a new one starts in its initial
    /// state; a server no longer checked is forgotten. The weight to
    /// restore becomes the configured one: a reload is the operator
    /// stating the table.
    pub fn reconfigure(&mut self, cfg: &Config, now: SystemTime) {
        let mut old: HashMap<(SvcKey, IpAddr, u16), (u64, Tracked)> =
            std::mem::take(&mut self.servers)
                .into_iter()
                .map(|(id, t)| (t.key(), (id, t)))
                .collect();
        self.services.clear();
        for s in &cfg.services {
            let key = svc_spec(s).key;
            let sorry = s.sorry_server.as_ref().map(|ss| DestSpec {
                addr: ss.addr,
                port: ss.port,
                method: match ss.method {
                    conf::Method::Dr => Method::Dr,
                    conf::Method::Tun => Method::Tun,
                    conf::Method::Nat => Method::Nat,
                },
                weight: 1,
                u_threshold: 0,
                l_threshold: 0,
                tun: None,
            });
            self.services.push((
                key,
                Policy {
                    quiescent: s.quiescent,
                    sorry,
                },
            ));
            for r in &s.real_servers {
                let Some(h) = &r.health else { continue };
                let spec = dest_spec(r);
                let target = Target {
                    addr: r.addr,
                    port: r.port,
                    health: h.clone(),
                };
                let (id, t) = match old.remove(&(key, r.addr, r.port)) {
                    Some((id, t)) => (id, Tracked { target, spec, ..t }),
                    None => {
                        self.next_id += 1;
                        let t = Tracked {
                            svc: key,
                            target,
                            spec,
                            up: h.initial_up,
                            failures: 0,
                            successes: 0,
                            last: None,
                            since: now,
                        };
                        (self.next_id, t)
                    }
                };
                self.servers.insert(id, t);
            }
        }
    }

    /// `cfg` as the table should have it given the servers' states: down
    /// servers at weight 0 or left out, sorry servers in where no real
    /// server is available. Boot and reload build the table from this.
    pub fn desired(&self, cfg: &Config) -> Config {
        let mut out = cfg.clone();
        let state: HashMap<(SvcKey, IpAddr, u16), bool> =
            self.servers.values().map(|t| (t.key(), t.up)).collect();
        for s in &mut out.services {
            let key = svc_spec(s).key;
            let up = |r: &conf::RealServer| state.get(&(key, r.addr, r.port)).copied();
            if s.quiescent {
                for r in &mut s.real_servers {
                    if up(r) == Some(false) {
                        r.weight = 0;
                    }
                }
            } else {
                s.real_servers.retain(|r| up(r) != Some(false));
            }
            if let Some(ss) = &s.sorry_server {
                if s.real_servers.iter().all(|r| r.weight == 0) {
                    s.real_servers.push(conf::RealServer {
                        addr: ss.addr,
                        port: ss.port,
                        method: ss.method,
                        weight: 1,
                        upper_threshold: 0,
                        lower_threshold: 0,
                        health: None,
                    });
                }
            }
        }
        out
    }

    /// What the checker thread should be checking.
    pub fn targets(&self) -> Vec<(u64, Target)> {
        self.servers
            .iter()
            .map(|(&id, t)| (id, t.target.clone()))
            .collect()
    }

    fn policy(&self, key: &SvcKey) -> Option<&Policy> {
        self.services.iter().find(|(k, _)| k == key).map(|(_, p)| p)
    }

    /// Takes in one verdict (`at`: when it was decided) and returns the
    /// commands that make the table follow a state change, if any. A
    /// verdict for a server no longer checked is ignored.
    pub fn record(&mut self, id: u64, verdict: Verdict, at: SystemTime) -> Vec<Command> {
        let Some(t) = self.servers.get_mut(&id) else {
            return Vec::new();
        };
        let h = &t.target.health;
        let mut changed = false;
        match &verdict {
            Ok(()) => {
                t.failures = 0;
                t.successes = t.successes.saturating_add(1);
                if !t.up && t.successes >= h.successes {
                    t.up = true;
                    changed = true;
                }
            }
            Err(_) => {
                t.successes = 0;
                t.failures = t.failures.saturating_add(1);
                if t.up && t.failures >= h.retries {
                    t.up = false;
                    changed = true;
                }
            }
        }
        t.last = Some((at, verdict));
        if !changed {
            return Vec::new();
        }
        t.since = at;
        let t = t.clone();
        let quiescent = self.policy(&t.svc).is_some_and(|p| p.quiescent);
        let mut spec = t.spec.clone();
        let (cmd, effect) = match (t.up, quiescent) {
            (false, true) => {
                spec.weight = 0;
                (Command::EditDest(t.svc, spec), "weight 0".to_string())
            }
            (false, false) => (
                Command::DelDest {
                    svc: t.svc,
                    addr: spec.addr,
                    port: spec.port,
                },
                "removed".to_string(),
            ),
            (true, true) => (
                Command::EditDest(t.svc, spec),
                format!("weight {} restored", t.spec.weight),
            ),
            (true, false) => (
                Command::AddDest(t.svc, spec),
                format!("reinstated with weight {}", t.spec.weight),
            ),
        };
        let line = match &t.last {
            Some((_, Err(why))) => format!(
                "health: {} down ({why}) after {}: {effect}",
                t.label(),
                plural(t.failures, "failure", "failures")
            ),
            _ => format!(
                "health: {} up after {}: {effect}",
                t.label(),
                plural(t.successes, "success", "successes")
            ),
        };
        self.log.push(line);
        vec![cmd]
    }

    /// After an operator's change to `model`: a new weight on a checked
    /// server becomes the weight to restore (a down server stays out of
    /// service, hence the commands returned); a checked server the
    /// operator deleted, or whose service is gone, is checked no more.
    /// Returns true in `.1` when the set of checked servers changed.
    pub fn observe(&mut self, model: &Model) -> (Vec<Command>, bool) {
        let mut cmds = Vec::new();
        let mut dropped = Vec::new();
        for (&id, t) in self.servers.iter_mut() {
            let quiescent = self
                .services
                .iter()
                .find(|(k, _)| *k == t.svc)
                .is_some_and(|(_, p)| p.quiescent);
            let Some(svc) = model.service(&t.svc) else {
                dropped.push(id);
                continue;
            };
            match (svc.dest(t.spec.addr, t.spec.port), t.up, quiescent) {
                (Some(d), true, _) => t.spec = d.spec.clone(),
                (Some(d), false, true) => {
                    // Other settings (thresholds) are taken as they are;
                    // its weight 0 is ours, not the operator's.
                    let keep = t.spec.weight;
                    t.spec = d.spec.clone();
                    if d.spec.weight == 0 {
                        t.spec.weight = keep;
                    } else {
                        let mut zero = d.spec.clone();
                        zero.weight = 0;
                        cmds.push(Command::EditDest(t.svc, zero));
                        self.log.push(format!(
                            "health: {} is down: weight {} kept for its recovery",
                            t.label(),
                            t.spec.weight
                        ));
                    }
                }
                (Some(d), false, false) => {
                    t.spec = d.spec.clone();
                    cmds.push(Command::DelDest {
                        svc: t.svc,
                        addr: t.spec.addr,
                        port: t.spec.port,
                    });
                    self.log.push(format!(
                        "health: {} is down: kept out of the table, weight {} kept for its recovery",
                        t.label(),
                        t.spec.weight
                    ));
                }
                (None, false, false) => {}
                (None, _, _) => dropped.push(id),
            }
        }
        for id in &dropped {
            if let Some(t) = self.servers.remove(id) {
                self.log.push(format!(
                    "health: {} deleted by the operator: no longer checked",
                    t.label()
                ));
            }
        }
        (cmds, !dropped.is_empty())
    }

    /// Brings each sorry server in or out of its service as availability
    /// says; call after every change to `model`.
    pub fn sorry(&mut self, model: &Model) -> Vec<Command> {
        let mut cmds = Vec::new();
        for (key, p) in &self.services {
            let (Some(sorry), Some(svc)) = (&p.sorry, model.service(key)) else {
                continue;
            };
            let is_sorry = |d: &crate::model::DestEntry| {
                (d.spec.addr, d.spec.port) == (sorry.addr, sorry.port)
            };
            let available = svc.dests().any(|d| !is_sorry(d) && d.spec.weight > 0);
            let present = svc.dests().any(is_sorry);
            let sorry_label = endpoint(sorry.addr, sorry.port);
            if !available && !present {
                cmds.push(Command::AddDest(*key, sorry.clone()));
                self.log.push(format!(
                    "health: {} sorry server {sorry_label} in: no real server available",
                    svc_label(key)
                ));
            } else if available && present {
                cmds.push(Command::DelDest {
                    svc: *key,
                    addr: sorry.addr,
                    port: sorry.port,
                });
                self.log.push(format!(
                    "health: {} sorry server {sorry_label} out: a real server is available",
                    svc_label(key)
                ));
            }
        }
        cmds
    }

    /// Log lines since the last call, oldest first.
    pub fn take_log(&mut self) -> Vec<String> {
        std::mem::take(&mut self.log)
    }

    /// Adds a line to the log (the control loop's own health messages).
    pub fn note(&mut self, line: String) {
        self.log.push(line);
    }

    /// The listing `ripvsadm --health` shows; `only`: one service.
    pub fn report(&self, model: &Model, only: Option<&SvcKey>) -> Vec<HealthService> {
        self.services
            .iter()
            .filter(|(k, _)| only.is_none_or(|o| o == k))
            .filter_map(|(key, p)| {
                let svc = model.service(key)?;
                let dests: Vec<HealthDest> = self
                    .servers
                    .values()
                    .filter(|t| t.svc == *key)
                    .map(|t| HealthDest {
                        addr: t.spec.addr,
                        port: t.spec.port,
                        checker: t.target.health.check.name().to_string(),
                        up: t.up,
                        weight: t.spec.weight,
                        failures: t.failures,
                        successes: t.successes,
                        last: t.last.as_ref().map(|(at, v)| CheckResult {
                            failure: v.clone().err(),
                            at_ms: epoch_ms(*at),
                        }),
                        since_ms: epoch_ms(t.since),
                    })
                    .collect();
                let sorry = p.sorry.as_ref().map(|s| SorryInfo {
                    addr: s.addr,
                    port: s.port,
                    active: svc.dest(s.addr, s.port).is_some(),
                });
                (!dests.is_empty() || sorry.is_some()).then_some(HealthService {
                    key: *key,
                    quiescent: p.quiescent,
                    sorry,
                    dests,
                })
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
