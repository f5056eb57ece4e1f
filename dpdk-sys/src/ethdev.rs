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

/// RSS keys handed to rte_eth_dev_configure, kept until the port is closed or
/// reconfigured: DPDK copies the `rss_conf` struct but not the key it points to,
/// and drivers such as ixgbe and i40e read the key through that pointer only at
/// rte_eth_dev_start. A boxed key's address survives moves of the vector.
#[allow(clippy::type_complexity)]
static RSS_KEYS: Mutex<Vec<(u16, Box<[u8]>)>> = Mutex::new(Vec::new());

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
    RSS_KEYS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|(p, _)| *p != port);
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
    /// RSS hash types the device supports (RTE_ETH_RSS_* bits, see [`rss_hf`],
    /// including the SRC_ONLY/DST_ONLY modifiers it accepts); 0 means no RSS.
    pub rss_offloads: u64,
    /// Entries in the RSS redirection table (RETA); 0: none to program.
    pub reta_size: u16,
    /// Length of the RSS hash key in bytes; 0: the driver does not say (DPDK's
    /// default is 40).
    pub hash_key_size: u8,
    /// NUMA socket of the device, `SOCKET_ID_ANY` (-1) when unknown.
    pub socket: i32,
    /// Smallest MTU the device accepts.
    pub min_mtu: u16,
    /// Largest MTU the device accepts.
    pub max_mtu: u16,
    /// Receive offloads the port can turn on (RTE_ETH_RX_OFFLOAD_* bits, see
    /// [`rx_offload`]): only these may be asked of [`configure_offloads`].
    pub rx_offload_capa: u64,
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
        hash_key_size: info.hash_key_size,
        socket,
        min_mtu: info.min_mtu,
        max_mtu: info.max_mtu,
        rx_offload_capa: info.rx_offload_capa,
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

/// Makes the port receive frames to `mac` as well as its own (a VRRP
/// virtual MAC); drivers without MAC filters refuse, and the caller falls
/// back to promiscuous mode.
pub fn mac_addr_add(port: u16, mac: [u8; 6]) -> Result<(), Error> {
    const OP: &str = "rte_eth_dev_mac_addr_add";
    let _up = eal::hold(OP)?;
    let mut addr = raw::rte_ether_addr { addr_bytes: mac };
    // SAFETY: addr is a valid rte_ether_addr that DPDK only reads; it validates port.
    Error::check(OP, unsafe {
        raw::rte_eth_dev_mac_addr_add(port, &mut addr, 0)
    })
    .map(drop)
}

/// The RTE_ETH_RSS_* bits of `rte_eth_conf.rx_adv_conf.rss_conf.rss_hf` and
/// `DevInfo::rss_offloads` that ripvs uses. DPDK builds them with `RTE_BIT64()`,
/// which bindgen cannot evaluate; a unit test checks each against the C macro
/// through the shim.
pub mod rss_hf {
    /// IPv4 TCP, not fragmented.
    pub const NONFRAG_IPV4_TCP: u64 = 1 << 4;
    /// IPv4 UDP, not fragmented.
    pub const NONFRAG_IPV4_UDP: u64 = 1 << 5;
    /// IPv4 SCTP, not fragmented.
    pub const NONFRAG_IPV4_SCTP: u64 = 1 << 6;
    /// IPv6 TCP, not fragmented.
    pub const NONFRAG_IPV6_TCP: u64 = 1 << 10;
    /// IPv6 UDP, not fragmented.
    pub const NONFRAG_IPV6_UDP: u64 = 1 << 11;
    /// IPv6 SCTP, not fragmented.
    pub const NONFRAG_IPV6_SCTP: u64 = 1 << 12;
    /// Modifier: of the L3 addresses, hash the source only.
    pub const L3_SRC_ONLY: u64 = 1 << 63;
    /// Modifier: of the L3 addresses, hash the destination only.
    pub const L3_DST_ONLY: u64 = 1 << 62;
    /// Modifier: of the L4 ports, hash the source only.
    pub const L4_SRC_ONLY: u64 = 1 << 61;
    /// Modifier: of the L4 ports, hash the destination only.
    pub const L4_DST_ONLY: u64 = 1 << 60;
    /// Entries per `rte_eth_rss_reta_entry64` (`RTE_ETH_RETA_GROUP_SIZE`).
    pub const RETA_GROUP_SIZE: usize = crate::raw::RTE_ETH_RETA_GROUP_SIZE as usize;
}

