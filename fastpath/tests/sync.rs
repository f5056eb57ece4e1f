//! Connection sync in the data plane, end to end on byte buffers: what a
//! master's workers offer the sync thread (reference 8.2), what a backup's
//! workers make of the records they receive (8.5), full-table dumps, and a
//! backup standing by for its VIPs (backup_only, 8.6). Frames come from
//! the independent builder.

use fastpath::conn::{flags, owner_core, NONE, TPL_S_ASSURED};
use fastpath::io::mem::{MemIo, VecBuf};
use fastpath::ipvs::{Ipvs, Settings, Shared};
use fastpath::mailbox::{mailboxes, ConnRow, Postbox, Snapshot};
use fastpath::persist::{Tpl, TplKey};
use fastpath::proto::tcp::State;
use fastpath::proto::Timeouts;
use fastpath::sched::Kind;
use fastpath::service::counters::load;
use fastpath::service::{Dest, MarkRule, Method, Service, ServiceTable, TCP, UDP};
use fastpath::stats::{DropReason, Event};
use fastpath::sync::{
    sync_post, Installed, SyncBox, SyncConn, SyncParams, SyncPost, SyncReply, Synced,
};
use fastpath::wire::MacAddr;
use fastpath::{HostConfig, PortConfig, StaticNeighbour, Worker, WorkerStats};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

#[path = "../../tests/common/frames.rs"]
mod frames;
use frames::{arp, echo, eth, eth_raw, ip, ipv4, tcp, udp, BCAST};
#[path = "support/scalar.rs"]
mod scalar;

const P0: [u8; 6] = [2, 0, 0, 0, 0, 1];
const P1: [u8; 6] = [2, 0, 0, 0, 1, 1];
const CLI: [u8; 6] = [2, 0xc0, 0, 0, 0, 2];
const RS: [[u8; 6]; 3] = [
    [2, 0x5e, 0, 0, 0, 11],
    [2, 0x5e, 0, 0, 0, 12],
    [2, 0x5e, 0, 0, 0, 13],
];
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const VIP: &str = "10.0.0.100";
const CLIENT: &str = "10.0.0.2";
/// Records per candidate ring (room for everything a test produces).
const RING: usize = 1024;

const ES: u8 = State::Established as u8;
const FW: u8 = State::FinWait as u8;
const SR: u8 = State::SynRecv as u8;
const DR: u16 = flags::DROUTE | flags::NOOUTPUT;

fn dest(id: u32, last: u8, port: u16, method: Method, weight: u32) -> Dest {
    Dest {
        id,
        addr: Ipv4Addr::new(10, 1, 0, last),
        port,
        method,
        weight,
        last_weight: weight,
        u_threshold: 0,
        l_threshold: 0,
    }
}

fn service(id: u32, proto: u8, port: u16, sched: Kind, dests: Vec<Dest>) -> Service {
    Service {
        id,
        proto,
        vip: ip(VIP),
        port,
        fwmark: None,
        scheduler: sched,
        flags: Default::default(),
        persistent: None,
        netmask: Ipv4Addr::BROADCAST,
        ops: false,
        synproxy: false,
        dests,
    }
}

/// `service`, persistent for `secs` per client /24.
fn persistent(id: u32, proto: u8, port: u16, secs: u32, dests: Vec<Dest>) -> Service {
    let mut s = service(id, proto, port, Kind::Rr, dests);
    s.persistent = Some(secs);
    s.netmask = Ipv4Addr::new(255, 255, 255, 0);
    s
}

/// Marks everything to 10.0.2.0/24 with 9.
fn mark_rule() -> MarkRule {
    MarkRule {
        mark: 9,
        proto: 0,
        dest: ip("10.0.2.0"),
        dest_len: 24,
        ports: (1, 65535),
    }
}

/// The fwmark-9 service: DR to 10.1.0.13, port 0 (the packet's port).
fn marked() -> Service {
    let mut s = service(2, TCP, 0, Kind::Rr, vec![dest(3, 13, 0, Method::Dr, 1)]);
    s.fwmark = Some(9);
    s.vip = Ipv4Addr::UNSPECIFIED;
    s
}

fn config(services: Vec<Service>, rules: Vec<MarkRule>, max_connections: usize) -> HostConfig {
    let neighbours = (0..3)
        .map(|i| StaticNeighbour {
            port: 1,
            ip: Ipv4Addr::new(10, 1, 0, 11 + i as u8),
            mac: MacAddr(RS[i]),
        })
        .chain([StaticNeighbour {
            port: 0,
            ip: ip(CLIENT),
            mac: MacAddr(CLI),
        }])
        .collect();
    HostConfig {
        ports: vec![
            PortConfig {
                mac: MacAddr(P0),
                mtu: 1500,
                addrs: vec![(ip("10.0.0.1"), 24)],
                exception: true,
                rss_owner: false,
            },
            PortConfig {
                mac: MacAddr(P1),
                mtu: 1500,
                addrs: vec![(ip("10.1.0.1"), 24)],
                exception: true,
                rss_owner: false,
            },
        ],
        vips: vec![ip(VIP)],
        neighbours,
        neigh_limit: 64,
        services: ServiceTable::new(services, rules).unwrap(),
        max_connections,
        ..Default::default()
    }
}

struct Rig {
    io: MemIo,
    w: Worker<VecBuf>,
    stats: Arc<WorkerStats>,
    shared: Arc<Shared>,
    me: usize,
    /// What the first poll sent on ports 0 and 1 (gratuitous ARP).
    announced: (Vec<Vec<u8>>, Vec<Vec<u8>>),
}

impl Rig {
    fn new(cfg: &HostConfig, shared: Arc<Shared>, me: usize, sync: Option<SyncBox>) -> Rig {
        let stats = Arc::new(WorkerStats::default());
        let mut io = MemIo::new(2);
        io.worker = me;
        io.nworkers = shared.cores.len();
        let mut w =
            scalar::as_env_says(Worker::with_shared(cfg, stats.clone(), shared.clone(), me));
        if let Some(sb) = sync {
            w.set_sync(sb);
        }
        w.poll(&mut io);
        let announced = (io.take_tx(0), io.take_tx(1));
        Rig {
            io,
            w,
            stats,
            shared,
            me,
            announced,
        }
    }

    fn run(&mut self, port: usize, frames: &[Vec<u8>]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        for f in frames {
            self.io.push_rx(port, f);
        }
        self.w.poll(&mut self.io);
        (self.io.take_tx(0), self.io.take_tx(1))
    }

    /// (ActiveConn, InActConn) of a real server over all cores, as
    /// ipvsadm shows them.
    fn load(&self, dest: u32) -> (u32, u32) {
        let cores: Vec<_> = self.shared.cores.iter().map(|c| c.as_ref()).collect();
        load(&cores, dest)
    }

    /// (ActiveConn, InActConn) of a real server on this rig's core.
    fn mine(&self, dest: usize) -> (i64, i64) {
        let d = &self.shared.cores[self.me].dests[dest];
        (d.active.get(), d.inactive.get())
    }

