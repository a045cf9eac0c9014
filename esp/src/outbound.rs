//! Outbound SA: in-place ESP encapsulation of inner IPv4/IPv6 packets.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{EncapError, SaError};
use crate::keys::{IvKey, SaKeys};
use crate::lifetime::{Lifetime, LifetimeEvent, LimitKind, Limits};
use crate::stats::OutboundStats;
use crate::suite::{Suite, ESP_HEADER_LEN};
use crate::transform::{CbcIvGen, Transform};

/// IP protocol number of IPv4-in-ESP (tunnel mode).
pub const NEXT_HEADER_IPV4: u8 = 4;
/// IP protocol number of IPv6-in-ESP.
pub const NEXT_HEADER_IPV6: u8 = 41;
/// "No next header": a TFC dummy packet (RFC 4303 2.6).
pub const NEXT_HEADER_NONE: u8 = 59;

/// Options of an outbound SA.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboundConfig {
    /// Extended (64-bit) sequence numbers, RFC 4304.
    pub esn: bool,
    pub limits: Limits,
    /// Pad the encrypted part to whole AES blocks (16 bytes, as CBC must) rather than
    /// the 4 bytes GCM needs, whenever the ESP packet (SPI to ICV) then stays within
    /// this many bytes, e.g. what the underlay path MTU leaves after the IP and UDP
    /// headers. ring seals a trailing partial block at a fixed cost of about 40 ns (a
    /// sixth of a 1400-byte packet) and opens one at about 15 ns; RFC 4303 2.4 lets a
    /// sender pad up to 255 bytes. `None`: the least padding.
    pub block_pad_limit: Option<usize>,
}

/// A successful encapsulation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncapOk {
    /// Where the ESP packet lies in the caller's buffer.
    pub range: Range<usize>,
    /// Its 64-bit sequence number.
    pub seq: u64,
    /// Set on the packet that first reached a lifetime limit.
    pub event: Option<LifetimeEvent>,
}

/// Outbound SA, shared by reference between worker threads.
///
/// The sequence number is one atomic counter. AES-GCM's explicit IV is the
/// 64-bit sequence number (unique per key, RFC 4106 3.1). AES-CBC IVs come from
/// a per-SA generator, AES of the sequence number under the caller-supplied
/// [`IvKey`]: unique and unpredictable without an RNG on the hot path, and
/// reproducible in tests.
pub struct OutboundSa {
    spi: u32,
    suite: Suite,
    esn: bool,
    transform: Transform,
    iv_gen: Option<CbcIvGen>,
    /// Last sequence number handed out (0: none).
    seq: AtomicU64,
    seq_max: u64,
    seq_soft: u64,
    lifetime: Lifetime,
    refused_expired: AtomicU64,
    refused_invalid: AtomicU64,
    block_pad_limit: Option<usize>,
}

// Keys stay out of Debug: only identity and state.
impl std::fmt::Debug for OutboundSa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundSa")
            .field("spi", &format_args!("{:#010x}", self.spi))
            .field("suite", &self.suite)
            .field("esn", &self.esn)
            .field("expired", &self.is_expired())
            .finish_non_exhaustive()
    }
}

impl OutboundSa {
    /// `keys` are the keys of this direction; `iv_key` is fresh random bytes
    /// from the caller (used by CBC suites only).
    pub fn new(
        spi: u32,
        suite: Suite,
        keys: &SaKeys,
        config: OutboundConfig,
        iv_key: IvKey,
    ) -> Result<Self, SaError> {
        if spi == 0 {
            return Err(SaError::ReservedSpi);
        }
        let transform = Transform::new(suite, keys)?;
        let iv_gen = matches!(suite, Suite::AesCbc(..)).then(|| CbcIvGen::new(&iv_key));
        let seq_max = if config.esn {
            u64::MAX
        } else {
            u64::from(u32::MAX)
        };
        Ok(OutboundSa {
            spi,
            suite,
            esn: config.esn,
            transform,
            iv_gen,
            seq: AtomicU64::new(0),
            seq_max,
            // Rekey well before the sequence space runs out: at 7/8 of it.
            seq_soft: seq_max - seq_max / 8,
            lifetime: Lifetime::new(config.limits),
            refused_expired: AtomicU64::new(0),
            refused_invalid: AtomicU64::new(0),
            block_pad_limit: config.block_pad_limit,
        })
    }

