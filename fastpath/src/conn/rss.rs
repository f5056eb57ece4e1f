//! Which core owns a connection (design 2): a pure function of the client
//! endpoint, the same for the NIC, every worker and the control thread.
//!
//! The function is what NICs compute: the Toeplitz hash with Microsoft's
//! standard RSS key over the client address and port (network order,
//! address first), then a redirection table (RETA). So where the NIC can
//! hash on source fields only on the client-facing port and on destination
//! fields only on the server-facing port (DPDK `RTE_ETH_RSS_L3_SRC_ONLY |
//! RTE_ETH_RSS_L4_SRC_ONLY`, resp. `_DST_ONLY`), programmed with
//! [`RSS_KEY`] and a RETA filled by [`reta_entry`], hardware delivers every
//! packet, NAT replies included, straight to its owner. Where it cannot,
//! workers compute the same value and redirect. Whether a NIC really
//! hashes the selected fields in this order can be checked at run time:
//! DPDK hands over the NIC's hash in `mbuf.hash.rss`, which must then
//! equal [`rss_hash`].
//!
//! A simpler fixed mixer would be cheaper in software, but could never be
//! matched by hardware; and a seeded hash would give each party a
//! different owner. Toeplitz is linear, so anyone can aim traffic at one
//! core, exactly as with NIC RSS; the per-core tables' own hash is seeded
//! and independent of this one (see `hash.rs`).
//!
//! Cost: a table-driven Toeplitz (one 256-entry table per input byte, built
//! at compile time): six loads and xors for IPv4, and one division for the
//! core number.

use super::addr::Addr;

/// The key of Microsoft's RSS specification and its verification suite;
/// the daemon programs it into NICs that hash for [`owner_core`].
pub const RSS_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// The owner is chosen by the hash's low 7 bits, as a 128-entry RETA
/// does. Every NIC RETA size we know (128 to 2048) is a multiple of 128,
/// so a RETA of any of those sizes filled with [`reta_entry`] maps each
/// hash to the same core as [`owner_core`]. It also caps useful workers
/// per director at 128.
pub const RSS_RETA_BASE: usize = 128;

/// Longest Toeplitz input with a table: an IPv6 address and a port.
const TABLE_BYTES: usize = 18;

/// `TABLES[i][b]`: the hash contribution of byte value `b` at input
/// position `i`, i.e. the xor of the 32-bit key windows of its set bits.
static TABLES: [[u32; 256]; TABLE_BYTES] = build_tables(&RSS_KEY);

const fn window(key: &[u8; 40], bit: usize) -> u32 {
    // The 32 key bits starting at `bit` (MSB first): from 5 bytes.
    let i = bit / 8;
    let mut w: u64 = 0;
    let mut j = 0;
    while j < 5 {
        w = (w << 8) | key[i + j] as u64;
        j += 1;
    }
    (w >> (8 - bit % 8)) as u32
}

const fn build_tables(key: &[u8; 40]) -> [[u32; 256]; TABLE_BYTES] {
    let mut t = [[0u32; 256]; TABLE_BYTES];
    let mut pos = 0;
    while pos < TABLE_BYTES {
        let mut b = 0;
        while b < 256 {
            let mut v = 0u32;
            let mut bit = 0;
            while bit < 8 {
                if b & (0x80 >> bit) != 0 {
                    v ^= window(key, pos * 8 + bit);
                }
                bit += 1;
            }
            t[pos][b] = v;
            b += 1;
        }
        pos += 1;
    }
    t
}

/// Toeplitz hash of up to 18 bytes with [`RSS_KEY`].
#[inline]
pub(super) fn toeplitz_fast(input: &[u8]) -> u32 {
    let mut h = 0;
    for (t, &b) in TABLES.iter().zip(input) {
        h ^= t[b as usize];
    }
    h
}

/// The Toeplitz hash, bit by bit as the Microsoft RSS specification
/// defines it, for any key and input of up to `key.len() - 4` bytes (the
/// rest is ignored). For verification and tests; [`rss_hash`] is the fast
/// form.
pub fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
    let n = input.len().min(key.len().saturating_sub(4));
    let mut h = 0u32;
    for (i, &byte) in input[..n].iter().enumerate() {
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                let k = i * 8 + bit;
                let w = key[k / 8..k / 8 + 5]
                    .iter()
                    .fold(0u64, |w, &b| (w << 8) | u64::from(b));
                h ^= (w >> (8 - k % 8)) as u32;
            }
        }
    }
    h
}

/// The NIC's RSS hash of a client endpoint: Toeplitz with [`RSS_KEY`] over
/// the address then the port, both in network order.
#[inline]
pub fn rss_hash<A: Addr>(addr: A, port: u16) -> u32 {
    let mut buf = [0u8; TABLE_BYTES];
    let mut a = [0u8; 16];
    addr.write_octets(&mut a);
    buf[..A::LEN].copy_from_slice(&a[..A::LEN]);
    buf[A::LEN..A::LEN + 2].copy_from_slice(&port.to_be_bytes());
    toeplitz_fast(&buf[..A::LEN + 2])
}

/// The worker (0..ncores) that owns every connection of this client
/// endpoint. `ncores == 0` gives 0.
#[inline]
pub fn owner_core<A: Addr>(caddr: A, cport: u16, ncores: usize) -> usize {
    reta_entry(rss_hash(caddr, cport) as usize, ncores)
}

/// What RETA entry `i` must hold so the NIC agrees with [`owner_core`].
#[inline]
pub fn reta_entry(i: usize, ncores: usize) -> usize {
    // Clamping is exact: slot < RSS_RETA_BASE, so slot % n == slot for any
    // n >= RSS_RETA_BASE. u32 division is the cheap one.
    let slot = (i & (RSS_RETA_BASE - 1)) as u32;
    (slot % ncores.clamp(1, RSS_RETA_BASE) as u32) as usize
}
