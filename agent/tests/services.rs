//! Service addresses in Kubernetes mode, against the API server of the
//! tests (ServiceCIDRs, Services and EndpointSlices listed and watched as a
//! real one serves them): the real daemon originates the service ranges,
//! LoadBalancer and external IPs, and the ClusterIPs of Local Services as
//! the cluster changes, and says why in `global rib`. What it does is read
//! through its control API and metrics, as a user would.
//!
//! Every address is on loopback (nodes 127.0.0.x). Needs no root.

mod support;

use std::collections::BTreeMap;

use serde_json::{json, Value};
use support::{apiserver, Daemon, Server};

/// The prefixes the daemon originates, with why and their communities.
fn originated(d: &Daemon) -> BTreeMap<String, (Vec<String>, Vec<String>)> {
    let mut out = BTreeMap::new();
    for family in ["ipv4", "ipv6"] {
        let rib = d.cli(&["global", "rib", "-a", family]);
        for dest in rib.as_array().into_iter().flatten() {
            let local = dest["paths"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["source"] == "local");
            if let (Some(prefix), Some(p)) = (dest["prefix"].as_str(), local) {
                let strings = |v: &Value| -> Vec<String> {
                    v.as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                };
                let mut tags = strings(&p["communities"]);
                tags.extend(strings(&p["large_communities"]));
                out.insert(prefix.to_string(), (strings(&p["originated_for"]), tags));
            }
        }
    }
    out
}

fn prefixes(d: &Daemon) -> Vec<String> {
    originated(d).into_keys().collect()
}

/// A Service of namespace `shop`.
fn service(name: &str, spec: Value, lb_ips: &[&str], annotations: Value) -> Value {
    let ingress: Vec<Value> = lb_ips.iter().map(|ip| json!({"ip": ip})).collect();
    let mut spec = spec;
    spec["ports"] = json!([{"port": 80, "protocol": "TCP", "targetPort": 8080}]);
    apiserver::service(
        "shop",
        name,
        spec,
        json!({"loadBalancer": {"ingress": ingress}}),
        annotations,
    )
}

fn cluster() -> Server {
    let server = Server::new();
    server.put("cp", &["127.0.0.1"], &["10.244.0.0/24"], json!({}));
    server.put("w1", &["127.0.0.2"], &["10.244.1.0/24"], json!({}));
    server
}

