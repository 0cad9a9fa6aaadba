//! Network namespaces for interop tests, as TESTING.md lays them out: a
//! Linux bridge in a namespace of its own, each host a namespace attached
//! to it by a veth pair, and nothing in the root namespace. Every name
//! carries a per-run prefix; dropping the lab kills what it started (by
//! PID) and removes what it made, even when the test failed.

#![allow(dead_code)]

pub mod apiserver;
pub mod bird;
pub mod frr;
pub mod gobgp;
pub mod monitor;
pub mod podbgp;
mod process;
pub mod rng;
pub mod scale;
pub mod scenarios;
pub mod services;
pub mod soak;
mod traffic;
pub mod world;

// Each test binary includes the lab and uses some of these.
#[allow(unused_imports)]
pub use process::{on_signal, pid_in, renice, usage};
#[allow(unused_imports)]
pub use traffic::{
    connect_in, kubeconfig_for, listen, listen_in, seen_from, serve_api, udp_in, LISTENER,
};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Set to 1 to skip the interop tests where root or the peers are missing.
pub const OPT_OUT: &str = "PODBGP_INTEROP_OPT_OUT";

/// What every interop test needs of the machine; `false` means skip (the
/// user opted out), and anything missing otherwise fails the test with one
/// line saying what.
pub fn ready() -> bool {
    let mut missing = Vec::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("root (network namespaces)".to_string());
    }
    for tool in [
        "/usr/sbin/ip",
        "/usr/sbin/bird",
        "/usr/sbin/birdc",
        "/usr/lib/frr/bgpd",
        "/usr/lib/frr/zebra",
        "/usr/bin/vtysh",
        "/usr/bin/gobgpd",
        "/usr/bin/gobgp",
    ] {
        if !Path::new(tool).exists() {
            missing.push(tool.to_string());
        }
    }
    if missing.is_empty() {
        return true;
    }
    if std::env::var(OPT_OUT).is_ok_and(|v| v == "1") {
        eprintln!(
            "interop test skipped ({OPT_OUT}=1): missing {}",
            missing.join(", ")
        );
        return false;
    }
    panic!(
        "interop tests need {} (make test installs frr bird2 gobgpd; set {OPT_OUT}=1 to skip them)",
        missing.join(", ")
    );
}

static RUN: AtomicU32 = AtomicU32::new(0);

/// One host of the lab.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    /// The namespace.
    pub ns: String,
    pub v4: Ipv4Addr,
    pub v6: Ipv6Addr,
    /// A directory of its own for configs, sockets and logs.
    pub dir: PathBuf,
    /// Its port on the bridge, in the switch namespace.
    port: String,
}

impl Host {
    pub fn addr(&self, v6: bool) -> IpAddr {
        if v6 {
            IpAddr::V6(self.v6)
        } else {
            IpAddr::V4(self.v4)
        }
    }

    /// Run a command in the host's namespace and wait for it.
    pub fn exec(&self, args: &[&str]) -> Output {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .args(args)
            .output();
        out.unwrap_or_else(|e| panic!("{}: cannot run {args:?}: {e}", self.name))
    }

    /// The standard output of a command in the namespace, as text.
    pub fn text(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.exec(args).stdout).into_owned()
    }
}

pub struct Lab {
    prefix: String,
    switch: String,
    hosts: Vec<Host>,
    children: Vec<Child>,
    /// Extra clean-up: FRR pathspaces and the like.
    dirs: Vec<PathBuf>,
    work: PathBuf,
    /// Removed with the lab, unless it is kept.
    _temp: Option<tempfile::TempDir>,
    /// Left running when dropped (`make lab`); `Lab::remove` takes it down.
    keep: bool,
}

fn run(args: &[&str]) {
    let status = Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => {}
        other => panic!("{args:?}: {other:?}"),
    }
}

