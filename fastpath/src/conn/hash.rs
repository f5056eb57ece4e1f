//! The table's bucket hash: a seeded function of (protocol, client
//! address, client port), the fields both lookup directions know.
//!
//! It is a folded 64×64→128-bit multiply (the core of foldhash and
//! wyhash): one multiplication for IPv4, two for IPv6, no loops or tables.
//! Every output bit depends on every input bit, so the bucket index can be
//! taken from any bits.
//!
//! The seed is per table and secret in production (the daemon draws it
//! from the OS at start-up), as IPVS seeds its jhash with a random value:
//! without it anyone could aim a flood of tuples at one bucket. A folded
//! multiply with a secret multiplier is not a cryptographic PRF (siphash
//! is, at three times the cost); it stops blind collision floods, which is
//! the kernel's bar too.
//!
//! The hash is deliberately unrelated to [`super::owner_core`]: all
//! connections of one core share their RSS hash's low bits, and a bucket
//! index derived from those bits would use a fraction of the buckets.

use super::addr::Addr;

/// The per-table keys, expanded from the caller's seed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Seed([u64; 4]);

/// splitmix64's output function: turns any seed (including 0 and 1) into
/// well-spread keys.
const fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Seed {
    pub(super) const fn new(seed: u64) -> Seed {
        let mut x = seed;
        let k0 = splitmix(&mut x);
        let k1 = splitmix(&mut x);
        let k2 = splitmix(&mut x);
        let k3 = splitmix(&mut x);
        // Odd multipliers: the product never loses the low input bits.
        Seed([k0, k1 | 1, k2, k3 | 1])
    }

    #[inline(always)]
    pub(super) fn hash<A: Addr>(&self, proto: u8, addr: A, port: u16) -> u64 {
        let [hi, lo] = addr.words();
        let tail = (u64::from(port) << 8) | u64::from(proto);
        if A::LEN == 4 {
            // 32 + 16 + 8 bits: the whole key in one word, injectively.
            fold_mul((lo << 24 | tail) ^ self.0[0], self.0[1])
        } else {
            let h = fold_mul(hi ^ self.0[0], lo ^ self.0[2]);
            fold_mul(h ^ tail, self.0[3])
        }
    }
}

#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Maps a hash onto `0..n` without a division (Lemire's multiply-shift),
/// so the bucket count need not be a power of two: it equals the table
/// capacity, one head per slot.
#[inline(always)]
pub(super) fn reduce(h: u64, n: u32) -> usize {
    (((h >> 32) * u64::from(n)) >> 32) as usize
}
