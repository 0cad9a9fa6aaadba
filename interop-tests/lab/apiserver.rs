//! An API server for the kinds podbgp reads, enough for the `kube` client:
//! Nodes, Services, EndpointSlices and ServiceCIDRs, listed and watched
//! over plain HTTP (Nodes also read one by one), JSON shaped as a real API
//! server returns it. As in a real one, every kind shares one
//! resourceVersion counter and a watch sees its own kind's events only;
//! watches get bookmarks, can be broken, and a history that can be
//! compacted (410 Gone). Events are taken (created, patched) and kept
//! for the tests to read. It can also answer as a server from before
//! Kubernetes 1.33, without ServiceCIDRs. Tests drive it directly; the lab
//! runs it as a process of its own that follows a directory of files.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::SinkExt;
use serde_json::{json, Value};
use tokio::sync::broadcast;

#[path = "apiserver_events.rs"]
mod events;

/// A kind the server serves, and where.
pub struct Kind {
    pub kind: &'static str,
    pub api_version: &'static str,
    /// Its list and watch, across every namespace.
    pub path: &'static str,
    pub namespaced: bool,
}

/// Every kind the server serves.
pub static KINDS: [Kind; 4] = [
    Kind {
        kind: "Node",
        api_version: "v1",
        path: "/api/v1/nodes",
        namespaced: false,
    },
    Kind {
        kind: "Service",
        api_version: "v1",
        path: "/api/v1/services",
        namespaced: true,
    },
    Kind {
        kind: "EndpointSlice",
        api_version: "discovery.k8s.io/v1",
        path: "/apis/discovery.k8s.io/v1/endpointslices",
        namespaced: true,
    },
    Kind {
        kind: "ServiceCIDR",
        api_version: "networking.k8s.io/v1",
        path: "/apis/networking.k8s.io/v1/servicecidrs",
        namespaced: false,
    },
];

/// Which object: kind, namespace ("" when cluster-scoped), name.
pub type Key = (String, String, String);

/// When every object the server makes was created: fixed, so that tests
/// see the same objects from run to run.
const CREATED: &str = "2026-11-21T00:00:00Z";

/// The API server's state.
#[derive(Default)]
pub struct Cluster {
    pub rv: u64,
    /// The Nodes, by name.
    pub nodes: BTreeMap<String, Value>,
    /// The objects of every other kind.
    pub objects: BTreeMap<Key, Value>,
    /// Every change, of every kind: resourceVersion, type, object.
    pub log: Vec<(u64, String, Value)>,
    /// Watches from before this resourceVersion get 410 Gone.
    pub gone_before: u64,
    /// Bumped to end every open watch.
    pub generation: u64,
    /// ServiceCIDRs answer 404, as before Kubernetes 1.33.
    pub without_service_cidrs: bool,
    /// How often a watch gets a bookmark: half a second when `None`, so
    /// tests see them soon; a real API server sends about one a minute.
    pub bookmark_every: Option<Duration>,
    /// Requests seen, of every kind, to tell what the client did.
    pub lists: u32,
    pub watches: u32,
    pub gones: u32,
    /// Events written to the server, by `namespace/name`.
    pub node_events: BTreeMap<String, Value>,
    /// Each write of an Event: POST or PATCH, and its name.
    pub event_writes: Vec<(String, String)>,
    /// The last list answered, by kind, resourceVersion and log length:
    /// a thousand agents listing the same thousand Nodes get one body,
    /// encoded once, as a real API server's watch cache serves them.
    listed: Option<(&'static str, u64, usize, Bytes)>,
}

impl Cluster {
    /// The object `key` names, if there is one.
    pub fn get(&self, key: &Key) -> Option<&Value> {
        match key.0.as_str() {
            "Node" => self.nodes.get(&key.2),
            _ => self.objects.get(key),
        }
    }

    fn insert(&mut self, key: Key, object: Value) {
        match key.0.as_str() {
            "Node" => self.nodes.insert(key.2, object),
            _ => self.objects.insert(key, object),
        };
    }

