//! What the tests of Kubernetes mode share: the API server of the tests
//! served on loopback, the real daemon started against it, and its CLI.

#![allow(dead_code)]

#[path = "../../../interop-tests/lab/apiserver.rs"]
pub mod apiserver;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use apiserver::Server;

pub mod ports;
pub use ports::free_port;

/// A runtime for the API server of a test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Serve `server` on a loopback port of its own; its address.
pub fn serve(runtime: &tokio::runtime::Runtime, server: &Server) -> SocketAddr {
    let app = server.router();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let at = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        at
    })
}

/// The real daemon in Kubernetes mode, killed when dropped.
pub struct Daemon {
    child: Child,
    /// Its control API, `http://127.0.0.1:PORT`.
    pub api: String,
    /// Its metrics server, `127.0.0.1:PORT`.
    pub metrics: SocketAddr,
    pub log: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// `podbgp run` as node `node` of the cluster whose API server is at
    /// `api_server`: no FIB, no SNAT, BGP on loopback; `kubernetes` are
    /// extra lines of its `[kubernetes]` section.
    pub fn start(api_server: SocketAddr, node: &str, kubernetes: &str) -> Daemon {
        let dir = tempfile::tempdir().expect("dir");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            apiserver::kubeconfig(&format!("http://{api_server}")),
        )
        .expect("kubeconfig");
        let cni_dir = dir.path().join("cni");
        let api = format!("http://127.0.0.1:{}", free_port());
        let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let config = dir.path().join("podbgp.toml");
        std::fs::write(
            &config,
            format!(
                "[global]\nasn = 64512\nlisten_addresses = [\"127.0.0.1\"]\nlisten_port = {}\n\
                 [api]\nlisten = \"{}\"\n[metrics]\nlisten = \"{metrics}\"\n[fib]\nenabled = false\n[snat]\nenabled = false\n\
                 [kubernetes]\nenabled = true\nmesh = true\ncni = true\ncni_dir = \"{}\"\n{kubernetes}\n",
                free_port(),
                api.trim_start_matches("http://"),
                cni_dir.display()
            ),
        )
        .expect("config");
        let log = dir.path().join("podbgp.log");
        let out = std::fs::File::create(&log).expect("log");
        let err = out.try_clone().expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_podbgp"))
            .args(["run", "--config"])
            .arg(&config)
            .env("KUBECONFIG", &kubeconfig)
            .env("NODE_NAME", node)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("podbgp");
        Daemon {
            child,
            api,
            metrics,
            log,
            dir,
        }
    }

    /// The CNI directory it writes to.
    pub fn cni_dir(&self) -> PathBuf {
        self.dir.path().join("cni")
    }

    /// A CLI command's JSON answer (`Null` when it failed).
    pub fn cli(&self, args: &[&str]) -> Value {
        cli(&self.api, args)
    }

    /// Wait (20 s at most) for `check`, or fail with `what` and the log.
    pub fn eventually(&self, what: &str, check: impl FnMut() -> bool) {
        eventually(what, check, &self.log);
    }

    /// The value of a metric series, `name{labels}` as the text shows it.
    pub fn metric(&self, series: &str) -> Option<f64> {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(self.metrics).ok()?;
        let request = "GET /metrics HTTP/1.1\r\nHost: podbgp\r\nConnection: close\r\n\r\n";
        conn.write_all(request.as_bytes()).ok()?;
        let mut text = String::new();
        conn.read_to_string(&mut text).ok()?;
        text.lines().find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

pub fn cli(api: &str, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_podbgp"))
        .args(["--api", api, "-j"])
        .args(args)
        .output()
        .expect("podbgp");
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

pub fn eventually(what: &str, mut check: impl FnMut() -> bool, log: &Path) {
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
