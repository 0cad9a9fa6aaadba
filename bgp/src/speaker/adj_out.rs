//! Each peer's Adj-RIB-Out, and building its UPDATEs. Route changes only
//! mark prefixes here; [`flush`] later works out what each marked prefix
//! now exports, groups the prefixes by exported attribute set and packs
//! each group into as few UPDATEs as the session's message size allows.

type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use std::sync::Arc;
use std::time::Instant;

use ipnet::IpNet;

use super::{conn, Speaker};
use crate::export::{export, Source, Target};
use crate::rib::{keep_small, AttrTable, PathAttrs, PeerId};
use crate::table::{Position, PrefixMap};
use crate::wire::pack::{announcements, withdrawals};
use crate::wire::{Family, Message, Nlri, RouteRefresh, RouteRefreshSubtype, Update};

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

fn slot(family: Family) -> usize {
    usize::from(family == Family::IPV6_UNICAST)
}

#[derive(Debug, Default)]
pub(super) struct AdjOut {
    /// What the peer was sent and not withdrawn: a map sized for full
    /// tables, as a reflector or route server keeps one per peer.
    pub sent: PrefixMap<Arc<PathAttrs>>,
    /// Prefixes to look at again, in the order they were marked. A prefix
    /// may be in it twice (marked again before a flush): the flush finds
    /// it sent the second time and passes over it, which costs less than
    /// a set of a full table's prefixes per peer to keep it out.
    dirty: Vec<IpNet>,
    /// Families owing End-of-RIB once the first table is out.
    eor_due: Vec<Family>,
    /// Families the peer asked to have again (ROUTE-REFRESH), not yet begun.
    pub refresh: Vec<Family>,
    /// Families owing End-of-Route-Refresh (RFC 7313) once re-sent.
    eorr_due: Vec<Family>,
    /// No announcements before this (MRAI); withdrawals go at once.
    mrai_until: Option<Instant>,
    counts: [usize; 2],
}

impl AdjOut {
    /// A new session: nothing sent yet, End-of-RIB owed for its families.
    pub fn start(&mut self, families: &[Family]) {
        self.eor_due = families.to_vec();
    }

    /// Forget everything, giving the attribute sets back.
    pub fn clear(&mut self, table: &mut AttrTable) {
        for attrs in std::mem::take(&mut self.sent).into_values() {
            table.release(attrs);
        }
        *self = AdjOut::default();
    }

    pub fn mark_all<'a>(&mut self, prefixes: impl Iterator<Item = &'a IpNet>) {
        self.dirty.extend(prefixes.copied());
    }

    /// Nothing to send: no marked prefix, no refresh, no marker owed.
    fn idle(&self) -> bool {
        self.dirty.is_empty()
            && self.refresh.is_empty()
            && self.eor_due.is_empty()
            && self.eorr_due.is_empty()
    }

    /// Routes in the Adj-RIB-Out, per family.
    pub fn counts(&self) -> [usize; 2] {
        self.counts
    }

    /// When held-back announcements may go.
    pub fn poll_at(&self) -> Option<Instant> {
        self.mrai_until.filter(|_| !self.dirty.is_empty())
    }

    /// Record `attrs` as sent for `prefix`: `None` if they already were,
    /// else what they replace (`Some(None)`: the prefix was not sent).
    /// `at` is where the prefix was found beforehand, if it was.
    fn replace(
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

    fn remove(&mut self, prefix: &IpNet) -> Option<Arc<PathAttrs>> {
        let old = self.sent.remove(prefix);
        if old.is_some() {
            self.counts[slot(Family::of(prefix))] -= 1;
        }
        old
    }
}

/// Where the routes of every peer come from, as export needs to know it;
/// the same for every peer flushed in one poll.
pub(super) fn sources(sp: &Speaker) -> Vec<Source> {
    (0..sp.peers.len().max(sp.local as usize + 1) as PeerId)
        .map(|p| source_of(sp.local, &sp.peers, &sp.rib, p))
        .collect()
}

