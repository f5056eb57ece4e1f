//! Who the control socket serves, and how much request memory it holds.
//!
//! Two ways a few hostile or broken clients used to shut the operator out
//! or bloat the daemon, and what stops each:
//!
//! * **Slots.** Clients are served by one thread each, at most
//!   [`MAX_CLIENTS`] at once. When all are taken, a new client evicts the
//!   one that has waited longest for its own next byte (idle, or
//!   trickling a request); only clients whose request is being answered
//!   are never evicted. So idle or slowly reconnecting clients cannot keep
//!   `ripvsadm` out: it is always the newest, and it only needs its slot
//!   for the moment its request takes to arrive.
//! * **Request memory.** A frame may announce up to
//!   [`ctrl_api::MAX_MESSAGE`] bytes (a large restore needs that), but
//!   every frame above [`SMALL_FRAME`] first reserves its size from one
//!   [`Budget`] of [`REQUEST_BUDGET`] bytes, held until its answer is
//!   sent, and memory is taken only as bytes arrive. Small frames (every
//!   request but a large `Apply`) never wait for it, so a large upload
//!   cannot hold up `ripvsadm -L`.

use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Clients served at once. Each costs a thread.
pub const MAX_CLIENTS: usize = 64;

/// Frames up to this size are read without a reservation.
pub const SMALL_FRAME: usize = 64 << 10;

/// Bytes of large frames in flight at once, from their announcement until
/// their answer is sent: one maximum-size request.
pub const REQUEST_BUDGET: usize = ctrl_api::MAX_MESSAGE;

/// How a waiting client checks whether it has been evicted.
const EVICTION_POLL: Duration = Duration::from_millis(50);

struct Slot {
    id: u64,
    /// A handle on the client's socket, to shut it down on eviction.
    stream: UnixStream,
    evicted: Arc<AtomicBool>,
    /// Its request is with the control loop: not evictable.
    busy: bool,
    /// Since when it has been waiting for its client.
    since: Instant,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    slots: Vec<Slot>,
}

/// The clients being served.
#[derive(Default)]
pub struct Slots {
    table: Mutex<Table>,
}

/// A client's hold on its slot; dropping it frees the slot.
pub struct Seat {
    slots: Arc<Slots>,
    id: u64,
    evicted: Arc<AtomicBool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing that holds these locks panics half-way through a change.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Slots {
    /// Seats a new client, evicting the longest-waiting one if every slot
    /// is taken. None: every client is being answered (it does not last).
    pub fn admit(self: &Arc<Self>, stream: &UnixStream) -> Option<Seat> {
        let handle = stream.try_clone().ok()?;
        let mut t = lock(&self.table);
        if t.slots.len() >= MAX_CLIENTS {
            let oldest = t
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.busy)
                .min_by_key(|(_, s)| s.since)
                .map(|(i, _)| i)?;
            let gone = t.slots.swap_remove(oldest);
            gone.evicted.store(true, Ordering::SeqCst);
            let _ = gone.stream.shutdown(std::net::Shutdown::Both);
            log::debug!(
                "control socket: all {MAX_CLIENTS} slots taken, closed the longest idle client"
            );
        }
        let id = t.next_id;
        t.next_id += 1;
        let evicted = Arc::new(AtomicBool::new(false));
        t.slots.push(Slot {
            id,
            stream: handle,
            evicted: evicted.clone(),
            busy: false,
            since: Instant::now(),
        });
        Some(Seat {
            slots: self.clone(),
            id,
            evicted,
        })
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.table).slots.len()
    }
}

impl Seat {
    /// Marks the client busy (its request goes to the control loop) or
    /// waiting again. False: it was evicted, and must go.
    pub fn set_busy(&self, busy: bool) -> bool {
        let mut t = lock(&self.slots.table);
        match t.slots.iter_mut().find(|s| s.id == self.id) {
            Some(s) => {
                s.busy = busy;
                s.since = Instant::now();
                true
            }
            None => false,
        }
    }

