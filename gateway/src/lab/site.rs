//! `vpngw lab`: the customer site and the cloud VPC in four namespaces, two tunnels UP
//! (the cloud initiates), eBGP over both, ping both ways, a short iperf3 run, a summary.
//! With `--nat` the customer gateway sits behind a NAT router (a fifth namespace) and
//! initiates; the lab ends by rebooting the NAT and timing the recovery.

use std::path::Path;
use std::time::{Duration, Instant};

use netlab::nat::NAT_PORTS_AFTER_REBOOT;
use netlab::{
    iperf_client, ping, plan, require, CharonConfig, EndpointOptions, HarnessError, IperfOptions,
    IperfServer, PingOptions, Poll, Psk, Side, SiteToSite, StrongswanEndpoint, Tool, Vpngw,
    VpngwConfig, VpngwLaunch,
};

use super::customer_file::customer_config_text;
use super::progress::Progress;
use super::state::{LabState, StateFile};
use super::summary::{self, NatReport, Report};
use super::{make_work_dir, namespace_prefix, random_psk, require_root, LabError, Peer, SiteOpts};

/// What configs/customer.toml proposes: the cloud vpngw offers the same (the customer runs that file).
const IKE_PROPOSALS: &str = "aes128gcm16-prfsha256-modp2048";
const ESP_PROPOSALS: &str = "aes128gcm16-modp2048";
const BOTH: [&str; 2] = ["tunnel1", "tunnel2"];
const IPERF_PORT: u16 = 5201;
const HOSTS: [&str; 4] = ["idc_host", "customer_gw", "cloud_gw", "vpc_host"];
/// The NAT router's namespace with `--nat`.
const NAT_HOST: &str = "nat";

/// What the cloud side runs.
enum Cloud {
    Vpngw(Vpngw),
    Strongswan(StrongswanEndpoint),
}

impl Cloud {
    /// Its processes, for the state file.
    fn pids(&self) -> Vec<u32> {
        match self {
            Cloud::Vpngw(v) => vec![v.pid()],
            Cloud::Strongswan(e) => std::iter::once(e.charon.pid())
                .chain(e.bird.as_ref().map(|b| b.pid()))
                .collect(),
        }
    }
}

/// Everything the lab runs. Field order is drop (teardown) order: processes first, then
/// the namespaces, then the state file.
#[derive(Default)]
struct Lab {
    iperf: Option<IperfServer>,
    customer: Option<Vpngw>,
    cloud: Option<Cloud>,
    s2s: Option<SiteToSite>,
    state: Option<StateFile>,
}

pub fn run(opts: &SiteOpts) -> Result<(), LabError> {
    require_root()?;
    let work = make_work_dir(opts.common.work_dir.as_deref())?;
    let progress = Progress::new(work.clone());
    let peer = match opts.peer {
        Peer::Vpngw => "vpngw",
        Peer::Strongswan => "strongSwan + BIRD",
    };
    progress.say(&format!(
        "vpngw lab: cloud side {peer} (AS {}), customer side vpngw (AS {}); namespaces {}*; work dir {}",
        plan::CLOUD_ASN,
        plan::CUSTOMER_ASN,
        namespace_prefix(),
        work.display()
    ));
    let mut lab = Lab::default();
    match build_and_measure(&mut lab, opts, &work, &progress) {
        Ok(report) => {
            print!("{}", summary::render(&report));
            if opts.common.keep {
                keep(lab, opts, &work)
            } else {
                progress.say("tearing down");
                drop(lab);
                // Logs matter only when something failed; this run went well.
                let _ = std::fs::remove_dir_all(&work);
                progress.say("done: processes stopped, namespaces deleted");
                Ok(())
            }
        }
        Err(e) => {
            progress.say("tearing down after the failure (logs stay in the work dir)");
            drop(lab);
            progress.say("torn down");
            Err(e)
        }
    }
}

