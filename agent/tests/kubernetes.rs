//! Kubernetes mode against an API server in the test: plain HTTP that
//! speaks the API server's list and watch for Nodes, with resourceVersions,
//! bookmarks, watches that break and 410 Gone, so the real `kube` client
//! runs its real code path. The real `podbgp` daemon follows it; what it
//! does is read through its control API, as a user would.
//!
//! Every address is on the loopback interface: the nodes' InternalIPs are
//! 127.0.0.x, so the mesh's connection attempts never leave the machine.
//! Needs no root (no FIB, no SNAT).

#[path = "../../interop-tests/lab/apiserver.rs"]
#[allow(dead_code)]
mod apiserver;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use apiserver::Server;
use serde_json::{json, Value};

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
    let api_server: SocketAddr = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let at = listener.local_addr().expect("address");
        let app = server.router();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        at
    });

    let dir = tempfile::tempdir().expect("dir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        apiserver::kubeconfig(&format!("http://{api_server}")),
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
}
