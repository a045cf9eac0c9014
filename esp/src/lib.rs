//! ESP (RFC 4303) tunnel-mode transform: SA state, cipher suites, anti-replay.
//! Pure: no sockets, no clock, no randomness of its own.
//!
//! The caller owns every buffer; an SA transforms it in place and returns an
//! outcome (as in boringtun's `noise` or quinn-proto). SAs are `Send + Sync`
//! and used through `&self` by several worker threads at once.
//!
//! # Buffer layout
//!
//! Outbound, the caller reads the inner IPv4/IPv6 packet into a buffer at
//! offset `inner_start`, leaving at least [`OutboundSa::headroom`] bytes before
//! it (more if it wants to prepend UDP/IP headers later) and
//! [`OutboundSa::tailroom`] bytes after it ([`MAX_HEADROOM`] and
//! [`MAX_TAILROOM`] fit every suite). [`OutboundSa::encap`] writes, in place:
//!
//! ```text
//!      inner_start - headroom          inner_start              inner_end
//!      |                               |                        |
//!      | SPI | seq_lo | IV             | inner packet (stays)   | pad 1,2,3.. | pad_len | next_hdr | ICV |
//!      |<- 8 ->|      |<- 8/16 ->|     |                        |<- to block size / 4 bytes ->|     |<-12..32->|
//!      |<------------------- EncapOk::range (the ESP packet) ------------------------------------------>|
//! ```
//!
//! and encrypts from the inner packet to the next header. Inbound, the caller
//! passes exactly the ESP packet (the UDP payload after [`udp_encap::classify`]
//! said ESP) to [`InboundSa::decap`] or [`SaTable::decap`]; the inner packet is
//! decrypted in place and returned as [`Decapped::inner`], a range of the same
//! buffer.
//!
//! # Keys and IVs
//!
//! [`SaKeys`] takes one direction's IKEv2 KEYMAT slice (RFC 7296 2.17): the
//! encryption key (for GCM followed by the 4-byte salt, RFC 4106 8.1) then the
//! integrity key. AES-GCM's explicit IV is the 64-bit sequence number, which is
//! never reused under one key. AES-CBC needs unpredictable IVs; since the core
//! has no RNG, the caller hands each outbound SA a random [`IvKey`] and the SA
//! derives IV = AES-128(IvKey, seq): unique per packet, unpredictable, and
//! lock-free, unlike a shared RNG or an IV callback per packet.
//!
//! # Inbound processing order
//!
//! length and SPI checks, replay-window check (with ESN high bits inferred per
//! RFC 4303 Appendix A), ICV verification (constant time), window update,
//! decryption, padding and next-header validation. Every drop is a
//! [`DropReason`] and counted per SA; next header 59 (TFC dummy) is reported as
//! [`DropReason::TfcDummy`] and counted separately.
//!
//! # Lifetimes
//!
//! Byte and packet [`Limits`] and sequence-number exhaustion raise one
//! [`LifetimeEvent::Soft`] (rekey now) and one [`LifetimeEvent::Hard`] (stop
//! using the SA) on the packet that crosses the limit; after the hard limit,
//! `encap` fails with [`EncapError::SaExpired`] and `decap` with
//! [`DropReason::SaExpired`].
//!
//! # Example
//!
//! ```
//! use esp::*;
//! let suite = Suite::AesGcm16(AesKeySize::Aes128);
//! let keys = SaKeys::from_keymat(suite, &[7u8; 20]).unwrap();
//! let out = OutboundSa::new(0x1234, suite, &keys, OutboundConfig::default(), IvKey::new([1; 16])).unwrap();
//! let inb = InboundSa::new(0x1234, suite, &keys, InboundConfig::default()).unwrap();
//!
//! let inner = [0x45u8, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
//! let mut buf = vec![0u8; MAX_HEADROOM + inner.len() + MAX_TAILROOM];
//! buf[MAX_HEADROOM..MAX_HEADROOM + inner.len()].copy_from_slice(&inner);
//! let ok = out.encap(&mut buf, MAX_HEADROOM, inner.len()).unwrap();
//!
//! let mut packet = buf[ok.range].to_vec();
//! let d = inb.decap(&mut packet).unwrap();
//! assert_eq!(&packet[d.inner], &inner[..]);
//! assert_eq!(d.proto, InnerProto::Ipv4);
//! ```

mod error;
mod inbound;
mod keys;
mod lifetime;
mod outbound;
mod replay;
mod stats;
mod suite;
mod table;
mod transform;
pub mod udp_encap;

#[cfg(test)]
mod tests;

pub use error::{DropReason, EncapError, SaError};
pub use inbound::{Decapped, InboundConfig, InboundSa, InnerProto};
pub use keys::{IvKey, SaKeys};
pub use lifetime::{LifetimeEvent, LimitKind, Limits};
pub use outbound::{
    EncapOk, OutboundConfig, OutboundSa, NEXT_HEADER_IPV4, NEXT_HEADER_IPV6, NEXT_HEADER_NONE,
};
pub use replay::{DEFAULT_REPLAY_WINDOW, MAX_REPLAY_WINDOW};
pub use stats::{DropCounts, InboundStats, OutboundStats};
pub use suite::{
    AesKeySize, Integrity, Suite, ESP_HEADER_LEN, IKEV2_ENCR_AES_CBC, IKEV2_ENCR_AES_GCM_16,
    MAX_HEADROOM, MAX_TAILROOM,
};
pub use table::{SaSnapshot, SaTable, SpiHasher};
