//! Ingress (networking.k8s.io/v1).

use super::names::Syntax;
use super::{Class, Compiler};
use crate::objects::{Ingress, SourceObject};

/// Names: `spec.rules[].host`, `spec.tls[].hosts[]` and the hostname annotations (wildcards
/// allowed, as Ingress allows them). Targets: `status.loadBalancer.ingress[]` (ip → A/AAAA,
/// hostname → CNAME), unless a target annotation replaces them.
pub(crate) fn compile(c: &mut Compiler<'_>, obj: &SourceObject, ing: &Ingress) {
    let src = c.source(obj, Class::Host);
    let mut names = Vec::new();
    for (i, rule) in ing.spec.rules.iter().enumerate() {
        if let Some(host) = rule.host.as_deref() {
            let field = format!("spec.rules[{i}].host");
            names.extend(c.host(&src, host, &field, Syntax::Host).map(|n| (n, field)));
        }
    }
    for (i, tls) in ing.spec.tls.iter().enumerate() {
        for (j, host) in tls.hosts.iter().enumerate() {
            let field = format!("spec.tls[{i}].hosts[{j}]");
            names.extend(c.host(&src, host, &field, Syntax::Host).map(|n| (n, field)));
        }
    }
    names.extend(c.annotation_hosts(&src));
    if names.is_empty() {
        return;
    }
    let entries = ing
        .status
        .load_balancer
        .ingress
        .iter()
        .map(|e| (e.ip.as_deref(), e.hostname.as_deref()));
    let targets = if src.overrides(&names) {
        Vec::new()
    } else {
        c.lb_targets(&src.object, "status.loadBalancer.ingress", entries)
    };
    c.publish(&src, names, targets);
}

#[cfg(test)]
mod tests {
    use crate::compile::testing::*;
    use hickory_proto::rr::RecordType;
    use serde_json::json;

    #[test]
    fn target_annotation_naming_its_own_host_keeps_the_lb_address() {
        // the Desktop Kubernetes example: target == host, so ExternalDNS publishes the Ingress
        let v = with_meta(
            ingress("web", &["foo.acme.example.com"], &["192.0.2.7"]),
            "annotations",
            json!({"external-dns.alpha.kubernetes.io/target": "foo.acme.example.com"}),
        );
        let out = compile_zone(zone(json!({})), &[v]);
        assert_eq!(
            rrset(&out, "foo.acme.example.com", RecordType::A),
            vec!["192.0.2.7"]
        );
        assert!(rrset(&out, "foo.acme.example.com", RecordType::CNAME).is_empty());
        assert!(out.problems.is_empty(), "{:?}", problems(&out));
        // another host as the target still replaces the address
        let v = with_meta(
            ingress("web", &["foo.acme.example.com"], &["192.0.2.7"]),
            "annotations",
            json!({"external-dns.alpha.kubernetes.io/target": "lb.example.net"}),
        );
        let out = compile_zone(zone(json!({})), &[v]);
        assert_eq!(
            rrset(&out, "foo.acme.example.com", RecordType::CNAME),
            vec!["lb.example.net."]
        );
        assert!(rrset(&out, "foo.acme.example.com", RecordType::A).is_empty());
    }

    #[test]
    fn rule_hosts_get_lb_ips() {
        let out = compile_zone(
            zone(json!({})),
            &[ingress(
                "web",
                &["www.acme.example.com"],
                &["192.0.2.1", "2001:db8::1"],
            )],
        );
        assert_eq!(
            rrset(&out, "www.acme.example.com", RecordType::A),
            vec!["192.0.2.1"]
        );
        assert_eq!(
            rrset(&out, "www.acme.example.com", RecordType::AAAA),
            vec!["2001:db8::1"]
        );
        assert_eq!(
            ttl_of(&out, "www.acme.example.com", RecordType::A),
            Some(60)
        );
        assert!(out.problems.is_empty());
    }

