//! Proposals: strongSwan-style proposal strings (`aes128gcm16-prfsha256-modp2048`),
//! their wire form (RFC 7296 3.3) and selection of one negotiated suite.
use crate::crypto::{DhGroup, EncrAlg, IntegAlg, PrfAlg};
use crate::wire::{protocol, transform_type as tt, Proposal, Transform};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProposalError {
    #[error("unknown algorithm token {0:?}")]
    UnknownToken(String),
    #[error("token {0:?} is not allowed in an {1} proposal")]
    NotAllowed(String, &'static str),
    #[error("proposal {0:?} has no encryption algorithm")]
    MissingEncryption(String),
    #[error("proposal {0:?} needs an integrity algorithm (CBC) or none at all (AEAD)")]
    IntegrityMismatch(String),
    #[error("IKE proposal {0:?} has no PRF and none can be derived")]
    MissingPrf(String),
    #[error("IKE proposal {0:?} has no DH group")]
    MissingDhGroup(String),
    #[error("DH group {0} is weak; set allow_weak_groups to use it")]
    WeakGroup(u16),
}

/// An IKE SA proposal: any of each list is acceptable, earlier is preferred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkeProposal {
    pub encr: Vec<EncrAlg>,
    pub integ: Vec<IntegAlg>,
    pub prf: Vec<PrfAlg>,
    pub dh: Vec<DhGroup>,
}

/// An ESP proposal; `dh` non-empty asks for PFS on CREATE_CHILD_SA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspProposal {
    pub encr: Vec<EncrAlg>,
    pub integ: Vec<IntegAlg>,
    pub dh: Vec<DhGroup>,
    /// Extended sequence numbers accepted, in preference order.
    pub esn: Vec<bool>,
}

/// The negotiated IKE SA algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IkeSuite {
    pub encr: EncrAlg,
    pub integ: Option<IntegAlg>,
    pub prf: PrfAlg,
    pub dh: DhGroup,
}

/// The negotiated CHILD SA (ESP) algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EspSuite {
    pub encr: EncrAlg,
    pub integ: Option<IntegAlg>,
    pub dh: Option<DhGroup>,
    pub esn: bool,
}

enum Token {
    Encr(EncrAlg),
    Integ(IntegAlg),
    Prf(PrfAlg),
    Dh(DhGroup),
    Esn(bool),
}

fn token(t: &str) -> Option<Token> {
    use Token::*;
    Some(match t {
        "aes128" | "aes128cbc" => Encr(EncrAlg::AesCbc(128)),
        "aes192" | "aes192cbc" => Encr(EncrAlg::AesCbc(192)),
        "aes256" | "aes256cbc" => Encr(EncrAlg::AesCbc(256)),
        "aes128gcm16" | "aes128gcm128" => Encr(EncrAlg::AesGcm16(128)),
        "aes256gcm16" | "aes256gcm128" => Encr(EncrAlg::AesGcm16(256)),
        "sha1" | "sha" => Integ(IntegAlg::HmacSha1_96),
        "sha256" | "sha2_256" => Integ(IntegAlg::HmacSha256_128),
        "sha384" | "sha2_384" => Integ(IntegAlg::HmacSha384_192),
        "sha512" | "sha2_512" => Integ(IntegAlg::HmacSha512_256),
        "prfsha1" => Prf(PrfAlg::HmacSha1),
        "prfsha256" => Prf(PrfAlg::HmacSha256),
        "prfsha384" => Prf(PrfAlg::HmacSha384),
        "prfsha512" => Prf(PrfAlg::HmacSha512),
        "modp1024" => Dh(DhGroup::Modp1024),
        "modp1536" => Dh(DhGroup::Modp1536),
        "modp2048" => Dh(DhGroup::Modp2048),
        "modp3072" => Dh(DhGroup::Modp3072),
        "modp4096" => Dh(DhGroup::Modp4096),
        "ecp256" => Dh(DhGroup::Ecp256),
        "ecp384" => Dh(DhGroup::Ecp384),
        "ecp521" => Dh(DhGroup::Ecp521),
        "curve25519" | "x25519" => Dh(DhGroup::Curve25519),
        "esn" => Esn(true),
        "noesn" => Esn(false),
        _ => return None,
    })
}

