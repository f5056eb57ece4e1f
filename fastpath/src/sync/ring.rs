//! The per-worker ring that carries sync candidates to the sync thread:
//! one producer (the worker), one consumer, fixed size, lossy when full.
//!
//! Each slot is a few `AtomicU64` words, so the ring needs no `unsafe`:
//! the producer writes a record's words with relaxed stores and publishes
//! it with a release store of its tail; the consumer reads the words after
//! an acquire load of the tail and frees the slot with a release store of
//! its head. No read-modify-write anywhere, so the worker pays a few
//! stores per record and never contends for a line it does not own
//! except when it looks at the consumer's head, which it caches.

use super::record::{SyncConn, WORDS};
use crate::stats::Counter;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

#[repr(align(64))]
struct Padded(AtomicU32);

struct Ring {
    slots: Box<[[AtomicU64; WORDS]]>,
    mask: u32,
    /// Next slot the consumer reads (written by the consumer only).
    head: Padded,
    /// Next slot the producer writes (written by the producer only).
    tail: Padded,
    /// Records lost to a full ring (written by the producer only).
    drops: Counter,
}

/// The worker's end.
pub struct Producer {
    ring: Arc<Ring>,
    tail: u32,
    /// The consumer's head as last read: re-read only when the ring looks
    /// full, so a push normally touches no line the consumer writes.
    head: u32,
}

/// The sync thread's end.
pub struct Consumer {
    ring: Arc<Ring>,
    head: u32,
}

/// Records a ring lost, readable from anywhere.
#[derive(Clone)]
pub struct Drops(Arc<Ring>);

impl Drops {
    pub fn get(&self) -> u64 {
        self.0.drops.get()
    }
}

/// A ring of at least `capacity` records (rounded up to a power of two).
pub fn ring(capacity: usize) -> (Producer, Consumer) {
    let n = capacity.clamp(2, 1 << 24).next_power_of_two();
    let ring = Arc::new(Ring {
        slots: (0..n).map(|_| Default::default()).collect(),
        mask: n as u32 - 1,
        head: Padded(AtomicU32::new(0)),
        tail: Padded(AtomicU32::new(0)),
        drops: Counter::default(),
    });
    (
        Producer {
            ring: ring.clone(),
            tail: 0,
            head: 0,
        },
        Consumer { ring, head: 0 },
    )
}

impl Producer {
    /// Queues `r`; a full ring loses it and counts the loss.
    #[inline]
    pub fn push(&mut self, r: &SyncConn) -> bool {
        let ring = &*self.ring;
        if self.tail.wrapping_sub(self.head) > ring.mask {
            self.head = ring.head.0.load(Ordering::Acquire);
            if self.tail.wrapping_sub(self.head) > ring.mask {
                ring.drops.add(1);
                return false;
            }
        }
        let slot = &ring.slots[(self.tail & ring.mask) as usize];
        for (w, v) in slot.iter().zip(r.to_words()) {
            w.store(v, Ordering::Relaxed);
        }
        self.tail = self.tail.wrapping_add(1);
        ring.tail.0.store(self.tail, Ordering::Release);
        true
    }

    /// Records lost so far.
    pub fn drops(&self) -> u64 {
        self.ring.drops.get()
    }
}

impl Consumer {
    /// The next record, if any.
    pub fn pop(&mut self) -> Option<SyncConn> {
        let ring = &*self.ring;
        let tail = ring.tail.0.load(Ordering::Acquire);
        if tail == self.head {
            return None;
        }
        let slot = &ring.slots[(self.head & ring.mask) as usize];
        let mut words = [0u64; WORDS];
        for (v, w) in words.iter_mut().zip(slot) {
            *v = w.load(Ordering::Relaxed);
        }
        self.head = self.head.wrapping_add(1);
        ring.head.0.store(self.head, Ordering::Release);
        Some(SyncConn::from_words(words))
    }

    /// Records the producer lost to a full ring.
    pub fn drops(&self) -> u64 {
        self.ring.drops.get()
    }

    /// A view of the loss count that outlives the consumer (final counters).
    pub fn drops_view(&self) -> Drops {
        Drops(self.ring.clone())
    }

    /// Records waiting.
    pub fn len(&self) -> usize {
        self.ring
            .tail
            .0
            .load(Ordering::Acquire)
            .wrapping_sub(self.head) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn rec(i: u32) -> SyncConn {
        SyncConn {
            proto: 6,
            state: 1,
            flags: 0x0103,
            caddr: Ipv4Addr::from_bits(i),
            cport: i as u16,
            vaddr: Ipv4Addr::new(10, 0, 0, 100),
            vport: 80,
            daddr: Ipv4Addr::new(10, 1, 0, 1),
            dport: 8080,
            timeout_s: 900,
            svc: 7,
            dest: i,
            controlled: i.is_multiple_of(2),
            template_only: i.is_multiple_of(3),
        }
    }

    #[test]
    fn records_arrive_in_order_and_a_full_ring_counts_its_losses() {
        let (mut p, mut c) = ring(4);
        for i in 0..6 {
            assert_eq!(p.push(&rec(i)), i < 4);
        }
        assert_eq!(p.drops(), 2);
        assert_eq!(c.len(), 4);
        for i in 0..4 {
            assert_eq!(c.pop(), Some(rec(i)));
        }
        assert_eq!(c.pop(), None);
        // Space freed by the consumer is seen by the producer.
        assert!(p.push(&rec(9)));
        assert_eq!(c.pop(), Some(rec(9)));
        assert_eq!(c.drops(), 2);
    }

    #[test]
    fn two_threads_lose_nothing_while_the_consumer_keeps_up() {
        let (mut p, mut c) = ring(64);
        const N: u32 = 200_000;
        let t = std::thread::spawn(move || {
            let mut i = 0;
            while i < N {
                if p.push(&rec(i)) {
                    i += 1;
                } else {
                    std::thread::yield_now();
                }
            }
        });
        let mut next = 0;
        while next < N {
            if let Some(r) = c.pop() {
                assert_eq!(r, rec(next), "record {next} torn or out of order");
                next += 1;
            }
        }
        t.join().unwrap();
        assert_eq!(c.pop(), None);
    }
}
