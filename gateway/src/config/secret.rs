//! Pre-shared keys and other secrets: never printed, wiped from memory on drop.

use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Secret bytes (a PSK). `Debug` prints `<redacted>`; the bytes are zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct Secret {
    bytes: Vec<u8>,
}

impl Secret {
    /// Takes ownership of `bytes`; they are wiped when the secret is dropped.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self { bytes }
    }

    /// Moves a string into a secret without leaving a copy behind.
    pub fn from_string(s: String) -> Self {
        Self::new(s.into_bytes())
    }

    /// The secret bytes, for the code that really needs them (IKE AUTH).
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::from_string("hunter2-very-secret".to_owned());
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(&s)), "Some(<redacted>)");
        assert_eq!(s.expose(), b"hunter2-very-secret");
    }

    #[test]
    fn zeroize_wipes_bytes() {
        let mut s = Secret::new(b"abcdefgh".to_vec());
        s.zeroize();
        assert!(s.expose().iter().all(|&b| b == 0) || s.is_empty());
    }
}
