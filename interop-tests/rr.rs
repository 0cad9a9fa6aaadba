//! podbgp as a route reflector between two clients of other makes.
//!
//!   FRR client F ----+
//!                    |   one switch, all iBGP in AS 64512
//!              podbgp P  (reflector; cluster id = its router id)
//!                    |
//!   BIRD client B ---+
//!
//! RFC 4456 §6: a client's route is reflected to the other client with the
//! next hop unchanged; §8: ORIGINATOR_ID is set to the originating client's
//! router id and CLUSTER_LIST gains P's cluster id. P's own route reaches
//! both without either. Needs root and Debian's frr and bird2.

#[path = "lab/mod.rs"]
mod lab;

use lab::bird::Bird;
use lab::frr::Frr;
use lab::podbgp::Podbgp;
use lab::{Advert, Lab, PeerSpec, Speaker};

const AS: u32 = 64512;

#[test]
fn podbgp_reflects_between_an_frr_and_a_bird_client() {
    if !lab::ready() {
        return;
    }
    let mut lab = Lab::new("rr");
    let (hp, hf, hb) = (lab.host("pod"), lab.host("frr"), lab.host("bird"));
    let mut p = Podbgp::new(&hp, AS);
    // The CLI reaches this one over the API's unix socket.
    p.api_unix = true;
    let mut f = Frr::new(&hf, AS);
    let mut b = Bird::new(&hb, AS);
    for client in [&hf, &hb] {
        let mut spec = PeerSpec::new(client.v4.into(), AS);
        spec.rr_client = true;
        p.add_peer(spec);
    }
    f.add_peer(PeerSpec::new(hp.v4.into(), AS));
    b.add_peer(PeerSpec::new(hp.v4.into(), AS));
    p.advertise(Advert::plain("10.244.3.0/24"));
    f.advertise(Advert::plain("10.99.3.0/24"));
    b.advertise(Advert::plain("10.99.4.0/24"));
    f.start(&mut lab);
    b.start(&mut lab);
    p.start(&mut lab);
    for client in [&hf, &hb] {
        p.wait_established(&lab, client.v4.into());
    }
    f.wait_established(&lab, hp.v4.into());
    b.wait_established(&lab, hp.v4.into());

    let cluster = vec![hp.v4.to_string()];
    let got = b.wait_route(&lab, "10.99.3.0/24");
    assert_eq!(got.next_hop, hf.v4.to_string(), "{got:?}");
    assert_eq!(got.originator_id, Some(hf.v4.to_string()));
    assert_eq!(got.cluster_list, cluster);
    assert_eq!(got.local_pref, Some(100));

    let got = f.wait_route(&lab, "10.99.4.0/24");
    assert_eq!(got.next_hop, hb.v4.to_string(), "{got:?}");
    assert_eq!(got.originator_id, Some(hb.v4.to_string()));
    assert_eq!(got.cluster_list, cluster);

    for client in [&f as &dyn Speaker, &b] {
        let own = client.wait_route(&lab, "10.244.3.0/24");
        assert_eq!(own.next_hop, hp.v4.to_string());
        assert_eq!(own.originator_id, None, "{own:?}");
        assert!(own.cluster_list.is_empty());
    }
}
