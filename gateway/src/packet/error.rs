use thiserror::Error;

/// Why a packet helper refused a packet. Inputs come from the TUN or the network, so every
/// malformed case is an error value, never a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PacketError {
    #[error("packet truncated")]
    Truncated,
    #[error("not an IPv4 or IPv6 packet")]
    NotIp,
    #[error("malformed IP header")]
    BadHeader,
    #[error("malformed IPv4 options")]
    BadOptions,
    #[error("the Don't Fragment bit is set")]
    DontFragment,
    #[error("MTU {0} is too small")]
    MtuTooSmall(u16),
    #[error("output buffer too small: {need} bytes needed")]
    BufferTooSmall { need: usize },
    #[error("no ICMP error may be sent for this packet: {0}")]
    NoIcmpAllowed(&'static str),
}
