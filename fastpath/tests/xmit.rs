//! Golden packet tests for the forwarding transformations (`fastpath::xmit`):
//! input frames and expected output frames both come from the independent
//! builder in tests/common/frames.rs and are compared byte for byte; every
//! output is then decoded by scapy, which recomputes each checksum (inner
//! IPIP header and the IP headers quoted in ICMP errors included) and must
//! rebuild the very same bytes.

use fastpath::io::mem::VecBuf;
use fastpath::io::Buf;
use fastpath::xmit::icmp::{self, Built, Classified, Embedded, ErrorKind, ErrorParams};
use fastpath::xmit::tun::{EcnEncap, TunParams};
use fastpath::xmit::{dr, nat, tun, Endpoint, Verdict};
use std::io::Write;
use std::process::{Command, Stdio};

#[path = "../../tests/common/frames.rs"]
mod frames;
use frames::{eth, eth_raw, icmp as icmp_msg, ip, ipv4_with, sctp, tcp, udp};

const DIR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const PEER_MAC: [u8; 6] = [0x02, 0xee, 0, 0, 0, 0xfe];
const CLIENT: &str = "192.0.2.10";
const VIP: &str = "10.0.0.100";
const RS: &str = "10.1.0.5";
/// The director's address towards the real servers (tunnel source).
const DIR: &str = "10.1.0.1";
/// Routers that report errors.
const ROUTER: &str = "198.51.100.1";
const ROUTER2: &str = "10.1.0.254";
const CPORT: u16 = 40000;
const VPORT: u16 = 80;
const RPORT: u16 = 8080;
const DF: u16 = 0x4000;
const PSH_ACK: u8 = 0x18;

fn vip() -> Endpoint {
    Endpoint::new(ip(VIP), VPORT)
}
fn rs() -> Endpoint {
    Endpoint::new(ip(RS), RPORT)
}

/// A received frame (padded to the Ethernet minimum like any real one).
fn frame(ip_packet: &[u8]) -> Vec<u8> {
    eth(DIR_MAC, PEER_MAC, 0x0800, ip_packet)
}
/// The same frame as the data plane leaves it: Ethernet header untouched
/// (the caller rewrites it), no padding.
fn out(ip_packet: &[u8]) -> Vec<u8> {
    eth_raw(DIR_MAC, PEER_MAC, 0x0800, ip_packet)
}
/// An error frame from a builder: Ethernet addresses left zero.
fn built(ip_packet: &[u8]) -> Vec<u8> {
    eth_raw([0; 6], [0; 6], 0x0800, ip_packet)
}

fn run(input: &[u8], f: impl FnOnce(&mut VecBuf) -> Verdict) -> (Verdict, Vec<u8>) {
    let mut b = VecBuf::new(input);
    let v = f(&mut b);
    (v, b.bytes.clone())
}

fn build(offending: &[u8], kind: ErrorKind, p: &ErrorParams) -> (Built, Vec<u8>) {
    let mut b = VecBuf::new(&[]);
    let r = icmp::build_error(&mut b, offending, kind, p);
    (r, b.bytes.clone())
}

fn params(src: &str, ident: u16) -> ErrorParams {
    ErrorParams {
        src: ip(src),
        ident,
        ttl: 64,
    }
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + 7) as u8).collect()
}

// ---- the independent decoder ----

const SCAPY: &str = r#"
import sys
from scapy.layers.l2 import Ether
from scapy.layers.inet import IP, UDP
import scapy.layers.ipsec  # ESP
import scapy.layers.sctp
from scapy.packet import NoPayload

def strip(p):
    # Every checksum scapy can recompute from what is there: all IP
    # headers (IPerror too), and transport/ICMP checksums outside an ICMP
    # error's quote (inside it the payload is cut off). A UDP checksum of 0
    # means none and stays.
    q = p.copy()
    l = q
    quoted = False
    while l is not None and not isinstance(l, NoPayload):
        if isinstance(l, IP):
            del l.chksum
            if type(l).__name__ == "IPerror":
                quoted = True
        elif not quoted and "chksum" in l.fields:
            if not (isinstance(l, UDP) and l.chksum == 0):
                del l.chksum
        l = l.payload
    return q

for line in sys.stdin:
    raw = bytes.fromhex(line.strip())
    p = Ether(raw)
    again = bytes(Ether(bytes(strip(p))))
    print("ok" if again == raw else "bad", p.summary(), "|",
          "" if again == raw else again.hex())
"#;

fn python() -> String {
    if let Ok(p) = std::env::var("RIPVS_PYTHON") {
        return p;
    }
    // tools/setup installs python3-scapy for the system interpreter; a
    // python3 earlier on PATH (pyenv) may lack it.
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3".into()
    } else {
        "python3".into()
    }
}

