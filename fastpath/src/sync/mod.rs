//! Connection sync, the data plane's half (the daemon itself, with its
//! sockets and wire format, is `ctrl::sync`).
//!
//! A master's worker offers each connection it forwards an incoming
//! packet for to [`rules::needed`] (IPVS's rules, reference 8.2); what
//! passes goes onto the worker's [`ring`] as a [`SyncConn`], which the
//! sync thread batches into messages. A full ring loses the record and
//! counts it: the worker never waits. A backup's sync thread hands
//! received records ([`Synced`]) to the worker that owns each client
//! through its sync mailbox ([`post`]); the worker's engine installs them
//! in its own table (`ipvs/synced.rs`,
//! [`Ipvs::install_synced`](crate::ipvs::Ipvs::install_synced)).
//!
//! This module holds what both sides share and nothing of the engine's:
//! the records, the ring, the rules, the mailbox. The engine imports it,
//! never the other way round.

pub mod post;
pub mod record;
pub mod ring;
pub mod rules;

pub use post::{sync_post, Installed, Refused, SyncBox, SyncMail, SyncPost, SyncReply};
pub use record::{SyncConn, Synced};
pub use ring::{ring, Consumer, Producer};
pub use rules::SyncParams;

use crate::conn::{self, flags, Conn};
use core::net::Ipv4Addr;

/// Records a worker's ring holds: 40 bytes each, 1.3 MB per worker, over
/// 100 ms of a million new connections a second.
pub const RING_RECORDS: usize = 32768;

/// Whether an entry with `flags` can send nothing at incoming count
/// `pkts`, whatever the rest of it holds, so that [`offer`] need not
/// run: it would push nothing and change nothing.
///
/// Almost every packet is none of sync's business: with the default
/// `threshold`/`period` (3, 50), 49 packets in 50 of an entry that is
/// neither a template nor a one-packet entry, and whose state has not
/// changed since it was last synced. A worker decides that inline, in a
/// few instructions, from its copy of the entry; the rules run out of
/// line, so that the established path stays as short as without sync.
#[inline(always)]
pub fn quiet(p: &SyncParams, flags: u16, pkts: u16) -> bool {
    const LOUD: u16 = flags::TEMPLATE | flags::ONE_PACKET | flags::SYNC_STATE_CHANGED;
    if flags & LOUD != 0 {
        return false;
    }
    if p.period > 0 {
        pkts % p.period != p.threshold
    } else {
        p.refresh_period == 0 && pkts != p.threshold
    }
}

/// What a master worker does for a connection after an incoming packet
/// that [`quiet`] did not rule out: `pkts` is the entry's incoming count,
/// `now_s` the worker's clock in seconds.
#[inline]
pub fn offer(p: &SyncParams, tx: &mut Producer, c: &mut Conn<Ipv4Addr>, pkts: u16, now_s: u32) {
    let controlled = c.control != conn::NONE;
    if c.flags & flags::ONE_PACKET != 0 {
        // One-packet entries are never synced, only their templates.
        if controlled {
            tx.push(&template_only(c));
        }
        return;
    }
    if rules::needed(p, c, pkts, now_s) {
        tx.push(&SyncConn::of(c));
    } else if controlled && count_due(p, pkts) {
        // IPVS considers the template on every packet of its connections
        // (and, with the default period, sends it every time); ripvs
        // considers it when the count rule would send the connection,
        // which keeps a persistent client's template as fresh on the
        // backup without a record per packet. See the README.
        tx.push(&template_only(c));
    }
}

fn template_only(c: &Conn<Ipv4Addr>) -> SyncConn {
    SyncConn {
        template_only: true,
        ..SyncConn::of(c)
    }
}

#[inline]
fn count_due(p: &SyncParams, pkts: u16) -> bool {
    if p.period > 0 {
        pkts % p.period == p.threshold
    } else {
        pkts == p.threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::{ConnKey, TICKS_PER_SEC};
    use crate::proto::Proto;

    /// Whatever `quiet` rules out, `offer` would have done nothing with:
    /// for every kind of entry, parameter set and count.
    #[test]
    fn what_quiet_rules_out_offer_would_do_nothing_with() {
        let params = [(3, 50), (0, 1), (1, 7), (3, 0), (0, 0), (60, 50)]
            .into_iter()
            .flat_map(|(threshold, period)| {
                [(0, 0, false), (60, 2, false), (0, 0, true), (20, 1, true)].map(
                    move |(refresh_period, retries, persist_mode)| SyncParams {
                        threshold,
                        period,
                        refresh_period,
                        retries,
                        persist_mode,
                    },
                )
            });
        let (mut tx, mut rx) = ring(1 << 12);
        let (mut checked, mut quiet_ones) = (0u32, 0u32);
        for p in params {
            for proto in [6u8, 17, 132] {
                let states = Proto::from_ip(proto).unwrap().num_states();
                for state in 0..states {
                    for bits in 0..8u16 {
                        for control in [conn::NONE, 0] {
                            let k = ConnKey::new(
                                proto,
                                Ipv4Addr::new(192, 0, 2, 1),
                                40000,
                                Ipv4Addr::new(10, 0, 0, 100),
                                80,
                            );
                            let mut c = Conn::new(k, Ipv4Addr::new(10, 1, 0, 1), 80);
                            c.flags = flags::DROUTE
                                | [
                                    flags::TEMPLATE,
                                    flags::ONE_PACKET,
                                    flags::SYNC_STATE_CHANGED,
                                ]
                                .iter()
                                .enumerate()
                                .filter(|(i, _)| bits & 1 << i != 0)
                                .fold(0, |f, (_, b)| f | b);
                            c.state = state;
                            c.control = control;
                            c.timeout = 900 * TICKS_PER_SEC;
                            c.sync_end = 1200;
                            for pkts in (0..=110).chain([255, 256, 257, u16::MAX]) {
                                for now_s in [0, 900] {
                                    checked += 1;
                                    if !quiet(&p, c.flags, pkts) {
                                        continue;
                                    }
                                    quiet_ones += 1;
                                    let mut a = c;
                                    offer(&p, &mut tx, &mut a, pkts, now_s);
                                    assert_eq!(a, c, "{p:?} at {pkts}");
                                    assert_eq!(rx.pop(), None, "{p:?} {c:?} at {pkts}");
                                }
                            }
                        }
                    }
                }
            }
        }
        // One flag combination in eight can be quiet, and is at most counts.
        assert!(
            quiet_ones > checked / 20,
            "the shortcut is taken: {quiet_ones} of {checked}"
        );
        assert_eq!(tx.drops(), 0);
    }
}
