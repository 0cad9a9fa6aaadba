//! Kubernetes mode against an API server in the test: plain HTTP that
//! speaks the API server's list and watch for Nodes, with resourceVersions,
//! bookmarks, watches that break and 410 Gone, so the real `kube` client
//! runs its real code path. The real `podbgp` daemon follows it; what it
//! does is read through its control API, as a user would.
//!
//! Every address is on the loopback interface: the nodes' InternalIPs are
//! 127.0.0.x, so the mesh's connection attempts never leave the machine.
//! Needs no root (no FIB, no SNAT).

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use support::{apiserver, cli, eventually, Daemon, Server};

/// The peers' addresses and ASNs, as the control API lists them.
fn peers(api: &str) -> BTreeSet<(String, u64)> {
    cli(api, &["neighbor"])
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| Some((n["address"].as_str()?.to_string(), n["asn"].as_u64()?)))
        .collect()
}

fn advertised(api: &str, family: &str) -> BTreeSet<String> {
    cli(api, &["global", "rib", "-a", family])
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["prefix"].as_str().map(str::to_string))
        .collect()
}

fn set(list: &[(&str, u64)]) -> BTreeSet<(String, u64)> {
    list.iter().map(|(a, n)| (a.to_string(), *n)).collect()
}

#[test]
fn nodes_drive_peers_prefixes_and_cni_through_watches_that_break() {
    let runtime = support::runtime();
    let server = Server::new();
    server.put(
        "kind-control-plane",
        &["127.0.0.1"],
        &["10.244.0.0/24", "fd00:10:244::/64"],
        json!({"podbgp.io/peers": "127.0.0.9=65009"}),
    );
    server.put("kind-worker", &["127.0.0.2"], &["10.244.1.0/24"], json!({}));
    server.put(
        "kind-worker2",
        &["127.0.0.3"],
        &["10.244.2.0/24"],
        json!({"podbgp.io/asn": "64600"}),
    );
    let api_server = support::serve(&runtime, &server);
    let daemon = Daemon::start(api_server, "kind-control-plane", "");
    let (api, log) = (daemon.api.clone(), daemon.log.clone());
    // The mesh, the node's own extra peer, and its pod prefixes.
    eventually(
        "peers from the nodes",
        || {
            peers(&api)
                == set(&[
                    ("127.0.0.2", 64512),
                    ("127.0.0.3", 64600),
                    ("127.0.0.9", 65009),
                ])
        },
        &log,
    );
    eventually(
        "pod prefixes advertised",
        || {
            advertised(&api, "ipv4").contains("10.244.0.0/24")
                && advertised(&api, "ipv6").contains("fd00:10:244::/64")
        },
        &log,
    );
    assert_eq!(
        cli(&api, &["global"])["router_id"],
        "127.0.0.1",
        "the router id is the node's InternalIPv4"
    );
    let cni_file = daemon.cni_dir().join("10-podbgp.conflist");
    eventually("CNI config written", || cni_file.exists(), &log);
    let conflist: Value =
        serde_json::from_str(&std::fs::read_to_string(&cni_file).expect("read")).expect("json");
    assert_eq!(
        conflist["plugins"][0]["ipam"]["ranges"],
        json!([[{"subnet": "10.244.0.0/24"}], [{"subnet": "fd00:10:244::/64"}]])
    );

    // A node's address changes: its peer moves. A node goes: its peer goes.
    server.put("kind-worker", &["127.0.0.4"], &["10.244.1.0/24"], json!({}));
    server.delete("kind-worker2");
    eventually(
        "peers follow a moved and a deleted node",
        || peers(&api) == set(&[("127.0.0.4", 64512), ("127.0.0.9", 65009)]),
        &log,
    );
    // This node's prefix changes: what it advertises, and the CNI config.
    server.put(
        "kind-control-plane",
        &["127.0.0.1"],
        &["10.244.5.0/24"],
        json!({"podbgp.io/peers": "127.0.0.9=65009"}),
    );
    eventually(
        "the new pod prefix replaces the old",
        || {
            let v4 = advertised(&api, "ipv4");
            v4.contains("10.244.5.0/24")
                && !v4.contains("10.244.0.0/24")
                && !advertised(&api, "ipv6").contains("fd00:10:244::/64")
        },
        &log,
    );
    eventually(
        "the CNI config follows",
        || std::fs::read_to_string(&cni_file).is_ok_and(|t| t.contains("10.244.5.0/24")),
        &log,
    );

    // The watch breaks and a node comes while it is down: the client
    // watches again from where it was and misses nothing.
    let watches = server.lock().watches;
    let lists = server.lock().lists;
    server.break_watches();
    server.put(
        "kind-worker3",
        &["127.0.0.5"],
        &["10.244.3.0/24"],
        json!({}),
    );
    eventually(
        "a node added while the watch was broken",
        || peers(&api).contains(&("127.0.0.5".to_string(), 64512)),
        &log,
    );
    assert!(server.lock().watches > watches, "watched again");
    assert_eq!(server.lock().lists, lists, "resumed without listing again");

    // 410 Gone: the history is compacted while the watch is down; the
    // client lists again and still sees a node added meanwhile.
    server.compact();
    server.break_watches();
    server.put(
        "kind-worker4",
        &["127.0.0.6"],
        &["10.244.4.0/24"],
        json!({}),
    );
    server.delete("kind-worker3");
    eventually(
        "after 410 Gone, a fresh list",
        || {
            peers(&api)
                == set(&[
                    ("127.0.0.4", 64512),
                    ("127.0.0.6", 64512),
                    ("127.0.0.9", 65009),
                ])
        },
        &log,
    );
    let c = server.lock();
    assert!(c.gones >= 1, "a 410 was sent");
    assert!(c.lists > lists, "listed again after 410");
}

