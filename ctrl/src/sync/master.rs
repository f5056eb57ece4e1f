//! The master daemon: sync candidates from every worker's ring become v1
//! (or v0) messages on the multicast group, as IPVS's master thread sends
//! them; a backup's request for the whole table is answered with a paced
//! transfer of every live connection and template.

use super::codec::{Control, Encoder, Push, Version, WireConn};
use super::socket;
use super::{Channel, Ctx, FULL_MSGS_PER_PASS, FULL_PAGE, MAX_PER_RING};
use ctrl_api::SyncStats;
use fastpath::conn::{self, flags};
use fastpath::ipvs::Ipvs;
use fastpath::persist::{Tpl, TplKey};
use fastpath::sync::{SyncConn, SyncParams, SyncPost};
use std::collections::VecDeque;
use std::io;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// How long a partly filled message waits for more records. IPVS lets a
/// buffer wait up to 2 s (its thread wakes once a second); a backup that
/// is 20 ms behind loses far less at failover, for a few more datagrams.
pub const FLUSH_AFTER: Duration = Duration::from_millis(20);

/// How long a full transfer waits for a worker's page before asking again.
const PAGE_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterConfig {
    pub ch: Channel,
    pub version: Version,
    pub params: SyncParams,
}

/// A full transfer in progress: every worker's table page by page, then
/// the shared templates shard by shard, then the end marker.
struct Transfer {
    nonce: u32,
    started: Instant,
    worker: usize,
    /// The page asked of `worker`, while its answer is awaited.
    waiting: bool,
    asked_at: Instant,
    cursor: u32,
    /// The next template shard, once the workers are done.
    shard: Option<usize>,
    pending: VecDeque<WireConn>,
    enc: Encoder,
    sent: u32,
    done: bool,
}

pub struct Master {
    pub cfg: MasterConfig,
    sock: UdpSocket,
    /// Sends full transfers: its own source port tells a backup which
    /// records between Begin and End are the transfer's, not the live
    /// sync that goes on meanwhile.
    full_sock: UdpSocket,
    /// Full-transfer requests from backups.
    listen: UdpSocket,
    enc: Encoder,
    first_at: Option<Instant>,
    pub stats: SyncStats,
    full: Option<Transfer>,
    queued: VecDeque<u32>,
    buf: Vec<u8>,
}

impl Master {
    pub fn start(cfg: MasterConfig, workers: usize) -> io::Result<Master> {
        let sock = socket::sender(&cfg.ch.ifname, cfg.ch.group, cfg.ch.port, cfg.ch.ttl)?;
        let full_sock = socket::sender(&cfg.ch.ifname, cfg.ch.group, cfg.ch.port, cfg.ch.ttl)?;
        let listen = socket::receiver(&cfg.ch.ifname, cfg.ch.group, cfg.ch.port, 1 << 20)?;
        let enc = Encoder::new(cfg.version, cfg.ch.syncid, cfg.ch.maxlen as usize);
        Ok(Master {
            cfg,
            sock,
            full_sock,
            listen,
            enc,
            first_at: None,
            stats: SyncStats {
                ring_drops: vec![0; workers],
                ..SyncStats::default()
            },
            full: None,
            queued: VecDeque::new(),
            buf: vec![0; 65536],
        })
    }

    fn send(&mut self, msg: &[u8], records: usize) {
        match self.sock.send(msg) {
            Ok(_) => {
                self.stats.messages += 1;
                self.stats.records += records as u64;
                self.stats.bytes += msg.len() as u64;
            }
            Err(_) => self.stats.send_errors += 1,
        }
    }

    fn flush(&mut self) {
        let n = self.enc.records();
        if let Some(m) = self.enc.take() {
            self.send(&m, n);
        }
        self.first_at = None;
    }

    fn push(&mut self, w: &WireConn, now: Instant) {
        match self.enc.push(w) {
            Push::Added => {}
            Push::Full => {
                self.flush();
                if self.enc.push(w) != Push::Added {
                    self.stats.send_errors += 1;
                }
            }
            Push::TooBig => {
                *self.stats.rejected.entry("too_big".into()).or_default() += 1;
                return;
            }
        }
        self.first_at.get_or_insert(now);
    }

    /// One pass: drain the rings, answer requests, move a transfer on,
    /// send what is due.
    pub fn pass(&mut self, ctx: &Ctx, post: &mut SyncPost, now: Instant) -> Vec<String> {
        let mut log = Vec::new();
        for (w, ring) in post.rings.iter_mut().enumerate() {
            for _ in 0..MAX_PER_RING {
                let Some(r) = ring.pop() else { break };
                for wc in candidates(ctx, &self.cfg.params, &r) {
                    self.push(&wc, now);
                }
            }
            if let Some(d) = self.stats.ring_drops.get_mut(w) {
                *d = ring.drops();
            }
        }
        if self
            .first_at
            .is_some_and(|t| now.duration_since(t) >= FLUSH_AFTER)
        {
            self.flush();
        }
        self.requests(&mut log);
        self.transfer(ctx, post, now, &mut log);
        log
    }

