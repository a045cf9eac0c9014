//! Start-up and the main loop.

use super::control::{self, Call, SocketFile};
use super::ike_config::{ike_config, IkeConfigError};
use super::metrics;
use super::state::Daemon;
use super::tunnels::TunnelCtl;
use crate::config::{Config, ConfigError};
use crate::dataplane::{ike_queue, Shared, TunnelPath, UnderlaySockets, Workers};
use crate::routing::{Rib, RoutingTable, TunnelId};
use crate::sys::{RouteManager, SysError, Tun, TunConfig};
use ipnet::IpNet;
use rand_core::OsRng;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub config: PathBuf,
    /// Overrides the config's `control_socket`.
    pub socket: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{}", .0.lines().join("\n"))]
    Config(#[from] ConfigError),
    #[error("{0}")]
    IkeConfig(#[from] IkeConfigError),
    #[error("{0}")]
    Sys(#[from] SysError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("dataplane: {0}")]
    Dataplane(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DaemonError {
    let what = what.into();
    move |source| DaemonError::Io { what, source }
}

/// How often NAT keepalives go out on each UP tunnel (RFC 3948 suggests 20 s).
const KEEPALIVE: Duration = Duration::from_secs(20);
/// Shortest sleep of the main loop, so that a timer stuck in the past cannot spin it.
const MIN_SLEEP: Duration = Duration::from_millis(20);
/// How long shutdown waits for the peers to answer our DELETEs.
const DELETE_GRACE: Duration = Duration::from_millis(1500);

pub fn run(opts: RunOptions) -> Result<(), DaemonError> {
    let config = Config::load(&opts.config)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io("tokio runtime"))?;
    rt.block_on(main_loop(config, opts))
}

async fn main_loop(config: Config, opts: RunOptions) -> Result<(), DaemonError> {
    // Refuse a config the IKE engine cannot run before touching the system.
    let mut ike_cfgs = Vec::new();
    for c in &config.connections {
        for t in &c.tunnels {
            ike_cfgs.push(ike_config(t)?);
        }
    }
    let all: Vec<(&str, &crate::config::Tunnel)> = config
        .connections
        .iter()
        .flat_map(|c| c.tunnels.iter().map(move |t| (c.name.as_str(), t)))
        .collect();
    let mtu = all.iter().map(|(_, t)| t.mtu).max().unwrap_or(1400);
    let workers = match config.workers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let tun = Tun::create(&TunConfig {
        name: config.tun_name.clone(),
        mtu,
        addresses: Vec::new(),
        queues: workers,
    })?;
    tracing::info!(
        workers = tun.queues(),
        offload = tun.offload(),
        "TUN device open"
    );
    let mut kroutes = RouteManager::new()?;
    for (_, t) in &all {
        let net = IpNet::new(t.inner.local, t.inner.prefix_len).map_err(|e| DaemonError::Io {
            what: format!("tunnel {} inner address", t.name),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
        })?;
        kroutes.add_address(tun.index(), net)?;
    }
    let locals: BTreeSet<_> = all.iter().map(|(_, t)| t.local_address).collect();
    let sockets = UnderlaySockets::bind(&locals, tun.queues()).map_err(io("underlay sockets"))?;
    let mut paths = Vec::new();
    for (_, t) in &all {
        paths.push(Arc::new(
            TunnelPath::new(&t.name, t.local_address, t.mtu, t.mss_clamp, t.inner.peer)
                .with_qos(t.qos),
        ));
    }
    let tun_index = tun.index();
    let shared = Arc::new(
        Shared::new(tun, sockets, RoutingTable::new(), paths.clone())
            .map_err(io("dataplane stop event"))?,
    );
    let now = Instant::now();
    let mut tunnels = Vec::new();
    for (i, ((conn, t), cfg)) in all.iter().zip(ike_cfgs).enumerate() {
        let engine = ike::Tunnel::new(cfg, now, &mut OsRng).map_err(|e| IkeConfigError::Ike {
            tunnel: t.name.clone(),
            source: e,
        })?;
        let id = TunnelId(u16::try_from(i).unwrap_or(u16::MAX));
        let path = paths.get(i).cloned().unwrap_or_else(|| {
            Arc::new(
                TunnelPath::new(&t.name, t.local_address, t.mtu, t.mss_clamp, t.inner.peer)
                    .with_qos(t.qos),
            )
        });
        tunnels.push(TunnelCtl::new(id, conn, (*t).clone(), engine, path));
    }
    let mut daemon = Daemon::new(
        opts.config.clone(),
        config.clone(),
        tunnels,
        Rib::new(),
        shared.clone(),
        kroutes,
        tun_index,
    );
    daemon.install_routes()?;
    let (speaker, bgp_changes) =
        crate::bgp_speaker::BgpSpeaker::new().map_err(|e| DaemonError::Io {
            what: "bgp speaker".into(),
            source: std::io::Error::other(e),
        })?;
    daemon.attach_bgp(speaker, bgp_changes);

    let (ike_tx, mut ike_rx) = ike_queue();
    let workers = Workers::start(shared.clone(), ike_tx).map_err(io("worker threads"))?;
    let socket_path = opts
        .socket
        .clone()
        .unwrap_or_else(|| config.control_socket.clone());
    let listener = control::bind(&socket_path)
        .map_err(io(format!("control socket {}", socket_path.display())))?;
    let _socket_file = SocketFile(socket_path.clone());
    let (call_tx, mut call_rx) = mpsc::channel::<Call>(16);
    if let Some(addr) = config.metrics_listen {
        let metrics = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(io(format!("metrics listener {addr}")))?;
        tokio::spawn(metrics::serve(metrics, call_tx.clone()));
        tracing::info!(%addr, "Prometheus metrics at http://{addr}/metrics");
    }
    tokio::spawn(control::serve(listener, call_tx));
    let mut sigterm = signal(SignalKind::terminate()).map_err(io("SIGTERM handler"))?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(io("SIGINT handler"))?;
    tracing::info!(tun = %config.tun_name, socket = %socket_path.display(), tunnels = daemon.tunnel_count(), "vpngw running");

    let mut next_keepalive = Instant::now() + KEEPALIVE;
    let mut failed = None;
    loop {
        daemon.drain();
        let now = Instant::now();
        let deadline = daemon
            .next_timeout()
            .map_or(next_keepalive, |t| t.min(next_keepalive))
            .max(now + MIN_SLEEP);
        tokio::select! {
            Some(dg) = ike_rx.recv() => daemon.on_ike(Instant::now(), &dg),
            () = shared.sa_events.ready() => daemon.on_sa_events(Instant::now()),
            event = daemon.next_bgp_event() => daemon.on_bgp_event(event, Instant::now()),
            Some((req, reply)) = call_rx.recv() => daemon.handle(req, reply, Instant::now()),
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            reason = shared.failure.wait() => {
                failed = Some(reason);
                break;
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                let now = Instant::now();
                daemon.on_timeouts(now);
                if now >= next_keepalive {
                    daemon.send_keepalives();
                    next_keepalive = now + KEEPALIVE;
                }
            }
        }
    }

    tracing::info!("shutting down: ending BGP sessions");
    daemon.leave_all(Instant::now());
    // Each leaving tunnel's deadline (at most `GOODBYE_MAX` away) is among the timeouts.
    while daemon.leaving() {
        daemon.drain();
        let Some(wake) = daemon.next_timeout() else {
            break;
        };
        let wake = wake.max(Instant::now() + MIN_SLEEP);
        tokio::select! {
            Some(dg) = ike_rx.recv() => daemon.on_ike(Instant::now(), &dg),
            event = daemon.next_bgp_event() => daemon.on_bgp_event(event, Instant::now()),
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {
                daemon.on_timeouts(Instant::now());
            }
        }
    }
    tracing::info!("shutting down: deleting IKE SAs");
    daemon.delete_all(Instant::now());
    daemon.drain();
    let grace = tokio::time::Instant::now() + DELETE_GRACE;
    while daemon.awaiting_deletes() {
        tokio::select! {
            Some(dg) = ike_rx.recv() => { daemon.on_ike(Instant::now(), &dg); daemon.drain(); }
            _ = tokio::time::sleep_until(grace) => break,
        }
    }
    workers.stop();
    daemon.finish();
    if let Some(reason) = failed {
        return Err(DaemonError::Dataplane(reason));
    }
    tracing::info!("stopped");
    Ok(())
}
