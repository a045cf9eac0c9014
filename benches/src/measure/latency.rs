//! Round-trip time host_a -> host_b with the path otherwise idle.

use std::net::IpAddr;
use std::time::Duration;

use e2e::{ping, Netns, PingOptions, PingStats};

use crate::error::{BenchError, Result};

/// Echo requests per measurement.
pub const COUNT: u32 = 50;
/// Interval between them.
pub const INTERVAL: Duration = Duration::from_millis(10);

/// Average RTT in milliseconds; an error when not a single reply came back.
pub fn average_rtt_ms(stats: &PingStats) -> Result<f64> {
    stats
        .rtt
        .map(|r| r.avg_ms)
        .ok_or_else(|| BenchError::parse("ping", "no reply, no RTT"))
}

/// Pings `dest` from `from` [`COUNT`] times.
pub fn measure(from: &Netns, dest: IpAddr) -> Result<PingStats> {
    let opts = PingOptions {
        count: COUNT,
        interval: INTERVAL,
        wait: Duration::from_secs(1),
        ..PingOptions::default()
    };
    Ok(ping(from, dest, &opts)?)
}

/// Whether one echo goes through: used to wait for a tunnel to carry traffic.
pub fn reachable(from: &Netns, dest: IpAddr) -> e2e::Result<bool> {
    let opts = PingOptions {
        count: 1,
        wait: Duration::from_millis(500),
        ..PingOptions::default()
    };
    Ok(ping(from, dest, &opts)?.all_replied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_from_real_ping_output() {
        let s = PingStats::parse(include_str!("../../testdata/ping-veth.txt")).unwrap();
        let avg = average_rtt_ms(&s).unwrap();
        assert!(avg > 0.0 && avg < 5.0, "{avg}");
        let lost = PingStats::parse(
            "--- x ping statistics ---\n3 packets transmitted, 0 received, 100% packet loss\n",
        )
        .unwrap();
        assert!(average_rtt_ms(&lost).is_err());
    }
}
