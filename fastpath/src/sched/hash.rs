//! The kernel hash functions the hashing schedulers depend on. They must be
//! bit-exact: a different hash would send clients to different real servers
//! than a kernel director with the same configuration.

use core::net::IpAddr;

/// `GOLDEN_RATIO_32` of `include/linux/hash.h`.
pub const GOLDEN_RATIO_32: u32 = 0x61C8_8647;

/// The kernel's generic `hash_32(val, bits)`: multiply by the golden ratio
/// modulo 2^32 and keep the top `bits` bits. `bits` is 1..=32.
#[inline]
pub const fn hash_32(val: u32, bits: u32) -> u32 {
    val.wrapping_mul(GOLDEN_RATIO_32) >> (32 - bits)
}

/// The address as the schedulers fold it into 32 bits, in host order
/// (`ntohl`): IPv4 as is, IPv6 as the XOR of its four 32-bit words.
#[inline]
pub fn fold_addr(a: IpAddr) -> u32 {
    match a {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => {
            let o = a.octets();
            let w = |k: usize| u32::from_be_bytes([o[k], o[k + 1], o[k + 2], o[k + 3]]);
            w(0) ^ w(4) ^ w(8) ^ w(12)
        }
    }
}

/// `hsiphash_key_t` on a 64-bit kernel: two 64-bit words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HsipKey(pub [u64; 2]);