fn push<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

fn prf_for(integ: IntegAlg) -> PrfAlg {
    match integ {
        IntegAlg::HmacSha1_96 => PrfAlg::HmacSha1,
        IntegAlg::HmacSha256_128 => PrfAlg::HmacSha256,
        IntegAlg::HmacSha384_192 => PrfAlg::HmacSha384,
        IntegAlg::HmacSha512_256 => PrfAlg::HmacSha512,
    }
}

fn check_weak(dh: &[DhGroup], allow_weak: bool) -> Result<(), ProposalError> {
    match dh.iter().find(|g| g.is_weak()) {
        Some(g) if !allow_weak => Err(ProposalError::WeakGroup(g.id())),
        _ => Ok(()),
    }
}

fn check_integ(s: &str, encr: &[EncrAlg], integ: &[IntegAlg]) -> Result<(), ProposalError> {
    if encr.is_empty() {
        return Err(ProposalError::MissingEncryption(s.into()));
    }
    let aead = encr.iter().any(|e| e.is_aead());
    let classic = encr.iter().any(|e| !e.is_aead());
    if (aead && (classic || !integ.is_empty())) || (classic && integ.is_empty()) {
        return Err(ProposalError::IntegrityMismatch(s.into()));
    }
    Ok(())
}

impl IkeProposal {
    /// Parses e.g. `aes256-sha256-ecp256` or `aes128gcm16-prfsha256-modp2048`. Without
    /// an explicit PRF it is derived from the integrity algorithms, as strongSwan does.
    pub fn parse(s: &str, allow_weak: bool) -> Result<Self, ProposalError> {
        let mut p = IkeProposal {
            encr: vec![],
            integ: vec![],
            prf: vec![],
            dh: vec![],
        };
        for t in s.split('-') {
            match token(t).ok_or_else(|| ProposalError::UnknownToken(t.into()))? {
                Token::Encr(e) => push(&mut p.encr, e),
                Token::Integ(i) => push(&mut p.integ, i),
                Token::Prf(f) => push(&mut p.prf, f),
                Token::Dh(g) => push(&mut p.dh, g),
                Token::Esn(_) => return Err(ProposalError::NotAllowed(t.into(), "IKE")),
            }
        }
        check_integ(s, &p.encr, &p.integ)?;
        if p.prf.is_empty() {
            p.prf = p.integ.iter().map(|i| prf_for(*i)).collect();
        }
        if p.prf.is_empty() {
            return Err(ProposalError::MissingPrf(s.into()));
        }
        if p.dh.is_empty() {
            return Err(ProposalError::MissingDhGroup(s.into()));
        }
        check_weak(&p.dh, allow_weak)?;
        Ok(p)
    }

    /// The wire proposal (transforms in the order ENCR, INTEG, PRF, DH).
    pub fn to_wire(&self, number: u8, spi: &[u8]) -> Proposal {
        let mut transforms: Vec<Transform> = self.encr.iter().map(|e| encr_transform(*e)).collect();
        transforms.extend(
            self.integ
                .iter()
                .map(|i| Transform::new(tt::INTEG, i.id(), None)),
        );
        transforms.extend(
            self.prf
                .iter()
                .map(|f| Transform::new(tt::PRF, f.id(), None)),
        );
        transforms.extend(self.dh.iter().map(|g| Transform::new(tt::DH, g.id(), None)));
        Proposal {
            number,
            protocol: protocol::IKE,
            spi: spi.to_vec(),
            transforms,
        }
    }

    /// Picks the peer's first proposal that this one accepts (RFC 7296 2.7).
    pub fn select(&self, offered: &[Proposal]) -> Option<(IkeSuite, Proposal)> {
        offered.iter().find_map(|p| self.accepts(p))
    }

