//! The daemon's logs: `--log-format json` gives one JSON object a line with structured
//! fields, the readable default stays readable, and no PSK reaches either.

use std::time::Duration;

use e2e::{plan, skip_unless_root, Psk, Side, SiteToSite, Vpngw, VpngwConfig};

const UP: Duration = Duration::from_secs(30);
const BOTH: [&str; 2] = ["tunnel1", "tunnel2"];
const PSKS: [&str; 2] = ["logs-e2e-secret-one", "logs-e2e-secret-two"];

fn psks() -> [Psk; 2] {
    PSKS.map(Psk::from)
}

#[test]
fn json_logs_are_structured_and_no_log_holds_a_psk() -> anyhow::Result<()> {
    if skip_unless_root("json_logs_are_structured_and_no_log_holds_a_psk") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let mut customer = Vpngw::start(
        s2s.customer_gw(),
        &VpngwConfig::for_plan(Side::Customer, psks()),
    )?;
    let mut cloud = Vpngw::start_with_args(
        s2s.cloud_gw(),
        &VpngwConfig::for_plan(Side::Cloud, psks()),
        &["--log-format", "json"],
    )?;
    cloud.wait_up(&BOTH, UP)?;
    customer.wait_up(&BOTH, UP)?;
    customer.disable("tunnel1")?;
    customer.enable("tunnel1")?;
    customer.wait_up(&BOTH, UP)?;
    anyhow::ensure!(cloud.stop(), "the cloud daemon did not exit cleanly");
    anyhow::ensure!(customer.stop(), "the customer daemon did not exit cleanly");

    let json = cloud.log()?;
    let mut up = Vec::new();
    let mut esp_limits = Vec::new();
    for line in json.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| anyhow::anyhow!("not a JSON log line ({e}): {line}"))?;
        anyhow::ensure!(v.get("level").is_some(), "no level: {line}");
        let fields = v
            .get("fields")
            .ok_or_else(|| anyhow::anyhow!("no fields: {line}"))?;
        if fields.get("message").and_then(|m| m.as_str()) == Some("CHILD SA installed") {
            esp_limits.push(fields.get("esp_size_limit").and_then(|l| l.as_u64()));
        }
        if fields.get("message").and_then(|m| m.as_str()) == Some("tunnel UP") {
            up.extend(
                fields
                    .get("tunnel")
                    .and_then(|t| t.as_str())
                    .map(String::from),
            );
        }
    }
    for t in plan::TUNNELS {
        anyhow::ensure!(
            up.iter().any(|u| u == t.name),
            "no structured 'tunnel UP' for {} in:\n{json}",
            t.name
        );
    }

    // ESP may pad to AES blocks up to what the 1500-byte underlay leaves after the IPv4
    // and UDP headers: the daemon found the path MTU for every CHILD SA.
    anyhow::ensure!(
        !esp_limits.is_empty() && esp_limits.iter().all(|l| *l == Some(1500 - 28)),
        "CHILD SAs without the underlay's ESP size limit: {esp_limits:?}"
    );

    let text = customer.log()?;
    anyhow::ensure!(
        text.lines()
            .any(|l| l.contains("tunnel UP") && l.contains("tunnel1")),
        "no readable 'tunnel UP' line:\n{text}"
    );
    // The log goes to a file here, not a terminal: no colour escape codes.
    anyhow::ensure!(!text.contains('\x1b'), "escape codes in the log:\n{text}");
    for (name, log) in [("cloud", &json), ("customer", &text)] {
        for psk in PSKS {
            anyhow::ensure!(!log.contains(psk), "the {name} log holds a PSK");
        }
    }
    Ok(())
}
