//! The burst path against the scalar path. `Worker::poll` normally hands a
//! received burst to `Host::input_burst`, which looks up the connections of
//! the whole burst at once and sends what it recognises straight to the
//! engine; `Worker::set_scalar(true)` makes it hand every frame to
//! `Host::input` instead, the general path that everything uncommon takes
//! anyway. Whatever shortcuts the burst path takes (today's, or the vector
//! pipeline's that will replace it), it must not be seen to take them: the
//! same frames must leave, byte for byte and in the same order, and the
//! same things must be counted.
//!
//! Two directors with the same configuration, one on each path, get the
//! same pseudo-random traffic, and after every round everything each of
//! their workers sent (per port, to the kernel, to its peers) and
//! everything they count or hold (drops, events, service and real-server
//! counters, the connection entries, templates, neighbours) must be equal.
//! The traffic is what a director sees: mostly established flows, new
//! connections, FIN/RST, reused ports, NAT replies, ICMP errors about
//! connections, ping, ARP (a real server moving to a new MAC in the middle
//! of a burst), damaged frames of every kind, frames for other hosts,
//! frames that belong to the other worker, and between rounds clocks that
//! jump past timeouts and service snapshots that remove real servers or
//! change their weights. Then three focused tests pin down, with exact
//! frames and counters on both paths, the cases a burst pipeline must get
//! right on its own: a mixed burst, a neighbour change while a burst is in
//! flight, and a real server deleted under its connections.

use fastpath::conn::{flags, owner_core, Conn, ConnId};
use fastpath::io::mem::{MemIo, VecBuf};
use fastpath::ipvs::{Ipvs, Settings, Shared};
use fastpath::mailbox::{mailboxes, Postbox, Snapshot};
use fastpath::output::neigh::State;
use fastpath::persist::{Tpl, TplKey};
use fastpath::proto::Timeouts;
use fastpath::sched::Kind;
use fastpath::service::{Dest, Method, Service, ServiceTable, TCP, UDP};
use fastpath::stats::{DropReason, Event};
use fastpath::wire::MacAddr;
use fastpath::{HostConfig, Io, PortConfig, StaticNeighbour, StaticRoute, Worker, WorkerStats};
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::sync::Arc;

#[path = "../../tests/common/frames.rs"]
mod frames;
use frames::{arp, csum, echo, eth, eth_raw, icmp, ip, ipv4, tcp, udp, BCAST};

// ---- the topology: fastpath/tests/ipvs.rs's, with more around it ----

const P0: [u8; 6] = [2, 0, 0, 0, 0, 1];
const P1: [u8; 6] = [2, 0, 0, 0, 1, 1];
/// 10.0.0.2: a client, and the gateway to the clients in 10.200.0.0/16
/// (a static neighbour).
const GW: [u8; 6] = [2, 0xc0, 0, 0, 0, 2];
/// 10.0.0.3: a client the director learns by ARP.
const C3: [u8; 6] = [2, 0xc0, 0, 0, 0, 3];
/// 10.1.0.50: a client on the real servers' network (learned by ARP), so
/// client packets and real servers' ARP share a port's bursts.
const C50: [u8; 6] = [2, 0xc0, 0, 0, 1, 50];
/// 10.1.0.11-13: static neighbours.
const RS: [[u8; 6]; 3] = [
    [2, 0x5e, 0, 0, 0, 11],
    [2, 0x5e, 0, 0, 0, 12],
    [2, 0x5e, 0, 0, 0, 13],
];
/// 10.1.0.21-22: learned by ARP, each at one of two MACs in turn.
const DYN: [[[u8; 6]; 2]; 2] = [
    [[2, 0xaa, 0, 0, 0, 21], [2, 0xbb, 0, 0, 0, 21]],
    [[2, 0xaa, 0, 0, 0, 22], [2, 0xbb, 0, 0, 0, 22]],
];
const VIP: &str = "10.0.0.100";
/// The persistent service's VIP.
const VIP2: &str = "10.0.0.101";

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

fn dest(id: u32, addr: &str, port: u16, method: Method, weight: u32) -> Dest {
    Dest {
        id,
        addr: ip(addr),
        port,
        method,
        weight,
        last_weight: weight,
        u_threshold: 0,
        l_threshold: 0,
    }
}

fn service(id: u32, proto: u8, vip: &str, port: u16, sched: Kind, dests: Vec<Dest>) -> Service {
    Service {
        id,
        proto,
        vip: ip(vip),
        port,
        fwmark: None,
        scheduler: sched,
        flags: Default::default(),
        persistent: None,
        netmask: Ipv4Addr::BROADCAST,
        ops: false,
        synproxy: false,
        dests,
    }
}

/// Every method and protocol, static and learned real servers, one-packet
/// scheduling and persistence.
fn services() -> Vec<Service> {
    use Method::{Dr, Nat, Tun};
    let mut ops = service(
        4,
        UDP,
        VIP,
        5000,
        Kind::Rr,
        vec![
            dest(8, "10.1.0.12", 5000, Dr, 1),
            dest(9, "10.1.0.13", 5000, Dr, 1),
        ],
    );
    ops.ops = true;
    let mut persistent = service(
        5,
        TCP,
        VIP2,
        22,
        Kind::Rr,
        vec![
            dest(10, "10.1.0.11", 22, Dr, 1),
            dest(11, "10.1.0.12", 22, Dr, 1),
            dest(12, "10.1.0.21", 22, Dr, 1),
        ],
    );
    persistent.persistent = Some(300);
    persistent.netmask = Ipv4Addr::new(255, 255, 255, 0);
    vec![
        service(
            0,
            TCP,
            VIP,
            80,
            Kind::Rr,
            vec![
                dest(0, "10.1.0.11", 80, Dr, 1),
                dest(1, "10.1.0.21", 80, Dr, 1),
            ],
        ),
        service(
            1,
            TCP,
            VIP,
            8080,
            Kind::Wlc,
            vec![
                dest(2, "10.1.0.12", 80, Nat, 1),
                dest(3, "10.1.0.22", 80, Nat, 2),
            ],
        ),
        service(
            2,
            TCP,
            VIP,
            443,
            Kind::Rr,
            vec![
                dest(4, "10.1.0.13", 443, Tun, 1),
                dest(5, "10.1.0.21", 443, Tun, 1),
            ],
        ),
        service(
            3,
            UDP,
            VIP,
            53,
            Kind::Rr,
            vec![
                dest(6, "10.1.0.11", 53, Nat, 1),
                dest(7, "10.1.0.22", 53, Nat, 1),
            ],
        ),
        ops,
        persistent,
    ]
}

