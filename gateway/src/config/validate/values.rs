//! Parsers for single values: durations, addresses, prefixes, identities, names.

use crate::config::model::Identity;
use ipnet::IpNet;
use std::net::IpAddr;
use std::time::Duration;

/// A humane, non-zero duration such as `30s`, `1h`, `1h 30m`.
pub fn duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration like \"30s\" or \"1h\": {e}"))?;
    if d.is_zero() {
        return Err("must be longer than zero".to_owned());
    }
    Ok(d)
}

/// A non-zero byte count: a TOML integer, or a string of digits with an optional binary
/// suffix `K`, `M`, `G` or `T` (powers of 1024, as in strongSwan; `KiB`.. also read),
/// e.g. `"500M"`.
pub fn byte_count(v: &toml::Value) -> Result<u64, String> {
    const UNITS: [(&str, u32); 4] = [("K", 1), ("M", 2), ("G", 3), ("T", 4)];
    let text = match v {
        toml::Value::Integer(n) => return positive(*n),
        toml::Value::String(s) => s.trim(),
        other => {
            return Err(format!(
                "`{other}` is not a byte count like 1048576 or \"4G\""
            ))
        }
    };
    let bad = || {
        format!("`{text}` is not a byte count like 1048576 or \"4G\" (K, M, G, T: powers of 1024)")
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let unit = unit.trim();
    let unit = unit.strip_suffix("iB").unwrap_or(unit);
    let power = match unit {
        "" => 0,
        u => UNITS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(u))
            .map(|&(_, p)| p)
            .ok_or_else(bad)?,
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let n = n
        .checked_mul(1024u64.pow(power))
        .ok_or_else(|| format!("`{text}` is too large"))?;
    if n == 0 {
        return Err("must be larger than zero (leave it out for no limit)".to_owned());
    }
    Ok(n)
}

/// A non-zero packet count: a TOML integer.
pub fn packet_count(v: &toml::Value) -> Result<u64, String> {
    match v {
        toml::Value::Integer(n) => positive(*n),
        other => Err(format!(
            "`{other}` is not a packet count (an integer like 1000000)"
        )),
    }
}

fn positive(n: i64) -> Result<u64, String> {
    match u64::try_from(n) {
        Ok(0) => Err("must be larger than zero (leave it out for no limit)".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{n} is negative")),
    }
}

/// A unicast address usable as a tunnel endpoint.
pub fn endpoint(s: &str) -> Result<IpAddr, String> {
    let ip: IpAddr = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not an IPv4 or IPv6 address"))?;
    if ip.is_unspecified() || ip.is_multicast() {
        return Err(format!("`{ip}` is not a unicast address"));
    }
    if let IpAddr::V4(v4) = ip {
        if v4.is_broadcast() {
            return Err(format!("`{ip}` is not a unicast address"));
        }
    }
    Ok(ip)
}

/// A prefix whose host bits are zero (`10.0.0.0/16`, not `10.0.0.1/16`).
pub fn prefix(s: &str) -> Result<IpNet, String> {
    let net: IpNet = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a prefix like 10.0.0.0/16"))?;
    if net.trunc() != net {
        return Err(format!(
            "`{s}` has host bits set; did you mean {}?",
            net.trunc()
        ));
    }
    Ok(net)
}

/// IKE identity: an IP address, `user@domain`, or an FQDN (optionally written `@fqdn`).
pub fn identity(s: &str) -> Result<Identity, String> {
    let s = s.trim();
    if let Some(k) = s.strip_prefix("keyid:") {
        let bytes = match k.strip_prefix('#') {
            Some(h) => from_hex(h).ok_or_else(|| format!("`{s}`: `#` must be followed by hex"))?,
            None => k.as_bytes().to_vec(),
        };
        if bytes.is_empty() || bytes.len() > 255 {
            return Err(format!("`{s}`: a key ID has 1 to 255 bytes"));
        }
        return Ok(Identity::KeyId(bytes));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(Identity::Ip(ip));
    }
    if let Some(fqdn) = s.strip_prefix('@') {
        return fqdn_ok(fqdn).map(|()| Identity::Fqdn(fqdn.to_owned()));
    }
    if let Some((user, domain)) = s.split_once('@') {
        if user.is_empty() || user.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("`{s}`: bad user part of an email identity"));
        }
        return fqdn_ok(domain).map(|()| Identity::Email(s.to_owned()));
    }
    fqdn_ok(s).map(|()| Identity::Fqdn(s.to_owned()))
}

