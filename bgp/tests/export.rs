//! Export rules: split horizon, route reflection, eBGP and iBGP attribute
//! handling, well-known communities, AS4_PATH for 2-octet peers.

use std::net::{Ipv4Addr, Ipv6Addr};

use bgp::export::{export, Source, Target};
use bgp::rib::PathAttrs;
use bgp::wire::{smallvec, AsPath, AttrType, AttrValue, Community, NextHop, PathAttribute};

const LOCAL_AS: u32 = 64512;

fn attrs(extra: Vec<AttrValue>) -> PathAttrs {
    let mut values = vec![
        AttrValue::Origin(bgp::wire::Origin::Igp),
        AttrValue::AsPath(AsPath::sequence([65001])),
    ];
    values.extend(extra);
    let list: Vec<PathAttribute> = values.into_iter().map(PathAttribute::new).collect();
    PathAttrs::new(&list, NextHop::V4(Ipv4Addr::new(172, 18, 0, 9)))
}

fn target(peer: u32, ebgp: bool) -> Target {
    Target {
        peer,
        local_as: LOCAL_AS,
        ebgp,
        rr_client: false,
        next_hop_self: false,
        local_v4: Some(Ipv4Addr::new(172, 18, 0, 1)),
        local_v6: Some("fd00::1".parse().expect("v6")),
        local_v6_link_local: None,
        shared_subnet: None,
        peer_address: Ipv4Addr::new(172, 18, 0, 2).into(),
        cluster_id: Ipv4Addr::new(10, 255, 0, 1),
        route_reflector: false,
        four_octet_as: true,
    }
}

fn from(peer: u32, ebgp: bool, rr_client: bool) -> Source {
    Source::Peer {
        peer,
        ebgp,
        rr_client,
        router_id: Ipv4Addr::new(10, 255, 0, peer as u8),
    }
}

fn value(a: &PathAttrs, t: AttrType) -> Option<&AttrValue> {
    a.attributes()
        .iter()
        .map(|x| &x.value)
        .find(|v| v.type_code() == t)
}

#[test]
fn a_route_never_goes_back_to_its_peer() {
    assert!(export(&attrs(vec![]), &from(1, true, false), &target(1, true)).is_none());
}

#[test]
fn ibgp_routes_do_not_go_to_other_ibgp_peers_without_reflection() {
    assert!(export(&attrs(vec![]), &from(1, false, false), &target(2, false)).is_none());
    assert!(
        export(&attrs(vec![]), &from(1, false, false), &target(2, true)).is_some(),
        "but to eBGP they do"
    );
    assert!(
        export(&attrs(vec![]), &from(1, true, false), &target(2, false)).is_some(),
        "and eBGP routes go to iBGP"
    );
}

#[test]
fn a_reflector_sends_client_routes_everywhere_and_others_to_clients_only() {
    let mut client = target(2, false);
    client.route_reflector = true;
    client.rr_client = true;
    let mut non_client = target(3, false);
    non_client.route_reflector = true;

    // From a client: to clients and non-clients.
    assert!(export(&attrs(vec![]), &from(1, false, true), &client).is_some());
    assert!(export(&attrs(vec![]), &from(1, false, true), &non_client).is_some());
    // From a non-client: to clients only.
    assert!(export(&attrs(vec![]), &from(4, false, false), &client).is_some());
    assert!(export(&attrs(vec![]), &from(4, false, false), &non_client).is_none());
}

#[test]
fn reflection_sets_originator_id_and_prepends_the_cluster_id() {
    let mut client = target(2, false);
    client.route_reflector = true;
    client.rr_client = true;
    let out = export(&attrs(vec![]), &from(1, false, true), &client).expect("reflected");
    assert_eq!(
        value(&out, AttrType::OriginatorId),
        Some(&AttrValue::OriginatorId(Ipv4Addr::new(10, 255, 0, 1)))
    );
    assert_eq!(
        value(&out, AttrType::ClusterList),
        Some(&AttrValue::ClusterList(vec![Ipv4Addr::new(10, 255, 0, 1)]))
    );

    // An existing ORIGINATOR_ID is kept; our cluster id goes in front of the list.
    let seen = attrs(vec![
        AttrValue::OriginatorId(Ipv4Addr::new(10, 9, 9, 9)),
        AttrValue::ClusterList(vec![Ipv4Addr::new(10, 8, 8, 8)]),
    ]);
    let out = export(&seen, &from(1, false, true), &client).expect("reflected");
    assert_eq!(
        value(&out, AttrType::OriginatorId),
        Some(&AttrValue::OriginatorId(Ipv4Addr::new(10, 9, 9, 9)))
    );
    assert_eq!(
        value(&out, AttrType::ClusterList),
        Some(&AttrValue::ClusterList(vec![
            Ipv4Addr::new(10, 255, 0, 1),
            Ipv4Addr::new(10, 8, 8, 8)
        ]))
    );
}