    fn accepts(&self, p: &Proposal) -> Option<(IkeSuite, Proposal)> {
        if p.protocol != protocol::IKE || !known_types(p) {
            return None;
        }
        let encr = pick_encr(p, &self.encr)?;
        let integ = pick_integ(p, &self.integ, encr)?;
        let prf = pick(p, tt::PRF, |id| {
            PrfAlg::from_id(id).filter(|f| self.prf.contains(f))
        })?;
        let dh = pick(p, tt::DH, |id| {
            DhGroup::from_id(id).filter(|g| self.dh.contains(g))
        })?;
        let suite = IkeSuite {
            encr,
            integ,
            prf,
            dh,
        };
        Some((suite, suite.to_wire(p.number, &p.spi)))
    }
}

impl IkeSuite {
    /// The single-transform proposal a responder returns, or a rekey uses.
    pub fn to_wire(&self, number: u8, spi: &[u8]) -> Proposal {
        let mut transforms = vec![encr_transform(self.encr)];
        if let Some(i) = self.integ {
            transforms.push(Transform::new(tt::INTEG, i.id(), None));
        }
        transforms.push(Transform::new(tt::PRF, self.prf.id(), None));
        transforms.push(Transform::new(tt::DH, self.dh.id(), None));
        Proposal {
            number,
            protocol: protocol::IKE,
            spi: spi.to_vec(),
            transforms,
        }
    }

    /// Reads a responder's single-transform proposal back into a suite.
    pub fn from_wire(p: &Proposal) -> Option<Self> {
        let prop = IkeProposal {
            encr: all(p, tt::ENCR, |t| EncrAlg::from_id(t.id, t.key_length())),
            integ: all(p, tt::INTEG, |t| IntegAlg::from_id(t.id)),
            prf: all(p, tt::PRF, |t| PrfAlg::from_id(t.id)),
            dh: all(p, tt::DH, |t| DhGroup::from_id(t.id)),
        };
        prop.accepts(p).map(|(s, _)| s)
    }
}

impl EspProposal {
    /// Parses e.g. `aes128gcm16`, `aes256-sha256-modp2048` (PFS group), `aes128-sha1-esn`.
    pub fn parse(s: &str, allow_weak: bool) -> Result<Self, ProposalError> {
        let mut p = EspProposal {
            encr: vec![],
            integ: vec![],
            dh: vec![],
            esn: vec![],
        };
        for t in s.split('-') {
            match token(t).ok_or_else(|| ProposalError::UnknownToken(t.into()))? {
                Token::Encr(e) => push(&mut p.encr, e),
                Token::Integ(i) => push(&mut p.integ, i),
                Token::Dh(g) => push(&mut p.dh, g),
                Token::Esn(e) => push(&mut p.esn, e),
                Token::Prf(_) => return Err(ProposalError::NotAllowed(t.into(), "ESP")),
            }
        }
        check_integ(s, &p.encr, &p.integ)?;
        check_weak(&p.dh, allow_weak)?;
        if p.esn.is_empty() {
            p.esn.push(false);
        }
        Ok(p)
    }

    /// The wire proposal; `with_dh` is false in IKE_AUTH, where no KE is exchanged.
    pub fn to_wire(&self, number: u8, spi: [u8; 4], with_dh: bool) -> Proposal {
        let mut transforms: Vec<Transform> = self.encr.iter().map(|e| encr_transform(*e)).collect();
        transforms.extend(
            self.integ
                .iter()
                .map(|i| Transform::new(tt::INTEG, i.id(), None)),
        );
        if with_dh {
            transforms.extend(self.dh.iter().map(|g| Transform::new(tt::DH, g.id(), None)));
        }
        transforms.extend(
            self.esn
                .iter()
                .map(|e| Transform::new(tt::ESN, u16::from(*e), None)),
        );
        Proposal {
            number,
            protocol: protocol::ESP,
            spi: spi.to_vec(),
            transforms,
        }
    }

    /// Picks the peer's first acceptable ESP proposal. `with_dh`: a KE payload came along
    /// (CREATE_CHILD_SA with PFS), so the DH group must match too; otherwise DH is ignored.
    pub fn select(&self, offered: &[Proposal], with_dh: bool) -> Option<(EspSuite, Proposal)> {
        offered.iter().find_map(|p| self.accepts(p, with_dh))
    }

