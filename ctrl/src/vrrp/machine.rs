//! The VRRP state machine of RFC 5798 §6.4 (and RFC 3768's, which is
//! the same in seconds), with nothing else in it: no sockets, no clock,
//! no frames. Time comes in as milliseconds; what to do comes out as
//! [`Action`]s. That keeps every rule testable on its own, the way the
//! RFC states it.

use ctrl_api::VrrpState;
use std::net::Ipv4Addr;

/// What the machine is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub version: u8,
    pub priority: u8,
    /// Advertisement_Interval, centiseconds.
    pub advert_int_cs: u16,
    pub preempt: bool,
    /// keepalived's `preempt_delay`: for this long after start-up (or a
    /// recovery from FAULT), a higher priority does not preempt.
    pub preempt_delay_ms: u64,
    /// This router's primary address, which breaks ties.
    pub primary: Ipv4Addr,
}

/// What the machine asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send an advert with this priority now.
    Advertise(u8),
    /// Send a burst of gratuitous ARPs now: another router claimed to be
    /// master and neighbours may have followed it.
    Announce,
    /// The state changed; `why` is for the log line.
    Transition {
        from: VrrpState,
        to: VrrpState,
        why: String,
    },
}

#[derive(Debug, Clone)]
pub struct Machine {
    pub params: Params,
    state: VrrpState,
    /// Master_Adver_Interval (centiseconds): learned from the master's
    /// adverts in v3; our own in v2, where it must match.
    master_int_cs: u16,
    master_down_at: Option<u64>,
    advert_at: Option<u64>,
    /// Preemption is held until then (preempt_delay).
    preempt_from: u64,
    /// Preemption held from outside (the sync's full transfer).
    preempt_hold: bool,
    /// The master as last heard: address and priority.
    master: Option<(Ipv4Addr, u8)>,
    since: u64,
}

impl Machine {
    pub fn new(params: Params) -> Machine {
        Machine {
            master_int_cs: params.advert_int_cs,
            params,
            state: VrrpState::Init,
            master_down_at: None,
            advert_at: None,
            preempt_from: 0,
            preempt_hold: false,
            master: None,
            since: 0,
        }
    }

    pub fn state(&self) -> VrrpState {
        self.state
    }
    pub fn master(&self) -> Option<(Ipv4Addr, u8)> {
        match self.state {
            VrrpState::Master => Some((self.params.primary, self.params.priority)),
            VrrpState::Backup => self.master,
            _ => None,
        }
    }
    pub fn master_int_cs(&self) -> u16 {
        self.master_int_cs
    }
    /// When the state last changed (ms).
    pub fn since(&self) -> u64 {
        self.since
    }

    /// Skew_Time, ms: v3 scales it by the master's interval (§6.1); v2
    /// keeps it a fraction of a second (RFC 3768 §6.1).
    pub fn skew_ms(&self) -> u64 {
        let p = 256 - self.params.priority as u64;
        if self.params.version == 2 {
            p * 1000 / 256
        } else {
            p * self.master_int_cs as u64 * 10 / 256
        }
    }

    /// Master_Down_Interval, ms: three intervals and the skew.
    pub fn master_down_ms(&self) -> u64 {
        3 * self.master_int_cs as u64 * 10 + self.skew_ms()
    }

    /// The next time [`Machine::tick`] has something to do.
    pub fn deadline(&self) -> Option<u64> {
        match self.state {
            VrrpState::Backup => self.master_down_at,
            VrrpState::Master => self.advert_at,
            _ => None,
        }
    }

    fn preempt_held(&self, now: u64) -> bool {
        self.preempt_hold || now < self.preempt_from
    }

    /// Holds (or releases) preemption from outside: while held, a higher
    /// priority here waits as `preempt = false` would.
    pub fn hold_preempt(&mut self, hold: bool) {
        self.preempt_hold = hold;
    }

