//! Adj-RIBs-Out, shared by update groups.
//!
//! Peers whose sessions export alike — the same export rules, next-hop
//! addresses, encoding and families, everything but which peer they are —
//! share one group: one Adj-RIB-Out, one pass over each change, one set
//! of UPDATEs sent to every member (FRR's update groups). Ten receivers
//! of a full table, or a reflector's thousand clients, cost one export.
//!
//! What a member has differently from its group is kept beside it, per
//! prefix: a route never goes back to the peer it came from, and a
//! third-party next hop is the peer's own address for one member only.
//! Such prefixes go out in UPDATEs of their own that those members skip,
//! and each of them is sent what it has.
//!
//! A peer starts in a group of its own, when its session comes up or when
//! it asks for its routes again (ROUTE-REFRESH), and once that group has
//! sent everything it joins a group of the same kind, if its routes then
//! differ from that group's in a few prefixes only.

type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use super::{conn, Peer, Speaker};
use crate::export::Target;
use crate::rib::{AttrTable, BestChange, PathAttrs, PeerId};
use crate::table::{Position, PrefixMap};
use crate::wire::{Context, Family, Message, RouteRefresh, RouteRefreshSubtype};

/// An index into [`Groups`].
pub(super) type GroupId = usize;

/// No peer: the export target of a group as a whole.
const NO_PEER: PeerId = PeerId::MAX;

pub(super) fn slot(family: Family) -> usize {
    usize::from(family == Family::IPV6_UNICAST)
}

/// Everything that decides what a peer is sent, and how it is encoded,
/// but the peer itself: peers with equal keys may share a group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct GroupKey {
    /// The export target, with no peer and no peer address in it.
    pub target: Target,
    pub ctx: Context,
    pub families: Vec<Family>,
    pub mrai: Duration,
}

