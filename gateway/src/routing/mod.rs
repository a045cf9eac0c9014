//! Routing: which tunnel carries a packet.
//!
//! The control plane edits a [`Rib`] (static routes, BGP routes, tunnel UP/DOWN) and publishes
//! an immutable [`Fib`] snapshot into a [`RoutingTable`]; dataplane threads read the current
//! snapshot without locks (`arc-swap`) and look up without allocating.

mod fib;
mod flow;
mod from_config;
mod rib;
mod table;

pub use crate::config::SelectionMode;
pub use fib::{Fib, NextHops};
pub use flow::{flow_hash, FlowKey};
pub use from_config::TunnelNames;
pub use rib::{Rib, RouteError};
pub use table::RoutingTable;

/// Index of a tunnel in the daemon's tunnel list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TunnelId(pub u16);

#[cfg(test)]
mod proptests;
