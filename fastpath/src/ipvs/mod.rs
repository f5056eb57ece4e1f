//! The IPVS engine of one worker: a packet for a virtual service finds its
//! connection (or gets one: service, persistence, scheduler), moves the
//! protocol state machine, and leaves by its real server's forwarding
//! method; NAT replies find their connection the other way round.
//!
//! The shape is kernel IPVS's (`ip_vs_in`, `ip_vs_out`, `ip_vs_schedule`),
//! with the table per core: the owner of a connection is a pure function of
//! the client endpoint ([`crate::conn::owner_core`]), and a packet that
//! arrives on another core is handed to the owner before anything looks at
//! a table.
//!
//! The engine is [`Ipvs`], its methods given the worker's egress part
//! ([`crate::output::egress::Egress`]) by whoever hands it a packet: the
//! engine decides, the egress part sends, and neither holds the other, so
//! `host` (which holds both) is imported by neither. One file per concern:
//!
//! - here: settings, what workers share, the engine's state, snapshots;
//! - `l4`: the fields a packet is keyed on, parsed once;
//! - `input`: packets to a VIP and their connection;
//! - `output`: NAT replies;
//! - `relay`: ICMP errors about connections;
//! - `schedule`: a new connection (service, persistence, scheduler);
//! - `state`: the protocol state machine and the counts it moves;
//! - `forward`: leaving by the real server's method;
//! - `expire`: connections and templates whose time is up;
//! - `defend`: the overload defences on this worker's tables (their
//!   rules are [`crate::defence`]'s);
//! - `synced`: a backup's side, installing the connections and templates
//!   its sync thread receives from the master;
//! - `synproxy`: the SYN proxy's hooks ([`crate::synproxy`]).
//!
//! The persistence templates all workers share are [`crate::persist`]'s.

mod defend;
mod expire;
pub(crate) mod forward;
mod input;
mod l4;
mod output;
mod relay;
mod schedule;
mod state;
pub(crate) use state::established_ack;
mod synced;
mod synproxy;

pub(crate) use l4::L4;

use crate::conn::{self, ConnTable};
use crate::persist::{Templates, TplKey};
use crate::proto::Timeouts;
use crate::sched::{self, Scheduler};
use crate::service::counters::{update_overload, CoreCounters, Load, Overload};
use crate::service::{Service, ServiceTable};
use core::net::Ipv4Addr;
use std::sync::Arc;

/// Workers a director can run (the counter views are fixed arrays of this).
pub const MAX_WORKERS: usize = 64;

/// The IPVS settings ripvs implements (`[ipvs]` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub expire_nodest_conn: bool,
    pub expire_quiescent_template: bool,
    pub conn_reuse_mode: u8,
    pub sloppy_tcp: bool,
    pub sloppy_sctp: bool,
    /// A master sync daemon runs: workers offer connections to it.
    pub sync: Option<crate::sync::SyncParams>,
    /// IPVS `backup_only` while a backup daemon runs: the director does not
    /// answer for its VIPs nor forward their traffic (counted as
    /// `standby`), so a backup on the same network stays quiet.
    pub standby: bool,
    /// The SYN cookies' key: drawn once by the daemon, the same for every
    /// worker and every snapshot (a cookie made before a reload is still
    /// good after it).
    pub synproxy_secret: crate::synproxy::cookie::Secret,
    /// drop_entry, drop_packet, secure_tcp and their threshold.
    pub defence: crate::defence::DefenceSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            expire_nodest_conn: false,
            expire_quiescent_template: false,
            conn_reuse_mode: 1,
            sloppy_tcp: false,
            sloppy_sctp: false,
            sync: None,
            standby: false,
            synproxy_secret: Default::default(),
            defence: Default::default(),
        }
    }
}

/// What all workers share: every core's counters (each written by its
/// core only), the overload marks, and the persistence templates.
pub struct Shared {
    pub cores: Vec<Arc<CoreCounters>>,
    pub overload: Overload,
    pub templates: Templates,
    /// Which VRRP instances are master here (see `gate`).
    pub mastery: crate::gate::Mastery,
    /// Each worker's defence state, as it last evaluated it.
    pub defence: Box<[crate::defence::Published]>,
}

impl Shared {
    /// Re-evaluates a real server's overload mark from its load summed
    /// over every core, after a bind (`bound`) or an unbind.
    pub(crate) fn reevaluate(&self, svc: &Service, dest: u32, bound: bool) {
        if let Some(d) = Ipvs::find_dest(svc, dest) {
            let cores: arrayvec::ArrayVec<&CoreCounters, MAX_WORKERS> =
                self.cores.iter().map(|c| c.as_ref()).collect();
            let (a, i) = crate::service::counters::load(&cores, dest);
            update_overload(
                &self.overload,
                dest,
                a + i,
                d.u_threshold,
                d.l_threshold,
                bound,
            );
        }
    }

    pub fn new(workers: usize, max_templates: usize) -> Self {
        Shared::with_services(
            workers,
            max_templates,
            crate::service::counters::DEFAULT_SERVICES,
        )
    }

