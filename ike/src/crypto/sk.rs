//! The Encrypted payload SK (RFC 7296 3.14) and the Encrypted Fragment payload SKF
//! (RFC 7383 2.5), with AES-CBC + HMAC or AES-GCM-16 (RFC 5282).
//!
//! CBC: the ICV is the truncated HMAC over the whole message from the first byte of the
//! IKE header to the last byte of the ciphertext. GCM: the AAD is the IKE header and the
//! SK (or SKF, including fragment number and total) payload header; nonce = salt | IV.
use super::{CryptoError, EncrAlg, IntegAlg};
use crate::wire::{Header, PayloadType, HEADER_LEN};
use aes::cipher::{block_padding::NoPadding, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use rand_core::CryptoRngCore;
use ring::aead;

/// The keys of one direction of an IKE SA.
#[derive(Clone, Copy)]
pub struct SkCipher<'a> {
    pub encr: EncrAlg,
    pub integ: Option<IntegAlg>,
    pub encr_key: &'a [u8],
    pub integ_key: &'a [u8],
}

/// A decrypted SK or SKF message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub header: Header,
    /// First inner payload type (0 for non-first fragments).
    pub inner_first: u8,
    /// Fragment number and total, for SKF.
    pub fragment: Option<(u16, u16)>,
    pub plaintext: Vec<u8>,
}

