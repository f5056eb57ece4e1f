//! One connection (or persistence template): IPVS's `struct ip_vs_conn`
//! reduced to what the data plane reads per packet.
//!
//! Left out, by design: the address family (one table per family), the
//! RS family (mixed-family entries go v4-mapped in the IPv6 table), the
//! fwmark (templates carry it as their virtual address, as IPVS's do),
//! persistence-engine data (no PE is supported), and the NAT sequence
//! deltas of FTP's IN_SEQ/OUT_SEQ entries: 24 bytes that only FTP NAT
//! control connections use, so they belong in a small side table keyed by
//! [`ConnId`](super::ConnId), not in every entry.

use super::addr::{Addr, ConnKey};
use super::wheel::{secs, Tick};

/// IPVS connection flags (reference 4.1), with their kernel and sync
/// wire values.
pub mod flags {
    /// The forwarding method, one of the five values below.
    pub const FWD_MASK: u16 = 0x0007;
    pub const MASQ: u16 = 0;
    pub const LOCALNODE: u16 = 1;
    pub const TUNNEL: u16 = 2;
    pub const DROUTE: u16 = 3;
    pub const BYPASS: u16 = 4;
    /// Created from a sync message.
    pub const SYNC: u16 = 0x0020;
    /// No reply seen yet: DR/TUN, whose replies bypass the director.
    pub const NOOUTPUT: u16 = 0x0080;
    /// Counted in the real server's InActConn rather than ActiveConn.
    pub const INACTIVE: u16 = 0x0100;
    pub const OUT_SEQ: u16 = 0x0200;
    pub const IN_SEQ: u16 = 0x0400;
    /// Client port unknown yet (FTP NAT data): stored with cport 0.
    pub const NO_CPORT: u16 = 0x0800;
    pub const TEMPLATE: u16 = 0x1000;
    pub const ONE_PACKET: u16 = 0x2000;
    /// ripvs-internal bits, in values the kernel leaves unused and never
    /// sent on the wire ([`WIRE_MASK`]): the entry's state changed since it
    /// was last synced (IPVS keeps `old_state` for this), and the sync
    /// retries already spent on the current end time (IPVS keeps them in
    /// the low two bits of `sync_endtime`).
    pub const SYNC_STATE_CHANGED: u16 = 0x0010;
    /// The connection is SYN-proxied: its segments are translated
    /// (`crate::synproxy`), so the established fast path leaves it to
    /// the scalar engine. ripvs-internal like the two above: a backup
    /// has no sequence deltas to go with it.
    pub const SYNPROXY: u16 = 0x0008;
    pub const SYNC_RETRIES: u16 = 0xc000;
    pub const SYNC_RETRIES_SHIFT: u16 = 14;
    /// The bits a sync message carries.
    pub const WIRE_MASK: u16 = !(SYNC_STATE_CHANGED | SYNC_RETRIES | SYNPROXY);
    /// What a backup takes from a received record (IPVS
    /// `IP_VS_CONN_F_BACKUP_MASK`).
    pub const BACKUP_MASK: u16 =
        FWD_MASK | NOOUTPUT | INACTIVE | OUT_SEQ | IN_SEQ | NO_CPORT | TEMPLATE;
}

/// Template states. A template's "assured" mark is a state, not a flag,
/// as in IPVS (`IP_VS_CTPL_S_ASSURED`), because sync sends the state and
/// a kernel backup must read the same bit there.
pub const TPL_S_NONE: u8 = 0;
pub const TPL_S_ASSURED: u8 = 1;

/// "None" for [`Conn::dest`], [`Conn::svc`] and [`Conn::control`].
pub const NONE: u32 = u32::MAX;

/// The port IPVS writes into an invalidated template's vport and dport.
pub const INVALID_PORT: u16 = 0xffff;

/// The timeout of a new entry until its first state transition
/// (IPVS `ip_vs_conn_new`: 3 s).
pub const INITIAL_TIMEOUT: Tick = secs(3);

