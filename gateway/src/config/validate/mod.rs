//! Turns a `RawConfig` into a `Config`, collecting every problem with its field path.

mod routes_bgp;
mod tunnel;
pub mod values;

use super::error::Issues;
use super::model::{Config, Connection, Local, SelectionMode};
use super::raw::{RawConfig, RawConnection, RawLocal};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

/// Validation state: where problems go and where relative `psk_file`s are found.
pub struct Ctx<'a> {
    pub issues: &'a mut Issues,
    pub base_dir: &'a Path,
}

impl Ctx<'_> {
    pub fn bad(&mut self, path: &str, reason: impl Into<String>) {
        self.issues.push(path, reason);
    }

    /// Records `reason` and returns `None`, for `return ctx.fail(..)`.
    pub fn fail<T>(&mut self, path: &str, reason: impl Into<String>) -> Option<T> {
        self.bad(path, reason);
        None
    }

    pub fn missing<T>(&mut self, path: &str) -> Option<T> {
        self.fail(path, "missing")
    }

    pub fn require<'v, T: ?Sized>(&mut self, path: &str, v: Option<&'v T>) -> Option<&'v T> {
        if v.is_none() {
            self.bad(path, "missing");
        }
        v
    }

    pub fn check<T>(&mut self, path: &str, r: Result<T, String>) -> Option<T> {
        r.map_err(|why| self.bad(path, why)).ok()
    }
}

/// More dataplane workers than this is a typo, not a machine.
const MAX_WORKERS: usize = 256;

/// Validates the whole config; `None` if anything was reported.
pub fn config(ctx: &mut Ctx, raw: RawConfig) -> Option<Config> {
    let local = match raw.local {
        Some(l) => local(ctx, l),
        None => ctx.missing("local"),
    };
    if raw.connections.is_empty() {
        ctx.bad("connections", "at least one [[connections]] is required");
    }
    let tun_name = match raw.tun_name.as_deref() {
        Some(n) => ctx.check("tun_name", values::tunnel_name(n)),
        None => Some(super::model::defaults::TUN_NAME.to_owned()),
    };
    let control_socket = match raw.control_socket.as_deref() {
        Some("") => ctx.fail("control_socket", "empty path"),
        Some(s) => Some(std::path::PathBuf::from(s)),
        None => Some(super::model::defaults::CONTROL_SOCKET.into()),
    };
    let workers = match raw.workers {
        Some(n) if n > MAX_WORKERS => ctx.fail(
            "workers",
            format!("at most {MAX_WORKERS} (0: one per core)"),
        ),
        Some(n) => Some(n),
        None => Some(0),
    };
    let metrics_listen = match raw.metrics_listen.as_deref() {
        None => Some(None),
        Some(s) => match s.parse::<std::net::SocketAddr>() {
            Ok(a) => Some(Some(a)),
            Err(_) => ctx.fail(
                "metrics_listen",
                format!("`{s}`: expected an address and port, e.g. \"127.0.0.1:9477\""),
            ),
        },
    };
    let local_ref = local.as_ref().map(|l| (&l.id, l.address));
    let connections: Vec<Option<Connection>> = raw
        .connections
        .into_iter()
        .enumerate()
        .map(|(i, c)| connection(ctx, &format!("connections[{i}]"), c, local_ref))
        .collect();
    let connections: Option<Vec<Connection>> = connections.into_iter().collect();
    let connections = connections?;
    cross_connection(ctx, &connections);
    if !ctx.issues.is_empty() {
        return None;
    }
    Some(Config {
        local: local?,
        tun_name: tun_name?,
        control_socket: control_socket?,
        workers: workers?,
        metrics_listen: metrics_listen?,
        connections,
    })
}

fn local(ctx: &mut Ctx, raw: RawLocal) -> Option<Local> {
    let address = ctx
        .require("local.address", raw.address.as_deref())
        .and_then(|s| ctx.check("local.address", values::endpoint(s)));
    let id = match raw.id.as_deref() {
        Some(s) => ctx.check("local.id", values::identity(s)),
        None => address.map(super::model::Identity::Ip),
    };
    Some(Local {
        id: id?,
        address: address?,
    })
}

