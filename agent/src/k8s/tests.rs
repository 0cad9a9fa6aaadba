use super::*;

fn node(json: serde_json::Value) -> Node {
    serde_json::from_value(json).expect("a Node")
}

fn info(name: &str, ips: &[&str], cidrs: &[&str], annotations: serde_json::Value) -> NodeInfo {
    NodeInfo::of(&node(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": { "name": name, "annotations": annotations },
        "spec": { "podCIDR": cidrs.first(), "podCIDRs": cidrs },
        "status": { "addresses": ips.iter().map(|ip| serde_json::json!({"type": "InternalIP", "address": ip}))
            .chain([serde_json::json!({"type": "Hostname", "address": name})]).collect::<Vec<_>>() },
    })))
}

fn cluster(list: Vec<NodeInfo>) -> BTreeMap<String, NodeInfo> {
    list.into_iter().map(|n| (n.name.clone(), n)).collect()
}

fn net(s: &str) -> IpNet {
    s.parse().expect("prefix")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

#[test]
fn a_node_is_read_with_its_annotations() {
    let n = info(
        "kind-worker",
        &["172.18.0.3", "fc00:f853:ccd:e793::3"],
        &["10.244.1.0/24", "fd00:10:244:1::/64"],
        serde_json::json!({
            "podbgp.io/asn": "64600",
            "podbgp.io/route-reflector": "true",
            "podbgp.io/peers": "172.18.0.100=65001, [fd00::1]=65002, nonsense",
        }),
    );
    assert_eq!(n.internal, [ip("172.18.0.3"), ip("fc00:f853:ccd:e793::3")]);
    assert_eq!(
        n.pod_cidrs,
        [net("10.244.1.0/24"), net("fd00:10:244:1::/64")]
    );
    assert_eq!(n.asn, Some(64600));
    assert!(n.reflector);
    assert_eq!(
        n.peers,
        [(ip("172.18.0.100"), 65001), (ip("fd00::1"), 65002)]
    );
    assert_eq!(n.problems.len(), 1, "{:?}", n.problems);
}

#[test]
fn a_full_mesh_peers_with_every_other_node_per_family() {
    let nodes = cluster(vec![
        info(
            "a",
            &["172.18.0.2"],
            &["10.244.0.0/24"],
            serde_json::json!({}),
        ),
        info(
            "b",
            &["172.18.0.3", "fc00::3"],
            &["10.244.1.0/24"],
            serde_json::json!({"podbgp.io/asn": "64600"}),
        ),
        info("c", &["172.18.0.4"], &[], serde_json::json!({})),
    ]);
    let d = desired("a", &nodes, 64512, true);
    assert_eq!(d.own_pods, [net("10.244.0.0/24")]);
    assert_eq!(d.cluster_pods, [net("10.244.0.0/24"), net("10.244.1.0/24")]);
    let peers: Vec<(IpAddr, u32, bool)> = d
        .peers
        .iter()
        .map(|p| (p.address, p.asn, p.rr_client))
        .collect();
    assert_eq!(
        peers,
        [
            (ip("172.18.0.3"), 64600, false),
            (ip("172.18.0.4"), 64512, false),
            (ip("fc00::3"), 64600, false),
        ]
    );
    // Without the mesh, only the node's own extra peers.
    assert!(desired("a", &nodes, 64512, false).peers.is_empty());
}

#[test]
fn with_a_reflector_the_others_peer_with_it_only() {
    let rr = serde_json::json!({"podbgp.io/route-reflector": "true"});
    let nodes = cluster(vec![
        info("cp", &["172.18.0.2"], &["10.244.0.0/24"], rr),
        info(
            "w1",
            &["172.18.0.3"],
            &["10.244.1.0/24"],
            serde_json::json!({"podbgp.io/peers": "172.18.0.100=65001"}),
        ),
        info(
            "w2",
            &["172.18.0.4"],
            &["10.244.2.0/24"],
            serde_json::json!({}),
        ),
    ]);
    let w1 = desired("w1", &nodes, 64512, true);
    let peers: Vec<(IpAddr, bool)> = w1.peers.iter().map(|p| (p.address, p.rr_client)).collect();
    assert_eq!(
        peers,
        [(ip("172.18.0.2"), false), (ip("172.18.0.100"), false)]
    );
    let cp = desired("cp", &nodes, 64512, true);
    let peers: Vec<(IpAddr, bool)> = cp.peers.iter().map(|p| (p.address, p.rr_client)).collect();
    assert_eq!(peers, [(ip("172.18.0.3"), true), (ip("172.18.0.4"), true)]);
}

#[test]
fn a_node_without_pod_cidrs_yet_advertises_nothing() {
    let nodes = cluster(vec![info("a", &["172.18.0.2"], &[], serde_json::json!({}))]);
    let d = desired("a", &nodes, 64512, true);
    assert!(d.own_pods.is_empty() && d.peers.is_empty());
    // This node not listed (yet): nothing of its own.
    assert!(desired("z", &nodes, 64512, true).own_pods.is_empty());
}

#[test]
fn a_reflector_is_chosen_by_label_too() {
    let n = NodeInfo::of(&node(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": { "name": "rr1", "labels": { "podbgp.io/route-reflector": "true" } },
        "status": { "addresses": [{"type": "InternalIP", "address": "172.18.0.9"}] },
    })));
    assert!(n.reflector);
    let plain = info("w", &["172.18.0.3"], &[], serde_json::json!({}));
    assert!(!plain.reflector);
}