impl Lab {
    pub fn new(test: &str) -> Lab {
        let n = RUN.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("pit{}{n}", std::process::id());
        let switch = format!("{prefix}-sw");
        run(&["ip", "netns", "add", &switch]);
        run(&["ip", "-n", &switch, "link", "add", "br0", "type", "bridge"]);
        run(&["ip", "-n", &switch, "link", "set", "br0", "up"]);
        let temp = tempfile::Builder::new()
            .prefix(&format!("podbgp-{test}-"))
            .tempdir()
            .expect("work directory");
        Lab {
            prefix,
            switch,
            hosts: Vec::new(),
            children: Vec::new(),
            dirs: Vec::new(),
            work: temp.path().to_path_buf(),
            _temp: Some(temp),
            keep: false,
        }
    }

    /// A lab that outlives this process: namespaces named `PREFIX-...`,
    /// files in `work`; whatever an earlier one left is removed first.
    pub fn persistent(prefix: &str, work: PathBuf) -> Lab {
        Lab::remove(prefix, &work);
        std::fs::create_dir_all(&work).expect("work directory");
        let switch = format!("{prefix}-sw");
        run(&["ip", "netns", "add", &switch]);
        run(&["ip", "-n", &switch, "link", "add", "br0", "type", "bridge"]);
        run(&["ip", "-n", &switch, "link", "set", "br0", "up"]);
        Lab {
            prefix: prefix.to_string(),
            switch,
            hosts: Vec::new(),
            children: Vec::new(),
            dirs: Vec::new(),
            work,
            _temp: None,
            keep: true,
        }
    }

    /// Take down a persistent lab: every process in its namespaces, the
    /// namespaces, FRR's run directories, the work directory.
    pub fn remove(prefix: &str, work: &Path) {
        let list = Command::new("ip").args(["netns", "list"]).output();
        let text = list
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let mine: Vec<String> = text
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.starts_with(&format!("{prefix}-")))
            .map(str::to_string)
            .collect();
        for ns in &mine {
            for pid in host_pids(ns) {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        for ns in &mine {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
            let _ = std::fs::remove_dir_all(PathBuf::from("/var/run/frr").join(ns));
        }
        let _ = std::fs::remove_dir_all(work);
    }

    /// Where the lab keeps its files.
    pub fn work(&self) -> &Path {
        &self.work
    }

    /// What every namespace of this lab is named after.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A new host at 10.77.0.N/24 and fd77::N/64.
    pub fn host(&mut self, name: &str) -> Host {
        let n = self.hosts.len() as u8 + 1;
        let v6: Ipv6Addr = format!("fd77::{n}").parse().expect("v6");
        self.host_at(name, (Ipv4Addr::new(10, 77, 0, n), 24), v6)
    }

    /// A new host at `v4` (with its prefix length) and `v6`/64.
    pub fn host_at(&mut self, name: &str, (v4, len): (Ipv4Addr, u8), v6: Ipv6Addr) -> Host {
        let ns = format!("{}-{name}", self.prefix);
        let port = format!("p{}", self.hosts.len() + 1);
        run(&["ip", "netns", "add", &ns]);
        run(&[
            "ip",
            "link",
            "add",
            "eth0",
            "netns",
            &ns,
            "type",
            "veth",
            "peer",
            "name",
            &port,
            "netns",
            &self.switch,
        ]);
        run(&[
            "ip",
            "-n",
            &self.switch,
            "link",
            "set",
            "dev",
            &port,
            "master",
            "br0",
            "up",
        ]);
        run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        run(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
        run(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{v4}/{len}"),
            "dev",
            "eth0",
        ]);
        run(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{v6}/64"),
            "dev",
            "eth0",
            "nodad",
        ]);
        let dir = self.work.join(name);
        std::fs::create_dir_all(&dir).expect("host directory");
        let host = Host {
            name: name.into(),
            ns,
            v4,
            v6,
            dir,
            port,
        };
        self.hosts.push(host.clone());
        host
    }

