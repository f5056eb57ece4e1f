//! One owned packet buffer.
//!
//! The length operations are the `rte_pktmbuf_*` inlines of DPDK 22.11 rewritten in
//! Rust, because a call into the C shim cannot be inlined and these run per packet;
//! the test suite checks them against the C versions.

use std::fmt;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use arrayvec::ArrayVec;

use crate::raw;

/// An `rte_mbuf` this value owns (one reference): freed back to its pool on drop.
/// `repr(transparent)`, so `[Mbuf]` is an `rte_mbuf *` array DPDK can burst into.
#[repr(transparent)]
pub struct Mbuf(NonNull<raw::rte_mbuf>);

// SAFETY: an Mbuf is the only handle to its buffer, and DPDK mbufs may be freed or
// used from any thread (mempools are thread-safe), so it can move between threads.
// It is not Sync: nothing here synchronises concurrent access to the fields.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf, e.g. one built with the raw bindings.
    ///
    /// # Safety
    /// `m` must be a valid packet mbuf whose reference passes to the result, and no
    /// other code may read or write its segments while the `Mbuf` lives (so it must
    /// not be an indirect mbuf or share its buffer).
    #[inline]
    pub unsafe fn from_raw(m: NonNull<raw::rte_mbuf>) -> Mbuf {
        Mbuf(m)
    }

    /// Gives up ownership without freeing, e.g. to pass the mbuf to a raw DPDK call.
    #[inline]
    pub fn into_raw(self) -> NonNull<raw::rte_mbuf> {
        ManuallyDrop::new(self).0
    }

    /// The raw pointer, for reading or setting fields this type does not wrap
    /// (offload flags, packet type); ownership stays here.
    #[inline]
    pub fn as_ptr(&self) -> *mut raw::rte_mbuf {
        self.0.as_ptr()
    }

    #[inline]
    fn head(&self) -> &raw::rte_mbuf {
        // SAFETY: self owns a valid mbuf (type invariant) and &self keeps it alive.
        unsafe { self.0.as_ref() }
    }

    /// The last segment, where DPDK appends and trims.
    #[inline]
    fn last_seg(&self) -> NonNull<raw::rte_mbuf> {
        let mut seg = self.0;
        // SAFETY: segments of an owned chain are valid, and `next` is NULL on the last.
        while let Some(next) = NonNull::new(unsafe { seg.as_ref() }.next) {
            seg = next;
        }
        seg
    }

    /// The first segment's bytes; all of the packet when `segments() == 1`, which is
    /// what ripvs's pools (one buffer per frame) produce.
    #[inline]
    pub fn data(&self) -> &[u8] {
        let m = self.head();
        // SAFETY: buf_addr + data_off starts data_len initialised bytes inside the
        // buffer (mbuf invariant), owned by self for the lifetime of &self.
        unsafe {
            std::slice::from_raw_parts(
                m.buf_addr.cast::<u8>().add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }

    /// The first segment's bytes, writable; see [`Mbuf::data`].
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let m = self.head();
        let (addr, off, len) = (m.buf_addr.cast::<u8>(), m.data_off, m.data_len);
        // SAFETY: as in data(); &mut self makes the access exclusive, and from_raw's
        // contract rules out other handles to the same buffer.
        unsafe { std::slice::from_raw_parts_mut(addr.add(usize::from(off)), usize::from(len)) }
    }

    /// The packet length over all segments (`pkt_len`).
    #[inline]
    pub fn len(&self) -> usize {
        self.head().pkt_len as usize
    }

    /// Whether the packet has no bytes at all.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.head().pkt_len == 0
    }

    /// The number of segments; the safe views cover only the first.
    #[inline]
    pub fn segments(&self) -> u16 {
        self.head().nb_segs
    }

    /// Bytes free before the data, i.e. how much [`Mbuf::prepend`] can add.
    #[inline]
    pub fn headroom(&self) -> usize {
        usize::from(self.head().data_off)
    }

    /// Bytes free after the data of the last segment, i.e. how much
    /// [`Mbuf::append`] can add.
    #[inline]
    pub fn tailroom(&self) -> usize {
        // SAFETY: last_seg returns a valid segment of this owned chain.
        let last = unsafe { self.last_seg().as_ref() };
        usize::from(last.buf_len - last.data_off - last.data_len)
    }

    // The length operations take usize like the rest of Rust; anything beyond u16,
    // DPDK's segment limit, cannot fit and fails like any other overflow.

    /// Grows the packet by `n` bytes at the tail (rte_pktmbuf_append); false, with
    /// nothing changed, if the last segment lacks room. New bytes are not zeroed.
    #[inline]
    pub fn append(&mut self, n: usize) -> bool {
        let Ok(n) = u16::try_from(n) else {
            return false;
        };
        let mut last = self.last_seg();
        // SAFETY: `last` is a segment of the chain that &mut self owns exclusively;
        // `last` and the head may be the same mbuf, so each is accessed in turn.
        unsafe {
            let l = last.as_mut();
            if n > l.buf_len - l.data_off - l.data_len {
                return false;
            }
            l.data_len += n;
            self.0.as_mut().pkt_len += u32::from(n);
        }
        true
    }

    /// Grows the packet by `n` bytes at the front (rte_pktmbuf_prepend), e.g. for an
    /// outer header; false, with nothing changed, if the headroom is too small.
    #[inline]
    pub fn prepend(&mut self, n: usize) -> bool {
        let Ok(n) = u16::try_from(n) else {
            return false;
        };
        // SAFETY: &mut self owns the head mbuf exclusively.
        let m = unsafe { self.0.as_mut() };
        if n > m.data_off {
            return false;
        }
        m.data_off -= n;
        m.data_len += n;
        m.pkt_len += u32::from(n);
        true
    }

    /// Strips `n` bytes from the front (rte_pktmbuf_adj), e.g. an outer header; false,
    /// with nothing changed, if the first segment is shorter than `n`.
    #[inline]
    pub fn adj(&mut self, n: usize) -> bool {
        let Ok(n) = u16::try_from(n) else {
            return false;
        };
        // SAFETY: &mut self owns the head mbuf exclusively.
        let m = unsafe { self.0.as_mut() };
        if n > m.data_len {
            return false;
        }
        m.data_len -= n;
        m.data_off += n;
        m.pkt_len -= u32::from(n);
        true
    }

    /// Strips `n` bytes from the tail (rte_pktmbuf_trim); false, with nothing changed,
    /// if the last segment is shorter than `n`.
    #[inline]
    pub fn trim(&mut self, n: usize) -> bool {
        let Ok(n) = u16::try_from(n) else {
            return false;
        };
        let mut last = self.last_seg();
        // SAFETY: as in append().
        unsafe {
            let l = last.as_mut();
            if n > l.data_len {
                return false;
            }
            l.data_len -= n;
            self.0.as_mut().pkt_len -= u32::from(n);
        }
        true
    }

    /// Sets a one-segment packet's length to `len` by growing or trimming the tail;
    /// false, with nothing changed, for a chain or if the buffer is too small.
    #[inline]
    pub fn set_len(&mut self, len: usize) -> bool {
        if self.segments() != 1 {
            return false;
        }
        let cur = usize::from(self.head().data_len);
        if len >= cur {
            self.append(len - cur)
        } else {
            self.trim(cur - len)
        }
    }

    /// The port the packet arrived on (or was last assigned).
    #[inline]
    pub fn port(&self) -> u16 {
        self.head().port
    }

    /// Sets the port field, which DPDK leaves to the application on transmit: ripvs
    /// uses it to carry the output port through its own queues.
    #[inline]
    pub fn set_port(&mut self, port: u16) {
        // SAFETY: &mut self owns the head mbuf exclusively.
        unsafe { self.0.as_mut() }.port = port;
    }

    /// Starts loading the packet's first bytes into L1 (rte_prefetch0 of the data),
    /// a burst ahead of parsing them, as l2fwd does.
    #[inline]
    pub fn prefetch(&self) {
        #[cfg(target_arch = "x86_64")]
        {
            let m = self.head();
            let p = m
                .buf_addr
                .cast::<i8>()
                .wrapping_add(usize::from(m.data_off));
            // SAFETY: a prefetch is only a hint: it never faults and has no effect on
            // memory, whatever the address; SSE is part of the x86-64 baseline.
            unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p) }
        }
    }

    /// The offload flags (`ol_flags`): on a received mbuf, what the driver
    /// found (checksum verdicts, an RSS hash, see [`rx_flags`]).
    #[inline]
    pub fn ol_flags(&self) -> u64 {
        self.head().ol_flags
    }

    /// The NIC's RSS hash of the packet (`hash.rss`), or `None` when the
    /// driver computed none (no `RTE_MBUF_F_RX_RSS_HASH`): the field then
    /// holds whatever the union's other members left there.
    #[inline]
    pub fn rss_hash(&self) -> Option<u32> {
        let m = self.head();
        if m.ol_flags & rx_flags::RSS_HASH == 0 {
            return None;
        }
        // SAFETY: the RX_RSS_HASH flag says the driver wrote the `rss` member, and
        // every member of this union is plain integers, so any bits are valid.
        Some(unsafe { m.__bindgen_anon_2.hash.rss })
    }
}

