//! The narrow I/O interface the worker loop runs on.
//!
//! The data plane never names DPDK: the daemon implements [`Io`] over NIC
//! queues, exception taps and rte_rings, and tests and benchmarks implement
//! it over plain vectors ([`mem::MemIo`]). Ports are numbered 0.. in config
//! order; which hardware queue a worker uses is the implementation's business.

use crate::wire::Ipv4Packet;
use arrayvec::ArrayVec;

/// Packets per receive burst, as in DPDK's l2fwd/l3fwd.
pub const BURST: usize = 32;

/// What the NIC concluded about one checksum of a received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Csum {
    /// Not checked (no offload, not that protocol, or the driver cannot
    /// tell): software must verify.
    #[default]
    Unknown,
    /// Verified correct by the hardware.
    Good,
    /// Verified wrong by the hardware.
    Bad,
}

/// The checksum verdicts a NIC attaches to a received frame (DPDK's
/// `RTE_MBUF_F_RX_*_CKSUM_*` flags). Only the IPv4 header and the
/// TCP/UDP/SCTP checksum are covered; ICMP never is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RxOffload {
    /// The (outer) IPv4 header checksum.
    pub ip: Csum,
    /// The TCP, UDP or SCTP checksum.
    pub l4: Csum,
}

/// An owned packet buffer holding one whole Ethernet frame, contiguous.
/// Dropping it returns it to its pool.
pub trait Buf: Sized {
    fn data(&self) -> &[u8];
    fn data_mut(&mut self) -> &mut [u8];
    /// Grows or shrinks the frame at its tail; false if it does not fit.
    fn set_len(&mut self, len: usize) -> bool;
    /// Grows the frame at its head by `n` bytes (headroom, for
    /// encapsulation); the new bytes are unspecified. False if no room.
    fn prepend(&mut self, n: usize) -> bool;
    /// Removes `n` bytes from the head (decapsulation); false if shorter.
    fn adj(&mut self, n: usize) -> bool;
    /// The port index the frame arrived on, carried with it when it is
    /// handed to another worker.
    fn port(&self) -> usize;
    fn set_port(&mut self, port: usize);
    /// Starts loading the frame's first cache line; the loop calls it on a
    /// whole burst before processing it. A no-op where it does not pay.
    #[inline(always)]
    fn prefetch(&self) {}
    /// The NIC's checksum verdicts on the frame as received. A buffer
    /// whose bytes were changed since (a rewritten or built frame) must
    /// not be asked: the verdict is about the bytes the NIC saw.
    #[inline(always)]
    fn rx_offload(&self) -> RxOffload {
        RxOffload::default()
    }
    /// The receive hash the NIC computed over the frame, if it computed
    /// one. What it hashed depends on how the port's RSS was programmed
    /// (see `PortConfig::rss_owner`); without that, only its presence
    /// means anything.
    #[inline(always)]
    fn rss_hash(&self) -> Option<u32> {
        None
    }
}

/// Whether the IPv4 header of a received frame `pkt` is to be believed:
/// the NIC's verdict where it gave one (a header it verified is not summed
/// again, and one it found wrong is dropped even if the bytes now add up,
/// as the kernel does with `CHECKSUM_UNNECESSARY` and bad-checksum
/// descriptors), else the software sum over `ip`, `pkt`'s header.
#[inline(always)]
pub fn ip_csum_ok<B: Buf, T: AsRef<[u8]>>(pkt: &B, ip: &Ipv4Packet<T>) -> bool {
    match pkt.rx_offload().ip {
        Csum::Good => true,
        Csum::Bad => false,
        Csum::Unknown => ip.verify_checksum(),
    }
}

