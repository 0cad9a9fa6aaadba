//! The configuration surface of SPEC: what loads, and the one line each
//! mistake gets.

use std::io::Write;

use super::*;

fn file(ext: &str, text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .suffix(ext)
        .tempfile()
        .expect("temp file");
    f.write_all(text.as_bytes()).expect("written");
    f
}

fn load(ext: &str, text: &str) -> Result<Settings, SettingsError> {
    let f = file(ext, text);
    Settings::load_with_env(f.path(), Vec::new())
}

fn error(ext: &str, text: &str) -> String {
    match load(ext, text) {
        Ok(s) => panic!("accepted: {s:?}"),
        Err(e) => e.to_string(),
    }
}

const SPEC_EXAMPLE: &str = r#"
[global]
asn = 64512
router_id = "10.255.0.1"
listen_port = 179
advertise = ["10.244.1.0/24"]

[api]
listen = "127.0.0.1:7179"
[metrics]
listen = "0.0.0.0:9179"

[[neighbor]]
address = "10.255.0.2"
asn = 65001
passive = false
hold_time = 90
password = "secret"
local_address = "10.255.0.1"
multihop = 1
route_reflector_client = false

[fib]
enabled = true
table = 254
protocol = 200
accept = ["10.0.0.0/8", "fd00::/8"]

[snat]
enabled = true
no_masquerade = []

[kubernetes]
enabled = false
mesh = true
cni = true
cni_dir = "/etc/cni/net.d"
"#;

#[test]
fn the_example_of_the_spec_loads() {
    let s = load(".toml", SPEC_EXAMPLE).expect("loads");
    assert_eq!(s.global.asn, 64512);
    assert_eq!(
        s.global.advertise,
        vec!["10.244.1.0/24".parse::<IpNet>().expect("net")]
    );
    assert_eq!(s.neighbors.len(), 1);
    assert_eq!(s.neighbors[0].password.as_deref(), Some("secret"));
    assert_eq!(s.fib.protocol, 200);
    assert_eq!(
        s.api_listen().expect("api"),
        ApiListen::Tcp("127.0.0.1:7179".parse().expect("addr"))
    );
}

#[test]
fn yaml_loads_the_same() {
    let yaml = r#"
global:
  asn: 64512
  router_id: 10.255.0.1
  advertise: [10.244.1.0/24]
neighbor:
  - address: 10.255.0.2
    asn: 65001
"#;
    let s = load(".yaml", yaml).expect("loads");
    assert_eq!(s.neighbors[0].asn, 65001);
    assert_eq!(s.neighbors[0].hold_time, 90, "the default");
}

#[test]
fn environment_overrides_keys() {
    let f = file(".toml", SPEC_EXAMPLE);
    let env = vec![
        ("PODBGP__GLOBAL__ASN".to_string(), "64513".to_string()),
        (
            "PODBGP__GLOBAL__ADVERTISE".to_string(),
            "10.244.7.0/24,fd10::/64".to_string(),
        ),
        ("UNRELATED".to_string(), "x".to_string()),
    ];
    let s = Settings::load_with_env(f.path(), env).expect("loads");
    assert_eq!(s.global.asn, 64513);
    assert_eq!(s.global.advertise.len(), 2);
}

#[test]
fn an_unknown_key_is_named() {
    let e = error(".toml", "[global]\nasn = 1\nrouter_idd = \"10.0.0.1\"\n");
    assert!(e.contains("router_idd"), "{e}");
    assert!(!e.contains('\n'));
}

