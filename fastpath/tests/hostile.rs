//! Hostile input, frame by frame as an attacker would craft it: every
//! class is either answered or forwarded as Linux/IPVS would, with exact
//! bytes out, or dropped under its own reason, with exact counters.
//! Expected frames come from the independent builder (tests/common).

use fastpath::io::mem::{MemIo, VecBuf};
use fastpath::ipvs::Shared;
use fastpath::sched::Kind;
use fastpath::service::{Dest, Method, Service, ServiceTable, TCP, UDP};
use fastpath::stats::{DropReason, Event};
use fastpath::wire::MacAddr;
use fastpath::{HostConfig, PortConfig, StaticNeighbour, Worker, WorkerStats};
use std::net::Ipv4Addr;
use std::sync::Arc;

#[path = "../../tests/common/frames.rs"]
mod frames;
use frames::{arp, csum, echo, eth, eth_raw, icmp, ip, ipv4, ipv4_with, l4_csum, tcp, udp, BCAST};
#[path = "support/scalar.rs"]
mod scalar;

const P0: [u8; 6] = [2, 0, 0, 0, 0, 1];
const P1: [u8; 6] = [2, 0, 0, 0, 1, 1];
const CLI: [u8; 6] = [2, 0xc0, 0, 0, 0, 2];
/// Another host on the client network, the one claiming our addresses.
const ROGUE: [u8; 6] = [2, 0xba, 0xd0, 0, 0, 9];
const RS_DR: [u8; 6] = [2, 0x5e, 0, 0, 0, 11];
const RS_NAT: [u8; 6] = [2, 0x5e, 0, 0, 0, 12];
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

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

fn service(id: u32, proto: u8, port: u16, d: Dest) -> Service {
    Service {
        id,
        proto,
        vip: ip("10.0.0.100"),
        port,
        fwmark: None,
        scheduler: Kind::Rr,
        flags: Default::default(),
        persistent: None,
        netmask: Ipv4Addr::BROADCAST,
        ops: false,
        synproxy: false,
        dests: vec![d],
    }
}

/// Port 0: 10.0.0.1/24, clients. Port 1: 10.1.0.1/24, real servers.
/// VIP 10.0.0.100: TCP :80 DR to .11, TCP :8080 NAT to .12:80, UDP :53
/// NAT to .12:53.
fn config() -> HostConfig {
    let port = |mac, a: &str| PortConfig {
        mac: MacAddr(mac),
        mtu: 1500,
        addrs: vec![(ip(a), 24)],
        exception: true,
        rss_owner: false,
    };
    let neigh = |port, a: &str, mac| StaticNeighbour {
        port,
        ip: ip(a),
        mac: MacAddr(mac),
    };
    HostConfig {
        ports: vec![port(P0, "10.0.0.1"), port(P1, "10.1.0.1")],
        vips: vec![ip("10.0.0.100")],
        neighbours: vec![
            neigh(1, "10.1.0.11", RS_DR),
            neigh(1, "10.1.0.12", RS_NAT),
            neigh(0, "10.0.0.2", CLI),
        ],
        neigh_limit: 64,
        services: ServiceTable::new(
            vec![
                service(0, TCP, 80, dest(0, 11, 80, Method::Dr)),
                service(1, TCP, 8080, dest(1, 12, 80, Method::Nat)),
                service(2, UDP, 53, dest(2, 12, 53, Method::Nat)),
            ],
            vec![],
        )
        .unwrap(),
        max_connections: 1024,
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
        let stats = Arc::new(WorkerStats::default());
        let shared = Arc::new(Shared::new(1, 64));
        let mut io = MemIo::new(2);
        let mut w = scalar::as_env_says(Worker::with_shared(&config(), stats.clone(), shared, 0));
        w.poll(&mut io);
        io.take_tx(0);
        io.take_tx(1);
        Rig { io, w, stats }
    }
    fn run(&mut self, port: usize, frames: &[Vec<u8>]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        for f in frames {
            self.io.push_rx(port, f);
        }
        self.w.poll(&mut self.io);
        (self.io.take_tx(0), self.io.take_tx(1))
    }
    /// Every drop counter that is not zero.
    fn all_drops(&self) -> Vec<(&'static str, u64)> {
        DropReason::ALL
            .iter()
            .map(|&r| (r.name(), self.stats.drops(r)))
            .filter(|&(_, n)| n > 0)
            .collect()
    }
    fn conns(&self) -> usize {
        self.w.host().ipvs().connections().len()
    }
}

