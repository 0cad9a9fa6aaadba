//! Byte-exact tests on messages captured from FRR, BIRD and GoBGP.
//!
//! Each file under `tests/vectors/<implementation>/` holds one message as
//! the implementation sent it, with comments saying who sent it, what the
//! session negotiated and, on `# expect:` lines, what the message contains
//! as an independent decoder read it (`capture/bgpcap.py`). Every vector
//! must decode without error, encode back to the same bytes, and match
//! every one of its expectations; an expectation this test cannot read is
//! a failure, so none is silently skipped.
//!
//! The files are made by `tests/vectors/capture/capture.sh`.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use bgp::wire::*;

mod common;
mod expectations;
use expectations::check;

struct Vector {
    name: String,
    comments: Vec<String>,
    expect: Vec<String>,
    bytes: Vec<u8>,
    ctx: Context,
}

/// The stored vectors, or a fresh capture named by `PODBGP_VECTORS`
/// (`make test` captures one from the installed daemons and runs these
/// tests on it too).
fn vectors_dir() -> PathBuf {
    match std::env::var_os("PODBGP_VECTORS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors"),
    }
}

fn load_all() -> Vec<Vector> {
    let mut out = Vec::new();
    for implementation in ["frr", "bird", "gobgp"] {
        let dir = vectors_dir().join(implementation);
        let mut files: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "hex"))
            .collect();
        files.sort();
        for path in files {
            out.push(load(implementation, &path));
        }
    }
    out
}

fn load(implementation: &str, path: &Path) -> Vector {
    let text = fs::read_to_string(path).expect("readable vector");
    let comments: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| l.trim().to_owned())
        .collect();
    let expect = comments
        .iter()
        .filter_map(|l| l.strip_prefix("expect:"))
        .map(|l| l.trim().to_owned())
        .collect();
    let bytes = common::hex(&text);
    let session = comments
        .iter()
        .find(|l| l.contains("4-octet AS numbers in use"))
        .cloned()
        .unwrap_or_default();
    let add_path = session
        .split("ADD-PATH path ids in this direction:")
        .nth(1)
        .unwrap_or("");
    let ctx = Context {
        four_octet_as: session.contains("4-octet AS numbers in use: yes"),
        extended_message: false,
        add_path: AddPathFamilies {
            ipv4_unicast: add_path.contains("IPv4 unicast"),
            ipv6_unicast: add_path.contains("IPv6 unicast"),
        },
    };
    let name = format!(
        "{implementation}/{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("?")
    );
    Vector {
        name,
        comments,
        expect,
        bytes,
        ctx,
    }
}

#[test]
fn every_vector_decodes_cleanly_and_encodes_to_the_same_bytes() {
    let vectors = load_all();
    assert!(vectors.len() >= 60, "only {} vectors", vectors.len());
    for v in &vectors {
        let m = Message::decode(&v.bytes, &v.ctx).unwrap_or_else(|e| panic!("{}: {e:?}", v.name));
        if let Message::Update(u) = &m {
            assert!(u.errors.is_empty(), "{}: {:?}", v.name, u.errors);
        }
        let again = m
            .to_bytes(&v.ctx)
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(hex::encode(&again), hex::encode(&v.bytes), "{}", v.name);
    }
}

