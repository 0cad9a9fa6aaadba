//! Update groups: peers that export alike share one Adj-RIB-Out and one
//! set of UPDATEs, and still each get exactly what is theirs.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bgp::wire::{Message, NextHop};
use ipnet::IpNet;

use super::net::{addr, net, Net};
use super::originate;

/// Prefixes in `hub`'s Adj-RIB-Out towards `spoke`, with their next hops.
fn adj_out(n: &Net, hub: usize, spoke: usize) -> BTreeMap<IpNet, NextHop> {
    let id = n.id(hub, spoke);
    n.nodes[hub]
        .speaker
        .adj_rib_out(id)
        .map(|(p, a)| (p, a.next_hop()))
        .collect()
}

/// What `spoke` holds from `hub`, with the next hops it was sent.
fn adj_in(n: &Net, spoke: usize, hub: usize) -> BTreeMap<IpNet, NextHop> {
    let id = n.id(spoke, hub);
    n.nodes[spoke]
        .speaker
        .rib()
        .adj_rib_in(id)
        .map(|(p, path)| (p, path.attrs.next_hop()))
        .collect()
}

fn pod(i: u32) -> String {
    format!("10.244.{i}.0/24")
}

/// UPDATEs `from` sent `to` that announce `prefix`.
fn announcing(n: &Net, from: usize, to: usize, prefix: IpNet) -> usize {
    n.sent(from, to)
        .filter(|m| match m {
            Message::Update(u) => u.nlri.iter().any(|x| x.prefix == prefix),
            _ => false,
        })
        .count()
}

// A reflector R and five clients, each originating its pod prefix; a sixth
// client comes up later. All six end in one update group, each client
// holds every other client's prefix and R never sends one its own back;
// a new prefix goes to every other client once; a client that goes
// leaves the others' routes alone.
#[test]
fn a_reflectors_clients_share_one_group_and_never_get_their_own_routes_back() {
    let mut n = Net::new();
    let r = n.node(1, 64512);
    let clients: Vec<usize> = (2..=7).map(|i| n.node(i, 64512)).collect();
    for (i, &c) in clients.iter().enumerate().take(5) {
        n.peer(r, c, |p| p.rr_client = true);
        n.peer(c, r, |_| {});
        originate(&mut n, c, &pod(i as u32 + 1));
    }
    n.advance(Duration::from_secs(1));
    let group = |n: &Net, c: usize| n.nodes[r].speaker.update_group(n.id(r, c));
    let first = group(&n, clients[0]);
    assert!(first.is_some());
    for &c in &clients[..5] {
        assert_eq!(group(&n, c), first, "one group for alike clients");
    }

    // The sixth comes up: a group of its own while it catches up, then
    // the others' group.
    let late = clients[5];
    n.peer(r, late, |p| p.rr_client = true);
    n.peer(late, r, |_| {});
    originate(&mut n, late, &pod(6));
    n.advance(Duration::from_secs(1));
    for (i, &c) in clients.iter().enumerate() {
        assert_eq!(group(&n, c), first, "client {i} in the shared group");
        let out = adj_out(&n, r, c);
        let expect: BTreeSet<IpNet> = (1..=6)
            .filter(|&j| j != i as u32 + 1)
            .map(|j| net(&pod(j)))
            .collect();
        assert_eq!(
            out.keys().copied().collect::<BTreeSet<_>>(),
            expect,
            "client {i}"
        );
        assert_eq!(
            adj_in(&n, c, r),
            out,
            "client {i} holds what R says it sent"
        );
        let status = n.nodes[r].speaker.status(n.id(r, c)).expect("peer");
        assert_eq!(status.advertised, [5, 0]);
        assert_eq!(
            announcing(&n, r, c, net(&pod(i as u32 + 1))),
            0,
            "never its own"
        );
    }

    // One more prefix from the first client: one UPDATE to each other.
    originate(&mut n, clients[0], "10.245.0.0/16");
    n.advance(Duration::from_secs(1));
    for (i, &c) in clients.iter().enumerate() {
        let want = usize::from(i != 0);
        assert_eq!(
            announcing(&n, r, c, net("10.245.0.0/16")),
            want,
            "client {i}"
        );
    }

    // The third client goes: its prefix leaves the others, nothing else.
    let gone = clients[2];
    let id = n.id(r, gone);
    let now = n.now;
    n.nodes[r]
        .speaker
        .stop_peer(now, id, "maintenance")
        .expect("peer");
    n.advance(Duration::from_secs(1));
    assert_eq!(group(&n, gone), None);
    for (i, &c) in clients.iter().enumerate() {
        if c == gone {
            continue;
        }
        assert_eq!(group(&n, c), first);
        let out = adj_out(&n, r, c);
        assert!(!out.contains_key(&net(&pod(3))), "client {i}");
        assert_eq!(adj_in(&n, c, r), out, "client {i}");
        let own = if i == 0 { 2 } else { 1 };
        assert_eq!(out.len(), 7 - 1 - own, "client {i}");
    }
}

