//! The backup daemon: messages from the group are validated (reference
//! 8.3), filtered by syncid, and each record is installed where it
//! belongs (8.5): a connection in the table of the worker that owns its
//! client, through that worker's sync mailbox; a template in the shared
//! template table, through a worker as well (it counts PersistConn). A bad record ends its message, never the daemon.

use super::codec::{self, Control, Reject, WireConn};
use super::socket;
use super::{Channel, MAX_BATCH};
use ctrl_api::SyncStats;
use fastpath::conn::{self, owner_core};
use fastpath::sync::{Refused, SyncConn, SyncPost, Synced};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// How long a backup waits for a master to begin a requested transfer
/// before asking again, and how often it asks.
const REQUEST_RETRY: Duration = Duration::from_secs(2);
const REQUEST_TRIES: u32 = 30;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupConfig {
    pub ch: Channel,
    /// Ask the master for its whole table on start.
    pub full_sync: bool,
}

/// The backup's side of a full transfer.
#[derive(Debug, Default)]
struct Full {
    nonce: u32,
    asked_at: Option<Instant>,
    tries: u32,
    begun: Option<Instant>,
    /// Where Begin came from: the master's transfer socket, whose
    /// messages are the transfer's (live sync comes from another port).
    from: Option<SocketAddr>,
    received: u64,
}

pub struct Backup {
    pub cfg: BackupConfig,
    sock: UdpSocket,
    /// Sends this backup's requests for a full transfer.
    ask: UdpSocket,
    buf: Vec<u8>,
    pub stats: SyncStats,
    /// Records waiting for each worker's mailbox.
    batches: Vec<Vec<Synced>>,
    /// Emptied batches back from the workers, for reuse.
    pool: Vec<Vec<Synced>>,
    full: Option<Full>,
    seed: u32,
}

fn reject(stats: &mut SyncStats, why: &str, n: u64) {
    *stats.rejected.entry(why.to_string()).or_default() += n;
}

impl Backup {
    pub fn start(cfg: BackupConfig, workers: usize, seed: u32) -> io::Result<Backup> {
        let sock = socket::receiver(&cfg.ch.ifname, cfg.ch.group, cfg.ch.port, 8 << 20)?;
        let ask = socket::sender(&cfg.ch.ifname, cfg.ch.group, cfg.ch.port, cfg.ch.ttl)?;
        let mut b = Backup {
            buf: vec![0; cfg.ch.maxlen.max(1024) as usize + 1],
            cfg,
            sock,
            ask,
            stats: SyncStats::default(),
            batches: (0..workers)
                .map(|_| Vec::with_capacity(MAX_BATCH))
                .collect(),
            pool: Vec::new(),
            full: None,
            seed,
        };
        if b.cfg.full_sync {
            b.request_full();
        }
        Ok(b)
    }

    /// Asks the master for its whole table (again).
    pub fn request_full(&mut self) {
        self.seed = self.seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        self.full = Some(Full {
            nonce: self.seed | 1,
            ..Full::default()
        });
        self.stats.full_sync.complete = false;
        self.stats.full_sync.transfers += 1;
    }

