//! Fixtures are written out byte by byte from the kernel's structs
//! (`struct ip_vs_sync_mesg`, `ip_vs_sync_v4`, `ip_vs_sync_mesg_v0`,
//! `ip_vs_sync_conn_v0`), not produced by the encoder under test.

use super::*;
use std::collections::BTreeSet;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// A DR TCP connection 192.168.1.10:40000 -> 10.0.0.100:80 -> 10.0.0.11:8080.
fn tcp_conn() -> WireConn {
    WireConn {
        proto: PROTO_TCP,
        flags: CONN_F_DROUTE,
        state: 1,
        cport: 40000,
        vport: 80,
        dport: 8080,
        fwmark: 0,
        timeout: 900,
        caddr: ip("192.168.1.10"),
        vaddr: ip("10.0.0.100"),
        daddr: ip("10.0.0.11"),
        seq: None,
        pe: None,
    }
}

#[rustfmt::skip]
const TCP_RECORD: [u8; 36] = [
    0x00, 0x06, 0x00, 0x24,             // type 0 (IPv4), TCP, version 0 | size 36
    0x00, 0x00, 0x00, 0x03,             // flags: DROUTE
    0x00, 0x01, 0x9c, 0x40,             // state ESTABLISHED, cport 40000
    0x00, 0x50, 0x1f, 0x90,             // vport 80, dport 8080
    0x00, 0x00, 0x00, 0x00,             // fwmark
    0x00, 0x00, 0x03, 0x84,             // timeout 900 s
    192, 168, 1, 10,                    // caddr
    10, 0, 0, 100,                      // vaddr
    10, 0, 0, 11,                       // daddr
];

fn v1_message(syncid: u8, nr: u8, body: &[u8]) -> Vec<u8> {
    let size = (V1_HEADER + body.len()) as u16;
    let mut m = vec![0, syncid, (size >> 8) as u8, size as u8, nr, 1, 0, 0];
    m.extend_from_slice(body);
    m
}

fn v0_message(syncid: u8, nr: u8, body: &[u8]) -> Vec<u8> {
    let size = (V0_HEADER + body.len()) as u16;
    let mut m = vec![nr, syncid, (size >> 8) as u8, size as u8];
    m.extend_from_slice(body);
    m
}

fn encode(version: Version, syncid: u8, conns: &[WireConn]) -> Vec<u8> {
    let mut e = Encoder::new(version, syncid, MAX_MSG);
    for c in conns {
        assert_eq!(e.push(c), Push::Added);
    }
    e.take().unwrap()
}

fn ok(buf: &[u8]) -> Message {
    decode(buf, 0).unwrap()
}

#[test]
fn v1_tcp_record_fixture() {
    #[rustfmt::skip]
    let mut want = vec![
        0x00, 0x07, 0x00, 0x2c,         // reserved, syncid 7, size 44
        0x01, 0x01, 0x00, 0x00,         // 1 record, version 1, spare
    ];
    want.extend_from_slice(&TCP_RECORD);
    assert_eq!(encode(Version::V1, 7, &[tcp_conn()]), want);
    let m = ok(&want);
    assert_eq!(
        m,
        Message {
            version: Version::V1,
            syncid: 7,
            records: vec![tcp_conn()],
            skipped_v6: 0,
            skipped: vec![],
            error: None,
        }
    );
}

