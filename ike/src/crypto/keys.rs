//! Key derivation: SKEYSEED and SK_* (RFC 7296 2.14), rekeyed IKE SAs (2.18) and
//! CHILD SA KEYMAT (2.17).
use super::{EncrAlg, IntegAlg, PrfAlg, Secret};

/// The seven IKE SA keys; "i"/"r" are relative to the original initiator of the SA.
#[derive(Debug, Clone)]
pub struct IkeKeys {
    pub sk_d: Secret,
    pub sk_ai: Secret,
    pub sk_ar: Secret,
    pub sk_ei: Secret,
    pub sk_er: Secret,
    pub sk_pi: Secret,
    pub sk_pr: Secret,
}

/// SKEYSEED = prf(Ni | Nr, g^ir) for a fresh IKE SA.
pub fn skeyseed(prf: PrfAlg, ni: &[u8], nr: &[u8], g_ir: &[u8]) -> Secret {
    let mut key = Vec::with_capacity(ni.len() + nr.len());
    key.extend_from_slice(ni);
    key.extend_from_slice(nr);
    let out = prf.prf(&key, g_ir);
    zeroize::Zeroize::zeroize(&mut key);
    out
}

/// SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) for a rekeyed IKE SA, with the old SA's PRF.
pub fn skeyseed_rekey(
    old_prf: PrfAlg,
    old_sk_d: &[u8],
    g_ir: &[u8],
    ni: &[u8],
    nr: &[u8],
) -> Secret {
    old_prf.prf_parts(old_sk_d, &[g_ir, ni, nr])
}

/// {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr).
pub fn derive_ike_keys(
    prf: PrfAlg,
    encr: EncrAlg,
    integ: Option<IntegAlg>,
    skeyseed: &Secret,
    ni: &[u8],
    nr: &[u8],
    (spi_i, spi_r): (&[u8; 8], &[u8; 8]),
) -> IkeKeys {
    let prf_len = prf.output_len();
    let a_len = integ.map_or(0, IntegAlg::key_len);
    let e_len = encr.key_len();
    let mut seed = Vec::with_capacity(ni.len() + nr.len() + 16);
    seed.extend_from_slice(ni);
    seed.extend_from_slice(nr);
    seed.extend_from_slice(spi_i);
    seed.extend_from_slice(spi_r);
    let mut km = prf.prf_plus(
        skeyseed.expose(),
        &seed,
        3 * prf_len + 2 * a_len + 2 * e_len,
    );
    IkeKeys {
        sk_d: km.take_front(prf_len),
        sk_ai: km.take_front(a_len),
        sk_ar: km.take_front(a_len),
        sk_ei: km.take_front(e_len),
        sk_er: km.take_front(e_len),
        sk_pi: km.take_front(prf_len),
        sk_pr: km.take_front(prf_len),
    }
}

/// ESP keys of one CHILD SA, "i"/"r" relative to the initiator of the exchange that made it.
/// `encr_*` holds the AES key followed by the 4-byte salt for GCM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildKeys {
    pub encr_i: Secret,
    pub integ_i: Secret,
    pub encr_r: Secret,
    pub integ_r: Secret,
}

/// KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr), cut as encr_i | integ_i | encr_r | integ_r.
pub fn child_keymat(
    prf: PrfAlg,
    sk_d: &[u8],
    g_ir: Option<&[u8]>,
    ni: &[u8],
    nr: &[u8],
    encr: EncrAlg,
    integ: Option<IntegAlg>,
) -> ChildKeys {
    let e_len = encr.key_len();
    let a_len = integ.map_or(0, IntegAlg::key_len);
    let mut seed = Vec::new();
    if let Some(g) = g_ir {
        seed.extend_from_slice(g);
    }
    seed.extend_from_slice(ni);
    seed.extend_from_slice(nr);
    let mut km = prf.prf_plus(sk_d, &seed, 2 * (e_len + a_len));
    zeroize::Zeroize::zeroize(&mut seed);
    ChildKeys {
        encr_i: km.take_front(e_len),
        integ_i: km.take_front(a_len),
        encr_r: km.take_front(e_len),
        integ_r: km.take_front(a_len),
    }
}
