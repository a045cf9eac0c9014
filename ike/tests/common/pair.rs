//! Two tunnels wired through a simulated network with a simulated clock, in the style of
//! quinn-proto's test `Pair`: `step` jumps to the next event, `drive` runs until idle.
#![allow(dead_code)]
use ike::proposal::{EspProposal, IkeProposal};
use ike::sa::{Action, ChildSaInstall, Config, DownReason, Identity, Psk, StartAction};
use ike::{IkeError, Tunnel};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

pub const PSK: &str = "lab.tunnel1.Psk_0f3a9c1e";

pub fn addr(last: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)), 500)
}

/// A config for side `me` (1 or 2) talking to the other.
pub fn config(me: u8, ike: &str, esp: &str) -> Config {
    let other = 3 - me;
    let weak = ike.contains("modp1024") || ike.contains("modp1536");
    let mut c = Config::new(
        addr(me),
        addr(other),
        Identity::Addr(addr(me).ip()),
        Identity::Addr(addr(other).ip()),
        Psk::new(PSK),
        vec![IkeProposal::parse(ike, true).unwrap()],
        vec![EspProposal::parse(esp, true).unwrap()],
    );
    c.allow_weak_groups = weak;
    c.start_action = if me == 1 {
        StartAction::Initiate
    } else {
        StartAction::Respond
    };
    c
}

#[derive(Default)]
pub struct Record {
    pub installs: Vec<ChildSaInstall>,
    pub deleted: Vec<u32>,
    pub ups: usize,
    pub downs: Vec<DownReason>,
    pub errors: Vec<IkeError>,
    pub sent: usize,
    /// Times the last CHILD SA was deleted while the tunnel had been up (a traffic gap).
    pub gaps: usize,
    /// Times `Action::PeerRestarted` came.
    pub restarts: usize,
    /// Where `Action::PeerMoved` said the peer went.
    pub moved: Vec<SocketAddr>,
    /// CHILD SAs made as responder whose install came after a datagram of the same
    /// event: the response may have left before the SA it creates was installed.
    pub installed_after_send: usize,
}

impl Record {
    /// CHILD SAs installed and not deleted.
    pub fn active(&self) -> Vec<&ChildSaInstall> {
        self.installs
            .iter()
            .filter(|i| !self.deleted.contains(&i.inbound.spi))
            .collect()
    }
}

pub struct Side {
    pub tunnel: Tunnel,
    pub rec: Record,
    /// Datagrams to and from this side are dropped (a dead peer).
    pub dead: bool,
}

/// A NAT in front of side a (port-translating, as a home or enterprise router): a's
/// datagrams leave from `public`, each of a's ports mapped to `base`, `base + 1`, ... in
/// the order first seen; datagrams to a mapped port go back to a, others are dropped.
pub struct Nat {
    pub public: IpAddr,
    base: u16,
    /// a's ports; mapping `i` is `base + i`.
    ports: Vec<u16>,
}

impl Nat {
    pub fn new(public: IpAddr, base: u16) -> Self {
        Nat {
            public,
            base,
            ports: Vec::new(),
        }
    }

    /// The public address a datagram from a's `from` leaves with (mapping it if new).
    pub fn outbound(&mut self, from: SocketAddr) -> SocketAddr {
        let i = match self.ports.iter().position(|p| *p == from.port()) {
            Some(i) => i,
            None => {
                self.ports.push(from.port());
                self.ports.len() - 1
            }
        };
        SocketAddr::new(self.public, self.base + i as u16)
    }

    /// a's port for a datagram to public port `port`, if mapped.
    fn inbound(&self, port: u16) -> Option<u16> {
        let i = port.checked_sub(self.base)?;
        self.ports.get(usize::from(i)).copied()
    }

    /// Loses every mapping (a NAT reboot); new ones start at `base`.
    pub fn reboot(&mut self, base: u16) {
        self.base = base;
        self.ports.clear();
    }
}

struct Flight {
    at: Instant,
    to: SocketAddr,
    from: SocketAddr,
    bytes: Vec<u8>,
}

pub struct Pair {
    pub now: Instant,
    pub a: Side,
    pub b: Side,
    rng: StdRng,
    net: StdRng,
    flights: Vec<Flight>,
    pub latency: Duration,
    pub loss: f64,
    pub duplicate: f64,
    /// Extra random delay up to this, which reorders datagrams.
    pub jitter: Duration,
    /// Steps in a row without the clock moving (a timer stuck in the past).
    stalled: u32,
    /// A NAT in front of side a, if any.
    pub nat: Option<Nat>,
    /// The next this many datagrams side a sends are lost.
    pub drop_from_a: u32,
}

impl Pair {
    pub fn new(a: Config, b: Config, seed: u64) -> Self {
        let now = Instant::now();
        let mut rng = StdRng::seed_from_u64(seed);
        let ta = Tunnel::new(a, now, &mut rng).unwrap();
        let tb = Tunnel::new(b, now, &mut rng).unwrap();
        let side = |t| Side {
            tunnel: t,
            rec: Record::default(),
            dead: false,
        };
        Pair {
            now,
            a: side(ta),
            b: side(tb),
            rng,
            net: StdRng::seed_from_u64(seed ^ 0x5eed),
            flights: Vec::new(),
            latency: Duration::from_millis(5),
            loss: 0.0,
            duplicate: 0.0,
            jitter: Duration::ZERO,
            stalled: 0,
            nat: None,
            drop_from_a: 0,
        }
    }

