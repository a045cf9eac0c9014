//! The per-SA cryptographic transform, prepared once (key schedules, HMAC
//! states) and applied to whole ESP packets in place.
//!
//! A packet here is `SPI | seq_lo | IV | ciphertext | ICV`. The caller has
//! written the header and IV and checked the lengths; `seq_hi` is the upper
//! half of the 64-bit sequence number when ESN is on (RFC 4303 2.2.1), which is
//! authenticated but not transmitted.

use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockDecryptMut, BlockEncrypt, BlockEncryptMut, InnerIvInit, KeyInit};
use aes::{Aes128, Aes256};
use ring::{aead, hmac};
use subtle::ConstantTimeEq;

use crate::error::SaError;
use crate::keys::{IvKey, SaKeys};
use crate::suite::{AesKeySize, Integrity, Suite, ESP_HEADER_LEN, GCM_SALT_LEN};

/// Integrity or decryption failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpenError;

/// Sealing failed: only on a length the caller should have prevented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SealError;

// One per SA, built once and never moved on the hot path: size does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Transform {
    Gcm(Gcm),
    CbcHmac(CbcHmac),
}

impl Transform {
    pub(crate) fn new(suite: Suite, keys: &SaKeys) -> Result<Self, SaError> {
        match suite {
            Suite::AesGcm16(size) => Gcm::new(size, keys.encr()).map(Transform::Gcm),
            Suite::AesCbc(size, integ) => {
                CbcHmac::new(size, integ, keys.encr(), keys.integ()).map(Transform::CbcHmac)
            }
        }
    }

    /// Encrypts the plaintext and writes the ICV.
    pub(crate) fn seal(&self, pkt: &mut [u8], seq_hi: Option<u32>) -> Result<(), SealError> {
        match self {
            Transform::Gcm(t) => t.seal(pkt, seq_hi),
            Transform::CbcHmac(t) => t.seal(pkt, seq_hi),
        }
    }

    /// Verifies the ICV (before anything else is trusted) and decrypts in
    /// place; the plaintext is then at `headroom..len - icv_len`.
    pub(crate) fn open(&self, pkt: &mut [u8], seq_hi: Option<u32>) -> Result<(), OpenError> {
        match self {
            Transform::Gcm(t) => t.open(pkt, seq_hi),
            Transform::CbcHmac(t) => t.open(pkt, seq_hi),
        }
    }
}

/// AES-GCM with a 16-byte ICV (RFC 4106).
pub(crate) struct Gcm {
    key: aead::LessSafeKey,
    salt: [u8; GCM_SALT_LEN],
}

const GCM_IV_LEN: usize = 8;
const GCM_ICV_LEN: usize = 16;

impl Gcm {
    fn new(size: AesKeySize, encr: &[u8]) -> Result<Self, SaError> {
        let alg = match size {
            AesKeySize::Aes128 => &aead::AES_128_GCM,
            AesKeySize::Aes256 => &aead::AES_256_GCM,
        };
        // RFC 4106 8.1: the salt is the last four bytes of the keying material.
        let split = encr
            .len()
            .checked_sub(GCM_SALT_LEN)
            .ok_or(SaError::Crypto)?;
        let (key, salt) = encr.split_at(split);
        let key = aead::UnboundKey::new(alg, key).map_err(|_| SaError::Crypto)?;
        let salt = salt.try_into().map_err(|_| SaError::Crypto)?;
        Ok(Gcm {
            key: aead::LessSafeKey::new(key),
            salt,
        })
    }

    /// Nonce (salt | explicit IV) and AAD (SPI | [seq_hi] | seq_lo, RFC 4106 5).
    fn nonce_aad(&self, pkt: &[u8], seq_hi: Option<u32>) -> Option<(aead::Nonce, [u8; 12], usize)> {
        let spi = pkt.get(0..4)?;
        let seq_lo = pkt.get(4..8)?;
        let iv = pkt.get(ESP_HEADER_LEN..ESP_HEADER_LEN + GCM_IV_LEN)?;
        let mut nonce = [0u8; 12];
        nonce[..GCM_SALT_LEN].copy_from_slice(&self.salt);
        nonce[GCM_SALT_LEN..].copy_from_slice(iv);
        let mut aad = [0u8; 12];
        aad[..4].copy_from_slice(spi);
        let aad_len = match seq_hi {
            Some(hi) => {
                aad[4..8].copy_from_slice(&hi.to_be_bytes());
                aad[8..12].copy_from_slice(seq_lo);
                12
            }
            None => {
                aad[4..8].copy_from_slice(seq_lo);
                8
            }
        };
        Some((aead::Nonce::assume_unique_for_key(nonce), aad, aad_len))
    }

