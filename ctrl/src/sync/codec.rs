//! The IPVS sync wire format, versions 1 and 0 (reference 8.3, 8.4), as
//! the kernel's `ip_vs_sync_conn` / `ip_vs_sync_conn_v0` write it and
//! `ip_vs_process_message` reads it (net/netfilter/ipvs/ip_vs_sync.c).
//!
//! The decoder refuses exactly what the kernel refuses, in the kernel's
//! order, because a ripvs backup must install the same connections a
//! kernel backup would from the same datagram. The kernel has three kinds
//! of refusal and so does [`decode`]:
//!
//! * the whole datagram (too short, size field not the datagram's length,
//!   foreign syncid): `Err`;
//! * the rest of the datagram (a record or option whose framing is broken:
//!   nothing after it can be trusted to start where it seems to):
//!   [`Message::error`], with the records before it kept, since the kernel
//!   has installed them already;
//! * one record, whose framing is sound but which the kernel will not
//!   install (an unknown mandatory option, PE data without a PE name) or
//!   ripvs cannot hold (an IPv6 record): [`Message::skipped`], and
//!   decoding goes on with the next record.
//!
//! The checks of a record's meaning (protocol, state, persistence engine)
//! are left to [`check_semantics`], which the caller applies to each
//! record it is about to install. The kernel makes the protocol and state
//! checks before it looks for the PE name, so a record failing both is
//! skipped here as `pe_without_name` where the kernel logs its protocol
//! or state; either way it is not installed.
//!
//! Flood safety: a datagram is at most 65535 bytes, holds at most 255
//! records, and every option consumes at least three bytes, so decoding is
//! linear in the datagram's length and allocates at most 255 records of at
//! most 271 bytes of persistence data each.

use std::fmt;
use std::net::Ipv4Addr;

/// The kernel's default multicast group (`IP_VS_SYNC_GROUP`).
pub const DEFAULT_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
/// The kernel's default port (`IP_VS_SYNC_PORT`); sync thread *i* uses
/// this port + *i*.
pub const DEFAULT_PORT: u16 = 8848;

/// v1 header, v0 header, IPv4 v1 record, v0 record, sequence option sizes
pub const V1_HEADER: usize = 8;
pub const V0_HEADER: usize = 4;
pub const V1_RECORD_V4: usize = 36;
pub const V0_RECORD: usize = 24;
pub const SEQ_LEN: usize = 24;
/// The fixed part of an IPv6 v1 record: ripvs decodes it only to skip it.
pub const V1_RECORD_V6: usize = 72;
/// Largest UDP payload: 65535 - 28.
pub const MAX_MSG: usize = 65507;
/// The header's record count is one byte.
pub const MAX_RECORDS: usize = 255;
/// `IP_VS_PENAME_MAXLEN` and `IP_VS_PEDATA_MAXLEN` (include/uapi/linux/ip_vs.h).
pub const PE_NAME_MAX: usize = 16;
pub const PE_DATA_MAX: usize = 255;

/// IPVS connection flags (`IP_VS_CONN_F_*`, include/uapi/linux/ip_vs.h),
/// as records carry them.
pub const CONN_F_FWD_MASK: u32 = 0x0007;
pub const CONN_F_MASQ: u32 = 0x0000;
pub const CONN_F_LOCALNODE: u32 = 0x0001;
pub const CONN_F_TUNNEL: u32 = 0x0002;
pub const CONN_F_DROUTE: u32 = 0x0003;
pub const CONN_F_BYPASS: u32 = 0x0004;
pub const CONN_F_SYNC: u32 = 0x0020;
pub const CONN_F_HASHED: u32 = 0x0040;
pub const CONN_F_NOOUTPUT: u32 = 0x0080;
pub const CONN_F_INACTIVE: u32 = 0x0100;
pub const CONN_F_OUT_SEQ: u32 = 0x0200;
pub const CONN_F_IN_SEQ: u32 = 0x0400;
pub const CONN_F_SEQ_MASK: u32 = CONN_F_OUT_SEQ | CONN_F_IN_SEQ;
pub const CONN_F_NO_CPORT: u32 = 0x0800;
pub const CONN_F_TEMPLATE: u32 = 0x1000;
pub const CONN_F_ONE_PACKET: u32 = 0x2000;
/// The received flags a kernel backup keeps on a new entry (it adds SYNC).
pub const CONN_F_BACKUP_MASK: u32 = CONN_F_FWD_MASK
    | CONN_F_NOOUTPUT
    | CONN_F_INACTIVE
    | CONN_F_SEQ_MASK
    | CONN_F_NO_CPORT
    | CONN_F_TEMPLATE;
