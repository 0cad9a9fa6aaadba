//! A peer's UPDATEs into the RIB: RFC 7606 outcomes, import policy,
//! End-of-RIB and route refresh markers, and the prefix limit.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use ipnet::IpNet;

use super::peer::TurnedAway;
use super::{HashMap, Speaker};
use crate::policy::Rejection;
use crate::rib::{PathAttrs, PeerId};
use crate::session::Event;
use crate::wire::{Family, Nlri, RouteRefresh, RouteRefreshSubtype};
use crate::wire::{RouteRefreshSubtype as Subtype, Update};

pub(super) fn update(sp: &mut Speaker, now: Instant, id: PeerId, u: Update) {
    let Some(peer) = sp.peers.get_mut(id as usize).and_then(Option::as_mut) else {
        return;
    };
    peer.counters.updates_received += 1;
    if !u.errors.is_empty() {
        peer.counters.update_errors += 1;
    }
    let Some(neg) = &peer.negotiated else { return };
    let (families, four_octet) = (neg.families.clone(), neg.four_octet_as);
    if let Some(family) = u.as_end_of_rib() {
        end_of_rib(sp, id, family);
        return;
    }

    // RFC 7606 §5.3 / RFC 4760 §7: a malformed MP attribute turns its
    // family off for the rest of the session, routes withdrawn.
    for family in u.families_to_disable() {
        if !peer.disabled.contains(&family) {
            peer.disabled.push(family);
            sp.rib.withdraw_family(id, family);
        }
    }
    let usable = |f: Family| families.contains(&f) && !peer.disabled.contains(&f);
    let withdraw_all = u.treat_as_withdraw();

    let mut gone: Vec<Nlri> = Vec::new();
    if usable(Family::IPV4_UNICAST) {
        gone.extend_from_slice(&u.withdrawn);
    }
    if let Some(r) = u.mp_unreach().filter(|r| usable(r.family)) {
        gone.extend_from_slice(&r.withdrawn);
    }
    // Withdrawn by the peer; the rest of `gone`, announcements RFC 7606
    // turned into withdrawals.
    let withdrawn = gone.len();

    let attributes = if four_octet {
        Cow::Borrowed(&u.attributes[..])
    } else {
        u.as4_merged()
    };
    let mut groups: Vec<(PathAttrs, &[Nlri])> = Vec::new();
    if !u.nlri.is_empty() && usable(Family::IPV4_UNICAST) {
        match u.next_hop() {
            Some(nh) if !withdraw_all => groups.push((
                PathAttrs::new(&attributes, crate::wire::NextHop::V4(nh)),
                &u.nlri,
            )),
            _ => gone.extend_from_slice(&u.nlri),
        }
    }
    if let Some(r) = u.mp_reach().filter(|r| usable(r.family)) {
        if withdraw_all {
            gone.extend_from_slice(&r.nlri);
        } else {
            groups.push((PathAttrs::new(&attributes, r.next_hop), &r.nlri));
        }
    }

    if withdraw_all {
        peer.counters.treat_as_withdraw_updates += 1;
        peer.counters.treat_as_withdraw_prefixes += (gone.len() - withdrawn) as u64;
    }
    // A withdrawal that finds nothing, accepted or turned away, repeats
    // one (or withdraws what never came).
    let rejected_before = peer.rejected.len();
    forget_rejected(&mut peer.rejected, &gone[..withdrawn]);
    let found = rejected_before - peer.rejected.len() + sp.rib.withdraw(id, &gone[..withdrawn]);
    peer.counters.duplicate_withdraws += withdrawn.saturating_sub(found) as u64;
    forget_rejected(&mut peer.rejected, &gone[withdrawn..]);
    sp.rib.withdraw(id, &gone[withdrawn..]);

    let mut touched: Vec<Family> = Vec::new();
    // The UPDATE's attributes fail a loop check once, whatever families
    // it carries.
    let mut looped = None;
    for (attrs, nlri) in groups {
        if let Some(first) = nlri.first() {
            let family = Family::of(&first.prefix);
            if !touched.contains(&family) {
                touched.push(family);
            }
        }
        if let Err(why) = peer.import.check_attrs(&attrs) {
            looped = Some(why);
            let attrs = Arc::new(attrs);
            for n in nlri {
                let turned = TurnedAway {
                    why,
                    attrs: Arc::clone(&attrs),
                };
                peer.rejected
                    .insert((n.prefix, n.path_id.unwrap_or(0)), turned);
            }
            sp.rib.withdraw(id, nlri);
            continue;
        }
        // Most UPDATEs have every prefix permitted (most peers have no
        // prefix list): then the NLRI go to the RIB as they are, uncopied.
        let permitted = |n: &Nlri| peer.import.check_prefix(&n.prefix).is_ok();
        let (ok, denied): (Cow<'_, [Nlri]>, Vec<Nlri>) = if nlri.iter().all(permitted) {
            (Cow::Borrowed(nlri), Vec::new())
        } else {
            let (ok, denied) = nlri.iter().partition(|n| permitted(n));
            (Cow::Owned(ok), denied)
        };
        if !denied.is_empty() {
            let attrs = Arc::new(attrs.clone());
            for n in &denied {
                let turned = TurnedAway {
                    why: Rejection::Filtered,
                    attrs: Arc::clone(&attrs),
                };
                peer.rejected
                    .insert((n.prefix, n.path_id.unwrap_or(0)), turned);
            }
        }
        forget_rejected(&mut peer.rejected, &ok);
        sp.rib.withdraw(id, &denied);
        sp.rib.announce(id, &ok, attrs);
    }

    match looped {
        Some(Rejection::AsPathLoop) => peer.counters.as_path_loops += 1,
        Some(Rejection::OriginatorLoop) => peer.counters.originator_loops += 1,
        Some(Rejection::ClusterLoop) => peer.counters.cluster_loops += 1,
        Some(Rejection::Filtered) | None => {}
    }

    // RFC 4486: past the limit, the session ends with a Cease saying so.
    let over = touched
        .into_iter()
        .find_map(|f| peer.import.check_count(f, sp.rib.peer_path_count(id, f)));
    if let Some(cease) = over {
        sp.session_event(now, id, Event::Fail(cease));
    }
}

