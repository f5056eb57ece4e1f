//! Persistence templates (reference 4.5), shared by all workers.
//!
//! A client's connections are owned by the core its endpoint hashes to, so
//! two connections from one client usually land on different cores; the
//! template that sends both to the same real server must be visible to
//! every core. Templates are only touched when a persistent service opens
//! a connection and when one closes, never per packet, so a short lock per
//! shard is cheap (design section 3, as DPVS does). Shards are sized at
//! start-up; a full shard refuses new templates (the connection is then
//! scheduled without persistence and counted) instead of allocating.
//!
//! The engine ([`crate::ipvs`]) binds, releases and expires templates; a
//! master's sync records carry them to its backups ([`crate::sync`]), and a
//! backup's engine installs what it receives ([`Templates::install_synced`]).

use core::net::Ipv4Addr;
use hashbrown::HashMap;
use std::sync::{Mutex, PoisonError};

const SHARDS: usize = 64;

/// What a template is keyed on (reference 4.5's table): protocol (0 for
/// fwmark services), client network, VIP (or the mark), port (0 for port-0,
/// FTP and fwmark services).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TplKey {
    pub proto: u8,
    pub snet: Ipv4Addr,
    pub vaddr: Ipv4Addr,
    pub vport: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tpl {
    /// The real server's stable id, address and port.
    pub dest: u32,
    pub daddr: Ipv4Addr,
    pub dport: u16,
    pub expires_ms: u64,
    /// Live connections it controls, on any core.
    pub n_control: u32,
    pub assured: bool,
    /// When the template would expire as last sent to a backup, and the
    /// retries spent on it (sync's refresh rule, reference 8.2).
    pub sync_end_ms: u64,
    pub sync_retries: u8,
}

/// The outcome of [`Templates::bind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// An existing template's server; its timer restarted.
    Existing(Tpl),
    /// The scheduler chose; a new template now holds the choice.
    Created(Tpl),
    /// The scheduler found no server.
    NoDest,
    /// The scheduler chose, but the shard is full: no persistence for this
    /// connection.
    Unremembered(Tpl),
}

/// The outcome of [`Templates::install_synced`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncedTpl {
    Created,
    /// It existed, bound to `old_dest` (PersistConn moves if that changed).
    Updated {
        old_dest: u32,
    },
    /// The shard is full.
    Full,
}

pub struct Templates {
    shards: Box<[Mutex<HashMap<TplKey, Tpl>>]>,
    per_shard: usize,
}

