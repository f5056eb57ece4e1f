//! The sync thread. Like IPVS's master and backup kernel threads, it
//! works beside the control loop rather than in it, so that a long
//! control request (a 100,000-line restore) never holds up a backup's
//! installs or lets a master's rings overflow; the control thread starts,
//! stops and asks it through [`SyncHandle`].

use super::backup::{Backup, BackupConfig};
use super::master::{Master, MasterConfig};
use super::{methods, Channel, Ctx};
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use ctrl_api::{ApiError, DaemonInfo, Errno, SyncRole, SyncStats};
use fastpath::ipvs::Shared;
use fastpath::service::ServiceTable;
use fastpath::sync::{SyncPost, SyncReply};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the thread sleeps when nothing is waiting: the latency a
/// record or a datagram can see, and a thousand cheap wake-ups a second.
const IDLE: Duration = Duration::from_millis(1);

pub enum Role {
    Master(MasterConfig),
    Backup(BackupConfig),
}

enum Cmd {
    Start(Role, Sender<Result<(), ApiError>>),
    Stop(SyncRole, Sender<Result<(), ApiError>>),
    Status(Sender<Vec<DaemonInfo>>),
    Full(Sender<Result<(), ApiError>>),
    Table(Arc<ServiceTable>),
    Quit,
}

/// A clock in the workers' milliseconds.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The control thread's handle on the sync thread.
pub struct SyncHandle {
    cmd: Sender<Cmd>,
    log: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

/// Where the daemon's table snapshots go (cloneable, for the data plane
/// side that publishes them).
#[derive(Clone)]
pub struct TableSink(Sender<Cmd>);

impl TableSink {
    pub fn send(&self, t: Arc<ServiceTable>) {
        let _ = self.0.send(Cmd::Table(t));
    }
}

const ASK_WAIT: Duration = Duration::from_secs(3);

fn unanswered() -> ApiError {
    ApiError::new(Errno::Other, "the sync thread did not answer")
}

impl SyncHandle {
    pub fn spawn(
        post: SyncPost,
        shared: Arc<Shared>,
        clock: Clock,
        table: Arc<ServiceTable>,
    ) -> std::io::Result<SyncHandle> {
        let (tx, rx) = unbounded();
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        let thread = std::thread::Builder::new()
            .name("ripvs-sync".into())
            .spawn(move || Daemon::new(post, shared, clock, table, l).run(rx))?;
        Ok(SyncHandle {
            cmd: tx,
            log,
            thread: Some(thread),
        })
    }

    fn ask<T>(&self, make: impl FnOnce(Sender<T>) -> Cmd) -> Option<T> {
        let (tx, rx) = bounded(1);
        self.cmd.send(make(tx)).ok()?;
        rx.recv_timeout(ASK_WAIT).ok()
    }

    pub fn start(&self, role: Role) -> Result<(), ApiError> {
        self.ask(|r| Cmd::Start(role, r))
            .unwrap_or_else(|| Err(unanswered()))
    }

    pub fn stop(&self, role: SyncRole) -> Result<(), ApiError> {
        self.ask(|r| Cmd::Stop(role, r))
            .unwrap_or_else(|| Err(unanswered()))
    }

    /// The running daemons, master first.
    pub fn daemons(&self) -> Vec<DaemonInfo> {
        self.ask(Cmd::Status).unwrap_or_default()
    }

    pub fn sync_full(&self) -> Result<(), ApiError> {
        self.ask(Cmd::Full).unwrap_or_else(|| Err(unanswered()))
    }

    pub fn table_sink(&self) -> TableSink {
        TableSink(self.cmd.clone())
    }

