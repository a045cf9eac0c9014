//! What was negotiated (as the status shows it) and operator/dataplane-driven CHILD rekeys.
mod common;
use common::pair::{config, Pair};
use ike::proposal::{EspProposal, IkeProposal};
use ike::sa::{ChildRekey, Lifetime};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::time::Duration;

fn ike_list(list: &[&str]) -> Vec<IkeProposal> {
    list.iter()
        .map(|s| IkeProposal::parse(s, false).unwrap())
        .collect()
}

fn esp_list(list: &[&str]) -> Vec<EspProposal> {
    list.iter()
        .map(|s| EspProposal::parse(s, false).unwrap())
        .collect()
}

#[test]
fn both_sides_report_the_negotiated_not_the_configured_proposal() {
    let mut a = config(1, "aes128gcm16-prfsha256-modp2048", "aes128gcm16");
    let mut b = config(2, "aes128gcm16-prfsha256-modp2048", "aes128gcm16");
    assert_eq!(a.ike_proposals.len(), 1);
    // The initiator offers two of each; the responder only accepts the second ones.
    a.ike_proposals = ike_list(&["aes256gcm16-prfsha384-ecp384", "aes128-sha256-modp2048"]);
    a.esp_proposals = esp_list(&["aes256gcm16", "aes128-sha256-esn"]);
    b.ike_proposals = ike_list(&["aes256-sha512-ecp521", "aes128-sha256-modp2048"]);
    b.esp_proposals = esp_list(&["aes128-sha256-esn"]);
    let mut p = Pair::new(a, b, 41);
    assert_eq!(p.a.tunnel.negotiated_ike(), None, "nothing before it is up");
    assert!(p.drive_until_up(Duration::from_secs(5)));
    let want = Some("aes128-sha256-prfsha256-modp2048".to_owned());
    assert_eq!(p.a.tunnel.negotiated_ike(), want);
    assert_eq!(p.b.tunnel.negotiated_ike(), want);
    for side in [&p.a, &p.b] {
        let child = side.rec.active()[0];
        assert_eq!(child.suite.to_string(), "aes128-sha256-esn");
    }
}

#[test]
fn negotiated_proposal_survives_an_ike_rekey_and_pfs_shows_on_rekeyed_children() {
    let (ike, esp) = ("aes256-sha256-curve25519", "aes128gcm16-ecp256");
    let mut a = config(1, ike, esp);
    let b = config(2, ike, esp);
    a.ike_lifetime = Lifetime {
        rekey: Duration::from_secs(100),
        hard: Duration::from_secs(1000),
        jitter: Duration::from_secs(10),
    };
    let mut p = Pair::new(a, b, 42);
    assert!(p.drive_until_up(Duration::from_secs(5)));
    let spis = p.a.tunnel.ike_spis();
    let heard = p.a.tunnel.last_heard().expect("heard the peer");
    p.drive_for(Duration::from_secs(150));
    assert_ne!(p.a.tunnel.ike_spis(), spis, "the IKE SA was rekeyed");
    let want = Some("aes256-sha256-prfsha256-curve25519".to_owned());
    assert_eq!(p.a.tunnel.negotiated_ike(), want);
    assert_eq!(p.b.tunnel.negotiated_ike(), want);
    assert!(p.a.tunnel.last_heard().expect("still heard") > heard);
    // The CHILD SA of IKE_AUTH has no PFS group; one made by CREATE_CHILD_SA has.
    assert_eq!(p.a.rec.installs[0].suite.to_string(), "aes128gcm16");
    let mut rng = StdRng::seed_from_u64(1);
    let now = p.now;
    assert!(matches!(
        p.a.tunnel.rekey_child(now, &mut rng),
        Ok(ChildRekey::Started(_))
    ));
    p.drive_for(Duration::from_secs(10));
    let newest = p.a.rec.installs.last().unwrap();
    assert_eq!(newest.suite.to_string(), "aes128gcm16-ecp256");
}

#[test]
fn rekey_child_replaces_the_child_sa_once_and_refuses_when_busy_or_down() {
    let mut p = Pair::new(
        config(1, "aes128-sha256-ecp256", "aes128gcm16"),
        config(2, "aes128-sha256-ecp256", "aes128gcm16"),
        43,
    );
    let mut rng = StdRng::seed_from_u64(2);
    let now = p.now;
    assert_eq!(
        p.a.tunnel.rekey_child(now, &mut rng),
        Ok(ChildRekey::NotEstablished)
    );
    assert!(p.drive_until_up(Duration::from_secs(5)));
    let first = p.a.rec.installs[0].inbound.spi;
    let now = p.now;
    assert_eq!(
        p.a.tunnel.rekey_child(now, &mut rng),
        Ok(ChildRekey::Started(first))
    );
    // A second soft-limit event for the same SA before the rekey finished is a no-op.
    assert_eq!(
        p.a.tunnel.rekey_child(now, &mut rng),
        Ok(ChildRekey::AlreadyRunning)
    );
    p.drive_for(Duration::from_secs(10));
    assert_eq!(p.a.rec.installs.len(), 2, "exactly one new CHILD SA");
    assert!(p.a.rec.deleted.contains(&first), "the old one was deleted");
    assert!(p.b.rec.deleted.contains(&p.a.rec.installs[0].outbound.spi));
    assert_eq!(p.a.rec.active().len(), 1);
    p.assert_keys_match();
    assert!(p.a.tunnel.is_up() && p.b.tunnel.is_up());
    assert!(p.a.rec.downs.is_empty() && p.b.rec.downs.is_empty());
    // The responder can start one too, over the same IKE SA.
    let now = p.now;
    let cur = p.b.rec.active()[0].inbound.spi;
    assert_eq!(
        p.b.tunnel.rekey_child(now, &mut rng),
        Ok(ChildRekey::Started(cur))
    );
    p.drive_for(Duration::from_secs(10));
    assert!(p.b.rec.deleted.contains(&cur));
    p.assert_keys_match();
    // Deleted tunnels have nothing to rekey.
    let now = p.now;
    p.a.tunnel.delete(now, &mut rng);
    assert_eq!(
        p.a.tunnel.rekey_child(now, &mut rng),
        Ok(ChildRekey::NotEstablished)
    );
}
