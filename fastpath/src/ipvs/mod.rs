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

pub mod template;

use crate::conn::{self, ConnId, ConnKey, ConnTable};
use crate::io::{Buf, Io};
use crate::output::egress::Egress;
use crate::proto::{self, CounterMove, Dir, Proto, Timeouts};
use crate::sched::{self, Scheduler};
use crate::service::counters::{update_overload, CoreCounters, Load, Overload};
use crate::service::{Method, Service, ServiceTable};
use crate::stats::{DropReason, Event};
use crate::wire::{ethernet, ipv4, Ipv4Packet};
use crate::xmit::{self, icmp, Endpoint, Verdict};
use core::net::Ipv4Addr;
use std::sync::Arc;
use template::{Bound, Templates, TplKey};

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
        }
    }
}

/// What all workers share: every core's counters (each written by its
/// core only), the overload marks, and the persistence templates.
pub struct Shared {
    pub cores: Vec<Arc<CoreCounters>>,
    pub overload: Overload,
    pub templates: Templates,
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
        assert!(workers <= MAX_WORKERS, "at most {MAX_WORKERS} workers");
        Shared {
            cores: (0..workers)
                .map(|_| Arc::new(CoreCounters::default()))
                .collect(),
            overload: Overload::default(),
            templates: Templates::new(max_templates),
        }
    }
}

/// The fields of a packet the engine keys on, parsed once: the ports and
/// flags here, the protocol and addresses in the validated header `ip`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct L4 {
    pub(crate) sport: u16,
    pub(crate) dport: u16,
    /// TCP flags, or the first SCTP chunk type.
    pub(crate) flags: u8,
    /// The chunk after the first (SCTP), for ABORT bundling.
    pub(crate) next_chunk: Option<u8>,
    /// The validated IPv4 header, for the transmit functions.
    pub(crate) ip: xmit::Hdr,
}

fn is_icmp(frame: &[u8]) -> bool {
    frame.get(ethernet::HEADER_LEN + 9) == Some(&ipv4::PROTO_ICMP)
}

fn parse_l4(frame: &[u8]) -> Result<L4, DropReason> {
    let ip = Ipv4Packet::new_checked(&frame[ethernet::HEADER_LEN..])
        .map_err(|_| DropReason::Malformed)?;
    l4_of(&ip)
}

/// The connection key fields of a validated IPv4 datagram.
#[inline]
pub(crate) fn l4_of(ip: &Ipv4Packet<&[u8]>) -> Result<L4, DropReason> {
    if ip.is_fragment() {
        return Err(DropReason::Fragment);
    }
    let p = ip.payload();
    let proto = ip.protocol();
    let (flags, next_chunk, min) = match proto {
        ipv4::PROTO_TCP => (p.get(13).copied().unwrap_or(0), None, 20),
        ipv4::PROTO_UDP => (0, None, 8),
        ipv4::PROTO_SCTP => {
            let first = p.get(12).copied().unwrap_or(0);
            let len = p
                .get(14..16)
                .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]) as usize);
            let next = 12 + ((len + 3) & !3);
            (first, p.get(next).copied().filter(|_| len >= 4), 16)
        }
        _ => return Err(DropReason::NoService),
    };
    if p.len() < min {
        return Err(DropReason::Malformed);
    }
    Ok(L4 {
        sport: u16::from_be_bytes([p[0], p[1]]),
        dport: u16::from_be_bytes([p[2], p[3]]),
        flags,
        next_chunk,
        ip: xmit::Hdr::of(ip),
    })
}

