//! The TUN device carrying inner packets between the kernel and vpngw (raw IP, no PI header).

use super::SysError;
use ipnet::IpNet;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct TunConfig {
    /// Interface name (at most 15 bytes).
    pub name: String,
    pub mtu: u16,
    /// Addresses with prefix length, e.g. the tunnel inner address 169.254.10.2/30.
    pub addresses: Vec<IpNet>,
}

pub struct Tun {
    dev: tun_rs::SyncDevice,
    name: String,
    index: u32,
}

impl std::fmt::Debug for Tun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tun")
            .field("name", &self.name)
            .field("index", &self.index)
            .finish()
    }
}

impl Tun {
    /// Creates the device, sets MTU and addresses and brings it up. It disappears when dropped.
    pub fn create(cfg: &TunConfig) -> Result<Tun, SysError> {
        let err = |source| SysError::Tun {
            name: cfg.name.clone(),
            source,
        };
        let mut builder = tun_rs::DeviceBuilder::new()
            .name(cfg.name.clone())
            .mtu(cfg.mtu)
            .packet_information(false)
            .enable(true);
        let v4: Vec<_> = cfg
            .addresses
            .iter()
            .filter_map(|n| match n {
                IpNet::V4(n) => Some(*n),
                IpNet::V6(_) => None,
            })
            .collect();
        if v4.len() > 1 {
            return Err(err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "at most one IPv4 address per TUN device",
            )));
        }
        if let Some(n) = v4.first() {
            builder = builder.ipv4(n.addr(), n.prefix_len(), None);
        }
        for net in &cfg.addresses {
            if let IpNet::V6(n) = net {
                builder = builder.ipv6(n.addr(), n.prefix_len());
            }
        }
        let dev = builder.build_sync().map_err(err)?;
        let name = dev.name().map_err(err)?;
        let index = dev.if_index().map_err(err)?;
        Ok(Tun { dev, name, index })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Interface index, for routes (`RTA_OIF`).
    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn mtu(&self) -> io::Result<u16> {
        self.dev.mtu()
    }

    /// Reads one packet the kernel routed into the device (blocks).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.dev.recv(buf)
    }

    /// Waits up to `timeout` for a packet; `Ok(None)` on timeout.
    pub fn recv_timeout(&self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>> {
        if !poll_readable(self.dev.as_raw_fd(), timeout)? {
            return Ok(None);
        }
        self.recv(buf).map(Some)
    }

    /// Hands one packet to the kernel as if it arrived on this interface.
    pub fn send(&self, pkt: &[u8]) -> io::Result<usize> {
        self.dev.send(pkt)
    }
}

fn poll_readable(fd: RawFd, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd for the duration of the call.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n > 0)
}
