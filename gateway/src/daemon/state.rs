//! The daemon's control-plane state and its event handlers (IKE datagrams, timers,
//! control requests). Owned by the main loop; never touched by the dataplane threads.

use super::ike_config::ike_config;
use super::leaving::{Leavings, Then};
use super::status::{Request, Response, RouteStatus, Routes, Status, TunnelAction};
use super::tunnels::{Transition, TunnelCtl};
use crate::bgp_speaker::{BgpRouteChange, BgpRouteTable, BgpSpeaker, KernelEdit, SessionSpec};
use crate::config::{Config, SelectionMode};
use crate::dataplane::{counters, is_init_request, IkeDatagram, SaEventKind, Shared};
use crate::routing::{Rib, TunnelId};
use crate::sys::{RouteManager, SysError};
use esp::udp_encap::NAT_KEEPALIVE;
use ipnet::IpNet;
use rand_core::OsRng;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::oneshot;

/// What the BGP side has for the main loop.
#[derive(Debug)]
pub enum BgpEvent {
    Change(Vec<BgpRouteChange>),
    /// The tunnel's session has ended, as it was told to (see `leaving`).
    Goodbye(TunnelId),
}

#[derive(Debug)]
pub struct Daemon {
    config_path: PathBuf,
    config: Config,
    tunnels: Vec<TunnelCtl>,
    rib: Rib,
    shared: Arc<Shared>,
    kroutes: RouteManager,
    tun_index: u32,
    /// One eBGP session per UP tunnel of a connection with a `bgp` section.
    bgp: Option<BgpSpeaker>,
    /// The route changes the BGP sessions make, in order.
    bgp_changes: Option<UnboundedReceiver<Vec<BgpRouteChange>>>,
    bgp_routes: BgpRouteTable,
    /// Tunnels we take down once their BGP peer has been told.
    leavings: Leavings,
}

impl Daemon {
    pub fn new(
        config_path: PathBuf,
        config: Config,
        tunnels: Vec<TunnelCtl>,
        rib: Rib,
        shared: Arc<Shared>,
        kroutes: RouteManager,
        tun_index: u32,
    ) -> Self {
        let daemon = Daemon {
            config_path,
            config,
            tunnels,
            rib,
            shared,
            kroutes,
            tun_index,
            bgp: None,
            bgp_changes: None,
            bgp_routes: BgpRouteTable::new(),
            leavings: Leavings::default(),
        };
        daemon.publish_peers();
        daemon
    }

    /// Runs BGP sessions from now on (started as tunnels come UP).
    pub fn attach_bgp(
        &mut self,
        speaker: BgpSpeaker,
        changes: UnboundedReceiver<Vec<BgpRouteChange>>,
    ) {
        self.bgp = Some(speaker);
        self.bgp_changes = Some(changes);
    }

    /// The next BGP route change, or a tunnel whose BGP goodbye is over (never, without
    /// BGP).
    pub async fn next_bgp_event(&mut self) -> BgpEvent {
        let changes = async {
            match self.bgp_changes.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(change) = changes => BgpEvent::Change(change),
            Some(id) = self.leavings.next_goodbye() => BgpEvent::Goodbye(id),
            // Both channels closed: there is no more news.
            else => std::future::pending().await,
        }
    }

    pub fn on_bgp_event(&mut self, event: BgpEvent, now: Instant) {
        match event {
            BgpEvent::Change(change) => self.on_bgp(change),
            BgpEvent::Goodbye(id) => self.on_goodbye(id, now),
        }
    }

    /// Tunnel `id` has said goodbye to its BGP peer: down it goes, in a moment.
    fn on_goodbye(&mut self, id: TunnelId, now: Instant) {
        self.leavings.said(id, now);
    }

    /// Whether some tunnel still waits for its BGP goodbye.
    pub fn leaving(&self) -> bool {
        self.leavings.any()
    }

    /// Applies the BGP route changes already made, then publishes the routing table once.
    fn apply_bgp_changes(&mut self) {
        while let Some(batch) = self.bgp_changes.as_mut().and_then(|rx| rx.try_recv().ok()) {
            for change in &batch {
                self.apply_bgp(change);
            }
        }
        self.publish();
    }

