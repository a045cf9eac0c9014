#![cfg(target_os = "linux")]
//! The BGP speaker against a real BIRD 2 in network namespaces (needs root).
//!
//! Two namespaces joined by a veth: the cloud side with BIRD (AS 65000, announcing the
//! VPC prefix) on 169.254.10.1/30 and our speaker (AS 65010, advertising the IDC
//! prefix) on 169.254.10.2/30, i.e. the inner addresses of tunnel 1.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{ensure, Context};
use bgp::{Ipv4Prefix, SessionConfig};
use e2e::{
    enter_on_this_thread, plan, skip_unless_root, BgpPeer, Bird, BirdConfig, Netns, TopologyBuilder,
};
use gateway::bgp_speaker::{BgpRouteChange, BgpSessionStatus, BgpSpeaker, SessionSpec};
use gateway::routing::TunnelId;
use tokio::runtime::Runtime;
use tokio::sync::mpsc::UnboundedReceiver;

const TIMEOUT: Duration = Duration::from_secs(30);
const TUNNEL: TunnelId = TunnelId(0);

/// A tokio runtime whose worker threads live in `ns`: they are spawned by a thread that
/// entered it, and every socket the speaker's tasks open is created on them.
fn runtime_in(ns: &Netns) -> anyhow::Result<Runtime> {
    let name = ns.name().to_owned();
    std::thread::spawn(move || -> anyhow::Result<Runtime> {
        enter_on_this_thread(&name)?;
        Ok(tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("runtime thread panicked"))?
}

/// Runs `f` on a thread inside `ns` (for a raw socket from the cloud's side).
fn in_ns<T: Send + 'static>(
    ns: &Netns,
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let name = ns.name().to_owned();
    std::thread::spawn(move || -> anyhow::Result<T> {
        enter_on_this_thread(&name)?;
        f()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("namespace thread panicked"))?
}

struct Lab {
    // Field order is drop order: runtime (closes our sockets), BIRD, then namespaces.
    rt: Runtime,
    bird: Bird,
    topo: e2e::Topology,
    cloud_addr: Ipv4Addr,
    gw_addr: Ipv4Addr,
}

fn lab(cloud_prefixes: &[&str]) -> anyhow::Result<Lab> {
    let t = &plan::TUNNELS[0];
    let (cloud_addr, gw_addr) = (t.cloud_inner, t.customer_inner);
    let topo = TopologyBuilder::new()
        .host("bgp_cloud")
        .host("bgp_gw")
        .link(
            ("bgp_cloud", "tun1", &format!("{cloud_addr}/30")),
            ("bgp_gw", "tun1", &format!("{gw_addr}/30")),
        )
        .build()?;
    let mut cfg = BirdConfig::new(plan::CLOUD_GW_VPC, plan::CLOUD_ASN).peer(BgpPeer::new(
        "customer",
        cloud_addr.into(),
        gw_addr.into(),
        plan::CUSTOMER_ASN,
    ));
    for p in cloud_prefixes {
        cfg = cfg.announce(p.parse()?);
    }
    let bird = Bird::start(topo.ns("bgp_cloud")?, &cfg)?;
    let rt = runtime_in(topo.ns("bgp_gw")?)?;
    Ok(Lab {
        rt,
        bird,
        topo,
        cloud_addr,
        gw_addr,
    })
}

impl Lab {
    fn spec(&self, max_prefixes: u32) -> anyhow::Result<SessionSpec> {
        let mut session = SessionConfig::new(
            plan::CUSTOMER_ASN,
            self.gw_addr,
            self.gw_addr,
            self.cloud_addr,
        );
        session.hold_time = 9;
        session.connect_retry_time = Duration::from_secs(1);
        session.idle_hold_time = Duration::from_secs(1);
        session.max_prefixes = Some(max_prefixes);
        session.local_prefixes = vec![plan::IDC_PREFIX.parse::<Ipv4Prefix>()?];
        Ok(SessionSpec {
            tunnel: TUNNEL,
            name: "tun1".into(),
            session,
            port: gateway::bgp_speaker::BGP_PORT,
            multipath_group: None,
            rank: 0,
            generation: 0,
        })
    }

    /// The next batch of route changes, which must be one change (BIRD sends one prefix).
    fn next_change(
        &self,
        changes: &mut UnboundedReceiver<Vec<BgpRouteChange>>,
    ) -> anyhow::Result<BgpRouteChange> {
        let mut batch = self
            .rt
            .block_on(async { tokio::time::timeout(TIMEOUT, changes.recv()).await })
            .context("no route change in time")?
            .context("route change channel closed")?;
        anyhow::ensure!(batch.len() == 1, "one change expected: {batch:?}");
        batch.pop().context("empty batch")
    }

    fn bird_protocol_info(&self) -> anyhow::Result<(bool, String)> {
        let p = self.bird.protocols()?;
        let c = p
            .iter()
            .find(|p| p.name == "customer")
            .context("no protocol customer")?;
        Ok((c.is_established(), c.info.clone()))
    }
}

fn session(speaker: &BgpSpeaker) -> anyhow::Result<BgpSessionStatus> {
    speaker
        .status()
        .into_iter()
        .find(|s| s.tunnel == "tun1")
        .context("no status for tun1")
}

fn wait_state(
    speaker: &BgpSpeaker,
    what: &str,
    ok: impl Fn(&BgpSessionStatus) -> bool,
) -> anyhow::Result<BgpSessionStatus> {
    e2e::wait_for(what, TIMEOUT, || {
        let s = session(speaker).map_err(|e| e2e::HarnessError::Invalid(e.to_string()))?;
        Ok(if ok(&s) {
            e2e::Poll::Ready(s)
        } else {
            e2e::Poll::Pending(format!("{s:?}"))
        })
    })
    .map_err(Into::into)
}

#[test]
fn speaker_exchanges_routes_with_bird_and_follows_its_session() -> anyhow::Result<()> {
    if skip_unless_root("speaker_exchanges_routes_with_bird_and_follows_its_session") {
        return Ok(());
    }
    let mut lab = lab(&[plan::VPC_PREFIX])?;
    let vpc: ipnet::IpNet = plan::VPC_PREFIX.parse()?;
    let (speaker, mut changes) = lab.rt.block_on(async { BgpSpeaker::new() })?;
    speaker.start(lab.spec(100)?)?;

    lab.bird.wait_established("customer", TIMEOUT)?;
    // Our channel delivers BIRD's prefix, learned over tunnel 1 with AS path 65000.
    let learned = lab.next_change(&mut changes)?;
    ensure!(
        learned
            == BgpRouteChange::Announce {
                prefix: vpc,
                tunnel: TUNNEL,
                next_hop: lab.cloud_addr,
                as_path: vec![plan::CLOUD_ASN],
            },
        "{learned:?}"
    );
    ensure!(speaker.best_routes().len() == 1);
    // BIRD has our prefix, with our AS as the whole path and our inner address as hop.
    let r = lab.bird.wait_route(plan::IDC_PREFIX, "customer", TIMEOUT)?;
    ensure!(r.as_path == [plan::CUSTOMER_ASN], "{r:?}");
    ensure!(r.via == Some(IpAddr::V4(lab.gw_addr)), "{r:?}");
    ensure!(r.attribute("BGP.origin") == Some("IGP"), "{r:?}");

    let st = wait_state(&speaker, "stats after the UPDATEs", |s| {
        s.prefixes_received == 1 && s.prefixes_advertised == 1
    })?;
    ensure!(st.state == "Established" && st.running, "{st:?}");
    ensure!(st.uptime_secs.is_some() && st.peer_asn == 65000 && st.local_asn == 65010);
    let json = serde_json::to_string(&st)?;
    ensure!(json.contains("\"state\":\"Established\""), "{json}");

    // A second connection while the session is Established is a collision: closed at
    // once with Cease/Connection Collision Resolution (RFC 4271 6.8), and the session
    // carries on.
    let gw = lab.gw_addr;
    let second_got = in_ns(lab.topo.ns("bgp_cloud")?, move || {
        let sock = TcpStream::connect_timeout(&SocketAddr::from((gw, 179)), TIMEOUT)?;
        sock.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut got = Vec::new();
        std::io::Read::read_to_end(&mut &sock, &mut got)?;
        Ok(got)
    })?;
    // A 21-byte NOTIFICATION (type 3), Cease (6) / 7, then EOF.
    ensure!(
        second_got.len() == 21 && second_got.get(18..) == Some(&[3, 6, 7][..]),
        "the second connection got {second_got:02x?}"
    );
    ensure!(lab.bird_protocol_info()?.0, "the first session suffered");
    let st = session(&speaker)?;
    ensure!(
        st.connection_collisions == 1 && st.state == "Established",
        "{st:?}"
    );

    // BIRD disables the protocol: its Cease closes the session and the route goes.
    lab.bird.set_enabled("customer", false)?;
    let gone = lab.next_change(&mut changes)?;
    ensure!(
        gone == BgpRouteChange::Withdraw {
            prefix: vpc,
            tunnel: TUNNEL
        },
        "{gone:?}"
    );
    ensure!(speaker.best_routes().is_empty());
    let st = wait_state(&speaker, "session down after BIRD's Cease", |s| {
        s.state != "Established"
    })?;
    ensure!(
        st.last_error
            .as_deref()
            .is_some_and(|e| e.contains("NOTIFICATION")),
        "{st:?}"
    );

    // Enabled again: our session restarts by itself and relearns the route.
    lab.bird.set_enabled("customer", true)?;
    lab.bird.wait_established("customer", TIMEOUT)?;
    let again = lab.next_change(&mut changes)?;
    ensure!(matches!(again, BgpRouteChange::Announce { prefix, .. } if prefix == vpc));

    // stop(): routes withdrawn on our side, and BIRD sees the session down.
    ensure!(lab.rt.block_on(speaker.stop(TUNNEL)));
    let gone = lab.next_change(&mut changes)?;
    ensure!(matches!(gone, BgpRouteChange::Withdraw { prefix, .. } if prefix == vpc));
    e2e::wait_until("BIRD sees the session down", TIMEOUT, || {
        lab.bird_protocol_info().is_ok_and(|(up, _)| !up)
    })?;
    let (_, info) = lab.bird_protocol_info()?;
    ensure!(
        info.contains("Administrative shutdown"),
        "BIRD says: {info}"
    );
    let st = session(&speaker)?;
    ensure!(!st.running && st.state == "Idle", "{st:?}");
    ensure!(!lab.rt.block_on(speaker.stop(TUNNEL)), "stopped twice");
    Ok(())
}

#[test]
fn too_many_prefixes_end_the_session() -> anyhow::Result<()> {
    if skip_unless_root("too_many_prefixes_end_the_session") {
        return Ok(());
    }
    let lab = lab(&["10.20.0.0/24", "10.21.0.0/24", "10.22.0.0/24"])?;
    let (speaker, _changes) = lab.rt.block_on(async { BgpSpeaker::new() })?;
    speaker.start(lab.spec(2)?)?;
    let st = wait_state(&speaker, "max-prefix hit", |s| s.last_error.is_some())?;
    ensure!(
        st.last_error.as_deref() == Some("peer sent more than 2 prefixes"),
        "{st:?}"
    );
    ensure!(
        speaker.best_routes().is_empty(),
        "{:?}",
        speaker.best_routes()
    );
    // BIRD was told why (Cease, maximum number of prefixes reached).
    e2e::wait_until("BIRD sees the Cease", TIMEOUT, || {
        lab.bird_protocol_info()
            .is_ok_and(|(_, info)| info.contains("Maximum number of prefixes"))
    })
    .map_err(|e| anyhow::anyhow!("{e}; BIRD: {:?}", lab.bird_protocol_info()))?;
    // The daemon's synchronous stop: the task finishes on its own.
    ensure!(speaker.stop_detached(TUNNEL, true));
    wait_state(&speaker, "session task ended", |s| {
        !s.running && s.state == "Idle"
    })?;
    Ok(())
}