/// Whether a TCP segment with `flags` is a plain ACK class segment: what
/// keeps an ESTABLISHED connection ESTABLISHED in every table.
#[inline]
fn established_ack(flags: u8) -> bool {
    use crate::wire::tcp::{FLAG_ACK, FLAG_FIN, FLAG_RST, FLAG_SYN};
    flags & (FLAG_ACK | FLAG_FIN | FLAG_RST | FLAG_SYN) == FLAG_ACK
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
    ) -> Self {
        let scheds = table
            .services()
            .iter()
            .map(|s| Self::build_scheduler(s, &shared))
            .collect();
        let seed = 0x5eed_0000_0000_0000 ^ me as u64;
        Ipvs {
            table,
            conns: ConnTable::new(capacity.max(1), seed),
            scheds,
            shared,
            me,
            timeouts,
            settings,
            tpl_cursor: 0,
            sync_tx: None,
        }
    }

    /// This worker's counter block.
    pub(crate) fn mine(&self) -> &CoreCounters {
        &self.shared.cores[self.me]
    }

    /// Connects the engine to the sync thread's ring.
    pub fn set_sync_ring(&mut self, tx: crate::sync::Producer) {
        self.sync_tx = Some(tx);
    }

    /// Offers connection `id`, whose incoming packet count is `pkts`, to
    /// the master sync daemon's rules, if one runs: for the packets
    /// [`crate::sync::quiet`] did not rule out.
    #[cold]
    #[inline(never)]
    fn sync_offer(&mut self, id: ConnId, pkts: u16, tick: conn::Tick) {
        let Some(p) = self.settings.sync else { return };
        let (Some(tx), Some(c)) = (self.sync_tx.as_mut(), self.conns.get_mut(id)) else {
            return;
        };
        crate::sync::offer(&p, tx, c, pkts, tick / conn::TICKS_PER_SEC);
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
        let old_table = core::mem::replace(&mut self.table, table);
        let old_scheds = core::mem::replace(&mut self.scheds, scheds);
        self.timeouts = timeouts;
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

    /// Counts a new connection or template against its real server and
    /// re-evaluates the overload mark (reference 3.2).
    fn bind_counts(&self, svc: &Service, dest: u32, active: bool) {
        let c = self.mine();
        if let Some(d) = c.dests.get(dest as usize) {
            d.conns.add(1);
            if active { &d.active } else { &d.inactive }.add(1);
        }
        if let Some(s) = c.services.get(svc.id as usize) {
            s.conns.add(1);
        }
        self.reload(svc, dest, true);
    }

    /// Counts a packet of connection `c` for its real server and service
    /// (`inbound`: client to server).
    #[inline]
    fn count(&self, c: &conn::Conn<Ipv4Addr>, len: u64, inbound: bool) {
        let me = self.mine();
        if let Some(d) = me.dests.get(c.dest as usize) {
            if inbound { &d.in_pkts } else { &d.out_pkts }.add(1);
            if inbound { &d.in_bytes } else { &d.out_bytes }.add(len);
        }
        if let Some(s) = me.services.get(c.svc as usize) {
            if inbound { &s.in_pkts } else { &s.out_pkts }.add(1);
            if inbound { &s.in_bytes } else { &s.out_bytes }.add(len);
        }
    }

    /// Re-evaluates a real server's overload mark from its summed load.
    fn reload(&self, svc: &Service, dest: u32, bound: bool) {
        self.shared.reevaluate(svc, dest, bound);
    }
}

impl Ipvs {
    /// A packet addressed to a VIP (or matching a fwmark rule). `handed`:
    /// another worker already found this worker owns it.
    pub fn input<B: Buf, I: Io<Buf = B>>(
        &mut self,
        eg: &mut Egress<B>,
        io: &mut I,
        port: usize,
        mut pkt: B,
        now: u64,
        handed: bool,
    ) {
        if is_icmp(pkt.data()) {
            return self.icmp(eg, io, port, pkt, now, handed, true);
        }
        let h = match parse_l4(pkt.data()) {
            Ok(h) => h,
            Err(r) => return eg.stats.count_drop(r),
        };
        let n = io.nworkers();
        if !handed && n > 1 {
            let owner = conn::owner_core(h.ip.src, h.sport, n);
            if owner != io.worker() {
                pkt.set_port(port);
                eg.stats.event(Event::Redirected);
                return io.to_peer(owner, pkt);
            }
        }
        let key = ConnKey::new(h.ip.proto, h.ip.src, h.sport, h.ip.dst, h.dport);
        let found = self.conns.lookup_in(&key);
        self.in_conn(eg, io, pkt, &h, found, now);
    }

