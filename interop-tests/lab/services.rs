//! Services in the lab: each cluster's service range (a ServiceCIDR
//! object), one Service per cluster backed by a pod on one node, and what
//! kube-proxy does on a real node, as nftables DNAT rules in a table of
//! the lab's own (`ip lab-kube-proxy`, never podbgp's).
//!
//! A cluster whose second octet is S has pods in 10.S.0.0/16, services in
//! 10.(S+1).0.0/16 and LoadBalancer IPs in 10.(S+2).0.0/24. A Service's
//! port is its pods' listener's, 8080.
//!
//! kube-proxy's rules, in short: from every node, a ClusterIP or
//! LoadBalancer IP goes to the endpoint; traffic from outside the
//! cluster's pod range is masqueraded on the way (so the reply comes back
//! through the node that translated it) unless the Service's policy is
//! Local, where nothing is masqueraded and the backend sees the client's
//! own address. Where kube-proxy keeps a Local Service's rule on every
//! node and drops its traffic on nodes without an endpoint, the lab has
//! the rule on the endpoint's node only and lets the others route it.

use std::fmt::Write;
use std::net::Ipv4Addr;

use serde_json::{json, Value};

use super::apiserver;
use super::world::{Cell, World};

/// The namespace of the lab's Services.
pub const NAMESPACE: &str = "default";
/// The port a Service takes, the same as its pods listen on ([`super::LISTENER`]).
pub const PORT: u16 = 8080;

/// One Service of the lab.
#[derive(Debug, Clone)]
pub struct LabService {
    pub cluster: usize,
    pub name: String,
    pub cluster_ip: Ipv4Addr,
    pub lb_ip: Option<Ipv4Addr>,
    /// Of type LoadBalancer (else ClusterIP).
    pub load_balancer: bool,
    /// `externalTrafficPolicy` and `internalTrafficPolicy` Local.
    pub local: bool,
    /// The node (index in `World::nodes`) whose first pod backs it.
    pub endpoint: usize,
}

/// The service range of a cluster whose second octet is `second`.
pub fn range(second: u8) -> String {
    format!("10.{}.0.0/16", second + 1)
}

/// The `n`th address of the cluster's service range.
pub fn cluster_ip(second: u8, n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, second + 1, 0, n)
}

/// The `n`th address of the cluster's LoadBalancer pool.
pub fn lb_ip(second: u8, n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, second + 2, 0, n)
}

/// The ServiceCIDR object of a cluster.
pub fn service_cidr(second: u8) -> Value {
    apiserver::service_cidr("kubernetes", &[&range(second)])
}

impl LabService {
    /// The Service object, as the API server holds it.
    pub fn object(&self) -> Value {
        let policy = if self.local { "Local" } else { "Cluster" };
        let kind = if self.load_balancer {
            "LoadBalancer"
        } else {
            "ClusterIP"
        };
        let mut spec = json!({
            "type": kind,
            "clusterIP": self.cluster_ip.to_string(),
            "internalTrafficPolicy": policy,
            "ports": [{"port": PORT, "protocol": "TCP", "targetPort": PORT}],
        });
        if self.load_balancer {
            spec["externalTrafficPolicy"] = json!(policy);
        }
        let ingress: Vec<Value> = self
            .lb_ip
            .iter()
            .map(|ip| json!({"ip": ip.to_string()}))
            .collect();
        apiserver::service(
            NAMESPACE,
            &self.name,
            spec,
            json!({"loadBalancer": {"ingress": ingress}}),
            json!({}),
        )
    }

    /// Its EndpointSlice: the first pod of its endpoint node, ready.
    pub fn slice(&self, world: &World) -> Value {
        let node = &world.nodes[self.endpoint];
        let pod = node.pods[0].v4.to_string();
        apiserver::endpoint_slice(
            NAMESPACE,
            &format!("{}-lab", self.name),
            &self.name,
            &[(&pod, &node.name, true)],
        )
    }

    /// The addresses it answers on.
    pub fn addresses(&self) -> Vec<Ipv4Addr> {
        std::iter::once(self.cluster_ip).chain(self.lb_ip).collect()
    }
}

/// kube-proxy's rules for node `i`: every Service of its cluster.
pub fn kube_proxy_rules(world: &World, i: usize) -> String {
    let node = &world.nodes[i];
    let second = world.clusters[node.cluster].second;
    let pods = format!("10.{second}.0.0/16");
    let mut rules = String::new();
    for s in world.services.iter().filter(|s| s.cluster == node.cluster) {
        if s.local && s.endpoint != i {
            continue;
        }
        let backend = format!("{}:{PORT}", world.nodes[s.endpoint].pods[0].v4);
        for a in s.addresses() {
            let to = format!("ip daddr {a} tcp dport {PORT}");
            if !s.local {
                let _ = writeln!(
                    rules,
                    "    {to} ip saddr != {pods} meta mark set meta mark or 0x4000"
                );
            }
            let _ = writeln!(rules, "    {to} dnat to {backend}");
        }
    }
    // Made empty, then deleted, then made whole: one transaction that
    // replaces whatever an earlier call left.
    format!(
        "table ip lab-kube-proxy\ndelete table ip lab-kube-proxy\n\
         table ip lab-kube-proxy {{\n\
         \x20 chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n{rules}  }}\n\
         \x20 chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n\
         \x20   meta mark & 0x4000 == 0x4000 masquerade\n  }}\n}}\n"
    )
}

