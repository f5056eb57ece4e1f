//! Bring-up and tear-down of the DPDK side: EAL, one mbuf pool per NUMA
//! socket, ports and their exception taps, rings between workers, worker
//! launch, and the final counters at stop.

use crate::dpdk_io::{DevIo, DpdkIo, PortIo, ProxyDrain, TxPath};
use crate::rss::{self, Side};
use conf::{Config, Device};
use ctrl::report::{self, PortCounters};
use dpdk_sys::mempool::{PktPool, DEFAULT_DATA_ROOM};
use dpdk_sys::{eal, ethdev, ring};
use fastpath::wire::MacAddr;
use fastpath::{Worker, WorkerStats};
use std::collections::{btree_map, BTreeMap};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

type Result<T> = std::result::Result<T, String>;

/// Ring slots for worker-to-worker hand-offs and tx proxies.
const RING_SIZE: u32 = 1024;

/// The EAL command line: the config's args, the lcores, one `-a`/`--vdev`
/// per port (and per exception device given as a vdev), then the extras
/// from ripvsd's own command line.
pub fn eal_args(cfg: &Config, extra: &[String]) -> Vec<String> {
    let mut a = cfg.eal.args.clone();
    let mut lcores = vec![cfg.eal.main_lcore];
    lcores.extend(&cfg.eal.worker_lcores);
    a.push(format!("--lcores={}", lcore_map(&lcores, cpu_count())));
    a.push(format!("--main-lcore={}", cfg.eal.main_lcore));
    for p in &cfg.ports {
        match &p.device {
            Device::Pci(addr) => {
                a.push("-a".into());
                a.push(addr.clone());
            }
            Device::Vdev { .. } => a.push(format!("--vdev={}", p.device)),
        }
        if let (true, Some(d)) = (p.exception.enabled, &p.exception.device) {
            a.push(format!("--vdev={d}"));
        }
    }
    a.extend(extra.iter().cloned());
    a
}

fn cpu_count() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as u32
}

/// EAL's `--lcores` map: lcore N runs on CPU N. On a machine with fewer
/// CPUs than the config names (a laptop, a CI runner), the extra lcores
/// share CPUs round-robin: workers then take turns instead of polling in
/// parallel, which is fine for tests and wrong for production, so ripvsd
/// says so at start-up.
pub fn lcore_map(lcores: &[u32], cpus: u32) -> String {
    let cpus = cpus.max(1);
    if lcores.iter().any(|&l| l >= cpus) {
        eprintln!("ripvsd: warning: lcores {lcores:?} on {cpus} CPU(s): lcores share CPUs");
    }
    lcores
        .iter()
        .map(|&l| format!("{l}@{}", l % cpus))
        .collect::<Vec<_>>()
        .join(",")
}

fn dev_name(spec: &str) -> &str {
    spec.split(',').next().unwrap_or(spec)
}

/// One configured DPDK device: how many queue pairs it got.
struct Dev {
    id: u16,
    label: String,
    device: String,
    queues: u16,
    /// How its RSS meets `owner_core`, for the start-up line.
    rss: String,
    /// Its RSS was programmed to owner cores: the NIC's hash is `rss_hash`
    /// of the client endpoint (`PortConfig::rss_owner`).
    rss_owner: bool,
    /// The receive offloads turned on (`ethdev::rx_offload` bits).
    rx_offloads: u64,
}

/// The receive offloads ripvsd uses where a device has them: checksum
/// verdicts spare the workers the IPv4 header sum, and the RSS hash the
/// Toeplitz hash where RSS was programmed to owner cores.
const WANTED_RX_OFFLOADS: u64 = ethdev::rx_offload::IPV4_CKSUM
    | ethdev::rx_offload::UDP_CKSUM
    | ethdev::rx_offload::TCP_CKSUM
    | ethdev::rx_offload::RSS_HASH;

