//! IKEv2 cryptography: PRF and prf+, key derivation (RFC 7296 2.13, 2.14, 2.17, 2.18),
//! PSK authentication (2.15), the SK payload (3.14, RFC 5282) and Diffie-Hellman groups.

mod algs;
pub mod auth;
pub mod dh;
pub mod keys;
mod modp_primes;
mod secret;
pub mod sk;
#[cfg(test)]
mod tests;

pub use algs::{EncrAlg, IntegAlg, PrfAlg};
pub use dh::{DhGroup, DhPrivate};
pub use secret::Secret;

use thiserror::Error;

/// Cryptographic failures (integrity, bad peer public values, malformed ciphertext).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CryptoError {
    #[error("integrity check failed")]
    IntegrityCheckFailed,
    #[error("ciphertext malformed: {0}")]
    BadCiphertext(&'static str),
    #[error("invalid peer public value for DH group {0}")]
    InvalidPublicValue(u16),
    #[error("key of wrong length for {0}")]
    BadKeyLength(&'static str),
    #[error("DH group {0} is weak and not enabled")]
    WeakGroup(u16),
}
