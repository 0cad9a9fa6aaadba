//! Many nodes at once, for `make scale` and its smoke test: N podbgp
//! agents in Kubernetes mode, each node a network namespace on one flat L2
//! switch (a Linux bridge takes 1,024 ports: up to about a thousand
//! nodes), the API server of the tests serving N Node objects with their
//! PodCIDRs from a namespace of its own. Full mesh, or reflectors chosen
//! from the Node API (`podbgp.io/route-reflector` on the first R nodes):
//! the others peer with them only. The reflectors are podbgp, or BIRD in
//! their place (`bird.rs`), as Calico deploys it.
//!
//! Addresses: node i at 10.79.(i / 250).(i % 250 + 1)/16, its pods at
//! 10.(100 + i / 256).(i % 256).0/24; the API server at 10.79.255.1.
//! Every kernel is watched over rtnetlink from this process, so
//! convergence is timed on one clock. What happens after the start
//! (nodes joining, leaving, dying, a hundred at once) is in `events.rs`.

pub mod bird;
pub mod events;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

use super::apiserver::Server;
use super::monitor::Monitor;
use super::podbgp::Podbgp;
use super::{Host, Lab};

/// The cluster's AS.
pub const ASN: u32 = 64512;
/// Hold time of every session unless a plan says otherwise: podbgp's
/// default for the Kubernetes mesh. A node that dies without a word is
/// noticed by it; BFD is off, as its packets at a thousand sessions per
/// reflector would cost more CPU than this machine has.
pub const HOLD_TIME: u16 = 9;

/// The reflectors' nice value, BIRD's and podbgp's alike. A cluster of
/// hundreds of nodes gives its reflectors hosts of their own; here they
/// share two cores with every agent, and at the agents' priority a
/// reflector gets a few hundredths of a core while a thousand agents
/// start: it falls behind with keepalives, its clients' hold timers
/// expire, and the sessions flap. Ahead of the agents (as the harness is),
/// it runs as it would on its own host.
pub const REFLECTOR_NICE: i32 = -10;

/// The API server of the tests, in a namespace of its own on the switch.
pub const API: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 79, 255, 1)), 6443);

/// What reflects routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reflector {
    Podbgp,
    Bird,
}

/// One size and topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub nodes: usize,
    /// 0: full mesh; else the first `reflectors` nodes reflect.
    pub reflectors: usize,
    pub by: Reflector,
    /// Hold time of every session, seconds.
    pub hold: u16,
}

impl Plan {
    pub fn mesh(nodes: usize) -> Plan {
        Plan {
            nodes,
            reflectors: 0,
            by: Reflector::Podbgp,
            hold: HOLD_TIME,
        }
    }