fn build_and_measure(
    lab: &mut Lab,
    opts: &SiteOpts,
    work: &Path,
    progress: &Progress,
) -> Result<Report, LabError> {
    let timeout = opts.common.timeout;
    progress.step("checking the tools", || {
        require(&[Tool::Ip, Tool::Nsenter, Tool::Iperf3, Tool::Ping, Tool::Ss])?;
        if opts.nat {
            require(&[Tool::Nft, Tool::Conntrack])?;
        }
        if opts.peer == Peer::Strongswan {
            require(&[
                Tool::Charon,
                Tool::Swanctl,
                Tool::Unshare,
                Tool::LibipsecPlugin,
                Tool::Bird,
                Tool::Birdc,
            ])?;
        }
        Ok(())
    })?;
    let prefix = namespace_prefix();
    // Recorded before anything exists, so a killed lab can always be removed.
    lab.state = Some(StateFile::create(
        &opts.common.state_dir,
        LabState {
            pid: std::process::id(),
            kept: false,
            namespaces: HOSTS
                .iter()
                .chain(opts.nat.then_some(&NAT_HOST))
                .map(|h| format!("{prefix}{h}"))
                .collect(),
            pids: Vec::new(),
            work_dir: work.to_path_buf(),
            attachment: None,
        },
    )?);
    let s2s = if opts.nat {
        progress.step(
            "building 5 namespaces (idc_host, customer_gw, nat, cloud_gw, vpc_host), the \
             underlay and the NAT (nftables: UDP from 100.64.0.2 leaves as 192.0.2.2:40000-40999)",
            || SiteToSite::build_named_behind_nat(&prefix),
        )?
    } else {
        progress.step(
            "building 4 namespaces (idc_host, customer_gw, cloud_gw, vpc_host) and the underlay",
            || SiteToSite::build_named(&prefix),
        )?
    };
    let s2s = lab.s2s.insert(s2s);

    let psks = [Psk::new(random_psk()?), Psk::new(random_psk()?)];
    let binary = std::env::current_exe().map_err(|e| LabError::io("locate vpngw", e))?;
    let launch = |name: &str| VpngwLaunch {
        binary: binary.clone(),
        dir: work.to_path_buf(),
        name: name.into(),
        extra: Vec::new(),
    };
    let customer_cfg = customer_config_text(
        &customer_plan(psks.clone(), opts.nat),
        opts.peer == Peer::Strongswan,
    )?;
    let customer_role = if opts.nat {
        "initiates from behind the NAT"
    } else {
        "responds"
    };
    let customer = progress.step(
        &format!("starting the customer vpngw (configs/customer.toml, {customer_role})"),
        || Vpngw::launch_text(s2s.customer_gw(), &customer_cfg, &launch("customer")),
    )?;
    let mut pids = vec![customer.pid()];
    let customer = lab.customer.insert(customer);
    let cloud = start_cloud(opts, s2s, psks, &launch("cloud"), progress)?;
    pids.extend(cloud.pids());
    let cloud = lab.cloud.insert(cloud);
    if let Some(state) = lab.state.as_mut() {
        state.state.pids = pids;
        state.save()?;
    }

    progress.step("waiting for both tunnels UP", || {
        match cloud {
            Cloud::Vpngw(v) => v.wait_up(&BOTH, timeout).map(drop)?,
            Cloud::Strongswan(e) => e.charon.wait_up(&BOTH, timeout).map(drop)?,
        }
        customer.wait_up(&BOTH, timeout).map(drop)
    })?;
    progress.step(
        "waiting for BGP: both sessions Established, routes learned",
        || {
            wait_bgp(customer, plan::VPC_PREFIX, timeout)?;
            match cloud {
                Cloud::Vpngw(v) => wait_bgp(v, plan::IDC_PREFIX, timeout),
                Cloud::Strongswan(e) => {
                    let bird = e.bird.as_mut().ok_or_else(|| {
                        HarnessError::Invalid("BIRD is not running on the cloud side".into())
                    })?;
                    for t in BOTH {
                        bird.wait_established(t, timeout)?;
                    }
                    bird.wait_route(plan::IDC_PREFIX, "tunnel1", timeout)
                        .map(drop)
                }
            }
        },
    )?;
    let opts_ping = PingOptions::default();
    let ping_vpc = progress.step("ping VPC host 10.20.0.10 -> IDC host 10.10.0.10", || {
        replied(ping(s2s.vpc_host(), plan::IDC_HOST.into(), &opts_ping)?)
    })?;
    let ping_idc = progress.step("ping IDC host 10.10.0.10 -> VPC host 10.20.0.10", || {
        replied(ping(s2s.idc_host(), plan::VPC_HOST.into(), &opts_ping)?)
    })?;
    let seconds = opts.iperf_seconds;
    let iperf = progress.step(&format!("iperf3 TCP, IDC -> VPC, {seconds} s"), || {
        let server = lab.iperf.insert(IperfServer::start(
            s2s.vpc_host(),
            plan::VPC_HOST.into(),
            IPERF_PORT,
            &work.join("iperf3-server.log"),
        )?);
        iperf_client(
            s2s.idc_host(),
            server.addr(),
            server.port(),
            &IperfOptions {
                duration: Duration::from_secs(seconds.into()),
                ..IperfOptions::default()
            },
        )
    })?;
    lab.iperf = None;
    let nat = if opts.nat {
        Some(reboot_nat(s2s, cloud, timeout, progress)?)
    } else {
        None
    };
    progress.step("collecting status, routes and BGP sessions", || {
        let (cloud_status, cloud_routes, cloud_bgp, cloud_bird) = match cloud {
            Cloud::Vpngw(v) => (Some(v.status()?), Some(v.routes()?), Some(v.bgp()?), None),
            Cloud::Strongswan(e) => {
                let bird = e.bird.as_ref().map(|b| b.protocols()).transpose()?;
                (None, None, None, bird)
            }
        };
        Ok(Report {
            cloud_peer: if cloud_status.is_some() {
                "vpngw"
            } else {
                "strongSwan + BIRD"
            },
            customer_status: customer.status()?,
            customer_routes: customer.routes()?,
            customer_bgp: customer.bgp()?,
            cloud_status,
            cloud_routes,
            cloud_bgp,
            cloud_bird,
            ping_vpc_to_idc: ping_vpc,
            ping_idc_to_vpc: ping_idc,
            iperf,
            iperf_seconds: seconds,
            nat,
        })
    })
}