/// The RTE_ETH_RX_OFFLOAD_* bits of `rte_eth_rxmode.offloads` and
/// `DevInfo::rx_offload_capa` that ripvs asks for. DPDK builds them with
/// `RTE_BIT64()` too; a unit test checks each against the C macro.
pub mod rx_offload {
    /// The NIC checks IPv4 header checksums (`RTE_MBUF_F_RX_IP_CKSUM_*`).
    pub const IPV4_CKSUM: u64 = 1 << 1;
    /// The NIC checks UDP checksums (`RTE_MBUF_F_RX_L4_CKSUM_*`).
    pub const UDP_CKSUM: u64 = 1 << 2;
    /// The NIC checks TCP checksums (`RTE_MBUF_F_RX_L4_CKSUM_*`).
    pub const TCP_CKSUM: u64 = 1 << 3;
    /// The NIC's RSS hash is delivered in the mbuf (`hash.rss`).
    pub const RSS_HASH: u64 = 1 << 19;
}

/// How a port with several rx queues spreads received packets over them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxSpread<'a> {
    /// No RSS: everything arrives on rx queue 0.
    Off,
    /// RSS on IP/TCP/UDP with the driver's own key and fields (as far as the
    /// device supports them): spreads flows, agrees with nothing in particular.
    Default,
    /// RSS with this key (the device's `hash_key_size` bytes, or 40 when it
    /// reports none) over exactly the hash types and modifiers in `hf`, which
    /// must all be in the device's `rss_offloads`. Program the redirection
    /// table with [`rss_reta_update`] afterwards.
    Keyed {
        /// The Toeplitz key.
        key: &'a [u8],
        /// RTE_ETH_RSS_* bits, see [`rss_hf`].
        hf: u64,
    },
}

/// Configures `port` with `nb_rxq`/`nb_txq` queues; with `rss` and several rx queues,
/// spreads flows by IP/TCP/UDP hash (as far as the device supports it). `mtu` 0 keeps
/// the 1500 default. Must precede queue setup, with the port stopped.
pub fn configure(port: u16, nb_rxq: u16, nb_txq: u16, rss: bool, mtu: u16) -> Result<(), Error> {
    let spread = if rss {
        RxSpread::Default
    } else {
        RxSpread::Off
    };
    configure_spread(port, nb_rxq, nb_txq, spread, mtu)
}

/// Like [`configure`], with the choice of RSS made by the caller. RSS applies only
/// with several rx queues; a [`RxSpread::Keyed`] asking for hash types the device
/// lacks, or with a key of the wrong length, fails with EINVAL before DPDK is called.
pub fn configure_spread(
    port: u16,
    nb_rxq: u16,
    nb_txq: u16,
    spread: RxSpread<'_>,
    mtu: u16,
) -> Result<(), Error> {
    configure_offloads(port, nb_rxq, nb_txq, spread, mtu, 0).map(drop)
}

