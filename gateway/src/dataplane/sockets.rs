//! The underlay UDP sockets: ports 500 and 4500 on each local address.

use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

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

#[derive(Debug)]
pub struct UnderlaySockets {
    sockets: Vec<(SocketAddr, UdpSocket)>,
}

/// Socket buffer size asked for: bursts of ESP wait here instead of being dropped while
/// the one worker per socket decrypts.
const SOCKET_BUFFER: libc::c_int = 4 << 20;

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

impl UnderlaySockets {
    /// Binds 500 and 4500 on every address in `locals`.
    pub fn bind(locals: &BTreeSet<IpAddr>, read_timeout: Duration) -> io::Result<Self> {
        let mut sockets = Vec::new();
        for ip in locals {
            for port in [IKE_PORT, NAT_T_PORT] {
                let addr = SocketAddr::new(*ip, port);
                let sock = UdpSocket::bind(addr)
                    .map_err(|e| io::Error::new(e.kind(), format!("bind UDP {addr}: {e}")))?;
                sock.set_read_timeout(Some(read_timeout))?;
                grow_buffers(&sock);
                sockets.push((addr, sock));
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

    pub fn get(&self, index: usize) -> Option<&(SocketAddr, UdpSocket)> {
        self.sockets.get(index)
    }

    /// The socket bound to `local`.
    pub fn find(&self, local: SocketAddr) -> Option<&UdpSocket> {
        self.sockets
            .iter()
            .find(|(a, _)| *a == local)
            .map(|(_, s)| s)
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
