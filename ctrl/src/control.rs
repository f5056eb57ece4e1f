//! The control loop's request handler: one [`Request`] in, one
//! [`Response`] out, against the live [`Model`] and the data plane behind
//! the narrow [`Dataplane`] trait (design section 4).
//!
//! Workers see changes only as whole snapshots: a batch of commands is
//! applied to the model one by one (each all or nothing, as `ipvsadm -R`
//! runs its lines) and the data plane gets one new table at the end.

use crate::health::checker::{Checker, Outcome};
use crate::health::Health;
use crate::model::Model;
use crate::stats::{self, Tracker};
use crate::sync::admin::SyncAdmin;
use crate::vrrp::admin::VrrpAdmin;
use ctrl_api::{
    ApiError, Command, ConnPage, Cursor, DestInfo, Errno, Info, Request, Response, ServiceInfo,
    SvcKey,
};
use fastpath::proto::Timeouts;
use fastpath::service::counters::CoreCounters;
use fastpath::service::ServiceTable;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// What the control loop needs of the data plane; the daemon implements it
/// over its workers, tests over plain memory.
pub trait Dataplane {
    /// Every worker picks up `table` (and `timeouts`) between bursts.
    fn publish(&mut self, table: ServiceTable, timeouts: Timeouts);
    /// Each core's counter block (single writer each; read here).
    fn cores(&self) -> Vec<Arc<CoreCounters>>;
    /// A page of connection entries and templates, at most `max`.
    fn connections(&mut self, cursor: Option<Cursor>, max: u32) -> ConnPage;
    /// Connection hash table size for the version line.
    fn conn_tab_size(&self) -> u32;
    /// What the workers run with from the next snapshot on: sync
    /// candidates for a master (`sync`), standby for a `backup_only`
    /// backup.
    fn set_sync(&mut self, sync: Option<fastpath::sync::SyncParams>, standby: bool);
    /// The VRRP instances' addresses (`snapshot::owned_addresses`) from
    /// the next snapshot on.
    fn set_owned(&mut self, _owned: Vec<(std::net::Ipv4Addr, u8)>) {}
    /// The overload defences the workers run with from the next snapshot.
    fn set_defence(&mut self, d: fastpath::defence::DefenceSettings);
    /// The defences as set, and each worker's state as it last published.
    fn defence(
        &self,
    ) -> (
        fastpath::defence::DefenceSettings,
        Vec<fastpath::defence::View>,
    );
}

fn no_sync() -> ApiError {
    ApiError::new(Errno::Other, "this ripvsd runs no sync thread")
}

/// The IPVS version ripvs behaves as; ipvsadm prints it in its version line.
pub const IPVS_VERSION: &str = "1.2.1";

pub struct Control<D: Dataplane> {
    dp: D,
    model: Model,
    stats: Tracker,
    config: PathBuf,
    health: Health,
    /// `None`: nothing is checked (tests of everything else).
    checker: Option<Checker>,
    /// `None`: no sync thread (tests of everything else).
    sync: Option<SyncAdmin>,
    /// The `[sync]` section and `backup_only` last applied.
    sync_conf: conf::Sync,
    backup_only: bool,
    /// `None`: no VRRP instance is configured.
    vrrp: Option<VrrpAdmin>,
    defence_watch: crate::defence::Watch,
}

impl<D: Dataplane> Control<D> {
    /// `model` is the table the data plane already runs (from
    /// [`crate::snapshot::build`]); `config` is the file `Reload` re-reads.
    pub fn new(dp: D, model: Model, config: impl Into<PathBuf>) -> Self {
        let mut c = Control {
            dp,
            model,
            stats: Tracker::new(),
            config: config.into(),
            health: Health::default(),
            checker: None,
            sync: None,
            sync_conf: conf::Sync::default(),
            backup_only: false,
            vrrp: None,
            defence_watch: Default::default(),
        };
        let svcs: Vec<u32> = c.model.services().map(|s| s.id).collect();
        let dests: Vec<u32> = c
            .model
            .services()
            .flat_map(|s| s.dests().map(|d| d.id))
            .collect();
        c.stats.boot(svcs, dests);
        c
    }

