//! The negotiable algorithms: transform IDs, key and output sizes, and the primitives.
use super::Secret;
use ring::hmac;
use subtle::ConstantTimeEq;

/// Pseudo-random functions (transform type 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrfAlg {
    HmacSha1,
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

impl PrfAlg {
    pub fn id(self) -> u16 {
        match self {
            PrfAlg::HmacSha1 => 2,
            PrfAlg::HmacSha256 => 5,
            PrfAlg::HmacSha384 => 6,
            PrfAlg::HmacSha512 => 7,
        }
    }

    pub fn from_id(id: u16) -> Option<Self> {
        Some(match id {
            2 => PrfAlg::HmacSha1,
            5 => PrfAlg::HmacSha256,
            6 => PrfAlg::HmacSha384,
            7 => PrfAlg::HmacSha512,
            _ => return None,
        })
    }

    fn ring(self) -> hmac::Algorithm {
        match self {
            PrfAlg::HmacSha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            PrfAlg::HmacSha256 => hmac::HMAC_SHA256,
            PrfAlg::HmacSha384 => hmac::HMAC_SHA384,
            PrfAlg::HmacSha512 => hmac::HMAC_SHA512,
        }
    }

    /// Output length, which is also the preferred key length for SK_d, SK_pi and SK_pr.
    pub fn output_len(self) -> usize {
        match self {
            PrfAlg::HmacSha1 => 20,
            PrfAlg::HmacSha256 => 32,
            PrfAlg::HmacSha384 => 48,
            PrfAlg::HmacSha512 => 64,
        }
    }

    /// prf(key, data).
    pub fn prf(self, key: &[u8], data: &[u8]) -> Secret {
        self.prf_parts(key, &[data])
    }

    /// prf(key, part1 | part2 | ...), without copying the parts together.
    pub fn prf_parts(self, key: &[u8], parts: &[&[u8]]) -> Secret {
        let key = hmac::Key::new(self.ring(), key);
        let mut ctx = hmac::Context::with_key(&key);
        for p in parts {
            ctx.update(p);
        }
        Secret::from_slice(ctx.sign().as_ref())
    }

    /// prf+(K, S) = T1 | T2 | ... with T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n),
    /// cut to `len` bytes (RFC 7296 2.13). At most 255 blocks.
    pub fn prf_plus(self, key: &[u8], seed: &[u8], len: usize) -> Secret {
        let hkey = hmac::Key::new(self.ring(), key);
        let mut out = Vec::with_capacity(len + self.output_len());
        let mut prev: Vec<u8> = Vec::new();
        let mut n: u8 = 1;
        while out.len() < len {
            let mut ctx = hmac::Context::with_key(&hkey);
            ctx.update(&prev);
            ctx.update(seed);
            ctx.update(&[n]);
            let t = ctx.sign();
            out.extend_from_slice(t.as_ref());
            prev.zeroize_and_set(t.as_ref());
            n = match n.checked_add(1) {
                Some(n) => n,
                None => break,
            };
        }
        prev.zeroize_and_set(&[]);
        out.truncate(len);
        Secret::new(out)
    }
}

trait ZeroizeAndSet {
    fn zeroize_and_set(&mut self, v: &[u8]);
}

impl ZeroizeAndSet for Vec<u8> {
    fn zeroize_and_set(&mut self, v: &[u8]) {
        zeroize::Zeroize::zeroize(self);
        self.extend_from_slice(v);
    }
}

/// Integrity algorithms (transform type 3), truncated HMACs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntegAlg {
    HmacSha1_96,
    HmacSha256_128,
    HmacSha384_192,
    HmacSha512_256,
}

impl IntegAlg {
    pub fn id(self) -> u16 {
        match self {
            IntegAlg::HmacSha1_96 => 2,
            IntegAlg::HmacSha256_128 => 12,
            IntegAlg::HmacSha384_192 => 13,
            IntegAlg::HmacSha512_256 => 14,
        }
    }

    pub fn from_id(id: u16) -> Option<Self> {
        Some(match id {
            2 => IntegAlg::HmacSha1_96,
            12 => IntegAlg::HmacSha256_128,
            13 => IntegAlg::HmacSha384_192,
            14 => IntegAlg::HmacSha512_256,
            _ => return None,
        })
    }

    fn prf(self) -> PrfAlg {
        match self {
            IntegAlg::HmacSha1_96 => PrfAlg::HmacSha1,
            IntegAlg::HmacSha256_128 => PrfAlg::HmacSha256,
            IntegAlg::HmacSha384_192 => PrfAlg::HmacSha384,
            IntegAlg::HmacSha512_256 => PrfAlg::HmacSha512,
        }
    }

    /// Key length: the hash output length (RFC 4868 2.1.1, RFC 2404).
    pub fn key_len(self) -> usize {
        self.prf().output_len()
    }

    pub fn icv_len(self) -> usize {
        match self {
            IntegAlg::HmacSha1_96 => 12,
            IntegAlg::HmacSha256_128 => 16,
            IntegAlg::HmacSha384_192 => 24,
            IntegAlg::HmacSha512_256 => 32,
        }
    }

    pub fn compute(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut full = self.prf().prf(key, data).expose().to_vec();
        full.truncate(self.icv_len());
        full
    }

    /// Constant-time check of a received ICV.
    pub fn verify(self, key: &[u8], data: &[u8], icv: &[u8]) -> bool {
        let expect = self.compute(key, data);
        expect.len() == icv.len() && bool::from(expect.ct_eq(icv))
    }
}

/// Encryption algorithms (transform type 1). Key length in bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncrAlg {
    AesCbc(u16),
    AesGcm16(u16),
}

impl EncrAlg {
    pub const ENCR_AES_CBC: u16 = 12;
    pub const ENCR_AES_GCM_16: u16 = 20;

    pub fn id(self) -> u16 {
        match self {
            EncrAlg::AesCbc(_) => Self::ENCR_AES_CBC,
            EncrAlg::AesGcm16(_) => Self::ENCR_AES_GCM_16,
        }
    }

    pub fn from_id(id: u16, key_bits: Option<u16>) -> Option<Self> {
        let bits = key_bits?;
        if !matches!(bits, 128 | 192 | 256) {
            return None;
        }
        match id {
            Self::ENCR_AES_CBC => Some(EncrAlg::AesCbc(bits)),
            // ring has no AES-192; GCM is offered with 128 and 256 only.
            Self::ENCR_AES_GCM_16 if bits != 192 => Some(EncrAlg::AesGcm16(bits)),
            _ => None,
        }
    }

    pub fn key_bits(self) -> u16 {
        match self {
            EncrAlg::AesCbc(b) | EncrAlg::AesGcm16(b) => b,
        }
    }

    pub fn is_aead(self) -> bool {
        matches!(self, EncrAlg::AesGcm16(_))
    }

    /// Key material length: the AES key, plus the 4-byte salt for GCM (RFC 5282 7.1).
    pub fn key_len(self) -> usize {
        match self {
            EncrAlg::AesCbc(b) => usize::from(b) / 8,
            EncrAlg::AesGcm16(b) => usize::from(b) / 8 + 4,
        }
    }

    pub fn iv_len(self) -> usize {
        match self {
            EncrAlg::AesCbc(_) => 16,
            EncrAlg::AesGcm16(_) => 8,
        }
    }

    /// The plaintext (with pad-length byte) must be a multiple of this.
    pub fn block_len(self) -> usize {
        match self {
            EncrAlg::AesCbc(_) => 16,
            EncrAlg::AesGcm16(_) => 1,
        }
    }
}
