//! What a snapshot costs, without a NIC: the control thread's work to
//! prepare a worker's schedulers for it (`Ipvs::prepare_schedulers`), and
//! the worker's work to switch to it (`Ipvs::install`), which is the
//! longest a packet waits for its burst because of a change. Two changes:
//! a restore of SERVICES services with REALS real servers each onto an
//! empty table (every scheduler new), and one service added to that table
//! (every other scheduler kept). Best of ROUNDS, in one process. The
//! control thread prepares a set for each of WORKERS workers (default 1);
//! the install timed is one worker's.
//!
//!   SERVICES=10000 REALS=10 SCHED=mh ROUNDS=5 WORKERS=4 target/release/install

use fastpath::ipvs::{Ipvs, Settings, Shared};
use fastpath::proto::Timeouts;
use fastpath::sched::Kind;
use fastpath::service::{Dest, Method, Service, ServiceTable};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn table(services: usize, reals: usize, kind: Kind) -> Arc<ServiceTable> {
    let svcs = (0..services)
        .map(|i| Service {
            id: i as u32,
            proto: 6,
            vip: Ipv4Addr::new(10, 0, 1, 100 + (i % 10) as u8),
            port: 1000 + (i / 10) as u16,
            fwmark: None,
            scheduler: kind,
            flags: Default::default(),
            persistent: None,
            netmask: Ipv4Addr::BROADCAST,
            ops: false,
            synproxy: false,
            dests: (0..reals)
                .map(|j| {
                    let k = (i * reals + j) as u32;
                    Dest {
                        id: k,
                        addr: Ipv4Addr::from_bits(0x0A01_0000 + k),
                        port: 1000 + (i / 10) as u16,
                        method: Method::Dr,
                        weight: 1 + (j % 3) as u32,
                        last_weight: 1 + (j % 3) as u32,
                        u_threshold: 0,
                        l_threshold: 0,
                    }
                })
                .collect(),
        })
        .collect();
    Arc::new(ServiceTable::new(svcs, vec![]).expect("a valid table"))
}

fn main() {
    let (n, r, rounds) = (env("SERVICES", 10_000), env("REALS", 10), env("ROUNDS", 5));
    let workers = env("WORKERS", 1).max(1);
    let sched = std::env::var("SCHED").unwrap_or_else(|_| "wlc".into());
    let kind: Kind = sched.parse().expect("SCHED: an ipvsadm scheduler name");
    let shared = Arc::new(Shared::new(workers, 1024));
    let empty = Arc::new(ServiceTable::default());
    let full = table(n, r, kind);
    let plus_one = table(n + 1, r, kind);
    let mut best = [Duration::MAX; 4];
    for _ in 0..rounds {
        let mut ipvs = Ipvs::new(
            empty.clone(),
            shared.clone(),
            0,
            1024,
            Timeouts::DEFAULT,
            Settings::default(),
            None,
        );
        let mut step = |i: usize, last: &ServiceTable, next: &Arc<ServiceTable>| {
            let t = Instant::now();
            let mut sets = Ipvs::prepare_scheduler_sets(next, Some(last), &shared, workers);
            let scheds = sets.swap_remove(0);
            let prepared = t.elapsed();
            let t = Instant::now();
            let released =
                ipvs.install(next.clone(), scheds, Timeouts::DEFAULT, Settings::default());
            let installed = t.elapsed();
            assert!(released.is_ok(), "a set for its table");
            drop(released); // the control thread's job, not timed
            best[i] = best[i].min(prepared);
            best[i + 1] = best[i + 1].min(installed);
        };
        step(0, &empty, &full);
        step(2, &full, &plus_one);
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("{n} services x {r} real servers, {sched}, {workers} worker(s), best of {rounds}:");
    println!(
        "  restore onto an empty table: control prepares {:9.3} ms, worker installs {:9.3} ms",
        ms(best[0]),
        ms(best[1])
    );
    println!(
        "  one service more:            control prepares {:9.3} ms, worker installs {:9.3} ms",
        ms(best[2]),
        ms(best[3])
    );
}
