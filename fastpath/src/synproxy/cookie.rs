//! SYN cookies: the initial sequence number of the director's SYN-ACK,
//! from which the client's ACK alone proves the handshake and gives back
//! the options its SYN carried, so an unvalidated SYN costs no state.
//!
//! The arithmetic is Linux's (`net/ipv4/syncookies.c`,
//! `secure_tcp_syn_cookie`): a keyed hash of the flow, plus the client's
//! ISN, plus a minute counter in the top 8 bits, plus 24 bits of a second
//! hash (which also covers the counter) added to the data. The data is
//! DPVS's layout (`ip_vs_synproxy.h`), which carries every option in the
//! cookie itself rather than in the timestamp as Linux does, so a client
//! without timestamps keeps its window scale and SACK too:
//!
//! | bits | what |
//! |---|---|
//! | 21 | SACK permitted |
//! | 20 | timestamps |
//! | 16..=19 | the client's window scale (0..=14), 15 for none |
//! | 12..=15 | index into [`MSS_TABLE`] |
//! | 0..=11, 22, 23 | zero |
//!
//! The zero bits are checked on the way back: with the hash, a forged ACK
//! passes with odds of about 1 in 2^16 per minute counter tried.
//!
//! The hash is SipHash-2-4 with a secret the daemon draws at start and
//! gives every worker (a cookie may come back to any of them after a
//! reload, never to another director).

/// The MSS values a cookie can carry: Linux's `msstab` for IPv4. A
/// client's MSS is rounded down to one of them (below 536, 536).
pub const MSS_TABLE: [u16; 4] = [536, 1300, 1440, 1460];

/// How long the minute counter runs: a cookie is good for the counter it
/// was made with and the next two (2 to 3 minutes, Linux's
/// `MAX_SYNCOOKIE_AGE`).
pub const PERIOD_MS: u64 = 60_000;
pub const MAX_AGE: u32 = 2;

/// The largest window scale a TCP may announce (RFC 7323).
pub const WSCALE_MAX: u8 = 14;

const COOKIE_BITS: u32 = 24;
const COOKIE_MASK: u32 = (1 << COOKIE_BITS) - 1;
const MSS_SHIFT: u32 = 12;
const WSCALE_SHIFT: u32 = 16;
const WSCALE_NONE: u32 = 0xf;
const TS_BIT: u32 = 1 << 20;
const SACK_BIT: u32 = 1 << 21;
/// The bits of the data that may be set.
const DATA_MASK: u32 = 0x3f_f000;

/// The SipHash key. The two hashes are told apart by a leading tag byte
/// (Linux keeps two keys; one 128-bit key with distinct inputs is the
/// same PRF argument, and keeps the IPVS settings the workers are sent
/// small).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Secret(pub [u64; 2]);

/// The client's SYN options a cookie carries (what the server's SYN is
/// given in its place).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Opts {
    /// A [`MSS_TABLE`] value.
    pub mss: u16,
    pub wscale: Option<u8>,
    pub sack: bool,
    pub ts: bool,
}

impl Opts {
    /// What a SYN's options become in a cookie: the MSS rounded down to
    /// the table (536 without an MSS option, RFC 9293's default), the
    /// window scale clamped to 14.
    pub fn from_syn(mss: Option<u16>, wscale: Option<u8>, sack: bool, ts: bool) -> Opts {
        Opts {
            mss: MSS_TABLE[mss_index(mss.unwrap_or(536))],
            wscale: wscale.map(|w| w.min(WSCALE_MAX)),
            sack,
            ts,
        }
    }

    fn data(&self) -> u32 {
        let ws = self
            .wscale
            .map_or(WSCALE_NONE, |w| w.min(WSCALE_MAX) as u32);
        (mss_index(self.mss) as u32) << MSS_SHIFT
            | ws << WSCALE_SHIFT
            | if self.ts { TS_BIT } else { 0 }
            | if self.sack { SACK_BIT } else { 0 }
    }

    fn from_data(d: u32) -> Option<Opts> {
        if d & !DATA_MASK != 0 {
            return None;
        }
        let mss = *MSS_TABLE.get(((d >> MSS_SHIFT) & 0xf) as usize)?;
        let ws = (d >> WSCALE_SHIFT) & 0xf;
        let wscale = match ws {
            WSCALE_NONE => None,
            w if w <= WSCALE_MAX as u32 => Some(w as u8),
            _ => return None,
        };
        Some(Opts {
            mss,
            wscale,
            sack: d & SACK_BIT != 0,
            ts: d & TS_BIT != 0,
        })
    }
}

