//! Codec speed on two messages kept in `benches/data/` (the GoBGP benchmark
//! in `benches/gobgp/` decodes the very same bytes):
//! - `full-update.hex`: a 4095-byte UPDATE of 1002 IPv4 /24 prefixes
//!   sharing one attribute set;
//! - `ibgp-update.hex`: one prefix with a typical iBGP attribute set
//!   (ORIGIN, AS_PATH, NEXT_HOP, MED, LOCAL_PREF, COMMUNITIES, LARGE_COMMUNITY).
//!
//! `cargo bench -p bgp --bench wire`; criterion prints prefixes per second
//! ("elem/s") for the first and time per message for the second.

use std::hint::black_box;

use bgp::wire::{Context, Message, MAX_MESSAGE_LEN};
use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

#[path = "../tests/common/mod.rs"]
mod common;

fn bench(c: &mut Criterion) {
    let ctx = Context::modern();
    let mut out = BytesMut::with_capacity(MAX_MESSAGE_LEN);

    let full = common::hex(include_str!("data/full-update.hex"));
    let Ok(Message::Update(update)) = Message::decode(&full, &ctx) else {
        panic!("full-update.hex is not an UPDATE");
    };
    let n = update.nlri.len();
    let message = Message::Update(update);
    let mut g = c.benchmark_group("full_update");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(format!("decode_{n}_prefixes"), |b| {
        b.iter(|| Message::decode(black_box(&full), &ctx).expect("decodes"))
    });
    g.bench_function(format!("encode_{n}_prefixes"), |b| {
        b.iter(|| {
            out.clear();
            black_box(&message).encode(&ctx, &mut out).expect("encodes");
        })
    });
    g.finish();

    let typical = common::hex(include_str!("data/ibgp-update.hex"));
    let message = Message::decode(&typical, &ctx).expect("ibgp-update.hex decodes");
    let mut g = c.benchmark_group("ibgp_attributes");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode", |b| {
        b.iter(|| Message::decode(black_box(&typical), &ctx).expect("decodes"))
    });
    g.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            black_box(&message).encode(&ctx, &mut out).expect("encodes");
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
