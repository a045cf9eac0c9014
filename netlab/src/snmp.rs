//! Per-namespace protocol counters from `/proc/net/snmp` (e.g. UDP receive-buffer drops
//! during a throughput run). Read inside each namespace: `nstat` keeps one history file
//! for all of them.

use std::collections::BTreeMap;

use crate::error::{HarnessError, Result};
use crate::netns::Netns;

/// Counters as `(protocol, name) -> value`, e.g. `("Udp", "RcvbufErrors")`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnmpCounters {
    values: BTreeMap<(String, String), i64>,
}

impl SnmpCounters {
    /// Reads the counters of `ns`.
    pub fn read(ns: &Netns) -> Result<Self> {
        Self::parse(&ns.run(&["cat", "/proc/net/snmp"])?)
    }

    /// One counter, if the kernel reports it.
    pub fn get(&self, protocol: &str, name: &str) -> Option<i64> {
        self.values
            .get(&(protocol.to_owned(), name.to_owned()))
            .copied()
    }

    /// How much each counter grew since `earlier` (counters missing there count from 0).
    pub fn since(&self, earlier: &SnmpCounters) -> SnmpCounters {
        let values = self
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v - earlier.values.get(k).copied().unwrap_or(0)))
            .collect();
        SnmpCounters { values }
    }

    /// Parses the file: per protocol, a line of names then a line of values.
    pub fn parse(text: &str) -> Result<Self> {
        let what = "/proc/net/snmp";
        let mut values = BTreeMap::new();
        let mut lines = text.lines();
        while let Some(header) = lines.next() {
            let values_line = lines
                .next()
                .ok_or_else(|| HarnessError::parse(what, format!("no values after {header:?}")))?;
            let (proto, names) = header
                .split_once(':')
                .ok_or_else(|| HarnessError::parse(what, format!("bad header {header:?}")))?;
            let (proto2, nums) = values_line
                .split_once(':')
                .ok_or_else(|| HarnessError::parse(what, format!("bad values {values_line:?}")))?;
            if proto != proto2 {
                return Err(HarnessError::parse(
                    what,
                    format!("{proto} names, {proto2} values"),
                ));
            }
            let names: Vec<&str> = names.split_whitespace().collect();
            let nums: Vec<&str> = nums.split_whitespace().collect();
            if names.len() != nums.len() {
                return Err(HarnessError::parse(what, format!("{proto}: counts differ")));
            }
            for (name, num) in names.iter().zip(nums) {
                let v: i64 = num
                    .parse()
                    .map_err(|_| HarnessError::parse(what, format!("{proto} {name} = {num:?}")))?;
                values.insert((proto.to_owned(), (*name).to_owned()), v);
            }
        }
        Ok(SnmpCounters { values })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_file() {
        let c = SnmpCounters::parse(include_str!("../testdata/proc-net-snmp.txt")).unwrap();
        assert_eq!(c.get("Udp", "InDatagrams"), Some(105));
        assert_eq!(c.get("Udp", "OutDatagrams"), Some(106));
        assert_eq!(c.get("Udp", "RcvbufErrors"), Some(0));
        assert_eq!(c.get("Ip", "Forwarding"), Some(2));
        assert_eq!(c.get("Ip", "InReceives"), Some(9552));
        assert_eq!(c.get("Udp", "Nope"), None);
    }

    #[test]
    fn deltas_and_errors() {
        let a = SnmpCounters::parse("Udp: InDatagrams RcvbufErrors\nUdp: 10 1\n").unwrap();
        let b = SnmpCounters::parse("Udp: InDatagrams RcvbufErrors\nUdp: 25 4\n").unwrap();
        let d = b.since(&a);
        assert_eq!(
            (d.get("Udp", "InDatagrams"), d.get("Udp", "RcvbufErrors")),
            (Some(15), Some(3))
        );
        assert!(SnmpCounters::parse("Udp: A B\n").is_err());
        assert!(SnmpCounters::parse("Udp: A B\nUdp: 1\n").is_err());
        assert!(SnmpCounters::parse("Udp: A\nTcp: 1\n").is_err());
        assert!(SnmpCounters::parse("Udp: A\nUdp: x\n").is_err());
    }
}