fn mss_index(mss: u16) -> usize {
    MSS_TABLE.iter().rposition(|&m| mss >= m).unwrap_or(0)
}

/// The client and the VIP as the client's SYN names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub saddr: u32,
    pub daddr: u32,
    pub sport: u16,
    pub dport: u16,
}

/// Why an ACK's cookie was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// Made more than [`MAX_AGE`] counters ago (or in the future).
    Expired,
    /// Not a cookie of ours for this flow and ISN.
    Invalid,
}

/// The counter a cookie made at `now_ms` carries.
fn counter(now_ms: u64) -> u32 {
    (now_ms / PERIOD_MS) as u32
}

fn hash(s: &Secret, which: u8, f: &Flow, count: u32) -> u32 {
    let mut m = [0u8; 17];
    m[0] = which;
    m[1..5].copy_from_slice(&f.saddr.to_be_bytes());
    m[5..9].copy_from_slice(&f.daddr.to_be_bytes());
    m[9..11].copy_from_slice(&f.sport.to_be_bytes());
    m[11..13].copy_from_slice(&f.dport.to_be_bytes());
    m[13..17].copy_from_slice(&count.to_be_bytes());
    // The first hash leaves the counter out (Linux's `cookie_hash(..., 0, 0)`).
    let len = if which == 0 { 13 } else { 17 };
    siphash24(s.0[0], s.0[1], &m[..len]) as u32
}

/// The cookie for a SYN of `flow` with ISN `isn` and options `o`, at
/// `now_ms`.
pub fn encode(s: &Secret, flow: &Flow, isn: u32, now_ms: u64, o: &Opts) -> u32 {
    let count = counter(now_ms);
    hash(s, 0, flow, 0)
        .wrapping_add(isn)
        .wrapping_add(count << COOKIE_BITS)
        .wrapping_add(hash(s, 1, flow, count).wrapping_add(o.data()) & COOKIE_MASK)
}

/// The options of the SYN a cookie was made for, given the ACK that
/// returns it: `isn` is the ACK's sequence number minus one and `cookie`
/// its acknowledgment number minus one.
pub fn decode(s: &Secret, flow: &Flow, isn: u32, cookie: u32, now_ms: u64) -> Result<Opts, Reject> {
    let rest = cookie.wrapping_sub(hash(s, 0, flow, 0)).wrapping_sub(isn);
    let count = counter(now_ms);
    let age = count.wrapping_sub(rest >> COOKIE_BITS) & (u32::MAX >> COOKIE_BITS);
    if age > MAX_AGE {
        return Err(Reject::Expired);
    }
    let made = count.wrapping_sub(age);
    let d = rest.wrapping_sub(hash(s, 1, flow, made)) & COOKIE_MASK;
    Opts::from_data(d).ok_or(Reject::Invalid)
}

