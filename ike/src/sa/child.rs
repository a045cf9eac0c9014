//! CREATE_CHILD_SA (RFC 7296 1.3) for CHILD SAs: additional CHILD SAs and CHILD SA rekeys
//! with optional PFS, simultaneous CHILD rekeys (2.8.1). IKE rekeys are in `rekey_ike`.
use super::auth::Parts;
use super::error::IkeError;
use super::ike_sa::{Additional, Ctx, IkeSa, Outcome, Pending, Planned};
use super::util::{error_notify, notify, random_bytes, random_esp_spi, u32_spi};
use crate::crypto::{DhGroup, DhPrivate};
use crate::wire::{notify as nt, protocol, ExchangeType, Notify, Payload, TrafficSelector};
use std::time::Duration;

const NONCE_LEN: usize = 32;

pub(crate) fn err_payload(ty: u16, data: Vec<u8>) -> Vec<Payload> {
    vec![Payload::Notify(Notify::new(ty, data))]
}

impl IkeSa {
    /// Sends the CREATE_CHILD_SA request that rekeys the CHILD SA with this inbound SPI.
    pub(crate) fn start_child_rekey(
        &mut self,
        ctx: &mut Ctx<'_>,
        old: u32,
    ) -> Result<(), IkeError> {
        let Some(child) = self
            .children
            .iter_mut()
            .find(|c| c.inbound_spi == old && !c.retiring)
        else {
            return Ok(());
        };
        child.retiring = true;
        let (tsi, tsr) = (child.local_ts.clone(), child.remote_ts.clone());
        let pfs = ctx
            .cfg
            .esp_proposals
            .first()
            .and_then(|p| p.dh.first().copied());
        let new_spi = random_esp_spi(ctx.rng);
        let ni = random_bytes(ctx.rng, NONCE_LEN);
        let dh = pfs.map(|g| g.generate(ctx.rng));
        let props = ctx
            .cfg
            .esp_proposals
            .iter()
            .enumerate()
            .map(|(i, p)| p.to_wire(i as u8 + 1, new_spi.to_be_bytes(), true))
            .collect();
        let mut payloads = vec![
            Payload::Notify(Notify {
                protocol: protocol::ESP,
                spi: old.to_be_bytes().to_vec(),
                ty: nt::REKEY_SA,
                data: vec![],
            }),
            Payload::Sa(props),
            Payload::Nonce(ni.clone()),
        ];
        if let Some(d) = &dh {
            payloads.push(Payload::Ke {
                group: d.group().id(),
                data: d.public(),
            });
        }
        payloads.push(Payload::TsI(tsi));
        payloads.push(Payload::TsR(tsr));
        self.send_request(
            ctx,
            ExchangeType::CreateChildSa,
            &payloads,
            Pending::RekeyChild {
                old_inbound: old,
                new_spi,
                ni,
                dh,
            },
        )
    }

    /// Sends a CREATE_CHILD_SA request for an additional CHILD SA with these selectors
    /// (RFC 7296 1.3.1), with PFS if the first ESP proposal names a group.
    pub(crate) fn start_create_child(
        &mut self,
        ctx: &mut Ctx<'_>,
        tsi: Vec<TrafficSelector>,
        tsr: Vec<TrafficSelector>,
    ) -> Result<(), IkeError> {
        let pfs = ctx
            .cfg
            .esp_proposals
            .first()
            .and_then(|p| p.dh.first().copied());
        let new_spi = random_esp_spi(ctx.rng);
        let ni = random_bytes(ctx.rng, NONCE_LEN);
        let dh = pfs.map(|g| g.generate(ctx.rng));
        let props = ctx
            .cfg
            .esp_proposals
            .iter()
            .enumerate()
            .map(|(i, p)| p.to_wire(i as u8 + 1, new_spi.to_be_bytes(), true))
            .collect();
        let mut payloads = vec![Payload::Sa(props), Payload::Nonce(ni.clone())];
        if let Some(d) = &dh {
            payloads.push(Payload::Ke {
                group: d.group().id(),
                data: d.public(),
            });
        }
        payloads.push(Payload::TsI(tsi));
        payloads.push(Payload::TsR(tsr));
        self.send_request(
            ctx,
            ExchangeType::CreateChildSa,
            &payloads,
            Pending::CreateChild { new_spi, ni, dh },
        )
    }

