//! `make lab`: two kind-style clusters, an FRR route server, an external
//! BIRD "VM", pods and an internet host, in network namespaces, joined
//! into one flat network by podbgp (see `interop-tests/lab/world.rs`).
//!
//!   lab up          build it (after removing any earlier one) and show it
//!   lab down        remove everything it made
//!   lab apiserver --listen ADDR --dir DIR
//!                   a cluster's API server, run by `up` in the cluster's
//!                   control-plane namespace; its Nodes are DIR's files
//!
//! Needs root, Debian's frr, bird2, nftables and python3, and the podbgp
//! binary beside this program's directory (target/release/podbgp) or in
//! `PODBGP`.

#[path = "../../interop-tests/lab/mod.rs"]
mod lab;

use std::path::PathBuf;
use std::process::ExitCode;

use lab::world::{Api, Cell, World};
use lab::Lab;

/// Every namespace the lab makes is named `podbgp-lab-...`.
const PREFIX: &str = "podbgp-lab";

fn work() -> PathBuf {
    std::env::var_os("PODBGP_LAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/podbgp-lab"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("up") => up(),
        Some("down") => {
            Lab::remove(PREFIX, &work());
            println!("lab removed: namespaces {PREFIX}-*, {}", work().display());
            ExitCode::SUCCESS
        }
        Some("apiserver") => apiserver(&args[1..]),
        _ => {
            eprintln!("usage: lab up | lab down | lab apiserver --listen ADDR --dir DIR");
            ExitCode::from(2)
        }
    }
}

fn up() -> ExitCode {
    if !lab::ready() {
        return ExitCode::FAILURE;
    }
    let program = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("lab"));
    println!(
        "building the lab in namespaces {PREFIX}-* (files in {})",
        work().display()
    );
    let world = World::build(
        Lab::persistent(PREFIX, work()),
        Api::Program(program),
        &[
            ("a", 64512, 10, &["cp", "w1", "w2"]),
            ("b", 64513, 20, &["cp", "w1"]),
        ],
    );
    let node = &world.nodes[0];
    let ns = &node.host.ns;
    println!("\ncluster a: AS 64512, pods 10.10.0.0/16; cluster b: AS 64513, pods 10.20.0.0/16");
    println!(
        "route server: FRR, AS 65000 at {}; VM: BIRD, AS 64600 at {}, {}",
        world.rs_host.v4,
        world.vm_host.v4,
        lab::world::VM_PREFIX
    );
    println!("\n$ ip netns exec {ns} podbgp neighbor");
    print!("{}", node.podbgp.cli(&["neighbor"]).1);
    println!("\n$ ip netns exec {ns} podbgp bfd");
    print!("{}", node.podbgp.cli(&["bfd"]).1);
    println!("\n$ ip netns exec {ns} podbgp global rib");
    print!("{}", node.podbgp.cli(&["global", "rib"]).1);
    println!("\n$ ip netns exec {ns} ip route");
    print!("{}", node.host.text(&["ip", "route"]));
    let mut ok = true;
    for from in [0, 4] {
        let cells = world.matrix(from);
        println!(
            "\nconnectivity from {} ({}):",
            cells[0].from, world.nodes[from].pods[0].v4
        );
        println!("  {:<14} source seen", "to");
        for c in &cells {
            ok &= print_cell(c);
        }
    }
    ok &= show_services(&world);
    println!(
        "\nthe lab stays up; `make lab-down` removes it. A node's shell: ip netns exec {ns} bash"
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The Services, their routes at the VM and at a node of the other
/// cluster, and connections to them; whether every one works.
fn show_services(world: &World) -> bool {
    println!("\nservices (kube-proxy's DNAT rules: table ip lab-kube-proxy on every node):");
    for s in &world.services {
        let c = &world.clusters[s.cluster];
        let policy = if s.local { "Local" } else { "Cluster" };
        let lb = s
            .lb_ip
            .map(|ip| format!(", LoadBalancer IP {ip}"))
            .unwrap_or_default();
        println!(
            "  {}/{}: ClusterIP {}{lb}, traffic policy {policy}, endpoint {}",
            c.name, s.name, s.cluster_ip, world.nodes[s.endpoint].pods[0].name
        );
    }
    let other = world.nodes.iter().find(|n| n.cluster != 0);
    let mut shown: Vec<(&lab::Host, String)> = Vec::new();
    if let Some(n) = other {
        shown.push((&n.host, lab::services::range(world.clusters[0].second)));
    }
    for s in &world.services {
        shown.push((
            &world.vm_host,
            lab::services::range(world.clusters[s.cluster].second),
        ));
        if let Some(lb) = s.lb_ip {
            shown.push((&world.vm_host, lb.to_string()));
        }
    }
    for (host, prefix) in shown {
        println!("\n$ ip netns exec {} ip route show {prefix}", host.ns);
        print!("{}", host.text(&["ip", "route", "show", &prefix]));
    }
    let node_addresses: Vec<String> = world
        .nodes
        .iter()
        .flat_map(|n| [n.host.v4.to_string(), lab::services::gateway(&n.cidr)])
        .collect();
    println!("\nconnections to the services:");
    let mut ok = true;
    for c in &world.service_cells() {
        let good = c.seen.as_deref() == Some(c.want.as_str());
        let what = match c.seen.as_deref() {
            None => "no connection".to_string(),
            Some(seen) if good && node_addresses.iter().any(|a| a == seen) => {
                format!("{seen}  (a node of the Service's cluster: kube-proxy masquerades)")
            }
            Some(seen) if good => format!("{seen}  (the client's own)"),
            Some(seen) => format!("{seen}  (expected {})", c.want),
        };
        println!(
            "  {:<16} -> {:<24} {} {what}",
            c.from,
            c.to,
            if good { "ok  " } else { "FAIL" }
        );
        ok &= good;
    }
    ok
}

/// One line of the matrix; whether it is what it should be.
fn print_cell(c: &Cell) -> bool {
    let what = match c.seen.as_deref() {
        None => "no connection".to_string(),
        Some(s) if s == c.want && c.to == "internet" => format!("{s}  (the node's: masqueraded)"),
        Some(s) if s == c.want && c.from == "vm" => format!("{s}  (the VM's own)"),
        Some(s) if s == c.want => format!("{s}  (the pod's own)"),
        Some(s) => format!("{s}  (expected {})", c.want),
    };
    let good = c.seen.as_deref() == Some(c.want.as_str());
    let to = if c.from == "vm" {
        format!("vm -> {}", c.to)
    } else {
        c.to.clone()
    };
    println!(
        "  {:<14} {} {}",
        to,
        if good { "ok  " } else { "FAIL" },
        what
    );
    good
}

fn apiserver(args: &[String]) -> ExitCode {
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let (Some(listen), Some(dir)) = (value("--listen"), value("--dir")) else {
        eprintln!("usage: lab apiserver --listen ADDR --dir DIR");
        return ExitCode::from(2);
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return ExitCode::FAILURE;
    };
    runtime.block_on(async {
        match tokio::net::TcpListener::bind(&listen).await {
            Ok(l) => {
                lab::apiserver::serve_dir(l, PathBuf::from(dir)).await;
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("apiserver: {listen}: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
