//! Where packets leave: route lookup, next-hop resolution, Ethernet header.
//! [`egress::Egress`] is the part of a worker that holds all of it.

pub mod adj;
pub mod arp;
pub mod egress;
pub mod neigh;
pub mod route;
