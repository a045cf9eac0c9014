//! Small helpers shared by the exchanges: payload lookup, NAT detection hashes, cookies.
use crate::crypto::Secret;
use crate::wire::{Notify, Payload};
use rand_core::CryptoRngCore;
use ring::digest;
use std::net::{IpAddr, SocketAddr};

pub(crate) fn notify(payloads: &[Payload], ty: u16) -> Option<&Notify> {
    payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if n.ty == ty => Some(n),
        _ => None,
    })
}

/// The first error notify (type < 16384), if any.
pub(crate) fn error_notify(payloads: &[Payload]) -> Option<u16> {
    payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if n.is_error() => Some(n.ty),
        _ => None,
    })
}

pub(crate) fn unsupported_critical(payloads: &[Payload]) -> Option<u8> {
    payloads.iter().find_map(|p| match p {
        Payload::Unknown {
            ty, critical: true, ..
        } => Some(*ty),
        _ => None,
    })
}

pub(crate) fn random_bytes(rng: &mut dyn CryptoRngCore, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rng.fill_bytes(&mut v);
    v
}

pub(crate) fn random_spi8(rng: &mut dyn CryptoRngCore) -> [u8; 8] {
    let mut s = [0u8; 8];
    while s == [0u8; 8] {
        rng.fill_bytes(&mut s);
    }
    s
}

/// A random ESP SPI outside the reserved range 0..=255 (RFC 4303 2.1).
pub(crate) fn random_esp_spi(rng: &mut dyn CryptoRngCore) -> u32 {
    loop {
        let v = rng.next_u32();
        if v > 255 {
            return v;
        }
    }
}

/// NAT_DETECTION_*_IP data: SHA-1(SPIi | SPIr | IP address | port) (RFC 7296 2.23).
pub(crate) fn nat_hash(spi_i: &[u8; 8], spi_r: &[u8; 8], addr: SocketAddr) -> Vec<u8> {
    let mut ctx = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(spi_i);
    ctx.update(spi_r);
    match addr.ip() {
        IpAddr::V4(a) => ctx.update(&a.octets()),
        IpAddr::V6(a) => ctx.update(&a.octets()),
    }
    ctx.update(&addr.port().to_be_bytes());
    ctx.finish().as_ref().to_vec()
}

/// Stateless cookie (RFC 7296 2.6): HMAC(secret, Ni | IPi | SPIi), prefixed with a version byte.
pub(crate) fn cookie(secret: &Secret, ni: &[u8], from: SocketAddr, spi_i: &[u8; 8]) -> Vec<u8> {
    let ip = match from.ip() {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    };
    let mac = crate::crypto::PrfAlg::HmacSha256.prf_parts(secret.expose(), &[ni, &ip, spi_i]);
    let mut out = vec![1u8];
    out.extend_from_slice(mac.expose());
    out
}

pub(crate) fn u32_spi(b: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(b).ok().map(u32::from_be_bytes)
}
