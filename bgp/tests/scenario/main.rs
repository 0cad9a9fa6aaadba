//! Scenarios with several speaker cores wired to each other in memory
//! (see `net.rs`): sessions, propagation, route reflection, loops, limits
//! and graceful restart, end to end through the real codec.

mod groups;
mod import;
mod net;

use std::time::Duration;

use bgp::policy::{PrefixRule, Rejection, Verdict};
use bgp::session::{Down, State};
use bgp::speaker::SpeakerConfig;
use bgp::wire::iana::CeaseSubcode;
use bgp::wire::{AttrValue, Cause, Message};
use net::{addr, net, Net};

/// Two nodes, `a` connecting and `b` passive, or the other way round.
fn pair(a_passive: bool, b_passive: bool) -> (Net, usize, usize) {
    let mut n = Net::new();
    let a = n.node(1, 64512);
    let b = n.node(2, 64512);
    n.peer(a, b, |c| c.session.passive = a_passive);
    n.peer(b, a, |c| c.session.passive = b_passive);
    (n, a, b)
}

fn originate(n: &mut Net, node: usize, prefix: &str) {
    let unspecified = std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
    let now = n.now;
    n.nodes[node]
        .speaker
        .originate(now, net(prefix), &[], unspecified);
}

// A --- B, iBGP: RFC 4271 §8, each side in turn the one that connects.
#[test]
fn sessions_establish_whichever_side_connects() {
    for (a_passive, b_passive) in [(false, true), (true, false)] {
        let (mut n, a, b) = pair(a_passive, b_passive);
        n.advance(Duration::from_secs(1));
        assert_eq!(n.state(a, b), State::Established);
        assert_eq!(n.state(b, a), State::Established);
        let neg = n.nodes[a]
            .speaker
            .status(n.id(a, b))
            .and_then(|s| s.negotiated.cloned())
            .expect("negotiated");
        assert_eq!(neg.hold_time, 9);
        assert_eq!(neg.keepalive, 3);
        // Keepalives hold the session up well past the hold time.
        n.advance(Duration::from_secs(60));
        assert_eq!(n.state(a, b), State::Established);
        assert!(n.nodes[a].downs.is_empty(), "{:?}", n.nodes[a].downs);
    }
}

// A <==> B, both connecting at once: RFC 4271 §6.8. Two connections come
// up; the one opened by the higher BGP identifier (B, 10.255.0.2) stays.
#[test]
fn a_connection_collision_keeps_the_higher_identifiers_connection() {
    let (mut n, a, b) = pair(false, false);
    n.settle();
    assert_eq!(n.state(a, b), State::Established);
    assert_eq!(n.state(b, a), State::Established);
    // Two connections came up, and exactly one Cease closed one of them:
    // the one A opened, as A has the lower identifier.
    assert_eq!(n.opened_by.len(), 2);
    let collision = Cause::Cease(CeaseSubcode::ConnectionCollisionResolution);
    let ceases: Vec<_> = n
        .wire
        .iter()
        .filter(|s| matches!(&s.message, Message::Notification(m) if m.cause == collision))
        .collect();
    assert_eq!(ceases.len(), 1, "{:?}", n.wire);
    assert_eq!(n.opened_by[&ceases[0].conn], a);
    // The session survives what follows: keepalives on the kept connection.
    n.advance(Duration::from_secs(30));
    assert_eq!(n.state(a, b), State::Established);
    assert_eq!(n.state(b, a), State::Established);
    // Routes flow over the connection that stayed, B's.
    originate(&mut n, a, "10.244.1.0/24");
    n.settle();
    assert_eq!(n.nodes[b].fib.get(&net("10.244.1.0/24")), Some(&addr(1)));
    let update = n
        .wire
        .iter()
        .rev()
        .find(|s| matches!(&s.message, Message::Update(u) if !u.nlri.is_empty()))
        .expect("the UPDATE");
    assert_eq!(n.opened_by[&update.conn], b);
}

