//! `vpngw lab cloud`: only the cloud endpoint, for a real customer device. A namespace
//! for the cloud gateway (plus a VPC host behind it), joined by a veth to the root
//! namespace or to `--attach-netns`; N connections of two tunnels each.
//!
//! Addresses (also printed):
//!
//! | what                                   | address                          |
//! |----------------------------------------|----------------------------------|
//! | customer end of the veth (`vlab<pid>`) | 198.18.0.2/24                    |
//! | cloud end of the veth (`wan0`)         | 198.18.0.1/24                    |
//! | cloud endpoints (connection i, 1-based)| 203.0.113.(2i-1), 203.0.113.(2i) |
//! | route on the customer side             | 203.0.113.0/24 via 198.18.0.1    |
//! | tunnel inner /30s, cloud `.1`          | conn1 169.254.10/11.0, conn2 .12/.13 ... |
//! | VPC (advertised by BGP), VPC host      | 10.20.0.0/24, 10.20.0.10         |

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use netlab::{
    require, Netns, Psk, Tool, Topology, TopologyBuilder, Vpngw, VpngwBgp, VpngwConfig,
    VpngwLaunch, VpngwTunnel,
};

use super::console::{self, CloudPlan, ConnectionPlan, TunnelSettings};
use super::down::detach;
use super::progress::Progress;
use super::site::{argv0, state_dir_arg};
use super::state::{Attachment, LabState, StateFile};
use super::{make_work_dir, namespace_prefix, random_psk, require_root, CloudOpts, LabError};

pub const CLOUD_ASN: u32 = 65000;
pub const UNDERLAY_CLOUD: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const UNDERLAY_CUSTOMER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
pub const CLOUD_PUBLIC_PREFIX: &str = "203.0.113.0/24";
pub const VPC_PREFIX: &str = "10.20.0.0/24";
const VPC_GW: &str = "10.20.0.1/24";
const VPC_HOST: &str = "10.20.0.10/24";
const IKE_LIFETIME: (&str, &str) = ("21h", "24h");
const CHILD_LIFETIME: (&str, &str) = ("50m", "1h");
const MTU: u16 = 1400;
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// Cloud endpoint address of tunnel `j` (0, 1) of connection `i` (0-based).
fn cloud_public(i: u8, j: u8) -> Ipv4Addr {
    Ipv4Addr::new(203, 0, 113, 2 * i + j + 1)
}

/// (cloud, customer) inner addresses of tunnel `j` of connection `i`, in a /30.
fn inner(i: u8, j: u8) -> (Ipv4Addr, Ipv4Addr) {
    let third = 10 + 2 * i + j;
    (
        Ipv4Addr::new(169, 254, third, 1),
        Ipv4Addr::new(169, 254, third, 2),
    )
}

/// (cloud `.1`, customer `.2`) of an IPv4 /30 given as `a.b.c.d/30`.
fn slash30(cidr: &str) -> Result<(Ipv4Addr, Ipv4Addr), LabError> {
    let bad = || {
        LabError::Invalid(format!(
            "--inner {cidr}: give an IPv4 /30, e.g. 169.254.20.0/30"
        ))
    };
    let (addr, len) = cidr.split_once('/').ok_or_else(bad)?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
    if len != "30" {
        return Err(bad());
    }
    let net = u32::from(addr) & !3;
    Ok((Ipv4Addr::from(net + 1), Ipv4Addr::from(net + 2)))
}

/// Field order is teardown order: the daemon, the customer-side veth end and route,
/// the namespaces, the state file.
#[derive(Default)]
struct CloudLab {
    vpngw: Option<Vpngw>,
    attachment: Option<AttachGuard>,
    topo: Option<Topology>,
    state: Option<StateFile>,
}

struct AttachGuard(Attachment);

impl Drop for AttachGuard {
    fn drop(&mut self) {
        detach(&self.0);
    }
}

