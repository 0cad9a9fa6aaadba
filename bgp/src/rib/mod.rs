//! The RIB: every peer's Adj-RIB-In and the Loc-RIB in one table.
//!
//! Paths are kept per prefix, each naming its peer, its ADD-PATH path id and
//! an interned attribute set, so a path costs a few dozen bytes whatever its
//! attributes. A peer's Adj-RIB-In is the paths it owns; the Loc-RIB is the
//! best of each prefix. Every change of best path or multipath set comes out
//! of [`Rib::take_changes`] for the FIB, SNAT and export to follow.

mod attrs;
mod decider;
mod decision;
mod dests;
mod paths;
#[cfg(test)]
mod tests;

use std::collections::HashMap as StdHashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use ipnet::IpNet;

pub use attrs::{PathAttrs, DEFAULT_LOCAL_PREF};
pub use decision::{DecisionConfig, LossReason};

pub(crate) use attrs::AttrTable;
use decider::{selection, Decider, Selection};
use decision::{Candidate, Outcome};
use dests::Dests;
use smallvec::SmallVec;

use crate::table::Position;
use crate::wire::{Family, Nlri};

/// Maps keyed by prefix or address, hashed with foldhash: several times
/// faster than SipHash on these small keys, and still seeded per process.
type HashMap<K, V> = StdHashMap<K, V, foldhash::fast::RandomState>;

/// A peer's handle in the RIB, given by [`Rib::add_peer`].
pub type PeerId = u32;

/// What the decision process needs to know about a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub address: IpAddr,
    pub router_id: Ipv4Addr,
    /// The session is eBGP (the peer's AS differs from ours).
    pub ebgp: bool,
    /// Routes this speaker originates itself; they win over learned ones
    /// of equal LOCAL_PREF, as FRR and BIRD prefer local routes.
    pub local: bool,
}

/// Whether, and at what IGP cost, a next hop can be reached; the driver
/// learns it from the kernel and tells the RIB (next hops it was not told
/// about count as reachable at cost 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reachability {
    Unreachable,
    Reachable { igp_cost: u32 },
}

/// One path to a prefix.
#[derive(Debug, Clone)]
pub struct Path {
    pub peer: PeerId,
    pub path_id: u32,
    pub attrs: Arc<PathAttrs>,
    /// Kept from before the peer's restart, until End-of-RIB (RFC 4724).
    pub stale: bool,
    /// When the path last changed, on the owner's clock (see [`Rib::set_clock`]).
    pub since: u32,
    /// In the multipath set of its prefix.
    multipath: bool,
    reason: Option<LossReason>,
}

impl Path {
    /// Why this path is not the best one; `None` for the best.
    pub fn reason(&self) -> Option<LossReason> {
        self.reason
    }

    /// Whether this path is the best of its prefix.
    pub fn is_best(&self) -> bool {
        self.reason.is_none()
    }

    /// Whether this path is in its prefix's multipath set.
    pub fn is_multipath(&self) -> bool {
        self.multipath
    }

    fn route(&self) -> Route {
        Route {
            peer: self.peer,
            path_id: self.path_id,
            attrs: Arc::clone(&self.attrs),
        }
    }
}

/// A path as the FIB and export see it.
#[derive(Debug, Clone)]
pub struct Route {
    pub peer: PeerId,
    pub path_id: u32,
    pub attrs: Arc<PathAttrs>,
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.peer == other.peer
            && self.path_id == other.path_id
            && Arc::ptr_eq(&self.attrs, &other.attrs)
    }
}

impl Eq for Route {}

/// A prefix whose best path or multipath set changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BestChange {
    pub prefix: IpNet,
    /// The new best path; `None` when the prefix is gone.
    pub best: Option<Route>,
    /// Paths as good as the best up to the IGP cost, best included. Most
    /// prefixes have one path, held inline: a full table of changes makes
    /// no allocation per prefix for it.
    pub multipath: SmallVec<[Route; 1]>,
}