/// A connection entry. Its hash key (protocol, client address and port)
/// is fixed once inserted, so it is private; everything else is the
/// caller's to read and write between lookups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conn<A> {
    pub(super) proto: u8,
    pub(super) caddr: A,
    pub(super) cport: u16,
    /// Virtual address and port (for a fwmark template: the mark).
    pub vaddr: A,
    pub vport: u16,
    /// Real-server address and port.
    pub daddr: A,
    pub dport: u16,
    /// [`flags`].
    pub flags: u16,
    /// Protocol state (TCP/SCTP state number, UDP's 0, template states).
    pub state: u8,
    /// Connections this entry controls (a template: its connections).
    pub n_control: u16,
    /// Client→server packets seen: see [`Conn::count_in_pkt`].
    pub in_pkts: u16,
    /// When the entry would expire as last sent to a backup, in seconds
    /// modulo 2^16 (IPVS `sync_endtime`): sync's refresh rule compares it
    /// with now + timeout. Sixteen bits fit the slot's spare bytes; they
    /// hold any difference under 9 hours, and `refresh_period` is kept
    /// below that (config).
    pub sync_end: u16,
    /// The real server, by its id that is stable across config snapshots
    /// (`service::Dest::id`), or [`NONE`] (bypass entries).
    pub dest: u32,
    /// The service, by its stable id, or [`NONE`].
    pub svc: u32,
    /// The controlling entry (a template, or an FTP control connection):
    /// its index in the table that holds it, or [`NONE`].
    pub control: u32,
    /// The current state's timeout; each packet's [`touch`] restarts the
    /// timer with it.
    ///
    /// [`touch`]: super::ConnTable::touch
    pub timeout: Tick,
    /// When the entry expires unless touched again; kept by the table.
    pub(super) expires: Tick,
}

impl<A: Addr> Conn<A> {
    /// A new entry for the connection a client→director packet `key` opens,
    /// to the real server `daddr:dport`: state NONE, the 3 s initial
    /// timeout, no flags (the caller adds the server's method, INACTIVE
    /// and NOOUTPUT as IPVS's `ip_vs_bind_dest` does). Setting the state
    /// and timeout of the first packet's transition before inserting,
    /// rather than touching right after, spares the timer wheel a visit at
    /// the 3 s mark.
    pub fn new(key: ConnKey<A>, daddr: A, dport: u16) -> Self {
        Conn {
            proto: key.proto,
            caddr: key.src,
            cport: key.sport,
            vaddr: key.dst,
            vport: key.dport,
            daddr,
            dport,
            flags: 0,
            state: 0,
            n_control: 0,
            in_pkts: 0,
            sync_end: 0,
            dest: NONE,
            svc: NONE,
            control: NONE,
            timeout: INITIAL_TIMEOUT,
            expires: 0,
        }
    }

    /// A persistence template (reference 4.5): client network `snet`, no
    /// client port, bound to `daddr:dport`. Set `timeout` to the service's
    /// persistence timeout before inserting it.
    pub fn template(proto: u8, snet: A, vaddr: A, vport: u16, daddr: A, dport: u16) -> Self {
        let mut c = Conn::new(ConnKey::new(proto, snet, 0, vaddr, vport), daddr, dport);
        c.flags = flags::TEMPLATE;
        c
    }