    /// An inbound packet this worker owns, parsed, with its connection
    /// looked up (`found`).
    #[inline]
    pub(crate) fn in_conn<B: Buf, I: Io<Buf = B>>(
        &mut self,
        eg: &mut Egress<B>,
        io: &mut I,
        pkt: B,
        h: &L4,
        mut found: Option<ConnId>,
        now: u64,
    ) {
        let tick = (now / conn::TICK_MS as u64) as conn::Tick;
        if let Some(id) = found {
            // An entry bound to no local server (a synced one whose
            // service or server is not configured here) has none to lose:
            // it forwards to its daddr (reference 8.5 step 4).
            let gone = self
                .conns
                .get(id)
                .is_some_and(|c| c.dest != conn::NONE && !self.table.dest_live(c.dest));
            if gone && !self.settings.expire_nodest_conn {
                // Reference 4.7: the real server was removed; the packet
                // is dropped and the entry left to time out.
                return eg.stats.count_drop(DropReason::DestRemoved);
            }
            if gone || self.reuse(id, h) {
                self.unbind(id, now);
                self.conns.remove(id);
                found = None;
            }
        }
        let id = match found {
            Some(id) => id,
            None => {
                let key = ConnKey::new(h.ip.proto, h.ip.src, h.sport, h.ip.dst, h.dport);
                match self.new_conn(eg, io, h, key, &pkt, now, tick) {
                    Some(id) => id,
                    None => return,
                }
            }
        };
        self.on_packet(id, h, Dir::Input, tick);
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let pkts = c.count_in_pkt();
        let c = *c;
        self.count(&c, h.ip.total as u64, true);
        let one_packet = c.flags & conn::flags::ONE_PACKET != 0;
        forward(eg, io, pkt, &c, now, Some(&h.ip));
        // A master sync daemon runs: once the packet has gone, as in IPVS,
        // the connection is offered to it (reference 8.2). The copy in
        // hand rules out most packets; the rest go out of line.
        if let Some(p) = &self.settings.sync {
            if !crate::sync::quiet(p, c.flags, pkts) {
                self.sync_offer(id, pkts, tick);
            }
        }
        if one_packet {
            self.unbind(id, now);
            self.conns.remove(id);
        }
    }

    /// A packet that is not for us: a NAT real server's reply to a client,
    /// or nothing we know.
    pub fn output<B: Buf, I: Io<Buf = B>>(
        &mut self,
        eg: &mut Egress<B>,
        io: &mut I,
        port: usize,
        mut pkt: B,
        now: u64,
        handed: bool,
    ) {
        if is_icmp(pkt.data()) {
            return self.icmp(eg, io, port, pkt, now, handed, false);
        }
        let h = match parse_l4(pkt.data()) {
            Ok(h) => h,
            Err(_) => return eg.stats.count_drop(DropReason::UnknownDestination),
        };
        let n = io.nworkers();
        if !handed && n > 1 {
            let owner = conn::owner_core(h.ip.dst, h.dport, n);
            if owner != io.worker() {
                pkt.set_port(port);
                eg.stats.event(Event::Redirected);
                eg.stats.event(Event::RedirectedReply);
                return io.to_peer(owner, pkt);
            }
        }
        let key = ConnKey::new(h.ip.proto, h.ip.src, h.sport, h.ip.dst, h.dport);
        let Some(id) = self.conns.lookup_out(&key) else {
            return eg.stats.count_drop(DropReason::UnknownDestination);
        };
        self.out_conn(eg, io, pkt, &h, id, now);
    }

    /// A reply of connection `id`, which this worker owns.
    #[inline]
    pub(crate) fn out_conn<B: Buf, I: Io<Buf = B>>(
        &mut self,
        eg: &mut Egress<B>,
        io: &mut I,
        mut pkt: B,
        h: &L4,
        id: ConnId,
        now: u64,
    ) {
        let tick = (now / conn::TICK_MS as u64) as conn::Tick;
        self.on_packet(id, h, Dir::Output, tick);
        let Some(c) = self.conns.get(id).copied() else {
            return;
        };
        self.count(&c, h.ip.total as u64, false);
        let hop = eg.next_hop(h.ip.dst);
        let mtu = match hop {
            Some(nh) => nh.mtu,
            None => eg.mtu_by_route(h.ip.dst),
        };
        let v = xmit::nat::snat_checked(
            &mut pkt,
            &h.ip,
            Endpoint::new(c.daddr, c.dport),
            Endpoint::new(c.vaddr, c.vport),
            mtu,
        );
        match (v, hop) {
            // The client is the destination: what `send_ip` would find,
            // with the size already checked against this hop's MTU.
            (Verdict::Forward, Some(nh)) => eg.send_l2(io, nh.port(), nh.mac, pkt),
            _ => after_xmit(eg, io, pkt, v, c.vaddr, now),
        }
    }

