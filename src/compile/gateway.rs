//! Gateway API routes (HTTPRoute, GRPCRoute, TLSRoute) and their parent Gateways.

use super::names::{self, Syntax};
use super::{Class, Compiler, targets};
use crate::objects::{Gateway, Listener, ParentRef, Route, RouteKind, SourceObject};
use hickory_proto::rr::{Name, RData};

const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// A parentRef with the defaults applied: group, kind, namespace, name, sectionName, port.
type Parent<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<i32>,
);

fn defaulted<'a>(r: &'a ParentRef, route_ns: &'a str) -> Parent<'a> {
    (
        r.group.as_deref().unwrap_or(GATEWAY_GROUP),
        r.kind.as_deref().unwrap_or("Gateway"),
        r.namespace.as_deref().unwrap_or(route_ns),
        &r.name,
        r.section_name.as_deref(),
        r.port,
    )
}

/// Whether a listener takes routes of `kind` from `route_ns`: the protocol must fit (HTTP or
/// HTTPS for HTTPRoute and GRPCRoute, TLS for TLSRoute), `allowedRoutes.kinds` (when set) must
/// list the kind, and `allowedRoutes.namespaces.from` must allow the namespace (`Same`, the
/// default, means the Gateway's; `All` any; `Selector` cannot be evaluated without namespace
/// labels, so the route's `Accepted` condition is trusted).
fn listener_fits(l: &Listener, kind: RouteKind, route_ns: &str, gw_ns: &str) -> bool {
    let (kind_name, protocol) = match kind {
        RouteKind::HTTPRoute => ("HTTPRoute", matches!(l.protocol.as_str(), "HTTP" | "HTTPS")),
        RouteKind::GRPCRoute => ("GRPCRoute", matches!(l.protocol.as_str(), "HTTP" | "HTTPS")),
        RouteKind::TLSRoute => ("TLSRoute", l.protocol == "TLS"),
    };
    let Some(allowed) = &l.allowed_routes else {
        return protocol && route_ns == gw_ns;
    };
    let kinds = allowed.kinds.is_empty()
        || allowed.kinds.iter().any(|k| {
            k.group.as_deref().unwrap_or(GATEWAY_GROUP) == GATEWAY_GROUP && k.kind == kind_name
        });
    let from = match allowed.namespaces.as_ref().and_then(|n| n.from.as_deref()) {
        None | Some("Same") => route_ns == gw_ns,
        Some(_) => true,
    };
    protocol && kinds && from
}

/// The Gateway API hostname intersection of a route hostname and a listener hostname (both
/// lowercase and valid; wildcards only as `*.` prefix): a listener without hostname takes the
/// route's; `*.x` matches any name strictly below x (any depth); of two wildcards the more
/// specific one is the result; None when they do not intersect.
pub(crate) fn intersect(route: &Name, listener: Option<&Name>) -> Option<Name> {
    let Some(listener) = listener else {
        return Some(route.clone());
    };
    // Strictly below `base` (`*.x` covers `a.x` and `a.b.x`, not `x`).
    let below = |wild: &Name, name: &Name| {
        let base = wild.base_name();
        base.zone_of(name) && name.num_labels() > base.num_labels()
    };
    match (route.is_wildcard(), listener.is_wildcard()) {
        (false, false) => (route == listener).then(|| route.clone()),
        (false, true) => below(listener, route).then(|| route.clone()),
        (true, false) => below(route, listener).then(|| listener.clone()),
        (true, true) => {
            if route.base_name().zone_of(&listener.base_name()) {
                Some(listener.clone())
            } else if listener.base_name().zone_of(&route.base_name()) {
                Some(route.clone())
            } else {
                None
            }
        }
    }
}

/// A Gateway's `status.addresses` as targets: type `IPAddress` (or unset) → A/AAAA, `Hostname` →
/// CNAME. Other types and bad values are reported against the Gateway.
fn gateway_targets(c: &mut Compiler<'_>, gw: &Gateway) -> Vec<RData> {
    let object = format!("Gateway {}/{}", gw.metadata.namespace, gw.metadata.name);
    let mut out = Vec::new();
    for (i, a) in gw.status.addresses.iter().enumerate() {
        let field = format!("status.addresses[{i}]");
        let result = match a.type_.as_deref() {
            None | Some("IPAddress") => targets::ip_rdata(&a.value),
            Some("Hostname") => targets::cname_rdata(&a.value, Syntax::Host),
            Some(other) => Err(format!("address type {other:?} is not supported")),
        };
        match result {
            Ok(r) => out.push(r),
            Err(e) => c.report(&object, field, format!("{e}; address ignored")),
        }
    }
    out
}

