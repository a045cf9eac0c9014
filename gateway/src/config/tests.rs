//! One test per validation rule, on a small valid config changed in one place.

use super::*;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

const GOOD: &str = r#"
[local]
address = "203.0.113.10"

[[connections]]
name = "vpc-prod"

[[connections.tunnels]]
name = "tun1"
peer = "198.51.100.1"
psk = "0123456789abcdef"
inner_address = "169.254.10.2/30"
inner_peer = "169.254.10.1"

[[connections.tunnels]]
name = "tun2"
peer = "198.51.100.2"
psk = "fedcba9876543210"
inner_address = "169.254.11.2/30"
inner_peer = "169.254.11.1"

[[connections.routes]]
prefix = "10.0.0.0/16"
via = ["tun1", "tun2"]

[connections.bgp]
local_asn = 65001
advertise = ["192.168.0.0/16"]
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    parse_env(text, &[])
}

fn parse_env(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    Config::parse(text, Path::new("test.toml"), Path::new("."), env)
}

/// GOOD with the first occurrence of `from` replaced by `to`.
fn with(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "test bug: `{from}` not in GOOD");
    GOOD.replacen(from, to, 1)
}

fn issues(text: &str) -> Vec<Issue> {
    match parse(text) {
        Ok(_) => panic!("config was accepted:\n{text}"),
        Err(e) => e.issues().to_vec(),
    }
}

/// Asserts that `text` is refused with an issue at `path` whose reason contains `reason`.
fn refused(text: &str, path: &str, reason: &str) {
    let all = issues(text);
    assert!(
        all.iter()
            .any(|i| i.path == path && i.reason.contains(reason)),
        "expected `{path}: ...{reason}...`, got {all:#?}"
    );
}

#[test]
fn good_config_and_defaults() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.local.id, Identity::Ip("203.0.113.10".parse().unwrap()));
    let conn = &c.connections[0];
    assert_eq!(conn.mode, SelectionMode::ActiveStandby);
    let t = &conn.tunnels[0];
    assert_eq!(
        t.start_action,
        StartAction::Respond,
        "the cloud initiates by default"
    );
    assert_eq!(t.mtu, 1400);
    assert!(t.mss_clamp);
    assert_eq!(
        t.qos,
        Qos {
            dscp: DscpCopy::Out,
            ecn: true
        },
        "strongSwan's defaults: DSCP copied out, ECN both ways"
    );
    assert_eq!(t.psk.expose(), b"0123456789abcdef");
    assert_eq!(t.remote_id, Identity::Ip("198.51.100.1".parse().unwrap()));
    assert_eq!(t.local_id, c.local.id);
    assert_eq!(t.ike_proposals.text, "aes128gcm16-prfsha256-modp2048");
    assert!(!t.allow_weak_groups);
    assert_eq!(t.dpd.action, DpdAction::Restart);
    assert_eq!(t.ike_lifetime.hard, Duration::from_secs(86400));
    assert_eq!(t.child_lifetime.hard, Duration::from_secs(3600));
    assert_eq!(
        t.inner,
        InnerAddress {
            local: "169.254.10.2".parse().unwrap(),
            peer: "169.254.10.1".parse().unwrap(),
            prefix_len: 30
        }
    );
    assert_eq!(conn.routes[0].via, vec!["tun1", "tun2"]);
    let bgp = conn.bgp.as_ref().unwrap();
    assert_eq!(
        (
            bgp.local_asn,
            bgp.peer_asn,
            bgp.max_prefix,
            bgp.standby_prepend
        ),
        (65001, 65000, 100, 2)
    );
}

#[test]
fn psk_never_in_debug_or_summary() {
    let c = parse(GOOD).unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("0123456789abcdef"));
    assert!(dbg.contains("<redacted>"));
    assert!(!c.summary().contains("0123456789abcdef"));
}

#[test]
fn syntax_and_unknown_fields() {
    assert!(matches!(parse("[local"), Err(ConfigError::Syntax { .. })));
    refused(
        &with("name = \"tun1\"", "name = \"tun1\"\nmut = 1400"),
        "connections[0].tunnels[0].mut",
        "unknown field `mut`",
    );
}

