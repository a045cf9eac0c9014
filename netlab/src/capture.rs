//! Packet captures with tcpdump inside a namespace, to show what is on the wire
//! (e.g. that the underlay carries only ESP-in-UDP, never the inner plaintext).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::command;
use crate::error::{HarnessError, Result};
use crate::netns::Netns;
use crate::process::{tail_of_file, ProcessGuard};
use crate::tools::{require, Tool};
use crate::wait::{wait_for, Poll};

/// A running capture on one interface into a pcap file. Stopped on drop.
#[derive(Debug)]
pub struct PacketCapture {
    process: ProcessGuard,
    pcap: PathBuf,
}

impl PacketCapture {
    /// Starts `tcpdump -i iface -w pcap [filter]` in `ns` and waits until it listens.
    /// `pcap` should be in a [`WorkDir`](crate::WorkDir); the log goes beside it.
    pub fn start(ns: &Netns, iface: &str, filter: &str, pcap: PathBuf) -> Result<Self> {
        require(&[Tool::Tcpdump])?;
        let log = pcap.with_extension("log");
        let mut argv: Vec<String> = vec![
            Tool::Tcpdump.path().into(),
            "-i".into(),
            iface.into(),
            "-n".into(),
            "-U".into(),
            // Without it packets wait in the ring buffer for a block timeout and are lost
            // when the capture is stopped right after the traffic.
            "--immediate-mode".into(),
            // Stay root: the work directory is root-only.
            "-Z".into(),
            "root".into(),
            "-w".into(),
            pcap.to_string_lossy().into_owned(),
        ];
        argv.extend(filter.split_whitespace().map(str::to_owned));
        let mut process = ns.spawn("tcpdump", &argv, &log)?;
        wait_for("tcpdump to listen", Duration::from_secs(10), || {
            process.check_running()?;
            Ok(if tail_of_file(&log, 5).contains("listening on") {
                Poll::Ready(())
            } else {
                Poll::Pending(tail_of_file(&log, 5))
            })
        })?;
        Ok(PacketCapture { process, pcap })
    }

    /// Waits until at least `n` captured packets match `filter`, reading the file while
    /// tcpdump still writes it (`-U` writes whole packets). Use it before [`Self::stop`]
    /// when the traffic is known, so a slow tcpdump cannot lose the tail.
    pub fn wait_count(&mut self, filter: &str, n: usize, timeout: Duration) -> Result<usize> {
        let live = Capture {
            pcap: self.pcap.clone(),
        };
        let what = format!("{n} packets matching {filter:?} in {}", self.pcap.display());
        wait_for(&what, timeout, || {
            self.process.check_running()?;
            // A record being written makes tcpdump -r fail on the truncated tail: retry.
            Ok(match live.count(filter) {
                Ok(seen) if seen >= n => Poll::Ready(seen),
                Ok(seen) => Poll::Pending(format!("{seen} so far")),
                Err(e) => Poll::Pending(e.to_string()),
            })
        })
    }

    /// Stops the capture and returns the finished file. Waits first until the file has
    /// stopped growing for 100 ms (at most 2 s), so packets just sent are in it.
    pub fn stop(mut self) -> Result<Capture> {
        let size = || std::fs::metadata(&self.pcap).map(|m| m.len()).unwrap_or(0);
        let mut last = (size(), Instant::now());
        let _ = wait_for("pcap to settle", Duration::from_secs(2), || {
            let now = size();
            if now != last.0 {
                last = (now, Instant::now());
            }
            Ok(if last.1.elapsed() >= Duration::from_millis(100) {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("{now} bytes"))
            })
        });
        self.process.stop();
        Ok(Capture {
            pcap: self.pcap.clone(),
        })
    }
}

/// A finished pcap file.
#[derive(Debug, Clone)]
pub struct Capture {
    pcap: PathBuf,
}

impl Capture {
    pub fn path(&self) -> &PathBuf {
        &self.pcap
    }

    /// One-line summaries of the packets matching a tcpdump `filter` ("" for all).
    pub fn packets(&self, filter: &str) -> Result<Vec<String>> {
        let mut cmd = command::command(&[Tool::Tcpdump.path(), "-n", "-r"])?;
        cmd.arg(&self.pcap);
        cmd.args(filter.split_whitespace());
        let out = command::output(&mut cmd)?;
        if !out.status.success() {
            return Err(HarnessError::Invalid(format!(
                "reading {}: {}",
                self.pcap.display(),
                command::failure(&cmd, &out)
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect())
    }

    /// How many packets match `filter`.
    pub fn count(&self, filter: &str) -> Result<usize> {
        self.packets(filter).map(|p| p.len())
    }
}
