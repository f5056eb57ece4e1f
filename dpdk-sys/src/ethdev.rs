//! Ports: setup in DPDK's order (configure, queue setup, start), and the burst calls.
//!
//! Ports are plain ids, as in DPDK. The burst calls check the id against the queues
//! this module started, so a wrong or stale id returns 0 instead of reading outside
//! DPDK's tables. What remains the caller's duty is DPDK's own rule: do not stop,
//! close or reconfigure a port while another thread may be bursting on it.

use std::ffi::{c_int, CStr, CString};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Mutex, PoisonError};

use arrayvec::ArrayVec;

use crate::eal;
use crate::{raw, Error, Mbuf, PktPool};

const MAX_PORTS: usize = raw::RTE_MAX_ETHPORTS as usize;

/// What this module knows about a port: queue counts from configure, and the counts
/// the burst calls accept (non-zero only while started).
struct PortQueues {
    rx_configured: AtomicU16,
    tx_configured: AtomicU16,
    rx_live: AtomicU16,
    tx_live: AtomicU16,
}

#[allow(clippy::declare_interior_mutable_const)] // only used to initialise PORTS
const NO_QUEUES: PortQueues = PortQueues {
    rx_configured: AtomicU16::new(0),
    tx_configured: AtomicU16::new(0),
    rx_live: AtomicU16::new(0),
    tx_live: AtomicU16::new(0),
};

static PORTS: [PortQueues; MAX_PORTS] = [NO_QUEUES; MAX_PORTS];

/// Pools that rx queues allocate from, kept alive until their port is closed.
static RX_POOLS: Mutex<Vec<(u16, PktPool)>> = Mutex::new(Vec::new());

fn port_queues(port: u16) -> Option<&'static PortQueues> {
    PORTS.get(usize::from(port))
}

/// Marks a port unusable for bursts and releases its pools (after close or removal).
pub(crate) fn forget(port: u16) {
    if let Some(q) = port_queues(port) {
        for a in [&q.rx_live, &q.tx_live, &q.rx_configured, &q.tx_configured] {
            a.store(0, Ordering::Release);
        }
    }
    let dropped: Vec<PktPool> = {
        let mut pools = RX_POOLS.lock().unwrap_or_else(PoisonError::into_inner);
        let (gone, kept) = pools.drain(..).partition(|(p, _)| *p == port);
        *pools = kept;
        gone.into_iter().map(|(_, pool)| pool).collect()
    };
    drop(dropped); // outside the lock: the last clone frees the pool
}

/// The ports present, in id order.
fn ports_raw() -> Vec<u16> {
    let mut out = Vec::new();
    // SAFETY: rte_eth_find_next bounds-checks its argument and returns
    // RTE_MAX_ETHPORTS when there is no further port; callers hold EAL up.
    let mut p = unsafe { raw::rte_eth_find_next(0) };
    while usize::from(p) < MAX_PORTS {
        out.push(p);
        // SAFETY: as above.
        p = unsafe { raw::rte_eth_find_next(p + 1) };
    }
    out
}

/// Stops and closes every port; EAL cleanup calls it with EAL held exclusively.
pub(crate) fn close_all() {
    for port in ports_raw() {
        if let Some(q) = port_queues(port) {
            q.rx_live.store(0, Ordering::Release);
            q.tx_live.store(0, Ordering::Release);
        }
        // SAFETY: port is valid; workers have returned, so no burst is in flight.
        unsafe {
            raw::rte_eth_dev_stop(port);
            raw::rte_eth_dev_close(port);
        }
        forget(port);
    }
}

/// The ports EAL found or created, in id order.
pub fn ports() -> Vec<u16> {
    match eal::hold("rte_eth_find_next") {
        Ok(_up) => ports_raw(),
        Err(_) => Vec::new(),
    }
}

/// The port of the device called `name` (`"net_ring0"`, a PCI address...).
pub fn port_by_name(name: &str) -> Option<u16> {
    let _up = eal::hold("rte_eth_dev_get_port_by_name").ok()?;
    let name = CString::new(name).ok()?;
    let mut port = 0u16;
    // SAFETY: name is a valid C string and port a valid out-pointer for the call.
    let ret = unsafe { raw::rte_eth_dev_get_port_by_name(name.as_ptr(), &mut port) };
    (ret == 0).then_some(port)
}