#[test]
fn v1_template_with_fwmark_fixture() {
    // A fwmark persistence template: protocol IPPROTO_IP, the mark also in
    // vaddr (the template's key), ports 0.
    let tpl = WireConn {
        proto: 0,
        flags: CONN_F_TEMPLATE | CONN_F_DROUTE,
        state: 0,
        cport: 0,
        vport: 0,
        dport: 0,
        fwmark: 5,
        timeout: 360,
        caddr: ip("192.168.1.10"),
        vaddr: ip("0.0.0.5"),
        daddr: ip("10.0.0.11"),
        seq: None,
        pe: None,
    };
    let mut conn = tcp_conn();
    conn.fwmark = 5;
    #[rustfmt::skip]
    let want = [
        0x00, 0x00, 0x00, 0x50, 0x02, 0x01, 0x00, 0x00, // syncid 0, size 80, 2 records
        0x00, 0x06, 0x00, 0x24,
        0x00, 0x00, 0x00, 0x03,
        0x00, 0x01, 0x9c, 0x40,
        0x00, 0x50, 0x1f, 0x90,
        0x00, 0x00, 0x00, 0x05,         // fwmark 5
        0x00, 0x00, 0x03, 0x84,
        192, 168, 1, 10, 10, 0, 0, 100, 10, 0, 0, 11,
        0x00, 0x00, 0x00, 0x24,         // template: protocol 0
        0x00, 0x00, 0x10, 0x03,         // TEMPLATE | DROUTE
        0x00, 0x00, 0x00, 0x00,         // state NONE, cport 0
        0x00, 0x00, 0x00, 0x00,         // vport 0, dport 0
        0x00, 0x00, 0x00, 0x05,         // fwmark 5
        0x00, 0x00, 0x01, 0x68,         // timeout 360 s
        192, 168, 1, 10, 0, 0, 0, 5, 10, 0, 0, 11,
    ];
    assert_eq!(encode(Version::V1, 0, &[conn.clone(), tpl.clone()]), want);
    assert_eq!(ok(&want).records, vec![conn, tpl]);
}

fn seq_pe_conn() -> WireConn {
    WireConn {
        proto: PROTO_TCP,
        flags: CONN_F_MASQ | CONN_F_IN_SEQ | CONN_F_OUT_SEQ,
        state: 1,
        cport: 1025,
        vport: 21,
        dport: 21,
        fwmark: 0,
        timeout: 900,
        caddr: ip("192.168.1.10"),
        vaddr: ip("10.0.0.100"),
        daddr: ip("10.0.1.11"),
        seq: Some((
            Seq {
                init_seq: 0x1111_1111,
                delta: 16,
                previous_delta: 8,
            },
            Seq {
                init_seq: 0x2222_2222,
                delta: 0xffff_fff0,
                previous_delta: 0,
            },
        )),
        pe: Some(Pe {
            name: "sip".into(),
            data: b"abcde".to_vec(),
        }),
    }
}

#[test]
fn v1_options_and_padding_fixture() {
    #[rustfmt::skip]
    let want = [
        0x00, 0x09, 0x00, 0x78, 0x02, 0x01, 0x00, 0x00, // syncid 9, size 120, 2 records
        0x00, 0x06, 0x00, 0x4a,         // size 74 = 36 + 26 + 7 + 5
        0x00, 0x00, 0x06, 0x00,         // MASQ | IN_SEQ | OUT_SEQ
        0x00, 0x01, 0x04, 0x01,         // state 1, cport 1025
        0x00, 0x15, 0x00, 0x15,         // vport 21, dport 21
        0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x03, 0x84,
        192, 168, 1, 10, 10, 0, 0, 100, 10, 0, 1, 11,
        0x01, 0x18,                     // option 1 (sequence data), 24 bytes
        0x11, 0x11, 0x11, 0x11, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x08,
        0x22, 0x22, 0x22, 0x22, 0xff, 0xff, 0xff, 0xf0, 0x00, 0x00, 0x00, 0x00,
        0x02, 0x05, b'a', b'b', b'c', b'd', b'e', // option 2 (PE data)
        0x03, 0x03, b's', b'i', b'p',   // option 3 (PE name)
        0x00, 0x00,                     // padding to 84, counted in the size only
    ];
    let mut want = want.to_vec();
    want.extend_from_slice(&TCP_RECORD);
    assert_eq!(encode(Version::V1, 9, &[seq_pe_conn(), tcp_conn()]), want);
    assert_eq!(ok(&want).records, vec![seq_pe_conn(), tcp_conn()]);
    // The last record is not padded: the message ends with it.
    let alone = encode(Version::V1, 9, &[seq_pe_conn()]);
    assert_eq!(alone.len(), 8 + 74);
    assert_eq!(alone[2..4], [0, 82]);
    assert_eq!(ok(&alone).records, vec![seq_pe_conn()]);
}

