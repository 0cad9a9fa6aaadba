//! The adapter for BIRD 2 (Debian's bird2): one daemon in the host's
//! namespace with its own control socket, looked at through birdc.

use std::fmt::Write;
use std::net::IpAddr;

use super::{Advert, Base, Host, Lab, Route, Speaker};

pub struct Bird {
    base: Base,
    /// Install what BGP learns into the kernel.
    pub kernel: bool,
    /// Compare MED within each neighbouring AS's paths first, as podbgp
    /// does, rather than pairwise in arrival order (BIRD's default).
    pub deterministic_med: bool,
}

impl Bird {
    pub fn new(host: &Host, asn: u32) -> Bird {
        Bird {
            base: Base::new(host, asn),
            kernel: false,
            deterministic_med: false,
        }
    }

    fn socket(&self) -> String {
        self.base
            .host
            .dir
            .join("bird.ctl")
            .to_string_lossy()
            .into_owned()
    }

    pub fn birdc(&self, args: &[&str]) -> String {
        let socket = self.socket();
        let mut all = vec!["birdc", "-s", socket.as_str()];
        all.extend_from_slice(args);
        self.base.host.text(&all)
    }

    /// The protocol name of the session with `peer`.
    fn protocol(&self, peer: IpAddr) -> Option<String> {
        self.base
            .peers
            .iter()
            .position(|p| p.address == peer)
            .map(|i| format!("peer{i}"))
    }

    fn config(&self) -> String {
        let mut c = String::new();
        let _ = writeln!(c, "router id {};", self.base.host.v4);
        let _ = writeln!(c, "log \"{}/bird.log\" all;", self.base.host.dir.display());
        let _ = writeln!(c, "protocol device {{ }}");
        for (v6, table) in [(false, "ipv4"), (true, "ipv6")] {
            let routes: Vec<&Advert> = self
                .base
                .adverts
                .iter()
                .filter(|a| a.prefix.contains(':') == v6)
                .collect();
            if routes.is_empty() {
                continue;
            }
            let _ = writeln!(c, "protocol static static_{table} {{\n  {table};");
            for a in routes {
                let _ = writeln!(c, "  route {} blackhole;", a.prefix);
            }
            let _ = writeln!(c, "}}");
        }
        if self.kernel {
            let _ = writeln!(
                c,
                "protocol kernel {{ ipv4 {{ import none; export where source = RTS_BGP; }}; merge paths on; }}"
            );
        }
        // BFD, with the timers of the first peer that asks for it.
        if let Some(b) = self.base.peers.iter().find_map(|p| p.bfd) {
            let _ = writeln!(
                c,
                "protocol bfd {{ interface \"*\" {{ min rx interval {} ms; min tx interval {} ms; multiplier {}; }}; }}",
                b.min_rx, b.min_tx, b.multiplier
            );
        }
        // Attributes of our own routes, set on the way out.
        let _ = writeln!(c, "filter tag_own {{");
        for a in &self.base.adverts {
            let _ = writeln!(c, "  if net = {} then {{", a.prefix);
            if let Some(m) = a.med {
                let _ = writeln!(c, "    bgp_med = {m};");
            }
            for com in &a.communities {
                let (x, y) = com.split_once(':').unwrap_or(("0", "0"));
                let _ = writeln!(c, "    bgp_community.add(({x},{y}));");
            }
            for l in &a.large_communities {
                let parts: Vec<&str> = l.split(':').collect();
                let _ = writeln!(c, "    bgp_large_community.add(({}));", parts.join(","));
            }
            let _ = writeln!(c, "  }}");
        }
        let _ = writeln!(c, "  accept;\n}}");
        for (i, p) in self.base.peers.iter().enumerate() {
            let table = if p.address.is_ipv6() { "ipv6" } else { "ipv4" };
            let _ = writeln!(c, "protocol bgp peer{i} {{");
            let _ = writeln!(c, "  local as {};", self.base.asn);
            let _ = writeln!(c, "  neighbor {} as {};", p.address, p.asn);
            let _ = writeln!(c, "  hold time 9; keepalive time 3; connect retry time 1;");
            // iBGP peers here share the subnet: their next hops are direct.
            let _ = writeln!(c, "  direct;");
            if p.passive {
                let _ = writeln!(c, "  passive on;");
            }
            if let Some(pw) = &p.password {
                let _ = writeln!(c, "  password \"{pw}\";");
            }
            if p.rr_client {
                let _ = writeln!(c, "  rr client;");
            }
            if self.deterministic_med {
                let _ = writeln!(c, "  deterministic med on;");
            }
            if p.bfd.is_some() {
                // And once BFD failed, take the session back within a
                // second, not after the minute BIRD waits by default.
                let _ = writeln!(c, "  bfd on;\n  error wait time 1, 5;");
            }
            // Every path the peer sends, so an anycast prefix keeps them all.
            let add_paths = if p.add_path { " add paths rx;" } else { "" };
            let _ = writeln!(
                c,
                "  {table} {{ import all; export filter tag_own;{add_paths} }};\n}}"
            );
        }
        c
    }
}

