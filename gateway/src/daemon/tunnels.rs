//! One configured tunnel under control: its IKE engine, the ESP SAs it installed, its
//! state for `vpngw status`.

use super::clock::unix_now;
use super::ike_config::selector;
use super::lingering::{self, Lingering};
use super::sender::{self, Candidate};
use super::status::{ChildStatus, IkeStatus, TunnelStatus};
use crate::config;
use crate::dataplane::{selectors_cover_all, Selected};
use crate::dataplane::{Shared, TunnelPath};
use crate::routing::TunnelId;
use esp::{
    DropCounts, InboundConfig, InboundSa, IvKey, LifetimeEvent, Limits, OutboundConfig, OutboundSa,
    SaKeys, Suite,
};
use ike::sa::{Action, ChildRekey, ChildSaInstall, DownReason};
use ike::wire::TrafficSelector;
use ike::{IkeError, Tunnel};
use rand_core::{OsRng, RngCore};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// An installed CHILD SA pair.
#[derive(Debug)]
struct Child {
    inbound: Arc<InboundSa>,
    outbound: Arc<OutboundSa>,
    established: u64,
    /// The negotiated ESP suite in proposal syntax (with the PFS group and ESN).
    proposal: String,
    local_ts: Vec<TrafficSelector>,
    remote_ts: Vec<TrafficSelector>,
    /// Not yet used for sending: the peer rekeyed (or reauthenticated) an SA of these
    /// selectors and installs this one only on our response, so the old SA carries our
    /// traffic until the peer deletes it (or it hits a hard limit).
    held: bool,
}

impl sender::Candidate for Child {
    fn same_selectors(&self, other: &Child) -> bool {
        self.local_ts == other.local_ts && self.remote_ts == other.remote_ts
    }

    fn held(&self) -> bool {
        self.held
    }
}

/// Counters of SAs already deleted, so totals survive rekeys.
#[derive(Debug, Default, Clone, Copy)]
struct Retired {
    bytes_in: u64,
    packets_in: u64,
    bytes_out: u64,
    packets_out: u64,
    drops: DropCounts,
}

impl Retired {
    fn add_inbound(&mut self, sa: &InboundSa) {
        let i = sa.stats();
        self.bytes_in += i.bytes;
        self.packets_in += i.packets;
        add_drops(&mut self.drops, &i.drops);
    }

    fn add_outbound(&mut self, sa: &OutboundSa) {
        let o = sa.stats();
        self.bytes_out += o.bytes;
        self.packets_out += o.packets;
    }
}

/// The dataplane's soft/hard counters for one CHILD SA of the configured volume. As in
/// strongSwan, each soft limit is lowered by a random amount of up to the gap to its hard
/// limit (at most half of it), so the two peers, whose SAs carry the same traffic, do not
/// reach it at the same moment and start colliding rekeys.
fn esp_limits(v: &config::ChildVolume, rng: &mut impl RngCore) -> Limits {
    let mut soft = |l: config::Volume| {
        let range = l.hard.saturating_sub(l.soft).min(l.soft / 2);
        l.soft - rng.next_u64() % range.saturating_add(1)
    };
    Limits {
        soft_bytes: v.bytes.map(&mut soft),
        hard_bytes: v.bytes.map(|l| l.hard),
        soft_packets: v.packets.map(&mut soft),
        hard_packets: v.packets.map(|l| l.hard),
    }
}

/// What changed in the tunnel's UP/DOWN state while draining actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Up,
    Down,
    /// Still up, but the peer restarted (see `ike::Action::PeerRestarted`).
    PeerRestarted,
}

#[derive(Debug)]
pub struct TunnelCtl {
    pub id: TunnelId,
    pub connection: String,
    pub cfg: config::Tunnel,
    pub ike: Tunnel,
    pub path: Arc<TunnelPath>,
    up: bool,
    since: u64,
    reason: Option<String>,
    pub disabled: bool,
    children: Vec<Child>,
    /// Inbound SAs of rekeyed or locally deleted CHILD SAs that still decrypt a while.
    lingering: Lingering,
    /// We are deleting the tunnel's SAs ourselves (disable, reload): its inbound SAs
    /// linger too.
    deleting: bool,
    /// A CHILD SA went and the packet path still has it as the outbound SA: published at
    /// the end of the drain, or, when the tunnel goes DOWN, once its routes moved away.
    outbound_stale: bool,
    retired: Retired,
    last_heard: Option<u64>,
}

