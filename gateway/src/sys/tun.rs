//! The TUN device carrying inner packets between the kernel and vpngw (raw IP, no PI header).
//!
//! Opened with `IFF_VNET_HDR` and TSO/checksum offloads when the kernel allows: the kernel
//! then hands us TCP super-packets of up to 64 KiB (split into MTU-sized segments by
//! [`Tun::recv_batch`]) and takes coalesced ones from [`Tun::write_vnet_gather`], which
//! saves most per-packet syscalls. With `IFF_MULTI_QUEUE` each worker thread owns one
//! queue (its own file descriptor); the kernel spreads flows over the queues.
//! The queues are non-blocking: workers read until `EAGAIN`, then wait in `poll` together
//! with the dataplane's stop event, so shutdown needs no timeout.

use super::SysError;
use ipnet::IpNet;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

pub use tun_rs::VIRTIO_NET_HDR_LEN;

/// Pieces one gathered write may have (a header and a super-packet's payloads).
pub const MAX_GATHER: usize = 128;

#[derive(Debug, Clone)]
pub struct TunConfig {
    /// Interface name (at most 15 bytes).
    pub name: String,
    pub mtu: u16,
    /// Addresses with prefix length, e.g. the tunnel inner address 169.254.10.2/30.
    pub addresses: Vec<IpNet>,
    /// Queues to open (one per worker); at least 1.
    pub queues: usize,
}

pub struct Tun {
    queues: Vec<tun_rs::SyncDevice>,
    name: String,
    index: u32,
    /// The device carries a virtio-net header before each packet (offloads on).
    vnet_hdr: bool,
    /// It also takes UDP GSO super-packets (`TUN_F_USO4/6`).
    udp_gso: bool,
}

impl std::fmt::Debug for Tun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tun")
            .field("name", &self.name)
            .field("index", &self.index)
            .field("queues", &self.queues.len())
            .field("offload", &self.vnet_hdr)
            .field("udp_offload", &self.udp_gso)
            .finish()
    }
}

