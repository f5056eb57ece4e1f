//! TCP state machine against the reference, transcribed here independently
//! of the implementation: section 5.1 (numbering, names, timeouts, active
//! column) and both 5.2 tables, every direction × class × state.

use fastpath::proto::tcp::{self, flag_class, next_state, on_packet, Class, State};
use fastpath::proto::{counts_active, state_name, CounterMove, Dir, Proto, Timeouts};

/// Reference 5.1: number, name, timeout (s), counts as.
const STATES_5_1: &str = "
0  NONE         2    inactive
1  ESTABLISHED  900  active
2  SYN_SENT     120  active
3  SYN_RECV     60   active
4  FIN_WAIT     120  inactive
5  TIME_WAIT    120  inactive
6  CLOSE        10   inactive
7  CLOSE_WAIT   60   inactive
8  LAST_ACK     30   inactive
9  LISTEN       120  inactive
10 SYNACK       120  active
";

/// Reference 5.2, normal table.
const NORMAL_5_2: &str = "
dir     flag NO ES SS SR FW TW CL CW LA LI SA
INPUT   syn  SR ES ES SR SR SR SR SR SR SR SR
INPUT   fin  CL CW SS TW TW TW CL CW LA LI TW
INPUT   ack  ES ES SS ES FW TW CL CW CL LI ES
INPUT   rst  CL CL CL SR CL CL CL CL LA LI SR
OUTPUT  syn  SS ES SS SR SS SS SS SS SS LI SR
OUTPUT  fin  TW FW SS TW FW TW CL TW LA LI TW
OUTPUT  ack  ES ES SS ES FW TW CL CW LA ES ES
OUTPUT  rst  CL CL SS CL CL TW CL CL CL CL CL
IN-ONLY syn  SR ES ES SR SR SR SR SR SR SR SR
IN-ONLY fin  CL FW SS TW FW TW CL CW LA LI TW
IN-ONLY ack  ES ES SS ES FW TW CL CW CL LI ES
IN-ONLY rst  CL CL CL SR CL CL CL CL LA LI CL
";

/// Reference 5.2, secure-TCP ("DoS") table.
const SECURE_5_2: &str = "
dir     flag NO ES SS SR FW TW CL CW LA LI SA
INPUT   syn  SR ES ES SR SR SR SR SR SR SR SA
INPUT   fin  CL CW SS TW TW TW CL CW LA LI SA
INPUT   ack  ES ES SS SR FW TW CL CW CL LI SA
INPUT   rst  CL CL CL SR CL CL CL CL LA LI CL
OUTPUT  syn  SS ES SS SA SS SS SS SS SS LI SA
OUTPUT  fin  TW FW SS TW FW TW CL TW LA LI TW
OUTPUT  ack  ES ES SS ES FW TW CL CW LA ES ES
OUTPUT  rst  CL CL SS CL CL TW CL CL CL CL CL
IN-ONLY syn  SA ES ES SR SA SA SA SA SA SA SA
IN-ONLY fin  CL FW SS TW FW TW CL CW LA LI TW
IN-ONLY ack  ES ES SS ES FW TW CL CW CL LI ES
IN-ONLY rst  CL CL CL SR CL CL CL CL LA LI CL
";

fn abbrev(a: &str) -> &'static str {
    match a {
        "NO" => "NONE",
        "ES" => "ESTABLISHED",
        "SS" => "SYN_SENT",
        "SR" => "SYN_RECV",
        "FW" => "FIN_WAIT",
        "TW" => "TIME_WAIT",
        "CL" => "CLOSE",
        "CW" => "CLOSE_WAIT",
        "LA" => "LAST_ACK",
        "LI" => "LISTEN",
        "SA" => "SYNACK",
        _ => panic!("bad abbreviation {a}"),
    }
}

/// (name, timeout seconds, active) by state number, from 5.1.
fn states_5_1() -> Vec<(String, u32, bool)> {
    let mut v = Vec::new();
    for (i, line) in STATES_5_1
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
    {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f[0].parse::<usize>().unwrap(), i);
        let active = match f[3] {
            "active" => true,
            "inactive" => false,
            x => panic!("{x}"),
        };
        v.push((f[1].to_string(), f[2].parse().unwrap(), active));
    }
    assert_eq!(v.len(), 11);
    v
}

fn timeout_of(name: &str) -> u32 {
    states_5_1()
        .into_iter()
        .find(|(n, _, _)| n == name)
        .unwrap_or_else(|| panic!("no state {name}"))
        .1
        * 1000
}

