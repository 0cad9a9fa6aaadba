//! `podbgp mrt dump` read back by an MRT reader written from RFC 6396
//! apart from podbgp's own (`mrt_reader.py`), and by bgpdump:
//!
//!   p (podbgp, AS 64513) ----.
//!                             d (podbgp, AS 64512, dumps its RIB)
//!   q (podbgp, AS 64514) ----'
//!
//! p and q both send 10.61.1.0/24 (two paths), p also a prefix of its own
//! and an IPv6 one over an IPv6 session; d originates 10.244.1.0/24. The
//! dump must hold every path of d's RIB, each with its peer, next hop and
//! AS_PATH. Then a real table (an excerpt of a RIPE RIS dump, see
//! `data/README.md`) replayed into podbgp and into BIRD: the same best
//! path for every prefix. Needs root.

#[path = "lab/mod.rs"]
mod lab;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use bgp::wire::mrt::Record;
use lab::bird::Bird;
use lab::podbgp::Podbgp;
use lab::{eventually, Advert, Lab, PeerSpec, Speaker};
use serde_json::Value;

const READER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../interop-tests/mrt_reader.py"
);

/// (prefix, peer, next hop, AS_PATH) of every path.
type Paths = BTreeSet<(String, String, String, Vec<u64>)>;

/// Every path of d's RIB, from `global rib -j` (both families).
fn rib_paths(d: &Podbgp) -> Paths {
    let mut out = Paths::new();
    for family in ["ipv4", "ipv6"] {
        let v = d.json(&["global", "rib", "-a", family]);
        for dest in v.as_array().cloned().unwrap_or_default() {
            for p in dest["paths"].as_array().cloned().unwrap_or_default() {
                let source = match p["source"].as_str().unwrap_or("") {
                    "local" => "0.0.0.0".to_string(),
                    s => s.to_string(),
                };
                let next_hop = p["next_hop"]
                    .as_str()
                    .and_then(|n| n.split_whitespace().next())
                    .unwrap_or("")
                    .to_string();
                let path = p["as_path"]
                    .as_str()
                    .unwrap_or("")
                    .split_whitespace()
                    .filter_map(|a| a.parse().ok())
                    .collect();
                out.insert((
                    dest["prefix"].as_str().unwrap_or("").to_string(),
                    source,
                    next_hop,
                    path,
                ));
            }
        }
    }
    out
}

