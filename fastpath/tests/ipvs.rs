//! The IPVS engine end to end on byte buffers: a client's packets to a VIP
//! reach the real server by DR, TUN or NAT with exact bytes, NAT replies
//! find their way back, persistence holds across cores, and every refusal
//! is counted. Expected frames come from the independent builder.

use fastpath::conn::owner_core;
use fastpath::io::mem::MemIo;
use fastpath::ipvs::Shared;
use fastpath::sched::Kind;
use fastpath::service::counters::load;
use fastpath::service::{Dest, Method, Service, ServiceTable, TCP, UDP};
use fastpath::stats::{DropReason, Event};
use fastpath::wire::MacAddr;
use fastpath::{HostConfig, PortConfig, StaticNeighbour, Worker, WorkerStats};
use std::net::Ipv4Addr;
use std::sync::Arc;

#[path = "../../tests/common/frames.rs"]
mod frames;
use frames::{arp, eth, eth_raw, ip, ipv4, ipv4_with, tcp, udp};
#[path = "support/scalar.rs"]
mod scalar;

const P0: [u8; 6] = [2, 0, 0, 0, 0, 1];
const P1: [u8; 6] = [2, 0, 0, 0, 1, 1];
const CLI: [u8; 6] = [2, 0xc0, 0, 0, 0, 2];
const RS: [[u8; 6]; 3] = [
    [2, 0x5e, 0, 0, 0, 11],
    [2, 0x5e, 0, 0, 0, 12],
    [2, 0x5e, 0, 0, 0, 13],
];
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

fn dest(id: u32, last: u8, port: u16, method: Method, weight: u32) -> Dest {
    Dest {
        id,
        addr: Ipv4Addr::new(10, 1, 0, last),
        port,
        method,
        weight,
        last_weight: weight,
        u_threshold: 0,
        l_threshold: 0,
    }
}

