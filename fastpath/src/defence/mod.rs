//! Overload defences (reference 7): IPVS's `drop_entry`, `drop_packet`
//! and `secure_tcp`, each in the kernel's modes 0 to 3.
//!
//! The kernel engages them when free memory falls below `amemthresh`,
//! because its connection table grows until memory runs out. A worker's
//! table here is preallocated and simply fills, so the pressure that
//! matters is its fill: the table is *short* ("nomem") while its free
//! slots are fewer than `amemthresh`, which is the part of the capacity
//! above `table_threshold`. The shared persistence-template table counts
//! the same way (its shards are preallocated too); the system's free
//! memory says nothing about either, since nothing in the data plane
//! allocates after start-up. Every worker evaluates its own table once a
//! second and whenever the settings change, as `update_defense_level`
//! runs from the kernel's defence timer and on every sysctl write.
//!
//! - [`Level`]: the kernel's mode machine (1 ↔ 2 as the shortage comes
//!   and goes), `drop_packet`'s rate and counter, and secure_tcp's switch;
//! - [`drop_entry`]: the once-a-second random scan of 1/32 of the buckets
//!   and its candidates, and the one thing ripvs adds: while drop_entry
//!   is on, a new connection that finds the table full takes the place of
//!   one of the scan's unconditional candidates (a half-open TCP or SCTP
//!   entry) from its own or a nearby bucket, as Linux conntrack's
//!   `early_drop` does. The kernel never needs that (its table is never
//!   full); a fixed table would otherwise refuse every legitimate client
//!   until the scan, at 1/32 of the table a second, caught up with a
//!   flood that refills it in milliseconds.
//!
//! Nothing here runs per packet but [`Level::todrop`] (a decrement) and
//! the flag tests secure_tcp and the eviction cost; with every defence off
//! the established path pays nothing.

pub mod drop_entry;

use core::sync::atomic::{AtomicU32, Ordering::Relaxed};

/// The kernel's mode values for drop_entry, drop_packet and secure_tcp.
pub mod mode {
    pub const OFF: u8 = 0;
    /// Automatic, currently off.
    pub const AUTO_OFF: u8 = 1;
    /// Automatic, currently on.
    pub const AUTO_ON: u8 = 2;
    pub const ALWAYS: u8 = 3;
}

/// IPVS's defaults: everything off, `am_droprate` 10.
pub const DEFAULT_AM_DROPRATE: u32 = 10;

/// Default `table_threshold`, per mille of a worker's capacity: the
/// defences engage with a tenth of the table still free. IPVS's 1024
/// pages (4 MiB) leave a kernel with little slack because it can still
/// allocate past them; a fixed table cannot, and drop_packet's rate,
/// amemthresh / (amemthresh − free), needs room between engaging (rate
/// large, few drops) and a full table (rate 1, every new connection
/// dropped) to be a ramp rather than a switch.
pub const DEFAULT_THRESHOLD_PERMILLE: u16 = 900;

/// The defences as configured (`[ipvs]` and `[defence]`): what the
/// operator wrote, before the automatic modes rewrite 1 ↔ 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefenceSettings {
    pub drop_entry: u8,
    pub drop_packet: u8,
    pub secure_tcp: u8,
    /// drop_packet's rate in mode 3: one in `am_droprate` new connections.
    pub am_droprate: u32,
    /// The fill, per mille of capacity, above which a table is short.
    pub threshold_permille: u16,
}

impl Default for DefenceSettings {
    fn default() -> Self {
        DefenceSettings {
            drop_entry: mode::OFF,
            drop_packet: mode::OFF,
            secure_tcp: mode::OFF,
            am_droprate: DEFAULT_AM_DROPRATE,
            threshold_permille: DEFAULT_THRESHOLD_PERMILLE,
        }
    }
}

/// A table's shortage: `avail` free entries against the threshold
/// `amemthresh` (both in entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortage {
    pub avail: u64,
    pub amemthresh: u64,
}

impl Shortage {
    /// A table of `capacity` entries holding `len`, with the threshold at
    /// `permille` of its capacity.
    pub fn of(len: usize, capacity: usize, permille: u16) -> Self {
        let cap = capacity as u64;
        let used_max = cap * u64::from(permille.min(1000)) / 1000;
        Shortage {
            avail: cap.saturating_sub(len as u64),
            amemthresh: cap - used_max,
        }
    }

    /// The kernel's `nomem`.
    pub fn short(&self) -> bool {
        self.avail < self.amemthresh
    }

    /// drop_packet's automatic rate, `amemthresh / (amemthresh − avail)`.
    fn rate(&self) -> u32 {
        let gap = self.amemthresh.saturating_sub(self.avail).max(1);
        (self.amemthresh / gap).clamp(1, u64::from(u32::MAX)) as u32
    }

    /// The worse of two tables: short if either is, and then the shorter
    /// one's figures (the higher drop rate).
    pub fn worst(self, other: Shortage) -> Shortage {
        match (self.short(), other.short()) {
            (true, true) if other.rate() < self.rate() => other,
            (false, true) => other,
            _ => self,
        }
    }
}

/// What one evaluation switched: each defence engaged or released.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    pub drop_entry: Option<bool>,
    pub drop_packet: Option<bool>,
    pub secure_tcp: Option<bool>,
}

/// One worker's defences: the kernel's `update_defense_level` state.
#[derive(Debug, Clone)]
pub struct Level {
    cfg: DefenceSettings,
    /// The mode values as the kernel rewrites its sysctls (1 ↔ 2).
    drop_entry: u8,
    drop_packet: u8,
    secure_tcp: u8,
    old_secure_tcp: u8,
    dropentry: bool,
    drop_rate: u32,
    drop_counter: u32,
}

