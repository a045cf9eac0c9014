//! Batched UDP I/O: `recvmmsg` with UDP GRO (several datagrams of one flow in one buffer)
//! and `sendmsg` with UDP GSO (`UDP_SEGMENT`: one call sends a run of equal-sized
//! datagrams gathered from several buffers), `sendmmsg` where GSO is refused.
//! All buffers and headers are allocated once per worker.

use socket2::SockAddr;
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

/// Buffers per `recvmmsg`. With UDP GRO each holds up to 64 KiB of one peer's ESP, so 8
/// already take about 350 full-sized datagrams a call, and the buffers (512 KiB) stay
/// within a core's L2 cache until the TUN write has copied the decrypted packets out;
/// 32 (2 MiB a worker) measured no better (stop 15: 14 paired rounds, TCPx1 0.41 vs 0.40
/// of the plain path, 64-byte pps equal).
pub const RECV_BATCH: usize = 8;
/// Largest UDP payload, and the room for one GRO-coalesced receive.
const RECV_BUF: usize = 65536;
/// Kernel limits of one GSO send (UDP_MAX_SEGMENTS, 64 KiB less headers).
pub const GSO_MAX_SEGMENTS: usize = 64;
pub const GSO_MAX_BYTES: usize = 65000;

/// Asks the kernel to coalesce received datagrams of one flow (Linux >= 5.0).
pub fn enable_gro(fd: RawFd) -> bool {
    setsockopt_int(fd, libc::SOL_UDP, libc::UDP_GRO, 1)
}

/// Asks the kernel to report each received datagram's TOS (IPv4) or traffic class
/// (IPv6): what the underlay says about congestion (ECN) and the outer DSCP.
pub fn enable_tos(fd: RawFd, ipv6: bool) -> bool {
    if ipv6 {
        setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVTCLASS, 1)
    } else {
        setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_RECVTOS, 1)
    }
}

/// Asks the kernel to report, with each received datagram, how many datagrams the socket
/// has dropped so far (its receive buffer was full): `SO_RXQ_OVFL`.
pub fn enable_drop_count(fd: RawFd) -> bool {
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 1)
}

fn setsockopt_int(fd: RawFd, level: libc::c_int, opt: libc::c_int, v: libc::c_int) -> bool {
    // SAFETY: setsockopt with a pointer to a live c_int of the given size.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
    }
}

/// Room for a `UDP_GRO`, an `SO_RXQ_OVFL` and an `IP_TOS`/`IPV6_TCLASS` control message
/// (up to an int each), and on sending for `UDP_SEGMENT` and the TOS.
const CMSG_SPACE: usize = 64;

/// Receive buffers for one worker.
pub struct RecvBatch {
    bufs: Vec<Vec<u8>>,
    addrs: Vec<libc::sockaddr_storage>,
    cmsgs: Vec<[u8; CMSG_SPACE]>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

/// One received buffer: the sender, and the datagrams in it (`segment` bytes each, the
/// last possibly shorter; `segment == len` without GRO).
pub struct Received<'a> {
    pub from: Option<SocketAddr>,
    pub data: &'a mut [u8],
    pub segment: usize,
    /// The socket's drops so far when this arrived (with `enable_drop_count`; absent
    /// while there were none).
    pub socket_drops: Option<u32>,
    /// The outer header's TOS / traffic class (with `enable_tos`; 0 without). Datagrams
    /// the kernel coalesced share it (GRO merges only equal ones).
    pub tos: u8,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("slots", &self.bufs.len())
            .finish()
    }
}

impl Default for RecvBatch {
    fn default() -> Self {
        // SAFETY (zeroed): plain C structs for which all-zero is a valid value.
        RecvBatch {
            bufs: (0..RECV_BATCH).map(|_| vec![0u8; RECV_BUF]).collect(),
            addrs: vec![unsafe { std::mem::zeroed() }; RECV_BATCH],
            cmsgs: vec![[0u8; CMSG_SPACE]; RECV_BATCH],
            iovs: Vec::with_capacity(RECV_BATCH),
            hdrs: Vec::with_capacity(RECV_BATCH),
        }
    }
}