    /// A pod on `node`, attached as the CNI ptp plugin attaches one: a veth
    /// pair, the pod's `v4`/32 on its eth0, a /32 host route to it on the
    /// node, and the pod's default route via `gateway`, an address of the
    /// node's end (given to every pod of the node). The node forwards.
    pub fn pod(&mut self, node: &Host, name: &str, v4: Ipv4Addr, gateway: Ipv4Addr) -> Host {
        let n = self.hosts.len() as u8 + 1;
        let ns = format!("{}-{name}", self.prefix);
        let port = format!("veth{n}");
        run(&["ip", "netns", "add", &ns]);
        run(&[
            "ip", "link", "add", "eth0", "netns", &ns, "type", "veth", "peer", "name", &port,
            "netns", &node.ns,
        ]);
        let gw32 = format!("{gateway}/32");
        for args in [
            vec!["ip", "-n", &ns, "link", "set", "lo", "up"],
            vec!["ip", "-n", &ns, "link", "set", "eth0", "up"],
            vec!["ip", "-n", &node.ns, "link", "set", "dev", &port, "up"],
            vec!["ip", "-n", &node.ns, "addr", "add", &gw32, "dev", &port],
        ] {
            run(&args);
        }
        let pod32 = format!("{v4}/32");
        let gw = gateway.to_string();
        for args in [
            vec!["ip", "-n", &ns, "addr", "add", &pod32, "dev", "eth0"],
            vec![
                "ip", "-n", &ns, "route", "add", &gw32, "dev", "eth0", "scope", "link",
            ],
            vec![
                "ip", "-n", &ns, "route", "add", "default", "via", &gw, "dev", "eth0",
            ],
            vec![
                "ip", "-n", &node.ns, "route", "add", &pod32, "dev", &port, "scope", "link",
            ],
            vec![
                "ip",
                "netns",
                "exec",
                &node.ns,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ],
        ] {
            run(&args);
        }
        let dir = self.work.join(name);
        std::fs::create_dir_all(&dir).expect("pod directory");
        let pod = Host {
            name: name.into(),
            ns,
            v4,
            v6: Ipv6Addr::UNSPECIFIED,
            dir,
            port,
        };
        self.hosts.push(pod.clone());
        pod
    }

