//! The established path: a receive burst from one port, in stages over the
//! whole burst, in the shape of DPDK l3fwd's `processx4_step1..3` and
//! VPP's `lb` node.
//!
//! 1. **classify** ([`classify`]): each frame is parsed once into a
//!    [`Meta`]: an IPv4 TCP/UDP/SCTP packet this worker owns, to a VIP or
//!    (a NAT reply) to a client; one another worker owns; or anything
//!    else, which the scalar code takes ([`Host::input`]).
//! 2. **lookup**: the owned frames' connections, looked up together (the
//!    table's burst lookup hashes every key, then loads or prefetches every
//!    bucket, then every first entry, so their cache misses overlap).
//! 3. **update**, in arrival order ([`fast`]): an entry that is
//!    established and stays so (a TCP segment with neither SYN, FIN nor
//!    RST, any UDP datagram), whose real server is live and whose next hop
//!    is resolved, gets its one mutable visit: timer, packet count, the
//!    sync offer. Everything else (a new connection, a state change, a
//!    connection reuse, a removed server, an unresolved neighbour) goes to
//!    the scalar engine, unchanged, at its place in the burst.
//! 4. **rewrite and transmit**, right after the update, while the frame's
//!    and the entry's lines are in cache: DR, TUN, NAT in or NAT out by
//!    the method the connection was bound to, the way out from the real
//!    server's adjacency ([`crate::output::adj`]); the packet and byte counters are summed
//!    over the burst and written once per real server.
//! 5. **hand-off**: the frames other workers own go to each of them with
//!    one ring operation per peer ([`Io::to_peer_burst`]).
//!
//! Order: frames are forwarded in arrival order, whichever path each took,
//! and the scalar code sees the table as it would have without the
//! pipeline. A frame the scalar code handles may change the table (a
//! new entry in a recycled slot, a removal): the lookups of later frames
//! are then checked against the table again before they are used.
//!
//! The differential tests (fastpath/tests/differential.rs) run every kind
//! of frame through this and through [`Host::input`] alone and compare
//! the bytes out and the counters.

mod classify;
mod fast;

use crate::conn::{ConnId, ConnKey};
use crate::host::Host;
use crate::io::{Buf, Io, BURST};
use arrayvec::ArrayVec;
use classify::{Class, Meta};
use core::net::Ipv4Addr;