    #[inline]
    pub fn proto(&self) -> u8 {
        self.proto
    }
    #[inline]
    pub fn caddr(&self) -> A {
        self.caddr
    }
    #[inline]
    pub fn cport(&self) -> u16 {
        self.cport
    }
    /// The tick at which the entry expires unless touched again.
    #[inline]
    pub fn expires(&self) -> Tick {
        self.expires
    }
    /// The forwarding method ([`flags::MASQ`] ... [`flags::BYPASS`]).
    #[inline]
    pub fn fwd(&self) -> u16 {
        self.flags & flags::FWD_MASK
    }
    #[inline]
    pub fn is_template(&self) -> bool {
        self.flags & flags::TEMPLATE != 0
    }
    /// A template a controlled connection has confirmed (TCP reached
    /// ESTABLISHED, UDP saw a reply); only those survive forced expiry.
    #[inline]
    pub fn is_assured(&self) -> bool {
        self.is_template() && self.state & TPL_S_ASSURED != 0
    }
    /// The entry's client→director key.
    #[inline]
    pub fn key_in(&self) -> ConnKey<A> {
        ConnKey::new(self.proto, self.caddr, self.cport, self.vaddr, self.vport)
    }

    /// Counts a client→server packet and returns the new count.
    ///
    /// IPVS reads the count twice: the `drop_entry` defence only drops
    /// entries with at most 8 packets, and sync sends an entry when
    /// `count % sync_period == sync_threshold`. A saturating counter would
    /// stop sync for long connections, a wrapping one would make them look
    /// young again; so it wraps from 65535 to 256: never again ≤ 8, and
    /// still advancing (one irregular sync interval every 65280 packets).
    #[inline]
    pub fn count_in_pkt(&mut self) -> u16 {
        self.in_pkts = match self.in_pkts {
            u16::MAX => 256,
            n => n + 1,
        };
        self.in_pkts
    }

    /// Makes a template unmatchable (its server went away or was
    /// quiesced); it then just times out. As IPVS's `ip_vs_check_template`
    /// does, which needs no rehash here: the ports are not part of the
    /// bucket hash.
    #[inline]
    pub fn invalidate_template(&mut self) {
        self.vport = INVALID_PORT;
        self.dport = INVALID_PORT;
    }

    /// `__ip_vs_conn_in_get`. The NO_CPORT clause also keeps templates
    /// (cport 0, no NO_CPORT) out of connection lookups.
    #[inline(always)]
    pub fn matches_in(&self, k: &ConnKey<A>) -> bool {
        self.cport == k.sport
            && self.vport == k.dport
            && self.caddr == k.src
            && self.vaddr == k.dst
            && self.proto == k.proto
            && self.flags & flags::NO_CPORT == if k.sport == 0 { flags::NO_CPORT } else { 0 }
    }

    /// `ip_vs_conn_out_get`: a reply from the real server for NAT, from
    /// the VIP for the other methods. Templates never match (the kernel
    /// could match one for a reply to port 0 of a client network address).
    #[inline(always)]
    pub fn matches_out(&self, k: &ConnKey<A>) -> bool {
        let (saddr, sport) = if self.fwd() == flags::MASQ {
            (self.daddr, self.dport)
        } else {
            (self.vaddr, self.vport)
        };
        self.cport == k.dport
            && sport == k.sport
            && self.caddr == k.dst
            && saddr == k.src
            && self.proto == k.proto
            && self.flags & flags::TEMPLATE == 0
    }

    /// `ip_vs_ct_in_get`, skipping invalidated templates. The kernel
    /// relies on the changed vport alone, which a service on port 65535
    /// matches again; the reference's "dport is not 0xffff" alone would
    /// never match a template for a server on port 65535. Both ports at
    /// 0xffff fails only for a service on 65535 forwarding to 65535.
    #[inline(always)]
    pub(super) fn matches_template(&self, proto: u8, caddr: A, vaddr: A, vport: u16) -> bool {
        self.flags & flags::TEMPLATE != 0
            && self.cport == 0
            && self.vport == vport
            && self.caddr == caddr
            && self.vaddr == vaddr
            && self.proto == proto
            && !self.is_invalidated()
    }

    /// See [`Conn::invalidate_template`].
    #[inline]
    pub fn is_invalidated(&self) -> bool {
        self.vport == INVALID_PORT && self.dport == INVALID_PORT
    }
}
