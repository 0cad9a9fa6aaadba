//! Graceful restart in both roles: what a helper keeps and sweeps, and a
//! restarting speaker's deferral of route selection.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use bgp::restart::{Deferral, Helper, RESTARTING_PEER_WAIT};
use bgp::rib::{PathAttrs, PeerInfo, Rib};
use bgp::session::{Down, Negotiated, PeerRestart};
use bgp::wire::iana::CeaseSubcode;
use bgp::wire::{AddPathFamilies, Cause, Family, NextHop, Nlri, Notification, Open};

const V4: Family = Family::IPV4_UNICAST;
const V6: Family = Family::IPV6_UNICAST;

/// A session with both families, where the peer offered graceful restart
/// (restart time 120 s) with these (family, forwarding preserved) entries.
fn session(restart: Option<(bool, Vec<(Family, bool)>)>) -> Negotiated {
    Negotiated {
        peer_as: 64512,
        peer_id: Ipv4Addr::new(10, 255, 0, 2),
        hold_time: 90,
        keepalive: 30,
        families: vec![V4, V6],
        four_octet_as: true,
        extended_message: false,
        route_refresh: true,
        enhanced_route_refresh: false,
        add_path_rx: AddPathFamilies::default(),
        add_path_tx: AddPathFamilies::default(),
        peer_restart: restart.map(|(notification, families)| PeerRestart {
            restart_time: 120,
            restarting: false,
            notification,
            families,
        }),
        peer_hostname: None,
        peer_capabilities: Vec::new(),
        peer_open: Open::new(64512, 90, Ipv4Addr::new(10, 255, 0, 2), Vec::new()),
    }
}

fn cease(sub: CeaseSubcode) -> Notification {
    Notification::new(Cause::Cease(sub), Vec::new())
}

#[test]
fn a_dropped_connection_keeps_the_preserved_families_until_the_restart_time() {
    let now = Instant::now();
    let mut h = Helper::new(Duration::from_secs(360));
    let kept = h.session_down(
        now,
        &session(Some((false, vec![(V4, true), (V6, true)]))),
        true,
        &Down::Closed,
    );
    assert_eq!(kept, vec![V4, V6]);
    assert_eq!(h.poll_at(), Some(now + Duration::from_secs(120)));
    assert!(h.tick(now + Duration::from_secs(119)).is_empty());
    assert_eq!(
        h.tick(now + Duration::from_secs(120)),
        vec![V4, V6],
        "the peer never came back"
    );
}

#[test]
fn a_notification_ends_graceful_restart_unless_both_sides_set_the_n_bit() {
    let now = Instant::now();
    let down = Down::Received(cease(CeaseSubcode::AdministrativeReset));
    let without_n = session(Some((false, vec![(V4, true)])));
    assert!(Helper::new(Duration::from_secs(360))
        .session_down(now, &without_n, true, &down)
        .is_empty());
    let with_n = session(Some((true, vec![(V4, true)])));
    assert!(
        Helper::new(Duration::from_secs(360))
            .session_down(now, &with_n, false, &down)
            .is_empty(),
        "we did not set N"
    );
    assert_eq!(
        Helper::new(Duration::from_secs(360)).session_down(now, &with_n, true, &down),
        vec![V4]
    );
    // A Hard Reset always drops the routes (RFC 8538 §4).
    let hard = Down::Sent(cease(CeaseSubcode::HardReset));
    assert!(Helper::new(Duration::from_secs(360))
        .session_down(now, &with_n, true, &hard)
        .is_empty());
}

#[test]
fn a_peer_without_graceful_restart_loses_its_routes_at_once() {
    let mut h = Helper::new(Duration::from_secs(360));
    assert!(h
        .session_down(Instant::now(), &session(None), true, &Down::Closed)
        .is_empty());
    assert_eq!(h.poll_at(), None);
}

#[test]
fn back_without_forwarding_state_sweeps_at_once_otherwise_at_end_of_rib() {
    let now = Instant::now();
    let mut h = Helper::new(Duration::from_secs(360));
    h.session_down(
        now,
        &session(Some((false, vec![(V4, true), (V6, true)]))),
        true,
        &Down::Closed,
    );
    // Back, with IPv4 preserved and IPv6 not.
    let later = now + Duration::from_secs(30);
    let swept = h.session_up(
        later,
        &session(Some((false, vec![(V4, true), (V6, false)]))),
    );
    assert_eq!(swept, vec![V6]);
    assert_eq!(
        h.poll_at(),
        Some(later + Duration::from_secs(360)),
        "now the stale timer runs"
    );
    assert_eq!(h.end_of_rib(V4), Some(V4));
    assert_eq!(h.end_of_rib(V4), None, "nothing stale left");
    assert_eq!(h.poll_at(), None);
}