fn v0_of(mut c: WireConn) -> WireConn {
    c.fwmark = 0;
    c.timeout = 0;
    c.pe = None;
    c
}

#[test]
fn v0_fixture_with_and_without_seq() {
    #[rustfmt::skip]
    let want = [
        0x02, 0x07, 0x00, 0x4c,         // 2 records, syncid 7, size 76
        0x00, 0x06,                     // reserved, TCP
        0x9c, 0x40, 0x00, 0x50, 0x1f, 0x90, // cport, vport, dport
        192, 168, 1, 10, 10, 0, 0, 100, 10, 0, 0, 11,
        0x00, 0x03, 0x00, 0x01,         // flags DROUTE (16 bits), state 1
        0x00, 0x06,
        0x04, 0x01, 0x00, 0x15, 0x00, 0x15,
        192, 168, 1, 10, 10, 0, 0, 100, 10, 0, 1, 11,
        0x06, 0x00, 0x00, 0x01,         // MASQ | IN_SEQ | OUT_SEQ, state 1
        // struct ip_vs_sync_conn_options copied from memory: little-endian
        0x11, 0x11, 0x11, 0x11, 0x10, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00,
        0x22, 0x22, 0x22, 0x22, 0xf0, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
    ];
    assert_eq!(encode(Version::V0, 7, &[tcp_conn(), seq_pe_conn()]), want);
    let m = ok(&want);
    assert_eq!(m.version, Version::V0);
    assert_eq!(m.syncid, 7);
    assert_eq!(m.records, vec![v0_of(tcp_conn()), v0_of(seq_pe_conn())]);
    assert_eq!((m.error, m.skipped.len()), (None, 0));
}

#[test]
fn encoder_clears_hashed_and_v0_keeps_low_16_flag_bits() {
    let mut c = tcp_conn();
    c.flags = CONN_F_DROUTE | CONN_F_HASHED | 0x1_0000;
    let v1 = encode(Version::V1, 0, &[c.clone()]);
    assert_eq!(v1[12..16], [0x00, 0x01, 0x00, 0x03]);
    let v0 = encode(Version::V0, 0, &[c]);
    assert_eq!(v0[24..26], [0x00, 0x03]);
}

#[test]
fn seq_follows_the_flags_when_encoding() {
    // Flags say seq, none given: zeros are sent, as the kernel sends its
    // (zeroed) in_seq/out_seq.
    let mut c = tcp_conn();
    c.flags |= CONN_F_IN_SEQ;
    let m = encode(Version::V1, 0, &[c.clone()]);
    assert_eq!(m.len(), 8 + 36 + 26);
    assert_eq!(ok(&m).records[0].seq, Some(Default::default()));
    // Seq given, flags without the bits: not sent.
    let mut c = seq_pe_conn();
    c.flags = CONN_F_MASQ;
    c.pe = None;
    let m = encode(Version::V1, 0, &[c]);
    assert_eq!(m.len(), 8 + 36);
    assert_eq!(ok(&m).records[0].seq, None);
}

#[test]
fn v1_seq_option_counts_without_flags_v0_needs_them() {
    // A v1 receiver takes the option whatever the flags say.
    let mut rec = TCP_RECORD.to_vec();
    rec[3] = 36 + 26;
    rec.extend_from_slice(&[1, 24]);
    rec.extend((1..=24).map(|i| i as u8));
    let m = ok(&v1_message(0, 1, &rec));
    let (i, o) = m.records[0].seq.unwrap();
    assert_eq!(i.init_seq, 0x0102_0304);
    assert_eq!(o.previous_delta, 0x1516_1718);
}

