//! A flood of IKE_SA_INIT requests from the configured peer's address, by a flooder that
//! echoes the COOKIE the gateway demands (RFC 7296 2.6). Every echoed request passes the
//! cookie check and costs the responder a modp2048 Diffie-Hellman, so the daemon must
//! bound what it queues and what it accepts: its memory stays small, it is idle soon after
//! the flood, its tunnels, their traffic and its control socket live through it, and the
//! flood is counted.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::thread::ScopedJoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use e2e::{
    enter_on_this_thread, ping, plan, skip_unless_root, PingOptions, PingStats, Psk, SiteToSite,
    Vpngw, VpngwStatus,
};

// The flood protection's counters.
/// Gateway-wide (`dataplane`): IKE datagrams dropped because the control plane was busy,
const GW_IKE_DROPPED_BUSY: &str = "ike_dropped_busy";
/// and of those, IKE_SA_INIT requests.
const GW_IKE_INIT_DROPPED_BUSY: &str = "ike_init_dropped_busy";
/// Per tunnel (`ike_counters`): COOKIE notifications sent,
const TUNNEL_COOKIES_SENT: &str = "cookies_sent";
/// and IKE_SA_INIT requests refused by the half-open rate limit.
const TUNNEL_INIT_REFUSED: &str = "init_refused";
/// New responder IKE SAs a tunnel admits per second (`ike::Config::init_rate`).
const INIT_RATE: u64 = 10;

const UP: Duration = Duration::from_secs(30);
const TUNNELS: [&str; 2] = ["tunnel1", "tunnel2"];
const FLOOD: Duration = Duration::from_secs(4);
/// New requests per burst before the flooder reads (and echoes) what came back.
const BURST: usize = 32;
/// Today's code grows past 100 MiB within the flood.
const MAX_PEAK_RSS_KIB: u64 = 48 * 1024;
/// The CPU window starts this long after the flood and lasts IDLE_WINDOW.
const IDLE_AFTER: Duration = Duration::from_secs(1);
const IDLE_WINDOW: Duration = Duration::from_secs(2);
const MAX_IDLE_CPU: Duration = Duration::from_millis(300);
const MAX_STATUS_LATENCY: Duration = Duration::from_secs(2);
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
const PING_EVERY: Duration = Duration::from_millis(200);
/// Requests of the sanity check before the flood: fewer than the cookie threshold (10).
const PROBES: usize = 3;

const IKE_SA_INIT: u8 = 34;
const FLAG_INITIATOR: u8 = 0x08;
const FLAG_RESPONSE: u8 = 0x20;
const PAYLOAD_SA: u8 = 33;
const PAYLOAD_KE: u8 = 34;
const PAYLOAD_NONCE: u8 = 40;
const PAYLOAD_NOTIFY: u8 = 41;
const NOTIFY_COOKIE: u16 = 16390;
/// Notifications that mean the hand-made request is wrong, not that the gateway is busy.
const ENCODING_ERRORS: [(u16, &str); 3] = [
    (7, "INVALID_SYNTAX"),
    (14, "NO_PROPOSAL_CHOSEN"),
    (17, "INVALID_KE_PAYLOAD"),
];

fn psks() -> [Psk; 2] {
    [
        Psk::from("flood-e2e-psk-one"),
        Psk::from("flood-e2e-psk-two"),
    ]
}

/// xorshift64*: enough for SPIs, nonces and KE values nobody checks, and no dependency.
struct XorShift(u64);

