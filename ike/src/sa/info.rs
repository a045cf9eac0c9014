//! INFORMATIONAL (RFC 7296 1.4): DELETE, liveness checks; plus the dispatch of
//! encrypted messages and the timers of an established IKE SA.
use super::action::DownReason;
use super::config::DpdAction;
use super::error::IkeError;
use super::ike_sa::{Ctx, IkeSa, IkeState, Outcome, Pending, Planned};
use super::util::{u32_spi, unsupported_critical};
use crate::wire::{notify as nt, protocol, Delete, ExchangeType, Header, Notify, Payload};

impl IkeSa {
    pub(crate) fn start_planned(&mut self, ctx: &mut Ctx<'_>, p: Planned) -> Result<(), IkeError> {
        let info = ExchangeType::Informational;
        match p {
            Planned::RekeyChild(spi) => self.start_child_rekey(ctx, spi),
            Planned::RekeyIke => self.start_ike_rekey(ctx),
            Planned::DeleteChild(spi) => {
                if let Some(c) = self.children.iter_mut().find(|c| c.inbound_spi == spi) {
                    c.retiring = true;
                }
                let d = Payload::Delete(Delete {
                    protocol: protocol::ESP,
                    spi_size: 4,
                    spis: vec![spi.to_be_bytes().to_vec()],
                });
                self.send_request(ctx, info, &[d], Pending::DeleteChild(spi))
            }
            Planned::DeleteIke => {
                let d = Payload::Delete(Delete {
                    protocol: protocol::IKE,
                    spi_size: 0,
                    spis: vec![],
                });
                self.send_request(ctx, info, &[d], Pending::DeleteIke)
            }
            Planned::Dpd => self.send_request(ctx, info, &[], Pending::Dpd),
            Planned::CreateChild => {
                let Some((tsi, tsr)) = self.new_children.pop_front() else {
                    return Ok(());
                };
                if !self.new_children.is_empty() {
                    self.plan(Planned::CreateChild);
                }
                // The peer may have created it meanwhile (both sides configured it).
                if self
                    .children
                    .iter()
                    .any(|c| c.local_ts == tsi && c.remote_ts == tsr)
                {
                    return Ok(());
                }
                self.start_create_child(ctx, tsi, tsr)
            }
        }
    }

    /// Handles an encrypted message of this SA (after the IKE_SA_INIT exchange).
    pub(crate) fn on_encrypted(
        &mut self,
        ctx: &mut Ctx<'_>,
        raw: &[u8],
    ) -> Result<Outcome, IkeError> {
        let Some((h, payloads)) = self.open(raw)? else {
            return Ok(Outcome::Nothing);
        };
        // Authenticated from here on.
        self.last_rx = ctx.now;
        self.last_heard = Some(ctx.now);
        let outcome = if h.is_response() {
            let payloads = payloads?;
            self.on_response(ctx, &h, &payloads)
        } else {
            if !self.accept_request(ctx, h.message_id)? {
                return Ok(Outcome::Retransmission);
            }
            match payloads {
                Ok(p) => self.on_request(ctx, &h, &p),
                Err(e) => {
                    let n = Payload::Notify(Notify::new(nt::INVALID_SYNTAX, vec![]));
                    self.send_response(ctx, h.exchange, h.message_id, &[n])?;
                    Err(e.into())
                }
            }
        };
        self.pump(ctx)?;
        outcome
    }