    #[test]
    fn tls_hosts_and_case_and_trailing_dot() {
        let v = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta("acme", "web"),
            "spec": {"rules": [{"host": "WWW.Acme.Example.com."}], "tls": [{"hosts": ["secure.acme.example.com", "www.acme.example.com"]}]},
            "status": lb(&["192.0.2.1"])});
        let out = compile_zone(zone(json!({})), &[v]);
        assert_eq!(
            rrset(&out, "www.acme.example.com", RecordType::A),
            vec!["192.0.2.1"]
        );
        assert_eq!(
            rrset(&out, "secure.acme.example.com", RecordType::A),
            vec!["192.0.2.1"]
        );
    }

    #[test]
    fn lb_hostname_gives_cname_and_ip_wins_in_one_entry() {
        let v = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta("acme", "web"),
            "spec": {"rules": [{"host": "a.acme.example.com"}]},
            "status": {"loadBalancer": {"ingress": [{"hostname": "LB-1.elb.example.net"}]}}});
        let out = compile_zone(zone(json!({})), &[v]);
        assert_eq!(
            rrset(&out, "a.acme.example.com", RecordType::CNAME),
            vec!["lb-1.elb.example.net."]
        );
        let v = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta("acme", "web"),
            "spec": {"rules": [{"host": "a.acme.example.com"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.5", "hostname": "lb-1.elb.example.net"}]}}});
        let out = compile_zone(zone(json!({})), &[v]);
        assert_eq!(
            rrset(&out, "a.acme.example.com", RecordType::A),
            vec!["192.0.2.5"]
        );
        assert!(rrset(&out, "a.acme.example.com", RecordType::CNAME).is_empty());
        assert!(out.problems.is_empty());
    }

    #[test]
    fn hosts_outside_domain_ignored_silently() {
        let out = compile_zone(
            zone(json!({})),
            &[ingress(
                "web",
                &["www.other.org", "foo_bar.other.org", "xacme.example.com"],
                &["192.0.2.1"],
            )],
        );
        assert!(published(&out).is_empty());
        assert!(out.problems.is_empty(), "{:?}", out.problems);
    }

    #[test]
    fn apex_host_counts() {
        let out = compile_zone(
            zone(json!({})),
            &[ingress("web", &["acme.example.com"], &["192.0.2.1"])],
        );
        assert_eq!(
            rrset(&out, "acme.example.com", RecordType::A),
            vec!["192.0.2.1"]
        );
    }

    #[test]
    fn invalid_hosts_reported_with_field() {
        let long = "a".repeat(64);
        let out = compile_zone(
            zone(json!({})),
            &[ingress(
                "web",
                &[
                    "ok.acme.example.com",
                    "foo_bar.acme.example.com",
                    &format!("{long}.acme.example.com"),
                ],
                &["192.0.2.1"],
            )],
        );
        assert_eq!(
            rrset(&out, "ok.acme.example.com", RecordType::A),
            vec!["192.0.2.1"]
        );
        let p = problems(&out);
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(
            p[0],
            "Ingress acme/web: spec.rules[1].host: invalid hostname \"foo_bar.acme.example.com\": label \"foo_bar\" contains '_'; name ignored"
        );
        assert!(p[1].starts_with("Ingress acme/web: spec.rules[2].host: invalid hostname"));
        assert!(p[1].contains("more than 63"));
    }

    #[test]
    fn wildcard_host_kept_literally() {
        let out = compile_zone(
            zone(json!({})),
            &[ingress(
                "apps",
                &["*.apps.acme.example.com"],
                &["192.0.2.7"],
            )],
        );
        assert_eq!(
            rrset(&out, "*.apps.acme.example.com", RecordType::A),
            vec!["192.0.2.7"]
        );
    }

    #[test]
    fn no_status_publishes_nothing_without_problem() {
        let out = compile_zone(
            zone(json!({})),
            &[ingress("web", &["www.acme.example.com"], &[])],
        );
        assert!(published(&out).is_empty());
        assert!(out.problems.is_empty());
    }

    #[test]
    fn bad_lb_ip_reported() {
        let v = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta("acme", "web"),
            "spec": {"rules": [{"host": "a.acme.example.com"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "300.1.1.1"}, {"ip": "192.0.2.1"}]}}});
        let out = compile_zone(zone(json!({})), &[v]);
        assert_eq!(
            rrset(&out, "a.acme.example.com", RecordType::A),
            vec!["192.0.2.1"]
        );
        assert_eq!(
            problems(&out),
            vec![
                "Ingress acme/web: status.loadBalancer.ingress[0].ip: \"300.1.1.1\" is not an IP address; address ignored"
            ]
        );
    }

    #[test]
    fn hostname_annotation_on_ingress() {
        let v = with_meta(
            ingress("web", &["www.acme.example.com"], &["192.0.2.1"]),
            "annotations",
            json!({"external-dns.alpha.kubernetes.io/hostname": "extra.acme.example.com, other.example.org"}),
        );
        let out = compile_zone(zone(json!({})), &[v]);
        assert_eq!(
            rrset(&out, "extra.acme.example.com", RecordType::A),
            vec!["192.0.2.1"]
        );
        assert_eq!(
            rrset(&out, "www.acme.example.com", RecordType::A),
            vec!["192.0.2.1"]
        );
    }
}
