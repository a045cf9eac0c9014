//! vpngw <-> vpngw. Runs through the e2e crate's `Vpngw` driver (`vpngw run --config F`)
//! once that exists; until then the candidate says why it cannot run instead of
//! producing a figure.

/// The ESP transform under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    AesGcm128,
    AesCbc128Sha256,
}

impl Suite {
    /// The `esp_proposals` string of a vpngw tunnel config (strongSwan syntax).
    pub fn esp_proposal(self) -> &'static str {
        match self {
            Suite::AesGcm128 => "aes128gcm16",
            Suite::AesCbc128Sha256 => "aes128-sha256",
        }
    }
}

/// Why vpngw cannot be benchmarked by this build.
pub const UNAVAILABLE: &str = "the e2e crate has no Vpngw driver yet (tests/src/vpngw.rs, \
`vpngw run --config F`); wire it in benches/src/candidates/vpngw.rs when it lands";

/// The reason given for `suite` while no driver exists.
pub fn unavailable(suite: Suite) -> String {
    format!("{UNAVAILABLE} (would run ESP {})", suite.esp_proposal())
}
