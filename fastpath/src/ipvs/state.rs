//! What a packet does to its connection: the protocol state machine and
//! the ActiveConn/InActConn, template and traffic bookkeeping it implies
//! (references 3.2, 5.2), and the undoing of a connection's counts when it
//! goes.

use super::l4::L4;
use super::{ticks, Ipvs};
use crate::conn::{self, ConnId};
use crate::proto::{self, CounterMove, Dir, Proto};
use crate::service::Service;
use crate::wire::ipv4;
use core::net::Ipv4Addr;

/// Whether a TCP segment with `flags` is a plain ACK class segment: what
/// keeps an ESTABLISHED connection ESTABLISHED in every table.
#[inline]
pub(crate) fn established_ack(flags: u8) -> bool {
    use crate::wire::tcp::{FLAG_ACK, FLAG_FIN, FLAG_RST, FLAG_SYN};
    flags & (FLAG_ACK | FLAG_FIN | FLAG_RST | FLAG_SYN) == FLAG_ACK
}

impl Ipvs {
    /// Moves the protocol state machine for one packet of connection `id`,
    /// with the ActiveConn/InActConn and template bookkeeping it implies,
    /// and restarts the entry's timer.
    #[inline]
    pub(super) fn on_packet(&mut self, id: ConnId, h: &L4, dir: Dir, tick: conn::Tick) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        // The packet of nearly every TCP connection's life: a segment with
        // neither SYN, FIN nor RST on an established connection, in either
        // direction of any table, leaves it established and only restarts
        // its timer (reference 5.2). Skip the tables for it.
        if h.ip.proto == ipv4::PROTO_TCP
            && c.state == proto::tcp::State::Established as u8
            && established_ack(h.flags)
            && (dir == Dir::Input || c.flags & conn::flags::NOOUTPUT == 0)
        {
            c.timeout = ticks(self.timeouts.tcp(proto::tcp::State::Established));
            self.conns.touch(id, tick);
            return;
        }
        self.on_packet_tables(id, h, dir, tick)
    }

    /// [`Ipvs::on_packet`] through the state tables: out of line, so the
    /// shortcut above inlines where packets are forwarded.
    #[inline(never)]
    fn on_packet_tables(&mut self, id: ConnId, h: &L4, dir: Dir, tick: conn::Tick) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let (dir, no_output) = dir.resolve(c.flags & conn::flags::NOOUTPUT != 0);
        if !no_output {
            c.flags &= !conn::flags::NOOUTPUT;
        }
        let (state, timeout_ms, counters, assure) = match Proto::from_ip(c.proto()) {
            Some(Proto::Tcp) => {
                let Some(st) = proto::tcp::State::from_u8(c.state) else {
                    return;
                };
                let secure = self.defence.secure();
                let t = proto::tcp::on_packet(&self.timeouts, st, dir, h.flags, secure);
                (t.state as u8, t.timeout_ms, t.counters, t.assure)
            }
            Some(Proto::Udp) => {
                let t = proto::udp::on_packet(&self.timeouts, dir);
                (t.state as u8, t.timeout_ms, t.counters, t.assure)
            }
            Some(Proto::Sctp) => {
                let Some(st) = proto::sctp::State::from_u8(c.state) else {
                    return;
                };
                let ev = proto::sctp::event(h.flags, h.next_chunk);
                let t = proto::sctp::on_packet(&self.timeouts, st, dir, ev);
                (t.state as u8, t.timeout_ms, t.counters, t.assure)
            }
            None => return,
        };
        if c.state != state {
            c.flags |= conn::flags::SYNC_STATE_CHANGED;
        }
        c.state = state;
        c.timeout = ticks(timeout_ms);
        let (dest, svc_id, controlled, caddr, vport, proto_n) = (
            c.dest,
            c.svc,
            c.control != conn::NONE,
            c.caddr(),
            c.vport,
            c.proto(),
        );
        match counters {
            CounterMove::Stay => {}
            CounterMove::ToActive | CounterMove::ToInactive => {
                c.flags ^= conn::flags::INACTIVE;
                if let Some(d) = self.shared.cores[self.me].dests.get(dest as usize) {
                    let up = counters == CounterMove::ToActive;
                    d.active.add(if up { 1 } else { -1 });
                    d.inactive.add(if up { -1 } else { 1 });
                }
            }
        }
        self.conns.touch(id, tick);
        if assure && controlled {
            if let Some(svc) = self.table.by_id(svc_id) {
                self.shared
                    .templates
                    .assure(&Ipvs::tpl_key(svc, caddr, proto_n, vport));
            }
        }
    }

    /// Undoes a connection's counts when it goes (reference 3.2, 4.3).
    pub(super) fn unbind(&mut self, id: ConnId, _now: u64) {
        let Some(c) = self.conns.get(id) else { return };
        let active = c.flags & conn::flags::INACTIVE == 0;
        if let Some(d) = self.shared.cores[self.me].dests.get(c.dest as usize) {
            if active { &d.active } else { &d.inactive }.add(-1);
        }
        if let Some(svc) = self.table.by_id(c.svc) {
            if c.control != conn::NONE {
                self.shared
                    .templates
                    .release(&Ipvs::tpl_key(svc, c.caddr(), c.proto(), c.vport));
            }
            self.reload(svc, c.dest, false);
        }
    }

    /// Counts a packet of connection `c` for its real server and service
    /// (`inbound`: client to server).
    #[inline]
    pub(super) fn count(&self, c: &conn::Conn<Ipv4Addr>, len: u64, inbound: bool) {
        self.mine().add_traffic(c.dest, c.svc, inbound, 1, len);
    }

    /// Re-evaluates a real server's overload mark from its summed load.
    pub(super) fn reload(&self, svc: &Service, dest: u32, bound: bool) {
        self.shared.reevaluate(svc, dest, bound);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Timeouts;

    /// `on_packet` skips the state tables for [`established_ack`] segments
    /// on ESTABLISHED entries; that is only right if the tables agree for
    /// every such flag byte, in every direction and table, secure or not.
    #[test]
    fn the_established_shortcut_agrees_with_the_tables() {
        let t = Timeouts::DEFAULT;
        let est = proto::tcp::State::Established;
        let mut checked = 0;
        for flags in 0..=255u8 {
            if !established_ack(flags) {
                continue;
            }
            for dir in [Dir::Input, Dir::Output, Dir::InputOnly] {
                for secure in [false, true] {
                    let tr = proto::tcp::on_packet(&t, est, dir, flags, secure);
                    assert_eq!(tr.state, est, "flags {flags:#x} {dir:?}");
                    assert_eq!(tr.timeout_ms, t.tcp(est));
                    assert_eq!(tr.counters, CounterMove::Stay);
                    assert!(!tr.assure);
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 16 * 6, "every byte with ACK and no SYN/FIN/RST");
        assert!(!established_ack(0) && !established_ack(0x11) && established_ack(0x18));
    }
}
