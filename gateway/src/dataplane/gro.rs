//! Coalescing of decrypted inner packets before the TUN write (our GRO), without copying.
//!
//! A decrypted packet stays in the receive buffer it was decrypted in; a write to the TUN
//! device is a small header plus [`Span`]s of those buffers, gathered by `writev`. A TCP
//! segment or UDP datagram that continues the flow of an open super-packet only adds
//! its payload's span. On [`Coalescer::finish`] every header gets its virtio-net header:
//! super-packets are marked `GSO_TCPV4/6` or `GSO_UDP_L4` with `NEEDS_CSUM` and only the
//! pseudo-header sum in the checksum field (each packet's own checksum was verified
//! before it joined, as Linux GRO does); the kernel segments again, computing fresh
//! checksums, only if it forwards or delivers to a socket that wants datagrams.
//! TCP merging follows Linux GRO: same flow, next sequence number, identical IP and TCP
//! header fields (ack, window, options, TTL/hop limit, TOS/traffic class), valid
//! checksums (the merged packet gets new ones), ACK-only
//! segments of equal size (a shorter one or PSH ends the super-packet). UDP merging
//! follows Linux UDP GRO: same flow and IP header fields, datagrams of equal size (a
//! shorter one ends it), a valid non-zero checksum. A super-packet holds at most
//! [`MAX_SEGS`] packets; neither takes IP options, IPv6 extension headers or fragments.

use crate::packet::checksum::{checksum, finish, fold, pseudo_header_of, sum};

/// `struct virtio_net_hdr` without `num_buffers` (what TUN with `IFF_VNET_HDR` uses).
pub const VNET_HDR_LEN: usize = 10;
const F_NEEDS_CSUM: u8 = 1;
const GSO_TCPV4: u8 = 1;
const GSO_TCPV6: u8 = 4;
const GSO_UDP_L4: u8 = 5;
/// Largest IP packet the kernel accepts from TUN.
const MAX_IP_LEN: usize = 65535;
/// Segments per super-packet (the kernel refuses more than 128 UDP datagrams from TUN;
/// a bound also keeps a write within a fixed number of `iovec`s).
pub const MAX_SEGS: usize = 64;
/// Open super-packets looked at for a flow's latest packet (more only costs coalescing).
const SCAN: usize = 16;

const TCP_PSH: u8 = 0x08;
const TCP_ACK: u8 = 0x10;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const UDP_HDR_LEN: usize = 8;
/// Offset of the checksum from the start of the TCP and of the UDP header.
const TCP_CSUM_OFF: usize = 16;
const UDP_CSUM_OFF: usize = 6;

/// A parsed TCP segment or UDP datagram: header lengths and the fields coalescing needs.
#[derive(Debug, Clone, Copy)]
struct L4 {
    udp: bool,
    v6: bool,
    l3: usize,
    /// Transport header length (8 for UDP).
    l4: usize,
    /// TCP only.
    seq: u32,
    /// TCP only.
    flags: u8,
    payload: usize,
}

impl L4 {
    fn parse(p: &[u8]) -> Option<L4> {
        let (v6, l3, proto) = match p.first()? >> 4 {
            4 => {
                // No options (0x45), exact length, not a fragment.
                let total = usize::from(u16::from_be_bytes([*p.get(2)?, *p.get(3)?]));
                let frag = u16::from_be_bytes([*p.get(6)?, *p.get(7)?]) & 0x3fff;
                if p[0] != 0x45 || total != p.len() || frag != 0 {
                    return None;
                }
                (false, 20, *p.get(9)?)
            }
            6 => {
                let payload = usize::from(u16::from_be_bytes([*p.get(4)?, *p.get(5)?]));
                if payload + 40 != p.len() {
                    return None;
                }
                (true, 40, *p.get(6)?)
            }
            _ => return None,
        };
        match proto {
            PROTO_TCP => {
                let th = p.get(l3..l3 + 20)?;
                let l4 = usize::from(th[12] >> 4) * 4;
                if l4 < 20 || l3 + l4 > p.len() {
                    return None;
                }
                Some(L4 {
                    udp: false,
                    v6,
                    l3,
                    l4,
                    seq: u32::from_be_bytes([th[4], th[5], th[6], th[7]]),
                    flags: th[13],
                    payload: p.len() - l3 - l4,
                })
            }
            PROTO_UDP => {
                let uh = p.get(l3..l3 + UDP_HDR_LEN)?;
                let len = usize::from(u16::from_be_bytes([uh[4], uh[5]]));
                // The length must fill the packet (no trailing bytes to lose).
                if len != p.len() - l3 {
                    return None;
                }
                Some(L4 {
                    udp: true,
                    v6,
                    l3,
                    l4: UDP_HDR_LEN,
                    seq: 0,
                    flags: 0,
                    payload: len - UDP_HDR_LEN,
                })
            }
            _ => None,
        }
    }

