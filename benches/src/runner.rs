//! Runs each candidate in a fresh topology: set up, check the path, measure N times.

use std::collections::BTreeMap;
use std::time::Duration;

use e2e::{wait_for, IperfResult, IperfServer, LinkStats, Poll, WorkDir};
use serde::Serialize;

use crate::candidates::{self, CandidateId, Ready, Setup, ToolPaths};
use crate::error::{BenchError, Result};
use crate::measure::cpu::CpuMeter;
use crate::measure::load::{self, LoadCheck};
use crate::measure::{iperf, latency, pps};
use crate::metric::Metric;
use crate::stats::median;
use crate::topology::{BenchTopology, Side, HOST_B_ADDR};

/// iperf3 server port on host_b.
pub const IPERF_PORT: u16 = 5201;
/// How long a freshly set up path may take to carry its first ping.
const PATH_TIMEOUT: Duration = Duration::from_secs(20);
/// Lets the iperf3 server go back to listening between tests.
const BETWEEN_TESTS: Duration = Duration::from_millis(300);

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub candidates: Vec<CandidateId>,
    pub runs: u32,
    pub duration: Duration,
    pub tools: ToolPaths,
}

/// The figures of one run, and what the machine was doing around it.
#[derive(Debug, Clone, Serialize)]
pub struct RunFigures {
    pub figures: BTreeMap<Metric, f64>,
    /// Payload bytes iperf3 received over all tests of the run.
    pub received_payload_bytes: u64,
    /// Bytes gw_a sent through the candidate's path device meanwhile (a lower bound
    /// check: every received payload byte went through it, plus headers).
    pub path_tx_bytes: u64,
    pub load: LoadCheck,
    /// Tests of this run that failed (their figures are missing).
    pub errors: Vec<String>,
}

/// How a candidate fared.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Measured {
        runs: Vec<RunFigures>,
        median: BTreeMap<Metric, f64>,
        path_mtu: u32,
        cpu_note: Option<&'static str>,
    },
    Skipped {
        reason: String,
    },
    Unavailable {
        reason: String,
    },
    Failed {
        reason: String,
    },
}

impl Outcome {
    /// Median figures, when measured.
    pub fn median(&self) -> Option<&BTreeMap<Metric, f64>> {
        match self {
            Outcome::Measured { median, .. } => Some(median),
            _ => None,
        }
    }

    /// How many runs were flagged disturbed, of how many.
    pub fn disturbed(&self) -> Option<(usize, usize)> {
        match self {
            Outcome::Measured { runs, .. } => {
                Some((runs.iter().filter(|r| r.load.disturbed).count(), runs.len()))
            }
            _ => None,
        }
    }
}

/// The median of every metric present in at least one run.
pub fn medians(runs: &[RunFigures]) -> BTreeMap<Metric, f64> {
    Metric::ALL
        .into_iter()
        .filter_map(|m| {
            let values: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.figures.get(&m).copied())
                .collect();
            median(&values).map(|v| (m, v))
        })
        .collect()
}

/// Sets up, checks and measures one candidate once (round `round` of `opts.runs`), on a
/// topology of its own that is torn down afterwards. Never fails: a failure is an
/// outcome (`Measured` with the one run).
pub fn run_round(
    id: CandidateId,
    opts: &Options,
    round: u32,
    progress: &mut dyn FnMut(&str),
) -> Outcome {
    match try_round(id, opts, round, progress) {
        Ok(outcome) => outcome,
        Err(e) => Outcome::Failed {
            reason: e.to_string(),
        },
    }
}

