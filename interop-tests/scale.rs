//! The scale harness at its smoke size (`lab/scale/`; `make scale` runs
//! the large sizes): ten nodes in namespaces on one switch, podbgp on each
//! in Kubernetes mode against the API server of the tests, as a full mesh,
//! with two podbgp reflectors chosen from the Node API (RFC 4456), and
//! with BIRD reflecting in their place. Every kernel ends with exactly the
//! other live nodes' pod prefixes, each via its node; nodes join, leave
//! with a Cease, die without a word and come and go in groups without
//! any other route moving or any agent listing the API again; a reflector
//! dies under traffic between two pods and nothing is lost; and nothing
//! of the harness is left behind: no namespace, process or interface.
//! Needs root.

#[path = "lab/mod.rs"]
mod lab;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lab::scale::events::{Loss, LISTS_PER_AGENT};
use lab::scale::{node_addr, pod_cidr, Plan, Reflector, Scale};
use lab::Lab;

const NODES: usize = 10;
/// The least hold time RFC 4271 allows but zero: deaths noticed sooner.
const HOLD_TIME: u16 = 3;
const LIMIT: Duration = Duration::from_secs(60);

/// Build and start `plan`; every kernel complete.
fn converged(mut plan: Plan) -> Scale {
    plan.hold = HOLD_TIME;
    let mut s = Scale::build(Lab::new("scale"), plan);
    let start = s.start(LIMIT);
    eprintln!(
        "{}: {NODES} nodes converged in {:?}",
        plan.name(),
        start.took
    );
    assert!(
        start.took.is_some(),
        "{}: not converged within {LIMIT:?}\n{}",
        plan.name(),
        s.lab.logs(&s.nodes[NODES - 1])
    );
    exact(&s);
    s
}

/// Every live node's kernel holds exactly the other live nodes' pod
/// prefixes, each via its own node; waits for kernels still filling
/// (nodes just started).
fn exact(s: &Scale) {
    let mut wrong = String::new();
    let ok = lab::eventually(LIMIT, || {
        wrong = s.misrouted().unwrap_or_default();
        wrong.is_empty()
    });
    assert!(ok, "{}: {wrong}", s.plan.name());
}

