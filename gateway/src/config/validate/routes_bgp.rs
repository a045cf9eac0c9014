//! Checks static routes and the BGP section of a connection.

use super::{values, Ctx};
use crate::config::model::{defaults, BgpConfig, StaticRoute};
use crate::config::raw::{RawBgp, RawRoute};
use std::collections::HashSet;

/// 4-byte ASNs: 0 and 4294967295 are reserved (RFC 7607, RFC 7300), 23456 is AS_TRANS (RFC 6793).
fn asn(ctx: &mut Ctx, path: &str, v: i64) -> Option<u32> {
    match u32::try_from(v) {
        Ok(0) | Ok(u32::MAX) => ctx.fail(path, format!("{v} is a reserved ASN")),
        Ok(23456) => ctx.fail(path, "23456 is AS_TRANS, not a real ASN"),
        Ok(a) => Some(a),
        Err(_) => ctx.fail(path, format!("{v} is outside 1..=4294967294")),
    }
}

pub fn routes(
    ctx: &mut Ctx,
    p: &str,
    raw: Vec<RawRoute>,
    tunnels: &[String],
) -> Option<Vec<StaticRoute>> {
    let mut seen = HashSet::new();
    let mut out = Some(Vec::new());
    for (i, r) in raw.into_iter().enumerate() {
        let rp = format!("{p}.routes[{i}]");
        let prefix = ctx
            .require(&format!("{rp}.prefix"), r.prefix.as_deref())
            .and_then(|s| ctx.check(&format!("{rp}.prefix"), values::prefix(s)));
        if let Some(prefix) = prefix {
            if !seen.insert(prefix) {
                ctx.bad(&format!("{rp}.prefix"), format!("{prefix} is listed twice"));
            }
        }
        let mut via_ok = true;
        if !(1..=2).contains(&r.via.len()) {
            ctx.bad(
                &format!("{rp}.via"),
                "name one or two tunnels of this connection",
            );
            via_ok = false;
        }
        for (j, name) in r.via.iter().enumerate() {
            if !tunnels.contains(name) {
                ctx.bad(
                    &format!("{rp}.via[{j}]"),
                    format!(
                        "`{name}` is not a tunnel of this connection ({})",
                        tunnels.join(", ")
                    ),
                );
                via_ok = false;
            }
        }
        if r.via.len() == 2 && r.via.first() == r.via.get(1) {
            ctx.bad(&format!("{rp}.via[1]"), "the same tunnel is named twice");
            via_ok = false;
        }
        match (prefix, via_ok, out.as_mut()) {
            (Some(prefix), true, Some(v)) => v.push(StaticRoute { prefix, via: r.via }),
            _ => out = None,
        }
    }
    out
}

pub fn bgp(ctx: &mut Ctx, p: &str, raw: RawBgp) -> Option<BgpConfig> {
    let local_asn = match raw.local_asn {
        Some(v) => asn(ctx, &format!("{p}.local_asn"), v),
        None => ctx.missing(&format!("{p}.local_asn")),
    };
    let peer_asn = match raw.peer_asn {
        Some(v) => asn(ctx, &format!("{p}.peer_asn"), v),
        None => Some(defaults::PEER_ASN),
    };
    if let (Some(l), Some(r)) = (local_asn, peer_asn) {
        if l == r {
            ctx.bad(
                &format!("{p}.local_asn"),
                format!("{l} equals peer_asn; the cloud session is eBGP and needs a different ASN"),
            );
        }
    }
    let mut advertise = Some(Vec::new());
    for (i, s) in raw.advertise.iter().enumerate() {
        match (
            ctx.check(&format!("{p}.advertise[{i}]"), values::prefix(s)),
            advertise.as_mut(),
        ) {
            (Some(net), Some(v)) => v.push(net),
            _ => advertise = None,
        }
    }
    let max_prefix = match raw.max_prefix {
        None => Some(defaults::MAX_PREFIX),
        Some(v) => match u32::try_from(v) {
            Ok(n) if n >= 1 => Some(n),
            _ => ctx.fail(
                &format!("{p}.max_prefix"),
                format!("{v}: must be at least 1"),
            ),
        },
    };
    let standby_prepend = match raw.standby_prepend {
        None => Some(defaults::STANDBY_PREPEND),
        Some(v) => match u8::try_from(v) {
            Ok(n) if n <= bgp::MAX_PREPEND => Some(n),
            _ => ctx.fail(
                &format!("{p}.standby_prepend"),
                format!("{v}: must be between 0 and {}", bgp::MAX_PREPEND),
            ),
        },
    };
    let hold_time = match raw.hold_time.as_deref() {
        None => Some(defaults::BGP_HOLD_TIME),
        Some(s) => ctx
            .check(&format!("{p}.hold_time"), values::duration(s))
            .and_then(|d| {
                // RFC 4271 4.2: zero (rejected above) or at least three seconds, and it is a u16.
                if d.as_secs() < 3 || d.as_secs() > 65535 || d.subsec_nanos() != 0 {
                    ctx.fail(
                        &format!("{p}.hold_time"),
                        "must be whole seconds in 3s..=65535s",
                    )
                } else {
                    Some(d)
                }
            }),
    };
    Some(BgpConfig {
        local_asn: local_asn?,
        peer_asn: peer_asn?,
        advertise: advertise?,
        max_prefix: max_prefix?,
        hold_time: hold_time?,
        standby_prepend: standby_prepend?,
    })
}
