//! Where authenticated ESP came from: a worker checks that it is the address its tunnel
//! sends ESP to, and tells the control plane when not (the peer's NAT may have changed
//! its mapping; the control plane decides whether to follow, see `ike::Tunnel::
//! follow_esp_source`).

use super::counters::bump;
use super::{SaEvent, SaEventKind, Shared};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How often a worker reports ESP of one SA from one new source at most.
const NEW_SOURCE_REPORT: Duration = Duration::from_secs(1);

/// One worker's check, cheap on the packet path: the tunnel is looked at only when the
/// (SPI, source) pair differs from the last one that matched.
#[derive(Debug, Default)]
pub struct Sources {
    matched: Option<(u32, SocketAddr)>,
    reported: Option<(u32, SocketAddr, Instant)>,
}

impl Sources {
    /// ESP of inbound SA `spi`, of tunnel `owner`, decrypted after arriving from `from`.
    pub fn check(&mut self, shared: &Shared, spi: u32, owner: u32, from: SocketAddr) {
        if self.matched == Some((spi, from)) {
            return;
        }
        let Some(tunnel) = shared.tunnel_of(owner) else {
            return;
        };
        if tunnel.peer.load().as_deref() == Some(&from) {
            self.matched = Some((spi, from));
            return;
        }
        let now = Instant::now();
        if let Some((s, f, at)) = self.reported {
            if s == spi && f == from && now.duration_since(at) < NEW_SOURCE_REPORT {
                return;
            }
        }
        self.reported = Some((spi, from, now));
        bump(&shared.counters.esp_new_source);
        shared.sa_events.report(SaEvent {
            spi,
            outbound: false,
            event: SaEventKind::NewSource(from),
        });
    }
}
