//! The director's own presence, end to end on byte buffers: frames in on a
//! `MemIo`, exact frames out. Checksums in expected frames come from this
//! file's own RFC 1071 implementation, not the crate's.

use fastpath::io::mem::MemIo;
use fastpath::io::mem::VecBuf;
use fastpath::stats::{DropReason, Event};
use fastpath::wire::MacAddr;
use fastpath::{HostConfig, PortConfig, StaticNeighbour, StaticRoute, Worker, WorkerStats};
use std::sync::Arc;

#[path = "../../tests/common/frames.rs"]
mod frames;
#[path = "support/scalar.rs"]
mod scalar;
use frames::{arp, echo, eth, ip, ipv4, BCAST};

const P0_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const P1_MAC: [u8; 6] = [0x02, 0, 0, 0, 1, 0x01];
const CLIENT_MAC: [u8; 6] = [0x02, 0xc0, 0, 0, 0, 0x02];
const GW_MAC: [u8; 6] = [0x02, 0xee, 0, 0, 0, 0xfe];

fn config() -> HostConfig {
    HostConfig {
        ports: vec![
            PortConfig {
                mac: MacAddr(P0_MAC),
                mtu: 1500,
                addrs: vec![(ip("10.0.0.1"), 24)],
                exception: true,
                rss_owner: false,
            },
            PortConfig {
                mac: MacAddr(P1_MAC),
                mtu: 1500,
                addrs: vec![(ip("10.1.0.1"), 24)],
                exception: false,
                rss_owner: false,
            },
        ],
        vips: vec![ip("10.0.0.100")],
        routes: vec![
            StaticRoute {
                net: ip("0.0.0.0"),
                prefix_len: 0,
                via: Some(ip("10.0.0.254")),
                port: 0,
            },
            StaticRoute {
                net: ip("172.16.0.0"),
                prefix_len: 12,
                via: Some(ip("10.1.0.254")),
                port: 1,
            },
        ],
        neighbours: vec![StaticNeighbour {
            port: 1,
            ip: ip("10.1.0.254"),
            mac: MacAddr(GW_MAC),
        }],
        neigh_limit: 64,
        ..Default::default()
    }
}

struct Rig {
    io: MemIo,
    w: Worker<VecBuf>,
    stats: Arc<WorkerStats>,
}

impl Rig {
    fn new() -> Rig {
        Self::with(config(), 0, 1)
    }
    fn with(cfg: HostConfig, worker: usize, nworkers: usize) -> Rig {
        let stats = Arc::new(WorkerStats::default());
        let mut io = MemIo::new(cfg.ports.len());
        io.worker = worker;
        io.nworkers = nworkers;
        let mut w = scalar::as_env_says(Worker::new(&cfg, stats.clone()));
        w.poll(&mut io); // start-up: gratuitous ARPs
        io.take_tx(0);
        io.take_tx(1);
        Rig { io, w, stats }
    }
    /// Feeds frames on `port`, polls once, returns what left each port.
    fn run(&mut self, port: usize, frames: &[Vec<u8>]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        for f in frames {
            self.io.push_rx(port, f);
        }
        self.w.poll(&mut self.io);
        (self.io.take_tx(0), self.io.take_tx(1))
    }
    fn drops(&self, r: DropReason) -> u64 {
        self.stats.drops(r)
    }
    fn total_drops(&self) -> u64 {
        DropReason::ALL.iter().map(|&r| self.stats.drops(r)).sum()
    }
}

fn ping(src: &str, dst: &str) -> Vec<u8> {
    eth(
        P0_MAC,
        CLIENT_MAC,
        0x0800,
        &ipv4(
            src,
            dst,
            1,
            64,
            &echo(8, 0x4242, 7, b"abcdefghijklmnopqrstuvwxyz012345"),
        ),
    )
}

fn pong(src: &str, dst: &str, dst_mac: [u8; 6]) -> Vec<u8> {
    eth(
        dst_mac,
        P0_MAC,
        0x0800,
        &ipv4(
            src,
            dst,
            1,
            64,
            &echo(0, 0x4242, 7, b"abcdefghijklmnopqrstuvwxyz012345"),
        ),
    )
}

fn who_has(tpa: &str) -> Vec<u8> {
    eth(
        BCAST,
        CLIENT_MAC,
        0x0806,
        &arp(1, CLIENT_MAC, "10.0.0.2", [0; 6], tpa),
    )
}

// ---- tests ----