/// The routing table.
#[derive(Debug, Default)]
pub struct Rib {
    /// Every prefix's paths; most have one, held inline.
    dests: Dests,
    attrs: AttrTable,
    peers: Vec<Option<PeerInfo>>,
    /// Per peer, how many paths it has in the RIB: IPv4 and IPv6 unicast.
    counts: Vec<[usize; 2]>,
    next_hops: HashMap<IpAddr, Reachability>,
    config: DecisionConfig,
    /// Seconds on the owner's clock, stamped on paths as they change.
    clock: u32,
    changes: Vec<BestChange>,
    /// Buffers the decision process reuses from one prefix to the next.
    candidates: Vec<Candidate>,
    outcome: Outcome,
    /// Where each prefix of an announcement sits, looked up ahead.
    found: Vec<Option<Position>>,
}

impl Rib {
    pub fn new(config: DecisionConfig) -> Self {
        Rib {
            config,
            ..Rib::default()
        }
    }

    /// Tell the RIB the time, in whole seconds since an epoch of the
    /// owner's choosing; paths that change from now on carry it. The RIB
    /// keeps no clock of its own.
    pub fn set_clock(&mut self, seconds: u32) {
        self.clock = seconds;
    }

    /// Register a peer; its id is reused once it is removed.
    pub fn add_peer(&mut self, info: PeerInfo) -> PeerId {
        if let Some(free) = self.peers.iter().position(Option::is_none) {
            self.peers[free] = Some(info);
            self.counts[free] = [0, 0];
            return free as PeerId;
        }
        self.peers.push(Some(info));
        self.counts.push([0, 0]);
        (self.peers.len() - 1) as PeerId
    }

    /// Withdraw everything the peer announced and forget it.
    pub fn remove_peer(&mut self, peer: PeerId) {
        self.withdraw_matching(|_, p| p.peer == peer);
        if let Some(slot) = self.peers.get_mut(peer as usize) {
            *slot = None;
        }
    }

    /// How many paths of `family` the peer has in the RIB (for its
    /// maximum-prefix limit and its counters).
    pub fn peer_path_count(&self, peer: PeerId, family: Family) -> usize {
        self.counts
            .get(peer as usize)
            .map_or(0, |c| c[family_slot(&family)])
    }

    /// Update what the RIB knows of a peer (its BGP identifier is only
    /// known once a session is up). Paths already held are not re-decided.
    pub fn set_peer(&mut self, peer: PeerId, info: PeerInfo) {
        if let Some(Some(slot)) = self.peers.get_mut(peer as usize) {
            *slot = info;
        }
    }

    /// Remove every path of `family` the peer has, keeping the peer.
    pub fn withdraw_family(&mut self, peer: PeerId, family: Family) {
        if self.peer_path_count(peer, family) > 0 {
            self.withdraw_matching(|prefix, p| p.peer == peer && Family::of(prefix) == family);
        }
    }

    pub fn peer(&self, peer: PeerId) -> Option<&PeerInfo> {
        self.peers.get(peer as usize)?.as_ref()
    }

