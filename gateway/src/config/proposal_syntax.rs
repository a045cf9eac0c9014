//! Token-by-token check of strongSwan proposal strings (`aes128gcm16-prfsha256-modp2048`).
//!
//! Stand-in until `ike::proposal` lands: it only decides whether a string is well formed for IKE
//! or ESP (known keywords, the mandatory algorithm kinds present, AEAD and classic ciphers not
//! mixed); the `ike`/`esp` crates decide what they implement.

/// Which SA the proposal is for: the mandatory parts differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProposalKind {
    Ike,
    Esp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Encryption { aead: bool },
    Integrity,
    Prf,
    Dh,
    Esn,
}

const CLASSIC_CIPHERS: &[&str] = &[
    "aes",
    "aes128",
    "aes192",
    "aes256",
    "aes128ctr",
    "aes192ctr",
    "aes256ctr",
    "3des",
    "camellia128",
    "camellia192",
    "camellia256",
    "null",
];
const AEAD_BASES: &[&str] = &["aes128", "aes192", "aes256"];
const AEAD_ICV_SUFFIXES: &[&str] = &[
    "gcm8", "gcm12", "gcm16", "gcm64", "gcm96", "gcm128", "ccm8", "ccm12", "ccm16", "ccm64",
    "ccm96", "ccm128",
];
const INTEGRITY: &[&str] = &[
    "md5",
    "md5_128",
    "sha",
    "sha1",
    "sha1_160",
    "sha256",
    "sha2_256",
    "sha256_96",
    "sha2_256_96",
    "sha384",
    "sha2_384",
    "sha512",
    "sha2_512",
    "aesxcbc",
    "aescmac",
];
const PRF: &[&str] = &[
    "prfmd5",
    "prfsha1",
    "prfsha256",
    "prfsha384",
    "prfsha512",
    "prfaesxcbc",
    "prfaescmac",
];
const DH: &[&str] = &[
    "modp768",
    "modp1024",
    "modp1536",
    "modp2048",
    "modp3072",
    "modp4096",
    "modp6144",
    "modp8192",
    "modp1024s160",
    "modp2048s224",
    "modp2048s256",
    "ecp192",
    "ecp224",
    "ecp256",
    "ecp384",
    "ecp521",
    "ecp224bp",
    "ecp256bp",
    "ecp384bp",
    "ecp512bp",
    "curve25519",
    "x25519",
    "curve448",
    "x448",
];

fn classify(token: &str) -> Option<Token> {
    if CLASSIC_CIPHERS.contains(&token) {
        return Some(Token::Encryption { aead: false });
    }
    if token == "chacha20poly1305" || is_aes_aead(token) {
        return Some(Token::Encryption { aead: true });
    }
    if INTEGRITY.contains(&token) {
        return Some(Token::Integrity);
    }
    if PRF.contains(&token) {
        return Some(Token::Prf);
    }
    if DH.contains(&token) {
        return Some(Token::Dh);
    }
    if token == "esn" || token == "noesn" {
        return Some(Token::Esn);
    }
    None
}

fn is_aes_aead(token: &str) -> bool {
    AEAD_BASES.iter().any(|base| {
        token
            .strip_prefix(base)
            .is_some_and(|icv| AEAD_ICV_SUFFIXES.contains(&icv))
    })
}

