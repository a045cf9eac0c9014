//! One IKE SA: identity, keys, message-ID windows (size 1), retransmission and the
//! CHILD SAs it owns. The exchanges live in `init`, `auth`, `child` and `info`.
use super::action::{Action, ChildSaInstall, DirectionKeys, DownReason};
use super::config::{Config, Lifetime};
use super::error::IkeError;
use crate::crypto::keys::{ChildKeys, IkeKeys};
use crate::crypto::sk::{Reassembler, SkCipher};
use crate::crypto::{DhPrivate, Secret};
use crate::proposal::{EspSuite, IkeSuite};
use crate::wire::{
    decode_chain, encode_chain, ExchangeType, Header, Message, Payload, TrafficSelector,
    FLAG_INITIATOR, FLAG_RESPONSE, HEADER_LEN,
};
use rand_core::CryptoRngCore;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub(crate) const NON_ESP_MARKER: [u8; 4] = [0; 4];

/// An IKE message as it leaves from `local`: with the non-ESP marker on port 4500.
pub(crate) fn datagram_from(local: SocketAddr, msg: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(NON_ESP_MARKER.len() + msg.len());
    if local.port() == NAT_T_PORT {
        bytes.extend_from_slice(&NON_ESP_MARKER);
    }
    bytes.extend_from_slice(msg);
    bytes
}
pub(crate) const NAT_T_PORT: u16 = 4500;

/// What an exchange handler needs from the tunnel.
pub(crate) struct Ctx<'a> {
    pub cfg: &'a Config,
    pub now: Instant,
    pub rng: &'a mut dyn CryptoRngCore,
    pub out: &'a mut VecDeque<Action>,
    /// Why the tunnel went down, if something in this step took it down.
    pub down: Option<DownReason>,
    /// The tunnel has an established IKE SA besides the one this step is about: our
    /// IKE_AUTH then carries no INITIAL_CONTACT (RFC 7296 2.4: it asserts the new SA is
    /// the only one).
    pub has_ike_sa: bool,
}

impl<'a> Ctx<'a> {
    /// A step that has not taken the tunnel down (yet).
    pub fn new(
        cfg: &'a Config,
        now: Instant,
        rng: &'a mut dyn CryptoRngCore,
        out: &'a mut VecDeque<Action>,
    ) -> Self {
        Ctx {
            cfg,
            now,
            rng,
            out,
            down: None,
            has_ike_sa: false,
        }
    }

    /// `base` shortened by a random amount up to `jitter`.
    pub fn jittered(&mut self, l: Lifetime) -> (Instant, Instant) {
        let j = l.jitter.as_millis().min(u128::from(u64::MAX)) as u64;
        let cut = if j == 0 { 0 } else { self.rng.next_u64() % j };
        let rekey = l.rekey.saturating_sub(Duration::from_millis(cut));
        (self.now + rekey, self.now + l.hard)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IkeState {
    /// Initiator: IKE_SA_INIT sent.
    InitSent,
    /// Initiator: IKE_AUTH sent.
    AuthSent,
    /// Responder: IKE_SA_INIT answered, waiting for IKE_AUTH.
    HalfOpen,
    Established,
    /// Delete sent or received, or failed: about to be removed.
    Dead,
}

/// Our request in flight, and what to do with its answer.
pub(crate) enum Pending {
    Init {
        dh: DhPrivate,
        ni: Vec<u8>,
        cookie: Option<Vec<u8>>,
        retries: u8,
    },
    Auth {
        child_spi: u32,
    },
    RekeyChild {
        old_inbound: u32,
        new_spi: u32,
        ni: Vec<u8>,
        dh: Option<DhPrivate>,
    },
    RekeyIke {
        new_spi_i: [u8; 8],
        ni: Vec<u8>,
        dh: DhPrivate,
    },
    DeleteChild(u32),
    DeleteIke,
    Dpd,
    /// An additional CHILD SA (not a rekey).
    CreateChild {
        new_spi: u32,
        ni: Vec<u8>,
        dh: Option<DhPrivate>,
    },
}

pub(crate) struct Outstanding {
    pub mid: u32,
    pub packets: Vec<Vec<u8>>,
    pub retries: u32,
    pub next_at: Instant,
    pub kind: Pending,
}

/// Requests waiting for the window to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Planned {
    RekeyChild(u32),
    RekeyIke,
    DeleteChild(u32),
    DeleteIke,
    Dpd,
    /// The next of `IkeSa::new_children`.
    CreateChild,
}

#[derive(Debug)]
pub(crate) struct ChildSa {
    pub inbound_spi: u32,
    pub outbound_spi: u32,
    pub local_ts: Vec<TrafficSelector>,
    pub remote_ts: Vec<TrafficSelector>,
    pub rekey_at: Instant,
    pub expire_at: Instant,
    /// A rekey or delete of this SA is under way.
    pub retiring: bool,
    /// Set for an additional CHILD SA (not one from IKE_AUTH or a rekey), to settle
    /// duplicates (see `child::settle_duplicates`).
    pub additional: Option<Additional>,
}

/// How an additional CHILD SA was made.
#[derive(Debug)]
pub(crate) struct Additional {
    /// The lower of the exchange's two nonces.
    pub lowest_nonce: Vec<u8>,
    /// We asked for it.
    pub ours: bool,
}

/// Result of handling one message, for the tunnel to act on.
pub(crate) enum Outcome {
    Nothing,
    /// A responder SA finished IKE_AUTH.
    Established {
        initial_contact: bool,
    },
    /// An IKE rekey produced `new`, which has taken over the CHILD SAs; `redundant` is
    /// the other new SA of a rekey collision, on its way out.
    Rekeyed {
        new: Box<IkeSa>,
        redundant: Option<Box<IkeSa>>,
    },
    /// This SA is finished; remove it.
    Dead,
    /// IKE_SA_INIT must be started again with this group (INVALID_KE_PAYLOAD).
    RetryWithGroup(crate::crypto::DhGroup),
    /// A retransmitted request, answered with the cached response.
    Retransmission,
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Nothing => f.write_str("Nothing"),
            Outcome::Established { initial_contact } => {
                write!(f, "Established {{ initial_contact: {initial_contact} }}")
            }
            Outcome::Rekeyed { .. } => f.write_str("Rekeyed"),
            Outcome::Dead => f.write_str("Dead"),
            Outcome::RetryWithGroup(g) => write!(f, "RetryWithGroup({g:?})"),
            Outcome::Retransmission => f.write_str("Retransmission"),
        }
    }
}

