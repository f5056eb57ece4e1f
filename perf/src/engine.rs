//! Cost per packet of the IPVS engine on established connections (DR, TUN,
//! NAT both ways) and on new ones (SYNs), with the data plane on
//! `ReplayIo`: frames come from memory, buffers recycle through a
//! preallocated pool, no NIC and no DPDK. What is measured is the engine's
//! own work per packet, including its cache misses on a connection table
//! far larger than the caches; the NIC and its driver are not in it.
//!
//! Setup, the same for every mode: one worker with a VIP carrying three
//! services (:80 DR with wlc over three real servers, :8080 NAT, :443 TUN),
//! static neighbours so nothing waits for ARP, and `N_CONN` (default
//! 1,048,576) client flows, each from its own (address in 10.200/16, port)
//! pair. Every flow sends a SYN, then an ACK, so it is ESTABLISHED; then
//! the clock moves past the SYN_RECV timeout and the table is checked to
//! have lost nobody (a flow left in SYN_RECV would have expired). The
//! measured frames are then one ACK per flow in a random order, replayed
//! over and over: each packet hits a connection chosen at random among the
//! live ones, in a table larger than the last-level cache.
//!
//! Modes: `dr`, `tun`, `nat` (client to VIP, by each method), `nat-out`
//! (the NAT real server's replies, SNAT back to the client), `syn` (the
//! first packet of `N_SYN` fresh flows to the DR service, on top of the
//! `N_CONN` established ones), and `lookup` (the connection table alone:
//! one lookup at a time, as the engine does, against burst lookups).
//!
//! `dr-sync` and `dr-sync-full` are `dr` on a sync master: the worker has
//! `Settings::sync = Some(SyncParams::default())` and a `SyncBox`, so it
//! offers every connection it forwards to IPVS's sync rules and pushes the
//! ones due onto its candidate ring. The defaults send an entry at its 3rd
//! incoming packet and every 50th after (`SYNC_THRESHOLD`, `SYNC_PERIOD`
//! change them), so in a steady state 1 packet in 50 is a candidate;
//! setup gives the flows spread-out packet counts (flow
//! `k` gets `(k / 32) % 50` more ACKs) so that every stretch of measured
//! packets has that rate, not all flows due in the same round. In
//! `dr-sync` the benchmark drains the ring after every poll, as the sync
//! thread would between passes (its instructions are not the worker's:
//! perf/engine.sh leaves `drain_ring` out of the callgrind count, and the
//! run checks that no candidate was lost); in `dr-sync-full` nobody
//! drains it (a ring of 32 records, full from setup on), and every
//! candidate is a counted drop.
//!
//! During a measurement the clock stands still, so connection expiry
//! (`ipvs_tick`) does not run and nothing expires mid-run; between SYN
//! rounds it moves on, so the new flows expire and every round starts
//! from `N_CONN` live connections.
//!
//! `engine MODE PACKETS` measures ripvs once; `engine MODE PACKETS bare`
//! measures a bare rx→tx forwarder over the same frames and I/O instead
//! (and skips the engine's setup); `engine MODE PACKETS both` alternates
//! the two `ROUNDS` times (default 3) in one process after one setup and
//! prints the best of each and their ratio; `engine dr-sync PACKETS vs`
//! (or `dr-sync-full`) sets up a `dr` worker and a sync master side by
//! side and alternates bare, `dr` and the sync mode, for the ratio of the
//! two. Under callgrind, two single
//! runs with different PACKETS give instructions per packet, setup
//! cancelling (see perf/README.md and perf/engine.sh). Every measured run
//! checks that each packet was forwarded and nothing was dropped.

use arrayvec::ArrayVec;
use fastpath::conn::{Conn, ConnKey, ConnTable};
use fastpath::io::replay::ReplayIo;
use fastpath::ipvs::Shared;
use fastpath::sched::Kind;
use fastpath::service::{Dest, Method, Service, ServiceTable, TCP};
use fastpath::stats::DropReason;
use fastpath::sync::{sync_post, Consumer, SyncParams, SyncPost, RING_RECORDS};
use fastpath::wire::MacAddr;
use fastpath::{
    HostConfig, Io, PortConfig, StaticNeighbour, StaticRoute, Worker, WorkerStats, BURST,
};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

