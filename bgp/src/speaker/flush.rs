//! Building a group's UPDATEs. Route changes only mark prefixes in each
//! group (see `adj_out`); [`flush`] later works out what each marked
//! prefix now exports, groups the prefixes by exported attribute set,
//! packs each group into as few UPDATEs as the session's message size
//! allows, and sends them to every member. Prefixes some members have
//! otherwise than the group go in UPDATEs those members skip, and each of
//! those members is sent its own.

type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use std::sync::Arc;
use std::time::Instant;

use ipnet::IpNet;

use super::adj_out::{slot, AdjOut, Entry, Group, GroupId};
use super::{conn, Peer, Speaker};
use crate::export::{export, Source};
use crate::rib::{keep_small, AttrTable, PathAttrs, PeerId};
use crate::wire::pack::{announcements, withdrawals};
use crate::wire::{Context, Family, Message, Nlri, RouteRefresh, RouteRefreshSubtype, Update};

const FAMILIES: [Family; 2] = [Family::IPV4_UNICAST, Family::IPV6_UNICAST];

/// Prefixes looked up ahead of being worked on: enough for the lookups'
/// cache misses to overlap, few enough for what they fetched to stay in
/// the cache until it is used.
const LOOKAHEAD: usize = 256;

/// A group's prefixes are packed into UPDATEs once this many wait: the
/// buffer stays small enough to be reused, warm in the cache, rather than
/// grown afresh for each flush of a full table (its last UPDATE is the
/// only one that may go out less than full, one in some sixteen).
const PACK_AT: usize = 16 * 1024;

/// What one flush sends.
#[derive(Debug, Default)]
struct Outgoing {
    /// UPDATEs for every member.
    shared: Vec<Message>,
    /// UPDATEs for every member but those of a skip set (by index).
    skipping: Vec<(Message, usize)>,
    /// Sets of members, sorted, that skip some UPDATEs.
    skips: Vec<Vec<PeerId>>,
    skip_of: HashMap<Vec<PeerId>, usize>,
    /// Prefixes some members skip, by family, attribute set (none: a
    /// withdrawal) and skip set.
    odd: Vec<OddList>,
    odd_of: HashMap<(Family, usize, usize), usize>,
    /// What one member alone is sent.
    private: Vec<Own>,
    /// Routes that could not be encoded (for every member).
    encode_errors: u64,
    /// Routes were announced: the MRAI starts.
    announced: bool,
}

/// A change for one member alone: (member, prefix, what it now has).
type Own = (PeerId, IpNet, Option<Arc<PathAttrs>>);

/// Prefixes of one family, announced with one attribute set (or withdrawn:
/// none), that the members of one skip set skip.
type OddList = (Family, Option<Arc<PathAttrs>>, usize, Vec<Nlri>);

impl Outgoing {
    fn odd(&mut self, family: Family, attrs: Option<Arc<PathAttrs>>, skip: Vec<PeerId>, p: IpNet) {
        let s = match self.skip_of.get(&skip) {
            Some(&s) => s,
            None => {
                self.skips.push(skip.clone());
                self.skip_of.insert(skip, self.skips.len() - 1);
                self.skips.len() - 1
            }
        };
        let ptr = attrs.as_ref().map_or(0, |a| Arc::as_ptr(a) as usize);
        let lists = &mut self.odd;
        let at = *self.odd_of.entry((family, ptr, s)).or_insert_with(|| {
            lists.push((family, attrs, s, Vec::new()));
            lists.len() - 1
        });
        lists[at].3.push(Nlri::new(p));
    }
}

/// What a flush works with besides its group.
struct Env<'a> {
    peers: &'a mut [Option<Peer>],
    exports: &'a mut AttrTable,
    sources: &'a [Source],
}

/// One marked prefix some members have otherwise than the group.
struct Change<'a> {
    prefix: IpNet,
    /// The best path and whom it came from.
    best: Option<(&'a Arc<PathAttrs>, PeerId)>,
    /// What the group exports for it.
    new: Option<Arc<PathAttrs>>,
}

