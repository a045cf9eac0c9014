//! Command line of `vpngw lab`, `vpngw lab cloud` and `vpngw lab down`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Subcommand, ValueEnum};

/// Where lab state files live: one JSON file per running or kept lab.
pub const DEFAULT_STATE_DIR: &str = "/run/vpngw-lab";

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LabArgs {
    #[command(subcommand)]
    pub command: Option<LabCommand>,
    #[command(flatten)]
    pub site: SiteOpts,
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Only the cloud endpoint (ASN 65000), for a real customer device to connect to;
    /// prints the settings the device needs. Runs until Ctrl-C unless --keep.
    Cloud(Box<CloudOpts>),
    /// Removes what a kept (or killed) lab left behind: processes, namespaces, routes.
    Down(DownOpts),
}

/// Options of every lab that builds something.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonOpts {
    /// Leave the lab running and exit; `vpngw lab down` removes it later.
    #[arg(long)]
    pub keep: bool,
    /// Where configs, logs and control sockets go: new or empty, deleted when done
    /// (default: $TMPDIR/vpngw-lab-<pid>).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Where the lab records what it made, for `vpngw lab down`.
    #[arg(long, default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
    /// How long each wait may take (daemon start, tunnels UP, BGP established).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Peer {
    /// vpngw plays the cloud border gateway.
    Vpngw,
    /// strongSwan (charon, kernel-libipsec) + BIRD 2 play the cloud border gateway.
    Strongswan,
}

/// `vpngw lab`: the whole site-to-site lab.
#[derive(Debug, Clone, clap::Args)]
pub struct SiteOpts {
    #[command(flatten)]
    pub common: CommonOpts,
    /// What runs on the cloud side.
    #[arg(long, value_enum, default_value = "vpngw")]
    pub peer: Peer,
    /// Length of the iperf3 throughput test, in seconds.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=60))]
    pub iperf_seconds: u32,
    /// IKE proposals of the cloud side only (vpngw peer), e.g. to see a mismatch fail.
    #[arg(long)]
    pub cloud_ike_proposals: Option<String>,
    /// Put the customer gateway behind a port-translating NAT router (nftables), as at
    /// an enterprise edge: the customer initiates from a private address, the cloud
    /// answers it at the NAT's public one. At the end the NAT reboots (mappings
    /// flushed, new ports) and the lab times how soon traffic flows again.
    #[arg(long)]
    pub nat: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConsoleFormat {
    /// A cloud console's "download configuration" text.
    Console,
    /// A strongSwan swanctl.conf snippet for the customer side.
    Swanctl,
}

/// `vpngw lab cloud`.
#[derive(Debug, Clone, clap::Args)]
pub struct CloudOpts {
    #[command(flatten)]
    pub common: CommonOpts,
    /// VPN connections, each with two tunnels.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=32))]
    pub connections: u8,
    /// Pre-shared keys, one per tunnel in order (conn1 tun1, conn1 tun2, conn2 tun1...);
    /// default: random.
    #[arg(long = "psk")]
    pub psks: Vec<String>,
    /// Tunnel inner /30s, one per tunnel in order (the cloud takes .1, the customer .2);
    /// default: conn1 169.254.10.0/30 and 169.254.11.0/30, conn2 .12 and .13, ...
    #[arg(long = "inner")]
    pub inners: Vec<String>,
    #[arg(long, default_value = "aes128gcm16-prfsha256-modp2048")]
    pub ike_proposals: String,
    #[arg(long, default_value = "aes128gcm16-modp2048")]
    pub esp_proposals: String,
    /// Wait for the customer device to initiate instead of initiating.
    #[arg(long)]
    pub no_initiate: bool,
    /// Put the customer end of the underlay veth into this namespace instead of the root
    /// namespace.
    #[arg(long)]
    pub attach_netns: Option<String>,
    /// The customer's BGP ASN.
    #[arg(long, default_value_t = 65010)]
    pub customer_asn: u32,
    /// Also route this customer prefix statically over connection 1 (besides BGP).
    #[arg(long)]
    pub customer_prefix: Option<String>,
    /// Also write the customer settings to this file (mode 0600: it holds the PSKs).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Form of the customer settings.
    #[arg(long, value_enum, default_value = "console")]
    pub format: ConsoleFormat,
}

/// `vpngw lab down`.
#[derive(Debug, Clone, clap::Args)]
pub struct DownOpts {
    #[arg(long, default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
}
