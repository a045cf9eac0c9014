//! In-place TCP coalescing of decrypted inner packets before the TUN write (our GRO).
//!
//! Each decrypted packet is copied once into a per-worker buffer; a TCP segment that
//! continues the flow of an open super-packet only has its payload appended there. On
//! [`Coalescer::finish`] every buffer gets its virtio-net header: super-packets are
//! marked `GSO_TCPV4/6` with `NEEDS_CSUM` and only the pseudo-header sum in the TCP
//! checksum field, so the kernel neither re-verifies nor recomputes payload checksums
//! (the ESP ICV already authenticated every byte); it segments again only if it forwards.
//! Merging follows Linux GRO: same flow, next sequence number, identical IP and TCP
//! header fields (ack, window, options, TTL/hop limit, TOS/traffic class), ACK-only
//! segments of equal size (a shorter one or PSH ends the super-packet), no IP options or
//! IPv6 extension headers, no fragments.

/// `struct virtio_net_hdr` without `num_buffers` (what TUN with `IFF_VNET_HDR` uses).
pub const VNET_HDR_LEN: usize = 10;
const F_NEEDS_CSUM: u8 = 1;
const GSO_TCPV4: u8 = 1;
const GSO_TCPV6: u8 = 4;
/// Largest IP packet the kernel accepts from TUN.
const MAX_IP_LEN: usize = 65535;
/// Open super-packets looked at for a flow's latest packet (more only costs coalescing).
const SCAN: usize = 16;

const TCP_PSH: u8 = 0x08;
const TCP_ACK: u8 = 0x10;
/// Offset of the TCP checksum from the start of the TCP header.
const TCP_CSUM_OFF: usize = 16;

/// A parsed TCP segment: header lengths and the fields coalescing needs.
#[derive(Debug, Clone, Copy)]
struct Tcp {
    v6: bool,
    l3: usize,
    l4: usize,
    seq: u32,
    flags: u8,
    payload: usize,
}

impl Tcp {
    fn parse(p: &[u8]) -> Option<Tcp> {
        let (v6, l3) = match p.first()? >> 4 {
            4 => {
                // No options (0x45), exact length, not a fragment, TCP.
                let total = usize::from(u16::from_be_bytes([*p.get(2)?, *p.get(3)?]));
                let frag = u16::from_be_bytes([*p.get(6)?, *p.get(7)?]) & 0x3fff;
                if p[0] != 0x45 || total != p.len() || frag != 0 || *p.get(9)? != 6 {
                    return None;
                }
                (false, 20)
            }
            6 => {
                let payload = usize::from(u16::from_be_bytes([*p.get(4)?, *p.get(5)?]));
                if payload + 40 != p.len() || *p.get(6)? != 6 {
                    return None;
                }
                (true, 40)
            }
            _ => return None,
        };
        let th = p.get(l3..l3 + 20)?;
        let l4 = usize::from(th[12] >> 4) * 4;
        if l4 < 20 || l3 + l4 > p.len() {
            return None;
        }
        Some(Tcp {
            v6,
            l3,
            l4,
            seq: u32::from_be_bytes([th[4], th[5], th[6], th[7]]),
            flags: th[13],
            payload: p.len() - l3 - l4,
        })
    }

    /// Can start a super-packet: a plain ACK carrying data.
    fn opens(&self) -> bool {
        self.flags == TCP_ACK && self.payload > 0
    }
}

/// What a buffer holds.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// Not TCP (or unparsable): written as is.
    Other,
    Tcp {
        tcp: Tcp,
        /// Payload bytes per segment (the first segment's).
        gso: usize,
        segs: usize,
        next_seq: u32,
        /// No further segment may join (PSH, short segment, or not an opener).
        closed: bool,
    },
}

/// Per-worker batch of packets for one TUN queue, coalesced in place.
pub struct Coalescer {
    bufs: Vec<Vec<u8>>,
    slots: Vec<Slot>,
    used: usize,
    packets: usize,
    /// Off when the TUN device takes no virtio-net header GSO (no offloads).
    coalesce: bool,
}

