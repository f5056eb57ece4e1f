//! What the control thread does with VRRP: it answers `--vrrp`, prints
//! the VRRP thread's log lines, and, for the instance that drives sync
//! (keepalived's `lvs_sync_daemon`), switches the sync roles as that
//! instance moves: the master role while it is MASTER, the backup role
//! otherwise. keepalived switches the same way rather than running both
//! roles: a director that received its own connections back from a peer
//! would overwrite live entries with older ones, and a backup that also
//! sends would double the group's traffic for nothing.
//!
//! While the backup role is taking its full transfer (`full_sync`),
//! preemption is held: a restarted director with the higher priority
//! takes the VIPs back only once it holds the connections the other one
//! carried, or after [`HOLD_MAX`] if the transfer never completes.

use super::instance::Transition;
use super::VrrpHandle;
use ctrl_api::{DaemonInfo, SyncRole, VrrpState};
use std::time::{Duration, Instant};

/// The longest preemption waits for a full transfer.
pub const HOLD_MAX: Duration = Duration::from_secs(60);

pub struct VrrpAdmin {
    pub handle: VrrpHandle,
    /// The instance whose state the sync roles follow.
    pub sync_instance: Option<String>,
    /// That instance's last state: `Some(true)` master.
    pub role_master: Option<bool>,
    /// The data plane's virtual MACs (`snapshot::virtual_macs`), fixed at
    /// start-up.
    pub vmacs: Vec<(usize, u8, fastpath::wire::MacAddr)>,
    hold: bool,
    backup_since: Option<Instant>,
}

impl VrrpAdmin {
    pub fn new(handle: VrrpHandle, cfg: &conf::Config) -> VrrpAdmin {
        VrrpAdmin {
            handle,
            sync_instance: sync_instance(&cfg.vrrp),
            role_master: None,
            vmacs: crate::snapshot::virtual_macs(cfg),
            hold: false,
            backup_since: None,
        }
    }

    /// After a reload.
    pub fn reconfigure(&mut self, cfg: &[conf::Vrrp]) {
        let s = sync_instance(cfg);
        if s != self.sync_instance {
            self.role_master = None;
        }
        self.sync_instance = s;
        self.handle.reconfigure(cfg);
    }

    /// The sync role the driving instance's latest move calls for, if it
    /// moved: `Some(true)` master, `Some(false)` backup.
    pub fn role_change(&mut self, moved: &[Transition]) -> Option<bool> {
        let name = self.sync_instance.as_ref()?;
        let t = moved.iter().rev().find(|t| &t.instance == name)?;
        // INIT is where a stopping director goes: its roles stop with it.
        if t.to == VrrpState::Init {
            return None;
        }
        let master = t.to == VrrpState::Master;
        if self.role_master == Some(master) {
            return None;
        }
        self.role_master = Some(master);
        self.backup_since = (!master).then(Instant::now);
        Some(master)
    }

    /// Holds or releases preemption by the state of the backup role's
    /// full transfer.
    pub fn follow_transfer(&mut self, full_sync: bool, daemons: &[DaemonInfo], now: Instant) {
        let transferring = full_sync
            && self.role_master == Some(false)
            && self
                .backup_since
                .is_some_and(|t| now.duration_since(t) < HOLD_MAX)
            && daemons
                .iter()
                .any(|d| d.role == SyncRole::Backup && !d.stats.full_sync.complete);
        if transferring != self.hold {
            self.hold = transferring;
            self.handle.hold_preempt(transferring);
        }
    }
}

fn sync_instance(cfg: &[conf::Vrrp]) -> Option<String> {
    cfg.iter().find(|v| v.sync_daemon).map(|v| v.name.clone())
}
