//! IKE_AUTH with PSK authentication (RFC 7296 1.2, 2.15) and the first CHILD SA.
use super::action::DownReason;
use super::error::IkeError;
use super::ike_sa::{Ctx, IkeSa, IkeState, Outcome, Pending};
use super::util::{error_notify, notify, random_esp_spi, u32_spi, unsupported_critical};
use crate::crypto::auth::{psk_auth, signed_octets, verify_psk_auth};
use crate::crypto::keys::child_keymat;
use crate::proposal::EspSuite;
use crate::wire::{
    auth_method, notify as nt, ExchangeType, Identification, Notify, Payload, Proposal,
    TrafficSelector,
};

/// The payloads of an IKE_AUTH or CREATE_CHILD_SA message that matter here.
#[derive(Default)]
pub(crate) struct Parts<'a> {
    pub id: Option<&'a Identification>,
    pub auth: Option<(u8, &'a [u8])>,
    pub sa: Option<&'a [Proposal]>,
    pub tsi: Option<&'a [TrafficSelector]>,
    pub tsr: Option<&'a [TrafficSelector]>,
    pub nonce: Option<&'a [u8]>,
    pub ke: Option<(u16, &'a [u8])>,
}

impl<'a> Parts<'a> {
    /// `peer_id_initiator`: the ID to read is IDi (we are responder) or IDr.
    pub fn of(p: &'a [Payload], peer_id_initiator: bool) -> Self {
        let mut x = Parts::default();
        for pl in p {
            match pl {
                Payload::IdI(i) if peer_id_initiator => x.id = Some(i),
                Payload::IdR(i) if !peer_id_initiator => x.id = Some(i),
                Payload::Auth { method, data } => x.auth = Some((*method, data)),
                Payload::Sa(s) => x.sa = Some(s),
                Payload::TsI(t) => x.tsi = Some(t),
                Payload::TsR(t) => x.tsr = Some(t),
                Payload::Nonce(n) => x.nonce = Some(n),
                Payload::Ke { group, data } => x.ke = Some((*group, data)),
                _ => {}
            }
        }
        x
    }
}

/// All non-empty intersections of `theirs` with `ours`.
pub(crate) fn narrow(theirs: &[TrafficSelector], ours: &[TrafficSelector]) -> Vec<TrafficSelector> {
    let mut out = Vec::new();
    for t in theirs {
        for o in ours {
            if let Some(x) = t.intersect(o) {
                if !out.contains(&x) {
                    out.push(x);
                }
            }
        }
    }
    out
}

impl IkeSa {
    fn auth_value(&self, ctx: &Ctx<'_>, we_initiator: bool) -> Result<Vec<u8>, IkeError> {
        let suite = self.suite.ok_or(IkeError::Unexpected("no suite"))?;
        let keys = self.keys.as_ref().ok_or(IkeError::Unexpected("no keys"))?;
        let id = ctx.cfg.local_id.to_wire().body();
        let octets = if we_initiator {
            signed_octets(
                suite.prf,
                &self.init_req,
                &self.nr,
                keys.sk_pi.expose(),
                &id,
            )
        } else {
            signed_octets(
                suite.prf,
                &self.init_resp,
                &self.ni,
                keys.sk_pr.expose(),
                &id,
            )
        };
        Ok(psk_auth(suite.prf, ctx.cfg.psk.expose(), &octets)
            .expose()
            .to_vec())
    }

    fn verify_peer_auth(&self, ctx: &Ctx<'_>, peer_initiator: bool, parts: &Parts<'_>) -> bool {
        let (Some(suite), Some(keys), Some(id), Some((method, data))) =
            (self.suite, self.keys.as_ref(), parts.id, parts.auth)
        else {
            return false;
        };
        if method != auth_method::SHARED_KEY_MIC || !ctx.cfg.remote_id.matches(id) {
            return false;
        }
        let octets = if peer_initiator {
            signed_octets(
                suite.prf,
                &self.init_req,
                &self.nr,
                keys.sk_pi.expose(),
                &id.body(),
            )
        } else {
            signed_octets(
                suite.prf,
                &self.init_resp,
                &self.ni,
                keys.sk_pr.expose(),
                &id.body(),
            )
        };
        verify_psk_auth(suite.prf, ctx.cfg.psk.expose(), &octets, data)
    }

    /// Initiator: sends IKE_AUTH with the first CHILD SA proposal.
    pub(crate) fn start_auth(&mut self, ctx: &mut Ctx<'_>) -> Result<(), IkeError> {
        let child_spi = random_esp_spi(ctx.rng);
        let auth = self.auth_value(ctx, true)?;
        let props = ctx
            .cfg
            .esp_proposals
            .iter()
            .enumerate()
            .map(|(i, p)| p.to_wire(i as u8 + 1, child_spi.to_be_bytes(), false))
            .collect();
        let mut payloads = vec![Payload::IdI(ctx.cfg.local_id.to_wire())];
        // A reauthentication must not make the peer drop the SA it replaces, nor may any
        // SA begun while another is up (a simultaneous initiation).
        if !self.reauth && !ctx.has_ike_sa {
            payloads.push(Payload::Notify(Notify::new(nt::INITIAL_CONTACT, vec![])));
        }
        payloads.extend([
            Payload::IdR(ctx.cfg.remote_id.to_wire()),
            Payload::Auth {
                method: auth_method::SHARED_KEY_MIC,
                data: auth,
            },
            Payload::Sa(props),
            Payload::TsI(ctx.cfg.local_ts.clone()),
            Payload::TsR(ctx.cfg.remote_ts.clone()),
        ]);
        self.state = IkeState::AuthSent;
        self.send_request(
            ctx,
            ExchangeType::IkeAuth,
            &payloads,
            Pending::Auth { child_spi },
        )
    }

    fn establish(&mut self, ctx: &mut Ctx<'_>) {
        self.state = IkeState::Established;
        self.established_at = Some(ctx.now);
        let (rekey, expire) = ctx.jittered(ctx.cfg.ike_lifetime);
        self.rekey_at = Some(rekey);
        self.expire_at = Some(expire);
        self.reauth_at = ctx.cfg.reauth_time.map(|t| ctx.now + t);
        self.last_rx = ctx.now;
    }

    /// Responder: handles the IKE_AUTH request.
    pub(crate) fn on_auth_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        mid: u32,
        p: &[Payload],
    ) -> Result<Outcome, IkeError> {
        if let Some(ty) = unsupported_critical(p) {
            let n = Payload::Notify(Notify::new(nt::UNSUPPORTED_CRITICAL_PAYLOAD, vec![ty]));
            self.send_response(ctx, ExchangeType::IkeAuth, mid, &[n])?;
            self.state = IkeState::Dead;
            return Err(IkeError::UnsupportedCritical(ty));
        }
        let parts = Parts::of(p, true);
        if !self.verify_peer_auth(ctx, true, &parts) {
            let n = Payload::Notify(Notify::new(nt::AUTHENTICATION_FAILED, vec![]));
            self.send_response(ctx, ExchangeType::IkeAuth, mid, &[n])?;
            self.state = IkeState::Dead;
            return Err(IkeError::AuthenticationFailed);
        }
        let auth = self.auth_value(ctx, false)?;
        let mut payloads = vec![
            Payload::IdR(ctx.cfg.local_id.to_wire()),
            Payload::Auth {
                method: auth_method::SHARED_KEY_MIC,
                data: auth,
            },
        ];
        self.establish(ctx);
        let initial_contact = notify(p, nt::INITIAL_CONTACT).is_some();
        match self.select_child(ctx, &parts, false) {
            Ok((suite, reply, tsi, tsr, peer_spi)) => {
                let our_spi = random_esp_spi(ctx.rng);
                let mut reply = reply;
                reply.spi = our_spi.to_be_bytes().to_vec();
                payloads.push(Payload::Sa(vec![reply]));
                payloads.push(Payload::TsI(tsi.clone()));
                payloads.push(Payload::TsR(tsr.clone()));
                let keys = self.child_keys(suite, None, &self.ni.clone(), &self.nr.clone())?;
                let response = self.seal_response(ctx, ExchangeType::IkeAuth, mid, &payloads)?;
                // Installed before the response leaves: the peer sends on it at once.
                self.install_child(ctx, suite, our_spi, peer_spi, keys, false, tsr, tsi);
                self.transmit(ctx, &response);
            }
            Err(e) => {
                let ty = match e {
                    IkeError::TsUnacceptable => nt::TS_UNACCEPTABLE,
                    _ => nt::NO_PROPOSAL_CHOSEN,
                };
                payloads.push(Payload::Notify(Notify::new(ty, vec![])));
                self.send_response(ctx, ExchangeType::IkeAuth, mid, &payloads)?;
                ctx.down = Some(DownReason::NegotiationFailed);
            }
        }
        Ok(Outcome::Established { initial_contact })
    }

    /// Picks the ESP proposal and narrows the traffic selectors of a request.
    /// Returns (suite, reply proposal, TSi, TSr, peer's SPI).
    #[allow(clippy::type_complexity)]
    pub(crate) fn select_child(
        &self,
        ctx: &Ctx<'_>,
        parts: &Parts<'_>,
        with_dh: bool,
    ) -> Result<
        (
            EspSuite,
            Proposal,
            Vec<TrafficSelector>,
            Vec<TrafficSelector>,
            u32,
        ),
        IkeError,
    > {
        let offered = parts.sa.ok_or(IkeError::MissingPayload("SA"))?;
        let (suite, reply) = ctx
            .cfg
            .esp_proposals
            .iter()
            .find_map(|o| o.select(offered, with_dh))
            .ok_or(IkeError::NoProposalChosen)?;
        let peer_spi = u32_spi(&reply.spi).ok_or(IkeError::NoProposalChosen)?;
        let tsi = narrow(
            parts.tsi.ok_or(IkeError::MissingPayload("TSi"))?,
            &ctx.cfg.remote_ts,
        );
        let tsr = narrow(
            parts.tsr.ok_or(IkeError::MissingPayload("TSr"))?,
            &ctx.cfg.local_ts,
        );
        if tsi.is_empty() || tsr.is_empty() {
            return Err(IkeError::TsUnacceptable);
        }
        Ok((suite, reply, tsi, tsr, peer_spi))
    }

    pub(crate) fn child_keys(
        &self,
        suite: EspSuite,
        g_ir: Option<&[u8]>,
        ni: &[u8],
        nr: &[u8],
    ) -> Result<crate::crypto::keys::ChildKeys, IkeError> {
        let prf = self.suite.ok_or(IkeError::Unexpected("no suite"))?.prf;
        let sk_d = self.sk_d().ok_or(IkeError::Unexpected("no keys"))?;
        Ok(child_keymat(
            prf,
            sk_d.expose(),
            g_ir,
            ni,
            nr,
            suite.encr,
            suite.integ,
        ))
    }

    /// Initiator: handles the IKE_AUTH response.
    pub(crate) fn on_auth_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        mid: u32,
        p: &[Payload],
    ) -> Result<Outcome, IkeError> {
        let Pending::Auth { child_spi } = self.take_outstanding(mid)? else {
            return Err(IkeError::Unexpected("IKE_AUTH response to another request"));
        };
        let parts = Parts::of(p, false);
        if parts.auth.is_none() {
            let e = error_notify(p).unwrap_or(nt::AUTHENTICATION_FAILED);
            self.state = IkeState::Dead;
            ctx.down = Some(DownReason::PeerRefused(e));
            return Err(IkeError::PeerNotify(e));
        }
        if !self.verify_peer_auth(ctx, false, &parts) {
            self.state = IkeState::Dead;
            ctx.down = Some(DownReason::AuthFailed);
            return Err(IkeError::AuthenticationFailed);
        }
        self.establish(ctx);
        let child = self.accept_child_response(ctx, &parts, false);
        match child {
            Ok((suite, peer_spi, tsi, tsr)) => {
                let keys = self.child_keys(suite, None, &self.ni.clone(), &self.nr.clone())?;
                self.install_child(ctx, suite, child_spi, peer_spi, keys, true, tsi, tsr);
                Ok(Outcome::Nothing)
            }
            Err(e) => {
                // An IKE SA without its tunnel is of no use here: close it.
                ctx.down = Some(DownReason::NegotiationFailed);
                self.plan(super::ike_sa::Planned::DeleteIke);
                self.pump(ctx)?;
                Err(e)
            }
        }
    }

    /// Initiator side of a CHILD SA: checks the responder's choice against our offer.
    pub(crate) fn accept_child_response(
        &self,
        ctx: &Ctx<'_>,
        parts: &Parts<'_>,
        with_dh: bool,
    ) -> Result<(EspSuite, u32, Vec<TrafficSelector>, Vec<TrafficSelector>), IkeError> {
        let [prop] = parts.sa.ok_or(IkeError::NoProposalChosen)? else {
            return Err(IkeError::NoProposalChosen);
        };
        let suite = EspSuite::from_wire(prop).ok_or(IkeError::NoProposalChosen)?;
        let ok = ctx
            .cfg
            .esp_proposals
            .iter()
            .any(|o| o.select(std::slice::from_ref(prop), with_dh).map(|x| x.0) == Some(suite));
        if !ok {
            return Err(IkeError::NoProposalChosen);
        }
        let peer_spi = u32_spi(&prop.spi).ok_or(IkeError::NoProposalChosen)?;
        let tsi = narrow(
            parts.tsi.ok_or(IkeError::TsUnacceptable)?,
            &ctx.cfg.local_ts,
        );
        let tsr = narrow(
            parts.tsr.ok_or(IkeError::TsUnacceptable)?,
            &ctx.cfg.remote_ts,
        );
        if tsi.is_empty() || tsr.is_empty() {
            return Err(IkeError::TsUnacceptable);
        }
        Ok((suite, peer_spi, tsi, tsr))
    }
}
