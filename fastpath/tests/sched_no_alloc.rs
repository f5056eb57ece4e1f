//! `Scheduler::schedule` and `Scheduler::tick` run on data-plane cores and
//! must never touch the heap. A counting global allocator sees every
//! allocation in this test process; after `update` (control path, may
//! allocate), thousands of schedules of every scheduler, with new clients
//! and destinations (lblc/lblcr fill their tables, GC runs), fallbacks and
//! failures, must allocate nothing.

use core::net::{IpAddr, Ipv4Addr};
use fastpath::sched::{self, Dests, Flags, Kind, Packet};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{allocations, Counting};

#[global_allocator]
static A: Counting = Counting;

/// Fixed-size servers: building this does not allocate.
struct Eight {
    weight: [u32; 8],
    overloaded: [bool; 8],
    active: [u32; 8],
}

impl Dests for Eight {
    fn len(&self) -> usize {
        8
    }
    fn addr(&self, i: usize) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8 + 1))
    }
    fn port(&self, _i: usize) -> u16 {
        80
    }
    fn weight(&self, i: usize) -> u32 {
        self.weight[i]
    }
    fn last_weight(&self, i: usize) -> u32 {
        self.weight[i].max(1)
    }
    fn overloaded(&self, i: usize) -> bool {
        self.overloaded[i]
    }
    fn active(&self, i: usize) -> u32 {
        self.active[i]
    }
    fn inactive(&self, i: usize) -> u32 {
        self.active[i] / 2
    }
}

#[test]
fn schedule_and_tick_do_not_allocate() {
    let flags = Flags {
        sh_fallback: true,
        sh_port: true,
        mh_fallback: true,
        mh_port: true,
    };
    for kind in Kind::ALL {
        for flags in [Flags::default(), flags] {
            let mut d = Eight {
                weight: [1, 2, 0, 4, 5, 1, 3, 2],
                overloaded: [false, false, false, true, false, false, false, false],
                active: [0; 8],
            };
            let mut s = sched::new(kind, flags);
            s.update(&d);
            let before = allocations();
            let mut chosen = 0u32;
            for k in 0u32..20_000 {
                let p = Packet {
                    src: IpAddr::V4(Ipv4Addr::from(0xc000_0000 + k)),
                    dst: IpAddr::V4(Ipv4Addr::from(0xcb00_0000 + k % 5000)),
                    sport: k as u16,
                    dport: 80,
                    proto: 6,
                };
                let now = u64::from(k) * 100;
                if let Some(i) = s.schedule(&d, &p, now) {
                    chosen += 1;
                    d.active[i] = (d.active[i] + 1) % 4;
                }
                if k % 10 == 0 {
                    s.tick(now);
                }
                if k == 10_000 {
                    // Everything overloaded: the failure paths too.
                    d.overloaded = [true; 8];
                }
                if k == 12_000 {
                    d.overloaded = [false; 8];
                }
            }
            let allocs = allocations() - before;
            assert_eq!(allocs, 0, "{kind} {flags:?} allocated");
            assert!(chosen > 10_000, "{kind}: only {chosen} scheduled");
        }
    }
}