#[test]
fn type_errors_name_the_field() {
    refused(
        &with("local_asn = 65001", "local_asn = \"x\""),
        "connections[0].bgp.local_asn",
        "invalid type",
    );
}

#[test]
fn errors_are_all_collected_and_rendered_with_the_file() {
    let text = with("peer = \"198.51.100.1\"", "peer = \"nowhere\"")
        .replace("inner_peer = \"169.254.11.1\"", "inner_peer = \"10.0.0.1\"")
        .replace("local_asn = 65001", "local_asn = 65000");
    let err = parse(&text).unwrap_err();
    assert_eq!(err.issues().len(), 3, "{:#?}", err.issues());
    let lines = err.lines();
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("test.toml: connections[0].")),
        "{lines:?}"
    );
}

#[test]
fn local_section_required_and_checked() {
    refused(
        &GOOD.replace("[local]\naddress = \"203.0.113.10\"", ""),
        "local",
        "missing",
    );
    refused(
        &with("address = \"203.0.113.10\"", "id = \"gw.example\""),
        "local.address",
        "missing",
    );
    refused(
        &with("address = \"203.0.113.10\"", "address = \"0.0.0.0\""),
        "local.address",
        "unicast",
    );
    refused(
        &with(
            "address = \"203.0.113.10\"",
            "address = \"203.0.113.10\"\nid = \"bad id\"",
        ),
        "local.id",
        "identity",
    );
}

#[test]
fn connection_rules() {
    refused(
        "[local]\naddress = \"192.0.2.1\"\n",
        "connections",
        "at least one",
    );
    refused(
        &with("name = \"vpc-prod\"", "name = \"vpc/prod\""),
        "connections[0].name",
        "letters",
    );
    refused(
        &with("name = \"vpc-prod\"", ""),
        "connections[0].name",
        "missing",
    );
    refused(
        &with(
            "name = \"vpc-prod\"",
            "name = \"a\"\nmode = \"round-robin\"",
        ),
        "connections[0].mode",
        "ecmp",
    );
    let one_tunnel = GOOD.replacen("[[connections.tunnels]]", "[connections.unused]", 1);
    assert!(!issues(&one_tunnel).is_empty());
    let mut three = GOOD.to_owned();
    let second = &GOOD[GOOD.rfind("[[connections.tunnels]]").unwrap()
        ..GOOD.find("[[connections.routes]]").unwrap()];
    three = three.replacen(
        "[[connections.routes]]",
        &format!(
            "{}[[connections.routes]]",
            second
                .replace("tun2", "tun3")
                .replace(".2\"", ".3\"")
                .replace("169.254.11", "169.254.12")
        ),
        1,
    );
    refused(
        &three,
        "connections[0].tunnels",
        "exactly two tunnels; found 3",
    );
}

#[test]
fn ecmp_mode() {
    let c = parse(&with(
        "name = \"vpc-prod\"",
        "name = \"vpc-prod\"\nmode = \"ecmp\"",
    ))
    .unwrap();
    assert_eq!(c.connections[0].mode, SelectionMode::Ecmp);
}

#[test]
fn tunnel_names_and_peers() {
    refused(
        &with("name = \"tun2\"", "name = \"tun1\""),
        "connections[0].tunnels[1].name",
        "used twice",
    );
    refused(
        &with("name = \"tun1\"", "name = \"tunnel-number-one\""),
        "connections[0].tunnels[0].name",
        "1 to 15",
    );
    refused(
        &with("peer = \"198.51.100.2\"", "peer = \"198.51.100.1\""),
        "connections[0].tunnels[1].peer",
        "two endpoints",
    );
    refused(
        &with("peer = \"198.51.100.1\"", "peer = \"2001:db8::1\""),
        "connections[0].tunnels[0].peer",
        "same IP family",
    );
    refused(
        &with("peer = \"198.51.100.1\"\n", ""),
        "connections[0].tunnels[0].peer",
        "missing",
    );
}

