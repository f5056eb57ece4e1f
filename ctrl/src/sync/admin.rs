//! What the control thread does with sync: `--start-daemon` and
//! `--stop-daemon` with the kernel's defaults and clamps (reference 8.1),
//! the `[sync]` section at start and on reload, and what the workers must
//! be told when a role starts or stops (a master wants candidates; a
//! backup with `backup_only` keeps the director on standby).

use super::backup::BackupConfig;
use super::codec::{Version, MAX_MSG};
use super::daemon::{Role, SyncHandle};
use super::master::MasterConfig;
use super::{socket, Channel};
use ctrl_api::{ApiError, DaemonConfig, DaemonInfo, Errno, SyncRole};
use fastpath::sync::SyncParams;
use std::net::{IpAddr, Ipv4Addr};

/// IPv4 and UDP headers: the kernel's `hlen` for an IPv4 group.
const HLEN: u16 = 28;

pub struct SyncAdmin {
    handle: SyncHandle,
    conf: conf::Sync,
    backup_only: bool,
    master: bool,
    backup: bool,
}

impl SyncAdmin {
    pub fn new(handle: SyncHandle) -> SyncAdmin {
        SyncAdmin {
            handle,
            conf: conf::Sync::default(),
            backup_only: false,
            master: false,
            backup: false,
        }
    }

    pub fn handle(&self) -> &SyncHandle {
        &self.handle
    }

    /// The sysctls a master runs with.
    pub fn params(&self) -> SyncParams {
        let c = &self.conf;
        SyncParams {
            threshold: c.threshold.min(u16::MAX as u32) as u16,
            period: c.period.min(u16::MAX as u32) as u16,
            refresh_period: c.refresh_period.min(i16::MAX as u32) as u16,
            retries: c.retries.min(3),
            persist_mode: c.persist_mode,
        }
    }

    /// What the workers are to run with: candidates while a master runs;
    /// standby while a backup runs under `backup_only`.
    pub fn worker_settings(&self) -> (Option<SyncParams>, bool) {
        (
            self.master.then(|| self.params()),
            self.backup_only && self.backup,
        )
    }

    /// `ipvsadm --start-daemon`.
    pub fn start(&mut self, d: &DaemonConfig) -> Result<(), ApiError> {
        let group = match d.group {
            None => Ipv4Addr::new(224, 0, 0, 81),
            Some(IpAddr::V4(g)) if g.is_multicast() => g,
            Some(IpAddr::V4(g)) => {
                return Err(ApiError::new(
                    Errno::Einval,
                    format!("{g} is not a multicast group"),
                ))
            }
            Some(IpAddr::V6(_)) => {
                return Err(ApiError::new(
                    Errno::Eafnosupport,
                    "ripvs syncs over IPv4 groups only",
                ))
            }
        };
        let port = d.port.unwrap_or(8848);
        let ttl = d.ttl.unwrap_or(1);
        if port == 0 || ttl == 0 {
            return Err(ApiError::new(
                Errno::Einval,
                "port and ttl must be non-zero",
            ));
        }
        let top = (MAX_MSG as u16).min(u16::MAX - HLEN);
        let role = match d.role {
            SyncRole::Master => Role::Master(MasterConfig {
                ch: Channel {
                    ifname: d.mcast_ifn.clone(),
                    syncid: d.syncid,
                    maxlen: d.maxlen.map_or(1500 - HLEN, |m| m.clamp(1, top)),
                    group,
                    port,
                    ttl,
                },
                version: if self.conf.version == 0 {
                    Version::V0
                } else {
                    Version::V1
                },
                params: self.params(),
            }),
            SyncRole::Backup => {
                let mtu = socket::mtu(&d.mcast_ifn).unwrap_or(1500);
                let dflt = (mtu.clamp(1500, 65535) as u16).saturating_sub(HLEN);
                Role::Backup(BackupConfig {
                    ch: Channel {
                        ifname: d.mcast_ifn.clone(),
                        syncid: d.syncid,
                        maxlen: d.maxlen.map_or(dflt, |m| m.clamp(1024, top)),
                        group,
                        port,
                        ttl,
                    },
                    full_sync: self.conf.full_sync,
                })
            }
        };
        self.handle.start(role)?;
        match d.role {
            SyncRole::Master => self.master = true,
            SyncRole::Backup => self.backup = true,
        }
        Ok(())
    }

