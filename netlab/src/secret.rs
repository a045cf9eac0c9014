//! Pre-shared keys: never printed, wiped from memory when dropped.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// A pre-shared key. `Debug` prints `<redacted>`; the bytes are zeroized on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Psk(Vec<u8>);

impl Psk {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Psk(bytes.into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// `0x`-prefixed hex, the form swanctl.conf takes without any quoting concerns.
    pub fn to_swanctl_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("0x{}", hex::encode(&self.0)))
    }
}

impl From<&str> for Psk {
    fn from(s: &str) -> Self {
        Psk::new(s.as_bytes())
    }
}

impl fmt::Debug for Psk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Psk(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_hex_is_exact() {
        let psk = Psk::from("s3cret\"quote");
        assert_eq!(format!("{psk:?}"), "Psk(<redacted>)");
        assert_eq!(psk.to_swanctl_hex().as_str(), "0x7333637265742271756f7465");
        assert_eq!(psk.as_bytes(), b"s3cret\"quote");
    }
}