impl TunnelCtl {
    pub fn new(
        id: TunnelId,
        connection: &str,
        cfg: config::Tunnel,
        ike: Tunnel,
        path: Arc<TunnelPath>,
    ) -> Self {
        let reason = initial_reason(&cfg);
        TunnelCtl {
            id,
            connection: connection.to_owned(),
            cfg,
            ike,
            path,
            up: false,
            since: unix_now(),
            reason: Some(reason),
            disabled: false,
            children: Vec::new(),
            lingering: Lingering::default(),
            deleting: false,
            outbound_stale: false,
            retired: Retired::default(),
            last_heard: None,
        }
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Replaces the IKE engine (enable, reload): negotiation starts from scratch.
    pub fn restart(&mut self, ike: Tunnel, cfg: config::Tunnel) {
        self.ike = ike;
        self.reason = Some(initial_reason(&cfg));
        self.cfg = cfg;
        self.disabled = false;
        self.since = unix_now();
    }

    pub fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
    ) {
        match self
            .ike
            .handle_datagram(now, local, remote, bytes, &mut OsRng)
        {
            Ok(()) => {
                // Only authenticated messages of the established IKE SA count as liveness
                // (not, say, anybody's IKE_SA_INIT request).
                if self.ike.last_heard() == Some(now) {
                    self.last_heard = Some(unix_now());
                }
            }
            Err(e) => {
                tracing::debug!(tunnel = %self.cfg.name, %remote, error = %e, "IKE datagram refused");
                if !self.up {
                    if let Some(r) = failure_reason(&e) {
                        self.set_reason(r);
                    }
                }
            }
        }
    }

    fn set_reason(&mut self, r: &str) {
        if self.reason.as_deref() != Some(r) {
            tracing::warn!(tunnel = %self.cfg.name, reason = r, "tunnel negotiation failed");
            self.reason = Some(r.to_owned());
        }
    }

    /// Carries out the engine's actions; returns the last UP/DOWN transition, if any.
    pub fn drain(&mut self, shared: &Shared) -> Option<Transition> {
        let mut transition = None;
        while let Some(action) = self.ike.poll_action() {
            match action {
                Action::Send {
                    local,
                    remote,
                    bytes,
                } => {
                    if let Err(e) = shared.sockets.send(local, remote, &bytes) {
                        tracing::debug!(tunnel = %self.cfg.name, %remote, error = %e, "IKE send failed");
                    }
                }
                Action::InstallChildSa(sa) => self.install(shared, &sa),
                Action::DeleteChildSa {
                    inbound_spi,
                    outbound_spi,
                } => self.remove(shared, inbound_spi, outbound_spi),
                Action::PeerMoved { remote, .. } => {
                    // ESP follows IKE to the peer's new NAT mapping.
                    if self.path.peer.load().is_some() {
                        tracing::info!(tunnel = %self.cfg.name, peer = %remote, "ESP follows the peer's new address");
                        self.path.peer.store(Some(Arc::new(remote)));
                    }
                }
                Action::PeerRestarted => {
                    tracing::info!(tunnel = %self.cfg.name, peer = %self.cfg.peer, "the peer restarted: its new IKE SA took over, the tunnel stays UP");
                    transition = Some(Transition::PeerRestarted);
                }
                Action::Up => {
                    self.up = true;
                    self.since = unix_now();
                    self.reason = None;
                    tracing::info!(tunnel = %self.cfg.name, peer = %self.cfg.peer, "tunnel UP");
                    transition = Some(Transition::Up);
                    // Their requests join the actions drained by this loop.
                    self.request_children();
                }
                Action::Down(why) => {
                    self.up = false;
                    self.since = unix_now();
                    let r = down_reason(why, self.disabled);
                    tracing::info!(tunnel = %self.cfg.name, reason = r, "tunnel DOWN");
                    self.reason = Some(r.to_owned());
                    transition = Some(Transition::Down);
                }
            }
        }
        // Going DOWN: the caller moves the routes first, then publishes.
        if transition != Some(Transition::Down) {
            self.publish_stale_outbound();
        }
        transition
    }