fn service(id: u32, proto: u8, port: u16, sched: Kind, dests: Vec<Dest>) -> Service {
    Service {
        id,
        proto,
        vip: ip("10.0.0.100"),
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

fn config(services: Vec<Service>, max_connections: usize) -> HostConfig {
    let neighbours = (0..3)
        .map(|i| StaticNeighbour {
            port: 1,
            ip: Ipv4Addr::new(10, 1, 0, 11 + i as u8),
            mac: MacAddr(RS[i]),
        })
        .chain([StaticNeighbour {
            port: 0,
            ip: ip("10.0.0.2"),
            mac: MacAddr(CLI),
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
        vips: vec![ip("10.0.0.100")],
        neighbours,
        neigh_limit: 64,
        services: ServiceTable::new(services, vec![]).unwrap(),
        max_connections,
        ..Default::default()
    }
}

/// The three methods on one VIP: :80 DR to .11, :8080 NAT to .12:80,
/// :443 TUN to .13.
fn three_methods() -> Vec<Service> {
    vec![
        service(0, TCP, 80, Kind::Rr, vec![dest(0, 11, 80, Method::Dr, 1)]),
        service(
            1,
            TCP,
            8080,
            Kind::Rr,
            vec![dest(1, 12, 80, Method::Nat, 1)],
        ),
        service(
            2,
            TCP,
            443,
            Kind::Rr,
            vec![dest(2, 13, 443, Method::Tun, 1)],
        ),
    ]
}

struct Rig {
    io: MemIo,
    w: Worker<fastpath::io::mem::VecBuf>,
    stats: Arc<WorkerStats>,
    shared: Arc<Shared>,
}

impl Rig {
    fn new(cfg: &HostConfig, shared: Arc<Shared>, me: usize) -> Rig {
        let stats = Arc::new(WorkerStats::default());
        let mut io = MemIo::new(2);
        io.worker = me;
        io.nworkers = shared.cores.len();
        let mut w =
            scalar::as_env_says(Worker::with_shared(cfg, stats.clone(), shared.clone(), me));
        w.poll(&mut io);
        io.take_tx(0);
        io.take_tx(1);
        Rig {
            io,
            w,
            stats,
            shared,
        }
    }
    fn one(services: Vec<Service>) -> Rig {
        Rig::new(&config(services, 1024), Arc::new(Shared::new(1, 64)), 0)
    }
    fn run(&mut self, port: usize, frames: &[Vec<u8>]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        for f in frames {
            self.io.push_rx(port, f);
        }
        self.w.poll(&mut self.io);
        (self.io.take_tx(0), self.io.take_tx(1))
    }
    /// (ActiveConn, InActConn) of a real server over all cores.
    fn load(&self, dest: u32) -> (u32, u32) {
        let cores: Vec<_> = self.shared.cores.iter().map(|c| c.as_ref()).collect();
        load(&cores, dest)
    }
}

fn from_client(dport: u16, sport: u16, flags: u8) -> Vec<u8> {
    let seg = tcp("10.0.0.2", "10.0.0.100", sport, dport, flags, &[]);
    eth(
        P0,
        CLI,
        0x0800,
        &ipv4("10.0.0.2", "10.0.0.100", 6, 64, &seg),
    )
}

#[test]
fn dr_rewrites_only_the_mac_and_ttl() {
    let mut r = Rig::one(three_methods());
    let (out0, out1) = r.run(0, &[from_client(80, 40000, SYN)]);
    let seg = tcp("10.0.0.2", "10.0.0.100", 40000, 80, SYN, &[]);
    assert!(out0.is_empty());
    assert_eq!(
        out1,
        vec![eth_raw(
            RS[0],
            P1,
            0x0800,
            &ipv4("10.0.0.2", "10.0.0.100", 6, 63, &seg)
        )]
    );
    assert_eq!(r.load(0), (1, 0), "SYN_RECV counts as active");
    // The ACK rides the same connection.
    let (_, out1) = r.run(0, &[from_client(80, 40000, ACK)]);
    assert_eq!(out1.len(), 1);
    assert_eq!(r.shared.cores[0].dests[0].conns.get(), 1);
    assert_eq!(r.shared.cores[0].dests[0].in_pkts.get(), 2);
}

#[test]
fn nat_rewrites_both_ways() {
    let mut r = Rig::one(three_methods());
    let (_, out1) = r.run(0, &[from_client(8080, 40000, SYN)]);
    let seg = tcp("10.0.0.2", "10.1.0.12", 40000, 80, SYN, &[]);
    assert_eq!(
        out1,
        vec![eth_raw(
            RS[1],
            P1,
            0x0800,
            &ipv4("10.0.0.2", "10.1.0.12", 6, 63, &seg)
        )]
    );
    // The real server's SYN/ACK comes back to the client from the VIP.
    let reply = tcp("10.1.0.12", "10.0.0.2", 80, 40000, SYN | ACK, &[]);
    let (out0, _) = r.run(
        1,
        &[eth(
            P1,
            RS[1],
            0x0800,
            &ipv4("10.1.0.12", "10.0.0.2", 6, 64, &reply),
        )],
    );
    let seg = tcp("10.0.0.100", "10.0.0.2", 8080, 40000, SYN | ACK, &[]);
    assert_eq!(
        out0,
        vec![eth_raw(
            CLI,
            P0,
            0x0800,
            &ipv4("10.0.0.100", "10.0.0.2", 6, 63, &seg)
        )]
    );
    assert_eq!(r.shared.cores[0].dests[1].out_pkts.get(), 1);
    // Replies of nothing we know are not ours.
    let stray = tcp("10.1.0.12", "10.0.0.2", 80, 40001, ACK, &[]);
    r.run(
        1,
        &[eth(
            P1,
            RS[1],
            0x0800,
            &ipv4("10.1.0.12", "10.0.0.2", 6, 64, &stray),
        )],
    );
    assert_eq!(r.stats.drops(DropReason::UnknownDestination), 1);
}

#[test]
fn tun_encapsulates_from_the_egress_address() {
    let mut r = Rig::one(three_methods());
    let (_, out1) = r.run(0, &[from_client(443, 40000, SYN)]);
    let seg = tcp("10.0.0.2", "10.0.0.100", 40000, 443, SYN, &[]);
    let inner = ipv4("10.0.0.2", "10.0.0.100", 6, 63, &seg);
    let outer = ipv4_with(0, 1, 0x4000, 63, 4, "10.1.0.1", "10.1.0.13", &inner);
    assert_eq!(out1, vec![eth_raw(RS[2], P1, 0x0800, &outer)]);
}

#[test]
fn refusals_are_counted() {
    let svcs = vec![service(
        0,
        TCP,
        80,
        Kind::Wlc,
        vec![dest(0, 11, 80, Method::Dr, 0)],
    )];
    let mut r = Rig::one(svcs);
    // Weight 0 only: no destination; the client hears port unreachable.
    let (out0, out1) = r.run(0, &[from_client(80, 40000, SYN)]);
    assert!(out1.is_empty());
    assert_eq!(out0.len(), 1);
    assert_eq!(&out0[0][34..36], &[3, 3], "ICMP port unreachable");
    assert_eq!(&out0[0][26..30], &ip("10.0.0.100").octets(), "from the VIP");
    assert_eq!(r.stats.drops(DropReason::NoDestination), 1);
    // A mid-stream segment with no connection is not scheduled.
    r.run(0, &[from_client(80, 40001, ACK)]);
    assert_eq!(r.stats.drops(DropReason::NoConnection), 1);
    // A port no service has.
    r.run(0, &[from_client(81, 40002, SYN)]);
    assert_eq!(r.stats.drops(DropReason::NoService), 1);
}

#[test]
fn a_full_table_refuses_new_connections_and_keeps_the_old() {
    let svcs = vec![service(
        0,
        TCP,
        80,
        Kind::Rr,
        vec![dest(0, 11, 80, Method::Dr, 1)],
    )];
    let mut r = Rig::new(&config(svcs, 2), Arc::new(Shared::new(1, 64)), 0);
    let (_, out) = r.run(
        0,
        &[
            from_client(80, 1, SYN),
            from_client(80, 2, SYN),
            from_client(80, 3, SYN),
        ],
    );
    assert_eq!(out.len(), 2);
    assert_eq!(r.stats.drops(DropReason::ConnTableFull), 1);
    let (_, out) = r.run(0, &[from_client(80, 1, ACK), from_client(80, 2, ACK)]);
    assert_eq!(out.len(), 2, "established ones still flow");
}

#[test]
fn connections_expire_with_their_state_timeout() {
    let mut r = Rig::one(three_methods());
    r.run(0, &[from_client(80, 40000, SYN)]);
    assert_eq!(r.load(0), (1, 0));
    r.io.now = 59_000;
    r.run(0, &[]);
    assert_eq!(r.load(0), (1, 0), "SYN_RECV lasts 60 s");
    r.io.now = 61_000;
    r.run(0, &[]);
    assert_eq!(r.load(0), (0, 0));
    // Gone: a bare ACK now has nothing to ride.
    r.run(0, &[from_client(80, 40000, ACK)]);
    assert_eq!(r.stats.drops(DropReason::NoConnection), 1);
}

#[test]
fn udp_one_packet_scheduling_leaves_no_entry() {
    let mut svc = service(
        0,
        UDP,
        53,
        Kind::Rr,
        vec![
            dest(0, 11, 53, Method::Dr, 1),
            dest(1, 12, 53, Method::Dr, 1),
        ],
    );
    svc.ops = true;
    let mut r = Rig::one(vec![svc]);
    let dgram = |sport| {
        let u = udp("10.0.0.2", "10.0.0.100", sport, 53, b"q", true);
        eth(P0, CLI, 0x0800, &ipv4("10.0.0.2", "10.0.0.100", 17, 64, &u))
    };
    let (_, out) = r.run(0, &[dgram(5000), dgram(5000), dgram(5000)]);
    // Same client port, yet each datagram is scheduled anew: rr alternates
    // (from the head of the list, as the kernel's cursor starts there).
    let macs: Vec<_> = out.iter().map(|f| f[5]).collect();
    assert_eq!(macs, vec![11, 12, 11]);
    assert_eq!(r.load(0), (0, 0));
    assert_eq!(r.load(1), (0, 0));
}

/// Two client ports of 10.0.0.2 that different workers own.
fn ports_on_two_cores() -> (u16, u16) {
    let a = (40000u16..)
        .find(|&p| owner_core(ip("10.0.0.2"), p, 2) == 0)
        .unwrap();
    let b = (40000u16..)
        .find(|&p| owner_core(ip("10.0.0.2"), p, 2) == 1)
        .unwrap();
    (a, b)
}

#[test]
fn packets_reach_the_owner_core() {
    let shared = Arc::new(Shared::new(2, 64));
    let cfg = config(three_methods(), 1024);
    let mut w0 = Rig::new(&cfg, shared.clone(), 0);
    let mut w1 = Rig::new(&cfg, shared.clone(), 1);
    let (_, on1) = ports_on_two_cores();
    // Worker 0 receives a SYN that worker 1 owns: handed over, not handled.
    let (o0, o1) = w0.run(0, &[from_client(8080, on1, SYN)]);
    assert!(o0.is_empty() && o1.is_empty());
    assert_eq!(w0.stats.count(Event::Redirected), 1);
    assert_eq!(w0.stats.count(Event::RedirectedReply), 0, "a request");
    let (to, pkt) = w0.io.to_peers.pop().unwrap();
    assert_eq!((to, pkt.port), (1, 0));
    w1.io.from_peers.push_back(pkt);
    let (_, out1) = w1.run(0, &[]);
    assert_eq!(out1.len(), 1, "the owner forwards it");
    // The NAT reply arrives on worker 0 too, and is handed to the owner.
    let reply = tcp("10.1.0.12", "10.0.0.2", 80, on1, SYN | ACK, &[]);
    w0.run(
        1,
        &[eth(
            P1,
            RS[1],
            0x0800,
            &ipv4("10.1.0.12", "10.0.0.2", 6, 64, &reply),
        )],
    );
    assert_eq!(w0.stats.count(Event::Redirected), 2);
    assert_eq!(w0.stats.count(Event::RedirectedReply), 1);
    let (to, pkt) = w0.io.to_peers.pop().unwrap();
    assert_eq!((to, pkt.port), (1, 1));
    w1.io.from_peers.push_back(pkt);
    let (out0, _) = w1.run(1, &[]);
    assert_eq!(out0.len(), 1);
    assert_eq!(
        &out0[0][26..30],
        &ip("10.0.0.100").octets(),
        "SNAT back to the VIP"
    );
}

#[test]
fn persistence_holds_across_cores() {
    let mut svc = service(
        0,
        TCP,
        80,
        Kind::Rr,
        vec![
            dest(0, 11, 80, Method::Dr, 1),
            dest(1, 12, 80, Method::Dr, 1),
            dest(2, 13, 80, Method::Dr, 1),
        ],
    );
    svc.persistent = Some(300);
    svc.netmask = Ipv4Addr::new(255, 255, 255, 0);
    let shared = Arc::new(Shared::new(2, 64));
    let cfg = config(vec![svc], 1024);
    let mut w0 = Rig::new(&cfg, shared.clone(), 0);
    let mut w1 = Rig::new(&cfg, shared.clone(), 1);
    let (p0, p1) = ports_on_two_cores();
    let (_, a) = w0.run(0, &[from_client(80, p0, SYN)]);
    let (_, b) = w1.run(0, &[from_client(80, p1, SYN)]);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0][..6], b[0][..6], "same real server from both cores");
    assert_eq!(shared.templates.len(), 1);
    // Another host of the same /24 shares the template.
    let other = {
        let seg = tcp("10.0.0.77", "10.0.0.100", 5555, 80, SYN, &[]);
        eth(
            P0,
            CLI,
            0x0800,
            &ipv4("10.0.0.77", "10.0.0.100", 6, 64, &seg),
        )
    };
    let owner = owner_core(ip("10.0.0.77"), 5555, 2);
    let (_, c) = if owner == 0 {
        w0.run(0, &[other])
    } else {
        w1.run(0, &[other])
    };
    assert_eq!(c[0][..6], a[0][..6]);
    // PersistConn counts the template once.
    let persist: i64 = shared
        .cores
        .iter()
        .map(|c| c.dests.iter().map(|d| d.persist.get()).sum::<i64>())
        .sum();
    assert_eq!(persist, 1);
}

#[test]
fn icmp_errors_reach_the_other_side_of_their_connection() {
    use frames::icmp;
    let mut r = Rig::one(three_methods());
    // A NAT connection: 10.0.0.2:40000 -> VIP:8080 -> 10.1.0.12:80.
    r.run(0, &[from_client(8080, 40000, SYN)]);
    // The real server reports a problem with a client packet; the client
    // hears it from the VIP, about the packet it sent to the VIP.
    let quoted = |dst: &str, dport| {
        ipv4(
            "10.0.0.2",
            dst,
            6,
            64,
            &tcp("10.0.0.2", dst, 40000, dport, SYN, &[]),
        )
    };
    let err = icmp(3, 3, 0, &quoted("10.1.0.12", 80));
    let (out0, _) = r.run(
        1,
        &[eth(
            P1,
            RS[1],
            0x0800,
            &ipv4("10.1.0.12", "10.0.0.2", 1, 64, &err),
        )],
    );
    let want = icmp(3, 3, 0, &quoted("10.0.0.100", 8080));
    assert_eq!(
        out0,
        vec![eth_raw(
            CLI,
            P0,
            0x0800,
            &ipv4("10.0.0.100", "10.0.0.2", 1, 63, &want)
        )]
    );
    // A DR connection: the client's error about what it got from the VIP
    // goes to the real server unchanged but for the TTL.
    r.run(0, &[from_client(80, 40001, SYN)]);
    let got = ipv4(
        "10.0.0.100",
        "10.0.0.2",
        6,
        64,
        &tcp("10.0.0.100", "10.0.0.2", 80, 40001, SYN | ACK, &[]),
    );
    let err = ipv4("10.0.0.2", "10.0.0.100", 1, 64, &icmp(3, 4, 1400, &got));
    let (_, out1) = r.run(0, &[eth(P0, CLI, 0x0800, &err)]);
    let mut want = err.clone();
    want[8] = 63;
    let c = frames::csum(&[&want[..10], &[0, 0], &want[12..20]].concat());
    want[10..12].copy_from_slice(&c.to_be_bytes());
    assert_eq!(out1, vec![eth_raw(RS[0], P1, 0x0800, &want)]);
    assert_eq!(r.stats.count(Event::IcmpRelayed), 2);
    // About no connection we know: not relayed.
    let stray = ipv4(
        "10.0.0.100",
        "10.0.0.2",
        6,
        64,
        &tcp("10.0.0.100", "10.0.0.2", 80, 1, ACK, &[]),
    );
    r.run(
        0,
        &[eth(
            P0,
            CLI,
            0x0800,
            &ipv4("10.0.0.2", "10.0.0.100", 1, 64, &icmp(3, 3, 0, &stray)),
        )],
    );
    assert_eq!(r.stats.drops(DropReason::NoConnection), 1);
}

#[test]
fn no_input_makes_the_engine_panic() {
    // Every prefix and single-byte corruption of frames that reach each
    // engine path (new and established TCP, NAT replies, ICMP errors both
    // ways, UDP, SCTP): dropped and counted, or forwarded, never a panic.
    use frames::{icmp, sctp};
    let mut svcs = three_methods();
    svcs.push(service(
        3,
        UDP,
        53,
        Kind::Sh,
        vec![dest(3, 11, 53, Method::Nat, 1)],
    ));
    svcs.push(service(
        4,
        132,
        9,
        Kind::Mh,
        vec![dest(4, 12, 9, Method::Nat, 1)],
    ));
    let mut r = Rig::one(svcs);
    let init = sctp(
        1000,
        9,
        0,
        &[
            1, 0, 0, 20, 0, 0, 0, 1, 0, 0, 0x10, 0, 0, 1, 0, 1, 0, 0, 0, 1,
        ],
    );
    let reply = tcp("10.1.0.12", "10.0.0.2", 80, 40000, SYN | ACK, &[]);
    let quoted = ipv4(
        "10.0.0.2",
        "10.1.0.12",
        6,
        64,
        &tcp("10.0.0.2", "10.1.0.12", 40000, 80, SYN, &[]),
    );
    let got = ipv4(
        "10.0.0.100",
        "10.0.0.2",
        6,
        64,
        &tcp("10.0.0.100", "10.0.0.2", 80, 40000, ACK, &[]),
    );
    let inputs: Vec<(usize, Vec<u8>)> = vec![
        (0, from_client(8080, 40000, SYN)),
        (0, from_client(80, 40000, SYN)),
        (0, from_client(80, 40000, ACK)),
        (
            1,
            eth(
                P1,
                RS[1],
                0x0800,
                &ipv4("10.1.0.12", "10.0.0.2", 6, 64, &reply),
            ),
        ),
        (
            1,
            eth(
                P1,
                RS[1],
                0x0800,
                &ipv4("10.1.0.12", "10.0.0.2", 1, 64, &icmp(3, 3, 0, &quoted)),
            ),
        ),
        (
            0,
            eth(
                P0,
                CLI,
                0x0800,
                &ipv4("10.0.0.2", "10.0.0.100", 1, 64, &icmp(3, 4, 1400, &got)),
            ),
        ),
        (
            0,
            eth(
                P0,
                CLI,
                0x0800,
                &ipv4(
                    "10.0.0.2",
                    "10.0.0.100",
                    17,
                    64,
                    &udp("10.0.0.2", "10.0.0.100", 7, 53, b"x", true),
                ),
            ),
        ),
        (
            0,
            eth(
                P0,
                CLI,
                0x0800,
                &ipv4("10.0.0.2", "10.0.0.100", 132, 64, &init),
            ),
        ),
    ];
    for (port, f) in &inputs {
        r.run(*port, std::slice::from_ref(f));
        for len in 0..f.len() {
            r.run(*port, &[f[..len].to_vec()]);
        }
        for i in 14..f.len() {
            for x in [0x01, 0x80, 0xff] {
                let mut g = f.clone();
                g[i] ^= x;
                r.run(*port, &[g]);
            }
        }
    }
    assert!(r.stats.drops(DropReason::Malformed) > 0);
}

/// Whole bursts of established flows with random damage (several bytes
/// flipped, truncated, grown): the burst pass, which trusts what it parsed
/// once, must drop and count what it cannot forward, never panic, and
/// keep forwarding the undamaged frames around them.
#[test]
fn damaged_frames_in_a_burst_of_established_flows_never_panic() {
    let mut r = Rig::one(three_methods());
    let mut seed = 0x5eed_cafe_f00d_u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let flows: Vec<(u16, u16)> = (0..96u16)
        .map(|i| ([80, 8080, 443][i as usize % 3], 42000 + i))
        .collect();
    for &(dport, sport) in &flows {
        r.run(0, &[from_client(dport, sport, SYN)]);
        r.run(0, &[from_client(dport, sport, ACK)]);
    }
    // The client port of a forwarded frame (inside the tunnel for TUN).
    let client_port = |f: &[u8]| {
        let mut ip = &f[14..];
        if ip[9] == 4 {
            ip = &ip[(ip[0] & 15) as usize * 4..];
        }
        let l4 = (ip[0] & 15) as usize * 4;
        u16::from_be_bytes([ip[l4], ip[l4 + 1]])
    };
    let mut intact_total = 0;
    for _ in 0..600 {
        let mut burst = Vec::new();
        let mut intact = std::collections::BTreeMap::<u16, usize>::new();
        for _ in 0..32 {
            let (dport, sport) = flows[rand() as usize % flows.len()];
            let mut f = from_client(dport, sport, ACK);
            match rand() % 4 {
                0 => *intact.entry(sport).or_default() += 1,
                1 => {
                    for _ in 0..1 + rand() % 4 {
                        let i = 14 + rand() as usize % (f.len() - 14);
                        f[i] ^= 1 << (rand() % 8);
                    }
                }
                2 => f.truncate(rand() as usize % f.len()),
                _ => f.extend((0..rand() % 40).map(|_| rand() as u8)),
            }
            burst.push(f);
        }
        let (o0, o1) = r.run(0, &burst);
        let mut out = std::collections::BTreeMap::<u16, usize>::new();
        for f in o0.iter().chain(&o1).filter(|f| f[12..14] == [8, 0]) {
            *out.entry(client_port(f)).or_default() += 1;
        }
        // Every intact frame left, whatever was damaged around it.
        for (port, n) in &intact {
            assert!(out.get(port).copied().unwrap_or(0) >= *n, "flow {port}");
        }
        intact_total += intact.values().sum::<usize>();
    }
    assert!(intact_total > 3000);
    assert!(r.stats.drops(DropReason::Malformed) + r.stats.drops(DropReason::BadChecksum) > 0);
}

/// A full burst of established flows, looked up together, leaves in
/// arrival order with exact bytes; a SYN and its ACK in one burst (the ACK
/// misses the burst lookup, which ran before the SYN made its entry) take
/// the same connection.
#[test]
fn a_burst_of_established_flows_is_forwarded_in_order() {
    let mut r = Rig::one(three_methods());
    let syns: Vec<_> = (0..31).map(|i| from_client(80, 41000 + i, SYN)).collect();
    r.run(0, &syns);
    let mut burst: Vec<_> = (0..31)
        .rev()
        .map(|i| from_client(80, 41000 + i, ACK))
        .collect();
    burst.push(from_client(80, 42000, SYN));
    let (_, out) = r.run(0, &burst);
    let want: Vec<_> = (0..31)
        .rev()
        .map(|i| 41000 + i)
        .chain([42000])
        .map(|sport| {
            let flags = if sport == 42000 { SYN } else { ACK };
            let seg = tcp("10.0.0.2", "10.0.0.100", sport, 80, flags, &[]);
            eth_raw(
                RS[0],
                P1,
                0x0800,
                &ipv4("10.0.0.2", "10.0.0.100", 6, 63, &seg),
            )
        })
        .collect();
    assert_eq!(out, want);
    let (_, out) = r.run(
        0,
        &[from_client(80, 42001, SYN), from_client(80, 42001, ACK)],
    );
    assert_eq!(out.len(), 2);
    assert_eq!(r.shared.cores[0].dests[0].conns.get(), 33);
    assert_eq!(
        r.load(0),
        (33, 0),
        "every ACK moved its entry to ESTABLISHED"
    );
}

/// Next hops are cached per destination; a neighbour that changes its MAC
/// (learned, not static) gets the next packet at the new MAC.
#[test]
fn forwarding_follows_a_neighbour_that_moves() {
    let mut cfg = config(three_methods(), 1024);
    cfg.neighbours.retain(|n| n.ip != ip("10.1.0.11"));
    let mut r = Rig::new(&cfg, Arc::new(Shared::new(1, 64)), 0);
    let (_, out) = r.run(0, &[from_client(80, 40000, SYN)]);
    assert_eq!(out.len(), 1, "an ARP request for the real server");
    assert_eq!(&out[0][12..14], &[0x08, 0x06]);
    const A: [u8; 6] = [2, 0xaa, 0, 0, 0, 11];
    const B: [u8; 6] = [2, 0xbb, 0, 0, 0, 11];
    let reply = |mac| eth(P1, mac, 0x0806, &arp(2, mac, "10.1.0.11", P1, "10.1.0.1"));
    let (_, out) = r.run(1, &[reply(A)]);
    assert_eq!(out.len(), 1, "the held SYN");
    assert_eq!(out[0][..6], A);
    for _ in 0..2 {
        let (_, out) = r.run(0, &[from_client(80, 40000, ACK)]);
        assert_eq!(out[0][..6], A);
    }
    let (_, out) = r.run(1, &[reply(B)]);
    assert!(out.is_empty());
    let (_, out) = r.run(0, &[from_client(80, 40000, ACK)]);
    assert_eq!(out[0][..6], B, "the cached next hop followed the new MAC");
}

/// Scheduler sets for several workers, copied where copying is cheaper:
/// each worker's schedules exactly as a set prepared for it alone would,
/// and services the workers keep travel as `Keep` to every one.
#[test]
fn scheduler_sets_for_several_workers_schedule_as_fresh_ones() {
    use fastpath::ipvs::Ipvs;
    use fastpath::sched::Packet;
    use fastpath::service::counters::Load;
    let kinds: Vec<Kind> = Kind::ALL.into_iter().filter(|&k| k != Kind::Twos).collect();
    let services: Vec<Service> = kinds
        .iter()
        .enumerate()
        .map(|(i, &k)| {
            let base = 3 * i as u32;
            service(
                i as u32,
                TCP,
                1000 + i as u16,
                k,
                vec![
                    dest(base, 11, 80, Method::Dr, 1),
                    dest(base + 1, 12, 80, Method::Dr, 2),
                    dest(base + 2, 13, 80, Method::Dr, 3),
                ],
            )
        })
        .collect();
    let table = ServiceTable::new(services, vec![]).unwrap();
    let shared = Shared::new(3, 64);
    let mut sets = Ipvs::prepare_scheduler_sets(&table, None, &shared, 3);
    assert_eq!(sets.len(), 3);
    for (w, set) in sets.iter_mut().enumerate() {
        let mut fresh = Ipvs::prepare_schedulers(&table, None, &shared);
        for (i, s) in table.services().iter().enumerate() {
            let load = Load {
                dests: &s.dests,
                cores: &shared.cores,
                overload: &shared.overload,
            };
            for n in 0..64u32 {
                let pkt = Packet {
                    src: std::net::IpAddr::V4(Ipv4Addr::from_bits(0x0a00_0000 + n * 7919)),
                    dst: std::net::IpAddr::V4(Ipv4Addr::from_bits(0x0a01_0000 + n * 104_729)),
                    sport: 1024 + n as u16,
                    dport: 80,
                    proto: TCP,
                };
                assert_eq!(
                    set[i].schedule(&load, &pkt, 0),
                    fresh[i].schedule(&load, &pkt, 0),
                    "worker {w}, {:?}, packet {n}",
                    s.scheduler
                );
            }
        }
    }
    let kept = Ipvs::prepare_scheduler_sets(&table, Some(&table), &shared, 3);
    assert!(kept.iter().flatten().all(|s| s.is_keep()));
}

mod live {
    use super::*;
    use fastpath::mailbox::{mailboxes, Postbox, Snapshot};
    use fastpath::proto::Timeouts;
    use std::time::Duration;

    fn publish(pb: &Postbox, services: Vec<Service>, vips: &[&str], nodest: bool) {
        publish_after(pb, None, services, vips, nodest)
    }

    /// `publish` with the schedulers the control thread prepares when the
    /// workers run `last`.
    fn publish_after(
        pb: &Postbox,
        last: Option<Vec<Service>>,
        services: Vec<Service>,
        vips: &[&str],
        nodest: bool,
    ) {
        let last = last.map(|l| ServiceTable::new(l, vec![]).unwrap());
        let table = Arc::new(ServiceTable::new(services, vec![]).unwrap());
        let mut v: Vec<Ipv4Addr> = vips.iter().map(|a| ip(a)).collect();
        v.sort();
        let settings = fastpath::ipvs::Settings {
            expire_nodest_conn: nodest,
            ..Default::default()
        };
        let snap = Snapshot {
            table: table.clone(),
            vips: v.into(),
            gate: std::sync::Arc::from([]),
            timeouts: Timeouts::DEFAULT,
            settings,
        };
        let shared = fastpath::ipvs::Shared::new(1, 1024);
        pb.publish(&snap, |_| {
            fastpath::ipvs::Ipvs::prepare_schedulers(&table, last.as_ref(), &shared)
        })
        .unwrap();
    }

    fn to(vip: &str, dport: u16, sport: u16, flags: u8) -> Vec<u8> {
        let seg = tcp("10.0.0.2", vip, sport, dport, flags, &[]);
        eth(P0, CLI, 0x0800, &ipv4("10.0.0.2", vip, 6, 64, &seg))
    }

    fn rr2() -> Service {
        service(
            0,
            TCP,
            80,
            Kind::Rr,
            vec![
                dest(1, 12, 80, Method::Dr, 1),
                dest(0, 11, 80, Method::Dr, 1),
            ],
        )
    }

    /// A snapshot adds a service on a new VIP and keeps the rr cursor of
    /// the service it does not change; listing pages come back through
    /// the mailbox.
    #[test]
    fn a_new_snapshot_is_picked_up_between_bursts() {
        let mut r = Rig::one(vec![rr2()]);
        let (pb, mut boxes) = mailboxes(1);
        r.w.set_mailbox(boxes.remove(0));
        let (_, out) = r.run(0, &[to("10.0.0.100", 80, 1000, SYN)]);
        assert_eq!(out[0][5], 12, "rr starts at the head");
        let (_, out) = r.run(0, &[to("10.0.0.200", 80, 1000, SYN)]);
        assert!(out.is_empty(), "not a VIP yet");
        let mut other = service(7, TCP, 80, Kind::Rr, vec![dest(5, 13, 80, Method::Dr, 1)]);
        other.vip = ip("10.0.0.200");
        publish(
            &pb,
            vec![rr2(), other],
            &["10.0.0.100", "10.0.0.200"],
            false,
        );
        let (_, out) = r.run(
            0,
            &[
                to("10.0.0.100", 80, 1001, SYN),
                to("10.0.0.200", 80, 1002, SYN),
            ],
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0][5], 11, "the rr cursor survived the snapshot");
        assert_eq!(out[1][5], 13, "the new service on the new VIP");
        let arp_req = eth(
            [0xff; 6],
            CLI,
            0x0806,
            &arp(1, CLI, "10.0.0.2", [0; 6], "10.0.0.200"),
        );
        let (out0, _) = r.run(0, &[arp_req]);
        assert_eq!(out0.len(), 1, "the new VIP answers ARP");
        // A listing, two entries per page.
        let w = std::thread::spawn(move || {
            let mut rows = Vec::new();
            let mut cursor = Some(0);
            while let Some(c) = cursor {
                let (page, next) = pb.conns(0, c, 2, Duration::from_secs(5)).unwrap();
                assert!(page.len() <= 2);
                rows.extend(page);
                cursor = next;
            }
            rows
        });
        let rows = loop {
            r.w.poll(&mut r.io);
            if w.is_finished() {
                break w.join().unwrap();
            }
        };
        let mut got: Vec<_> = rows
            .iter()
            .map(|c| (c.cport, c.daddr.octets()[3], c.state))
            .collect();
        got.sort();
        let syn_recv = fastpath::proto::tcp::State::SynRecv as u8;
        assert_eq!(
            got,
            vec![
                (1000, 12, syn_recv),
                (1001, 11, syn_recv),
                (1002, 13, syn_recv)
            ]
        );
        assert!(rows
            .iter()
            .all(|c| c.expires_ms > 0 && c.expires_ms <= 60_000));
    }

    /// The control thread sends `Keep` for services the worker runs
    /// already: an unchanged one keeps its scheduler as it is, one whose
    /// servers changed keeps it and is told of the change, and one the
    /// worker turns out not to have (it missed a snapshot) is built there.
    #[test]
    fn kept_schedulers_carry_their_state_and_learn_of_changed_servers() {
        let mut r = Rig::one(vec![rr2()]);
        let (pb, mut boxes) = mailboxes(1);
        r.w.set_mailbox(boxes.remove(0));
        let (_, out) = r.run(0, &[to("10.0.0.100", 80, 1000, SYN)]);
        assert_eq!(out[0][5], 12, "rr starts at the head");
        // Unchanged: Keep, and the cursor moves on from where it was.
        publish_after(&pb, Some(vec![rr2()]), vec![rr2()], &["10.0.0.100"], false);
        let (_, out) = r.run(0, &[to("10.0.0.100", 80, 1001, SYN)]);
        assert_eq!(out[0][5], 11, "the kept cursor");
        // A third server at the head: Keep, updated in the worker.
        let mut three = rr2();
        three.dests.insert(0, dest(2, 13, 80, Method::Dr, 1));
        publish_after(
            &pb,
            Some(vec![rr2()]),
            vec![three.clone()],
            &["10.0.0.100"],
            false,
        );
        let (_, out) = r.run(
            0,
            &[
                to("10.0.0.100", 80, 1002, SYN),
                to("10.0.0.100", 80, 1003, SYN),
                to("10.0.0.100", 80, 1004, SYN),
            ],
        );
        let picks: Vec<u8> = out.iter().map(|f| f[5]).collect();
        assert!(
            picks.contains(&13) && picks.len() == 3,
            "the new server takes its turn: {picks:?}"
        );
        // The control thread believes the worker runs service 7; it does not.
        let mut other = service(7, TCP, 80, Kind::Mh, vec![dest(5, 12, 80, Method::Dr, 1)]);
        other.vip = ip("10.0.0.200");
        publish_after(
            &pb,
            Some(vec![three.clone(), other.clone()]),
            vec![three, other],
            &["10.0.0.100", "10.0.0.200"],
            false,
        );
        let (_, out) = r.run(0, &[to("10.0.0.200", 80, 1005, SYN)]);
        assert_eq!(out.len(), 1, "scheduled by a scheduler built in place");
        assert_eq!(out[0][5], 12);
    }

    /// A scheduler set that does not fit its table is refused whole: the
    /// worker keeps its old table and VIPs.
    #[test]
    fn a_snapshot_with_the_wrong_schedulers_is_refused_whole() {
        let mut r = Rig::one(vec![rr2()]);
        let (pb, mut boxes) = mailboxes(1);
        r.w.set_mailbox(boxes.remove(0));
        let mut other = service(7, TCP, 80, Kind::Rr, vec![dest(5, 13, 80, Method::Dr, 1)]);
        other.vip = ip("10.0.0.200");
        let table = Arc::new(ServiceTable::new(vec![rr2(), other], vec![]).unwrap());
        let snap = Snapshot {
            vips: table.vips().into(),
            gate: std::sync::Arc::from([]),
            table,
            timeouts: Timeouts::DEFAULT,
            settings: Default::default(),
        };
        pb.publish(&snap, |_| Vec::new()).unwrap();
        let (_, out) = r.run(
            0,
            &[
                to("10.0.0.200", 80, 1000, SYN),
                to("10.0.0.100", 80, 1001, SYN),
            ],
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0][5], 12, "the old service still forwards");
        assert_eq!(
            (
                r.stats.drops(DropReason::UnknownDestination),
                r.stats.drops(DropReason::NoService)
            ),
            (1, 0),
            "10.0.0.200 is still not a VIP"
        );
    }

    /// Reference 4.7: a removed real server's connections drop their
    /// packets (expire_nodest_conn=0) or are expired and rescheduled (1).
    #[test]
    fn connections_of_a_removed_server_follow_expire_nodest_conn() {
        for nodest in [false, true] {
            let mut r = Rig::one(vec![rr2()]);
            let (pb, mut boxes) = mailboxes(1);
            r.w.set_mailbox(boxes.remove(0));
            let (_, out) = r.run(0, &[to("10.0.0.100", 80, 1000, SYN)]);
            assert_eq!(out[0][5], 12);
            let only11 = service(0, TCP, 80, Kind::Rr, vec![dest(0, 11, 80, Method::Dr, 1)]);
            publish(&pb, vec![only11], &["10.0.0.100"], nodest);
            let (_, out) = r.run(0, &[to("10.0.0.100", 80, 1000, ACK)]);
            assert!(out.is_empty(), "nodest={nodest}: the ACK is dropped");
            let (_, out) = r.run(0, &[to("10.0.0.100", 80, 1000, SYN)]);
            if nodest {
                assert_eq!(out[0][5], 11, "expired, then scheduled anew");
                assert_eq!(r.stats.drops(DropReason::NoConnection), 1);
                assert_eq!(r.stats.drops(DropReason::DestRemoved), 0);
            } else {
                assert!(out.is_empty(), "still the removed server's connection");
                assert_eq!(r.stats.drops(DropReason::DestRemoved), 2);
            }
        }
    }
}

