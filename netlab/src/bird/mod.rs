//! BIRD 2 as a BGP test peer, one instance per namespace.

mod config;
mod parse;

pub use config::{BgpPeer, BirdConfig, NextHop, StaticRoute};
pub use parse::{parse_protocols, parse_routes, ProtocolStatus, Route};

use std::path::PathBuf;
use std::time::Duration;

use crate::command;
use crate::error::{HarnessError, Result};
use crate::netns::Netns;
use crate::process::{tail_of_file, ProcessGuard};
use crate::tools::{require, Tool};
use crate::wait::{wait_for, Poll};
use crate::workdir::WorkDir;

/// A running `bird` (foreground, so the PID we hold is the daemon's). Stopped on drop.
#[derive(Debug)]
pub struct Bird {
    // Field order is drop order: stop the daemon before removing its directory.
    process: ProcessGuard,
    dir: WorkDir,
    namespace: String,
}

impl Bird {
    /// Writes bird.conf, starts BIRD in `ns` and waits for its control socket.
    pub fn start(ns: &Netns, config: &BirdConfig) -> Result<Self> {
        require(&[Tool::Bird, Tool::Birdc])?;
        let dir = WorkDir::new("bird")?;
        let conf = dir.write("bird.conf", &config.render(&dir.join("bird.log"))?)?;
        let socket = dir.join("bird.ctl");
        let pid_file = dir.join("bird.pid");
        let mut argv = vec![Tool::Bird.path().into(), "-f".into(), "-c".into()];
        argv.extend([
            conf.into_os_string(),
            "-s".into(),
            socket.clone().into_os_string(),
        ]);
        argv.extend(["-P".into(), pid_file.into_os_string()]);
        let process = ns.spawn("bird", &argv, &dir.join("bird.stdout"))?;
        let mut bird = Bird {
            process,
            dir,
            namespace: ns.name().to_owned(),
        };
        let started = wait_for("BIRD control socket", Duration::from_secs(10), || {
            bird.process.check_running()?;
            if !socket.exists() {
                return Ok(Poll::Pending("no socket yet".into()));
            }
            Ok(match bird.birdc(&["show", "status"]) {
                Ok(_) => Poll::Ready(()),
                Err(e) => Poll::Pending(e.to_string()),
            })
        });
        started.map_err(|e| bird.with_log(e))?;
        Ok(bird)
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("bird.log")
    }

    /// Adds BIRD's log tail to an error.
    pub fn with_log(&self, err: HarnessError) -> HarnessError {
        HarnessError::WithLog {
            daemon: "bird".into(),
            log: self.log_path(),
            tail: format!(
                "{}\n--- bird stdout/stderr ---\n{}",
                tail_of_file(&self.log_path(), 30),
                self.process.log_tail(10)
            ),
            source: Box::new(err),
        }
    }

    /// Runs `birdc -s <socket> args...` and returns its output.
    pub fn birdc(&self, args: &[&str]) -> Result<String> {
        let socket = self.dir.join("bird.ctl");
        let mut cmd = command::command(&[Tool::Birdc.path()])?;
        cmd.arg("-s").arg(&socket).args(args);
        command::run(&mut cmd)
    }

    /// `show protocols`, parsed.
    pub fn protocols(&self) -> Result<Vec<ProtocolStatus>> {
        parse_protocols(&self.birdc(&["show", "protocols"])?)
    }

    /// `show route all`, parsed.
    pub fn routes(&self) -> Result<Vec<Route>> {
        parse_routes(&self.birdc(&["show", "route", "all"])?)
    }

    /// Disables or enables a protocol (e.g. to drop a BGP session).
    /// Rewrites the config file from `config` and makes BIRD load it (`birdc configure`;
    /// changed filters re-export the routes without restarting sessions).
    pub fn reconfigure(&self, config: &BirdConfig) -> Result<()> {
        self.dir
            .write("bird.conf", &config.render(&self.log_path())?)?;
        let out = self.birdc(&["configure"])?;
        if out.contains("Reconfigured") || out.contains("Reconfiguration in progress") {
            Ok(())
        } else {
            Err(HarnessError::Invalid(format!("birdc configure: {out}")))
        }
    }

    pub fn set_enabled(&self, protocol: &str, enabled: bool) -> Result<()> {
        let verb = if enabled { "enable" } else { "disable" };
        self.birdc(&[verb, protocol]).map(drop)
    }

    /// Waits until the BGP protocol `peer` is Established.
    pub fn wait_established(&mut self, peer: &str, timeout: Duration) -> Result<()> {
        let what = format!("BGP {peer} established in {}", self.namespace);
        let result = wait_for(&what, timeout, || {
            self.process.check_running()?;
            let protocols = self.protocols()?;
            match protocols.iter().find(|p| p.name == peer) {
                Some(p) if p.is_established() => Ok(Poll::Ready(())),
                Some(p) => Ok(Poll::Pending(format!("{} {} {}", p.name, p.state, p.info))),
                None => Err(HarnessError::Invalid(format!(
                    "no protocol {peer:?} in BIRD"
                ))),
            }
        });
        result.map_err(|e| self.with_log(e))
    }

    /// Waits until a route for `prefix` from `protocol` is in the table, and returns it.
    pub fn wait_route(&mut self, prefix: &str, protocol: &str, timeout: Duration) -> Result<Route> {
        let what = format!("route {prefix} from {protocol} in {}", self.namespace);
        let result = wait_for(&what, timeout, || {
            self.process.check_running()?;
            let routes = self.routes()?;
            let found = routes
                .iter()
                .find(|r| r.prefix.to_string() == prefix && r.protocol == protocol);
            Ok(match found {
                Some(r) => Poll::Ready(r.clone()),
                None => Poll::Pending(
                    routes
                        .iter()
                        .map(|r| format!("{} from {}", r.prefix, r.protocol))
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
            })
        });
        result.map_err(|e| self.with_log(e))
    }

    /// Stops BIRD now instead of at drop.
    pub fn stop(&mut self) {
        self.process.stop();
    }
}
