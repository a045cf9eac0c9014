#![cfg(target_os = "linux")]
//! TUN device, netlink routes and packet helpers against the real Linux kernel, each test in
//! a fresh network namespace (needs root; CI runs as root). The namespace is deleted by a Drop
//! guard even when the test fails.

mod common;

use common::{udp4, Netns};
use gateway::packet::checksum::{checksum, finish, pseudo_header, sum};
use gateway::packet::{icmp_too_big, Ipv4Fragmenter};
use gateway::sys::{RouteManager, Tun, TunConfig};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const TUN_ADDR: Ipv4Addr = Ipv4Addr::new(169, 254, 10, 2);
const REMOTE: Ipv4Addr = Ipv4Addr::new(10, 99, 1, 1);

fn tun_up() -> Tun {
    Tun::create(&TunConfig {
        name: "vpngw-t0".into(),
        mtu: 1400,
        addresses: vec!["169.254.10.2/30".parse().unwrap()],
        queues: 1,
    })
    .expect("create TUN")
}

/// Reads from the TUN until a packet matching `want` arrives (the kernel may also emit
/// unrelated packets); fails after a few seconds.
fn read_matching(tun: &Tun, want: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut buf = [0u8; 65536];
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some(n) = tun
            .recv_timeout(&mut buf, Duration::from_millis(200))
            .unwrap()
        {
            if want(&buf[..n]) {
                return buf[..n].to_vec();
            }
        }
    }
    panic!("no matching packet on the TUN");
}

fn is_udp_to(pkt: &[u8], dst: Ipv4Addr, port: u16) -> bool {
    pkt.len() >= 28
        && pkt[0] >> 4 == 4
        && pkt[9] == 17
        && pkt[16..20] == dst.octets()
        && pkt[22..24] == port.to_be_bytes()
}

#[test]
fn tun_and_route_carry_packets_both_ways() {
    let ns = Netns::new();
    ns.run(|| {
        let tun = tun_up();
        assert_eq!(tun.mtu().unwrap(), 1400);
        let mut routes = RouteManager::new().unwrap();
        routes
            .add("10.99.0.0/16".parse().unwrap(), tun.index(), 0)
            .unwrap();

        // Independent check with iproute2.
        let table = ns.ip(&["route", "show", "10.99.0.0/16"]);
        assert!(
            table.contains("dev vpngw-t0") && table.contains("proto 86"),
            "{table}"
        );
        let addr = ns.ip(&["-4", "addr", "show", "dev", "vpngw-t0"]);
        assert!(addr.contains("169.254.10.2/30"), "{addr}");

        // Socket -> kernel routing -> TUN.
        let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
        sock.send_to(b"hello tunnel", (REMOTE, 5555)).unwrap();
        let pkt = read_matching(&tun, |p| is_udp_to(p, REMOTE, 5555));
        assert_eq!(&pkt[28..], b"hello tunnel");
        assert_eq!(
            pkt[12..16],
            TUN_ADDR.octets(),
            "source is the tunnel address"
        );

        // TUN -> kernel -> socket: a datagram "from the far side".
        let rx = UdpSocket::bind((TUN_ADDR, 6666)).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let pkt = udp4(
            (REMOTE, 5555).into(),
            (TUN_ADDR, 6666).into(),
            b"hello back",
            1,
        );
        tun.send(&pkt).unwrap();
        let mut buf = [0u8; 100];
        let (n, from) = rx.recv_from(&mut buf).expect("datagram from the TUN");
        assert_eq!(&buf[..n], b"hello back");
        assert_eq!(from, SocketAddr::from((REMOTE, 5555)));

        routes.remove_all().unwrap();
        assert_eq!(ns.ip(&["route", "show", "10.99.0.0/16"]), "");
        assert!(routes.installed().is_empty());
    });
}

#[test]
fn routes_are_removed_on_drop_and_duplicates_refused() {
    let ns = Netns::new();
    ns.run(|| {
        let tun = tun_up();
        {
            let mut routes = RouteManager::new().unwrap();
            routes
                .add("10.99.0.0/16".parse().unwrap(), tun.index(), 0)
                .unwrap();
            routes
                .add("fd99::/64".parse().unwrap(), tun.index(), 0)
                .unwrap();
            let dup = routes
                .add("10.99.0.0/16".parse().unwrap(), tun.index(), 0)
                .unwrap_err();
            assert!(dup.to_string().contains("exists"), "{dup}");
            assert!(ns
                .ip(&["-6", "route", "show", "fd99::/64"])
                .contains("vpngw-t0"));
            assert!(
                routes
                    .remove("10.1.0.0/16".parse().unwrap(), tun.index())
                    .is_err(),
                "not ours"
            );
        }
        assert_eq!(ns.ip(&["route", "show", "proto", "86"]), "");
        assert_eq!(ns.ip(&["-6", "route", "show", "proto", "86"]), "");
    });
}

