//! podbgp reporting to a BMP collector: the collector is
//! `bmp_collector.py`, written from RFC 7854 and RFC 9069 apart from
//! podbgp's own decoder.
//!
//!   p (podbgp, AS 64513) ---- d (podbgp, AS 64512) ---- c (collector)
//!
//! d accepts from p only prefixes inside 10.61.0.0/16 and reports its
//! sessions, each peer's routes before and after that check, and its
//! Loc-RIB. The collector starts once the routes are in: d's task, backing
//! off, finds it and dumps. Needs root.

#[path = "lab/mod.rs"]
mod lab;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use lab::podbgp::Podbgp;
use lab::{eventually, Advert, Lab, PeerSpec, Speaker};
use serde_json::Value;

const COLLECTOR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../interop-tests/bmp_collector.py"
);

fn messages(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Prefixes announced (or withdrawn, `field`) in Route Monitoring of the
/// table (`peer_type`, `post`).
fn prefixes(ms: &[Value], peer_type: u64, post: bool, field: &str) -> BTreeSet<String> {
    ms.iter()
        .filter(|m| m["type"] == "route_monitoring")
        .filter(|m| m["peer_type"] == peer_type && m["post"] == post)
        .flat_map(|m| m[field].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p.as_str().map(String::from))
        .collect()
}

fn eors(ms: &[Value], peer_type: u64, post: bool) -> usize {
    ms.iter()
        .filter(|m| m["type"] == "route_monitoring" && m["eor"] == true)
        .filter(|m| m["peer_type"] == peer_type && m["post"] == post)
        .count()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A metric's value for the peer, from the text exposition.
fn metric(text: &str, name: &str, peer: &str) -> Option<u64> {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(&format!("peer=\"{peer}\"")))
        .filter(|l| l.contains("family=\"ipv4\""))
        .find_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
}

#[test]
fn a_collector_gets_the_sessions_the_tables_and_the_changes() {
    if !lab::ready() {
        return;
    }
    let mut lab = Lab::new("bmp");
    let (hd, hp, hc) = (lab.host("d"), lab.host("p"), lab.host("c"));
    let hs = lab.host("s");
    let mut d = Podbgp::new(&hd, 64512);
    d.metrics = true;
    d.add_peer(PeerSpec::new(hp.v4.into(), 64513));
    d.add_peer(PeerSpec::new(hs.v4.into(), 64512));
    d.neighbor_extra = r#"import = ["10.61.0.0/16 le 24"]"#.into();
    d.extra = format!(
        "[[bmp]]\naddress = \"{}\"\nroute_monitoring = [\"pre-policy\", \"post-policy\", \"loc-rib\"]\nstatistics_interval = 5\n",
        hc.v4
    );
    d.base_mut().adverts = vec![Advert::plain("10.244.1.0/24")];
    let mut p = Podbgp::new(&hp, 64513);
    p.add_peer(PeerSpec::new(hd.v4.into(), 64512));
    p.base_mut().adverts = ["10.61.1.0/24", "10.61.2.0/24", "10.99.0.0/24"]
        .map(Advert::plain)
        .to_vec();
    d.start(&mut lab);
    p.start(&mut lab);
    let rib =
        |d: &Podbgp| -> BTreeSet<String> { d.rib(false).into_iter().map(|r| r.prefix).collect() };
    assert!(
        eventually(Duration::from_secs(30), || rib(&d)
            == set(&["10.61.1.0/24", "10.61.2.0/24"])),
        "d's routes from p: {:?}\n{}",
        rib(&d),
        lab.logs(&hd)
    );

    // The collector comes up; d dumps to it.
    let out = hc.dir.join("bmp.jsonl");
    let out_arg = out.to_string_lossy().into_owned();
    let v4 = hc.v4.to_string();
    lab.spawn(
        &hc,
        &["python3", COLLECTOR, &v4, "11019", &out_arg],
        "collector.log",
    );
    let dumped = eventually(Duration::from_secs(40), || {
        let ms = messages(&out);
        eors(&ms, 0, false) >= 2 && eors(&ms, 0, true) >= 2 && eors(&ms, 3, false) >= 2
    });
    let ms = messages(&out);
    assert!(
        dumped,
        "no dump ended by End-of-RIBs: {ms:#?}\n{}",
        lab.logs(&hd)
    );
    // Initiation first, with the speaker's name and description.
    let first = ms
        .iter()
        .find(|m| m["type"] != "connected")
        .expect("a message");
    assert_eq!(first["type"], "initiation", "{ms:#?}");
    assert!(first["tlvs"]["1"]
        .as_str()
        .is_some_and(|s| s.starts_with("podbgp")));
    assert!(first["tlvs"]["2"].as_str().is_some_and(|s| !s.is_empty()));
    // p's session up, with both OPENs; the Loc-RIB instance up.
    let up: Vec<&Value> = ms.iter().filter(|m| m["type"] == "peer_up").collect();
    let p_up = up
        .iter()
        .find(|m| m["peer"] == hp.v4.to_string())
        .unwrap_or_else(|| panic!("no Peer Up for p: {ms:#?}"));
    assert_eq!(p_up["peer_as"], 64513);
    assert_eq!(p_up["peer_id"], hp.v4.to_string());
    assert_eq!(
        (&p_up["sent_open_as"], &p_up["received_open_as"]),
        (&64512.into(), &64513.into())
    );
    assert!(
        p_up["local_port"] == 179 || p_up["remote_port"] == 179,
        "{p_up}"
    );
    assert!(up
        .iter()
        .any(|m| m["peer_type"] == 3 && m["info"]["3"] == "global"));
    // The dump is the RIB: p's routes as it sent them (pre-policy), those
    // accepted (post-policy), d's best routes (its own included) as the
    // Loc-RIB.
    let accepted = set(&["10.61.1.0/24", "10.61.2.0/24"]);
    assert_eq!(prefixes(&ms, 0, true, "announced"), accepted);
    assert_eq!(
        prefixes(&ms, 0, false, "announced"),
        set(&["10.61.1.0/24", "10.61.2.0/24", "10.99.0.0/24"])
    );
    let loc = prefixes(&ms, 3, false, "announced");
    assert_eq!(
        loc,
        set(&["10.61.1.0/24", "10.61.2.0/24", "10.244.1.0/24"]),
        "{ms:#?}"
    );
    let nh = ms
        .iter()
        .find(|m| m["type"] == "route_monitoring" && m["peer_type"] == 0 && m["eor"] == false)
        .expect("a route");
    assert_eq!(nh["next_hop"], hp.v4.to_string());
    assert_eq!(nh["as_path"], serde_json::json!([64513]));

    // Live: a route d turns away is in p's pre-policy table only; a
    // withdrawal shows in every table.
    let seen = ms.len();
    let (code, _, err) = p.cli(&["global", "rib", "add", "10.99.5.0/24"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = p.cli(&["global", "rib", "del", "10.61.2.0/24"]);
    assert_eq!(code, 0, "{err}");
    let changed = eventually(Duration::from_secs(20), || {
        let ms = messages(&out);
        let new = &ms[seen.min(ms.len())..];
        prefixes(new, 0, false, "announced").contains("10.99.5.0/24")
            && prefixes(new, 0, false, "withdrawn").contains("10.61.2.0/24")
            && prefixes(new, 0, true, "withdrawn").contains("10.61.2.0/24")
            && prefixes(new, 3, false, "withdrawn").contains("10.61.2.0/24")
    });
    let ms = messages(&out);
    assert!(changed, "changes not reported: {:#?}", &ms[seen..]);
    assert!(!prefixes(&ms[seen..], 0, true, "announced").contains("10.99.5.0/24"));
    assert!(!prefixes(&ms[seen..], 3, false, "announced").contains("10.99.5.0/24"));

    // Statistics Reports say what the metrics say.
    let peer = hp.v4.to_string();
    let agree = eventually(Duration::from_secs(20), || {
        let (_, text) = d.metrics_get("/metrics");
        let received = metric(&text, "podbgp_peer_received_routes", &peer);
        let accepted = metric(&text, "podbgp_peer_accepted_routes", &peer);
        let ms = messages(&out);
        let last = ms
            .iter()
            .rev()
            .find(|m| m["type"] == "stats" && m["peer"] == peer.as_str());
        match (received, accepted, last) {
            (Some(r), Some(a), Some(s)) => {
                s["stats"]["7"] == r
                    && s["stats"]["0"] == r - a
                    && s["stats"]["9/1/1"] == r
                    && s["stats"]["8"] == a
                    && s["stats"]["10/1/1"] == a
                    && r == 3
                    && a == 1
            }
            _ => false,
        }
    });
    assert!(
        agree,
        "statistics and metrics differ: {:#?}",
        messages(&out)
    );

    // What a peer sends that is not a plain route change, counted alike
    // in Statistics Reports and metrics. s, a scripted iBGP peer: its
    // routes are outside d's import list (turned away); it withdraws one
    // of them and two it never sent (duplicate withdraws), sends two
    // routes with an ORIGIN of 7 (RFC 7606: treat-as-withdraw) and one
    // with d's own AS in the AS_PATH (a loop).
    let mut s = lab::soak::peer::Peer::new(hs.clone(), 64512, 100, hd.v4);
    s.connect(&[0, 1], false).expect("the session");
    s.withdraw(&[0, 5, 6]).expect("withdrawn");
    let target = |k: u32| lab::soak::peer::prefix(k).network().octets();
    let mut attrs = vec![0x40, 1, 1, 7, 0x40, 2, 0, 0x40, 3, 4];
    attrs.extend(hs.v4.octets());
    attrs.extend([0x40, 5, 4, 0, 0, 0, 100]);
    let mut body = vec![0, 0];
    body.extend((attrs.len() as u16).to_be_bytes());
    body.extend(attrs);
    for k in [2, 3] {
        body.push(27);
        body.extend(target(k));
    }
    let mut raw = vec![0xff; 16];
    raw.extend(((19 + body.len()) as u16).to_be_bytes());
    raw.push(2);
    raw.extend(body);
    s.send_raw(&raw).expect("sent");
    let own_as = bgp::wire::AsPath::sequence([64512]);
    let looped = vec![
        bgp::wire::AttrValue::Origin(bgp::wire::Origin::Igp),
        bgp::wire::AttrValue::AsPath(own_as),
    ];
    s.announce_with(looped, &[4]).expect("sent");
    let peer_s = hs.v4.to_string();
    let anomaly = |text: &str, kind: &str| {
        text.lines()
            .filter(|l| l.starts_with("podbgp_peer_update_anomalies{"))
            .filter(|l| l.contains(&format!("peer=\"{peer_s}\"")))
            .filter(|l| l.contains(&format!("kind=\"{kind}\"")))
            .find_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
    };
    let counted = eventually(Duration::from_secs(20), || {
        let (_, text) = d.metrics_get("/metrics");
        let ms = messages(&out);
        let Some(st) = ms
            .iter()
            .rev()
            .find(|m| m["type"] == "stats" && m["peer"] == peer_s.as_str())
        else {
            return false;
        };
        let want = [
            ("2", "duplicate_withdraw", 2),
            ("11", "treat_as_withdraw_update", 1),
            ("12", "treat_as_withdraw_prefix", 2),
            ("4", "as_path_loop", 1),
            ("5", "originator_id_loop", 0),
            ("3", "cluster_list_loop", 0),
        ];
        want.iter()
            .all(|(stat, kind, n)| st["stats"][*stat] == *n && anomaly(&text, kind) == Some(*n))
            && st["stats"]["0"] == 2
            && st["stats"]["8"] == 0
    });
    assert!(
        counted,
        "statistics and metrics for s: {:#?}\n{}",
        messages(&out)
            .iter()
            .rev()
            .find(|m| m["type"] == "stats" && m["peer"] == peer_s.as_str()),
        d.metrics_get("/metrics").1
    );
    assert!(s.lost().is_none(), "s's session ended: {:?}", s.lost());

    // p leaves for good (`podbgp shutdown`: a Cease): a Peer Down with
    // the peer's NOTIFICATION (reason 3).
    p.shutdown();
    let down = eventually(Duration::from_secs(20), || {
        messages(&out)
            .iter()
            .any(|m| m["type"] == "peer_down" && m["peer"] == peer.as_str() && m["reason"] == 3)
    });
    assert!(down, "no Peer Down: {:#?}", messages(&out));
    let (_, text) = d.metrics_get("/metrics");
    assert!(
        text.contains(&format!(
            "podbgp_bmp_session_up{{collector=\"{}:11019\"}} 1",
            hc.v4
        )),
        "{text}"
    );
}

/// A collector that reads 80 kB a second, far slower than routes come.
const SLOW_COLLECTOR: &str = "import socket, sys, time
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
l.bind((sys.argv[1], 11019))
l.listen(4)
while True:
    c, _ = l.accept()
    while c.recv(4096):
        time.sleep(0.05)
    c.close()
";

#[test]
fn a_collector_that_falls_behind_never_slows_the_sessions() {
    if !lab::ready() {
        return;
    }
    let mut lab = Lab::new("bmp-slow");
    let (hd, hs, hc) = (lab.host("d"), lab.host("s"), lab.host("c"));
    let v4 = hc.v4.to_string();
    lab.spawn(
        &hc,
        &["python3", "-c", SLOW_COLLECTOR, &v4],
        "collector.log",
    );
    let mut d = Podbgp::new(&hd, 64512);
    d.metrics = true;
    let mut spec = PeerSpec::new(hs.v4.into(), 64512);
    spec.passive = true;
    d.add_peer(spec);
    d.extra = format!(
        "[[bmp]]\naddress = \"{v4}\"\nroute_monitoring = [\"pre-policy\", \"post-policy\", \"loc-rib\"]\nqueue_limit_mb = 1\n"
    );
    d.start(&mut lab);
    let collector_up = eventually(Duration::from_secs(20), || {
        d.metrics_get("/metrics").1.contains(&format!(
            "podbgp_bmp_session_up{{collector=\"{v4}:11019\"}} 1"
        ))
    });
    assert!(collector_up, "no BMP session\n{}", lab.logs(&hd));
    // 100,000 routes from a scripted iBGP peer, in UPDATEs of 700,
    // withdrawn and announced again twice: megabytes of BMP.
    let mut s = lab::soak::peer::Peer::new(hs.clone(), 64512, 100, hd.v4);
    let table: Vec<u32> = (0..100_000).collect();
    let start = std::time::Instant::now();
    s.connect(&table, false).expect("the session");
    for _ in 0..2 {
        s.withdraw(&table).expect("withdrawn");
        s.announce(&table).expect("announced");
    }
    // One more route last: once it is in, so is everything before it.
    s.announce(&[100_000]).expect("announced");
    let accepted =
        |d: &Podbgp| d.json(&["neighbor", &hs.v4.to_string()])["accepted"]["ipv4"].as_u64();
    let all = eventually(Duration::from_secs(60), || accepted(&d) == Some(100_001));
    let took = start.elapsed();
    assert!(all, "accepted {:?}\n{}", accepted(&d), lab.logs(&hd));
    // The speaker went at its own pace: the collector could not have
    // taken the routes' BMP messages (megabytes) in this time.
    assert!(took < Duration::from_secs(30), "the routes took {took:?}");
    assert!(s.lost().is_none(), "the session ended: {:?}", s.lost());
    // The collector's session was given up and started again.
    let resynced = eventually(Duration::from_secs(30), || {
        let (_, text) = d.metrics_get("/metrics");
        text.lines()
            .filter(|l| l.starts_with("podbgp_bmp_resyncs_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .any(|n| n >= 1.0)
    });
    assert!(resynced, "no resync\n{}", lab.logs(&hd));
    assert!(lab.logs(&hd).contains("fell behind"), "{}", lab.logs(&hd));
}