// A --x-- B: the wire goes silent; after the hold time (9 s) both send Hold
// Timer Expired and drop what they learned (RFC 4271 §6.5).
#[test]
fn hold_timer_expiry_ends_the_session_and_its_routes() {
    let (mut n, a, b) = pair(false, true);
    originate(&mut n, b, "10.244.2.0/24");
    n.advance(Duration::from_secs(1));
    assert_eq!(n.nodes[a].fib.get(&net("10.244.2.0/24")), Some(&addr(2)));
    n.cut(a, b);
    n.advance(Duration::from_secs(10));
    for (x, y) in [(a, b), (b, a)] {
        assert!(
            n.nodes[x].downs.iter().any(|(p, d)| *p == n.addr(y)
                && matches!(d, Down::Sent(m) if m.cause == Cause::HoldTimerExpired)),
            "{:?}",
            n.nodes[x].downs
        );
    }
    assert!(n.nodes[a].fib.is_empty());
    // Once the wire is back, the sessions come back on their own.
    n.mend(a, b);
    n.advance(Duration::from_secs(30));
    assert_eq!(n.state(a, b), State::Established);
    assert_eq!(n.nodes[a].fib.get(&net("10.244.2.0/24")), Some(&addr(2)));
}

// A (64501) -- B (64502) -- C (64503), eBGP: A's prefix reaches C with
// AS_PATH "64502 64501" and B as next hop (RFC 4271 §5.1.2, §5.1.3).
#[test]
fn routes_propagate_across_three_speakers() {
    let mut n = Net::new();
    let a = n.node(1, 64501);
    let b = n.node(2, 64502);
    let c = n.node(3, 64503);
    n.link(a, b);
    n.link(b, c);
    originate(&mut n, a, "10.244.1.0/24");
    n.advance(Duration::from_secs(1));
    let p = net("10.244.1.0/24");
    assert_eq!(n.nodes[b].fib.get(&p), Some(&addr(1)));
    assert_eq!(n.nodes[c].fib.get(&p), Some(&addr(2)));
    let best = n.nodes[c].speaker.rib().best(&p).expect("best at C");
    let path = best
        .attrs
        .attributes()
        .iter()
        .find_map(|a| match &a.value {
            AttrValue::AsPath(p) => Some(p.clone()),
            _ => None,
        })
        .expect("AS_PATH");
    assert_eq!(path, bgp::wire::AsPath::sequence([64502, 64501]));
    // One UPDATE each way carried it, then End-of-RIB for both families.
    let to_c: Vec<_> = n
        .sent(b, c)
        .filter(|m| matches!(m, Message::Update(_)))
        .collect();
    assert_eq!(to_c.len(), 3, "{to_c:?}");
    // A withdraws; the withdrawal reaches C.
    assert!(n.nodes[a].speaker.withdraw_origin(p));
    n.settle();
    assert!(n.nodes[c].fib.is_empty());
}

// A -- B -- C, all iBGP in 64512: B learns A's route but does not pass it
// to C (RFC 4271 §9.2.1 split horizon), not without route reflection.
#[test]
fn ibgp_routes_are_not_passed_between_ibgp_peers() {
    let mut n = Net::new();
    let a = n.node(1, 64512);
    let b = n.node(2, 64512);
    let c = n.node(3, 64512);
    n.link(a, b);
    n.link(b, c);
    originate(&mut n, a, "10.244.1.0/24");
    n.advance(Duration::from_secs(1));
    assert_eq!(n.nodes[b].fib.len(), 1);
    assert!(n.nodes[c].fib.is_empty());
}

//            R (reflector, cluster 10.255.0.1)
//          / | \
//  client C1 |  N1 non-client, N2 non-client
// RFC 4456 §6: a client's route goes to everyone, with ORIGINATOR_ID and
// CLUSTER_LIST; a non-client's route goes to clients only.
#[test]
fn route_reflection_serves_clients_and_non_clients() {
    let mut n = Net::new();
    let r = n.node(1, 64512);
    let c1 = n.node(2, 64512);
    let n1 = n.node(3, 64512);
    let n2 = n.node(4, 64512);
    n.peer(r, c1, |c| c.rr_client = true);
    n.peer(r, n1, |_| {});
    n.peer(r, n2, |_| {});
    for x in [c1, n1, n2] {
        n.peer(x, r, |_| {});
    }
    originate(&mut n, c1, "10.244.2.0/24");
    originate(&mut n, n1, "10.244.3.0/24");
    n.advance(Duration::from_secs(1));

    let from_client = net("10.244.2.0/24");
    let from_non_client = net("10.244.3.0/24");
    // The client's route reaches both non-clients, next hop unchanged.
    for x in [n1, n2] {
        assert_eq!(n.nodes[x].fib.get(&from_client), Some(&addr(2)));
        let best = n.nodes[x].speaker.rib().best(&from_client).expect("best");
        let attrs = best.attrs.attributes();
        assert!(attrs
            .iter()
            .any(|a| a.value == AttrValue::OriginatorId("10.255.0.2".parse().expect("id"))));
        assert!(attrs
            .iter()
            .any(|a| a.value == AttrValue::ClusterList(vec!["10.255.0.1".parse().expect("id")])));
    }
    // The non-client's route reaches the client, not the other non-client.
    assert_eq!(n.nodes[c1].fib.get(&from_non_client), Some(&addr(3)));
    assert_eq!(n.nodes[n2].fib.get(&from_non_client), None);
}

