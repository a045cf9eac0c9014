//! Decodes messages captured from BIRD 2 (see testdata/README.md): the codec must read
//! what a real peer sends, not only its own output.

use std::net::Ipv4Addr;

use bgp::wire::{
    open::AS_TRANS, AsPath, Capability, CodecContext, Message, Notification, Origin, RawAttribute,
};
use bgp::Ipv4Prefix;

fn messages(fixture: &str) -> Vec<Vec<u8>> {
    fixture
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| hex::decode(l.trim()).expect("fixture is hex"))
        .collect()
}

fn decode_all(fixture: &str) -> Vec<Message> {
    messages(fixture)
        .iter()
        .map(|m| Message::decode(m, CodecContext::default()).expect("BIRD message decodes"))
        .collect()
}

fn p(s: &str) -> Ipv4Prefix {
    s.parse().unwrap()
}

#[test]
fn two_octet_session() {
    let msgs = decode_all(include_str!("../testdata/bird2_two_octet_session.hex"));
    assert_eq!(msgs.len(), 8);
    let Message::Open(open) = &msgs[0] else {
        panic!("first is OPEN")
    };
    assert_eq!(open.my_as, 65000);
    assert_eq!(open.asn(), 65000);
    assert_eq!(open.hold_time, 90);
    assert_eq!(open.bgp_id, Ipv4Addr::new(192, 0, 2, 1));
    assert!(open.supports_ipv4_unicast());
    assert!(open.supports_route_refresh());
    // Graceful restart (64, restart time 120 s), enhanced route refresh (70) and
    // long-lived graceful restart (71) are kept as unknown.
    assert!(open.capabilities.contains(&Capability::Unknown {
        code: 64,
        value: vec![0x00, 0x78]
    }));
    assert!(open.capabilities.contains(&Capability::Unknown {
        code: 70,
        value: vec![]
    }));
    assert!(open.capabilities.contains(&Capability::Unknown {
        code: 71,
        value: vec![]
    }));
    assert_eq!(msgs[1], Message::Keepalive);

    let Message::Update(u) = &msgs[2] else {
        panic!("UPDATE")
    };
    assert_eq!(u.nlri, vec![p("192.168.128.0/17"), p("10.11.0.0/24")]);
    assert_eq!(u.attributes.origin, Some(Origin::Igp));
    assert_eq!(u.attributes.as_path, Some(AsPath::sequence(vec![65000])));
    assert_eq!(u.attributes.next_hop, Some(Ipv4Addr::new(10, 99, 0, 1)));
    assert!(u.treat_as_withdraw.is_none());

    let Message::Update(u) = &msgs[3] else {
        panic!("UPDATE")
    };
    assert_eq!(u.nlri, vec![p("10.10.0.0/16")]);
    assert_eq!(u.attributes.communities, vec![(65000 << 16) | 100]);
    // LARGE_COMMUNITY (type 32) is unknown to us: kept, flagged partial.
    let mut large = Vec::new();
    for v in [65000u32, 1, 2] {
        large.extend_from_slice(&v.to_be_bytes());
    }
    assert_eq!(
        u.attributes.unknown_transitive,
        vec![RawAttribute {
            flags: 0xe0,
            type_code: 32,
            value: large
        }]
    );

    let Message::Update(eor) = &msgs[4] else {
        panic!("UPDATE")
    };
    assert!(eor.is_end_of_rib());
    let Message::RouteRefresh(rr) = &msgs[5] else {
        panic!("ROUTE-REFRESH")
    };
    assert_eq!((rr.afi, rr.subtype, rr.safi), (1, 0, 1));
    let Message::Update(w) = &msgs[6] else {
        panic!("UPDATE")
    };
    assert_eq!(
        w.withdrawn,
        vec![p("192.168.128.0/17"), p("10.11.0.0/24"), p("10.10.0.0/16")]
    );
    assert!(w.nlri.is_empty());
    assert_eq!(
        msgs[7],
        Message::Notification(Notification::new(6, 2, vec![]))
    );
}

#[test]
fn four_octet_session() {
    let msgs = decode_all(include_str!("../testdata/bird2_four_octet_session.hex"));
    let Message::Open(open) = &msgs[0] else {
        panic!("OPEN")
    };
    assert_eq!(open.my_as, AS_TRANS);
    assert_eq!(open.asn(), 4_200_000_001);
    assert_eq!(open.hold_time, 240);
    let Message::Update(u) = &msgs[4] else {
        panic!("UPDATE")
    };
    assert_eq!(u.nlri, vec![p("10.20.0.0/16")]);
    let path = u.attributes.as_path.as_ref().unwrap();
    assert_eq!(path, &AsPath::sequence(vec![4_200_000_001, 65001]));
    assert_eq!(path.path_len(), 2);
    let Message::Notification(n) = msgs.last().unwrap() else {
        panic!("NOTIFICATION")
    };
    assert_eq!((n.code, n.subcode, n.data.as_slice()), (1, 3, &[9u8][..]));
}

#[test]
fn bad_peer_as_notification() {
    let msgs = decode_all(include_str!("../testdata/bird2_bad_peer_as.hex"));
    assert_eq!(
        msgs[1],
        Message::Notification(Notification::new(2, 2, 65001u32.to_be_bytes().to_vec()))
    );
}

/// Re-encoding what BIRD sent gives BIRD's bytes back, except that the unknown
/// optional transitive attribute now carries the Partial bit (RFC 4271 section 5).
#[test]
fn re_encoding_matches_bird_bytes() {
    let raw = messages(include_str!("../testdata/bird2_two_octet_session.hex"));
    for (i, m) in raw.iter().enumerate() {
        let decoded = Message::decode(m, CodecContext::default()).unwrap();
        let mut expected = m.clone();
        if i == 3 {
            // flags of LARGE_COMMUNITY: 0xc0 -> 0xe0
            let pos = expected.windows(2).position(|w| w == [0xc0, 0x20]).unwrap();
            expected[pos] = 0xe0;
        }
        assert_eq!(
            decoded.encode(CodecContext::default()),
            expected,
            "message {i}"
        );
    }
}
