//! Convergence in the lab, measured (`cargo bench -p agent --bench
//! convergence`, part of `make bench`; root, frr and bird2).
//!
//! The end-to-end lab (`lab/world.rs`: clusters a and b, five nodes running
//! podbgp in Kubernetes mode, an FRR route server, a BIRD VM), every
//! session with a 3 s hold time. Each kernel is watched over rtnetlink from
//! this process, so every change is timed when it reaches user space, on
//! one clock. Over many trials:
//!
//! - prefix added: `POST /v1/rib` (`global rib add`) on one node, until
//!   every other node's kernel holds the route; withdrawn: `DELETE
//!   /v1/rib`, until it left every other kernel;
//! - node started: a new node joining (its Node object in the API, then
//!   its podbgp started, with nothing in its kernel), until every other
//!   node holds its pod prefix; node stopped: then `POST /v1/shutdown` on
//!   it (a Cease), until the prefix left every other kernel;
//! - link cut: a node's port on the switch down, until its prefix left
//!   every other kernel: BFD (3 x 100 ms on every session) tells its
//!   peers; then the same in a lab without BFD, where their hold timers
//!   (3 s) expire;
//! - LoadBalancer IP: a Service of cluster a (externalTrafficPolicy
//!   Cluster) given one in its status, as a load balancer controller
//!   does, until the other cluster's kernels and the VM's hold it; taken
//!   away, until it left them (cluster a's own nodes originate it, so
//!   their kernels have no route to it).
//!
//! Each line gives p50, p99 and max over the trials, for the other nodes and
//! for the VM (BIRD, behind the route server). Environment: TRIALS (prefix
//! trials, default 200), NODE_TRIALS (default 40), CUT_TRIALS (default 10),
//! LB_TRIALS (default 100),
//! VERBOSE (every trial's per-kernel times), KEEP_LAB=SECONDS (the lab
//! stays up that long at the end, to look at).

#[path = "lab/mod.rs"]
mod lab;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use lab::monitor::Monitor;
use lab::services::{self, LabService};
use lab::world::{Api, World, BFD, HOLD_TIME};
use lab::Host;

/// How long a trial may take before it counts as missed.
const LIMIT: Duration = Duration::from_secs(20);

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One HTTP request to the node's API (127.0.0.1:7179 in its namespace);
/// panics unless it answers 200.
fn api(host: &Host, method: &str, path: &str, body: Option<&str>) {
    let at = "127.0.0.1:7179".parse().expect("address");
    let mut s = lab::connect_in(host, at).unwrap_or_else(|e| panic!("{}: API: {e}", host.name));
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("API request");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "{}: {method} {path}: {answer}",
        host.name
    );
}

/// The times one scenario took, to the last kernel of each group: the
/// origin's cluster, the other cluster (through the route server), the VM.
/// Trials where some kernel never saw the change are counted.
#[derive(Default)]
struct Series {
    same: Vec<Duration>,
    other: Vec<Duration>,
    vm: Vec<Duration>,
    missed: usize,
}

/// Which kernels to wait for: the hosts of the origin's cluster, of the
/// other cluster, and the VM.
struct Targets {
    same: Vec<usize>,
    other: Vec<usize>,
    vm: usize,
}

impl Series {
    /// Wait for `prefix` to be added (or removed) in every target kernel.
    fn take(&mut self, mon: &mut Monitor, t0: Instant, to: &Targets, prefix: &str, added: bool) {
        let all: Vec<usize> = to
            .same
            .iter()
            .chain(&to.other)
            .copied()
            .chain([to.vm])
            .collect();
        let seen = mon.wait(&all, prefix, added, LIMIT);
        let what = if added { "added" } else { "removed" };
        if seen.iter().any(Option::is_none) {
            self.missed += 1;
            let who: Vec<usize> = all
                .iter()
                .zip(&seen)
                .filter(|(_, s)| s.is_none())
                .map(|(h, _)| *h)
                .collect();
            eprintln!("  missed: {prefix} {what} at hosts {who:?}");
            return;
        }
        let since = |t: &Option<Instant>| t.map_or(LIMIT, |t| t.saturating_duration_since(t0));
        if std::env::var_os("VERBOSE").is_some() {
            let ms: Vec<String> = all
                .iter()
                .zip(&seen)
                .map(|(h, t)| format!("{h}:{:.1}", since(t).as_secs_f64() * 1000.0))
                .collect();
            eprintln!("  {prefix} {what}: {}", ms.join(" "));
        }
        let (same, rest) = seen.split_at(to.same.len());
        let (other, vm) = rest.split_at(to.other.len());
        let last = |s: &[Option<Instant>]| s.iter().map(since).max();
        self.same.extend(last(same));
        self.other.extend(last(other));
        self.vm.extend(last(vm));
    }
}

