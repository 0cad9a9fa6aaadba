//! podbgp against BIRD: eBGP and iBGP sessions both ways, routes and their
//! attributes both ways in IPv4 and IPv6, withdrawal, shutdown and a cut
//! cable, TCP MD5 and an unconfigured peer. The topologies and the RFC
//! sections each scenario exercises are drawn in `lab/scenarios.rs`.
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
