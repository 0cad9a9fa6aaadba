//! The RIB: each step of the decision process with the reason the loser
//! records, multipath, the change stream, interning, graceful restart, and
//! the properties that best path depends neither on arrival order nor on a
//! path having been removed and added back.

use std::net::{IpAddr, Ipv4Addr};

use bgp::rib::{
    BestChange, DecisionConfig, LossReason, PathAttrs, PeerId, PeerInfo, Reachability, Rib,
};
use bgp::wire::{
    smallvec, AsPath, AsSegment, AttrValue, Family, NextHop, Nlri, Origin, PathAttribute,
    SegmentType,
};
use ipnet::IpNet;
use proptest::prelude::*;

fn prefix(s: &str) -> IpNet {
    s.parse().expect("prefix")
}

fn nlri(s: &str) -> Vec<Nlri> {
    vec![Nlri::new(prefix(s))]
}

fn peer(rib: &mut Rib, n: u8, ebgp: bool) -> PeerId {
    rib.add_peer(PeerInfo {
        address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)),
        router_id: Ipv4Addr::new(192, 0, 2, n),
        ebgp,
        local: false,
    })
}

/// Attributes built from values, with next hop 10.0.0.`nh`.
fn attrs(values: Vec<AttrValue>, nh: u8) -> PathAttrs {
    let list: Vec<PathAttribute> = values.into_iter().map(PathAttribute::new).collect();
    PathAttrs::new(&list, NextHop::V4(Ipv4Addr::new(10, 0, 0, nh)))
}

/// ORIGIN IGP and the given AS path, plus `extra`.
fn with_path(asns: &[u32], extra: Vec<AttrValue>, nh: u8) -> PathAttrs {
    let mut v = vec![
        AttrValue::Origin(Origin::Igp),
        AttrValue::AsPath(AsPath::sequence(asns.iter().copied())),
    ];
    v.extend(extra);
    attrs(v, nh)
}

/// Two peers each announce 10.1.0.0/16; returns (winner's peer, loser's reason).
fn duel(
    rib: &mut Rib,
    a: (PeerId, PathAttrs),
    b: (PeerId, PathAttrs),
) -> (PeerId, Option<LossReason>) {
    let p = prefix("10.1.0.0/16");
    rib.announce(a.0, &nlri("10.1.0.0/16"), a.1);
    rib.announce(b.0, &nlri("10.1.0.0/16"), b.1);
    let paths = rib.paths(&p);
    assert_eq!(paths.len(), 2);
    assert!(paths[0].is_best());
    (paths[0].peer, paths[1].reason())
}

#[test]
fn higher_local_pref_wins() {
    let mut rib = Rib::default();
    let (a, b) = (peer(&mut rib, 1, false), peer(&mut rib, 2, false));
    let got = duel(
        &mut rib,
        (
            a,
            with_path(&[65001, 65002], vec![AttrValue::LocalPref(200)], 1),
        ),
        (b, with_path(&[65001], vec![AttrValue::LocalPref(100)], 2)),
    );
    assert_eq!(got, (a, Some(LossReason::LocalPref)));
}

#[test]
fn shorter_as_path_wins_with_a_set_counting_one_and_confed_none() {
    let mut rib = Rib::default();
    let (a, b) = (peer(&mut rib, 1, true), peer(&mut rib, 2, true));
    // a: confed (65100 65101) + sequence [65001] + set {1,2,3} = length 2
    let a_path = AsPath::from_segments([
        AsSegment::new(SegmentType::ConfedSequence, [65100, 65101]),
        AsSegment::new(SegmentType::Sequence, [65001]),
        AsSegment::new(SegmentType::Set, [1, 2, 3]),
    ]);
    let a_attrs = attrs(
        vec![AttrValue::Origin(Origin::Igp), AttrValue::AsPath(a_path)],
        1,
    );
    let got = duel(
        &mut rib,
        (a, a_attrs),
        (b, with_path(&[65002, 65003, 65004], vec![], 2)),
    );
    assert_eq!(got, (a, Some(LossReason::AsPathLen)));
}

#[test]
fn lower_origin_wins() {
    let mut rib = Rib::default();
    let (a, b) = (peer(&mut rib, 1, true), peer(&mut rib, 2, true));
    let incomplete = attrs(
        vec![
            AttrValue::Origin(Origin::Incomplete),
            AttrValue::AsPath(AsPath::sequence([65002])),
        ],
        2,
    );
    let got = duel(
        &mut rib,
        (a, with_path(&[65001], vec![], 1)),
        (b, incomplete),
    );
    assert_eq!(got, (a, Some(LossReason::Origin)));
}