    /// Connections scheduled to each of the first three real servers, on
    /// every core.
    fn scheduled(&self) -> [u64; 3] {
        [0, 1, 2].map(|d| {
            self.shared
                .cores
                .iter()
                .map(|c| c.dests[d].conns.get())
                .sum()
        })
    }

    /// Polls with the clock at every 10 ms from `from` up to `to`.
    fn tick_through(&mut self, from: u64, to: u64) {
        let mut now = from;
        while now < to {
            self.io.now = now;
            self.w.poll(&mut self.io);
            now += 10;
        }
    }

    /// The worker's whole table, listed through its control mailbox.
    fn listing(&mut self, pb: &Postbox) -> Vec<ConnRow> {
        let me = self.me;
        std::thread::scope(|s| {
            let lister = s.spawn(|| {
                let mut rows = Vec::new();
                let mut cursor = Some(0);
                while let Some(c) = cursor {
                    let (page, next) = pb.conns(me, c, 16, Duration::from_secs(10)).unwrap();
                    rows.extend(page);
                    cursor = next;
                }
                rows
            });
            while !lister.is_finished() {
                self.w.poll(&mut self.io);
            }
            lister.join().unwrap()
        })
    }
}

fn tcp_from(src: &str, dst: &str, sport: u16, dport: u16, fl: u8, data: &[u8]) -> Vec<u8> {
    let seg = tcp(src, dst, sport, dport, fl, data);
    eth(P0, CLI, 0x0800, &ipv4(src, dst, 6, 64, &seg))
}

fn from_client(dport: u16, sport: u16, fl: u8) -> Vec<u8> {
    tcp_from(CLIENT, VIP, sport, dport, fl, &[])
}

fn data_from_client(dport: u16, sport: u16) -> Vec<u8> {
    tcp_from(CLIENT, VIP, sport, dport, ACK | PSH, b"data")
}

fn dgram(dport: u16, sport: u16) -> Vec<u8> {
    let u = udp(CLIENT, VIP, sport, dport, b"q", true);
    eth(P0, CLI, 0x0800, &ipv4(CLIENT, VIP, 17, 64, &u))
}

/// A NAT real server's reply (from 10.1.0.`last`) to the client.
fn reply(last: u8, sport: u16, dport: u16, fl: u8) -> Vec<u8> {
    let rs = format!("10.1.0.{last}");
    let seg = tcp(&rs, CLIENT, sport, dport, fl, b"r");
    eth(
        P1,
        RS[last as usize - 11],
        0x0800,
        &ipv4(&rs, CLIENT, 6, 64, &seg),
    )
}

/// What DR sends real server `rs` for the client's segment `fl` from
/// `sport` to `dst:dport`.
fn dr_out(rs: usize, dst: &str, sport: u16, dport: u16, fl: u8) -> Vec<u8> {
    let seg = tcp(CLIENT, dst, sport, dport, fl, &[]);
    eth_raw(RS[rs], P1, 0x0800, &ipv4(CLIENT, dst, 6, 63, &seg))
}

/// Two client ports of 10.0.0.2 that different workers (of 2) own.
fn ports_on_two_cores() -> (u16, u16) {
    let on = |w| {
        (40000u16..)
            .find(|&p| owner_core(ip(CLIENT), p, 2) == w)
            .unwrap()
    };
    (on(0), on(1))
}

fn drain(post: &mut SyncPost, w: usize) -> Vec<SyncConn> {
    std::iter::from_fn(|| post.rings[w].pop()).collect()
}

/// A lone master worker (`params` None: no master daemon, though the
/// ring is connected) and the sync thread's end.
fn master(services: Vec<Service>, params: Option<SyncParams>) -> (Rig, SyncPost) {
    let mut cfg = config(services, vec![], 1024);
    cfg.settings.sync = params;
    let (post, mut boxes) = sync_post(1, RING);
    let r = Rig::new(&cfg, Arc::new(Shared::new(1, 64)), 0, Some(boxes.remove(0)));
    (r, post)
}

/// Sends one client frame, which must be forwarded to a real server, and
/// returns the records it produced.
fn step(r: &mut Rig, post: &mut SyncPost, f: Vec<u8>) -> Vec<SyncConn> {
    let (o0, o1) = r.run(0, &[f]);
    assert!(o0.is_empty());
    assert_eq!(o1.len(), 1, "forwarded");
    drain(post, 0)
}

/// The record of the client's connection from `cport` to VIP:`vport`,
/// forwarded to 10.1.0.`last`:`dport`, with the master's ids 5 and 7.
fn conn_rec(proto: u8, cport: u16, vport: u16, last: u8, dport: u16) -> SyncConn {
    SyncConn {
        proto,
        state: 0,
        flags: 0,
        caddr: ip(CLIENT),
        cport,
        vaddr: ip(VIP),
        vport,
        daddr: Ipv4Addr::new(10, 1, 0, last),
        dport,
        timeout_s: 0,
        svc: 5,
        dest: 7,
        controlled: false,
        template_only: false,
    }
}

fn with(r: SyncConn, state: u8, fl: u16, timeout_s: u32) -> SyncConn {
    SyncConn {
        state,
        flags: fl,
        timeout_s,
        ..r
    }
}

mod master {
    use super::*;

    fn dr_service() -> Service {
        service(5, TCP, 80, Kind::Rr, vec![dest(7, 11, 80, Method::Dr, 1)])
    }

    #[test]
    fn tcp_dr_is_sent_at_the_third_established_packet_every_fiftieth_and_at_once_on_closing() {
        let (mut r, mut post) = master(vec![dr_service()], Some(SyncParams::default()));
        assert!(
            step(&mut r, &mut post, from_client(80, 40000, SYN)).is_empty(),
            "SYN_RECV is not synced"
        );
        assert!(
            step(&mut r, &mut post, from_client(80, 40000, ACK)).is_empty(),
            "ESTABLISHED now, but only the second packet"
        );
        let mut sent = Vec::new();
        for n in 3..=110u16 {
            for rec in step(&mut r, &mut post, data_from_client(80, 40000)) {
                sent.push((n, rec));
            }
        }
        let est = with(conn_rec(TCP, 40000, 80, 11, 80), ES, DR, 900);
        assert_eq!(sent, vec![(3, est), (53, est), (103, est)]);
        // The client's FIN moves it to FIN_WAIT (InActConn): sent at once,
        // at packet 111, whatever the count.
        let fin = step(&mut r, &mut post, from_client(80, 40000, FIN | ACK));
        let closing = with(est, FW, DR | flags::INACTIVE, 120);
        assert_eq!(fin, vec![closing]);
        assert_eq!(r.load(7), (0, 1));
        // Then the count rules again: packet 153.
        let mut sent = Vec::new();
        for n in 112..=160u16 {
            for rec in step(&mut r, &mut post, from_client(80, 40000, ACK)) {
                sent.push((n, rec));
            }
        }
        assert_eq!(sent, vec![(153, closing)]);
        assert_eq!(post.rings[0].drops(), 0);
    }

