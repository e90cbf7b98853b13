//! Tests of `compile` as a whole: object selection, annotations shared by all sources,
//! determinism, and the k8s_gateway fixture set translated to our model.

use super::testing::*;
use super::{CompileOptions, Problem, compile};
use hickory_proto::rr::RecordType;
use serde_json::json;
use std::collections::BTreeSet;

#[test]
fn problem_display() {
    let p = Problem::new("Ingress acme/web", "spec.rules[0].host", "bad");
    assert_eq!(p.to_string(), "Ingress acme/web: spec.rules[0].host: bad");
    assert_eq!(
        Problem::new("DNSZone acme/z", "", "oops").to_string(),
        "DNSZone acme/z: oops"
    );
}

#[test]
fn own_namespace_by_default() {
    let out = compile_zone(
        zone(json!({})),
        &[
            ingress("web", &["a.acme.example.com"], &["192.0.2.1"]),
            lb_service("other", "api", &["192.0.2.2"]),
        ],
    );
    assert_eq!(
        published(&out),
        vec![("a.acme.example.com.".to_string(), RecordType::A)]
    );
}

#[test]
fn listed_namespaces_exactly() {
    let z = zone(json!({"sources": {"namespaces": ["team-a", "team-b"]}}));
    let objs = [
        lb_service("acme", "own", &["192.0.2.1"]),
        lb_service("team-a", "a", &["192.0.2.2"]),
        lb_service("team-b", "b", &["192.0.2.3"]),
        lb_service("team-c", "c", &["192.0.2.4"]),
    ];
    let out = compile_zone(z, &objs);
    assert_eq!(
        published(&out),
        vec![
            ("a.team-a.acme.example.com.".to_string(), RecordType::A),
            ("b.team-b.acme.example.com.".to_string(), RecordType::A),
        ]
    );
}

#[test]
fn options_namespaces_override_spec() {
    let z = zone(json!({"sources": {"namespaces": ["team-a", "team-b"]}}));
    let store = store_of(&[
        lb_service("team-a", "a", &["192.0.2.2"]),
        lb_service("team-b", "b", &["192.0.2.3"]),
    ]);
    let opts = CompileOptions {
        namespaces: Some(BTreeSet::from(["team-b".to_string()])),
    };
    let out = compile(&z, &store, &opts);
    assert_eq!(
        published(&out),
        vec![("b.team-b.acme.example.com.".to_string(), RecordType::A)]
    );
    let out = compile(
        &z,
        &store,
        &CompileOptions {
            namespaces: Some(BTreeSet::new()),
        },
    );
    assert!(published(&out).is_empty());
}

#[test]
fn kinds_filter() {
    let z = zone(json!({"sources": {"kinds": ["Service"]}}));
    let out = compile_zone(
        z,
        &[
            ingress("web", &["a.acme.example.com"], &["192.0.2.1"]),
            lb_service("acme", "api", &["192.0.2.2"]),
        ],
    );
    assert_eq!(
        published(&out),
        vec![("api.acme.acme.example.com.".to_string(), RecordType::A)]
    );
}

#[test]
fn empty_kinds_reads_nothing() {
    let out = compile_zone(
        zone(json!({"sources": {"kinds": []}})),
        &[ingress("web", &["a.acme.example.com"], &["192.0.2.1"])],
    );
    assert!(published(&out).is_empty());
}

#[test]
fn gateways_read_from_any_namespace_even_if_route_kinds_only() {
    // Gateways are not a source kind: the Gateway in `infra` is read although only HTTPRoutes
    // are selected and `infra` is not a source namespace.
    let g = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": meta("infra", "gw"),
        "spec": {"listeners": [{"name": "h", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "All"}}}]},
        "status": {"addresses": [{"value": "192.0.2.1"}]}});
    let r = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": meta("acme", "r"),
        "spec": {"hostnames": ["r.acme.example.com"], "parentRefs": [{"name": "gw", "namespace": "infra"}]},
        "status": {"parents": [{"parentRef": {"name": "gw", "namespace": "infra"}, "conditions": [{"type": "Accepted", "status": "True"}]}]}});
    let out = compile_zone(zone(json!({"sources": {"kinds": ["HTTPRoute"]}})), &[g, r]);
    assert_eq!(
        rrset(&out, "r.acme.example.com", RecordType::A),
        vec!["192.0.2.1"]
    );
}