    fn accepts(&self, p: &Proposal, with_dh: bool) -> Option<(EspSuite, Proposal)> {
        if p.protocol != protocol::ESP || p.spi.len() != 4 || !known_types(p) {
            return None;
        }
        let encr = pick_encr(p, &self.encr)?;
        let integ = pick_integ(p, &self.integ, encr)?;
        let esn = pick(p, tt::ESN, |id| match id {
            0 | 1 => Some(id == 1).filter(|e| self.esn.contains(e)),
            _ => None,
        })
        .or_else(|| (!has(p, tt::ESN) && self.esn.contains(&false)).then_some(false))?;
        let dh = if with_dh && !self.dh.is_empty() {
            Some(pick(p, tt::DH, |id| {
                DhGroup::from_id(id).filter(|g| self.dh.contains(g))
            })?)
        } else {
            None
        };
        let suite = EspSuite {
            encr,
            integ,
            dh,
            esn,
        };
        let spi: [u8; 4] = p.spi.as_slice().try_into().ok()?;
        Some((suite, suite.to_wire(p.number, spi)))
    }
}

impl EspSuite {
    pub fn to_wire(&self, number: u8, spi: [u8; 4]) -> Proposal {
        let mut transforms = vec![encr_transform(self.encr)];
        if let Some(i) = self.integ {
            transforms.push(Transform::new(tt::INTEG, i.id(), None));
        }
        if let Some(g) = self.dh {
            transforms.push(Transform::new(tt::DH, g.id(), None));
        }
        transforms.push(Transform::new(tt::ESN, u16::from(self.esn), None));
        Proposal {
            number,
            protocol: protocol::ESP,
            spi: spi.to_vec(),
            transforms,
        }
    }

    /// Reads a responder's single-transform ESP proposal back into a suite.
    pub fn from_wire(p: &Proposal) -> Option<Self> {
        let prop = EspProposal {
            encr: all(p, tt::ENCR, |t| EncrAlg::from_id(t.id, t.key_length())),
            integ: all(p, tt::INTEG, |t| IntegAlg::from_id(t.id)),
            dh: all(p, tt::DH, |t| DhGroup::from_id(t.id)),
            esn: vec![false, true],
        };
        prop.accepts(p, has(p, tt::DH)).map(|(s, _)| s)
    }
}

/// The strongSwan config token of an encryption algorithm (`aes128`, `aes256gcm16`).
fn encr_name(e: EncrAlg) -> String {
    match e {
        EncrAlg::AesCbc(b) => format!("aes{b}"),
        EncrAlg::AesGcm16(b) => format!("aes{b}gcm16"),
    }
}

fn integ_name(i: IntegAlg) -> &'static str {
    match i {
        IntegAlg::HmacSha1_96 => "sha1",
        IntegAlg::HmacSha256_128 => "sha256",
        IntegAlg::HmacSha384_192 => "sha384",
        IntegAlg::HmacSha512_256 => "sha512",
    }
}

fn prf_name(p: PrfAlg) -> &'static str {
    match p {
        PrfAlg::HmacSha1 => "prfsha1",
        PrfAlg::HmacSha256 => "prfsha256",
        PrfAlg::HmacSha384 => "prfsha384",
        PrfAlg::HmacSha512 => "prfsha512",
    }
}

fn dh_name(g: DhGroup) -> &'static str {
    match g {
        DhGroup::Modp1024 => "modp1024",
        DhGroup::Modp1536 => "modp1536",
        DhGroup::Modp2048 => "modp2048",
        DhGroup::Modp3072 => "modp3072",
        DhGroup::Modp4096 => "modp4096",
        DhGroup::Ecp256 => "ecp256",
        DhGroup::Ecp384 => "ecp384",
        DhGroup::Ecp521 => "ecp521",
        DhGroup::Curve25519 => "curve25519",
    }
}

/// Negotiated suites print in the proposal syntax of the config (and of strongSwan), so
/// that an operator can compare them with what was configured; they parse back to a
/// proposal accepting exactly this suite.
impl std::fmt::Display for IkeSuite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&encr_name(self.encr))?;
        if let Some(i) = self.integ {
            write!(f, "-{}", integ_name(i))?;
        }
        write!(f, "-{}-{}", prf_name(self.prf), dh_name(self.dh))
    }
}

