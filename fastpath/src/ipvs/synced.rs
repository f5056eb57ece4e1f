//! A backup's side: a record received from the master becomes (or
//! updates) an entry in the table of the worker that owns its client, as
//! kernel IPVS's `ip_vs_proc_conn` does (reference 8.5). The sync thread
//! routes each record to its owner through the worker's sync mailbox
//! ([`crate::sync::SyncMail::Install`]); the worker's engine installs it
//! here. Templates come through a worker too, though they go to the shared
//! template table: the real server's PersistConn is a per-core gauge with
//! one writer, and the worker that later expires the template takes it
//! down again.

use super::Ipvs;
use crate::conn::{self, flags, Conn, ConnKey, TICKS_PER_SEC};
use crate::persist::{SyncedTpl, Tpl, TplKey};
use crate::proto::Proto;
use crate::service::{Dest, Method, Service, ServiceTable};
use crate::sync::{Installed, Synced};
use core::net::Ipv4Addr;

/// The local real server a synced entry binds to (IPVS `ip_vs_find_dest`):
/// the service's server at `daddr:dport`; for a fwmark service that is not
/// NAT, its server at port 0 first, whose entries keep the packet's port.
fn find_dest(svc: &Service, daddr: Ipv4Addr, dport: u16) -> Option<&Dest> {
    let at = |port: u16| svc.dests.iter().find(|d| d.addr == daddr && d.port == port);
    if svc.fwmark.is_some() {
        if let Some(d) = at(0).filter(|d| d.method != Method::Nat) {
            return Some(d);
        }
    }
    at(dport)
}

/// The local service and real server of a record, if configured here.
fn bind<'t>(table: &'t ServiceTable, s: &Synced) -> Option<(&'t Service, Option<&'t Dest>)> {
    let r = &s.rec;
    let i = table.find_synced(s.fwmark, r.proto, r.vaddr, r.vport)?;
    let svc = table.get(i);
    Some((svc, find_dest(svc, r.daddr, r.dport)))
}

impl Ipvs {
    /// Installs a batch of synced connections (not templates) in this
    /// worker's table at `tick`.
    pub fn install_synced(&mut self, batch: &[Synced], tick: conn::Tick) -> Installed {
        let mut out = Installed::default();
        for s in batch {
            self.install_one(s, tick, &mut out);
        }
        out
    }

    fn install_one(&mut self, s: &Synced, tick: conn::Tick, out: &mut Installed) {
        let r = &s.rec;
        if r.is_template() {
            return self.install_template(s, tick, out);
        }
        let Some(p) = Proto::from_ip(r.proto) else {
            out.invalid += 1;
            return;
        };
        if r.state >= p.num_states() {
            out.invalid += 1;
            return;
        }
        let timeout = if r.timeout_s != 0 {
            r.timeout_s.min(conn::MAX_TIMEOUT / TICKS_PER_SEC) * TICKS_PER_SEC
        } else {
            // v0 carries no timeout: the local one for the state.
            self.timeouts.get(p, r.state).unwrap_or(180_000) / conn::TICK_MS
        };
        let mut fl = (r.flags & flags::BACKUP_MASK) | flags::SYNC;
        let key = ConnKey::new(r.proto, r.caddr, r.cport, r.vaddr, r.vport);
        let active = fl & flags::INACTIVE == 0;
        if let Some(id) = self.conns.lookup_in(&key) {
            let Some(c) = self.conns.get(id) else { return };
            if c.daddr != r.daddr || c.dport != r.dport {
                if !active {
                    out.stale += 1;
                    return;
                }
                // The master rescheduled the client: the old entry goes.
                self.unbind_synced(id);
                self.conns.remove(id);
            } else {
                let c = *c;
                if c.dest == conn::NONE {
                    // IPVS binds a server to an entry that had none.
                    self.bind_later(id, s);
                }
                let c = self.conns.get(id).copied().unwrap_or(c);
                self.update_synced(id, &c, fl, r.state, timeout, tick);
                out.updated += 1;
                return;
            }
        }
        let bound = bind(&self.table, s);
        let (svc_id, dest) = match bound {
            Some((svc, d)) => (svc.id, d),
            None => (conn::NONE, None),
        };
        if let Some(d) = dest {
            // A bound real server supplies the method, as in IPVS, and
            // with it NOOUTPUT (set for every method but NAT).
            fl = (fl & !(flags::FWD_MASK | flags::NOOUTPUT)) | d.method as u16;
            if d.method != Method::Nat {
                fl |= flags::NOOUTPUT;
            }
        }
        let mut c = Conn::new(key, r.daddr, r.dport);
        c.flags = fl;
        c.state = r.state;
        c.timeout = timeout;
        c.in_pkts = self.settings.sync.map_or(3, |p| p.threshold);
        c.svc = svc_id;
        c.dest = dest.map_or(conn::NONE, |d| d.id);
        match self.conns.insert(c, tick) {
            Ok(_) => {
                if let Some(d) = self.mine().dests.get(c.dest as usize) {
                    if active { &d.active } else { &d.inactive }.add(1);
                }
                out.created += 1;
            }
            Err(_) => out.full += 1,
        }
    }

