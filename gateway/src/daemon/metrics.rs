//! Prometheus metrics over HTTP (`metrics_listen`): per tunnel its state, traffic and
//! drops, the dataplane's counters and the BGP sessions, in the text exposition format.
//! Each scrape asks the main loop for what `vpngw status` and `vpngw bgp` show, so the
//! figures are the same ones, taken at the same moment.
//!
//! The server answers `GET /metrics` and nothing else, one request per connection; a
//! client that does not send its request head within `READ_TIMEOUT`, or sends more than
//! `MAX_HEAD`, is dropped, and beyond `MAX_CLIENTS` at once connections are turned away.

use super::control::Call;
use super::status::{Request, Status, TunnelStatus};
use crate::bgp_speaker::BgpSessionStatus;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Longest request head read (request line and headers).
const MAX_HEAD: usize = 8 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a failed accept (e.g. out of file descriptors), which would fail again at
/// once and spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Scrapers served at once. A scraper polls every few seconds; more connections than
/// this (a flood) are answered 503 and closed at once instead of piling up.
const MAX_CLIENTS: usize = 16;

/// Accepts scrapers until the main loop goes away.
pub async fn serve(listener: TcpListener, calls: mpsc::Sender<Call>) {
    serve_with(listener, calls, MAX_CLIENTS, READ_TIMEOUT).await;
}

