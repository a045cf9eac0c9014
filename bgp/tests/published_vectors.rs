//! Messages published by another project (dpkt's BGP test vectors, see
//! testdata/README.md), read with our codec.

use std::net::Ipv4Addr;

use bgp::wire::{
    Aggregator, AsPath, AsSegment, Capability, CodecContext, Message, Origin, RawAttribute,
};

fn decode(fixture: &str, ctx: CodecContext) -> Message {
    let bytes = hex::decode(fixture.trim()).unwrap();
    Message::decode(&bytes, ctx).unwrap()
}

const TWO_OCTET_IBGP: CodecContext = CodecContext {
    four_octet_as: false,
    ebgp: false,
};

#[test]
fn update_with_as_set_aggregator_and_communities() {
    let Message::Update(u) = decode(
        include_str!("../testdata/dpkt_ibgp_update_as_set_aggregator.hex"),
        TWO_OCTET_IBGP,
    ) else {
        panic!("UPDATE expected")
    };
    let a = &u.attributes;
    assert_eq!(a.origin, Some(Origin::Igp));
    let path = a.as_path.as_ref().unwrap();
    assert_eq!(
        path,
        &AsPath {
            segments: vec![
                AsSegment::Set(vec![500, 500]),
                AsSegment::Sequence(vec![65211])
            ]
        }
    );
    assert_eq!(path.path_len(), 2);
    assert_eq!(
        path.first_asn(),
        None,
        "a leading AS_SET names no neighbour AS"
    );
    assert_eq!(a.next_hop, Some(Ipv4Addr::new(192, 168, 0, 15)));
    assert_eq!(a.local_pref, Some(100));
    assert!(a.atomic_aggregate);
    assert_eq!(
        a.aggregator,
        Some(Aggregator {
            asn: 65210,
            address: Ipv4Addr::new(192, 168, 0, 10)
        })
    );
    assert_eq!(
        a.communities,
        vec![(65215 << 16) | 1, (790 << 16) | 4, (340 << 16) | 250]
    );
    // ORIGINATOR_ID and CLUSTER_LIST are optional non-transitive: dropped, not kept.
    assert!(a.unknown_transitive.is_empty());
    assert!(u.treat_as_withdraw.is_none() && u.discarded.is_empty());
    assert_eq!(u.nlri, vec!["192.168.4.0/22".parse().unwrap()]);

    // From an external peer the same LOCAL_PREF is ignored (RFC 7606 section 7.5).
    let ebgp = CodecContext {
        four_octet_as: false,
        ebgp: true,
    };
    let Message::Update(u) = decode(
        include_str!("../testdata/dpkt_ibgp_update_as_set_aggregator.hex"),
        ebgp,
    ) else {
        panic!()
    };
    assert_eq!(u.attributes.local_pref, None);
    assert_eq!(u.discarded.len(), 1);
}

#[test]
fn update_with_foreign_mp_reach_and_unknown_attributes() {
    let Message::Update(u) = decode(
        include_str!("../testdata/dpkt_update_vpnv4_mp_reach.hex"),
        TWO_OCTET_IBGP,
    ) else {
        panic!()
    };
    // VPNv4 routes are not ours: nothing announced, nothing withdrawn, no error.
    assert!(u.nlri.is_empty() && u.withdrawn.is_empty());
    assert!(u.treat_as_withdraw.is_none());
    assert_eq!(u.attributes.as_path, Some(AsPath::default()));
    let kept: Vec<u8> = u
        .attributes
        .unknown_transitive
        .iter()
        .map(|r| r.type_code)
        .collect();
    assert_eq!(kept, vec![16, 128]);
    assert_eq!(
        u.attributes.unknown_transitive[0],
        RawAttribute {
            flags: 0xe0,
            type_code: 16,
            value: vec![0, 2, 1, 0x2c, 0, 0, 1, 0x2c]
        }
    );
}

#[test]
fn open_with_one_capability_per_parameter() {
    let Message::Open(o) = decode(
        include_str!("../testdata/dpkt_open_three_parameters.hex"),
        CodecContext::default(),
    ) else {
        panic!()
    };
    assert_eq!((o.my_as, o.asn(), o.hold_time), (237, 237, 90));
    assert_eq!(o.bgp_id, Ipv4Addr::new(198, 110, 131, 125));
    assert_eq!(
        o.capabilities,
        vec![
            Capability::Multiprotocol { afi: 1, safi: 1 },
            Capability::Unknown {
                code: 128,
                value: vec![]
            },
            Capability::RouteRefresh,
        ]
    );
    assert!(o.supports_ipv4_unicast() && o.supports_route_refresh());
    assert_eq!(o.four_octet_as(), None);
}

#[test]
fn ipv6_mp_reach_is_ignored() {
    let Message::Update(u) = decode(
        include_str!("../testdata/dpkt_update_ipv6_mp_reach.hex"),
        CodecContext {
            four_octet_as: false,
            ebgp: true,
        },
    ) else {
        panic!()
    };
    assert_eq!(u.attributes.as_path, Some(AsPath::sequence(vec![65001])));
    assert_eq!(u.attributes.med, Some(0));
    assert!(u.nlri.is_empty());
    assert!(u.treat_as_withdraw.is_none());
    // Read with 4-octet ASNs the 4-octet AS_PATH is malformed; with no NLRI the
    // treat-as-withdraw costs nothing.
    let Message::Update(u) = decode(
        include_str!("../testdata/dpkt_update_ipv6_mp_reach.hex"),
        CodecContext::default(),
    ) else {
        panic!()
    };
    assert!(u.treat_as_withdraw.is_some());
}
