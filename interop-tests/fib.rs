//! podbgp's kernel FIB, fed by FRR over eBGP.
//!
//!   FRR X (AS 65001) ---- podbgp P (AS 64512, fib.protocol 200, table 254,
//!                                   fib.accept 10.0.0.0/8 and fd00::/8)
//!
//! X advertises a plain prefix, one a static route in P's kernel already
//! holds, one outside fib.accept, a default route and one covering P's own
//! address. Only the first reaches P's kernel; `podbgp fib` says why not
//! the others. A route of ours removed by hand comes back, and so do the
//! routes a link going down and up took with it; the static route
//! keeps winning until it goes; a restart of P, by SIGTERM or by SIGKILL,
//! adopts its routes without deleting one (`ip monitor route` records it).
//! RFC 4724 §4.1 (selection deferred until End-of-RIB after a restart).
//!
//!   FRR Y (AS 65002, 10.88.0.2, two hops away: P reaches 10.88.0.0/24
//!   through a static route via Y's 10.77.0.x address) ---- podbgp P
//!
//! Y's routes name 10.88.0.2 as next hop, which is on no subnet of P's:
//! P resolves it through its kernel table and installs them via the
//! gateway the static route names; when that route goes, so do they.
//!
//!   FRR A ---- podbgp P ---- FRR B, all iBGP, A and B advertising the same
//!   prefix with the same attributes: one multipath route via both.
//! Needs root and Debian's frr.

#[path = "lab/mod.rs"]
mod lab;

use std::process::{Command, Stdio};
use std::time::Duration;

use lab::frr::Frr;
use lab::podbgp::Podbgp;
use lab::{eventually, Advert, Lab, PeerSpec, Speaker};

fn fib_state(p: &Podbgp, prefix: &str) -> String {
    let list = p.json(&["fib"]);
    list.as_array()
        .into_iter()
        .flatten()
        .find(|e| e["prefix"] == prefix)
        .and_then(|e| e["state"].as_str())
        .unwrap_or("absent")
        .to_string()
}

#[test]
fn the_kernel_gets_what_is_safe_and_keeps_it_across_restarts() {
    if !lab::ready() {
        return;
    }
    let mut lab = Lab::new("fib");
    let (hp, hx) = (lab.host("pod"), lab.host("frr"));
    let mut p = Podbgp::new(&hp, 64512);
    let mut x = Frr::new(&hx, 65001);
    p.add_peer(PeerSpec::new(hx.v4.into(), 65001));
    x.add_peer(PeerSpec::new(hp.v4.into(), 64512));
    for prefix in [
        "10.99.5.0/24",
        "10.99.6.0/24",
        "192.168.50.0/24",
        "0.0.0.0/0",
        "10.77.0.0/16",
    ] {
        x.advertise(Advert::plain(prefix));
    }
    // A route of another protocol already holds 10.99.6.0/24.
    let gw = hx.v4.to_string();
    let out = hp.exec(&[
        "ip",
        "route",
        "add",
        "10.99.6.0/24",
        "via",
        &gw,
        "proto",
        "static",
    ]);
    assert!(out.status.success(), "{out:?}");
    x.start(&mut lab);
    p.start(&mut lab);
    p.wait_established(&lab, hx.v4.into());
    let ours = format!("10.99.5.0/24 via {gw}");
    p.wait_kernel(&lab, &ours);

    let settled = eventually(Duration::from_secs(10), || {
        fib_state(&p, "0.0.0.0/0") == "rejected"
    });
    assert!(settled, "{}", p.json(&["fib"]));
    assert_eq!(fib_state(&p, "10.99.5.0/24"), "installed");
    assert_eq!(fib_state(&p, "10.99.6.0/24"), "conflict");
    assert_eq!(fib_state(&p, "192.168.50.0/24"), "rejected");
    assert_eq!(fib_state(&p, "10.77.0.0/16"), "rejected");
    assert_eq!(p.kernel_routes(false), vec![format!("{ours} dev eth0")]);
    let static_route = hp.text(&["ip", "route", "show", "10.99.6.0/24"]);
    assert!(static_route.contains("proto static"), "{static_route}");

    // Removed by hand, put back.
    let out = hp.exec(&["ip", "route", "del", "10.99.5.0/24", "proto", "200"]);
    assert!(out.status.success());
    p.wait_kernel(&lab, &ours);

    // The static route goes: ours takes the prefix.
    let out = hp.exec(&["ip", "route", "del", "10.99.6.0/24", "proto", "static"]);
    assert!(out.status.success());
    p.wait_kernel(&lab, &format!("10.99.6.0/24 via {gw}"));

    // The link goes down for a moment (shorter than the hold time): the
    // kernel drops the routes through it without a word for each, and
    // ours are back once it is up.
    let out = hp.exec(&["ip", "link", "set", "eth0", "down"]);
    assert!(out.status.success());
    let dropped = eventually(Duration::from_secs(5), || p.kernel_routes(false).is_empty());
    assert!(dropped, "{:?}", p.kernel_routes(false));
    std::thread::sleep(Duration::from_secs(1));
    let out = hp.exec(&["ip", "link", "set", "eth0", "up"]);
    assert!(out.status.success());
    let back = eventually(Duration::from_secs(10), || {
        p.kernel_routes(false).iter().any(|r| r.starts_with(&ours))
    });
    assert!(back, "{}\n{}", p.json(&["fib"]), hp.text(&["ip", "route"]));
    p.wait_kernel(&lab, &format!("10.99.6.0/24 via {gw}"));

    // Restarts, gentle and not: not one route of ours deleted meanwhile.
    for brutal in [false, true] {
        let log = hp.dir.join(format!("monitor-{brutal}.txt"));
        let file = std::fs::File::create(&log).expect("monitor log");
        let mut monitor = Command::new("ip")
            .args(["netns", "exec", &hp.ns, "ip", "monitor", "route"])
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .expect("ip monitor");
        std::thread::sleep(Duration::from_millis(300));
        if brutal {
            lab.kill_all_in_named(&hp, "podbgp");
        } else {
            p.terminate();
        }
        p.start(&mut lab);
        p.wait_established(&lab, hx.v4.into());
        let back = eventually(Duration::from_secs(20), || {
            fib_state(&p, "10.99.5.0/24") == "installed"
                && fib_state(&p, "10.99.6.0/24") == "installed"
        });
        assert!(back, "{}\n{}", p.json(&["fib"]), lab.logs(&hp));
        std::thread::sleep(Duration::from_millis(500));
        let _ = monitor.kill();
        let _ = monitor.wait();
        let seen = std::fs::read_to_string(&log).unwrap_or_default();
        let deleted: Vec<&str> = seen.lines().filter(|l| l.starts_with("Deleted")).collect();
        assert!(
            deleted.is_empty(),
            "restart (SIGKILL: {brutal}) deleted: {deleted:?}"
        );
        assert_eq!(
            p.kernel_routes(false).len(),
            2,
            "{:?}",
            p.kernel_routes(false)
        );
    }
}

