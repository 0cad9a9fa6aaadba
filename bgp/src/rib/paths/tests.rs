use super::*;
use std::net::Ipv4Addr;
use std::sync::Arc;

use ipnet::IpNet;
use proptest::prelude::*;

use crate::rib::{LossReason, PathAttrs};
use crate::wire::NextHop;

thread_local! {
    /// The attribute set every test path shares: its count tells whether
    /// a path was lost (not dropped) or dropped twice.
    static ATTRS: Arc<PathAttrs> =
        Arc::new(PathAttrs::new(&[], NextHop::V4(Ipv4Addr::LOCALHOST)));
}

fn attrs() -> Arc<PathAttrs> {
    ATTRS.with(Arc::clone)
}

/// Paths alive in this thread's tests.
fn alive() -> usize {
    ATTRS.with(Arc::strong_count) - 1
}

fn path(peer: u32) -> Path {
    Path {
        peer,
        path_id: 0,
        attrs: attrs(),
        stale: false,
        since: 0,
        multipath: false,
        reason: Some(LossReason::PathId),
    }
}

fn peers(store: &Store, paths: &Paths) -> Vec<u32> {
    store.get(paths).iter().map(|p| p.peer).collect()
}

/// Every chunk's books agree with the arrays `live` names: arrays in use
/// counted, none named twice or listed free, open chunks listed once, the
/// spare empty, and no path held but theirs.
fn check(store: &Store, live: &[&Paths]) {
    let mut in_use = std::collections::HashSet::new();
    for paths in live {
        if let Paths::Many(h) = paths {
            assert!(in_use.insert(*h), "{h:?} named twice");
        }
    }
    for (i, class) in store.classes.iter().enumerate() {
        let len = i + 2;
        for (c, chunk) in class.chunks.iter().enumerate() {
            let Some(chunk) = chunk else {
                assert!(class.vacant.contains(&(c as u32)));
                continue;
            };
            assert_eq!(
                usize::from(chunk.used) + chunk.free.len(),
                usize::from(chunk.handed)
            );
            let named: Vec<u16> = in_use
                .iter()
                .filter(|h| usize::from(h.len) == len && h.chunk == c as u32)
                .map(|h| h.array)
                .collect();
            assert_eq!(
                usize::from(chunk.used),
                named.len(),
                "class {len} chunk {c}"
            );
            assert!(named
                .iter()
                .all(|a| !chunk.free.contains(a) && *a < chunk.handed));
            let listed = class.open.iter().filter(|&&o| o == c as u32).count();
            assert_eq!(listed, usize::from(chunk.open));
            assert_eq!(chunk.open, !chunk.full());
            assert!(chunk.used > 0, "an empty chunk is held");
            assert_eq!(chunk.paths.len(), CHUNK_PATHS);
        }
    }
    assert!(store.spare.len() <= SPARE_CHUNKS);
    let held: usize = live.iter().map(|p| store.get(p).len()).sum();
    assert_eq!(alive(), held, "paths alive besides those held");
}

#[test]
fn a_prefix_costs_no_more_than_one_path() {
    assert_eq!(std::mem::size_of::<Path>(), 24);
    assert_eq!(std::mem::size_of::<Paths>(), 24);
}

#[test]
fn push_and_remove_keep_every_path_as_it_moves_between_lengths() {
    let mut store = Store::default();
    let mut ps = Paths::default();
    assert!(store.get(&ps).is_empty());
    for peer in 0..40 {
        store.push(&mut ps, path(peer));
        assert_eq!(peers(&store, &ps), (0..=peer).collect::<Vec<_>>());
        check(&store, &[&ps]);
    }
    assert!(matches!(ps, Paths::Big(_)));
    assert_eq!(store.swap_remove(&mut ps, 0).peer, 0);
    assert_eq!(peers(&store, &ps)[0], 39);
    while store.get(&ps).len() > 1 {
        let before = peers(&store, &ps);
        let gone = store.swap_remove(&mut ps, 1);
        assert_eq!(gone.peer, before[1]);
        drop(gone);
        check(&store, &[&ps]);
    }
    assert!(matches!(ps, Paths::One(ref p) if p.peer == 39));
    store.get_mut(&mut ps)[0].stale = true;
    assert!(store.swap_remove(&mut ps, 0).stale);
    assert!(matches!(ps, Paths::Empty));
    check(&store, &[]);
}