    /// Can start a super-packet: a plain TCP ACK carrying data, or a UDP datagram that
    /// carries data.
    fn opens(&self) -> bool {
        self.payload > 0 && (self.udp || self.flags == TCP_ACK)
    }
}

/// What a batched write holds.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// Neither TCP nor UDP (or unparsable): written as is.
    Other,
    Seg {
        l4: L4,
        /// Payload bytes per segment (the first segment's).
        gso: usize,
        segs: usize,
        /// TCP only.
        next_seq: u32,
        /// No further segment may join (PSH, short segment, or not an opener).
        closed: bool,
    },
}

/// Where a packet handed to [`Coalescer::push`] lies in the caller's memory: bytes
/// `start..end` of buffer `buf` of a set of buffers (e.g. a `recvmmsg` batch's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub buf: usize,
    pub start: usize,
    pub end: usize,
}

impl Span {
    /// The bytes this span covers in `bufs`.
    pub fn resolve<B: AsRef<[u8]>>(self, bufs: &[B]) -> Option<&[u8]> {
        bufs.get(self.buf)?.as_ref().get(self.start..self.end)
    }

    /// Its length (0 for a reversed span).
    pub fn len(self) -> usize {
        self.end.saturating_sub(self.start)
    }

    /// Whether it covers no bytes.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// The part at `range` within it (offsets from its start).
    pub fn within(self, range: std::ops::Range<usize>) -> Span {
        Span {
            start: self.start + range.start,
            end: self.start + range.end,
            ..self
        }
    }

    /// The part after its first `n` bytes.
    fn skip(self, n: usize) -> Span {
        Span {
            start: (self.start + n).min(self.end),
            ..self
        }
    }
}

/// One write to the TUN device: a header (the virtio-net header, then for a segment the
/// IP and transport headers, adjusted for a super-packet) followed by payloads that
/// stay where they were pushed from.
struct Write {
    head: Vec<u8>,
    parts: Vec<Span>,
    /// Length of the IP packet the write carries.
    ip_len: usize,
    slot: Slot,
}

/// Room for the virtio-net header, an IPv6 header and a TCP header with options.
const HEAD_CAP: usize = VNET_HDR_LEN + 40 + 60;

/// Per-worker batch of packets for one TUN queue. Packets are not copied: a write is
/// a small header and the payloads' [`Span`]s, gathered by the kernel (`writev`), so
/// the pushed bytes must stay put until the batch is written.
pub struct Coalescer {
    writes: Vec<Write>,
    used: usize,
    packets: usize,
    /// Off when the TUN device takes no virtio-net header GSO (no offloads).
    coalesce: bool,
    /// Off when it takes no UDP GSO (`TUN_F_USO4/6`, Linux >= 6.2).
    udp: bool,
}

impl Coalescer {
    /// Room for `batch` writes (each may grow to a 64 KiB super-packet); `coalesce`
    /// false only batches.
    pub fn new(batch: usize, coalesce: bool) -> Coalescer {
        Coalescer {
            writes: (0..batch.max(1))
                .map(|_| Write {
                    head: Vec::with_capacity(HEAD_CAP),
                    parts: Vec::with_capacity(MAX_SEGS),
                    ip_len: 0,
                    slot: Slot::Other,
                })
                .collect(),
            used: 0,
            packets: 0,
            coalesce,
            udp: coalesce,
        }
    }

    /// Whether UDP datagrams coalesce too (when TCP does).
    pub fn with_udp(mut self, on: bool) -> Coalescer {
        self.udp = self.coalesce && on;
        self
    }

    /// No write left for a packet that does not coalesce: call `finish` first.
    pub fn is_full(&self) -> bool {
        self.used == self.writes.len()
    }

    /// Packets taken since the last `finish`.
    pub fn packets(&self) -> usize {
        self.packets
    }

