//! End-to-end check of the safe layer on a real EAL with a looping-back `net_ring`
//! port. One test function: EAL starts once per process.

use arrayvec::ArrayVec;
use dpdk_sys::mbuf::rx_flags;
use dpdk_sys::{eal, ethdev, mempool, raw, ring, Mbuf, PktPool};

/// Applies each length operation through the Rust layer and through DPDK's own
/// inline (via the C shim) on twin mbufs, and requires identical results.
fn check_length_ops_match_dpdk(pool: &PktPool) {
    let mut ours = pool.alloc().expect("mbuf");
    let theirs = pool.alloc().expect("mbuf").into_raw();
    let t = theirs.as_ptr();
    let state = |m: *mut raw::rte_mbuf| {
        // SAFETY: m is a live mbuf owned by this function.
        let m = unsafe { &*m };
        (m.data_off, m.data_len, m.pkt_len)
    };
    for (op, n) in [
        (0, 100u16),
        (1, 20),
        (2, 14),
        (3, 6),
        (1, 200),
        (2, 500),
        (0, 5000),
        (3, 90),
    ] {
        // SAFETY: t is a live single-segment mbuf that nothing else touches.
        let (ok_c, ok_rust) = unsafe {
            match op {
                0 => (
                    !raw::ripvs_pktmbuf_append(t, n).is_null(),
                    ours.append(n.into()),
                ),
                1 => (
                    !raw::ripvs_pktmbuf_prepend(t, n).is_null(),
                    ours.prepend(n.into()),
                ),
                2 => (!raw::ripvs_pktmbuf_adj(t, n).is_null(), ours.adj(n.into())),
                _ => (raw::ripvs_pktmbuf_trim(t, n) == 0, ours.trim(n.into())),
            }
        };
        assert_eq!(ok_rust, ok_c, "op {op}({n}) success differs from DPDK");
        assert_eq!(
            state(ours.as_ptr()),
            state(t),
            "op {op}({n}) result differs from DPDK"
        );
    }
    assert_eq!(ours.headroom(), usize::from(state(t).0));
    assert!(!ours.append(70_000), "beyond u16 never fits");
    // SAFETY: theirs came from into_raw above and is owned here.
    drop(unsafe { Mbuf::from_raw(theirs) });
}