    fn collect(&mut self) {
        for which in [true, false] {
            let side = if which { &mut self.a } else { &mut self.b };
            let mut sent = false;
            while let Some(act) = side.tunnel.poll_action() {
                match act {
                    Action::Send {
                        local,
                        remote,
                        bytes,
                    } => {
                        side.rec.sent += 1;
                        sent = true;
                        if which && self.drop_from_a > 0 {
                            self.drop_from_a -= 1;
                            continue;
                        }
                        let local = match self.nat.as_mut() {
                            Some(nat) if which => nat.outbound(local),
                            _ => local,
                        };
                        let copies = if self.net.gen_bool(self.loss) {
                            0
                        } else if self.net.gen_bool(self.duplicate) {
                            2
                        } else {
                            1
                        };
                        for _ in 0..copies {
                            let extra = if self.jitter.is_zero() {
                                Duration::ZERO
                            } else {
                                self.jitter.mul_f64(self.net.gen::<f64>())
                            };
                            self.flights.push(Flight {
                                at: self.now + self.latency + extra,
                                to: remote,
                                from: local,
                                bytes: bytes.clone(),
                            });
                        }
                    }
                    Action::InstallChildSa(i) => {
                        if sent && !i.we_initiated {
                            side.rec.installed_after_send += 1;
                        }
                        side.rec.installs.push(i);
                    }
                    Action::DeleteChildSa { inbound_spi, .. } => {
                        side.rec.deleted.push(inbound_spi);
                        if side.tunnel.is_up() && side.rec.active().is_empty() {
                            side.rec.gaps += 1;
                        }
                    }
                    Action::PeerMoved { remote, .. } => side.rec.moved.push(remote),
                    Action::PeerRestarted => side.rec.restarts += 1,
                    Action::Up => side.rec.ups += 1,
                    Action::Down(r) => side.rec.downs.push(r),
                }
            }
        }
    }

    /// Advances to the next event and processes it. False when nothing is left to do.
    pub fn step(&mut self) -> bool {
        self.collect();
        let next_flight = self.flights.iter().map(|f| f.at).min();
        let next = [
            next_flight,
            self.a.tunnel.poll_timeout(),
            self.b.tunnel.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else {
            return false;
        };
        if next > self.now {
            self.now = next;
            self.stalled = 0;
        } else {
            self.stalled += 1;
            assert!(
                self.stalled < 10_000,
                "a timer stays due: the caller would spin"
            );
        }
        let now = self.now;
        let (due, rest): (Vec<Flight>, Vec<Flight>) = std::mem::take(&mut self.flights)
            .into_iter()
            .partition(|f| f.at <= now);
        self.flights = rest;
        for mut f in due {
            if let Some(nat) = self.nat.as_ref().filter(|n| n.public == f.to.ip()) {
                let Some(port) = nat.inbound(f.to.port()) else {
                    continue;
                };
                f.to = SocketAddr::new(self.a.tunnel.config().local.ip(), port);
            }
            let to_a = f.to.ip() == self.a.tunnel.config().local.ip();
            if self.a.dead || self.b.dead {
                continue;
            }
            let side = if to_a { &mut self.a } else { &mut self.b };
            if let Err(e) = side
                .tunnel
                .handle_datagram(now, f.to, f.from, &f.bytes, &mut self.rng)
            {
                side.rec.errors.push(e);
            }
        }
        for side in [&mut self.a, &mut self.b] {
            if side.tunnel.poll_timeout().is_some_and(|t| t <= now) {
                side.tunnel.handle_timeout(now, &mut self.rng);
            }
        }
        self.collect();
        true
    }

    /// Runs for `d` of simulated time (or until nothing is scheduled).
    pub fn drive_for(&mut self, d: Duration) {
        let end = self.now + d;
        let mut steps = 0u64;
        while self.now < end && steps < 2_000_000 {
            if !self.step() {
                break;
            }
            steps += 1;
        }
    }

    /// Runs until both tunnels are up, or `limit` passes. Returns whether they are.
    pub fn drive_until_up(&mut self, limit: Duration) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if self.a.tunnel.is_up() && self.b.tunnel.is_up() && self.flights.is_empty() {
                return true;
            }
            if !self.step() {
                break;
            }
        }
        self.a.tunnel.is_up() && self.b.tunnel.is_up()
    }

    /// Side a loses all state (a reboot) and comes back with `cfg`.
    pub fn restart_a(&mut self, cfg: Config) {
        self.a.tunnel = Tunnel::new(cfg, self.now, &mut self.rng).unwrap();
        self.a.rec = Record::default();
    }

    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// Injects a datagram to side a or b, as if from the other side.
    pub fn inject(&mut self, to_a: bool, bytes: Vec<u8>) -> Result<(), IkeError> {
        let (side, from) = if to_a {
            (&mut self.a, self.b.tunnel.config().local)
        } else {
            (&mut self.b, self.a.tunnel.config().local)
        };
        let to = side.tunnel.config().local;
        side.tunnel
            .handle_datagram(self.now, to, from, &bytes, &mut self.rng)
    }

    /// Each active SA of `a` has a partner in `b` with mirrored SPIs and keys.
    pub fn assert_keys_match(&self) {
        let a = self.a.rec.active();
        let b = self.b.rec.active();
        assert!(!a.is_empty(), "a has no CHILD SA");
        assert_eq!(a.len(), b.len(), "same number of CHILD SAs");
        for x in a {
            let y = b
                .iter()
                .find(|y| y.inbound.spi == x.outbound.spi)
                .expect("partner SA");
            assert_eq!(y.outbound.spi, x.inbound.spi);
            assert_eq!(y.inbound.keymat(), x.outbound.keymat());
            assert_eq!(y.outbound.keymat(), x.inbound.keymat());
            assert_eq!(y.suite, x.suite);
            assert!(!x.inbound.encr_key.is_empty());
        }
    }
}
