//! VirtualServer (k8s.nginx.org/v1).

use super::names::Syntax;
use super::{Class, Compiler};
use crate::objects::{SourceObject, VirtualServer};

/// Name: `spec.host` (wildcards allowed, as NGINX allows them). Targets:
/// `status.externalEndpoints[]`: `ip` → A/AAAA, `hostname` → CNAME (the IP when an endpoint has
/// both). Hostname annotations are not read: a VirtualServer has exactly one host.
pub(crate) fn compile(c: &mut Compiler<'_>, obj: &SourceObject, vs: &VirtualServer) {
    let src = c.source(obj, Class::Host);
    let Some(name) = c.host(&src, &vs.spec.host, "spec.host", Syntax::Host) else {
        return;
    };
    let entries = vs
        .status
        .external_endpoints
        .iter()
        .map(|e| (e.ip.as_deref(), e.hostname.as_deref()));
    let names = vec![(name, "spec.host".to_string())];
    let targets = if src.overrides(&names) {
        Vec::new()
    } else {
        c.lb_targets(&src.object, "status.externalEndpoints", entries)
    };
    c.publish(&src, names, targets);
}

#[cfg(test)]
mod tests {
    use crate::compile::testing::*;
    use hickory_proto::rr::RecordType;
    use serde_json::{Value, json};

    fn vs(host: &str, endpoints: Value) -> Value {
        json!({"apiVersion": "k8s.nginx.org/v1", "kind": "VirtualServer", "metadata": meta("acme", "cafe"),
            "spec": {"host": host}, "status": {"externalEndpoints": endpoints}})
    }

    #[test]
    fn host_with_ip_and_hostname_endpoints() {
        let out = compile_zone(
            zone(json!({})),
            &[vs(
                "Cafe.acme.example.com",
                json!([{"ip": "192.0.2.8", "ports": "[80,443]"}, {"ip": "2001:db8::8"}]),
            )],
        );
        assert_eq!(
            rrset(&out, "cafe.acme.example.com", RecordType::A),
            vec!["192.0.2.8"]
        );
        assert_eq!(
            rrset(&out, "cafe.acme.example.com", RecordType::AAAA),
            vec!["2001:db8::8"]
        );
        let out = compile_zone(
            zone(json!({})),
            &[vs(
                "cafe.acme.example.com",
                json!([{"hostname": "nlb.example.net"}]),
            )],
        );
        assert_eq!(
            rrset(&out, "cafe.acme.example.com", RecordType::CNAME),
            vec!["nlb.example.net."]
        );
    }

    #[test]
    fn invalid_host_reported_outside_silent() {
        let out = compile_zone(
            zone(json!({})),
            &[vs("ca fe.acme.example.com", json!([{"ip": "192.0.2.8"}]))],
        );
        assert!(published(&out).is_empty());
        assert!(has_problem(
            &out,
            "VirtualServer acme/cafe: spec.host: invalid hostname"
        ));
        let out = compile_zone(
            zone(json!({})),
            &[vs("cafe.example.org", json!([{"ip": "192.0.2.8"}]))],
        );
        assert!(out.problems.is_empty());
        assert!(published(&out).is_empty());
    }

    #[test]
    fn target_annotation_replaces_endpoints() {
        let v = with_meta(
            vs("cafe.acme.example.com", json!([{"ip": "192.0.2.8"}])),
            "annotations",
            json!({"external-dns.alpha.kubernetes.io/target": "203.0.113.9"}),
        );
        let out = compile_zone(zone(json!({})), &[v]);
        assert_eq!(
            rrset(&out, "cafe.acme.example.com", RecordType::A),
            vec!["203.0.113.9"]
        );
    }
}
