//! The vpngw daemon under test: a config for one side of the [`SiteToSite`] plan, the
//! process in that side's namespace, and its control commands (`vpngw status --json` ...).

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde::Deserialize;

use crate::charon::Side;
use crate::command::{describe, failure};
use crate::error::{HarnessError, Result};
use crate::netns::Netns;
use crate::process::ProcessGuard;
use crate::secret::Psk;
use crate::site_to_site::{plan, SiteToSite};
use crate::tools::vpngw_binary;
use crate::wait::{wait_for, wait_until, Poll};
use crate::workdir::WorkDir;

/// One tunnel of a vpngw config.
#[derive(Debug, Clone)]
pub struct VpngwTunnel {
    pub name: String,
    /// Underlay source address when it differs from the config's `local.address`.
    pub local_address: Option<IpAddr>,
    pub peer: IpAddr,
    pub psk: Psk,
    pub ike_proposals: String,
    pub esp_proposals: String,
    /// `"initiate"` or `"respond"`.
    pub start_action: String,
    /// (soft, hard) lifetimes in the config's duration syntax, e.g. `("20s", "30s")`.
    pub ike_lifetime: (String, String),
    pub child_lifetime: (String, String),
    /// Further `child_lifetime` keys (volume limits) as (key, TOML value), e.g.
    /// `("hard_packets", "2200")`; none by default.
    pub child_limits: Vec<(String, String)>,
    pub inner_address: String,
    pub inner_peer: Ipv4Addr,
    pub mtu: u16,
    /// `reauth_time` in the config's duration syntax; absent when `None`.
    pub reauth_time: Option<String>,
    /// Further tunnel keys as (key, TOML value), e.g. `("copy_ecn", "false")`; none by
    /// default.
    pub extra: Vec<(String, String)>,
}

/// The connection's `[connections.bgp]` section: eBGP over each tunnel's inner addresses.
#[derive(Debug, Clone)]
pub struct VpngwBgp {
    pub local_asn: u32,
    pub peer_asn: u32,
    /// Prefixes announced to the peer.
    pub advertise: Vec<String>,
    /// In the config's duration syntax, e.g. `"9s"`.
    pub hold_time: String,
    /// `standby_prepend`; `None` leaves vpngw's default.
    pub standby_prepend: Option<u8>,
}

/// A whole vpngw config: one connection with two tunnels, static routes and optional BGP.
#[derive(Debug, Clone)]
pub struct VpngwConfig {
    pub local_address: IpAddr,
    /// `[local] id` when it is not the address (behind a NAT: the NAT's public address).
    pub local_id: Option<String>,
    pub tun_name: String,
    pub connection: String,
    pub tunnels: Vec<VpngwTunnel>,
    /// (prefix, tunnel names in preference order).
    pub routes: Vec<(String, Vec<String>)>,
    pub bgp: Option<VpngwBgp>,
    /// `mode = "ecmp"` (flows spread over both UP tunnels) instead of active-standby.
    pub ecmp: bool,
}