    pub fn spi(&self) -> u32 {
        self.spi
    }

    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// Bytes to reserve before the inner packet.
    pub fn headroom(&self) -> usize {
        self.suite.headroom()
    }

    /// Bytes to reserve after the inner packet (with less, padding stays minimal).
    pub fn tailroom(&self) -> usize {
        if self.block_pad_limit.is_some() {
            self.suite.aes_block_tailroom()
        } else {
            self.suite.tailroom()
        }
    }

    /// Whether the SA reached a hard limit; encap then refuses every packet.
    pub fn is_expired(&self) -> bool {
        self.lifetime.is_expired()
    }

    pub fn stats(&self) -> OutboundStats {
        OutboundStats {
            packets: self.lifetime.packets(),
            bytes: self.lifetime.bytes(),
            last_seq: self.seq.load(Ordering::Relaxed).min(self.seq_max),
            refused_expired: self.refused_expired.load(Ordering::Relaxed),
            refused_invalid: self.refused_invalid.load(Ordering::Relaxed),
        }
    }

    /// Encapsulates the inner packet at `buf[inner_start..inner_start + inner_len]`
    /// in place. `headroom()` bytes before it and `tailroom()` bytes after it
    /// must be free; the ESP packet is returned as a range of `buf`.
    pub fn encap(
        &self,
        buf: &mut [u8],
        inner_start: usize,
        inner_len: usize,
    ) -> Result<EncapOk, EncapError> {
        let r = self.encap_inner(buf, inner_start, inner_len);
        match r {
            Err(EncapError::SaExpired(_)) => {
                self.refused_expired.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.refused_invalid.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => {}
        }
        r
    }

    fn encap_inner(
        &self,
        buf: &mut [u8],
        inner_start: usize,
        inner_len: usize,
    ) -> Result<EncapOk, EncapError> {
        let layout = self.layout(buf, inner_start, inner_len)?;
        if let Some(kind) = self.lifetime.expired_by() {
            return Err(EncapError::SaExpired(kind));
        }
        let (seq, seq_event) = self.next_seq()?;
        let iv = match &self.iv_gen {
            Some(g) => IvBytes::Cbc(g.iv(seq)),
            None => IvBytes::Gcm(seq.to_be_bytes()),
        };
        self.write(buf, &layout, seq, iv.as_slice())?;
        let event = match self.lifetime.account(inner_len) {
            Some(e @ LifetimeEvent::Hard(_)) => Some(e),
            other => seq_event.or(other),
        };
        Ok(EncapOk {
            range: layout.packet,
            seq,
            event,
        })
    }

    /// Same as `encap` with a given sequence number and IV, to reproduce
    /// captured packets (whose IVs came from another generator).
    #[cfg(test)]
    pub(crate) fn encap_at(
        &self,
        buf: &mut [u8],
        inner_start: usize,
        inner_len: usize,
        seq: u64,
        iv: &[u8],
    ) -> Result<Range<usize>, EncapError> {
        let layout = self.layout(buf, inner_start, inner_len)?;
        self.write(buf, &layout, seq, iv)?;
        Ok(layout.packet)
    }

    /// Takes the next sequence number; the last one carries the hard event.
    fn next_seq(&self) -> Result<(u64, Option<LifetimeEvent>), EncapError> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        if seq == 0 || seq > self.seq_max {
            // Exhausted (0 means the 64-bit counter itself wrapped).
            self.lifetime.fire_hard(LimitKind::SequenceNumber);
            return Err(EncapError::SaExpired(LimitKind::SequenceNumber));
        }
        let event = if seq == self.seq_max {
            self.lifetime.fire_hard(LimitKind::SequenceNumber)
        } else if seq >= self.seq_soft {
            self.lifetime.fire_soft(LimitKind::SequenceNumber)
        } else {
            None
        };
        Ok((seq, event))
    }

