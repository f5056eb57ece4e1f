//! ripvs's sync codec against two outside judges: `sync_peer.py`, an IPVS
//! peer written from the kernel's C with nothing but `struct`, and
//! Wireshark's IPVS dissector.
//!
//! The peer encodes messages the way the kernel master does and the Rust
//! decoder must read them field by field; it decodes what the Rust
//! encoder writes, and damaged messages, the way `ip_vs_process_message`
//! does, and both decoders must agree on every verdict.

use ctrl::sync::codec::*;
use serde_json::{json, Value};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sync_peer.py")
}

/// Runs `python3 sync_peer.py ARGS` with one line per input; returns one
/// line per output.
fn peer(args: &[&str], input: &[String]) -> Vec<String> {
    let mut child = Command::new("python3")
        .arg(peer_script())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut stdin = child.stdin.take().unwrap();
    let text: String = input.iter().map(|l| format!("{l}\n")).collect();
    // Written from a thread: the peer answers while it reads.
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "sync_peer.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), input.len(), "one answer per line");
    lines
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// xorshift64*: deterministic, so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn u32(&mut self) -> u32 {
        self.next() as u32
    }
    /// `lo` to `hi` (exclusive) random bytes.
    fn bytes(&mut self, lo: usize, hi: usize) -> Vec<u8> {
        let n = lo + self.below(hi - lo);
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn random_seq(r: &mut Rng) -> Seq {
    Seq {
        init_seq: r.u32(),
        delta: r.u32(),
        previous_delta: r.u32(),
    }
}

/// Any record: flags of all 32 bits, HASHED included, seq and PE whether
/// or not the flags agree, names up to 20 bytes.
fn random_conn(r: &mut Rng) -> WireConn {
    let mut flags = r.u32() & [0xffff_ffff, 0x1fff, 0x1fff & !CONN_F_SEQ_MASK][r.below(3)];
    if r.below(3) == 0 {
        flags |= CONN_F_TEMPLATE;
    }
    let pe = (r.below(3) == 0).then(|| Pe {
        name: "abcdefghijklmnopqrst"[..r.below(21)].to_owned(),
        data: r.bytes(0, 256),
    });
    WireConn {
        proto: [0, 6, 17, 132, 50, 51, 1][r.below(7)],
        flags,
        state: r.below(16) as u16,
        cport: r.u32() as u16,
        vport: r.u32() as u16,
        dport: r.u32() as u16,
        fwmark: r.u32(),
        timeout: r.u32(),
        caddr: Ipv4Addr::from(r.u32()),
        vaddr: Ipv4Addr::from(r.u32()),
        daddr: Ipv4Addr::from(r.u32()),
        seq: (r.below(2) == 0).then(|| (random_seq(r), random_seq(r))),
        pe,
    }
}

/// What the kernel master puts on the wire for `c`, read back: the
/// encoder's and the peer's shared contract.
fn as_sent(c: &WireConn, version: Version) -> WireConn {
    let mut c = c.clone();
    c.flags &= !CONN_F_HASHED;
    c.seq = (c.flags & CONN_F_SEQ_MASK != 0).then(|| c.seq.unwrap_or_default());
    if let Some(pe) = &mut c.pe {
        pe.name.truncate(PE_NAME_MAX);
    }
    if c.pe.as_ref().is_some_and(|pe| pe.data.is_empty()) {
        c.pe = None;
    }
    if version == Version::V0 {
        c.flags &= 0xffff;
        c.fwmark = 0;
        c.timeout = 0;
        c.pe = None;
    }
    c
}

// ------------------------------------------------------------------ (a)

/// A record for the peer to encode: a connection, perhaps as IPv6, perhaps
/// with options no kernel sends.
struct PeerRecord {
    conn: WireConn,
    v6: bool,
    extra: Vec<(u8, Vec<u8>)>,
}

fn peer_json(r: &PeerRecord) -> Value {
    let c = &r.conn;
    let a = |ip: Ipv4Addr| {
        if r.v6 {
            let n = u32::from(ip);
            format!("2001:db8::{:x}:{:x}", n >> 16, n & 0xffff)
        } else {
            ip.to_string()
        }
    };
    let mut j = json!({
        "af": if r.v6 { 6 } else { 4 },
        "proto": c.proto, "flags": c.flags, "state": c.state,
        "cport": c.cport, "vport": c.vport, "dport": c.dport,
        "fwmark": c.fwmark, "timeout": c.timeout,
        "caddr": a(c.caddr), "vaddr": a(c.vaddr), "daddr": a(c.daddr),
        "extra_options": r.extra.iter().map(|(t, d)| json!([t, hex(d)])).collect::<Vec<_>>(),
    });
    if let Some((i, o)) = c.seq {
        j["in_seq"] = json!([i.init_seq, i.delta, i.previous_delta]);
        j["out_seq"] = json!([o.init_seq, o.delta, o.previous_delta]);
    }
    if let Some(pe) = &c.pe {
        j["pe_data"] = json!(hex(&pe.data));
        j["pe_name"] = json!(pe.name);
    }
    j
}

#[derive(Debug, PartialEq)]
enum Expect {
    Conn(WireConn),
    Skip(Reject),
}

/// What ripvs must decode from the peer's encoding of `r`, or None if the
/// encoder leaves it out (v0 has no IPv6).
fn expect(r: &PeerRecord, version: Version) -> Option<Expect> {
    let sent = as_sent(&r.conn, version);
    if version == Version::V0 {
        return (!r.v6).then_some(Expect::Conn(sent));
    }
    if r.extra.iter().any(|(t, _)| t & 0x40 == 0) {
        return Some(Expect::Skip(Reject::OptionUnknown));
    }
    if r.v6 {
        return Some(Expect::Skip(Reject::Ipv6));
    }
    if sent.pe.as_ref().is_some_and(|pe| pe.name.is_empty()) {
        return Some(Expect::Skip(Reject::PeWithoutName));
    }
    Some(Expect::Conn(sent))
}

fn plain(proto: u8, flags: u32, state: u16) -> WireConn {
    WireConn {
        proto,
        flags,
        state,
        cport: 40000,
        vport: 80,
        dport: 8080,
        fwmark: 0,
        timeout: 900,
        caddr: Ipv4Addr::new(192, 168, 1, 10),
        vaddr: Ipv4Addr::new(10, 0, 0, 100),
        daddr: Ipv4Addr::new(10, 0, 0, 11),
        seq: None,
        pe: None,
    }
}

fn peer_records(r: &mut Rng) -> Vec<Vec<PeerRecord>> {
    let rec = |conn| PeerRecord {
        conn,
        v6: false,
        extra: vec![],
    };
    let mut tpl = plain(0, CONN_F_TEMPLATE | CONN_F_DROUTE, 0);
    tpl.fwmark = 5;
    tpl.vaddr = Ipv4Addr::new(0, 0, 0, 5);
    let mut sip = plain(PROTO_UDP, CONN_F_TEMPLATE | CONN_F_MASQ, 0);
    sip.pe = Some(Pe {
        name: "sip".into(),
        data: b"call-id-123@host".to_vec(),
    });
    let mut nat = plain(PROTO_TCP, CONN_F_MASQ | CONN_F_IN_SEQ | CONN_F_HASHED, 1);
    nat.seq = Some((random_seq(r), random_seq(r)));
    let mut long_name = sip.clone();
    long_name.pe.as_mut().unwrap().name = "a-name-of-twenty-ch".into();
    let mut no_name = sip.clone();
    no_name.pe.as_mut().unwrap().name.clear();
    let mut sets = vec![vec![
        rec(plain(PROTO_TCP, CONN_F_DROUTE, 1)),
        rec(plain(PROTO_UDP, CONN_F_MASQ, 0)),
        rec(plain(PROTO_SCTP, CONN_F_TUNNEL | CONN_F_INACTIVE, 3)),
        rec(tpl),
        rec(sip),
        rec(nat),
        rec(long_name),
        rec(no_name),
        PeerRecord {
            conn: plain(PROTO_TCP, CONN_F_DROUTE, 1),
            v6: true,
            extra: vec![],
        },
        PeerRecord {
            conn: plain(PROTO_TCP, CONN_F_DROUTE, 1),
            v6: false,
            extra: vec![(0x47, vec![1, 2, 3]), (0x40, vec![9])],
        },
        PeerRecord {
            conn: plain(PROTO_TCP, CONN_F_DROUTE, 1),
            v6: false,
            extra: vec![(0x05, vec![1])],
        },
        PeerRecord {
            conn: plain(PROTO_TCP, CONN_F_DROUTE, 1),
            v6: true,
            extra: vec![(0x07, vec![1, 2])],
        },
        rec(plain(PROTO_TCP, CONN_F_DROUTE, 2)),
    ]];
    for _ in 0..60 {
        let n = 1 + r.below(40);
        sets.push(
            (0..n)
                .map(|_| PeerRecord {
                    conn: random_conn(r),
                    v6: r.below(8) == 0,
                    extra: match r.below(6) {
                        0 => vec![(0x40 | (4 + r.below(60)) as u8, r.bytes(1, 9))],
                        1 => vec![(4 + r.below(60) as u8, r.bytes(1, 9))],
                        _ => vec![],
                    },
                })
                .collect(),
        );
    }
    sets
}

#[test]
fn what_the_peer_encodes_ripvs_decodes() {
    let mut r = Rng(0x5eed_00a1);
    let sets = peer_records(&mut r);
    let mut lines = Vec::new();
    let mut want = Vec::new();
    for (i, set) in sets.iter().enumerate() {
        for version in [Version::V1, Version::V0] {
            let syncid = (i % 256) as u8;
            let records: Vec<Value> = set.iter().map(peer_json).collect();
            let v = if version == Version::V0 { 0 } else { 1 };
            lines.push(json!({"version": v, "syncid": syncid, "records": records}).to_string());
            let e: Vec<Expect> = set.iter().filter_map(|p| expect(p, version)).collect();
            want.push((version, syncid, e));
        }
    }
    let out = peer(&["encode"], &lines);
    for (line, (version, syncid, want)) in out.iter().zip(want) {
        let m = decode(&unhex(line), syncid).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(
            (m.version, m.syncid, m.error),
            (version, syncid, None),
            "{line}"
        );
        let conns: Vec<_> = want
            .iter()
            .filter_map(|e| match e {
                Expect::Conn(c) => Some(c.clone()),
                Expect::Skip(_) => None,
            })
            .collect();
        let skips: Vec<_> = want
            .iter()
            .filter_map(|e| match e {
                Expect::Skip(r) => Some(*r),
                Expect::Conn(_) => None,
            })
            .collect();
        assert_eq!(m.records, conns, "{line}");
        assert_eq!(m.skipped, skips, "{line}");
        let v6 = skips.iter().filter(|r| **r == Reject::Ipv6).count();
        assert_eq!(m.skipped_v6 as usize, v6);
    }
}

// ------------------------------------------------------------- (b), (c)

fn py_u32(v: &Value) -> u32 {
    v.as_u64().unwrap() as u32
}

fn py_seq(v: &Value) -> Seq {
    Seq {
        init_seq: py_u32(&v[0]),
        delta: py_u32(&v[1]),
        previous_delta: py_u32(&v[2]),
    }
}

/// The peer's IPv4 record as a `WireConn`.
fn py_conn(p: &Value) -> WireConn {
    let a = |k: &str| p[k].as_str().unwrap().parse::<Ipv4Addr>().unwrap();
    let n = |k: &str| p[k].as_u64().unwrap();
    WireConn {
        proto: n("proto") as u8,
        flags: n("flags") as u32,
        state: n("state") as u16,
        cport: n("cport") as u16,
        vport: n("vport") as u16,
        dport: n("dport") as u16,
        fwmark: n("fwmark") as u32,
        timeout: n("timeout") as u32,
        caddr: a("caddr"),
        vaddr: a("vaddr"),
        daddr: a("daddr"),
        seq: (!p["seq"].is_null()).then(|| (py_seq(&p["seq"][0]), py_seq(&p["seq"][1]))),
        pe: p["pe_data"].as_str().map(|d| Pe {
            name: String::from_utf8(unhex(p["pe_name"].as_str().unwrap())).unwrap(),
            data: unhex(d),
        }),
    }
}

#[derive(Debug, PartialEq)]
enum Verdict {
    /// Passed over by `decode`.
    Skip(Reject),
    /// In `Message::records`, with `check_semantics`'s answer.
    Keep(Result<(), Reject>),
}

/// What ripvs makes of a record the peer (the kernel) reports. The
/// differences are ripvs's by design: it holds no IPv6 and no AH/ESP, and
/// it finds PE problems while decoding, before the kernel's protocol and
/// state checks.
fn ripvs_verdict(p: &Value) -> Verdict {
    let status = p["status"].as_str().unwrap();
    if status == "option_unknown" {
        return Verdict::Skip(Reject::OptionUnknown);
    }
    if p["af"] == 6 {
        return Verdict::Skip(Reject::Ipv6);
    }
    if !p["pe_data"].is_null() {
        match p["pe_name"].as_str() {
            None => return Verdict::Skip(Reject::PeWithoutName),
            Some(n) if String::from_utf8(unhex(n)).is_err() => {
                return Verdict::Skip(Reject::PeUnknown)
            }
            Some(_) => {}
        }
    }
    let template = p["flags"].as_u64().unwrap() as u32 & CONN_F_TEMPLATE != 0;
    let proto = p["proto"].as_u64().unwrap() as u8;
    if !template && ![PROTO_TCP, PROTO_UDP, PROTO_SCTP].contains(&proto) {
        return Verdict::Keep(Err(Reject::Protocol));
    }
    Verdict::Keep(match status {
        "ok" => Ok(()),
        "protocol" => Err(Reject::Protocol),
        "state" => Err(Reject::State),
        "pe_unknown" => Err(Reject::PeUnknown),
        s => panic!("status {s}"),
    })
}

fn reject_named(name: &str) -> Reject {
    *Reject::ALL
        .iter()
        .find(|r| r.name() == name)
        .unwrap_or_else(|| panic!("the peer's {name} is no Reject"))
}

/// Checks that ripvs's decoding of `buf` is the peer's, field by field and
/// verdict by verdict.
fn agree(buf: &[u8], syncid: u8, py: &str) {
    let p: Value = serde_json::from_str(py).unwrap();
    let ctx = || format!("{} -> {py}", hex(buf));
    let m = match decode(buf, syncid) {
        Err(e) => {
            assert_eq!(p["reject"].as_str(), Some(e.name()), "{}", ctx());
            return;
        }
        Ok(m) => m,
    };
    assert!(p["reject"].is_null(), "{}", ctx());
    let version = if p["version"] == 1 {
        Version::V1
    } else {
        Version::V0
    };
    assert_eq!(
        (m.version, u64::from(m.syncid)),
        (version, p["syncid"].as_u64().unwrap()),
        "{}",
        ctx()
    );
    assert_eq!(m.error, p["error"].as_str().map(reject_named), "{}", ctx());
    let mut kept = m.records.iter();
    let mut skipped = Vec::new();
    for rec in p["records"].as_array().unwrap() {
        match ripvs_verdict(rec) {
            Verdict::Skip(r) => skipped.push(r),
            Verdict::Keep(semantics) => {
                let c = kept
                    .next()
                    .unwrap_or_else(|| panic!("record missing: {}", ctx()));
                assert_eq!(*c, py_conn(rec), "{}", ctx());
                assert_eq!(check_semantics(c), semantics, "{}", ctx());
            }
        }
    }
    assert!(kept.next().is_none(), "extra record: {}", ctx());
    assert_eq!(m.skipped, skipped, "{}", ctx());
    let v6 = skipped.iter().filter(|r| **r == Reject::Ipv6).count();
    assert_eq!(m.skipped_v6 as usize, v6, "{}", ctx());
}

#[test]
fn what_ripvs_encodes_the_peer_decodes() {
    let mut r = Rng(0x5eed_00b2);
    let mut msgs = Vec::new();
    let mut pushed = Vec::new();
    for i in 0..120 {
        let version = if i % 3 == 0 { Version::V0 } else { Version::V1 };
        let maxlen = [1472, 44, 300, 9000, MAX_MSG][r.below(5)];
        let mut e = Encoder::new(version, (i % 7) as u8, maxlen);
        let mut conns = Vec::new();
        for _ in 0..1 + r.below(300) {
            let c = random_conn(&mut r);
            match e.push(&c) {
                Push::Added => conns.push(as_sent(&c, version)),
                Push::TooBig => {}
                Push::Full => break,
            }
        }
        if let Some(m) = e.take() {
            msgs.push(m);
            pushed.push((version, conns));
        }
    }
    let out = peer(
        &["decode"],
        &msgs.iter().map(|m| hex(m)).collect::<Vec<_>>(),
    );
    for ((m, (version, conns)), py) in msgs.iter().zip(&pushed).zip(&out) {
        let p: Value = serde_json::from_str(py).unwrap();
        assert_eq!(p["version"], if *version == Version::V0 { 0 } else { 1 });
        assert_eq!(p["size"].as_u64(), Some(m.len() as u64));
        assert_eq!(p["nr_conns"].as_u64(), Some(conns.len() as u64));
        assert!(p["error"].is_null(), "{py}");
        let recs = p["records"].as_array().unwrap();
        assert_eq!(recs.len(), conns.len());
        for (rec, c) in recs.iter().zip(conns) {
            assert_eq!(py_conn(rec), *c, "{py}");
        }
        agree(m, 0, py);
    }
}

/// Messages to damage: the encoder's, the peer's (IPv6, odd options),
/// and control messages.
fn damage_bases(r: &mut Rng) -> Vec<Vec<u8>> {
    let mut bases = Vec::new();
    for i in 0..40 {
        let version = if i % 3 == 0 { Version::V0 } else { Version::V1 };
        let mut e = Encoder::new(version, 1, 44 + r.below(1500));
        while e.push(&random_conn(r)) != Push::Full {}
        bases.push(e.take().unwrap());
    }
    let lines: Vec<String> = peer_records(r)
        .iter()
        .take(20)
        .map(|set| {
            let recs: Vec<Value> = set.iter().take(8).map(peer_json).collect();
            json!({"version": 1, "syncid": 1, "records": recs}).to_string()
        })
        .collect();
    bases.extend(peer(&["encode"], &lines).iter().map(|l| unhex(l)));
    bases.push(
        Control::End {
            syncid: 1,
            nonce: 9,
            count: 3,
        }
        .encode(),
    );
    bases
}

#[test]
fn damaged_messages_get_the_kernels_verdict() {
    let mut r = Rng(0x5eed_00c3);
    let bases = damage_bases(&mut r);
    let mut cases = Vec::new();
    for i in 0..4000 {
        let mut b = bases[r.below(bases.len())].clone();
        match i % 5 {
            0 | 1 => {
                // Flip bytes, often where the framing lives.
                for _ in 0..1 + r.below(4) {
                    let at = if r.below(2) == 0 {
                        r.below(b.len().min(48))
                    } else {
                        r.below(b.len())
                    };
                    b[at] ^= 1 << r.below(8);
                }
            }
            2 => b.truncate(r.below(b.len() + 1)),
            3 => b.extend(r.bytes(1, 41)),
            _ => {
                let at = r.below(b.len());
                b[at] = r.next() as u8;
            }
        }
        // Mostly with a size field that passes, so that records are read.
        if r.below(4) != 0 && b.len() >= 4 {
            let n = (b.len() as u16).to_be_bytes();
            b[2..4].copy_from_slice(&n);
        }
        cases.push(b);
    }
    for syncid in [0u8, 1] {
        let s = syncid.to_string();
        let out = peer(
            &["decode", "--syncid", &s],
            &cases.iter().map(|b| hex(b)).collect::<Vec<_>>(),
        );
        for (b, py) in cases.iter().zip(&out) {
            agree(b, syncid, py);
        }
    }
}

// ------------------------------------------------------------ tshark

/// A pcap file of Ethernet frames carrying `payload` in IPv4/UDP from
/// 10.0.0.1:40000 to the sync group and port, checksums computed.
fn sync_pcap(path: &Path, payloads: &[Vec<u8>]) {
    fn sum(b: &[u8]) -> u32 {
        b.chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
            .sum()
    }
    fn fold(mut s: u32) -> u16 {
        while s >> 16 != 0 {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }
    let src = [10, 0, 0, 1];
    let dst = DEFAULT_GROUP.octets();
    let mut file = Vec::new();
    // Global header: magic, version 2.4, zone, sigfigs, snaplen, Ethernet.
    file.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    file.extend_from_slice(&2u16.to_le_bytes());
    file.extend_from_slice(&4u16.to_le_bytes());
    file.extend_from_slice(&[0; 8]);
    file.extend_from_slice(&65535u32.to_le_bytes());
    file.extend_from_slice(&1u32.to_le_bytes());
    for (i, payload) in payloads.iter().enumerate() {
        let udp_len = (8 + payload.len()) as u16;
        let mut udp = Vec::new();
        udp.extend_from_slice(&40000u16.to_be_bytes());
        udp.extend_from_slice(&DEFAULT_PORT.to_be_bytes());
        udp.extend_from_slice(&udp_len.to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(payload);
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&src);
        pseudo.extend_from_slice(&dst);
        pseudo.extend_from_slice(&[0, 17]);
        pseudo.extend_from_slice(&udp_len.to_be_bytes());
        let c = fold(sum(&pseudo) + sum(&udp));
        udp[6..8].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&(20 + udp_len).to_be_bytes());
        ip.extend_from_slice(&(i as u16 + 1).to_be_bytes());
        // No fragment flags; TTL 1, as the kernel's default mcast_ttl.
        ip.extend_from_slice(&[0, 0, 1, 17, 0, 0]);
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        let c = fold(sum(&ip));
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        // 01:00:5e + the group's low 23 bits.
        let mut frame = vec![0x01, 0x00, 0x5e, dst[1] & 0x7f, dst[2], dst[3]];
        frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00]);
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&udp);
        let len = (frame.len() as u32).to_le_bytes();
        file.extend_from_slice(&(1 + i as u32).to_le_bytes());
        file.extend_from_slice(&0u32.to_le_bytes());
        file.extend_from_slice(&len);
        file.extend_from_slice(&len);
        file.extend_from_slice(&frame);
    }
    std::fs::write(path, file).unwrap();
}