    /// Takes one inner IP packet (at most 64 KiB), `pkt`, found at `at` in the caller's
    /// buffers. Returns false (packet not taken) only when it needs a new write and
    /// `is_full`, or is too large.
    pub fn push(&mut self, pkt: &[u8], at: Span) -> bool {
        if pkt.len() > MAX_IP_LEN || at.len() != pkt.len() {
            return false;
        }
        let parsed = if self.coalesce { L4::parse(pkt) } else { None };
        let seg = parsed.filter(|t| (self.udp || !t.udp) && checksums_ok(pkt, t));
        if let (Some(t), None) = (parsed, seg) {
            // Written alone: later packets of its flow must not join an earlier
            // super-packet and overtake it.
            self.close_flow(pkt, &t);
        }
        if let Some(t) = seg {
            if let Some(i) = self.latest_of_flow(pkt, &t) {
                if self.append(i, pkt, at, &t) {
                    self.packets += 1;
                    return true;
                }
            }
        }
        let Some(w) = self.writes.get_mut(self.used) else {
            return false;
        };
        w.head.clear();
        w.head.resize(VNET_HDR_LEN, 0);
        w.parts.clear();
        w.ip_len = pkt.len();
        match seg {
            Some(t) => {
                let head = t.l3 + t.l4;
                w.head
                    .extend_from_slice(pkt.get(..head).unwrap_or_default());
                w.parts.push(at.skip(head));
                w.slot = Slot::Seg {
                    l4: t,
                    gso: t.payload,
                    segs: 1,
                    next_seq: t.seq.wrapping_add(t.payload as u32),
                    closed: !t.opens(),
                };
            }
            None => {
                w.parts.push(at);
                w.slot = Slot::Other;
            }
        }
        self.used += 1;
        self.packets += 1;
        true
    }

    fn close_flow(&mut self, pkt: &[u8], t: &L4) {
        if let Some(i) = self.latest_of_flow(pkt, t) {
            if let Some(Write {
                slot: Slot::Seg { closed, .. },
                ..
            }) = self.writes.get_mut(i)
            {
                *closed = true;
            }
        }
    }

    /// The most recent write (within `SCAN`) holding a packet of `pkt`'s flow: only that
    /// one may grow, so a flow's segments never overtake each other.
    fn latest_of_flow(&self, pkt: &[u8], t: &L4) -> Option<usize> {
        let lo = self.used.saturating_sub(SCAN);
        (lo..self.used).rev().find(|&i| {
            let Some(Write {
                slot: Slot::Seg { l4, .. },
                head,
                ..
            }) = self.writes.get(i)
            else {
                return false;
            };
            let Some(h) = head.get(VNET_HDR_LEN..) else {
                return false;
            };
            let addrs = if t.v6 { 8..40 } else { 12..20 };
            let ports = t.l3..t.l3 + 4;
            l4.v6 == t.v6
                && l4.udp == t.udp
                && h.get(addrs.clone()) == pkt.get(addrs)
                && h.get(ports.clone()) == pkt.get(ports)
        })
    }

    /// Appends `pkt`'s payload to super-packet `i` when it continues it exactly.
    fn append(&mut self, i: usize, pkt: &[u8], at: Span, t: &L4) -> bool {
        let Some(w) = self.writes.get_mut(i) else {
            return false;
        };
        let Slot::Seg {
            l4: first,
            gso,
            segs,
            next_seq,
            closed,
        } = &mut w.slot
        else {
            return false;
        };
        let head = first.l3 + first.l4;
        let continues = *segs < MAX_SEGS
            && (first.udp || (t.seq == *next_seq && t.flags & !TCP_PSH == TCP_ACK));
        if *closed
            || !continues
            || t.l3 != first.l3
            || t.l4 != first.l4
            || t.payload == 0
            || t.payload > *gso
            || w.ip_len + t.payload > MAX_IP_LEN
        {
            return false;
        }
        let Some(h) = w.head.get(VNET_HDR_LEN..VNET_HDR_LEN + head) else {
            return false;
        };
        if !same_headers(h, pkt, first, *segs) {
            return false;
        }
        w.parts.push(at.skip(head));
        w.ip_len += t.payload;
        *segs += 1;
        *next_seq = t.seq.wrapping_add(t.payload as u32);
        if !first.udp && t.flags & TCP_PSH != 0 {
            if let Some(f) = w.head.get_mut(VNET_HDR_LEN + first.l3 + 13) {
                *f |= TCP_PSH;
            }
            *closed = true;
        }
        if t.payload < *gso {
            *closed = true;
        }
        true
    }

    /// Writes the virtio-net headers (and a super-packet's lengths and checksums),
    /// returns the writes (header, then the payloads to gather after it) and starts a
    /// new batch.
    pub fn finish(&mut self) -> impl Iterator<Item = (&[u8], &[Span])> {
        let used = self.used;
        self.used = 0;
        self.packets = 0;
        self.writes.iter_mut().take(used).map(|w| {
            finalize(&mut w.head, w.ip_len, &w.slot);
            (&w.head[..], &w.parts[..])
        })
    }
}

/// The bytes a write of `head` and `parts` hands the kernel (for tests and fuzzing; the
/// dataplane gathers them with `writev`).
pub fn gather<B: AsRef<[u8]>>(head: &[u8], parts: &[Span], bufs: &[B]) -> Vec<u8> {
    let mut out = head.to_vec();
    for p in parts {
        out.extend_from_slice(p.resolve(bufs).unwrap_or_default());
    }
    out
}