/// Like [`configure_spread`], also turning on the receive offloads
/// `rx_offloads` ([`rx_offload`] bits), which must all be in the device's
/// `rx_offload_capa` (else EINVAL before DPDK is called: a driver asked for
/// what it lacks fails the whole configure). [`rx_offload::RSS_HASH`] is
/// dropped where RSS ends up off (one rx queue, [`RxSpread::Off`], or a
/// device without the default hash types), since there is no hash to
/// deliver. Returns the offloads requested from DPDK.
pub fn configure_offloads(
    port: u16,
    nb_rxq: u16,
    nb_txq: u16,
    spread: RxSpread<'_>,
    mtu: u16,
    rx_offloads: u64,
) -> Result<u64, Error> {
    const OP: &str = "rte_eth_dev_configure";
    let _up = eal::hold(OP)?;
    let q = port_queues(port).ok_or(Error::new(OP, raw::ENODEV as c_int))?;
    let info = info_raw(port)?;
    if rx_offloads & !info.rx_offload_capa != 0 {
        return Err(Error::new(OP, raw::EINVAL as c_int));
    }
    let mut conf = raw::rte_eth_conf::default();
    conf.rxmode.mtu = u32::from(mtu);
    let mut key_box: Option<Box<[u8]>> = None;
    match spread {
        _ if nb_rxq <= 1 => {}
        RxSpread::Off => {}
        RxSpread::Default => {
            // SAFETY: pure function returning a constant.
            let wanted = unsafe { raw::ripvs_eth_rss_ip_tcp_udp() };
            let hf = wanted & info.flow_type_rss_offloads;
            if hf == 0 {
                log::warn!(
                    "port {port}: no IP/TCP/UDP RSS on this device; every packet goes to rx queue 0"
                );
            } else {
                conf.rxmode.mq_mode = raw::RTE_ETH_MQ_RX_RSS;
                conf.rx_adv_conf.rss_conf.rss_hf = hf;
            }
        }
        RxSpread::Keyed { key, hf } => {
            let key_len = match info.hash_key_size {
                0 => 40,
                n => usize::from(n),
            };
            if hf == 0 || hf & !info.flow_type_rss_offloads != 0 || key.len() != key_len {
                return Err(Error::new(OP, raw::EINVAL as c_int));
            }
            let mut boxed: Box<[u8]> = key.into();
            conf.rxmode.mq_mode = raw::RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = hf;
            conf.rx_adv_conf.rss_conf.rss_key = boxed.as_mut_ptr();
            conf.rx_adv_conf.rss_conf.rss_key_len = key_len as u8; // <= u8::MAX: from hash_key_size
            key_box = Some(boxed);
        }
    }
    conf.rxmode.offloads = if conf.rxmode.mq_mode == raw::RTE_ETH_MQ_RX_RSS {
        rx_offloads
    } else {
        rx_offloads & !rx_offload::RSS_HASH
    };
    // SAFETY: conf is a fully initialised rte_eth_conf that DPDK only reads (and
    // copies); its rss_key, if any, points into key_box, which is kept in
    // RSS_KEYS below for as long as the port may use it. DPDK validates port and
    // the queue counts.
    Error::check(OP, unsafe {
        raw::rte_eth_dev_configure(port, nb_rxq, nb_txq, &conf)
    })?;
    {
        let mut keys = RSS_KEYS.lock().unwrap_or_else(PoisonError::into_inner);
        keys.retain(|(p, _)| *p != port);
        if let Some(k) = key_box {
            keys.push((port, k));
        }
    }
    q.rx_live.store(0, Ordering::Release);
    q.tx_live.store(0, Ordering::Release);
    q.rx_configured.store(nb_rxq, Ordering::Release);
    q.tx_configured.store(nb_txq, Ordering::Release);
    Ok(conf.rxmode.offloads)
}

/// Programs the whole RSS redirection table: entry `i` sends hash bucket `i` to rx
/// queue `reta[i]`. `reta.len()` must be the device's `reta_size` and every queue
/// below the configured rx queue count (DPDK and the driver check both). Needs a
/// port configured with RSS; call it after [`start`], since some drivers refill
/// the table at start unless it was programmed. Virtual devices mostly answer
/// ENOTSUP.
pub fn rss_reta_update(port: u16, reta: &[u16]) -> Result<(), Error> {
    const OP: &str = "rte_eth_dev_rss_reta_update";
    let _up = eal::hold(OP)?;
    let size = u16::try_from(reta.len()).map_err(|_| Error::new(OP, raw::EINVAL as c_int))?;
    let mut conf = reta_groups(reta.len());
    for (i, &q) in reta.iter().enumerate() {
        let g = &mut conf[i / rss_hf::RETA_GROUP_SIZE];
        g.mask |= 1 << (i % rss_hf::RETA_GROUP_SIZE);
        g.reta[i % rss_hf::RETA_GROUP_SIZE] = q;
    }
    // SAFETY: conf holds ceil(size / 64) groups, as DPDK reads for `size` entries
    // (only the masked ones); it is only read. DPDK validates port, size and the
    // queue numbers.
    Error::check(OP, unsafe {
        raw::rte_eth_dev_rss_reta_update(port, conf.as_mut_ptr(), size)
    })
    .map(drop)
}

/// Reads back the RSS redirection table of `reta_size` entries (the device's
/// `DevInfo::reta_size`), e.g. to check what [`rss_reta_update`] left there.
pub fn rss_reta_query(port: u16, reta_size: u16) -> Result<Vec<u16>, Error> {
    const OP: &str = "rte_eth_dev_rss_reta_query";
    let _up = eal::hold(OP)?;
    let n = usize::from(reta_size);
    let mut conf = reta_groups(n);
    for (i, g) in conf.iter_mut().enumerate() {
        let in_group = (n - i * rss_hf::RETA_GROUP_SIZE).min(rss_hf::RETA_GROUP_SIZE);
        g.mask = if in_group == 64 {
            u64::MAX
        } else {
            (1 << in_group) - 1
        };
    }
    // SAFETY: conf holds ceil(reta_size / 64) groups, which DPDK fills for the
    // masked entries; DPDK validates port and reta_size.
    Error::check(OP, unsafe {
        raw::rte_eth_dev_rss_reta_query(port, conf.as_mut_ptr(), reta_size)
    })?;
    Ok((0..n)
        .map(|i| conf[i / rss_hf::RETA_GROUP_SIZE].reta[i % rss_hf::RETA_GROUP_SIZE])
        .collect())
}

