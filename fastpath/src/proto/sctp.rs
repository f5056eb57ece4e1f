//! SCTP: IPVS's association states, transition tables and timeouts.
//!
//! The reference does not cover SCTP; this follows the kernel's
//! `net/netfilter/ipvs/ip_vs_proto_sctp.c`, identical in the two versions
//! read (torvalds/linux 0a4fd6ce924, and the recent mainline mirror
//! Kingxukai/linux 0291023e733): state numbering, names, tables, timeouts,
//! the chunk → event map, and the rule that only ESTABLISHED counts as
//! active and assures the template.
//!
//! States are as the real server would see them. The kernel adds states
//! that RFC 4960 handles inside CLOSED: INIT1 (first INIT, short timeout
//! so dropped INITs go away fast), INIT (retransmitted INIT), COOKIE_SENT /
//! COOKIE_REPLIED (client-initiated handshake), COOKIE_WAIT / COOKIE /
//! COOKIE_ECHOED (server-initiated), and REJECTED (INIT answered by ABORT).

use super::{CounterMove, Dir, Timeouts, Transition};

/// Numbered as the kernel's `IP_VS_SCTP_S_*` (what sync messages carry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum State {
    None = 0,
    Init1 = 1,
    Init = 2,
    CookieSent = 3,
    CookieReplied = 4,
    CookieWait = 5,
    Cookie = 6,
    CookieEchoed = 7,
    Established = 8,
    ShutdownSent = 9,
    ShutdownReceived = 10,
    ShutdownAckSent = 11,
    Rejected = 12,
    Closed = 13,
}

pub const NUM_STATES: usize = 14;

use State::{
    Closed as CL, Cookie as CO, CookieEchoed as CE, CookieReplied as CR, CookieSent as CS,
    CookieWait as CW, Established as ES, Init as IN, Init1 as I1, None as NO, Rejected as RJ,
    ShutdownAckSent as SA, ShutdownReceived as SR, ShutdownSent as SS,
};

/// Every state, in numbering order.
pub const STATES: [State; NUM_STATES] = [NO, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL];

const NAMES: [&str; NUM_STATES] = [
    "NONE",
    "INIT1",
    "INIT",
    "C-SENT",
    "C-REPLIED",
    "C-WAIT",
    "COOKIE",
    "C-ECHOED",
    "ESTABLISHED",
    "S-SENT",
    "S-RECEIVED",
    "S-ACK-SENT",
    "REJECTED",
    "CLOSED",
];

/// The kernel's allowance for a handshake/shutdown step: SCTP's maximum
/// RTO (60 s) plus one second.
const MAX_RTO_MS: u32 = 61_000;
/// INIT1 and REJECTED: 3 s (the initial RTO) plus one.
const SHORT_MS: u32 = 4_000;

/// Defaults, milliseconds. Not changeable by `--set`.
pub const DEFAULT_TIMEOUTS_MS: [u32; NUM_STATES] = [
    2_000,      // NONE
    SHORT_MS,   // INIT1
    MAX_RTO_MS, // INIT
    MAX_RTO_MS, // COOKIE_SENT
    MAX_RTO_MS, // COOKIE_REPLIED
    MAX_RTO_MS, // COOKIE_WAIT
    MAX_RTO_MS, // COOKIE
    MAX_RTO_MS, // COOKIE_ECHOED
    900_000,    // ESTABLISHED
    MAX_RTO_MS, // SHUTDOWN_SENT
    MAX_RTO_MS, // SHUTDOWN_RECEIVED
    MAX_RTO_MS, // SHUTDOWN_ACK_SENT
    SHORT_MS,   // REJECTED
    MAX_RTO_MS, // CLOSED
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

    /// As `ipvsadm -L -c` prints it (the kernel's abbreviations).
    #[inline]
    pub const fn name(self) -> &'static str {
        NAMES[self as usize]
    }

    /// Unlike TCP since 4.7, SCTP counts only ESTABLISHED as active.
    #[inline]
    pub const fn counts_active(self) -> bool {
        matches!(self, State::Established)
    }
}

/// SCTP chunk types (RFC 9260 3.2) that select an event.
pub mod chunk {
    pub const DATA: u8 = 0;
    pub const INIT: u8 = 1;
    pub const INIT_ACK: u8 = 2;
    pub const SACK: u8 = 3;
    pub const HEARTBEAT: u8 = 4;
    pub const HEARTBEAT_ACK: u8 = 5;
    pub const ABORT: u8 = 6;
    pub const SHUTDOWN: u8 = 7;
    pub const SHUTDOWN_ACK: u8 = 8;
    pub const ERROR: u8 = 9;
    pub const COOKIE_ECHO: u8 = 10;
    pub const COOKIE_ACK: u8 = 11;
    pub const ECNE: u8 = 12;
    pub const CWR: u8 = 13;
    pub const SHUTDOWN_COMPLETE: u8 = 14;
}

/// What a packet means to the state machine, numbered as the kernel's
/// table rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Event {
    /// DATA, SACK, HEARTBEAT(-ACK), ECNE, CWR and every chunk type IPVS
    /// does not know (AUTH, ASCONF, FORWARD-TSN, I-DATA, RE-CONFIG...).
    Data = 0,
    Init = 1,
    InitAck = 2,
    CookieEcho = 3,
    CookieAck = 4,
    Shutdown = 5,
    ShutdownAck = 6,
    ShutdownComplete = 7,
    Error = 8,
    Abort = 9,
}

pub const NUM_EVENTS: usize = 10;

