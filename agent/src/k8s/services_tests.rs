use super::*;
use serde_json::json;

fn service(spec: serde_json::Value, status: serde_json::Value) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": spec,
        "status": status,
    }))
    .expect("a Service")
}

fn net(s: &str) -> IpNet {
    s.parse().expect("prefix")
}

const ALL: Policy = Policy {
    ranges: true,
    external_ips: true,
    load_balancer_ips: true,
    local_cluster_ips: true,
};

#[test]
fn a_service_is_read_with_its_addresses_and_policies() {
    let s = service(
        json!({"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10", "fd00:96::10"],
               "externalIPs": ["192.0.2.7", "bogus"], "externalTrafficPolicy": "Local",
               "internalTrafficPolicy": "Local", "type": "LoadBalancer"}),
        json!({"loadBalancer": {"ingress": [{"ip": "10.40.0.10"}, {"hostname": "lb.example"}]}}),
    );
    let info = ServiceInfo::of(&s);
    assert_eq!(
        info.cluster_ips,
        vec![
            "10.96.0.10".parse::<IpAddr>().unwrap(),
            "fd00:96::10".parse().unwrap()
        ]
    );
    assert_eq!(
        info.external_ips,
        vec!["192.0.2.7".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(
        info.load_balancer_ips,
        vec!["10.40.0.10".parse::<IpAddr>().unwrap()]
    );
    assert!(info.external_local && info.internal_local && !info.opted_out);
    assert_eq!(info.problems.len(), 1, "{:?}", info.problems);

    let headless = ServiceInfo::of(&service(json!({"clusterIP": "None"}), json!({})));
    assert!(headless.cluster_ips.is_empty() && headless.problems.is_empty());
}

#[test]
fn routes_follow_the_policy_and_local_endpoints() {
    let mut services = BTreeMap::new();
    services.insert(
        "shop/web".to_string(),
        ServiceInfo {
            cluster_ips: vec!["10.96.0.10".parse().unwrap()],
            load_balancer_ips: vec!["10.40.0.10".parse().unwrap()],
            external_ips: vec!["10.50.0.1".parse().unwrap()],
            external_local: true,
            internal_local: true,
            ..ServiceInfo::default()
        },
    );
    services.insert(
        "shop/api".to_string(),
        ServiceInfo {
            cluster_ips: vec!["10.96.0.11".parse().unwrap()],
            load_balancer_ips: vec!["10.40.0.11".parse().unwrap()],
            ..ServiceInfo::default()
        },
    );
    let ranges = [net("10.96.0.0/16")];
    let none = BTreeMap::new();
    let keys =
        |m: &BTreeMap<IpNet, Vec<Reason>>| m.keys().map(ToString::to_string).collect::<Vec<_>>();

    // No endpoint here: the range and the Cluster-policy LB IP only; a
    // Cluster-policy ClusterIP is covered by the range.
    let r = routes(ALL, &ranges, &services, &none);
    assert_eq!(keys(&r), ["10.40.0.11/32", "10.96.0.0/16"]);
    assert_eq!(r[&net("10.96.0.0/16")][0].to_string(), "service range");
    assert_eq!(
        r[&net("10.40.0.11/32")][0].to_string(),
        "LoadBalancer IP of shop/api"
    );

    // An endpoint here: the Local service's addresses too.
    let here = BTreeMap::from([("shop/web".to_string(), 1)]);
    let r = routes(ALL, &ranges, &services, &here);
    assert_eq!(
        keys(&r),
        [
            "10.40.0.10/32",
            "10.40.0.11/32",
            "10.50.0.1/32",
            "10.96.0.0/16",
            "10.96.0.10/32"
        ]
    );
    assert_eq!(
        r[&net("10.96.0.10/32")][0].to_string(),
        "ClusterIP of shop/web (internalTrafficPolicy Local, endpoint here)"
    );
    assert_eq!(
        r[&net("10.40.0.10/32")][0].to_string(),
        "LoadBalancer IP of shop/web (externalTrafficPolicy Local, endpoint here)"
    );

    // Each kind can be turned off.
    let only_lb = Policy {
        ranges: false,
        external_ips: false,
        local_cluster_ips: false,
        ..ALL
    };
    assert_eq!(
        keys(&routes(only_lb, &ranges, &services, &here)),
        ["10.40.0.10/32", "10.40.0.11/32"]
    );

    // The annotation opts a Service out.
    services.get_mut("shop/api").unwrap().opted_out = true;
    assert_eq!(
        keys(&routes(ALL, &ranges, &services, &none)),
        ["10.96.0.0/16"]
    );
}

#[test]
fn the_opt_out_annotation_is_read() {
    let mut s = service(json!({"clusterIP": "10.96.0.10"}), json!({}));
    s.metadata.annotations = Some(BTreeMap::from([(
        ANNOTATION_ADVERTISE.to_string(),
        "False".to_string(),
    )]));
    assert!(ServiceInfo::of(&s).opted_out);
}

#[test]
fn slices_count_ready_endpoints_on_this_node() {
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "web-abc", "namespace": "shop",
                     "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": ["10.10.1.2"], "nodeName": "w1"},
            {"addresses": ["10.10.1.3"], "nodeName": "w1", "conditions": {"ready": false}},
            {"addresses": ["10.10.1.4"], "nodeName": "w1", "conditions": {"ready": true}},
            {"addresses": ["10.10.2.2"], "nodeName": "w2", "conditions": {"ready": true}},
        ],
    }))
    .expect("a slice");
    let w1 = SliceInfo::of(&slice, "w1").expect("named");
    assert_eq!(w1.service, "shop/web");
    assert_eq!(w1.local_ready, 2);
    assert_eq!(SliceInfo::of(&slice, "cp").map(|s| s.local_ready), Some(0));
    let counts = local_ready([w1.clone(), w1].iter());
    assert_eq!(counts["shop/web"], 4);

    let mut unnamed = slice;
    unnamed.metadata.labels = None;
    assert!(SliceInfo::of(&unnamed, "w1").is_none());
}

#[test]
fn a_terminating_service_cidr_has_no_range() {
    let mut object: ServiceCIDR = serde_json::from_value(json!({
        "metadata": {"name": "kubernetes"},
        "spec": {"cidrs": ["10.96.0.0/16", "fd00:10:96::/112", "nope"]},
    }))
    .expect("a ServiceCIDR");
    let mut problems = Vec::new();
    assert_eq!(
        service_cidr_ranges(&object, &mut problems),
        vec![net("10.96.0.0/16"), net("fd00:10:96::/112")]
    );
    assert_eq!(problems.len(), 1);
    object.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        ));
    assert!(service_cidr_ranges(&object, &mut Vec::new()).is_empty());
}
