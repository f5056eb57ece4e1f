//! ICMP echo for the director's addresses and VIPs, answered in place.
//!
//! Other ICMP for interface addresses (errors about the kernel's own
//! connections, echo replies to its pings) goes to the kernel; echo to a
//! broadcast address is ignored, as Linux does by default.

use crate::io::{Buf, Io};
use crate::output::egress::{Egress, DEFAULT_TTL};
use crate::stats::{DropReason, Event};
use crate::wire::icmpv4::{self, Icmpv4Packet};
use crate::wire::{ethernet, Ipv4Packet};

/// True when `ip_payload` is an echo request.
pub fn is_echo_request(ip_payload: &[u8]) -> bool {
    ip_payload.first() == Some(&icmpv4::TYPE_ECHO_REQUEST) && ip_payload.get(1) == Some(&0)
}

/// Answers an echo request (already known to be addressed to us, not a
/// fragment) by turning it around in place and routing it back.
pub fn echo_reply<B: Buf, I: Io<Buf = B>>(eg: &mut Egress<B>, io: &mut I, mut pkt: B, now: u64) {
    let l2 = ethernet::HEADER_LEN;
    let total = {
        let Ok(mut ip) = Ipv4Packet::new_checked(&mut pkt.data_mut()[l2..]) else {
            return eg.stats.count_drop(DropReason::Malformed);
        };
        let Ok(mut icmp) = Icmpv4Packet::new_checked(ip.payload_mut()) else {
            return eg.stats.count_drop(DropReason::Malformed);
        };
        if !icmp.verify_checksum() {
            return eg.stats.count_drop(DropReason::BadChecksum);
        }
        icmp.set_msg_type(icmpv4::TYPE_ECHO_REPLY);
        let (src, dst) = (ip.src(), ip.dst());
        ip.set_src(dst);
        ip.set_dst(src);
        ip.set_ttl(DEFAULT_TTL);
        ip.fill_checksum();
        ip.total_len() as usize
    };
    // Drop link-layer padding the request arrived with.
    pkt.set_len(l2 + total);
    eg.stats.event(Event::EchoReplySent);
    eg.send_ip(io, pkt, now);
}
