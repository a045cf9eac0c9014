//! strongSwan's charon (with kernel-libipsec) as a test peer, one instance per namespace.

mod config;
mod sas;
mod vici_tree;

pub use config::{
    strongswan_conf, swanctl_conf, CharonConfig, ExtraChild, Side, StartAction, TunnelConfig,
};
pub use sas::{find_up, parse_list_sas, summary, ChildSa, ChildSaState, IkeSa, IkeSaState};
pub use vici_tree::{parse as parse_pretty, Node, Section};

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::command;
use crate::error::{HarnessError, Result};
use crate::netns::Netns;
use crate::process::{tail_of_file, ProcessGuard};
use crate::tools::{require, Tool};
use crate::wait::{wait_for, Poll};
use crate::workdir::WorkDir;

/// How long swanctl commands that wait for the peer may take.
const SWANCTL_TIMEOUT_SECS: &str = "15";

/// A running charon. Configs, vici socket, logs and its private `/run` live in a work
/// directory; charon runs in its own mount namespace so its fixed pid file
/// (`/var/run/charon.pid`) does not collide with other instances. Stopped on drop.
#[derive(Debug)]
pub struct Charon {
    // Field order is drop order: stop the daemon before removing its directory.
    process: ProcessGuard,
    dir: WorkDir,
    uri: String,
    namespace: String,
}

impl Charon {
    /// Writes the configuration, starts charon in `ns`, waits for its vici socket and
    /// loads the connections (so a `Start` tunnel begins negotiating at once).
    pub fn start(ns: &Netns, config: &CharonConfig) -> Result<Self> {
        Self::start_with_swanctl(ns, &swanctl_conf(config)?, config.make_before_break)
    }

    /// [`Charon::start`] with a swanctl.conf written elsewhere (e.g. the snippet
    /// `vpngw lab cloud --format swanctl` prints), under the harness's strongswan.conf
    /// (`make_before_break`: charon reauthenticates make-before-break).
    pub fn start_with_swanctl(ns: &Netns, swanctl: &str, make_before_break: bool) -> Result<Self> {
        require(&[
            Tool::Charon,
            Tool::Swanctl,
            Tool::Unshare,
            Tool::LibipsecPlugin,
        ])?;
        let dir = WorkDir::new("charon")?;
        let run_dir = dir.join("run");
        std::fs::create_dir(&run_dir)
            .map_err(|e| HarnessError::io(format!("create {}", run_dir.display()), e))?;
        let strongswan_path = dir.write(
            "strongswan.conf",
            &strongswan_conf(dir.path(), make_before_break),
        )?;
        dir.write("swanctl.conf", swanctl)?;

        let charon_bin = Tool::Charon.path();
        let mut cmd = ns.command(&[
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            // $0 and $1 are arguments, not spliced into the script.
            "mount --bind \"$0\" /run && exec \"$1\"",
        ])?;
        cmd.arg(&run_dir).arg(charon_bin);
        cmd.env("STRONGSWAN_CONF", &strongswan_path);
        let process = ProcessGuard::spawn(
            format!("charon in {}", ns.name()),
            cmd,
            &dir.join("charon.stdout"),
        )?;
        let socket = dir.join("charon.vici");
        let mut charon = Charon {
            process,
            uri: format!("unix://{}", socket.display()),
            dir,
            namespace: ns.name().to_owned(),
        };
        charon.wait_for_vici(&socket)?;
        charon.load_all()?;
        Ok(charon)
    }

    fn wait_for_vici(&mut self, socket: &Path) -> Result<()> {
        wait_for("charon's vici socket", Duration::from_secs(15), || {
            self.process.check_running()?;
            if !socket.exists() {
                return Ok(Poll::Pending(format!("{} missing", socket.display())));
            }
            let mut cmd = self.swanctl_command(&["--stats"])?;
            let out = command::output(&mut cmd)?;
            Ok(if out.status.success() {
                Poll::Ready(())
            } else {
                Poll::Pending(String::from_utf8_lossy(&out.stderr).into_owned())
            })
        })
        .map_err(|e| self.with_log(e))
    }