    /// `ipvsadm --stop-daemon`.
    pub fn stop(&mut self, role: SyncRole) -> Result<(), ApiError> {
        self.handle.stop(role)?;
        match role {
            SyncRole::Master => self.master = false,
            SyncRole::Backup => self.backup = false,
        }
        Ok(())
    }

    pub fn daemons(&self) -> Vec<DaemonInfo> {
        self.handle.daemons()
    }

    pub fn sync_full(&self) -> Result<(), ApiError> {
        self.handle.sync_full()
    }

    /// `[sync]` and `backup_only` at start or after a reload: when the
    /// section changed, the roles it names are (re)started and those it
    /// no longer names stopped; roles an operator started by hand under
    /// an unchanged section are left alone. Returns what failed.
    pub fn configure(&mut self, c: &conf::Sync, backup_only: bool) -> Vec<String> {
        self.backup_only = backup_only;
        if *c == self.conf && (self.master || !c.master) && (self.backup || !c.backup) {
            return Vec::new();
        }
        let old = std::mem::replace(&mut self.conf, c.clone());
        let mut errors = Vec::new();
        for (role, was, want) in [
            (SyncRole::Master, old.master, c.master),
            (SyncRole::Backup, old.backup, c.backup),
        ] {
            let running = match role {
                SyncRole::Master => self.master,
                SyncRole::Backup => self.backup,
            };
            if running && (was || want) {
                if let Err(e) = self.stop(role) {
                    errors.push(e.detail);
                }
            }
            if want {
                let d = DaemonConfig {
                    role,
                    mcast_ifn: c.interface.clone().unwrap_or_default(),
                    syncid: c.syncid,
                    maxlen: c.maxlen,
                    group: Some(IpAddr::V4(c.group)),
                    port: Some(c.port),
                    ttl: Some(c.ttl),
                };
                if let Err(e) = self.start(&d) {
                    errors.push(e.detail);
                }
            }
        }
        errors
    }
}

/// The sync daemons' figures for the final counters at stop, one
/// `sync ROLE NAME N` line each, as the workers' `drop`/`event` lines.
pub fn final_counters(daemons: &[DaemonInfo]) -> String {
    let mut out = String::new();
    for d in daemons {
        let role = match d.role {
            SyncRole::Master => "master",
            SyncRole::Backup => "backup",
        };
        let s = &d.stats;
        let mut line = |name: &str, n: u64| out.push_str(&format!("sync {role} {name} {n}\n"));
        line("messages", s.messages);
        line("records", s.records);
        line("bytes", s.bytes);
        if d.role == SyncRole::Backup {
            line("installed", s.installed);
        }
        line("send_errors", s.send_errors);
        for (w, n) in s.ring_drops.iter().enumerate() {
            line(&format!("ring_drops_worker{w}"), *n);
        }
        for (why, n) in &s.rejected {
            line(&format!("rejected_{why}"), *n);
        }
        line("full_transfers", s.full_sync.transfers);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctrl_api::SyncStats;

    #[test]
    fn final_counters_name_each_role_and_reason() {
        let mut stats = SyncStats {
            messages: 3,
            records: 40,
            bytes: 1448,
            installed: 39,
            ..SyncStats::default()
        };
        stats.rejected.insert("state".into(), 1);
        let d = DaemonInfo {
            role: SyncRole::Backup,
            mcast_ifn: "rip-p0".into(),
            syncid: 0,
            maxlen: 1472,
            group: IpAddr::V4(Ipv4Addr::new(224, 0, 0, 81)),
            port: 8848,
            ttl: 1,
            stats,
        };
        assert_eq!(
            final_counters(&[d]),
            "sync backup messages 3\nsync backup records 40\nsync backup bytes 1448\n\
             sync backup installed 39\nsync backup send_errors 0\n\
             sync backup rejected_state 1\nsync backup full_transfers 0\n"
        );
    }
}
