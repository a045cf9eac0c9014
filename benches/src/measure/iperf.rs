//! iperf3 TCP and UDP throughput from host_a to host_b, through whatever the gateways do.

use std::net::IpAddr;
use std::time::Duration;

use e2e::{iperf_client, IperfOptions, IperfResult, Netns};

use crate::error::Result;

/// Bytes of IPv4 and UDP headers in front of an iperf3 UDP payload.
pub const IPV4_UDP_HEADERS: u32 = 20 + 8;

/// The largest UDP payload whose datagram fits a path of `mtu` bytes unfragmented.
pub fn udp_payload_for_mtu(mtu: u32) -> u32 {
    mtu.saturating_sub(IPV4_UDP_HEADERS)
}

/// iperf3's `-b 0`: send as fast as the client can.
pub const UNLIMITED: u64 = 0;

/// A TCP test with `streams` parallel streams.
pub fn tcp(
    client: &Netns,
    server: IpAddr,
    port: u16,
    streams: u32,
    duration: Duration,
) -> Result<IperfResult> {
    let opts = IperfOptions {
        duration,
        streams,
        ..IperfOptions::default()
    };
    Ok(iperf_client(client, server, port, &opts)?)
}

/// A UDP test of `payload`-byte datagrams sent as fast as the client can.
pub fn udp(
    client: &Netns,
    server: IpAddr,
    port: u16,
    payload: u32,
    duration: Duration,
) -> Result<IperfResult> {
    let opts = IperfOptions {
        duration,
        udp_bitrate: Some(UNLIMITED),
        length: Some(payload),
        ..IperfOptions::default()
    };
    Ok(iperf_client(client, server, port, &opts)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_payload_fits_the_tunnel() {
        assert_eq!(udp_payload_for_mtu(1500), 1472);
        assert_eq!(udp_payload_for_mtu(1400), 1372);
        assert_eq!(udp_payload_for_mtu(1420), 1392);
        assert_eq!(udp_payload_for_mtu(10), 0);
    }
}