/// A flags byte of each class; FIN and RST are sent with ACK, as they are
/// on the wire, so the priority is exercised too.
fn flags_of(class: &str) -> u8 {
    match class {
        "syn" => 0x02,
        "fin" => 0x11,
        "ack" => 0x10,
        "rst" => 0x14,
        _ => panic!("{class}"),
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

/// Checks every cell; returns how many were checked.
fn check_table(text: &str, secure: bool) -> usize {
    let t = Timeouts::default();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().skip(2).collect();
    assert_eq!(header.len(), 11);
    // The columns are the states in numbering order.
    for (i, h) in header.iter().enumerate() {
        assert_eq!(State::from_u8(i as u8).unwrap().name(), abbrev(h));
    }
    let mut cells = 0;
    for line in lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 13, "{line}");
        let dir = dir_of(f[0]);
        for (i, want) in f[2..].iter().enumerate() {
            let from = State::from_u8(i as u8).unwrap();
            let want = abbrev(want);
            let class = flag_class(flags_of(f[1]));
            let got = next_state(from, dir, class, secure);
            assert_eq!(
                got.name(),
                want,
                "secure={secure} {} {} from {}",
                f[0],
                f[1],
                from.name()
            );
            let tr = on_packet(&t, from, dir, flags_of(f[1]), secure);
            assert_eq!(tr.state, got);
            assert_eq!(tr.timeout_ms, timeout_of(want), "timeout of {want}");
            cells += 1;
        }
    }
    cells
}

#[test]
fn numbering_names_timeouts_and_activity_follow_5_1() {
    let t = Timeouts::default();
    for (i, (name, secs, active)) in states_5_1().into_iter().enumerate() {
        let s = State::from_u8(i as u8).unwrap();
        assert_eq!(s as u8, i as u8);
        assert_eq!(s.name(), name);
        assert_eq!(state_name(Proto::Tcp, i as u8), name);
        assert_eq!(t.tcp(s), secs * 1000, "{name}");
        assert_eq!(t.get(Proto::Tcp, i as u8), Some(secs * 1000));
        assert_eq!(s.counts_active(), active, "{name}");
        assert_eq!(counts_active(Proto::Tcp, i as u8), active, "{name}");
    }
    assert_eq!(State::from_u8(11), None);
    assert_eq!(state_name(Proto::Tcp, 11), "ERR!");
    assert!(!counts_active(Proto::Tcp, 255));
    assert_eq!(t.get(Proto::Tcp, 11), None);
    assert_eq!(Proto::Tcp.num_states(), 11);
}

#[test]
fn normal_table_every_cell() {
    assert_eq!(check_table(NORMAL_5_2, false), 3 * 4 * 11);
}

#[test]
fn secure_table_every_cell() {
    assert_eq!(check_table(SECURE_5_2, true), 3 * 4 * 11);
}

#[test]
fn segments_without_rst_syn_fin_ack_close_every_state() {
    let t = Timeouts::default();
    // No flag, PSH only, URG only, ECE|CWR: none is a class.
    for flags in [0x00, 0x08, 0x20, 0xc0, 0xe8] {
        assert_eq!(flag_class(flags), Class::None);
        for secure in [false, true] {
            for dir in [Dir::Input, Dir::Output, Dir::InputOnly] {
                for s in tcp::STATES {
                    let tr = on_packet(&t, s, dir, flags, secure);
                    assert_eq!(tr.state.name(), "CLOSE", "{flags:#x} {dir:?} {s:?}");
                    assert_eq!(tr.timeout_ms, 10_000);
                    assert!(!tr.assure);
                }
            }
        }
    }
}

#[test]
fn flag_class_priority_for_all_256_bytes() {
    for f in 0..=255u8 {
        let rst = f & 0x04 != 0;
        let syn = f & 0x02 != 0;
        let fin = f & 0x01 != 0;
        let ack = f & 0x10 != 0;
        let want = if rst {
            Class::Rst
        } else if syn {
            Class::Syn
        } else if fin {
            Class::Fin
        } else if ack {
            Class::Ack
        } else {
            Class::None
        };
        assert_eq!(flag_class(f), want, "{f:#04x}");
    }
}