/// The receive bits of `ol_flags` ripvs reads (DPDK's `RTE_MBUF_F_RX_*`,
/// evaluated by bindgen from `rte_mbuf_core.h`).
///
/// A checksum verdict is two bits under its mask: neither set is UNKNOWN
/// (not checked), one of them BAD or GOOD, and both NONE, which DPDK
/// defines as "the checksum in the packet is wrong, but the integrity of
/// the data was verified" (e.g. virtio's partial checksums): the bytes
/// must not be trusted to add up.
pub mod rx_flags {
    use crate::raw;

    /// `hash.rss` holds the NIC's RSS hash.
    pub const RSS_HASH: u64 = raw::RTE_MBUF_F_RX_RSS_HASH as u64;
    /// The IPv4 header checksum verdict's bits.
    pub const IP_CKSUM_MASK: u64 = raw::RTE_MBUF_F_RX_IP_CKSUM_MASK as u64;
    /// Not checked.
    pub const IP_CKSUM_UNKNOWN: u64 = raw::RTE_MBUF_F_RX_IP_CKSUM_UNKNOWN as u64;
    /// Checked: wrong.
    pub const IP_CKSUM_BAD: u64 = raw::RTE_MBUF_F_RX_IP_CKSUM_BAD as u64;
    /// Checked: right.
    pub const IP_CKSUM_GOOD: u64 = raw::RTE_MBUF_F_RX_IP_CKSUM_GOOD as u64;
    /// The field is not a valid checksum, the header's integrity is known.
    pub const IP_CKSUM_NONE: u64 = raw::RTE_MBUF_F_RX_IP_CKSUM_NONE as u64;
    /// The TCP/UDP/SCTP checksum verdict's bits.
    pub const L4_CKSUM_MASK: u64 = raw::RTE_MBUF_F_RX_L4_CKSUM_MASK as u64;
    /// Not checked.
    pub const L4_CKSUM_UNKNOWN: u64 = raw::RTE_MBUF_F_RX_L4_CKSUM_UNKNOWN as u64;
    /// Checked: wrong.
    pub const L4_CKSUM_BAD: u64 = raw::RTE_MBUF_F_RX_L4_CKSUM_BAD as u64;
    /// Checked: right.
    pub const L4_CKSUM_GOOD: u64 = raw::RTE_MBUF_F_RX_L4_CKSUM_GOOD as u64;
    /// The field is not a valid checksum, the data's integrity is known.
    pub const L4_CKSUM_NONE: u64 = raw::RTE_MBUF_F_RX_L4_CKSUM_NONE as u64;
}

