//! The results: a table for people, JSON and CSV for machines. Every figure comes with
//! its ratio to the reference candidate (vpngw, or the plain path while vpngw cannot run).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::candidates::CandidateId;
use crate::crypto_ceiling::CryptoCeiling;
use crate::host::HostFacts;
use crate::measure::load::DISTURBED_BUSY_PERCENT;
use crate::metric::{Metric, TABLE_COLUMNS};
use crate::runner::{Outcome, RunFigures};
use crate::stats::ratio;

/// Candidates that can be the reference, most preferred first.
const REFERENCE_ORDER: [CandidateId; 3] = [
    CandidateId::VpngwGcm,
    CandidateId::VpngwCbc,
    CandidateId::Plain,
];

/// One candidate's line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct CandidateReport {
    pub name: &'static str,
    pub description: &'static str,
    #[serde(skip)]
    pub id: CandidateId,
    /// What exactly ran, when the candidate's tool says (e.g. `v0.0.20250522`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Median of each metric divided by the reference's median.
    pub ratios: BTreeMap<Metric, f64>,
    /// Each round's figure divided by the reference's figure of the same round (rounds
    /// measure every candidate back to back, so the pair shares the machine's state): the
    /// spread of a ratio that the medians hide.
    pub round_ratios: BTreeMap<Metric, Vec<f64>>,
}

impl CandidateReport {
    /// The name, followed by the version when known: the table's first column.
    pub fn label(&self) -> String {
        match &self.version {
            Some(v) => format!("{} {v}", self.name),
            None => self.name.to_owned(),
        }
    }
}

/// Everything one harness invocation found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub runs: u32,
    pub duration_secs: u64,
    /// The candidate ratios are relative to.
    pub reference: Option<&'static str>,
    pub candidates: Vec<CandidateReport>,
    /// The machine the figures come from.
    pub host: HostFacts,
    /// What its AES-GCM allows any ESP tunnel (timed before the runs).
    pub crypto: Option<CryptoCeiling>,
}

/// The share of the plain path the footer prices in CPUs of AES-GCM (the fast-path
/// target vpngw is measured against).
pub const PLAIN_SHARE: f64 = 0.4;

/// For every metric, the candidate's figure of each round divided by the reference's of
/// the same round (rounds where either lacks the figure are left out).
fn per_round_ratios(outcome: &Outcome, reference: &[RunFigures]) -> BTreeMap<Metric, Vec<f64>> {
    let Outcome::Measured { runs, .. } = outcome else {
        return BTreeMap::new();
    };
    let mut out: BTreeMap<Metric, Vec<f64>> = BTreeMap::new();
    for (own, base) in runs.iter().zip(reference) {
        for (m, v) in &own.figures {
            if let Some(r) = base.figures.get(m).and_then(|b| ratio(*v, *b)) {
                out.entry(*m).or_default().push(r);
            }
        }
    }
    out
}

/// Both gateways' CPU during TCPx1 (percent of one core) per Gbit/s of TCPx1.
fn cpu_per_gbps(m: &std::collections::BTreeMap<Metric, f64>) -> Option<f64> {
    let gbps = m.get(&Metric::Tcp1Bps).copied()? / 1e9;
    let cpu = m.get(&Metric::CpuATcp1Pct).copied()? + m.get(&Metric::CpuBTcp1Pct).copied()?;
    (gbps > 0.0).then(|| cpu / gbps)
}

