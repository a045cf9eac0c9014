//! CHILD and IKE SA rekeys and DELETEs between vpngw and strongSwan at short lifetimes,
//! with traffic running: no packet lost, new SPIs on both sides.

use std::time::Duration;

use e2e::charon::{find_up, summary, IkeSa};
use e2e::{
    ping, plan, skip_unless_root, Charon, EndpointOptions, PingOptions, PingStats, Psk, Side,
    SiteToSite, StrongswanEndpoint, Vpngw, VpngwConfig, VpngwStatus,
};

const UP: Duration = Duration::from_secs(30);
const BOTH: [&str; 2] = ["tunnel1", "tunnel2"];

fn psks() -> [Psk; 2] {
    [
        Psk::from("rekey-e2e-psk-one"),
        Psk::from("rekey-e2e-psk-two"),
    ]
}

fn opts() -> EndpointOptions {
    EndpointOptions {
        bgp: false,
        static_route: true,
    }
}

/// An SPI pair as our status prints it.
type SpiPair = (String, String);

/// (IKE SPIs, CHILD SPIs) of tunnel1 in our status.
fn spis(s: &VpngwStatus) -> (Option<SpiPair>, Vec<SpiPair>) {
    let t = s.tunnel("tunnel1");
    (
        t.and_then(|t| t.ike.as_ref())
            .map(|i| (i.spi_i.clone(), i.spi_r.clone())),
        t.map(|t| {
            t.child_sas
                .iter()
                .map(|c| (c.spi_in.clone(), c.spi_out.clone()))
                .collect()
        })
        .unwrap_or_default(),
    )
}

/// A 22 s ping VPC -> IDC at 5 per second.
fn long_ping(s2s: &SiteToSite) -> e2e::Result<PingStats> {
    ping(
        s2s.vpc_host(),
        plan::IDC_HOST.into(),
        &PingOptions {
            count: 110,
            interval: Duration::from_millis(200),
            wait: Duration::from_secs(2),
            ..PingOptions::default()
        },
    )
}

/// [`mirrored`] on fresh reads of both sides. With lifetimes of seconds a rekey can fall
/// between reading one side and the other, so a mismatch is read again (ours after
/// theirs, then both), a few times, before it counts.
fn mirrored_now(vpngw: &Vpngw, charon: &Charon) -> anyhow::Result<()> {
    let mut last = Ok(());
    for _ in 0..5 {
        let theirs = charon.list_sas()?;
        last = mirrored(&vpngw.status()?, &theirs);
        if last.is_ok() {
            return last;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    last
}

fn mirrored(ours: &VpngwStatus, theirs: &[IkeSa]) -> anyhow::Result<()> {
    let c = find_up(theirs, "tunnel1")
        .and_then(|sa| sa.installed_children().find(|c| c.name == "tunnel1"))
        .ok_or_else(|| anyhow::anyhow!("tunnel1 not up:\n{}", summary(theirs)))?;
    let t = ours
        .tunnel("tunnel1")
        .ok_or_else(|| anyhow::anyhow!("no tunnel1"))?;
    anyhow::ensure!(
        t.child_sas
            .iter()
            .any(|o| o.spi_in() == c.spi_out && o.spi_out() == c.spi_in),
        "strongSwan {:08x}/{:08x} not among ours {:?}",
        c.spi_in,
        c.spi_out,
        t.child_sas
    );
    Ok(())
}

#[test]
fn strongswan_rekeys_child_and_ike_sas_without_loss() -> anyhow::Result<()> {
    if skip_unless_root("strongswan_rekeys_child_and_ike_sas_without_loss") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let mut vpngw = Vpngw::start(
        s2s.customer_gw(),
        &VpngwConfig::for_plan(Side::Customer, psks()),
    )?;
    let mut cloud = StrongswanEndpoint::start(&s2s, Side::Cloud, psks(), &opts())?;
    cloud.charon.wait_up(&BOTH, UP)?;
    let before = vpngw.wait_up(&BOTH, UP)?;
    // strongSwan starts every rekey, on command: kernel-libipsec lets CHILD SAs with
    // lifetimes of a few seconds hard-expire instead of rekeying them.
    let stats = std::thread::scope(|scope| -> anyhow::Result<PingStats> {
        let pinger = scope.spawn(|| long_ping(&s2s));
        for step in ["child", "ike", "child", "ike"] {
            std::thread::sleep(Duration::from_secs(4));
            for t in BOTH {
                match step {
                    "child" => cloud.charon.rekey_child(t)?,
                    _ => cloud.charon.rekey_ike(t)?,
                }
            }
        }
        pinger
            .join()
            .map_err(|_| anyhow::anyhow!("ping thread panicked"))?
            .map_err(Into::into)
    })?;
    anyhow::ensure!(
        stats.received == stats.transmitted,
        "lost packets across rekeys: {stats:?}"
    );
    let after = vpngw.wait_up(&BOTH, UP)?;
    let (ike0, child0) = spis(&before);
    let (ike1, child1) = spis(&after);
    anyhow::ensure!(ike0 != ike1, "IKE SA not rekeyed: {ike1:?}");
    anyhow::ensure!(
        child1.iter().all(|c| !child0.contains(c)),
        "CHILD SA not rekeyed: before {child0:?} after {child1:?}"
    );
    mirrored_now(&vpngw, &cloud.charon)?;

    // DELETE from strongSwan: our tunnel goes DOWN with the reason.
    cloud.charon.terminate_ike("tunnel2")?;
    vpngw.wait_status("tunnel2 deleted by the peer", UP, |s| {
        s.tunnel("tunnel2")
            .is_some_and(|t| t.state == "DOWN" && t.reason.as_deref() == Some("peer_delete"))
    })?;
    // DELETE from us: strongSwan drops its SA.
    vpngw.disable("tunnel1")?;
    cloud.charon.wait_down("tunnel1", UP)?;
    Ok(())
}

#[test]
fn vpngw_rekeys_child_and_ike_sas_without_loss() -> anyhow::Result<()> {
    if skip_unless_root("vpngw_rekeys_child_and_ike_sas_without_loss") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let mut cfg = VpngwConfig::for_plan(Side::Customer, psks());
    for t in &mut cfg.tunnels {
        t.child_lifetime = ("8s".into(), "20s".into());
        t.ike_lifetime = ("14s".into(), "40s".into());
    }
    let mut vpngw = Vpngw::start(s2s.customer_gw(), &cfg)?;
    let mut cloud = StrongswanEndpoint::start(&s2s, Side::Cloud, psks(), &opts())?;
    cloud.charon.wait_up(&BOTH, UP)?;
    let before = vpngw.wait_up(&BOTH, UP)?;
    let stats = long_ping(&s2s)?;
    anyhow::ensure!(
        stats.received == stats.transmitted,
        "lost packets across rekeys: {stats:?}"
    );
    let after = vpngw.wait_up(&BOTH, UP)?;
    let (ike0, child0) = spis(&before);
    let (ike1, child1) = spis(&after);
    anyhow::ensure!(ike0 != ike1, "IKE SA not rekeyed: {ike1:?}");
    anyhow::ensure!(
        child1.iter().all(|c| !child0.contains(c)),
        "CHILD SA not rekeyed: before {child0:?} after {child1:?}"
    );
    mirrored_now(&vpngw, &cloud.charon)?;
    Ok(())
}
