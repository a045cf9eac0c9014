//! The underlay path MTU towards a peer, as the kernel's routing knows it.

use socket2::{Domain, Socket, Type};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

/// IPv4 header without options, IPv6 fixed header.
const IPV4_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;
const UDP_HEADER: usize = 8;

/// The path MTU from `local` to `peer`: a UDP socket bound and connected between them
/// (nothing is sent) asked for `IP_MTU`/`IPV6_MTU`, which is the route's MTU or one the
/// kernel learned from ICMP.
pub fn path_mtu(local: IpAddr, peer: SocketAddr) -> io::Result<usize> {
    let sock = Socket::new(Domain::for_address(peer), Type::DGRAM, None)?;
    sock.bind(&SocketAddr::new(local, 0).into())?;
    sock.connect(&peer.into())?;
    let (level, name) = match peer {
        SocketAddr::V4(_) => (libc::IPPROTO_IP, libc::IP_MTU),
        SocketAddr::V6(_) => (libc::IPPROTO_IPV6, libc::IPV6_MTU),
    };
    let mut mtu: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `mtu` and `len` are live and sized for the int the kernel writes.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&mut mtu as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    usize::try_from(mtu).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "negative MTU"))
}

/// The largest UDP payload (an ESP packet in UDP encapsulation) that fits the path MTU
/// to `peer` unfragmented.
pub fn udp_payload_limit(local: IpAddr, peer: SocketAddr) -> io::Result<usize> {
    let ip = if peer.is_ipv4() {
        IPV4_HEADER
    } else {
        IPV6_HEADER
    };
    path_mtu(local, peer)?
        .checked_sub(ip + UDP_HEADER)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "path MTU below the headers"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_path_has_the_loopback_mtu() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let mtu = path_mtu(lo, SocketAddr::new(lo, 4500)).unwrap();
        let dev: usize = std::fs::read_to_string("/sys/class/net/lo/mtu")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // An IP packet's length field caps what the kernel reports (lo may say 65536).
        let dev = dev.min(65535);
        assert_eq!(mtu, dev);
        assert_eq!(
            udp_payload_limit(lo, SocketAddr::new(lo, 4500)).unwrap(),
            dev - 28
        );
    }

    #[test]
    fn an_address_we_do_not_have_is_an_error() {
        // TEST-NET-1 is assigned to no host here: bind fails.
        let r = path_mtu(
            "192.0.2.1".parse().unwrap(),
            "127.0.0.1:4500".parse().unwrap(),
        );
        assert!(r.is_err());
    }
}
