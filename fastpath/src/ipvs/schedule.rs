//! A new connection (reference 4.4): its service, persistence (templates
//! shared by all workers), the scheduler's choice, and the entry with its
//! counts.

use super::l4::L4;
use super::Ipvs;
use crate::conn::{self, ConnId, ConnKey};
use crate::io::{Buf, Io};
use crate::output::egress::Egress;
use crate::persist::{self, Bound};
use crate::proto::{self, Proto};
use crate::sched;
use crate::service::counters::Load;
use crate::service::{Method, Service};
use crate::stats::DropReason;
use crate::wire::ipv4;
use crate::xmit::icmp;
use core::net::Ipv4Addr;

impl Ipvs {
    /// A new connection for the packet `h` (reference 4.4): service,
    /// persistence, scheduler, entry. None: the packet was dropped (counted)
    /// or answered.
    // The engine, the egress part and the I/O, then the packet: one
    // argument over clippy's limit, which a struct would only rename.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new_conn<B: Buf, I: Io<Buf = B>>(
        &mut self,
        eg: &mut Egress<B>,
        io: &mut I,
        h: &L4,
        key: ConnKey<Ipv4Addr>,
        pkt: &B,
        now: u64,
        tick: conn::Tick,
    ) -> Option<ConnId> {
        let may = match Proto::from_ip(h.ip.proto) {
            Some(Proto::Tcp) => proto::tcp::may_schedule(h.flags, self.settings.sloppy_tcp),
            Some(Proto::Sctp) => proto::sctp::may_schedule(h.flags, self.settings.sloppy_sctp),
            Some(Proto::Udp) => true,
            None => false,
        };
        let Some(si) = self.table.lookup(h.ip.proto, h.ip.dst, h.dport) else {
            eg.stats.count_drop(DropReason::NoService);
            return None;
        };
        if !may {
            eg.stats.count_drop(DropReason::NoConnection);
            return None;
        }
        // drop_packet, before the scheduler (`ip_vs_todrop` in the
        // protocols' conn_schedule).
        if self.defence.todrop() {
            eg.stats.count_drop(DropReason::DropPacket);
            return None;
        }
        let svc = &self.table.services()[si as usize];
        let pkt_s = sched::Packet {
            src: h.ip.src.into(),
            dst: h.ip.dst.into(),
            sport: h.sport,
            dport: h.dport,
            proto: h.ip.proto,
        };
        let load = Load {
            dests: &svc.dests,
            cores: &self.shared.cores,
            overload: &self.shared.overload,
        };
        let sched = &mut self.scheds[si as usize];
        let mut pick = || sched.schedule(&load, &pkt_s, now).map(|i| &svc.dests[i]);
        let mut controlled = false;
        let chosen = match svc.persistent {
            None => pick().map(|d| (d.id, d.addr, d.port)),
            Some(secs) => {
                let k = Ipvs::tpl_key(svc, h.ip.src, h.ip.proto, h.dport);
                let quiescent_ok = !self.settings.expire_quiescent_template;
                let valid = |t: &persist::Tpl| {
                    Ipvs::find_dest(svc, t.dest).is_some_and(|d| d.weight > 0 || quiescent_ok)
                };
                match self
                    .shared
                    .templates
                    .bind(k, now, secs as u64 * 1000, valid, || {
                        pick().map(|d| (d.id, d.addr, d.port))
                    }) {
                    Bound::Existing(t) => {
                        controlled = true;
                        Some((t.dest, t.daddr, t.dport))
                    }
                    Bound::Created(t) => {
                        controlled = true;
                        if let Some(d) = self.shared.cores[self.me].dests.get(t.dest as usize) {
                            d.persist.add(1);
                        }
                        Some((t.dest, t.daddr, t.dport))
                    }
                    Bound::Unremembered(t) => Some((t.dest, t.daddr, t.dport)),
                    Bound::NoDest => None,
                }
            }
        };
        let Some((dest_id, daddr, rport)) = chosen else {
            eg.stats.count_drop(DropReason::NoDestination);
            eg.icmp_error(
                io,
                pkt.data(),
                icmp::ErrorKind::PortUnreachable,
                h.ip.dst,
                now,
            );
            return None;
        };
        let svc = &self.table.services()[si as usize];
        let method = Ipvs::find_dest(svc, dest_id).map_or(Method::Dr, |d| d.method);
        // The real server's port only replaces the packet's when the
        // packet's port is the service's (not for port-0 or fwmark services).
        let dport = if h.dport == svc.port && rport != 0 {
            rport
        } else {
            h.dport
        };
        let mut c = conn::Conn::new(key, daddr, dport);
        c.flags = method as u16 | conn::flags::INACTIVE;
        if method != Method::Nat {
            c.flags |= conn::flags::NOOUTPUT;
        }
        if svc.ops && h.ip.proto == ipv4::PROTO_UDP {
            c.flags |= conn::flags::ONE_PACKET;
        }
        c.dest = dest_id;
        c.svc = svc.id;
        c.control = if controlled { 0 } else { conn::NONE };
        if self.conns.len() >= self.conns.capacity() {
            self.full_table(eg, now);
        }
        let svc = &self.table.services()[si as usize];
        let id = match self.conns.insert(c, tick) {
            Ok(id) => id,
            Err(_) => {
                if controlled {
                    self.shared
                        .templates
                        .release(&Ipvs::tpl_key(svc, h.ip.src, h.ip.proto, h.dport));
                }
                eg.stats.count_drop(DropReason::ConnTableFull);
                return None;
            }
        };
        self.bind_counts(svc, dest_id, false);
        Some(id)
    }

    /// The table is full as a new connection is to be stored: drop_entry,
    /// if on, makes room; if it is automatic and not on yet, it is
    /// evaluated now (at most every 100 ms) rather than at the next
    /// second, so a table that a flood fills between two evaluations
    /// refuses for a tenth of a second, not a second.
    #[cold]
    fn full_table<B: Buf>(&mut self, eg: &Egress<B>, now: u64) {
        if !self.defence.dropentry() && self.settings.defence.drop_entry != 0 {
            let next = now + 100;
            if self.next_defend > next {
                self.next_defend = next;
            }
            return;
        }
        if self.defence.dropentry() && self.make_room(now) {
            eg.stats.event(crate::stats::Event::DropEntryEvicted);
        }
    }

    /// Counts a new connection or template against its real server and
    /// re-evaluates the overload mark (reference 3.2).
    pub(super) fn bind_counts(&self, svc: &Service, dest: u32, active: bool) {
        let c = self.mine();
        if let Some(d) = c.dests.get(dest as usize) {
            d.conns.add(1);
            if active { &d.active } else { &d.inactive }.add(1);
        }
        if let Some(s) = c.services.get(svc.id as usize) {
            s.conns.add(1);
        }
        self.reload(svc, dest, true);
    }
}