    fn remove(&mut self, key: &Key) -> Option<Value> {
        match key.0.as_str() {
            "Node" => self.nodes.remove(&key.2),
            _ => self.objects.remove(key),
        }
    }

    /// Every object's key, Nodes first.
    fn keys(&self) -> Vec<Key> {
        let nodes = self.nodes.keys().map(|n| key("Node", "", n));
        nodes.chain(self.objects.keys().cloned()).collect()
    }

    /// The objects of `kind`, in the order of a real list: by namespace,
    /// then name.
    fn items(&self, kind: &str) -> Vec<Value> {
        if kind == "Node" {
            return self.nodes.values().cloned().collect();
        }
        let from = key(kind, "", "");
        let same_kind = |(k, _): &(&Key, &Value)| k.0 == kind;
        let items = self.objects.range(from..).take_while(same_kind);
        items.map(|(_, v)| v.clone()).collect()
    }

    /// Record a change and tell the open watches, in one step: events
    /// reach the watches in resourceVersion order, and a watch that has
    /// seen an event has seen every one before it.
    fn record(&mut self, events: &broadcast::Sender<(u64, String, Value)>, event: &str, o: Value) {
        self.log.push((self.rv, event.into(), o.clone()));
        let _ = events.send((self.rv, event.into(), o));
    }
}

/// The API server: its state, and the feed its watches follow.
#[derive(Clone)]
pub struct Server {
    cluster: Arc<Mutex<Cluster>>,
    events: broadcast::Sender<(u64, String, Value)>,
}

impl Server {
    /// A server with no objects, serving every kind.
    pub fn new() -> Server {
        let (events, _) = broadcast::channel(1024);
        Server {
            cluster: Arc::default(),
            events,
        }
    }

    /// A server as from before Kubernetes 1.33: ServiceCIDRs are 404.
    pub fn without_service_cidrs() -> Server {
        let server = Server::new();
        server.lock().without_service_cidrs = true;
        server
    }

    /// The routes a `kube` client uses: every kind's list and watch, a
    /// Node's get (podbgp reads its own Node before it watches), and
    /// Events created and patched.
    pub fn router(&self) -> Router {
        let mut router: Router<Server> = Router::new().route("/api/v1/nodes/:name", get(get_node));
        for kind in &KINDS {
            let handler =
                move |State(s): State<Server>, Query(q): Query<BTreeMap<String, String>>| {
                    list_or_watch(s, kind, q)
                };
            router = router.route(kind.path, get(handler));
        }
        events::routes(router).with_state(self.clone())
    }

    /// Forget the history: watches from before now get 410 Gone.
    pub fn compact(&self) {
        let mut c = self.lock();
        c.gone_before = c.rv + 1;
    }

    /// Make the objects those of `dir`: a Node per `NAME.json`, holding
    /// `{"ips": [...], "cidrs": [...], "annotations": {...}}`, and any
    /// object of a kind the server serves per `objects/*.json`, whole, as
    /// [`Server::put_object`] takes it. Only files that changed make
    /// events. Names starting with '.' are writers' temporary files;
    /// files that cannot be read (half written, say) are skipped.
    pub fn sync_dir(&self, dir: &Path) {
        let mut want: BTreeMap<Key, Value> = BTreeMap::new();
        for (name, spec) in json_files(dir) {
            let list = |k: &str| -> Vec<&str> {
                let items = spec[k].as_array().into_iter().flatten();
                items.filter_map(Value::as_str).collect()
            };
            let annotations = spec.get("annotations").cloned().unwrap_or(json!({}));
            let object = node(&name, &list("ips"), &list("cidrs"), annotations);
            want.insert(key("Node", "", &name), object);
        }
        for (_, object) in json_files(&dir.join("objects")) {
            if let Ok(key) = key_of(&object) {
                want.insert(key, object);
            }
        }
        let have = self.lock().keys();
        for (kind, namespace, name) in have.iter().filter(|k| !want.contains_key(*k)) {
            self.delete_object(
                kind,
                Some(namespace.as_str()).filter(|n| !n.is_empty()),
                name,
            );
        }
        for (key, object) in want {
            if !self
                .lock()
                .get(&key)
                .is_some_and(|have| same(have, &object))
            {
                self.put_object(object);
            }
        }
    }

