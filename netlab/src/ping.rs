//! `ping` from inside a namespace, with its summary parsed.

use std::net::IpAddr;
use std::time::Duration;

use crate::command::failure;
use crate::error::{HarnessError, Result};
use crate::netns::Netns;

/// How to ping.
#[derive(Debug, Clone)]
pub struct PingOptions {
    pub count: u32,
    /// Interval between echo requests (below 200 ms needs root, which the tests have).
    pub interval: Duration,
    /// How long to wait for the last reply.
    pub wait: Duration,
    /// Source address (`-I`), e.g. to send from a host address of a gateway.
    pub source: Option<IpAddr>,
    /// ICMP payload size (`-s`).
    pub size: Option<u32>,
    /// The IP header's TOS / traffic class byte (`-Q`): DSCP and ECN bits.
    pub tos: Option<u8>,
}

impl Default for PingOptions {
    fn default() -> Self {
        PingOptions {
            count: 3,
            interval: Duration::from_millis(200),
            wait: Duration::from_secs(2),
            source: None,
            size: None,
            tos: None,
        }
    }
}

/// The summary ping prints at the end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PingStats {
    pub transmitted: u32,
    pub received: u32,
    /// ICMP errors received instead of replies (e.g. host unreachable).
    pub errors: u32,
    /// Round-trip times in milliseconds, when at least one reply came back.
    pub rtt: Option<Rtt>,
}

/// Round-trip time statistics in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rtt {
    pub min_ms: f64,
    pub avg_ms: f64,
    pub max_ms: f64,
    pub mdev_ms: f64,
}

impl PingStats {
    /// Percentage of requests without a reply.
    pub fn loss_percent(&self) -> f64 {
        if self.transmitted == 0 {
            return 100.0;
        }
        100.0 * f64::from(self.transmitted.saturating_sub(self.received))
            / f64::from(self.transmitted)
    }

    /// Every request answered.
    pub fn all_replied(&self) -> bool {
        self.transmitted > 0 && self.received == self.transmitted
    }

    /// Parses the summary of `ping -q` (iputils) output.
    pub fn parse(output: &str) -> Result<Self> {
        let what = "ping summary";
        let line = output
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .ok_or_else(|| HarnessError::parse(what, format!("no summary line in {output:?}")))?;
        let mut stats = PingStats {
            transmitted: 0,
            received: 0,
            errors: 0,
            rtt: None,
        };
        // "4 packets transmitted, 4 received, +1 errors, 0% packet loss, time 611ms"
        for field in line.split(',').map(str::trim) {
            let mut words = field.split_whitespace();
            let (Some(number), Some(label)) = (words.next(), words.next()) else {
                continue;
            };
            let parse = |n: &str| {
                n.trim_start_matches('+')
                    .parse::<u32>()
                    .map_err(|_| HarnessError::parse(what, format!("bad count in {line:?}")))
            };
            match label {
                "packets" => stats.transmitted = parse(number)?,
                "received" => stats.received = parse(number)?,
                "errors" => stats.errors = parse(number)?,
                _ => {}
            }
        }
        if let Some(rtt_line) = output.lines().find(|l| l.starts_with("rtt ")) {
            // "rtt min/avg/max/mdev = 0.049/0.123/0.336/0.122 ms"
            let values = rtt_line
                .split('=')
                .nth(1)
                .and_then(|v| v.split("ms").next())
                .map(str::trim)
                .ok_or_else(|| HarnessError::parse(what, format!("bad rtt line {rtt_line:?}")))?;
            let nums: Vec<f64> = values
                .split('/')
                .map(|n| n.parse::<f64>())
                .collect::<std::result::Result<_, _>>()
                .map_err(|_| HarnessError::parse(what, format!("bad rtt line {rtt_line:?}")))?;
            let [min_ms, avg_ms, max_ms, mdev_ms] = nums[..] else {
                return Err(HarnessError::parse(
                    what,
                    format!("bad rtt line {rtt_line:?}"),
                ));
            };
            stats.rtt = Some(Rtt {
                min_ms,
                avg_ms,
                max_ms,
                mdev_ms,
            });
        }
        Ok(stats)
    }
}

/// Pings `dest` from inside `ns`. Lost replies are not an error (look at the stats);
/// ping failing to run at all (exit status 2, e.g. no route) is.
pub fn ping(ns: &Netns, dest: IpAddr, opts: &PingOptions) -> Result<PingStats> {
    let mut argv = vec![
        "ping".to_owned(),
        "-q".into(),
        "-n".into(),
        "-c".into(),
        opts.count.to_string(),
        "-i".into(),
        format!("{:.3}", opts.interval.as_secs_f64()),
        "-W".into(),
        format!("{:.3}", opts.wait.as_secs_f64()),
    ];
    if let Some(src) = opts.source {
        argv.extend(["-I".into(), src.to_string()]);
    }
    if let Some(size) = opts.size {
        argv.extend(["-s".into(), size.to_string()]);
    }
    if let Some(tos) = opts.tos {
        argv.extend(["-Q".into(), format!("{tos:#04x}")]);
    }
    argv.push(dest.to_string());
    let mut cmd = ns.command(&argv)?;
    cmd.env("LC_ALL", "C");
    let out = crate::command::output(&mut cmd)?;
    // iputils: 0 = replies, 1 = no reply, anything else = could not ping.
    if !matches!(out.status.code(), Some(0 | 1)) {
        return Err(failure(&cmd, &out));
    }
    PingStats::parse(&String::from_utf8_lossy(&out.stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_replies_with_rtt() {
        let s = PingStats::parse(include_str!("../testdata/ping-ok.txt")).unwrap();
        assert_eq!((s.transmitted, s.received, s.errors), (4, 4, 0));
        assert!(s.all_replied());
        assert_eq!(s.loss_percent(), 0.0);
        let rtt = s.rtt.unwrap();
        assert_eq!(
            (rtt.min_ms, rtt.avg_ms, rtt.max_ms, rtt.mdev_ms),
            (0.049, 0.123, 0.336, 0.122)
        );
    }

    #[test]
    fn no_replies() {
        let s = PingStats::parse(include_str!("../testdata/ping-lost.txt")).unwrap();
        assert_eq!((s.transmitted, s.received), (3, 0));
        assert!(!s.all_replied());
        assert_eq!(s.loss_percent(), 100.0);
        assert_eq!(s.rtt, None);
    }

    #[test]
    fn errors_and_partial_loss() {
        let out = "--- 10.0.0.9 ping statistics ---\n\
                   5 packets transmitted, 2 received, +3 errors, 60% packet loss, time 4005ms\n\
                   rtt min/avg/max/mdev = 1.000/2.500/4.000/1.500 ms, pipe 3\n";
        let s = PingStats::parse(out).unwrap();
        assert_eq!((s.transmitted, s.received, s.errors), (5, 2, 3));
        assert_eq!(s.loss_percent(), 60.0);
        assert_eq!(
            s.rtt.unwrap().max_ms,
            4.0,
            "', pipe 3' after the unit is ignored"
        );
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(PingStats::parse(include_str!("../testdata/ping-unreachable.txt")).is_err());
        assert!(PingStats::parse("5 packets transmitted, x received").is_err());
    }
}
