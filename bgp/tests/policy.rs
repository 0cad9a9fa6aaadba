//! Import checks: loops, prefix lists with ge/le, and the maximum-prefix
//! Cease, with the RIB's per-peer counts that feed it.

use std::net::{IpAddr, Ipv4Addr};

use bgp::policy::{ImportPolicy, PrefixList, PrefixRule, Rejection, Verdict};
use bgp::rib::{PathAttrs, PeerInfo, Rib};
use bgp::wire::iana::CeaseSubcode;
use bgp::wire::{AsPath, AttrValue, Cause, Family, NextHop, Nlri, PathAttribute};
use ipnet::IpNet;

fn attrs(values: Vec<AttrValue>) -> PathAttrs {
    let list: Vec<PathAttribute> = values.into_iter().map(PathAttribute::new).collect();
    PathAttrs::new(&list, NextHop::V4(Ipv4Addr::new(10, 0, 0, 1)))
}

fn policy() -> ImportPolicy {
    ImportPolicy::new(64512, Ipv4Addr::new(10, 255, 0, 1))
}

fn net(s: &str) -> IpNet {
    s.parse().expect("prefix")
}

#[test]
fn a_path_through_our_own_as_is_a_loop() {
    let p = policy();
    assert_eq!(
        p.check_attrs(&attrs(vec![AttrValue::AsPath(AsPath::sequence([
            65001, 64512, 65002
        ]))])),
        Err(Rejection::AsPathLoop)
    );
    assert_eq!(
        p.check_attrs(&attrs(vec![AttrValue::AsPath(AsPath::sequence([65001]))])),
        Ok(())
    );
}

#[test]
fn our_router_id_as_originator_is_a_loop() {
    let p = policy();
    let own = attrs(vec![AttrValue::OriginatorId(Ipv4Addr::new(10, 255, 0, 1))]);
    assert_eq!(p.check_attrs(&own), Err(Rejection::OriginatorLoop));
}

#[test]
fn our_cluster_id_in_the_cluster_list_is_a_loop() {
    let mut p = policy();
    let via = |id: [u8; 4]| {
        attrs(vec![AttrValue::ClusterList(vec![
            Ipv4Addr::new(1, 1, 1, 1),
            Ipv4Addr::from(id),
        ])])
    };
    // The cluster id defaults to the router id.
    assert_eq!(
        p.check_attrs(&via([10, 255, 0, 1])),
        Err(Rejection::ClusterLoop)
    );
    p.cluster_id = Some(Ipv4Addr::new(9, 9, 9, 9));
    assert_eq!(p.check_attrs(&via([10, 255, 0, 1])), Ok(()));
    assert_eq!(
        p.check_attrs(&via([9, 9, 9, 9])),
        Err(Rejection::ClusterLoop)
    );
}

#[test]
fn prefix_rules_follow_ge_and_le() {
    let rule = |prefix: &str, ge, le| PrefixRule {
        prefix: net(prefix),
        ge,
        le,
        verdict: Verdict::Permit,
    };
    let exact = rule("10.0.0.0/8", None, None);
    assert!(exact.matches(&net("10.0.0.0/8")));
    assert!(!exact.matches(&net("10.1.0.0/16")));

    let up_to_24 = rule("10.0.0.0/8", None, Some(24));
    assert!(up_to_24.matches(&net("10.0.0.0/8")) && up_to_24.matches(&net("10.1.2.0/24")));
    assert!(!up_to_24.matches(&net("10.1.2.0/25")));

    let from_16 = rule("10.0.0.0/8", Some(16), None);
    assert!(!from_16.matches(&net("10.0.0.0/8")));
    assert!(from_16.matches(&net("10.1.2.3/32")));

    let band = rule("fd00::/8", Some(48), Some(64));
    assert!(band.matches(&net("fd00:1:2::/48")) && band.matches(&net("fd00:1:2:3::/64")));
    assert!(!band.matches(&net("fd00::/40")) && !band.matches(&net("fe80::/64")));
}

#[test]
fn the_first_matching_rule_decides_and_no_match_denies() {
    let mut p = policy();
    assert_eq!(
        p.check_prefix(&net("192.0.2.0/24")),
        Ok(()),
        "an empty list permits all"
    );
    p.prefixes = PrefixList {
        rules: vec![
            PrefixRule {
                prefix: net("10.96.0.0/12"),
                ge: None,
                le: Some(32),
                verdict: Verdict::Deny,
            },
            PrefixRule {
                prefix: net("10.0.0.0/8"),
                ge: None,
                le: Some(24),
                verdict: Verdict::Permit,
            },
        ],
    };
    assert_eq!(p.check_prefix(&net("10.244.1.0/24")), Ok(()));
    assert_eq!(
        p.check_prefix(&net("10.96.0.0/16")),
        Err(Rejection::Filtered)
    );
    assert_eq!(
        p.check_prefix(&net("192.0.2.0/24")),
        Err(Rejection::Filtered)
    );
}

#[test]
fn too_many_prefixes_call_for_the_rfc_4486_cease() {
    let mut p = policy();
    assert!(
        p.check_count(Family::IPV4_UNICAST, 1_000_000).is_none(),
        "no limit by default"
    );
    p.max_prefixes = Some(2);
    assert!(p.check_count(Family::IPV4_UNICAST, 2).is_none());
    let n = p
        .check_count(Family::IPV4_UNICAST, 3)
        .expect("over the limit");
    assert_eq!(n.cause, Cause::Cease(CeaseSubcode::MaximumPrefixesReached));
    assert_eq!(&n.data[..], &[0, 1, 1, 0, 0, 0, 2]);
}

#[test]
fn the_rib_counts_each_peer_s_paths_per_family() {
    let mut rib = Rib::default();
    let a = rib.add_peer(PeerInfo {
        address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        router_id: Ipv4Addr::new(10, 0, 0, 1),
        ebgp: true,
        local: false,
    });
    let v4: Vec<Nlri> = ["10.1.0.0/16", "10.2.0.0/16"]
        .iter()
        .map(|s| Nlri::new(net(s)))
        .collect();
    rib.announce(
        a,
        &v4,
        attrs(vec![AttrValue::AsPath(AsPath::sequence([65001]))]),
    );
    rib.announce(
        a,
        &v4[..1],
        attrs(vec![AttrValue::AsPath(AsPath::sequence([65002]))]),
    );
    let v6 = PathAttrs::new(
        &[],
        NextHop::V6 {
            global: "2001:db8::1".parse().expect("v6"),
            link_local: None,
        },
    );
    rib.announce(a, &[Nlri::new(net("2001:db8:1::/48"))], v6);
    assert_eq!(
        rib.peer_path_count(a, Family::IPV4_UNICAST),
        2,
        "a replaced path counts once"
    );
    assert_eq!(rib.peer_path_count(a, Family::IPV6_UNICAST), 1);
    rib.withdraw(a, &v4[..1]);
    assert_eq!(rib.peer_path_count(a, Family::IPV4_UNICAST), 1);
    rib.mark_stale(a, Family::IPV6_UNICAST);
    rib.sweep_stale(a, Family::IPV6_UNICAST);
    assert_eq!(rib.peer_path_count(a, Family::IPV6_UNICAST), 0);
    rib.remove_peer(a);
    assert_eq!(rib.peer_path_count(a, Family::IPV4_UNICAST), 0);
}
