//! The exception path: the kernel's share of a DPDK-owned port.
//!
//! Frames for the director's interface addresses that ripvs does not handle
//! itself (SSH, BGP, DHCP, IPv6, anything) go up a kernel tap per port, and
//! what the kernel sends out of that tap leaves through the port unchanged,
//! as DPVS does with KNI/virtio-user. The kernel keeps its own ARP cache;
//! only replies to its requests are copied up (see `local::arp`).

use crate::io::{Buf, Io};
use crate::output::egress::Egress;
use crate::stats::{DropReason, Event};

/// A frame for the director that ripvs leaves to the kernel: up the
/// port's tap, if it has one.
pub fn to_kernel<B: Buf, I: Io<Buf = B>>(eg: &Egress<B>, io: &mut I, port: usize, pkt: B) {
    if !eg.ports[port].exception {
        return eg.stats.count_drop(DropReason::NoException);
    }
    eg.stats.event(Event::ToKernel);
    io.tx_exception(port, pkt);
}

/// A frame the kernel sent out of `port`'s tap: out of the port as it is.
pub fn from_kernel<B: Buf, I: Io<Buf = B>>(eg: &Egress<B>, io: &mut I, port: usize, pkt: B) {
    eg.stats.event(Event::FromKernel);
    io.tx(port, pkt);
}