pub fn run(opts: &CloudOpts) -> Result<(), LabError> {
    require_root()?;
    let plan = plan(opts)?;
    let work = make_work_dir(opts.common.work_dir.as_deref())?;
    let progress = Progress::new(work.clone());
    progress.say(&format!(
        "vpngw lab cloud: {} connection(s), cloud AS {CLOUD_ASN}; namespaces {}*; work dir {}",
        opts.connections,
        namespace_prefix(),
        work.display()
    ));
    let mut lab = CloudLab::default();
    let result = build(&mut lab, opts, &plan, &work, &progress).and_then(|()| {
        let text = console::render(&plan, opts.format);
        if let Some(path) = &opts.output {
            write_private(path, &text)?;
        }
        print!("{text}");
        if let Some(path) = &opts.output {
            progress.say(&format!("customer settings written to {}", path.display()));
        }
        Ok(())
    });
    if let Err(e) = result {
        progress.say("tearing down after the failure (logs stay in the work dir)");
        drop(lab);
        progress.say("torn down");
        return Err(e);
    }
    if opts.common.keep {
        let state = lab.state.take();
        std::mem::forget(lab);
        if let Some(state) = state {
            state.keep()?;
        }
        let exe = argv0();
        println!(
            "\nThe cloud endpoint keeps running.\n  {exe} status --socket {}\n  logs and config: {}\nTear it down with:\n  {exe} lab down{}",
            work.join("cloud.sock").display(),
            work.display(),
            state_dir_arg(&opts.common.state_dir)
        );
        return Ok(());
    }
    progress.say("running; tunnel state changes follow. Ctrl-C tears the lab down");
    let outcome = watch(&mut lab, &progress);
    progress.say("tearing down");
    drop(lab);
    let _ = std::fs::remove_dir_all(&work);
    progress.say("done: processes stopped, namespaces and routes removed");
    outcome
}

/// The whole plan from the options: addresses, PSKs, proposals.
fn plan(opts: &CloudOpts) -> Result<CloudPlan, LabError> {
    let n = opts.connections;
    let tunnels = usize::from(n) * 2;
    if !opts.psks.is_empty() && opts.psks.len() != tunnels {
        return Err(LabError::Invalid(format!(
            "--psk given {} times: give none (random keys) or one per tunnel ({tunnels})",
            opts.psks.len()
        )));
    }
    if !opts.inners.is_empty() && opts.inners.len() != tunnels {
        return Err(LabError::Invalid(format!(
            "--inner given {} times: give none (the default plan) or one /30 per tunnel ({tunnels})",
            opts.inners.len()
        )));
    }
    if let Some(bad) = opts.psks.iter().find(|p| !(8..=128).contains(&p.len())) {
        return Err(LabError::Invalid(format!(
            "a --psk is {} bytes: PSKs are 8 to 128 bytes",
            bad.len()
        )));
    }
    if let Some(ns) = &opts.attach_netns {
        if !Path::new("/run/netns").join(ns).exists() {
            return Err(LabError::Invalid(format!(
                "--attach-netns {ns}: no such network namespace (ip netns list)"
            )));
        }
    }
    let mut connections = Vec::new();
    for i in 0..n {
        let mut pair = Vec::new();
        for j in 0..2u8 {
            let k = usize::from(i) * 2 + usize::from(j);
            let psk = match opts.psks.get(k) {
                Some(p) => p.clone(),
                None => random_psk()?,
            };
            let (cloud_inner, customer_inner) = match opts.inners.get(k) {
                Some(cidr) => slash30(cidr)?,
                None => inner(i, j),
            };
            pair.push(TunnelSettings {
                name: format!("conn{}-tun{}", i + 1, j + 1),
                cloud_public: cloud_public(i, j),
                customer_public: UNDERLAY_CUSTOMER,
                psk,
                cloud_inner,
                customer_inner,
            });
        }
        connections.push(ConnectionPlan {
            name: format!("conn{}", i + 1),
            tunnels: pair,
        });
    }
    Ok(CloudPlan {
        connections,
        ike_proposals: opts.ike_proposals.clone(),
        esp_proposals: opts.esp_proposals.clone(),
        ike_lifetime: IKE_LIFETIME,
        child_lifetime: CHILD_LIFETIME,
        dpd: ("10s", "60s", "restart"),
        cloud_initiates: !opts.no_initiate,
        cloud_asn: CLOUD_ASN,
        customer_asn: opts.customer_asn,
        vpc_prefix: VPC_PREFIX.into(),
        mtu: MTU,
        attach: opts.attach_netns.clone(),
        ifname: veth_name(),
        underlay_cloud: UNDERLAY_CLOUD,
        underlay_customer: UNDERLAY_CUSTOMER,
        cloud_public_prefix: CLOUD_PUBLIC_PREFIX.into(),
    })
}

/// The customer-side veth end: `vlab<pid>`, at most 15 bytes.
fn veth_name() -> String {
    let mut name = format!("vlab{}", std::process::id());
    name.truncate(15);
    name
}