#[test]
fn psk_rules() {
    refused(
        &with("psk = \"0123456789abcdef\"", ""),
        "connections[0].tunnels[0].psk",
        "set psk or psk_file",
    );
    refused(
        &with(
            "psk = \"0123456789abcdef\"",
            "psk = \"0123456789abcdef\"\npsk_file = \"x\"",
        ),
        "connections[0].tunnels[0].psk",
        "not both",
    );
    refused(
        &with("psk = \"0123456789abcdef\"", "psk = \"short\""),
        "connections[0].tunnels[0].psk",
        "5 bytes long",
    );
    refused(
        &with(
            "psk = \"0123456789abcdef\"",
            &format!("psk = \"{}\"", "k".repeat(129)),
        ),
        "connections[0].tunnels[0].psk",
        "129 bytes",
    );
    refused(
        &with(
            "psk = \"0123456789abcdef\"",
            "psk = \"0123456789\\u0007abcdef\"",
        ),
        "connections[0].tunnels[0].psk",
        "control",
    );
    refused(
        &with(
            "psk = \"0123456789abcdef\"",
            "psk_file = \"/nonexistent/vpngw.psk\"",
        ),
        "connections[0].tunnels[0].psk_file",
        "cannot read",
    );
}

#[test]
fn psk_file_is_read_relative_to_the_config_and_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tun1.psk"), "file-secret-123\n").unwrap();
    let text = with("psk = \"0123456789abcdef\"", "psk_file = \"tun1.psk\"");
    let file = dir.path().join("c.toml");
    std::fs::write(&file, text).unwrap();
    let c = Config::load_with_env(&file, Vec::new()).unwrap();
    assert_eq!(c.connections[0].tunnels[0].psk.expose(), b"file-secret-123");
}

#[test]
fn proposals_are_parsed_by_the_ike_crate() {
    let t = "name = \"tun1\"";
    let p = "connections[0].tunnels[0]";
    refused(
        &with(t, "name = \"tun1\"\nike_proposals = \"aes128-sha256\""),
        &format!("{p}.ike_proposals"),
        "no DH group",
    );
    refused(
        &with(t, "name = \"tun1\"\nesp_proposals = \"aes999-sha1\""),
        &format!("{p}.esp_proposals"),
        "unknown algorithm token \"aes999\"",
    );
    refused(
        &with(
            t,
            "name = \"tun1\"\nesp_proposals = \"aes128gcm16-prfsha256\"",
        ),
        &format!("{p}.esp_proposals"),
        "not allowed in an ESP",
    );
    refused(
        &with(
            t,
            "name = \"tun1\"\nike_proposals = \"aes128-sha1-modp1024\"",
        ),
        &format!("{p}.ike_proposals"),
        "weak",
    );
    let c = parse(&with(t, "name = \"tun1\"\nallow_weak_groups = true\nike_proposals = \"aes128-sha1-modp1024\"\nesp_proposals = \"aes256-sha256-modp2048,aes128gcm16!\"")).unwrap();
    let tun = &c.connections[0].tunnels[0];
    assert_eq!(tun.esp_proposals.proposals.len(), 2);
    assert!(tun.esp_proposals.strict);
    assert!(tun.allow_weak_groups);
}

#[test]
fn lifetimes() {
    let t = "name = \"tun1\"";
    refused(
        &with(
            t,
            "name = \"tun1\"\nike_lifetime = { soft = \"2h\", hard = \"1h\" }",
        ),
        "connections[0].tunnels[0].ike_lifetime.soft",
        "shorter than the hard",
    );
    refused(
        &with(
            t,
            "name = \"tun1\"\nchild_lifetime = { hard = \"forever\" }",
        ),
        "connections[0].tunnels[0].child_lifetime.hard",
        "not a duration",
    );
    let c = parse(&with(
        t,
        "name = \"tun1\"\nchild_lifetime = { hard = \"1h\" }\nike_lifetime = { soft = \"10h\" }",
    ))
    .unwrap();
    let tun = &c.connections[0].tunnels[0];
    assert_eq!(tun.child_lifetime.soft, Duration::from_secs(3240));
    assert_eq!(tun.ike_lifetime.hard, Duration::from_secs(39600));
}