impl Speaker for Bird {
    fn base(&self) -> &Base {
        &self.base
    }

    fn base_mut(&mut self) -> &mut Base {
        &mut self.base
    }

    fn start(&mut self, lab: &mut Lab) {
        let conf = self.base.host.dir.join("bird.conf");
        std::fs::write(&conf, self.config()).expect("bird.conf");
        let conf = conf.to_string_lossy().into_owned();
        let pid = self.base.host.dir.join("bird.pid");
        let socket = self.socket();
        lab.spawn(
            &self.base.host,
            &[
                "bird",
                "-f",
                "-c",
                &conf,
                "-s",
                &socket,
                "-P",
                &pid.to_string_lossy(),
            ],
            "bird-stdout.log",
        );
        let ok = super::eventually(std::time::Duration::from_secs(10), || {
            self.birdc(&["show", "status"]).contains("Daemon is up")
        });
        assert!(ok, "BIRD did not start\n{}", lab.logs(&self.base.host));
    }

    fn shutdown_peer(&self, peer: IpAddr) {
        if let Some(name) = self.protocol(peer) {
            self.birdc(&["disable", &name]);
        }
    }

    fn established(&self, peer: IpAddr) -> bool {
        self.protocol(peer).is_some_and(|name| {
            self.birdc(&["show", "protocols", &name])
                .lines()
                .any(|l| l.starts_with(&name) && l.contains("Established"))
        })
    }

    fn rib(&self, v6: bool) -> Vec<Route> {
        let table = if v6 { "master6" } else { "master4" };
        parse_routes(&self.birdc(&["show", "route", "all", "table", table, "primary"]))
    }
}

/// BGP routes from `show route all` output (best paths only, as asked
/// with `primary`).
fn parse_routes(text: &str) -> Vec<Route> {
    let mut out = Vec::new();
    let mut current: Option<Route> = None;
    let mut bgp = false;
    let mut prefix = String::new();
    let finish = |r: Option<Route>, bgp: bool, out: &mut Vec<Route>| {
        if let Some(r) = r.filter(|_| bgp) {
            out.push(r);
        }
    };
    for line in text.lines() {
        let header =
            line.contains(" [") && (line.contains("unicast") || line.contains("blackhole"));
        if header {
            finish(current.take(), bgp, &mut out);
            bgp = false;
            if !line.starts_with(char::is_whitespace) {
                prefix = line.split_whitespace().next().unwrap_or("").to_string();
            }
            current = Some(Route {
                prefix: prefix.clone(),
                ..Route::default()
            });
            continue;
        }
        let Some(r) = current.as_mut() else { continue };
        let line = line.trim();
        if line.starts_with("Type: BGP") {
            bgp = true;
        } else if let Some(v) = line.strip_prefix("BGP.as_path:") {
            r.as_path = v
                .split_whitespace()
                .filter_map(|a| a.parse().ok())
                .collect();
        } else if let Some(v) = line.strip_prefix("BGP.next_hop:") {
            r.next_hop = v.split_whitespace().next().unwrap_or("").to_string();
        } else if let Some(v) = line.strip_prefix("BGP.med:") {
            r.med = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("BGP.local_pref:") {
            r.local_pref = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("BGP.community:") {
            // (65000,1) (65000,2)
            r.communities = v
                .split(')')
                .filter_map(|x| {
                    let x = x.trim().trim_start_matches('(');
                    let (a, b) = x.split_once(',')?;
                    Some(format!("{}:{}", a.trim(), b.trim()))
                })
                .collect();
        } else if let Some(v) = line.strip_prefix("BGP.large_community:") {
            // (1, 2, 3)
            r.large_communities = v
                .split(')')
                .filter_map(|x| {
                    let x = x.trim().trim_start_matches('(');
                    let parts: Vec<&str> = x.split(',').map(str::trim).collect();
                    (parts.len() == 3).then(|| parts.join(":"))
                })
                .collect();
        } else if let Some(v) = line.strip_prefix("BGP.originator_id:") {
            r.originator_id = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("BGP.cluster_list:") {
            r.cluster_list = v.split_whitespace().map(String::from).collect();
        }
    }
    finish(current.take(), bgp, &mut out);
    out
}