#[test]
fn stale_routes_go_when_end_of_rib_never_comes() {
    let now = Instant::now();
    let mut h = Helper::new(Duration::from_secs(60));
    h.session_down(
        now,
        &session(Some((false, vec![(V4, true)]))),
        true,
        &Down::Closed,
    );
    h.session_up(now, &session(Some((false, vec![(V4, true)]))));
    assert_eq!(h.tick(now + Duration::from_secs(60)), vec![V4]);
}

#[test]
fn the_helper_drives_the_rib_through_a_restart() {
    let now = Instant::now();
    let mut rib = Rib::default();
    let peer = rib.add_peer(PeerInfo {
        address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        router_id: Ipv4Addr::new(10, 255, 0, 2),
        ebgp: false,
        local: false,
    });
    let attrs = || PathAttrs::new(&[], NextHop::V4(Ipv4Addr::new(10, 0, 0, 2)));
    let prefixes: Vec<Nlri> = ["10.244.1.0/24", "10.244.2.0/24"]
        .iter()
        .map(|p| Nlri::new(p.parse().expect("prefix")))
        .collect();
    rib.announce(peer, &prefixes, attrs());

    let mut h = Helper::new(Duration::from_secs(360));
    let gr = session(Some((false, vec![(V4, true)])));
    for f in h.session_down(now, &gr, true, &Down::Closed) {
        rib.mark_stale(peer, f);
    }
    drop(rib.take_changes());
    assert_eq!(
        rib.prefix_count(),
        2,
        "routes stay in place through the restart"
    );

    for f in h.session_up(now, &gr) {
        rib.sweep_stale(peer, f);
    }
    rib.announce(peer, &prefixes[..1], attrs());
    assert!(
        rib.take_changes().is_empty(),
        "re-learning a kept route changes nothing"
    );
    if let Some(f) = h.end_of_rib(V4) {
        rib.sweep_stale(peer, f);
    }
    let changes = rib.take_changes();
    assert_eq!(changes.len(), 1, "only the route not re-sent goes");
    assert_eq!(changes[0].prefix, prefixes[1].prefix);
    assert!(changes[0].best.is_none());
}

#[test]
fn selection_waits_for_every_end_of_rib() {
    let now = Instant::now();
    let mut d: Deferral<u32> = Deferral::new(now, Duration::from_secs(180));
    assert!(!d.ready(now, false), "no peer up yet");
    d.peer_up(now, 1, &[V4, V6], false);
    d.peer_up(now, 2, &[V4], false);
    d.end_of_rib(&1, V4);
    d.end_of_rib(&1, V6);
    assert!(!d.ready(now, true), "peer 2 still owes IPv4");
    d.peer_down(&2);
    assert!(d.ready(now, true));
    // Once selection ran, it does not wait again.
    d.peer_up(now, 3, &[V4], false);
    assert!(d.ready(now, true));
    assert_eq!(d.poll_at(), None);
}

#[test]
fn selection_runs_at_the_deadline_whatever_is_missing() {
    let now = Instant::now();
    let mut d: Deferral<u32> = Deferral::new(now, Duration::from_secs(180));
    d.peer_up(now, 1, &[V4], false);
    assert_eq!(d.poll_at(), Some(now + Duration::from_secs(180)));
    assert!(!d.ready(now + Duration::from_secs(179), true));
    assert!(d.ready(now + Duration::from_secs(180), true));
}

#[test]
fn a_peer_restarting_too_is_waited_for_a_moment_only() {
    let now = Instant::now();
    let mut d: Deferral<u32> = Deferral::new(now, Duration::from_secs(180));
    d.peer_up(now, 1, &[V4], true);
    d.peer_up(now, 2, &[V4], false);
    let until = now + RESTARTING_PEER_WAIT;
    assert_eq!(d.poll_at(), Some(until));
    // Its End-of-RIB, if it comes in time, is waited for...
    assert!(!d.ready(until - Duration::from_millis(1), true));
    // ...but not past the moment; the other peer's still is.
    assert!(!d.ready(until, true), "peer 2 owes its End-of-RIB");
    d.end_of_rib(&2, V4);
    assert!(d.ready(until, true));
    // One that sends it at once ends the wait at once.
    let mut d: Deferral<u32> = Deferral::new(now, Duration::from_secs(180));
    d.peer_up(now, 1, &[V4], true);
    d.end_of_rib(&1, V4);
    assert!(d.ready(now, true));
}
