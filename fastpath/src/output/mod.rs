//! Where packets leave: route lookup, next-hop resolution, Ethernet header.

pub mod neigh;
pub mod route;
