//! A peer's routes through its import policy: an UPDATE whose prefixes the
//! prefix list partly denies.

use std::time::Duration;

use bgp::policy::{PrefixRule, Rejection, Verdict};
use bgp::wire::Message;

use super::net::{net, Net};
use super::originate;

fn rule(prefix: &str, le: Option<u8>, verdict: Verdict) -> PrefixRule {
    PrefixRule {
        prefix: net(prefix),
        ge: None,
        le,
        verdict,
    }
}

// A -- B, B denying one of A's four prefixes: they come in one UPDATE, and
// B takes the other three and turns the fourth away, as filtered; when A
// withdraws it, B forgets it; one announced again is turned away again.
#[test]
fn a_prefix_list_takes_part_of_an_update_and_turns_the_rest_away() {
    let mut n = Net::new();
    let a = n.node(1, 64512);
    let b = n.node(2, 64512);
    n.peer(a, b, |_| {});
    n.peer(b, a, |c| {
        c.prefixes
            .rules
            .push(rule("10.244.2.0/24", None, Verdict::Deny));
        c.prefixes
            .rules
            .push(rule("10.244.0.0/16", Some(24), Verdict::Permit));
    });
    n.advance(Duration::from_secs(1));
    let prefixes = [
        "10.244.1.0/24",
        "10.244.2.0/24",
        "10.244.3.0/24",
        "10.244.4.0/24",
    ];
    for p in prefixes {
        originate(&mut n, a, p);
    }
    n.advance(Duration::from_secs(1));

    let with_routes: Vec<usize> = n
        .sent(a, b)
        .filter_map(|m| match m {
            Message::Update(u) if !u.nlri.is_empty() => Some(u.nlri.len()),
            _ => None,
        })
        .collect();
    assert_eq!(with_routes, vec![4], "the four prefixes in one UPDATE");
    let from_a = n.id(b, a);
    let rib = n.nodes[b].speaker.rib();
    for p in prefixes {
        let held = !rib.paths(&net(p)).is_empty();
        assert_eq!(held, p != "10.244.2.0/24", "{p} in B's RIB");
    }
    let denied = net("10.244.2.0/24");
    let rejected: Vec<_> = n.nodes[b].speaker.rejected(from_a).collect();
    assert_eq!(rejected, vec![(&denied, 0, Rejection::Filtered)]);
    let status = n.nodes[b].speaker.status(from_a).expect("peer");
    assert_eq!((status.received[0], status.accepted[0]), (4, 3));

    assert!(n.nodes[a].speaker.withdraw_origin(denied));
    n.advance(Duration::from_secs(1));
    assert_eq!(n.nodes[b].speaker.rejected(from_a).count(), 0);
    assert_eq!(n.nodes[b].speaker.rib().prefix_count(), 3);

    originate(&mut n, a, "10.244.2.0/24");
    n.advance(Duration::from_secs(1));
    let rejected: Vec<_> = n.nodes[b].speaker.rejected(from_a).collect();
    assert_eq!(rejected, vec![(&denied, 0, Rejection::Filtered)]);
    assert!(n.nodes[b].speaker.rib().paths(&denied).is_empty());
}