    /// Requests the configured further CHILD SAs on the IKE SA that just came up. (A
    /// reauthentication carries the CHILD SAs over itself, without a DOWN/UP.)
    fn request_children(&mut self) {
        let now = Instant::now();
        for c in &self.cfg.children {
            let local = c.local_ts.iter().map(selector).collect();
            let remote = c.remote_ts.iter().map(selector).collect();
            if let Err(e) = self.ike.create_child(now, local, remote, &mut OsRng) {
                tracing::warn!(tunnel = %self.cfg.name, error = %e, "requesting a further CHILD SA failed");
            }
        }
    }

    fn install(&mut self, shared: &Shared, sa: &ChildSaInstall) {
        let name = &self.cfg.name;
        let suite = Suite::from_ikev2(
            sa.suite.encr.id(),
            sa.suite.encr.key_bits(),
            sa.suite.integ.map(|i| i.id()),
        );
        let Some(suite) = suite else {
            tracing::error!(tunnel = %name, suite = ?sa.suite, "negotiated ESP suite has no dataplane transform");
            return;
        };
        let peer = sa
            .udp_encap
            .map(|(_, remote)| remote)
            .unwrap_or_else(|| SocketAddr::new(self.cfg.peer, 4500));
        let block_pad_limit = self.block_pad_limit(peer);
        self.fit_underlay(block_pad_limit.and_then(|room| suite.max_inner_len(room)));
        let built = (|| {
            let in_keys = SaKeys::from_keymat(suite, sa.inbound.keymat().expose())?;
            let out_keys = SaKeys::from_keymat(suite, sa.outbound.keymat().expose())?;
            // Each SA direction counts against the configured volume from zero.
            let limits = esp_limits(&self.cfg.child_volume, &mut OsRng);
            let in_cfg = InboundConfig {
                esn: sa.suite.esn,
                limits,
                // Decrypted packets name their tunnel: the dataplane checks where they came from.
                owner: u32::from(self.id.0),
                ..InboundConfig::default()
            };
            let out_cfg = OutboundConfig {
                esn: sa.suite.esn,
                limits,
                block_pad_limit,
            };
            let mut iv = [0u8; 16];
            OsRng.fill_bytes(&mut iv);
            let inbound = InboundSa::new(sa.inbound.spi, suite, &in_keys, in_cfg)?;
            let outbound =
                OutboundSa::new(sa.outbound.spi, suite, &out_keys, out_cfg, IvKey::new(iv))?;
            Ok::<_, esp::SaError>((Arc::new(inbound), Arc::new(outbound)))
        })();
        let (inbound, outbound) = match built {
            Ok(pair) => pair,
            Err(e) => {
                tracing::error!(tunnel = %name, error = %e, "cannot build ESP SAs");
                return;
            }
        };
        shared
            .policy
            .set(sa.inbound.spi, &sa.local_ts, &sa.remote_ts);
        shared.sas.insert(inbound.clone());
        self.path.peer.store(Some(Arc::new(peer)));
        tracing::info!(tunnel = %name, spi_in = format_args!("{:08x}", sa.inbound.spi),
            spi_out = format_args!("{:08x}", sa.outbound.spi), suite = suite.name(), %peer,
            esp_size_limit = block_pad_limit, "CHILD SA installed");
        let mut child = Child {
            inbound,
            outbound,
            established: unix_now(),
            proposal: sa.suite.to_string(),
            local_ts: sa.local_ts.clone(),
            remote_ts: sa.remote_ts.clone(),
            held: false,
        };
        child.held = !sa.we_initiated && self.children.iter().any(|c| c.same_selectors(&child));
        self.children.push(child);
        // Make before break: the new SA carries traffic before the old one goes (once
        // the peer has it too).
        self.publish_outbound();
    }

    /// Makes the tunnel's MTU what the underlay carries unfragmented (`inner_limit`, for
    /// the new SA's suite), at most the configured one; says so when that changes it.
    fn fit_underlay(&self, inner_limit: Option<usize>) {
        let before = self.path.mtu();
        let mtu = self.path.fit_underlay(inner_limit);
        if mtu == before {
            return;
        }
        if mtu < self.path.configured_mtu {
            tracing::warn!(tunnel = %self.cfg.name, configured = self.path.configured_mtu, mtu,
                "the tunnel's mtu is too large for the underlay's path MTU to the peer: larger inner packets get ICMP too big (or are fragmented) before ESP; set mtu to at most this");
        } else {
            tracing::info!(tunnel = %self.cfg.name, mtu, "the underlay carries the tunnel's configured mtu again");
        }
    }

