//! IKEv2 (RFC 7296) negotiator, sans-IO.

pub mod crypto;
pub mod proposal;
pub mod wire;