/// SipHash-2-4 (Aumasson and Bernstein), for messages under 256 bytes.
fn siphash24(k0: u64, k1: u64, m: &[u8]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    let mut words = m.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        let x = u64::from_le_bytes(b);
        v[3] ^= x;
        round(&mut v);
        round(&mut v);
        v[0] ^= x;
    }
    let mut last = [0u8; 8];
    let tail = words.remainder();
    last[..tail.len()].copy_from_slice(tail);
    last[7] = m.len() as u8;
    let x = u64::from_le_bytes(last);
    v[3] ^= x;
    round(&mut v);
    round(&mut v);
    v[0] ^= x;
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Secret = Secret([1, 2]);
    const F: Flow = Flow {
        saddr: 0x0a00_0002,
        daddr: 0x0a00_0064,
        sport: 40000,
        dport: 80,
    };

    #[test]
    fn siphash_matches_the_papers_vectors() {
        // Appendix A of the SipHash paper: key 00..0f, message 00..0e.
        let k0 = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        let k1 = u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]);
        let m: Vec<u8> = (0..15).collect();
        assert_eq!(siphash24(k0, k1, &m), 0xa129_ca61_49be_45e5);
        // The reference implementation's vectors.h: the empty message and
        // 8 bytes (a full word and a length-only last block).
        assert_eq!(siphash24(k0, k1, &[]), 0x726f_db47_dd0e_0e31);
        assert_eq!(siphash24(k0, k1, &m[..8]), 0x93f5_f579_9a93_2462);
    }

    #[test]
    fn every_option_combination_round_trips() {
        let now = 10 * PERIOD_MS + 123;
        let mut seen = std::collections::HashSet::new();
        for &mss in &MSS_TABLE {
            for wscale in [None, Some(0), Some(7), Some(14)] {
                for sack in [false, true] {
                    for ts in [false, true] {
                        let o = Opts {
                            mss,
                            wscale,
                            sack,
                            ts,
                        };
                        for isn in [0u32, 1, 0x8000_0000, u32::MAX] {
                            let c = encode(&S, &F, isn, now, &o);
                            assert_eq!(decode(&S, &F, isn, c, now), Ok(o), "{o:?} isn {isn}");
                            seen.insert(c);
                        }
                    }
                }
            }
        }
        // 4 MSS x 4 scales x 2 x 2 options, 4 ISNs: all distinct.
        assert_eq!(seen.len(), 4 * 4 * 2 * 2 * 4);
    }

    #[test]
    fn the_mss_is_rounded_down_to_the_table() {
        let cases = [
            (None, 536),
            (Some(100), 536),
            (Some(536), 536),
            (Some(1299), 536),
            (Some(1300), 1300),
            (Some(1448), 1440),
            (Some(1460), 1460),
            (Some(9000), 1460),
        ];
        for (mss, want) in cases {
            assert_eq!(Opts::from_syn(mss, None, false, false).mss, want, "{mss:?}");
        }
        assert_eq!(
            Opts::from_syn(None, Some(15), false, false).wscale,
            Some(14)
        );
        assert_eq!(
            Opts::from_syn(None, Some(255), false, false).wscale,
            Some(14)
        );
    }

    #[test]
    fn a_cookie_lasts_two_to_three_minutes() {
        let o = Opts::from_syn(Some(1460), Some(7), true, true);
        let made = 5 * PERIOD_MS + 59_999;
        let c = encode(&S, &F, 77, made, &o);
        // Good through the end of the counter two after its own.
        assert_eq!(decode(&S, &F, 77, c, 5 * PERIOD_MS), Ok(o));
        assert_eq!(decode(&S, &F, 77, c, 7 * PERIOD_MS + 59_999), Ok(o));
        assert_eq!(decode(&S, &F, 77, c, 8 * PERIOD_MS), Err(Reject::Expired));
        // A counter from the future is as old as 255 counters.
        assert_eq!(decode(&S, &F, 77, c, 4 * PERIOD_MS), Err(Reject::Expired));
    }

    #[test]
    fn wrong_cookies_are_rejected() {
        let now = 3 * PERIOD_MS;
        let o = Opts::from_syn(Some(1460), Some(7), true, true);
        let c = encode(&S, &F, 1000, now, &o);
        // Another flow, ISN or key: refused. A flipped bit in the
        // data's zero bits too; one in bits 12..=21 decodes to other
        // options, which only the first hash's secrecy keeps a client
        // from choosing.
        // A changed first hash moves the counter bits too, so those come
        // out Expired or Invalid, by the hash.
        let other = Flow { sport: 40001, ..F };
        assert!(decode(&S, &other, 1000, c, now).is_err());
        assert!(decode(&Secret([9, 2]), &F, 1000, c, now).is_err());
        assert!(decode(&Secret([1, 3]), &F, 1000, c, now).is_err());
        assert_eq!(decode(&S, &F, 1001, c, now), Err(Reject::Invalid));
        for bit in (0..12).chain([22, 23]) {
            assert_eq!(
                decode(&S, &F, 1000, c ^ (1 << bit), now),
                Err(Reject::Invalid),
                "bit {bit}"
            );
        }
        // Random ACKs: 3 in 256 carry a live counter, and of those about
        // 1 in 2^16 decodes (14 zero bits, 4 of 16 MSS indexes).
        let mut x = 0x1234_5678u32;
        let mut passed = 0;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if decode(&S, &F, 1000, x, now).is_ok() {
                passed += 1;
            }
        }
        assert!(passed < 30, "{passed} of 100000 random cookies passed");
    }
}