    #[test]
    fn nat_replies_never_produce_records_but_the_state_they_change_is_forced_next() {
        let svc = service(
            5,
            TCP,
            8080,
            Kind::Rr,
            vec![dest(7, 12, 80, Method::Nat, 1)],
        );
        let (mut r, mut post) = master(vec![svc], Some(SyncParams::default()));
        let back = |r: &mut Rig, post: &mut SyncPost, fl| {
            let (o0, o1) = r.run(1, &[reply(12, 80, 40000, fl)]);
            assert_eq!((o0.len(), o1.len()), (1, 0), "to the client");
            drain(post, 0)
        };
        assert!(step(&mut r, &mut post, from_client(8080, 40000, SYN)).is_empty());
        assert!(back(&mut r, &mut post, SYN | ACK).is_empty());
        assert!(step(&mut r, &mut post, from_client(8080, 40000, ACK)).is_empty());
        // A hundred replies count nothing and send nothing.
        for _ in 0..100 {
            assert!(back(&mut r, &mut post, ACK | PSH).is_empty());
        }
        let est = with(conn_rec(TCP, 40000, 8080, 12, 80), ES, flags::MASQ, 900);
        assert_eq!(
            step(&mut r, &mut post, data_from_client(8080, 40000)),
            vec![est],
            "the third incoming packet"
        );
        // The server closes: FIN_WAIT, yet nothing until the client sends.
        assert!(back(&mut r, &mut post, FIN | ACK).is_empty());
        assert_eq!(r.load(7), (0, 1));
        assert_eq!(
            step(&mut r, &mut post, from_client(8080, 40000, ACK)),
            vec![with(est, FW, flags::INACTIVE, 120)]
        );
    }

    #[test]
    fn udp_is_sent_at_the_third_datagram_and_every_fiftieth() {
        let svc = service(5, UDP, 53, Kind::Rr, vec![dest(7, 13, 53, Method::Dr, 1)]);
        let (mut r, mut post) = master(vec![svc], Some(SyncParams::default()));
        let mut sent = Vec::new();
        for n in 1..=110u16 {
            for rec in step(&mut r, &mut post, dgram(53, 5000)) {
                sent.push((n, rec));
            }
        }
        let rec = with(
            conn_rec(UDP, 5000, 53, 13, 53),
            0,
            DR | flags::INACTIVE,
            300,
        );
        assert_eq!(sent, vec![(3, rec), (53, rec), (103, rec)]);
    }

    #[test]
    fn without_a_master_daemon_nothing_is_ever_offered() {
        let mut ops = persistent(3, UDP, 53, 300, vec![dest(4, 13, 53, Method::Dr, 1)]);
        ops.ops = true;
        let svcs = vec![
            dr_service(),
            service(
                1,
                TCP,
                8080,
                Kind::Rr,
                vec![dest(2, 12, 80, Method::Nat, 1)],
            ),
            persistent(6, TCP, 443, 10, vec![dest(8, 11, 443, Method::Dr, 1)]),
            service(9, UDP, 54, Kind::Rr, vec![dest(10, 13, 54, Method::Dr, 1)]),
            ops,
        ];
        let (mut r, mut post) = master(svcs, None);
        for port in [80, 443] {
            step(&mut r, &mut post, from_client(port, 40000, SYN));
            for _ in 0..110 {
                step(&mut r, &mut post, from_client(port, 40000, ACK));
            }
            step(&mut r, &mut post, from_client(port, 40000, FIN | ACK));
        }
        step(&mut r, &mut post, from_client(8080, 40000, SYN));
        r.run(1, &[reply(12, 80, 40000, SYN | ACK)]);
        for _ in 0..110 {
            step(&mut r, &mut post, from_client(8080, 40000, ACK));
        }
        for _ in 0..110 {
            step(&mut r, &mut post, dgram(54, 5000));
            step(&mut r, &mut post, dgram(53, 5000));
        }
        // The 443 template outlives its 10 s under its connection (it
        // still maps the client), and is not offered either.
        let k = TplKey {
            proto: TCP,
            snet: ip("10.0.0.0"),
            vaddr: ip(VIP),
            vport: 443,
        };
        r.tick_through(10_000, 11_000);
        assert!(r.shared.templates.get(&k).is_some());
        assert!(post.rings[0].is_empty());
        assert_eq!(post.rings[0].drops(), 0);
    }
}

mod templates {
    use super::*;

    fn sticky() -> Service {
        persistent(5, TCP, 80, 300, vec![dest(7, 11, 80, Method::Dr, 1)])
    }

    fn tpl_key() -> TplKey {
        TplKey {
            proto: TCP,
            snet: ip("10.0.0.0"),
            vaddr: ip(VIP),
            vport: 80,
        }
    }

    #[test]
    fn a_persistent_service_sends_its_connections_as_controlled() {
        let (mut r, mut post) = master(vec![sticky()], Some(SyncParams::default()));
        assert!(step(&mut r, &mut post, from_client(80, 40000, SYN)).is_empty());
        assert!(step(&mut r, &mut post, from_client(80, 40000, ACK)).is_empty());
        let rec = SyncConn {
            controlled: true,
            ..with(conn_rec(TCP, 40000, 80, 11, 80), ES, DR, 900)
        };
        let mut sent = Vec::new();
        for n in 3..=60u16 {
            for rec in step(&mut r, &mut post, data_from_client(80, 40000)) {
                sent.push((n, rec));
            }
        }
        assert_eq!(sent, vec![(3, rec), (53, rec)]);
    }

