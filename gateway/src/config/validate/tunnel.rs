//! Checks one `[[connections.tunnels]]` table.

use super::{values, Ctx};
use crate::config::model::{
    defaults, ChildSelectors, ChildVolume, Dpd, DpdAction, Identity, InnerAddress, Lifetime,
    StartAction, Tunnel, Volume,
};
use crate::config::proposals::{self, ProposalList};
use crate::config::raw::{RawChild, RawChildLifetime, RawDpd, RawLifetime, RawTunnel};
use crate::config::secret::Secret;
use crate::packet::{DscpCopy, Qos};
use ipnet::IpNet;
use std::net::IpAddr;
use zeroize::Zeroize;

const PSK_LEN: std::ops::RangeInclusive<usize> = 8..=128;

/// Validates a tunnel; `None` when any of its fields is bad (all reported to `ctx`).
pub fn tunnel(
    ctx: &mut Ctx,
    p: &str,
    raw: RawTunnel,
    local: Option<(&Identity, IpAddr)>,
) -> Option<Tunnel> {
    let name = match raw.name.as_deref() {
        Some(n) => ctx.check(&format!("{p}.name"), values::tunnel_name(n)),
        None => ctx.missing(&format!("{p}.name")),
    };
    let peer = ctx
        .require(&format!("{p}.peer"), raw.peer.as_deref())
        .and_then(|s| ctx.check(&format!("{p}.peer"), values::endpoint(s)));
    let local_address = match raw.local_address.as_deref() {
        Some(s) => ctx.check(&format!("{p}.local_address"), values::endpoint(s)),
        None => local.map(|(_, addr)| addr),
    };
    let peer = peer.and_then(|peer| match local_address {
        Some(addr) if addr.is_ipv4() != peer.is_ipv4() => {
            ctx.bad(
                &format!("{p}.peer"),
                format!("`{peer}` is not of the same IP family as the local address `{addr}`"),
            );
            None
        }
        _ => Some(peer),
    });
    let psk = psk(ctx, p, raw.psk, raw.psk_file);
    let allow_weak_groups = raw.allow_weak_groups.unwrap_or(false);
    let ike_proposals = proposal_list(
        ctx,
        &format!("{p}.ike_proposals"),
        raw.ike_proposals
            .as_deref()
            .unwrap_or(defaults::IKE_PROPOSALS),
        |t| proposals::parse_ike(t, allow_weak_groups),
    );
    let esp_proposals = proposal_list(
        ctx,
        &format!("{p}.esp_proposals"),
        raw.esp_proposals
            .as_deref()
            .unwrap_or(defaults::ESP_PROPOSALS),
        |t| proposals::parse_esp(t, allow_weak_groups),
    );
    let ike_lifetime = lifetime(
        ctx,
        &format!("{p}.ike_lifetime"),
        raw.ike_lifetime,
        Lifetime {
            soft: defaults::IKE_SOFT,
            hard: defaults::IKE_HARD,
        },
    );
    let (child_times, child_volume) = match raw.child_lifetime {
        Some(c) => {
            let volume = child_volume(ctx, &format!("{p}.child_lifetime"), &c);
            let times = RawLifetime {
                soft: c.soft,
                hard: c.hard,
            };
            (Some(times), volume)
        }
        None => (None, Some(ChildVolume::default())),
    };
    let child_lifetime = lifetime(
        ctx,
        &format!("{p}.child_lifetime"),
        child_times,
        Lifetime {
            soft: defaults::CHILD_SOFT,
            hard: defaults::CHILD_HARD,
        },
    );
    let dpd = dpd(ctx, &format!("{p}.dpd"), raw.dpd);
    let start_action = match raw.start_action.as_deref() {
        None | Some("respond") => Some(StartAction::Respond),
        Some("initiate") => Some(StartAction::Initiate),
        Some(other) => ctx.fail(
            &format!("{p}.start_action"),
            format!("`{other}`: expected \"initiate\" or \"respond\""),
        ),
    };
    // A tunnel with its own underlay address (a lab cloud endpoint) is known to its peer
    // by that address, the peer's default remote_id.
    let own_address = raw.local_address.is_some();
    let local_id = match raw.local_id.as_deref() {
        Some(s) => ctx.check(&format!("{p}.local_id"), values::identity(s)),
        None if own_address => local_address.map(Identity::Ip),
        None => local.map(|(id, _)| id.clone()),
    };
    let remote_id = match raw.remote_id.as_deref() {
        Some(s) => ctx.check(&format!("{p}.remote_id"), values::identity(s)),
        None => peer.map(Identity::Ip),
    };
    let inner = inner(
        ctx,
        p,
        raw.inner_address.as_deref(),
        raw.inner_peer.as_deref(),
    );
    let mtu = mtu(ctx, &format!("{p}.mtu"), raw.mtu, inner);
    let local_ts = selectors(ctx, &format!("{p}.local_ts"), raw.local_ts);
    let remote_ts = selectors(ctx, &format!("{p}.remote_ts"), raw.remote_ts);
    let children = match (&local_ts, &remote_ts) {
        (Some(l), Some(r)) => children(ctx, p, raw.children, l, r),
        _ => None,
    };
    let dscp = match raw.copy_dscp.as_deref() {
        None => Some(DscpCopy::default()),
        Some(s) => s.parse().ok().or_else(|| {
            ctx.fail(
                &format!("{p}.copy_dscp"),
                format!("`{s}`: expected \"out\", \"in\", \"yes\" or \"no\""),
            )
        }),
    };
    let reauth_time = match raw.reauth_time.as_deref() {
        None => Some(None),
        Some(s) => ctx
            .check(&format!("{p}.reauth_time"), values::duration(s))
            .map(Some),
    };
    Some(Tunnel {
        name: name?,
        local_address: local_address?,
        peer: peer?,
        psk: psk?,
        ike_proposals: ike_proposals?,
        esp_proposals: esp_proposals?,
        allow_weak_groups,
        ike_lifetime: ike_lifetime?,
        child_lifetime: child_lifetime?,
        child_volume: child_volume?,
        dpd: dpd?,
        start_action: start_action?,
        local_id: local_id?,
        remote_id: remote_id?,
        inner: inner?,
        mtu: mtu?,
        mss_clamp: raw.mss_clamp.unwrap_or(true),
        qos: Qos {
            dscp: dscp?,
            ecn: raw.copy_ecn.unwrap_or(true),
        },
        local_ts: local_ts?,
        remote_ts: remote_ts?,
        additional_child_sas: raw.additional_child_sas.unwrap_or(true),
        reauth_time: reauth_time?,
        children: children?,
    })
}