fn from_hex(h: &str) -> Option<Vec<u8>> {
    if !h.len().is_multiple_of(2) {
        return None;
    }
    (0..h.len())
        .step_by(2)
        .map(|i| h.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

fn fqdn_ok(s: &str) -> Result<(), String> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if s.is_empty() || s.len() > 253 || !s.split('.').all(label_ok) {
        return Err(format!(
            "`{s}` is not an IP address, FQDN or user@domain identity"
        ));
    }
    Ok(())
}

/// A name that can also be used as a Linux interface name: 1..=15 of `[A-Za-z0-9_-]`.
pub fn tunnel_name(s: &str) -> Result<String, String> {
    let ok = (1..=15).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !ok {
        return Err(format!(
            "`{s}`: use 1 to 15 letters, digits, `_` or `-` (it may name a network interface)"
        ));
    }
    Ok(s.to_owned())
}

/// A connection name: 1..=64 of `[A-Za-z0-9_.-]`.
pub fn connection_name(s: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !ok {
        return Err(format!(
            "`{s}`: use 1 to 64 letters, digits, `_`, `-` or `.`"
        ));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(duration("150s"), Ok(Duration::from_secs(150)));
        assert!(duration("0s").unwrap_err().contains("longer than zero"));
        assert!(duration("soon").unwrap_err().contains("not a duration"));
    }

    #[test]
    fn byte_counts() {
        let s = |t: &str| byte_count(&toml::Value::String(t.into()));
        assert_eq!(byte_count(&toml::Value::Integer(4096)), Ok(4096));
        assert_eq!(s("4096"), Ok(4096));
        assert_eq!(s("64K"), Ok(64 << 10));
        assert_eq!(s("500M"), Ok(500 << 20));
        assert_eq!(s("500 MiB"), Ok(500 << 20));
        assert_eq!(s("4g"), Ok(4 << 30));
        assert_eq!(s("2T"), Ok(2 << 40));
        assert!(s("0G").unwrap_err().contains("larger than zero"));
        assert!(byte_count(&toml::Value::Integer(0))
            .unwrap_err()
            .contains("larger than zero"));
        assert!(byte_count(&toml::Value::Integer(-5))
            .unwrap_err()
            .contains("negative"));
        for bad in ["", "G", "1.5G", "4X", "4GB", "-4G", "lots"] {
            assert!(s(bad).unwrap_err().contains("not a byte count"), "{bad}");
        }
        assert!(s("99999999999T").unwrap_err().contains("too large"));
        assert!(byte_count(&toml::Value::Float(1.5))
            .unwrap_err()
            .contains("not a byte count"));
    }

    #[test]
    fn packet_counts() {
        assert_eq!(packet_count(&toml::Value::Integer(2000)), Ok(2000));
        assert!(packet_count(&toml::Value::Integer(0))
            .unwrap_err()
            .contains("larger than zero"));
        assert!(packet_count(&toml::Value::String("1M".into()))
            .unwrap_err()
            .contains("not a packet count"));
    }

    #[test]
    fn endpoints() {
        assert!(endpoint("198.51.100.1").is_ok());
        assert!(endpoint("2001:db8::1").is_ok());
        assert!(endpoint("0.0.0.0").unwrap_err().contains("unicast"));
        assert!(endpoint("224.0.0.5").unwrap_err().contains("unicast"));
        assert!(endpoint("255.255.255.255").unwrap_err().contains("unicast"));
        assert!(endpoint("cloud.example")
            .unwrap_err()
            .contains("not an IPv4"));
    }

    #[test]
    fn prefixes() {
        assert!(prefix("10.0.0.0/16").is_ok());
        assert!(prefix("0.0.0.0/0").is_ok());
        assert!(prefix("2001:db8::/32").is_ok());
        assert!(prefix("10.0.0.1/16").unwrap_err().contains("10.0.0.0/16"));
        assert!(prefix("10.0.0.0").unwrap_err().contains("not a prefix"));
        assert!(prefix("10.0.0.0/33").is_err());
    }

    #[test]
    fn identities() {
        assert_eq!(
            identity("203.0.113.9"),
            Ok(Identity::Ip("203.0.113.9".parse().unwrap()))
        );
        assert_eq!(
            identity("@vpn.example.com"),
            Ok(Identity::Fqdn("vpn.example.com".into()))
        );
        assert_eq!(
            identity("vpn.example.com"),
            Ok(Identity::Fqdn("vpn.example.com".into()))
        );
        assert_eq!(
            identity("ops@example.com"),
            Ok(Identity::Email("ops@example.com".into()))
        );
        assert!(identity("bad name").is_err());
        assert!(identity("@").is_err());
        assert!(identity("a@-b.com").is_err());
        assert_eq!(
            identity("keyid:cloud-vpn-1"),
            Ok(Identity::KeyId(b"cloud-vpn-1".to_vec()))
        );
        assert_eq!(
            identity("keyid:#0aff"),
            Ok(Identity::KeyId(vec![0x0a, 0xff]))
        );
        assert_eq!(Identity::KeyId(vec![0x0a, 0xff]).to_string(), "keyid:#0aff");
        assert_eq!(Identity::KeyId(b"gw1".to_vec()).to_string(), "keyid:gw1");
        assert!(identity("keyid:").is_err());
        assert!(identity("keyid:#0g").is_err());
        assert!(identity("keyid:#abc").is_err());
    }

    #[test]
    fn names() {
        assert!(tunnel_name("tun-1").is_ok());
        assert!(tunnel_name("").is_err());
        assert!(tunnel_name("a-very-long-tunnel-name").is_err());
        assert!(tunnel_name("tun 1").is_err());
        assert!(connection_name("vpc-prod.eu").is_ok());
        assert!(connection_name("bad/name").is_err());
    }
}
