//! Property tests: no input makes the codec or a session panic, and well-formed
//! UPDATEs survive encode/decode and any cutting of the stream.

mod common;

use std::net::Ipv4Addr;

use bgp::wire::{
    encode_announcements, AsPath, AsSegment, CodecContext, Framer, Message, Origin, PathAttributes,
    Update,
};
use bgp::{Direction, Ipv4Prefix, Session, State};

const OUT: Direction = Direction::Outbound;
use common::*;
use proptest::prelude::*;

fn contexts() -> [CodecContext; 2] {
    [
        CodecContext::default(),
        CodecContext {
            four_octet_as: false,
            ebgp: true,
        },
    ]
}

/// A valid header for `body` with message type `t`, so decoding reaches the body parsers.
fn framed(t: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    m.push(t);
    m.extend_from_slice(body);
    m
}

fn prefix() -> impl Strategy<Value = Ipv4Prefix> {
    (any::<u32>(), 0u8..=32).prop_map(|(a, l)| Ipv4Prefix::new(Ipv4Addr::from(a), l).unwrap())
}

fn attributes() -> impl Strategy<Value = PathAttributes> {
    let segment = prop_oneof![
        prop::collection::vec(1u32.., 1..6).prop_map(AsSegment::Sequence),
        prop::collection::vec(1u32.., 1..6).prop_map(AsSegment::Set),
    ];
    (
        prop_oneof![
            Just(Origin::Igp),
            Just(Origin::Egp),
            Just(Origin::Incomplete)
        ],
        prop::collection::vec(segment, 0..4),
        (1u32..0xdfff_ffff).prop_filter("unicast", |a| *a >> 24 != 0),
        proptest::option::of(any::<u32>()),
        prop::collection::vec(any::<u32>(), 0..5),
        any::<bool>(),
    )
        .prop_map(
            |(origin, segments, nh, med, communities, atomic)| PathAttributes {
                origin: Some(origin),
                as_path: Some(AsPath { segments }),
                next_hop: Some(Ipv4Addr::from(nh)),
                med,
                communities,
                atomic_aggregate: atomic,
                ..Default::default()
            },
        )
}

proptest! {
    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        for ctx in contexts() {
            let _ = Message::decode(&bytes, ctx);
        }
        let mut f = Framer::new();
        f.push(&bytes);
        while let Ok(Some(m)) = f.next_message() {
            let _ = Message::decode(&m, CodecContext::default());
        }
    }

    #[test]
    fn decoding_arbitrary_bodies_never_panics(t in 1u8..=5, body in prop::collection::vec(any::<u8>(), 0..600)) {
        let m = framed(t, &body);
        for ctx in contexts() {
            let _ = Message::decode(&m, ctx);
        }
    }

    /// UPDATE bodies built from plausible pieces reach deep into attribute parsing.
    #[test]
    fn decoding_structured_garbage_never_panics(
        withdrawn in prop::collection::vec(any::<u8>(), 0..20),
        attrs in prop::collection::vec((any::<u8>(), 0u8..40, prop::collection::vec(any::<u8>(), 0..20)), 0..6),
        nlri in prop::collection::vec(any::<u8>(), 0..20),
    ) {
        let mut a = Vec::new();
        for (flags, code, value) in attrs {
            a.extend_from_slice(&[flags & !0x10, code, value.len() as u8]);
            a.extend_from_slice(&value);
        }
        let mut body = (withdrawn.len() as u16).to_be_bytes().to_vec();
        body.extend_from_slice(&withdrawn);
        body.extend_from_slice(&(a.len() as u16).to_be_bytes());
        body.extend_from_slice(&a);
        body.extend_from_slice(&nlri);
        for ctx in contexts() {
            let _ = Message::decode(&framed(2, &body), ctx);
        }
    }

    #[test]
    fn update_round_trip(attrs in attributes(), nlri in prop::collection::vec(prefix(), 1..50), withdrawn in prop::collection::vec(prefix(), 0..50)) {
        for ctx in contexts() {
            let mut attrs = attrs.clone();
            if !ctx.four_octet_as {
                // 2-octet sessions carry only 2-octet ASNs in AS_PATH.
                for s in &mut attrs.as_path.as_mut().unwrap().segments {
                    let (AsSegment::Sequence(v) | AsSegment::Set(v)) = s;
                    for a in v.iter_mut() { *a = (*a % 0xfffe) + 1; }
                }
            }
            let u = Update { withdrawn: withdrawn.clone(), attributes: attrs, nlri: nlri.clone(), ..Default::default() };
            let bytes = Message::Update(u.clone()).encode(ctx);
            prop_assume!(bytes.len() <= 4096);
            prop_assert_eq!(Message::decode(&bytes, ctx).unwrap(), Message::Update(u));
        }
    }

    /// Many announcements, cut into arbitrary chunks, decode to the same prefixes.
    #[test]
    fn stream_cut_anywhere(attrs in attributes(), nlri in prop::collection::vec(prefix(), 1..2000), cuts in prop::collection::vec(1usize..300, 1..50)) {
        let ctx = CodecContext::default();
        let msgs = encode_announcements(&attrs, &nlri, ctx);
        let stream: Vec<u8> = msgs.concat();
        let mut f = Framer::new();
        let mut got = Vec::new();
        let mut rest = stream.as_slice();
        let mut i = 0;
        while !rest.is_empty() {
            let n = cuts[i % cuts.len()].min(rest.len());
            f.push(&rest[..n]);
            rest = &rest[n..];
            i += 1;
            while let Some(m) = f.next_message().unwrap() {
                prop_assert!(m.len() <= 4096);
                let Message::Update(u) = Message::decode(&m, ctx).unwrap() else { panic!("not an UPDATE") };
                prop_assert_eq!(&u.attributes, &attrs);
                got.extend(u.nlri);
            }
        }
        prop_assert_eq!(got, nlri);
    }

    /// An Established session fed garbage never panics and ends Established or Idle.
    #[test]
    fn session_survives_garbage(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..10)) {
        let mut pair = Pair::new(customer_config(), cloud_config());
        pair.start();
        let now = pair.now;
        let s: &mut Session = &mut pair.a.session;
        for c in &chunks {
            s.handle_bytes(now, OUT, c);
        }
        s.handle_timeout(now);
        prop_assert!(matches!(s.state(), State::Established | State::Idle));
    }
}

#[test]
fn an_as_set_survives_the_codec() {
    let attrs = PathAttributes {
        origin: Some(Origin::Incomplete),
        as_path: Some(AsPath {
            segments: vec![AsSegment::Sequence(vec![65000]), AsSegment::Set(vec![1, 2])],
        }),
        next_hop: Some(Ipv4Addr::new(169, 254, 10, 1)),
        ..Default::default()
    };
    let msgs = encode_announcements(
        &attrs,
        &["10.0.0.0/8".parse().unwrap()],
        CodecContext::default(),
    );
    let Message::Update(u) = Message::decode(&msgs[0], CodecContext::default()).unwrap() else {
        panic!()
    };
    assert_eq!(u.attributes.as_path.unwrap().path_len(), 2);
}
