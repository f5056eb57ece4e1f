//! When a master sends a connection to its backups: kernel IPVS's
//! `ip_vs_sync_conn_needed` (reference 8.2), run by the worker on the
//! entry it has just updated for an incoming packet.
//!
//! Two of the kernel's per-entry fields live in spare bits here (see
//! `conn::flags`): `old_state` becomes one bit, set whenever the state
//! changes and cleared when the entry is synced, which is what the
//! kernel's `state != old_state` asks except for a state that changes and
//! changes back between two syncs (no IPVS table has such a round trip
//! into a synced state); `sync_endtime`'s jiffies become 16-bit seconds
//! with the retries kept beside them.

use crate::conn::{flags, Conn, TICKS_PER_SEC};
use crate::proto::{sctp, tcp, Proto};
use core::net::Ipv4Addr;

/// The master's sysctls (`[sync]` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncParams {
    /// `sync_threshold`'s two values: the packet count at which an entry is
    /// first sent, and the period after which it is sent again (0: once).
    pub threshold: u16,
    pub period: u16,
    /// `sync_refresh_period`, seconds (0: off); below 2^15.
    pub refresh_period: u16,
    /// `sync_retries`, 0..=3.
    pub retries: u8,
    /// `sync_persist_mode`: connections under a template are not sent,
    /// only their templates.
    pub persist_mode: bool,
}

impl Default for SyncParams {
    fn default() -> Self {
        SyncParams {
            threshold: 3,
            period: 50,
            refresh_period: 0,
            retries: 0,
            persist_mode: false,
        }
    }
}

const TCP_SYNCED: u32 = 1 << tcp::State::Established as u32
    | 1 << tcp::State::FinWait as u32
    | 1 << tcp::State::Close as u32
    | 1 << tcp::State::CloseWait as u32
    | 1 << tcp::State::TimeWait as u32;

const SCTP_SYNCED: u32 = 1 << sctp::State::Established as u32
    | 1 << sctp::State::ShutdownSent as u32
    | 1 << sctp::State::ShutdownReceived as u32
    | 1 << sctp::State::ShutdownAckSent as u32
    | 1 << sctp::State::Closed as u32;

/// Whether connection `c`, whose incoming packet count is now `pkts`,
/// goes to the backups; `now_s` is the worker's clock in seconds. Updates
/// the entry's sync bookkeeping when it does (the kernel's `set:` label).
#[inline]
pub fn needed(p: &SyncParams, c: &mut Conn<Ipv4Addr>, pkts: u16, now_s: u32) -> bool {
    let timeout_s = c.timeout / TICKS_PER_SEC;
    let n = now_s.wrapping_add(timeout_s) as u16;
    let orig = c.sync_end;
    let changed = c.flags & flags::SYNC_STATE_CHANGED != 0;
    let force = if c.is_template() {
        false
    } else if p.persist_mode && c.control != crate::conn::NONE {
        return false;
    } else {
        let synced = match Proto::from_ip(c.proto()) {
            Some(Proto::Tcp) => Some(TCP_SYNCED),
            Some(Proto::Sctp) => Some(SCTP_SYNCED),
            _ => None,
        };
        match synced {
            Some(mask) => {
                if (1u32 << (c.state & 31)) & mask == 0 {
                    return false;
                }
                let established = match Proto::from_ip(c.proto()) {
                    Some(Proto::Tcp) => c.state == tcp::State::Established as u8,
                    _ => c.state == sctp::State::Established as u8,
                };
                if changed && !established {
                    return set(c, n, 0);
                }
                changed
            }
            // UDP and the rest: one state, nothing forced.
            None => false,
        }
    };
    let mut retries = 0;
    let refresh = p.refresh_period as u32;
    if refresh > 0 {
        let diff = n.wrapping_sub(orig) as i16 as i32;
        let min_diff = (timeout_s / 2).max(10);
        if diff.unsigned_abs() < refresh.min(min_diff) {
            let spent = ((c.flags & flags::SYNC_RETRIES) >> flags::SYNC_RETRIES_SHIFT) as u8;
            if spent >= p.retries {
                return false;
            }
            // No earlier than refresh/8 after the last sync, which was at
            // orig - timeout.
            let last = orig.wrapping_sub(timeout_s as u16);
            let since = (now_s as u16).wrapping_sub(last) as i16 as i32;
            if since < (refresh / 8) as i32 {
                return false;
            }
            retries = spent + 1;
        }
    }
    let period = p.period;
    if period > 0 {
        if !c.is_template() && pkts % period != p.threshold {
            return false;
        }
    } else if refresh == 0 && pkts != p.threshold {
        return false;
    }
    set(c, n, retries) || force
}