const P0: [u8; 6] = [2, 0, 0, 0, 0, 1];
const P1: [u8; 6] = [2, 0, 0, 0, 1, 1];
/// The clients' router, on port 0.
const CLI: [u8; 6] = [2, 0xc0, 0, 0, 0, 2];
const RS: [[u8; 6]; 3] = [
    [2, 0x5e, 0, 0, 0, 11],
    [2, 0x5e, 0, 0, 0, 12],
    [2, 0x5e, 0, 0, 0, 13],
];
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
/// The NAT service's real server.
const NAT_RS: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 12);
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
/// Dest ids of the real servers (they index the per-core counters).
const DESTS: u32 = 5;
/// ipvs_tick expires at most this many entries per call.
const EXPIRE_BUDGET: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Client → VIP:80, direct routing.
    Dr,
    /// `Dr` on a sync master whose candidate ring is drained between polls.
    DrSync,
    /// `Dr` on a sync master whose candidate ring is full: every candidate
    /// is a drop.
    DrSyncFull,
    /// Client → VIP:443, IP-in-IP to the real server.
    Tun,
    /// Client → VIP:8080, DNAT to 10.1.0.12:80.
    Nat,
    /// The NAT real server's replies, SNAT back to the client.
    NatOut,
    /// New connections: SYNs of fresh flows to the DR service.
    Syn,
}

impl Mode {
    fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "dr" => Mode::Dr,
            "dr-sync" => Mode::DrSync,
            "dr-sync-full" => Mode::DrSyncFull,
            "tun" => Mode::Tun,
            "nat" => Mode::Nat,
            "nat-out" => Mode::NatOut,
            "syn" => Mode::Syn,
            _ => return None,
        })
    }
    fn vport(self) -> u16 {
        match self {
            Mode::Dr | Mode::DrSync | Mode::DrSyncFull | Mode::Syn => 80,
            Mode::Tun => 443,
            Mode::Nat | Mode::NatOut => 8080,
        }
    }
    /// Whether the worker is a sync master.
    fn sync(self) -> bool {
        matches!(self, Mode::DrSync | Mode::DrSyncFull)
    }
}

fn sum16(mut s: u32, d: &[u8]) -> u32 {
    for c in d.chunks(2) {
        s += (c[0] as u32) << 8 | *c.get(1).unwrap_or(&0) as u32;
    }
    s
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// A 64-byte frame on the wire: 14 bytes of Ethernet, 20 of IPv4, 20 of
/// TCP, 6 of padding, and the 4-byte FCS a NIC strips (so 60 bytes here).
/// Both checksums are correct: the data plane verifies the IPv4 one.
#[allow(clippy::too_many_arguments)]
fn tcp_frame(
    dmac: [u8; 6],
    smac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    flags: u8,
) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[0..6].copy_from_slice(&dmac);
    f[6..12].copy_from_slice(&smac);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[14..34];
    ip[..10].copy_from_slice(&[0x45, 0, 0, 40, 0x12, 0x34, 0x40, 0, 64, 6]);
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let c = fold(sum16(0, ip));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let t = &mut f[34..54];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&1u32.to_be_bytes());
    if flags & ACK != 0 {
        t[8..12].copy_from_slice(&1u32.to_be_bytes());
    }
    t[12] = 0x50;
    t[13] = flags;
    t[14..16].copy_from_slice(&0xffffu16.to_be_bytes());
    let pseudo = [&src.octets()[..], &dst.octets(), &[0, 6, 0, 20]].concat();
    let c = fold(sum16(sum16(0, &pseudo), t));
    t[16..18].copy_from_slice(&c.to_be_bytes());
    f
}

/// Flow `k`'s client endpoint: the low 16 bits pick the address in
/// 10.200/16, the rest the port, so consecutive flows differ in address
/// (as many clients do) and a million flows need only 16 ports each.
fn client(k: u32) -> (Ipv4Addr, u16) {
    (
        Ipv4Addr::from_bits(0x0ac8_0000 | (k & 0xffff)),
        1024 + (k >> 16) as u16,
    )
}

/// The client's packet of flow `k` to the mode's service.
fn from_client(mode: Mode, k: u32, flags: u8) -> Vec<u8> {
    let (a, p) = client(k);
    tcp_frame(P0, CLI, a, VIP, p, mode.vport(), flags)
}