#[test]
fn bad_values_are_named_with_their_key() {
    let cases = [
        ("[global]\nasn = 1\nrouter_id = \"10.0.0\"\n", "router_id"),
        ("[global]\nasn = 0\n", "global.asn"),
        ("[global]\nasn = 1\nadvertise = [\"10.244.1.0/33\"]\n", "advertise"),
        (
            "[global]\nasn = 1\n[[neighbor]]\naddress = \"10.0.0.2\"\nasn = 2\nhold_time = 2\n",
            "neighbor[0].hold_time",
        ),
        (
            "[global]\nasn = 1\n[[neighbor]]\naddress = \"10.0.0.2\"\nasn = 2\n[[neighbor]]\naddress = \"10.0.0.2\"\nasn = 3\n",
            "neighbor[1].address",
        ),
        (
            "[global]\nasn = 1\n[[neighbor]]\naddress = \"10.0.0.2\"\nasn = 2\nlocal_address = \"fd00::1\"\n",
            "neighbor[0].local_address",
        ),
        (
            "[global]\nasn = 1\n[[neighbor]]\naddress = \"10.0.0.2\"\nasn = 2\nimport = [\"10.0.0.0/8 le 7\"]\n",
            "neighbor[0].import[0]",
        ),
        ("[global]\nasn = 1\n[api]\nlisten = \"0.0.0.0:7179\"\n", "api.listen"),
        ("[global]\nasn = 1\n[fib]\nprotocol = 2\n", "fib.protocol"),
        (
            "[global]\nasn = 1\n[kubernetes]\nhold_time = 1\n",
            "kubernetes.hold_time",
        ),
        (
            "[global]\nasn = 1\n[[neighbor]]\naddress = \"10.0.0.2\"\nasn = 2\nttl_security = true\npassive = true\n[[neighbor]]\naddress = \"10.0.0.3\"\nasn = 3\n",
            "neighbor[0].passive",
        ),        (
            "[global]\nasn = 1\n[[neighbor]]\naddress = \"10.0.0.2\"\nasn = 2\nbfd = { min_rx = 5 }\n",
            "neighbor[0].bfd.min_rx",
        ),
        (
            "[global]\nasn = 1\n[[neighbor]]\naddress = \"10.0.0.2\"\nasn = 2\nbfd = { multiplier = 0 }\n",
            "neighbor[0].bfd.multiplier",
        ),
        (
            "[global]\nasn = 1\n[[neighbor]]\naddress = \"10.0.0.2\"\nasn = 2\nbfd = { interval = 100 }\n",
            "interval",
        ),
        (
            "[global]\nasn = 1\n[kubernetes]\nbfd = { min_tx = 70000 }\n",
            "kubernetes.bfd.min_tx",
        ),
        (
            "[global]\nasn = 1\n[kubernetes]\nservice_cidrs = [\"10.96.0.1/16\"]\n",
            "kubernetes.service_cidrs[0]",
        ),
        (
            "[global]\nasn = 1\n[kubernetes]\nservice_cidrs = [\"10.96.0.0/16\", \"10.97.0.0/16\"]\n",
            "kubernetes.service_cidrs",
        ),
        (
            "[global]\nasn = 1\n[kubernetes]\nservice_communities = [\"65536:1\"]\n",
            "kubernetes.service_communities[0]",
        ),
        (
            "[global]\nasn = 1\n[kubernetes]\nservice_large_communities = [\"1:2\"]\n",
            "kubernetes.service_large_communities[0]",
        ),
    ];
    for (text, key) in cases {
        let e = error(".toml", text);
        assert!(e.contains(key), "{key}: {e}");
        assert!(!e.contains('\n'), "one line: {e}");
    }
}

#[test]
fn the_api_takes_loopback_or_a_unix_socket() {
    let mut s = load(".toml", SPEC_EXAMPLE).expect("loads");
    s.api.listen = "[::1]:7179".into();
    assert!(s.api_listen().is_ok());
    s.api.listen = "unix:/run/podbgp.sock".into();
    assert_eq!(
        s.api_listen().expect("unix"),
        ApiListen::Unix("/run/podbgp.sock".into())
    );
    s.api.listen = "10.0.0.1:7179".into();
    assert!(s.api_listen().is_err());
}

#[test]
fn import_rules_read_like_prefix_lists() {
    let r = parse_rule("10.244.0.0/16 le 24").expect("rule");
    assert!(r.matches(&"10.244.3.0/24".parse().expect("net")));
    assert!(!r.matches(&"10.244.3.0/25".parse().expect("net")));
    assert!(parse_rule("10.244.0.1/16").is_err(), "host bits");
    assert!(parse_rule("10.244.0.0/16 ge 20 le 18").is_err());
    assert!(parse_rule("10.244.0.0/16 eq 20").is_err());
}

#[test]
fn other_extensions_are_refused() {
    let e = error(".ini", "x");
    assert!(e.contains(".toml"), "{e}");
}

#[test]
fn service_keys_have_safe_defaults_and_env_overrides() {
    let f = file(".toml", "[global]\nasn = 1\n");
    let k = Settings::load_with_env(f.path(), Vec::new())
        .expect("loads")
        .kubernetes;
    assert!(k.service_cidrs.is_empty());
    assert!(k.advertise_service_ranges && k.advertise_load_balancer_ips);
    assert!(k.advertise_local_cluster_ips);
    assert!(!k.advertise_external_ips, "any user may write externalIPs");
    let env = vec![(
        "PODBGP__KUBERNETES__SERVICE_CIDRS".to_string(),
        "10.96.0.0/16,fd00:10:96::/112".to_string(),
    )];
    let k = Settings::load_with_env(f.path(), env)
        .expect("loads")
        .kubernetes;
    assert_eq!(k.service_cidrs.len(), 2);
}