#[inline]
fn set(c: &mut Conn<Ipv4Addr>, end: u16, retries: u8) -> bool {
    c.sync_end = end;
    c.flags = (c.flags & !(flags::SYNC_STATE_CHANGED | flags::SYNC_RETRIES))
        | (retries as u16) << flags::SYNC_RETRIES_SHIFT;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::{ConnKey, TICKS_PER_SEC};

    fn conn(proto: u8, state: u8, timeout_s: u32) -> Conn<Ipv4Addr> {
        let k = ConnKey::new(
            proto,
            Ipv4Addr::new(192, 0, 2, 1),
            40000,
            Ipv4Addr::new(10, 0, 0, 100),
            80,
        );
        let mut c = Conn::new(k, Ipv4Addr::new(10, 1, 0, 1), 80);
        c.state = state;
        c.timeout = timeout_s * TICKS_PER_SEC;
        c
    }

    const ES: u8 = tcp::State::Established as u8;

    #[test]
    fn defaults_send_the_third_packet_and_every_fiftieth_after() {
        let p = SyncParams::default();
        let mut c = conn(6, ES, 900);
        let sent: Vec<u16> = (1..=160).filter(|&n| needed(&p, &mut c, n, 0)).collect();
        assert_eq!(sent, vec![3, 53, 103, 153]);
    }

    #[test]
    fn tcp_outside_the_synced_states_is_never_sent() {
        let p = SyncParams::default();
        for st in [0u8, 2, 3, 8, 9, 10] {
            let mut c = conn(6, st, 60);
            c.flags |= flags::SYNC_STATE_CHANGED;
            assert!(!needed(&p, &mut c, 3, 0), "state {st}");
        }
    }

    #[test]
    fn a_change_into_a_closing_state_is_forced_once() {
        let p = SyncParams::default();
        let mut c = conn(6, tcp::State::FinWait as u8, 120);
        c.flags |= flags::SYNC_STATE_CHANGED;
        assert!(needed(&p, &mut c, 17, 0), "forced at any count");
        assert_eq!(c.flags & flags::SYNC_STATE_CHANGED, 0);
        assert!(!needed(&p, &mut c, 18, 0), "then the count rules again");
        assert!(needed(&p, &mut c, 53, 0));
    }

    #[test]
    fn a_change_into_established_still_waits_for_the_count() {
        let p = SyncParams::default();
        let mut c = conn(6, ES, 900);
        c.flags |= flags::SYNC_STATE_CHANGED;
        assert!(!needed(&p, &mut c, 2, 0));
        assert!(needed(&p, &mut c, 3, 0));
    }

    #[test]
    fn udp_follows_the_count_alone() {
        let p = SyncParams::default();
        let mut c = conn(17, 0, 300);
        assert!(!needed(&p, &mut c, 2, 0));
        assert!(needed(&p, &mut c, 3, 0));
        assert!(needed(&p, &mut c, 103, 0));
    }

    #[test]
    fn persist_mode_leaves_controlled_entries_to_their_templates() {
        let p = SyncParams {
            persist_mode: true,
            ..SyncParams::default()
        };
        let mut c = conn(6, ES, 900);
        c.control = 0;
        assert!(!needed(&p, &mut c, 3, 0));
        c.control = crate::conn::NONE;
        assert!(needed(&p, &mut c, 3, 0));
    }

    #[test]
    fn period_zero_sends_only_at_the_threshold() {
        let p = SyncParams {
            period: 0,
            ..SyncParams::default()
        };
        let mut c = conn(6, ES, 900);
        let sent: Vec<u16> = (1..=200).filter(|&n| needed(&p, &mut c, n, 0)).collect();
        assert_eq!(sent, vec![3]);
    }

    #[test]
    fn refresh_period_resends_when_the_end_time_moves_and_retries_in_between() {
        // Refresh alone (period 0): every packet is a candidate, sent when
        // the end time moved by at least min(refresh, max(timeout/2, 10)).
        let p = SyncParams {
            period: 0,
            refresh_period: 60,
            retries: 2,
            ..SyncParams::default()
        };
        let mut c = conn(6, ES, 900);
        assert!(needed(&p, &mut c, 1, 1000), "first: end time unknown");
        assert_eq!(c.sync_end, 1900);
        // Within refresh/8 = 7 s of the last sync: nothing.
        assert!(!needed(&p, &mut c, 2, 1005));
        // After 7 s: a retry, then another, then no more.
        assert!(needed(&p, &mut c, 3, 1008));
        assert_eq!(
            (c.flags & flags::SYNC_RETRIES) >> flags::SYNC_RETRIES_SHIFT,
            1
        );
        assert!(needed(&p, &mut c, 4, 1020));
        assert!(!needed(&p, &mut c, 5, 1040), "retries spent");
        // Once the end time has moved 60 s, a normal refresh, retries reset.
        assert!(needed(&p, &mut c, 6, 1081));
        assert_eq!(c.flags & flags::SYNC_RETRIES, 0);
    }

    #[test]
    fn templates_skip_the_count_and_the_state_rules() {
        let p = SyncParams::default();
        let mut t = Conn::template(
            6,
            Ipv4Addr::new(192, 0, 2, 0),
            Ipv4Addr::new(10, 0, 0, 100),
            80,
            Ipv4Addr::new(10, 1, 0, 1),
            80,
        );
        t.timeout = 300 * TICKS_PER_SEC;
        assert!(needed(&p, &mut t, 1, 0));
        assert!(needed(&p, &mut t, 2, 0));
    }

    #[test]
    fn the_end_time_wraps_at_sixteen_bits() {
        let p = SyncParams {
            period: 0,
            refresh_period: 60,
            ..SyncParams::default()
        };
        let mut c = conn(6, ES, 900);
        assert!(needed(&p, &mut c, 1, 65_000));
        // 65_000 + 900 wraps; 20 s later the end time has moved 20 s only.
        assert!(!needed(&p, &mut c, 2, 65_020));
        assert!(needed(&p, &mut c, 3, 65_070));
    }
}
