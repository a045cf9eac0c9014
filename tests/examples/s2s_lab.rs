//! Brings up the full site-to-site lab with strongSwan + BIRD on both gateways (cloud
//! initiating, two tunnels, eBGP over each), prints both sides' SAs and BGP routes,
//! pings the IDC host from the VPC host, and tears everything down. Run as root:
//! `cargo run -p e2e --example s2s_lab`. Set `VPNGW_TEST_HOLD=<secs>` to keep the lab up
//! for poking at it by hand (`ip netns list`, `swanctl --uri ...`, `birdc -s ...`).

use std::time::Duration;

use e2e::{ping, plan, EndpointOptions, PingOptions, Psk, Side, SiteToSite, StrongswanEndpoint};

fn main() -> anyhow::Result<()> {
    if e2e::skip_unless_root("s2s_lab") {
        return Ok(());
    }
    let timeout = Duration::from_secs(30);
    let psks = || [Psk::from("lab-psk-one"), Psk::from("lab-psk-two")];
    let s2s = SiteToSite::build()?;
    let opts = EndpointOptions::default();
    let mut customer = StrongswanEndpoint::start(&s2s, Side::Customer, psks(), &opts)?;
    let mut cloud = StrongswanEndpoint::start(&s2s, Side::Cloud, psks(), &opts)?;
    for end in [&mut cloud, &mut customer] {
        end.charon.wait_up(&["tunnel1", "tunnel2"], timeout)?;
        if let Some(bird) = end.bird.as_mut() {
            for t in &plan::TUNNELS {
                bird.wait_established(t.name, timeout)?;
            }
        }
    }
    if let Some(bird) = cloud.bird.as_mut() {
        bird.wait_route(plan::IDC_PREFIX, "tunnel2", timeout)?;
    }
    let stats = ping(
        s2s.vpc_host(),
        plan::IDC_HOST.into(),
        &PingOptions::default(),
    )?;
    println!("ping VPC host -> IDC host: {stats:?}");
    for (side, end) in [("cloud", &cloud), ("customer", &customer)] {
        println!("=== {side} ({}) vici {}", end.namespace(), end.charon.uri());
        print!("{}", end.charon.swanctl(&["--list-sas", "--pretty"])?);
        if let Some(bird) = &end.bird {
            println!("=== {side} BIRD routes");
            print!("{}", bird.birdc(&["show", "route", "all"])?);
        }
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