fn to_vip(src: &str, sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let seg = tcp(src, "10.0.0.100", sport, dport, flags, &[]);
    eth(P0, CLI, 0x0800, &ipv4(src, "10.0.0.100", 6, 64, &seg))
}

fn ping(src: &str, dst: &str) -> Vec<u8> {
    eth(
        P0,
        CLI,
        0x0800,
        &ipv4(src, dst, 1, 64, &echo(8, 7, 1, b"0123456789abcdef")),
    )
}

/// An IPv4 header with `opts` (a multiple of 4 bytes) and a correct
/// checksum, then `payload`.
fn ipv4_opts(src: &str, dst: &str, proto: u8, ttl: u8, opts: &[u8], payload: &[u8]) -> Vec<u8> {
    assert_eq!(opts.len() % 4, 0);
    let hl = 20 + opts.len();
    let total = (hl + payload.len()) as u16;
    let mut h = [
        &[0x40 | (hl / 4) as u8, 0][..],
        &total.to_be_bytes(),
        &[0x12, 0x34, 0x40, 0, ttl, proto, 0, 0],
        &ip(src).octets(),
        &ip(dst).octets(),
        opts,
    ]
    .concat();
    let c = csum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    [h, payload.to_vec()].concat()
}

const MARTIANS: [&str; 11] = [
    "0.0.0.0",
    "0.1.2.3",
    "127.0.0.1",
    "224.0.0.5",
    "239.1.1.1",
    "240.0.0.1",
    "255.255.255.255",
    "10.0.0.255", // the client network's broadcast
    "10.0.0.100", // the VIP itself
    "10.0.0.1",   // the director, this port
    "10.1.0.1",   // the director, the other port
];

#[test]
fn martian_sources_reach_no_real_server() {
    let mut r = Rig::new();
    for (i, m) in MARTIANS.iter().enumerate() {
        for dport in [80, 8080] {
            let (out0, out1) = r.run(0, &[to_vip(m, 40000 + i as u16, dport, SYN)]);
            assert!(out0.is_empty() && out1.is_empty(), "{m} :{dport}");
        }
    }
    assert_eq!(r.all_drops(), [("martian_source", 22)]);
    assert_eq!(r.conns(), 0);
    // The control: a host's SYN is forwarded by DR.
    let (_, out1) = r.run(0, &[to_vip("10.0.0.2", 40000, 80, SYN)]);
    assert_eq!(out1.len(), 1);
    assert_eq!(r.conns(), 1);
}

#[test]
fn martian_sources_get_no_echo_reply() {
    let mut r = Rig::new();
    for m in MARTIANS {
        for dst in ["10.0.0.1", "10.0.0.100"] {
            let (out0, out1) = r.run(0, &[ping(m, dst)]);
            assert!(out0.is_empty() && out1.is_empty(), "{m} -> {dst}");
        }
    }
    assert_eq!(r.all_drops(), [("martian_source", 22)]);
    assert!(r.io.take_to_kernel(0).is_empty());
    assert_eq!(r.stats.count(Event::EchoReplySent), 0);
    let (out0, _) = r.run(0, &[ping("10.0.0.2", "10.0.0.100")]);
    assert_eq!(
        out0,
        vec![eth_raw(
            CLI,
            P0,
            0x0800,
            &ipv4(
                "10.0.0.100",
                "10.0.0.2",
                1,
                64,
                &echo(0, 7, 1, b"0123456789abcdef")
            )
        )]
    );
}