#[test]
fn child_volume_limits() {
    let t = "name = \"tun1\"";
    let child = |fields: &str| {
        with(
            t,
            &format!("name = \"tun1\"\nchild_lifetime = {{ {fields} }}"),
        )
    };
    let tun = |text: &str| parse(text).unwrap().connections[0].tunnels[0].clone();
    // Unset: unlimited, as before.
    assert_eq!(tun(GOOD).child_volume, ChildVolume::default());
    let g = tun(&child("soft = \"50m\", hard = \"1h\""));
    assert_eq!(g.child_volume, ChildVolume::default());
    // Both given, next to the times; byte suffixes are powers of 1024.
    let g = tun(&child(
        "soft = \"50m\", hard = \"1h\", soft_bytes = \"900M\", hard_bytes = \"1G\", \
         soft_packets = 900000, hard_packets = 1000000",
    ));
    assert_eq!(g.child_lifetime.hard, Duration::from_secs(3600));
    assert_eq!(
        g.child_volume,
        ChildVolume {
            bytes: Some(Volume {
                soft: 900 << 20,
                hard: 1 << 30
            }),
            packets: Some(Volume {
                soft: 900_000,
                hard: 1_000_000
            }),
        }
    );
    // Only hard: soft is 90 % of it; only soft: hard is soft + 10 %; times stay default.
    let g = tun(&child("hard_bytes = 1000, soft_packets = 2000"));
    assert_eq!(g.child_lifetime.hard, Duration::from_secs(3600));
    assert_eq!(
        g.child_volume,
        ChildVolume {
            bytes: Some(Volume {
                soft: 900,
                hard: 1000
            }),
            packets: Some(Volume {
                soft: 2000,
                hard: 2200
            }),
        }
    );
    // Small values keep at least one unit between soft and hard.
    let g = tun(&child("hard_packets = 5"));
    assert_eq!(g.child_volume.packets, Some(Volume { soft: 4, hard: 5 }));
    let p = "connections[0].tunnels[0].child_lifetime";
    for (fields, field, reason) in [
        ("hard_bytes = 0", "hard_bytes", "larger than zero"),
        ("soft_bytes = \"0K\"", "soft_bytes", "larger than zero"),
        ("hard_bytes = \"lots\"", "hard_bytes", "not a byte count"),
        ("hard_bytes = \"1.5G\"", "hard_bytes", "not a byte count"),
        ("hard_bytes = true", "hard_bytes", "not a byte count"),
        ("hard_packets = 0", "hard_packets", "larger than zero"),
        ("soft_packets = -3", "soft_packets", "negative"),
        (
            "hard_packets = \"1M\"",
            "hard_packets",
            "not a packet count",
        ),
        ("hard_packets = 1", "hard_packets", "at least 2"),
        (
            "soft_packets = 2000, hard_packets = 2000",
            "soft_packets",
            "below the hard limit",
        ),
        (
            "soft_bytes = \"2G\", hard_bytes = \"1G\"",
            "soft_bytes",
            "below the hard limit",
        ),
    ] {
        refused(&child(fields), &format!("{p}.{field}"), reason);
    }
    // Volume limits belong to CHILD SAs only.
    refused(
        &with(t, "name = \"tun1\"\nike_lifetime = { hard_bytes = 1000 }"),
        "connections[0].tunnels[0].ike_lifetime.hard_bytes",
        "unknown field",
    );
    // Environment overrides reach them (a new key: a TOML literal if it is one).
    let c = parse_env(
        &child("hard_packets = 2000"),
        &[
            (
                "VPNGW_CONNECTIONS__0__TUNNELS__0__CHILD_LIFETIME__HARD_PACKETS",
                "3000",
            ),
            (
                "VPNGW_CONNECTIONS__0__TUNNELS__0__CHILD_LIFETIME__HARD_BYTES",
                "2G",
            ),
        ],
    )
    .unwrap();
    let v = c.connections[0].tunnels[0].child_volume;
    assert_eq!(v.packets.map(|l| l.hard), Some(3000));
    assert_eq!(v.bytes.map(|l| l.hard), Some(2 << 30));
    // Shown in the summary.
    let c = parse(&child("hard_packets = 2000")).unwrap();
    assert!(c
        .summary()
        .contains("esp volume per SA direction: rekey at 1800 packets, stop at 2000"));
}

