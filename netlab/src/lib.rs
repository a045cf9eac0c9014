//! Network-namespace labs for vpngw: namespaces joined by veth pairs, and real peers
//! inside them — vpngw itself, strongSwan's charon with kernel-libipsec, BIRD 2, iperf3,
//! ping. The end-to-end tests (crate `e2e`) and `vpngw lab` are both built on it.
//!
//! Everything a test starts is owned by a guard: processes are stopped by PID and
//! reaped, namespaces deleted, even when the test panics. Namespaces are named
//! `vpngwt-<pid>-<n>-<label>`; the first namespace a process creates sweeps away those
//! whose owning process is dead (runs that were killed).
//!
//! Everything needs root; tools that are missing make the harness fail with a hint to
//! run `scripts/install-test-deps`.

pub mod bird;
mod capture;
pub mod charon;
mod cidr;
mod command;
mod endpoint;
mod error;
mod iperf;
pub mod nat;
mod netns;
mod ping;
mod process;
mod secret;
pub mod site_to_site;
mod snmp;
pub mod stop;
mod tools;
mod topology;
pub mod vpngw;
mod wait;
mod workdir;

pub use bird::{BgpPeer, Bird, BirdConfig};
pub use capture::{Capture, PacketCapture};
pub use charon::{Charon, CharonConfig, Side, TunnelConfig};
pub use cidr::Cidr;
pub use command::{run, run_argv};
pub use endpoint::{
    bird_config, gateway, inner_pair, EndpointOptions, StrongswanEndpoint, IPSEC_DEV,
};
pub use error::{HarnessError, Result};
pub use iperf::{iperf_client, IperfOptions, IperfResult, IperfServer};
pub use netns::{
    delete_namespace, enter_on_this_thread, list_namespaces, owner_pid, sweep_stale_namespaces,
    LinkStats, Netns, PREFIX,
};
pub use ping::{ping, PingOptions, PingStats, Rtt};
pub use process::{pid_alive, tail_of_file, ProcessGuard};
pub use secret::Psk;
pub use site_to_site::{plan, SiteToSite, TunnelPlan};
pub use snmp::SnmpCounters;
pub use tools::{is_root, require, vpngw_binary, Tool, INSTALL_HINT, VPNGW_BIN_ENV};
pub use topology::{Topology, TopologyBuilder};
pub use vpngw::{
    sessions_learned_one_route, Vpngw, VpngwBgp, VpngwBgpSession, VpngwConfig, VpngwLaunch,
    VpngwRoute, VpngwRoutes, VpngwStatus, VpngwTunnel, VpngwTunnelStatus,
};
pub use wait::{wait_for, wait_until, Poll};
pub use workdir::{keep_all_work_dirs, WorkDir, KEEP_ENV};
