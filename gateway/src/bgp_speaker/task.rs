//! The tokio task that drives one `bgp::Session` over TCP.
//!
//! It listens on the tunnel's local inner address and dials the peer's, and holds up to
//! two connections, one we dialed and one the peer did: when both speakers dial at once
//! the session keeps both until it has resolved the collision (RFC 4271 section 6.8) and
//! tells which one to close. After every input it drains the session: bytes to each
//! socket first, then events (so the NOTIFICATION that explains a close is written
//! before the close).

use std::future::{pending, Future};
use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgp::{Direction, Ipv4Prefix, Session, SessionEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc::UnboundedReceiver;

use super::shared::Shared;
use super::SessionSpec;

/// A write that makes no progress this long means the peer is gone (the hold timer
/// cannot fire while we wait on the socket).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to give an outgoing connection attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Retry binding the listener this often (the inner address may not be up yet).
const REBIND_INTERVAL: Duration = Duration::from_secs(1);
/// After our NOTIFICATION and FIN, wait this long for the peer's FIN.
const CLOSE_LINGER: Duration = Duration::from_millis(500);
/// The largest BGP message is 4096 bytes; read a few at a time.
const READ_BUF: usize = 16 * 1024;

pub(crate) enum Command {
    Stop,
    Advertise(Vec<Ipv4Prefix>),
}

type Dial = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

/// One TCP connection to the peer and its read buffer (the session keeps its framing).
struct Link {
    stream: TcpStream,
    buf: Box<[u8]>,
}

impl Link {
    fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: vec![0u8; READ_BUF].into_boxed_slice(),
        }
    }
}

pub(crate) struct SessionTask {
    spec: SessionSpec,
    session: Session,
    shared: Arc<Shared>,
    commands: UnboundedReceiver<Command>,
    listener: Option<TcpListener>,
    next_bind: Instant,
    /// The connection we dialed and the one the peer did; at most one of each.
    outbound: Option<Link>,
    inbound: Option<Link>,
    dial: Option<Dial>,
    strangers: Strangers,
}

/// Connections from addresses other than the peer's, closed at once; logged on the first
/// and then at most every `STRANGER_LOG_EVERY` with the count, so a connection flood from
/// inside the tunnel does not flood the log too.
#[derive(Default)]
struct Strangers {
    unreported: u64,
    logged: Option<Instant>,
}

const STRANGER_LOG_EVERY: Duration = Duration::from_secs(10);

impl Strangers {
    /// Counts one; the number to report if a log line is due.
    fn refused(&mut self, now: Instant) -> Option<u64> {
        self.unreported += 1;
        if self.logged.is_some_and(|t| now < t + STRANGER_LOG_EVERY) {
            return None;
        }
        self.logged = Some(now);
        Some(std::mem::take(&mut self.unreported))
    }
}

enum Input {
    Command(Option<Command>),
    Accepted(io::Result<(TcpStream, SocketAddr)>),
    Dialed(io::Result<TcpStream>),
    Read(Direction, io::Result<usize>),
    Timer,
    Rebind,
}

impl SessionTask {
    pub fn new(
        spec: SessionSpec,
        session: Session,
        shared: Arc<Shared>,
        commands: UnboundedReceiver<Command>,
    ) -> Self {
        Self {
            spec,
            session,
            shared,
            commands,
            listener: None,
            next_bind: Instant::now(),
            outbound: None,
            inbound: None,
            dial: None,
            strangers: Strangers::default(),
        }
    }

    pub async fn run(mut self) {
        self.bind();
        self.session.start(Instant::now());
        self.drain().await;
        loop {
            let input = self.next_input().await;
            let now = Instant::now();
            let mut stopping = false;
            match input {
                Input::Command(Some(Command::Advertise(prefixes))) => {
                    self.session.set_local_prefixes(now, &prefixes)
                }
                Input::Command(Some(Command::Stop) | None) => {
                    // The tunnel's next session may start at once: the port is its.
                    self.listener = None;
                    self.session.stop(now);
                    stopping = true;
                }
                Input::Accepted(r) => self.accepted(now, r),
                Input::Dialed(r) => self.dialed(now, r),
                Input::Read(direction, Ok(n)) if n > 0 => {
                    let link = match direction {
                        Direction::Outbound => self.outbound.as_ref(),
                        Direction::Inbound => self.inbound.as_ref(),
                    };
                    if let Some(bytes) = link.and_then(|l| l.buf.get(..n)) {
                        self.session.handle_bytes(now, direction, bytes);
                    }
                }
                Input::Read(direction, r) => {
                    if let Err(e) = r {
                        tracing::info!(tunnel = %self.spec.name, %direction, error = %e, "bgp connection error");
                    }
                    *self.slot(direction) = None;
                    self.session.handle_disconnected(now, direction);
                }
                Input::Timer => self.session.handle_timeout(now),
                Input::Rebind => self.bind(),
            }
            self.drain().await;
            if stopping {
                for direction in Direction::BOTH {
                    if let Some(link) = self.slot(direction).take() {
                        close(link.stream).await;
                    }
                }
                self.dial = None;
                break;
            }
        }
        self.shared
            .set_status(&self.spec, self.session.stats(), false);
    }