impl<B: Buf> Host<B> {
    /// A burst from `port`, in order (see the module docs).
    pub fn input_burst<I: Io<Buf = B>>(
        &mut self,
        io: &mut I,
        port: usize,
        burst: &mut ArrayVec<B, BURST>,
        now: u64,
    ) {
        let (me, n) = (io.worker(), io.nworkers());
        // 1: classify, noting the owned frames' keys, in and out apart.
        let mut meta: ArrayVec<Class, BURST> = ArrayVec::new();
        let mut memo = classify::Memo::default();
        let mut keys: ArrayVec<ConnKey<Ipv4Addr>, BURST> = ArrayVec::new();
        let mut at: ArrayVec<u8, BURST> = ArrayVec::new();
        let mut out_keys: ArrayVec<ConnKey<Ipv4Addr>, BURST> = ArrayVec::new();
        let mut out_at: ArrayVec<u8, BURST> = ArrayVec::new();
        for (i, p) in burst.iter().enumerate() {
            let c = self.classify_frame(port, p, me, n, &mut memo);
            if let Class::Mine(m) = &c {
                let (k, a) = if m.inbound {
                    (&mut keys, &mut at)
                } else {
                    (&mut out_keys, &mut out_at)
                };
                k.push(m.key());
                a.push(i as u8);
            }
            meta.push(c);
        }
        // 2: look them up together.
        let mut found: [Option<ConnId>; BURST] = [None; BURST];
        if keys.len() == meta.len() {
            // The common burst: every frame an owned one to a VIP, so the
            // lookup's answers are already in frame order.
            self.ipvs.conns.lookup_in_burst(&keys, &mut found);
        } else {
            let mut tmp: [Option<ConnId>; BURST] = [None; BURST];
            if !keys.is_empty() {
                self.ipvs.conns.lookup_in_burst(&keys, &mut tmp);
                for (&i, &f) in at.iter().zip(&tmp) {
                    found[i as usize] = f;
                }
            }
            if !out_keys.is_empty() {
                self.ipvs.conns.lookup_out_burst(&out_keys, &mut tmp);
                for (&i, &f) in out_at.iter().zip(&tmp) {
                    found[i as usize] = f;
                }
            }
        }
        // 3 and 4: in arrival order.
        let changes = self.ipvs.conns.changes();
        let tick = (now / crate::conn::TICK_MS as u64) as crate::conn::Tick;
        let mut sums = fast::Sums::default();
        let mut peers: ArrayVec<(u8, B), BURST> = ArrayVec::new();
        for ((p, m), &id) in burst.drain(..).zip(&meta).zip(&found) {
            let m = match m {
                Class::Mine(m) => m,
                &Class::Peer { owner, reply } => {
                    let mut p = p;
                    p.set_port(port);
                    self.egress.stats.redirected(reply);
                    peers.push((owner, p));
                    continue;
                }
                Class::Other => {
                    // The scalar code may hand frames to peers too (ICMP
                    // errors about their connections): those queued so far
                    // go first, as they arrived first.
                    self.settle(&mut sums);
                    self.hand_off(io, &mut peers);
                    self.input(io, port, p, now);
                    continue;
                }
            };
            // A frame handled by the scalar code may have removed an
            // entry and another taken its slot: once the table has
            // changed (the counter only moves on, and a burst cannot wrap
            // it), the id must be seen to still hold the frame's
            // connection.
            let id = id.filter(|&id| self.still_holds(changes, id, m));
            let p = match id {
                Some(id) => match self.fast_forward(io, id, m, p, tick, now, &mut sums) {
                    Ok(()) => continue,
                    Err(p) => p,
                },
                None => p,
            };
            self.settle(&mut sums);
            self.slow(io, port, p, m, id, changes, now);
        }
        self.settle(&mut sums);
        // 5: one hand-off per peer.
        self.hand_off(io, &mut peers);
    }

    /// Whether `id`, found for `m` before the burst's updates, still names
    /// `m`'s connection.
    #[inline]
    fn still_holds(&self, changes: u32, id: ConnId, m: &Meta) -> bool {
        let conns = &self.ipvs.conns;
        conns.changes() == changes
            || conns.get(id).is_some_and(|c| {
                if m.inbound {
                    c.matches_in(&m.key())
                } else {
                    c.matches_out(&m.key())
                }
            })
    }

    /// An owned frame the established path does not take: where
    /// [`Host::input`] would bring it, parsed, with its lookup.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn slow<I: Io<Buf = B>>(
        &mut self,
        io: &mut I,
        port: usize,
        p: B,
        m: &Meta,
        id: Option<ConnId>,
        changes: u32,
        now: u64,
    ) {
        match (m.inbound, id) {
            (true, Some(id)) => self
                .ipvs
                .in_conn(&mut self.egress, io, p, &m.h, Some(id), now),
            (false, Some(id)) => self.ipvs.out_conn(&mut self.egress, io, p, &m.h, id, now),
            // A new connection's first packet (or one whose entry went
            // during the burst), with the burst's lookup unless the table
            // has changed since.
            (true, None) => {
                let conns = &self.ipvs.conns;
                let found = if conns.changes() == changes {
                    None
                } else {
                    conns.lookup_in(&m.key())
                };
                self.ipvs.in_conn(&mut self.egress, io, p, &m.h, found, now)
            }
            (false, None) => self.input(io, port, p, now),
        }
    }

    /// Frames other workers own, one ring operation per peer.
    fn hand_off<I: Io<Buf = B>>(&mut self, io: &mut I, peers: &mut ArrayVec<(u8, B), BURST>) {
        while let Some(&(owner, _)) = peers.first() {
            let mut to: ArrayVec<B, BURST> = ArrayVec::new();
            let mut rest: ArrayVec<(u8, B), BURST> = ArrayVec::new();
            for (o, p) in peers.drain(..) {
                if o == owner {
                    to.push(p);
                } else {
                    rest.push((o, p));
                }
            }
            *peers = rest;
            io.to_peer_burst(owner as usize, &mut to);
        }
    }
}
