//! Two podbgp daemons, and what a rollout or a retirement does to them.
//!
//!   podbgp A (AS 64512) ---- podbgp B (AS 64512), iBGP, graceful restart
//!
//! A gets SIGTERM (a rollout): it closes the session without a NOTIFICATION
//! (RFC 4724 §4.2), so B keeps A's routes, stale; with the N-bit on both
//! sides (RFC 8538, `graceful_restart.notification`) it sends a Cease that
//! is not a Hard Reset instead, with the same effect. A comes back: the
//! session is Established again and A's routes are fresh. `podbgp shutdown`
//! on A (a retirement): B gets a Cease and drops A's routes at once.
//! Needs root.

#[path = "lab/mod.rs"]
mod lab;

use std::time::Duration;

use lab::podbgp::Podbgp;
use lab::{Advert, Lab, PeerSpec, Speaker};

/// A and B peered, A advertising 10.244.1.0/24, each with `extra` in
/// its `[global]` section.
fn pair(lab: &mut Lab, extra: &str) -> (Podbgp, Podbgp, lab::Host, lab::Host) {
    let (ha, hb) = (lab.host("a"), lab.host("b"));
    let mut a = Podbgp::new(&ha, 64512);
    let mut b = Podbgp::new(&hb, 64512);
    for p in [&mut a, &mut b] {
        p.global_extra = extra.to_string();
    }
    a.add_peer(PeerSpec::new(hb.v4.into(), 64512));
    b.add_peer(PeerSpec::new(ha.v4.into(), 64512));
    a.advertise(Advert::plain("10.244.1.0/24"));
    b.start(lab);
    a.start(lab);
    b.wait_established(lab, ha.v4.into());
    b.wait_route(lab, "10.244.1.0/24");
    (a, b, ha, hb)
}

fn stale(b: &Podbgp) -> Option<bool> {
    let rib = b.json(&["global", "rib", "10.244.1.0/24"]);
    rib[0]["paths"][0]["stale"].as_bool()
}

/// A starts again: the session is back and B's copy of A's route fresh.
fn back(lab: &mut Lab, a: &mut Podbgp, b: &Podbgp, ha: &lab::Host) {
    a.start(lab);
    b.wait_established(lab, ha.v4.into());
    let fresh = lab::eventually(Duration::from_secs(10), || stale(b) == Some(false));
    assert!(fresh, "{}", lab.logs(ha));
}

fn last_error(b: &Podbgp, a: &lab::Host) -> String {
    let n = b.json(&["neighbor", &a.v4.to_string()]);
    n["last_error"].as_str().unwrap_or_default().to_string()
}

#[test]
fn sigterm_closes_quietly_the_peer_keeps_our_routes_and_shutdown_drops_them() {
    if !lab::ready() {
        return;
    }
    let mut lab = Lab::new("rollout");
    let (mut a, b, ha, hb) = pair(&mut lab, "");

    a.terminate();
    let said = lab::eventually(Duration::from_secs(5), || {
        last_error(&b, &ha) == "connection closed"
    });
    assert!(said, "{}\n{}", last_error(&b, &ha), lab.logs(&ha));
    assert_eq!(stale(&b), Some(true), "kept, marked stale");

    back(&mut lab, &mut a, &b, &ha);

    // Retired: B hears a Cease and drops A's route at once.
    a.shutdown();
    let ceased = lab::eventually(Duration::from_secs(2), || {
        let e = last_error(&b, &ha);
        e.contains("received") && e.contains("AdministrativeShutdown")
    });
    assert!(ceased, "{}", last_error(&b, &ha));
    let gone = lab::eventually(Duration::from_secs(2), || {
        b.json(&["global", "rib", "10.244.1.0/24"])
            .as_array()
            .is_some_and(|r| r.is_empty())
    });
    assert!(gone, "{}", b.json(&["global", "rib", "10.244.1.0/24"]));

    // A runs on with the session down, for good: B's attempts are refused.
    let peer = hb.v4.to_string();
    std::thread::sleep(Duration::from_secs(3));
    let n = a.json(&["neighbor", &peer]);
    assert_eq!(n["state"], "Idle", "{n}");
    assert_eq!(n["admin_down"], true, "{n}");
    // Until the operator brings it back.
    let (code, _, err) = a.cli(&["neighbor", &peer, "enable"]);
    assert_eq!(code, 0, "{err}");
    b.wait_established(&lab, ha.v4.into());
    b.wait_route(&lab, "10.244.1.0/24");
}

#[test]
fn with_the_n_bit_sigterm_sends_a_cease_that_is_not_a_hard_reset() {
    if !lab::ready() {
        return;
    }
    let mut lab = Lab::new("rollout-n");
    let (mut a, b, ha, _) = pair(&mut lab, "[global.graceful_restart]\nnotification = true");

    a.terminate();
    let said = lab::eventually(Duration::from_secs(5), || {
        let e = last_error(&b, &ha);
        e.contains("AdministrativeShutdown") && !e.contains("HardReset")
    });
    assert!(said, "{}\n{}", last_error(&b, &ha), lab.logs(&ha));
    assert_eq!(stale(&b), Some(true), "kept, marked stale");

    back(&mut lab, &mut a, &b, &ha);

    // Retired: with the N-bit, the Cease goes as a Hard Reset.
    a.shutdown();
    let hard = lab::eventually(Duration::from_secs(2), || {
        last_error(&b, &ha).contains("HardReset")
    });
    assert!(hard, "{}", last_error(&b, &ha));
}