impl VpngwConfig {
    /// Both plan tunnels as seen from `side`, with strongSwan's default proposals of the
    /// harness (IKE aes256-sha256-modp2048, ESP aes256gcm16-modp2048), the other site's
    /// prefix routed over tunnel1 then tunnel2. The cloud initiates, the customer responds.
    pub fn for_plan(side: Side, psks: [Psk; 2]) -> Self {
        let tunnels = plan::TUNNELS
            .iter()
            .zip(psks)
            .map(|(t, psk)| {
                let (local, peer, inner, inner_peer) = match side {
                    Side::Cloud => (
                        t.cloud_public,
                        t.customer_public,
                        t.cloud_inner,
                        t.customer_inner,
                    ),
                    Side::Customer => (
                        t.customer_public,
                        t.cloud_public,
                        t.customer_inner,
                        t.cloud_inner,
                    ),
                };
                VpngwTunnel {
                    name: t.name.to_owned(),
                    local_address: (side == Side::Cloud).then_some(local.into()),
                    peer: peer.into(),
                    psk,
                    ike_proposals: "aes256-sha256-modp2048".into(),
                    esp_proposals: "aes256gcm16-modp2048".into(),
                    start_action: if side == Side::Cloud {
                        "initiate"
                    } else {
                        "respond"
                    }
                    .into(),
                    ike_lifetime: ("1h".into(), "2h".into()),
                    child_lifetime: ("50m".into(), "1h".into()),
                    child_limits: Vec::new(),
                    inner_address: format!("{inner}/{}", t.inner_prefix_len),
                    inner_peer,
                    mtu: 1400,
                    reauth_time: None,
                    extra: Vec::new(),
                }
            })
            .collect();
        let (local_address, remote_prefix) = match side {
            Side::Cloud => (plan::TUNNELS[0].cloud_public, plan::IDC_PREFIX),
            Side::Customer => (plan::CUSTOMER_GW_WAN, plan::VPC_PREFIX),
        };
        VpngwConfig {
            local_address: local_address.into(),
            local_id: None,
            tun_name: "vpngw0".into(),
            connection: "lab".into(),
            tunnels,
            routes: vec![(
                remote_prefix.into(),
                vec![plan::TUNNELS[0].name.into(), plan::TUNNELS[1].name.into()],
            )],
            bgp: None,
            ecmp: false,
        }
    }

    /// Routes learned by eBGP instead of static ones: `side`'s ASN of the plan, the other
    /// side's as the peer, its own site prefix advertised, hold time `hold_time`.
    pub fn with_plan_bgp(mut self, side: Side, hold_time: &str) -> Self {
        let (local_asn, peer_asn, prefix) = match side {
            Side::Customer => (plan::CUSTOMER_ASN, plan::CLOUD_ASN, plan::IDC_PREFIX),
            Side::Cloud => (plan::CLOUD_ASN, plan::CUSTOMER_ASN, plan::VPC_PREFIX),
        };
        self.routes.clear();
        self.bgp = Some(VpngwBgp {
            local_asn,
            peer_asn,
            advertise: vec![prefix.into()],
            hold_time: hold_time.into(),
            standby_prepend: None,
        });
        self
    }

    /// [`VpngwConfig::for_plan`] for [`SiteToSite::build_behind_nat`]: the customer
    /// leaves from its private address, identifies itself by the NAT's public address
    /// (which the cloud knows it by) and initiates (the cloud cannot reach it through the
    /// NAT first); the cloud responds.
    pub fn for_plan_behind_nat(side: Side, psks: [Psk; 2]) -> Self {
        let mut cfg = Self::for_plan(side, psks);
        if side == Side::Customer {
            cfg.local_address = plan::CUSTOMER_GW_PRIVATE.into();
            cfg.local_id = Some(plan::CUSTOMER_GW_WAN.to_string());
        }
        let start = match side {
            Side::Customer => "initiate",
            Side::Cloud => "respond",
        };
        for t in &mut cfg.tunnels {
            t.start_action = start.into();
        }
        cfg
    }

    pub fn tunnel_mut(&mut self, name: &str) -> Option<&mut VpngwTunnel> {
        self.tunnels.iter_mut().find(|t| t.name == name)
    }

    /// The TOML text (PSKs inline: the file lives in a private work directory).
    pub fn render(&self) -> String {
        Self::render_many(std::slice::from_ref(self))
    }

    /// One config file holding the connections of all `configs`; `tun_name` and
    /// `local.address` come from the first.
    pub fn render_many(configs: &[VpngwConfig]) -> String {
        let q = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
        let Some(first) = configs.first() else {
            return String::new();
        };
        let mut out = format!(
            "tun_name = {}\n\n[local]\naddress = \"{}\"\n",
            q(&first.tun_name),
            first.local_address,
        );
        if let Some(id) = &first.local_id {
            out.push_str(&format!("id = {}\n", q(id)));
        }
        for c in configs {
            out.push_str(&c.render_connection());
        }
        out
    }

