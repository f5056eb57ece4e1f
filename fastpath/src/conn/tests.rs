use super::rss::{reta_entry, toeplitz, RSS_KEY, RSS_RETA_BASE};
use super::table::Slot;
use super::*;
use core::net::{Ipv4Addr, Ipv6Addr};
use std::collections::{HashMap, HashSet};

const TCP: u8 = 6;
const UDP: u8 = 17;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// splitmix64: deterministic, good enough to make keys.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn addr(&mut self) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.next() as u32)
    }
    fn port(&mut self) -> u16 {
        self.next() as u16
    }
}

fn key(proto: u8, c: &str, cport: u16, v: &str, vport: u16) -> ConnKey<Ipv4Addr> {
    ConnKey::new(proto, ip(c), cport, ip(v), vport)
}

/// A connection from `c:cport` to `v:vport`, forwarded to `d:dport`.
fn conn(fwd: u16, c: &str, cport: u16, v: &str, vport: u16, d: &str, dport: u16) -> Conn<Ipv4Addr> {
    let mut x = Conn::new(key(TCP, c, cport, v, vport), ip(d), dport);
    x.flags = fwd;
    x
}

const VIP: &str = "192.168.1.100";
const CLIENT: &str = "10.0.0.2";
const RS: &str = "10.1.0.5";

#[test]
fn nat_entry_is_found_by_client_packets_and_server_replies() {
    let mut t = ConnTable::new(16, 1);
    let id = t
        .insert(conn(flags::MASQ, CLIENT, 40000, VIP, 80, RS, 8080), 0)
        .unwrap();
    assert_eq!(t.lookup_in(&key(TCP, CLIENT, 40000, VIP, 80)), Some(id));
    // A NAT reply comes from the real server, to the client.
    assert_eq!(t.lookup_out(&key(TCP, RS, 8080, CLIENT, 40000)), Some(id));
    assert_eq!(t.lookup_out(&key(TCP, VIP, 80, CLIENT, 40000)), None);
    for miss in [
        key(TCP, CLIENT, 40001, VIP, 80),
        key(TCP, CLIENT, 40000, VIP, 81),
        key(TCP, CLIENT, 40000, "192.168.1.101", 80),
        key(TCP, "10.0.0.3", 40000, VIP, 80),
        key(UDP, CLIENT, 40000, VIP, 80),
        // The reply key is not a client packet.
        key(TCP, RS, 8080, CLIENT, 40000),
    ] {
        assert_eq!(t.lookup_in(&miss), None, "{miss:?}");
    }
    for miss in [
        key(TCP, RS, 8081, CLIENT, 40000),
        key(TCP, "10.1.0.6", 8080, CLIENT, 40000),
        key(TCP, RS, 8080, CLIENT, 40001),
        key(TCP, RS, 8080, "10.0.0.3", 40000),
        key(UDP, RS, 8080, CLIENT, 40000),
        key(TCP, CLIENT, 40000, VIP, 80),
    ] {
        assert_eq!(t.lookup_out(&miss), None, "{miss:?}");
    }
}

#[test]
fn other_methods_match_replies_from_the_vip() {
    for fwd in [
        flags::DROUTE,
        flags::TUNNEL,
        flags::LOCALNODE,
        flags::BYPASS,
    ] {
        let mut t = ConnTable::new(4, 2);
        let id = t
            .insert(
                conn(fwd | flags::NOOUTPUT, CLIENT, 40000, VIP, 80, RS, 8080),
                0,
            )
            .unwrap();
        assert_eq!(t.lookup_in(&key(TCP, CLIENT, 40000, VIP, 80)), Some(id));
        assert_eq!(t.lookup_out(&key(TCP, VIP, 80, CLIENT, 40000)), Some(id));
        assert_eq!(t.lookup_out(&key(TCP, RS, 8080, CLIENT, 40000)), None);
        assert_eq!(t.get(id).unwrap().fwd(), fwd);
    }
}

