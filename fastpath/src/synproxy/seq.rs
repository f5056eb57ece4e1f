//! A proxied connection's sequence space: the client was given the
//! cookie as the server's ISN and the director's timestamps and window
//! scale, the real server chose its own, so every segment after the
//! handshake is translated between the two views, checksums updated
//! incrementally (RFC 1624) over just the words that changed.
//!
//! Towards the client: the sequence number and TSval move by the deltas,
//! and the window is rescaled from the server's scale to the one the
//! client was told. Towards the server: the acknowledgment number, the
//! SACK block edges (they name server sequence numbers) and TSecr move
//! back, and a client that scales windows the server does not know about
//! (the server's SYN-ACK had no window scale) has its windows unscaled.
//! The client's own sequence space is the server's too (its SYN went to
//! the server with the client's ISN), so nothing else changes.

use super::opts;
use crate::wire::checksum::update16;
use crate::wire::tcp::{FLAG_ACK, FLAG_SYN, MIN_HEADER_LEN};

/// How one proxied connection's segments are translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Adjust {
    /// Added to the server's sequence numbers: the cookie minus the
    /// server's ISN.
    pub seq: u32,
    /// Added to the server's TSvals (the director's SYN-ACK TSval minus
    /// the server's), when both the client and the server use timestamps.
    pub ts: Option<u32>,
    /// The server's window scale, and the one the client was told: the
    /// server's windows are shifted left by the first and right by the
    /// second.
    pub ws_server: u8,
    pub ws_client: u8,
    /// The client scales its windows by this and the server does not
    /// know it (0: nothing to do).
    pub ws_unscale: u8,
}

const SEQ_AT: usize = 4;
const ACK_AT: usize = 8;
const WINDOW_AT: usize = 14;
const CSUM_AT: usize = 16;

/// Rewrites `seg[at..at + new.len()]` and updates the checksum for every
/// 16-bit word (counted from the segment's start, as the checksum counts
/// them) the bytes touch. `at..at + new.len()` lies in the header, whose
/// length is a multiple of 4, so those words are whole.
fn patch(seg: &mut [u8], at: usize, new: &[u8]) {
    let (start, end) = (at & !1, (at + new.len() + 1) & !1);
    if end > seg.len() || at + new.len() > seg.len() {
        return;
    }
    let mut c = u16::from_be_bytes([seg[CSUM_AT], seg[CSUM_AT + 1]]);
    let mut old = [0u8; 8];
    old[..end - start].copy_from_slice(&seg[start..end]);
    seg[at..at + new.len()].copy_from_slice(new);
    for (i, w) in (start..end).step_by(2).enumerate() {
        let o = u16::from_be_bytes([old[2 * i], old[2 * i + 1]]);
        let n = u16::from_be_bytes([seg[w], seg[w + 1]]);
        c = update16(c, o, n);
    }
    seg[CSUM_AT..CSUM_AT + 2].copy_from_slice(&c.to_be_bytes());
}

fn add32(seg: &mut [u8], at: usize, delta: u32) {
    if let Some(v) = opts::be32(seg, at) {
        patch(seg, at, &v.wrapping_add(delta).to_be_bytes());
    }
}

/// The header length of a TCP segment, if it is one.
fn header_len(seg: &[u8]) -> Option<usize> {
    let hl = (*seg.get(12)? >> 4) as usize * 4;
    (hl >= MIN_HEADER_LEN && hl <= seg.len()).then_some(hl)
}

fn window(seg: &[u8]) -> u16 {
    u16::from_be_bytes([seg[WINDOW_AT], seg[WINDOW_AT + 1]])
}

fn set_window(seg: &mut [u8], w: u32) {
    let w = w.min(u16::MAX as u32) as u16;
    if w != window(seg) {
        patch(seg, WINDOW_AT, &w.to_be_bytes());
    }
}

