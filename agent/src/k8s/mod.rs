//! Kubernetes mode: this node's pod prefixes, its iBGP mesh and the
//! cluster's pod prefixes, from the Node objects.
//!
//! A `kube` watcher follows every Node (it relists after 410 Gone, asks
//! for bookmarks and backs off on errors; RBAC needs get, list and watch
//! on nodes). After each change the cluster's view is worked out again and
//! handed on: the owner gets this node's `spec.podCIDRs` to advertise and
//! the mesh peers, SNAT the pod prefixes of every node, and the CNI config
//! is rewritten if this node's prefixes changed.
//!
//! Per-node overrides are annotations:
//! - `podbgp.io/asn`: the node's AS (ours, when on this node);
//! - `podbgp.io/route-reflector: "true"`: the node reflects routes; once
//!   any node does, the others peer with the reflectors only, and a
//!   reflector takes every other node as its client;
//! - `podbgp.io/peers`: extra peers of the node, `ADDRESS=ASN` pairs
//!   separated by commas (`10.0.0.1=65001,fd00::1=65002`).

pub mod cni;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use ipnet::IpNet;
use k8s_openapi::api::core::v1::Node;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::daemon::owner::Command;
use crate::daemon::PeerSettings;
use crate::settings::{Neighbor, Settings};

pub const ANNOTATION_ASN: &str = "podbgp.io/asn";
pub const ANNOTATION_REFLECTOR: &str = "podbgp.io/route-reflector";
pub const ANNOTATION_PEERS: &str = "podbgp.io/peers";

/// What podbgp needs of a Node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    /// InternalIP addresses, at most one per family.
    pub internal: Vec<IpAddr>,
    pub pod_cidrs: Vec<IpNet>,
    pub asn: Option<u32>,
    pub reflector: bool,
    pub peers: Vec<(IpAddr, u32)>,
    /// Annotations that could not be read, to log.
    pub problems: Vec<String>,
}

impl NodeInfo {
    pub fn of(node: &Node) -> NodeInfo {
        let mut info = NodeInfo {
            name: node.metadata.name.clone().unwrap_or_default(),
            ..NodeInfo::default()
        };
        let addresses = node.status.as_ref().and_then(|s| s.addresses.as_ref());
        for a in addresses.into_iter().flatten() {
            if a.type_ != "InternalIP" {
                continue;
            }
            if let Ok(ip) = a.address.parse::<IpAddr>() {
                if !info.internal.iter().any(|x| x.is_ipv4() == ip.is_ipv4()) {
                    info.internal.push(ip);
                }
            }
        }
        if let Some(spec) = &node.spec {
            let cidrs = spec
                .pod_cidrs
                .clone()
                .filter(|l| !l.is_empty())
                .or_else(|| spec.pod_cidr.clone().map(|c| vec![c]))
                .unwrap_or_default();
            for c in cidrs {
                match c.parse::<IpNet>() {
                    Ok(net) => info.pod_cidrs.push(net.trunc()),
                    Err(_) => info
                        .problems
                        .push(format!("spec.podCIDRs: {c:?} is not a prefix")),
                }
            }
        }
        let annotations = node.metadata.annotations.clone().unwrap_or_default();
        if let Some(v) = annotations.get(ANNOTATION_ASN) {
            match v.trim().parse::<u32>() {
                Ok(asn) if asn != 0 => info.asn = Some(asn),
                _ => info
                    .problems
                    .push(format!("{ANNOTATION_ASN}: {v:?} is not an AS number")),
            }
        }
        if let Some(v) = annotations.get(ANNOTATION_REFLECTOR) {
            info.reflector = v.trim().eq_ignore_ascii_case("true");
        }
        if let Some(v) = annotations.get(ANNOTATION_PEERS) {
            for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                match parse_peer(item) {
                    Some(p) => info.peers.push(p),
                    None => info
                        .problems
                        .push(format!("{ANNOTATION_PEERS}: {item:?} is not ADDRESS=ASN")),
                }
            }
        }
        info
    }
}