#[test]
fn selector_filters_objects() {
    let z = zone(json!({"sources": {"selector": {"matchLabels": {"dns": "public"}}}}));
    let public = with_meta(
        ingress("pub", &["pub.acme.example.com"], &["192.0.2.1"]),
        "labels",
        json!({"dns": "public"}),
    );
    let private = with_meta(
        ingress("priv", &["priv.acme.example.com"], &["192.0.2.2"]),
        "labels",
        json!({"dns": "private"}),
    );
    let out = compile_zone(
        z,
        &[
            public,
            private,
            ingress("none", &["none.acme.example.com"], &["192.0.2.3"]),
        ],
    );
    assert_eq!(
        published(&out),
        vec![("pub.acme.example.com.".to_string(), RecordType::A)]
    );
}

#[test]
fn invalid_selector_reads_nothing_and_reports() {
    let z = zone(
        json!({"sources": {"selector": {"matchExpressions": [{"key": "a", "operator": "Maybe"}]}}}),
    );
    let out = compile_zone(
        z,
        &[ingress("web", &["a.acme.example.com"], &["192.0.2.1"])],
    );
    assert!(published(&out).is_empty());
    assert_eq!(
        problems(&out),
        vec![
            "DNSZone acme/z: spec.sources.selector.matchExpressions[0].operator: unknown operator \"Maybe\"; no source object is read"
        ]
    );
}

#[test]
fn ignore_labels_on_every_kind() {
    let ignore = |v: serde_json::Value, key: &str| with_meta(v, "labels", json!({key: "true"}));
    let out = compile_zone(
        zone(json!({})),
        &[
            ignore(
                ingress("a", &["a.acme.example.com"], &["192.0.2.1"]),
                "zonegate.dev/ignore",
            ),
            ignore(
                lb_service("acme", "b", &["192.0.2.2"]),
                "k8s-gateway.dns/ignore",
            ),
            ignore(
                dns_endpoint(
                    "c",
                    json!([{"dnsName": "c.acme.example.com", "recordType": "A", "targets": ["192.0.2.3"]}]),
                ),
                "zonegate.dev/ignore",
            ),
        ],
    );
    assert!(published(&out).is_empty());
    assert!(out.problems.is_empty());
}

#[test]
fn target_annotation_replaces_targets() {
    let v = with_meta(
        ingress("web", &["www.acme.example.com"], &["192.0.2.1"]),
        "annotations",
        json!({"external-dns.alpha.kubernetes.io/target": "203.0.113.1, 2001:db8::7"}),
    );
    let out = compile_zone(zone(json!({})), &[v]);
    assert_eq!(
        rrset(&out, "www.acme.example.com", RecordType::A),
        vec!["203.0.113.1"]
    );
    assert_eq!(
        rrset(&out, "www.acme.example.com", RecordType::AAAA),
        vec!["2001:db8::7"]
    );
}

#[test]
fn target_annotation_hostname_is_cname_and_works_without_status() {
    let v = with_meta(
        ingress("web", &["www.acme.example.com"], &[]),
        "annotations",
        json!({"external-dns.kubernetes.io/target": "edge.cdn.example.net."}),
    );
    let out = compile_zone(zone(json!({})), &[v]);
    assert_eq!(
        rrset(&out, "www.acme.example.com", RecordType::CNAME),
        vec!["edge.cdn.example.net."]
    );
}

#[test]
fn bad_target_annotation_item_reported() {
    let v = with_meta(
        lb_service("acme", "api", &["192.0.2.1"]),
        "annotations",
        json!({"external-dns.alpha.kubernetes.io/target": "203.0.113.1,bad_host!"}),
    );
    let out = compile_zone(zone(json!({})), &[v]);
    assert_eq!(
        rrset(&out, "api.acme.acme.example.com", RecordType::A),
        vec!["203.0.113.1"]
    );
    assert!(has_problem(
        &out,
        "Service acme/api: metadata.annotations[external-dns.alpha.kubernetes.io/target]: invalid hostname \"bad_host!\""
    ));
}