/// What a port's driver can do, from rte_eth_dev_info_get: enough to size queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevInfo {
    /// Driver name, e.g. `"net_ring"`, for logs and per-driver quirks.
    pub driver: String,
    /// Most rx queues the port accepts: the ceiling for workers fed by RSS.
    pub max_rx_queues: u16,
    /// Most tx queues the port accepts: each worker needs its own.
    pub max_tx_queues: u16,
    /// RSS hash types the device supports (RTE_ETH_RSS_* bits); 0 means no RSS.
    pub rss_offloads: u64,
    /// Entries of the RSS redirection table; 0 when there is none.
    pub reta_size: u16,
    /// NUMA socket of the device, `SOCKET_ID_ANY` (-1) when unknown.
    pub socket: i32,
    /// Smallest MTU the device accepts.
    pub min_mtu: u16,
    /// Largest MTU the device accepts.
    pub max_mtu: u16,
}

fn info_raw(port: u16) -> Result<raw::rte_eth_dev_info, Error> {
    let mut info = raw::rte_eth_dev_info::default();
    // SAFETY: info is a valid out-struct; DPDK validates port; callers hold EAL up.
    Error::check("rte_eth_dev_info_get", unsafe {
        raw::rte_eth_dev_info_get(port, &mut info)
    })?;
    Ok(info)
}

/// Describes `port`'s driver and limits.
pub fn info(port: u16) -> Result<DevInfo, Error> {
    let _up = eal::hold("rte_eth_dev_info_get")?;
    let info = info_raw(port)?;
    let driver = if info.driver_name.is_null() {
        String::new()
    } else {
        // SAFETY: a non-NULL driver_name points to the driver's static C string.
        unsafe { CStr::from_ptr(info.driver_name) }
            .to_string_lossy()
            .into_owned()
    };
    // SAFETY: DPDK validates port; -1 is its "unknown" answer.
    let socket = unsafe { raw::rte_eth_dev_socket_id(port) };
    Ok(DevInfo {
        driver,
        max_rx_queues: info.max_rx_queues,
        max_tx_queues: info.max_tx_queues,
        rss_offloads: info.flow_type_rss_offloads,
        reta_size: info.reta_size,
        socket,
        min_mtu: info.min_mtu,
        max_mtu: info.max_mtu,
    })
}

/// The port's MAC address, for the director's own frames and ARP replies.
pub fn mac_addr(port: u16) -> Result<[u8; 6], Error> {
    const OP: &str = "rte_eth_macaddr_get";
    let _up = eal::hold(OP)?;
    let mut mac = raw::rte_ether_addr::default();
    // SAFETY: mac is a valid out-struct; DPDK validates port.
    Error::check(OP, unsafe { raw::rte_eth_macaddr_get(port, &mut mac) })?;
    Ok(mac.addr_bytes)
}

/// Replaces the port's MAC address, e.g. with the one the config assigns.
pub fn set_mac_addr(port: u16, mac: [u8; 6]) -> Result<(), Error> {
    const OP: &str = "rte_eth_dev_default_mac_addr_set";
    let _up = eal::hold(OP)?;
    let mut addr = raw::rte_ether_addr { addr_bytes: mac };
    // SAFETY: addr is a valid rte_ether_addr that DPDK only reads; it validates port.
    Error::check(OP, unsafe {
        raw::rte_eth_dev_default_mac_addr_set(port, &mut addr)
    })
    .map(drop)
}

/// Which fields of a packet the NIC's RSS hash covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RssFields {
    /// The whole IP/TCP/UDP tuple (the device's default).
    Tuple,
    /// Source address and port only (`L3_SRC_ONLY | L4_SRC_ONLY`).
    Source,
    /// Destination address and port only.
    Destination,
}

/// How a port spreads flows over its rx queues.
#[derive(Debug, Clone, Copy)]
pub struct Rss<'a> {
    /// The fields hashed.
    pub fields: RssFields,
    /// The Toeplitz key; used when the device's key is this long.
    pub key: Option<&'a [u8]>,
}

/// What `configure` could program of an [`Rss`] request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RssOutcome {
    /// The device hashes on the requested fields.
    pub fields: bool,
    /// The device took the requested key.
    pub key: bool,
    /// RSS is on at all.
    pub on: bool,
}

