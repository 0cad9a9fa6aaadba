//! The multi-cluster topology of the kind recipes, in namespaces: a "kind"
//! network (the lab's switch), clusters of nodes each running podbgp in
//! Kubernetes mode against its cluster's API server (in the control-plane
//! node's namespace, port 6443), an FRR route server in eBGP with every
//! node that passes routes on unchanged, an external "VM" running BIRD,
//! pods attached ptp-style, and an "internet" host only node addresses can
//! reach.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use super::apiserver::Server;
use super::bird::Bird;
use super::frr::Frr;
use super::podbgp::Podbgp;
use super::services::{self, LabService};
use super::{eventually, Advert, BfdSpec, Host, Lab, PeerSpec, Speaker};

pub const RS_ASN: u32 = 65000;
pub const VM_ASN: u32 = 64600;
/// The VM's own prefix, and the address it answers on.
pub const VM_PREFIX: &str = "10.30.0.0/24";
pub const VM_ADDR: Ipv4Addr = Ipv4Addr::new(10, 30, 0, 1);
/// The internet host, reached through a static route on every node.
pub const INTERNET_ADDR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// Hold time of every node's sessions, the mesh's and the route server's:
/// RFC 4271's least, so a node cut off is dropped within 3 s.
pub const HOLD_TIME: u16 = 3;
/// BFD on every session of the lab: the mesh's, the route server's with
/// every node and the VM's: 3 x 100 ms, a dead node noticed within 300 ms.
pub const BFD: BfdSpec = BfdSpec {
    min_rx: 100,
    min_tx: 100,
    multiplier: 3,
};

pub struct Cluster {
    pub name: &'static str,
    pub asn: u32,
    /// Pod prefixes are 10.SECOND.N.0/24, N the node's index.
    pub second: u8,
    server: Server,
    /// With an API server process: the directory of node files it follows.
    nodes_dir: Option<PathBuf>,
    kubeconfig: PathBuf,
}

impl Cluster {
    fn put(&self, name: &str, ip: &str, cidr: &str) {
        match &self.nodes_dir {
            Some(dir) => {
                let v = json!({"ips": [ip], "cidrs": [cidr], "annotations": {}});
                let tmp = dir.join(format!(".{name}.tmp"));
                std::fs::write(&tmp, v.to_string()).expect("node file");
                std::fs::rename(&tmp, dir.join(format!("{name}.json"))).expect("node file");
            }
            None => self.server.put(name, &[ip], &[cidr], json!({})),
        }
    }

    /// Add or change an object of another kind (a Service, say).
    pub fn put_object(&self, object: &Value) {
        match &self.nodes_dir {
            Some(dir) => {
                let dir = dir.join("objects");
                std::fs::create_dir_all(&dir).expect("objects directory");
                let meta = &object["metadata"];
                let name = format!(
                    "{}-{}-{}",
                    object["kind"].as_str().unwrap_or("Object"),
                    meta["namespace"].as_str().unwrap_or("_"),
                    meta["name"].as_str().unwrap_or("_"),
                );
                let tmp = dir.join(format!(".{name}.tmp"));
                std::fs::write(&tmp, object.to_string()).expect("object file");
                std::fs::rename(&tmp, dir.join(format!("{name}.json"))).expect("object file");
            }
            None => self.server.put_object(object.clone()),
        }
    }

    fn delete(&self, name: &str) {
        match &self.nodes_dir {
            Some(dir) => {
                let _ = std::fs::remove_file(dir.join(format!("{name}.json")));
            }
            None => self.server.delete(name),
        }
    }
}

/// Where the clusters' API servers run.
pub enum Api {
    /// In this process (tests).
    InProcess,
    /// As processes of this program (`PROGRAM apiserver --listen ADDR
    /// --dir DIR`), so the lab outlives it.
    Program(PathBuf),
}

pub struct Node {
    pub cluster: usize,
    pub name: String,
    pub host: Host,
    pub podbgp: Podbgp,
    pub cidr: String,
    pub pods: Vec<Host>,
    /// When its podbgp was started, its Node object already in the API.
    pub started: std::time::Instant,
    /// Taken away.
    pub retired: bool,
}

pub struct World {
    pub lab: Lab,
    runtime: tokio::runtime::Runtime,
    api: Api,
    pub clusters: Vec<Cluster>,
    pub nodes: Vec<Node>,
    pub rs_host: Host,
    pub rs: Frr,
    pub vm_host: Host,
    pub vm: Bird,
    pub internet: Host,
    /// The clusters' Services (see `services.rs`).
    pub services: Vec<LabService>,
    /// BFD's timers on every session, if it runs.
    pub bfd: Option<BfdSpec>,
}

