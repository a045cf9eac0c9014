use super::*;
use crate::daemon::status::Response;
use serde_json::json;

fn status() -> Status {
    serde_json::from_value(json!({
        "tunnels": [
            {
                "connection": "vpc-prod", "name": "tun1", "state": "UP", "since": 1700000000,
                "reason": null, "local": "192.0.2.10", "peer": "198.51.100.1:4500", "mtu": 1400,
                "ike": {"spi_i": "01", "spi_r": "02", "proposal": "aes128gcm16-prfsha256-modp2048"},
                "child_sas": [{"spi_in": "c1", "spi_out": "c2", "proposal": "aes128gcm16", "established": 1}],
                "bytes_in": 1000, "bytes_out": 2000, "packets_in": 10, "packets_out": 20,
                "drops": {"replayed": 3}, "ike_counters": {"retransmits": 2}, "last_dpd": null
            },
            {
                "connection": "vpc-prod", "name": "t\"2", "state": "DOWN", "since": 1700000001,
                "reason": "waiting_for_peer", "local": "192.0.2.10", "peer": "198.51.100.2:4500",
                "ike": null, "child_sas": [], "bytes_in": 0, "bytes_out": 0,
                "packets_in": 0, "packets_out": 0, "drops": {}, "ike_counters": {}, "last_dpd": null
            }
        ],
        "dataplane": {"no_route": 5, "ecn_dropped": 1}
    }))
    .unwrap()
}

fn bgp() -> Vec<BgpSessionStatus> {
    serde_json::from_value(json!([{
        "tunnel": "tun1", "local_address": "169.254.10.2", "peer_address": "169.254.10.1",
        "local_asn": 65010, "peer_asn": 65000, "state": "Established", "uptime_secs": 42,
        "prefixes_received": 3, "prefixes_accepted": 2, "prefixes_advertised": 1,
        "last_error": null, "messages_received": 7, "messages_sent": 8,
        "established_transitions": 1, "running": true
    }]))
    .unwrap()
}

#[test]
fn the_exposition_names_every_tunnel_counter_and_session() {
    let text = render(&status(), &bgp());
    for line in [
        "# TYPE vpngw_tunnel_up gauge",
        "vpngw_tunnel_up{connection=\"vpc-prod\",tunnel=\"tun1\"} 1",
        // Label values are escaped.
        "vpngw_tunnel_up{connection=\"vpc-prod\",tunnel=\"t\\\"2\"} 0",
        "vpngw_tunnel_last_change_timestamp_seconds{connection=\"vpc-prod\",tunnel=\"tun1\"} 1700000000",
        "vpngw_tunnel_mtu_bytes{connection=\"vpc-prod\",tunnel=\"tun1\"} 1400",
        "vpngw_tunnel_child_sas{connection=\"vpc-prod\",tunnel=\"tun1\"} 1",
        "# TYPE vpngw_tunnel_bytes_total counter",
        "vpngw_tunnel_bytes_total{connection=\"vpc-prod\",tunnel=\"tun1\",direction=\"in\"} 1000",
        "vpngw_tunnel_bytes_total{connection=\"vpc-prod\",tunnel=\"tun1\",direction=\"out\"} 2000",
        "vpngw_tunnel_packets_total{connection=\"vpc-prod\",tunnel=\"tun1\",direction=\"out\"} 20",
        "vpngw_tunnel_drops_total{connection=\"vpc-prod\",tunnel=\"tun1\",reason=\"replayed\"} 3",
        "vpngw_tunnel_ike_events_total{connection=\"vpc-prod\",tunnel=\"tun1\",event=\"retransmits\"} 2",
        "vpngw_dataplane_total{counter=\"ecn_dropped\"} 1",
        "vpngw_dataplane_total{counter=\"no_route\"} 5",
        "vpngw_bgp_session_established{tunnel=\"tun1\",neighbor=\"169.254.10.1\",peer_asn=\"65000\"} 1",
        "vpngw_bgp_session_uptime_seconds{tunnel=\"tun1\",neighbor=\"169.254.10.1\",peer_asn=\"65000\"} 42",
        "vpngw_bgp_prefixes_accepted{tunnel=\"tun1\",neighbor=\"169.254.10.1\",peer_asn=\"65000\"} 2",
        "vpngw_bgp_messages_total{tunnel=\"tun1\",neighbor=\"169.254.10.1\",peer_asn=\"65000\",direction=\"out\"} 8",
        "vpngw_bgp_established_transitions_total{tunnel=\"tun1\",neighbor=\"169.254.10.1\",peer_asn=\"65000\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
    // Every family has its HELP and TYPE once, and every sample line is `name{...} value`.
    let types = text.lines().filter(|l| l.starts_with("# TYPE")).count();
    let helps = text.lines().filter(|l| l.starts_with("# HELP")).count();
    assert_eq!(types, helps);
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let value = l.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "{l}");
        assert!(l.starts_with("vpngw_"), "{l}");
    }
}

