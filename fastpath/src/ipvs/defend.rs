//! The defences in the engine ([`crate::defence`] holds their rules): the
//! once-a-second evaluation on this worker's tables, drop_entry's scan and
//! its room-making for a full table. drop_packet is one call in
//! `schedule.rs`, secure_tcp one argument in `state.rs`.

use super::Ipvs;
use crate::conn::{self, ConnId};
use crate::defence::drop_entry::{self, Verdict};
use crate::defence::{Changes, Shortage};
use crate::stats::{Event, WorkerStats};
use arrayvec::ArrayVec;

/// Slots a full table looks through for an entry to give up: plenty in a
/// table a flood filled, and a bounded, sequential walk when there is
/// none (a table of established connections).
const ROOM_SLOTS: u32 = 64;

/// Entries of one bucket the scan considers per visit; chains are about
/// one long at the table's load factor, longer only under a hash attack,
/// which the seeded hash rules out.
const CHAIN_MAX: usize = 16;

impl Ipvs {
    /// The shortage of this worker's connection table and of the shared
    /// template table (`templates`: its fill, read once a second).
    fn shortage(&self, templates: usize) -> Shortage {
        let p = self.defence.settings().threshold_permille;
        let conns = Shortage::of(self.conns.len(), self.conns.capacity(), p);
        let tpls = Shortage::of(templates, self.shared.templates.capacity(), p);
        conns.worst(tpls)
    }

    /// Evaluates the defences (once a second, and after new settings),
    /// publishes them for the control thread and counts what switched.
    pub(super) fn defend(&mut self, stats: &WorkerStats) {
        let templates = self.shared.templates.len();
        let s = self.shortage(templates);
        let ch = self.defence.update(s);
        self.shared.defence[self.me].publish(
            &self.defence,
            self.conns.len(),
            self.conns.capacity(),
        );
        count_changes(stats, ch);
        if self.defence.dropentry() {
            self.scan.start(self.conns.buckets());
        } else {
            self.scan.stop();
        }
    }

    /// A tick's share of drop_entry's scan (the second's buckets spread
    /// over its ticks), and the template table's share on worker 0.
    pub(super) fn scan_tick(&mut self, now: u64, tick: conn::Tick, stats: &WorkerStats) {
        if self.scan.left() == 0 {
            return;
        }
        let per_tick = (self.conns.buckets() >> 5)
            .div_ceil(crate::defence::drop_entry::TICKS_PER_SCAN)
            .max(1);
        let buckets = self.conns.buckets();
        let mut victims: ArrayVec<ConnId, CHAIN_MAX> = ArrayVec::new();
        let mut scan = core::mem::replace(&mut self.scan, drop_entry::Scan::new(0));
        scan.next_buckets(buckets, per_tick, |b| {
            victims.clear();
            self.conns.bucket(b, |id, c| {
                let drop = match drop_entry::verdict(c) {
                    Verdict::Keep => false,
                    Verdict::Always => true,
                    Verdict::Rated => self.rates.todrop(c, tick),
                };
                if drop {
                    let _ = victims.try_push(id);
                }
            });
            for &id in &victims {
                self.drop_conn(id, now);
                stats.event(Event::DropEntryDropped);
            }
        });
        self.scan = scan;
    }

    /// The template table's share of drop_entry: 1/32 of its shards a
    /// second, on worker 0 only (the table is shared), dropping templates
    /// that control nothing and were never assured.
    pub(super) fn scan_templates(&mut self, stats: &WorkerStats) {
        if self.me != 0 || !self.defence.dropentry() {
            return;
        }
        let mine = &self.shared.cores[self.me];
        let n = self
            .shared
            .templates
            .drop_unassured(&mut self.tpl_scan, |t| {
                if let Some(d) = mine.dests.get(t.dest as usize) {
                    d.persist.add(-1);
                }
            });
        stats.event_n(Event::DropEntryDropped, n as u64);
    }

    /// Removes a connection the defences chose, settling its counts as an
    /// expiry would, and its template too if it now controls nothing (the
    /// kernel deletes `cp->control` with the entry).
    fn drop_conn(&mut self, id: ConnId, now: u64) {
        let Some(c) = self.conns.get(id).copied() else {
            return;
        };
        self.unbind(id, now);
        self.conns.remove(id);
        if c.control != conn::NONE {
            if let Some(svc) = self.table.by_id(c.svc) {
                let k = Ipvs::tpl_key(svc, c.caddr(), c.proto(), c.vport);
                let mine = &self.shared.cores[self.me];
                self.shared.templates.drop_if_unused(&k, |t| {
                    if let Some(d) = mine.dests.get(t.dest as usize) {
                        d.persist.add(-1);
                    }
                });
            }
        }
    }

    /// The table is full and drop_entry is on: gives up the first
    /// half-open entry the eviction hand reaches, so the new connection
    /// can be stored. False if the next few slots hold none.
    ///
    /// The hand walks the slots in order and the new entry takes the slot
    /// just freed, behind the hand, so under a flood the table is given up
    /// oldest first, as a queue: an entry is only taken once the hand has
    /// been round the whole table since it arrived. A legitimate client's
    /// entry is half-open only for its handshake's round trip, far less
    /// than the table takes to turn over (a second for a 20,000-entry
    /// table under a 20,000-SYN/s flood), so it is not given up; taking
    /// a candidate at random would give up handshakes at the rate the
    /// flood arrives. The walk is sequential memory, a few lines a call.
    pub(super) fn make_room(&mut self, now: u64) -> bool {
        let slots = self.conns.capacity().max(1) as u32;
        let mut at = self.hand % slots;
        for _ in 0..ROOM_SLOTS.min(slots) {
            let id = ConnId(at);
            at = (at + 1) % slots;
            if self.conns.get(id).is_some_and(drop_entry::evictable) {
                self.hand = at;
                self.drop_conn(id, now);
                return true;
            }
        }
        self.hand = at;
        false
    }
}

fn count_changes(stats: &WorkerStats, ch: Changes) {
    let pairs = [
        (ch.drop_entry, Event::DropEntryOn, Event::DropEntryOff),
        (ch.drop_packet, Event::DropPacketOn, Event::DropPacketOff),
        (ch.secure_tcp, Event::SecureTcpOn, Event::SecureTcpOff),
    ];
    for (c, on, off) in pairs {
        match c {
            Some(true) => stats.event(on),
            Some(false) => stats.event(off),
            None => {}
        }
    }
}