impl SkCipher<'_> {
    fn icv_len(&self) -> usize {
        match (self.encr, self.integ) {
            (EncrAlg::AesGcm16(_), _) => 16,
            (_, Some(i)) => i.icv_len(),
            (_, None) => 0,
        }
    }

    /// Bytes added around `n` bytes of inner payloads with minimal padding.
    pub fn overhead(&self, n: usize) -> usize {
        let b = self.encr.block_len();
        let padded = (n + 1).div_ceil(b) * b;
        4 + self.encr.iv_len() + padded - n + self.icv_len()
    }

    /// Encrypts with a random IV and minimal zero padding.
    pub fn seal(
        &self,
        header: &Header,
        inner_first: u8,
        fragment: Option<(u16, u16)>,
        plaintext: &[u8],
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Vec<u8>, CryptoError> {
        let mut iv = vec![0u8; self.encr.iv_len()];
        rng.fill_bytes(&mut iv);
        let b = self.encr.block_len();
        let pad_len = ((plaintext.len() + 1).div_ceil(b) * b) - plaintext.len() - 1;
        self.seal_with(
            header,
            inner_first,
            fragment,
            plaintext,
            &iv,
            &vec![0u8; pad_len],
        )
    }

    /// Encrypts with the given IV and padding bytes (without the pad-length byte).
    pub fn seal_with(
        &self,
        header: &Header,
        inner_first: u8,
        fragment: Option<(u16, u16)>,
        plaintext: &[u8],
        iv: &[u8],
        padding: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        if iv.len() != self.encr.iv_len() {
            return Err(CryptoError::BadKeyLength("IV"));
        }
        let pad_len =
            u8::try_from(padding.len()).map_err(|_| CryptoError::BadCiphertext("padding"))?;
        let mut inner = Vec::with_capacity(plaintext.len() + padding.len() + 1 + 16);
        inner.extend_from_slice(plaintext);
        inner.extend_from_slice(padding);
        inner.push(pad_len);
        if inner.len() % self.encr.block_len() != 0 {
            return Err(CryptoError::BadCiphertext(
                "padding does not fill the block",
            ));
        }
        let extra = if fragment.is_some() { 4 } else { 0 };
        let payload_len = 4 + extra + iv.len() + inner.len() + self.icv_len();
        let mut h = *header;
        h.next_payload = if fragment.is_some() {
            PayloadType::SKF
        } else {
            PayloadType::SK
        };
        h.length = (HEADER_LEN + payload_len) as u32;
        let mut out = Vec::with_capacity(h.length as usize);
        h.encode(&mut out);
        out.push(inner_first);
        out.push(0);
        out.extend_from_slice(&(payload_len as u16).to_be_bytes());
        if let Some((n, t)) = fragment {
            out.extend_from_slice(&n.to_be_bytes());
            out.extend_from_slice(&t.to_be_bytes());
        }
        let aad_end = out.len();
        out.extend_from_slice(iv);
        match self.encr {
            EncrAlg::AesCbc(bits) => {
                cbc_encrypt(bits, self.encr_key, iv, &mut inner)?;
                out.extend_from_slice(&inner);
                let integ = self
                    .integ
                    .ok_or(CryptoError::BadKeyLength("integrity algorithm"))?;
                let icv = integ.compute(self.integ_key, &out);
                out.extend_from_slice(&icv);
            }
            EncrAlg::AesGcm16(_) => {
                let (key, nonce) = gcm_key_nonce(self.encr, self.encr_key, iv)?;
                let aad = out.get(..aad_end).unwrap_or_default();
                let tag = key
                    .seal_in_place_separate_tag(nonce, aead::Aad::from(aad), &mut inner)
                    .map_err(|_| CryptoError::BadCiphertext("GCM seal"))?;
                out.extend_from_slice(&inner);
                out.extend_from_slice(tag.as_ref());
            }
        }
        zeroize::Zeroize::zeroize(&mut inner);
        Ok(out)
    }

    /// Checks integrity and decrypts a message whose first payload is SK or SKF.
    pub fn open(&self, raw: &[u8]) -> Result<Opened, CryptoError> {
        let header = Header::decode(raw).map_err(|_| CryptoError::BadCiphertext("header"))?;
        let raw = raw
            .get(..header.length as usize)
            .ok_or(CryptoError::BadCiphertext("truncated message"))?;
        let is_frag = match header.next_payload {
            PayloadType::SK => false,
            PayloadType::SKF => true,
            _ => return Err(CryptoError::BadCiphertext("first payload is not SK/SKF")),
        };
        let gen = raw
            .get(HEADER_LEN..HEADER_LEN + 4)
            .ok_or(CryptoError::BadCiphertext("truncated SK header"))?;
        let inner_first = gen[0];
        let plen = usize::from(u16::from_be_bytes([gen[2], gen[3]]));
        if HEADER_LEN + plen != raw.len() {
            return Err(CryptoError::BadCiphertext(
                "SK payload is not last or has bad length",
            ));
        }
        let mut pos = HEADER_LEN + 4;
        let fragment = if is_frag {
            let f = raw
                .get(pos..pos + 4)
                .ok_or(CryptoError::BadCiphertext("truncated SKF header"))?;
            pos += 4;
            let n = u16::from_be_bytes([f[0], f[1]]);
            let t = u16::from_be_bytes([f[2], f[3]]);
            if n == 0 || n > t {
                return Err(CryptoError::BadCiphertext("fragment number"));
            }
            Some((n, t))
        } else {
            None
        };
        let aad_end = pos;
        let iv_len = self.encr.iv_len();
        let icv_len = self.icv_len();
        if raw.len() < pos + iv_len + icv_len {
            return Err(CryptoError::BadCiphertext("too short"));
        }
        let iv = &raw[pos..pos + iv_len];
        let ct_end = raw.len() - icv_len;
        let mut inner = raw[pos + iv_len..ct_end].to_vec();
        match self.encr {
            EncrAlg::AesCbc(bits) => {
                let integ = self
                    .integ
                    .ok_or(CryptoError::BadKeyLength("integrity algorithm"))?;
                if !integ.verify(self.integ_key, &raw[..ct_end], &raw[ct_end..]) {
                    return Err(CryptoError::IntegrityCheckFailed);
                }
                if inner.is_empty() || inner.len() % 16 != 0 {
                    return Err(CryptoError::BadCiphertext("not a whole number of blocks"));
                }
                cbc_decrypt(bits, self.encr_key, iv, &mut inner)?;
            }
            EncrAlg::AesGcm16(_) => {
                let (key, nonce) = gcm_key_nonce(self.encr, self.encr_key, iv)?;
                inner.extend_from_slice(&raw[ct_end..]);
                let n = key
                    .open_in_place(nonce, aead::Aad::from(&raw[..aad_end]), &mut inner)
                    .map_err(|_| CryptoError::IntegrityCheckFailed)?
                    .len();
                inner.truncate(n);
            }
        }
        let pad = usize::from(*inner.last().ok_or(CryptoError::BadCiphertext("empty"))?);
        if pad + 1 > inner.len() {
            return Err(CryptoError::BadCiphertext("pad length"));
        }
        inner.truncate(inner.len() - pad - 1);
        Ok(Opened {
            header,
            inner_first,
            fragment,
            plaintext: inner,
        })
    }
}