#[test]
fn bfd_is_off_for_neighbors_and_on_for_the_mesh_by_default() {
    let f = file(
        ".toml",
        "[global]\nasn = 1\n[[neighbor]]\naddress = \"10.0.0.2\"\nasn = 2\n\
         [[neighbor]]\naddress = \"10.0.0.3\"\nasn = 3\nbfd = { min_rx = 100 }\n",
    );
    let s = Settings::load_with_env(f.path(), Vec::new()).expect("loads");
    assert!(!s.neighbors[0].bfd.enabled);
    let b = s.neighbors[1].bfd;
    assert!(b.enabled, "a bfd table turns it on");
    assert_eq!((b.min_rx, b.min_tx, b.multiplier), (100, 300, 3));
    assert!(s.kubernetes.bfd.enabled);
    assert_eq!(s.kubernetes.bfd.min_rx, 300);
}

/// Every key of the configuration, by section, as `(section, key)`;
/// `[[neighbor]]` is `neighbor`.
const KEYS: &[(&str, &str)] = &[
    ("global", "asn"),
    ("global", "router_id"),
    ("global", "listen_port"),
    ("global", "listen_addresses"),
    ("global", "advertise"),
    ("global", "cluster_id"),
    ("global", "graceful_restart"),
    ("api", "listen"),
    ("metrics", "listen"),
    ("neighbor", "address"),
    ("neighbor", "asn"),
    ("neighbor", "passive"),
    ("neighbor", "enabled"),
    ("neighbor", "hold_time"),
    ("neighbor", "connect_retry"),
    ("neighbor", "port"),
    ("neighbor", "password"),
    ("neighbor", "local_address"),
    ("neighbor", "local_port"),
    ("neighbor", "multihop"),
    ("neighbor", "ttl_security"),
    ("neighbor", "route_reflector_client"),
    ("neighbor", "next_hop_self"),
    ("neighbor", "max_prefixes"),
    ("neighbor", "import"),
    ("neighbor", "mrai"),
    ("neighbor", "families"),
    ("neighbor", "bfd"),
    ("neighbor", "add_path_receive"),
    ("log", "format"),
    ("log", "level"),
    ("fib", "enabled"),
    ("fib", "table"),
    ("fib", "protocol"),
    ("fib", "accept"),
    ("fib", "nexthop_objects"),
    ("snat", "enabled"),
    ("snat", "no_masquerade"),
    ("kubernetes", "enabled"),
    ("kubernetes", "mesh"),
    ("kubernetes", "cni"),
    ("kubernetes", "cni_dir"),
    ("kubernetes", "hold_time"),
    ("kubernetes", "bfd"),
    ("kubernetes", "service_cidrs"),
    ("kubernetes", "advertise_service_ranges"),
    ("bmp", "address"),
    ("bmp", "port"),
    ("bmp", "route_monitoring"),
    ("bmp", "statistics_interval"),
    ("bmp", "queue_limit_mb"),
    ("mrt", "updates_dir"),
    ("mrt", "rotate_seconds"),
    ("mrt", "keep_files"),
];

/// A TOML value of any type: numbers far out of range, strings that are
/// almost addresses, lists and tables where a scalar goes.
fn any_value() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let scalar = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (-3i64..70_000).prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        any::<bool>().prop_map(|b| b.to_string()),
        "[a-z0-9.:/ -]{0,24}".prop_map(|s| format!("{s:?}")),
        prop_oneof![
            Just("\"10.0.0.1\""),
            Just("\"10.0.0.0/33\""),
            Just("\"::1\""),
            Just("\"300.1.1.1\""),
            Just("\"unix:\""),
            Just("\"0.0.0.0:99999\""),
            Just("\"10.0.0.0/8 le 7\""),
        ]
        .prop_map(str::to_string),
    ];
    scalar.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4)
                .prop_map(|v| format!("[{}]", v.join(", "))),
            proptest::collection::vec(inner, 0..3).prop_map(|values| {
                let fields: Vec<String> = values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| format!("{} = {v}", ["min_rx", "enabled", "x"][i]))
                    .collect();
                format!("{{ {} }}", fields.join(", "))
            }),
        ]
    })
}

