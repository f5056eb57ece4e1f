//! Writes the pcap files of the whole-daemon benchmark (perf/daemon.sh):
//! 64-byte frames (60 bytes in the file, the FCS a NIC strips left out)
//! for the topology of perf/daemon.sh's config, which is the in-memory
//! engine benchmark's (perf/src/engine.rs): clients in 10.200/16 behind
//! the router 10.0.0.2 on port `client` (10.0.0.1/24), real servers on
//! port `server` (10.1.0.1/24), one VIP 10.0.0.100.
//!
//! `frames KIND FLOWS FILE`, KIND one of
//!
//! | KIND | each frame |
//! |---|---|
//! | `dr` | UDP from a client to VIP:80 (direct routing) |
//! | `tun` | UDP to VIP:443 (IP-in-IP) |
//! | `nat` | UDP to VIP:8080 (DNAT to 10.1.0.12:80) |
//! | `nat-out` | the NAT real server's UDP reply, 10.1.0.12:80 to the client, entering on the server port |
//! | `drop` | UDP to VIP:9999, where no service listens: dropped as no_service |
//! | `syn` | a TCP SYN to VIP:80 (direct routing) |
//!
//! Flow `k` (0 ≤ k < FLOWS) comes from its own client endpoint: the low
//! 16 bits of `k` pick the address in 10.200/16, the rest the port
//! (1024 + k >> 16), so consecutive flows differ in address. Each file
//! holds one frame per flow, the flows in one fixed pseudo-random order
//! (the same for every KIND, so `nat` and `nat-out` list the flows
//! alike). Checksums are correct (IPv4, UDP, TCP). Writing is streamed:
//! 4,194,304 frames take well under a second.

use fastpath::wire::checksum;
use std::io::{BufWriter, Write};
use std::net::Ipv4Addr;

/// ripvsd's port MACs, as perf/daemon.sh configures them.
const CLIENT_PORT: [u8; 6] = [2, 0, 0, 0, 0, 1];
const SERVER_PORT: [u8; 6] = [2, 0, 0, 0, 1, 1];
/// The clients' router on the client port.
const ROUTER: [u8; 6] = [2, 0xc0, 0, 0, 0, 2];
/// The NAT real server 10.1.0.12 on the server port.
const NAT_RS_MAC: [u8; 6] = [2, 0x5e, 0, 0, 0, 12];
const NAT_RS: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 12);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const FRAME: usize = 60;
const UDP: u8 = 17;
const TCP: u8 = 6;

/// One 60-byte frame: Ethernet, IPv4, then a UDP header with 18 bytes of
/// payload or a 20-byte TCP SYN and 6 bytes of padding.
#[allow(clippy::too_many_arguments)]
fn frame(
    f: &mut [u8; FRAME],
    dmac: [u8; 6],
    smac: [u8; 6],
    proto: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
) {
    *f = [0; FRAME];
    f[0..6].copy_from_slice(&dmac);
    f[6..12].copy_from_slice(&smac);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let l4_len: u16 = if proto == UDP { 8 + 18 } else { 20 };
    let ip = &mut f[14..34];
    ip[..2].copy_from_slice(&[0x45, 0]);
    ip[2..4].copy_from_slice(&(20 + l4_len).to_be_bytes());
    ip[4..10].copy_from_slice(&[0x12, 0x34, 0x40, 0, 64, proto]);
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let c = checksum::checksum(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let l4 = &mut f[34..34 + l4_len as usize];
    l4[0..2].copy_from_slice(&sport.to_be_bytes());
    l4[2..4].copy_from_slice(&dport.to_be_bytes());
    let at = if proto == UDP {
        l4[4..6].copy_from_slice(&l4_len.to_be_bytes());
        for (i, b) in l4[8..].iter_mut().enumerate() {
            *b = i as u8;
        }
        6
    } else {
        l4[4..8].copy_from_slice(&1u32.to_be_bytes());
        l4[12] = 0x50;
        l4[13] = 0x02; // SYN
        l4[14..16].copy_from_slice(&0xffffu16.to_be_bytes());
        16
    };
    let pseudo = checksum::pseudo_header_v4(src, dst, proto, l4_len);
    let mut c = !checksum::fold(checksum::sum(l4, pseudo));
    if proto == UDP && c == 0 {
        c = 0xffff;
    }
    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// Flow `k`'s client endpoint (as perf/src/engine.rs's).
fn client(k: u32) -> (Ipv4Addr, u16) {
    (
        Ipv4Addr::from_bits(0x0ac8_0000 | (k & 0xffff)),
        1024 + (k >> 16) as u16,
    )
}

/// A fixed-seed xorshift64* (as perf/src/engine.rs's).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Flows `0..n` in a fixed random order (Fisher–Yates).
fn shuffled(n: u32) -> Vec<u32> {
    let mut v: Vec<u32> = (0..n).collect();
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    for i in (1..v.len()).rev() {
        let j = (r.next() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

fn usage() -> ! {
    eprintln!("usage: frames dr|tun|nat|nat-out|drop|syn FLOWS FILE.pcap");
    std::process::exit(2);
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, flows, path] = &args[..] else {
        usage()
    };
    let Ok(flows) = flows.parse::<u32>() else {
        usage()
    };
    // (protocol, VIP port), or None for the NAT real server's replies.
    let to_vip = match kind.as_str() {
        "dr" => Some((UDP, 80)),
        "tun" => Some((UDP, 443)),
        "nat" => Some((UDP, 8080)),
        "drop" => Some((UDP, 9999)),
        "syn" => Some((TCP, 80)),
        "nat-out" => None,
        _ => usage(),
    };
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    // Classic pcap, microsecond timestamps, Ethernet.
    out.write_all(&0xa1b2c3d4u32.to_le_bytes())?;
    out.write_all(&2u16.to_le_bytes())?;
    out.write_all(&4u16.to_le_bytes())?;
    out.write_all(&[0; 8])?;
    out.write_all(&65535u32.to_le_bytes())?;
    out.write_all(&1u32.to_le_bytes())?;
    let mut f = [0u8; FRAME];
    for (i, k) in shuffled(flows).into_iter().enumerate() {
        let (a, p) = client(k);
        match to_vip {
            Some((proto, port)) => frame(&mut f, CLIENT_PORT, ROUTER, proto, a, VIP, p, port),
            None => frame(&mut f, SERVER_PORT, NAT_RS_MAC, UDP, NAT_RS, a, 80, p),
        }
        let rec = [
            (i as u32 / 1_000_000).to_le_bytes(),
            (i as u32 % 1_000_000).to_le_bytes(),
            (FRAME as u32).to_le_bytes(),
            (FRAME as u32).to_le_bytes(),
        ];
        out.write_all(rec.as_flattened())?;
        out.write_all(&f)?;
    }
    out.flush()
}
