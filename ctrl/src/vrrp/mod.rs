//! VRRP (RFC 5798 v3, RFC 3768 v2), as keepalived speaks it, built into
//! the director: it decides whether this director holds the VIPs.
//!
//! It runs on a thread of its own, not the control thread: a long
//! listing or a reload there must never delay an advert, or a healthy
//! master would look dead to its backup. The thread owns the instances
//! and talks to the rest through narrow ends:
//! - frames: adverts come up from the workers and adverts and gratuitous
//!   ARPs go down to worker 0 (`fastpath::control_link`), so they use the
//!   ports, MACs and links the data goes through;
//! - the gate: one mastery bit per instance (`fastpath::gate`), stored
//!   by this thread the moment a transition happens, read by the workers
//!   per packet; no snapshot is rebuilt for a failover;
//! - the control thread: it reads the instances' state (`--vrrp`), the
//!   log lines and the transitions (to switch the sync roles), and sends
//!   reloads and the preemption hold.
//!
//! Files: `machine` (the RFC's rules), `instance` (one instance's frames,
//! counters and gratuitous ARPs), `advert` (frames in and out),
//! `notify` (keepalived's notify scripts).

pub mod admin;
pub mod advert;
pub mod instance;
pub mod machine;
pub mod notify;

use crossbeam_channel::{bounded, Receiver, Sender};
use ctrl_api::{VrrpInfo, VrrpState};
use fastpath::control_link::{ControlEnd, Frame};
use instance::{Instance, Out, PortInfo, Transition};
use machine::Action;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often link states are read.
const LINK_POLL_MS: u64 = 100;
/// The longest the thread sleeps: reloads and stops wait no longer.
const MAX_SLEEP_MS: u64 = 100;

/// A millisecond clock (the workers' TSC clock in the daemon).
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;
/// Whether port `i`'s link is up.
pub type LinkState = Box<dyn Fn(usize) -> bool + Send>;

enum Cmd {
    Reconfigure(Vec<conf::Vrrp>),
    HoldPreempt(bool),
    Stop,
}

/// What the thread shows the control thread.
#[derive(Default)]
struct Board {
    info: Vec<VrrpInfo>,
    log: Vec<String>,
    moved: Vec<Transition>,
}

/// The control thread's end.
pub struct VrrpHandle {
    cmds: Sender<Cmd>,
    board: Arc<Mutex<Board>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Everything the thread needs.
pub struct Setup {
    pub ports: Vec<PortInfo>,
    pub link: LinkState,
    /// Its `mastery` word is the gate this thread sets.
    pub shared: Arc<fastpath::ipvs::Shared>,
    pub control: ControlEnd,
    pub clock: Clock,
    /// Whether every worker polls its ports: the instances start (and
    /// their master-down timers run) only from then on, since until then
    /// no advert is read and none would be sent.
    pub ready: Box<dyn Fn() -> bool + Send>,
}

/// The longest the thread waits for the workers before it starts anyway.
const READY_MAX_MS: u64 = 60_000;

/// The instances of `cfg` in config order, their index their mastery bit.
fn instances(cfg: &[conf::Vrrp], ports: &[PortInfo]) -> Vec<Instance> {
    cfg.iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let p = ports.iter().position(|p| p.name == c.port)?;
            Some(Instance::new(c.clone(), i as u8, p, &ports[p]))
        })
        .collect()
}

impl VrrpHandle {
    pub fn spawn(setup: Setup, cfg: &[conf::Vrrp]) -> std::io::Result<VrrpHandle> {
        let (tx, rx) = bounded(16);
        let board = Arc::new(Mutex::new(Board::default()));
        let b = board.clone();
        let list = instances(cfg, &setup.ports);
        let thread = std::thread::Builder::new()
            .name("ripvs-vrrp".into())
            .spawn(move || Runner::new(setup, list, b).run(rx))?;
        Ok(VrrpHandle {
            cmds: tx,
            board,
            thread: Some(thread),
        })
    }

    pub fn info(&self) -> Vec<VrrpInfo> {
        self.board
            .lock()
            .map(|b| b.info.clone())
            .unwrap_or_default()
    }

    /// Log lines since the last call.
    pub fn take_log(&self) -> Vec<String> {
        self.board
            .lock()
            .map(|mut b| std::mem::take(&mut b.log))
            .unwrap_or_default()
    }

    /// Transitions since the last call.
    pub fn take_transitions(&self) -> Vec<Transition> {
        self.board
            .lock()
            .map(|mut b| std::mem::take(&mut b.moved))
            .unwrap_or_default()
    }

    /// A reload: instances that stay (by name) keep their state.
    pub fn reconfigure(&self, cfg: &[conf::Vrrp]) {
        let _ = self.cmds.send(Cmd::Reconfigure(cfg.to_vec()));
    }

    /// Holds preemption on every instance (while the sync's full
    /// transfer runs, so a restarted director takes the VIPs back only
    /// once it holds the connections).
    pub fn hold_preempt(&self, hold: bool) {
        let _ = self.cmds.send(Cmd::HoldPreempt(hold));
    }