    #[test]
    fn a_controlled_connection_outside_the_synced_states_refreshes_only_its_template() {
        let plain = service(6, TCP, 81, Kind::Rr, vec![dest(8, 11, 81, Method::Dr, 1)]);
        let (mut r, mut post) = master(vec![sticky(), plain], Some(SyncParams::default()));
        // Retransmitted SYNs keep it in SYN_RECV; the third is due by the
        // count, but only the template may go.
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(step(&mut r, &mut post, from_client(80, 40000, SYN)));
            assert!(step(&mut r, &mut post, from_client(81, 40000, SYN)).is_empty());
        }
        let rec = SyncConn {
            controlled: true,
            template_only: true,
            ..with(conn_rec(TCP, 40000, 80, 11, 80), SR, DR, 60)
        };
        assert_eq!(got, vec![vec![], vec![], vec![rec]]);
    }

    #[test]
    fn persist_mode_sends_the_templates_of_controlled_connections_only() {
        let params = SyncParams {
            persist_mode: true,
            ..SyncParams::default()
        };
        let plain = service(6, TCP, 81, Kind::Rr, vec![dest(8, 11, 81, Method::Dr, 1)]);
        let (mut r, mut post) = master(vec![sticky(), plain], Some(params));
        let mut sent = Vec::new();
        for port in [80, 81] {
            for n in 1..=60u16 {
                let f = if n == 1 {
                    from_client(port, 40000, SYN)
                } else {
                    data_from_client(port, 40000)
                };
                for rec in step(&mut r, &mut post, f) {
                    sent.push((n, rec));
                }
            }
            // A change into FIN_WAIT forces nothing for the controlled one.
            for rec in step(&mut r, &mut post, from_client(port, 40000, FIN | ACK)) {
                sent.push((61, rec));
            }
        }
        let tpl = SyncConn {
            controlled: true,
            template_only: true,
            ..with(conn_rec(TCP, 40000, 80, 11, 80), ES, DR, 900)
        };
        let plain = SyncConn {
            svc: 6,
            dest: 8,
            ..with(conn_rec(TCP, 40000, 81, 11, 81), ES, DR, 900)
        };
        let plain_fin = with(plain, FW, DR | flags::INACTIVE, 120);
        assert_eq!(
            sent,
            vec![
                (3, tpl),
                (53, tpl),
                (3, plain),
                (53, plain),
                (61, plain_fin)
            ]
        );
    }

    #[test]
    fn one_packet_services_send_only_their_templates() {
        let mut ops = persistent(
            5,
            UDP,
            53,
            300,
            vec![
                dest(7, 13, 53, Method::Dr, 1),
                dest(8, 12, 53, Method::Dr, 1),
            ],
        );
        ops.ops = true;
        let mut plain = service(6, UDP, 54, Kind::Rr, vec![dest(9, 11, 54, Method::Dr, 1)]);
        plain.ops = true;
        let (mut r, mut post) = master(vec![ops, plain], Some(SyncParams::default()));
        let rec = SyncConn {
            controlled: true,
            template_only: true,
            ..with(
                conn_rec(UDP, 5000, 53, 13, 53),
                0,
                DR | flags::INACTIVE | flags::ONE_PACKET,
                300,
            )
        };
        for n in 1..=5 {
            // Every datagram, to the template's server.
            assert_eq!(
                step(&mut r, &mut post, dgram(53, 5000)),
                vec![rec],
                "datagram {n}"
            );
            assert!(step(&mut r, &mut post, dgram(54, 5000)).is_empty());
        }
        assert_eq!((r.load(7), r.load(9)), ((0, 0), (0, 0)), "no entries left");
    }

    #[test]
    fn a_template_re_armed_under_a_connection_is_offered_from_the_tick() {
        let (mut r, mut post) = master(vec![sticky()], Some(SyncParams::default()));
        step(&mut r, &mut post, from_client(80, 40000, SYN));
        step(&mut r, &mut post, from_client(80, 40000, ACK));
        assert!(drain(&mut post, 0).is_empty());
        let rearmed = SyncConn {
            proto: TCP,
            state: TPL_S_ASSURED,
            flags: flags::TEMPLATE,
            caddr: ip("10.0.0.0"),
            cport: 0,
            vaddr: ip(VIP),
            vport: 80,
            daddr: ip("10.1.0.11"),
            dport: 80,
            timeout_s: 60,
            svc: NONE,
            dest: 7,
            controlled: false,
            template_only: false,
        };
        // Every template shard is visited within 64 ticks.
        r.tick_through(299_000, 300_000);
        assert!(drain(&mut post, 0).is_empty(), "not before its 300 s");
        r.tick_through(300_000, 300_700);
        assert_eq!(drain(&mut post, 0), vec![rearmed]);
        let t = r.shared.templates.get(&tpl_key()).unwrap();
        assert!((360_000..360_700).contains(&t.sync_end_ms), "{t:?}");
        assert!(t.expires_ms <= 300_000, "its own expiry is not pushed on");
        let again = t.sync_end_ms - 30_000;
        r.tick_through(300_700, again);
        assert!(drain(&mut post, 0).is_empty(), "the backup's copy lives on");
        r.tick_through(again, again + 700);
        assert_eq!(
            drain(&mut post, 0),
            vec![rearmed],
            "re-sent at half its life"
        );
    }
}

#[test]
fn a_full_ring_loses_records_counts_them_and_forwarding_goes_on() {
    let svc = service(5, UDP, 53, Kind::Rr, vec![dest(7, 13, 53, Method::Dr, 1)]);
    let mut cfg = config(vec![svc], vec![], 1024);
    cfg.settings.sync = Some(SyncParams::default());
    let (mut post, mut boxes) = sync_post(1, 2);
    let mut r = Rig::new(&cfg, Arc::new(Shared::new(1, 64)), 0, Some(boxes.remove(0)));
    // Four clients, three datagrams each: four records for two slots.
    let burst: Vec<_> = (0..3)
        .flat_map(|_| (0..4).map(|i| dgram(53, 6000 + i)))
        .collect();
    let (_, out) = r.run(0, &burst);
    assert_eq!(out.len(), 12, "every datagram forwarded");
    assert_eq!(post.rings[0].drops(), 2);
    let cports: Vec<u16> = drain(&mut post, 0).iter().map(|c| c.cport).collect();
    assert_eq!(cports, vec![6000, 6001]);
    // Room again: the next record goes through, the count stays.
    for _ in 0..3 {
        let (_, out) = r.run(0, &[dgram(53, 6100)]);
        assert_eq!(out.len(), 1);
    }
    let cports: Vec<u16> = drain(&mut post, 0).iter().map(|c| c.cport).collect();
    assert_eq!(cports, vec![6100]);
    assert_eq!(post.rings[0].drops(), 2);
}

mod backup {
    use super::*;

    struct Backup {
        rigs: Vec<Rig>,
        post: SyncPost,
        pb: Postbox,
    }

    fn backup(services: Vec<Service>, rules: Vec<MarkRule>, n: usize, max: usize) -> Backup {
        backup_with(config(services, rules, max), n)
    }

    fn backup_with(cfg: HostConfig, n: usize) -> Backup {
        let shared = Arc::new(Shared::new(n, 64));
        let (post, boxes) = sync_post(n, RING);
        let (pb, mbs) = mailboxes(n);
        let rigs = boxes
            .into_iter()
            .zip(mbs)
            .enumerate()
            .map(|(w, (sb, mb))| {
                let mut r = Rig::new(&cfg, shared.clone(), w, Some(sb));
                r.w.set_mailbox(mb);
                r
            })
            .collect();
        Backup { rigs, post, pb }
    }

    impl Backup {
        /// Hands worker `w` a batch, lets it poll, and returns its answer.
        fn install(&mut self, w: usize, batch: &[SyncConn]) -> Installed {
            self.install_marked(w, batch, 0)
        }

        fn install_marked(&mut self, w: usize, batch: &[SyncConn], fwmark: u32) -> Installed {
            let sent: Vec<Synced> = batch.iter().map(|&rec| Synced { rec, fwmark }).collect();
            assert!(self.post.install(w, sent.clone()).is_ok());
            let r = &mut self.rigs[w];
            r.w.poll(&mut r.io);
            match self.post.reply(Duration::ZERO) {
                Some(SyncReply::Installed {
                    worker,
                    batch,
                    result,
                }) => {
                    assert_eq!(worker, w);
                    assert_eq!(batch, sent, "the batch comes back");
                    result
                }
                _ => panic!("no answer from worker {w}"),
            }
        }