#[test]
fn the_two_tables_differ_only_where_5_2_says() {
    // Guards against check_table silently comparing a table with itself.
    let mut diffs = Vec::new();
    for dir in [Dir::Input, Dir::Output, Dir::InputOnly] {
        for class in [Class::Syn, Class::Fin, Class::Ack, Class::Rst] {
            for s in tcp::STATES {
                let n = next_state(s, dir, class, false);
                let d = next_state(s, dir, class, true);
                if n != d {
                    diffs.push((dir, class, s, n, d));
                }
            }
        }
    }
    let sa = State::SynAck;
    let sr = State::SynRecv;
    let want = vec![
        (Dir::Input, Class::Syn, sa, sr, sa),
        (Dir::Input, Class::Fin, sa, State::TimeWait, sa),
        (Dir::Input, Class::Ack, sr, State::Established, sr),
        (Dir::Input, Class::Ack, sa, State::Established, sa),
        (Dir::Input, Class::Rst, sa, sr, State::Close),
        (Dir::Output, Class::Syn, sr, sr, sa),
        (Dir::Output, Class::Syn, sa, sr, sa),
        (Dir::InputOnly, Class::Syn, State::None, sr, sa),
        (Dir::InputOnly, Class::Syn, State::FinWait, sr, sa),
        (Dir::InputOnly, Class::Syn, State::TimeWait, sr, sa),
        (Dir::InputOnly, Class::Syn, State::Close, sr, sa),
        (Dir::InputOnly, Class::Syn, State::CloseWait, sr, sa),
        (Dir::InputOnly, Class::Syn, State::LastAck, sr, sa),
        (Dir::InputOnly, Class::Syn, State::Listen, sr, sa),
        (Dir::InputOnly, Class::Syn, sa, sr, sa),
    ];
    assert_eq!(diffs, want);
}

/// ActiveConn/InActConn of one real server, driven only by the transition
/// results, as the connection layer will drive them.
#[derive(Debug, Default, PartialEq)]
struct Rs {
    active: i64,
    inactive: i64,
}

impl Rs {
    /// New entries are bound inactive (state NONE).
    fn bind(&mut self) {
        self.inactive += 1;
    }
    fn apply(&mut self, m: CounterMove) {
        match m {
            CounterMove::Stay => {}
            CounterMove::ToActive => {
                self.active += 1;
                self.inactive -= 1;
            }
            CounterMove::ToInactive => {
                self.active -= 1;
                self.inactive += 1;
            }
        }
    }
    fn expire(&mut self, s: State) {
        if s.counts_active() {
            self.active -= 1;
        } else {
            self.inactive -= 1;
        }
    }
    fn counts(&self) -> (i64, i64) {
        (self.active, self.inactive)
    }
}

struct Conn {
    state: State,
    no_output: bool,
    timeout_ms: u32,
    assured: bool,
}

impl Conn {
    fn new(rs: &mut Rs, no_output: bool) -> Conn {
        rs.bind();
        Conn {
            state: State::None,
            no_output,
            timeout_ms: fastpath::proto::INITIAL_TIMEOUT_MS,
            assured: false,
        }
    }
    fn packet(&mut self, rs: &mut Rs, t: &Timeouts, dir: Dir, flags: u8, secure: bool) {
        let (table, no_output) = dir.resolve(self.no_output);
        self.no_output = no_output;
        let tr = on_packet(t, self.state, table, flags, secure);
        rs.apply(tr.counters);
        self.state = tr.state;
        self.timeout_ms = tr.timeout_ms;
        self.assured |= tr.assure;
    }
}

const SYN: u8 = 0x02;
const SYNACK: u8 = 0x12;
const ACK: u8 = 0x10;
const PSHACK: u8 = 0x18;
const FINACK: u8 = 0x11;
const RSTACK: u8 = 0x14;

