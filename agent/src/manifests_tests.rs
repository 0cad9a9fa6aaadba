//! Every file under configs/ is read here, so none of them can rot: the
//! Kubernetes manifests into k8s-openapi types, the ConfigMap's and the
//! other podbgp configs through the real config loader, the kind cluster
//! configs for what the walkthrough relies on.

use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde_json::Value;

use crate::settings::Settings;

fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

/// Every YAML document of a file, as JSON values.
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}

fn typed<T: serde::de::DeserializeOwned>(v: &Value, path: &Path) -> T {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| {
        panic!(
            "{}: not a {}: {e}",
            path.display(),
            std::any::type_name::<T>()
        )
    })
}

fn load_toml(text: &str) -> Settings {
    let mut f = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    std::io::Write::write_all(&mut f, text.as_bytes()).expect("written");
    Settings::load_with_env(f.path(), Vec::new()).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn every_kubernetes_manifest_is_a_valid_object() {
    let dir = configs().join("kubernetes");
    let mut kinds = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("configs/kubernetes") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        for doc in documents(&path) {
            let kind = doc["kind"].as_str().unwrap_or_default().to_string();
            match kind.as_str() {
                "DaemonSet" => check_daemonset(&typed(&doc, &path)),
                "ServiceAccount" => {
                    let sa: ServiceAccount = typed(&doc, &path);
                    assert_eq!(sa.metadata.namespace.as_deref(), Some("kube-system"));
                }
                "ClusterRole" => check_role(&typed(&doc, &path)),
                "ClusterRoleBinding" => {
                    let b: ClusterRoleBinding = typed(&doc, &path);
                    assert_eq!(b.role_ref.name, "podbgp");
                    let s = &b.subjects.expect("subjects")[0];
                    assert_eq!(
                        (s.kind.as_str(), s.name.as_str()),
                        ("ServiceAccount", "podbgp")
                    );
                }
                "ConfigMap" => {
                    let cm: ConfigMap = typed(&doc, &path);
                    let toml = cm.data.expect("data")["podbgp.toml"].clone();
                    let s = load_toml(&toml);
                    assert!(s.kubernetes.enabled && s.kubernetes.mesh && s.kubernetes.cni);
                    assert!(s.snat.enabled && s.fib.enabled);
                }
                other => panic!("{}: unexpected kind {other:?}", path.display()),
            }
            kinds.push(kind);
        }
    }
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "DaemonSet",
            "ServiceAccount"
        ]
    );
}

fn check_daemonset(ds: &DaemonSet) {
    let spec = &ds.spec;
    let strategy = spec.update_strategy.as_ref().expect("update strategy");
    assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
    let rolling = strategy.rolling_update.as_ref().expect("rolling update");
    assert_eq!(
        rolling.max_unavailable,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
    );
    let pod = spec.template.spec.as_ref().expect("pod spec");
    assert_eq!(pod.host_network, Some(true));
    assert_eq!(pod.service_account_name.as_deref(), Some("podbgp"));
    let tolerations = pod.tolerations.as_ref().expect("tolerations");
    assert!(
        tolerations
            .iter()
            .any(|t| t.operator.as_deref() == Some("Exists") && t.key.is_none()),
        "runs on control-plane nodes too"
    );
    let c = &pod.containers[0];
    assert_eq!(
        c.args.as_deref(),
        Some(
            &[
                "run".to_string(),
                "--config".into(),
                "/etc/podbgp/podbgp.toml".into()
            ][..]
        )
    );
    let env = c.env.as_ref().expect("env");
    let node_name = env
        .iter()
        .find(|e| e.name == "NODE_NAME")
        .expect("NODE_NAME");
    let field = node_name
        .value_from
        .as_ref()
        .and_then(|v| v.field_ref.as_ref())
        .map(|f| f.field_path.as_str());
    assert_eq!(field, Some("spec.nodeName"));
    let sc = c.security_context.as_ref().expect("security context");
    assert_ne!(sc.privileged, Some(true), "capabilities, not privileged");
    let caps = sc.capabilities.as_ref().expect("capabilities");
    let mut add = caps.add.clone().unwrap_or_default();
    add.sort();
    assert_eq!(add, ["NET_ADMIN", "NET_BIND_SERVICE", "NET_RAW"]);
    assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_string()][..]));
    for (probe, path) in [
        (&c.liveness_probe, "/healthz"),
        (&c.readiness_probe, "/readyz"),
    ] {
        let get = probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .expect("an HTTP probe");
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(
            get.port,
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(9179),
            "the metrics port"
        );
    }
    let res = c.resources.as_ref().expect("resources");
    assert!(res
        .requests
        .as_ref()
        .is_some_and(|r| r.contains_key("memory") && r.contains_key("cpu")));
    assert!(res
        .limits
        .as_ref()
        .is_some_and(|l| l.contains_key("memory")));
    let mounts: Vec<&str> = c
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| m.mount_path.as_str())
        .collect();
    assert_eq!(mounts, ["/etc/podbgp", "/etc/cni/net.d"]);
}

