//! CI: the harness end to end on the plain path only, with one-second tests (~10 s).
//! Needs root; prints SKIPPED otherwise.

use std::process::Command;

#[test]
fn plain_path_gives_real_non_zero_figures() {
    if e2e::skip_unless_root("plain_path_gives_real_non_zero_figures") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("report.json");
    let csv_path = dir.path().join("report.csv");
    let out = Command::new(env!("CARGO_BIN_EXE_netbench"))
        .args([
            "--only",
            "plain",
            "--runs",
            "1",
            "--duration",
            "1",
            "--json",
        ])
        .arg(&json_path)
        .arg("--csv")
        .arg(&csv_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");

    // The table: the plain row has a positive figure in every throughput/RTT column.
    let header = stdout.lines().next().unwrap();
    assert!(header.contains("TCPx1 Gbit/s"), "{stdout}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with("plain "))
        .unwrap_or_else(|| panic!("no plain row in\n{stdout}"));
    let figures: Vec<f64> = row
        .split_whitespace()
        .filter(|w| !w.starts_with('('))
        .filter_map(|w| w.parse().ok())
        .collect();
    // runs, TCPx1, TCPx4, UDP, UDP loss, kpps, RTT, +RTT (no CPU for the kernel path).
    assert_eq!(figures.len(), 8, "{row}");
    for (i, name) in [
        (1, "TCPx1"),
        (2, "TCPx4"),
        (3, "UDP"),
        (5, "kpps"),
        (6, "RTT"),
    ] {
        assert!(figures[i] > 0.0, "{name} is {} in {row}", figures[i]);
    }
    assert!(row.contains("(1.00x)"), "plain is its own reference: {row}");

    // The JSON report carries the same medians.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(json["reference"], "plain");
    let plain = &json["candidates"][0];
    assert_eq!(plain["status"], "measured", "{plain}");
    for key in ["tcp1_bps", "tcp4_bps", "udp_bps", "pps64", "rtt_ms"] {
        let v = plain["median"][key].as_f64().unwrap_or(0.0);
        assert!(v > 0.0, "{key} = {v} in {plain}");
    }
    // A routed veth moves well over 100 Mbit/s even on a busy two-core VM.
    assert!(
        plain["median"]["tcp1_bps"].as_f64().unwrap() > 1e8,
        "{plain}"
    );
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    assert!(csv.contains("plain,measured,tcp1_bps,"), "{csv}");
}

#[test]
fn unknown_candidate_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_netbench"))
        .args(["--only", "openvpn"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown candidate \"openvpn\""));
}
