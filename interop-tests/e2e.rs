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
//! address, pod to the internet masqueraded. A node added to cluster b is
//! reachable from both clusters and the VM; a node taken away (podbgp
//! stopped, link cut) leaves every kernel. Needs root, frr and bird2.

#[path = "lab/mod.rs"]
mod lab;

use std::time::Duration;

use lab::eventually;
use lab::world::{Api, Cell, World};

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

    // A node joins cluster b: every pod in both clusters and the VM reach it.
    let b_w2 = world.add_node(1, "w2");
    let target = world.nodes[b_w2].pods[0].clone();
    for from in [0, 3] {
        let pod = world.nodes[from].pods[0].clone();
        assert_eq!(
            World::seen_from(&pod, &target, target.v4).as_deref(),
            Some(pod.v4.to_string().as_str()),
            "{} to the new node's pod",
            pod.name
        );
    }
    let vm = world.vm_host.clone();
    assert_eq!(
        World::seen_from(&vm, &target, target.v4).as_deref(),
        Some(vm.v4.to_string().as_str())
    );

    // A node goes: its prefix leaves every other kernel.
    let gone = world.nodes[2].cidr.clone();
    world.remove_node(2);
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
}