#[test]
fn gratuitous_arp_for_every_address_and_vip_at_start() {
    let stats = Arc::new(WorkerStats::default());
    let mut io = MemIo::new(2);
    let mut w = scalar::as_env_says(Worker::new(&config(), stats.clone()));
    w.poll(&mut io);
    let garp = |mac, a| eth(BCAST, mac, 0x0806, &arp(1, mac, a, [0; 6], a));
    assert_eq!(
        io.take_tx(0),
        vec![garp(P0_MAC, "10.0.0.1"), garp(P0_MAC, "10.0.0.100")]
    );
    assert_eq!(
        io.take_tx(1),
        vec![garp(P1_MAC, "10.1.0.1"), garp(P1_MAC, "10.0.0.100")]
    );
    w.poll(&mut io);
    assert!(io.take_tx(0).is_empty(), "announced once");
    assert_eq!(stats.count(Event::GratuitousArpSent), 4);

    // Only worker 0 announces.
    let mut io = MemIo::new(2);
    io.worker = 1;
    io.nworkers = 2;
    scalar::as_env_says(Worker::<VecBuf>::new(
        &config(),
        Arc::new(WorkerStats::default()),
    ))
    .poll(&mut io);
    assert!(io.take_tx(0).is_empty());
}

#[test]
fn arp_request_for_vip_and_interface_get_exact_replies() {
    let mut r = Rig::new();
    for target in ["10.0.0.100", "10.0.0.1"] {
        let (out, _) = r.run(0, &[who_has(target)]);
        assert_eq!(
            out,
            vec![eth(
                CLIENT_MAC,
                P0_MAC,
                0x0806,
                &arp(2, P0_MAC, target, CLIENT_MAC, "10.0.0.2")
            )]
        );
    }
    assert_eq!(r.stats.count(Event::ArpReplySent), 2);
    assert_eq!(r.total_drops(), 0);
}

#[test]
fn arp_for_other_hosts_or_other_ports_addresses_is_not_answered() {
    let mut r = Rig::new();
    let (out, _) = r.run(0, &[who_has("10.0.0.77"), who_has("10.1.0.1")]);
    assert!(out.is_empty());
    assert_eq!(r.drops(DropReason::ArpNotForUs), 2);
    // Non-Ethernet/IPv4 ARP and a broadcast sender MAC are malformed.
    let mut bad = who_has("10.0.0.1");
    bad[17] = 0x11;
    let mut bcast_sender = who_has("10.0.0.1");
    bcast_sender[22..28].copy_from_slice(&BCAST);
    let (out, _) = r.run(0, &[bad, bcast_sender, who_has("10.0.0.1")[..41].to_vec()]);
    assert!(out.is_empty());
    assert_eq!(r.drops(DropReason::Malformed), 3);
}

#[test]
fn echo_to_unresolved_client_resolves_then_sends() {
    let mut r = Rig::new();
    let (out, _) = r.run(0, &[ping("10.0.0.2", "10.0.0.1")]);
    assert_eq!(
        out,
        vec![eth(
            BCAST,
            P0_MAC,
            0x0806,
            &arp(1, P0_MAC, "10.0.0.1", [0; 6], "10.0.0.2")
        )]
    );
    let reply = eth(
        P0_MAC,
        CLIENT_MAC,
        0x0806,
        &arp(2, CLIENT_MAC, "10.0.0.2", P0_MAC, "10.0.0.1"),
    );
    let (out, _) = r.run(0, std::slice::from_ref(&reply));
    assert_eq!(out, vec![pong("10.0.0.1", "10.0.0.2", CLIENT_MAC)]);
    // The reply to our request is also copied up to the kernel's tap.
    assert_eq!(r.io.take_to_kernel(0), vec![reply]);
    // Resolved now: the next echo is answered at once.
    let (out, _) = r.run(0, &[ping("10.0.0.2", "10.0.0.100")]);
    assert_eq!(out, vec![pong("10.0.0.100", "10.0.0.2", CLIENT_MAC)]);
    assert_eq!(r.stats.count(Event::EchoReplySent), 2);
    assert_eq!(r.total_drops(), 0);
}

#[test]
fn a_request_aimed_at_us_teaches_the_senders_mac() {
    let mut r = Rig::new();
    r.run(0, &[who_has("10.0.0.1")]);
    let (out, _) = r.run(0, &[ping("10.0.0.2", "10.0.0.1")]);
    assert_eq!(out, vec![pong("10.0.0.1", "10.0.0.2", CLIENT_MAC)]);
}

#[test]
fn echo_from_off_link_goes_via_gateway_and_static_neighbour() {
    let mut r = Rig::new();
    // Default route: gateway 10.0.0.254 on port 0, not yet resolved.
    let (out, _) = r.run(0, &[ping("8.8.8.8", "10.0.0.100")]);
    assert_eq!(
        out,
        vec![eth(
            BCAST,
            P0_MAC,
            0x0806,
            &arp(1, P0_MAC, "10.0.0.1", [0; 6], "10.0.0.254")
        )]
    );
    // 172.16/12 via 10.1.0.254 on port 1, a static neighbour: out at once.
    let (out0, out1) = r.run(0, &[ping("172.20.1.1", "10.0.0.1")]);
    assert!(out0.is_empty());
    let mut expect = pong("10.0.0.1", "172.20.1.1", GW_MAC);
    expect[6..12].copy_from_slice(&P1_MAC);
    assert_eq!(out1, vec![expect]);
}