/// A small valid configuration with `key = value` in its section.
fn with_key(section: &str, key: &str, value: &str) -> String {
    let mut global = vec![
        "asn = 64512".to_string(),
        "router_id = \"10.0.0.1\"".to_string(),
    ];
    let mut neighbor = vec![
        "address = \"10.0.0.2\"".to_string(),
        "asn = 64513".to_string(),
    ];
    let mut other = String::new();
    let line = format!("{key} = {value}");
    match section {
        "global" => {
            global.retain(|l| !l.starts_with(&format!("{key} ")));
            global.push(line);
        }
        "neighbor" => {
            neighbor.retain(|l| !l.starts_with(&format!("{key} ")));
            neighbor.push(line);
        }
        "bmp" if key == "address" => other = format!("[[bmp]]\n{line}\n"),
        "bmp" => other = format!("[[bmp]]\naddress = \"10.0.0.9\"\n{line}\n"),
        _ => other = format!("[{section}]\n{line}\n"),
    }
    format!(
        "[global]\n{}\n{other}[[neighbor]]\n{}\n",
        global.join("\n"),
        neighbor.join("\n")
    )
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 3000, ..Default::default() })]

    /// Any value for any key: the file loads, or the start stops with one
    /// line that names the key. Never a panic.
    #[test]
    fn any_value_for_any_key_loads_or_is_refused_naming_the_key(
        at in 0..KEYS.len(),
        value in any_value(),
    ) {
        let (section, key) = KEYS[at];
        let text = with_key(section, key, &value);
        if let Err(e) = load(".toml", &text) {
            let e = e.to_string();
            proptest::prop_assert!(!e.contains('\n'), "more than one line: {e}");
            proptest::prop_assert!(e.contains(key), "{section}.{key} = {value}: the error does not name the key: {e}");
        }
    }
}

#[test]
fn a_bmp_collector_takes_sane_defaults_and_refuses_what_cannot_work() {
    let base = "[global]\nasn = 64512\nrouter_id = \"10.0.0.1\"\n";
    let s = load(".toml", &format!("{base}[[bmp]]\naddress = \"10.0.0.9\"\n")).expect("loads");
    let b = &s.bmp[0];
    assert_eq!(
        (b.port, b.statistics_interval, b.queue_limit_mb),
        (11019, 60, 64)
    );
    assert_eq!(b.route_monitoring, ["pre-policy"]);
    let m = b.monitoring();
    assert!(m.pre_policy && !m.post_policy && !m.loc_rib);
    for (lines, key) in [
        (
            "route_monitoring = [\"adj-rib-out\"]",
            "bmp[0].route_monitoring",
        ),
        ("route_monitoring = []", "bmp[0].route_monitoring"),
        ("statistics_interval = 2", "bmp[0].statistics_interval"),
        ("queue_limit_mb = 0", "bmp[0].queue_limit_mb"),
        ("port = 0", "bmp[0].port"),
    ] {
        let e = error(
            ".toml",
            &format!("{base}[[bmp]]\naddress = \"10.0.0.9\"\n{lines}\n"),
        );
        assert!(e.contains(key), "{lines}: {e}");
    }
    let twice = "[[bmp]]\naddress = \"10.0.0.9\"\n[[bmp]]\naddress = \"10.0.0.9\"\n";
    let e = error(".toml", &format!("{base}{twice}"));
    assert!(e.contains("bmp[1].address") && e.contains("twice"), "{e}");
}

#[test]
fn the_update_log_is_off_by_default_and_its_keys_are_checked() {
    let base = "[global]\nasn = 64512\nrouter_id = \"10.0.0.1\"\n";
    let s = load(".toml", base).expect("loads");
    assert!(!s.mrt.logging());
    let s = load(
        ".toml",
        &format!("{base}[mrt]\nupdates_dir = \"/var/log/podbgp\"\n"),
    )
    .expect("loads");
    assert!(s.mrt.logging());
    assert_eq!((s.mrt.rotate_seconds, s.mrt.keep_files), (900, 96));
    for (line, key) in [
        ("updates_dir = \"relative\"", "mrt.updates_dir"),
        ("rotate_seconds = 10", "mrt.rotate_seconds"),
        ("keep_files = 0", "mrt.keep_files"),
    ] {
        let e = error(".toml", &format!("{base}[mrt]\n{line}\n"));
        assert!(e.contains(key), "{line}: {e}");
    }
}

#[test]
fn a_syntax_error_is_one_line_naming_where() {
    let e = error(".toml", "[global]\nasn = { a = 1, a = 2 }\n");
    assert!(!e.contains('\n'), "{e}");
    assert!(e.contains("line 2"), "{e}");
}