#[test]
fn ttl_annotation_overrides_and_invalid_is_reported() {
    let good = with_meta(
        ingress("good", &["g.acme.example.com"], &["192.0.2.1"]),
        "annotations",
        json!({"external-dns.alpha.kubernetes.io/ttl": "1h30m"}),
    );
    let bad = with_meta(
        ingress("bad", &["b.acme.example.com"], &["192.0.2.1"]),
        "annotations",
        json!({"external-dns.kubernetes.io/ttl": "100000"}),
    );
    let out = compile_zone(zone(json!({"ttl": 120})), &[good, bad]);
    assert_eq!(
        ttl_of(&out, "g.acme.example.com", RecordType::A),
        Some(5400)
    );
    assert_eq!(ttl_of(&out, "b.acme.example.com", RecordType::A), Some(120));
    assert_eq!(
        problems(&out),
        vec![
            "Ingress acme/bad: metadata.annotations[external-dns.kubernetes.io/ttl]: TTL \"100000\" is out of range 1..86400 seconds; using spec.ttl (120)"
        ]
    );
}

#[test]
fn annotation_problems_only_for_objects_publishing_here() {
    let other = with_meta(
        ingress("other", &["www.other.org"], &["192.0.2.1"]),
        "annotations",
        json!({"external-dns.alpha.kubernetes.io/ttl": "forever", "external-dns.alpha.kubernetes.io/target": "bad_target"}),
    );
    let out = compile_zone(zone(json!({})), std::slice::from_ref(&other));
    assert!(out.problems.is_empty(), "{:?}", out.problems);
    let mut here = other;
    here["spec"]["rules"][0]["host"] = json!("www.acme.example.com");
    let out = compile_zone(zone(json!({})), &[here]);
    // No valid target item: the Ingress keeps its own address.
    assert_eq!(
        rrset(&out, "www.acme.example.com", RecordType::A),
        vec!["192.0.2.1"]
    );
    assert_eq!(out.problems.len(), 2, "{:?}", out.problems);
    assert!(has_problem(
        &out,
        "Ingress acme/other: metadata.annotations[external-dns.alpha.kubernetes.io/ttl]: invalid TTL \"forever\""
    ));
    assert!(has_problem(
        &out,
        "Ingress acme/other: metadata.annotations[external-dns.alpha.kubernetes.io/target]: invalid hostname \"bad_target\""
    ));
}

#[test]
fn output_is_deterministic() {
    let objs = vec![
        ingress("b", &["x.acme.example.com"], &["lb-b.example.net"]),
        ingress("a", &["x.acme.example.com"], &["lb-a.example.net"]),
        ingress(
            "c",
            &["y.acme.example.com", "bad_.acme.example.com"],
            &["192.0.2.3", "192.0.2.1"],
        ),
        lb_service("acme", "s", &["192.0.2.9", "2001:db8::9"]),
    ];
    let mut reversed = objs.clone();
    reversed.reverse();
    let one = compile_zone(zone(json!({})), &objs);
    let two = compile_zone(zone(json!({})), &reversed);
    assert_eq!(one, two);
    assert_eq!(problems(&one), problems(&two));
    assert_eq!(
        rrset(&one, "y.acme.example.com", RecordType::A),
        vec!["192.0.2.3", "192.0.2.1"]
    );
}

#[test]
fn all_output_names_lowercase_and_fully_qualified() {
    let out = compile_zone(
        zone(
            json!({"records": [{"name": "MiXeD", "type": "CNAME", "values": ["Target.Example.NET"]}]}),
        ),
        &[ingress(
            "web",
            &["UPPER.ACME.EXAMPLE.COM"],
            &["Lb.Example.Net"],
        )],
    );
    for (name, sets) in &out.data.records {
        assert!(name.is_fqdn());
        assert_eq!(name.to_ascii(), name.to_ascii().to_lowercase());
        for set in sets.values() {
            for r in &set.rdata {
                assert_eq!(r.to_string(), r.to_string().to_lowercase());
            }
        }
    }
    assert_eq!(
        rrset(&out, "upper.acme.example.com", RecordType::CNAME),
        vec!["lb.example.net."]
    );
}

