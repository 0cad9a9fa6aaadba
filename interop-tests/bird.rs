//! podbgp against BIRD, each in a network namespace on one switch.
//!
//!   ebgp_with_podbgp_connecting     podbgp P (AS 64512) --> BIRD  X (AS 65001)
//!                                   IPv4 and IPv6 sessions, P connects
//!   ibgp_with_the_peer_connecting   podbgp P (AS 64512) <-- BIRD  X (AS 64512)
//!                                   then X's cable is pulled
//!   md5_and_unconfigured_peers      podbgp P --- X1 right password, X2 wrong,
//!                                            --- X3 none, X4 not configured on P
//!
//! RFC 4271 §8 (sessions both ways), §5.1 (AS_PATH, NEXT_HOP, MED,
//! LOCAL_PREF), §6.5 (hold timer); RFC 4760 / RFC 2545 (IPv6); RFC 1997 and
//! RFC 8092 (communities); RFC 4486 / RFC 9003 (Cease on shutdown); RFC 2385
//! (TCP MD5). Each scenario's detail is in `lab/scenarios.rs`.
//! Needs root and Debian's frr, bird2 and gobgpd (`make test` installs them).

#[path = "lab/mod.rs"]
mod lab;

use lab::bird::Bird;
use lab::{scenarios, Host, Speaker};

fn make(host: &Host, asn: u32) -> Box<dyn Speaker> {
    Box::new(Bird::new(host, asn))
}

#[test]
fn ebgp_with_podbgp_connecting() {
    scenarios::ebgp_with_podbgp_connecting("bird", make);
}

#[test]
fn ibgp_with_the_peer_connecting() {
    scenarios::ibgp_with_the_peer_connecting("bird", make);
}

#[test]
fn md5_and_unconfigured_peers() {
    scenarios::md5_and_unconfigured_peers("bird", make);
}