    /// Stops: a master sends its priority-0 advert first.
    pub fn stop(&mut self) {
        let _ = self.cmds.send(Cmd::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for VrrpHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Runner {
    s: Setup,
    list: Vec<Instance>,
    board: Arc<Mutex<Board>>,
    links: Vec<bool>,
    next_link_poll: u64,
    hold: bool,
    notify: notify::Notifier,
}

impl Runner {
    fn new(s: Setup, list: Vec<Instance>, board: Arc<Mutex<Board>>) -> Runner {
        let links = vec![true; s.ports.len()];
        Runner {
            s,
            list,
            board,
            links,
            next_link_poll: 0,
            hold: false,
            notify: notify::Notifier::default(),
        }
    }

    fn send(&self, out: Vec<Out>) {
        for o in out {
            let f = match o.port {
                Some(p) => Frame::new(p, &o.frame),
                None => Frame::routed(&o.frame),
            };
            if let Some(f) = f {
                // A full queue loses this frame; the next advert follows
                // within an interval.
                let _ = self.s.control.tx.try_send(f);
            }
        }
    }

    /// Acts on transitions: the gate first (the data plane follows at
    /// once), then the log, the scripts and the control thread's list.
    fn moved(&mut self, moved: Vec<Transition>) {
        if moved.is_empty() {
            return;
        }
        self.set_gate();
        let mut lines = Vec::new();
        for t in &moved {
            lines.push(format!(
                "vrrp {}: {} -> {} ({})",
                t.instance,
                t.from.name(),
                t.to.name(),
                t.why
            ));
            if let Some(i) = self.list.iter().find(|i| i.cfg.name == t.instance) {
                if let Some(e) = self.notify.run(&i.cfg, t.to) {
                    lines.push(format!("vrrp {}: notify: {e}", t.instance));
                }
            }
        }
        if let Ok(mut b) = self.board.lock() {
            b.log.extend(lines);
            b.moved.extend(moved);
        }
    }

    fn publish(&self, now: u64) {
        let info = self
            .list
            .iter()
            .map(|i| i.info(now, &self.s.ports[i.port]))
            .collect();
        if let Ok(mut b) = self.board.lock() {
            b.info = info;
        }
    }

    /// The data plane's mastery word from the instances' states.
    fn set_gate(&self) {
        let mask = self
            .list
            .iter()
            .filter(|i| i.machine.state() == VrrpState::Master)
            .fold(0u64, |m, i| m | 1 << i.index);
        self.s.shared.mastery.set(mask);
    }

    /// Runs `f` on every instance and acts on what their machines ask:
    /// frames out, then transitions.
    fn on_all(&mut self, now: u64, mut f: impl FnMut(&mut Instance) -> Vec<Action>) {
        let (mut out, mut moved) = (Vec::new(), Vec::new());
        for i in &mut self.list {
            let a = f(i);
            i.act(now, a, &self.s.ports, &mut out, &mut moved);
        }
        self.send(out);
        self.moved(moved);
    }

    fn start(&mut self, now: u64) {
        let hold = self.hold;
        self.on_all(now, |i| {
            i.machine.hold_preempt(hold);
            i.machine.start(now)
        });
    }

    fn poll_links(&mut self, now: u64) {
        if now < self.next_link_poll {
            return;
        }
        self.next_link_poll = now + LINK_POLL_MS;
        for p in 0..self.s.ports.len() {
            let up = (self.s.link)(p);
            if up == self.links[p] {
                continue;
            }
            self.links[p] = up;
            if let Ok(mut b) = self.board.lock() {
                b.log.push(format!(
                    "vrrp: port {} link {}",
                    self.s.ports[p].name,
                    if up { "up" } else { "down" }
                ));
            }
            self.on_all(now, |i| {
                if i.port == p {
                    i.machine.link(now, up)
                } else {
                    Vec::new()
                }
            });
        }
    }

    fn frame(&mut self, now: u64, f: &Frame) {
        let port = f.port as usize;
        let heard = advert::parse(f.data());
        let mine = |i: &Instance| i.port == port;
        let h = match heard {
            Ok(h) => h,
            Err(why) => {
                for i in self.list.iter_mut().filter(|i| mine(i)) {
                    i.reject(why);
                }
                return;
            }
        };
        // Our own adverts, looped back by a switch, are not a peer's.
        if self
            .s
            .ports
            .get(port)
            .is_some_and(|p| p.addrs.iter().any(|&(a, _)| a == h.src))
        {
            return;
        }
        let Some(i) = self
            .list
            .iter_mut()
            .find(|i| i.port == port && i.cfg.vrid == h.vrid)
        else {
            for i in self.list.iter_mut().filter(|i| mine(i)) {
                i.reject("unknown_vrid");
            }
            return;
        };
        if !i.cfg.unicast_peers.is_empty() && !i.cfg.unicast_peers.contains(&h.src) {
            return i.reject("unknown_peer");
        }
        if let Err(why) = i.check(&h) {
            return i.reject(why);
        }
        let mut want = i.cfg.addresses.clone();
        let mut got = h.addresses.clone();
        want.sort();
        got.sort();
        if want != got {
            i.reject("address_mismatch");
        }
        i.stats.adverts_received += 1;
        if h.priority == 0 {
            i.stats.priority_zero_received += 1;
        }
        let a = i.machine.advert(now, h.src, h.priority, h.interval_cs);
        let mut out = Vec::new();
        let mut moved = Vec::new();
        i.act(now, a, &self.s.ports, &mut out, &mut moved);
        self.send(out);
        self.moved(moved);
    }

    fn timers(&mut self, now: u64) {
        self.on_all(now, |i| i.machine.tick(now));
    }

    fn reconfigure(&mut self, now: u64, cfg: Vec<conf::Vrrp>) {
        let mut old: Vec<Instance> = std::mem::take(&mut self.list);
        let mut out = Vec::new();
        let mut moved = Vec::new();
        let mut list = Vec::new();
        for (idx, c) in cfg.into_iter().enumerate() {
            let Some(p) = self.s.ports.iter().position(|p| p.name == c.port) else {
                continue;
            };
            let kept = old.iter().position(|i| {
                i.cfg.name == c.name
                    && i.port == p
                    && i.cfg.vrid == c.vrid
                    && i.cfg.version == c.version
            });
            match kept {
                Some(k) => {
                    let mut i = old.remove(k);
                    i.machine
                        .reconfigure(instance::params(&c, &self.s.ports[p]));
                    i.cfg = c;
                    i.index = idx as u8;
                    list.push(i);
                }
                None => {
                    let mut i = Instance::new(c, idx as u8, p, &self.s.ports[p]);
                    i.machine.hold_preempt(self.hold);
                    let a = i.machine.start(now);
                    i.act(now, a, &self.s.ports, &mut out, &mut moved);
                    list.push(i);
                }
            }
        }
        // Instances that went away stop as they would at shutdown.
        for mut i in old {
            let a = i.machine.shutdown(now);
            i.act(now, a, &self.s.ports, &mut out, &mut moved);
        }
        self.list = list;
        self.send(out);
        // The word follows the new indices even without a move.
        self.set_gate();
        self.moved(moved);
    }

    fn run(mut self, cmds: Receiver<Cmd>) {
        let t0 = (self.s.clock)();
        // Listed in INIT meanwhile.
        self.publish(t0);
        while !(self.s.ready)() && (self.s.clock)() < t0 + READY_MAX_MS {
            if let Ok(Cmd::Stop) = cmds.recv_timeout(Duration::from_millis(5)) {
                return;
            }
        }
        // Frames that came up while the instances were not running are
        // stale by now.
        while self.s.control.rx.try_recv().is_ok() {}
        let now = (self.s.clock)();
        self.start(now);
        self.publish(now);
        loop {
            let now = (self.s.clock)();
            loop {
                match cmds.try_recv() {
                    Ok(c) => {
                        if self.command(now, c) {
                            return self.shutdown(now);
                        }
                    }
                    Err(crossbeam_channel::TryRecvError::Disconnected) => {
                        return self.shutdown(now);
                    }
                    Err(crossbeam_channel::TryRecvError::Empty) => break,
                }
            }
            self.poll_links(now);
            self.timers(now);
            let mut out = Vec::new();
            for i in &mut self.list {
                i.garp_due(now, &self.s.ports, &mut out);
            }
            self.send(out);
            self.notify.reap();
            self.publish(now);
            let next = self
                .list
                .iter()
                .filter_map(Instance::deadline)
                .chain([self.next_link_poll, now + MAX_SLEEP_MS])
                .min()
                .unwrap_or(now + MAX_SLEEP_MS);
            let wait = Duration::from_millis(next.saturating_sub(now).clamp(1, MAX_SLEEP_MS));
            // Woken by a frame or a command, whichever comes first: a stop
            // (SIGTERM) sends the priority-0 advert at once.
            crossbeam_channel::select! {
                recv(self.s.control.rx) -> f => match f {
                    Ok(f) => {
                        let now = (self.s.clock)();
                        self.frame(now, &f);
                        while let Ok(f) = self.s.control.rx.try_recv() {
                            self.frame(now, &f);
                        }
                    }
                    Err(_) => return self.shutdown(now),
                },
                recv(cmds) -> c => match c {
                    Ok(c) => {
                        let now = (self.s.clock)();
                        if self.command(now, c) {
                            return self.shutdown(now);
                        }
                    }
                    Err(_) => return self.shutdown(now),
                },
                default(wait) => {}
            }
        }
    }

    /// A command from the control thread; `true`: stop.
    fn command(&mut self, now: u64, c: Cmd) -> bool {
        match c {
            Cmd::Reconfigure(c) => self.reconfigure(now, c),
            Cmd::HoldPreempt(h) => {
                self.hold = h;
                for i in &mut self.list {
                    i.machine.hold_preempt(h);
                }
            }
            Cmd::Stop => return true,
        }
        false
    }

    fn shutdown(&mut self, now: u64) {
        self.on_all(now, |i| i.machine.shutdown(now));
        self.publish(now);
    }
}