#[test]
fn ebgp_prepends_our_as_strips_local_pref_and_sets_next_hop_self() {
    let learned = attrs(vec![
        AttrValue::LocalPref(300),
        AttrValue::MultiExitDisc(7),
        AttrValue::OriginatorId(Ipv4Addr::new(10, 9, 9, 9)),
    ]);
    let out = export(&learned, &from(1, false, false), &target(2, true)).expect("exported");
    assert_eq!(
        value(&out, AttrType::AsPath),
        Some(&AttrValue::AsPath(AsPath::sequence([LOCAL_AS, 65001])))
    );
    assert!(value(&out, AttrType::LocalPref).is_none());
    assert!(value(&out, AttrType::OriginatorId).is_none());
    assert_eq!(
        value(&out, AttrType::MultiExitDisc),
        Some(&AttrValue::MultiExitDisc(7)),
        "our own MED may go out"
    );
    assert_eq!(out.next_hop(), NextHop::V4(Ipv4Addr::new(172, 18, 0, 1)));

    // A MED learned over eBGP does not go on to another AS.
    let from_ebgp = export(
        &attrs(vec![AttrValue::MultiExitDisc(7)]),
        &from(1, true, false),
        &target(2, true),
    )
    .expect("exported");
    assert!(value(&from_ebgp, AttrType::MultiExitDisc).is_none());
}

#[test]
fn ebgp_keeps_a_third_party_next_hop_on_the_subnet_it_shares_with_the_peer() {
    // 172.18.0.9 (the route's next hop) and the peer both sit on our /16.
    let mut shared = target(2, true);
    shared.shared_subnet = Some("172.18.0.0/16".parse().expect("net"));
    let third = NextHop::V4(Ipv4Addr::new(172, 18, 0, 9));
    for source in [from(1, false, false), from(1, true, false)] {
        let out = export(&attrs(vec![]), &source, &shared).expect("exported");
        assert_eq!(out.next_hop(), third, "from {source:?}");
    }
    // A static route of ours towards that router keeps it too.
    let out = export(&attrs(vec![]), &Source::Local, &shared).expect("exported");
    assert_eq!(out.next_hop(), third);

    let ours = NextHop::V4(Ipv4Addr::new(172, 18, 0, 1));
    // Outside the shared subnet: ours.
    let mut narrow = shared.clone();
    narrow.shared_subnet = Some("172.18.0.0/29".parse().expect("net"));
    let out = export(&attrs(vec![]), &from(1, false, false), &narrow).expect("exported");
    assert_eq!(out.next_hop(), ours);
    // The peer's own address is never its next hop.
    let mut itself = shared.clone();
    itself.peer_address = Ipv4Addr::new(172, 18, 0, 9).into();
    let out = export(&attrs(vec![]), &from(1, false, false), &itself).expect("exported");
    assert_eq!(out.next_hop(), ours);
    // next_hop_self wins.
    let mut nhs = shared.clone();
    nhs.next_hop_self = true;
    let out = export(&attrs(vec![]), &from(1, false, false), &nhs).expect("exported");
    assert_eq!(out.next_hop(), ours);
    // No shared subnet (a multihop peer): ours.
    let out = export(&attrs(vec![]), &from(1, false, false), &target(2, true)).expect("exported");
    assert_eq!(out.next_hop(), ours);

    // IPv6: the third party's global address goes, without the link-local
    // learned on another link.
    let list: Vec<PathAttribute> = vec![
        PathAttribute::new(AttrValue::Origin(bgp::wire::Origin::Igp)),
        PathAttribute::new(AttrValue::AsPath(AsPath::sequence([65001]))),
    ];
    let v6 = PathAttrs::new(
        &list,
        NextHop::V6 {
            global: "fd00::9".parse().expect("v6"),
            link_local: Some("fe80::9".parse().expect("v6")),
        },
    );
    let mut lan6 = target(2, true);
    lan6.shared_subnet = Some("fd00::/64".parse().expect("net"));
    lan6.peer_address = "fd00::2".parse::<Ipv6Addr>().expect("v6").into();
    let out = export(&v6, &from(1, false, false), &lan6).expect("exported");
    assert_eq!(
        out.next_hop(),
        NextHop::V6 {
            global: "fd00::9".parse().expect("v6"),
            link_local: None
        }
    );
}

