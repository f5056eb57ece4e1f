//! The checker thread: runs every real server's checks on schedule and
//! posts each verdict to the control loop, which never waits for one.
//!
//! One thread drives all probes, none of which blocks (see
//! [`super::probe`]); it looks at the ones in flight every
//! [`POLL_EVERY`] and sleeps on its command channel otherwise. At most
//! [`MAX_IN_FLIGHT`] checks run at once; when more are due the most
//! overdue go first, so a crowd of silent servers slows the checks down
//! rather than piling up sockets.

use super::probe::{Probe, Target, Verdict};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::collections::HashMap;
use std::process::Child;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

/// Checks running at once.
pub const MAX_IN_FLIGHT: usize = 512;

/// How often running checks are looked at.
pub const POLL_EVERY: Duration = Duration::from_millis(5);

/// Longest sleep with nothing in flight: bounds how late a new schedule
/// or a stop is noticed (both also wake the thread at once).
const IDLE_WAKE: Duration = Duration::from_secs(1);

/// A verdict for the control loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The id the target was given in [`Checker::set`].
    pub id: u64,
    pub verdict: Verdict,
    /// When the check was decided (wall clock, for listings).
    pub at: SystemTime,
}

enum Msg {
    Set(Vec<(u64, Target)>),
}

/// The handle the control loop holds.
pub struct Checker {
    tx: Option<Sender<Msg>>,
    results: Receiver<Outcome>,
    thread: Option<JoinHandle<()>>,
}

