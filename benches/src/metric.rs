//! The figures measured in each run, with their names, units and table formatting.

use serde::Serialize;

/// One figure of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// iperf3 TCP, one stream: receiver bits/s.
    Tcp1Bps,
    Tcp1Retransmits,
    /// Bytes per packet gw_a's kernel handed its path device during TCPx1: above the
    /// path MTU when TSO super-packets reach the tunnel daemon (offloads in use).
    Tcp1PathBytesPerPacket,
    /// iperf3 TCP, four streams: receiver bits/s.
    Tcp4Bps,
    /// iperf3 UDP at full speed, datagrams filling the path MTU: receiver bits/s.
    UdpBps,
    UdpLossPct,
    /// 64-byte UDP payloads at full speed: datagrams received per second.
    Pps64,
    Pps64LossPct,
    /// Average ping RTT host_a -> host_b, path idle.
    RttMs,
    /// RTT minus the plain path's RTT (derived in the report, not measured per run).
    AddedRttMs,
    /// CPU of the gateway processes during each test, percent of one core.
    CpuATcp1Pct,
    CpuBTcp1Pct,
    CpuATcp4Pct,
    CpuBTcp4Pct,
    CpuAUdpPct,
    CpuBUdpPct,
    CpuAPps64Pct,
    CpuBPps64Pct,
    /// CPU of both gateways during TCPx1 per Gbit/s carried (derived in the report).
    CpuPerGbps,
}

impl Metric {
    /// The snake_case key used in JSON and CSV.
    pub fn key(self) -> &'static str {
        match self {
            Metric::Tcp1Bps => "tcp1_bps",
            Metric::Tcp1Retransmits => "tcp1_retransmits",
            Metric::Tcp1PathBytesPerPacket => "tcp1_path_bytes_per_packet",
            Metric::Tcp4Bps => "tcp4_bps",
            Metric::UdpBps => "udp_bps",
            Metric::UdpLossPct => "udp_loss_pct",
            Metric::Pps64 => "pps64",
            Metric::Pps64LossPct => "pps64_loss_pct",
            Metric::RttMs => "rtt_ms",
            Metric::AddedRttMs => "added_rtt_ms",
            Metric::CpuATcp1Pct => "cpu_a_tcp1_pct",
            Metric::CpuBTcp1Pct => "cpu_b_tcp1_pct",
            Metric::CpuATcp4Pct => "cpu_a_tcp4_pct",
            Metric::CpuBTcp4Pct => "cpu_b_tcp4_pct",
            Metric::CpuAUdpPct => "cpu_a_udp_pct",
            Metric::CpuBUdpPct => "cpu_b_udp_pct",
            Metric::CpuAPps64Pct => "cpu_a_pps64_pct",
            Metric::CpuBPps64Pct => "cpu_b_pps64_pct",
            Metric::CpuPerGbps => "cpu_per_gbps",
        }
    }

    /// Every metric, in report order.
    pub const ALL: [Metric; 19] = [
        Metric::Tcp1Bps,
        Metric::Tcp1Retransmits,
        Metric::Tcp1PathBytesPerPacket,
        Metric::Tcp4Bps,
        Metric::UdpBps,
        Metric::UdpLossPct,
        Metric::Pps64,
        Metric::Pps64LossPct,
        Metric::RttMs,
        Metric::AddedRttMs,
        Metric::CpuATcp1Pct,
        Metric::CpuBTcp1Pct,
        Metric::CpuATcp4Pct,
        Metric::CpuBTcp4Pct,
        Metric::CpuAUdpPct,
        Metric::CpuBUdpPct,
        Metric::CpuAPps64Pct,
        Metric::CpuBPps64Pct,
        Metric::CpuPerGbps,
    ];
}

/// A column of the printed table: which metric, its header, and how values are scaled.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub metric: Metric,
    pub header: &'static str,
    pub divisor: f64,
    pub decimals: usize,
}

/// The table shows the headline figures; JSON and CSV carry every metric.
pub const TABLE_COLUMNS: [Column; 10] = [
    Column {
        metric: Metric::Tcp1Bps,
        header: "TCPx1 Gbit/s",
        divisor: 1e9,
        decimals: 3,
    },
    Column {
        metric: Metric::Tcp4Bps,
        header: "TCPx4 Gbit/s",
        divisor: 1e9,
        decimals: 3,
    },
    Column {
        metric: Metric::UdpBps,
        header: "UDP Gbit/s",
        divisor: 1e9,
        decimals: 3,
    },
    Column {
        metric: Metric::UdpLossPct,
        header: "UDP loss %",
        divisor: 1.0,
        decimals: 1,
    },
    Column {
        metric: Metric::Pps64,
        header: "64B kpps",
        divisor: 1e3,
        decimals: 1,
    },
    Column {
        metric: Metric::RttMs,
        header: "RTT ms",
        divisor: 1.0,
        decimals: 3,
    },
    Column {
        metric: Metric::AddedRttMs,
        header: "+RTT ms",
        divisor: 1.0,
        decimals: 3,
    },
    Column {
        metric: Metric::CpuATcp1Pct,
        header: "CPU gw_a %",
        divisor: 1.0,
        decimals: 0,
    },
    Column {
        metric: Metric::CpuBTcp1Pct,
        header: "CPU gw_b %",
        divisor: 1.0,
        decimals: 0,
    },
    Column {
        metric: Metric::CpuPerGbps,
        header: "CPU %/Gbit",
        divisor: 1.0,
        decimals: 0,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_match_serde() {
        for (i, m) in Metric::ALL.iter().enumerate() {
            assert_eq!(
                serde_json::to_string(m).unwrap(),
                format!("\"{}\"", m.key())
            );
            assert!(Metric::ALL.iter().skip(i + 1).all(|o| o.key() != m.key()));
        }
    }
}