    fn slot(&mut self, direction: Direction) -> &mut Option<Link> {
        match direction {
            Direction::Outbound => &mut self.outbound,
            Direction::Inbound => &mut self.inbound,
        }
    }

    fn link(&self, direction: Direction) -> Option<&Link> {
        match direction {
            Direction::Outbound => self.outbound.as_ref(),
            Direction::Inbound => self.inbound.as_ref(),
        }
    }

    /// Waits for whichever input comes first.
    async fn next_input(&mut self) -> Input {
        let timer = self.session.poll_timeout();
        let rebind = self.listener.is_none().then_some(self.next_bind);
        tokio::select! {
            c = self.commands.recv() => Input::Command(c),
            r = accept(self.listener.as_ref()) => Input::Accepted(r),
            r = dial(self.dial.as_mut()) => {
                self.dial = None;
                Input::Dialed(r)
            }
            r = read(self.outbound.as_mut()) => Input::Read(Direction::Outbound, r),
            r = read(self.inbound.as_mut()) => Input::Read(Direction::Inbound, r),
            () = sleep_until(timer) => Input::Timer,
            () = sleep_until(rebind) => Input::Rebind,
        }
    }

    fn bind(&mut self) {
        let addr = SocketAddr::V4(SocketAddrV4::new(self.spec.local_address(), self.spec.port));
        match listen(addr) {
            Ok(l) => {
                tracing::debug!(tunnel = %self.spec.name, %addr, "bgp listening");
                self.listener = Some(l);
            }
            Err(e) => {
                tracing::debug!(tunnel = %self.spec.name, %addr, error = %e, "bgp listen failed, will retry");
                self.next_bind = Instant::now() + REBIND_INTERVAL;
            }
        }
    }