        fn listing(&mut self, w: usize) -> Vec<ConnRow> {
            self.rigs[w].listing(&self.pb)
        }
    }

    fn installed(created: u32, updated: u32) -> Installed {
        Installed {
            created,
            updated,
            ..Default::default()
        }
    }

    /// The row the listing shows for a synced entry of `r` with `fl` and
    /// `expires_ms` left.
    fn row(r: &SyncConn, fl: u16, expires_ms: u64) -> ConnRow {
        ConnRow {
            proto: r.proto,
            caddr: r.caddr,
            cport: r.cport,
            vaddr: r.vaddr,
            vport: r.vport,
            daddr: r.daddr,
            dport: r.dport,
            state: r.state,
            flags: fl | flags::SYNC,
            expires_ms,
        }
    }

    /// rr would give any new client .11: .12 has weight 0.
    fn rr_to_11() -> Service {
        service(
            0,
            TCP,
            80,
            Kind::Rr,
            vec![
                dest(0, 11, 80, Method::Dr, 1),
                dest(1, 12, 80, Method::Dr, 0),
            ],
        )
    }

    /// A record from a master whose ids (5, 7) mean nothing here.
    fn est(cport: u16, last: u8) -> SyncConn {
        with(conn_rec(TCP, cport, 80, last, 80), ES, DR, 900)
    }

    #[test]
    fn a_record_becomes_an_entry_of_its_owner_that_forwards_without_scheduling() {
        let mut b = backup(vec![rr_to_11()], vec![], 2, 1024);
        let (_, on1) = ports_on_two_cores();
        let rec = est(on1, 12);
        b.rigs[1].io.now = 2_000;
        assert_eq!(b.install(1, &[rec]), installed(1, 0));
        assert_eq!(b.rigs[1].mine(1), (1, 0), "ActiveConn on its core");
        assert_eq!((b.rigs[1].load(0), b.rigs[1].load(1)), ((0, 0), (1, 0)));
        assert_eq!(b.listing(1), vec![row(&rec, DR, 900_000)]);
        assert!(b.listing(0).is_empty());
        // The client's next segment, at its owner: straight to .12.
        let (o0, o1) = b.rigs[1].run(0, &[from_client(80, on1, ACK)]);
        assert!(o0.is_empty());
        assert_eq!(o1, vec![dr_out(1, VIP, on1, 80, ACK)]);
        assert_eq!(b.rigs[1].stats.count(Event::Redirected), 0);
        assert_eq!(b.rigs[1].scheduled(), [0, 0, 0], "nothing scheduled");
        assert_eq!(b.rigs[1].shared.cores[1].dests[1].in_pkts.get(), 1);
        // Through the other worker, it is handed over first.
        let (o0, o1) = b.rigs[0].run(0, &[from_client(80, on1, ACK)]);
        assert!(o0.is_empty() && o1.is_empty());
        assert_eq!(b.rigs[0].stats.count(Event::Redirected), 1);
        let (to, pkt) = b.rigs[0].io.to_peers.pop().unwrap();
        assert_eq!(to, 1);
        b.rigs[1].io.from_peers.push_back(pkt);
        let (_, o1) = b.rigs[1].run(0, &[]);
        assert_eq!(o1, vec![dr_out(1, VIP, on1, 80, ACK)]);
    }

    #[test]
    fn an_update_moves_state_timer_and_counts() {
        let mut b = backup(vec![rr_to_11()], vec![], 1, 1024);
        let rec = est(40000, 12);
        assert_eq!(b.install(0, &[rec]), installed(1, 0));
        let closing = with(rec, FW, DR | flags::INACTIVE, 120);
        b.rigs[0].io.now = 5_000;
        assert_eq!(b.install(0, &[closing]), installed(0, 1));
        assert_eq!(b.rigs[0].mine(1), (0, 1));
        assert_eq!(
            b.listing(0),
            vec![row(&closing, DR | flags::INACTIVE, 120_000)]
        );
        b.rigs[0].io.now = 7_000;
        assert_eq!(b.install(0, &[rec]), installed(0, 1));
        assert_eq!(b.rigs[0].mine(1), (1, 0));
        assert_eq!(b.listing(0), vec![row(&rec, DR, 900_000)]);
        // An update that keeps the activity moves no count.
        assert_eq!(b.install(0, &[with(rec, ES, DR, 600)]), installed(0, 1));
        assert_eq!(b.rigs[0].mine(1), (1, 0));
        let (_, o1) = b.rigs[0].run(0, &[from_client(80, 40000, ACK)]);
        assert_eq!(o1, vec![dr_out(1, VIP, 40000, 80, ACK)]);
        // The synced timer runs out like any other.
        b.rigs[0].tick_through(600_000 + 7_000, 600_000 + 7_200);
        assert_eq!(b.rigs[0].mine(1), (1, 0), "touched by the ACK at 7 s");
        b.rigs[0].tick_through(900_000 + 7_000, 900_000 + 7_200);
        assert_eq!(b.rigs[0].mine(1), (0, 0));
        assert!(b.listing(0).is_empty());
    }

    #[test]
    fn a_record_for_another_server_replaces_the_entry_only_when_active() {
        let mut b = backup(vec![rr_to_11()], vec![], 1, 1024);
        let rec = est(40000, 12);
        assert_eq!(b.install(0, &[rec]), installed(1, 0));
        // Inactive and elsewhere: it describes the entry the master
        // replaced; ignored.
        let old = with(est(40000, 11), FW, DR | flags::INACTIVE, 120);
        assert_eq!(
            b.install(0, &[old]),
            Installed {
                stale: 1,
                ..Default::default()
            }
        );
        assert_eq!(b.listing(0), vec![row(&rec, DR, 900_000)]);
        assert_eq!((b.rigs[0].mine(0), b.rigs[0].mine(1)), ((0, 0), (1, 0)));
        // Active and elsewhere: the master rescheduled the client.
        let moved = est(40000, 11);
        assert_eq!(b.install(0, &[moved]), installed(1, 0));
        assert_eq!(b.listing(0), vec![row(&moved, DR, 900_000)]);
        assert_eq!((b.rigs[0].mine(0), b.rigs[0].mine(1)), ((1, 0), (0, 0)));
        let (_, o1) = b.rigs[0].run(0, &[from_client(80, 40000, ACK)]);
        assert_eq!(o1, vec![dr_out(0, VIP, 40000, 80, ACK)]);
    }

