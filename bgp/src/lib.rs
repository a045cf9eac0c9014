//! BGP-4 (RFC 4271) speaker core, sans-IO.
