//! The decision process (RFC 4271 §9.1.2, RFC 4456 §9), as an elimination
//! over the whole set of paths for a prefix rather than pairwise
//! comparisons: MED only compares paths from the same neighbouring AS, which
//! makes pairwise comparison intransitive and the result depend on the order
//! paths arrived. Each step keeps the paths that are best by one rule; the
//! paths it drops record that rule as the reason they lost.

use std::net::{IpAddr, Ipv4Addr};

use crate::wire::Origin;

/// Why a path is not the best one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LossReason {
    /// Its next hop cannot be reached.
    NextHopUnreachable,
    /// Lower LOCAL_PREF.
    LocalPref,
    /// Learned, while this speaker originates the prefix itself.
    NotLocal,
    /// Longer AS_PATH.
    AsPathLen,
    /// Higher ORIGIN.
    Origin,
    /// Higher MULTI_EXIT_DISC than a path from the same neighbouring AS.
    Med,
    /// Learned over iBGP while an eBGP path exists.
    PeerType,
    /// Higher IGP cost to the next hop.
    IgpCost,
    /// Higher BGP identifier (or ORIGINATOR_ID).
    RouterId,
    /// Longer CLUSTER_LIST.
    ClusterList,
    /// Higher peer address.
    PeerAddress,
    /// Higher ADD-PATH path identifier from the same peer.
    PathId,
}

/// Settings of the decision process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecisionConfig {
    /// Compare MED between paths from different neighbouring ASes too.
    pub always_compare_med: bool,
}

/// One path as the decision process sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate {
    pub local_pref: u32,
    pub as_path_len: u32,
    pub origin: Origin,
    pub med: u32,
    pub neighbor_as: Option<u32>,
    pub ebgp: bool,
    /// Originated by this speaker.
    pub local: bool,
    /// IGP cost to the next hop; `None` when it cannot be reached.
    pub igp_cost: Option<u32>,
    /// ORIGINATOR_ID if the path has one, else the peer's BGP identifier.
    pub router_id: Ipv4Addr,
    pub cluster_list_len: u32,
    pub peer_address: IpAddr,
    pub path_id: u32,
}

/// The result for one prefix. Kept between runs so its buffers are reused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Index of the best path.
    pub best: Option<usize>,
    /// Indices of the paths equal to the best up to the IGP cost: the
    /// multipath set, best included, in index order.
    pub multipath: Vec<usize>,
    /// For each path, why it lost; `None` for the best.
    pub reasons: Vec<Option<LossReason>>,
    /// Scratch: the paths still in the running.
    alive: Vec<usize>,
}

/// Keep the candidates for which `key` is smallest; mark the others lost for `reason`.
fn keep_min<K: Ord>(
    paths: &[Candidate],
    alive: &mut Vec<usize>,
    reasons: &mut [Option<LossReason>],
    reason: LossReason,
    key: impl Fn(&Candidate) -> K,
) {
    let Some(min) = alive.iter().map(|&i| key(&paths[i])).min() else {
        return;
    };
    alive.retain(|&i| {
        let keep = key(&paths[i]) == min;
        if !keep {
            reasons[i] = Some(reason);
        }
        keep
    });
}

/// Run the decision process over `paths`, into `out`.
pub(crate) fn select(paths: &[Candidate], config: &DecisionConfig, out: &mut Outcome) {
    use std::cmp::Reverse;
    let Outcome {
        best,
        multipath,
        reasons,
        alive,
    } = out;
    reasons.clear();
    reasons.resize(paths.len(), None);
    alive.clear();
    alive.extend(0..paths.len());
    let reasons = reasons.as_mut_slice();

    // An unreachable next hop never wins (RFC 4271 §9.1.2.1).
    alive.retain(|&i| {
        let reachable = paths[i].igp_cost.is_some();
        if !reachable {
            reasons[i] = Some(LossReason::NextHopUnreachable);
        }
        reachable
    });
    keep_min(paths, alive, reasons, LossReason::LocalPref, |p| {
        Reverse(p.local_pref)
    });
    keep_min(paths, alive, reasons, LossReason::NotLocal, |p| !p.local);
    keep_min(paths, alive, reasons, LossReason::AsPathLen, |p| {
        p.as_path_len
    });
    keep_min(paths, alive, reasons, LossReason::Origin, |p| p.origin);

    // MED, within each neighbouring AS unless always compared (§9.1.2.2 c).
    if config.always_compare_med {
        keep_min(paths, alive, reasons, LossReason::Med, |p| p.med);
    } else {
        // Mark first, then drop: every path is measured against its whole group.
        for &i in alive.iter() {
            let beaten = alive.iter().any(|&j| {
                paths[j].neighbor_as == paths[i].neighbor_as && paths[j].med < paths[i].med
            });
            if beaten {
                reasons[i] = Some(LossReason::Med);
            }
        }
        alive.retain(|&i| reasons[i].is_none());
    }

    keep_min(paths, alive, reasons, LossReason::PeerType, |p| !p.ebgp);
    keep_min(paths, alive, reasons, LossReason::IgpCost, |p| p.igp_cost);
    multipath.clear();
    multipath.extend_from_slice(alive);

    keep_min(paths, alive, reasons, LossReason::RouterId, |p| p.router_id);
    keep_min(paths, alive, reasons, LossReason::ClusterList, |p| {
        p.cluster_list_len
    });
    keep_min(paths, alive, reasons, LossReason::PeerAddress, |p| {
        p.peer_address
    });
    keep_min(paths, alive, reasons, LossReason::PathId, |p| p.path_id);

    // Paths still equal here are the same path twice; the first one wins.
    *best = alive.first().copied();
    for &i in alive.iter().skip(1) {
        reasons[i] = Some(LossReason::PathId);
    }
}