fn gcm_key_nonce(
    encr: EncrAlg,
    key: &[u8],
    iv: &[u8],
) -> Result<(aead::LessSafeKey, aead::Nonce), CryptoError> {
    let bad = CryptoError::BadKeyLength("AES-GCM");
    if key.len() != encr.key_len() {
        return Err(bad);
    }
    let (k, salt) = key.split_at(key.len() - 4);
    let alg = match encr.key_bits() {
        128 => &aead::AES_128_GCM,
        256 => &aead::AES_256_GCM,
        _ => return Err(bad),
    };
    let unbound = aead::UnboundKey::new(alg, k).map_err(|_| bad.clone())?;
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(salt);
    n[4..].copy_from_slice(iv);
    Ok((
        aead::LessSafeKey::new(unbound),
        aead::Nonce::assume_unique_for_key(n),
    ))
}

fn cbc_encrypt(bits: u16, key: &[u8], iv: &[u8], buf: &mut [u8]) -> Result<(), CryptoError> {
    let bad = |_| CryptoError::BadKeyLength("AES-CBC");
    let len = buf.len();
    let r = match bits {
        128 => cbc::Encryptor::<aes::Aes128>::new_from_slices(key, iv)
            .map_err(bad)?
            .encrypt_padded_mut::<NoPadding>(buf, len)
            .is_ok(),
        192 => cbc::Encryptor::<aes::Aes192>::new_from_slices(key, iv)
            .map_err(bad)?
            .encrypt_padded_mut::<NoPadding>(buf, len)
            .is_ok(),
        256 => cbc::Encryptor::<aes::Aes256>::new_from_slices(key, iv)
            .map_err(bad)?
            .encrypt_padded_mut::<NoPadding>(buf, len)
            .is_ok(),
        _ => false,
    };
    r.then_some(())
        .ok_or(CryptoError::BadCiphertext("CBC encrypt"))
}

fn cbc_decrypt(bits: u16, key: &[u8], iv: &[u8], buf: &mut [u8]) -> Result<(), CryptoError> {
    let bad = |_| CryptoError::BadKeyLength("AES-CBC");
    let r = match bits {
        128 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .map_err(bad)?
            .decrypt_padded_mut::<NoPadding>(buf)
            .is_ok(),
        192 => cbc::Decryptor::<aes::Aes192>::new_from_slices(key, iv)
            .map_err(bad)?
            .decrypt_padded_mut::<NoPadding>(buf)
            .is_ok(),
        256 => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .map_err(bad)?
            .decrypt_padded_mut::<NoPadding>(buf)
            .is_ok(),
        _ => false,
    };
    r.then_some(())
        .ok_or(CryptoError::BadCiphertext("CBC decrypt"))
}

/// Collects the fragments of one message (RFC 7383 2.6) until all have arrived.
#[derive(Debug, Default)]
pub struct Reassembler {
    message_id: u32,
    total: u16,
    inner_first: u8,
    parts: Vec<Option<Vec<u8>>>,
}

/// Upper bound on fragments per message, so a peer cannot make us hold much memory.
pub const MAX_FRAGMENTS: u16 = 64;

impl Reassembler {
    /// Adds one opened fragment; returns (first inner type, whole plaintext) once complete.
    pub fn add(&mut self, o: Opened) -> Option<(u8, Vec<u8>)> {
        let (n, total) = o.fragment?;
        if total > MAX_FRAGMENTS {
            return None;
        }
        if self.parts.is_empty() || self.message_id != o.header.message_id || self.total != total {
            *self = Reassembler {
                message_id: o.header.message_id,
                total,
                inner_first: 0,
                parts: vec![None; usize::from(total)],
            };
        }
        if n == 1 {
            self.inner_first = o.inner_first;
        }
        *self.parts.get_mut(usize::from(n).checked_sub(1)?)? = Some(o.plaintext);
        if self.parts.iter().any(Option::is_none) {
            return None;
        }
        let whole: Vec<u8> = self.parts.drain(..).flatten().flatten().collect();
        Some((self.inner_first, whole))
    }
}
