//! The scale harness at its smoke size (`lab/scale.rs`; `make scale` runs
//! the large sizes): ten nodes in namespaces on one switch, podbgp on each
//! in Kubernetes mode against the API server of the tests, as a full mesh
//! and with two reflectors chosen from the Node API (RFC 4456). Every
//! kernel ends with exactly the other nine nodes' pod prefixes, each via
//! its node, and nothing of the harness is left behind: no namespace, no
//! process. Needs root.

#[path = "lab/mod.rs"]
mod lab;

use std::collections::BTreeSet;
use std::time::Duration;

use lab::scale::{node_addr, pod_cidr, Plan, Scale};
use lab::Lab;

const NODES: usize = 10;

fn check(plan: Plan) {
    let scale = {
        let mut s = Scale::build(Lab::new("scale"), plan);
        let took = s.start(Duration::from_secs(60));
        eprintln!("{}: {NODES} nodes converged in {took:?}", plan.name());
        assert!(
            took.is_some(),
            "{}: not converged within 60 s\n{}",
            plan.name(),
            s.lab.logs(&s.nodes[NODES - 1])
        );
        s
    };
    for i in 0..NODES {
        let have: BTreeSet<String> = scale.pod_routes(i).into_iter().collect();
        let want: BTreeSet<String> = (0..NODES).filter(|&j| j != i).map(pod_cidr).collect();
        assert_eq!(have, want, "{}: node {i}'s kernel", plan.name());
        // Each via its own node, reflected or not (ORIGINATOR_ID's node,
        // not the reflector's).
        for j in (0..NODES).filter(|&j| j != i) {
            let route = scale.nodes[i].text(&["ip", "-4", "route", "show", &pod_cidr(j)]);
            let via = format!("via {}", node_addr(j));
            assert!(route.contains(&via), "node {i}: {route} wants {via}");
        }
    }
    let prefix = scale.lab.prefix().to_string();
    let pids: Vec<i32> = scale
        .nodes
        .iter()
        .filter_map(|h| lab::pid_in(h, "podbgp"))
        .collect();
    assert_eq!(pids.len(), NODES, "an agent per node");
    drop(scale);
    let alive: Vec<&i32> = pids
        .iter()
        .filter(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
        .collect();
    assert!(alive.is_empty(), "agents left running: {alive:?}");
    let left = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert!(
        !left.lines().any(|l| l.starts_with(&format!("{prefix}-"))),
        "namespaces left behind: {left}"
    );
}

#[test]
fn ten_nodes_full_mesh_and_two_reflectors() {
    if !lab::ready() {
        return;
    }
    check(Plan {
        nodes: NODES,
        reflectors: 0,
    });
    check(Plan {
        nodes: NODES,
        reflectors: 2,
    });
}