    fn seal(&self, pkt: &mut [u8], seq_hi: Option<u32>) -> Result<(), SealError> {
        let (nonce, aad, aad_len) = self.nonce_aad(pkt, seq_hi).ok_or(SealError)?;
        let aad = aead::Aad::from(aad.get(..aad_len).ok_or(SealError)?);
        let start = ESP_HEADER_LEN + GCM_IV_LEN;
        let end = pkt.len().checked_sub(GCM_ICV_LEN).ok_or(SealError)?;
        let body = pkt.get_mut(start..end).ok_or(SealError)?;
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce, aad, body)
            .map_err(|_| SealError)?;
        pkt.get_mut(end..)
            .ok_or(SealError)?
            .copy_from_slice(tag.as_ref());
        Ok(())
    }

    fn open(&self, pkt: &mut [u8], seq_hi: Option<u32>) -> Result<(), OpenError> {
        let (nonce, aad, aad_len) = self.nonce_aad(pkt, seq_hi).ok_or(OpenError)?;
        let aad = aead::Aad::from(aad.get(..aad_len).ok_or(OpenError)?);
        let body = pkt
            .get_mut(ESP_HEADER_LEN + GCM_IV_LEN..)
            .ok_or(OpenError)?;
        // ring verifies the tag in constant time before releasing plaintext.
        self.key
            .open_in_place(nonce, aad, body)
            .map(|_| ())
            .map_err(|_| OpenError)
    }
}

#[allow(clippy::large_enum_variant)]
enum AesCipher {
    A128(Aes128),
    A256(Aes256),
}

/// AES-CBC (RFC 3602) with HMAC-SHA1-96 / HMAC-SHA2 (RFC 2404, RFC 4868),
/// encrypt-then-MAC over the whole packet (RFC 4303 3.3.4).
pub(crate) struct CbcHmac {
    aes: AesCipher,
    mac: hmac::Key,
    icv_len: usize,
}

const CBC_IV_LEN: usize = 16;

impl CbcHmac {
    fn new(size: AesKeySize, integ: Integrity, encr: &[u8], ikey: &[u8]) -> Result<Self, SaError> {
        let aes = match size {
            AesKeySize::Aes128 => {
                AesCipher::A128(Aes128::new_from_slice(encr).map_err(|_| SaError::Crypto)?)
            }
            AesKeySize::Aes256 => {
                AesCipher::A256(Aes256::new_from_slice(encr).map_err(|_| SaError::Crypto)?)
            }
        };
        Ok(CbcHmac {
            aes,
            mac: hmac::Key::new(integ.hmac_algorithm(), ikey),
            icv_len: integ.icv_len(),
        })
    }

    fn split(pkt_len: usize, icv_len: usize) -> Option<(usize, usize)> {
        let start = ESP_HEADER_LEN + CBC_IV_LEN;
        let end = pkt_len.checked_sub(icv_len)?;
        (end >= start && (end - start) % CBC_IV_LEN == 0).then_some((start, end))
    }

    /// HMAC over header, IV and ciphertext, then seq_hi for ESN (RFC 4303 3.3.2.1).
    fn tag(&self, authenticated: &[u8], seq_hi: Option<u32>) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.mac);
        ctx.update(authenticated);
        if let Some(hi) = seq_hi {
            ctx.update(&hi.to_be_bytes());
        }
        ctx.sign()
    }

    fn seal(&self, pkt: &mut [u8], seq_hi: Option<u32>) -> Result<(), SealError> {
        let (start, end) = Self::split(pkt.len(), self.icv_len).ok_or(SealError)?;
        let (head, rest) = pkt.split_at_mut(start);
        let iv = head.get(ESP_HEADER_LEN..).ok_or(SealError)?;
        let body = rest.get_mut(..end - start).ok_or(SealError)?;
        let body_len = body.len();
        let done = match &self.aes {
            AesCipher::A128(c) => cbc::Encryptor::<Aes128>::inner_iv_slice_init(c.clone(), iv)
                .map_err(|_| SealError)?
                .encrypt_padded_mut::<NoPadding>(body, body_len)
                .map(|_| ()),
            AesCipher::A256(c) => cbc::Encryptor::<Aes256>::inner_iv_slice_init(c.clone(), iv)
                .map_err(|_| SealError)?
                .encrypt_padded_mut::<NoPadding>(body, body_len)
                .map(|_| ()),
        };
        done.map_err(|_| SealError)?;
        let tag = self.tag(pkt.get(..end).ok_or(SealError)?, seq_hi);
        let icv = tag.as_ref().get(..self.icv_len).ok_or(SealError)?;
        pkt.get_mut(end..).ok_or(SealError)?.copy_from_slice(icv);
        Ok(())
    }

    fn open(&self, pkt: &mut [u8], seq_hi: Option<u32>) -> Result<(), OpenError> {
        let (start, end) = Self::split(pkt.len(), self.icv_len).ok_or(OpenError)?;
        let (authenticated, icv) = pkt.split_at(end);
        let tag = self.tag(authenticated, seq_hi);
        let expected = tag.as_ref().get(..self.icv_len).ok_or(OpenError)?;
        if !bool::from(expected.ct_eq(icv)) {
            return Err(OpenError);
        }
        let (head, rest) = pkt.split_at_mut(start);
        let iv = head.get(ESP_HEADER_LEN..).ok_or(OpenError)?;
        let body = rest.get_mut(..end - start).ok_or(OpenError)?;
        let done = match &self.aes {
            AesCipher::A128(c) => cbc::Decryptor::<Aes128>::inner_iv_slice_init(c.clone(), iv)
                .map_err(|_| OpenError)?
                .decrypt_padded_mut::<NoPadding>(body)
                .map(|_| ()),
            AesCipher::A256(c) => cbc::Decryptor::<Aes256>::inner_iv_slice_init(c.clone(), iv)
                .map_err(|_| OpenError)?
                .decrypt_padded_mut::<NoPadding>(body)
                .map(|_| ()),
        };
        done.map_err(|_| OpenError)
    }
}

