//! IPv4 fragmentation (RFC 791) of an inner packet without DF that exceeds the tunnel MTU,
//! done before encryption so each fragment travels in its own ESP packet.
//! Fragments are written one at a time into caller buffers: no allocation.

use super::checksum::checksum;
use super::{be16, put16, PacketError};

const MF: u16 = 0x2000;
const DF: u16 = 0x4000;

/// Splits one IPv4 packet into fragments that each fit `mtu`.
#[derive(Debug)]
pub struct Ipv4Fragmenter<'a> {
    header: &'a [u8],
    payload: &'a [u8],
    /// Header of the second and later fragments: only options with the "copied" flag.
    later_header: [u8; 60],
    later_len: usize,
    first_chunk: usize,
    later_chunk: usize,
    /// Offset (bytes) and MF flag of the packet itself, which may already be a fragment.
    base_offset: usize,
    base_mf: bool,
    /// Payload bytes already emitted, and whether the first fragment went out (a header-only
    /// packet emits one fragment with no payload, so `pos` alone cannot tell).
    pos: usize,
    first_done: bool,
}

impl<'a> Ipv4Fragmenter<'a> {
    /// Prepares to fragment `pkt` (an IPv4 packet whose DF bit is clear) for `mtu`.
    /// A packet that already fits comes out as a single, unchanged fragment.
    pub fn new(pkt: &'a [u8], mtu: u16) -> Result<Self, PacketError> {
        let first = *pkt.first().ok_or(PacketError::Truncated)?;
        if first >> 4 != 4 {
            return Err(PacketError::NotIp);
        }
        let ihl = usize::from(first & 0x0f) * 4;
        let total = usize::from(be16(pkt, 2).ok_or(PacketError::Truncated)?);
        if ihl < 20 || total < ihl {
            return Err(PacketError::BadHeader);
        }
        let pkt = pkt.get(..total).ok_or(PacketError::Truncated)?;
        let (header, payload) = pkt.split_at(ihl);
        let flags = be16(header, 6).ok_or(PacketError::Truncated)?;
        let mtu = usize::from(mtu);
        if total > mtu && flags & DF != 0 {
            return Err(PacketError::DontFragment);
        }
        let mut later_header = [0u8; 60];
        let later_len = copied_options(header, &mut later_header)?;
        let chunk = |hlen: usize| mtu.checked_sub(hlen).map(|n| n & !7).filter(|&n| n >= 8);
        let (first_chunk, later_chunk) = if total <= mtu {
            (payload.len(), payload.len())
        } else {
            let too_small = PacketError::MtuTooSmall(mtu as u16);
            (
                chunk(ihl).ok_or(too_small)?,
                chunk(later_len).ok_or(too_small)?,
            )
        };
        Ok(Self {
            header,
            payload,
            later_header,
            later_len,
            first_chunk,
            later_chunk,
            base_offset: usize::from(flags & 0x1fff) * 8,
            base_mf: flags & MF != 0,
            pos: 0,
            first_done: false,
        })
    }

    /// Number of fragments still to come.
    pub fn remaining(&self) -> usize {
        let left = self.payload.len().saturating_sub(self.pos);
        let per = self.later_chunk.max(1);
        if self.first_done {
            left.div_ceil(per)
        } else {
            1 + left.saturating_sub(self.first_chunk).div_ceil(per)
        }
    }

    /// Writes the next fragment into `out` and returns its length; `None` when done.
    pub fn next_into(&mut self, out: &mut [u8]) -> Option<Result<usize, PacketError>> {
        if self.remaining() == 0 {
            return None;
        }
        Some(self.write_next(out))
    }

    fn write_next(&mut self, out: &mut [u8]) -> Result<usize, PacketError> {
        let first = !self.first_done;
        let (header, chunk) = if first {
            (self.header, self.first_chunk)
        } else {
            (
                self.later_header
                    .get(..self.later_len)
                    .ok_or(PacketError::BadHeader)?,
                self.later_chunk,
            )
        };
        let take = chunk.min(self.payload.len() - self.pos);
        let data = self
            .payload
            .get(self.pos..self.pos + take)
            .ok_or(PacketError::Truncated)?;
        let last = self.pos + take == self.payload.len();
        let len = header.len() + take;
        let out = out
            .get_mut(..len)
            .ok_or(PacketError::BufferTooSmall { need: len })?;
        let (h, body) = out.split_at_mut(header.len());
        h.copy_from_slice(header);
        body.copy_from_slice(data);
        let offset = (self.base_offset + self.pos) / 8;
        let offset = u16::try_from(offset)
            .ok()
            .filter(|o| *o <= 0x1fff)
            .ok_or(PacketError::BadHeader)?;
        let mf = if !last || self.base_mf { MF } else { 0 };
        let flags = be16(h, 6).ok_or(PacketError::Truncated)? & !(MF | 0x1fff);
        if let Some(b) = h.first_mut() {
            *b = 0x40 | (header.len() / 4) as u8;
        }
        put16(h, 2, len as u16)?;
        put16(h, 6, flags | mf | offset)?;
        put16(h, 10, 0)?;
        let c = checksum(h);
        put16(h, 10, c)?;
        self.pos += take;
        self.first_done = true;
        Ok(len)
    }
}

