//! `[[bmp]]`: the BMP collectors (RFC 7854) the daemon reports to.

use std::net::IpAddr;

use serde::Deserialize;

use super::{bad, SettingsError};

/// What `route_monitoring` may name.
const TABLES: [&str; 3] = ["pre-policy", "post-policy", "loc-rib"];

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Bmp {
    /// The collector; the daemon connects to it.
    pub address: IpAddr,
    #[serde(default = "default_port")]
    pub port: u16,
    /// The tables sent: `pre-policy` and `post-policy` (each peer's
    /// routes before and after import checks), `loc-rib` (the best
    /// routes, RFC 9069).
    #[serde(default = "default_monitoring")]
    pub route_monitoring: Vec<String>,
    /// Seconds between Statistics Reports; 0 sends none.
    #[serde(default = "default_statistics")]
    pub statistics_interval: u32,
    /// MiB the collector may fall behind before its session is given up
    /// (and started again with a fresh dump).
    #[serde(default = "default_queue")]
    pub queue_limit_mb: u32,
}

fn default_port() -> u16 {
    11019
}

fn default_monitoring() -> Vec<String> {
    vec!["pre-policy".into()]
}

fn default_statistics() -> u32 {
    60
}

fn default_queue() -> u32 {
    64
}

impl Bmp {
    pub fn check(&self, i: usize) -> Result<(), SettingsError> {
        let key = |k: &str| format!("bmp[{i}].{k}");
        if self.port == 0 {
            return Err(bad(&key("port"), 0, "expected a port from 1 to 65535"));
        }
        if self.route_monitoring.is_empty() {
            return Err(bad(
                &key("route_monitoring"),
                "[]",
                "expected one or more of pre-policy, post-policy, loc-rib",
            ));
        }
        if let Some(m) = self
            .route_monitoring
            .iter()
            .find(|m| !TABLES.contains(&m.as_str()))
        {
            return Err(bad(
                &key("route_monitoring"),
                m,
                "expected pre-policy, post-policy or loc-rib",
            ));
        }
        if self.statistics_interval != 0 && self.statistics_interval < 5 {
            return Err(bad(
                &key("statistics_interval"),
                self.statistics_interval,
                "expected 0 (no reports) or 5 seconds or more",
            ));
        }
        if !(1..=4096).contains(&self.queue_limit_mb) {
            return Err(bad(
                &key("queue_limit_mb"),
                self.queue_limit_mb,
                "expected 1 to 4096",
            ));
        }
        Ok(())
    }

    /// The tables this collector is sent.
    pub fn monitoring(&self) -> bmp::Monitoring {
        let has = |t: &str| self.route_monitoring.iter().any(|m| m == t);
        bmp::Monitoring {
            pre_policy: has("pre-policy"),
            post_policy: has("post-policy"),
            loc_rib: has("loc-rib"),
        }
    }
}
