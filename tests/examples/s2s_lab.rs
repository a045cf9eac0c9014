//! Brings up the site-to-site topology with strongSwan on both gateways (cloud
//! initiating, two tunnels), prints both sides' `swanctl --list-sas --pretty`, pings the
//! IDC host from the VPC host, and tears everything down. Run as root:
//! `cargo run -p e2e --example s2s_lab`. Set `VPNGW_TEST_HOLD=<secs>` to keep the lab up
//! for poking at it by hand (`ip netns list`, `swanctl --uri ...`).

use std::time::Duration;

use e2e::{ping, plan, Charon, CharonConfig, PingOptions, Psk, Side, SiteToSite};

fn main() -> anyhow::Result<()> {
    if e2e::skip_unless_root("s2s_lab") {
        return Ok(());
    }
    let psks = || [Psk::from("lab-psk-one"), Psk::from("lab-psk-two")];
    let s2s = SiteToSite::build()?;
    let mut customer = Charon::start(
        s2s.customer_gw(),
        &CharonConfig::site_to_site(Side::Customer, psks()),
    )?;
    let mut cloud = Charon::start(
        s2s.cloud_gw(),
        &CharonConfig::site_to_site(Side::Cloud, psks()),
    )?;
    cloud.wait_up(&["tunnel1", "tunnel2"], Duration::from_secs(20))?;
    customer.wait_up(&["tunnel1", "tunnel2"], Duration::from_secs(20))?;
    s2s.customer_gw()
        .ip(&["route", "add", plan::VPC_PREFIX, "dev", "ipsec0"])?;
    s2s.cloud_gw()
        .ip(&["route", "add", plan::IDC_PREFIX, "dev", "ipsec0"])?;
    let stats = ping(
        s2s.vpc_host(),
        plan::IDC_HOST.into(),
        &PingOptions::default(),
    )?;
    println!("ping VPC host -> IDC host: {stats:?}");
    for (side, charon) in [("cloud", &cloud), ("customer", &customer)] {
        println!("=== {side} ({}) vici {}", charon.namespace(), charon.uri());
        print!("{}", charon.swanctl(&["--list-sas", "--pretty"])?);
    }
    if let Some(secs) = std::env::var("VPNGW_TEST_HOLD")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        println!("holding the lab for {secs} s");
        std::thread::sleep(Duration::from_secs(secs));
    }
    Ok(())
}
