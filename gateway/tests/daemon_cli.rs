//! The built `vpngw` daemon and control commands without privileges: refusals and exit codes.

use std::process::{Command, Output};

fn vpngw(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vpngw"));
    cmd.args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("VPNGW_")) {
        cmd.env_remove(k);
    }
    cmd.output().expect("run vpngw")
}

#[test]
fn run_refuses_a_bad_config_naming_the_field_before_touching_the_system() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "tun_name = \"this-name-is-far-too-long\"\n[local]\naddress = \"192.0.2.2\"\n",
    )
    .unwrap();
    let out = vpngw(&["run", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tun_name"), "{err}");
    assert!(
        err.contains("connections"),
        "missing connections not reported: {err}"
    );
}

#[test]
fn control_commands_exit_2_when_the_daemon_is_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("absent.sock");
    for args in [
        vec!["status", "--json"],
        vec!["routes"],
        vec!["tunnel", "disable", "tun1"],
        vec!["reload"],
    ] {
        let mut argv = args.clone();
        argv.extend(["--socket", sock.to_str().unwrap()]);
        let out = vpngw(&argv);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("cannot reach the daemon"), "{err}");
    }
}

#[test]
fn control_commands_exit_1_on_a_daemon_error() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixListener;
    // A stand-in daemon that refuses every request, as the real one does for unknown tunnels.
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("vpngw.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line).unwrap();
        let req: serde_json::Value = serde_json::from_str(&line).unwrap();
        (&stream)
            .write_all(b"{\"ok\":false,\"error\":\"no tunnel named `tunX`\"}\n")
            .unwrap();
        req
    });
    let out = vpngw(&[
        "tunnel",
        "enable",
        "tunX",
        "--socket",
        sock.to_str().unwrap(),
    ]);
    let req = server.join().unwrap();
    assert_eq!(
        req,
        serde_json::json!({"cmd": "tunnel", "action": "enable", "name": "tunX"})
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tunnel named `tunX`"));
}