impl XorShift {
    fn seeded() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        XorShift(nanos | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next().to_be_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// A payload: generic header (next payload, not critical, length with the header), body.
fn payload(next: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![next, 0];
    p.extend_from_slice(&(body.len() as u16 + 4).to_be_bytes());
    p.extend_from_slice(body);
    p
}

/// The payloads of the IKE_SA_INIT request with SPIi `spi_i`, offering the daemon's IKE
/// proposal (aes256-sha256-modp2048): SA, KE, Nonce. KE and nonce derive from `spi_i`, so
/// the echo of a cookie, which must repeat them, needs no memory of the request, however
/// late the cookie comes.
fn init_request_payloads(spi_i: [u8; 8]) -> Vec<u8> {
    let mut rng = XorShift(u64::from_be_bytes(spi_i) | 1);
    // Transform: more (3) or last (0), reserved, length, type, reserved, ID, attributes.
    let transform = |last: bool, ty: u8, id: u16, attributes: &[u8]| {
        let mut t = vec![if last { 0 } else { 3 }, 0];
        t.extend_from_slice(&(attributes.len() as u16 + 8).to_be_bytes());
        t.extend_from_slice(&[ty, 0]);
        t.extend_from_slice(&id.to_be_bytes());
        t.extend_from_slice(attributes);
        t
    };
    let transforms = [
        transform(false, 1, 12, &[0x80, 0x0e, 0x01, 0x00]), // ENCR_AES_CBC, 256-bit key
        transform(false, 2, 5, &[]),                        // PRF_HMAC_SHA2_256
        transform(false, 3, 12, &[]),                       // AUTH_HMAC_SHA2_256_128
        transform(true, 4, 14, &[]),                        // D-H group 14 (modp2048)
    ]
    .concat();
    // Proposal: last, reserved, length, number 1, protocol IKE, no SPI, transform count.
    let mut proposal = vec![0, 0];
    proposal.extend_from_slice(&(transforms.len() as u16 + 8).to_be_bytes());
    proposal.extend_from_slice(&[1, 1, 0, 4]);
    proposal.extend_from_slice(&transforms);
    // KE: group 14, reserved, then g^x. Any value in (1, p - 1) is valid, and the prime
    // starts with 0xff bytes: a first byte in 1..=0xfe keeps it in range.
    let mut ke = vec![0, 14, 0, 0];
    let mut gx = [0u8; 256];
    rng.fill(&mut gx);
    gx[0] = gx[0].clamp(1, 0xfe);
    ke.extend_from_slice(&gx);
    let mut nonce = [0u8; 32];
    rng.fill(&mut nonce);
    [
        payload(PAYLOAD_KE, &proposal),
        payload(PAYLOAD_NONCE, &ke),
        payload(0, &nonce),
    ]
    .concat()
}

/// The IKE_SA_INIT request with SPIi `spi_i`: the header, the COOKIE notification when
/// echoing one (it must come first), then [`init_request_payloads`].
fn init_request(spi_i: [u8; 8], cookie: Option<&[u8]>) -> Vec<u8> {
    let mut body = Vec::new();
    let first = match cookie {
        Some(cookie) => {
            // Notify: protocol none, no SPI, type, data.
            let mut n = vec![0, 0];
            n.extend_from_slice(&NOTIFY_COOKIE.to_be_bytes());
            n.extend_from_slice(cookie);
            body.extend(payload(PAYLOAD_SA, &n));
            PAYLOAD_NOTIFY
        }
        None => PAYLOAD_SA,
    };
    body.extend(init_request_payloads(spi_i));
    let mut m = spi_i.to_vec();
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(&[first, 0x20, IKE_SA_INIT, FLAG_INITIATOR]);
    m.extend_from_slice(&0u32.to_be_bytes());
    m.extend_from_slice(&(body.len() as u32 + 28).to_be_bytes());
    m.extend(body);
    m
}

/// What an IKE_SA_INIT response says, as far as the flooder cares.
#[derive(Debug, PartialEq)]
enum InitReply {
    /// A real response (SA, KE, Nonce...): the gateway computed a Diffie-Hellman.
    Accepted,
    /// Send the request again with this cookie.
    Cookie { spi_i: [u8; 8], cookie: Vec<u8> },
    /// Any other notification, by type.
    Notify(u16),
    /// Not an IKE_SA_INIT response.
    Other,
}

fn be16(m: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(m.get(at..at + 2)?.try_into().ok()?))
}

fn parse_init_reply(m: &[u8]) -> InitReply {
    let Some(spi_i) = m.get(..8).and_then(|s| <[u8; 8]>::try_from(s).ok()) else {
        return InitReply::Other;
    };
    let response = matches!(m.get(19), Some(f) if f & FLAG_RESPONSE != 0);
    if m.get(18) != Some(&IKE_SA_INIT) || !response {
        return InitReply::Other;
    }
    match m.get(16) {
        Some(&PAYLOAD_SA) => InitReply::Accepted,
        Some(&PAYLOAD_NOTIFY) => {
            // After the 28-byte header: generic header (4), protocol, SPI size, type, SPI, data.
            let (Some(len), Some(&spi_size), Some(ty)) = (be16(m, 30), m.get(33), be16(m, 34))
            else {
                return InitReply::Other;
            };
            match m.get(36 + usize::from(spi_size)..28 + usize::from(len)) {
                Some(cookie) if ty == NOTIFY_COOKIE => InitReply::Cookie {
                    spi_i,
                    cookie: cookie.to_vec(),
                },
                _ => InitReply::Notify(ty),
            }
        }
        _ => InitReply::Other,
    }
}

/// The sanity check of the hand-made request: `n` fresh requests from `from` (any port)
/// in `ns` to `to`, and the replies that came within a second after them.
fn probe(ns: &str, from: Ipv4Addr, to: SocketAddr, n: usize) -> anyhow::Result<Vec<InitReply>> {
    enter_on_this_thread(ns)?;
    let sock = UdpSocket::bind((from, 0))?;
    sock.connect(to)?;
    sock.set_read_timeout(Some(Duration::from_secs(1)))?;
    let mut rng = XorShift::seeded();
    for _ in 0..n {
        let spi_i = rng.next().to_be_bytes();
        sock.send(&init_request(spi_i, None))?;
    }
    let mut replies = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok(len) = sock.recv(&mut buf) {
        replies.push(parse_init_reply(buf.get(..len).unwrap_or_default()));
    }
    Ok(replies)
}

struct FloodStats {
    /// Fresh requests sent.
    requests: u64,
    /// COOKIE replies received (each echoed at once).
    cookies: u64,
    /// Real IKE_SA_INIT responses.
    accepted: u64,
    /// Other notifications by type.
    notifies: BTreeMap<u16, u64>,
    /// Sends and receives that failed (full socket buffer, ICMP unreachable).
    socket_errors: u64,
    /// When the flooder stopped.
    ended: Instant,
}

impl FloodStats {
    fn summary(&self) -> String {
        format!(
            "{} requests, {} cookies (each echoed), {} real responses, other notifications \
             {:?}, {} socket errors",
            self.requests, self.cookies, self.accepted, self.notifies, self.socket_errors
        )
    }