/// Nearest-rank percentile of sorted `v`, in milliseconds.
fn pct(v: &[Duration], p: usize) -> String {
    if v.is_empty() {
        return "-".into();
    }
    let rank = (v.len() * p).div_ceil(100).max(1);
    format!("{:.1}", v[rank - 1].as_secs_f64() * 1000.0)
}

fn row(name: &str, s: &Series) {
    let mut cells = Vec::new();
    for v in [&s.same, &s.other, &s.vm] {
        let mut v = v.clone();
        v.sort();
        for p in [50, 99, 100] {
            cells.push(format!("{:>7}", pct(&v, p)));
        }
    }
    println!(
        "{name:<34} {:>4}  {}  {}  {}  {:>6}",
        s.same.len().max(s.other.len()),
        cells[0..3].join(" "),
        cells[3..6].join(" "),
        cells[6..9].join(" "),
        s.missed
    );
}

/// A watch on every node's kernel and the VM's, in that order.
fn monitor(world: &World) -> Monitor {
    let hosts: Vec<&Host> = world
        .nodes
        .iter()
        .map(|n| &n.host)
        .chain([&world.vm_host])
        .collect();
    Monitor::new(&hosts)
}

/// Cut the links of the lab's first `count` nodes in turn, `trials` times,
/// each until its prefix left every other kernel; mend it and wait for the
/// lab to converge again.
fn cut_links(
    world: &World,
    mon: &mut Monitor,
    (trials, count): (usize, usize),
    targets: &dyn Fn(usize, Option<usize>) -> Targets,
) -> Series {
    let mut cut = Series::default();
    for k in 0..trials {
        let i = (k + 1) % count;
        let n = &world.nodes[i];
        mon.clear();
        let t0 = Instant::now();
        world.lab.cut(&n.host);
        cut.take(mon, t0, &targets(n.cluster, Some(i)), &n.cidr, false);
        world.lab.mend(&n.host);
        world.wait_converged();
    }
    cut
}

