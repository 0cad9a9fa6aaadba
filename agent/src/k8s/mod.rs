//! Kubernetes mode: this node's pod prefixes, its iBGP mesh and the
//! cluster's pod prefixes, from the Node objects; the service routes it
//! originates, from Services, EndpointSlices and ServiceCIDRs
//! ([`services`]).
//!
//! `kube` watchers follow every object of those kinds (they relist after
//! 410 Gone, ask for bookmarks and back off on errors; RBAC needs get,
//! list and watch on nodes, list and watch on the others). After each
//! change the cluster's view is worked out again and handed on as an
//! [`Update`]: the owner gets this node's `spec.podCIDRs` to advertise, the
//! mesh peers and the service routes, SNAT the pod prefixes of every node,
//! and the CNI config is rewritten if this node's prefixes changed. This
//! module knows nothing of the owner: the daemon turns updates into its
//! commands.
//!
//! Per-node overrides are annotations:
//! - `podbgp.io/asn`: the node's AS (ours, when on this node);
//! - `podbgp.io/route-reflector: "true"` (annotation or label): the node
//!   reflects routes; once any node does, the others peer with the
//!   reflectors only, and a reflector takes every other node as its client;
//! - `podbgp.io/peers`: extra peers of the node, `ADDRESS=ASN` pairs
//!   separated by commas (`10.0.0.1=65001,fd00::1=65002`).