    fn encoding_errors(&self) -> Vec<(&'static str, u64)> {
        ENCODING_ERRORS
            .iter()
            .filter_map(|(ty, name)| self.notifies.get(ty).map(|n| (*name, *n)))
            .collect()
    }
}

/// For `duration`, as fast as one thread can: bursts of fresh IKE_SA_INIT requests from
/// `from` (any port) in `ns` to `to`, then every reply read, and each request the gateway
/// answered with a COOKIE sent again with it (an echo answered by another COOKIE too:
/// a flooder has no reason to give up).
fn flood(
    ns: &str,
    from: Ipv4Addr,
    to: SocketAddr,
    duration: Duration,
) -> anyhow::Result<FloodStats> {
    enter_on_this_thread(ns)?;
    let sock = UdpSocket::bind((from, 0))?;
    sock.connect(to)?;
    sock.set_nonblocking(true)?;
    let mut rng = XorShift::seeded();
    let mut stats = FloodStats {
        requests: 0,
        cookies: 0,
        accepted: 0,
        notifies: BTreeMap::new(),
        socket_errors: 0,
        ended: Instant::now(),
    };
    let mut buf = [0u8; 2048];
    let start = Instant::now();
    while start.elapsed() < duration {
        for _ in 0..BURST {
            if sock
                .send(&init_request(rng.next().to_be_bytes(), None))
                .is_err()
            {
                stats.socket_errors += 1;
            }
            stats.requests += 1;
        }
        loop {
            let len = match sock.recv(&mut buf) {
                Ok(len) => len,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => {
                    stats.socket_errors += 1;
                    break;
                }
            };
            match parse_init_reply(buf.get(..len).unwrap_or_default()) {
                InitReply::Accepted => stats.accepted += 1,
                InitReply::Cookie { spi_i, cookie } => {
                    stats.cookies += 1;
                    if sock.send(&init_request(spi_i, Some(&cookie))).is_err() {
                        stats.socket_errors += 1;
                    }
                }
                InitReply::Notify(ty) => *stats.notifies.entry(ty).or_default() += 1,
                InitReply::Other => {}
            }
        }
    }
    stats.ended = Instant::now();
    Ok(stats)
}

/// Resident memory of process `pid` in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS in /proc/{pid}/status"))
}