#[test]
fn pe_rules() {
    // PE name without data is ignored, as by the kernel.
    let mut rec = TCP_RECORD.to_vec();
    rec[3] = 36 + 5;
    rec.extend_from_slice(&[3, 3, b's', b'i', b'p', 0, 0, 0]);
    rec.extend_from_slice(&TCP_RECORD);
    let m = ok(&v1_message(0, 2, &rec));
    assert_eq!(m.records, vec![tcp_conn(), tcp_conn()]);
    // An empty PE data is not sent at all.
    let mut c = tcp_conn();
    c.pe = Some(Pe {
        name: "sip".into(),
        data: vec![],
    });
    assert_eq!(encode(Version::V1, 0, &[c]).len(), 8 + 36);
    // The largest PE the wire can say.
    let mut c = tcp_conn();
    c.flags |= CONN_F_TEMPLATE;
    c.pe = Some(Pe {
        name: "x".repeat(PE_NAME_MAX),
        data: vec![0xab; PE_DATA_MAX],
    });
    let m = encode(Version::V1, 0, &[c.clone()]);
    assert_eq!(m.len(), 8 + 36 + 2 + 255 + 2 + 16);
    assert_eq!(ok(&m).records, vec![c.clone()]);
    assert_eq!(check_semantics(&c), Err(Reject::PeUnknown));
    // v0 drops it.
    let m = encode(Version::V0, 0, &[c.clone()]);
    assert_eq!(ok(&m).records, vec![v0_of(c)]);
}

/// Decodes `buf` expecting the kernel's verdict: records kept, records
/// skipped, the reason the rest was dropped.
fn verdict(buf: &[u8]) -> (usize, Vec<Reject>, Option<Reject>) {
    let m = ok(buf);
    (m.records.len(), m.skipped, m.error)
}

/// `TCP_RECORD` followed by option bytes, its size counting them.
fn with_options(opts: &[u8]) -> Vec<u8> {
    let mut rec = TCP_RECORD.to_vec();
    rec[2..4].copy_from_slice(&((36 + opts.len()) as u16).to_be_bytes());
    rec.extend_from_slice(opts);
    rec.resize((rec.len() + 3) & !3, 0);
    rec
}

/// A message of `TCP_RECORD`, `rec`, `TCP_RECORD`.
fn sandwich(rec: &[u8]) -> Vec<u8> {
    let mut body = TCP_RECORD.to_vec();
    body.extend_from_slice(rec);
    body.extend_from_slice(&TCP_RECORD);
    v1_message(0, 3, &body)
}

fn ipv6_record() -> Vec<u8> {
    let mut rec = vec![0u8; 72];
    rec[..4].copy_from_slice(&[STYPE_F_INET6, PROTO_TCP, 0, 72]);
    rec[8..10].copy_from_slice(&1u16.to_be_bytes());
    rec
}