#[test]
fn arp_from_martian_senders_is_not_answered() {
    let mut r = Rig::new();
    let ask = |spa: &str, tpa: &str| eth(BCAST, CLI, 0x0806, &arp(1, CLI, spa, [0; 6], tpa));
    for spa in [
        "127.0.0.1",
        "224.0.0.1",
        "255.255.255.255",
        "10.0.0.255",
        "240.1.2.3",
    ] {
        let (out, _) = r.run(0, &[ask(spa, "10.0.0.1"), ask(spa, "10.0.0.100")]);
        assert!(out.is_empty(), "{spa}");
        assert!(r.w.host().neighbours().state(0, ip(spa)).is_none(), "{spa}");
    }
    assert_eq!(r.all_drops(), [("martian_source", 10)]);
    // A duplicate address probe (sender 0.0.0.0) is answered, to the
    // prober's MAC and 0.0.0.0, as Linux answers it (RFC 5227 2.1.1).
    let (out, _) = r.run(0, &[ask("0.0.0.0", "10.0.0.100")]);
    assert_eq!(
        out,
        vec![eth(
            CLI,
            P0,
            0x0806,
            &arp(2, P0, "10.0.0.100", CLI, "0.0.0.0")
        )]
    );
}

#[test]
fn arp_claiming_our_addresses_is_a_counted_conflict() {
    let mut r = Rig::new();
    let from =
        |op, spa: &str, tha, tpa: &str| eth(BCAST, ROGUE, 0x0806, &arp(op, ROGUE, spa, tha, tpa));
    let frames = [
        // Gratuitous, request form (RFC 5227's announcement).
        from(1, "10.0.0.100", [0; 6], "10.0.0.100"),
        from(1, "10.0.0.1", [0; 6], "10.0.0.1"),
        // Gratuitous, reply form.
        from(2, "10.0.0.100", ROGUE, "10.0.0.100"),
        from(2, "10.0.0.1", BCAST, "10.0.0.1"),
        // Not gratuitous, but using our address as its own: asking for
        // the client, asking for our other address, the other port's.
        from(1, "10.0.0.100", [0; 6], "10.0.0.2"),
        from(1, "10.0.0.100", [0; 6], "10.0.0.1"),
        from(1, "10.1.0.1", [0; 6], "10.0.0.1"),
    ];
    let (out0, out1) = r.run(0, &frames);
    assert!(out0.is_empty() && out1.is_empty());
    assert!(
        r.io.take_to_kernel(0).is_empty(),
        "the kernel is not told either"
    );
    assert_eq!(r.all_drops(), [("arp_conflict", 7)]);
    for a in ["10.0.0.100", "10.0.0.1", "10.1.0.1"] {
        assert!(
            r.w.host().neighbours().state(0, ip(a)).is_none(),
            "{a} learnt"
        );
    }
    // Our own announcement come back is no conflict; a neighbour
    // announcing its own address neither.
    let own = eth(
        BCAST,
        P0,
        0x0806,
        &arp(1, P0, "10.0.0.1", [0; 6], "10.0.0.1"),
    );
    let theirs = eth(
        BCAST,
        CLI,
        0x0806,
        &arp(1, CLI, "10.0.0.2", [0; 6], "10.0.0.2"),
    );
    let (out0, _) = r.run(0, &[own, theirs]);
    assert!(out0.is_empty());
    assert_eq!(r.all_drops(), [("arp_not_for_us", 2), ("arp_conflict", 7)]);
    // And the director still answers its neighbours.
    let ask = eth(
        BCAST,
        CLI,
        0x0806,
        &arp(1, CLI, "10.0.0.2", [0; 6], "10.0.0.100"),
    );
    let (out0, _) = r.run(0, &[ask]);
    assert_eq!(out0.len(), 1);
}

#[test]
fn arp_replies_are_padded_with_zeros() {
    let mut r = Rig::new();
    let mut ask = eth(
        BCAST,
        CLI,
        0x0806,
        &arp(1, CLI, "10.0.0.2", [0; 6], "10.0.0.100"),
    );
    assert_eq!(ask.len(), 60);
    ask[42..].fill(0xaa);
    let (out, _) = r.run(0, &[ask]);
    let want = eth(CLI, P0, 0x0806, &arp(2, P0, "10.0.0.100", CLI, "10.0.0.2"));
    assert_eq!(&want[42..], [0u8; 18]);
    assert_eq!(out, vec![want]);
}

