//! IKEv2 (RFC 7296) negotiator, sans-IO.
