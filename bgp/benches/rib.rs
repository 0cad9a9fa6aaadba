//! RIB speed and memory: 10 peers each announce the same 100,000 IPv4
//! prefixes with an attribute set of their own (so every prefix has ten
//! paths to choose from), then one peer is withdrawn entirely.
//!
//! `cargo bench -p bgp --bench rib` prints paths per second for loading and
//! for the withdrawal, and the heap bytes held per path, counted by a
//! global allocator that tracks live bytes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bgp::rib::{DecisionConfig, PathAttrs, PeerId, PeerInfo, Rib};
use bgp::wire::{AsPath, AttrValue, NextHop, Nlri, Origin, PathAttribute};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ipnet::{IpNet, Ipv4Net};

/// The system allocator, counting the bytes live at any moment.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const PEERS: u8 = 10;
const PREFIXES: u32 = 100_000;
/// Prefixes per UPDATE, as a full 4096-byte UPDATE of /24s carries.
const PER_UPDATE: usize = 1000;

fn prefixes() -> Vec<Nlri> {
    (0..PREFIXES)
        .map(|i| {
            let addr = Ipv4Addr::from(0x0a00_0000 + (i << 8));
            Nlri::new(IpNet::V4(Ipv4Net::new(addr, 24).expect("valid prefix")))
        })
        .collect()
}

/// Peer `n`'s attribute set: paths of different lengths and MEDs, so the
/// decision process has to look past the first steps.
fn attrs(n: u8) -> PathAttrs {
    let path: Vec<u32> = (0..u32::from(n % 3 + 1)).map(|i| 64512 + i).collect();
    let values = [
        AttrValue::Origin(Origin::Igp),
        AttrValue::AsPath(AsPath::sequence(path)),
        AttrValue::MultiExitDisc(u32::from(n)),
        AttrValue::LocalPref(100),
    ];
    let list: Vec<PathAttribute> = values.into_iter().map(PathAttribute::new).collect();
    PathAttrs::new(&list, NextHop::V4(Ipv4Addr::new(172, 18, 0, n + 1)))
}

fn new_rib() -> (Rib, Vec<PeerId>) {
    let mut rib = Rib::new(DecisionConfig::default());
    let peers = (0..PEERS)
        .map(|n| {
            rib.add_peer(PeerInfo {
                address: IpAddr::V4(Ipv4Addr::new(172, 18, 0, n + 1)),
                router_id: Ipv4Addr::new(10, 255, 0, n + 1),
                ebgp: false,
                local: false,
            })
        })
        .collect();
    (rib, peers)
}

fn load(rib: &mut Rib, peers: &[PeerId], nlri: &[Nlri]) {
    for (n, &peer) in peers.iter().enumerate() {
        for chunk in nlri.chunks(PER_UPDATE) {
            rib.announce(peer, chunk, attrs(n as u8));
            // The driver hands changes on as they come.
            drop(black_box(rib.take_changes()));
        }
    }
}

fn bench(c: &mut Criterion) {
    let nlri = prefixes();
    let paths = u64::from(PEERS) * u64::from(PREFIXES);

    // Memory: live heap bytes per path once everything is loaded.
    let (mut rib, peers) = new_rib();
    let before = LIVE.load(Ordering::Relaxed);
    load(&mut rib, &peers, &nlri);
    let held = LIVE.load(Ordering::Relaxed) - before;
    println!(
        "rib memory: {} paths over {} prefixes with {} attribute sets hold {} bytes of heap: {:.1} bytes/path",
        rib.path_count(),
        rib.prefix_count(),
        rib.attr_set_count(),
        held,
        held as f64 / rib.path_count() as f64
    );
    drop(rib);

    let mut g = c.benchmark_group("rib");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(paths));
    g.bench_function("load_10_peers_x_100k", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (mut rib, peers) = new_rib();
                let start = Instant::now();
                load(&mut rib, &peers, &nlri);
                total += start.elapsed();
                drop(black_box(rib));
            }
            total
        })
    });
    g.throughput(Throughput::Elements(u64::from(PREFIXES)));
    g.bench_function("withdraw_one_peer_of_10", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (mut rib, peers) = new_rib();
                load(&mut rib, &peers, &nlri);
                let start = Instant::now();
                rib.remove_peer(peers[0]);
                drop(black_box(rib.take_changes()));
                total += start.elapsed();
            }
            total
        })
    });
    // As the daemon meets it: peer 0's prefixes withdrawn an UPDATE's worth
    // at a time, the changes taken into a kept buffer after each, from a
    // table the caches no longer hold (a second table loaded after it).
    g.bench_function("withdraw_in_updates_cold", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut changes = Vec::new();
            for _ in 0..iters {
                let (mut rib, peers) = new_rib();
                load(&mut rib, &peers, &nlri);
                let (mut other, others) = new_rib();
                load(&mut other, &others, &nlri);
                let start = Instant::now();
                for chunk in nlri.chunks(PER_UPDATE) {
                    rib.withdraw(peers[0], chunk);
                    rib.take_changes_into(&mut changes);
                    black_box(&changes);
                    changes.clear();
                }
                total += start.elapsed();
                drop(black_box((rib, other)));
            }
            total
        })
    });
    g.finish();
}