    fn go(&mut self, to: VrrpState, now: u64, why: String, out: &mut Vec<Action>) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        self.since = now;
        out.push(Action::Transition { from, to, why });
    }

    fn become_master(&mut self, now: u64, why: String, out: &mut Vec<Action>) {
        out.push(Action::Advertise(self.params.priority));
        self.advert_at = Some(now + self.params.advert_int_cs as u64 * 10);
        self.master_down_at = None;
        self.master = None;
        self.go(VrrpState::Master, now, why, out);
    }

    fn become_backup(&mut self, now: u64, why: String, out: &mut Vec<Action>) {
        self.advert_at = None;
        self.master_down_at = Some(now + self.master_down_ms());
        self.go(VrrpState::Backup, now, why, out);
    }

    /// Startup (§6.4.1), or recovery from FAULT.
    pub fn start(&mut self, now: u64) -> Vec<Action> {
        let mut out = Vec::new();
        self.preempt_from = now + self.params.preempt_delay_ms;
        self.master_int_cs = self.params.advert_int_cs;
        self.master = None;
        if self.params.priority == 255 {
            self.become_master(
                now,
                "owner of the addresses (priority 255)".into(),
                &mut out,
            );
        } else {
            // keepalived's `state MASTER` too: keepalived 2.2 starts it as
            // backup and lets the master-down timer decide, as here.
            self.become_backup(now, "start-up".into(), &mut out);
        }
        out
    }

    /// An advert that passed every check, from `src` (its IP source).
    pub fn advert(&mut self, now: u64, src: Ipv4Addr, priority: u8, int_cs: u16) -> Vec<Action> {
        let mut out = Vec::new();
        let mine = self.params.priority;
        match self.state {
            VrrpState::Backup => {
                if priority == 0 {
                    // §6.4.2: the master is leaving; wait only the skew.
                    self.master_down_at = Some(now + self.skew_ms());
                    self.master = None;
                } else if !self.params.preempt || priority >= mine || self.preempt_held(now) {
                    if self.params.version == 3 {
                        self.master_int_cs = int_cs.max(1);
                    }
                    self.master_down_at = Some(now + self.master_down_ms());
                    self.master = Some((src, priority));
                }
                // Lower priority, preemption on: ignored, so the timer
                // runs out and this router takes over.
            }
            VrrpState::Master => {
                if priority == 0 {
                    out.push(Action::Advertise(mine));
                    self.advert_at = Some(now + self.params.advert_int_cs as u64 * 10);
                } else if priority > mine || (priority == mine && src > self.params.primary) {
                    if self.params.version == 3 {
                        self.master_int_cs = int_cs.max(1);
                    }
                    self.master = Some((src, priority));
                    let why = if priority > mine {
                        format!("higher priority {priority} from {src}")
                    } else {
                        format!("equal priority {priority} from higher address {src}")
                    };
                    self.become_backup(now, why, &mut out);
                } else {
                    // A lower priority claims to be master (it missed our
                    // adverts for a while). RFC 5798 ignores it; keepalived
                    // "forces a new election": an advert now, so it steps
                    // down at once, and gratuitous ARPs, since while it
                    // was master it announced the addresses as its own.
                    out.push(Action::Advertise(mine));
                    out.push(Action::Announce);
                    self.advert_at = Some(now + self.params.advert_int_cs as u64 * 10);
                }
            }
            VrrpState::Init | VrrpState::Fault => {}
        }
        out
    }

    /// Timers due at `now`.
    pub fn tick(&mut self, now: u64) -> Vec<Action> {
        let mut out = Vec::new();
        match self.state {
            VrrpState::Backup if self.master_down_at.is_some_and(|t| now >= t) => {
                let why = match self.master {
                    Some((a, _)) => format!("no advert from {a} for {} ms", self.master_down_ms()),
                    None => format!("no master heard for {} ms", self.master_down_ms()),
                };
                self.become_master(now, why, &mut out);
            }
            VrrpState::Master if self.advert_at.is_some_and(|t| now >= t) => {
                out.push(Action::Advertise(self.params.priority));
                let step = self.params.advert_int_cs as u64 * 10;
                // After a stall, the next advert is one interval from now,
                // not a catch-up burst.
                let next = self.advert_at.unwrap_or(now) + step;
                self.advert_at = Some(if next <= now { now + step } else { next });
            }
            _ => {}
        }
        out
    }

    /// Shutdown (§6.4.3): a master says priority 0 so a backup takes
    /// over after its skew instead of the whole master-down interval.
    pub fn shutdown(&mut self, now: u64) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == VrrpState::Master {
            out.push(Action::Advertise(0));
        }
        self.advert_at = None;
        self.master_down_at = None;
        self.go(VrrpState::Init, now, "stopping".into(), &mut out);
        out
    }

    /// The port's link went down (`false`) or came back.
    pub fn link(&mut self, now: u64, up: bool) -> Vec<Action> {
        let mut out = Vec::new();
        match (up, self.state) {
            (false, VrrpState::Fault) | (true, VrrpState::Backup | VrrpState::Master) => {}
            (false, _) => {
                self.advert_at = None;
                self.master_down_at = None;
                self.master = None;
                self.go(VrrpState::Fault, now, "link down".into(), &mut out);
            }
            (true, _) => out = self.start(now),
        }
        out
    }

    /// New parameters (a reload): the state stays; timers follow the new
    /// interval from their next run. A lower priority on a master, or
    /// preemption turned off, changes nothing until the next advert.
    pub fn reconfigure(&mut self, params: Params) {
        if self.params.version == 2 || self.state != VrrpState::Backup {
            self.master_int_cs = params.advert_int_cs;
        }
        self.params = params;
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