impl Level {
    pub fn new(cfg: DefenceSettings) -> Self {
        Level {
            cfg,
            drop_entry: cfg.drop_entry,
            drop_packet: cfg.drop_packet,
            secure_tcp: cfg.secure_tcp,
            old_secure_tcp: mode::OFF,
            dropentry: false,
            drop_rate: 0,
            drop_counter: 0,
        }
    }

    pub fn settings(&self) -> DefenceSettings {
        self.cfg
    }

    /// New settings, as a sysctl write: a mode the operator changed takes
    /// the written value (a mode left alone keeps its 1 or 2). Evaluate
    /// right after, as the kernel does on a write.
    pub fn configure(&mut self, cfg: DefenceSettings) {
        if cfg.drop_entry != self.cfg.drop_entry {
            self.drop_entry = cfg.drop_entry;
        }
        if cfg.drop_packet != self.cfg.drop_packet {
            self.drop_packet = cfg.drop_packet;
        }
        if cfg.secure_tcp != self.cfg.secure_tcp {
            self.secure_tcp = cfg.secure_tcp;
        }
        self.cfg = cfg;
    }

    /// The kernel's `update_defense_level` with `s` as its memory figures.
    pub fn update(&mut self, s: Shortage) -> Changes {
        let nomem = s.short();
        let was = (self.dropentry, self.drop_rate != 0, self.secure());

        self.dropentry = match self.drop_entry {
            mode::AUTO_OFF | mode::AUTO_ON => {
                self.drop_entry = if nomem { mode::AUTO_ON } else { mode::AUTO_OFF };
                nomem
            }
            mode::ALWAYS => true,
            _ => false,
        };

        self.drop_rate = match self.drop_packet {
            mode::AUTO_OFF | mode::AUTO_ON => {
                self.drop_packet = if nomem { mode::AUTO_ON } else { mode::AUTO_OFF };
                if nomem {
                    self.drop_counter = s.rate();
                    s.rate()
                } else {
                    0
                }
            }
            mode::ALWAYS => self.cfg.am_droprate,
            _ => 0,
        };

        if matches!(self.secure_tcp, mode::AUTO_OFF | mode::AUTO_ON) {
            self.secure_tcp = if nomem { mode::AUTO_ON } else { mode::AUTO_OFF };
        }
        self.old_secure_tcp = self.secure_tcp;

        let now = (self.dropentry, self.drop_rate != 0, self.secure());
        let diff = |a: bool, b: bool| (a != b).then_some(b);
        Changes {
            drop_entry: diff(was.0, now.0),
            drop_packet: diff(was.1, now.1),
            secure_tcp: diff(was.2, now.2),
        }
    }

    /// drop_packet (`ip_vs_todrop`): whether to drop this packet that
    /// would create a connection, one in every `drop_rate`.
    #[inline]
    pub fn todrop(&mut self) -> bool {
        if self.drop_rate == 0 {
            return false;
        }
        self.drop_counter = self.drop_counter.saturating_sub(1);
        if self.drop_counter > 0 {
            return false;
        }
        self.drop_counter = self.drop_rate;
        true
    }

    /// Whether TCP entries move through the DoS ("secure") state table:
    /// while secure_tcp's value is 2 or 3, as the kernel switches its
    /// `tcp_state_table` when the value crosses 2.
    #[inline]
    pub fn secure(&self) -> bool {
        self.old_secure_tcp >= mode::AUTO_ON
    }

    /// Whether drop_entry is on (its scan runs, and a full table evicts).
    #[inline]
    pub fn dropentry(&self) -> bool {
        self.dropentry
    }

    /// The values `/proc/sys/net/ipv4/vs/*` would show now.
    pub fn values(&self) -> (u8, u8, u8) {
        (self.drop_entry, self.drop_packet, self.secure_tcp)
    }

    pub fn drop_rate(&self) -> u32 {
        self.drop_rate
    }
}

/// A worker's defence state as the control thread reads it: written by
/// the worker only, after each evaluation.
#[derive(Debug, Default)]
pub struct Published {
    modes: AtomicU32,
    rate: AtomicU32,
    conns: AtomicU32,
    capacity: AtomicU32,
}

/// What [`Published`] holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct View {
    pub drop_entry: u8,
    pub drop_packet: u8,
    pub secure_tcp: u8,
    /// drop_packet's current rate (0: not dropping).
    pub drop_rate: u32,
    /// The worker's connection table at the evaluation.
    pub conns: u32,
    pub capacity: u32,
}

impl Published {
    /// `l`'s state, evaluated on a table of `conns` of `capacity`.
    pub fn publish(&self, l: &Level, conns: usize, capacity: usize) {
        let (e, p, s) = l.values();
        self.modes.store(
            u32::from(e) | u32::from(p) << 8 | u32::from(s) << 16,
            Relaxed,
        );
        self.rate.store(l.drop_rate(), Relaxed);
        self.conns.store(conns as u32, Relaxed);
        self.capacity.store(capacity as u32, Relaxed);
    }

    pub fn view(&self) -> View {
        let v = self.modes.load(Relaxed);
        View {
            drop_entry: v as u8,
            drop_packet: (v >> 8) as u8,
            secure_tcp: (v >> 16) as u8,
            drop_rate: self.rate.load(Relaxed),
            conns: self.conns.load(Relaxed),
            capacity: self.capacity.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests;
