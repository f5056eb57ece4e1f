//! SCTP state machine against the kernel's ip_vs_proto_sctp.c
//! (torvalds/linux 0a4fd6ce924, same in 6.x), transcribed here
//! independently of the implementation: every direction × event × state,
//! names, timeouts, chunk → event mapping, and typical associations.

use fastpath::proto::sctp::{self, chunk, event, next_state, on_packet, Event, State};
use fastpath::proto::{counts_active, state_name, CounterMove, Dir, Proto, Timeouts};

/// Number, kernel name (as /proc/net/ip_vs_conn prints it), abbreviation
/// used in the kernel's table, default timeout in seconds.
const STATES: &str = "
0  NONE        NO 2
1  INIT1       I1 4
2  INIT        IN 61
3  C-SENT      CS 61
4  C-REPLIED   CR 61
5  C-WAIT      CW 61
6  COOKIE      CO 61
7  C-ECHOED    CE 61
8  ESTABLISHED ES 900
9  S-SENT      SS 61
10 S-RECEIVED  SR 61
11 S-ACK-SENT  SA 61
12 REJECTED    RJ 4
13 CLOSED      CL 61
";

/// sctp_states[dir][event][state].
const TABLE: &str = "
dir     ev  NO I1 IN CS CR CW CO CE ES SS SR SA RJ CL
INPUT   d   ES I1 IN CS CR CW CO CE ES SS SR SA RJ CL
INPUT   i   I1 IN IN CS CR CW CO CE ES SS SR SA IN IN
INPUT   i_a CW CW CW CS CR CO CO CE ES SS SR SA RJ CL
INPUT   c_e CR IN IN CR CR CW CO CE ES SS SR SA RJ CL
INPUT   c_a ES I1 IN CS CR CW CO ES ES SS SR SA RJ CL
INPUT   s   SR I1 IN CS CR CW CO CE SR SS SR SA RJ CL
INPUT   s_a CL IN IN CS CR CW CO CE ES CL SR CL RJ CL
INPUT   s_c CL CL CL CS CR CW CO CE ES SS SR CL RJ CL
INPUT   err CL I1 IN CS CR CW CO CL ES SS SR SA RJ CL
INPUT   ab  CL CL CL CL CL RJ CL CL CL CL CL CL CL CL
OUTPUT  d   ES I1 IN CS CR CW CO CE ES SS SR SA RJ CL
OUTPUT  i   CW CW CW CW CW CW CW CW ES CW CW CW CW CW
OUTPUT  i_a CS CS CS CS CR CW CO CE ES SS SR SA RJ CL
OUTPUT  c_e CE CE CE CE CE CE CE CE ES SS SR SA RJ CL
OUTPUT  c_a ES ES ES ES ES ES ES ES ES SS SR SA RJ CL
OUTPUT  s   SS SS SS SS SS SS SS SS SS SS SR SA RJ CL
OUTPUT  s_a SA SA SA SA SA CW CO CE ES SA SA SA RJ CL
OUTPUT  s_c CL I1 IN CS CR CW CO CE ES SS SR SA RJ CL
OUTPUT  err CL CL CL CL CL CW CO CE ES SS SR SA RJ CL
OUTPUT  ab  CL RJ CL CL CL CL CL CL CL CL CL CL CL CL
IN-ONLY d   ES I1 IN CS CR ES CO CE ES SS SR SA RJ CL
IN-ONLY i   I1 IN IN IN IN IN CO CE ES SS SR SA IN IN
IN-ONLY i_a CE CE CE CE CE CE CO CE ES SS SR SA RJ CL
IN-ONLY c_e ES ES ES ES ES ES CO CE ES SS SR SA RJ CL
IN-ONLY c_a ES I1 IN ES ES CW ES ES ES SS SR SA RJ CL
IN-ONLY s   SR I1 IN CS CR CW CO CE SR SS SR SA RJ CL
IN-ONLY s_a CL IN IN CS CR CW CO CE CL CL SR CL RJ CL
IN-ONLY s_c CL CL CL CL CL CW CO CE ES SS CL CL RJ CL
IN-ONLY err CL I1 IN CS CR CW CO CE ES SS SR SA RJ CL
IN-ONLY ab  CL CL CL CL CL RJ CL CL CL CL CL CL CL CL
";

struct Row {
    name: String,
    abbrev: String,
    secs: u32,
}

fn states() -> Vec<Row> {
    let v: Vec<Row> = STATES
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f[0].parse::<usize>().unwrap(), i);
            Row {
                name: f[1].into(),
                abbrev: f[2].into(),
                secs: f[3].parse().unwrap(),
            }
        })
        .collect();
    assert_eq!(v.len(), 14);
    v
}

fn from_abbrev(a: &str) -> State {
    let i = states().iter().position(|r| r.abbrev == a).unwrap();
    State::from_u8(i as u8).unwrap()
}

