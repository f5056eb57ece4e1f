//! The SYN proxy on byte buffers, packet by packet: the cookie SYN-ACK
//! and no entry, the validating ACK's entry and the server's SYN, the
//! server's SYN-ACK absorbed and the held packets released translated,
//! data both ways with sequence numbers, timestamps, windows and SACK
//! blocks moved, and every refusal counted. Expected frames come from
//! the independent builder (`tests/common/frames.rs`), which computes
//! every checksum in full.

use fastpath::io::mem::MemIo;
use fastpath::ipvs::{Settings, Shared};
use fastpath::sched::Kind;
use fastpath::service::{Dest, Method, Service, ServiceTable, TCP};
use fastpath::stats::{DropReason, Event};
use fastpath::synproxy::cookie::{self, Flow, Opts, Secret};
use fastpath::wire::MacAddr;
use fastpath::{HostConfig, PortConfig, StaticNeighbour, Worker, WorkerStats};
use std::net::Ipv4Addr;
use std::sync::Arc;

#[path = "../../tests/common/frames.rs"]
mod frames;
use frames::{eth, eth_raw, ip, ipv4, ipv4_with, l4_csum};
#[path = "support/scalar.rs"]
mod scalar;

const P0: [u8; 6] = [2, 0, 0, 0, 0, 1];
const P1: [u8; 6] = [2, 0, 0, 0, 1, 1];
const CLI: [u8; 6] = [2, 0xc0, 0, 0, 0, 2];
const RS: [u8; 6] = [2, 0x5e, 0, 0, 0, 12];
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const SECRET: Secret = Secret([0x1111, 0x2222]);
const NOW: u64 = 1_000_000;
const CLIENT: &str = "10.0.0.2";
const VIP: &str = "10.0.0.100";
const SERVER: &str = "10.1.0.12";

fn service(synproxy: bool, method: Method) -> Service {
    Service {
        id: 0,
        proto: TCP,
        vip: ip(VIP),
        port: 8080,
        fwmark: None,
        scheduler: Kind::Rr,
        flags: Default::default(),
        persistent: None,
        netmask: Ipv4Addr::BROADCAST,
        ops: false,
        synproxy,
        dests: vec![Dest {
            id: 0,
            addr: ip(SERVER),
            port: 80,
            method,
            weight: 1,
            last_weight: 1,
            u_threshold: 0,
            l_threshold: 0,
        }],
    }
}

fn config(svc: Service) -> HostConfig {
    let port = |mac, a: &str| PortConfig {
        mac: MacAddr(mac),
        mtu: 1500,
        addrs: vec![(ip(a), 24)],
        exception: true,
        rss_owner: false,
    };
    HostConfig {
        ports: vec![port(P0, "10.0.0.1"), port(P1, "10.1.0.1")],
        vips: vec![ip(VIP)],
        neighbours: vec![
            StaticNeighbour {
                port: 1,
                ip: ip(SERVER),
                mac: MacAddr(RS),
            },
            StaticNeighbour {
                port: 0,
                ip: ip(CLIENT),
                mac: MacAddr(CLI),
            },
        ],
        neigh_limit: 64,
        services: ServiceTable::new(vec![svc], vec![]).unwrap(),
        settings: Settings {
            synproxy_secret: SECRET,
            ..Default::default()
        },
        max_connections: 1024,
        ..Default::default()
    }
}

struct Rig {
    io: MemIo,
    w: Worker<fastpath::io::mem::VecBuf>,
    stats: Arc<WorkerStats>,
    shared: Arc<Shared>,
}

