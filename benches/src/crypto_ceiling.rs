//! What the CPU's AES-GCM allows a tunnel on this machine, measured before the runs.
//!
//! Every byte through an ESP tunnel is sealed once (one gateway) and opened once (the
//! other), and no tunnel can run more AES-GCM than the machine's CPUs compute. So
//! `cpus × (bytes a core seals and opens per second)` bounds any ESP tunnel between
//! gateways sharing those CPUs, even with nothing else running; hosts, copies and the
//! network stack come on top. On a small machine whose plain path is fast this bound, not
//! the packet path, caps the share of the plain path a tunnel can reach.
//!
//! The figure is vpngw's own ESP (AES-128-GCM, 1400-byte inner packets, in place, one
//! thread): what the gateways run per packet, nothing more.

use std::time::{Duration, Instant};

use esp::{AesKeySize, InboundConfig, InboundSa, IvKey, OutboundConfig, OutboundSa, SaKeys, Suite};
use serde::Serialize;

/// Inner packet size of the measurement (a full segment at the tunnel MTU).
pub const PACKET: usize = 1400;
const SPI: u32 = 0x5eed_0001;

/// ESP AES-128-GCM on one core, and what it allows on all of them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CryptoCeiling {
    /// Inner bytes per second one core both seals and opens.
    pub seal_open_bytes_per_sec: f64,
    pub cpus: usize,
}

impl CryptoCeiling {
    /// Seals and opens `PACKET`-byte packets for about `budget` on this thread.
    pub fn measure(cpus: usize, budget: Duration) -> Option<CryptoCeiling> {
        let suite = Suite::AesGcm16(AesKeySize::Aes128);
        let keymat: Vec<u8> = (0..suite.keymat_len()).map(|i| i as u8 ^ 0x3c).collect();
        let keys = SaKeys::from_keymat(suite, &keymat).ok()?;
        let out = OutboundSa::new(
            SPI,
            suite,
            &keys,
            OutboundConfig::default(),
            IvKey::new([7; 16]),
        )
        .ok()?;
        let new_inbound = || InboundSa::new(SPI, suite, &keys, InboundConfig::default()).ok();
        // In-order sequence numbers always pass the replay window.
        let inbound = new_inbound()?;
        let head = out.headroom();
        let mut buf = vec![0u8; head + PACKET + out.tailroom()];
        let start = Instant::now();
        let mut packets = 0u64;
        while start.elapsed() < budget {
            for _ in 0..64 {
                // Each round seals a fresh IPv4-looking packet and opens it again.
                buf[head] = 0x45;
                let sealed = out.encap(&mut buf, head, PACKET).ok()?.range;
                let opened = inbound.decap(buf.get_mut(sealed)?).ok()?;
                std::hint::black_box(opened.inner);
                packets += 1;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        (secs > 0.0).then(|| CryptoCeiling {
            seal_open_bytes_per_sec: packets as f64 * PACKET as f64 / secs,
            cpus,
        })
    }

    /// The tunnel rate (bit/s) at which sealing and opening alone take every CPU.
    pub fn tunnel_bits_per_sec(&self) -> f64 {
        self.seal_open_bytes_per_sec * 8.0 * self.cpus as f64
    }

    /// How many CPUs sealing and opening alone take at `bits_per_sec` of tunnel traffic.
    pub fn cpus_for(&self, bits_per_sec: f64) -> f64 {
        bits_per_sec / 8.0 / self.seal_open_bytes_per_sec
    }

    /// The footer line: the ceiling, and what `share` of the plain path's TCPx1 would
    /// take in CPUs of AES-GCM alone, when the plain path was measured.
    pub fn describe(&self, plain_tcp1: Option<f64>, share: f64) -> String {
        let mut line = format!(
            "AES-GCM ceiling: one core seals and opens {:.2} Gbit/s of ESP (AES-128-GCM, {PACKET} B), \
             so sealing and opening alone take all {} CPU(s) at {:.1} Gbit/s through a tunnel",
            self.seal_open_bytes_per_sec * 8.0 / 1e9,
            self.cpus,
            self.tunnel_bits_per_sec() / 1e9,
        );
        if let Some(plain) = plain_tcp1.filter(|p| *p > 0.0) {
            line.push_str(&format!(
                "; {:.0} % of the plain path ({:.1} Gbit/s) needs {:.2} of them for it",
                share * 100.0,
                plain * share / 1e9,
                self.cpus_for(plain * share),
            ));
        }
        line.push('.');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_plausible_rate_and_derives_the_ceiling() {
        let c = CryptoCeiling::measure(2, Duration::from_millis(50)).expect("measured");
        // Any machine running the tests seals and opens between 10 MB/s and 100 GB/s.
        assert!(
            (1e7..1e11).contains(&c.seal_open_bytes_per_sec),
            "{}",
            c.seal_open_bytes_per_sec
        );
        assert!((c.tunnel_bits_per_sec() - c.seal_open_bytes_per_sec * 16.0).abs() < 1.0);
    }

    #[test]
    fn the_line_names_the_cpus_a_share_of_the_plain_path_needs() {
        let c = CryptoCeiling {
            seal_open_bytes_per_sec: 1.25e9, // 10 Gbit/s a core
            cpus: 2,
        };
        assert_eq!(c.cpus_for(10e9), 1.0);
        let line = c.describe(Some(25e9), 0.4);
        assert!(line.contains("10.00 Gbit/s of ESP"), "{line}");
        assert!(line.contains("take all 2 CPU(s) at 20.0 Gbit/s"), "{line}");
        assert!(
            line.contains("40 % of the plain path (10.0 Gbit/s) needs 1.00 of them"),
            "{line}"
        );
        assert!(!c.describe(None, 0.4).contains("plain"));
    }
}
