//! Per-worker counters: one writer (the worker), any number of readers (the
//! control thread). Each counter is an `AtomicU64` updated with a plain load
//! and store, never a read-modify-write, so counting costs what a normal
//! increment costs and readers still never see a torn value. The block is
//! cache-line aligned so two workers' counters never share a line.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Single-writer add: only the owning worker may call this.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

macro_rules! counter_set {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident => $s:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(usize)]
        pub enum $name { $($(#[$vm])* $v,)* }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v,)*];
            pub const COUNT: usize = Self::ALL.len();
            /// The name printed in counter listings.
            pub const fn name(self) -> &'static str {
                match self { $($name::$v => $s,)* }
            }
        }
    };
}

counter_set! {
    /// Why a frame was dropped. Every drop in the data plane has exactly one.
    DropReason {
        /// Too short or inconsistent lengths/fields for its protocol.
        Malformed => "malformed",
        /// IPv4 header or ICMP checksum wrong.
        BadChecksum => "bad_checksum",
        /// Unicast to another MAC (promiscuous or virtual devices).
        NotForUs => "not_for_us",
        /// IPv4 to an address that is neither ours nor a VIP.
        UnknownDestination => "unknown_destination",
        /// ARP that neither asks for nor answers one of our addresses.
        ArpNotForUs => "arp_not_for_us",
        /// A VIP packet no service handles.
        NoService => "no_service",
        /// Not a connection's first packet (a TCP segment without SYN, say)
        /// and no connection matches.
        NoConnection => "no_connection",
        /// The scheduler found no available real server.
        NoDestination => "no_destination",
        /// A packet of a connection whose real server was removed, with
        /// expire_nodest_conn off (reference 4.7).
        DestRemoved => "dest_removed",
        /// The connection table is full: new connections are refused.
        ConnTableFull => "conn_table_full",
        /// TTL ran out on the way to a real server.
        TtlExceeded => "ttl_exceeded",
        /// IPv4 fragment for an address we answer ourselves.
        Fragment => "fragment",
        /// No route to the destination.
        NoRoute => "no_route",
        /// Larger than the egress port's MTU.
        TooBig => "too_big",
        /// Oldest packet pushed out of a full neighbour queue.
        NeighQueueFull => "neigh_queue_full",
        /// Next hop never answered ARP.
        NeighUnresolved => "neigh_unresolved",
        /// No free neighbour entry.
        NeighTableFull => "neigh_table_full",
        /// Needed the exception path but the port has none.
        NoException => "no_exception_path",
        /// A transmit or hand-off queue was full.
        TxQueueFull => "tx_queue_full",
        /// No mbuf to build a reply, probe or copy.
        NoBuffer => "no_buffer",
        /// Traffic to a VIP while the director stands by as a sync backup
        /// with `backup_only` (IPVS's sysctl).
        Standby => "standby",
        /// Traffic to an address of a VRRP instance that is not master
        /// here (another director holds it, or should).
        NotMaster => "vrrp_not_master",
        /// A frame for the control plane (VRRP) found its queue full.
        ControlQueueFull => "control_queue_full",
        /// An ACK to a SYN-proxy service whose cookie is not ours, or
        /// too old.
        SynproxyRejected => "synproxy_rejected",
        /// A packet of a proxied connection still waiting for its real
        /// server, beyond what it may hold.
        SynproxyAckStorm => "synproxy_ack_storm",
        /// A validated ACK found every hold slot taken (the client's
        /// retransmission tries again).
        SynproxyHoldFull => "synproxy_hold_full",
        /// drop_packet (reference 7) took this packet that would have
        /// opened a connection.
        DropPacket => "drop_packet",
        /// From a source no host can have, or one of the director's own:
        /// 0.0.0.0/8, loopback, multicast, class E, 255.255.255.255, a
        /// directed broadcast of a connected network, an interface
        /// address or a VIP (Linux's martian source, `ip_route_input_slow`
        /// and `fib_validate_source`). Checked where a connection is
        /// created and where the director answers.
        MartianSource => "martian_source",
        /// IPv4 options that Linux's `ip_options_compile` rejects (a length
        /// of 0 or 1, one running past the header, a bad pointer, a
        /// repeated option), or source routing, which Linux drops with
        /// `accept_source_route = 0`.
        BadIpOptions => "bad_ip_options",
        /// ARP from another MAC claiming one of the director's addresses
        /// (gratuitous or not): an address conflict. Not answered, as
        /// Linux does not; the control thread logs when this moves.
        ArpConflict => "arp_conflict",
        /// A DR or TUN real server's reply (from the VIP, to a client the
        /// director has a connection for) that came back through the
        /// director: asymmetric routing or a real server whose gateway is
        /// the director. Linux drops it as a martian (its source is local).
        ReplyViaBackPort => "reply_via_back_port",
    }
}

