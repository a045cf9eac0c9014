//! Inbound SA: in-place ESP decapsulation with anti-replay.

use crate::error::{DropReason, SaError};
use crate::keys::SaKeys;
use crate::lifetime::{Lifetime, LifetimeEvent, Limits};
use crate::outbound::{NEXT_HEADER_IPV4, NEXT_HEADER_IPV6, NEXT_HEADER_NONE};
use crate::replay::{ReplayWindow, DEFAULT_REPLAY_WINDOW, MAX_REPLAY_WINDOW};
use crate::stats::{DropCounters, InboundStats};
use crate::suite::{Suite, ESP_HEADER_LEN};
use crate::transform::Transform;
use std::ops::Range;

/// Options of an inbound SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboundConfig {
    /// Extended (64-bit) sequence numbers, RFC 4304.
    pub esn: bool,
    /// Anti-replay window size in packets, 1..=65536.
    pub replay_window: u32,
    pub limits: Limits,
    /// The caller's own number for the SA (e.g. its tunnel), handed back with every
    /// decrypted packet so the caller need not look the SPI up again.
    pub owner: u32,
}

impl Default for InboundConfig {
    fn default() -> Self {
        InboundConfig {
            esn: false,
            replay_window: DEFAULT_REPLAY_WINDOW,
            limits: Limits::default(),
            owner: 0,
        }
    }
}

/// Protocol of a decapsulated inner packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InnerProto {
    Ipv4,
    Ipv6,
}

impl InnerProto {
    /// The ESP next header value.
    pub fn next_header(self) -> u8 {
        match self {
            InnerProto::Ipv4 => NEXT_HEADER_IPV4,
            InnerProto::Ipv6 => NEXT_HEADER_IPV6,
        }
    }
}

/// A decapsulated packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decapped {
    /// Where the inner packet lies in the caller's buffer.
    pub inner: Range<usize>,
    pub proto: InnerProto,
    /// Full (ESN-inferred) sequence number.
    pub seq: u64,
    /// Set on the packet that first reached a lifetime limit.
    pub event: Option<LifetimeEvent>,
    /// [`InboundConfig::owner`] of the SA.
    pub owner: u32,
}

/// Inbound SA, shared by reference between worker threads.
///
/// The replay window is lock-free (see `replay`): workers decrypting for the
/// same SA on several cores do not serialise on it.
pub struct InboundSa {
    spi: u32,
    suite: Suite,
    esn: bool,
    transform: Transform,
    window: ReplayWindow,
    lifetime: Lifetime,
    drops: DropCounters,
    owner: u32,
}

// Keys stay out of Debug: only identity and state.
impl std::fmt::Debug for InboundSa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundSa")
            .field("spi", &format_args!("{:#010x}", self.spi))
            .field("suite", &self.suite)
            .field("esn", &self.esn)
            .field("expired", &self.is_expired())
            .finish_non_exhaustive()
    }
}

impl InboundSa {
    pub fn new(
        spi: u32,
        suite: Suite,
        keys: &SaKeys,
        config: InboundConfig,
    ) -> Result<Self, SaError> {
        if spi == 0 {
            return Err(SaError::ReservedSpi);
        }
        if config.replay_window == 0 || config.replay_window > MAX_REPLAY_WINDOW {
            return Err(SaError::ReplayWindow(config.replay_window));
        }
        Ok(InboundSa {
            spi,
            suite,
            esn: config.esn,
            transform: Transform::new(suite, keys)?,
            window: ReplayWindow::new(config.replay_window),
            lifetime: Lifetime::new(config.limits),
            drops: DropCounters::new(),
            owner: config.owner,
        })
    }

    pub fn spi(&self) -> u32 {
        self.spi
    }

    pub fn suite(&self) -> Suite {
        self.suite
    }

    pub fn is_expired(&self) -> bool {
        self.lifetime.is_expired()
    }

    pub fn stats(&self) -> InboundStats {
        InboundStats {
            packets: self.lifetime.packets(),
            bytes: self.lifetime.bytes(),
            highest_seq: self.window.top(),
            drops: self.drops.snapshot(),
        }
    }

