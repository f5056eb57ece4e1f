//! RSS programming through a real EAL: `net_null` emulates an RSS key and a
//! redirection table, so configure with a key, RETA update and RETA query
//! make the round trip through DPDK; `net_ring` has no RSS, the path most
//! virtual devices take. One test function: EAL starts once per process.

use dpdk_sys::ethdev::{self, rss_hf, RxSpread};
use dpdk_sys::{eal, mempool, raw, PktPool};

#[test]
fn rss_key_fields_and_reta_on_virtual_devices() {
    let args: Vec<String> = [
        "--no-huge",
        "--no-pci",
        "-m",
        "128",
        "--lcores=0@0",
        "--log-level=error",
        "--no-shconf",
        "--vdev=net_ring0",
        "--vdev=net_null0",
    ]
    .map(String::from)
    .to_vec();
    let eal = eal::init(&args).expect("EAL init");
    let socket = eal::socket_id();
    let pool =
        PktPool::create("rss_pool", 1023, 32, mempool::DEFAULT_DATA_ROOM, socket).expect("pool");
    let key: Vec<u8> = (0..40).collect();

    // net_ring: no RSS at all. A keyed configure is refused before DPDK is
    // called, the RETA calls fail, and the port still configures plainly.
    let ring = ethdev::port_by_name("net_ring0").expect("net_ring0");
    let info = ethdev::info(ring).expect("info");
    assert_eq!((info.rss_offloads, info.reta_size), (0, 0), "{info:?}");
    let keyed = RxSpread::Keyed {
        key: &key,
        hf: rss_hf::NONFRAG_IPV4_TCP,
    };
    let err = ethdev::configure_spread(ring, 2, 2, keyed, 0).unwrap_err();
    assert_eq!(err.errno(), raw::EINVAL as i32, "{err}");
    ethdev::configure(ring, 1, 1, true, 0).expect("plain configure");
    assert!(ethdev::rss_reta_update(ring, &[0; 128]).is_err());
    assert!(ethdev::rss_reta_query(ring, 128).is_err());

    // net_null: emulated RSS with a RETA; it offers no _ONLY modifiers.
    let null = ethdev::port_by_name("net_null0").expect("net_null0");
    let info = ethdev::info(null).expect("info");
    assert!(info.reta_size > 0, "{info:?}");
    assert_eq!(info.rss_offloads & rss_hf::L3_SRC_ONLY, 0, "{info:?}");
    let hf = info.rss_offloads & (rss_hf::NONFRAG_IPV4_TCP | rss_hf::NONFRAG_IPV4_UDP);
    assert_ne!(hf, 0, "{info:?}");
    let key_len = match info.hash_key_size {
        0 => 40,
        n => usize::from(n),
    };
    let key: Vec<u8> = (0..key_len as u8).collect();
    // Modifiers the device lacks, or a key of the wrong length: refused.
    let bad_hf = RxSpread::Keyed {
        key: &key,
        hf: hf | rss_hf::L3_SRC_ONLY,
    };
    assert!(ethdev::configure_spread(null, 4, 4, bad_hf, 0).is_err());
    let short = RxSpread::Keyed {
        key: &key[..key_len - 1],
        hf,
    };
    assert!(ethdev::configure_spread(null, 4, 4, short, 0).is_err());
    ethdev::configure_spread(null, 4, 4, RxSpread::Keyed { key: &key, hf }, 0)
        .expect("keyed configure");
    for q in 0..4 {
        ethdev::rx_queue_setup(null, q, 128, socket, &pool).expect("rx queue");
        ethdev::tx_queue_setup(null, q, 128, socket).expect("tx queue");
    }
    ethdev::start(null).expect("start");
    let n = usize::from(info.reta_size);
    let reta: Vec<u16> = (0..n).map(|i| (i * 7 % 4) as u16).collect();
    ethdev::rss_reta_update(null, &reta).expect("RETA update");
    assert_eq!(ethdev::rss_reta_query(null, info.reta_size).unwrap(), reta);
    // A queue beyond the configured four, or a table of the wrong size: refused.
    let mut bad = reta.clone();
    bad[n - 1] = 4;
    assert!(ethdev::rss_reta_update(null, &bad).is_err());
    assert!(ethdev::rss_reta_update(null, &reta[..n / 2]).is_err());
    assert_eq!(ethdev::rss_reta_query(null, info.reta_size).unwrap(), reta);

    ethdev::stop(null).expect("stop");
    ethdev::close(null).expect("close");
    ethdev::close(ring).expect("close");
    drop(pool);
    eal.cleanup().expect("EAL cleanup");
}