#[test]
fn a_next_hop_two_hops_away_resolves_through_the_kernel() {
    if !lab::ready() {
        return;
    }
    let mut lab = Lab::new("fib-recursive");
    let (hp, hy) = (lab.host("pod"), lab.host("far"));
    // Y's far address, reached from P through Y's near one.
    let out = hy.exec(&["ip", "addr", "add", "10.88.0.2/24", "dev", "eth0"]);
    assert!(out.status.success(), "{out:?}");
    let near = hy.v4.to_string();
    let out = hp.exec(&[
        "ip",
        "route",
        "add",
        "10.88.0.0/24",
        "via",
        &near,
        "proto",
        "static",
    ]);
    assert!(out.status.success(), "{out:?}");
    let far: std::net::IpAddr = "10.88.0.2".parse().expect("ip");
    let mut p = Podbgp::new(&hp, 64512);
    let mut y = Frr::new(&hy, 65002);
    let mut to_y = PeerSpec::new(far, 65002);
    to_y.multihop = Some(2);
    p.add_peer(to_y);
    let mut to_p = PeerSpec::new(hp.v4.into(), 64512);
    to_p.source = Some(far);
    to_p.multihop = Some(2);
    y.add_peer(to_p);
    y.advertise(Advert::plain("10.99.8.0/24"));
    y.start(&mut lab);
    p.start(&mut lab);
    p.wait_established(&lab, far);
    let got = p.wait_route(&lab, "10.99.8.0/24");
    assert_eq!(got.next_hop, "10.88.0.2");
    p.wait_kernel(&lab, &format!("10.99.8.0/24 via {near}"));

    // The way to the next hop goes: so does the route, and the core hears
    // the next hop is unreachable.
    let out = hp.exec(&["ip", "route", "del", "10.88.0.0/24", "proto", "static"]);
    assert!(out.status.success());
    let gone = eventually(Duration::from_secs(10), || {
        p.kernel_routes(false)
            .iter()
            .all(|r| !r.starts_with("10.99.8.0/24"))
    });
    assert!(gone, "{:?}", p.kernel_routes(false));
    let rib = p.json(&["global", "rib", "10.99.8.0/24"]);
    let reason = rib[0]["paths"][0]["reason"].as_str().unwrap_or("");
    assert_eq!(reason, "NextHopUnreachable", "{rib}");
}

#[test]
fn equal_paths_make_one_multipath_route() {
    if !lab::ready() {
        return;
    }
    let mut lab = Lab::new("fib-multipath");
    let (hp, ha, hb) = (lab.host("pod"), lab.host("a"), lab.host("b"));
    let mut p = Podbgp::new(&hp, 64512);
    let mut routers = Vec::new();
    for h in [&ha, &hb] {
        p.add_peer(PeerSpec::new(h.v4.into(), 64512));
        let mut r = Frr::new(h, 64512);
        r.add_peer(PeerSpec::new(hp.v4.into(), 64512));
        r.advertise(Advert::plain("10.99.9.0/24"));
        r.start(&mut lab);
        routers.push(r);
    }
    p.start(&mut lab);
    let both = eventually(Duration::from_secs(20), || {
        let text = hp.text(&["ip", "route", "show", "10.99.9.0/24", "proto", "200"]);
        text.contains(&format!("via {} ", ha.v4)) && text.contains(&format!("via {} ", hb.v4))
    });
    assert!(
        both,
        "{}\n{}",
        hp.text(&["ip", "route", "show", "10.99.9.0/24"]),
        lab.logs(&hp)
    );
}
