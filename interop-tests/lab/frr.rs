//! The adapter for FRR (Debian's frr): zebra and bgpd in the host's
//! namespace with a pathspace of their own, looked at through vtysh's JSON.

use std::fmt::Write;
use std::net::IpAddr;
use std::path::PathBuf;

use serde_json::Value;

use super::{Base, BfdSpec, Host, Lab, Route, Speaker};

pub struct Frr {
    base: Base,
    /// A route server: eBGP peers get routes with next hop and AS path
    /// as their first hop sent them (RFC 7947).
    pub route_server: bool,
}

impl Frr {
    /// Bring a session shut down with `shutdown_peer` back.
    pub fn undo_shutdown_peer(&self, peer: IpAddr) {
        self.neighbor_command(&format!("no neighbor {peer} shutdown"));
    }

    fn neighbor_command(&self, command: &str) {
        let router = format!("router bgp {}", self.base.asn);
        self.base.host.exec(&[
            "vtysh",
            "-N",
            &self.base.host.ns,
            "-c",
            "configure terminal",
            "-c",
            &router,
            "-c",
            command,
        ]);
    }

    pub fn new(host: &Host, asn: u32) -> Frr {
        Frr {
            base: Base::new(host, asn),
            route_server: false,
        }
    }

    pub fn vtysh(&self, command: &str) -> String {
        self.base
            .host
            .text(&["vtysh", "-N", &self.base.host.ns, "-c", command])
    }

    fn json(&self, command: &str) -> Value {
        serde_json::from_str(&self.vtysh(command)).unwrap_or(Value::Null)
    }

    fn config(&self) -> String {
        let mut c = String::new();
        let _ = writeln!(
            c,
            "frr defaults datacenter\nhostname {}\nlog file {}/frr.log\n!",
            self.base.host.name,
            self.base.host.dir.display()
        );
        // bfdd's timers: a profile for each set of them.
        let mut bfd: Vec<BfdSpec> = self.base.peers.iter().filter_map(|p| p.bfd).collect();
        bfd.sort_by_key(|b| (b.min_rx, b.min_tx, b.multiplier));
        bfd.dedup();
        if !bfd.is_empty() {
            let _ = writeln!(c, "bfd");
            for b in &bfd {
                let _ = writeln!(
                    c,
                    " profile {}\n  receive-interval {}\n  transmit-interval {}\n  detect-multiplier {}\n !",
                    bfd_profile(b),
                    b.min_rx,
                    b.min_tx,
                    b.multiplier
                );
            }
            let _ = writeln!(c, "!");
        }
        let _ = writeln!(c, "router bgp {}", self.base.asn);
        let _ = writeln!(c, " bgp router-id {}", self.base.host.v4);
        let _ = writeln!(c, " no bgp ebgp-requires-policy");
        let _ = writeln!(c, " no bgp network import-check");
        for p in &self.base.peers {
            let a = p.address;
            let _ = writeln!(c, " neighbor {a} remote-as {}", p.asn);
            let _ = writeln!(c, " neighbor {a} timers connect 1");
            if p.passive {
                let _ = writeln!(c, " neighbor {a} passive");
            }
            if let Some(pw) = &p.password {
                let _ = writeln!(c, " neighbor {a} password {pw}");
            }
            if p.gtsm {
                let _ = writeln!(c, " neighbor {a} ttl-security hops 1");
            }
            if let Some(src) = p.source {
                let _ = writeln!(c, " neighbor {a} update-source {src}");
            }
            if let Some(hops) = p.multihop {
                let _ = writeln!(c, " neighbor {a} ebgp-multihop {hops}");
            }
            if let Some(b) = p.bfd {
                let _ = writeln!(c, " neighbor {a} bfd");
                let _ = writeln!(c, " neighbor {a} bfd profile {}", bfd_profile(&b));
            }
        }
        for (af, v6) in [("ipv4", false), ("ipv6", true)] {
            let _ = writeln!(c, " address-family {af} unicast");
            // Equal paths of an anycast prefix all go into the kernel.
            let _ = writeln!(c, "  maximum-paths 8");
            for (i, a) in self.base.adverts.iter().enumerate() {
                if a.prefix.contains(':') == v6 {
                    let _ = writeln!(c, "  network {} route-map ADV{i}", a.prefix);
                }
            }
            for p in &self.base.peers {
                let same = p.address.is_ipv6() == v6;
                let verb = if same { "" } else { "no " };
                let _ = writeln!(c, "  {verb}neighbor {} activate", p.address);
                if same && p.rr_client {
                    let _ = writeln!(c, "  neighbor {} route-reflector-client", p.address);
                }
                if same && self.route_server && p.asn != self.base.asn {
                    let _ = writeln!(c, "  neighbor {} route-server-client", p.address);
                }
                if same && p.add_path {
                    let _ = writeln!(c, "  neighbor {} addpath-tx-all-paths", p.address);
                }
            }
            let _ = writeln!(c, " exit-address-family");
        }
        let _ = writeln!(c, "!");
        for (i, a) in self.base.adverts.iter().enumerate() {
            let _ = writeln!(c, "route-map ADV{i} permit 10");
            if let Some(m) = a.med {
                let _ = writeln!(c, " set metric {m}");
            }
            if !a.communities.is_empty() {
                let _ = writeln!(c, " set community {}", a.communities.join(" "));
            }
            if !a.large_communities.is_empty() {
                let _ = writeln!(c, " set large-community {}", a.large_communities.join(" "));
            }
            let _ = writeln!(c, "!");
        }
        c
    }
}

