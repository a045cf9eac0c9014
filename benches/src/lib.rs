//! End-to-end throughput harness: vpngw side by side with strongSwan (kernel-libipsec),
//! boringtun, wireguard-go and the plain routed path, each between two gateway network
//! namespaces (see [`topology`] for the address plan).
//!
//! Measured in `runs` rounds; in each, every candidate gets a fresh topology, is set up,
//! must carry a ping, then is measured once: ping RTT (idle), iperf3 TCP with 1 and 4 streams, UDP filling the path
//! MTU and 64-byte UDP (all at full speed), with the gateway daemons' CPU time metered
//! from `/proc/<pid>/stat`. The [`report::Report`] holds the medians and the ratio of
//! every figure to vpngw (to the plain path while vpngw cannot run).

pub mod candidates;
pub mod crypto_ceiling;
pub mod error;
pub mod host;
pub mod measure;
pub mod metric;
pub mod report;
pub mod runner;
pub mod stats;
pub mod topology;

pub use candidates::{CandidateId, ToolPaths};
pub use error::{BenchError, Result};
pub use report::Report;
pub use runner::{Options, Outcome};

/// Runs every selected candidate, in rounds: each round measures every candidate once, so
/// a machine whose speed drifts during the session (other tenants of the host) shifts
/// all candidates alike rather than whichever ran last. `progress` hears what goes on.
pub fn run(opts: &Options, progress: &mut dyn FnMut(&str)) -> Result<Report> {
    if opts.runs == 0 {
        return Err(BenchError::Usage("--runs must be at least 1".into()));
    }
    if opts.duration.as_secs() == 0 {
        return Err(BenchError::Usage("--duration must be at least 1 s".into()));
    }
    if !e2e::is_root() {
        return Err(BenchError::Usage(
            "netbench needs root (network namespaces, TUN devices): run it with sudo -E".into(),
        ));
    }
    // Before anything else runs: the machine is quiet.
    progress("timing AES-GCM on one core");
    let host = host::HostFacts::read();
    let crypto =
        crypto_ceiling::CryptoCeiling::measure(host.cpus, std::time::Duration::from_millis(300));
    let mut results: Vec<(CandidateId, Option<Outcome>)> =
        opts.candidates.iter().map(|id| (*id, None)).collect();
    let count = results.len();
    for round in 1..=opts.runs {
        for (i, (id, outcome)) in results.iter_mut().enumerate() {
            if outcome.as_ref().is_some_and(|o| !o.measured()) {
                continue;
            }
            // A run cut short by the signal has torn its topology down; stop here.
            if e2e::stop::requested() {
                return Err(BenchError::Interrupted);
            }
            let mut prefixed = |msg: &str| progress(&format!("[{}/{count}] {msg}", i + 1));
            let next = runner::run_round(*id, opts, round, &mut prefixed);
            *outcome = Some(match outcome.take() {
                Some(so_far) => so_far.add_round(next),
                None => next,
            });
        }
    }
    if e2e::stop::requested() {
        return Err(BenchError::Interrupted);
    }
    let results: Vec<(CandidateId, Outcome)> = results
        .into_iter()
        .filter_map(|(id, o)| o.map(|o| (id, o)))
        .collect();
    let mut report = Report::new(opts.runs, opts.duration.as_secs(), results);
    report.host = host;
    report.crypto = crypto;
    for c in &mut report.candidates {
        c.version = candidates::version(c.id, &opts.tools);
    }
    Ok(report)
}