/// Header fields that must match for `pkt` to join the super-packet headed by `h`
/// (`segs` segments so far): everything but lengths, checksums, sequence number, PSH,
/// and an IPv4 ID that follows on (any ID with DF, as Linux GRO allows).
fn same_headers(h: &[u8], pkt: &[u8], t: &L4, segs: usize) -> bool {
    let eq = |r: std::ops::Range<usize>| h.get(r.clone()).is_some_and(|a| pkt.get(r) == Some(a));
    let ip = if t.v6 {
        // Version, traffic class, flow label; next header, hop limit; addresses.
        eq(0..4) && eq(6..40)
    } else {
        let df = h.get(6).is_some_and(|f| f & 0x40 != 0);
        let id_ok = df || {
            let id = |p: &[u8]| p.get(4..6).map(|b| u16::from_be_bytes([b[0], b[1]]));
            match (id(h), id(pkt)) {
                (Some(a), Some(b)) => b == a.wrapping_add(segs as u16),
                _ => false,
            }
        };
        // Version/IHL, TOS; flags (DF); TTL, protocol; addresses.
        eq(0..2) && eq(6..7) && eq(8..10) && eq(12..20) && id_ok
    };
    let l3 = t.l3;
    if t.udp {
        return ip && eq(l3..l3 + 4);
    }
    // Ports; ack; data offset; window; options.
    ip && eq(l3..l3 + 4) && eq(l3 + 8..l3 + 13) && eq(l3 + 14..l3 + 16) && eq(l3 + 20..l3 + t.l4)
}

/// Completes a write's `head` for an IP packet of `len` bytes.
fn finalize(head: &mut [u8], len: usize, slot: &Slot) {
    let (hdr, ip) = head.split_at_mut(VNET_HDR_LEN.min(head.len()));
    hdr.fill(0);
    let Slot::Seg { l4, gso, segs, .. } = *slot else {
        return;
    };
    if segs < 2 {
        // A single packet keeps the checksum it came with.
        return;
    }
    if l4.v6 {
        set16(ip, 4, (len - 40) as u16);
    } else {
        set16(ip, 2, len as u16);
        set16(ip, 10, 0);
        let c = checksum(ip.get(..20).unwrap_or(&[]));
        set16(ip, 10, c);
    }
    let (proto, csum_off, gso_type) = if l4.udp {
        // The kernel derives each datagram's length (and checksum) from this one.
        set16(ip, l4.l3 + 4, (len - l4.l3) as u16);
        (PROTO_UDP, UDP_CSUM_OFF, GSO_UDP_L4)
    } else {
        let t = if l4.v6 { GSO_TCPV6 } else { GSO_TCPV4 };
        (PROTO_TCP, TCP_CSUM_OFF, t)
    };
    let pseudo = pseudo_header_of(ip, proto, (len - l4.l3) as u32).unwrap_or(0);
    // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum, not inverted.
    set16(ip, l4.l3 + csum_off, fold(pseudo));
    hdr[0] = F_NEEDS_CSUM;
    hdr[1] = gso_type;
    // The legacy virtio-net header is in host byte order.
    hdr[2..4].copy_from_slice(&((l4.l3 + l4.l4) as u16).to_ne_bytes());
    hdr[4..6].copy_from_slice(&(gso as u16).to_ne_bytes());
    hdr[6..8].copy_from_slice(&(l4.l3 as u16).to_ne_bytes());
    hdr[8..10].copy_from_slice(&(csum_off as u16).to_ne_bytes());
}

fn set16(p: &mut [u8], at: usize, v: u16) {
    if let Some(b) = p.get_mut(at..at + 2) {
        b.copy_from_slice(&v.to_be_bytes());
    }
}

/// Whether the IPv4 header checksum and the TCP/UDP checksum of `p` are right. Merged
/// packets get fresh checksums, so a corrupt one must not be merged: written alone,
/// its receiver drops it, as it would have without the tunnel (Linux GRO checks too).
/// A zero UDP checksum (IPv4 "none") does not merge either: segmentation would give it
/// a real one.
fn checksums_ok(p: &[u8], t: &L4) -> bool {
    if t.udp && p.get(t.l3 + UDP_CSUM_OFF..t.l3 + UDP_CSUM_OFF + 2) == Some(&[0, 0]) {
        return false;
    }
    if !t.v6 && checksum(p.get(..20).unwrap_or(&[])) != 0 {
        return false;
    }
    let proto = if t.udp { PROTO_UDP } else { PROTO_TCP };
    let Some(l4) = p.get(t.l3..) else {
        return false;
    };
    pseudo_header_of(p, proto, l4.len() as u32).is_some_and(|ph| finish(sum(ph, l4)) == 0)
}

#[cfg(test)]
mod tests;