    fn layout(
        &self,
        buf: &[u8],
        inner_start: usize,
        inner_len: usize,
    ) -> Result<Layout, EncapError> {
        let next_header = match buf.get(inner_start).map(|b| b >> 4) {
            Some(4) if inner_len > 0 => NEXT_HEADER_IPV4,
            Some(6) if inner_len > 0 => NEXT_HEADER_IPV6,
            _ => return Err(EncapError::NotIpPacket),
        };
        let head = self.suite.headroom();
        let start = inner_start
            .checked_sub(head)
            .ok_or(EncapError::HeadroomTooSmall {
                need: head,
                have: inner_start,
            })?;
        let inner_end = inner_start
            .checked_add(inner_len)
            .filter(|&e| e <= buf.len())
            .ok_or(EncapError::NotIpPacket)?;
        let pad = self.pad_len(inner_len, buf.len() - inner_end);
        let tail = pad + 2 + self.suite.icv_len();
        let end = inner_end
            .checked_add(tail)
            .filter(|&e| e <= buf.len())
            .ok_or(EncapError::TailroomTooSmall {
                need: tail,
                have: buf.len() - inner_end,
            })?;
        Ok(Layout {
            packet: start..end,
            inner_end,
            pad,
            next_header,
        })
    }

    /// The padding for an inner packet of `inner_len` bytes: to whole AES blocks when
    /// the SA allows it and the packet and the buffer's `room` after it take that.
    fn pad_len(&self, inner_len: usize, room: usize) -> usize {
        let least = self.suite.pad_len(inner_len);
        let Some(limit) = self.block_pad_limit else {
            return least;
        };
        let wide = self.suite.aes_block_pad_len(inner_len);
        let icv = self.suite.icv_len();
        let packet = self.suite.headroom() + inner_len + wide + 2 + icv;
        if packet <= limit && wide + 2 + icv <= room {
            wide
        } else {
            least
        }
    }

    fn write(&self, buf: &mut [u8], l: &Layout, seq: u64, iv: &[u8]) -> Result<(), EncapError> {
        let pkt = buf.get_mut(l.packet.clone()).ok_or(EncapError::Crypto)?;
        let iv_end = ESP_HEADER_LEN + self.suite.iv_len();
        let hdr = pkt.get_mut(..iv_end).ok_or(EncapError::Crypto)?;
        hdr[..4].copy_from_slice(&self.spi.to_be_bytes());
        hdr[4..8].copy_from_slice(&(seq as u32).to_be_bytes());
        hdr.get_mut(ESP_HEADER_LEN..)
            .filter(|d| d.len() == iv.len())
            .ok_or(EncapError::Crypto)?
            .copy_from_slice(iv);
        // Trailer: padding 1, 2, 3, ... (RFC 4303 2.4), pad length, next header.
        let trailer_start = l.inner_end - l.packet.start;
        let trailer = pkt
            .get_mut(trailer_start..trailer_start + l.pad + 2)
            .ok_or(EncapError::Crypto)?;
        for (i, b) in trailer.iter_mut().take(l.pad).enumerate() {
            *b = (i + 1) as u8;
        }
        trailer[l.pad] = l.pad as u8;
        trailer[l.pad + 1] = l.next_header;
        let seq_hi = self.esn.then_some((seq >> 32) as u32);
        self.transform
            .seal(pkt, seq_hi)
            .map_err(|_| EncapError::Crypto)
    }

    /// Test hook: continue numbering after `last_seq`.
    #[cfg(test)]
    pub(crate) fn set_last_seq(&self, last_seq: u64) {
        self.seq.store(last_seq, Ordering::Relaxed);
    }
}

struct Layout {
    packet: Range<usize>,
    inner_end: usize,
    pad: usize,
    next_header: u8,
}

enum IvBytes {
    Gcm([u8; 8]),
    Cbc([u8; 16]),
}

impl IvBytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            IvBytes::Gcm(b) => b,
            IvBytes::Cbc(b) => b,
        }
    }
}
