//! The hostnames a source object asks for, whatever zone they fall in, and the offline lint
//! of `zonegate check` over them: a name in no DNSZone's domain (a typo such as
//! `www.exmaple.com` publishes nothing, silently, because names outside a zone are another
//! zone's business), and a non-ASCII name (DNS holds its `xn--` form, RFC 5891).

use super::annotations;
use crate::objects::SourceObject;

/// Every hostname `obj` asks to publish, with its field, in field order.
pub fn requested_hosts(obj: &SourceObject) -> Vec<(String, &str)> {
    let mut out: Vec<(String, &str)> = Vec::new();
    match obj {
        SourceObject::Ingress(ing) => {
            for (i, rule) in ing.spec.rules.iter().enumerate() {
                if let Some(h) = rule.host.as_deref() {
                    out.push((format!("spec.rules[{i}].host"), h));
                }
            }
            for (i, tls) in ing.spec.tls.iter().enumerate() {
                for (j, h) in tls.hosts.iter().enumerate() {
                    out.push((format!("spec.tls[{i}].hosts[{j}]"), h));
                }
            }
        }
        SourceObject::Route(_, r) => {
            for (i, h) in r.spec.hostnames.iter().enumerate() {
                out.push((format!("spec.hostnames[{i}]"), h));
            }
        }
        SourceObject::DnsEndpoint(ep) => {
            for (i, e) in ep.spec.endpoints.iter().enumerate() {
                out.push((format!("spec.endpoints[{i}].dnsName"), &e.dns_name));
            }
        }
        SourceObject::VirtualServer(vs) => out.push(("spec.host".into(), &vs.spec.host)),
        SourceObject::Service(_) | SourceObject::Gateway(_) => {}
    }
    if !matches!(obj, SourceObject::DnsEndpoint(_) | SourceObject::Gateway(_)) {
        out.extend(annotations::hostnames(obj.meta()));
    }
    out.retain(|(_, h)| !h.trim().is_empty());
    out
}

/// Warnings about the hostnames of `obj` given the zones' domains (lowercase, no trailing
/// dot): `(field, message)`.
pub fn lint_hosts(obj: &SourceObject, domains: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (field, host) in requested_hosts(obj) {
        if !host.is_ascii() {
            let bare = host.strip_prefix("*.").unwrap_or(host);
            let hint = match idna::domain_to_ascii(bare.trim_end_matches('.')) {
                Ok(a) => {
                    let wild = if bare.len() != host.len() { "*." } else { "" };
                    format!("; write its ASCII (punycode) form {wild}{a}")
                }
                Err(_) => "; it has no valid ASCII (punycode) form".to_string(),
            };
            out.push((
                field.clone(),
                format!("{host:?} is not ASCII: DNS names hold the xn-- form{hint}"),
            ));
            continue;
        }
        if !domains.iter().any(|d| crate::domain::within(host, d)) {
            let near = domains
                .iter()
                .filter(|d| close(host, d))
                .map(String::as_str)
                .collect::<Vec<_>>();
            let hint = if near.is_empty() {
                String::new()
            } else {
                format!(" (did you mean a name in {}?)", near.join(" or "))
            };
            out.push((
                field,
                format!("{host:?} is in no DNSZone's domain, so nothing is published for it{hint}"),
            ));
        }
    }
    out
}

/// Whether the last labels of `host` are within two edits of `domain` (a typo).
fn close(host: &str, domain: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let labels = domain.split('.').count();
    let parts: Vec<&str> = host.split('.').collect();
    if parts.len() < labels {
        return false;
    }
    let tail = parts[parts.len() - labels..].join(".");
    edit_distance(&tail, domain) <= 2
}

fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let sub = prev[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::testing::*;
    use serde_json::json;

    fn lint(obj: serde_json::Value) -> Vec<String> {
        let o = crate::objects::SourceObject::from_value(
            obj["apiVersion"].as_str().unwrap(),
            obj["kind"].as_str().unwrap(),
            obj.clone(),
        )
        .unwrap()
        .unwrap();
        lint_hosts(
            &o,
            &["acme.example.com".to_string(), "other.org".to_string()],
        )
        .into_iter()
        .map(|(f, m)| format!("{f}: {m}"))
        .collect()
    }

    #[test]
    fn typo_outside_every_zone_is_named_with_the_near_zone() {
        let w = lint(ingress(
            "web",
            &[
                "www.acme.exmaple.com",
                "ok.acme.example.com",
                "x.example.net",
            ],
            &["192.0.2.1"],
        ));
        assert_eq!(
            w,
            vec![
                "spec.rules[0].host: \"www.acme.exmaple.com\" is in no DNSZone's domain, so nothing is published for it (did you mean a name in acme.example.com?)",
                "spec.rules[2].host: \"x.example.net\" is in no DNSZone's domain, so nothing is published for it",
            ]
        );
    }

    #[test]
    fn non_ascii_name_gets_its_xn_form() {
        let w = lint(ingress(
            "web",
            &["bücher.acme.example.com", "*.café.other.org"],
            &[],
        ));
        assert_eq!(
            w,
            vec![
                "spec.rules[0].host: \"bücher.acme.example.com\" is not ASCII: DNS names hold the xn-- form; write its ASCII (punycode) form xn--bcher-kva.acme.example.com",
                "spec.rules[1].host: \"*.café.other.org\" is not ASCII: DNS names hold the xn-- form; write its ASCII (punycode) form *.xn--caf-dma.other.org",
            ]
        );
    }

    #[test]
    fn every_kind_gives_its_hostname_fields() {
        let ep = json!({"apiVersion": "externaldns.k8s.io/v1alpha1", "kind": "DNSEndpoint",
            "metadata": meta("acme", "ep"),
            "spec": {"endpoints": [{"dnsName": "a.nowhere.test", "recordType": "A", "targets": ["192.0.2.1"]}]}});
        assert_eq!(
            lint(ep),
            vec![
                "spec.endpoints[0].dnsName: \"a.nowhere.test\" is in no DNSZone's domain, so nothing is published for it"
            ]
        );
        let svc = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "s", "namespace": "acme",
                "annotations": {"external-dns.alpha.kubernetes.io/hostname": "api.acme.example.com,api.acme.exampel.com"}},
            "spec": {"type": "LoadBalancer"}});
        let w = lint(svc);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("metadata.annotations[external-dns.alpha.kubernetes.io/hostname]: \"api.acme.exampel.com\""), "{w:?}");
    }
}