    /// A synced template, into the shared table; its server counts it in
    /// PersistConn as one the scheduler made would.
    fn install_template(&mut self, s: &Synced, tick: conn::Tick, out: &mut Installed) {
        let r = &s.rec;
        let dest = bind(&self.table, s)
            .and_then(|(_, d)| d)
            .map_or(conn::NONE, |d| d.id);
        let timeout_s = if r.timeout_s == 0 {
            V0_TEMPLATE_TIMEOUT_S
        } else {
            r.timeout_s
        };
        let now_ms = tick as u64 * conn::TICK_MS as u64;
        let k = TplKey {
            proto: r.proto,
            snet: r.caddr,
            vaddr: r.vaddr,
            vport: r.vport,
        };
        let t = Tpl {
            dest,
            daddr: r.daddr,
            dport: r.dport,
            expires_ms: now_ms + timeout_s as u64 * 1000,
            n_control: 0,
            assured: r.state & conn::TPL_S_ASSURED != 0,
            sync_end_ms: 0,
            sync_retries: 0,
        };
        let persist = |id: u32, n: i64| {
            if let Some(d) = self.mine().dests.get(id as usize) {
                d.persist.add(n);
            }
        };
        match self.shared.templates.install_synced(k, t) {
            SyncedTpl::Created => {
                persist(dest, 1);
                out.created += 1;
            }
            SyncedTpl::Updated { old_dest } => {
                if old_dest != dest {
                    persist(old_dest, -1);
                    persist(dest, 1);
                }
                out.updated += 1;
            }
            SyncedTpl::Full => out.full += 1,
        }
    }

    /// An existing entry takes the record's activity, sequence flags,
    /// state and timeout; the timer restarts with the full timeout.
    fn update_synced(
        &mut self,
        id: conn::ConnId,
        old: &Conn<Ipv4Addr>,
        fl: u16,
        state: u8,
        timeout: conn::Tick,
        tick: conn::Tick,
    ) {
        let was_active = old.flags & flags::INACTIVE == 0;
        let now_active = fl & flags::INACTIVE == 0;
        if was_active != now_active {
            if let Some(d) = self.mine().dests.get(old.dest as usize) {
                d.active.add(if now_active { 1 } else { -1 });
                d.inactive.add(if now_active { -1 } else { 1 });
            }
        }
        let upd = flags::INACTIVE | flags::IN_SEQ | flags::OUT_SEQ;
        let threshold = self.settings.sync.map_or(3, |p| p.threshold);
        if let Some(c) = self.conns.get_mut(id) {
            // The state is the master's now: nothing changed since a sync.
            c.flags = (c.flags & !(upd | flags::SYNC_STATE_CHANGED)) | (fl & upd);
            c.state = state;
            c.timeout = timeout;
            c.in_pkts = threshold;
        }
        self.conns.touch(id, tick);
    }

    /// Binds entry `id`, synced before its server was configured here, to
    /// the server now in the table; it takes the server's method and is
    /// counted against it.
    fn bind_later(&mut self, id: conn::ConnId, s: &Synced) {
        let Some((svc, Some(d))) = bind(&self.table, s) else {
            return;
        };
        let (svc_id, dest_id, method, nat) = (svc.id, d.id, d.method, d.method == Method::Nat);
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        c.svc = svc_id;
        c.dest = dest_id;
        c.flags = (c.flags & !(flags::FWD_MASK | flags::NOOUTPUT)) | method as u16;
        if !nat {
            c.flags |= flags::NOOUTPUT;
        }
        let active = c.flags & flags::INACTIVE == 0;
        if let Some(d) = self.mine().dests.get(dest_id as usize) {
            if active { &d.active } else { &d.inactive }.add(1);
        }
    }

    /// Undoes the counts of an entry that a synced one replaces (it may
    /// be one this director scheduled itself, under a template).
    fn unbind_synced(&mut self, id: conn::ConnId) {
        let Some(c) = self.conns.get(id) else { return };
        let active = c.flags & flags::INACTIVE == 0;
        if let Some(d) = self.mine().dests.get(c.dest as usize) {
            if active { &d.active } else { &d.inactive }.add(-1);
        }
        if let Some(svc) = self.table.by_id(c.svc) {
            if c.control != conn::NONE {
                let k = Ipvs::tpl_key(svc, c.caddr(), c.proto(), c.vport);
                self.shared.templates.release(&k);
            }
            self.shared.reevaluate(svc, c.dest, false);
        }
    }
}

/// The timeout of a template from a v0 message, which carries none (IPVS:
/// 3 minutes).
const V0_TEMPLATE_TIMEOUT_S: u32 = 180;
