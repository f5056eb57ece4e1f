//! The RFC 5798 §6 rules, one test each.

use super::*;

fn a(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn params(priority: u8, int_cs: u16) -> Params {
    Params {
        version: 3,
        priority,
        advert_int_cs: int_cs,
        preempt: true,
        preempt_delay_ms: 0,
        primary: a("10.0.0.1"),
    }
}

fn states(actions: &[Action]) -> Vec<(VrrpState, VrrpState)> {
    actions
        .iter()
        .filter_map(|x| match x {
            Action::Transition { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect()
}

fn adverts(actions: &[Action]) -> Vec<u8> {
    actions
        .iter()
        .filter_map(|x| match x {
            Action::Advertise(p) => Some(*p),
            _ => None,
        })
        .collect()
}

/// Skew_Time = ((256 − Priority) × Master_Adver_Interval) / 256 and
/// Master_Down_Interval = 3 × Master_Adver_Interval + Skew_Time, here
/// in ms: priority 100 at 1 s gives 609 ms of skew and 3609 ms; at
/// 100 ms, 60 and 360 (integer ms, rounded down).
#[test]
fn skew_and_master_down_interval_follow_priority_and_interval() {
    let m = Machine::new(params(100, 100));
    assert_eq!((m.skew_ms(), m.master_down_ms()), (609, 3609));
    let m = Machine::new(params(100, 10));
    assert_eq!((m.skew_ms(), m.master_down_ms()), (60, 360));
    let m = Machine::new(params(254, 100));
    assert_eq!((m.skew_ms(), m.master_down_ms()), (7, 3007));
    // v2: the skew is a fraction of a second whatever the interval.
    let mut p = params(100, 300);
    p.version = 2;
    let m = Machine::new(p);
    assert_eq!((m.skew_ms(), m.master_down_ms()), (609, 9609));
}

/// §6.4.1: priority 255 starts as master and advertises at once; any
/// other starts as backup with the master-down timer running (keepalived
/// 2.2 does the same with `state MASTER`, so the config's `state` changes
/// nothing here).
#[test]
fn initial_state_depends_on_ownership() {
    let mut m = Machine::new(params(255, 100));
    let out = m.start(0);
    assert_eq!(adverts(&out), [255]);
    assert_eq!(states(&out), [(VrrpState::Init, VrrpState::Master)]);
    assert_eq!(m.deadline(), Some(1000), "the next advert");

    let mut m = Machine::new(params(100, 100));
    let out = m.start(0);
    assert!(adverts(&out).is_empty());
    assert_eq!(states(&out), [(VrrpState::Init, VrrpState::Backup)]);
    assert_eq!(m.deadline(), Some(3609));
}

/// A backup whose master falls silent takes over when the master-down
/// timer fires, not before; then advertises every interval.
#[test]
fn master_down_timer_makes_a_backup_master() {
    let mut m = Machine::new(params(100, 10));
    m.start(0);
    m.advert(100, a("10.0.0.2"), 150, 10);
    assert_eq!(m.master(), Some((a("10.0.0.2"), 150)));
    assert!(
        m.tick(459).is_empty(),
        "360 ms after the last advert, not yet"
    );
    let out = m.tick(460);
    assert_eq!(adverts(&out), [100]);
    assert_eq!(states(&out), [(VrrpState::Backup, VrrpState::Master)]);
    assert_eq!(m.deadline(), Some(560));
    assert_eq!(adverts(&m.tick(560)), [100]);
    assert_eq!(m.deadline(), Some(660));
    // A stalled thread does not catch up with a burst.
    assert_eq!(adverts(&m.tick(2000)), [100]);
    assert_eq!(m.deadline(), Some(2100));
}

/// v3 backups time the master by the interval it advertises.
#[test]
fn a_backup_learns_the_masters_interval() {
    let mut m = Machine::new(params(100, 100));
    m.start(0);
    m.advert(10, a("10.0.0.2"), 200, 20);
    assert_eq!(m.master_int_cs(), 20);
    assert_eq!(m.master_down_ms(), 3 * 200 + 156 * 200 / 256);
    assert_eq!(m.deadline(), Some(10 + 600 + 121));
}

/// §6.4.2: with preemption on, a lower-priority advert is ignored (the
/// timer runs out and the higher priority takes over); with it off, or
/// an equal or higher priority, the timer is reset.
#[test]
fn preemption_on_a_higher_priority() {
    let mut m = Machine::new(params(200, 10));
    m.start(0);
    assert!(m.advert(300, a("10.0.0.2"), 100, 10).is_empty());
    assert_eq!(m.deadline(), Some(3 * 100 + 56 * 100 / 256), "not reset");
    let out = m.tick(321);
    assert_eq!(states(&out), [(VrrpState::Backup, VrrpState::Master)]);
    // The old master hears 200 > 100 and steps down.
    let mut old = Machine::new(params(100, 10));
    old.params.primary = a("10.0.0.2");
    old.start(0);
    old.tick(10_000);
    assert_eq!(old.state(), VrrpState::Master);
    let out = old.advert(10_010, a("10.0.0.1"), 200, 10);
    assert_eq!(states(&out), [(VrrpState::Master, VrrpState::Backup)]);
    assert_eq!(old.master(), Some((a("10.0.0.1"), 200)));

    // preempt off: the lower master's adverts keep the timer from firing.
    let mut p = params(200, 10);
    p.preempt = false;
    let mut m = Machine::new(p);
    m.start(0);
    for t in (100..5000).step_by(100) {
        m.advert(t, a("10.0.0.2"), 100, 10);
        assert!(m.tick(t).is_empty());
    }
    assert_eq!(m.state(), VrrpState::Backup);
}

/// keepalived's preempt_delay, and a hold from outside (the sync's full
/// transfer): preemption waits for both.
#[test]
fn preempt_delay_and_hold_defer_preemption() {
    let mut p = params(200, 10);
    p.preempt_delay_ms = 2000;
    let mut m = Machine::new(p);
    m.start(0);
    for t in (100..2000).step_by(100) {
        m.advert(t, a("10.0.0.2"), 100, 10);
        assert!(m.tick(t).is_empty(), "{t}");
    }
    m.hold_preempt(true);
    for t in (2000..4000).step_by(100) {
        m.advert(t, a("10.0.0.2"), 100, 10);
        assert!(m.tick(t).is_empty(), "{t}");
    }
    m.hold_preempt(false);
    m.advert(4000, a("10.0.0.2"), 100, 10);
    assert_eq!(m.state(), VrrpState::Backup);
    assert_eq!(
        states(&m.tick(3900 + 321)),
        [(VrrpState::Backup, VrrpState::Master)],
        "the last advert that counted was at 3900"
    );
}

/// §6.4.3: a master stopping sends priority 0; a backup hearing it
/// waits only Skew_Time; a master hearing it advertises at once.
#[test]
fn priority_zero_means_take_over_now() {
    let mut m = Machine::new(params(150, 100));
    m.start(0);
    m.tick(5000);
    assert_eq!(m.state(), VrrpState::Master);
    let out = m.shutdown(6000);
    assert_eq!(adverts(&out), [0]);
    assert_eq!(states(&out), [(VrrpState::Master, VrrpState::Init)]);

    let mut b = Machine::new(params(100, 100));
    b.start(0);
    b.advert(1000, a("10.0.0.2"), 150, 100);
    b.advert(1500, a("10.0.0.2"), 0, 100);
    assert_eq!(b.deadline(), Some(1500 + 609));
    assert_eq!(
        states(&b.tick(2109)),
        [(VrrpState::Backup, VrrpState::Master)]
    );

    let mut m = Machine::new(params(150, 100));
    m.start(0);
    m.tick(5000);
    let out = m.advert(5100, a("10.0.0.9"), 0, 100);
    assert_eq!(adverts(&out), [150]);
    assert_eq!(m.deadline(), Some(6100));
}

/// §6.4.3: equal priorities: the higher primary address stays master;
/// the lower one backs off. A backup does not preempt on equal priority.
#[test]
fn equal_priority_is_broken_by_the_higher_address() {
    let mut m = Machine::new(params(100, 100));
    m.start(0);
    m.tick(4000);
    let out = m.advert(4100, a("10.0.0.0"), 100, 100);
    assert!(states(&out).is_empty(), "lower address");
    assert_eq!(m.state(), VrrpState::Master);
    let out = m.advert(4200, a("10.0.0.2"), 100, 100);
    assert_eq!(states(&out), [(VrrpState::Master, VrrpState::Backup)]);
    // A backup hearing an equal priority from a lower address still
    // resets its timer: preemption needs a higher priority.
    let mut b = Machine::new(params(100, 100));
    b.start(0);
    b.advert(1000, a("10.0.0.0"), 100, 100);
    assert_eq!(b.deadline(), Some(1000 + 3609));
}

/// A link down is FAULT, from any state; up again starts over as backup.
#[test]
fn link_down_is_fault() {
    let mut m = Machine::new(params(150, 100));
    m.start(0);
    m.tick(5000);
    let out = m.link(5100, false);
    assert_eq!(states(&out), [(VrrpState::Master, VrrpState::Fault)]);
    assert!(adverts(&out).is_empty());
    assert_eq!(m.deadline(), None);
    assert!(m.tick(9000).is_empty());
    assert!(m.link(9100, false).is_empty());
    let out = m.link(9200, true);
    assert_eq!(states(&out), [(VrrpState::Fault, VrrpState::Backup)]);
    assert_eq!(m.deadline(), Some(9200 + 3 * 1000 + 106 * 1000 / 256));
}

/// A reload keeps the state: no transition from new parameters alone.
#[test]
fn reconfigure_keeps_the_state() {
    let mut m = Machine::new(params(150, 100));
    m.start(0);
    m.tick(5000);
    let mut p = params(120, 50);
    p.preempt = false;
    m.reconfigure(p);
    assert_eq!(m.state(), VrrpState::Master);
    let out = m.tick(6000);
    assert_eq!(adverts(&out), [120]);
    assert_eq!(m.deadline(), Some(6500));
}

/// A master hearing a lower priority (a backup that missed its adverts
/// and took over) stays master, advertises at once and re-announces, as
/// keepalived's "forcing new election".
#[test]
fn a_master_hearing_a_lower_priority_reasserts_itself() {
    let mut m = Machine::new(params(150, 10));
    m.start(0);
    m.tick(1000);
    let out = m.advert(1050, a("10.0.0.2"), 100, 10);
    assert_eq!(out, [Action::Advertise(150), Action::Announce]);
    assert_eq!(m.state(), VrrpState::Master);
    assert_eq!(m.deadline(), Some(1150));
}