#[test]
fn request_lines() {
    assert_eq!(
        request_line(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
        Some(("GET", "/metrics"))
    );
    assert_eq!(
        request_line(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
        Some(("GET", "/metrics"))
    );
    assert_eq!(
        request_line(b"POST /metrics HTTP/1.1\r\n\r\n"),
        Some(("POST", "/metrics"))
    );
    for bad in [
        &b"\xff\xfe\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"GET / SPDY/3\r\n\r\n",
        b"",
    ] {
        assert_eq!(request_line(bad), None, "{bad:?}");
    }
}

/// A main loop that answers Status and Bgp with the fixtures.
fn fake_daemon() -> mpsc::Sender<Call> {
    let (tx, mut rx) = mpsc::channel::<Call>(4);
    tokio::spawn(async move {
        while let Some((req, reply)) = rx.recv().await {
            let data = match req {
                Request::Status => serde_json::to_value(status()).unwrap(),
                Request::Bgp => serde_json::to_value(bgp()).unwrap(),
                _ => json!(null),
            };
            let _ = reply.send(Response::ok(data));
        }
    });
    tx
}

/// Sends `request` and reads the answer; a connection the server cuts (reset while we
/// still write) reads as what arrived before.
async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(request).await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn serves_metrics_and_refuses_everything_else() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, fake_daemon()));

    let ok = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: gw\r\n\r\n").await;
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert!(
        ok.contains("Content-Type: text/plain; version=0.0.4"),
        "{ok}"
    );
    let (head, body) = ok.split_once("\r\n\r\n").unwrap();
    assert!(
        head.contains(&format!("Content-Length: {}", body.len())),
        "{head}"
    );
    assert!(body.contains("vpngw_tunnel_up{connection=\"vpc-prod\",tunnel=\"tun1\"} 1"));

    let missing = exchange(addr, b"GET / HTTP/1.1\r\n\r\n").await;
    assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
    let post = exchange(addr, b"POST /metrics HTTP/1.1\r\n\r\n").await;
    assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
    let junk = exchange(addr, b"\x16\x03\x01 hello\r\n\r\n").await;
    assert!(junk.starts_with("HTTP/1.1 400 "), "{junk}");
    // An endless head is cut off without an answer.
    let long = exchange(addr, &[b'a'; MAX_HEAD + 2048]).await;
    assert!(long.is_empty(), "{long}");
}

#[tokio::test]
async fn a_silent_client_is_dropped_and_a_gone_daemon_is_a_503() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (calls, rx) = mpsc::channel::<Call>(1);
    drop(rx);
    let server = tokio::spawn(async move {
        for _ in 0..2 {
            let (stream, _) = listener.accept().await.unwrap();
            client(stream, calls.clone(), Duration::from_millis(100)).await;
        }
    });
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut out = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut out))
        .await
        .expect("closed after the read timeout")
        .unwrap();
    assert_eq!(n, 0);
    let gone = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
    assert!(gone.starts_with("HTTP/1.1 503 "), "{gone}");
    assert!(gone.ends_with("daemon shutting down\n"), "{gone}");
    server.await.unwrap();
}

#[tokio::test]
async fn connections_beyond_the_limit_are_turned_away_and_served_again_later() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_with(
        listener,
        fake_daemon(),
        2,
        Duration::from_millis(300),
    ));
    // Two silent clients hold both slots until their read timeout.
    let _a = TcpStream::connect(addr).await.unwrap();
    let _b = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let busy = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
    assert!(busy.starts_with("HTTP/1.1 503 "), "{busy}");
    // Their slots come back once they are dropped.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ok = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
    assert!(ok.starts_with("HTTP/1.1 200 "), "{ok}");
}