    pub fn reflected(nodes: usize, reflectors: usize, by: Reflector) -> Plan {
        Plan {
            nodes,
            reflectors,
            by,
            hold: HOLD_TIME,
        }
    }

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
        match (self.reflectors, self.by) {
            (0, _) => "full mesh".into(),
            (r, Reflector::Podbgp) => format!("{r} reflectors (podbgp)"),
            (r, Reflector::Bird) => format!("{r} reflectors (BIRD)"),
        }
    }

    /// Does node `i` run BIRD rather than podbgp?
    pub fn bird(&self, i: usize) -> bool {
        self.by == Reflector::Bird && i < self.reflectors
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
    /// The podbgp of each node (`None` where BIRD runs), to ask its CLI.
    pub agents: Vec<Option<Podbgp>>,
    /// The daemon running on each node, if one does.
    pids: Vec<Option<u32>>,
    kubeconfig: PathBuf,
    pub monitor: Monitor,
    /// Pod prefix to node.
    owner: HashMap<String, usize>,
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

/// The lab of the run under way, to take down if the run is interrupted:
/// its prefix, its work directory, the ARP limits to put back.
struct Running {
    prefix: String,
    work: PathBuf,
    neighbors: Vec<(String, String)>,
}

static RUNNING: std::sync::Mutex<Option<Running>> = std::sync::Mutex::new(None);
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Held while a namespace is made: the lab is taken down between two.
static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Whether SIGINT or SIGTERM came: the lab is being taken down and the
/// process ends when that is done; nothing more should start.
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// Take down the lab of a run interrupted by SIGINT or SIGTERM (its
/// processes, its namespaces, the ARP limits raised for it) and exit.
/// To be called first thing, before any thread starts: the two signals
/// are blocked in every thread and waited for by one of its own (children
/// start with no signal blocked, as `std::process` resets the mask).
pub fn clean_up_on_signal() {
    super::on_signal(|signal| {
        INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
        // A namespace being made is finished first, then no other starts.
        let _making = MAKING.lock().unwrap_or_else(|e| e.into_inner());
        let running = RUNNING.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(r) = running {
            eprintln!("scale: interrupted, taking the lab down");
            Lab::remove(&r.prefix, &r.work);
            for (path, was) in &r.neighbors {
                let _ = std::fs::write(path, was);
            }
        }
        std::process::exit(128 + signal);
    });
}

/// Run the harness ahead of what it measures (nice -10, for every thread
/// it starts from here on; the daemons it starts run at the usual 0): the
/// loop starting a thousand agents, the API server standing in for a
/// control plane on machines of its own, and the kernel watchers taking
/// the time must not wait for CPU behind the agents, or the figures
/// measure those waits.
pub fn harness_first() {
    // SAFETY: setpriority has no memory-safety preconditions; on Linux it
    // sets the calling thread's nice value, inherited by its new threads.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, -10) };
    if rc != 0 {
        eprintln!(
            "scale: cannot raise the harness's priority: {}",
            std::io::Error::last_os_error()
        );
    }
}

impl Drop for Scale {
    fn drop(&mut self) {
        RUNNING.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// Idle cost, once converged.
#[derive(Debug, Clone)]
pub struct Idle {
    /// Mean and largest RSS of the agents that do not reflect, MB.
    pub agent_rss: (f64, f64),
    /// Mean CPU of those agents over the idle window, % of one core.
    pub agent_cpu: f64,
    /// Mean CPU time those agents took from their start to the idle
    /// window (starting, converging), ms.
    pub agent_start_cpu: f64,
    /// Mean RSS (MB) and CPU (%) of the reflectors, if any.
    pub reflector: Option<(f64, f64)>,
}

/// How a wait for kernels ended.
#[derive(Debug, Clone)]
pub struct Settled {
    /// From the start of the wait's clock to the change that completed
    /// it; `None` if the limit passed first.
    pub took: Option<Duration>,
    /// Changes meanwhile, in the kernels waited on, to pod prefixes of
    /// nodes not waited for: what a resync would show.
    pub others: usize,
    /// When the limit passed: some of the kernels not there yet, with the
    /// node whose prefix they lacked (or still held).
    pub missing: Vec<(usize, usize)>,
    /// When the limit passed: how many (kernel, prefix) pairs were not
    /// there yet, of how many.
    pub left: (usize, usize),
}

impl Scale {
    /// Namespaces for every node and the API server, the Node objects in
    /// the API; no agent runs yet.
    pub fn build(mut lab: Lab, plan: Plan) -> Scale {
        assert!(plan.nodes <= 1000, "the address plan holds 1,000 nodes");
        let neighbors = NeighborTable::raise();
        // From here on an interrupt takes down what is made.
        *RUNNING.lock().unwrap_or_else(|e| e.into_inner()) = Some(Running {
            prefix: lab.prefix().to_string(),
            work: lab.work().to_path_buf(),
            neighbors: neighbors.old.clone(),
        });
        let IpAddr::V4(api_v4) = API.ip() else {
            unreachable!("the API server has an IPv4 address")
        };
        let api_host = lab.host_at("api", (api_v4, 16), "fd79::ffff".parse().expect("v6"));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let server = Server::new();
        // Bookmarks as often as a real API server sends them: the agents'
        // idle cost is theirs, not the test server's.
        server.lock().bookmark_every = Some(Duration::from_secs(60));
        let kubeconfig = super::serve_api(&runtime, &api_host, API, &server);
        let mut nodes = Vec::new();
        for i in 0..plan.nodes {
            let v6: Ipv6Addr = format!("fd79::{:x}", i + 1).parse().expect("v6");
            let making = MAKING.lock().unwrap_or_else(|e| e.into_inner());
            if interrupted() {
                drop(making);
                loop {
                    // Taking the lab down ends the process.
                    std::thread::park();
                }
            }
            nodes.push(lab.host_at(&format!("n{i}"), (node_addr(i), 16), v6));
            drop(making);
        }
        let watched: Vec<&Host> = nodes.iter().collect();
        let monitor = Monitor::new(&watched);
        let scale = Scale {
            lab,
            plan,
            _runtime: runtime,
            server,
            nodes,
            agents: (0..plan.nodes).map(|_| None).collect(),
            pids: vec![None; plan.nodes],
            kubeconfig,
            monitor,
            owner: (0..plan.nodes).map(|i| (pod_cidr(i), i)).collect(),
            _neighbors: neighbors,
        };
        for i in 0..plan.nodes {
            scale.register(i);
        }
        scale
    }

    /// Node `i`'s Node object, reflector annotation and all.
    pub fn register(&self, i: usize) {
        let annotations = if i < self.plan.reflectors {
            json!({"podbgp.io/route-reflector": "true"})
        } else {
            json!({})
        };
        let addr = node_addr(i).to_string();
        self.server
            .put(&format!("n{i}"), &[&addr], &[&pod_cidr(i)], annotations);
    }

    /// Start node `i`'s daemon: podbgp, or BIRD on a BIRD reflector.
    pub fn launch(&mut self, i: usize) {
        let host = &self.nodes[i];
        let pid = if self.plan.bird(i) {
            bird::spawn(&mut self.lab, host, i, &self.plan)
        } else {
            let mut p = Podbgp::new(host, ASN);
            p.kubernetes = Some((format!("n{i}"), self.kubeconfig.clone()));
            p.hold_time = self.plan.hold;
            p.kubernetes_extra = "cni = false\nbfd = { enabled = false }".into();
            let pid = p.spawn(&mut self.lab);
            self.agents[i] = Some(p);
            pid
        };
        if i < self.plan.reflectors {
            super::renice(pid, REFLECTOR_NICE);
        }
        self.pids[i] = Some(pid);
    }

    /// SIGKILL node `i`'s daemon and reap it.
    pub fn kill(&mut self, i: usize) {
        if let Some(pid) = self.pids[i].take() {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            self.lab.reap(pid);
        }
    }

    /// The last lines of these nodes' logs, and what their FIBs and
    /// kernels hold, for a failure message.
    pub fn logs_of(&self, nodes: &[usize]) -> String {
        let mut out = String::new();
        for &i in nodes {
            let host = &self.nodes[i];
            out.push_str(&self.lab.logs(host));
            if let Some(p) = &self.agents[i] {
                out.push_str(&format!("--- n{i}: podbgp fib ---\n{}\n", p.json(&["fib"])));
            }
            for what in [&["ip", "route"][..], &["ip", "nexthop"][..]] {
                out.push_str(&format!(
                    "--- n{i}: {} ---\n{}",
                    what.join(" "),
                    host.text(what)
                ));
            }
        }
        out
    }

    /// The nodes with a daemon running.
    pub fn alive(&self) -> Vec<usize> {
        (0..self.plan.nodes)
            .filter(|&i| self.pids[i].is_some())
            .collect()
    }

    /// Start every agent at once; how long until every kernel held every
    /// other node's pod prefix.
    pub fn start(&mut self, limit: Duration) -> Settled {
        let t0 = Instant::now();
        for i in 0..self.plan.nodes {
            self.launch(i);
        }
        eprintln!(
            "scale: {} daemons started in {:.2} s",
            self.plan.nodes,
            t0.elapsed().as_secs_f64()
        );
        let all: Vec<usize> = (0..self.plan.nodes).collect();
        self.settle(t0, &all, &all, true, limit)
    }

    /// Wait until every node of `hosts` holds (`added`) or has lost the
    /// pod prefix of every node of `of` other than itself.
    pub fn settle(
        &mut self,
        t0: Instant,
        hosts: &[usize],
        of: &[usize],
        added: bool,
        limit: Duration,
    ) -> Settled {
        let n = self.plan.nodes;
        let (mut row, mut col) = (vec![usize::MAX; n], vec![usize::MAX; n]);
        for (k, &h) in hosts.iter().enumerate() {
            row[h] = k;
        }
        for (k, &o) in of.iter().enumerate() {
            col[o] = k;
        }
        let mut done = vec![false; hosts.len() * of.len()];
        let mut left = hosts
            .iter()
            .map(|h| of.iter().filter(|&o| o != h).count())
            .sum::<usize>();
        let mut others = 0;
        let end = t0 + limit;
        while left > 0 {
            let wait = end.saturating_duration_since(Instant::now());
            let Some(change) = self.monitor.next(wait) else {
                let missing = hosts
                    .iter()
                    .enumerate()
                    .flat_map(|(r, &h)| of.iter().enumerate().map(move |(c, &o)| (r, h, c, o)))
                    .filter(|&(r, h, c, o)| h != o && !done[r * of.len() + c])
                    .map(|(_, h, _, o)| (h, o))
                    .take(5)
                    .collect();
                return Settled {
                    took: None,
                    others,
                    missing,
                    left: (left, done.len()),
                };
            };
            let Some(&node) = self.owner.get(&change.prefix) else {
                continue;
            };
            let (r, c) = (row[change.host], col[node]);
            if r == usize::MAX || node == change.host {
                continue;
            }
            if c == usize::MAX {
                others += 1;
                continue;
            }
            let cell = &mut done[r * of.len() + c];
            let now = change.added == added;
            if now != *cell {
                *cell = now;
                if now {
                    left -= 1;
                } else {
                    left += 1;
                }
            }
            if left == 0 {
                let took = change.at.saturating_duration_since(t0);
                return Settled {
                    took: Some(took),
                    others,
                    missing: Vec::new(),
                    left: (0, done.len()),
                };
            }
        }
        Settled {
            took: Some(t0.elapsed()),
            others,
            missing: Vec::new(),
            left: (0, done.len()),
        }
    }

    /// Sessions podbgp ended because their hold timer expired, over every
    /// agent's log: what an overloaded machine shows first.
    pub fn hold_expiries(&self) -> usize {
        self.nodes
            .iter()
            .filter_map(|h| std::fs::read_to_string(h.dir.join("podbgp.log")).ok())
            .map(|log| log.matches("sent NOTIFICATION Hold Timer Expired").count())
            .sum()
    }

    /// The pod routes the daemon installed in node `i`'s kernel.
    pub fn pod_routes(&self, i: usize) -> Vec<String> {
        let proto = if self.plan.bird(i) { "bird" } else { "200" };
        self.nodes[i]
            .text(&["ip", "-4", "route", "show", "proto", proto])
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .filter(|p| self.owner.contains_key(p))
            .collect()
    }

    /// What is wrong with the kernels, if anything: each live node's must
    /// hold exactly the other live nodes' pod prefixes (not one more or
    /// less), each via its own node (ORIGINATOR_ID's, not a reflector's).
    pub fn misrouted(&self) -> Option<String> {
        let alive = self.alive();
        for &i in &alive {
            let routes = self.nodes[i].text(&["ip", "-4", "route", "show"]);
            let mut have: Vec<(String, String)> = routes
                .lines()
                .filter_map(|l| {
                    let mut words = l.split_whitespace();
                    let prefix = words.next()?;
                    self.owner.contains_key(prefix).then(|| {
                        let via = words.skip_while(|w| *w != "via").nth(1).unwrap_or("");
                        (prefix.to_string(), via.to_string())
                    })
                })
                .collect();
            have.sort();
            let mut want: Vec<(String, String)> = alive
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| (pod_cidr(j), node_addr(j).to_string()))
                .collect();
            want.sort();
            if have != want {
                let extra: Vec<_> = have.iter().filter(|r| !want.contains(r)).collect();
                let missing: Vec<_> = want.iter().filter(|r| !have.contains(r)).collect();
                return Some(format!(
                    "node {i}'s kernel: {} routes, {} wanted; extra {extra:?}, missing {missing:?}",
                    have.len(),
                    want.len()
                ));
            }
        }
        None
    }

    /// RSS and CPU of every daemon over `idle`, once converged.
    pub fn idle(&self, idle: Duration) -> Idle {
        let pids: Vec<Option<i32>> = self.pids.iter().map(|p| p.map(|p| p as i32)).collect();
        let before: Vec<u64> = pids
            .iter()
            .map(|p| p.map_or(0, |p| super::usage(p).0))
            .collect();
        let t0 = Instant::now();
        std::thread::sleep(idle);
        let elapsed = t0.elapsed().as_secs_f64();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let start_cpu: Vec<f64> = (0..pids.len())
            .filter(|&i| pids[i].is_some() && i >= self.plan.reflectors)
            .map(|i| before[i] as f64 / hz * 1000.0)
            .collect();
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
        Idle {
            agent_rss: (mean(&agents.0), max(&agents.0)),
            agent_cpu: mean(&agents.1),
            agent_start_cpu: mean(&start_cpu),
            reflector: (!reflectors.0.is_empty())
                .then(|| (mean(&reflectors.0), mean(&reflectors.1))),
        }
    }
}