/// As for [`IkeSuite`]; the DH group is the PFS group of the exchange that made the SA
/// (none for the CHILD SA of IKE_AUTH), and `esn` is shown only when negotiated.
impl std::fmt::Display for EspSuite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&encr_name(self.encr))?;
        if let Some(i) = self.integ {
            write!(f, "-{}", integ_name(i))?;
        }
        if let Some(g) = self.dh {
            write!(f, "-{}", dh_name(g))?;
        }
        if self.esn {
            f.write_str("-esn")?;
        }
        Ok(())
    }
}

fn encr_transform(e: EncrAlg) -> Transform {
    Transform::new(tt::ENCR, e.id(), Some(e.key_bits()))
}

fn known_types(p: &Proposal) -> bool {
    p.transforms
        .iter()
        .all(|t| (tt::ENCR..=tt::ESN).contains(&t.ty))
}

fn has(p: &Proposal, ty: u8) -> bool {
    p.transforms.iter().any(|t| t.ty == ty)
}

fn all<T>(p: &Proposal, ty: u8, f: impl Fn(&Transform) -> Option<T>) -> Vec<T> {
    p.transforms
        .iter()
        .filter(|t| t.ty == ty)
        .filter_map(f)
        .collect()
}

fn pick<T>(p: &Proposal, ty: u8, f: impl Fn(u16) -> Option<T>) -> Option<T> {
    p.transforms
        .iter()
        .filter(|t| t.ty == ty)
        .find_map(|t| f(t.id))
}

fn pick_encr(p: &Proposal, ours: &[EncrAlg]) -> Option<EncrAlg> {
    p.transforms
        .iter()
        .filter(|t| t.ty == tt::ENCR)
        .find_map(|t| EncrAlg::from_id(t.id, t.key_length()).filter(|e| ours.contains(e)))
}

