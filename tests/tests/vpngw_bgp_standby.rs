//! Active-standby with eBGP keeps both directions on one tunnel: the first UP one in the
//! config's order. Each standby tunnel advertises our AS prepended (`standby_prepend`),
//! so the peer sends back over the active tunnel, and among equal routes from the peer
//! the active tunnel's wins on our side too. The tunnels are listed in the reverse of
//! their address order here on both sides, so that BGP's own tie-break (the peer's
//! lowest router identifier) points at the other tunnel: before, both sides sent over
//! tunnel1, whatever the config said.

use std::time::Duration;

use e2e::{plan, skip_unless_root, IperfOptions, Psk, Side, SiteToSite, Vpngw, VpngwConfig};

const UP: Duration = Duration::from_secs(30);
const BOTH: [&str; 2] = ["tunnel1", "tunnel2"];

fn psks() -> [Psk; 2] {
    [Psk::from("standby-psk-one"), Psk::from("standby-psk-two")]
}

/// BGP only, tunnel2 listed first.
fn config(side: Side) -> VpngwConfig {
    let mut c = VpngwConfig::for_plan(side, psks()).with_plan_bgp(side, "9s");
    c.tunnels.reverse();
    c
}

/// Packets (in, out) of each tunnel, in `BOTH`'s order.
fn packets(v: &Vpngw) -> anyhow::Result<[(u64, u64); 2]> {
    let s = v.status()?;
    Ok([s.packets(BOTH[0]), s.packets(BOTH[1])])
}

/// 2000 datagrams each way between the sites; the tunnel that carried them in each
/// direction, seen from the customer: (to the VPC, from the VPC).
fn carriers(s2s: &SiteToSite, customer: &Vpngw) -> anyhow::Result<(String, String)> {
    let dir = e2e::WorkDir::new("bgp-standby")?;
    let server = s2s.iperf_server_on_idc(&dir.join("iperf3.log"))?;
    let before = packets(customer)?;
    for reverse in [false, true] {
        let opts = IperfOptions {
            duration: Duration::from_secs(1),
            udp_bitrate: Some(16_000_000),
            length: Some(1000),
            reverse,
            ..IperfOptions::default()
        };
        e2e::iperf_client(s2s.vpc_host(), server.addr(), server.port(), &opts)?;
    }
    let after = packets(customer)?;
    let delta: Vec<(u64, u64)> = after
        .iter()
        .zip(before)
        .map(|(a, b)| (a.0 - b.0, a.1 - b.1))
        .collect();
    // One tunnel carries a direction: it has the datagrams, the other at most BGP's
    // keepalives and the iperf3 control connection's few packets.
    let pick = |f: fn(&(u64, u64)) -> u64| -> anyhow::Result<String> {
        let (a, b) = (f(&delta[0]), f(&delta[1]));
        anyhow::ensure!(
            a.max(b) >= 1500 && a.min(b) <= 100,
            "traffic split over both tunnels (in, out per tunnel): {delta:?}"
        );
        Ok(if a > b { BOTH[0] } else { BOTH[1] }.to_owned())
    };
    Ok((pick(|d| d.1)?, pick(|d| d.0)?))
}

#[test]
fn both_directions_take_the_first_tunnel_of_the_config() -> anyhow::Result<()> {
    if skip_unless_root("both_directions_take_the_first_tunnel_of_the_config") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let mut customer = Vpngw::start(s2s.customer_gw(), &config(Side::Customer))?;
    let mut cloud = Vpngw::start(s2s.cloud_gw(), &config(Side::Cloud))?;
    for v in [&mut cloud, &mut customer] {
        v.wait_up(&BOTH, UP)?;
        v.wait_bgp("both sessions with a route", UP, |s| {
            e2e::sessions_learned_one_route(s, 2)
        })?;
    }
    // The standby's advertisement is longer by two of our AS; the first tunnel wins both
    // ways although its peer identifiers are the higher ones.
    e2e::wait_until("both sides route over tunnel2", UP, || {
        customer.bgp_active(plan::VPC_PREFIX) == ["tunnel2"]
            && cloud.bgp_active(plan::IDC_PREFIX) == ["tunnel2"]
    })
    .map_err(|e| {
        anyhow::anyhow!(
            "{e}: customer {:?}, cloud {:?}",
            customer.routes(),
            cloud.routes()
        )
    })?;
    let (to_vpc, from_vpc) = carriers(&s2s, &customer)?;
    anyhow::ensure!(
        to_vpc == "tunnel2" && from_vpc == "tunnel2",
        "to the VPC over {to_vpc}, back over {from_vpc}"
    );

    // The active tunnel down: both directions on the standby; back up: both back.
    customer.disable("tunnel2")?;
    let (to_vpc, from_vpc) = carriers(&s2s, &customer)?;
    anyhow::ensure!(
        to_vpc == "tunnel1" && from_vpc == "tunnel1",
        "with tunnel2 disabled: to the VPC over {to_vpc}, back over {from_vpc}"
    );
    customer.enable("tunnel2")?;
    customer.wait_up(&BOTH, UP)?;
    e2e::wait_until("both sides back on tunnel2", UP, || {
        customer.bgp_active(plan::VPC_PREFIX) == ["tunnel2"]
            && cloud.bgp_active(plan::IDC_PREFIX) == ["tunnel2"]
    })?;
    let (to_vpc, from_vpc) = carriers(&s2s, &customer)?;
    anyhow::ensure!(
        to_vpc == "tunnel2" && from_vpc == "tunnel2",
        "tunnel2 enabled again: to the VPC over {to_vpc}, back over {from_vpc}"
    );
    Ok(())
}