/// CHILD SAs a tunnel requests itself.
const MAX_CHILDREN: usize = 16;

/// `children`: each list defaults to the tunnel's own; each pair must differ from the
/// tunnel's (its first CHILD SA) and from the others.
fn children(
    ctx: &mut Ctx,
    p: &str,
    raw: Option<Vec<RawChild>>,
    local_ts: &[IpNet],
    remote_ts: &[IpNet],
) -> Option<Vec<ChildSelectors>> {
    let raw = raw.unwrap_or_default();
    if raw.len() > MAX_CHILDREN {
        return ctx.fail(
            &format!("{p}.children"),
            format!("{} entries: at most {MAX_CHILDREN}", raw.len()),
        );
    }
    let mut out: Vec<ChildSelectors> = Vec::new();
    let mut ok = true;
    for (i, c) in raw.into_iter().enumerate() {
        let q = format!("{p}.children[{i}]");
        if c.local_ts.is_none() && c.remote_ts.is_none() {
            ctx.bad(
                &q,
                "set local_ts and/or remote_ts (the other defaults to the tunnel's)",
            );
            ok = false;
            continue;
        }
        let mut list = |key: &str, raw: Option<Vec<String>>, default: &[IpNet]| match raw {
            None => Some(default.to_vec()),
            some => selectors(ctx, &format!("{q}.{key}"), some),
        };
        let (Some(l), Some(r)) = (
            list("local_ts", c.local_ts, local_ts),
            list("remote_ts", c.remote_ts, remote_ts),
        ) else {
            ok = false;
            continue;
        };
        let child = ChildSelectors {
            local_ts: l,
            remote_ts: r,
        };
        if child.local_ts == local_ts && child.remote_ts == remote_ts {
            ctx.bad(&q, "the same selectors as the tunnel's first CHILD SA");
            ok = false;
        } else if out.contains(&child) {
            ctx.bad(&q, "the same selectors as an earlier child");
            ok = false;
        } else {
            out.push(child);
        }
    }
    ok.then_some(out)
}

/// A traffic selector list: CIDR prefixes, at least one; default 0.0.0.0/0 and ::/0.
fn selectors(ctx: &mut Ctx, path: &str, raw: Option<Vec<String>>) -> Option<Vec<IpNet>> {
    let Some(list) = raw else {
        return Some(defaults::any_ts());
    };
    if list.is_empty() {
        return ctx.fail(path, "empty: leave it out for 0.0.0.0/0 and ::/0");
    }
    let nets: Vec<Option<IpNet>> = list
        .iter()
        .map(|s| ctx.check(path, values::prefix(s)))
        .collect();
    nets.into_iter().collect()
}