#[test]
fn typical_dr_flow_with_counters() {
    let t = Timeouts::default();
    let mut rs = Rs::default();
    let mut c = Conn::new(&mut rs, true);
    assert_eq!(
        (c.state, c.timeout_ms, rs.counts()),
        (State::None, 3_000, (0, 1))
    );
    let steps: &[(u8, &str, u32, (i64, i64))] = &[
        (SYN, "SYN_RECV", 60_000, (1, 0)),
        (ACK, "ESTABLISHED", 900_000, (1, 0)),
        (PSHACK, "ESTABLISHED", 900_000, (1, 0)),
        (FINACK, "FIN_WAIT", 120_000, (0, 1)),
        (ACK, "FIN_WAIT", 120_000, (0, 1)),
        (FINACK, "FIN_WAIT", 120_000, (0, 1)),
        (ACK, "FIN_WAIT", 120_000, (0, 1)),
    ];
    for &(flags, state, to, counts) in steps {
        c.packet(&mut rs, &t, Dir::Input, flags, false);
        assert_eq!(c.state.name(), state, "after {flags:#x}");
        assert_eq!(c.timeout_ms, to, "after {flags:#x}");
        assert_eq!(rs.counts(), counts, "after {flags:#x}");
        assert!(c.no_output);
    }
    assert!(c.assured, "ESTABLISHED assures the template");
    // Entry expires 120 s after the last packet.
    rs.expire(c.state);
    assert_eq!(rs.counts(), (0, 0));

    // A reset during FIN_WAIT closes it for 10 s.
    let mut c = Conn::new(&mut rs, true);
    for f in [SYN, ACK, FINACK, RSTACK] {
        c.packet(&mut rs, &t, Dir::Input, f, false);
    }
    assert_eq!(
        (c.state, c.timeout_ms, rs.counts()),
        (State::Close, 10_000, (0, 1))
    );
    rs.expire(c.state);
    assert_eq!(rs.counts(), (0, 0));
}