    /// Full-transfer requests heard on the group.
    fn requests(&mut self, log: &mut Vec<String>) {
        for _ in 0..64 {
            let n = match self.listen.recv(&mut self.buf) {
                Ok(n) => n,
                Err(_) => break,
            };
            if let Some(Control::Request { syncid, nonce }) = Control::decode(&self.buf[..n]) {
                if syncid != 0 && syncid != self.cfg.ch.syncid {
                    continue;
                }
                let busy = self.full.as_ref().is_some_and(|t| t.nonce == nonce);
                if !busy && !self.queued.contains(&nonce) && self.queued.len() < 16 {
                    log.push(format!(
                        "sync master: full transfer requested ({nonce:08x})"
                    ));
                    self.queued.push_back(nonce);
                }
            }
        }
    }

    /// Starts a transfer for an operator (`--sync-full` on a master).
    pub fn request_full(&mut self, nonce: u32) {
        if !self.queued.contains(&nonce) {
            self.queued.push_back(nonce);
        }
    }

    fn transfer(&mut self, ctx: &Ctx, post: &mut SyncPost, now: Instant, log: &mut Vec<String>) {
        if self.full.is_none() {
            let Some(nonce) = self.queued.pop_front() else {
                return;
            };
            let begin = Control::Begin {
                syncid: self.cfg.ch.syncid,
                nonce,
            };
            send_stats(&self.full_sock, &mut self.stats, &begin.encode(), 0);
            self.full = Some(Transfer {
                nonce,
                started: now,
                worker: 0,
                waiting: false,
                asked_at: now,
                cursor: 0,
                shard: None,
                pending: VecDeque::new(),
                enc: Encoder::new(
                    self.cfg.version,
                    self.cfg.ch.syncid,
                    self.cfg.ch.maxlen as usize,
                ),
                sent: 0,
                done: false,
            });
        }
        let Some(t) = self.full.as_mut() else { return };
        // A worker answers at its next poll; an answer lost to a full
        // reply channel is asked for again rather than waited for forever.
        if t.waiting && now.duration_since(t.asked_at) > PAGE_WAIT {
            t.waiting = false;
        }
        // Ask for more while little is pending.
        if t.pending.len() < FULL_PAGE && !t.waiting && !t.done {
            if t.worker < post.workers() {
                t.waiting = post.dump(t.worker, t.cursor, FULL_PAGE).is_ok();
                t.asked_at = now;
            } else {
                // Shards are read here, not asked of a worker: as many a
                // pass as fit the page, so a small template table does not
                // cost a pass per shard.
                let mut tpls = Vec::new();
                while !t.done && t.pending.len() + tpls.len() < FULL_PAGE {
                    let shard = t.shard.unwrap_or(0);
                    let next = ctx
                        .shared
                        .templates
                        .page(shard, |k, tp| tpls.push((*k, *tp)));
                    match next {
                        Some(s) => t.shard = Some(s),
                        None => t.done = true,
                    }
                }
                for (k, tp) in tpls {
                    if tp.expires_ms > ctx.now_ms || tp.n_control > 0 {
                        let left = tp.expires_ms.saturating_sub(ctx.now_ms).max(1000);
                        t.pending.push_back(template_wire(ctx, &k, &tp, left));
                    }
                }
            }
        }
        // Paced: a few messages a pass, so the backup's socket and the
        // path through the exception taps keep up.
        let mut msgs = 0;
        while msgs < FULL_MSGS_PER_PASS {
            let Some(w) = t.pending.front() else { break };
            match t.enc.push(w) {
                Push::Added => {
                    t.pending.pop_front();
                }
                Push::Full => {
                    let n = t.enc.records();
                    if let Some(m) = t.enc.take() {
                        t.sent += n as u32;
                        msgs += 1;
                        send_stats(&self.full_sock, &mut self.stats, &m, n);
                    }
                }
                Push::TooBig => {
                    t.pending.pop_front();
                }
            }
        }
        if t.done && t.pending.is_empty() && !t.waiting {
            let n = t.enc.records();
            if let Some(m) = t.enc.take() {
                t.sent += n as u32;
                send_stats(&self.full_sock, &mut self.stats, &m, n);
            }
            let end = Control::End {
                syncid: self.cfg.ch.syncid,
                nonce: t.nonce,
                count: t.sent,
            };
            let ms = now.duration_since(t.started).as_millis() as u64;
            self.stats.full_sync.transfers += 1;
            self.stats.full_sync.records = t.sent as u64;
            self.stats.full_sync.duration_ms = ms;
            log.push(format!(
                "sync master: full transfer ({:08x}) sent: {} records in {ms} ms",
                t.nonce, t.sent
            ));
            self.full = None;
            send_stats(&self.full_sock, &mut self.stats, &end.encode(), 0);
        }
    }

