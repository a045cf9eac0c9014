//! Codec edge cases: strict bounds, unknown payloads, substructure flags.
use super::*;

fn chain(ty_next: u8, critical: bool, body: &[u8]) -> Vec<u8> {
    let mut v = vec![ty_next, if critical { 0x80 } else { 0 }];
    v.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

#[test]
fn unknown_payloads_are_kept_with_their_critical_bit() {
    let mut buf = chain(PayloadType::NONCE, false, &[1, 2, 3]);
    buf.extend(chain(0, false, &[7; 16]));
    let p = decode_chain(200, &buf).unwrap();
    assert_eq!(
        p[0],
        Payload::Unknown {
            ty: 200,
            critical: false,
            body: vec![1, 2, 3]
        }
    );
    assert_eq!(p[1], Payload::Nonce(vec![7; 16]));
    let crit = decode_chain(201, &chain(0, true, &[])).unwrap();
    assert!(matches!(crit[0], Payload::Unknown { critical: true, .. }));
    let mut again = Vec::new();
    encode_chain(&crit, &mut again);
    assert_eq!(again, chain(0, true, &[]));
}

#[test]
fn lengths_are_checked() {
    // Generic header claiming more than is there.
    let mut b = chain(0, false, &[0; 20]);
    b.truncate(10);
    assert!(matches!(
        decode_chain(PayloadType::NONCE, &b),
        Err(DecodeError::Truncated { .. })
    ));
    // Length below the header size.
    assert!(matches!(
        decode_chain(PayloadType::NONCE, &[0, 0, 0, 3]),
        Err(DecodeError::BadLength { .. })
    ));
    // Nonce outside 16..=256 bytes.
    assert!(decode_chain(PayloadType::NONCE, &chain(0, false, &[1; 15])).is_err());
    // Bytes after the last payload.
    let mut t = chain(0, false, &[1; 16]);
    t.push(0);
    assert_eq!(
        decode_chain(PayloadType::NONCE, &t),
        Err(DecodeError::TrailingBytes)
    );
    // SK must be last.
    let mut sk = chain(PayloadType::NONCE, false, &[0; 32]);
    sk.extend(chain(0, false, &[1; 16]));
    assert_eq!(
        decode_chain(PayloadType::SK, &sk),
        Err(DecodeError::EncryptedNotLast)
    );
    // Header length beyond the datagram, and a wrong major version.
    let h = Header {
        spi_i: [1; 8],
        spi_r: [0; 8],
        next_payload: 0,
        version: 0x20,
        exchange: ExchangeType::IkeSaInit,
        flags: FLAG_INITIATOR,
        message_id: 0,
        length: 100,
    };
    let mut raw = Vec::new();
    h.encode(&mut raw);
    assert!(matches!(
        Message::decode(&raw),
        Err(DecodeError::Truncated { .. })
    ));
    raw[17] = 0x10;
    assert_eq!(
        Message::decode(&raw),
        Err(DecodeError::UnsupportedVersion(1))
    );
}

#[test]
fn sa_substructure_flags_and_attributes() {
    let t = Transform {
        ty: transform_type::ENCR,
        id: 12,
        attributes: vec![
            Attribute {
                ty: ATTR_KEY_LENGTH,
                tv: true,
                value: vec![0, 128],
            },
            Attribute {
                ty: 99,
                tv: false,
                value: vec![1, 2, 3],
            },
        ],
    };
    assert_eq!(t.key_length(), Some(128));
    let props = vec![
        Proposal {
            number: 1,
            protocol: protocol::ESP,
            spi: vec![1, 2, 3, 4],
            transforms: vec![t.clone(), Transform::new(transform_type::ESN, 0, None)],
        },
        Proposal {
            number: 2,
            protocol: protocol::ESP,
            spi: vec![5, 6, 7, 8],
            transforms: vec![t],
        },
    ];
    let mut b = Vec::new();
    encode_chain(&[Payload::Sa(props.clone())], &mut b);
    assert_eq!(
        decode_chain(PayloadType::SA, &b).unwrap(),
        vec![Payload::Sa(props)]
    );
    // A "more proposals follow" flag on the last proposal is refused.
    let mut bad = b.clone();
    let second = 4 + usize::from(u16::from_be_bytes([bad[6], bad[7]]));
    bad[second] = 2;
    assert!(decode_chain(PayloadType::SA, &bad).is_err());
}

#[test]
fn traffic_selectors_round_trip_and_intersect() {
    let any4 = TrafficSelector::any(false);
    let any6 = TrafficSelector::any(true);
    let mut b = Vec::new();
    encode_chain(&[Payload::TsI(vec![any4, any6])], &mut b);
    assert_eq!(
        decode_chain(PayloadType::TSI, &b).unwrap(),
        vec![Payload::TsI(vec![any4, any6])]
    );
    let web = TrafficSelector {
        ip_proto: 6,
        start_port: 443,
        end_port: 443,
        start: "10.0.0.0".parse().unwrap(),
        end: "10.0.0.255".parse().unwrap(),
    };
    assert_eq!(any4.intersect(&web), Some(web));
    assert_eq!(any6.intersect(&web), None);
    // A v4 selector with a v6 length is refused.
    let mut bad = b.clone();
    bad[4 + 4 + 3] = 40;
    assert!(decode_chain(PayloadType::TSI, &bad).is_err());
}