#[test]
fn eal_port_pool_ring_roundtrip() {
    // Two lcores on CPU 0, so remote_launch is exercised on any machine.
    let args: Vec<String> = [
        "--no-huge",
        "--no-pci",
        "-m",
        "128",
        "--lcores=0@0,1@0",
        "--log-level=error",
        "--no-shconf",
        "--vdev=net_ring0",
    ]
    .map(String::from)
    .to_vec();

    // Before init, control-path calls fail cleanly instead of touching DPDK memory.
    let err = PktPool::create("early", 63, 0, mempool::DEFAULT_DATA_ROOM, -1).unwrap_err();
    assert_eq!(err.errno(), raw::E_RTE_NO_CONFIG as i32, "{err}");

    let eal = eal::init(&args).expect("EAL init");
    assert_eq!(eal::lcore_id(), eal::main_lcore());
    assert_eq!(eal::worker_lcores(), vec![1]);
    assert!(eal::tsc_hz() > 0);
    let t0 = eal::tsc();
    assert!(eal::tsc() >= t0);
    let socket = eal::socket_id();

    // Error values carry DPDK's text.
    let err = ethdev::configure(99, 1, 1, false, 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "rte_eth_dev_configure: No such device (-19)"
    );

    // Workers run closures and hand back their result.
    eal::remote_launch(1, || eal::lcore_id() as i32 + 100).expect("launch on lcore 1");
    assert_eq!(eal::wait_lcore(1), 101);
    assert!(
        eal::remote_launch(eal::main_lcore(), || 0).is_err(),
        "main lcore is not a worker"
    );

    let pool =
        PktPool::create("smoke_pool", 1023, 32, mempool::DEFAULT_DATA_ROOM, socket).expect("pool");
    assert_eq!(pool.in_use(), 0);
    check_length_ops_match_dpdk(&pool);
    assert_eq!(pool.in_use(), 0, "length-op check leaked mbufs");

    // Port setup, in DPDK's order.
    let port = ethdev::port_by_name("net_ring0").expect("net_ring0 port");
    assert_eq!(ethdev::port_by_name("net_nope"), None);
    assert_eq!(ethdev::ports(), vec![port]);
    let info = ethdev::info(port).expect("dev info");
    assert_eq!(info.driver, "net_ring");
    assert!(
        info.max_rx_queues >= 1 && info.max_tx_queues >= 1,
        "{info:?}"
    );
    ethdev::mac_addr(port).expect("mac");
    // Receive offloads: only what the device has, and no RSS hash without RSS
    // (one queue here).
    use ethdev::rx_offload as o;
    let wanted = o::IPV4_CKSUM | o::UDP_CKSUM | o::TCP_CKSUM | o::RSS_HASH;
    let lacking = [o::IPV4_CKSUM, o::UDP_CKSUM, o::TCP_CKSUM, o::RSS_HASH]
        .into_iter()
        .find(|&b| info.rx_offload_capa & b == 0);
    if let Some(b) = lacking {
        let err = ethdev::configure_offloads(port, 1, 1, ethdev::RxSpread::Default, 0, b)
            .expect_err("an offload the device lacks");
        assert_eq!(err.errno(), raw::EINVAL as i32, "{err}");
    }
    let have = wanted & info.rx_offload_capa;
    let on = ethdev::configure_offloads(port, 1, 1, ethdev::RxSpread::Default, 0, have)
        .expect("configure");
    assert_eq!(on, have & !o::RSS_HASH, "{info:?}");
    ethdev::rx_queue_setup(port, 0, 128, socket, &pool).expect("rx queue");
    ethdev::tx_queue_setup(port, 0, 128, socket).expect("tx queue");

    let mut rx: ArrayVec<Mbuf, 32> = ArrayVec::new();
    assert_eq!(
        ethdev::rx_burst(port, 0, &mut rx),
        0,
        "bursts before start must do nothing"
    );
    ethdev::start(port).expect("start");
    ethdev::link_up(port).expect("link up");
    assert_eq!(
        ethdev::rx_burst(port, 1, &mut rx),
        0,
        "queue 1 was never set up"
    );

    // One frame out and back (net_ring loops tx to rx).
    let mut m = pool.alloc().expect("mbuf");
    assert!(m.is_empty() && m.segments() == 1);
    let (head, tail) = (m.headroom(), m.tailroom());
    assert!(m.set_len(64));
    assert_eq!(m.tailroom(), tail - 64);
    let frame: Vec<u8> = (0..64u8).collect();
    m.data_mut().copy_from_slice(&frame);
    assert_eq!((m.len(), m.headroom()), (64, head));
    let mut tx: ArrayVec<Mbuf, 32> = ArrayVec::new();
    tx.push(m);
    assert_eq!(ethdev::tx_burst(port, 0, &mut tx), 1);
    assert!(tx.is_empty(), "sent mbufs leave the vector");
    let mut got = 0;
    for _ in 0..100 {
        got += ethdev::rx_burst(port, 0, &mut rx);
        if got > 0 {
            break;
        }
    }
    assert_eq!(got, 1);
    assert_eq!(rx[0].data(), &frame[..]);
    rx[0].prefetch();
    rx[0].set_port(7);
    assert_eq!(rx[0].port(), 7);
    assert_eq!(rx[0].rss_hash(), None, "net_ring computes no RSS hash");
    assert_eq!(
        rx[0].ol_flags() & (rx_flags::IP_CKSUM_MASK | rx_flags::L4_CKSUM_MASK),
        0,
        "net_ring checks no checksum"
    );
    // What a NIC that hashed and checked the frame leaves in the mbuf.
    // SAFETY: rx[0] owns a valid mbuf and nothing else touches it; writing
    // the flags and the hash union's `rss` member is what a driver does.
    unsafe {
        let m = &mut *rx[0].as_ptr();
        m.ol_flags |= rx_flags::RSS_HASH | rx_flags::IP_CKSUM_GOOD | rx_flags::L4_CKSUM_BAD;
        m.__bindgen_anon_2.hash.rss = 0x5eed_1234;
    }
    assert_eq!(rx[0].rss_hash(), Some(0x5eed_1234));
    let f = rx[0].ol_flags();
    assert_eq!(f & rx_flags::IP_CKSUM_MASK, rx_flags::IP_CKSUM_GOOD);
    assert_eq!(f & rx_flags::L4_CKSUM_MASK, rx_flags::L4_CKSUM_BAD);
    // SAFETY: as above.
    unsafe { (*rx[0].as_ptr()).ol_flags &= !rx_flags::RSS_HASH };
    assert_eq!(rx[0].rss_hash(), None, "a hash without its flag is noise");
    rx.clear();
    let stats = ethdev::stats(port).expect("stats");
    assert_eq!((stats.ipackets, stats.opackets), (1, 1), "{stats:?}");
    assert_eq!(pool.in_use(), 0);

    // Bulk alloc is all-or-nothing and the unsent tail of a burst stays in order.
    let mut bulk: ArrayVec<Mbuf, 16> = ArrayVec::new();
    assert!(
        !pool.alloc_bulk(&mut bulk, 17),
        "more than the vector holds"
    );
    assert!(pool.alloc_bulk(&mut bulk, 10));
    for (i, m) in bulk.iter_mut().enumerate() {
        assert!(m.set_len(60));
        m.data_mut()[0] = i as u8;
    }
    assert_eq!(pool.in_use(), 10);

    // A single-producer/single-consumer ring between two handles.
    let (ring_tx, ring_rx) = ring::create("smoke_ring", 8, socket).expect("ring");
    assert_eq!(
        ring_tx.enqueue_burst(&mut bulk),
        7,
        "an 8-slot ring holds 7"
    );
    assert_eq!(bulk.len(), 3);
    assert_eq!(bulk[0].data()[0], 7, "unsent mbufs stay in order");
    assert_eq!(ring_rx.len(), 7);
    let mut small: ArrayVec<Mbuf, 4> = ArrayVec::new();
    assert_eq!(ring_rx.dequeue_burst_max(&mut small, 1), 1);
    assert_eq!(
        ring_rx.dequeue_burst(&mut small),
        3,
        "fills the remaining capacity"
    );
    let firsts: Vec<u8> = small.iter().map(|m| m.data()[0]).collect();
    assert_eq!(firsts, [0, 1, 2, 3]);
    assert_eq!(ring_tx.len(), 3);
    // The ends move to other threads (one producer, one consumer).
    let ring_rx = std::thread::spawn(move || {
        assert_eq!(ring_rx.len(), 3);
        ring_rx
    })
    .join()
    .expect("consumer thread");
    drop((ring_tx, ring_rx)); // frees the 3 still queued
    dpdk_sys::mbuf::free_bulk(&mut bulk);
    assert!(bulk.is_empty());
    drop(small);
    assert_eq!(pool.in_use(), 0);

    // Cleanup refuses while a pool is alive elsewhere... so drop everything first.
    ethdev::stop(port).expect("stop");
    assert_eq!(
        ethdev::rx_burst(port, 0, &mut rx),
        0,
        "bursts after stop must do nothing"
    );
    ethdev::close(port).expect("close");
    drop(pool);
    eal.cleanup().expect("EAL cleanup");

    // After cleanup, control-path calls fail cleanly again.
    assert_eq!(ethdev::port_by_name("net_ring0"), None);
    assert!(PktPool::create("late", 63, 0, mempool::DEFAULT_DATA_ROOM, -1).is_err());
}
