//! BGP-4 (RFC 4271) speaker core, sans-IO.
//!
//! The gateway runs one eBGP session per IPsec tunnel, over the tunnel's inner
//! addresses, with the cloud's border gateway (AS 65000 by default). This crate holds
//! the protocol: no sockets, no clock, no tasks. The caller owns the TCP connection and
//! the time, in the style of quinn-proto.
//!
//! # Modules
//! - [`wire`]: framing of the TCP stream and the codec of all five messages, with
//!   decode errors that carry the NOTIFICATION to send and RFC 7606 attribute errors.
//! - [`fsm`]: the states and events of RFC 4271 section 8.
//! - [`session`]: [`Session`], the FSM with its timers, import policy, Adj-RIB-In and
//!   advertisement of the local prefixes.
//! - [`rib`]: the per-session [`rib::AdjRibIn`] and the [`Rib`] (Loc-RIB) that merges
//!   sessions and picks a best route per prefix.
//! - [`stats`]: figures for `vpngw bgp`.
//!
//! # Driving a session
//! ```text
//! let mut s = Session::new(config)?;          // Idle
//! s.start(now);                               // -> Connect, emits SessionEvent::Connect
//! loop {
//!     // TCP connect to peer:179 finished (Outbound), or one was accepted (Inbound):
//!     s.handle_connected(now, dir)?;          // Err(refused): write refused.farewell(), close
//!     s.handle_bytes(now, dir, &buf[..n]);    // stream bytes, cut anywhere
//!     s.handle_disconnected(now, dir);        // EOF, reset, or the connect attempt failed
//!     s.handle_timeout(now);                  // when now >= s.poll_timeout()
//!     for dir in Direction::BOTH {
//!         while let Some(bytes) = s.poll_transmit(dir) { write_all(dir, bytes) }
//!     }
//!     while let Some(ev) = s.poll_event() {
//!         rib.apply(SessionId(tunnel), &ev);  // routes and session up/down
//!         match ev { Connect => dial(), Disconnect(dir) => flush_then_close(dir), _ => log(ev) }
//!     }
//!     while let Some(change) = rib.poll_change() { routing_table.apply(change) }
//! }
//! ```
//! Always drain `poll_transmit` before acting on `SessionEvent::Disconnect`: the
//! NOTIFICATION that explains the close is in it.
//!
//! A session uses at most one connection of each [`Direction`]: when both speakers dial
//! at once it keeps both until the collision is resolved (RFC 4271 section 6.8, see
//! `session::collision`) and then asks for the loser to be closed; a connection beyond
//! that, or one arriving while Established, is refused with Cease/7.
//! `SessionEvent::Down` means every route of that session is gone; `Rib::apply` removes
//! them. After an error the session waits `idle_hold_time` in Idle and starts again by
//! itself (doubling the wait, up to 8 times, while it keeps failing before reaching
//! Established); after `stop` it stays Idle until `start`.

//! # Policy (kept simple on purpose)
//! - Only IPv4 unicast. Learned routes are never re-advertised: we announce only the
//!   configured local prefixes (ORIGIN IGP, AS_PATH = local AS, NEXT_HOP = local inner
//!   address), so a route is never sent back to the peer it came from.
//! - Import: routes whose AS_PATH holds our own AS (loop), that do not start with the
//!   peer's AS, or whose next hop is our own address are kept in the Adj-RIB-In as
//!   "not accepted" and not handed to the Loc-RIB.
//! - Maximum prefixes counts every prefix in the Adj-RIB-In, accepted or not.
//! - Best path: see [`rib::best_path`]; MED is compared between all candidates.
//! - Peers without the 4-octet AS capability get 2-octet AS_PATHs (AS_TRANS plus
//!   AS4_PATH for large ASNs); their AS4_PATH is carried as an unknown attribute, not
//!   merged back into AS_PATH.

pub mod config;
pub mod fsm;
pub mod prefix;
pub mod rib;
pub mod session;
pub mod stats;
pub mod wire;

pub use config::{ConfigError, SessionConfig, DEFAULT_PEER_ASN, MAX_PREPEND};
pub use fsm::State;
pub use prefix::{Ipv4Prefix, PrefixError};
pub use rib::{BestRoute, LocRibChange, Rib, SessionId};
pub use session::{
    collision_notification, survivor, ConnectionRefused, Direction, DownReason, PeerOpen, Session,
    SessionEvent, Speaker,
};
pub use stats::{Counters, SessionStats};