#[test]
fn an_mrt_dump_holds_every_path_of_the_rib() {
    if !lab::ready() {
        return;
    }
    let mut lab = Lab::new("mrt");
    let (hd, hp, hq) = (lab.host("d"), lab.host("p"), lab.host("q"));
    let mut d = Podbgp::new(&hd, 64512);
    d.add_peer(PeerSpec::new(hp.v4.into(), 64513));
    d.add_peer(PeerSpec::new(hp.v6.into(), 64513));
    d.add_peer(PeerSpec::new(hq.v4.into(), 64514));
    d.base_mut().adverts = vec![Advert::plain("10.244.1.0/24")];
    let mut p = Podbgp::new(&hp, 64513);
    p.add_peer(PeerSpec::new(hd.v4.into(), 64512));
    p.add_peer(PeerSpec::new(hd.v6.into(), 64512));
    p.base_mut().adverts = ["10.61.1.0/24", "10.62.0.0/16", "fd61:1::/48"]
        .map(Advert::plain)
        .to_vec();
    let mut q = Podbgp::new(&hq, 64514);
    q.add_peer(PeerSpec::new(hd.v4.into(), 64512));
    q.base_mut().adverts = vec![Advert::plain("10.61.1.0/24")];
    for s in [&mut d, &mut p, &mut q] {
        s.start(&mut lab);
    }
    let complete = eventually(Duration::from_secs(30), || {
        let paths = rib_paths(&d);
        let prefixes: BTreeSet<&str> = paths.iter().map(|p| p.0.as_str()).collect();
        paths.iter().filter(|p| p.0 == "10.61.1.0/24").count() == 2
            && prefixes.contains("fd61:1::/48")
            && prefixes.contains("10.62.0.0/16")
    });
    assert!(complete, "d's RIB: {:?}\n{}", rib_paths(&d), lab.logs(&hd));
    let want = rib_paths(&d);

    let file = hd.dir.join("rib.mrt");
    let file_arg = file.to_string_lossy().into_owned();
    let (code, out, err) = d.cli(&["mrt", "dump", &file_arg]);
    assert_eq!(code, 0, "mrt dump: {out}{err}");
    assert!(
        out.contains("4 prefixes") && out.contains("4 peers"),
        "{out}"
    );
    let read = std::process::Command::new("python3")
        .args([READER, &file_arg])
        .output()
        .expect("python3");
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let mut got = Paths::new();
    let mut sequences = Vec::new();
    for line in String::from_utf8_lossy(&read.stdout).lines() {
        let r: Value = serde_json::from_str(line).expect("JSON");
        sequences.push(r["sequence"].as_u64().unwrap_or(u64::MAX));
        for e in r["entries"].as_array().cloned().unwrap_or_default() {
            let path = e["as_path"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default();
            got.insert((
                r["prefix"].as_str().unwrap_or("").to_string(),
                e["peer"].as_str().unwrap_or("").to_string(),
                e["next_hop"].as_str().unwrap_or("").to_string(),
                path,
            ));
        }
    }
    assert_eq!(got, want);
    assert_eq!(sequences, (0..4).collect::<Vec<u64>>(), "sequence numbers");
    // And bgpdump, the route collectors' reader, finds the same paths.
    assert_eq!(bgpdump_paths(&file_arg), want);

    // A bad command line is a usage error.
    let (code, _, err) = d.cli(&["mrt", "dump"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = d.cli(&["mrt", "load", "x"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = d.cli(&["mrt", "replay", &file_arg, "--peer", "10.0.0.1"]);
    assert_eq!(code, 2, "{err}");

    // The dump replayed into e over eBGP from x: every IPv4 prefix (the
    // IPv6 one needs an IPv6 session), x's AS first and x the next hop.
    let (hx, he) = (lab.host("x"), lab.host("e"));
    let mut e = Podbgp::new(&he, 64700);
    let mut from_x = PeerSpec::new(hx.v4.into(), 64600);
    from_x.passive = true;
    e.add_peer(from_x);
    e.start(&mut lab);
    let peer = he.v4.to_string();
    lab.spawn(
        &hx,
        &[
            Podbgp::bin(),
            "mrt",
            "replay",
            &file_arg,
            "--peer",
            &peer,
            "--local-as",
            "64600",
        ],
        "replay.log",
    );
    let replayed =
        |e: &Podbgp| -> BTreeSet<String> { e.rib(false).into_iter().map(|r| r.prefix).collect() };
    let v4: BTreeSet<String> = want
        .iter()
        .map(|p| p.0.clone())
        .filter(|p| !p.contains(':'))
        .collect();
    let all = eventually(Duration::from_secs(20), || replayed(&e) == v4);
    assert!(
        all,
        "e holds {:?}, the dump {v4:?}\n{}",
        replayed(&e),
        lab.logs(&hx)
    );
    for r in e.rib(false) {
        assert_eq!(r.next_hop, hx.v4.to_string(), "{r:?}");
        assert_eq!(r.as_path.first(), Some(&64600), "{r:?}");
    }
    let own = e
        .rib(false)
        .into_iter()
        .find(|r| r.prefix == "10.62.0.0/16")
        .expect("p's prefix");
    assert_eq!(own.as_path, [64600, 64513]);
}

/// (prefix, peer, next hop, AS_PATH) of every path of a TABLE_DUMP_V2
/// file as `bgpdump -m` prints them.
fn bgpdump_paths(file: &str) -> Paths {
    let text = bgpdump(file);
    let mut out = Paths::new();
    for line in text.lines() {
        // TABLE_DUMP2|time|B|peer|peer AS|prefix|AS path|origin|next hop|...
        let f: Vec<&str> = line.split('|').collect();
        assert!(f.len() > 8 && f[0] == "TABLE_DUMP2", "bgpdump: {line}");
        let path = f[6]
            .split_whitespace()
            .filter_map(|a| a.parse().ok())
            .collect();
        out.insert((f[5].into(), f[3].into(), f[8].into(), path));
    }
    out
}

/// `bgpdump -m FILE...`: one line per path, message or state change.
fn bgpdump(file: &str) -> String {
    let out = std::process::Command::new("bgpdump")
        .args(["-m", file])
        .output()
        .expect("bgpdump (make deps installs it)");
    assert!(
        out.status.success(),
        "bgpdump {file}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_update_log_holds_what_peers_sent_and_their_states() {
    if !lab::ready() {
        return;
    }
    let mut lab = Lab::new("mrt-log");
    let (hd, hp) = (lab.host("d"), lab.host("p"));
    let dir = hd.dir.join("updates");
    let mut d = Podbgp::new(&hd, 64512);
    d.add_peer(PeerSpec::new(hp.v4.into(), 64513));
    d.extra = format!(
        "[mrt]\nupdates_dir = \"{}\"\nrotate_seconds = 60\n",
        dir.display()
    );
    let mut p = Podbgp::new(&hp, 64513);
    p.add_peer(PeerSpec::new(hd.v4.into(), 64512));
    p.base_mut().adverts = vec![Advert::plain("10.61.1.0/24")];
    d.start(&mut lab);
    p.start(&mut lab);
    let (code, _, err) = p.cli(&["global", "rib", "add", "10.61.7.0/24"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = p.cli(&["global", "rib", "del", "10.61.7.0/24"]);
    assert_eq!(code, 0, "{err}");

    let peer = hp.v4.to_string();
    let records = || -> Vec<Value> {
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .map(|r| {
                r.filter_map(|e| Some(e.ok()?.path().to_string_lossy().into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        if files.is_empty() {
            return Vec::new();
        }
        let out = std::process::Command::new("python3")
            .arg(READER)
            .args(&files)
            .output()
            .expect("python3");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let has = |rs: &[Value], field: &str, prefix: &str| {
        rs.iter().any(|r| {
            r["type"] == "message"
                && r["peer"] == peer.as_str()
                && r[field]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == prefix))
        })
    };
    let logged = eventually(Duration::from_secs(20), || {
        let rs = records();
        has(&rs, "announced", "10.61.1.0/24")
            && has(&rs, "announced", "10.61.7.0/24")
            && has(&rs, "withdrawn", "10.61.7.0/24")
    });
    let rs = records();
    assert!(logged, "the log: {rs:#?}\n{}", lab.logs(&hd));
    // The session's way up, state by state, ending Established.
    let states: Vec<(u64, u64)> = rs
        .iter()
        .filter(|r| r["type"] == "state" && r["peer"] == peer.as_str())
        .filter_map(|r| Some((r["old"].as_u64()?, r["new"].as_u64()?)))
        .collect();
    assert!(states.contains(&(5, 6)), "{states:?}");
    // bgpdump reads the same announcements, withdrawal and states.
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("the directory")
        .filter_map(|e| Some(e.ok()?.path().to_string_lossy().into_owned()))
        .collect();
    files.sort();
    let mut lines = Vec::new();
    for f in &files {
        lines.extend(bgpdump(f).lines().map(String::from));
    }
    for (what, prefix) in [
        ("A", "10.61.1.0/24"),
        ("A", "10.61.7.0/24"),
        ("W", "10.61.7.0/24"),
    ] {
        let found = lines.iter().any(|l| {
            let f: Vec<&str> = l.split('|').collect();
            f.len() > 5 && f[0] == "BGP4MP" && f[2] == what && f[3] == peer && f[5] == prefix
        });
        assert!(found, "bgpdump: no {what} {prefix} from {peer}: {lines:#?}");
    }
    assert!(
        lines.iter().any(|l| l.starts_with("BGP4MP")
            && l.contains("|STATE|")
            && l.contains(&peer)
            && l.ends_with("|5|6")),
        "bgpdump: no OpenConfirm to Established: {lines:#?}"
    );
    let m = rs
        .iter()
        .find(|r| r["type"] == "message" && r["peer"] == peer.as_str())
        .expect("a message");
    assert_eq!(
        (&m["peer_as"], &m["local_as"]),
        (&64513.into(), &64512.into())
    );
    assert_eq!(m["local"], hd.v4.to_string());
    // Files are named for the minute they start, UTC.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .expect("the directory")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("updates.") && n.len() == "updates.YYYYMMDD.HHMM".len()),
        "{names:?}"
    );
}

/// The RIB excerpt kept as test data; `data/README.md` names its source.
const RIS_EXCERPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../interop-tests/data/ris-bview.20020722.2337.excerpt.gz"
);

/// How many of the dump's peers are replayed, each from a host of its own.
const REPLAYED_PEERS: usize = 8;

/// The dump's peers with the most paths, most first, and every prefix
/// with the number of those peers' paths to it; read with podbgp's codec.
fn busiest_peers(file: &str) -> (Vec<IpAddr>, BTreeMap<String, usize>) {
    use std::io::Read;
    let raw = std::fs::read(file).expect("the excerpt");
    let mut data = Vec::new();
    flate2::read::GzDecoder::new(&raw[..])
        .read_to_end(&mut data)
        .expect("gzip");
    let mut paths: Vec<(IpAddr, String)> = Vec::new();
    let mut at = 0;
    while let Ok(Some((_, record, len))) = Record::decode(&data[at..]) {
        at += len;
        if let Record::TableDump { prefix, peer, .. } = record {
            paths.push((peer, prefix.to_string()));
        }
    }
    assert_eq!(at, data.len(), "the excerpt reads whole");
    let mut per_peer: BTreeMap<IpAddr, usize> = BTreeMap::new();
    for (peer, _) in &paths {
        *per_peer.entry(*peer).or_default() += 1;
    }
    let mut peers: Vec<(IpAddr, usize)> = per_peer.into_iter().collect();
    peers.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let peers: Vec<IpAddr> = peers
        .into_iter()
        .take(REPLAYED_PEERS)
        .map(|p| p.0)
        .collect();
    let mut prefixes: BTreeMap<String, usize> = BTreeMap::new();
    for (peer, prefix) in paths {
        if peers.contains(&peer) {
            *prefixes.entry(prefix).or_default() += 1;
        }
    }
    (peers, prefixes)
}

/// prefix → (next hop, AS_PATH) of each best path.
fn best_paths(speaker: &dyn Speaker) -> BTreeMap<String, (String, Vec<u32>)> {
    speaker
        .rib(false)
        .into_iter()
        .map(|r| (r.prefix, (r.next_hop, r.as_path)))
        .collect()
}

#[test]
fn a_real_rib_replays_into_podbgp_and_bird_with_the_same_best_paths() {
    if !lab::ready() {
        return;
    }
    let (peers, prefixes) = busiest_peers(RIS_EXCERPT);
    let contested = prefixes.values().filter(|n| **n > 1).count();
    assert!(
        peers.len() == REPLAYED_PEERS && contested > 1000,
        "{peers:?}: {contested} prefixes with more than one path"
    );
    let mut lab = Lab::new("mrt-ris");
    let (hd, hb) = (lab.host("d"), lab.host("b"));
    let replayers: Vec<_> = (0..REPLAYED_PEERS)
        .map(|i| lab.host(&format!("r{i}")))
        .collect();
    // d (podbgp) and b (BIRD) in one AS with the replaying hosts: iBGP,
    // so every path arrives as the collector's peer sent it, only the next
    // hop the replaying host's.
    let mut d = Podbgp::new(&hd, 64512);
    let mut b = Bird::new(&hb, 64512);
    b.deterministic_med = true;
    for h in &replayers {
        let mut p = PeerSpec::new(h.v4.into(), 64512);
        p.passive = true;
        d.add_peer(p.clone());
        b.add_peer(p);
    }
    d.start(&mut lab);
    b.start(&mut lab);
    for (h, source) in replayers.iter().zip(&peers) {
        let source = source.to_string();
        for (name, target) in [("d", hd.v4), ("b", hb.v4)] {
            let target = target.to_string();
            lab.spawn(
                h,
                &[
                    Podbgp::bin(),
                    "mrt",
                    "replay",
                    RIS_EXCERPT,
                    "--peer",
                    &target,
                    "--local-as",
                    "64512",
                    "--source-peer",
                    &source,
                ],
                &format!("replay-{name}.log"),
            );
        }
    }
    // Every prefix in both, and every replayed path in d.
    let paths: usize = prefixes.values().sum();
    let received = |d: &Podbgp| -> usize {
        d.json(&["neighbor"])
            .as_array()
            .map(|ns| {
                ns.iter()
                    .filter_map(|n| n["accepted"]["ipv4"].as_u64())
                    .sum::<u64>() as usize
            })
            .unwrap_or(0)
    };
    let all = eventually(Duration::from_secs(60), || {
        received(&d) == paths
            && best_paths(&d).len() == prefixes.len()
            && best_paths(&b).len() == prefixes.len()
    });
    assert!(
        all,
        "{} paths of {paths} in d; best paths: d {}, BIRD {}, of {} prefixes\n{}",
        received(&d),
        best_paths(&d).len(),
        best_paths(&b).len(),
        prefixes.len(),
        lab.logs(&replayers[0])
    );
    let (ours, birds) = (best_paths(&d), best_paths(&b));
    let differ: Vec<_> = ours
        .iter()
        .filter(|(prefix, best)| birds.get(*prefix) != Some(*best))
        .map(|(prefix, best)| (prefix, best, birds.get(prefix)))
        .collect();
    assert!(
        differ.is_empty(),
        "{} of {} prefixes with another best path (prefix, podbgp, BIRD): {:#?}",
        differ.len(),
        ours.len(),
        &differ[..differ.len().min(20)]
    );
    // The choice was a real one: among contested prefixes the winner is
    // not always the same peer.
    let winners: BTreeSet<&String> = ours
        .iter()
        .filter(|(prefix, _)| prefixes.get(*prefix).is_some_and(|n| *n > 1))
        .map(|(_, (next_hop, _))| next_hop)
        .collect();
    assert!(winners.len() > 2, "contested prefixes won by {winners:?}");
    eprintln!(
        "{} prefixes, {paths} paths from {} peers, {contested} contested: the same best path \
         in podbgp and BIRD for each; the contested ones won by {} peers",
        ours.len(),
        peers.len(),
        winners.len()
    );
}