    fn render_connection(&self) -> String {
        let q = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
        let mode = if self.ecmp { "ecmp" } else { "active-standby" };
        let mut out = format!(
            "\n[[connections]]\nname = {}\nmode = \"{mode}\"\n",
            q(&self.connection)
        );
        for t in &self.tunnels {
            out.push_str("\n[[connections.tunnels]]\n");
            out.push_str(&format!("name = {}\n", q(&t.name)));
            if let Some(a) = t.local_address {
                out.push_str(&format!("local_address = \"{a}\"\n"));
            }
            out.push_str(&format!(
                "peer = \"{}\"\npsk = {}\nike_proposals = {}\nesp_proposals = {}\nstart_action = {}\n\
                 ike_lifetime = {{ soft = {}, hard = {} }}\nchild_lifetime = {{ soft = {}, hard = {}{} }}\n\
                 dpd = {{ interval = \"10s\", timeout = \"60s\", action = \"restart\" }}\n\
                 inner_address = {}\ninner_peer = \"{}\"\nmtu = {}\n",
                t.peer,
                q(&String::from_utf8_lossy(t.psk.as_bytes())),
                q(&t.ike_proposals),
                q(&t.esp_proposals),
                q(&t.start_action),
                q(&t.ike_lifetime.0),
                q(&t.ike_lifetime.1),
                q(&t.child_lifetime.0),
                q(&t.child_lifetime.1),
                t.child_limits
                    .iter()
                    .map(|(k, v)| format!(", {k} = {v}"))
                    .collect::<String>(),
                q(&t.inner_address),
                t.inner_peer,
                t.mtu
            ));
            if let Some(r) = &t.reauth_time {
                out.push_str(&format!("reauth_time = {}\n", q(r)));
            }
            for (k, v) in &t.extra {
                out.push_str(&format!("{k} = {v}\n"));
            }
        }
        for (prefix, via) in &self.routes {
            let via: Vec<String> = via.iter().map(|v| q(v)).collect();
            out.push_str(&format!(
                "\n[[connections.routes]]\nprefix = {}\nvia = [{}]\n",
                q(prefix),
                via.join(", ")
            ));
        }
        if let Some(b) = &self.bgp {
            let advertise: Vec<String> = b.advertise.iter().map(|p| q(p)).collect();
            out.push_str(&format!(
                "\n[connections.bgp]\nlocal_asn = {}\npeer_asn = {}\nadvertise = [{}]\nhold_time = {}\n",
                b.local_asn,
                b.peer_asn,
                advertise.join(", "),
                q(&b.hold_time)
            ));
            if let Some(n) = b.standby_prepend {
                out.push_str(&format!("standby_prepend = {n}\n"));
            }
        }
        out
    }
}

