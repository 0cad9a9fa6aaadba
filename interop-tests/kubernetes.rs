//! Kubernetes mode end to end, in namespaces: one cluster's nodes, each a
//! namespace running podbgp in Kubernetes mode (mesh, FIB, SNAT, CNI
//! config) against the cluster's API server, which listens in the
//! control-plane node's namespace as on a kind node; pods attached
//! ptp-style.
//!
//!   cp (10.10.0.0/24) ---- kind network ---- w1 (10.10.1.0/24)
//!                                       \--- w2 (10.10.2.0/24), added later
//!
//! The nodes peer with each other as their Node objects appear, install
//! each other's pod prefixes in the kernel, and pods talk across nodes
//! with their own addresses. A node added to the cluster becomes a peer of
//! the others and its pods reachable. Needs root.

#[path = "lab/mod.rs"]
mod lab;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use lab::apiserver;
use lab::podbgp::Podbgp;
use lab::{eventually, Host, Lab, Speaker};
use serde_json::json;

fn established(p: &Podbgp, peer: Ipv4Addr) -> bool {
    p.json(&["neighbor"])
        .as_array()
        .into_iter()
        .flatten()
        .any(|n| n["address"] == peer.to_string() && n["state"] == "Established")
}

#[test]
fn nodes_mesh_install_each_others_pods_and_a_new_node_joins() {
    if !lab::ready() {
        return;
    }
    let mut lab = Lab::new("k8s");
    let (cp, w1) = (lab.host("cp"), lab.host("w1"));

    // The API server, on the control-plane node as kind has it.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let server = apiserver::Server::new();
    let at = SocketAddr::from((cp.v4, 6443));
    let kubeconfig = lab::serve_api(&runtime, &cp, at, &server);
    let node = |name: &str, h: &Host, cidr: &str| {
        server.put(name, &[&h.v4.to_string()], &[cidr], json!({}));
    };
    node("cp", &cp, "10.10.0.0/24");
    node("w1", &w1, "10.10.1.0/24");

    let start = |lab: &mut Lab, h: &Host, name: &str| -> Podbgp {
        let mut p = Podbgp::new(h, 64512);
        p.kubernetes = Some((name.to_string(), kubeconfig.clone()));
        p.snat = Some(String::new());
        p.start(lab);
        p
    };
    let p_cp = start(&mut lab, &cp, "cp");
    let p_w1 = start(&mut lab, &w1, "w1");
    let pod_cp = lab.pod(
        &cp,
        "cp-pod",
        Ipv4Addr::new(10, 10, 0, 2),
        Ipv4Addr::new(10, 10, 0, 1),
    );
    let pod_w1 = lab.pod(
        &w1,
        "w1-pod",
        Ipv4Addr::new(10, 10, 1, 2),
        Ipv4Addr::new(10, 10, 1, 1),
    );
    lab::listen(&mut lab, &pod_w1);

    let meshed = eventually(Duration::from_secs(20), || {
        established(&p_cp, w1.v4) && established(&p_w1, cp.v4)
    });
    assert!(meshed, "{}{}", lab.logs(&cp), lab.logs(&w1));
    p_w1.wait_kernel(&lab, "10.10.0.0/24");
    p_cp.wait_kernel(&lab, "10.10.1.0/24");
    for p in [&p_cp, &p_w1] {
        let cni = p.cni_dir().join("10-podbgp.conflist");
        assert!(cni.exists(), "no CNI config at {}", cni.display());
    }
    // Pod to pod across nodes, with the pod's own address.
    assert_eq!(
        lab::seen_from(&pod_cp, &pod_w1, pod_w1.v4).as_deref(),
        Some("10.10.0.2"),
        "{}{}",
        lab.logs(&cp),
        lab.logs(&w1)
    );

    // A node joins: the others peer with it and reach its pods.
    let w2 = lab.host("w2");
    node("w2", &w2, "10.10.2.0/24");
    let p_w2 = start(&mut lab, &w2, "w2");
    let pod_w2 = lab.pod(
        &w2,
        "w2-pod",
        Ipv4Addr::new(10, 10, 2, 2),
        Ipv4Addr::new(10, 10, 2, 1),
    );
    lab::listen(&mut lab, &pod_w2);
    let joined = eventually(Duration::from_secs(20), || {
        established(&p_cp, w2.v4) && established(&p_w1, w2.v4) && established(&p_w2, cp.v4)
    });
    assert!(joined, "{}{}", lab.logs(&cp), lab.logs(&w2));
    p_cp.wait_kernel(&lab, "10.10.2.0/24");
    assert_eq!(
        lab::seen_from(&pod_cp, &pod_w2, pod_w2.v4).as_deref(),
        Some("10.10.0.2"),
        "{}{}",
        lab.logs(&cp),
        lab.logs(&w2)
    );
    drop(runtime);
}
