//! Routes to the TUN device over rtnetlink (RTM_NEWROUTE / RTM_DELROUTE), synchronously.
//!
//! Every route we add is remembered and removed again by `remove_all` or on drop, so a stopped
//! daemon leaves the kernel table as it found it. Routes carry their own protocol number
//! (`ip route show proto 86`), so leftovers of a crashed run are recognisable.

use super::SysError;
use ipnet::IpNet;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_NEWADDR: u16 = 20;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const RT_TABLE_MAIN: u8 = 254;
const RT_SCOPE_LINK: u8 = 253;
const RTN_UNICAST: u8 = 1;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_PRIORITY: u16 = 6;
/// Our routing protocol id (0x56, 'V'); the kernel only stores it.
pub const RTPROT_VPNGW: u8 = 86;

/// A route to a device, as added to the main table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelRoute {
    pub prefix: IpNet,
    pub ifindex: u32,
    pub metric: u32,
}

#[derive(Debug)]
pub struct RouteManager {
    sock: OwnedFd,
    seq: u32,
    installed: Vec<KernelRoute>,
}

impl RouteManager {
    pub fn new() -> Result<Self, SysError> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(SysError::Socket(io::Error::last_os_error()));
        }
        // SAFETY: `fd` is a fresh descriptor we own.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: zeroed sockaddr_nl is valid (pid 0: the kernel assigns one).
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: `addr` is a properly sized sockaddr_nl.
        let rc = unsafe {
            libc::bind(
                sock.as_raw_fd(),
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(SysError::Socket(io::Error::last_os_error()));
        }
        Ok(Self {
            sock,
            seq: 0,
            installed: Vec::new(),
        })
    }

    /// Routes `prefix` to interface `ifindex` (fails if the same route exists).
    pub fn add(&mut self, prefix: IpNet, ifindex: u32, metric: u32) -> Result<(), SysError> {
        let route = KernelRoute {
            prefix: prefix.trunc(),
            ifindex,
            metric,
        };
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &route)
            .map_err(|source| SysError::Route {
                op: "add",
                prefix,
                source,
            })?;
        self.installed.push(route);
        Ok(())
    }

    /// Removes a route this manager added.
    pub fn remove(&mut self, prefix: IpNet, ifindex: u32) -> Result<(), SysError> {
        let prefix = prefix.trunc();
        let Some(i) = self
            .installed
            .iter()
            .position(|r| r.prefix == prefix && r.ifindex == ifindex)
        else {
            return Err(SysError::Route {
                op: "remove",
                prefix,
                source: io::Error::new(io::ErrorKind::NotFound, "not added by vpngw"),
            });
        };
        let route = self.installed.remove(i);
        match self.request(RTM_DELROUTE, 0, &route) {
            // Already gone (e.g. the device was deleted, taking its routes along): fine.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            Err(source) => Err(SysError::Route {
                op: "remove",
                prefix,
                source,
            }),
            Ok(()) => Ok(()),
        }
    }

    pub fn installed(&self) -> &[KernelRoute] {
        &self.installed
    }

    /// Removes every route we added; returns the first error after trying them all.
    pub fn remove_all(&mut self) -> Result<(), SysError> {
        let mut first_err = None;
        while let Some(r) = self.installed.last().copied() {
            if let Err(e) = self.remove(r.prefix, r.ifindex) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Adds `addr` (with its prefix length) to interface `ifindex`, like `ip addr add`.
    /// Addresses go away with the interface, so they are not tracked for cleanup.
    pub fn add_address(&mut self, ifindex: u32, addr: IpNet) -> Result<(), SysError> {
        self.seq = self.seq.wrapping_add(1);
        let mut buf = [0u8; 128];
        let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        let r = encode_addr(&mut buf, flags, self.seq, ifindex, addr)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "message too long"))
            .and_then(|len| self.send_and_ack(buf.get(..len).unwrap_or_default()));
        r.map_err(|source| SysError::Route {
            op: "add address",
            prefix: addr,
            source,
        })
    }

    fn request(&mut self, kind: u16, flags: u16, route: &KernelRoute) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let mut buf = [0u8; 128];
        let len = encode(
            &mut buf,
            kind,
            NLM_F_REQUEST | NLM_F_ACK | flags,
            self.seq,
            route,
        )
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "message too long"))?;
        self.send_and_ack(buf.get(..len).unwrap_or_default())
    }

    fn send_and_ack(&mut self, msg: &[u8]) -> io::Result<()> {
        // SAFETY: sending `msg` from a valid buffer on our socket (kernel is the default peer).
        let sent = unsafe { libc::send(self.sock.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        self.wait_ack(self.seq)
    }

    fn wait_ack(&self, seq: u32) -> io::Result<()> {
        let mut buf = [0u8; 8192];
        loop {
            // SAFETY: receiving into a valid, writable buffer.
            let n =
                unsafe { libc::recv(self.sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let reply = buf.get(..n as usize).unwrap_or_default();
            if let Some(result) = parse_ack(reply, seq)? {
                return result;
            }
        }
    }
}

impl Drop for RouteManager {
    fn drop(&mut self) {
        // Best effort: a failure here cannot be reported to anyone but the log.
        let _ = self.remove_all();
    }
}

fn put(buf: &mut [u8], at: &mut usize, bytes: &[u8]) -> Option<()> {
    buf.get_mut(*at..*at + bytes.len())?.copy_from_slice(bytes);
    *at += bytes.len();
    Some(())
}

fn put_attr(buf: &mut [u8], at: &mut usize, kind: u16, data: &[u8]) -> Option<()> {
    let len = 4 + data.len();
    put(buf, at, &(len as u16).to_ne_bytes())?;
    put(buf, at, &kind.to_ne_bytes())?;
    put(buf, at, data)?;
    *at = (*at + 3) & !3;
    (*at <= buf.len()).then_some(())
}

/// nlmsghdr + rtmsg + RTA_DST + RTA_OIF + RTA_PRIORITY; returns the message length.
fn encode(buf: &mut [u8], kind: u16, flags: u16, seq: u32, r: &KernelRoute) -> Option<usize> {
    let (family, addr_buf, addr_len) = match r.prefix {
        IpNet::V4(n) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&n.network().octets());
            (libc::AF_INET as u8, b, 4)
        }
        IpNet::V6(n) => (libc::AF_INET6 as u8, n.network().octets(), 16),
    };
    let addr = addr_buf.get(..addr_len)?;
    let mut at = 16;
    let rtmsg = [
        family,
        r.prefix.prefix_len(),
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_VPNGW,
        RT_SCOPE_LINK,
        RTN_UNICAST,
    ];
    put(buf, &mut at, &rtmsg)?;
    put(buf, &mut at, &0u32.to_ne_bytes())?; // rtm_flags
    put_attr(buf, &mut at, RTA_DST, addr)?;
    put_attr(buf, &mut at, RTA_OIF, &r.ifindex.to_ne_bytes())?;
    put_attr(buf, &mut at, RTA_PRIORITY, &r.metric.to_ne_bytes())?;
    let len = at;
    let mut h = 0;
    put(buf, &mut h, &(len as u32).to_ne_bytes())?;
    put(buf, &mut h, &kind.to_ne_bytes())?;
    put(buf, &mut h, &flags.to_ne_bytes())?;
    put(buf, &mut h, &seq.to_ne_bytes())?;
    put(buf, &mut h, &0u32.to_ne_bytes())?;
    Some(len)
}

/// nlmsghdr + ifaddrmsg + IFA_LOCAL + IFA_ADDRESS (RTM_NEWADDR).
fn encode_addr(buf: &mut [u8], flags: u16, seq: u32, ifindex: u32, a: IpNet) -> Option<usize> {
    let (family, bytes, len) = match a {
        IpNet::V4(n) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&n.addr().octets());
            (libc::AF_INET as u8, b, 4)
        }
        IpNet::V6(n) => (libc::AF_INET6 as u8, n.addr().octets(), 16),
    };
    let addr = bytes.get(..len)?;
    let mut at = 16;
    put(buf, &mut at, &[family, a.prefix_len(), 0, 0])?; // family, prefixlen, flags, scope
    put(buf, &mut at, &ifindex.to_ne_bytes())?;
    put_attr(buf, &mut at, IFA_LOCAL, addr)?;
    put_attr(buf, &mut at, IFA_ADDRESS, addr)?;
    let total = at;
    let mut h = 0;
    put(buf, &mut h, &(total as u32).to_ne_bytes())?;
    put(buf, &mut h, &RTM_NEWADDR.to_ne_bytes())?;
    put(buf, &mut h, &flags.to_ne_bytes())?;
    put(buf, &mut h, &seq.to_ne_bytes())?;
    put(buf, &mut h, &0u32.to_ne_bytes())?;
    Some(total)
}

