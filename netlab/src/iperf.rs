//! iperf3 server and client inside namespaces, with the client's JSON report parsed.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{HarnessError, Result};
use crate::netns::Netns;
use crate::process::ProcessGuard;
use crate::wait::{wait_for, Poll};

/// A running `iperf3 -s`, stopped on drop.
#[derive(Debug)]
pub struct IperfServer {
    process: ProcessGuard,
    addr: IpAddr,
    port: u16,
}

impl IperfServer {
    /// Starts a server bound to `addr:port` in `ns` and waits until it listens.
    pub fn start(ns: &Netns, addr: IpAddr, port: u16, log: &Path) -> Result<Self> {
        let port_arg = port.to_string();
        let addr_arg = addr.to_string();
        let mut process = ns.spawn(
            "iperf3 server",
            &["iperf3", "-s", "-B", &addr_arg, "-p", &port_arg],
            log,
        )?;
        let filter = format!("sport = :{port}");
        wait_for("iperf3 server to listen", Duration::from_secs(10), || {
            process.check_running()?;
            let listening = ns.run(&["ss", "-H", "-l", "-t", "-n", &filter])?;
            Ok(if listening.trim().is_empty() {
                Poll::Pending("not listening yet".into())
            } else {
                Poll::Ready(())
            })
        })?;
        Ok(IperfServer {
            process,
            addr,
            port,
        })
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn process(&mut self) -> &mut ProcessGuard {
        &mut self.process
    }

    /// One TCP stream of `duration` from `client` to this server.
    pub fn tcp_from(&self, client: &Netns, duration: Duration) -> Result<IperfResult> {
        iperf_client(
            client,
            self.addr,
            self.port,
            &IperfOptions {
                duration,
                ..IperfOptions::default()
            },
        )
    }
}

/// What the client should send.
#[derive(Debug, Clone)]
pub struct IperfOptions {
    pub duration: Duration,
    /// UDP at this rate in bits/s instead of TCP.
    pub udp_bitrate: Option<u64>,
    /// Parallel streams (`-P`).
    pub streams: u32,
    /// Server sends, client receives (`-R`).
    pub reverse: bool,
    /// TCP MSS or UDP datagram size (`-l` for UDP, `-M` for TCP).
    pub length: Option<u32>,
}

impl Default for IperfOptions {
    fn default() -> Self {
        IperfOptions {
            duration: Duration::from_secs(2),
            udp_bitrate: None,
            streams: 1,
            reverse: false,
            length: None,
        }
    }
}

/// The end-of-test summary of an iperf3 run.
#[derive(Debug, Clone, PartialEq)]
pub struct IperfResult {
    pub sent_bits_per_second: f64,
    pub received_bits_per_second: f64,
    pub sent_bytes: u64,
    pub received_bytes: u64,
    /// TCP only.
    pub retransmits: Option<u64>,
    /// UDP only.
    pub lost_percent: Option<f64>,
    /// UDP only: datagrams the server never received.
    pub lost_packets: Option<u64>,
    /// UDP only.
    pub jitter_ms: Option<f64>,
}

#[derive(Deserialize)]
struct Report {
    error: Option<String>,
    end: Option<End>,
}

#[derive(Deserialize)]
struct End {
    sum_sent: Option<Sum>,
    sum_received: Option<Sum>,
    /// UDP: the receiver's view (loss and jitter).
    sum: Option<Sum>,
}

#[derive(Deserialize)]
struct Sum {
    bytes: u64,
    bits_per_second: f64,
    retransmits: Option<u64>,
    lost_percent: Option<f64>,
    lost_packets: Option<u64>,
    jitter_ms: Option<f64>,
}

impl IperfResult {
    /// Parses `iperf3 -J` client output; an `error` member becomes an error.
    pub fn parse(json: &str) -> Result<Self> {
        let what = "iperf3 JSON report";
        let report: Report =
            serde_json::from_str(json).map_err(|e| HarnessError::parse(what, e.to_string()))?;
        if let Some(error) = report.error {
            return Err(HarnessError::parse(
                what,
                format!("iperf3 reported: {error}"),
            ));
        }
        let end = report
            .end
            .ok_or_else(|| HarnessError::parse(what, "no `end` summary"))?;
        let (Some(sent), Some(received)) = (end.sum_sent, end.sum_received) else {
            return Err(HarnessError::parse(what, "no sum_sent/sum_received"));
        };
        let udp = end.sum;
        Ok(IperfResult {
            sent_bits_per_second: sent.bits_per_second,
            received_bits_per_second: received.bits_per_second,
            sent_bytes: sent.bytes,
            received_bytes: received.bytes,
            retransmits: sent.retransmits,
            lost_percent: udp.as_ref().and_then(|s| s.lost_percent),
            lost_packets: udp.as_ref().and_then(|s| s.lost_packets),
            jitter_ms: udp.as_ref().and_then(|s| s.jitter_ms),
        })
    }
}

/// Runs an iperf3 client in `ns` against `server` and returns its summary.
pub fn iperf_client(
    ns: &Netns,
    server: IpAddr,
    port: u16,
    opts: &IperfOptions,
) -> Result<IperfResult> {
    let mut argv = vec![
        "iperf3".to_owned(),
        "-c".into(),
        server.to_string(),
        "-p".into(),
        port.to_string(),
        "-J".into(),
        "-t".into(),
        opts.duration.as_secs().max(1).to_string(),
        "-P".into(),
        opts.streams.max(1).to_string(),
    ];
    if let Some(rate) = opts.udp_bitrate {
        argv.extend(["-u".into(), "-b".into(), rate.to_string()]);
        if let Some(len) = opts.length {
            argv.extend(["-l".into(), len.to_string()]);
        }
    } else if let Some(mss) = opts.length {
        argv.extend(["-M".into(), mss.to_string()]);
    }
    if opts.reverse {
        argv.push("-R".into());
    }
    let out = ns.output(&argv)?;
    // iperf3 writes its JSON (errors included) to stdout; the exit status adds nothing.
    IperfResult::parse(&String::from_utf8_lossy(&out.stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_report() {
        let r = IperfResult::parse(include_str!("../testdata/iperf3-tcp.json")).unwrap();
        assert_eq!(r.sent_bytes, 1_061_158_912);
        assert_eq!(r.received_bytes, 1_052_246_016);
        assert!((r.sent_bits_per_second - 8_488_329_091.470_847).abs() < 1.0);
        assert!((r.received_bits_per_second - 8_394_831_971.087_683).abs() < 1.0);
        assert_eq!(r.retransmits, Some(695));
        assert_eq!(r.lost_percent, None);
    }

    #[test]
    fn udp_report() {
        let r = IperfResult::parse(include_str!("../testdata/iperf3-udp.json")).unwrap();
        assert_eq!(r.sent_bytes, 6_245_224);
        assert!((r.received_bits_per_second - 49_952_051.349_986_754).abs() < 1.0);
        assert_eq!(r.retransmits, None);
        assert_eq!(r.lost_percent, Some(0.0));
        assert_eq!(r.lost_packets, Some(0));
        assert!((r.jitter_ms.unwrap() - 0.011_621).abs() < 1e-6);
    }

    #[test]
    fn error_report_and_garbage() {
        let err = IperfResult::parse(include_str!("../testdata/iperf3-refused.json")).unwrap_err();
        assert!(err.to_string().contains("Connection refused"), "{err}");
        assert!(IperfResult::parse("").is_err());
        assert!(IperfResult::parse("{\"start\":{}}").is_err());
    }
}