impl Drop for Mbuf {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: self owns one reference to a valid mbuf chain and gives it up here.
        unsafe { raw::ripvs_pktmbuf_free(self.0.as_ptr()) }
    }
}

/// Frees every mbuf in `pkts` with one DPDK call (rte_pktmbuf_free_bulk), e.g. what
/// a full tx queue refused; cheaper than dropping them one by one.
#[inline]
pub fn free_bulk<const N: usize>(pkts: &mut ArrayVec<Mbuf, N>) {
    let len = pkts.len();
    if len == 0 {
        return;
    }
    // SAFETY: pkts holds len owned mbuf pointers (Mbuf is `rte_mbuf *`); their
    // references pass to DPDK, and the length drops to 0 so none is dropped again.
    unsafe {
        pkts.set_len(0);
        raw::rte_pktmbuf_free_bulk(pkts.as_mut_ptr().cast(), len as u32);
    }
}

impl fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mbuf")
            .field("len", &self.len())
            .field("segments", &self.segments())
            .field("port", &self.port())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::rx_flags::*;

    /// The decoding in the daemon takes each verdict as two bits under its
    /// mask, NONE being both: what DPDK 22.11 defines, checked here so that
    /// a header changing it fails the build's tests rather than the data
    /// plane's checksums.
    #[test]
    fn checksum_verdicts_are_two_bits_with_none_as_both() {
        for (mask, unknown, bad, good, none) in [
            (
                IP_CKSUM_MASK,
                IP_CKSUM_UNKNOWN,
                IP_CKSUM_BAD,
                IP_CKSUM_GOOD,
                IP_CKSUM_NONE,
            ),
            (
                L4_CKSUM_MASK,
                L4_CKSUM_UNKNOWN,
                L4_CKSUM_BAD,
                L4_CKSUM_GOOD,
                L4_CKSUM_NONE,
            ),
        ] {
            assert_eq!(unknown, 0);
            assert_eq!((bad.count_ones(), good.count_ones()), (1, 1));
            assert_ne!(bad, good);
            assert_eq!(none, bad | good);
            assert_eq!(mask, none);
        }
        assert_eq!(IP_CKSUM_MASK & L4_CKSUM_MASK, 0);
        assert_eq!(RSS_HASH & (IP_CKSUM_MASK | L4_CKSUM_MASK), 0);
    }
}
