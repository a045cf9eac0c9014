//! Command line of `vpngw`.

use crate::config::Config;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// vpngw: userspace IPsec/IKEv2 site-to-site VPN gateway.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a config file (with VPNGW_* environment overrides) and print a summary.
    CheckConfig {
        /// Path of the TOML config file.
        file: PathBuf,
    },
}

/// Runs the parsed command and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::CheckConfig { file } => check_config(&file),
    }
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