fn psk(ctx: &mut Ctx, p: &str, inline: Option<Secret>, file: Option<String>) -> Option<Secret> {
    let (secret, path) = match (inline, file) {
        (Some(_), Some(_)) => {
            return ctx.fail(&format!("{p}.psk"), "set either psk or psk_file, not both");
        }
        (None, None) => return ctx.fail(&format!("{p}.psk"), "missing: set psk or psk_file"),
        (Some(s), None) => (s, format!("{p}.psk")),
        (None, Some(f)) => {
            let path = format!("{p}.psk_file");
            let full = ctx.base_dir.join(&f);
            match std::fs::read(&full) {
                Ok(mut bytes) => {
                    let keep = bytes
                        .iter()
                        .rposition(|&b| b != b'\n' && b != b'\r')
                        .map_or(0, |i| i + 1);
                    // Wipe the trailing newline bytes too before shrinking.
                    if let Some(tail) = bytes.get_mut(keep..) {
                        tail.zeroize();
                    }
                    bytes.truncate(keep);
                    (Secret::new(bytes), path)
                }
                Err(e) => return ctx.fail(&path, format!("cannot read `{}`: {e}", full.display())),
            }
        }
    };
    if !PSK_LEN.contains(&secret.len()) {
        return ctx.fail(
            &path,
            format!(
                "the key is {} bytes long; use {} to {} bytes",
                secret.len(),
                PSK_LEN.start(),
                PSK_LEN.end()
            ),
        );
    }
    if secret.expose().iter().any(|b| b.is_ascii_control()) {
        return ctx.fail(&path, "the key contains control characters");
    }
    Some(secret)
}

fn proposal_list<T>(
    ctx: &mut Ctx,
    path: &str,
    text: &str,
    parse: impl Fn(&str) -> Result<ProposalList<T>, Vec<String>>,
) -> Option<ProposalList<T>> {
    match parse(text) {
        Ok(list) => Some(list),
        Err(problems) => {
            for why in problems {
                ctx.bad(path, why);
            }
            None
        }
    }
}

/// strongSwan's rule for a missing half: hard = soft + 10%, soft = 90% of hard.
fn lifetime(
    ctx: &mut Ctx,
    p: &str,
    raw: Option<RawLifetime>,
    default: Lifetime,
) -> Option<Lifetime> {
    let Some(raw) = raw else { return Some(default) };
    let soft = raw
        .soft
        .as_deref()
        .map(|s| ctx.check(&format!("{p}.soft"), values::duration(s)));
    let hard = raw
        .hard
        .as_deref()
        .map(|s| ctx.check(&format!("{p}.hard"), values::duration(s)));
    let (soft, hard) = match (soft, hard) {
        (None, None) => (default.soft, default.hard),
        (Some(soft), None) => (soft?, soft? + soft? / 10),
        (None, Some(hard)) => (hard? - hard? / 10, hard?),
        (Some(soft), Some(hard)) => (soft?, hard?),
    };
    if soft >= hard {
        return ctx.fail(
            &format!("{p}.soft"),
            format!(
                "rekey time {} must be shorter than the hard lifetime {}",
                humantime::format_duration(soft),
                humantime::format_duration(hard)
            ),
        );
    }
    Some(Lifetime { soft, hard })
}

/// `child_lifetime.{soft,hard}_{bytes,packets}`.
fn child_volume(ctx: &mut Ctx, p: &str, raw: &RawChildLifetime) -> Option<ChildVolume> {
    let bytes = volume(
        ctx,
        p,
        "bytes",
        (raw.soft_bytes.as_ref(), raw.hard_bytes.as_ref()),
        values::byte_count,
    );
    let packets = volume(
        ctx,
        p,
        "packets",
        (raw.soft_packets.as_ref(), raw.hard_packets.as_ref()),
        values::packet_count,
    );
    Some(ChildVolume {
        bytes: bytes?,
        packets: packets?,
    })
}

/// One soft/hard pair, by the rule of the time lifetimes: a missing hard limit is soft +
/// 10 %, a missing soft one 90 % of hard (at least one unit apart); soft < hard.
/// `Some(None)`: neither is set.
fn volume(
    ctx: &mut Ctx,
    p: &str,
    unit: &str,
    (soft, hard): (Option<&toml::Value>, Option<&toml::Value>),
    parse: fn(&toml::Value) -> Result<u64, String>,
) -> Option<Option<Volume>> {
    let soft_path = format!("{p}.soft_{unit}");
    let hard_path = format!("{p}.hard_{unit}");
    let soft = soft.map(|v| ctx.check(&soft_path, parse(v)));
    let hard = hard.map(|v| ctx.check(&hard_path, parse(v)));
    let tenth = |n: u64| (n / 10).max(1);
    let v = match (soft, hard) {
        (None, None) => return Some(None),
        (Some(soft), None) => {
            let soft = soft?;
            Volume {
                soft,
                hard: soft.saturating_add(tenth(soft)),
            }
        }
        (None, Some(hard)) => {
            let hard = hard?;
            if hard < 2 {
                return ctx.fail(&hard_path, "must be at least 2 to leave room for a rekey");
            }
            Volume {
                soft: hard - tenth(hard),
                hard,
            }
        }
        (Some(soft), Some(hard)) => Volume {
            soft: soft?,
            hard: hard?,
        },
    };
    if v.soft >= v.hard {
        return ctx.fail(
            &soft_path,
            format!(
                "the rekey limit {} must be below the hard limit {}",
                v.soft, v.hard
            ),
        );
    }
    Some(Some(v))
}

