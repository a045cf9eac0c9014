//! Linux kernel integration: the TUN device and the routes that steer traffic into it.

pub mod netlink_routes;
pub mod path_mtu;
pub mod tun;

pub use netlink_routes::{KernelRoute, RouteManager};
pub use tun::{Tun, TunConfig};

/// A kernel call failed.
#[derive(Debug, thiserror::Error)]
pub enum SysError {
    #[error("TUN device {name}: {source}")]
    Tun {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("netlink socket: {0}")]
    Socket(#[source] std::io::Error),
    #[error("netlink {op} {prefix}: {source}")]
    Route {
        op: &'static str,
        prefix: ipnet::IpNet,
        #[source]
        source: std::io::Error,
    },
    #[error("netlink: malformed reply")]
    BadReply,
}
