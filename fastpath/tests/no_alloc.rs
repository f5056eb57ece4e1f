//! The per-packet path never touches the heap: once warm, polling a steady
//! mix of traffic (ARP for a VIP, echo to a known neighbour, echo via an
//! unresolved next hop that gets queued, frames to the kernel, drops of
//! several kinds) makes zero allocations. A counting global allocator sees
//! every allocation the polling thread makes.

use fastpath::io::replay::ReplayIo;
use fastpath::wire::MacAddr;
use fastpath::{HostConfig, PortConfig, StaticNeighbour, Worker, WorkerStats};
use std::sync::Arc;

#[path = "../../tests/common/frames.rs"]
mod frames;
use frames::{arp, echo, eth, ip, ipv4, tcp_syn, BCAST};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{allocations, Counting};
#[path = "support/scalar.rs"]
mod scalar;

#[global_allocator]
static A: Counting = Counting;

const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const CLI: [u8; 6] = [2, 0xc0, 0, 0, 0, 2];

#[test]
fn steady_state_polling_does_not_allocate() {
    let cfg = HostConfig {
        ports: vec![PortConfig {
            mac: MacAddr(MAC),
            mtu: 1500,
            addrs: vec![(ip("10.0.0.1"), 24)],
            exception: true,
            rss_owner: false,
        }],
        vips: vec![ip("10.0.0.100")],
        routes: vec![],
        neighbours: vec![StaticNeighbour {
            port: 0,
            ip: ip("10.0.0.2"),
            mac: MacAddr(CLI),
        }],
        neigh_limit: 64,
        ..Default::default()
    };
    let ping = |src: &str, dst: &str| {
        eth(
            MAC,
            CLI,
            0x0800,
            &ipv4(src, dst, 1, 64, &echo(8, 1, 1, &[0; 56])),
        )
    };
    let frames = vec![
        eth(
            BCAST,
            CLI,
            0x0806,
            &arp(1, CLI, "10.0.0.2", [0; 6], "10.0.0.100"),
        ),
        ping("10.0.0.2", "10.0.0.1"),
        ping("10.0.0.2", "10.0.0.100"),
        ping("10.0.0.9", "10.0.0.1"), // never resolves: queued, retried, failed
        eth(
            MAC,
            CLI,
            0x0800,
            &tcp_syn("10.0.0.2", "10.0.0.1", 40000, 22),
        ),
        eth(
            MAC,
            CLI,
            0x0800,
            &tcp_syn("10.0.0.2", "10.0.0.100", 40000, 80),
        ),
        ping("10.0.0.2", "10.0.0.77"),
        eth([2, 9, 9, 9, 9, 9], CLI, 0x0800, &[0; 46]),
        vec![0; 10],
    ];
    let stats = Arc::new(WorkerStats::default());
    let mut io = ReplayIo::new(1, frames, 256);
    let mut w = scalar::as_env_says(Worker::new(&cfg, stats));
    // Warm up through a full neighbour cycle (create, retry, fail, recreate).
    for t in 0..500 {
        io.now = t * 10;
        w.poll(&mut io);
    }
    let before = allocations();
    for t in 500..5500 {
        io.now = t * 10;
        w.poll(&mut io);
    }
    let allocs = allocations() - before;
    assert!(
        io.rx > 100_000 && io.tx > 50_000 && io.to_kernel > 10_000,
        "{} {} {}",
        io.rx,
        io.tx,
        io.to_kernel
    );
    assert_eq!(allocs, 0, "heap allocations on the packet path");
}

/// A TCP segment with the sequence numbers and options chosen.
fn segment(
    src: (&str, u16),
    dst: (&str, u16),
    seq: u32,
    ack: u32,
    flags: u8,
    opts: &[u8],
    data: &[u8],
) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&src.1.to_be_bytes());
    t[2..4].copy_from_slice(&dst.1.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = (((20 + opts.len()) / 4) << 4) as u8;
    t[13] = flags;
    t[14..16].copy_from_slice(&512u16.to_be_bytes());
    t.extend_from_slice(opts);
    t.extend_from_slice(data);
    let c = frames::l4_csum(src.0, dst.0, 6, &t);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    ipv4(src.0, dst.0, 6, 64, &t)
}