// R and three clients: one client asks for its routes again
// (ROUTE-REFRESH). It is sent them alone, framed as RFC 7313 says, the
// others are sent nothing, and it is back in the shared group after.
#[test]
fn a_refresh_is_answered_to_the_member_that_asked_alone() {
    let mut n = Net::new();
    let r = n.node(1, 64512);
    let clients: Vec<usize> = (2..=4).map(|i| n.node(i, 64512)).collect();
    for (i, &c) in clients.iter().enumerate() {
        n.peer(r, c, |p| p.rr_client = true);
        n.peer(c, r, |_| {});
        originate(&mut n, c, &pod(i as u32 + 1));
    }
    originate(&mut n, r, "10.96.0.0/16");
    n.advance(Duration::from_secs(1));
    let group = |n: &Net, c: usize| n.nodes[r].speaker.update_group(n.id(r, c));
    let shared = group(&n, clients[0]);
    let before: Vec<usize> = clients.iter().map(|&c| n.sent(r, c).count()).collect();
    let asking = clients[1];
    let id = n.id(asking, r);
    assert!(n.nodes[asking].speaker.soft_reset_in(id).expect("peer"));
    n.advance(Duration::from_secs(1));
    for (i, &c) in clients.iter().enumerate() {
        let again: Vec<&Message> = n.sent(r, c).skip(before[i]).collect();
        if c != asking {
            assert!(again.is_empty(), "client {i} sent {again:?}");
            continue;
        }
        assert!(
            matches!(again.first(), Some(Message::RouteRefresh(_))),
            "BoRR first: {again:?}"
        );
        assert!(
            matches!(again.last(), Some(Message::RouteRefresh(_))),
            "EoRR last"
        );
        let resent: BTreeSet<IpNet> = again
            .iter()
            .filter_map(|m| match m {
                Message::Update(u) => Some(u.nlri.iter().map(|x| x.prefix)),
                _ => None,
            })
            .flatten()
            .collect();
        let expect: BTreeSet<IpNet> = [net(&pod(1)), net(&pod(3)), net("10.96.0.0/16")].into();
        assert_eq!(resent, expect);
    }
    for &c in &clients {
        assert_eq!(group(&n, c), shared, "back in the shared group");
        assert_eq!(adj_in(&n, c, r), adj_out(&n, r, c));
    }
}

