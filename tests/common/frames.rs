//! An independent frame builder for tests: its own RFC 1071 checksum, no
//! code shared with the data plane, so a checksum bug there cannot hide
//! behind the same bug here. Shared by the fastpath unit-level tests and the
//! daemon's packet-exact tests.

#![allow(dead_code)]

use std::net::Ipv4Addr;

pub const BCAST: [u8; 6] = [0xff; 6];

pub fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

pub fn csum(data: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in data.chunks(2) {
        s += (c[0] as u32) << 8 | *c.get(1).unwrap_or(&0) as u32;
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An Ethernet frame, zero-padded to the 60-byte minimum.
pub fn eth(dst: [u8; 6], src: [u8; 6], ty: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = [dst.as_slice(), src.as_slice(), &ty.to_be_bytes(), payload].concat();
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

pub fn arp(op: u16, sha: [u8; 6], spa: &str, tha: [u8; 6], tpa: &str) -> Vec<u8> {
    [
        &[0, 1, 8, 0, 6, 4][..],
        &op.to_be_bytes(),
        &sha,
        &ip(spa).octets(),
        &tha,
        &ip(tpa).octets(),
    ]
    .concat()
}

/// IPv4 header (ident 0x1234, DF) plus payload, with a correct checksum.
pub fn ipv4(src: &str, dst: &str, proto: u8, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let len = (20 + payload.len()) as u16;
    let mut h = [
        &[0x45, 0][..],
        &len.to_be_bytes(),
        &[0x12, 0x34, 0x40, 0, ttl, proto, 0, 0],
        &ip(src).octets(),
        &ip(dst).octets(),
    ]
    .concat();
    let c = csum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    [h, payload.to_vec()].concat()
}

/// ICMP echo request (type 8) or reply (type 0).
pub fn echo(ty: u8, id: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let mut m = [
        &[ty, 0, 0, 0][..],
        &id.to_be_bytes(),
        &seq.to_be_bytes(),
        data,
    ]
    .concat();
    let c = csum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// A TCP SYN with a correct checksum.
pub fn tcp_syn(src: &str, dst: &str, sport: u16, dport: u16) -> Vec<u8> {
    let mut t = [0u8; 20];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&0x0102_0304u32.to_be_bytes());
    t[12] = 0x50;
    t[13] = 0x02;
    t[14..16].copy_from_slice(&64240u16.to_be_bytes());
    let pseudo = [&ip(src).octets()[..], &ip(dst).octets(), &[0, 6, 0, 20], &t].concat();
    let c = csum(&pseudo);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    ipv4(src, dst, 6, 64, &t)
}

/// An Ethernet frame without minimum-size padding: what the data plane
/// hands to the NIC, which pads on the wire.
pub fn eth_raw(dst: [u8; 6], src: [u8; 6], ty: u16, payload: &[u8]) -> Vec<u8> {
    [dst.as_slice(), src.as_slice(), &ty.to_be_bytes(), payload].concat()
}

/// IPv4 header with every field chosen, plus payload, with a correct
/// checksum. `frag` is the flags and fragment offset word (0x4000: DF).
#[allow(clippy::too_many_arguments)]
pub fn ipv4_with(
    tos: u8,
    ident: u16,
    frag: u16,
    ttl: u8,
    proto: u8,
    src: &str,
    dst: &str,
    payload: &[u8],
) -> Vec<u8> {
    let len = (20 + payload.len()) as u16;
    let mut h = [
        &[0x45, tos][..],
        &len.to_be_bytes(),
        &ident.to_be_bytes(),
        &frag.to_be_bytes(),
        &[ttl, proto, 0, 0],
        &ip(src).octets(),
        &ip(dst).octets(),
    ]
    .concat();
    let c = csum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    [h, payload.to_vec()].concat()
}

/// The TCP/UDP checksum of `seg` (its checksum field zeroed) between `src`
/// and `dst`.
pub fn l4_csum(src: &str, dst: &str, proto: u8, seg: &[u8]) -> u16 {
    let len = (seg.len() as u16).to_be_bytes();
    let pseudo = [
        &ip(src).octets()[..],
        &ip(dst).octets(),
        &[0, proto],
        &len,
        seg,
    ]
    .concat();
    csum(&pseudo)
}

/// A TCP segment (20-byte header, ACK|PSH unless `flags` says otherwise)
/// with a correct checksum.
pub fn tcp(src: &str, dst: &str, sport: u16, dport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&0x1122_3344u32.to_be_bytes());
    t[8..12].copy_from_slice(&0x5566_7788u32.to_be_bytes());
    t[12] = 0x50;
    t[13] = flags;
    t[14..16].copy_from_slice(&64240u16.to_be_bytes());
    t.extend_from_slice(payload);
    let c = l4_csum(src, dst, 6, &t);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    t
}

/// A UDP datagram; with `checksum` false its checksum field is 0 ("none"),
/// else the computed value (0 sent as 0xffff).
pub fn udp(
    src: &str,
    dst: &str,
    sport: u16,
    dport: u16,
    payload: &[u8],
    checksum: bool,
) -> Vec<u8> {
    let len = (8 + payload.len()) as u16;
    let mut u = [
        &sport.to_be_bytes()[..],
        &dport.to_be_bytes(),
        &len.to_be_bytes(),
        &[0, 0],
        payload,
    ]
    .concat();
    if checksum {
        let c = match l4_csum(src, dst, 17, &u) {
            0 => 0xffff,
            c => c,
        };
        u[6..8].copy_from_slice(&c.to_be_bytes());
    }
    u
}

/// CRC32c, bit by bit (RFC 3309).
pub fn crc32c(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82f6_3b78
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// An SCTP packet: common header and `chunks`, with its CRC32c (stored
/// least significant byte first).
pub fn sctp(sport: u16, dport: u16, vtag: u32, chunks: &[u8]) -> Vec<u8> {
    let mut s = [
        &sport.to_be_bytes()[..],
        &dport.to_be_bytes(),
        &vtag.to_be_bytes(),
        &[0, 0, 0, 0],
        chunks,
    ]
    .concat();
    let c = crc32c(&s);
    s[8..12].copy_from_slice(&c.to_le_bytes());
    s
}

/// An ICMP message with a correct checksum: type, code, the second header
/// word (`rest`) and the data (for errors, the quoted datagram).
pub fn icmp(ty: u8, code: u8, rest: u32, data: &[u8]) -> Vec<u8> {
    let mut m = [&[ty, code, 0, 0][..], &rest.to_be_bytes(), data].concat();
    let c = csum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}
