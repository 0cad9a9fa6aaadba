//! The decision process run on one prefix's paths as they change.
//!
//! Most changes need no full run. Each path keeps the rule it lost by, and
//! where the rules order the paths totally (see [`super::decision::in_order`]) that
//! rule is the first on which the path differs from the best. Compared
//! rule by rule such "first differences" form an ultrametric: for any paths
//! P, Q, R, the first difference of P and R is the earlier of P–Q's and
//! Q–R's when those two differ, and at a shared one the order of the three
//! at that rule is fixed by Q lying between them. So:
//! - a new path that loses to the best lost by its first difference with it,
//!   and nothing else changes;
//! - a new path that wins makes every other path's rule the earlier of its
//!   old one and the rule the old best now loses by;
//! - a loser that goes changes nothing but the multipath set;
//! - when the best goes, the next best is among the paths that lost by the
//!   latest rule, and only those are compared again.
//!
//! A new path that wins or loses before MED does so whatever the
//! neighbouring ASes, as MED only ever looks at the paths those rules keep;
//! the rest falls back to the whole process.

use std::cmp::Ordering;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use ipnet::IpNet;
use smallvec::SmallVec;

use super::decision::{
    differ, differ_before_med, in_multipath, select, Candidate, DecisionConfig, LossReason, Outcome,
};
use super::paths::PathsMut;
use super::{BestChange, HashMap, Path, PeerId, PeerInfo, Reachability, Route};

/// The decision process with what it reads and the buffers it reuses,
/// borrowed from the RIB apart from the prefixes, so that it can run on a
/// prefix's paths found by the caller.
pub(super) struct Decider<'a> {
    pub peers: &'a [Option<PeerInfo>],
    pub next_hops: &'a HashMap<IpAddr, Reachability>,
    pub config: &'a DecisionConfig,
    pub candidates: &'a mut Vec<Candidate>,
    pub outcome: &'a mut Outcome,
    pub changes: &'a mut Vec<BestChange>,
}

impl Decider<'_> {
    /// The last of `paths` of `prefix` is new: decide it.
    pub fn added(&mut self, prefix: IpNet, paths: &mut [Path]) {
        let new = paths.len() - 1;
        let Some(best) = paths[..new].iter().position(Path::is_best) else {
            return self.run_all(prefix, paths);
        };
        let n = self.candidate(&paths[new]);
        if n.igp_cost.is_none() {
            paths[new].reason = Some(LossReason::NextHopUnreachable);
            return;
        }
        let b = self.candidate(&paths[best]);
        let verdict = match differ_before_med(&n, &b) {
            Some(v) => v,
            None if self.in_order(paths) => {
                // Equal on every rule: the same path twice, and the first wins.
                differ(&n, &b).unwrap_or((LossReason::PathId, Ordering::Greater))
            }
            None => return self.run_all(prefix, paths),
        };
        match verdict {
            (reason, Ordering::Greater) => {
                let multipath = in_multipath(reason);
                paths[new].reason = Some(reason);
                paths[new].multipath = multipath;
                if multipath {
                    self.record(prefix, paths);
                }
            }
            (best_loses_by, _) => {
                for (i, p) in paths.iter_mut().enumerate() {
                    let reason = if i == new {
                        None
                    } else {
                        Some(p.reason.map_or(best_loses_by, |r| r.min(best_loses_by)))
                    };
                    p.reason = reason;
                    p.multipath = reason.is_none_or(in_multipath);
                }
                self.record(prefix, paths);
            }
        }
    }

    /// Remove the path at `at` from `paths` of `prefix` and decide again
    /// as far as its going changes anything.
    pub fn removed(&mut self, prefix: IpNet, paths: &mut PathsMut<'_>, at: usize) -> Path {
        match paths[at].reason() {
            // A path that lost before MED never met the paths MED compares;
            // one that lost where the rules order the paths lost to the best
            // alone. Either way the best stays, and the others' reasons.
            Some(r) if r < LossReason::Med || self.in_order(paths) => {
                let gone = paths.swap_remove(at);
                if gone.multipath {
                    self.record(prefix, paths);
                }
                gone
            }
            None if self.in_order(paths) => {
                let gone = paths.swap_remove(at);
                self.best_gone(paths);
                self.record(prefix, paths);
                gone
            }
            _ => {
                let before = selection(paths);
                let gone = paths.swap_remove(at);
                self.run(prefix, paths, before);
                gone
            }
        }
    }

    /// The best of `paths`, which the rules order, has gone: the next best
    /// is the best of the paths that lost by the latest rule. The others
    /// keep their reasons: they differ from it where they differed from the
    /// old best.
    fn best_gone(&mut self, paths: &mut [Path]) {
        let Some(latest) = paths.iter().filter_map(Path::reason).max() else {
            return;
        };
        if latest == LossReason::NextHopUnreachable {
            return; // nothing reachable: no best
        }
        let mut group: SmallVec<[usize; 8]> = SmallVec::new();
        self.candidates.clear();
        for (i, p) in paths.iter().enumerate() {
            if p.reason() == Some(latest) {
                group.push(i);
                self.candidates
                    .push(candidate(p, self.peers, self.next_hops));
            }
        }
        let mut top = 0;
        for (g, c) in self.candidates.iter().enumerate().skip(1) {
            if matches!(differ(c, &self.candidates[top]), Some((_, Ordering::Less))) {
                top = g;
            }
        }
        for (g, &i) in group.iter().enumerate() {
            let reason = if g == top {
                None
            } else {
                Some(
                    differ(&self.candidates[g], &self.candidates[top])
                        .map_or(LossReason::PathId, |(r, _)| r),
                )
            };
            paths[i].reason = reason;
            paths[i].multipath = reason.is_none_or(in_multipath);
        }
    }

    /// Whether the decision rules order `paths` totally (see
    /// [`super::decision::in_order`]), judged on every path, reachable or not: as
    /// good, and it needs no next-hop lookup.
    fn in_order(&self, paths: &[Path]) -> bool {
        let neighbor_as = |p: &Path| p.attrs.decision().neighbor_as;
        self.config.always_compare_med
            || paths
                .first()
                .is_none_or(|first| paths.iter().all(|p| neighbor_as(p) == neighbor_as(first)))
    }

    fn candidate(&self, p: &Path) -> Candidate {
        candidate(p, self.peers, self.next_hops)
    }

    /// Run the whole process over `paths`, none of which has been decided
    /// yet since the selection last changed.
    fn run_all(&mut self, prefix: IpNet, paths: &mut [Path]) {
        // An undecided new path is neither best nor in the multipath set,
        // so the selection is still the one from before it came.
        let before = selection(paths);
        self.run(prefix, paths, before);
    }

    /// Select among `paths` of `prefix`; a change against `before` is
    /// recorded.
    pub fn run(&mut self, prefix: IpNet, paths: &mut [Path], before: Selection) {
        self.candidates.clear();
        self.candidates.extend(
            paths
                .iter()
                .map(|p| candidate(p, self.peers, self.next_hops)),
        );
        select(self.candidates, self.config, self.outcome);
        for (i, p) in paths.iter_mut().enumerate() {
            p.reason = self.outcome.reasons[i];
            p.multipath = self.outcome.multipath.contains(&i);
        }
        if selection(paths) != before {
            self.record(prefix, paths);
        }
    }

    /// Record the selection of `prefix` as changed.
    fn record(&mut self, prefix: IpNet, paths: &[Path]) {
        let best = paths.iter().find(|p| p.is_best()).map(Path::route);
        let mut multipath: SmallVec<[Route; 1]> = paths
            .iter()
            .filter(|p| p.multipath && best.is_some())
            .map(Path::route)
            .collect();
        multipath.sort_by_key(|r| (r.peer, r.path_id));
        self.changes.push(BestChange {
            prefix,
            best,
            multipath,
        });
    }
}