#[test]
fn med_is_compared_only_within_one_neighbouring_as() {
    let mut rib = Rib::default();
    let (a, b) = (peer(&mut rib, 1, true), peer(&mut rib, 2, true));
    let same_as = duel(
        &mut rib,
        (
            a,
            with_path(&[65001], vec![AttrValue::MultiExitDisc(50)], 1),
        ),
        (
            b,
            with_path(&[65001], vec![AttrValue::MultiExitDisc(10)], 2),
        ),
    );
    assert_eq!(same_as, (b, Some(LossReason::Med)));

    // From different ASes MED does not count: the router id decides (a's is lower).
    let mut rib = Rib::default();
    let (a, b) = (peer(&mut rib, 1, true), peer(&mut rib, 2, true));
    let other_as = duel(
        &mut rib,
        (
            a,
            with_path(&[65001], vec![AttrValue::MultiExitDisc(50)], 1),
        ),
        (
            b,
            with_path(&[65002], vec![AttrValue::MultiExitDisc(10)], 2),
        ),
    );
    assert_eq!(other_as, (a, Some(LossReason::RouterId)));

    // Unless MED is always compared.
    let mut rib = Rib::new(DecisionConfig {
        always_compare_med: true,
    });
    let (a, b) = (peer(&mut rib, 1, true), peer(&mut rib, 2, true));
    let always = duel(
        &mut rib,
        (
            a,
            with_path(&[65001], vec![AttrValue::MultiExitDisc(50)], 1),
        ),
        (
            b,
            with_path(&[65002], vec![AttrValue::MultiExitDisc(10)], 2),
        ),
    );
    assert_eq!(always, (b, Some(LossReason::Med)));
}

#[test]
fn ebgp_wins_over_ibgp() {
    let mut rib = Rib::default();
    let (a, b) = (peer(&mut rib, 1, false), peer(&mut rib, 2, true));
    let got = duel(
        &mut rib,
        (a, with_path(&[65001], vec![], 1)),
        (b, with_path(&[65002], vec![], 2)),
    );
    assert_eq!(got, (b, Some(LossReason::PeerType)));
}

#[test]
fn lower_igp_cost_wins_and_an_unreachable_next_hop_never_does() {
    let mut rib = Rib::default();
    let (a, b) = (peer(&mut rib, 1, true), peer(&mut rib, 2, true));
    rib.set_next_hop(
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        Reachability::Reachable { igp_cost: 20 },
    );
    rib.set_next_hop(
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        Reachability::Reachable { igp_cost: 10 },
    );
    let got = duel(
        &mut rib,
        (a, with_path(&[65001], vec![], 1)),
        (b, with_path(&[65002], vec![], 2)),
    );
    assert_eq!(got, (b, Some(LossReason::IgpCost)));

    // b's next hop goes away: a becomes best, b records why it lost.
    rib.take_changes();
    rib.set_next_hop(
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        Reachability::Unreachable,
    );
    let p = prefix("10.1.0.0/16");
    assert_eq!(rib.best(&p).map(|x| x.peer), Some(a));
    assert_eq!(
        rib.paths(&p)[1].reason(),
        Some(LossReason::NextHopUnreachable)
    );
    assert_eq!(rib.take_changes().len(), 1);

    // Both unreachable: no best at all.
    rib.set_next_hop(
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        Reachability::Unreachable,
    );
    assert!(rib.best(&p).is_none());
    let change = rib.take_changes();
    assert_eq!(change.len(), 1);
    assert!(change[0].best.is_none());
}