    /// Starts (UP) or stops (DOWN) the BGP session over tunnel `id`, if its connection
    /// has a `bgp` section.
    fn bgp_follow(&self, id: TunnelId, up: bool) {
        let Some(speaker) = &self.bgp else { return };
        if up && self.leavings.is_leaving(id) {
            // Its session ended on purpose: the tunnel is on its way down.
            return;
        }
        if !up {
            // The tunnel is down: nothing the session learned carries traffic now.
            speaker.stop_detached(id, true);
            return;
        }
        let Some(t) = self.tunnels.iter().find(|t| t.id == id) else {
            return;
        };
        let Some((index, conn, bgp)) = self
            .config
            .connections
            .iter()
            .enumerate()
            .find(|(_, c)| c.tunnels.iter().any(|x| x.name == t.cfg.name))
            .and_then(|(i, c)| Some((i, c, c.bgp.as_ref()?)))
        else {
            return;
        };
        // ECMP spreads BGP routes too: over the connection's tunnels that learned a
        // prefix at equal cost. Active-standby keeps both directions on one tunnel: the
        // k-th standby advertises our AS k * standby_prepend more times, so the peer
        // prefers the tunnels in their order, and ranks its routes k-th among equals, so
        // that we do too.
        let group =
            (conn.mode == SelectionMode::Ecmp).then(|| u32::try_from(index).unwrap_or(u32::MAX));
        let position = conn
            .tunnels
            .iter()
            .position(|x| x.name == t.cfg.name)
            .unwrap_or(0);
        let standby = conn.mode == SelectionMode::ActiveStandby;
        let spec = SessionSpec::from_config(id, &t.cfg, bgp).map(|mut s| {
            s.multipath_group = group;
            if standby {
                s.rank = u16::try_from(position).unwrap_or(u16::MAX);
                let prepend = position.saturating_mul(usize::from(bgp.standby_prepend));
                s.session.as_path_prepend =
                    u8::try_from(prepend.min(usize::from(bgp::MAX_PREPEND))).unwrap_or(0);
            }
            s
        });
        match spec.and_then(|s| speaker.start(s)) {
            Ok(()) | Err(crate::bgp_speaker::SpeakerError::AlreadyRunning(_)) => {}
            Err(e) => tracing::warn!(tunnel = %t.cfg.name, error = %e, "bgp session not started"),
        }
    }

    /// Best-route changes from BGP (one session event's), and any others already
    /// queued: routing table and kernel routes towards the TUN per change, then one
    /// new FIB for them all.
    fn on_bgp(&mut self, batch: Vec<BgpRouteChange>) {
        for change in &batch {
            self.apply_bgp(change);
        }
        self.apply_bgp_changes();
    }

