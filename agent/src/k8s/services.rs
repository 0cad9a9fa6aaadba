//! Service addresses: which of the cluster's service prefixes this node
//! originates, and why.
//!
//! - The service ranges (the ServiceCIDR objects, or
//!   `kubernetes.service_cidrs`) from every node: anycast, so a peer
//!   spreads the range over all of them (multipath).
//! - Each Service's external IPs and LoadBalancer IPs as host routes: from
//!   every node, or with `externalTrafficPolicy: Local` only from the nodes
//!   holding a ready endpoint of the Service (its EndpointSlices say where).
//! - The ClusterIPs of `internalTrafficPolicy: Local` Services, likewise
//!   from the nodes with a ready endpoint: a host route is more specific
//!   than the range, so traffic from outside lands where kube-proxy has an
//!   endpoint for it.
//!
//! `podbgp.io/advertise: "false"` on a Service opts it out.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::ServiceCIDR;

use crate::settings::Kubernetes;

pub const ANNOTATION_ADVERTISE: &str = "podbgp.io/advertise";
/// The label an EndpointSlice names its Service with.
const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";

/// What podbgp needs of a Service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceInfo {
    pub cluster_ips: Vec<IpAddr>,
    pub external_ips: Vec<IpAddr>,
    pub load_balancer_ips: Vec<IpAddr>,
    /// `externalTrafficPolicy: Local`.
    pub external_local: bool,
    /// `internalTrafficPolicy: Local`.
    pub internal_local: bool,
    /// `podbgp.io/advertise: "false"`.
    pub opted_out: bool,
    /// Fields that could not be read, to log.
    pub problems: Vec<String>,
}

impl ServiceInfo {
    pub fn of(service: &Service) -> ServiceInfo {
        let mut info = ServiceInfo::default();
        let annotations = service.metadata.annotations.as_ref();
        if let Some(v) = annotations.and_then(|a| a.get(ANNOTATION_ADVERTISE)) {
            info.opted_out = v.trim().eq_ignore_ascii_case("false");
        }
        let mut addresses = |field: &str, list: &mut Vec<IpAddr>, values: Vec<&String>| {
            for v in values {
                match v.parse::<IpAddr>() {
                    Ok(ip) if !list.contains(&ip) => list.push(ip),
                    Ok(_) => {}
                    // "None" marks a headless Service: no address at all.
                    Err(_) if v == "None" => {}
                    Err(_) => info
                        .problems
                        .push(format!("{field}: {v:?} is not an address")),
                }
            }
        };
        if let Some(spec) = &service.spec {
            let ips: Vec<&String> = match &spec.cluster_ips {
                Some(l) if !l.is_empty() => l.iter().collect(),
                _ => spec.cluster_ip.iter().collect(),
            };
            addresses("spec.clusterIPs", &mut info.cluster_ips, ips);
            let external = spec.external_ips.iter().flatten().collect();
            addresses("spec.externalIPs", &mut info.external_ips, external);
            info.external_local = spec.external_traffic_policy.as_deref() == Some("Local");
            info.internal_local = spec.internal_traffic_policy.as_deref() == Some("Local");
        }
        let ingress = service
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref());
        // An ingress point named by hostname only has no address to route.
        let lb: Vec<&String> = ingress
            .into_iter()
            .flatten()
            .filter_map(|i| i.ip.as_ref())
            .collect();
        addresses(
            "status.loadBalancer.ingress[].ip",
            &mut info.load_balancer_ips,
            lb,
        );
        info
    }
}

/// An EndpointSlice as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceInfo {
    /// The Service's `namespace/name`.
    pub service: String,
    /// Its ready endpoints on this node.
    pub local_ready: usize,
}

impl SliceInfo {
    /// `None` for a slice that names no Service (one managed by hand).
    pub fn of(slice: &EndpointSlice, node: &str) -> Option<SliceInfo> {
        let name = slice.metadata.labels.as_ref()?.get(LABEL_SERVICE_NAME)?;
        let namespace = slice.metadata.namespace.as_deref().unwrap_or("default");
        // An endpoint whose readiness is unknown counts as ready, as the
        // API defines it; a terminating one is never ready.
        let local_ready = slice
            .endpoints
            .iter()
            .flatten()
            .filter(|e| e.node_name.as_deref() == Some(node))
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
            .count();
        Some(SliceInfo {
            service: format!("{namespace}/{name}"),
            local_ready,
        })
    }
}