#[test]
fn templates_are_found_only_by_template_lookups() {
    let mut t = ConnTable::new(16, 3);
    let snet = ip("10.0.0.0");
    let mut tpl = Conn::template(TCP, snet, ip(VIP), 80, ip(RS), 8080);
    tpl.timeout = secs(300);
    let tid = t.insert(tpl, 0).unwrap();
    // A connection of the same client network on the same service.
    let cid = t
        .insert(conn(flags::MASQ, "10.0.0.0", 40000, VIP, 80, RS, 8080), 0)
        .unwrap();

    assert_eq!(t.lookup_template(TCP, snet, ip(VIP), 80), Some(tid));
    assert_eq!(
        t.lookup_in(&key(TCP, "10.0.0.0", 40000, VIP, 80)),
        Some(cid)
    );
    // Templates have client port 0 and no NO_CPORT: never a connection.
    assert_eq!(t.lookup_in(&key(TCP, "10.0.0.0", 0, VIP, 80)), None);
    assert_eq!(t.lookup_out(&key(TCP, RS, 8080, "10.0.0.0", 0)), None);
    for (proto, net, vip, port) in [
        (UDP, "10.0.0.0", VIP, 80),
        (TCP, "10.0.1.0", VIP, 80),
        (TCP, "10.0.0.0", "192.168.1.101", 80),
        (TCP, "10.0.0.0", VIP, 0),
    ] {
        assert_eq!(t.lookup_template(proto, ip(net), ip(vip), port), None);
    }

    // Port-0 (and FTP) services: vport 0; fwmark services: proto 0 and the
    // mark as the virtual address.
    let p0 = t
        .insert(Conn::template(TCP, snet, ip(VIP), 0, ip(RS), 0), 0)
        .unwrap();
    let mark = Ipv4Addr::from_bits(7);
    let fw = t
        .insert(Conn::template(0, snet, mark, 0, ip(RS), 0), 0)
        .unwrap();
    assert_eq!(t.lookup_template(TCP, snet, ip(VIP), 0), Some(p0));
    assert_eq!(t.lookup_template(0, snet, mark, 0), Some(fw));
    assert_eq!(t.lookup_template(TCP, snet, ip(VIP), 80), Some(tid));

    // Invalidated: never matched again, but kept until it times out.
    t.get_mut(tid).unwrap().invalidate_template();
    assert_eq!(t.lookup_template(TCP, snet, ip(VIP), 80), None);
    assert!(t.get(tid).is_some());
    assert_eq!(t.len(), 4);
    let mut gone = vec![];
    for now in 0..=secs(300) {
        t.expire(now, usize::MAX, |id, _| {
            gone.push((id, now));
            ExpireAction::Remove
        });
    }
    assert!(gone.contains(&(tid, secs(300))), "{gone:?}");
}

#[test]
fn templates_for_port_65535_work_and_invalidate() {
    // IPVS invalidates by setting vport and dport to 0xffff: a service on
    // port 65535, or a server on it, must still find its template before,
    // and not after.
    let mut t = ConnTable::new(4, 3);
    let snet = ip("10.0.0.0");
    let a = t
        .insert(Conn::template(TCP, snet, ip(VIP), 65535, ip(RS), 8080), 0)
        .unwrap();
    let b = t
        .insert(Conn::template(TCP, snet, ip(VIP), 80, ip(RS), 65535), 0)
        .unwrap();
    assert_eq!(t.lookup_template(TCP, snet, ip(VIP), 65535), Some(a));
    assert_eq!(t.lookup_template(TCP, snet, ip(VIP), 80), Some(b));
    for id in [a, b] {
        t.get_mut(id).unwrap().invalidate_template();
        assert!(t.get(id).unwrap().is_invalidated());
    }
    assert_eq!(t.lookup_template(TCP, snet, ip(VIP), 65535), None);
    assert_eq!(t.lookup_template(TCP, snet, ip(VIP), 80), None);
}

#[test]
fn no_cport_entries_match_any_client_port_until_filled() {
    let mut t = ConnTable::new(8, 4);
    let mut data = conn(flags::MASQ, CLIENT, 0, VIP, 20, RS, 20);
    data.flags |= flags::NO_CPORT;
    let id = t.insert(data, 0).unwrap();
    assert_eq!(t.lookup_in(&key(TCP, CLIENT, 40001, VIP, 20)), Some(id));
    assert_eq!(t.lookup_in(&key(TCP, CLIENT, 0, VIP, 20)), Some(id));
    assert_eq!(t.lookup_in(&key(TCP, "10.0.0.3", 40001, VIP, 20)), None);
    let mut out = [None; 2];
    t.lookup_in_burst(
        &[
            key(TCP, CLIENT, 40001, VIP, 20),
            key(TCP, CLIENT, 40001, VIP, 21),
        ],
        &mut out,
    );
    assert_eq!(out, [Some(id), None]);

    assert!(t.fill_cport(id, 40001));
    assert!(!t.fill_cport(id, 40002));
    assert_eq!(t.lookup_in(&key(TCP, CLIENT, 40001, VIP, 20)), Some(id));
    assert_eq!(t.lookup_in(&key(TCP, CLIENT, 40002, VIP, 20)), None);
    assert_eq!(t.get(id).unwrap().flags & flags::NO_CPORT, 0);
    assert_eq!(t.remove(id).unwrap().cport(), 40001);
    assert!(t.is_empty());

    // A port-0 entry without NO_CPORT is never found (the kernel's rule).
    let id = t
        .insert(conn(flags::MASQ, CLIENT, 0, VIP, 20, RS, 20), 0)
        .unwrap();
    assert!(t.get(id).is_some());
    assert_eq!(t.lookup_in(&key(TCP, CLIENT, 0, VIP, 20)), None);
}

