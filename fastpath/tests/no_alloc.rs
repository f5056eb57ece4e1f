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