/// The same table through the whole speaker: each peer's UPDATEs as bytes,
/// decoded with its session's context, imported, selected and handed to the
/// FIB queue — what a daemon does with a table arriving over TCP, without
/// the TCP. The withdrawal comes as UPDATEs too.
mod over_sessions {
    use super::*;
    use bgp::session::SessionConfig;
    use bgp::speaker::{Input, PeerConfig, Speaker, SpeakerConfig};
    use bgp::wire::pack::{announcements, withdrawals};
    use bgp::wire::{Context, Family, Message};
    use bytes::Bytes;

    // Not in the AS_PATHs of `attrs`, or every path would be a loop.
    const LOCAL_AS: u32 = 65000;

    fn address(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(172, 18, 0, n + 1))
    }

    /// A speaker with the ten peers Established, and the context their
    /// UPDATEs decode with.
    pub fn speaker(now: Instant) -> (Speaker, Vec<PeerId>, Context) {
        let router_id = Ipv4Addr::new(10, 255, 255, 1);
        let mut sp = Speaker::new(now, SpeakerConfig::new(LOCAL_AS, router_id));
        let mut ids = Vec::new();
        for n in 0..PEERS {
            let mut session = SessionConfig::new(LOCAL_AS, router_id, LOCAL_AS);
            session.passive = true;
            let id = sp
                .add_peer(now, PeerConfig::new(address(n), session))
                .expect("peer");
            let conn = u64::from(n);
            let local = IpAddr::V4(Ipv4Addr::new(172, 18, 0, 100));
            sp.handle(
                now,
                id,
                Input::Accepted {
                    conn,
                    local: local.into(),
                },
            );
            let theirs = SessionConfig::new(LOCAL_AS, Ipv4Addr::new(10, 255, 0, n + 1), LOCAL_AS);
            for message in [Message::Open(theirs.open()), Message::Keepalive] {
                sp.handle(now, id, Input::Message { conn, message });
            }
            ids.push(id);
        }
        drop(sp.poll(now));
        let ctx = sp
            .status(ids[0])
            .and_then(|s| s.negotiated.map(|n| n.rx()))
            .expect("Established");
        (sp, ids, ctx)
    }

    /// Each peer's table as UPDATE bytes, 4096-byte messages.
    pub fn tables(nlri: &[Nlri]) -> Vec<Vec<Bytes>> {
        let ctx = Context::modern();
        (0..PEERS)
            .map(|n| {
                let a = attrs(n);
                announcements(
                    a.attributes(),
                    a.next_hop(),
                    Family::IPV4_UNICAST,
                    nlri,
                    &ctx,
                )
                .expect("packs")
                .into_iter()
                .map(|u| Message::Update(u).to_bytes(&ctx).expect("encodes"))
                .collect()
            })
            .collect()
    }

    pub fn withdrawal(nlri: &[Nlri]) -> Vec<Bytes> {
        let ctx = Context::modern();
        withdrawals(Family::IPV4_UNICAST, nlri, &ctx)
            .expect("packs")
            .into_iter()
            .map(|u| Message::Update(u).to_bytes(&ctx).expect("encodes"))
            .collect()
    }

    /// Feed `updates` from peer `n`, polling and draining the FIB queue
    /// after every message as the agent's loop does.
    pub fn feed(
        sp: &mut Speaker,
        now: Instant,
        id: PeerId,
        n: u8,
        ctx: &Context,
        updates: &[Bytes],
    ) {
        let conn = u64::from(n);
        for bytes in updates {
            let message = Message::decode(bytes, ctx).expect("decodes");
            sp.handle(now, id, Input::Message { conn, message });
            drop(black_box(sp.poll(now)));
            drop(black_box(sp.take_best_changes()));
        }
    }
}

fn bench_speaker(c: &mut Criterion) {
    use over_sessions::{feed, speaker, tables, withdrawal};
    let nlri = prefixes();
    let tables = tables(&nlri);
    let gone = withdrawal(&nlri);
    let paths = u64::from(PEERS) * u64::from(PREFIXES);
    let now = Instant::now();

    let (mut sp, ids, ctx) = speaker(now);
    let before = LIVE.load(Ordering::Relaxed);
    for (n, id) in ids.iter().enumerate() {
        feed(&mut sp, now, *id, n as u8, &ctx, &tables[n]);
    }
    let held = LIVE.load(Ordering::Relaxed) - before;
    println!(
        "speaker memory: {} paths loaded over 10 sessions hold {} bytes of heap: {:.1} bytes/path",
        sp.rib().path_count(),
        held,
        held as f64 / sp.rib().path_count() as f64
    );
    drop(sp);

    let mut g = c.benchmark_group("speaker");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(30));
    g.throughput(Throughput::Elements(paths));
    g.bench_function("load_10_sessions_x_100k", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (mut sp, ids, ctx) = speaker(now);
                let start = Instant::now();
                for (n, id) in ids.iter().enumerate() {
                    feed(&mut sp, now, *id, n as u8, &ctx, &tables[n]);
                }
                total += start.elapsed();
                drop(black_box(sp));
            }
            total
        })
    });
    g.throughput(Throughput::Elements(u64::from(PREFIXES)));
    g.bench_function("withdraw_one_session_of_10", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (mut sp, ids, ctx) = speaker(now);
                for (n, id) in ids.iter().enumerate() {
                    feed(&mut sp, now, *id, n as u8, &ctx, &tables[n]);
                }
                let start = Instant::now();
                feed(&mut sp, now, ids[0], 0, &ctx, &gone);
                total += start.elapsed();
                drop(black_box(sp));
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, bench, bench_speaker);
criterion_main!(benches);
