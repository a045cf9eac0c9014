//! vpngw: the gateway daemon's building blocks (config, routing table, packet helpers, kernel
//! integration, dataplane workers, the daemon's control plane). The binary `vpngw` is a thin
//! CLI over this library.

pub mod bgp_speaker;
pub mod cli;
pub mod config;
#[cfg(target_os = "linux")]
pub mod daemon;
#[cfg(target_os = "linux")]
pub mod dataplane;
#[cfg(target_os = "linux")]
pub mod lab;
pub mod packet;
pub mod routing;
#[cfg(target_os = "linux")]
pub mod sys;