impl Report {
    /// Derives the added RTT (against the plain path, when measured) and the CPU per
    /// Gbit/s, picks the reference
    /// and computes every ratio.
    pub fn new(runs: u32, duration_secs: u64, results: Vec<(CandidateId, Outcome)>) -> Self {
        let mut results = results;
        let plain_rtt = results.iter().find_map(|(id, o)| {
            (*id == CandidateId::Plain)
                .then(|| o.median().and_then(|m| m.get(&Metric::RttMs).copied()))
                .flatten()
        });
        if let Some(plain_rtt) = plain_rtt {
            for (_, outcome) in &mut results {
                if let Outcome::Measured { median, .. } = outcome {
                    if let Some(rtt) = median.get(&Metric::RttMs).copied() {
                        median.insert(Metric::AddedRttMs, rtt - plain_rtt);
                    }
                }
            }
        }
        for (_, outcome) in &mut results {
            if let Outcome::Measured { median, .. } = outcome {
                if let Some(per) = cpu_per_gbps(median) {
                    median.insert(Metric::CpuPerGbps, per);
                }
            }
        }
        let reference = REFERENCE_ORDER.into_iter().find(|r| {
            results
                .iter()
                .any(|(id, o)| id == r && o.median().is_some())
        });
        let reference_outcome = reference.and_then(|r| {
            results
                .iter()
                .find(|(id, _)| *id == r)
                .map(|(_, o)| o.clone())
        });
        let reference_median = reference_outcome.as_ref().and_then(|o| o.median().cloned());
        let reference_runs = match &reference_outcome {
            Some(Outcome::Measured { runs, .. }) => runs.as_slice(),
            _ => &[],
        };
        let candidates = results
            .into_iter()
            .map(|(id, outcome)| {
                let ratios = match (outcome.median(), &reference_median) {
                    (Some(own), Some(base)) => own
                        .iter()
                        .filter_map(|(m, v)| {
                            base.get(m).and_then(|b| ratio(*v, *b)).map(|r| (*m, r))
                        })
                        .collect(),
                    _ => BTreeMap::new(),
                };
                let round_ratios = per_round_ratios(&outcome, reference_runs);
                CandidateReport {
                    name: id.name(),
                    description: id.describe(),
                    id,
                    version: None,
                    outcome,
                    ratios,
                    round_ratios,
                }
            })
            .collect();
        Report {
            runs,
            duration_secs,
            reference: reference.map(CandidateId::name),
            candidates,
            host: HostFacts::default(),
            crypto: None,
        }
    }

    /// The table for people: one row per candidate, each figure with its ratio.
    pub fn table(&self) -> String {
        let mut header = vec!["candidate".to_owned(), "runs".to_owned()];
        header.extend(TABLE_COLUMNS.iter().map(|c| c.header.to_owned()));
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut notes: Vec<String> = Vec::new();
        for c in &self.candidates {
            let label = c.label();
            let (median, runs_cell) = match (&c.outcome, c.outcome.disturbed()) {
                (Outcome::Measured { median, .. }, Some((disturbed, total))) => {
                    let cell = if disturbed > 0 {
                        format!("{total} ({disturbed} disturbed)")
                    } else {
                        total.to_string()
                    };
                    (median, cell)
                }
                (Outcome::Skipped { reason }, _) => {
                    notes.push(format!("{label}: skipped: {reason}"));
                    rows.push(vec![label.clone(), "skipped".into()]);
                    continue;
                }
                (Outcome::Unavailable { reason }, _) => {
                    notes.push(format!("{label}: unavailable: {reason}"));
                    rows.push(vec![label.clone(), "unavailable".into()]);
                    continue;
                }
                (Outcome::Failed { reason }, _) => {
                    notes.push(format!("{label}: FAILED: {reason}"));
                    rows.push(vec![label.clone(), "FAILED".into()]);
                    continue;
                }
                (Outcome::Measured { .. }, None) => continue,
            };
            let mut row = vec![label.clone(), runs_cell];
            for col in TABLE_COLUMNS {
                row.push(match median.get(&col.metric) {
                    None => "-".into(),
                    Some(v) => {
                        let value = format!("{:.*}", col.decimals, v / col.divisor);
                        match c.ratios.get(&col.metric) {
                            Some(r) => format!("{value} ({r:.2}x)"),
                            None => value,
                        }
                    }
                });
            }
            rows.push(row);
            if let Outcome::Measured {
                cpu_note: Some(note),
                ..
            } = &c.outcome
            {
                notes.push(format!("{label}: {note}"));
            }
            if let Outcome::Measured { runs, .. } = &c.outcome {
                for (n, run) in runs.iter().enumerate() {
                    for e in &run.errors {
                        notes.push(format!("{label} run {}: {e}", n + 1));
                    }
                }
            }
        }
        let mut out = render_columns(&header, &rows);
        let _ = writeln!(
            out,
            "\nMedian of {} run(s) of {} s per test. {}",
            self.runs,
            self.duration_secs,
            match self.reference {
                Some(r) => format!("Ratios: figure / {r}'s figure."),
                None => "No ratios: neither vpngw nor the plain path was measured.".into(),
            }
        );
        out.push_str(
            "UDP: datagrams filling the path MTU, sent unlimited; rate = received. \
             64B: 64-byte UDP payloads, datagrams received per second.\n\
             RTT: ping host_a -> host_b, path idle; +RTT: minus the plain path's RTT. \
             CPU: gateway process during TCPx1, % of one core (utime+stime).\n",
        );
        let _ = writeln!(
            out,
            "Disturbed: over {DISTURBED_BUSY_PERCENT}% of all CPUs busy in the 1 s quiet window before or after the run."
        );
        if let Some(spread) = self.tcp1_round_spread() {
            let _ = writeln!(out, "{spread}");
        }
        if let Some(host) = self.host.describe() {
            let _ = writeln!(out, "{host}");
        }
        if let Some(crypto) = &self.crypto {
            let plain = self
                .candidates
                .iter()
                .find(|c| c.id == CandidateId::Plain)
                .and_then(|c| c.outcome.median()?.get(&Metric::Tcp1Bps).copied());
            let _ = writeln!(out, "{}", crypto.describe(plain, PLAIN_SHARE));
        }
        for note in notes {
            let _ = writeln!(out, "  {note}");
        }
        out
    }

