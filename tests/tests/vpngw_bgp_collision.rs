//! Two vpngw speakers, both dialing BGP (no passive side), over tunnels that come up
//! together: each side starts its session when the tunnel goes UP, within a round trip of
//! the other, so they dial each other at once. Collision resolution (RFC 4271 section
//! 6.8) keeps one of the two connections and both reach Established on the first try:
//! no failure recorded and one Established transition per session. Before it, the
//! second connection was closed at once and the session it carried failed and waited
//! out the 5 s idle hold.

use std::time::Duration;

use e2e::{skip_unless_root, Psk, Side, SiteToSite, Vpngw, VpngwConfig};

const UP: Duration = Duration::from_secs(30);
/// Well inside the 5 s idle hold a failed attempt waits before the next.
const ESTABLISHED: Duration = Duration::from_secs(4);
const BOTH: [&str; 2] = ["tunnel1", "tunnel2"];
/// Each round starts both daemons afresh, two sessions per round. Not every start
/// collides (4 to 12 collisions counted in 20 rounds here); against the code that closed
/// the second connection at once, 10 rounds failed 1 run in 6 and 25 rounds 3 runs in 3.
const ROUNDS: usize = 20;

fn config(side: Side) -> VpngwConfig {
    let psks = [
        Psk::from("bgp-collision-psk-one"),
        Psk::from("bgp-collision-psk-two"),
    ];
    VpngwConfig::for_plan(side, psks).with_plan_bgp(side, "9s")
}

#[test]
fn vpngw_speakers_dialing_each_other_at_once_establish_without_a_retry() -> anyhow::Result<()> {
    if skip_unless_root("vpngw_speakers_dialing_each_other_at_once_establish_without_a_retry") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let mut collisions = 0u64;
    for round in 0..ROUNDS {
        let mut customer = Vpngw::start(s2s.customer_gw(), &config(Side::Customer))?;
        let mut cloud = Vpngw::start(s2s.cloud_gw(), &config(Side::Cloud))?;
        cloud.wait_up(&BOTH, UP)?;
        customer.wait_up(&BOTH, UP)?;
        for (name, v) in [("customer", &mut customer), ("cloud", &mut cloud)] {
            let sessions = v.wait_bgp("both sessions Established", ESTABLISHED, |s| {
                s.len() == 2 && s.iter().all(|s| s.state == "Established")
            })?;
            for s in &sessions {
                anyhow::ensure!(
                    s.last_error.is_none() && s.established_transitions == 1,
                    "round {round}, {name} {}: a failed attempt before Established: {s:?}",
                    s.tunnel
                );
                collisions += s.connection_collisions;
            }
        }
    }
    println!("connection collisions in {ROUNDS} rounds: {collisions}");
    Ok(())
}