    /// The Events written about Node `node`, oldest first.
    pub fn events_about(&self, node: &str) -> Vec<Value> {
        let c = self.lock();
        let mut found: Vec<Value> = c
            .node_events
            .values()
            .filter(|e| e["regarding"]["kind"] == "Node" && e["regarding"]["name"] == node)
            .cloned()
            .collect();
        // The uid holds the resourceVersion of its creation.
        found.sort_by_key(|e| e["metadata"]["uid"].as_str().unwrap_or("").to_string());
        found
    }

    /// The state, to look at and to change.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Cluster> {
        self.cluster.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Add or change a node: a new resourceVersion, an event.
    pub fn put(&self, name: &str, ips: &[&str], cidrs: &[&str], annotations: Value) {
        self.put_object(node(name, ips, cidrs, annotations));
    }

    /// Remove a node, if there is one: a new resourceVersion, an event.
    pub fn delete(&self, name: &str) {
        self.delete_object("Node", None, name);
    }

    /// Add or change an object, which says what it is (`apiVersion`,
    /// `kind`, `metadata.name`, and `metadata.namespace` when the kind is
    /// namespaced): ADDED or MODIFIED with a new resourceVersion. The
    /// server stamps its uid and creationTimestamp when it has none,
    /// keeping those of the object it replaces. Panics on an object of a
    /// kind the server does not serve, or one that does not say which.
    pub fn put_object(&self, mut object: Value) {
        let key = key_of(&object).unwrap_or_else(|e| panic!("put_object: {e}"));
        let mut c = self.lock();
        c.rv += 1;
        let rv = c.rv;
        let before = c.get(&key).map(|b| b["metadata"].clone());
        let meta = &mut object["metadata"];
        // A real uid is a UUID; the resourceVersion at creation makes one
        // unique.
        let stamps = [
            ("uid", json!(format!("00000000-0000-4000-8000-{rv:012x}"))),
            ("creationTimestamp", json!(CREATED)),
        ];
        for (field, new) in stamps {
            if meta.get(field).is_none_or(Value::is_null) {
                let old = before.as_ref().map(|b| b[field].clone());
                meta[field] = old.filter(|v| !v.is_null()).unwrap_or(new);
            }
        }
        meta["resourceVersion"] = json!(rv.to_string());
        let event = if before.is_some() {
            "MODIFIED"
        } else {
            "ADDED"
        };
        c.insert(key, object.clone());
        c.record(&self.events, event, object);
    }

    /// Remove an object, if there is one: DELETED, carrying the object
    /// with a new resourceVersion, as a real API server sends it.
    pub fn delete_object(&self, kind: &str, namespace: Option<&str>, name: &str) {
        let mut c = self.lock();
        let Some(mut object) = c.remove(&key(kind, namespace.unwrap_or(""), name)) else {
            return;
        };
        c.rv += 1;
        object["metadata"]["resourceVersion"] = json!(c.rv.to_string());
        c.record(&self.events, "DELETED", object);
    }