impl Coalescer {
    /// Room for `batch` buffers (each may grow to a 64 KiB super-packet); `coalesce` false
    /// only batches.
    pub fn new(batch: usize, coalesce: bool) -> Coalescer {
        Coalescer {
            bufs: (0..batch.max(1))
                .map(|_| Vec::with_capacity(VNET_HDR_LEN + MAX_IP_LEN))
                .collect(),
            slots: vec![Slot::Other; batch.max(1)],
            used: 0,
            packets: 0,
            coalesce,
        }
    }

    /// No buffer left for a packet that does not coalesce: call `finish` first.
    pub fn is_full(&self) -> bool {
        self.used == self.bufs.len()
    }

    /// Packets taken since the last `finish`.
    pub fn packets(&self) -> usize {
        self.packets
    }

    /// Takes one inner IP packet (at most 64 KiB). Returns false (packet not taken) only
    /// when it needs a buffer and `is_full`, or is too large.
    pub fn push(&mut self, pkt: &[u8]) -> bool {
        if pkt.len() > MAX_IP_LEN {
            return false;
        }
        let tcp = if self.coalesce { Tcp::parse(pkt) } else { None };
        if let Some(t) = tcp {
            if let Some(i) = self.latest_of_flow(pkt, &t) {
                if self.append(i, pkt, &t) {
                    self.packets += 1;
                    return true;
                }
            }
        }
        let (Some(buf), Some(slot)) = (self.bufs.get_mut(self.used), self.slots.get_mut(self.used))
        else {
            return false;
        };
        buf.clear();
        buf.resize(VNET_HDR_LEN, 0);
        buf.extend_from_slice(pkt);
        *slot = match tcp {
            Some(t) => Slot::Tcp {
                tcp: t,
                gso: t.payload,
                segs: 1,
                next_seq: t.seq.wrapping_add(t.payload as u32),
                closed: !t.opens(),
            },
            None => Slot::Other,
        };
        self.used += 1;
        self.packets += 1;
        true
    }

    /// The most recent buffer (within `SCAN`) holding a packet of `pkt`'s flow: only that
    /// one may grow, so a flow's segments never overtake each other.
    fn latest_of_flow(&self, pkt: &[u8], t: &Tcp) -> Option<usize> {
        let lo = self.used.saturating_sub(SCAN);
        (lo..self.used).rev().find(|&i| {
            let (Some(Slot::Tcp { tcp, .. }), Some(b)) = (self.slots.get(i), self.bufs.get(i))
            else {
                return false;
            };
            let Some(h) = b.get(VNET_HDR_LEN..) else {
                return false;
            };
            let addrs = if t.v6 { 8..40 } else { 12..20 };
            let ports = t.l3..t.l3 + 4;
            tcp.v6 == t.v6
                && h.get(addrs.clone()) == pkt.get(addrs)
                && h.get(ports.clone()) == pkt.get(ports)
        })
    }

    /// Appends `pkt`'s payload to super-packet `i` when it continues it exactly.
    fn append(&mut self, i: usize, pkt: &[u8], t: &Tcp) -> bool {
        let (Some(buf), Some(slot)) = (self.bufs.get_mut(i), self.slots.get_mut(i)) else {
            return false;
        };
        let Slot::Tcp {
            tcp: first,
            gso,
            segs,
            next_seq,
            closed,
        } = slot
        else {
            return false;
        };
        let head = first.l3 + first.l4;
        let ip_len = buf.len() - VNET_HDR_LEN;
        if *closed
            || t.l3 != first.l3
            || t.l4 != first.l4
            || t.seq != *next_seq
            || t.payload == 0
            || t.payload > *gso
            || t.flags & !TCP_PSH != TCP_ACK
            || ip_len + t.payload > MAX_IP_LEN
        {
            return false;
        }
        let Some(h) = buf.get(VNET_HDR_LEN..VNET_HDR_LEN + head) else {
            return false;
        };
        if !same_headers(h, pkt, first, *segs) {
            return false;
        }
        let Some(payload) = pkt.get(head..) else {
            return false;
        };
        buf.extend_from_slice(payload);
        *segs += 1;
        *next_seq = t.seq.wrapping_add(t.payload as u32);
        if t.flags & TCP_PSH != 0 {
            if let Some(f) = buf.get_mut(VNET_HDR_LEN + first.l3 + 13) {
                *f |= TCP_PSH;
            }
            *closed = true;
        }
        if t.payload < *gso {
            *closed = true;
        }
        true
    }

