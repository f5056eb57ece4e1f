//! Connections: one table per worker, which no other thread touches
//! (design 2 and 5). It stores connections and finds them; it knows
//! nothing of services, schedulers or protocol states.
//!
//! # Memory
//!
//! A slab of slots, allocated and written once in [`ConnTable::new`]; a
//! free list recycles them, and a full table refuses new connections
//! ([`Full`]) rather than evicting anyone. An IPv4 slot is 64 bytes,
//! 64-byte aligned, and holds everything about its connection:
//!
//! | bytes | what |
//! |---|---|
//! | 12 | client, virtual and real-server addresses |
//! | 6 | their ports |
//! | 2 | protocol, state |
//! | 2 | flags |
//! | 4 | n_control, in_pkts (u16 each) |
//! | 12 | real-server id, service id, controlling entry (u32 each) |
//! | 8 | timeout, expires (u32 ticks) |
//! | 2 | the end time last sent to a sync backup |
//! | 4 | hash chain link |
//! | 8 | timer-wheel links |
//! | 4 | the head of one hash bucket |
//!
//! There are as many hash buckets as slots (load factor ≤ 1, bucket
//! chosen by multiply-shift, so any capacity works), and bucket *i*'s head
//! lives in slot *i*, next to an unrelated connection. That makes the cost
//! 64 bytes per connection with the index included, whatever the capacity
//! (10 million connections: 640 MB), and puts every connection in exactly
//! one cache line: a 56-byte entry with a separate head array would
//! straddle two lines three times in four. A separate array would pack 16
//! heads per line, but at millions of connections neither layout keeps the
//! heads in cache: a lookup is two memory accesses either way.
//!
//! # Keys
//!
//! As in IPVS (reference 4.1), both directions hash on (protocol, client
//! address, client port), so one chain serves client packets
//! ([`ConnTable::lookup_in`]), NAT replies ([`ConnTable::lookup_out`]) and
//! persistence templates (cport 0, [`ConnTable::lookup_template`]).
//! Templates will live in a shared table (design 3); they use the same
//! entry type, so a `ConnTable` can hold them too.
//!
//! Which core owns a connection is [`owner_core`], a fixed function of the
//! client endpoint that NIC RSS can compute too; the table's own bucket
//! hash is seeded per table and unrelated to it.
//!
//! # Time
//!
//! Entries expire through a hashed timer wheel linked through the same
//! slots: ticks of 100 ms, 16384 slots (one revolution, 27 min, holds
//! every default IPVS timeout; longer ones are revisited once per
//! revolution). A packet's [`ConnTable::touch`] only rewrites the entry's
//! expiry; the wheel notices when the old slot comes due and moves the
//! entry on then. [`ConnTable::expire`] does a bounded amount of work per
//! call.
//!
//! # Families
//!
//! The table is generic over the address type ([`Addr`]): IPv4 now,
//! `ConnTable<Ipv6Addr>` when IPv6 comes, same code and API (its slot is
//! two cache lines).

mod addr;
mod entry;
mod hash;
pub mod rss;
mod table;
mod wheel;

#[cfg(test)]
mod tests;

pub use addr::{Addr, ConnKey};
pub use entry::{flags, Conn, INITIAL_TIMEOUT, INVALID_PORT, NONE, TPL_S_ASSURED, TPL_S_NONE};
pub use rss::{owner_core, rss_hash};
pub use table::{ConnId, ConnTable, Full, MAX_CAPACITY};
pub use wheel::{
    secs, ExpireAction, ExpireReport, Tick, MAX_TIMEOUT, TICKS_PER_SEC, TICK_MS, WHEEL_SLOTS,
};