    /// An ICMP error about a connection (reference 6.5). `inbound`: it
    /// came to a VIP from the client side, about a packet the client got
    /// (from the VIP); else from a NAT real server about a client packet.
    /// Either way the quoted packet names the connection; the error goes
    /// to the real server by the connection's method, or back to the
    /// client from the VIP.
    // The engine, the egress part and the I/O, then the packet: one
    // argument over clippy's limit, which a struct would only rename.
    #[allow(clippy::too_many_arguments)]
    fn icmp<B: Buf, I: Io<Buf = B>>(
        &mut self,
        eg: &mut Egress<B>,
        io: &mut I,
        port: usize,
        mut pkt: B,
        now: u64,
        handed: bool,
        inbound: bool,
    ) {
        let e = match icmp::classify(pkt.data()) {
            // Errors from the path to a tunnel real server are not relayed
            // yet (documented); nor is anything about other connections.
            icmp::Classified::Error(e) if e.tunnel.is_none() => e,
            icmp::Classified::BadChecksum => return eg.stats.count_drop(DropReason::BadChecksum),
            icmp::Classified::Malformed => return eg.stats.count_drop(DropReason::Malformed),
            icmp::Classified::Fragment | icmp::Classified::EmbeddedFragment => {
                return eg.stats.count_drop(DropReason::Fragment)
            }
            _ if inbound => return eg.stats.count_drop(DropReason::NoService),
            _ => return eg.stats.count_drop(DropReason::UnknownDestination),
        };
        // The quoted packet went director/VIP → client (inbound) or
        // client → real server (outbound): the client is its destination
        // or its source.
        let client = if inbound { e.dst } else { e.src };
        let n = io.nworkers();
        if !handed && n > 1 {
            let owner = conn::owner_core(client.addr, client.port, n);
            if owner != io.worker() {
                pkt.set_port(port);
                eg.stats.event(Event::Redirected);
                return io.to_peer(owner, pkt);
            }
        }
        let key = ConnKey::new(e.proto, e.dst.addr, e.dst.port, e.src.addr, e.src.port);
        let found = if inbound {
            self.conns.lookup_in(&key)
        } else {
            self.conns.lookup_out(&key)
        };
        let Some(c) = found.and_then(|id| self.conns.get(id)).copied() else {
            let why = if inbound {
                DropReason::NoConnection
            } else {
                DropReason::UnknownDestination
            };
            return eg.stats.count_drop(why);
        };
        eg.stats.event(Event::IcmpRelayed);
        if inbound {
            return forward(eg, io, pkt, &c, now, None);
        }
        let (vip, rs) = (
            Endpoint::new(c.vaddr, c.vport),
            Endpoint::new(c.daddr, c.dport),
        );
        let mtu = eg.mtu_towards(client.addr);
        let v = icmp::translate_to_client(&mut pkt, rs, vip, mtu);
        after_relay(eg, io, pkt, v, now);
    }