    /// Writes the virtio-net headers (and a super-packet's lengths and checksums), returns
    /// the buffers to write (header + packet each) and starts a new batch.
    pub fn finish(&mut self) -> &[Vec<u8>] {
        let used = self.used;
        for (buf, slot) in self.bufs.iter_mut().zip(&self.slots).take(used) {
            finalize(buf, slot);
        }
        self.used = 0;
        self.packets = 0;
        self.bufs.get(..used).unwrap_or(&[])
    }
}

/// Header fields that must match for `pkt` to join the super-packet headed by `h`
/// (`segs` segments so far): everything but lengths, checksums, sequence number, PSH,
/// and an IPv4 ID that follows on (any ID with DF, as Linux GRO allows).
fn same_headers(h: &[u8], pkt: &[u8], t: &Tcp, segs: usize) -> bool {
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
    // Ports; ack; data offset; window; options.
    ip && eq(l3..l3 + 4) && eq(l3 + 8..l3 + 13) && eq(l3 + 14..l3 + 16) && eq(l3 + 20..l3 + t.l4)
}

fn finalize(buf: &mut [u8], slot: &Slot) {
    let (hdr, ip) = buf.split_at_mut(VNET_HDR_LEN.min(buf.len()));
    hdr.fill(0);
    let Slot::Tcp { tcp, gso, segs, .. } = *slot else {
        return;
    };
    if segs < 2 {
        // A single packet keeps the checksum it came with.
        return;
    }
    let len = ip.len();
    if tcp.v6 {
        set16(ip, 4, (len - 40) as u16);
    } else {
        set16(ip, 2, len as u16);
        set16(ip, 10, 0);
        let c = !fold(sum(ip.get(..20).unwrap_or(&[])));
        set16(ip, 10, c);
    }
    let addrs = if tcp.v6 { 8..40 } else { 12..20 };
    let pseudo = sum(ip.get(addrs).unwrap_or(&[])) + 6 + (len - tcp.l3) as u64;
    // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum, not inverted.
    set16(ip, tcp.l3 + TCP_CSUM_OFF, fold(pseudo));
    hdr[0] = F_NEEDS_CSUM;
    hdr[1] = if tcp.v6 { GSO_TCPV6 } else { GSO_TCPV4 };
    // The legacy virtio-net header is in host byte order.
    hdr[2..4].copy_from_slice(&((tcp.l3 + tcp.l4) as u16).to_ne_bytes());
    hdr[4..6].copy_from_slice(&(gso as u16).to_ne_bytes());
    hdr[6..8].copy_from_slice(&(tcp.l3 as u16).to_ne_bytes());
    hdr[8..10].copy_from_slice(&(TCP_CSUM_OFF as u16).to_ne_bytes());
}

fn set16(p: &mut [u8], at: usize, v: u16) {
    if let Some(b) = p.get_mut(at..at + 2) {
        b.copy_from_slice(&v.to_be_bytes());
    }
}

/// Ones'-complement sum of big-endian 16-bit words (unfolded).
pub(crate) fn sum(b: &[u8]) -> u64 {
    let mut chunks = b.chunks_exact(2);
    let mut s: u64 = chunks
        .by_ref()
        .map(|c| u64::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    if let [last] = chunks.remainder() {
        s += u64::from(*last) << 8;
    }
    s
}

pub(crate) fn fold(mut s: u64) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

#[cfg(test)]
mod tests;