#[test]
fn chunks_whose_arrays_are_all_free_go_and_a_few_are_kept_for_the_next() {
    let mut store = Store::default();
    let mut prefixes: Vec<Paths> = (0..5000).map(|_| Paths::default()).collect();
    for peer in 0..3 {
        for ps in prefixes.iter_mut() {
            store.push(ps, path(peer));
        }
    }
    // 5,000 arrays of three: several chunks of that length.
    let three = store.classes[1].chunks.iter().flatten().count();
    assert!(three >= 3, "{three} chunks");
    for ps in prefixes.iter_mut() {
        store.swap_remove(ps, 2);
        store.swap_remove(ps, 1);
    }
    check(&store, &prefixes.iter().collect::<Vec<_>>());
    assert_eq!(store.chunks(), 0);
    assert!(!store.spare.is_empty());
    // A length not seen before takes the memory of one that went, and
    // the lengths passed on the way give theirs back.
    let kept: Vec<*const MaybeUninit<Path>> = store.spare.iter().map(|b| b.as_ptr()).collect();
    for peer in 1..4 {
        store.push(&mut prefixes[0], path(peer));
    }
    assert_eq!(store.chunks(), 1);
    assert_eq!(store.spare.len(), kept.len() - 1);
    let four = store.classes[2]
        .chunks
        .iter()
        .flatten()
        .next()
        .map(|c| c.paths.as_ptr());
    assert!(four.is_some_and(|p| kept.contains(&p)));
    for ps in prefixes.iter_mut() {
        store.clear(ps);
        assert!(matches!(ps, Paths::Empty));
    }
    check(&store, &[]);
}

#[test]
fn a_prefix_keeps_its_array_while_at_most_a_quarter_goes_unused() {
    let mut store = Store::default();
    let mut ps = Paths::default();
    for peer in 0..8 {
        store.push(&mut ps, path(peer));
    }
    let Paths::Many(eight) = ps else {
        panic!("{ps:?}")
    };
    let where_ = |p: &Paths| match p {
        Paths::Many(h) => (h.len, h.chunk, h.array, h.count),
        _ => panic!("{p:?}"),
    };
    // Two of eight go: the same array.
    drop(store.swap_remove(&mut ps, 0));
    drop(store.swap_remove(&mut ps, 3));
    assert_eq!(where_(&ps), (8, eight.chunk, eight.array, 6));
    check(&store, &[&ps]);
    // One comes back: still no move.
    store.push(&mut ps, path(100));
    assert_eq!(where_(&ps), (8, eight.chunk, eight.array, 7));
    assert_eq!(peers(&store, &ps), [7, 1, 2, 6, 4, 5, 100]);
    // Down to five: an array of five.
    drop(store.swap_remove(&mut ps, 6));
    drop(store.swap_remove(&mut ps, 0));
    assert_eq!(where_(&ps).0, 5);
    assert_eq!(peers(&store, &ps), [5, 1, 2, 6, 4]);
    check(&store, &[&ps]);
    store.clear(&mut ps);
    check(&store, &[]);
}

#[test]
fn the_prefixes_drop_the_paths_they_hold_in_the_store() {
    let mut dests = crate::rib::dests::Dests::default();
    for i in 0..100u8 {
        let prefix: IpNet = format!("10.0.{i}.0/24").parse().expect("a prefix");
        let mut paths = dests.entry(prefix);
        for peer in 0..u32::from(i % 9) {
            paths.push(path(peer));
        }
        if i % 4 == 0 && paths.len() > 2 {
            drop(paths.swap_remove(0));
        }
    }
    assert!(alive() > 0);
    drop(dests);
    assert_eq!(alive(), 0);
}

#[derive(Debug, Clone)]
enum Op {
    Push(usize),
    Remove(usize, usize),
    Clear(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..6usize).prop_map(Op::Push),
        2 => (0..6usize, 0..64usize).prop_map(|(p, at)| Op::Remove(p, at)),
        1 => (0..6usize).prop_map(Op::Clear),
    ]
}

proptest! {
    #[test]
    fn the_store_holds_what_a_vector_would(
        ops in proptest::collection::vec(op(), 1..400),
    ) {
        let mut store = Store::default();
        let mut held: Vec<Paths> = (0..6).map(|_| Paths::default()).collect();
        let mut model: Vec<Vec<u32>> = vec![Vec::new(); 6];
        let mut next = 0;
        for op in ops {
            match op {
                Op::Push(p) => {
                    // Bursts, so that arrays pass the longest kept length.
                    for _ in 0..1 + next % 9 {
                        store.push(&mut held[p], path(next));
                        model[p].push(next);
                        next += 1;
                    }
                }
                Op::Remove(p, at) if !model[p].is_empty() => {
                    let at = at % model[p].len();
                    prop_assert_eq!(store.swap_remove(&mut held[p], at).peer, model[p].swap_remove(at));
                }
                Op::Remove(..) => {}
                Op::Clear(p) => {
                    store.clear(&mut held[p]);
                    model[p].clear();
                }
            }
            for (ps, m) in held.iter().zip(&model) {
                prop_assert_eq!(&peers(&store, ps), m);
            }
            check(&store, &held.iter().collect::<Vec<_>>());
        }
        for ps in held.iter_mut() {
            store.clear(ps);
        }
        check(&store, &[]);
    }
}
