//! Per-real-server adjacency: where a real server's packets leave (port,
//! MACs, MTU, the director's source address for tunnels), bound to the
//! server rather than looked up per packet, as kernel IPVS caches
//! `dest_dst` on the destination and VPP keeps the next node on the
//! application server.
//!
//! An entry is valid while the neighbour table's generation is the one it
//! was filled under (the generation moves whenever a neighbour is learnt,
//! changes or goes; routes never change under a worker), and only for the
//! server id and address it was filled for: a server re-added under
//! another address, or a synced entry bound to an id whose address
//! differs, misses and is filled again. The connection keeps its method
//! (IPVS binds `packet_xmit` per connection); the server keeps the way out.

use super::egress::{Egress, NextHop};
use crate::io::Buf;
use core::net::Ipv4Addr;

/// Slots, a power of two, indexed by server id: the ids are handed out
/// densely from 0, so up to this many servers never collide.
const SLOTS: usize = 4096;

#[derive(Clone, Copy)]
struct Slot {
    dest: u32,
    daddr: u32,
    hop: NextHop,
}

pub(crate) struct Adjacency {
    slots: Box<[Slot]>,
}

impl Default for Adjacency {
    fn default() -> Self {
        Adjacency {
            slots: vec![
                Slot {
                    dest: u32::MAX,
                    daddr: 0,
                    hop: NextHop::EMPTY,
                };
                SLOTS
            ]
            .into_boxed_slice(),
        }
    }
}

impl<B: Buf> Egress<B> {
    /// The way to real server `dest` at `daddr`, if its neighbour is
    /// confirmed: from the server's adjacency, or filled into it.
    #[inline]
    pub(crate) fn hop_to_dest(&mut self, dest: u32, daddr: Ipv4Addr) -> Option<NextHop> {
        let i = dest as usize & (SLOTS - 1);
        let s = &self.adj.slots[i];
        if s.dest == dest && s.daddr == daddr.to_bits() && self.hop_current(&s.hop) {
            return Some(s.hop);
        }
        self.fill_adjacency(i, dest, daddr)
    }

    #[inline(never)]
    fn fill_adjacency(&mut self, i: usize, dest: u32, daddr: Ipv4Addr) -> Option<NextHop> {
        let hop = self.next_hop(daddr)?;
        self.adj.slots[i] = Slot {
            dest,
            daddr: daddr.to_bits(),
            hop,
        };
        Some(hop)
    }
}
