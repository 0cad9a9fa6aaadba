//! The decision process (RFC 4271 §9.1.2, RFC 4456 §9), as an elimination
//! over the whole set of paths for a prefix rather than pairwise
//! comparisons: MED only compares paths from the same neighbouring AS, which
//! makes pairwise comparison intransitive and the result depend on the order
//! paths arrived. Each step keeps the paths that are best by one rule; the
//! paths it drops record that rule as the reason they lost.
//!
//! When every path that reaches the MED step comes from one neighbouring AS
//! (or MED is always compared), the rules form a total order, and the
//! elimination is the same as comparing each path with the best one: the
//! rule a path lost by is the first on which it differs from the best. That
//! is the common case, and it takes one pass rather than one per rule; it
//! also lets the RIB decide a new path against the best alone.

use std::cmp::Ordering;
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
    if in_order(paths.iter().filter(|p| p.igp_cost.is_some()), config) {
        select_in_order(paths, out);
    } else {
        eliminate(paths, config, out);
    }
}

/// Whether the rules order `paths` totally: MED is compared between all
/// of them (always, or because they share one neighbouring AS).
pub(crate) fn in_order<'a>(
    mut paths: impl Iterator<Item = &'a Candidate>,
    config: &DecisionConfig,
) -> bool {
    if config.always_compare_med {
        return true;
    }
    let Some(first) = paths.next() else {
        return true;
    };
    paths.all(|p| p.neighbor_as == first.neighbor_as)
}

/// The first of the rules whose comparison is not `Equal`, with it; each
/// comparison is made only once those before it found the two equal.
macro_rules! first_difference {
    ($($rule:ident => $compare:expr),+ $(,)?) => {{
        $(
            let o: Ordering = $compare;
            if o.is_ne() {
                return Some(($rule, o));
            }
        )+
        None
    }};
}

/// The first rule by which `a` and `b` differ up to ORIGIN (the rules
/// before MED, which order any two paths), and whether `a` is preferred
/// (`Less`) or not; `None` when they are equal on all of them.
pub(crate) fn differ_before_med(a: &Candidate, b: &Candidate) -> Option<(LossReason, Ordering)> {
    use LossReason::*;
    // Each rule's comparison, `Less` when `a` is preferred, made only if
    // the rules before it found the two equal.
    first_difference!(
        NextHopUnreachable => b.igp_cost.is_some().cmp(&a.igp_cost.is_some()),
        LocalPref => b.local_pref.cmp(&a.local_pref),
        NotLocal => b.local.cmp(&a.local),
        AsPathLen => a.as_path_len.cmp(&b.as_path_len),
        Origin => a.origin.cmp(&b.origin),
    )
}

/// The first rule from MED on by which `a` and `b` differ, comparing MED
/// whatever the neighbouring ASes (callers know the rules order the paths).
fn differ_from_med(a: &Candidate, b: &Candidate) -> Option<(LossReason, Ordering)> {
    use LossReason::*;
    first_difference!(
        Med => a.med.cmp(&b.med),
        PeerType => b.ebgp.cmp(&a.ebgp),
        IgpCost => a.igp_cost.cmp(&b.igp_cost),
        RouterId => a.router_id.cmp(&b.router_id),
        ClusterList => a.cluster_list_len.cmp(&b.cluster_list_len),
        PeerAddress => a.peer_address.cmp(&b.peer_address),
        PathId => a.path_id.cmp(&b.path_id),
    )
}

/// Every rule in order, for paths the rules order totally: the first by
/// which `a` and `b` differ and whether `a` is preferred.
pub(crate) fn differ(a: &Candidate, b: &Candidate) -> Option<(LossReason, Ordering)> {
    differ_before_med(a, b).or_else(|| differ_from_med(a, b))
}

/// Whether a path that lost to the best by `reason` is still in the
/// multipath set: it is equal to the best up to the IGP cost.
pub(crate) fn in_multipath(reason: LossReason) -> bool {
    reason > LossReason::IgpCost
}

/// The decision for paths the rules order totally: the best is the first
/// of the most preferred, and each other path lost by the first rule on
/// which it differs from the best.
fn select_in_order(paths: &[Candidate], out: &mut Outcome) {
    let Outcome {
        best,
        multipath,
        reasons,
        ..
    } = out;
    reasons.clear();
    multipath.clear();
    let mut top = 0;
    for (i, p) in paths.iter().enumerate().skip(1) {
        if matches!(differ(p, &paths[top]), Some((_, Ordering::Less))) {
            top = i;
        }
    }
    *best = paths.get(top).filter(|p| p.igp_cost.is_some()).map(|_| top);
    let Some(top) = *best else {
        reasons.resize(paths.len(), Some(LossReason::NextHopUnreachable));
        return;
    };
    for (i, p) in paths.iter().enumerate() {
        let reason = if i == top {
            None
        } else {
            // Equal on every rule: the same path twice, and the first wins.
            Some(differ(p, &paths[top]).map_or(LossReason::PathId, |(r, _)| r))
        };
        if reason.is_none_or(in_multipath) {
            multipath.push(i);
        }
        reasons.push(reason);
    }
}

