//! The adapter for podbgp itself: a config file, `podbgp run`, and the
//! CLI (`-j`) to look at it, as a user would.

use std::fmt::Write;
use std::net::IpAddr;
use std::path::Path;

use serde_json::Value;

use super::{Base, Host, Lab, Route, Speaker};

pub struct Podbgp {
    base: Base,
    /// Extra TOML for `[global]`.
    pub global_extra: String,
    /// Serve the API on a unix socket instead of 127.0.0.1:7179.
    pub api_unix: bool,
    /// Serve metrics on 127.0.0.1:9179 in the host's namespace.
    pub metrics: bool,
    /// SNAT on, with these extra `[snat]` lines.
    pub snat: Option<String>,
    /// Kubernetes mode: this node's name and the kubeconfig to use; the
    /// CNI config goes to the host's directory.
    pub kubernetes: Option<(String, std::path::PathBuf)>,
    /// Hold time of every session, the Kubernetes mesh's included.
    pub hold_time: u16,
    /// Extra lines for `[kubernetes]`.
    pub kubernetes_extra: String,
    /// Lines of a `[fib]` section, when not empty.
    pub fib_extra: String,
    /// Lines added to every `[[neighbor]]`.
    pub neighbor_extra: String,
    /// Sections added at the end (`[[bmp]]`, ...).
    pub extra: String,
}

impl Podbgp {
    pub fn new(host: &Host, asn: u32) -> Podbgp {
        Podbgp {
            base: Base::new(host, asn),
            global_extra: String::new(),
            api_unix: false,
            metrics: false,
            snat: None,
            kubernetes: None,
            hold_time: 9,
            kubernetes_extra: String::new(),
            fib_extra: String::new(),
            neighbor_extra: String::new(),
            extra: String::new(),
        }
    }

    /// Write the config and start `podbgp run`; returns at once, with the
    /// daemon's process id.
    pub fn spawn(&mut self, lab: &mut Lab) -> u32 {
        let path = self.base.host.dir.join("podbgp.toml");
        std::fs::write(&path, self.config()).expect("config written");
        let path = path.to_string_lossy().into_owned();
        let kubeconfig = self
            .kubernetes
            .as_ref()
            .map(|(node, k)| (node.clone(), k.to_string_lossy().into_owned()));
        let env: Vec<(&str, &str)> = match &kubeconfig {
            Some((node, k)) => vec![("NODE_NAME", node.as_str()), ("KUBECONFIG", k.as_str())],
            None => Vec::new(),
        };
        lab.spawn_direct(
            &self.base.host,
            Self::bin(),
            &["run", "--config", &path],
            &env,
            "podbgp.log",
        )
    }