#[test]
fn bad_ip_options_are_dropped_and_good_ones_pass() {
    let mut r = Rig::new();
    let data = echo(8, 7, 1, b"0123456789abcdef");
    let bad: [&[u8]; 6] = [
        &[0x88, 0, 0, 0],              // length 0
        &[0x88, 1, 0, 0],              // length 1
        &[1, 0x88, 8, 0],              // running past the header
        &[7, 3, 3, 0],                 // record route, pointer below 4
        &[0x83, 7, 4, 10, 0, 0, 2, 0], // loose source route
        &[0x44, 4, 4, 0],              // timestamp, pointer below 5
    ];
    for o in bad {
        let ping = eth(
            P0,
            CLI,
            0x0800,
            &ipv4_opts("10.0.0.2", "10.0.0.1", 1, 64, o, &data),
        );
        let seg = tcp("10.0.0.2", "10.0.0.100", 40001, 80, SYN, &[]);
        let syn = eth(
            P0,
            CLI,
            0x0800,
            &ipv4_opts("10.0.0.2", "10.0.0.100", 6, 64, o, &seg),
        );
        let (out0, out1) = r.run(0, &[ping, syn]);
        assert!(out0.is_empty() && out1.is_empty(), "{o:02x?}");
    }
    assert_eq!(r.all_drops(), [("bad_ip_options", 12)]);
    assert!(r.io.take_to_kernel(0).is_empty());
    // NOP/EOL padding and a record route with room: answered in place
    // (the options kept) and forwarded by DR untouched but for the TTL.
    let mut rr = vec![7, 11, 4];
    rr.extend([0; 9]);
    for o in [&[1u8, 1, 1, 0][..], &rr] {
        let ping = eth(
            P0,
            CLI,
            0x0800,
            &ipv4_opts("10.0.0.2", "10.0.0.1", 1, 64, o, &data),
        );
        let (out0, _) = r.run(0, &[ping]);
        let reply = echo(0, 7, 1, b"0123456789abcdef");
        assert_eq!(
            out0,
            vec![eth_raw(
                CLI,
                P0,
                0x0800,
                &ipv4_opts("10.0.0.1", "10.0.0.2", 1, 64, o, &reply)
            )],
            "{o:02x?}"
        );
        let seg = tcp("10.0.0.2", "10.0.0.100", 40002, 80, SYN, &[]);
        let syn = |ttl| ipv4_opts("10.0.0.2", "10.0.0.100", 6, ttl, o, &seg);
        let (_, out1) = r.run(0, &[eth(P0, CLI, 0x0800, &syn(64))]);
        assert_eq!(out1, vec![eth_raw(RS_DR, P1, 0x0800, &syn(63))], "{o:02x?}");
    }
    assert_eq!(r.all_drops(), [("bad_ip_options", 12)]);
}

/// A NAT real server's reply whose TTL runs out here: the error goes back
/// to the real server from the director's address on that side, quoting
/// the reply as it came (Linux's `ip_forward` answers it before IPVS's
/// FORWARD hook translates it).
#[test]
fn a_nat_replys_time_exceeded_comes_from_the_directors_address() {
    let mut r = Rig::new();
    let (_, out1) = r.run(0, &[to_vip("10.0.0.2", 40000, 8080, SYN)]);
    assert_eq!(out1.len(), 1);
    let seg = tcp("10.1.0.12", "10.0.0.2", 80, 40000, SYN | ACK, &[]);
    let reply = ipv4("10.1.0.12", "10.0.0.2", 6, 1, &seg);
    let (out0, out1) = r.run(1, &[eth(P1, RS_NAT, 0x0800, &reply)]);
    assert!(out0.is_empty());
    assert_eq!(out1.len(), 1);
    let ident = u16::from_be_bytes([out1[0][18], out1[0][19]]);
    let want = eth_raw(
        RS_NAT,
        P1,
        0x0800,
        &ipv4_with(
            0xc0,
            ident,
            0,
            64,
            1,
            "10.1.0.1",
            "10.1.0.12",
            &icmp(11, 0, 0, &reply),
        ),
    );
    assert_eq!(out1, vec![want]);
    assert_eq!(r.all_drops(), [("ttl_exceeded", 1)]);
}