/// An IPv4 header rebuilt from `ip` (as `ipv4` makes it) with four bytes
/// of options (NOP NOP NOP EOL), checksum recomputed.
fn with_options(dgram: &[u8]) -> Vec<u8> {
    let mut h = dgram[..20].to_vec();
    h[0] = 0x46;
    h.extend_from_slice(&[1, 1, 1, 0]);
    let len = (dgram.len() + 4) as u16;
    h[2..4].copy_from_slice(&len.to_be_bytes());
    h[10..12].copy_from_slice(&[0, 0]);
    let c = frames::csum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    [h, dgram[20..].to_vec()].concat()
}

/// Packets of established connections take the burst pass's shortcut (the
/// header validated once, rewritten in place, sent through the cached next
/// hop). Whatever their shape, they must leave exactly as the transmit
/// functions, which parse the frame themselves, make them; and what those
/// refuse must be dropped and counted by the same reason as before.
#[test]
fn established_packets_leave_as_the_transmit_functions_make_them() {
    use fastpath::io::mem::VecBuf;
    use fastpath::xmit::{self, tun::TunParams, Endpoint, Verdict};
    let mut r = Rig::one(three_methods());
    let est = |r: &mut Rig, port: u16| {
        r.run(0, &[from_client(port, 40000, SYN)]);
        if port == 8080 {
            let reply = tcp("10.1.0.12", "10.0.0.2", 80, 40000, SYN | ACK, &[]);
            let (out0, _) = r.run(
                1,
                &[eth(
                    P1,
                    RS[1],
                    0x0800,
                    &ipv4("10.1.0.12", "10.0.0.2", 6, 64, &reply),
                )],
            );
            assert_eq!(out0.len(), 1);
        }
        let (_, out1) = r.run(0, &[from_client(port, 40000, ACK)]);
        assert_eq!(out1.len(), 1);
    };
    for port in [80, 8080, 443] {
        est(&mut r, port);
    }
    assert_eq!(r.load(0), (1, 0));
    assert_eq!(r.load(1), (1, 0));
    assert_eq!(r.load(2), (1, 0));

    let vip = "10.0.0.100";
    // (what, datagram) from the client to `dport`, or from the NAT real
    // server to the client when `dport` is 0.
    let shapes = |src: &str, dst: &str, sport: u16, dport: u16| -> Vec<(&str, Vec<u8>)> {
        let seg = |flags, payload: &[u8]| tcp(src, dst, sport, dport, flags, payload);
        let mut bad_doff = seg(ACK, b"data");
        bad_doff[12] = 0x40;
        vec![
            ("ack", ipv4(src, dst, 6, 64, &seg(ACK, &[]))),
            ("data", ipv4(src, dst, 6, 64, &seg(ACK | 0x08, b"hello"))),
            ("ttl 2", ipv4(src, dst, 6, 2, &seg(ACK, &[]))),
            ("ttl 1", ipv4(src, dst, 6, 1, &seg(ACK, &[]))),
            ("ttl 0", ipv4(src, dst, 6, 0, &seg(ACK, &[]))),
            (
                "options",
                with_options(&ipv4(src, dst, 6, 64, &seg(ACK, b"opt"))),
            ),
            ("too big, DF", ipv4(src, dst, 6, 64, &seg(ACK, &[7; 1500]))),
            (
                "too big",
                ipv4_with(0, 1, 0, 64, 6, src, dst, &seg(ACK, &[7; 1500])),
            ),
            ("tcp data offset 16", ipv4(src, dst, 6, 64, &bad_doff)),
            ("fin", ipv4(src, dst, 6, 64, &seg(ACK | 0x01, &[]))),
        ]
    };
    let cases = [
        ("dr", 80u16, "10.0.0.2", vip, 40000u16, 80u16),
        ("tun", 443, "10.0.0.2", vip, 40000, 443),
        ("nat", 8080, "10.0.0.2", vip, 40000, 8080),
        ("nat-out", 8080, "10.1.0.12", "10.0.0.2", 80, 40000),
    ];
    let mut checked = 0;
    for (mode, _, src, dst, sport, dport) in cases {
        for (what, dgram) in shapes(src, dst, sport, dport) {
            let out_port = if mode == "nat-out" { 0 } else { 1 };
            let (in_port, frame) = if mode == "nat-out" {
                (1, eth(P1, RS[1], 0x0800, &dgram))
            } else {
                (0, eth(P0, CLI, 0x0800, &dgram))
            };
            let before: Vec<u64> = DropReason::ALL.iter().map(|&d| r.stats.drops(d)).collect();
            let icmp_before = r.stats.count(Event::IcmpErrorSent);
            let (out0, out1) = r.run(in_port, std::slice::from_ref(&frame));
            let got = if out_port == 0 { &out0 } else { &out1 };
            let mut b = VecBuf::new(&frame);
            let v = match mode {
                "dr" => xmit::dr::transmit(&mut b, 1500),
                "nat" => xmit::nat::dnat(
                    &mut b,
                    Endpoint::new(ip(vip), 8080),
                    Endpoint::new(ip("10.1.0.12"), 80),
                    1500,
                ),
                "nat-out" => xmit::nat::snat(
                    &mut b,
                    Endpoint::new(ip("10.1.0.12"), 80),
                    Endpoint::new(ip(vip), 8080),
                    1500,
                ),
                _ => {
                    // The outer IP ID is the worker's counter.
                    let ident = got
                        .first()
                        .map_or(0, |f| u16::from_be_bytes([f[18], f[19]]));
                    let p = TunParams::new(ip("10.1.0.1"), ip("10.1.0.13"), 1500, ident);
                    xmit::tun::encapsulate(&mut b, &p)
                }
            };
            let dropped: Vec<DropReason> = DropReason::ALL
                .iter()
                .zip(&before)
                .filter(|&(&d, &n)| r.stats.drops(d) != n)
                .map(|(&d, _)| d)
                .collect();
            let icmp = r.stats.count(Event::IcmpErrorSent) - icmp_before;
            let ctx = format!("{mode} {what}: {v:?}");
            match v {
                Verdict::Forward => {
                    let mac = match mode {
                        "dr" => RS[0],
                        "nat" => RS[1],
                        "tun" => RS[2],
                        _ => CLI,
                    };
                    let own = if out_port == 0 { P0 } else { P1 };
                    let mut want = b.bytes.clone();
                    want[..6].copy_from_slice(&mac);
                    want[6..12].copy_from_slice(&own);
                    assert_eq!(got, &vec![want], "{ctx}");
                    assert!(dropped.is_empty(), "{ctx}: {dropped:?}");
                }
                _ => {
                    let (why, answered) = match v {
                        Verdict::TimeExceeded => (DropReason::TtlExceeded, 1),
                        Verdict::FragNeeded { .. } => (DropReason::TooBig, 1),
                        Verdict::NeedsFragmentation => (DropReason::TooBig, 0),
                        Verdict::Malformed => (DropReason::Malformed, 0),
                        other => panic!("{ctx}: unexpected {other:?}"),
                    };
                    assert_eq!(dropped, vec![why], "{ctx}");
                    assert_eq!(icmp, answered, "{ctx}");
                    // An answer goes back towards the packet's source.
                    let back = if in_port == 0 { &out0 } else { &out1 };
                    assert_eq!(back.len(), answered as usize, "{ctx}");
                    if in_port != out_port {
                        assert!(got.is_empty(), "{ctx}");
                    }
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 40);
    // What the engine refuses before any transmit function sees it.
    for (mode, src, dst, sport, dport) in [
        ("dr", "10.0.0.2", vip, 40000u16, 80u16),
        ("nat", "10.0.0.2", vip, 40000, 8080),
        ("nat-out", "10.1.0.12", "10.0.0.2", 80, 40000),
    ] {
        let seg = tcp(src, dst, sport, dport, ACK, &[]);
        let mut bad_sum = ipv4(src, dst, 6, 64, &seg);
        bad_sum[10] ^= 0x40;
        let frag = ipv4_with(0, 1, 0x2000, 64, 6, src, dst, &seg);
        // A reply that cannot be parsed is nothing the director knows.
        let frag_why = if mode == "nat-out" {
            DropReason::UnknownDestination
        } else {
            DropReason::Fragment
        };
        for (dgram, why) in [(bad_sum, DropReason::BadChecksum), (frag, frag_why)] {
            let f = if mode == "nat-out" {
                (1, eth(P1, RS[1], 0x0800, &dgram))
            } else {
                (0, eth(P0, CLI, 0x0800, &dgram))
            };
            let n = r.stats.drops(why);
            let (out0, out1) = r.run(f.0, std::slice::from_ref(&f.1));
            assert!(out0.is_empty() && out1.is_empty(), "{mode} {why:?}");
            assert_eq!(r.stats.drops(why), n + 1, "{mode} {why:?}");
        }
    }
    // A FIN moved each entry on; the shortcut only ever skips the tables
    // for segments that cannot.
    assert_eq!(r.load(0), (0, 1));
}

/// The burst pass hands a frame it parsed straight to the engine, a new
/// connection's first packet included; a frame handed over by another
/// worker takes the general path (parsed again, looked up alone). Both
/// must come out the same: bytes, connection state and drop counts.
#[test]
fn the_burst_pass_and_the_general_path_agree() {
    let (_, on1) = ports_on_two_cores();
    let cfg = config(three_methods(), 1024);
    let mut bad_doff = tcp("10.0.0.2", "10.0.0.100", on1, 8080, ACK, b"x");
    bad_doff[12] = 0x40;
    let frames = [
        from_client(80, on1, SYN),
        from_client(80, on1, ACK),
        from_client(8080, on1, SYN),
        from_client(8080, on1, ACK),
        from_client(443, on1, SYN),
        from_client(80, on1, ACK | 0x01),
        eth(
            P0,
            CLI,
            0x0800,
            &ipv4(
                "10.0.0.2",
                "10.0.0.100",
                6,
                1,
                &tcp("10.0.0.2", "10.0.0.100", on1, 8080, ACK, &[]),
            ),
        ),
        eth(
            P0,
            CLI,
            0x0800,
            &ipv4("10.0.0.2", "10.0.0.100", 6, 64, &bad_doff),
        ),
    ];
    // Direct: worker 1 owns the flow and receives it.
    let shared = Arc::new(Shared::new(2, 64));
    let mut direct = Rig::new(&cfg, shared.clone(), 1);
    // Handed: worker 0 receives it and hands it to worker 1.
    let shared2 = Arc::new(Shared::new(2, 64));
    let mut w0 = Rig::new(&cfg, shared2.clone(), 0);
    let mut handed = Rig::new(&cfg, shared2, 1);
    for f in &frames {
        let a = direct.run(0, std::slice::from_ref(f));
        w0.run(0, std::slice::from_ref(f));
        let (to, pkt) = w0.io.to_peers.pop().expect("handed over");
        assert_eq!(to, 1);
        handed.io.from_peers.push_back(pkt);
        let b = handed.run(0, &[]);
        assert_eq!(a, b, "{f:02x?}");
        for d in DropReason::ALL {
            assert_eq!(direct.stats.drops(*d), handed.stats.drops(*d), "{d:?}");
        }
        for dest in 0..3 {
            assert_eq!(direct.load(dest), handed.load(dest));
        }
    }
    // The data offset below 5 is no reason to drop: IPVS forwards it.
    assert_eq!(direct.stats.drops(DropReason::Malformed), 0);
    assert_eq!(direct.stats.drops(DropReason::TtlExceeded), 1);
    for dest in 0..3 {
        let conns = |r: &Rig| r.shared.cores[1].dests[dest].conns.get();
        assert_eq!((conns(&direct), conns(&handed)), (1, 1), "server {dest}");
    }
}

/// A NIC that verified the IPv4 header checksum is believed either way:
/// a header it passed is not summed again (so a wrong sum it let through
/// is forwarded: the test's way of showing the software check was
/// skipped), one it condemned is dropped even though the bytes add up.
/// Without a verdict the software check decides. The established flow's
/// frames take the burst pass's shortcut; the SYN the general path.
#[test]
fn the_nics_ip_checksum_verdict_replaces_the_software_check() {
    use fastpath::io::mem::VecBuf;
    use fastpath::io::{Csum, RxOffload};
    let mut r = Rig::one(three_methods());
    // Byte 25: the low byte of the IPv4 header checksum (14 + 10 + 1).
    let wrong = |mut f: Vec<u8>| {
        f[25] ^= 0x40;
        f
    };
    let cases = [
        (
            "wrong sum, NIC says good",
            wrong(from_client(80, 40000, SYN)),
            Csum::Good,
            true,
        ),
        (
            "right sum, NIC says bad",
            from_client(80, 40000, ACK),
            Csum::Bad,
            false,
        ),
        (
            "wrong sum, no verdict",
            wrong(from_client(80, 40000, ACK)),
            Csum::Unknown,
            false,
        ),
        (
            "right sum, no verdict",
            from_client(80, 40000, ACK),
            Csum::Unknown,
            true,
        ),
        (
            "wrong sum, NIC says good",
            wrong(from_client(80, 40000, ACK)),
            Csum::Good,
            true,
        ),
    ];
    for (what, frame, ip, forwarded) in cases {
        let mut b = VecBuf::new(&frame);
        b.offload = RxOffload {
            ip,
            l4: Csum::Unknown,
        };
        r.io.ports[0].rx.push_back(b);
        let bad = r.stats.drops(DropReason::BadChecksum);
        let (out0, out1) = r.run(0, &[]);
        assert!(out0.is_empty(), "{what}");
        assert_eq!(out1.len(), usize::from(forwarded), "{what}");
        let dropped = r.stats.drops(DropReason::BadChecksum) - bad;
        assert_eq!(dropped, u64::from(!forwarded), "{what}");
    }
    assert_eq!(r.shared.cores[0].dests[0].in_pkts.get(), 3);
}

/// The overload defences (reference 7) in the engine: drop_entry's room
/// for a full table and its scan, drop_packet, secure_tcp's table.
mod defence {
    use super::*;
    use fastpath::defence::DefenceSettings;
    use fastpath::proto::tcp::State;

    fn rig(max: usize, d: DefenceSettings) -> Rig {
        let mut cfg = config(three_methods(), max);
        cfg.settings.defence = d;
        Rig::new(&cfg, Arc::new(Shared::new(1, 64)), 0)
    }

    fn auto_entry() -> DefenceSettings {
        DefenceSettings {
            drop_entry: 1,
            ..Default::default()
        }
    }

    /// Moves the clock to `ms` a worker tick (10 ms) at a time, as a
    /// running worker would see it.
    fn run_until(r: &mut Rig, ms: u64) {
        while r.io.now < ms {
            r.io.now += 10;
            r.run(0, &[]);
        }
    }

    fn states(r: &Rig) -> Vec<(u16, u8)> {
        let mut v = Vec::new();
        r.w.host().ipvs().connections().page(0, usize::MAX, |_, c| {
            v.push((c.cport(), c.state));
        });
        v.sort_unstable();
        v
    }

    #[test]
    fn a_full_table_gives_a_half_open_entry_up_once_drop_entry_engages() {
        let mut r = rig(4, auto_entry());
        // Two established, two half-open: the table is full.
        r.run(0, &[from_client(80, 1, SYN), from_client(80, 2, SYN)]);
        r.run(0, &[from_client(80, 1, ACK), from_client(80, 2, ACK)]);
        r.run(0, &[from_client(80, 3, SYN), from_client(80, 4, SYN)]);
        // drop_entry is automatic and off: the fifth is refused, and the
        // refusal brings the next evaluation forward to 100 ms.
        let (_, out) = r.run(0, &[from_client(80, 5, SYN)]);
        assert!(out.is_empty());
        assert_eq!(r.stats.drops(DropReason::ConnTableFull), 1);
        assert_eq!(r.stats.count(Event::DropEntryOn), 0);
        run_until(&mut r, 110);
        assert_eq!(r.stats.count(Event::DropEntryOn), 1);
        assert_eq!(r.shared.defence[0].view().drop_entry, 2);
        // Now a new client takes a half-open entry's place, and is
        // forwarded; the established two are never candidates.
        let (_, out) = r.run(0, &[from_client(80, 5, SYN), from_client(80, 6, SYN)]);
        assert_eq!(out.len(), 2);
        assert_eq!(r.stats.count(Event::DropEntryEvicted), 2);
        let st = states(&r);
        let es = State::Established as u8;
        let sr = State::SynRecv as u8;
        assert_eq!(st, vec![(1, es), (2, es), (5, sr), (6, sr)]);
        // With only established entries left, a new one is refused.
        r.run(0, &[from_client(80, 5, ACK), from_client(80, 6, ACK)]);
        let (_, out) = r.run(0, &[from_client(80, 7, SYN)]);
        assert!(out.is_empty());
        assert_eq!(r.stats.drops(DropReason::ConnTableFull), 2);
        assert_eq!(r.stats.count(Event::DropEntryEvicted), 2);
        assert_eq!(r.load(0), (4, 0), "the evicted entries' counts were undone");
    }

    #[test]
    fn with_drop_entry_off_a_full_table_refuses() {
        let mut r = rig(2, DefenceSettings::default());
        r.run(0, &[from_client(80, 1, SYN), from_client(80, 2, SYN)]);
        run_until(&mut r, 2000);
        let (_, out) = r.run(0, &[from_client(80, 3, SYN)]);
        assert!(out.is_empty());
        assert_eq!(r.stats.drops(DropReason::ConnTableFull), 1);
        assert_eq!(r.stats.count(Event::DropEntryEvicted), 0);
        assert_eq!(r.stats.count(Event::DropEntryOn), 0);
    }

    #[test]
    fn the_automatic_modes_switch_back_when_the_table_drains() {
        let d = DefenceSettings {
            drop_entry: 1,
            drop_packet: 1,
            secure_tcp: 1,
            threshold_permille: 500,
            ..Default::default()
        };
        let mut r = rig(4, d);
        // Three of four: above 50 %.
        let syns: Vec<_> = (1..=3).map(|p| from_client(80, p, SYN)).collect();
        r.run(0, &syns);
        run_until(&mut r, 1010);
        let v = r.shared.defence[0].view();
        assert_eq!((v.drop_entry, v.drop_packet, v.secure_tcp), (2, 2, 2));
        // amemthresh 2 slots, 1 free: rate 2 / (2 − 1).
        assert_eq!(v.drop_rate, 2);
        for e in [Event::DropEntryOn, Event::DropPacketOn, Event::SecureTcpOn] {
            assert_eq!(r.stats.count(e), 1, "{}", e.name());
        }
        // The SYN_RECV entries expire at 60 s (drop_entry may take some
        // first); at the next evaluation everything is off again.
        run_until(&mut r, 62_100);
        assert!(r.w.host().ipvs().connections().is_empty());
        let v = r.shared.defence[0].view();
        assert_eq!((v.drop_entry, v.drop_packet, v.secure_tcp), (1, 1, 1));
        assert_eq!(v.drop_rate, 0);
        for e in [
            Event::DropEntryOff,
            Event::DropPacketOff,
            Event::SecureTcpOff,
        ] {
            assert_eq!(r.stats.count(e), 1, "{}", e.name());
        }
    }

    #[test]
    fn drop_packet_takes_one_in_am_droprate_new_connections_only() {
        let d = DefenceSettings {
            drop_packet: 3,
            am_droprate: 3,
            ..Default::default()
        };
        let mut r = rig(64, d);
        r.run(0, &[]);
        let syns: Vec<_> = (1..=9).map(|p| from_client(80, p, SYN)).collect();
        let (_, out) = r.run(0, &syns);
        // The first, fourth and seventh go (the kernel's counter starts
        // at 0 in mode 3), before any scheduling: no entry, no ICMP.
        assert_eq!(out.len(), 6);
        assert_eq!(r.stats.drops(DropReason::DropPacket), 3);
        let ports: Vec<u16> = states(&r).iter().map(|s| s.0).collect();
        assert_eq!(ports, vec![2, 3, 5, 6, 8, 9]);
        // Packets of existing connections are never dropped by it.
        let acks: Vec<_> = ports.iter().map(|&p| from_client(80, p, ACK)).collect();
        let (_, out) = r.run(0, &acks);
        assert_eq!(out.len(), 6);
        assert_eq!(r.stats.drops(DropReason::DropPacket), 3);
    }

    #[test]
    fn secure_tcp_moves_existing_entries_through_the_dos_table() {
        use fastpath::mailbox::{mailboxes, Snapshot};
        let mut r = rig(64, DefenceSettings::default());
        let (pb, mut boxes) = mailboxes(1);
        r.w.set_mailbox(boxes.remove(0));
        // Two NAT clients in SYN_RECV before secure_tcp is on.
        r.run(0, &[from_client(8080, 1, SYN), from_client(8080, 2, SYN)]);
        // Normal table: the client's own ACK establishes.
        r.run(0, &[from_client(8080, 1, ACK)]);
        let es = State::Established as u8;
        let sr = State::SynRecv as u8;
        assert_eq!(states(&r), vec![(1, es), (2, sr)]);
        // secure_tcp = 3, written live.
        let table = Arc::new(ServiceTable::new(three_methods(), vec![]).unwrap());
        let settings = fastpath::ipvs::Settings {
            defence: DefenceSettings {
                secure_tcp: 3,
                ..Default::default()
            },
            ..Default::default()
        };
        let snap = Snapshot {
            table: table.clone(),
            vips: vec![ip("10.0.0.100")].into(),
            gate: Arc::from([]),
            timeouts: fastpath::proto::Timeouts::DEFAULT,
            settings,
        };
        pb.publish(&snap, |_| {
            fastpath::ipvs::Ipvs::prepare_schedulers(&table, None, &r.shared)
        })
        .unwrap();
        run_until(&mut r, 20);
        assert_eq!(r.stats.count(Event::SecureTcpOn), 1);
        assert_eq!(r.shared.defence[0].view().secure_tcp, 3);
        // The existing half-open entry: the client's ACK alone no longer
        // establishes (DoS table, INPUT: SR + ack → SR)...
        r.run(0, &[from_client(8080, 2, ACK)]);
        assert_eq!(states(&r), vec![(1, es), (2, sr)]);
        // ...the real server's SYN/ACK does (OUTPUT: SR + syn → SA, then
        // INPUT: SA + ack → ES is the normal table's; the DoS table keeps
        // SA until the server's ACK class segment).
        let reply = tcp("10.1.0.12", "10.0.0.2", 80, 2, SYN | ACK, &[]);
        r.run(
            1,
            &[eth(
                P1,
                RS[1],
                0x0800,
                &ipv4("10.1.0.12", "10.0.0.2", 6, 64, &reply),
            )],
        );
        assert_eq!(states(&r), vec![(1, es), (2, State::SynAck as u8)]);
        // The established entry stays established.
        r.run(0, &[from_client(8080, 1, ACK)]);
        assert_eq!(states(&r)[0], (1, es));
    }

    #[test]
    fn the_scan_drops_only_the_kernels_candidates() {
        let d = DefenceSettings {
            drop_entry: 3,
            ..Default::default()
        };
        // 1,024 buckets: the scan visits 32 a second.
        let mut r = rig(1024, d);
        // 300 established with 2 packets, 100 established with 10
        // packets, 100 in FIN_WAIT (client FIN): all from 0 s.
        let n: u16 = 500;
        let syns: Vec<_> = (1..=n).map(|p| from_client(80, p, SYN)).collect();
        let acks: Vec<_> = (1..=n).map(|p| from_client(80, p, ACK)).collect();
        for chunk in syns.chunks(32).chain(acks.chunks(32)) {
            r.run(0, chunk);
        }
        for _ in 0..8 {
            let more: Vec<_> = (301..=400).map(|p| from_client(80, p, ACK)).collect();
            for chunk in more.chunks(32) {
                r.run(0, chunk);
            }
        }
        let fins: Vec<_> = (401..=n).map(|p| from_client(80, p, 0x11)).collect();
        for chunk in fins.chunks(32) {
            r.run(0, chunk);
        }
        // For the first minute nothing is idle enough.
        run_until(&mut r, 59_000);
        assert_eq!(r.stats.count(Event::DropEntryDropped), 0);
        assert_eq!(r.w.host().ipvs().connections().len(), n as usize);
        // FIN_WAIT lasts 120 s; scan for 55 s after the minute.
        run_until(&mut r, 115_000);
        let left = states(&r);
        let dropped = r.stats.count(Event::DropEntryDropped) as usize;
        assert_eq!(left.len() + dropped, n as usize);
        let es = State::Established as u8;
        let fw = State::FinWait as u8;
        // Only 2-packet established entries went; about half of those
        // visited (every second one considered), and about 1 − e^−1.7 of
        // the buckets were visited in 55 s of 32 a second.
        assert!(left
            .iter()
            .filter(|s| s.0 > 300)
            .all(|s| s.1 == es || s.1 == fw));
        assert_eq!(left.iter().filter(|s| s.0 > 300).count(), 200);
        assert!((60..200).contains(&dropped), "{dropped} dropped");
        assert_eq!(r.load(0).0 as usize, 300 - dropped + 100);
    }
}
