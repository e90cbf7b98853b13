//! DNSEndpoint (externaldns.k8s.io/v1alpha1): endpoints as written.

use super::names::{self, Syntax};
use super::{Class, Compiler, targets};
use crate::objects::{DnsEndpoint, SourceObject};
use hickory_proto::rr::RecordType;

/// Largest TTL a DNSEndpoint may set (RFC 2181 §8).
const MAX_RECORD_TTL: i64 = 2_147_483_647;

/// Every endpoint whose `dnsName` is in the zone (`_` allowed, wildcards allowed):
/// - `recordType` (case-insensitive) A, AAAA, CNAME, TXT, MX, SRV, CAA or NS; another type is
///   reported and the endpoint skipped;
/// - `recordTTL` > 0 is the TTL; 0 or absent means "not set" (as in ExternalDNS): the TTL
///   annotation or `spec.ttl`; a negative value is reported and the default used;
/// - targets are parsed per type (TXT: one text value each, see `targets::txt_rdata`; others
///   in presentation format, see `targets::parse_value`); an invalid target is reported at
///   `spec.endpoints[i].targets[j]` and skipped; a CNAME endpoint must have exactly one target;
/// - NS below the apex delegates (the merge step treats it as a cut and accepts A/AAAA glue from
///   DNSEndpoints and static records); NS at the apex is ignored and reported by the merge.
///
/// The target annotation does not apply: endpoints carry explicit, typed targets.
pub(crate) fn compile(c: &mut Compiler<'_>, obj: &SourceObject, ep: &DnsEndpoint) {
    let src = c.source(obj, Class::Endpoint);
    for (i, e) in ep.spec.endpoints.iter().enumerate() {
        let base = format!("spec.endpoints[{i}]");
        let name_field = format!("{base}.dnsName");
        let Some(name) = c.host(&src, &e.dns_name, &name_field, Syntax::Dns) else {
            continue;
        };
        c.flush(&src);
        let Some(rtype) = record_type(&e.record_type) else {
            c.report(
                &src.object,
                format!("{base}.recordType"),
                format!(
                    "unsupported record type {:?}; endpoint ignored",
                    e.record_type.to_ascii_uppercase()
                ),
            );
            continue;
        };
        let ttl = match e.record_ttl {
            Some(t) if t > 0 => t.min(MAX_RECORD_TTL) as u32,
            Some(t) if t < 0 => {
                c.report(
                    &src.object,
                    format!("{base}.recordTTL"),
                    format!("negative TTL {t}; using {}", src.ttl),
                );
                src.ttl
            }
            _ => src.ttl,
        };
        if e.targets.is_empty() {
            c.report(
                &src.object,
                format!("{base}.targets"),
                "no targets; endpoint ignored",
            );
            continue;
        }
        if rtype == RecordType::CNAME && e.targets.len() != 1 {
            c.report(
                &src.object,
                format!("{base}.targets"),
                format!(
                    "a CNAME takes exactly one target, not {}; endpoint ignored",
                    e.targets.len()
                ),
            );
            continue;
        }
        for (j, t) in e.targets.iter().enumerate() {
            let field = format!("{base}.targets[{j}]");
            let rdata = if rtype == RecordType::TXT {
                Ok(targets::txt_rdata(t))
            } else {
                targets::parse_value(rtype, t)
            };
            match rdata {
                Ok(rdata) => c.add(
                    src.origin,
                    src.class,
                    name.clone(),
                    ttl,
                    rdata,
                    name_field.clone(),
                ),
                Err(e) => c.report(&src.object, field, format!("{e}; target ignored")),
            }
        }
    }
}

/// A DNSEndpoint `recordType` (case-insensitive) the compiler publishes, if it is one.
pub fn record_type(raw: &str) -> Option<RecordType> {
    Some(match raw.to_ascii_uppercase().as_str() {
        "A" => RecordType::A,
        "AAAA" => RecordType::AAAA,
        "CNAME" => RecordType::CNAME,
        "TXT" => RecordType::TXT,
        "MX" => RecordType::MX,
        "SRV" => RecordType::SRV,
        "CAA" => RecordType::CAA,
        "NS" => RecordType::NS,
        _ => return None,
    })
}

