//! Packets for the director itself: ARP, ICMP echo, and the exception path
//! to the kernel for everything else addressed to it.
//!
//! These are functions given what they use, not methods of
//! [`crate::host::Host`]: ICMP echo and the exception path need only the
//! egress part; ARP needs the host's addresses too and takes the host.
//! Nothing here is imported back by `host` or `output`, so the modules
//! form no circle.

pub mod arp;
pub mod exception;
pub mod icmp;
