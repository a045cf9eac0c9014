//! Proposal lists in strongSwan syntax, parsed by `ike::proposal` so that the config accepts
//! exactly what the IKE/ESP code can negotiate. A list is comma-separated proposals; a final
//! `!` makes it strict (no fallback to defaults), as in strongSwan.

use ike::proposal::{EspProposal, IkeProposal, ProposalError};

/// A parsed proposal list plus the text it came from (for logs and `check-config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalList<T> {
    pub text: String,
    pub strict: bool,
    pub proposals: Vec<T>,
}

pub fn parse_ike(text: &str, allow_weak: bool) -> Result<ProposalList<IkeProposal>, Vec<String>> {
    parse(text, |p| IkeProposal::parse(p, allow_weak))
}

pub fn parse_esp(text: &str, allow_weak: bool) -> Result<ProposalList<EspProposal>, Vec<String>> {
    parse(text, |p| EspProposal::parse(p, allow_weak))
}

fn parse<T>(
    text: &str,
    one: impl Fn(&str) -> Result<T, ProposalError>,
) -> Result<ProposalList<T>, Vec<String>> {
    let trimmed = text.trim();
    let (body, strict) = match trimmed.strip_suffix('!') {
        Some(body) => (body, true),
        None => (trimmed, false),
    };
    if body.trim().is_empty() {
        return Err(vec!["empty proposal list".to_owned()]);
    }
    let mut proposals = Vec::new();
    let mut problems = Vec::new();
    for p in body.split(',').map(str::trim) {
        if p.is_empty() {
            problems.push("empty proposal between commas".to_owned());
            continue;
        }
        match one(p) {
            Ok(parsed) => proposals.push(parsed),
            Err(e) => problems.push(format!("`{p}`: {e}")),
        }
    }
    if problems.is_empty() {
        Ok(ProposalList {
            text: trimmed.to_owned(),
            strict,
            proposals,
        })
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_strict_marker() {
        let l = parse_ike(
            "aes128gcm16-prfsha256-modp2048, aes256-sha256-ecp256!",
            false,
        )
        .unwrap();
        assert!(l.strict);
        assert_eq!(l.proposals.len(), 2);
        let l = parse_esp("aes128gcm16-modp2048", false).unwrap();
        assert!(!l.strict);
        assert_eq!(l.proposals[0].dh.len(), 1);
    }

    #[test]
    fn every_bad_proposal_is_reported() {
        let e = parse_esp("aes999-sha1,aes128,,", false).unwrap_err();
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e[0].contains("aes999"));
        assert!(parse_ike(" ! ", false).unwrap_err()[0].contains("empty proposal list"));
    }

    #[test]
    fn weak_groups_need_opt_in() {
        assert!(parse_ike("aes128-sha1-modp1024", false).unwrap_err()[0].contains("weak"));
        assert!(parse_ike("aes128-sha1-modp1024", true).is_ok());
    }
}
