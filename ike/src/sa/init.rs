//! IKE_SA_INIT (RFC 7296 1.2), with COOKIE (2.6), INVALID_KE_PAYLOAD (1.2) and NAT
//! detection (2.23).
use super::admission::InitGate;
use super::error::IkeError;
use super::ike_sa::{Ctx, IkeSa, IkeState, Outcome, Pending, NAT_T_PORT};
use super::util::{
    error_notify, nat_hash, notify, random_bytes, random_spi8, unsupported_critical,
};
use crate::crypto::keys::{derive_ike_keys, skeyseed};
use crate::crypto::DhGroup;
use crate::proposal::IkeSuite;
use crate::wire::{notify as nt, ExchangeType, Message, Notify, Payload};
use std::net::SocketAddr;

const NONCE_LEN: usize = 32;

/// What the tunnel should do with an IKE_SA_INIT request it has no SA for.
pub(crate) enum InitReply {
    /// Send this plaintext response and keep no state (errors).
    Stateless(Vec<u8>),
    /// Send this COOKIE request and keep no state (RFC 7296 2.6).
    Cookie(Vec<u8>),
    /// Drop the request unanswered: the tunnel admits no more new SAs for now.
    Refused,
    /// A new half-open SA, its response already queued.
    Created(Box<IkeSa>),
}

impl IkeSa {
    /// Builds and sends the IKE_SA_INIT request.
    pub(crate) fn start_init(
        &mut self,
        ctx: &mut Ctx<'_>,
        group: DhGroup,
        cookie: Option<Vec<u8>>,
        retries: u8,
    ) -> Result<(), IkeError> {
        if self.spi_i == [0; 8] {
            self.spi_i = random_spi8(ctx.rng);
        }
        self.state = IkeState::InitSent;
        self.next_mid = 0;
        let dh = group.generate(ctx.rng);
        let ni = random_bytes(ctx.rng, NONCE_LEN);
        let payloads = self.init_request_payloads(ctx, &dh, &ni, cookie.as_deref());
        self.send_request(
            ctx,
            ExchangeType::IkeSaInit,
            &payloads,
            Pending::Init {
                dh,
                ni,
                cookie,
                retries,
            },
        )
    }

    fn init_request_payloads(
        &self,
        ctx: &mut Ctx<'_>,
        dh: &crate::crypto::DhPrivate,
        ni: &[u8],
        cookie: Option<&[u8]>,
    ) -> Vec<Payload> {
        let mut p = Vec::new();
        if let Some(c) = cookie {
            p.push(Payload::Notify(Notify::new(nt::COOKIE, c.to_vec())));
        }
        let props = ctx
            .cfg
            .ike_proposals
            .iter()
            .enumerate()
            .map(|(i, x)| x.to_wire(i as u8 + 1, &[]))
            .collect();
        p.push(Payload::Sa(props));
        p.push(Payload::Ke {
            group: dh.group().id(),
            data: dh.public(),
        });
        p.push(Payload::Nonce(ni.to_vec()));
        p.extend(nat_payloads(
            ctx,
            &self.spi_i,
            &[0; 8],
            self.local,
            self.remote,
        ));
        p.push(Payload::Notify(Notify::new(
            nt::IKEV2_FRAGMENTATION_SUPPORTED,
            vec![],
        )));
        p
    }

