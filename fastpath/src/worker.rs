//! The per-core run-to-completion loop, in the shape of DPDK's l2fwd/l3fwd:
//! receive a burst, prefetch it, process it, transmit, drain timers.
//! Nothing else belongs here.

use crate::host::{Host, HostConfig};
use crate::io::{Buf, Io, BURST};
use crate::ipvs::Shared;
use crate::mailbox::{ConnRow, Mail, Mailbox, Reply};
use crate::stats::{DropReason, WorkerStats};
use arrayvec::ArrayVec;
use std::sync::Arc;

/// How often neighbour timers run.
pub const TICK_MS: u64 = 10;

pub struct Worker<B: Buf> {
    host: Host<B>,
    next_tick: u64,
    announced: bool,
    mailbox: Option<Mailbox>,
    sync: Option<crate::sync::post::SyncLine>,
    /// See [`Worker::set_scalar`].
    scalar: bool,
}

impl<B: Buf> Worker<B> {
    /// A lone worker (tests, benchmarks): it shares nothing.
    pub fn new(cfg: &HostConfig, stats: Arc<WorkerStats>) -> Self {
        Self::with_shared(cfg, stats, Arc::new(Shared::new(1, 1024)), 0)
    }

    /// Worker `me` of those sharing `shared`.
    pub fn with_shared(
        cfg: &HostConfig,
        stats: Arc<WorkerStats>,
        shared: Arc<Shared>,
        me: usize,
    ) -> Self {
        Worker {
            host: Host::new(cfg, stats, shared, me),
            next_tick: 0,
            announced: false,
            mailbox: None,
            sync: None,
            scalar: false,
        }
    }

    /// For tests and benchmarks: when on, `poll` hands each received frame
    /// to [`Host::input`], the general path, one by one instead of taking
    /// the burst path ([`Host::input_burst`]). Both must behave the same
    /// (same bytes out, same counters); this is how tests check that the
    /// burst path's shortcuts change nothing, and how benchmarks measure
    /// what they gain. Off by default.
    pub fn set_scalar(&mut self, on: bool) {
        self.scalar = on;
    }

    /// Connects the worker to the control thread.
    pub fn set_mailbox(&mut self, mb: Mailbox) {
        self.mailbox = Some(mb);
    }

    /// Connects the worker to the control plane's protocols (VRRP):
    /// their frames go up instead of to the kernel, and worker 0 sends
    /// theirs.
    pub fn set_control(&mut self, end: crate::control_link::WorkerEnd) {
        self.host.control = Some(end);
    }

    /// Connects the worker to the sync thread: its candidate ring and its
    /// sync mailbox.
    pub fn set_sync(&mut self, sb: crate::sync::SyncBox) {
        self.host.ipvs.set_sync_ring(sb.ring);
        self.sync = Some(sb.line);
    }

    pub fn host(&self) -> &Host<B> {
        &self.host
    }

    /// One iteration of the loop.
    pub fn poll<I: Io<Buf = B>>(&mut self, io: &mut I) {
        let now = io.now_ms();
        if !self.announced {
            // Gratuitous ARP once, from one worker only.
            if io.worker() == 0 {
                crate::local::arp::announce(&self.host, io);
            }
            self.announced = true;
        }
        self.mail(io, now);
        self.sync_mail(io, now);
        if let Some(c) = &self.host.control {
            c.send_down(&mut self.host.egress, io, now);
        }
        let mut burst: ArrayVec<B, BURST> = ArrayVec::new();
        for port in 0..io.nports() {
            io.rx_burst(port, &mut burst);
            for p in &burst {
                p.prefetch();
            }
            if self.scalar {
                for p in burst.drain(..) {
                    self.host.input(io, port, p, now);
                }
            } else {
                self.host.input_burst(io, port, &mut burst, now);
            }
            io.rx_exception(port, &mut burst);
            for p in burst.drain(..) {
                crate::local::exception::from_kernel(&self.host.egress, io, port, p);
            }
        }
        io.rx_peers(&mut burst);
        for p in burst.drain(..) {
            self.host.peer_input(io, p, now);
        }
        let dropped = io.flush();
        if dropped > 0 {
            self.host
                .egress
                .stats
                .count_drops(DropReason::TxQueueFull, dropped);
        }
        if now >= self.next_tick {
            self.host.egress.tick(io, now);
            self.host.ipvs.tick(now, &self.host.egress.stats);
            self.next_tick = now + TICK_MS;
        }
    }

    /// Records from the sync thread, between bursts.
    fn sync_mail<I: Io<Buf = B>>(&mut self, io: &I, now: u64) {
        use crate::sync::{SyncMail, SyncReply};
        let Some(sb) = &self.sync else { return };
        let tick = (now / crate::conn::TICK_MS as u64) as crate::conn::Tick;
        // One message (at most 256 records, 45-75 us) per pass, so a full
        // transfer onto a forwarding director never holds the packets
        // waiting in the NIC longer than that (perf/README.md).
        let Some(m) = sb.try_recv() else { return };
        match m {
            SyncMail::Install(batch) => {
                let result = self.host.ipvs.install_synced(&batch, tick);
                sb.reply(SyncReply::Installed {
                    worker: io.worker(),
                    batch,
                    result,
                });
            }
            SyncMail::Dump { cursor, mut rows } => {
                let max = rows.capacity();
                let next = self.host.ipvs.conns.page(cursor, max, |_, c| {
                    let live = c.expires().wrapping_sub(tick) < u32::MAX / 2;
                    if rows.len() < max && live {
                        rows.push(crate::sync::SyncConn::of(c));
                    }
                });
                sb.reply(SyncReply::Dump {
                    worker: io.worker(),
                    rows,
                    next,
                });
            }
        }
    }

    /// Commands from the control thread, between bursts.
    fn mail<I: Io<Buf = B>>(&mut self, io: &I, now: u64) {
        let Some(mb) = &self.mailbox else { return };
        while let Some(m) = mb.try_recv() {
            match m {
                Mail::Snapshot { snap, scheds } => {
                    // Leaving standby (a backup taking over): announce the
                    // VIPs again, as a director coming up does.
                    if self.host.standby() && !snap.settings.standby {
                        self.announced = false;
                    }
                    let ipvs = &mut self.host.ipvs;
                    let installed = ipvs.install(snap.table, scheds, snap.timeouts, snap.settings);
                    let (r, (vips, gate)) = match installed {
                        Ok(old) => (old, self.host.set_vips(snap.vips, snap.gate)),
                        Err(refused) => (refused, (snap.vips, snap.gate)),
                    };
                    let (table, scheds) = (r.table, r.scheds);
                    mb.reply(Reply::Retired {
                        table,
                        vips,
                        gate,
                        scheds,
                    });
                }
                Mail::Conns { cursor, mut rows } => {
                    let tick = (now / crate::conn::TICK_MS as u64) as crate::conn::Tick;
                    let max = rows.capacity();
                    let next = self.host.ipvs.conns.page(cursor, max, |_, c| {
                        if rows.len() < max {
                            rows.push(ConnRow::of(c, tick));
                        }
                    });
                    mb.reply(Reply::Conns {
                        worker: io.worker(),
                        rows,
                        next,
                    });
                }
            }
        }
    }
}
