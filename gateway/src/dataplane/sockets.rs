//! The underlay UDP sockets: ports 500 and 4500 on each local address.

use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};

pub const IKE_PORT: u16 = 500;
pub const NAT_T_PORT: u16 = 4500;

/// An IKE message for the control plane: our address it arrived on, the sender, the bytes
/// (on port 4500 still with the non-ESP marker, as `ike::Tunnel` expects).
#[derive(Debug)]
pub struct IkeDatagram {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub bytes: Vec<u8>,
}

/// One bound socket: our address, the socket, and whether it is one of the ESP
/// (`SO_REUSEPORT`) sockets on 4500 that a worker owns.
#[derive(Debug)]
pub struct Bound {
    pub local: SocketAddr,
    pub sock: UdpSocket,
    /// Index of the worker owning it on port 4500 (`None` on port 500).
    pub worker: Option<usize>,
}

#[derive(Debug)]
pub struct UnderlaySockets {
    sockets: Vec<Bound>,
}

/// Socket buffer size asked for: bursts of ESP wait here instead of being dropped while
/// the worker decrypts.
const SOCKET_BUFFER: libc::c_int = 8 << 20;

/// Best effort: `SO_*BUFFORCE` (root) past `net.core.[rw]mem_max`, else the plain option.
fn grow_buffers(sock: &UdpSocket) {
    use std::os::fd::AsRawFd;
    let set = |opt: libc::c_int| {
        // SAFETY: setsockopt on our own socket with a pointer to a live c_int of the given size.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&SOCKET_BUFFER as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    for (force, plain) in [
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    ] {
        if set(force) != 0 {
            set(plain);
        }
    }
}

fn bind_one(addr: SocketAddr, reuse_port: bool) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    if reuse_port {
        sock.set_reuse_port(true)?;
    }
    allow_fragments(&sock, addr.is_ipv6())?;
    sock.bind(&addr.into())?;
    Ok(sock.into())
}

/// Lets the kernel fragment ESP datagrams larger than the underlay's path MTU (outer DF
/// not set), as kernel ESP and WireGuard do. With the default (DF set, path MTU
/// discovery) a tunnel MTU that does not fit the underlay lost every full-size packet:
/// GSO runs of such datagrams are dropped by the kernel after the send has succeeded.
fn allow_fragments(sock: &impl std::os::fd::AsRawFd, ipv6: bool) -> io::Result<()> {
    let (level, opt, value) = if ipv6 {
        (
            libc::IPPROTO_IPV6,
            libc::IPV6_MTU_DISCOVER,
            libc::IPV6_PMTUDISC_DONT,
        )
    } else {
        (
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_DONT,
        )
    };
    // SAFETY: setsockopt on our own socket with a pointer to a live c_int of the given size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            opt,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl UnderlaySockets {
    /// Binds 500 once and 4500 `workers` times (`SO_REUSEPORT`) on every address in
    /// `locals`.
    pub fn bind(locals: &BTreeSet<IpAddr>, workers: usize) -> io::Result<Self> {
        let mut sockets = Vec::new();
        for ip in locals {
            let addr = SocketAddr::new(*ip, IKE_PORT);
            let sock = bind_one(addr, false)
                .map_err(|e| io::Error::new(e.kind(), format!("bind UDP {addr}: {e}")))?;
            sockets.push(Bound {
                local: addr,
                sock,
                worker: None,
            });
            let addr = SocketAddr::new(*ip, NAT_T_PORT);
            for w in 0..workers.max(1) {
                let sock = bind_one(addr, workers > 1)
                    .map_err(|e| io::Error::new(e.kind(), format!("bind UDP {addr}: {e}")))?;
                grow_buffers(&sock);
                sockets.push(Bound {
                    local: addr,
                    sock,
                    worker: Some(w),
                });
            }
        }
        Ok(UnderlaySockets { sockets })
    }

    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<&Bound> {
        self.sockets.get(index)
    }

    /// A socket bound to `local` (the first one: the control plane's choice).
    pub fn find(&self, local: SocketAddr) -> Option<&UdpSocket> {
        self.sockets
            .iter()
            .find(|b| b.local == local)
            .map(|b| &b.sock)
    }

    /// The socket of `worker` on `local` (port 4500), else any on `local`.
    pub fn for_worker(&self, local: SocketAddr, worker: usize) -> Option<&UdpSocket> {
        self.sockets
            .iter()
            .find(|b| b.local == local && b.worker == Some(worker))
            .map(|b| &b.sock)
            .or_else(|| self.find(local))
    }

    pub fn send(&self, local: SocketAddr, remote: SocketAddr, bytes: &[u8]) -> io::Result<usize> {
        let sock = self.find(local).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("no socket on {local}"),
            )
        })?;
        sock.send_to(bytes, remote)
    }
}
