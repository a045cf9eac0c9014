//! The lab's customer gateway runs the shipped `configs/customer.toml`, so the lab proves that
//! file works as written. Only what belongs to the lab's topology is replaced: addresses,
//! tunnel names, fresh PSKs, the advertised prefix, who initiates (the cloud, unless the
//! customer sits behind a NAT); static routes go, because the lab shows routes learned
//! over BGP. Proposals, lifetimes, DPD, MTU, MSS clamping and the BGP ASNs stay
//! as the file has them (against strongSwan the harness's proposals replace the file's).

use super::LabError;
use netlab::VpngwConfig;
use toml::{Table, Value};

/// `configs/customer.toml`, built in so an installed binary needs no source tree.
const CUSTOMER_TOML: &str = include_str!("../../../configs/customer.toml");

/// Tunnel keys taken from the lab's plan; with `plan_proposals` the proposals too.
const TOPOLOGY_KEYS: [&str; 6] = [
    "name",
    "peer",
    "psk",
    "inner_address",
    "inner_peer",
    "start_action",
];
const PROPOSAL_KEYS: [&str; 2] = ["ike_proposals", "esp_proposals"];

/// customer.toml with the lab's topology (`plan`, rendered by the harness) written over it.
pub fn customer_config_text(plan: &VpngwConfig, plan_proposals: bool) -> Result<String, LabError> {
    let bad = |what: &str| LabError::Invalid(format!("configs/customer.toml: {what}"));
    let mut doc: Table = CUSTOMER_TOML
        .parse()
        .map_err(|e| bad(&format!("not TOML: {e}")))?;
    let lab: Table = plan
        .render()
        .parse()
        .map_err(|e| LabError::Invalid(format!("lab plan config: {e}")))?;

    let local = table_mut(&mut doc, "local").ok_or_else(|| bad("no [local]"))?;
    let address = Value::String(plan.local_address.to_string());
    local.insert("address".into(), address.clone());
    // The cloud side expects the customer's identity to be its (public) address.
    let id = plan.local_id.clone().map_or(address, Value::String);
    local.insert("id".into(), id);

    let conn = first_connection(&mut doc).ok_or_else(|| bad("no [[connections]]"))?;
    conn.remove("routes");
    let tunnels = conn
        .get_mut("tunnels")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| bad("no [[connections.tunnels]]"))?;
    let lab_tunnels = lab_connection(&lab, "tunnels").unwrap_or_default();
    if tunnels.len() != lab_tunnels.len() {
        return Err(bad(&format!(
            "{} tunnels, the lab has {}",
            tunnels.len(),
            lab_tunnels.len()
        )));
    }
    for (ours, theirs) in tunnels.iter_mut().zip(&lab_tunnels) {
        let (Some(ours), Some(theirs)) = (ours.as_table_mut(), theirs.as_table()) else {
            return Err(bad("a tunnel is not a table"));
        };
        let keys = TOPOLOGY_KEYS
            .iter()
            .chain(PROPOSAL_KEYS.iter().filter(|_| plan_proposals));
        for key in keys {
            if let Some(v) = theirs.get(*key) {
                ours.insert((*key).into(), v.clone());
            }
        }
    }
    let advertise = plan
        .bgp
        .as_ref()
        .map(|b| b.advertise.iter().cloned().map(Value::String).collect())
        .unwrap_or_default();
    table_mut(conn, "bgp")
        .ok_or_else(|| bad("no [connections.bgp]"))?
        .insert("advertise".into(), Value::Array(advertise));
    Ok(doc.to_string())
}

fn table_mut<'a>(t: &'a mut Table, key: &str) -> Option<&'a mut Table> {
    t.get_mut(key).and_then(Value::as_table_mut)
}

fn first_connection(doc: &mut Table) -> Option<&mut Table> {
    doc.get_mut("connections")
        .and_then(Value::as_array_mut)
        .and_then(|a| a.first_mut())
        .and_then(Value::as_table_mut)
}

fn lab_connection(lab: &Table, key: &str) -> Option<Vec<Value>> {
    lab.get("connections")?
        .as_array()?
        .first()?
        .get(key)?
        .as_array()
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use netlab::{Psk, Side, VpngwBgp};
    use std::path::Path;

    fn plan() -> VpngwConfig {
        let mut cfg = VpngwConfig::for_plan(
            Side::Customer,
            [Psk::from("lab-psk-one-x"), Psk::from("lab-psk-two-x")],
        );
        cfg.bgp = Some(VpngwBgp {
            local_asn: 65010,
            peer_asn: 65000,
            advertise: vec!["10.10.0.0/24".into()],
            hold_time: "30s".into(),
            standby_prepend: None,
        });
        cfg
    }

    #[test]
    fn keeps_the_files_settings_and_takes_the_labs_topology() {
        let text = customer_config_text(&plan(), false).unwrap();
        let cfg = Config::parse(&text, Path::new("customer.toml"), Path::new("."), [])
            .expect("the lab's customer config validates");
        let c = &cfg.connections[0];
        assert_eq!(c.name, "vpc-prod", "the file's connection");
        assert!(c.routes.is_empty(), "static routes removed");
        let t = &c.tunnels[0];
        assert_eq!(t.name, "tunnel1");
        assert_eq!(t.peer.to_string(), plan().tunnels[0].peer.to_string());
        assert!(text.contains("lab-psk-one-x") && !text.contains("lab-only-psk-tunnel-1"));
        assert!(
            text.contains("aes128gcm16-prfsha256-modp2048"),
            "the file's proposals"
        );
        assert!(text.contains("action = \"restart\""), "the file's DPD");
        assert!(text.contains("10.10.0.0/24") && !text.contains("10.10.0.0/16"));
    }

    #[test]
    fn behind_a_nat_the_private_address_the_public_id_and_initiating() {
        let mut nat = VpngwConfig::for_plan_behind_nat(
            Side::Customer,
            [Psk::from("lab-psk-one-x"), Psk::from("lab-psk-two-x")],
        );
        nat.bgp = plan().bgp;
        let text = customer_config_text(&nat, false).unwrap();
        let cfg = Config::parse(&text, Path::new("customer.toml"), Path::new("."), [])
            .expect("the lab's customer config validates");
        assert!(text.contains("address = \"100.64.0.2\""), "{text}");
        assert!(text.contains("id = \"192.0.2.2\""), "{text}");
        let t = &cfg.connections[0].tunnels[0];
        assert_eq!(t.peer.to_string(), "203.0.113.1");
        assert_eq!(
            text.matches("start_action = \"initiate\"").count(),
            2,
            "{text}"
        );
        let public = customer_config_text(&plan(), false).unwrap();
        assert!(public.contains("id = \"192.0.2.2\""), "{public}");
        assert_eq!(public.matches("start_action = \"respond\"").count(), 2);
    }

    #[test]
    fn against_strongswan_the_plans_proposals_win() {
        let text = customer_config_text(&plan(), true).unwrap();
        assert!(!text.contains("aes128gcm16-prfsha256-modp2048"));
        assert!(text.contains(&plan().tunnels[0].ike_proposals));
    }
}