// ---------------------------------------------------------------- the k8s_gateway fixture set
//
// k8s_gateway's tests (kubernetes_test.go, gateway_test.go) translated to a DNSZone for
// example.com in namespace ns1. Differences by design: we publish `<svc>.<ns>.<domain>` *and*
// the annotation names (k8s_gateway uses the annotation instead), annotation values are fully
// qualified names, and an Ingress and a Service publishing the same name are merged (k8s_gateway
// answers from the Ingress only).

fn k8s_gateway_zone() -> crate::api::DNSZone {
    zone_json(
        json!({"apiVersion": "zonegate.dev/v1alpha1", "kind": "DNSZone",
        "metadata": {"name": "example", "namespace": "ns1"}, "spec": {"domain": "example.com"}}),
    )
}

fn k8s_gateway_fixtures() -> Vec<serde_json::Value> {
    let svc = |name: &str,
               annotations: serde_json::Value,
               labels: serde_json::Value,
               addrs: &[&str]| {
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "ns1", "annotations": annotations, "labels": labels},
            "spec": {"type": "LoadBalancer"}, "status": lb(addrs)})
    };
    let ing = |name: &str, host: &str, labels: serde_json::Value, ip: &str| {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": "ns1", "labels": labels},
            "spec": {"rules": [{"host": host}]}, "status": lb(&[ip])})
    };
    let gw = |name: &str, ip: Option<&str>| {
        let addresses = ip
            .map(|ip| json!([{"type": "IPAddress", "value": ip}]))
            .unwrap_or(json!([]));
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": name, "namespace": "ns1"},
            "spec": {"gatewayClassName": "x", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]},
            "status": {"addresses": addresses}})
    };
    let route = |kind: &str, name: &str, host: &str, labels: serde_json::Value, gws: &[&str]| {
        let refs: Vec<serde_json::Value> = gws.iter().map(|g| json!({"name": g})).collect();
        let parents: Vec<serde_json::Value> = refs
            .iter()
            .map(
                |r| json!({"parentRef": r, "conditions": [{"type": "Accepted", "status": "True"}]}),
            )
            .collect();
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": kind,
            "metadata": {"name": name, "namespace": "ns1", "labels": labels},
            "spec": {"hostnames": [host], "parentRefs": refs}, "status": {"parents": parents}})
    };
    let ignore = json!({"k8s-gateway.dns/ignore": "true"});
    let long = "a".repeat(64);
    vec![
        // svc1.ns1: dual-stack, with a hostname annotation.
        svc(
            "svc1",
            json!({"coredns.io/hostname": "annotation.example.com"}),
            json!({}),
            &["192.0.1.1", "2001:db8::1:1"],
        ),
        // svc2.ns1 and an Ingress for the same name: both published, merged.
        svc("svc2", json!({}), json!({}), &["192.0.1.2"]),
        ing("svc2", "svc2.ns1.example.com", json!({}), "192.0.0.2"),
        // svc3.ns1: no public address yet.
        svc("svc3", json!({}), json!({}), &[]),
        svc(
            "svc4",
            json!({"coredns.io/hostname": "*.annotation-wildcard.example.com"}),
            json!({}),
            &["192.0.0.3"],
        ),
        svc(
            "svc5",
            json!({"coredns.io/hostname": "annotation-list1.example.com, annotation-list2.example.com"}),
            json!({}),
            &["192.0.0.3"],
        ),
        svc(
            "svc6",
            json!({"external-dns.alpha.kubernetes.io/hostname": "annotation-external-dns.example.com"}),
            json!({}),
            &["192.0.0.3"],
        ),
        svc(
            "annotation-bad",
            json!({"coredns.io/hostname": format!("{long}.example.com,foo_bar.example.com,*my.host.example.com,my.*.host.example.com")}),
            json!({}),
            &["192.0.0.4"],
        ),
        svc("ignored-svc", json!({}), ignore.clone(), &["192.0.0.99"]),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "cluster", "namespace": "ns1"},
            "spec": {"type": "ClusterIP"}, "status": lb(&["192.0.0.98"])}),
        ing("ing1", "domain.example.com", json!({}), "192.0.0.1"),
        ing("apex", "example.com", json!({}), "192.0.0.3"),
        ing(
            "ignored-ingress",
            "ignored.example.com",
            ignore.clone(),
            "192.0.0.99",
        ),
        ing("wild", "*.wildcard.example.com", json!({}), "192.0.0.5"),
        ing(
            "specific",
            "specific.wildcard.example.com",
            json!({}),
            "192.0.0.6",
        ),
        gw("gw-1", Some("192.0.2.100")),
        gw("gw-2", Some("192.0.2.101")),
        gw("gw-3", None),
        route(
            "HTTPRoute",
            "route-1",
            "route-1.gw-1.example.com",
            json!({}),
            &["gw-1"],
        ),
        route(
            "HTTPRoute",
            "two-gateways",
            "two.example.com",
            json!({}),
            &["gw-1", "gw-2"],
        ),
        route(
            "HTTPRoute",
            "missing-gateway",
            "missing.example.com",
            json!({}),
            &["gw-missing"],
        ),
        route(
            "HTTPRoute",
            "ignored-route",
            "ignored-route.gw-1.example.com",
            ignore.clone(),
            &["gw-1"],
        ),
        route(
            "TLSRoute",
            "tls-route",
            "tls.gw-1.example.com",
            json!({}),
            &["gw-1"],
        ),
        route(
            "GRPCRoute",
            "grpc-route",
            "grpc.gw-1.example.com",
            json!({}),
            &["gw-1"],
        ),
        json!({"apiVersion": "externaldns.k8s.io/v1alpha1", "kind": "DNSEndpoint", "metadata": {"name": "ep1", "namespace": "ns1"},
        "spec": {"endpoints": [
            {"dnsName": "dual.example.com", "recordType": "A", "targets": ["192.0.2.200"]},
            {"dnsName": "dual.example.com", "recordType": "AAAA", "targets": ["2001:db8::1"]}
        ]}}),
        json!({"apiVersion": "externaldns.k8s.io/v1alpha1", "kind": "DNSEndpoint",
            "metadata": {"name": "ignored-ep", "namespace": "ns1", "labels": ignore},
            "spec": {"endpoints": [{"dnsName": "ignored-ep.example.com", "recordType": "A", "targets": ["192.0.2.99"]}]}}),
    ]
}

