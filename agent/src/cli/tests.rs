//! The CLI's grammar and its text layout.

use super::format;
use super::*;

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

#[test]
fn mrt_dump_names_its_file_and_nothing_else() {
    let p = mrt(&words("dump /tmp/rib.mrt")).expect("plan");
    assert_eq!((p.method, p.path.as_str()), (Method::GET, "/v1/mrt/rib"));
    assert_eq!(p.print, Print::Save("/tmp/rib.mrt".into()));
    for bad in ["", "dump", "load x", "dump a b"] {
        assert!(mrt(&words(bad)).is_err(), "{bad}");
    }
}

#[test]
fn mrt_replay_takes_its_options_and_refuses_the_rest() {
    let r = replay::parse(&words(
        "rib.mrt --peer 10.0.0.2 --local-as 64600 --source-peer 3",
    ))
    .expect("parsed");
    assert_eq!(r.peer, "10.0.0.2:179".parse().unwrap());
    assert_eq!(
        (r.local_as, r.source_peer),
        (64600, Some(replay::SourcePeer::Index(3)))
    );
    let r = replay::parse(&words(
        "rib.mrt --local-as 1 --peer fd00::2 --port 1179 --source-peer 193.203.0.1",
    ))
    .expect("parsed");
    assert_eq!(r.peer, "[fd00::2]:1179".parse().unwrap());
    assert_eq!(
        r.source_peer,
        Some(replay::SourcePeer::Address("193.203.0.1".parse().unwrap()))
    );
    for bad in [
        "",
        "rib.mrt",
        "rib.mrt --peer 10.0.0.2",
        "rib.mrt --local-as 64600",
        "rib.mrt --peer x --local-as 1",
        "rib.mrt --peer 10.0.0.2 --local-as 0",
        "rib.mrt --peer 10.0.0.2 --local-as 1 --speed 3",
        "rib.mrt --peer",
        "rib.mrt --peer 10.0.0.2 --local-as 1 --source-peer x",
    ] {
        assert!(replay::parse(&words(bad)).is_err(), "{bad}");
    }
}

#[test]
fn neighbor_commands_map_to_api_paths() {
    let p = neighbor(&[], None).expect("plan");
    assert_eq!((p.method, p.path.as_str()), (Method::GET, "/v1/neighbors"));
    let p = neighbor(&words("10.0.0.2 adj-in"), Some("ipv6")).expect("plan");
    assert_eq!(p.path, "/v1/neighbors/10.0.0.2/adj-in?family=ipv6");
    let p = neighbor(&words("fd00::2 softreset"), None).expect("plan");
    assert_eq!(
        (p.method, p.path.as_str()),
        (Method::POST, "/v1/neighbors/fd00::2/softreset")
    );
}

#[test]
fn global_rib_add_carries_its_attributes() {
    let p = global(
        &words(
            "rib add 10.244.9.0/24 nexthop 10.0.0.9 community 65000:1 large-community 1:2:3 med 5",
        ),
        None,
    )
    .expect("plan");
    assert_eq!((p.method, p.path.as_str()), (Method::POST, "/v1/rib"));
    let body = p.body.expect("body");
    assert_eq!(body["prefix"], "10.244.9.0/24");
    assert_eq!(body["next_hop"], "10.0.0.9");
    assert_eq!(body["communities"][0], "65000:1");
    assert_eq!(body["large_communities"][0], "1:2:3");
    assert_eq!(body["med"], 5);
    let p = global(&words("rib del 10.244.9.0/24"), None).expect("plan");
    assert_eq!(
        (p.method, p.path.as_str()),
        (Method::DELETE, "/v1/rib?prefix=10.244.9.0%2F24")
    );
}

#[test]
fn bad_usage_is_refused_with_a_reason() {
    for (args, family) in [
        ("10.0.0.2 frob", None),
        ("not-an-address", None),
        ("10.0.0.2 adj-in", Some("ipx")),
    ] {
        let Err(Usage(why)) = neighbor(&words(args), family) else {
            panic!("{args} accepted");
        };
        assert!(!why.is_empty());
    }
    for args in [
        "rib add",
        "rib add 10.0.0.0/33",
        "rib add 10.0.0.0/8 med x",
        "rib frob x",
        "frob",
    ] {
        assert!(global(&words(args), None).is_err(), "{args} accepted");
    }
    assert!(global(&words("rib add fd00::/64"), Some("ipv4")).is_err());
}

#[test]
fn durations_read_like_gobgp() {
    assert_eq!(format::duration(None), "never");
    assert_eq!(format::duration(Some(3723)), "01:02:03");
    assert_eq!(format::duration(Some(90_061)), "1d 01:01:01");
}

#[test]
fn api_endpoints_parse() {
    assert_eq!(
        Endpoint::parse("http://127.0.0.1:7179/"),
        Ok(Endpoint::Tcp {
            authority: "127.0.0.1:7179".into()
        })
    );
    assert_eq!(
        Endpoint::parse("unix:/run/podbgp.sock"),
        Ok(Endpoint::Unix {
            path: "/run/podbgp.sock".into()
        })
    );
    assert!(Endpoint::parse("https://x").is_err());
    assert!(Endpoint::parse("http://host/path").is_err());
}

#[test]
fn snat_shows_each_table_its_rule_and_sets() {
    use crate::snat::{FamilyView, SnatView};
    let view = SnatView {
        families: vec![
            FamilyView {
                table: "ip podbgp".into(),
                rules: vec!["ip saddr @pods ip daddr != @keep masquerade".into()],
                pods: vec!["10.244.1.0/24".into()],
                keep: vec!["10.244.0.0/16".into(), "10.245.0.0/24".into()],
            },
            FamilyView {
                table: "ip6 podbgp".into(),
                rules: vec![],
                pods: vec![],
                keep: vec![],
            },
        ],
    };
    let text = format::snat(&view);
    assert_eq!(
        text,
        "table ip podbgp\n  rule: ip saddr @pods ip daddr != @keep masquerade\n  \
         masquerade from (1): 10.244.1.0/24\n  \
         keep source to (2): 10.244.0.0/16, 10.245.0.0/24\n\n\
         table ip6 podbgp\n  masquerade from (0): (none)\n  keep source to (0): (none)\n"
    );
}

#[test]
fn bfd_shows_each_session_with_its_negotiated_timers() {
    let s = crate::bfd_io::SessionView {
        peer: "10.77.0.2".into(),
        local: "10.77.0.1".into(),
        interface: Some("eth0".into()),
        multihop: false,
        state: "Up".into(),
        remote_state: "Up".into(),
        local_discriminator: 7,
        remote_discriminator: 9,
        desired_min_tx_ms: 300.0,
        required_min_rx_ms: 300.0,
        detect_multiplier: 3,
        remote_desired_min_tx_ms: 100.0,
        remote_required_min_rx_ms: 200.0,
        remote_detect_multiplier: 5,
        transmit_interval_ms: 300.0,
        detection_time_ms: 1500.0,
        uptime_seconds: 61,
        last_diagnostic: "No Diagnostic".into(),
        remote_diagnostic: "No Diagnostic".into(),
        packets_sent: 10,
        packets_received: 12,
        state_changes: 2,
    };
    let text = format::bfd(&[s]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("Peer"), "{text}");
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        row,
        [
            "10.77.0.2",
            "Up",
            "7/9",
            "300",
            "300",
            "1500",
            "00:01:01",
            "No",
            "Diagnostic"
        ],
        "{text}"
    );
}