#[test]
fn originator_id_stands_in_for_the_router_id_then_cluster_list_then_address() {
    let mut rib = Rib::default();
    let (a, b) = (peer(&mut rib, 1, false), peer(&mut rib, 2, false));
    // a has the lower router id, but reflects a route whose originator is higher.
    let got = duel(
        &mut rib,
        (
            a,
            with_path(
                &[],
                vec![AttrValue::OriginatorId(Ipv4Addr::new(192, 0, 2, 9))],
                1,
            ),
        ),
        (b, with_path(&[], vec![], 2)),
    );
    assert_eq!(got, (b, Some(LossReason::RouterId)));

    let mut rib = Rib::default();
    let (a, b) = (peer(&mut rib, 1, false), peer(&mut rib, 2, false));
    let same_origin = |clusters: Vec<Ipv4Addr>, nh| {
        with_path(
            &[],
            vec![
                AttrValue::OriginatorId(Ipv4Addr::new(192, 0, 2, 9)),
                AttrValue::ClusterList(clusters),
            ],
            nh,
        )
    };
    let got = duel(
        &mut rib,
        (
            a,
            same_origin(
                vec![Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(2, 2, 2, 2)],
                1,
            ),
        ),
        (b, same_origin(vec![Ipv4Addr::new(1, 1, 1, 1)], 2)),
    );
    assert_eq!(got, (b, Some(LossReason::ClusterList)));

    let mut rib = Rib::default();
    let (a, b) = (peer(&mut rib, 1, false), peer(&mut rib, 2, false));
    let got = duel(
        &mut rib,
        (a, same_origin(vec![], 1)),
        (b, same_origin(vec![], 2)),
    );
    assert_eq!(got, (a, Some(LossReason::PeerAddress)));
}

#[test]
fn add_path_paths_from_one_peer_tie_break_on_path_id() {
    let mut rib = Rib::default();
    let a = peer(&mut rib, 1, false);
    let p = prefix("10.1.0.0/16");
    rib.announce(a, &[Nlri::with_path_id(p, 7)], with_path(&[], vec![], 1));
    rib.announce(a, &[Nlri::with_path_id(p, 3)], with_path(&[], vec![], 1));
    let paths = rib.paths(&p);
    assert_eq!(
        (paths[0].path_id, paths[1].reason()),
        (3, Some(LossReason::PathId))
    );
}

#[test]
fn paths_equal_up_to_igp_cost_form_the_multipath_set() {
    let mut rib = Rib::default();
    let (a, b, c) = (
        peer(&mut rib, 1, true),
        peer(&mut rib, 2, true),
        peer(&mut rib, 3, true),
    );
    let p = prefix("10.1.0.0/16");
    rib.announce(a, &nlri("10.1.0.0/16"), with_path(&[65001], vec![], 1));
    rib.announce(b, &nlri("10.1.0.0/16"), with_path(&[65002], vec![], 2));
    rib.announce(
        c,
        &nlri("10.1.0.0/16"),
        with_path(&[65003, 65004], vec![], 3),
    );
    let last = rib.take_changes().pop().expect("a change");
    assert_eq!(last.prefix, p);
    assert_eq!(last.best.map(|r| r.peer), Some(a));
    let members: Vec<PeerId> = last.multipath.iter().map(|r| r.peer).collect();
    assert_eq!(members, vec![a, b]);
    assert!(rib.paths(&p).iter().filter(|x| x.is_multipath()).count() == 2);
}

#[test]
fn changes_come_out_once_per_real_change() {
    let mut rib = Rib::default();
    let a = peer(&mut rib, 1, true);
    rib.announce(a, &nlri("10.1.0.0/16"), with_path(&[65001], vec![], 1));
    let first = rib.take_changes();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].best.as_ref().map(|r| r.peer), Some(a));

    // The same announcement again changes nothing.
    rib.announce(a, &nlri("10.1.0.0/16"), with_path(&[65001], vec![], 1));
    assert!(rib.take_changes().is_empty());

    // New attributes from the same peer replace the path in place.
    rib.announce(
        a,
        &nlri("10.1.0.0/16"),
        with_path(&[65001], vec![AttrValue::MultiExitDisc(5)], 1),
    );
    assert_eq!(rib.take_changes().len(), 1);
    assert_eq!(rib.path_count(), 1);

    rib.withdraw(a, &nlri("10.1.0.0/16"));
    let gone: Vec<BestChange> = rib.take_changes();
    assert_eq!(gone.len(), 1);
    assert!(gone[0].best.is_none() && gone[0].multipath.is_empty());
    assert_eq!(rib.prefix_count(), 0);
}

#[test]
fn attribute_sets_are_shared_and_released_with_their_last_path() {
    let mut rib = Rib::default();
    let peers: Vec<PeerId> = (1..=3).map(|n| peer(&mut rib, n, true)).collect();
    let prefixes: Vec<Nlri> = (0..200u32)
        .map(|i| {
            Nlri::new(IpNet::V4(
                ipnet::Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24).expect("prefix"),
            ))
        })
        .collect();
    for (i, &p) in peers.iter().enumerate() {
        let communities =
            AttrValue::Communities(smallvec![bgp::wire::Community::new(65000, i as u16)]);
        rib.announce(
            p,
            &prefixes,
            with_path(&[65001], vec![communities], p as u8 + 1),
        );
    }
    // Changes handed out hold their sets too; the driver drains them.
    drop(rib.take_changes());
    assert_eq!(rib.path_count(), 600);
    assert_eq!(rib.prefix_count(), 200);
    assert_eq!(rib.attr_set_count(), 3);
    assert_eq!(rib.adj_rib_in(peers[1]).count(), 200);

    rib.remove_peer(peers[0]);
    drop(rib.take_changes());
    assert_eq!(rib.attr_set_count(), 2);
    assert_eq!(rib.path_count(), 400);
    rib.remove_peer(peers[1]);
    rib.remove_peer(peers[2]);
    drop(rib.take_changes());
    assert_eq!((rib.attr_set_count(), rib.prefix_count()), (0, 0));
}