/// The start-up line's account of a port's receive offloads.
fn offload_note(bits: u64) -> String {
    use ethdev::rx_offload as o;
    let on: Vec<&str> = [
        (o::IPV4_CKSUM, "ipv4-cksum"),
        (o::UDP_CKSUM, "udp-cksum"),
        (o::TCP_CKSUM, "tcp-cksum"),
        (o::RSS_HASH, "rss-hash"),
    ]
    .into_iter()
    .filter(|&(b, _)| bits & b != 0)
    .map(|(_, name)| name)
    .collect();
    if on.is_empty() {
        "rx offloads: none".into()
    } else {
        format!("rx offloads: {}", on.join(" "))
    }
}

/// What every device's queue setup needs to know.
struct Plan<'a> {
    cfg: &'a Config,
    nworkers: u16,
    /// NUMA socket of each worker's lcore.
    worker_socket: Vec<i32>,
    pools: BTreeMap<i32, PktPool>,
}

impl Plan<'_> {
    /// Configures and starts one device: a queue pair per worker when it
    /// has that many, else one; queue `q`'s descriptors and buffers on the
    /// socket of worker `q`, which polls it. A port (`side` given) gets the
    /// RSS key, hash fields and RETA that make the NIC agree with
    /// `owner_core` where the device can (see `rss`); otherwise, and for
    /// exception devices, the driver's default RSS.
    fn setup_dev(
        &self,
        id: u16,
        label: String,
        device: String,
        mtu: Option<u16>,
        side: Option<Side>,
    ) -> Result<Dev> {
        let ctx = |e: dpdk_sys::Error| format!("{label} ({device}): {e}");
        let info = ethdev::info(id).map_err(ctx)?;
        let n = self.nworkers;
        let queues = if info.max_rx_queues >= n && info.max_tx_queues >= n {
            n
        } else {
            1
        };
        let mtu0 = mtu.unwrap_or(0);
        // Never more than the device says it can: a driver asked for an
        // offload it lacks refuses the whole configure.
        let offloads = WANTED_RX_OFFLOADS & info.rx_offload_capa;
        let fallback = |why: &str| {
            eprintln!(
                "ripvsd: {label} ({}): no RSS to owner cores: {why}; \
                 software redirects will carry the load",
                info.driver
            );
            String::from("RSS not programmed: software redirects")
        };
        let mut program = None;
        let mut rss_note = String::from(if n == 1 {
            "one worker"
        } else if queues > 1 {
            "driver's RSS"
        } else {
            "one queue"
        });
        if let (Some(side), true) = (side, n > 1) {
            let caps = rss::Caps {
                rss_offloads: info.rss_offloads,
                reta_size: info.reta_size,
                hash_key_size: info.hash_key_size,
            };
            match rss::program(side, &caps, queues) {
                Ok(p) => program = Some(p),
                Err(_) if queues < n => {
                    rss_note = fallback(&format!(
                        "{} rx/{} tx queue(s) for {n} workers",
                        info.max_rx_queues, info.max_tx_queues
                    ));
                }
                Err(why) => rss_note = fallback(&why),
            }
        }
        let spread = |rss: bool| {
            if rss {
                ethdev::RxSpread::Default
            } else {
                ethdev::RxSpread::Off
            }
        };
        let rx_offloads = match &program {
            Some(p) => {
                let keyed = ethdev::RxSpread::Keyed {
                    key: &p.key,
                    hf: p.hf,
                };
                match ethdev::configure_offloads(id, queues, queues, keyed, mtu0, offloads) {
                    Ok(on) => on,
                    Err(e) => {
                        rss_note = fallback(&format!("key and hash fields refused: {e}"));
                        program = None;
                        ethdev::configure_offloads(id, queues, queues, spread(true), mtu0, offloads)
                            .map_err(ctx)?
                    }
                }
            }
            None => {
                ethdev::configure_offloads(id, queues, queues, spread(queues > 1), mtu0, offloads)
                    .map_err(ctx)?
            }
        };
        if let Some(m) = mtu {
            // Virtual devices often cannot change their MTU; the data plane
            // enforces the configured one on output regardless.
            if let Err(e) = ethdev::set_mtu(id, m) {
                log::warn!("{label}: MTU {m} not set on the device: {e}");
            }
        }
        let dp = &self.cfg.dataplane;
        for q in 0..queues {
            let socket = self.worker_socket[q as usize];
            ethdev::rx_queue_setup(id, q, dp.rx_descriptors, socket, &self.pools[&socket])
                .map_err(ctx)?;
            ethdev::tx_queue_setup(id, q, dp.tx_descriptors, socket).map_err(ctx)?;
        }
        ethdev::start(id).map_err(ctx)?;
        // After start: some drivers refill the RETA at start unless it was
        // programmed. Packets received in between are merely redirected.
        let mut rss_owner = false;
        if let Some(p) = &program {
            rss_note = match program_reta(id, &p.reta) {
                Ok(()) => {
                    rss_owner = true;
                    format!(
                        "RSS on {} ({}), {}-entry RETA to owner cores{}",
                        p.fields,
                        p.side,
                        p.reta.len(),
                        if p.side == Side::Both {
                            "; NAT replies redirected in software"
                        } else {
                            ""
                        }
                    )
                }
                Err(why) => fallback(&why),
            };
        }
        // Not every driver can set link state; a link that is down shows in
        // the port counters, not as a start-up failure.
        let _ = ethdev::link_up(id);
        Ok(Dev {
            id,
            label,
            device,
            queues,
            rss: rss_note,
            rss_owner,
            rx_offloads,
        })
    }
}