    /// [`Shared::new`] with counters for `max_services` services (the
    /// config's `[dataplane] max_services`).
    pub fn with_services(workers: usize, max_templates: usize, max_services: usize) -> Self {
        assert!(workers <= MAX_WORKERS, "at most {MAX_WORKERS} workers");
        Shared {
            cores: (0..workers)
                .map(|_| Arc::new(CoreCounters::new(max_services)))
                .collect(),
            overload: Overload::default(),
            templates: Templates::new(max_templates),
            mastery: Default::default(),
            defence: (0..workers).map(|_| Default::default()).collect(),
        }
    }
}

/// A service table and its schedulers that a worker lets go of: the old
/// ones after [`Ipvs::install`], or the new ones it refused.
pub struct Released {
    pub table: Arc<ServiceTable>,
    pub scheds: Vec<Box<dyn Scheduler>>,
}

/// The worker's engine state.
pub struct Ipvs {
    pub(crate) table: Arc<ServiceTable>,
    pub(crate) conns: ConnTable<Ipv4Addr>,
    scheds: Vec<Box<dyn Scheduler>>,
    pub(crate) shared: Arc<Shared>,
    me: usize,
    pub(crate) timeouts: Timeouts,
    pub(crate) settings: Settings,
    tpl_cursor: usize,
    /// Where sync candidates go (a master daemon reads them).
    sync_tx: Option<crate::sync::Producer>,
    /// SYN-proxied connections' translations.
    pub(crate) sp: crate::synproxy::Side,
    /// The overload defences' state (`defend.rs`).
    defence: crate::defence::Level,
    scan: crate::defence::drop_entry::Scan,
    rates: crate::defence::drop_entry::Rates,
    tpl_scan: usize,
    /// Where a full table next looks for an entry to give up.
    hand: u32,
    /// When the defences are next evaluated (ms); 0: at the next tick.
    next_defend: u64,
    /// What a new connection's client may not be (the host keeps it).
    pub(crate) own: crate::martian::OwnAddrs,
}

fn ticks(ms: u32) -> conn::Tick {
    ms / conn::TICK_MS
}

impl Ipvs {
    pub fn new(
        table: Arc<ServiceTable>,
        shared: Arc<Shared>,
        me: usize,
        capacity: usize,
        timeouts: Timeouts,
        settings: Settings,
        memory_advice: Option<fn(*const u8, usize)>,
    ) -> Self {
        let scheds = table
            .services()
            .iter()
            .map(|s| Self::build_scheduler(s, &shared))
            .collect();
        let seed = 0x5eed_0000_0000_0000 ^ me as u64;
        let mut sp = crate::synproxy::Side::default();
        sp.secret = settings.synproxy_secret;
        if Self::has_synproxy(&table) {
            sp.ensure(capacity.max(1));
        }
        Ipvs {
            table,
            conns: ConnTable::with_memory_advice(capacity.max(1), seed, |p, n| {
                if let Some(advise) = memory_advice {
                    advise(p, n)
                }
            }),
            scheds,
            shared,
            me,
            timeouts,
            settings,
            tpl_cursor: 0,
            sync_tx: None,
            sp,
            defence: crate::defence::Level::new(settings.defence),
            scan: crate::defence::drop_entry::Scan::new(seed.rotate_left(17)),
            rates: Default::default(),
            tpl_scan: 0,
            hand: 0,
            next_defend: 0,
            own: Default::default(),
        }
    }

    /// Whether any service of `table` is SYN-proxied.
    fn has_synproxy(table: &ServiceTable) -> bool {
        table.services().iter().any(|s| s.synproxy)
    }

    /// This worker's counter block.
    pub(crate) fn mine(&self) -> &CoreCounters {
        &self.shared.cores[self.me]
    }

    /// Connects the engine to the sync thread's ring.
    pub fn set_sync_ring(&mut self, tx: crate::sync::Producer) {
        self.sync_tx = Some(tx);
    }

    /// A scheduler for `s`, built for its servers.
    fn build_scheduler(s: &Service, shared: &Shared) -> Box<dyn Scheduler> {
        let mut sc = sched::new(s.scheduler, s.flags);
        sc.update(&Load {
            dests: &s.dests,
            cores: &shared.cores,
            overload: &shared.overload,
        });
        sc
    }

    /// Whether a service keeps its scheduler object (and so its state)
    /// from `old` to `new` across a snapshot.
    fn keeps_scheduler(old: &Service, new: &Service) -> bool {
        old.scheduler == new.scheduler && old.flags == new.flags
    }

    /// The scheduler set for `table` that the control thread sends each
    /// worker with it: [`sched::Keep`] for a service that keeps its id,
    /// scheduler and flags from `last` (the table the workers run now),
    /// a scheduler built for its servers otherwise. Building is the
    /// expensive part (mh fills a 4,093-slot Maglev table), so it happens
    /// here, on the control thread, and only for what changed: a restore
    /// of 10,000 mh services must not stall a worker for a second.
    pub fn prepare_schedulers(
        table: &ServiceTable,
        last: Option<&ServiceTable>,
        shared: &Shared,
    ) -> Vec<Box<dyn Scheduler>> {
        table
            .services()
            .iter()
            .map(|s| {
                let kept = last.and_then(|l| l.index_of(s.id).map(|o| l.get(o)));
                if kept.is_some_and(|o| Self::keeps_scheduler(o, s)) {
                    return Box::new(sched::Keep) as Box<dyn Scheduler>;
                }
                Self::build_scheduler(s, shared)
            })
            .collect()
    }