impl World {
    /// One Service per cluster, as [`World::build`] makes them: cluster
    /// a's (the first) Local with a LoadBalancer IP, backed on its second
    /// node; the others' Cluster-wide, ClusterIP only, backed on their
    /// second node too.
    pub fn deploy_services(&mut self) {
        for c in 0..self.clusters.len() {
            let second = self.clusters[c].second;
            let members: Vec<usize> = (0..self.nodes.len())
                .filter(|&i| self.nodes[i].cluster == c)
                .collect();
            let endpoint = members.get(1).or(members.first()).copied();
            let Some(endpoint) = endpoint else { continue };
            let first = c == 0;
            self.services.push(LabService {
                cluster: c,
                name: "web".into(),
                cluster_ip: cluster_ip(second, 10),
                lb_ip: first.then(|| lb_ip(second, 10)),
                load_balancer: first,
                local: first,
                endpoint,
            });
        }
        for s in 0..self.services.len() {
            self.publish(s);
        }
        self.apply_kube_proxy();
    }

    /// Put Service `s` and its EndpointSlice into its cluster's API.
    pub fn publish(&self, s: usize) {
        let svc = &self.services[s];
        let cluster = &self.clusters[svc.cluster];
        cluster.put_object(&svc.object());
        cluster.put_object(&svc.slice(self));
    }

    /// Write kube-proxy's rules on every live node.
    pub fn apply_kube_proxy(&self) {
        for (i, n) in self.nodes.iter().enumerate().filter(|(_, n)| !n.retired) {
            let path = n.host.dir.join("kube-proxy.nft");
            std::fs::write(&path, kube_proxy_rules(self, i)).expect("kube-proxy rules");
            let out = n.host.exec(&["nft", "-f", &path.to_string_lossy()]);
            assert!(out.status.success(), "{}: nft: {out:?}", n.name);
        }
    }

    /// Move Service `s`'s endpoint to node `to`, as a rescheduled pod
    /// does: a new EndpointSlice, kube-proxy's rules rewritten.
    pub fn move_endpoint(&mut self, s: usize, to: usize) {
        self.services[s].endpoint = to;
        self.publish(s);
        self.apply_kube_proxy();
    }

    /// Give Service `s` a LoadBalancer IP, or take it away, as a load
    /// balancer controller does through the Service's status.
    pub fn set_lb_ip(&mut self, s: usize, ip: Option<Ipv4Addr>) {
        self.services[s].lb_ip = ip;
        self.publish(s);
    }
}

impl World {
    /// Connections to the Services across clusters, from a pod of the
    /// other cluster and from the VM, with the source address each backend
    /// should see: the client's own where the Service is Local; an address
    /// of one of its cluster's nodes (kube-proxy masquerades a client from
    /// outside the cluster) where it is Cluster-wide.
    pub fn service_cells(&self) -> Vec<Cell> {
        let mut cells = Vec::new();
        for s in &self.services {
            let backend = &self.nodes[s.endpoint].pods[0];
            let Some(client) = self
                .nodes
                .iter()
                .find(|n| n.cluster != s.cluster && !n.retired)
            else {
                continue;
            };
            let pod = &client.pods[0];
            let mut tries = vec![(&pod.name, pod, s.cluster_ip, pod.v4.to_string())];
            if let Some(lb) = s.lb_ip {
                let vm = &self.vm_host;
                tries.push((&vm.name, vm, lb, vm.v4.to_string()));
            }
            for (from, host, addr, own) in tries {
                let seen = super::seen_from(host, backend, addr);
                let want = if s.local {
                    own
                } else {
                    // The node that took it: its address towards the backend.
                    let mut theirs = self
                        .nodes
                        .iter()
                        .filter(|n| n.cluster == s.cluster)
                        .flat_map(|n| [n.host.v4.to_string(), gateway(&n.cidr)]);
                    match &seen {
                        Some(x) if theirs.any(|a| &a == x) => x.clone(),
                        _ => format!("a node of cluster {}", self.clusters[s.cluster].name),
                    }
                };
                cells.push(Cell {
                    from: from.clone(),
                    to: format!("{}/{} {addr}", self.clusters[s.cluster].name, s.name),
                    seen,
                    want,
                });
            }
        }
        cells
    }
}

/// The address a node's pods have as their gateway: the first of its
/// pod prefix.
pub fn gateway(cidr: &str) -> String {
    let net: Ipv4Addr = cidr
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(Ipv4Addr::UNSPECIFIED);
    Ipv4Addr::from(u32::from(net) + 1).to_string()
}
