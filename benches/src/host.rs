//! Facts about the machine that shape every figure, printed with the table: how many CPUs
//! the hosts and gateways share, the kernel, and the TCP congestion control of the hosts'
//! iperf3 (the machine's default; new namespaces take it over). On the 2-vCPU machines
//! this was built on, single-stream TCP moved a lot with it: with BBR (pacing) both vpngw
//! and the plain path stayed well below what they reached with CUBIC.

use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HostFacts {
    pub cpus: usize,
    pub kernel: Option<String>,
    pub tcp_congestion_control: Option<String>,
}

impl HostFacts {
    pub fn read() -> HostFacts {
        HostFacts {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel: read_trimmed("/proc/sys/kernel/osrelease"),
            tcp_congestion_control: read_trimmed("/proc/sys/net/ipv4/tcp_congestion_control"),
        }
    }

    /// One line for the table's footer; `None` when nothing was read.
    pub fn describe(&self) -> Option<String> {
        if *self == HostFacts::default() {
            return None;
        }
        let unknown = || "unknown".to_owned();
        Some(format!(
            "Host: {} CPU(s) shared by hosts and gateways, Linux {}, TCP congestion control {} \
             (the machine's default).",
            self.cpus,
            self.kernel.clone().unwrap_or_else(unknown),
            self.tcp_congestion_control.clone().unwrap_or_else(unknown),
        ))
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    let s = std::fs::read_to_string(path).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_is_described() {
        let facts = HostFacts::read();
        assert!(facts.cpus >= 1);
        let line = facts.describe().unwrap();
        assert!(line.contains("congestion control"), "{line}");
        assert_eq!(HostFacts::default().describe(), None);
    }
}
