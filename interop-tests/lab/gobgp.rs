//! The adapter for GoBGP (Debian's gobgpd): the daemon with its gRPC API on
//! the namespace's own loopback, looked at through `gobgp -j`.

use std::fmt::Write;
use std::net::IpAddr;

use serde_json::Value;

use super::{Base, Host, Lab, Route, Speaker};

pub struct Gobgp {
    base: Base,
}

impl Gobgp {
    pub fn new(host: &Host, asn: u32) -> Gobgp {
        Gobgp {
            base: Base::new(host, asn),
        }
    }

    pub fn gobgp(&self, args: &[&str]) -> String {
        let mut all = vec!["gobgp", "-u", "127.0.0.1", "-p", "50051"];
        all.extend_from_slice(args);
        self.base.host.text(&all)
    }

    fn config(&self) -> String {
        let mut c = String::new();
        let _ = writeln!(
            c,
            "[global.config]\n  as = {}\n  router-id = \"{}\"\n",
            self.base.asn, self.base.host.v4
        );
        for p in &self.base.peers {
            let family = if p.address.is_ipv6() {
                "ipv6-unicast"
            } else {
                "ipv4-unicast"
            };
            let _ = writeln!(
                c,
                "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{}\"\n    peer-as = {}",
                p.address, p.asn
            );
            if let Some(pw) = &p.password {
                let _ = writeln!(c, "    auth-password = \"{pw}\"");
            }
            let _ = writeln!(
                c,
                "  [neighbors.timers.config]\n    connect-retry = 1\n    hold-time = 9\n    keepalive-interval = 3"
            );
            let _ = writeln!(
                c,
                "  [neighbors.transport.config]\n    passive-mode = {}",
                p.passive
            );
            if p.rr_client {
                let _ = writeln!(
                    c,
                    "  [neighbors.route-reflector.config]\n    route-reflector-client = true\n    route-reflector-cluster-id = \"{}\"",
                    self.base.host.v4
                );
            }
            let _ = writeln!(
                c,
                "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{family}\"\n"
            );
        }
        c
    }
}

fn u32_of(v: &Value) -> Option<u32> {
    v.as_u64().and_then(|x| u32::try_from(x).ok())
}

/// A route from the JSON `gobgp global rib -j` prints for one path.
fn route(prefix: &str, path: &Value) -> Route {
    let mut r = Route {
        prefix: prefix.to_string(),
        ..Route::default()
    };
    for a in path["attrs"].as_array().into_iter().flatten() {
        match a["type"].as_u64() {
            Some(2) => {
                r.as_path = a["as_paths"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|s| s["asns"].as_array().cloned().unwrap_or_default())
                    .filter_map(|x| u32_of(&x))
                    .collect();
            }
            Some(3) => r.next_hop = a["nexthop"].as_str().unwrap_or("").to_string(),
            Some(4) => r.med = u32_of(&a["metric"]),
            Some(5) => r.local_pref = u32_of(&a["value"]),
            Some(8) => {
                r.communities = a["communities"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(u32_of)
                    .map(|c| format!("{}:{}", c >> 16, c & 0xffff))
                    .collect();
            }
            Some(9) => r.originator_id = a["value"].as_str().map(String::from),
            Some(10) => {
                r.cluster_list = a["value"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect();
            }
            Some(14) => r.next_hop = a["nexthop"].as_str().unwrap_or("").to_string(),
            Some(32) => {
                r.large_communities = a["value"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|l| format!("{}:{}:{}", l["ASN"], l["LocalData1"], l["LocalData2"]))
                    .collect();
            }
            _ => {}
        }
    }
    r
}

impl Speaker for Gobgp {
    fn base(&self) -> &Base {
        &self.base
    }

    fn base_mut(&mut self) -> &mut Base {
        &mut self.base
    }

    fn start(&mut self, lab: &mut Lab) {
        let conf = self.base.host.dir.join("gobgp.toml");
        std::fs::write(&conf, self.config()).expect("gobgp.toml");
        let conf = conf.to_string_lossy().into_owned();
        lab.spawn(
            &self.base.host,
            &[
                "gobgpd",
                "-f",
                &conf,
                "-t",
                "toml",
                "--api-hosts",
                "127.0.0.1:50051",
                "--pprof-disable",
            ],
            "gobgpd.log",
        );
        let ok = super::eventually(std::time::Duration::from_secs(10), || {
            self.gobgp(&["global"]).contains("AS:")
        });
        assert!(ok, "GoBGP did not start\n{}", lab.logs(&self.base.host));
        for a in &self.base.adverts {
            let family = if a.prefix.contains(':') {
                "ipv6"
            } else {
                "ipv4"
            };
            let mut args: Vec<String> = vec!["global", "rib", "add", "-a", family, &a.prefix]
                .into_iter()
                .map(String::from)
                .collect();
            if let Some(m) = a.med {
                args.extend(["med".into(), m.to_string()]);
            }
            if !a.communities.is_empty() {
                args.extend(["community".into(), a.communities.join(",")]);
            }
            if !a.large_communities.is_empty() {
                args.extend(["large-community".into(), a.large_communities.join(",")]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            self.gobgp(&args);
        }
    }

    fn shutdown_peer(&self, peer: IpAddr) {
        self.gobgp(&["neighbor", &peer.to_string(), "disable"]);
    }

    fn established(&self, peer: IpAddr) -> bool {
        let v: Value = serde_json::from_str(&self.gobgp(&["neighbor", &peer.to_string(), "-j"]))
            .unwrap_or(Value::Null);
        let state = &v["state"]["session_state"];
        state == "established" || state == 6
    }

    fn rib(&self, v6: bool) -> Vec<Route> {
        let family = if v6 { "ipv6" } else { "ipv4" };
        let v: Value = serde_json::from_str(&self.gobgp(&["global", "rib", "-a", family, "-j"]))
            .unwrap_or(Value::Null);
        let Some(table) = v.as_object() else {
            return Vec::new();
        };
        table
            .iter()
            .filter_map(|(prefix, paths)| {
                let best = paths.as_array()?.iter().find(|p| p["best"] == true)?;
                // GoBGP's own routes have no source peer.
                let learned = best["source-id"]
                    .as_str()
                    .is_some_and(|s| s != "<nil>" && s != "0.0.0.0")
                    || best["neighbor-ip"]
                        .as_str()
                        .is_some_and(|s| s != "<nil>" && !s.is_empty());
                learned.then(|| route(prefix, best))
            })
            .collect()
    }
}