    /// [`Ipvs::prepare_schedulers`] for `workers` workers: each scheduler
    /// is built once and copied for the others where copying is the
    /// cheaper ([`Scheduler::duplicate`]), built again where it is not.
    pub fn prepare_scheduler_sets(
        table: &ServiceTable,
        last: Option<&ServiceTable>,
        shared: &Shared,
        workers: usize,
    ) -> Vec<Vec<Box<dyn Scheduler>>> {
        let first = Self::prepare_schedulers(table, last, shared);
        let mut sets: Vec<Vec<Box<dyn Scheduler>>> = (1..workers)
            .map(|_| Vec::with_capacity(first.len()))
            .collect();
        for (s, sc) in table.services().iter().zip(&first) {
            for set in sets.iter_mut() {
                set.push(
                    sc.duplicate()
                        .unwrap_or_else(|| Self::build_scheduler(s, shared)),
                );
            }
        }
        sets.insert(0, first);
        sets
    }

    /// Switches to a new snapshot (design section 4), between bursts.
    /// `scheds` (from [`Ipvs::prepare_schedulers`]) are `table`'s services'
    /// schedulers, in its order; a service that keeps its id and its
    /// scheduler keeps this worker's scheduler and its state instead (the
    /// rr cursor, lblc's table), told of any change to its servers. Returns
    /// what this worker no longer uses, for the control thread to free
    /// (the worker itself never frees memory): the old table, or the new
    /// one when `scheds` is not a set for it.
    pub fn install(
        &mut self,
        table: Arc<ServiceTable>,
        mut scheds: Vec<Box<dyn Scheduler>>,
        timeouts: Timeouts,
        settings: Settings,
    ) -> Result<Released, Released> {
        if scheds.len() != table.services().len() {
            // Not a set for this table: keep running on the old one.
            return Err(Released { table, scheds });
        }
        for (i, s) in table.services().iter().enumerate() {
            let kept = self
                .table
                .index_of(s.id)
                .filter(|&o| Self::keeps_scheduler(self.table.get(o), s));
            match kept {
                Some(o) => {
                    core::mem::swap(&mut scheds[i], &mut self.scheds[o as usize]);
                    // Only a changed server list costs an update (which
                    // may allocate); an unchanged service costs a compare.
                    if self.table.get(o).dests != s.dests {
                        scheds[i].update(&Load {
                            dests: &s.dests,
                            cores: &self.shared.cores,
                            overload: &self.shared.overload,
                        });
                    }
                }
                // The control thread took this worker to run the service
                // already (it can only be wrong after a refused snapshot):
                // build it here, allocation and all, rather than run
                // without one.
                None if scheds[i].is_keep() => scheds[i] = Self::build_scheduler(s, &self.shared),
                // Built for this table by the control thread.
                None => {}
            }
        }
        if Self::has_synproxy(&table) {
            // The first snapshot with a SYN-proxy service: the side table,
            // allocated once, here between bursts, as a scheduler the
            // control thread did not build would be.
            self.sp.ensure(self.conns.capacity());
        }
        self.sp.secret = settings.synproxy_secret;
        let old_table = core::mem::replace(&mut self.table, table);
        let old_scheds = core::mem::replace(&mut self.scheds, scheds);
        self.timeouts = timeouts;
        if settings.defence != self.settings.defence {
            // A sysctl write: evaluated at the next tick, as the kernel
            // evaluates on every write.
            self.defence.configure(settings.defence);
            self.next_defend = 0;
        }
        self.settings = settings;
        Ok(Released {
            table: old_table,
            scheds: old_scheds,
        })
    }

    pub fn table(&self) -> &ServiceTable {
        &self.table
    }

    pub fn connections(&self) -> &ConnTable<Ipv4Addr> {
        &self.conns
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The template key of a connection to `svc` from `client` for a
    /// packet to `vport` (reference 4.5's table).
    pub fn tpl_key(svc: &Service, client: Ipv4Addr, proto: u8, vport: u16) -> TplKey {
        let snet = Ipv4Addr::from_bits(client.to_bits() & svc.netmask.to_bits());
        match svc.fwmark {
            Some(m) => TplKey {
                proto: 0,
                snet,
                vaddr: Ipv4Addr::from_bits(m),
                vport: 0,
            },
            None if svc.port == 0 || svc.port == 21 => TplKey {
                proto,
                snet,
                vaddr: svc.vip,
                vport: 0,
            },
            None => TplKey {
                proto,
                snet,
                vaddr: svc.vip,
                vport,
            },
        }
    }

    fn find_dest(svc: &Service, id: u32) -> Option<&crate::service::Dest> {
        svc.dests.iter().find(|d| d.id == id)
    }
}