counter_set! {
    /// Things the worker did, for operators and tests.
    Event {
        ArpReplySent => "arp_replies_sent",
        ArpRequestSent => "arp_requests_sent",
        GratuitousArpSent => "gratuitous_arps_sent",
        NeighResolved => "neigh_resolved",
        EchoReplySent => "echo_replies_sent",
        ToKernel => "exception_to_kernel",
        FromKernel => "exception_from_kernel",
        PeerCopySent => "peer_copies_sent",
        /// A packet arrived on a core that does not own its connection and
        /// was handed to the owner.
        Redirected => "redirected",
        /// Of those, NAT real servers' replies: they reach whichever core
        /// the server-side port's RSS (or a lone queue) gives them, and
        /// only the core that owns their client has their connection.
        RedirectedReply => "redirected_replies",
        IcmpErrorSent => "icmp_errors_sent",
        /// An ICMP error about a connection, passed on to its real server
        /// or its client.
        IcmpRelayed => "icmp_relayed",
        /// A frame passed up to the control plane (VRRP adverts).
        ToControl => "to_control",
        /// A frame the control plane sent (adverts, gratuitous ARPs).
        FromControl => "from_control",
        /// Cookie SYN-ACKs sent for SYNs to SYN-proxy services.
        SynproxyCookiesSent => "synproxy_cookies_sent",
        /// ACKs whose cookie was good: a connection was created.
        SynproxyValidated => "synproxy_validated",
        /// drop_entry removed an entry (its scan, reference 7).
        DropEntryDropped => "drop_entry_dropped",
        /// A new connection found the table full and took a half-open
        /// entry's place while drop_entry was on.
        DropEntryEvicted => "drop_entry_evicted",
        /// The defences switched on or off on a worker (automatic modes:
        /// the table's fill crossed its threshold; or a new setting).
        DropEntryOn => "drop_entry_on",
        DropEntryOff => "drop_entry_off",
        DropPacketOn => "drop_packet_on",
        DropPacketOff => "drop_packet_off",
        SecureTcpOn => "secure_tcp_on",
        SecureTcpOff => "secure_tcp_off",
    }
}

/// One worker's counters.
#[repr(align(64))]
#[derive(Debug, Default)]
pub struct WorkerStats {
    drops: [Counter; DropReason::COUNT],
    events: [Counter; Event::COUNT],
}

impl WorkerStats {
    #[inline]
    pub fn count_drop(&self, why: DropReason) {
        self.drops[why as usize].add(1);
    }
    #[inline]
    pub fn count_drops(&self, why: DropReason, n: u64) {
        self.drops[why as usize].add(n);
    }
    #[inline]
    pub fn event(&self, what: Event) {
        self.events[what as usize].add(1);
    }
    #[inline]
    pub fn event_n(&self, what: Event, n: u64) {
        self.events[what as usize].add(n);
    }
    /// A frame handed to the worker that owns its connection; `reply`: a
    /// NAT real server's reply (counted apart as well).
    #[inline]
    pub fn redirected(&self, reply: bool) {
        self.event(Event::Redirected);
        if reply {
            self.event(Event::RedirectedReply);
        }
    }
    pub fn drops(&self, why: DropReason) -> u64 {
        self.drops[why as usize].get()
    }
    pub fn count(&self, what: Event) -> u64 {
        self.events[what as usize].get()
    }
}
