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

/// The Events the API server holds about `node` with `reason`.
fn events(server: &apiserver::Server, node: &str, reason: &str) -> Vec<serde_json::Value> {
    server
        .events_about(node)
        .into_iter()
        .filter(|e| e["reason"] == reason)
        .collect()
}

fn noted(server: &apiserver::Server, node: &str, reason: &str, words: &[&str]) -> bool {
    events(server, node, reason).iter().any(|e| {
        let note = e["note"].as_str().unwrap_or("");
        words.iter().all(|w| note.contains(w))
    })
}

#[test]
fn what_podbgp_does_becomes_events_on_its_node() {
    if !lab::ready() {
        return;
    }
    let mut lab = Lab::new("k8s-ev");
    let (cp, w1, x) = (lab.host("cp"), lab.host("w1"), lab.host("x"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let server = apiserver::Server::new();
    let kubeconfig = lab::serve_api(&runtime, &cp, SocketAddr::from((cp.v4, 6443)), &server);
    // cp also peers with x, a router outside the cluster, which sends a
    // prefix outside fib.accept and one over the nodes' own subnet.
    let peers = json!({ "podbgp.io/peers": format!("{}=64999", x.v4) });
    server.put("cp", &[&cp.v4.to_string()], &["10.10.0.0/24"], peers);
    server.put("w1", &[&w1.v4.to_string()], &["10.10.1.0/24"], json!({}));
    let start = |lab: &mut Lab, h: &Host, name: &str| -> Podbgp {
        let mut p = Podbgp::new(h, 64512);
        p.kubernetes = Some((name.to_string(), kubeconfig.clone()));
        p.snat = Some(String::new());
        p.metrics = true;
        p.start(lab);
        p
    };
    let p_cp = start(&mut lab, &cp, "cp");
    let p_w1 = start(&mut lab, &w1, "w1");
    let mut router = Podbgp::new(&x, 64999);
    router.add_peer(lab::PeerSpec::new(cp.v4.into(), 64512));
    router.base_mut().adverts = ["192.168.77.0/24", "10.77.0.0/16"]
        .map(lab::Advert::plain)
        .to_vec();
    router.start(&mut lab);

    // Sessions up, on the Node of the speaker that has them.
    let (w1_ip, x_ip) = (w1.v4.to_string(), x.v4.to_string());
    let up = eventually(Duration::from_secs(20), || {
        noted(&server, "cp", "BGPSessionUp", &[&w1_ip])
            && noted(&server, "cp", "BGPSessionUp", &[&x_ip, "AS 64999"])
            && noted(&server, "w1", "BGPSessionUp", &[&cp.v4.to_string()])
    });
    assert!(up, "{:#?}\n{}", server.events_about("cp"), lab.logs(&cp));
    let first = &events(&server, "cp", "BGPSessionUp")[0];
    let uid = server.lock().nodes["cp"]["metadata"]["uid"].clone();
    assert_eq!(first["type"], "Normal");
    assert_eq!(first["regarding"]["uid"], uid, "{first:#}");
    assert_eq!(first["metadata"]["namespace"], "default");
    assert_eq!(first["reportingController"], "podbgp.io/podbgp");
    assert_eq!(first["action"], "PeerSession");

    // The route guard's refusals.
    let refused = eventually(Duration::from_secs(20), || {
        noted(
            &server,
            "cp",
            "RouteRefused",
            &["192.168.77.0/24", "outside fib.accept"],
        ) && noted(
            &server,
            "cp",
            "RouteRefused",
            &["10.77.0.0/16", "address of this node"],
        )
    });
    assert!(refused, "{:#?}", server.events_about("cp"));
    assert!(events(&server, "cp", "RouteRefused")
        .iter()
        .all(|e| e["type"] == "Warning"));

    // An annotation that cannot be read, on the Node it is on.
    server.put(
        "w1",
        &[&w1.v4.to_string()],
        &["10.10.1.0/24"],
        json!({ "podbgp.io/asn": "sixty" }),
    );
    let told = eventually(Duration::from_secs(20), || {
        noted(&server, "w1", "InvalidConfig", &["podbgp.io/asn", "sixty"])
    });
    assert!(told, "{:#?}\n{}", server.events_about("w1"), lab.logs(&w1));

    // A session reset twice: one Event for both, its series counting 2.
    let cp_ip = cp.v4.to_string();
    for _ in 0..2 {
        let (code, _, err) = p_w1.cli(&["neighbor", &cp_ip, "reset"]);
        assert_eq!(code, 0, "{err}");
        std::thread::sleep(Duration::from_millis(300));
        let back = eventually(Duration::from_secs(20), || established(&p_cp, w1.v4));
        assert!(back, "{}", lab.logs(&cp));
    }
    let series = eventually(Duration::from_secs(20), || {
        let down = events(&server, "cp", "BGPSessionDown");
        down.len() == 1 && down[0]["series"]["count"] == 2
    });
    let down = events(&server, "cp", "BGPSessionDown");
    assert!(series, "{down:#?}\n{}", lab.logs(&cp));
    assert_eq!(down[0]["type"], "Warning");
    let note = down[0]["note"].as_str().unwrap_or("");
    assert!(note.contains(&w1_ip) && note.contains("Cease"), "{note}");
    let name = down[0]["metadata"]["name"].clone();
    let writes: Vec<String> = server
        .lock()
        .event_writes
        .iter()
        .filter(|(_, n)| *n == name)
        .map(|(m, _)| m.clone())
        .collect();
    assert_eq!(writes, ["POST", "PATCH"]);
    let (_, metrics) = p_cp.metrics_get("/metrics");
    assert!(
        metrics
            .contains("podbgp_node_events_total{reason=\"BGPSessionDown\",outcome=\"repeated\"} 1"),
        "{metrics}"
    );

    // SNAT rules that cannot be written: someone deleted podbgp's table,
    // and a new node's pod prefix is to go in.
    let gone = w1.exec(&["nft", "delete", "table", "ip", "podbgp"]);
    assert!(gone.status.success(), "{gone:?}");
    server.put("w2", &["10.77.0.99"], &["10.10.2.0/24"], json!({}));
    let failed = eventually(Duration::from_secs(20), || {
        noted(&server, "w1", "SNATFailed", &["SNAT sets"])
    });
    assert!(
        failed,
        "{:#?}\n{}",
        server.events_about("w1"),
        lab.logs(&w1)
    );

    // A config file that does not load stops the start, and says so on
    // the Node as well as on stderr.
    let bad = w1.dir.join("bad.toml");
    std::fs::write(&bad, "[global]\nasn = \"sixty\"\n").expect("bad.toml");
    let bad = bad.to_string_lossy().into_owned();
    let k = kubeconfig.to_string_lossy().into_owned();
    let env = [("NODE_NAME", "w1"), ("KUBECONFIG", k.as_str())];
    lab.spawn_direct(
        &w1,
        Podbgp::bin(),
        &["run", "--config", &bad],
        &env,
        "bad.log",
    );
    let said = eventually(Duration::from_secs(20), || {
        noted(&server, "w1", "InvalidConfig", &["bad.toml", "global.asn"])
    });
    assert!(said, "{:#?}", server.events_about("w1"));
    drop(runtime);
}