/// Starts the cloud side `opts.peer` asks for: initiating, or only responding when the
/// customer is behind a NAT.
fn start_cloud(
    opts: &SiteOpts,
    s2s: &SiteToSite,
    psks: [Psk; 2],
    launch: &VpngwLaunch,
    progress: &Progress,
) -> Result<Cloud, LabError> {
    match opts.peer {
        Peer::Vpngw => {
            let cfg = cloud_config(psks, opts.cloud_ike_proposals.as_deref(), opts.nat);
            let role = if opts.nat {
                "answers the customer at the NAT's public address"
            } else {
                "initiates both tunnels"
            };
            progress
                .step(&format!("starting the cloud vpngw ({role})"), || {
                    Vpngw::launch(s2s.cloud_gw(), &cfg, launch)
                })
                .map(Cloud::Vpngw)
        }
        Peer::Strongswan => progress
            .step(
                "starting strongSwan (charon, kernel-libipsec) + BIRD as the cloud",
                || {
                    let endpoint = EndpointOptions {
                        bgp: true,
                        static_route: false,
                    };
                    let charon = if opts.nat {
                        CharonConfig::site_to_site_behind_nat(Side::Cloud, psks)
                    } else {
                        CharonConfig::site_to_site(Side::Cloud, psks)
                    };
                    StrongswanEndpoint::start_with(s2s, Side::Cloud, &charon, &endpoint)
                },
            )
            .map(Cloud::Strongswan),
    }
}

