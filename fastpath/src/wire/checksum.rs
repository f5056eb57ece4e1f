//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! The data plane rewrites addresses and ports far more often than it builds
//! packets, so the incremental form is the one on the hot path: it costs a
//! few adds instead of a pass over the payload.

/// One's-complement sum of `data` (big-endian 16-bit words, odd byte padded),
/// added to `initial`, not folded.
pub fn sum(data: &[u8], initial: u32) -> u32 {
    let mut acc = initial as u64;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        acc += u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as u64;
    }
    let rest = chunks.remainder();
    let mut i = 0;
    while i + 1 < rest.len() {
        acc += u16::from_be_bytes([rest[i], rest[i + 1]]) as u64;
        i += 2;
    }
    if i < rest.len() {
        acc += (rest[i] as u64) << 8;
    }
    // Fold 64 → 32 bits without losing carries.
    let folded = (acc & 0xffff_ffff) + (acc >> 32);
    ((folded & 0xffff_ffff) + (folded >> 32)) as u32
}

/// [`sum`] of a 20-byte IPv4 header (no options), the common case, as
/// five word loads instead of the general loop.
#[inline]
pub fn sum20(h: &[u8; 20], initial: u32) -> u32 {
    let w = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]) as u64;
    let acc = initial as u64 + w(0) + w(4) + w(8) + w(12) + w(16);
    let folded = (acc & 0xffff_ffff) + (acc >> 32);
    ((folded & 0xffff_ffff) + (folded >> 32)) as u32
}

/// Folds a 32-bit one's-complement sum to 16 bits. Two rounds always
/// suffice: the first leaves at most 0x1fffe, the second at most 0xffff.
#[inline]
pub fn fold(s: u32) -> u16 {
    let s = (s & 0xffff) + (s >> 16);
    ((s & 0xffff) + (s >> 16)) as u16
}

/// The checksum field value for `data` (complement of the folded sum).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data, 0))
}

/// RFC 1624 eqn. 3: the new checksum after a 16-bit word changes from `old`
/// to `new`.
#[inline]
pub fn update16(csum: u16, old: u16, new: u16) -> u16 {
    !fold((!csum as u32) + (!old as u32) + new as u32)
}

/// Like [`update16`] for a 32-bit field (an IPv4 address).
#[inline]
pub fn update32(csum: u16, old: u32, new: u32) -> u16 {
    !fold(!csum as u32 + delta32(old, new))
}

/// [`update32`] for an address and then [`update16`] for a port, as NAT
/// rewrites a TCP or UDP checksum, in one fold.
///
/// Folding once at the end gives exactly what chained updates give, for
/// every input. Both are congruent to the same sum modulo 0xffff and lie
/// in 0..=0xffff, where only 0 and 0xffff share a class; a fold yields 0
/// only from a zero sum, and a chain reaches 0 only if its start and every
/// delta are 0, which is when the single sum is 0 as well.
#[inline]
pub fn update_addr_port(csum: u16, old_a: u32, new_a: u32, old_p: u16, new_p: u16) -> u16 {
    !fold(!csum as u32 + delta32(old_a, new_a) + !old_p as u32 + new_p as u32)
}

/// The one's-complement difference of a 32-bit field's change, unfolded.
#[inline]
fn delta32(old: u32, new: u32) -> u32 {
    !(old >> 16) as u16 as u32 + (new >> 16) + !(old as u16) as u32 + (new & 0xffff)
}

/// Pseudo-header sum for TCP/UDP over IPv4.
pub fn pseudo_header_v4(
    src: core::net::Ipv4Addr,
    dst: core::net::Ipv4Addr,
    proto: u8,
    len: u16,
) -> u32 {
    let s = src.to_bits();
    let d = dst.to_bits();
    (s >> 16) + (s & 0xffff) + (d >> 16) + (d & 0xffff) + proto as u32 + len as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3 example: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&d, 0)), 0xddf2);
        assert_eq!(checksum(&d), !0xddf2);
    }

    #[test]
    fn sum20_is_sum() {
        let mut h = [0u8; 20];
        for seed in 0..64u32 {
            for (i, b) in h.iter_mut().enumerate() {
                *b = (seed.wrapping_mul(2654435761).rotate_left(i as u32) >> 7) as u8 | 0x80;
            }
            for init in [0, 1, 0xffff, 0x1234_5678, u32::MAX] {
                assert_eq!(sum20(&h, init), sum(&h, init), "seed {seed} init {init:#x}");
            }
        }
        assert_eq!(sum20(&[0xff; 20], u32::MAX), sum(&[0xff; 20], u32::MAX));
    }

    #[test]
    fn fold_matches_the_loop() {
        let slow = |mut s: u32| {
            while s >> 16 != 0 {
                s = (s & 0xffff) + (s >> 16);
            }
            s as u16
        };
        for s in [
            0,
            1,
            0xffff,
            0x1_0000,
            0x1_fffe,
            0x1_ffff,
            0xffff_0000,
            0xffff_ffff,
        ] {
            assert_eq!(fold(s), slow(s), "{s:#x}");
        }
        for i in 0..100_000u32 {
            let s = i.wrapping_mul(0x9e37_79b9);
            assert_eq!(fold(s), slow(s), "{s:#x}");
        }
    }

    #[test]
    fn one_fold_equals_chained_updates() {
        let chained32 = |c, o: u32, n: u32| {
            let c = update16(c, (o >> 16) as u16, (n >> 16) as u16);
            update16(c, o as u16, n as u16)
        };
        let edges = [0u32, 1, 0xffff, 0xfffe, 0x1_0000, 0xffff_0000, 0xffff_ffff];
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u32
        };
        let mut cases: Vec<(u16, u32, u32, u16, u16)> = Vec::new();
        for &a in &edges {
            for &b in &edges {
                for c in [0u16, 1, 0xfffe, 0xffff] {
                    cases.push((c, a, b, a as u16, b as u16));
                    cases.push((c, a, b, !(a as u16), b as u16));
                }
            }
        }
        for _ in 0..200_000 {
            let (c, a, b, p) = (next(), next(), next(), next());
            cases.push((c as u16, a, b, p as u16, (p >> 16) as u16));
        }
        for (c, oa, na, op, np) in cases {
            assert_eq!(
                update32(c, oa, na),
                chained32(c, oa, na),
                "{c:#x} {oa:#x} {na:#x}"
            );
            assert_eq!(
                update_addr_port(c, oa, na, op, np),
                update16(chained32(c, oa, na), op, np),
                "{c:#x} {oa:#x} {na:#x} {op:#x} {np:#x}"
            );
        }
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(fold(sum(&[0x12, 0x34, 0x56], 0)), 0x1234 + 0x5600);
    }

    #[test]
    fn incremental_matches_full_recompute() {
        let mut d = [
            0x45u8, 0, 0, 0x54, 0x12, 0x34, 0x40, 0, 0x40, 1, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1,
        ];
        let c = checksum(&d);
        d[10..12].copy_from_slice(&c.to_be_bytes());
        // Rewrite the destination address and update incrementally.
        let old = u32::from_be_bytes([d[16], d[17], d[18], d[19]]);
        let new = u32::from_be_bytes([192, 168, 7, 9]);
        d[16..20].copy_from_slice(&new.to_be_bytes());
        let inc = update32(c, old, new);
        d[10] = 0;
        d[11] = 0;
        assert_eq!(inc, checksum(&d));
        // A whole header with its checksum in place sums to 0xffff.
        d[10..12].copy_from_slice(&inc.to_be_bytes());
        assert_eq!(fold(sum(&d, 0)), 0xffff);
    }
}
