//! The IKEv2 state machine of one tunnel, sans-IO.
//!
//! A [`Tunnel`] owns the IKE SA with its peer (plus SAs being negotiated, and old ones
//! being deleted after a rekey). The caller feeds it datagrams and timeouts and drains
//! [`Action`]s; see the crate documentation for the loop.
mod action;
mod admission;
mod auth;
mod child;
mod config;
mod error;
mod ike_sa;
mod info;
mod init;
mod rekey_ike;
#[cfg(test)]
mod replay_tests;
pub mod unknown_spi;
mod util;

pub use action::{Action, ChildSaInstall, DirectionKeys, DownReason};
pub use config::{
    Config, ConfigError, Dpd, DpdAction, Identity, Lifetime, Psk, Retransmit, StartAction,
};
pub use error::IkeError;

/// What [`Tunnel::rekey_child`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildRekey {
    /// A CREATE_CHILD_SA rekey of this inbound SPI was sent, or queued behind the request
    /// in flight.
    Started(u32),
    /// No established IKE SA with a CHILD SA: nothing to rekey.
    NotEstablished,
    /// A CHILD SA rekey (or delete) is already under way.
    AlreadyRunning,
}

use crate::crypto::{DhGroup, Secret};
use crate::wire::{ExchangeType, Header, Message};
use admission::InitGate;
use ike_sa::{
    Ctx, IkeSa, IkeState, Outcome, Planned, HALF_OPEN_TIMEOUT, NAT_T_PORT, NON_ESP_MARKER,
};
use init::InitReply;
use rand_core::CryptoRngCore;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

/// How much later than our SA was established the peer's crossing SA may show itself
/// (datagrams reordered or delayed on the way).
const CROSSING_MARGIN: std::time::Duration = std::time::Duration::from_secs(1);

/// Responder SAs in negotiation kept at most; beyond this the oldest of them is dropped
/// (never one of our own negotiations). With `Config::init_rate` this is only reached
/// by a flood of requests that echo our COOKIEs.
const MAX_HALF_OPEN: usize = 256;

/// Counters of dropped or refused datagrams, by cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub received: u64,
    pub malformed: u64,
    pub integrity_failures: u64,
    pub unknown_spi: u64,
    pub out_of_window: u64,
    pub retransmits_answered: u64,
    pub other_errors: u64,
    /// Unprotected INVALID_IKE_SPI notifications sent for requests of unknown IKE SAs.
    pub invalid_spi_sent: u64,
    /// IKE_SA_INIT requests answered with a COOKIE request (more half-open SAs than
    /// `Config::cookie_threshold`).
    pub cookies_sent: u64,
    /// IKE_SA_INIT requests dropped unanswered: more new SAs than `Config::init_rate`.
    pub init_refused: u64,
    /// Responder half-open SAs dropped to make room for newer ones (`MAX_HALF_OPEN`).
    pub half_open_evicted: u64,
}

/// One IPsec tunnel: the IKE SA with its peer and the CHILD SA it carries.
pub struct Tunnel {
    cfg: Config,
    /// The established IKE SA.
    ike: Option<IkeSa>,
    /// Our IKE_SA_INIT/IKE_AUTH in progress, and responder half-open SAs.
    negotiating: Vec<IkeSa>,
    /// SAs replaced by a rekey or a newer SA, until their DELETE completes.
    old: Vec<IkeSa>,
    actions: VecDeque<Action>,
    cookie_secret: Secret,
    up: bool,
    retry_at: Option<Instant>,
    admin_down: bool,
    /// The group the responder asked for with INVALID_KE_PAYLOAD.
    group: Option<DhGroup>,
    stats: Stats,
    invalid_spi_budget: unknown_spi::InvalidSpiBudget,
    init_gate: InitGate,
}