/// One cell of the connectivity matrix: who talked to whom, and the
/// source address the receiver saw (`None`: no connection).
#[derive(Debug, Clone)]
pub struct Cell {
    pub from: String,
    pub to: String,
    pub seen: Option<String>,
    /// The address the receiver should see.
    pub want: String,
}

impl World {
    /// Build it: clusters of `(name, asn, second octet, node names)`, the
    /// first node of each its control plane; two pods per node, the route
    /// server, the VM and the internet host. Returns once every node has
    /// every pod prefix and the VM's in its kernel.
    pub fn build(lab: Lab, api: Api, clusters: &[(&'static str, u32, u8, &[&str])]) -> World {
        World::build_with(lab, api, clusters, Some(BFD))
    }

    /// As [`World::build`], with BFD at these timers everywhere, or nowhere.
    pub fn build_with(
        mut lab: Lab,
        api: Api,
        clusters: &[(&'static str, u32, u8, &[&str])],
        bfd: Option<BfdSpec>,
    ) -> World {
        let rs_host = lab.host("rs");
        let vm_host = lab.host("vm");
        let internet = lab.host("internet");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let mut world = World {
            lab,
            runtime,
            api,
            clusters: Vec::new(),
            nodes: Vec::new(),
            rs: Frr::new(&rs_host, RS_ASN),
            rs_host,
            vm: Bird::new(&vm_host, VM_ASN),
            vm_host,
            internet,
            services: Vec::new(),
            bfd,
        };
        for (h, addr) in [(&world.vm_host, VM_ADDR), (&world.internet, INTERNET_ADDR)] {
            let out = h.exec(&["ip", "addr", "add", &format!("{addr}/32"), "dev", "lo"]);
            assert!(out.status.success(), "{out:?}");
        }
        let mut hosts = Vec::new();
        for (name, asn, second, names) in clusters {
            let mut members = Vec::new();
            for n in *names {
                members.push((n.to_string(), world.lab.host(&format!("{name}-{n}"))));
            }
            let c = world.add_cluster(name, *asn, *second, &members[0].1);
            hosts.extend(members.into_iter().map(|(n, h)| (c, n, h)));
        }
        // The route server peers with every node, and the VM, and hands
        // each every path it has (ADD-PATH): an anycast service range
        // keeps every node of its cluster as a next hop.
        world.rs.route_server = true;
        for (c, _, h) in &hosts {
            let asn = world.clusters[*c].asn;
            let peer = world.session(h.v4, asn);
            world.rs.add_peer(peer);
        }
        let peer = world.session(world.vm_host.v4, VM_ASN);
        world.rs.add_peer(peer);
        world.rs.start(&mut world.lab);
        world.vm.kernel = true;
        world.vm.advertise(Advert::plain(VM_PREFIX));
        let peer = world.session(world.rs_host.v4, RS_ASN);
        world.vm.add_peer(peer);
        world.vm.start(&mut world.lab);
        let listener = ["python3", "-c", super::LISTENER];
        let (vm, inet) = (world.vm_host.clone(), world.internet.clone());
        world.lab.spawn(&vm, &listener, "listen.log");
        world.lab.spawn(&inet, &listener, "listen.log");
        for (c, n, h) in hosts {
            world.start_node(c, &n, h);
        }
        for n in &world.nodes {
            n.podbgp.wait_up(&world.lab);
        }
        world.wait_converged();
        world.deploy_services();
        world
    }

    /// A cluster whose API server listens on its control-plane node `cp`.
    fn add_cluster(&mut self, name: &'static str, asn: u32, second: u8, cp: &Host) -> usize {
        let server = Server::new();
        let at = SocketAddr::from((cp.v4, 6443));
        let mut nodes_dir = None;
        match &self.api {
            Api::InProcess => {
                super::serve_api(&self.runtime, cp, at, &server);
            }
            Api::Program(program) => {
                let dir = cp.dir.join("nodes");
                std::fs::create_dir_all(&dir).expect("nodes directory");
                let (program, listen) = (program.to_string_lossy().into_owned(), at.to_string());
                let d = dir.to_string_lossy().into_owned();
                self.lab.spawn(
                    cp,
                    &[&program, "apiserver", "--listen", &listen, "--dir", &d],
                    "apiserver.log",
                );
                nodes_dir = Some(dir);
            }
        }
        let kubeconfig = super::kubeconfig_for(cp, at);
        let cluster = Cluster {
            name,
            asn,
            second,
            server,
            nodes_dir,
            kubeconfig,
        };
        cluster.put_object(&services::service_cidr(second));
        self.clusters.push(cluster);
        self.clusters.len() - 1
    }

    /// A session of the route server's (or with it): ADD-PATH, and BFD
    /// if the lab runs it.
    fn session(&self, address: Ipv4Addr, asn: u32) -> PeerSpec {
        let mut peer = PeerSpec::new(address.into(), asn);
        peer.add_path = true;
        peer.bfd = self.bfd;
        peer
    }

    /// Register node `name` of cluster `c` on `host` with the API server,
    /// attach its two pods, start its podbgp (returning at once: see
    /// [`Podbgp::wait_up`]).
    fn start_node(&mut self, c: usize, name: &str, host: Host) -> usize {
        let index = self.nodes.iter().filter(|n| n.cluster == c).count();
        let index = u8::try_from(index).expect("at most 255 nodes in a cluster");
        let cluster = &self.clusters[c];
        let cidr = format!("10.{}.{index}.0/24", cluster.second);
        cluster.put(name, &host.v4.to_string(), &cidr);
        let mut podbgp = Podbgp::new(&host, cluster.asn);
        podbgp.kubernetes = Some((name.to_string(), cluster.kubeconfig.clone()));
        podbgp.snat = Some(String::new());
        podbgp.hold_time = HOLD_TIME;
        podbgp.add_peer(self.session(self.rs_host.v4, RS_ASN));
        podbgp.kubernetes_extra = match self.bfd {
            Some(b) => format!(
                "bfd = {{ min_rx = {}, min_tx = {}, multiplier = {} }}",
                b.min_rx, b.min_tx, b.multiplier
            ),
            None => "bfd = { enabled = false }".into(),
        };
        let out = host.exec(&[
            "ip",
            "route",
            "add",
            "198.51.100.0/24",
            "via",
            &self.internet.v4.to_string(),
            "proto",
            "static",
        ]);
        assert!(out.status.success(), "{out:?}");
        // The pods first, their listeners up, so nothing else runs while
        // podbgp starts (its start is timed by the convergence benchmark).
        let gateway = Ipv4Addr::new(10, cluster.second, index, 1);
        let mut pods = Vec::new();
        for p in [2u8, 3] {
            let pod = self.lab.pod(
                &host,
                &format!("{}-{name}-pod{}", cluster.name, p - 1),
                Ipv4Addr::new(10, cluster.second, index, p),
                gateway,
            );
            self.lab
                .spawn(&pod, &["python3", "-c", super::LISTENER], "listen.log");
            pods.push(pod);
        }
        for pod in &pods {
            let at = SocketAddr::from(([127, 0, 0, 1], 8080));
            let end = std::time::Instant::now() + Duration::from_secs(10);
            while super::connect_in(pod, at).is_err() && std::time::Instant::now() < end {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let started = std::time::Instant::now();
        podbgp.spawn(&mut self.lab);
        self.nodes.push(Node {
            cluster: c,
            name: name.to_string(),
            host,
            podbgp,
            cidr,
            pods,
            started,
            retired: false,
        });
        self.nodes.len() - 1
    }

    /// Add a node to cluster `c` and wait until every kernel has its
    /// prefix; returns its index in `nodes`.
    pub fn add_node(&mut self, c: usize, name: &str) -> usize {
        let i = self.join_node(c, name);
        self.nodes[i].podbgp.wait_up(&self.lab);
        self.wait_converged();
        i
    }

    /// Add a node to cluster `c`, returning as soon as its podbgp is
    /// started (`Node::started`), with nothing else running meanwhile.
    pub fn join_node(&mut self, c: usize, name: &str) -> usize {
        let host = self.lab.host(&format!("{}-{name}", self.clusters[c].name));
        // The route server is told of it as an operator would.
        let asn = self.clusters[c].asn;
        let cmd = [
            "configure terminal".to_string(),
            "router bgp 65000".to_string(),
            format!("neighbor {} remote-as {asn}", host.v4),
            "address-family ipv4 unicast".to_string(),
            format!("neighbor {} activate", host.v4),
            format!("neighbor {} route-server-client", host.v4),
            format!("neighbor {} addpath-tx-all-paths", host.v4),
        ];
        let mut cmd = cmd.to_vec();
        if let Some(b) = &self.bfd {
            let profile = super::frr::bfd_profile(b);
            cmd.insert(3, format!("neighbor {} bfd", host.v4));
            cmd.insert(4, format!("neighbor {} bfd profile {profile}", host.v4));
        }
        let mut args = vec!["vtysh".to_string(), "-N".into(), self.rs_host.ns.clone()];
        for c in cmd {
            args.push("-c".into());
            args.push(c);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.rs_host.exec(&args);
        assert!(out.status.success(), "{out:?}");
        self.start_node(c, name, host)
    }

    /// Take node `i` away for good: `podbgp shutdown` (a Cease, so every
    /// peer, the route server included, drops its routes at once), then
    /// what [`World::retire`] does.
    pub fn remove_node(&mut self, i: usize) {
        self.nodes[i].podbgp.shutdown();
        self.retire(i);
    }

    /// The rest of taking node `i` away, as an operator would once its
    /// routes are gone: its podbgp stopped, its link cut, its Node deleted,
    /// the route server's neighbor removed.
    pub fn retire(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        n.retired = true;
        n.podbgp.terminate();
        self.lab.cut(&n.host);
        self.clusters[n.cluster].delete(&n.name);
        let no = format!("no neighbor {}", n.host.v4);
        let out = self.rs_host.exec(&[
            "vtysh",
            "-N",
            &self.rs_host.ns,
            "-c",
            "configure terminal",
            "-c",
            "router bgp 65000",
            "-c",
            &no,
        ]);
        assert!(out.status.success(), "{out:?}");
    }

    /// Every prefix every running node should hold: every node's pod
    /// prefix and the VM's; and every node's pod prefix in the VM's kernel.
    pub fn wait_converged(&self) {
        let live = || self.nodes.iter().filter(|n| !n.retired);
        let want: Vec<String> = live()
            .map(|n| n.cidr.clone())
            .chain([VM_PREFIX.to_string()])
            .collect();
        for n in live() {
            let ok = eventually(Duration::from_secs(30), || {
                let routes = n.podbgp.kernel_routes(false);
                want.iter()
                    .filter(|w| **w != n.cidr)
                    .all(|w| routes.iter().any(|r| r.starts_with(w.as_str())))
            });
            assert!(
                ok,
                "{}: routes {:?}, want {want:?}\n{}",
                n.name,
                n.podbgp.kernel_routes(false),
                self.lab.logs(&n.host)
            );
        }
        let vm_routes = || self.vm_host.text(&["ip", "-4", "route", "show"]);
        let ok = eventually(Duration::from_secs(30), || {
            let routes = vm_routes();
            live().all(|n| routes.lines().any(|r| r.starts_with(n.cidr.as_str())))
        });
        assert!(ok, "vm: routes {}, want {want:?}", vm_routes());
    }

    /// The connectivity matrix from the first pod of node `from`: pod to
    /// pod on its node, to every other node's first pod (its cluster and
    /// the others), to the VM, from the VM back, and to the internet.
    pub fn matrix(&self, from: usize) -> Vec<Cell> {
        let src = &self.nodes[from];
        let pod = &src.pods[0];
        let own = pod.v4.to_string();
        let mut cells = Vec::new();
        let mut cell = |to: String, at: &Host, addr: Ipv4Addr, sender: &Host, want: String| {
            cells.push(Cell {
                from: sender.name.clone(),
                to,
                seen: super::seen_from(sender, at, addr),
                want,
            });
        };
        cell(
            src.pods[1].name.clone(),
            &src.pods[1],
            src.pods[1].v4,
            pod,
            own.clone(),
        );
        for n in self
            .nodes
            .iter()
            .filter(|n| n.host.ns != src.host.ns && !n.retired)
        {
            cell(
                n.pods[0].name.clone(),
                &n.pods[0],
                n.pods[0].v4,
                pod,
                own.clone(),
            );
        }
        cell("vm".into(), &self.vm_host, VM_ADDR, pod, own.clone());
        cell(
            pod.name.clone(),
            pod,
            pod.v4,
            &self.vm_host,
            self.vm_host.v4.to_string(),
        );
        cell(
            "internet".into(),
            &self.internet,
            INTERNET_ADDR,
            pod,
            src.host.v4.to_string(),
        );
        cells
    }
}