pub trait Io {
    type Buf: Buf;
    fn nports(&self) -> usize;
    /// This worker's index and the number of workers.
    fn worker(&self) -> usize;
    fn nworkers(&self) -> usize;
    /// Milliseconds on a monotonic clock; read once per poll iteration.
    fn now_ms(&mut self) -> u64;
    /// Appends up to the remaining capacity of `out` from `port`'s queue
    /// that belongs to this worker (nothing if it has none).
    fn rx_burst(&mut self, port: usize, out: &mut ArrayVec<Self::Buf, BURST>);
    /// Queues for transmission; sent at the latest by [`Io::flush`].
    fn tx(&mut self, port: usize, pkt: Self::Buf);
    /// Frames the kernel sent out of `port`'s exception tap.
    fn rx_exception(&mut self, port: usize, out: &mut ArrayVec<Self::Buf, BURST>);
    /// Hands a frame to the kernel through `port`'s exception tap.
    fn tx_exception(&mut self, port: usize, pkt: Self::Buf);
    /// Hands a frame to another worker (its `port()` travels with it).
    fn to_peer(&mut self, worker: usize, pkt: Self::Buf);
    /// Hands all of `pkts` to `worker`, emptying it: one ring operation
    /// where the implementation has rings.
    fn to_peer_burst(&mut self, worker: usize, pkts: &mut ArrayVec<Self::Buf, BURST>) {
        for p in pkts.drain(..) {
            self.to_peer(worker, p);
        }
    }
    /// Frames other workers handed to this one.
    fn rx_peers(&mut self, out: &mut ArrayVec<Self::Buf, BURST>);
    fn alloc(&mut self) -> Option<Self::Buf>;
    /// Pushes out everything queued; returns how many frames were dropped
    /// since the last flush because a queue or ring was full.
    fn flush(&mut self) -> u64;
}

/// Copies a frame into a fresh buffer (slow path only: ARP copies).
pub fn copy_of<I: Io>(io: &mut I, pkt: &I::Buf) -> Option<I::Buf> {
    let mut c = io.alloc()?;
    let len = pkt.data().len();
    if !c.set_len(len) {
        return None;
    }
    c.data_mut().copy_from_slice(pkt.data());
    c.set_port(pkt.port());
    Some(c)
}

pub mod mem {
    //! An [`Io`] over vectors, for tests and benchmarks.

    use super::*;
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::rc::Rc;

    /// Room per buffer, like a default DPDK mbuf's data room.
    pub const BUF_ROOM: usize = 2048;

    /// Free buffers a [`VecBuf`] returns to when dropped, as an mbuf
    /// returns to its mempool (see [`super::replay`]).
    pub type Pool = Rc<RefCell<Vec<Vec<u8>>>>;

    #[derive(Debug, Default)]
    pub struct VecBuf {
        pub bytes: Vec<u8>,
        pub port: usize,
        pub pool: Option<Pool>,
        /// What [`Buf::rx_offload`] answers, so tests can play a NIC that
        /// checked (or condemned) the frame's checksums.
        pub offload: RxOffload,
        /// What [`Buf::rss_hash`] answers.
        pub rss: Option<u32>,
    }

    impl VecBuf {
        pub fn new(frame: &[u8]) -> Self {
            let mut bytes = Vec::with_capacity(BUF_ROOM);
            bytes.extend_from_slice(frame);
            VecBuf {
                bytes,
                port: 0,
                pool: None,
                offload: RxOffload::default(),
                rss: None,
            }
        }
    }

    impl Drop for VecBuf {
        fn drop(&mut self) {
            if let Some(pool) = self.pool.take() {
                let mut b = core::mem::take(&mut self.bytes);
                b.clear();
                pool.borrow_mut().push(b);
            }
        }
    }

    impl Buf for VecBuf {
        fn data(&self) -> &[u8] {
            &self.bytes
        }
        fn data_mut(&mut self) -> &mut [u8] {
            &mut self.bytes
        }
        fn set_len(&mut self, len: usize) -> bool {
            if len > BUF_ROOM {
                return false;
            }
            self.bytes.resize(len, 0);
            true
        }
        fn prepend(&mut self, n: usize) -> bool {
            if self.bytes.len() + n > BUF_ROOM {
                return false;
            }
            // A memmove where an mbuf would use its headroom: fine for tests.
            self.bytes.splice(0..0, core::iter::repeat_n(0, n));
            true
        }
        fn adj(&mut self, n: usize) -> bool {
            if n > self.bytes.len() {
                return false;
            }
            self.bytes.drain(..n);
            true
        }
        fn port(&self) -> usize {
            self.port
        }
        fn set_port(&mut self, port: usize) {
            self.port = port;
        }
        fn rx_offload(&self) -> RxOffload {
            self.offload
        }
        fn rss_hash(&self) -> Option<u32> {
            self.rss
        }
    }