/// The decision process as the RFC states it: each rule in turn drops the
/// paths it does not prefer. Right whatever the neighbouring ASes.
pub(crate) fn eliminate(paths: &[Candidate], config: &DecisionConfig, out: &mut Outcome) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn candidate() -> impl Strategy<Value = Candidate> {
        (
            (
                prop_oneof![Just(100u32), Just(200)],
                0u32..3,
                0u8..3,
                0u32..3,
            ),
            (
                proptest::option::of(65000u32..65003),
                any::<bool>(),
                any::<bool>(),
            ),
            (
                proptest::option::of(0u32..3),
                1u8..4,
                0u32..2,
                1u8..4,
                0u32..2,
            ),
        )
            .prop_map(
                |((local_pref, as_path_len, origin, med), (neighbor_as, ebgp, local), rest)| {
                    let (igp_cost, router_id, cluster_list_len, address, path_id) = rest;
                    Candidate {
                        local_pref,
                        as_path_len,
                        origin: [Origin::Igp, Origin::Egp, Origin::Incomplete][usize::from(origin)],
                        med,
                        neighbor_as,
                        ebgp,
                        local,
                        igp_cost,
                        router_id: Ipv4Addr::new(10, 0, 0, router_id),
                        cluster_list_len,
                        peer_address: IpAddr::V4(Ipv4Addr::new(10, 0, 1, address)),
                        path_id,
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

        /// Where the rules order the paths, one comparison with the best
        /// gives what the elimination gives: best, reasons and multipath.
        #[test]
        fn comparing_with_the_best_is_the_elimination_where_the_rules_order_the_paths(
            paths in proptest::collection::vec(candidate(), 0..8),
            always_compare_med in any::<bool>(),
            one_as in any::<bool>(),
        ) {
            let mut paths = paths;
            if one_as {
                for p in &mut paths {
                    p.neighbor_as = Some(65000);
                }
            }
            let config = DecisionConfig { always_compare_med };
            let reachable = || paths.iter().filter(|p| p.igp_cost.is_some());
            prop_assume!(in_order(reachable(), &config));
            let mut fast = Outcome::default();
            select_in_order(&paths, &mut fast);
            let mut slow = Outcome::default();
            eliminate(&paths, &config, &mut slow);
            prop_assert_eq!(fast.best, slow.best);
            prop_assert_eq!(fast.reasons, slow.reasons);
            prop_assert_eq!(fast.multipath, slow.multipath);
        }
    }

    #[test]
    fn med_from_two_neighbouring_ases_is_not_an_order() {
        let base = Candidate {
            local_pref: 100,
            as_path_len: 1,
            origin: Origin::Igp,
            med: 0,
            neighbor_as: Some(1),
            ebgp: false,
            local: false,
            igp_cost: Some(0),
            router_id: Ipv4Addr::new(10, 0, 0, 3),
            cluster_list_len: 0,
            peer_address: IpAddr::V4(Ipv4Addr::new(10, 0, 1, 3)),
            path_id: 0,
        };
        // A (AS 1, MED 10) loses to B (AS 1, MED 5) by MED; B loses to C
        // (AS 2) by router id; C loses to A by router id. The elimination
        // drops A first and picks C.
        let a = Candidate {
            med: 10,
            router_id: Ipv4Addr::new(10, 0, 0, 1),
            ..base
        };
        let b = Candidate {
            med: 5,
            router_id: Ipv4Addr::new(10, 0, 0, 3),
            ..base
        };
        let c = Candidate {
            neighbor_as: Some(2),
            router_id: Ipv4Addr::new(10, 0, 0, 2),
            ..base
        };
        let paths = [a, b, c];
        let config = DecisionConfig::default();
        assert!(!in_order(paths.iter(), &config));
        let mut out = Outcome::default();
        select(&paths, &config, &mut out);
        assert_eq!(out.best, Some(2));
        assert_eq!(
            out.reasons,
            [Some(LossReason::Med), Some(LossReason::RouterId), None]
        );
    }
}
