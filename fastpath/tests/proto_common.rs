//! UDP (reference 5.1), `--set` (5.3, 1.6, 2.7), conn_reuse_mode (5.4)
//! and the shared protocol helpers.

use fastpath::proto::{
    counts_active, sctp, state_name, tcp, udp, CounterMove, Dir, Proto, Reuse, ReuseCheck,
    TemplateState, Timeouts, CONTROL_REARM_MS, INITIAL_TIMEOUT_MS,
};

#[test]
fn udp_single_state_300s_never_active_reply_assures() {
    let t = Timeouts::default();
    assert_eq!(udp::State::Udp as u8, 0);
    assert_eq!(state_name(Proto::Udp, 0), "UDP");
    assert_eq!(state_name(Proto::Udp, 1), "ERR!");
    assert!(!counts_active(Proto::Udp, 0));
    assert_eq!(t.udp(), 300_000);
    assert_eq!(t.get(Proto::Udp, 0), Some(300_000));
    assert_eq!(t.get(Proto::Udp, 1), None);
    assert_eq!(Proto::Udp.num_states(), 1);

    // A DNS-like NAT exchange: query, answer, query; and a DR flow that
    // never sees a reply.
    for (dir, assure) in [
        (Dir::Input, false),
        (Dir::Output, true),
        (Dir::Input, false),
        (Dir::InputOnly, false),
    ] {
        let tr = udp::on_packet(&t, dir);
        assert_eq!(tr.state.name(), "UDP");
        assert_eq!(tr.timeout_ms, 300_000);
        assert_eq!(tr.counters, CounterMove::Stay);
        assert_eq!(tr.assure, assure, "{dir:?}");
    }
}

#[test]
fn set_changes_exactly_established_finwait_and_udp() {
    let mut t = Timeouts::default();
    assert_eq!(t.listed(), (900, 120, 300));

    // Zero keeps the old value.
    t.set(0, 0, 0);
    assert_eq!(t, Timeouts::default());

    t.set(3600, 0, 0);
    assert_eq!(t.listed(), (3600, 120, 300));
    t.set(0, 30, 0);
    assert_eq!(t.listed(), (3600, 30, 300));
    t.set(0, 0, 60);
    assert_eq!(t.listed(), (3600, 30, 60));
    t.set(7200, 45, 10);
    assert_eq!(t.listed(), (7200, 45, 10));

    // Every other TCP state and every SCTP state keep their defaults.
    let d = Timeouts::default();
    for s in tcp::STATES {
        match s {
            tcp::State::Established => assert_eq!(t.tcp(s), 7_200_000),
            tcp::State::FinWait => assert_eq!(t.tcp(s), 45_000),
            _ => assert_eq!(t.tcp(s), d.tcp(s), "{s:?}"),
        }
    }
    for s in sctp::STATES {
        assert_eq!(t.sctp(s), d.sctp(s), "{s:?}");
    }
    assert_eq!(t.sctp(sctp::State::Established), 900_000);
    assert_eq!(t.udp(), 10_000);

    // Existing entries pick the new values up at their next packet.
    let tr = tcp::on_packet(&t, tcp::State::Established, Dir::Input, 0x10, false);
    assert_eq!(tr.timeout_ms, 7_200_000);
    let tr = tcp::on_packet(&t, tcp::State::Established, Dir::InputOnly, 0x11, false);
    assert_eq!((tr.state, tr.timeout_ms), (tcp::State::FinWait, 45_000));
    assert_eq!(udp::on_packet(&t, Dir::Input).timeout_ms, 10_000);

    // ipvsadm's maximum fits; absurd values saturate instead of wrapping.
    t.set(2_678_400, 0, 0);
    assert_eq!(t.tcp(tcp::State::Established), 2_678_400_000);
    assert_eq!(t.listed().0, 2_678_400);
    t.set(u32::MAX, 0, 0);
    assert_eq!(t.tcp(tcp::State::Established), u32::MAX);
}

#[test]
fn creation_and_rearm_constants() {
    // ip_vs_conn_new arms 3 s, not the NONE state's 2 s.
    assert_eq!(INITIAL_TIMEOUT_MS, 3_000);
    assert_eq!(Timeouts::default().tcp(tcp::State::None), 2_000);
    assert_eq!(CONTROL_REARM_MS, 60_000);
}

fn tcp_check(state: tcp::State) -> ReuseCheck {
    ReuseCheck {
        proto: Proto::Tcp,
        state: state as u8,
        no_output: false,
        controlled: false,
        expire_quiesced: false,
        conn_reuse_mode: 1,
    }
}

