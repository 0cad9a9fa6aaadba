//! Kubernetes mode against an API server in the test: plain HTTP that
//! speaks the API server's list and watch for Nodes, with resourceVersions,
//! bookmarks, watches that break and 410 Gone, so the real `kube` client
//! runs its real code path. The real `podbgp` daemon follows it; what it
//! does is read through its control API, as a user would.
//!
//! Every address is on the loopback interface: the nodes' InternalIPs are
//! 127.0.0.x, so the mesh's connection attempts never leave the machine.
//! Needs no root (no FIB, no SNAT).

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::SinkExt;
use serde_json::{json, Value};
use tokio::sync::broadcast;

/// The fake API server's state.
#[derive(Default)]
struct Cluster {
    rv: u64,
    nodes: BTreeMap<String, Value>,
    /// Every change: resourceVersion, type, object.
    log: Vec<(u64, String, Value)>,
    /// Watches from before this resourceVersion get 410 Gone.
    gone_before: u64,
    /// Bumped to end every open watch.
    generation: u64,
    /// Requests seen, to tell what the client did.
    lists: u32,
    watches: u32,
    gones: u32,
}

#[derive(Clone)]
struct Server {
    cluster: Arc<Mutex<Cluster>>,
    events: broadcast::Sender<(u64, String, Value)>,
}

impl Server {
    fn lock(&self) -> std::sync::MutexGuard<'_, Cluster> {
        self.cluster.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Add or change a node: a new resourceVersion, an event.
    fn put(&self, name: &str, ips: &[&str], cidrs: &[&str], annotations: Value) {
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

    fn delete(&self, name: &str) {
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
    fn break_watches(&self) {
        self.lock().generation += 1;
        let _ = self.events.send((0, "BREAK".into(), Value::Null));
    }
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code})
}

async fn get_node(State(s): State<Server>, Path(name): Path<String>) -> Response {
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

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The daemon, killed when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cli(api: &str, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_podbgp"))
        .args(["--api", api, "-j"])
        .args(args)
        .output()
        .expect("podbgp");
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

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

fn eventually(what: &str, mut check: impl FnMut() -> bool, log: &std::path::Path) {
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{what}: not so within 20 s\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn set(list: &[(&str, u64)]) -> BTreeSet<(String, u64)> {
    list.iter().map(|(a, n)| (a.to_string(), *n)).collect()
}

#[test]
fn nodes_drive_peers_prefixes_and_cni_through_watches_that_break() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (events, _) = broadcast::channel(1024);
    let server = Server {
        cluster: Arc::default(),
        events,
    };
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
    let api_server: SocketAddr = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let at = listener.local_addr().expect("address");
        let app = Router::new()
            .route("/api/v1/nodes", get(nodes))
            .route("/api/v1/nodes/:name", get(get_node))
            .with_state(server.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        at
    });

    let dir = tempfile::tempdir().expect("dir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: http://{api_server}\n\
             users:\n- name: test\n  user:\n    token: test-token\n\
             contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\ncurrent-context: test\n"
        ),
    )
    .expect("kubeconfig");
    let cni_dir = dir.path().join("cni");
    let api = format!("http://127.0.0.1:{}", free_port());
    let config = dir.path().join("podbgp.toml");
    std::fs::write(
        &config,
        format!(
            "[global]\nasn = 64512\nlisten_addresses = [\"127.0.0.1\"]\nlisten_port = {}\n\
             [api]\nlisten = \"{}\"\n[metrics]\nlisten = \"\"\n[fib]\nenabled = false\n[snat]\nenabled = false\n\
             [kubernetes]\nenabled = true\nmesh = true\ncni = true\ncni_dir = \"{}\"\n",
            free_port(),
            api.trim_start_matches("http://"),
            cni_dir.display()
        ),
    )
    .expect("config");
    let log = dir.path().join("podbgp.log");
    let out = std::fs::File::create(&log).expect("log");
    let err = out.try_clone().expect("log");
    let _daemon = Daemon(
        Command::new(env!("CARGO_BIN_EXE_podbgp"))
            .args(["run", "--config"])
            .arg(&config)
            .env("KUBECONFIG", &kubeconfig)
            .env("NODE_NAME", "kind-control-plane")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("podbgp"),
    );

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
    let cni_file = cni_dir.join("10-podbgp.conflist");
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
    {
        let mut c = server.lock();
        c.gone_before = c.rv + 1;
    }
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
