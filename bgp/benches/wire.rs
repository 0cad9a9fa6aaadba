//! Codec speed: a full 4096-byte UPDATE of IPv4 /24 NLRI sharing one
//! attribute set, and an UPDATE with a typical iBGP attribute set.
//!
//! `cargo bench -p bgp --bench wire`; criterion prints prefixes per second
//! ("elem/s") for the first and time per message for the second.

use std::hint::black_box;
use std::net::Ipv4Addr;

use bgp::wire::{
    smallvec, AsPath, AttrValue, Community, Context, LargeCommunity, Message, Nlri, Origin, Update,
    MAX_MESSAGE_LEN,
};
use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ipnet::{IpNet, Ipv4Net};

fn ibgp_attributes() -> Vec<AttrValue> {
    vec![
        AttrValue::Origin(Origin::Igp),
        AttrValue::AsPath(AsPath::sequence([64513, 65001])),
        AttrValue::NextHop(Ipv4Addr::new(172, 18, 0, 3)),
        AttrValue::MultiExitDisc(0),
        AttrValue::LocalPref(100),
        AttrValue::Communities(smallvec![
            Community::new(64512, 100),
            Community::new(64512, 200)
        ]),
        AttrValue::LargeCommunities(smallvec![LargeCommunity::new(64512, 1, 2)]),
    ]
}

fn slash24(i: u32) -> Nlri {
    let addr = Ipv4Addr::from(0x0a00_0000 + (i << 8));
    Nlri::new(IpNet::V4(Ipv4Net::new(addr, 24).expect("valid prefix")))
}

/// As many /24s as fit in one 4096-byte UPDATE with the shared attributes.
fn full_update(ctx: &Context) -> (Message, usize) {
    let attrs = ibgp_attributes();
    let base = Message::Update(Update::new(attrs.clone(), vec![]))
        .to_bytes(ctx)
        .expect("encodes")
        .len();
    let n = (MAX_MESSAGE_LEN - base) / 4;
    let m = Message::Update(Update::new(attrs, (0..n as u32).map(slash24).collect()));
    (m, n)
}

fn bench(c: &mut Criterion) {
    let ctx = Context::modern();

    let (full, n) = full_update(&ctx);
    let bytes = full.to_bytes(&ctx).expect("encodes");
    assert_eq!(bytes.len(), MAX_MESSAGE_LEN.min(bytes.len()));
    let mut g = c.benchmark_group("full_update");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(format!("decode_{n}_prefixes"), |b| {
        b.iter(|| Message::decode(black_box(&bytes), &ctx).expect("decodes"))
    });
    let mut out = BytesMut::with_capacity(MAX_MESSAGE_LEN);
    g.bench_function(format!("encode_{n}_prefixes"), |b| {
        b.iter(|| {
            out.clear();
            black_box(&full).encode(&ctx, &mut out).expect("encodes");
        })
    });
    g.finish();

    let typical = Message::Update(Update::new(ibgp_attributes(), vec![slash24(1)]));
    let bytes = typical.to_bytes(&ctx).expect("encodes");
    let mut g = c.benchmark_group("ibgp_attributes");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode", |b| {
        b.iter(|| Message::decode(black_box(&bytes), &ctx).expect("decodes"))
    });
    g.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            black_box(&typical).encode(&ctx, &mut out).expect("encodes");
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