    #[test]
    fn a_replaced_local_connection_lets_go_of_its_template() {
        let svc = persistent(
            0,
            TCP,
            80,
            300,
            vec![
                dest(0, 11, 80, Method::Dr, 1),
                dest(1, 12, 80, Method::Dr, 1),
            ],
        );
        let mut b = backup(vec![svc], vec![], 1, 1024);
        // Scheduled here (say, before this director stood by): .11.
        let (_, o1) = b.rigs[0].run(0, &[from_client(80, 40000, SYN)]);
        assert_eq!(o1, vec![dr_out(0, VIP, 40000, 80, SYN)]);
        let k = TplKey {
            proto: TCP,
            snet: ip("10.0.0.0"),
            vaddr: ip(VIP),
            vport: 80,
        };
        assert_eq!(b.rigs[0].shared.templates.get(&k).unwrap().n_control, 1);
        assert_eq!(b.rigs[0].mine(0), (1, 0), "SYN_RECV is active");
        assert_eq!(b.install(0, &[est(40000, 12)]), installed(1, 0));
        assert_eq!(b.rigs[0].shared.templates.get(&k).unwrap().n_control, 0);
        assert_eq!((b.rigs[0].mine(0), b.rigs[0].mine(1)), ((0, 0), (1, 0)));
    }

    #[test]
    fn a_record_with_no_local_service_keeps_its_method_and_forwards_to_its_server() {
        let mut b = backup(vec![rr_to_11()], vec![], 1, 1024);
        let nat = with(conn_rec(TCP, 40000, 9998, 13, 8080), ES, flags::MASQ, 900);
        let dr = with(conn_rec(TCP, 40000, 9999, 13, 9999), ES, DR, 900);
        // Bits a backup does not take (BACKUP_MASK): ONE_PACKET would
        // remove the entry after a packet; the others are no wire flags.
        let noise = flags::ONE_PACKET | 0x0040 | 0x0010 | 0xc000 | flags::SYNC;
        let sent = SyncConn {
            flags: DR | noise,
            ..dr
        };
        assert_eq!(b.install(0, &[nat, sent]), installed(2, 0));
        let mut rows = b.listing(0);
        rows.sort_by_key(|r| r.vport);
        assert_eq!(rows, vec![row(&nat, 0, 900_000), row(&dr, DR, 900_000)]);
        for d in 0..3 {
            assert_eq!(b.rigs[0].mine(d), (0, 0), "no local server to count");
        }
        let (o0, o1) = b.rigs[0].run(0, &[from_client(9998, 40000, ACK)]);
        assert!(o0.is_empty());
        let seg = tcp(CLIENT, "10.1.0.13", 40000, 8080, ACK, &[]);
        assert_eq!(
            o1,
            vec![eth_raw(
                RS[2],
                P1,
                0x0800,
                &ipv4(CLIENT, "10.1.0.13", 6, 63, &seg)
            )],
            "NAT to the record's server"
        );
        let (o0, _) = b.rigs[0].run(1, &[reply(13, 8080, 40000, ACK)]);
        let seg = tcp(VIP, CLIENT, 9998, 40000, ACK, b"r");
        assert_eq!(
            o0,
            vec![eth_raw(CLI, P0, 0x0800, &ipv4(VIP, CLIENT, 6, 63, &seg))],
            "and its replies back from the VIP"
        );
        for _ in 0..2 {
            let (_, o1) = b.rigs[0].run(0, &[from_client(9999, 40000, ACK)]);
            assert_eq!(o1, vec![dr_out(2, VIP, 40000, 9999, ACK)]);
        }
        assert_eq!(b.rigs[0].stats.drops(DropReason::DestRemoved), 0);
        assert_eq!(b.listing(0).len(), 2);
    }

    /// With expire_nodest_conn, IPVS expires an entry whose server was
    /// removed or quiesced; one bound to no server has neither.
    #[test]
    fn an_unbound_record_survives_expire_nodest_conn() {
        let mut cfg = config(vec![rr_to_11()], vec![], 1024);
        cfg.settings.expire_nodest_conn = true;
        let mut b = backup_with(cfg, 1);
        let dr = with(conn_rec(TCP, 40000, 9999, 13, 9999), ES, DR, 900);
        assert_eq!(b.install(0, &[dr]), installed(1, 0));
        for fl in [SYN, ACK] {
            let (_, o1) = b.rigs[0].run(0, &[from_client(9999, 40000, fl)]);
            assert_eq!(o1, vec![dr_out(2, VIP, 40000, 9999, fl)]);
        }
        assert_eq!(b.rigs[0].stats.drops(DropReason::NoService), 0);
        assert_eq!(b.listing(0), vec![row(&dr, DR, 900_000)]);
    }

    #[test]
    fn a_bound_server_supplies_the_method() {
        let nat = service(
            4,
            TCP,
            8080,
            Kind::Rr,
            vec![dest(2, 12, 80, Method::Nat, 1)],
        );
        let mut b = backup(vec![rr_to_11(), nat, marked()], vec![mark_rule()], 1, 1024);
        // A fwmark service's server at port 0 is DR; the master said NAT.
        let rec = SyncConn {
            vaddr: ip("10.0.2.5"),
            ..with(conn_rec(TCP, 40000, 443, 13, 443), ES, flags::MASQ, 900)
        };
        assert_eq!(b.install_marked(0, &[rec], 9), installed(1, 0));
        assert_eq!(b.rigs[0].mine(3), (1, 0));
        assert_eq!(b.listing(0), vec![row(&rec, DR, 900_000)]);
        let (_, o1) = b.rigs[0].run(0, &[tcp_from(CLIENT, "10.0.2.5", 40000, 443, ACK, &[])]);
        assert_eq!(o1, vec![dr_out(2, "10.0.2.5", 40000, 443, ACK)]);
        // A NAT server here; the master said DR.
        let rec = with(conn_rec(TCP, 40001, 8080, 12, 80), ES, DR, 900);
        assert_eq!(b.install(0, &[rec]), installed(1, 0));
        assert_eq!(b.rigs[0].mine(2), (1, 0));
        let rows = b.listing(0);
        assert!(rows.contains(&row(&rec, flags::MASQ, 900_000)), "{rows:?}");
        let (_, o1) = b.rigs[0].run(0, &[from_client(8080, 40001, ACK)]);
        let seg = tcp(CLIENT, "10.1.0.12", 40001, 80, ACK, &[]);
        assert_eq!(
            o1,
            vec![eth_raw(
                RS[1],
                P1,
                0x0800,
                &ipv4(CLIENT, "10.1.0.12", 6, 63, &seg)
            )]
        );
    }

    #[test]
    fn invalid_records_and_a_full_table_are_counted() {
        let mut b = backup(vec![rr_to_11()], vec![], 1, 2);
        let good = |cport| est(cport, 12);
        let batch = [
            SyncConn {
                proto: 1,
                ..good(1)
            },
            with(good(2), 11, DR, 900),
            with(conn_rec(UDP, 3, 53, 12, 53), 1, DR, 300),
            // A template is valid here: it goes to the shared table.
            with(good(4), 0, flags::TEMPLATE, 300),
            good(5),
            good(6),
            good(7),
        ];
        assert_eq!(
            b.install(0, &batch),
            Installed {
                created: 3,
                invalid: 3,
                full: 1,
                ..Default::default()
            }
        );
        let mut rows = b.listing(0);
        rows.sort_by_key(|r| r.cport);
        assert_eq!(
            rows,
            vec![row(&good(5), DR, 900_000), row(&good(6), DR, 900_000)]
        );
        assert_eq!(b.rigs[0].mine(1), (2, 0));
    }

