//! The RIB decides most paths incrementally (a new path against the best, a
//! removed loser without a decision at all). Here random sequences of
//! announcements, withdrawals, sessions going down and next-hop changes are
//! checked, after every step, against the decision process run from scratch
//! on every prefix: each path's reason and multipath flag, and a change
//! recorded exactly when the selection changed, holding the selection.

use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;

use super::decider::{candidate, key, PathKey, Selection};
use super::decision::eliminate;
use super::*;
use crate::wire::{AsPath, AttrValue, NextHop, Origin, PathAttribute};

const PREFIXES: u8 = 3;

fn prefix(i: u8) -> IpNet {
    IpNet::new(IpAddr::V4(Ipv4Addr::new(10, i, 0, 0)), 16).expect("prefix")
}

#[derive(Debug, Clone)]
enum Op {
    Announce {
        peer: usize,
        prefixes: u8,
        path_id: u32,
        local_pref: u32,
        path: Vec<u32>,
        med: u32,
        origin: u8,
        next_hop: u8,
    },
    Withdraw {
        peer: usize,
        prefixes: u8,
        path_id: u32,
    },
    NextHop {
        next_hop: u8,
        cost: Option<u32>,
    },
    /// The peer's session goes: all its paths at once.
    Down {
        peer: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (
            (0usize..5, 1u8..8, 0u32..2),
            (
                prop_oneof![Just(100u32), Just(200)],
                proptest::collection::vec(65000u32..65002, 0..3),
                0u32..3,
                0u8..3,
                0u8..3,
            ),
        )
            .prop_map(|((peer, prefixes, path_id), (local_pref, path, med, origin, next_hop))| {
                Op::Announce { peer, prefixes, path_id, local_pref, path, med, origin, next_hop }
            }),
        2 => (0usize..5, 1u8..8, 0u32..2)
            .prop_map(|(peer, prefixes, path_id)| Op::Withdraw { peer, prefixes, path_id }),
        1 => (0u8..3, proptest::option::of(0u32..3))
            .prop_map(|(next_hop, cost)| Op::NextHop { next_hop, cost }),
        1 => (0usize..5).prop_map(|peer| Op::Down { peer }),
    ]
}

fn next_hop(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(172, 16, 0, n + 1)
}

fn nlri(prefixes: u8, path_id: u32) -> Vec<Nlri> {
    (0..PREFIXES)
        .filter(|i| prefixes & (1 << i) != 0)
        .map(|i| Nlri {
            prefix: prefix(i),
            path_id: Some(path_id),
        })
        .collect()
}

fn apply(rib: &mut Rib, peers: &[PeerId], op: &Op) {
    match op {
        Op::Announce {
            peer,
            prefixes,
            path_id,
            local_pref,
            path,
            med,
            origin,
            next_hop: nh,
        } => {
            let origin = [Origin::Igp, Origin::Egp, Origin::Incomplete][usize::from(*origin)];
            let values = [
                AttrValue::Origin(origin),
                AttrValue::AsPath(AsPath::sequence(path.iter().copied())),
                AttrValue::MultiExitDisc(*med),
                AttrValue::LocalPref(*local_pref),
            ];
            let list: Vec<PathAttribute> = values.into_iter().map(PathAttribute::new).collect();
            let attrs = PathAttrs::new(&list, NextHop::V4(next_hop(*nh)));
            rib.announce(peers[*peer], &nlri(*prefixes, *path_id), attrs);
        }
        Op::Withdraw {
            peer,
            prefixes,
            path_id,
        } => {
            rib.withdraw(peers[*peer], &nlri(*prefixes, *path_id));
        }
        Op::NextHop { next_hop: nh, cost } => {
            let reach = match cost {
                Some(igp_cost) => Reachability::Reachable {
                    igp_cost: *igp_cost,
                },
                None => Reachability::Unreachable,
            };
            rib.set_next_hop(IpAddr::V4(next_hop(*nh)), reach);
        }
        Op::Down { peer } => rib.withdraw_family(peers[*peer], Family::IPV4_UNICAST),
    }
}

fn new_rib(always_compare_med: bool) -> (Rib, Vec<PeerId>) {
    let mut rib = Rib::new(DecisionConfig { always_compare_med });
    let peers = (0..5u8)
        .map(|n| {
            rib.add_peer(PeerInfo {
                address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, n + 1)),
                // Two peers share a router id: the tie goes on to the address.
                router_id: Ipv4Addr::new(192, 0, 2, n.min(3) + 1),
                ebgp: n >= 3,
                local: false,
            })
        })
        .collect();
    (rib, peers)
}

