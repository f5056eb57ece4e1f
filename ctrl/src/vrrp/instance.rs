//! One VRRP instance: its config, its state machine, its counters and
//! the gratuitous ARPs it owes, and the checks that need the instance
//! (version, authentication, interval).

use super::advert::{self, Heard};
use super::machine::{Action, Machine, Params};
use ctrl_api::{VrrpInfo, VrrpState, VrrpStats};
use fastpath::wire::vrrp::{self, Advert};
use fastpath::wire::MacAddr;
use std::net::Ipv4Addr;

/// A port as VRRP sees it.
#[derive(Debug, Clone)]
pub struct PortInfo {
    pub name: String,
    pub mac: MacAddr,
    /// Interface addresses and prefix lengths; the first is primary.
    pub addrs: Vec<(Ipv4Addr, u8)>,
}

impl PortInfo {
    pub fn primary(&self) -> Ipv4Addr {
        self.addrs
            .first()
            .map_or(Ipv4Addr::UNSPECIFIED, |&(a, _)| a)
    }
    pub fn on_link(&self, a: Ipv4Addr) -> bool {
        self.addrs
            .iter()
            .any(|&(n, len)| fastpath::output::route::contains(n, len, a))
    }
}

/// A frame for the data plane to send: on `port`, or routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Out {
    pub port: Option<usize>,
    pub frame: Vec<u8>,
}

pub struct Instance {
    pub cfg: conf::Vrrp,
    /// Its bit in the data plane's mastery word.
    pub index: u8,
    pub port: usize,
    pub machine: Machine,
    pub stats: VrrpStats,
    /// Times (ms) of the gratuitous ARP bursts still owed.
    garp_at: Vec<u64>,
    /// The next periodic refresh while master.
    refresh_at: Option<u64>,
    ident: u16,
}

/// A state change for the log, the notify scripts and the sync roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub instance: String,
    pub from: VrrpState,
    pub to: VrrpState,
    pub priority: u8,
    pub why: String,
}

pub fn params(cfg: &conf::Vrrp, port: &PortInfo) -> Params {
    Params {
        version: cfg.version,
        priority: cfg.priority,
        advert_int_cs: cfg.advert_int_cs,
        preempt: cfg.preempt,
        preempt_delay_ms: cfg.preempt_delay_s as u64 * 1000,
        primary: port.primary(),
    }
}

impl Instance {
    pub fn new(cfg: conf::Vrrp, index: u8, port: usize, info: &PortInfo) -> Instance {
        Instance {
            machine: Machine::new(params(&cfg, info)),
            cfg,
            index,
            port,
            stats: VrrpStats::default(),
            garp_at: Vec::new(),
            refresh_at: None,
            ident: 0,
        }
    }

    /// The MAC this instance speaks with on port `p`: the virtual router
    /// MAC on its own port with `use_vmac`, else the port's.
    fn mac_on(&self, p: usize, info: &PortInfo) -> MacAddr {
        if self.cfg.use_vmac && p == self.port {
            MacAddr(vrrp::virtual_mac(self.cfg.vrid))
        } else {
            info.mac
        }
    }

    pub fn reject(&mut self, why: &str) {
        *self.stats.rejected.entry(why.to_string()).or_default() += 1;
    }

