//! Which VIPs this director holds right now: those of no VRRP instance
//! always; those of an instance only while it is master here.
//!
//! The VRRP thread decides and the workers obey within their next packet,
//! with no snapshot in between: each VIP carries the index of the
//! instance that owns it (fixed by the config, delivered with the
//! service snapshot), and whether each instance is master is one bit of
//! a word the VRRP thread alone writes. A takeover is then one store, not
//! a table rebuilt on the control thread, which may be busy with a long
//! listing just when the master dies.

use core::net::Ipv4Addr;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// The gate index of a VIP no instance owns.
pub const UNGATED: u8 = u8::MAX;
/// Instances a director can run: one bit each.
pub const MAX_INSTANCES: usize = 64;

/// Bit `i`: instance `i` is master here. One writer (the VRRP thread).
#[derive(Debug, Default)]
pub struct Mastery(AtomicU64);

impl Mastery {
    pub fn set(&self, mask: u64) {
        self.0.store(mask, Relaxed);
    }
    pub fn mask(&self) -> u64 {
        self.0.load(Relaxed)
    }
    #[inline]
    pub fn is_master(&self, instance: u8) -> bool {
        (instance as usize) < MAX_INSTANCES && self.0.load(Relaxed) & (1 << instance) != 0
    }
}

/// The sorted, deduplicated union of the service VIPs `vips` and the
/// instances' addresses `owned` (address, instance), and each one's gate
/// index. Built by the control thread, never by a worker. An address
/// that two instances name keeps the first; the config refuses that
/// anyway.
pub fn gated(vips: &[Ipv4Addr], owned: &[(Ipv4Addr, u8)]) -> (Arc<[Ipv4Addr]>, Arc<[u8]>) {
    let mut all: Vec<(Ipv4Addr, u8)> = vips.iter().map(|&v| (v, UNGATED)).collect();
    all.extend_from_slice(owned);
    // Owned entries sort before the ungated entry of the same address.
    all.sort_by_key(|&(a, g)| (a, g));
    all.dedup_by_key(|&mut (a, _)| a);
    if owned.is_empty() {
        return (all.iter().map(|&(a, _)| a).collect(), Arc::from([]));
    }
    (
        all.iter().map(|&(a, _)| a).collect(),
        all.iter().map(|&(_, g)| g).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn owned_addresses_join_the_vips_with_their_instance() {
        let (v, g) = gated(
            &[a("10.0.0.3"), a("10.0.0.1")],
            &[(a("10.0.0.1"), 0), (a("10.0.0.2"), 1)],
        );
        assert_eq!(&*v, &[a("10.0.0.1"), a("10.0.0.2"), a("10.0.0.3")]);
        assert_eq!(&*g, &[0, 1, UNGATED]);
        let (v, g) = gated(&[a("10.0.0.3")], &[]);
        assert_eq!((&*v, g.len()), (&[a("10.0.0.3")][..], 0));
    }

    #[test]
    fn mastery_is_one_bit_per_instance() {
        let m = Mastery::default();
        m.set(0b101);
        assert!(m.is_master(0) && !m.is_master(1) && m.is_master(2));
        assert!(!m.is_master(64) && !m.is_master(UNGATED));
    }
}