#[test]
fn no_route_is_dropped_and_counted() {
    let mut cfg = config();
    cfg.routes.retain(|r| r.prefix_len != 0);
    let mut r = Rig::with(cfg, 0, 1);
    let (out, _) = r.run(0, &[ping("8.8.8.8", "10.0.0.1")]);
    assert!(out.is_empty());
    assert_eq!(r.drops(DropReason::NoRoute), 1);
}

#[test]
fn bad_frames_are_dropped_by_reason() {
    let mut r = Rig::new();
    let mut bad_ip_sum = ping("10.0.0.2", "10.0.0.1");
    bad_ip_sum[24] ^= 0xff;
    let mut bad_icmp_sum = ping("10.0.0.2", "10.0.0.1");
    bad_icmp_sum[36] ^= 0xff;
    let mut other_mac = ping("10.0.0.2", "10.0.0.1");
    other_mac[5] = 0x99;
    let mut truncated = ping("10.0.0.2", "10.0.0.1");
    truncated.truncate(40);
    let (out, _) = r.run(
        0,
        &[
            bad_ip_sum,
            bad_icmp_sum,
            other_mac,
            truncated,
            vec![1, 2, 3],
            ping("10.0.0.2", "10.9.9.9"),
            ping("10.0.0.2", "10.1.0.77"),
        ],
    );
    assert!(out.is_empty());
    assert_eq!(r.drops(DropReason::BadChecksum), 2);
    assert_eq!(r.drops(DropReason::NotForUs), 1);
    assert_eq!(r.drops(DropReason::Malformed), 2);
    assert_eq!(r.drops(DropReason::UnknownDestination), 2);
    assert_eq!(r.total_drops(), 7);
}

#[test]
fn vip_traffic_without_a_service_is_dropped_and_counted() {
    let mut r = Rig::new();
    let syn = eth(
        P0_MAC,
        CLIENT_MAC,
        0x0800,
        &ipv4("10.0.0.2", "10.0.0.100", 6, 64, &[0u8; 20]),
    );
    let (out, _) = r.run(0, &[syn]);
    assert!(out.is_empty() && r.io.take_to_kernel(0).is_empty());
    assert_eq!(r.drops(DropReason::NoService), 1);
}

#[test]
fn exception_path_both_ways() {
    let mut r = Rig::new();
    let mut tcp = [0u8; 20];
    tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&22u16.to_be_bytes());
    tcp[12] = 0x50;
    tcp[13] = 0x02;
    let syn = eth(
        P0_MAC,
        CLIENT_MAC,
        0x0800,
        &ipv4("10.0.0.2", "10.0.0.1", 6, 64, &tcp),
    );
    let v6 = eth([0x33, 0x33, 0, 0, 0, 1], CLIENT_MAC, 0x86dd, &[0x60; 40]);
    let (out, _) = r.run(0, &[syn.clone(), v6.clone()]);
    assert!(out.is_empty());
    assert_eq!(r.io.take_to_kernel(0), vec![syn.clone(), v6]);
    // What the kernel sends leaves through the port unchanged.
    let synack = eth(
        CLIENT_MAC,
        P0_MAC,
        0x0800,
        &ipv4("10.0.0.1", "10.0.0.2", 6, 64, &tcp),
    );
    r.io.ports[0].from_kernel.push_back(VecBuf::new(&synack));
    let (out, _) = r.run(0, &[]);
    assert_eq!(out, vec![synack]);
    // Port 1 has no exception path: counted, not delivered.
    let mut syn1 = eth(
        P1_MAC,
        CLIENT_MAC,
        0x0800,
        &ipv4("10.1.0.2", "10.1.0.1", 6, 64, &tcp),
    );
    syn1[0..6].copy_from_slice(&P1_MAC);
    r.run(1, &[syn1]);
    assert_eq!(r.drops(DropReason::NoException), 1);
    assert_eq!(r.stats.count(Event::ToKernel), 2);
    assert_eq!(r.stats.count(Event::FromKernel), 1);
}

#[test]
fn unanswered_resolution_retries_then_drops_what_it_held() {
    let mut r = Rig::new();
    let req = eth(
        BCAST,
        P0_MAC,
        0x0806,
        &arp(1, P0_MAC, "10.0.0.1", [0; 6], "10.0.0.9"),
    );
    let (out, _) = r.run(
        0,
        &[ping("10.0.0.9", "10.0.0.1"), ping("10.0.0.9", "10.0.0.1")],
    );
    assert_eq!(out, vec![req.clone()]);
    let mut sent = 1;
    for t in (100..=4000).step_by(100) {
        r.io.now = t;
        sent += r.run(0, &[]).0.len();
    }
    assert_eq!(sent, 3, "first request plus two retries");
    assert_eq!(r.drops(DropReason::NeighUnresolved), 2);
}