    #[derive(Debug, Default)]
    pub struct MemPort {
        pub rx: VecDeque<VecBuf>,
        pub tx: Vec<Vec<u8>>,
        pub to_kernel: Vec<Vec<u8>>,
        pub from_kernel: VecDeque<VecBuf>,
    }

    /// Frames queued by tests on `rx`, collected from `tx` after a poll.
    #[derive(Debug)]
    pub struct MemIo {
        pub ports: Vec<MemPort>,
        pub worker: usize,
        pub nworkers: usize,
        pub now: u64,
        /// Frames handed to peers: (worker, frame with its port).
        pub to_peers: Vec<(usize, VecBuf)>,
        pub from_peers: VecDeque<VecBuf>,
        /// How many more buffers `alloc` may hand out (None: unlimited).
        pub alloc_budget: Option<usize>,
        /// Capacity of each port's transmit queue between flushes.
        pub tx_capacity: usize,
        pending: Vec<(usize, VecBuf)>,
        dropped: u64,
    }

    impl MemIo {
        pub fn new(nports: usize) -> Self {
            MemIo {
                ports: (0..nports).map(|_| MemPort::default()).collect(),
                worker: 0,
                nworkers: 1,
                now: 0,
                to_peers: Vec::new(),
                from_peers: VecDeque::new(),
                alloc_budget: None,
                tx_capacity: usize::MAX,
                pending: Vec::new(),
                dropped: 0,
            }
        }
        pub fn push_rx(&mut self, port: usize, frame: &[u8]) {
            self.ports[port].rx.push_back(VecBuf::new(frame));
        }
        /// Takes everything transmitted on `port` so far.
        pub fn take_tx(&mut self, port: usize) -> Vec<Vec<u8>> {
            std::mem::take(&mut self.ports[port].tx)
        }
        pub fn take_to_kernel(&mut self, port: usize) -> Vec<Vec<u8>> {
            std::mem::take(&mut self.ports[port].to_kernel)
        }
    }

    fn fill(q: &mut VecDeque<VecBuf>, out: &mut ArrayVec<VecBuf, BURST>) {
        while !out.is_full() {
            match q.pop_front() {
                Some(b) => out.push(b),
                None => break,
            }
        }
    }

    impl Io for MemIo {
        type Buf = VecBuf;
        fn nports(&self) -> usize {
            self.ports.len()
        }
        fn worker(&self) -> usize {
            self.worker
        }
        fn nworkers(&self) -> usize {
            self.nworkers
        }
        fn now_ms(&mut self) -> u64 {
            self.now
        }
        fn rx_burst(&mut self, port: usize, out: &mut ArrayVec<VecBuf, BURST>) {
            fill(&mut self.ports[port].rx, out);
            for b in out.iter_mut() {
                b.port = port;
            }
        }
        fn tx(&mut self, port: usize, pkt: VecBuf) {
            if self.pending.iter().filter(|(p, _)| *p == port).count() >= self.tx_capacity {
                self.dropped += 1;
                return;
            }
            self.pending.push((port, pkt));
        }
        fn rx_exception(&mut self, port: usize, out: &mut ArrayVec<VecBuf, BURST>) {
            fill(&mut self.ports[port].from_kernel, out);
        }
        fn tx_exception(&mut self, port: usize, pkt: VecBuf) {
            self.ports[port].to_kernel.push(pkt.data().to_vec());
        }
        fn to_peer(&mut self, worker: usize, pkt: VecBuf) {
            self.to_peers.push((worker, pkt));
        }
        fn rx_peers(&mut self, out: &mut ArrayVec<VecBuf, BURST>) {
            fill(&mut self.from_peers, out);
        }
        fn alloc(&mut self) -> Option<VecBuf> {
            if let Some(n) = self.alloc_budget.as_mut() {
                if *n == 0 {
                    return None;
                }
                *n -= 1;
            }
            Some(VecBuf::new(&[]))
        }
        fn flush(&mut self) -> u64 {
            for (port, pkt) in self.pending.drain(..) {
                self.ports[port].tx.push(pkt.data().to_vec());
            }
            std::mem::take(&mut self.dropped)
        }
    }
}

pub mod replay {
    //! An [`Io`] that replays a fixed set of frames on port 0 forever, with
    //! buffers that return to a preallocated pool when dropped, as mbufs
    //! return to their mempool. After construction it never touches the
    //! heap: what benchmarks and the allocation test need to measure the
    //! data plane alone.

