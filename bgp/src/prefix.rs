//! IPv4 prefixes as carried in NLRI and withdrawn-routes fields (RFC 4271 section 4.3).

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use thiserror::Error;

/// An IPv4 unicast prefix with its host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Prefix {
    addr: Ipv4Addr,
    len: u8,
}

/// Why a prefix could not be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PrefixError {
    #[error("prefix length {0} is longer than 32")]
    LengthTooLong(u8),
    #[error("prefix `{0}` is not of the form a.b.c.d/len")]
    Syntax(String),
}

impl Ipv4Prefix {
    /// Builds a prefix; bits beyond `len` are cleared so equal prefixes compare equal.
    pub fn new(addr: Ipv4Addr, len: u8) -> Result<Self, PrefixError> {
        if len > 32 {
            return Err(PrefixError::LengthTooLong(len));
        }
        let bits = u32::from(addr) & Self::mask(len);
        Ok(Self {
            addr: Ipv4Addr::from(bits),
            len,
        })
    }

    fn mask(len: u8) -> u32 {
        match len {
            0 => 0,
            l => u32::MAX << (32 - u32::from(l.min(32))),
        }
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn len(&self) -> u8 {
        self.len
    }

    /// True for the default route 0.0.0.0/0 (the only prefix with no network bits).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Does this prefix cover `ip`?
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & Self::mask(self.len) == u32::from(self.addr)
    }

    /// Octets needed to encode this prefix in NLRI form (length octet excluded).
    pub(crate) fn wire_octets(&self) -> usize {
        usize::from(self.len).div_ceil(8)
    }

    /// Appends the NLRI encoding: one length octet, then the significant address octets.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.len);
        let octets = self.addr.octets();
        out.extend(octets.iter().take(self.wire_octets()));
    }
}

impl fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Ipv4Prefix {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || PrefixError::Syntax(s.to_string());
        let (addr, len) = s.split_once('/').ok_or_else(syntax)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| syntax())?;
        let len: u8 = len.parse().map_err(|_| syntax())?;
        Self::new(addr, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_bits_are_cleared() {
        let p: Ipv4Prefix = "10.1.2.3/16".parse().unwrap();
        assert_eq!(p.to_string(), "10.1.0.0/16");
        assert!(p.contains(Ipv4Addr::new(10, 1, 200, 1)));
        assert!(!p.contains(Ipv4Addr::new(10, 2, 0, 1)));
    }

    #[test]
    fn default_route_and_host_route() {
        let d: Ipv4Prefix = "0.0.0.0/0".parse().unwrap();
        assert!(d.is_empty());
        assert!(d.contains(Ipv4Addr::new(8, 8, 8, 8)));
        let h: Ipv4Prefix = "192.0.2.7/32".parse().unwrap();
        assert_eq!(h.wire_octets(), 4);
        let mut out = Vec::new();
        h.encode(&mut out);
        assert_eq!(out, [32, 192, 0, 2, 7]);
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            Ipv4Prefix::new(Ipv4Addr::UNSPECIFIED, 33),
            Err(PrefixError::LengthTooLong(33))
        );
        assert!("10.0.0.0".parse::<Ipv4Prefix>().is_err());
        assert!("10.0.0.0/x".parse::<Ipv4Prefix>().is_err());
    }
}