    /// End every open watch, of every kind (a load balancer timing out,
    /// say).
    pub fn break_watches(&self) {
        self.lock().generation += 1;
        let _ = self.events.send((0, "BREAK".into(), Value::Null));
    }
}

fn key(kind: &str, namespace: &str, name: &str) -> Key {
    (kind.into(), namespace.into(), name.into())
}

/// Which object `object` is, if it is one of a kind the server serves.
fn key_of(object: &Value) -> Result<Key, String> {
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let namespace = object["metadata"]["namespace"].as_str();
    let kind = object["kind"].as_str().unwrap_or_default();
    let Some(k) = KINDS.iter().find(|k| k.kind == kind) else {
        return Err(format!("no kind {kind:?} here"));
    };
    if object["apiVersion"] != k.api_version {
        return Err(format!("a {kind} is {}", k.api_version));
    }
    match (name, namespace, k.namespaced) {
        ("", _, _) => Err(format!("a {kind} without a name")),
        (_, None | Some(""), true) => Err(format!("{kind} {name} without a namespace")),
        (_, Some(_), false) => Err(format!("{kind} {name} is cluster-scoped")),
        (_, namespace, _) => Ok(key(kind, namespace.unwrap_or(""), name)),
    }
}

/// Whether a stored object says what `want` does, the fields the server
/// stamps aside.
fn same(have: &Value, want: &Value) -> bool {
    let (mut have, mut want) = (have.clone(), want.clone());
    let stamped = ["uid", "creationTimestamp"]
        .into_iter()
        .filter(|f| want["metadata"].get(*f).is_none_or(Value::is_null));
    let stamped: Vec<&str> = stamped.chain(["resourceVersion"]).collect();
    for o in [&mut have, &mut want] {
        if let Some(meta) = o["metadata"].as_object_mut() {
            meta.retain(|field, _| !stamped.contains(&field.as_str()));
        }
    }
    have == want
}

/// The `*.json` files of `dir` that hold JSON: name without `.json`,
/// content.
fn json_files(dir: &Path) -> Vec<(String, Value)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|s| s.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        if name.starts_with('.') || !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            files.push((stem.to_string(), v));
        }
    }
    files
}

/// A Node as kind registers it: InternalIPs, pod prefixes, annotations.
pub fn node(name: &str, ips: &[&str], cidrs: &[&str], annotations: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "uid": format!("uid-{name}"),
            "creationTimestamp": CREATED,
            "labels": { "kubernetes.io/hostname": name },
            "annotations": annotations,
        },
        "spec": { "podCIDR": cidrs.first(), "podCIDRs": cidrs, "providerID": format!("kind://docker/kind/{name}") },
        "status": {
            "addresses": ips.iter().map(|ip| json!({"type": "InternalIP", "address": ip}))
                .chain([json!({"type": "Hostname", "address": name})]).collect::<Vec<_>>(),
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                "lastHeartbeatTime": CREATED, "lastTransitionTime": CREATED}],
        },
    })
}

/// A Service with `spec` as its client wrote it, defaulted as the API
/// server defaults it (type, session affinity, traffic policies, IP
/// families from the cluster IPs), and `status` (null: none yet).
pub fn service(
    namespace: &str,
    name: &str,
    spec: Value,
    status: Value,
    annotations: Value,
) -> Value {
    let mut spec = spec.as_object().cloned().unwrap_or_default();
    let kind = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    let external = matches!(kind, "LoadBalancer" | "NodePort");
    let mut defaults = vec![
        ("type", json!(kind)),
        ("sessionAffinity", json!("None")),
        ("internalTrafficPolicy", json!("Cluster")),
    ];
    if external {
        defaults.push(("externalTrafficPolicy", json!("Cluster")));
    }
    let ips: Vec<String> = match (spec.get("clusterIPs"), spec.get("clusterIP")) {
        (Some(ips), _) => serde_json::from_value(ips.clone()).unwrap_or_default(),
        (None, Some(Value::String(ip))) => vec![ip.clone()],
        _ => vec![],
    };
    if let Some(first) = ips.first().filter(|ip| *ip != "None") {
        let families: Vec<&str> = ips
            .iter()
            .map(|ip| if ip.contains(':') { "IPv6" } else { "IPv4" })
            .collect();
        let policy = if ips.len() > 1 {
            "PreferDualStack"
        } else {
            "SingleStack"
        };
        defaults.push(("clusterIP", json!(first)));
        defaults.push(("clusterIPs", json!(ips)));
        defaults.push(("ipFamilies", json!(families)));
        defaults.push(("ipFamilyPolicy", json!(policy)));
    }
    for (field, value) in defaults {
        spec.entry(field).or_insert(value);
    }
    let mut metadata = json!({"name": name, "namespace": namespace});
    if annotations.as_object().is_some_and(|a| !a.is_empty()) {
        metadata["annotations"] = annotations;
    }
    let status = if status.is_null() {
        json!({"loadBalancer": {}})
    } else {
        status
    };
    json!({"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec, "status": status})
}

/// An EndpointSlice of Service `service_name` as its controller writes
/// it: one endpoint per (address, node name, ready), port 80/TCP.
pub fn endpoint_slice(
    namespace: &str,
    name: &str,
    service_name: &str,
    endpoints: &[(&str, &str, bool)],
) -> Value {
    let v6 = endpoints.first().is_some_and(|(ip, _, _)| ip.contains(':'));
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(ip, node, ready)| {
            json!({"addresses": [ip], "nodeName": node,
                "conditions": {"ready": ready, "serving": ready, "terminating": false}})
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "generateName": format!("{service_name}-"),
            "labels": {
                "kubernetes.io/service-name": service_name,
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
            },
        },
        "addressType": if v6 { "IPv6" } else { "IPv4" },
        "endpoints": endpoints,
        "ports": [{"name": "", "port": 80, "protocol": "TCP"}],
    })
}