/// A path's identity for telling whether a selection changed: peer, path
/// id and attribute set (by address: sets are interned).
pub(super) type PathKey = (PeerId, u32, usize);

/// The best path and the multipath set, as keys, in a stable order.
pub(super) type Selection = (Option<PathKey>, SmallVec<[PathKey; 4]>);

pub(super) fn key(p: &Path) -> PathKey {
    (p.peer, p.path_id, Arc::as_ptr(&p.attrs) as usize)
}

pub(super) fn selection(paths: &[Path]) -> Selection {
    let best = paths.iter().find(|p| p.is_best()).map(key);
    let mut multipath: SmallVec<[PathKey; 4]> = paths
        .iter()
        .filter(|p| p.multipath && best.is_some())
        .map(key)
        .collect();
    multipath.sort_unstable();
    (best, multipath)
}

#[inline(always)]
pub(super) fn candidate(
    p: &Path,
    peers: &[Option<PeerInfo>],
    next_hops: &HashMap<IpAddr, Reachability>,
) -> Candidate {
    let d = p.attrs.decision();
    let peer = peers.get(p.peer as usize).and_then(Option::as_ref);
    // Most speakers are told of no next hop (the table is empty): no
    // hash to compute then.
    let told = if next_hops.is_empty() {
        None
    } else {
        next_hops.get(&p.attrs.next_hop_addr())
    };
    let igp_cost = match told {
        Some(Reachability::Unreachable) => None,
        Some(Reachability::Reachable { igp_cost }) => Some(*igp_cost),
        None => Some(0),
    };
    Candidate {
        local_pref: d.local_pref,
        as_path_len: d.as_path_len,
        origin: d.origin,
        med: d.med,
        neighbor_as: d.neighbor_as,
        ebgp: peer.is_some_and(|i| i.ebgp),
        local: peer.is_some_and(|i| i.local),
        igp_cost,
        router_id: d
            .originator_id
            .or(peer.map(|i| i.router_id))
            .unwrap_or(Ipv4Addr::BROADCAST),
        cluster_list_len: d.cluster_list_len,
        peer_address: peer.map_or(IpAddr::V4(Ipv4Addr::BROADCAST), |i| i.address),
        path_id: p.path_id,
    }
}
