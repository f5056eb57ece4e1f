//! UDP: one state, one timeout (reference 5.1). Entries stay in InActConn
//! for their whole life; a reply (OUTPUT, so NAT only) assures the
//! controlling template.

use super::{CounterMove, Dir, Timeouts, Transition};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum State {
    Udp = 0,
}

pub const NUM_STATES: usize = 1;

/// Default, milliseconds (`--set` third value).
pub const DEFAULT_TIMEOUT_MS: u32 = 300_000;

impl State {
    #[inline]
    pub const fn from_u8(v: u8) -> Option<State> {
        if v == 0 {
            Some(State::Udp)
        } else {
            None
        }
    }

    #[inline]
    pub const fn name(self) -> &'static str {
        "UDP"
    }

    #[inline]
    pub const fn counts_active(self) -> bool {
        false
    }
}

/// One datagram's effect: the timer restarts at the UDP timeout.
#[inline]
pub const fn on_packet(timeouts: &Timeouts, dir: Dir) -> Transition<State> {
    Transition {
        state: State::Udp,
        timeout_ms: timeouts.udp(),
        counters: CounterMove::Stay,
        assure: matches!(dir, Dir::Output),
    }
}