// A (64501), C (64503) and D (64504) on one LAN peer with B (64502), as
// with a route server. A announces a prefix with C's address as next hop.
// B's group of eBGP peers sends it on: to D with C as next hop, unchanged
// (a third party on the LAN, RFC 4271 §5.1.3); to C with B's own address,
// since a next hop of C's own is no use to C; to A not at all.
#[test]
fn a_third_party_next_hop_is_changed_for_the_member_it_names_alone() {
    let mut n = Net::new();
    n.lan = 24;
    let a = n.node(1, 64501);
    let b = n.node(2, 64502);
    let c = n.node(3, 64503);
    let d = n.node(4, 64504);
    for x in [a, c, d] {
        n.link(b, x);
    }
    n.advance(Duration::from_secs(1));
    let now = n.now;
    let p = net("10.244.9.0/24");
    n.nodes[a].speaker.originate(now, p, &[], addr(3));
    n.advance(Duration::from_secs(1));
    let group = |n: &Net, x: usize| n.nodes[b].speaker.update_group(n.id(b, x));
    assert_eq!(group(&n, a), group(&n, c));
    assert_eq!(group(&n, a), group(&n, d));
    let v4 = |x: u8| NextHop::V4(Ipv4Addr::new(10, 0, 0, x));
    assert_eq!(adj_out(&n, b, d).get(&p), Some(&v4(3)));
    assert_eq!(adj_out(&n, b, c).get(&p), Some(&v4(2)));
    assert_eq!(adj_out(&n, b, a).get(&p), None);
    for x in [a, c, d] {
        assert_eq!(adj_in(&n, x, b), adj_out(&n, b, x));
    }
    assert_eq!(n.nodes[d].fib.get(&p), Some(&addr(3)));
    assert_eq!(n.nodes[c].fib.get(&p), Some(&addr(2)));

    // The next hop moves to D's address: now D is the one sent B's.
    let now = n.now;
    n.nodes[a].speaker.originate(now, p, &[], addr(4));
    n.advance(Duration::from_secs(1));
    assert_eq!(adj_out(&n, b, c).get(&p), Some(&v4(4)));
    assert_eq!(adj_out(&n, b, d).get(&p), Some(&v4(2)));
    assert_eq!(n.nodes[c].fib.get(&p), Some(&addr(4)));
    assert_eq!(n.nodes[d].fib.get(&p), Some(&addr(2)));
    for x in [a, c, d] {
        assert_eq!(adj_in(&n, x, b), adj_out(&n, b, x));
    }

    // Withdrawn: gone everywhere, nothing left in any Adj-RIB-Out.
    assert!(n.nodes[a].speaker.withdraw_origin(p));
    n.advance(Duration::from_secs(1));
    for x in [a, c, d] {
        assert!(adj_out(&n, b, x).is_empty());
        assert!(!n.nodes[x].fib.contains_key(&p));
        let status = n.nodes[b].speaker.status(n.id(b, x)).expect("peer");
        assert_eq!(status.advertised, [0, 0]);
    }
}

