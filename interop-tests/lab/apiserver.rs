//! An API server for Nodes, enough for the `kube` client: list, get and
//! watch over plain HTTP, JSON shaped as a real API server returns it, with
//! resourceVersions, bookmarks, watches that can be broken and a history
//! that can be compacted (410 Gone). Tests drive it directly; the lab runs
//! it as a process of its own that follows a directory of node files.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::SinkExt;
use serde_json::{json, Value};
use tokio::sync::broadcast;

/// The API server's state.
#[derive(Default)]
pub struct Cluster {
    pub rv: u64,
    pub nodes: BTreeMap<String, Value>,
    /// Every change: resourceVersion, type, object.
    pub log: Vec<(u64, String, Value)>,
    /// Watches from before this resourceVersion get 410 Gone.
    pub gone_before: u64,
    /// Bumped to end every open watch.
    pub generation: u64,
    /// Requests seen, to tell what the client did.
    pub lists: u32,
    pub watches: u32,
    pub gones: u32,
}

#[derive(Clone)]
pub struct Server {
    cluster: Arc<Mutex<Cluster>>,
    events: broadcast::Sender<(u64, String, Value)>,
}

impl Server {
    pub fn new() -> Server {
        let (events, _) = broadcast::channel(1024);
        Server {
            cluster: Arc::default(),
            events,
        }
    }

    /// The routes a `kube` client uses for Nodes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/v1/nodes", get(nodes))
            .route("/api/v1/nodes/:name", get(get_node))
            .with_state(self.clone())
    }

    /// Forget the history: watches from before now get 410 Gone.
    pub fn compact(&self) {
        let mut c = self.lock();
        c.gone_before = c.rv + 1;
    }

    /// Make the nodes those of `dir`: one `NAME.json` each, holding
    /// `{"ips": [...], "cidrs": [...], "annotations": {...}}`.
    pub fn sync_dir(&self, dir: &Path) {
        let mut want: BTreeMap<String, Value> = BTreeMap::new();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let Ok(v) = std::fs::read_to_string(&path)
                .map_err(|_| ())
                .and_then(|t| serde_json::from_str::<Value>(&t).map_err(|_| ()))
            else {
                continue;
            };
            want.insert(name.to_string(), v);
        }
        let have: Vec<String> = self.lock().nodes.keys().cloned().collect();
        for name in have.iter().filter(|n| !want.contains_key(*n)) {
            self.delete(name);
        }
        for (name, spec) in want {
            let list = |k: &str| -> Vec<String> {
                spec[k]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            };
            let (ips, cidrs) = (list("ips"), list("cidrs"));
            let annotations = spec.get("annotations").cloned().unwrap_or(json!({}));
            if self
                .lock()
                .nodes
                .get(&name)
                .is_some_and(|n| same(n, &ips, &cidrs, &annotations))
            {
                continue;
            }
            let ips: Vec<&str> = ips.iter().map(String::as_str).collect();
            let cidrs: Vec<&str> = cidrs.iter().map(String::as_str).collect();
            self.put(&name, &ips, &cidrs, annotations);
        }
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, Cluster> {
        self.cluster.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Add or change a node: a new resourceVersion, an event.
    pub fn put(&self, name: &str, ips: &[&str], cidrs: &[&str], annotations: Value) {
        let mut c = self.lock();
        c.rv += 1;
        let rv = c.rv;
        let kind = if c.nodes.contains_key(name) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        let node = json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "uid": format!("uid-{name}"),
                "resourceVersion": rv.to_string(),
                "creationTimestamp": "2026-11-21T00:00:00Z",
                "labels": { "kubernetes.io/hostname": name },
                "annotations": annotations,
            },
            "spec": { "podCIDR": cidrs.first(), "podCIDRs": cidrs, "providerID": format!("kind://docker/kind/{name}") },
            "status": {
                "addresses": ips.iter().map(|ip| json!({"type": "InternalIP", "address": ip}))
                    .chain([json!({"type": "Hostname", "address": name})]).collect::<Vec<_>>(),
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                    "lastHeartbeatTime": "2026-11-21T00:00:00Z", "lastTransitionTime": "2026-11-21T00:00:00Z"}],
            },
        });
        c.nodes.insert(name.into(), node.clone());
        c.log.push((rv, kind.into(), node.clone()));
        drop(c);
        let _ = self.events.send((rv, kind.into(), node));
    }

    pub fn delete(&self, name: &str) {
        let mut c = self.lock();
        c.rv += 1;
        let rv = c.rv;
        let Some(mut node) = c.nodes.remove(name) else {
            return;
        };
        node["metadata"]["resourceVersion"] = json!(rv.to_string());
        c.log.push((rv, "DELETED".into(), node.clone()));
        drop(c);
        let _ = self.events.send((rv, "DELETED".into(), node));
    }

    /// End every open watch (a load balancer timing out, say).
    pub fn break_watches(&self) {
        self.lock().generation += 1;
        let _ = self.events.send((0, "BREAK".into(), Value::Null));
    }
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code})
}

