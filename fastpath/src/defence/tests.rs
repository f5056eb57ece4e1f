//! The mode machine and rates against the kernel's `update_defense_level`,
//! `ip_vs_todrop` and `todrop_entry`, case by case.

use super::drop_entry::{self, Rates, Scan, Verdict};
use super::*;
use crate::conn::{Conn, ConnKey, ConnTable, TICKS_PER_SEC};
use crate::proto::{sctp, tcp};
use core::net::Ipv4Addr;

const SHORT: Shortage = Shortage {
    avail: 10,
    amemthresh: 100,
};
const PLENTY: Shortage = Shortage {
    avail: 100,
    amemthresh: 100,
};

fn level(e: u8, p: u8, s: u8) -> Level {
    Level::new(DefenceSettings {
        drop_entry: e,
        drop_packet: p,
        secure_tcp: s,
        ..Default::default()
    })
}

#[test]
fn shortage_is_the_fill_above_the_threshold() {
    // 1000 slots, threshold 90 %: short once fewer than 100 are free.
    assert_eq!(
        Shortage::of(900, 1000, 900),
        Shortage {
            avail: 100,
            amemthresh: 100
        }
    );
    assert!(!Shortage::of(900, 1000, 900).short());
    assert!(Shortage::of(901, 1000, 900).short());
    // A threshold of 100 % never trips; 0 % always does until empty.
    assert!(!Shortage::of(1000, 1000, 1000).short());
    assert!(Shortage::of(1, 1000, 0).short());
    assert!(!Shortage::of(0, 1000, 0).short());
}

#[test]
fn drop_packet_rate_is_amemthresh_over_the_gap() {
    let rate = |avail| {
        let mut l = level(0, 1, 0);
        l.update(Shortage {
            avail,
            amemthresh: 100,
        });
        l.drop_rate()
    };
    assert_eq!(rate(100), 0, "not short: no drops");
    assert_eq!(rate(99), 100);
    assert_eq!(rate(90), 10);
    assert_eq!(rate(50), 2);
    assert_eq!(rate(49), 1, "integer division, as the kernel's");
    assert_eq!(rate(0), 1, "a full table drops every new connection");
}

#[test]
fn the_automatic_modes_follow_the_shortage_both_ways() {
    for m in [1u8, 2] {
        let mut l = level(m, m, m);
        let ch = l.update(SHORT);
        assert_eq!(l.values(), (2, 2, 2), "mode {m}: short → 2");
        assert!(l.dropentry() && l.secure() && l.drop_rate() == 1);
        if m == 1 {
            assert_eq!(
                ch,
                Changes {
                    drop_entry: Some(true),
                    drop_packet: Some(true),
                    secure_tcp: Some(true)
                }
            );
        }
        // Stays on while short; nothing switches.
        assert_eq!(l.update(SHORT), Changes::default());
        let ch = l.update(PLENTY);
        assert_eq!(l.values(), (1, 1, 1), "mode {m}: recovered → 1");
        assert!(!l.dropentry() && !l.secure() && l.drop_rate() == 0);
        assert_eq!(
            ch,
            Changes {
                drop_entry: Some(false),
                drop_packet: Some(false),
                secure_tcp: Some(false)
            }
        );
    }
}

#[test]
fn modes_0_and_3_ignore_the_shortage() {
    let mut off = level(0, 0, 0);
    let mut on = level(3, 3, 3);
    for s in [SHORT, PLENTY, SHORT] {
        off.update(s);
        on.update(s);
        assert_eq!(off.values(), (0, 0, 0));
        assert!(!off.dropentry() && !off.secure() && off.drop_rate() == 0);
        assert_eq!(on.values(), (3, 3, 3));
        assert!(on.dropentry() && on.secure());
        assert_eq!(on.drop_rate(), DEFAULT_AM_DROPRATE, "mode 3: am_droprate");
    }
}

#[test]
fn a_write_takes_the_new_value_and_leaves_the_others() {
    let mut l = level(1, 1, 0);
    l.update(SHORT);
    assert_eq!(l.values(), (2, 2, 0));
    // Only secure_tcp is written: drop_entry and drop_packet keep their 2.
    l.configure(DefenceSettings {
        drop_entry: 1,
        drop_packet: 1,
        secure_tcp: 3,
        ..Default::default()
    });
    assert_eq!(l.values(), (2, 2, 3));
    assert!(!l.secure(), "the switch happens at the evaluation");
    l.update(SHORT);
    assert!(l.secure());
    // Writing 0 turns a running defence off at once.
    l.configure(DefenceSettings {
        drop_entry: 0,
        drop_packet: 1,
        secure_tcp: 3,
        ..Default::default()
    });
    let ch = l.update(SHORT);
    assert_eq!(ch.drop_entry, Some(false));
    assert_eq!(l.values(), (0, 2, 3));
}

#[test]
fn todrop_drops_one_in_rate() {
    let mut l = level(0, 3, 0);
    l.configure(DefenceSettings {
        drop_packet: 3,
        am_droprate: 4,
        ..Default::default()
    });
    l.update(PLENTY);
    let v: Vec<bool> = (0..12).map(|_| l.todrop()).collect();
    // The kernel's counter starts at 0 in mode 3: the first goes.
    let t = true;
    let f = false;
    assert_eq!(v, [t, f, f, f, t, f, f, f, t, f, f, f]);
    // Automatic: the counter starts at the rate.
    let mut l = level(0, 1, 0);
    l.update(Shortage {
        avail: 50,
        amemthresh: 100,
    });
    let v: Vec<bool> = (0..6).map(|_| l.todrop()).collect();
    assert_eq!(v, [f, t, f, t, f, t]);
    let mut off = level(0, 0, 0);
    off.update(SHORT);
    assert!((0..100).all(|_| !off.todrop()));
}