async fn serve_with(
    listener: TcpListener,
    calls: mpsc::Sender<Call>,
    max_clients: usize,
    read_timeout: Duration,
) {
    let slots = Arc::new(Semaphore::new(max_clients));
    let mut turned_away = 0u64;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => match slots.clone().try_acquire_owned() {
                Ok(slot) => {
                    let calls = calls.clone();
                    tokio::spawn(async move {
                        client(stream, calls, read_timeout).await;
                        drop(slot);
                    });
                }
                Err(_) => {
                    turned_away += 1;
                    if turned_away.is_power_of_two() {
                        tracing::warn!(
                            turned_away,
                            max_clients,
                            "metrics: too many connections at once; turned away"
                        );
                    }
                    // Without waiting on the client: a few bytes fit any send buffer.
                    let _ = stream.try_write(BUSY);
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "metrics accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

const BUSY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

async fn client(mut stream: TcpStream, calls: mpsc::Sender<Call>, read_timeout: Duration) {
    let head = match tokio::time::timeout(read_timeout, read_head(&mut stream)).await {
        Ok(Some(head)) => head,
        // Too slow, too long, or gone: nothing worth answering.
        _ => return,
    };
    let (code, body) = match request_line(&head) {
        Some(("GET", "/metrics")) => match scrape(&calls).await {
            Ok(text) => ("200 OK", text),
            Err(e) => ("503 Service Unavailable", format!("{e}\n")),
        },
        Some(("GET", _)) => ("404 Not Found", "only /metrics is served\n".to_owned()),
        Some(_) => ("405 Method Not Allowed", "only GET\n".to_owned()),
        None => ("400 Bad Request", "bad request\n".to_owned()),
    };
    let response = format!(
        "HTTP/1.1 {code}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The request head, up to the blank line; `None` if the client closed first or sent
/// more than `MAX_HEAD` without one.
async fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(buf.get(..n)?);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            return Some(head);
        }
        if head.len() > MAX_HEAD {
            return None;
        }
    }
}

/// The method and path (without a query string) of the request line.
fn request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    let mut parts = line.split(' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return None;
    }
    Some((method, target.split('?').next().unwrap_or(target)))
}

/// Asks the main loop for `req`; its JSON answer.
async fn call(calls: &mpsc::Sender<Call>, req: Request) -> Result<serde_json::Value, String> {
    let (tx, rx) = oneshot::channel();
    calls
        .send((req, tx))
        .await
        .map_err(|_| "daemon shutting down".to_owned())?;
    let response = rx.await.map_err(|_| "daemon shutting down".to_owned())?;
    match (response.ok, response.data) {
        (true, Some(data)) => Ok(data),
        _ => Err(response.error.unwrap_or_else(|| "no data".into())),
    }
}

async fn scrape(calls: &mpsc::Sender<Call>) -> Result<String, String> {
    let status: Status =
        serde_json::from_value(call(calls, Request::Status).await?).map_err(|e| e.to_string())?;
    let bgp: Vec<BgpSessionStatus> =
        serde_json::from_value(call(calls, Request::Bgp).await?).map_err(|e| e.to_string())?;
    Ok(render(&status, &bgp))
}

/// One metric family: its HELP and TYPE lines, then samples.
struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String, name: &'static str, kind: &str, help: &str) -> Self {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        Family { out, name }
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let _ = write!(self.out, "{}", self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// A label value as the exposition format wants it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One figure of a tunnel.
type TunnelFigure = fn(&TunnelStatus) -> u64;
/// A tunnel's counters with a direction: (in, out).
type TunnelTraffic = fn(&TunnelStatus) -> (u64, u64);
/// A tunnel's counters by a label (drop reason, IKE event).
type TunnelCounters = fn(&TunnelStatus) -> &BTreeMap<String, u64>;

const TUNNEL_GAUGES: [(&str, &str, TunnelFigure); 4] = [
    (
        "vpngw_tunnel_up",
        "1 when the tunnel's IKE SA and CHILD SA are established.",
        |t| u64::from(t.state == "UP"),
    ),
    (
        "vpngw_tunnel_last_change_timestamp_seconds",
        "Unix time of the tunnel's last UP/DOWN change.",
        |t| t.since,
    ),
    (
        "vpngw_tunnel_mtu_bytes",
        "Largest inner packet the tunnel sends unfragmented now.",
        |t| u64::from(t.mtu),
    ),
    ("vpngw_tunnel_child_sas", "CHILD SAs the tunnel has.", |t| {
        t.child_sas.len() as u64
    }),
];

const TUNNEL_TRAFFIC: [(&str, &str, TunnelTraffic); 2] = [
    (
        "vpngw_tunnel_bytes_total",
        "Inner bytes through the tunnel's CHILD SAs.",
        |t| (t.bytes_in, t.bytes_out),
    ),
    (
        "vpngw_tunnel_packets_total",
        "Inner packets through the tunnel's CHILD SAs.",
        |t| (t.packets_in, t.packets_out),
    ),
];

const TUNNEL_COUNTERS: [(&str, &str, &str, TunnelCounters); 2] = [
    (
        "vpngw_tunnel_drops_total",
        "Inbound ESP packets the tunnel's SAs dropped, by reason.",
        "reason",
        |t| &t.drops,
    ),
    (
        "vpngw_tunnel_ike_events_total",
        "IKE events of the tunnel (retransmits, rekeys, cookies...), by event.",
        "event",
        |t| &t.ike_counters,
    ),
];

fn tunnel_labels(t: &TunnelStatus) -> [(&'static str, &str); 2] {
    [("connection", &t.connection), ("tunnel", &t.name)]
}

/// A session's labels from its values (tunnel, neighbour, peer AS).
fn session_labels([t, n, a]: &[String; 3]) -> [(&'static str, &str); 3] {
    [("tunnel", t), ("neighbor", n), ("peer_asn", a)]
}

/// The exposition text for a status and the BGP sessions.
pub fn render(status: &Status, bgp: &[BgpSessionStatus]) -> String {
    let mut out = String::new();
    let tunnels = &status.tunnels;
    for (name, help, value) in TUNNEL_GAUGES {
        let mut f = Family::new(&mut out, name, "gauge", help);
        for t in tunnels {
            f.sample(&tunnel_labels(t), value(t));
        }
    }
    for (name, help, pick) in TUNNEL_TRAFFIC {
        let mut f = Family::new(&mut out, name, "counter", help);
        for t in tunnels {
            let [c, n] = tunnel_labels(t);
            let (i, o) = pick(t);
            f.sample(&[c, n, ("direction", "in")], i);
            f.sample(&[c, n, ("direction", "out")], o);
        }
    }
    for (name, help, label, counters) in TUNNEL_COUNTERS {
        let mut f = Family::new(&mut out, name, "counter", help);
        for t in tunnels {
            let [c, n] = tunnel_labels(t);
            for (key, v) in counters(t) {
                f.sample(&[c, n, (label, key)], v);
            }
        }
    }
    {
        let mut f = Family::new(
            &mut out,
            "vpngw_dataplane_total",
            "counter",
            "Dataplane counters no SA owns (drops per stage, batches), by counter.",
        );
        for (counter, v) in &status.dataplane {
            f.sample(&[("counter", counter)], v);
        }
    }
    render_bgp(&mut out, bgp);
    out
}

/// One figure of a BGP session.
type SessionFigure = fn(&BgpSessionStatus) -> u64;

const BGP_GAUGES: [(&str, &str, SessionFigure); 5] = [
    (
        "vpngw_bgp_session_established",
        "1 when the BGP session over the tunnel is Established.",
        |s| u64::from(s.state == "Established"),
    ),
    (
        "vpngw_bgp_session_uptime_seconds",
        "Time since the session became Established (0 when it is not).",
        |s| s.uptime_secs.unwrap_or(0),
    ),
    (
        "vpngw_bgp_prefixes_received",
        "Prefixes the neighbour advertises.",
        |s| s.prefixes_received as u64,
    ),
    (
        "vpngw_bgp_prefixes_accepted",
        "Of those, prefixes accepted into the routing table.",
        |s| s.prefixes_accepted as u64,
    ),
    (
        "vpngw_bgp_prefixes_advertised",
        "Prefixes advertised to the neighbour.",
        |s| s.prefixes_advertised as u64,
    ),
];

fn render_bgp(out: &mut String, bgp: &[BgpSessionStatus]) {
    // Each session's label values, made once.
    let ids: Vec<[String; 3]> = bgp
        .iter()
        .map(|s| {
            [
                s.tunnel.clone(),
                s.peer_address.to_string(),
                s.peer_asn.to_string(),
            ]
        })
        .collect();
    for (name, help, value) in BGP_GAUGES {
        let mut f = Family::new(out, name, "gauge", help);
        for (s, id) in bgp.iter().zip(&ids) {
            f.sample(&session_labels(id), value(s));
        }
    }
    let mut f = Family::new(
        out,
        "vpngw_bgp_messages_total",
        "counter",
        "BGP messages exchanged with the neighbour.",
    );
    for (s, id) in bgp.iter().zip(&ids) {
        let [t, n, a] = session_labels(id);
        f.sample(&[t, n, a, ("direction", "in")], s.messages_received);
        f.sample(&[t, n, a, ("direction", "out")], s.messages_sent);
    }
    let mut f = Family::new(
        out,
        "vpngw_bgp_established_transitions_total",
        "counter",
        "Times the session became Established.",
    );
    for (s, id) in bgp.iter().zip(&ids) {
        f.sample(&session_labels(id), s.established_transitions);
    }
}

#[cfg(test)]
mod tests;
