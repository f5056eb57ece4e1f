//! IPVS's per-protocol connection state machines and their timeouts
//! (reference 4.3, 5, 7; SCTP from the kernel, see [`sctp`]).
//!
//! Everything here is pure: the caller hands in what it already parsed (the
//! TCP flags byte, the SCTP chunk types) and gets back the next state, the
//! timeout to arm, whether the real server's ActiveConn/InActConn gauges
//! must move and whether the controlling template becomes assured. The
//! connection layer owns the entry, its NOOUTPUT flag and the counters.
//!
//! The per-packet functions are `const fn` over `const` tables indexed by
//! `#[repr(u8)]` enums: they cannot allocate, lock or index out of range,
//! and each transition is a handful of loads.
//!
//! Timeouts are milliseconds (`u32`), the unit of the worker clock
//! (`Io::now_ms`); the longest value ipvsadm accepts (2 678 400 s) still
//! fits.

pub mod sctp;
pub mod tcp;
pub mod udp;

/// The protocols IPVS keeps connection state for, by IP protocol number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Proto {
    Tcp = 6,
    Udp = 17,
    Sctp = 132,
}

impl Proto {
    pub const fn from_ip(protocol: u8) -> Option<Proto> {
        match protocol {
            6 => Some(Proto::Tcp),
            17 => Some(Proto::Udp),
            132 => Some(Proto::Sctp),
            _ => None,
        }
    }

    /// As `/proc/net/ip_vs_conn` and `ipvsadm -L -c` print it.
    pub const fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
            Proto::Sctp => "SCTP",
        }
    }

    /// How many states the protocol has; valid state bytes are below it
    /// (sync messages carrying a larger one must be refused).
    pub const fn num_states(self) -> u8 {
        match self {
            Proto::Tcp => tcp::NUM_STATES as u8,
            Proto::Udp => udp::NUM_STATES as u8,
            Proto::Sctp => sctp::NUM_STATES as u8,
        }
    }
}

/// Which transition table a packet goes through, numbered as the kernel's
/// `IP_VS_DIR_*`. A packet is only ever seen as `Input` (client → RS) or
/// `Output` (RS → client, NAT only); `InputOnly` is what `Input` becomes
/// while the entry has NOOUTPUT, because without replies the director must
/// guess the server's half of the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Dir {
    Input = 0,
    Output = 1,
    InputOnly = 2,
}

impl Dir {
    /// The table for a packet seen in direction `self` on an entry whose
    /// NOOUTPUT flag is `no_output`, and the flag's value afterwards: the
    /// first OUTPUT packet clears it for good (an entry synced from a DR
    /// director that later sees replies switches to the full tables).
    #[inline]
    pub const fn resolve(self, no_output: bool) -> (Dir, bool) {
        match (self, no_output) {
            (Dir::Output, _) => (Dir::Output, false),
            (_, true) => (Dir::InputOnly, true),
            (d, false) => (d, false),
        }
    }
}

/// Timeout of a freshly created entry, before the packet that created it
/// has been through the state machine (`ip_vs_conn_new` arms 3 s, not the
/// NONE state's 2 s). The creator arms this; the transition for the same
/// packet then replaces it.
pub const INITIAL_TIMEOUT_MS: u32 = 3_000;

/// An entry that expires while it still controls others (a template, an
/// FTP control connection) is kept and re-armed for this long (4.3).
pub const CONTROL_REARM_MS: u32 = 60_000;

/// How the real server's ActiveConn/InActConn gauges move after a packet.
///
/// Derived from the old and new states alone, which is right as long as
/// every entry is counted by [`counts_active`] of its state from the moment
/// it is bound: new entries start in NONE (inactive), and entries installed
/// from sync must be bound the same way. (The kernel's sync receiver still
/// binds a non-ESTABLISHED TCP entry as inactive, a leftover from before
/// 4.7 that its per-entry INACTIVE flag then corrects; ripvs keeps no such
/// flag, so it must not copy that.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterMove {
    Stay,
    /// InActConn −1, ActiveConn +1.
    ToActive,
    /// ActiveConn −1, InActConn +1.
    ToInactive,
}

impl CounterMove {
    #[inline]
    pub const fn between(was_active: bool, now_active: bool) -> CounterMove {
        match (was_active, now_active) {
            (false, true) => CounterMove::ToActive,
            (true, false) => CounterMove::ToInactive,
            _ => CounterMove::Stay,
        }
    }
}

/// What one packet did to a connection entry of protocol state type `S`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition<S> {
    pub state: S,
    /// Re-arm the entry's timer to now + this (every packet restarts it).
    pub timeout_ms: u32,
    pub counters: CounterMove,
    /// Mark the controlling template ASSURED (if there is one and it is a
    /// template): the client has proven it completes connections, so the
    /// defences and forced expiry leave the template alone.
    pub assure: bool,
}

/// State name for `ipvsadm -L -c` of a raw state byte; `"ERR!"` when out of
/// range, as the kernel prints.
pub const fn state_name(proto: Proto, state: u8) -> &'static str {
    match proto {
        Proto::Tcp => match tcp::State::from_u8(state) {
            Some(s) => s.name(),
            None => "ERR!",
        },
        Proto::Udp => match udp::State::from_u8(state) {
            Some(s) => s.name(),
            None => "ERR!",
        },
        Proto::Sctp => match sctp::State::from_u8(state) {
            Some(s) => s.name(),
            None => "ERR!",
        },
    }
}

/// Whether an entry in this state is counted in ActiveConn (else InActConn);
/// out-of-range states are inactive, as in the kernel.
pub const fn counts_active(proto: Proto, state: u8) -> bool {
    match proto {
        Proto::Tcp => match tcp::State::from_u8(state) {
            Some(s) => s.counts_active(),
            None => false,
        },
        Proto::Udp => false,
        Proto::Sctp => match sctp::State::from_u8(state) {
            Some(s) => s.counts_active(),
            None => false,
        },
    }
}

