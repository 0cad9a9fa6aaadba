//! The configuration file: read with the `config` crate (TOML or YAML by
//! extension, `PODBGP__SECTION__KEY` overrides), then checked key by key
//! before anything starts. Every error is one line naming the key.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

mod bfd;
mod bmp;
mod mrt;
pub use bfd::Bfd;
pub use bmp::Bmp;
pub use mrt::Mrt;

/// A configuration that cannot be used, with the key at fault.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

fn bad(key: &str, value: impl std::fmt::Display, why: &str) -> SettingsError {
    SettingsError(format!("{key} = {value}: {why}"))
}

/// Everything the daemon runs with, checked.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub global: Global,
    #[serde(default)]
    pub api: Api,
    #[serde(default)]
    pub metrics: Metrics,
    #[serde(default, rename = "neighbor")]
    pub neighbors: Vec<Neighbor>,
    #[serde(default)]
    pub fib: Fib,
    #[serde(default)]
    pub snat: Snat,
    #[serde(default)]
    pub kubernetes: Kubernetes,
    #[serde(default)]
    pub log: Log,
    /// BMP collectors to report to.
    #[serde(default)]
    pub bmp: Vec<Bmp>,
    #[serde(default)]
    pub mrt: Mrt,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Global {
    pub asn: u32,
    /// Defaults to the first IPv4 address of the machine.
    #[serde(default)]
    pub router_id: Option<Ipv4Addr>,
    #[serde(default = "default_port")]
    pub listen_port: u16,
    /// Where to accept BGP connections; empty: no listening at all.
    #[serde(default = "default_listen_addresses")]
    pub listen_addresses: Vec<IpAddr>,
    /// Prefixes this speaker originates.
    #[serde(default)]
    pub advertise: Vec<IpNet>,
    /// The cluster id when reflecting routes; the router id by default.
    #[serde(default)]
    pub cluster_id: Option<Ipv4Addr>,
    #[serde(default)]
    pub graceful_restart: GracefulRestart,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GracefulRestart {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Seconds peers keep our routes while we restart (at most 4095).
    #[serde(default = "default_restart_time")]
    pub restart_time: u16,
    /// Seconds we keep a restarting peer's routes waiting for its End-of-RIB.
    #[serde(default = "default_stale_time")]
    pub stale_time: u32,
    /// Seconds at most a restart holds back the first route selection.
    #[serde(default = "default_deferral")]
    pub selection_deferral: u32,
    /// Offer graceful restart for NOTIFICATIONs too (the N-bit, RFC 8538).
    /// Off by default: a peer whose hold timer expires on us (a node cut
    /// off) would then keep our routes for `restart_time` instead of
    /// dropping them at once.
    #[serde(default)]
    pub notification: bool,
}

impl Default for GracefulRestart {
    fn default() -> Self {
        GracefulRestart {
            enabled: true,
            restart_time: default_restart_time(),
            stale_time: default_stale_time(),
            selection_deferral: default_deferral(),
            notification: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Api {
    /// `HOST:PORT` on loopback, or `unix:PATH`.
    #[serde(default = "default_api")]
    pub listen: String,
}

impl Default for Api {
    fn default() -> Self {
        Api {
            listen: default_api(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// Empty: no metrics server.
    #[serde(default = "default_metrics")]
    pub listen: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            listen: default_metrics(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Neighbor {
    pub address: IpAddr,
    pub asn: u32,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub passive: bool,
    /// Start the session with the daemon; `false` leaves it Idle(Admin).
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_hold")]
    pub hold_time: u16,
    /// Seconds between connection attempts.
    #[serde(default = "default_connect_retry")]
    pub connect_retry: u16,
    /// The peer's BGP port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// TCP MD5 signature (RFC 2385), at most 80 bytes.
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub local_address: Option<IpAddr>,
    #[serde(default)]
    pub local_port: Option<u16>,
    /// eBGP TTL: 1 for directly connected peers.
    #[serde(default)]
    pub multihop: Option<u8>,
    /// GTSM (RFC 5082): send with TTL 255, accept only from within `multihop` hops.
    #[serde(default)]
    pub ttl_security: bool,
    #[serde(default)]
    pub route_reflector_client: bool,
    #[serde(default)]
    pub next_hop_self: bool,
    /// The most prefixes of one family the peer may send (RFC 4486).
    #[serde(default)]
    pub max_prefixes: Option<u32>,
    /// Prefixes accepted from the peer, `PREFIX [ge N] [le N]`; empty: all.
    #[serde(default)]
    pub import: Vec<String>,
    /// MinRouteAdvertisementInterval, seconds.
    #[serde(default)]
    pub mrai: u16,
    /// `ipv4`, `ipv6`.
    #[serde(default = "default_families")]
    pub families: Vec<String>,
    /// Offer to receive several paths per prefix (ADD-PATH, RFC 7911): a
    /// route server that sends them all gives every node of an anycast
    /// prefix as a next hop (multipath).
    #[serde(default)]
    pub add_path_receive: bool,
    /// BFD for this session (off unless enabled).
    #[serde(default = "Bfd::off")]
    pub bfd: Bfd,
}

impl Neighbor {
    /// A peer with every other key at its default (Kubernetes' mesh).
    pub fn new(address: IpAddr, asn: u32) -> Neighbor {
        Neighbor {
            address,
            asn,
            description: None,
            passive: false,
            enabled: true,
            hold_time: default_hold(),
            connect_retry: default_connect_retry(),
            port: default_port(),
            password: None,
            local_address: None,
            local_port: None,
            multihop: None,
            ttl_security: false,
            route_reflector_client: false,
            next_hop_self: false,
            max_prefixes: None,
            import: Vec::new(),
            mrai: 0,
            families: default_families(),
            add_path_receive: false,
            bfd: Bfd::off(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Fib {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_table")]
    pub table: u32,
    #[serde(default = "default_protocol")]
    pub protocol: u8,
    #[serde(default = "default_accept")]
    pub accept: Vec<IpNet>,
    /// Routes name nexthop objects where the kernel has them (Linux 5.3).
    #[serde(default = "yes")]
    pub nexthop_objects: bool,
}

impl Default for Fib {
    fn default() -> Self {
        Fib {
            enabled: true,
            table: default_table(),
            protocol: default_protocol(),
            accept: default_accept(),
            nexthop_objects: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Snat {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub no_masquerade: Vec<IpNet>,
}

impl Default for Snat {
    fn default() -> Self {
        Snat {
            enabled: true,
            no_masquerade: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Kubernetes {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default = "yes")]
    pub mesh: bool,
    #[serde(default = "yes")]
    pub cni: bool,
    #[serde(default = "default_cni_dir")]
    pub cni_dir: PathBuf,
    /// Hold time of the mesh sessions: how soon a node cut off is noticed.
    #[serde(default = "default_mesh_hold")]
    pub hold_time: u16,
    /// The cluster's service ranges, in place of its ServiceCIDR objects
    /// (and for API servers that have none, before Kubernetes 1.33).
    #[serde(default)]
    pub service_cidrs: Vec<IpNet>,
    /// Advertise the service ranges from every node (anycast).
    #[serde(default = "yes")]
    pub advertise_service_ranges: bool,
    /// Advertise each Service's `spec.externalIPs`. Off by default: any user
    /// who may create a Service can write any address there.
    #[serde(default)]
    pub advertise_external_ips: bool,
    /// Advertise each Service's `status.loadBalancer.ingress[].ip`.
    #[serde(default = "yes")]
    pub advertise_load_balancer_ips: bool,
    /// Advertise the ClusterIPs of `internalTrafficPolicy: Local` Services
    /// from the nodes holding a ready endpoint.
    #[serde(default = "yes")]
    pub advertise_local_cluster_ips: bool,
    /// Communities (`ASN:VALUE`, `no-export`, `no-advertise`) on service routes.
    #[serde(default)]
    pub service_communities: Vec<String>,
    /// Large communities (`A:B:C`) on service routes.
    #[serde(default)]
    pub service_large_communities: Vec<String>,
    /// BFD on the mesh sessions: on by default (every node runs podbgp,
    /// and a peer that does not answer BFD never brings its session Up,
    /// so it never takes BGP down either).
    #[serde(default = "Bfd::on")]
    pub bfd: Bfd,
}

impl Default for Kubernetes {
    fn default() -> Self {
        Kubernetes {
            enabled: false,
            mesh: true,
            cni: true,
            cni_dir: default_cni_dir(),
            hold_time: default_mesh_hold(),
            service_cidrs: Vec::new(),
            advertise_service_ranges: true,
            advertise_external_ips: false,
            advertise_load_balancer_ips: true,
            advertise_local_cluster_ips: true,
            service_communities: Vec::new(),
            service_large_communities: Vec::new(),
            bfd: Bfd::on(),
        }
    }
}

/// Nodes share one network: FRR's datacenter profile's 9 s (keepalive 3 s).
fn default_mesh_hold() -> u16 {
    9
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Log {
    /// `text` (the default) or `json`.
    #[serde(default)]
    pub format: Option<String>,
    /// A tracing filter such as `info` or `agent=debug`.
    #[serde(default)]
    pub level: Option<String>,
}

fn yes() -> bool {
    true
}
fn default_port() -> u16 {
    179
}
fn default_listen_addresses() -> Vec<IpAddr> {
    vec![
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    ]
}
fn default_restart_time() -> u16 {
    120
}
fn default_stale_time() -> u32 {
    360
}
fn default_deferral() -> u32 {
    360
}
fn default_api() -> String {
    "127.0.0.1:7179".into()
}
fn default_metrics() -> String {
    "0.0.0.0:9179".into()
}
fn default_hold() -> u16 {
    90
}
fn default_connect_retry() -> u16 {
    5
}
fn default_families() -> Vec<String> {
    vec!["ipv4".into(), "ipv6".into()]
}
fn default_table() -> u32 {
    254
}
fn default_protocol() -> u8 {
    200
}
fn default_accept() -> Vec<IpNet> {
    ["10.0.0.0/8", "fd00::/8"]
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect()
}
fn default_cni_dir() -> PathBuf {
    PathBuf::from("/etc/cni/net.d")
}

/// Where the control API listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiListen {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl Settings {
    /// Read `path` (TOML or YAML by its extension) with the environment's
    /// `PODBGP__SECTION__KEY` overrides, and check it.
    pub fn load(path: &Path) -> Result<Settings, SettingsError> {
        Self::load_with_env(path, std::env::vars())
    }

    /// As [`Settings::load`], with the environment given (for tests).
    pub fn load_with_env(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, SettingsError> {
        let format = match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => config::FileFormat::Toml,
            Some("yaml" | "yml") => config::FileFormat::Yaml,
            _ => {
                return Err(SettingsError(format!(
                    "{}: the configuration file must end in .toml, .yaml or .yml",
                    path.display()
                )))
            }
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| SettingsError(format!("{}: {e}", path.display())))?;
        let env: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("PODBGP__"))
            .collect();
        let overrides = config::Environment::with_prefix("PODBGP")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("global.advertise")
            .with_list_parse_key("global.listen_addresses")
            .with_list_parse_key("fib.accept")
            .with_list_parse_key("snat.no_masquerade")
            .with_list_parse_key("kubernetes.service_cidrs")
            .with_list_parse_key("kubernetes.service_communities")
            .with_list_parse_key("kubernetes.service_large_communities")
            .source(Some(env));
        let raw = config::Config::builder()
            .add_source(config::File::from_str(&text, format))
            .add_source(overrides)
            .build()
            .map_err(|e| SettingsError(format!("{}: {}", path.display(), one_line(&e))))?;
        // serde_path_to_error names the key even where the value's own
        // parser (an address, a prefix) does not.
        let settings: Settings = serde_path_to_error::deserialize(raw).map_err(|e| {
            let key = e.path().to_string();
            let why = one_line(e.inner());
            if key.is_empty() || key == "." {
                SettingsError(format!("{}: {why}", path.display()))
            } else {
                SettingsError(format!("{}: {key}: {why}", path.display()))
            }
        })?;
        settings.check()?;
        Ok(settings)
    }

    /// The checks serde cannot make.
    pub fn check(&self) -> Result<(), SettingsError> {
        let g = &self.global;
        if g.asn == 0 {
            return Err(bad("global.asn", g.asn, "AS 0 is reserved (RFC 7607)"));
        }
        if g.router_id.is_some_and(|id| id.is_unspecified()) {
            return Err(bad("global.router_id", "0.0.0.0", "must not be 0.0.0.0"));
        }
        if g.listen_port == 0 {
            return Err(bad("global.listen_port", 0, "must be a port number"));
        }
        if g.graceful_restart.restart_time > 4095 {
            return Err(bad(
                "global.graceful_restart.restart_time",
                g.graceful_restart.restart_time,
                "at most 4095 seconds (RFC 4724)",
            ));
        }
        self.api_listen()?;
        if !self.metrics.listen.is_empty() {
            self.metrics
                .listen
                .parse::<SocketAddr>()
                .map_err(|_| bad("metrics.listen", &self.metrics.listen, "expected HOST:PORT"))?;
        }
        let hold = self.kubernetes.hold_time;
        if hold != 0 && hold < 3 {
            return Err(bad(
                "kubernetes.hold_time",
                hold,
                "must be 0 or at least 3 seconds (RFC 4271 §4.2)",
            ));
        }
        self.check_kubernetes()?;
        self.mrt.check()?;
        for (i, b) in self.bmp.iter().enumerate() {
            b.check(i)?;
            if self.bmp[..i]
                .iter()
                .any(|o| (o.address, o.port) == (b.address, b.port))
            {
                return Err(bad(
                    &format!("bmp[{i}].address"),
                    b.address,
                    "this collector is listed twice",
                ));
            }
        }
        let mut seen = Vec::new();
        for (i, n) in self.neighbors.iter().enumerate() {
            let key = |k: &str| format!("neighbor[{i}].{k}");
            if seen.contains(&n.address) {
                return Err(bad(&key("address"), n.address, "configured twice"));
            }
            seen.push(n.address);
            if n.address.is_unspecified() || n.address.is_multicast() {
                return Err(bad(&key("address"), n.address, "not a peer address"));
            }
            if n.asn == 0 {
                return Err(bad(&key("asn"), n.asn, "AS 0 is reserved (RFC 7607)"));
            }
            if n.hold_time != 0 && n.hold_time < 3 {
                return Err(bad(
                    &key("hold_time"),
                    n.hold_time,
                    "must be 0 or at least 3 seconds (RFC 4271 §4.2)",
                ));
            }
            if n.connect_retry == 0 {
                return Err(bad(&key("connect_retry"), 0, "must be at least 1 second"));
            }
            if n.port == 0 {
                return Err(bad(&key("port"), 0, "must be a port number"));
            }
            if let Some(p) = &n.password {
                if p.is_empty() || p.len() > 80 {
                    return Err(bad(&key("password"), "(hidden)", "must be 1 to 80 bytes"));
                }
            }
            if let Some(local) = n.local_address {
                if local.is_ipv4() != n.address.is_ipv4() {
                    return Err(bad(
                        &key("local_address"),
                        local,
                        "must be of the same family as the address",
                    ));
                }
            }
            let family_all_gtsm = self
                .neighbors
                .iter()
                .filter(|m| m.address.is_ipv4() == n.address.is_ipv4())
                .all(|m| m.ttl_security);
            if n.ttl_security && n.passive && !family_all_gtsm {
                return Err(bad(
                    &key("passive"),
                    true,
                    "a ttl_security peer can only wait for the other side when every peer of its family uses ttl_security (the listener checks TTLs for all of them)",
                ));
            }
            if n.multihop == Some(0) {
                return Err(bad(&key("multihop"), 0, "must be 1 to 255"));
            }
            for (j, rule) in n.import.iter().enumerate() {
                parse_rule(rule)
                    .map_err(|why| bad(&format!("{}[{j}]", key("import")), rule, &why))?;
            }
            n.bfd.check(&key("bfd"))?;
            if n.families.is_empty() {
                return Err(bad(&key("families"), "[]", "needs ipv4, ipv6 or both"));
            }
            for f in &n.families {
                if f != "ipv4" && f != "ipv6" {
                    return Err(bad(&key("families"), f, "expected ipv4 or ipv6"));
                }
            }
        }
        if self.fib.table == 0 {
            return Err(bad("fib.table", 0, "table 0 is not a routing table"));
        }
        if matches!(self.fib.protocol, 0..=4) {
            return Err(bad(
                "fib.protocol",
                self.fib.protocol,
                "0 to 4 belong to the kernel; use a number of podbgp's own such as 200",
            ));
        }
        if let Some(f) = &self.log.format {
            if f != "text" && f != "json" {
                return Err(bad("log.format", f, "expected text or json"));
            }
        }
        Ok(())
    }

    fn check_kubernetes(&self) -> Result<(), SettingsError> {
        let k = &self.kubernetes;
        k.bfd.check("kubernetes.bfd")?;
        for (i, c) in k.service_cidrs.iter().enumerate() {
            if c.trunc() != *c {
                let key = format!("kubernetes.service_cidrs[{i}]");
                return Err(bad(
                    &key,
                    c,
                    &format!("host bits set; did you mean {}?", c.trunc()),
                ));
            }
        }
        for fam in [true, false] {
            if k.service_cidrs
                .iter()
                .filter(|c| c.addr().is_ipv4() == fam)
                .count()
                > 1
            {
                return Err(bad(
                    "kubernetes.service_cidrs",
                    format!(
                        "{:?}",
                        k.service_cidrs
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                    ),
                    "at most one range per family, as a cluster has",
                ));
            }
        }
        for (i, c) in k.service_communities.iter().enumerate() {
            if c.parse::<bgp::wire::Community>().is_err() {
                let key = format!("kubernetes.service_communities[{i}]");
                return Err(bad(
                    &key,
                    c,
                    "expected ASN:VALUE, no-export or no-advertise",
                ));
            }
        }
        for (i, c) in k.service_large_communities.iter().enumerate() {
            if c.parse::<bgp::wire::LargeCommunity>().is_err() {
                let key = format!("kubernetes.service_large_communities[{i}]");
                return Err(bad(&key, c, "expected A:B:C"));
            }
        }
        Ok(())
    }

    /// `api.listen`, checked: loopback or a unix socket, nothing else.
    pub fn api_listen(&self) -> Result<ApiListen, SettingsError> {
        let s = &self.api.listen;
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(bad("api.listen", s, "expected unix:PATH"));
            }
            return Ok(ApiListen::Unix(PathBuf::from(path)));
        }
        let addr: SocketAddr = s.parse().map_err(|_| {
            bad(
                "api.listen",
                s,
                "expected 127.0.0.1:PORT, [::1]:PORT or unix:PATH",
            )
        })?;
        if !addr.ip().is_loopback() {
            return Err(bad(
                "api.listen",
                s,
                "the control API listens on loopback or a unix socket only",
            ));
        }
        Ok(ApiListen::Tcp(addr))
    }
}

/// A prefix-list rule as written in `import`: `PREFIX [ge N] [le N]`.
pub fn parse_rule(text: &str) -> Result<bgp::policy::PrefixRule, String> {
    let mut words = text.split_whitespace();
    let prefix: IpNet = words
        .next()
        .ok_or("empty rule")?
        .parse()
        .map_err(|_| "expected a prefix such as 10.244.0.0/16".to_string())?;
    if prefix.trunc() != prefix {
        return Err(format!("host bits set; did you mean {}?", prefix.trunc()));
    }
    let (mut ge, mut le) = (None, None);
    while let Some(word) = words.next() {
        let value: u8 = words
            .next()
            .and_then(|v| v.parse().ok())
            .filter(|v| *v <= prefix.max_prefix_len() && *v >= prefix.prefix_len())
            .ok_or_else(|| {
                format!(
                    "{word} needs a length from {} to {}",
                    prefix.prefix_len(),
                    prefix.max_prefix_len()
                )
            })?;
        match word {
            "ge" => ge = Some(value),
            "le" => le = Some(value),
            _ => return Err(format!("unknown word {word}; expected ge or le")),
        }
    }
    if let (Some(g), Some(l)) = (ge, le) {
        if g > l {
            return Err("ge is greater than le".into());
        }
    }
    Ok(bgp::policy::PrefixRule {
        prefix,
        ge,
        le,
        verdict: bgp::policy::Verdict::Permit,
    })
}

/// Errors from the `config` crate on one line.
/// An error on one line: the TOML parser's own spreads a caret diagram
/// over several.
fn one_line(e: &config::ConfigError) -> String {
    let text = e.to_string();
    let parts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.chars().all(|c| matches!(c, '|' | '^' | ' ')))
        .collect();
    parts.join(" ")
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