/// The received flags a kernel backup updates on an existing entry.
pub const CONN_F_BACKUP_UPD_MASK: u32 = CONN_F_INACTIVE | CONN_F_SEQ_MASK;

/// Protocol numbers and their state counts (`IP_VS_TCP_S_LAST`,
/// `IP_VS_UDP_S_LAST`, `IP_VS_SCTP_S_LAST`, include/net/ip_vs.h): a
/// record's state must be below its protocol's count.
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_SCTP: u8 = 132;
pub const TCP_STATES: u16 = 11;
pub const UDP_STATES: u16 = 1;
pub const SCTP_STATES: u16 = 14;

/// `SYNC_PROTO_VER`: the v1 header's version byte.
const SYNC_PROTO_VER: u8 = 1;
/// Record type bit: IPv6 (`STYPE_F_INET6`).
const STYPE_F_INET6: u8 = 1;
/// `ver_size`: version in the top 4 bits, size in the low 12.
const SVER_SHIFT: u16 = 12;
const SVER_MASK: u16 = 0x0fff;
/// Option types; 0x40 marks an option a receiver may ignore.
const OPT_SEQ_DATA: u8 = 1;
const OPT_PE_DATA: u8 = 2;
const OPT_PE_NAME: u8 = 3;
const OPT_F_PARAM: u8 = 0x40;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V0,
    V1,
}

/// TCP sequence adjustment of a NAT connection whose payload an
/// application helper resized (`struct ip_vs_seq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Seq {
    pub init_seq: u32,
    pub delta: u32,
    pub previous_delta: u32,
}

/// Persistence-engine data of a template (the kernel's only engine is
/// "sip", keyed by Call-ID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pe {
    /// At most [`PE_NAME_MAX`] bytes.
    pub name: String,
    /// At most [`PE_DATA_MAX`] bytes; empty means "no engine data", which
    /// the kernel does not send.
    pub data: Vec<u8>,
}

/// One connection or template record, IPv4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireConn {
    pub proto: u8,
    /// IPVS connection flags as on the wire: the encoder clears HASHED
    /// (the kernel does); v0 carries only the low 16 bits. The decoder
    /// returns them unmasked: what a backup keeps is its business
    /// ([`CONN_F_BACKUP_MASK`]).
    pub flags: u32,
    pub state: u16,
    pub cport: u16,
    pub vport: u16,
    pub dport: u16,
    /// v1 only (v0: decoded as 0).
    pub fwmark: u32,
    /// The entry's full timeout in seconds, v1 only (v0: decoded as 0,
    /// and a backup uses its own timeout for the state).
    pub timeout: u32,
    pub caddr: Ipv4Addr,
    pub vaddr: Ipv4Addr,
    pub daddr: Ipv4Addr,
    /// (in_seq, out_seq). The kernel master sends them iff the flags have
    /// IN_SEQ or OUT_SEQ, so the encoder does the same (zeros if `None`,
    /// nothing if the flags lack both bits). A v1 receiver takes them from
    /// the option whatever the flags say; a v0 receiver reads them iff the
    /// flags have either bit. The decoder follows both.
    pub seq: Option<(Seq, Seq)>,
    /// v1 only: a v0 master drops it, as the kernel's does.
    pub pe: Option<Pe>,
}

