//! Dataplane-wide drop and event counters (relaxed atomics: statistics only).

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($name:ident: $doc:literal),* $(,)?) => {
        /// Packets the dataplane dropped or handled outside the ESP path, by cause.
        #[derive(Debug, Default)]
        pub struct Counters { $(#[doc = $doc] pub $name: AtomicU64,)* }

        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
        pub struct CountersSnapshot { $(#[doc = $doc] pub $name: u64,)* }

        impl Counters {
            pub fn snapshot(&self) -> CountersSnapshot {
                CountersSnapshot { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters! {
    no_route: "TUN packets whose destination no UP tunnel carries",
    no_sa: "TUN packets routed to a tunnel without an outbound SA",
    ts_dropped_out: "TUN packets outside the traffic selectors of every CHILD SA of their tunnel",
    encap_failed: "packets the outbound SA refused (expired, not IP)",
    too_big: "packets answered with ICMP fragmentation needed / packet too big",
    fragmented: "inner IPv4 packets fragmented to fit the tunnel MTU",
    bad_inner: "TUN packets that are not valid IP or cannot be fragmented",
    udp_malformed: "UDP/4500 payloads that are neither IKE, keepalive nor ESP",
    esp_dropped: "inbound ESP packets dropped (reasons per SA in the tunnel status)",
    esp_held: "inbound ESP packets held because their SPI was not installed yet (a peer's first packets on a new CHILD SA can overtake our install); those never installed within 100 ms count as unknown_spi and esp_dropped",
    esp_held_delivered: "of esp_held: decrypted once their SA was installed",
    replay_dropped: "of esp_dropped: replayed or left of the replay window",
    ts_dropped: "decrypted packets outside the traffic selectors of their CHILD SA",
    ecn_dropped: "decrypted packets dropped because the underlay marked congestion (ECN CE) on a packet whose sender does not take ECN (RFC 6040)",
    ike_unknown_peer: "IKE datagrams from addresses that match no tunnel",
    ike_unknown_peer_invalid_spi: "of those: INVALID_IKE_SPI answers sent (10 a second at most)",
    ike_dropped_busy: "IKE datagrams dropped because the control plane's queue was full (a flood)",
    ike_init_dropped_busy: "of those: IKE_SA_INIT requests (their own, shorter queue, so a flood of them leaves the IKE SAs that exist alone)",
    keepalives_in: "NAT keepalives received",
    esp_new_source: "inbound ESP authenticated but from another address or port than its tunnel sends to, reported to the control plane (at most once a second per worker and source): a NAT mapping of the peer changed",
    send_errors: "underlay or TUN writes that failed (sum of the two below)",
    udp_send_errors: "ESP datagrams the UDP send refused",
    tun_write_errors: "TUN write batches the kernel refused",
    tun_read_errors: "TUN reads that failed",
    gso_split_errors: "TUN super-packets that could not be split into segments",
    udp_recv_errors: "UDP receives that failed",
    udp_socket_drops: "datagrams the kernel dropped before vpngw read them (a UDP socket's receive buffer was full)",
    tun_reads: "TUN reads (one packet or one super-packet each)",
    tun_segments: "packets read from the TUN device after splitting super-packets",
    udp_sends: "UDP send calls (one GSO run or one sendmmsg each)",
    udp_datagrams_out: "ESP datagrams sent",
    udp_gso_sends: "of udp_sends: sends with UDP GSO",
    udp_gso_refused: "GSO sends the kernel refused (resent without GSO; GSO tried again later)",
    udp_recvs: "recvmmsg calls that returned data",
    udp_datagrams_in: "datagrams received (after splitting GRO receives)",
    tun_writes: "TUN writes (one packet or one coalesced TCP or UDP super-packet each)",
    tun_packets_out: "decrypted packets handed to the TUN device",
}

/// Adds one to a counter.
pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Adds `n` to a counter.
pub fn add(c: &AtomicU64, n: usize) {
    c.fetch_add(n as u64, Ordering::Relaxed);
}