/// DR: the real server answers the client from the VIP. When that answer
/// reaches the director (the server's gateway is the director, or the
/// routing is asymmetric) it is named for what it is.
#[test]
fn a_dr_reply_through_the_director_is_counted_as_such() {
    let mut r = Rig::new();
    let (_, out1) = r.run(0, &[to_vip("10.0.0.2", 40000, 80, SYN)]);
    assert_eq!(out1.len(), 1);
    let back = |cport| {
        let seg = tcp("10.0.0.100", "10.0.0.2", 80, cport, SYN | ACK, &[]);
        eth(
            P1,
            RS_DR,
            0x0800,
            &ipv4("10.0.0.100", "10.0.0.2", 6, 64, &seg),
        )
    };
    // Its connection's reply, and one from the VIP no connection has.
    let (out0, out1) = r.run(1, &[back(40000), back(40999)]);
    assert!(out0.is_empty() && out1.is_empty());
    assert_eq!(
        r.all_drops(),
        [("martian_source", 1), ("reply_via_back_port", 1)]
    );
}

/// The length checks of Linux's `ip_rcv_core` and of IPVS, the same on
/// every forwarding method: IP total length below the header or beyond the
/// frame → dropped; a frame longer than its datagram → trimmed and
/// forwarded; transport headers short of their fixed part → dropped; the
/// TCP data offset and the UDP length field → not looked at, forwarded.
#[test]
fn length_checks_follow_linux_and_ipvs() {
    let mut r = Rig::new();
    let syn = ipv4(
        "10.0.0.2",
        "10.0.0.100",
        6,
        64,
        &tcp("10.0.0.2", "10.0.0.100", 40000, 80, SYN, &[]),
    );
    let mut short_total = syn.clone();
    short_total[3] = 19;
    let mut long_total = syn.clone();
    long_total[3] = 61;
    let fix = |mut d: Vec<u8>| {
        d[10..12].fill(0);
        let c = csum(&d[..20]);
        d[10..12].copy_from_slice(&c.to_be_bytes());
        d
    };
    let cut_tcp = ipv4(
        "10.0.0.2",
        "10.0.0.100",
        6,
        64,
        &tcp("10.0.0.2", "10.0.0.100", 40000, 80, SYN, &[])[..19],
    );
    let cut_udp = ipv4(
        "10.0.0.2",
        "10.0.0.100",
        17,
        64,
        &udp("10.0.0.2", "10.0.0.100", 5353, 53, b"q", true)[..7],
    );
    let (out0, out1) = r.run(
        0,
        &[fix(short_total), fix(long_total), cut_tcp, cut_udp].map(|d| eth(P0, CLI, 0x0800, &d)),
    );
    assert!(out0.is_empty() && out1.is_empty());
    assert_eq!(r.all_drops(), [("malformed", 4)]);

    // Trailing bytes after the datagram: forwarded without them.
    let mut padded = eth(P0, CLI, 0x0800, &syn);
    padded.extend([0xee; 10]);
    let (_, out1) = r.run(0, &[padded]);
    let fwd = ipv4(
        "10.0.0.2",
        "10.0.0.100",
        6,
        63,
        &tcp("10.0.0.2", "10.0.0.100", 40000, 80, SYN, &[]),
    );
    assert_eq!(out1, vec![eth_raw(RS_DR, P1, 0x0800, &fwd)]);

    // TCP data offsets 4 and 15 (below the header, past the segment),
    // checksums right: DR passes them on as they are, NAT translates
    // them (the checksum updated, as IPVS's incremental update leaves it).
    for (doff, sport) in [(0x40u8, 40010u16), (0xf0, 40011)] {
        let seg = |dst: &str, dport| {
            let mut t = tcp("10.0.0.2", dst, sport, dport, SYN, b"data");
            t[12] = doff;
            t[16..18].fill(0);
            let c = l4_csum("10.0.0.2", dst, 6, &t);
            t[16..18].copy_from_slice(&c.to_be_bytes());
            t
        };
        let vip = seg("10.0.0.100", 80);
        let (_, out1) = r.run(
            0,
            &[eth(
                P0,
                CLI,
                0x0800,
                &ipv4("10.0.0.2", "10.0.0.100", 6, 64, &vip),
            )],
        );
        assert_eq!(
            out1,
            vec![eth_raw(
                RS_DR,
                P1,
                0x0800,
                &ipv4("10.0.0.2", "10.0.0.100", 6, 63, &vip)
            )]
        );
        let vip = seg("10.0.0.100", 8080);
        let (_, out1) = r.run(
            0,
            &[eth(
                P0,
                CLI,
                0x0800,
                &ipv4("10.0.0.2", "10.0.0.100", 6, 64, &vip),
            )],
        );
        let rs = seg("10.1.0.12", 80);
        assert_eq!(
            out1,
            vec![eth_raw(
                RS_NAT,
                P1,
                0x0800,
                &ipv4("10.0.0.2", "10.1.0.12", 6, 63, &rs)
            )]
        );
    }

    // UDP length fields past the datagram, below 8, and short of it: NAT
    // translates each as it is. With a checksum it is updated; without
    // one, one is filled in over the whole IP payload, as IPVS does.
    for (ulen, sport, with_sum) in [
        (40u16, 5000u16, true),
        (3, 5001, true),
        (9, 5002, true),
        (9, 5003, false),
    ] {
        let dgram = |dst: &str, sum: bool| {
            let mut u = udp("10.0.0.2", dst, sport, 53, b"query", false);
            u[4..6].copy_from_slice(&ulen.to_be_bytes());
            if sum {
                let c = l4_csum("10.0.0.2", dst, 17, &u);
                u[6..8].copy_from_slice(&c.to_be_bytes());
            }
            u
        };
        let vip = dgram("10.0.0.100", with_sum);
        let (_, out1) = r.run(
            0,
            &[eth(
                P0,
                CLI,
                0x0800,
                &ipv4("10.0.0.2", "10.0.0.100", 17, 64, &vip),
            )],
        );
        let rs = dgram("10.1.0.12", true);
        assert_eq!(
            out1,
            vec![eth_raw(
                RS_NAT,
                P1,
                0x0800,
                &ipv4("10.0.0.2", "10.1.0.12", 17, 63, &rs)
            )],
            "ulen {ulen}"
        );
    }
    assert_eq!(r.all_drops(), [("malformed", 4)]);
}