impl RecvBatch {
    /// Receives what is queued on `fd` without blocking; `WouldBlock` when nothing is.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        self.iovs.clear();
        self.hdrs.clear();
        for b in &mut self.bufs {
            self.iovs.push(libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            });
        }
        for ((iov, addr), cmsg) in self
            .iovs
            .iter_mut()
            .zip(self.addrs.iter_mut())
            .zip(self.cmsgs.iter_mut())
        {
            // SAFETY (zeroed): msghdr is a plain C struct.
            let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
            h.msg_name = (addr as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = iov;
            h.msg_iovlen = 1;
            h.msg_control = cmsg.as_mut_ptr().cast();
            h.msg_controllen = CMSG_SPACE as _;
            self.hdrs.push(libc::mmsghdr {
                msg_hdr: h,
                msg_len: 0,
            });
        }
        // SAFETY: every header points into buffers owned by self that outlive the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                self.hdrs.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// All receive buffers (whole, as allocated): what spans into a batch refer to.
    pub fn buffers(&self) -> &[Vec<u8>] {
        &self.bufs
    }

    /// The `i`th buffer of the last `recv`.
    pub fn get(&mut self, i: usize) -> Option<Received<'_>> {
        let h = self.hdrs.get(i)?;
        let len = h.msg_len as usize;
        let segment = cmsg_int(&h.msg_hdr, libc::SOL_UDP, libc::UDP_GRO)
            .and_then(|s| usize::try_from(s).ok())
            .filter(|&s| s > 0)
            .unwrap_or(len)
            .max(1);
        let socket_drops =
            cmsg_int(&h.msg_hdr, libc::SOL_SOCKET, libc::SO_RXQ_OVFL).map(|d| d as u32);
        // IPv4's is one byte, IPv6's an int.
        let tos = cmsg_data(&h.msg_hdr, libc::IPPROTO_IP, libc::IP_TOS)
            .and_then(|d| d.first().copied())
            .or_else(|| {
                cmsg_int(&h.msg_hdr, libc::IPPROTO_IPV6, libc::IPV6_TCLASS).map(|t| t as u8)
            })
            .unwrap_or(0);
        let from = self.addrs.get(i).and_then(to_socket_addr);
        let data = self.bufs.get_mut(i)?.get_mut(..len)?;
        Some(Received {
            from,
            data,
            segment,
            socket_drops,
            tos,
        })
    }
}

