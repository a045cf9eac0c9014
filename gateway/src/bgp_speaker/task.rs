//! The tokio task that drives one `bgp::Session` over TCP.
//!
//! It listens on the tunnel's local inner address and dials the peer's, keeps at most one
//! connection (a second one, inbound or outbound, is closed at once), and after every
//! input drains the session: bytes to the socket first, then events (so the NOTIFICATION
//! that explains a close is written before the close).

use std::future::{pending, Future};
use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgp::{Ipv4Prefix, Session, SessionEvent};
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

pub(crate) struct SessionTask {
    spec: SessionSpec,
    session: Session,
    shared: Arc<Shared>,
    commands: UnboundedReceiver<Command>,
    listener: Option<TcpListener>,
    next_bind: Instant,
    stream: Option<TcpStream>,
    dial: Option<Dial>,
}

enum Input {
    Command(Option<Command>),
    Accepted(io::Result<(TcpStream, SocketAddr)>),
    Dialed(io::Result<TcpStream>),
    Read(io::Result<usize>),
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
            stream: None,
            dial: None,
        }
    }

    pub async fn run(mut self) {
        self.bind();
        self.session.start(Instant::now());
        self.drain().await;
        let mut buf = vec![0u8; READ_BUF];
        loop {
            let input = self.next_input(&mut buf).await;
            let now = Instant::now();
            let mut stopping = false;
            match input {
                Input::Command(Some(Command::Advertise(prefixes))) => {
                    self.session.set_local_prefixes(now, &prefixes)
                }
                Input::Command(Some(Command::Stop) | None) => {
                    self.session.stop(now);
                    stopping = true;
                }
                Input::Accepted(r) => self.accepted(now, r),
                Input::Dialed(r) => self.dialed(now, r),
                Input::Read(Ok(n)) if n > 0 => {
                    if let Some(bytes) = buf.get(..n) {
                        self.session.handle_bytes(now, bytes);
                    }
                }
                Input::Read(r) => {
                    if let Err(e) = r {
                        tracing::info!(tunnel = %self.spec.name, error = %e, "bgp connection error");
                    }
                    self.stream = None;
                    self.session.handle_disconnected(now);
                }
                Input::Timer => self.session.handle_timeout(now),
                Input::Rebind => self.bind(),
            }
            self.drain().await;
            if stopping {
                self.close().await;
                self.dial = None;
                break;
            }
        }
        self.shared
            .set_status(&self.spec, self.session.stats(), false);
    }

    /// Waits for whichever input comes first.
    async fn next_input(&mut self, buf: &mut [u8]) -> Input {
        let timer = self.session.poll_timeout();
        let rebind = self.listener.is_none().then_some(self.next_bind);
        tokio::select! {
            c = self.commands.recv() => Input::Command(c),
            r = accept(self.listener.as_ref()) => Input::Accepted(r),
            r = dial(self.dial.as_mut()) => {
                self.dial = None;
                Input::Dialed(r)
            }
            r = read(self.stream.as_mut(), buf) => Input::Read(r),
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
            tracing::info!(tunnel = %self.spec.name, %from, "bgp connection from a stranger closed");
            return;
        }
        if self.stream.is_some() {
            tracing::debug!(tunnel = %self.spec.name, %from, "second bgp connection closed");
            return;
        }
        match self.session.handle_connected(now) {
            Ok(()) => {
                self.stream = Some(stream);
                // Our own attempt, if any, would be refused anyway.
                self.dial = None;
            }
            Err(e) => {
                tracing::debug!(tunnel = %self.spec.name, error = %e, "bgp connection refused")
            }
        }
    }

    fn dialed(&mut self, now: Instant, r: io::Result<TcpStream>) {
        match r {
            Ok(stream) if self.stream.is_none() => match self.session.handle_connected(now) {
                Ok(()) => self.stream = Some(stream),
                Err(e) => {
                    tracing::debug!(tunnel = %self.spec.name, error = %e, "bgp connection refused")
                }
            },
            Ok(_) => tracing::debug!(tunnel = %self.spec.name, "second bgp connection closed"),
            Err(e) => {
                tracing::debug!(tunnel = %self.spec.name, error = %e, "bgp connect failed");
                if self.stream.is_none() {
                    self.session.handle_disconnected(now);
                }
            }
        }
    }

    /// Writes what the session wants sent and acts on its events, until it is quiet.
    async fn drain(&mut self) {
        loop {
            let mut busy = false;
            while let Some(bytes) = self.session.poll_transmit() {
                busy = true;
                self.write(&bytes).await;
            }
            while let Some(event) = self.session.poll_event() {
                busy = true;
                self.shared.apply(self.spec.tunnel, &event);
                self.act(event).await;
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
            SessionEvent::Disconnect => {
                // Anything still queued (the NOTIFICATION) goes out before the close.
                while let Some(bytes) = self.session.poll_transmit() {
                    self.write(&bytes).await;
                }
                self.close().await;
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

    async fn write(&mut self, bytes: &[u8]) {
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        let result = tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(bytes)).await;
        let error = match result {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e,
            Err(_) => io::Error::new(io::ErrorKind::TimedOut, "peer stopped reading"),
        };
        tracing::info!(tunnel = %self.spec.name, %error, "bgp write failed");
        self.stream = None;
        self.session.handle_disconnected(Instant::now());
    }

    /// Half-closes and waits briefly for the peer's FIN, so our last NOTIFICATION is
    /// read rather than lost to a reset.
    async fn close(&mut self) {
        let Some(mut stream) = self.stream.take() else {
            return;
        };
        let linger = async {
            let _ = stream.shutdown().await;
            let mut sink = [0u8; 512];
            while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
        };
        let _ = tokio::time::timeout(CLOSE_LINGER, linger).await;
    }
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

async fn read(stream: Option<&mut TcpStream>, buf: &mut [u8]) -> io::Result<usize> {
    match stream {
        Some(s) => s.read(buf).await,
        None => pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => pending().await,
    }
}