    /// Decapsulates the ESP packet filling `buf` (from the SPI to the ICV) in
    /// place. Every error is counted under its reason.
    pub fn decap(&self, buf: &mut [u8]) -> Result<Decapped, DropReason> {
        let r = self.decap_inner(buf);
        if let Err(reason) = r {
            self.drops.count(reason);
        }
        r
    }

    fn decap_inner(&self, buf: &mut [u8]) -> Result<Decapped, DropReason> {
        let suite = self.suite;
        if buf.len() < suite.min_packet_len() {
            return Err(DropReason::Truncated);
        }
        let (spi, seq_lo) = read_header(buf).ok_or(DropReason::Truncated)?;
        if spi != self.spi {
            return Err(DropReason::UnknownSpi(spi));
        }
        let body_start = suite.headroom();
        let body_end = buf.len() - suite.icv_len();
        if (body_end - body_start) % suite.block_size() != 0 {
            return Err(DropReason::BadLength);
        }
        if self.lifetime.is_expired() {
            return Err(DropReason::SaExpired);
        }
        // Replay check before any crypto; the window is only updated once the
        // ICV has been verified (RFC 4303 3.4.3).
        let seq = self.window.infer(seq_lo, self.esn);
        self.window.check(seq)?;
        let seq_hi = self.esn.then_some((seq >> 32) as u32);
        self.transform
            .open(buf, seq_hi)
            .map_err(|_| DropReason::IcvMismatch)?;
        self.window.accept(seq)?;

        let plain = buf.get(body_start..body_end).ok_or(DropReason::Truncated)?;
        let (inner_len, next_header) = parse_trailer(plain)?;
        let inner = body_start..body_start + inner_len;
        let proto = match next_header {
            NEXT_HEADER_IPV4 => InnerProto::Ipv4,
            NEXT_HEADER_IPV6 => InnerProto::Ipv6,
            NEXT_HEADER_NONE => return Err(DropReason::TfcDummy),
            other => return Err(DropReason::BadNextHeader(other)),
        };
        let version = plain
            .get(..inner_len)
            .and_then(|p| p.first())
            .map(|b| b >> 4);
        if version != Some(if proto == InnerProto::Ipv4 { 4 } else { 6 }) {
            return Err(DropReason::BadInnerPacket);
        }
        let event = self.lifetime.account(inner_len);
        Ok(Decapped {
            inner,
            proto,
            seq,
            event,
            owner: self.owner,
        })
    }
}

fn read_header(buf: &[u8]) -> Option<(u32, u32)> {
    let spi = u32::from_be_bytes(buf.get(0..4)?.try_into().ok()?);
    let seq = u32::from_be_bytes(buf.get(4..ESP_HEADER_LEN)?.try_into().ok()?);
    Some((spi, seq))
}

/// Splits the decrypted body into inner length and next header, checking the
/// monotonic padding (RFC 4303 2.4).
fn parse_trailer(plain: &[u8]) -> Result<(usize, u8), DropReason> {
    let [rest @ .., pad_len, next_header] = plain else {
        return Err(DropReason::Truncated);
    };
    let pad_len = usize::from(*pad_len);
    let inner_len = rest
        .len()
        .checked_sub(pad_len)
        .ok_or(DropReason::BadPadding)?;
    let padding = rest.get(inner_len..).ok_or(DropReason::BadPadding)?;
    let monotonic = padding
        .iter()
        .enumerate()
        .all(|(i, &b)| usize::from(b) == i + 1);
    if !monotonic {
        return Err(DropReason::BadPadding);
    }
    Ok((inner_len, *next_header))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_parsing() {
        assert_eq!(parse_trailer(&[0x45, 0, 4]), Ok((1, 4)));
        assert_eq!(parse_trailer(&[0x45, 1, 2, 2, 41]), Ok((1, 41)));
        assert_eq!(
            parse_trailer(&[0x45, 1, 3, 2, 41]),
            Err(DropReason::BadPadding)
        );
        assert_eq!(parse_trailer(&[1, 2, 3, 3, 4]), Ok((0, 4)));
        assert_eq!(parse_trailer(&[1, 2, 4, 4]), Err(DropReason::BadPadding));
        assert_eq!(parse_trailer(&[4]), Err(DropReason::Truncated));
        assert_eq!(parse_trailer(&[]), Err(DropReason::Truncated));
    }
}