fn build(
    lab: &mut CloudLab,
    opts: &CloudOpts,
    plan: &CloudPlan,
    work: &Path,
    progress: &Progress,
) -> Result<(), LabError> {
    progress.step("checking the tools", || require(&[Tool::Ip, Tool::Nsenter]))?;
    let prefix = namespace_prefix();
    let cloud_ns = format!("{prefix}cloud_gw");
    let attachment = Attachment {
        netns: opts.attach_netns.clone(),
        ifname: plan.ifname.clone(),
        route: CLOUD_PUBLIC_PREFIX.into(),
    };
    lab.state = Some(StateFile::create(
        &opts.common.state_dir,
        LabState {
            pid: std::process::id(),
            kept: false,
            namespaces: vec![cloud_ns.clone(), format!("{prefix}vpc_host")],
            pids: Vec::new(),
            work_dir: work.to_path_buf(),
            attachment: Some(attachment.clone()),
        },
    )?);
    let topo = progress.step("building the cloud gateway and VPC host namespaces", || {
        let mut b = TopologyBuilder::new()
            .namespace_prefix(&prefix)
            .router("cloud_gw")
            .host("vpc_host")
            .link(("cloud_gw", "vpc0", VPC_GW), ("vpc_host", "eth0", VPC_HOST))
            .route("vpc_host", "default", "10.20.0.1");
        for c in &plan.connections {
            for t in &c.tunnels {
                b = b.address("cloud_gw", "lo", &format!("{}/32", t.cloud_public));
            }
        }
        b.build()
    })?;
    let topo = lab.topo.insert(topo);
    let target = opts.attach_netns.as_deref().unwrap_or("the root namespace");
    progress.step(
        &format!(
            "joining it to {target}: {} {UNDERLAY_CUSTOMER}/24 <-> wan0 {UNDERLAY_CLOUD}/24",
            plan.ifname
        ),
        || {
            lab.attachment = Some(AttachGuard(attachment.clone()));
            let side = |args: &[&str]| -> netlab::Result<String> {
                let mut argv: Vec<String> = Vec::new();
                if let Some(ns) = &opts.attach_netns {
                    argv.extend([
                        Tool::Nsenter.path().into(),
                        format!("--net=/run/netns/{ns}"),
                        "--".into(),
                    ]);
                }
                argv.push(Tool::Ip.path().into());
                argv.extend(args.iter().map(|a| (*a).to_owned()));
                netlab::run_argv(&argv)
            };
            let ifname = plan.ifname.as_str();
            side(&[
                "link", "add", ifname, "type", "veth", "peer", "name", "wan0", "netns", &cloud_ns,
            ])?;
            side(&[
                "addr",
                "add",
                &format!("{UNDERLAY_CUSTOMER}/24"),
                "dev",
                ifname,
            ])?;
            side(&["link", "set", ifname, "up"])?;
            let via = UNDERLAY_CLOUD.to_string();
            side(&[
                "route",
                "add",
                CLOUD_PUBLIC_PREFIX,
                "via",
                &via,
                "dev",
                ifname,
            ])?;
            let gw = topo.ns("cloud_gw")?;
            gw.ip(&[
                "addr",
                "add",
                &format!("{UNDERLAY_CLOUD}/24"),
                "dev",
                "wan0",
            ])?;
            gw.ip(&["link", "set", "wan0", "up"])?;
            Ok(())
        },
    )?;
    let config = VpngwConfig::render_many(&vpngw_configs(plan, opts));
    let binary = std::env::current_exe().map_err(|e| LabError::io("locate vpngw", e))?;
    let launch = VpngwLaunch {
        binary,
        dir: work.to_path_buf(),
        name: "cloud".into(),
        extra: Vec::new(),
    };
    let gw: &Netns = topo
        .ns("cloud_gw")
        .map_err(|e| LabError::Invalid(e.to_string()))?;
    let initiates = if plan.cloud_initiates {
        "initiates"
    } else {
        "waits for the customer"
    };
    let vpngw = progress.step(&format!("starting the cloud vpngw ({initiates})"), || {
        Vpngw::launch_text(gw, &config, &launch)
    })?;
    if let Some(state) = lab.state.as_mut() {
        state.state.pids = vec![vpngw.pid()];
        state.save()?;
    }
    lab.vpngw = Some(vpngw);
    Ok(())
}