    /// A page of a worker's table for the transfer.
    pub fn on_page(&mut self, ctx: &Ctx, worker: usize, rows: &[SyncConn], next: Option<u32>) {
        let Some(t) = self.full.as_mut() else { return };
        if worker != t.worker || !t.waiting {
            return;
        }
        t.waiting = false;
        for r in rows {
            if let Some(w) = conn_wire(ctx, r) {
                t.pending.push_back(w);
            }
        }
        match next {
            Some(c) => t.cursor = c,
            None => {
                t.worker += 1;
                t.cursor = 0;
            }
        }
    }

    pub fn stop(mut self) {
        self.flush();
    }
}

fn send_stats(sock: &UdpSocket, stats: &mut SyncStats, m: &[u8], n: usize) {
    match sock.send(m) {
        Ok(_) => {
            stats.messages += 1;
            stats.records += n as u64;
            stats.bytes += m.len() as u64;
        }
        Err(_) => stats.send_errors += 1,
    }
}

/// The wire records a candidate stands for: the connection (unless only
/// its template is due or it is a one-packet entry) and its template when
/// that is due.
fn candidates(ctx: &Ctx, p: &SyncParams, r: &SyncConn) -> impl Iterator<Item = WireConn> {
    let mut out: [Option<WireConn>; 2] = [None, None];
    if r.is_template() {
        // A template kept past its timeout by its connections: sent for
        // 60 s, as IPVS re-syncs a re-armed one.
        out[0] = Some(template_from_ring(ctx, r));
    } else {
        if !r.template_only && r.flags & flags::ONE_PACKET == 0 {
            out[0] = conn_wire(ctx, r);
        }
        if r.controlled || r.template_only {
            out[1] = controlled_template(ctx, p, r);
        }
    }
    out.into_iter().flatten()
}

/// A connection entry as a wire record.
fn conn_wire(ctx: &Ctx, r: &SyncConn) -> Option<WireConn> {
    if r.is_template() {
        return None;
    }
    let fwmark = ctx.table.by_id(r.svc).and_then(|s| s.fwmark).unwrap_or(0);
    Some(WireConn {
        proto: r.proto,
        flags: r.flags as u32,
        state: r.state as u16,
        cport: r.cport,
        vport: r.vport,
        dport: r.dport,
        fwmark,
        timeout: r.timeout_s,
        caddr: r.caddr,
        vaddr: r.vaddr,
        daddr: r.daddr,
        seq: None,
        pe: None,
    })
}

/// The template controlling connection `r`, if IPVS's refresh rule lets
/// it go now.
fn controlled_template(ctx: &Ctx, p: &SyncParams, r: &SyncConn) -> Option<WireConn> {
    let svc = ctx.table.by_id(r.svc)?;
    let secs = svc.persistent? as u64;
    let k = Ipvs::tpl_key(svc, r.caddr, r.proto, r.vport);
    let t = ctx.shared.templates.sync_due(
        &k,
        ctx.now_ms,
        secs * 1000,
        p.refresh_period as u64 * 1000,
        p.retries,
    )?;
    Some(template_wire(ctx, &k, &t, secs * 1000))
}

fn template_from_ring(ctx: &Ctx, r: &SyncConn) -> WireConn {
    let k = TplKey {
        proto: r.proto,
        snet: r.caddr,
        vaddr: r.vaddr,
        vport: r.vport,
    };
    let t = Tpl {
        dest: r.dest,
        daddr: r.daddr,
        dport: r.dport,
        expires_ms: 0,
        n_control: 0,
        assured: r.state & conn::TPL_S_ASSURED != 0,
        sync_end_ms: 0,
        sync_retries: 0,
    };
    template_wire(ctx, &k, &t, r.timeout_s as u64 * 1000)
}

/// A template as IPVS sends it: flags TEMPLATE and what `ip_vs_bind_dest`
/// gives every entry from its server's `conn_flags` (the method,
/// INACTIVE, and NOOUTPUT unless NAT), client port 0, protocol 0 and the
/// mark as address for a fwmark service, the persistence (or 60 s)
/// timeout.
fn template_wire(ctx: &Ctx, k: &TplKey, t: &Tpl, timeout_ms: u64) -> WireConn {
    let method = ctx.method_of(t.dest);
    let output = if method == flags::MASQ {
        0
    } else {
        flags::NOOUTPUT
    };
    let fwmark = if k.proto == 0 { k.vaddr.to_bits() } else { 0 };
    WireConn {
        proto: k.proto,
        flags: (flags::TEMPLATE | flags::INACTIVE | output | method) as u32,
        state: t.assured as u16,
        cport: 0,
        vport: k.vport,
        dport: t.dport,
        fwmark,
        timeout: timeout_ms.div_ceil(1000) as u32,
        caddr: k.snet,
        vaddr: k.vaddr,
        daddr: t.daddr,
        seq: None,
        pe: None,
    }
}