/// A ServiceCIDR as its controller leaves it: protected by its finalizer,
/// Ready.
pub fn service_cidr(name: &str, cidrs: &[&str]) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "ServiceCIDR",
        "metadata": { "name": name, "finalizers": ["networking.k8s.io/service-cidr-finalizer"] },
        "spec": { "cidrs": cidrs },
        "status": { "conditions": [{"type": "Ready", "status": "True", "reason": "",
            "message": "Kubernetes Service CIDR is ready", "lastTransitionTime": CREATED}] },
    })
}

/// `object`, deleted but kept by its finalizers: terminating.
pub fn terminating(mut object: Value) -> Value {
    object["metadata"]["deletionTimestamp"] = json!(CREATED);
    object["metadata"]["deletionGracePeriodSeconds"] = json!(0);
    object
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code})
}

fn not_found(message: &str) -> Response {
    let body = axum::Json(status(404, "NotFound", message));
    (StatusCode::NOT_FOUND, body).into_response()
}

async fn get_node(State(s): State<Server>, UrlPath(name): UrlPath<String>) -> Response {
    match s.lock().nodes.get(&name) {
        Some(n) => axum::Json(n.clone()).into_response(),
        None => not_found(&format!("nodes \"{name}\" not found")),
    }
}

/// A kind's list or, with `watch=true`, its watch.
async fn list_or_watch(s: Server, kind: &'static Kind, q: BTreeMap<String, String>) -> Response {
    if kind.kind == "ServiceCIDR" && s.lock().without_service_cidrs {
        // What an API server says of a resource it does not have.
        return not_found("the server could not find the requested resource");
    }
    if q.get("watch").map(String::as_str) != Some("true") {
        let mut c = s.lock();
        c.lists += 1;
        let version = (kind.kind, c.rv, c.log.len());
        let body = match &c.listed {
            Some((k, rv, len, body)) if (*k, *rv, *len) == version => body.clone(),
            _ => {
                let list = json!({
                    "apiVersion": kind.api_version,
                    "kind": format!("{}List", kind.kind),
                    "metadata": { "resourceVersion": c.rv.to_string() },
                    "items": c.items(kind.kind),
                });
                let body = Bytes::from(list.to_string());
                c.listed = Some((version.0, version.1, version.2, body.clone()));
                body
            }
        };
        return ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    let from: u64 = q
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let bookmarks = q.get("allowWatchBookmarks").map(String::as_str) == Some("true");
    let ours = move |object: &Value| object["kind"] == kind.kind;
    // Subscribe before reading the log: nothing falls between the two.
    let mut live = s.events.subscribe();
    let (backlog, mut seen, generation, gone, every) = {
        let mut c = s.lock();
        c.watches += 1;
        let gone = from < c.gone_before;
        if gone {
            c.gones += 1;
        }
        let backlog: Vec<(u64, String, Value)> = c
            .log
            .iter()
            .filter(|(rv, _, object)| *rv > from && ours(object))
            .cloned()
            .collect();
        let every = c.bookmark_every.unwrap_or(Duration::from_millis(500));
        (backlog, c.rv.max(from), c.generation, gone, every)
    };
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, Infallible>>(64);
    let server = s.clone();
    tokio::spawn(async move {
        let line = |v: Value| Ok(Bytes::from(format!("{v}\n")));
        if gone {
            let e = json!({"type": "ERROR", "object": status(410, "Expired", "too old resource version")});
            let _ = tx.send(line(e)).await;
            return;
        }
        for (_, event, object) in backlog {
            if tx
                .send(line(json!({"type": event, "object": object})))
                .await
                .is_err()
            {
                return;
            }
        }
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                // Events before bookmarks: a bookmark's resourceVersion is
                // the last event this watch has gone through, of any kind.
                biased;
                e = live.recv() => match e {
                    Ok((_, event, _)) if event == "BREAK" => {
                        if server.lock().generation != generation {
                            return;
                        }
                    }
                    // The backlog had those up to `seen`.
                    Ok((rv, event, object)) if rv > seen => {
                        seen = rv;
                        if ours(&object)
                            && tx.send(line(json!({"type": event, "object": object}))).await.is_err()
                        {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                },
                _ = tick.tick() => {
                    if bookmarks {
                        let b = json!({"type": "BOOKMARK", "object": {"kind": kind.kind,
                            "apiVersion": kind.api_version, "metadata": {"resourceVersion": seen.to_string()}}});
                        if tx.send(line(b)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(rx))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A CA certificate of the lab's own (self-signed, its key thrown away),
/// PEM in base64: a Pod's in-cluster config always names its cluster's CA,
/// and with one named the client does not load the machine's trust store
/// at start. The lab's API servers speak plain HTTP: it never verifies.
const LAB_CA: &str = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJsekNDQVQyZ0F3SUJBZ0lVVzRYbGJ1dEtubmN2RWJiVE5TbERJOXRjdkpVd0NnWUlLb1pJemowRUF3SXcKSURFZU1Cd0dBMVVFQXd3VmNHOWtZbWR3SUd4aFlpQmpiSFZ6ZEdWeUlFTkJNQ0FYRFRJMk1URXlNVEUxTVRjeApNbG9ZRHpJeE1qWXhNREk0TVRVeE56RXlXakFnTVI0d0hBWURWUVFEREJWd2IyUmlaM0FnYkdGaUlHTnNkWE4wClpYSWdRMEV3V1RBVEJnY3Foa2pPUFFJQkJnZ3Foa2pPUFFNQkJ3TkNBQVNWR3FBYU40enBxamRoNGtOVmZOK08KN2J1WmZmU1NLOC9FTHA2VDNHb1E5VDVRNEUrS3FtVEs2OHRVVXpoL0VqWkNweWtQbU9kcGR6VnA1RHRSK2t6RwpvMU13VVRBZEJnTlZIUTRFRmdRVVU5Nkxaa3A4KzF1UkUrSE8zNE9TNmFaKzE4b3dId1lEVlIwakJCZ3dGb0FVClU5Nkxaa3A4KzF1UkUrSE8zNE9TNmFaKzE4b3dEd1lEVlIwVEFRSC9CQVV3QXdFQi96QUtCZ2dxaGtqT1BRUUQKQWdOSUFEQkZBaUJzTGovVmRjd2pnMWtDYXhWeUgvUHJIdlBQb1NzcG5FV2ZDTlFuWkpCakt3SWhBUHpsTXpTaQozdExleUxlNUNzNTZlNThPb21CYUg3Y1d3SDJuc3o2SEZNTXAKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=";

/// A kubeconfig for a client of the server at `server` (`http://ADDR`).
pub fn kubeconfig(server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: lab\n  cluster:\n    server: {server}\n    certificate-authority-data: {LAB_CA}\n\
         users:\n- name: lab\n  user:\n    token: lab-token\n\
         contexts:\n- name: lab\n  context:\n    cluster: lab\n    user: lab\ncurrent-context: lab\n"
    )
}

/// Serve until the process ends, following the files of `dir` (see
/// [`Server::sync_dir`]; the lab's API servers).
pub async fn serve_dir(listener: tokio::net::TcpListener, dir: std::path::PathBuf) {
    let server = Server::new();
    server.sync_dir(&dir);
    let app = server.router();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        server.sync_dir(&dir);
    }
}