// A (64501), B (64502) and C (64503) on one LAN, C peering with B only (as
// with a route server): A's prefix reaches C with A, not B, as next hop,
// since C can reach A directly (RFC 4271 §5.1.3).
#[test]
fn a_third_party_next_hop_goes_unchanged_on_a_shared_lan() {
    let mut n = Net::new();
    n.lan = 24;
    let a = n.node(1, 64501);
    let b = n.node(2, 64502);
    let c = n.node(3, 64503);
    n.link(a, b);
    n.link(b, c);
    originate(&mut n, a, "10.244.1.0/24");
    originate(&mut n, b, "10.244.2.0/24");
    n.advance(Duration::from_secs(1));
    assert_eq!(n.nodes[c].fib.get(&net("10.244.1.0/24")), Some(&addr(1)));
    assert_eq!(n.nodes[c].fib.get(&net("10.244.2.0/24")), Some(&addr(2)));
    assert_eq!(n.nodes[a].fib.get(&net("10.244.2.0/24")), Some(&addr(2)));
}

// A (64501) -- B (64502) -- C (64503) -- D (64501): A's route reaches D,
// another router of A's AS, with 64501 already in its AS_PATH, and D drops
// it (RFC 4271 §9.1.2).
#[test]
fn as_path_loops_are_dropped() {
    let mut n = Net::new();
    let a = n.node(1, 64501);
    let b = n.node(2, 64502);
    let c = n.node(3, 64503);
    let d = n.node(4, 64501);
    n.link(a, b);
    n.link(b, c);
    n.link(c, d);
    originate(&mut n, a, "10.244.1.0/24");
    n.advance(Duration::from_secs(1));
    let p = net("10.244.1.0/24");
    assert_eq!(n.nodes[c].fib.get(&p), Some(&addr(2)));
    let d_from_c = n.id(d, c);
    let rejected: Vec<_> = n.nodes[d].speaker.rejected(d_from_c).collect();
    assert_eq!(rejected, vec![(&p, 0, Rejection::AsPathLoop)]);
    assert!(n.nodes[d].fib.is_empty());
    assert!(n.nodes[d].speaker.rib().paths(&p).is_empty());
    // Received, not accepted, as `neighbor` shows it.
    let status = n.nodes[d].speaker.status(d_from_c).expect("peer");
    assert_eq!((status.received[0], status.accepted[0]), (1, 0));
}