/// Real-server ids [`services`] uses: the counters compared.
const DEST_IDS: u32 = 13;
const SERVICE_IDS: u32 = 6;

fn config(services: Vec<Service>) -> HostConfig {
    let neighbours = (0..3)
        .map(|i| StaticNeighbour {
            port: 1,
            ip: Ipv4Addr::new(10, 1, 0, 11 + i as u8),
            mac: MacAddr(RS[i]),
        })
        .chain([StaticNeighbour {
            port: 0,
            ip: ip("10.0.0.2"),
            mac: MacAddr(GW),
        }])
        .collect();
    HostConfig {
        ports: vec![
            PortConfig {
                mac: MacAddr(P0),
                mtu: 1500,
                addrs: vec![(ip("10.0.0.1"), 24)],
                exception: true,
                rss_owner: false,
            },
            PortConfig {
                mac: MacAddr(P1),
                mtu: 1500,
                addrs: vec![(ip("10.1.0.1"), 24)],
                exception: true,
                rss_owner: false,
            },
        ],
        vips: vec![ip(VIP), ip(VIP2)],
        routes: vec![StaticRoute {
            net: ip("10.200.0.0"),
            prefix_len: 16,
            via: Some(ip("10.0.0.2")),
            port: 0,
        }],
        neighbours,
        neigh_limit: 64,
        services: ServiceTable::new(services, vec![]).unwrap(),
        max_connections: 4096,
        ..Default::default()
    }
}

// ---- a director: its workers, on one path ----

struct Side {
    io: MemIo,
    w: Worker<VecBuf>,
    stats: Arc<WorkerStats>,
}

/// What one worker sent during a round.
#[derive(Debug, Default, PartialEq)]
struct Sent {
    /// Per port, what the neighbour timers sent at the end of the last
    /// round (`poll` runs them after its transmit flush), sorted: they run
    /// in the order of the neighbour hash map, whose seed differs from one
    /// map to the next, so two directors probe the same neighbours in
    /// different orders whatever path their packets take.
    timers: Vec<Vec<Vec<u8>>>,
    /// Per port.
    tx: Vec<Vec<Vec<u8>>>,
    kernel: Vec<Vec<Vec<u8>>>,
    /// (worker, port the frame came in on, frame).
    peers: Vec<(usize, usize, Vec<u8>)>,
}

/// Everything a director counts and holds that its traffic can change.
#[derive(Debug, PartialEq)]
struct Held {
    /// (what, worker or core, id, field, value).
    counters: Vec<(&'static str, usize, u32, &'static str, i64)>,
    /// Per worker, every connection entry by its slot.
    conns: Vec<Vec<(ConnId, Conn<Ipv4Addr>)>>,
    templates: Vec<(TplKey, Tpl)>,
    /// Per worker: the neighbours the traffic involves.
    neigh: Vec<Vec<Option<(State, MacAddr)>>>,
}

struct Director {
    sides: Vec<Side>,
    shared: Arc<Shared>,
    post: Postbox,
    /// The table the workers run, for the schedulers of the next.
    table: ServiceTable,
}

/// Neighbours whose entries the comparison covers.
const NEIGHBOURS: [(usize, &str); 4] = [
    (0, "10.0.0.3"),
    (1, "10.1.0.21"),
    (1, "10.1.0.22"),
    (1, "10.1.0.50"),
];

impl Director {
    fn new(services: Vec<Service>, workers: usize, scalar: bool) -> Director {
        let cfg = config(services);
        let shared = Arc::new(Shared::new(workers, 256));
        let (post, boxes) = mailboxes(workers);
        let sides = boxes
            .into_iter()
            .enumerate()
            .map(|(me, mb)| {
                let stats = Arc::new(WorkerStats::default());
                let mut io = MemIo::new(2);
                io.worker = me;
                io.nworkers = workers;
                let mut w = Worker::with_shared(&cfg, stats.clone(), shared.clone(), me);
                w.set_scalar(scalar);
                w.set_mailbox(mb);
                Side { io, w, stats }
            })
            .collect();
        Director {
            sides,
            shared,
            post,
            table: cfg.services,
        }
    }

    /// One round: each worker in turn gets its frames (worker, port,
    /// frame) and polls once; what it hands to a peer waits for that
    /// peer's poll (later in this round, or the next).
    fn round(&mut self, frames: &[(usize, usize, Vec<u8>)]) -> Vec<Sent> {
        let mut sent = Vec::new();
        for s in &mut self.sides {
            assert_eq!(s.io.flush(), 0, "no transmit queue limit");
            let mut out = Sent::default();
            for port in 0..2 {
                let mut t = s.io.take_tx(port);
                t.sort();
                out.timers.push(t);
            }
            sent.push(out);
        }
        for (w, port, f) in frames {
            self.sides[*w].io.push_rx(*port, f);
        }
        for (me, out) in sent.iter_mut().enumerate() {
            let s = &mut self.sides[me];
            s.w.poll(&mut s.io);
            for port in 0..2 {
                out.tx.push(s.io.take_tx(port));
                out.kernel.push(s.io.take_to_kernel(port));
            }
            let handed = std::mem::take(&mut s.io.to_peers);
            for (to, pkt) in handed {
                out.peers.push((to, pkt.port, pkt.bytes.clone()));
                self.sides[to].io.from_peers.push_back(pkt);
            }
        }
        sent
    }

    fn advance(&mut self, ms: u64) {
        for s in &mut self.sides {
            s.io.now += ms;
        }
    }

    /// Sends every worker a snapshot of `services`, which they take at
    /// their next poll.
    fn publish(&mut self, services: Vec<Service>, expire_nodest_conn: bool) {
        let table = ServiceTable::new(services, vec![]).unwrap();
        let mut sets =
            Ipvs::prepare_scheduler_sets(&table, Some(&self.table), &self.shared, self.sides.len());
        let table = Arc::new(table);
        let snap = Snapshot {
            vips: table.vips().into(),
            gate: std::sync::Arc::from([]),
            table: table.clone(),
            timeouts: Timeouts::DEFAULT,
            settings: Settings {
                expire_nodest_conn,
                ..Default::default()
            },
        };
        self.post
            .publish(&snap, |w| std::mem::take(&mut sets[w]))
            .unwrap();
        self.table = (*table).clone();
    }