/// Configures `port` with `nb_rxq`/`nb_txq` queues; with `rss` and several rx queues,
/// spreads flows by hash (as far as the device supports it: the outcome says what it
/// took). `mtu` 0 keeps the 1500 default. Must precede queue setup, with the port
/// stopped.
pub fn configure(
    port: u16,
    nb_rxq: u16,
    nb_txq: u16,
    rss: Option<Rss<'_>>,
    mtu: u16,
) -> Result<RssOutcome, Error> {
    const OP: &str = "rte_eth_dev_configure";
    let _up = eal::hold(OP)?;
    let q = port_queues(port).ok_or(Error::new(OP, raw::ENODEV as c_int))?;
    let info = info_raw(port)?;
    let mut conf = raw::rte_eth_conf::default();
    conf.rxmode.mtu = u32::from(mtu);
    let mut outcome = RssOutcome {
        fields: false,
        key: false,
        on: false,
    };
    // Kept alive until rte_eth_dev_configure has copied it.
    let mut key_buf = [0u8; 64];
    if let Some(rss) = rss.filter(|_| nb_rxq > 1) {
        // SAFETY: pure functions returning constants.
        let (tuple, src, dst) = unsafe {
            (
                raw::ripvs_eth_rss_ip_tcp_udp(),
                raw::ripvs_eth_rss_src_only(),
                raw::ripvs_eth_rss_dst_only(),
            )
        };
        let offloads = info.flow_type_rss_offloads;
        let hf = tuple & offloads;
        let only = match rss.fields {
            RssFields::Tuple => 0,
            RssFields::Source => src,
            RssFields::Destination => dst,
        };
        if hf == 0 {
            log::warn!(
                "port {port}: no IP/TCP/UDP RSS on this device; every packet goes to rx queue 0"
            );
        } else {
            conf.rxmode.mq_mode = raw::RTE_ETH_MQ_RX_RSS;
            outcome.on = true;
            outcome.fields = only == 0 || offloads & only == only;
            conf.rx_adv_conf.rss_conf.rss_hf = if outcome.fields { hf | only } else { hf };
            if let Some(key) = rss.key {
                if usize::from(info.hash_key_size) == key.len() && key.len() <= key_buf.len() {
                    key_buf[..key.len()].copy_from_slice(key);
                    conf.rx_adv_conf.rss_conf.rss_key = key_buf.as_mut_ptr();
                    conf.rx_adv_conf.rss_conf.rss_key_len = key.len() as u8;
                    outcome.key = true;
                }
            }
        }
    }
    // SAFETY: conf is a fully initialised rte_eth_conf that DPDK only reads (and
    // copies); DPDK validates port and the queue counts.
    Error::check(OP, unsafe {
        raw::rte_eth_dev_configure(port, nb_rxq, nb_txq, &conf)
    })?;
    q.rx_live.store(0, Ordering::Release);
    q.tx_live.store(0, Ordering::Release);
    q.rx_configured.store(nb_rxq, Ordering::Release);
    q.tx_configured.store(nb_txq, Ordering::Release);
    Ok(outcome)
}

/// Fills the redirection table of `port` (`reta_size` entries, as the
/// device reports): entry `i` sends its hashes to rx queue `queue_of(i)`.
pub fn set_reta(port: u16, reta_size: u16, queue_of: impl Fn(usize) -> u16) -> Result<(), Error> {
    const OP: &str = "rte_eth_dev_rss_reta_update";
    let _up = eal::hold(OP)?;
    let n = usize::from(reta_size);
    let mut groups: Vec<raw::rte_eth_rss_reta_entry64> = (0..n.div_ceil(64))
        .map(|_| raw::rte_eth_rss_reta_entry64::default())
        .collect();
    for i in 0..n {
        let g = &mut groups[i / 64];
        g.mask |= 1 << (i % 64);
        g.reta[i % 64] = queue_of(i);
    }
    // SAFETY: groups holds reta_size / 64 (rounded up) initialised entries that
    // DPDK reads for the duration of the call; DPDK validates port and size.
    Error::check(OP, unsafe {
        raw::rte_eth_dev_rss_reta_update(port, groups.as_mut_ptr(), reta_size)
    })
    .map(drop)
}

/// Changes the MTU of a configured port.
pub fn set_mtu(port: u16, mtu: u16) -> Result<(), Error> {
    const OP: &str = "rte_eth_dev_set_mtu";
    let _up = eal::hold(OP)?;
    // SAFETY: plain values; DPDK validates port and mtu.
    Error::check(OP, unsafe { raw::rte_eth_dev_set_mtu(port, mtu) }).map(drop)
}