#[test]
fn typical_nat_flow_with_counters() {
    let t = Timeouts::default();
    let mut rs = Rs::default();
    let mut c = Conn::new(&mut rs, false);
    // (direction, flags, state, timeout, (active, inactive), assured)
    type Step = (Dir, u8, &'static str, u32, (i64, i64), bool);
    let steps: &[Step] = &[
        (Dir::Input, SYN, "SYN_RECV", 60_000, (1, 0), false),
        (Dir::Output, SYNACK, "SYN_RECV", 60_000, (1, 0), false),
        (Dir::Input, ACK, "ESTABLISHED", 900_000, (1, 0), true),
        (Dir::Output, PSHACK, "ESTABLISHED", 900_000, (1, 0), true),
        (Dir::Output, FINACK, "FIN_WAIT", 120_000, (0, 1), true),
        (Dir::Input, FINACK, "TIME_WAIT", 120_000, (0, 1), true),
        (Dir::Output, ACK, "TIME_WAIT", 120_000, (0, 1), true),
    ];
    for &(dir, flags, state, to, counts, assured) in steps {
        c.packet(&mut rs, &t, dir, flags, false);
        assert_eq!(c.state.name(), state, "{dir:?} {flags:#x}");
        assert_eq!(c.timeout_ms, to);
        assert_eq!(rs.counts(), counts, "{dir:?} {flags:#x}");
        assert_eq!(c.assured, assured);
        assert!(!c.no_output);
    }
    rs.expire(c.state);
    assert_eq!(rs.counts(), (0, 0));
}

#[test]
fn secure_nat_handshake_needs_the_servers_synack() {
    let t = Timeouts::default();
    let mut rs = Rs::default();
    let mut c = Conn::new(&mut rs, false);
    let steps: &[(Dir, u8, State, (i64, i64))] = &[
        (Dir::Input, SYN, State::SynRecv, (1, 0)),
        // A spoofing client's blind ACK does not establish the entry.
        (Dir::Input, ACK, State::SynRecv, (1, 0)),
        (Dir::Output, SYNACK, State::SynAck, (1, 0)),
        (Dir::Input, ACK, State::SynAck, (1, 0)),
        (Dir::Output, ACK, State::Established, (1, 0)),
        (Dir::Input, FINACK, State::CloseWait, (0, 1)),
    ];
    for &(dir, flags, state, counts) in steps {
        c.packet(&mut rs, &t, dir, flags, true);
        assert_eq!(c.state, state, "{dir:?} {flags:#x}");
        assert_eq!(c.timeout_ms, t.tcp(state));
        assert_eq!(rs.counts(), counts);
    }
}

#[test]
fn first_output_packet_leaves_the_input_only_table_for_good() {
    let t = Timeouts::default();
    let mut rs = Rs::default();
    // A synced DR-style entry (NOOUTPUT) that starts seeing replies.
    let mut c = Conn::new(&mut rs, true);
    c.packet(&mut rs, &t, Dir::Input, SYN, false);
    c.packet(&mut rs, &t, Dir::Input, ACK, false);
    assert!(c.no_output);
    // INPUT-ONLY: client FIN on ESTABLISHED → FIN_WAIT.
    // After an OUTPUT packet, INPUT: client FIN on ESTABLISHED → CLOSE_WAIT.
    c.packet(&mut rs, &t, Dir::Output, ACK, false);
    assert!(!c.no_output);
    c.packet(&mut rs, &t, Dir::Input, FINACK, false);
    assert_eq!(c.state, State::CloseWait);
    assert_eq!(rs.counts(), (0, 1));
}

#[test]
fn dir_resolve() {
    assert_eq!(Dir::Input.resolve(false), (Dir::Input, false));
    assert_eq!(Dir::Output.resolve(false), (Dir::Output, false));
    assert_eq!(Dir::Input.resolve(true), (Dir::InputOnly, true));
    assert_eq!(Dir::Output.resolve(true), (Dir::Output, false));
    assert_eq!(Dir::InputOnly.resolve(true), (Dir::InputOnly, true));
    assert_eq!(
        (Dir::Input as u8, Dir::Output as u8, Dir::InputOnly as u8),
        (0, 1, 2)
    );
}

#[test]
fn counter_moves_only_when_activity_flips_and_assure_only_on_entering_established() {
    let t = Timeouts::default();
    // NONE → SYN_RECV: inactive → active.
    let tr = on_packet(&t, State::None, Dir::Input, SYN, false);
    assert_eq!(tr.counters, CounterMove::ToActive);
    assert!(!tr.assure);
    // SYN_RECV → ESTABLISHED: both active.
    let tr = on_packet(&t, State::SynRecv, Dir::Input, ACK, false);
    assert_eq!(tr.counters, CounterMove::Stay);
    assert!(tr.assure);
    // ESTABLISHED → ESTABLISHED: no change, no (re-)assure.
    let tr = on_packet(&t, State::Established, Dir::Input, ACK, false);
    assert_eq!((tr.counters, tr.assure), (CounterMove::Stay, false));
    // ESTABLISHED → FIN_WAIT.
    let tr = on_packet(&t, State::Established, Dir::InputOnly, FINACK, false);
    assert_eq!(tr.counters, CounterMove::ToInactive);
    // TIME_WAIT → SYN_RECV on a new SYN: back to active.
    let tr = on_packet(&t, State::TimeWait, Dir::Input, SYN, false);
    assert_eq!(
        (tr.state, tr.counters),
        (State::SynRecv, CounterMove::ToActive)
    );
    // CLOSE → CLOSE: nothing moves.
    let tr = on_packet(&t, State::Close, Dir::Input, 0, false);
    assert_eq!((tr.state, tr.counters), (State::Close, CounterMove::Stay));
    // Every cell of both tables: the move is exactly the activity flip.
    for secure in [false, true] {
        for dir in [Dir::Input, Dir::Output, Dir::InputOnly] {
            for flags in [SYN, FINACK, ACK, RSTACK, 0] {
                for s in tcp::STATES {
                    let tr = on_packet(&t, s, dir, flags, secure);
                    let want = match (s.counts_active(), tr.state.counts_active()) {
                        (false, true) => CounterMove::ToActive,
                        (true, false) => CounterMove::ToInactive,
                        _ => CounterMove::Stay,
                    };
                    assert_eq!(tr.counters, want);
                    assert_eq!(
                        tr.assure,
                        s != State::Established && tr.state == State::Established
                    );
                }
            }
        }
    }
}

#[test]
fn scheduling_and_new_connection_predicates() {
    // 4.4: SYN without RST; sloppy: any segment without RST.
    assert!(tcp::may_schedule(SYN, false));
    assert!(!tcp::may_schedule(SYN | 0x04, false));
    assert!(!tcp::may_schedule(ACK, false));
    assert!(tcp::may_schedule(ACK, true));
    assert!(tcp::may_schedule(0, true));
    assert!(!tcp::may_schedule(RSTACK, true));
    // 5.4: any SYN (the kernel tests only the SYN bit).
    assert!(tcp::is_new_conn(SYN));
    assert!(tcp::is_new_conn(SYNACK));
    assert!(tcp::is_new_conn(SYN | 0x04));
    assert!(!tcp::is_new_conn(ACK));
}

#[test]
fn state_machine_runs_in_const_context() {
    // `const fn` end to end: the per-packet path cannot allocate or lock.
    const T: Timeouts = Timeouts::DEFAULT;
    const TR: fastpath::proto::Transition<State> =
        on_packet(&T, State::None, Dir::InputOnly, 0x02, true);
    assert_eq!(TR.state, State::SynAck);
    assert_eq!(TR.timeout_ms, 120_000);
}
