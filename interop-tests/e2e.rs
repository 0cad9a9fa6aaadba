//! The scenario users came for, end to end: two clusters and an external
//! VM joined into one flat network by podbgp, in namespaces
//! (`lab/world.rs`), with no route typed by hand.
//!
//!   cluster a (AS 64512): cp, w1, w2      cluster b (AS 64513): cp, w1
//!   every node: podbgp in Kubernetes mode (mesh, FIB, SNAT), two pods
//!   FRR route server (AS 65000), eBGP with every node and the VM
//!   VM (BIRD, AS 64600, 10.30.0.0/24); an internet host only nodes reach
//!
//! Every cell of the connectivity matrix connects: pod to pod on a node,
//! across nodes, across clusters, pod to VM and back with the pod's own
//! address, pod to the internet masqueraded; every route to a node's pods
//! points at that node. podbgp restarted (SIGTERM) on
//! a node while its pod sends a datagram every 25 ms to a pod of the other
//! cluster loses none (with graceful restart off it lost 6 of 200 when this
//! was written). A node added to cluster b is
//! reachable from both clusters and the VM; a node that leaves (`podbgp
//! shutdown`, its link still up) leaves every kernel, the VM's too. Needs
//! root, frr and bird2.

#[path = "lab/mod.rs"]
mod lab;

use std::collections::BTreeSet;
use std::time::Duration;

use lab::world::{Api, Cell, World};
use lab::{eventually, Speaker};

/// A UDP echo on port 9000.
const ECHO: &str = "import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('0.0.0.0', 9000))
while True:
    data, a = s.recvfrom(64)
    s.sendto(data, a)
";

/// 200 numbered datagrams to TARGET:9000, one every 25 ms (5 s), then how
/// many came back.
const PROBE: &str = "import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setblocking(False)
back = set()
def drain():
    while True:
        try:
            data, _ = s.recvfrom(64)
            back.add(int(data))
        except BlockingIOError:
            return
for i in range(200):
    s.sendto(str(i).encode(), ('TARGET', 9000))
    time.sleep(0.025)
    drain()
end = time.time() + 1
while time.time() < end:
    drain()
    time.sleep(0.01)
print('lost', 200 - len(back), 'of 200 sent', flush=True)
";

fn check(cells: &[Cell]) {
    let bad: Vec<&Cell> = cells
        .iter()
        .filter(|c| c.seen.as_deref() != Some(c.want.as_str()))
        .collect();
    assert!(
        bad.is_empty(),
        "cells that failed: {bad:#?}\nall: {cells:#?}"
    );
}

