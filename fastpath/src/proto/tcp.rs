//! TCP: the eleven IPVS states, the normal and secure_tcp ("DoS")
//! transition tables and default timeouts (reference 5.1, 5.2, 7).
//!
//! IPVS does not track sequence numbers: a segment's class (RST, SYN, FIN,
//! ACK, in that priority) and its direction pick the next state. The
//! director only sees both halves for NAT; DR/TUN entries use the
//! INPUT-ONLY table, which infers the server's replies.

use super::{CounterMove, Dir, Timeouts, Transition};
use crate::wire::tcp::{FLAG_ACK, FLAG_FIN, FLAG_RST, FLAG_SYN};

/// Numbered as the kernel's `IP_VS_TCP_S_*`: the number is what sync
/// messages carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum State {
    None = 0,
    Established = 1,
    SynSent = 2,
    SynRecv = 3,
    FinWait = 4,
    TimeWait = 5,
    Close = 6,
    CloseWait = 7,
    LastAck = 8,
    Listen = 9,
    SynAck = 10,
}

pub const NUM_STATES: usize = 11;

use State::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA, Listen as LI,
    None as NO, SynAck as SA, SynRecv as SR, SynSent as SS, TimeWait as TW,
};

/// Every state, in numbering order.
pub const STATES: [State; NUM_STATES] = [NO, ES, SS, SR, FW, TW, CL, CW, LA, LI, SA];

const NAMES: [&str; NUM_STATES] = [
    "NONE",
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "SYNACK",
];

/// Since kernel 4.7 the handshake states count as active too, so that
/// least-connection schedulers see a SYN flood's load (reference 10.5).
const ACTIVE: [bool; NUM_STATES] = [
    false, true, true, true, false, false, false, false, false, false, true,
];

/// Defaults, milliseconds.
pub const DEFAULT_TIMEOUTS_MS: [u32; NUM_STATES] = [
    2_000,   // NONE
    900_000, // ESTABLISHED
    120_000, // SYN_SENT
    60_000,  // SYN_RECV
    120_000, // FIN_WAIT
    120_000, // TIME_WAIT
    10_000,  // CLOSE
    60_000,  // CLOSE_WAIT
    30_000,  // LAST_ACK
    120_000, // LISTEN
    120_000, // SYNACK
];

impl State {
    #[inline]
    pub const fn from_u8(v: u8) -> Option<State> {
        if (v as usize) < NUM_STATES {
            Some(STATES[v as usize])
        } else {
            None
        }
    }

    /// As `ipvsadm -L -c` prints it.
    #[inline]
    pub const fn name(self) -> &'static str {
        NAMES[self as usize]
    }

    #[inline]
    pub const fn counts_active(self) -> bool {
        ACTIVE[self as usize]
    }
}

/// A segment's flag class, numbered as the kernel's table rows. `None`
/// (no RST, SYN, FIN or ACK) has a row of its own that sends every state
/// to CLOSE, so the lookup needs no special case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Class {
    Syn = 0,
    Fin = 1,
    Ack = 2,
    Rst = 3,
    None = 4,
}

const fn class_slow(flags: u8) -> Class {
    if flags & FLAG_RST != 0 {
        Class::Rst
    } else if flags & FLAG_SYN != 0 {
        Class::Syn
    } else if flags & FLAG_FIN != 0 {
        Class::Fin
    } else if flags & FLAG_ACK != 0 {
        Class::Ack
    } else {
        Class::None
    }
}

/// The four flags that matter packed into 4 bits: FIN, SYN, RST keep their
/// bit positions 0..2 and ACK (bit 4) moves to bit 3.
#[inline]
const fn class_index(flags: u8) -> usize {
    ((flags & (FLAG_FIN | FLAG_SYN | FLAG_RST)) | ((flags & FLAG_ACK) >> 1)) as usize
}

const CLASS_OF: [Class; 16] = {
    let mut t = [Class::None; 16];
    let mut i = 0;
    while i < 16 {
        let flags = (i as u8 & 0x07) | ((i as u8 & 0x08) << 1);
        t[i] = class_slow(flags);
        i += 1;
    }
    t
};

/// RST > SYN > FIN > ACK; none of them → [`Class::None`].
#[inline]
pub const fn flag_class(tcp_flags: u8) -> Class {
    CLASS_OF[class_index(tcp_flags)]
}

/// A segment that may open a connection on an existing entry (the
/// conn_reuse_mode check, reference 5.4): any SYN, even with RST.
#[inline]
pub const fn is_new_conn(tcp_flags: u8) -> bool {
    tcp_flags & FLAG_SYN != 0
}

/// Whether a segment with no entry may be scheduled (reference 4.4): a SYN
/// without RST, or with `sloppy_tcp` any segment without RST (to pick up
/// connections after a failover without sync).
#[inline]
pub const fn may_schedule(tcp_flags: u8, sloppy_tcp: bool) -> bool {
    tcp_flags & FLAG_RST == 0 && (sloppy_tcp || tcp_flags & FLAG_SYN != 0)
}

type Row = [State; NUM_STATES];
type DirTable = [Row; 5];

const TO_CLOSE: Row = [CL; NUM_STATES];

// Rows by class (syn, fin, ack, rst, none); columns are the current state
// in numbering order NO ES SS SR FW TW CL CW LA LI SA. Reference 5.2.
const NORMAL: [DirTable; 3] = [
    // INPUT
    [
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
        [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
        TO_CLOSE,
    ],
    // OUTPUT
    [
        [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
        [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
        TO_CLOSE,
    ],
    // INPUT-ONLY
    [
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
        [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
        TO_CLOSE,
    ],
];

// secure_tcp: a client cannot complete a NAT handshake by itself (SYN_RECV
// waits for the server's SYN/ACK, which leads to SYNACK), and DR/TUN SYNs
// on idle or closing entries land in SYNACK rather than SYN_RECV.
const SECURE: [DirTable; 3] = [
    // INPUT
    [
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SA],
        [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, SA],
        [ES, ES, SS, SR, FW, TW, CL, CW, CL, LI, SA],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
        TO_CLOSE,
    ],
    // OUTPUT
    [
        [SS, ES, SS, SA, SS, SS, SS, SS, SS, LI, SA],
        [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
        TO_CLOSE,
    ],
    // INPUT-ONLY
    [
        [SA, ES, ES, SR, SA, SA, SA, SA, SA, SA, SA],
        [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
        [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
        TO_CLOSE,
    ],
];

const TABLES: [[DirTable; 3]; 2] = [NORMAL, SECURE];

/// The state after a segment of `class` through table `dir` (already
/// resolved for NOOUTPUT, see [`Dir::resolve`]); `secure` while secure_tcp
/// is in effect (its sysctl value ≥ 2).
#[inline]
pub const fn next_state(state: State, dir: Dir, class: Class, secure: bool) -> State {
    TABLES[secure as usize][dir as usize][class as usize][state as usize]
}

/// One segment's whole effect on an entry in `state`.
#[inline]
pub const fn on_packet(
    timeouts: &Timeouts,
    state: State,
    dir: Dir,
    tcp_flags: u8,
    secure: bool,
) -> Transition<State> {
    let next = next_state(state, dir, flag_class(tcp_flags), secure);
    let changed = next as u8 != state as u8;
    Transition {
        state: next,
        timeout_ms: timeouts.tcp(next),
        counters: CounterMove::between(state.counts_active(), next.counts_active()),
        assure: changed && matches!(next, State::Established),
    }
}
