//! VRRP frames in and out: what a received frame says once every check
//! that needs no instance has passed, and the frames a director sends
//! (adverts, gratuitous ARPs). Parsing goes through `fastpath`'s typed
//! views, so no offset is computed twice.

use fastpath::wire::arp::{ArpPacket, OP_REQUEST};
use fastpath::wire::vrrp::{self, Advert, VrrpPacket};
use fastpath::wire::{checksum, ethernet, EtherType, EthernetFrame, Ipv4Packet, MacAddr};
use std::net::Ipv4Addr;

/// The MAC of the IPv4 group 224.0.0.18.
pub const GROUP_MAC: MacAddr = MacAddr([0x01, 0x00, 0x5e, 0x00, 0x00, 0x12]);
/// IP precedence "internetwork control", as keepalived marks adverts.
const TOS: u8 = 0xc0;

/// An advert that passed the checks every instance shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heard {
    pub src_mac: MacAddr,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub version: u8,
    pub vrid: u8,
    pub priority: u8,
    pub interval_cs: u16,
    pub addresses: Vec<Ipv4Addr>,
    pub auth_type: u8,
    pub auth: [u8; vrrp::AUTH_LEN],
}

/// Why a frame was ignored: the counter it is counted under.
pub type Reject = &'static str;

/// Reads a frame the data plane passed up.
pub fn parse(frame: &[u8]) -> Result<Heard, Reject> {
    let eth = EthernetFrame::new_checked(frame).map_err(|_| "bad_length")?;
    if eth.ethertype() != EtherType::IPV4 {
        return Err("bad_length");
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).map_err(|_| "bad_length")?;
    if ip.protocol() != vrrp::PROTO || !ip.verify_checksum() || ip.is_fragment() {
        return Err("bad_ip");
    }
    // RFC 5798 §7.1: a hop away is not on this segment.
    if ip.ttl() != vrrp::TTL {
        return Err("bad_ttl");
    }
    let (src, dst) = (ip.src(), ip.dst());
    let buf = ip.payload();
    if buf.len() < vrrp::HEADER_LEN {
        return Err("bad_length");
    }
    let version = buf[0] >> 4;
    if version != 2 && version != 3 {
        return Err("bad_version");
    }
    if buf[0] & 0x0f != vrrp::TYPE_ADVERT {
        return Err("bad_type");
    }
    let p = VrrpPacket::new_checked(buf).map_err(|_| "bad_length")?;
    if !p.verify_checksum(src, dst) {
        return Err("bad_checksum");
    }
    let mut auth = [0; vrrp::AUTH_LEN];
    auth[..p.auth_data().len()].copy_from_slice(p.auth_data());
    Ok(Heard {
        src_mac: eth.src(),
        src,
        dst,
        version,
        vrid: p.vrid(),
        priority: p.priority(),
        interval_cs: p.interval_cs(),
        addresses: p.addresses().collect(),
        auth_type: if version == 2 { p.auth_type() } else { 0 },
        auth,
    })
}

/// The advert `a` from `src` to `dst` as a frame from `src_mac`. For a
/// unicast `dst` the Ethernet destination is left for the data plane to
/// fill in (`Frame::routed`).
pub fn advert_frame(
    a: &Advert,
    src_mac: MacAddr,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ident: u16,
) -> Option<Vec<u8>> {
    let vlen = a.message_len();
    let total = 20 + vlen;
    let mut f = vec![0u8; (ethernet::HEADER_LEN + total).max(ethernet::MIN_FRAME_LEN)];
    {
        let mut eth = EthernetFrame::new_checked(&mut f[..]).ok()?;
        eth.set_dst(if dst.is_multicast() {
            GROUP_MAC
        } else {
            MacAddr::ZERO
        });
        eth.set_src(src_mac);
        eth.set_ethertype(EtherType::IPV4);
    }
    let ip = &mut f[ethernet::HEADER_LEN..ethernet::HEADER_LEN + total];
    ip[0] = 0x45;
    ip[1] = TOS;
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&ident.to_be_bytes());
    ip[8] = vrrp::TTL;
    ip[9] = vrrp::PROTO;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let c = checksum::checksum(&ip[..20]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    vrrp::emit(a, src, dst, &mut ip[20..])?;
    Some(f)
}

