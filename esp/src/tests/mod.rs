//! In-crate tests that need crate-private hooks (fixed seq/IV for known answers).

mod gcm_draft_vectors;
mod seq_numbers;
mod strongswan;
mod trailer;