/// Every reason, each provoked by a crafted message or record; the test
/// fails if a reason is added without a case.
#[test]
fn every_reject_is_provoked() {
    use Reject::*;
    let good = v1_message(7, 1, &TCP_RECORD);
    let mut seen = BTreeSet::new();
    let mut whole = |buf: &[u8], syncid: u8, want: Reject| {
        assert_eq!(decode(buf, syncid), Err(want), "{buf:02x?}");
        seen.insert(want);
    };
    whole(&[], 0, TooShort);
    whole(&[0, 0, 0], 0, TooShort);
    whole(&good[..good.len() - 1], 0, SizeMismatch);
    let mut longer = good.clone();
    longer.push(0);
    whole(&longer, 0, SizeMismatch);
    whole(&good, 8, Syncid);
    assert!(decode(&good, 7).is_ok());

    let mut rest = Vec::new();
    // The header counts two records, one is there.
    rest.push((v1_message(0, 2, &TCP_RECORD), 1, RecordTruncated));
    rest.push((
        v0_message(0, 2, &encode(Version::V0, 0, &[tcp_conn()])[4..]),
        1,
        RecordTruncated,
    ));
    // A v0 record whose flags announce sequence data that is not there.
    let mut v0seq = encode(Version::V0, 0, &[tcp_conn()]);
    v0seq[24] = 0x06;
    rest.push((v0seq, 0, RecordTruncated));
    // A size past the message; a size smaller than the fixed part (with
    // the fixed part's 36 bytes present in the message).
    let mut big = TCP_RECORD;
    big[2..4].copy_from_slice(&0x0fffu16.to_be_bytes());
    rest.push((sandwich(&big), 1, RecordSize));
    let mut small = TCP_RECORD;
    small[3] = 32;
    rest.push((sandwich(&small), 1, RecordSize));
    let mut v6_small = TCP_RECORD;
    v6_small[0] = STYPE_F_INET6;
    rest.push((sandwich(&v6_small), 1, RecordSize));
    let mut version = TCP_RECORD;
    version[2] = 0x10;
    rest.push((sandwich(&version), 1, RecordVersion));
    let mut kind = TCP_RECORD;
    kind[0] = 2;
    rest.push((sandwich(&kind), 1, RecordType));
    rest.push((sandwich(&with_options(&[0x40])), 1, OptionTruncated));
    rest.push((sandwich(&with_options(&[0x45, 0])), 1, OptionLength));
    rest.push((sandwich(&with_options(&[2, 3, 1, 2])), 1, OptionLength));
    let mut short_seq = vec![1, 12];
    short_seq.extend_from_slice(&[0; 12]);
    rest.push((sandwich(&with_options(&short_seq)), 1, OptionLength));
    rest.push((
        sandwich(&with_options(&[2, 1, 1, 2, 1, 2, 3, 1, b'x'])),
        1,
        OptionDuplicate,
    ));
    rest.push((
        sandwich(&with_options(&[3, 1, b'x', 3, 1, b'y'])),
        1,
        OptionDuplicate,
    ));
    let mut two_seq = Vec::new();
    for _ in 0..2 {
        two_seq.extend_from_slice(&[1, 24]);
        two_seq.extend_from_slice(&[0; 24]);
    }
    rest.push((sandwich(&with_options(&two_seq)), 1, OptionDuplicate));
    let mut long_name = vec![3, 17];
    long_name.extend_from_slice(&[b'n'; 17]);
    rest.push((sandwich(&with_options(&long_name)), 1, PeNameTooLong));
    for (buf, kept, why) in rest {
        assert_eq!(verdict(&buf), (kept, vec![], Some(why)), "{buf:02x?}");
        seen.insert(why);
    }

    let record = [
        // Unknown mandatory option: the record goes, the next one stays;
        // the kernel does not look past it (the broken option after it is
        // unseen).
        (with_options(&[5, 1, 0, 2, 0]), OptionUnknown),
        (with_options(&[2, 2, 1, 2]), PeWithoutName),
        (with_options(&[2, 1, 1, 3, 2, 0xff, 0xfe]), PeUnknown),
        (ipv6_record(), Ipv6),
    ];
    for (rec, why) in record {
        let buf = sandwich(&rec);
        assert_eq!(verdict(&buf), (2, vec![why], None), "{buf:02x?}");
        seen.insert(why);
    }
    assert_eq!(ok(&sandwich(&ipv6_record())).skipped_v6, 1);

    let mut c = tcp_conn();
    c.proto = 1;
    assert_eq!(check_semantics(&c), Err(Protocol));
    seen.insert(Protocol);
    let mut c = tcp_conn();
    c.state = TCP_STATES;
    assert_eq!(check_semantics(&c), Err(State));
    seen.insert(State);

    assert_eq!(seen, Reject::ALL.iter().copied().collect::<BTreeSet<_>>());
}

#[test]
fn optional_options_are_skipped_and_the_bit_does_not_hide_known_ones() {
    assert_eq!(
        verdict(&sandwich(&with_options(&[0x45, 2, 9, 9]))),
        (3, vec![], None)
    );
    // 0x41 is the sequence option.
    let mut opt = vec![0x41, 24];
    opt.extend_from_slice(&[0; 24]);
    let m = ok(&sandwich(&with_options(&opt)));
    assert_eq!(m.records[1].seq, Some(Default::default()));
}