    /// Install (or replace) the peer's paths to `nlri` with `attrs`.
    pub fn announce(&mut self, peer: PeerId, nlri: &[Nlri], attrs: PathAttrs) {
        let attrs = self.attrs.intern(attrs);
        let (dests, table, counts, found, clock, mut decider) = self.parts();
        // Every prefix's entry first: lookups one after the other, with no
        // work between them and each one's buckets fetched a few ahead,
        // overlap their cache misses (a full table's index is far larger
        // than the caches); then the decision runs on each entry found.
        found.clear();
        dests.locate_all(nlri.iter().map(|n| &n.prefix), found);
        for (n, &at) in nlri.iter().zip(found.iter()) {
            let path_id = n.path_id.unwrap_or(0);
            let mut paths = match at {
                Some(at) => match dests.at_mut(at, &n.prefix) {
                    Some(paths) => paths,
                    None => dests.entry(n.prefix),
                },
                // New, or the same prefix twice in one UPDATE.
                None => dests.entry(n.prefix),
            };
            match paths
                .iter_mut()
                .position(|p| p.peer == peer && p.path_id == path_id)
            {
                Some(at) if Arc::ptr_eq(&paths[at].attrs, &attrs) => {
                    // The same path again (a refresh, or a stale path confirmed).
                    paths[at].stale = false;
                }
                Some(at) => {
                    let before = selection(&paths);
                    let existing = &mut paths[at];
                    let old = std::mem::replace(&mut existing.attrs, Arc::clone(&attrs));
                    existing.stale = false;
                    existing.since = clock;
                    decider.run(n.prefix, &mut paths, before);
                    // Released only once `before` no longer holds the old set.
                    table.release(old);
                }
                None => {
                    count(counts, peer, &n.prefix, 1);
                    paths.push(Path {
                        peer,
                        path_id,
                        attrs: Arc::clone(&attrs),
                        stale: false,
                        since: clock,
                        multipath: false,
                        reason: Some(LossReason::PathId),
                    });
                    decider.added(n.prefix, &mut paths);
                }
            }
        }
        self.attrs.release(attrs);
    }

    /// Remove the peer's paths to `nlri`.
    pub fn withdraw(&mut self, peer: PeerId, nlri: &[Nlri]) -> usize {
        let mut removed = 0;
        let (dests, table, counts, found, _, mut decider) = self.parts();
        // Lookups first, as in `announce`.
        found.clear();
        dests.locate_all(nlri.iter().map(|n| &n.prefix), found);
        for (n, &at) in nlri.iter().zip(found.iter()) {
            let path_id = n.path_id.unwrap_or(0);
            // A prefix found ahead may have gone since, if listed twice.
            let Some(mut paths) = at.and_then(|at| dests.at_mut(at, &n.prefix)) else {
                continue;
            };
            let Some(at) = paths
                .iter()
                .position(|p| p.peer == peer && p.path_id == path_id)
            else {
                continue;
            };
            count(counts, peer, &n.prefix, -1);
            let gone = decider.removed(n.prefix, &mut paths, at);
            if paths.is_empty() {
                dests.remove(&n.prefix);
            }
            table.release(gone.attrs);
            removed += 1;
        }
        removed
    }

    /// Graceful restart (RFC 4724 §4.2): keep the peer's paths of `family`
    /// but mark them stale, until End-of-RIB or the restart time.
    pub fn mark_stale(&mut self, peer: PeerId, family: Family) {
        self.dests.for_each_mut(|prefix, paths| {
            if Family::of(&prefix) == family {
                for p in paths.iter_mut().filter(|p| p.peer == peer) {
                    p.stale = true;
                }
            }
        });
    }

    /// Remove the peer's paths of `family` still stale (End-of-RIB came, or
    /// the restart time ran out).
    pub fn sweep_stale(&mut self, peer: PeerId, family: Family) {
        self.withdraw_matching(|prefix, p| {
            p.peer == peer && p.stale && Family::of(prefix) == family
        });
    }

    /// Tell the RIB whether a next hop can be reached, and at what cost.
    pub fn set_next_hop(&mut self, next_hop: IpAddr, reach: Reachability) {
        if self.next_hops.insert(next_hop, reach) == Some(reach) {
            return;
        }
        let affected: Vec<IpNet> = self
            .dests
            .iter()
            .filter(|(_, paths)| paths.iter().any(|p| p.attrs.next_hop_addr() == next_hop))
            .map(|(prefix, _)| prefix)
            .collect();
        for prefix in affected {
            let before = self.dests.get(&prefix).map(selection).unwrap_or_default();
            self.decide(prefix, before);
        }
    }

    /// The changes of best path since the last call, in the order they happened.
    pub fn take_changes(&mut self) -> Vec<BestChange> {
        std::mem::take(&mut self.changes)
    }