fn k8s_gateway_compiled() -> super::Compiled {
    compile_zone(k8s_gateway_zone(), &k8s_gateway_fixtures())
}

fn a(out: &super::Compiled, name: &str) -> Vec<String> {
    rrset(out, name, RecordType::A)
}

#[test]
fn k8s_gateway_dual_stack_service_with_hostname_annotation() {
    let out = k8s_gateway_compiled();
    assert_eq!(a(&out, "svc1.ns1.example.com"), vec!["192.0.1.1"]);
    assert_eq!(
        rrset(&out, "svc1.ns1.example.com", RecordType::AAAA),
        vec!["2001:db8::1:1"]
    );
    assert_eq!(a(&out, "annotation.example.com"), vec!["192.0.1.1"]);
    assert_eq!(
        rrset(&out, "annotation.example.com", RecordType::AAAA),
        vec!["2001:db8::1:1"]
    );
}

#[test]
fn k8s_gateway_ingress_and_service_same_name_merged() {
    let out = k8s_gateway_compiled();
    // Ingress "svc2" sorts before Service "svc2": its address comes first.
    assert_eq!(
        a(&out, "svc2.ns1.example.com"),
        vec!["192.0.0.2", "192.0.1.2"]
    );
}

#[test]
fn k8s_gateway_services_without_address_or_not_lb_publish_nothing() {
    let out = k8s_gateway_compiled();
    assert!(absent(&out, "svc3.ns1.example.com"));
    assert!(absent(&out, "cluster.ns1.example.com"));
}

#[test]
fn k8s_gateway_annotation_lists_and_wildcards() {
    let out = k8s_gateway_compiled();
    assert_eq!(
        a(&out, "*.annotation-wildcard.example.com"),
        vec!["192.0.0.3"]
    );
    assert_eq!(a(&out, "annotation-list1.example.com"), vec!["192.0.0.3"]);
    assert_eq!(a(&out, "annotation-list2.example.com"), vec!["192.0.0.3"]);
    assert_eq!(
        a(&out, "annotation-external-dns.example.com"),
        vec!["192.0.0.3"]
    );
}