/// A first chunk type of each event, and for "d" several that map to it.
fn chunks_of(ev: &str) -> Vec<u8> {
    match ev {
        "d" => vec![
            chunk::DATA,
            chunk::SACK,
            chunk::HEARTBEAT,
            chunk::HEARTBEAT_ACK,
            chunk::ECNE,
            chunk::CWR,
            0x0f, // AUTH
            0x40, // I-DATA
            0x80, // ASCONF-ACK
            0x82, // RE-CONFIG
            0xc0, // FORWARD-TSN
            0xc1, // ASCONF
            0xff,
        ],
        "i" => vec![1],
        "i_a" => vec![2],
        "c_e" => vec![10],
        "c_a" => vec![11],
        "s" => vec![7],
        "s_a" => vec![8],
        "s_c" => vec![14],
        "err" => vec![9],
        "ab" => vec![6],
        _ => panic!("{ev}"),
    }
}

fn dir_of(d: &str) -> Dir {
    match d {
        "INPUT" => Dir::Input,
        "OUTPUT" => Dir::Output,
        "IN-ONLY" => Dir::InputOnly,
        _ => panic!("{d}"),
    }
}

#[test]
fn numbering_names_timeouts_activity() {
    let t = Timeouts::default();
    for (i, r) in states().iter().enumerate() {
        let s = State::from_u8(i as u8).unwrap();
        assert_eq!(s as u8, i as u8);
        assert_eq!(s.name(), r.name);
        assert_eq!(state_name(Proto::Sctp, i as u8), r.name);
        assert_eq!(t.sctp(s), r.secs * 1000, "{}", r.name);
        assert_eq!(t.get(Proto::Sctp, i as u8), Some(r.secs * 1000));
        // The kernel counts only ESTABLISHED as active for SCTP.
        let active = r.name == "ESTABLISHED";
        assert_eq!(s.counts_active(), active);
        assert_eq!(counts_active(Proto::Sctp, i as u8), active);
    }
    assert_eq!(State::from_u8(14), None);
    assert_eq!(state_name(Proto::Sctp, 14), "ERR!");
    assert_eq!(t.get(Proto::Sctp, 14), None);
    assert_eq!(Proto::Sctp.num_states(), 14);
}

#[test]
fn every_cell_of_the_kernel_table() {
    let t = Timeouts::default();
    let mut lines = TABLE.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().skip(2).collect();
    for (i, h) in header.iter().enumerate() {
        assert_eq!(from_abbrev(h) as usize, i, "column order");
    }
    let mut cells = 0;
    for line in lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 16, "{line}");
        let dir = dir_of(f[0]);
        for (i, want) in f[2..].iter().enumerate() {
            let from = State::from_u8(i as u8).unwrap();
            let want = from_abbrev(want);
            for c in chunks_of(f[1]) {
                let ev = event(c, None);
                assert_eq!(
                    next_state(from, dir, ev),
                    want,
                    "{} {} (chunk {c}) from {from:?}",
                    f[0],
                    f[1]
                );
                let tr = on_packet(&t, from, dir, ev);
                assert_eq!(tr.state, want);
                assert_eq!(tr.timeout_ms, t.sctp(want));
                assert_eq!(tr.timeout_ms, states()[want as usize].secs * 1000);
            }
            cells += 1;
        }
    }
    assert_eq!(cells, 3 * 10 * 14);
}

#[test]
fn chunk_to_event() {
    assert_eq!(event(chunk::DATA, None), Event::Data);
    assert_eq!(event(chunk::INIT, None), Event::Init);
    assert_eq!(event(chunk::INIT_ACK, None), Event::InitAck);
    assert_eq!(event(chunk::COOKIE_ECHO, None), Event::CookieEcho);
    assert_eq!(event(chunk::COOKIE_ACK, None), Event::CookieAck);
    assert_eq!(event(chunk::SHUTDOWN, None), Event::Shutdown);
    assert_eq!(event(chunk::SHUTDOWN_ACK, None), Event::ShutdownAck);
    assert_eq!(
        event(chunk::SHUTDOWN_COMPLETE, None),
        Event::ShutdownComplete
    );
    assert_eq!(event(chunk::ERROR, None), Event::Error);
    assert_eq!(event(chunk::ABORT, None), Event::Abort);
    // Only COOKIE ECHO / COOKIE ACK look at the next chunk, and only for
    // an ABORT.
    assert_eq!(event(chunk::COOKIE_ECHO, Some(chunk::ABORT)), Event::Abort);
    assert_eq!(event(chunk::COOKIE_ACK, Some(chunk::ABORT)), Event::Abort);
    assert_eq!(
        event(chunk::COOKIE_ECHO, Some(chunk::DATA)),
        Event::CookieEcho
    );
    assert_eq!(
        event(chunk::COOKIE_ACK, Some(chunk::SHUTDOWN)),
        Event::CookieAck
    );
    assert_eq!(event(chunk::DATA, Some(chunk::ABORT)), Event::Data);
    assert_eq!(event(chunk::SACK, Some(chunk::ABORT)), Event::Data);
    assert_eq!(event(chunk::SHUTDOWN, Some(chunk::ABORT)), Event::Shutdown);
    for ty in 15..=255u8 {
        assert_eq!(event(ty, None), Event::Data, "{ty}");
    }
}

