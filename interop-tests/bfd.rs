//! BFD against FRR's bfdd and BIRD's `protocol bfd`, each in a network
//! namespace on one switch, with BGP over the same link:
//!
//!   with_frr    podbgp P (AS 64512, BFD 300/300/3) --- FRR F (AS 65001, bfdd 200/100/5)
//!               F's UDP 3784 dropped by nftables, then let through again;
//!               then F sets the session AdminDown
//!   with_bird   podbgp P (AS 64512, BFD 100/100/3) --- BIRD B (AS 65002, 100/100/3)
//!               B's cable pulled
//!
//! RFC 5880 §6.8.1-§6.8.7 (handshake, negotiated intervals, detection
//! time), RFC 5881 (single hop, UDP 3784, TTL 255), RFC 5882 §3.2 (a failure
//! tears BGP down at once, an AdminDown does not), RFC 9384 (Cease / BFD
//! Down). Every BGP session has a 90 s hold time, so routes that leave
//! within seconds left because of BFD. Needs root, frr, bird2.

#[path = "lab/mod.rs"]
mod lab;

use std::time::Duration;

use lab::bird::Bird;
use lab::frr::Frr;
use lab::podbgp::Podbgp;
use lab::{eventually, Advert, BfdSpec, Host, Lab, PeerSpec, Speaker};
use serde_json::Value;

/// P's view of its BFD session with `peer`.
fn session(p: &Podbgp, peer: &Host) -> Value {
    let list = p.json(&["bfd"]);
    list.as_array()
        .into_iter()
        .flatten()
        .find(|s| s["peer"] == peer.v4.to_string())
        .cloned()
        .unwrap_or(Value::Null)
}

fn wait_bfd(lab: &Lab, p: &Podbgp, peer: &Host, state: &str) -> Value {
    // Up means both ends Up: only then do the intervals each end asked
    // for apply (RFC 5880 §6.8.3: a session not yet Up sends at most one
    // packet a second, and says so), so a test reading them waits for it.
    let ok = eventually(Duration::from_secs(20), || {
        let s = session(p, peer);
        s["state"] == state && (state != "Up" || s["remote_state"] == "Up")
    });
    assert!(
        ok,
        "BFD with {} not {state}: {}\n{}",
        peer.name,
        session(p, peer),
        lab.logs(p.host())
    );
    session(p, peer)
}

fn has_route(p: &Podbgp, prefix: &str) -> bool {
    p.kernel_routes(false).iter().any(|r| r.starts_with(prefix))
}

/// Drop (or let through again) every BFD packet in and out of `host`.
fn block_bfd(host: &Host, block: bool) {
    let script = if block {
        "table inet bfdblock {\n chain in { type filter hook input priority 0; udp dport 3784 drop; }\n \
         chain out { type filter hook output priority 0; udp dport 3784 drop; }\n}\n"
    } else {
        "delete table inet bfdblock\n"
    };
    let path = host.dir.join("bfdblock.nft");
    std::fs::write(&path, script).expect("nft script");
    let out = host.exec(&["nft", "-f", &path.to_string_lossy()]);
    assert!(out.status.success(), "nft: {out:?}");
}

