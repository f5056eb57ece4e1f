//! Packets to a VIP (or matching a fwmark rule): which worker owns them,
//! their connection (an existing one, or one a new connection's first
//! packet replaces), and their way to the real server (kernel IPVS's
//! `ip_vs_in`).

use super::forward::forward;
use super::l4::{is_icmp, parse_l4, L4};
use super::Ipvs;
use crate::conn::{self, ConnId, ConnKey};
use crate::io::{Buf, Io};
use crate::output::egress::Egress;
use crate::proto::{self, Dir, Proto};
use crate::stats::DropReason;

impl Ipvs {
    /// A packet addressed to a VIP (or matching a fwmark rule). `handed`:
    /// another worker already found this worker owns it.
    pub fn input<B: Buf, I: Io<Buf = B>>(
        &mut self,
        eg: &mut Egress<B>,
        io: &mut I,
        port: usize,
        mut pkt: B,
        now: u64,
        handed: bool,
    ) {
        if is_icmp(pkt.data()) {
            return self.icmp(eg, io, port, pkt, now, handed, true);
        }
        let h = match parse_l4(pkt.data()) {
            Ok(h) => h,
            Err(r) => return eg.stats.count_drop(r),
        };
        let n = io.nworkers();
        if !handed && n > 1 {
            let owner = conn::owner_core(h.ip.src, h.sport, n);
            if owner != io.worker() {
                pkt.set_port(port);
                eg.stats.redirected(false);
                return io.to_peer(owner, pkt);
            }
        }
        let key = ConnKey::new(h.ip.proto, h.ip.src, h.sport, h.ip.dst, h.dport);
        let found = self.conns.lookup_in(&key);
        self.in_conn(eg, io, pkt, &h, found, now);
    }

    /// An inbound packet this worker owns, parsed, with its connection
    /// looked up (`found`).
    #[inline]
    pub(crate) fn in_conn<B: Buf, I: Io<Buf = B>>(
        &mut self,
        eg: &mut Egress<B>,
        io: &mut I,
        mut pkt: B,
        h: &L4,
        mut found: Option<ConnId>,
        now: u64,
    ) {
        let tick = (now / conn::TICK_MS as u64) as conn::Tick;
        if let Some(id) = found {
            // An entry bound to no local server (a synced one whose
            // service or server is not configured here) has none to lose:
            // it forwards to its daddr (reference 8.5 step 4).
            let gone = self
                .conns
                .get(id)
                .is_some_and(|c| c.dest != conn::NONE && !self.table.dest_live(c.dest));
            if gone && !self.settings.expire_nodest_conn {
                // Reference 4.7: the real server was removed; the packet
                // is dropped and the entry left to time out.
                return eg.stats.count_drop(DropReason::DestRemoved);
            }
            if gone || self.reuse(id, h) {
                self.unbind(id, now);
                self.conns.remove(id);
                found = None;
            }
        }
        let id = match found {
            Some(id) => id,
            // The one place a client is let in (the SYN proxy's cookies
            // included): see `martian` for why its entry's later packets
            // need no check.
            None if self.own.is_martian(h.ip.src) => {
                return eg.stats.count_drop(DropReason::MartianSource)
            }
            None if self.synproxied(h) => return self.synproxy_new(eg, io, pkt, h, now),
            None => {
                let key = ConnKey::new(h.ip.proto, h.ip.src, h.sport, h.ip.dst, h.dport);
                match self.new_conn(eg, io, h, key, &pkt, now, tick) {
                    Some(id) => id,
                    None => return,
                }
            }
        };
        if self
            .conns
            .get(id)
            .is_some_and(|c| c.flags & conn::flags::SYNPROXY != 0)
        {
            match self.synproxy_in(eg, io, pkt, h, id, now) {
                Some(p) => pkt = p,
                None => return,
            }
        }
        self.on_packet(id, h, Dir::Input, tick);
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let pkts = c.count_in_pkt();
        let c = *c;
        self.count(&c, h.ip.total as u64, true);
        let one_packet = c.flags & conn::flags::ONE_PACKET != 0;
        forward(eg, io, pkt, &c, now, Some(&h.ip));
        // A master sync daemon runs: once the packet has gone, as in IPVS,
        // the connection is offered to it (reference 8.2). The copy in
        // hand rules out most packets; the rest go out of line.
        if let Some(p) = &self.settings.sync {
            if !crate::sync::quiet(p, c.flags, pkts) {
                self.sync_offer(id, pkts, tick);
            }
        }
        if one_packet {
            self.unbind(id, now);
            self.conns.remove(id);
        }
    }

    /// conn_reuse_mode / expire_nodest_conn (reference 5.4) for a new
    /// connection's first packet matching an old entry.
    #[inline]
    fn reuse(&self, id: ConnId, h: &L4) -> bool {
        // Only the first packet of a new connection can reuse an entry,
        // so most packets are done after looking at their flags.
        let Some(p) = Proto::from_ip(h.ip.proto) else {
            return false;
        };
        let is_new = match p {
            Proto::Tcp => proto::tcp::is_new_conn(h.flags),
            Proto::Sctp => proto::sctp::is_new_conn(h.flags),
            Proto::Udp => false,
        };
        if !is_new {
            return false;
        }
        let Some(c) = self.conns.get(id) else {
            return false;
        };
        let svc = self.table.by_id(c.svc);
        let quiesced = self.settings.expire_nodest_conn
            && c.dest != conn::NONE
            && svc
                .and_then(|s| Ipvs::find_dest(s, c.dest))
                .is_none_or(|d| d.weight == 0);
        let check = proto::ReuseCheck {
            proto: p,
            state: c.state,
            no_output: c.flags & conn::flags::NOOUTPUT != 0,
            controlled: c.control != conn::NONE,
            expire_quiesced: quiesced,
            conn_reuse_mode: self.settings.conn_reuse_mode,
        };
        check.decide() == proto::Reuse::Reschedule
    }

    /// Offers connection `id`, whose incoming packet count is `pkts`, to
    /// the master sync daemon's rules, if one runs: for the packets
    /// [`crate::sync::quiet`] did not rule out.
    #[cold]
    #[inline(never)]
    pub(crate) fn sync_offer(&mut self, id: ConnId, pkts: u16, tick: conn::Tick) {
        let Some(p) = self.settings.sync else { return };
        let (Some(tx), Some(c)) = (self.sync_tx.as_mut(), self.conns.get_mut(id)) else {
            return;
        };
        crate::sync::offer(&p, tx, c, pkts, tick / conn::TICKS_PER_SEC);
    }
}
