//! The connection table's per-packet operations never touch the heap:
//! after `ConnTable::new`, a churn of inserts, lookups (single and burst,
//! both directions, templates), touches, removals, expiry and listing
//! makes zero allocations. The counting allocator counts per thread, so
//! the test harness's own threads cannot disturb the count.

use core::net::Ipv4Addr;
use fastpath::conn::{flags, secs, Conn, ConnId, ConnKey, ConnTable, ExpireAction, Tick};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: allocations during thread teardown are not ours.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(|c| c.get())
}

const TCP: u8 = 6;

#[test]
fn per_packet_operations_do_not_allocate() {
    let vip = Ipv4Addr::new(192, 168, 1, 100);
    let rs = Ipv4Addr::new(10, 1, 0, 5);
    let mut t: ConnTable = ConnTable::new(1024, 0x5eed);
    let mut ring = [ConnId(0); 2048];
    let mut keys = [ConnKey::new(TCP, vip, 0, vip, 80); 32];
    let mut out = [None; 32];
    let mut rng = 1u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let key = |r: u64| {
        ConnKey::new(
            TCP,
            Ipv4Addr::from_bits(r as u32),
            (r >> 32) as u16 | 1,
            vip,
            80,
        )
    };

    let before = allocs();
    let (mut ops, mut expired, mut listed) = (0u64, 0u64, 0u64);
    for step in 0..20_000u32 {
        let now: Tick = step / 4;
        let k = key(next());
        let mut c = Conn::new(k, rs, 8080);
        c.flags = if step % 2 == 0 {
            flags::MASQ
        } else {
            flags::DROUTE
        };
        c.timeout = secs(30 + step % 60);
        let slot = step as usize % ring.len();
        if let Ok(id) = t.insert(c, now) {
            ring[slot] = id;
        }
        let id = ring[(slot * 7) % ring.len()];
        if let Some(c) = t.get_mut(id) {
            c.count_in_pkt();
            let key = c.key_in();
            assert_eq!(t.lookup_in(&key), Some(id));
            t.touch(id, now);
        }
        t.lookup_out(&ConnKey::new(TCP, rs, 8080, k.src, k.sport));
        t.lookup_template(TCP, k.src, vip, 80);
        if step % 8 == 0 {
            for k in keys.iter_mut() {
                *k = key(next());
            }
            t.lookup_in_burst(&keys, &mut out);
            t.lookup_out_burst(&keys, &mut out);
        }
        if step % 3 == 0 {
            t.remove(ring[(slot * 13) % ring.len()]);
        }
        if step % 97 == 0 {
            t.expire_now(ring[(slot * 5) % ring.len()], now);
        }
        let r = t.expire(now, 64, |_, c| {
            if c.n_control > 0 {
                ExpireAction::Rearm(secs(60))
            } else {
                ExpireAction::Remove
            }
        });
        expired += u64::from(r.removed);
        if step % 1000 == 0 {
            let mut cursor = Some(0);
            while let Some(c) = cursor {
                cursor = t.page(c, 256, |_, _| listed += 1);
            }
        }
        // insert, get_mut, lookup_in, touch, lookup_out, lookup_template,
        // expire; bursts, removals and listings come on top.
        ops += 7;
    }
    assert_eq!(allocs() - before, 0);
    // The churn did what it claims: the table filled, expired and listed.
    assert!(ops >= 100_000);
    assert!(expired > 2_000, "{expired}");
    assert!(listed > 0 && t.refused() > 0, "{listed} {}", t.refused());
}