/// An ICMP error about a connection is relayed to its real server only
/// from a source a router or the client can have.
#[test]
fn icmp_errors_from_martians_are_not_relayed() {
    let mut r = Rig::new();
    let (_, out1) = r.run(0, &[to_vip("10.0.0.2", 40000, 80, SYN)]);
    assert_eq!(out1.len(), 1);
    // What the client could not take: the real server's answer, from
    // the VIP.
    let sent = ipv4(
        "10.0.0.100",
        "10.0.0.2",
        6,
        64,
        &tcp("10.0.0.100", "10.0.0.2", 80, 40000, SYN | ACK, &[]),
    );
    let error = |src: &str| {
        eth(
            P0,
            CLI,
            0x0800,
            &ipv4(src, "10.0.0.100", 1, 64, &icmp(3, 3, 0, &sent[..28])),
        )
    };
    let (_, out1) = r.run(
        0,
        &[error("127.0.0.1"), error("10.0.0.255"), error("10.0.0.100")],
    );
    assert!(out1.is_empty());
    assert_eq!(r.all_drops(), [("martian_source", 3)]);
    let (_, out1) = r.run(0, &[error("10.0.0.2")]);
    assert_eq!(
        out1,
        vec![eth_raw(
            RS_DR,
            P1,
            0x0800,
            &ipv4("10.0.0.2", "10.0.0.100", 1, 63, &icmp(3, 3, 0, &sent[..28]))
        )]
    );
    assert_eq!(r.stats.count(Event::IcmpRelayed), 1);
}