/// Where the routes of every peer come from, as export needs to know it;
/// the same for every group flushed in one poll.
pub(super) fn sources(sp: &Speaker) -> Vec<Source> {
    (0..sp.peers.len().max(sp.local as usize + 1) as PeerId)
        .map(|p| source_of(sp, p))
        .collect()
}

/// Work out and send what the group's members must be sent now.
/// `sources` is [`sources`], made by the first group with something to
/// send.
pub(super) fn flush(sp: &mut Speaker, now: Instant, g: GroupId, sources: &mut Option<Vec<Source>>) {
    if !sp.selected {
        return;
    }
    // Every poll comes here for every group: leave at once when idle.
    let Some(group) = sp.groups.get(g) else {
        return;
    };
    let owed = group
        .members
        .iter()
        .any(|&m| sp.peer(m).is_some_and(|p| p.out.owes_marker()));
    if group.out.dirty.is_empty() && !owed {
        return;
    }
    let sources = sources.get_or_insert_with(|| self::sources(sp));
    let Some(mut group) = sp.groups.take(g) else {
        return;
    };
    let mut out = Outgoing::default();
    if !group.out.dirty.is_empty() {
        work(sp, now, g, &mut group, sources, &mut out);
    }
    deliver(sp, now, &mut group, out);
    sp.groups.put(g, group);
}