//   RR1 ---- RR2      (each other's non-client)
//     \      /
//      client C
// With one cluster id the client's route, reflected by RR1 to RR2, carries
// that cluster in CLUSTER_LIST and RR2 drops it. With two cluster ids, and
// RR2 filtering C's prefix from C itself, RR2 reflects RR1's copy back to
// C, which finds its own ORIGINATOR_ID (RFC 4456 §8).
#[test]
fn cluster_and_originator_loops_are_dropped() {
    for same_cluster in [true, false] {
        let mut n = Net::new();
        let rr = |n: &mut Net, id: u8, cluster: u8| {
            let mut cfg = SpeakerConfig::new(64512, format!("10.255.0.{id}").parse().expect("id"));
            cfg.cluster_id = Some(format!("10.255.255.{cluster}").parse().expect("id"));
            n.node_with(id, cfg)
        };
        let rr1 = rr(&mut n, 1, 1);
        let rr2 = rr(&mut n, 2, if same_cluster { 1 } else { 2 });
        let c = n.node(3, 64512);
        n.link(rr1, rr2);
        n.peer(rr1, c, |p| p.rr_client = true);
        n.peer(rr2, c, |p| {
            p.rr_client = true;
            if !same_cluster {
                // RR2 takes C's prefix only by way of RR1, so it is RR2's
                // best and RR2 reflects it to C.
                p.prefixes.rules.push(PrefixRule {
                    prefix: net("10.244.3.0/24"),
                    ge: None,
                    le: None,
                    verdict: Verdict::Deny,
                });
            }
        });
        n.peer(c, rr1, |_| {});
        n.peer(c, rr2, |_| {});
        originate(&mut n, c, "10.244.3.0/24");
        n.advance(Duration::from_secs(1));
        let p = net("10.244.3.0/24");
        if same_cluster {
            let from_rr1 = n.id(rr2, rr1);
            let rejected: Vec<_> = n.nodes[rr2].speaker.rejected(from_rr1).collect();
            assert!(
                rejected.contains(&(&p, 0, Rejection::ClusterLoop)),
                "{rejected:?}"
            );
        } else {
            let rejected: Vec<_> = [rr1, rr2]
                .iter()
                .flat_map(|&r| n.nodes[c].speaker.rejected(n.id(c, r)).collect::<Vec<_>>())
                .collect();
            assert!(
                rejected.contains(&(&p, 0, Rejection::OriginatorLoop)),
                "{rejected:?}"
            );
        }
        // Both reflectors still reach the client's prefix directly.
        assert_eq!(n.nodes[rr1].fib.get(&p), Some(&addr(3)));
        assert_eq!(n.nodes[rr2].fib.get(&p), Some(&addr(3)));
    }
}

// A -- B, B allowing A at most 2 prefixes: the third one ends the session
// with Cease / Maximum Number of Prefixes Reached, AFI/SAFI and limit in
// the data (RFC 4486 §4), and A's routes leave B.
#[test]
fn max_prefix_ends_the_session_with_a_cease() {
    let mut n = Net::new();
    let a = n.node(1, 64512);
    let b = n.node(2, 64512);
    n.peer(a, b, |_| {});
    n.peer(b, a, |c| c.max_prefixes = Some(2));
    originate(&mut n, a, "10.244.1.0/24");
    originate(&mut n, a, "10.244.2.0/24");
    n.advance(Duration::from_secs(1));
    assert_eq!(n.nodes[b].fib.len(), 2);
    originate(&mut n, a, "10.244.3.0/24");
    n.settle();
    let got = n.nodes[a].downs.iter().find_map(|(_, d)| match d {
        Down::Received(m) => Some(m.clone()),
        _ => None,
    });
    let m = got.expect("A was told");
    assert_eq!(m.cause, Cause::Cease(CeaseSubcode::MaximumPrefixesReached));
    assert_eq!(&m.data[..], &[0, 1, 1, 0, 0, 0, 2]);
    assert!(n.nodes[b].fib.is_empty());
    assert_ne!(n.state(b, a), State::Established);
}

// A -- B and B -- C, all eBGP; B's session to A goes down: what B learned
// from A leaves B's FIB, and B withdraws it from C.
#[test]
fn routes_are_withdrawn_when_their_session_goes() {
    let mut n = Net::new();
    let a = n.node(1, 64501);
    let b = n.node(2, 64502);
    let c = n.node(3, 64503);
    n.link(a, b);
    n.link(b, c);
    originate(&mut n, a, "10.244.1.0/24");
    n.advance(Duration::from_secs(1));
    assert_eq!(n.nodes[c].fib.len(), 1);
    let b_a = n.id(b, a);
    let now = n.now;
    n.nodes[b]
        .speaker
        .stop_peer(now, b_a, "maintenance")
        .expect("stopped");
    n.settle();
    assert!(n.nodes[b].fib.is_empty());
    assert!(n.nodes[c].fib.is_empty());
    // A heard why, in the RFC 9003 shutdown text.
    let said = n.nodes[a].downs.iter().find_map(|(_, d)| match d {
        Down::Received(m) => m.shutdown_message().map(str::to_string),
        _ => None,
    });
    assert_eq!(said.as_deref(), Some("maintenance"));
    // Shut down stays down.
    n.advance(Duration::from_secs(300));
    assert_eq!(n.state(b, a), State::Idle);
}