#[test]
fn kernel_reassembles_our_fragments() {
    let ns = Netns::new();
    ns.run(|| {
        let tun = tun_up();
        let mut routes = RouteManager::new().unwrap();
        routes
            .add("10.99.0.0/16".parse().unwrap(), tun.index(), 0)
            .unwrap();
        let rx = UdpSocket::bind((TUN_ADDR, 6667)).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let payload: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
        let whole = udp4(
            (REMOTE, 5555).into(),
            (TUN_ADDR, 6667).into(),
            &payload,
            0x4242,
        );
        let mut frag = Ipv4Fragmenter::new(&whole, 1000).unwrap();
        assert_eq!(frag.remaining(), 4);
        let mut buf = [0u8; 1500];
        while let Some(n) = frag.next_into(&mut buf) {
            tun.send(&buf[..n.unwrap()]).unwrap();
        }
        let mut got = [0u8; 4000];
        let (n, _) = rx.recv_from(&mut got).expect("reassembled datagram");
        assert_eq!(&got[..n], &payload[..]);
    });
}

#[test]
fn kernel_lowers_path_mtu_on_our_frag_needed() {
    let ns = Netns::new();
    ns.run(|| {
        let tun = tun_up();
        let mut routes = RouteManager::new().unwrap();
        routes
            .add("10.99.0.0/16".parse().unwrap(), tun.index(), 0)
            .unwrap();
        let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
        sock.connect((REMOTE, 7777)).unwrap();
        let fd = sock.as_raw_fd();
        let set = libc::IP_PMTUDISC_DO;
        // SAFETY: setsockopt with an int option on a valid socket.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                (&set as *const i32).cast(),
                4,
            )
        };
        assert_eq!(rc, 0);
        sock.send(&[0u8; 1300]).unwrap();
        let pkt = read_matching(&tun, |p| is_udp_to(p, REMOTE, 7777));
        assert_ne!(pkt[6] & 0x40, 0, "DF set");
        let mut reply = [0u8; 600];
        let n = icmp_too_big(
            &pkt,
            1200,
            IpAddr::V4(Ipv4Addr::new(169, 254, 10, 1)),
            &mut reply,
        )
        .unwrap();
        tun.send(&reply[..n]).unwrap();
        // The kernel now refuses datagrams over the new path MTU.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut mtu: i32 = 0;
            let mut len = 4 as libc::socklen_t;
            // SAFETY: getsockopt into a valid int.
            let rc = unsafe {
                libc::getsockopt(
                    fd,
                    libc::IPPROTO_IP,
                    libc::IP_MTU,
                    (&mut mtu as *mut i32).cast(),
                    &mut len,
                )
            };
            assert_eq!(rc, 0);
            if mtu == 1200 {
                break;
            }
            assert!(Instant::now() < deadline, "path MTU still {mtu}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let err = sock.send(&[0u8; 1300]).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EMSGSIZE));
    });
}

#[test]
fn kernel_lowers_ipv6_path_mtu_on_our_packet_too_big() {
    let ns = Netns::new();
    ns.run(|| {
        // tun-rs adds IPv6 addresses without IFA_F_NODAD: skip DAD so the address is usable at once.
        std::fs::write("/proc/sys/net/ipv6/conf/default/accept_dad", "0").unwrap();
        let tun = Tun::create(&TunConfig {
            name: "vpngw-t6".into(),
            mtu: 1400,
            addresses: vec!["fd00:10::2/64".parse().unwrap()],
            queues: 1,
        })
        .expect("create TUN");
        let mut routes = RouteManager::new().unwrap();
        routes
            .add("fd99::/64".parse().unwrap(), tun.index(), 0)
            .unwrap();
        let remote: std::net::Ipv6Addr = "fd99::1".parse().unwrap();
        // Even without DAD the address turns usable asynchronously once the link is up.
        let deadline = Instant::now() + Duration::from_secs(5);
        let sock = loop {
            match UdpSocket::bind("[fd00:10::2]:0") {
                Ok(s) => break s,
                Err(e) if Instant::now() < deadline => {
                    assert_eq!(e.kind(), std::io::ErrorKind::AddrNotAvailable, "{e}");
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("bind [fd00:10::2]: {e}"),
            }
        };
        sock.connect((remote, 7777)).unwrap();
        let fd = sock.as_raw_fd();
        let set = libc::IPV6_PMTUDISC_DO;
        // SAFETY: setsockopt with an int option on a valid socket.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_MTU_DISCOVER,
                (&set as *const i32).cast(),
                4,
            )
        };
        assert_eq!(rc, 0);
        sock.send(&[0u8; 1300]).unwrap();
        let pkt = read_matching(&tun, |p| {
            p.len() > 48 && p[0] >> 4 == 6 && p[6] == 17 && p[24..40] == remote.octets()
        });
        let mut reply = [0u8; 1500];
        let from: IpAddr = "fd00:10::1".parse().unwrap();
        let n = icmp_too_big(&pkt, 1280, from, &mut reply).unwrap();
        tun.send(&reply[..n]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut mtu: i32 = 0;
            let mut len = 4 as libc::socklen_t;
            // SAFETY: getsockopt into a valid int.
            let rc = unsafe {
                libc::getsockopt(
                    fd,
                    libc::IPPROTO_IPV6,
                    libc::IPV6_MTU,
                    (&mut mtu as *mut i32).cast(),
                    &mut len,
                )
            };
            assert_eq!(rc, 0);
            if mtu == 1280 {
                break;
            }
            assert!(Instant::now() < deadline, "IPv6 path MTU still {mtu}");
            std::thread::sleep(Duration::from_millis(50));
        }
    });
}