const EVENT_OF: [Event; 15] = [
    Event::Data,             // DATA
    Event::Init,             // INIT
    Event::InitAck,          // INIT_ACK
    Event::Data,             // SACK
    Event::Data,             // HEARTBEAT
    Event::Data,             // HEARTBEAT_ACK
    Event::Abort,            // ABORT
    Event::Shutdown,         // SHUTDOWN
    Event::ShutdownAck,      // SHUTDOWN_ACK
    Event::Error,            // ERROR
    Event::CookieEcho,       // COOKIE_ECHO
    Event::CookieAck,        // COOKIE_ACK
    Event::Data,             // ECNE
    Event::Data,             // CWR
    Event::ShutdownComplete, // SHUTDOWN_COMPLETE
];

/// The event of a packet whose first chunk has type `first`. `second` is
/// the type of the chunk after it, when the caller found one (the first
/// chunk's length ≥ 4, next chunk at that length rounded up to 4): only a
/// COOKIE ECHO or COOKIE ACK followed by an ABORT looks past the first
/// chunk, since those are the only chunks that may lead a bundle ending
/// the association before the peer processes them.
#[inline]
pub const fn event(first: u8, second: Option<u8>) -> Event {
    let ty = match (first, second) {
        (chunk::COOKIE_ECHO | chunk::COOKIE_ACK, Some(chunk::ABORT)) => chunk::ABORT,
        _ => first,
    };
    if (ty as usize) < EVENT_OF.len() {
        EVENT_OF[ty as usize]
    } else {
        Event::Data
    }
}

/// A packet that may open an association on an existing entry (the
/// conn_reuse_mode check): an INIT first chunk.
#[inline]
pub const fn is_new_conn(first: u8) -> bool {
    first == chunk::INIT
}

/// Whether a packet with no entry may be scheduled (reference 4.4): INIT,
/// or with `sloppy_sctp` any chunk.
#[inline]
pub const fn may_schedule(first: u8, sloppy_sctp: bool) -> bool {
    sloppy_sctp || first == chunk::INIT
}

type Row = [State; NUM_STATES];
type DirTable = [Row; NUM_EVENTS];

// Rows by event (DATA, INIT, INIT_ACK, COOKIE_ECHO, COOKIE_ACK, SHUTDOWN,
// SHUTDOWN_ACK, SHUTDOWN_COMPLETE, ERROR, ABORT); columns are the current
// state in numbering order NO I1 IN CS CR CW CO CE ES SS SR SA RJ CL.
const TABLES: [DirTable; 3] = [
    // INPUT (client → server)
    [
        [ES, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        [I1, IN, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, IN, IN],
        [CW, CW, CW, CS, CR, CO, CO, CE, ES, SS, SR, SA, RJ, CL],
        [CR, IN, IN, CR, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        [ES, I1, IN, CS, CR, CW, CO, ES, ES, SS, SR, SA, RJ, CL],
        [SR, I1, IN, CS, CR, CW, CO, CE, SR, SS, SR, SA, RJ, CL],
        [CL, IN, IN, CS, CR, CW, CO, CE, ES, CL, SR, CL, RJ, CL],
        [CL, CL, CL, CS, CR, CW, CO, CE, ES, SS, SR, CL, RJ, CL],
        [CL, I1, IN, CS, CR, CW, CO, CL, ES, SS, SR, SA, RJ, CL],
        [CL, CL, CL, CL, CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL],
    ],
    // OUTPUT (server → client)
    [
        [ES, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        [CW, CW, CW, CW, CW, CW, CW, CW, ES, CW, CW, CW, CW, CW],
        [CS, CS, CS, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        [CE, CE, CE, CE, CE, CE, CE, CE, ES, SS, SR, SA, RJ, CL],
        [ES, ES, ES, ES, ES, ES, ES, ES, ES, SS, SR, SA, RJ, CL],
        [SS, SS, SS, SS, SS, SS, SS, SS, SS, SS, SR, SA, RJ, CL],
        [SA, SA, SA, SA, SA, CW, CO, CE, ES, SA, SA, SA, RJ, CL],
        [CL, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        [CL, CL, CL, CL, CL, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        [CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL],
    ],
    // INPUT-ONLY (DR/TUN: the server's chunks are inferred)
    [
        [ES, I1, IN, CS, CR, ES, CO, CE, ES, SS, SR, SA, RJ, CL],
        [I1, IN, IN, IN, IN, IN, CO, CE, ES, SS, SR, SA, IN, IN],
        [CE, CE, CE, CE, CE, CE, CO, CE, ES, SS, SR, SA, RJ, CL],
        [ES, ES, ES, ES, ES, ES, CO, CE, ES, SS, SR, SA, RJ, CL],
        [ES, I1, IN, ES, ES, CW, ES, ES, ES, SS, SR, SA, RJ, CL],
        [SR, I1, IN, CS, CR, CW, CO, CE, SR, SS, SR, SA, RJ, CL],
        [CL, IN, IN, CS, CR, CW, CO, CE, CL, CL, SR, CL, RJ, CL],
        [CL, CL, CL, CL, CL, CW, CO, CE, ES, SS, CL, CL, RJ, CL],
        [CL, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        [CL, CL, CL, CL, CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL],
    ],
];

/// The state after `event` through table `dir` (already resolved for
/// NOOUTPUT, see [`Dir::resolve`]).
#[inline]
pub const fn next_state(state: State, dir: Dir, event: Event) -> State {
    TABLES[dir as usize][event as usize][state as usize]
}

/// One packet's whole effect on an entry in `state`.
#[inline]
pub const fn on_packet(
    timeouts: &Timeouts,
    state: State,
    dir: Dir,
    event: Event,
) -> Transition<State> {
    let next = next_state(state, dir, event);
    let changed = next as u8 != state as u8;
    Transition {
        state: next,
        timeout_ms: timeouts.sctp(next),
        counters: CounterMove::between(state.counts_active(), next.counts_active()),
        assure: changed && matches!(next, State::Established),
    }
}
