//! Throughput of the paths that scale with the number of routes: decoding UPDATEs,
//! a session ingesting a full table, and Loc-RIB selection.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use bgp::wire::{
    encode_announcements, AsPath, CodecContext, Framer, Message, Open, Origin, PathAttributes,
};
use bgp::{Direction, Ipv4Prefix, Rib, Session, SessionConfig, SessionId};

const OUT: Direction = Direction::Outbound;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn prefixes(n: u32) -> Vec<Ipv4Prefix> {
    (0..n)
        .map(|i| Ipv4Prefix::new(Ipv4Addr::from(0x0a00_0000 | (i << 8)), 24).unwrap())
        .collect()
}

fn attrs() -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence(vec![65000, 64512, 64513])),
        next_hop: Some(Ipv4Addr::new(169, 254, 10, 1)),
        med: Some(10),
        communities: vec![(65000 << 16) | 100],
        ..Default::default()
    }
}

fn codec(c: &mut Criterion) {
    let ctx = CodecContext::default();
    let msgs = encode_announcements(&attrs(), &prefixes(1000), ctx);
    let full = msgs[0].clone();
    let n = match Message::decode(&full, ctx) {
        Ok(Message::Update(u)) => u.nlri.len() as u64,
        _ => 0,
    };
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Elements(n));
    g.bench_function("decode full 4096-octet UPDATE", |b| {
        b.iter(|| Message::decode(std::hint::black_box(&full), ctx))
    });
    let stream: Vec<u8> = encode_announcements(&attrs(), &prefixes(10_000), ctx).concat();
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("frame+decode 10k prefixes", |b| {
        b.iter(|| {
            let mut f = Framer::new();
            f.push(&stream);
            let mut count = 0;
            while let Ok(Some(m)) = f.next_message() {
                if let Ok(Message::Update(u)) = Message::decode(&m, ctx) {
                    count += u.nlri.len();
                }
            }
            count
        })
    });
    g.finish();
}

fn session(c: &mut Criterion) {
    let ctx = CodecContext::default();
    let mut open = Message::Open(Open::ours(65000, 90, Ipv4Addr::new(10, 0, 0, 1))).encode(ctx);
    open.extend(Message::Keepalive.encode(ctx));
    let table: Vec<u8> = encode_announcements(&attrs(), &prefixes(10_000), ctx).concat();
    let mut g = c.benchmark_group("session");
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("ingest 10k routes + Loc-RIB", |b| {
        b.iter(|| {
            let now = Instant::now();
            let cfg = SessionConfig::new(
                65001,
                Ipv4Addr::new(10, 0, 0, 2),
                Ipv4Addr::new(169, 254, 10, 2),
                Ipv4Addr::new(169, 254, 10, 1),
            );
            let mut s = Session::new(cfg).unwrap();
            let mut rib = Rib::new();
            s.start(now);
            s.handle_connected(now, OUT).unwrap();
            s.handle_bytes(now, OUT, &open);
            s.handle_bytes(now, OUT, &table);
            while let Some(ev) = s.poll_event() {
                rib.apply(SessionId(1), &ev);
            }
            rib.len()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("rib");
    let a = Arc::new(attrs());
    let ps = prefixes(10_000);
    g.throughput(Throughput::Elements(20_000));
    g.bench_function("two sessions x 10k, then one down", |b| {
        b.iter(|| {
            let mut rib = Rib::new();
            for p in &ps {
                rib.learn(SessionId(1), *p, a.clone());
                rib.learn(SessionId(2), *p, a.clone());
            }
            rib.peer_down(SessionId(1));
            while rib.poll_change().is_some() {}
            rib.len()
        })
    });
    g.finish();
}

criterion_group!(benches, codec, session);
criterion_main!(benches);