    fn held(&self) -> Held {
        let mut counters = Vec::new();
        for (w, s) in self.sides.iter().enumerate() {
            for &d in DropReason::ALL {
                counters.push(("drop", w, 0, d.name(), s.stats.drops(d) as i64));
            }
            for &e in Event::ALL {
                counters.push(("event", w, 0, e.name(), s.stats.count(e) as i64));
            }
        }
        for (core, c) in self.shared.cores.iter().enumerate() {
            for id in 0..DEST_IDS {
                let d = &c.dests[id as usize];
                for (field, v) in [
                    ("conns", d.conns.get() as i64),
                    ("in_pkts", d.in_pkts.get() as i64),
                    ("out_pkts", d.out_pkts.get() as i64),
                    ("in_bytes", d.in_bytes.get() as i64),
                    ("out_bytes", d.out_bytes.get() as i64),
                    ("active", d.active.get()),
                    ("inactive", d.inactive.get()),
                    ("persist", d.persist.get()),
                ] {
                    counters.push(("dest", core, id, field, v));
                }
            }
            for id in 0..SERVICE_IDS {
                let s = &c.services[id as usize];
                for (field, v) in [
                    ("conns", s.conns.get()),
                    ("in_pkts", s.in_pkts.get()),
                    ("out_pkts", s.out_pkts.get()),
                    ("in_bytes", s.in_bytes.get()),
                    ("out_bytes", s.out_bytes.get()),
                ] {
                    counters.push(("service", core, id, field, v as i64));
                }
            }
        }
        let conns = self
            .sides
            .iter()
            .map(|s| {
                let table = s.w.host().ipvs().connections();
                let mut v = Vec::with_capacity(table.len());
                table.page(0, usize::MAX, |id, c| v.push((id, *c)));
                assert_eq!(v.len(), table.len());
                v
            })
            .collect();
        let mut templates = Vec::new();
        let mut shard = Some(0);
        while let Some(s) = shard {
            shard = self
                .shared
                .templates
                .page(s, |k, t| templates.push((*k, *t)));
        }
        // Shards are hash maps: their order says nothing.
        templates.sort_by_key(|(k, _)| (k.proto, k.snet, k.vaddr, k.vport));
        let neigh = self
            .sides
            .iter()
            .map(|s| {
                NEIGHBOURS
                    .iter()
                    .map(|&(port, a)| s.w.host().neighbours().state(port, ip(a)))
                    .collect()
            })
            .collect();
        Held {
            counters,
            conns,
            templates,
            neigh,
        }
    }

    /// Every connection entry (not templates) of every worker.
    fn live(&self) -> Vec<Conn<Ipv4Addr>> {
        let mut v = Vec::new();
        for s in &self.sides {
            s.w.host().ipvs().connections().page(0, usize::MAX, |_, c| {
                if !c.is_template() {
                    v.push(*c)
                }
            });
        }
        v
    }
}

fn hex(f: &[u8]) -> String {
    let mut s = String::new();
    for (i, b) in f.iter().enumerate() {
        if i > 0 && i % 32 == 0 {
            s.push_str("\n    ");
        } else if i > 0 && i % 2 == 0 {
            s.push(' ');
        }
        write!(s, "{b:02x}").unwrap();
    }
    s
}

/// Where the two lists of frames first differ, for a failure message.
fn first_difference(what: &str, a: &[Vec<u8>], b: &[Vec<u8>]) -> Option<String> {
    let i = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i))?;
    let show = |f: Option<&Vec<u8>>| f.map_or("(none)".to_string(), |f| hex(f));
    Some(format!(
        "{what}: {} frames on the burst path, {} on the scalar path; frame {i} differs\n  burst:  {}\n  scalar: {}",
        a.len(),
        b.len(),
        show(a.get(i)),
        show(b.get(i)),
    ))
}

/// What differs between what the burst director (`a`) and the scalar one
/// (`b`) sent and hold after a round, if anything.
fn compare(a: &(Vec<Sent>, Held), b: &(Vec<Sent>, Held)) -> Result<(), String> {
    let mut why = Vec::new();
    for (w, (x, y)) in a.0.iter().zip(&b.0).enumerate() {
        for port in 0..2 {
            let t = format!("worker {w}, sent by neighbour timers on port {port} (sorted)");
            why.extend(first_difference(&t, &x.timers[port], &y.timers[port]));
            let tx = format!("worker {w}, transmitted on port {port}");
            why.extend(first_difference(&tx, &x.tx[port], &y.tx[port]));
            let k = format!("worker {w}, to the kernel from port {port}");
            why.extend(first_difference(&k, &x.kernel[port], &y.kernel[port]));
        }
        if x.peers != y.peers {
            let dest = |p: &[(usize, usize, Vec<u8>)]| -> Vec<Vec<u8>> {
                p.iter()
                    .map(|(to, port, f)| [&[*to as u8, *port as u8][..], f].concat())
                    .collect()
            };
            let what = format!("worker {w}, to peers (as worker, port, frame)");
            why.extend(first_difference(&what, &dest(&x.peers), &dest(&y.peers)));
        }
    }
    let (x, y) = (&a.1, &b.1);
    for (c, d) in x.counters.iter().zip(&y.counters) {
        if c != d {
            why.push(format!(
                "{} {} (worker/core {}, id {}): {} on the burst path, {} on the scalar path",
                c.0, c.3, c.1, c.2, c.4, d.4
            ));
        }
    }
    for (w, (c, d)) in x.conns.iter().zip(&y.conns).enumerate() {
        if c != d {
            let i = (0..c.len().max(d.len()))
                .find(|&i| c.get(i) != d.get(i))
                .unwrap();
            why.push(format!(
                "worker {w}: {} connection entries on the burst path, {} on the scalar path; first difference:\n  burst:  {:?}\n  scalar: {:?}",
                c.len(),
                d.len(),
                c.get(i),
                d.get(i)
            ));
        }
    }
    if x.templates != y.templates {
        why.push(format!(
            "templates:\n  burst:  {:?}\n  scalar: {:?}",
            x.templates, y.templates
        ));
    }
    if x.neigh != y.neigh {
        why.push(format!(
            "neighbours {NEIGHBOURS:?}:\n  burst:  {:?}\n  scalar: {:?}",
            x.neigh, y.neigh
        ));
    }
    match why.is_empty() {
        true => Ok(()),
        false => Err(why.join("\n")),
    }
}

// ---- traffic ----

/// xorshift64: deterministic, and enough to shuffle traffic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// True one time in `n`.
    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

