//! `vpngw lab`: a self-contained lab in network namespaces, built with the `netlab`
//! harness and this very binary as its gateways.
//!
//! - `vpngw lab`: customer site + cloud VPC, two tunnels UP, BGP, ping, iperf3, summary.
//! - `vpngw lab cloud`: only the cloud endpoint, for a real customer device to connect to.
//! - `vpngw lab down`: removes what a kept (or killed) lab left, from its state file.
//!
//! Everything a lab makes is owned by guards and torn down on exit, on error and on
//! SIGINT/SIGTERM (which only request a stop: the waits give up and the guards run).

mod args;
mod cloud;
mod console;
mod customer_file;
mod down;
mod error;
mod progress;
mod site;
mod state;
mod summary;

pub use args::{CloudOpts, ConsoleFormat, DownOpts, LabArgs, LabCommand, Peer, SiteOpts};
pub use error::LabError;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit status after a SIGINT/SIGTERM-interrupted lab (128 + SIGINT, as shells report).
const EXIT_INTERRUPTED: u8 = 130;

/// Runs `vpngw lab ...` and returns the exit status.
pub fn run(args: LabArgs) -> ExitCode {
    let result = match args.command {
        Some(LabCommand::Down(opts)) => down::run(&opts),
        Some(LabCommand::Cloud(opts)) => with_signals(|| cloud::run(&opts)),
        None => with_signals(|| site::run(&args.site)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vpngw lab: {e}");
            if matches!(e, LabError::Interrupted { .. }) {
                ExitCode::from(EXIT_INTERRUPTED)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn with_signals(f: impl FnOnce() -> Result<(), LabError>) -> Result<(), LabError> {
    netlab::stop::install_handlers()
        .map_err(|e| LabError::io("install SIGINT/SIGTERM handlers", e))?;
    f()
}

/// Checks that we run as root: namespaces, veth and TUN need it.
fn require_root() -> Result<(), LabError> {
    if netlab::is_root() {
        Ok(())
    } else {
        Err(LabError::Invalid(
            "the lab builds network namespaces and TUN devices: run it as root".into(),
        ))
    }
}

/// The lab's work directory (configs, logs, sockets): `--work-dir` or
/// `$TMPDIR/vpngw-lab-<pid>`. Created private (0700); PSKs live in the configs. It must
/// be new or empty: the lab deletes it after a good run and `lab down` deletes it too.
fn make_work_dir(given: Option<&Path>) -> Result<PathBuf, LabError> {
    use std::os::unix::fs::DirBuilderExt as _;
    let dir = match given {
        Some(d) => d.to_path_buf(),
        None => std::env::temp_dir().join(format!("vpngw-lab-{}", std::process::id())),
    };
    if std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(LabError::Invalid(format!(
            "work dir {} is not empty: give a new or empty directory (the lab deletes it when done)",
            dir.display()
        )));
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| LabError::io(format!("create work dir {}", dir.display()), e))?;
    // The harness's own scratch dirs (charon, BIRD) go inside it and stay with it.
    std::env::set_var("TMPDIR", &dir);
    netlab::keep_all_work_dirs();
    Ok(dir)
}

/// The namespace name prefix of this process's lab: `vpngwlab-<pid>-`.
fn namespace_prefix() -> String {
    format!("{}{}-", state::NS_PREFIX, std::process::id())
}

/// Random printable PSK: 32 hex digits (128 bits) from the OS.
fn random_psk() -> Result<String, LabError> {
    use rand_core::RngCore as _;
    let mut bytes = [0u8; 16];
    rand_core::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| LabError::Invalid(format!("no random source: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
