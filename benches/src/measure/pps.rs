//! Packets per second of small UDP datagrams: what per-packet cost limits.

use std::net::IpAddr;
use std::time::Duration;

use e2e::{IperfResult, Netns};

use crate::error::Result;
use crate::measure::iperf;

/// UDP payload bytes of the small-packet test.
pub const SMALL_PAYLOAD: u32 = 64;

/// Datagrams per second received, from iperf3's receiver rate (bits of payload per
/// second) and the fixed payload size.
pub fn received_pps(result: &IperfResult, payload: u32) -> Option<f64> {
    if payload == 0 {
        return None;
    }
    Some(result.received_bits_per_second / (f64::from(payload) * 8.0))
}

/// Sends 64-byte UDP datagrams as fast as the client can; returns the iperf3 summary.
pub fn small_udp(
    client: &Netns,
    server: IpAddr,
    port: u16,
    duration: Duration,
) -> Result<IperfResult> {
    iperf::udp(client, server, port, SMALL_PAYLOAD, duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pps_from_a_real_udp_report() {
        let r = IperfResult::parse(include_str!("../../testdata/iperf3-udp-64.json")).unwrap();
        let pps = received_pps(&r, SMALL_PAYLOAD).unwrap();
        let expected = r.received_bits_per_second / 512.0;
        assert!((pps - expected).abs() < 1e-6);
        assert!(pps > 1000.0, "{pps}");
        assert_eq!(received_pps(&r, 0), None);
    }
}