    use super::mem::{Pool, VecBuf, BUF_ROOM};
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    pub struct ReplayIo {
        frames: Vec<Vec<u8>>,
        next: usize,
        pool: Pool,
        pub now: u64,
        /// Frames received, transmitted (any port), sent to the kernel.
        pub rx: u64,
        pub tx: u64,
        pub to_kernel: u64,
        nports: usize,
    }

    impl ReplayIo {
        /// `buffers` bounds the frames in flight (held by neighbours too).
        pub fn new(nports: usize, frames: Vec<Vec<u8>>, buffers: usize) -> Self {
            let mut free = Vec::with_capacity(buffers);
            free.extend((0..buffers).map(|_| Vec::with_capacity(BUF_ROOM)));
            let pool = Rc::new(RefCell::new(free));
            ReplayIo {
                frames,
                next: 0,
                pool,
                now: 0,
                rx: 0,
                tx: 0,
                to_kernel: 0,
                nports,
            }
        }

        /// Replays `frames` from now on, from the first, and returns the
        /// set replayed so far. A benchmark establishes connections with one
        /// set (the flows' SYNs) and measures another (their ACKs) on the
        /// same I/O and the same worker; an empty set pauses reception, so
        /// the worker can be polled for its timers alone. Touches no buffer:
        /// the pool and its buffers in flight are unaffected.
        pub fn set_frames(&mut self, frames: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
            self.next = 0;
            core::mem::replace(&mut self.frames, frames)
        }

        fn take(&self) -> Option<VecBuf> {
            let bytes = self.pool.borrow_mut().pop()?;
            Some(VecBuf {
                bytes,
                port: 0,
                pool: Some(self.pool.clone()),
                offload: RxOffload::default(),
                rss: None,
            })
        }
    }

    impl Io for ReplayIo {
        type Buf = VecBuf;
        fn nports(&self) -> usize {
            self.nports
        }
        fn worker(&self) -> usize {
            0
        }
        fn nworkers(&self) -> usize {
            1
        }
        fn now_ms(&mut self) -> u64 {
            self.now
        }
        fn rx_burst(&mut self, port: usize, out: &mut ArrayVec<VecBuf, BURST>) {
            if port != 0 || self.frames.is_empty() {
                return;
            }
            while !out.is_full() {
                let Some(mut b) = self.take() else { return };
                b.bytes.extend_from_slice(&self.frames[self.next]);
                self.next = (self.next + 1) % self.frames.len();
                self.rx += 1;
                out.push(b);
            }
        }
        fn tx(&mut self, _port: usize, _pkt: VecBuf) {
            self.tx += 1;
        }
        fn rx_exception(&mut self, _port: usize, _out: &mut ArrayVec<VecBuf, BURST>) {}
        fn tx_exception(&mut self, _port: usize, _pkt: VecBuf) {
            self.to_kernel += 1;
        }
        fn to_peer(&mut self, _worker: usize, _pkt: VecBuf) {}
        fn rx_peers(&mut self, _out: &mut ArrayVec<VecBuf, BURST>) {}
        fn alloc(&mut self) -> Option<VecBuf> {
            self.take()
        }
        fn flush(&mut self) -> u64 {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::replay::ReplayIo;
    use super::*;

    fn rx(io: &mut ReplayIo) -> Vec<Vec<u8>> {
        let mut out = ArrayVec::<_, BURST>::new();
        io.rx_burst(0, &mut out);
        out.iter().map(|b| b.data().to_vec()).collect()
    }

    #[test]
    fn replay_switches_frame_sets_from_their_first_frame() {
        let mut io = ReplayIo::new(1, vec![vec![1], vec![2], vec![3]], 2);
        assert_eq!(rx(&mut io), vec![vec![1], vec![2]], "bounded by the pool");
        assert_eq!(
            io.set_frames(vec![vec![7], vec![8]]),
            vec![vec![1], vec![2], vec![3]]
        );
        assert_eq!(rx(&mut io), vec![vec![7], vec![8]]);
        io.set_frames(Vec::new());
        assert!(rx(&mut io).is_empty(), "an empty set pauses reception");
        assert_eq!(io.rx, 4);
    }
}
