//! The owner's side of the API: answers built from the speaker's state,
//! and the operator's changes carried out.

use std::net::IpAddr;
use std::time::Instant;

use axum::http::StatusCode;
use bgp::rib::{LossReason, Path, PeerId};
use bgp::session::State;
use bgp::speaker::{PeerStatus, Speaker};
use bgp::wire::{AttrValue, Capability, Family, PathAttribute};
use ipnet::IpNet;

use super::owner::Owner;
use crate::api::model::{self, Destination};
use crate::api::{done, json, Answer, ApiCall, Op, Request};

fn not_found(what: String) -> (StatusCode, String) {
    (StatusCode::NOT_FOUND, what)
}

fn bad_request(what: String) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, what)
}

pub fn answer(owner: &mut Owner, call: ApiCall) {
    let answer = answer_one(owner, call.request);
    let _ = call.reply.send(answer);
}

fn answer_one(owner: &mut Owner, request: Request) -> Answer {
    let now = Instant::now();
    let sp = &owner.speaker;
    match request {
        Request::Global => {
            let c = sp.config();
            json(model::Global {
                asn: c.local_as,
                router_id: c.router_id.to_string(),
                listen_addresses: owner
                    .info
                    .listen_addresses
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                listen_port: owner.info.listen_port,
                cluster_id: c.cluster_id.unwrap_or(c.router_id).to_string(),
                graceful_restart: owner.info.graceful_restart,
                selection_done: sp.selection_done(),
            })
        }
        Request::Neighbors => json(
            sp.peers()
                .map(|s| neighbor(owner, &s, now))
                .collect::<Vec<_>>(),
        ),
        Request::Neighbor(addr) => {
            let s = status(sp, addr)?;
            json(neighbor(owner, &s, now))
        }
        Request::AdjIn(addr, family) => {
            let s = status(sp, addr)?;
            let id = s.id;
            let mut prefixes: Vec<IpNet> = sp
                .rib()
                .adj_rib_in(id)
                .map(|(p, _)| p)
                .filter(|p| family.is_none_or(|f| Family::of(p) == f))
                .collect();
            prefixes.sort_unstable();
            prefixes.dedup();
            // Every path to those prefixes, so the reason ours lost shows.
            let accepted = prefixes
                .iter()
                .map(|p| {
                    destination(
                        sp,
                        p,
                        sp.rib().paths(p).into_iter().filter(|x| x.peer == id),
                        now,
                    )
                })
                .collect();
            let mut rejected: Vec<model::Rejected> = sp
                .rejected(id)
                .filter(|(p, _, _)| family.is_none_or(|f| Family::of(p) == f))
                .map(|(p, path_id, why)| model::Rejected {
                    prefix: p.to_string(),
                    path_id,
                    reason: format!("{why:?}"),
                })
                .collect();
            rejected.sort_by(|a, b| a.prefix.cmp(&b.prefix));
            json(model::AdjIn { accepted, rejected })
        }
        Request::AdjOut(addr, family) => {
            let s = status(sp, addr)?;
            let mut out: Vec<Destination> = sp
                .adj_rib_out(s.id)
                .filter(|(p, _)| family.is_none_or(|f| Family::of(p) == f))
                .map(|(p, attrs)| {
                    let mut r = route_of(
                        attrs.attributes(),
                        attrs.next_hop().to_string(),
                        "adj-out".into(),
                        None,
                    );
                    r.best = true;
                    Destination {
                        prefix: p.to_string(),
                        paths: vec![r],
                    }
                })
                .collect();
            out.sort_by_key(|d| d.prefix.parse::<IpNet>().ok());
            json(out)
        }
        Request::Op(addr, op) => {
            let id = status(sp, addr)?.id;
            operate(owner, id, addr, op)
        }
        Request::RibLookup(p) => {
            let found: Vec<IpNet> = lookup(sp, p).into_iter().collect();
            json(rib_destinations(owner, &found, now))
        }
        Request::RibPrefixes(family) => {
            let mut prefixes: Vec<IpNet> = sp
                .rib()
                .loc_rib()
                .map(|(p, _)| p)
                .filter(|p| family.is_none_or(|f| Family::of(p) == f))
                .collect();
            prefixes.sort_unstable();
            json(prefixes)
        }
        Request::RibPage(prefixes) => json(rib_destinations(owner, &prefixes, now)),
        Request::MrtPeers => super::mrt::peer_table(owner),
        Request::MrtPage(prefixes, first) => super::mrt::rib_page(owner, &prefixes, first),
        Request::RibSummary(family) => {
            let families = match family {
                Some(f) => vec![f],
                None => vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
            };
            let rib = sp.rib();
            json(
                families
                    .into_iter()
                    .map(|f| {
                        let (mut destinations, mut paths) = (0, 0);
                        for (p, _) in rib.loc_rib().filter(|(p, _)| Family::of(p) == f) {
                            destinations += 1;
                            paths += rib.paths(&p).len();
                        }
                        model::RibSummary {
                            family: family_name(f).into(),
                            destinations,
                            paths,
                            attribute_sets: rib.attr_set_count(),
                        }
                    })
                    .collect::<Vec<_>>(),
            )
        }
        Request::RibAdd(add) => rib_add(owner, add),
        Request::Retire => {
            owner.retire(now);
            done("left for good: every session ended with a Cease and stays down")
        }
        Request::RibDel(prefix) => {
            if owner.speaker.withdraw_origin(prefix) {
                done(format!("withdrew {}", prefix.trunc()))
            } else {
                Err(not_found(format!("{prefix}: not originated here")))
            }
        }
    }
}