/// Keys whose client endpoints all hash to one bucket.
fn colliding_keys(t: &ConnTable, n: usize, rng: &mut Rng) -> Vec<ConnKey<Ipv4Addr>> {
    let first = ConnKey::new(TCP, rng.addr(), rng.port() | 1, ip(VIP), 80);
    let b = t.bucket_for(TCP, first.src, first.sport);
    let mut keys = vec![first];
    while keys.len() < n {
        let k = ConnKey::new(TCP, rng.addr(), rng.port() | 1, ip(VIP), 80);
        if t.bucket_for(TCP, k.src, k.sport) == b && !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys
}

#[test]
fn colliding_entries_share_one_chain_and_stay_distinct() {
    let mut t = ConnTable::new(64, 7);
    let mut rng = Rng(1);
    let keys = colliding_keys(&t, 48, &mut rng);
    let b = t.bucket_for(TCP, keys[0].src, keys[0].sport);
    let rs = |j: usize| Ipv4Addr::new(10, 1, 0, j as u8);
    let ids: Vec<ConnId> = keys
        .iter()
        .enumerate()
        .map(|(j, k)| {
            let mut c = Conn::new(*k, rs(j), 8000 + j as u16);
            c.flags = flags::MASQ;
            t.insert(c, 0).unwrap()
        })
        .collect();
    assert_eq!(t.chain_len(b), 48);
    let reply =
        |j: usize, k: &ConnKey<Ipv4Addr>| ConnKey::new(TCP, rs(j), 8000 + j as u16, k.src, k.sport);
    for (j, k) in keys.iter().enumerate() {
        assert_eq!(t.lookup_in(k), Some(ids[j]));
        assert_eq!(t.lookup_out(&reply(j, k)), Some(ids[j]));
    }
    // Remove from the head, the middle and the tail of the chain.
    for j in (0..48).step_by(2) {
        assert_eq!(t.remove(ids[j]).unwrap().caddr(), keys[j].src);
    }
    assert_eq!(t.chain_len(b), 24);
    for (j, k) in keys.iter().enumerate() {
        let want = (j % 2 == 1).then_some(ids[j]);
        assert_eq!(t.lookup_in(k), want);
        assert_eq!(t.lookup_out(&reply(j, k)), want);
    }
    for j in (0..48).step_by(2) {
        let mut c = Conn::new(keys[j], rs(j), 8000 + j as u16);
        c.flags = flags::MASQ;
        let id = t.insert(c, 0).unwrap();
        assert_eq!(t.lookup_in(&keys[j]), Some(id));
    }
    assert_eq!(t.chain_len(b), 48);
    let absent = colliding_keys(&t, 49, &mut Rng(99));
    assert!(absent.iter().any(|k| t.lookup_in(k).is_none()));
}

#[test]
fn a_full_table_refuses_and_counts_and_evicts_nobody() {
    let mut t = ConnTable::new(8, 5);
    let ids: Vec<_> = (0..8)
        .map(|p| {
            t.insert(conn(flags::DROUTE, CLIENT, 1000 + p, VIP, 80, RS, 80), 0)
                .unwrap()
        })
        .collect();
    for p in 8..10 {
        assert_eq!(
            t.insert(conn(flags::DROUTE, CLIENT, 1000 + p, VIP, 80, RS, 80), 0),
            Err(Full)
        );
    }
    assert_eq!(t.refused(), 2);
    assert_eq!(t.len(), 8);
    for (p, id) in ids.iter().enumerate() {
        assert_eq!(
            t.lookup_in(&key(TCP, CLIENT, 1000 + p as u16, VIP, 80)),
            Some(*id)
        );
    }
    t.remove(ids[3]).unwrap();
    assert!(t
        .insert(conn(flags::DROUTE, CLIENT, 2000, VIP, 80, RS, 80), 0)
        .is_ok());
    assert_eq!(t.refused(), 2);

    let mut none: ConnTable = ConnTable::new(0, 5);
    assert_eq!(
        none.insert(conn(flags::DROUTE, CLIENT, 1, VIP, 80, RS, 80), 0),
        Err(Full)
    );
    assert_eq!(none.refused(), 1);
    assert_eq!(none.lookup_in(&key(TCP, CLIENT, 1, VIP, 80)), None);
    let r = none.expire(100, usize::MAX, |_, _| ExpireAction::Remove);
    assert_eq!((r.removed, r.done), (0, true));
}

#[test]
fn removed_slots_are_reused() {
    let mut t = ConnTable::new(4, 6);
    let c = |p| conn(flags::DROUTE, CLIENT, p, VIP, 80, RS, 80);
    let a = t.insert(c(1), 0).unwrap();
    let b = t.insert(c(2), 0).unwrap();
    let d = t.insert(c(3), 0).unwrap();
    assert_eq!((a, b, d), (ConnId(0), ConnId(1), ConnId(2)));
    assert_eq!(t.remove(b).unwrap().cport(), 2);
    assert_eq!(t.remove(b), None);
    assert!(t.get(b).is_none() && t.get_mut(b).is_none());
    assert!(!t.touch(b, 1) && !t.expire_now(b, 1));
    assert_eq!(t.lookup_in(&key(TCP, CLIENT, 2, VIP, 80)), None);
    // The freed slot comes back before a never-used one.
    assert_eq!(t.insert(c(4), 0), Ok(b));
    assert_eq!(t.get(b).unwrap().cport(), 4);
    assert_eq!(t.insert(c(5), 0), Ok(ConnId(3)));
    assert_eq!(t.insert(c(6), 0), Err(Full));
    // Removing everything and refilling stays within the same slots.
    for id in [a, b, d, ConnId(3)] {
        t.remove(id).unwrap();
    }
    let again: HashSet<_> = (10..14).map(|p| t.insert(c(p), 0).unwrap()).collect();
    assert_eq!(again, HashSet::from([a, b, d, ConnId(3)]));
}

#[test]
fn ids_that_are_not_live_find_nothing() {
    let mut t: ConnTable = ConnTable::new(4, 6);
    for id in [ConnId(0), ConnId(3), ConnId(4), ConnId(u32::MAX)] {
        assert!(t.get(id).is_none());
        assert!(t.remove(id).is_none());
        assert!(!t.touch(id, 0));
        assert!(!t.expire_now(id, 0));
        assert!(!t.fill_cport(id, 1));
    }
}

#[test]
fn burst_lookups_equal_single_lookups() {
    let mut rng = Rng(42);
    let mut t = ConnTable::new(2000, 8);
    let mut ins = vec![];
    let mut outs = vec![];
    for j in 0..1500 {
        let k = ConnKey::new(
            if j % 3 == 0 { UDP } else { TCP },
            rng.addr(),
            rng.port() | 1,
            Ipv4Addr::new(192, 168, 1, (j % 4) as u8),
            80,
        );
        let fwd = if j % 2 == 0 {
            flags::MASQ
        } else {
            flags::DROUTE
        };
        let rs = rng.addr();
        let mut c = Conn::new(k, rs, 8080);
        c.flags = fwd;
        t.insert(c, 0).unwrap();
        ins.push(k);
        outs.push(if fwd == flags::MASQ {
            ConnKey::new(k.proto, rs, 8080, k.src, k.sport)
        } else {
            ConnKey::new(k.proto, k.dst, k.dport, k.src, k.sport)
        });
    }
    // Queries: present, absent, and present with one field off.
    let mut qin = vec![];
    let mut qout = vec![];
    for _ in 0..2000 {
        let j = rng.next() as usize % ins.len();
        match rng.next() % 4 {
            0 | 1 => {
                qin.push(ins[j]);
                qout.push(outs[j]);
            }
            2 => {
                let k = ConnKey::new(TCP, rng.addr(), rng.port(), rng.addr(), 80);
                qin.push(k);
                qout.push(k);
            }
            _ => {
                qin.push(ConnKey {
                    dport: 81,
                    ..ins[j]
                });
                qout.push(ConnKey {
                    sport: outs[j].sport ^ 1,
                    ..outs[j]
                });
            }
        }
    }
    let hits = qin.iter().filter(|k| t.lookup_in(k).is_some()).count();
    assert!(hits > 800 && hits < 1200, "{hits}");
    let sentinel = Some(ConnId(u32::MAX));
    let mut start = 0;
    for len in [0, 1, 5, 31, 32, 33, 64, 100, 257, 1000] {
        let (ki, ko) = (&qin[start..start + len], &qout[start..start + len]);
        let mut out = vec![sentinel; len];
        t.lookup_in_burst(ki, &mut out);
        let want: Vec<_> = ki.iter().map(|k| t.lookup_in(k)).collect();
        assert_eq!(out, want, "in, len {len}");
        t.lookup_out_burst(ko, &mut out);
        let want: Vec<_> = ko.iter().map(|k| t.lookup_out(k)).collect();
        assert_eq!(out, want, "out, len {len}");
        start = (start + len) % 900;
    }
    // Lengths differ: only the common prefix is answered.
    let mut out = vec![sentinel; 40];
    t.lookup_in_burst(&qin[..35], &mut out);
    let want: Vec<_> = qin[..35].iter().map(|k| t.lookup_in(k)).collect();
    assert_eq!(&out[..35], &want[..]);
    assert!(out[35..].iter().all(|o| *o == sentinel));
    let mut short = vec![sentinel; 3];
    t.lookup_in_burst(&qin[..40], &mut short);
    let want: Vec<_> = qin[..3].iter().map(|k| t.lookup_in(k)).collect();
    assert_eq!(short, want);
}

/// Steps the clock one tick at a time from `from` to `to`, expiring with
/// an unlimited budget; returns (id, tick) of each removal.
fn run(t: &mut ConnTable, from: Tick, to: Tick) -> Vec<(ConnId, Tick)> {
    let mut gone = vec![];
    for now in from..=to {
        let r = t.expire(now, usize::MAX, |id, _| {
            gone.push((id, now));
            ExpireAction::Remove
        });
        assert!(r.done);
    }
    gone
}

#[test]
fn entries_expire_exactly_at_their_timeout() {
    let n = WHEEL_SLOTS as Tick;
    let timeouts = [
        1,
        2,
        5,
        secs(2),
        secs(60),
        secs(900),
        n - 1,
        n,
        n + 1,
        2 * n + 7,
        3 * n,
    ];
    let mut t = ConnTable::new(64, 9);
    // Slots are reused, so entries are told apart by client port.
    let mut want = HashMap::new();
    let mut gone = vec![];
    let end = 3 * n + 100;
    for now in 0..=end {
        let r = t.expire(now, usize::MAX, |_, c| {
            gone.push((c.cport(), now));
            ExpireAction::Remove
        });
        assert!(r.done);
        for (j, &timeout) in timeouts.iter().enumerate() {
            if now == 17 + 3 * j as Tick {
                let port = j as u16 + 1;
                let mut c = conn(flags::DROUTE, CLIENT, port, VIP, 80, RS, 80);
                c.timeout = timeout;
                let id = t.insert(c, now).unwrap();
                assert_eq!(t.get(id).unwrap().expires(), now + timeout);
                want.insert(port, now + timeout);
            }
        }
    }
    assert_eq!(gone.len(), timeouts.len());
    for (port, at) in gone {
        assert_eq!(want[&port], at, "timeout {}", timeouts[port as usize - 1]);
    }
    assert!(t.is_empty());
}

#[test]
fn touching_postpones_lazily_and_shortening_relinks() {
    let mut t = ConnTable::new(8, 10);
    let mut c = conn(flags::DROUTE, CLIENT, 1, VIP, 80, RS, 80);
    c.timeout = 100;
    let a = t.insert(c, 0).unwrap();
    let mut c = conn(flags::DROUTE, CLIENT, 2, VIP, 80, RS, 80);
    c.timeout = 1000;
    let b = t.insert(c, 0).unwrap();

    assert!(run(&mut t, 0, 49).is_empty());
    assert!(t.touch(a, 50));
    assert_eq!(t.get(a).unwrap().expires(), 150);
    assert!(run(&mut t, 50, 99).is_empty());
    // At 100 the wheel finds `a` touched, and moves it on.
    let r = t.expire(100, usize::MAX, |_, _| panic!("nothing is due"));
    assert_eq!((r.postponed, r.removed), (1, 0));
    // A shorter timeout takes effect at once.
    t.get_mut(b).unwrap().timeout = 5;
    assert!(t.touch(b, 101));
    assert_eq!(run(&mut t, 101, 149), vec![(b, 106)]);
    assert_eq!(run(&mut t, 150, 2000), vec![(a, 150)]);
}

#[test]
fn removal_unlinks_from_the_timer_wheel() {
    // Five entries in one wheel slot; remove its head, middle and tail,
    // reuse the slots with other timeouts: each entry expires once, when
    // its own timeout says.
    let mut t = ConnTable::new(8, 17);
    let ids: Vec<_> = (1..=5)
        .map(|p| {
            let mut c = conn(flags::DROUTE, CLIENT, p, VIP, 80, RS, 80);
            c.timeout = 10;
            t.insert(c, 0).unwrap()
        })
        .collect();
    for j in [4, 2, 0] {
        t.remove(ids[j]).unwrap();
    }
    for p in [6, 7] {
        let mut c = conn(flags::DROUTE, CLIENT, p, VIP, 80, RS, 80);
        c.timeout = 20;
        t.insert(c, 0).unwrap();
    }
    let mut gone = vec![];
    for now in 0..=40 {
        t.expire(now, usize::MAX, |_, c| {
            gone.push((c.cport(), now));
            ExpireAction::Remove
        });
    }
    gone.sort();
    assert_eq!(gone, vec![(2, 10), (4, 10), (6, 20), (7, 20)]);
    assert!(t.is_empty());
}

#[test]
fn expire_does_bounded_work_and_resumes() {
    let mut t = ConnTable::new(2000, 11);
    for p in 0..1000 {
        let mut c = conn(flags::DROUTE, CLIENT, p + 1, VIP, 80, RS, 80);
        c.timeout = 10;
        t.insert(c, 0).unwrap();
    }
    let r = t.expire(9, usize::MAX, |_, _| ExpireAction::Remove);
    assert_eq!((r.removed, r.done), (0, true));
    // One unit for slot 10, then 99 entries.
    let r = t.expire(10, 100, |_, _| ExpireAction::Remove);
    assert_eq!((r.removed, r.done), (99, false));
    let mut total = r.removed;
    let mut calls = 0;
    loop {
        let r = t.expire(10, 100, |_, _| ExpireAction::Remove);
        assert!(r.removed <= 100);
        total += r.removed;
        calls += 1;
        if r.done {
            break;
        }
    }
    assert_eq!((total, calls, t.len()), (1000, 10, 0));
    let r = t.expire(10, 0, |_, _| ExpireAction::Remove);
    assert_eq!(r.removed, 0);

    // Far behind: one revolution of slots, 1000 per call.
    let mut t: ConnTable = ConnTable::new(1, 11);
    let mut calls = 0;
    while !t.expire(1_000_000, 1000, |_, _| ExpireAction::Remove).done {
        calls += 1;
        assert!(calls < 100);
    }
    assert_eq!(calls, WHEEL_SLOTS.div_ceil(1000) - 1);
}

#[test]
fn entries_left_pending_can_be_touched_and_removed() {
    // A pass that runs out of budget leaves a due slot's entries pending;
    // touching or removing them meanwhile must work as anywhere else.
    let mut t = ConnTable::new(64, 18);
    let ids: Vec<_> = (1..=40)
        .map(|p| {
            let mut c = conn(flags::DROUTE, CLIENT, p, VIP, 80, RS, 80);
            c.timeout = 10;
            t.insert(c, 0).unwrap()
        })
        .collect();
    t.expire(9, usize::MAX, |_, _| ExpireAction::Remove);
    let mut gone = vec![];
    let r = t.expire(10, 11, |_, c| {
        gone.push((c.cport(), 10));
        ExpireAction::Remove
    });
    assert_eq!((r.removed, r.done), (10, false));
    let left: Vec<_> = ids
        .iter()
        .copied()
        .filter(|&id| t.get(id).is_some())
        .collect();
    assert_eq!(left.len(), 30);
    for &id in &left[..10] {
        t.get_mut(id).unwrap().timeout = 5;
        assert!(t.touch(id, 10)); // due at 15 instead
    }
    for &id in &left[10..20] {
        t.remove(id).unwrap();
    }
    for now in 10..=20 {
        t.expire(now, usize::MAX, |_, c| {
            gone.push((c.cport(), now));
            ExpireAction::Remove
        });
    }
    let at = |tick| gone.iter().filter(|g| g.1 == tick).count();
    assert_eq!((at(10), at(15), gone.len()), (20, 10, 30));
    assert!(t.is_empty());
}

#[test]
fn memory_advice_sees_the_slots_before_they_are_written() {
    let mut seen = None;
    let t: ConnTable = ConnTable::with_memory_advice(1000, 1, |p, n| seen = Some((p as usize, n)));
    assert_eq!(seen, Some((t.slots.as_ptr() as usize, 64 * 1000)));
}

#[test]
fn rearm_keeps_a_template_while_it_controls_connections() {
    let mut t = ConnTable::new(8, 12);
    let mut tpl = Conn::template(TCP, ip(CLIENT), ip(VIP), 80, ip(RS), 80);
    tpl.timeout = secs(300);
    let tid = t.insert(tpl, 0).unwrap();
    let mut c = conn(flags::DROUTE, CLIENT, 40000, VIP, 80, RS, 80);
    c.timeout = secs(500);
    c.control = tid.0;
    let cid = t.insert(c, 0).unwrap();
    t.get_mut(tid).unwrap().n_control = 1;

    let mut log = vec![];
    for now in 0..=secs(600) {
        let mut removed = vec![];
        t.expire(now, usize::MAX, |id, c| {
            if c.n_control > 0 {
                log.push(("rearm", id, now));
                ExpireAction::Rearm(secs(60))
            } else {
                log.push(("remove", id, now));
                removed.push(c.control);
                ExpireAction::Remove
            }
        });
        // What the worker does for a removed entry's controller.
        for ctl in removed.into_iter().filter(|&c| c != NONE) {
            t.get_mut(ConnId(ctl)).unwrap().n_control -= 1;
        }
    }
    assert_eq!(
        log,
        vec![
            ("rearm", tid, 3000),
            ("rearm", tid, 3600),
            ("rearm", tid, 4200),
            ("rearm", tid, 4800),
            ("remove", cid, 5000),
            ("remove", tid, 5400),
        ]
    );
}

#[test]
fn rearm_sets_the_new_timeout() {
    let mut t = ConnTable::new(2, 12);
    let id = t
        .insert(conn(flags::DROUTE, CLIENT, 1, VIP, 80, RS, 80), 0)
        .unwrap();
    let r = t.expire(INITIAL_TIMEOUT, usize::MAX, |_, _| {
        ExpireAction::Rearm(secs(60))
    });
    assert_eq!(r.rearmed, 1);
    let c = t.get(id).unwrap();
    assert_eq!(
        (c.timeout, c.expires()),
        (secs(60), INITIAL_TIMEOUT + secs(60))
    );
}

#[test]
fn expire_now_hands_the_entry_over_at_the_next_pass() {
    let mut t = ConnTable::new(4, 13);
    let mut c = conn(flags::DROUTE, CLIENT, 1, VIP, 80, RS, 80);
    c.timeout = secs(900);
    let a = t.insert(c, 0).unwrap();
    c = conn(flags::DROUTE, CLIENT, 2, VIP, 80, RS, 80);
    c.timeout = secs(900);
    let b = t.insert(c, 0).unwrap();
    assert!(run(&mut t, 0, 49).is_empty());
    assert!(t.expire_now(a, 50));
    assert_eq!(run(&mut t, 50, 50), vec![(a, 50)]);
    // Slot 50 already taken: due at the next tick.
    assert!(t.expire_now(b, 50));
    assert_eq!(run(&mut t, 51, 60), vec![(b, 51)]);
}

#[test]
fn an_ipv4_connection_costs_64_bytes_with_its_index() {
    // The bucket heads live in the slots (as many buckets as slots), so
    // the slot is the whole per-connection cost.
    assert_eq!(size_of::<Slot<Ipv4Addr>>(), 64);
    assert_eq!(align_of::<Slot<Ipv4Addr>>(), 64);
    assert_eq!(size_of::<Conn<Ipv4Addr>>(), 48);
    // What the table really allocates, for capacities that are and are
    // not powers of two: 64 bytes per connection, plus the fixed wheel.
    for cap in [1 << 20, 1_000_000, 1_000_003] {
        let t: ConnTable = ConnTable::new(cap, 0);
        assert_eq!(size_of_val(&*t.slots), 64 * cap, "capacity {cap}");
        assert_eq!(t.memory_bytes(), 64 * cap + 4 * (WHEEL_SLOTS + 1));
    }
    // IPv6, for the record: two cache lines.
    assert_eq!(size_of::<Slot<Ipv6Addr>>(), 128);
}

#[test]
fn toeplitz_matches_the_microsoft_verification_suite() {
    let v4 = |s: &str| ip(s).octets();
    // (source, destination, sport, dport, 2-tuple hash, 4-tuple hash)
    let vectors = [
        (
            "66.9.149.187",
            "161.142.100.80",
            2794u16,
            1766u16,
            0x323e8fc2,
            0x51ccc178,
        ),
        (
            "199.92.111.2",
            "65.69.140.83",
            14230,
            4739,
            0xd718262a,
            0xc626b0ea,
        ),
        (
            "24.19.198.95",
            "12.22.207.184",
            12898,
            38024,
            0xd2d0a5de,
            0x5c2b394a,
        ),
        (
            "38.27.205.30",
            "209.142.163.6",
            48228,
            2217,
            0x82989176,
            0xafc7327f,
        ),
        (
            "153.39.163.191",
            "202.188.127.2",
            44251,
            1303,
            0x5d1809c5,
            0x10e828a2,
        ),
    ];
    for (s, d, sp, dp, h2, h4) in vectors {
        let mut input = [v4(s), v4(d)].concat();
        assert_eq!(toeplitz(&RSS_KEY, &input), h2);
        assert_eq!(rss::toeplitz_fast(&input), h2);
        input.extend(sp.to_be_bytes());
        input.extend(dp.to_be_bytes());
        assert_eq!(toeplitz(&RSS_KEY, &input), h4);
        assert_eq!(rss::toeplitz_fast(&input), h4);
    }
    let v6 = |s: &str| s.parse::<Ipv6Addr>().unwrap().octets();
    let input = [
        &v6("3ffe:2501:200:1fff::7")[..],
        &v6("3ffe:2501:200:3::1"),
        &2794u16.to_be_bytes(),
        &1766u16.to_be_bytes(),
    ]
    .concat();
    assert_eq!(toeplitz(&RSS_KEY, &input), 0x40207d3d);
}

#[test]
fn table_driven_toeplitz_equals_bit_serial() {
    let mut rng = Rng(5);
    for len in 0..=18 {
        for _ in 0..200 {
            let input: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            assert_eq!(rss::toeplitz_fast(&input), toeplitz(&RSS_KEY, &input));
        }
    }
}

#[test]
fn rss_hash_is_toeplitz_of_address_then_port() {
    let mut rng = Rng(6);
    for _ in 0..1000 {
        let (a, p) = (rng.addr(), rng.port());
        let input = [&a.octets()[..], &p.to_be_bytes()].concat();
        assert_eq!(rss_hash(a, p), toeplitz(&RSS_KEY, &input));
        let a6 = Ipv6Addr::from_bits(u128::from(rng.next()) << 64 | u128::from(rng.next()));
        let input = [&a6.octets()[..], &p.to_be_bytes()].concat();
        assert_eq!(rss_hash(a6, p), toeplitz(&RSS_KEY, &input));
    }
}

#[test]
fn owner_core_golden_values() {
    // From an independent Python Toeplitz checked against the Microsoft
    // suite: (address, port, hash, owner among 2, 3, 4, 8 cores).
    let golden = [
        ("10.0.0.2", 40000, 0x4d29d0a5, [1, 1, 1, 5]),
        ("192.168.1.1", 1024, 0xf5501925, [1, 1, 1, 5]),
        ("203.0.113.77", 65535, 0xed84cf06, [0, 0, 2, 6]),
        ("0.0.0.0", 0, 0x0, [0, 0, 0, 0]),
        ("255.255.255.255", 12345, 0x04749ab8, [0, 2, 0, 0]),
    ];
    for (a, p, h, owners) in golden {
        assert_eq!(rss_hash(ip(a), p), h, "{a}:{p}");
        for (n, want) in [2, 3, 4, 8].into_iter().zip(owners) {
            assert_eq!(owner_core(ip(a), p, n), want, "{a}:{p} of {n}");
        }
    }
    let a6: Ipv6Addr = "2001:db8::1".parse().unwrap();
    assert_eq!(rss_hash(a6, 443), 0x073e8b2e);
    assert_eq!(owner_core(a6, 443, 4), 2);
    assert_eq!(owner_core(ip("10.0.0.2"), 40000, 0), 0);
    assert_eq!(owner_core(ip("10.0.0.2"), 40000, 1), 0);
    // More cores than RETA entries: the hash's low 7 bits.
    assert_eq!(owner_core(ip("10.0.0.2"), 40000, 1000), 0x25);
}

#[test]
fn owner_core_spreads_evenly() {
    let mut rng = Rng(7);
    let n = 100_000;
    let endpoints: Vec<_> = (0..n).map(|_| (rng.addr(), rng.port())).collect();
    // One client, its whole ephemeral port range.
    let one_client: Vec<_> = (32768..61000).map(|p| (ip(CLIENT), p)).collect();
    for eps in [&endpoints, &one_client] {
        for cores in [2, 3, 4] {
            let mut count = vec![0usize; cores];
            for &(a, p) in eps.iter() {
                count[owner_core(a, p, cores)] += 1;
            }
            let fair = eps.len() as f64 / cores as f64;
            for c in &count {
                let dev = (*c as f64 - fair).abs() / fair;
                assert!(dev < 0.03, "{cores} cores: {count:?}");
            }
        }
    }
}

#[test]
fn a_reta_filled_by_reta_entry_agrees_with_owner_core() {
    let mut rng = Rng(8);
    for size in [128, 512, 2048] {
        for cores in [1, 3, 4, 6] {
            let reta: Vec<usize> = (0..size).map(|i| reta_entry(i, cores)).collect();
            for _ in 0..1000 {
                let (a, p) = (rng.addr(), rng.port());
                let h = rss_hash(a, p) as usize;
                assert_eq!(reta[h & (size - 1)], owner_core(a, p, cores));
            }
        }
    }
    assert_eq!(RSS_RETA_BASE, 128);
}

#[test]
fn the_bucket_hash_is_independent_of_the_owner() {
    // A core's connections all share their RSS hash's low bits; the
    // table's buckets must not care.
    let cap = 4096;
    let mut t = ConnTable::new(cap, 14);
    let mut rng = Rng(9);
    while t.len() < cap {
        let (a, p) = (rng.addr(), rng.port());
        if owner_core(a, p, 4) == 0 {
            let k = ConnKey::new(TCP, a, p, ip(VIP), 80);
            t.insert(Conn::new(k, ip(RS), 80), 0).unwrap();
        }
    }
    let chains: Vec<usize> = (0..cap).map(|b| t.chain_len(b)).collect();
    let empty = chains.iter().filter(|&&n| n == 0).count();
    // Uniform hashing at load 1 leaves e^-1 of the buckets empty (1507).
    assert!((1350..1650).contains(&empty), "{empty} empty buckets");
    assert!(*chains.iter().max().unwrap() <= 10);
}

#[test]
fn pages_list_every_live_entry_once_with_bounded_work() {
    let mut t = ConnTable::new(1 << 16, 15);
    let mut rng = Rng(10);
    let mut live = HashSet::new();
    for _ in 0..1000 {
        let k = ConnKey::new(TCP, rng.addr(), rng.port(), ip(VIP), 80);
        live.insert(t.insert(Conn::new(k, ip(RS), 80), 0).unwrap());
    }
    for id in live.clone().iter().filter(|id| id.0 % 3 == 0) {
        t.remove(*id).unwrap();
        live.remove(id);
    }
    let mut seen = HashSet::new();
    let mut cursor = Some(0);
    let mut pages = 0;
    while let Some(c) = cursor {
        let mut n = 0;
        cursor = t.page(c, 64, |id, conn| {
            assert_eq!(t.get(id), Some(conn));
            assert!(seen.insert(id));
            n += 1;
        });
        assert!(n <= 64);
        pages += 1;
    }
    assert_eq!(seen, live);
    // Only the used part of the 65536 slots is scanned.
    assert_eq!(pages, 1000usize.div_ceil(64));

    // A last page of one.
    let mut small: ConnTable = ConnTable::new(8, 15);
    for p in 1..=3 {
        small
            .insert(conn(flags::MASQ, CLIENT, p, VIP, 80, RS, 80), 0)
            .unwrap();
    }
    let mut n = 0;
    assert_eq!(small.page(0, 2, |_, _| n += 1), Some(2));
    assert_eq!(small.page(2, 2, |_, _| n += 1), None);
    assert_eq!(n, 3);

    let empty: ConnTable = ConnTable::new(1 << 16, 15);
    assert_eq!(empty.page(0, 64, |_, _| panic!()), None);
    assert_eq!(t.page(u32::MAX, 64, |_, _| panic!()), None);
}

#[test]
fn in_pkts_wraps_above_the_drop_entry_range() {
    let mut c = conn(flags::MASQ, CLIENT, 1, VIP, 80, RS, 80);
    assert_eq!(c.count_in_pkt(), 1);
    c.in_pkts = u16::MAX - 1;
    assert_eq!(c.count_in_pkt(), u16::MAX);
    assert_eq!(c.count_in_pkt(), 256);
    assert_eq!(c.count_in_pkt(), 257);
}

#[test]
fn an_ipv6_table_works_the_same() {
    let a = |s: &str| s.parse::<Ipv6Addr>().unwrap();
    let mut t: ConnTable<Ipv6Addr> = ConnTable::new(16, 16);
    let k = ConnKey::new(TCP, a("2001:db8::2"), 40000, a("2001:db8:1::100"), 80);
    let mut c = Conn::new(k, a("2001:db8:2::5"), 8080);
    c.flags = flags::MASQ;
    let id = t.insert(c, 0).unwrap();
    let tid = t
        .insert(
            Conn::template(TCP, a("2001:db8::"), k.dst, 80, a("2001:db8:2::5"), 8080),
            0,
        )
        .unwrap();
    assert_eq!(t.lookup_in(&k), Some(id));
    let reply = ConnKey::new(TCP, a("2001:db8:2::5"), 8080, k.src, 40000);
    assert_eq!(t.lookup_out(&reply), Some(id));
    assert_eq!(
        t.lookup_out(&ConnKey {
            sport: 8081,
            ..reply
        }),
        None
    );
    assert_eq!(
        t.lookup_template(TCP, a("2001:db8::"), k.dst, 80),
        Some(tid)
    );
    assert_eq!(t.lookup_in(&ConnKey { sport: 40001, ..k }), None);
    assert!(owner_core(k.src, k.sport, 4) < 4);
}
