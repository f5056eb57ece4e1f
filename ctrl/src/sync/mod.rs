//! Connection synchronisation with IPVS peers (reference 8): a master
//! multicasts the connections it forwards so that a backup can take over
//! without breaking them. Both sides speak the kernel's wire format, so a
//! ripvs director and a Linux IPVS director can back each other up.
//!
//! [`codec`] is the wire format alone: bytes in, records out, and back,
//! with no sockets, clocks or tables, so that it can be tested against the
//! kernel's rules byte for byte.

pub mod codec;