    /// Retries a failed rekey after a short random pause (TEMPORARY_FAILURE, collisions).
    pub(crate) fn retry_later(&mut self, ctx: &mut Ctx<'_>, child: Option<u32>) {
        let wait = Duration::from_millis(1000 + ctx.rng.next_u64() % 4000);
        match child.and_then(|s| self.children.iter_mut().find(|c| c.inbound_spi == s)) {
            Some(c) => {
                c.retiring = false;
                c.rekey_at = ctx.now + wait;
            }
            None if child.is_none() => self.rekey_at = Some(ctx.now + wait),
            None => {}
        }
    }

    pub(crate) fn on_create_child_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        pending: Pending,
        p: &[Payload],
    ) -> Result<Outcome, IkeError> {
        match pending {
            Pending::RekeyChild {
                old_inbound,
                new_spi,
                ni,
                dh,
            } => {
                if let Some(e) = error_notify(p) {
                    self.collisions.retain(|c| c.0 != old_inbound);
                    self.retry_later(ctx, Some(old_inbound));
                    return Err(IkeError::PeerNotify(e));
                }
                let parts = Parts::of(p, false);
                let nr = parts
                    .nonce
                    .ok_or(IkeError::MissingPayload("Nonce"))?
                    .to_vec();
                let (suite, peer_spi, tsi, tsr) =
                    match self.accept_child_response(ctx, &parts, dh.is_some()) {
                        Ok(x) => x,
                        Err(e) => {
                            self.retry_later(ctx, Some(old_inbound));
                            return Err(e);
                        }
                    };
                let g_ir = shared(&dh, parts.ke, suite.dh)?;
                let keys = self.child_keys(suite, g_ir.as_ref().map(|g| g.expose()), &ni, &nr)?;
                self.install_child(ctx, suite, new_spi, peer_spi, keys, true, tsi, tsr);
                // RFC 7296 2.8.1: if the peer rekeyed the same SA at the same time, the
                // new SA made with the lowest of the four nonces is redundant and is
                // deleted by the node that created it. The old SA is deleted by the
                // node whose new SA survives: it has that SA installed by now, while the
                // peer's copy may still wait for a lost response.
                let mut redundant = false;
                if let Some(pos) = self.collisions.iter().position(|c| c.0 == old_inbound) {
                    let (_, theirs) = self.collisions.remove(pos);
                    let ours_min = ni.clone().min(nr.clone());
                    let theirs_min = theirs.0.min(theirs.1);
                    redundant = ours_min < theirs_min;
                }
                if redundant {
                    self.plan(Planned::DeleteChild(new_spi));
                } else if self.children.iter().any(|c| c.inbound_spi == old_inbound) {
                    self.plan(Planned::DeleteChild(old_inbound));
                }
                Ok(Outcome::Nothing)
            }
            k @ Pending::RekeyIke { .. } => self.on_ike_rekey_response(ctx, k, p),
            Pending::CreateChild { new_spi, ni, dh } => {
                if let Some(e) = error_notify(p) {
                    return Err(IkeError::PeerNotify(e));
                }
                let parts = Parts::of(p, false);
                let nr = parts
                    .nonce
                    .ok_or(IkeError::MissingPayload("Nonce"))?
                    .to_vec();
                let (suite, peer_spi, tsi, tsr) =
                    self.accept_child_response(ctx, &parts, dh.is_some())?;
                let g_ir = shared(&dh, parts.ke, suite.dh)?;
                let keys = self.child_keys(suite, g_ir.as_ref().map(|g| g.expose()), &ni, &nr)?;
                self.install_child(ctx, suite, new_spi, peer_spi, keys, true, tsi, tsr);
                self.settle_duplicates(new_spi, ni.min(nr), true);
                Ok(Outcome::Nothing)
            }
            _ => Err(IkeError::Unexpected(
                "CREATE_CHILD_SA response to another request",
            )),
        }
    }

    /// CHILD SAs not being replaced by a rekey.
    fn live_children(&self) -> usize {
        self.children.iter().filter(|c| !c.retiring).count()
    }

    /// Responder side of CREATE_CHILD_SA: a CHILD SA rekey, an additional CHILD SA, or
    /// an IKE SA rekey.
    pub(crate) fn on_create_child_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        mid: u32,
        p: &[Payload],
    ) -> Result<Outcome, IkeError> {
        let ex = ExchangeType::CreateChildSa;
        let parts = Parts::of(p, true);
        let is_ike = parts
            .sa
            .and_then(|s| s.first())
            .is_some_and(|x| x.protocol == protocol::IKE);
        if is_ike {
            return self.on_ike_rekey_request(ctx, mid, &parts);
        }
        let old = match notify(p, nt::REKEY_SA).filter(|n| n.protocol == protocol::ESP) {
            Some(n) => Some(self.rekey_target(ctx, mid, &n.spi)?),
            None if ctx.cfg.additional_children && self.live_children() < ctx.cfg.max_children => {
                None
            }
            None => {
                self.send_response(ctx, ex, mid, &err_payload(nt::NO_ADDITIONAL_SAS, vec![]))?;
                return Err(IkeError::Unexpected("request for an additional CHILD SA"));
            }
        };
        // Proposal and traffic selectors, narrowed to ours (for a rekey, too: the
        // config may have changed since).
        let (suite, mut reply, tsi, tsr, peer_spi) =
            match self.select_child(ctx, &parts, parts.ke.is_some()) {
                Ok(x) => x,
                Err(e) => {
                    let ty = if e == IkeError::TsUnacceptable {
                        nt::TS_UNACCEPTABLE
                    } else {
                        nt::NO_PROPOSAL_CHOSEN
                    };
                    self.send_response(ctx, ex, mid, &err_payload(ty, vec![]))?;
                    return Err(e);
                }
            };
        let ni = parts
            .nonce
            .ok_or(IkeError::MissingPayload("Nonce"))?
            .to_vec();
        let dh = suite.dh.map(|g| g.generate(ctx.rng));
        if let (Some(g), Some((kg, _))) = (suite.dh, parts.ke) {
            if g.id() != kg {
                let data = g.id().to_be_bytes().to_vec();
                self.send_response(ctx, ex, mid, &err_payload(nt::INVALID_KE_PAYLOAD, data))?;
                return Err(IkeError::PeerNotify(nt::INVALID_KE_PAYLOAD));
            }
        }
        let g_ir = match shared(&dh, parts.ke, suite.dh) {
            Ok(g) => g,
            Err(e) => {
                self.send_response(ctx, ex, mid, &err_payload(nt::INVALID_SYNTAX, vec![]))?;
                return Err(e);
            }
        };
        let nr = random_bytes(ctx.rng, NONCE_LEN);
        let our_spi = random_esp_spi(ctx.rng);
        reply.spi = our_spi.to_be_bytes().to_vec();
        let mut payloads = vec![Payload::Sa(vec![reply]), Payload::Nonce(nr.clone())];
        if let Some(d) = &dh {
            payloads.push(Payload::Ke {
                group: d.group().id(),
                data: d.public(),
            });
        }
        payloads.push(Payload::TsI(tsi.clone()));
        payloads.push(Payload::TsR(tsr.clone()));
        let keys = self.child_keys(suite, g_ir.as_ref().map(|g| g.expose()), &ni, &nr)?;
        let response = self.seal_response(ctx, ex, mid, &payloads)?;
        if let Some(old) = old {
            let ours_pending = matches!(
                &self.outstanding,
                Some(o) if matches!(o.kind, Pending::RekeyChild { old_inbound, .. } if old_inbound == old)
            );
            if ours_pending {
                self.collisions.push((old, (ni.clone(), nr.clone())));
            }
            if let Some(c) = self.children.iter_mut().find(|c| c.inbound_spi == old) {
                c.retiring = true;
            }
        }
        // Installed before the response leaves: the peer sends on the new SA at once.
        self.install_child(ctx, suite, our_spi, peer_spi, keys, false, tsr, tsi);
        self.transmit(ctx, &response);
        if old.is_none() {
            self.settle_duplicates(our_spi, ni.min(nr), false);
        }
        Ok(Outcome::Nothing)
    }

    /// Records the new additional CHILD SA `spi` (made by CREATE_CHILD_SA without
    /// REKEY_SA; `ours`: we asked for it; `lowest_nonce`: the lower of its two nonces),
    /// then settles duplicates. Both sides may configure the same additional CHILD SA and
    /// ask for it at once, and both SAs get made. As for rekey collisions (RFC 7296
    /// 2.8.1), the one made with the lowest of the four nonces is redundant and its
    /// initiator deletes it. Each side applies this whenever one of its additional SAs
    /// gets a twin, from nonces both sides know, so exactly one goes, also when only one
    /// side saw the requests cross (the other's request was lost and came again after).
    fn settle_duplicates(&mut self, spi: u32, lowest_nonce: Vec<u8>, ours: bool) {
        let Some(new) = self.children.iter_mut().find(|c| c.inbound_spi == spi) else {
            return;
        };
        new.additional = Some(Additional { lowest_nonce, ours });
        let (local, remote) = (new.local_ts.clone(), new.remote_ts.clone());
        let twins: Vec<(u32, &Additional)> = self
            .children
            .iter()
            .filter(|c| !c.retiring && c.local_ts == local && c.remote_ts == remote)
            .filter_map(|c| Some((c.inbound_spi, c.additional.as_ref()?)))
            .collect();
        let redundant = twins
            .iter()
            .min_by(|a, b| a.1.lowest_nonce.cmp(&b.1.lowest_nonce))
            .filter(|(_, a)| twins.len() > 1 && a.ours)
            .map(|(spi, _)| *spi);
        if let Some(spi) = redundant {
            self.plan(Planned::DeleteChild(spi));
        }
    }

    /// The inbound SPI of the CHILD SA a REKEY_SA notify names; an unknown SA, or one
    /// being deleted, is answered here with an error.
    fn rekey_target(&mut self, ctx: &mut Ctx<'_>, mid: u32, spi: &[u8]) -> Result<u32, IkeError> {
        let ex = ExchangeType::CreateChildSa;
        let Some(old) = u32_spi(spi)
            .and_then(|s| self.children.iter().find(|c| c.outbound_spi == s))
            .map(|c| c.inbound_spi)
        else {
            self.send_response(ctx, ex, mid, &err_payload(nt::CHILD_SA_NOT_FOUND, vec![]))?;
            return Err(IkeError::Unexpected("rekey of unknown CHILD SA"));
        };
        // A CHILD SA we are deleting (our rekey of it already completed: the peer did
        // not see the collision) is not rekeyed again (RFC 7296 2.8.1, 2.25).
        let deleting = self.queue.contains(&Planned::DeleteChild(old))
            || matches!(&self.outstanding, Some(o) if matches!(o.kind, Pending::DeleteChild(s) if s == old));
        if deleting {
            self.send_response(ctx, ex, mid, &err_payload(nt::TEMPORARY_FAILURE, vec![]))?;
            return Err(IkeError::Unexpected("rekey of a CHILD SA being deleted"));
        }
        Ok(old)
    }
}

/// g^ir for a CREATE_CHILD_SA with PFS; `None` without.
pub(crate) fn shared(
    dh: &Option<DhPrivate>,
    ke: Option<(u16, &[u8])>,
    group: Option<DhGroup>,
) -> Result<Option<crate::crypto::Secret>, IkeError> {
    match (dh, ke, group) {
        (Some(d), Some((g, data)), Some(want)) if g == want.id() && d.group() == want => {
            Ok(Some(d.shared_secret(data)?))
        }
        (None, _, None) => Ok(None),
        _ => Err(IkeError::MissingPayload("KE")),
    }
}