    pub fn evicted(&self) -> bool {
        self.evicted.load(Ordering::SeqCst)
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        lock(&self.slots.table).slots.retain(|s| s.id != self.id);
    }
}

/// Bytes of large requests in flight.
pub struct Budget {
    cap: usize,
    used: Mutex<usize>,
    freed: Condvar,
}

/// A reservation of `n` bytes; dropping it returns them.
pub struct Reserved<'a> {
    budget: &'a Budget,
    n: usize,
}

impl Budget {
    pub fn new(cap: usize) -> Budget {
        Budget {
            cap,
            used: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Reserves `n` bytes (free for a small frame), waiting until `until`
    /// or until `seat` is evicted. Err: the bytes in flight when it gave
    /// up.
    pub fn reserve(&self, n: usize, until: Instant, seat: &Seat) -> Result<Reserved<'_>, usize> {
        if n <= SMALL_FRAME {
            return Ok(Reserved { budget: self, n: 0 });
        }
        let mut used = lock(&self.used);
        while *used + n > self.cap {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || seat.evicted() {
                return Err(*used);
            }
            used = self
                .freed
                .wait_timeout(used, left.min(EVICTION_POLL))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *used += n;
        Ok(Reserved { budget: self, n })
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    #[cfg(test)]
    fn in_flight(&self) -> usize {
        *lock(&self.used)
    }
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        if self.n > 0 {
            *lock(&self.budget.used) -= self.n;
            self.budget.freed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (UnixStream, UnixStream) {
        UnixStream::pair().unwrap()
    }

    #[test]
    fn a_full_house_evicts_the_longest_waiting_idle_client() {
        let slots = Arc::new(Slots::default());
        let mut seats = Vec::new();
        let mut peers = Vec::new();
        for _ in 0..MAX_CLIENTS {
            let (a, b) = pair();
            seats.push(slots.admit(&a).unwrap());
            peers.push((a, b));
            std::thread::sleep(Duration::from_millis(1));
        }
        // The first is busy; the second has waited longest of the rest.
        assert!(seats[0].set_busy(true));
        let (c, _c_peer) = pair();
        let newest = slots.admit(&c).unwrap();
        assert_eq!(slots.len(), MAX_CLIENTS);
        assert!(!seats[0].evicted() && seats[1].evicted() && !seats[2].evicted());
        assert!(!seats[1].set_busy(true), "an evicted client learns it is");
        // Its socket is shut: the peer reads end of file.
        let mut buf = [0u8; 1];
        use std::io::Read;
        assert_eq!((&peers[1].1).read(&mut buf).unwrap(), 0);
        // All busy: a new client is refused.
        for s in seats.iter().skip(2).chain([&newest]) {
            assert!(s.set_busy(true));
        }
        drop(seats.remove(1));
        let (d, _d_peer) = pair();
        assert!(slots.admit(&d).is_none());
        drop(newest);
        assert!(slots.admit(&d).is_some(), "a freed slot is taken");
    }

    #[test]
    fn the_budget_holds_one_large_request_and_lets_small_ones_by() {
        let slots = Arc::new(Slots::default());
        let (a, _b) = pair();
        let seat = slots.admit(&a).unwrap();
        let budget = Budget::new(1000 << 10);
        let now = Instant::now;
        let big = budget.reserve(600 << 10, now(), &seat).unwrap();
        assert_eq!(budget.in_flight(), 600 << 10);
        let small = budget.reserve(SMALL_FRAME, now(), &seat).unwrap();
        assert_eq!(
            budget.in_flight(),
            600 << 10,
            "small frames reserve nothing"
        );
        let t0 = now();
        let refused = budget.reserve(600 << 10, t0 + Duration::from_millis(100), &seat);
        assert_eq!(refused.err(), Some(600 << 10));
        assert!(t0.elapsed() >= Duration::from_millis(100));
        drop((big, small));
        assert_eq!(budget.in_flight(), 0);
        let again = budget.reserve(1000 << 10, now(), &seat).unwrap();
        assert_eq!(budget.in_flight(), 1000 << 10);
        drop(again);
        assert_eq!(budget.in_flight(), 0);
    }
}