fn main() {
    if !lab::ready() {
        return;
    }
    let (trials, node_trials, cut_trials, lb_trials) = (
        env("TRIALS", 200),
        env("NODE_TRIALS", 40),
        env("CUT_TRIALS", 10),
        env("LB_TRIALS", 100),
    );
    eprintln!("convergence: building the lab (5 nodes, route server, VM; hold time {HOLD_TIME} s, BFD 3 x {} ms)", BFD.min_tx);
    let clusters_spec: &[(&'static str, u32, u8, &[&str])] = &[
        ("a", 64512, 10, &["cp", "w1", "w2"]),
        ("b", 64513, 20, &["cp", "w1"]),
    ];
    let mut world = World::build(lab::Lab::new("conv"), Api::InProcess, clusters_spec);
    let count = world.nodes.len();
    let mut mon = monitor(&world);
    let vm = count;
    let clusters: Vec<usize> = world.nodes.iter().map(|n| n.cluster).collect();
    // The lab's first nodes, watched, but for the origin `except`.
    let targets = |cluster: usize, except: Option<usize>| Targets {
        same: (0..count)
            .filter(|&j| clusters[j] == cluster && Some(j) != except)
            .collect(),
        other: (0..count).filter(|&j| clusters[j] != cluster).collect(),
        vm,
    };

    eprintln!("convergence: {trials} prefixes added and withdrawn");
    let (mut added, mut removed) = (Series::default(), Series::default());
    for k in 0..trials {
        let origin = k % count;
        let prefix = format!("10.99.{}.0/24", k % 250);
        let host = world.nodes[origin].host.clone();
        mon.clear();
        let t0 = Instant::now();
        api(
            &host,
            "POST",
            "/v1/rib",
            Some(&format!("{{\"prefix\":\"{prefix}\"}}")),
        );
        let to = targets(clusters[origin], Some(origin));
        added.take(&mut mon, t0, &to, &prefix, true);
        mon.clear();
        let t0 = Instant::now();
        let q = prefix.replace('/', "%2F");
        api(&host, "DELETE", &format!("/v1/rib?prefix={q}"), None);
        removed.take(&mut mon, t0, &to, &prefix, false);
    }

    eprintln!(
        "convergence: {node_trials} nodes added (podbgp started) and stopped (podbgp shutdown)"
    );
    let (mut stopped, mut started) = (Series::default(), Series::default());
    for k in 0..node_trials {
        // A new node each time, as kubelet registers it: its Node object
        // first, then its podbgp (fresh, nothing in its kernel).
        mon.clear();
        let c = k % 2;
        let i = world.join_node(c, &format!("n{k}"));
        let (host, cidr, t0) = {
            let n = &world.nodes[i];
            (n.host.clone(), n.cidr.clone(), n.started)
        };
        started.take(&mut mon, t0, &targets(c, None), &cidr, true);
        world.nodes[i].podbgp.wait_up(&world.lab);
        world.wait_converged();
        mon.clear();
        let t0 = Instant::now();
        api(&host, "POST", "/v1/shutdown", None);
        stopped.take(&mut mon, t0, &targets(c, None), &cidr, false);
        world.retire(i);
    }

    eprintln!("convergence: {lb_trials} LoadBalancer IPs given and taken away");
    let (mut lb_added, mut lb_removed) = (Series::default(), Series::default());
    let svc = world.services.len();
    world.services.push(LabService {
        cluster: 0,
        name: "bench".into(),
        cluster_ip: services::cluster_ip(world.clusters[0].second, 99),
        lb_ip: None,
        load_balancer: true,
        local: false,
        endpoint: 1,
    });
    world.publish(svc);
    // Cluster a's nodes originate it: only the other cluster and the VM
    // learn it.
    let learners = Targets {
        same: Vec::new(),
        other: (0..count).filter(|&j| clusters[j] != 0).collect(),
        vm,
    };
    for k in 0..lb_trials {
        let ip = services::lb_ip(world.clusters[0].second, 100 + (k % 100) as u8);
        let prefix = format!("{ip}/32");
        mon.clear();
        let t0 = Instant::now();
        world.set_lb_ip(svc, Some(ip));
        lb_added.take(&mut mon, t0, &learners, &prefix, true);
        mon.clear();
        let t0 = Instant::now();
        world.set_lb_ip(svc, None);
        lb_removed.take(&mut mon, t0, &learners, &prefix, false);
    }

    eprintln!("convergence: {cut_trials} links cut (BFD)");
    let cut = cut_links(&world, &mut mon, (cut_trials, count), &targets);

    if let Some(secs) = std::env::var("KEEP_LAB").ok().and_then(|v| v.parse().ok()) {
        eprintln!(
            "convergence: the lab stays up {secs} s (route server: {})",
            world.rs_host.ns
        );
        std::thread::sleep(Duration::from_secs(secs));
    }
    drop(mon);
    drop(world);
    eprintln!("convergence: the lab again without BFD, {cut_trials} links cut");
    let world = World::build_with(
        lab::Lab::new("conv-nobfd"),
        Api::InProcess,
        clusters_spec,
        None,
    );
    let mut mon = monitor(&world);
    let cut_no_bfd = cut_links(&world, &mut mon, (cut_trials, count), &targets);

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!();
    println!(
        "convergence in the lab: 5 nodes in 2 clusters, FRR route server, BIRD VM; hold time {HOLD_TIME} s; load average {}",
        load.split_whitespace().next().unwrap_or("?")
    );
    println!(
        "{:<34} {:>4}  {:^23}  {:^23}  {:^23}  {:>6}",
        "ms, until the last kernel of",
        "n",
        "the same cluster",
        "the other cluster",
        "the VM",
        "missed"
    );
    let head = "    p50     p99     max";
    println!("{:41}{head}  {head}  {head}", "");
    row("prefix added (global rib add)", &added);
    row("prefix withdrawn (global rib del)", &removed);
    row("node added (podbgp run)", &started);
    row("node stopped (shutdown: Cease)", &stopped);
    row(&format!("link cut (BFD 3 x {} ms)", BFD.min_tx), &cut);
    row(
        &format!("link cut (no BFD, hold {HOLD_TIME} s)"),
        &cut_no_bfd,
    );
    row("LoadBalancer IP given (status)", &lb_added);
    row("LoadBalancer IP taken away", &lb_removed);
    println!(
        "{:<34} {:>4}  {:>23}  {:>23}  {:>23}",
        "kindnet: a Node change, at most", "", "10000.0", "(no other cluster)", "(no VM)"
    );
}