/// Fills in the IPv4 header and TCP checksums of `p` from scratch (test-side reference).
fn fix_tcp4_checksums(p: &mut [u8]) {
    p[10..12].copy_from_slice(&[0, 0]);
    let c = checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[36..38].copy_from_slice(&[0, 0]);
    let (s, d): ([u8; 4], [u8; 4]) = (p[12..16].try_into().unwrap(), p[16..20].try_into().unwrap());
    let c = finish(sum(
        pseudo_header(s.into(), d.into(), 6, (p.len() - 20) as u32),
        &p[20..],
    ));
    p[36..38].copy_from_slice(&c.to_be_bytes());
}

fn kernel_syn() -> Vec<u8> {
    let path = format!("{}/testdata/tcp4_syn.hex", env!("CARGO_MANIFEST_DIR"));
    let line = std::fs::read_to_string(path).unwrap();
    let line = line.trim();
    (0..line.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&line[i..i + 2], 16).unwrap())
        .collect()
}

fn is_synack_to(p: &[u8], port: u16) -> bool {
    p.len() >= 40
        && p[0] == 0x45
        && p[9] == 6
        && p[22..24] == port.to_be_bytes()
        && p[33] & 0x12 == 0x12
}

#[test]
fn kernel_accepts_clamped_syn_and_honours_the_mss() {
    use gateway::packet::{clamp_mss, MssClamp};
    let ns = Netns::new();
    ns.run(|| {
        let tun = tun_up();
        let mut routes = RouteManager::new().unwrap();
        routes
            .add("10.99.0.0/16".parse().unwrap(), tun.index(), 0)
            .unwrap();
        let listener = std::net::TcpListener::bind((TUN_ADDR, 8080)).unwrap();
        listener.set_nonblocking(true).unwrap();

        // A real kernel SYN (MSS 1460), re-addressed 10.99.1.1:40000 -> 169.254.10.2:8080.
        let mut syn = kernel_syn();
        syn[12..16].copy_from_slice(&REMOTE.octets());
        syn[16..20].copy_from_slice(&TUN_ADDR.octets());
        syn[20..22].copy_from_slice(&40000u16.to_be_bytes());
        syn[22..24].copy_from_slice(&8080u16.to_be_bytes());
        fix_tcp4_checksums(&mut syn);

        // Control: an MSS rewritten without fixing the checksum is dropped by the kernel.
        let mut broken = syn.clone();
        broken[20..22].copy_from_slice(&40001u16.to_be_bytes());
        broken[44..46].copy_from_slice(&1000u16.to_be_bytes());
        tun.send(&broken).unwrap();

        assert_eq!(
            clamp_mss(&mut syn, 1000),
            Ok(MssClamp::Clamped {
                from: 1460,
                to: 1000
            })
        );
        tun.send(&syn).unwrap();
        let synack = read_matching(&tun, |p| is_synack_to(p, 40000) || is_synack_to(p, 40001));
        assert!(
            is_synack_to(&synack, 40000),
            "the corrupted SYN must not be answered"
        );

        // Complete the handshake with a hand-built ACK.
        let isn = u32::from_be_bytes(syn[24..28].try_into().unwrap());
        let their_isn = u32::from_be_bytes(synack[24..28].try_into().unwrap());
        let mut ack = vec![0u8; 40];
        ack[..20].copy_from_slice(&syn[..20]);
        ack[0] = 0x45;
        ack[2..4].copy_from_slice(&40u16.to_be_bytes());
        ack[20..24].copy_from_slice(&syn[20..24]);
        ack[24..28].copy_from_slice(&isn.wrapping_add(1).to_be_bytes());
        ack[28..32].copy_from_slice(&their_isn.wrapping_add(1).to_be_bytes());
        ack[32] = 0x50;
        ack[33] = 0x10;
        ack[34..36].copy_from_slice(&64240u16.to_be_bytes());
        fix_tcp4_checksums(&mut ack);
        tun.send(&ack).unwrap();

        let deadline = Instant::now() + Duration::from_secs(5);
        let stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "handshake did not complete");
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        let mut mss: i32 = 0;
        let mut len = 4 as libc::socklen_t;
        // SAFETY: getsockopt into a valid int.
        let rc = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_MAXSEG,
                (&mut mss as *mut i32).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0);
        // 1000 minus TCP options (timestamps) in use; unclamped it would be about 1348.
        assert!((960..=1000).contains(&mss), "TCP_MAXSEG {mss}");
    });
}