    /// Lines for the daemon's log since the last call.
    pub fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Drop for SyncHandle {
    fn drop(&mut self) {
        let _ = self.cmd.send(Cmd::Quit);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Daemon {
    post: SyncPost,
    shared: Arc<Shared>,
    clock: Clock,
    table: Arc<ServiceTable>,
    methods: HashMap<u32, u16>,
    master: Option<Master>,
    backup: Option<Backup>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    fn new(
        post: SyncPost,
        shared: Arc<Shared>,
        clock: Clock,
        table: Arc<ServiceTable>,
        log: Arc<Mutex<Vec<String>>>,
    ) -> Daemon {
        Daemon {
            post,
            shared,
            clock,
            methods: methods(&table),
            table,
            master: None,
            backup: None,
            log,
        }
    }

    fn note(&self, lines: Vec<String>) {
        if !lines.is_empty() {
            self.log
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend(lines);
        }
    }

    fn run(mut self, rx: Receiver<Cmd>) {
        loop {
            let active = self.master.is_some() || self.backup.is_some();
            let wait = if active {
                IDLE
            } else {
                Duration::from_millis(100)
            };
            match rx.recv_timeout(wait) {
                Ok(Cmd::Quit) => break,
                Ok(c) => self.command(c),
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                Err(_) => {}
            }
            while let Ok(c) = rx.try_recv() {
                if matches!(c, Cmd::Quit) {
                    return self.stop_all();
                }
                self.command(c);
            }
            self.pass();
        }
        self.stop_all()
    }

    fn stop_all(&mut self) {
        if let Some(m) = self.master.take() {
            m.stop();
        }
        self.backup = None;
    }

    fn command(&mut self, c: Cmd) {
        match c {
            Cmd::Start(role, r) => {
                let _ = r.send(self.start(role));
            }
            Cmd::Stop(role, r) => {
                let res = match role {
                    SyncRole::Master => self.master.take().map(Master::stop),
                    SyncRole::Backup => self.backup.take().map(drop),
                };
                let _ =
                    r.send(res.ok_or_else(|| {
                        ApiError::new(Errno::Esrch, "no such sync daemon is running")
                    }));
                let name = match role {
                    SyncRole::Master => "master",
                    SyncRole::Backup => "backup",
                };
                self.note(vec![format!("sync {name}: stopped")]);
            }
            Cmd::Status(r) => {
                let _ = r.send(self.status());
            }
            Cmd::Full(r) => {
                let now = (self.clock)() as u32;
                let res = if let Some(b) = self.backup.as_mut() {
                    b.request_full();
                    Ok(())
                } else if let Some(m) = self.master.as_mut() {
                    m.request_full(now | 1);
                    Ok(())
                } else {
                    Err(ApiError::new(Errno::Esrch, "no sync daemon is running"))
                };
                let _ = r.send(res);
            }
            Cmd::Table(t) => {
                self.methods = methods(&t);
                self.table = t;
            }
            Cmd::Quit => {}
        }
    }

    fn start(&mut self, role: Role) -> Result<(), ApiError> {
        let workers = self.post.workers();
        match role {
            Role::Master(cfg) => {
                if self.master.is_some() {
                    return Err(ApiError::new(Errno::Eexist, "the master sync daemon runs"));
                }
                let line = format!(
                    "sync master: started on {} (syncid {}, group {}:{}, ttl {}, maxlen {})",
                    cfg.ch.ifname,
                    cfg.ch.syncid,
                    cfg.ch.group,
                    cfg.ch.port,
                    cfg.ch.ttl,
                    cfg.ch.maxlen
                );
                let m = Master::start(cfg, workers)
                    .map_err(|e| ApiError::new(Errno::Other, format!("sync master: {e}")))?;
                // Records queued while no master ran are stale.
                for r in &mut self.post.rings {
                    while r.pop().is_some() {}
                }
                self.master = Some(m);
                self.note(vec![line]);
            }
            Role::Backup(cfg) => {
                if self.backup.is_some() {
                    return Err(ApiError::new(Errno::Eexist, "the backup sync daemon runs"));
                }
                let line = format!(
                    "sync backup: started on {} (syncid {}, group {}:{}, maxlen {})",
                    cfg.ch.ifname, cfg.ch.syncid, cfg.ch.group, cfg.ch.port, cfg.ch.maxlen
                );
                let seed = (self.clock)() as u32 ^ std::process::id().rotate_left(16);
                let b = Backup::start(cfg, workers, seed)
                    .map_err(|e| ApiError::new(Errno::Other, format!("sync backup: {e}")))?;
                self.backup = Some(b);
                self.note(vec![line]);
            }
        }
        Ok(())
    }

    fn status(&self) -> Vec<DaemonInfo> {
        let info = |role, c: &Channel, stats: &SyncStats| DaemonInfo {
            role,
            mcast_ifn: c.ifname.clone(),
            syncid: c.syncid,
            maxlen: c.maxlen,
            group: IpAddr::V4(c.group),
            port: c.port,
            ttl: c.ttl,
            stats: stats.clone(),
        };
        let master = (self.master.iter()).map(|m| info(SyncRole::Master, &m.cfg.ch, &m.stats));
        let backup = (self.backup.iter()).map(|b| info(SyncRole::Backup, &b.cfg.ch, &b.stats));
        master.chain(backup).collect()
    }

    fn pass(&mut self) {
        let now = Instant::now();
        let ctx = Ctx {
            table: &self.table,
            methods: &self.methods,
            shared: &self.shared,
            now_ms: (self.clock)(),
        };
        let mut lines = Vec::new();
        // Answers first: they free room in the workers' mailboxes.
        while let Some(r) = self.post.reply(Duration::ZERO) {
            match r {
                SyncReply::Installed { batch, result, .. } => {
                    if let Some(b) = self.backup.as_mut() {
                        b.on_installed(batch, result);
                    }
                }
                SyncReply::Dump { worker, rows, next } => {
                    if let Some(m) = self.master.as_mut() {
                        m.on_page(&ctx, worker, &rows, next);
                    }
                }
            }
        }
        if let Some(m) = self.master.as_mut() {
            lines.extend(m.pass(&ctx, &mut self.post, now));
        } else {
            // No master: candidates are not wanted (workers only make
            // them while one runs, but a ring may hold the last few).
            for r in &mut self.post.rings {
                while r.pop().is_some() {}
            }
        }
        if let Some(b) = self.backup.as_mut() {
            lines.extend(b.pass(&mut self.post, now));
        }
        self.note(lines);
    }
}
