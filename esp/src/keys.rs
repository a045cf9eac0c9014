//! Secret key material. Debug never prints it; it is zeroized on drop.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::SaError;
use crate::suite::Suite;

/// Keys of one SA direction, laid out as IKEv2 hands them over (RFC 7296 2.17):
/// the encryption key (for GCM including the 4-byte salt at its end), then the
/// integrity key (empty for AEAD suites).
pub struct SaKeys {
    encr: Zeroizing<Vec<u8>>,
    integ: Zeroizing<Vec<u8>>,
}

impl SaKeys {
    /// Keys from separate encryption and integrity parts; lengths are checked
    /// against `suite`.
    pub fn new(suite: Suite, encr: &[u8], integ: &[u8]) -> Result<Self, SaError> {
        if encr.len() != suite.encr_key_len() {
            return Err(SaError::KeyLength {
                what: "encryption",
                expected: suite.encr_key_len(),
                got: encr.len(),
            });
        }
        if integ.len() != suite.integ_key_len() {
            return Err(SaError::KeyLength {
                what: "integrity",
                expected: suite.integ_key_len(),
                got: integ.len(),
            });
        }
        Ok(SaKeys {
            encr: Zeroizing::new(encr.to_vec()),
            integ: Zeroizing::new(integ.to_vec()),
        })
    }

    /// Keys from the slice of KEYMAT belonging to one direction
    /// (`encr_key | integ_key`, exactly `suite.keymat_len()` bytes).
    pub fn from_keymat(suite: Suite, keymat: &[u8]) -> Result<Self, SaError> {
        if keymat.len() != suite.keymat_len() {
            return Err(SaError::KeyLength {
                what: "keying material",
                expected: suite.keymat_len(),
                got: keymat.len(),
            });
        }
        let (encr, integ) = keymat.split_at(suite.encr_key_len());
        SaKeys::new(suite, encr, integ)
    }

    pub(crate) fn encr(&self) -> &[u8] {
        &self.encr
    }

    pub(crate) fn integ(&self) -> &[u8] {
        &self.integ
    }
}

impl fmt::Debug for SaKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SaKeys(<redacted>)")
    }
}

/// Secret key of the per-SA CBC IV generator (see [`crate::OutboundSa`]): the
/// caller draws it from its RNG when it creates the SA. Unused by AEAD suites.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct IvKey([u8; 16]);

impl IvKey {
    pub fn new(bytes: [u8; 16]) -> Self {
        IvKey(bytes)
    }

    pub(crate) fn bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for IvKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IvKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::{AesKeySize, Integrity};

    #[test]
    fn debug_is_redacted() {
        let s = Suite::AesGcm16(AesKeySize::Aes128);
        let k = SaKeys::from_keymat(s, &[0x42; 20]).unwrap();
        assert_eq!(format!("{k:?}"), "SaKeys(<redacted>)");
        assert_eq!(format!("{:?}", IvKey::new([7; 16])), "IvKey(<redacted>)");
    }

    #[test]
    fn keymat_is_split_encr_then_integ() {
        let s = Suite::AesCbc(AesKeySize::Aes128, Integrity::HmacSha1_96);
        let km: Vec<u8> = (0..36).collect();
        let k = SaKeys::from_keymat(s, &km).unwrap();
        assert_eq!(k.encr(), &km[..16]);
        assert_eq!(k.integ(), &km[16..]);
        assert!(matches!(
            SaKeys::from_keymat(s, &km[..35]),
            Err(SaError::KeyLength { .. })
        ));
        assert!(SaKeys::new(s, &km[..16], &km[..16]).is_err());
    }
}