    /// How large the SA's ESP packets may grow by padding to whole AES blocks: what the
    /// underlay path MTU to `peer` leaves for UDP payload now (looked up per SA, so a
    /// rekey follows a changed path). Unknown: the least padding.
    fn block_pad_limit(&self, peer: SocketAddr) -> Option<usize> {
        match crate::sys::path_mtu::udp_payload_limit(self.cfg.local_address, peer) {
            Ok(limit) => Some(limit),
            Err(e) => {
                tracing::debug!(tunnel = %self.cfg.name, error = %e, "no underlay path MTU; ESP pads minimally");
                None
            }
        }
    }

    /// Tells the packet path which outbound SA to use: per set of traffic selectors the
    /// newest CHILD SA not held (a rekey's new SA before the old one is deleted). The set
    /// that covers 0.0.0.0/0 (else the oldest) is the default; the others are matched first.
    fn publish_outbound(&self) {
        let groups = sender::senders(&self.children);
        let any4 = TrafficSelector::any(false);
        let default = groups
            .iter()
            .position(|g| g.remote_ts.contains(&any4))
            .unwrap_or(0);
        self.path
            .set_outbound(groups.get(default).map(|g| g.outbound.clone()));
        let narrow_default = groups
            .get(default)
            .filter(|g| !(selectors_cover_all(&g.local_ts) && selectors_cover_all(&g.remote_ts)))
            .map(|g| Arc::new((g.local_ts.clone(), g.remote_ts.clone())));
        self.path.default_ts.store(narrow_default);
        let others: Vec<Selected> = groups
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != default)
            .map(|(_, g)| Selected {
                local_ts: g.local_ts.clone(),
                remote_ts: g.remote_ts.clone(),
                sa: g.outbound.clone(),
            })
            .collect();
        self.path
            .selected
            .store((!others.is_empty()).then(|| Arc::new(others)));
    }

    /// Deletes a CHILD SA. Its outbound SA stops at once; its inbound SA too, unless a
    /// CHILD SA of the same selectors replaces it (a rekey) or we delete the tunnel's SAs
    /// ourselves: then it lingers, for what the peer sent before it heard of the change.
    fn remove(&mut self, shared: &Shared, inbound_spi: u32, outbound_spi: u32) {
        let Some(i) = self
            .children
            .iter()
            .position(|c| c.inbound.spi() == inbound_spi || c.outbound.spi() == outbound_spi)
        else {
            shared.remove_inbound(inbound_spi);
            return;
        };
        let child = self.children.remove(i);
        self.retired.add_outbound(&child.outbound);
        let rekeyed = self.children.iter().any(|c| c.same_selectors(&child));
        let linger = rekeyed || self.deleting;
        if linger {
            self.lingering.keep(Instant::now(), child.inbound.clone());
        } else {
            shared.remove_inbound(inbound_spi);
            self.retired.add_inbound(&child.inbound);
        }
        self.release_held(|c| c.same_selectors(&child));
        // Until the routes moved, packets keep going out on it: the peer that deleted it
        // may still take them (vpngw does, for 5 s); without an SA they are lost here.
        self.outbound_stale = true;
        tracing::info!(tunnel = %self.cfg.name, spi_in = format_args!("{inbound_spi:08x}"),
            spi_out = format_args!("{outbound_spi:08x}"), inbound_kept = ?linger.then_some(lingering::GRACE), "CHILD SA deleted");
    }

    /// Deletes the IKE SA and its CHILD SAs on our side (the peer is told), keeping the
    /// inbound SAs decrypting for a while; the caller has moved the routes away already.
    pub fn delete_locally(&mut self, now: Instant, shared: &Shared) -> Option<Transition> {
        self.deleting = true;
        self.ike.delete(now, &mut OsRng);
        let transition = self.drain(shared);
        self.deleting = false;
        self.publish_stale_outbound();
        transition
    }

    /// Publishes the outbound SAs if a CHILD SA went since the last time.
    pub fn publish_stale_outbound(&mut self) {
        if std::mem::take(&mut self.outbound_stale) {
            self.publish_outbound();
        }
    }

    /// When the next lingering inbound SA is due to go.
    pub fn next_lingering_expiry(&self) -> Option<Instant> {
        self.lingering.next_expiry()
    }

    /// Uninstalls the lingering inbound SAs whose time is up.
    pub fn expire_lingering(&mut self, now: Instant, shared: &Shared) {
        for sa in self.lingering.expire(now, shared) {
            self.retired.add_inbound(&sa);
        }
    }

    /// Sends on the held SAs of the selector sets `pick` chooses, unless an older SA of
    /// the set that is not held remains (the one the peer still has to delete).
    fn release_held(&mut self, pick: impl Fn(&Child) -> bool) {
        for i in sender::releasable(&self.children, pick) {
            if let Some(c) = self.children.get_mut(i) {
                c.held = false;
            }
        }
    }

    /// Whether the ESP SA with this SPI (outbound or inbound) is one of this tunnel's.
    pub fn has_sa(&self, spi: u32, outbound: bool) -> bool {
        self.children.iter().any(|c| {
            spi == if outbound {
                c.outbound.spi()
            } else {
                c.inbound.spi()
            }
        })
    }

    /// Authenticated ESP of inbound SA `spi` came from `from`, not from where we send ESP:
    /// if the peer is behind a NAT whose mapping changed, IKE and ESP follow it.
    pub fn on_esp_source(&mut self, spi: u32, from: SocketAddr) {
        if !self.ike.follow_esp_source(from) {
            tracing::debug!(tunnel = %self.cfg.name, spi = format_args!("{spi:08x}"), %from, "ESP from another source; not followed (no NAT before the peer, or another address)");
        }
    }

    /// The dataplane saw one of our SAs reach a byte/packet/sequence-number limit: rekey
    /// the CHILD SA now. (At a hard limit esp already refuses the SA; the rekey then
    /// restores traffic, unless the soft event started it already.)
    pub fn on_sa_lifetime(
        &mut self,
        now: Instant,
        spi: u32,
        outbound: bool,
        event: LifetimeEvent,
    ) -> ChildRekey {
        if outbound && matches!(event, LifetimeEvent::Hard(_)) {
            self.switch_from_expired(spi);
        }
        let name = &self.cfg.name;
        let which = Some(spi);
        let spi = format_args!("{spi:08x}");
        match self.ike.rekey_child_spi(now, which, &mut OsRng) {
            Ok(r) => {
                tracing::info!(tunnel = %name, %spi, ?event, result = ?r, "CHILD SA rekey on lifetime limit");
                r
            }
            Err(e) => {
                tracing::warn!(tunnel = %name, %spi, ?event, error = %e, "CHILD SA rekey on lifetime limit failed");
                ChildRekey::NotEstablished
            }
        }
    }

    /// An outbound SA hit a hard limit while a newer SA of its selectors waits for the
    /// peer's DELETE of it: send on the newer one now rather than drop.
    fn switch_from_expired(&mut self, outbound_spi: u32) {
        let Some(expired) = self
            .children
            .iter()
            .position(|c| c.outbound.spi() == outbound_spi)
        else {
            return;
        };
        let successors = sender::successors_of(&self.children, expired);
        for &i in &successors {
            if let Some(c) = self.children.get_mut(i) {
                c.held = false;
            }
        }
        if !successors.is_empty() {
            tracing::info!(tunnel = %self.cfg.name, spi_out = format_args!("{outbound_spi:08x}"),
                "outbound SA expired before the peer deleted it: sending on its successor");
            self.publish_outbound();
        }
    }

    /// Removes every SA from the dataplane (tunnel stopped or replaced).
    pub fn clear_sas(&mut self, shared: &Shared) {
        self.path.set_outbound(None);
        self.path.selected.store(None);
        self.path.default_ts.store(None);
        for c in std::mem::take(&mut self.children) {
            shared.remove_inbound(c.inbound.spi());
            self.retired.add_inbound(&c.inbound);
            self.retired.add_outbound(&c.outbound);
        }
        // Lingering inbound SAs run out on their own: what they decrypt is still the
        // peer's traffic from before.
    }

    pub fn status(&self) -> TunnelStatus {
        let mut t = self.retired;
        for c in &self.children {
            t.add_inbound(&c.inbound);
            t.add_outbound(&c.outbound);
        }
        for sa in self.lingering.iter() {
            t.add_inbound(sa);
        }
        let ike = self
            .ike
            .ike_spis()
            .zip(self.ike.negotiated_ike())
            .map(|((i, r), proposal)| IkeStatus {
                spi_i: hex(&i),
                spi_r: hex(&r),
                proposal,
            });
        let peer = self
            .path
            .peer
            .load()
            .as_deref()
            .copied()
            .filter(|_| self.up)
            .unwrap_or_else(|| SocketAddr::new(self.cfg.peer, 500));
        TunnelStatus {
            connection: self.connection.clone(),
            name: self.cfg.name.clone(),
            state: if self.up { "UP" } else { "DOWN" }.to_owned(),
            since: self.since,
            reason: if self.up { None } else { self.reason.clone() },
            local: SocketAddr::new(self.cfg.local_address, peer.port()).to_string(),
            peer: peer.to_string(),
            mtu: self.path.mtu(),
            ike,
            child_sas: self
                .children
                .iter()
                .map(|c| {
                    let (i, o) = (c.inbound.stats(), c.outbound.stats());
                    ChildStatus {
                        spi_in: format!("{:08x}", c.inbound.spi()),
                        spi_out: format!("{:08x}", c.outbound.spi()),
                        proposal: c.proposal.clone(),
                        established: c.established,
                        bytes_in: i.bytes,
                        bytes_out: o.bytes,
                        packets_in: i.packets,
                        packets_out: o.packets,
                    }
                })
                .collect(),
            retiring_spis_in: self
                .lingering
                .iter()
                .map(|sa| format!("{:08x}", sa.spi()))
                .collect(),
            bytes_in: t.bytes_in,
            bytes_out: t.bytes_out,
            packets_in: t.packets_in,
            packets_out: t.packets_out,
            drops: drops_map(&t.drops),
            ike_counters: ike_counters(&self.ike.stats()),
            last_dpd: self.last_heard,
            nat: self.ike.behind_nat().map(|nat| {
                match nat {
                    (false, false) => "none",
                    (true, false) => "local",
                    (false, true) => "peer",
                    (true, true) => "both",
                }
                .to_owned()
            }),
        }
    }

    pub fn set_disabled_reason(&mut self) {
        self.disabled = true;
        self.reason = Some("disabled".to_owned());
        if !self.up {
            self.since = unix_now();
        }
    }
}