    /// Wait (bounded) for the started daemon's API, then originate what
    /// needs attributes.
    pub fn wait_up(&self, lab: &Lab) {
        // The API is up once `global` answers. Until it listens, look with
        // a bare connect, not a process that competes with its start.
        let listening = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !self.api_listening() && std::time::Instant::now() < listening {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let up = super::eventually(std::time::Duration::from_secs(10), || {
            self.cli(&["global"]).0 == 0
        });
        assert!(up, "podbgp did not start\n{}", lab.logs(&self.base.host));
        // Attributes on originated routes go through `global rib add`.
        for a in self
            .base
            .adverts
            .iter()
            .filter(|a| a.med.is_some() || !a.communities.is_empty())
        {
            let mut args = vec!["global", "rib", "add", a.prefix.as_str()];
            let med = a.med.map(|m| m.to_string());
            if let Some(m) = &med {
                args.extend(["med", m.as_str()]);
            }
            for c in &a.communities {
                args.extend(["community", c.as_str()]);
            }
            for c in &a.large_communities {
                args.extend(["large-community", c.as_str()]);
            }
            let (code, _, err) = self.cli(&args);
            assert_eq!(code, 0, "global rib add: {err}");
        }
    }

    /// The daemon's processes. `ip netns exec` may run it as a child of
    /// its own, so it is found by name in the host's namespace.
    fn daemons(&self) -> Vec<i32> {
        self.base
            .host
            .text(&["ip", "netns", "pids", &self.base.host.ns])
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .filter(|p| {
                let comm = std::fs::read_to_string(format!("/proc/{p}/comm"));
                let stat = std::fs::read_to_string(format!("/proc/{p}/stat"));
                comm.is_ok_and(|c| c.trim() == "podbgp")
                    && stat.is_ok_and(|s| s.split_whitespace().nth(2) != Some("Z"))
            })
            .collect()
    }

    /// SIGTERM, as a DaemonSet rollout does, and wait (bounded) for the
    /// daemon to be gone.
    pub fn terminate(&mut self) {
        let pids = self.daemons();
        assert!(
            !pids.is_empty(),
            "no podbgp running in {}",
            self.base.host.name
        );
        for pid in pids {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let gone = super::eventually(std::time::Duration::from_secs(10), || {
            self.daemons().is_empty()
        });
        assert!(gone, "podbgp did not stop on SIGTERM");
    }

    /// `podbgp shutdown`: every session ends with a Cease and stays down;
    /// the daemon runs on.
    pub fn shutdown(&mut self) {
        let (code, out, err) = self.cli(&["shutdown"]);
        assert_eq!(code, 0, "podbgp shutdown: {out}{err}");
    }

    /// Something accepts connections where the API listens.
    fn api_listening(&self) -> bool {
        if self.api_unix {
            let path = self.base.host.dir.join("api.sock");
            std::os::unix::net::UnixStream::connect(path).is_ok()
        } else {
            let at = std::net::SocketAddr::from(([127, 0, 0, 1], 7179));
            super::connect_in(&self.base.host, at).is_ok()
        }
    }

    fn api_socket(&self) -> String {
        format!("unix:{}", self.base.host.dir.join("api.sock").display())
    }

    /// Routes of protocol 200 in the host's kernel, as `ip route` prints them.
    pub fn kernel_routes(&self, v6: bool) -> Vec<String> {
        let family = if v6 { "-6" } else { "-4" };
        self.base
            .host
            .text(&["ip", family, "route", "show", "proto", "200"])
            .lines()
            .map(without_nexthop_id)
            .collect()
    }

    /// Our kernel routes with the nexthop object each names, if it does.
    pub fn kernel_routes_with_ids(&self, v6: bool) -> Vec<(String, Option<u32>)> {
        let family = if v6 { "-6" } else { "-4" };
        self.base
            .host
            .text(&["ip", family, "route", "show", "proto", "200"])
            .lines()
            .map(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                let id = words
                    .iter()
                    .position(|w| *w == "nhid")
                    .and_then(|i| words.get(i + 1))
                    .and_then(|w| w.parse().ok());
                (without_nexthop_id(l), id)
            })
            .collect()
    }

    /// Wait (bounded) until a kernel route of ours starts with `start`.
    pub fn wait_kernel(&self, lab: &Lab, start: &str) {
        let v6 = start.contains(':');
        let ok = super::eventually(std::time::Duration::from_secs(10), || {
            self.kernel_routes(v6).iter().any(|r| r.starts_with(start))
        });
        assert!(
            ok,
            "no kernel route {start}: {:?}\n{}",
            self.kernel_routes(v6),
            lab.logs(&self.base.host)
        );
    }

    /// GET a path of the metrics server: (status, body).
    pub fn metrics_get(&self, path: &str) -> (u16, String) {
        let url = format!("http://127.0.0.1:9179{path}");
        let script = [
            "import sys, urllib.request",
            "try:",
            " r = urllib.request.urlopen(sys.argv[1], timeout=5)",
            " print(r.status); print(r.read().decode())",
            "except Exception as e:",
            " print(getattr(e, 'code', 0)); print(e)",
        ]
        .join("\n");
        let out = self.base.host.text(&["python3", "-c", &script, &url]);
        let (status, body) = out.split_once('\n').unwrap_or((out.as_str(), ""));
        (status.trim().parse().unwrap_or(0), body.to_string())
    }

    /// The podbgp binary: the one cargo built for the tests, or, for the
    /// lab program, `PODBGP` or the one beside it (target/release).
    pub fn bin() -> &'static str {
        static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        BIN.get_or_init(|| {
            if let Some(b) = option_env!("CARGO_BIN_EXE_podbgp") {
                return b.to_string();
            }
            if let Ok(b) = std::env::var("PODBGP") {
                return b;
            }
            let exe = std::env::current_exe().unwrap_or_default();
            let dir = exe
                .parent()
                .and_then(Path::parent)
                .unwrap_or(Path::new("."));
            dir.join("podbgp").to_string_lossy().into_owned()
        })
    }