fn connection(
    ctx: &mut Ctx,
    p: &str,
    raw: RawConnection,
    local: Option<(&super::model::Identity, IpAddr)>,
) -> Option<Connection> {
    let name = match raw.name.as_deref() {
        Some(n) => ctx.check(&format!("{p}.name"), values::connection_name(n)),
        None => ctx.missing(&format!("{p}.name")),
    };
    let mode = match raw.mode.as_deref() {
        None | Some("active-standby") => Some(SelectionMode::ActiveStandby),
        Some("ecmp") => Some(SelectionMode::Ecmp),
        Some(other) => ctx.fail(
            &format!("{p}.mode"),
            format!("`{other}`: expected \"active-standby\" or \"ecmp\""),
        ),
    };
    let raw_names: Vec<String> = raw.tunnels.iter().filter_map(|t| t.name.clone()).collect();
    let routes = routes_bgp::routes(ctx, p, raw.routes, &raw_names);
    let bgp = match raw.bgp {
        Some(b) => routes_bgp::bgp(ctx, &format!("{p}.bgp"), b).map(Some),
        None => Some(None),
    };
    let count = raw.tunnels.len();
    if count != 2 {
        ctx.bad(
            &format!("{p}.tunnels"),
            format!("a cloud VPN connection has exactly two tunnels; found {count}"),
        );
    }
    let tunnels: Vec<_> = raw
        .tunnels
        .into_iter()
        .enumerate()
        .map(|(i, t)| tunnel::tunnel(ctx, &format!("{p}.tunnels[{i}]"), t, local))
        .collect();
    let tunnels: Option<Vec<_>> = tunnels.into_iter().collect();
    let tunnels: [_; 2] = tunnels?.try_into().ok()?;
    tunnel_pair(ctx, p, &tunnels);
    Some(Connection {
        name: name?,
        mode: mode?,
        tunnels,
        routes: routes?,
        bgp: bgp?,
    })
}

/// The two tunnels of a connection go to different endpoints over different inner networks.
fn tunnel_pair(ctx: &mut Ctx, p: &str, t: &[super::model::Tunnel; 2]) {
    let [a, b] = t;
    if a.name == b.name {
        ctx.bad(
            &format!("{p}.tunnels[1].name"),
            format!("`{}` is used twice", b.name),
        );
    }
    if (a.local_address, a.peer) == (b.local_address, b.peer) {
        ctx.bad(
            &format!("{p}.tunnels[1].peer"),
            format!(
                "both tunnels run {} -> {}; the cloud gives two endpoints",
                b.local_address, b.peer
            ),
        );
    }
    let net = |x: &super::model::Tunnel| {
        ipnet::IpNet::new(x.inner.local, x.inner.prefix_len).map(|n| n.trunc())
    };
    if let (Ok(na), Ok(nb)) = (net(a), net(b)) {
        if na == nb {
            ctx.bad(
                &format!("{p}.tunnels[1].inner_address"),
                format!("{nb} is also the inner network of tunnel `{}`", a.name),
            );
        }
    }
}

/// Names unique across connections; no prefix routed by two connections.
fn cross_connection(ctx: &mut Ctx, connections: &[Connection]) {
    let mut conn_names = HashMap::new();
    let mut tunnel_names = HashMap::new();
    let mut prefixes = HashMap::new();
    for (i, c) in connections.iter().enumerate() {
        if let Some(first) = conn_names.insert(c.name.clone(), i) {
            ctx.bad(
                &format!("connections[{i}].name"),
                format!("`{}` is already the name of connections[{first}]", c.name),
            );
        }
        for (j, t) in c.tunnels.iter().enumerate() {
            if let Some(first) = tunnel_names.insert(t.name.clone(), i) {
                if first != i {
                    ctx.bad(
                        &format!("connections[{i}].tunnels[{j}].name"),
                        format!("`{}` is already a tunnel of connections[{first}]", t.name),
                    );
                }
            }
        }
        for (k, r) in c.routes.iter().enumerate() {
            if let Some(first) = prefixes.insert(r.prefix, i) {
                if first != i {
                    ctx.bad(
                        &format!("connections[{i}].routes[{k}].prefix"),
                        format!("{} is already routed by connections[{first}]", r.prefix),
                    );
                }
            }
        }
    }
}