    /// The same, moved to the end of `out`; an empty `out` and the RIB's
    /// buffer change places, so a caller that keeps `out` makes no
    /// allocation and no copy per batch (a batch of thousands is large
    /// enough for the allocator to map fresh pages for it each time).
    /// Between two batches no position into the table is held: the
    /// table is compacted here if a withdrawal left it mostly free.
    pub fn take_changes_into(&mut self, out: &mut Vec<BestChange>) {
        move_all(&mut self.changes, out);
        keep_turn(&mut self.changes);
        self.dests.compact();
    }

    /// How many changes wait to be taken.
    pub fn pending_changes(&self) -> usize {
        self.changes.len()
    }

    /// Bytes the buffers kept between batches hold.
    pub fn buffers_held(&self) -> usize {
        self.changes.capacity() * size_of::<BestChange>()
            + self.found.capacity() * size_of::<Option<Position>>()
    }

    /// Let the buffers kept between batches go (changes not yet taken stay).
    pub fn release_buffers(&mut self) {
        if self.changes.is_empty() {
            self.changes = Vec::new();
        }
        self.found = Vec::new();
    }

    /// Every path to `prefix`, best first.
    pub fn paths(&self, prefix: &IpNet) -> Vec<&Path> {
        let mut paths: Vec<&Path> = self
            .dests
            .get(prefix)
            .into_iter()
            .flat_map(|p| p.iter())
            .collect();
        paths.sort_by_key(|p| (p.reason.is_some(), p.reason, p.peer, p.path_id));
        paths
    }

    /// The best path to `prefix`.
    pub fn best(&self, prefix: &IpNet) -> Option<&Path> {
        self.dests.get(prefix)?.iter().find(|p| p.is_best())
    }

    /// Where `prefix` sits in the table, for [`Rib::best_at`]: a caller
    /// about to look at many prefixes finds them all first, and the
    /// lookups' cache misses overlap.
    pub fn locate(&self, prefix: &IpNet) -> Option<Position> {
        self.dests.locate(prefix)
    }

    /// The best path to `prefix`, found at `at` (from [`Rib::locate`]) if
    /// it is still there, else looked up.
    pub fn best_at(&self, at: Option<Position>, prefix: &IpNet) -> Option<&Path> {
        let paths = match at.and_then(|at| self.dests.at(at, prefix)) {
            Some(paths) => paths,
            None => self.dests.get(prefix)?,
        };
        paths.iter().find(|p| p.is_best())
    }

    /// The Loc-RIB: every prefix with its best path.
    pub fn loc_rib(&self) -> impl Iterator<Item = (IpNet, &Path)> {
        self.dests
            .iter()
            .filter_map(|(prefix, paths)| Some((prefix, paths.iter().find(|p| p.is_best())?)))
    }

    /// The peer's Adj-RIB-In.
    pub fn adj_rib_in(&self, peer: PeerId) -> impl Iterator<Item = (IpNet, &Path)> {
        self.dests.iter().flat_map(move |(prefix, paths)| {
            paths
                .iter()
                .filter(move |p| p.peer == peer)
                .map(move |p| (prefix, p))
        })
    }

    pub fn prefix_count(&self) -> usize {
        self.dests.len()
    }

    pub fn path_count(&self) -> usize {
        self.dests.path_count()
    }

    /// How many attribute sets the intern table holds, including any that
    /// only a route already handed out still used and that await a sweep.
    pub fn attr_sets_held(&self) -> usize {
        self.attrs.len()
    }

    /// How many distinct attribute sets the paths share.
    pub fn attr_set_count(&self) -> usize {
        self.attrs.live()
    }

