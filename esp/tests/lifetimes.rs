//! Soft/hard byte and packet limits, inbound and outbound.

mod common;

use common::*;
use esp::*;

#[test]
fn outbound_packet_limits() {
    let suite = Suite::AesGcm16(AesKeySize::Aes128);
    let out = outbound(
        suite,
        false,
        Limits {
            soft_packets: Some(3),
            hard_packets: Some(5),
            ..Limits::default()
        },
    );
    let inner = inner_packet(false, 100);
    let events: Vec<_> = (0..5).map(|_| seal(&out, &inner).1.event).collect();
    assert_eq!(
        events,
        [
            None,
            None,
            Some(LifetimeEvent::Soft(LimitKind::Packets)),
            None,
            Some(LifetimeEvent::Hard(LimitKind::Packets))
        ]
    );
    let head = out.headroom();
    let mut buf = vec![0; head + inner.len() + out.tailroom()];
    buf[head..head + inner.len()].copy_from_slice(&inner);
    assert_eq!(
        out.encap(&mut buf, head, inner.len()).unwrap_err(),
        EncapError::SaExpired(LimitKind::Packets)
    );
    assert!(out.is_expired());
    assert_eq!(out.stats().refused_expired, 1);
    assert_eq!(out.stats().last_seq, 5);
}

#[test]
fn outbound_byte_limits() {
    let suite = Suite::AesCbc(AesKeySize::Aes128, Integrity::HmacSha1_96);
    let out = outbound(
        suite,
        false,
        Limits {
            soft_bytes: Some(1000),
            hard_bytes: Some(2000),
            ..Limits::default()
        },
    );
    let inner = inner_packet(true, 400);
    let events: Vec<_> = (0..5).map(|_| seal(&out, &inner).1.event).collect();
    assert_eq!(events[2], Some(LifetimeEvent::Soft(LimitKind::Bytes)));
    assert_eq!(events[4], Some(LifetimeEvent::Hard(LimitKind::Bytes)));
    assert_eq!(events.iter().flatten().count(), 2);
    let head = out.headroom();
    let mut buf = vec![0; head + inner.len() + out.tailroom()];
    buf[head..head + inner.len()].copy_from_slice(&inner);
    assert_eq!(
        out.encap(&mut buf, head, inner.len()).unwrap_err(),
        EncapError::SaExpired(LimitKind::Bytes)
    );
}

#[test]
fn inbound_limits_then_expired_drops() {
    let suite = Suite::AesGcm16(AesKeySize::Aes256);
    let out = outbound(suite, false, Limits::default());
    let inb = inbound(
        suite,
        false,
        64,
        Limits {
            soft_bytes: Some(150),
            hard_packets: Some(4),
            ..Limits::default()
        },
    );
    let inner = inner_packet(false, 60);
    let mut events = Vec::new();
    for _ in 0..4 {
        let (mut p, _) = seal(&out, &inner);
        events.push(inb.decap(&mut p).unwrap().event);
    }
    assert_eq!(
        events,
        [
            None,
            None,
            Some(LifetimeEvent::Soft(LimitKind::Bytes)),
            Some(LifetimeEvent::Hard(LimitKind::Packets))
        ]
    );
    let (mut p, _) = seal(&out, &inner);
    assert_eq!(inb.decap(&mut p), Err(DropReason::SaExpired));
    assert!(inb.is_expired());
    assert_eq!(inb.stats().drops.sa_expired, 1);
}
