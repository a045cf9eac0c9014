//! IKEv2 (RFC 7296) negotiator for one site-to-site tunnel, sans-IO.
//!
//! The crate never touches a socket, a clock or a random source: the caller passes the
//! time (`now: Instant`) and an RNG (`&mut dyn rand_core::CryptoRngCore`) in, feeds
//! received datagrams, and drains [`Action`]s. Pre-shared-key authentication only.
//!
//! # Layers
//! - [`wire`]: the message codec (header, every RFC 7296 payload, RFC 7383 fragments).
//! - [`crypto`]: PRF/prf+, SKEYSEED and SK_*, PSK AUTH, the SK payload (AES-CBC+HMAC,
//!   AES-GCM-16), DH groups 2, 5, 14, 15, 16, 19, 20, 21, 31, CHILD SA KEYMAT.
//! - [`proposal`]: strongSwan proposal strings (`aes128gcm16-prfsha256-modp2048`) and
//!   proposal selection.
//! - [`sa`]: the [`Tunnel`] state machine: IKE_SA_INIT (COOKIE, INVALID_KE_PAYLOAD), IKE_AUTH,
//!   CREATE_CHILD_SA (CHILD and IKE rekeys, collisions), INFORMATIONAL (DELETE, DPD),
//!   NAT detection and UDP encapsulation, retransmissions, lifetimes.
//!
//! # Driving a tunnel from a UDP loop
//! ```no_run
//! use ike::proposal::{EspProposal, IkeProposal};
//! use ike::sa::{Action, Config, Identity, Psk, StartAction};
//! use ike::Tunnel;
//! use std::time::Instant;
//! # fn recv() -> Option<(std::net::SocketAddr, std::net::SocketAddr, Vec<u8>)> { None }
//! # fn send(_: std::net::SocketAddr, _: std::net::SocketAddr, _: &[u8]) {}
//! let mut cfg = Config::new(
//!     "192.0.2.2:500".parse().unwrap(),
//!     "192.0.2.1:500".parse().unwrap(),
//!     Identity::Addr("192.0.2.2".parse().unwrap()),
//!     Identity::Addr("192.0.2.1".parse().unwrap()),
//!     Psk::new("secret"),
//!     vec![IkeProposal::parse("aes128-sha256-modp2048", false).unwrap()],
//!     vec![EspProposal::parse("aes128gcm16", false).unwrap()],
//! );
//! cfg.start_action = StartAction::Respond;
//! let mut rng = rand_core::OsRng;
//! let mut tunnel = Tunnel::new(cfg, Instant::now(), &mut rng).unwrap();
//! loop {
//!     // Datagrams received on UDP 500, or on 4500 with the non-ESP marker still on.
//!     if let Some((local, remote, bytes)) = recv() {
//!         let _ = tunnel.handle_datagram(Instant::now(), local, remote, &bytes, &mut rng);
//!     }
//!     if tunnel.poll_timeout().is_some_and(|t| t <= Instant::now()) {
//!         tunnel.handle_timeout(Instant::now(), &mut rng);
//!     }
//!     while let Some(action) = tunnel.poll_action() {
//!         match action {
//!             Action::Send { local, remote, bytes } => send(local, remote, &bytes),
//!             Action::InstallChildSa(sa) => { /* program the ESP dataplane */ }
//!             Action::DeleteChildSa { .. } => { /* remove it */ }
//!             Action::PeerMoved { .. } => { /* send ESP to the new address */ }
//!             Action::Up | Action::Down(_) => { /* tunnel status, BGP */ }
//!             Action::PeerRestarted => { /* start the BGP session afresh */ }
//!         }
//!     }
//! #   break;
//! }
//! ```
//! `handle_datagram` returns an [`IkeError`] for datagrams that were dropped or refused;
//! they are counted in [`sa::Stats`] and never disturb an established SA. Operator
//! "disable" is [`Tunnel::delete`], "enable" is [`Tunnel::initiate`].
//!
//! # Keys handed to the dataplane
//! [`sa::ChildSaInstall`] carries, per direction, the SPI, the encryption key (for GCM
//! the AES key followed by the 4-byte salt) and the integrity key, cut from KEYMAT in
//! RFC 7296 2.17 order; `DirectionKeys::keymat()` gives them concatenated.
//!
//! # Deviations worth knowing
//! - Rekey collisions follow RFC 7296 2.8.1 (CHILD) and 2.8.2 (IKE): both exchanges
//!   complete, the SA with the lowest nonce is deleted by its initiator, the winner
//!   deletes the old SA. A rekey request for an SA we are already closing gets
//!   TEMPORARY_FAILURE, as is an IKE rekey while a CHILD rekey runs (2.25).
//! - Additional CHILD SAs (RFC 7296 1.3.1) are accepted with their selectors narrowed to
//!   the configured ones (or refused with NO_ADDITIONAL_SAS when
//!   `Config::additional_children` is off) and requested with [`Tunnel::create_child`].
//! - Reauthentication (`Config::reauth_time`, RFC 7296 2.8.3) is make-before-break: a new
//!   IKE_SA_INIT + IKE_AUTH (without INITIAL_CONTACT) builds the new IKE SA and its CHILD
//!   SAs beside the old one, which is deleted afterwards. A peer's new IKE SA without
//!   INITIAL_CONTACT replaces ours the same way (the old one stays until the peer deletes
//!   it); with INITIAL_CONTACT the old one is dropped at once and `Action::PeerRestarted`
//!   tells the caller. We send INITIAL_CONTACT only while no other IKE SA with the peer is
//!   up (RFC 7296 2.4). Simultaneous initiations (the peer's SA begun, and with
//!   INITIAL_CONTACT authenticated, before ours was established, give or take a second)
//!   keep the SA with the smaller SPIi on both sides.
//! - New responder SAs are rate-limited (`Config::init_rate`), COOKIEs demanded past
//!   `Config::cookie_threshold` half-open SAs, and at most `Config::max_children` CHILD SAs
//!   kept per IKE SA.

pub mod crypto;
pub mod proposal;
pub mod sa;
pub mod wire;

pub use sa::{Action, ChildRekey, Config, ConfigError, DownReason, IkeError, Tunnel};