/// `HostConfig::memory_advice`: each worker's connection table on
/// transparent huge pages (see `dpdk_sys::thp`). Said once, by the first
/// worker to build its table, since all tables are alike.
fn advise_huge_pages(start: *const u8, len: usize) {
    static SAID: AtomicBool = AtomicBool::new(false);
    let advised = dpdk_sys::advise_hugepage(start, len);
    if SAID.swap(true, Ordering::Relaxed) {
        return;
    }
    let mib = len >> 20;
    if advised {
        println!("ripvsd: connection tables ({mib} MiB each) on transparent huge pages");
    } else {
        println!(
            "ripvsd: connection tables ({mib} MiB each) on 4 KiB pages: \
             smaller than a huge page, or madvise(MADV_HUGEPAGE) refused"
        );
    }
}

/// Writes the RETA and reads it back where the driver can report it.
fn program_reta(id: u16, reta: &[u16]) -> Result<()> {
    ethdev::rss_reta_update(id, reta).map_err(|e| format!("RETA refused: {e}"))?;
    match ethdev::rss_reta_query(id, reta.len() as u16) {
        Ok(back) if back != reta => Err("RETA read back differs".into()),
        _ => Ok(()),
    }
}

/// Gives the kernel end of an exception tap the port's addresses, so its
/// stack answers for them (SSH, BGP...). Start-up only.
fn configure_kernel_tap(iface: &str, addrs: &[conf::IfAddr]) -> Result<()> {
    let run = |args: &[&str]| -> Result<()> {
        let out = Command::new("ip")
            .args(args)
            .output()
            .map_err(|e| format!("running ip: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(())
    };
    for a in addrs {
        run(&[
            "addr",
            "replace",
            &format!("{}/{}", a.addr, a.prefix_len),
            "dev",
            iface,
        ])?;
    }
    run(&["link", "set", "dev", iface, "up"])
}

fn counters(d: &Dev) -> PortCounters {
    let s = ethdev::stats(d.id).unwrap_or_default();
    PortCounters {
        label: d.label.clone(),
        device: d.device.clone(),
        rx_packets: s.ipackets,
        rx_bytes: s.ibytes,
        tx_packets: s.opackets,
        tx_bytes: s.obytes,
        rx_missed: s.imissed,
        rx_errors: s.ierrors,
        tx_errors: s.oerrors,
        rx_nombuf: s.rx_nombuf,
    }
}

/// Where the control plane listens and what it reloads.
pub struct ControlSetup<'a> {
    pub config: Option<&'a Path>,
    pub socket: &'a Path,
    pub stop: Arc<AtomicBool>,
    pub reload: Arc<AtomicBool>,
    /// What the workers stop on: set after the control plane has
    /// stopped, since a VRRP master's last advert (priority 0) leaves
    /// through worker 0.
    pub halt: Arc<AtomicBool>,
}

pub fn run(cfg: &Config, config: Option<&Path>, socket: &Path, eal_extra: &[String]) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let reload = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| format!("signal handler: {e}"))?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone())
        .map_err(|e| format!("signal handler: {e}"))?;
    let eal = eal::init(&eal_args(cfg, eal_extra)).map_err(|e| format!("EAL init failed: {e}"))?;
    let halt = Arc::new(AtomicBool::new(false));
    let setup = ControlSetup {
        config,
        socket,
        stop: stop.clone(),
        reload,
        halt: halt.clone(),
    };
    let result = run_eal(cfg, &setup);
    // On an error after some workers started, they must stop before EAL
    // cleanup waits for them.
    halt.store(true, Ordering::Relaxed);
    if let Err(e) = eal.cleanup() {
        log::warn!("EAL cleanup: {e}");
    }
    result
}