#[test]
fn service_routes_follow_ranges_services_and_endpoints() {
    let runtime = support::runtime();
    let server = cluster();
    server.put_object(apiserver::service_cidr("kubernetes", &["10.96.0.0/16"]));
    let web = |lb: &[&str], annotations: Value| {
        service(
            "web",
            json!({"type": "LoadBalancer", "clusterIP": "10.96.0.10"}),
            lb,
            annotations,
        )
    };
    server.put_object(web(&[], json!({})));
    // Local both ways: its addresses only where an endpoint is ready.
    server.put_object(service(
        "local",
        json!({"type": "LoadBalancer", "clusterIP": "10.96.0.20", "externalIPs": ["10.50.0.1"],
               "externalTrafficPolicy": "Local", "internalTrafficPolicy": "Local"}),
        &["10.40.0.20"],
        json!({}),
    ));
    let slice = |node: &str, ready: bool| {
        apiserver::endpoint_slice("shop", "local-abc", "local", &[("10.244.9.9", node, ready)])
    };
    server.put_object(slice("w1", true));
    let at = support::serve(&runtime, &server);
    let d = Daemon::start(
        at,
        "cp",
        "advertise_external_ips = true\nservice_communities = [\"64512:100\"]\n\
         service_large_communities = [\"64512:1:2\"]",
    );

    // The range from the ServiceCIDR, with the configured communities and
    // the reason; no LoadBalancer IP yet, and the Local Service's
    // endpoint is on another node.
    d.eventually("the service range advertised", || {
        prefixes(&d) == ["10.244.0.0/24", "10.96.0.0/16"]
    });
    let all = originated(&d);
    assert_eq!(
        all["10.96.0.0/16"],
        (
            vec!["service range".to_string()],
            vec!["64512:100".to_string(), "64512:1:2".to_string()]
        )
    );
    assert_eq!(all["10.244.0.0/24"].0, ["pod CIDR of this node"]);
    assert_eq!(all["10.244.0.0/24"].1, Vec::<String>::new());
    let series = |kind: &str| format!("podbgp_service_routes{{kind=\"{kind}\"}}");
    assert_eq!(d.metric(&series("service_range")), Some(1.0));
    assert_eq!(d.metric(&series("load_balancer_ip")), Some(0.0));
    // The runtime's tasks are counted (the soak watches them for leaks).
    assert!(d.metric("podbgp_tokio_tasks").is_some_and(|n| n >= 1.0));

    // The Service gains a LoadBalancer IP, then loses it.
    server.put_object(web(&["10.40.0.10"], json!({})));
    d.eventually("the LoadBalancer IP advertised", || {
        originated(&d)
            .get("10.40.0.10/32")
            .is_some_and(|(why, _)| why == &["LoadBalancer IP of shop/web"])
    });
    assert_eq!(d.metric(&series("load_balancer_ip")), Some(1.0));
    server.put_object(web(&[], json!({})));
    d.eventually("the LoadBalancer IP withdrawn", || {
        !prefixes(&d).contains(&"10.40.0.10/32".to_string())
    });

    // A ready endpoint comes to this node: the Local Service's addresses
    // are advertised here; it stops being ready: they go.
    server.put_object(slice("cp", true));
    let local = ["10.40.0.20/32", "10.50.0.1/32", "10.96.0.20/32"];
    d.eventually("the Local Service follows its endpoint here", || {
        let have = prefixes(&d);
        local.iter().all(|p| have.contains(&p.to_string()))
    });
    assert_eq!(
        originated(&d)["10.96.0.20/32"].0,
        ["ClusterIP of shop/local (internalTrafficPolicy Local, endpoint here)"]
    );
    assert_eq!(
        originated(&d)["10.50.0.1/32"].0,
        ["external IP of shop/local (externalTrafficPolicy Local, endpoint here)"]
    );
    assert_eq!(d.metric(&series("cluster_ip")), Some(1.0));
    assert_eq!(d.metric(&series("external_ip")), Some(1.0));
    server.put_object(slice("cp", false));
    d.eventually(
        "the Local Service leaves with its last ready endpoint",
        || {
            let have = prefixes(&d);
            local.iter().all(|p| !have.contains(&p.to_string()))
        },
    );

    // The opt-out annotation. Changes come in order: once a Service put
    // after it is advertised, the opted-out one has been seen.
    server.put_object(web(
        &["10.40.0.10"],
        json!({"podbgp.io/advertise": "false"}),
    ));
    server.put_object(service(
        "probe",
        json!({"type": "LoadBalancer", "clusterIP": "10.96.0.40"}),
        &["10.40.0.40"],
        json!({}),
    ));
    d.eventually("a Service put after the opted-out one", || {
        prefixes(&d).contains(&"10.40.0.40/32".to_string())
    });
    assert!(
        !prefixes(&d).contains(&"10.40.0.10/32".to_string()),
        "an opted-out Service is not advertised: {:?}",
        prefixes(&d)
    );

    // A second range comes; the first is being deleted: it goes.
    server.put_object(apiserver::service_cidr("v6", &["fd00:10:96::/112"]));
    server.put_object(apiserver::terminating(apiserver::service_cidr(
        "kubernetes",
        &["10.96.0.0/16"],
    )));
    d.eventually("ranges follow the ServiceCIDRs", || {
        prefixes(&d) == ["10.244.0.0/24", "10.40.0.40/32", "fd00:10:96::/112"]
    });

    // A broken watch: a Service added meanwhile is still seen.
    server.break_watches();
    server.put_object(service(
        "late",
        json!({"type": "LoadBalancer", "clusterIP": "10.96.0.30"}),
        &["10.40.0.30"],
        json!({}),
    ));
    d.eventually("a Service added while the watch was down", || {
        prefixes(&d).contains(&"10.40.0.30/32".to_string())
    });
}

#[test]
fn without_service_cidrs_the_configured_ranges_stand_in() {
    let runtime = support::runtime();
    let server = Server::without_service_cidrs();
    server.put("cp", &["127.0.0.1"], &["10.244.0.0/24"], json!({}));
    server.put_object(service(
        "web",
        json!({"type": "LoadBalancer", "clusterIP": "10.96.0.10"}),
        &["10.40.0.10"],
        json!({}),
    ));
    let at = support::serve(&runtime, &server);

    // The key set: its ranges, and one line saying so.
    let configured = Daemon::start(at, "cp", "service_cidrs = [\"10.96.0.0/16\"]");
    // Not set: one line saying why no range goes out; the rest does.
    let unset = Daemon::start(at, "cp", "");
    let want = ["10.244.0.0/24", "10.40.0.10/32", "10.96.0.0/16"];
    configured.eventually("the configured range advertised", || {
        prefixes(&configured) == want
    });
    assert_eq!(originated(&configured)["10.96.0.0/16"].0, ["service range"]);
    unset.eventually("the LoadBalancer IP without a range", || {
        prefixes(&unset) == ["10.244.0.0/24", "10.40.0.10/32"]
    });
    let lines = |d: &Daemon, text: &str| d.log_text().matches(text).count();
    assert_eq!(
        lines(
            &configured,
            "service ranges from kubernetes.service_cidrs: 10.96.0.0/16"
        ),
        1,
        "{}",
        configured.log_text()
    );
    assert_eq!(
        lines(&unset, "the API server has no ServiceCIDR objects"),
        1,
        "{}",
        unset.log_text()
    );
    assert_eq!(
        lines(&unset, "watching service CIDRs"),
        0,
        "no watch of what is not there: {}",
        unset.log_text()
    );
}