    /// Initiator: handles the IKE_SA_INIT response.
    pub(crate) fn on_init_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        raw: &[u8],
        msg: Message,
    ) -> Result<Outcome, IkeError> {
        let Pending::Init {
            dh,
            ni,
            cookie,
            retries,
        } = self.take_outstanding(msg.header.message_id)?
        else {
            return Err(IkeError::Unexpected(
                "IKE_SA_INIT response to another request",
            ));
        };
        let p = &msg.payloads;
        if let Some(c) = notify(p, nt::COOKIE) {
            if retries >= 3 || cookie.as_deref() == Some(&c.data) {
                return Err(IkeError::Unexpected("repeated COOKIE"));
            }
            let payloads = self.init_request_payloads(ctx, &dh, &ni, Some(&c.data));
            let c = c.data.clone();
            self.next_mid = 0;
            return self
                .send_request(
                    ctx,
                    ExchangeType::IkeSaInit,
                    &payloads,
                    Pending::Init {
                        dh,
                        ni,
                        cookie: Some(c),
                        retries: retries + 1,
                    },
                )
                .map(|_| Outcome::Nothing);
        }
        if let Some(n) = notify(p, nt::INVALID_KE_PAYLOAD) {
            let group = <[u8; 2]>::try_from(n.data.as_slice())
                .ok()
                .map(u16::from_be_bytes)
                .and_then(DhGroup::from_id)
                .filter(|g| ctx.cfg.ike_proposals.iter().any(|pr| pr.dh.contains(g)))
                .filter(|g| *g != dh.group());
            return match group {
                Some(g) if retries < 3 => Ok(Outcome::RetryWithGroup(g)),
                _ => Err(IkeError::PeerNotify(nt::INVALID_KE_PAYLOAD)),
            };
        }
        if let Some(e) = error_notify(p) {
            ctx.down = Some(super::DownReason::PeerRefused(e));
            self.state = IkeState::Dead;
            return Err(IkeError::PeerNotify(e));
        }
        let (suite, ke, nr) = read_init(p)?;
        let accepted = ctx
            .cfg
            .ike_proposals
            .iter()
            .any(|o| o.select(&[suite.to_wire(1, &[])]).is_some());
        if !accepted || ke.0 != dh.group().id() || suite.dh != dh.group() {
            self.state = IkeState::Dead;
            ctx.down = Some(super::DownReason::NegotiationFailed);
            return Err(IkeError::NoProposalChosen);
        }
        if msg.header.spi_r == [0; 8] {
            return Err(IkeError::Unexpected("responder SPI is zero"));
        }
        self.spi_r = msg.header.spi_r;
        let g_ir = dh.shared_secret(&ke.1)?;
        self.ni = ni;
        self.nr = nr;
        self.derive(suite, g_ir.expose());
        self.peer_fragments = notify(p, nt::IKEV2_FRAGMENTATION_SUPPORTED).is_some();
        self.init_resp = raw.to_vec();
        let spi_r = self.spi_r;
        self.detect_nat(ctx, p, &spi_r);
        self.start_auth(ctx)?;
        Ok(Outcome::Nothing)
    }

    pub(crate) fn derive(&mut self, suite: IkeSuite, g_ir: &[u8]) {
        let seed = skeyseed(suite.prf, &self.ni, &self.nr, g_ir);
        self.keys = Some(derive_ike_keys(
            suite.prf,
            suite.encr,
            suite.integ,
            &seed,
            &self.ni,
            &self.nr,
            (&self.spi_i, &self.spi_r),
        ));
        self.suite = Some(suite);
    }

    /// Compares the peer's NAT_DETECTION hashes with the real addresses and floats to
    /// port 4500 if either side is behind a NAT or encapsulation is forced.
    /// `spi_r` as in the header of the message carrying the hashes (zero in a request).
    fn detect_nat(&mut self, ctx: &mut Ctx<'_>, p: &[Payload], spi_r: &[u8; 8]) {
        let src_ok = p.iter().any(|x| match x {
            Payload::Notify(n) if n.ty == nt::NAT_DETECTION_SOURCE_IP => {
                n.data == nat_hash(&self.spi_i, spi_r, self.remote)
            }
            _ => false,
        });
        let dst_ok = notify(p, nt::NAT_DETECTION_DESTINATION_IP)
            .map(|n| n.data == nat_hash(&self.spi_i, spi_r, self.local));
        let peer_supports = dst_ok.is_some();
        let nat = !src_ok || dst_ok == Some(false);
        if peer_supports {
            self.nat_there = !src_ok;
            self.nat_here = dst_ok == Some(false);
        }
        if peer_supports && (nat || ctx.cfg.force_encap) {
            self.udp_encap = true;
            if self.initiator && !self.floated {
                self.floated = true;
                self.local.set_port(NAT_T_PORT);
                self.remote.set_port(NAT_T_PORT);
            }
        }
    }
}

fn nat_payloads(
    ctx: &mut Ctx<'_>,
    spi_i: &[u8; 8],
    spi_r: &[u8; 8],
    local: SocketAddr,
    remote: SocketAddr,
) -> Vec<Payload> {
    // Forced encapsulation: a source hash that cannot match makes the peer see a NAT,
    // as strongSwan's encap=yes does.
    let src = if ctx.cfg.force_encap {
        random_bytes(ctx.rng, 20)
    } else {
        nat_hash(spi_i, spi_r, local)
    };
    vec![
        Payload::Notify(Notify::new(nt::NAT_DETECTION_SOURCE_IP, src)),
        Payload::Notify(Notify::new(
            nt::NAT_DETECTION_DESTINATION_IP,
            nat_hash(spi_i, spi_r, remote),
        )),
    ]
}

type KePayload = (u16, Vec<u8>);

fn read_init(p: &[Payload]) -> Result<(IkeSuite, KePayload, Vec<u8>), IkeError> {
    let mut sa = None;
    let mut ke = None;
    let mut nonce = None;
    for x in p {
        match x {
            Payload::Sa(props) => sa = Some(props),
            Payload::Ke { group, data } => ke = Some((*group, data.clone())),
            Payload::Nonce(n) => nonce = Some(n.clone()),
            _ => {}
        }
    }
    let props = sa.ok_or(IkeError::MissingPayload("SA"))?;
    let [prop] = props.as_slice() else {
        return Err(IkeError::Unexpected("response SA must hold one proposal"));
    };
    let suite = IkeSuite::from_wire(prop).ok_or(IkeError::NoProposalChosen)?;
    Ok((
        suite,
        ke.ok_or(IkeError::MissingPayload("KE"))?,
        nonce.ok_or(IkeError::MissingPayload("Nonce"))?,
    ))
}

