//! Diffie-Hellman groups: MODP (RFC 2409, 3526) with constant-time `crypto-bigint`
//! exponentiation, ECP (RFC 5903) and Curve25519 (RFC 8031) from RustCrypto, all
//! keyed from the caller's RNG so that the crate never reads a random source itself.
use super::modp_primes::{MODP_1024, MODP_1536, MODP_2048, MODP_3072, MODP_4096};
use super::{CryptoError, Secret};
use crypto_bigint::modular::runtime_mod::{DynResidue, DynResidueParams};
use crypto_bigint::{Uint, Word};
use rand_core::CryptoRngCore;
use zeroize::Zeroize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DhGroup {
    Modp1024,
    Modp1536,
    Modp2048,
    Modp3072,
    Modp4096,
    Ecp256,
    Ecp384,
    Ecp521,
    Curve25519,
}

impl DhGroup {
    pub fn id(self) -> u16 {
        match self {
            DhGroup::Modp1024 => 2,
            DhGroup::Modp1536 => 5,
            DhGroup::Modp2048 => 14,
            DhGroup::Modp3072 => 15,
            DhGroup::Modp4096 => 16,
            DhGroup::Ecp256 => 19,
            DhGroup::Ecp384 => 20,
            DhGroup::Ecp521 => 21,
            DhGroup::Curve25519 => 31,
        }
    }

    pub fn from_id(id: u16) -> Option<Self> {
        Some(match id {
            2 => DhGroup::Modp1024,
            5 => DhGroup::Modp1536,
            14 => DhGroup::Modp2048,
            15 => DhGroup::Modp3072,
            16 => DhGroup::Modp4096,
            19 => DhGroup::Ecp256,
            20 => DhGroup::Ecp384,
            21 => DhGroup::Ecp521,
            31 => DhGroup::Curve25519,
            _ => return None,
        })
    }

    /// Groups 2 and 5 are below today's strength and must be enabled explicitly.
    pub fn is_weak(self) -> bool {
        matches!(self, DhGroup::Modp1024 | DhGroup::Modp1536)
    }

    /// Length of the KE payload's key exchange data.
    pub fn public_len(self) -> usize {
        match self {
            DhGroup::Modp1024 => 128,
            DhGroup::Modp1536 => 192,
            DhGroup::Modp2048 => 256,
            DhGroup::Modp3072 => 384,
            DhGroup::Modp4096 => 512,
            DhGroup::Ecp256 => 64,
            DhGroup::Ecp384 => 96,
            DhGroup::Ecp521 => 132,
            DhGroup::Curve25519 => 32,
        }
    }

    /// Private exponent size for MODP: twice the group's symmetric strength, as
    /// RFC 3526 section 8 advises (a short exponent keeps 4096-bit groups fast).
    fn modp_exponent_bits(self) -> usize {
        match self {
            DhGroup::Modp3072 => 320,
            DhGroup::Modp4096 => 384,
            _ => 256,
        }
    }

    /// Creates a fresh key pair from the caller's RNG.
    pub fn generate(self, rng: &mut dyn CryptoRngCore) -> DhPrivate {
        let inner = match self {
            DhGroup::Curve25519 => {
                Inner::X25519(x25519_dalek::StaticSecret::random_from_rng(&mut *rng))
            }
            DhGroup::Ecp256 => Inner::P256(p256::SecretKey::random(&mut &mut *rng)),
            DhGroup::Ecp384 => Inner::P384(p384::SecretKey::random(&mut &mut *rng)),
            DhGroup::Ecp521 => Inner::P521(p521::SecretKey::random(&mut &mut *rng)),
            _ => {
                let mut x = vec![0u8; self.modp_exponent_bits() / 8];
                rng.fill_bytes(&mut x);
                Inner::Modp(Secret::new(x))
            }
        };
        DhPrivate { group: self, inner }
    }
}