#[test]
fn every_vector_matches_each_of_its_expectations() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for v in load_all() {
        assert!(!v.expect.is_empty(), "{} has no expectations", v.name);
        let m = match Message::decode(&v.bytes, &v.ctx) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{}: does not decode: {e}", v.name));
                continue;
            }
        };
        // Capability lines come in wire order: the n-th is the n-th decoded.
        let mut next_capability = 0;
        for line in &v.expect {
            checked += 1;
            if let Err(why) = check(&v, &m, line, &mut next_capability) {
                failures.push(format!("{}: {line}\n    {why}", v.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} expectations failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A message kind by name, and how to recognise it.
type KindCheck<'a> = (&'a str, &'a dyn Fn(&Message) -> bool);

#[test]
fn vectors_cover_every_message_kind_from_every_implementation() {
    let vectors = load_all();
    let has = |imp: &str, what: &dyn Fn(&Message) -> bool| {
        vectors.iter().any(|v| {
            v.name.starts_with(imp) && Message::decode(&v.bytes, &v.ctx).is_ok_and(|m| what(&m))
        })
    };
    for imp in ["frr/", "bird/", "gobgp/"] {
        let checks: [KindCheck; 9] = [
            ("OPEN", &|m| matches!(m, Message::Open(_))),
            ("KEEPALIVE", &|m| matches!(m, Message::Keepalive)),
            ("NOTIFICATION", &|m| matches!(m, Message::Notification(_))),
            (
                "IPv4 UPDATE",
                &|m| matches!(m, Message::Update(u) if !u.nlri.is_empty()),
            ),
            (
                "IPv6 MP_REACH",
                &|m| matches!(m, Message::Update(u) if u.mp_reach().is_some_and(|r| r.family == Family::IPV6_UNICAST)),
            ),
            (
                "IPv4 withdrawal",
                &|m| matches!(m, Message::Update(u) if !u.withdrawn.is_empty()),
            ),
            (
                "IPv6 withdrawal",
                &|m| matches!(m, Message::Update(u) if u.mp_unreach().is_some_and(|r| !r.withdrawn.is_empty())),
            ),
            (
                "IPv4 End-of-RIB",
                &|m| matches!(m, Message::Update(u) if u.as_end_of_rib() == Some(Family::IPV4_UNICAST)),
            ),
            (
                "IPv6 End-of-RIB",
                &|m| matches!(m, Message::Update(u) if u.as_end_of_rib() == Some(Family::IPV6_UNICAST)),
            ),
        ];
        for (what, f) in checks {
            assert!(has(imp, f), "no {what} from {imp}");
        }
    }
    // ROUTE-REFRESH with the RFC 7313 subtypes: FRR and BIRD send them.
    for imp in ["frr/", "bird/"] {
        for st in [
            RouteRefreshSubtype::Normal,
            RouteRefreshSubtype::BeginningOfRouteRefresh,
            RouteRefreshSubtype::EndOfRouteRefresh,
        ] {
            assert!(
                has(
                    imp,
                    &|m| matches!(m, Message::RouteRefresh(r) if r.subtype == st)
                ),
                "no {st:?} from {imp}"
            );
        }
    }
    assert!(vectors
        .iter()
        .all(|v| v.comments.iter().any(|c| c.contains("Debian package"))));
}

// Hand-picked values, checked against the decoded types directly.

fn vector(name: &str) -> (Vector, Message) {
    let (imp, file) = name.split_once('/').expect("implementation/file");
    let v = load(imp, &vectors_dir().join(imp).join(file));
    let m = Message::decode(&v.bytes, &v.ctx).expect("decodes");
    (v, m)
}

#[test]
fn frr_ibgp_update_carries_every_community_kind() {
    let (_, Message::Update(u)) = vector("frr/update-ipv4-ibgp-communities.hex") else {
        panic!()
    };
    assert_eq!(u.origin(), Some(Origin::Egp));
    assert_eq!(u.med(), Some(50));
    assert_eq!(u.local_pref(), Some(250));
    assert_eq!(u.next_hop(), Some(Ipv4Addr::new(10, 255, 0, 11)));
    assert_eq!(
        u.communities(),
        &[
            Community::new(65011, 100),
            Community::new(65011, 200),
            Community::NO_EXPORT
        ]
    );
    assert_eq!(
        u.large_communities(),
        &[
            LargeCommunity::new(4_200_000_001, 11, 1),
            LargeCommunity::new(4_200_000_001, 11, 2)
        ]
    );
    assert_eq!(u.extended_communities().len(), 1);
    assert_eq!(
        u.nlri,
        vec![Nlri::new("10.11.1.0/24".parse().expect("prefix"))]
    );
}

#[test]
fn frr_as4_path_to_a_two_octet_speaker_merges_to_the_real_path() {
    let (_, Message::Update(u)) = vector("frr/update-as4-path.hex") else {
        panic!()
    };
    assert_eq!(
        u.as_path().as_deref(),
        Some(&AsPath::sequence([
            4_200_000_002,
            4_200_000_102,
            4_200_000_101
        ]))
    );
}

#[test]
fn bird_open_puts_all_capabilities_in_one_parameter() {
    let (_, Message::Open(open)) = vector("bird/open-ibgp-ipv4.hex") else {
        panic!()
    };
    assert_eq!(open.params.len(), 1);
    assert_eq!(open.asn(), 4_200_000_001);
    assert_eq!(open.hold_time, 9);
    assert!(open.capabilities().any(|c| *c
        == Capability::Fqdn(Fqdn {
            hostname: "bird-b1".into(),
            domain: String::new()
        })));
}

#[test]
fn frr_shutdown_communication_reads_as_text() {
    let (_, Message::Notification(n)) = vector("frr/notification-shutdown.hex") else {
        panic!()
    };
    assert_eq!(
        n.cause,
        Cause::Cease(iana::CeaseSubcode::AdministrativeShutdown)
    );
    assert_eq!(
        n.shutdown_message(),
        Some("frr-f1 maintenance: shutting down session to b1")
    );
}