#[test]
fn dpd_rules() {
    let t = "name = \"tun1\"";
    refused(
        &with(
            t,
            "name = \"tun1\"\ndpd = { interval = \"30s\", timeout = \"10s\" }",
        ),
        "connections[0].tunnels[0].dpd.timeout",
        "longer than the interval",
    );
    refused(
        &with(t, "name = \"tun1\"\ndpd = { action = \"hold\" }"),
        "connections[0].tunnels[0].dpd.action",
        "restart",
    );
    let c = parse(&with(
        t,
        "name = \"tun1\"\ndpd = { interval = \"10s\", timeout = \"1m\", action = \"clear\" }",
    ))
    .unwrap();
    let d = c.connections[0].tunnels[0].dpd;
    assert_eq!(
        (d.interval, d.timeout, d.action),
        (
            Duration::from_secs(10),
            Duration::from_secs(60),
            DpdAction::Clear
        )
    );
}

#[test]
fn start_action_and_identities() {
    let t = "name = \"tun1\"";
    refused(
        &with(t, "name = \"tun1\"\nstart_action = \"start\""),
        "connections[0].tunnels[0].start_action",
        "initiate",
    );
    refused(
        &with(t, "name = \"tun1\"\nremote_id = \"not valid\""),
        "connections[0].tunnels[0].remote_id",
        "identity",
    );
    let c = parse(&with(
        t,
        "name = \"tun1\"\nstart_action = \"initiate\"\nlocal_id = \"@gw.example.com\"",
    ))
    .unwrap();
    let tun = &c.connections[0].tunnels[0];
    assert_eq!(tun.start_action, StartAction::Initiate);
    assert_eq!(tun.local_id, Identity::Fqdn("gw.example.com".into()));
}

#[test]
fn inner_address_rules() {
    let a = "inner_address = \"169.254.10.2/30\"";
    refused(
        &with(a, "inner_address = \"169.254.10.2/29\""),
        "connections[0].tunnels[0].inner_address",
        "/30",
    );
    refused(
        &with(a, "inner_address = \"169.254.10.3/30\""),
        "connections[0].tunnels[0].inner_address",
        "broadcast",
    );
    refused(
        &with(a, "inner_address = \"169.254.10.0/30\""),
        "connections[0].tunnels[0].inner_address",
        "network",
    );
    refused(
        &with(
            "inner_peer = \"169.254.10.1\"",
            "inner_peer = \"169.254.10.5\"",
        ),
        "connections[0].tunnels[0].inner_peer",
        "not a host address of 169.254.10.0/30",
    );
    refused(
        &with(
            "inner_peer = \"169.254.10.1\"",
            "inner_peer = \"169.254.10.2\"",
        ),
        "connections[0].tunnels[0].inner_peer",
        "must differ",
    );
    refused(
        &with(a, "inner_address = \"169.254.10.2\""),
        "connections[0].tunnels[0].inner_address",
        "address/prefix",
    );
    refused(
        &with(
            "inner_address = \"169.254.11.2/30\"",
            "inner_address = \"169.254.10.2/30\"",
        )
        .replace(
            "inner_peer = \"169.254.11.1\"",
            "inner_peer = \"169.254.10.1\"",
        ),
        "connections[0].tunnels[1].inner_address",
        "also the inner network",
    );
    let v6 = with(a, "inner_address = \"fd00::2/126\"").replacen(
        "inner_peer = \"169.254.10.1\"",
        "inner_peer = \"fd00::1\"",
        1,
    );
    let c = parse(&v6).unwrap();
    assert_eq!(
        c.connections[0].tunnels[0].inner.peer,
        "fd00::1".parse::<IpAddr>().unwrap()
    );
}

#[test]
fn mtu_rules() {
    let t = "name = \"tun1\"";
    refused(
        &with(t, "name = \"tun1\"\nmtu = 575"),
        "connections[0].tunnels[0].mtu",
        "outside 576..=9000",
    );
    refused(
        &with(t, "name = \"tun1\"\nmtu = 9001"),
        "connections[0].tunnels[0].mtu",
        "outside",
    );
    for ok in [576, 1399, 1450, 9000] {
        let c = parse(&with(
            t,
            &format!("name = \"tun1\"\nmtu = {ok}\nmss_clamp = false"),
        ))
        .unwrap();
        assert_eq!(c.connections[0].tunnels[0].mtu, ok);
        assert!(!c.connections[0].tunnels[0].mss_clamp);
    }
    let v6 = with(
        "inner_address = \"169.254.10.2/30\"",
        "mtu = 1000\ninner_address = \"fd00::2/126\"",
    )
    .replacen(
        "inner_peer = \"169.254.10.1\"",
        "inner_peer = \"fd00::1\"",
        1,
    );
    refused(&v6, "connections[0].tunnels[0].mtu", "IPv6 minimum");
}