#[test]
fn conn_reuse_mode_tcp() {
    use tcp::State::*;
    use Reuse::{Keep, Reschedule};
    // Default mode 1: TIME_WAIT and CLOSE are reused, nothing else.
    for s in tcp::STATES {
        let want = if matches!(s, TimeWait | Close) {
            Reschedule
        } else {
            Keep
        };
        assert_eq!(tcp_check(s).decide(), want, "{s:?}");
        // NOOUTPUT alone changes nothing in mode 1.
        let c = ReuseCheck {
            no_output: true,
            ..tcp_check(s)
        };
        assert_eq!(c.decide(), want, "{s:?} nooutput");
    }
    // Mode 0: never.
    for s in tcp::STATES {
        let c = ReuseCheck {
            conn_reuse_mode: 0,
            ..tcp_check(s)
        };
        assert_eq!(c.decide(), Keep, "{s:?}");
    }
    // Bit 1: also FIN_WAIT, but only without replies seen (DR/TUN).
    let fw = |no_output, mode| {
        ReuseCheck {
            no_output,
            conn_reuse_mode: mode,
            ..tcp_check(FinWait)
        }
        .decide()
    };
    assert_eq!(fw(true, 2), Reschedule);
    assert_eq!(fw(true, 3), Reschedule);
    assert_eq!(fw(false, 2), Keep);
    assert_eq!(fw(false, 3), Keep);
    assert_eq!(fw(true, 1), Keep);
    // Mode 2 still reuses TIME_WAIT (any non-zero mode does).
    let c = ReuseCheck {
        conn_reuse_mode: 2,
        ..tcp_check(TimeWait)
    };
    assert_eq!(c.decide(), Reschedule);
    // Controlled (persistence, FTP data): kept.
    for s in [TimeWait, Close] {
        let c = ReuseCheck {
            controlled: true,
            ..tcp_check(s)
        };
        assert_eq!(c.decide(), Keep);
    }
    let c = ReuseCheck {
        controlled: true,
        no_output: true,
        conn_reuse_mode: 3,
        ..tcp_check(FinWait)
    };
    assert_eq!(c.decide(), Keep);
    // expire_nodest_conn + weight 0 reschedules any state, even
    // controlled, even with conn_reuse_mode 0.
    for s in tcp::STATES {
        for controlled in [false, true] {
            for mode in [0, 1, 2, 3] {
                let c = ReuseCheck {
                    expire_quiesced: true,
                    controlled,
                    conn_reuse_mode: mode,
                    ..tcp_check(s)
                };
                assert_eq!(c.decide(), Reschedule, "{s:?} {controlled} {mode}");
            }
        }
    }
}

#[test]
fn conn_reuse_mode_sctp_and_udp() {
    for s in sctp::STATES {
        let c = ReuseCheck {
            proto: Proto::Sctp,
            state: s as u8,
            no_output: true,
            controlled: false,
            expire_quiesced: false,
            conn_reuse_mode: 3,
        };
        let want = if s == sctp::State::Closed {
            Reuse::Reschedule
        } else {
            Reuse::Keep
        };
        assert_eq!(c.decide(), want, "{s:?}");
        assert_eq!(
            ReuseCheck {
                controlled: true,
                ..c
            }
            .decide(),
            Reuse::Keep
        );
        assert_eq!(
            ReuseCheck {
                conn_reuse_mode: 0,
                ..c
            }
            .decide(),
            Reuse::Keep
        );
        assert_eq!(
            ReuseCheck {
                expire_quiesced: true,
                conn_reuse_mode: 0,
                ..c
            }
            .decide(),
            Reuse::Reschedule
        );
    }
    // SCTP numbering differs from TCP: state 5 is C-WAIT, not TIME_WAIT.
    let c = ReuseCheck {
        proto: Proto::Sctp,
        state: tcp::State::TimeWait as u8,
        no_output: false,
        controlled: false,
        expire_quiesced: false,
        conn_reuse_mode: 1,
    };
    assert_eq!(c.decide(), Reuse::Keep);
    // UDP never opens a connection on an existing entry.
    let c = ReuseCheck {
        proto: Proto::Udp,
        state: 0,
        no_output: false,
        controlled: false,
        expire_quiesced: true,
        conn_reuse_mode: 3,
    };
    assert_eq!(c.decide(), Reuse::Keep);
}

#[test]
fn protocols_and_template_states() {
    for (n, p, name) in [
        (6, Proto::Tcp, "TCP"),
        (17, Proto::Udp, "UDP"),
        (132, Proto::Sctp, "SCTP"),
    ] {
        assert_eq!(Proto::from_ip(n), Some(p));
        assert_eq!(p as u8, n);
        assert_eq!(p.name(), name);
    }
    assert_eq!(Proto::from_ip(1), None);
    assert_eq!(Proto::from_ip(0), None);
    assert_eq!(TemplateState::None as u8, 0);
    assert_eq!(TemplateState::Assured as u8, 1);
    assert_eq!(TemplateState::None.name(), "NONE");
    assert_eq!(TemplateState::Assured.name(), "ASSURED");
}

#[test]
fn counter_move_between() {
    assert_eq!(CounterMove::between(false, false), CounterMove::Stay);
    assert_eq!(CounterMove::between(true, true), CounterMove::Stay);
    assert_eq!(CounterMove::between(false, true), CounterMove::ToActive);
    assert_eq!(CounterMove::between(true, false), CounterMove::ToInactive);
}
