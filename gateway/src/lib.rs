//! vpngw: the gateway daemon's building blocks (config, routing table, packet helpers, kernel
//! integration). The binary `vpngw` is a thin CLI over this library.

pub mod cli;
pub mod config;
pub mod packet;
pub mod routing;
#[cfg(target_os = "linux")]
pub mod sys;
