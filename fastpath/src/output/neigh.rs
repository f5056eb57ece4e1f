//! The neighbour (ARP) table of one worker, after Linux's neighbour state
//! machine reduced to what a director needs.
//!
//! States: `Incomplete` (resolving: broadcast requests, packets queued) →
//! `Reachable` (confirmed by a reply, for `REACHABLE_MS`) → `Stale` (still
//! used, not confirmed) → `Probe` on the first use while stale (unicast
//! requests while the old MAC keeps being used) → back to `Reachable`, or
//! deleted after `MAX_PROBES` unanswered requests. `Permanent` entries come
//! from the config and are never changed by what arrives on the wire.
//!
//! Each worker owns its table (no locks); workers share what they learn by
//! handing copies of ARP frames to each other. Memory is fixed at start-up:
//! the map is created with twice the entry limit so inserts up to the limit
//! never grow it (hashbrown then rehashes in place), and the per-entry
//! queue is an inline array.

use crate::wire::MacAddr;
use arrayvec::ArrayVec;
use core::net::Ipv4Addr;
use hashbrown::HashMap;

/// Packets held per unresolved neighbour; the oldest is dropped beyond it.
pub const QUEUE_LEN: usize = 8;
pub const REACHABLE_MS: u64 = 30_000;
pub const PROBE_INTERVAL_MS: u64 = 1_000;
pub const MAX_PROBES: u8 = 3;
/// Unused stale entries are forgotten after this long.
pub const STALE_GC_MS: u64 = 60_000;

/// A permanent entry as the control plane configures it.
#[derive(Debug, Clone, PartialEq)]
pub struct StaticNeighbour {
    pub port: usize,
    pub ip: Ipv4Addr,
    pub mac: MacAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Incomplete,
    Reachable,
    Stale,
    Probe,
    Permanent,
}

#[derive(Debug)]
struct Entry<B> {
    mac: MacAddr,
    state: State,
    /// When the current state's timer fires (probe due, reachable ends,
    /// stale entry collected).
    deadline: u64,
    probes: u8,
    queue: ArrayVec<B, QUEUE_LEN>,
}

/// What `resolve` did with a packet.
#[derive(Debug)]
pub enum Resolve<B> {
    /// Send it to this MAC now.
    Ready(MacAddr, B),
    /// Held until resolution. `request`: a new entry was created, send the
    /// first broadcast request now. `evicted`: the oldest held packet, to
    /// drop and count.
    Queued { request: bool, evicted: Option<B> },
    /// No room for a new entry: drop and count.
    TableFull(B),
}

/// A timer action for the caller to carry out.
#[derive(Debug)]
pub enum Timer<B> {
    /// Send an ARP request for `ip` out of `port`; `unicast` to confirm a
    /// known MAC, else broadcast.
    Request {
        port: usize,
        ip: Ipv4Addr,
        unicast: Option<MacAddr>,
    },
    /// Resolution failed: this held packet is dropped.
    Failed(B),
}

fn key(port: usize, ip: Ipv4Addr) -> u64 {
    ((port as u64) << 32) | ip.to_bits() as u64
}

fn unkey(k: u64) -> (usize, Ipv4Addr) {
    ((k >> 32) as usize, Ipv4Addr::from_bits(k as u32))
}

#[derive(Debug)]
pub struct NeighTable<B> {
    map: HashMap<u64, Entry<B>>,
    limit: usize,
    /// Bumped by every change to any entry's MAC or state, so a cache of
    /// resolved next hops (the host's) knows when to look again.
    gen: u32,
}

impl<B> NeighTable<B> {
    pub fn new(limit: usize) -> Self {
        NeighTable {
            map: HashMap::with_capacity(limit * 2),
            limit,
            gen: 0,
        }
    }