/// Ni and Nr of one exchange.
pub(crate) type Nonces = (Vec<u8>, Vec<u8>);

pub(crate) struct IkeSa {
    /// We are the original initiator of this IKE SA (the I flag).
    pub initiator: bool,
    pub spi_i: [u8; 8],
    pub spi_r: [u8; 8],
    pub state: IkeState,
    pub suite: Option<IkeSuite>,
    pub keys: Option<IkeKeys>,
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// On port 4500 with the non-ESP marker.
    pub floated: bool,
    /// ESP goes in UDP (NAT detected or forced).
    pub udp_encap: bool,
    /// NAT detection (RFC 7296 2.23): the peer's source did not match its hash (it is
    /// behind a NAT, or forces encapsulation that way), ...
    pub nat_there: bool,
    /// ... our address did not match the hash the peer saw (we are behind a NAT).
    pub nat_here: bool,
    pub peer_fragments: bool,
    pub next_mid: u32,
    pub outstanding: Option<Outstanding>,
    pub queue: VecDeque<Planned>,
    pub peer_mid: u32,
    pub last_response: Option<(u32, Vec<Vec<u8>>)>,
    /// IKE_SA_INIT request and response as sent (for AUTH).
    pub init_req: Vec<u8>,
    pub init_resp: Vec<u8>,
    pub children: Vec<ChildSa>,
    pub rekey_at: Option<Instant>,
    pub expire_at: Option<Instant>,
    pub last_rx: Instant,
    /// The last authenticated message from the peer (unlike `last_rx`, not moved by DPD
    /// scheduling).
    pub last_heard: Option<Instant>,
    pub created: Instant,
    /// When this IKE SA, or the one it was rekeyed from, was authenticated: the peer has
    /// known it since about then (see `Tunnel::adopt`).
    pub established_at: Option<Instant>,
    pub reassembly: Reassembler,
    /// A child rekey of ours collided with the peer's: (old inbound SPI, peer's new child nonces).
    pub collisions: Vec<(u32, Nonces)>,
    /// Selectors (ours, the peer's) of additional CHILD SAs still to request.
    pub new_children: VecDeque<(Vec<TrafficSelector>, Vec<TrafficSelector>)>,
    /// Built by our reauthentication of the current SA (no INITIAL_CONTACT; replaces it).
    pub reauth: bool,
    /// When to reauthenticate (set when authenticated, kept across IKE rekeys).
    pub reauth_at: Option<Instant>,
    /// Replaced by a rekey: its CHILD SAs moved on, it only waits for its DELETE.
    pub superseded: bool,
    /// The peer's IKE rekey that collided with ours, until ours completes (2.8.2).
    pub ike_collision: Option<Box<IkeSa>>,
}