#[test]
fn stale_paths_stay_until_swept_and_only_in_their_family() {
    let mut rib = Rib::default();
    let a = peer(&mut rib, 1, true);
    rib.announce(
        a,
        &[
            Nlri::new(prefix("10.1.0.0/16")),
            Nlri::new(prefix("10.2.0.0/16")),
        ],
        with_path(&[65001], vec![], 1),
    );
    let v6 = PathAttrs::new(
        &[
            PathAttribute::new(AttrValue::Origin(Origin::Igp)),
            PathAttribute::new(AttrValue::AsPath(AsPath::sequence([65001]))),
        ],
        NextHop::V6 {
            global: "2001:db8::1".parse().expect("v6"),
            link_local: None,
        },
    );
    rib.announce(a, &nlri("2001:db8:1::/48"), v6);
    rib.mark_stale(a, Family::IPV4_UNICAST);
    rib.mark_stale(a, Family::IPV6_UNICAST);
    rib.take_changes();

    // The restarted peer re-announces one IPv4 prefix, then sends End-of-RIB for IPv4.
    rib.announce(a, &nlri("10.1.0.0/16"), with_path(&[65001], vec![], 1));
    assert!(
        rib.take_changes().is_empty(),
        "a stale path refreshed as it was changes nothing"
    );
    rib.sweep_stale(a, Family::IPV4_UNICAST);
    assert!(rib.best(&prefix("10.1.0.0/16")).is_some());
    assert!(rib.best(&prefix("10.2.0.0/16")).is_none());
    assert!(
        rib.best(&prefix("2001:db8:1::/48"))
            .is_some_and(|p| p.stale),
        "IPv6 waits for its own End-of-RIB"
    );
    rib.sweep_stale(a, Family::IPV6_UNICAST);
    assert_eq!(rib.prefix_count(), 1);
}

#[test]
fn a_set_outliving_its_paths_in_a_handed_out_change_is_swept_later() {
    let mut rib = Rib::default();
    let a = peer(&mut rib, 1, true);
    rib.announce(a, &nlri("10.1.0.0/16"), with_path(&[65001], vec![], 1));
    let held = rib.take_changes();
    rib.withdraw(a, &nlri("10.1.0.0/16"));
    drop(rib.take_changes());
    drop(held);
    assert_eq!(rib.attr_set_count(), 0);
    assert_eq!(rib.attr_sets_held(), 1, "the orphan is still in the table");
    // New sets coming in sweep the orphan out of the table.
    for med in 0..4 {
        rib.announce(
            a,
            &nlri("10.2.0.0/16"),
            with_path(&[65001], vec![AttrValue::MultiExitDisc(med)], 1),
        );
        drop(rib.take_changes());
    }
    assert_eq!(rib.attr_set_count(), 1);
    assert_eq!(rib.attr_sets_held(), 1, "only the set in use is left");
}

// Properties

#[derive(Debug, Clone)]
struct Announcement {
    peer: usize,
    prefix: u8,
    local_pref: u32,
    path: Vec<u32>,
    med: u32,
    origin: u8,
}

fn announcement() -> impl Strategy<Value = Announcement> {
    (
        0usize..5,
        0u8..4,
        prop_oneof![Just(100u32), Just(200)],
        proptest::collection::vec(65000u32..65003, 0..3),
        0u32..3,
        0u8..3,
    )
        .prop_map(
            |(peer, prefix, local_pref, path, med, origin)| Announcement {
                peer,
                prefix,
                local_pref,
                path,
                med,
                origin,
            },
        )
}