fn parse_peer(item: &str) -> Option<(IpAddr, u32)> {
    let (addr, asn) = item.split_once('=')?;
    let addr = addr.trim().trim_start_matches('[').trim_end_matches(']');
    Some((
        addr.parse().ok()?,
        asn.trim().parse().ok().filter(|a| *a != 0)?,
    ))
}

/// A peer the cluster calls for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MeshPeer {
    pub address: IpAddr,
    pub asn: u32,
    pub rr_client: bool,
}

/// What the cluster asks of this node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    /// This node's pod prefixes, to advertise.
    pub own_pods: Vec<IpNet>,
    /// Every node's pod prefixes.
    pub cluster_pods: Vec<IpNet>,
    pub peers: Vec<MeshPeer>,
}

/// Work out what the cluster asks of node `own`, whose AS is `asn`.
pub fn desired(own: &str, nodes: &BTreeMap<String, NodeInfo>, asn: u32, mesh: bool) -> Desired {
    let me = nodes.get(own);
    let mut out = Desired {
        own_pods: me.map(|n| n.pod_cidrs.clone()).unwrap_or_default(),
        ..Desired::default()
    };
    let mut cluster: Vec<IpNet> = nodes.values().flat_map(|n| n.pod_cidrs.clone()).collect();
    cluster.sort();
    cluster.dedup();
    out.cluster_pods = cluster;
    let mut peers = Vec::new();
    if mesh {
        let reflectors = nodes.values().any(|n| n.reflector);
        let i_reflect = me.is_some_and(|n| n.reflector);
        for n in nodes.values().filter(|n| n.name != own) {
            // With reflectors, the others peer with them only.
            if reflectors && !i_reflect && !n.reflector {
                continue;
            }
            for address in &n.internal {
                peers.push(MeshPeer {
                    address: *address,
                    asn: n.asn.unwrap_or(asn),
                    rr_client: i_reflect && !n.reflector,
                });
            }
        }
    }
    for (address, peer_asn) in me.map(|n| n.peers.clone()).unwrap_or_default() {
        peers.push(MeshPeer {
            address,
            asn: peer_asn,
            rr_client: false,
        });
    }
    peers.sort();
    peers.dedup_by_key(|p| p.address);
    out.peers = peers;
    out
}

/// The settings of a mesh peer: a neighbor with every default, the
/// address family its address is of.
pub fn peer_settings(settings: &Settings, router_id: Ipv4Addr, p: &MeshPeer) -> PeerSettings {
    let mut n = Neighbor::new(p.address, p.asn);
    n.route_reflector_client = p.rr_client;
    n.hold_time = settings.kubernetes.hold_time;
    n.families = vec![if p.address.is_ipv4() { "ipv4" } else { "ipv6" }.to_string()];
    n.description = Some("kubernetes".into());
    PeerSettings::new(settings, router_id, &n)
}

/// The cluster, reached.
pub struct Cluster {
    pub client: Client,
    pub node_name: String,
    /// This node as it was at start.
    pub own: NodeInfo,
}