    pub fn pass(&mut self, post: &mut SyncPost, now: Instant) -> Vec<String> {
        let mut log = Vec::new();
        self.ask_again(now, &mut log);
        for _ in 0..512 {
            let (n, src) = match self.sock.recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(_) => break,
            };
            if n >= self.buf.len() {
                // Longer than this backup's maxlen: cut short, so refused.
                reject(&mut self.stats, "too_long", 1);
                continue;
            }
            let msg = &self.buf[..n];
            if let Some(c) = Control::decode(msg) {
                self.control(c, src, now, &mut log);
                continue;
            }
            match codec::decode(msg, self.cfg.ch.syncid) {
                Err(r) => reject(&mut self.stats, r.name(), 1),
                Ok(m) => {
                    self.stats.messages += 1;
                    self.stats.bytes += n as u64;
                    // Records passed over whole (IPv6 ones among them):
                    // each counted under its reason.
                    for r in &m.skipped {
                        reject(&mut self.stats, r.name(), 1);
                    }
                    if let Some(r) = m.error {
                        reject(&mut self.stats, r.name(), 1);
                    }
                    for w in &m.records {
                        self.stats.records += 1;
                        self.record(w);
                    }
                    if let Some(f) = self.full.as_mut().filter(|f| f.from == Some(src)) {
                        f.received += m.records.len() as u64;
                    }
                }
            }
            self.flush(post);
        }
        self.flush(post);
        log
    }

    fn ask_again(&mut self, now: Instant, log: &mut Vec<String>) {
        let Some(f) = self.full.as_mut() else { return };
        if f.begun.is_some()
            || f.asked_at
                .is_some_and(|t| now.duration_since(t) < REQUEST_RETRY)
        {
            return;
        }
        if f.tries >= REQUEST_TRIES {
            log.push("sync backup: no master answered the full transfer request".into());
            self.full = None;
            return;
        }
        let req = Control::Request {
            syncid: self.cfg.ch.syncid,
            nonce: f.nonce,
        };
        f.tries += 1;
        f.asked_at = Some(now);
        if self.ask.send(&req.encode()).is_err() {
            self.stats.send_errors += 1;
        }
    }

    fn control(&mut self, c: Control, src: SocketAddr, now: Instant, log: &mut Vec<String>) {
        let Some(f) = self.full.as_mut() else { return };
        match c {
            Control::Begin { nonce, .. } if nonce == f.nonce => {
                f.begun = Some(now);
                f.from = Some(src);
                f.received = 0;
            }
            Control::End { nonce, count, .. } if nonce == f.nonce => {
                let ms = f
                    .begun
                    .map_or(0, |b| now.duration_since(b).as_millis() as u64);
                let got = f.received;
                self.stats.full_sync.complete = true;
                self.stats.full_sync.records = got;
                self.stats.full_sync.duration_ms = ms;
                log.push(format!(
                    "sync backup: full transfer complete: {got} of {count} records in {ms} ms"
                ));
                self.full = None;
            }
            _ => {}
        }
    }

    /// One received record.
    fn record(&mut self, w: &WireConn) {
        if let Err(r) = codec::check_semantics(w) {
            return reject(&mut self.stats, r.name(), 1);
        }
        if w.state > u8::MAX as u16 {
            return reject(&mut self.stats, Reject::State.name(), 1);
        }
        let rec = SyncConn {
            proto: w.proto,
            state: w.state as u8,
            flags: w.flags as u16,
            caddr: w.caddr,
            cport: w.cport,
            vaddr: w.vaddr,
            vport: w.vport,
            daddr: w.daddr,
            dport: w.dport,
            timeout_s: w.timeout,
            svc: conn::NONE,
            dest: conn::NONE,
            controlled: false,
            template_only: false,
        };
        let s = Synced {
            rec,
            fwmark: w.fwmark,
        };
        // A template goes to some worker too, which installs it in the
        // shared table and counts it (see fastpath/src/ipvs/synced.rs); its
        // client network spreads them over the workers.
        let owner = owner_core(rec.caddr, rec.cport, self.batches.len().max(1));
        let b = &mut self.batches[owner];
        if b.len() >= MAX_BATCH * 16 {
            // The worker is far behind: bounded memory beats completeness.
            return reject(&mut self.stats, "worker_behind", 1);
        }
        b.push(s);
    }

    /// Hands each worker its records, a batch at a time.
    fn flush(&mut self, post: &mut SyncPost) {
        for (w, b) in self.batches.iter_mut().enumerate() {
            while !b.is_empty() {
                let n = b.len().min(MAX_BATCH);
                let mut batch = self
                    .pool
                    .pop()
                    .unwrap_or_else(|| Vec::with_capacity(MAX_BATCH));
                batch.clear();
                batch.extend(b.drain(..n));
                match post.install(w, batch) {
                    Ok(()) => {}
                    Err((Refused::Full, back)) => {
                        // Put it back in front: order matters (updates).
                        let rest = std::mem::take(b);
                        *b = back;
                        b.extend(rest);
                        break;
                    }
                    Err((Refused::NoSuchWorker, back)) => {
                        reject(&mut self.stats, "no_worker", back.len() as u64);
                    }
                }
            }
        }
    }

    /// A worker's answer to an install.
    pub fn on_installed(&mut self, batch: Vec<Synced>, r: fastpath::sync::Installed) {
        self.stats.installed += (r.created + r.updated) as u64;
        for (why, n) in [
            ("stale", r.stale),
            ("invalid", r.invalid),
            ("table_full", r.full),
        ] {
            if n > 0 {
                reject(&mut self.stats, why, n as u64);
            }
        }
        if self.pool.len() < 64 {
            self.pool.push(batch);
        }
    }
}
