//! Pre-shared-key authentication (RFC 7296 2.15).
use super::{PrfAlg, Secret};
use subtle::ConstantTimeEq;

const KEY_PAD: &[u8] = b"Key Pad for IKEv2";

/// SignedOctets = RealMessage | Nonce (of the peer) | prf(SK_px, IDx').
///
/// For the initiator: its IKE_SA_INIT request, Nr, prf(SK_pi, IDi').
/// For the responder: its IKE_SA_INIT response, Ni, prf(SK_pr, IDr').
pub fn signed_octets(
    prf: PrfAlg,
    real_message: &[u8],
    peer_nonce: &[u8],
    sk_p: &[u8],
    id_body: &[u8],
) -> Vec<u8> {
    let mac_id = prf.prf(sk_p, id_body);
    let mut out = Vec::with_capacity(real_message.len() + peer_nonce.len() + mac_id.len());
    out.extend_from_slice(real_message);
    out.extend_from_slice(peer_nonce);
    out.extend_from_slice(mac_id.expose());
    out
}

/// AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"), SignedOctets).
pub fn psk_auth(prf: PrfAlg, psk: &[u8], octets: &[u8]) -> Secret {
    let padded = prf.prf(psk, KEY_PAD);
    prf.prf(padded.expose(), octets)
}

/// Constant-time check of a received AUTH value.
pub fn verify_psk_auth(prf: PrfAlg, psk: &[u8], octets: &[u8], received: &[u8]) -> bool {
    let expect = psk_auth(prf, psk, octets);
    expect.len() == received.len() && bool::from(expect.expose().ct_eq(received))
}