fn gr_node(id: u8, deferral: Option<Duration>) -> SpeakerConfig {
    let mut cfg = SpeakerConfig::new(64512, format!("10.255.0.{id}").parse().expect("id"));
    cfg.selection_deferral = deferral;
    cfg
}

fn gr_peer(n: &mut Net, x: usize, y: usize) {
    n.peer(x, y, |c| c.session.graceful_restart = Some(120));
}

/// A and B peered both ways with graceful restart (this restart time),
/// with or without the N-bit, at this hold time; B holds A's
/// 10.244.1.0/24.
fn gr_pair(n_bit: bool, restart_time: u16, hold_time: u16) -> (Net, usize, usize) {
    let mut n = Net::new();
    let a = n.node_with(1, gr_node(1, None));
    let b = n.node_with(2, gr_node(2, None));
    for (x, y) in [(a, b), (b, a)] {
        n.peer(x, y, |c| {
            c.session.graceful_restart = Some(restart_time);
            c.session.gr_notification = n_bit;
            c.session.hold_time = hold_time;
        });
    }
    originate(&mut n, a, "10.244.1.0/24");
    n.advance(Duration::from_secs(1));
    assert_eq!(n.nodes[b].fib.len(), 1);
    (n, a, b)
}

// A -- B with graceful restart (RFC 4724). B's process dies: A keeps B's
// routes, stale, in its FIB. B comes back announcing only one of its two
// prefixes: A's End-of-RIB from B sweeps the other.
#[test]
fn graceful_restart_keeps_stale_routes_until_end_of_rib() {
    let mut n = Net::new();
    let a = n.node_with(1, gr_node(1, None));
    let b = n.node_with(2, gr_node(2, None));
    gr_peer(&mut n, a, b);
    gr_peer(&mut n, b, a);
    originate(&mut n, b, "10.244.1.0/24");
    originate(&mut n, b, "10.244.2.0/24");
    n.advance(Duration::from_secs(1));
    assert_eq!(n.nodes[a].fib.len(), 2);

    n.kill(b);
    n.advance(Duration::from_secs(30));
    assert_eq!(n.nodes[a].fib.len(), 2, "kept across the restart");
    let stale = n.nodes[a].speaker.rib().paths(&net("10.244.2.0/24"))[0].stale;
    assert!(stale);

    n.restart(b, gr_node(2, Some(Duration::from_secs(60))));
    gr_peer(&mut n, b, a);
    originate(&mut n, b, "10.244.1.0/24");
    n.advance(Duration::from_secs(10));
    assert_eq!(n.state(a, b), State::Established);
    assert_eq!(
        n.nodes[a].fib.keys().copied().collect::<Vec<_>>(),
        vec![net("10.244.1.0/24")],
        "the prefix B no longer has went with B's End-of-RIB"
    );
    let fresh = &n.nodes[a].speaker.rib().paths(&net("10.244.1.0/24"))[0];
    assert!(!fresh.stale);
}

// A -- B with graceful restart; B never comes back: A sweeps B's routes
// when B's restart time (120 s) runs out.
#[test]
fn graceful_restart_sweeps_when_the_restart_time_runs_out() {
    let mut n = Net::new();
    let a = n.node_with(1, gr_node(1, None));
    let b = n.node_with(2, gr_node(2, None));
    gr_peer(&mut n, a, b);
    gr_peer(&mut n, b, a);
    originate(&mut n, b, "10.244.1.0/24");
    n.advance(Duration::from_secs(1));
    n.kill(b);
    n.advance(Duration::from_secs(119));
    assert_eq!(n.nodes[a].fib.len(), 1);
    n.advance(Duration::from_secs(2));
    assert!(n.nodes[a].fib.is_empty());
}

