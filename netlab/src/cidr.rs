//! An interface address with its prefix length, e.g. `10.10.0.10/24`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::error::HarnessError;

/// An address and prefix length as `ip addr add` takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Checks the prefix length against the address family.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, HarnessError> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(HarnessError::Invalid(format!(
                "prefix /{prefix} too long for {addr}"
            )));
        }
        Ok(Cidr { addr, prefix })
    }

    /// The interface address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The network this address is in, e.g. `10.10.0.0/24` for `10.10.0.10/24`.
    pub fn network(&self) -> Cidr {
        let addr = match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        };
        Cidr {
            addr,
            prefix: self.prefix,
        }
    }
}

impl FromStr for Cidr {
    type Err = HarnessError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| HarnessError::Invalid(format!("address {s:?}: {why}"));
        let (addr, prefix) = s.split_once('/').ok_or_else(|| bad("missing /prefix"))?;
        let addr: IpAddr = addr.parse().map_err(|_| bad("not an IP address"))?;
        let prefix: u8 = prefix.parse().map_err(|_| bad("prefix not a number"))?;
        Cidr::new(addr, prefix)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prints_and_finds_the_network() {
        let c: Cidr = "10.10.0.10/24".parse().unwrap();
        assert_eq!(c.addr().to_string(), "10.10.0.10");
        assert_eq!(c.prefix(), 24);
        assert_eq!(c.to_string(), "10.10.0.10/24");
        assert_eq!(c.network().to_string(), "10.10.0.0/24");
        assert_eq!(
            "169.254.10.2/30"
                .parse::<Cidr>()
                .unwrap()
                .network()
                .to_string(),
            "169.254.10.0/30"
        );
        assert_eq!(
            "0.0.0.0/0".parse::<Cidr>().unwrap().network().to_string(),
            "0.0.0.0/0"
        );
        assert_eq!(
            "2001:db8::1/64"
                .parse::<Cidr>()
                .unwrap()
                .network()
                .to_string(),
            "2001:db8::/64"
        );
    }

    #[test]
    fn refuses_malformed_input() {
        for bad in [
            "10.0.0.1",
            "10.0.0.1/33",
            "10.0.0/24",
            "x/1",
            "10.0.0.1/-1",
            "::1/129",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }
}