    /// Checks real servers: `health` is the state the table was built
    /// with (`model` from [`Health::desired`]), `checker` runs its checks.
    /// Without a checker, verdicts come only through [`Control::take_outcomes`].
    pub fn with_health(mut self, health: Health, checker: Option<Checker>) -> Self {
        if let Some(c) = &checker {
            c.set(health.targets());
        }
        self.health = health;
        self.checker = checker;
        self
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Takes in the checks decided since the last pass and makes the
    /// table follow any state change; returns the log lines (state
    /// changes and their effects) for the daemon to print. Never waits.
    pub fn health_pass(&mut self) -> Vec<String> {
        let outcomes: Vec<Outcome> = match &self.checker {
            Some(c) => c.results().collect(),
            None => Vec::new(),
        };
        self.take_outcomes(outcomes)
    }

    /// [`Control::health_pass`] for verdicts from elsewhere.
    pub fn take_outcomes(&mut self, outcomes: impl IntoIterator<Item = Outcome>) -> Vec<String> {
        let mut cmds = Vec::new();
        for o in outcomes {
            cmds.extend(self.health.record(o.id, o.verdict, o.at));
        }
        if !cmds.is_empty() {
            let before = self.model.clone();
            self.apply_health(&cmds);
            let sorry = self.health.sorry(&self.model);
            self.apply_health(&sorry);
            if let Err(e) = self.publish() {
                self.model = before;
                self.health
                    .note(format!("health: table not published: {}", e.detail));
            }
        }
        self.health.take_log()
    }

    /// Commands of the health checker's own making: each one that fails
    /// (an mh service already full, no ids left) is logged and skipped.
    fn apply_health(&mut self, cmds: &[Command]) {
        for c in cmds {
            if let Err(e) = self.model.apply(c) {
                self.health
                    .note(format!("health: {c:?} refused: {}", e.detail));
            }
        }
    }

    /// After an operator's change: weights to restore, servers no longer
    /// checked, sorry servers in or out.
    fn health_follow(&mut self) {
        let (cmds, dropped) = self.health.observe(&self.model);
        self.apply_health(&cmds);
        let sorry = self.health.sorry(&self.model);
        self.apply_health(&sorry);
        if let (true, Some(c)) = (dropped, &self.checker) {
            c.set(self.health.targets());
        }
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn dataplane(&self) -> &D {
        &self.dp
    }

    pub fn dataplane_mut(&mut self) -> &mut D {
        &mut self.dp
    }

    fn sync_stats(&mut self) {
        let cores = self.dp.cores();
        let svcs: Vec<u32> = self.model.services().map(|s| s.id).collect();
        let dests: Vec<u32> = self
            .model
            .services()
            .flat_map(|s| s.dests().map(|d| d.id))
            .collect();
        self.stats.sync(&cores, svcs, dests);
    }

    /// Periodic work, every second or so: the rate estimators (which run
    /// every 2 s of `now`) and freeing trashed ids nothing counts against.
    pub fn tick(&mut self, now: Instant) {
        let cores = self.dp.cores();
        self.stats.tick(&cores, now);
        self.model.collect_trash(&cores);
    }

    pub fn handle(&mut self, req: Request) -> Response {
        match req {
            Request::Apply(cmds) => Response::Applied(self.apply(&cmds)),
            Request::Info => Response::Info(Info {
                version: IPVS_VERSION.to_string(),
                conn_tab_size: self.dp.conn_tab_size(),
                daemon_version: env!("CARGO_PKG_VERSION").to_string(),
            }),
            Request::Services(key) => self.services(key.as_ref()),
            Request::Timeouts => {
                let (tcp, tcpfin, udp) = self.model.timeouts().listed();
                Response::Timeouts(ctrl_api::Timeouts { tcp, tcpfin, udp })
            }
            Request::Connections { cursor, max } => {
                Response::Connections(self.dp.connections(cursor, max))
            }
            Request::Reload => self.reload(),
            Request::Health(key) => match key {
                Some(k) if self.model.service(&k).is_none() => Response::Error(ApiError::new(
                    Errno::Esrch,
                    format!("no service {}", crate::model::key_label(&k)),
                )),
                _ => Response::Health(self.health.report(&self.model, key.as_ref())),
            },
            Request::StartDaemon(d) => self.sync_change(|s| s.start(&d)),
            Request::StopDaemon(role) => self.sync_change(|s| s.stop(role)),
            Request::SyncFull => match &self.sync {
                Some(s) => s
                    .sync_full()
                    .map_or_else(Response::Error, |_| Response::Done),
                None => Response::Error(no_sync()),
            },
            Request::Vrrp => Response::Vrrp(
                self.vrrp
                    .as_ref()
                    .map_or_else(Vec::new, |v| v.handle.info()),
            ),
            Request::Defence(set) => self.defence(&set),
            Request::Daemons => {
                Response::Daemons(self.sync.as_ref().map_or_else(Vec::new, |s| s.daemons()))
            }
        }
    }

    /// `--defence`: sets what `set` gives (all or none), then answers
    /// every value.
    fn defence(&mut self, set: &ctrl_api::DefenceSet) -> Response {
        let (cur, _) = self.dp.defence();
        let new = match crate::defence::apply(cur, set) {
            Ok(n) => n,
            Err(e) => return Response::Error(e),
        };
        if new != cur {
            self.dp.set_defence(new);
            if let Err(e) = self.publish() {
                self.dp.set_defence(cur);
                return Response::Error(e);
            }
        }
        let (cfg, views) = self.dp.defence();
        Response::Defence(crate::defence::info(cfg, &views))
    }

    /// A log line for each defence that switched on a worker since the
    /// last pass (the workers count every switch; this names them).
    pub fn defence_pass(&mut self) -> Vec<String> {
        let (_, views) = self.dp.defence();
        self.defence_watch.pass(&views)
    }

    /// Runs sync with `admin` (the daemon's thread), configured by `[sync]`
    /// and `backup_only`; returns what failed to start.
    pub fn with_sync(
        &mut self,
        admin: SyncAdmin,
        c: &conf::Sync,
        backup_only: bool,
    ) -> Vec<String> {
        self.sync = Some(admin);
        self.sync_configure(c, backup_only)
    }

    fn sync_configure(&mut self, c: &conf::Sync, backup_only: bool) -> Vec<String> {
        self.sync_conf = c.clone();
        self.backup_only = backup_only;
        let Some(s) = self.sync.as_mut() else {
            return Vec::new();
        };
        // Where a VRRP instance drives the roles, they are its to set.
        let mut c = c.clone();
        if let Some(master) = self.vrrp.as_ref().and_then(|v| {
            v.sync_instance.as_ref()?;
            Some(v.role_master)
        }) {
            c.master = master == Some(true);
            c.backup = master == Some(false);
        }
        let errors = s.configure(&c, backup_only);
        self.sync_follow();
        errors
    }

    /// Runs VRRP with `admin` (its thread already started).
    pub fn with_vrrp(&mut self, admin: VrrpAdmin) {
        self.vrrp = Some(admin);
    }

    /// Stops VRRP: a master sends its priority-0 advert on the way out.
    pub fn stop_vrrp(&mut self) {
        if let Some(v) = self.vrrp.as_mut() {
            v.handle.stop();
        }
    }

    /// Takes in what the VRRP thread did since the last pass: its log
    /// lines, and for the instance that drives sync, the role it now
    /// calls for and whether preemption waits for a full transfer.
    pub fn vrrp_pass(&mut self, now: Instant) -> Vec<String> {
        let Some(v) = self.vrrp.as_mut() else {
            return Vec::new();
        };
        let mut lines = v.handle.take_log();
        let moved = v.handle.take_transitions();
        if let Some(master) = v.role_change(&moved) {
            let name = v.sync_instance.clone().unwrap_or_default();
            let (c, b) = (self.sync_conf.clone(), self.backup_only);
            for e in self.sync_configure(&c, b) {
                lines.push(format!("vrrp {name}: sync: {e}"));
            }
            let role = if master { "master" } else { "backup" };
            lines.push(format!("vrrp {name}: sync role {role}"));
        }
        let daemons = self.sync.as_ref().map_or_else(Vec::new, |s| s.daemons());
        if let Some(v) = self.vrrp.as_mut() {
            v.follow_transfer(self.sync_conf.full_sync, &daemons, now);
        }
        lines
    }

    /// Lines the sync thread logged since the last call.
    pub fn sync_log(&self) -> Vec<String> {
        self.sync
            .as_ref()
            .map_or_else(Vec::new, |s| s.handle().take_log())
    }

    /// A daemon start or stop, then the workers follow.
    fn sync_change(&mut self, f: impl FnOnce(&mut SyncAdmin) -> Result<(), ApiError>) -> Response {
        let Some(s) = self.sync.as_mut() else {
            return Response::Error(no_sync());
        };
        match f(s) {
            Ok(()) => {
                self.sync_follow();
                Response::Done
            }
            Err(e) => Response::Error(e),
        }
    }

    /// Tells the workers whether to offer candidates and to stand by.
    fn sync_follow(&mut self) {
        let Some(s) = &self.sync else { return };
        let (params, standby) = s.worker_settings();
        self.dp.set_sync(params, standby);
        if let Err(e) = self.publish() {
            log::error!("sync: table not published: {}", e.detail);
        }
    }

    fn apply(&mut self, cmds: &[Command]) -> Vec<Result<(), ApiError>> {
        let before = self.model.clone();
        let mut changed = false;
        let mut out = Vec::with_capacity(cmds.len());
        for cmd in cmds {
            let r = self.model.apply(cmd);
            if r.is_ok() {
                match cmd {
                    Command::Zero(key) => self.zero(key.as_ref()),
                    _ => changed = true,
                }
            }
            out.push(r);
        }
        if changed {
            let health = self.health.clone();
            self.health_follow();
            // The model checked every command, so the table builds; if it
            // did not, the data plane keeps the table it has and the model
            // goes back to match it.
            if let Err(e) = self.publish() {
                self.model = before;
                self.health = health;
                return out.into_iter().map(|r| r.and(Err(e.clone()))).collect();
            }
        }
        out
    }

    fn publish(&mut self) -> Result<(), ApiError> {
        let table = self.model.to_table()?;
        self.sync_stats();
        self.dp.publish(table, self.model.timeouts());
        Ok(())
    }

    fn zero(&mut self, key: Option<&SvcKey>) {
        let cores = self.dp.cores();
        match key.and_then(|k| self.model.service(k)) {
            Some(s) => {
                let dests: Vec<u32> = s.dests().map(|d| d.id).collect();
                self.stats.zero(&cores, s.id, &dests);
            }
            None => self.stats.zero_all(&cores),
        }
    }

    fn services(&self, key: Option<&SvcKey>) -> Response {
        let cores = self.dp.cores();
        let info = |s: &crate::model::SvcEntry| {
            let (stats, rates) = self.stats.service(&cores, s.id);
            ServiceInfo {
                spec: s.spec.clone(),
                stats,
                rates,
                dests: s
                    .dests()
                    .map(|d| {
                        let (stats, rates) = self.stats.dest(&cores, d.id);
                        let (active, inactive, persist) = stats::dest_gauges(&cores, d.id);
                        DestInfo {
                            spec: d.spec.clone(),
                            active,
                            inactive,
                            persist,
                            stats,
                            rates,
                        }
                    })
                    .collect(),
            }
        };
        match key {
            None => Response::Services(self.model.services().map(info).collect()),
            Some(k) => match self.model.service(k) {
                Some(s) => Response::Services(vec![info(s)]),
                None => Response::Error(ApiError::new(
                    Errno::Esrch,
                    format!("no service {}", crate::model::key_label(k)),
                )),
            },
        }
    }

    fn reload(&mut self) -> Response {
        let cfg = match conf::load(&self.config) {
            Ok(c) => c,
            Err(e) => return Response::Error(ApiError::new(Errno::Other, e.to_string())),
        };
        // VRRP's thread, control link and virtual MACs are set up with the
        // daemon: a reload may change instances but not those.
        let vmacs = crate::snapshot::virtual_macs(&cfg);
        let refused = match &self.vrrp {
            None if !cfg.vrrp.is_empty() => {
                Some("[[vrrp]] instances added by a reload need a restart of ripvsd")
            }
            Some(v) if vmacs != v.vmacs => Some(
                "a change of use_vmac, or of the vrid, port or order of an instance using it, needs a restart of ripvsd",
            ),
            _ => None,
        };
        if let Some(why) = refused {
            return Response::Error(ApiError::new(Errno::Other, why));
        }
        let before = (self.model.clone(), self.health.clone());
        let defence_before = self.dp.defence().0;
        self.dp.set_defence(crate::snapshot::defence_settings(&cfg));
        // Servers that stay keep their health state, so the table is the
        // config as their states have it.
        self.health.reconfigure(&cfg, SystemTime::now());
        let reloaded = self.model.reload(&self.health.desired(&cfg)).and_then(|_| {
            let sorry = self.health.sorry(&self.model);
            self.apply_health(&sorry);
            self.dp.set_owned(crate::snapshot::owned_addresses(&cfg));
            // Published even when no command resulted: the mark rules
            // may have changed.
            self.publish()
        });
        match reloaded {
            Ok(()) => {
                if let Some(c) = &self.checker {
                    c.set(self.health.targets());
                }
                if let Some(v) = self.vrrp.as_mut() {
                    v.reconfigure(&cfg.vrrp);
                }
                for e in self.sync_configure(&cfg.sync, cfg.ipvs.backup_only) {
                    log::error!("reload: sync: {e}");
                    eprintln!("ripvsd: reload: sync: {e}");
                }
                Response::Reloaded
            }
            Err(e) => {
                (self.model, self.health) = before;
                self.dp.set_defence(defence_before);
                Response::Error(e)
            }
        }
    }
}

#[cfg(test)]
#[path = "control_tests.rs"]
mod tests;