/// AEAD suites carry no integrity transform (or only NONE); others need one we accept.
fn pick_integ(p: &Proposal, ours: &[IntegAlg], encr: EncrAlg) -> Option<Option<IntegAlg>> {
    if encr.is_aead() {
        let only_none = p
            .transforms
            .iter()
            .filter(|t| t.ty == tt::INTEG)
            .all(|t| t.id == 0);
        return only_none.then_some(None);
    }
    pick(p, tt::INTEG, |id| {
        IntegAlg::from_id(id).filter(|i| ours.contains(i))
    })
    .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiated_suites_print_in_config_syntax_and_parse_back() {
        for (text, name) in [
            (
                "aes128gcm16-prfsha256-modp2048",
                "aes128gcm16-prfsha256-modp2048",
            ),
            ("aes256-sha256-ecp256", "aes256-sha256-prfsha256-ecp256"),
            (
                "aes192-sha1-prfsha384-curve25519",
                "aes192-sha1-prfsha384-curve25519",
            ),
        ] {
            let p = IkeProposal::parse(text, false).unwrap();
            let (suite, _) = p.select(&[p.to_wire(1, &[])]).unwrap();
            assert_eq!(suite.to_string(), name);
            let back = IkeProposal::parse(name, false).unwrap();
            assert_eq!(back.select(&[p.to_wire(1, &[])]).unwrap().0, suite);
        }
        for (text, pfs, name) in [
            ("aes128gcm16", false, "aes128gcm16"),
            (
                "aes256-sha512-modp3072-esn",
                true,
                "aes256-sha512-modp3072-esn",
            ),
            ("aes128-sha256-ecp384", false, "aes128-sha256"),
        ] {
            let p = EspProposal::parse(text, false).unwrap();
            let (suite, _) = p.select(&[p.to_wire(1, [0; 4], pfs)], pfs).unwrap();
            assert_eq!(suite.to_string(), name);
        }
    }

    #[test]
    fn parses_strongswan_ike_strings() {
        let p = IkeProposal::parse("aes128gcm16-prfsha256-modp2048", false).unwrap();
        assert_eq!(p.encr, vec![EncrAlg::AesGcm16(128)]);
        assert!(p.integ.is_empty());
        assert_eq!(p.prf, vec![PrfAlg::HmacSha256]);
        assert_eq!(p.dh, vec![DhGroup::Modp2048]);
        let p = IkeProposal::parse("aes256-sha256-ecp256", false).unwrap();
        assert_eq!(
            p.prf,
            vec![PrfAlg::HmacSha256],
            "PRF derived from integrity"
        );
        assert_eq!(p.integ, vec![IntegAlg::HmacSha256_128]);
        let p = IkeProposal::parse("aes256gcm16-prfsha384-curve25519", false).unwrap();
        assert_eq!(p.dh, vec![DhGroup::Curve25519]);
        let p = IkeProposal::parse("aes128-sha1-modp2048", false).unwrap();
        assert_eq!(p.encr, vec![EncrAlg::AesCbc(128)]);
    }

    #[test]
    fn parses_esp_strings() {
        let p = EspProposal::parse("aes128gcm16", false).unwrap();
        assert!(p.dh.is_empty());
        assert_eq!(p.esn, vec![false]);
        let p = EspProposal::parse("aes256-sha256-modp2048", false).unwrap();
        assert_eq!(p.dh, vec![DhGroup::Modp2048]);
        let p = EspProposal::parse("aes128-sha1-esn-noesn", false).unwrap();
        assert_eq!(p.esn, vec![true, false]);
    }

    #[test]
    fn errors_name_the_bad_token() {
        assert_eq!(
            IkeProposal::parse("aes128-sha999-modp2048", false),
            Err(ProposalError::UnknownToken("sha999".into()))
        );
        assert_eq!(
            EspProposal::parse("aes128-prfsha1", false),
            Err(ProposalError::NotAllowed("prfsha1".into(), "ESP"))
        );
        assert!(matches!(
            IkeProposal::parse("aes128gcm16-modp2048", false),
            Err(ProposalError::MissingPrf(_))
        ));
        assert!(matches!(
            IkeProposal::parse("aes128-sha1", false),
            Err(ProposalError::MissingDhGroup(_))
        ));
        assert!(matches!(
            IkeProposal::parse("aes128-modp2048", false),
            Err(ProposalError::IntegrityMismatch(_))
        ));
        assert_eq!(
            IkeProposal::parse("aes128-sha1-modp1024", false),
            Err(ProposalError::WeakGroup(2))
        );
        assert!(IkeProposal::parse("aes128-sha1-modp1024", true).is_ok());
    }

    #[test]
    fn selection_picks_common_suite_and_echoes_number() {
        let ours = IkeProposal::parse("aes256-sha256-ecp256", false).unwrap();
        let theirs = vec![
            IkeProposal::parse("aes128gcm16-prfsha256-modp2048", false)
                .unwrap()
                .to_wire(1, &[]),
            IkeProposal::parse("aes128-aes256-sha1-sha256-modp2048-ecp256", false)
                .unwrap()
                .to_wire(2, &[]),
        ];
        let (suite, reply) = ours.select(&theirs).unwrap();
        assert_eq!(suite.encr, EncrAlg::AesCbc(256));
        assert_eq!(suite.integ, Some(IntegAlg::HmacSha256_128));
        assert_eq!(suite.prf, PrfAlg::HmacSha256);
        assert_eq!(suite.dh, DhGroup::Ecp256);
        assert_eq!(reply.number, 2);
        assert_eq!(IkeSuite::from_wire(&reply), Some(suite));
        let none = IkeProposal::parse("aes128-sha1-modp4096", false).unwrap();
        assert!(none.select(&theirs).is_none());
    }

    #[test]
    fn esp_selection_ignores_dh_without_ke() {
        let ours = EspProposal::parse("aes256-sha256-modp2048", false).unwrap();
        let offer = vec![ours.to_wire(1, [1, 2, 3, 4], false)];
        let (suite, reply) = ours.select(&offer, false).unwrap();
        assert_eq!(suite.dh, None);
        assert_eq!(reply.spi, vec![1, 2, 3, 4]);
        let offer = vec![ours.to_wire(1, [1, 2, 3, 4], true)];
        let (suite, _) = ours.select(&offer, true).unwrap();
        assert_eq!(suite.dh, Some(DhGroup::Modp2048));
        let nopfs = EspProposal::parse("aes256-sha256", false).unwrap();
        assert!(ours
            .select(&[nopfs.to_wire(1, [0; 4], true)], true)
            .is_none());
    }
}