/// The destinations of `prefixes` the RIB has paths to, in their order,
/// each local path saying why Kubernetes has us originate it.
fn rib_destinations(owner: &Owner, prefixes: &[IpNet], now: Instant) -> Vec<Destination> {
    let sp = &owner.speaker;
    let rib = sp.rib();
    prefixes
        .iter()
        .filter(|p| !rib.paths(p).is_empty())
        .map(|p| {
            let mut d = destination(sp, p, rib.paths(p).into_iter(), now);
            if let Some(o) = owner.origin_of(p) {
                for r in d.paths.iter_mut().filter(|r| r.source == "local") {
                    r.originated_for.clone_from(&o.why);
                }
            }
            d
        })
        .collect()
}

/// The prefix itself if the RIB has paths to it (best or not: an
/// unreachable next hop leaves paths with no best), else the longest
/// prefix with a best path covering it.
fn lookup(sp: &Speaker, p: IpNet) -> Option<IpNet> {
    let rib = sp.rib();
    if !rib.paths(&p.trunc()).is_empty() {
        return Some(p.trunc());
    }
    (0..=p.prefix_len())
        .rev()
        .filter_map(|len| IpNet::new(p.addr(), len).ok().map(|n| n.trunc()))
        .find(|n| rib.best(n).is_some())
}

fn status(sp: &Speaker, addr: IpAddr) -> Result<PeerStatus<'_>, (StatusCode, String)> {
    sp.peer_by_address(addr)
        .and_then(|id| sp.status(id))
        .ok_or_else(|| not_found(format!("{addr}: no such neighbor")))
}

fn operate(owner: &mut Owner, id: PeerId, addr: IpAddr, op: Op) -> Answer {
    let now = Instant::now();
    let sp = &mut owner.speaker;
    let unknown = |e: bgp::speaker::PeerError| not_found(e.to_string());
    match op {
        Op::Reset => {
            sp.reset_peer(now, id, "reset by the operator")
                .map_err(unknown)?;
            done(format!("{addr}: reset"))
        }
        Op::Shutdown => {
            sp.stop_peer(now, id, "shut down by the operator")
                .map_err(unknown)?;
            done(format!("{addr}: shut down"))
        }
        Op::Enable => {
            sp.start_peer(now, id).map_err(unknown)?;
            done(format!("{addr}: enabled"))
        }
        Op::SoftResetOut => {
            sp.soft_reset_out(id).map_err(unknown)?;
            done(format!("{addr}: sending everything again"))
        }
        Op::SoftResetIn | Op::SoftReset => {
            if op == Op::SoftReset {
                sp.soft_reset_out(id).map_err(unknown)?;
            }
            if sp.soft_reset_in(id).map_err(unknown)? {
                done(format!("{addr}: asked for a route refresh"))
            } else {
                Err((
                    StatusCode::CONFLICT,
                    format!("{addr}: the session is not up with route refresh"),
                ))
            }
        }
    }
}

