//! Where a connection's packet leaves: rewritten by its real server's
//! forwarding method (`xmit`) and handed to the egress part, or answered
//! and counted when the method refuses it. These use nothing of the
//! engine, only the egress part it is lent.

use crate::conn;
use crate::io::{Buf, Io};
use crate::output::egress::Egress;
use crate::service::Method;
use crate::stats::DropReason;
use crate::xmit::{self, icmp, Endpoint, Verdict};
use core::net::Ipv4Addr;

/// Sends a connection's packet to its real server by its method.
/// `ip`: the packet's header as validated on its way in; `None` when
/// the packet is an ICMP error about the connection (a relay), so NAT
/// translates the quoted packet too, and nothing answers a refusal.
pub(super) fn forward<B: Buf, I: Io<Buf = B>>(
    eg: &mut Egress<B>,
    io: &mut I,
    mut pkt: B,
    c: &conn::Conn<Ipv4Addr>,
    now: u64,
    ip: Option<&xmit::Hdr>,
) {
    let hop = eg.next_hop(c.daddr);
    let mtu = match hop {
        Some(nh) => nh.mtu,
        None => eg.mtu_by_route(c.daddr),
    };
    let method = (c.flags & conn::flags::FWD_MASK) as u8;
    let dr = method == Method::Dr as u8;
    let v = match ip {
        _ if dr => match ip {
            Some(h) => xmit::dr::transmit_checked(&mut pkt, h, mtu),
            None => xmit::dr::transmit(&mut pkt, mtu),
        },
        _ if method == Method::Tun as u8 => {
            let src = match hop {
                Some(nh) => nh.src,
                None => eg
                    .routes
                    .lookup(c.daddr)
                    .map_or(Ipv4Addr::UNSPECIFIED, |r| r.src),
            };
            let ident = eg.next_ident();
            let p = xmit::tun::TunParams::new(src, c.daddr, mtu, ident);
            xmit::tun::encapsulate(&mut pkt, &p)
        }
        Some(h) => xmit::nat::dnat_checked(
            &mut pkt,
            h,
            Endpoint::new(c.vaddr, c.vport),
            Endpoint::new(c.daddr, c.dport),
            mtu,
        ),
        None => icmp::translate_to_real_server(
            &mut pkt,
            Endpoint::new(c.vaddr, c.vport),
            Endpoint::new(c.daddr, c.dport),
            mtu,
        ),
    };
    if v == Verdict::Forward {
        // DR: the real server is the next hop and the VIP stays the
        // destination. TUN and NAT: the real server is the (outer)
        // destination, so this hop is what `send_ip` would find, and
        // the transmit function checked the size against its MTU.
        match hop {
            Some(nh) if dr || ip.is_some() => return eg.send_l2(io, nh.port(), nh.mac, pkt),
            None if dr => return eg.send_via(io, pkt, c.daddr, now),
            _ => {}
        }
    }
    match ip {
        Some(_) => after_xmit(eg, io, pkt, v, c.vaddr, now),
        None => after_relay(eg, io, pkt, v, now),
    }
}

/// Routes a rewritten packet, or answers and counts what xmit refused.
pub(crate) fn after_xmit<B: Buf, I: Io<Buf = B>>(
    eg: &mut Egress<B>,
    io: &mut I,
    pkt: B,
    v: Verdict,
    err_src: Ipv4Addr,
    now: u64,
) {
    match v {
        Verdict::Forward => eg.send_ip(io, pkt, now),
        Verdict::TimeExceeded => {
            eg.stats.count_drop(DropReason::TtlExceeded);
            eg.icmp_error(io, pkt.data(), icmp::ErrorKind::TimeExceeded, err_src, now);
        }
        Verdict::FragNeeded { mtu } => {
            eg.stats.count_drop(DropReason::TooBig);
            eg.icmp_error(
                io,
                pkt.data(),
                icmp::ErrorKind::FragNeeded { mtu },
                err_src,
                now,
            );
        }
        Verdict::NeedsFragmentation | Verdict::TunnelMtuTooSmall | Verdict::NoRoom => {
            eg.stats.count_drop(DropReason::TooBig)
        }
        Verdict::Fragment => eg.stats.count_drop(DropReason::Fragment),
        Verdict::BadChecksum => eg.stats.count_drop(DropReason::BadChecksum),
        Verdict::Malformed | Verdict::Mismatch => eg.stats.count_drop(DropReason::Malformed),
    }
}

/// Sends a relayed ICMP error, or counts why not: no error is ever
/// sent about an ICMP error (RFC 1122).
pub(super) fn after_relay<B: Buf, I: Io<Buf = B>>(
    eg: &mut Egress<B>,
    io: &mut I,
    pkt: B,
    v: Verdict,
    now: u64,
) {
    match v {
        Verdict::Forward => eg.send_ip(io, pkt, now),
        Verdict::TimeExceeded => eg.stats.count_drop(DropReason::TtlExceeded),
        Verdict::BadChecksum => eg.stats.count_drop(DropReason::BadChecksum),
        Verdict::Fragment => eg.stats.count_drop(DropReason::Fragment),
        Verdict::Malformed | Verdict::Mismatch => eg.stats.count_drop(DropReason::Malformed),
        _ => eg.stats.count_drop(DropReason::TooBig),
    }
}