    fn accepted(&mut self, now: Instant, r: io::Result<(TcpStream, SocketAddr)>) {
        let (stream, from) = match r {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(tunnel = %self.spec.name, error = %e, "bgp accept failed");
                return;
            }
        };
        if from.ip() != self.spec.peer_address() {
            if let Some(count) = self.strangers.refused(now) {
                tracing::info!(tunnel = %self.spec.name, %from, count, "bgp connections from strangers closed");
            }
            return;
        }
        self.connected(now, Direction::Inbound, stream);
    }

    fn dialed(&mut self, now: Instant, r: io::Result<TcpStream>) {
        match r {
            Ok(stream) => self.connected(now, Direction::Outbound, stream),
            Err(e) => {
                tracing::debug!(tunnel = %self.spec.name, error = %e, "bgp connect failed");
                self.session.handle_disconnected(now, Direction::Outbound);
            }
        }
    }

    /// Hands a new connection to the session; a refused one gets the session's
    /// NOTIFICATION (Cease/7 on a collision) and is closed in the background.
    fn connected(&mut self, now: Instant, direction: Direction, stream: TcpStream) {
        match self.session.handle_connected(now, direction) {
            Ok(()) => *self.slot(direction) = Some(Link::new(stream)),
            Err(e) => {
                tracing::debug!(tunnel = %self.spec.name, %direction, error = %e, "bgp connection refused");
                tokio::spawn(farewell(stream, e.farewell()));
            }
        }
    }

    /// Writes what the session wants sent and acts on its events, until it is quiet.
    async fn drain(&mut self) {
        loop {
            let mut busy = false;
            for direction in Direction::BOTH {
                while let Some(bytes) = self.session.poll_transmit(direction) {
                    busy = true;
                    self.write(direction, &bytes).await;
                }
            }
            // All of it into the Loc-RIB at once (one batch of route changes for the
            // prefixes of a whole read), then acted on one by one.
            let events: Vec<SessionEvent> =
                std::iter::from_fn(|| self.session.poll_event()).collect();
            if !events.is_empty() {
                busy = true;
                self.shared.apply(&self.spec, &events);
                for event in events {
                    self.act(event).await;
                }
            }
            if !busy {
                break;
            }
        }
        self.shared
            .set_status(&self.spec, self.session.stats(), true);
    }

    async fn act(&mut self, event: SessionEvent) {
        let tunnel = &self.spec.name;
        match event {
            SessionEvent::Connect => {
                let local = SocketAddr::V4(SocketAddrV4::new(self.spec.local_address(), 0));
                let peer =
                    SocketAddr::V4(SocketAddrV4::new(self.spec.peer_address(), self.spec.port));
                self.dial = Some(Box::pin(connect(local, peer)));
            }
            SessionEvent::Disconnect(direction) => {
                if direction == Direction::Outbound {
                    self.dial = None;
                }
                // Anything still queued (the NOTIFICATION) goes out before the close.
                while let Some(bytes) = self.session.poll_transmit(direction) {
                    self.write(direction, &bytes).await;
                }
                let Some(link) = self.slot(direction).take() else {
                    return;
                };
                if self.link(direction.other()).is_some() {
                    // The loser of a collision: the other connection carries on meanwhile.
                    tokio::spawn(close(link.stream));
                } else {
                    close(link.stream).await;
                }
            }
            SessionEvent::StateChanged { from, to } => {
                tracing::debug!(%tunnel, %from, %to, "bgp state")
            }
            SessionEvent::Established {
                peer_asn,
                peer_router_id,
                hold_time,
                ..
            } => {
                tracing::info!(%tunnel, peer_asn, %peer_router_id, hold_time, "bgp session established")
            }
            SessionEvent::Down { reason } => {
                tracing::warn!(%tunnel, %reason, "bgp session down")
            }
            SessionEvent::RouteLearned { .. } | SessionEvent::RouteWithdrawn { .. } => {}
        }
    }

    async fn write(&mut self, direction: Direction, bytes: &[u8]) {
        let Some(link) = self.slot(direction).as_mut() else {
            return;
        };
        let result = tokio::time::timeout(WRITE_TIMEOUT, link.stream.write_all(bytes)).await;
        let error = match result {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e,
            Err(_) => io::Error::new(io::ErrorKind::TimedOut, "peer stopped reading"),
        };
        tracing::info!(tunnel = %self.spec.name, %direction, %error, "bgp write failed");
        *self.slot(direction) = None;
        self.session.handle_disconnected(Instant::now(), direction);
    }
}

/// Half-closes and waits briefly for the peer's FIN, so our last NOTIFICATION is read
/// rather than lost to a reset.
async fn close(mut stream: TcpStream) {
    let linger = async {
        let _ = stream.shutdown().await;
        let mut sink = [0u8; 512];
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    };
    let _ = tokio::time::timeout(CLOSE_LINGER, linger).await;
}

/// Writes a refused connection's NOTIFICATION, if any, then closes it.
async fn farewell(mut stream: TcpStream, bytes: Option<Vec<u8>>) {
    if let Some(b) = bytes {
        if tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&b))
            .await
            .is_err()
        {
            return;
        }
    }
    close(stream).await;
}

fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(8)
}

async fn connect(local: SocketAddr, peer: SocketAddr) -> io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(local)?;
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(peer))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

async fn accept(listener: Option<&TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => pending().await,
    }
}

async fn dial(d: Option<&mut Dial>) -> io::Result<TcpStream> {
    match d {
        Some(f) => f.await,
        None => pending().await,
    }
}

async fn read(link: Option<&mut Link>) -> io::Result<usize> {
    match link {
        Some(l) => l.stream.read(&mut l.buf).await,
        None => pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strangers_are_logged_first_then_every_ten_seconds_with_the_count() {
        let t0 = Instant::now();
        let mut s = Strangers::default();
        assert_eq!(s.refused(t0), Some(1));
        for _ in 0..99 {
            assert_eq!(s.refused(t0 + Duration::from_secs(1)), None);
        }
        assert_eq!(s.refused(t0 + STRANGER_LOG_EVERY), Some(100));
    }
}
