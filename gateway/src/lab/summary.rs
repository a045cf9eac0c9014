//! The summary `vpngw lab` prints at the end: tunnels, routes, BGP, ping, throughput.

use std::fmt::Write as _;
use std::time::Duration;

use netlab::bird::ProtocolStatus;
use netlab::nat::{NAT_PORTS, NAT_PORTS_AFTER_REBOOT};
use netlab::{plan, IperfResult, PingStats, VpngwBgpSession, VpngwRoutes, VpngwStatus};

/// What the lab measured and the gateways reported.
#[derive(Debug)]
pub struct Report {
    pub cloud_peer: &'static str,
    pub customer_status: VpngwStatus,
    pub customer_routes: VpngwRoutes,
    pub customer_bgp: Vec<VpngwBgpSession>,
    pub cloud_status: Option<VpngwStatus>,
    pub cloud_routes: Option<VpngwRoutes>,
    pub cloud_bgp: Option<Vec<VpngwBgpSession>>,
    /// BIRD's BGP protocols when strongSwan + BIRD are the cloud.
    pub cloud_bird: Option<Vec<ProtocolStatus>>,
    pub ping_vpc_to_idc: PingStats,
    pub ping_idc_to_vpc: PingStats,
    pub iperf: IperfResult,
    pub iperf_seconds: u32,
    /// With `--nat`: the NAT reboot.
    pub nat: Option<NatReport>,
}

/// The customer behind a NAT router, and that router's reboot.
#[derive(Debug)]
pub struct NatReport {
    /// (tunnel, address:port) of the customer as the cloud side saw it before the reboot.
    pub before: Vec<(String, String)>,
    /// The same once traffic flowed again.
    pub after: Vec<(String, String)>,
    /// From the reboot to the first IDC -> VPC ping answered.
    pub recovered_in: Duration,
}

pub fn render(r: &Report) -> String {
    let mut out = String::from("\n=== vpngw lab summary ===\n");
    section(&mut out, "Tunnels, customer gateway (vpngw, AS 65010)");
    tunnels(&mut out, &r.customer_status);
    if let Some(s) = &r.cloud_status {
        section(&mut out, "Tunnels, cloud gateway (vpngw, AS 65000)");
        tunnels(&mut out, s);
    }
    section(&mut out, "Routes, customer gateway");
    routes(&mut out, &r.customer_routes);
    if let Some(routes_) = &r.cloud_routes {
        section(&mut out, "Routes, cloud gateway");
        routes(&mut out, routes_);
    }
    section(&mut out, "BGP sessions, customer gateway");
    bgp(&mut out, &r.customer_bgp);
    if let Some(b) = &r.cloud_bgp {
        section(&mut out, "BGP sessions, cloud gateway");
        bgp(&mut out, b);
    }
    if let Some(protocols) = &r.cloud_bird {
        section(&mut out, "BGP sessions, cloud gateway (BIRD)");
        let _ = writeln!(out, "  {:<10} {:<6} INFO", "PROTOCOL", "STATE");
        for p in protocols.iter().filter(|p| p.proto == "BGP") {
            let _ = writeln!(out, "  {:<10} {:<6} {}", p.name, p.state, p.info);
        }
    }
    section(&mut out, "Traffic");
    ping_line(
        &mut out,
        "VPC 10.20.0.10 -> IDC 10.10.0.10",
        &r.ping_vpc_to_idc,
    );
    ping_line(
        &mut out,
        "IDC 10.10.0.10 -> VPC 10.20.0.10",
        &r.ping_idc_to_vpc,
    );
    let _ = writeln!(
        out,
        "  throughput IDC -> VPC   iperf3 TCP {} s: {:.2} Gbit/s ({} retransmits; cloud side {})",
        r.iperf_seconds,
        r.iperf.received_bits_per_second / 1e9,
        r.iperf
            .retransmits
            .map_or_else(|| "-".to_owned(), |n| n.to_string()),
        r.cloud_peer
    );
    if let Some(n) = &r.nat {
        nat(&mut out, n);
    }
    out
}