#[test]
fn the_lab_api_server_follows_its_node_files() {
    let server = Server::new();
    let dir = tempfile::tempdir().expect("dir");
    let write = |name: &str, v: Value| {
        std::fs::write(dir.path().join(format!("{name}.json")), v.to_string()).expect("write")
    };
    write(
        "a",
        json!({"ips": ["172.18.0.2"], "cidrs": ["10.10.0.0/24"]}),
    );
    write(
        "b",
        json!({"ips": ["172.18.0.3"], "cidrs": ["10.10.1.0/24"], "annotations": {"podbgp.io/asn": "64600"}}),
    );
    server.sync_dir(dir.path());
    assert_eq!(server.lock().nodes.len(), 2);
    let events = server.lock().log.len();
    // Unchanged files make no events.
    server.sync_dir(dir.path());
    assert_eq!(server.lock().log.len(), events);
    // A changed one is MODIFIED, a removed one DELETED.
    write(
        "a",
        json!({"ips": ["172.18.0.9"], "cidrs": ["10.10.0.0/24"]}),
    );
    std::fs::remove_file(dir.path().join("b.json")).expect("remove");
    server.sync_dir(dir.path());
    let c = server.lock();
    let kinds: Vec<&str> = c.log[events..].iter().map(|(_, k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["DELETED", "MODIFIED"]);
    assert_eq!(
        c.nodes["a"]["status"]["addresses"][0]["address"],
        "172.18.0.9"
    );
    drop(c);

    // Whole objects of any kind in objects/, the same way; a writer's
    // temporary file ('.' first) is not one.
    let objects = dir.path().join("objects");
    std::fs::create_dir(&objects).expect("objects");
    let put = |name: &str, v: Value| {
        std::fs::write(objects.join(format!("{name}.json")), v.to_string()).expect("write")
    };
    let svc = |ip: &str| {
        apiserver::service(
            "default",
            "web",
            json!({"clusterIP": ip}),
            Value::Null,
            json!({}),
        )
    };
    put("web", svc("10.96.0.10"));
    put(
        "cidr",
        apiserver::service_cidr("kubernetes", &["10.96.0.0/16"]),
    );
    put(".web", svc("10.96.0.99"));
    server.sync_dir(dir.path());
    server.sync_dir(dir.path());
    put("web", svc("10.96.0.11"));
    std::fs::remove_file(objects.join("cidr.json")).expect("remove");
    server.sync_dir(dir.path());
    let c = server.lock();
    let events: Vec<(&str, &str)> = c.log[events + 2..]
        .iter()
        .map(|(_, e, o)| (e.as_str(), o["kind"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(
        events,
        [
            ("ADDED", "Service"),
            ("ADDED", "ServiceCIDR"),
            ("DELETED", "ServiceCIDR"),
            ("MODIFIED", "Service"),
        ]
    );
    let web = &c.objects[&("Service".into(), "default".into(), "web".into())];
    assert_eq!(web["spec"]["clusterIP"], "10.96.0.11");
    assert_eq!(c.nodes.len(), 1, "the node files still count");
}

#[test]
fn api_server_serves_services_slices_and_service_cidrs() {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::Service;
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use k8s_openapi::api::networking::v1::ServiceCIDR;
    use kube::api::{Api, ListParams, WatchParams};
    use kube::runtime::watcher::{self, Event};

    let runtime = support::runtime();
    // A client of `server`, through the kubeconfig podbgp would be given.
    let client = |server: &Server| {
        let at = support::serve(&runtime, server);
        runtime.block_on(async {
            let yaml = apiserver::kubeconfig(&format!("http://{at}"));
            let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml).expect("kubeconfig");
            let options = kube::config::KubeConfigOptions::default();
            let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .expect("config");
            kube::Client::try_from(config).expect("client")
        })
    };
    let web = |policy: &str| {
        apiserver::service(
            "default",
            "web",
            json!({"type": "LoadBalancer", "clusterIP": "10.96.0.10", "externalTrafficPolicy": policy,
                "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}]}),
            json!({"loadBalancer": {"ingress": [{"ip": "172.18.255.1"}]}}),
            json!({"podbgp.io/advertise": "true"}),
        )
    };

    let server = Server::new();
    server.put("kind-worker", &["127.0.0.2"], &["10.244.1.0/24"], json!({}));
    server.put_object(web("Cluster"));
    server.put_object(apiserver::endpoint_slice(
        "default",
        "web-x7k2p",
        "web",
        &[
            ("10.244.1.5", "kind-worker", true),
            ("10.244.2.7", "kind-worker2", false),
        ],
    ));
    server.put_object(apiserver::service_cidr(
        "kubernetes",
        &["10.96.0.0/16", "fd00:10:96::/112"],
    ));
    server.put_object(apiserver::terminating(apiserver::service_cidr(
        "old",
        &["10.97.0.0/16"],
    )));
    let c = client(&server);
    let services: Api<Service> = Api::all(c.clone());
    let slices: Api<EndpointSlice> = Api::all(c.clone());
    let cidrs: Api<ServiceCIDR> = Api::all(c.clone());
    let lp = ListParams::default();

    // Lists, into k8s-openapi's types: one resourceVersion counter for
    // every kind, each list its own kind's objects.
    let list = runtime.block_on(services.list(&lp)).expect("services");
    assert_eq!(list.metadata.resource_version.as_deref(), Some("5"));
    let [svc] = &list.items[..] else {
        panic!("one Service: {:?}", list.items)
    };
    assert_eq!(svc.metadata.namespace.as_deref(), Some("default"));
    assert_eq!(svc.metadata.resource_version.as_deref(), Some("2"));
    assert!(svc.metadata.uid.is_some() && svc.metadata.creation_timestamp.is_some());
    let annotations = svc.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(annotations["podbgp.io/advertise"], "true");
    let spec = svc.spec.clone().expect("spec");
    assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
    assert_eq!(spec.cluster_ips, Some(vec!["10.96.0.10".to_string()]));
    assert_eq!(spec.ip_families, Some(vec!["IPv4".to_string()]));
    let ingress = svc.status.clone().and_then(|s| s.load_balancer?.ingress);
    assert_eq!(
        ingress.expect("ingress")[0].ip.as_deref(),
        Some("172.18.255.1")
    );

    let list = runtime.block_on(slices.list(&lp)).expect("slices");
    let [slice] = &list.items[..] else {
        panic!("one EndpointSlice: {:?}", list.items)
    };
    let labels = slice.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels["kubernetes.io/service-name"], "web");
    assert_eq!(slice.address_type, "IPv4");
    let ready: Vec<(&str, Option<&str>, Option<bool>)> = slice
        .endpoints
        .iter()
        .flatten()
        .map(|e| {
            (
                e.addresses[0].as_str(),
                e.node_name.as_deref(),
                e.conditions.as_ref().and_then(|c| c.ready),
            )
        })
        .collect();
    assert_eq!(
        ready,
        [
            ("10.244.1.5", Some("kind-worker"), Some(true)),
            ("10.244.2.7", Some("kind-worker2"), Some(false)),
        ]
    );

    let list = runtime.block_on(cidrs.list(&lp)).expect("service CIDRs");
    let names: Vec<_> = list
        .items
        .iter()
        .map(|c| c.metadata.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(names, ["kubernetes", "old"]);
    let spec = list.items[0].spec.clone().expect("spec");
    assert_eq!(
        spec.cidrs,
        Some(vec![
            "10.96.0.0/16".to_string(),
            "fd00:10:96::/112".to_string()
        ])
    );
    assert!(list.items[0].metadata.deletion_timestamp.is_none());
    assert!(
        list.items[1].metadata.deletion_timestamp.is_some(),
        "terminating"
    );

    // A watch on Services: its own kind's changes only, across a broken
    // watch (resumed) and 410 Gone (listed again).
    let mut watch = Box::pin(watcher::watcher(
        services.clone(),
        watcher::Config::default(),
    ));
    let mut next = || {
        runtime.block_on(async {
            let event = tokio::time::timeout(Duration::from_secs(20), watch.next()).await;
            event
                .expect("an event within 20 s")
                .expect("the watch goes on")
        })
    };
    let name = |s: &Service| s.metadata.name.clone().unwrap_or_default();
    assert!(matches!(next(), Ok(Event::Init)));
    assert!(matches!(next(), Ok(Event::InitApply(s)) if name(&s) == "web"));
    assert!(matches!(next(), Ok(Event::InitDone)));
    // Other kinds' changes come first; a Node in a Service watch would be
    // an error.
    server.put(
        "kind-worker2",
        &["127.0.0.3"],
        &["10.244.2.0/24"],
        json!({}),
    );
    server.put_object(apiserver::service_cidr("extra", &["10.98.0.0/16"]));
    server.put_object(web("Local"));
    match next() {
        Ok(Event::Apply(s)) => {
            assert_eq!(s.metadata.resource_version.as_deref(), Some("8"));
            assert_eq!(s.metadata.uid, svc.metadata.uid, "the same object");
            let policy = s.spec.and_then(|s| s.external_traffic_policy);
            assert_eq!(policy.as_deref(), Some("Local"));
        }
        other => panic!("the Service modified: {other:?}"),
    }
    let lists = server.lock().lists;
    server.break_watches();
    server.put_object(apiserver::service(
        "default",
        "api",
        json!({}),
        Value::Null,
        json!({}),
    ));
    assert!(matches!(next(), Ok(Event::Apply(s)) if name(&s) == "api"));
    assert_eq!(server.lock().lists, lists, "resumed without listing again");

    server.compact();
    server.break_watches();
    server.delete_object("Service", Some("default"), "api");
    assert!(matches!(next(), Err(watcher::Error::WatchError(s)) if s.code == 410));
    assert!(matches!(next(), Ok(Event::Init)));
    assert!(matches!(next(), Ok(Event::InitApply(s)) if name(&s) == "web"));
    assert!(matches!(next(), Ok(Event::InitDone)), "api is gone");
    server.delete_object("Service", Some("default"), "web");
    match next() {
        Ok(Event::Delete(s)) => {
            assert_eq!(name(&s), "web");
            assert_eq!(s.metadata.resource_version.as_deref(), Some("11"));
        }
        other => panic!("the Service deleted: {other:?}"),
    }

    // Before Kubernetes 1.33 there is no ServiceCIDR API: 404 with a
    // Status, for a list and a watch; the rest is served.
    let old = Server::without_service_cidrs();
    old.put_object(apiserver::service_cidr("kubernetes", &["10.96.0.0/16"]));
    let c = client(&old);
    let cidrs: Api<ServiceCIDR> = Api::all(c.clone());
    let not_found = |r: &Result<(), kube::Error>| match r {
        Err(kube::Error::Api(s)) => s.code == 404 && s.reason == "NotFound",
        _ => false,
    };
    let list = runtime.block_on(cidrs.list(&lp)).map(drop);
    assert!(not_found(&list), "list: {list:?}");
    let watch = runtime
        .block_on(cidrs.watch(&WatchParams::default(), "0"))
        .map(drop);
    assert!(not_found(&watch), "watch: {watch:?}");
    let services: Api<Service> = Api::all(c);
    assert!(runtime.block_on(services.list(&lp)).is_ok());
}
