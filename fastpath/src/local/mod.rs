//! Packets for the director itself: ARP, ICMP echo, and the exception path
//! to the kernel for everything else addressed to it.

pub mod arp;
pub mod exception;
pub mod icmp;
