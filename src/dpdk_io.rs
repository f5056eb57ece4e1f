//! The data plane's [`Io`] over DPDK: one instance per worker, owning that
//! worker's queues, transmit buffers and ring ends, so nothing in it is
//! shared and the per-packet path takes no lock.
//!
//! A port gets one queue pair per worker when its device has that many,
//! else one. A worker without its own transmit queue on a port hands frames
//! to the queue's owner over a single-producer ring (a "tx proxy"), which
//! the owner drains into the queue at each flush.

use arrayvec::ArrayVec;
use dpdk_sys::ethdev;
use dpdk_sys::mbuf::{rx_flags, Mbuf};
use dpdk_sys::mempool::PktPool;
use dpdk_sys::ring::{RingRx, RingTx};
use fastpath::io::{Csum, RxOffload};
use fastpath::{Buf, Io, BURST};

/// A frame in an mbuf, as the data plane sees it.
pub struct Pkt(pub Mbuf);

impl Buf for Pkt {
    #[inline(always)]
    fn data(&self) -> &[u8] {
        self.0.data()
    }
    #[inline(always)]
    fn data_mut(&mut self) -> &mut [u8] {
        self.0.data_mut()
    }
    #[inline]
    fn set_len(&mut self, len: usize) -> bool {
        self.0.set_len(len)
    }
    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        self.0.prepend(n)
    }
    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        self.0.adj(n)
    }
    #[inline]
    fn port(&self) -> usize {
        self.0.port() as usize
    }
    #[inline]
    fn set_port(&mut self, port: usize) {
        self.0.set_port(port as u16)
    }
    #[inline(always)]
    fn prefetch(&self) {
        self.0.prefetch()
    }
    #[inline(always)]
    fn rx_offload(&self) -> RxOffload {
        rx_offload(self.0.ol_flags())
    }
    #[inline(always)]
    fn rss_hash(&self) -> Option<u32> {
        self.0.rss_hash()
    }
}

/// The checksum verdicts in a received mbuf's `ol_flags`. NONE (the field
/// is not a valid checksum, the data's integrity was checked) counts as
/// Unknown: the director forwards the header as it is, with its checksum
/// only updated, so a sum that does not add up must stop here, as the
/// software check makes it; a port without the offload leaves both bits
/// clear, which is Unknown too.
#[inline(always)]
fn rx_offload(flags: u64) -> RxOffload {
    let verdict = |bits: u64, good: u64, bad: u64| match bits {
        b if b == good => Csum::Good,
        b if b == bad => Csum::Bad,
        _ => Csum::Unknown,
    };
    RxOffload {
        ip: verdict(
            flags & rx_flags::IP_CKSUM_MASK,
            rx_flags::IP_CKSUM_GOOD,
            rx_flags::IP_CKSUM_BAD,
        ),
        l4: verdict(
            flags & rx_flags::L4_CKSUM_MASK,
            rx_flags::L4_CKSUM_GOOD,
            rx_flags::L4_CKSUM_BAD,
        ),
    }
}

/// How a worker transmits on one device.
pub enum TxPath {
    Queue(u16),
    Proxy(RingTx),
}

/// One worker's view of one DPDK device (a port or an exception tap).
pub struct DevIo {
    pub id: u16,
    pub rxq: Option<u16>,
    pub tx: TxPath,
    pub buf: ArrayVec<Mbuf, BURST>,
}

impl DevIo {
    pub fn new(id: u16, rxq: Option<u16>, tx: TxPath) -> Self {
        DevIo {
            id,
            rxq,
            tx,
            buf: ArrayVec::new(),
        }
    }

    #[inline]
    fn rx(&mut self, out: &mut ArrayVec<Pkt, BURST>) {
        let Some(q) = self.rxq else { return };
        let mut got: ArrayVec<Mbuf, BURST> = ArrayVec::new();
        ethdev::rx_burst_max(self.id, q, &mut got, out.remaining_capacity());
        out.extend(got.into_iter().map(Pkt));
    }

    #[inline]
    fn push(&mut self, m: Mbuf) -> u64 {
        self.buf.push(m);
        if self.buf.is_full() {
            self.flush()
        } else {
            0
        }
    }

    /// Sends what is buffered; what the queue or ring refuses is freed and
    /// counted, as l3fwd does, rather than retried in a loop.
    #[inline]
    fn flush(&mut self) -> u64 {
        if self.buf.is_empty() {
            return 0;
        }
        match &self.tx {
            TxPath::Queue(q) => {
                ethdev::tx_burst(self.id, *q, &mut self.buf);
            }
            TxPath::Proxy(r) => {
                r.enqueue_burst(&mut self.buf);
            }
        }
        let dropped = self.buf.len() as u64;
        self.buf.clear();
        dropped
    }
}

/// Frames other workers proxied to one of this worker's transmit queues.
pub struct ProxyDrain {
    pub ring: RingRx,
    pub id: u16,
    pub queue: u16,
}

