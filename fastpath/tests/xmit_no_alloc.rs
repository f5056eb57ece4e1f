//! The forwarding transformations never touch the heap: every function of
//! `fastpath::xmit`, run over a mix of packets (each forwarded, refused or
//! malformed), makes zero allocations. Frames live in a fixed buffer with
//! headroom, as in an mbuf, so the buffer itself cannot allocate either. A
//! counting global allocator sees every allocation in this test process.

use fastpath::io::Buf;
use fastpath::xmit::icmp::{self, ErrorKind, ErrorParams};
use fastpath::xmit::tun::TunParams;
use fastpath::xmit::{dr, nat, tun, Endpoint, Verdict};

#[path = "../../tests/common/frames.rs"]
mod frames;
use frames::{eth, icmp as icmp_msg, ip, ipv4_with, sctp, tcp, udp};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{allocations, Counting};

#[global_allocator]
static A: Counting = Counting;

const ROOM: usize = 2048;
const HEADROOM: usize = 128;

/// An mbuf-like buffer: fixed storage, data between `start` and `end`.
struct Mbuf {
    room: [u8; ROOM],
    start: usize,
    end: usize,
}

impl Mbuf {
    fn load(&mut self, frame: &[u8]) {
        self.start = HEADROOM;
        self.end = HEADROOM + frame.len();
        self.room[self.start..self.end].copy_from_slice(frame);
    }
}

impl Buf for Mbuf {
    fn data(&self) -> &[u8] {
        &self.room[self.start..self.end]
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.room[self.start..self.end]
    }
    fn set_len(&mut self, len: usize) -> bool {
        if self.start + len > ROOM {
            return false;
        }
        self.end = self.start + len;
        true
    }
    fn prepend(&mut self, n: usize) -> bool {
        if n > self.start {
            return false;
        }
        self.start -= n;
        true
    }
    fn adj(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.start += n;
        true
    }
    fn port(&self) -> usize {
        0
    }
    fn set_port(&mut self, _: usize) {}
}

#[test]
fn xmit_does_not_allocate() {
    let (client, vip_s, rs_s) = ("192.0.2.10", "10.0.0.100", "10.1.0.5");
    let mac = [2, 0, 0, 0, 0, 1];
    let f = |p: &[u8]| eth(mac, mac, 0x0800, p);
    let sent = ipv4_with(
        0,
        1,
        0x4000,
        63,
        6,
        vip_s,
        client,
        &tcp(vip_s, client, 80, 40000, 0x18, &[7; 300]),
    );
    let fwd = ipv4_with(
        0,
        1,
        0x4000,
        63,
        6,
        client,
        rs_s,
        &tcp(client, rs_s, 40000, 8080, 0x18, b"q"),
    );
    let inner = ipv4_with(
        0,
        1,
        0x4000,
        63,
        6,
        client,
        vip_s,
        &tcp(client, vip_s, 40000, 80, 0x18, &[1; 600]),
    );
    let ipip = ipv4_with(0, 2, 0x4000, 63, 4, "10.1.0.1", rs_s, &inner);
    let frames = vec![
        f(&ipv4_with(
            0,
            1,
            0x4000,
            64,
            6,
            client,
            vip_s,
            &tcp(client, vip_s, 40000, 80, 0x18, &[1; 1000]),
        )),
        f(&ipv4_with(
            0,
            1,
            0,
            64,
            17,
            client,
            vip_s,
            &udp(client, vip_s, 40000, 80, b"x", false),
        )),
        f(&ipv4_with(
            0,
            1,
            0,
            64,
            132,
            client,
            vip_s,
            &sctp(40000, 80, 1, &[0; 20]),
        )),
        f(&ipv4_with(
            0,
            1,
            0,
            64,
            6,
            rs_s,
            client,
            &tcp(rs_s, client, 8080, 40000, 0x18, b"r"),
        )),
        f(&ipv4_with(
            0,
            1,
            0x4000,
            1,
            6,
            client,
            vip_s,
            &tcp(client, vip_s, 40000, 80, 2, b""),
        )),
        f(&ipv4_with(
            0xc0,
            1,
            0,
            250,
            1,
            "198.51.100.1",
            vip_s,
            &icmp_msg(3, 1, 0, &sent),
        )),
        f(&ipv4_with(
            0xc0,
            1,
            0,
            64,
            1,
            rs_s,
            client,
            &icmp_msg(3, 3, 0, &fwd),
        )),
        f(&ipv4_with(
            0xc0,
            1,
            0,
            254,
            1,
            "10.1.0.254",
            "10.1.0.1",
            &icmp_msg(3, 4, 1400, &ipip[..548]),
        )),
        vec![0; 30],
    ];
    let vip = Endpoint::new(ip(vip_s), 80);
    let rs = Endpoint::new(ip(rs_s), 8080);
    let tp = TunParams::new(ip("10.1.0.1"), ip(rs_s), 1500, 1);
    let ep = ErrorParams {
        src: ip(vip_s),
        ident: 1,
        ttl: 64,
    };
    let mut b = Box::new(Mbuf {
        room: [0; ROOM],
        start: 0,
        end: 0,
    });
    let mut o = Box::new(Mbuf {
        room: [0; ROOM],
        start: HEADROOM,
        end: HEADROOM,
    });
    let mut forwarded = 0u64;
    let before = allocations();
    for _ in 0..200 {
        for fr in &frames {
            let mut verdicts = [Verdict::Malformed; 7];
            b.load(fr);
            verdicts[0] = dr::transmit(&mut *b, 1500);
            b.load(fr);
            verdicts[1] = tun::encapsulate(&mut *b, &tp);
            b.load(fr);
            verdicts[2] = nat::dnat(&mut *b, vip, rs, 1500);
            b.load(fr);
            verdicts[3] = nat::snat(&mut *b, rs, vip, 1500);
            b.load(fr);
            verdicts[4] = icmp::translate_to_real_server(&mut *b, vip, rs, 1500);
            b.load(fr);
            verdicts[5] = icmp::translate_to_client(&mut *b, rs, vip, 1500);
            let _ = icmp::classify(fr);
            let _ = icmp::build_error(&mut *o, fr, ErrorKind::TimeExceeded, &ep);
            let _ = icmp::build_tunnel_error(&mut *o, fr, None, &ep);
            forwarded += verdicts.iter().filter(|&&v| v == Verdict::Forward).count() as u64;
        }
    }
    let allocs = allocations() - before;
    // Real work was done: per round, DR and TUN forward the seven frames
    // with a TTL above 1, DNAT the three to the VIP, SNAT the reply, and
    // each ICMP translation its error (3 + 3 + 3 + 3 + 0 + 3 + 3 + 2 + 0).
    assert_eq!(forwarded, 200 * 20);
    assert_eq!(allocs, 0, "heap allocations in xmit");
}