fn build(rib: &mut Rib, peers: &[PeerId], a: &Announcement) {
    let origin = [Origin::Igp, Origin::Egp, Origin::Incomplete][usize::from(a.origin)];
    let values = vec![
        AttrValue::Origin(origin),
        AttrValue::AsPath(AsPath::sequence(a.path.iter().copied())),
        AttrValue::MultiExitDisc(a.med),
        AttrValue::LocalPref(a.local_pref),
    ];
    let p = format!("10.{}.0.0/16", a.prefix);
    rib.announce(peers[a.peer], &nlri(&p), attrs(values, a.peer as u8 + 1));
}

fn new_rib() -> (Rib, Vec<PeerId>) {
    let mut rib = Rib::default();
    // Peers 0 and 1 iBGP, the rest eBGP.
    let peers = (0..5u8).map(|n| peer(&mut rib, n + 1, n >= 2)).collect();
    (rib, peers)
}

/// One prefix: its best (peer, path id) and each path's (peer, reason, multipath).
type PrefixState = (
    IpNet,
    Option<(PeerId, u32)>,
    Vec<(PeerId, Option<LossReason>, bool)>,
);

/// Per prefix: the best (peer, path id) and every path's reason, in a canonical order.
fn snapshot(rib: &Rib) -> Vec<PrefixState> {
    let mut out: Vec<_> = (0..4u8)
        .map(|i| prefix(&format!("10.{i}.0.0/16")))
        .map(|p| {
            let mut paths: Vec<_> = rib
                .paths(&p)
                .iter()
                .map(|x| (x.peer, x.reason(), x.is_multipath()))
                .collect();
            paths.sort();
            (p, rib.best(&p).map(|b| (b.peer, b.path_id)), paths)
        })
        .collect();
    out.sort_by_key(|x| x.0);
    out
}

/// The per-peer path counts, summed.
fn counted(rib: &Rib, peers: &[PeerId]) -> usize {
    peers
        .iter()
        .map(|&p| {
            rib.peer_path_count(p, Family::IPV4_UNICAST)
                + rib.peer_path_count(p, Family::IPV6_UNICAST)
        })
        .sum()
}

/// Only the last announcement of each (peer, prefix) stands; keep those.
fn last_per_path(list: &[Announcement]) -> Vec<Announcement> {
    let mut out: Vec<Announcement> = Vec::new();
    for a in list {
        out.retain(|b| !(b.peer == a.peer && b.prefix == a.prefix));
        out.push(a.clone());
    }
    out
}

proptest! {
    #[test]
    fn best_path_does_not_depend_on_arrival_order(
        list in proptest::collection::vec(announcement(), 1..25),
        order in any::<proptest::sample::Index>(),
    ) {
        let list = last_per_path(&list);
        let (mut first, peers) = new_rib();
        for a in &list {
            build(&mut first, &peers, a);
        }
        // The same paths in a rotated and reversed order.
        let mut shuffled = list.clone();
        shuffled.rotate_left(order.index(list.len()));
        shuffled.reverse();
        let (mut second, peers2) = new_rib();
        for a in &shuffled {
            build(&mut second, &peers2, a);
        }
        prop_assert_eq!(snapshot(&first), snapshot(&second));
    }

    #[test]
    fn removing_and_re_adding_a_path_restores_the_loc_rib(
        list in proptest::collection::vec(announcement(), 1..25),
        pick in any::<proptest::sample::Index>(),
    ) {
        let list = last_per_path(&list);
        let (mut rib, peers) = new_rib();
        for a in &list {
            build(&mut rib, &peers, a);
        }
        let before = snapshot(&rib);
        let a = &list[pick.index(list.len())];
        rib.withdraw(peers[a.peer], &nlri(&format!("10.{}.0.0/16", a.prefix)));
        prop_assert_eq!(counted(&rib, &peers), rib.path_count());
        build(&mut rib, &peers, a);
        prop_assert_eq!(snapshot(&rib), before);
        prop_assert_eq!(counted(&rib, &peers), rib.path_count());
    }
}

#[test]
fn a_route_we_originate_wins_over_a_learned_one_of_equal_local_pref() {
    let mut rib = Rib::default();
    // A learned path with an empty AS_PATH: the same length as ours, and
    // a lower router id than ours would win without the local step.
    let learned = peer(&mut rib, 1, false);
    let local = rib.add_peer(PeerInfo {
        address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        router_id: Ipv4Addr::new(192, 0, 2, 200),
        ebgp: false,
        local: true,
    });
    let got = duel(
        &mut rib,
        (learned, with_path(&[], vec![], 1)),
        (local, with_path(&[], vec![], 0)),
    );
    assert_eq!(got, (local, Some(LossReason::NotLocal)));
}