#[test]
fn with_frr() {
    if !lab::ready() {
        return;
    }
    let mut lab = Lab::new("bfd-frr");
    let (hp, hf) = (lab.host("p"), lab.host("f"));
    let mut p = Podbgp::new(&hp, 64512);
    p.hold_time = 90;
    p.metrics = true;
    let mut f = Frr::new(&hf, 65001);
    let mut to_f = PeerSpec::new(hf.v4.into(), 65001);
    to_f.bfd = Some(BfdSpec {
        min_rx: 300,
        min_tx: 300,
        multiplier: 3,
    });
    p.add_peer(to_f);
    let mut to_p = PeerSpec::new(hp.v4.into(), 64512);
    let f_timers = BfdSpec {
        min_rx: 200,
        min_tx: 100,
        multiplier: 5,
    };
    to_p.bfd = Some(f_timers);
    f.add_peer(to_p);
    f.advertise(Advert::plain("10.61.0.0/24"));
    f.start(&mut lab);
    p.start(&mut lab);
    p.wait_established(&lab, hf.v4.into());

    // Up both ways, intervals negotiated: each sends at the slower of its
    // own TX and the other's RX (300 ms both); P waits F's multiplier times
    // the slower of its RX and F's TX (5 x 300), F 3 x 300 (RFC 5880 §6.8.4).
    let s = wait_bfd(&lab, &p, &hf, "Up");
    assert_eq!(s["transmit_interval_ms"], 300.0, "{s}");
    assert_eq!(s["detection_time_ms"], 1500.0, "{s}");
    assert_eq!(s["remote_detect_multiplier"], 5, "{s}");
    let peers: Value = serde_json::from_str(&f.vtysh("show bfd peers json")).unwrap_or(Value::Null);
    let theirs = peers
        .as_array()
        .into_iter()
        .flatten()
        .find(|x| x["peer"] == hp.v4.to_string())
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(theirs["status"], "up", "FRR: {peers}");
    assert_eq!(
        theirs["remote-id"], s["local_discriminator"],
        "FRR: {theirs}"
    );
    assert_eq!(theirs["id"], s["remote_discriminator"], "FRR: {theirs}");
    let n = p.json(&["neighbor", &hf.v4.to_string()]);
    assert_eq!(n["bfd"]["state"], "Up", "{n}");
    p.wait_kernel(&lab, "10.61.0.0/24");

    // A Control packet that a router forwarded (TTL 64, not 255) is
    // dropped and counted, never taken (RFC 5881 §5).
    let forged = format!(
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 64)\n\
         s.sendto(bytes.fromhex('2040031800000001000000000007a1200007a12000000000'), ('{}', 3784))",
        hp.v4
    );
    assert!(hf.exec(&["python3", "-c", &forged]).status.success());
    let dropped = |text: &str| text.contains("podbgp_bfd_packets_dropped_total{reason=\"ttl\"} 1");
    let counted = eventually(Duration::from_secs(5), || {
        dropped(&p.metrics_get("/metrics").1)
    });
    assert!(counted, "{}", p.metrics_get("/metrics").1);
    assert_eq!(
        session(&p, &hf)["state"],
        "Up",
        "the forged Down changed nothing"
    );

    // BFD's packets dropped at F: the session fails, and the BGP session
    // and F's route go long before the 90 s hold time, whichever side
    // noticed first (F's detection time is the shorter) and sent the
    // Cease / BFD Down.
    block_bfd(&hf, true);
    let gone = eventually(Duration::from_secs(10), || !has_route(&p, "10.61.0.0/24"));
    assert!(gone, "the route stayed\n{}", lab.logs(&hp));
    let n = p.json(&["neighbor", &hf.v4.to_string()]);
    assert!(
        n["last_error"].as_str().unwrap_or("").contains("BfdDown"),
        "the session ended for BFD: {n}"
    );
    let down = eventually(Duration::from_secs(10), || {
        p.json(&["neighbor", &hf.v4.to_string()])["bfd"]["state"] == "Down"
    });
    assert!(down, "{}", p.json(&["neighbor", &hf.v4.to_string()]));

    // Let through again: BFD and BGP come back, and the route.
    block_bfd(&hf, false);
    wait_bfd(&lab, &p, &hf, "Up");
    p.wait_established(&lab, hf.v4.into());
    p.wait_kernel(&lab, "10.61.0.0/24");

    // F shuts its side down (AdminDown): not a failure; BGP stays up.
    let profile = format!("profile {}", lab::frr::bfd_profile(&f_timers));
    let out = hf.exec(&[
        "vtysh",
        "-N",
        &hf.ns,
        "-c",
        "configure terminal",
        "-c",
        "bfd",
        "-c",
        &profile,
        "-c",
        "shutdown",
    ]);
    assert!(out.status.success(), "{out:?}");
    let ok = eventually(Duration::from_secs(10), || {
        p.json(&["neighbor", &hf.v4.to_string()])["bfd"]["state"] == "AdminDown (by the peer)"
    });
    assert!(ok, "{}", p.json(&["neighbor", &hf.v4.to_string()]));
    std::thread::sleep(Duration::from_secs(3));
    assert!(p.established(hf.v4.into()), "BGP went down with AdminDown");
    assert!(has_route(&p, "10.61.0.0/24"));
    let downs =
        p.json(&["neighbor", &hf.v4.to_string()])["messages"]["established_transitions"].as_u64();
    assert_eq!(downs, Some(2), "one failure, one return, nothing more");
}

#[test]
fn with_bird() {
    if !lab::ready() {
        return;
    }
    let mut lab = Lab::new("bfd-bird");
    let (hp, hb) = (lab.host("p"), lab.host("b"));
    let fast = BfdSpec {
        min_rx: 100,
        min_tx: 100,
        multiplier: 3,
    };
    let mut p = Podbgp::new(&hp, 64512);
    p.hold_time = 90;
    let mut b = Bird::new(&hb, 65002);
    let mut to_b = PeerSpec::new(hb.v4.into(), 65002);
    to_b.bfd = Some(fast);
    p.add_peer(to_b);
    let mut to_p = PeerSpec::new(hp.v4.into(), 64512);
    to_p.bfd = Some(fast);
    b.add_peer(to_p);
    b.advertise(Advert::plain("10.62.0.0/24"));
    b.start(&mut lab);
    p.start(&mut lab);
    p.wait_established(&lab, hb.v4.into());
    let s = wait_bfd(&lab, &p, &hb, "Up");
    assert_eq!(s["transmit_interval_ms"], 100.0, "{s}");
    assert_eq!(s["detection_time_ms"], 300.0, "{s}");
    let theirs = b.birdc(&["show", "bfd", "sessions"]);
    assert!(
        theirs
            .lines()
            .any(|l| l.contains(&hp.v4.to_string()) && l.contains("Up")),
        "BIRD: {theirs}"
    );
    p.wait_kernel(&lab, "10.62.0.0/24");

    // The cable pulled: gone within BFD's detection time, not the hold time.
    lab.cut(&hb);
    let gone = eventually(Duration::from_secs(10), || !has_route(&p, "10.62.0.0/24"));
    assert!(gone, "the route stayed\n{}", lab.logs(&hp));
    let n = p.json(&["neighbor", &hb.v4.to_string()]);
    assert_eq!(n["bfd"]["state"], "Down", "{n}");
    assert!(
        n["bfd"]["diagnostic"]
            .as_str()
            .unwrap_or("")
            .contains("Detection Time Expired"),
        "{n}"
    );
    lab.mend(&hb);
    wait_bfd(&lab, &p, &hb, "Up");
    p.wait_kernel(&lab, "10.62.0.0/24");
}
