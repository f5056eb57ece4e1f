//! The sync thread's own line to each worker, beside the control
//! thread's mailbox (`crate::mailbox`): received records to install, and
//! pages of a master's table for a full transfer. Apart from the control
//! thread's so that neither thread ever reads the other's answers, and so
//! a busy control request never holds up a backup's installs.
//!
//! As with the mailbox, the worker allocates and frees nothing: batches
//! and pages come with their memory and go back with it.

use super::record::{SyncConn, Synced};
use super::ring::{ring, Consumer, Producer};
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use std::time::{Duration, Instant};

/// Messages waiting per worker.
const POST_LEN: usize = 256;

pub enum SyncMail {
    /// Records for connections this worker owns.
    Install(Vec<Synced>),
    /// Fill `rows` (empty, with the page size as capacity) with the live
    /// entries of the next `rows.capacity()` slots from `cursor`.
    Dump { cursor: u32, rows: Vec<SyncConn> },
}

/// What became of the records of one batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Installed {
    pub created: u32,
    pub updated: u32,
    /// An inactive record for an entry already replaced by another real
    /// server: the record describes the old one and is ignored.
    pub stale: u32,
    /// Unknown protocol or state out of range (checked again on install:
    /// the worker never trusts a record to index its tables).
    pub invalid: u32,
    /// The table (or the template table's shard) was full.
    pub full: u32,
}

pub enum SyncReply {
    Installed {
        worker: usize,
        batch: Vec<Synced>,
        result: Installed,
    },
    Dump {
        worker: usize,
        rows: Vec<SyncConn>,
        next: Option<u32>,
    },
}

/// A worker's end: its candidate ring and its sync mailbox.
pub struct SyncBox {
    pub(crate) ring: Producer,
    pub(crate) line: SyncLine,
}

/// A worker's sync mailbox.
pub struct SyncLine {
    rx: Receiver<SyncMail>,
    tx: Sender<SyncReply>,
}

/// The sync thread's end.
pub struct SyncPost {
    to: Vec<Sender<SyncMail>>,
    from: Receiver<SyncReply>,
    /// Each worker's candidate ring.
    pub rings: Vec<Consumer>,
}

/// Sync lines for `n` workers, each with a ring of `ring_records`.
pub fn sync_post(n: usize, ring_records: usize) -> (SyncPost, Vec<SyncBox>) {
    let (rtx, rrx) = bounded(POST_LEN * n.max(1));
    let mut to = Vec::new();
    let mut rings = Vec::new();
    let mut boxes = Vec::new();
    for _ in 0..n {
        let (tx, rx) = bounded(POST_LEN);
        let (p, c) = ring(ring_records);
        to.push(tx);
        rings.push(c);
        boxes.push(SyncBox {
            ring: p,
            line: SyncLine {
                rx,
                tx: rtx.clone(),
            },
        });
    }
    (
        SyncPost {
            to,
            from: rrx,
            rings,
        },
        boxes,
    )
}

/// Why a worker did not take a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    NoSuchWorker,
    /// Its mailbox is full (the worker is behind) or gone.
    Full,
}

impl SyncPost {
    pub fn workers(&self) -> usize {
        self.to.len()
    }

    /// Hands worker `w` a batch to install; a full mailbox gives the batch
    /// back.
    pub fn install(&self, w: usize, batch: Vec<Synced>) -> Result<(), (Refused, Vec<Synced>)> {
        let Some(to) = self.to.get(w) else {
            return Err((Refused::NoSuchWorker, batch));
        };
        to.try_send(SyncMail::Install(batch)).map_err(|e| match e {
            TrySendError::Full(SyncMail::Install(b))
            | TrySendError::Disconnected(SyncMail::Install(b)) => (Refused::Full, b),
            _ => (Refused::Full, Vec::new()),
        })
    }

    /// Asks worker `w` for a page of its table for a full transfer.
    pub fn dump(&self, w: usize, cursor: u32, max: usize) -> Result<(), Refused> {
        let to = self.to.get(w).ok_or(Refused::NoSuchWorker)?;
        let rows = Vec::with_capacity(max.max(1));
        to.try_send(SyncMail::Dump { cursor, rows })
            .map_err(|_| Refused::Full)
    }

    /// The next answer, waiting at most `wait`.
    pub fn reply(&self, wait: Duration) -> Option<SyncReply> {
        if wait.is_zero() {
            return self.from.try_recv().ok();
        }
        self.from.recv_deadline(Instant::now() + wait).ok()
    }
}

impl SyncLine {
    #[inline]
    pub(crate) fn try_recv(&self) -> Option<SyncMail> {
        self.rx.try_recv().ok()
    }

    /// Answers; a sync thread that stopped reading loses the answer.
    #[inline]
    pub(crate) fn reply(&self, r: SyncReply) {
        let _ = self.tx.try_send(r);
    }
}