/// Bring the group's Adj-RIB-Out up to date with its marked prefixes and
/// gather the UPDATEs that says.
fn work(
    sp: &mut Speaker,
    now: Instant,
    g: GroupId,
    group: &mut Group,
    sources: &[Source],
    out: &mut Outgoing,
) {
    let Speaker {
        rib,
        peers,
        exports,
        scratch,
        ..
    } = sp;
    let mut env = Env {
        peers: peers.as_mut_slice(),
        exports,
        sources,
    };
    let target = group.key.target.clone();
    let families = group.key.families.clone();
    let ctx = group.key.ctx;
    let held = group.out.mrai_until.is_some_and(|t| now < t);
    // A next hop left as it is for eBGP peers on a shared subnet is the
    // member's own address for one of them.
    let third_party = target.ebgp && target.shared_subnet.is_some();
    let mut cache: HashMap<(usize, PeerId), Option<Arc<PathAttrs>>> = HashMap::default();
    let mut groups: Vec<(Family, Arc<PathAttrs>, Vec<Nlri>)> = Vec::new();
    let mut group_of: HashMap<(Family, usize), usize> = HashMap::default();
    let mut withdrawn: [Vec<Nlri>; 2] = [Vec::new(), Vec::new()];
    let mut keep: Vec<IpNet> = Vec::new();
    let mut candidates: Vec<PeerId> = Vec::new();
    let mut dirty = std::mem::take(&mut group.out.dirty);

    // Each prefix's place in the RIB and in what was sent, found first:
    // lookups back to back overlap their cache misses.
    // A prefix whose best path changed in this poll has it at hand, in a
    // map the size of one pass, where the RIB's is the size of the table.
    // Buffers of this size are kept from one flush to the next: fresh,
    // they would be pages mapped and faulted in each time.
    // A block at a time: what the lookups brought into the cache is
    // still there when the block's prefixes are worked on.
    let bests = &scratch.bests;
    let found = &mut scratch.found;
    let pool = &mut scratch.nlri;
    for block in dirty.chunks(LOOKAHEAD) {
        found.clear();
        found.extend(block.iter().map(|p| {
            let in_rib = match bests.contains_key(p) {
                true => None,
                false => rib.locate(p),
            };
            (in_rib, group.out.sent.locate(p))
        }));
        for (&prefix, &(in_rib, in_sent)) in block.iter().zip(found.iter()) {
            let family = Family::of(&prefix);
            if !families.contains(&family) {
                continue;
            }
            let best = match bests.get(&prefix) {
                Some(route) => route.as_ref().map(|r| (&r.attrs, r.peer)),
                None => rib.best_at(in_rib, &prefix).map(|p| (&p.attrs, p.peer)),
            };
            let new = best.and_then(|(attrs, from)| {
                let key = (Arc::as_ptr(attrs) as usize, from);
                cache
                    .entry(key)
                    .or_insert_with(|| {
                        let source = env.sources.get(from as usize)?;
                        export(attrs, source, &target).map(|a| env.exports.intern(a))
                    })
                    .clone()
            });

            // Members that may have the prefix otherwise than the group:
            // the route's source, a member at its next hop, and those
            // that had it otherwise before.
            candidates.clear();
            if let Some((attrs, from)) = best {
                if member_of(env.peers, from) == Some(g) {
                    candidates.push(from);
                }
                if third_party {
                    if let Some(&m) = group.by_address.get(&attrs.next_hop_addr()) {
                        candidates.push(m);
                    }
                }
            }
            if let Some(entries) = group.exceptions.get(&prefix) {
                candidates.extend(entries.iter().map(|(m, _)| *m));
            }
            if !candidates.is_empty() {
                if held && new.is_some() {
                    keep.push(prefix);
                    continue;
                }
                candidates.sort_unstable();
                candidates.dedup();
                let change = Change { prefix, best, new };
                odd_prefix(change, &candidates, group, &mut env, out);
                continue;
            }

            let Some(new) = new else {
                if let Some(old) = group.out.remove(&prefix) {
                    env.exports.release(old);
                    withdrawn[slot(family)].push(Nlri::new(prefix));
                }
                continue;
            };
            if held {
                // Sent after the interval, if still new then.
                if !group
                    .out
                    .sent
                    .get(&prefix)
                    .is_some_and(|old| Arc::ptr_eq(old, &new))
                {
                    keep.push(prefix);
                }
                continue;
            }
            // One lookup: what was sent, replaced by what is sent now.
            let Some(old) = group.out.replace(prefix, in_sent, &new) else {
                continue; // the same as sent
            };
            if let Some(old) = old {
                env.exports.release(old);
            }
            let k = (family, Arc::as_ptr(&new) as usize);
            let at = *group_of.entry(k).or_insert_with(|| {
                groups.push((family, Arc::clone(&new), pool.pop().unwrap_or_default()));
                groups.len() - 1
            });
            groups[at].2.push(Nlri::new(prefix));
            if groups[at].2.len() >= PACK_AT {
                let (family, attrs, nlri) = &mut groups[at];
                let (adj, exports) = (&mut group.out, &mut *env.exports);
                out.encode_errors +=
                    pack(adj, exports, (*family, attrs), nlri, &ctx, &mut out.shared);
            }
        }
    }
    drop(cache);
    found.clear();
    keep_small(found);
    dirty.clear();
    keep_small(&mut dirty);
    group.out.dirty = dirty;
    // Held back: once each, however often marked meanwhile.
    keep.sort_unstable();
    keep.dedup();
    group.out.mark_all(keep.iter());
    // The positions found above are used: a table withdrawn from this
    // group gives its memory back.
    group.out.sent.compact();

    // Withdrawals first, then what was packed as groups filled, then the
    // rest of the groups.
    let packed = std::mem::take(&mut out.shared);
    for (i, nlri) in withdrawn.iter().enumerate() {
        if !nlri.is_empty() {
            match withdrawals(FAMILIES[i], nlri, &ctx) {
                Ok(us) => out.shared.extend(us.into_iter().map(Message::Update)),
                Err(_) => out.encode_errors += nlri.len() as u64,
            }
        }
    }
    out.shared.extend(packed);
    out.announced |= !groups.is_empty();
    for (family, attrs, mut nlri) in groups {
        let (adj, exports) = (&mut group.out, &mut *env.exports);
        out.encode_errors += pack(
            adj,
            exports,
            (family, &attrs),
            &mut nlri,
            &ctx,
            &mut out.shared,
        );
        keep_small(&mut nlri);
        if pool.len() < 8 {
            pool.push(nlri);
        }
    }
    pack_odd(group, &mut env, &ctx, out);
}

