//! Time: connections and templates whose timers ran out go, a bounded
//! number per call.

use super::{ticks, Ipvs};
use crate::conn;
use crate::proto;

impl Ipvs {
    /// Expires connections and templates whose time is up: bounded work
    /// per call, so a worker never stalls on a mass expiry.
    /// The overload defences run here too: evaluated once a second (and
    /// at the first tick after new settings), drop_entry's scan a share
    /// every tick.
    pub fn tick(&mut self, now: u64, stats: &crate::stats::WorkerStats) {
        let tick = (now / conn::TICK_MS as u64) as conn::Tick;
        if now >= self.next_defend {
            self.next_defend = now + 1000;
            self.defend(stats);
            self.scan_templates(stats);
        }
        self.scan_tick(now, tick, stats);
        let (shared, me, table) = (&self.shared, self.me, &self.table);
        self.conns.expire(tick, 4096, |_, c| {
            if c.n_control > 0 {
                return conn::ExpireAction::Rearm(ticks(proto::CONTROL_REARM_MS));
            }
            let active = c.flags & conn::flags::INACTIVE == 0;
            if let Some(d) = shared.cores[me].dests.get(c.dest as usize) {
                if active { &d.active } else { &d.inactive }.add(-1);
            }
            if let Some(svc) = table.by_id(c.svc) {
                if c.control != conn::NONE {
                    shared
                        .templates
                        .release(&Ipvs::tpl_key(svc, c.caddr(), c.proto(), c.vport));
                }
                shared.reevaluate(svc, c.dest, false);
            }
            conn::ExpireAction::Remove
        });
        let mine = &shared.cores[me];
        let syncing = self.settings.sync.is_some();
        let tx = &mut self.sync_tx;
        let rearm = proto::CONTROL_REARM_MS as u64;
        shared.templates.expire(
            now,
            &mut self.tpl_cursor,
            1,
            rearm,
            |t| {
                if let Some(d) = mine.dests.get(t.dest as usize) {
                    d.persist.add(-1);
                }
            },
            |k, t| {
                if let (true, Some(tx)) = (syncing, tx.as_mut()) {
                    tx.push(&crate::sync::SyncConn::template(k, t, rearm));
                }
            },
        );
    }
}