    /// Start a long-running process in the host's namespace; the lab
    /// kills it when dropped.
    pub fn spawn(&mut self, host: &Host, args: &[&str], log: &str) -> u32 {
        let log = std::fs::File::create(host.dir.join(log)).expect("log file");
        let err = log.try_clone().expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &host.ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: cannot start {args:?}: {e}", host.name));
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// Start `program` in the host's network namespace itself, no `ip
    /// netns exec` (and no fresh mount namespace) in between: for a daemon
    /// whose start is timed. Output goes to `log` in the host's directory.
    pub fn spawn_direct(
        &mut self,
        host: &Host,
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
        log: &str,
    ) -> u32 {
        let log = std::fs::File::create(host.dir.join(log)).expect("log file");
        let err = log.try_clone().expect("log file");
        let path = format!("/var/run/netns/{}", host.ns);
        let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        // A thread of its own enters the namespace (a network namespace
        // is per thread) and starts the program there: with no code to run
        // between fork and exec, std starts it with posix_spawn, whose cost
        // does not grow with the harness's memory and threads as a fork's
        // does (40 ms per agent at 1,000 nodes).
        let child = std::thread::scope(|s| {
            s.spawn(|| {
                let fd = std::os::fd::AsRawFd::as_raw_fd(&ns);
                // SAFETY: setns has no memory-safety preconditions; it
                // moves only this thread, which ends after the spawn.
                if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                cmd.spawn()
            })
            .join()
            .expect("the spawning thread")
        })
        .unwrap_or_else(|e| panic!("{}: cannot start {program}: {e}", host.name));
        drop(ns);
        let pid = child.id();
        // The usual priority, whatever the harness runs at: set once the
        // program runs (spawning returns after its exec), so a harness
        // ahead of its agents does not wait behind them for each exec.
        renice(pid, 0);
        self.children.push(child);
        pid
    }

    /// Wait for a child of the lab that was killed, and forget it.
    pub fn reap(&mut self, pid: u32) {
        if let Some(k) = self.children.iter().position(|c| c.id() == pid) {
            let mut child = self.children.swap_remove(k);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Remember a directory to remove when the lab goes.
    pub fn clean_up(&mut self, dir: PathBuf) {
        self.dirs.push(dir);
    }

    /// Kill every process started in the host's namespace (a crash, or a
    /// daemon stopped by its own command).
    pub fn kill_all_in(&self, host: &Host) {
        let pids = host_pids(&host.ns);
        for pid in pids {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }

    /// SIGKILL every process of this name in the host's namespace.
    pub fn kill_all_in_named(&self, host: &Host, name: &str) {
        for pid in host_pids(&host.ns) {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == name {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    /// Unplug the host from the bridge: its sessions see nothing more.
    pub fn cut(&self, host: &Host) {
        run(&[
            "ip",
            "-n",
            &self.switch,
            "link",
            "set",
            "dev",
            &host.port,
            "down",
        ]);
    }

    pub fn mend(&self, host: &Host) {
        run(&[
            "ip",
            "-n",
            &self.switch,
            "link",
            "set",
            "dev",
            &host.port,
            "up",
        ]);
    }

    /// The host's log files, for a failure message.
    pub fn logs(&self, host: &Host) -> String {
        let mut out = String::new();
        if let Ok(entries) = std::fs::read_dir(&host.dir) {
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "log") {
                    let text = std::fs::read_to_string(&p).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(30).collect();
                    out.push_str(&format!("--- {} ---\n", p.display()));
                    for l in tail.into_iter().rev() {
                        out.push_str(l);
                        out.push('\n');
                    }
                }
            }
        }
        out
    }
}

fn host_pids(ns: &str) -> Vec<i32> {
    let out = Command::new("ip").args(["netns", "pids", ns]).output();
    out.map(|o| {
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    })
    .unwrap_or_default()
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Daemons that fork (FRR) are found by namespace.
        for h in &self.hosts {
            self.kill_all_in(h);
        }
        for h in &self.hosts {
            let _ = Command::new("ip").args(["netns", "del", &h.ns]).status();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.switch])
            .status();
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Wait until `check` holds, polling; `false` if `limit` passed first.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A route as every adapter reports it from its own RIB.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    pub prefix: String,
    pub next_hop: String,
    pub as_path: Vec<u32>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    /// `ASN:VALUE`
    pub communities: Vec<String>,
    /// `A:B:C`
    pub large_communities: Vec<String>,
    pub originator_id: Option<String>,
    pub cluster_list: Vec<String>,
}

/// A prefix a speaker originates, with the attributes it sets on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    pub prefix: String,
    pub med: Option<u32>,
    pub communities: Vec<String>,
    pub large_communities: Vec<String>,
}

impl Advert {
    pub fn plain(prefix: &str) -> Advert {
        Advert {
            prefix: prefix.into(),
            med: None,
            communities: Vec::new(),
            large_communities: Vec::new(),
        }
    }

    pub fn tagged(prefix: &str, med: u32, community: &str, large: &str) -> Advert {
        Advert {
            prefix: prefix.into(),
            med: Some(med),
            communities: vec![community.into()],
            large_communities: vec![large.into()],
        }
    }
}

/// A session as one side configures it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    pub address: IpAddr,
    pub asn: u32,
    /// Wait for the other side to connect.
    pub passive: bool,
    pub password: Option<String>,
    pub rr_client: bool,
    /// GTSM (RFC 5082), one hop.
    pub gtsm: bool,
    /// Our source address for the session.
    pub source: Option<IpAddr>,
    /// eBGP TTL, for a peer that is more than one hop away.
    pub multihop: Option<u8>,
    /// ADD-PATH (RFC 7911): a route server sends the peer every path it
    /// has; any other speaker offers to receive them.
    pub add_path: bool,
    /// BFD on the session, with these timers.
    pub bfd: Option<BfdSpec>,
}

/// BFD timers as one side configures them (RFC 5880 §6.8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BfdSpec {
    /// Required Min RX Interval, milliseconds.
    pub min_rx: u32,
    /// Desired Min TX Interval, milliseconds.
    pub min_tx: u32,
    pub multiplier: u8,
}

impl PeerSpec {
    pub fn new(address: IpAddr, asn: u32) -> PeerSpec {
        PeerSpec {
            address,
            asn,
            passive: false,
            password: None,
            rr_client: false,
            gtsm: false,
            source: None,
            multihop: None,
            add_path: false,
            bfd: None,
        }
    }
}

/// What every adapter is given before it starts: where it runs, its AS,
/// its sessions and the prefixes it originates.
#[derive(Debug, Clone)]
pub struct Base {
    pub host: Host,
    pub asn: u32,
    pub peers: Vec<PeerSpec>,
    pub adverts: Vec<Advert>,
}

impl Base {
    pub fn new(host: &Host, asn: u32) -> Base {
        Base {
            host: host.clone(),
            asn,
            peers: Vec::new(),
            adverts: Vec::new(),
        }
    }
}

/// One BGP implementation in the lab, configured then started; each
/// adapter has the same methods (GoBGP's test/lib style).
pub trait Speaker {
    fn base(&self) -> &Base;
    fn base_mut(&mut self) -> &mut Base;

