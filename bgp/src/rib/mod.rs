//! Routing information bases: the per-session Adj-RIB-In and the Loc-RIB that merges
//! all sessions with best-path selection.

pub mod adj_in;
pub mod best_path;
pub mod loc;

pub use adj_in::{AdjChange, AdjRibIn};
pub use best_path::PeerInfo;
pub use loc::{BestRoute, LocRibChange, Rib, SessionId};