enum Inner {
    Modp(Secret),
    X25519(x25519_dalek::StaticSecret),
    P256(p256::SecretKey),
    P384(p384::SecretKey),
    P521(p521::SecretKey),
}

/// Our half of a key exchange. The private value is zeroized on drop by its type.
pub struct DhPrivate {
    group: DhGroup,
    inner: Inner,
}

impl std::fmt::Debug for DhPrivate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DhPrivate({:?}, <redacted>)", self.group)
    }
}

impl DhPrivate {
    /// Builds a key from known private bytes (known-answer tests).
    pub fn from_private_bytes(group: DhGroup, bytes: &[u8]) -> Result<Self, CryptoError> {
        let bad = CryptoError::BadKeyLength("DH private value");
        let inner = match group {
            DhGroup::Curve25519 => {
                let arr: [u8; 32] = bytes.try_into().map_err(|_| bad)?;
                Inner::X25519(x25519_dalek::StaticSecret::from(arr))
            }
            DhGroup::Ecp256 => Inner::P256(p256::SecretKey::from_slice(bytes).map_err(|_| bad)?),
            DhGroup::Ecp384 => Inner::P384(p384::SecretKey::from_slice(bytes).map_err(|_| bad)?),
            DhGroup::Ecp521 => Inner::P521(p521::SecretKey::from_slice(bytes).map_err(|_| bad)?),
            _ => Inner::Modp(Secret::from_slice(bytes)),
        };
        Ok(DhPrivate { group, inner })
    }

    pub fn group(&self) -> DhGroup {
        self.group
    }

    /// The public value as carried in the KE payload.
    pub fn public(&self) -> Vec<u8> {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        match &self.inner {
            Inner::X25519(s) => x25519_dalek::PublicKey::from(s).as_bytes().to_vec(),
            Inner::P256(s) => strip_sec1(s.public_key().to_encoded_point(false).as_bytes()),
            Inner::P384(s) => strip_sec1(s.public_key().to_encoded_point(false).as_bytes()),
            Inner::P521(s) => strip_sec1(s.public_key().to_encoded_point(false).as_bytes()),
            Inner::Modp(x) => modp(self.group, &[2], x.expose()),
        }
    }

    /// g^ir from the peer's KE data, after validating it.
    pub fn shared_secret(&self, peer: &[u8]) -> Result<Secret, CryptoError> {
        let bad = CryptoError::InvalidPublicValue(self.group.id());
        if peer.len() != self.group.public_len() {
            return Err(bad);
        }
        match &self.inner {
            Inner::X25519(s) => {
                let arr: [u8; 32] = peer.try_into().map_err(|_| bad.clone())?;
                let shared = s.diffie_hellman(&x25519_dalek::PublicKey::from(arr));
                // RFC 8031 2.3: an all-zero result means a low-order peer point.
                if !shared.was_contributory() {
                    return Err(bad);
                }
                Ok(Secret::from_slice(shared.as_bytes()))
            }
            Inner::P256(s) => {
                let pk = p256::PublicKey::from_sec1_bytes(&sec1(peer)).map_err(|_| bad)?;
                let z = p256::ecdh::diffie_hellman(s.to_nonzero_scalar(), pk.as_affine());
                Ok(Secret::from_slice(z.raw_secret_bytes()))
            }
            Inner::P384(s) => {
                let pk = p384::PublicKey::from_sec1_bytes(&sec1(peer)).map_err(|_| bad)?;
                let z = p384::ecdh::diffie_hellman(s.to_nonzero_scalar(), pk.as_affine());
                Ok(Secret::from_slice(z.raw_secret_bytes()))
            }
            Inner::P521(s) => {
                let pk = p521::PublicKey::from_sec1_bytes(&sec1(peer)).map_err(|_| bad)?;
                let z = p521::ecdh::diffie_hellman(s.to_nonzero_scalar(), pk.as_affine());
                Ok(Secret::from_slice(z.raw_secret_bytes()))
            }
            Inner::Modp(x) => {
                if !modp_public_ok(self.group, peer) {
                    return Err(bad);
                }
                Ok(Secret::new(modp(self.group, peer, x.expose())))
            }
        }
    }
}

