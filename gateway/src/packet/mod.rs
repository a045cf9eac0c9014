//! Packet helpers for the dataplane: pure functions over caller buffers, no allocation.

pub mod checksum;
mod error;
pub mod fragment;
pub mod icmp_too_big;
pub mod mss;
pub mod qos;

pub use error::PacketError;
pub use fragment::Ipv4Fragmenter;
pub use icmp_too_big::{icmp_too_big, needs_too_big};
pub use mss::{clamp_mss, mss_for_mtu, MssClamp};
pub use qos::{DscpCopy, Qos};

pub(crate) const PROTO_TCP: u8 = 6;
pub(crate) const PROTO_ICMP: u8 = 1;
pub(crate) const PROTO_ICMPV6: u8 = 58;

/// The destination address of an IPv4 or IPv6 packet; `None` for another version or a
/// header cut short.
#[inline]
pub fn destination(pkt: &[u8]) -> Option<std::net::IpAddr> {
    match pkt.first()? >> 4 {
        4 => Some(<[u8; 4]>::try_from(pkt.get(16..20)?).ok()?.into()),
        6 => Some(<[u8; 16]>::try_from(pkt.get(24..40)?).ok()?.into()),
        _ => None,
    }
}

/// Reads a big-endian u16 at `at`, `None` past the end.
pub(crate) fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([
        *b.get(at)?,
        *b.get(at.checked_add(1)?)?,
    ]))
}

/// Writes a big-endian u16 at `at`; `Err` past the end.
pub(crate) fn put16(b: &mut [u8], at: usize, v: u16) -> Result<(), PacketError> {
    b.get_mut(at..at + 2)
        .ok_or(PacketError::Truncated)?
        .copy_from_slice(&v.to_be_bytes());
    Ok(())
}

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod robustness;