/// A route publishes, for each `spec.parentRefs` entry that is a Gateway (defaults: group
/// gateway.networking.k8s.io, kind Gateway, the route's namespace), that has a matching
/// `status.parents[]` entry with condition `Accepted=True`, and whose Gateway is in the store
/// (from any namespace): the intersections of its hostnames (`spec.hostnames` plus the hostname
/// annotations, as ExternalDNS does) with the hostname of every selected listener (sectionName
/// selects by name, port by port, otherwise all; see `listener_fits`), at the Gateway's
/// addresses. Parents of another kind (a Service, for mesh routes) are skipped silently.
///
/// A route that cannot publish into this zone at all (all its hostnames are outside the domain
/// and not wildcards covering it) is skipped without problems; otherwise a parentRef that is not
/// accepted, whose Gateway is missing, or that selects no listener is reported.
///
/// Gateways are read whatever their labels: the selector and ignore labels apply to routes.
pub(crate) fn compile(c: &mut Compiler<'_>, obj: &SourceObject, kind: RouteKind, route: &Route) {
    let src = c.source(obj, Class::Host);
    let route_ns = src.meta.namespace.as_str();

    // Route hostnames: validated whether or not in the zone (a wildcard outside the domain may
    // intersect a listener hostname inside it).
    let mut hosts: Vec<(Name, String)> = Vec::new();
    let written = route
        .spec
        .hostnames
        .iter()
        .enumerate()
        .map(|(i, h)| (format!("spec.hostnames[{i}]"), h.as_str()))
        .chain(super::annotations::hostnames(src.meta));
    let mut any_written = false;
    let mut relevant = false;
    for (field, raw) in written {
        any_written = true;
        match names::parse_host(raw, Syntax::Host, true) {
            Ok(h) => {
                relevant |=
                    c.origin.zone_of(&h) || (h.is_wildcard() && h.base_name().zone_of(&c.origin));
                hosts.push((h, field));
            }
            Err(e) if crate::domain::within(raw, &c.domain) => {
                c.report(&src.object, field, format!("{e}; name ignored"))
            }
            Err(_) => {}
        }
    }
    // With hostnames written, none of which can meet this zone: not our business.
    if any_written && !relevant {
        return;
    }

    let store = c.store;
    for (i, pref) in route.spec.parent_refs.iter().enumerate() {
        let field = format!("spec.parentRefs[{i}]");
        let want = defaulted(pref, route_ns);
        let (group, gkind, gw_ns, gw_name, section, port) = want;
        if group != GATEWAY_GROUP || gkind != "Gateway" {
            continue;
        }
        let accepted = route.status.parents.iter().any(|p| {
            defaulted(&p.parent_ref, route_ns) == want
                && p.conditions
                    .iter()
                    .any(|cond| cond.type_ == "Accepted" && cond.status == "True")
        });
        if !accepted {
            c.report(&src.object, field, format!("not accepted by Gateway {gw_ns}/{gw_name} (no status.parents entry with Accepted=True); nothing published through it"));
            continue;
        }
        let Some(gw) = store.gateway(gw_ns, gw_name) else {
            c.report(
                &src.object,
                field,
                format!("Gateway {gw_ns}/{gw_name} not found; nothing published through it"),
            );
            continue;
        };
        let gw_object = format!("Gateway {gw_ns}/{gw_name}");
        let mut names: Vec<(Name, String)> = Vec::new();
        let mut selected = 0;
        for (k, l) in gw.spec.listeners.iter().enumerate() {
            if section.is_some_and(|s| s != l.name)
                || port.is_some_and(|p| Some(p) != l.port)
                || !listener_fits(l, kind, route_ns, gw_ns)
            {
                continue;
            }
            selected += 1;
            let lhost = match l.hostname.as_deref().filter(|h| !h.is_empty()) {
                None => None,
                Some(raw) => match names::parse_host(raw, Syntax::Host, true) {
                    Ok(h) => Some(h),
                    Err(e) => {
                        if crate::domain::within(raw, &c.domain) {
                            c.report(
                                &gw_object,
                                format!("spec.listeners[{k}].hostname"),
                                format!("{e}; listener ignored"),
                            );
                        }
                        continue;
                    }
                },
            };
            if hosts.is_empty() {
                if let Some(h) = lhost {
                    names.push((
                        h,
                        format!("{field} (Gateway {gw_ns}/{gw_name} spec.listeners[{k}].hostname)"),
                    ));
                }
                continue;
            }
            for (h, hfield) in &hosts {
                if let Some(name) = intersect(h, lhost.as_ref()) {
                    names.push((name, hfield.clone()));
                }
            }
        }
        if selected == 0 {
            c.report(
                &src.object,
                field,
                format!("selects no listener of Gateway {gw_ns}/{gw_name} that takes {}s; nothing published through it", obj.kind()),
            );
            continue;
        }
        // Names reached through this Gateway get its addresses; a name reached through two
        // Gateways gets both.
        names.retain(|(n, _)| c.origin.zone_of(n));
        if names.is_empty() {
            continue;
        }
        let targets = match src.target_override {
            Some(_) => Vec::new(),
            None => gateway_targets(c, gw),
        };
        c.publish(&src, names, targets);
    }
}

