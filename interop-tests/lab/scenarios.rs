//! The scenarios every external implementation goes through with podbgp.
//! Each test file names the implementation and calls these with its
//! adapter's constructor.

use std::time::Duration;

use super::podbgp::Podbgp;
use super::{Advert, Host, Lab, PeerSpec, Route, Speaker};

/// Makes an adapter for a host and AS.
pub type Make = fn(&Host, u32) -> Box<dyn Speaker>;

const POD_AS: u32 = 64512;
const PEER_AS: u32 = 65001;

fn find<'a>(rib: &'a [Route], prefix: &str) -> Option<&'a Route> {
    rib.iter().find(|r| r.prefix == prefix)
}

/// Configure a session both ways, over IPv4 and over IPv6.
fn peer_both_families(a: &mut dyn Speaker, b: &mut dyn Speaker, a_passive: bool) {
    for v6 in [false, true] {
        let mut to_b = PeerSpec::new(b.host().addr(v6), b.asn());
        to_b.passive = a_passive;
        a.add_peer(to_b);
        let mut to_a = PeerSpec::new(a.host().addr(v6), a.asn());
        to_a.passive = !a_passive;
        b.add_peer(to_a);
    }
}

//   podbgp P (AS 64512) ---- X (AS 65001), eBGP over IPv4 and over IPv6
//   on one switch; P connects, X waits.
// RFC 4271 §8 (session), §5.1.2 / §5.1.3 (AS_PATH prepended, NEXT_HOP set
// to self on eBGP), §5.1.4 (MED to the neighbouring AS), RFC 4760 and
// RFC 2545 (IPv6 over MP_REACH_NLRI), RFC 1997 / RFC 8092 (communities),
// RFC 4486 and RFC 9003 (Cease on shutdown).
pub fn ebgp_with_podbgp_connecting(name: &str, make: Make) {
    if !super::ready() {
        return;
    }
    let mut lab = Lab::new(&format!("{name}-ebgp"));
    let (hp, hx) = (lab.host("pod"), lab.host("peer"));
    let mut p = Podbgp::new(&hp, POD_AS);
    p.metrics = true;
    let mut x = make(&hx, PEER_AS);
    peer_both_families(&mut p, x.as_mut(), false);
    p.advertise(Advert::tagged("10.244.1.0/24", 10, "64512:1", "64512:1:1"));
    p.advertise(Advert::plain("fd10:244:1::/64"));
    x.advertise(Advert::tagged("10.99.1.0/24", 20, "65001:7", "65001:7:7"));
    x.advertise(Advert::plain("fd99:1::/64"));
    x.start(&mut lab);
    p.start(&mut lab);
    for v6 in [false, true] {
        p.wait_established(&lab, hx.addr(v6));
        x.wait_established(&lab, hp.addr(v6));
    }

    // podbgp's routes in the peer's RIB.
    let got = x.wait_route(&lab, "10.244.1.0/24");
    assert_eq!(got.as_path, vec![POD_AS], "{got:?}");
    assert_eq!(got.next_hop, hp.v4.to_string());
    assert_eq!(got.med, Some(10));
    assert_eq!(got.communities, vec!["64512:1"]);
    assert_eq!(got.large_communities, vec!["64512:1:1"]);
    let got = x.wait_route(&lab, "fd10:244:1::/64");
    assert_eq!(got.as_path, vec![POD_AS]);
    assert_eq!(got.next_hop, hp.v6.to_string());

    // The peer's routes in podbgp's RIB.
    let got = p.wait_route(&lab, "10.99.1.0/24");
    assert_eq!(got.as_path, vec![PEER_AS], "{got:?}");
    assert_eq!(got.next_hop, hx.v4.to_string());
    assert_eq!(got.med, Some(20));
    assert_eq!(got.communities, vec!["65001:7"]);
    assert_eq!(got.large_communities, vec!["65001:7:7"]);
    let got = p.wait_route(&lab, "fd99:1::/64");
    assert_eq!(got.next_hop, hx.v6.to_string());

    // And in podbgp's kernel, with protocol 200, via the peer.
    p.wait_kernel(&lab, &format!("10.99.1.0/24 via {}", hx.v4));
    p.wait_kernel(&lab, &format!("fd99:1::/64 via {}", hx.v6));

    // What the metrics server says of it.
    let (status, body) = p.metrics_get("/metrics");
    assert_eq!(status, 200, "{}", lab.logs(&hp));
    let up = format!("podbgp_peer_state{{peer=\"{}\"}} 1", hx.v4);
    assert!(body.contains(&up), "{body}");
    assert!(body.contains("podbgp_updates_received_total"), "{body}");
    // Ready once the first selection's routes are in the kernel: the
    // routes above may be there a moment before the FIB has said so.
    let ready = super::eventually(Duration::from_secs(5), || p.metrics_get("/readyz").0 == 200);
    assert!(ready, "{}", lab.logs(&hp));
    assert_eq!(p.metrics_get("/healthz").0, 200);

    // `global rib del` withdraws from the peer.
    let (code, _, err) = p.cli(&["global", "rib", "del", "10.244.1.0/24"]);
    assert_eq!(code, 0, "{err}");
    x.wait_gone(&lab, "10.244.1.0/24", Duration::from_secs(10));
    assert!(
        find(&x.rib(true), "fd10:244:1::/64").is_some(),
        "the other stays"
    );

    // The peer shuts the session down: a Cease, and its routes leave at once.
    x.shutdown_peer(hp.v4.into());
    p.wait_gone(&lab, "10.99.1.0/24", Duration::from_secs(3));
    let gone = super::eventually(Duration::from_secs(5), || {
        p.kernel_routes(false)
            .iter()
            .all(|r| !r.starts_with("10.99.1.0/24"))
    });
    assert!(gone, "{:?}", p.kernel_routes(false));
    let n = p.json(&["neighbor", &hx.v4.to_string()]);
    let said = n["last_error"].as_str().unwrap_or("").to_string();
    assert!(said.contains("Cease"), "{n}");
}

