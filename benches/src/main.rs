//! `netbench`: the side-by-side throughput harness (run as root).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use netbench::candidates::wireguard_go;
use netbench::{CandidateId, Options, ToolPaths};

/// Measures vpngw, strongSwan, boringtun, wireguard-go and the plain path between
/// host - gateway - gateway - host network namespaces and prints one table.
#[derive(Debug, Parser)]
#[command(name = "netbench", version)]
struct Cli {
    /// Repetitions per candidate; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Seconds per iperf3 test.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Comma-separated candidates (or families: strongswan, vpngw). Default: all.
    #[arg(long, value_name = "NAME,..")]
    only: Option<String>,
    /// Also write the report as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Also write the report as CSV.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Where boringtun-cli is (or gets) installed with `cargo install --root`.
    #[arg(long, value_name = "DIR", default_value_os_t = default_tools_dir())]
    tools_dir: PathBuf,
    /// List the candidates and exit.
    #[arg(long)]
    list: bool,
}

/// `<workspace>/target/bench-tools`.
fn default_tools_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("bench-tools")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.list {
        for c in CandidateId::ALL {
            println!("{:<16} {}", c.name(), c.describe());
        }
        return ExitCode::SUCCESS;
    }
    let candidates = match cli.only.as_deref().map(CandidateId::parse_list) {
        None => CandidateId::ALL.to_vec(),
        Some(Ok(list)) => list,
        Some(Err(e)) => {
            eprintln!("netbench: {e}");
            return ExitCode::from(2);
        }
    };
    let opts = Options {
        candidates,
        runs: cli.runs,
        duration: Duration::from_secs(cli.duration),
        tools: ToolPaths {
            tools_dir: cli.tools_dir,
            wireguard_go: wireguard_go::binary_from_env(),
        },
    };
    // Ctrl-C or SIGTERM only requests a stop, so the namespaces and daemons of the
    // candidate being measured are torn down rather than left behind.
    if let Err(e) = e2e::stop::install_handlers() {
        eprintln!("netbench: cannot install signal handlers: {e}");
        return ExitCode::from(2);
    }
    let report = match netbench::run(&opts, &mut |msg| eprintln!("netbench: {msg}")) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("netbench: {e}");
            return ExitCode::from(2);
        }
    };
    print!("{}", report.table());
    let mut ok = true;
    if let Some(path) = &cli.json {
        let written = report
            .to_json()
            .map_err(|e| e.to_string())
            .and_then(|text| std::fs::write(path, text).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("netbench: writing {}: {e}", path.display());
            ok = false;
        }
    }
    if let Some(path) = &cli.csv {
        if let Err(e) = std::fs::write(path, report.to_csv()) {
            eprintln!("netbench: writing {}: {e}", path.display());
            ok = false;
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