/// Zeroed RETA groups (no entry selected) for `entries` entries.
fn reta_groups(entries: usize) -> Vec<raw::rte_eth_rss_reta_entry64> {
    vec![raw::rte_eth_rss_reta_entry64::default(); entries.div_ceil(rss_hf::RETA_GROUP_SIZE)]
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

/// Whether the port's link is up (rte_eth_link_get_nowait: never waits
/// for autonegotiation, so a control thread may poll it). Drivers that
/// know no link state report it up once started.
pub fn link_status(port: u16) -> Result<bool, Error> {
    const OP: &str = "rte_eth_link_get_nowait";
    let _up = eal::hold(OP)?;
    // SAFETY: an all-zero rte_eth_link is a valid value (speed 0, down).
    let mut link: raw::rte_eth_link = unsafe { std::mem::zeroed() };
    // SAFETY: DPDK validates port; `link` is a valid out-pointer.
    let ret = unsafe { raw::rte_eth_link_get_nowait(port, &mut link) };
    Error::check(OP, ret)?;
    Ok(link.link_status() != 0)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_constants_match_dpdk_macros() {
        // SAFETY: the shim functions return compile-time constants; no EAL needed.
        let c = unsafe {
            [
                (rss_hf::L3_SRC_ONLY, raw::ripvs_eth_rss_l3_src_only()),
                (rss_hf::L3_DST_ONLY, raw::ripvs_eth_rss_l3_dst_only()),
                (rss_hf::L4_SRC_ONLY, raw::ripvs_eth_rss_l4_src_only()),
                (rss_hf::L4_DST_ONLY, raw::ripvs_eth_rss_l4_dst_only()),
                (
                    rss_hf::NONFRAG_IPV4_TCP,
                    raw::ripvs_eth_rss_nonfrag_ipv4_tcp(),
                ),
                (
                    rss_hf::NONFRAG_IPV4_UDP,
                    raw::ripvs_eth_rss_nonfrag_ipv4_udp(),
                ),
                (
                    rss_hf::NONFRAG_IPV4_SCTP,
                    raw::ripvs_eth_rss_nonfrag_ipv4_sctp(),
                ),
                (
                    rss_hf::NONFRAG_IPV6_TCP,
                    raw::ripvs_eth_rss_nonfrag_ipv6_tcp(),
                ),
                (
                    rss_hf::NONFRAG_IPV6_UDP,
                    raw::ripvs_eth_rss_nonfrag_ipv6_udp(),
                ),
                (
                    rss_hf::NONFRAG_IPV6_SCTP,
                    raw::ripvs_eth_rss_nonfrag_ipv6_sctp(),
                ),
            ]
        };
        for (i, (rust, c)) in c.into_iter().enumerate() {
            assert_eq!(rust, c, "constant #{i}");
        }
        assert_eq!(rss_hf::RETA_GROUP_SIZE, 64);
    }

    #[test]
    fn rx_offload_constants_match_dpdk_macros() {
        // SAFETY: the shim functions return compile-time constants; no EAL needed.
        let c = unsafe {
            [
                (
                    rx_offload::IPV4_CKSUM,
                    raw::ripvs_eth_rx_offload_ipv4_cksum(),
                ),
                (rx_offload::UDP_CKSUM, raw::ripvs_eth_rx_offload_udp_cksum()),
                (rx_offload::TCP_CKSUM, raw::ripvs_eth_rx_offload_tcp_cksum()),
                (rx_offload::RSS_HASH, raw::ripvs_eth_rx_offload_rss_hash()),
            ]
        };
        for (i, (rust, c)) in c.into_iter().enumerate() {
            assert_eq!(rust, c, "constant #{i}");
        }
    }

    #[test]
    fn reta_groups_cover_the_table() {
        assert_eq!(reta_groups(128).len(), 2);
        assert_eq!(reta_groups(512).len(), 8);
        assert_eq!(reta_groups(65).len(), 2);
        assert!(reta_groups(64).iter().all(|g| g.mask == 0));
    }
}