#[derive(Default)]
struct Rs {
    active: i64,
    inactive: i64,
}

struct Assoc {
    state: State,
    no_output: bool,
    timeout_ms: u32,
    assured: bool,
}

impl Assoc {
    fn new(rs: &mut Rs, no_output: bool) -> Assoc {
        rs.inactive += 1;
        Assoc {
            state: State::None,
            no_output,
            timeout_ms: fastpath::proto::INITIAL_TIMEOUT_MS,
            assured: false,
        }
    }
    fn packet(&mut self, rs: &mut Rs, dir: Dir, first: u8, second: Option<u8>) {
        let t = Timeouts::default();
        let (table, no_output) = dir.resolve(self.no_output);
        self.no_output = no_output;
        let tr = on_packet(&t, self.state, table, event(first, second));
        match tr.counters {
            CounterMove::Stay => {}
            CounterMove::ToActive => {
                rs.active += 1;
                rs.inactive -= 1;
            }
            CounterMove::ToInactive => {
                rs.active -= 1;
                rs.inactive += 1;
            }
        }
        self.state = tr.state;
        self.timeout_ms = tr.timeout_ms;
        self.assured |= tr.assure;
    }
}

type Step = (Dir, u8, Option<u8>, &'static str, u32, (i64, i64));

fn run(no_output: bool, steps: &[Step]) -> (Assoc, Rs) {
    let mut rs = Rs::default();
    let mut a = Assoc::new(&mut rs, no_output);
    for &(dir, first, second, name, secs, counts) in steps {
        a.packet(&mut rs, dir, first, second);
        let ctx = format!("{dir:?} chunk {first}");
        assert_eq!(a.state.name(), name, "{ctx}");
        assert_eq!(a.timeout_ms, secs * 1000, "{ctx}");
        assert_eq!((rs.active, rs.inactive), counts, "{ctx}");
    }
    (a, rs)
}

const IN: Dir = Dir::Input;
const OUT: Dir = Dir::Output;

#[test]
fn nat_association_setup_data_and_shutdown() {
    let (a, _) = run(
        false,
        &[
            (IN, chunk::INIT, None, "INIT1", 4, (0, 1)),
            (OUT, chunk::INIT_ACK, None, "C-SENT", 61, (0, 1)),
            (IN, chunk::COOKIE_ECHO, None, "C-REPLIED", 61, (0, 1)),
            (OUT, chunk::COOKIE_ACK, None, "ESTABLISHED", 900, (1, 0)),
            (IN, chunk::DATA, None, "ESTABLISHED", 900, (1, 0)),
            (OUT, chunk::SACK, None, "ESTABLISHED", 900, (1, 0)),
            (OUT, chunk::HEARTBEAT, None, "ESTABLISHED", 900, (1, 0)),
            (IN, chunk::HEARTBEAT_ACK, None, "ESTABLISHED", 900, (1, 0)),
            (IN, chunk::SHUTDOWN, None, "S-RECEIVED", 61, (0, 1)),
            (OUT, chunk::SHUTDOWN_ACK, None, "S-ACK-SENT", 61, (0, 1)),
            (IN, chunk::SHUTDOWN_COMPLETE, None, "CLOSED", 61, (0, 1)),
        ],
    );
    assert!(a.assured);
    // Server-side shutdown.
    run(
        false,
        &[
            (IN, chunk::INIT, None, "INIT1", 4, (0, 1)),
            (OUT, chunk::INIT_ACK, None, "C-SENT", 61, (0, 1)),
            (IN, chunk::COOKIE_ECHO, None, "C-REPLIED", 61, (0, 1)),
            (OUT, chunk::COOKIE_ACK, None, "ESTABLISHED", 900, (1, 0)),
            (OUT, chunk::SHUTDOWN, None, "S-SENT", 61, (0, 1)),
            (IN, chunk::SHUTDOWN_ACK, None, "CLOSED", 61, (0, 1)),
            (OUT, chunk::SHUTDOWN_COMPLETE, None, "CLOSED", 61, (0, 1)),
        ],
    );
}

#[test]
fn dr_association_infers_the_servers_chunks() {
    let (a, _) = run(
        true,
        &[
            (IN, chunk::INIT, None, "INIT1", 4, (0, 1)),
            // Retransmitted INIT: the first was lost or unanswered.
            (IN, chunk::INIT, None, "INIT", 61, (0, 1)),
            (IN, chunk::COOKIE_ECHO, None, "ESTABLISHED", 900, (1, 0)),
            (IN, chunk::DATA, None, "ESTABLISHED", 900, (1, 0)),
            (IN, chunk::SHUTDOWN, None, "S-RECEIVED", 61, (0, 1)),
            (IN, chunk::SHUTDOWN_COMPLETE, None, "CLOSED", 61, (0, 1)),
        ],
    );
    assert!(a.no_output);
    assert!(a.assured);
    // Server-initiated shutdown seen from the client side only: the
    // client's SHUTDOWN ACK closes.
    run(
        true,
        &[
            (IN, chunk::INIT, None, "INIT1", 4, (0, 1)),
            (IN, chunk::COOKIE_ECHO, None, "ESTABLISHED", 900, (1, 0)),
            (IN, chunk::SHUTDOWN_ACK, None, "CLOSED", 61, (0, 1)),
        ],
    );
}

#[test]
fn aborts() {
    // INIT answered by ABORT: rejected, short timeout.
    run(
        false,
        &[
            (IN, chunk::INIT, None, "INIT1", 4, (0, 1)),
            (OUT, chunk::ABORT, None, "REJECTED", 4, (0, 1)),
            // The client tries again.
            (IN, chunk::INIT, None, "INIT", 61, (0, 1)),
        ],
    );
    // ABORT of an established association, either side.
    run(
        false,
        &[
            (IN, chunk::INIT, None, "INIT1", 4, (0, 1)),
            (OUT, chunk::INIT_ACK, None, "C-SENT", 61, (0, 1)),
            (IN, chunk::COOKIE_ECHO, None, "C-REPLIED", 61, (0, 1)),
            (OUT, chunk::COOKIE_ACK, None, "ESTABLISHED", 900, (1, 0)),
            (IN, chunk::ABORT, None, "CLOSED", 61, (0, 1)),
        ],
    );
    // COOKIE ECHO bundled with ABORT counts as the ABORT.
    run(
        true,
        &[
            (IN, chunk::INIT, None, "INIT1", 4, (0, 1)),
            (
                IN,
                chunk::COOKIE_ECHO,
                Some(chunk::ABORT),
                "CLOSED",
                61,
                (0, 1),
            ),
        ],
    );
    // COOKIE ACK + ABORT from the server.
    run(
        false,
        &[
            (IN, chunk::INIT, None, "INIT1", 4, (0, 1)),
            (OUT, chunk::INIT_ACK, None, "C-SENT", 61, (0, 1)),
            (IN, chunk::COOKIE_ECHO, None, "C-REPLIED", 61, (0, 1)),
            (
                OUT,
                chunk::COOKIE_ACK,
                Some(chunk::ABORT),
                "CLOSED",
                61,
                (0, 1),
            ),
        ],
    );
}

#[test]
fn server_initiated_association_through_nat() {
    // The real server opens towards the client (an OUTPUT INIT on an
    // entry the client's earlier traffic created).
    run(
        false,
        &[
            (OUT, chunk::INIT, None, "C-WAIT", 61, (0, 1)),
            (IN, chunk::INIT_ACK, None, "COOKIE", 61, (0, 1)),
            (OUT, chunk::COOKIE_ECHO, None, "C-ECHOED", 61, (0, 1)),
            (IN, chunk::COOKIE_ACK, None, "ESTABLISHED", 900, (1, 0)),
        ],
    );
}

#[test]
fn assure_only_on_entering_established() {
    let t = Timeouts::default();
    let tr = on_packet(&t, State::CookieReplied, Dir::Output, Event::CookieAck);
    assert_eq!(
        (tr.state, tr.assure, tr.counters),
        (State::Established, true, CounterMove::ToActive)
    );
    let tr = on_packet(&t, State::Established, Dir::Input, Event::Data);
    assert_eq!((tr.assure, tr.counters), (false, CounterMove::Stay));
    let tr = on_packet(&t, State::Established, Dir::Input, Event::Abort);
    assert_eq!((tr.assure, tr.counters), (false, CounterMove::ToInactive));
}

#[test]
fn scheduling_and_new_connection_predicates() {
    assert!(sctp::may_schedule(chunk::INIT, false));
    assert!(!sctp::may_schedule(chunk::DATA, false));
    assert!(!sctp::may_schedule(chunk::ABORT, false));
    assert!(sctp::may_schedule(chunk::DATA, true));
    assert!(sctp::is_new_conn(chunk::INIT));
    assert!(!sctp::is_new_conn(chunk::INIT_ACK));
    assert!(!sctp::is_new_conn(chunk::COOKIE_ECHO));
}
