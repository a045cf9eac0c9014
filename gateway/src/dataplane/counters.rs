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
    encap_failed: "packets the outbound SA refused (expired, not IP)",
    too_big: "packets answered with ICMP fragmentation needed / packet too big",
    fragmented: "inner IPv4 packets fragmented to fit the tunnel MTU",
    bad_inner: "TUN packets that are not valid IP or cannot be fragmented",
    udp_malformed: "UDP/4500 payloads that are neither IKE, keepalive nor ESP",
    esp_dropped: "inbound ESP packets dropped (reasons per SA in the tunnel status)",
    keepalives_in: "NAT keepalives received",
    send_errors: "underlay or TUN writes that failed",
}

/// Adds one to a counter.
pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}