/// A gratuitous ARP request for `addr` from `mac` (sender = target, as
/// Linux and keepalived send them), padded to the minimum frame.
pub fn garp_frame(mac: MacAddr, addr: Ipv4Addr) -> Vec<u8> {
    let mut f = vec![0u8; ethernet::MIN_FRAME_LEN];
    if let Ok(mut eth) = EthernetFrame::new_checked(&mut f[..]) {
        eth.set_dst(MacAddr::BROADCAST);
        eth.set_src(mac);
        eth.set_ethertype(EtherType::ARP);
    }
    let _ = ArpPacket::emit(
        &mut f[ethernet::HEADER_LEN..],
        OP_REQUEST,
        mac,
        addr,
        MacAddr::ZERO,
        addr,
    );
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);

    fn v3(priority: u8) -> Vec<u8> {
        let addrs = [a("10.0.0.100")];
        let adv = Advert {
            version: 3,
            vrid: 51,
            priority,
            interval_cs: 10,
            addresses: &addrs,
            password: None,
        };
        advert_frame(&adv, MAC, a("10.0.0.1"), vrrp::GROUP, 7).unwrap()
    }

    #[test]
    fn an_advert_frame_reads_back() {
        let f = v3(150);
        assert_eq!(f.len(), 60, "padded: 14 + 20 + 12 is under the minimum");
        assert_eq!(&f[..6], GROUP_MAC.as_bytes());
        let h = parse(&f).unwrap();
        assert_eq!(
            h,
            Heard {
                src_mac: MAC,
                src: a("10.0.0.1"),
                dst: vrrp::GROUP,
                version: 3,
                vrid: 51,
                priority: 150,
                interval_cs: 10,
                addresses: vec![a("10.0.0.100")],
                auth_type: 0,
                auth: [0; 8],
            }
        );
        // IP: TOS 0xc0, TTL 255, protocol 112, a good header checksum.
        assert_eq!((f[15], f[22], f[23]), (0xc0, 255, 112));
        assert_eq!(checksum::checksum(&f[14..34]), 0);
    }

    /// Each shared check, by the counter it lands in.
    #[test]
    fn bad_frames_are_named() {
        let mut f = v3(100);
        f[22] = 254;
        let c = checksum::checksum(&{
            let mut h = f[14..34].to_vec();
            h[10] = 0;
            h[11] = 0;
            h
        });
        f[24..26].copy_from_slice(&c.to_be_bytes());
        assert_eq!(parse(&f), Err("bad_ttl"));
        let mut f = v3(100);
        f[34 + 7] ^= 1;
        assert_eq!(parse(&f), Err("bad_checksum"));
        let mut f = v3(100);
        f[34] = 0x41;
        assert_eq!(parse(&f), Err("bad_version"));
        let mut f = v3(100);
        f[34] = 0x32;
        assert_eq!(parse(&f), Err("bad_type"));
        let mut f = v3(100);
        f[34 + 3] = 9;
        assert_eq!(parse(&f), Err("bad_length"), "count past the end");
        assert_eq!(parse(&f[..20]), Err("bad_length"));
        let mut f = v3(100);
        f[14 + 10] ^= 0xff;
        assert_eq!(parse(&f), Err("bad_ip"));
    }

    #[test]
    fn garp_is_a_request_for_itself() {
        let f = garp_frame(MAC, a("10.0.0.100"));
        let eth = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!(
            (eth.dst(), eth.ethertype()),
            (MacAddr::BROADCAST, EtherType::ARP)
        );
        let p = ArpPacket::new_checked(eth.payload()).unwrap();
        assert_eq!(p.operation(), OP_REQUEST);
        assert_eq!((p.sender_mac(), p.sender_ip()), (MAC, a("10.0.0.100")));
        assert_eq!(p.target_ip(), a("10.0.0.100"));
    }
}