fn rib_add(owner: &mut Owner, add: model::RibAdd) -> Answer {
    let prefix: IpNet = add
        .prefix
        .parse()
        .map_err(|_| bad_request(format!("{}: not a prefix", add.prefix)))?;
    let next_hop: IpAddr = match &add.next_hop {
        Some(nh) => nh
            .parse()
            .map_err(|_| bad_request(format!("{nh}: not a next hop address")))?,
        None => match prefix {
            IpNet::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            IpNet::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        },
    };
    if next_hop.is_ipv4() != prefix.addr().is_ipv4() && !next_hop.is_unspecified() {
        // IPv4 routes over IPv6 next hops (RFC 8950) are not originated here.
        return Err(bad_request(format!(
            "{next_hop}: the next hop must be of the prefix's family"
        )));
    }
    let mut attrs = super::community_attributes(&add.communities, &add.large_communities)
        .map_err(bad_request)?;
    if let Some(med) = add.med {
        attrs.push(PathAttribute::new(AttrValue::MultiExitDisc(med)));
    }
    if let Some(lp) = add.local_pref {
        attrs.push(PathAttribute::new(AttrValue::LocalPref(lp)));
    }
    owner
        .speaker
        .originate(Instant::now(), prefix, &attrs, next_hop);
    done(format!("originated {}", prefix.trunc()))
}

fn family_name(f: Family) -> &'static str {
    if f == Family::IPV6_UNICAST {
        "ipv6"
    } else {
        "ipv4"
    }
}

fn state_name(s: &PeerStatus<'_>) -> String {
    format!("{:?}", s.state)
}

fn neighbor(owner: &Owner, s: &PeerStatus<'_>, now: Instant) -> model::Neighbor {
    let n = s.negotiated;
    let ours = s.config.session.open();
    let counts = |c: [usize; 2]| model::FamilyCounts {
        ipv4: c[0],
        ipv6: c[1],
    };
    model::Neighbor {
        address: s.config.address.to_string(),
        asn: s.config.session.peer_as,
        description: owner
            .peer_settings(s.id)
            .and_then(|p| p.neighbor.description.clone()),
        state: state_name(s),
        admin_down: !s.enabled && s.state == State::Idle,
        uptime_seconds: s.since.map(|t| now.saturating_duration_since(t).as_secs()),
        router_id: n.map(|n| n.peer_id.to_string()),
        local_address: s.local_address.map(|a| a.to_string()),
        hold_time: n.map(|n| n.hold_time),
        keepalive: n.map(|n| n.keepalive),
        configured_hold_time: s.config.session.hold_time,
        families: n
            .map(|n| {
                n.families
                    .iter()
                    .map(|f| family_name(*f).to_string())
                    .collect()
            })
            .unwrap_or_default(),
        received: counts(s.received),
        accepted: counts(s.accepted),
        advertised: counts(s.advertised),
        capabilities_sent: ours.capabilities().map(describe_capability).collect(),
        capabilities_received: n
            .map(|n| {
                n.peer_capabilities
                    .iter()
                    .map(describe_capability)
                    .collect()
            })
            .unwrap_or_default(),
        messages: model::Messages {
            updates_received: s.counters.updates_received,
            updates_sent: s.counters.updates_sent,
            update_errors: s.counters.update_errors,
            established_transitions: s.counters.established,
        },
        last_error: s.last_down.map(super::describe_down),
        stale: s
            .stale
            .iter()
            .map(|f| family_name(*f).to_string())
            .collect(),
        bfd: bfd_summary(owner, s.id, s.config.address, now),
    }
}

/// BFD as the owner last heard of it, for a peer that has it.
fn bfd_summary(
    owner: &Owner,
    id: PeerId,
    peer: IpAddr,
    now: Instant,
) -> Option<model::NeighborBfd> {
    let settings = owner.peer_settings(id)?;
    let b = settings.neighbor.bfd;
    if !b.enabled || owner.bfd.is_none() {
        return None;
    }
    let (state, diagnostic, since) = match owner.bfd_status.get(&peer) {
        None => ("waiting for the peer", None, None),
        Some((event, at)) => {
            let (state, diag) = match event {
                bfd::Event::Up => ("Up", None),
                bfd::Event::Down { diag } => ("Down", Some(crate::bfd_io::describe(*diag))),
                bfd::Event::PeerAdminDown => ("AdminDown (by the peer)", None),
                bfd::Event::AdminDown => ("AdminDown", None),
            };
            let at = at.into_std();
            (
                state,
                diag,
                Some(now.saturating_duration_since(at).as_secs()),
            )
        }
    };
    Some(model::NeighborBfd {
        state: state.into(),
        diagnostic,
        since_seconds: since,
        min_rx_ms: b.min_rx,
        min_tx_ms: b.min_tx,
        multiplier: b.multiplier,
    })
}