fn initial_reason(cfg: &config::Tunnel) -> String {
    match cfg.start_action {
        config::StartAction::Initiate => "negotiating",
        config::StartAction::Respond => "waiting_for_peer",
    }
    .to_owned()
}

/// Notify types (RFC 7296 3.10.1) worth naming in the status.
const NO_PROPOSAL_CHOSEN: u16 = 14;
const AUTHENTICATION_FAILED: u16 = 24;
const TS_UNACCEPTABLE: u16 = 38;

fn failure_reason(e: &IkeError) -> Option<&'static str> {
    Some(match e {
        IkeError::AuthenticationFailed | IkeError::PeerNotify(AUTHENTICATION_FAILED) => {
            "auth_failed"
        }
        IkeError::NoProposalChosen | IkeError::PeerNotify(NO_PROPOSAL_CHOSEN) => {
            "no_proposal_chosen"
        }
        IkeError::TsUnacceptable | IkeError::PeerNotify(TS_UNACCEPTABLE) => "ts_unacceptable",
        _ => return None,
    })
}

fn down_reason(why: DownReason, disabled: bool) -> &'static str {
    match why {
        DownReason::LocalDelete if disabled => "disabled",
        DownReason::LocalDelete => "local_delete",
        DownReason::PeerDelete => "peer_delete",
        DownReason::PeerDead => "peer_dead",
        DownReason::PeerRefused(AUTHENTICATION_FAILED) | DownReason::AuthFailed => "auth_failed",
        DownReason::PeerRefused(NO_PROPOSAL_CHOSEN) => "no_proposal_chosen",
        DownReason::PeerRefused(_) => "peer_refused",
        DownReason::NegotiationFailed => "negotiation_failed",
        DownReason::Expired => "expired",
        DownReason::Replaced => "replaced",
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn add_drops(a: &mut DropCounts, b: &DropCounts) {
    a.truncated += b.truncated;
    a.bad_length += b.bad_length;
    a.unknown_spi += b.unknown_spi;
    a.replayed += b.replayed;
    a.outside_window += b.outside_window;
    a.icv_mismatch += b.icv_mismatch;
    a.bad_padding += b.bad_padding;
    a.bad_next_header += b.bad_next_header;
    a.bad_inner_packet += b.bad_inner_packet;
    a.tfc_dummy += b.tfc_dummy;
    a.sa_expired += b.sa_expired;
}

/// The IKE engine's counters by snake_case name, non-zero ones only.
fn ike_counters(s: &ike::sa::Stats) -> BTreeMap<String, u64> {
    [
        ("malformed", s.malformed),
        ("integrity_failures", s.integrity_failures),
        ("unknown_spi", s.unknown_spi),
        ("out_of_window", s.out_of_window),
        ("retransmits_answered", s.retransmits_answered),
        ("other_errors", s.other_errors),
        ("invalid_spi_sent", s.invalid_spi_sent),
        ("cookies_sent", s.cookies_sent),
        ("init_refused", s.init_refused),
        ("half_open_evicted", s.half_open_evicted),
    ]
    .into_iter()
    .filter(|(_, v)| *v > 0)
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Every drop reason by snake_case name, non-zero ones only.
fn drops_map(d: &DropCounts) -> BTreeMap<String, u64> {
    [
        ("truncated", d.truncated),
        ("bad_length", d.bad_length),
        ("unknown_spi", d.unknown_spi),
        ("replayed", d.replayed),
        ("outside_window", d.outside_window),
        ("icv_mismatch", d.icv_mismatch),
        ("bad_padding", d.bad_padding),
        ("bad_next_header", d.bad_next_header),
        ("bad_inner_packet", d.bad_inner_packet),
        ("tfc_dummy", d.tfc_dummy),
        ("sa_expired", d.sa_expired),
    ]
    .into_iter()
    .filter(|(_, v)| *v > 0)
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns the values it was given, in turn.
    struct Script(Vec<u64>);

    impl RngCore for Script {
        fn next_u32(&mut self) -> u32 {
            self.next_u64() as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0.remove(0)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            dest.fill(0);
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            dest.fill(0);
            Ok(())
        }
    }

    fn volume(soft: u64, hard: u64) -> Option<config::Volume> {
        Some(config::Volume { soft, hard })
    }

    #[test]
    fn soft_limits_drop_by_a_random_amount_below_the_gap_to_hard() {
        let v = config::ChildVolume {
            bytes: volume(1800, 2000),
            packets: volume(90, 100),
        };
        // The largest draws: 200 and 10 below soft; a draw wraps within its range.
        let l = esp_limits(&v, &mut Script(vec![200, 10 + 11]));
        assert_eq!(l.soft_bytes, Some(1600));
        assert_eq!(l.soft_packets, Some(80));
        assert_eq!((l.hard_bytes, l.hard_packets), (Some(2000), Some(100)));
        let l = esp_limits(&v, &mut Script(vec![0, 0]));
        assert_eq!((l.soft_bytes, l.soft_packets), (Some(1800), Some(90)));
    }

    #[test]
    fn equal_limits_and_wide_gaps_stay_sensible() {
        // soft == hard: no room, no jitter.
        let v = config::ChildVolume {
            bytes: volume(1000, 1000),
            packets: None,
        };
        let l = esp_limits(&v, &mut Script(vec![u64::MAX]));
        assert_eq!(l.soft_bytes, Some(1000));
        assert_eq!(l.soft_packets, None);
        // A gap wider than soft: at most half of soft comes off.
        let v = config::ChildVolume {
            bytes: volume(100, 1_000_000),
            packets: None,
        };
        let l = esp_limits(&v, &mut Script(vec![50]));
        assert_eq!(l.soft_bytes, Some(50));
        let l = esp_limits(&v, &mut Script(vec![u64::MAX]));
        assert!(l.soft_bytes.is_some_and(|s| (50..=100).contains(&s)));
    }
}