pub struct PortIo {
    pub nic: DevIo,
    pub exception: Option<DevIo>,
}

pub struct DpdkIo {
    pub worker: usize,
    pub nworkers: usize,
    pub ports: Vec<PortIo>,
    pub pool: PktPool,
    /// Indexed by peer worker; `None` for this worker itself.
    pub to_peers: Vec<Option<RingTx>>,
    pub from_peers: Vec<RingRx>,
    pub proxies: Vec<ProxyDrain>,
    pub tsc_per_ms: u64,
    pub dropped: u64,
}

impl Io for DpdkIo {
    type Buf = Pkt;

    fn nports(&self) -> usize {
        self.ports.len()
    }
    fn worker(&self) -> usize {
        self.worker
    }
    fn nworkers(&self) -> usize {
        self.nworkers
    }
    #[inline]
    fn now_ms(&mut self) -> u64 {
        dpdk_sys::eal::tsc() / self.tsc_per_ms
    }
    #[inline]
    fn rx_burst(&mut self, port: usize, out: &mut ArrayVec<Pkt, BURST>) {
        self.ports[port].nic.rx(out);
    }
    #[inline]
    fn tx(&mut self, port: usize, pkt: Pkt) {
        self.dropped += self.ports[port].nic.push(pkt.0);
    }
    fn rx_exception(&mut self, port: usize, out: &mut ArrayVec<Pkt, BURST>) {
        if let Some(e) = self.ports[port].exception.as_mut() {
            e.rx(out);
        }
    }
    fn tx_exception(&mut self, port: usize, pkt: Pkt) {
        match self.ports[port].exception.as_mut() {
            Some(e) => self.dropped += e.push(pkt.0),
            None => self.dropped += 1,
        }
    }
    fn to_peer(&mut self, worker: usize, pkt: Pkt) {
        let Some(Some(r)) = self.to_peers.get(worker) else {
            self.dropped += 1;
            return;
        };
        let mut one: ArrayVec<Mbuf, 1> = ArrayVec::new();
        one.push(pkt.0);
        r.enqueue_burst(&mut one);
        self.dropped += one.len() as u64;
    }
    fn to_peer_burst(&mut self, worker: usize, pkts: &mut ArrayVec<Pkt, BURST>) {
        let Some(Some(r)) = self.to_peers.get(worker) else {
            self.dropped += pkts.len() as u64;
            pkts.clear();
            return;
        };
        let mut m: ArrayVec<Mbuf, BURST> = pkts.drain(..).map(|p| p.0).collect();
        r.enqueue_burst(&mut m);
        // What the ring refused is freed here, as a full tx queue's is.
        self.dropped += m.len() as u64;
    }
    fn rx_peers(&mut self, out: &mut ArrayVec<Pkt, BURST>) {
        for r in &self.from_peers {
            let mut got: ArrayVec<Mbuf, BURST> = ArrayVec::new();
            r.dequeue_burst_max(&mut got, out.remaining_capacity());
            out.extend(got.into_iter().map(Pkt));
        }
    }
    fn alloc(&mut self) -> Option<Pkt> {
        self.pool.alloc().map(Pkt)
    }
    fn flush(&mut self) -> u64 {
        let mut dropped = std::mem::take(&mut self.dropped);
        for p in &mut self.ports {
            dropped += p.nic.flush();
            if let Some(e) = p.exception.as_mut() {
                dropped += e.flush();
            }
        }
        for d in &self.proxies {
            let mut got: ArrayVec<Mbuf, BURST> = ArrayVec::new();
            d.ring.dequeue_burst_max(&mut got, BURST);
            if !got.is_empty() {
                ethdev::tx_burst(d.id, d.queue, &mut got);
                dropped += got.len() as u64;
            }
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_flags_decode_to_verdicts() {
        use rx_flags::*;
        let v = |ip, l4| RxOffload { ip, l4 };
        assert_eq!(rx_offload(0), v(Csum::Unknown, Csum::Unknown));
        assert_eq!(
            rx_offload(IP_CKSUM_GOOD | L4_CKSUM_BAD | RSS_HASH),
            v(Csum::Good, Csum::Bad)
        );
        assert_eq!(
            rx_offload(IP_CKSUM_BAD | L4_CKSUM_GOOD),
            v(Csum::Bad, Csum::Good)
        );
        // NONE is both bits: not Good, though its Good bit is set.
        assert_eq!(
            rx_offload(IP_CKSUM_NONE | L4_CKSUM_NONE),
            v(Csum::Unknown, Csum::Unknown)
        );
        assert_eq!(
            rx_offload(IP_CKSUM_NONE | L4_CKSUM_GOOD),
            v(Csum::Unknown, Csum::Good)
        );
        // Other flags leave the verdicts alone.
        assert_eq!(
            rx_offload(!(IP_CKSUM_MASK | L4_CKSUM_MASK)),
            v(Csum::Unknown, Csum::Unknown)
        );
    }
}
