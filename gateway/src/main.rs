use clap::Parser;
use gateway::cli::{run, Cli};

fn main() -> std::process::ExitCode {
    run(Cli::parse())
}