#[test]
fn static_route_rules() {
    refused(
        &with("prefix = \"10.0.0.0/16\"", "prefix = \"10.0.0.1/16\""),
        "connections[0].routes[0].prefix",
        "did you mean 10.0.0.0/16",
    );
    refused(
        &with("via = [\"tun1\", \"tun2\"]", "via = [\"tun9\"]"),
        "connections[0].routes[0].via[0]",
        "not a tunnel of this connection",
    );
    refused(
        &with("via = [\"tun1\", \"tun2\"]", "via = []"),
        "connections[0].routes[0].via",
        "one or two",
    );
    refused(
        &with("via = [\"tun1\", \"tun2\"]", "via = [\"tun1\", \"tun1\"]"),
        "connections[0].routes[0].via[1]",
        "twice",
    );
    let dup = with(
        "[connections.bgp]",
        "[[connections.routes]]\nprefix = \"10.0.0.0/16\"\nvia = [\"tun2\"]\n\n[connections.bgp]",
    );
    refused(&dup, "connections[0].routes[1].prefix", "listed twice");
}

#[test]
fn bgp_rules() {
    refused(
        &with("local_asn = 65001", "local_asn = 65000"),
        "connections[0].bgp.local_asn",
        "eBGP",
    );
    refused(
        &with("local_asn = 65001", "local_asn = 0"),
        "connections[0].bgp.local_asn",
        "reserved",
    );
    refused(
        &with("local_asn = 65001", "local_asn = 23456"),
        "connections[0].bgp.local_asn",
        "AS_TRANS",
    );
    refused(
        &with("local_asn = 65001", "local_asn = 4294967296"),
        "connections[0].bgp.local_asn",
        "outside",
    );
    refused(
        &with("local_asn = 65001", "peer_asn = 65001"),
        "connections[0].bgp.local_asn",
        "missing",
    );
    refused(
        &with(
            "advertise = [\"192.168.0.0/16\"]",
            "advertise = [\"192.168.1.0/16\"]",
        ),
        "connections[0].bgp.advertise[0]",
        "host bits",
    );
    refused(
        &with("local_asn = 65001", "local_asn = 65001\nmax_prefix = 0"),
        "connections[0].bgp.max_prefix",
        "at least 1",
    );
    refused(
        &with(
            "local_asn = 65001",
            "local_asn = 65001\nstandby_prepend = 17",
        ),
        "connections[0].bgp.standby_prepend",
        "between 0 and 16",
    );
    refused(
        &with("local_asn = 65001", "local_asn = 65001\nhold_time = \"2s\""),
        "connections[0].bgp.hold_time",
        "3s",
    );
    let c = parse(&with(
        "local_asn = 65001",
        "local_asn = 4200000001\npeer_asn = 64512\nmax_prefix = 500\nhold_time = \"30s\"\nstandby_prepend = 0",
    ))
    .unwrap();
    let b = c.connections[0].bgp.as_ref().unwrap();
    assert_eq!(
        (
            b.local_asn,
            b.peer_asn,
            b.max_prefix,
            b.hold_time,
            b.standby_prepend
        ),
        (4200000001, 64512, 500, Duration::from_secs(30), 0)
    );
}

#[test]
fn names_and_prefixes_unique_across_connections() {
    let conn = &GOOD[GOOD.find("[[connections]]").unwrap()..];
    let text = format!("{GOOD}\n{conn}");
    let all = issues(&text);
    for (path, reason) in [
        ("connections[1].name", "already the name of connections[0]"),
        (
            "connections[1].tunnels[0].name",
            "already a tunnel of connections[0]",
        ),
        (
            "connections[1].routes[0].prefix",
            "already routed by connections[0]",
        ),
    ] {
        assert!(
            all.iter()
                .any(|i| i.path == path && i.reason.contains(reason)),
            "{path}: {all:#?}"
        );
    }
}