/// Drop the cluster; nothing of it is left: no agent, no namespace, no
/// interface in the machine's own namespace.
fn gone(s: Scale) {
    let prefix = s.lab.prefix().to_string();
    let pids: Vec<i32> = s
        .nodes
        .iter()
        .filter_map(|h| lab::pid_in(h, "podbgp").or_else(|| lab::pid_in(h, "bird")))
        .collect();
    drop(s);
    let alive: Vec<&i32> = pids
        .iter()
        .filter(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
        .collect();
    assert!(alive.is_empty(), "daemons left running: {alive:?}");
    let left = text(&["ip", "netns", "list"]);
    assert!(
        !left.lines().any(|l| l.starts_with(&format!("{prefix}-"))),
        "namespaces left behind: {left}"
    );
}

fn text(args: &[&str]) -> String {
    std::process::Command::new(args[0])
        .args(&args[1..])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Node 9 joins, leaves with a Cease and dies; nodes 7 to 9 leave and
/// join at once. Each reaches every other kernel, and nothing else moves.
fn comings_and_goings(s: &mut Scale) {
    let name = s.plan.name();
    let last = NODES - 1;
    let ceased = s.leave(last, Loss::Cease, LIMIT);
    assert!(ceased.took.is_some(), "{name}: Cease not seen everywhere");
    let joined = s.join(last, LIMIT);
    assert!(
        joined.took.is_some(),
        "{name}: new node not seen everywhere"
    );
    std::thread::sleep(Duration::from_secs(1));
    let died = s.leave(last, Loss::Dead, LIMIT);
    let died_in = died.took.expect("a dead node's prefix withdrawn");
    // The hold time, not the restart time graceful restart would keep
    // a dead node's routes for.
    assert!(
        died_in < Duration::from_secs(u64::from(HOLD_TIME) + 3),
        "{name}: a dead node's routes went after {died_in:?}"
    );
    assert!(s.join(last, LIMIT).took.is_some(), "{name}: rejoined");
    eprintln!(
        "{name}: Cease {:?}, join {:?}, death {died_in:?}",
        ceased.took, joined.took
    );
    for e in [ceased, joined, died] {
        assert_eq!(e.others, 0, "{name}: other nodes' routes moved");
    }
    let group = [NODES - 3, NODES - 2, NODES - 1];
    let out = s.churn_leave(&group, LIMIT);
    assert!(out.settled.took.is_some(), "{name}: group not gone");
    assert_eq!(out.settled.others, 0, "{name}: other routes moved");
    assert_eq!(out.lists, 0, "{name}: agents listed the API again");
    let back = s.churn_join(&group, LIMIT);
    assert!(
        back.settled.took.is_some(),
        "{name}: group not back: {:?}\n{}",
        back.settled,
        s.logs_of(&[0, group[0]])
    );
    assert_eq!(back.settled.others, 0, "{name}: other routes moved");
    assert_eq!(
        back.lists,
        LISTS_PER_AGENT * group.len() as u32,
        "{name}: only the new agents list the API"
    );
    exact(s);
}

#[test]
fn ten_nodes_full_mesh_and_reflectors_of_both_kinds() {
    if !lab::ready() {
        return;
    }
    let links = text(&["ip", "-o", "link"]).lines().count();
    let mut mesh = converged(Plan::mesh(NODES));
    comings_and_goings(&mut mesh);
    gone(mesh);
    for by in [Reflector::Podbgp, Reflector::Bird] {
        let mut s = converged(Plan::reflected(NODES, 2, by));
        comings_and_goings(&mut s);
        gone(s);
    }
    assert_eq!(
        text(&["ip", "-o", "link"]).lines().count(),
        links,
        "interfaces left behind"
    );
}

/// Two reflectors; one dies (off the switch and killed, so only the hold
/// time tells) while a pod on node 5 sends to a pod on node 8. Every
/// datagram arrives, and no live node's pod prefix ever leaves any live
/// kernel: the paths through the other reflector carry on.
#[test]
fn a_reflector_dies_under_traffic() {
    if !lab::ready() {
        return;
    }
    let mut s = converged(Plan::reflected(NODES, 2, Reflector::Podbgp));
    let (a, b) = (5, 8);
    let pod = |i: usize| pod_cidr(i).replace(".0/24", ".10");
    for i in [a, b] {
        let p = pod(i);
        // The pod's address, on the node's loopback: a pod as far as
        // routing goes.
        let cmd = ["ip", "addr", "add", &format!("{p}/32"), "dev", "lo"];
        assert!(s.nodes[i].exec(&cmd).status.success(), "{cmd:?}");
    }
    let to: SocketAddr = format!("{}:9000", pod(b)).parse().expect("addr");
    let from: SocketAddr = format!("{}:9000", pod(a)).parse().expect("addr");
    let rx = lab::udp_in(&s.nodes[b], to);
    rx.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let tx = lab::udp_in(&s.nodes[a], from);
    let agent = s.agents[b].as_ref().expect("podbgp on node b");
    let reflected = |rib: serde_json::Value| {
        rib.as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["prefix"] == pod_cidr(a).as_str())
            .map(|d| d["paths"].as_array().map_or(0, Vec::len))
            .sum::<usize>()
    };
    assert_eq!(
        reflected(agent.json(&["global", "rib", "-a", "ipv4"])),
        2,
        "node {b} holds a path from each reflector"
    );
    s.monitor.clear();
    // 50 a second for the hold time and five seconds more.
    let total = 50 * (u64::from(HOLD_TIME) + 6);
    let sender = std::thread::spawn(move || {
        for n in 0..total {
            let _ = tx.send_to(&n.to_be_bytes(), to);
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let receiver = std::thread::spawn(move || {
        let mut got = BTreeSet::new();
        let mut buf = [0u8; 16];
        while let Ok(n) = rx.recv(&mut buf) {
            if n == 8 {
                got.insert(u64::from_be_bytes(buf[..8].try_into().expect("8 bytes")));
            }
        }
        got
    });
    std::thread::sleep(Duration::from_secs(1));
    let dead = 0;
    s.lab.cut(&s.nodes[dead]);
    s.kill(dead);
    let mut withdrawn = Vec::new();
    let end = Instant::now() + Duration::from_secs(u64::from(HOLD_TIME) + 4);
    while let Some(c) = s
        .monitor
        .next(end.saturating_duration_since(Instant::now()))
    {
        let live_prefix = (1..NODES).any(|j| pod_cidr(j) == c.prefix);
        if !c.added && live_prefix && c.host != dead {
            withdrawn.push((c.host, c.prefix));
        }
    }
    sender.join().expect("sender");
    let got = receiver.join().expect("receiver");
    let lost: Vec<u64> = (0..total).filter(|n| !got.contains(n)).collect();
    assert!(lost.is_empty(), "lost {} of {total}: {lost:?}", lost.len());
    assert!(
        withdrawn.is_empty(),
        "withdrawn from a kernel: {withdrawn:?}"
    );
    // Node b holds a's prefix by the surviving reflector alone, with a's
    // node as next hop; before, it held a path from each.
    let agent = s.agents[b].as_ref().expect("podbgp on node b");
    let rib = agent.json(&["global", "rib", "-a", "ipv4"]);
    let paths: Vec<&serde_json::Value> = rib
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["prefix"] == pod_cidr(a).as_str())
        .flat_map(|d| d["paths"].as_array().into_iter().flatten())
        .collect();
    let survivor = node_addr(1).to_string();
    assert!(
        paths.len() == 1
            && paths[0]["source"] == survivor.as_str()
            && paths[0]["next_hop"] == node_addr(a).to_string().as_str(),
        "node {b}'s paths to {}: {paths:?}",
        pod_cidr(a)
    );
    // The dead reflector's own prefix did go, from every live kernel.
    for i in 1..NODES {
        assert!(
            !s.pod_routes(i).contains(&pod_cidr(dead)),
            "node {i} still routes to the dead reflector's pods"
        );
    }
    s.lab.mend(&s.nodes[dead]);
    gone(s);
}