impl IkeSa {
    pub fn new(initiator: bool, local: SocketAddr, remote: SocketAddr, now: Instant) -> Self {
        IkeSa {
            initiator,
            spi_i: [0; 8],
            spi_r: [0; 8],
            state: IkeState::InitSent,
            suite: None,
            keys: None,
            ni: Vec::new(),
            nr: Vec::new(),
            local,
            remote,
            floated: false,
            udp_encap: false,
            nat_there: false,
            nat_here: false,
            peer_fragments: false,
            next_mid: 0,
            outstanding: None,
            queue: VecDeque::new(),
            peer_mid: 0,
            last_response: None,
            init_req: Vec::new(),
            init_resp: Vec::new(),
            children: Vec::new(),
            rekey_at: None,
            expire_at: None,
            last_rx: now,
            last_heard: None,
            created: now,
            established_at: None,
            reassembly: Reassembler::default(),
            collisions: Vec::new(),
            new_children: VecDeque::new(),
            reauth: false,
            reauth_at: None,
            superseded: false,
            ike_collision: None,
        }
    }

    pub fn is_established(&self) -> bool {
        self.state == IkeState::Established
    }

    pub fn header(&self, exchange: ExchangeType, mid: u32, response: bool) -> Header {
        let mut flags = 0;
        if self.initiator {
            flags |= FLAG_INITIATOR;
        }
        if response {
            flags |= FLAG_RESPONSE;
        }
        Header {
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            next_payload: 0,
            version: 0x20,
            exchange,
            flags,
            message_id: mid,
            length: HEADER_LEN as u32,
        }
    }