    /// "TCPx1 ratio per round: plain 2.09-2.78x, ..." for the candidates measured in more
    /// than one round besides the reference; `None` when there are none.
    fn tcp1_round_spread(&self) -> Option<String> {
        let parts: Vec<String> = self
            .candidates
            .iter()
            .filter(|c| Some(c.name) != self.reference)
            .filter_map(|c| {
                let rs = c.round_ratios.get(&Metric::Tcp1Bps)?;
                let lo = rs.iter().copied().reduce(f64::min)?;
                let hi = rs.iter().copied().reduce(f64::max)?;
                (rs.len() > 1).then(|| format!("{} {lo:.2}-{hi:.2}x", c.name))
            })
            .collect();
        let reference = self.reference?;
        (!parts.is_empty()).then(|| {
            format!(
                "TCPx1 ratio per round (figure / {reference}'s of the same round): {}",
                parts.join(", ")
            )
        })
    }

    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(self)
    }

    /// One line per candidate and metric: `candidate,status,metric,median,ratio,runs,disturbed_runs,reason`.
    pub fn to_csv(&self) -> String {
        let mut out =
            String::from("candidate,status,metric,median,ratio,runs,disturbed_runs,reason\n");
        for c in &self.candidates {
            match &c.outcome {
                Outcome::Measured { median, .. } => {
                    let (disturbed, runs) = c.outcome.disturbed().unwrap_or((0, 0));
                    for (metric, value) in median {
                        let ratio = c
                            .ratios
                            .get(metric)
                            .map(|r| r.to_string())
                            .unwrap_or_default();
                        let _ = writeln!(
                            out,
                            "{},measured,{},{value},{ratio},{runs},{disturbed},",
                            c.name,
                            metric.key()
                        );
                    }
                }
                Outcome::Skipped { reason } => csv_status(&mut out, c.name, "skipped", reason),
                Outcome::Unavailable { reason } => {
                    csv_status(&mut out, c.name, "unavailable", reason)
                }
                Outcome::Failed { reason } => csv_status(&mut out, c.name, "failed", reason),
            }
        }
        out
    }
}

fn csv_status(out: &mut String, name: &str, status: &str, reason: &str) {
    let _ = writeln!(out, "{name},{status},,,,,,{}", csv_quote(reason));
}

/// RFC 4180 quoting: in double quotes, inner quotes doubled; newlines become spaces.
fn csv_quote(field: &str) -> String {
    let one_line = field.replace(['\n', '\r'], " ");
    format!("\"{}\"", one_line.replace('"', "\"\""))
}

