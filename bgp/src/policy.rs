//! Import checks applied to a peer's routes before they reach the RIB:
//! loops (RFC 4271 §9.1.2, RFC 4456 §8), prefix lists, and the maximum
//! number of prefixes (RFC 4486).

use std::net::Ipv4Addr;

use ipnet::IpNet;

use crate::rib::PathAttrs;
use crate::wire::{AttrValue, Family, Notification};

/// Why a route was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// Our own AS is in the AS_PATH.
    AsPathLoop,
    /// The ORIGINATOR_ID is our own router id (RFC 4456 §8).
    OriginatorLoop,
    /// Our cluster id is in the CLUSTER_LIST (RFC 4456 §8).
    ClusterLoop,
    /// The peer's prefix list does not permit the prefix.
    Filtered,
}

/// Permit or deny, for a prefix list entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Permit,
    Deny,
}

/// One prefix list entry: prefixes inside `prefix` whose length is in
/// `ge..=le`. Without `ge` and `le` only `prefix` itself matches; `le` alone
/// runs from the entry's length, `ge` alone up to the longest prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixRule {
    pub prefix: IpNet,
    pub ge: Option<u8>,
    pub le: Option<u8>,
    pub verdict: Verdict,
}

impl PrefixRule {
    pub fn matches(&self, candidate: &IpNet) -> bool {
        if !self.prefix.contains(candidate) {
            return false;
        }
        let len = candidate.prefix_len();
        let (lo, hi) = match (self.ge, self.le) {
            (None, None) => (self.prefix.prefix_len(), self.prefix.prefix_len()),
            (ge, le) => (
                ge.unwrap_or(self.prefix.prefix_len()),
                le.unwrap_or(self.prefix.max_prefix_len()),
            ),
        };
        (lo..=hi).contains(&len)
    }
}

/// An ordered prefix list: the first matching rule decides; a prefix no
/// rule matches is denied. An empty list permits everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrefixList {
    pub rules: Vec<PrefixRule>,
}

impl PrefixList {
    pub fn permits(&self, prefix: &IpNet) -> bool {
        if self.rules.is_empty() {
            return true;
        }
        self.rules
            .iter()
            .find(|r| r.matches(prefix))
            .is_some_and(|r| r.verdict == Verdict::Permit)
    }
}

/// What a session applies to the routes its peer sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportPolicy {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    /// Our cluster id when we reflect routes (RFC 4456); by default the router id.
    pub cluster_id: Option<Ipv4Addr>,
    pub prefixes: PrefixList,
    /// The most prefixes of one family the peer may send; beyond, the session ends.
    pub max_prefixes: Option<u32>,
}

impl ImportPolicy {
    pub fn new(local_as: u32, router_id: Ipv4Addr) -> Self {
        ImportPolicy {
            local_as,
            router_id,
            cluster_id: None,
            prefixes: PrefixList::default(),
            max_prefixes: None,
        }
    }

    /// Check the attributes the routes of an UPDATE share.
    pub fn check_attrs(&self, attrs: &PathAttrs) -> Result<(), Rejection> {
        let cluster_id = self.cluster_id.unwrap_or(self.router_id);
        for a in attrs.attributes() {
            match &a.value {
                AttrValue::AsPath(p) if p.contains(self.local_as) => {
                    return Err(Rejection::AsPathLoop)
                }
                AttrValue::OriginatorId(id) if *id == self.router_id => {
                    return Err(Rejection::OriginatorLoop)
                }
                AttrValue::ClusterList(ids) if ids.contains(&cluster_id) => {
                    return Err(Rejection::ClusterLoop)
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Check one prefix against the prefix list.
    pub fn check_prefix(&self, prefix: &IpNet) -> Result<(), Rejection> {
        if self.prefixes.permits(prefix) {
            Ok(())
        } else {
            Err(Rejection::Filtered)
        }
    }

    /// The Cease to send when the peer holds `count` prefixes of `family`
    /// in the RIB and that is more than allowed (RFC 4486 §4).
    pub fn check_count(&self, family: Family, count: usize) -> Option<Notification> {
        let limit = self.max_prefixes?;
        (count > limit as usize).then(|| Notification::max_prefixes(family, limit))
    }
}