#[test]
fn env_overrides_apply_and_are_validated() {
    let c = parse_env(
        GOOD,
        &[(
            "VPNGW_CONNECTIONS__0__TUNNELS__1__PSK",
            "from-the-environment",
        )],
    )
    .unwrap();
    assert_eq!(
        c.connections[0].tunnels[1].psk.expose(),
        b"from-the-environment"
    );
    let err = parse_env(GOOD, &[("VPNGW_CONNECTIONS__0__TUNNELS__1__MTU", "100")]).unwrap_err();
    assert_eq!(err.issues()[0].path, "connections[0].tunnels[1].mtu");
    let err = parse_env(GOOD, &[("VPNGW_CONNECTIONS__3__NAME", "x")]).unwrap_err();
    assert_eq!(err.issues()[0].path, "env VPNGW_CONNECTIONS__3__NAME");
}

#[test]
fn tunnel_with_its_own_address_defaults_its_identity_to_it() {
    let text = with(
        "name = \"tun2\"\n",
        "name = \"tun2\"\nlocal_address = \"203.0.113.11\"\n",
    );
    let c = parse(&text).unwrap();
    let [t1, t2] = &c.connections[0].tunnels;
    assert_eq!(t1.local_id, Identity::Ip("203.0.113.10".parse().unwrap()));
    assert_eq!(t2.local_address, "203.0.113.11".parse::<IpAddr>().unwrap());
    assert_eq!(t2.local_id, Identity::Ip("203.0.113.11".parse().unwrap()));
    // The daemon's defaults for the new top-level fields.
    assert_eq!(c.tun_name, "vpngw0");
    assert_eq!(c.control_socket, Path::new("/run/vpngw/vpngw.sock"));
}

#[test]
fn traffic_selectors_and_additional_child_sas() {
    let t = "name = \"tun1\"";
    let c = parse(GOOD).unwrap();
    let tun = &c.connections[0].tunnels[0];
    assert_eq!(tun.local_ts, defaults::any_ts());
    assert_eq!(tun.remote_ts[0].to_string(), "0.0.0.0/0");
    assert_eq!(tun.remote_ts[1].to_string(), "::/0");
    assert!(tun.additional_child_sas);
    assert_eq!(tun.reauth_time, None, "reauthentication is off by default");
    let c = parse(&with(
        t,
        "name = \"tun1\"\nlocal_ts = [\"10.1.0.0/16\"]\nremote_ts = [\"10.2.0.0/24\", \"fd00::/8\"]\nadditional_child_sas = false",
    ))
    .unwrap();
    let tun = &c.connections[0].tunnels[0];
    assert_eq!(tun.local_ts.len(), 1);
    assert_eq!(tun.remote_ts[1].to_string(), "fd00::/8");
    assert!(!tun.additional_child_sas);
    assert!(c
        .summary()
        .contains("ts [10.1.0.0/16] <-> [10.2.0.0/24, fd00::/8], additional CHILD SAs refused"));
    let p = "connections[0].tunnels[0]";
    let c = parse(&with(t, "name = \"tun1\"\nreauth_time = \"3h\"")).unwrap();
    assert_eq!(
        c.connections[0].tunnels[0].reauth_time,
        Some(Duration::from_secs(3 * 3600))
    );
    assert!(c
        .summary()
        .contains("reauthenticate every 3h (make-before-break)"));
    refused(
        &with(t, "name = \"tun1\"\nreauth_time = \"soon\""),
        &format!("{p}.reauth_time"),
        "not a duration",
    );
    refused(
        &with(t, "name = \"tun1\"\nlocal_ts = []"),
        &format!("{p}.local_ts"),
        "empty",
    );
    refused(
        &with(t, "name = \"tun1\"\nremote_ts = [\"10.2.0.1/24\"]"),
        &format!("{p}.remote_ts"),
        "host bits",
    );
}

#[test]
fn workers_default_to_one_per_core_and_are_bounded() {
    assert_eq!(parse(GOOD).unwrap().workers, 0);
    let c = parse_env(GOOD, &[("VPNGW_WORKERS", "3")]).unwrap();
    assert_eq!(c.workers, 3);
    let text = format!("workers = 4\n{GOOD}");
    assert_eq!(parse(&text).unwrap().workers, 4);
    refused(&format!("workers = 1000\n{GOOD}"), "workers", "at most 256");
}