    fn apply_bgp(&mut self, change: &BgpRouteChange) {
        let edit = match self.bgp_routes.apply(change, &mut self.rib) {
            Ok(edit) => edit,
            Err(e) => {
                tracing::warn!(prefix = %change.prefix(), error = %e, "bgp route not installed");
                return;
            }
        };
        let statics = self.static_prefixes();
        let result = match edit {
            KernelEdit::Add(p) if !statics.contains(&p) => self.kroutes.add(p, self.tun_index, 0),
            KernelEdit::Remove(p) if !statics.contains(&p) => {
                self.kroutes.remove(p, self.tun_index)
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(prefix = %change.prefix(), error = %e, "kernel route for a bgp prefix");
        }
    }

    pub fn tunnel_count(&self) -> usize {
        self.tunnels.len()
    }

    /// Registers tunnels, connected and static routes in the RIB and the static prefixes in
    /// the kernel (towards the TUN device).
    pub fn install_routes(&mut self) -> Result<(), SysError> {
        for c in &self.config.connections {
            for t in &c.tunnels {
                if let Some(ctl) = self.tunnels.iter().find(|x| x.cfg.name == t.name) {
                    self.rib.add_tunnel(ctl.id, c.mode);
                }
            }
        }
        for t in &self.tunnels {
            if let Ok(net) = IpNet::new(t.cfg.inner.local, t.cfg.inner.prefix_len) {
                let _ = self.rib.add_static(net.trunc(), &[t.id]);
            }
        }
        self.load_static_routes();
        for prefix in self.static_prefixes() {
            self.kroutes.add(prefix, self.tun_index, 0)?;
        }
        self.publish();
        Ok(())
    }

    fn static_prefixes(&self) -> Vec<IpNet> {
        let mut v: Vec<IpNet> = self
            .config
            .connections
            .iter()
            .flat_map(|c| c.routes.iter().map(|r| r.prefix.trunc()))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    fn load_static_routes(&mut self) {
        for c in &self.config.connections {
            for r in &c.routes {
                let via: Vec<TunnelId> = r.via.iter().filter_map(|n| self.id_of(n)).collect();
                if let Err(e) = self.rib.add_static(r.prefix.trunc(), &via) {
                    tracing::warn!(prefix = %r.prefix, error = %e, "static route not installed");
                }
            }
        }
    }

    fn id_of(&self, name: &str) -> Option<TunnelId> {
        self.tunnels
            .iter()
            .find(|t| t.cfg.name == name)
            .map(|t| t.id)
    }

    fn publish(&self) {
        self.shared.routing.publish_rib(&self.rib);
    }

    fn set_up(&mut self, id: TunnelId, up: bool) {
        let _ = self.rib.set_tunnel_up(id, up);
        if up {
            self.publish();
            self.bgp_follow(id, true);
            return;
        }
        // The routes the tunnel's BGP session taught us go with it, and another tunnel's
        // take over, in the same table the dataplane sees next: no moment without a route.
        self.bgp_follow(id, false);
        self.apply_bgp_changes();
    }

    pub fn on_ike(&mut self, now: Instant, dg: &IkeDatagram) {
        let Some(t) = self
            .tunnels
            .iter_mut()
            .find(|t| t.cfg.local_address == dg.local.ip() && t.cfg.peer == dg.remote.ip())
        else {
            self.on_unknown_peer(dg);
            return;
        };
        if t.disabled && is_init_request(&dg.bytes, dg.local.port()) {
            tracing::debug!(tunnel = %t.cfg.name, "disabled: IKE_SA_INIT ignored");
            return;
        }
        t.handle_datagram(now, dg.local, dg.remote, &dg.bytes);
    }

    /// IKE from an address no tunnel has: the workers handle those (`KnownPeers`); one
    /// gets here only if a reload changed the tunnels' peers while it was queued.
    fn on_unknown_peer(&mut self, dg: &IkeDatagram) {
        counters::bump(&self.shared.counters.ike_unknown_peer);
        tracing::debug!(local = %dg.local, remote = %dg.remote, "IKE from an unknown peer dropped");
    }

    /// Tells the workers whose IKE the control plane takes: the tunnels' (local, peer).
    pub fn publish_peers(&self) {
        self.shared.known_peers.publish(
            self.tunnels
                .iter()
                .map(|t| (t.cfg.local_address, t.cfg.peer)),
        );
    }

    /// Rekeys the CHILD SAs whose lifetime limits the dataplane reported; follows peers
    /// whose ESP arrives from a new NAT mapping.
    pub fn on_sa_events(&mut self, now: Instant) {
        for ev in self.shared.sa_events.take() {
            let Some(t) = self
                .tunnels
                .iter_mut()
                .find(|t| t.has_sa(ev.spi, ev.outbound))
            else {
                tracing::debug!(spi = format_args!("{:08x}", ev.spi), event = ?ev.event, "dataplane event of an SA already gone");
                continue;
            };
            match ev.event {
                SaEventKind::Lifetime(event) => {
                    t.on_sa_lifetime(now, ev.spi, ev.outbound, event);
                }
                SaEventKind::NewSource(from) => t.on_esp_source(ev.spi, from),
            }
        }
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        self.tunnels
            .iter()
            .flat_map(|t| [t.ike.poll_timeout(), t.next_lingering_expiry()])
            .flatten()
            .chain(self.leavings.next_deadline())
            .min()
    }

    pub fn on_timeouts(&mut self, now: Instant) {
        for t in &mut self.tunnels {
            if t.ike.poll_timeout().is_some_and(|d| d <= now) {
                t.ike.handle_timeout(now, &mut OsRng);
            }
            t.expire_lingering(now, &self.shared);
        }
        for (id, then, said) in self.leavings.due(now) {
            if !said {
                tracing::warn!(
                    tunnel = self.name_of(id),
                    "BGP session did not end in time; taking the tunnel down anyway"
                );
            }
            self.finish_leaving(id, then, now);
        }
        self.leavings.answer_ready();
    }

    /// Carries out every tunnel's pending actions and follows UP/DOWN in the routing table.
    pub fn drain(&mut self) {
        let mut changes = Vec::new();
        for t in &mut self.tunnels {
            if let Some(tr) = t.drain(&self.shared) {
                changes.push((t.id, tr));
            }
        }
        for (id, tr) in changes {
            match tr {
                Transition::Up => self.set_up(id, true),
                Transition::Down => self.set_up(id, false),
                // Its BGP session is gone at the peer: ours would hold the routes until
                // a keepalive drew a reset, and refuse the peer's new connection meanwhile.
                Transition::PeerRestarted => {
                    // Its routes stay until the goodbye is over: the tunnel still carries
                    // them, and the next session learns them again meanwhile.
                    if let Some(speaker) = &self.bgp {
                        speaker.stop_detached(id, false);
                    }
                    self.bgp_follow(id, true);
                }
            }
        }
        // A tunnel that went DOWN drops its outbound SAs only now, with its routes moved.
        for t in &mut self.tunnels {
            t.publish_stale_outbound();
        }
    }

    pub fn send_keepalives(&self) {
        for t in self.tunnels.iter().filter(|t| t.is_up()) {
            if let Some(peer) = t.path.peer.load().as_deref().copied() {
                let local = SocketAddr::new(t.cfg.local_address, 4500);
                let _ = self.shared.sockets.send(local, peer, &NAT_KEEPALIVE);
            }
        }
    }

    /// Answers a control request on `reply`: at once, or for a request that takes tunnels
    /// down, once they are down (after their BGP goodbye).
    pub fn handle(&mut self, req: Request, reply: oneshot::Sender<Response>, now: Instant) {
        let json = |v: Result<serde_json::Value, serde_json::Error>| match v {
            Ok(v) => Response::ok(v),
            Err(e) => Response::err(format!("serialise: {e}")),
        };
        let (response, waits_for) = match req {
            Request::Status => (json(serde_json::to_value(self.status())), Vec::new()),
            Request::Routes => (json(serde_json::to_value(self.routes())), Vec::new()),
            Request::Bgp => (
                json(serde_json::to_value(
                    self.bgp
                        .as_ref()
                        .map(BgpSpeaker::status)
                        .unwrap_or_default(),
                )),
                Vec::new(),
            ),
            Request::Tunnel { action, name } => match self.tunnel_action(action, &name, now) {
                Ok(ids) => (Response::ok(serde_json::json!({ "tunnel": name })), ids),
                Err(e) => (Response::err(e), Vec::new()),
            },
            Request::Reload => match self.reload(now) {
                Ok((changed, ids)) => (
                    Response::ok(serde_json::json!({ "renegotiated": changed })),
                    ids,
                ),
                Err(e) => (Response::err(e), Vec::new()),
            },
        };
        self.leavings.answer_when_down(waits_for, response, reply);
    }

    pub fn status(&self) -> Status {
        let mut dataplane: BTreeMap<String, u64> =
            serde_json::to_value(self.shared.counters.snapshot())
                .ok()
                .and_then(|v| serde_json::from_value(v).ok())
                .unwrap_or_default();
        dataplane.insert("unknown_spi".into(), self.shared.sas.unknown_spi_drops());
        if let Ok(d) = self.shared.tun.queue_drops() {
            dataplane.insert("tun_queue_drops".into(), d);
        }
        dataplane.insert("workers".into(), self.shared.tun.queues() as u64);
        dataplane.insert("tun_offload".into(), u64::from(self.shared.tun.offload()));
        dataplane.insert(
            "tun_udp_offload".into(),
            u64::from(self.shared.tun.udp_offload()),
        );
        Status {
            tunnels: self.tunnels.iter().map(TunnelCtl::status).collect(),
            dataplane,
        }
    }

    pub fn routes(&self) -> Routes {
        let name = |id: TunnelId| {
            self.tunnels
                .iter()
                .find(|t| t.id == id)
                .map(|t| t.cfg.name.clone())
        };
        let active = |via: &[TunnelId], mode: SelectionMode| {
            let up: Vec<String> = via
                .iter()
                .filter(|id| self.tunnels.iter().any(|t| t.id == **id && t.is_up()))
                .filter_map(|id| name(*id))
                .collect();
            match mode {
                SelectionMode::ActiveStandby => up.into_iter().take(1).collect(),
                SelectionMode::Ecmp => up,
            }
        };
        let mut routes = Vec::new();
        for t in &self.tunnels {
            if let Ok(net) = IpNet::new(t.cfg.inner.local, t.cfg.inner.prefix_len) {
                routes.push(RouteStatus {
                    prefix: net.trunc().to_string(),
                    source: "connected".into(),
                    via: vec![t.cfg.name.clone()],
                    active: active(&[t.id], SelectionMode::ActiveStandby),
                });
            }
        }
        for c in &self.config.connections {
            for r in &c.routes {
                let via: Vec<TunnelId> = r.via.iter().filter_map(|n| self.id_of(n)).collect();
                routes.push(RouteStatus {
                    prefix: r.prefix.trunc().to_string(),
                    source: "static".into(),
                    via: r.via.clone(),
                    active: active(&via, c.mode),
                });
            }
        }
        for (prefix, list) in self.bgp_routes.entries() {
            // Every tunnel listed carries the prefix (several only for an ECMP
            // connection's equal-cost routes).
            let via: Vec<TunnelId> = list.iter().map(|r| r.tunnel).collect();
            routes.push(RouteStatus {
                prefix: prefix.to_string(),
                source: "bgp".into(),
                via: via.iter().filter_map(|t| name(*t)).collect(),
                active: active(&via, SelectionMode::Ecmp),
            });
        }
        Routes { routes }
    }

    fn tunnel_action(
        &mut self,
        action: TunnelAction,
        name: &str,
        now: Instant,
    ) -> Result<Vec<TunnelId>, String> {
        let i = self
            .tunnels
            .iter()
            .position(|t| t.cfg.name == name)
            .ok_or_else(|| format!("no tunnel named `{name}`"))?;
        match action {
            TunnelAction::Disable => {
                let Some(t) = self.tunnels.get_mut(i) else {
                    return Err(format!("no tunnel named `{name}`"));
                };
                tracing::info!(tunnel = name, "disabled by operator");
                t.set_disabled_reason();
                let id = t.id;
                self.leave(i, now, Then::StayDown);
                Ok(vec![id])
            }
            TunnelAction::Enable => {
                // A tunnel still saying its BGP goodbye goes down first.
                if let Some(id) = self.tunnels.get(i).map(|t| t.id) {
                    if let Some(then) = self.leavings.take(id) {
                        self.finish_leaving(id, then, now);
                    }
                }
                let Some(t) = self.tunnels.get_mut(i) else {
                    return Err(format!("no tunnel named `{name}`"));
                };
                if !t.disabled {
                    // Restarting its engine would drop running SAs without telling the peer.
                    tracing::info!(tunnel = name, "enable: not disabled, nothing to do");
                    return Ok(Vec::new());
                }
                let cfg = t.cfg.clone();
                let engine = ike_config(&cfg).map_err(|e| e.to_string()).and_then(|c| {
                    ike::Tunnel::new(c, now, &mut OsRng).map_err(|e| e.to_string())
                })?;
                t.clear_sas(&self.shared);
                t.restart(engine, cfg);
                tracing::info!(tunnel = name, "enabled by operator");
                Ok(Vec::new())
            }
        }
    }

    /// Takes tunnel `i` down ourselves, with `then` to follow, once its BGP peer has been
    /// told (see `leaving`): its session ends now while the tunnel still carries the
    /// Cease, the routes it taught us move to the other tunnel at once, and the tunnel
    /// goes down when the goodbye is over. At once without a session or when not UP.
    fn leave(&mut self, i: usize, now: Instant, then: Then) {
        let Some((id, up)) = self.tunnels.get(i).map(|t| (t.id, t.is_up())) else {
            return;
        };
        if self.leavings.is_leaving(id) {
            if matches!(then, Then::StayDown) {
                self.leavings.stay_down(id);
            }
            return;
        }
        let generation = self
            .bgp
            .as_ref()
            .filter(|_| up)
            .and_then(|b| b.stop_and_report(id, self.leavings.reports()));
        let Some(generation) = generation else {
            self.finish_leaving(id, then, now);
            return;
        };
        tracing::info!(
            tunnel = self.name_of(id),
            "ending its BGP session before the tunnel goes down"
        );
        self.apply_bgp_changes();
        self.leavings.start(id, generation, now, then);
    }

    /// Tunnel `id` is down and what was to follow it follows.
    fn finish_leaving(&mut self, id: TunnelId, then: Then, now: Instant) {
        let Some(i) = self.tunnels.iter().position(|t| t.id == id) else {
            return;
        };
        match then {
            // Shutdown deletes every IKE SA itself.
            Then::Shutdown => {}
            Then::StayDown => self.take_down(i, now),
            Then::Restart(next) => {
                self.take_down(i, now);
                let (engine, cfg) = *next;
                if let Some(ctl) = self.tunnels.get_mut(i) {
                    ctl.clear_sas(&self.shared);
                    ctl.restart(engine, cfg);
                }
            }
        }
    }

    fn name_of(&self, id: TunnelId) -> &str {
        self.tunnels
            .iter()
            .find(|t| t.id == id)
            .map_or("?", |t| t.cfg.name.as_str())
    }

    /// Takes tunnel `i` down ourselves (disable, a reload that changed it): its routes,
    /// static and BGP, move to the other tunnel first, then its SAs are deleted (the peer
    /// told), their inbound halves lingering for what the peer still had in flight.
    fn take_down(&mut self, i: usize, now: Instant) {
        let Some(id) = self.tunnels.get(i).map(|t| t.id) else {
            return;
        };
        self.set_up(id, false);
        if let Some(t) = self.tunnels.get_mut(i) {
            // Its DOWN: the routes moved already.
            let _ = t.delete_locally(now, &self.shared);
        }
    }

    /// Re-reads the config file. Tunnels whose settings changed renegotiate from scratch;
    /// unchanged ones keep their SAs. Adding, removing or re-addressing tunnels, or
    /// changing `workers`, needs a restart (the TUN device, its queues and the sockets
    /// are set up once).
    /// Returns the tunnels renegotiated (names, and ids for the answer to wait for).
    fn reload(&mut self, now: Instant) -> Result<(Vec<String>, Vec<TunnelId>), String> {
        let new = Config::load(&self.config_path).map_err(|e| e.lines().join("; "))?;
        // The mode is fixed at start too: the routing table and the BGP multipath groups
        // take it from the tunnels' registration.
        let shape =
            |c: &Config| -> Vec<(String, String, String, std::net::IpAddr, String, u16, bool)> {
                c.connections
                    .iter()
                    .flat_map(|c| {
                        c.tunnels.iter().map(move |t| {
                            (
                                c.name.clone(),
                                format!("{:?}", c.mode),
                                t.name.clone(),
                                t.local_address,
                                format!("{:?}", t.inner),
                                t.mtu,
                                t.mss_clamp,
                            )
                        })
                    })
                    .collect()
            };
        if shape(&new) != shape(&self.config)
            || new.tun_name != self.config.tun_name
            || new.workers != self.config.workers
            || new.metrics_listen != self.config.metrics_listen
        {
            return Err(
                "reload cannot add, remove or rename tunnels, or change their local \
                        address, inner address, MTU, a connection's mode, the TUN device, \
                        the number of workers or the metrics address: restart vpngw"
                    .into(),
            );
        }
        let new_tunnels: Vec<crate::config::Tunnel> = new
            .connections
            .iter()
            .flat_map(|c| c.tunnels.iter().cloned())
            .collect();
        // Tunnels still saying goodbye go down now: the new config is compared with what
        // they were to run next.
        for (id, then) in self.leavings.take_all() {
            self.finish_leaving(id, then, now);
        }
        // Build every engine first: a bad tunnel refuses the whole reload.
        let mut engines = Vec::new();
        for (old, t) in self.tunnels.iter().zip(&new_tunnels) {
            // DSCP and ECN handling changes in the packet path at once: no renegotiation.
            let unchanged_qos = crate::config::Tunnel {
                qos: old.cfg.qos,
                ..t.clone()
            };
            let same = format!("{:?}", old.cfg) == format!("{unchanged_qos:?}")
                && old.cfg.psk.expose() == t.psk.expose();
            if same {
                engines.push(None);
            } else {
                let c = ike_config(t).map_err(|e| e.to_string())?;
                let e = ike::Tunnel::new(c, now, &mut OsRng).map_err(|e| e.to_string())?;
                engines.push(Some(e));
            }
        }
        let mut changed = Vec::new();
        let mut ids = Vec::new();
        for (ctl, t) in self.tunnels.iter_mut().zip(&new_tunnels) {
            if ctl.cfg.qos != t.qos {
                tracing::info!(tunnel = %t.name, copy_dscp = t.qos.dscp.as_str(), copy_ecn = t.qos.ecn, "DSCP/ECN handling changed");
                ctl.path.set_qos(t.qos);
                ctl.cfg.qos = t.qos;
            }
        }
        for (i, (engine, t)) in engines.into_iter().zip(new_tunnels).enumerate() {
            let Some(engine) = engine else { continue };
            let Some((id, name)) = self.tunnels.get(i).map(|c| (c.id, c.cfg.name.clone())) else {
                continue;
            };
            self.leave(i, now, Then::Restart(Box::new((engine, t))));
            changed.push(name);
            ids.push(id);
        }
        // Static routes may have changed too.
        let old_prefixes = self.static_prefixes();
        for p in &old_prefixes {
            self.rib.remove_static(*p);
        }
        self.config = new;
        self.publish_peers();
        self.load_static_routes();
        let new_prefixes = self.static_prefixes();
        for p in old_prefixes.iter().filter(|p| !new_prefixes.contains(p)) {
            let _ = self.kroutes.remove(*p, self.tun_index);
        }
        for p in new_prefixes.iter().filter(|p| !old_prefixes.contains(p)) {
            if let Err(e) = self.kroutes.add(*p, self.tun_index, 0) {
                tracing::warn!(error = %e, "kernel route not added");
            }
        }
        self.publish();
        tracing::info!(?changed, "config reloaded");
        Ok((changed, ids))
    }

    /// Shutdown, step 1: every BGP session ends (Cease over its tunnel), so that the peers
    /// stop routing into the tunnels before their SAs go; see `leaving`.
    pub fn leave_all(&mut self, now: Instant) {
        for i in 0..self.tunnels.len() {
            self.leave(i, now, Then::Shutdown);
        }
    }

    /// Shutdown, step 2: withdraw routes and send DELETE for every IKE SA.
    pub fn delete_all(&mut self, now: Instant) {
        // A goodbye not over by now is cut short; a disable waiting for it is answered.
        drop(self.leavings.take_all());
        self.leavings.answer_ready();
        for t in &mut self.tunnels {
            let _ = self.rib.set_tunnel_up(t.id, false);
            // A session leave_all did not end (it has come UP since).
            if let Some(b) = &self.bgp {
                b.stop_detached(t.id, true);
            }
            t.disabled = true;
            t.ike.delete(now, &mut OsRng);
        }
        self.publish();
    }

    /// Whether some peer still owes us the answer to a DELETE.
    pub fn awaiting_deletes(&self) -> bool {
        self.tunnels.iter().any(|t| t.ike.poll_timeout().is_some())
    }

    /// Shutdown, last step: SAs out of the dataplane, kernel routes removed.
    pub fn finish(&mut self) {
        for t in &mut self.tunnels {
            t.clear_sas(&self.shared);
        }
        if let Err(e) = self.kroutes.remove_all() {
            tracing::warn!(error = %e, "kernel routes not all removed");
        }
    }
}