#[test]
fn header_variants_that_are_v0() {
    // Only reserved 0, version 1, spare 0 together make v1; anything else
    // is v0 with byte 0 as the count.
    let good = v1_message(0, 1, &TCP_RECORD);
    for (at, v) in [(0, 0u8), (5, 2), (6, 1), (7, 1)] {
        let mut b = good.clone();
        b[at] = v;
        if at == 0 {
            b[5] = 0;
        }
        let m = ok(&b);
        assert_eq!(
            (m.version, m.records.len(), m.error),
            (Version::V0, 0, None)
        );
    }
    // reserved = 1 sends it down the v0 path with one 24-byte record.
    let mut b = good.clone();
    b[0] = 1;
    let m = ok(&b);
    assert_eq!((m.version, m.records.len()), (Version::V0, 1));
    // Short datagrams: v0, and a count finds no record.
    assert_eq!(verdict(&[0, 0, 0, 4]), (0, vec![], None));
    assert_eq!(
        verdict(&[1, 0, 0, 7, 0, 1, 0]),
        (0, vec![], Some(Reject::RecordTruncated))
    );
    // Bytes after the counted records are ignored, as by the kernel.
    let mut body = TCP_RECORD.to_vec();
    body.extend_from_slice(&[0xee; 9]);
    assert_eq!(verdict(&v1_message(0, 1, &body)), (1, vec![], None));
}

#[test]
fn semantics() {
    let mut c = tcp_conn();
    for (proto, states) in [
        (PROTO_TCP, TCP_STATES),
        (PROTO_UDP, UDP_STATES),
        (PROTO_SCTP, SCTP_STATES),
    ] {
        c.proto = proto;
        c.state = states - 1;
        assert_eq!(check_semantics(&c), Ok(()));
        c.state = states;
        assert_eq!(check_semantics(&c), Err(Reject::State));
    }
    // AH and ESP are known to the kernel, not to ripvs.
    for proto in [0, 50, 51, 1] {
        c.proto = proto;
        c.state = 0;
        assert_eq!(check_semantics(&c), Err(Reject::Protocol));
    }
    // Templates: no protocol or state check.
    c.flags |= CONN_F_TEMPLATE;
    c.state = 99;
    assert_eq!(check_semantics(&c), Ok(()));
    // The counts are the engine's own.
    use fastpath::proto::Proto;
    for p in [Proto::Tcp, Proto::Udp, Proto::Sctp] {
        let states = match p as u8 {
            PROTO_TCP => TCP_STATES,
            PROTO_UDP => UDP_STATES,
            _ => SCTP_STATES,
        };
        assert_eq!(u16::from(p.num_states()), states);
    }
}

#[test]
fn encoder_fills_to_maxlen() {
    let mut e = Encoder::new(Version::V1, 3, 1472);
    for _ in 0..40 {
        assert_eq!(e.push(&tcp_conn()), Push::Added);
    }
    assert_eq!((e.len(), e.records()), (8 + 40 * 36, 40));
    assert_eq!(e.push(&tcp_conn()), Push::Full);
    let m = e.take().unwrap();
    assert_eq!(m.len(), 1448);
    assert!(e.is_empty());
    assert_eq!((e.len(), e.take()), (8, None));
    let d = ok(&m);
    assert_eq!((d.syncid, d.records.len()), (3, 40));
    assert_eq!(e.push(&tcp_conn()), Push::Added);

    // v0: 24-byte records.
    let mut e = Encoder::new(Version::V0, 3, 1472);
    while e.push(&tcp_conn()) == Push::Added {}
    assert_eq!((e.records(), e.len()), (61, 4 + 61 * 24));

    // Padding counts: 74 + 2 + 36 fits 120 exactly, not 119.
    for (maxlen, second) in [(120, Push::Added), (119, Push::Full)] {
        let mut e = Encoder::new(Version::V1, 0, maxlen);
        assert_eq!(e.push(&seq_pe_conn()), Push::Added);
        assert_eq!(e.push(&tcp_conn()), second);
    }
}