fn nat(out: &mut String, n: &NatReport) {
    let ports = |r: &std::ops::RangeInclusive<u16>| format!("{}-{}", r.start(), r.end());
    let seen = |v: &[(String, String)]| {
        v.iter()
            .map(|(t, p)| format!("{t} {p}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    section(
        out,
        &format!(
            "NAT (customer gateway {} behind a NAT router, public address {})",
            plan::CUSTOMER_GW_PRIVATE,
            plan::CUSTOMER_GW_WAN
        ),
    );
    let _ = writeln!(
        out,
        "  before the reboot   UDP ports {}; the cloud sees {}",
        ports(&NAT_PORTS),
        seen(&n.before)
    );
    let _ = writeln!(
        out,
        "  NAT reboot          mappings flushed, UDP ports {} from now on",
        ports(&NAT_PORTS_AFTER_REBOOT)
    );
    let _ = writeln!(
        out,
        "  IDC -> VPC again    after {}; the cloud sees {}",
        took(n.recovered_in),
        seen(&n.after)
    );
}

/// A recovery time as people read it: milliseconds below a second.
fn took(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn section(out: &mut String, title: &str) {
    let _ = writeln!(out, "\n{title}");
}

fn tunnels(out: &mut String, s: &VpngwStatus) {
    let _ = writeln!(
        out,
        "  {:<10} {:<5} {:<21} {:<8} {:<8} {:<22} IKE SUITE",
        "TUNNEL", "STATE", "PEER", "SPI_IN", "SPI_OUT", "ESP SUITE"
    );
    for t in &s.tunnels {
        let child = t.child_sas.last();
        let _ = writeln!(
            out,
            "  {:<10} {:<5} {:<21} {:<8} {:<8} {:<22} {}",
            t.name,
            t.state,
            t.peer,
            child.map_or("-", |c| c.spi_in.as_str()),
            child.map_or("-", |c| c.spi_out.as_str()),
            child.map_or("-", |c| c.proposal.as_str()),
            t.ike.as_ref().map_or("-", |i| i.proposal.as_str()),
        );
    }
}

fn routes(out: &mut String, r: &VpngwRoutes) {
    let _ = writeln!(
        out,
        "  {:<18} {:<9} {:<20} ACTIVE",
        "PREFIX", "SOURCE", "VIA"
    );
    for route in &r.routes {
        let active = if route.active.is_empty() {
            "-".to_owned()
        } else {
            route.active.join(",")
        };
        let _ = writeln!(
            out,
            "  {:<18} {:<9} {:<20} {}",
            route.prefix,
            route.source,
            route.via.join(","),
            active
        );
    }
}

fn bgp(out: &mut String, sessions: &[VpngwBgpSession]) {
    let _ = writeln!(
        out,
        "  {:<10} {:<15} {:>7}  {:<12} {:>8} {:>10} {:>10}",
        "TUNNEL", "NEIGHBOUR", "PEER_AS", "STATE", "RECEIVED", "ADVERTISED", "COLLISIONS"
    );
    for s in sessions {
        let _ = writeln!(
            out,
            "  {:<10} {:<15} {:>7}  {:<12} {:>8} {:>10} {:>10}",
            s.tunnel,
            s.peer_address,
            s.peer_asn,
            s.state,
            s.prefixes_received,
            s.prefixes_advertised,
            s.connection_collisions
        );
    }
}

fn ping_line(out: &mut String, what: &str, p: &PingStats) {
    let rtt = p.rtt.map_or_else(
        || "no RTT".to_owned(),
        |r| {
            format!(
                "rtt min/avg/max {:.3}/{:.3}/{:.3} ms",
                r.min_ms, r.avg_ms, r.max_ms
            )
        },
    );
    let _ = writeln!(
        out,
        "  ping {what}: {}/{} replies, {rtt}",
        p.received, p.transmitted
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_times_read_in_ms_below_a_second() {
        assert_eq!(took(Duration::from_millis(12)), "12 ms");
        assert_eq!(took(Duration::from_millis(28_340)), "28.3 s");
    }
}
