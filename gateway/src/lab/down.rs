//! `vpngw lab down`: removes kept labs (and labs whose process died) by their state
//! files: daemons stopped (SIGTERM, then SIGKILL), namespaces deleted, the underlay
//! route and veth end of `lab cloud` removed, work directory deleted.

use std::time::{Duration, Instant};

use netlab::{delete_namespace, pid_alive, Tool};

use super::state::{load_all, Attachment, LabState};
use super::{DownOpts, LabError};

const GRACE: Duration = Duration::from_secs(4);

pub fn run(opts: &DownOpts) -> Result<(), LabError> {
    let labs = load_all(&opts.state_dir)?;
    let mut removed = 0;
    for (path, state) in labs {
        if !state.kept && pid_alive(state.pid) && state.pid != std::process::id() {
            println!(
                "lab of pid {} is still running (not kept): stop it with Ctrl-C or kill -TERM {}",
                state.pid, state.pid
            );
            continue;
        }
        teardown(&state)?;
        std::fs::remove_file(&path)
            .map_err(|e| LabError::io(format!("remove {}", path.display()), e))?;
        println!(
            "removed lab of pid {}: namespaces {}; work dir {}",
            state.pid,
            state.namespaces.join(", "),
            state.work_dir.display()
        );
        removed += 1;
    }
    if removed == 0 {
        println!(
            "no kept lab found in {} (nothing to remove)",
            opts.state_dir.display()
        );
    }
    Ok(())
}

fn teardown(state: &LabState) -> Result<(), LabError> {
    // Graceful first: vpngw sends DELETEs and removes its routes, charon its SAs.
    let mut pids = state.pids.clone();
    for ns in &state.namespaces {
        pids.extend(namespace_pids(ns));
    }
    pids.retain(|&p| p > 1 && p != std::process::id());
    pids.sort_unstable();
    pids.dedup();
    for &pid in &pids {
        signal(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline && pids.iter().any(|&p| pid_alive(p)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    if let Some(a) = &state.attachment {
        detach(a);
    }
    // Deleting a namespace kills what is still inside it.
    for ns in &state.namespaces {
        delete_namespace(ns)
            .map_err(|e| LabError::Invalid(format!("delete namespace {ns}: {e}")))?;
    }
    if state.work_dir.is_dir() {
        std::fs::remove_dir_all(&state.work_dir).map_err(|e| {
            LabError::io(format!("remove work dir {}", state.work_dir.display()), e)
        })?;
    }
    Ok(())
}

/// Removes the customer-side veth end (and with it the route over it). Gone is fine:
/// deleting the cloud namespace already removed the pair.
pub fn detach(a: &Attachment) {
    let mut argv: Vec<String> = Vec::new();
    if let Some(ns) = &a.netns {
        argv.extend([
            Tool::Nsenter.path().into(),
            format!("--net=/run/netns/{ns}"),
            "--".into(),
        ]);
    }
    argv.push(Tool::Ip.path().into());
    let mut route = argv.clone();
    route.extend(["route", "del", &a.route, "dev", &a.ifname].map(String::from));
    quiet(&route);
    argv.extend(["link", "del", &a.ifname].map(String::from));
    quiet(&argv);
}

/// Runs a clean-up command whose failure (already gone) does not matter.
fn quiet(argv: &[String]) {
    if let Some((program, args)) = argv.split_first() {
        let _ = std::process::Command::new(program).args(args).output();
    }
}

fn namespace_pids(ns: &str) -> Vec<u32> {
    netlab::run_argv(&[Tool::Ip.path(), "netns", "pids", ns])
        .map(|out| {
            out.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn signal(pid: u32, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, sig);
    }
}