/// Work out and queue what the peer must be sent now. `sources` is
/// [`sources`], made by the first peer with something to send: a reflector
/// flushing a thousand clients must not make it a thousand times.
pub(super) fn flush(sp: &mut Speaker, now: Instant, id: PeerId, sources: &mut Option<Vec<Source>>) {
    if !sp.selected {
        return;
    }
    // Every poll comes here for every peer: leave at once when idle.
    if !sp
        .peer(id)
        .is_some_and(|p| p.negotiated.is_some() && !p.out.idle())
    {
        return;
    }
    let sources = sources.get_or_insert_with(|| self::sources(sp));
    let Some(peer) = sp.peers.get_mut(id as usize).and_then(Option::as_mut) else {
        return;
    };
    let Some(neg) = &peer.negotiated else { return };
    let families = neg.families.clone();
    let enhanced = neg.enhanced_route_refresh;
    let ctx = neg.tx();
    let subnet = peer.main.local;
    let local = subnet.map(|l| l.addr());
    let target = Target {
        peer: id,
        local_as: sp.config.local_as,
        ebgp: neg.peer_as != sp.config.local_as,
        rr_client: peer.config.rr_client,
        next_hop_self: peer.config.next_hop_self,
        local_v4: match local {
            Some(std::net::IpAddr::V4(a)) => Some(a),
            _ => peer.config.next_hop_v4,
        },
        local_v6: match local {
            Some(std::net::IpAddr::V6(a)) if !is_link_local(a) => Some(a),
            _ => peer.config.next_hop_v6,
        },
        local_v6_link_local: match local {
            Some(std::net::IpAddr::V6(a)) if is_link_local(a) => Some(a),
            _ => None,
        },
        shared_subnet: subnet
            .map(|l| l.trunc())
            .filter(|n| n.prefix_len() < n.max_prefix_len() && n.contains(&peer.config.address)),
        peer_address: peer.config.address,
        cluster_id: sp.config.cluster_id.unwrap_or(sp.config.router_id),
        route_reflector: true,
        four_octet_as: ctx.four_octet_as,
    };

    // Re-send whole families the peer asked for, framed by BoRR / EoRR.
    let mut messages: Vec<Message> = Vec::new();
    let refresh = std::mem::take(&mut peer.out.refresh);
    for family in refresh.into_iter().filter(|f| families.contains(f)) {
        if enhanced {
            messages.push(Message::RouteRefresh(RouteRefresh::new(
                family,
                RouteRefreshSubtype::BeginningOfRouteRefresh,
            )));
            peer.out.eorr_due.push(family);
        }
        let gone: Vec<IpNet> = peer
            .out
            .sent
            .iter()
            .map(|(p, _)| p)
            .filter(|p| Family::of(p) == family)
            .collect();
        for p in gone {
            if let Some(a) = peer.out.remove(&p) {
                sp.exports.release(a);
            }
        }
        let prefixes: Vec<IpNet> = sp
            .rib
            .loc_rib()
            .map(|(p, _)| p)
            .filter(|p| Family::of(p) == family)
            .collect();
        peer.out.mark_all(prefixes.iter());
    }

    let held = peer.out.mrai_until.is_some_and(|t| now < t);
    // UPDATEs packed before the groups are complete, and routes too big
    // to go.
    let mut packed: Vec<Message> = Vec::new();
    let mut encode_errors = 0;
    let mut cache: HashMap<(usize, PeerId), Option<Arc<PathAttrs>>> = HashMap::default();
    let mut groups: Vec<(Family, Arc<PathAttrs>, Vec<Nlri>)> = Vec::new();
    let mut group_of: HashMap<(Family, usize), usize> = HashMap::default();
    let mut withdrawn: [Vec<Nlri>; 2] = [Vec::new(), Vec::new()];
    let mut keep: Vec<IpNet> = Vec::new();
    let mut dirty = std::mem::take(&mut peer.out.dirty);

    // Each prefix's place in the RIB and in what was sent, found first:
    // lookups back to back overlap their cache misses.
    // A prefix whose best path changed in this poll has it at hand, in a
    // map the size of one pass, where the RIB's is the size of the table.
    // Buffers of this size are kept from one flush to the next: fresh,
    // they would be pages mapped and faulted in each time.
    // A block at a time: what the lookups brought into the cache is
    // still there when the block's prefixes are worked on.
    let bests = &sp.scratch.bests;
    let found = &mut sp.scratch.found;
    for block in dirty.chunks(LOOKAHEAD) {
        found.clear();
        found.extend(block.iter().map(|p| {
            let in_rib = match bests.contains_key(p) {
                true => None,
                false => sp.rib.locate(p),
            };
            (in_rib, peer.out.sent.locate(p))
        }));
        for (&prefix, &(in_rib, in_sent)) in block.iter().zip(found.iter()) {
            let family = Family::of(&prefix);
            if !families.contains(&family) {
                continue;
            }
            let best = match bests.get(&prefix) {
                Some(route) => route.as_ref().map(|r| (&r.attrs, r.peer)),
                None => sp.rib.best_at(in_rib, &prefix).map(|p| (&p.attrs, p.peer)),
            };
            let new = best.and_then(|(attrs, from)| {
                let key = (Arc::as_ptr(attrs) as usize, from);
                cache
                    .entry(key)
                    .or_insert_with(|| {
                        let source = sources.get(from as usize)?;
                        export(attrs, source, &target).map(|a| sp.exports.intern(a))
                    })
                    .clone()
            });
            let Some(new) = new else {
                if let Some(old) = peer.out.remove(&prefix) {
                    sp.exports.release(old);
                    withdrawn[slot(family)].push(Nlri::new(prefix));
                }
                continue;
            };
            if held {
                // Sent after the interval, if still new then.
                if !peer
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
            let Some(old) = peer.out.replace(prefix, in_sent, &new) else {
                continue; // the same as sent
            };
            if let Some(old) = old {
                sp.exports.release(old);
            }
            let k = (family, Arc::as_ptr(&new) as usize);
            let pool = &mut sp.scratch.nlri;
            let at = *group_of.entry(k).or_insert_with(|| {
                groups.push((family, Arc::clone(&new), pool.pop().unwrap_or_default()));
                groups.len() - 1
            });
            groups[at].2.push(Nlri::new(prefix));
            if groups[at].2.len() >= PACK_AT {
                let (family, attrs, nlri) = &mut groups[at];
                let (adj, exports) = (&mut peer.out, &mut sp.exports);
                encode_errors += pack(adj, exports, (*family, attrs), nlri, &ctx, &mut packed);
            }
        }
    }
    drop(cache);
    sp.scratch.found.clear();
    keep_small(&mut sp.scratch.found);
    dirty.clear();
    keep_small(&mut dirty);
    peer.out.dirty = dirty;
    // Held back: once each, however often marked meanwhile.
    keep.sort_unstable();
    keep.dedup();
    peer.out.mark_all(keep.iter());
    // The positions found above are used: a table withdrawn from this
    // peer gives its memory back.
    peer.out.sent.compact();

    for (i, nlri) in withdrawn.iter().enumerate() {
        if !nlri.is_empty() {
            match withdrawals(FAMILIES[i], nlri, &ctx) {
                Ok(us) => messages.extend(us.into_iter().map(Message::Update)),
                Err(_) => encode_errors += nlri.len() as u64,
            }
        }
    }
    messages.append(&mut packed);
    let announced = !groups.is_empty();
    for (family, attrs, mut nlri) in groups {
        let (adj, exports) = (&mut peer.out, &mut sp.exports);
        encode_errors += pack(
            adj,
            exports,
            (family, &attrs),
            &mut nlri,
            &ctx,
            &mut messages,
        );
        keep_small(&mut nlri);
        if sp.scratch.nlri.len() < 8 {
            sp.scratch.nlri.push(nlri);
        }
    }
    if peer.out.dirty.is_empty() {
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
    let mrai = peer.config.mrai;
    let updates = messages
        .iter()
        .filter(|m| matches!(m, Message::Update(_)))
        .count() as u64;
    peer.counters.updates_sent += updates;
    peer.counters.encode_errors += encode_errors;
    if announced && !mrai.is_zero() {
        let wait = sp.jitter(mrai);
        if let Some(peer) = sp.peers.get_mut(id as usize).and_then(Option::as_mut) {
            peer.out.mrai_until = Some(now + wait);
        }
    }
    for m in messages {
        conn::send(sp, id, m);
    }
}

/// Pack a group's prefixes into UPDATEs after `out`, and empty it; how
/// many could not be (an attribute set too big to send: the peer does not
/// have those routes).
fn pack(
    adj: &mut AdjOut,
    exports: &mut AttrTable,
    (family, attrs): (Family, &Arc<PathAttrs>),
    nlri: &mut Vec<Nlri>,
    ctx: &crate::wire::Context,
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
fn source_of(
    local: PeerId,
    peers: &[Option<super::Peer>],
    rib: &crate::rib::Rib,
    peer: PeerId,
) -> Source {
    if peer == local {
        return Source::Local;
    }
    let config = peers.get(peer as usize).and_then(Option::as_ref);
    Source::Peer {
        peer,
        ebgp: rib.peer(peer).is_some_and(|i| i.ebgp),
        rr_client: config.is_some_and(|p| p.config.rr_client),
        router_id: rib
            .peer(peer)
            .map_or(std::net::Ipv4Addr::UNSPECIFIED, |i| i.router_id),
    }
}

fn is_link_local(a: std::net::Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}