#[test]
fn encoder_caps_records_and_refuses_what_never_fits() {
    let mut e = Encoder::new(Version::V1, 0, usize::MAX);
    for _ in 0..255 {
        assert_eq!(e.push(&tcp_conn()), Push::Added);
    }
    assert_eq!(e.push(&tcp_conn()), Push::Full);
    let m = e.take().unwrap();
    assert_eq!((m[4], m.len()), (255, 8 + 255 * 36));
    assert_eq!(ok(&m).records.len(), 255);

    // maxlen is clamped up to one plain record.
    let mut e = Encoder::new(Version::V1, 0, 0);
    assert_eq!(e.push(&tcp_conn()), Push::Added);
    assert_eq!(e.push(&tcp_conn()), Push::Full);
    assert_eq!(e.push(&seq_pe_conn()), Push::TooBig);
    let mut e = Encoder::new(Version::V0, 0, 0);
    assert_eq!(e.push(&seq_pe_conn()), Push::TooBig);
    assert_eq!(e.push(&tcp_conn()), Push::Added);

    let mut e = Encoder::new(Version::V1, 0, MAX_MSG);
    for pe in [
        Pe {
            name: "x".repeat(17),
            data: vec![1],
        },
        Pe {
            name: String::new(),
            data: vec![1],
        },
        Pe {
            name: "sip".into(),
            data: vec![1; 256],
        },
    ] {
        let mut c = tcp_conn();
        c.pe = Some(pe);
        assert_eq!(e.push(&c), Push::TooBig);
    }
    assert!(e.is_empty());
}

#[test]
fn control_messages() {
    let c = Control::End {
        syncid: 4,
        nonce: 0x0102_0304,
        count: 70000,
    };
    #[rustfmt::skip]
    let want = [
        0x00, 0x04, 0x00, 0x18, 0x00, 0xa5, 0x00, 0x00,
        b'R', b'P', b'V', b'S', 3, 0, 0, 0,
        0x01, 0x02, 0x03, 0x04, 0x00, 0x01, 0x11, 0x70,
    ];
    assert_eq!(c.encode(), want);
    for c in [
        c,
        Control::Request {
            syncid: 0,
            nonce: 7,
        },
        Control::Begin {
            syncid: 255,
            nonce: u32::MAX,
        },
    ] {
        let b = c.encode();
        assert_eq!(Control::decode(&b), Some(c));
        // What a kernel backup makes of it: v0, no records, no error.
        let m = decode(&b, 0).unwrap();
        assert_eq!(
            (m.version, m.records.len(), m.skipped.len(), m.error),
            (Version::V0, 0, 0, None)
        );
        // Any change makes it not ours.
        for i in 0..b.len() {
            let mut x = b.clone();
            x[i] ^= 0x80;
            if i != 1 && !(16..20).contains(&i) && !(matches!(c, Control::End { .. }) && i >= 20) {
                assert_eq!(Control::decode(&x), None, "byte {i}");
            }
        }
        assert_eq!(Control::decode(&b[..23]), None);
    }
    // A request with a count is not one.
    let mut b = Control::Request {
        syncid: 0,
        nonce: 7,
    }
    .encode();
    b[23] = 1;
    assert_eq!(Control::decode(&b), None);
    assert_eq!(Control::decode(&v1_message(0, 1, &TCP_RECORD)), None);
}

#[test]
fn reject_names_are_unique_snake_case() {
    let names: BTreeSet<_> = Reject::ALL.iter().map(|r| r.name()).collect();
    assert_eq!(names.len(), Reject::ALL.len());
    for n in names {
        assert!(
            n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{n}"
        );
    }
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
}

/// A random record the encoder can say; `version` decides what survives.
fn random_conn(r: &mut Rng) -> WireConn {
    let flags = r.u32() & !CONN_F_HASHED & 0x1fff;
    let seq = |r: &mut Rng| Seq {
        init_seq: r.u32(),
        delta: r.u32(),
        previous_delta: r.u32(),
    };
    let pe = (r.below(4) == 0).then(|| Pe {
        name: "abcdefghijklmnop"[..1 + r.below(16)].to_owned(),
        data: (0..1 + r.below(255)).map(|_| r.next() as u8).collect(),
    });
    WireConn {
        proto: [0, 6, 17, 132, 50][r.below(5)],
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
        seq: (flags & CONN_F_SEQ_MASK != 0).then(|| (seq(r), seq(r))),
        pe,
    }
}