/// Left-aligned text columns separated by two spaces; short rows end early.
fn render_columns(header: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", text.join("  ").trim_end());
    };
    line(header);
    line(
        &widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<String>>(),
    );
    for row in rows {
        line(row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::load::LoadCheck;
    use crate::runner::{medians, RunFigures};

    fn measured(pairs: &[(Metric, f64)], disturbed: bool) -> Outcome {
        let run = RunFigures {
            figures: pairs.iter().copied().collect(),
            received_payload_bytes: 1,
            path_tx_bytes: 1,
            load: LoadCheck::new(if disturbed { 90.0 } else { 1.0 }, 1.0, 0.5),
            errors: Vec::new(),
        };
        let median = medians(std::slice::from_ref(&run));
        Outcome::Measured {
            runs: vec![run],
            median,
            path_mtu: 1500,
            cpu_note: None,
        }
    }

    fn sample() -> Report {
        Report::new(
            1,
            10,
            vec![
                (
                    CandidateId::VpngwGcm,
                    Outcome::Unavailable {
                        reason: "no driver".into(),
                    },
                ),
                (
                    CandidateId::Plain,
                    measured(&[(Metric::Tcp1Bps, 10e9), (Metric::RttMs, 0.05)], false),
                ),
                (
                    CandidateId::StrongswanGcm,
                    measured(
                        &[
                            (Metric::Tcp1Bps, 0.3e9),
                            (Metric::RttMs, 0.25),
                            (Metric::CpuATcp1Pct, 97.0),
                        ],
                        true,
                    ),
                ),
                (
                    CandidateId::Boringtun,
                    Outcome::Skipped {
                        reason: "cargo \"install\" failed,\nsee log".into(),
                    },
                ),
            ],
        )
    }

    /// A candidate measured in several rounds with these TCPx1 figures (Gbit/s).
    fn rounds(tcp1_gbps: &[f64]) -> Outcome {
        let runs: Vec<RunFigures> = tcp1_gbps
            .iter()
            .map(|g| RunFigures {
                figures: [(Metric::Tcp1Bps, g * 1e9)].into_iter().collect(),
                received_payload_bytes: 1,
                path_tx_bytes: 1,
                load: LoadCheck::new(1.0, 1.0, 0.5),
                errors: Vec::new(),
            })
            .collect();
        let median = medians(&runs);
        Outcome::Measured {
            runs,
            median,
            path_mtu: 1500,
            cpu_note: None,
        }
    }

    #[test]
    fn each_round_is_compared_with_the_reference_of_the_same_round() {
        let r = Report::new(
            3,
            5,
            vec![
                (CandidateId::VpngwGcm, rounds(&[8.0, 6.0, 7.0])),
                (CandidateId::Plain, rounds(&[16.0, 18.0, 14.0])),
                (CandidateId::Boringtun, rounds(&[0.5])),
            ],
        );
        let plain = &r.candidates[1];
        assert_eq!(plain.round_ratios[&Metric::Tcp1Bps], vec![2.0, 3.0, 2.0]);
        // The ratio of the medians (16 / 7) is not any round's.
        assert!((plain.ratios[&Metric::Tcp1Bps] - 16.0 / 7.0).abs() < 1e-9);
        assert_eq!(r.candidates[0].round_ratios[&Metric::Tcp1Bps], vec![1.0; 3]);
        let table = r.table();
        assert!(
            table.contains("TCPx1 ratio per round (figure / vpngw-gcm's of the same round): plain 2.00-3.00x\n"),
            "{table}"
        );
        // One round is no spread; the reference is not listed against itself.
        assert!(!table.contains("boringtun 0.06"), "{table}");
        let json = r.to_json().unwrap();
        assert!(json.contains("\"round_ratios\""), "{json}");
    }

    #[test]
    fn plain_is_the_reference_while_vpngw_is_unavailable() {
        let r = sample();
        assert_eq!(r.reference, Some("plain"));
        let ss = &r.candidates[2];
        assert!((ss.ratios[&Metric::Tcp1Bps] - 0.03).abs() < 1e-9);
        assert!((ss.ratios[&Metric::RttMs] - 5.0).abs() < 1e-9);
        assert!(
            !ss.ratios.contains_key(&Metric::CpuATcp1Pct),
            "plain has no CPU figure"
        );
        let added = ss.outcome.median().unwrap()[&Metric::AddedRttMs];
        assert!((added - 0.2).abs() < 1e-9);
        assert_eq!(r.candidates[1].ratios[&Metric::Tcp1Bps], 1.0);
        assert!(r.candidates[0].ratios.is_empty());
    }

    #[test]
    fn cpu_per_gbps_sums_both_gateways() {
        let r = Report::new(
            1,
            10,
            vec![(
                CandidateId::VpngwGcm,
                measured(
                    &[
                        (Metric::Tcp1Bps, 2e9),
                        (Metric::CpuATcp1Pct, 50.0),
                        (Metric::CpuBTcp1Pct, 30.0),
                    ],
                    false,
                ),
            )],
        );
        let m = r.candidates[0].outcome.median().unwrap();
        assert!((m[&Metric::CpuPerGbps] - 40.0).abs() < 1e-9);
    }

    #[test]
    fn vpngw_is_the_reference_when_measured() {
        let r = Report::new(
            1,
            10,
            vec![
                (
                    CandidateId::VpngwGcm,
                    measured(&[(Metric::Tcp1Bps, 2e9)], false),
                ),
                (
                    CandidateId::Plain,
                    measured(&[(Metric::Tcp1Bps, 10e9)], false),
                ),
            ],
        );
        assert_eq!(r.reference, Some("vpngw-gcm"));
        assert_eq!(r.candidates[1].ratios[&Metric::Tcp1Bps], 5.0);
    }

    #[test]
    fn table_shows_figures_ratios_and_reasons() {
        let table = sample().table();
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("candidate") && lines[0].contains("TCPx1 Gbit/s"));
        let plain = lines.iter().find(|l| l.starts_with("plain")).unwrap();
        assert!(plain.contains("10.000 (1.00x)"), "{plain}");
        let ss = lines
            .iter()
            .find(|l| l.starts_with("strongswan-gcm"))
            .unwrap();
        assert!(ss.contains("0.300 (0.03x)"), "{ss}");
        assert!(ss.contains("1 (1 disturbed)"), "{ss}");
        assert!(ss.contains("0.200"), "added RTT: {ss}");
        assert!(ss.contains("97"), "CPU without ratio: {ss}");
        assert!(table.contains("vpngw-gcm: unavailable: no driver"));
        assert!(table.contains("boringtun: skipped: cargo"));
        assert!(table.contains("figure / plain's figure"));
    }

    #[test]
    fn csv_has_one_line_per_metric_and_quotes_reasons() {
        let csv = sample().to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "candidate,status,metric,median,ratio,runs,disturbed_runs,reason"
        );
        assert!(lines.contains(&"vpngw-gcm,unavailable,,,,,,\"no driver\""));
        assert!(lines.contains(&"plain,measured,tcp1_bps,10000000000,1,1,0,"));
        assert!(lines.contains(&"strongswan-gcm,measured,tcp1_bps,300000000,0.03,1,1,"));
        assert!(lines.contains(&"boringtun,skipped,,,,,,\"cargo \"\"install\"\" failed, see log\""));
        // Every line has the same number of fields outside quotes.
        for line in &lines {
            let mut commas = 0;
            let mut quoted = false;
            for ch in line.chars() {
                match ch {
                    '"' => quoted = !quoted,
                    ',' if !quoted => commas += 1,
                    _ => {}
                }
            }
            assert_eq!(commas, 7, "{line}");
        }
    }

    #[test]
    fn json_carries_status_runs_and_ratios() {
        let json: serde_json::Value = serde_json::from_str(&sample().to_json().unwrap()).unwrap();
        assert_eq!(json["reference"], "plain");
        let c = &json["candidates"];
        assert_eq!(c[0]["status"], "unavailable");
        assert_eq!(c[1]["status"], "measured");
        assert_eq!(c[1]["median"]["tcp1_bps"], 10e9);
        assert_eq!(c[2]["runs"][0]["load"]["disturbed"], true);
        assert_eq!(c[2]["ratios"]["tcp1_bps"], 0.03);
    }

    #[test]
    fn a_known_version_follows_the_name_in_table_and_json() {
        let mut r = Report::new(
            1,
            10,
            vec![
                (
                    CandidateId::Plain,
                    measured(&[(Metric::Tcp1Bps, 10e9)], false),
                ),
                (
                    CandidateId::WireguardGo,
                    measured(&[(Metric::Tcp1Bps, 1e9)], false),
                ),
            ],
        );
        r.candidates[1].version = Some("v0.0.20250522".into());
        let table = r.table();
        assert!(
            table.lines().any(
                |l| l.starts_with("wireguard-go v0.0.20250522 ") && l.contains("1.000 (0.10x)")
            ),
            "{table}"
        );
        let json: serde_json::Value = serde_json::from_str(&r.to_json().unwrap()).unwrap();
        assert_eq!(json["candidates"][1]["name"], "wireguard-go");
        assert_eq!(json["candidates"][1]["version"], "v0.0.20250522");
        assert!(json["candidates"][0].get("version").is_none());
    }
}
