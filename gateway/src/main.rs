use clap::Parser;

/// vpngw: userspace IPsec/IKEv2 site-to-site VPN gateway.
#[derive(Parser)]
#[command(version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