fn run_eal(cfg: &Config, setup: &ControlSetup) -> Result<()> {
    let stop = &setup.stop;
    let workers = &cfg.eal.worker_lcores;
    let nworkers = workers.len();
    if nworkers > fastpath::ipvs::MAX_WORKERS {
        return Err(format!(
            "{nworkers} workers: ripvsd runs at most {}",
            fastpath::ipvs::MAX_WORKERS
        ));
    }
    let worker_socket: Vec<i32> = workers
        .iter()
        .map(|&l| eal::lcore_socket(l).max(0))
        .collect();
    let mut pools = BTreeMap::new();
    let dp = &cfg.dataplane;
    for &s in &worker_socket {
        if let btree_map::Entry::Vacant(slot) = pools.entry(s) {
            let name = format!("ripvs_mbufs_s{s}");
            let pool = PktPool::create(
                &name,
                dp.mbufs_per_socket,
                dp.mbuf_cache,
                DEFAULT_DATA_ROOM,
                s,
            )
            .map_err(|e| format!("mbuf pool on socket {s}: {e}"))?;
            slot.insert(pool);
        }
    }
    let plan = Plan {
        cfg,
        nworkers: nworkers as u16,
        worker_socket,
        pools,
    };
    let sides = rss::port_sides(cfg);

    // Ports, their MACs, and their exception devices.
    let mut nics = Vec::new();
    let mut excs = Vec::new();
    let mut macs = Vec::new();
    for (i, p) in cfg.ports.iter().enumerate() {
        let device = p.device.to_string();
        let id = ethdev::port_by_name(dev_name(&device))
            .ok_or_else(|| format!("port {}: DPDK has no device {}", p.name, dev_name(&device)))?;
        let mac = match p.mac {
            Some(m) => {
                // A device that cannot change its MAC (most virtual ones) is
                // put in promiscuous mode instead: the data plane filters on
                // the configured MAC in software either way.
                if ethdev::set_mac_addr(id, m).is_err() {
                    ethdev::promiscuous(id, true)
                        .map_err(|e| format!("port {}: MAC {}: {e}", p.name, MacAddr(m)))?;
                }
                MacAddr(m)
            }
            None => MacAddr(ethdev::mac_addr(id).map_err(|e| format!("port {}: {e}", p.name))?),
        };
        macs.push(mac);
        nics.push(plan.setup_dev(
            id,
            format!("port {}", p.name),
            device,
            Some(p.mtu),
            Some(sides[i]),
        )?);
        // VRRP virtual MACs: the port must receive them too.
        for v in cfg.vrrp.iter().filter(|v| v.use_vmac && v.port == p.name) {
            let vmac = fastpath::wire::vrrp::virtual_mac(v.vrid);
            if ethdev::mac_addr_add(id, vmac).is_err() {
                ethdev::promiscuous(id, true)
                    .map_err(|e| format!("port {}: virtual MAC {}: {e}", p.name, MacAddr(vmac)))?;
            }
        }

        excs.push(if p.exception.enabled {
            Some(exception_dev(&plan, i, p, mac)?)
        } else {
            None
        });
    }

    // Worker-to-worker rings: one single-producer ring per ordered pair.
    let mut to_peers: Vec<Vec<Option<ring::RingTx>>> = (0..nworkers).map(|_| Vec::new()).collect();
    let mut from_peers: Vec<Vec<ring::RingRx>> = (0..nworkers).map(|_| Vec::new()).collect();
    for (a, outs) in to_peers.iter_mut().enumerate() {
        for (b, ins) in from_peers.iter_mut().enumerate() {
            if a == b {
                outs.push(None);
                continue;
            }
            let (tx, rx) = ring::create(
                &format!("ripvs_peer_{a}_{b}"),
                RING_SIZE,
                plan.worker_socket[b],
            )
            .map_err(|e| format!("peer ring: {e}"))?;
            outs.push(Some(tx));
            ins.push(rx);
        }
    }
    // Each worker's view of each device; tx proxies where it has no queue.
    let mut proxies: Vec<Vec<ProxyDrain>> = (0..nworkers).map(|_| Vec::new()).collect();
    let mut dev_io = |d: &Dev, w: usize| -> Result<DevIo> {
        let q = d.queues as usize;
        if w < q {
            return Ok(DevIo::new(d.id, Some(w as u16), TxPath::Queue(w as u16)));
        }
        let owner = w % q;
        let (tx, rx) = ring::create(
            &format!("ripvs_txp_{}_{w}", d.id),
            RING_SIZE,
            plan.worker_socket[owner],
        )
        .map_err(|e| format!("tx proxy ring: {e}"))?;
        proxies[owner].push(ProxyDrain {
            ring: rx,
            id: d.id,
            queue: owner as u16,
        });
        Ok(DevIo::new(d.id, None, TxPath::Proxy(tx)))
    };
    let mut ports_of = Vec::new();
    for w in 0..nworkers {
        let mut ports = Vec::new();
        for (nic, exc) in nics.iter().zip(&excs) {
            let exception = exc.as_ref().map(|e| dev_io(e, w)).transpose()?;
            ports.push(PortIo {
                nic: dev_io(nic, w)?,
                exception,
            });
        }
        ports_of.push(ports);
    }

    // Checked real servers start in their initial states: the first table
    // already has the initially-down ones out (or at weight 0) and the
    // sorry servers their services need.
    let health = ctrl::health::Health::new(cfg, std::time::SystemTime::now());
    let (mut host, model) =
        ctrl::snapshot::build(&health.desired(cfg), &macs).map_err(|e| e.detail)?;
    for (p, nic) in host.ports.iter_mut().zip(&nics) {
        p.rss_owner = nic.rss_owner;
    }
    host.memory_advice = Some(advise_huge_pages);
    // Runs even with nothing to check, so a reload can add checks. The
    // control loop never waits for it.
    let checker = ctrl::health::checker::Checker::spawn()
        .map_err(|e| format!("health checker thread: {e}"))?;
    let (postbox, mailboxes) = fastpath::mailbox::mailboxes(nworkers);
    let (sync_post, sync_boxes) = fastpath::sync::sync_post(nworkers, fastpath::sync::RING_RECORDS);
    let ring_drops: Vec<_> = sync_post.rings.iter().map(|r| r.drops_view()).collect();
    // VRRP's frames through the workers, when an instance is configured.
    let (control_end, mut worker_ends) = if cfg.vrrp.is_empty() {
        (None, Vec::new())
    } else {
        let (c, w) = fastpath::control_link::link(nworkers);
        (Some(c), w)
    };
    let halt = &setup.halt;
    // Workers that have made their first pass (their tables built, their
    // ports polled): VRRP starts its timers only once all have, or a
    // backup would time out a master whose adverts nobody reads yet.
    let polling = Arc::new(AtomicU64::new(0));
    // Persistence templates: one per client network, far fewer than
    // connections; sized up front like everything the workers touch.
    let shared = Arc::new(fastpath::ipvs::Shared::with_services(
        nworkers,
        host.max_connections / 4,
        ctrl::model::service_ids(cfg.dataplane.max_services),
    ));
    let stats: Vec<Arc<WorkerStats>> = (0..nworkers)
        .map(|_| Arc::new(WorkerStats::default()))
        .collect();
    let tsc_per_ms = (eal::tsc_hz() / 1000).max(1);
    let longest: Vec<Arc<AtomicU64>> = (0..nworkers).map(|_| Arc::default()).collect();
    let per_worker = ports_of
        .into_iter()
        .zip(to_peers)
        .zip(from_peers)
        .zip(proxies)
        .zip(mailboxes)
        .zip(sync_boxes);
    for (w, (((((ports, to_peers), from_peers), proxies), mailbox), sync_box)) in
        per_worker.enumerate()
    {
        let mut io = DpdkIo {
            worker: w,
            nworkers,
            ports,
            pool: plan.pools[&plan.worker_socket[w]].clone(),
            to_peers,
            from_peers,
            proxies,
            tsc_per_ms,
            dropped: 0,
        };
        let (host, stats, stop, shared, longest, polling) = (
            host.clone(),
            stats[w].clone(),
            halt.clone(),
            shared.clone(),
            longest[w].clone(),
            polling.clone(),
        );
        let control = (!worker_ends.is_empty()).then(|| worker_ends.remove(0));
        eal::remote_launch(workers[w], move || {
            let mut worker = Worker::with_shared(&host, stats, shared, w);
            worker.set_mailbox(mailbox);
            worker.set_sync(sync_box);
            if let Some(c) = control {
                worker.set_control(c);
            }
            // The longest pass is the longest a packet can wait for its
            // burst to be picked up: what a snapshot install or a
            // connection page costs the data plane shows here. Two TSC
            // reads a pass; the first pass (gratuitous ARP) is left out.
            worker.poll(&mut io);
            polling.fetch_add(1, Ordering::Relaxed);
            let mut max = 0;
            while !stop.load(Ordering::Relaxed) {
                let t0 = eal::tsc();
                worker.poll(&mut io);
                max = max.max(eal::tsc() - t0);
            }
            longest.store(max, Ordering::Relaxed);
            0
        })
        .map_err(|e| format!("launching worker on lcore {}: {e}", workers[w]))?;
    }

    let names: Vec<String> = nics
        .iter()
        .zip(&macs)
        .map(|(d, mac)| {
            format!(
                "{} {mac} ({} queue(s), {}; {})",
                d.label,
                d.queues,
                d.rss,
                offload_note(d.rx_offloads)
            )
        })
        .collect();
    println!(
        "ripvsd: running, {nworkers} worker(s) on lcores {workers:?}; {}",
        names.join(", ")
    );
    let clock: ctrl::sync::daemon::Clock = Arc::new(move || eal::tsc() / tsc_per_ms);
    let sync = ctrl::sync::daemon::SyncHandle::spawn(
        sync_post,
        shared.clone(),
        clock,
        Arc::new(host.services.clone()),
    )
    .map_err(|e| format!("sync thread: {e}"))?;
    let sync_tables = Some(sync.table_sink());
    let plane = crate::control::Plane {
        postbox,
        shared: shared.clone(),
        settings: host.settings,
        now_ms: Box::new(move || eal::tsc() / tsc_per_ms),
        conn_tab_size: host.max_connections.min(u32::MAX as usize) as u32,
        last: Some(Arc::new(host.services.clone())),
        sync_tables,
        owned: host.owned.clone(),
    };
    // The embedded default config has no file to re-read: a reload then
    // re-applies it, which changes nothing.
    let config_path = setup.config.map(Path::to_path_buf).unwrap_or_default();
    let mut control =
        ctrl::control::Control::new(plane, model, config_path).with_health(health, Some(checker));
    if let Some(end) = control_end {
        let ports = cfg
            .ports
            .iter()
            .zip(&host.ports)
            .map(|(p, hp)| ctrl::vrrp::instance::PortInfo {
                name: p.name.clone(),
                mac: hp.mac,
                addrs: hp.addrs.clone(),
            })
            .collect();
        let ids: Vec<u16> = nics.iter().map(|d| d.id).collect();
        let setup = ctrl::vrrp::Setup {
            ports,
            link: Box::new(move |p| {
                ids.get(p)
                    .is_some_and(|&id| ethdev::link_status(id).unwrap_or(true))
            }),
            shared: shared.clone(),
            control: end,
            clock: Arc::new(move || eal::tsc() / tsc_per_ms),
            ready: {
                let polling = polling.clone();
                Box::new(move || polling.load(Ordering::Relaxed) >= nworkers as u64)
            },
        };
        let handle = ctrl::vrrp::VrrpHandle::spawn(setup, &cfg.vrrp)
            .map_err(|e| format!("vrrp thread: {e}"))?;
        control.with_vrrp(ctrl::vrrp::admin::VrrpAdmin::new(handle, cfg));
    }
    let admin = ctrl::sync::admin::SyncAdmin::new(sync);
    for e in control.with_sync(admin, &cfg.sync, cfg.ipvs.backup_only) {
        eprintln!("ripvsd: sync: {e}");
    }
    let served = ctrl::server::Server::bind(setup.socket)
        .map_err(|e| format!("control socket {}: {e}", setup.socket.display()));
    let server = match served {
        Ok(s) => s,
        Err(e) => {
            halt.store(true, Ordering::Relaxed);
            for &l in workers {
                eal::wait_lcore(l);
            }
            return Err(e);
        }
    };
    println!("ripvsd: control socket {}", setup.socket.display());
    let mut conflicts = report::ConflictWatch::new();
    while !stop.load(Ordering::Relaxed) {
        server.poll_timeout(Duration::from_millis(50), |req| control.handle(req));
        control.tick(std::time::Instant::now());
        for line in control.health_pass() {
            println!("ripvsd: {line}");
        }
        for line in control.vrrp_pass(std::time::Instant::now()) {
            println!("ripvsd: {line}");
        }
        for line in control.defence_pass() {
            println!("ripvsd: {line}");
        }
        for line in control.sync_log() {
            println!("ripvsd: {line}");
        }
        let now = std::time::Instant::now();
        if let Some(line) = conflicts.pass(stats.iter().map(|s| s.as_ref()), now) {
            println!("ripvsd: {line}");
        }
        if setup.reload.swap(false, Ordering::Relaxed) {
            if setup.config.is_none() {
                log::warn!("SIGHUP: no config file to re-read (running on the embedded default)");
                eprintln!("ripvsd: SIGHUP: no config file to re-read");
            } else {
                match control.handle(ctrl_api::Request::Reload) {
                    ctrl_api::Response::Error(e) => eprintln!("ripvsd: reload: {}", e.detail),
                    _ => println!("ripvsd: configuration reloaded"),
                }
            }
        }
    }
    drop(server);
    control.stop_vrrp();
    for line in control.vrrp_pass(std::time::Instant::now()) {
        println!("ripvsd: {line}");
    }
    // Worker 0 sends what VRRP queued last (a master's priority-0 advert)
    // on its next pass.
    std::thread::sleep(Duration::from_millis(20));
    halt.store(true, Ordering::Relaxed);
    for &l in workers {
        eal::wait_lcore(l);
    }
    // A conflict counted since the last pass is still told, not left to
    // the final counters alone.
    if let Some(line) = conflicts.pass(stats.iter().map(|s| s.as_ref()), std::time::Instant::now())
    {
        println!("ripvsd: {line}");
    }
    let all: Vec<&Dev> = nics.iter().chain(excs.iter().flatten()).collect();
    for d in &all {
        if let Err(e) = ethdev::stop(d.id) {
            eprintln!("ripvsd: {}: stop: {e}", d.label);
        }
    }
    let port_counters: Vec<PortCounters> = all.iter().map(|d| counters(d)).collect();
    let refs: Vec<&WorkerStats> = stats.iter().map(|s| s.as_ref()).collect();
    print!(
        "ripvsd: stopped\n{}",
        report::final_counters(&port_counters, &refs)
    );
    for (w, l) in longest.iter().enumerate() {
        let us = l.load(Ordering::Relaxed) * 1000 / tsc_per_ms;
        println!("worker {w} longest_pass_us {us}");
    }
    if let ctrl_api::Response::Daemons(d) = control.handle(ctrl_api::Request::Daemons) {
        print!("{}", ctrl::sync::admin::final_counters(&d));
    }
    for (w, d) in ring_drops.iter().enumerate() {
        println!("worker {w} sync_ring_drops {}", d.get());
    }
    for d in &all {
        if let Err(e) = ethdev::close(d.id) {
            eprintln!("ripvsd: {}: close: {e}", d.label);
        }
    }
    Ok(())
}