/// The NAT real server's reply on flow `k`. It enters on port 0 because
/// `ReplayIo` receives on port 0 only; the engine's path does not depend
/// on the port a reply arrives on.
fn nat_reply(k: u32) -> Vec<u8> {
    let (a, p) = client(k);
    tcp_frame(P0, RS[1], NAT_RS, a, 80, p, ACK)
}

/// A fixed-seed xorshift64*, enough to shuffle reproducibly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Flows `0..n` in a random order (Fisher–Yates).
fn shuffled(n: u32) -> Vec<u32> {
    let mut v: Vec<u32> = (0..n).collect();
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    for i in (1..v.len()).rev() {
        let j = (r.next() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

/// The frames a measurement replays. The ACKs are built in replay order,
/// so their buffers lie in memory in that order and reading them is a
/// stream, as a NIC's receive ring is: the random access is the engine's.
fn measured_frames(mode: Mode, n_conn: u32, syn_flows: u32) -> Vec<Vec<u8>> {
    match mode {
        Mode::Syn => (n_conn..n_conn + syn_flows)
            .map(|k| from_client(mode, k, SYN))
            .collect(),
        Mode::NatOut => shuffled(n_conn).into_iter().map(nat_reply).collect(),
        _ => shuffled(n_conn)
            .into_iter()
            .map(|k| from_client(mode, k, ACK))
            .collect(),
    }
}

fn dest(id: u32, last: u8, port: u16, method: Method) -> Dest {
    Dest {
        id,
        addr: Ipv4Addr::new(10, 1, 0, last),
        port,
        method,
        weight: 1,
        last_weight: 1,
        u_threshold: 0,
        l_threshold: 0,
    }
}

fn service(id: u32, port: u16, scheduler: Kind, dests: Vec<Dest>) -> Service {
    Service {
        id,
        proto: TCP,
        vip: VIP,
        port,
        fwmark: None,
        scheduler,
        flags: Default::default(),
        persistent: None,
        netmask: Ipv4Addr::BROADCAST,
        ops: false,
        synproxy: false,
        dests,
    }
}

/// Clients on port 0 behind a router, real servers on port 1; as in
/// fastpath/tests/ipvs.rs, plus the route back to the clients for NAT.
fn config(max_connections: usize) -> HostConfig {
    let services = vec![
        service(
            0,
            80,
            Kind::Wlc,
            vec![
                dest(0, 11, 80, Method::Dr),
                dest(1, 12, 80, Method::Dr),
                dest(2, 13, 80, Method::Dr),
            ],
        ),
        service(1, 8080, Kind::Rr, vec![dest(3, 12, 80, Method::Nat)]),
        service(2, 443, Kind::Rr, vec![dest(4, 13, 443, Method::Tun)]),
    ];
    let neighbours = (0..3)
        .map(|i| StaticNeighbour {
            port: 1,
            ip: Ipv4Addr::new(10, 1, 0, 11 + i as u8),
            mac: MacAddr(RS[i]),
        })
        .chain([StaticNeighbour {
            port: 0,
            ip: Ipv4Addr::new(10, 0, 0, 2),
            mac: MacAddr(CLI),
        }])
        .collect();
    HostConfig {
        ports: vec![
            PortConfig {
                mac: MacAddr(P0),
                mtu: 1500,
                addrs: vec![(Ipv4Addr::new(10, 0, 0, 1), 24)],
                exception: true,
                rss_owner: false,
            },
            PortConfig {
                mac: MacAddr(P1),
                mtu: 1500,
                addrs: vec![(Ipv4Addr::new(10, 1, 0, 1), 24)],
                exception: true,
                rss_owner: false,
            },
        ],
        vips: vec![VIP],
        routes: vec![StaticRoute {
            net: Ipv4Addr::new(10, 200, 0, 0),
            prefix_len: 16,
            via: Some(Ipv4Addr::new(10, 0, 0, 2)),
            port: 0,
        }],
        neighbours,
        neigh_limit: 64,
        services: ServiceTable::new(services, vec![]).unwrap(),
        max_connections,
        ..Default::default()
    }
}

type W = Worker<fastpath::io::mem::VecBuf>;

/// A sync master's far end: what the sync thread holds.
struct SyncEnd {
    post: SyncPost,
    /// Drain the ring after every poll (`dr-sync`), or never (`dr-sync-full`).
    drain: bool,
    /// Candidates taken off the ring so far.
    drained: u64,
}

/// What the sync thread does with a worker's ring in one pass: takes
/// every candidate off it (here they are counted, not sent). Out of line,
/// so that callgrind can leave it out (perf/engine.sh): it is the sync
/// thread's work, on another core.
#[inline(never)]
fn drain_ring(ring: &mut Consumer) -> u64 {
    let mut n = 0;
    while ring.pop().is_some() {
        n += 1;
    }
    n
}

/// The engine under test and what to check it by.
struct Engine {
    w: W,
    stats: Arc<WorkerStats>,
    shared: Arc<Shared>,
    n_conn: u32,
    sync: Option<SyncEnd>,
}

impl Engine {
    /// Connections bound to any real server (ActiveConn + InActConn).
    fn live(&self) -> i64 {
        let c = &self.shared.cores[0];
        (0..DESTS as usize)
            .map(|d| c.dests[d].active.get() + c.dests[d].inactive.get())
            .sum()
    }

    fn drops(&self) -> u64 {
        DropReason::ALL.iter().map(|&r| self.stats.drops(r)).sum()
    }

    /// Polls until `packets` more frames have been received; a draining
    /// sync master's ring is emptied after every poll.
    #[inline(never)]
    fn run(&mut self, io: &mut ReplayIo, packets: u64) {
        let end = io.rx + packets;
        match &mut self.sync {
            Some(s) if s.drain => {
                let ring = &mut s.post.rings[0];
                while io.rx < end {
                    self.w.poll(io);
                    s.drained += drain_ring(ring);
                }
            }
            _ => {
                while io.rx < end {
                    self.w.poll(io);
                }
            }
        }
    }

    /// Candidates pushed (drained) and lost to a full ring so far.
    fn candidates(&self) -> (u64, u64) {
        self.sync
            .as_ref()
            .map_or((0, 0), |s| (s.drained, s.post.rings[0].drops()))
    }

    /// Moves the clock on by `ms` and polls with no traffic until every
    /// entry due has been handled (`work`: entries the wheel may have to
    /// look at; ipvs_tick handles a bounded number per poll, one poll per
    /// 10 ms).
    fn age(&mut self, io: &mut ReplayIo, ms: u64, work: u64) {
        let frames = io.set_frames(Vec::new());
        let end = io.now + ms;
        while io.now < end {
            io.now += 10;
            self.w.poll(io);
        }
        for _ in 0..work / EXPIRE_BUDGET as u64 + 64 {
            io.now += 10;
            self.w.poll(io);
        }
        io.set_frames(frames);
    }

    /// Fails loudly if a measured run did not forward every packet.
    fn check(&self, io: &ReplayIo, before: (u64, u64, u64), live: i64) {
        let (rx, tx, drops) = (io.rx - before.0, io.tx - before.1, self.drops() - before.2);
        if tx != rx || drops != 0 || self.live() != live {
            eprintln!(
                "engine run is not what it should measure: rx {rx}, tx {tx}, drops {drops}, \
                 live {} (expected {live})",
                self.live()
            );
            std::process::exit(1);
        }
    }

    /// Fails loudly if a sync master's run was not the one it should
    /// measure: a drained ring lost nothing and carried candidates, a full
    /// one took none (`before`: [`Engine::candidates`] before the run).
    fn check_sync(&self, before: (u64, u64), packets: u64) {
        let Some(s) = &self.sync else { return };
        let (drained, lost) = self.candidates();
        let (drained, lost) = (drained - before.0, lost - before.1);
        let ok = if s.drain {
            lost == 0 && drained > 0
        } else {
            drained == 0 && lost > 0 && s.post.rings[0].len() == ring_capacity(Mode::DrSyncFull)
        };
        if !ok {
            eprintln!(
                "sync run is not what it should measure: {drained} candidates drained, \
                 {lost} lost, over {packets} packets"
            );
            std::process::exit(1);
        }
    }
}

/// One worker with `n_conn` ESTABLISHED connections of `mode`'s service,
/// on an I/O set to replay the mode's measured frames next. `syn_flows`:
/// room for that many more connections (the SYN mode's new ones).
fn setup(mode: Mode, n_conn: u32, syn_flows: u32) -> (Engine, ReplayIo) {
    // One eighth of headroom. The table has as many hash buckets as slots,
    // so this sets the load factor (0.89 with the connections all there):
    // a director near the peak it was sized for.
    let live_max = n_conn as usize + syn_flows as usize;
    let capacity = live_max + live_max / 8;
    let mut cfg = config(capacity);
    // The master's sync_threshold (default 3 50), changed by
    // SYNC_THRESHOLD and SYNC_PERIOD (0 1: every packet a candidate).
    let d = SyncParams::default();
    let params = SyncParams {
        threshold: env("SYNC_THRESHOLD", d.threshold as u64) as u16,
        period: env("SYNC_PERIOD", d.period as u64) as u16,
        ..d
    };
    if mode.sync() {
        cfg.settings.sync = Some(params);
    }
    let stats = Arc::new(WorkerStats::default());
    let shared = Arc::new(Shared::new(1, 64));
    let mut w = Worker::with_shared(&cfg, stats.clone(), shared.clone(), 0);
    let sync = mode.sync().then(|| {
        let (post, mut boxes) = sync_post(1, ring_capacity(mode));
        w.set_sync(boxes.pop().expect("one worker's box"));
        SyncEnd {
            post,
            drain: mode == Mode::DrSync,
            drained: 0,
        }
    });
    let mut e = Engine {
        w,
        stats,
        shared,
        n_conn,
        sync,
    };
    // A connection mode's flows all use its service; the SYN mode's
    // established ones use the DR service it adds to.
    let flows = |flags| (0..n_conn).map(|k| from_client(mode, k, flags)).collect();
    let mut io = ReplayIo::new(2, Vec::new(), 64);
    // The first poll announces the VIP (gratuitous ARP): not a flow's.
    e.w.poll(&mut io);
    let tx0 = io.tx;
    io.set_frames(flows(SYN));
    let n = n_conn as u64;
    e.run(&mut io, n);
    io.set_frames(flows(ACK));
    e.run(&mut io, n);
    if mode.sync() {
        spread_counts(&mut e, &mut io, mode, params.period as u32);
    }
    let (rx, tx) = (io.rx, io.tx - tx0);
    // SYN_RECV lasts 60 s, ESTABLISHED 15 min: after 61 s, whoever is not
    // ESTABLISHED is gone.
    e.age(&mut io, 61_000, n);
    if e.live() != n_conn as i64 || tx != rx || e.drops() != 0 {
        eprintln!(
            "setup failed: {} of {n_conn} connections established (rx {rx}, tx {tx}, drops {})",
            e.live(),
            e.drops()
        );
        std::process::exit(1);
    }
    // The worker's table is private to it; one of the same capacity and
    // type has the same footprint, which is a function of capacity only.
    let t: ConnTable<Ipv4Addr> = ConnTable::new(capacity, 0);
    let bytes = t.memory_bytes();
    drop(t);
    println!(
        "table: capacity {capacity}, {n_conn} live, {bytes} bytes = {:.2} bytes per connection",
        bytes as f64 / capacity as f64,
    );
    if let Some(s) = &e.sync {
        let (drained, lost) = e.candidates();
        let waiting = s.post.rings[0].len();
        println!(
            "sync: setup pushed {drained} candidates drained, {lost} lost, {waiting} waiting \
             (ring of {})",
            ring_capacity(mode)
        );
        if !s.drain && waiting != ring_capacity(mode) {
            eprintln!("dr-sync-full: the ring is not full after setup (more N_CONN)");
            std::process::exit(1);
        }
    }
    io.set_frames(measured_frames(mode, n_conn, syn_flows));
    (e, io)
}

/// Records the worker's ring holds: ripvsd's size for `dr-sync`; for
/// `dr-sync-full` a small one, so that setup fills it whatever `N_CONN`
/// (a push to a full ring does not look at its size).
fn ring_capacity(mode: Mode) -> usize {
    if mode == Mode::DrSyncFull {
        BURST
    } else {
        RING_RECORDS.next_power_of_two()
    }
}

/// A sync master's flows after setup have all seen two packets, so with
/// the count rule (`period`) they would all be due in the same measured
/// round and in none of the next `period - 1`. A steady state has them
/// spread: flow `k` gets `(k / BURST) % period` more ACKs, in passes
/// (pass `j` sends one to every flow whose share is at least `j`, whole
/// bursts each), so that any stretch of measured packets has 1 in
/// `period` due.
fn spread_counts(e: &mut Engine, io: &mut ReplayIo, mode: Mode, period: u32) {
    let share = |k: u32| (k / BURST as u32) % period.max(1);
    let mut order: Vec<u32> = (0..e.n_conn).filter(|&k| share(k) > 0).collect();
    // Largest share first: pass j's flows are a prefix.
    order.sort_by_key(|&k| std::cmp::Reverse(share(k)));
    let mut frames: Vec<Vec<u8>> = order.iter().map(|&k| from_client(mode, k, ACK)).collect();
    for j in 1..period {
        let n = order.iter().take_while(|&&k| share(k) >= j).count();
        if n == 0 {
            break;
        }
        frames.truncate(n);
        io.set_frames(frames);
        e.run(io, n as u64);
        frames = io.set_frames(Vec::new());
    }
}

/// The l2fwd baseline: every frame straight back out, untouched.
#[inline(never)]
fn bare(io: &mut ReplayIo, packets: u64) {
    let end = io.rx + packets;
    let mut burst = ArrayVec::<_, BURST>::new();
    while io.rx < end {
        io.rx_burst(0, &mut burst);
        for p in burst.drain(..) {
            io.tx(0, p);
        }
        io.flush();
    }
}

/// Replays the frame set from its first frame again.
fn rewind(io: &mut ReplayIo) {
    let f = io.set_frames(Vec::new());
    io.set_frames(f);
}

/// This thread's CPU time so far, in ms: Linux's `se.sum_exec_runtime`
/// in /proc/thread-self/sched (kernels with CONFIG_SCHED_DEBUG), or None.
/// On a shared machine the wall clock also counts the time other
/// processes hold the CPU; this does not. It can lag by up to a scheduler
/// tick (4 ms at HZ=250), so runs of a few hundred ms carry ~1 %.
fn cpu_ms() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/sched").ok()?;
    let l = s.lines().find(|l| l.starts_with("se.sum_exec_runtime"))?;
    l.split(':').nth(1)?.trim().parse().ok()
}

/// A run's packets per second: by the wall clock, and by the thread's
/// CPU time where the kernel tells it.
#[derive(Clone, Copy)]
struct Rate {
    wall: f64,
    cpu: Option<f64>,
}

/// Times `f`, which handles `packets` packets; Mpps.
fn timed(packets: u64, f: impl FnOnce()) -> Rate {
    let cpu0 = cpu_ms();
    let start = Instant::now();
    f();
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu0
        .zip(cpu_ms())
        .map(|(a, b)| packets as f64 / (b - a) / 1e3);
    Rate {
        wall: packets as f64 / secs / 1e6,
        cpu,
    }
}

/// One measured ripvs run; Mpps.
fn measure(mode: Mode, e: &mut Engine, io: &mut ReplayIo, packets: u64) -> f64 {
    measure_rate(mode, e, io, packets).wall
}

fn measure_rate(mode: Mode, e: &mut Engine, io: &mut ReplayIo, packets: u64) -> Rate {
    if mode == Mode::Syn {
        rewind(io);
    }
    let before = (io.rx, io.tx, e.drops());
    let cand = e.candidates();
    let live = e.live();
    let rate = timed(packets, || e.run(io, packets));
    let grown = if mode == Mode::Syn { packets as i64 } else { 0 };
    e.check(io, before, live + grown);
    e.check_sync(cand, packets);
    rate
}

/// After a SYN run: back to `n_conn` live for the next, as the new flows
/// expire (SYN_RECV, 60 s) and the established ones do not (15 min).
fn forget_new(e: &mut Engine, io: &mut ReplayIo, packets: u64) {
    e.age(io, 61_000, packets);
    e.check(io, (io.rx, io.tx, e.drops()), e.n_conn as i64);
}

fn measure_bare(mode: Mode, io: &mut ReplayIo, packets: u64) -> f64 {
    measure_bare_rate(mode, io, packets).wall
}

fn measure_bare_rate(mode: Mode, io: &mut ReplayIo, packets: u64) -> Rate {
    if mode == Mode::Syn {
        rewind(io);
    }
    timed(packets, || bare(io, packets))
}

/// The connection table alone, as the engine uses it and as it could:
/// `lookup_in` one key at a time (each lookup's cache misses wait for the
/// last's) against `lookup_in_burst` over 32 keys (the misses overlap).
/// Same table size, load and key order as the established modes. Prints
/// the best of `rounds` for each.
fn lookups(n_conn: u32, packets: u64, rounds: u64) {
    let capacity = n_conn as usize + n_conn as usize / 8;
    let mut t: ConnTable<Ipv4Addr> = ConnTable::new(capacity, 0x5eed);
    let key = |k: u32| {
        let (a, p) = client(k);
        ConnKey::new(TCP, a, p, VIP, 80)
    };
    for k in 0..n_conn {
        t.insert(Conn::new(key(k), Ipv4Addr::new(10, 1, 0, 11), 80), 0)
            .expect("the table has room");
    }
    let keys: Vec<ConnKey<Ipv4Addr>> = shuffled(n_conn).into_iter().map(key).collect();
    let chunks = packets.div_ceil(BURST as u64);
    let (mut one, mut burst) = (0f64, 0f64);
    for _ in 0..rounds {
        let mut found = 0u64;
        let start = Instant::now();
        for c in keys.chunks(BURST).cycle().take(chunks as usize) {
            for k in c {
                found += t.lookup_in(std::hint::black_box(k)).is_some() as u64;
            }
        }
        one = one.max(found as f64 / start.elapsed().as_secs_f64() / 1e6);
        let expect = found;
        let mut found = 0u64;
        let mut out = [None; BURST];
        let start = Instant::now();
        for c in keys.chunks(BURST).cycle().take(chunks as usize) {
            t.lookup_in_burst(std::hint::black_box(c), &mut out);
            found += out[..c.len()].iter().filter(|o| o.is_some()).count() as u64;
        }
        burst = burst.max(found as f64 / start.elapsed().as_secs_f64() / 1e6);
        assert_eq!(found, expect, "both ways find every connection");
    }
    println!(
        "lookup best of {rounds}, {n_conn} connections: one at a time {one:.2} M/s ({:.0} ns), \
         burst of {BURST} {burst:.2} M/s ({:.0} ns)",
        1e3 / one,
        1e3 / burst
    );
}

/// `dr` against a sync master (`mode`), each on its own worker with the
/// same flows and frames, alternated with the bare forwarder `ROUNDS`
/// times (default 5; the order of the two flips every round). Prints the
/// best of each, their ratios, and the median and mean of the rounds' own
/// sync/dr ratios (two runs a fraction of a second apart share the
/// machine's mood), by the wall clock and by the thread's CPU time.
fn vs(mode: Mode, name: &str, n_conn: u32, packets: u64) {
    let rounds = env("ROUNDS", 5).max(1);
    let (mut dr, mut dr_io) = setup(Mode::Dr, n_conn, 0);
    let (mut sy, mut sy_io) = setup(mode, n_conn, 0);
    let (mut best_b, mut best_d, mut best_s) = (0f64, 0f64, 0f64);
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        let b = measure_bare_rate(Mode::Dr, &mut dr_io, packets);
        let (d, s) = if i % 2 == 0 {
            let d = measure_rate(Mode::Dr, &mut dr, &mut dr_io, packets);
            (d, measure_rate(mode, &mut sy, &mut sy_io, packets))
        } else {
            let s = measure_rate(mode, &mut sy, &mut sy_io, packets);
            (measure_rate(Mode::Dr, &mut dr, &mut dr_io, packets), s)
        };
        let by_cpu = d.cpu.zip(s.cpu).map(|(d, s)| s / d);
        println!(
            "{name} vs dr round {i}: bare {:.2} Mpps, dr {:.2} Mpps, {name} {:.2} Mpps, \
             {name}/dr {:.3}; by CPU time dr {}, {name} {}, {name}/dr {}",
            b.wall,
            d.wall,
            s.wall,
            s.wall / d.wall,
            opt(d.cpu, 2),
            opt(s.cpu, 2),
            opt(by_cpu, 3),
        );
        best_b = best_b.max(b.wall);
        best_d = best_d.max(d.wall);
        best_s = best_s.max(s.wall);
        wall.push(s.wall / d.wall);
        cpu.extend(by_cpu);
    }
    let (d, l) = sy.candidates();
    println!(
        "{name} vs dr best of {rounds}: bare {best_b:.2} Mpps, dr {best_d:.2} Mpps (ratio {:.3}), \
         {name} {best_s:.2} Mpps (ratio {:.3}); {name}/dr {:.3}, median of rounds {:.3}; \
         candidates since setup {d} drained, {l} lost",
        best_d / best_b,
        best_s / best_b,
        best_s / best_d,
        median(&mut wall),
    );
    println!(
        "{name}/dr over {rounds} rounds: wall clock median {:.3}, mean {:.3} ± {:.3}; \
         CPU time median {}, mean {}",
        median(&mut wall),
        mean_sem(&wall).0,
        mean_sem(&wall).1,
        if cpu.is_empty() {
            "n/a".to_string()
        } else {
            format!("{:.3}", median(&mut cpu))
        },
        if cpu.is_empty() {
            "n/a".to_string()
        } else {
            let (m, e) = mean_sem(&cpu);
            format!("{m:.3} ± {e:.3}")
        },
    );
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("n/a".to_string(), |v| format!("{v:.digits$}"))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The mean and its standard error.
fn mean_sem(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (m, 0.0);
    }
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0);
    (m, (var / n).sqrt())
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(packets)) = (
        args.get(1)
            .and_then(|m| Mode::parse(m).or((m == "lookup").then_some(Mode::Dr))),
        args.get(2).and_then(|n| n.parse::<u64>().ok()),
    ) else {
        eprintln!(
            "usage: [N_CONN=1048576] [N_SYN=262144] [ROUNDS=3] [SYNC_THRESHOLD=3 SYNC_PERIOD=50] \
             engine dr|dr-sync|dr-sync-full|tun|nat|nat-out|syn|lookup PACKETS [bare|both] \
             | engine dr-sync|dr-sync-full PACKETS vs"
        );
        std::process::exit(2);
    };
    // Whole bursts, so that replays start and end exactly on a set.
    let round = |n: u64| n.div_ceil(BURST as u64).max(1) * BURST as u64;
    let n_conn = round(env("N_CONN", 1 << 20)) as u32;
    let packets = round(packets);
    // The SYN mode sends each new flow's first packet once: a run measures
    // up to N_SYN of them. N_SYN, not PACKETS, sizes the table and the
    // frame set, so that two runs with different PACKETS differ in their
    // measured packets only (setup cancels under callgrind).
    let syn_flows = if mode == Mode::Syn {
        round(env("N_SYN", 1 << 18)) as u32
    } else {
        0
    };
    if packets > syn_flows as u64 && mode == Mode::Syn {
        eprintln!("syn: PACKETS ({packets}) must not exceed N_SYN ({syn_flows})");
        std::process::exit(2);
    }
    let name = &args[1];
    if name == "lookup" {
        return lookups(n_conn, packets, env("ROUNDS", 3).max(1));
    }
    match args.get(3).map(String::as_str) {
        Some("bare") => {
            // The frames only: the engine is not involved.
            let mut io = ReplayIo::new(2, measured_frames(mode, n_conn, syn_flows), 64);
            let mpps = measure_bare(mode, &mut io, packets);
            println!("{name} (bare forwarder): {packets} packets = {mpps:.2} Mpps");
        }
        None => {
            let (mut e, mut io) = setup(mode, n_conn, syn_flows);
            let cand = e.candidates();
            let mpps = measure(mode, &mut e, &mut io, packets);
            println!("{name}: {packets} packets over {n_conn} connections = {mpps:.2} Mpps");
            if e.sync.is_some() {
                let (d, l) = e.candidates();
                let (d, l) = (d - cand.0, l - cand.1);
                println!(
                    "{name}: {} candidates ({:.4} per packet): {d} drained, {l} lost to a full ring",
                    d + l,
                    (d + l) as f64 / packets as f64
                );
            }
        }
        Some("vs") if mode.sync() => vs(mode, name, n_conn, packets),
        Some("both") => {
            let rounds = env("ROUNDS", 3).max(1);
            let (mut e, mut io) = setup(mode, n_conn, syn_flows);
            let (mut best_b, mut best_r) = (0f64, 0f64);
            for i in 0..rounds {
                let b = measure_bare(mode, &mut io, packets);
                let r = measure(mode, &mut e, &mut io, packets);
                if mode == Mode::Syn {
                    forget_new(&mut e, &mut io, packets);
                }
                println!("{name} round {i}: bare {b:.2} Mpps, ripvs {r:.2} Mpps");
                best_b = best_b.max(b);
                best_r = best_r.max(r);
            }
            println!(
                "{name} best of {rounds}: bare {best_b:.2} Mpps, ripvs {best_r:.2} Mpps, ratio {:.3}",
                best_r / best_b
            );
        }
        Some(other) => {
            eprintln!("unknown variant {other}: bare, both, or vs (sync modes)");
            std::process::exit(2);
        }
    }
}
