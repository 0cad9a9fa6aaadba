//! The JSON documents of the control API, shared by the server and the CLI.
//! Field names are snake_case and stable: scripts read them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Global {
    pub asn: u32,
    pub router_id: String,
    pub listen_addresses: Vec<String>,
    pub listen_port: u16,
    pub cluster_id: String,
    pub graceful_restart: bool,
    /// The first route selection ran (at once, or after a restart's deferral).
    pub selection_done: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Neighbor {
    pub address: String,
    pub asn: u32,
    pub description: Option<String>,
    /// Idle, Connect, Active, OpenSent, OpenConfirm, Established.
    pub state: String,
    /// Shut down by the operator (Idle(Admin)).
    pub admin_down: bool,
    /// Seconds since the session last went up or down.
    pub uptime_seconds: Option<u64>,
    pub router_id: Option<String>,
    pub local_address: Option<String>,
    pub hold_time: Option<u16>,
    pub keepalive: Option<u16>,
    pub configured_hold_time: u16,
    pub families: Vec<String>,
    pub received: FamilyCounts,
    pub accepted: FamilyCounts,
    pub advertised: FamilyCounts,
    /// Ours, as our OPEN carries them.
    pub capabilities_sent: Vec<String>,
    /// The peer's, as its OPEN carried them.
    pub capabilities_received: Vec<String>,
    pub messages: Messages,
    pub last_error: Option<String>,
    /// Families kept as stale while the peer restarts.
    pub stale: Vec<String>,
    /// BFD for the session, when it has it (`podbgp bfd` has the details).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd: Option<NeighborBfd>,
}

/// BFD as a neighbor's detail shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NeighborBfd {
    /// Up, Down, AdminDown (by the peer), or waiting for the peer.
    pub state: String,
    /// Why it last went down.
    pub diagnostic: Option<String>,
    /// Since the last change.
    pub since_seconds: Option<u64>,
    /// As configured.
    pub min_rx_ms: u32,
    pub min_tx_ms: u32,
    pub multiplier: u8,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FamilyCounts {
    pub ipv4: usize,
    pub ipv6: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Messages {
    pub updates_received: u64,
    pub updates_sent: u64,
    pub update_errors: u64,
    pub established_transitions: u64,
}

/// One prefix with its paths, best first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Destination {
    pub prefix: String,
    pub paths: Vec<Route>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Route {
    pub best: bool,
    /// In the multipath set the FIB may use.
    pub multipath: bool,
    /// Why it is not the best path.
    pub reason: Option<String>,
    /// The peer it came from; `local` for routes we originate.
    pub source: String,
    pub next_hop: String,
    pub as_path: String,
    pub origin: String,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub communities: Vec<String>,
    pub large_communities: Vec<String>,
    pub extended_communities: Vec<String>,
    pub originator_id: Option<String>,
    pub cluster_list: Vec<String>,
    pub age_seconds: u64,
    pub stale: bool,
    pub path_id: u32,
    /// Why this node originates it, for routes Kubernetes asks for ("pod
    /// CIDR of this node", "service range", "LoadBalancer IP of NS/NAME").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub originated_for: Vec<String>,
}

/// A route the peer sent that import policy turned away.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Rejected {
    pub prefix: String,
    pub path_id: u32,
    pub reason: String,
}

/// `neighbor ADDR adj-in`: what the peer sent, accepted or not.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AdjIn {
    pub accepted: Vec<Destination>,
    pub rejected: Vec<Rejected>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RibSummary {
    pub family: String,
    pub destinations: usize,
    pub paths: usize,
    pub attribute_sets: usize,
}

/// `POST /v1/rib`: originate a prefix.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RibAdd {
    pub prefix: String,
    #[serde(default)]
    pub next_hop: Option<String>,
    #[serde(default)]
    pub communities: Vec<String>,
    #[serde(default)]
    pub large_communities: Vec<String>,
    #[serde(default)]
    pub med: Option<u32>,
    #[serde(default)]
    pub local_pref: Option<u32>,
}

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ApiError {
    pub error: String,
}

/// The body of a successful POST or DELETE.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Done {
    pub done: String,
}