/// Find the API server and read this node; bounded retries, as the API
/// server may still be coming up when the DaemonSet starts.
pub async fn connect() -> Result<Cluster, String> {
    let node_name = std::env::var("NODE_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .ok_or("kubernetes.enabled needs NODE_NAME (from the downward API: spec.nodeName)")?;
    let client = Client::try_default()
        .await
        .map_err(|e| format!("kubernetes: no API server: {e}"))?;
    let api: Api<Node> = Api::all(client.clone());
    let mut wait = Duration::from_millis(500);
    let mut last = String::new();
    for _ in 0..8 {
        match api.get(&node_name).await {
            Ok(node) => {
                let own = NodeInfo::of(&node);
                for p in &own.problems {
                    warn!(node = %node_name, "kubernetes: {p}");
                }
                return Ok(Cluster {
                    client,
                    node_name,
                    own,
                });
            }
            Err(e) => {
                last = e.to_string();
                warn!(node = %node_name, "kubernetes: cannot read this node: {last}; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(8));
            }
        }
    }
    Err(format!("kubernetes: cannot read node {node_name}: {last}"))
}

/// Where the view goes.
pub struct Outputs {
    pub owner: mpsc::Sender<Command>,
    pub snat: Option<mpsc::Sender<crate::snat::Pods>>,
    /// The CNI directory, when podbgp writes the CNI config.
    pub cni: Option<PathBuf>,
}

/// Follow the Node objects until the owner goes.
pub async fn run(cluster: Cluster, settings: Settings, router_id: Ipv4Addr, out: Outputs) {
    let asn = settings.global.asn;
    let mesh = settings.kubernetes.mesh;
    let api: Api<Node> = Api::all(cluster.client);
    let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut nodes: BTreeMap<String, NodeInfo> = BTreeMap::new();
    let mut listing: Option<BTreeMap<String, NodeInfo>> = None;
    let mut last: Option<Desired> = None;
    let mut cni_written: Option<Vec<IpNet>> = None;
    while let Some(event) = stream.next().await {
        let changed = match event {
            Ok(Event::Init) => {
                listing = Some(BTreeMap::new());
                false
            }
            Ok(Event::InitApply(node)) => {
                let info = NodeInfo::of(&node);
                listing
                    .get_or_insert_with(BTreeMap::new)
                    .insert(info.name.clone(), info);
                false
            }
            Ok(Event::InitDone) => {
                nodes = listing.take().unwrap_or_default();
                info!(nodes = nodes.len(), "kubernetes: nodes listed");
                true
            }
            Ok(Event::Apply(node)) => {
                let info = NodeInfo::of(&node);
                for p in &info.problems {
                    warn!(node = %info.name, "kubernetes: {p}");
                }
                nodes.insert(info.name.clone(), info);
                true
            }
            Ok(Event::Delete(node)) => {
                let name = node.metadata.name.unwrap_or_default();
                info!(node = %name, "kubernetes: node deleted");
                nodes.remove(&name);
                true
            }
            Err(e) => {
                warn!("kubernetes: watching nodes: {e}; backing off");
                false
            }
        };
        if !changed {
            continue;
        }
        let want = desired(&cluster.node_name, &nodes, asn, mesh);
        if last.as_ref() == Some(&want) {
            continue;
        }
        if let Some(dir) = &out.cni {
            if cni_written.as_ref() != Some(&want.own_pods) && !want.own_pods.is_empty() {
                let own_ip = nodes
                    .get(&cluster.node_name)
                    .and_then(|n| n.internal.first().copied());
                let text = cni::conflist(&want.own_pods, cni::mtu_for(own_ip));
                match cni::write(dir, &text) {
                    Ok(changed) => {
                        if changed {
                            info!(dir = %dir.display(), "kubernetes: CNI config written");
                        }
                        cni_written = Some(want.own_pods.clone());
                    }
                    Err(e) => warn!("kubernetes: CNI config in {}: {e}", dir.display()),
                }
            }
        }
        if let Some(snat) = &out.snat {
            let _ = snat
                .send(crate::snat::Pods::Local(want.own_pods.clone()))
                .await;
            let _ = snat
                .send(crate::snat::Pods::Cluster(want.cluster_pods.clone()))
                .await;
        }
        let peers = want
            .peers
            .iter()
            .map(|p| peer_settings(&settings, router_id, p))
            .collect();
        let command = Command::Kubernetes {
            advertise: want.own_pods.clone(),
            peers,
        };
        if out.owner.send(command).await.is_err() {
            return;
        }
        last = Some(want);
    }
}

#[cfg(test)]
mod tests;
