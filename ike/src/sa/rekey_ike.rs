//! IKE SA rekey (RFC 7296 2.18) through CREATE_CHILD_SA, including simultaneous rekeys
//! (2.8.2): both exchanges complete, the new SA made with the lowest of the four nonces
//! is redundant and deleted by the side that initiated it, the other one inherits the
//! CHILD SAs, and the old SA is deleted by the side that initiated the surviving rekey.
use super::auth::Parts;
use super::child::{err_payload, shared};
use super::error::IkeError;
use super::ike_sa::{Ctx, IkeSa, IkeState, Outcome, Pending, Planned, HALF_OPEN_TIMEOUT};
use super::util::{error_notify, random_bytes, random_spi8};
use crate::crypto::keys::{derive_ike_keys, skeyseed_rekey};
use crate::proposal::IkeSuite;
use crate::wire::{notify as nt, ExchangeType, Payload};

const NONCE_LEN: usize = 32;

impl IkeSa {
    /// Sends the CREATE_CHILD_SA request that rekeys this IKE SA.
    pub(crate) fn start_ike_rekey(&mut self, ctx: &mut Ctx<'_>) -> Result<(), IkeError> {
        let group = self
            .suite
            .map(|s| s.dh)
            .ok_or(IkeError::Unexpected("no suite"))?;
        let new_spi_i = random_spi8(ctx.rng);
        let ni = random_bytes(ctx.rng, NONCE_LEN);
        let dh = group.generate(ctx.rng);
        let props = ctx
            .cfg
            .ike_proposals
            .iter()
            .enumerate()
            .map(|(i, p)| p.to_wire(i as u8 + 1, &new_spi_i))
            .collect();
        let payloads = vec![
            Payload::Sa(props),
            Payload::Nonce(ni.clone()),
            Payload::Ke {
                group: group.id(),
                data: dh.public(),
            },
        ];
        self.rekey_at = None;
        self.send_request(
            ctx,
            ExchangeType::CreateChildSa,
            &payloads,
            Pending::RekeyIke { new_spi_i, ni, dh },
        )
    }