#[test]
fn neighbour_queue_is_bounded() {
    let mut r = Rig::new();
    let pings: Vec<_> = (0..10).map(|_| ping("10.0.0.9", "10.0.0.1")).collect();
    r.run(0, &pings);
    assert_eq!(r.drops(DropReason::NeighQueueFull), 2);
    let reply = eth(
        P0_MAC,
        CLIENT_MAC,
        0x0806,
        &arp(2, CLIENT_MAC, "10.0.0.9", P0_MAC, "10.0.0.1"),
    );
    let (out, _) = r.run(0, &[reply]);
    assert_eq!(out.len(), 8);
}

#[test]
fn workers_share_what_they_learn() {
    // Worker 1 holds an echo reply waiting for 10.0.0.2; the ARP reply
    // arrives on worker 0, which hands a copy over.
    let mut w0 = Rig::with(config(), 0, 2);
    let mut w1 = Rig::with(config(), 1, 2);
    let (out, _) = w1.run(0, &[ping("10.0.0.2", "10.0.0.1")]);
    assert_eq!(out.len(), 1, "broadcast request");
    let reply = eth(
        P0_MAC,
        CLIENT_MAC,
        0x0806,
        &arp(2, CLIENT_MAC, "10.0.0.2", P0_MAC, "10.0.0.1"),
    );
    // Worker 0 never asked and has no entry, yet the reply is to our own
    // address: it hands a copy to its peer, which asked.
    w0.run(0, &[reply]);
    let copies: Vec<_> = w0.io.to_peers.drain(..).collect();
    assert_eq!(copies.len(), 1);
    assert_eq!((copies[0].0, copies[0].1.port), (1, 0));
    assert!(
        w0.w.host().neighbours().state(0, ip("10.0.0.2")).is_none(),
        "worker 0 creates nothing"
    );
    w1.io.from_peers.extend(copies.into_iter().map(|(_, b)| b));
    let (out, _) = w1.run(0, &[]);
    assert_eq!(out, vec![pong("10.0.0.1", "10.0.0.2", CLIENT_MAC)]);
    // A request aimed at us teaches worker 0, which shares that too.
    w0.run(0, &[who_has("10.0.0.1")]);
    assert_eq!(w0.io.to_peers.len(), 1);
    // The peer only learns; it never answers a copy.
    assert_eq!(w1.stats.count(Event::ArpReplySent), 0);
}

#[test]
fn full_transmit_queue_is_counted() {
    let mut r = Rig::new();
    r.io.tx_capacity = 1;
    let (out, _) = r.run(0, &[who_has("10.0.0.1"), who_has("10.0.0.100")]);
    assert_eq!(out.len(), 1);
    assert_eq!(r.drops(DropReason::TxQueueFull), 1);
}

/// A ping to an interface address takes the general input path (the
/// burst pass leaves ICMP to it): there too the NIC's verdict on the IPv4
/// header checksum stands in for the software check, and without one the
/// software check decides.
#[test]
fn echo_follows_the_nics_ip_checksum_verdict() {
    use fastpath::io::{Csum, RxOffload};
    let mut r = Rig::new();
    r.run(0, &[who_has("10.0.0.1")]); // the client's MAC, so echo is answered at once
    let right = ping("10.0.0.2", "10.0.0.1");
    let mut wrong = right.clone();
    wrong[25] ^= 0x40; // the IPv4 header checksum's low byte
    let cases = [
        ("wrong sum, NIC says good", &wrong, Csum::Good, true),
        ("right sum, NIC says bad", &right, Csum::Bad, false),
        ("wrong sum, no verdict", &wrong, Csum::Unknown, false),
        ("right sum, no verdict", &right, Csum::Unknown, true),
    ];
    for (what, frame, ip, answered) in cases {
        let mut b = VecBuf::new(frame);
        b.offload = RxOffload {
            ip,
            l4: Csum::Unknown,
        };
        r.io.ports[0].rx.push_back(b);
        let bad = r.drops(DropReason::BadChecksum);
        let (out, _) = r.run(0, &[]);
        let want = if answered {
            vec![pong("10.0.0.1", "10.0.0.2", CLIENT_MAC)]
        } else {
            vec![]
        };
        assert_eq!(out, want, "{what}");
        assert_eq!(
            r.drops(DropReason::BadChecksum) - bad,
            u64::from(!answered),
            "{what}"
        );
    }
}