#[test]
fn worst_of_two_tables_is_the_shorter() {
    let a = Shortage {
        avail: 50,
        amemthresh: 100,
    };
    let b = Shortage {
        avail: 1,
        amemthresh: 10,
    };
    assert_eq!(a.worst(b), b);
    assert_eq!(b.worst(a), b);
    assert_eq!(PLENTY.worst(a), a);
    assert_eq!(a.worst(PLENTY), a);
}

fn entry(proto: u8, state: u8, in_pkts: u16) -> Conn<Ipv4Addr> {
    let k = ConnKey::new(
        proto,
        Ipv4Addr::new(10, 0, 0, 2),
        1000,
        Ipv4Addr::new(10, 0, 0, 100),
        80,
    );
    let mut c = Conn::new(k, Ipv4Addr::new(10, 1, 0, 11), 80);
    c.state = state;
    c.in_pkts = in_pkts;
    c
}

#[test]
fn candidates_are_the_kernels() {
    use crate::wire::ipv4::{PROTO_SCTP, PROTO_TCP, PROTO_UDP};
    let tcp_verdicts: Vec<Verdict> = (0..tcp::NUM_STATES as u8)
        .map(|s| drop_entry::verdict(&entry(PROTO_TCP, s, 1)))
        .collect();
    use Verdict::*;
    // NO ES SS SR FW TW CL CW LA LI SA
    assert_eq!(
        tcp_verdicts,
        [Keep, Rated, Keep, Always, Keep, Keep, Keep, Keep, Keep, Keep, Always]
    );
    let sctp = |s: sctp::State| drop_entry::verdict(&entry(PROTO_SCTP, s as u8, 1));
    assert_eq!(sctp(sctp::State::Init1), Always);
    assert_eq!(sctp(sctp::State::Init), Always);
    assert_eq!(sctp(sctp::State::Established), Rated);
    assert_eq!(sctp(sctp::State::CookieEchoed), Keep);
    assert_eq!(sctp(sctp::State::ShutdownSent), Keep);
    assert_eq!(drop_entry::verdict(&entry(PROTO_UDP, 0, 1)), Rated);
    // An entry controlling others stays, whatever its state.
    let mut ctl = entry(PROTO_TCP, tcp::State::SynRecv as u8, 1);
    ctl.n_control = 1;
    assert_eq!(drop_entry::verdict(&ctl), Keep);
    assert!(!drop_entry::evictable(&ctl));
    assert!(drop_entry::evictable(&entry(
        PROTO_TCP,
        tcp::State::SynRecv as u8,
        1
    )));
    assert!(!drop_entry::evictable(&entry(
        PROTO_TCP,
        tcp::State::Established as u8,
        1
    )));
}

/// An ESTABLISHED entry with `pkts` packets, inserted at tick 0 with a
/// 900 s timeout, in `t`.
fn est(t: &mut ConnTable, port: u16, pkts: u16) -> crate::conn::ConnId {
    let k = ConnKey::new(
        6,
        Ipv4Addr::new(10, 0, 0, 2),
        port,
        Ipv4Addr::new(10, 0, 0, 100),
        80,
    );
    let mut c = Conn::new(k, Ipv4Addr::new(10, 1, 0, 11), 80);
    c.state = tcp::State::Established as u8;
    c.in_pkts = pkts;
    c.timeout = 900 * TICKS_PER_SEC;
    t.insert(c, 0).unwrap()
}

#[test]
fn rated_entries_go_every_kth_time_after_a_minute_idle() {
    let mut t = ConnTable::new(64, 1);
    let ids: Vec<_> = (0..=9).map(|k| est(&mut t, 1000 + k, k)).collect();
    let mut r = Rates::default();
    let minute = drop_entry::IDLE_TICKS;
    // Younger than a minute: never.
    for &id in &ids {
        assert!(!r.todrop(t.get(id).unwrap(), minute - 1));
    }
    // k packets: every k-th consideration drops (the first one too, as
    // the kernel's counters start at 0); 0 and 9 packets never.
    for (k, &id) in ids.iter().enumerate() {
        let c = *t.get(id).unwrap();
        let v: Vec<bool> = (0..8).map(|_| r.todrop(&c, minute)).collect();
        let want: Vec<bool> = (0..8).map(|i| (1..=8).contains(&k) && i % k == 0).collect();
        assert_eq!(v, want, "{k} packets");
    }
}

#[test]
fn the_scan_visits_a_32nd_of_the_buckets_a_second() {
    let mut s = Scan::new(7);
    s.start(3200);
    assert_eq!(s.left(), 100);
    let mut seen = Vec::new();
    s.next_buckets(3200, 60, |b| seen.push(b));
    s.next_buckets(3200, 60, |b| seen.push(b));
    s.next_buckets(3200, 60, |b| seen.push(b));
    assert_eq!(seen.len(), 100);
    assert!(seen.iter().all(|&b| b < 3200));
    // Random, not a run from one start: spread over the table.
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert!(sorted.len() > 90, "distinct buckets: {}", sorted.len());
    assert!(sorted[0] < 400 && sorted[sorted.len() - 1] > 2800);
    s.start(3200);
    s.stop();
    assert_eq!(s.left(), 0);
}

#[test]
fn published_values_round_trip() {
    let p = Published::default();
    let mut l = level(1, 1, 3);
    l.update(Shortage {
        avail: 75,
        amemthresh: 100,
    });
    p.publish(&l, 913, 1000);
    assert_eq!(
        p.view(),
        View {
            drop_entry: 2,
            drop_packet: 2,
            secure_tcp: 3,
            drop_rate: 4,
            conns: 913,
            capacity: 1000,
        }
    );
}