    /// The answer to our IKE rekey request (`pending` is `Pending::RekeyIke`).
    pub(crate) fn on_ike_rekey_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        pending: Pending,
        p: &[Payload],
    ) -> Result<Outcome, IkeError> {
        let mine = self.finish_own_rekey(ctx, pending, p);
        let theirs = self.ike_collision.take();
        match (mine, theirs) {
            (Ok(mine), None) => {
                self.plan(Planned::DeleteIke);
                Ok(self.hand_over(mine, None))
            }
            (Ok(mut mine), Some(mut theirs)) => {
                let lowest = |s: &IkeSa| s.ni.clone().min(s.nr.clone());
                if lowest(&mine) < lowest(&theirs) {
                    // Ours is redundant: we delete it, the peer deletes the old SA.
                    tracing::info!(peer = %self.remote, "IKE rekey collision: ours is redundant");
                    mine.plan(Planned::DeleteIke);
                    mine.pump(ctx)?;
                    self.await_peer_delete(ctx);
                    Ok(self.hand_over(*theirs, Some(mine)))
                } else {
                    tracing::info!(peer = %self.remote, "IKE rekey collision: ours survives");
                    theirs.await_peer_delete(ctx);
                    self.plan(Planned::DeleteIke);
                    Ok(self.hand_over(mine, Some(*theirs)))
                }
            }
            (Err(e), Some(theirs)) => {
                // The peer did not notice the collision and refused ours (or ours
                // failed): its rekey stands, and it deletes the old SA (2.8.2).
                tracing::debug!(peer = %self.remote, error = %e, "own IKE rekey failed during a collision; the peer's stands");
                self.await_peer_delete(ctx);
                Ok(self.hand_over(*theirs, None))
            }
            (Err(e), None) => {
                if !matches!(e, IkeError::Decode(_) | IkeError::Crypto(_)) {
                    self.retry_later(ctx, None);
                }
                Err(e)
            }
        }
    }

    /// Builds the SA our rekey request negotiated, without taking over the CHILD SAs.
    fn finish_own_rekey(
        &mut self,
        ctx: &mut Ctx<'_>,
        pending: Pending,
        p: &[Payload],
    ) -> Result<IkeSa, IkeError> {
        let Pending::RekeyIke { new_spi_i, ni, dh } = pending else {
            return Err(IkeError::Unexpected("not an IKE rekey"));
        };
        if let Some(e) = error_notify(p) {
            return Err(IkeError::PeerNotify(e));
        }
        let parts = Parts::of(p, false);
        let [prop] = parts.sa.ok_or(IkeError::MissingPayload("SA"))? else {
            return Err(IkeError::NoProposalChosen);
        };
        let suite = IkeSuite::from_wire(prop).ok_or(IkeError::NoProposalChosen)?;
        let spi_r: [u8; 8] = prop
            .spi
            .as_slice()
            .try_into()
            .map_err(|_| IkeError::Unexpected("IKE SPI size"))?;
        if suite.dh != dh.group() {
            return Err(IkeError::NoProposalChosen);
        }
        let nr = parts
            .nonce
            .ok_or(IkeError::MissingPayload("Nonce"))?
            .to_vec();
        let g_ir =
            shared(&Some(dh), parts.ke, Some(suite.dh))?.ok_or(IkeError::MissingPayload("KE"))?;
        self.rekeyed(ctx, true, suite, (new_spi_i, spi_r), ni, nr, g_ir.expose())
    }

    /// Responder side of an IKE rekey.
    pub(crate) fn on_ike_rekey_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        mid: u32,
        parts: &Parts<'_>,
    ) -> Result<Outcome, IkeError> {
        let ex = ExchangeType::CreateChildSa;
        let ours_running = matches!(
            &self.outstanding,
            Some(o) if matches!(o.kind, Pending::RekeyIke { .. })
        );
        let child_busy = matches!(
            &self.outstanding,
            Some(o) if matches!(o.kind, Pending::RekeyChild { .. })
        ) || self.children.iter().any(|c| c.retiring);
        // An SA already rekeyed (or being closed) is not rekeyed again (2.8.2); nor
        // during a CHILD rekey, which would leave a CHILD SA on the wrong IKE SA (2.25).
        let closing = self.superseded
            || self.ike_collision.is_some()
            || self.queue.contains(&Planned::DeleteIke)
            || matches!(&self.outstanding, Some(o) if matches!(o.kind, Pending::DeleteIke));
        if closing || child_busy {
            self.send_response(ctx, ex, mid, &err_payload(nt::TEMPORARY_FAILURE, vec![]))?;
            return Err(IkeError::Unexpected("IKE rekey refused for now"));
        }
        let offered = parts.sa.unwrap_or_default();
        let Some((suite, mut reply)) = ctx.cfg.ike_proposals.iter().find_map(|o| o.select(offered))
        else {
            self.send_response(ctx, ex, mid, &err_payload(nt::NO_PROPOSAL_CHOSEN, vec![]))?;
            return Err(IkeError::NoProposalChosen);
        };
        let spi_i: [u8; 8] = reply
            .spi
            .as_slice()
            .try_into()
            .map_err(|_| IkeError::Unexpected("IKE SPI size"))?;
        let Some((kg, kdata)) = parts.ke else {
            self.send_response(ctx, ex, mid, &err_payload(nt::INVALID_SYNTAX, vec![]))?;
            return Err(IkeError::MissingPayload("KE"));
        };
        if kg != suite.dh.id() {
            let data = suite.dh.id().to_be_bytes().to_vec();
            self.send_response(ctx, ex, mid, &err_payload(nt::INVALID_KE_PAYLOAD, data))?;
            return Err(IkeError::PeerNotify(nt::INVALID_KE_PAYLOAD));
        }
        let dh = suite.dh.generate(ctx.rng);
        let g_ir = dh.shared_secret(kdata)?;
        let ni = parts
            .nonce
            .ok_or(IkeError::MissingPayload("Nonce"))?
            .to_vec();
        let nr = random_bytes(ctx.rng, NONCE_LEN);
        let spi_r = random_spi8(ctx.rng);
        reply.spi = spi_r.to_vec();
        let payloads = vec![
            Payload::Sa(vec![reply]),
            Payload::Nonce(nr.clone()),
            Payload::Ke {
                group: suite.dh.id(),
                data: dh.public(),
            },
        ];
        self.send_response(ctx, ex, mid, &payloads)?;
        let new = self.rekeyed(ctx, false, suite, (spi_i, spi_r), ni, nr, g_ir.expose())?;
        if ours_running {
            // A collision: which SA survives is known once our own rekey completes.
            tracing::info!(peer = %self.remote, "IKE rekey collision");
            self.ike_collision = Some(Box::new(new));
            return Ok(Outcome::Nothing);
        }
        // The peer initiated the rekey, so the peer deletes this SA.
        self.await_peer_delete(ctx);
        Ok(self.hand_over(new, None))
    }

    /// The peer deleted this SA while our rekey collided with its own: the peer's new SA
    /// takes over instead of the tunnel going down (2.8.2, the peer did not notice).
    pub(crate) fn take_collision_on_delete(&mut self) -> Option<Outcome> {
        let theirs = self.ike_collision.take()?;
        Some(self.hand_over(*theirs, None))
    }

    /// This SA stays until the peer deletes it, or this long at most; then we do.
    fn await_peer_delete(&mut self, ctx: &Ctx<'_>) {
        self.rekey_at = None;
        self.expire_at = Some(ctx.now + HALF_OPEN_TIMEOUT);
    }

    /// `new` replaces this SA: it takes the CHILD SAs and their queued requests.
    fn hand_over(&mut self, mut new: IkeSa, redundant: Option<IkeSa>) -> Outcome {
        self.superseded = true;
        self.rekey_at = None;
        new.children = std::mem::take(&mut self.children);
        let moves = |q: &Planned| {
            matches!(
                q,
                Planned::RekeyChild(_) | Planned::DeleteChild(_) | Planned::CreateChild
            )
        };
        for q in self.queue.iter().filter(|q| moves(q)) {
            new.plan(*q);
        }
        self.queue.retain(|q| !moves(q));
        new.new_children.append(&mut self.new_children);
        Outcome::Rekeyed {
            new: Box::new(new),
            redundant: redundant.map(Box::new),
        }
    }

    /// The IKE SA that a rekey of this one creates (RFC 7296 2.18), without CHILD SAs.
    #[allow(clippy::too_many_arguments)]
    fn rekeyed(
        &mut self,
        ctx: &mut Ctx<'_>,
        we_initiated: bool,
        suite: IkeSuite,
        (spi_i, spi_r): ([u8; 8], [u8; 8]),
        ni: Vec<u8>,
        nr: Vec<u8>,
        g_ir: &[u8],
    ) -> Result<IkeSa, IkeError> {
        let old_suite = self.suite.ok_or(IkeError::Unexpected("no suite"))?;
        let sk_d = self.sk_d().ok_or(IkeError::Unexpected("no keys"))?;
        let seed = skeyseed_rekey(old_suite.prf, sk_d.expose(), g_ir, &ni, &nr);
        let keys = derive_ike_keys(
            suite.prf,
            suite.encr,
            suite.integ,
            &seed,
            &ni,
            &nr,
            (&spi_i, &spi_r),
        );
        let mut new = IkeSa::new(we_initiated, self.local, self.remote, ctx.now);
        new.spi_i = spi_i;
        new.spi_r = spi_r;
        new.suite = Some(suite);
        new.keys = Some(keys);
        new.ni = ni;
        new.nr = nr;
        new.floated = self.floated;
        new.udp_encap = self.udp_encap;
        new.nat_there = self.nat_there;
        new.nat_here = self.nat_here;
        new.peer_fragments = self.peer_fragments;
        new.state = IkeState::Established;
        new.established_at = self.established_at;
        // The rekey exchange itself was an authenticated message from the peer.
        new.last_heard = Some(ctx.now);
        let (rekey, expire) = ctx.jittered(ctx.cfg.ike_lifetime);
        new.rekey_at = Some(rekey);
        new.expire_at = Some(expire);
        // A rekey does not authenticate anew, nor make the SA younger (see `adopt`).
        new.reauth_at = self.reauth_at;
        new.created = self.created;
        Ok(new)
    }
}