/// What the decision process from scratch makes of `prefix`: each path's
/// (reason, multipath) in the order held, and the selection.
fn expected(rib: &Rib, prefix: &IpNet) -> (Vec<(Option<LossReason>, bool)>, Selection) {
    let Some(paths) = rib.dests.get(prefix) else {
        return (Vec::new(), Selection::default());
    };
    let candidates: Vec<Candidate> = paths
        .iter()
        .map(|p| candidate(p, &rib.peers, &rib.next_hops))
        .collect();
    let mut out = Outcome::default();
    eliminate(&candidates, &rib.config, &mut out);
    let states = (0..paths.len())
        .map(|i| (out.reasons[i], out.multipath.contains(&i)))
        .collect();
    let best = out.best.map(|i| key(&paths[i]));
    let mut multipath: SmallVec<[PathKey; 4]> = out
        .multipath
        .iter()
        .filter(|_| best.is_some())
        .map(|&i| key(&paths[i]))
        .collect();
    multipath.sort_unstable();
    (states, (best, multipath))
}

fn route_key(r: &Route) -> PathKey {
    (r.peer, r.path_id, Arc::as_ptr(&r.attrs) as usize)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn incremental_decisions_equal_the_decision_from_scratch(
        ops in proptest::collection::vec(op(), 1..40),
        always_compare_med in any::<bool>(),
    ) {
        let (mut rib, peers) = new_rib(always_compare_med);
        let mut selected: Vec<Selection> = vec![Selection::default(); usize::from(PREFIXES)];
        for op in &ops {
            apply(&mut rib, &peers, op);
            let changes = rib.take_changes();
            for i in 0..PREFIXES {
                let p = prefix(i);
                let (states, now) = expected(&rib, &p);
                let held: Vec<(Option<LossReason>, bool)> = rib
                    .dests
                    .get(&p)
                    .map(|paths| paths.iter().map(|x| (x.reason, x.multipath)).collect())
                    .unwrap_or_default();
                prop_assert_eq!(&held, &states, "paths of {} after {:?}", p, op);
                let recorded: Vec<&BestChange> = changes.iter().filter(|c| c.prefix == p).collect();
                let was = std::mem::replace(&mut selected[usize::from(i)], now.clone());
                if was == now {
                    prop_assert!(recorded.is_empty(), "{} recorded as changed after {:?}", p, op);
                } else {
                    prop_assert_eq!(recorded.len(), 1, "{} changed once after {:?}", p, op);
                    let c = recorded[0];
                    prop_assert_eq!(c.best.as_ref().map(route_key), now.0);
                    let mut multipath: Vec<PathKey> = c.multipath.iter().map(route_key).collect();
                    multipath.sort_unstable();
                    prop_assert_eq!(multipath.as_slice(), now.1.as_slice());
                }
            }
        }
    }
}

#[test]
fn buffers_let_go_keep_the_changes_not_yet_taken() {
    let (mut rib, peers) = new_rib(false);
    let attrs = PathAttrs::new(&[], NextHop::V4(next_hop(0)));
    let many: Vec<Nlri> = (0..5000u32)
        .map(|i| Nlri {
            prefix: IpNet::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i << 8))), 24)
                .expect("prefix"),
            path_id: None,
        })
        .collect();
    rib.announce(peers[0], &many, attrs.clone());
    let mut out = Vec::new();
    rib.take_changes_into(&mut out);
    assert_eq!(out.len(), 5000);
    assert!(rib.buffers_held() > 0);
    // Changes waiting when the buffers go stay, and come out whole.
    rib.announce(peers[1], &many[..1], attrs);
    let waiting = rib.pending_changes();
    assert!(waiting > 0);
    rib.release_buffers();
    assert_eq!(rib.pending_changes(), waiting);
    assert_eq!(rib.take_changes().len(), waiting);
    rib.withdraw(peers[0], &many[..1]);
    rib.release_buffers();
    let changes = rib.take_changes();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].prefix, many[0].prefix);
    assert_eq!(changes[0].best.as_ref().map(|r| r.peer), Some(peers[1]));
    rib.release_buffers();
    assert_eq!(rib.buffers_held(), 0);
    assert_eq!(rib.path_count(), 5000);
}

#[test]
fn changes_taken_into_a_buffer_keep_their_order() {
    let (mut rib, peers) = new_rib(false);
    let attrs = PathAttrs::new(&[], NextHop::V4(next_hop(0)));
    let nlri = |i: u8| Nlri {
        prefix: prefix(i),
        path_id: None,
    };
    // Into an empty buffer: the two change places, nothing is copied.
    rib.announce(peers[0], &[nlri(0)], attrs.clone());
    let mut out = Vec::with_capacity(64);
    rib.take_changes_into(&mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(rib.pending_changes(), 0);
    // Into one holding changes: appended after them.
    rib.announce(peers[0], &[nlri(1), nlri(2)], attrs);
    rib.take_changes_into(&mut out);
    let order: Vec<IpNet> = out.iter().map(|c| c.prefix).collect();
    assert_eq!(order, [prefix(0), prefix(1), prefix(2)]);
    assert_eq!(rib.pending_changes(), 0);
    // The RIB records into the buffer it was given back.
    rib.withdraw(peers[0], &[nlri(0)]);
    assert_eq!(rib.take_changes().len(), 1);
}