fn strip_sec1(point: &[u8]) -> Vec<u8> {
    point.get(1..).unwrap_or_default().to_vec()
}

fn sec1(xy: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(xy.len() + 1);
    v.push(0x04);
    v.extend_from_slice(xy);
    v
}

fn prime_hex(group: DhGroup) -> &'static str {
    match group {
        DhGroup::Modp1024 => MODP_1024,
        DhGroup::Modp1536 => MODP_1536,
        DhGroup::Modp3072 => MODP_3072,
        DhGroup::Modp4096 => MODP_4096,
        _ => MODP_2048,
    }
}

/// base^exp mod p for the group's prime, big-endian, padded to the modulus length.
pub(crate) fn modp(group: DhGroup, base: &[u8], exp: &[u8]) -> Vec<u8> {
    let p = prime_hex(group);
    match group {
        DhGroup::Modp1024 => modpow::<{ 1024 / Word::BITS as usize }>(p, base, exp),
        DhGroup::Modp1536 => modpow::<{ 1536 / Word::BITS as usize }>(p, base, exp),
        DhGroup::Modp3072 => modpow::<{ 3072 / Word::BITS as usize }>(p, base, exp),
        DhGroup::Modp4096 => modpow::<{ 4096 / Word::BITS as usize }>(p, base, exp),
        _ => modpow::<{ 2048 / Word::BITS as usize }>(p, base, exp),
    }
}

/// RFC 7296 does not spell it out, but RFC 2631/SP 800-56A do: 1 < y < p-1.
fn modp_public_ok(group: DhGroup, y: &[u8]) -> bool {
    let p = prime_hex(group);
    match group {
        DhGroup::Modp1024 => range_ok::<{ 1024 / Word::BITS as usize }>(p, y),
        DhGroup::Modp1536 => range_ok::<{ 1536 / Word::BITS as usize }>(p, y),
        DhGroup::Modp3072 => range_ok::<{ 3072 / Word::BITS as usize }>(p, y),
        DhGroup::Modp4096 => range_ok::<{ 4096 / Word::BITS as usize }>(p, y),
        _ => range_ok::<{ 2048 / Word::BITS as usize }>(p, y),
    }
}

fn padded<const L: usize>(bytes: &[u8]) -> Option<Uint<L>> {
    let size = L * (Word::BITS as usize / 8);
    if bytes.len() > size {
        return None;
    }
    let mut buf = vec![0u8; size];
    buf.get_mut(size - bytes.len()..)?.copy_from_slice(bytes);
    let v = Uint::<L>::from_be_slice(&buf);
    buf.zeroize();
    Some(v)
}

fn range_ok<const L: usize>(p_hex: &str, y: &[u8]) -> bool {
    let p = Uint::<L>::from_be_hex(p_hex);
    let Some(y) = padded::<L>(y) else {
        return false;
    };
    let p_minus_1 = p.wrapping_sub(&Uint::ONE);
    y > Uint::ONE && y < p_minus_1
}

fn modpow<const L: usize>(p_hex: &str, base: &[u8], exp: &[u8]) -> Vec<u8> {
    let p = Uint::<L>::from_be_hex(p_hex);
    let params = DynResidueParams::new(&p);
    let b = padded::<L>(base).unwrap_or(Uint::ZERO);
    let e = padded::<L>(exp).unwrap_or(Uint::ZERO);
    let bits = (exp.len() * 8).min(Uint::<L>::BITS);
    let r = DynResidue::new(&b, params)
        .pow_bounded_exp(&e, bits)
        .retrieve();
    let mut out = Vec::with_capacity(L * 8);
    for w in r.as_words().iter().rev() {
        out.extend_from_slice(&w.to_be_bytes());
    }
    out
}