/// Which spokes of the hub should hold a route that came from `from`
/// (`None`: the hub's own), as RFC 4271 and RFC 4456 say.
fn should_hold(kinds: &[Kind], from: Option<usize>, to: usize) -> bool {
    let Some(from) = from else { return true };
    if from == to {
        return false;
    }
    match (kinds[from], kinds[to]) {
        (Kind::Ebgp, _) | (_, Kind::Ebgp) => true,
        (Kind::Client, _) | (_, Kind::Client) => true,
        (Kind::NonClient, Kind::NonClient) => false,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Client,
    NonClient,
    Ebgp,
}

// A hub with clients, non-clients and eBGP peers, under 300 random steps:
// prefixes originated and withdrawn anywhere, sessions stopped and
// started, refreshes asked for. Whenever the network is quiet, every
// spoke holds exactly what the hub's Adj-RIB-Out for it says, and that is
// exactly what the rules allow it: groups form, split and merge without
// losing or duplicating a route.
#[test]
fn random_churn_leaves_every_member_exactly_its_routes() {
    let kinds = [
        Kind::Client,
        Kind::Client,
        Kind::Client,
        Kind::NonClient,
        Kind::NonClient,
        Kind::Ebgp,
        Kind::Ebgp,
    ];
    let mut n = Net::new();
    let hub = n.node(1, 64512);
    let spokes: Vec<usize> = kinds
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let asn = if *k == Kind::Ebgp {
                64600 + i as u32
            } else {
                64512
            };
            n.node(i as u8 + 2, asn)
        })
        .collect();
    for (i, &s) in spokes.iter().enumerate() {
        n.peer(hub, s, |p| p.rr_client = kinds[i] == Kind::Client);
        n.peer(s, hub, |_| {});
    }
    n.advance(Duration::from_secs(1));
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = |m: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % m
    };
    // Who originated each prefix (`None`: the hub).
    let mut origin: BTreeMap<IpNet, Option<usize>> = BTreeMap::new();
    let mut up = vec![true; spokes.len()];
    for step in 0..300 {
        let who = next(spokes.len() as u64 + 1) as usize;
        let p = net(&format!("10.{}.{}.0/24", 100 + next(4), next(16)));
        let now = n.now;
        // Where an originated prefix would come from (`None`: the hub).
        let at = spokes.get(who).map(|_| who);
        match next(10) {
            // Originate, at a spoke or the hub, unless another has it.
            0..=4 if origin.get(&p).is_none_or(|o| *o == at) => {
                let node = spokes.get(who).copied().unwrap_or(hub);
                let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
                n.nodes[node].speaker.originate(now, p, &[], any);
                origin.insert(p, at);
            }
            5 | 6 => {
                if let Some((&q, &o)) = origin.iter().nth(next(origin.len().max(1) as u64) as usize)
                {
                    let node = o.map_or(hub, |i| spokes[i]);
                    assert!(n.nodes[node].speaker.withdraw_origin(q));
                    origin.remove(&q);
                }
            }
            7 if who < spokes.len() => {
                let id = n.id(hub, spokes[who]);
                let speaker = &mut n.nodes[hub].speaker;
                if up[who] {
                    speaker.stop_peer(now, id, "churn").expect("peer");
                } else {
                    speaker.start_peer(now, id).expect("peer");
                }
                up[who] = !up[who];
            }
            8 if who < spokes.len() => {
                let id = n.id(spokes[who], hub);
                let _ = n.nodes[spokes[who]].speaker.soft_reset_in(id);
            }
            _ => {}
        }
        n.advance(Duration::from_millis(10 + next(300)));
        if step % 25 != 24 {
            continue;
        }
        // Quiet: sessions retried and everything sent.
        n.advance(Duration::from_secs(10));
        for (i, &s) in spokes.iter().enumerate() {
            let out = adj_out(&n, hub, s);
            if !up[i] {
                assert!(out.is_empty(), "step {step}: spoke {i} is down");
                continue;
            }
            assert_eq!(adj_in(&n, s, hub), out, "step {step}: spoke {i}");
            let expect: BTreeSet<IpNet> = origin
                .iter()
                .filter(|(_, o)| o.is_none_or(|o| up[o]) && should_hold(&kinds, **o, i))
                .map(|(p, _)| *p)
                .collect();
            assert_eq!(
                out.keys().copied().collect::<BTreeSet<_>>(),
                expect,
                "step {step}: spoke {i} ({:?})",
                kinds[i]
            );
            let status = n.nodes[hub].speaker.status(n.id(hub, s)).expect("peer");
            assert_eq!(status.advertised, [out.len(), 0], "step {step}: spoke {i}");
        }
    }
    // Alike spokes that are up share a group at the end.
    let group = |n: &Net, i: usize| n.nodes[hub].speaker.update_group(n.id(hub, spokes[i]));
    for (i, j) in [(0, 1), (0, 2), (3, 4)] {
        if up[i] && up[j] {
            assert_eq!(
                group(&n, i),
                group(&n, j),
                "{:?} spokes {i} and {j}",
                kinds[i]
            );
        }
    }
}

// Forty clients come up at once at a reflector, each with its pod prefix:
// every client ends with every other client's prefix and its own group
// merged into one.
#[test]
fn many_clients_coming_up_at_once_all_get_every_route() {
    let mut n = Net::new();
    let r = n.node(1, 64512);
    let clients: Vec<usize> = (2..=41).map(|i| n.node(i, 64512)).collect();
    for (i, &c) in clients.iter().enumerate() {
        n.peer(r, c, |p| p.rr_client = true);
        n.peer(c, r, |_| {});
        originate(&mut n, c, &pod(i as u32 + 1));
    }
    n.advance(Duration::from_secs(2));
    let group = |n: &Net, c: usize| n.nodes[r].speaker.update_group(n.id(r, c));
    for (i, &c) in clients.iter().enumerate() {
        assert_eq!(n.nodes[c].fib.len(), clients.len() - 1, "client {i}");
        assert_eq!(adj_in(&n, c, r), adj_out(&n, r, c), "client {i}");
        assert_eq!(group(&n, c), group(&n, clients[0]), "client {i}");
    }
}