// B restarts with its forwarding state kept: it holds back its first
// route selection (FIB and export) until A's End-of-RIB, so it never
// installs a partial table (RFC 4724 §4.1).
#[test]
fn a_restarting_speaker_defers_selection_until_end_of_rib() {
    let mut n = Net::new();
    let a = n.node_with(1, gr_node(1, None));
    let b = n.node_with(2, gr_node(2, Some(Duration::from_secs(60))));
    gr_peer(&mut n, a, b);
    originate(&mut n, a, "10.244.1.0/24");
    // B has no peer yet: selection waits.
    n.advance(Duration::from_secs(1));
    assert!(!n.nodes[b].speaker.selection_done());
    gr_peer(&mut n, b, a);
    n.settle();
    // A saw B's restart flag in its OPEN.
    let restarting = n.sent(b, a).any(|m| match m {
        Message::Open(o) => o
            .capabilities()
            .any(|c| matches!(c, bgp::wire::Capability::GracefulRestart(g) if g.restart_state())),
        _ => false,
    });
    assert!(restarting);
    assert!(n.nodes[b].speaker.selection_done());
    assert_eq!(n.nodes[b].fib.get(&net("10.244.1.0/24")), Some(&addr(1)));
    // B's End-of-RIB to A came after B's table, once selection ran.
    let last = n
        .sent(b, a)
        .filter(|m| matches!(m, Message::Update(_)))
        .last();
    assert!(matches!(last, Some(Message::Update(u)) if u.as_end_of_rib().is_some()));
}

// A and B restart at once, both with their forwarding state kept: each
// holds its End-of-RIB until its own selection has run, so each waits for
// the other (Restart State bit set) a moment only, not its whole deferral
// timer (RFC 4724 §4.1).
#[test]
fn two_restarting_speakers_do_not_wait_for_each_other() {
    let mut n = Net::new();
    let a = n.node_with(1, gr_node(1, Some(Duration::from_secs(60))));
    let b = n.node_with(2, gr_node(2, Some(Duration::from_secs(60))));
    gr_peer(&mut n, a, b);
    gr_peer(&mut n, b, a);
    originate(&mut n, a, "10.244.1.0/24");
    originate(&mut n, b, "10.244.2.0/24");
    n.advance(Duration::from_secs(5));
    assert!(n.nodes[a].speaker.selection_done());
    assert!(n.nodes[b].speaker.selection_done());
    assert_eq!(n.nodes[a].fib.get(&net("10.244.2.0/24")), Some(&addr(2)));
    assert_eq!(n.nodes[b].fib.get(&net("10.244.1.0/24")), Some(&addr(1)));
}

// A's prefix to B (64512 iBGP): B asks for A's routes again (RFC 7313
// enhanced route refresh): A re-sends between BoRR and EoRR, and B's RIB is
// as it was.
#[test]
fn route_refresh_resends_the_table() {
    let (mut n, a, b) = pair(false, true);
    originate(&mut n, a, "10.244.1.0/24");
    n.advance(Duration::from_secs(1));
    let before = n.sent(a, b).count();
    let id = n.id(b, a);
    assert!(n.nodes[b].speaker.soft_reset_in(id).expect("peer"));
    n.settle();
    let again: Vec<_> = n.sent(a, b).skip(before).collect();
    assert!(
        matches!(again.first(), Some(Message::RouteRefresh(_))),
        "{again:?}"
    );
    assert!(again
        .iter()
        .any(|m| matches!(m, Message::Update(u) if !u.nlri.is_empty())));
    assert_eq!(n.nodes[b].fib.get(&net("10.244.1.0/24")), Some(&addr(1)));
}

// MRAI 5 s on A towards B: the first announcement goes at once; a second
// change within the interval waits for it; a withdrawal never waits
// (RFC 4271 §9.2.1.1).
#[test]
fn mrai_holds_back_announcements_but_not_withdrawals() {
    let mut n = Net::new();
    let a = n.node(1, 64512);
    let b = n.node(2, 64512);
    n.peer(a, b, |c| c.mrai = Duration::from_secs(5));
    n.peer(b, a, |_| {});
    originate(&mut n, a, "10.244.1.0/24");
    n.advance(Duration::from_millis(10));
    assert_eq!(n.nodes[b].fib.len(), 1);
    originate(&mut n, a, "10.244.2.0/24");
    n.settle();
    assert_eq!(n.nodes[b].fib.len(), 1, "held by MRAI");
    assert!(n.nodes[a].speaker.withdraw_origin(net("10.244.1.0/24")));
    n.settle();
    assert!(
        !n.nodes[b].fib.contains_key(&net("10.244.1.0/24")),
        "withdrawn at once"
    );
    n.advance(Duration::from_secs(5));
    assert!(n.nodes[b].fib.contains_key(&net("10.244.2.0/24")));
}

