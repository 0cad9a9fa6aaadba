//! What each peer is sent of the Loc-RIB, and with which attributes:
//! split horizon, route reflection (RFC 4456), eBGP and iBGP rules
//! (RFC 4271 §5.1, §9.1.3), well-known communities (RFC 1997), and AS4_PATH
//! for 2-octet peers (RFC 6793).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::rib::{PathAttrs, PeerId, DEFAULT_LOCAL_PREF};
use crate::wire::{AsPath, AttrType, AttrValue, Community, NextHop, PathAttribute, Update};

/// Where a route came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Originated by this speaker.
    Local,
    /// Learned from a peer.
    Peer {
        peer: PeerId,
        ebgp: bool,
        /// The peer is one of our route reflector clients.
        rr_client: bool,
        /// The peer's BGP identifier, which becomes ORIGINATOR_ID when reflected.
        router_id: Ipv4Addr,
    },
}

/// The peer a route is exported to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub peer: PeerId,
    pub local_as: u32,
    pub ebgp: bool,
    pub rr_client: bool,
    /// Set the next hop to our own address on iBGP too.
    pub next_hop_self: bool,
    /// Our addresses on the session, for next-hop-self.
    pub local_v4: Option<Ipv4Addr>,
    pub local_v6: Option<Ipv6Addr>,
    pub local_v6_link_local: Option<Ipv6Addr>,
    /// The subnet we share with the peer, when it is one hop away on it: a
    /// next hop inside it may go to an eBGP peer unchanged (RFC 4271 §5.1.3).
    pub shared_subnet: Option<IpNet>,
    /// The peer's address.
    pub peer_address: IpAddr,
    /// Our cluster id when reflecting: the router id unless configured.
    pub cluster_id: Ipv4Addr,
    /// Reflect routes between iBGP peers (we are a route reflector).
    pub route_reflector: bool,
    /// The peer negotiated 4-octet AS numbers.
    pub four_octet_as: bool,
}

/// The attributes to send `target` for a route with `attrs` from `source`,
/// or `None` when the route must not go to that peer.
pub fn export(attrs: &PathAttrs, source: &Source, target: &Target) -> Option<PathAttrs> {
    let learned_ebgp = matches!(source, Source::Peer { ebgp: true, .. });
    if let Source::Peer {
        peer,
        ebgp,
        rr_client,
        ..
    } = source
    {
        // Never back to where it came from.
        if *peer == target.peer {
            return None;
        }
        // iBGP split horizon, opened up by route reflection (RFC 4456 §6).
        if !ebgp && !target.ebgp {
            let reflects = target.route_reflector && (*rr_client || target.rr_client);
            if !reflects {
                return None;
            }
        }
    }
    let communities = attrs.attributes().iter().find_map(|a| match &a.value {
        AttrValue::Communities(c) => Some(c.as_slice()),
        _ => None,
    });
    if let Some(c) = communities {
        if c.contains(&Community::NO_ADVERTISE) {
            return None;
        }
        if target.ebgp
            && (c.contains(&Community::NO_EXPORT) || c.contains(&Community::NO_EXPORT_SUBCONFED))
        {
            return None;
        }
    }

    let mut out: Vec<PathAttribute> = Vec::with_capacity(attrs.attributes().len() + 2);
    let mut as_path = AsPath::default();
    for a in attrs.attributes() {
        match &a.value {
            AttrValue::AsPath(p) => as_path = p.clone(),
            // Rebuilt below for 2-octet peers; never passed on as received.
            AttrValue::As4Path(_) | AttrValue::As4Aggregator(_) => {}
            // LOCAL_PREF stays inside the AS (RFC 4271 §5.1.5).
            AttrValue::LocalPref(_) if target.ebgp => {}
            // A MED learned from one AS goes to no other (RFC 4271 §5.1.4).
            AttrValue::MultiExitDisc(_) if target.ebgp && learned_ebgp => {}
            // RFC 4456 attributes do not leave the AS.
            AttrValue::OriginatorId(_) | AttrValue::ClusterList(_) if target.ebgp => {}
            _ => out.push(a.clone()),
        }
    }
    Update::prepare_unknown_for_propagation(&mut out);

    if target.ebgp {
        as_path.prepend(target.local_as);
    } else if !out.iter().any(|a| a.type_code() == AttrType::LocalPref) {
        out.push(PathAttribute::new(AttrValue::LocalPref(DEFAULT_LOCAL_PREF)));
    }

    // Reflection between iBGP peers (RFC 4456 §8).
    if let Source::Peer {
        ebgp: false,
        router_id,
        ..
    } = source
    {
        if !target.ebgp {
            if !out.iter().any(|a| a.type_code() == AttrType::OriginatorId) {
                out.push(PathAttribute::new(AttrValue::OriginatorId(*router_id)));
            }
            match out
                .iter_mut()
                .find(|a| a.type_code() == AttrType::ClusterList)
            {
                Some(PathAttribute {
                    value: AttrValue::ClusterList(ids),
                    ..
                }) => ids.insert(0, target.cluster_id),
                _ => out.push(PathAttribute::new(AttrValue::ClusterList(vec![
                    target.cluster_id,
                ]))),
            }
        }
    }

    if !target.four_octet_as {
        if let Some(as4) = as_path.as4_path() {
            out.push(PathAttribute::new(AttrValue::As4Path(as4)));
        }
    }
    out.push(PathAttribute::new(AttrValue::AsPath(as_path)));

    // A route we originate goes with our address unless it names a next
    // hop of its own (a static route to a third party, say).
    let local_self = matches!(source, Source::Local) && attrs.next_hop_addr().is_unspecified();
    let ebgp_self = target.ebgp && !third_party(attrs.next_hop_addr(), target);
    let next_hop = if target.next_hop_self || local_self || ebgp_self {
        self_next_hop(attrs.next_hop(), target)?
    } else if target.ebgp {
        // A third party's global address; the link-local we hold is for the
        // link we learned it on, which need not be this peer's (RFC 2545 §3).
        match attrs.next_hop() {
            NextHop::V6 { global, .. } => NextHop::V6 {
                global,
                link_local: None,
            },
            v4 => v4,
        }
    } else {
        attrs.next_hop()
    };
    // By type code, as RFC 4271 §5 asks; flags (Partial) stay as set.
    out.sort_by_key(|a| u8::from(a.type_code()));
    Some(PathAttrs::new(&out, next_hop))
}

/// A next hop an eBGP peer can be sent as it is: another router on the
/// subnet we share with the peer (RFC 4271 §5.1.3), so the peer's traffic
/// goes straight to it instead of through us.
fn third_party(next_hop: IpAddr, target: &Target) -> bool {
    target.shared_subnet.is_some_and(|net| {
        net.contains(&next_hop) && next_hop != target.peer_address && !next_hop.is_unspecified()
    })
}

/// Our own address as next hop, in the family of the route's next hop;
/// `None` when we have no address of that family on the session.
fn self_next_hop(current: NextHop, target: &Target) -> Option<NextHop> {
    match current {
        NextHop::V4(_) => target.local_v4.map(NextHop::V4),
        NextHop::V6 { .. } => target.local_v6.map(|global| NextHop::V6 {
            global,
            link_local: target.local_v6_link_local,
        }),
    }
}