/// Every node and the VM reach a node's pods straight through that node,
/// even across clusters, where the route server also hears the prefix from
/// the node's cluster mates: they pass the owner's address on as a
/// third-party next hop (RFC 4271 §5.1.3) instead of their own.
fn check_next_hops(world: &World) {
    for owner in &world.nodes {
        let want = format!("{} via {}", owner.cidr, owner.host.v4);
        let routers = world
            .nodes
            .iter()
            .filter(|n| n.name != owner.name)
            .map(|n| &n.host)
            .chain([&world.vm_host]);
        for r in routers {
            let route = || {
                let out = r.text(&["ip", "-4", "route", "show", &owner.cidr]);
                lab::podbgp::without_nexthop_id(&out)
                    .split(' ')
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let direct = eventually(Duration::from_secs(5), || route() == want);
            assert!(direct, "{}: {:?}, wanted {want}", r.name, route());
        }
    }
}

/// BFD runs on every session: each node's with its cluster mates and the
/// route server (FRR's bfdd), the VM's (BIRD) with the route server, all Up
/// at the lab's 3 x 100 ms.
fn check_bfd(world: &World) {
    for n in &world.nodes {
        let mates = world
            .nodes
            .iter()
            .filter(|m| m.cluster == n.cluster && m.name != n.name)
            .count();
        let up = || {
            let list = n.podbgp.json(&["bfd"]);
            let sessions = list.as_array().cloned().unwrap_or_default();
            sessions.len() == mates + 1
                && sessions
                    .iter()
                    .all(|s| s["state"] == "Up" && s["transmit_interval_ms"] == 100.0)
        };
        assert!(
            eventually(Duration::from_secs(15), up),
            "{}: {}",
            n.name,
            n.podbgp.json(&["bfd"])
        );
    }
    let vm = world.vm.birdc(&["show", "bfd", "sessions"]);
    assert!(
        vm.lines()
            .any(|l| l.contains(&world.rs_host.v4.to_string()) && l.contains(" Up ")),
        "BIRD: {vm}"
    );
}

/// The next hops of the kernel's route to `prefix` on `host`, one or many.
fn next_hops(host: &lab::Host, prefix: &str) -> BTreeSet<String> {
    let text = host.text(&["ip", "-4", "route", "show", prefix]);
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .windows(2)
        .filter(|w| w[0] == "via")
        .map(|w| w[1].to_string())
        .collect()
}

/// Wait (bounded) until `host`'s route to `prefix` goes via `want`.
fn wait_next_hops(host: &lab::Host, prefix: &str, want: &BTreeSet<String>) {
    let ok = eventually(Duration::from_secs(15), || next_hops(host, prefix) == *want);
    assert!(
        ok,
        "{}: {prefix} via {:?}, wanted {want:?}",
        host.name,
        next_hops(host, prefix)
    );
}

/// Services across clusters (see `lab/services.rs`): cluster a's range is
/// anycast from its three nodes and every other kernel, the route server's
/// (FRR) and the VM's (BIRD) included, spreads it over all three; a pod of
/// cluster b reaches cluster a's ClusterIP and the backend sees the pod's
/// own address; the VM reaches the LoadBalancer IP, through the one node
/// holding the endpoint (externalTrafficPolicy Local), and the route moves
/// with the endpoint; a pod of cluster a reaches cluster b's ClusterIP.
fn check_services(world: &mut World) {
    let addrs: Vec<String> = world.nodes.iter().map(|n| n.host.v4.to_string()).collect();
    let set = |list: &[usize]| {
        list.iter()
            .map(|&i| addrs[i].clone())
            .collect::<BTreeSet<String>>()
    };
    let (a_range, b_range) = ("10.11.0.0/16", "10.21.0.0/16");
    let (a_nodes, b_nodes) = (set(&[0, 1, 2]), set(&[3, 4]));
    for i in [3, 4] {
        wait_next_hops(&world.nodes[i].host, a_range, &a_nodes);
    }
    for i in [0, 1, 2] {
        wait_next_hops(&world.nodes[i].host, b_range, &b_nodes);
    }
    wait_next_hops(&world.vm_host, a_range, &a_nodes);
    wait_next_hops(&world.vm_host, b_range, &b_nodes);
    // FRR holds every node's path, all in its multipath set, and installs
    // them as one route; BIRD got every path too (ADD-PATH).
    wait_next_hops(&world.rs_host, a_range, &a_nodes);
    let rs = world
        .rs
        .vtysh(&format!("show bgp ipv4 unicast {a_range} json"));
    let rs: serde_json::Value = serde_json::from_str(&rs).unwrap_or_default();
    let multipath: BTreeSet<String> = rs["paths"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["multipath"] == true || p["bestpath"]["overall"] == true)
        .filter_map(|p| p["nexthops"][0]["ip"].as_str().map(str::to_string))
        .collect();
    assert_eq!(multipath, a_nodes, "route server: {rs}");
    let bird = world.vm.birdc(&["show", "route", a_range]);
    let bird_paths = bird
        .lines()
        .filter(|l| l.trim_start().starts_with("via "))
        .count();
    assert_eq!(bird_paths, 3, "BIRD: {bird}");

    // Learned service ranges keep the pod's source address (SNAT).
    let snat = world.nodes[3].podbgp.json(&["snat"]);
    assert!(
        snat.to_string().contains(a_range),
        "b-cp's no-masquerade set lacks {a_range}: {snat}"
    );

    // Cluster a's Service is Local both ways: its ClusterIP and
    // LoadBalancer IP come from the node holding the endpoint only; the
    // backend sees the client's own address (a pod of b, the VM). Cluster
    // b's is Cluster-wide: any of b's nodes takes it and masquerades.
    let a_web = world.services[0].clone();
    let lb = a_web.lb_ip.expect("a LoadBalancer IP").to_string();
    wait_next_hops(&world.vm_host, &lb, &set(&[a_web.endpoint]));
    let why = world.nodes[a_web.endpoint]
        .podbgp
        .json(&["global", "rib", &lb]);
    assert!(
        why.to_string().contains(
            "LoadBalancer IP of default/web (externalTrafficPolicy Local, endpoint here)"
        ),
        "{why}"
    );
    let cells = world.service_cells();
    assert_eq!(cells.len(), 3, "{cells:#?}");
    check(&cells);

    // The endpoint moves: so does the route at the VM, and back.
    let vm = world.vm_host.clone();
    for to in [2, 1] {
        world.move_endpoint(0, to);
        wait_next_hops(&world.vm_host, &lb, &set(&[to]));
        let backend = world.nodes[to].pods[0].clone();
        assert_eq!(
            lab::seen_from(&vm, &backend, &lb).as_deref(),
            Some(vm.v4.to_string().as_str()),
            "the VM to {lb}, its endpoint on {}",
            world.nodes[to].name
        );
    }
}

#[test]
fn two_clusters_and_a_vm_make_one_flat_network() {
    if !lab::ready() {
        return;
    }
    let mut world = World::build(
        lab::Lab::new("e2e"),
        Api::InProcess,
        &[
            ("a", 64512, 10, &["cp", "w1", "w2"]),
            ("b", 64513, 20, &["cp", "w1"]),
        ],
    );
    // From a pod of cluster a's control plane, and of cluster b's worker.
    check(&world.matrix(0));
    check(&world.matrix(4));
    check_next_hops(&world);
    check_bfd(&world);
    check_services(&mut world);

    // podbgp restarted on a node while its pod talks across clusters: the
    // routes persist (kernel routes adopted, peers keep ours while we are
    // away), so not one packet is lost.
    let (src, dst) = (
        world.nodes[0].pods[0].clone(),
        world.nodes[4].pods[0].clone(),
    );
    world.lab.spawn(&dst, &["python3", "-c", ECHO], "echo.log");
    let echoing = eventually(Duration::from_secs(10), || {
        dst.text(&["ss", "-Hunl", "sport", "= :9000"])
            .contains("9000")
    });
    assert!(echoing, "the echo server did not start");
    let probe = PROBE.replace("TARGET", &dst.v4.to_string());
    world
        .lab
        .spawn(&src, &["python3", "-c", &probe], "probe.log");
    std::thread::sleep(Duration::from_millis(500));
    world.nodes[0].podbgp.terminate();
    world.nodes[0].podbgp.start(&mut world.lab);
    let log = src.dir.join("probe.log");
    let done = eventually(Duration::from_secs(20), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("sent"))
    });
    let result = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(done, "the probe did not finish: {result}");
    assert!(
        result.contains("lost 0 "),
        "packets lost across the restart: {result}"
    );

    // A node joins cluster b: every pod in both clusters and the VM reach it.
    let b_w2 = world.add_node(1, "w2");
    let target = world.nodes[b_w2].pods[0].clone();
    for from in [0, 3] {
        let pod = world.nodes[from].pods[0].clone();
        assert_eq!(
            lab::seen_from(&pod, &target, target.v4).as_deref(),
            Some(pod.v4.to_string().as_str()),
            "{} to the new node's pod",
            pod.name
        );
    }
    let vm = world.vm_host.clone();
    assert_eq!(
        lab::seen_from(&vm, &target, target.v4).as_deref(),
        Some(vm.v4.to_string().as_str())
    );

    // A node leaves: `podbgp shutdown`, its link still up (its sessions
    // would carry on without the Ceases); its prefix leaves every other
    // kernel, the VM's too. Then it goes: stopped, cut, deleted.
    let gone = world.nodes[2].cidr.clone();
    world.nodes[2].podbgp.shutdown();
    let vm_has = || {
        world
            .vm_host
            .text(&["ip", "-4", "route", "show", &gone])
            .contains(gone.as_str())
    };
    assert!(
        eventually(Duration::from_secs(15), || !vm_has()),
        "vm: {gone} still in the kernel"
    );
    for (i, n) in world.nodes.iter().enumerate() {
        if i == 2 {
            continue;
        }
        let left = eventually(Duration::from_secs(15), || {
            !n.podbgp
                .kernel_routes(false)
                .iter()
                .any(|r| r.starts_with(gone.as_str()))
        });
        assert!(
            left,
            "{}: {gone} still in the kernel: {:?}",
            n.name,
            n.podbgp.kernel_routes(false)
        );
    }
    world.retire(2);
    world.wait_converged();
}