/// The highest RSS of process `pid`, sampled every SAMPLE_EVERY until `going` is false.
fn peak_rss_while(pid: u32, mut going: impl FnMut() -> bool) -> anyhow::Result<u64> {
    let mut peak = 0;
    loop {
        peak = peak.max(rss_kib(pid)?);
        if !going() {
            return Ok(peak);
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
}

/// What the test saw of the flood and of the customer daemon.
struct Seen {
    flood: FloodStats,
    pings: PingStats,
    /// How long a `vpngw status` in the middle of the flood took, and how it ended.
    status: (Duration, anyhow::Result<()>),
    peak_rss_kib: u64,
    /// CPU time used in the `idle_window` that starts IDLE_AFTER after the flood.
    idle_cpu: Duration,
    idle_window: Duration,
}

/// How long one `vpngw status` takes, and whether it worked.
fn timed_status(v: &Vpngw) -> (Duration, anyhow::Result<()>) {
    let start = Instant::now();
    let result = v.status().map(drop).map_err(anyhow::Error::from);
    (start.elapsed(), result)
}

fn tunnel_ike_counter(status: &VpngwStatus, tunnel: &str, name: &str) -> u64 {
    status
        .tunnel(tunnel)
        .and_then(|t| t.ike_counters.get(name).copied())
        .unwrap_or(0)
}

fn joined<T>(handle: ScopedJoinHandle<'_, anyhow::Result<T>>, what: &str) -> anyhow::Result<T> {
    handle
        .join()
        .map_err(|_| anyhow::anyhow!("{what} thread panicked"))?
}

/// Both tunnels UP on `v`, or what they are.
fn ensure_tunnels_up(v: &Vpngw, side: &str) -> anyhow::Result<()> {
    let s = v.status()?;
    anyhow::ensure!(
        TUNNELS
            .iter()
            .all(|n| s.tunnel(n).is_some_and(|t| t.state == "UP")),
        "{side} tunnels after the flood:\n{}",
        s.summary()
    );
    Ok(())
}

#[test]
fn an_ike_sa_init_flood_from_the_peer_address_costs_bounded_memory_and_cpu() -> anyhow::Result<()> {
    if skip_unless_root("an_ike_sa_init_flood_from_the_peer_address_costs_bounded_memory_and_cpu") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let (customer, cloud) = Vpngw::start_plan_pair(&s2s, psks(), UP)?;
    let pid = customer.pid();
    // From the cloud gateway, as tunnel1's peer address (the customer's configured peer).
    let flooder_ns = s2s.cloud_gw().name().to_owned();
    let peer = plan::TUNNELS[0].cloud_public;
    let target = SocketAddr::new(plan::CUSTOMER_GW_WAN.into(), 500);

    // The hand-made request is one the gateway accepts, or the flood would cost it nothing.
    let replies = std::thread::scope(|s| {
        joined(
            s.spawn(|| probe(&flooder_ns, peer, target, PROBES)),
            "probe",
        )
    })?;
    anyhow::ensure!(
        replies.len() == PROBES && replies.iter().all(|r| *r == InitReply::Accepted),
        "{PROBES} IKE_SA_INIT requests before the flood, expected as many real responses: \
         {replies:?}"
    );

    let rss_before = rss_kib(pid)?;
    let pings = PingOptions {
        count: (FLOOD.as_millis() / PING_EVERY.as_millis()) as u32 - 1,
        interval: PING_EVERY,
        wait: Duration::from_secs(1),
        ..PingOptions::default()
    };
    let seen = std::thread::scope(|s| -> anyhow::Result<_> {
        let flooder = s.spawn(|| flood(&flooder_ns, peer, target, FLOOD));
        let pinger = s.spawn(|| Ok(ping(s2s.vpc_host(), plan::IDC_HOST.into(), &pings)?));
        let status = s.spawn(|| {
            std::thread::sleep(FLOOD / 2);
            timed_status(&customer)
        });
        let peak_flooded = peak_rss_while(pid, || !flooder.is_finished())?;
        let flood = joined(flooder, "flood")?;
        // Whatever backlog the flood left is worked off now; a second later the daemon
        // should be idle. (Measured before joining the others: a slow status call must
        // not push the window back.)
        std::thread::sleep((flood.ended + IDLE_AFTER).saturating_duration_since(Instant::now()));
        let cpu_before = customer.cpu_time()?;
        let window_start = Instant::now();
        let peak_after = peak_rss_while(pid, || window_start.elapsed() < IDLE_WINDOW)?;
        let idle_cpu = customer.cpu_time()?.saturating_sub(cpu_before);
        Ok(Seen {
            idle_window: window_start.elapsed(),
            idle_cpu,
            peak_rss_kib: peak_flooded.max(peak_after),
            flood,
            pings: joined(pinger, "ping")?,
            status: status
                .join()
                .map_err(|_| anyhow::anyhow!("status thread panicked"))?,
        })
    })?;
    let Seen {
        flood,
        pings,
        status,
        peak_rss_kib,
        idle_cpu,
        idle_window,
    } = seen;
    let (status_took, status_result) = status;
    eprintln!(
        "flood of {FLOOD:?}: {}\ncustomer vpngw: RSS {rss_before} KiB before, peak \
         {peak_rss_kib} KiB; CPU {idle_cpu:?} in the {idle_window:?} from {IDLE_AFTER:?} after \
         the flood; status took {status_took:?} mid-flood; pings {}/{} answered",
        flood.summary(),
        pings.received,
        pings.transmitted
    );
    // The flood was the one meant: cookies demanded and echoed, the request understood.
    anyhow::ensure!(
        flood.cookies > 0 && flood.encoding_errors().is_empty(),
        "the flood did not work as meant (encoding errors {:?}): {}",
        flood.encoding_errors(),
        flood.summary()
    );
    anyhow::ensure!(
        peak_rss_kib < MAX_PEAK_RSS_KIB,
        "customer vpngw RSS peaked at {peak_rss_kib} KiB (before the flood {rss_before} KiB), \
         limit {MAX_PEAK_RSS_KIB} KiB: what the flood brings in is not bounded"
    );
    anyhow::ensure!(
        idle_cpu < MAX_IDLE_CPU,
        "customer vpngw used {idle_cpu:?} of CPU in the {idle_window:?} starting {IDLE_AFTER:?} after \
         the flood (limit {MAX_IDLE_CPU:?}): it is still working off the flood"
    );
    // The Diffie-Hellman work: the tunnel admits INIT_RATE new SAs a second, and a full
    // bucket to begin with.
    // A second of slack for the clocks of flooder and daemon (without the limit: every
    // echoed request, thousands).
    let max_accepted = INIT_RATE * (FLOOD.as_secs() + 2);
    anyhow::ensure!(
        flood.accepted <= max_accepted,
        "{} echoed requests got a real response (a DH computation each), limit {max_accepted}",
        flood.accepted
    );
    ensure_tunnels_up(&customer, "customer")?;
    ensure_tunnels_up(&cloud, "cloud")?;
    anyhow::ensure!(
        pings.received * 10 >= pings.transmitted * 9,
        "VPC -> IDC pings during the flood: {pings:?}"
    );
    anyhow::ensure!(
        status_result.is_ok() && status_took < MAX_STATUS_LATENCY,
        "vpngw status in the middle of the flood took {status_took:?} (limit \
         {MAX_STATUS_LATENCY:?}): {status_result:?}"
    );
    // Last, so today's code fails on the behaviour above, not on a counter's name.
    let status = customer.status()?;
    let cookies_sent = tunnel_ike_counter(&status, TUNNELS[0], TUNNEL_COOKIES_SENT);
    let init_refused = tunnel_ike_counter(&status, TUNNELS[0], TUNNEL_INIT_REFUSED);
    let dropped_busy = status.counter(GW_IKE_DROPPED_BUSY);
    let init_dropped_busy = status.counter(GW_IKE_INIT_DROPPED_BUSY);
    anyhow::ensure!(
        cookies_sent > 0 && init_refused > 0,
        "flood not counted: tunnel1 {TUNNEL_COOKIES_SENT}={cookies_sent} \
         {TUNNEL_INIT_REFUSED}={init_refused}, {GW_IKE_DROPPED_BUSY}={dropped_busy} \
         ({GW_IKE_INIT_DROPPED_BUSY}={init_dropped_busy})\n{}",
        status.summary()
    );
    Ok(())
}