/// The kernel's share of port `i`: a vdev given in the config (tests use a
/// pcap), or by default a tap with the port's MAC and addresses.
fn exception_dev(plan: &Plan, i: usize, p: &conf::Port, mac: MacAddr) -> Result<Dev> {
    let (spec, kernel_tap) = match &p.exception.device {
        Some(spec) => (spec.clone(), false),
        None => {
            let (name, args) = (
                format!("net_tap_ripvs{i}"),
                format!("iface={},mac={mac}", p.exception.iface),
            );
            eal::vdev_init(&name, &args)
                .map_err(|e| format!("exception tap {}: {e}", p.exception.iface))?;
            (format!("{name},{args}"), true)
        }
    };
    let name = dev_name(&spec);
    let id = ethdev::port_by_name(name)
        .ok_or_else(|| format!("exception of {}: no device {name}", p.name))?;
    let dev = plan.setup_dev(
        id,
        format!("exception {}", p.name),
        spec.clone(),
        None,
        None,
    )?;
    if kernel_tap {
        configure_kernel_tap(&p.exception.iface, &p.addresses)
            .map_err(|e| format!("exception tap {}: {e}", p.exception.iface))?;
    }
    Ok(dev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lcores_map_to_their_cpus_or_share_them() {
        assert_eq!(lcore_map(&[0, 1], 2), "0@0,1@1");
        assert_eq!(lcore_map(&[0, 1, 2], 2), "0@0,1@1,2@0");
        assert_eq!(lcore_map(&[1, 4, 5], 8), "1@1,4@4,5@5");
    }

    #[test]
    fn offloads_are_named_on_the_start_up_line() {
        use ethdev::rx_offload as o;
        assert_eq!(offload_note(0), "rx offloads: none");
        assert_eq!(
            offload_note(WANTED_RX_OFFLOADS),
            "rx offloads: ipv4-cksum udp-cksum tcp-cksum rss-hash"
        );
        assert_eq!(
            offload_note(o::TCP_CKSUM | o::IPV4_CKSUM),
            "rx offloads: ipv4-cksum tcp-cksum"
        );
    }

    #[test]
    fn eal_command_line() {
        let cfg = conf::parse(
            "[eal]\nargs = [\"--no-huge\"]\nmain_lcore = 0\nworker_lcores = [1]\n\
             [[ports]]\nname = \"p0\"\ndevice = \"net_ring0\"\n\
             [[ports]]\nname = \"p1\"\ndevice = \"0000:01:00.1\"\n\
             exception = { device = \"net_pcap9,tx_pcap=x.pcap\" }\n",
            "t.toml",
        )
        .unwrap();
        let lcores = format!("--lcores={}", lcore_map(&[0, 1], cpu_count()));
        assert_eq!(
            eal_args(&cfg, &["--file-prefix=t".into()]),
            [
                "--no-huge",
                &lcores,
                "--main-lcore=0",
                "--vdev=net_ring0",
                "-a",
                "0000:01:00.1",
                "--vdev=net_pcap9,tx_pcap=x.pcap",
                "--file-prefix=t"
            ]
            .map(String::from)
        );
    }
}
