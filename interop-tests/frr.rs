//! podbgp against FRR, each in a network namespace on one switch.
//!
//!   ebgp_with_podbgp_connecting     podbgp P (AS 64512) --> FRR   X (AS 65001)
//!                                   IPv4 and IPv6 sessions, P connects
//!   ibgp_with_the_peer_connecting   podbgp P (AS 64512) <-- FRR   X (AS 64512)
//!                                   then X's cable is pulled
//!   md5_and_unconfigured_peers      podbgp P --- X1 right password, X2 wrong,
//!                                            --- X3 none, X4 not configured on P
//!   gtsm_both_sides_or_no_session   podbgp P (passive, GTSM) <-- FRR F1 (GTSM)
//!                                   podbgp P (GTSM) --- FRR F2 (no GTSM, TTL 1)
//!
//! RFC 4271 §8 (sessions both ways), §5.1 (AS_PATH, NEXT_HOP, MED,
//! LOCAL_PREF), §6.5 (hold timer); RFC 4760 / RFC 2545 (IPv6); RFC 1997 and
//! RFC 8092 (communities); RFC 4486 / RFC 9003 (Cease on shutdown); RFC 2385
//! (TCP MD5), RFC 5082 (GTSM). Each scenario's detail is in `lab/scenarios.rs`.
//! Needs root and Debian's frr, bird2 and gobgpd (`make test` installs them).

#[path = "lab/mod.rs"]
mod lab;

use lab::frr::Frr;
use lab::podbgp::Podbgp;
use lab::{scenarios, Host, Lab, PeerSpec, Speaker};

fn make(host: &Host, asn: u32) -> Box<dyn Speaker> {
    Box::new(Frr::new(host, asn))
}

#[test]
fn ebgp_with_podbgp_connecting() {
    scenarios::ebgp_with_podbgp_connecting("frr", make);
}

#[test]
fn ibgp_with_the_peer_connecting() {
    scenarios::ibgp_with_the_peer_connecting("frr", make);
}

#[test]
fn md5_and_unconfigured_peers() {
    scenarios::md5_and_unconfigured_peers("frr", make);
}

#[test]
fn gtsm_both_sides_or_no_session() {
    if !lab::ready() {
        return;
    }
    let mut lab = Lab::new("frr-gtsm");
    let (hp, h1, h2) = (lab.host("pod"), lab.host("f1"), lab.host("f2"));
    let mut p = Podbgp::new(&hp, 64512);
    let (mut f1, mut f2) = (Frr::new(&h1, 65001), Frr::new(&h2, 65002));
    let mut to_f1 = PeerSpec::new(h1.v4.into(), 65001);
    // P waits, so F1's SYN meets P's listener: its SYN-ACK must carry 255.
    to_f1.passive = true;
    to_f1.gtsm = true;
    p.add_peer(to_f1);
    let mut to_f2 = PeerSpec::new(h2.v4.into(), 65002);
    to_f2.gtsm = true;
    p.add_peer(to_f2);
    let mut to_p = PeerSpec::new(hp.v4.into(), 64512);
    to_p.gtsm = true;
    f1.add_peer(to_p.clone());
    to_p.gtsm = false;
    f2.add_peer(to_p);
    f1.start(&mut lab);
    f2.start(&mut lab);
    p.start(&mut lab);
    p.wait_established(&lab, h1.v4.into());
    f1.wait_established(&lab, hp.v4.into());
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert!(
        !p.established(h2.v4.into()),
        "F2 sends with TTL 1: GTSM drops it"
    );
    assert!(
        !f2.established(hp.v4.into()),
        "{}\n{}\n{}",
        f2.vtysh(&format!("show bgp neighbors {}", hp.v4)),
        p.json(&["neighbor", &h2.v4.to_string()]),
        lab.logs(&hp)
    );
}
