//! The plain path: the gateways route the sites to each other over the underlay.

use crate::candidates::{Ready, Setup};
use crate::error::Result;
use crate::topology::{BenchTopology, Side, LINK_MTU};

/// Adds routes for the remote site via the other gateway's underlay address.
pub fn setup(topo: &BenchTopology) -> Result<Setup> {
    for side in Side::BOTH {
        topo.gw(side)?.ip(&[
            "route",
            "replace",
            side.remote_site(),
            "via",
            &side.peer_wan().to_string(),
        ])?;
    }
    Ok(Setup::Ready(Ready {
        gateway_pids: [None, None],
        cpu_note: Some("kernel forwarding: CPU not attributable to a process"),
        path_mtu: LINK_MTU,
        path_dev: "wan0".to_owned(),
        keep: Vec::new(),
    }))
}
