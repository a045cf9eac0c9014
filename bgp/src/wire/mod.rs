//! Wire codec: framing, the five message types, path attributes, decode errors.

pub mod attrs;
pub mod error;
pub mod framing;
pub mod message;
pub mod notification;
pub mod open;
mod reader;
pub mod update;

pub use attrs::{
    Aggregator, AsPath, AsSegment, AttributeError, AttributeProblem, CodecContext, Origin,
    PathAttributes, RawAttribute, GRACEFUL_SHUTDOWN,
};
pub use error::DecodeError;
pub use framing::Framer;
pub use message::{encode_announcements, encode_withdrawals, Message, RouteRefresh};
pub use notification::Notification;
pub use open::{Capability, Open};
pub use update::Update;
