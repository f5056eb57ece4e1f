//! The exception path: the kernel's share of a DPDK-owned port.
//!
//! Frames for the director's interface addresses that ripvs does not handle
//! itself (SSH, BGP, DHCP, IPv6, anything) go up a kernel tap per port, and
//! what the kernel sends out of that tap leaves through the port unchanged,
//! as DPVS does with KNI/virtio-user. The kernel keeps its own ARP cache;
//! only replies to its requests are copied up (see `local::arp`).

use crate::host::Host;
use crate::io::{Buf, Io};
use crate::stats::{DropReason, Event};

impl<B: Buf> Host<B> {
    pub fn to_kernel<I: Io<Buf = B>>(&self, io: &mut I, port: usize, pkt: B) {
        if !self.egress.ports[port].exception {
            return self.egress.stats.count_drop(DropReason::NoException);
        }
        self.egress.stats.event(Event::ToKernel);
        io.tx_exception(port, pkt);
    }

    pub fn from_kernel<I: Io<Buf = B>>(&self, io: &mut I, port: usize, pkt: B) {
        self.egress.stats.event(Event::FromKernel);
        io.tx(port, pkt);
    }
}