fn check_role(role: &ClusterRole) {
    let rules = role.rules.as_ref().expect("rules");
    let granted: Vec<(String, String, Vec<String>)> = rules
        .iter()
        .flat_map(|r| {
            let groups = r.api_groups.clone().unwrap_or_default();
            let resources = r.resources.clone().unwrap_or_default();
            groups.into_iter().flat_map(move |g| {
                let verbs = r.verbs.clone();
                resources
                    .clone()
                    .into_iter()
                    .map(move |res| (g.clone(), res, verbs.clone()))
            })
        })
        .collect();
    // Exactly what podbgp reads, and the only thing it writes: Events
    // about its Node (created, then their series patched).
    let want = [
        ("", "nodes", &["get", "list", "watch"][..]),
        ("", "services", &["list", "watch"][..]),
        ("discovery.k8s.io", "endpointslices", &["list", "watch"][..]),
        ("networking.k8s.io", "servicecidrs", &["list", "watch"][..]),
        ("events.k8s.io", "events", &["create", "patch"][..]),
    ];
    let want: Vec<(String, String, Vec<String>)> = want
        .iter()
        .map(|(g, r, v)| {
            (
                g.to_string(),
                r.to_string(),
                v.iter().map(|s| s.to_string()).collect(),
            )
        })
        .collect();
    assert_eq!(granted, want);
}

#[test]
fn kind_clusters_have_no_cni_and_subnets_apart() {
    let mut subnets: Vec<ipnet::IpNet> = Vec::new();
    for name in ["cluster-a.yaml", "cluster-b.yaml"] {
        let path = configs().join("kind").join(name);
        let doc = &documents(&path)[0];
        assert_eq!(doc["kind"], "Cluster");
        assert_eq!(doc["apiVersion"], "kind.x-k8s.io/v1alpha4");
        let net = &doc["networking"];
        assert_eq!(net["disableDefaultCNI"], true, "{name}");
        for key in ["podSubnet", "serviceSubnet"] {
            let s: ipnet::IpNet = net[key].as_str().expect(key).parse().expect(key);
            assert!(
                !subnets
                    .iter()
                    .any(|o| o.contains(&s.network()) || s.contains(&o.network())),
                "{name}: {key} {s} overlaps"
            );
            subnets.push(s);
        }
    }
    // Each cluster's podbgp config loads, with its own AS.
    let a = load_toml(&std::fs::read_to_string(configs().join("kind/podbgp-a.toml")).expect("a"));
    let b = load_toml(&std::fs::read_to_string(configs().join("kind/podbgp-b.toml")).expect("b"));
    assert_ne!(a.global.asn, b.global.asn);
    assert!(a.kubernetes.enabled && b.kubernetes.enabled);
    // Both peer with the route server its config names.
    let rs = std::fs::read_to_string(configs().join("kind/frr-route-server.conf")).expect("rs");
    for s in [&a, &b] {
        let n = &s.neighbors[0];
        assert!(rs.contains(&format!("bgp router-id {}", n.address)), "{rs}");
        assert!(rs.contains(&format!("router bgp {}", n.asn)), "{rs}");
    }
    // And every pod subnet is inside what the FIB accepts.
    for s in [&a, &b] {
        for pod in [subnets[0], subnets[2]] {
            assert!(s.fib.accept.iter().any(|x| x.contains(&pod)));
        }
    }
}

#[test]
fn the_standalone_config_loads() {
    let s = load_toml(
        &std::fs::read_to_string(configs().join("standalone/podbgp.toml")).expect("read"),
    );
    assert!(!s.kubernetes.enabled);
    assert_eq!(s.global.advertise.len(), 1);
}