#[cfg(test)]
mod tests {
    use super::intersect;
    use crate::compile::testing::*;
    use hickory_proto::rr::RecordType;
    use serde_json::{Value, json};

    fn nm(s: &str) -> hickory_proto::rr::Name {
        n(s)
    }

    fn gw(ns: &str, name: &str, listeners: Value, addresses: Value) -> Value {
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": meta(ns, name),
            "spec": {"gatewayClassName": "x", "listeners": listeners}, "status": {"addresses": addresses}})
    }

    fn http_listener(name: &str, hostname: Option<&str>) -> Value {
        let mut l = json!({"name": name, "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "All"}}});
        if let Some(h) = hostname {
            l["hostname"] = json!(h);
        }
        l
    }

    fn accepted(parent: Value) -> Value {
        json!({"parentRef": parent, "controllerName": "x", "conditions": [{"type": "Accepted", "status": "True"}]})
    }

    fn route(
        kind: &str,
        name: &str,
        hostnames: &[&str],
        parents: Value,
        status_parents: Value,
    ) -> Value {
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": kind, "metadata": meta("acme", name),
            "spec": {"hostnames": hostnames, "parentRefs": parents}, "status": {"parents": status_parents}})
    }

    /// An HTTPRoute in `acme` attached (and accepted) to `infra/<gw>` for each gw.
    fn http_route(name: &str, hostnames: &[&str], gws: &[&str]) -> Value {
        let refs: Vec<Value> = gws
            .iter()
            .map(|g| json!({"name": g, "namespace": "infra"}))
            .collect();
        let st: Vec<Value> = refs.iter().cloned().map(accepted).collect();
        route("HTTPRoute", name, hostnames, json!(refs), json!(st))
    }

    fn std_gw(name: &str, ip: &str) -> Value {
        gw(
            "infra",
            name,
            json!([http_listener("http", None)]),
            json!([{"type": "IPAddress", "value": ip}]),
        )
    }

    #[test]
    fn intersection_rules() {
        let i =
            |r: &str, l: Option<&str>| intersect(&nm(r), l.map(nm).as_ref()).map(|n| n.to_ascii());
        assert_eq!(i("a.x.com", None), Some("a.x.com.".into()));
        assert_eq!(i("a.x.com", Some("a.x.com")), Some("a.x.com.".into()));
        assert_eq!(i("a.x.com", Some("b.x.com")), None);
        assert_eq!(i("a.x.com", Some("*.x.com")), Some("a.x.com.".into()));
        assert_eq!(i("a.b.x.com", Some("*.x.com")), Some("a.b.x.com.".into()));
        assert_eq!(i("x.com", Some("*.x.com")), None);
        assert_eq!(i("*.x.com", Some("a.x.com")), Some("a.x.com.".into()));
        assert_eq!(i("*.x.com", Some("x.com")), None);
        assert_eq!(i("*.x.com", Some("*.a.x.com")), Some("*.a.x.com.".into()));
        assert_eq!(i("*.a.x.com", Some("*.x.com")), Some("*.a.x.com.".into()));
        assert_eq!(i("*.x.com", Some("*.x.com")), Some("*.x.com.".into()));
        assert_eq!(i("*.x.com", Some("*.y.com")), None);
        assert_eq!(i("*.x.com", None), Some("*.x.com.".into()));
    }

    #[test]
    fn accepted_route_gets_gateway_address() {
        let out = compile_zone(
            zone(json!({})),
            &[
                std_gw("gw-1", "192.0.2.100"),
                http_route("r", &["app.acme.example.com"], &["gw-1"]),
            ],
        );
        assert_eq!(
            rrset(&out, "app.acme.example.com", RecordType::A),
            vec!["192.0.2.100"]
        );
        assert!(out.problems.is_empty(), "{:?}", out.problems);
    }

    #[test]
    fn two_gateways_give_both_addresses() {
        let out = compile_zone(
            zone(json!({})),
            &[
                std_gw("gw-1", "192.0.2.100"),
                std_gw("gw-2", "2001:db8::100"),
                std_gw("gw-3", "192.0.2.101"),
                http_route("r", &["app.acme.example.com"], &["gw-1", "gw-2", "gw-3"]),
            ],
        );
        assert_eq!(
            rrset(&out, "app.acme.example.com", RecordType::A),
            vec!["192.0.2.100", "192.0.2.101"]
        );
        assert_eq!(
            rrset(&out, "app.acme.example.com", RecordType::AAAA),
            vec!["2001:db8::100"]
        );
    }

    #[test]
    fn each_gateway_addresses_only_its_own_names() {
        let g1 = gw(
            "infra",
            "g1",
            json!([http_listener("h", Some("one.acme.example.com"))]),
            json!([{"value": "192.0.2.1"}]),
        );
        let g2 = gw(
            "infra",
            "g2",
            json!([http_listener("h", Some("two.acme.example.com"))]),
            json!([{"value": "192.0.2.2"}]),
        );
        let out = compile_zone(
            zone(json!({})),
            &[g1, g2, http_route("r", &[], &["g1", "g2"])],
        );
        assert_eq!(
            rrset(&out, "one.acme.example.com", RecordType::A),
            vec!["192.0.2.1"]
        );
        assert_eq!(
            rrset(&out, "two.acme.example.com", RecordType::A),
            vec!["192.0.2.2"]
        );
    }

    #[test]
    fn gateway_address_problems_only_when_publishing_here() {
        let g = gw(
            "infra",
            "gw",
            json!([http_listener("h", Some("app.other.org"))]),
            json!([{"value": "bad"}]),
        );
        let out = compile_zone(zone(json!({})), &[g, http_route("r", &[], &["gw"])]);
        assert!(published(&out).is_empty());
        assert!(out.problems.is_empty(), "{:?}", out.problems);
    }

    #[test]
    fn missing_gateway_gives_nothing() {
        let out = compile_zone(
            zone(json!({})),
            &[http_route("r", &["app.acme.example.com"], &["gone"])],
        );
        assert!(published(&out).is_empty());
        assert_eq!(
            problems(&out),
            vec![
                "HTTPRoute acme/r: spec.parentRefs[0]: Gateway infra/gone not found; nothing published through it"
            ]
        );
    }

    #[test]
    fn not_accepted_gives_nothing() {
        let mut r = http_route("r", &["app.acme.example.com"], &["gw-1"]);
        r["status"]["parents"][0]["conditions"][0]["status"] = json!("False");
        let out = compile_zone(zone(json!({})), &[std_gw("gw-1", "192.0.2.100"), r.clone()]);
        assert!(published(&out).is_empty());
        assert!(has_problem(
            &out,
            "HTTPRoute acme/r: spec.parentRefs[0]: not accepted by Gateway infra/gw-1"
        ));
        r["status"] = json!({});
        let out = compile_zone(zone(json!({})), &[std_gw("gw-1", "192.0.2.100"), r]);
        assert!(published(&out).is_empty());
    }

    #[test]
    fn status_parent_must_match_after_defaulting() {
        // parentRef without namespace/group/kind; status entry spells the defaults out.
        let r = route(
            "HTTPRoute",
            "r",
            &["app.acme.example.com"],
            json!([{"name": "local"}]),
            json!([accepted(
                json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "acme", "name": "local"})
            )]),
        );
        let g = gw(
            "acme",
            "local",
            json!([{"name": "http", "port": 80, "protocol": "HTTP"}]),
            json!([{"value": "192.0.2.5"}]),
        );
        let out = compile_zone(zone(json!({})), &[g.clone(), r]);
        assert_eq!(
            rrset(&out, "app.acme.example.com", RecordType::A),
            vec!["192.0.2.5"]
        );
        // Status for another sectionName does not count.
        let r = route(
            "HTTPRoute",
            "r",
            &["app.acme.example.com"],
            json!([{"name": "local", "sectionName": "http"}]),
            json!([accepted(json!({"name": "local"}))]),
        );
        let out = compile_zone(zone(json!({})), &[g, r]);
        assert!(published(&out).is_empty());
    }

    #[test]
    fn listener_hostname_intersection_and_route_without_hostnames() {
        let g = gw(
            "infra",
            "gw",
            json!([
                http_listener("a", Some("*.apps.acme.example.com")),
                http_listener("b", Some("api.acme.example.com"))
            ]),
            json!([{"value": "192.0.2.9"}]),
        );
        let out = compile_zone(
            zone(json!({})),
            &[
                g.clone(),
                http_route(
                    "r",
                    &[
                        "x.apps.acme.example.com",
                        "api.acme.example.com",
                        "apps.acme.example.com",
                    ],
                    &["gw"],
                ),
            ],
        );
        assert_eq!(
            rrset(&out, "x.apps.acme.example.com", RecordType::A),
            vec!["192.0.2.9"]
        );
        assert_eq!(
            rrset(&out, "api.acme.example.com", RecordType::A),
            vec!["192.0.2.9"]
        );
        assert!(absent(&out, "apps.acme.example.com"));
        // Without hostnames the route takes the listener hostnames, wildcard included.
        let out = compile_zone(zone(json!({})), &[g, http_route("r", &[], &["gw"])]);
        assert_eq!(
            rrset(&out, "*.apps.acme.example.com", RecordType::A),
            vec!["192.0.2.9"]
        );
        assert_eq!(
            rrset(&out, "api.acme.example.com", RecordType::A),
            vec!["192.0.2.9"]
        );
    }

    #[test]
    fn wildcard_route_outside_domain_meets_listener_inside() {
        let g = gw(
            "infra",
            "gw",
            json!([http_listener("a", Some("shop.acme.example.com"))]),
            json!([{"value": "192.0.2.9"}]),
        );
        let out = compile_zone(
            zone(json!({})),
            &[g, http_route("r", &["*.example.com"], &["gw"])],
        );
        assert_eq!(
            rrset(&out, "shop.acme.example.com", RecordType::A),
            vec!["192.0.2.9"]
        );
    }

    #[test]
    fn section_name_and_port_select_listeners() {
        let g = gw(
            "infra",
            "gw",
            json!([
                http_listener("a", Some("a.acme.example.com")),
                {"name": "b", "port": 8080, "protocol": "HTTP", "hostname": "b.acme.example.com", "allowedRoutes": {"namespaces": {"from": "All"}}}
            ]),
            json!([{"value": "192.0.2.9"}]),
        );
        let by_section = route(
            "HTTPRoute",
            "r",
            &[],
            json!([{"name": "gw", "namespace": "infra", "sectionName": "b"}]),
            json!([accepted(
                json!({"name": "gw", "namespace": "infra", "sectionName": "b"})
            )]),
        );
        let out = compile_zone(zone(json!({})), &[g.clone(), by_section]);
        assert_eq!(
            published(&out),
            vec![("b.acme.example.com.".to_string(), RecordType::A)]
        );
        let by_port = route(
            "HTTPRoute",
            "r",
            &[],
            json!([{"name": "gw", "namespace": "infra", "port": 80}]),
            json!([accepted(
                json!({"name": "gw", "namespace": "infra", "port": 80})
            )]),
        );
        let out = compile_zone(zone(json!({})), &[g.clone(), by_port]);
        assert_eq!(
            published(&out),
            vec![("a.acme.example.com.".to_string(), RecordType::A)]
        );
        let none = route(
            "HTTPRoute",
            "r",
            &["a.acme.example.com"],
            json!([{"name": "gw", "namespace": "infra", "sectionName": "zzz"}]),
            json!([accepted(
                json!({"name": "gw", "namespace": "infra", "sectionName": "zzz"})
            )]),
        );
        let out = compile_zone(zone(json!({})), &[g, none]);
        assert!(published(&out).is_empty());
        assert!(has_problem(
            &out,
            "selects no listener of Gateway infra/gw that takes HTTPRoutes"
        ));
    }

    #[test]
    fn protocol_must_fit_route_kind() {
        let g = gw(
            "infra",
            "gw",
            json!([
                {"name": "tls", "port": 443, "protocol": "TLS", "hostname": "tls.acme.example.com", "allowedRoutes": {"namespaces": {"from": "All"}}},
                {"name": "https", "port": 443, "protocol": "HTTPS", "hostname": "web.acme.example.com", "allowedRoutes": {"namespaces": {"from": "All"}}}
            ]),
            json!([{"value": "192.0.2.9"}]),
        );
        let refs = json!([{"name": "gw", "namespace": "infra"}]);
        let st = json!([accepted(json!({"name": "gw", "namespace": "infra"}))]);
        let tls = route("TLSRoute", "t", &[], refs.clone(), st.clone());
        let grpc = route("GRPCRoute", "g", &[], refs, st);
        let out = compile_zone(zone(json!({})), &[g.clone(), tls]);
        assert_eq!(
            published(&out),
            vec![("tls.acme.example.com.".to_string(), RecordType::A)]
        );
        let out = compile_zone(zone(json!({})), &[g, grpc]);
        assert_eq!(
            published(&out),
            vec![("web.acme.example.com.".to_string(), RecordType::A)]
        );
    }

    #[test]
    fn allowed_routes_namespaces_and_kinds() {
        // Default allowedRoutes: Same namespace only; the route is in acme, the Gateway in infra.
        let g = gw(
            "infra",
            "gw",
            json!([{"name": "http", "port": 80, "protocol": "HTTP"}]),
            json!([{"value": "192.0.2.9"}]),
        );
        let out = compile_zone(
            zone(json!({})),
            &[g, http_route("r", &["a.acme.example.com"], &["gw"])],
        );
        assert!(published(&out).is_empty());
        let g = gw(
            "infra",
            "gw",
            json!([{"name": "http", "port": 80, "protocol": "HTTP",
            "allowedRoutes": {"namespaces": {"from": "All"}, "kinds": [{"kind": "GRPCRoute"}]}}]),
            json!([{"value": "192.0.2.9"}]),
        );
        let out = compile_zone(
            zone(json!({})),
            &[g, http_route("r", &["a.acme.example.com"], &["gw"])],
        );
        assert!(published(&out).is_empty());
    }

    #[test]
    fn hostname_address_gives_cname_and_bad_address_reported_on_gateway() {
        let g = gw(
            "infra",
            "gw",
            json!([http_listener("http", None)]),
            json!([{"type": "Hostname", "value": "gw.elb.example.net"}, {"type": "NamedAddress", "value": "x"}, {"value": "nope"}]),
        );
        let out = compile_zone(
            zone(json!({})),
            &[g, http_route("r", &["a.acme.example.com"], &["gw"])],
        );
        assert_eq!(
            rrset(&out, "a.acme.example.com", RecordType::CNAME),
            vec!["gw.elb.example.net."]
        );
        assert_eq!(
            problems(&out),
            vec![
                "Gateway infra/gw: status.addresses[1]: address type \"NamedAddress\" is not supported; address ignored",
                "Gateway infra/gw: status.addresses[2]: \"nope\" is not an IP address; address ignored",
            ]
        );
    }

    #[test]
    fn route_outside_zone_is_silent_even_if_broken() {
        let out = compile_zone(
            zone(json!({})),
            &[http_route("r", &["app.other.org"], &["gone"])],
        );
        assert!(out.problems.is_empty());
    }

    #[test]
    fn parent_of_other_kind_is_skipped_silently() {
        let r = route(
            "HTTPRoute",
            "mesh",
            &["a.acme.example.com"],
            json!([{"group": "", "kind": "Service", "name": "svc"}]),
            json!([]),
        );
        let out = compile_zone(zone(json!({})), &[r]);
        assert!(published(&out).is_empty());
        assert!(out.problems.is_empty());
    }

    #[test]
    fn invalid_route_hostname_in_zone_reported() {
        let out = compile_zone(
            zone(json!({})),
            &[
                std_gw("gw", "192.0.2.1"),
                http_route(
                    "r",
                    &["bad_name.acme.example.com", "ok.acme.example.com"],
                    &["gw"],
                ),
            ],
        );
        assert_eq!(
            rrset(&out, "ok.acme.example.com", RecordType::A),
            vec!["192.0.2.1"]
        );
        assert!(has_problem(
            &out,
            "HTTPRoute acme/r: spec.hostnames[0]: invalid hostname \"bad_name.acme.example.com\""
        ));
    }

    #[test]
    fn hostname_annotation_joins_route_hostnames() {
        let r = with_meta(
            http_route("r", &[], &["gw"]),
            "annotations",
            json!({"external-dns.alpha.kubernetes.io/hostname": "extra.acme.example.com"}),
        );
        let out = compile_zone(zone(json!({})), &[std_gw("gw", "192.0.2.1"), r]);
        assert_eq!(
            published(&out),
            vec![("extra.acme.example.com.".to_string(), RecordType::A)]
        );
    }
}
