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