fn try_round(
    id: CandidateId,
    opts: &Options,
    round: u32,
    progress: &mut dyn FnMut(&str),
) -> Result<Outcome> {
    progress(&format!("{id}: run {round}/{}: setting up", opts.runs));
    let topo = BenchTopology::build()?;
    let ready = match candidates::setup(id, &topo, &opts.tools)? {
        Setup::Ready(ready) => ready,
        Setup::Skipped(reason) => return Ok(Outcome::Skipped { reason }),
        Setup::Unavailable(reason) => return Ok(Outcome::Unavailable { reason }),
    };
    wait_for_path(id, &topo)?;
    let logs = WorkDir::new("bench-iperf")?;
    let _server = IperfServer::start(
        topo.host_b()?,
        HOST_B_ADDR.into(),
        IPERF_PORT,
        &logs.join("iperf3-server.log"),
    )?;
    progress(&format!("{id}: run {round}/{}: measuring", opts.runs));
    let runs = vec![measure_run(&topo, &ready, opts.duration)?];
    let median = medians(&runs);
    Ok(Outcome::Measured {
        runs,
        median,
        path_mtu: ready.path_mtu,
        cpu_note: ready.cpu_note,
    })
}

impl Outcome {
    /// Adds the run of a later round (`next`, from [`run_round`]) to a measured outcome;
    /// a failed round fails the candidate.
    pub fn add_round(self, next: Outcome) -> Outcome {
        match (self, next) {
            (
                Outcome::Measured {
                    mut runs,
                    path_mtu,
                    cpu_note,
                    ..
                },
                Outcome::Measured { runs: more, .. },
            ) => {
                runs.extend(more);
                let median = medians(&runs);
                Outcome::Measured {
                    runs,
                    median,
                    path_mtu,
                    cpu_note,
                }
            }
            (Outcome::Measured { .. }, other) => other,
            (done, _) => done,
        }
    }

    /// Whether later rounds still measure it.
    pub fn measured(&self) -> bool {
        matches!(self, Outcome::Measured { .. })
    }
}

fn wait_for_path(id: CandidateId, topo: &BenchTopology) -> Result<()> {
    let host_a = topo.host_a()?;
    wait_for("a ping through the path", PATH_TIMEOUT, || {
        Ok(if latency::reachable(host_a, BenchTopology::target())? {
            Poll::Ready(())
        } else {
            Poll::Pending("no echo reply from host_b".into())
        })
    })
    .map_err(|e| BenchError::TunnelDown {
        candidate: id.to_string(),
        detail: e.to_string(),
    })
}

/// One iperf3 test, retried once (the server may still be closing the last one).
fn with_retry(mut test: impl FnMut() -> Result<IperfResult>) -> Result<IperfResult> {
    match test() {
        Ok(r) => Ok(r),
        Err(_) => {
            std::thread::sleep(Duration::from_secs(1));
            test()
        }
    }
}

struct Recorder<'a> {
    ready: &'a Ready,
    figures: BTreeMap<Metric, f64>,
    received_bytes: u64,
    errors: Vec<String>,
}

impl Recorder<'_> {
    /// Runs a throughput test with the gateway CPU metered; records what `record` picks.
    fn throughput(
        &mut self,
        name: &str,
        cpu: [Metric; 2],
        test: impl FnMut() -> Result<IperfResult>,
        record: impl FnOnce(&IperfResult, &mut BTreeMap<Metric, f64>),
    ) -> Result<()> {
        if e2e::stop::requested() {
            return Err(BenchError::Interrupted);
        }
        let meter = CpuMeter::start(&self.ready.gateway_pids)?;
        let result = with_retry(test);
        // A gateway that died mid-test is a failure of the candidate, not of one test.
        let used = meter.finish()?;
        match result {
            Ok(r) => {
                self.received_bytes = self.received_bytes.saturating_add(r.received_bytes);
                record(&r, &mut self.figures);
                for (metric, pct) in cpu.into_iter().zip(used) {
                    if let Some(pct) = pct {
                        self.figures.insert(metric, pct);
                    }
                }
            }
            Err(e) => self.errors.push(format!("{name}: {e}")),
        }
        std::thread::sleep(BETWEEN_TESTS);
        Ok(())
    }
}