/// Persistence-template states (templates are entries too and show in
/// `ipvsadm -L -c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TemplateState {
    None = 0,
    Assured = 1,
}

impl TemplateState {
    pub const fn name(self) -> &'static str {
        match self {
            TemplateState::None => "NONE",
            TemplateState::Assured => "ASSURED",
        }
    }
}

/// Per-state timeouts of every protocol, in milliseconds. One per
/// namespace in IPVS; one per snapshot here. Only the three `--set` values
/// can change (there are no `timeout_*` sysctls in modern kernels), and
/// secure_tcp does not touch them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    tcp: [u32; tcp::NUM_STATES],
    udp: u32,
    sctp: [u32; sctp::NUM_STATES],
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts::DEFAULT
    }
}

impl Timeouts {
    /// The kernel's defaults.
    pub const DEFAULT: Timeouts = Timeouts {
        tcp: tcp::DEFAULT_TIMEOUTS_MS,
        udp: udp::DEFAULT_TIMEOUT_MS,
        sctp: sctp::DEFAULT_TIMEOUTS_MS,
    };

    #[inline]
    pub const fn tcp(&self, state: tcp::State) -> u32 {
        self.tcp[state as usize]
    }

    #[inline]
    pub const fn udp(&self) -> u32 {
        self.udp
    }

    #[inline]
    pub const fn sctp(&self, state: sctp::State) -> u32 {
        self.sctp[state as usize]
    }

    /// Timeout of a raw state byte; `None` when out of range.
    pub const fn get(&self, proto: Proto, state: u8) -> Option<u32> {
        match proto {
            Proto::Tcp => match tcp::State::from_u8(state) {
                Some(s) => Some(self.tcp(s)),
                None => None,
            },
            Proto::Udp => match udp::State::from_u8(state) {
                Some(_) => Some(self.udp),
                None => None,
            },
            Proto::Sctp => match sctp::State::from_u8(state) {
                Some(s) => Some(self.sctp(s)),
                None => None,
            },
        }
    }

    /// `ipvsadm --set tcp tcpfin udp`, in seconds: TCP ESTABLISHED, TCP
    /// FIN_WAIT, UDP; 0 keeps the current value. Range checks (ipvsadm's
    /// 0..=2678400) belong to the caller; larger values saturate rather
    /// than wrap.
    pub fn set(&mut self, tcp_s: u32, tcpfin_s: u32, udp_s: u32) {
        let ms = |s: u32| s.saturating_mul(1000);
        if tcp_s != 0 {
            self.tcp[tcp::State::Established as usize] = ms(tcp_s);
        }
        if tcpfin_s != 0 {
            self.tcp[tcp::State::FinWait as usize] = ms(tcpfin_s);
        }
        if udp_s != 0 {
            self.udp = ms(udp_s);
        }
    }

    /// The three `--set` values in whole seconds, as
    /// `ipvsadm -L --timeout` prints them.
    pub const fn listed(&self) -> (u32, u32, u32) {
        (
            self.tcp[tcp::State::Established as usize] / 1000,
            self.tcp[tcp::State::FinWait as usize] / 1000,
            self.udp / 1000,
        )
    }
}

/// What to do with an existing entry hit by a packet that opens a new
/// connection (reference 5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// Use the entry: the packet goes to the same real server.
    Keep,
    /// Expire the entry now (unless it still controls others, which then
    /// just lose it at their own pace) and schedule the packet as new.
    Reschedule,
}

/// The facts the conn_reuse_mode decision needs. The caller has already
/// established that the packet opens a connection ([`tcp::is_new_conn`],
/// [`sctp::is_new_conn`]; UDP never does) and is not a non-first fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReuseCheck {
    pub proto: Proto,
    /// The existing entry's raw state.
    pub state: u8,
    /// The entry still has NOOUTPUT (DR/TUN: no reply ever seen).
    pub no_output: bool,
    /// The entry is controlled (by a persistence template or an FTP
    /// control connection).
    pub controlled: bool,
    /// `expire_nodest_conn` is on and the entry's real server has weight 0.
    pub expire_quiesced: bool,
    /// The `conn_reuse_mode` sysctl (default 1).
    pub conn_reuse_mode: u8,
}

impl ReuseCheck {
    /// ripvs has no conntrack, so IPVS's "drop the SYN while the old
    /// conntrack entry lives" branch never applies: a reschedule always
    /// goes ahead.
    pub const fn decide(&self) -> Reuse {
        let opens = match self.proto {
            Proto::Tcp | Proto::Sctp => true,
            Proto::Udp => false,
        };
        if !opens {
            return Reuse::Keep;
        }
        // Draining a quiesced server wins even over persistence: that is
        // what weight 0 plus expire_nodest_conn asks for.
        if self.expire_quiesced {
            return Reuse::Reschedule;
        }
        if self.conn_reuse_mode == 0 || self.controlled {
            return Reuse::Keep;
        }
        let expected = match self.proto {
            Proto::Tcp => {
                let tw = tcp::State::TimeWait as u8;
                let cl = tcp::State::Close as u8;
                let fw = tcp::State::FinWait as u8;
                self.state == tw
                    || self.state == cl
                    || (self.conn_reuse_mode & 2 != 0 && self.state == fw && self.no_output)
            }
            Proto::Sctp => self.state == sctp::State::Closed as u8,
            Proto::Udp => false,
        };
        if expected {
            Reuse::Reschedule
        } else {
            Reuse::Keep
        }
    }
}
