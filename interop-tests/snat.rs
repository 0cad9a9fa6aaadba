//! podbgp's SNAT in namespaces.
//!
//!   pod (10.244.1.2/32, ptp-style veth) ---- node P (podbgp, AS 64512,
//!   advertises 10.244.1.0/24, SNAT on) ---- bridge ---- FRR X (AS 65001,
//!   advertises 10.245.0.0/24 and answers on 10.245.0.1)
//!                                                  \--- outside host O
//!                                                       (198.51.100.1, a
//!                                                       static route on P)
//!
//! A connection from the pod to X's prefix, learned over BGP and inside
//! fib.accept, arrives from the pod's own address; one to O, which BGP
//! never named, arrives from P's address. When X withdraws its prefix, it
//! leaves the no-masquerade set. A table of someone else's in P's kernel
//! is the same before and after. Needs root, Debian's frr and nftables.

#[path = "lab/mod.rs"]
mod lab;

use std::net::Ipv4Addr;
use std::time::Duration;

use lab::frr::Frr;
use lab::podbgp::Podbgp;
use lab::{eventually, Advert, Lab, PeerSpec, Speaker};

fn keep_set(p: &Podbgp) -> Vec<String> {
    let view = p.json(&["snat"]);
    view["families"][0]["keep"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

#[test]
fn pods_keep_their_address_to_learned_prefixes_and_are_masqueraded_elsewhere() {
    if !lab::ready() {
        return;
    }
    let mut lab = Lab::new("snat");
    let (hp, hx, ho) = (lab.host("node"), lab.host("frr"), lab.host("outside"));
    let pod = lab.pod(
        &hp,
        "pod",
        Ipv4Addr::new(10, 244, 1, 2),
        Ipv4Addr::new(10, 244, 1, 1),
    );
    // Someone else's table, which podbgp must leave alone.
    let other = "table ip other {\n\tchain passing {\n\t\ttype filter hook forward priority filter; policy accept;\n\t\tip daddr 192.0.2.1 accept\n\t}\n}\n";
    let out = hp.exec(&["nft", "add table ip other; add chain ip other passing { type filter hook forward priority filter; policy accept; }; add rule ip other passing ip daddr 192.0.2.1 accept"]);
    assert!(out.status.success(), "{out:?}");
    // X answers on 10.245.0.1; O on 198.51.100.1, which P reaches by a
    // static route and BGP never names. O has no way back to the pods.
    for (h, a) in [(&hx, "10.245.0.1/32"), (&ho, "198.51.100.1/32")] {
        let out = h.exec(&["ip", "addr", "add", a, "dev", "lo"]);
        assert!(out.status.success(), "{out:?}");
    }
    let out = hp.exec(&[
        "ip",
        "route",
        "add",
        "198.51.100.0/24",
        "via",
        &ho.v4.to_string(),
    ]);
    assert!(out.status.success(), "{out:?}");
    lab::listen(&mut lab, &hx);
    lab::listen(&mut lab, &ho);

    let mut p = Podbgp::new(&hp, 64512);
    p.snat = Some(String::new());
    p.advertise(Advert::plain("10.244.1.0/24"));
    p.add_peer(PeerSpec::new(hx.v4.into(), 65001));
    let mut x = Frr::new(&hx, 65001);
    x.add_peer(PeerSpec::new(hp.v4.into(), 64512));
    x.advertise(Advert::plain("10.245.0.0/24"));
    x.start(&mut lab);
    p.start(&mut lab);
    p.wait_established(&lab, hx.v4.into());
    p.wait_kernel(&lab, "10.245.0.0/24");
    x.wait_route(&lab, "10.244.1.0/24");

    let learned = eventually(Duration::from_secs(10), || {
        keep_set(&p).contains(&"10.245.0.0/24".to_string())
    });
    assert!(learned, "keep set: {:?}\n{}", keep_set(&p), lab.logs(&hp));
    let view = p.json(&["snat"]);
    assert_eq!(view["families"][0]["pods"][0], "10.244.1.0/24", "{view}");
    assert!(
        view["families"][0]["rules"][0]
            .as_str()
            .is_some_and(|r| r.contains("masquerade")),
        "{view}"
    );

    // (a) To a learned prefix: the pod's own address.
    assert_eq!(
        lab::seen_from(&pod, &hx, "10.245.0.1").as_deref(),
        Some("10.244.1.2"),
        "{}",
        lab.logs(&hp)
    );
    // (b) To the outside: the node's.
    let node = hp.v4.to_string();
    assert_eq!(
        lab::seen_from(&pod, &ho, "198.51.100.1").as_deref(),
        Some(node.as_str()),
        "{}",
        lab.logs(&hp)
    );

    // A withdrawal takes the prefix out of the set.
    let out = hx.exec(&[
        "vtysh",
        "-N",
        &hx.ns,
        "-c",
        "configure terminal",
        "-c",
        "router bgp 65001",
        "-c",
        "address-family ipv4 unicast",
        "-c",
        "no network 10.245.0.0/24",
    ]);
    assert!(out.status.success(), "{out:?}");
    let gone = eventually(Duration::from_secs(10), || {
        !keep_set(&p).contains(&"10.245.0.0/24".to_string())
    });
    assert!(gone, "keep set: {:?}", keep_set(&p));
    let set = hp.text(&["nft", "list", "set", "ip", "podbgp", "keep"]);
    assert!(!set.contains("10.245.0.0/24"), "{set}");
    assert!(set.contains("10.244.1.0/24"), "{set}");

    // The other table is as it was.
    assert_eq!(hp.text(&["nft", "list", "table", "ip", "other"]), other);
}