/// Where a host is: the port the director reaches it on and its MAC.
fn where_is(a: Ipv4Addr, dyn_macs: &[usize; 2]) -> (usize, [u8; 6]) {
    let o = a.octets();
    match o {
        [10, 0, 0, 3] => (0, C3),
        [10, 1, 0, 50] => (1, C50),
        [10, 1, 0, n @ 11..=13] => (1, RS[n as usize - 11]),
        [10, 1, 0, n @ 21..=22] => {
            let i = n as usize - 21;
            (1, DYN[i][dyn_macs[i]])
        }
        _ => (0, GW),
    }
}

fn own_mac(port: usize) -> [u8; 6] {
    [P0, P1][port]
}

/// A transport header (TCP or UDP) with a correct checksum.
fn l4(proto: u8, src: &str, dst: &str, sport: u16, dport: u16, flags: u8, data: &[u8]) -> Vec<u8> {
    if proto == TCP {
        tcp(src, dst, sport, dport, flags, data)
    } else {
        udp(src, dst, sport, dport, data, true)
    }
}

/// An IPv4 frame from `src` (on its own port, from its MAC) to `dst`.
#[allow(clippy::too_many_arguments)]
fn packet(
    dyn_macs: &[usize; 2],
    proto: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    flags: u8,
    data: &[u8],
) -> (usize, Vec<u8>) {
    let (port, mac) = where_is(src, dyn_macs);
    let (s, d) = (src.to_string(), dst.to_string());
    let seg = l4(proto, &s, &d, sport, dport, flags, data);
    (
        port,
        eth(own_mac(port), mac, 0x0800, &ipv4(&s, &d, proto, 64, &seg)),
    )
}