#[test]
fn random_records_round_trip() {
    let mut r = Rng(0x5eed_0001);
    for _ in 0..500 {
        let version = if r.below(2) == 0 {
            Version::V0
        } else {
            Version::V1
        };
        let maxlen = 44 + r.below(3000);
        let mut e = Encoder::new(version, r.below(256) as u8, maxlen);
        let mut want = Vec::new();
        loop {
            let c = random_conn(&mut r);
            match e.push(&c) {
                Push::Added => want.push(if version == Version::V0 { v0_of(c) } else { c }),
                Push::Full => break,
                Push::TooBig => assert!(c.pe.is_some() || c.flags & CONN_F_SEQ_MASK != 0),
            }
            assert!(e.len() <= maxlen.max(44));
        }
        let n = e.records();
        let m = e.take().unwrap();
        assert!(m.len() <= maxlen.max(44));
        let d = decode(&m, 0).unwrap();
        assert_eq!((d.version, d.records.len(), d.error), (version, n, None));
        assert_eq!(d.records, want);
    }
}

/// A message with its size field set to its length, so that it gets past
/// the whole-message checks to the records.
fn fix_size(mut b: Vec<u8>) -> Vec<u8> {
    if b.len() >= 4 && b.len() <= 0xffff {
        let n = (b.len() as u16).to_be_bytes();
        b[2..4].copy_from_slice(&n);
    }
    b
}

#[test]
fn damaged_and_random_input_never_panics() {
    let mut r = Rng(0x5eed_0002);
    let mut samples = Vec::new();
    for _ in 0..64 {
        let version = if r.below(2) == 0 {
            Version::V0
        } else {
            Version::V1
        };
        let mut e = Encoder::new(version, 1, 44 + r.below(2000));
        while e.push(&random_conn(&mut r)) != Push::Full {}
        samples.push(e.take().unwrap());
    }
    samples.push(sandwich(&ipv6_record()));
    samples.push(
        Control::Begin {
            syncid: 1,
            nonce: 2,
        }
        .encode(),
    );
    let check = |b: &[u8], syncid: u8| {
        if let Ok(m) = decode(b, syncid) {
            assert!(m.records.len() + m.skipped.len() <= MAX_RECORDS);
            for c in &m.records {
                let _ = check_semantics(c);
            }
        }
        let _ = Control::decode(b);
    };
    for i in 0..20_000 {
        let base = &samples[r.below(samples.len())];
        let mut b = base.clone();
        match i % 4 {
            0 => {
                for _ in 0..1 + r.below(8) {
                    let at = r.below(b.len());
                    b[at] = r.next() as u8;
                }
            }
            1 => b.truncate(r.below(b.len() + 1)),
            2 => b.extend((0..r.below(64)).map(|_| r.next() as u8)),
            _ => b = (0..r.below(600)).map(|_| r.next() as u8).collect(),
        }
        let syncid = [0, 1, r.next() as u8][r.below(3)];
        check(&b, syncid);
        check(&fix_size(b), syncid);
    }
}

#[test]
fn records_of_nothing_but_ignored_options_decode() {
    // The most option parsing a datagram can ask for: every record as
    // large as its size field allows, filled with 3-byte options.
    let mut opts = Vec::new();
    while opts.len() + 3 <= 4095 - 36 {
        opts.extend_from_slice(&[0x45, 1, 0]);
    }
    let rec = with_options(&opts);
    let mut body = Vec::new();
    while V1_HEADER + body.len() + rec.len() <= 0xffff {
        body.extend_from_slice(&rec);
    }
    let nr = body.len() / rec.len();
    let m = ok(&v1_message(0, nr as u8, &body));
    assert_eq!((m.records.len(), m.error), (nr, None));
}
