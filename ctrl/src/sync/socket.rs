//! The kernel sockets sync travels on (reference 8.1): the master sends
//! from a UDP socket bound to the multicast interface and connected to
//! the group, multicast loop off; the backup (and a master listening for
//! full-transfer requests) binds the group and port on that interface and
//! joins the group there. Address reuse lets both roles, or a master's
//! request listener and a backup, share the port on one node.

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};

/// The interface's index, from sysfs (no `unsafe` needed).
pub fn ifindex(ifname: &str) -> io::Result<u32> {
    if ifname.is_empty() || ifname.len() > 15 || ifname.contains('/') || ifname.starts_with('.') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name `{ifname}`"),
        ));
    }
    let s = std::fs::read_to_string(format!("/sys/class/net/{ifname}/ifindex"))
        .map_err(|e| io::Error::new(e.kind(), format!("no interface {ifname}: {e}")))?;
    s.trim()
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "unreadable ifindex"))
}

/// The MTU of `ifname` (the backup's default maxlen follows it).
pub fn mtu(ifname: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/sys/class/net/{ifname}/mtu"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The master's sending socket. The kernel picks the interface's primary
/// address as the source when it connects (the socket is bound to the
/// device), which is the address IPVS binds to explicitly.
pub fn sender(ifname: &str, group: Ipv4Addr, port: u16, ttl: u8) -> io::Result<UdpSocket> {
    ifindex(ifname)?;
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.bind_device(Some(ifname.as_bytes()))?;
    s.set_multicast_loop_v4(false)?;
    s.set_multicast_ttl_v4(ttl as u32)?;
    s.bind(&SockAddr::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)))?;
    s.connect(&SockAddr::from(SocketAddrV4::new(group, port)))?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// A socket that receives what is sent to `group:port` on `ifname`.
pub fn receiver(ifname: &str, group: Ipv4Addr, port: u16, rcvbuf: usize) -> io::Result<UdpSocket> {
    let index = ifindex(ifname)?;
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.bind_device(Some(ifname.as_bytes()))?;
    // A burst of a full transfer must not overflow the socket while the
    // thread is between reads; the kernel caps this at rmem_max.
    let _ = s.set_recv_buffer_size(rcvbuf);
    s.bind(&SockAddr::from(SocketAddrV4::new(group, port)))?;
    s.join_multicast_v4_n(&group, &InterfaceIndexOrAddress::Index(index))?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}