impl Templates {
    pub fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        let shards = (0..SHARDS)
            .map(|_| Mutex::new(HashMap::with_capacity(per_shard * 2)))
            .collect();
        Templates { shards, per_shard }
    }

    fn shard(&self, k: &TplKey) -> &Mutex<HashMap<TplKey, Tpl>> {
        let h = k.snet.to_bits().wrapping_mul(0x9e37_79b1)
            ^ (k.vport as u32)
            ^ k.vaddr.to_bits().rotate_left(7);
        &self.shards[(h >> 26) as usize % SHARDS]
    }

    /// Finds the client network's template, or runs `schedule` and records
    /// its choice, for a new connection that the template will control.
    /// `valid` says whether an existing template's server may still be used
    /// (it exists, is available, and with expire_quiescent_template has a
    /// weight); an invalid template is replaced, as IPVS invalidates it and
    /// creates a fresh one.
    pub fn bind(
        &self,
        k: TplKey,
        now_ms: u64,
        timeout_ms: u64,
        valid: impl Fn(&Tpl) -> bool,
        schedule: impl FnOnce() -> Option<(u32, Ipv4Addr, u16)>,
    ) -> Bound {
        let mut m = self
            .shard(&k)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = m.get_mut(&k) {
            // A template past its time but still controlling connections is
            // alive (IPVS re-arms it); one with nothing left is gone.
            let alive = t.expires_ms > now_ms || t.n_control > 0;
            if alive && valid(t) {
                t.n_control += 1;
                t.expires_ms = now_ms + timeout_ms;
                return Bound::Existing(*t);
            }
        }
        let Some((dest, daddr, dport)) = schedule() else {
            return Bound::NoDest;
        };
        let t = Tpl {
            dest,
            daddr,
            dport,
            expires_ms: now_ms + timeout_ms,
            n_control: 1,
            assured: false,
            sync_end_ms: 0,
            sync_retries: 0,
        };
        if m.len() >= self.per_shard && !m.contains_key(&k) {
            return Bound::Unremembered(t);
        }
        // Connections still controlled by a replaced template keep their
        // count in the new one, so it lives as long as they do.
        let carried = m.get(&k).map_or(0, |old| old.n_control);
        m.insert(
            k,
            Tpl {
                n_control: t.n_control + carried,
                ..t
            },
        );
        Bound::Created(t)
    }

    /// A connection the template controlled has gone.
    pub fn release(&self, k: &TplKey) {
        let mut m = self.shard(k).lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = m.get_mut(k) {
            t.n_control = t.n_control.saturating_sub(1);
        }
    }

    /// A controlled connection was established (TCP) or answered (UDP).
    pub fn assure(&self, k: &TplKey) {
        let mut m = self.shard(k).lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = m.get_mut(k) {
            t.assured = true;
        }
    }

    /// Removes templates whose time is up and that control nothing, shard
    /// by shard starting at `*cursor`, at most `shards` shards per call;
    /// `gone` hears each removed template (to update PersistConn). A
    /// template whose time is up but that still controls connections
    /// stays until they have gone, as before; `rearmed` hears it whenever
    /// a backup's copy (sent for `resync_ms`, IPVS's 60 s re-arm) would
    /// expire within half of that, so a master keeps the backup's copy
    /// alive as long as the connections it holds. Its own expiry is not
    /// pushed on: IPVS re-arms the template itself for 60 s, which keeps
    /// a client on its server a minute past its last connection; ripvs
    /// lets the scheduler choose again as soon as the timeout and the
    /// connections are over (see the README).
    pub fn expire(
        &self,
        now_ms: u64,
        cursor: &mut usize,
        shards: usize,
        resync_ms: u64,
        mut gone: impl FnMut(&Tpl),
        mut rearmed: impl FnMut(&TplKey, &Tpl),
    ) {
        for _ in 0..shards.min(SHARDS) {
            let i = *cursor % SHARDS;
            *cursor = (i + 1) % SHARDS;
            let mut m = self.shards[i]
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            m.retain(|k, t| {
                if t.expires_ms > now_ms {
                    return true;
                }
                if t.n_control > 0 {
                    if now_ms + resync_ms / 2 >= t.sync_end_ms {
                        t.sync_end_ms = now_ms + resync_ms;
                        rearmed(k, t);
                    }
                    return true;
                }
                gone(t);
                false
            });
        }
    }

    /// A template received from a master (reference 8.5): created, or its
    /// server, timer and assured state updated. Connections this director
    /// scheduled under it keep counting in it.
    pub fn install_synced(&self, k: TplKey, t: Tpl) -> SyncedTpl {
        let mut m = self
            .shard(&k)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = m.get_mut(&k) {
            let old_dest = old.dest;
            *old = Tpl {
                n_control: old.n_control,
                ..t
            };
            return SyncedTpl::Updated { old_dest };
        }
        if m.len() >= self.per_shard {
            return SyncedTpl::Full;
        }
        m.insert(k, Tpl { n_control: 0, ..t });
        SyncedTpl::Created
    }

    /// Whether a master sends template `k` now, with `timeout_ms` its
    /// persistence timeout: IPVS's refresh rule for templates (they have
    /// no state or count rule), `refresh_ms` 0 meaning always. Returns the
    /// template when it is due, its sync time updated.
    pub fn sync_due(
        &self,
        k: &TplKey,
        now_ms: u64,
        timeout_ms: u64,
        refresh_ms: u64,
        retries: u8,
    ) -> Option<Tpl> {
        let mut m = self.shard(k).lock().unwrap_or_else(PoisonError::into_inner);
        let t = m.get_mut(k)?;
        let n = now_ms + timeout_ms;
        let mut spent = 0;
        if refresh_ms > 0 {
            let diff = n.abs_diff(t.sync_end_ms);
            if diff < refresh_ms.min((timeout_ms / 2).max(10_000)) {
                if t.sync_retries >= retries {
                    return None;
                }
                if now_ms < (t.sync_end_ms + refresh_ms / 8).saturating_sub(timeout_ms) {
                    return None;
                }
                spent = t.sync_retries + 1;
            }
        }
        t.sync_end_ms = n;
        t.sync_retries = spent;
        Some(*t)
    }

    /// Listing: calls `f` for every template of shard `shard` (one short
    /// lock), and returns the next shard to list, or `None` after the last.
    pub fn page(&self, shard: usize, mut f: impl FnMut(&TplKey, &Tpl)) -> Option<usize> {
        let m = self.shards.get(shard)?;
        for (k, t) in m.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            f(k, t);
        }
        (shard + 1 < SHARDS).then_some(shard + 1)
    }

    pub fn get(&self, k: &TplKey) -> Option<Tpl> {
        self.shard(k)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(k)
            .copied()
    }

    /// Templates the table holds at most (the shards' sizes summed).
    pub fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }

    /// drop_entry's share of the template table (reference 7): 1/32 of
    /// the shards a call, from `*cursor` on, removing the templates that
    /// control no connection and were never assured; `gone` hears each
    /// one. Returns how many went.
    pub fn drop_unassured(&self, cursor: &mut usize, mut gone: impl FnMut(&Tpl)) -> usize {
        let mut n = 0;
        for _ in 0..(SHARDS / 32).max(1) {
            let i = *cursor % SHARDS;
            *cursor = (i + 1) % SHARDS;
            let mut m = self.shards[i]
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            m.retain(|_, t| {
                let keep = t.n_control > 0 || t.assured;
                if !keep {
                    gone(t);
                    n += 1;
                }
                keep
            });
        }
        n
    }

    /// Removes template `k` if it controls no connection (drop_entry took
    /// its last one); `gone` hears it.
    pub fn drop_if_unused(&self, k: &TplKey, gone: impl FnOnce(&Tpl)) {
        let mut m = self.shard(k).lock().unwrap_or_else(PoisonError::into_inner);
        if m.get(k).is_some_and(|t| t.n_control == 0) {
            if let Some(t) = m.remove(k) {
                gone(&t);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(snet: [u8; 4]) -> TplKey {
        TplKey {
            proto: 6,
            snet: Ipv4Addr::from(snet),
            vaddr: Ipv4Addr::new(10, 0, 0, 100),
            vport: 80,
        }
    }
    const RS1: (u32, Ipv4Addr, u16) = (1, Ipv4Addr::new(10, 1, 0, 1), 80);
    const RS2: (u32, Ipv4Addr, u16) = (2, Ipv4Addr::new(10, 1, 0, 2), 80);

    #[test]
    fn second_connection_reuses_and_restarts_the_template() {
        let t = Templates::new(128);
        let k = key([192, 168, 1, 0]);
        assert!(
            matches!(t.bind(k, 0, 300_000, |_| true, || Some(RS1)), Bound::Created(x) if x.dest == 1)
        );
        let b = t.bind(
            k,
            100_000,
            300_000,
            |_| true,
            || panic!("must not schedule"),
        );
        assert!(
            matches!(b, Bound::Existing(x) if x.dest == 1 && x.n_control == 2 && x.expires_ms == 400_000)
        );
    }

    #[test]
    fn expires_only_when_idle_and_past_its_time() {
        let t = Templates::new(128);
        let k = key([192, 168, 1, 0]);
        t.bind(k, 0, 1000, |_| true, || Some(RS1));
        let mut cursor = 0;
        let mut gone = Vec::new();
        let mut rearmed = Vec::new();
        let mut run = |now, gone: &mut Vec<u32>, rearmed: &mut Vec<u64>| {
            t.expire(
                now,
                &mut cursor,
                64,
                60_000,
                |x| gone.push(x.dest),
                |_, x| rearmed.push(x.sync_end_ms),
            )
        };
        run(5000, &mut gone, &mut rearmed);
        assert!(gone.is_empty(), "a controlled connection keeps it");
        assert_eq!(rearmed, vec![65_000], "the backup's copy lives a minute");
        run(30_000, &mut gone, &mut rearmed);
        assert_eq!(rearmed, vec![65_000], "not due again yet");
        run(35_000, &mut gone, &mut rearmed);
        assert_eq!(rearmed, vec![65_000, 95_000], "half a minute on");
        t.release(&k);
        run(36_000, &mut gone, &mut rearmed);
        assert_eq!(gone, vec![1]);
        assert!(t.is_empty());
        // After expiry the scheduler chooses again.
        assert!(
            matches!(t.bind(k, 37_000, 1000, |_| true, || Some(RS2)), Bound::Created(x) if x.dest == 2)
        );
    }

    #[test]
    fn an_invalid_template_is_replaced() {
        let t = Templates::new(128);
        let k = key([192, 168, 1, 0]);
        t.bind(k, 0, 1000, |_| true, || Some(RS1));
        let b = t.bind(k, 10, 1000, |x| x.dest != 1, || Some(RS2));
        assert!(matches!(b, Bound::Created(x) if x.dest == 2));
        assert_eq!(
            t.get(&k).unwrap().n_control,
            2,
            "the old connection still counts"
        );
        assert_eq!(t.bind(k, 20, 1000, |_| false, || None), Bound::NoDest);
    }

    #[test]
    fn a_synced_template_keeps_local_connections_counted() {
        let t = Templates::new(128);
        let k = key([192, 168, 1, 0]);
        t.bind(k, 0, 1000, |_| true, || Some(RS1));
        let synced = Tpl {
            dest: 2,
            daddr: RS2.1,
            dport: 80,
            expires_ms: 9000,
            n_control: 0,
            assured: true,
            sync_end_ms: 0,
            sync_retries: 0,
        };
        assert_eq!(
            t.install_synced(k, synced),
            SyncedTpl::Updated { old_dest: 1 }
        );
        let got = t.get(&k).unwrap();
        assert_eq!((got.dest, got.n_control, got.assured), (2, 1, true));
        let k2 = key([192, 168, 2, 0]);
        assert_eq!(
            t.install_synced(
                k2,
                Tpl {
                    n_control: 5,
                    ..synced
                }
            ),
            SyncedTpl::Created
        );
        assert_eq!(
            t.get(&k2).unwrap().n_control,
            0,
            "a backup controls nothing"
        );
    }

    #[test]
    fn templates_are_due_each_time_unless_a_refresh_period_holds_them() {
        let t = Templates::new(128);
        let k = key([192, 168, 1, 0]);
        t.bind(k, 0, 300_000, |_| true, || Some(RS1));
        assert!(t.sync_due(&k, 0, 300_000, 0, 0).is_some());
        assert!(t.sync_due(&k, 10, 300_000, 0, 0).is_some());
        // Refresh 60 s: not again until the end time moved 60 s.
        assert!(t.sync_due(&k, 30_000, 300_000, 60_000, 0).is_none());
        assert!(t.sync_due(&k, 61_000, 300_000, 60_000, 0).is_some());
        assert!(t.sync_due(&key([1, 2, 3, 0]), 0, 1, 0, 0).is_none());
    }

    #[test]
    fn a_full_shard_refuses_to_remember() {
        let t = Templates::new(1);
        let mut unremembered = 0;
        for i in 0..=255u8 {
            if let Bound::Unremembered(_) =
                t.bind(key([10, 9, i, 0]), 0, 1000, |_| true, || Some(RS1))
            {
                unremembered += 1;
            }
        }
        assert_eq!(t.len() + unremembered, 256);
        assert!(t.len() <= SHARDS);
    }
}