    /// A new connection for the packet `h` (reference 4.4): service,
    /// persistence, scheduler, entry. None: the packet was dropped (counted)
    /// or answered.
    // The engine, the egress part and the I/O, then the packet: one
    // argument over clippy's limit, which a struct would only rename.
    #[allow(clippy::too_many_arguments)]
    fn new_conn<B: Buf, I: Io<Buf = B>>(
        &mut self,
        eg: &mut Egress<B>,
        io: &mut I,
        h: &L4,
        key: ConnKey<Ipv4Addr>,
        pkt: &B,
        now: u64,
        tick: conn::Tick,
    ) -> Option<ConnId> {
        let may = match Proto::from_ip(h.ip.proto) {
            Some(Proto::Tcp) => proto::tcp::may_schedule(h.flags, self.settings.sloppy_tcp),
            Some(Proto::Sctp) => proto::sctp::may_schedule(h.flags, self.settings.sloppy_sctp),
            Some(Proto::Udp) => true,
            None => false,
        };
        let Some(si) = self.table.lookup(h.ip.proto, h.ip.dst, h.dport) else {
            eg.stats.count_drop(DropReason::NoService);
            return None;
        };
        if !may {
            eg.stats.count_drop(DropReason::NoConnection);
            return None;
        }
        let svc = &self.table.services()[si as usize];
        let pkt_s = sched::Packet {
            src: h.ip.src.into(),
            dst: h.ip.dst.into(),
            sport: h.sport,
            dport: h.dport,
            proto: h.ip.proto,
        };
        let load = Load {
            dests: &svc.dests,
            cores: &self.shared.cores,
            overload: &self.shared.overload,
        };
        let sched = &mut self.scheds[si as usize];
        let mut pick = || sched.schedule(&load, &pkt_s, now).map(|i| &svc.dests[i]);
        let mut controlled = false;
        let chosen = match svc.persistent {
            None => pick().map(|d| (d.id, d.addr, d.port)),
            Some(secs) => {
                let k = Ipvs::tpl_key(svc, h.ip.src, h.ip.proto, h.dport);
                let quiescent_ok = !self.settings.expire_quiescent_template;
                let valid = |t: &template::Tpl| {
                    Ipvs::find_dest(svc, t.dest).is_some_and(|d| d.weight > 0 || quiescent_ok)
                };
                match self
                    .shared
                    .templates
                    .bind(k, now, secs as u64 * 1000, valid, || {
                        pick().map(|d| (d.id, d.addr, d.port))
                    }) {
                    Bound::Existing(t) => {
                        controlled = true;
                        Some((t.dest, t.daddr, t.dport))
                    }
                    Bound::Created(t) => {
                        controlled = true;
                        if let Some(d) = self.shared.cores[self.me].dests.get(t.dest as usize) {
                            d.persist.add(1);
                        }
                        Some((t.dest, t.daddr, t.dport))
                    }
                    Bound::Unremembered(t) => Some((t.dest, t.daddr, t.dport)),
                    Bound::NoDest => None,
                }
            }
        };
        let Some((dest_id, daddr, rport)) = chosen else {
            eg.stats.count_drop(DropReason::NoDestination);
            eg.icmp_error(
                io,
                pkt.data(),
                icmp::ErrorKind::PortUnreachable,
                h.ip.dst,
                now,
            );
            return None;
        };
        let svc = &self.table.services()[si as usize];
        let method = Ipvs::find_dest(svc, dest_id).map_or(Method::Dr, |d| d.method);
        // The real server's port only replaces the packet's when the
        // packet's port is the service's (not for port-0 or fwmark services).
        let dport = if h.dport == svc.port && rport != 0 {
            rport
        } else {
            h.dport
        };
        let mut c = conn::Conn::new(key, daddr, dport);
        c.flags = method as u16 | conn::flags::INACTIVE;
        if method != Method::Nat {
            c.flags |= conn::flags::NOOUTPUT;
        }
        if svc.ops && h.ip.proto == ipv4::PROTO_UDP {
            c.flags |= conn::flags::ONE_PACKET;
        }
        c.dest = dest_id;
        c.svc = svc.id;
        c.control = if controlled { 0 } else { conn::NONE };
        let id = match self.conns.insert(c, tick) {
            Ok(id) => id,
            Err(_) => {
                if controlled {
                    self.shared
                        .templates
                        .release(&Ipvs::tpl_key(svc, h.ip.src, h.ip.proto, h.dport));
                }
                eg.stats.count_drop(DropReason::ConnTableFull);
                return None;
            }
        };
        self.bind_counts(svc, dest_id, false);
        Some(id)
    }

