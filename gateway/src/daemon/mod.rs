//! `vpngw run`: sets up the TUN device, kernel routes, underlay sockets and dataplane
//! workers, then drives every tunnel's IKE engine from one tokio task that also answers
//! the control socket and handles SIGINT/SIGTERM.

mod clock;
mod control;
mod ike_config;
mod leaving;
mod lingering;
mod metrics;
mod sender;
mod setup;
mod state;
pub mod status;
mod tunnels;

pub use ike_config::{ike_config, IkeConfigError};
pub use setup::{run, DaemonError, RunOptions};
