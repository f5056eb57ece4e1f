//! Commands in, facts out: how the control thread reaches a worker
//! (design section 4).
//!
//! Each worker has a bounded mailbox it empties at the top of every poll
//! with `try_recv` (one atomic load when empty), and all workers answer on
//! one bounded reply channel with `try_send`. Nothing in a message is
//! allocated or freed by the worker: the control thread builds snapshots
//! and scheduler sets, preallocates the pages of connection listings, and
//! frees whatever a worker retires. A snapshot goes to each worker's
//! mailbox rather than through one shared atomic pointer because each
//! worker also needs its own scheduler objects (their state is per core),
//! and because the mailbox already orders it with the other commands; the
//! old snapshot comes back as a reply, which plays the part of epoch
//! reclamation: the control thread frees it once the worker has let go.

use crate::conn::{self, Conn};
use crate::ipvs::Settings;
use crate::proto::Timeouts;
use crate::sched::Scheduler;
use crate::service::ServiceTable;
use core::net::Ipv4Addr;
use crossbeam_channel::{bounded, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Messages waiting per worker; the control thread sends a handful at a
/// time.
const MAILBOX_LEN: usize = 64;

/// A service snapshot and the IPVS settings that go with it.
#[derive(Clone)]
pub struct Snapshot {
    pub table: Arc<ServiceTable>,
    /// Every address the director answers for as a VIP, sorted: the
    /// services' and the VRRP instances' (`local::gate::gated`).
    pub vips: Arc<[Ipv4Addr]>,
    /// Each VIP's VRRP instance, in `vips` order (empty without VRRP).
    pub gate: Arc<[u8]>,
    pub timeouts: Timeouts,
    pub settings: Settings,
}

pub enum Mail {
    /// Switch to `snap`, with fresh schedulers for its services (in table
    /// order) for those whose state is not carried over.
    Snapshot {
        snap: Snapshot,
        scheds: Vec<Box<dyn Scheduler>>,
    },
    /// Fill `rows` (empty, with the page size as capacity) with the
    /// entries of the next `rows.capacity()` slots from `cursor`.
    Conns { cursor: u32, rows: Vec<ConnRow> },
}

pub enum Reply {
    /// What a worker stopped using, to be freed off the data path.
    Retired {
        table: Arc<ServiceTable>,
        vips: Arc<[Ipv4Addr]>,
        gate: Arc<[u8]>,
        scheds: Vec<Box<dyn Scheduler>>,
    },
    Conns {
        worker: usize,
        rows: Vec<ConnRow>,
        next: Option<u32>,
    },
}

/// One connection entry as a listing shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnRow {
    pub proto: u8,
    pub caddr: Ipv4Addr,
    pub cport: u16,
    pub vaddr: Ipv4Addr,
    pub vport: u16,
    pub daddr: Ipv4Addr,
    pub dport: u16,
    pub state: u8,
    pub flags: u16,
    /// Time left on its timer.
    pub expires_ms: u64,
}

impl ConnRow {
    pub fn of(c: &Conn<Ipv4Addr>, now_tick: conn::Tick) -> Self {
        let left = c.expires().wrapping_sub(now_tick);
        // A timer that is due but not yet collected reads as zero.
        let left = if left > u32::MAX / 2 { 0 } else { left };
        ConnRow {
            proto: c.proto(),
            caddr: c.caddr(),
            cport: c.cport(),
            vaddr: c.vaddr,
            vport: c.vport,
            daddr: c.daddr,
            dport: c.dport,
            state: c.state,
            flags: c.flags,
            expires_ms: left as u64 * conn::TICK_MS as u64,
        }
    }
}

/// A worker's end.
pub struct Mailbox {
    pub(crate) rx: Receiver<Mail>,
    pub(crate) tx: Sender<Reply>,
}

impl Mailbox {
    /// The next message, if any; never blocks.
    #[inline]
    pub fn try_recv(&self) -> Option<Mail> {
        self.rx.try_recv().ok()
    }

    /// Answers; never blocks. A full reply channel (a control thread that
    /// stopped reading) loses the reply, which then is freed here.
    #[inline]
    pub fn reply(&self, r: Reply) {
        let _ = self.tx.try_send(r);
    }
}

/// The control thread's end: one mailbox per worker, one reply channel.
pub struct Postbox {
    to: Vec<Sender<Mail>>,
    from: Receiver<Reply>,
}

/// Mailboxes for `n` workers.
pub fn mailboxes(n: usize) -> (Postbox, Vec<Mailbox>) {
    let (rtx, rrx) = bounded(MAILBOX_LEN * n.max(1));
    let mut to = Vec::new();
    let mut boxes = Vec::new();
    for _ in 0..n {
        let (tx, rx) = bounded(MAILBOX_LEN);
        to.push(tx);
        boxes.push(Mailbox {
            rx,
            tx: rtx.clone(),
        });
    }
    (Postbox { to, from: rrx }, boxes)
}

/// Why a worker did not take or answer a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostError {
    NoSuchWorker,
    /// Its mailbox is full or gone (the worker stopped).
    Unreachable,
    /// No answer in time (a worker that stopped polling).
    Timeout,
}

impl Postbox {
    pub fn workers(&self) -> usize {
        self.to.len()
    }

    /// Sends `snap` to every worker, with the schedulers `scheds(w)` makes
    /// for worker `w`. Fails if any worker's mailbox is full; the ones
    /// before it have the snapshot then, which is harmless (the next
    /// publish carries a complete table), but the caller reports it.
    pub fn publish(
        &self,
        snap: &Snapshot,
        mut scheds: impl FnMut(usize) -> Vec<Box<dyn Scheduler>>,
    ) -> Result<(), PostError> {
        self.collect();
        let mut result = Ok(());
        for (w, to) in self.to.iter().enumerate() {
            let m = Mail::Snapshot {
                snap: snap.clone(),
                scheds: scheds(w),
            };
            if to.try_send(m).is_err() {
                result = Err(PostError::Unreachable);
            }
        }
        result
    }

    /// Frees what workers retired and drops stray replies.
    pub fn collect(&self) {
        while self.from.try_recv().is_ok() {}
    }

    /// One page of worker `w`'s connection table: up to `max` slots from
    /// `cursor`. Waits for the worker's answer (it comes at its next
    /// poll, microseconds away) at most `wait`.
    pub fn conns(
        &self,
        w: usize,
        cursor: u32,
        max: usize,
        wait: Duration,
    ) -> Result<(Vec<ConnRow>, Option<u32>), PostError> {
        let to = self.to.get(w).ok_or(PostError::NoSuchWorker)?;
        self.collect();
        let rows = Vec::with_capacity(max.max(1));
        to.try_send(Mail::Conns { cursor, rows })
            .map_err(|_| PostError::Unreachable)?;
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.from.recv_timeout(left) {
                Ok(Reply::Conns { worker, rows, next }) if worker == w => return Ok((rows, next)),
                Ok(_) => continue,
                Err(_) => return Err(PostError::Timeout),
            }
        }
    }
}