/// CBC IVs for outbound packets: AES-128 under a per-SA secret key of the
/// 128-bit block `0^64 | seq`. Sequence numbers never repeat within an SA, so
/// neither do IVs, and without the key they are unpredictable, as CBC requires
/// (RFC 3602 2.3; the "encrypted nonce" method of NIST SP 800-38A Appendix C).
/// It needs no RNG on the hot path and no shared mutable state between threads.
pub(crate) struct CbcIvGen {
    aes: Aes128,
}

impl CbcIvGen {
    pub(crate) fn new(key: &IvKey) -> Self {
        CbcIvGen {
            aes: Aes128::new(key.bytes().into()),
        }
    }

    pub(crate) fn iv(&self, seq: u64) -> [u8; 16] {
        let mut block = [0u8; 16];
        block[8..].copy_from_slice(&seq.to_be_bytes());
        let mut b = block.into();
        self.aes.encrypt_block(&mut b);
        b.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HMAC truncation matches RFC 4868 2.7.2 AUTH test case 1 and
    /// RFC 2202 test case 5 (HMAC-SHA-1-96, RFC 2404).
    #[test]
    fn hmac_icv_matches_published_vectors() {
        let cases: [(Integrity, u8, &[u8], &str); 4] = [
            (
                Integrity::HmacSha1_96,
                0x0c,
                b"Test With Truncation",
                "4c1a03424b55e07fe7f27be1",
            ),
            (
                Integrity::HmacSha256_128,
                0x0b,
                b"Hi There",
                "198a607eb44bfbc69903a0f1cf2bbdc5",
            ),
            (
                Integrity::HmacSha384_192,
                0x0b,
                b"Hi There",
                "b6a8d5636f5c6a7224f9977dcf7ee6c7fb6d0c48cbdee973",
            ),
            (
                Integrity::HmacSha512_256,
                0x0b,
                b"Hi There",
                "637edc6e01dce7e6742a99451aae82df23da3e92439e590e43e761b33e910fb8",
            ),
        ];
        for (integ, key_byte, data, want) in cases {
            let t = CbcHmac::new(
                AesKeySize::Aes128,
                integ,
                &[0; 16],
                &vec![key_byte; integ.key_len()],
            )
            .unwrap();
            let tag = t.tag(data, None);
            assert_eq!(
                hex::encode(&tag.as_ref()[..integ.icv_len()]),
                want,
                "{integ:?}"
            );
        }
    }

    #[test]
    fn cbc_iv_gen_is_distinct_per_seq_and_key() {
        let a = CbcIvGen::new(&IvKey::new([1; 16]));
        let b = CbcIvGen::new(&IvKey::new([2; 16]));
        assert_ne!(a.iv(1), a.iv(2));
        assert_ne!(a.iv(1), b.iv(1));
        assert_eq!(a.iv(7), a.iv(7));
    }

    /// AES-128 of the counter block: FIPS-197 C.1 key and an all-zero block
    /// give a known value, so the generator really is AES of `0^64 | seq`.
    #[test]
    fn cbc_iv_gen_is_aes_of_the_counter() {
        let key: [u8; 16] = hex::decode("000102030405060708090a0b0c0d0e0f")
            .unwrap()
            .try_into()
            .unwrap();
        let g = CbcIvGen::new(&IvKey::new(key));
        // FIPS-197 C.1 plaintext is 00112233..ff; AES-128(key, 0^128) is:
        assert_eq!(hex::encode(g.iv(0)), "c6a13b37878f5b826f4f8162a1c8d879");
    }
}