#[test]
fn k8s_gateway_bad_annotation_hostnames_rejected() {
    let out = k8s_gateway_compiled();
    // Only the Service's own name is published.
    let names: Vec<String> = published(&out)
        .into_iter()
        .filter(|(_, t)| *t == RecordType::A)
        .filter(|(name, _)| a(&out, name).contains(&"192.0.0.4".to_string()))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(names, vec!["annotation-bad.ns1.example.com."]);
    let bad: Vec<String> = problems(&out)
        .into_iter()
        .filter(|p| p.starts_with("Service ns1/annotation-bad"))
        .collect();
    assert_eq!(bad.len(), 4, "{bad:?}");
    let field =
        "Service ns1/annotation-bad: metadata.annotations[coredns.io/hostname]: invalid hostname";
    assert!(bad.iter().all(|p| p.starts_with(field)), "{bad:?}");
    assert!(bad[0].contains("more than 63"));
    assert!(bad[1].contains("\"foo_bar\" contains '_'"));
    assert!(bad[2].contains("\"*my\""));
    assert!(bad[3].contains("first label"));
}

#[test]
fn k8s_gateway_ingresses_including_apex() {
    let out = k8s_gateway_compiled();
    assert_eq!(a(&out, "domain.example.com"), vec!["192.0.0.1"]);
    assert_eq!(a(&out, "example.com"), vec!["192.0.0.3"]);
}

#[test]
fn k8s_gateway_wildcard_and_specific_name() {
    let out = k8s_gateway_compiled();
    assert_eq!(a(&out, "*.wildcard.example.com"), vec!["192.0.0.5"]);
    assert_eq!(a(&out, "specific.wildcard.example.com"), vec!["192.0.0.6"]);
}

#[test]
fn k8s_gateway_routes() {
    let out = k8s_gateway_compiled();
    assert_eq!(a(&out, "route-1.gw-1.example.com"), vec!["192.0.2.100"]);
    assert_eq!(
        a(&out, "two.example.com"),
        vec!["192.0.2.100", "192.0.2.101"]
    );
    assert!(absent(&out, "missing.example.com"));
    assert!(has_problem(
        &out,
        "HTTPRoute ns1/missing-gateway: spec.parentRefs[0]: Gateway ns1/gw-missing not found"
    ));
    assert_eq!(a(&out, "grpc.gw-1.example.com"), vec!["192.0.2.100"]);
    // The TLSRoute's Gateway has only an HTTP listener.
    assert!(absent(&out, "tls.gw-1.example.com"));
    assert!(has_problem(
        &out,
        "TLSRoute ns1/tls-route: spec.parentRefs[0]: selects no listener of Gateway ns1/gw-1 that takes TLSRoutes"
    ));
}

#[test]
fn k8s_gateway_dnsendpoint_dual() {
    let out = k8s_gateway_compiled();
    assert_eq!(a(&out, "dual.example.com"), vec!["192.0.2.200"]);
    assert_eq!(
        rrset(&out, "dual.example.com", RecordType::AAAA),
        vec!["2001:db8::1"]
    );
}

#[test]
fn k8s_gateway_ignore_label() {
    let out = k8s_gateway_compiled();
    for name in [
        "ignored.example.com",
        "ignored-svc.ns1.example.com",
        "ignored-route.gw-1.example.com",
        "ignored-ep.example.com",
    ] {
        assert!(absent(&out, name), "{name}");
    }
    assert!(!out.problems.iter().any(|p| p.object.contains("ignored")));
}

#[test]
fn k8s_gateway_problem_list_is_exactly_the_expected_one() {
    let out = k8s_gateway_compiled();
    let objects: Vec<&str> = out.problems.iter().map(|p| p.object.as_str()).collect();
    assert_eq!(
        objects,
        vec![
            "HTTPRoute ns1/missing-gateway",
            "Service ns1/annotation-bad",
            "Service ns1/annotation-bad",
            "Service ns1/annotation-bad",
            "Service ns1/annotation-bad",
            "TLSRoute ns1/tls-route",
        ]
    );
}