    /// The checks of RFC 5798 §7.1 that need this instance; `Ok` hands
    /// the advert to the machine.
    pub fn check(&mut self, h: &Heard) -> Result<(), &'static str> {
        if h.version != self.cfg.version {
            return Err("bad_version");
        }
        if h.version == 2 {
            let want: &[u8] = self.cfg.auth_pass.as_deref().map_or(&[], str::as_bytes);
            let mut pw = [0u8; vrrp::AUTH_LEN];
            pw[..want.len()].copy_from_slice(want);
            let ty = if want.is_empty() {
                vrrp::AUTH_NONE
            } else {
                vrrp::AUTH_PASS
            };
            if h.auth_type != ty || (ty == vrrp::AUTH_PASS && h.auth != pw) {
                return Err("bad_auth");
            }
            // RFC 3768 §7.1: v2 routers must agree on the interval.
            if h.interval_cs != self.cfg.advert_int_cs {
                return Err("bad_interval");
            }
        }
        if h.interval_cs == 0 && h.version == 3 {
            return Err("bad_interval");
        }
        Ok(())
    }

    /// The instance's adverts with `priority`: to the group, or to each
    /// unicast peer.
    pub fn adverts(&mut self, priority: u8, port: &PortInfo) -> Vec<Out> {
        let pw = self.cfg.auth_pass.as_deref().map(str::as_bytes);
        let a = Advert {
            version: self.cfg.version,
            vrid: self.cfg.vrid,
            priority,
            interval_cs: self.cfg.advert_int_cs,
            addresses: &self.cfg.addresses,
            password: if self.cfg.version == 2 { pw } else { None },
        };
        let src = port.primary();
        let dsts: Vec<Ipv4Addr> = if self.cfg.unicast_peers.is_empty() {
            vec![vrrp::GROUP]
        } else {
            self.cfg.unicast_peers.clone()
        };
        let mut out = Vec::new();
        for dst in dsts {
            self.ident = self.ident.wrapping_add(1);
            let mac = self.mac_on(self.port, port);
            if let Some(frame) = advert::advert_frame(&a, mac, src, dst, self.ident) {
                self.stats.adverts_sent += 1;
                if priority == 0 {
                    self.stats.priority_zero_sent += 1;
                }
                let port = dst.is_multicast().then_some(self.port);
                out.push(Out { port, frame });
            }
        }
        out
    }

    /// The gratuitous ARPs of one burst: `repeat` for each address, on
    /// the port whose network holds it (the instance's port otherwise).
    fn garps(&mut self, repeat: u16, ports: &[PortInfo]) -> Vec<Out> {
        let mut out = Vec::new();
        for _ in 0..repeat {
            for &addr in &self.cfg.addresses {
                let p = ports
                    .iter()
                    .position(|p| p.on_link(addr))
                    .unwrap_or(self.port);
                out.push(Out {
                    port: Some(p),
                    frame: advert::garp_frame(self.mac_on(p, &ports[p]), addr),
                });
                self.stats.gratuitous_arps += 1;
            }
        }
        out
    }

    /// What the machine's actions mean here: frames to send and the
    /// transitions they made.
    pub fn act(
        &mut self,
        now: u64,
        actions: Vec<Action>,
        ports: &[PortInfo],
        out: &mut Vec<Out>,
        moved: &mut Vec<Transition>,
    ) {
        for a in actions {
            match a {
                Action::Advertise(p) => out.extend(self.adverts(p, &ports[self.port])),
                Action::Announce => self.garp_at.insert(0, now),
                Action::Transition { from, to, why } => {
                    self.stats.transitions += 1;
                    self.garp_at.clear();
                    self.refresh_at = None;
                    if to == VrrpState::Master {
                        self.stats.became_master += 1;
                        // keepalived: a burst now, another after
                        // garp_master_delay, then every refresh period.
                        self.garp_at.push(now);
                        if self.cfg.garp_master_delay_s > 0 {
                            self.garp_at
                                .push(now + self.cfg.garp_master_delay_s as u64 * 1000);
                        }
                        if self.cfg.garp_master_refresh_s > 0 {
                            self.refresh_at =
                                Some(now + self.cfg.garp_master_refresh_s as u64 * 1000);
                        }
                    }
                    moved.push(Transition {
                        instance: self.cfg.name.clone(),
                        from,
                        to,
                        priority: self.cfg.priority,
                        why,
                    });
                }
            }
        }
        self.garp_due(now, ports, out);
    }

    /// Bursts of gratuitous ARPs that are due.
    pub fn garp_due(&mut self, now: u64, ports: &[PortInfo], out: &mut Vec<Out>) {
        if self.machine.state() != VrrpState::Master {
            return;
        }
        while self.garp_at.first().is_some_and(|&t| t <= now) {
            self.garp_at.remove(0);
            out.extend(self.garps(self.cfg.garp_master_repeat, ports));
        }
        if let Some(t) = self.refresh_at {
            if t <= now {
                out.extend(self.garps(self.cfg.garp_master_refresh_repeat, ports));
                self.refresh_at = Some(now + self.cfg.garp_master_refresh_s as u64 * 1000);
            }
        }
    }

    /// The instance's next timer: the machine's or a gratuitous ARP's.
    pub fn deadline(&self) -> Option<u64> {
        let garp = if self.machine.state() == VrrpState::Master {
            self.garp_at
                .first()
                .copied()
                .into_iter()
                .chain(self.refresh_at)
                .min()
        } else {
            None
        };
        [self.machine.deadline(), garp].into_iter().flatten().min()
    }

    pub fn info(&self, now: u64, port: &PortInfo) -> VrrpInfo {
        let m = &self.machine;
        VrrpInfo {
            name: self.cfg.name.clone(),
            port: port.name.clone(),
            vrid: self.cfg.vrid,
            version: self.cfg.version,
            state: m.state(),
            priority: self.cfg.priority,
            advert_int_cs: self.cfg.advert_int_cs,
            master_advert_int_cs: if m.state() == VrrpState::Master {
                self.cfg.advert_int_cs
            } else {
                m.master_int_cs()
            },
            preempt: self.cfg.preempt,
            master: m.master().map(|(a, _)| a),
            master_priority: m.master().map_or(0, |(_, p)| p),
            addresses: self.cfg.addresses.clone(),
            unicast_peers: self.cfg.unicast_peers.clone(),
            since_ms: now.saturating_sub(m.since()),
            stats: self.stats.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn cfg(version: u8, auth: Option<&str>) -> conf::Vrrp {
        conf::Vrrp {
            name: "VI_1".into(),
            port: "p0".into(),
            vrid: 51,
            priority: 100,
            version,
            advert_int_cs: 100,
            preempt: true,
            preempt_delay_s: 0,
            initial: conf::VrrpInitial::Backup,
            addresses: vec![a("10.0.0.100")],
            unicast_peers: vec![],
            auth_pass: auth.map(str::to_string),
            garp_master_delay_s: 5,
            garp_master_repeat: 2,
            garp_master_refresh_s: 0,
            garp_master_refresh_repeat: 1,
            notify_master: None,
            notify_backup: None,
            notify_fault: None,
            notify: None,
            sync_daemon: false,
            use_vmac: false,
        }
    }

    fn port() -> PortInfo {
        PortInfo {
            name: "p0".into(),
            mac: MacAddr([2, 0, 0, 0, 0, 1]),
            addrs: vec![(a("10.0.0.1"), 24)],
        }
    }

    /// An advert from a peer configured as `peer`.
    fn heard(peer: &conf::Vrrp) -> Heard {
        let mut i = Instance::new(peer.clone(), 0, 0, &port());
        let f = i.adverts(150, &port()).remove(0).frame;
        advert::parse(&f).unwrap()
    }

    /// RFC 5798 §7.1 / RFC 3768 §7.1, the checks that need the instance:
    /// the version it runs, v2's authentication and interval.
    #[test]
    fn instance_checks() {
        let v3 = cfg(3, None);
        let mut i = Instance::new(v3.clone(), 0, 0, &port());
        assert_eq!(i.check(&heard(&v3)), Ok(()));
        assert_eq!(i.check(&heard(&cfg(2, None))), Err("bad_version"));

        let v2 = cfg(2, Some("secret"));
        let mut i = Instance::new(v2.clone(), 0, 0, &port());
        assert_eq!(i.check(&heard(&v2)), Ok(()));
        assert_eq!(i.check(&heard(&cfg(2, Some("other")))), Err("bad_auth"));
        assert_eq!(i.check(&heard(&cfg(2, None))), Err("bad_auth"));
        let slow = conf::Vrrp {
            advert_int_cs: 300,
            ..v2.clone()
        };
        assert_eq!(i.check(&heard(&slow)), Err("bad_interval"));
        let mut open = Instance::new(cfg(2, None), 0, 0, &port());
        assert_eq!(
            open.check(&heard(&v2)),
            Err("bad_auth"),
            "a password where none is set"
        );
    }

    /// Becoming master: an advert, then `garp_master_repeat` gratuitous
    /// ARPs per address now, and another burst `garp_master_delay` later.
    #[test]
    fn a_new_master_advertises_and_announces_twice() {
        let ports = [port()];
        let mut i = Instance::new(cfg(3, None), 0, 0, &ports[0]);
        let (mut out, mut moved) = (Vec::new(), Vec::new());
        let a0 = i.machine.start(0);
        i.act(0, a0, &ports, &mut out, &mut moved);
        assert!(out.is_empty());
        let a1 = i.machine.tick(10_000);
        i.act(10_000, a1, &ports, &mut out, &mut moved);
        // advert (ethertype 0800) then 2 ARPs (0806)
        let kinds: Vec<[u8; 2]> = out.iter().map(|o| [o.frame[12], o.frame[13]]).collect();
        assert_eq!(kinds, [[8, 0], [8, 6], [8, 6]]);
        assert_eq!(moved.len(), 2);
        assert_eq!(i.deadline(), Some(10_000 + 1000), "the next advert");
        out.clear();
        i.garp_due(14_999, &ports, &mut out);
        assert!(out.is_empty());
        i.garp_due(15_000, &ports, &mut out);
        assert_eq!(out.len(), 2, "the second burst, 5 s on");
        assert_eq!(i.stats.gratuitous_arps, 4);
    }

    /// `garp_master_refresh`: further bursts every so many seconds while
    /// master, of `garp_master_refresh_repeat` each; none once backup.
    #[test]
    fn refresh_bursts_while_master() {
        let ports = [port()];
        let c = conf::Vrrp {
            garp_master_delay_s: 0,
            garp_master_refresh_s: 2,
            garp_master_refresh_repeat: 3,
            ..cfg(3, None)
        };
        let mut i = Instance::new(c, 0, 0, &ports[0]);
        let (mut out, mut moved) = (Vec::new(), Vec::new());
        let a = i.machine.start(0);
        i.act(0, a, &ports, &mut out, &mut moved);
        let a = i.machine.tick(10_000);
        i.act(10_000, a, &ports, &mut out, &mut moved);
        assert_eq!(
            i.stats.gratuitous_arps, 2,
            "the first burst only: no delayed one"
        );
        assert_eq!(
            i.deadline(),
            Some(11_000),
            "the next advert comes before the refresh"
        );
        out.clear();
        i.garp_due(12_000, &ports, &mut out);
        i.garp_due(13_999, &ports, &mut out);
        assert_eq!(out.len(), 3);
        i.garp_due(14_000, &ports, &mut out);
        assert_eq!(out.len(), 6);
        let a = i.machine.advert(14_100, a_peer(), 200, 100);
        i.act(14_100, a, &ports, &mut out, &mut moved);
        out.clear();
        i.garp_due(20_000, &ports, &mut out);
        assert!(out.is_empty(), "a backup announces nothing");
    }

    fn a_peer() -> Ipv4Addr {
        a("10.0.0.2")
    }
}