/// Checks a comma-separated list of proposals (an optional trailing `!` means strict, as in
/// strongSwan). Returns every problem found, each naming the proposal and token.
pub fn check(list: &str, kind: ProposalKind) -> Result<(), Vec<String>> {
    let list = list.trim();
    let list = list.strip_suffix('!').unwrap_or(list);
    let mut problems = Vec::new();
    if list.trim().is_empty() {
        problems.push("empty proposal list".to_owned());
        return Err(problems);
    }
    for proposal in list.split(',') {
        check_one(proposal.trim(), kind, &mut problems);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn check_one(proposal: &str, kind: ProposalKind, problems: &mut Vec<String>) {
    if proposal.is_empty() {
        problems.push("empty proposal between commas".to_owned());
        return;
    }
    let (mut classic, mut aead, mut integ, mut prf, mut dh, mut esn) = (0, 0, 0, 0, 0, 0);
    for token in proposal.split('-') {
        match classify(token) {
            Some(Token::Encryption { aead: false }) => classic += 1,
            Some(Token::Encryption { aead: true }) => aead += 1,
            Some(Token::Integrity) => integ += 1,
            Some(Token::Prf) => prf += 1,
            Some(Token::Dh) => dh += 1,
            Some(Token::Esn) => esn += 1,
            None => problems.push(format!("`{proposal}`: unknown algorithm `{token}`")),
        }
    }
    let mut fail = |why: &str| problems.push(format!("`{proposal}`: {why}"));
    if classic + aead == 0 {
        fail("no encryption algorithm");
    }
    if classic > 0 && aead > 0 {
        fail("AEAD and classic encryption algorithms cannot be mixed in one proposal");
    }
    if aead > 0 && integ > 0 {
        fail("an AEAD cipher takes no integrity algorithm");
    }
    if classic > 0 && integ == 0 {
        fail("a classic cipher needs an integrity algorithm");
    }
    match kind {
        ProposalKind::Ike => {
            if dh == 0 {
                fail("an IKE proposal needs a DH group");
            }
            if aead > 0 && prf == 0 {
                fail("an IKE proposal with an AEAD cipher needs a PRF (e.g. prfsha256)");
            }
            if esn > 0 {
                fail("esn/noesn apply to ESP, not IKE");
            }
        }
        ProposalKind::Esp => {
            if prf > 0 {
                fail("a PRF applies to IKE, not ESP");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ProposalKind::{Esp, Ike};
    use super::*;

    #[test]
    fn accepts_common_ike_proposals() {
        for p in [
            "aes128gcm16-prfsha256-modp2048",
            "aes256-sha256-modp2048",
            "aes128-sha1-modp1024",
            "aes256gcm16-prfsha384-ecp384",
            "chacha20poly1305-prfsha256-curve25519",
            "aes128-aes256-sha256-sha1-modp2048-modp1024",
            "aes128gcm16-prfsha256-modp2048,aes256-sha256-modp2048!",
        ] {
            assert_eq!(check(p, Ike), Ok(()), "{p}");
        }
    }

    #[test]
    fn accepts_common_esp_proposals() {
        for p in [
            "aes128gcm16",
            "aes128gcm16-modp2048",
            "aes256-sha256",
            "aes128-sha1-modp1024-esn",
            "aes256gcm16-noesn,aes128-sha256",
        ] {
            assert_eq!(check(p, Esp), Ok(()), "{p}");
        }
    }

    fn reasons(p: &str, kind: ProposalKind) -> String {
        check(p, kind).unwrap_err().join("; ")
    }

    #[test]
    fn rejects_unknown_token() {
        assert!(reasons("aes128-sha257-modp2048", Ike).contains("unknown algorithm `sha257`"));
    }

    #[test]
    fn ike_needs_dh_and_prf_with_aead() {
        assert!(reasons("aes128-sha256", Ike).contains("needs a DH group"));
        assert!(reasons("aes128gcm16-modp2048", Ike).contains("needs a PRF"));
    }

    #[test]
    fn classic_needs_integrity_aead_refuses_it() {
        assert!(reasons("aes128-modp2048", Esp).contains("needs an integrity"));
        assert!(reasons("aes128gcm16-sha256", Esp).contains("takes no integrity"));
        assert!(reasons("aes128gcm16-aes128-sha1", Esp).contains("cannot be mixed"));
    }

    #[test]
    fn kind_specific_tokens() {
        assert!(reasons("aes128gcm16-prfsha256", Esp).contains("PRF applies to IKE"));
        assert!(reasons("aes128gcm16-prfsha256-modp2048-esn", Ike).contains("apply to ESP"));
    }

    #[test]
    fn empty_lists_and_reports_every_problem() {
        assert!(reasons("", Ike).contains("empty proposal list"));
        assert!(reasons("aes128-sha1-modp2048,,", Ike).contains("empty proposal between"));
        let all = check("foo-modp2048,aes128-bar", Esp).unwrap_err();
        assert!(all.len() >= 3, "{all:?}");
    }
}