impl Checker {
    pub fn spawn() -> std::io::Result<Checker> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let (out_tx, results) = crossbeam_channel::unbounded();
        let thread = thread::Builder::new()
            .name("ripvs-health".into())
            .spawn(move || Runner::new(rx, out_tx).run())?;
        Ok(Checker {
            tx: Some(tx),
            results,
            thread: Some(thread),
        })
    }

    /// Replaces the set of checked targets. A target whose id and settings
    /// are unchanged keeps its schedule; a new one is first checked after
    /// its `delay`. Results of dropped ids may still arrive once.
    pub fn set(&self, targets: Vec<(u64, Target)>) {
        if let Some(tx) = &self.tx {
            // The thread only goes away with the checker.
            let _ = tx.send(Msg::Set(targets));
        }
    }

    /// Verdicts that have arrived, without waiting.
    pub fn results(&self) -> impl Iterator<Item = Outcome> + '_ {
        self.results.try_iter()
    }

    /// Waits up to `timeout` for one verdict (tests).
    pub fn wait(&self, timeout: Duration) -> Option<Outcome> {
        self.results.recv_timeout(timeout).ok()
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        // Closing the channel stops the thread at its next wake-up.
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Scheduled {
    target: Target,
    due: Instant,
    running: bool,
}

struct Running {
    id: u64,
    probe: Probe,
    deadline: Instant,
}

struct Runner {
    rx: Receiver<Msg>,
    out: Sender<Outcome>,
    targets: HashMap<u64, Scheduled>,
    running: Vec<Running>,
    /// Killed commands not yet reaped.
    zombies: Vec<Child>,
}

impl Runner {
    fn new(rx: Receiver<Msg>, out: Sender<Outcome>) -> Runner {
        Runner {
            rx,
            out,
            targets: HashMap::new(),
            running: Vec::new(),
            zombies: Vec::new(),
        }
    }

    fn run(mut self) {
        loop {
            let now = Instant::now();
            self.start_due(now);
            self.poll_running(Instant::now());
            self.zombies
                .retain_mut(|c| matches!(c.try_wait(), Ok(None)));
            let next_due = self
                .targets
                .values()
                .filter(|s| !s.running)
                .map(|s| s.due)
                .min();
            let now = Instant::now();
            let mut sleep = next_due.map_or(IDLE_WAKE, |d| d.saturating_duration_since(now));
            if !self.running.is_empty() || !self.zombies.is_empty() {
                sleep = sleep.min(POLL_EVERY);
            }
            match self.rx.recv_timeout(sleep.min(IDLE_WAKE)) {
                Ok(Msg::Set(list)) => self.set(list, Instant::now()),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        for r in self.running.drain(..) {
            self.zombies.extend(r.probe.expire().1);
        }
        for mut c in self.zombies.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn set(&mut self, list: Vec<(u64, Target)>, now: Instant) {
        let mut next = HashMap::with_capacity(list.len());
        for (id, target) in list {
            let s = match self.targets.remove(&id) {
                Some(s) if s.target == target => s,
                Some(s) => Scheduled {
                    due: s.due.min(now + target.health.interval),
                    target,
                    running: s.running,
                },
                None => Scheduled {
                    due: now + target.health.delay,
                    target,
                    running: false,
                },
            };
            next.insert(id, s);
        }
        self.targets = next;
        let (keep, dropped): (Vec<Running>, Vec<Running>) = std::mem::take(&mut self.running)
            .into_iter()
            .partition(|r| self.targets.contains_key(&r.id));
        self.running = keep;
        for r in dropped {
            self.zombies.extend(r.probe.expire().1);
        }
    }

    fn start_due(&mut self, now: Instant) {
        let room = MAX_IN_FLIGHT.saturating_sub(self.running.len());
        if room == 0 {
            return;
        }
        let mut due: Vec<(Instant, u64)> = self
            .targets
            .iter()
            .filter(|(_, s)| !s.running && s.due <= now)
            .map(|(&id, s)| (s.due, id))
            .collect();
        due.sort_unstable();
        for (_, id) in due.into_iter().take(room) {
            let Some(s) = self.targets.get_mut(&id) else {
                continue;
            };
            let interval = s.target.health.interval;
            // Keep the cadence, but a check that fell behind does not
            // cause a burst of catch-up checks.
            s.due = (s.due + interval).max(now);
            match Probe::start(&s.target) {
                Ok(probe) => {
                    s.running = true;
                    self.running.push(Running {
                        id,
                        deadline: now + s.target.health.timeout,
                        probe,
                    });
                }
                Err(reason) => self.post(id, Err(reason)),
            }
        }
    }

    fn poll_running(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.running.len() {
            let r = &mut self.running[i];
            let verdict = match r.probe.poll() {
                Some(v) => Some(v),
                None if now >= r.deadline => {
                    let r = self.running.swap_remove(i);
                    let (why, child) = r.probe.expire();
                    self.zombies.extend(child);
                    self.finish(r.id, Err(why));
                    continue;
                }
                None => None,
            };
            match verdict {
                Some(v) => {
                    let r = self.running.swap_remove(i);
                    self.finish(r.id, v);
                }
                None => i += 1,
            }
        }
    }

    fn finish(&mut self, id: u64, verdict: Verdict) {
        if let Some(s) = self.targets.get_mut(&id) {
            s.running = false;
        }
        self.post(id, verdict);
    }

    fn post(&self, id: u64, verdict: Verdict) {
        // The receiver goes away only with the checker, which stops us.
        let _ = self.out.send(Outcome {
            id,
            verdict,
            at: SystemTime::now(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conf::{Check, Health};
    use std::net::{IpAddr, Ipv4Addr, TcpListener};

    fn tcp(port: u16, delay: Duration) -> Target {
        Target {
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
            health: Health {
                check: Check::Tcp,
                interval: Duration::from_millis(50),
                timeout: Duration::from_millis(50),
                delay,
                retries: 1,
                successes: 1,
                initial_up: true,
                port: None,
                source: None,
                interface: None,
            },
        }
    }

    /// The next `n` verdicts.
    fn next(c: &Checker, n: usize) -> Vec<(u64, Verdict)> {
        (0..n)
            .map(|_| {
                let o = c.wait(Duration::from_secs(10)).expect("a verdict");
                (o.id, o.verdict)
            })
            .collect()
    }

    #[test]
    fn checks_repeat_per_target_wait_for_their_delay_and_follow_new_settings() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let up = l.local_addr().unwrap().port();
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = Checker::spawn().unwrap();
        c.set(vec![
            (1, tcp(up, Duration::ZERO)),
            (2, tcp(closed, Duration::ZERO)),
            (3, tcp(up, Duration::from_secs(3600))),
        ]);
        let got = next(&c, 10);
        // Both are checked again and again; the delayed one not yet.
        for id in [1, 2] {
            assert!(got.iter().filter(|g| g.0 == id).count() >= 2, "{got:?}");
        }
        assert!(got.iter().all(|g| g.0 != 3), "{got:?}");
        assert!(got.iter().all(|g| (g.0 == 1) == g.1.is_ok()), "{got:?}");
        // New settings for id 2: the next of its verdicts that follow them
        // pass. Id 1 is dropped: only verdicts posted before the new set
        // arrived (one per 50 ms interval, so a couple at most) still come.
        c.set(vec![(2, tcp(up, Duration::ZERO))]);
        let mut passed = false;
        let mut from_one = 0;
        for _ in 0..50 {
            let (id, v) = next(&c, 1).remove(0);
            from_one += usize::from(id == 1);
            if id == 2 && v.is_ok() {
                passed = true;
                break;
            }
        }
        assert!(passed);
        assert!(from_one <= 2, "{from_one} verdicts for a dropped target");
        drop(l);
    }
}