/// scapy's verdict per frame: "ok ..." when rebuilding with every checksum
/// recomputed gives the same bytes.
fn scapy(frames: &[&[u8]]) -> Vec<String> {
    let mut child = Command::new(python())
        .args(["-c", SCAPY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 with scapy (tools/setup installs python3-scapy)");
    let mut input = String::new();
    for f in frames {
        for b in f.iter() {
            input.push_str(&format!("{b:02x}"));
        }
        input.push('\n');
    }
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "scapy failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let lines: Vec<String> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), frames.len(), "{lines:?}");
    lines
}

fn scapy_ok(frames: &[&[u8]]) {
    for (i, l) in scapy(frames).iter().enumerate() {
        assert!(l.starts_with("ok "), "frame {i}: {l}");
    }
}

#[test]
fn scapy_check_catches_bad_checksums() {
    let good = out(&ipv4_with(
        0,
        1,
        DF,
        64,
        6,
        CLIENT,
        VIP,
        &tcp(CLIENT, VIP, CPORT, VPORT, PSH_ACK, b"x"),
    ));
    let mut bad_ip = good.clone();
    bad_ip[14 + 10] ^= 1;
    let mut bad_tcp = good.clone();
    bad_tcp[14 + 20 + 16] ^= 1;
    let quote = ipv4_with(0, 1, DF, 64, 6, VIP, CLIENT, &payload(8));
    let mut bad_quote = quote.clone();
    bad_quote[10] ^= 1;
    let err = |q: &[u8]| {
        out(&ipv4_with(
            0,
            2,
            0,
            64,
            1,
            ROUTER,
            VIP,
            &icmp_msg(3, 1, 0, q),
        ))
    };
    let mut bad_icmp = err(&quote);
    bad_icmp[14 + 20 + 2] ^= 1;
    let sctp_ok = out(&ipv4_with(
        0,
        1,
        0,
        64,
        132,
        CLIENT,
        VIP,
        &sctp(1, 2, 3, b""),
    ));
    let mut bad_sctp = sctp_ok.clone();
    bad_sctp[14 + 20 + 8] ^= 1;
    let udp_ok = out(&ipv4_with(
        0,
        1,
        0,
        64,
        17,
        CLIENT,
        VIP,
        &udp(CLIENT, VIP, 1, 2, b"u", true),
    ));
    let mut bad_udp = udp_ok.clone();
    bad_udp[14 + 20 + 6] ^= 1;
    let ipip = out(&ipv4_with(0, 1, 0, 64, 4, DIR, RS, &good[14..]));
    let mut bad_inner = ipip.clone();
    bad_inner[14 + 20 + 10] ^= 1;
    let cases: [(&[u8], bool); 13] = [
        (&good, true),
        (&bad_ip, false),
        (&bad_tcp, false),
        (&err(&quote), true),
        (&err(&bad_quote), false),
        (&bad_icmp, false),
        (&sctp_ok, true),
        (&bad_sctp, false),
        (&udp_ok, true),
        (&bad_udp, false),
        (&ipip, true),
        (&bad_inner, false),
        (&good[..good.len() - 1], false), // IP length disagrees
    ];
    let frames: Vec<&[u8]> = cases.iter().map(|c| c.0).collect();
    for (i, (r, (_, ok))) in scapy(&frames).iter().zip(cases).enumerate() {
        assert_eq!(r.starts_with("ok "), ok, "case {i}: {r}");
    }
}

// ---- DR ----

#[test]
fn dr_changes_only_the_ttl() {
    let seg = tcp(
        CLIENT,
        VIP,
        CPORT,
        VPORT,
        PSH_ACK,
        b"GET / HTTP/1.0\r\n\r\n",
    );
    let input = frame(&ipv4_with(0x28, 0x1234, DF, 64, 6, CLIENT, VIP, &seg));
    let (v, got) = run(&input, |b| dr::transmit(b, 1500));
    assert_eq!(v, Verdict::Forward);
    let want = out(&ipv4_with(0x28, 0x1234, DF, 63, 6, CLIENT, VIP, &seg));
    assert_eq!(got, want);

    // A small UDP datagram without checksum arrives padded; it leaves at
    // its IP length, the checksum still absent.
    let dgram = udp(CLIENT, VIP, CPORT, 7777, b"hi", false);
    let input2 = frame(&ipv4_with(0, 7, 0, 2, 17, CLIENT, VIP, &dgram));
    assert_eq!(input2.len(), 60);
    let (v, got2) = run(&input2, |b| dr::transmit(b, 1500));
    assert_eq!(v, Verdict::Forward);
    let want2 = out(&ipv4_with(0, 7, 0, 1, 17, CLIENT, VIP, &dgram));
    assert_eq!(got2, want2);
    assert_eq!(got2.len(), 14 + 30);
    scapy_ok(&[&got, &got2]);
}

#[test]
fn ttl_one_means_time_exceeded_and_the_frame_is_untouched() {
    let seg = tcp(CLIENT, VIP, CPORT, VPORT, PSH_ACK, b"late");
    let offending = ipv4_with(0x12, 0x1234, DF, 1, 6, CLIENT, VIP, &seg);
    let input = frame(&offending);
    for (name, v, got) in [
        ("dr", run(&input, |b| dr::transmit(b, 1500))),
        (
            "tun",
            run(&input, |b| {
                tun::encapsulate(b, &TunParams::new(ip(DIR), ip(RS), 1500, 1))
            }),
        ),
        ("nat", run(&input, |b| nat::dnat(b, vip(), rs(), 1500))),
    ]
    .map(|(n, (v, g))| (n, v, g))
    {
        assert_eq!(v, Verdict::TimeExceeded, "{name}");
        assert_eq!(got, input, "{name}");
    }
    // The error: from the VIP, TOS bits kept under precedence 0xc0, DF
    // clear, TTL 64, quoting the whole (short) packet.
    let (r, got) = build(&input, ErrorKind::TimeExceeded, &params(VIP, 0x0909));
    assert_eq!(r, Built::Ready);
    let want = built(&ipv4_with(
        0xc0 | 0x12,
        0x0909,
        0,
        64,
        1,
        VIP,
        CLIENT,
        &icmp_msg(11, 0, 0, &offending),
    ));
    assert_eq!(got, want);
    scapy_ok(&[&got]);
}

#[test]
fn too_big_with_df_means_frag_needed_with_the_mtu() {
    let seg = tcp(CLIENT, VIP, CPORT, VPORT, PSH_ACK, &payload(1460));
    let offending = ipv4_with(0, 0x1234, DF, 64, 6, CLIENT, VIP, &seg);
    assert_eq!(offending.len(), 1500);
    let input = frame(&offending);
    let (v, got) = run(&input, |b| dr::transmit(b, 1400));
    assert_eq!(v, Verdict::FragNeeded { mtu: 1400 });
    assert_eq!(got, input);
    let (v, got) = run(&input, |b| nat::dnat(b, vip(), rs(), 1499));
    assert_eq!(v, Verdict::FragNeeded { mtu: 1499 });
    assert_eq!(got, input);
    // Exactly the MTU fits.
    assert_eq!(run(&input, |b| dr::transmit(b, 1500)).0, Verdict::Forward);

    let (r, got) = build(&input, ErrorKind::FragNeeded { mtu: 1400 }, &params(VIP, 3));
    assert_eq!(r, Built::Ready);
    // 576 bytes in all: the quote is the first 548 bytes of the packet.
    let want = built(&ipv4_with(
        0xc0,
        3,
        0,
        64,
        1,
        VIP,
        CLIENT,
        &icmp_msg(3, 4, 1400, &offending[..548]),
    ));
    assert_eq!(got, want);
    assert_eq!(got.len(), 14 + 576);
    assert_eq!(got[14 + 20 + 6..14 + 20 + 8], 1400u16.to_be_bytes());
    scapy_ok(&[&got]);
}

#[test]
fn too_big_without_df_or_as_icmp_error_needs_fragmentation() {
    let seg = tcp(CLIENT, VIP, CPORT, VPORT, PSH_ACK, &payload(1460));
    let input = frame(&ipv4_with(0, 0x1234, 0, 64, 6, CLIENT, VIP, &seg));
    let (v, got) = run(&input, |b| dr::transmit(b, 1400));
    assert_eq!(v, Verdict::NeedsFragmentation);
    assert_eq!(got, input);
    let (v, _) = run(&input, |b| nat::dnat(b, vip(), rs(), 1400));
    assert_eq!(v, Verdict::NeedsFragmentation);
    // An ICMP error being relayed never gets a frag-needed, DF or not.
    let quote = ipv4_with(0, 1, DF, 63, 6, VIP, CLIENT, &payload(1400));
    let err = frame(&ipv4_with(
        0,
        9,
        DF,
        64,
        1,
        ROUTER,
        VIP,
        &icmp_msg(3, 1, 0, &quote),
    ));
    let (v, got) = run(&err, |b| dr::transmit(b, 1400));
    assert_eq!(v, Verdict::NeedsFragmentation);
    assert_eq!(got, err);
    // ... but an echo request with DF does.
    let ping = frame(&ipv4_with(
        0,
        9,
        DF,
        64,
        1,
        CLIENT,
        VIP,
        &icmp_msg(8, 0, 0x0001_0001, &payload(1400)),
    ));
    assert_eq!(
        run(&ping, |b| dr::transmit(b, 1400)).0,
        Verdict::FragNeeded { mtu: 1400 }
    );
}

// ---- TUN ----

fn tun_params(mtu: u16) -> TunParams {
    TunParams::new(ip(DIR), ip(RS), mtu, 0xbeef)
}

#[test]
fn tun_encapsulates_in_ipip() {
    let seg = tcp(
        CLIENT,
        VIP,
        CPORT,
        VPORT,
        PSH_ACK,
        b"hello through the tunnel",
    );
    let mut outs = Vec::new();
    // (inner TOS, inner DF, pmtu_disc, ECN mode) -> outer TOS, outer DF.
    let cases = [
        (0x00, DF, true, EcnEncap::Normal, 0x00, DF),
        (0xb8 | 2, DF, true, EcnEncap::Normal, 0xb8 | 2, DF), // EF, ECT(0)
        (0x28 | 1, 0, true, EcnEncap::Normal, 0x28 | 1, 0),   // ECT(1), no DF
        (0x28 | 3, DF, true, EcnEncap::Normal, 0x28 | 3, DF), // CE copied
        (0x28 | 3, DF, true, EcnEncap::Rfc3168Full, 0x28 | 2, DF), // CE -> ECT(0)
        (0x28 | 2, DF, true, EcnEncap::Rfc3168Full, 0x28 | 2, DF),
        (0x00, DF, false, EcnEncap::Normal, 0x00, 0), // no PMTU discovery
    ];
    for (i, &(tos, df, pmtu, ecn, otos, odf)) in cases.iter().enumerate() {
        let input = frame(&ipv4_with(tos, 0x1234, df, 64, 6, CLIENT, VIP, &seg));
        let p = TunParams {
            pmtu_disc: pmtu,
            ecn,
            ..tun_params(1500)
        };
        let (v, got) = run(&input, |b| tun::encapsulate(b, &p));
        assert_eq!(v, Verdict::Forward, "case {i}");
        let inner = ipv4_with(tos, 0x1234, df, 63, 6, CLIENT, VIP, &seg);
        let want = out(&ipv4_with(otos, 0xbeef, odf, 63, 4, DIR, RS, &inner));
        assert_eq!(got, want, "case {i}");
        outs.push(got);
    }
    let refs: Vec<&[u8]> = outs.iter().map(Vec::as_slice).collect();
    scapy_ok(&refs);
}

#[test]
fn tun_mtu_is_the_route_mtu_less_20() {
    let seg = tcp(CLIENT, VIP, CPORT, VPORT, PSH_ACK, &payload(1460));
    let big = frame(&ipv4_with(0, 0x1234, DF, 64, 6, CLIENT, VIP, &seg));
    let (v, got) = run(&big, |b| tun::encapsulate(b, &tun_params(1500)));
    assert_eq!(v, Verdict::FragNeeded { mtu: 1480 });
    assert_eq!(got, big);
    // 1480 bytes fit in a 1500 route exactly.
    let seg = tcp(CLIENT, VIP, CPORT, VPORT, PSH_ACK, &payload(1440));
    let fits = frame(&ipv4_with(0, 0x1234, DF, 64, 6, CLIENT, VIP, &seg));
    let (v, got) = run(&fits, |b| tun::encapsulate(b, &tun_params(1500)));
    assert_eq!(v, Verdict::Forward);
    assert_eq!(got.len(), 14 + 1500);
    // The frag-needed the client gets says 1480.
    let (r, err) = build(&big, ErrorKind::FragNeeded { mtu: 1480 }, &params(VIP, 1));
    assert_eq!(r, Built::Ready);
    assert_eq!(
        err[14 + 20..14 + 28],
        [3, 4, err[36], err[37], 0, 0, 0x05, 0xc8]
    );
    // No DF, or no PMTU discovery: IPVS would fragment; we count a drop.
    let seg = tcp(CLIENT, VIP, CPORT, VPORT, PSH_ACK, &payload(1460));
    let nodf = frame(&ipv4_with(0, 0x1234, 0, 64, 6, CLIENT, VIP, &seg));
    assert_eq!(
        run(&nodf, |b| tun::encapsulate(b, &tun_params(1500))).0,
        Verdict::NeedsFragmentation
    );
    let off = TunParams {
        pmtu_disc: false,
        ..tun_params(1500)
    };
    assert_eq!(
        run(&big, |b| tun::encapsulate(b, &off)).0,
        Verdict::NeedsFragmentation
    );
    // Below 68 left for the inner packet: dropped, whatever its size.
    let tiny = frame(&ipv4_with(0, 1, DF, 64, 17, CLIENT, VIP, &payload(8)));
    assert_eq!(
        run(&tiny, |b| tun::encapsulate(b, &tun_params(87))).0,
        Verdict::TunnelMtuTooSmall
    );
    assert_eq!(
        run(&tiny, |b| tun::encapsulate(b, &tun_params(10))).0,
        Verdict::TunnelMtuTooSmall
    );
    assert_eq!(
        run(&tiny, |b| tun::encapsulate(b, &tun_params(88))).0,
        Verdict::Forward
    );
}

/// A buffer with little room, to see the functions fail cleanly.
struct Tight {
    bytes: Vec<u8>,
    room: usize,
}

impl Buf for Tight {
    fn data(&self) -> &[u8] {
        &self.bytes
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }
    fn set_len(&mut self, len: usize) -> bool {
        if len > self.room {
            return false;
        }
        self.bytes.resize(len, 0);
        true
    }
    fn prepend(&mut self, n: usize) -> bool {
        if self.bytes.len() + n > self.room {
            return false;
        }
        self.bytes.splice(0..0, std::iter::repeat_n(0, n));
        true
    }
    fn adj(&mut self, n: usize) -> bool {
        if n > self.bytes.len() {
            return false;
        }
        self.bytes.drain(..n);
        true
    }
    fn port(&self) -> usize {
        0
    }
    fn set_port(&mut self, _: usize) {}
}

#[test]
fn no_room_leaves_the_frame_alone() {
    let seg = tcp(CLIENT, VIP, CPORT, VPORT, PSH_ACK, &payload(100));
    let input = frame(&ipv4_with(0, 1, DF, 64, 6, CLIENT, VIP, &seg));
    let mut b = Tight {
        bytes: input.clone(),
        room: input.len() + 19,
    };
    assert_eq!(tun::encapsulate(&mut b, &tun_params(1500)), Verdict::NoRoom);
    assert_eq!(b.bytes, input);
    b.room += 1;
    assert_eq!(
        tun::encapsulate(&mut b, &tun_params(1500)),
        Verdict::Forward
    );
    let mut small = Tight {
        bytes: Vec::new(),
        room: 100,
    };
    assert_eq!(
        icmp::build_error(
            &mut small,
            &input,
            ErrorKind::PortUnreachable,
            &params(VIP, 1)
        ),
        Built::NoRoom
    );
}

// ---- NAT ----

/// DNAT of `client_seg` (client → VIP) must give `rs_seg` (client → RS);
/// SNAT of `reply_rs` (RS → client) must give `reply_vip` (VIP → client).
fn nat_case(proto: u8, client_seg: &[u8], rs_seg: &[u8], reply_rs: &[u8], reply_vip: &[u8]) {
    let input = frame(&ipv4_with(
        0, 0x1234, DF, 64, proto, CLIENT, VIP, client_seg,
    ));
    let (v, got_in) = run(&input, |b| nat::dnat(b, vip(), rs(), 1500));
    assert_eq!(v, Verdict::Forward, "dnat proto {proto}");
    let want = out(&ipv4_with(0, 0x1234, DF, 63, proto, CLIENT, RS, rs_seg));
    assert_eq!(got_in, want, "dnat proto {proto}");

    let reply = frame(&ipv4_with(0, 0x4321, DF, 64, proto, RS, CLIENT, reply_rs));
    let (v, got_out) = run(&reply, |b| nat::snat(b, rs(), vip(), 1500));
    assert_eq!(v, Verdict::Forward, "snat proto {proto}");
    let want = out(&ipv4_with(0, 0x4321, DF, 63, proto, VIP, CLIENT, reply_vip));
    assert_eq!(got_out, want, "snat proto {proto}");
    scapy_ok(&[&got_in, &got_out]);
}

#[test]
fn nat_tcp_both_ways() {
    let req = b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n";
    let resp = payload(700);
    nat_case(
        6,
        &tcp(CLIENT, VIP, CPORT, VPORT, PSH_ACK, req),
        &tcp(CLIENT, RS, CPORT, RPORT, PSH_ACK, req),
        &tcp(RS, CLIENT, RPORT, CPORT, PSH_ACK, &resp),
        &tcp(VIP, CLIENT, VPORT, CPORT, PSH_ACK, &resp),
    );
    // A SYN without payload, odd-length data.
    nat_case(
        6,
        &tcp(CLIENT, VIP, CPORT, VPORT, 0x02, b""),
        &tcp(CLIENT, RS, CPORT, RPORT, 0x02, b""),
        &tcp(RS, CLIENT, RPORT, CPORT, 0x12, b"abc"),
        &tcp(VIP, CLIENT, VPORT, CPORT, 0x12, b"abc"),
    );
}

#[test]
fn nat_udp_with_checksum() {
    let q = payload(57);
    nat_case(
        17,
        &udp(CLIENT, VIP, CPORT, VPORT, &q, true),
        &udp(CLIENT, RS, CPORT, RPORT, &q, true),
        &udp(RS, CLIENT, RPORT, CPORT, &q, true),
        &udp(VIP, CLIENT, VPORT, CPORT, &q, true),
    );
}

#[test]
fn nat_udp_without_checksum_gets_one() {
    let q = payload(20);
    nat_case(
        17,
        &udp(CLIENT, VIP, CPORT, VPORT, &q, false),
        &udp(CLIENT, RS, CPORT, RPORT, &q, true),
        &udp(RS, CLIENT, RPORT, CPORT, &q, false),
        &udp(VIP, CLIENT, VPORT, CPORT, &q, true),
    );
}

/// A two-byte payload that makes the UDP checksum of `src → dst` come out
/// as 0, which must be sent as 0xffff.
fn zero_sum_payload(src: &str, dst: &str, sport: u16, dport: u16) -> [u8; 2] {
    let mut d = udp(src, dst, sport, dport, &[0, 0], false);
    let c = frames::l4_csum(src, dst, 17, &d); // complement of the sum so far
    d[8..10].copy_from_slice(&c.to_be_bytes());
    assert_eq!(frames::l4_csum(src, dst, 17, &d), 0);
    [d[8], d[9]]
}

#[test]
fn nat_udp_checksum_zero_is_sent_as_ffff() {
    let p = zero_sum_payload(CLIENT, RS, CPORT, RPORT);
    let after = udp(CLIENT, RS, CPORT, RPORT, &p, true);
    assert_eq!(after[6..8], [0xff, 0xff]);
    // Incrementally updated from a real checksum...
    nat_case(
        17,
        &udp(CLIENT, VIP, CPORT, VPORT, &p, true),
        &after,
        &udp(RS, CLIENT, RPORT, CPORT, &p, true),
        &udp(VIP, CLIENT, VPORT, CPORT, &p, true),
    );
    // ... and computed in full for a datagram that had none.
    nat_case(
        17,
        &udp(CLIENT, VIP, CPORT, VPORT, &p, false),
        &after,
        &udp(RS, CLIENT, RPORT, CPORT, &p, true),
        &udp(VIP, CLIENT, VPORT, CPORT, &p, true),
    );
    let q = zero_sum_payload(VIP, CLIENT, VPORT, CPORT);
    nat_case(
        17,
        &udp(CLIENT, VIP, CPORT, VPORT, &q, true),
        &udp(CLIENT, RS, CPORT, RPORT, &q, true),
        &udp(RS, CLIENT, RPORT, CPORT, &q, true),
        &udp(VIP, CLIENT, VPORT, CPORT, &q, true),
    );
}

#[test]
fn nat_sctp_recomputes_the_crc_when_the_port_changes() {
    // A DATA chunk: type 0, flags 3, length 16+4, TSN, stream, SSN, PPID, data.
    let chunk = [
        &[0u8, 3, 0, 20][..],
        &1u32.to_be_bytes(),
        &[0, 0, 0, 0],
        &[0, 0, 0, 0],
        b"ping",
    ]
    .concat();
    let tag = 0xdead_beef;
    nat_case(
        132,
        &sctp(CPORT, VPORT, tag, &chunk),
        &sctp(CPORT, RPORT, tag, &chunk),
        &sctp(RPORT, CPORT, tag, &chunk),
        &sctp(VPORT, CPORT, tag, &chunk),
    );
    // Same port on both sides: the CRC has no pseudo-header, so it is left
    // alone, even a wrong one (the real server will reject that packet).
    let same = Endpoint::new(ip(RS), VPORT);
    let mut seg = sctp(CPORT, VPORT, tag, &chunk);
    seg[8] ^= 0xff;
    let input = frame(&ipv4_with(0, 1, DF, 64, 132, CLIENT, VIP, &seg));
    let (v, got) = run(&input, |b| nat::dnat(b, vip(), same, 1500));
    assert_eq!(v, Verdict::Forward);
    assert_eq!(got, out(&ipv4_with(0, 1, DF, 63, 132, CLIENT, RS, &seg)));
}

#[test]
fn nat_other_protocols_change_the_address_only() {
    // ESP: no ports, so the endpoint ports do not matter.
    let esp = payload(40);
    let input = frame(&ipv4_with(0, 1, DF, 64, 50, CLIENT, VIP, &esp));
    let (v, got) = run(&input, |b| {
        nat::dnat(b, Endpoint::new(ip(VIP), 1), Endpoint::new(ip(RS), 2), 1500)
    });
    assert_eq!(v, Verdict::Forward);
    assert_eq!(got, out(&ipv4_with(0, 1, DF, 63, 50, CLIENT, RS, &esp)));
    scapy_ok(&[&got]);
}

#[test]
fn nat_refuses_fragments_mismatches_and_malformed_transport() {
    let seg = tcp(CLIENT, VIP, CPORT, VPORT, PSH_ACK, b"data");
    let check = |ip_packet: Vec<u8>, from: Endpoint, want: Verdict| {
        let input = frame(&ip_packet);
        let (v, got) = run(&input, |b| nat::dnat(b, from, rs(), 1500));
        assert_eq!(v, want);
        assert_eq!(got, input, "untouched on {want:?}");
    };
    // First fragment (MF) and a later one.
    check(
        ipv4_with(0, 1, 0x2000, 64, 6, CLIENT, VIP, &seg),
        vip(),
        Verdict::Fragment,
    );
    check(
        ipv4_with(0, 1, 0x0010, 64, 6, CLIENT, VIP, &seg),
        vip(),
        Verdict::Fragment,
    );
    // Wrong address, wrong port.
    check(
        ipv4_with(0, 1, DF, 64, 6, CLIENT, VIP, &seg),
        Endpoint::new(ip("10.0.0.101"), VPORT),
        Verdict::Mismatch,
    );
    check(
        ipv4_with(0, 1, DF, 64, 6, CLIENT, VIP, &seg),
        Endpoint::new(ip(VIP), 81),
        Verdict::Mismatch,
    );
    // A TCP header cut short of its fixed 20 bytes, a UDP one of its 8,
    // and a 10-byte SCTP header. (A bad data offset or UDP length field
    // is forwarded, as IPVS forwards it: tests/hostile.rs.)
    check(
        ipv4_with(0, 1, DF, 64, 6, CLIENT, VIP, &seg[..19]),
        vip(),
        Verdict::Malformed,
    );
    let dgram = udp(CLIENT, VIP, CPORT, VPORT, b"abcd", true);
    check(
        ipv4_with(0, 1, DF, 64, 17, CLIENT, VIP, &dgram[..7]),
        vip(),
        Verdict::Malformed,
    );
    check(
        ipv4_with(
            0,
            1,
            DF,
            64,
            132,
            CLIENT,
            VIP,
            &sctp(CPORT, VPORT, 1, b"")[..10],
        ),
        vip(),
        Verdict::Malformed,
    );
    // ICMP only through the icmp translations.
    let (sent, _) = reply_pair(b"x");
    check(
        ipv4_with(0, 1, 0, 64, 1, ROUTER, VIP, &icmp_msg(3, 1, 0, &sent)),
        vip(),
        Verdict::Mismatch,
    );
    // Not IPv4 at all.
    let arp = eth(DIR_MAC, PEER_MAC, 0x0806, &[0u8; 28]);
    assert_eq!(
        run(&arp, |b| nat::dnat(b, vip(), rs(), 1500)).0,
        Verdict::Malformed
    );
    // SNAT checks the source side.
    let reply = frame(&ipv4_with(
        0,
        1,
        DF,
        64,
        6,
        RS,
        CLIENT,
        &tcp(RS, CLIENT, RPORT, CPORT, PSH_ACK, b"x"),
    ));
    assert_eq!(
        run(&reply, |b| nat::snat(
            b,
            Endpoint::new(ip(RS), 8081),
            vip(),
            1500
        ))
        .0,
        Verdict::Mismatch
    );
}

// ---- ICMP errors ----

/// The reply the director sent the client (SNATed, TTL already down one)
/// and the same packet as the real server had sent it.
fn reply_pair(body: &[u8]) -> (Vec<u8>, Vec<u8>) {
    (
        ipv4_with(
            0,
            0x2222,
            DF,
            63,
            6,
            VIP,
            CLIENT,
            &tcp(VIP, CLIENT, VPORT, CPORT, PSH_ACK, body),
        ),
        ipv4_with(
            0,
            0x2222,
            DF,
            63,
            6,
            RS,
            CLIENT,
            &tcp(RS, CLIENT, RPORT, CPORT, PSH_ACK, body),
        ),
    )
}

#[test]
fn classify_client_side_error() {
    let (sent, _) = reply_pair(&payload(300));
    let err = frame(&ipv4_with(
        0xc0,
        0x3333,
        0,
        250,
        1,
        ROUTER,
        VIP,
        &icmp_msg(3, 1, 0, &sent[..28]),
    ));
    assert_eq!(
        icmp::classify(&err),
        Classified::Error(Embedded {
            icmp_type: 3,
            code: 1,
            rest: 0,
            proto: 6,
            src: vip(),
            dst: Endpoint::new(ip(CLIENT), CPORT),
            dont_frag: true,
            tunnel: None,
        })
    );
    // Source quench and time exceeded count; echo, redirect do not.
    for (t, c) in [(4, 0), (11, 0), (11, 1)] {
        let e = frame(&ipv4_with(
            0,
            1,
            0,
            64,
            1,
            ROUTER,
            VIP,
            &icmp_msg(t, c, 0, &sent[..28]),
        ));
        assert!(
            matches!(icmp::classify(&e), Classified::Error(x) if x.icmp_type == t && x.code == c)
        );
    }
    for t in [0, 5, 8, 12] {
        let e = frame(&ipv4_with(
            0,
            1,
            0,
            64,
            1,
            ROUTER,
            VIP,
            &icmp_msg(t, 0, 0, &sent[..28]),
        ));
        assert_eq!(icmp::classify(&e), Classified::NotError, "type {t}");
    }
}

#[test]
fn nat_error_from_the_client_side_goes_to_the_real_server() {
    let (sent, original) = reply_pair(&payload(300));
    let mut outs = Vec::new();
    // A minimal quote (header + 8 bytes: no TCP checksum in it) and a long
    // one (the TCP checksum is in it and must be translated back too).
    for n in [28, 20 + 280] {
        let err = frame(&ipv4_with(
            0xc0,
            0x3333,
            0,
            250,
            1,
            ROUTER,
            VIP,
            &icmp_msg(3, 1, 0, &sent[..n]),
        ));
        let (v, got) = run(&err, |b| {
            icmp::translate_to_real_server(b, vip(), rs(), 1500)
        });
        assert_eq!(v, Verdict::Forward, "quote {n}");
        let mut quote = original[..n].to_vec();
        if n == 28 {
            // Only what was quoted was translated: the cut-off TCP checksum
            // is not there to update.
            quote[20..28].copy_from_slice(&original[20..28]);
        }
        let want = out(&ipv4_with(
            0xc0,
            0x3333,
            0,
            249,
            1,
            ROUTER,
            RS,
            &icmp_msg(3, 1, 0, &quote),
        ));
        assert_eq!(got, want, "quote {n}");
        outs.push(got);
    }
    let refs: Vec<&[u8]> = outs.iter().map(Vec::as_slice).collect();
    scapy_ok(&refs);
}

#[test]
fn nat_error_from_the_real_server_side_goes_to_the_client() {
    let body = payload(64);
    // The client's packet as the director forwarded it, and as the client
    // sent it (TTL as it arrived at the real server's side).
    let forwarded = ipv4_with(
        0,
        0x1234,
        DF,
        63,
        6,
        CLIENT,
        RS,
        &tcp(CLIENT, RS, CPORT, RPORT, PSH_ACK, &body),
    );
    let original = ipv4_with(
        0,
        0x1234,
        DF,
        63,
        6,
        CLIENT,
        VIP,
        &tcp(CLIENT, VIP, CPORT, VPORT, PSH_ACK, &body),
    );
    let err = frame(&ipv4_with(
        0xc0,
        0x4444,
        0,
        64,
        1,
        RS,
        CLIENT,
        &icmp_msg(3, 3, 0, &forwarded),
    ));
    match icmp::classify(&err) {
        Classified::Error(e) => {
            assert_eq!((e.src, e.dst), (Endpoint::new(ip(CLIENT), CPORT), rs()))
        }
        c => panic!("{c:?}"),
    }
    let (v, got) = run(&err, |b| icmp::translate_to_client(b, rs(), vip(), 1500));
    assert_eq!(v, Verdict::Forward);
    let want = out(&ipv4_with(
        0xc0,
        0x4444,
        0,
        63,
        1,
        VIP,
        CLIENT,
        &icmp_msg(3, 3, 0, &original),
    ));
    assert_eq!(got, want);

    // UDP: the quoted checksum is translated; an absent one stays absent.
    let mut outs = vec![got];
    for with_sum in [true, false] {
        let fwd = ipv4_with(
            0,
            5,
            0,
            63,
            17,
            CLIENT,
            RS,
            &udp(CLIENT, RS, CPORT, RPORT, b"query", with_sum),
        );
        let orig = ipv4_with(
            0,
            5,
            0,
            63,
            17,
            CLIENT,
            VIP,
            &udp(CLIENT, VIP, CPORT, VPORT, b"query", with_sum),
        );
        let err = frame(&ipv4_with(
            0xc0,
            6,
            0,
            64,
            1,
            RS,
            CLIENT,
            &icmp_msg(3, 3, 0, &fwd),
        ));
        let (v, got) = run(&err, |b| icmp::translate_to_client(b, rs(), vip(), 1500));
        assert_eq!(v, Verdict::Forward);
        let want = out(&ipv4_with(
            0xc0,
            6,
            0,
            63,
            1,
            VIP,
            CLIENT,
            &icmp_msg(3, 3, 0, &orig),
        ));
        assert_eq!(got, want, "udp checksum {with_sum}");
        outs.push(got);
    }
    let refs: Vec<&[u8]> = outs.iter().map(Vec::as_slice).collect();
    scapy_ok(&refs);
}

#[test]
fn translate_refuses_what_it_cannot_vouch_for() {
    let (sent, _) = reply_pair(b"x");
    let err_ip = ipv4_with(0xc0, 1, 0, 64, 1, ROUTER, VIP, &icmp_msg(3, 1, 0, &sent));
    let err = frame(&err_ip);
    let check = |input: &[u8], from: Endpoint, mtu: u16, want: Verdict| {
        let (v, got) = run(input, |b| {
            icmp::translate_to_real_server(b, from, rs(), mtu)
        });
        assert_eq!(v, want);
        assert_eq!(got, input, "untouched on {want:?}");
    };
    check(&err, Endpoint::new(ip(VIP), 81), 1500, Verdict::Mismatch);
    check(&err, Endpoint::new(ip(RS), VPORT), 1500, Verdict::Mismatch);
    // An error relayed never gets frag-needed.
    check(&err, vip(), 60, Verdict::NeedsFragmentation);
    let mut bad = err.clone();
    bad[14 + 20 + 2] ^= 1;
    check(&bad, vip(), 1500, Verdict::BadChecksum);
    let ttl1 = frame(&ipv4_with(
        0xc0,
        1,
        0,
        1,
        1,
        ROUTER,
        VIP,
        &icmp_msg(3, 1, 0, &sent),
    ));
    check(&ttl1, vip(), 1500, Verdict::TimeExceeded);
    let frag = frame(&ipv4_with(
        0xc0,
        1,
        0x2000,
        64,
        1,
        ROUTER,
        VIP,
        &icmp_msg(3, 1, 0, &sent),
    ));
    check(&frag, vip(), 1500, Verdict::Fragment);
    let echo = frame(&ipv4_with(
        0,
        1,
        0,
        64,
        1,
        ROUTER,
        VIP,
        &icmp_msg(8, 0, 0, &sent),
    ));
    check(&echo, vip(), 1500, Verdict::Mismatch);
    let short = frame(&ipv4_with(
        0,
        1,
        0,
        64,
        1,
        ROUTER,
        VIP,
        &icmp_msg(3, 1, 0, &sent[..27]),
    ));
    check(&short, vip(), 1500, Verdict::Malformed);
    // The client-side translation checks the quoted destination instead.
    let (v, _) = run(&err, |b| icmp::translate_to_client(b, rs(), vip(), 1500));
    assert_eq!(v, Verdict::Mismatch);
}

#[test]
fn classify_rejects_malformed_and_ignores_fragments() {
    let (sent, _) = reply_pair(b"abc");
    let e = |quote: &[u8]| {
        frame(&ipv4_with(
            0,
            1,
            0,
            64,
            1,
            ROUTER,
            VIP,
            &icmp_msg(3, 1, 0, quote),
        ))
    };
    // Quote cut inside the IP header, or with fewer than 8 bytes after it.
    assert_eq!(icmp::classify(&e(&sent[..19])), Classified::Malformed);
    assert_eq!(icmp::classify(&e(&sent[..27])), Classified::Malformed);
    assert!(matches!(
        icmp::classify(&e(&sent[..28])),
        Classified::Error(_)
    ));
    // IPv6 or a bad IHL in the quote.
    let mut v6 = sent.clone();
    v6[0] = 0x65;
    assert_eq!(icmp::classify(&e(&v6)), Classified::Malformed);
    let mut ihl = sent.clone();
    ihl[0] = 0x4f; // 60-byte header: the quote is too short for it
    assert_eq!(icmp::classify(&e(&ihl[..40])), Classified::Malformed);
    // About a non-first fragment: no ports, ignored.
    let tail = ipv4_with(0, 1, 0x00b9, 63, 6, VIP, CLIENT, &payload(8));
    assert_eq!(icmp::classify(&e(&tail)), Classified::EmbeddedFragment);
    // Also inside a tunnel packet (DR and TUN forward fragments as they are).
    let inner_tail = ipv4_with(0, 1, 0x1000, 63, 6, CLIENT, VIP, &payload(8));
    let ipip = ipv4_with(0, 2, 0, 63, 4, DIR, RS, &inner_tail);
    assert_eq!(icmp::classify(&e(&ipip)), Classified::EmbeddedFragment);
    // The error itself fragmented.
    let frag = frame(&ipv4_with(
        0,
        1,
        0x2000,
        64,
        1,
        ROUTER,
        VIP,
        &icmp_msg(3, 1, 0, &sent),
    ));
    assert_eq!(icmp::classify(&frag), Classified::Fragment);
    // ICMP header cut short; bad checksum.
    let cut = frame(&ipv4_with(
        0,
        1,
        0,
        64,
        1,
        ROUTER,
        VIP,
        &[3, 1, 0, 0, 0, 0, 0],
    ));
    assert_eq!(icmp::classify(&cut), Classified::Malformed);
    let mut bad = e(&sent);
    bad[14 + 20 + 3] ^= 0x40;
    assert_eq!(icmp::classify(&bad), Classified::BadChecksum);
    // Not ICMP; not even IPv4.
    assert_eq!(icmp::classify(&frame(&sent)), Classified::NotError);
    assert_eq!(icmp::classify(&[0u8; 10]), Classified::Malformed);
}

// ---- DR/TUN relay of ICMP errors ----

#[test]
fn dr_and_tun_relay_errors_unchanged_but_the_ttl() {
    let quote = ipv4_with(
        0,
        1,
        DF,
        63,
        6,
        VIP,
        CLIENT,
        &tcp(VIP, CLIENT, VPORT, CPORT, PSH_ACK, b"r"),
    );
    let msg = icmp_msg(3, 1, 0, &quote);
    let err = frame(&ipv4_with(0xc0, 9, 0, 200, 1, ROUTER, VIP, &msg));
    let (v, got_dr) = run(&err, |b| dr::transmit(b, 1500));
    assert_eq!(v, Verdict::Forward);
    let relayed = ipv4_with(0xc0, 9, 0, 199, 1, ROUTER, VIP, &msg);
    assert_eq!(got_dr, out(&relayed));
    let (v, got_tun) = run(&err, |b| tun::encapsulate(b, &tun_params(1500)));
    assert_eq!(v, Verdict::Forward);
    assert_eq!(
        got_tun,
        out(&ipv4_with(0xc0, 0xbeef, 0, 199, 4, DIR, RS, &relayed))
    );
    scapy_ok(&[&got_dr, &got_tun]);
}

// ---- tunnel errors ----

/// The client's request, and the IPIP packet the director made of it.
fn tunneled(df: u16) -> (Vec<u8>, Vec<u8>) {
    let inner = ipv4_with(
        0,
        0x1234,
        df,
        63,
        6,
        CLIENT,
        VIP,
        &tcp(CLIENT, VIP, CPORT, VPORT, PSH_ACK, &payload(1400)),
    );
    let outer = ipv4_with(0, 0xbeef, df, 63, 4, DIR, RS, &inner);
    (inner, outer)
}

#[test]
fn tunnel_frag_needed_becomes_frag_needed_for_the_client() {
    let (inner, outer) = tunneled(DF);
    // A router on the tunnel path quotes 548 bytes of the IPIP packet.
    let err = frame(&ipv4_with(
        0xc0,
        0x5555,
        0,
        254,
        1,
        ROUTER2,
        DIR,
        &icmp_msg(3, 4, 1400, &outer[..548]),
    ));
    assert_eq!(
        icmp::classify(&err),
        Classified::Error(Embedded {
            icmp_type: 3,
            code: 4,
            rest: 1400,
            proto: 6,
            src: Endpoint::new(ip(CLIENT), CPORT),
            dst: vip(),
            dont_frag: true,
            tunnel: Some(icmp::TunnelQuote {
                director: ip(DIR),
                real_server: ip(RS),
            }),
        })
    );
    let mut outs = Vec::new();
    for (path_mtu, mtu) in [
        (None, 1380),
        (Some(1300), 1280),
        (Some(88), 88),
        (Some(89), 69),
    ] {
        let mut b = VecBuf::new(&[]);
        let r = icmp::build_tunnel_error(&mut b, &err, path_mtu, &params(VIP, 0x77));
        assert_eq!(r, Built::Ready, "{path_mtu:?}");
        // The client's packet is quoted as far as the router quoted it.
        let want = built(&ipv4_with(
            0xc0,
            0x77,
            0,
            64,
            1,
            VIP,
            CLIENT,
            &icmp_msg(3, 4, mtu, &inner[..528]),
        ));
        assert_eq!(b.bytes, want, "{path_mtu:?}");
        outs.push(b.bytes.clone());
    }
    // A client without DF does not do PMTU discovery: nothing to send.
    let (_, outer_nodf) = tunneled(0);
    let err2 = frame(&ipv4_with(
        0xc0,
        1,
        0,
        254,
        1,
        ROUTER2,
        DIR,
        &icmp_msg(3, 4, 1400, &outer_nodf[..548]),
    ));
    let mut b = VecBuf::new(&[]);
    assert_eq!(
        icmp::build_tunnel_error(&mut b, &err2, None, &params(VIP, 1)),
        Built::NotNeeded
    );
    let refs: Vec<&[u8]> = outs.iter().map(Vec::as_slice).collect();
    scapy_ok(&refs);
}

#[test]
fn other_tunnel_errors_are_relayed_to_the_client() {
    let (inner, outer) = tunneled(DF);
    // Host unreachable for the real server, quoted minimally: outer header,
    // inner header and 8 bytes of TCP.
    let err = frame(&ipv4_with(
        0xc0,
        1,
        0,
        254,
        1,
        ROUTER2,
        DIR,
        &icmp_msg(3, 1, 0, &outer[..48]),
    ));
    let mut b = VecBuf::new(&[]);
    assert_eq!(
        icmp::build_tunnel_error(&mut b, &err, Some(1500), &params(VIP, 2)),
        Built::Ready
    );
    let want = built(&ipv4_with(
        0xc0,
        2,
        0,
        64,
        1,
        VIP,
        CLIENT,
        &icmp_msg(3, 1, 0, &inner[..28]),
    ));
    assert_eq!(b.bytes, want);
    // Not a tunnel error, or one whose inner header was cut off.
    let (sent, _) = reply_pair(b"x");
    let plain = frame(&ipv4_with(
        0,
        1,
        0,
        64,
        1,
        ROUTER,
        VIP,
        &icmp_msg(3, 1, 0, &sent),
    ));
    let mut c = VecBuf::new(&[]);
    assert_eq!(
        icmp::build_tunnel_error(&mut c, &plain, None, &params(VIP, 2)),
        Built::Malformed
    );
    let cut = frame(&ipv4_with(
        0,
        1,
        0,
        254,
        1,
        ROUTER2,
        DIR,
        &icmp_msg(3, 1, 0, &outer[..47]),
    ));
    assert_eq!(icmp::classify(&cut), Classified::Malformed);
    assert_eq!(
        icmp::build_tunnel_error(&mut c, &cut, None, &params(VIP, 2)),
        Built::Malformed
    );
    scapy_ok(&[&b.bytes]);
}

// ---- builders ----

#[test]
fn port_unreachable_for_no_destination() {
    let dgram = udp(CLIENT, VIP, CPORT, 5000, b"anyone?", true);
    let offending = ipv4_with(0, 0x1234, 0, 64, 17, CLIENT, VIP, &dgram);
    // Arrives padded; the padding is not quoted.
    let (r, got) = build(
        &frame(&offending),
        ErrorKind::PortUnreachable,
        &params(VIP, 0x0101),
    );
    assert_eq!(r, Built::Ready);
    let want = built(&ipv4_with(
        0xc0,
        0x0101,
        0,
        64,
        1,
        VIP,
        CLIENT,
        &icmp_msg(3, 3, 0, &offending),
    ));
    assert_eq!(got, want);
    scapy_ok(&[&got]);
}

#[test]
fn builders_follow_the_rules_for_errors() {
    let p = params(VIP, 1);
    let kind = ErrorKind::PortUnreachable;
    let seg = tcp(CLIENT, VIP, CPORT, VPORT, 0x02, b"");
    let with = |src: &str, dst: &str, frag: u16, proto: u8, body: &[u8]| {
        build(
            &frame(&ipv4_with(0, 1, frag, 64, proto, src, dst, body)),
            kind,
            &p,
        )
        .0
    };
    assert_eq!(with(CLIENT, VIP, DF, 6, &seg), Built::Ready);
    // First fragment yes, later ones no.
    assert_eq!(with(CLIENT, VIP, 0x2000, 6, &seg), Built::Ready);
    assert_eq!(with(CLIENT, VIP, 0x0001, 6, &seg), Built::NotFirstFragment);
    assert_eq!(with(CLIENT, VIP, 0x1000, 6, &seg), Built::NotFirstFragment);
    // Not about ICMP errors (nor unknown types); about queries, yes.
    let e = icmp_msg(3, 3, 0, &payload(28));
    assert_eq!(with(CLIENT, VIP, 0, 1, &e), Built::AboutIcmpError);
    assert_eq!(
        with(CLIENT, VIP, 0, 1, &icmp_msg(99, 0, 0, b"")),
        Built::AboutIcmpError
    );
    assert_eq!(
        with(CLIENT, VIP, 0, 1, &icmp_msg(8, 0, 1, b"ping")),
        Built::Ready
    );
    // Only to one host's address, only about unicast packets.
    for (src, dst) in [
        ("0.0.0.0", VIP),
        ("127.0.0.1", VIP),
        ("224.0.0.5", VIP),
        ("255.255.255.255", VIP),
        ("240.0.0.1", VIP),
        (CLIENT, "255.255.255.255"),
        (CLIENT, "239.1.2.3"),
    ] {
        assert_eq!(
            with(src, dst, 0, 6, &seg),
            Built::NotUnicast,
            "{src} -> {dst}"
        );
    }
    // Not IPv4, or too short to hold the header it claims.
    assert_eq!(
        build(&eth(DIR_MAC, PEER_MAC, 0x0806, &[0; 28]), kind, &p).0,
        Built::Malformed
    );
    assert_eq!(build(&[0u8; 30], kind, &p).0, Built::Malformed);
}

// ---- robustness ----

/// One of every input the golden tests use.
fn golden_inputs() -> Vec<Vec<u8>> {
    let seg = tcp(CLIENT, VIP, CPORT, VPORT, PSH_ACK, b"GET /");
    let (sent, _) = reply_pair(&payload(40));
    let (_, outer) = tunneled(DF);
    let forwarded = ipv4_with(
        0,
        1,
        DF,
        63,
        6,
        CLIENT,
        RS,
        &tcp(CLIENT, RS, CPORT, RPORT, PSH_ACK, b"q"),
    );
    vec![
        frame(&ipv4_with(0, 1, DF, 64, 6, CLIENT, VIP, &seg)),
        frame(&ipv4_with(
            0,
            1,
            0,
            64,
            17,
            CLIENT,
            VIP,
            &udp(CLIENT, VIP, CPORT, VPORT, b"u", true),
        )),
        frame(&ipv4_with(
            0,
            1,
            0,
            64,
            17,
            CLIENT,
            VIP,
            &udp(CLIENT, VIP, CPORT, VPORT, b"u", false),
        )),
        frame(&ipv4_with(
            0,
            1,
            0,
            64,
            132,
            CLIENT,
            VIP,
            &sctp(CPORT, VPORT, 9, &[1, 0, 0, 4]),
        )),
        frame(&ipv4_with(
            0,
            1,
            0,
            64,
            6,
            RS,
            CLIENT,
            &tcp(RS, CLIENT, RPORT, CPORT, PSH_ACK, b"r"),
        )),
        frame(&ipv4_with(
            0xc0,
            1,
            0,
            250,
            1,
            ROUTER,
            VIP,
            &icmp_msg(3, 1, 0, &sent),
        )),
        frame(&ipv4_with(
            0xc0,
            1,
            0,
            64,
            1,
            RS,
            CLIENT,
            &icmp_msg(3, 3, 0, &forwarded),
        )),
        frame(&ipv4_with(
            0xc0,
            1,
            0,
            254,
            1,
            ROUTER2,
            DIR,
            &icmp_msg(3, 4, 1400, &outer[..100]),
        )),
    ]
}

/// Runs every function of the module on `f`; they must not panic.
fn exercise(f: &[u8]) {
    let c = Endpoint::new(ip(CLIENT), CPORT);
    let _ = run(f, |b| dr::transmit(b, 1500));
    let _ = run(f, |b| tun::encapsulate(b, &tun_params(1500)));
    let _ = run(f, |b| tun::encapsulate(b, &tun_params(90)));
    let _ = run(f, |b| nat::dnat(b, vip(), rs(), 1500));
    let _ = run(f, |b| nat::snat(b, rs(), vip(), 1500));
    let _ = run(f, |b| nat::dnat(b, Endpoint::new(ip(VIP), 0), rs(), 40));
    let _ = icmp::classify(f);
    let _ = run(f, |b| icmp::translate_to_real_server(b, vip(), rs(), 1500));
    let _ = run(f, |b| icmp::translate_to_client(b, rs(), vip(), 1500));
    let _ = run(f, |b| icmp::translate_to_client(b, c, vip(), 1500));
    for kind in [
        ErrorKind::TimeExceeded,
        ErrorKind::FragNeeded { mtu: 1400 },
        ErrorKind::PortUnreachable,
    ] {
        let _ = build(f, kind, &params(VIP, 1));
    }
    let mut b = VecBuf::new(&[]);
    let _ = icmp::build_tunnel_error(&mut b, f, None, &params(VIP, 1));
    let _ = icmp::build_tunnel_error(&mut b, f, Some(1), &params(VIP, 1));
}

#[test]
fn every_prefix_of_every_input_is_handled_without_panic() {
    for g in golden_inputs() {
        for n in 0..=g.len() {
            exercise(&g[..n]);
        }
    }
}

#[test]
fn every_corrupted_byte_is_handled_without_panic() {
    for g in golden_inputs() {
        // Every byte of the headers (all of a small frame) set to values
        // that hit the edges of lengths and fields.
        for at in 0..g.len().min(120) {
            for v in [
                0x00, 0x01, 0x05, 0x0f, 0x40, 0x45, 0x4f, 0x7f, 0x80, 0xfe, 0xff,
            ] {
                let mut f = g.clone();
                f[at] = v;
                exercise(&f);
            }
        }
    }
}

#[test]
fn prefixes_get_drop_verdicts() {
    // Beyond "no panic": a cut frame is never forwarded by NAT, and its
    // classification is never an error to act on.
    for g in golden_inputs() {
        let ip_len = u16::from_be_bytes([g[16], g[17]]) as usize;
        for n in 0..14 + ip_len {
            let (v, got) = run(&g[..n], |b| nat::dnat(b, vip(), rs(), 1500));
            assert_ne!(v, Verdict::Forward, "prefix {n}");
            assert_eq!(got, &g[..n]);
            assert!(
                !matches!(icmp::classify(&g[..n]), Classified::Error(_)),
                "prefix {n}"
            );
            let (v, _) = run(&g[..n], |b| dr::transmit(b, 1500));
            assert_eq!(v, Verdict::Malformed, "prefix {n}");
        }
    }
}