    /// Changes whenever any entry's MAC or state may have changed.
    #[inline]
    pub fn generation(&self) -> u32 {
        self.gen
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Installs a static entry (config); it wins over anything learned.
    pub fn add_permanent(&mut self, port: usize, ip: Ipv4Addr, mac: MacAddr) {
        let e = Entry {
            mac,
            state: State::Permanent,
            deadline: u64::MAX,
            probes: 0,
            queue: ArrayVec::new(),
        };
        self.map.insert(key(port, ip), e);
        self.gen = self.gen.wrapping_add(1);
    }

    pub fn state(&self, port: usize, ip: Ipv4Addr) -> Option<(State, MacAddr)> {
        self.map.get(&key(port, ip)).map(|e| (e.state, e.mac))
    }

    /// Finds the MAC for `ip` on `port`, or holds `pkt` until it is known.
    #[inline]
    pub fn resolve(&mut self, port: usize, ip: Ipv4Addr, now: u64, pkt: B) -> Resolve<B> {
        let k = key(port, ip);
        if let Some(e) = self.map.get_mut(&k) {
            return match e.state {
                State::Reachable | State::Probe | State::Permanent => Resolve::Ready(e.mac, pkt),
                State::Stale => {
                    // First use while unconfirmed: keep sending, probe now.
                    self.gen = self.gen.wrapping_add(1);
                    e.state = State::Probe;
                    e.probes = 0;
                    e.deadline = now;
                    Resolve::Ready(e.mac, pkt)
                }
                State::Incomplete => {
                    let evicted = if e.queue.is_full() {
                        Some(e.queue.remove(0))
                    } else {
                        None
                    };
                    e.queue.push(pkt);
                    Resolve::Queued {
                        request: false,
                        evicted,
                    }
                }
            };
        }
        if self.map.len() >= self.limit {
            return Resolve::TableFull(pkt);
        }
        let mut queue = ArrayVec::new();
        queue.push(pkt);
        let e = Entry {
            mac: MacAddr::ZERO,
            state: State::Incomplete,
            deadline: now + PROBE_INTERVAL_MS,
            probes: 1,
            queue,
        };
        self.map.insert(k, e);
        Resolve::Queued {
            request: true,
            evicted: None,
        }
    }

    /// Records that `ip` on `port` is at `mac`. `confirmed`: an ARP reply
    /// (proof of two-way reachability) rather than a request we overheard.
    /// `create`: make an entry if there is none (requests aimed at us).
    /// Returns the packets that were waiting for this entry, to send to
    /// `mac`; `None` if nothing changed that the caller must act on.
    pub fn learn(
        &mut self,
        port: usize,
        ip: Ipv4Addr,
        mac: MacAddr,
        now: u64,
        confirmed: bool,
        create: bool,
    ) -> Option<ArrayVec<B, QUEUE_LEN>> {
        let k = key(port, ip);
        let (state, deadline) = if confirmed {
            (State::Reachable, now + REACHABLE_MS)
        } else {
            (State::Stale, now + STALE_GC_MS)
        };
        let room = self.map.len() < self.limit;
        self.gen = self.gen.wrapping_add(1);
        match self.map.get_mut(&k) {
            Some(e) if e.state == State::Permanent => None,
            Some(e) => {
                // An unconfirmed sighting of the same MAC does not demote a
                // confirmed entry; a different MAC always replaces it.
                if confirmed || e.mac != mac || e.state == State::Incomplete {
                    e.state = state;
                    e.deadline = deadline;
                    e.probes = 0;
                }
                e.mac = mac;
                Some(core::mem::take(&mut e.queue))
            }
            None if create && room => {
                let e = Entry {
                    mac,
                    state,
                    deadline,
                    probes: 0,
                    queue: ArrayVec::new(),
                };
                self.map.insert(k, e);
                Some(ArrayVec::new())
            }
            None => None,
        }
    }

    /// Runs due timers; O(table) but called every few milliseconds on a
    /// table of at most `limit` entries, never per packet.
    pub fn tick(&mut self, now: u64, mut act: impl FnMut(Timer<B>)) {
        let gen = &mut self.gen;
        self.map.retain(|&k, e| {
            if now < e.deadline {
                return true;
            }
            if e.state != State::Permanent {
                *gen = gen.wrapping_add(1);
            }
            let (port, ip) = unkey(k);
            match e.state {
                State::Permanent => true,
                State::Reachable => {
                    e.state = State::Stale;
                    e.deadline = now + STALE_GC_MS;
                    true
                }
                State::Stale => false,
                State::Incomplete | State::Probe if e.probes < MAX_PROBES => {
                    e.probes += 1;
                    e.deadline = now + PROBE_INTERVAL_MS;
                    let unicast = (e.state == State::Probe).then_some(e.mac);
                    act(Timer::Request { port, ip, unicast });
                    true
                }
                State::Incomplete | State::Probe => {
                    for p in e.queue.drain(..) {
                        act(Timer::Failed(p));
                    }
                    false
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 9]);
    const MAC2: MacAddr = MacAddr([2, 0, 0, 0, 0, 10]);

    fn ip(n: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, n)
    }

    fn ticks(t: &mut NeighTable<u32>, now: u64) -> Vec<String> {
        let mut out = Vec::new();
        t.tick(now, |a| {
            out.push(match a {
                Timer::Request { port, ip, unicast } => format!("req {port} {ip} {unicast:?}"),
                Timer::Failed(p) => format!("fail {p}"),
            })
        });
        out
    }

    #[test]
    fn resolve_queues_then_reply_releases_in_order() {
        let mut t = NeighTable::new(4);
        assert!(matches!(
            t.resolve(0, ip(2), 0, 1u32),
            Resolve::Queued {
                request: true,
                evicted: None
            }
        ));
        assert!(matches!(
            t.resolve(0, ip(2), 0, 2u32),
            Resolve::Queued {
                request: false,
                evicted: None
            }
        ));
        assert_eq!(t.state(0, ip(2)).unwrap().0, State::Incomplete);
        let released = t.learn(0, ip(2), MAC, 5, true, false).unwrap();
        assert_eq!(released.as_slice(), &[1, 2]);
        assert_eq!(t.state(0, ip(2)), Some((State::Reachable, MAC)));
        assert!(matches!(t.resolve(0, ip(2), 6, 3u32), Resolve::Ready(m, 3) if m == MAC));
        // Same IP on another port is a different neighbour.
        assert!(matches!(
            t.resolve(1, ip(2), 6, 4u32),
            Resolve::Queued { request: true, .. }
        ));
    }

    #[test]
    fn queue_is_bounded_dropping_the_oldest() {
        let mut t = NeighTable::new(4);
        for i in 0..QUEUE_LEN as u32 {
            t.resolve(0, ip(2), 0, i);
        }
        match t.resolve(0, ip(2), 0, 99) {
            Resolve::Queued {
                request: false,
                evicted: Some(0),
            } => {}
            other => panic!("{other:?}"),
        }
        let released = t.learn(0, ip(2), MAC, 1, true, false).unwrap();
        assert_eq!(released.first(), Some(&1));
        assert_eq!(released.last(), Some(&99));
    }

    #[test]
    fn bounded_retries_then_failure_drops_queue() {
        let mut t = NeighTable::new(4);
        t.resolve(0, ip(2), 0, 7u32);
        assert!(ticks(&mut t, 999).is_empty());
        assert_eq!(ticks(&mut t, 1000), vec!["req 0 10.0.0.2 None"]);
        assert_eq!(ticks(&mut t, 2000), vec!["req 0 10.0.0.2 None"]);
        assert_eq!(ticks(&mut t, 3000), vec!["fail 7"]);
        assert!(t.is_empty());
    }

    #[test]
    fn reachable_goes_stale_then_probes_on_use() {
        let mut t = NeighTable::new(4);
        t.resolve(0, ip(2), 0, 1u32);
        t.learn(0, ip(2), MAC, 0, true, false);
        assert!(ticks(&mut t, REACHABLE_MS - 1).is_empty());
        assert!(ticks(&mut t, REACHABLE_MS).is_empty());
        assert_eq!(t.state(0, ip(2)).unwrap().0, State::Stale);
        // Use while stale: still sent to the old MAC, unicast probe follows.
        assert!(
            matches!(t.resolve(0, ip(2), REACHABLE_MS + 10, 2u32), Resolve::Ready(m, 2) if m == MAC)
        );
        assert_eq!(
            ticks(&mut t, REACHABLE_MS + 10),
            vec![format!("req 0 10.0.0.2 Some({MAC})")]
        );
        // A reply confirms it again.
        t.learn(0, ip(2), MAC, REACHABLE_MS + 20, true, false);
        assert_eq!(t.state(0, ip(2)).unwrap().0, State::Reachable);
    }

    #[test]
    fn unanswered_probes_delete_and_idle_stale_is_collected() {
        let mut t = NeighTable::new(4);
        t.learn(0, ip(2), MAC, 0, false, true);
        assert_eq!(t.state(0, ip(2)).unwrap().0, State::Stale);
        t.resolve(0, ip(2), 1, 1u32);
        assert_eq!(ticks(&mut t, 1).len(), 1);
        assert_eq!(ticks(&mut t, 1001).len(), 1);
        assert_eq!(ticks(&mut t, 2001).len(), 1);
        assert!(ticks(&mut t, 3001).is_empty());
        assert!(t.is_empty());
        t.learn(0, ip(3), MAC, 0, false, true);
        ticks(&mut t, STALE_GC_MS);
        assert!(t.is_empty());
    }

    #[test]
    fn permanent_wins_and_learning_needs_create() {
        let mut t = NeighTable::new(2);
        t.add_permanent(0, ip(1), MAC);
        assert!(t.learn(0, ip(1), MAC2, 0, true, true).is_none());
        assert_eq!(t.state(0, ip(1)), Some((State::Permanent, MAC)));
        ticks(&mut t, u64::MAX - 1);
        assert_eq!(t.state(0, ip(1)), Some((State::Permanent, MAC)));
        // A reply nobody asked for creates nothing.
        assert!(t.learn(0, ip(5), MAC, 0, true, false).is_none());
        assert!(t.state(0, ip(5)).is_none());
        // Unconfirmed sighting of the same MAC keeps a reachable entry reachable.
        t.learn(0, ip(6), MAC, 0, true, true);
        t.learn(0, ip(6), MAC, 1, false, true);
        assert_eq!(t.state(0, ip(6)).unwrap().0, State::Reachable);
        // A changed MAC is taken even unconfirmed.
        t.learn(0, ip(6), MAC2, 2, false, true);
        assert_eq!(t.state(0, ip(6)), Some((State::Stale, MAC2)));
        // The limit holds: two entries, no third.
        assert!(matches!(
            t.resolve(0, ip(7), 0, 1u32),
            Resolve::TableFull(1)
        ));
        assert!(t.learn(0, ip(8), MAC, 0, false, true).is_none());
    }
}