/// Responder: handles an IKE_SA_INIT request for which no SA exists yet.
pub(crate) fn respond_init(
    ctx: &mut Ctx<'_>,
    msg: &Message,
    raw: &[u8],
    local: SocketAddr,
    remote: SocketAddr,
    cookie_required: Option<Vec<u8>>,
    gate: &mut InitGate,
) -> Result<InitReply, IkeError> {
    let h = msg.header;
    let p = &msg.payloads;
    let plain_reply = |payloads: Vec<Payload>| {
        let mut header = h;
        header.flags = crate::wire::FLAG_RESPONSE;
        header.spi_r = [0; 8];
        Message { header, payloads }.encode()
    };
    let nerr = |ty: u16, data: Vec<u8>| vec![Payload::Notify(Notify::new(ty, data))];
    if let Some(ty) = unsupported_critical(p) {
        return Ok(InitReply::Stateless(plain_reply(nerr(
            nt::UNSUPPORTED_CRITICAL_PAYLOAD,
            vec![ty],
        ))));
    }
    if let Some(expected) = cookie_required {
        let got = notify(p, nt::COOKIE).map(|n| n.data.clone());
        if got.as_deref() != Some(expected.as_slice()) {
            return Ok(InitReply::Cookie(plain_reply(nerr(nt::COOKIE, expected))));
        }
    }
    let offered = p
        .iter()
        .find_map(|x| match x {
            Payload::Sa(props) => Some(props),
            _ => None,
        })
        .ok_or(IkeError::MissingPayload("SA"))?;
    let Some((suite, reply_prop)) = ctx.cfg.ike_proposals.iter().find_map(|o| o.select(offered))
    else {
        return Ok(InitReply::Stateless(plain_reply(nerr(
            nt::NO_PROPOSAL_CHOSEN,
            vec![],
        ))));
    };
    let (group, ke_data) = p
        .iter()
        .find_map(|x| match x {
            Payload::Ke { group, data } => Some((*group, data.clone())),
            _ => None,
        })
        .ok_or(IkeError::MissingPayload("KE"))?;
    if group != suite.dh.id() {
        return Ok(InitReply::Stateless(plain_reply(nerr(
            nt::INVALID_KE_PAYLOAD,
            suite.dh.id().to_be_bytes().to_vec(),
        ))));
    }
    let ni = p
        .iter()
        .find_map(|x| match x {
            Payload::Nonce(n) => Some(n.clone()),
            _ => None,
        })
        .ok_or(IkeError::MissingPayload("Nonce"))?;
    // Only now, with everything checked, does the request cost a DH computation.
    if !gate.admit(ctx.now) {
        return Ok(InitReply::Refused);
    }
    let dh = suite.dh.generate(ctx.rng);
    let g_ir = match dh.shared_secret(&ke_data) {
        Ok(g) => g,
        Err(_) => {
            // RFC 7296 doesn't name an error for a bad KE value; INVALID_SYNTAX fits.
            return Ok(InitReply::Stateless(plain_reply(nerr(
                nt::INVALID_SYNTAX,
                vec![],
            ))));
        }
    };
    let mut sa = IkeSa::new(false, local, remote, ctx.now);
    sa.state = IkeState::HalfOpen;
    sa.spi_i = h.spi_i;
    sa.spi_r = random_spi8(ctx.rng);
    sa.ni = ni;
    sa.nr = random_bytes(ctx.rng, NONCE_LEN);
    sa.derive(suite, g_ir.expose());
    sa.peer_fragments = notify(p, nt::IKEV2_FRAGMENTATION_SUPPORTED).is_some();
    sa.floated = local.port() == NAT_T_PORT;
    sa.detect_nat(ctx, p, &[0; 8]);
    let mut payloads = vec![
        Payload::Sa(vec![reply_prop]),
        Payload::Ke {
            group: suite.dh.id(),
            data: dh.public(),
        },
        Payload::Nonce(sa.nr.clone()),
    ];
    payloads.extend(nat_payloads(ctx, &sa.spi_i, &sa.spi_r, local, remote));
    payloads.push(Payload::Notify(Notify::new(
        nt::IKEV2_FRAGMENTATION_SUPPORTED,
        vec![],
    )));
    let header = sa.header(ExchangeType::IkeSaInit, 0, true);
    let resp = Message { header, payloads }.encode();
    sa.init_req = raw.to_vec();
    sa.init_resp = resp.clone();
    sa.transmit(ctx, std::slice::from_ref(&resp));
    sa.last_response = Some((0, vec![resp]));
    sa.peer_mid = 1;
    Ok(InitReply::Created(Box::new(sa)))
}