/// How the cloud side sees each tunnel's peer: (tunnel, address:port).
fn cloud_sees(cloud: &Cloud) -> netlab::Result<Vec<(String, String)>> {
    match cloud {
        Cloud::Vpngw(v) => Ok(v
            .status()?
            .tunnels
            .into_iter()
            .map(|t| (t.name, t.peer))
            .collect()),
        Cloud::Strongswan(e) => {
            let sas = e.charon.list_sas()?;
            Ok(BOTH
                .iter()
                .map(|name| {
                    let peer = netlab::charon::find_up(&sas, name)
                        .and_then(|sa| sa.remote())
                        .map_or_else(|| "-".to_owned(), |a| a.to_string());
                    ((*name).to_owned(), peer)
                })
                .collect())
        }
    }
}

/// `--nat`: the NAT reboots (mappings flushed, new ports); times how soon IDC -> VPC
/// pings are answered again, then checks VPC -> IDC.
fn reboot_nat(
    s2s: &SiteToSite,
    cloud: &Cloud,
    timeout: Duration,
    progress: &Progress,
) -> Result<NatReport, LabError> {
    let (first, last) = (NAT_PORTS_AFTER_REBOOT.start(), NAT_PORTS_AFTER_REBOOT.end());
    progress.step(
        &format!(
            "NAT reboot (mappings flushed, ports {first}-{last} from now on): waiting for \
             IDC -> VPC traffic to flow again"
        ),
        || {
            let before = cloud_sees(cloud)?;
            s2s.reboot_nat(&NAT_PORTS_AFTER_REBOOT)?;
            let start = Instant::now();
            // One echo request a try, each given a quarter second: the time to recover
            // is known to that resolution.
            let one = PingOptions {
                count: 1,
                wait: Duration::from_millis(250),
                ..PingOptions::default()
            };
            netlab::wait_until(
                "IDC -> VPC replies through the new mapping",
                timeout,
                || ping(s2s.idc_host(), plan::VPC_HOST.into(), &one).is_ok_and(|p| p.all_replied()),
            )?;
            let recovered_in = start.elapsed();
            replied(ping(
                s2s.vpc_host(),
                plan::IDC_HOST.into(),
                &PingOptions::default(),
            )?)?;
            Ok(NatReport {
                before,
                after: cloud_sees(cloud)?,
                recovered_in,
            })
        },
    )
}

/// Both BGP sessions Established and `prefix` learned (source bgp, in use).
fn wait_bgp(v: &mut Vpngw, prefix: &str, timeout: Duration) -> netlab::Result<()> {
    v.wait_bgp("both BGP sessions Established", timeout, |s| {
        s.len() == 2 && s.iter().all(|s| s.state == "Established")
    })?;
    netlab::wait_for(&format!("{prefix} learned by BGP"), timeout, || {
        v.check_running()?;
        let routes = v.routes()?;
        let learned = !routes.active(prefix, "bgp").is_empty();
        Ok(if learned {
            Poll::Ready(())
        } else {
            Poll::Pending(format!("{:?}", routes.routes))
        })
    })
    .map_err(|e| v.with_log(e))
}

fn replied(stats: netlab::PingStats) -> netlab::Result<netlab::PingStats> {
    if stats.all_replied() {
        Ok(stats)
    } else {
        Err(HarnessError::Invalid(format!(
            "{} of {} echo requests answered",
            stats.received, stats.transmitted
        )))
    }
}

/// `side`'s vpngw config of the plan, with the customer behind the NAT router or not.
fn plan_config(side: Side, psks: [Psk; 2], nat: bool) -> VpngwConfig {
    if nat {
        VpngwConfig::for_plan_behind_nat(side, psks)
    } else {
        VpngwConfig::for_plan(side, psks)
    }
}