#[test]
fn ibgp_keeps_the_next_hop_and_defaults_local_pref() {
    let out = export(&attrs(vec![]), &from(1, true, false), &target(2, false)).expect("exported");
    assert_eq!(out.next_hop(), NextHop::V4(Ipv4Addr::new(172, 18, 0, 9)));
    assert_eq!(
        value(&out, AttrType::LocalPref),
        Some(&AttrValue::LocalPref(100))
    );
    assert_eq!(
        value(&out, AttrType::AsPath),
        Some(&AttrValue::AsPath(AsPath::sequence([65001])))
    );

    let mut nhs = target(2, false);
    nhs.next_hop_self = true;
    let out = export(&attrs(vec![]), &from(1, true, false), &nhs).expect("exported");
    assert_eq!(out.next_hop(), NextHop::V4(Ipv4Addr::new(172, 18, 0, 1)));
}

#[test]
fn local_routes_go_out_with_our_next_hop_in_their_family() {
    let list: Vec<PathAttribute> = vec![PathAttribute::new(AttrValue::Origin(
        bgp::wire::Origin::Igp,
    ))];
    let v6 = PathAttrs::new(
        &list,
        NextHop::V6 {
            global: Ipv6Addr::UNSPECIFIED,
            link_local: None,
        },
    );
    let out = export(&v6, &Source::Local, &target(2, false)).expect("exported");
    assert_eq!(
        out.next_hop(),
        NextHop::V6 {
            global: "fd00::1".parse().expect("v6"),
            link_local: None
        }
    );
    let mut no_v6 = target(2, false);
    no_v6.local_v6 = None;
    assert!(
        export(&v6, &Source::Local, &no_v6).is_none(),
        "no address of the family, nothing to announce"
    );
}

#[test]
fn well_known_communities_are_honoured() {
    let no_export = attrs(vec![AttrValue::Communities(smallvec![
        Community::NO_EXPORT
    ])]);
    assert!(export(&no_export, &from(1, true, false), &target(2, true)).is_none());
    assert!(export(&no_export, &from(1, true, false), &target(2, false)).is_some());
    let no_advertise = attrs(vec![AttrValue::Communities(smallvec![
        Community::NO_ADVERTISE
    ])]);
    assert!(export(&no_advertise, &from(1, true, false), &target(2, false)).is_none());
}

#[test]
fn unknown_attributes_pass_on_when_transitive_and_get_the_partial_bit() {
    let mut list: Vec<PathAttribute> = vec![PathAttribute::new(AttrValue::Origin(
        bgp::wire::Origin::Igp,
    ))];
    list.push(PathAttribute {
        flags: 0xc0,
        value: AttrValue::Unknown {
            type_code: 99,
            value: vec![1].into(),
        },
    });
    list.push(PathAttribute {
        flags: 0x80,
        value: AttrValue::Unknown {
            type_code: 98,
            value: vec![2].into(),
        },
    });
    let a = PathAttrs::new(&list, NextHop::V4(Ipv4Addr::new(172, 18, 0, 9)));
    let out = export(&a, &from(1, true, false), &target(2, true)).expect("exported");
    let unknown: Vec<(u8, bool)> = out
        .attributes()
        .iter()
        .filter_map(|x| match &x.value {
            AttrValue::Unknown { type_code, .. } => Some((*type_code, x.is_partial())),
            _ => None,
        })
        .collect();
    assert_eq!(unknown, vec![(99, true)]);
}

#[test]
fn a_two_octet_peer_gets_as4_path_for_four_octet_numbers() {
    let big = attrs(vec![]);
    let mut old = target(2, true);
    old.local_as = 4_200_000_001;
    old.four_octet_as = false;
    let out = export(&big, &from(1, true, false), &old).expect("exported");
    assert_eq!(
        value(&out, AttrType::As4Path),
        Some(&AttrValue::As4Path(AsPath::sequence([
            4_200_000_001,
            65001
        ])))
    );
    // A 4-octet peer gets none.
    old.four_octet_as = true;
    let out = export(&big, &from(1, true, false), &old).expect("exported");
    assert!(value(&out, AttrType::As4Path).is_none());
}

#[test]
fn exported_attributes_are_in_type_order() {
    let out = export(
        &attrs(vec![
            AttrValue::Communities(smallvec![Community::new(1, 1)]),
            AttrValue::MultiExitDisc(1),
        ]),
        &from(1, false, false),
        &target(2, true),
    )
    .expect("exported");
    let order: Vec<u8> = out
        .attributes()
        .iter()
        .map(|a| u8::from(a.type_code()))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
}