    /// The vici URI, e.g. for running swanctl by hand.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The namespace charon runs in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// charon's own log (IKE at level 2): put it in failure messages.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("charon.log")
    }

    /// The last `lines` lines of charon's log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail_of_file(&self.log_path(), lines)
    }

    /// Adds charon's log tail to an error, so a failed test explains itself.
    pub fn with_log(&self, err: HarnessError) -> HarnessError {
        HarnessError::WithLog {
            daemon: "charon".into(),
            log: self.log_path(),
            tail: self.log_tail(40),
            source: Box::new(err),
        }
    }

    fn swanctl_command(&self, args: &[&str]) -> Result<std::process::Command> {
        // swanctl wants the command option first, then --uri.
        let mut cmd = command::command(&[Tool::Swanctl.path()])?;
        cmd.args(args).arg("--uri").arg(&self.uri);
        Ok(cmd)
    }

    /// Runs `swanctl <args> --uri <this instance>` and returns its stdout.
    pub fn swanctl(&self, args: &[&str]) -> Result<String> {
        self.swanctl_bare(args).map_err(|e| self.with_log(e))
    }

    /// [`Self::swanctl`] without the log tail, for use inside waits that add it once.
    fn swanctl_bare(&self, args: &[&str]) -> Result<String> {
        command::run(&mut self.swanctl_command(args)?)
    }

    fn list_sas_bare(&self) -> Result<Vec<IkeSa>> {
        parse_list_sas(&self.swanctl_bare(&["--list-sas", "--pretty"])?)
    }

    /// (Re)loads connections and secrets from the instance's swanctl.conf.
    pub fn load_all(&self) -> Result<()> {
        let file = self.dir.join("swanctl.conf");
        let file = file.to_string_lossy();
        self.swanctl(&["--load-all", "--file", &file]).map(drop)
    }

    /// Replaces the configuration and reloads it (changed proposals, PSK...). Connections
    /// no longer present are unloaded; existing SAs are kept until terminated.
    pub fn reconfigure(&self, config: &CharonConfig) -> Result<()> {
        self.dir.write("swanctl.conf", &swanctl_conf(config)?)?;
        self.load_all()
    }

    /// Initiates the CHILD SA `child` (and its IKE SA) and waits for the result.
    pub fn initiate(&self, child: &str) -> Result<()> {
        self.swanctl(&[
            "--initiate",
            "--child",
            child,
            "--timeout",
            SWANCTL_TIMEOUT_SECS,
        ])
        .map(drop)
    }

    /// Deletes the IKE SA of connection `ike` (with its CHILD SAs).
    pub fn terminate_ike(&self, ike: &str) -> Result<()> {
        self.swanctl(&[
            "--terminate",
            "--ike",
            ike,
            "--timeout",
            SWANCTL_TIMEOUT_SECS,
        ])
        .map(drop)
    }

    /// Deletes the CHILD SA(s) of config `child`.
    pub fn terminate_child(&self, child: &str) -> Result<()> {
        self.swanctl(&[
            "--terminate",
            "--child",
            child,
            "--timeout",
            SWANCTL_TIMEOUT_SECS,
        ])
        .map(drop)
    }

    /// Rekeys the CHILD SA(s) of config `child`.
    pub fn rekey_child(&self, child: &str) -> Result<()> {
        self.swanctl(&["--rekey", "--child", child]).map(drop)
    }

    /// Rekeys the IKE SA of connection `ike`.
    pub fn rekey_ike(&self, ike: &str) -> Result<()> {
        self.swanctl(&["--rekey", "--ike", ike]).map(drop)
    }

    /// The current IKE and CHILD SAs.
    pub fn list_sas(&self) -> Result<Vec<IkeSa>> {
        self.list_sas_bare().map_err(|e| self.with_log(e))
    }

    /// Waits until every tunnel in `names` is UP (IKE SA ESTABLISHED with an INSTALLED
    /// CHILD SA of the same name) and returns the SAs seen then.
    pub fn wait_up(&mut self, names: &[&str], timeout: Duration) -> Result<Vec<IkeSa>> {
        let what = format!("tunnels {names:?} up in {}", self.namespace);
        let result = wait_for(&what, timeout, || {
            self.process.check_running()?;
            let sas = self.list_sas_bare()?;
            let all_up = names.iter().all(|name| {
                find_up(&sas, name)
                    .is_some_and(|sa| sa.installed_children().any(|c| c.name == *name))
            });
            Ok(if all_up {
                Poll::Ready(sas)
            } else {
                Poll::Pending(summary(&sas))
            })
        });
        result.map_err(|e| self.with_log(e))
    }

    /// Waits until tunnel `name` has no UP IKE SA.
    pub fn wait_down(&mut self, name: &str, timeout: Duration) -> Result<()> {
        let what = format!("tunnel {name} down in {}", self.namespace);
        let result = wait_for(&what, timeout, || {
            self.process.check_running()?;
            let sas = self.list_sas_bare()?;
            Ok(if find_up(&sas, name).is_none() {
                Poll::Ready(())
            } else {
                Poll::Pending(summary(&sas))
            })
        });
        result.map_err(|e| self.with_log(e))
    }

    /// Stops charon now (SIGTERM, then SIGKILL) instead of at drop.
    pub fn stop(&mut self) {
        self.process.stop();
    }
}