/// Sets up rx queue `queue` with about `nb_desc` descriptors (rounded to what the
/// device accepts; the count used is returned), filled from `pool`, which stays
/// alive until the port is closed.
pub fn rx_queue_setup(
    port: u16,
    queue: u16,
    nb_desc: u16,
    socket: i32,
    pool: &PktPool,
) -> Result<u16, Error> {
    const OP: &str = "rte_eth_rx_queue_setup";
    let _up = eal::hold(OP)?;
    let mut nb = nb_desc;
    // SAFETY: nb is a valid in/out pointer; a NULL tx count is allowed; DPDK
    // validates port.
    Error::check("rte_eth_dev_adjust_nb_rx_tx_desc", unsafe {
        raw::rte_eth_dev_adjust_nb_rx_tx_desc(port, &mut nb, std::ptr::null_mut())
    })?;
    // SAFETY: the pool pointer is live, and is kept so by the clone registered below
    // until close(); NULL rx_conf selects the driver's defaults; socket -1 is
    // SOCKET_ID_ANY, as DPDK expects it in an unsigned.
    Error::check(OP, unsafe {
        raw::rte_eth_rx_queue_setup(
            port,
            queue,
            nb,
            socket as u32,
            std::ptr::null(),
            pool.as_ptr(),
        )
    })?;
    RX_POOLS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((port, pool.clone()));
    Ok(nb)
}

/// Sets up tx queue `queue` with about `nb_desc` descriptors (rounded to what the
/// device accepts; the count used is returned).
pub fn tx_queue_setup(port: u16, queue: u16, nb_desc: u16, socket: i32) -> Result<u16, Error> {
    const OP: &str = "rte_eth_tx_queue_setup";
    let _up = eal::hold(OP)?;
    let mut nb = nb_desc;
    // SAFETY: nb is a valid in/out pointer; a NULL rx count is allowed.
    Error::check("rte_eth_dev_adjust_nb_rx_tx_desc", unsafe {
        raw::rte_eth_dev_adjust_nb_rx_tx_desc(port, std::ptr::null_mut(), &mut nb)
    })?;
    // SAFETY: NULL tx_conf selects the driver's defaults; DPDK validates the rest.
    Error::check(OP, unsafe {
        raw::rte_eth_tx_queue_setup(port, queue, nb, socket as u32, std::ptr::null())
    })?;
    Ok(nb)
}

/// Starts the port; from then on the burst calls reach its configured queues.
pub fn start(port: u16) -> Result<(), Error> {
    const OP: &str = "rte_eth_dev_start";
    let _up = eal::hold(OP)?;
    let q = port_queues(port).ok_or(Error::new(OP, raw::ENODEV as c_int))?;
    // SAFETY: DPDK validates port and refuses to start with queues not set up.
    Error::check(OP, unsafe { raw::rte_eth_dev_start(port) })?;
    q.rx_live
        .store(q.rx_configured.load(Ordering::Acquire), Ordering::Release);
    q.tx_live
        .store(q.tx_configured.load(Ordering::Acquire), Ordering::Release);
    Ok(())
}

/// Stops the port (its workers must have stopped bursting on it first).
pub fn stop(port: u16) -> Result<(), Error> {
    const OP: &str = "rte_eth_dev_stop";
    let _up = eal::hold(OP)?;
    if let Some(q) = port_queues(port) {
        q.rx_live.store(0, Ordering::Release);
        q.tx_live.store(0, Ordering::Release);
    }
    // SAFETY: DPDK validates port; stopping a stopped port is a no-op.
    Error::check(OP, unsafe { raw::rte_eth_dev_stop(port) }).map(drop)
}

/// Closes a stopped port, releasing its queues and the pools they held.
pub fn close(port: u16) -> Result<(), Error> {
    const OP: &str = "rte_eth_dev_close";
    let _up = eal::hold(OP)?;
    if let Some(q) = port_queues(port) {
        q.rx_live.store(0, Ordering::Release);
        q.tx_live.store(0, Ordering::Release);
    }
    // SAFETY: DPDK validates port (and refuses to close a started one).
    Error::check(OP, unsafe { raw::rte_eth_dev_close(port) })?;
    forget(port);
    Ok(())
}

/// Turns promiscuous mode on or off: the director must see frames for its VIPs'
/// MACs too, e.g. behind a bridge.
pub fn promiscuous(port: u16, on: bool) -> Result<(), Error> {
    let op = if on {
        "rte_eth_promiscuous_enable"
    } else {
        "rte_eth_promiscuous_disable"
    };
    let _up = eal::hold(op)?;
    // SAFETY: DPDK validates port.
    let ret = unsafe {
        if on {
            raw::rte_eth_promiscuous_enable(port)
        } else {
            raw::rte_eth_promiscuous_disable(port)
        }
    };
    Error::check(op, ret).map(drop)
}