/// The SYN proxy's every step, over and over: cookie SYN-ACKs, rejected
/// ACKs, a validating ACK (then held, then an ACK storm), the server's
/// SYN-ACK (then translated), data both ways: no allocation once warm.
#[test]
fn the_syn_proxy_does_not_allocate() {
    use fastpath::service::{Dest, Method, Service, ServiceTable, TCP};
    use fastpath::synproxy::cookie;
    let secret = cookie::Secret([5, 6]);
    let svc = Service {
        id: 0,
        proto: TCP,
        vip: ip("10.0.0.100"),
        port: 80,
        fwmark: None,
        scheduler: fastpath::sched::Kind::Rr,
        flags: Default::default(),
        persistent: None,
        netmask: std::net::Ipv4Addr::BROADCAST,
        ops: false,
        synproxy: true,
        dests: vec![Dest {
            id: 0,
            addr: ip("10.0.0.12"),
            port: 80,
            method: Method::Nat,
            weight: 1,
            last_weight: 1,
            u_threshold: 0,
            l_threshold: 0,
        }],
    };
    const RS: [u8; 6] = [2, 0x5e, 0, 0, 0, 12];
    let cfg = HostConfig {
        ports: vec![PortConfig {
            mac: MacAddr(MAC),
            mtu: 1500,
            addrs: vec![(ip("10.0.0.1"), 24)],
            exception: true,
            rss_owner: false,
        }],
        vips: vec![ip("10.0.0.100")],
        neighbours: vec![
            StaticNeighbour {
                port: 0,
                ip: ip("10.0.0.2"),
                mac: MacAddr(CLI),
            },
            StaticNeighbour {
                port: 0,
                ip: ip("10.0.0.12"),
                mac: MacAddr(RS),
            },
        ],
        neigh_limit: 64,
        services: ServiceTable::new(vec![svc], vec![]).unwrap(),
        settings: fastpath::ipvs::Settings {
            synproxy_secret: secret,
            ..Default::default()
        },
        max_connections: 64,
        ..Default::default()
    };
    let (c, v, s) = (("10.0.0.2", 40000), ("10.0.0.100", 80), ("10.0.0.12", 80));
    let flow = cookie::Flow {
        saddr: ip("10.0.0.2").to_bits(),
        daddr: ip("10.0.0.100").to_bits(),
        sport: 40000,
        dport: 80,
    };
    let syn_opts = [
        2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
    ];
    let o = cookie::Opts::from_syn(Some(1460), Some(7), true, true);
    let isn = 1000;
    let k = cookie::encode(&secret, &flow, isn, 0, &o);
    let ts = |v: u32, e: u32| [&[1, 1, 8, 10][..], &v.to_be_bytes(), &e.to_be_bytes()].concat();
    let from_c = |p: Vec<u8>| eth(MAC, CLI, 0x0800, &p);
    let from_s = |p: Vec<u8>| eth(MAC, RS, 0x0800, &p);
    let frames = vec![
        // Other clients: a SYN, and an ACK with a wrong cookie.
        from_c(segment(
            ("10.0.0.2", 40001),
            v,
            isn,
            0,
            0x02,
            &syn_opts,
            &[],
        )),
        from_c(segment(("10.0.0.2", 40002), v, 77, 99, 0x10, &[], &[])),
        // The client that completes: the ACK returning its cookie `k`, its
        // request, the server's SYN-ACK and data, its ACK; replayed, they
        // are held or translated.
        from_c(segment(c, v, isn + 1, k + 1, 0x10, &ts(2, 0), &[])),
        from_c(segment(c, v, isn + 1, k + 1, 0x18, &ts(3, 0), b"GET /")),
        from_s(segment(s, c, 5000, isn + 1, 0x12, &syn_opts, &[])),
        from_s(segment(s, c, 5001, isn + 6, 0x18, &ts(9, 3), b"200 OK")),
        from_c(segment(c, v, isn + 6, k + 7, 0x10, &ts(4, 9), &[])),
    ];
    let stats = Arc::new(WorkerStats::default());
    let mut io = ReplayIo::new(1, frames, 256);
    let mut w = scalar::as_env_says(Worker::new(&cfg, stats.clone()));
    for t in 0..500 {
        io.now = t * 10;
        w.poll(&mut io);
    }
    let before = allocations();
    for t in 500..5500 {
        io.now = t * 10;
        w.poll(&mut io);
    }
    let allocs = allocations() - before;
    use fastpath::stats::{DropReason, Event};
    assert!(
        stats.count(Event::SynproxyCookiesSent) > 10_000
            && stats.drops(DropReason::SynproxyRejected) > 10_000
            && stats.count(Event::SynproxyValidated) == 1
            && io.tx > 50_000,
        "{stats:?} {}",
        io.tx
    );
    assert_eq!(allocs, 0, "heap allocations on the SYN proxy's path");
}