// A -- B: A originates 2,000 prefixes sharing one attribute set. They go in
// as few UPDATEs as the message size allows — one 65,535-byte UPDATE with
// extended messages (RFC 8654), two of 4,096 bytes without — then
// End-of-RIB.
#[test]
fn the_initial_table_is_packed_into_few_updates() {
    for extended in [true, false] {
        let mut n = Net::new();
        let a = n.node(1, 64512);
        let b = n.node(2, 64512);
        n.peer(a, b, |c| c.session.extended_message = extended);
        n.peer(b, a, |_| {});
        for i in 0..2000u32 {
            let p = std::net::Ipv4Addr::from(0x0a00_0000 + (i << 8));
            let unspecified = std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
            let now = n.now;
            n.nodes[a].speaker.originate(
                now,
                ipnet::IpNet::V4(ipnet::Ipv4Net::new(p, 24).expect("prefix")),
                &[],
                unspecified,
            );
        }
        n.advance(Duration::from_secs(1));
        assert_eq!(n.nodes[b].fib.len(), 2000);
        let updates: Vec<_> = n
            .sent(a, b)
            .filter_map(|m| match m {
                Message::Update(u) => Some(u),
                _ => None,
            })
            .collect();
        let with_routes = updates.iter().filter(|u| !u.nlri.is_empty()).count();
        assert_eq!(with_routes, if extended { 1 } else { 2 });
        assert!(updates.last().is_some_and(|u| u.as_end_of_rib().is_some()));
        let status = n.nodes[a].speaker.status(n.id(a, b)).expect("peer");
        assert_eq!(status.advertised, [2000, 0]);
    }
}

// A burst's buffers let go at B between bursts: the next burst is taken
// in as the first was.
#[test]
fn a_speaker_goes_on_as_before_once_its_buffers_are_let_go() {
    let (mut n, a, b) = pair(false, false);
    n.settle();
    for round in 0..2u32 {
        for i in 0..10_000u32 {
            let p = std::net::Ipv4Addr::from(0x0a00_0000 + ((round * 10_000 + i) << 8));
            originate(&mut n, a, &format!("{p}/24"));
        }
        n.advance(Duration::from_secs(1));
        assert_eq!(n.nodes[b].fib.len(), 10_000 * (round as usize + 1));
        assert!(n.nodes[b].speaker.buffers_held() > 0);
        n.nodes[b].speaker.release_buffers();
        assert_eq!(n.nodes[b].speaker.buffers_held(), 0);
    }
    let status = n.nodes[a].speaker.status(n.id(a, b)).expect("peer");
    assert_eq!(status.advertised, [20_000, 0]);
}

// A -- B with graceful restart, with and without the N-bit (RFC 8538) on
// both sides. An operator's shutdown always drops A's routes at B: a Hard
// Reset with the N-bit, a plain Cease without. A stopping to restart keeps
// them at B, stale: a plain Cease with the N-bit, no NOTIFICATION at all
// without (RFC 4724 §4.2 ends graceful restart on any NOTIFICATION).
#[test]
fn shutdown_drops_routes_but_stopping_to_restart_keeps_them() {
    for n_bit in [true, false] {
        for restarting in [false, true] {
            let (mut n, a, b) = gr_pair(n_bit, 120, 90);
            let id = n.id(a, b);
            let now = n.now;
            if restarting {
                n.nodes[a]
                    .speaker
                    .stop_peer_for_restart(now, id, "upgrade")
                    .expect("peer");
            } else {
                n.nodes[a]
                    .speaker
                    .stop_peer(now, id, "retired")
                    .expect("peer");
            }
            n.settle();
            let down = n.nodes[b].downs.last().map(|(_, d)| d.clone());
            let cause = match &down {
                Some(Down::Received(m)) => Some(m.cause),
                _ => None,
            };
            let case = format!("n_bit {n_bit}, restarting {restarting}: {down:?}");
            match (n_bit, restarting) {
                (true, true) => assert_eq!(
                    cause,
                    Some(Cause::Cease(CeaseSubcode::AdministrativeShutdown)),
                    "{case}"
                ),
                (true, false) => {
                    assert_eq!(cause, Some(Cause::Cease(CeaseSubcode::HardReset)), "{case}")
                }
                (false, true) => assert_eq!(down, Some(Down::Closed), "{case}"),
                (false, false) => assert_eq!(
                    cause,
                    Some(Cause::Cease(CeaseSubcode::AdministrativeShutdown)),
                    "{case}"
                ),
            }
            let kept = if restarting { 1 } else { 0 };
            assert_eq!(n.nodes[b].fib.len(), kept, "{case}");
        }
    }
}