/// Sets the link up; drivers without link control (virtual ones) count as success.
pub fn link_up(port: u16) -> Result<(), Error> {
    const OP: &str = "rte_eth_dev_set_link_up";
    let _up = eal::hold(OP)?;
    // SAFETY: DPDK validates port.
    match unsafe { raw::rte_eth_dev_set_link_up(port) } {
        ret if ret == -(raw::ENOTSUP as c_int) => Ok(()),
        ret => Error::check(OP, ret).map(drop),
    }
}

/// Port counters (rte_eth_stats_get), for the stats the control plane reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Packets the NIC dropped because rx queues were full: workers too slow.
    pub imissed: u64,
    /// Erroneous packets received.
    pub ierrors: u64,
    /// Packets that failed to send.
    pub oerrors: u64,
    /// Receive failures for want of mbufs: pool too small.
    pub rx_nombuf: u64,
}

/// Reads the port's counters.
pub fn stats(port: u16) -> Result<Stats, Error> {
    const OP: &str = "rte_eth_stats_get";
    let _up = eal::hold(OP)?;
    let mut s = raw::rte_eth_stats::default();
    // SAFETY: s is a valid out-struct; DPDK validates port.
    Error::check(OP, unsafe { raw::rte_eth_stats_get(port, &mut s) })?;
    Ok(Stats {
        ipackets: s.ipackets,
        opackets: s.opackets,
        ibytes: s.ibytes,
        obytes: s.obytes,
        imissed: s.imissed,
        ierrors: s.ierrors,
        oerrors: s.oerrors,
        rx_nombuf: s.rx_nombuf,
    })
}

/// Zeroes the port's counters, e.g. between benchmark runs.
pub fn stats_reset(port: u16) -> Result<(), Error> {
    const OP: &str = "rte_eth_stats_reset";
    let _up = eal::hold(OP)?;
    // SAFETY: DPDK validates port.
    Error::check(OP, unsafe { raw::rte_eth_stats_reset(port) }).map(drop)
}

/// Whether bursts on (port, queue) reach a started, set-up queue; `live` picks rx or tx.
#[inline]
fn queue_live(port: u16, queue: u16, live: fn(&PortQueues) -> &AtomicU16) -> bool {
    port_queues(port).is_some_and(|q| queue < live(q).load(Ordering::Acquire))
}

/// Receives into the free capacity of `out` and returns how many arrived (0 also for
/// a port or queue that is not started).
#[inline]
pub fn rx_burst<const N: usize>(port: u16, queue: u16, out: &mut ArrayVec<Mbuf, N>) -> usize {
    rx_burst_max(port, queue, out, N)
}

/// Like [`rx_burst`], but takes at most `max`, e.g. to leave room for other sources.
#[inline]
pub fn rx_burst_max<const N: usize>(
    port: u16,
    queue: u16,
    out: &mut ArrayVec<Mbuf, N>,
    max: usize,
) -> usize {
    let room = out.remaining_capacity().min(max).min(usize::from(u16::MAX)) as u16;
    if room == 0 || !queue_live(port, queue, |q| &q.rx_live) {
        return 0;
    }
    let len = out.len();
    // SAFETY: the queue is set up and started (checked above); the `room` slots after
    // len are within capacity, Mbuf has the layout of `rte_mbuf *`, and the driver
    // writes exactly `got` valid, owned mbuf pointers there before they are counted.
    unsafe {
        let got = raw::ripvs_eth_rx_burst(port, queue, out.as_mut_ptr().add(len).cast(), room);
        out.set_len(len + usize::from(got));
        usize::from(got)
    }
}

/// Sends from the front of `pkts`: the sent mbufs leave `pkts` (the driver now owns
/// them) and the unsent stay, in order, for a retry or a drop. Returns how many went.
#[inline]
pub fn tx_burst<const N: usize>(port: u16, queue: u16, pkts: &mut ArrayVec<Mbuf, N>) -> usize {
    let len = pkts.len();
    if len == 0 || !queue_live(port, queue, |q| &q.tx_live) {
        return 0;
    }
    let n = len.min(usize::from(u16::MAX)) as u16;
    let base = pkts.as_mut_ptr();
    // SAFETY: the queue is set up and started; base holds n valid mbuf pointers
    // (Mbuf is `rte_mbuf *`). The driver takes ownership of the first `sent` and
    // leaves the array itself unchanged, so the sent entries are overwritten by the
    // unsent ones without being dropped, and the length shrinks to match.
    unsafe {
        let sent = usize::from(raw::ripvs_eth_tx_burst(port, queue, base.cast(), n));
        if sent > 0 {
            pkts.set_len(0);
            std::ptr::copy(base.add(sent), base, len - sent);
            pkts.set_len(len - sent);
        }
        sent
    }
}