impl GroupKey {
    /// The export target of one member.
    pub fn target_for(&self, peer: PeerId, address: IpAddr) -> Target {
        Target {
            peer,
            peer_address: address,
            ..self.target.clone()
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct AdjOut {
    /// What the members were sent and not withdrawn: a map sized for full
    /// tables, as a reflector or route server keeps one per group.
    pub sent: PrefixMap<Arc<PathAttrs>>,
    /// Prefixes to look at again, in the order they were marked. A prefix
    /// may be in it twice (marked again before a flush): the flush finds
    /// it sent the second time and passes over it, which costs less than
    /// a set of a full table's prefixes to keep it out.
    pub dirty: Vec<IpNet>,
    /// No announcements before this (MRAI); withdrawals go at once.
    pub mrai_until: Option<Instant>,
    pub counts: [usize; 2],
}

impl AdjOut {
    pub fn mark_all<'a>(&mut self, prefixes: impl Iterator<Item = &'a IpNet>) {
        self.dirty.extend(prefixes.copied());
    }

    /// Record `attrs` as sent for `prefix`: `None` if they already were,
    /// else what they replace (`Some(None)`: the prefix was not sent).
    /// `at` is where the prefix was found beforehand, if it was.
    pub fn replace(
        &mut self,
        prefix: IpNet,
        at: Option<Position>,
        attrs: &Arc<PathAttrs>,
    ) -> Option<Option<Arc<PathAttrs>>> {
        let mut added = false;
        let slot = match at.and_then(|at| self.sent.at_mut(at, &prefix)) {
            Some(slot) => slot,
            None => self.sent.get_or_insert_with(prefix, || {
                added = true;
                Arc::clone(attrs)
            }),
        };
        if added {
            self.counts[self::slot(Family::of(&prefix))] += 1;
            return Some(None);
        }
        if Arc::ptr_eq(slot, attrs) {
            return None;
        }
        Some(Some(std::mem::replace(slot, Arc::clone(attrs))))
    }

    pub fn remove(&mut self, prefix: &IpNet) -> Option<Arc<PathAttrs>> {
        let old = self.sent.remove(prefix);
        if old.is_some() {
            self.counts[slot(Family::of(prefix))] -= 1;
        }
        old
    }
}

/// A member that has a prefix otherwise than its group: what it has
/// (`None`: nothing).
pub(super) type Entry = (PeerId, Option<Arc<PathAttrs>>);

#[derive(Debug)]
pub(super) struct Group {
    pub key: GroupKey,
    pub members: Vec<PeerId>,
    pub out: AdjOut,
    /// Per prefix, the members that have it otherwise than `out.sent`.
    pub exceptions: HashMap<IpNet, Vec<Entry>>,
    /// The members by address, for third-party next hops.
    pub by_address: HashMap<IpAddr, PeerId>,
    /// Made for one peer: it may join a group of its kind once idle.
    pub fresh: bool,
}

impl Group {
    fn new(key: GroupKey) -> Self {
        Group {
            key,
            members: Vec::new(),
            out: AdjOut::default(),
            exceptions: HashMap::default(),
            by_address: HashMap::default(),
            fresh: true,
        }
    }

    fn add_member(&mut self, id: PeerId, address: IpAddr) {
        self.members.push(id);
        self.by_address.insert(address, id);
    }

    /// Whether the group has something for `prefix`, or a member has.
    pub fn has(&self, prefix: &IpNet) -> bool {
        (!self.out.sent.is_empty() && self.out.sent.contains_key(prefix))
            || (!self.exceptions.is_empty() && self.exceptions.contains_key(prefix))
    }

    /// What `member` has for `prefix` when it differs from the group.
    pub fn entry(&self, member: PeerId, prefix: &IpNet) -> Option<Option<&Arc<PathAttrs>>> {
        let entries = self.exceptions.get(prefix)?;
        let (_, own) = entries.iter().find(|(m, _)| *m == member)?;
        Some(own.as_ref())
    }

    /// What `member` has for `prefix`.
    pub fn effective(&self, member: PeerId, prefix: &IpNet) -> Option<&Arc<PathAttrs>> {
        match self.entry(member, prefix) {
            Some(own) => own,
            None => self.out.sent.get(prefix),
        }
    }

    fn idle(&self) -> bool {
        self.out.dirty.is_empty()
    }

    /// Forget `member`'s differences, giving their attribute sets back.
    fn drop_entries(&mut self, member: PeerId, table: &mut AttrTable) {
        if self.exceptions.is_empty() {
            return;
        }
        self.exceptions.retain(|_, entries| {
            entries.retain_mut(|(m, own)| {
                if *m != member {
                    return true;
                }
                if let Some(a) = own.take() {
                    table.release(a);
                }
                false
            });
            !entries.is_empty()
        });
    }

    /// Forget everything, giving the attribute sets back.
    fn clear(self, table: &mut AttrTable) {
        for attrs in self.out.sent.into_values() {
            table.release(attrs);
        }
        for (_, own) in self.exceptions.into_values().flatten() {
            if let Some(a) = own {
                table.release(a);
            }
        }
    }
}

/// A peer's part in its group while its session is Established.
#[derive(Debug, Default)]
pub(super) struct Member {
    pub group: Option<GroupId>,
    /// Families owing End-of-RIB once the first table is out.
    pub eor_due: Vec<Family>,
    /// Families the peer asked to have again (ROUTE-REFRESH), not yet begun.
    pub refresh: Vec<Family>,
    /// Families owing End-of-Route-Refresh (RFC 7313) once re-sent.
    pub eorr_due: Vec<Family>,
    /// The peer negotiated enhanced route refresh (RFC 7313).
    pub enhanced: bool,
    /// Its Adj-RIB-Out's route counts less its group's, per family.
    pub delta: [isize; 2],
}

impl Member {
    /// End-of-RIB or End-of-Route-Refresh owed once its group is idle.
    pub fn owes_marker(&self) -> bool {
        !self.eor_due.is_empty() || !self.eorr_due.is_empty()
    }
}

/// The update groups, with an index by key.
#[derive(Debug, Default)]
pub(super) struct Groups {
    slots: Vec<Option<Group>>,
    free: Vec<GroupId>,
    by_key: HashMap<GroupKey, Vec<GroupId>>,
}

impl Groups {
    pub fn get(&self, g: GroupId) -> Option<&Group> {
        self.slots.get(g)?.as_ref()
    }

    pub fn get_mut(&mut self, g: GroupId) -> Option<&mut Group> {
        self.slots.get_mut(g)?.as_mut()
    }

    pub fn ids(&self) -> Vec<GroupId> {
        (0..self.slots.len())
            .filter(|&g| self.slots[g].is_some())
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Group> {
        self.slots.iter().flatten()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Group> {
        self.slots.iter_mut().flatten()
    }

    fn insert(&mut self, group: Group) -> GroupId {
        let key = group.key.clone();
        let g = match self.free.pop() {
            Some(g) => {
                self.slots[g] = Some(group);
                g
            }
            None => {
                self.slots.push(Some(group));
                self.slots.len() - 1
            }
        };
        self.by_key.entry(key).or_default().push(g);
        g
    }

    fn remove(&mut self, g: GroupId) -> Option<Group> {
        let group = self.slots.get_mut(g)?.take()?;
        if let Some(ids) = self.by_key.get_mut(&group.key) {
            ids.retain(|&h| h != g);
            if ids.is_empty() {
                self.by_key.remove(&group.key);
            }
        }
        self.free.push(g);
        Some(group)
    }

    /// Take a group out to work on it beside the rest of the speaker; it
    /// keeps its id and must be put back.
    pub fn take(&mut self, g: GroupId) -> Option<Group> {
        self.slots.get_mut(g)?.take()
    }

    pub fn put(&mut self, g: GroupId, group: Group) {
        if let Some(slot) = self.slots.get_mut(g) {
            *slot = Some(group);
        }
    }
}

/// What `peer`'s session shares with other peers that export alike.
fn key_of(sp: &Speaker, peer: &Peer) -> Option<GroupKey> {
    let neg = peer.negotiated.as_ref()?;
    let ctx = neg.tx();
    let subnet = peer.main.local;
    let local = subnet.map(|l| l.addr());
    let target = Target {
        peer: NO_PEER,
        local_as: sp.config.local_as,
        ebgp: neg.peer_as != sp.config.local_as,
        rr_client: peer.config.rr_client,
        next_hop_self: peer.config.next_hop_self,
        local_v4: match local {
            Some(IpAddr::V4(a)) => Some(a),
            _ => peer.config.next_hop_v4,
        },
        local_v6: match local {
            Some(IpAddr::V6(a)) if !is_link_local(a) => Some(a),
            _ => peer.config.next_hop_v6,
        },
        local_v6_link_local: match local {
            Some(IpAddr::V6(a)) if is_link_local(a) => Some(a),
            _ => None,
        },
        shared_subnet: subnet
            .map(|l| l.trunc())
            .filter(|n| n.prefix_len() < n.max_prefix_len() && n.contains(&peer.config.address)),
        peer_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        cluster_id: sp.config.cluster_id.unwrap_or(sp.config.router_id),
        route_reflector: true,
        four_octet_as: ctx.four_octet_as,
    };
    Some(GroupKey {
        target,
        ctx,
        families: neg.families.clone(),
        mrai: peer.config.mrai,
    })
}

fn is_link_local(a: std::net::Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}

/// The session is Established: the peer gets a group of its own, its
/// whole table marked (once selection has run), End-of-RIB owed.
pub(super) fn join(sp: &mut Speaker, id: PeerId) {
    leave(sp, id);
    let Some(peer) = sp.peer(id) else { return };
    let Some(key) = key_of(sp, peer) else { return };
    let (address, enhanced) = (
        peer.config.address,
        peer.negotiated
            .as_ref()
            .is_some_and(|n| n.enhanced_route_refresh),
    );
    let eor_due = key.families.clone();
    let mut group = Group::new(key);
    group.add_member(id, address);
    if sp.selected {
        group
            .out
            .mark_all(sp.rib.loc_rib().map(|(p, _)| p).collect::<Vec<_>>().iter());
    }
    let g = sp.groups.insert(group);
    if let Some(peer) = sp.peer_mut(id) {
        peer.out = Member {
            group: Some(g),
            eor_due,
            enhanced,
            ..Member::default()
        };
    }
}

/// The session is over: the peer leaves its group, and a group left empty
/// goes.
pub(super) fn leave(sp: &mut Speaker, id: PeerId) {
    let Some(peer) = sp.peer_mut(id) else { return };
    let Some(g) = std::mem::take(&mut peer.out).group else {
        return;
    };
    let Some(group) = sp.groups.get_mut(g) else {
        return;
    };
    group.members.retain(|&m| m != id);
    group.by_address.retain(|_, m| *m != id);
    if group.members.is_empty() {
        if let Some(group) = sp.groups.remove(g) {
            group.clear(&mut sp.exports);
        }
    } else {
        group.drop_entries(id, &mut sp.exports);
    }
}

/// Routes in the peer's Adj-RIB-Out, per family.
pub(super) fn counts(sp: &Speaker, peer: &Peer) -> [usize; 2] {
    let Some(group) = peer.out.group.and_then(|g| sp.groups.get(g)) else {
        return [0, 0];
    };
    [0, 1].map(|i| (group.out.counts[i] as isize + peer.out.delta[i]).max(0) as usize)
}

/// What the peer was sent and not withdrawn.
pub(super) fn routes<'a>(
    sp: &'a Speaker,
    id: PeerId,
) -> impl Iterator<Item = (IpNet, &'a Arc<PathAttrs>)> + 'a {
    let group = sp
        .peer(id)
        .and_then(|p| p.out.group)
        .and_then(|g| sp.groups.get(g));
    group.into_iter().flat_map(move |group| {
        let shared = group
            .out
            .sent
            .iter()
            .filter_map(move |(p, a)| match group.entry(id, &p) {
                Some(own) => own.map(|own| (p, own)),
                None => Some((p, a)),
            });
        let own_only = group
            .exceptions
            .iter()
            .filter(move |(p, _)| !group.out.sent.contains_key(p))
            .filter_map(move |(p, _)| group.entry(id, p).flatten().map(|a| (*p, a)));
        shared.chain(own_only)
    })
}

/// Mark, in each group, the changes its members may have to hear of: a
/// prefix the group or a member has, or whose new best path may go to
/// them. iBGP split horizon rules most out at once, and a full table
/// learned over iBGP would otherwise be looked at for every iBGP group in
/// vain. `learned` is per change: who the best path came from, whether it
/// goes to every peer (eBGP or our own), whether from a client.
pub(super) fn mark_changes(
    groups: &mut Groups,
    changes: &[BestChange],
    learned: &[Option<(PeerId, bool, bool)>],
    marks: &mut Vec<IpNet>,
) -> bool {
    let mut marked = false;
    for group in groups.iter_mut() {
        let to_ebgp = group.key.target.ebgp;
        let to_client = group.key.target.rr_client;
        // A group of one peer is never sent that peer's own routes.
        let only = match group.members.as_slice() {
            [one] => Some(*one),
            _ => None,
        };
        marks.clear();
        marks.extend(
            changes
                .iter()
                .zip(learned.iter())
                .filter(|(c, src)| {
                    let may_go = src.is_some_and(|(from, open, from_client)| {
                        Some(from) != only && (open || to_ebgp || from_client || to_client)
                    });
                    may_go || group.has(&c.prefix)
                })
                .map(|(c, _)| c.prefix),
        );
        marked |= !marks.is_empty();
        group.out.mark_all(marks.iter());
    }
    marked
}

/// Selection has run for the first time: every group gets the table.
pub(super) fn mark_everything(sp: &mut Speaker) {
    if sp.groups.iter().next().is_none() {
        return;
    }
    let prefixes: Vec<IpNet> = sp.rib.loc_rib().map(|(p, _)| p).collect();
    for group in sp.groups.iter_mut() {
        group.out.mark_all(prefixes.iter());
    }
}

/// Begin the refreshes peers asked for: each such peer gets a group of its
/// own (a copy of what it has, and of what its group still had to do),
/// then the families asked for are forgotten as sent and marked again,
/// framed by BoRR and EoRR where enhanced route refresh was negotiated.
pub(super) fn begin_refreshes(sp: &mut Speaker) {
    for id in 0..sp.peers.len() as PeerId {
        let Some(peer) = sp.peer_mut(id) else {
            continue;
        };
        if peer.out.refresh.is_empty() {
            continue;
        }
        let Some(g) = peer.out.group else {
            peer.out.refresh.clear();
            continue;
        };
        let g = split(sp, id, g);
        let Some(peer) = sp.peer_mut(id) else {
            continue;
        };
        let refresh = std::mem::take(&mut peer.out.refresh);
        let enhanced = peer.out.enhanced;
        let Some(group) = sp.groups.get(g) else {
            continue;
        };
        let families = group.key.families.clone();
        for family in refresh.into_iter().filter(|f| families.contains(f)) {
            if enhanced {
                conn::send(
                    sp,
                    id,
                    Message::RouteRefresh(RouteRefresh::new(
                        family,
                        RouteRefreshSubtype::BeginningOfRouteRefresh,
                    )),
                );
                if let Some(peer) = sp.peer_mut(id) {
                    peer.out.eorr_due.push(family);
                }
            }
            let Some(group) = sp.groups.get_mut(g) else {
                break;
            };
            let gone: Vec<IpNet> = group
                .out
                .sent
                .iter()
                .map(|(p, _)| p)
                .filter(|p| Family::of(p) == family)
                .collect();
            for p in gone {
                if let Some(a) = group.out.remove(&p) {
                    sp.exports.release(a);
                }
            }
            let prefixes: Vec<IpNet> = sp
                .rib
                .loc_rib()
                .map(|(p, _)| p)
                .filter(|p| Family::of(p) == family)
                .collect();
            group.out.mark_all(prefixes.iter());
        }
    }
}

/// Give `id` a group of its own holding what it has: `g` itself when it is
/// the only member.
fn split(sp: &mut Speaker, id: PeerId, g: GroupId) -> GroupId {
    let Some(group) = sp.groups.get(g) else {
        return g;
    };
    if group.members.len() <= 1 {
        return g;
    }
    let mut alone = Group::new(group.key.clone());
    for (prefix, _) in group.out.sent.iter() {
        if let Some(attrs) = group.effective(id, &prefix) {
            alone.out.replace(prefix, None, attrs);
        }
    }
    for (prefix, _) in group.exceptions.iter() {
        if !group.out.sent.contains_key(prefix) {
            if let Some(own) = group.entry(id, prefix).flatten() {
                alone.out.replace(*prefix, None, own);
            }
        }
    }
    alone.out.dirty = group.out.dirty.clone();
    alone.out.mrai_until = group.out.mrai_until;
    let Some(peer) = sp.peer(id) else { return g };
    let address = peer.config.address;
    alone.add_member(id, address);
    if let Some(group) = sp.groups.get_mut(g) {
        group.members.retain(|&m| m != id);
        group.by_address.retain(|_, m| *m != id);
        group.drop_entries(id, &mut sp.exports);
    }
    let h = sp.groups.insert(alone);
    if let Some(peer) = sp.peer_mut(id) {
        peer.out.group = Some(h);
        peer.out.delta = [0, 0];
    }
    h
}

/// Groups made for one peer that have sent everything join the largest
/// idle group of their kind, if each member's routes differ from that
/// group's in few prefixes (a peer that is the source of much of the table
/// is better off alone: every one of those prefixes would be an exception).
pub(super) fn merge_fresh(sp: &mut Speaker) {
    for g in sp.groups.ids() {
        let Some(group) = sp.groups.get(g) else {
            continue;
        };
        if !group.fresh || !group.idle() {
            continue;
        }
        let Some(kin) = sp.groups.by_key.get(&group.key) else {
            continue;
        };
        let into = kin
            .iter()
            .copied()
            .filter(|&h| h != g)
            .filter_map(|h| Some((h, sp.groups.get(h)?)))
            .filter(|(_, other)| other.idle())
            .max_by_key(|(_, other)| other.members.len())
            .map(|(h, _)| h);
        let Some(h) = into else {
            // None idle now: one of them may come to this group later.
            if kin.len() == 1 {
                if let Some(group) = sp.groups.get_mut(g) {
                    group.fresh = false;
                }
            }
            continue;
        };
        let (Some(from), Some(to)) = (sp.groups.get(g), sp.groups.get(h)) else {
            continue;
        };
        let limit = 8 + from.out.sent.len() / 4;
        let diffs: Option<Vec<_>> = from
            .members
            .iter()
            .map(|&m| differences(from, m, to, limit).map(|d| (m, d)))
            .collect();
        let Some(diffs) = diffs else {
            if let Some(group) = sp.groups.get_mut(g) {
                group.fresh = false;
            }
            continue;
        };
        let Some(from) = sp.groups.remove(g) else {
            continue;
        };
        let Some(mut to) = sp.groups.take(h) else {
            continue;
        };
        for (m, diff) in diffs {
            let Some(peer) = sp.peers.get_mut(m as usize).and_then(Option::as_mut) else {
                continue;
            };
            to.add_member(m, peer.config.address);
            peer.out.group = Some(h);
            peer.out.delta = [0, 0];
            for (prefix, own) in diff {
                let theirs = to.out.sent.contains_key(&prefix);
                peer.out.delta[slot(Family::of(&prefix))] +=
                    isize::from(own.is_some()) - isize::from(theirs);
                to.exceptions.entry(prefix).or_default().push((m, own));
            }
        }
        sp.groups.put(h, to);
        from.clear(&mut sp.exports);
    }
}

/// Where what `member` of `from` has differs from what `into` sent: the
/// entries it would have there; `None` if more than `limit`.
fn differences(
    from: &Group,
    member: PeerId,
    into: &Group,
    limit: usize,
) -> Option<Vec<(IpNet, Option<Arc<PathAttrs>>)>> {
    let mut diff = Vec::new();
    let mut differs = |prefix: IpNet, mine: Option<&Arc<PathAttrs>>| {
        let theirs = into.out.sent.get(&prefix);
        let same = match (mine, theirs) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if !same {
            diff.push((prefix, mine.cloned()));
        }
        diff.len() <= limit
    };
    for (prefix, _) in from.out.sent.iter() {
        if !differs(prefix, from.effective(member, &prefix)) {
            return None;
        }
    }
    for prefix in from.exceptions.keys() {
        if !from.out.sent.contains_key(prefix) && !differs(*prefix, from.effective(member, prefix))
        {
            return None;
        }
    }
    for (prefix, _) in into.out.sent.iter() {
        if !from.has(&prefix) && !differs(prefix, None) {
            return None;
        }
    }
    Some(diff)
}