// A -- B with graceful restart; the wire between them is cut. Without the
// N-bit, B's hold timer expiry is a NOTIFICATION, which ends graceful
// restart: A's routes go at once. With it, B keeps them, stale, until A's
// restart time runs out (RFC 8538 §4).
#[test]
fn a_hold_timer_expiry_drops_routes_unless_the_n_bit_keeps_them() {
    for n_bit in [false, true] {
        let (mut n, a, b) = gr_pair(n_bit, 30, 3);
        n.cut(a, b);
        n.advance(Duration::from_secs(4));
        assert!(
            n.nodes[b].downs.iter().any(|(_, d)| matches!(
                d,
                Down::Sent(m) if m.cause == Cause::HoldTimerExpired
            )),
            "{:?}",
            n.nodes[b].downs
        );
        assert_eq!(n.nodes[b].fib.len(), usize::from(n_bit), "n_bit {n_bit}");
        n.advance(Duration::from_secs(30));
        assert!(n.nodes[b].fib.is_empty(), "restart time over");
    }
}

// A -- B with graceful restart. B's host dies silently, so A's connection
// stays Established, half-open. B comes back restarting (Restart State bit
// in its OPEN): A takes the new connection as B's restart at once, keeps
// B's routes meanwhile, and does not wait out its hold timer (RFC 4724
// §4.2). A second connection without that bit is a plain collision with an
// Established session, and the new connection goes (RFC 4271 §6.8).
#[test]
fn a_restarted_peers_new_connection_replaces_the_dead_one() {
    let mut n = Net::new();
    let a = n.node_with(1, gr_node(1, None));
    let b = n.node_with(2, gr_node(2, None));
    n.peer(a, b, |c| {
        c.session.graceful_restart = Some(120);
        c.session.hold_time = 90;
    });
    gr_peer(&mut n, b, a);
    originate(&mut n, b, "10.244.2.0/24");
    n.advance(Duration::from_secs(1));
    assert_eq!(n.nodes[a].fib.len(), 1);

    let before = n.nodes[a].downs.len();
    n.vanish(b);
    n.restart(b, gr_node(2, Some(Duration::from_secs(60))));
    gr_peer(&mut n, b, a);
    originate(&mut n, b, "10.244.2.0/24");
    n.advance(Duration::from_secs(2));
    assert_eq!(n.state(a, b), State::Established);
    assert_eq!(n.state(b, a), State::Established);
    assert_eq!(n.nodes[a].fib.len(), 1);
    assert_eq!(
        n.nodes[a].downs[before..],
        [(addr(2), Down::Closed)],
        "the old session just closed"
    );
}

// A -- B with graceful restart, with and without the N-bit. BFD tells B
// that A is gone (RFC 5882 §3.2): B closes the session with Cease / BFD
// Down (RFC 9384), a Hard Reset under the N-bit (RFC 8538 §5), and drops
// A's routes at once in both cases: graceful restart is no help for a
// dead path. The session comes back once the path does.
#[test]
fn bfd_down_drops_routes_at_once_even_with_graceful_restart() {
    for n_bit in [false, true] {
        let (mut n, a, b) = gr_pair(n_bit, 120, 90);
        let id = n.id(b, a);
        let now = n.now;
        n.nodes[b].speaker.bfd_down(now, id).expect("a peer");
        n.settle();
        assert!(n.nodes[b].fib.is_empty(), "n_bit {n_bit}: routes kept");
        let cause = n.nodes[b].downs.iter().find_map(|(_, d)| match d {
            Down::Sent(m) => Some(m.cause),
            _ => None,
        });
        let want = if n_bit {
            Cause::Cease(CeaseSubcode::HardReset)
        } else {
            Cause::Cease(CeaseSubcode::BfdDown)
        };
        assert_eq!(cause, Some(want), "n_bit {n_bit}");
        // A heard it too and drops B's side, N-bit or not.
        n.advance(Duration::from_secs(1));
        n.advance(Duration::from_secs(60));
        assert_eq!(
            n.state(b, a),
            State::Established,
            "back after the idle hold"
        );
        assert_eq!(n.nodes[b].fib.len(), 1, "and A's routes with it");
    }
}