    #[test]
    fn a_backup_that_is_also_a_master_sends_synced_entries_on_from_the_threshold() {
        let mut cfg = config(vec![rr_to_11()], vec![], 1024);
        cfg.settings.sync = Some(SyncParams::default());
        let mut b = backup_with(cfg, 1);
        let rec = est(40000, 12);
        assert_eq!(b.install(0, &[rec]), installed(1, 0));
        let mut sent = Vec::new();
        for n in 1..=60u16 {
            let (_, o1) = b.rigs[0].run(0, &[from_client(80, 40000, ACK)]);
            assert_eq!(o1.len(), 1);
            for r in drain(&mut b.post, 0) {
                sent.push((n, r));
            }
        }
        // Its count starts at the threshold (3): the 50th packet is its 53rd.
        let again = SyncConn {
            flags: DR | flags::SYNC,
            svc: 0,
            dest: 1,
            ..rec
        };
        assert_eq!(sent, vec![(50, again)]);
    }

    #[test]
    fn a_synced_template_holds_new_clients_of_its_network() {
        let svc = persistent(
            0,
            TCP,
            80,
            300,
            vec![
                dest(0, 11, 80, Method::Dr, 1),
                dest(1, 12, 80, Method::Dr, 1),
            ],
        );
        let mut b = backup(vec![svc], vec![], 1, 1024);
        let k = TplKey {
            proto: TCP,
            snet: ip("10.0.0.0"),
            vaddr: ip(VIP),
            vport: 80,
        };
        let t = Tpl {
            dest: 1,
            daddr: ip("10.1.0.12"),
            dport: 80,
            expires_ms: 300_000,
            n_control: 0,
            assured: true,
            sync_end_ms: 0,
            sync_retries: 0,
        };
        assert_eq!(
            b.rigs[0].shared.templates.install_synced(k, t),
            fastpath::persist::SyncedTpl::Created
        );
        // rr would start at .11; the template says .12.
        let (_, o1) = b.rigs[0].run(0, &[from_client(80, 40000, SYN)]);
        assert_eq!(o1, vec![dr_out(1, VIP, 40000, 80, SYN)]);
        assert_eq!(b.rigs[0].shared.templates.get(&k).unwrap().n_control, 1);
        // Outside its network: scheduled.
        let (_, o1) = b.rigs[0].run(0, &[tcp_from("10.0.1.2", VIP, 40000, 80, SYN, &[])]);
        assert_eq!(o1[0][..6], RS[0]);
    }

    #[test]
    fn a_template_record_installs_through_a_worker_and_counts_persist_conn() {
        let svc = persistent(
            0,
            TCP,
            80,
            300,
            vec![
                dest(0, 11, 80, Method::Dr, 1),
                dest(1, 12, 80, Method::Dr, 1),
            ],
        );
        let mut b = backup(vec![svc], vec![], 1, 1024);
        let persist = |b: &Backup, d: usize| b.rigs[0].shared.cores[0].dests[d].persist.get();
        let mut tpl = conn_rec(TCP, 0, 80, 12, 80);
        tpl.caddr = ip("10.0.0.0");
        tpl.flags = fastpath::conn::flags::TEMPLATE | fastpath::conn::flags::DROUTE;
        tpl.state = 1;
        tpl.timeout_s = 300;
        assert_eq!(b.install(0, &[tpl]), installed(1, 0));
        let k = TplKey {
            proto: TCP,
            snet: ip("10.0.0.0"),
            vaddr: ip(VIP),
            vport: 80,
        };
        let t = b.rigs[0].shared.templates.get(&k).unwrap();
        assert_eq!((t.dest, t.assured, t.n_control), (1, true, 0));
        assert_eq!((persist(&b, 0), persist(&b, 1)), (0, 1));
        // The master moved the client network to .11.
        let mut moved = tpl;
        moved.daddr = ip("10.1.0.11");
        assert_eq!(b.install(0, &[moved]), installed(0, 1));
        assert_eq!(b.rigs[0].shared.templates.get(&k).unwrap().dest, 0);
        assert_eq!((persist(&b, 0), persist(&b, 1)), (1, 0));
        // At expiry the count goes back to zero, not below.
        let r = &mut b.rigs[0];
        r.tick_through(0, 301_000);
        assert!(r.shared.templates.get(&k).is_none());
        assert_eq!((persist(&b, 0), persist(&b, 1)), (0, 0));
    }

    #[test]
    fn a_dump_pages_through_every_live_entry_exactly_once() {
        let svc = service(5, TCP, 80, Kind::Rr, vec![dest(7, 11, 80, Method::Dr, 1)]);
        let mut b = backup(vec![svc], vec![], 1, 1024);
        let r = &mut b.rigs[0];
        for p in 1..=12 {
            r.run(0, &[from_client(80, p, SYN)]);
        }
        // Nine reach ESTABLISHED; three stay in SYN_RECV (60 s).
        for p in 1..=9 {
            r.run(0, &[from_client(80, p, ACK)]);
        }
        let est = |p| with(conn_rec(TCP, p, 80, 11, 80), ES, DR, 900);
        let want: Vec<SyncConn> = (1..=9).map(est).collect();
        let dump = |b: &mut Backup, cursor, max| {
            b.post.dump(0, cursor, max).unwrap();
            let r = &mut b.rigs[0];
            r.w.poll(&mut r.io);
            match b.post.reply(Duration::ZERO) {
                Some(SyncReply::Dump { worker, rows, next }) => {
                    assert_eq!(worker, 0);
                    assert!(rows.len() <= max);
                    (rows, next)
                }
                _ => panic!("no page"),
            }
        };
        // At 61 s the three are due, not yet collected: not live.
        b.rigs[0].io.now = 61_000;
        let (mut rows, next) = dump(&mut b, 0, 64);
        assert_eq!(next, None);
        rows.sort_by_key(|r| r.cport);
        assert_eq!(rows, want);
        // Collected, their slots are free: pages of four slots.
        b.rigs[0].tick_through(61_000, 62_000);
        assert_eq!(b.rigs[0].load(7), (9, 0));
        let mut all = Vec::new();
        let mut cursors = Vec::new();
        let mut cursor = Some(0);
        while let Some(c) = cursor {
            cursors.push(c);
            let (rows, next) = dump(&mut b, c, 4);
            all.extend(rows);
            cursor = next;
        }
        assert_eq!(cursors, vec![0, 4, 8]);
        all.sort_by_key(|r| r.cport);
        assert_eq!(all, want, "each once");
    }
}