    /// Run the CLI in the host's namespace: (exit status, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let api = self.api_socket();
        let mut all = vec![Self::bin()];
        if self.api_unix {
            all.extend(["--api", api.as_str()]);
        }
        all.extend_from_slice(args);
        let out = self.base.host.exec(&all);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The CLI's JSON answer, or `Value::Null` when it failed.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["-j"];
        all.extend_from_slice(args);
        let (code, out, _) = self.cli(&all);
        if code != 0 {
            return Value::Null;
        }
        serde_json::from_str(&out).unwrap_or(Value::Null)
    }

    /// Where the CNI config goes in Kubernetes mode.
    pub fn cni_dir(&self) -> std::path::PathBuf {
        self.base.host.dir.join("cni")
    }

    fn config(&self) -> String {
        let mut c = String::new();
        let plain: Vec<String> = self
            .base
            .adverts
            .iter()
            .filter(|a| a.med.is_none() && a.communities.is_empty())
            .map(|a| format!("\"{}\"", a.prefix))
            .collect();
        let _ = writeln!(
            c,
            "[global]\nasn = {}\nrouter_id = \"{}\"\nadvertise = [{}]\n{}",
            self.base.asn,
            self.base.host.v4,
            plain.join(", "),
            self.global_extra
        );
        let metrics = if self.metrics { "127.0.0.1:9179" } else { "" };
        let _ = writeln!(c, "[metrics]\nlisten = \"{metrics}\"");
        if self.api_unix {
            let _ = writeln!(c, "[api]\nlisten = \"{}\"", self.api_socket());
        }
        if self.kubernetes.is_some() {
            let _ = writeln!(
                c,
                "[kubernetes]\nenabled = true\ncni_dir = \"{}\"\nhold_time = {}\n{}",
                self.cni_dir().display(),
                self.hold_time,
                self.kubernetes_extra
            );
        }
        if !self.fib_extra.is_empty() {
            let _ = writeln!(c, "[fib]\n{}", self.fib_extra);
        }
        match &self.snat {
            Some(extra) => {
                let _ = writeln!(c, "[snat]\nenabled = true\n{extra}");
            }
            None => {
                let _ = writeln!(c, "[snat]\nenabled = false\n");
            }
        }
        for p in &self.base.peers {
            let _ = writeln!(
                c,
                "[[neighbor]]\naddress = \"{}\"\nasn = {}\npassive = {}\nhold_time = {}\nconnect_retry = 1\nroute_reflector_client = {}",
                p.address, p.asn, p.passive, self.hold_time, p.rr_client
            );
            if let Some(pw) = &p.password {
                let _ = writeln!(c, "password = \"{pw}\"");
            }
            if p.gtsm {
                let _ = writeln!(c, "ttl_security = true");
            }
            if let Some(src) = p.source {
                let _ = writeln!(c, "local_address = \"{src}\"");
            }
            if let Some(hops) = p.multihop {
                let _ = writeln!(c, "multihop = {hops}");
            }
            if p.add_path {
                let _ = writeln!(c, "add_path_receive = true");
            }
            if let Some(b) = p.bfd {
                let _ = writeln!(
                    c,
                    "bfd = {{ min_rx = {}, min_tx = {}, multiplier = {} }}",
                    b.min_rx, b.min_tx, b.multiplier
                );
            }
            let _ = writeln!(c, "{}", self.neighbor_extra);
        }
        let _ = writeln!(c, "{}", self.extra);
        c
    }
}

impl Speaker for Podbgp {
    fn base(&self) -> &Base {
        &self.base
    }

    fn base_mut(&mut self) -> &mut Base {
        &mut self.base
    }

    fn start(&mut self, lab: &mut Lab) {
        self.spawn(lab);
        self.wait_up(lab);
    }

    fn shutdown_peer(&self, peer: IpAddr) {
        let (code, _, err) = self.cli(&["neighbor", &peer.to_string(), "shutdown"]);
        assert_eq!(code, 0, "neighbor shutdown: {err}");
    }

    fn established(&self, peer: IpAddr) -> bool {
        let v = self.json(&["neighbor", &peer.to_string()]);
        v["state"] == "Established"
    }

    fn rib(&self, v6: bool) -> Vec<Route> {
        let family = if v6 { "ipv6" } else { "ipv4" };
        let v = self.json(&["global", "rib", "-a", family]);
        let Some(dests) = v.as_array() else {
            return Vec::new();
        };
        dests
            .iter()
            .filter_map(|d| {
                let best = d["paths"].as_array()?.iter().find(|p| p["best"] == true)?;
                if best["source"] == "local" {
                    return None;
                }
                let strings = |k: &str| -> Vec<String> {
                    best[k]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                Some(Route {
                    prefix: d["prefix"].as_str()?.to_string(),
                    next_hop: best["next_hop"]
                        .as_str()?
                        .split_whitespace()
                        .next()?
                        .to_string(),
                    as_path: best["as_path"]
                        .as_str()?
                        .split_whitespace()
                        .filter_map(|a| a.parse().ok())
                        .collect(),
                    med: best["med"].as_u64().map(|m| m as u32),
                    local_pref: best["local_pref"].as_u64().map(|m| m as u32),
                    communities: strings("communities"),
                    large_communities: strings("large_communities"),
                    originator_id: best["originator_id"].as_str().map(String::from),
                    cluster_list: strings("cluster_list"),
                })
            })
            .collect()
    }
}

/// A line of `ip route` with its words single-spaced and without the
/// `nhid N` of a route naming a nexthop object: it reads the same either way.
pub fn without_nexthop_id(line: &str) -> String {
    let mut words = Vec::new();
    let mut it = line.split_whitespace();
    while let Some(w) = it.next() {
        if w == "nhid" {
            it.next();
            continue;
        }
        words.push(w);
    }
    words.join(" ")
}
