//! Cost per packet of the director's own paths (ARP reply, echo reply,
//! exception hand-off, drops), with the data plane running on
//! `ReplayIo`: frames come from memory and buffers recycle through a
//! preallocated pool, so the numbers are the data plane's work alone.
//!
//! `hostpath MIX PACKETS` prints Mpps; `hostpath MIX PACKETS bare` runs a
//! bare rx→tx forwarder over the same frames and I/O instead, the baseline
//! that the ripvs numbers are a ratio to. Under callgrind, two runs with
//! different PACKETS give instructions per packet (see perf/README.md).

use fastpath::io::replay::ReplayIo;
use fastpath::wire::MacAddr;
use fastpath::{HostConfig, Io, PortConfig, StaticNeighbour, Worker, WorkerStats, BURST};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const CLI: [u8; 6] = [2, 0xc0, 0, 0, 0, 2];

fn csum(d: &[u8]) -> u16 {
    let mut s: u32 = d
        .chunks(2)
        .map(|c| (c[0] as u32) << 8 | *c.get(1).unwrap_or(&0) as u32)
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn frame(ty: u16, payload: &[u8]) -> Vec<u8> {
    let dst = if ty == 0x0806 { [0xff; 6] } else { MAC };
    let mut f = [&dst[..], &CLI, &ty.to_be_bytes(), payload].concat();
    f.resize(f.len().max(60), 0);
    f
}

fn ipv4(dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    let len = (20 + payload.len()) as u16;
    let mut h = [
        &[0x45, 0][..],
        &len.to_be_bytes(),
        &[0, 1, 0x40, 0, 64, proto, 0, 0],
        &[10, 0, 0, 2],
        &dst,
    ]
    .concat();
    let c = csum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    [h, payload.to_vec()].concat()
}

fn echo_request() -> Vec<u8> {
    // 64-byte frame: 14 + 20 + 8 + 18 bytes of data.
    let mut m = [&[8, 0, 0, 0, 0, 1, 0, 1][..], &[0x61; 18]].concat();
    let c = csum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

fn mix(name: &str) -> Option<Vec<Vec<u8>>> {
    let arp = [
        &[0, 1, 8, 0, 6, 4, 0, 1][..],
        &CLI,
        &[10, 0, 0, 2],
        &[0; 6],
        &[10, 0, 0, 100],
    ]
    .concat();
    let syn22 = {
        let mut t = [0u8; 20];
        t[2..4].copy_from_slice(&22u16.to_be_bytes());
        t[12] = 0x50;
        t[13] = 2;
        t
    };
    Some(match name {
        "arp" => vec![frame(0x0806, &arp)],
        "echo" => vec![frame(0x0800, &ipv4([10, 0, 0, 1], 1, &echo_request()))],
        "kernel" => vec![frame(0x0800, &ipv4([10, 0, 0, 1], 6, &syn22))],
        "drop" => vec![frame(0x0800, &ipv4([10, 0, 0, 77], 6, &syn22))],
        _ => return None,
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(frames), Some(packets)) = (
        args.get(1).and_then(|m| mix(m)),
        args.get(2).and_then(|n| n.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: hostpath arp|echo|kernel|drop PACKETS [bare]");
        std::process::exit(2);
    };
    let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
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
    let mut io = ReplayIo::new(1, frames, 64);
    let mut w = Worker::new(&cfg, Arc::new(WorkerStats::default()));
    let bare = args.get(3).is_some_and(|a| a == "bare");
    let start = Instant::now();
    if bare {
        // The l2fwd baseline: every frame straight back out, untouched.
        let mut burst = arrayvec::ArrayVec::<_, BURST>::new();
        while io.rx < packets {
            io.rx_burst(0, &mut burst);
            for p in burst.drain(..) {
                io.tx(0, p);
            }
            io.flush();
        }
    } else {
        while io.rx < packets {
            w.poll(&mut io);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{}{}: {} packets in {:.3} s = {:.2} Mpps (tx {}, to kernel {})",
        args[1],
        if bare { " (bare forwarder)" } else { "" },
        io.rx,
        secs,
        io.rx as f64 / secs / 1e6,
        io.tx,
        io.to_kernel
    );
}