/// Paths announced anew or withdrawn are no longer rejected. Most peers
/// have none rejected: then not even a hash is computed per path.
fn forget_rejected(rejected: &mut HashMap<(IpNet, u32), TurnedAway>, nlri: &[Nlri]) {
    if rejected.is_empty() {
        return;
    }
    for n in nlri {
        rejected.remove(&(n.prefix, n.path_id.unwrap_or(0)));
    }
}

/// End-of-RIB: the peer's table for `family` is complete. Stale routes it
/// did not re-announce go, and a deferred selection may run.
fn end_of_rib(sp: &mut Speaker, id: PeerId, family: Family) {
    let Some(peer) = sp.peers.get_mut(id as usize).and_then(Option::as_mut) else {
        return;
    };
    if !peer.end_of_rib.contains(&family) {
        peer.end_of_rib.push(family);
    }
    if peer.helper.end_of_rib(family).is_some() {
        sp.rib.sweep_stale(id, family);
    }
    if let Some(d) = &mut sp.deferral {
        d.end_of_rib(&id, family);
    }
}

/// A ROUTE-REFRESH: a request for our routes again, or the peer's own
/// re-send beginning or ending (RFC 7313 §4).
pub(super) fn route_refresh(sp: &mut Speaker, id: PeerId, r: RouteRefresh) {
    let Some(peer) = sp.peers.get_mut(id as usize).and_then(Option::as_mut) else {
        return;
    };
    let Some(neg) = &peer.negotiated else { return };
    if !neg.families.contains(&r.family) {
        return;
    }
    match r.subtype {
        Subtype::Normal => peer.out.refresh.push(r.family),
        RouteRefreshSubtype::BeginningOfRouteRefresh => sp.rib.mark_stale(id, r.family),
        RouteRefreshSubtype::EndOfRouteRefresh => sp.rib.sweep_stale(id, r.family),
        _ => {}
    }
}
