//! RFC 3948 NAT keepalives: each UP tunnel sends the one-byte 0xFF datagram on UDP 4500
//! every 20 s, and the peer counts what it receives without treating it as ESP or IKE.

use std::time::Duration;

use e2e::{skip_unless_root, wait_until, Psk, SiteToSite, Vpngw};

const UP: Duration = Duration::from_secs(30);

fn psks() -> [Psk; 2] {
    [Psk::from("nat-ka-psk-one"), Psk::from("nat-ka-psk-two")]
}

fn received(v: &Vpngw) -> u64 {
    v.status()
        .ok()
        .and_then(|s| s.dataplane.get("keepalives_in").copied())
        .unwrap_or(0)
}

#[test]
fn up_tunnels_exchange_nat_keepalives() -> anyhow::Result<()> {
    if skip_unless_root("up_tunnels_exchange_nat_keepalives") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let (customer, cloud) = Vpngw::start_plan_pair(&s2s, psks(), UP)?;
    // One interval (20 s) plus slack: both tunnels of each side send one.
    wait_until("keepalives both ways", Duration::from_secs(35), || {
        received(&customer) >= 2 && received(&cloud) >= 2
    })?;
    for v in [&customer, &cloud] {
        let s = v.status()?;
        let malformed = s.counter("udp_malformed");
        anyhow::ensure!(malformed == 0, "keepalives counted as malformed: {s:?}");
        anyhow::ensure!(
            s.tunnels.iter().all(|t| t.state == "UP"),
            "a tunnel went down: {s:?}"
        );
    }
    Ok(())
}