/// The group of the peer, if it is a member of one.
fn member_of(peers: &[Option<Peer>], id: PeerId) -> Option<GroupId> {
    peers.get(id as usize)?.as_ref()?.out.group
}

fn same(a: Option<&Arc<PathAttrs>>, b: Option<&Arc<PathAttrs>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// Add (`sign` 1) or take away (-1) how `entries` make their members'
/// route counts differ from the group's, which has `prefix` or not.
fn account(peers: &mut [Option<Peer>], prefix: &IpNet, entries: &[Entry], has: bool, sign: isize) {
    let f = slot(Family::of(prefix));
    for (m, own) in entries {
        if let Some(p) = peers.get_mut(*m as usize).and_then(Option::as_mut) {
            p.out.delta[f] += sign * (isize::from(own.is_some()) - isize::from(has));
        }
    }
}

/// A prefix that some members (`candidates`) may have otherwise than the
/// group: the group's change goes in UPDATEs they skip, and each of them
/// whose own route changed is sent it alone.
fn odd_prefix(
    change: Change<'_>,
    candidates: &[PeerId],
    group: &mut Group,
    env: &mut Env<'_>,
    out: &mut Outgoing,
) {
    let Change { prefix, best, new } = change;
    let family = Family::of(&prefix);
    let mut spent: Vec<Arc<PathAttrs>> = Vec::new();
    let old_entries = group.exceptions.remove(&prefix).unwrap_or_default();
    let had = group.out.sent.get(&prefix).cloned();
    account(env.peers, &prefix, &old_entries, had.is_some(), -1);

    let changed = !same(had.as_ref(), new.as_ref());
    if changed {
        let old = match &new {
            Some(n) => group.out.replace(prefix, None, n).flatten(),
            None => group.out.remove(&prefix),
        };
        spent.extend(old);
    }
    let mut new_entries: Vec<Entry> = Vec::new();
    for &m in candidates {
        let own = best.and_then(|(attrs, from)| {
            let address = env.peers.get(m as usize)?.as_ref()?.config.address;
            let source = env.sources.get(from as usize)?;
            let target = group.key.target_for(m, address);
            export(attrs, source, &target).map(|a| env.exports.intern(a))
        });
        if same(own.as_ref(), new.as_ref()) {
            spent.extend(own);
        } else {
            new_entries.push((m, own));
        }
    }

    // Who skips the group's UPDATE: members that had the prefix otherwise
    // or have it otherwise now; each is sent what it has if it changed.
    let mut skip: Vec<PeerId> = old_entries
        .iter()
        .chain(new_entries.iter())
        .map(|(m, _)| *m)
        .collect();
    skip.sort_unstable();
    skip.dedup();
    for &m in &skip {
        let before = match old_entries.iter().find(|(e, _)| *e == m) {
            Some((_, own)) => own.as_ref(),
            None => had.as_ref(),
        };
        let after = match new_entries.iter().find(|(e, _)| *e == m) {
            Some((_, own)) => own.as_ref(),
            None => new.as_ref(),
        };
        if !same(before, after) {
            out.announced |= after.is_some();
            out.private.push((m, prefix, after.cloned()));
        }
    }
    if changed {
        out.announced |= new.is_some();
        out.odd(family, new.clone(), skip, prefix);
    }
    account(env.peers, &prefix, &new_entries, new.is_some(), 1);
    if !new_entries.is_empty() {
        group.exceptions.insert(prefix, new_entries);
    }
    drop(had);
    drop(new);
    spent.extend(old_entries.into_iter().filter_map(|(_, own)| own));
    for a in spent {
        env.exports.release(a);
    }
}

/// Pack the prefixes some members skip, each set of them apart.
fn pack_odd(group: &mut Group, env: &mut Env<'_>, ctx: &Context, out: &mut Outgoing) {
    for (family, attrs, s, nlri) in std::mem::take(&mut out.odd) {
        let Some(attrs) = attrs else {
            match withdrawals(family, &nlri, ctx) {
                Ok(us) => out
                    .skipping
                    .extend(us.into_iter().map(|u| (Message::Update(u), s))),
                Err(_) => out.encode_errors += nlri.len() as u64,
            }
            continue;
        };
        match announcements(attrs.attributes(), attrs.next_hop(), family, &nlri, ctx) {
            Ok(us) => out
                .skipping
                .extend(us.into_iter().map(|u| (Message::Update(u), s))),
            Err(_) => {
                // Too big to send: no member has these from the group.
                out.encode_errors += nlri.len() as u64;
                for n in &nlri {
                    let entries = group.exceptions.get(&n.prefix).cloned().unwrap_or_default();
                    account(env.peers, &n.prefix, &entries, true, -1);
                    if let Some(old) = group.out.remove(&n.prefix) {
                        env.exports.release(old);
                    }
                    account(env.peers, &n.prefix, &entries, false, 1);
                }
            }
        }
    }
    out.odd_of.clear();
}

/// Send every member what the flush gathered, its own changes, and the
/// End-of-RIB and End-of-Route-Refresh markers it is owed once the group
/// has sent everything.
fn deliver(sp: &mut Speaker, now: Instant, group: &mut Group, mut out: Outgoing) {
    let idle = group.out.dirty.is_empty();
    let ctx = group.key.ctx;
    out.private.sort_by_key(|(m, _, _)| *m);
    let members = group.members.clone();
    let last = members.len().saturating_sub(1);
    for (i, &m) in members.iter().enumerate() {
        let mut messages: Vec<Message> = Vec::new();
        if i == last {
            messages.append(&mut out.shared);
        } else {
            messages.extend(out.shared.iter().cloned());
        }
        for (message, s) in &out.skipping {
            if out.skips[*s].binary_search(&m).is_err() {
                messages.push(message.clone());
            }
        }
        let from = out.private.partition_point(|(p, _, _)| *p < m);
        let to = out.private.partition_point(|(p, _, _)| *p <= m);
        let errors = pack_private(sp, group, m, &out.private[from..to], &ctx, &mut messages);
        let Some(peer) = sp.peer_mut(m) else { continue };
        if idle {
            for family in std::mem::take(&mut peer.out.eor_due) {
                messages.push(Message::Update(Update::end_of_rib(family)));
            }
            for family in std::mem::take(&mut peer.out.eorr_due) {
                messages.push(Message::RouteRefresh(RouteRefresh::new(
                    family,
                    RouteRefreshSubtype::EndOfRouteRefresh,
                )));
            }
        }
        peer.counters.updates_sent += messages
            .iter()
            .filter(|m| matches!(m, Message::Update(_)))
            .count() as u64;
        peer.counters.encode_errors += out.encode_errors + errors;
        for message in messages {
            conn::send(sp, m, message);
        }
    }
    let mrai = group.key.mrai;
    if out.announced && !mrai.is_zero() {
        group.out.mrai_until = Some(now + sp.jitter(mrai));
    }
}

/// Pack one member's own changes after `messages`; how many routes could
/// not be encoded (the member is then left without them).
fn pack_private(
    sp: &mut Speaker,
    group: &mut Group,
    member: PeerId,
    changes: &[Own],
    ctx: &Context,
    messages: &mut Vec<Message>,
) -> u64 {
    if changes.is_empty() {
        return 0;
    }
    let mut withdrawn: [Vec<Nlri>; 2] = [Vec::new(), Vec::new()];
    let mut announced: Vec<(Family, &Arc<PathAttrs>, Vec<Nlri>)> = Vec::new();
    for (_, prefix, attrs) in changes {
        let family = Family::of(prefix);
        match attrs {
            None => withdrawn[slot(family)].push(Nlri::new(*prefix)),
            Some(a) => match announced
                .iter_mut()
                .find(|(f, b, _)| *f == family && Arc::ptr_eq(a, b))
            {
                Some((_, _, nlri)) => nlri.push(Nlri::new(*prefix)),
                None => announced.push((family, a, vec![Nlri::new(*prefix)])),
            },
        }
    }
    let mut errors = 0;
    for (i, nlri) in withdrawn.iter().enumerate() {
        if !nlri.is_empty() {
            match withdrawals(FAMILIES[i], nlri, ctx) {
                Ok(us) => messages.extend(us.into_iter().map(Message::Update)),
                Err(_) => errors += nlri.len() as u64,
            }
        }
    }
    let mut unsent: Vec<IpNet> = Vec::new();
    for (family, attrs, nlri) in announced {
        match announcements(attrs.attributes(), attrs.next_hop(), family, &nlri, ctx) {
            Ok(us) => messages.extend(us.into_iter().map(Message::Update)),
            Err(_) => {
                errors += nlri.len() as u64;
                unsent.extend(nlri.iter().map(|n| n.prefix));
            }
        }
    }
    for prefix in unsent {
        set_entry(sp, group, member, prefix, None);
    }
    errors
}

/// Record that `member` has `own` for `prefix`, as an exception or, when
/// it is what the group has, as none.
fn set_entry(
    sp: &mut Speaker,
    group: &mut Group,
    member: PeerId,
    prefix: IpNet,
    own: Option<Arc<PathAttrs>>,
) {
    let has = group.out.sent.get(&prefix).cloned();
    let entries = group.exceptions.remove(&prefix).unwrap_or_default();
    account(&mut sp.peers, &prefix, &entries, has.is_some(), -1);
    let mut entries: Vec<Entry> = entries;
    let mut spent: Vec<Arc<PathAttrs>> = Vec::new();
    if let Some(at) = entries.iter().position(|(m, _)| *m == member) {
        let (_, old) = entries.swap_remove(at);
        spent.extend(old);
    }
    if !same(own.as_ref(), has.as_ref()) {
        entries.push((member, own));
    } else {
        spent.extend(own);
    }
    account(&mut sp.peers, &prefix, &entries, has.is_some(), 1);
    if !entries.is_empty() {
        group.exceptions.insert(prefix, entries);
    }
    drop(has);
    for a in spent {
        sp.exports.release(a);
    }
}

/// Pack a group's prefixes into UPDATEs after `out`, and empty it; how
/// many could not be (an attribute set too big to send: no member has
/// those routes).
fn pack(
    adj: &mut AdjOut,
    exports: &mut AttrTable,
    (family, attrs): (Family, &Arc<PathAttrs>),
    nlri: &mut Vec<Nlri>,
    ctx: &Context,
    out: &mut Vec<Message>,
) -> u64 {
    let mut errors = 0;
    match announcements(attrs.attributes(), attrs.next_hop(), family, nlri, ctx) {
        Ok(us) => out.extend(us.into_iter().map(Message::Update)),
        Err(_) => {
            errors = nlri.len() as u64;
            for n in nlri.iter() {
                if let Some(old) = adj.remove(&n.prefix) {
                    exports.release(old);
                }
            }
        }
    }
    nlri.clear();
    errors
}

/// Where a route in the RIB came from, as export needs to know it.
fn source_of(sp: &Speaker, peer: PeerId) -> Source {
    if peer == sp.local {
        return Source::Local;
    }
    let config = sp.peers.get(peer as usize).and_then(Option::as_ref);
    Source::Peer {
        peer,
        ebgp: sp.rib.peer(peer).is_some_and(|i| i.ebgp),
        rr_client: config.is_some_and(|p| p.config.rr_client),
        router_id: sp
            .rib
            .peer(peer)
            .map_or(std::net::Ipv4Addr::UNSPECIFIED, |i| i.router_id),
    }
}