/// Why a message or record was refused. Each reason is one of the
/// kernel's refusals in `ip_vs_process_message`, `ip_vs_proc_sync_conn`
/// and `ip_vs_process_message_v0`; [`name`](Reject::name) is a stable
/// counter name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reject {
    /// Whole datagram: shorter than the 4 bytes every header has.
    TooShort,
    /// Whole datagram: the header's size is not the datagram's length.
    SizeMismatch,
    /// Whole datagram: another syncid than the backup's (non-zero) one.
    Syncid,
    /// Rest of the datagram: it ends inside a record's fixed part (v1:
    /// fewer than 36 bytes left; v0: fewer than 24, or 48 with sequence
    /// data) or the header counts more records than it holds.
    RecordTruncated,
    /// Rest: a v1 record's size runs past the datagram, or is smaller than
    /// the fixed part of its type (36 bytes IPv4, 72 IPv6).
    RecordSize,
    /// Rest: a v1 record's version nibble is not 0.
    RecordVersion,
    /// Rest: a v1 record's type is neither 0 (IPv4) nor has bit 0 (IPv6).
    RecordType,
    /// Rest: a single byte is left in the record where an option's type
    /// and length should be.
    OptionTruncated,
    /// Rest: an option's length is 0 or runs past its record, or a
    /// sequence option is not 24 bytes.
    OptionLength,
    /// Rest: a record has a second option of a known type.
    OptionDuplicate,
    /// Rest: a PE name option longer than 16 bytes.
    PeNameTooLong,
    /// Record: an option type the kernel does not know, without the 0x40
    /// bit that would let it be ignored.
    OptionUnknown,
    /// Record: PE data without a PE name to say whose data it is.
    PeWithoutName,
    /// Record: a PE name no engine answers to. The kernel skips such a
    /// record when the engine's module is not loaded; ripvs has no engine
    /// at all ([`check_semantics`]), and a name that is not UTF-8 names
    /// none anywhere ([`decode`]).
    PeUnknown,
    /// Record: an IPv6 record; the kernel installs it, ripvs cannot.
    Ipv6,
    /// Record ([`check_semantics`]): a connection whose protocol has no
    /// state machine here.
    Protocol,
    /// Record ([`check_semantics`]): a state beyond its protocol's.
    State,
}

impl Reject {
    pub const ALL: &'static [Reject] = &[
        Reject::TooShort,
        Reject::SizeMismatch,
        Reject::Syncid,
        Reject::RecordTruncated,
        Reject::RecordSize,
        Reject::RecordVersion,
        Reject::RecordType,
        Reject::OptionTruncated,
        Reject::OptionLength,
        Reject::OptionDuplicate,
        Reject::PeNameTooLong,
        Reject::OptionUnknown,
        Reject::PeWithoutName,
        Reject::PeUnknown,
        Reject::Ipv6,
        Reject::Protocol,
        Reject::State,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Reject::TooShort => "too_short",
            Reject::SizeMismatch => "size_mismatch",
            Reject::Syncid => "syncid",
            Reject::RecordTruncated => "record_truncated",
            Reject::RecordSize => "record_size",
            Reject::RecordVersion => "record_version",
            Reject::RecordType => "record_type",
            Reject::OptionTruncated => "option_truncated",
            Reject::OptionLength => "option_length",
            Reject::OptionDuplicate => "option_duplicate",
            Reject::PeNameTooLong => "pe_name_too_long",
            Reject::OptionUnknown => "option_unknown",
            Reject::PeWithoutName => "pe_without_name",
            Reject::PeUnknown => "pe_unknown",
            Reject::Ipv6 => "ipv6",
            Reject::Protocol => "protocol",
            Reject::State => "state",
        }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A decoded message. Records before the first bad one are kept (the
/// kernel installs records one by one and stops at the first bad one);
/// `error` says why the rest was dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub version: Version,
    pub syncid: u8,
    /// Well-formed IPv4 records, in order; [`check_semantics`] still
    /// applies to each.
    pub records: Vec<WireConn>,
    /// IPv6 records that decoded (they are also in `skipped`).
    pub skipped_v6: u32,
    /// Records passed over while decoding went on, one reason each, in
    /// order.
    pub skipped: Vec<Reject>,
    pub error: Option<Reject>,
}