#[test]
fn children_we_request_default_to_the_tunnels_selectors_and_must_differ() {
    let tun2 = "[[connections.tunnels]]\nname = \"tun2\"";
    let kids = |tables: &str| with(tun2, &format!("{tables}\n{tun2}"));
    assert!(parse(GOOD).unwrap().connections[0].tunnels[0]
        .children
        .is_empty());
    let c = parse(&kids(
        "[[connections.tunnels.children]]\nremote_ts = [\"10.2.0.0/24\"]\n\
         [[connections.tunnels.children]]\nlocal_ts = [\"10.1.0.0/24\"]\nremote_ts = [\"10.3.0.0/24\"]\n",
    ))
    .unwrap();
    let t = &c.connections[0].tunnels[0];
    assert_eq!(t.children.len(), 2);
    assert_eq!(
        t.children[0].local_ts, t.local_ts,
        "defaults to the tunnel's"
    );
    assert_eq!(t.children[0].remote_ts[0].to_string(), "10.2.0.0/24");
    assert_eq!(t.children[1].local_ts[0].to_string(), "10.1.0.0/24");
    assert!(c.connections[0].tunnels[1].children.is_empty());
    assert!(c
        .summary()
        .contains("child [10.1.0.0/24] <-> [10.3.0.0/24] (requested by us)"));
    let p = "connections[0].tunnels[0].children";
    refused(
        &kids("[[connections.tunnels.children]]\n"),
        &format!("{p}[0]"),
        "set local_ts and/or remote_ts",
    );
    refused(
        &kids("[[connections.tunnels.children]]\nremote_ts = [\"0.0.0.0/0\", \"::/0\"]\n"),
        &format!("{p}[0]"),
        "first CHILD SA",
    );
    refused(
        &kids(
            "[[connections.tunnels.children]]\nremote_ts = [\"10.2.0.0/24\"]\n\
             [[connections.tunnels.children]]\nremote_ts = [\"10.2.0.0/24\"]\n",
        ),
        &format!("{p}[1]"),
        "an earlier child",
    );
    refused(
        &kids("[[connections.tunnels.children]]\nremote_ts = [\"10.2.0.1/24\"]\n"),
        &format!("{p}[0].remote_ts"),
        "host bits",
    );
    refused(
        &kids("[[connections.tunnels.children]]\nremote = [\"10.2.0.0/24\"]\n"),
        &format!("{p}[0].remote"),
        "unknown field",
    );
}

#[test]
fn dscp_and_ecn_copying() {
    let t = "name = \"tun1\"";
    for (text, dscp) in [
        ("out", DscpCopy::Out),
        ("in", DscpCopy::In),
        ("yes", DscpCopy::Both),
        ("no", DscpCopy::No),
    ] {
        let c = parse(&with(
            t,
            &format!("name = \"tun1\"\ncopy_dscp = \"{text}\"\ncopy_ecn = false"),
        ))
        .unwrap();
        let q = c.connections[0].tunnels[0].qos;
        assert_eq!((q.dscp, q.ecn), (dscp, false));
        assert!(c.summary().contains(&format!("dscp copy {text}, ecn off")));
    }
    refused(
        &with(t, "name = \"tun1\"\ncopy_dscp = \"both\""),
        "connections[0].tunnels[0].copy_dscp",
        "expected \"out\", \"in\", \"yes\" or \"no\"",
    );
    refused(
        &with(t, "name = \"tun1\"\ncopy_ecn = \"yes\""),
        "connections[0].tunnels[0].copy_ecn",
        "",
    );
}

#[test]
fn metrics_listen_is_an_address_and_port() {
    assert_eq!(parse(GOOD).unwrap().metrics_listen, None, "off by default");
    let c = parse(&format!("metrics_listen = \"127.0.0.1:9477\"\n{GOOD}")).unwrap();
    assert_eq!(c.metrics_listen, Some("127.0.0.1:9477".parse().unwrap()));
    let c = parse(&format!("metrics_listen = \"[::1]:9477\"\n{GOOD}")).unwrap();
    assert_eq!(c.metrics_listen, Some("[::1]:9477".parse().unwrap()));
    for bad in ["127.0.0.1", "localhost:9477", ":9477", ""] {
        refused(
            &format!("metrics_listen = \"{bad}\"\n{GOOD}"),
            "metrics_listen",
            "expected an address and port",
        );
    }
}