mod standby {
    use super::*;

    fn garp(mac: [u8; 6], a: &str) -> Vec<u8> {
        eth(BCAST, mac, 0x0806, &arp(1, mac, a, [0; 6], a))
    }

    fn who_has(a: &str) -> Vec<u8> {
        eth(BCAST, CLI, 0x0806, &arp(1, CLI, CLIENT, [0; 6], a))
    }

    fn is_at(a: &str) -> Vec<u8> {
        eth(CLI, P0, 0x0806, &arp(2, P0, a, CLI, CLIENT))
    }

    const PAYLOAD: &[u8] = b"abcdefghijklmnopqrstuvwxyz012345";

    fn ping(dst: &str) -> Vec<u8> {
        eth(
            P0,
            CLI,
            0x0800,
            &ipv4(CLIENT, dst, 1, 64, &echo(8, 0x4242, 7, PAYLOAD)),
        )
    }

    fn pong(src: &str) -> Vec<u8> {
        eth(
            CLI,
            P0,
            0x0800,
            &ipv4(src, CLIENT, 1, 64, &echo(0, 0x4242, 7, PAYLOAD)),
        )
    }

    fn services() -> Vec<Service> {
        vec![
            service(0, TCP, 80, Kind::Rr, vec![dest(0, 11, 80, Method::Dr, 1)]),
            service(1, UDP, 53, Kind::Rr, vec![dest(1, 12, 53, Method::Dr, 1)]),
            marked(),
        ]
    }

    fn publish(pb: &Postbox, shared: &Shared, standby: bool) {
        let table = Arc::new(ServiceTable::new(services(), vec![mark_rule()]).unwrap());
        let snap = Snapshot {
            table: table.clone(),
            vips: vec![ip(VIP)].into(),
            gate: std::sync::Arc::from([]),
            timeouts: Timeouts::DEFAULT,
            settings: Settings {
                standby,
                ..Default::default()
            },
        };
        pb.publish(&snap, |_| Ipvs::prepare_schedulers(&table, None, shared))
            .unwrap();
    }

    #[test]
    fn a_director_on_standby_neither_answers_nor_forwards_for_its_vips_until_it_takes_over() {
        let mut cfg = config(services(), vec![mark_rule()], 1024);
        cfg.settings.standby = true;
        let shared = Arc::new(Shared::new(2, 64));
        let (post, boxes) = sync_post(2, RING);
        let (pb, mbs) = mailboxes(2);
        let mut rigs: Vec<Rig> = boxes
            .into_iter()
            .zip(mbs)
            .enumerate()
            .map(|(w, (sb, mb))| {
                let mut r = Rig::new(&cfg, shared.clone(), w, Some(sb));
                r.w.set_mailbox(mb);
                r
            })
            .collect();
        assert_eq!(
            rigs[0].announced,
            (vec![garp(P0, "10.0.0.1")], vec![garp(P1, "10.1.0.1")]),
            "its own addresses only"
        );
        assert_eq!(rigs[1].announced, (vec![], vec![]));
        let w0 = &mut rigs[0];
        let (o0, o1) = w0.run(0, &[who_has(VIP)]);
        assert!(o0.is_empty() && o1.is_empty(), "no ARP reply for the VIP");
        let (o0, _) = w0.run(0, &[who_has("10.0.0.1")]);
        assert_eq!(o0, vec![is_at("10.0.0.1")]);
        let (o0, _) = w0.run(0, &[ping(VIP)]);
        assert!(o0.is_empty());
        assert_eq!(w0.stats.drops(DropReason::Standby), 1);
        let (o0, _) = w0.run(0, &[ping("10.0.0.1")]);
        assert_eq!(o0, vec![pong("10.0.0.1")]);
        // Service traffic: its own or another worker's, a VIP's or a
        // marked destination's, dropped where it arrives.
        let (p0, p1) = ports_on_two_cores();
        let (o0, o1) = w0.run(
            0,
            &[
                from_client(80, p0, SYN),
                from_client(80, p1, SYN),
                dgram(53, p0),
                tcp_from(CLIENT, "10.0.2.5", p0, 443, SYN, &[]),
            ],
        );
        assert!(o0.is_empty() && o1.is_empty());
        assert_eq!(w0.stats.drops(DropReason::Standby), 5);
        assert_eq!(w0.stats.count(Event::Redirected), 0);
        assert!(w0.io.to_peers.is_empty());
        assert_eq!(
            (w0.load(0), w0.load(1), w0.load(3)),
            ((0, 0), (0, 0), (0, 0))
        );
        // Meanwhile the master's records arrive.
        let rec = SyncConn {
            svc: 0,
            dest: 0,
            ..with(conn_rec(TCP, p0, 80, 11, 80), ES, DR, 900)
        };
        assert!(post.install(0, vec![Synced { rec, fwmark: 0 }]).is_ok());
        w0.w.poll(&mut w0.io);
        assert!(matches!(
            post.reply(Duration::ZERO),
            Some(SyncReply::Installed { result, .. }) if result == Installed { created: 1, ..Default::default() }
        ));
        let (o0, o1) = w0.run(0, &[from_client(80, p0, ACK)]);
        assert!(o0.is_empty() && o1.is_empty(), "not even synced ones");
        assert_eq!(w0.stats.drops(DropReason::Standby), 6);
        // Taking over: worker 0 announces the VIPs with the addresses.
        publish(&pb, &shared, false);
        for _ in 0..2 {
            for r in rigs.iter_mut() {
                r.w.poll(&mut r.io);
            }
        }
        let w0 = &mut rigs[0];
        assert_eq!(
            (w0.io.take_tx(0), w0.io.take_tx(1)),
            (
                vec![garp(P0, "10.0.0.1"), garp(P0, VIP)],
                vec![garp(P1, "10.1.0.1"), garp(P1, VIP)]
            )
        );
        assert_eq!(w0.stats.count(Event::GratuitousArpSent), 6);
        let (o0, _) = w0.run(0, &[who_has(VIP)]);
        assert_eq!(o0, vec![is_at(VIP)]);
        let (o0, _) = w0.run(0, &[ping(VIP)]);
        assert_eq!(o0, vec![pong(VIP)]);
        // The synced connection goes on where the master left it.
        let (_, o1) = w0.run(0, &[from_client(80, p0, ACK)]);
        assert_eq!(o1, vec![dr_out(0, VIP, p0, 80, ACK)]);
        assert_eq!(w0.scheduled(), [0, 0, 0]);
        let (_, o1) = w0.run(0, &[from_client(80, p0 + 2000, SYN)]);
        assert_eq!(o1.len() + w0.io.to_peers.len(), 1, "new clients too");
        assert_eq!(w0.stats.drops(DropReason::Standby), 6);
        let w1 = &mut rigs[1];
        assert_eq!((w1.io.take_tx(0), w1.io.take_tx(1)), (vec![], vec![]));
    }
}
