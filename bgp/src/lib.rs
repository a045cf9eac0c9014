//! BGP-4 (RFC 4271) speaker core, sans-IO.

pub mod prefix;
pub mod wire;

pub use prefix::{Ipv4Prefix, PrefixError};