fn describe_capability(c: &Capability) -> String {
    match c {
        Capability::Multiprotocol(f) => format!("multiprotocol {f}"),
        Capability::RouteRefresh => "route-refresh".into(),
        Capability::EnhancedRouteRefresh => "enhanced-route-refresh".into(),
        Capability::ExtendedMessage => "extended-message".into(),
        Capability::FourOctetAs(asn) => format!("4-octet-as {asn}"),
        Capability::GracefulRestart(g) => format!(
            "graceful-restart time {}{}{} families [{}]",
            g.time,
            if g.restart_state() { " restarting" } else { "" },
            if g.notification() {
                " notification"
            } else {
                ""
            },
            g.families
                .iter()
                .map(|f| format!(
                    "{}{}",
                    f.family,
                    if f.forwarding_preserved() {
                        " (forwarding kept)"
                    } else {
                        ""
                    }
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Capability::AddPath(v) => format!(
            "add-path [{}]",
            v.iter()
                .map(|a| format!("{} {:?}", a.family, a.mode))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Capability::Fqdn(f) => format!("hostname {}", f.hostname),
        other => format!("{other:?}"),
    }
}

fn destination<'a>(
    sp: &Speaker,
    prefix: &IpNet,
    paths: impl Iterator<Item = &'a Path>,
    now: Instant,
) -> Destination {
    let clock = sp.clock(now);
    Destination {
        prefix: prefix.to_string(),
        paths: paths
            .map(|p| {
                let source = if p.peer == sp.local_peer() {
                    "local".to_string()
                } else {
                    sp.status(p.peer)
                        .map_or_else(|| format!("#{}", p.peer), |s| s.config.address.to_string())
                };
                let mut r = route_of(
                    p.attrs.attributes(),
                    p.attrs.next_hop().to_string(),
                    source,
                    p.reason(),
                );
                r.best = p.is_best();
                r.multipath = p.is_multipath();
                r.stale = p.stale;
                r.path_id = p.path_id;
                r.age_seconds = u64::from(clock.saturating_sub(p.since));
                r
            })
            .collect(),
    }
}

fn route_of(
    attributes: &[PathAttribute],
    next_hop: String,
    source: String,
    reason: Option<LossReason>,
) -> model::Route {
    let mut r = model::Route {
        best: false,
        multipath: false,
        reason: reason.map(|x| format!("{x:?}")),
        source,
        next_hop,
        as_path: String::new(),
        origin: "?".into(),
        med: None,
        local_pref: None,
        communities: Vec::new(),
        large_communities: Vec::new(),
        extended_communities: Vec::new(),
        originator_id: None,
        cluster_list: Vec::new(),
        age_seconds: 0,
        stale: false,
        path_id: 0,
        originated_for: Vec::new(),
    };
    for a in attributes {
        match &a.value {
            AttrValue::Origin(o) => r.origin = o.to_string(),
            AttrValue::AsPath(p) => r.as_path = p.to_string(),
            AttrValue::MultiExitDisc(m) => r.med = Some(*m),
            AttrValue::LocalPref(l) => r.local_pref = Some(*l),
            AttrValue::Communities(c) => {
                r.communities = c.iter().map(ToString::to_string).collect()
            }
            AttrValue::LargeCommunities(c) => {
                r.large_communities = c.iter().map(ToString::to_string).collect()
            }
            AttrValue::ExtendedCommunities(c) => {
                r.extended_communities = c.iter().map(ToString::to_string).collect()
            }
            AttrValue::OriginatorId(id) => r.originator_id = Some(id.to_string()),
            AttrValue::ClusterList(ids) => {
                r.cluster_list = ids.iter().map(ToString::to_string).collect()
            }
            _ => {}
        }
    }
    r
}
