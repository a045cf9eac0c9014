//! Runs the built `vpngw check-config` on the shipped configs and on broken ones.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn vpngw(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vpngw"));
    cmd.args(args);
    // Keep overrides from the developer's shell out of the test.
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("VPNGW_")) {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("run vpngw")
}

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../configs")
        .join(name)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn shipped_customer_config_passes() {
    let path = shipped("customer.toml");
    let out = vpngw(&["check-config", path.to_str().unwrap()], &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert!(stdout.starts_with("OK: "), "{stdout}");
    assert!(
        stdout.contains("connection vpc-prod (active-standby)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("tunnel tun1: peer 198.51.100.1"),
        "{stdout}"
    );
    assert!(stdout.contains("bgp AS65010 <-> AS65000"), "{stdout}");
    assert!(!stdout.contains("lab-only-psk"), "a PSK leaked: {stdout}");
}

#[test]
fn shipped_cloud_lab_config_passes_and_initiates() {
    let path = shipped("cloud-lab.toml");
    let out = vpngw(&["check-config", path.to_str().unwrap()], &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert!(stdout.contains("bgp AS65000 <-> AS65010"), "{stdout}");
    assert_eq!(stdout.matches(", initiate\n").count(), 2, "{stdout}");
}

#[test]
fn systemd_unit_runs_the_daemon_with_only_network_capabilities() {
    let unit = std::fs::read_to_string(shipped("vpngw.service")).unwrap();
    let lines: Vec<&str> = unit.lines().collect();
    for want in [
        "Type=simple",
        "ExecStartPre=/usr/local/bin/vpngw check-config /etc/vpngw/vpngw.toml",
        "ExecStart=/usr/local/bin/vpngw run --config /etc/vpngw/vpngw.toml",
        "ExecReload=/usr/local/bin/vpngw reload",
        "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_BIND_SERVICE",
        "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_BIND_SERVICE",
        "DeviceAllow=/dev/net/tun rw",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
    ] {
        assert!(lines.contains(&want), "missing `{want}`");
    }
    // The runtime directory systemd creates is the one of the default control socket.
    let dir = std::path::Path::new(gateway::config::defaults::CONTROL_SOCKET)
        .parent()
        .and_then(|d| d.file_name())
        .and_then(|d| d.to_str())
        .unwrap();
    assert!(lines.contains(&format!("RuntimeDirectory={dir}").as_str()));
    // The subcommands and flags the unit uses exist.
    for args in [
        &["run", "--help"][..],
        &["reload", "--help"][..],
        &["check-config", "--help"][..],
    ] {
        let out = vpngw(args, &[]);
        assert!(
            out.status.success(),
            "vpngw {args:?}: {}",
            text(&out.stderr)
        );
    }
    let run_help = text(&vpngw(&["run", "--help"], &[]).stdout);
    assert!(run_help.contains("--config"), "{run_help}");
}

#[test]
fn bad_config_lists_every_error_and_fails() {
    let good = std::fs::read_to_string(shipped("customer.toml")).unwrap();
    let bad = good
        .replacen("mtu = 1400", "mtu = 100", 1)
        .replacen("local_asn = 65010", "local_asn = 65000", 1)
        .replacen("psk = \"lab-only-psk-tunnel-2\"", "psk = \"short\"", 1);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, bad).unwrap();
    let out = vpngw(&["check-config", file.to_str().unwrap()], &[]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    let f = file.display();
    for want in [
        format!("{f}: connections[0].tunnels[0].mtu: 100 is outside 576..=9000"),
        format!("{f}: connections[0].bgp.local_asn: 65000 equals peer_asn"),
        format!("{f}: connections[0].tunnels[1].psk: the key is 5 bytes long"),
        format!("{f}: 3 error(s)"),
    ] {
        assert!(stderr.contains(&want), "missing `{want}` in:\n{stderr}");
    }
    assert!(out.stdout.is_empty());
}

#[test]
fn env_override_is_applied_by_the_binary() {
    let path = shipped("customer.toml");
    let out = vpngw(
        &["check-config", path.to_str().unwrap()],
        &[("VPNGW_CONNECTIONS__0__TUNNELS__1__MTU", "10000")],
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("connections[0].tunnels[1].mtu: 10000 is outside"));
}

#[test]
fn missing_file_and_syntax_error_fail() {
    let out = vpngw(&["check-config", "/nonexistent/vpngw.toml"], &[]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("/nonexistent/vpngw.toml: cannot read"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.toml");
    std::fs::write(&file, "[local\naddress = 1").unwrap();
    let out = vpngw(&["check-config", file.to_str().unwrap()], &[]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("TOML syntax"));
}