/// Decodes one UDP payload. `my_syncid`: 0 accepts any syncid, else
/// messages with another syncid are refused with [`Reject::Syncid`].
///
/// ripvs's [`Control`] messages decode here as what they are to the
/// kernel, a v0 message of no records, so a caller tries
/// [`Control::decode`] first.
///
/// A datagram of 4 to 7 bytes is read as v0: the kernel reads the v1
/// header's version from beyond such a datagram, but whichever way it
/// goes, a non-zero record count finds no room for a record.
pub fn decode(buf: &[u8], my_syncid: u8) -> Result<Message, Reject> {
    let [b0, syncid, s0, s1, ..] = *buf else {
        return Err(Reject::TooShort);
    };
    if usize::from(u16::from_be_bytes([s0, s1])) != buf.len() {
        return Err(Reject::SizeMismatch);
    }
    if my_syncid != 0 && syncid != my_syncid {
        return Err(Reject::Syncid);
    }
    let v1 = matches!(buf, [0, _, _, _, _, SYNC_PROTO_VER, 0, 0, ..]);
    let mut m = Message {
        version: if v1 { Version::V1 } else { Version::V0 },
        syncid,
        records: Vec::new(),
        skipped_v6: 0,
        skipped: Vec::new(),
        error: None,
    };
    m.error = if v1 {
        decode_v1(buf, buf[4], &mut m)
    } else {
        decode_v0(buf, b0, &mut m)
    }
    .err();
    Ok(m)
}

fn decode_v1(buf: &[u8], nr_conns: u8, m: &mut Message) -> Result<(), Reject> {
    let mut at = V1_HEADER;
    for _ in 0..nr_conns {
        let fixed = buf
            .get(at..at + V1_RECORD_V4)
            .ok_or(Reject::RecordTruncated)?;
        let ver_size = be16(fixed, 2);
        let size = usize::from(ver_size & SVER_MASK);
        let rec = buf.get(at..at + size).ok_or(Reject::RecordSize)?;
        if ver_size >> SVER_SHIFT != 0 {
            return Err(Reject::RecordVersion);
        }
        match record_v1(fixed[0], rec) {
            Ok(Some(c)) => m.records.push(c),
            Ok(None) => {
                m.skipped_v6 += 1;
                m.skipped.push(Reject::Ipv6);
            }
            Err(Refusal::Record(r)) => m.skipped.push(r),
            Err(Refusal::Rest(r)) => return Err(r),
        }
        // Records start 32-bit aligned; the padding is not in `size`.
        at += (size + 3) & !3;
    }
    Ok(())
}

/// A refusal inside a record: of the record alone, or of the rest of the
/// message.
enum Refusal {
    Record(Reject),
    Rest(Reject),
}

/// One v1 record of `rec.len()` bytes whose first byte is `kind`: the
/// IPv4 connection, or `None` for a well-formed IPv6 record.
fn record_v1(kind: u8, rec: &[u8]) -> Result<Option<WireConn>, Refusal> {
    let fixed = if kind & STYPE_F_INET6 != 0 {
        V1_RECORD_V6
    } else if kind == 0 {
        V1_RECORD_V4
    } else {
        return Err(Refusal::Rest(Reject::RecordType));
    };
    let (head, options) = rec
        .split_at_checked(fixed)
        .ok_or(Refusal::Rest(Reject::RecordSize))?;
    let opt = Options::parse(options)?;
    if fixed == V1_RECORD_V6 {
        return Ok(None);
    }
    // The kernel ignores a PE name without PE data.
    let pe = match (opt.pe_data, opt.pe_name) {
        (None, _) => None,
        (Some(_), None) => return Err(Refusal::Record(Reject::PeWithoutName)),
        (Some(data), Some(name)) => {
            let name = std::str::from_utf8(name).map_err(|_| Refusal::Record(Reject::PeUnknown))?;
            Some(Pe {
                name: name.to_owned(),
                data: data.to_vec(),
            })
        }
    };
    Ok(Some(WireConn {
        proto: head[1],
        flags: be32(head, 4),
        state: be16(head, 8),
        cport: be16(head, 10),
        vport: be16(head, 12),
        dport: be16(head, 14),
        fwmark: be32(head, 16),
        timeout: be32(head, 20),
        caddr: addr(head, 24),
        vaddr: addr(head, 28),
        daddr: addr(head, 32),
        seq: opt.seq,
        pe,
    }))
}

