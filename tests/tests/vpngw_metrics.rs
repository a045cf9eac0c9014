//! Prometheus metrics of a running gateway: scraped with curl inside its namespace, they
//! show both tunnels UP with the traffic that crossed them, as `vpngw status` does.

use std::time::Duration;

use e2e::{
    ping, plan, require, skip_unless_root, PingOptions, Psk, Side, SiteToSite, Tool, Vpngw,
    VpngwConfig,
};

const UP: Duration = Duration::from_secs(30);
const BOTH: [&str; 2] = ["tunnel1", "tunnel2"];
const METRICS: &str = "127.0.0.1:9477";

fn psks() -> [Psk; 2] {
    [
        Psk::from("metrics-e2e-psk-one"),
        Psk::from("metrics-e2e-psk-two"),
    ]
}

/// The value of the sample line `series` (name and labels) in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_show_the_tunnels_and_their_traffic() -> anyhow::Result<()> {
    if skip_unless_root("metrics_show_the_tunnels_and_their_traffic") {
        return Ok(());
    }
    require(&[Tool::Curl])?;
    let s2s = SiteToSite::build()?;
    // A top-level key goes before the first table.
    let text = VpngwConfig::for_plan(Side::Customer, psks())
        .render()
        .replacen(
            "\n[local]",
            &format!("metrics_listen = \"{METRICS}\"\n\n[local]"),
            1,
        );
    let mut customer = Vpngw::start_text(s2s.customer_gw(), &text)?;
    let mut cloud = Vpngw::start(s2s.cloud_gw(), &VpngwConfig::for_plan(Side::Cloud, psks()))?;
    cloud.wait_up(&BOTH, UP)?;
    customer.wait_up(&BOTH, UP)?;
    let pings = ping(
        s2s.idc_host(),
        plan::VPC_HOST.into(),
        &PingOptions {
            count: 5,
            ..PingOptions::default()
        },
    )?;
    anyhow::ensure!(pings.all_replied(), "{pings:?}");

    let url = format!("http://{METRICS}/metrics");
    let text =
        s2s.customer_gw()
            .run(&[Tool::Curl.path(), "-sS", "--fail", "--max-time", "5", &url])?;
    let status = customer.status()?;
    for t in BOTH {
        let up = sample(
            &text,
            &format!("vpngw_tunnel_up{{connection=\"lab\",tunnel=\"{t}\"}}"),
        );
        anyhow::ensure!(up == Some(1.0), "{t}: up {up:?}\n{text}");
    }
    // Active-standby: the pings crossed tunnel1, which counted them both ways.
    let (packets_in, packets_out) = status.packets("tunnel1");
    for (direction, at_least) in [("in", 5), ("out", 5)] {
        let v = sample(
            &text,
            &format!(
                "vpngw_tunnel_packets_total{{connection=\"lab\",tunnel=\"tunnel1\",direction=\"{direction}\"}}"
            ),
        )
        .unwrap_or(0.0);
        anyhow::ensure!(
            v >= f64::from(at_least),
            "tunnel1 packets {direction}: {v} (status: in {packets_in}, out {packets_out})\n{text}"
        );
    }
    anyhow::ensure!(
        sample(&text, "vpngw_dataplane_total{counter=\"no_route\"}").is_some(),
        "no dataplane counters\n{text}"
    );
    // Anything but GET /metrics is refused.
    let refused = s2s.customer_gw().run(&[
        Tool::Curl.path(),
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "5",
        &format!("http://{METRICS}/"),
    ])?;
    anyhow::ensure!(refused.trim() == "404", "GET /: {refused}");
    Ok(())
}