    /// conn_reuse_mode / expire_nodest_conn (reference 5.4) for a new
    /// connection's first packet matching an old entry.
    #[inline]
    fn reuse(&self, id: ConnId, h: &L4) -> bool {
        // Only the first packet of a new connection can reuse an entry,
        // so most packets are done after looking at their flags.
        let Some(p) = Proto::from_ip(h.ip.proto) else {
            return false;
        };
        let is_new = match p {
            Proto::Tcp => proto::tcp::is_new_conn(h.flags),
            Proto::Sctp => proto::sctp::is_new_conn(h.flags),
            Proto::Udp => false,
        };
        if !is_new {
            return false;
        }
        let Some(c) = self.conns.get(id) else {
            return false;
        };
        let svc = self.table.by_id(c.svc);
        let quiesced = self.settings.expire_nodest_conn
            && c.dest != conn::NONE
            && svc
                .and_then(|s| Ipvs::find_dest(s, c.dest))
                .is_none_or(|d| d.weight == 0);
        let check = proto::ReuseCheck {
            proto: p,
            state: c.state,
            no_output: c.flags & conn::flags::NOOUTPUT != 0,
            controlled: c.control != conn::NONE,
            expire_quiesced: quiesced,
            conn_reuse_mode: self.settings.conn_reuse_mode,
        };
        check.decide() == proto::Reuse::Reschedule
    }

    /// Moves the protocol state machine for one packet of connection `id`,
    /// with the ActiveConn/InActConn and template bookkeeping it implies,
    /// and restarts the entry's timer.
    #[inline]
    fn on_packet(&mut self, id: ConnId, h: &L4, dir: Dir, tick: conn::Tick) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        // The packet of nearly every TCP connection's life: a segment with
        // neither SYN, FIN nor RST on an established connection, in either
        // direction of any table, leaves it established and only restarts
        // its timer (reference 5.2). Skip the tables for it.
        if h.ip.proto == ipv4::PROTO_TCP
            && c.state == proto::tcp::State::Established as u8
            && established_ack(h.flags)
            && (dir == Dir::Input || c.flags & conn::flags::NOOUTPUT == 0)
        {
            c.timeout = ticks(self.timeouts.tcp(proto::tcp::State::Established));
            self.conns.touch(id, tick);
            return;
        }
        self.on_packet_tables(id, h, dir, tick)
    }

    /// [`Ipvs::on_packet`] through the state tables: out of line, so the
    /// shortcut above inlines where packets are forwarded.
    #[inline(never)]
    fn on_packet_tables(&mut self, id: ConnId, h: &L4, dir: Dir, tick: conn::Tick) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let (dir, no_output) = dir.resolve(c.flags & conn::flags::NOOUTPUT != 0);
        if !no_output {
            c.flags &= !conn::flags::NOOUTPUT;
        }
        let (state, timeout_ms, counters, assure) = match Proto::from_ip(c.proto()) {
            Some(Proto::Tcp) => {
                let Some(st) = proto::tcp::State::from_u8(c.state) else {
                    return;
                };
                let t = proto::tcp::on_packet(&self.timeouts, st, dir, h.flags, false);
                (t.state as u8, t.timeout_ms, t.counters, t.assure)
            }
            Some(Proto::Udp) => {
                let t = proto::udp::on_packet(&self.timeouts, dir);
                (t.state as u8, t.timeout_ms, t.counters, t.assure)
            }
            Some(Proto::Sctp) => {
                let Some(st) = proto::sctp::State::from_u8(c.state) else {
                    return;
                };
                let ev = proto::sctp::event(h.flags, h.next_chunk);
                let t = proto::sctp::on_packet(&self.timeouts, st, dir, ev);
                (t.state as u8, t.timeout_ms, t.counters, t.assure)
            }
            None => return,
        };
        if c.state != state {
            c.flags |= conn::flags::SYNC_STATE_CHANGED;
        }
        c.state = state;
        c.timeout = ticks(timeout_ms);
        let (dest, svc_id, controlled, caddr, vport, proto_n) = (
            c.dest,
            c.svc,
            c.control != conn::NONE,
            c.caddr(),
            c.vport,
            c.proto(),
        );
        match counters {
            CounterMove::Stay => {}
            CounterMove::ToActive | CounterMove::ToInactive => {
                c.flags ^= conn::flags::INACTIVE;
                if let Some(d) = self.shared.cores[self.me].dests.get(dest as usize) {
                    let up = counters == CounterMove::ToActive;
                    d.active.add(if up { 1 } else { -1 });
                    d.inactive.add(if up { -1 } else { 1 });
                }
            }
        }
        self.conns.touch(id, tick);
        if assure && controlled {
            if let Some(svc) = self.table.by_id(svc_id) {
                self.shared
                    .templates
                    .assure(&Ipvs::tpl_key(svc, caddr, proto_n, vport));
            }
        }
    }

    /// Undoes a connection's counts when it goes (reference 3.2, 4.3).
    fn unbind(&mut self, id: ConnId, _now: u64) {
        let Some(c) = self.conns.get(id) else { return };
        let active = c.flags & conn::flags::INACTIVE == 0;
        if let Some(d) = self.shared.cores[self.me].dests.get(c.dest as usize) {
            if active { &d.active } else { &d.inactive }.add(-1);
        }
        if let Some(svc) = self.table.by_id(c.svc) {
            if c.control != conn::NONE {
                self.shared
                    .templates
                    .release(&Ipvs::tpl_key(svc, c.caddr(), c.proto(), c.vport));
            }
            self.reload(svc, c.dest, false);
        }
    }

    /// Expires connections and templates whose time is up: bounded work
    /// per call, so a worker never stalls on a mass expiry.
    pub fn tick(&mut self, now: u64) {
        let tick = (now / conn::TICK_MS as u64) as conn::Tick;
        let (shared, me, table) = (&self.shared, self.me, &self.table);
        self.conns.expire(tick, 4096, |_, c| {
            if c.n_control > 0 {
                return conn::ExpireAction::Rearm(ticks(proto::CONTROL_REARM_MS));
            }
            let active = c.flags & conn::flags::INACTIVE == 0;
            if let Some(d) = shared.cores[me].dests.get(c.dest as usize) {
                if active { &d.active } else { &d.inactive }.add(-1);
            }
            if let Some(svc) = table.by_id(c.svc) {
                if c.control != conn::NONE {
                    shared
                        .templates
                        .release(&Ipvs::tpl_key(svc, c.caddr(), c.proto(), c.vport));
                }
                shared.reevaluate(svc, c.dest, false);
            }
            conn::ExpireAction::Remove
        });
        let mine = &shared.cores[me];
        let syncing = self.settings.sync.is_some();
        let tx = &mut self.sync_tx;
        let rearm = proto::CONTROL_REARM_MS as u64;
        shared.templates.expire(
            now,
            &mut self.tpl_cursor,
            1,
            rearm,
            |t| {
                if let Some(d) = mine.dests.get(t.dest as usize) {
                    d.persist.add(-1);
                }
            },
            |k, t| {
                if let (true, Some(tx)) = (syncing, tx.as_mut()) {
                    tx.push(&crate::sync::SyncConn::template(k, t, rearm));
                }
            },
        );
    }
}