#[derive(Default)]
struct Options<'a> {
    seq: Option<(Seq, Seq)>,
    pe_data: Option<&'a [u8]>,
    pe_name: Option<&'a [u8]>,
}

impl<'a> Options<'a> {
    /// The option TLVs after a record's fixed part, checked in the
    /// kernel's order: an unknown mandatory option ends the parse (the
    /// kernel never looks at what follows it).
    fn parse(mut rest: &'a [u8]) -> Result<Options<'a>, Refusal> {
        let rest_err = |r| Err(Refusal::Rest(r));
        let mut opt = Options::default();
        while let [kind, len, tail @ ..] = rest {
            let Some((data, next)) = tail.split_at_checked(usize::from(*len)) else {
                return rest_err(Reject::OptionLength);
            };
            if data.is_empty() {
                return rest_err(Reject::OptionLength);
            }
            // The optional bit does not hide a known type.
            match kind & !OPT_F_PARAM {
                OPT_SEQ_DATA => {
                    if data.len() != SEQ_LEN {
                        return rest_err(Reject::OptionLength);
                    }
                    if opt.seq.is_some() {
                        return rest_err(Reject::OptionDuplicate);
                    }
                    opt.seq = Some((seq_be(data, 0), seq_be(data, 12)));
                }
                OPT_PE_DATA => {
                    if opt.pe_data.is_some() {
                        return rest_err(Reject::OptionDuplicate);
                    }
                    opt.pe_data = Some(data);
                }
                OPT_PE_NAME => {
                    if data.len() > PE_NAME_MAX {
                        return rest_err(Reject::PeNameTooLong);
                    }
                    if opt.pe_name.is_some() {
                        return rest_err(Reject::OptionDuplicate);
                    }
                    opt.pe_name = Some(data);
                }
                _ if kind & OPT_F_PARAM == 0 => {
                    return Err(Refusal::Record(Reject::OptionUnknown));
                }
                _ => {}
            }
            rest = next;
        }
        if rest.is_empty() {
            Ok(opt)
        } else {
            rest_err(Reject::OptionTruncated)
        }
    }
}

fn decode_v0(buf: &[u8], nr_conns: u8, m: &mut Message) -> Result<(), Reject> {
    let mut at = V0_HEADER;
    for _ in 0..nr_conns {
        let rec = buf.get(at..at + V0_RECORD).ok_or(Reject::RecordTruncated)?;
        let flags = be16(rec, 20);
        at += V0_RECORD;
        let seq = if u32::from(flags) & CONN_F_SEQ_MASK != 0 {
            let opt = buf.get(at..at + SEQ_LEN).ok_or(Reject::RecordTruncated)?;
            at += SEQ_LEN;
            Some((seq_le(opt, 0), seq_le(opt, 12)))
        } else {
            None
        };
        m.records.push(WireConn {
            proto: rec[1],
            flags: u32::from(flags),
            state: be16(rec, 22),
            cport: be16(rec, 2),
            vport: be16(rec, 4),
            dport: be16(rec, 6),
            fwmark: 0,
            timeout: 0,
            caddr: addr(rec, 8),
            vaddr: addr(rec, 12),
            daddr: addr(rec, 16),
            seq,
            pe: None,
        });
    }
    Ok(())
}

/// The kernel's checks of a record's meaning before it installs it
/// (`ip_vs_proc_sync_conn`, `ip_vs_process_message_v0`): a connection
/// needs a protocol with a state machine and a state below its count; a
/// template (whose protocol may be 0 for a fwmark service) needs neither,
/// its state being only logged when out of range. A record with PE data
/// names an engine the backup must have; ripvs has none (its config
/// refuses `pe`), so such a record is refused as a kernel without the
/// engine's module refuses it.
///
/// The kernel also knows AH and ESP (one state each); ripvs does not
/// balance them, so their records are refused as unknown protocols.
pub fn check_semantics(c: &WireConn) -> Result<(), Reject> {
    if c.flags & CONN_F_TEMPLATE == 0 {
        let states = match c.proto {
            PROTO_TCP => TCP_STATES,
            PROTO_UDP => UDP_STATES,
            PROTO_SCTP => SCTP_STATES,
            _ => return Err(Reject::Protocol),
        };
        if c.state >= states {
            return Err(Reject::State);
        }
    }
    match &c.pe {
        Some(pe) if !pe.data.is_empty() => Err(Reject::PeUnknown),
        _ => Ok(()),
    }
}

/// Builds messages up to `maxlen` bytes of UDP payload (and at most 255
/// records, nr_conns is a u8), as the kernel master fills its buffers:
/// a record goes into the current message if it fits with its padding,
/// else the message is finished first.
///
/// The kernel master itself has no record cap (its count wraps past 255
/// when sync_maxlen is large) and sends a record larger than sync_maxlen
/// in a buffer of its own; ripvs does neither.
///
/// Version 0 cannot say fwmark, timeout or PE data, nor flags above bit
/// 15. The encoder drops them, as the kernel's v0 master does, rather
/// than refusing the record: a v0 backup is served as a kernel master
/// would serve it (it arms its own timeout for the state, and a fwmark
/// template still arrives under its key, which holds the mark in vaddr).
pub struct Encoder {
    version: Version,
    syncid: u8,
    maxlen: usize,
    buf: Vec<u8>,
    records: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    Added,
    /// The record does not fit: take() the message, then push again.
    Full,
    /// The record alone is larger than maxlen, or carries a PE the wire
    /// cannot say (data over 255 bytes, a name empty or over 16 bytes,
    /// which a kernel backup would refuse): never sendable.
    TooBig,
}

impl Encoder {
    /// `maxlen` is clamped to [V1_HEADER + one record, MAX_MSG].
    pub fn new(version: Version, syncid: u8, maxlen: usize) -> Encoder {
        let mut e = Encoder {
            version,
            syncid,
            maxlen: maxlen.clamp(V1_HEADER + V1_RECORD_V4, MAX_MSG),
            buf: Vec::new(),
            records: 0,
        };
        e.start();
        e
    }