impl std::fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tunnel")
            .field("remote", &self.cfg.remote)
            .field("up", &self.up)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Tunnel {
    /// A tunnel in its initial state. With [`StartAction::Initiate`] the first
    /// `handle_timeout` (due at once) starts the negotiation.
    pub fn new(
        cfg: Config,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let retry_at = (cfg.start_action == StartAction::Initiate).then_some(now);
        let init_gate = InitGate::new(cfg.init_rate);
        Ok(Tunnel {
            cfg,
            ike: None,
            negotiating: Vec::new(),
            old: Vec::new(),
            actions: VecDeque::new(),
            cookie_secret: Secret::new(util::random_bytes(rng, 32)),
            up: false,
            retry_at,
            admin_down: false,
            group: None,
            init_gate,
            stats: Stats::default(),
            invalid_spi_budget: unknown_spi::InvalidSpiBudget::default(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// IKE SA and a CHILD SA are established.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// SPIi and SPIr of the established IKE SA (for logs and status).
    pub fn ike_spis(&self) -> Option<([u8; 8], [u8; 8])> {
        self.ike.as_ref().map(|s| (s.spi_i, s.spi_r))
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The negotiated algorithms of the established IKE SA (after a rekey, of the new
    /// one), in the config's proposal syntax, e.g. `aes128gcm16-prfsha256-modp2048`.
    pub fn negotiated_ike(&self) -> Option<String> {
        self.ike
            .as_ref()
            .filter(|s| s.is_established())
            .and_then(|s| s.suite)
            .map(|s| s.to_string())
    }

    /// When the established IKE SA last received an authenticated message from the peer
    /// (a request, a response or a DPD answer).
    pub fn last_heard(&self) -> Option<Instant> {
        self.ike.as_ref().and_then(|s| s.last_heard)
    }

    /// What NAT detection found on the established IKE SA: `(we are behind a NAT, the
    /// peer is)`; `None` without one.
    pub fn behind_nat(&self) -> Option<(bool, bool)> {
        self.ike
            .as_ref()
            .filter(|sa| sa.is_established())
            .map(|sa| (sa.nat_here, sa.nat_there))
    }

    /// Authenticated ESP of this tunnel arrived from `remote`, not from where the IKE SA
    /// sends: the peer's NAT mapping changed (a NAT rebooted, or dropped an idle mapping).
    /// Follows it, as RFC 7296 2.23 asks of the side that is not behind a NAT, when the
    /// peer is behind one and we are not, and only to another port of the same address
    /// (the tunnel is configured for that address). IKE then goes to `remote` too, and
    /// [`Action::PeerMoved`] tells the dataplane. `true` if it moved.
    pub fn follow_esp_source(&mut self, remote: SocketAddr) -> bool {
        let Some(sa) = self.ike.as_mut() else {
            return false;
        };
        let follows = sa.is_established()
            && sa.udp_encap
            && sa.nat_there
            && !sa.nat_here
            && remote.ip() == sa.remote.ip()
            && remote != sa.remote;
        if !follows {
            return false;
        }
        tracing::info!(peer = %self.cfg.remote, from = %sa.remote, to = %remote, "peer moved (NAT mapping changed): ESP from a new port");
        sa.remote = remote;
        self.actions.push_back(Action::PeerMoved {
            local: sa.local,
            remote,
        });
        true
    }

    /// Rekeys the newest CHILD SA now, ahead of its time lifetime (e.g. when the
    /// dataplane reports its soft byte or packet limit). Does nothing if the tunnel is not
    /// established or that SA's rekey is already running. An error means the request
    /// could not be built; the SA's time lifetime still applies.
    pub fn rekey_child(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<ChildRekey, IkeError> {
        self.rekey_child_spi(now, None, rng)
    }

    /// Like [`Tunnel::rekey_child`] for the CHILD SA with this inbound or outbound SPI
    /// (the newest one if `None` or unknown).
    pub fn rekey_child_spi(
        &mut self,
        now: Instant,
        spi: Option<u32>,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<ChildRekey, IkeError> {
        let Some(sa) = self.ike.as_mut().filter(|s| s.is_established()) else {
            return Ok(ChildRekey::NotEstablished);
        };
        let named = spi.and_then(|x| {
            sa.children
                .iter()
                .find(|c| c.inbound_spi == x || c.outbound_spi == x)
        });
        let Some(child) = named.or(sa.children.last()) else {
            return Ok(ChildRekey::NotEstablished);
        };
        let spi = child.inbound_spi;
        let running = child.retiring
            || sa.queue.iter().any(
                |q| matches!(q, Planned::RekeyChild(s) | Planned::DeleteChild(s) if *s == spi),
            );
        if running {
            return Ok(ChildRekey::AlreadyRunning);
        }
        sa.plan(Planned::RekeyChild(spi));
        let mut ctx = Ctx::new(&self.cfg, now, rng, &mut self.actions);
        let r = sa.pump(&mut ctx);
        let down = ctx.down;
        self.settle(now, down);
        r.map(|()| ChildRekey::Started(spi))
    }

    /// Requests an additional CHILD SA with these selectors (ours as TSi, the peer's as
    /// TSr) over the established IKE SA (RFC 7296 1.3.1). The peer narrows them; the SA
    /// arrives as [`Action::InstallChildSa`]. `Ok(false)` while no IKE SA is up.
    pub fn create_child(
        &mut self,
        now: Instant,
        local_ts: Vec<crate::wire::TrafficSelector>,
        remote_ts: Vec<crate::wire::TrafficSelector>,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<bool, IkeError> {
        let Some(sa) = self.ike.as_mut().filter(|s| s.is_established()) else {
            return Ok(false);
        };
        if local_ts.is_empty() || remote_ts.is_empty() {
            return Err(IkeError::TsUnacceptable);
        }
        sa.new_children.push_back((local_ts, remote_ts));
        sa.plan(Planned::CreateChild);
        let mut ctx = Ctx::new(&self.cfg, now, rng, &mut self.actions);
        let r = sa.pump(&mut ctx);
        let down = ctx.down;
        self.settle(now, down);
        r.map(|()| true)
    }

    /// The next action for the caller, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let sas = self.ike.iter().chain(&self.negotiating).chain(&self.old);
        sas.filter_map(|s| s.next_timer(&self.cfg))
            .chain(self.retry_at)
            .min()
    }

    /// Starts negotiating (if not already up or under way); re-enables after `delete`.
    pub fn initiate(&mut self, now: Instant, rng: &mut dyn CryptoRngCore) -> Result<(), IkeError> {
        self.admin_down = false;
        self.retry_at = None;
        let busy = self.ike.is_some() || self.negotiating.iter().any(|s| s.initiator);
        if busy {
            return Ok(());
        }
        let group = self
            .group
            .or_else(|| {
                self.cfg
                    .ike_proposals
                    .first()
                    .and_then(|p| p.dh.first().copied())
            })
            .ok_or(IkeError::Unexpected("no IKE proposal configured"))?;
        let mut sa = IkeSa::new(true, self.cfg.local, self.cfg.remote, now);
        let mut ctx = Ctx::new(&self.cfg, now, rng, &mut self.actions);
        sa.start_init(&mut ctx, group, None, 0)?;
        self.negotiating.push(sa);
        Ok(())
    }

    /// Deletes the tunnel's SAs (operator "disable"); no renegotiation until `initiate`.
    pub fn delete(&mut self, now: Instant, rng: &mut dyn CryptoRngCore) {
        self.admin_down = true;
        self.retry_at = None;
        self.negotiating.clear();
        let mut ctx = Ctx::new(&self.cfg, now, rng, &mut self.actions);
        ctx.down = Some(DownReason::LocalDelete);
        if let Some(mut sa) = self.ike.take() {
            sa.ike_collision = None;
            sa.remove_all_children(&mut ctx);
            sa.queue.clear();
            sa.plan(Planned::DeleteIke);
            if sa.outstanding.is_none() {
                let _ = sa.pump(&mut ctx);
            }
            self.old.push(sa);
        }
        self.settle(now, Some(DownReason::LocalDelete));
    }

    /// Handles one received UDP datagram. `local`/`remote` are its destination and source.
    /// An error means the datagram was dropped or answered with an error notify; the
    /// tunnel stays consistent either way.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        datagram: &[u8],
        rng: &mut dyn CryptoRngCore,
    ) -> Result<(), IkeError> {
        self.stats.received += 1;
        let r = self.dispatch(now, local, remote, datagram, rng);
        if let Err(e) = &r {
            tracing::debug!(peer = %remote, error = %e, "IKE datagram dropped or refused");
        }
        match &r {
            Err(IkeError::Decode(_)) => self.stats.malformed += 1,
            Err(IkeError::Crypto(_)) => self.stats.integrity_failures += 1,
            Err(IkeError::UnknownSpi) => self.stats.unknown_spi += 1,
            Err(IkeError::OutOfWindow(_)) => self.stats.out_of_window += 1,
            Err(_) => self.stats.other_errors += 1,
            Ok(()) => {}
        }
        r
    }

    fn dispatch(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        datagram: &[u8],
        rng: &mut dyn CryptoRngCore,
    ) -> Result<(), IkeError> {
        let bytes = if local.port() == NAT_T_PORT {
            datagram
                .strip_prefix(&NON_ESP_MARKER[..])
                .ok_or(IkeError::Unexpected("ESP on the IKE path"))?
        } else {
            datagram
        };
        let h = Header::decode(bytes)?;
        if h.exchange == ExchangeType::IkeSaInit && !h.is_response() {
            return self.on_init_request(now, local, remote, bytes, &h, rng);
        }
        // Locate the SA: by both SPIs, or by SPIi for the answer to our IKE_SA_INIT.
        let matches = |s: &IkeSa| {
            s.spi_i == h.spi_i
                && (s.spi_r == h.spi_r
                    || (s.state == IkeState::InitSent && h.exchange == ExchangeType::IkeSaInit))
        };
        // An SA is processed outside its list and put back (or dropped) afterwards.
        enum Slot {
            Current,
            Negotiating,
            Old,
        }
        let (mut sa, slot) = if self.ike.as_ref().is_some_and(matches) {
            (self.ike.take(), Slot::Current)
        } else if let Some(i) = self.negotiating.iter().position(matches) {
            (Some(self.negotiating.swap_remove(i)), Slot::Negotiating)
        } else if let Some(i) = self.old.iter().position(matches) {
            (Some(self.old.swap_remove(i)), Slot::Old)
        } else {
            (None, Slot::Old)
        };
        let Some(mut sa) = sa.take() else {
            self.answer_unknown_spi(now, local, remote, &h);
            return Err(IkeError::UnknownSpi);
        };
        let was_established = sa.is_established();
        let saved = (sa.local, sa.remote, sa.floated);
        let mut ctx = Ctx::new(&self.cfg, now, &mut *rng, &mut self.actions);
        ctx.has_ike_sa = self.ike.as_ref().is_some_and(IkeSa::is_established);
        let mut result = if h.exchange == ExchangeType::IkeSaInit {
            Message::decode(bytes)
                .map_err(IkeError::from)
                .and_then(|m| sa.on_init_response(&mut ctx, bytes, m))
        } else {
            // Follow the peer to port 4500 and through NAT mapping changes (RFC 7296 2.23).
            if local.port() == NAT_T_PORT {
                sa.floated = true;
                sa.local = local;
                sa.remote = remote;
            }
            sa.on_encrypted(&mut ctx, bytes)
        };
        if matches!(result, Err(IkeError::Crypto(_) | IkeError::Decode(_))) {
            (sa.local, sa.remote, sa.floated) = saved;
        }
        if let Ok(Outcome::RetryWithGroup(g)) = &result {
            self.group = Some(*g);
            result = sa
                .start_init(&mut ctx, *g, None, 1)
                .map(|_| Outcome::Nothing);
        }
        let down = ctx.down;
        if matches!(result, Ok(Outcome::Retransmission)) {
            self.stats.retransmits_answered += 1;
        }
        let (outcome, err) = match result {
            Ok(o) => (o, None),
            Err(e) => (Outcome::Nothing, Some(e)),
        };
        let (initial_contact, rekeyed) = match outcome {
            Outcome::Established { initial_contact } => (initial_contact, None),
            Outcome::Rekeyed { new, redundant } => (false, Some((*new, redundant))),
            _ => (false, None),
        };
        let current = matches!(slot, Slot::Current);
        if current && was_established && err.is_none() && sa.remote != saved.1 {
            tracing::info!(peer = %self.cfg.remote, from = %saved.1, to = %sa.remote, "peer moved (NAT mapping changed): IKE follows");
            self.actions.push_back(Action::PeerMoved {
                local: sa.local,
                remote: sa.remote,
            });
        }
        if sa.state != IkeState::Dead {
            match slot {
                Slot::Negotiating if sa.is_established() && !was_established => {
                    self.adopt(now, sa, initial_contact, rng);
                }
                Slot::Current if rekeyed.is_none() => self.ike = Some(sa),
                Slot::Negotiating => self.negotiating.push(sa),
                _ => self.old.push(sa),
            }
        }
        if let Some((new, redundant)) = rekeyed {
            if !current {
                // Only the current SA is rekeyed; anything else was closed meanwhile.
                let mut ctx = Ctx::new(&self.cfg, now, &mut *rng, &mut self.actions);
                let mut new = new;
                new.remove_all_children(&mut ctx);
                self.settle(now, down);
                return err.map_or(Ok(()), Err);
            }
            tracing::info!(peer = %self.cfg.remote, spi_i = %hex8(&new.spi_i), spi_r = %hex8(&new.spi_r), "IKE SA rekeyed");
            if let Some(prev) = self.ike.replace(new) {
                self.old.push(prev);
            }
            self.old.extend(redundant.map(|r| *r));
        }
        self.settle(now, down);
        err.map_or(Ok(()), Err)
    }

    /// A protected request for an IKE SA we do not know (the peer may not know we lost
    /// it) gets an unprotected INVALID_IKE_SPI notification, see [`unknown_spi`].
    fn answer_unknown_spi(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        h: &Header,
    ) {
        let Some(bytes) = unknown_spi::reply(local, h) else {
            return;
        };
        if !self.invalid_spi_budget.take(now) {
            return;
        }
        self.actions.push_back(Action::Send {
            local,
            remote,
            bytes,
        });
        self.stats.invalid_spi_sent += 1;
    }

    fn on_init_request(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
        h: &Header,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<(), IkeError> {
        if h.spi_r != [0; 8] || h.message_id != 0 {
            return Err(IkeError::Unexpected(
                "IKE_SA_INIT request with SPIr or message ID set",
            ));
        }
        let mut ctx = Ctx::new(&self.cfg, now, rng, &mut self.actions);
        // A retransmitted request gets the same response.
        if let Some(sa) = self
            .negotiating
            .iter_mut()
            .find(|s| !s.initiator && s.spi_i == h.spi_i)
        {
            sa.accept_request(&mut ctx, 0)?;
            self.stats.retransmits_answered += 1;
            return Ok(());
        }
        if self.admin_down {
            return Err(IkeError::Idle);
        }
        let msg = Message::decode(bytes)?;
        let half_open = self.negotiating.iter().filter(|s| !s.initiator).count();
        let cookie = (half_open >= self.cfg.cookie_threshold).then(|| {
            let ni = msg
                .payloads
                .iter()
                .find_map(|p| match p {
                    crate::wire::Payload::Nonce(n) => Some(n.as_slice()),
                    _ => None,
                })
                .unwrap_or_default();
            util::cookie(&self.cookie_secret, ni, remote, &h.spi_i)
        });
        let reply = init::respond_init(
            &mut ctx,
            &msg,
            bytes,
            local,
            remote,
            cookie,
            &mut self.init_gate,
        )?;
        match reply {
            InitReply::Stateless(resp) => self.send_plain(local, remote, &resp),
            InitReply::Cookie(resp) => {
                self.stats.cookies_sent += 1;
                self.send_plain(local, remote, &resp);
            }
            InitReply::Refused => {
                self.stats.init_refused += 1;
                if let Some(n) = self.init_gate.report_due(now) {
                    tracing::warn!(peer = %self.cfg.remote, refused = n, rate = self.cfg.init_rate, "IKE_SA_INIT requests dropped: more new IKE SAs than the rate allows (a flood?)");
                }
            }
            InitReply::Created(sa) => {
                if half_open >= MAX_HALF_OPEN {
                    if let Some(i) = self.negotiating.iter().position(|s| !s.initiator) {
                        self.negotiating.remove(i);
                        self.stats.half_open_evicted += 1;
                    }
                }
                self.negotiating.push(*sa);
            }
        }
        Ok(())
    }

    /// Sends an unprotected IKE_SA_INIT response (with the non-ESP marker on port 4500).
    fn send_plain(&mut self, local: SocketAddr, remote: SocketAddr, resp: &[u8]) {
        self.actions.push_back(Action::Send {
            local,
            remote,
            bytes: ike_sa::datagram_from(local, resp),
        });
    }

    /// Makes a newly established SA current. Another established SA is
    /// - replaced at once (its CHILD SAs dropped silently) if the peer sent INITIAL_CONTACT
    ///   (it lost its state), unless the two crossed (below) and ours is ours;
    /// - for simultaneous initiations (one SA each way, the peer's begun before ours was
    ///   established, give or take `CROSSING_MARGIN`): the one with the smaller SPIi
    ///   stays on both sides and the other is deleted;
    /// - replaced make-before-break otherwise (RFC 7296 2.8.3): by our reauthentication
    ///   (we delete the old SA once the new one carries the CHILD SAs), or by the peer's
    ///   (the old SA and its CHILD SAs stay until the peer deletes them).
    fn adopt(
        &mut self,
        now: Instant,
        mut sa: IkeSa,
        initial_contact: bool,
        rng: &mut dyn CryptoRngCore,
    ) {
        let Some(mut cur) = self.ike.take() else {
            self.ike = Some(sa);
            return;
        };
        if sa.reauth && sa.children.is_empty() {
            // Our reauthentication got no CHILD SA: keep the old SA, try again later.
            sa.queue.clear();
            sa.plan(Planned::DeleteIke);
            let mut ctx = Ctx::new(&self.cfg, now, rng, &mut self.actions);
            let _ = sa.pump(&mut ctx);
            cur.reauth_at = Some(now + self.cfg.retry_interval);
            self.ike = Some(cur);
            self.old.push(sa);
            return;
        }
        // Simultaneous initiation: one SA each way, the peer's begun before it could know
        // ours, and, if it carries INITIAL_CONTACT, authenticated so too (a peer sends
        // that only while it has no other IKE SA with us). A peer's SA with INITIAL_CONTACT
        // that comes later is a peer that lost its state (it restarted), however young
        // our SA is.
        let crossing = cur.initiator != sa.initiator
            && cur.established_at.is_none_or(|t| {
                let known = if initial_contact { now } else { sa.created };
                known <= t + CROSSING_MARGIN
            });
        let fresh = cur.initiator && crossing;
        if sa.reauth || (!initial_contact && !crossing) {
            let ours = sa.reauth;
            tracing::info!(peer = %self.cfg.remote, spi_i = %hex8(&sa.spi_i), spi_r = %hex8(&sa.spi_r), by_us = ours, "IKE SA reauthenticated");
            // CHILD SAs beyond the one IKE_AUTH made are requested again on the new SA.
            // That one is recognised by its selectors as the peer narrowed them (which
            // may differ from ours: IPv4 only when we offer both), else by our own.
            if ours {
                let mut seen: Vec<_> = sa
                    .children
                    .iter()
                    .map(|n| (n.local_ts.clone(), n.remote_ts.clone()))
                    .collect();
                seen.push((self.cfg.local_ts.clone(), self.cfg.remote_ts.clone()));
                for c in &cur.children {
                    let ts = (c.local_ts.clone(), c.remote_ts.clone());
                    if !seen.contains(&ts) {
                        seen.push(ts.clone());
                        sa.new_children.push_back(ts);
                        sa.plan(Planned::CreateChild);
                    }
                }
            }
            sa.reauth = false;
            cur.superseded = true;
            cur.rekey_at = None;
            cur.reauth_at = None;
            cur.queue.clear();
            cur.ike_collision = None;
            let mut ctx = Ctx::new(&self.cfg, now, rng, &mut self.actions);
            if ours {
                cur.plan(Planned::DeleteIke);
                let _ = cur.pump(&mut ctx);
            } else {
                cur.expire_at = Some(now + HALF_OPEN_TIMEOUT);
            }
            let _ = sa.pump(&mut ctx);
            self.ike = Some(sa);
            self.old.push(cur);
            return;
        }
        let (keep, mut lose, silent) = if initial_contact && !fresh {
            tracing::info!(peer = %self.cfg.remote, spi_i = %hex8(&sa.spi_i), "the peer restarted (INITIAL_CONTACT): its new IKE SA replaces ours");
            self.actions.push_back(Action::PeerRestarted);
            (sa, cur, true)
        } else if sa.spi_i < cur.spi_i {
            (sa, cur, false)
        } else {
            cur.last_rx = now;
            (cur, sa, false)
        };
        self.ike = Some(keep);
        // The loser's CHILD SAs go; the dataplane learns of it.
        for c in std::mem::take(&mut lose.children) {
            self.actions.push_back(Action::DeleteChildSa {
                inbound_spi: c.inbound_spi,
                outbound_spi: c.outbound_spi,
            });
        }
        if !silent {
            lose.queue.clear();
            lose.plan(Planned::DeleteIke);
            let mut ctx = Ctx::new(&self.cfg, now, rng, &mut self.actions);
            let _ = lose.pump(&mut ctx);
            self.old.push(lose);
        }
    }

    /// Starts reauthenticating the current IKE SA: a new IKE SA negotiated from scratch
    /// next to it, which replaces it once established (make-before-break).
    fn start_reauth(&mut self, now: Instant, rng: &mut dyn CryptoRngCore) {
        if self.negotiating.iter().any(|s| s.initiator) {
            return;
        }
        let group = self
            .cfg
            .ike_proposals
            .first()
            .and_then(|p| p.dh.first().copied());
        let Some(group) = self.group.or(group) else {
            return;
        };
        tracing::info!(peer = %self.cfg.remote, "reauthenticating the IKE SA");
        let mut sa = IkeSa::new(true, self.cfg.local, self.cfg.remote, now);
        sa.reauth = true;
        let mut ctx = Ctx::new(&self.cfg, now, rng, &mut self.actions);
        if sa.start_init(&mut ctx, group, None, 0).is_ok() {
            self.negotiating.push(sa);
        }
    }

    /// Handles timers: retransmissions, lifetimes, DPD, renegotiation.
    pub fn handle_timeout(&mut self, now: Instant, rng: &mut dyn CryptoRngCore) {
        let mut down = None;
        let mut dead_current = false;
        {
            let mut ctx = Ctx::new(&self.cfg, now, &mut *rng, &mut self.actions);
            if let Some(sa) = &mut self.ike {
                if matches!(sa.on_timer(&mut ctx), Ok(Outcome::Dead)) || sa.state == IkeState::Dead
                {
                    dead_current = true;
                }
            }
            let mut reauth_failed = false;
            self.negotiating.retain_mut(|sa| {
                let keep = !matches!(sa.on_timer(&mut ctx), Ok(Outcome::Dead))
                    && sa.state != IkeState::Dead;
                reauth_failed |= !keep && sa.reauth;
                keep
            });
            // The old SA carries on; try again later.
            if reauth_failed {
                if let Some(sa) = &mut self.ike {
                    sa.reauth_at = Some(now + self.cfg.retry_interval);
                }
            }
            self.old.retain_mut(|sa| {
                let _ = sa.pump(&mut ctx);
                !matches!(sa.on_timer(&mut ctx), Ok(Outcome::Dead)) && sa.state != IkeState::Dead
            });
            down = down.or(ctx.down);
        }
        if dead_current {
            self.ike = None;
        }
        let reauth_due = self
            .ike
            .as_mut()
            .filter(|s| s.is_established() && s.reauth_at.is_some_and(|t| now >= t));
        if let Some(sa) = reauth_due {
            sa.reauth_at = None;
            self.start_reauth(now, rng);
        }
        // A negotiation of ours that gave up counts as a dead peer, too.
        let negotiating_initiator = self.negotiating.iter().any(|s| s.initiator);
        if self.retry_at.is_some_and(|t| now >= t) && !negotiating_initiator {
            self.retry_at = None;
            if self.ike.is_none() && !self.admin_down {
                let _ = self.initiate(now, rng);
            }
        }
        self.settle(now, down);
    }

    /// Emits UP/DOWN on changes and schedules renegotiation where the config asks for it.
    fn settle(&mut self, now: Instant, down: Option<DownReason>) {
        let up = self
            .ike
            .as_ref()
            .is_some_and(|s| s.is_established() && !s.children.is_empty());
        if up && !self.up {
            tracing::info!(peer = %self.cfg.remote, "tunnel up");
            self.actions.push_back(Action::Up);
        } else if !up && self.up {
            let reason = down.unwrap_or(DownReason::NegotiationFailed);
            tracing::warn!(peer = %self.cfg.remote, ?reason, "tunnel down");
            self.actions.push_back(Action::Down(reason));
        }
        self.up = up;
        let idle = self.ike.is_none() && !self.negotiating.iter().any(|s| s.initiator);
        if idle && !self.admin_down && self.retry_at.is_none() {
            if down == Some(DownReason::PeerDead) && info::restart_after_dead_peer(&self.cfg) {
                self.retry_at = Some(now);
            } else if self.cfg.start_action == StartAction::Initiate {
                self.retry_at = Some(now + self.cfg.retry_interval);
            }
        }
    }
}

fn hex8(spi: &[u8; 8]) -> String {
    spi.iter().map(|b| format!("{b:02x}")).collect()
}