/// Translates a server → client segment (`seg`: the TCP header and data).
pub fn to_client(seg: &mut [u8], a: &Adjust) {
    let Some(hl) = header_len(seg) else { return };
    add32(seg, SEQ_AT, a.seq);
    let flags = seg[13];
    if flags & FLAG_SYN == 0 && a.ws_server != a.ws_client {
        let w = (window(seg) as u64) << a.ws_server >> a.ws_client;
        set_window(seg, w.min(u16::MAX as u64) as u32);
    }
    if let Some(d) = a.ts {
        if let Some(at) = opts::scan(&seg[MIN_HEADER_LEN..hl]).ts {
            add32(seg, MIN_HEADER_LEN + at, d);
        }
    }
}

/// Translates a client → server segment.
pub fn to_server(seg: &mut [u8], a: &Adjust) {
    let Some(hl) = header_len(seg) else { return };
    let flags = seg[13];
    if flags & FLAG_ACK != 0 {
        add32(seg, ACK_AT, a.seq.wrapping_neg());
    }
    if flags & FLAG_SYN == 0 && a.ws_unscale != 0 {
        let w = (window(seg) as u32) << a.ws_unscale.min(14);
        set_window(seg, w);
    }
    if hl == MIN_HEADER_LEN {
        return;
    }
    let l = opts::scan(&seg[MIN_HEADER_LEN..hl]);
    if let (Some(d), Some(at)) = (a.ts, l.ts) {
        add32(seg, MIN_HEADER_LEN + at + 4, d.wrapping_neg());
    }
    if let Some((at, n)) = l.sack {
        for i in 0..2 * n {
            add32(seg, MIN_HEADER_LEN + at + 4 * i, a.seq.wrapping_neg());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum::{pseudo_header_v4, sum};
    use core::net::Ipv4Addr;

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 12);

    /// A segment with `opts` and `data`, its checksum computed in full.
    fn seg(seq: u32, ack: u32, flags: u8, win: u16, opts: &[u8], data: &[u8]) -> Vec<u8> {
        let mut s = vec![0u8; 20];
        s[0..2].copy_from_slice(&40000u16.to_be_bytes());
        s[2..4].copy_from_slice(&80u16.to_be_bytes());
        s[4..8].copy_from_slice(&seq.to_be_bytes());
        s[8..12].copy_from_slice(&ack.to_be_bytes());
        s[12] = (((20 + opts.len()) / 4) << 4) as u8;
        s[13] = flags;
        s[14..16].copy_from_slice(&win.to_be_bytes());
        s.extend_from_slice(opts);
        s.extend_from_slice(data);
        fill(&mut s);
        s
    }

    fn fill(s: &mut [u8]) {
        s[16] = 0;
        s[17] = 0;
        let ph = pseudo_header_v4(SRC, DST, 6, s.len() as u16);
        let c = !crate::wire::checksum::fold(sum(s, ph));
        s[16..18].copy_from_slice(&c.to_be_bytes());
    }

    /// The segment's checksum is what a full computation gives.
    fn assert_csum(s: &[u8]) {
        let mut full = s.to_vec();
        fill(&mut full);
        assert_eq!(s[16..18], full[16..18], "incremental checksum");
        let ph = pseudo_header_v4(SRC, DST, 6, s.len() as u16);
        assert_eq!(crate::wire::checksum::fold(sum(s, ph)), 0xffff);
    }

    const A: Adjust = Adjust {
        seq: 0x1000_0000,
        ts: Some(0x0000_0100),
        ws_server: 7,
        ws_client: 7,
        ws_unscale: 0,
    };

    #[test]
    fn data_towards_the_client_moves_seq_and_tsval() {
        // NOP NOP TS(tsval 0x500, tsecr 0x77), 5 bytes of data.
        let o = [1, 1, 8, 10, 0, 0, 5, 0, 0, 0, 0, 0x77];
        let mut s = seg(0xf000_0001, 1234, FLAG_ACK, 500, &o, b"hello");
        to_client(&mut s, &A);
        let want_o = [1, 1, 8, 10, 0, 0, 6, 0, 0, 0, 0, 0x77];
        let mut want = seg(0x0000_0001, 1234, FLAG_ACK, 500, &want_o, b"hello");
        fill(&mut want);
        assert_eq!(s, want);
        assert_csum(&s);
    }

    #[test]
    fn acks_sack_blocks_and_tsecr_towards_the_server_move_back() {
        // TS at an odd offset (one NOP), then SACK with two blocks at a
        // 3-byte offset: every patch straddles words differently.
        let mut o = vec![1, 8, 10, 0, 0, 0, 9, 0x10, 0, 1, 0x77, 1, 5, 18];
        for v in [0x1000_0100u32, 0x1000_0200, 0x0000_0010, 0x0000_0020] {
            o.extend_from_slice(&v.to_be_bytes());
        }
        o.extend_from_slice(&[0, 0]);
        let mut s = seg(77, 0x1000_0005, FLAG_ACK | 0x08, 1000, &o, b"x");
        to_server(&mut s, &A);
        let mut wo = vec![1, 8, 10, 0, 0, 0, 9, 0x10, 0, 0, 0x77, 1, 5, 18];
        for v in [0x0000_0100u32, 0x0000_0200, 0xf000_0010, 0xf000_0020] {
            wo.extend_from_slice(&v.to_be_bytes());
        }
        wo.extend_from_slice(&[0, 0]);
        let want = seg(77, 0x0000_0005, FLAG_ACK | 0x08, 1000, &wo, b"x");
        assert_eq!(s, want);
        assert_csum(&s);
    }

    #[test]
    fn windows_are_rescaled() {
        // Server scale 9, client told 7: the window is 4 times larger.
        let a = Adjust { ws_server: 9, ..A };
        let mut s = seg(1, 2, FLAG_ACK, 1000, &[], b"");
        to_client(&mut s, &a);
        assert_eq!(window(&s), 4000);
        assert_csum(&s);
        // ... clamped, and a smaller server scale rounds down.
        let mut s = seg(1, 2, FLAG_ACK, 0x4000, &[], b"");
        to_client(&mut s, &a);
        assert_eq!(window(&s), 0xffff);
        let a = Adjust { ws_server: 0, ..A };
        let mut s = seg(1, 2, FLAG_ACK, 1000, &[], b"");
        to_client(&mut s, &a);
        assert_eq!(window(&s), 7);
        assert_csum(&s);
        // A SYN's window is never scaled.
        let mut s = seg(1, 2, FLAG_ACK | FLAG_SYN, 1000, &[], b"");
        to_client(&mut s, &a);
        assert_eq!(window(&s), 1000);
        // A server that does not scale gets the client's windows unscaled.
        let a = Adjust {
            ws_unscale: 7,
            ..Adjust::default()
        };
        let mut s = seg(1, 2, FLAG_ACK, 100, &[], b"");
        to_server(&mut s, &a);
        assert_eq!(window(&s), 12800);
        assert_csum(&s);
    }

    #[test]
    fn without_timestamps_only_the_numbers_move() {
        let a = Adjust { ts: None, ..A };
        let o = [1, 1, 8, 10, 0, 0, 5, 0, 0, 0, 0, 0x77];
        let mut s = seg(5, 0x1000_0009, FLAG_ACK, 9, &o, b"");
        to_server(&mut s, &a);
        assert_eq!(s, seg(5, 9, FLAG_ACK, 9, &o, b""));
        let mut s = seg(5, 9, FLAG_ACK, 9, &o, b"");
        to_client(&mut s, &a);
        assert_eq!(s, seg(0x1000_0005, 9, FLAG_ACK, 9, &o, b""));
        // Wrapping, and a segment without ACK keeps its ack field.
        let mut s = seg(u32::MAX, 3, 0x04, 0, &[], b"");
        to_server(&mut s, &a);
        assert_eq!(s, seg(u32::MAX, 3, 0x04, 0, &[], b""));
        to_client(&mut s, &a);
        assert_eq!(s, seg(0x0fff_ffff, 3, 0x04, 0, &[], b""));
        // Too short to be a segment: left alone.
        let mut short = [0u8; 19];
        to_client(&mut short, &a);
        assert_eq!(short, [0u8; 19]);
    }
}