/// The lab's topology for the customer gateway (addresses, tunnel names, PSKs, the IDC
/// prefix, who initiates), written over configs/customer.toml by `customer_config_text`.
fn customer_plan(psks: [Psk; 2], nat: bool) -> VpngwConfig {
    plan_config(Side::Customer, psks, nat).with_plan_bgp(Side::Customer, "30s")
}

/// The cloud border gateway: one local address per tunnel, AS 65000, initiating unless
/// the customer is behind a NAT.
fn cloud_config(psks: [Psk; 2], ike: Option<&str>, nat: bool) -> VpngwConfig {
    let mut cfg = plan_config(Side::Cloud, psks, nat).with_plan_bgp(Side::Cloud, "30s");
    set_proposals(&mut cfg, ike.unwrap_or(IKE_PROPOSALS));
    cfg
}

fn set_proposals(cfg: &mut VpngwConfig, ike: &str) {
    for t in &mut cfg.tunnels {
        t.ike_proposals = ike.into();
        t.esp_proposals = ESP_PROPOSALS.into();
    }
}

/// Leaves everything running and says how to explore it and take it down.
fn keep(mut lab: Lab, opts: &SiteOpts, work: &Path) -> Result<(), LabError> {
    lab.iperf = None;
    let state = lab.state.take();
    let state_path = state.as_ref().map(|s| s.path().to_path_buf());
    let namespaces = lab
        .s2s
        .as_ref()
        .map(|s| s.namespace_names())
        .unwrap_or_default();
    let has_cloud_vpngw = matches!(lab.cloud, Some(Cloud::Vpngw(_)));
    // Processes and namespaces stay: nothing of the lab is dropped.
    std::mem::forget(lab);
    if let Some(state) = state {
        state.keep()?;
    }
    let exe = argv0();
    let sock = |n: &str| work.join(format!("{n}.sock"));
    let ns = |i: usize| namespaces.get(i).cloned().unwrap_or_default();
    let mut out = String::new();
    out.push_str("\nThe lab keeps running. Explore it:\n");
    for (what, name) in [("customer", "customer"), ("cloud", "cloud")] {
        if name == "cloud" && !has_cloud_vpngw {
            continue;
        }
        for cmd in ["status", "routes", "bgp"] {
            out.push_str(&format!(
                "  {exe} {cmd} --socket {}    # the {what} gateway\n",
                sock(name).display()
            ));
        }
    }
    out.push_str(&format!(
        "  ip netns exec {} ping 10.20.0.10            # IDC host -> VPC host\n",
        ns(0)
    ));
    out.push_str(&format!(
        "  ip netns exec {} iperf3 -s -D && ip netns exec {} iperf3 -c 10.20.0.10\n",
        ns(3),
        ns(0)
    ));
    if let Some(nat) = namespaces.get(4) {
        out.push_str(&format!(
            "  ip netns exec {nat} conntrack -F                # the NAT router forgets its mappings\n"
        ));
    }
    out.push_str(&format!("  logs and configs: {}\n", work.display()));
    if let Some(p) = state_path {
        out.push_str(&format!("  state file: {}\n", p.display()));
    }
    out.push_str(&format!(
        "Tear it down with:\n  {exe} lab down{}\n",
        state_dir_arg(&opts.common.state_dir)
    ));
    print!("{out}");
    Ok(())
}

/// How this binary was invoked, for commands to copy.
pub fn argv0() -> String {
    std::env::args().next().unwrap_or_else(|| "vpngw".into())
}

/// ` --state-dir D` unless D is the default.
pub fn state_dir_arg(dir: &Path) -> String {
    if dir == Path::new(super::args::DEFAULT_STATE_DIR) {
        String::new()
    } else {
        format!(" --state-dir {}", dir.display())
    }
}
