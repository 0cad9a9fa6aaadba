//! Many nodes at once, for `make scale` and its smoke test: N podbgp
//! agents in Kubernetes mode, each node a network namespace on one flat L2
//! switch (a Linux bridge takes 1,024 ports: up to about a thousand
//! nodes), the API server of the tests serving N Node objects with their
//! PodCIDRs from a namespace of its own. Full mesh, or reflectors chosen
//! from the Node API (`podbgp.io/route-reflector` on the first R nodes):
//! the others peer with them only.
//!
//! Addresses: node i at 10.79.(i / 250).(i % 250 + 1)/16, its pods at
//! 10.(100 + i / 256).(i % 256).0/24; the API server at 10.79.255.1.
//! Every kernel is watched over rtnetlink from this process, so
//! convergence is timed on one clock.

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

use super::apiserver::Server;
use super::monitor::Monitor;
use super::podbgp::Podbgp;
use super::{Host, Lab};

/// The cluster's AS.
pub const ASN: u32 = 64512;

/// One size and topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub nodes: usize,
    /// 0: full mesh; else the first `reflectors` nodes reflect.
    pub reflectors: usize,
}

impl Plan {
    /// BGP sessions in the cluster.
    pub fn sessions(&self) -> usize {
        let (n, r) = (self.nodes, self.reflectors);
        if r == 0 {
            n * n.saturating_sub(1) / 2
        } else {
            r * r.saturating_sub(1) / 2 + r * (n - r)
        }
    }

    pub fn name(&self) -> String {
        match self.reflectors {
            0 => "full mesh".into(),
            r => format!("{r} reflectors (podbgp)"),
        }
    }
}

pub fn node_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 79, (i / 250) as u8, (i % 250 + 1) as u8)
}

pub fn pod_cidr(i: usize) -> String {
    format!("10.{}.{}.0/24", 100 + i / 256, i % 256)
}

/// The cluster, built and running.
pub struct Scale {
    pub lab: Lab,
    pub plan: Plan,
    _runtime: tokio::runtime::Runtime,
    pub server: Server,
    pub nodes: Vec<Host>,
    pub agents: Vec<Podbgp>,
    kubeconfig: PathBuf,
    pub monitor: Monitor,
    _neighbors: NeighborTable,
}

/// The kernel's ARP table is one for every namespace (gc_thresh3, 1,024
/// entries by default): a few dozen nodes that each know the others fill
/// it, and a node that cannot add an entry cannot reach its API server.
/// Raised for the run, put back after.
struct NeighborTable {
    old: Vec<(String, String)>,
}