/// SipHash with `C` compression and `D` finalisation rounds, 64-bit output,
/// laid out as the kernel's `lib/siphash.c` (which follows the reference
/// implementation): message words little-endian, length in the top byte.
fn sip<const C: usize, const D: usize>(key: [u64; 2], data: &[u8]) -> u64 {
    let mut v = [
        0x736f_6d65_7073_6575 ^ key[0],
        0x646f_7261_6e64_6f6d ^ key[1],
        0x6c79_6765_6e65_7261 ^ key[0],
        0x7465_6462_7974_6573 ^ key[1],
    ];
    let round = |v: &mut [u64; 4]| {
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
    };
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let m = u64::from_le_bytes(w);
        v[3] ^= m;
        for _ in 0..C {
            round(&mut v);
        }
        v[0] ^= m;
    }
    let mut b = (data.len() as u64) << 56;
    for (k, &byte) in chunks.remainder().iter().enumerate() {
        b |= u64::from(byte) << (8 * k);
    }
    v[3] ^= b;
    for _ in 0..C {
        round(&mut v);
    }
    v[0] ^= b;
    v[2] ^= 0xff;
    for _ in 0..D {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// SipHash-1-3 with 64-bit output (the function CPython uses for `hash`).
pub fn siphash13(key: [u64; 2], data: &[u8]) -> u64 {
    sip::<1, 3>(key, data)
}

/// The kernel's `hsiphash` on 64-bit machines: "HalfSipHash" there is
/// really SipHash-1-3, truncated to 32 bits. (32-bit kernels run true
/// HalfSipHash and would build different mh tables; ripvs follows x86-64.)
pub fn hsiphash(key: &HsipKey, data: &[u8]) -> u32 {
    siphash13(key.0, data) as u32
}

/// `hsiphash(&v, sizeof(v), key)` for a `u32` in memory on a
/// little-endian machine, which is how ip_vs_mh.c hashes its keys. Equal
/// to the kernel's `hsiphash_1u32(v, key)`.
pub fn hsiphash_u32(key: &HsipKey, v: u32) -> u32 {
    hsiphash(key, &v.to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn siphash24(key: [u64; 2], data: &[u8]) -> u64 {
        sip::<2, 4>(key, data)
    }

    /// Key 00 01 .. 0f, as in the SipHash paper and the kernel self-test.
    const KEY: [u64; 2] = [0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908];

    /// SipHash-2-4 reference vectors (veorq/SipHash, also lib/siphash_kunit.c):
    /// input i = bytes 0..i.
    const SIP24: [u64; 64] = [
        0x726fdb47dd0e0e31,
        0x74f839c593dc67fd,
        0x0d6c8009d9a94f5a,
        0x85676696d7fb7e2d,
        0xcf2794e0277187b7,
        0x18765564cd99a68d,
        0xcbc9466e58fee3ce,
        0xab0200f58b01d137,
        0x93f5f5799a932462,
        0x9e0082df0ba9e4b0,
        0x7a5dbbc594ddb9f3,
        0xf4b32f46226bada7,
        0x751e8fbc860ee5fb,
        0x14ea5627c0843d90,
        0xf723ca908e7af2ee,
        0xa129ca6149be45e5,
        0x3f2acc7f57c29bdb,
        0x699ae9f52cbe4794,
        0x4bc1b3f0968dd39c,
        0xbb6dc91da77961bd,
        0xbed65cf21aa2ee98,
        0xd0f2cbb02e3b67c7,
        0x93536795e3a33e88,
        0xa80c038ccd5ccec8,
        0xb8ad50c6f649af94,
        0xbce192de8a85b8ea,
        0x17d835b85bbb15f3,
        0x2f2e6163076bcfad,
        0xde4daaaca71dc9a5,
        0xa6a2506687956571,
        0xad87a3535c49ef28,
        0x32d892fad841c342,
        0x7127512f72f27cce,
        0xa7f32346f95978e3,
        0x12e0b01abb051238,
        0x15e034d40fa197ae,
        0x314dffbe0815a3b4,
        0x027990f029623981,
        0xcadcd4e59ef40c4d,
        0x9abfd8766a33735c,
        0x0e3ea96b5304a7d0,
        0xad0c42d6fc585992,
        0x187306c89bc215a9,
        0xd4a60abcf3792b95,
        0xf935451de4f21df2,
        0xa9538f0419755787,
        0xdb9acddff56ca510,
        0xd06c98cd5c0975eb,
        0xe612a3cb9ecba951,
        0xc766e62cfcadaf96,
        0xee64435a9752fe72,
        0xa192d576b245165a,
        0x0a8787bf8ecb74b2,
        0x81b3e73d20b49b6f,
        0x7fa8220ba3b2ecea,
        0x245731c13ca42499,
        0xb78dbfaf3a8d83bd,
        0xea1ad565322a1a0b,
        0x60e61c23a3795013,
        0x6606d7e446282b93,
        0x6ca4ecb15c5f91e1,
        0x9f626da15c9625f3,
        0xe51b38608ef25f57,
        0x958a324ceb064572,
    ];

    /// The kernel's own hsiphash self-test vectors for BITS_PER_LONG == 64
    /// (lib/siphash_kunit.c), same key and inputs as above.
    const HSIP64: [u32; 64] = [
        0x050fc4dc, 0x7d57ca93, 0x4dc7d44d, 0xe7ddf7fb, 0x88d38328, 0x49533b67, 0xc59f22a7,
        0x9bb11140, 0x8d299a8e, 0x6c063de4, 0x92ff097f, 0xf94dc352, 0x57b4d9a2, 0x1229ffa7,
        0xc0f95d34, 0x2a519956, 0x7d908b66, 0x63dbd80c, 0xb473e63e, 0x8d297d1c, 0xa6cce040,
        0x2b45f844, 0xa320872e, 0xdae6c123, 0x67349c8c, 0x705b0979, 0xca9913a5, 0x4ade3b35,
        0xef6cd00d, 0x4ab1e1f4, 0x43c5e663, 0x8c21d1bc, 0x16a7b60d, 0x7a8ff9bf, 0x1f2a753e,
        0xbf186b91, 0xada26206, 0xa3c33057, 0xae3a36a1, 0x7b108392, 0x99e41531, 0x3f1ad944,
        0xc8138825, 0xc28949a6, 0xfaf8876b, 0x9f042196, 0x68b1d623, 0x8b5114fd, 0xdf074c46,
        0x12cc86b3, 0x0a52098f, 0x9d292f9a, 0xa2f41f12, 0x43a71ed0, 0x73f0bce6, 0x70a7e980,
        0x243c6d75, 0xfdb71513, 0xa67d8a08, 0xb7e8f148, 0xf7a644ee, 0x0f1837f2, 0x4b6694e0,
        0xb7bbb3a8,
    ];

    fn input(n: usize) -> Vec<u8> {
        (0..n as u8).collect()
    }

    #[test]
    fn siphash24_reference_vectors() {
        for (n, &want) in SIP24.iter().enumerate() {
            assert_eq!(siphash24(KEY, &input(n)), want, "length {n}");
        }
    }

    #[test]
    fn hsiphash_kernel_self_test_vectors() {
        let key = HsipKey(KEY);
        for (n, &want) in HSIP64.iter().enumerate() {
            assert_eq!(hsiphash(&key, &input(n)), want, "length {n}");
        }
        // The kernel also checks hsiphash_1u32(0x03020100) == vector[4].
        assert_eq!(hsiphash_u32(&key, 0x0302_0100), HSIP64[4]);
    }

    /// CPython (>= 3.11) hashes bytes with SipHash-1-3, and with
    /// PYTHONHASHSEED=0 its key is all zeros. Reproduce with
    /// `PYTHONHASHSEED=0 python3 -c "print(hash(bytes(range(N))) % 2**64)"`
    /// (N > 0; CPython maps a result of -1 to -2, which none of these is).
    #[test]
    fn siphash13_matches_cpython() {
        let cases: [(usize, u64); 4] = [
            (1, 0x68a914128e01e473),
            (4, 0x7cc43f98813e4dbd),
            (8, 0xead411e67ebe2eea),
            (15, 0xf30eb725bb91c9ea),
        ];
        for (n, want) in cases {
            assert_eq!(siphash13([0, 0], &input(n)), want, "length {n}");
        }
    }

    #[test]
    fn hash_32_is_the_top_bits_of_a_golden_ratio_product() {
        // Independent of the implementation: widen, multiply, reduce.
        let reference =
            |x: u32, bits: u32| ((u64::from(x) * 0x61C8_8647) & 0xffff_ffff) >> (32 - bits);
        assert_eq!(hash_32(1, 8), 0x61);
        assert_eq!(hash_32(0, 8), 0);
        for x in [
            1u32,
            0x0a00_0001,
            0xc0a8_0101,
            0xffff_ffff,
            0x8000_0000,
            12345,
        ] {
            for bits in [8, 10, 32] {
                assert_eq!(
                    u64::from(hash_32(x, bits)),
                    reference(x, bits),
                    "{x:#x} {bits}"
                );
            }
        }
    }

    #[test]
    fn fold_v6_xors_the_four_words() {
        let a: IpAddr = "2001:db8::1:0:0:1".parse().unwrap();
        assert_eq!(fold_addr(a), 0x2001_0db8 ^ 0x0001_0000 ^ 0x0000_0001);
        assert_eq!(fold_addr("192.168.1.1".parse().unwrap()), 0xc0a8_0101);
    }
}
