//! Direct routing (reference 6.2): the datagram is forwarded unchanged but
//! for its TTL, with the real server as next hop. The destination stays the
//! VIP, which the real server accepts locally; only the Ethernet
//! destination differs, and that is the caller's to write.

use super::{check_ttl_mtu, finish, ip_of, Hdr, Verdict};
use crate::io::Buf;

/// Forwards `frame` towards a real server on a link of `mtu` bytes. Also
/// relays ICMP errors for DR connections (reference 6.5), which IPVS sends
/// through the same transmitter.
pub fn transmit<B: Buf>(frame: &mut B, mtu: u16) -> Verdict {
    match ip_of(frame.data()) {
        Ok(ip) => {
            let h = Hdr::of(&ip);
            transmit_checked(frame, &h, mtu)
        }
        Err(v) => v,
    }
}

/// [`transmit`] for a frame whose header the caller validated as `ip`.
#[inline]
pub(crate) fn transmit_checked<B: Buf>(frame: &mut B, ip: &Hdr, mtu: u16) -> Verdict {
    if let Err(v) = check_ttl_mtu(ip, mtu) {
        return v;
    }
    finish(frame, ip.total as usize)
}