//   podbgp P (AS 64512) ---- X (AS 64512), iBGP over IPv4 and IPv6; X
//   connects, P waits. Then X's cable is pulled.
// RFC 4271 §5.1.5 (LOCAL_PREF on iBGP), §9.2.1 (iBGP next hop unchanged),
// §6.5 (Hold Timer expiry: X's routes go within the hold time, 9 s).
pub fn ibgp_with_the_peer_connecting(name: &str, make: Make) {
    if !super::ready() {
        return;
    }
    let mut lab = Lab::new(&format!("{name}-ibgp"));
    let (hp, hx) = (lab.host("pod"), lab.host("peer"));
    let mut p = Podbgp::new(&hp, POD_AS);
    let mut x = make(&hx, POD_AS);
    peer_both_families(&mut p, x.as_mut(), true);
    p.advertise(Advert::plain("10.244.2.0/24"));
    p.advertise(Advert::plain("fd10:244:2::/64"));
    x.advertise(Advert::tagged("10.99.2.0/24", 30, "64512:9", "64512:9:9"));
    x.advertise(Advert::plain("fd99:2::/64"));
    p.start(&mut lab);
    x.start(&mut lab);
    for v6 in [false, true] {
        p.wait_established(&lab, hx.addr(v6));
        x.wait_established(&lab, hp.addr(v6));
    }

    let got = x.wait_route(&lab, "10.244.2.0/24");
    assert!(got.as_path.is_empty(), "{got:?}");
    assert_eq!(got.local_pref, Some(100));
    assert_eq!(got.next_hop, hp.v4.to_string());
    let got = x.wait_route(&lab, "fd10:244:2::/64");
    assert_eq!(got.next_hop, hp.v6.to_string());

    let got = p.wait_route(&lab, "10.99.2.0/24");
    assert!(got.as_path.is_empty(), "{got:?}");
    assert_eq!(got.local_pref, Some(100));
    assert_eq!(got.med, Some(30));
    assert_eq!(got.next_hop, hx.v4.to_string());
    assert_eq!(got.communities, vec!["64512:9"]);
    assert_eq!(got.large_communities, vec!["64512:9:9"]);
    p.wait_route(&lab, "fd99:2::/64");

    // The cable is pulled: nothing more arrives, and after the hold time
    // podbgp drops X's routes.
    lab.cut(&hx);
    p.wait_gone(&lab, "10.99.2.0/24", Duration::from_secs(15));
    p.wait_gone(&lab, "fd99:2::/64", Duration::from_secs(5));
    assert!(!p.established(hx.v4.into()));
}

//   podbgp P ---- X1 (password right), X2 (password wrong), X3 (no
//   password), X4 (not configured on P at all), all on one switch.
// RFC 2385 (TCP MD5): only X1's session comes up. Only configured peers
// may open a session: X4's connections are refused and logged.
pub fn md5_and_unconfigured_peers(name: &str, make: Make) {
    if !super::ready() {
        return;
    }
    let mut lab = Lab::new(&format!("{name}-md5"));
    let hp = lab.host("pod");
    let hosts: Vec<Host> = (1..=4).map(|i| lab.host(&format!("x{i}"))).collect();
    let mut p = Podbgp::new(&hp, POD_AS);
    let passwords = [Some("s3cret"), Some("wrong"), None, None];
    let mut xs: Vec<Box<dyn Speaker>> = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        let mut x = make(h, PEER_AS);
        let mut to_p = PeerSpec::new(hp.v4.into(), POD_AS);
        to_p.password = passwords[i].map(String::from);
        x.add_peer(to_p);
        if i < 3 {
            let mut to_x = PeerSpec::new(h.v4.into(), PEER_AS);
            to_x.password = Some("s3cret".into());
            p.add_peer(to_x);
        }
        xs.push(x);
    }
    for x in &mut xs {
        x.start(&mut lab);
    }
    p.start(&mut lab);
    p.wait_established(&lab, hosts[0].v4.into());
    xs[0].wait_established(&lab, hp.v4.into());
    // Give the others every chance: several connect retries on both sides.
    std::thread::sleep(Duration::from_secs(6));
    for i in 1..4 {
        assert!(
            !xs[i].established(hp.v4.into()),
            "x{} came up with password {:?}",
            i + 1,
            passwords[i]
        );
        if i < 3 {
            assert!(!p.established(hosts[i].v4.into()));
        }
    }
    // Some implementations wait a while before their first attempt.
    let x4 = hosts[3].v4.to_string();
    let refused = super::eventually(Duration::from_secs(20), || {
        let log = std::fs::read_to_string(hp.dir.join("podbgp.log")).unwrap_or_default();
        log.lines()
            .any(|l| l.contains("refused a BGP connection") && l.contains(&x4))
    });
    assert!(
        refused,
        "no refusal of x4 logged:\n{}\n{}",
        lab.logs(&hp),
        lab.logs(&hosts[3])
    );
}