    fn on_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        h: &Header,
        p: &[Payload],
    ) -> Result<Outcome, IkeError> {
        if h.exchange == ExchangeType::IkeAuth {
            return self.on_auth_response(ctx, h.message_id, p);
        }
        let pending = self.take_outstanding(h.message_id)?;
        match (h.exchange, pending) {
            (ExchangeType::CreateChildSa, k) => self.on_create_child_response(ctx, k, p),
            (ExchangeType::Informational, Pending::DeleteChild(spi)) => {
                self.remove_child(ctx, spi);
                Ok(Outcome::Nothing)
            }
            (ExchangeType::Informational, Pending::DeleteIke) => {
                self.remove_all_children(ctx);
                self.state = IkeState::Dead;
                Ok(Outcome::Dead)
            }
            (ExchangeType::Informational, Pending::Dpd) => Ok(Outcome::Nothing),
            _ => Err(IkeError::Unexpected("response of the wrong exchange type")),
        }
    }

    fn on_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        h: &Header,
        p: &[Payload],
    ) -> Result<Outcome, IkeError> {
        let mid = h.message_id;
        if let Some(ty) = unsupported_critical(p) {
            let n = Payload::Notify(Notify::new(nt::UNSUPPORTED_CRITICAL_PAYLOAD, vec![ty]));
            self.send_response(ctx, h.exchange, mid, &[n])?;
            return Err(IkeError::UnsupportedCritical(ty));
        }
        match h.exchange {
            ExchangeType::IkeAuth if self.state == IkeState::HalfOpen => {
                self.on_auth_request(ctx, mid, p)
            }
            ExchangeType::CreateChildSa if self.is_established() => {
                self.on_create_child_request(ctx, mid, p)
            }
            ExchangeType::Informational if self.is_established() => {
                self.on_informational(ctx, mid, p)
            }
            _ => {
                let n = Payload::Notify(Notify::new(nt::INVALID_SYNTAX, vec![]));
                self.send_response(ctx, h.exchange, mid, &[n])?;
                Err(IkeError::Unexpected("request not valid in this state"))
            }
        }
    }

    fn on_informational(
        &mut self,
        ctx: &mut Ctx<'_>,
        mid: u32,
        p: &[Payload],
    ) -> Result<Outcome, IkeError> {
        let info = ExchangeType::Informational;
        let deletes: Vec<&Delete> = p
            .iter()
            .filter_map(|x| match x {
                Payload::Delete(d) => Some(d),
                _ => None,
            })
            .collect();
        if deletes.iter().any(|d| d.protocol == protocol::IKE) {
            self.send_response(ctx, info, mid, &[])?;
            self.state = IkeState::Dead;
            if let Some(taken_over) = self.take_collision_on_delete() {
                return Ok(taken_over);
            }
            self.remove_all_children(ctx);
            self.state = IkeState::Dead;
            ctx.down = Some(DownReason::PeerDelete);
            return Ok(Outcome::Dead);
        }
        let mut ours = Vec::new();
        for d in deletes.iter().filter(|d| d.protocol == protocol::ESP) {
            for spi in d.spis.iter().filter_map(|s| u32_spi(s)) {
                let found = self
                    .children
                    .iter()
                    .find(|c| c.outbound_spi == spi)
                    .map(|c| c.inbound_spi);
                if let Some(inb) = found {
                    self.remove_child(ctx, inb);
                    self.queue.retain(|q| {
                        *q != Planned::DeleteChild(inb) && *q != Planned::RekeyChild(inb)
                    });
                    ours.push(inb.to_be_bytes().to_vec());
                }
            }
        }
        let payloads = if ours.is_empty() {
            vec![]
        } else {
            vec![Payload::Delete(Delete {
                protocol: protocol::ESP,
                spi_size: 4,
                spis: ours,
            })]
        };
        self.send_response(ctx, info, mid, &payloads)?;
        Ok(Outcome::Nothing)
    }

    /// Retransmissions, lifetimes and DPD. Returns `Dead` if the SA must go.
    pub(crate) fn on_timer(&mut self, ctx: &mut Ctx<'_>) -> Result<Outcome, IkeError> {
        if self.on_retransmit_timer(ctx) {
            self.remove_all_children(ctx);
            self.state = IkeState::Dead;
            let deleting = matches!(
                self.outstanding.as_ref().map(|o| &o.kind),
                Some(Pending::DeleteIke)
            );
            if !deleting {
                ctx.down = Some(DownReason::PeerDead);
            }
            return Ok(Outcome::Dead);
        }
        if self.state == IkeState::HalfOpen
            && ctx.now >= self.created + super::ike_sa::HALF_OPEN_TIMEOUT
        {
            self.state = IkeState::Dead;
            return Ok(Outcome::Dead);
        }
        if !self.is_established() {
            return Ok(Outcome::Nothing);
        }
        let now = ctx.now;
        if self.expire_at.is_some_and(|t| now >= t) {
            if !self.children.is_empty() {
                ctx.down = Some(DownReason::Expired);
            }
            self.remove_all_children(ctx);
            self.expire_at = None;
            self.queue.clear();
            self.plan(Planned::DeleteIke);
        }
        let expired: Vec<u32> = self
            .children
            .iter()
            .filter(|c| now >= c.expire_at)
            .map(|c| c.inbound_spi)
            .collect();
        for spi in expired {
            self.remove_child(ctx, spi);
            ctx.down.get_or_insert(DownReason::Expired);
        }
        let due: Vec<u32> = self
            .children
            .iter()
            .filter(|c| !c.retiring && now >= c.rekey_at)
            .map(|c| c.inbound_spi)
            .collect();
        for spi in due {
            self.plan(Planned::RekeyChild(spi));
        }
        if self.rekey_at.is_some_and(|t| now >= t) {
            self.rekey_at = None;
            self.plan(Planned::RekeyIke);
        }
        if let Some(d) = ctx.cfg.dpd {
            if self.outstanding.is_none()
                && self.queue.is_empty()
                && now >= self.last_rx + d.interval
            {
                self.last_rx = now;
                self.plan(Planned::Dpd);
            }
        }
        self.pump(ctx)?;
        Ok(Outcome::Nothing)
    }
}

/// Whether a dead peer should be negotiated with again.
pub(crate) fn restart_after_dead_peer(cfg: &super::Config) -> bool {
    match cfg.dpd {
        Some(d) => d.action == DpdAction::Restart,
        None => cfg.start_action == super::StartAction::Initiate,
    }
}
