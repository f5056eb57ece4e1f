//! What a worker tells the sync thread about one connection: the entry as
//! a backup needs it, in five words so it crosses the ring without a lock
//! (see `ring.rs`). The sync thread turns it into a wire record; the ids
//! let it find what the entry does not hold (the service's fwmark, the
//! controlling template's key). A backup's sync thread hands a received
//! record to its worker as a [`Synced`].

use crate::conn::{self, Conn};
use crate::persist::{Tpl, TplKey};
use core::net::Ipv4Addr;

/// Words per record in the ring.
pub const WORDS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncConn {
    /// IP protocol (0 for a fwmark service's template).
    pub proto: u8,
    pub state: u8,
    /// IPVS connection flags as sent ([`conn::flags::WIRE_MASK`] applied).
    pub flags: u16,
    /// Client (a template: its client network), port 0 for templates.
    pub caddr: Ipv4Addr,
    pub cport: u16,
    /// Virtual address and port (a fwmark template: the mark, port 0).
    pub vaddr: Ipv4Addr,
    pub vport: u16,
    pub daddr: Ipv4Addr,
    pub dport: u16,
    /// The entry's full state timeout, in seconds (what v1 sends).
    pub timeout_s: u32,
    /// The service's and the real server's stable ids, or [`conn::NONE`].
    pub svc: u32,
    pub dest: u32,
    /// A template controls the entry: the sync thread sends it along.
    pub controlled: bool,
    /// Only the controlling template is due, not the entry itself.
    pub template_only: bool,
}

impl SyncConn {
    /// The record of a connection entry as it is now.
    #[inline]
    pub fn of(c: &Conn<Ipv4Addr>) -> Self {
        SyncConn {
            proto: c.proto(),
            state: c.state,
            flags: c.flags & conn::flags::WIRE_MASK,
            caddr: c.caddr(),
            cport: c.cport(),
            vaddr: c.vaddr,
            vport: c.vport,
            daddr: c.daddr,
            dport: c.dport,
            timeout_s: c.timeout / conn::TICKS_PER_SEC,
            svc: c.svc,
            dest: c.dest,
            controlled: c.control != conn::NONE,
            template_only: false,
        }
    }

    /// The record of a shared template (`timeout_ms`: the timeout it was
    /// armed with). The sync thread fills in the forwarding method from
    /// the real server's id.
    pub fn template(k: &TplKey, t: &Tpl, timeout_ms: u64) -> Self {
        SyncConn {
            proto: k.proto,
            state: if t.assured {
                conn::TPL_S_ASSURED
            } else {
                conn::TPL_S_NONE
            },
            flags: conn::flags::TEMPLATE,
            caddr: k.snet,
            cport: 0,
            vaddr: k.vaddr,
            vport: k.vport,
            daddr: t.daddr,
            dport: t.dport,
            timeout_s: (timeout_ms / 1000) as u32,
            svc: conn::NONE,
            dest: t.dest,
            controlled: false,
            template_only: false,
        }
    }

    #[inline]
    pub fn to_words(&self) -> [u64; WORDS] {
        let a = |x: Ipv4Addr| x.to_bits() as u64;
        [
            a(self.caddr) << 32 | a(self.vaddr),
            a(self.daddr) << 32 | self.timeout_s as u64,
            (self.cport as u64) << 48
                | (self.vport as u64) << 32
                | (self.dport as u64) << 16
                | self.flags as u64,
            (self.svc as u64) << 32 | self.dest as u64,
            (self.proto as u64) << 16
                | (self.state as u64) << 8
                | (self.template_only as u64) << 1
                | self.controlled as u64,
        ]
    }

    pub fn from_words(w: [u64; WORDS]) -> Self {
        let a = |x: u64| Ipv4Addr::from_bits(x as u32);
        SyncConn {
            caddr: a(w[0] >> 32),
            vaddr: a(w[0]),
            daddr: a(w[1] >> 32),
            timeout_s: w[1] as u32,
            cport: (w[2] >> 48) as u16,
            vport: (w[2] >> 32) as u16,
            dport: (w[2] >> 16) as u16,
            flags: w[2] as u16,
            svc: (w[3] >> 32) as u32,
            dest: w[3] as u32,
            proto: (w[4] >> 16) as u8,
            state: (w[4] >> 8) as u8,
            controlled: w[4] & 1 != 0,
            template_only: w[4] & 2 != 0,
        }
    }

    #[inline]
    pub fn is_template(&self) -> bool {
        self.flags & conn::flags::TEMPLATE != 0
    }
}

/// A record on its way to a worker: the fields of the wire record that a
/// [`SyncConn`] has room for, plus the service's mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Synced {
    pub rec: SyncConn,
    /// The service's fwmark (0: none), to find a fwmark service by.
    pub fwmark: u32,
}
