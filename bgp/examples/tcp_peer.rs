//! A minimal blocking TCP shell around `Session`, for trying the core against a real
//! BGP speaker (e.g. BIRD in a network namespace). Not the gateway's shell.
//!
//! usage: tcp_peer LOCAL_ADDR PEER_ADDR LOCAL_ASN PEER_ASN SECONDS [PREFIX...]
//! Connects to PEER_ADDR:179, runs the session for SECONDS, prints every event,
//! requests a route refresh half way, then stops with Cease/Administrative Shutdown.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bgp::{Direction, Ipv4Prefix, Rib, Session, SessionConfig, SessionEvent, SessionId};

/// This shell only dials out.
const OUT: Direction = Direction::Outbound;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        return Err(
            "usage: tcp_peer LOCAL_ADDR PEER_ADDR LOCAL_ASN PEER_ASN SECONDS [PREFIX...]".into(),
        );
    }
    let local: Ipv4Addr = args[1].parse()?;
    let peer: Ipv4Addr = args[2].parse()?;
    let mut config = SessionConfig::new(args[3].parse()?, local, local, peer);
    config.peer_asn = args[4].parse()?;
    config.hold_time = 9;
    config.connect_retry_time = Duration::from_secs(3);
    config.local_prefixes = args[6..]
        .iter()
        .map(|p| p.parse::<Ipv4Prefix>())
        .collect::<Result<_, _>>()?;
    let run_for = Duration::from_secs(args[5].parse()?);

    let start = Instant::now();
    let mut session = Session::new(config)?;
    let mut rib = Rib::new();
    let mut stream: Option<TcpStream> = None;
    let mut refreshed = false;
    let mut stopped = false;
    session.start(start);
    let mut buf = [0u8; 4096];
    loop {
        let now = Instant::now();
        if now >= start + run_for && !stopped {
            session.stop(now);
            stopped = true;
        }
        if !refreshed && now >= start + run_for / 2 {
            refreshed = session.request_route_refresh();
            println!("{:>6.2}s route refresh requested: {refreshed}", secs(start));
        }
        if session.poll_timeout().is_some_and(|t| now >= t) {
            session.handle_timeout(now);
        }
        if let Some(s) = stream.as_mut() {
            match s.read(&mut buf) {
                Ok(0) => {
                    stream = None;
                    session.handle_disconnected(now, OUT);
                }
                Ok(n) => session.handle_bytes(now, OUT, &buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => {
                    stream = None;
                    session.handle_disconnected(now, OUT);
                }
            }
        }
        while let Some(bytes) = session.poll_transmit(OUT) {
            if let Some(s) = stream.as_mut() {
                s.write_all(&bytes)?;
            }
        }
        while let Some(ev) = session.poll_event() {
            rib.apply(SessionId(0), &ev);
            println!("{:>6.2}s {ev:?}", secs(start));
            match ev {
                SessionEvent::Connect => {
                    let addr = SocketAddr::from((peer, 179));
                    match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                        Ok(s) => {
                            s.set_read_timeout(Some(Duration::from_millis(50)))?;
                            stream = Some(s);
                            if session.handle_connected(Instant::now(), OUT).is_err() {
                                stream = None;
                            }
                        }
                        Err(e) => {
                            println!("connect: {e}");
                            session.handle_disconnected(Instant::now(), OUT);
                        }
                    }
                }
                SessionEvent::Disconnect(_) => stream = None,
                _ => {}
            }
        }
        while let Some(change) = rib.poll_change() {
            println!("{:>6.2}s loc-rib {change:?}", secs(start));
        }
        if stopped && session.poll_event().is_none() {
            break;
        }
        if stream.is_none() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let st = session.stats();
    println!(
        "final: state {} received {} accepted {} sent {} msgs, received {} msgs, last error {:?}",
        st.state,
        st.prefixes_received,
        st.prefixes_accepted,
        st.counters.messages_sent,
        st.counters.messages_received,
        st.last_error
    );
    Ok(())
}

fn secs(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}