/// Sends a relayed ICMP error, or counts why not: no error is ever
/// sent about an ICMP error (RFC 1122).
fn after_relay<B: Buf, I: Io<Buf = B>>(
    eg: &mut Egress<B>,
    io: &mut I,
    pkt: B,
    v: Verdict,
    now: u64,
) {
    match v {
        Verdict::Forward => eg.send_ip(io, pkt, now),
        Verdict::TimeExceeded => eg.stats.count_drop(DropReason::TtlExceeded),
        Verdict::BadChecksum => eg.stats.count_drop(DropReason::BadChecksum),
        Verdict::Fragment => eg.stats.count_drop(DropReason::Fragment),
        Verdict::Malformed | Verdict::Mismatch => eg.stats.count_drop(DropReason::Malformed),
        _ => eg.stats.count_drop(DropReason::TooBig),
    }
}

/// Sends a connection's packet to its real server by its method.
/// `ip`: the packet's header as validated on its way in; `None` when
/// the packet is an ICMP error about the connection (a relay), so NAT
/// translates the quoted packet too, and nothing answers a refusal.
fn forward<B: Buf, I: Io<Buf = B>>(
    eg: &mut Egress<B>,
    io: &mut I,
    mut pkt: B,
    c: &conn::Conn<Ipv4Addr>,
    now: u64,
    ip: Option<&xmit::Hdr>,
) {
    let hop = eg.next_hop(c.daddr);
    let mtu = match hop {
        Some(nh) => nh.mtu,
        None => eg.mtu_by_route(c.daddr),
    };
    let method = (c.flags & conn::flags::FWD_MASK) as u8;
    let dr = method == Method::Dr as u8;
    let v = match ip {
        _ if dr => match ip {
            Some(h) => xmit::dr::transmit_checked(&mut pkt, h, mtu),
            None => xmit::dr::transmit(&mut pkt, mtu),
        },
        _ if method == Method::Tun as u8 => {
            let src = match hop {
                Some(nh) => nh.src,
                None => eg
                    .routes
                    .lookup(c.daddr)
                    .map_or(Ipv4Addr::UNSPECIFIED, |r| r.src),
            };
            let ident = eg.next_ident();
            let p = xmit::tun::TunParams::new(src, c.daddr, mtu, ident);
            xmit::tun::encapsulate(&mut pkt, &p)
        }
        Some(h) => xmit::nat::dnat_checked(
            &mut pkt,
            h,
            Endpoint::new(c.vaddr, c.vport),
            Endpoint::new(c.daddr, c.dport),
            mtu,
        ),
        None => icmp::translate_to_real_server(
            &mut pkt,
            Endpoint::new(c.vaddr, c.vport),
            Endpoint::new(c.daddr, c.dport),
            mtu,
        ),
    };
    if v == Verdict::Forward {
        // DR: the real server is the next hop and the VIP stays the
        // destination. TUN and NAT: the real server is the (outer)
        // destination, so this hop is what `send_ip` would find, and
        // the transmit function checked the size against its MTU.
        match hop {
            Some(nh) if dr || ip.is_some() => return eg.send_l2(io, nh.port(), nh.mac, pkt),
            None if dr => return eg.send_via(io, pkt, c.daddr, now),
            _ => {}
        }
    }
    match ip {
        Some(_) => after_xmit(eg, io, pkt, v, c.vaddr, now),
        None => after_relay(eg, io, pkt, v, now),
    }
}