/// Recomputes the IPv4 header checksum after an edit.
fn fix_ip_sum(f: &mut [u8]) {
    let hl = (f[14] & 15) as usize * 4;
    f[24..26].copy_from_slice(&[0, 0]);
    let c = csum(&f[14..14 + hl]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
}

const TCP_SERVICES: [(&str, u16); 4] = [(VIP, 80), (VIP, 8080), (VIP, 443), (VIP2, 22)];
const UDP_SERVICES: [(&str, u16); 2] = [(VIP, 53), (VIP, 5000)];

/// The traffic and the changes between rounds, from one seed.
struct Traffic {
    rng: Rng,
    /// Which of its two MACs each learned real server is at.
    dyn_macs: [usize; 2],
    next_port: u16,
    /// Flows once opened, which may be long gone.
    history: Vec<(u8, Ipv4Addr, u16, Ipv4Addr, u16)>,
    base: Vec<Service>,
    services: Vec<Service>,
}

impl Traffic {
    fn new(seed: u64) -> Traffic {
        Traffic {
            rng: Rng(seed),
            dyn_macs: [0, 0],
            next_port: 1024,
            history: Vec::new(),
            base: services(),
            services: services(),
        }
    }

    fn client(&mut self) -> Ipv4Addr {
        match self.rng.below(5) {
            0 => ip("10.0.0.2"),
            1 => ip("10.0.0.3"),
            2 => ip("10.1.0.50"),
            _ => Ipv4Addr::new(
                10,
                200,
                self.rng.below(4) as u8,
                1 + self.rng.below(8) as u8,
            ),
        }
    }

    fn cport(&mut self) -> u16 {
        self.next_port = if self.next_port >= 60000 {
            1024
        } else {
            self.next_port + 1
        };
        self.next_port
    }

    fn payload(&mut self) -> Vec<u8> {
        // Big ones now and then: near the MTU, where TUN's 20 bytes of
        // encapsulation matter (and building them costs the test most).
        let n = match self.rng.below(10) {
            0..=3 => 0,
            4..=7 => self.rng.below(64),
            8 => self.rng.below(1400),
            _ => 1400 + self.rng.below(80),
        };
        (0..n).map(|i| i as u8 ^ 0x5a).collect()
    }

    /// A client's packet on a flow: a live entry's most of the time, an
    /// old one's (perhaps expired) now and then.
    fn client_packet(&mut self, live: &[Conn<Ipv4Addr>], flags: u8) -> (usize, Vec<u8>) {
        let (proto, c, cp, v, vp) = if !live.is_empty() && !self.rng.one_in(8) {
            let k = *self.rng.pick(live);
            (k.proto(), k.caddr(), k.cport(), k.vaddr, k.vport)
        } else if !self.history.is_empty() {
            *self.rng.pick(&self.history)
        } else {
            return self.new_flow();
        };
        let data = if proto == TCP && flags & (SYN | RST) != 0 {
            Vec::new()
        } else {
            self.payload()
        };
        packet(&self.dyn_macs, proto, c, v, cp, vp, flags, &data)
    }

    fn new_flow(&mut self) -> (usize, Vec<u8>) {
        let (proto, (v, vp)) = if self.rng.one_in(3) {
            (UDP, *self.rng.pick(&UDP_SERVICES))
        } else {
            (TCP, *self.rng.pick(&TCP_SERVICES))
        };
        let (c, cp) = (self.client(), self.cport());
        self.history.push((proto, c, cp, ip(v), vp));
        if self.history.len() > 4096 {
            self.history.swap_remove(0);
        }
        let data = if proto == UDP { self.payload() } else { vec![] };
        packet(&self.dyn_macs, proto, c, ip(v), cp, vp, SYN, &data)
    }

    /// A NAT real server's packet to a client of a live entry (a stray
    /// when there is none).
    fn reply(&mut self, live: &[Conn<Ipv4Addr>], flags: u8) -> (usize, Vec<u8>) {
        let nat: Vec<_> = live
            .iter()
            .filter(|c| c.flags & flags::FWD_MASK == flags::MASQ)
            .collect();
        let (proto, rs, rp, c, cp) = match nat.is_empty() {
            false => {
                let k = *self.rng.pick(&nat);
                (k.proto(), k.daddr, k.dport, k.caddr(), k.cport())
            }
            true => (TCP, ip("10.1.0.12"), 80, ip("10.0.0.2"), 1),
        };
        let data = self.payload();
        packet(&self.dyn_macs, proto, rs, c, rp, cp, flags, &data)
    }

    /// An ICMP error about a live entry: from its NAT real server about
    /// what the client sent it, or from the client about what it got.
    fn icmp_error(&mut self, live: &[Conn<Ipv4Addr>]) -> (usize, Vec<u8>) {
        if live.is_empty() {
            return self.new_flow();
        }
        let k = *self.rng.pick(live);
        let (c, cp, v, vp) = (
            k.caddr().to_string(),
            k.cport(),
            k.vaddr.to_string(),
            k.vport,
        );
        let (d, dp) = (k.daddr.to_string(), k.dport);
        let (from, to, quoted, port_of) =
            if k.flags & flags::FWD_MASK == flags::MASQ && !self.rng.one_in(3) {
                let q = l4(k.proto(), &c, &d, cp, dp, SYN, &[]);
                (&d, &c, ipv4(&c, &d, k.proto(), 64, &q), k.daddr)
            } else {
                let q = l4(k.proto(), &v, &c, vp, cp, ACK, &[]);
                (&c, &v, ipv4(&v, &c, k.proto(), 64, &q), k.caddr())
            };
        let (ty, code) = *self.rng.pick(&[(3u8, 3u8), (3, 4), (3, 1), (11, 0)]);
        let rest = if code == 4 { 1400 } else { 0 };
        let msg = icmp(ty, code, rest, &quoted);
        let (port, mac) = where_is(port_of, &self.dyn_macs);
        (
            port,
            eth(own_mac(port), mac, 0x0800, &ipv4(from, to, 1, 64, &msg)),
        )
    }

    fn ping(&mut self) -> (usize, Vec<u8>) {
        let (src, dst) = *self.rng.pick(&[
            ("10.0.0.2", VIP),
            ("10.0.0.3", VIP2),
            ("10.0.0.2", "10.0.0.1"),
            ("10.1.0.50", "10.1.0.1"),
            ("10.1.0.50", VIP),
            ("10.200.1.1", VIP),
        ]);
        let (port, mac) = where_is(ip(src), &self.dyn_macs);
        let id = self.rng.next() as u16;
        let msg = echo(8, id, 1, &[7; 24]);
        (
            port,
            eth(own_mac(port), mac, 0x0800, &ipv4(src, dst, 1, 64, &msg)),
        )
    }

    fn arp(&mut self) -> (usize, Vec<u8>) {
        match self.rng.below(6) {
            // A learned real server answers, perhaps from its other MAC.
            0 | 1 => {
                let i = self.rng.below(2);
                if self.rng.one_in(2) {
                    self.dyn_macs[i] ^= 1;
                }
                let mac = DYN[i][self.dyn_macs[i]];
                let spa = format!("10.1.0.{}", 21 + i);
                (1, eth(P1, mac, 0x0806, &arp(2, mac, &spa, P1, "10.1.0.1")))
            }
            // Clients ask for the VIPs and the interfaces.
            2 | 3 => {
                let (spa, tpa) = *self.rng.pick(&[
                    ("10.0.0.3", VIP),
                    ("10.0.0.2", VIP2),
                    ("10.0.0.3", "10.0.0.1"),
                    ("10.1.0.50", VIP),
                    ("10.1.0.50", "10.1.0.1"),
                    ("10.0.0.3", "10.0.0.77"),
                ]);
                let (port, mac) = where_is(ip(spa), &self.dyn_macs);
                let req = arp(1, mac, spa, [0; 6], tpa);
                (port, eth(BCAST, mac, 0x0806, &req))
            }
            // A learned real server asks for the director.
            4 => {
                let i = self.rng.below(2);
                let mac = DYN[i][self.dyn_macs[i]];
                let spa = format!("10.1.0.{}", 21 + i);
                (
                    1,
                    eth(BCAST, mac, 0x0806, &arp(1, mac, &spa, [0; 6], "10.1.0.1")),
                )
            }
            // A client answers (only an entry already there learns it).
            _ => (
                0,
                eth(P0, C3, 0x0806, &arp(2, C3, "10.0.0.3", P0, "10.0.0.1")),
            ),
        }
    }

    /// Something for the kernel or for nobody.
    fn other(&mut self) -> (usize, Vec<u8>) {
        let seg = tcp("10.0.0.2", "10.0.0.1", 40000, 22, SYN, &[]);
        match self.rng.below(6) {
            0 => (
                0,
                eth(P0, GW, 0x0800, &ipv4("10.0.0.2", "10.0.0.1", 6, 64, &seg)),
            ),
            1 => {
                let u = udp("10.0.0.3", "224.0.0.5", 5, 5, b"hello", true);
                let m = [1, 0, 0x5e, 0, 0, 5];
                (
                    0,
                    eth(m, C3, 0x0800, &ipv4("10.0.0.3", "224.0.0.5", 17, 1, &u)),
                )
            }
            2 => (0, eth(P0, GW, 0x86dd, &[0x60; 40])),
            3 => {
                let s = tcp("10.0.0.2", "10.9.9.9", 1, 2, ACK, &[]);
                (
                    0,
                    eth(P0, GW, 0x0800, &ipv4("10.0.0.2", "10.9.9.9", 6, 64, &s)),
                )
            }
            4 => {
                let p = *self.rng.pick(&[81u16, 53, 8443]);
                let c = self.client();
                packet(&self.dyn_macs, TCP, c, ip(VIP), 4000, p, SYN, &[])
            }
            _ => {
                let c = self.client();
                packet(&self.dyn_macs, UDP, c, ip(VIP), 4000, 9999, 0, b"?")
            }
        }
    }

    /// A frame of an established flow, damaged (or not) by `how`.
    fn damaged(&mut self, live: &[Conn<Ipv4Addr>], how: usize) -> (usize, Vec<u8>) {
        let (port, mut f) = if self.rng.one_in(3) {
            self.reply(live, ACK)
        } else {
            self.client_packet(live, ACK)
        };
        match how {
            0 => f[24] ^= 0x5a,
            1 => f.truncate(self.rng.below(f.len())),
            2 => {
                // More fragments, or a later fragment.
                if self.rng.one_in(2) {
                    f[20] |= 0x20;
                } else {
                    f[21] = 0x10;
                }
                fix_ip_sum(&mut f);
            }
            3 => f[..6].copy_from_slice(&[2, 9, 9, 9, 9, 9]),
            4 => {
                f[22] = self.rng.below(2) as u8;
                fix_ip_sum(&mut f);
            }
            5 => {
                // Too big for the MTU, with DF (frames::ipv4 sets it).
                let (proto, s, d) = (f[23], f[26..30].to_vec(), f[30..34].to_vec());
                let (s, d) = (
                    Ipv4Addr::from(<[u8; 4]>::try_from(s).unwrap()),
                    Ipv4Addr::from(<[u8; 4]>::try_from(d).unwrap()),
                );
                let sp = u16::from_be_bytes([f[34], f[35]]);
                let dp = u16::from_be_bytes([f[36], f[37]]);
                let big = vec![9; 1461 + self.rng.below(40)];
                return packet(&self.dyn_macs, proto, s, d, sp, dp, ACK, &big);
            }
            _ => {
                for _ in 0..1 + self.rng.below(3) {
                    let i = 14 + self.rng.below(f.len() - 14);
                    f[i] ^= 1 << self.rng.below(8);
                }
            }
        }
        (port, f)
    }

    fn frame(&mut self, live: &[Conn<Ipv4Addr>]) -> (&'static str, (usize, Vec<u8>)) {
        let n = self.rng.below(100);
        match n {
            0..=39 => {
                let f = *self.rng.pick(&[ACK, ACK, ACK | PSH]);
                ("established", self.client_packet(live, f))
            }
            40..=49 => ("nat reply", self.reply(live, ACK | PSH)),
            50..=59 => ("new", self.new_flow()),
            60..=62 => {
                let f = *self.rng.pick(&[ACK | FIN, RST, ACK | RST]);
                if self.rng.one_in(4) {
                    ("nat reply fin/rst", self.reply(live, f))
                } else {
                    ("fin/rst", self.client_packet(live, f))
                }
            }
            63..=64 => ("syn on an entry", self.client_packet(live, SYN)),
            65..=67 => ("icmp error", self.icmp_error(live)),
            68..=70 => ("ping", self.ping()),
            71..=75 => ("arp", self.arp()),
            76..=78 => ("local or nobody's", self.other()),
            _ => {
                const HOW: [&str; 7] = [
                    "bad ip checksum",
                    "truncated",
                    "fragment",
                    "other mac",
                    "ttl 1 or 0",
                    "too big, df",
                    "bits flipped",
                ];
                let how = self.rng.below(HOW.len());
                (HOW[how], self.damaged(live, how))
            }
        }
    }

    /// A service snapshot now and then: a real server removed, a weight
    /// changed, or everything as configured.
    fn snapshot(&mut self) -> Option<(Vec<Service>, bool)> {
        if !self.rng.one_in(40) {
            return None;
        }
        match self.rng.below(3) {
            0 => {
                let s = self.rng.below(self.services.len());
                let dests = &mut self.services[s].dests;
                if !dests.is_empty() {
                    let d = self.rng.below(dests.len());
                    dests.remove(d);
                }
            }
            1 => {
                let s = self.rng.below(self.services.len());
                let dests = &mut self.services[s].dests;
                if !dests.is_empty() {
                    let d = self.rng.below(dests.len());
                    let w = self.rng.below(4) as u32;
                    dests[d].weight = w;
                    if w > 0 {
                        dests[d].last_weight = w;
                    }
                }
            }
            _ => self.services = self.base.clone(),
        }
        Some((self.services.clone(), self.rng.one_in(2)))
    }

    /// Milliseconds to the next round: mostly a few, sometimes past the
    /// neighbour and connection timeouts.
    fn gap(&mut self) -> u64 {
        match self.rng.below(400) {
            0..=5 => 61_000,
            6..=8 => 125_000,
            9 => 301_000,
            10 => 901_000,
            11..=30 => 1_000 + self.rng.below(30_000) as u64,
            _ => 1 + self.rng.below(20) as u64,
        }
    }
}

/// `rounds` rounds of traffic from `seed` through a director of `workers`
/// workers on each path, compared after every round.
fn differential(seed: u64, workers: usize, rounds: usize) {
    let mut fast = Director::new(services(), workers, false);
    let mut slow = Director::new(services(), workers, true);
    let mut t = Traffic::new(seed);
    let ctx = format!("seed {seed:#x}, {workers} worker(s)");
    // The start-up announcement.
    let a = (fast.round(&[]), fast.held());
    let b = (slow.round(&[]), slow.held());
    if let Err(why) = compare(&a, &b) {
        panic!("{ctx}, start-up: the burst and scalar paths disagree:\n{why}");
    }
    let mut forwarded = 0;
    for round in 1..=rounds {
        let live = fast.live();
        let mut frames = Vec::new();
        let mut kinds = Vec::new();
        let mut queued = vec![[0usize; 2]; workers];
        for _ in 0..1 + t.rng.below(48) {
            let (kind, (port, f)) = t.frame(&live);
            let w = t.rng.below(workers);
            if queued[w][port] == fastpath::BURST {
                break;
            }
            queued[w][port] += 1;
            kinds.push(kind);
            frames.push((w, port, f));
        }
        let a = (fast.round(&frames), fast.held());
        let b = (slow.round(&frames), slow.held());
        if let Err(why) = compare(&a, &b) {
            let burst: Vec<_> = frames
                .iter()
                .zip(&kinds)
                .map(|((w, p, _), k)| (*w, *p, *k))
                .collect();
            panic!(
                "{ctx}, round {round}: the burst and scalar paths disagree:\n{why}\n\
                 the round's frames (worker, port, kind): {burst:?}"
            );
        }
        forwarded += a.0.iter().map(|s| s.tx[1].len()).sum::<usize>();
        let gap = t.gap();
        fast.advance(gap);
        slow.advance(gap);
        if let Some((svcs, nodest)) = t.snapshot() {
            fast.publish(svcs.clone(), nodest);
            slow.publish(svcs, nodest);
        }
    }
    // The traffic did what it is for: connections flowed, and every
    // kind of drop the mix aims at happened.
    let held = fast.held();
    let total = |name: &str| -> i64 {
        held.counters
            .iter()
            .filter(|c| c.3 == name && (c.0 == "drop" || c.0 == "event"))
            .map(|c| c.4)
            .sum()
    };
    assert!(forwarded > rounds * 5, "{ctx}: forwarded only {forwarded}");
    for name in [
        "malformed",
        "bad_checksum",
        "not_for_us",
        "unknown_destination",
        "no_service",
        "no_connection",
        "dest_removed",
        "ttl_exceeded",
        "fragment",
        "too_big",
        "neigh_resolved",
        "echo_replies_sent",
        "exception_to_kernel",
        "icmp_relayed",
        "icmp_errors_sent",
        "arp_replies_sent",
    ] {
        assert!(total(name) > 0, "{ctx}: no {name}");
    }
    if workers > 1 {
        assert!(total("redirected") > 0 && total("redirected_replies") > 0);
        assert!(total("peer_copies_sent") > 0);
    }
}

#[test]
fn one_worker_burst_and_scalar_paths_agree() {
    for seed in [0x1234_5678_9abc_def1, 0x0bad_5eed_0000_0001] {
        differential(seed, 1, 1000);
    }
}

#[test]
fn two_workers_burst_and_scalar_paths_agree() {
    for seed in [0x5eed_f00d_cafe_0002, 0x0123_4567_89ab_cdef] {
        differential(seed, 2, 1000);
    }
}

// ---- the pipeline's own cases, exactly, on both paths ----

/// A client's TCP segment to `dst`:`dport` from 10.0.0.2 on port 0, or
/// from 10.1.0.50 on port 1.
fn seg_frame(port: usize, dst: &str, sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let (src, mac) = [("10.0.0.2", GW), ("10.1.0.50", C50)][port];
    let seg = tcp(src, dst, sport, dport, flags, &[]);
    eth(own_mac(port), mac, 0x0800, &ipv4(src, dst, 6, 64, &seg))
}

/// What a DR real server at `mac` receives of `seg_frame`.
fn dr_out(port: usize, mac: [u8; 6], sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let src = ["10.0.0.2", "10.1.0.50"][port];
    let seg = tcp(src, VIP, sport, dport, flags, &[]);
    eth_raw(mac, P1, 0x0800, &ipv4(src, VIP, 6, 63, &seg))
}

/// The drops and events of worker `w` that are not zero.
fn nonzero(d: &Director, w: usize) -> Vec<(&'static str, u64)> {
    let s = &d.sides[w].stats;
    let drops = DropReason::ALL.iter().map(|&r| (r.name(), s.drops(r)));
    let events = Event::ALL.iter().map(|&e| (e.name(), s.count(e)));
    drops.chain(events).filter(|&(_, n)| n > 0).collect()
}

/// (conns, in_pkts, out_pkts) of real server `id` on `core`.
fn dest_counts(d: &Director, core: usize, id: usize) -> (u64, u64, u64) {
    let c = &d.shared.cores[core].dests[id];
    (c.conns.get(), c.in_pkts.get(), c.out_pkts.get())
}

/// One burst mixing an established flow, a new connection, a frame the
/// other worker owns, frames for the director itself and malformed ones:
/// each goes its own way, in order, and is counted once.
#[test]
fn a_mixed_burst() {
    let svcs = vec![
        service(
            0,
            TCP,
            VIP,
            80,
            Kind::Rr,
            vec![dest(0, "10.1.0.11", 80, Method::Dr, 1)],
        ),
        service(
            1,
            TCP,
            VIP,
            8080,
            Kind::Rr,
            vec![dest(1, "10.1.0.12", 80, Method::Nat, 1)],
        ),
    ];
    let on = |w: usize| {
        (40000u16..)
            .filter(move |&p| owner_core(ip("10.0.0.2"), p, 2) == w)
            .take(2)
            .collect::<Vec<_>>()
    };
    let (mine, theirs) = (on(0), on(1)[0]);
    let (est, new) = (mine[0], mine[1]);
    for scalar in [false, true] {
        let mut d = Director::new(svcs.clone(), 2, scalar);
        d.round(&[]);
        d.round(&[(0, 0, seg_frame(0, VIP, est, 80, SYN))]);
        d.round(&[(0, 0, seg_frame(0, VIP, est, 80, ACK))]);
        let ping = eth(
            P0,
            GW,
            0x0800,
            &ipv4("10.0.0.2", "10.0.0.1", 1, 64, &echo(8, 7, 1, &[0x61; 32])),
        );
        let pong = eth(
            GW,
            P0,
            0x0800,
            &ipv4("10.0.0.1", "10.0.0.2", 1, 64, &echo(0, 7, 1, &[0x61; 32])),
        );
        let to_iface = seg_frame(0, "10.0.0.1", 40000, 22, SYN);
        let mut truncated = seg_frame(0, VIP, est, 80, ACK);
        truncated.truncate(30);
        let mut bad_sum = seg_frame(0, VIP, est, 80, ACK);
        bad_sum[24] ^= 0xff;
        let peers = seg_frame(0, VIP, theirs, 80, SYN);
        let burst: Vec<_> = [
            seg_frame(0, VIP, est, 80, ACK),
            seg_frame(0, VIP, new, 8080, SYN),
            peers.clone(),
            ping,
            to_iface.clone(),
            truncated,
            bad_sum,
            seg_frame(0, VIP, est, 80, ACK | PSH),
        ]
        .into_iter()
        .map(|f| (0, 0, f))
        .collect();
        let sent = d.round(&burst);
        let nat = {
            let seg = tcp("10.0.0.2", "10.1.0.12", new, 80, SYN, &[]);
            eth_raw(
                RS[1],
                P1,
                0x0800,
                &ipv4("10.0.0.2", "10.1.0.12", 6, 63, &seg),
            )
        };
        let ctx = format!("scalar={scalar}");
        assert_eq!(
            sent[0],
            Sent {
                timers: vec![vec![], vec![]],
                tx: vec![
                    vec![pong],
                    vec![
                        dr_out(0, RS[0], est, 80, ACK),
                        nat,
                        dr_out(0, RS[0], est, 80, ACK | PSH)
                    ]
                ],
                kernel: vec![vec![to_iface], vec![]],
                peers: vec![(1, 0, peers)],
            },
            "{ctx}"
        );
        assert_eq!(
            sent[1],
            Sent {
                timers: vec![vec![], vec![]],
                tx: vec![vec![], vec![dr_out(0, RS[0], theirs, 80, SYN)]],
                kernel: vec![vec![], vec![]],
                peers: vec![],
            },
            "{ctx}: the owner forwards the handed-over SYN"
        );
        assert_eq!(
            nonzero(&d, 0),
            vec![
                ("malformed", 1),
                ("bad_checksum", 1),
                ("gratuitous_arps_sent", 6),
                ("echo_replies_sent", 1),
                ("exception_to_kernel", 1),
                ("redirected", 1),
            ],
            "{ctx}"
        );
        assert_eq!(nonzero(&d, 1), vec![], "{ctx}");
        assert_eq!(dest_counts(&d, 0, 0), (1, 4, 0), "{ctx}");
        assert_eq!(dest_counts(&d, 0, 1), (1, 1, 0), "{ctx}");
        assert_eq!(dest_counts(&d, 1, 0), (1, 1, 0), "{ctx}");
        let conns: Vec<_> = d
            .sides
            .iter()
            .map(|s| s.w.host().ipvs().connections().len())
            .collect();
        assert_eq!(conns, vec![2, 1], "{ctx}");
    }
}

/// A real server's new MAC arrives between two packets of its connection
/// in one burst: the one before leaves for the old MAC, the one after for
/// the new, though a burst path looks the connection up before handling
/// any of the burst (a pipeline that resolved next hops per burst too
/// would send both to the old one).
#[test]
fn a_neighbour_change_while_a_burst_is_in_flight() {
    let svcs = vec![service(
        0,
        TCP,
        VIP,
        80,
        Kind::Rr,
        vec![dest(0, "10.1.0.21", 80, Method::Dr, 1)],
    )];
    let [a, b] = DYN[0];
    let is_at = |mac| eth(P1, mac, 0x0806, &arp(2, mac, "10.1.0.21", P1, "10.1.0.1"));
    for scalar in [false, true] {
        let ctx = format!("scalar={scalar}");
        let mut d = Director::new(svcs.clone(), 1, scalar);
        d.round(&[]);
        let sent = d.round(&[(0, 1, seg_frame(1, VIP, 5000, 80, SYN))]);
        let who_has = eth(
            BCAST,
            P1,
            0x0806,
            &arp(1, P1, "10.1.0.1", [0; 6], "10.1.0.21"),
        );
        assert_eq!(sent[0].tx, vec![vec![], vec![who_has]], "{ctx}");
        let sent = d.round(&[(0, 1, is_at(a))]);
        assert_eq!(
            sent[0].tx,
            vec![vec![], vec![dr_out(1, a, 5000, 80, SYN)]],
            "{ctx}: the held SYN"
        );
        let sent = d.round(&[(0, 1, seg_frame(1, VIP, 5000, 80, ACK))]);
        assert_eq!(sent[0].tx[1], vec![dr_out(1, a, 5000, 80, ACK)], "{ctx}");
        let burst = [
            seg_frame(1, VIP, 5000, 80, ACK),
            is_at(b),
            seg_frame(1, VIP, 5000, 80, ACK | PSH),
        ];
        let burst: Vec<_> = burst.into_iter().map(|f| (0, 1, f)).collect();
        let sent = d.round(&burst);
        assert_eq!(
            sent[0],
            Sent {
                timers: vec![vec![], vec![]],
                tx: vec![
                    vec![],
                    vec![
                        dr_out(1, a, 5000, 80, ACK),
                        dr_out(1, b, 5000, 80, ACK | PSH)
                    ]
                ],
                // Replies to the director's own address are the kernel's
                // business too (it may have asked).
                kernel: vec![vec![], vec![is_at(b)]],
                peers: vec![],
            },
            "{ctx}"
        );
        assert_eq!(
            nonzero(&d, 0),
            vec![
                ("arp_requests_sent", 1),
                ("gratuitous_arps_sent", 6),
                ("neigh_resolved", 1),
                ("exception_to_kernel", 2),
            ],
            "{ctx}"
        );
        assert_eq!(dest_counts(&d, 0, 0), (1, 4, 0), "{ctx}");
        assert_eq!(
            d.sides[0].w.host().neighbours().state(1, ip("10.1.0.21")),
            Some((State::Reachable, MacAddr(b))),
            "{ctx}"
        );
    }
}

/// After a snapshot without real server X, X's established connections
/// drop their packets as `dest_removed` (expire_nodest_conn off) while the
/// other server's, in the same burst, still flow.
#[test]
fn a_deleted_real_server() {
    let x = dest(0, "10.1.0.11", 80, Method::Dr, 1);
    let y = dest(1, "10.1.0.12", 80, Method::Dr, 1);
    let svc = |dests| service(0, TCP, VIP, 80, Kind::Rr, dests);
    for scalar in [false, true] {
        let ctx = format!("scalar={scalar}");
        let mut d = Director::new(vec![svc(vec![x.clone(), y.clone()])], 1, scalar);
        d.round(&[]);
        // rr from the head of the list: 1000 to X, 1001 to Y.
        let open: Vec<_> = [(1000, SYN), (1001, SYN), (1000, ACK), (1001, ACK)]
            .into_iter()
            .map(|(p, f)| (0, 0, seg_frame(0, VIP, p, 80, f)))
            .collect();
        let sent = d.round(&open);
        assert_eq!(
            sent[0].tx[1],
            vec![
                dr_out(0, RS[0], 1000, 80, SYN),
                dr_out(0, RS[1], 1001, 80, SYN),
                dr_out(0, RS[0], 1000, 80, ACK),
                dr_out(0, RS[1], 1001, 80, ACK),
            ],
            "{ctx}"
        );
        d.publish(vec![svc(vec![y.clone()])], false);
        let burst: Vec<_> = [1000, 1001, 1000]
            .into_iter()
            .map(|p| (0, 0, seg_frame(0, VIP, p, 80, ACK | PSH)))
            .collect();
        let sent = d.round(&burst);
        assert_eq!(
            sent[0],
            Sent {
                timers: vec![vec![], vec![]],
                tx: vec![vec![], vec![dr_out(0, RS[1], 1001, 80, ACK | PSH)]],
                kernel: vec![vec![], vec![]],
                peers: vec![],
            },
            "{ctx}"
        );
        assert_eq!(
            nonzero(&d, 0),
            vec![("dest_removed", 2), ("gratuitous_arps_sent", 6)],
            "{ctx}"
        );
        assert_eq!(dest_counts(&d, 0, 0), (1, 2, 0), "{ctx}: X counts no more");
        assert_eq!(dest_counts(&d, 0, 1), (1, 3, 0), "{ctx}");
        assert_eq!(d.sides[0].w.host().ipvs().connections().len(), 2, "{ctx}");
    }
}

/// The comparison itself: two directors whose traffic differs by one
/// frame are told apart, with the round and the frame.
#[test]
fn the_comparison_sees_one_different_frame() {
    let mut a = Director::new(services(), 1, false);
    let mut b = Director::new(services(), 1, true);
    a.round(&[]);
    b.round(&[]);
    let x = (
        a.round(&[(0, 0, seg_frame(0, VIP, 1000, 80, SYN))]),
        a.held(),
    );
    let y = (
        b.round(&[(0, 0, seg_frame(0, VIP, 1000, 443, SYN))]),
        b.held(),
    );
    let msg = compare(&x, &y).unwrap_err();
    assert!(
        msg.contains("worker 0, transmitted on port 1: 1 frames on the burst path, 1 on the scalar path; frame 0 differs"),
        "{msg}"
    );
    assert!(msg.contains(&hex(&x.0[0].tx[1][0])), "{msg}");
    assert!(
        msg.contains("dest conns (worker/core 0, id 0): 1 on the burst path, 0"),
        "{msg}"
    );
}