    fn host(&self) -> &Host {
        &self.base().host
    }

    fn asn(&self) -> u32 {
        self.base().asn
    }

    fn add_peer(&mut self, peer: PeerSpec) {
        self.base_mut().peers.push(peer);
    }

    fn advertise(&mut self, advert: Advert) {
        self.base_mut().adverts.push(advert);
    }
    fn start(&mut self, lab: &mut Lab);
    /// Whether the session with `peer` is Established.
    fn established(&self, peer: IpAddr) -> bool;
    /// The routes of a family in its RIB, best paths only, learned ones only.
    fn rib(&self, v6: bool) -> Vec<Route>;
    /// Shut the session with `peer` down the implementation's own way
    /// (a Cease / Administrative Shutdown on the wire).
    fn shutdown_peer(&self, peer: IpAddr);

    /// Wait (bounded) for the session with `peer` to be Established.
    fn wait_established(&self, lab: &Lab, peer: IpAddr) {
        let up = eventually(Duration::from_secs(30), || self.established(peer));
        assert!(
            up,
            "{}: no Established session with {peer} within 30 s\n{}",
            self.host().name,
            lab.logs(self.host())
        );
    }

    /// Wait (bounded) for `prefix` to be in its RIB, and return it.
    fn wait_route(&self, lab: &Lab, prefix: &str) -> Route {
        let v6 = prefix.contains(':');
        let mut found = None;
        let ok = eventually(Duration::from_secs(20), || {
            found = self.rib(v6).into_iter().find(|r| r.prefix == prefix);
            found.is_some()
        });
        assert!(
            ok,
            "{}: {prefix} never arrived\n{}",
            self.host().name,
            lab.logs(self.host())
        );
        found.unwrap_or_default()
    }

    /// Wait (bounded) for `prefix` to leave its RIB.
    fn wait_gone(&self, lab: &Lab, prefix: &str, limit: Duration) {
        let v6 = prefix.contains(':');
        let ok = eventually(limit, || self.rib(v6).iter().all(|r| r.prefix != prefix));
        assert!(
            ok,
            "{}: {prefix} still there after {limit:?}\n{}",
            self.host().name,
            lab.logs(self.host())
        );
    }
}