impl Rig {
    fn new(svc: Service) -> Rig {
        let stats = Arc::new(WorkerStats::default());
        let shared = Arc::new(Shared::new(1, 64));
        let mut io = MemIo::new(2);
        let mut w = scalar::as_env_says(Worker::with_shared(
            &config(svc),
            stats.clone(),
            shared.clone(),
            0,
        ));
        io.now = NOW;
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
    fn run(&mut self, port: usize, frames: &[Vec<u8>]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        for f in frames {
            self.io.push_rx(port, f);
        }
        self.w.poll(&mut self.io);
        (self.io.take_tx(0), self.io.take_tx(1))
    }
    fn conns(&self) -> usize {
        self.w.host().ipvs().connections().len()
    }
}

/// A TCP segment with every field chosen and a full checksum.
#[allow(clippy::too_many_arguments)]
fn seg(
    src: (&str, u16),
    dst: (&str, u16),
    seq: u32,
    ack: u32,
    flags: u8,
    win: u16,
    opts: &[u8],
    data: &[u8],
) -> Vec<u8> {
    assert_eq!(opts.len() % 4, 0);
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&src.1.to_be_bytes());
    t[2..4].copy_from_slice(&dst.1.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = (((20 + opts.len()) / 4) << 4) as u8;
    t[13] = flags;
    t[14..16].copy_from_slice(&win.to_be_bytes());
    t.extend_from_slice(opts);
    t.extend_from_slice(data);
    let c = l4_csum(src.0, dst.0, 6, &t);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    t
}

/// NOP NOP TS(val, ecr).
fn ts(val: u32, ecr: u32) -> Vec<u8> {
    [&[1, 1, 8, 10][..], &val.to_be_bytes(), &ecr.to_be_bytes()].concat()
}

/// Linux's SYN options: MSS, SACK-permitted, TS, NOP, window scale.
fn syn_opts(mss: u16, tsval: u32, tsecr: u32, ws: u8) -> Vec<u8> {
    [
        &[2, 4][..],
        &mss.to_be_bytes(),
        &[4, 2, 8, 10],
        &tsval.to_be_bytes(),
        &tsecr.to_be_bytes(),
        &[1, 3, 3, ws],
    ]
    .concat()
}

fn client_frame(s: &[u8]) -> Vec<u8> {
    eth(P0, CLI, 0x0800, &ipv4(CLIENT, VIP, 6, 64, s))
}

fn server_frame(s: &[u8]) -> Vec<u8> {
    eth(P1, RS, 0x0800, &ipv4(SERVER, CLIENT, 6, 64, s))
}

const C: (&str, u16) = (CLIENT, 40000);
const V: (&str, u16) = (VIP, 8080);
const S: (&str, u16) = (SERVER, 80);
const ISN: u32 = 0x1122_3344;
const S_ISN: u32 = 0x5000_0000;

fn the_cookie(sport: u16, isn: u32, o: &Opts) -> u32 {
    let flow = Flow {
        saddr: ip(CLIENT).to_bits(),
        daddr: ip(VIP).to_bits(),
        sport,
        dport: 8080,
    };
    cookie::encode(&SECRET, &flow, isn, NOW, o)
}

fn full_opts() -> Opts {
    Opts {
        mss: 1460,
        wscale: Some(7),
        sack: true,
        ts: true,
    }
}

#[test]
fn a_syn_gets_a_cookie_and_no_entry() {
    let mut r = Rig::new(service(true, Method::Nat));
    let syn = seg(C, V, ISN, 0, SYN, 64240, &syn_opts(1460, 0x1000, 0, 7), &[]);
    let (out0, out1) = r.run(0, &[client_frame(&syn)]);
    assert!(out1.is_empty(), "nothing reaches the server");
    let cookie = the_cookie(40000, ISN, &full_opts());
    // From the VIP: MSS, SACK-permitted, our TSval (the clock) echoing
    // the client's, and the director's window scale, 7.
    let sa = seg(
        V,
        C,
        cookie,
        ISN + 1,
        SYN | ACK,
        65535,
        &syn_opts(1460, NOW as u32, 0x1000, 7),
        &[],
    );
    assert_eq!(
        out0,
        vec![eth_raw(
            CLI,
            P0,
            0x0800,
            &ipv4_with(0, 0, 0x4000, 64, 6, VIP, CLIENT, &sa)
        )]
    );
    assert_eq!(r.conns(), 0, "no state for an unvalidated SYN");
    assert_eq!(r.stats.count(Event::SynproxyCookiesSent), 1);
    // A client without options: MSS 536, no SACK, no timestamps, no
    // scale, and a SYN with data (its data is not kept).
    let syn = seg(C, V, 7, 0, SYN, 512, &[], b"early");
    let (out0, _) = r.run(0, &[client_frame(&syn)]);
    let o = Opts {
        mss: 536,
        wscale: None,
        sack: false,
        ts: false,
    };
    let sa = seg(
        V,
        C,
        the_cookie(40000, 7, &o),
        8,
        SYN | ACK,
        65535,
        &[2, 4, 2, 24],
        &[],
    );
    assert_eq!(
        out0,
        vec![eth_raw(
            CLI,
            P0,
            0x0800,
            &ipv4_with(0, 0, 0x4000, 64, 6, VIP, CLIENT, &sa)
        )]
    );
    assert_eq!(r.conns(), 0);
}

/// The handshake up to the server's SYN, with a request sent right
/// after the ACK (held). Returns the rig and the cookie.
fn handshake(r: &mut Rig) -> u32 {
    let syn = seg(C, V, ISN, 0, SYN, 64240, &syn_opts(1460, 0x1000, 0, 7), &[]);
    r.run(0, &[client_frame(&syn)]);
    let cookie = the_cookie(40000, ISN, &full_opts());
    let ack = seg(
        C,
        V,
        ISN + 1,
        cookie + 1,
        ACK,
        502,
        &ts(0x1001, NOW as u32),
        &[],
    );
    let (out0, out1) = r.run(0, &[client_frame(&ack)]);
    assert!(out0.is_empty());
    assert_eq!(out1.len(), 1);
    // The server's SYN: the client's ISN, its options (MSS as the cookie
    // kept it, its latest TSval, its scale), its window unscaled; from
    // the client to the server, built by the director (TTL 64, its own
    // IP ident).
    let ident = u16::from_be_bytes([out1[0][18], out1[0][19]]);
    let syn = seg(
        C,
        S,
        ISN,
        0,
        SYN,
        502 << 7,
        &syn_opts(1460, 0x1001, 0, 7),
        &[],
    );
    assert_eq!(
        out1[0],
        eth_raw(
            RS,
            P1,
            0x0800,
            &ipv4_with(0, ident, 0x4000, 64, 6, CLIENT, SERVER, &syn)
        )
    );
    assert_eq!(r.conns(), 1);
    assert_eq!(r.stats.count(Event::SynproxyValidated), 1);
    let load = fastpath::service::counters::load(&[r.shared.cores[0].as_ref()], 0);
    assert_eq!(load, (1, 0), "SYN_RECV, as after a SYN");
    // The request, sent before the server answered: held.
    let get = seg(
        C,
        V,
        ISN + 1,
        cookie + 1,
        PSH | ACK,
        502,
        &ts(0x1002, NOW as u32),
        b"GET /",
    );
    let (out0, out1) = r.run(0, &[client_frame(&get)]);
    assert!(out0.is_empty() && out1.is_empty());
    cookie
}

#[test]
fn the_handshake_completes_and_data_flows_translated() {
    let mut r = Rig::new(service(true, Method::Nat));
    let cookie = handshake(&mut r);
    // The server's SYN-ACK, scale 9, its own timestamps: absorbed, and
    // the held ACK and request go to it translated.
    let sa = seg(
        S,
        C,
        S_ISN,
        ISN + 1,
        SYN | ACK,
        65160,
        &syn_opts(1460, 0x9000, 0x1001, 9),
        &[],
    );
    let (out0, out1) = r.run(1, &[server_frame(&sa)]);
    assert!(out0.is_empty(), "the SYN-ACK is not forwarded");
    let ack = seg(C, S, ISN + 1, S_ISN + 1, ACK, 502, &ts(0x1001, 0x9000), &[]);
    let get = seg(
        C,
        S,
        ISN + 1,
        S_ISN + 1,
        PSH | ACK,
        502,
        &ts(0x1002, 0x9000),
        b"GET /",
    );
    let to_server = |s: &[u8]| eth_raw(RS, P1, 0x0800, &ipv4(CLIENT, SERVER, 6, 63, s));
    assert_eq!(out1, vec![to_server(&ack), to_server(&get)]);
    let load = fastpath::service::counters::load(&[r.shared.cores[0].as_ref()], 0);
    assert_eq!(load, (1, 0), "ESTABLISHED");
    // The server's data: its sequence number and TSval moved onto the
    // cookie's and the director's, the window rescaled from 2^9 to 2^7.
    let data = seg(
        S,
        C,
        S_ISN + 1,
        ISN + 6,
        PSH | ACK,
        100,
        &ts(0x9001, 0x1002),
        b"HTTP/1.1 200",
    );
    let (out0, _) = r.run(1, &[server_frame(&data)]);
    let want = seg(
        V,
        C,
        cookie + 1,
        ISN + 6,
        PSH | ACK,
        400,
        &ts(NOW as u32 + 1, 0x1002),
        b"HTTP/1.1 200",
    );
    assert_eq!(
        out0,
        vec![eth_raw(CLI, P0, 0x0800, &ipv4(VIP, CLIENT, 6, 63, &want))]
    );
    // The client's ACK with a SACK block: the ack, the block's edges and
    // TSecr go back to the server's numbers.
    let mut o = ts(0x1003, NOW as u32 + 1);
    o.extend_from_slice(&[1, 1, 5, 10]);
    o.extend_from_slice(&(cookie + 20).to_be_bytes());
    o.extend_from_slice(&(cookie + 30).to_be_bytes());
    let sack = seg(C, V, ISN + 6, cookie + 13, ACK, 500, &o, &[]);
    let (_, out1) = r.run(0, &[client_frame(&sack)]);
    let mut o = ts(0x1003, 0x9001);
    o.extend_from_slice(&[1, 1, 5, 10]);
    o.extend_from_slice(&(S_ISN + 20).to_be_bytes());
    o.extend_from_slice(&(S_ISN + 30).to_be_bytes());
    let want = seg(C, S, ISN + 6, S_ISN + 13, ACK, 500, &o, &[]);
    assert_eq!(out1, vec![to_server(&want)]);
    // The established fast path leaves proxied connections alone: a
    // burst of several segments gives the same translation each.
    let a1 = seg(C, V, ISN + 6, cookie + 13, ACK, 501, &ts(0x1004, 0), &[]);
    let a2 = seg(
        C,
        V,
        ISN + 6,
        cookie + 13,
        FIN | ACK,
        501,
        &ts(0x1005, 0),
        &[],
    );
    let (_, out1) = r.run(0, &[client_frame(&a1), client_frame(&a2)]);
    let w1 = seg(
        C,
        S,
        ISN + 6,
        S_ISN + 13,
        ACK,
        501,
        &ts(0x1004, 0u32.wrapping_sub(NOW as u32 - 0x9000)),
        &[],
    );
    let w2 = seg(
        C,
        S,
        ISN + 6,
        S_ISN + 13,
        FIN | ACK,
        501,
        &ts(0x1005, 0u32.wrapping_sub(NOW as u32 - 0x9000)),
        &[],
    );
    assert_eq!(out1, vec![to_server(&w1), to_server(&w2)]);
    assert_eq!(r.stats.drops(DropReason::SynproxyRejected), 0);
}

#[test]
fn wrong_acks_are_dropped_and_counted() {
    let mut r = Rig::new(service(true, Method::Nat));
    let syn = seg(C, V, ISN, 0, SYN, 64240, &syn_opts(1460, 0x1000, 0, 7), &[]);
    r.run(0, &[client_frame(&syn)]);
    let cookie = the_cookie(40000, ISN, &full_opts());
    // Off by one in the ack, another ISN, another client port, a cookie
    // that has expired: each refused, no entry, nothing sent.
    let bad = [
        seg(C, V, ISN + 1, cookie + 2, ACK, 502, &[], &[]),
        seg(C, V, ISN + 2, cookie + 1, ACK, 502, &[], &[]),
        seg((CLIENT, 40001), V, ISN + 1, cookie + 1, ACK, 502, &[], &[]),
    ];
    for b in &bad {
        let (out0, out1) = r.run(0, &[client_frame(b)]);
        assert!(out0.is_empty() && out1.is_empty());
    }
    r.io.now = NOW + 3 * cookie::PERIOD_MS;
    let late = seg(C, V, ISN + 1, cookie + 1, ACK, 502, &[], &[]);
    let (out0, out1) = r.run(0, &[client_frame(&late)]);
    assert!(out0.is_empty() && out1.is_empty());
    assert_eq!(r.stats.drops(DropReason::SynproxyRejected), 4);
    assert_eq!(r.stats.count(Event::SynproxyValidated), 0);
    assert_eq!(r.conns(), 0);
    // An RST or a bare segment without a connection is no handshake.
    let rst = seg(C, V, ISN + 1, 0, RST, 0, &[], &[]);
    r.run(0, &[client_frame(&rst)]);
    assert_eq!(r.stats.drops(DropReason::NoConnection), 1);
}

#[test]
fn packets_beyond_the_hold_are_an_ack_storm() {
    let mut r = Rig::new(service(true, Method::Nat));
    let cookie = handshake(&mut r);
    // Held: the ACK and the request; two more fit, the rest are a storm.
    let dup = seg(C, V, ISN + 1, cookie + 1, ACK, 502, &ts(0x1003, 0), &[]);
    let frames: Vec<_> = (0..5).map(|_| client_frame(&dup)).collect();
    let (out0, out1) = r.run(0, &frames);
    assert!(out0.is_empty() && out1.is_empty());
    assert_eq!(r.stats.drops(DropReason::SynproxyAckStorm), 3);
    // A second later a packet that does not fit is dropped too, but the
    // server's SYN goes again.
    r.io.now = NOW + 1000;
    let (out0, out1) = r.run(0, &[client_frame(&dup)]);
    assert!(out0.is_empty());
    assert_eq!(out1.len(), 1);
    assert_eq!(
        (out1[0][47], &out1[0][38..42]),
        (SYN, &ISN.to_be_bytes()[..])
    );
    assert_eq!(r.stats.drops(DropReason::SynproxyAckStorm), 4);
}

#[test]
fn a_syn_resend_and_a_refusing_server() {
    let mut r = Rig::new(service(true, Method::Nat));
    let syn = seg(C, V, ISN, 0, SYN, 64240, &syn_opts(1460, 0x1000, 0, 7), &[]);
    r.run(0, &[client_frame(&syn)]);
    let cookie = the_cookie(40000, ISN, &full_opts());
    let ack = seg(
        C,
        V,
        ISN + 1,
        cookie + 1,
        ACK,
        502,
        &ts(0x1001, NOW as u32),
        &[],
    );
    let (_, out1) = r.run(0, &[client_frame(&ack)]);
    assert_eq!(out1.len(), 1);
    // The client retransmits its request a second later: held, and the
    // server's SYN goes again.
    r.io.now = NOW + 1000;
    let get = seg(
        C,
        V,
        ISN + 1,
        cookie + 1,
        PSH | ACK,
        502,
        &ts(0x1400, NOW as u32),
        b"x",
    );
    let (_, out1) = r.run(0, &[client_frame(&get)]);
    assert_eq!(out1.len(), 1);
    assert_eq!(out1[0][47], SYN, "a SYN");
    assert_eq!(&out1[0][38..42], &ISN.to_be_bytes());
    // The server refuses (RST|ACK, seq 0): the client hears an RST at
    // the sequence number it expects, from the VIP; nothing held is sent.
    let rst = seg(S, C, 0, ISN + 1, RST | ACK, 0, &[], &[]);
    let (out0, out1) = r.run(1, &[server_frame(&rst)]);
    assert!(out1.is_empty());
    let want = seg(V, C, cookie + 1, ISN + 1, RST | ACK, 0, &[], &[]);
    assert_eq!(
        out0,
        vec![eth_raw(CLI, P0, 0x0800, &ipv4(VIP, CLIENT, 6, 63, &want))]
    );
}

#[test]
fn without_synproxy_and_for_dr_nothing_changes() {
    // The same SYN to a plain NAT service goes to the server as it came.
    let mut r = Rig::new(service(false, Method::Nat));
    let syn = seg(C, V, ISN, 0, SYN, 64240, &syn_opts(1460, 0x1000, 0, 7), &[]);
    let (out0, out1) = r.run(0, &[client_frame(&syn)]);
    assert!(out0.is_empty());
    let want = seg(C, S, ISN, 0, SYN, 64240, &syn_opts(1460, 0x1000, 0, 7), &[]);
    assert_eq!(
        out1,
        vec![eth_raw(RS, P1, 0x0800, &ipv4(CLIENT, SERVER, 6, 63, &want))]
    );
    assert_eq!(r.stats.count(Event::SynproxyCookiesSent), 0);
    // A DR server behind a proxied service (the config refuses it): the
    // cookie is answered, but the ACK makes no connection.
    let mut r = Rig::new(service(true, Method::Dr));
    r.run(0, &[client_frame(&syn)]);
    let cookie = the_cookie(40000, ISN, &full_opts());
    let ack = seg(C, V, ISN + 1, cookie + 1, ACK, 502, &ts(0x1001, 0), &[]);
    let (out0, out1) = r.run(0, &[client_frame(&ack)]);
    assert!(out0.is_empty() && out1.is_empty());
    assert_eq!(r.stats.drops(DropReason::NoDestination), 1);
    assert_eq!(r.conns(), 0);
}