/// The name of the bfdd profile with these timers.
pub fn bfd_profile(b: &BfdSpec) -> String {
    format!("rx{}-tx{}-x{}", b.min_rx, b.min_tx, b.multiplier)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_str()
        .map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

impl Speaker for Frr {
    fn base(&self) -> &Base {
        &self.base
    }

    fn base_mut(&mut self) -> &mut Base {
        &mut self.base
    }

    fn start(&mut self, lab: &mut Lab) {
        // The daemons drop to the frr user: their files must be its.
        let run = PathBuf::from("/var/run/frr").join(&self.base.host.ns);
        std::fs::create_dir_all(&run).expect("frr run directory");
        lab.clean_up(run.clone());
        let conf = self.base.host.dir.join("frr.conf");
        std::fs::write(&conf, self.config()).expect("frr.conf");
        for path in [&run, &self.base.host.dir] {
            let _ = std::process::Command::new("chown")
                .args(["-R", "frr:frr"])
                .arg(path)
                .status();
        }
        let conf = conf.to_string_lossy().into_owned();
        let bfdd = self.base.peers.iter().any(|p| p.bfd.is_some());
        let daemons: &[&str] = if bfdd {
            &["zebra", "bfdd", "bgpd"]
        } else {
            &["zebra", "bgpd"]
        };
        for daemon in daemons {
            let bin = format!("/usr/lib/frr/{daemon}");
            let out = self
                .base
                .host
                .exec(&[&bin, "-d", "-N", &self.base.host.ns, "-f", &conf]);
            assert!(out.status.success(), "{daemon}: {out:?}");
        }
        let ok = super::eventually(std::time::Duration::from_secs(10), || {
            self.vtysh("show bgp summary")
                .contains("BGP router identifier")
        });
        assert!(ok, "FRR did not start\n{}", lab.logs(&self.base.host));
    }

    fn shutdown_peer(&self, peer: IpAddr) {
        self.neighbor_command(&format!("neighbor {peer} shutdown"));
    }

    fn established(&self, peer: IpAddr) -> bool {
        let v = self.json(&format!("show bgp neighbors {peer} json"));
        v[peer.to_string()]["bgpState"] == "Established"
    }

    fn rib(&self, v6: bool) -> Vec<Route> {
        let af = if v6 { "ipv6" } else { "ipv4" };
        let table = self.json(&format!("show bgp {af} unicast json"));
        let Some(routes) = table["routes"].as_object() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for prefix in routes.keys() {
            let detail = self.json(&format!("show bgp {af} unicast {prefix} json"));
            let Some(paths) = detail["paths"].as_array() else {
                continue;
            };
            let Some(best) = paths.iter().find(|p| p["bestpath"]["overall"] == true) else {
                continue;
            };
            // Routes FRR originates itself are not what the tests look for.
            if best["peer"]["peerId"]
                .as_str()
                .is_none_or(|p| p == "0.0.0.0")
            {
                continue;
            }
            out.push(Route {
                prefix: prefix.clone(),
                next_hop: best["nexthops"][0]["ip"].as_str().unwrap_or("").to_string(),
                as_path: best["aspath"]["string"]
                    .as_str()
                    .unwrap_or("")
                    .split_whitespace()
                    .filter_map(|a| a.parse().ok())
                    .collect(),
                med: best["metric"].as_u64().map(|m| m as u32),
                local_pref: best["locPrf"].as_u64().map(|m| m as u32),
                communities: strings(&best["community"]["string"]),
                large_communities: strings(&best["largeCommunity"]["string"]),
                originator_id: best["originatorId"].as_str().map(String::from),
                cluster_list: best["clusterList"]["list"]
                    .as_array()
                    .map(|l| {
                        l.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        }
        out
    }
}