fn dpd(ctx: &mut Ctx, p: &str, raw: Option<RawDpd>) -> Option<Dpd> {
    let raw = raw.unwrap_or(RawDpd {
        interval: None,
        timeout: None,
        action: None,
    });
    let interval = match raw.interval.as_deref() {
        Some(s) => ctx.check(&format!("{p}.interval"), values::duration(s)),
        None => Some(defaults::DPD_INTERVAL),
    };
    let timeout = match raw.timeout.as_deref() {
        Some(s) => ctx.check(&format!("{p}.timeout"), values::duration(s)),
        None => Some(defaults::DPD_TIMEOUT),
    };
    let action = match raw.action.as_deref() {
        None | Some("restart") => Some(DpdAction::Restart),
        Some("clear") => Some(DpdAction::Clear),
        Some("none") => Some(DpdAction::None),
        Some(other) => ctx.fail(
            &format!("{p}.action"),
            format!("`{other}`: expected \"restart\", \"clear\" or \"none\""),
        ),
    };
    let (interval, timeout) = (interval?, timeout?);
    if timeout <= interval {
        return ctx.fail(
            &format!("{p}.timeout"),
            format!(
                "must be longer than the interval ({})",
                humantime::format_duration(interval)
            ),
        );
    }
    Some(Dpd {
        interval,
        timeout,
        action: action?,
    })
}

fn inner(
    ctx: &mut Ctx,
    p: &str,
    address: Option<&str>,
    peer: Option<&str>,
) -> Option<InnerAddress> {
    let a_path = format!("{p}.inner_address");
    let p_path = format!("{p}.inner_peer");
    let net = ctx.require(&a_path, address).and_then(|s| {
        let net: Result<IpNet, _> = s.trim().parse();
        ctx.check(
            &a_path,
            net.map_err(|_| format!("`{s}` is not an address/prefix like 169.254.10.2/30")),
        )
    });
    let peer = ctx.require(&p_path, peer).and_then(|s| {
        let ip: Result<IpAddr, _> = s.trim().parse();
        ctx.check(
            &p_path,
            ip.map_err(|_| format!("`{s}` is not an IP address")),
        )
    });
    let net = net?;
    let want = if net.addr().is_ipv4() { 30 } else { 126 };
    if net.prefix_len() != want {
        return ctx.fail(
            &a_path,
            format!(
                "tunnel inner networks are /{want}; got /{}",
                net.prefix_len()
            ),
        );
    }
    let usable = |ip: IpAddr| {
        net.contains(&ip) && (ip.is_ipv6() || (ip != net.network() && ip != net.broadcast()))
    };
    if !usable(net.addr()) {
        return ctx.fail(
            &a_path,
            format!(
                "`{}` is the network or broadcast address of {}",
                net.addr(),
                net.trunc()
            ),
        );
    }
    let peer = peer?;
    if !usable(peer) {
        return ctx.fail(
            &p_path,
            format!("`{peer}` is not a host address of {}", net.trunc()),
        );
    }
    if peer == net.addr() {
        return ctx.fail(&p_path, "must differ from the local inner address");
    }
    Some(InnerAddress {
        local: net.addr(),
        peer,
        prefix_len: net.prefix_len(),
    })
}

fn mtu(ctx: &mut Ctx, path: &str, raw: Option<i64>, inner: Option<InnerAddress>) -> Option<u16> {
    let mtu = raw.unwrap_or(i64::from(defaults::MTU));
    if !defaults::MTU_RANGE.contains(&mtu) {
        return ctx.fail(
            path,
            format!(
                "{mtu} is outside {}..={} (cloud endpoints use 1399-1450)",
                defaults::MTU_RANGE.start(),
                defaults::MTU_RANGE.end()
            ),
        );
    }
    if inner.is_some_and(|i| i.local.is_ipv6()) && mtu < 1280 {
        return ctx.fail(path, format!("{mtu} is below the IPv6 minimum MTU 1280"));
    }
    u16::try_from(mtu).ok()
}