impl Tun {
    /// Creates the device, sets MTU and addresses and brings it up. It disappears when dropped.
    /// Falls back to one plain queue when the kernel refuses offloads or multi-queue.
    pub fn create(cfg: &TunConfig) -> Result<Tun, SysError> {
        let err = |source| SysError::Tun {
            name: cfg.name.clone(),
            source,
        };
        let queues = cfg.queues.max(1);
        let first = match Self::build(cfg, true, queues > 1) {
            Ok(dev) => dev,
            Err(e) => {
                tracing::warn!(error = %e, "TUN offloads or multi-queue refused; one plain queue");
                Self::build(cfg, false, false).map_err(err)?
            }
        };
        let vnet_hdr = first.tcp_gso();
        let udp_gso = vnet_hdr && first.udp_gso();
        let name = first.name().map_err(err)?;
        let index = first.if_index().map_err(err)?;
        let mut devs = vec![first];
        while devs.len() < queues {
            match devs.first().map(tun_rs::SyncDevice::try_clone) {
                Some(Ok(q)) => devs.push(q),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, queues = devs.len(), "extra TUN queue refused");
                    break;
                }
                None => break,
            }
        }
        for d in &devs {
            d.set_nonblocking(true).map_err(err)?;
        }
        Ok(Tun {
            queues: devs,
            name,
            index,
            vnet_hdr,
            udp_gso,
        })
    }

    fn build(cfg: &TunConfig, offload: bool, multi_queue: bool) -> io::Result<tun_rs::SyncDevice> {
        let mut builder = tun_rs::DeviceBuilder::new()
            .name(cfg.name.clone())
            .mtu(cfg.mtu)
            .packet_information(false)
            .offload(offload)
            .multi_queue(multi_queue)
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
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "at most one IPv4 address per TUN device",
            ));
        }
        if let Some(n) = v4.first() {
            builder = builder.ipv4(n.addr(), n.prefix_len(), None);
        }
        for net in &cfg.addresses {
            if let IpNet::V6(n) = net {
                builder = builder.ipv6(n.addr(), n.prefix_len());
            }
        }
        builder.build_sync()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Interface index, for routes (`RTA_OIF`).
    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn mtu(&self) -> io::Result<u16> {
        self.queue(0)?.mtu()
    }

    /// Number of open queues.
    pub fn queues(&self) -> usize {
        self.queues.len()
    }

    /// Whether TSO/GRO offloads are on.
    pub fn offload(&self) -> bool {
        self.vnet_hdr
    }

    /// Whether UDP super-packets may be written (UDP GSO offload on).
    pub fn udp_offload(&self) -> bool {
        self.udp_gso
    }

    /// The file descriptor of queue `q`, to wait on.
    pub fn fd(&self, q: usize) -> io::Result<RawFd> {
        Ok(self.queue(q)?.as_raw_fd())
    }

    fn queue(&self, q: usize) -> io::Result<&tun_rs::SyncDevice> {
        self.queues
            .get(q)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such TUN queue"))
    }

    /// Reads what the kernel routed into queue `q`: one packet, or one super-packet split
    /// into segments (checksums completed). Segment `i` lands in `bufs[i][offset..]` with
    /// length `sizes[i]`; `raw` holds the read (virtio header + up to 64 KiB). Returns the
    /// number of segments; `WouldBlock` when nothing is queued.
    pub fn recv_batch<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        q: usize,
        raw: &mut [u8],
        bufs: &mut [B],
        sizes: &mut [usize],
        offset: usize,
    ) -> io::Result<usize> {
        self.queue(q)?.recv_multiple(raw, bufs, sizes, offset)
    }

    /// Writes one packet gathered from `head` (the virtio-net header and the packet's
    /// first bytes) and `rest`, in one `writev`: the kernel copies the pieces straight
    /// into its buffer. Without offloads the header must be all zero and is left out.
    pub fn write_vnet_gather(&self, q: usize, head: &[u8], rest: &[&[u8]]) -> io::Result<usize> {
        let dev = self.queue(q)?;
        let head = if self.vnet_hdr {
            head
        } else {
            match head.split_at_checked(VIRTIO_NET_HDR_LEN) {
                Some((hdr, first)) if hdr.iter().all(|b| *b == 0) => first,
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "GSO packet for a TUN device without offloads",
                    ))
                }
            }
        };
        let empty = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        let mut iov = [empty; MAX_GATHER];
        let pieces = std::iter::once(head).chain(rest.iter().copied());
        let mut n = 0;
        for (slot, piece) in iov.iter_mut().zip(pieces) {
            *slot = libc::iovec {
                iov_base: piece.as_ptr() as *mut libc::c_void,
                iov_len: piece.len(),
            };
            n += 1;
        }
        if n != rest.len() + 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "too many pieces for one TUN write",
            ));
        }
        // SAFETY: `n` iovecs pointing into live buffers the kernel only reads.
        let written = unsafe { libc::writev(dev.as_raw_fd(), iov.as_ptr(), n as libc::c_int) };
        if written < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(usize::try_from(written).unwrap_or(0))
    }

    /// Packets the kernel dropped because a queue of this device was full (vpngw read
    /// them too slowly): the device's transmit drops in `/proc/net/dev`, which shows the
    /// network namespace of the reading process, i.e. this device's.
    pub fn queue_drops(&self) -> io::Result<u64> {
        let table = std::fs::read_to_string("/proc/net/dev")?;
        tx_dropped(&table, &self.name).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} not in /proc/net/dev", self.name),
            )
        })
    }

    /// Waits up to `timeout` for one packet on queue 0 (checksums completed; a
    /// super-packet that would split into several segments is an error). For tools and
    /// tests: the dataplane uses `recv_batch`.
    pub fn recv_timeout(&self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>> {
        let mut pfd = libc::pollfd {
            fd: self.fd(0)?,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n == 0 {
            return Ok(None);
        }
        let mut raw = vec![0u8; VIRTIO_NET_HDR_LEN + 65535];
        let mut sizes = [0usize; 1];
        match self.recv_batch(0, &mut raw, &mut [buf], &mut sizes, 0) {
            Ok(_) => Ok(Some(sizes[0])),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Hands one packet to the kernel as if it arrived on this interface.
    pub fn send(&self, pkt: &[u8]) -> io::Result<usize> {
        // A zeroed virtio-net header: no GSO, checksum already complete.
        let hdr = [0u8; VIRTIO_NET_HDR_LEN];
        let written = self.write_vnet_gather(0, &hdr, &[pkt])?;
        Ok(if self.vnet_hdr {
            written.saturating_sub(hdr.len())
        } else {
            written
        })
    }
}

/// The transmit drops of device `name` in the text of `/proc/net/dev` (after the name:
/// eight receive columns, then transmit bytes, packets, errs, drop, ...).
fn tx_dropped(table: &str, name: &str) -> Option<u64> {
    table.lines().find_map(|line| {
        let (dev, counters) = line.split_once(':')?;
        if dev.trim() != name {
            return None;
        }
        counters.split_whitespace().nth(11)?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transmit_drops_come_from_the_devices_own_line() {
        let table = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  123456     789    0    0    0     0          0         0   123456     789    0    0    0     0       0          0
vpngw0: 9876543   4321    0    5    0     0          0         0 55555555  77777    0  912    0     0       0          0
vpngw00:     1       1    0    0    0     0          0         0        1       1    0    3    0     0       0          0
";
        assert_eq!(tx_dropped(table, "vpngw0"), Some(912));
        assert_eq!(tx_dropped(table, "vpngw00"), Some(3));
        assert_eq!(tx_dropped(table, "lo"), Some(0));
        assert_eq!(tx_dropped(table, "wan0"), None);
        assert_eq!(tx_dropped("vpngw0: 1 2 3", "vpngw0"), None);
    }

    #[test]
    fn this_machines_table_parses() {
        let table = std::fs::read_to_string("/proc/net/dev").unwrap();
        assert!(tx_dropped(&table, "lo").is_some(), "{table}");
    }
}