pub mod cni;
pub mod events;
pub mod services;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::ServiceCIDR;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::events::{Events, Reason};
use crate::settings::Settings;

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
        // A label as well as an annotation: labels are what node pools
        // and `kubectl label` set, and what selectors can find.
        let labels = node.metadata.labels.as_ref();
        let label = labels.and_then(|l| l.get(ANNOTATION_REFLECTOR));
        if let Some(v) = annotations.get(ANNOTATION_REFLECTOR).or(label) {
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

/// The cluster, reached.
pub struct Cluster {
    pub client: Client,
    pub node_name: String,
    /// Its Node object's uid, which Events about it name.
    pub node_uid: Option<String>,
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
                    node_uid: node.metadata.uid.clone(),
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

/// What the cluster asks of this node, sent each time it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// This node's pod prefixes to advertise and its mesh peers, each
    /// time the whole of it.
    Nodes {
        pods: Vec<IpNet>,
        peers: Vec<MeshPeer>,
    },
    /// Every service route this node originates, with why.
    Services(BTreeMap<IpNet, Vec<services::Reason>>),
}

/// Where the view goes.
pub struct Outputs {
    pub updates: mpsc::UnboundedSender<Update>,
    pub snat: Option<mpsc::Sender<crate::snat::Pods>>,
    /// The CNI directory, when podbgp writes the CNI config.
    pub cni: Option<PathBuf>,
    /// Where this node's unreadable annotations are told.
    pub events: Events,
}

/// One kind of object as its watcher reports it, reduced to what podbgp
/// needs, by `namespace/name`. A relist is gathered aside and replaces the
/// whole at its end, so a relist never shows a half-listed cluster.
struct Mirror<T> {
    items: BTreeMap<String, T>,
    listing: Option<BTreeMap<String, T>>,
    /// The first listing is complete.
    listed: bool,
}

impl<T> Mirror<T> {
    fn new() -> Self {
        Mirror {
            items: BTreeMap::new(),
            listing: None,
            listed: false,
        }
    }

    /// Take one event; whether what the mirror holds changed. `reduce`
    /// gives `None` for an object to leave out.
    fn apply<K: Resource>(
        &mut self,
        event: watcher::Result<Event<K>>,
        what: &str,
        reduce: impl Fn(&K) -> Option<T>,
    ) -> bool {
        let key = |o: &K| match o.meta().namespace.as_deref() {
            Some(ns) => format!("{ns}/{}", o.name_any()),
            None => o.name_any(),
        };
        match event {
            Ok(Event::Init) => {
                self.listing = Some(BTreeMap::new());
                false
            }
            Ok(Event::InitApply(o)) => {
                if let Some(t) = reduce(&o) {
                    self.listing
                        .get_or_insert_with(BTreeMap::new)
                        .insert(key(&o), t);
                }
                false
            }
            Ok(Event::InitDone) => {
                self.items = self.listing.take().unwrap_or_default();
                self.listed = true;
                info!(count = self.items.len(), "kubernetes: {what} listed");
                true
            }
            Ok(Event::Apply(o)) => match reduce(&o) {
                Some(t) => {
                    self.items.insert(key(&o), t);
                    true
                }
                None => self.items.remove(&key(&o)).is_some(),
            },
            Ok(Event::Delete(o)) => self.items.remove(&key(&o)).is_some(),
            Err(e) => {
                warn!("kubernetes: watching {what}: {e}; backing off");
                false
            }
        }
    }
}

/// An event of one of the watched kinds (boxed: a Node is large).
enum Watched {
    Node(Box<watcher::Result<Event<Node>>>),
    Service(Box<watcher::Result<Event<Service>>>),
    Slice(Box<watcher::Result<Event<EndpointSlice>>>),
    Cidr(Box<watcher::Result<Event<ServiceCIDR>>>),
}

/// A watcher of every object of kind `K`, its events wrapped as `Watched`.
fn watch<K>(
    client: &Client,
    wrap: fn(watcher::Result<Event<K>>) -> Watched,
) -> futures::stream::BoxStream<'static, Watched>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
    K: Send + 'static,
{
    let api: Api<K> = Api::all(client.clone());
    watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .map(wrap)
        .boxed()
}

/// Where the service ranges come from.
enum Ranges {
    /// `kubernetes.service_cidrs`.
    Configured(Vec<IpNet>),
    /// The ServiceCIDR objects.
    Objects,
}

/// Whether the API server serves ServiceCIDRs (networking.k8s.io/v1,
/// Kubernetes 1.33 on); `Err` for any other failure, to retry.
async fn has_service_cidrs(client: &Client) -> Result<bool, kube::Error> {
    let api: Api<ServiceCIDR> = Api::all(client.clone());
    match api
        .list_metadata(&kube::api::ListParams::default().limit(1))
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Decide where the service ranges come from, saying it in one line.
async fn ranges_source(client: &Client, configured: &[IpNet]) -> Ranges {
    if !configured.is_empty() {
        let list: Vec<String> = configured.iter().map(ToString::to_string).collect();
        info!(
            "kubernetes: service ranges from kubernetes.service_cidrs: {}",
            list.join(", ")
        );
        return Ranges::Configured(configured.to_vec());
    }
    // Asked once: on any other failure the watcher keeps trying, and the
    // ranges follow once it lists (nothing else waits for them).
    match has_service_cidrs(client).await {
        Ok(false) => {
            warn!("kubernetes: the API server has no ServiceCIDR objects (networking.k8s.io/v1, Kubernetes 1.33 on): no service range is advertised; set kubernetes.service_cidrs to the cluster's");
            Ranges::Configured(Vec::new())
        }
        Ok(true) => Ranges::Objects,
        Err(e) => {
            warn!("kubernetes: cannot ask for ServiceCIDRs: {e}; watching them");
            Ranges::Objects
        }
    }
}

/// Follow the cluster until the owner goes: Nodes for pod prefixes, peers,
/// SNAT and CNI; Services, EndpointSlices and ServiceCIDRs for the service
/// routes.
pub async fn run(cluster: Cluster, settings: Settings, out: Outputs) {
    let asn = settings.global.asn;
    let k = &settings.kubernetes;
    let node = cluster.node_name.clone();
    let policy = services::Policy::of(k);
    let wants_services = policy.ranges
        || policy.external_ips
        || policy.load_balancer_ips
        || policy.local_cluster_ips;
    let mut streams = vec![watch(&cluster.client, |e| Watched::Node(Box::new(e)))];
    let mut ranges = Ranges::Configured(Vec::new());
    if wants_services {
        streams.push(watch(&cluster.client, |e| Watched::Service(Box::new(e))));
        streams.push(watch(&cluster.client, |e| Watched::Slice(Box::new(e))));
        if policy.ranges {
            ranges = ranges_source(&cluster.client, &k.service_cidrs).await;
        }
        if matches!(ranges, Ranges::Objects) {
            streams.push(watch(&cluster.client, |e| Watched::Cidr(Box::new(e))));
        }
    }
    let mut events = futures::stream::select_all(streams);

    let mut nodes: Mirror<NodeInfo> = Mirror::new();
    let mut svcs: Mirror<services::ServiceInfo> = Mirror::new();
    let mut slices: Mirror<services::SliceInfo> = Mirror::new();
    let mut cidrs: Mirror<Vec<IpNet>> = Mirror::new();
    let mut last_nodes: Option<Desired> = None;
    let mut last_services = None;
    let mut cni_written: Option<Vec<IpNet>> = None;
    // This node's unreadable annotations as last told.
    let mut told = cluster.own.problems.clone();
    for p in &told {
        out.events
            .raise(Reason::InvalidConfig, format!("node {node}: {p}"));
    }
    while let Some(event) = events.next().await {
        let nodes_changed = match event {
            Watched::Node(e) => nodes.apply(*e, "nodes", |n| {
                let info = NodeInfo::of(n);
                for p in &info.problems {
                    warn!(node = %info.name, "kubernetes: {p}");
                }
                Some(info)
            }),
            Watched::Service(e) => {
                svcs.apply(*e, "services", |s| {
                    let info = services::ServiceInfo::of(s);
                    for p in &info.problems {
                        warn!(service = %s.name_any(), "kubernetes: {p}");
                    }
                    Some(info)
                });
                false
            }
            Watched::Slice(e) => {
                slices.apply(*e, "endpoint slices", |s| services::SliceInfo::of(s, &node));
                false
            }
            Watched::Cidr(e) => {
                cidrs.apply(*e, "service CIDRs", |c| {
                    let mut problems = Vec::new();
                    let r = services::service_cidr_ranges(c, &mut problems);
                    for p in &problems {
                        warn!(service_cidr = %c.name_any(), "kubernetes: {p}");
                    }
                    Some(r)
                });
                false
            }
        };
        if nodes_changed {
            let problems = nodes
                .items
                .get(&node)
                .map(|n| n.problems.clone())
                .unwrap_or_default();
            for p in problems.iter().filter(|p| !told.contains(p)) {
                out.events
                    .raise(Reason::InvalidConfig, format!("node {node}: {p}"));
            }
            told = problems;
            let want = desired(&node, &nodes.items, asn, k.mesh);
            if last_nodes.as_ref() != Some(&want) {
                write_cni(&out, &nodes.items, &node, &want.own_pods, &mut cni_written);
                if let Some(snat) = &out.snat {
                    let _ = snat
                        .send(crate::snat::Pods::Local(want.own_pods.clone()))
                        .await;
                    let _ = snat
                        .send(crate::snat::Pods::Cluster(want.cluster_pods.clone()))
                        .await;
                }
                let update = Update::Nodes {
                    pods: want.own_pods.clone(),
                    peers: want.peers.clone(),
                };
                if out.updates.send(update).is_err() {
                    return;
                }
                last_nodes = Some(want);
            }
        }
        // Service routes once Services and EndpointSlices are listed, so
        // a start never advertises what a later listing takes back; the
        // ranges join once the ServiceCIDRs are listed too.
        if !(wants_services && svcs.listed && slices.listed) {
            continue;
        }
        let mut range_list: Vec<IpNet> = match &ranges {
            Ranges::Configured(list) => list.clone(),
            Ranges::Objects => cidrs.items.values().flatten().copied().collect(),
        };
        range_list.sort();
        range_list.dedup();
        let ready = services::local_ready(slices.items.values());
        let routes = services::routes(policy, &range_list, &svcs.items, &ready);
        if last_services.as_ref() != Some(&routes) {
            if out.updates.send(Update::Services(routes.clone())).is_err() {
                return;
            }
            last_services = Some(routes);
        }
    }
}

/// Write the CNI config for this node's pod prefixes, when they changed.
fn write_cni(
    out: &Outputs,
    nodes: &BTreeMap<String, NodeInfo>,
    own: &str,
    pods: &[IpNet],
    written: &mut Option<Vec<IpNet>>,
) {
    let Some(dir) = &out.cni else { return };
    if written.as_deref() == Some(pods) || pods.is_empty() {
        return;
    }
    let own_ip = nodes.get(own).and_then(|n| n.internal.first().copied());
    let text = cni::conflist(pods, cni::mtu_for(own_ip));
    match cni::write(dir, &text) {
        Ok(changed) => {
            if changed {
                info!(dir = %dir.display(), "kubernetes: CNI config written");
            }
            *written = Some(pods.to_vec());
        }
        Err(e) => warn!("kubernetes: CNI config in {}: {e}", dir.display()),
    }
}

#[cfg(test)]
mod tests;