/// Why one endpoint would not be published exactly as written in the zone of `domain`
/// (lowercase, no trailing dot), if it would not: `compile`'s per-endpoint rules, all or
/// nothing (the compiler keeps an endpoint's valid targets; a writer such as the ExternalDNS
/// webhook provider refuses the endpoint instead, so what it stores is what is served). A CNAME
/// to its own name passes: it is stored as written and the merge drops it as a loop.
pub fn refusal(
    domain: &str,
    dns_name: &str,
    rtype: &str,
    ttl: Option<i64>,
    targets: &[String],
) -> Option<String> {
    let apex = dns_name.strip_suffix('.').unwrap_or(dns_name);
    if !crate::domain::within(dns_name, domain) {
        return Some(format!("{dns_name:?} is outside the zone {domain}"));
    }
    if let Err(e) = names::parse_host(dns_name, Syntax::Dns, true) {
        return Some(e);
    }
    let Some(rt) = record_type(rtype) else {
        return Some(format!(
            "record type {rtype:?} is not supported (A, AAAA, CNAME, TXT, MX, SRV, CAA and NS are)"
        ));
    };
    if let Some(t) = ttl.filter(|t| *t < 0) {
        return Some(format!("negative TTL {t}"));
    }
    let at_apex = apex.eq_ignore_ascii_case(domain);
    if at_apex && rt == RecordType::CNAME {
        return Some("a CNAME cannot be at the zone apex".into());
    }
    if at_apex && rt == RecordType::NS {
        return Some("NS records at the zone apex come from the DNSZone's spec.nameservers".into());
    }
    if targets.is_empty() {
        return Some("no targets".into());
    }
    if rt == RecordType::CNAME && targets.len() != 1 {
        return Some(format!(
            "a CNAME takes exactly one target, not {}",
            targets.len()
        ));
    }
    if rt != RecordType::TXT {
        for t in targets {
            if let Err(e) = targets::parse_value(rt, t) {
                return Some(e);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::compile::testing::*;
    use hickory_proto::rr::{RData, RecordType};
    use serde_json::json;

    #[test]
    fn refusal_matches_what_compile_would_drop() {
        use super::refusal;
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let d = "acme.example.com";
        assert_eq!(
            refusal(d, "www.acme.example.com", "A", Some(60), &t(&["192.0.2.1"])),
            None
        );
        assert_eq!(
            refusal(d, "*.acme.example.com.", "aaaa", None, &t(&["2001:db8::1"])),
            None
        );
        assert_eq!(
            refusal(
                d,
                "a-www.acme.example.com",
                "TXT",
                None,
                &t(&["\"heritage=external-dns\""])
            ),
            None
        );
        assert_eq!(
            refusal(
                d,
                "foo.acme.example.com",
                "CNAME",
                None,
                &t(&["foo.acme.example.com"])
            ),
            None
        );
        assert_eq!(
            refusal(
                d,
                "sub.acme.example.com",
                "NS",
                None,
                &t(&["ns.example.net"])
            ),
            None
        );
        let r = |name: &str, ty: &str, ttl: Option<i64>, v: &[&str]| {
            refusal(d, name, ty, ttl, &t(v)).unwrap()
        };
        assert_eq!(
            r("www.other.org", "A", None, &["192.0.2.1"]),
            "\"www.other.org\" is outside the zone acme.example.com"
        );
        assert_eq!(
            r("notacme.example.com", "A", None, &["192.0.2.1"]),
            "\"notacme.example.com\" is outside the zone acme.example.com"
        );
        assert!(
            r("bad name.acme.example.com", "A", None, &["192.0.2.1"])
                .starts_with("invalid hostname")
        );
        assert!(
            r("x.acme.example.com", "PTR", None, &["a.example.net"])
                .starts_with("record type \"PTR\" is not supported")
        );
        assert_eq!(
            r("x.acme.example.com", "A", Some(-5), &["192.0.2.1"]),
            "negative TTL -5"
        );
        assert_eq!(
            r("acme.example.com", "CNAME", None, &["lb.example.net"]),
            "a CNAME cannot be at the zone apex"
        );
        assert!(
            r("acme.example.com", "NS", None, &["ns.example.net"])
                .starts_with("NS records at the zone apex")
        );
        assert_eq!(r("x.acme.example.com", "A", None, &[]), "no targets");
        assert_eq!(
            r(
                "x.acme.example.com",
                "CNAME",
                None,
                &["a.example.net", "b.example.net"]
            ),
            "a CNAME takes exactly one target, not 2"
        );
        assert!(
            r(
                "x.acme.example.com",
                "A",
                None,
                &["192.0.2.1", "2001:db8::1"]
            )
            .starts_with("invalid A value \"2001:db8::1\"")
        );
        assert!(
            r("x.acme.example.com", "MX", None, &["mail.example.net"])
                .starts_with("invalid MX value")
        );
    }

    #[test]
    fn a_and_aaaa_dual_stack() {
        let out = compile_zone(
            zone(json!({})),
            &[dns_endpoint(
                "ep1",
                json!([
                    {"dnsName": "dual.acme.example.com", "recordType": "A", "targets": ["192.0.2.200"]},
                    {"dnsName": "dual.acme.example.com", "recordType": "AAAA", "targets": ["2001:db8::1"]}
                ]),
            )],
        );
        assert_eq!(
            rrset(&out, "dual.acme.example.com", RecordType::A),
            vec!["192.0.2.200"]
        );
        assert_eq!(
            rrset(&out, "dual.acme.example.com", RecordType::AAAA),
            vec!["2001:db8::1"]
        );
        assert!(out.problems.is_empty());
    }

    #[test]
    fn record_ttl_and_default() {
        let out = compile_zone(
            zone(json!({})),
            &[dns_endpoint(
                "ep",
                json!([
                    {"dnsName": "a.acme.example.com", "recordType": "A", "recordTTL": 300, "targets": ["192.0.2.1"]},
                    {"dnsName": "b.acme.example.com", "recordType": "A", "recordTTL": 0, "targets": ["192.0.2.1"]},
                    {"dnsName": "c.acme.example.com", "recordType": "A", "recordTTL": -1, "targets": ["192.0.2.1"]}
                ]),
            )],
        );
        assert_eq!(ttl_of(&out, "a.acme.example.com", RecordType::A), Some(300));
        assert_eq!(ttl_of(&out, "b.acme.example.com", RecordType::A), Some(60));
        assert_eq!(ttl_of(&out, "c.acme.example.com", RecordType::A), Some(60));
        assert_eq!(
            problems(&out),
            vec!["DNSEndpoint acme/ep: spec.endpoints[2].recordTTL: negative TTL -1; using 60"]
        );
    }

    #[test]
    fn wrong_family_reported_per_target_rest_counts() {
        let out = compile_zone(
            zone(json!({})),
            &[dns_endpoint(
                "ep",
                json!([
                    {"dnsName": "a.acme.example.com", "recordType": "A", "targets": ["192.0.2.1"]},
                    {"dnsName": "b.acme.example.com", "recordType": "AAAA", "targets": ["2001:db8::1"]},
                    {"dnsName": "c.acme.example.com", "recordType": "A", "targets": ["192.0.2.3", "2001:db8::3"]}
                ]),
            )],
        );
        assert_eq!(
            rrset(&out, "a.acme.example.com", RecordType::A),
            vec!["192.0.2.1"]
        );
        assert_eq!(
            rrset(&out, "c.acme.example.com", RecordType::A),
            vec!["192.0.2.3"]
        );
        let p = problems(&out);
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with(
                "DNSEndpoint acme/ep: spec.endpoints[2].targets[1]: invalid A value \"2001:db8::3\""
            ),
            "{p:?}"
        );
    }

    #[test]
    fn cname_one_target_trailing_dot_optional() {
        let out = compile_zone(
            zone(json!({})),
            &[dns_endpoint(
                "ep",
                json!([
                    {"dnsName": "a.acme.example.com", "recordType": "CNAME", "targets": ["lb.example.net."]},
                    {"dnsName": "b.acme.example.com", "recordType": "CNAME", "targets": ["lb.example.net"]},
                    {"dnsName": "c.acme.example.com", "recordType": "CNAME", "targets": ["x.example.net", "y.example.net"]}
                ]),
            )],
        );
        assert_eq!(
            rrset(&out, "a.acme.example.com", RecordType::CNAME),
            vec!["lb.example.net."]
        );
        assert_eq!(
            rrset(&out, "b.acme.example.com", RecordType::CNAME),
            vec!["lb.example.net."]
        );
        assert!(absent(&out, "c.acme.example.com"));
        assert_eq!(
            problems(&out),
            vec![
                "DNSEndpoint acme/ep: spec.endpoints[2].targets: a CNAME takes exactly one target, not 2; endpoint ignored"
            ]
        );
    }

    #[test]
    fn cname_to_its_own_name_is_dropped_not_served_as_a_loop() {
        let out = compile_zone(
            zone(json!({})),
            &[dns_endpoint(
                "ep",
                json!([
                    {"dnsName": "foo.acme.example.com", "recordType": "CNAME", "targets": ["foo.acme.example.com"]},
                    {"dnsName": "bar.acme.example.com", "recordType": "CNAME", "targets": ["foo.acme.example.com"]}
                ]),
            )],
        );
        assert!(absent(&out, "foo.acme.example.com"));
        assert_eq!(
            rrset(&out, "bar.acme.example.com", RecordType::CNAME),
            vec!["foo.acme.example.com."]
        );
        assert_eq!(
            problems(&out),
            vec![
                "DNSEndpoint acme/ep: spec.endpoints[0].dnsName: a CNAME to its own name would loop; dropped"
            ]
        );
    }

    #[test]
    fn txt_one_value_per_target() {
        let out = compile_zone(
            zone(json!({})),
            &[dns_endpoint(
                "ep",
                json!([
                    {"dnsName": "_acme-challenge.acme.example.com", "recordType": "TXT", "targets": ["\"token with spaces\"", "plain"]}
                ]),
            )],
        );
        let set = out
            .data
            .rrset(&n("_acme-challenge.acme.example.com"), RecordType::TXT)
            .unwrap();
        let texts: Vec<Vec<Vec<u8>>> = set
            .rdata
            .iter()
            .map(|r| match r {
                RData::TXT(t) => t.txt_data.iter().map(|s| s.to_vec()).collect(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(
            texts,
            vec![vec![b"token with spaces".to_vec()], vec![b"plain".to_vec()]]
        );
    }

    #[test]
    fn mx_srv_caa() {
        let out = compile_zone(
            zone(json!({})),
            &[dns_endpoint(
                "ep",
                json!([
                    {"dnsName": "acme.example.com", "recordType": "MX", "targets": ["10 mail.acme.example.com", "bad"]},
                    {"dnsName": "_xmpp._tcp.acme.example.com", "recordType": "SRV", "targets": ["5 0 5222 xmpp.acme.example.com."]},
                    {"dnsName": "acme.example.com", "recordType": "CAA", "targets": ["0 issue \"letsencrypt.org\""]}
                ]),
            )],
        );
        assert_eq!(
            rrset(&out, "acme.example.com", RecordType::MX),
            vec!["10 mail.acme.example.com."]
        );
        assert_eq!(
            rrset(&out, "_xmpp._tcp.acme.example.com", RecordType::SRV),
            vec!["5 0 5222 xmpp.acme.example.com."]
        );
        assert_eq!(
            rrset(&out, "acme.example.com", RecordType::CAA),
            vec!["0 issue \"letsencrypt.org\""]
        );
        assert!(has_problem(
            &out,
            "spec.endpoints[0].targets[1]: invalid MX value \"bad\""
        ));
    }

    #[test]
    fn unsupported_type_and_empty_targets() {
        let out = compile_zone(
            zone(json!({})),
            &[dns_endpoint(
                "ep",
                json!([
                    {"dnsName": "a.acme.example.com", "recordType": "PTR", "targets": ["x.example.net"]},
                    {"dnsName": "b.acme.example.com", "recordType": "A", "targets": []},
                    {"dnsName": "c.acme.example.com", "recordType": "a", "targets": ["192.0.2.3"]}
                ]),
            )],
        );
        assert_eq!(
            rrset(&out, "c.acme.example.com", RecordType::A),
            vec!["192.0.2.3"]
        );
        assert_eq!(
            problems(&out),
            vec![
                "DNSEndpoint acme/ep: spec.endpoints[0].recordType: unsupported record type \"PTR\"; endpoint ignored",
                "DNSEndpoint acme/ep: spec.endpoints[1].targets: no targets; endpoint ignored",
            ]
        );
    }

    #[test]
    fn names_outside_domain_silently_ignored() {
        let out = compile_zone(
            zone(json!({})),
            &[dns_endpoint(
                "ep",
                json!([{"dnsName": "www.other.org", "recordType": "FOO", "targets": ["x"]}]),
            )],
        );
        assert!(published(&out).is_empty());
        assert!(out.problems.is_empty());
    }

    #[test]
    fn ns_below_apex_delegates_with_endpoint_glue() {
        let out = compile_zone(
            zone(json!({})),
            &[dns_endpoint(
                "ep",
                json!([
                    {"dnsName": "sub.acme.example.com", "recordType": "NS", "targets": ["ns1.sub.acme.example.com", "ns.provider.net"]},
                    {"dnsName": "ns1.sub.acme.example.com", "recordType": "A", "targets": ["192.0.2.53"]},
                    {"dnsName": "www.sub.acme.example.com", "recordType": "A", "targets": ["192.0.2.80"]}
                ]),
            )],
        );
        assert_eq!(
            rrset(&out, "sub.acme.example.com", RecordType::NS),
            vec!["ns1.sub.acme.example.com.", "ns.provider.net."]
        );
        assert_eq!(
            rrset(&out, "ns1.sub.acme.example.com", RecordType::A),
            vec!["192.0.2.53"]
        );
        assert!(absent(&out, "www.sub.acme.example.com"));
        assert_eq!(
            problems(&out),
            vec![
                "DNSEndpoint acme/ep: spec.endpoints[2].dnsName: occluded by the delegation of sub.acme.example.com; dropped"
            ]
        );
    }

    #[test]
    fn ns_at_apex_ignored_and_reported() {
        let out = compile_zone(
            zone(json!({})),
            &[dns_endpoint(
                "ep",
                json!([{"dnsName": "acme.example.com", "recordType": "NS", "targets": ["ns.evil.net"]}]),
            )],
        );
        assert_eq!(
            rrset(&out, "acme.example.com", RecordType::NS),
            vec!["ns1.acme.example.com.", "ns2.acme.example.com."]
        );
        assert!(has_problem(
            &out,
            "DNSEndpoint acme/ep: spec.endpoints[0].dnsName: NS records at the zone apex come from spec.nameservers; ignored"
        ));
    }

    #[test]
    fn ttl_annotation_is_default_for_endpoints() {
        let v = with_meta(
            dns_endpoint(
                "ep",
                json!([
                    {"dnsName": "a.acme.example.com", "recordType": "A", "targets": ["192.0.2.1"]},
                    {"dnsName": "b.acme.example.com", "recordType": "A", "recordTTL": 30, "targets": ["192.0.2.1"]}
                ]),
            ),
            "annotations",
            json!({"external-dns.alpha.kubernetes.io/ttl": "5m", "external-dns.alpha.kubernetes.io/target": "192.0.2.99"}),
        );
        let out = compile_zone(zone(json!({})), &[v]);
        assert_eq!(ttl_of(&out, "a.acme.example.com", RecordType::A), Some(300));
        assert_eq!(ttl_of(&out, "b.acme.example.com", RecordType::A), Some(30));
        assert_eq!(
            rrset(&out, "a.acme.example.com", RecordType::A),
            vec!["192.0.2.1"]
        );
    }
}