/// The sender's address the kernel wrote into a `sockaddr_storage`.
fn to_socket_addr(a: &libc::sockaddr_storage) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};
    match libc::c_int::from(a.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in (storage is larger
            // and suitably aligned for every sockaddr type).
            let v4 = unsafe { &*(a as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::new(
                Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)).into(),
                u16::from_be(v4.sin_port),
            ))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let v6 = unsafe { &*(a as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(v6.sin6_addr.s6_addr),
                u16::from_be(v6.sin6_port),
                u32::from_be(v6.sin6_flowinfo),
                v6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// The data of control message `level`/`kind` of a received message, if present.
fn cmsg_data(h: &libc::msghdr, level: libc::c_int, kind: libc::c_int) -> Option<&[u8]> {
    // SAFETY: walks the control buffer the kernel filled, bounded by msg_controllen; the
    // data slice lies within the message's cmsg_len, inside that buffer.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            if (*c).cmsg_level == level && (*c).cmsg_type == kind {
                let header = libc::CMSG_LEN(0) as usize;
                let len = ((*c).cmsg_len as usize).checked_sub(header)?;
                return Some(std::slice::from_raw_parts(libc::CMSG_DATA(c), len));
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    None
}

/// The int-sized control message `level`/`kind` of a received message, if present.
fn cmsg_int(h: &libc::msghdr, level: libc::c_int, kind: libc::c_int) -> Option<libc::c_int> {
    let data = cmsg_data(h, level, kind)?;
    Some(libc::c_int::from_ne_bytes(data.get(..4)?.try_into().ok()?))
}

/// Sends `parts` (each one datagram) to `dst`, with `tos` as the outer header's TOS /
/// traffic class (0: the socket's default). With `gso`, as one `sendmsg` whose
/// datagrams the kernel cuts every `parts[0].len()` bytes: all parts but the last must
/// have that length. Without, one `sendmmsg`. Returns the datagrams sent.
pub fn send_run(
    fd: RawFd,
    dst: &SockAddr,
    parts: &[&[u8]],
    gso: bool,
    tos: u8,
) -> io::Result<usize> {
    let Some(first) = parts.first() else {
        return Ok(0);
    };
    let mut iovs: [libc::iovec; GSO_MAX_SEGMENTS] = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; GSO_MAX_SEGMENTS];
    let parts = parts
        .get(..parts.len().min(GSO_MAX_SEGMENTS))
        .unwrap_or(&[]);
    for (iov, p) in iovs.iter_mut().zip(parts) {
        iov.iov_base = p.as_ptr() as *mut libc::c_void;
        iov.iov_len = p.len();
    }
    let iovs = iovs.get_mut(..parts.len()).unwrap_or(&mut []);
    let ipv6 = dst.is_ipv6();
    let mut cmsg = [0u8; CMSG_SPACE];
    if gso && parts.len() > 1 {
        // SAFETY (zeroed): msghdr is a plain C struct.
        let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
        h.msg_name = dst.as_ptr() as *mut libc::c_void;
        h.msg_namelen = dst.len();
        h.msg_iov = iovs.as_mut_ptr();
        h.msg_iovlen = iovs.len() as _;
        let seg = u16::try_from(first.len()).unwrap_or(u16::MAX);
        control(&mut h, &mut cmsg, Some(seg), tos, ipv6)?;
        // SAFETY: the header points at live iovecs, address and control buffer.
        let n = unsafe { libc::sendmsg(fd, &h, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        return Ok(parts.len());
    }
    let mut hdrs: [libc::mmsghdr; GSO_MAX_SEGMENTS] =
        // SAFETY (zeroed): plain C structs.
        unsafe { std::mem::zeroed() };
    // Every datagram of the run has the same TOS: one control buffer serves all.
    // SAFETY (zeroed): msghdr is a plain C struct.
    let mut template: libc::msghdr = unsafe { std::mem::zeroed() };
    control(&mut template, &mut cmsg, None, tos, ipv6)?;
    for (h, iov) in hdrs.iter_mut().zip(iovs.iter_mut()) {
        h.msg_hdr.msg_name = dst.as_ptr() as *mut libc::c_void;
        h.msg_hdr.msg_namelen = dst.len();
        h.msg_hdr.msg_iov = iov;
        h.msg_hdr.msg_iovlen = 1;
        h.msg_hdr.msg_control = template.msg_control;
        h.msg_hdr.msg_controllen = template.msg_controllen;
    }
    let mut sent = 0;
    while sent < parts.len() {
        let rest = hdrs.get_mut(sent..parts.len()).unwrap_or(&mut []);
        // SAFETY: every header points at live iovecs, the destination address and the
        // control buffer.
        let n = unsafe { libc::sendmmsg(fd, rest.as_mut_ptr(), rest.len() as libc::c_uint, 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if sent > 0 {
                return Ok(sent);
            }
            return Err(e);
        }
        sent += usize::try_from(n).unwrap_or(0).max(1);
    }
    Ok(sent)
}

/// Points `h` at control messages written into `buf`: the GSO segment size, if any, and
/// the outer TOS / traffic class unless it is 0 (none at all: no control buffer).
fn control(
    h: &mut libc::msghdr,
    buf: &mut [u8; CMSG_SPACE],
    segment: Option<u16>,
    tos: u8,
    ipv6: bool,
) -> io::Result<()> {
    // SAFETY: CMSG_SPACE is arithmetic on its argument.
    let (seg_space, tos_space) = unsafe {
        (
            libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) as usize,
            libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) as usize,
        )
    };
    let len = segment.map_or(0, |_| seg_space) + if tos != 0 { tos_space } else { 0 };
    if len == 0 {
        h.msg_control = std::ptr::null_mut();
        h.msg_controllen = 0;
        return Ok(());
    }
    h.msg_control = buf.as_mut_ptr().cast();
    h.msg_controllen = len as _;
    // SAFETY: writes at most two control messages inside `buf` (CMSG_SPACE bytes, more
    // than both need), walking it with the libc macros bounded by msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        if let Some(seg) = segment {
            if c.is_null() {
                return Err(io::Error::other("no room for UDP_SEGMENT"));
            }
            (*c).cmsg_level = libc::SOL_UDP;
            (*c).cmsg_type = libc::UDP_SEGMENT;
            (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), seg);
            c = libc::CMSG_NXTHDR(h, c);
        }
        if tos != 0 {
            if c.is_null() {
                return Err(io::Error::other("no room for the TOS control message"));
            }
            let (level, kind) = if ipv6 {
                (libc::IPPROTO_IPV6, libc::IPV6_TCLASS)
            } else {
                (libc::IPPROTO_IP, libc::IP_TOS)
            };
            (*c).cmsg_level = level;
            (*c).cmsg_type = kind;
            (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as _;
            std::ptr::write_unaligned(
                libc::CMSG_DATA(c).cast::<libc::c_int>(),
                libc::c_int::from(tos),
            );
        }
    }
    Ok(())
}

/// Whether a GSO send failed because the path cannot segment it (no GSO here, or a
/// segment above the path MTU: EINVAL on older kernels, EMSGSIZE on newer): then the run
/// is resent without GSO.
pub fn gso_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO | libc::EINVAL | libc::EMSGSIZE | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    fn pair() -> (UdpSocket, UdpSocket) {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        (a, b)
    }

    /// Drops in the kernel (receive buffer full) are reported, cumulatively, with the next
    /// datagram that gets in.
    #[test]
    fn socket_drops_arrive_with_the_next_datagram() {
        let (a, b) = pair();
        assert!(enable_drop_count(b.as_raw_fd()));
        // The smallest receive buffer: a few datagrams fit, the rest of a burst is lost.
        assert!(setsockopt_int(
            b.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            1
        ));
        let to = b.local_addr().unwrap();
        for _ in 0..200 {
            a.send_to(&[7; 1000], to).unwrap();
        }
        let mut rx = RecvBatch::default();
        let mut seen = 0;
        let first = rx.recv(b.as_raw_fd()).unwrap();
        assert!(first > 0 && first < 200, "{first} of 200 queued");
        for i in 0..first {
            // Queued before the first drop: nothing to report yet.
            assert_eq!(rx.get(i).unwrap().socket_drops, None);
            seen += 1;
        }
        a.send_to(&[8; 10], to).unwrap();
        assert_eq!(rx.recv(b.as_raw_fd()).unwrap(), 1);
        let late = rx.get(0).unwrap();
        assert_eq!(late.data, &[8; 10]);
        assert_eq!(late.socket_drops, Some(200 - seen as u32));
    }

    /// Datagrams sent as one GSO run (or sendmmsg) arrive as separate datagrams of the
    /// right sizes, whether or not the receiver coalesces them with GRO.
    #[test]
    fn runs_arrive_as_datagrams_with_and_without_gso() {
        for (gso, gro) in [(true, true), (true, false), (false, true), (false, false)] {
            let (a, b) = pair();
            if gro {
                enable_gro(b.as_raw_fd());
            }
            let dst = SockAddr::from(b.local_addr().unwrap());
            let p: Vec<Vec<u8>> = (0..5u8)
                .map(|i| vec![i; if i == 4 { 300 } else { 1000 }])
                .collect();
            let parts: Vec<&[u8]> = p.iter().map(Vec::as_slice).collect();
            match send_run(a.as_raw_fd(), &dst, &parts, gso, 0) {
                Ok(n) => assert_eq!(n, 5),
                Err(e) if gso && gso_unsupported(&e) => continue,
                Err(e) => panic!("send: {e}"),
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            let mut rx = RecvBatch::default();
            let mut got = Vec::new();
            let n = rx.recv(b.as_raw_fd()).unwrap();
            for i in 0..n {
                let r = rx.get(i).unwrap();
                assert_eq!(r.from, Some(a.local_addr().unwrap()));
                for d in r.data.chunks(r.segment) {
                    got.push((d[0], d.len()));
                }
            }
            assert_eq!(
                got,
                vec![(0, 1000), (1, 1000), (2, 1000), (3, 1000), (4, 300)],
                "gso {gso} gro {gro}"
            );
        }
    }

    /// The outer TOS / traffic class given to a run arrives with it, for GSO runs and
    /// single datagrams, over IPv4 and IPv6; 0 sends with the socket's default.
    #[test]
    fn runs_carry_their_tos_both_families() {
        for (addr, ipv6) in [("127.0.0.1:0", false), ("[::1]:0", true)] {
            let (Ok(a), Ok(b)) = (UdpSocket::bind(addr), UdpSocket::bind(addr)) else {
                continue; // no IPv6 loopback here
            };
            assert!(enable_tos(b.as_raw_fd(), ipv6));
            enable_gro(b.as_raw_fd());
            let dst = SockAddr::from(b.local_addr().unwrap());
            for (tos, gso, n) in [
                (0xb8u8, true, 3),
                (0x03, false, 2),
                (0x00, true, 2),
                (0x49, false, 1),
            ] {
                let p: Vec<Vec<u8>> = (0..n).map(|i| vec![i; 500]).collect();
                let parts: Vec<&[u8]> = p.iter().map(Vec::as_slice).collect();
                match send_run(a.as_raw_fd(), &dst, &parts, gso, tos) {
                    Ok(sent) => assert_eq!(sent, usize::from(n)),
                    Err(e) if gso && gso_unsupported(&e) => continue,
                    Err(e) => panic!("send: {e}"),
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
                let mut rx = RecvBatch::default();
                let got = rx.recv(b.as_raw_fd()).unwrap();
                let mut datagrams = 0;
                for i in 0..got {
                    let r = rx.get(i).unwrap();
                    assert_eq!(r.tos, tos, "ipv6 {ipv6} gso {gso}");
                    datagrams += r.data.len().div_ceil(r.segment);
                }
                assert_eq!(datagrams, usize::from(n), "ipv6 {ipv6} tos {tos:#x}");
            }
        }
    }

    #[test]
    fn empty_receive_would_block() {
        let (_, b) = pair();
        let mut rx = RecvBatch::default();
        let e = rx.recv(b.as_raw_fd()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }
}