const TSHARK_FIELDS: &[&str] = &[
    "ipvs.syncid",
    "ipvs.size",
    "ipvs.conncount",
    "ipvs.version",
    "ipvs.type",
    "ipvs.proto",
    "ipvs.ver",
    "ipvs.size.v1",
    "ipvs.flags.v1",
    "ipvs.state",
    "ipvs.cport",
    "ipvs.vport",
    "ipvs.dport",
    "ipvs.fwmark",
    "ipvs.timeout",
    "ipvs.caddr",
    "ipvs.vaddr",
    "ipvs.daddr",
];

/// Wireshark's IPVS dissector (tshark 4.0, protocol "ipvs", registered on
/// UDP port 8848, so no `-d` is needed) reading ripvs v1 messages.
///
/// It shows correctly the header (syncid, size, connection count,
/// version) and, for each record, the type, protocol, version and size
/// (split 3/13 bits where the kernel splits 4/12: the same numbers for
/// anything a kernel sends), the 32-bit flags (as hex, the bits unnamed),
/// the state (as a number; the names it gives are those of the old
/// packet directions, not TCP states), the three ports, fwmark, timeout
/// and the three addresses.
///
/// It does not decode options (sequence data, PE data, PE name) and
/// ignores the record size and padding, stepping over each record's fixed
/// part only: every record after one with options is shown as garbage.
/// (For v0 it reads the sequence data as big-endian, where the kernel
/// writes host order.) So the test asserts every field of a message of
/// plain records, and the header and first record of one with options.
#[test]
fn tshark_reads_what_ripvs_sends() {
    if Command::new("tshark").arg("--version").output().is_err() {
        eprintln!("tshark not installed: skipping the Wireshark check");
        return;
    }
    let mut tpl = plain(0, CONN_F_TEMPLATE | CONN_F_DROUTE, 0);
    tpl.fwmark = 0x105;
    tpl.timeout = 360;
    tpl.vaddr = Ipv4Addr::new(0, 0, 1, 5);
    tpl.cport = 0;
    tpl.vport = 0;
    tpl.dport = 0;
    let mut sctp = plain(PROTO_SCTP, CONN_F_TUNNEL | CONN_F_INACTIVE, 3);
    sctp.caddr = Ipv4Addr::new(172, 16, 9, 200);
    sctp.cport = 5000;
    let plain_set = vec![
        plain(PROTO_TCP, CONN_F_DROUTE, 1),
        plain(PROTO_UDP, CONN_F_MASQ, 0),
        sctp,
        tpl,
    ];
    let mut nat = plain(PROTO_TCP, CONN_F_MASQ | CONN_F_SEQ_MASK, 7);
    nat.seq = Some(Default::default());
    nat.pe = Some(Pe {
        name: "sip".into(),
        data: b"abc".to_vec(),
    });
    let options_set = vec![nat, plain(PROTO_UDP, CONN_F_MASQ, 0)];
    let mut msgs = Vec::new();
    // (syncid, records, how many of them tshark shows right)
    let cases = [(42u8, &plain_set, plain_set.len()), (43, &options_set, 1)];
    for (syncid, set, _) in cases {
        let mut e = Encoder::new(Version::V1, syncid, 1472);
        for c in set {
            assert_eq!(e.push(c), Push::Added);
        }
        msgs.push(e.take().unwrap());
    }

    let dir = std::env::temp_dir().join(format!("ripvs-sync-wire-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("sync.pcap");
    sync_pcap(&file, &msgs);
    let mut args = vec![
        "-r".to_owned(),
        file.display().to_string(),
        "-T".into(),
        "fields".into(),
    ];
    for f in TSHARK_FIELDS {
        args.extend(["-e".to_owned(), (*f).to_owned()]);
    }
    let out = Command::new("tshark").args(&args).output().unwrap();
    let tree = Command::new("tshark")
        .arg("-r")
        .arg(&file)
        .arg("-V")
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&tree.stdout);
    assert_eq!(
        tree.matches("IP Virtual Services Sync Daemon").count(),
        2,
        "{tree}"
    );
    // One line per frame, a tab between fields, a comma between records.
    let text = String::from_utf8(out.stdout).unwrap();
    let frames: Vec<Vec<Vec<&str>>> = text
        .lines()
        .map(|l| l.split('\t').map(|f| f.split(',').collect()).collect())
        .collect();
    assert_eq!(frames.len(), 2, "{text}");

    let field = |frame: &[Vec<&str>], name: &str| -> Vec<String> {
        let i = TSHARK_FIELDS.iter().position(|f| *f == name).unwrap();
        frame[i].iter().map(|s| s.to_string()).collect()
    };
    for (frame, (msg, (syncid, set, shown))) in frames.iter().zip(msgs.iter().zip(cases)) {
        assert_eq!(field(frame, "ipvs.syncid"), [syncid.to_string()]);
        assert_eq!(field(frame, "ipvs.size"), [msg.len().to_string()]);
        assert_eq!(field(frame, "ipvs.conncount"), [set.len().to_string()]);
        assert_eq!(field(frame, "ipvs.version"), ["1"]);
        let d = decode(msg, 0).unwrap();
        for (k, c) in set.iter().take(shown).enumerate() {
            let size = 36
                + if c.seq.is_some() { 26 } else { 0 }
                + c.pe.as_ref().map_or(0, |p| 4 + p.data.len() + p.name.len());
            let want = [
                ("ipvs.type", "0".into()),
                ("ipvs.proto", format!("0x{:02x}", c.proto)),
                ("ipvs.ver", "0".into()),
                ("ipvs.size.v1", size.to_string()),
                ("ipvs.flags.v1", format!("0x{:08x}", c.flags)),
                ("ipvs.state", format!("0x{:04x}", c.state)),
                ("ipvs.cport", c.cport.to_string()),
                ("ipvs.vport", c.vport.to_string()),
                ("ipvs.dport", c.dport.to_string()),
                ("ipvs.fwmark", format!("0x{:08x}", c.fwmark)),
                ("ipvs.timeout", c.timeout.to_string()),
                ("ipvs.caddr", c.caddr.to_string()),
                ("ipvs.vaddr", c.vaddr.to_string()),
                ("ipvs.daddr", c.daddr.to_string()),
            ];
            for (name, value) in want {
                assert_eq!(
                    field(frame, name)[k],
                    value,
                    "syncid {syncid}, record {k}, {name}"
                );
            }
            assert_eq!(d.records[k], *c);
        }
    }
}