/// One vpngw connection per plan connection, all in one daemon.
fn vpngw_configs(plan: &CloudPlan, opts: &CloudOpts) -> Vec<VpngwConfig> {
    let first = plan.connections[0].tunnels[0].cloud_public;
    plan.connections
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let tunnels: Vec<VpngwTunnel> = c
                .tunnels
                .iter()
                .map(|t| VpngwTunnel {
                    name: t.name.clone(),
                    local_address: Some(t.cloud_public.into()),
                    peer: t.customer_public.into(),
                    psk: Psk::new(t.psk.as_bytes()),
                    ike_proposals: plan.ike_proposals.clone(),
                    esp_proposals: plan.esp_proposals.clone(),
                    start_action: if plan.cloud_initiates {
                        "initiate"
                    } else {
                        "respond"
                    }
                    .into(),
                    ike_lifetime: (plan.ike_lifetime.0.into(), plan.ike_lifetime.1.into()),
                    child_lifetime: (plan.child_lifetime.0.into(), plan.child_lifetime.1.into()),
                    child_limits: Vec::new(),
                    inner_address: format!("{}/30", t.cloud_inner),
                    inner_peer: t.customer_inner,
                    mtu: plan.mtu,
                    reauth_time: None,
                    extra: Vec::new(),
                })
                .collect();
            let names: Vec<String> = tunnels.iter().map(|t| t.name.clone()).collect();
            let routes = match (&opts.customer_prefix, i) {
                (Some(p), 0) => vec![(p.clone(), names)],
                _ => Vec::new(),
            };
            VpngwConfig {
                local_address: first.into(),
                local_id: None,
                tun_name: "vpngw0".into(),
                connection: c.name.clone(),
                tunnels,
                routes,
                bgp: Some(VpngwBgp {
                    local_asn: plan.cloud_asn,
                    peer_asn: plan.customer_asn,
                    advertise: vec![plan.vpc_prefix.clone()],
                    hold_time: "30s".into(),
                    // Like a cloud's border gateway: no preference of its own, it
                    // sends back over the tunnel the customer's AS paths prefer.
                    standby_prepend: Some(0),
                }),
                ecmp: false,
            }
        })
        .collect()
}

/// Prints tunnel state changes until a stop is requested or the daemon dies.
fn watch(lab: &mut CloudLab, progress: &Progress) -> Result<(), LabError> {
    let Some(vpngw) = lab.vpngw.as_mut() else {
        return Ok(());
    };
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    while !netlab::stop::requested() {
        let status = vpngw.check_running().and_then(|()| vpngw.status());
        if status.is_err() && netlab::stop::requested() {
            // A terminal's Ctrl-C reaches the daemon too; it is already shutting down.
            break;
        }
        let status = status.map_err(|source| LabError::Step {
            step: "watching the cloud vpngw".into(),
            after: Duration::ZERO,
            logs: vpngw.log_path().to_path_buf(),
            source: Box::new(source),
        })?;
        for t in &status.tunnels {
            let line = match t.child_sas.last() {
                Some(c) if t.state == "UP" => format!(
                    "UP, ESP {} SPIs in {} out {}",
                    c.proposal, c.spi_in, c.spi_out
                ),
                _ => format!(
                    "{}{}",
                    t.state,
                    t.reason
                        .as_deref()
                        .map_or_else(String::new, |r| format!(" ({r})"))
                ),
            };
            if seen.get(&t.name) != Some(&line) {
                progress.say(&format!("{} -> {}: {line}", t.name, t.peer));
                seen.insert(t.name.clone(), line);
            }
        }
        std::thread::sleep(STATUS_EVERY);
    }
    Ok(())
}

/// Writes the customer settings (with PSKs) readable by the owner only.
fn write_private(path: &Path, text: &str) -> Result<(), LabError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| LabError::io(format!("write {}", path.display()), e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| LabError::io(format!("write {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_plan_has_no_overlaps() {
        let mut public = std::collections::HashSet::new();
        let mut inners = std::collections::HashSet::new();
        for i in 0..32 {
            for j in 0..2 {
                assert!(public.insert(cloud_public(i, j)));
                let (c, k) = inner(i, j);
                assert_eq!(c.octets()[..3], k.octets()[..3], "same /30");
                assert!(inners.insert(c.octets()[2]));
            }
        }
        assert_eq!(cloud_public(0, 0), Ipv4Addr::new(203, 0, 113, 1));
        assert_eq!(cloud_public(31, 1), Ipv4Addr::new(203, 0, 113, 64));
        assert_eq!(inner(0, 1).0, Ipv4Addr::new(169, 254, 11, 1));
        assert!(veth_name().len() <= 15);
        assert_eq!(
            slash30("169.254.20.4/30").unwrap(),
            (
                Ipv4Addr::new(169, 254, 20, 5),
                Ipv4Addr::new(169, 254, 20, 6)
            )
        );
        for bad in ["169.254.20.0/29", "169.254.20.0", "x/30", "::1/30"] {
            assert!(slash30(bad).is_err(), "{bad}");
        }
    }
}