impl NeighborTable {
    const KEYS: [(&'static str, u64); 3] = [
        ("/proc/sys/net/ipv4/neigh/default/gc_thresh1", 1 << 15),
        ("/proc/sys/net/ipv4/neigh/default/gc_thresh2", 1 << 16),
        ("/proc/sys/net/ipv4/neigh/default/gc_thresh3", 1 << 17),
    ];

    fn raise() -> NeighborTable {
        let mut old = Vec::new();
        for (path, want) in Self::KEYS {
            let was = std::fs::read_to_string(path).unwrap_or_default();
            let low = was.trim().parse::<u64>().is_ok_and(|v| v < want);
            if low && std::fs::write(path, want.to_string()).is_ok() {
                old.push((path.to_string(), was.trim().to_string()));
            }
        }
        NeighborTable { old }
    }
}

impl Drop for NeighborTable {
    fn drop(&mut self) {
        for (path, was) in &self.old {
            let _ = std::fs::write(path, was);
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Figures {
    /// From the first agent started to every kernel holding every other
    /// node's pod prefix.
    pub converged: Duration,
    /// Mean and largest RSS of the agents that do not reflect, MB.
    pub agent_rss: (f64, f64),
    /// Mean CPU of those agents over the idle window, % of one core.
    pub agent_cpu: f64,
    /// Mean RSS (MB) and CPU (%) of the reflectors, if any.
    pub reflector: Option<(f64, f64)>,
}

impl Scale {
    /// Namespaces for every node and the API server, the Node objects in
    /// the API; no agent runs yet.
    pub fn build(mut lab: Lab, plan: Plan) -> Scale {
        assert!(plan.nodes <= 1000, "the address plan holds 1,000 nodes");
        let neighbors = NeighborTable::raise();
        let api_host = lab.host_at(
            "api",
            (Ipv4Addr::new(10, 79, 255, 1), 16),
            "fd79::ffff".parse().expect("v6"),
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let server = Server::new();
        // Bookmarks as often as a real API server sends them: the agents'
        // idle cost is theirs, not the test server's.
        server.lock().bookmark_every = Some(Duration::from_secs(60));
        let at = SocketAddr::from((api_host.v4, 6443));
        let kubeconfig = super::serve_api(&runtime, &api_host, at, &server);
        let mut nodes = Vec::new();
        for i in 0..plan.nodes {
            let v6: Ipv6Addr = format!("fd79::{:x}", i + 1).parse().expect("v6");
            let host = lab.host_at(&format!("n{i}"), (node_addr(i), 16), v6);
            let annotations = if i < plan.reflectors {
                json!({"podbgp.io/route-reflector": "true"})
            } else {
                json!({})
            };
            server.put(
                &format!("n{i}"),
                &[&node_addr(i).to_string()],
                &[&pod_cidr(i)],
                annotations,
            );
            nodes.push(host);
        }
        let watched: Vec<&Host> = nodes.iter().collect();
        let monitor = Monitor::new(&watched);
        Scale {
            lab,
            plan,
            _runtime: runtime,
            server,
            nodes,
            agents: Vec::new(),
            kubeconfig,
            monitor,
            _neighbors: neighbors,
        }
    }

    /// Start every agent at once; how long until every kernel held every
    /// other node's pod prefix (`None` if not within `limit`).
    pub fn start(&mut self, limit: Duration) -> Option<Duration> {
        let t0 = Instant::now();
        for (i, host) in self.nodes.iter().enumerate() {
            let mut p = Podbgp::new(host, ASN);
            p.kubernetes = Some((format!("n{i}"), self.kubeconfig.clone()));
            p.kubernetes_extra = "cni = false\nbfd = { enabled = false }".into();
            p.spawn(&mut self.lab);
            self.agents.push(p);
        }
        let n = self.nodes.len();
        let want: Vec<String> = (0..n).map(pod_cidr).collect();
        let wanted: HashSet<&str> = want.iter().map(String::as_str).collect();
        let mut have: Vec<HashSet<String>> = vec![HashSet::new(); n];
        let mut complete = 0;
        let end = t0 + limit;
        while complete < n {
            let left = end.saturating_duration_since(Instant::now());
            let change = self.monitor.next(left)?;
            if !wanted.contains(change.prefix.as_str()) || change.prefix == want[change.host] {
                continue;
            }
            let set = &mut have[change.host];
            let before = set.len() == n - 1;
            if change.added {
                set.insert(change.prefix);
            } else {
                set.remove(&change.prefix);
            }
            let after = set.len() == n - 1;
            match (before, after) {
                (false, true) => complete += 1,
                (true, false) => complete -= 1,
                _ => {}
            }
            if complete == n {
                return Some(change.at.saturating_duration_since(t0));
            }
        }
        Some(t0.elapsed())
    }

    /// The pod routes podbgp installed in node `i`'s kernel.
    pub fn pod_routes(&self, i: usize) -> Vec<String> {
        self.nodes[i]
            .text(&["ip", "-4", "route", "show", "proto", "200"])
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect()
    }

    /// RSS and CPU of every agent over `idle`, once converged.
    pub fn idle(&self, idle: Duration) -> Figures {
        let pids: Vec<Option<i32>> = self
            .nodes
            .iter()
            .map(|h| super::pid_in(h, "podbgp"))
            .collect();
        let before: Vec<u64> = pids
            .iter()
            .map(|p| p.map_or(0, |p| super::usage(p).0))
            .collect();
        let t0 = Instant::now();
        std::thread::sleep(idle);
        let elapsed = t0.elapsed().as_secs_f64();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let mut agents = (Vec::new(), Vec::new());
        let mut reflectors = (Vec::new(), Vec::new());
        for (i, pid) in pids.iter().enumerate() {
            let Some(pid) = *pid else { continue };
            let (ticks, rss_kb) = super::usage(pid);
            let cpu = ticks.saturating_sub(before[i]) as f64 / hz / elapsed * 100.0;
            let rss = rss_kb as f64 / 1024.0;
            let to = if i < self.plan.reflectors {
                &mut reflectors
            } else {
                &mut agents
            };
            to.0.push(rss);
            to.1.push(cpu);
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
        Figures {
            converged: Duration::ZERO,
            agent_rss: (mean(&agents.0), max(&agents.0)),
            agent_cpu: mean(&agents.1),
            reflector: (!reflectors.0.is_empty())
                .then(|| (mean(&reflectors.0), mean(&reflectors.1))),
        }
    }
}
