//! Command line of `vpngw`: the daemon (`run`), its control commands, `check-config`,
//! `lab`.

use crate::config::{defaults, Config};
use crate::daemon::status::{Request, Response, Routes, Status, TunnelAction};
use crate::daemon::{self, RunOptions};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// vpngw: userspace IPsec/IKEv2 site-to-site VPN gateway.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Options every control command takes.
#[derive(Debug, clap::Args)]
pub struct ClientOpts {
    /// Control socket of the daemon.
    #[arg(long, default_value = defaults::CONTROL_SOCKET)]
    pub socket: PathBuf,
    /// Print the daemon's JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway in the foreground.
    Run {
        #[arg(long)]
        config: PathBuf,
        /// Control socket (default: the config's `control_socket`).
        #[arg(long)]
        socket: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
    },
    /// Per-tunnel state.
    Status(ClientOpts),
    /// The routing table and the tunnel each prefix uses now.
    Routes(ClientOpts),
    /// BGP sessions: state, uptime, prefixes received and advertised.
    Bgp(ClientOpts),
    /// Disable or enable a tunnel.
    Tunnel {
        #[arg(value_enum)]
        action: CliTunnelAction,
        name: String,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Re-read the config file: changed tunnels renegotiate, unchanged stay up.
    Reload(ClientOpts),
    /// Validate a config file (with VPNGW_* environment overrides) and print a summary.
    CheckConfig {
        /// Path of the TOML config file.
        file: PathBuf,
    },
    /// A self-contained lab in network namespaces (root): customer site and cloud VPC
    /// with two tunnels, BGP, ping and throughput; `lab cloud` runs only the cloud
    /// endpoint for a real customer device; `lab down` removes a kept lab.
    Lab(Box<crate::lab::LabArgs>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CliTunnelAction {
    Disable,
    Enable,
}

/// Runs the parsed command and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::CheckConfig { file } => check_config(&file),
        Command::Lab(args) => crate::lab::run(*args),
        Command::Run {
            config,
            socket,
            log_format,
        } => run_daemon(config, socket, log_format),
        Command::Status(o) => client(&o, Request::Status, |d| {
            serde_json::from_value::<Status>(d).map(|s| s.table())
        }),
        Command::Routes(o) => client(&o, Request::Routes, |d| {
            serde_json::from_value::<Routes>(d).map(|r| r.table())
        }),
        Command::Bgp(o) => client(&o, Request::Bgp, |d| {
            serde_json::from_value::<Vec<crate::bgp_speaker::BgpSessionStatus>>(d)
                .map(|s| crate::bgp_speaker::bgp_table(&s))
        }),
        Command::Tunnel { action, name, opts } => {
            let action = match action {
                CliTunnelAction::Disable => TunnelAction::Disable,
                CliTunnelAction::Enable => TunnelAction::Enable,
            };
            let done = format!("tunnel {name}: {action:?}d\n").to_lowercase();
            client(&opts, Request::Tunnel { action, name }, move |_| {
                Ok(done.clone())
            })
        }
        Command::Reload(o) => client(&o, Request::Reload, |d| {
            Ok(format!("reloaded; renegotiating: {}\n", d["renegotiated"]))
        }),
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a terminal: a log file or journald would get the escape codes.
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => b.try_init(),
        LogFormat::Json => b.json().try_init(),
    };
}

fn run_daemon(config: PathBuf, socket: Option<PathBuf>, log_format: LogFormat) -> ExitCode {
    init_logging(log_format);
    match daemon::run(RunOptions { config, socket }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("vpngw: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Sends one request; exit 0 with the rendered answer, 1 on a daemon error, 2 when the
/// daemon cannot be reached.
fn client(
    opts: &ClientOpts,
    req: Request,
    render: impl Fn(serde_json::Value) -> Result<String, serde_json::Error>,
) -> ExitCode {
    let resp = match call(&opts.socket, &req) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "vpngw: cannot reach the daemon at {}: {e}",
                opts.socket.display()
            );
            return ExitCode::from(2);
        }
    };
    if !resp.ok {
        eprintln!("vpngw: {}", resp.error.as_deref().unwrap_or("error"));
        return ExitCode::from(1);
    }
    let data = resp.data.unwrap_or(serde_json::Value::Null);
    if opts.json {
        println!("{data}");
        return ExitCode::SUCCESS;
    }
    match render(data) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vpngw: unexpected answer: {e}");
            ExitCode::from(1)
        }
    }
}

/// One request/response exchange over the control socket.
pub fn call(socket: &Path, req: &Request) -> std::io::Result<Response> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut line = serde_json::to_string(req)?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut answer = String::new();
    reader.read_line(&mut answer)?;
    Ok(serde_json::from_str(&answer)?)
}

fn check_config(file: &std::path::Path) -> ExitCode {
    match Config::load(file) {
        Ok(config) => {
            println!("OK: {}", file.display());
            print!("{}", config.summary());
            ExitCode::SUCCESS
        }
        Err(e) => {
            let lines = e.lines();
            for line in &lines {
                eprintln!("{line}");
            }
            eprintln!("{}: {} error(s)", file.display(), lines.len());
            ExitCode::FAILURE
        }
    }
}