async fn get_node(State(s): State<Server>, UrlPath(name): UrlPath<String>) -> Response {
    match s.lock().nodes.get(&name) {
        Some(n) => axum::Json(n.clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(status(
                404,
                "NotFound",
                &format!("nodes \"{name}\" not found"),
            )),
        )
            .into_response(),
    }
}

async fn nodes(State(s): State<Server>, Query(q): Query<BTreeMap<String, String>>) -> Response {
    if q.get("watch").map(String::as_str) != Some("true") {
        let mut c = s.lock();
        c.lists += 1;
        let list = json!({
            "apiVersion": "v1",
            "kind": "NodeList",
            "metadata": { "resourceVersion": c.rv.to_string() },
            "items": c.nodes.values().cloned().collect::<Vec<_>>(),
        });
        return axum::Json(list).into_response();
    }
    let from: u64 = q
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let bookmarks = q.get("allowWatchBookmarks").map(String::as_str) == Some("true");
    // Subscribe before reading the log: nothing falls between the two.
    let mut live = s.events.subscribe();
    let (backlog, generation, gone) = {
        let mut c = s.lock();
        c.watches += 1;
        let gone = from < c.gone_before;
        if gone {
            c.gones += 1;
        }
        let backlog: Vec<(u64, String, Value)> = c
            .log
            .iter()
            .filter(|(rv, _, _)| *rv > from)
            .cloned()
            .collect();
        (backlog, c.generation, gone)
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
        let mut last = from;
        for (rv, kind, object) in backlog {
            last = rv;
            if tx
                .send(line(json!({"type": kind, "object": object})))
                .await
                .is_err()
            {
                return;
            }
        }
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                e = live.recv() => match e {
                    Ok((_, kind, _)) if kind == "BREAK" => {
                        if server.lock().generation != generation {
                            return;
                        }
                    }
                    Ok((rv, kind, object)) if rv > last => {
                        last = rv;
                        if tx.send(line(json!({"type": kind, "object": object}))).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                },
                _ = tick.tick() => {
                    if bookmarks {
                        let rv = server.lock().rv.max(last);
                        let b = json!({"type": "BOOKMARK", "object": {"kind": "Node", "apiVersion": "v1",
                            "metadata": {"resourceVersion": rv.to_string()}}});
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

/// Whether a node already says this.
fn same(node: &Value, ips: &[String], cidrs: &[String], annotations: &Value) -> bool {
    let have_ips: Vec<&str> = node["status"]["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["type"] == "InternalIP")
        .filter_map(|a| a["address"].as_str())
        .collect();
    let have_cidrs: Vec<&str> = node["spec"]["podCIDRs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    have_ips == ips.iter().map(String::as_str).collect::<Vec<_>>()
        && have_cidrs == cidrs.iter().map(String::as_str).collect::<Vec<_>>()
        && &node["metadata"]["annotations"] == annotations
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

/// Serve until the process ends, following the node files of `dir`
/// (the lab's API servers).
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