    fn cipher(&self, outbound: bool) -> Option<SkCipher<'_>> {
        let suite = self.suite?;
        let k = self.keys.as_ref()?;
        let use_i = outbound == self.initiator;
        let (e, a) = if use_i {
            (&k.sk_ei, &k.sk_ai)
        } else {
            (&k.sk_er, &k.sk_ar)
        };
        Some(SkCipher {
            encr: suite.encr,
            integ: suite.integ,
            encr_key: e.expose(),
            integ_key: a.expose(),
        })
    }

    /// Encrypts payloads into one message, or into RFC 7383 fragments if too large.
    pub fn seal(
        &self,
        ctx: &mut Ctx<'_>,
        header: Header,
        payloads: &[Payload],
    ) -> Result<Vec<Vec<u8>>, IkeError> {
        let c = self
            .cipher(true)
            .ok_or(IkeError::Unexpected("no keys to encrypt with"))?;
        let mut plain = Vec::new();
        encode_chain(payloads, &mut plain);
        let first = payloads.first().map_or(0, Payload::payload_type);
        let whole = HEADER_LEN + c.overhead(plain.len()) + plain.len();
        if !self.peer_fragments || whole <= ctx.cfg.fragment_size {
            return Ok(vec![c.seal(&header, first, None, &plain, ctx.rng)?]);
        }
        let room = ctx
            .cfg
            .fragment_size
            .saturating_sub(HEADER_LEN + 4 + c.overhead(0) + 16)
            .max(64);
        let chunks: Vec<&[u8]> = plain.chunks(room).collect();
        let total = chunks.len() as u16;
        let mut out = Vec::with_capacity(chunks.len());
        for (i, chunk) in chunks.iter().enumerate() {
            let n = i as u16 + 1;
            let inner = if n == 1 { first } else { 0 };
            out.push(c.seal(&header, inner, Some((n, total)), chunk, ctx.rng)?);
        }
        Ok(out)
    }

    /// Decrypts and parses an SK/SKF message. `None` while fragments are missing. A
    /// message that decrypts but does not parse is authentic: its decode error comes
    /// back beside the header, so that a request can be answered with INVALID_SYNTAX.
    #[allow(clippy::type_complexity)]
    pub fn open(
        &mut self,
        raw: &[u8],
    ) -> Result<Option<(Header, Result<Vec<Payload>, crate::wire::DecodeError>)>, IkeError> {
        let c = self
            .cipher(false)
            .ok_or(IkeError::Unexpected("encrypted message before keys"))?;
        let opened = c.open(raw)?;
        let header = opened.header;
        let (first, plain) = if opened.fragment.is_some() {
            match self.reassembly.add(opened) {
                Some(done) => done,
                None => return Ok(None),
            }
        } else {
            (opened.inner_first, opened.plaintext)
        };
        Ok(Some((header, decode_chain(first, &plain))))
    }

    /// Queues datagrams for the peer, with the non-ESP marker once on port 4500.
    pub fn transmit(&self, ctx: &mut Ctx<'_>, packets: &[Vec<u8>]) {
        for p in packets {
            let bytes = if self.floated {
                let mut b = NON_ESP_MARKER.to_vec();
                b.extend_from_slice(p);
                b
            } else {
                p.clone()
            };
            ctx.out.push_back(Action::Send {
                local: self.local,
                remote: self.remote,
                bytes,
            });
        }
    }

    pub fn send_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        exchange: ExchangeType,
        payloads: &[Payload],
        kind: Pending,
    ) -> Result<(), IkeError> {
        let mid = self.next_mid;
        let header = self.header(exchange, mid, false);
        let packets = if exchange == ExchangeType::IkeSaInit {
            let m = Message {
                header,
                payloads: payloads.to_vec(),
            }
            .encode();
            self.init_req = m.clone();
            vec![m]
        } else {
            self.seal(ctx, header, payloads)?
        };
        self.transmit(ctx, &packets);
        self.next_mid = self.next_mid.wrapping_add(1);
        self.outstanding = Some(Outstanding {
            mid,
            packets,
            retries: 0,
            next_at: ctx.now + ctx.cfg.retransmit.initial,
            kind,
        });
        Ok(())
    }

    /// Sends an encrypted response and keeps it for retransmitted requests.
    pub fn send_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        exchange: ExchangeType,
        mid: u32,
        payloads: &[Payload],
    ) -> Result<(), IkeError> {
        let packets = self.seal_response(ctx, exchange, mid, payloads)?;
        self.transmit(ctx, &packets);
        Ok(())
    }

    /// Seals the response to request `mid` and keeps it for retransmitted requests, but
    /// leaves sending it (`transmit`) to the caller: a responder installs the CHILD SA
    /// the response creates first, as the peer sends ESP on it the moment it has the
    /// response.
    pub fn seal_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        exchange: ExchangeType,
        mid: u32,
        payloads: &[Payload],
    ) -> Result<Vec<Vec<u8>>, IkeError> {
        let header = self.header(exchange, mid, true);
        let packets = self.seal(ctx, header, payloads)?;
        self.last_response = Some((mid, packets.clone()));
        self.peer_mid = mid.wrapping_add(1);
        Ok(packets)
    }

    /// The window check for an incoming request (RFC 7296 2.3): `Ok(true)` to process,
    /// `Ok(false)` if it was a retransmission answered from the cache.
    pub fn accept_request(&mut self, ctx: &mut Ctx<'_>, mid: u32) -> Result<bool, IkeError> {
        if mid == self.peer_mid {
            return Ok(true);
        }
        if let Some((last, packets)) = &self.last_response {
            if *last == mid {
                let packets = packets.clone();
                self.transmit(ctx, &packets);
                return Ok(false);
            }
        }
        Err(IkeError::OutOfWindow(mid))
    }

    /// Takes our outstanding request if `mid` answers it.
    pub fn take_outstanding(&mut self, mid: u32) -> Result<Pending, IkeError> {
        match &self.outstanding {
            Some(o) if o.mid == mid => Ok(self
                .outstanding
                .take()
                .map(|o| o.kind)
                .ok_or(IkeError::OutOfWindow(mid))?),
            _ => Err(IkeError::OutOfWindow(mid)),
        }
    }

    /// Installs a CHILD SA pair from KEYMAT. `we_initiated`: we started the exchange
    /// that created it, so our outbound keys are the "i" keys.
    #[allow(clippy::too_many_arguments)]
    pub fn install_child(
        &mut self,
        ctx: &mut Ctx<'_>,
        suite: EspSuite,
        inbound_spi: u32,
        outbound_spi: u32,
        keys: ChildKeys,
        we_initiated: bool,
        local_ts: Vec<TrafficSelector>,
        remote_ts: Vec<TrafficSelector>,
    ) {
        let (out_e, out_a, in_e, in_a) = if we_initiated {
            (
                keys.encr_i.clone(),
                keys.integ_i.clone(),
                keys.encr_r.clone(),
                keys.integ_r.clone(),
            )
        } else {
            (
                keys.encr_r.clone(),
                keys.integ_r.clone(),
                keys.encr_i.clone(),
                keys.integ_i.clone(),
            )
        };
        ctx.out.push_back(Action::InstallChildSa(ChildSaInstall {
            suite,
            inbound: DirectionKeys {
                spi: inbound_spi,
                encr_key: in_e,
                integ_key: in_a,
            },
            outbound: DirectionKeys {
                spi: outbound_spi,
                encr_key: out_e,
                integ_key: out_a,
            },
            local_ts: local_ts.clone(),
            remote_ts: remote_ts.clone(),
            udp_encap: self.udp_encap.then_some((self.local, self.remote)),
            we_initiated,
        }));
        tracing::info!(
            peer = %self.remote,
            spi_in = format_args!("{inbound_spi:08x}"),
            spi_out = format_args!("{outbound_spi:08x}"),
            "CHILD SA negotiated"
        );
        let (rekey_at, expire_at) = ctx.jittered(ctx.cfg.child_lifetime);
        self.children.push(ChildSa {
            inbound_spi,
            outbound_spi,
            local_ts,
            remote_ts,
            rekey_at,
            expire_at,
            retiring: false,
            additional: None,
        });
    }

    /// Removes a CHILD SA and tells the dataplane.
    pub fn remove_child(&mut self, ctx: &mut Ctx<'_>, inbound_spi: u32) -> Option<ChildSa> {
        let pos = self
            .children
            .iter()
            .position(|c| c.inbound_spi == inbound_spi)?;
        let c = self.children.remove(pos);
        tracing::info!(
            peer = %self.remote,
            spi_in = format_args!("{:08x}", c.inbound_spi),
            spi_out = format_args!("{:08x}", c.outbound_spi),
            "CHILD SA removed"
        );
        ctx.out.push_back(Action::DeleteChildSa {
            inbound_spi: c.inbound_spi,
            outbound_spi: c.outbound_spi,
        });
        Some(c)
    }

    pub fn remove_all_children(&mut self, ctx: &mut Ctx<'_>) {
        let spis: Vec<u32> = self.children.iter().map(|c| c.inbound_spi).collect();
        for s in spis {
            self.remove_child(ctx, s);
        }
    }

    /// Starts the next planned request if the window is free.
    pub fn pump(&mut self, ctx: &mut Ctx<'_>) -> Result<(), IkeError> {
        while self.outstanding.is_none() && self.is_established() {
            let Some(next) = self.queue.pop_front() else {
                return Ok(());
            };
            self.start_planned(ctx, next)?;
        }
        Ok(())
    }

    pub fn plan(&mut self, p: Planned) {
        if !self.queue.contains(&p) {
            self.queue.push_back(p);
        }
    }

    /// Retransmits or gives up; returns true if the SA is dead.
    pub fn on_retransmit_timer(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let Some(o) = &mut self.outstanding else {
            return false;
        };
        if ctx.now < o.next_at {
            return false;
        }
        let r = ctx.cfg.retransmit;
        if o.retries >= r.max_retransmits {
            return true;
        }
        o.retries += 1;
        let factor = 1u32.checked_shl(o.retries).unwrap_or(u32::MAX);
        let wait = r.initial.saturating_mul(factor).min(r.max_interval);
        o.next_at = ctx.now + wait;
        let packets = o.packets.clone();
        self.transmit(ctx, &packets);
        false
    }

    pub fn next_timer(&self, cfg: &Config) -> Option<Instant> {
        let mut t: Vec<Instant> = Vec::new();
        if let Some(o) = &self.outstanding {
            t.push(o.next_at);
        }
        if self.state == IkeState::HalfOpen {
            t.push(self.created + HALF_OPEN_TIMEOUT);
        }
        if self.is_established() {
            t.extend(self.rekey_at);
            t.extend(self.reauth_at);
            t.extend(self.expire_at);
            for c in &self.children {
                // A rekey already queued behind the request in flight has no timer of
                // its own (else the caller would spin on a past deadline).
                let queued = self.queue.contains(&Planned::RekeyChild(c.inbound_spi));
                if !c.retiring && !queued {
                    t.push(c.rekey_at);
                }
                t.push(c.expire_at);
            }
            if let Some(d) = cfg.dpd {
                if self.outstanding.is_none() {
                    t.push(self.last_rx + d.interval);
                }
            }
        }
        t.into_iter().min()
    }

    /// Secret material needed by a rekey of this SA.
    pub fn sk_d(&self) -> Option<&Secret> {
        self.keys.as_ref().map(|k| &k.sk_d)
    }
}

/// A responder SA that never saw IKE_AUTH is dropped after this long.
pub(crate) const HALF_OPEN_TIMEOUT: Duration = Duration::from_secs(30);