/// `vpngw status --json`.
#[derive(Debug, Clone, Deserialize)]
pub struct VpngwStatus {
    pub tunnels: Vec<VpngwTunnelStatus>,
    #[serde(default)]
    pub dataplane: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct VpngwTunnelStatus {
    pub connection: String,
    pub name: String,
    pub state: String,
    pub since: u64,
    pub reason: Option<String>,
    pub local: String,
    pub peer: String,
    /// The inner MTU in force (the configured one, or what the underlay carries).
    #[serde(default)]
    pub mtu: u16,
    pub ike: Option<VpngwIkeStatus>,
    pub child_sas: Vec<VpngwChildStatus>,
    /// Inbound SPIs of rekeyed CHILD SAs that still decrypt for a while.
    #[serde(default)]
    pub retiring_spis_in: Vec<String>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub packets_in: u64,
    pub packets_out: u64,
    pub drops: std::collections::BTreeMap<String, u64>,
    /// The IKE engine's counters by name, non-zero ones only.
    #[serde(default)]
    pub ike_counters: std::collections::BTreeMap<String, u64>,
    pub last_dpd: Option<u64>,
    /// `none`, `local`, `peer` or `both` once an IKE SA is up.
    #[serde(default)]
    pub nat: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct VpngwIkeStatus {
    pub spi_i: String,
    pub spi_r: String,
    pub proposal: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct VpngwChildStatus {
    pub spi_in: String,
    pub spi_out: String,
    pub proposal: String,
    pub established: u64,
    /// This SA pair's own counters.
    #[serde(default)]
    pub bytes_in: u64,
    #[serde(default)]
    pub bytes_out: u64,
    #[serde(default)]
    pub packets_in: u64,
    #[serde(default)]
    pub packets_out: u64,
}

impl VpngwChildStatus {
    pub fn spi_in(&self) -> u32 {
        u32::from_str_radix(&self.spi_in, 16).unwrap_or(0)
    }

    pub fn spi_out(&self) -> u32 {
        u32::from_str_radix(&self.spi_out, 16).unwrap_or(0)
    }
}

impl VpngwStatus {
    pub fn tunnel(&self, name: &str) -> Option<&VpngwTunnelStatus> {
        self.tunnels.iter().find(|t| t.name == name)
    }

    /// The packets (in, out) tunnel `name` carried, live and deleted SAs together (0
    /// for a tunnel the status does not list).
    pub fn packets(&self, name: &str) -> (u64, u64) {
        self.tunnel(name)
            .map_or((0, 0), |t| (t.packets_in, t.packets_out))
    }

    /// A dataplane counter by name (0 when the daemon did not report it).
    pub fn counter(&self, name: &str) -> u64 {
        self.dataplane.get(name).copied().unwrap_or(0)
    }

    /// One line per tunnel, for timeout messages.
    pub fn summary(&self) -> String {
        self.tunnels
            .iter()
            .map(|t| {
                format!(
                    "{} {} reason={:?} children={:?} in={} out={}",
                    t.name,
                    t.state,
                    t.reason,
                    t.child_sas
                        .iter()
                        .map(|c| (&c.spi_in, &c.spi_out))
                        .collect::<Vec<_>>(),
                    t.packets_in,
                    t.packets_out
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `vpngw routes --json`.
#[derive(Debug, Clone, Deserialize)]
pub struct VpngwRoutes {
    pub routes: Vec<VpngwRoute>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct VpngwRoute {
    pub prefix: String,
    pub source: String,
    pub via: Vec<String>,
    pub active: Vec<String>,
}

impl VpngwRoutes {
    /// The tunnels that carry `prefix` now by its route from `source` (`static`, `bgp`,
    /// `connected`): empty if there is none or no tunnel of it is UP.
    pub fn active(&self, prefix: &str, source: &str) -> Vec<String> {
        self.routes
            .iter()
            .filter(|r| r.prefix == prefix && r.source == source)
            .flat_map(|r| r.active.iter().cloned())
            .collect()
    }
}

/// One session of `vpngw bgp --json`.
#[derive(Debug, Clone, Deserialize)]
pub struct VpngwBgpSession {
    pub tunnel: String,
    pub state: String,
    pub peer_address: String,
    pub peer_asn: u32,
    #[serde(default)]
    pub uptime_secs: Option<u64>,
    pub prefixes_received: usize,
    pub prefixes_advertised: usize,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub established_transitions: u64,
    /// Second connections to or from the peer while one was in use (RFC 4271 6.8).
    #[serde(default)]
    pub connection_collisions: u64,
}

/// Whether `sessions` are `count` sessions, each Established with one route learned:
/// what the two-site plans expect of every tunnel's session.
pub fn sessions_learned_one_route(sessions: &[VpngwBgpSession], count: usize) -> bool {
    sessions.len() == count
        && sessions
            .iter()
            .all(|s| s.state == "Established" && s.prefixes_received == 1)
}

/// A running `vpngw run` in a namespace. Stopped (SIGTERM, then SIGKILL) on drop.
#[derive(Debug)]
pub struct Vpngw {
    // The process first: it must stop before its work directory goes.
    process: ProcessGuard,
    binary: PathBuf,
    socket: PathBuf,
    config_path: PathBuf,
    namespace: String,
    work_dir: PathBuf,
    /// The temporary directory removed on drop, when the harness made one.
    _dir: Option<WorkDir>,
}

/// Where and as what [`Vpngw::launch`] runs the daemon: `binary run --config
/// <dir>/<name>.toml --socket <dir>/<name>.sock`, output to `<dir>/<name>.log`.
#[derive(Debug, Clone)]
pub struct VpngwLaunch {
    pub binary: PathBuf,
    pub dir: PathBuf,
    pub name: String,
    /// Extra `vpngw run` arguments.
    pub extra: Vec<String>,
}

impl Vpngw {
    /// Writes `config`, starts the daemon in `ns` and waits for its control socket.
    pub fn start(ns: &Netns, config: &VpngwConfig) -> Result<Self> {
        Self::start_with_args(ns, config, &[])
    }

    /// The plan's customer and cloud gateways with the plan's configs (the cloud
    /// initiates), once each side has both tunnels UP: `(customer, cloud)`.
    pub fn start_plan_pair(
        s2s: &SiteToSite,
        psks: [Psk; 2],
        timeout: Duration,
    ) -> Result<(Vpngw, Vpngw)> {
        let names: Vec<&str> = plan::TUNNELS.iter().map(|t| t.name).collect();
        let mut customer = Vpngw::start(
            s2s.customer_gw(),
            &VpngwConfig::for_plan(Side::Customer, psks.clone()),
        )?;
        let mut cloud = Vpngw::start(s2s.cloud_gw(), &VpngwConfig::for_plan(Side::Cloud, psks))?;
        cloud.wait_up(&names, timeout)?;
        customer.wait_up(&names, timeout)?;
        Ok((customer, cloud))
    }

    /// [`Vpngw::start`] with extra `vpngw run` arguments, e.g. `["--log-format", "json"]`.
    pub fn start_with_args(ns: &Netns, config: &VpngwConfig, extra: &[&str]) -> Result<Self> {
        let dir = WorkDir::new(&format!("vpngw-{}", ns.name()))?;
        let launch = VpngwLaunch {
            binary: vpngw_binary()?,
            dir: dir.path().to_path_buf(),
            name: "vpngw".into(),
            extra: extra.iter().map(|a| (*a).to_owned()).collect(),
        };
        Self::spawn(ns, &config.render(), &launch, Some(dir))
    }

    /// [`Vpngw::start`] with the config text given (e.g. a rendered config with extra keys).
    pub fn start_text(ns: &Netns, config: &str) -> Result<Self> {
        let dir = WorkDir::new(&format!("vpngw-{}", ns.name()))?;
        let launch = VpngwLaunch {
            binary: vpngw_binary()?,
            dir: dir.path().to_path_buf(),
            name: "vpngw".into(),
            extra: Vec::new(),
        };
        Self::spawn(ns, config, &launch, Some(dir))
    }

    /// Writes `config` into `launch.dir` (which outlives the daemon) and starts it
    /// there, as `vpngw lab` does with its own binary.
    pub fn launch(ns: &Netns, config: &VpngwConfig, launch: &VpngwLaunch) -> Result<Self> {
        Self::spawn(ns, &config.render(), launch, None)
    }

    /// [`Vpngw::launch`] with the config text given (e.g. several connections).
    pub fn launch_text(ns: &Netns, config: &str, launch: &VpngwLaunch) -> Result<Self> {
        Self::spawn(ns, config, launch, None)
    }

    fn spawn(
        ns: &Netns,
        config: &str,
        launch: &VpngwLaunch,
        temp: Option<WorkDir>,
    ) -> Result<Self> {
        let file = |ext: &str| launch.dir.join(format!("{}.{ext}", launch.name));
        let config_path = file("toml");
        write_private(&config_path, config)?;
        let socket = file("sock");
        let log = file("log");
        let mut argv = vec![
            launch.binary.display().to_string(),
            "run".into(),
            "--config".into(),
            config_path.display().to_string(),
            "--socket".into(),
            socket.display().to_string(),
        ];
        argv.extend(launch.extra.iter().cloned());
        let mut process = ProcessGuard::spawn(
            format!("vpngw in {}", ns.name()),
            daemon_command(ns, &argv)?,
            &log,
        )?;
        let ready = wait_until("vpngw control socket", Duration::from_secs(10), || {
            socket.exists() || process.check_running().is_err()
        });
        let mut v = Vpngw {
            process,
            binary: launch.binary.clone(),
            socket,
            config_path,
            namespace: ns.name().to_owned(),
            work_dir: launch.dir.clone(),
            _dir: temp,
        };
        ready.map_err(|e| v.with_log(e))?;
        v.process.check_running().map_err(|e| v.with_log(e))?;
        Ok(v)
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    /// The control socket, for `vpngw status --socket ...`.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The file receiving the daemon's output.
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }

    /// The daemon's whole log (stdout and stderr) so far.
    pub fn log(&self) -> Result<String> {
        let path = self.process.log_path();
        std::fs::read_to_string(path)
            .map_err(|e| HarnessError::io(format!("reading {}", path.display()), e))
    }

    pub fn log_tail(&self, lines: usize) -> String {
        self.process.log_tail(lines)
    }

    /// Wraps `err` with the daemon's log tail.
    pub fn with_log(&self, err: HarnessError) -> HarnessError {
        HarnessError::WithLog {
            daemon: "vpngw".into(),
            log: self.process.log_path().to_path_buf(),
            tail: self.log_tail(40),
            source: Box::new(err),
        }
    }

    /// Runs `vpngw <args> --socket S` (the socket is a file: no namespace needed).
    pub fn cli(&self, args: &[&str]) -> Result<Output> {
        let mut cmd = Command::new(&self.binary);
        cmd.args(args).arg("--socket").arg(&self.socket);
        cmd.output().map_err(|source| HarnessError::Spawn {
            command: describe(&cmd),
            source,
        })
    }

    fn cli_ok(&self, args: &[&str]) -> Result<String> {
        let mut cmd = Command::new(&self.binary);
        cmd.args(args).arg("--socket").arg(&self.socket);
        let out = self.cli(args)?;
        if !out.status.success() {
            return Err(self.with_log(failure(&cmd, &out)));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn status(&self) -> Result<VpngwStatus> {
        let text = self.cli_ok(&["status", "--json"])?;
        serde_json::from_str(&text).map_err(|e| HarnessError::Parse {
            what: "vpngw status --json".into(),
            detail: format!("{e}: {text}"),
        })
    }

    pub fn routes(&self) -> Result<VpngwRoutes> {
        let text = self.cli_ok(&["routes", "--json"])?;
        serde_json::from_str(&text).map_err(|e| HarnessError::Parse {
            what: "vpngw routes --json".into(),
            detail: format!("{e}: {text}"),
        })
    }

    /// `vpngw bgp --json`.
    pub fn bgp(&self) -> Result<Vec<VpngwBgpSession>> {
        let text = self.cli_ok(&["bgp", "--json"])?;
        serde_json::from_str(&text).map_err(|e| HarnessError::Parse {
            what: "vpngw bgp --json".into(),
            detail: format!("{e}: {text}"),
        })
    }

    /// Waits until `pred` holds for the BGP sessions; returns them.
    pub fn wait_bgp(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&[VpngwBgpSession]) -> bool,
    ) -> Result<Vec<VpngwBgpSession>> {
        let r = wait_for(what, timeout, || {
            self.process.check_running()?;
            let s = self.bgp()?;
            Ok(if pred(&s) {
                Poll::Ready(s)
            } else {
                Poll::Pending(
                    s.iter()
                        .map(|s| format!("{} {}", s.tunnel, s.state))
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
            })
        });
        r.map_err(|e| self.with_log(e))
    }

    /// Checks that the daemon still runs (with its log tail if not).
    pub fn check_running(&mut self) -> Result<()> {
        let r = self.process.check_running();
        r.map_err(|e| self.with_log(e))
    }

    pub fn disable(&self, tunnel: &str) -> Result<()> {
        self.cli_ok(&["tunnel", "disable", tunnel]).map(drop)
    }

    pub fn enable(&self, tunnel: &str) -> Result<()> {
        self.cli_ok(&["tunnel", "enable", tunnel]).map(drop)
    }

    pub fn reload(&self) -> Result<()> {
        self.cli_ok(&["reload"]).map(drop)
    }

    /// Waits until `pred` holds for the status; returns that status.
    pub fn wait_status(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&VpngwStatus) -> bool,
    ) -> Result<VpngwStatus> {
        let r = wait_for(what, timeout, || {
            self.process.check_running()?;
            let s = self.status()?;
            Ok(if pred(&s) {
                Poll::Ready(s)
            } else {
                Poll::Pending(s.summary())
            })
        });
        r.map_err(|e| self.with_log(e))
    }

    /// Waits until every tunnel in `names` is UP.
    pub fn wait_up(&mut self, names: &[&str], timeout: Duration) -> Result<VpngwStatus> {
        let what = format!("vpngw tunnels {names:?} UP");
        self.wait_status(&what, timeout, |s| {
            names
                .iter()
                .all(|n| s.tunnel(n).is_some_and(|t| t.state == "UP"))
        })
    }

    /// CPU time (user + system) the daemon used so far.
    pub fn cpu_time(&self) -> Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .map_err(|e| HarnessError::io("read /proc/<pid>/stat", e))?;
        // Fields after the parenthesised command name; utime and stime are 14 and 15.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        let total = ticks(11) + ticks(12);
        Ok(Duration::from_millis(total * 1000 / hz))
    }

    /// The tunnels that carry `prefix` by BGP now (empty also when the daemon does not
    /// answer: for polling).
    pub fn bgp_active(&self, prefix: &str) -> Vec<String> {
        self.routes()
            .map(|r| r.active(prefix, "bgp"))
            .unwrap_or_default()
    }

    /// SIGTERM and wait; returns whether it exited with status 0.
    pub fn stop(&mut self) -> bool {
        self.process.stop().is_some_and(|s| s.success())
    }
}

/// Runs `vpngw run` on a config that must be refused: returns (exit success, stderr).
pub fn run_expecting_refusal(ns: &Netns, config_text: &str) -> Result<(bool, String)> {
    let binary = vpngw_binary()?;
    let dir = WorkDir::new("vpngw-bad")?;
    let path = dir.write("bad.toml", config_text)?;
    let socket = dir.join("vpngw.sock");
    let argv = [
        binary.display().to_string(),
        "run".into(),
        "--config".into(),
        path.display().to_string(),
        "--socket".into(),
        socket.display().to_string(),
    ];
    let mut cmd = daemon_command(ns, &argv)?;
    let out = cmd.output().map_err(|source| HarnessError::Spawn {
        command: describe(&cmd),
        source,
    })?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Writes a config (it may hold PSKs) readable by its owner only.
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| HarnessError::io(format!("write {}", path.display()), e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| HarnessError::io(format!("write {}", path.display()), e))
}

/// `argv` in `ns` without the harness's own `VPNGW_*` variables (e.g. `VPNGW_BIN`),
/// which the daemon would read as config overrides.
fn daemon_command(ns: &Netns, argv: &[String]) -> Result<Command> {
    let mut cmd = ns.command(argv)?;
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("VPNGW_") {
            cmd.env_remove(key);
        }
    }
    Ok(cmd)
}

/// The namespace of `side` in `s2s` (re-exported for tests).
pub fn side_ns(s2s: &SiteToSite, side: Side) -> &Netns {
    crate::endpoint::gateway(s2s, side)
}