/// Builds the header of non-first fragments into `out`: the fixed 20 bytes plus the options
/// whose "copied" flag is set (RFC 791), padded to a multiple of 4. Returns its length.
fn copied_options(header: &[u8], out: &mut [u8; 60]) -> Result<usize, PacketError> {
    let (fixed, options) = header.split_at(20.min(header.len()));
    out.get_mut(..20)
        .ok_or(PacketError::BadHeader)?
        .copy_from_slice(fixed);
    let mut len = 20;
    let mut i = 0;
    while let Some(&kind) = options.get(i) {
        match kind {
            0 => break,
            1 => i += 1,
            _ => {
                let olen = usize::from(*options.get(i + 1).ok_or(PacketError::BadOptions)?);
                let opt = options
                    .get(i..i + olen)
                    .filter(|_| olen >= 2)
                    .ok_or(PacketError::BadOptions)?;
                if kind & 0x80 != 0 {
                    out.get_mut(len..len + olen)
                        .ok_or(PacketError::BadOptions)?
                        .copy_from_slice(opt);
                    len += olen;
                }
                i += olen;
            }
        }
    }
    while len % 4 != 0 {
        *out.get_mut(len).ok_or(PacketError::BadOptions)? = 0;
        len += 1;
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::fixtures::{hex_lines, l4_sum_ok};

    /// Reassembles fragments (test-side, straightforwardly) into the original datagram.
    fn reassemble(frags: &[Vec<u8>]) -> Vec<u8> {
        let mut payload = Vec::new();
        let mut header = Vec::new();
        for f in frags {
            let ihl = usize::from(f[0] & 15) * 4;
            let off = usize::from(u16::from_be_bytes([f[6], f[7]]) & 0x1fff) * 8;
            if off == 0 {
                header = f[..ihl].to_vec();
            }
            let body = &f[ihl..usize::from(u16::from_be_bytes([f[2], f[3]]))];
            if payload.len() < off + body.len() {
                payload.resize(off + body.len(), 0);
            }
            payload[off..off + body.len()].copy_from_slice(body);
        }
        let total = (header.len() + payload.len()) as u16;
        header[2..4].copy_from_slice(&total.to_be_bytes());
        header[6] &= !0x3f; // clear MF and offset
        header[7] = 0;
        header[10..12].copy_from_slice(&[0, 0]);
        let c = checksum(&header);
        header[10..12].copy_from_slice(&c.to_be_bytes());
        header.extend_from_slice(&payload);
        header
    }

    fn fragment_all(pkt: &[u8], mtu: u16) -> Result<Vec<Vec<u8>>, PacketError> {
        let mut f = Ipv4Fragmenter::new(pkt, mtu)?;
        let mut out = Vec::new();
        let mut buf = [0u8; 9000];
        let expected = f.remaining();
        while let Some(n) = f.next_into(&mut buf) {
            out.push(buf[..n?].to_vec());
        }
        assert_eq!(out.len(), expected, "remaining() was right");
        Ok(out)
    }

    #[test]
    fn matches_the_kernel_byte_for_byte() {
        let kernel = hex_lines("udp4_kernel_fragments");
        assert_eq!(kernel.len(), 3);
        let whole = reassemble(&kernel);
        assert_eq!(whole.len(), 3028);
        assert!(l4_sum_ok(&whole), "reassembled datagram is intact");
        let ours = fragment_all(&whole, 1500).unwrap();
        assert_eq!(ours, kernel);
    }

    #[test]
    fn tunnel_mtu_fragments_reassemble_to_the_original() {
        let whole = reassemble(&hex_lines("udp4_kernel_fragments"));
        for mtu in [576u16, 1000, 1399, 1400, 1450] {
            let frags = fragment_all(&whole, mtu).unwrap();
            for f in &frags {
                assert!(f.len() <= usize::from(mtu));
                assert_eq!(checksum(&f[..20]), 0);
            }
            assert_eq!(reassemble(&frags), whole, "mtu {mtu}");
        }
    }

    #[test]
    fn fits_already_means_one_unchanged_fragment() {
        let syn = hex_lines("tcp4_syn").remove(0);
        // The SYN has DF set but fits, which is fine.
        assert_eq!(fragment_all(&syn, 1400).unwrap(), vec![syn]);
    }

    #[test]
    fn refragmenting_a_fragment_keeps_offsets_and_mf() {
        let kernel = hex_lines("udp4_kernel_fragments");
        let mut pieces = Vec::new();
        for f in &kernel {
            pieces.extend(fragment_all(f, 600).unwrap());
        }
        assert!(pieces.len() > 3);
        assert_eq!(reassemble(&pieces), reassemble(&kernel));
        let last = pieces.last().unwrap();
        assert_eq!(last[6] & 0x20, 0, "only the very last piece clears MF");
        assert!(pieces[..pieces.len() - 1].iter().all(|p| p[6] & 0x20 != 0));
    }

    #[test]
    fn options_copied_only_when_flagged() {
        let whole = reassemble(&hex_lines("udp4_kernel_fragments"));
        // Insert options: Router Alert (0x94, copied), NOP, Record Route (0x07, not copied).
        let opts = [0x94, 4, 0, 0, 1, 7, 7, 4, 0, 0, 0, 0];
        let mut pkt = vec![0x48];
        pkt.extend_from_slice(&whole[1..20]);
        pkt.extend_from_slice(&opts);
        pkt.extend_from_slice(&whole[20..]);
        let total = pkt.len() as u16;
        pkt[2..4].copy_from_slice(&total.to_be_bytes());
        pkt[10..12].copy_from_slice(&[0, 0]);
        let c = checksum(&pkt[..32]);
        pkt[10..12].copy_from_slice(&c.to_be_bytes());
        let frags = fragment_all(&pkt, 1000).unwrap();
        assert_eq!(&frags[0][20..32], &opts);
        for f in &frags[1..] {
            assert_eq!(f[0], 0x46, "20 + 4 bytes of copied options");
            assert_eq!(&f[20..24], &[0x94, 4, 0, 0]);
            assert_eq!(checksum(&f[..24]), 0);
        }
        let mut payload = Vec::new();
        for f in &frags {
            payload.extend_from_slice(&f[usize::from(f[0] & 15) * 4..]);
        }
        assert_eq!(payload, &whole[20..]);
    }

    #[test]
    fn header_only_packet_is_one_fragment() {
        // Found by fuzzing: a 20-byte packet with no payload once looped forever.
        let mut pkt = hex_lines("tcp4_syn").remove(0);
        pkt.truncate(20);
        pkt[2..4].copy_from_slice(&20u16.to_be_bytes());
        assert_eq!(fragment_all(&pkt, 576).unwrap().len(), 1);
        let mut f = Ipv4Fragmenter::new(&pkt, 576).unwrap();
        assert_eq!(f.remaining(), 1);
        let mut buf = [0u8; 100];
        assert_eq!(f.next_into(&mut buf), Some(Ok(20)));
        assert_eq!(f.next_into(&mut buf), None);
    }

    #[test]
    fn refusals() {
        let df = hex_lines("udp4_df_2000").remove(0);
        assert_eq!(
            Ipv4Fragmenter::new(&df, 1400).unwrap_err(),
            PacketError::DontFragment
        );
        let whole = reassemble(&hex_lines("udp4_kernel_fragments"));
        assert_eq!(
            Ipv4Fragmenter::new(&whole, 27).unwrap_err(),
            PacketError::MtuTooSmall(27)
        );
        assert_eq!(
            Ipv4Fragmenter::new(&hex_lines("udp6_2000")[0], 1400).unwrap_err(),
            PacketError::NotIp
        );
        let mut f = Ipv4Fragmenter::new(&whole, 1400).unwrap();
        assert_eq!(
            f.next_into(&mut [0u8; 100]),
            Some(Err(PacketError::BufferTooSmall { need: 1396 }))
        );
        for n in 0..60 {
            let _ = Ipv4Fragmenter::new(&whole[..n], 100);
        }
        let mut bad = whole.clone();
        bad[0] = 0x46;
        bad[20] = 0x94;
        bad[21] = 0; // option length 0
        assert_eq!(
            Ipv4Fragmenter::new(&bad, 1000).unwrap_err(),
            PacketError::BadOptions
        );
    }
}
