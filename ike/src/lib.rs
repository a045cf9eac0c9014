//! IKEv2 (RFC 7296) negotiator, sans-IO.

pub mod crypto;
pub mod proposal;
pub mod sa;
pub mod wire;

pub use sa::{Action, Config, ConfigError, DownReason, IkeError, Tunnel};
