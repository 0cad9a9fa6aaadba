//! Two podbgp daemons, and what a rollout does to them.
//!
//!   podbgp A (AS 64512) ---- podbgp B (AS 64512), iBGP, graceful restart
//!                            with the N-bit on both sides (the default)
//!
//! A gets SIGTERM: it sends B a Cease / Administrative Shutdown that is not
//! a Hard Reset, so B keeps A's routes, stale (RFC 4724 §4.2, RFC 8538 §4).
//! A comes back: the session is Established again and A's routes are fresh.
//! Needs root.

#[path = "lab/mod.rs"]
mod lab;

use std::time::Duration;

use lab::podbgp::Podbgp;
use lab::{Advert, Lab, PeerSpec, Speaker};

#[test]
fn sigterm_sends_a_cease_and_the_peer_keeps_our_routes_until_we_are_back() {
    if !lab::ready() {
        return;
    }
    let mut lab = Lab::new("rollout");
    let (ha, hb) = (lab.host("a"), lab.host("b"));
    let mut a = Podbgp::new(&ha, 64512);
    let mut b = Podbgp::new(&hb, 64512);
    a.add_peer(PeerSpec::new(hb.v4.into(), 64512));
    b.add_peer(PeerSpec::new(ha.v4.into(), 64512));
    a.advertise(Advert::plain("10.244.1.0/24"));
    b.start(&mut lab);
    a.start(&mut lab);
    b.wait_established(&lab, ha.v4.into());
    b.wait_route(&lab, "10.244.1.0/24");

    a.terminate();
    let said = lab::eventually(Duration::from_secs(5), || {
        let n = b.json(&["neighbor", &ha.v4.to_string()]);
        n["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("AdministrativeShutdown") && !e.contains("HardReset"))
    });
    assert!(said, "{}{}", lab.logs(&ha), lab.logs(&hb));
    let stale = |b: &Podbgp| {
        let rib = b.json(&["global", "rib", "10.244.1.0/24"]);
        rib[0]["paths"][0]["stale"].as_bool()
    };
    assert_eq!(stale(&b), Some(true), "kept, marked stale");

    a.start(&mut lab);
    b.wait_established(&lab, ha.v4.into());
    let fresh = lab::eventually(Duration::from_secs(10), || stale(&b) == Some(false));
    assert!(fresh, "{}", lab.logs(&hb));
}