    fn withdraw_matching(&mut self, gone: impl Fn(&IpNet, &Path) -> bool) {
        let (dests, table, counts, _, _, mut decider) = self.parts();
        let mut emptied = Vec::new();
        let mut released = Vec::new();
        dests.for_each_mut(|prefix, paths| {
            let mut matching = paths.iter().enumerate().filter(|(_, p)| gone(&prefix, p));
            let Some((first, _)) = matching.next() else {
                return;
            };
            if matching.next().is_none() {
                // One path goes (a peer's session, without ADD-PATH).
                let p = decider.removed(prefix, paths, first);
                count(counts, p.peer, &prefix, -1);
                table.release(p.attrs);
            } else {
                let before = selection(paths);
                let mut i = 0;
                while i < paths.len() {
                    if gone(&prefix, &paths[i]) {
                        let p = paths.swap_remove(i);
                        count(counts, p.peer, &prefix, -1);
                        released.push(p.attrs);
                    } else {
                        i += 1;
                    }
                }
                decider.run(prefix, paths, before);
                // Released once `before` no longer holds them.
                released.drain(..).for_each(|a| table.release(a));
            }
            if paths.is_empty() {
                emptied.push(prefix);
            }
        });
        for prefix in emptied {
            dests.remove(&prefix);
        }
    }

    /// The table borrowed in parts: the prefixes, the attribute table, the
    /// per-peer counts, the lookup buffer, the clock, and the decision
    /// process over the rest, so that it runs on a prefix's paths found
    /// by the caller.
    fn parts(&mut self) -> Parts<'_> {
        let Rib {
            dests,
            attrs,
            peers,
            counts,
            next_hops,
            config,
            clock,
            changes,
            candidates,
            outcome,
            found,
        } = self;
        let decider = Decider {
            peers,
            next_hops,
            config,
            candidates,
            outcome,
            changes,
        };
        (dests, attrs, counts, found, *clock, decider)
    }

    /// Re-run the decision process for `prefix` and record a change from
    /// `before`, the selection as it was before the paths changed.
    fn decide(&mut self, prefix: IpNet, before: Selection) {
        let (dests, _, _, _, _, mut decider) = self.parts();
        let Some(mut paths) = dests.get_mut(&prefix) else {
            return;
        };
        decider.run(prefix, &mut paths, before);
        if paths.is_empty() {
            dests.remove(&prefix);
        }
    }
}

/// See [`Rib::parts`].
type Parts<'a> = (
    &'a mut Dests,
    &'a mut AttrTable,
    &'a mut Vec<[usize; 2]>,
    &'a mut Vec<Option<Position>>,
    u32,
    Decider<'a>,
);

/// Let an emptied buffer go if a burst (a full table withdrawn at once)
/// made it large, rather than hold that memory for good.
pub(crate) fn keep_small<T>(buffer: &mut Vec<T>) {
    const KEEP: usize = 16 * 1024;
    if buffer.capacity() > KEEP && buffer.is_empty() {
        *buffer = Vec::new();
    }
}

/// The same for the buffers a turn's changes pass through, RIB to
/// speaker to driver: a turn's worth (some thousands of changes, a few
/// hundred KiB to a few MiB) is kept, as growing it again would fault in
/// fresh pages on every turn; the driver lets them go once a burst is
/// over ([`Rib::release_buffers`]).
pub(crate) fn keep_turn<T>(buffer: &mut Vec<T>) {
    const KEEP_BYTES: usize = 4 << 20;
    if buffer.is_empty() && buffer.capacity() * size_of::<T>().max(1) > KEEP_BYTES {
        *buffer = Vec::new();
    }
}

/// Move what `from` holds to the end of `to`; when `to` is empty the two
/// buffers change places rather than the items being copied (a batch of
/// changes is megabytes: a copy is time, and fresh pages to fault in).
pub(crate) fn move_all<T>(from: &mut Vec<T>, to: &mut Vec<T>) {
    if to.is_empty() {
        std::mem::swap(from, to);
    } else {
        to.append(from);
    }
}

/// Index of a prefix's family in the per-peer counts.
fn family_slot(family: &Family) -> usize {
    usize::from(*family == Family::IPV6_UNICAST)
}

/// Count a path of `peer` to `prefix` in (`delta` 1) or out (-1).
fn count(counts: &mut [[usize; 2]], peer: PeerId, prefix: &IpNet, delta: isize) {
    if let Some(c) = counts.get_mut(peer as usize) {
        let slot = &mut c[family_slot(&Family::of(prefix))];
        *slot = slot.saturating_add_signed(delta);
    }
}
