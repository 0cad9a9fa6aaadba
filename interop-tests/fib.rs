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

/// A lab with podbgp P (AS 64512) and FRR X (AS 65001) peered, X to
/// advertise `prefixes`; neither started.
fn frr_feeding(name: &str, prefixes: &[&str]) -> (Lab, lab::Host, lab::Host, Podbgp, Frr) {
    let mut lab = Lab::new(name);
    let (hp, hx) = (lab.host("pod"), lab.host("frr"));
    let mut p = Podbgp::new(&hp, 64512);
    let mut x = Frr::new(&hx, 65001);
    p.add_peer(PeerSpec::new(hx.v4.into(), 65001));
    x.add_peer(PeerSpec::new(hp.v4.into(), 64512));
    for prefix in prefixes {
        x.advertise(Advert::plain(prefix));
    }
    (lab, hp, hx, p, x)
}

#[test]
fn the_kernel_gets_what_is_safe_and_keeps_it_across_restarts() {
    if !lab::ready() {
        return;
    }
    let (mut lab, hp, hx, mut p, mut x) = frr_feeding(
        "fib",
        &[
            "10.99.5.0/24",
            "10.99.6.0/24",
            "192.168.50.0/24",
            "0.0.0.0/0",
            "10.77.0.0/16",
        ],
    );
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

/// P's static route to Y's far subnet 10.88.0.0/24, through `gw`.
fn static_via(hp: &lab::Host, gw: &str) {
    let out = hp.exec(&[
        "ip",
        "route",
        "replace",
        "10.88.0.0/24",
        "via",
        gw,
        "proto",
        "static",
    ]);
    assert!(out.status.success(), "{out:?}");
}

/// podbgp P and FRR Y (AS 65002) two hops apart: their session runs
/// between P's address and Y's far one, 10.88.0.2, which P reaches
/// through a static route via Y's near address (Y's `extra` addresses
/// beside it). Y advertises `prefixes`; both started, the session up.
fn far_peer(
    name: &str,
    prefixes: &[&str],
    extra: &[&str],
) -> (Lab, lab::Host, lab::Host, Podbgp, Frr) {
    let mut lab = Lab::new(name);
    let (hp, hy) = (lab.host("pod"), lab.host("far"));
    for a in std::iter::once(&"10.88.0.2/24").chain(extra) {
        let out = hy.exec(&["ip", "addr", "add", a, "dev", "eth0"]);
        assert!(out.status.success(), "{out:?}");
    }
    static_via(&hp, &hy.v4.to_string());
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
    for prefix in prefixes {
        y.advertise(Advert::plain(prefix));
    }
    y.start(&mut lab);
    p.start(&mut lab);
    p.wait_established(&lab, far);
    (lab, hp, hy, p, y)
}

#[test]
fn a_next_hop_two_hops_away_resolves_through_the_kernel() {
    if !lab::ready() {
        return;
    }
    let (lab, hp, hy, p, _y) = far_peer("fib-recursive", &["10.99.8.0/24"], &[]);
    let near = hy.v4.to_string();
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
    // It names a group object of two.
    let id = nexthop_id(&p, "10.99.9.0/24").expect("a route naming an object");
    let group = object(&hp, id);
    assert!(group.contains("group"), "{group}");

    // One path goes: the route goes through the other alone, and the
    // group and its members are deleted; it comes back: a group again.
    routers[1].shutdown_peer(hp.v4.into());
    let one = eventually(Duration::from_secs(10), || {
        let text = hp.text(&["ip", "route", "show", "10.99.9.0/24", "proto", "200"]);
        text.contains(&format!("via {} ", ha.v4)) && !text.contains(&format!("via {} ", hb.v4))
    });
    assert!(one, "{}", hp.text(&["ip", "route", "show", "10.99.9.0/24"]));
    let left = eventually(Duration::from_secs(5), || our_objects(&hp).len() == 1);
    assert!(left, "{:?}", our_objects(&hp));
    routers[1].undo_shutdown_peer(hp.v4.into());
    let both = eventually(Duration::from_secs(20), || {
        let text = hp.text(&["ip", "route", "show", "10.99.9.0/24", "proto", "200"]);
        text.contains(&format!("via {} ", ha.v4)) && text.contains(&format!("via {} ", hb.v4))
    });
    assert!(
        both,
        "{}",
        hp.text(&["ip", "route", "show", "10.99.9.0/24"])
    );
    let id = nexthop_id(&p, "10.99.9.0/24").expect("a route naming an object");
    assert!(object(&hp, id).contains("group"), "{}", object(&hp, id));
    // The group and its two members, nothing left over.
    let three = eventually(Duration::from_secs(5), || our_objects(&hp).len() == 3);
    assert!(three, "{:?}", our_objects(&hp));
}

/// The nexthop object our route to `prefix` names.
fn nexthop_id(p: &Podbgp, prefix: &str) -> Option<u32> {
    p.kernel_routes_with_ids(prefix.contains(':'))
        .into_iter()
        .find(|(r, _)| r.starts_with(prefix))
        .and_then(|(_, id)| id)
}

/// `ip nexthop show id ID`, one line.
fn object(h: &lab::Host, id: u32) -> String {
    h.text(&["ip", "nexthop", "show", "id", &id.to_string()])
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Our nexthop objects, one line each.
fn our_objects(h: &lab::Host) -> Vec<String> {
    h.text(&["ip", "nexthop", "show", "proto", "200"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// Record `ip monitor route nexthop` in `host` while `f` runs; the lines.
fn monitored(h: &lab::Host, name: &str, f: impl FnOnce()) -> Vec<String> {
    let log = h.dir.join(format!("monitor-{name}.txt"));
    let file = std::fs::File::create(&log).expect("monitor log");
    let mut monitor = Command::new("ip")
        .args(["netns", "exec", &h.ns, "ip", "monitor", "route", "nexthop"])
        .stdout(file)
        .stderr(Stdio::null())
        .spawn()
        .expect("ip monitor");
    std::thread::sleep(Duration::from_millis(300));
    f();
    std::thread::sleep(Duration::from_millis(500));
    let _ = monitor.kill();
    let _ = monitor.wait();
    std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_next_hop_that_moves_takes_its_routes_along_in_one_object_replace() {
    if !lab::ready() {
        return;
    }
    let prefixes = ["10.99.7.0/24", "10.99.8.0/24"];
    // A second near address of Y's, for the way to its far one to move to.
    let (lab, hp, hy, p, _y) = far_peer("fib-nhmove", &prefixes, &["10.77.0.200/24"]);
    let near = hy.v4.to_string();
    for prefix in &prefixes {
        p.wait_kernel(&lab, &format!("{prefix} via {near}"));
    }
    // One object for the next hop, named by both routes.
    let id = nexthop_id(&p, "10.99.7.0/24").expect("a route naming an object");
    assert_eq!(nexthop_id(&p, "10.99.8.0/24"), Some(id));
    assert!(
        object(&hp, id).contains(&format!("via {near} ")),
        "{}",
        object(&hp, id)
    );
    assert_eq!(our_objects(&hp).len(), 1, "{:?}", our_objects(&hp));

    // The way to the next hop moves: the object is replaced, the routes
    // still name it and go the new way.
    let seen = monitored(&hp, "move", || {
        static_via(&hp, "10.77.0.200");
        let moved = eventually(Duration::from_secs(10), || {
            object(&hp, id).contains("via 10.77.0.200 ")
        });
        assert!(
            moved,
            "{}
{}",
            object(&hp, id),
            lab.logs(&hp)
        );
    });
    for prefix in &prefixes {
        assert_eq!(
            nexthop_id(&p, prefix),
            Some(id),
            "{:?}",
            p.kernel_routes(false)
        );
        p.wait_kernel(&lab, &format!("{prefix} via 10.77.0.200"));
    }
    let replaced: Vec<&String> = seen.iter().filter(|l| l.starts_with("id ")).collect();
    assert_eq!(replaced.len(), 1, "one object write: {seen:?}");
    assert_eq!(our_objects(&hp).len(), 1, "{:?}", our_objects(&hp));
    let gateways = p.json(&["fib"]);
    assert!(gateways.to_string().contains("10.77.0.200"), "{gateways}");
}

#[test]
fn objects_off_and_on_across_restarts_without_a_route_deleted_or_added_again() {
    if !lab::ready() {
        return;
    }
    let (mut lab, hp, hx, mut p, mut x) =
        frr_feeding("fib-objects", &["10.99.5.0/24", "10.99.6.0/24"]);
    x.start(&mut lab);
    let gw = hx.v4.to_string();
    let installed = |p: &Podbgp, objects: bool| {
        eventually(Duration::from_secs(20), || {
            let routes = p.kernel_routes_with_ids(false);
            routes.len() == 2
                && routes
                    .iter()
                    .all(|(r, id)| r.contains(&format!("via {gw} ")) && id.is_some() == objects)
                && fib_state(p, "10.99.5.0/24") == "installed"
                && fib_state(p, "10.99.6.0/24") == "installed"
        })
    };
    // Off: the routes carry their gateway, as on a kernel without objects.
    p.fib_extra = "nexthop_objects = false".into();
    p.start(&mut lab);
    assert!(
        installed(&p, false),
        "{:?}",
        p.kernel_routes_with_ids(false)
    );
    assert!(our_objects(&hp).is_empty(), "{:?}", our_objects(&hp));

    // On, off, on and on again, each by a restart: routes are replaced in
    // place when they change form (never deleted), and a restart that
    // changes nothing writes nothing.
    for (objects, changes) in [
        (false, false),
        (true, true),
        (true, false),
        (false, true),
        (true, true),
    ] {
        p.fib_extra = format!("nexthop_objects = {objects}");
        let seen = monitored(&hp, &format!("{objects}-{changes}"), || {
            p.terminate();
            p.start(&mut lab);
            p.wait_established(&lab, hx.v4.into());
            assert!(
                installed(&p, objects),
                "{:?}
{}",
                p.kernel_routes_with_ids(false),
                lab.logs(&hp)
            );
            let tidy = eventually(Duration::from_secs(5), || {
                our_objects(&hp).len() == usize::from(objects)
            });
            assert!(tidy, "{:?}", our_objects(&hp));
        });
        let deleted: Vec<&String> = seen
            .iter()
            .filter(|l| l.starts_with("Deleted 10.99."))
            .collect();
        assert!(deleted.is_empty(), "objects {objects}: {seen:?}");
        let routes: Vec<&String> = seen.iter().filter(|l| l.starts_with("10.99.")).collect();
        if changes {
            assert_eq!(routes.len(), 2, "objects {objects}: {seen:?}");
        } else {
            assert!(routes.is_empty(), "objects {objects}: {seen:?}");
            assert!(seen.is_empty(), "nothing written: {seen:?}");
        }
    }
}
