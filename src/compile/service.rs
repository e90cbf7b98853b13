//! Service (v1).

use super::names::Syntax;
use super::{Class, Compiler, annotations, targets};
use crate::objects::{Service, SourceObject};

/// Only `spec.type: LoadBalancer` Services publish: `<name>.<namespace>.<domain>` plus the
/// hostname annotations. Targets: `spec.externalIPs` when set, otherwise the load-balancer
/// status; a target annotation replaces both.
///
/// A Service of another type publishes nothing. If it carries a hostname annotation naming
/// this zone, that is reported (users coming from ExternalDNS, which publishes ClusterIP and
/// NodePort Services, would otherwise wonder where the name went).
pub(crate) fn compile(c: &mut Compiler<'_>, obj: &SourceObject, svc: &Service) {
    let src = c.source(obj, Class::Host);
    if svc.spec.type_.as_deref() != Some("LoadBalancer") {
        let in_zone = annotations::hostnames(src.meta)
            .iter()
            .any(|(_, h)| crate::domain::within(h, &c.domain));
        if in_zone {
            let ty = svc.spec.type_.as_deref().unwrap_or("ClusterIP");
            c.report(
                &src.object,
                "spec.type",
                format!("only LoadBalancer Services publish names; this one is {ty}, its hostname annotations are ignored"),
            );
        }
        return;
    }
    let mut names = Vec::new();
    let own = format!("{}.{}.{}", src.meta.name, src.meta.namespace, c.domain);
    names.extend(
        c.host(&src, &own, "metadata.name", Syntax::Host)
            .map(|n| (n, "metadata.name".to_string())),
    );
    names.extend(c.annotation_hosts(&src));

    let targets = if src.overrides(&names) {
        Vec::new()
    } else if !svc.spec.external_ips.is_empty() {
        let mut out = Vec::new();
        for (i, ip) in svc.spec.external_ips.iter().enumerate() {
            match targets::ip_rdata(ip) {
                Ok(r) => out.push(r),
                Err(e) => c.report(
                    &src.object,
                    format!("spec.externalIPs[{i}]"),
                    format!("{e}; address ignored"),
                ),
            }
        }
        out
    } else {
        let entries = svc
            .status
            .load_balancer
            .ingress
            .iter()
            .map(|e| (e.ip.as_deref(), e.hostname.as_deref()));
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
    fn name_dot_namespace_dot_domain() {
        let out = compile_zone(
            zone(json!({})),
            &[lb_service("acme", "api", &["192.0.2.1"])],
        );
        assert_eq!(
            rrset(&out, "api.acme.acme.example.com", RecordType::A),
            vec!["192.0.2.1"]
        );
        assert!(out.problems.is_empty());
    }

    #[test]
    fn other_types_publish_nothing() {
        let mut v = lb_service("acme", "api", &["192.0.2.1"]);
        v["spec"]["type"] = json!("ClusterIP");
        let out = compile_zone(zone(json!({})), &[v.clone()]);
        assert!(published(&out).is_empty());
        assert!(out.problems.is_empty());
        v["spec"]["type"] = json!("NodePort");
        let out = compile_zone(zone(json!({})), &[v.clone()]);
        assert!(published(&out).is_empty());
        v["spec"].as_object_mut().unwrap().remove("type");
        let out = compile_zone(zone(json!({})), &[v]);
        assert!(published(&out).is_empty());
    }

    #[test]
    fn non_lb_with_hostname_annotation_is_reported() {
        let mut v = with_meta(
            lb_service("acme", "api", &["192.0.2.1"]),
            "annotations",
            json!({"external-dns.alpha.kubernetes.io/hostname": "api.acme.example.com"}),
        );
        v["spec"]["type"] = json!("ClusterIP");
        let out = compile_zone(zone(json!({})), &[v]);
        assert!(published(&out).is_empty());
        assert_eq!(
            problems(&out),
            vec![
                "Service acme/api: spec.type: only LoadBalancer Services publish names; this one is ClusterIP, its hostname annotations are ignored"
            ]
        );
    }

    #[test]
    fn external_ips_win_over_status() {
        let mut v = lb_service("acme", "api", &["192.0.2.1"]);
        v["spec"]["externalIPs"] = json!(["198.51.100.7", "bogus"]);
        let out = compile_zone(zone(json!({})), &[v]);
        assert_eq!(
            rrset(&out, "api.acme.acme.example.com", RecordType::A),
            vec!["198.51.100.7"]
        );
        assert_eq!(
            problems(&out),
            vec![
                "Service acme/api: spec.externalIPs[1]: \"bogus\" is not an IP address; address ignored"
            ]
        );
    }

    #[test]
    fn all_three_hostname_annotations() {
        let v = with_meta(
            lb_service("acme", "api", &["192.0.2.1"]),
            "annotations",
            json!({
                "coredns.io/hostname": "a.acme.example.com",
                "external-dns.alpha.kubernetes.io/hostname": "b.acme.example.com., c.acme.example.com",
                "external-dns.kubernetes.io/hostname": "d.acme.example.com"
            }),
        );
        let out = compile_zone(zone(json!({})), &[v]);
        for h in ["a", "b", "c", "d", "api.acme"] {
            assert_eq!(
                rrset(&out, &format!("{h}.acme.example.com"), RecordType::A),
                vec!["192.0.2.1"],
                "{h}"
            );
        }
    }

    #[test]
    fn services_in_other_namespaces_not_read_by_default() {
        let out = compile_zone(
            zone(json!({})),
            &[lb_service("other", "api", &["192.0.2.1"])],
        );
        assert!(published(&out).is_empty());
    }
}