/// The ranges of a ServiceCIDR object; none while it is being deleted.
pub fn service_cidr_ranges(object: &ServiceCIDR, problems: &mut Vec<String>) -> Vec<IpNet> {
    if object.metadata.deletion_timestamp.is_some() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for c in object.spec.iter().flat_map(|s| s.cidrs.iter().flatten()) {
        match c.parse::<IpNet>() {
            Ok(net) => out.push(net.trunc()),
            Err(_) => problems.push(format!("spec.cidrs: {c:?} is not a prefix")),
        }
    }
    out
}

/// The kinds of service route, as the metric labels them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Range,
    ExternalIp,
    LoadBalancerIp,
    ClusterIp,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Range,
        Kind::ExternalIp,
        Kind::LoadBalancerIp,
        Kind::ClusterIp,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Kind::Range => "service_range",
            Kind::ExternalIp => "external_ip",
            Kind::LoadBalancerIp => "load_balancer_ip",
            Kind::ClusterIp => "cluster_ip",
        }
    }
}

/// Why a service route is originated here.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reason {
    pub kind: Kind,
    /// The Service's `namespace/name`; none for a range.
    pub service: Option<String>,
    /// Originated because this node holds a ready endpoint (Local policy).
    pub local: bool,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let service = self.service.as_deref().unwrap_or("?");
        match self.kind {
            Kind::Range => f.write_str("service range"),
            Kind::ExternalIp => write!(f, "external IP of {service}"),
            Kind::LoadBalancerIp => write!(f, "LoadBalancer IP of {service}"),
            Kind::ClusterIp => write!(f, "ClusterIP of {service}"),
        }?;
        match (self.kind, self.local) {
            (Kind::ClusterIp, true) => f.write_str(" (internalTrafficPolicy Local, endpoint here)"),
            (_, true) => f.write_str(" (externalTrafficPolicy Local, endpoint here)"),
            _ => Ok(()),
        }
    }
}

/// Which kinds of service route this node originates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub ranges: bool,
    pub external_ips: bool,
    pub load_balancer_ips: bool,
    pub local_cluster_ips: bool,
}

impl Policy {
    pub fn of(k: &Kubernetes) -> Policy {
        Policy {
            ranges: k.advertise_service_ranges,
            external_ips: k.advertise_external_ips,
            load_balancer_ips: k.advertise_load_balancer_ips,
            local_cluster_ips: k.advertise_local_cluster_ips,
        }
    }
}

/// The service routes this node originates, with the reasons for each:
/// `ranges` are the cluster's service ranges, `local_ready` the number of
/// ready endpoints each Service has on this node.
pub fn routes(
    policy: Policy,
    ranges: &[IpNet],
    services: &BTreeMap<String, ServiceInfo>,
    local_ready: &BTreeMap<String, usize>,
) -> BTreeMap<IpNet, Vec<Reason>> {
    let mut out: BTreeMap<IpNet, Vec<Reason>> = BTreeMap::new();
    if policy.ranges {
        for r in ranges {
            out.entry(*r).or_default().push(Reason {
                kind: Kind::Range,
                service: None,
                local: false,
            });
        }
    }
    for (key, s) in services.iter().filter(|(_, s)| !s.opted_out) {
        let here = local_ready.get(key).copied().unwrap_or(0) > 0;
        let mut add = |kind: Kind, ips: &[IpAddr], local_only: bool| {
            if local_only && !here {
                return;
            }
            for ip in ips {
                out.entry(IpNet::from(*ip)).or_default().push(Reason {
                    kind,
                    service: Some(key.clone()),
                    local: local_only,
                });
            }
        };
        if policy.external_ips {
            add(Kind::ExternalIp, &s.external_ips, s.external_local);
        }
        if policy.load_balancer_ips {
            add(Kind::LoadBalancerIp, &s.load_balancer_ips, s.external_local);
        }
        if policy.local_cluster_ips && s.internal_local {
            add(Kind::ClusterIp, &s.cluster_ips, true);
        }
    }
    for reasons in out.values_mut() {
        reasons.sort();
        reasons.dedup();
    }
    out
}

/// Ready endpoints on this node per Service, from its EndpointSlices.
pub fn local_ready<'a>(slices: impl Iterator<Item = &'a SliceInfo>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for s in slices {
        *out.entry(s.service.clone()).or_default() += s.local_ready;
    }
    out
}

#[cfg(test)]
#[path = "services_tests.rs"]
mod tests;