/// Every payload byte iperf3 received must have left gw_a through the path device;
/// fewer bytes there means the figures measured some other path.
pub fn check_path(dev: &str, received_payload: u64, path_tx: u64) -> Result<()> {
    if received_payload == 0 || path_tx < received_payload {
        return Err(BenchError::parse(
            "path counters",
            format!(
                "iperf3 received {received_payload} payload bytes but {dev} on gw_a sent only \
                 {path_tx}: the traffic did not take the candidate's path"
            ),
        ));
    }
    Ok(())
}

/// Average size of the packets sent through a device between two readings.
fn bytes_per_packet(before: &LinkStats, after: &LinkStats) -> Option<f64> {
    let packets = after.tx_packets.checked_sub(before.tx_packets)?;
    let bytes = after.tx_bytes.checked_sub(before.tx_bytes)?;
    (packets > 0).then(|| bytes as f64 / packets as f64)
}

fn measure_run(topo: &BenchTopology, ready: &Ready, duration: Duration) -> Result<RunFigures> {
    let (busy_before, loadavg) = load::before_run()?;
    let gw_a = topo.gw(Side::A)?;
    let path_before = gw_a.link_stats(&ready.path_dev)?;
    let client = topo.host_a()?;
    let server = BenchTopology::target();
    let mut rec = Recorder {
        ready,
        figures: BTreeMap::new(),
        received_bytes: 0,
        errors: Vec::new(),
    };
    match latency::measure(client, server).and_then(|s| latency::average_rtt_ms(&s)) {
        Ok(rtt) => {
            rec.figures.insert(Metric::RttMs, rtt);
        }
        Err(e) => rec.errors.push(format!("rtt: {e}")),
    }
    let tcp1_before = gw_a.link_stats(&ready.path_dev)?;
    rec.throughput(
        "tcp1",
        [Metric::CpuATcp1Pct, Metric::CpuBTcp1Pct],
        || iperf::tcp(client, server, IPERF_PORT, 1, duration),
        |r, f| {
            f.insert(Metric::Tcp1Bps, r.received_bits_per_second);
            if let Some(retr) = r.retransmits {
                f.insert(Metric::Tcp1Retransmits, retr as f64);
            }
        },
    )?;
    let tcp1_after = gw_a.link_stats(&ready.path_dev)?;
    if let Some(per) = bytes_per_packet(&tcp1_before, &tcp1_after) {
        rec.figures.insert(Metric::Tcp1PathBytesPerPacket, per);
    }
    rec.throughput(
        "tcp4",
        [Metric::CpuATcp4Pct, Metric::CpuBTcp4Pct],
        || iperf::tcp(client, server, IPERF_PORT, 4, duration),
        |r, f| {
            f.insert(Metric::Tcp4Bps, r.received_bits_per_second);
        },
    )?;
    let payload = iperf::udp_payload_for_mtu(ready.path_mtu);
    rec.throughput(
        "udp",
        [Metric::CpuAUdpPct, Metric::CpuBUdpPct],
        || iperf::udp(client, server, IPERF_PORT, payload, duration),
        |r, f| {
            f.insert(Metric::UdpBps, r.received_bits_per_second);
            if let Some(loss) = r.lost_percent {
                f.insert(Metric::UdpLossPct, loss);
            }
        },
    )?;
    rec.throughput(
        "pps64",
        [Metric::CpuAPps64Pct, Metric::CpuBPps64Pct],
        || pps::small_udp(client, server, IPERF_PORT, duration),
        |r, f| {
            if let Some(rate) = pps::received_pps(r, pps::SMALL_PAYLOAD) {
                f.insert(Metric::Pps64, rate);
            }
            if let Some(loss) = r.lost_percent {
                f.insert(Metric::Pps64LossPct, loss);
            }
        },
    )?;
    let path_tx_bytes = gw_a
        .link_stats(&ready.path_dev)?
        .tx_bytes
        .saturating_sub(path_before.tx_bytes);
    check_path(&ready.path_dev, rec.received_bytes, path_tx_bytes)?;
    let busy_after = load::quiet_window_busy_percent(load::WINDOW)?;
    Ok(RunFigures {
        figures: rec.figures,
        received_payload_bytes: rec.received_bytes,
        path_tx_bytes,
        load: LoadCheck::new(busy_before, busy_after, loadavg),
        errors: rec.errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pairs: &[(Metric, f64)]) -> RunFigures {
        RunFigures {
            figures: pairs.iter().copied().collect(),
            received_payload_bytes: 0,
            path_tx_bytes: 0,
            load: LoadCheck::new(1.0, 1.0, 0.1),
            errors: Vec::new(),
        }
    }

    #[test]
    fn bytes_per_packet_over_the_interval_only() {
        let at = |tx_bytes, tx_packets| LinkStats {
            tx_bytes,
            tx_packets,
            ..LinkStats::default()
        };
        assert_eq!(
            bytes_per_packet(&at(1_000, 10), &at(641_000, 20)),
            Some(64_000.0)
        );
        assert_eq!(bytes_per_packet(&at(1_000, 10), &at(1_000, 10)), None);
        // Counters that went backwards (device recreated) give no figure.
        assert_eq!(bytes_per_packet(&at(5_000, 10), &at(100, 12)), None);
    }

    #[test]
    fn medians_per_metric_over_runs_that_have_it() {
        let runs = [
            run(&[(Metric::Tcp1Bps, 3e8), (Metric::RttMs, 0.2)]),
            run(&[(Metric::Tcp1Bps, 1e8)]),
            run(&[(Metric::Tcp1Bps, 2e8), (Metric::RttMs, 0.4)]),
        ];
        let m = medians(&runs);
        assert_eq!(m.get(&Metric::Tcp1Bps), Some(&2e8));
        assert!((m[&Metric::RttMs] - 0.3).abs() < 1e-12);
        assert_eq!(m.get(&Metric::Pps64), None);
    }

    #[test]
    fn path_check_needs_every_payload_byte_on_the_device() {
        assert!(check_path("wg1a", 1_000, 1_100).is_ok());
        let err = check_path("wg1a", 1_000, 999).unwrap_err().to_string();
        assert!(
            err.contains("wg1a") && err.contains("did not take"),
            "{err}"
        );
        assert!(check_path("wg1a", 0, 5).is_err(), "nothing measured");
    }

    #[test]
    fn rounds_add_up_and_a_failed_round_fails_the_candidate() {
        let measured = |v: f64| {
            let runs = vec![run(&[(Metric::Tcp1Bps, v)])];
            Outcome::Measured {
                median: medians(&runs),
                runs,
                path_mtu: 1400,
                cpu_note: None,
            }
        };
        let o = measured(1.0)
            .add_round(measured(3.0))
            .add_round(measured(2.0));
        assert_eq!(o.median().and_then(|m| m.get(&Metric::Tcp1Bps)), Some(&2.0));
        let failed = Outcome::Failed { reason: "x".into() };
        let o = o.add_round(failed);
        assert!(!o.measured());
        // A candidate that ended stays ended.
        let o = o.add_round(measured(5.0));
        assert!(matches!(o, Outcome::Failed { .. }));
    }

    #[test]
    fn disturbed_runs_are_counted() {
        let mut busy = run(&[]);
        busy.load = LoadCheck::new(80.0, 1.0, 3.0);
        let outcome = Outcome::Measured {
            runs: vec![run(&[]), busy],
            median: BTreeMap::new(),
            path_mtu: 1500,
            cpu_note: None,
        };
        assert_eq!(outcome.disturbed(), Some((1, 2)));
        let skipped = Outcome::Skipped { reason: "x".into() };
        assert_eq!(skipped.disturbed(), None);
        assert!(skipped.median().is_none());
    }
}