    fn start(&mut self) {
        self.buf = Vec::with_capacity(self.maxlen);
        self.records = 0;
        // Sizes and counts are filled in by take().
        match self.version {
            Version::V0 => self.buf.extend_from_slice(&[0, self.syncid, 0, 0]),
            Version::V1 => {
                self.buf
                    .extend_from_slice(&[0, self.syncid, 0, 0, 0, SYNC_PROTO_VER, 0, 0])
            }
        }
    }

    fn header_len(&self) -> usize {
        match self.version {
            Version::V0 => V0_HEADER,
            Version::V1 => V1_HEADER,
        }
    }

    pub fn push(&mut self, c: &WireConn) -> Push {
        let Some(len) = self.record_len(c) else {
            return Push::TooBig;
        };
        if self.header_len() + len > self.maxlen {
            return Push::TooBig;
        }
        if self.records == MAX_RECORDS {
            return Push::Full;
        }
        let pad = match self.version {
            Version::V0 => 0,
            Version::V1 => self.buf.len().wrapping_neg() & 3,
        };
        if self.buf.len() + pad + len > self.maxlen {
            return Push::Full;
        }
        self.buf.resize(self.buf.len() + pad, 0);
        match self.version {
            Version::V0 => self.write_v0(c),
            Version::V1 => self.write_v1(c, len),
        }
        self.records += 1;
        Push::Added
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    pub fn records(&self) -> usize {
        self.records
    }

    /// Bytes so far, header included.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// The finished message (header size and count filled in), or None if
    /// empty; the encoder is empty afterwards.
    pub fn take(&mut self) -> Option<Vec<u8>> {
        if self.records == 0 {
            return None;
        }
        let mut msg = std::mem::take(&mut self.buf);
        // Both fit: len <= maxlen <= MAX_MSG and records <= MAX_RECORDS.
        let size = (msg.len() as u16).to_be_bytes();
        let count = self.records as u8;
        match self.version {
            Version::V0 => msg[..4].copy_from_slice(&[count, self.syncid, size[0], size[1]]),
            Version::V1 => {
                msg[2..5].copy_from_slice(&[size[0], size[1], count]);
            }
        }
        self.start();
        Some(msg)
    }

    /// The record's size on the wire (padding excluded), None if the
    /// record cannot be said.
    fn record_len(&self, c: &WireConn) -> Option<usize> {
        let seq = c.flags & CONN_F_SEQ_MASK != 0;
        match self.version {
            Version::V0 => Some(V0_RECORD + if seq { SEQ_LEN } else { 0 }),
            Version::V1 => {
                let pe = match pe_to_send(c) {
                    Ok(pe) => pe.map_or(0, |pe| 4 + pe.data.len() + pe.name.len()),
                    Err(()) => return None,
                };
                Some(V1_RECORD_V4 + if seq { 2 + SEQ_LEN } else { 0 } + pe)
            }
        }
    }

    fn write_v1(&mut self, c: &WireConn, len: usize) {
        let b = &mut self.buf;
        // Type 0 (IPv4); the version nibble is 0. len < 4096: at most
        // 36 + 26 + 257 + 18.
        b.extend_from_slice(&[0, c.proto]);
        b.extend_from_slice(&(len as u16 & SVER_MASK).to_be_bytes());
        b.extend_from_slice(&(c.flags & !CONN_F_HASHED).to_be_bytes());
        for v in [c.state, c.cport, c.vport, c.dport] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.extend_from_slice(&c.fwmark.to_be_bytes());
        b.extend_from_slice(&c.timeout.to_be_bytes());
        for a in [c.caddr, c.vaddr, c.daddr] {
            b.extend_from_slice(&a.octets());
        }
        if c.flags & CONN_F_SEQ_MASK != 0 {
            b.extend_from_slice(&[OPT_SEQ_DATA, SEQ_LEN as u8]);
            let (i, o) = c.seq.unwrap_or_default();
            for s in [i, o] {
                for v in [s.init_seq, s.delta, s.previous_delta] {
                    b.extend_from_slice(&v.to_be_bytes());
                }
            }
        }
        if let Ok(Some(pe)) = pe_to_send(c) {
            b.extend_from_slice(&[OPT_PE_DATA, pe.data.len() as u8]);
            b.extend_from_slice(&pe.data);
            b.extend_from_slice(&[OPT_PE_NAME, pe.name.len() as u8]);
            b.extend_from_slice(pe.name.as_bytes());
        }
    }

    fn write_v0(&mut self, c: &WireConn) {
        let b = &mut self.buf;
        b.extend_from_slice(&[0, c.proto]);
        for v in [c.cport, c.vport, c.dport] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        for a in [c.caddr, c.vaddr, c.daddr] {
            b.extend_from_slice(&a.octets());
        }
        b.extend_from_slice(&((c.flags & !CONN_F_HASHED) as u16).to_be_bytes());
        b.extend_from_slice(&c.state.to_be_bytes());
        if c.flags & CONN_F_SEQ_MASK != 0 {
            // The kernel copies its struct as it is in memory: host byte
            // order, little-endian on every platform IPVS directors run on.
            let (i, o) = c.seq.unwrap_or_default();
            for s in [i, o] {
                for v in [s.init_seq, s.delta, s.previous_delta] {
                    b.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
    }
}

/// The PE a v1 record carries: none without data (the kernel sends its
/// name only with data), Err if it cannot be said.
fn pe_to_send(c: &WireConn) -> Result<Option<&Pe>, ()> {
    match &c.pe {
        None => Ok(None),
        Some(pe) if pe.data.is_empty() => Ok(None),
        Some(pe)
            if pe.data.len() > PE_DATA_MAX || pe.name.is_empty() || pe.name.len() > PE_NAME_MAX =>
        {
            Err(())
        }
        Some(pe) => Ok(Some(pe)),
    }
}

/// Control messages: the v1 header's version byte, which sends a kernel
/// receiver down its v0 path.
const CONTROL_VERSION: u8 = 0xA5;
const CONTROL_MAGIC: [u8; 4] = *b"RPVS";
const CONTROL_LEN: usize = 24;

/// ripvs's full-resync control messages (beyond IPVS). They travel on the
/// sync port and are dropped harmlessly by a kernel IPVS v0/v1 receiver.
///
/// Layout (24 bytes): the 8-byte v1 header [reserved 0, syncid, size 24
/// (be16), nr_conns 0, version 0xA5, spare 0 (be16)], then b"RPVS", kind
/// (1 request, 2 begin, 3 end), 3 zero bytes, nonce (be32), count (be32).
///
/// Checked against `ip_vs_process_message`: the size equals the datagram
/// length and the syncid is the sender's, so the message passes the
/// whole-message checks; its version byte is not `SYNC_PROTO_VER`, so it
/// is handed to `ip_vs_process_message_v0`, which reads the record count
/// from byte 0, the reserved byte, 0: its loop runs zero times and nothing
/// is installed or logged. A v0-only kernel reads the same count. A v1
/// receiver never sees a v1 message in it, because it checks version 1,
/// reserved 0 and spare 0 together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// A backup asks the master for its whole table.
    Request { syncid: u8, nonce: u32 },
    /// The master starts answering request `nonce`.
    Begin { syncid: u8, nonce: u32 },
    /// The master has sent `count` records for `nonce`.
    End { syncid: u8, nonce: u32, count: u32 },
}

impl Control {
    pub fn encode(&self) -> Vec<u8> {
        let (kind, syncid, nonce, count) = match *self {
            Control::Request { syncid, nonce } => (1, syncid, nonce, 0),
            Control::Begin { syncid, nonce } => (2, syncid, nonce, 0),
            Control::End {
                syncid,
                nonce,
                count,
            } => (3, syncid, nonce, count),
        };
        let mut b = Vec::with_capacity(CONTROL_LEN);
        b.extend_from_slice(&[0, syncid]);
        b.extend_from_slice(&(CONTROL_LEN as u16).to_be_bytes());
        b.extend_from_slice(&[0, CONTROL_VERSION, 0, 0]);
        b.extend_from_slice(&CONTROL_MAGIC);
        b.extend_from_slice(&[kind, 0, 0, 0]);
        b.extend_from_slice(&nonce.to_be_bytes());
        b.extend_from_slice(&count.to_be_bytes());
        b
    }

    /// Anything but an exact control message is None, so that a sync
    /// message is never mistaken for one.
    pub fn decode(buf: &[u8]) -> Option<Control> {
        let b: &[u8; CONTROL_LEN] = buf.try_into().ok()?;
        let header = [0, b[1], 0, CONTROL_LEN as u8, 0, CONTROL_VERSION, 0, 0];
        if b[..8] != header || b[8..12] != CONTROL_MAGIC || b[13..16] != [0, 0, 0] {
            return None;
        }
        let (syncid, nonce, count) = (b[1], be32(b, 16), be32(b, 20));
        match (b[12], count) {
            (1, 0) => Some(Control::Request { syncid, nonce }),
            (2, 0) => Some(Control::Begin { syncid, nonce }),
            (3, _) => Some(Control::End {
                syncid,
                nonce,
                count,
            }),
            _ => None,
        }
    }
}

// Readers over slices whose length the caller has checked.

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn addr(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

fn seq_be(b: &[u8], at: usize) -> Seq {
    Seq {
        init_seq: be32(b, at),
        delta: be32(b, at + 4),
        previous_delta: be32(b, at + 8),
    }
}

fn seq_le(b: &[u8], at: usize) -> Seq {
    Seq {
        init_seq: le32(b, at),
        delta: le32(b, at + 4),
        previous_delta: le32(b, at + 8),
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