fn ne_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn ne_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// Finds the NLMSG_ERROR answering `seq` in a datagram: `Some(Ok)` for an ACK, `Some(Err)` for
/// a kernel error, `None` if this datagram does not answer it.
fn parse_ack(mut msgs: &[u8], seq: u32) -> io::Result<Option<io::Result<()>>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed netlink reply");
    while msgs.len() >= 16 {
        let len = ne_u32(msgs, 0).ok_or_else(bad)? as usize;
        let kind = ne_u16(msgs, 4).ok_or_else(bad)?;
        let mseq = ne_u32(msgs, 8).ok_or_else(bad)?;
        if len < 16 || len > msgs.len() {
            return Err(bad());
        }
        if kind == NLMSG_ERROR && mseq == seq {
            let errno = ne_u32(msgs, 16).ok_or_else(bad)? as i32;
            return Ok(Some(if errno == 0 {
                Ok(())
            } else {
                Err(io::Error::from_raw_os_error(-errno))
            }));
        }
        let next = (len + 3) & !3;
        msgs = msgs.get(next..).unwrap_or_default();
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_an_ipv4_device_route() {
        let mut buf = [0u8; 128];
        let r = KernelRoute {
            prefix: "10.99.0.0/16".parse().unwrap(),
            ifindex: 7,
            metric: 0,
        };
        let n = encode(&mut buf, RTM_NEWROUTE, 0x605, 9, &r).unwrap();
        assert_eq!(n, 16 + 12 + 8 + 8 + 8);
        let m = &buf[..n];
        assert_eq!(ne_u32(m, 0), Some(n as u32));
        assert_eq!(
            (ne_u16(m, 4), ne_u16(m, 6), ne_u32(m, 8)),
            (Some(24), Some(0x605), Some(9))
        );
        assert_eq!(&m[16..24], &[2, 16, 0, 0, 254, 86, 253, 1]);
        assert_eq!((ne_u16(m, 28), ne_u16(m, 30)), (Some(8), Some(RTA_DST)));
        assert_eq!(&m[32..36], &[10, 99, 0, 0]);
        assert_eq!(
            (ne_u16(m, 36), ne_u16(m, 38), ne_u32(m, 40)),
            (Some(8), Some(RTA_OIF), Some(7))
        );
    }

    #[test]
    fn encodes_ipv6_with_host_bits_cleared_by_add() {
        let mut buf = [0u8; 128];
        let r = KernelRoute {
            prefix: "2001:db8::/32".parse().unwrap(),
            ifindex: 3,
            metric: 100,
        };
        let n = encode(&mut buf, RTM_DELROUTE, 0, 1, &r).unwrap();
        assert_eq!(n, 16 + 12 + 20 + 8 + 8);
        assert_eq!(buf[16], libc::AF_INET6 as u8);
        assert_eq!(ne_u16(&buf, 28), Some(20));
        assert!(
            encode(&mut [0u8; 40], RTM_DELROUTE, 0, 1, &r).is_none(),
            "short buffer"
        );
    }

    #[test]
    fn parses_acks_errors_and_garbage() {
        let msg = |seq: u32, errno: i32| {
            let mut m = Vec::new();
            m.extend_from_slice(&36u32.to_ne_bytes());
            m.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
            m.extend_from_slice(&0u16.to_ne_bytes());
            m.extend_from_slice(&seq.to_ne_bytes());
            m.extend_from_slice(&0u32.to_ne_bytes());
            m.extend_from_slice(&errno.to_ne_bytes());
            m.extend_from_slice(&[0u8; 16]);
            m
        };
        assert!(matches!(parse_ack(&msg(5, 0), 5), Ok(Some(Ok(())))));
        let e = parse_ack(&msg(5, -libc::EEXIST), 5)
            .unwrap()
            .unwrap()
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
        assert!(matches!(parse_ack(&msg(4, 0), 5), Ok(None)));
        let mut two = msg(4, 0);
        two.extend(msg(5, -libc::EPERM));
        assert!(matches!(parse_ack(&two, 5), Ok(Some(Err(_)))));
        let mut bad = msg(5, 0);
        bad[0] = 200;
        assert!(parse_ack(&bad, 5).is_err());
        for n in 0..36 {
            let _ = parse_ack(&msg(5, 0)[..n], 5);
        }
    }
}