/// Routes a rewritten packet, or answers and counts what xmit refused.
fn after_xmit<B: Buf, I: Io<Buf = B>>(
    eg: &mut Egress<B>,
    io: &mut I,
    pkt: B,
    v: Verdict,
    err_src: Ipv4Addr,
    now: u64,
) {
    match v {
        Verdict::Forward => eg.send_ip(io, pkt, now),
        Verdict::TimeExceeded => {
            eg.stats.count_drop(DropReason::TtlExceeded);
            eg.icmp_error(io, pkt.data(), icmp::ErrorKind::TimeExceeded, err_src, now);
        }
        Verdict::FragNeeded { mtu } => {
            eg.stats.count_drop(DropReason::TooBig);
            eg.icmp_error(
                io,
                pkt.data(),
                icmp::ErrorKind::FragNeeded { mtu },
                err_src,
                now,
            );
        }
        Verdict::NeedsFragmentation | Verdict::TunnelMtuTooSmall | Verdict::NoRoom => {
            eg.stats.count_drop(DropReason::TooBig)
        }
        Verdict::Fragment => eg.stats.count_drop(DropReason::Fragment),
        Verdict::BadChecksum => eg.stats.count_drop(DropReason::BadChecksum),
        Verdict::Malformed | Verdict::Mismatch => eg.stats.count_drop(DropReason::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `on_packet` skips the state tables for [`established_ack`] segments
    /// on ESTABLISHED entries; that is only right if the tables agree for
    /// every such flag byte, in every direction and table, secure or not.
    #[test]
    fn the_established_shortcut_agrees_with_the_tables() {
        let t = Timeouts::DEFAULT;
        let est = proto::tcp::State::Established;
        let mut checked = 0;
        for flags in 0..=255u8 {
            if !established_ack(flags) {
                continue;
            }
            for dir in [Dir::Input, Dir::Output, Dir::InputOnly] {
                for secure in [false, true] {
                    let tr = proto::tcp::on_packet(&t, est, dir, flags, secure);
                    assert_eq!(tr.state, est, "flags {flags:#x} {dir:?}");
                    assert_eq!(tr.timeout_ms, t.tcp(est));
                    assert_eq!(tr.counters, CounterMove::Stay);
                    assert!(!tr.assure);
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 16 * 6, "every byte with ACK and no SYN/FIN/RST");
        assert!(!established_ack(0) && !established_ack(0x11) && established_ack(0x18));
    }
}
