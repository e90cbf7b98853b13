//! Offline validation of a DNSZone: what the apiserver enforces through the CRD schema and CEL
//! rules, for manifests that never meet an apiserver (`serve --manifests`, `check`). Messages
//! name the field, as the apiserver's do.

use super::{DNSZone, RecordKind};
use crate::domain::is_at_or_below;
use std::net::IpAddr;

fn is_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

/// `spec.domain` rules: lowercase, at least two labels, no trailing dot, at most 253 chars.
pub fn is_valid_domain(d: &str) -> bool {
    d.len() <= 253 && d.split('.').count() >= 2 && d.split('.').all(is_label)
}

/// Every violation, as `field: message`. Empty when valid.
pub fn validate_zone(z: &DNSZone) -> Vec<String> {
    let s = &z.spec;
    let mut errs = Vec::new();
    if !is_valid_domain(&s.domain) {
        errs.push(format!(
            "spec.domain: {:?} must be a lowercase fully qualified name of at least two labels, without trailing dot",
            s.domain
        ));
    }
    if !(1..=86400).contains(&s.ttl) {
        errs.push(format!("spec.ttl: {} must be in 1..86400", s.ttl));
    }
    let ns = &s.nameservers;
    if !(1..=4).contains(&ns.count) {
        errs.push(format!(
            "spec.nameservers.count: {} must be in 1..4",
            ns.count
        ));
    }
    if !(1..=10).contains(&ns.replicas) {
        errs.push(format!(
            "spec.nameservers.replicas: {} must be in 1..10",
            ns.replicas
        ));
    }
    if let Some(h) = &ns.hostnames {
        if h.len() != ns.count as usize {
            errs.push(
                "spec.nameservers.hostnames must list exactly spec.nameservers.count names".into(),
            );
        }
        for (i, n) in h.iter().enumerate() {
            if !is_valid_domain(&n.0) {
                errs.push(format!(
                    "spec.nameservers.hostnames[{i}]: {:?} is not a valid hostname",
                    n.0
                ));
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for k in &s.sources.kinds {
        if !seen.insert(*k) {
            errs.push(format!("spec.sources.kinds: {k} is listed twice"));
        }
    }
    for (i, r) in s.records.iter().enumerate() {
        if r.name.ends_with('.') {
            let fq = r.name.trim_end_matches('.');
            if !is_at_or_below(fq, &s.domain) {
                errs.push(format!(
                    "spec.records[{i}].name: {:?} is outside spec.domain {:?}",
                    r.name, s.domain
                ));
            }
        }
        if r.values.is_empty() {
            errs.push(format!(
                "spec.records[{i}].values: at least one value is required"
            ));
        }
        for (j, v) in r.values.iter().enumerate() {
            let ip = v.0.parse::<IpAddr>();
            let bad = match r.type_ {
                RecordKind::A => !matches!(ip, Ok(IpAddr::V4(_))),
                RecordKind::AAAA => !matches!(ip, Ok(IpAddr::V6(_))),
                _ => false,
            };
            if bad {
                errs.push(format!(
                    "spec.records[{i}].values[{j}]: {:?} is not an {:?} address",
                    v.0, r.type_
                ));
            }
        }
        if r.type_ == RecordKind::CNAME && r.values.len() != 1 {
            errs.push(format!(
                "spec.records[{i}].values: a CNAME record takes exactly one target"
            ));
        }
        if r.type_ == RecordKind::CNAME && r.name == "@" {
            errs.push(format!(
                "spec.records[{i}].name: a CNAME cannot be at the zone apex"
            ));
        }
    }
    for (i, d) in s.delegations.iter().enumerate() {
        let has_ns = !d.nameservers.is_empty();
        if has_ns == d.zone_ref.is_some() {
            errs.push(format!(
                "spec.delegations[{i}]: set exactly one of nameservers and zoneRef"
            ));
        }
        let n = d.name.trim_end_matches('.');
        if d.name == "@"
            || n == s.domain
            || (d.name.ends_with('.') && !is_at_or_below(n, &s.domain))
        {
            errs.push(format!(
                "spec.delegations[{i}].name: {:?} must name a child strictly below spec.domain",
                d.name
            ));
        }
    }
    if let Some(t) = &s.transfer {
        use crate::zone::transfer::{parse_network, parse_notify_target};
        if t.allow_from.len() > 64 {
            errs.push("spec.transfer.allowFrom: at most 64 entries".into());
        }
        for (i, n) in t.allow_from.iter().enumerate() {
            if let Err(e) = parse_network(&n.0) {
                errs.push(format!("spec.transfer.allowFrom[{i}]: {e}"));
            }
        }
        if t.notify.len() > 16 {
            errs.push("spec.transfer.notify: at most 16 entries".into());
        }
        for (i, n) in t.notify.iter().enumerate() {
            if let Err(e) = parse_notify_target(&n.0) {
                errs.push(format!("spec.transfer.notify[{i}]: {e}"));
            }
        }
        if let Some(name) = &t.tsig_secret_name {
            let ok = name.len() <= 253
                && name.split('.').all(|l| {
                    !l.is_empty()
                        && l.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                });
            if !ok {
                errs.push(format!(
                    "spec.transfer.tsigSecretName: {name:?} is not a valid Secret name"
                ));
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn zone(spec: serde_json::Value) -> DNSZone {
        serde_json::from_value(json!({"apiVersion":"zonegate.dev/v1alpha1","kind":"DNSZone","metadata":{"name":"z","namespace":"acme"},"spec":spec})).unwrap()
    }

    #[test]
    fn minimal_zone_is_valid() {
        assert!(validate_zone(&zone(json!({"domain":"acme.example.com"}))).is_empty());
    }

    #[test]
    fn domain_rules() {
        for bad in [
            "Acme.example.com",
            "acme",
            "acme.example.com.",
            "a_b.example.com",
            "-a.example.com",
            "",
        ] {
            let e = validate_zone(&zone(json!({ "domain": bad })));
            assert!(
                e.iter().any(|m| m.starts_with("spec.domain")),
                "{bad}: {e:?}"
            );
        }
    }

    #[test]
    fn ranges_and_counts() {
        let e = validate_zone(&zone(
            json!({"domain":"a.example","ttl":0,"nameservers":{"count":5}}),
        ));
        assert!(e.iter().any(|m| m.starts_with("spec.ttl")), "{e:?}");
        assert!(
            e.iter().any(|m| m.starts_with("spec.nameservers.count")),
            "{e:?}"
        );
        let e = validate_zone(&zone(
            json!({"domain":"a.example","nameservers":{"count":2,"hostnames":["ns.a.example"]}}),
        ));
        assert!(e.iter().any(|m| m.contains("hostnames")), "{e:?}");
    }

    #[test]
    fn record_rules() {
        let e = validate_zone(&zone(json!({"domain":"a.example","records":[
            {"name":"www.other.org.","type":"A","values":["192.0.2.1"]},
            {"name":"v6","type":"A","values":["2001:db8::1"]},
            {"name":"c","type":"CNAME","values":["x.example","y.example"]},
            {"name":"@","type":"CNAME","values":["x.example"]},
            {"name":"ok.a.example.","type":"AAAA","values":["2001:db8::1"]}
        ]})));
        assert!(
            e.iter().any(|m| m.starts_with("spec.records[0].name")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|m| m.starts_with("spec.records[1].values[0]")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|m| m.starts_with("spec.records[2].values")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|m| m.starts_with("spec.records[3].name")),
            "{e:?}"
        );
        assert!(!e.iter().any(|m| m.starts_with("spec.records[4]")), "{e:?}");
    }

    #[test]
    fn delegation_and_kinds_rules() {
        let e = validate_zone(&zone(json!({"domain":"a.example",
            "sources":{"kinds":["Ingress","Ingress"]},
            "delegations":[{"name":"team","nameservers":[{"hostname":"ns.team.a.example"}],"zoneRef":{"name":"x"}},
                           {"name":"@","zoneRef":{"name":"x"}}]})));
        assert!(
            e.iter().any(|m| m.starts_with("spec.sources.kinds")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|m| m.starts_with("spec.delegations[0]:")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|m| m.starts_with("spec.delegations[1].name")),
            "{e:?}"
        );
    }

    #[test]
    fn transfer_rules() {
        let ok = validate_zone(&zone(json!({"domain":"a.example","transfer":{
            "allowFrom":["192.0.2.0/24","2001:db8::/64","127.0.0.1"],
            "notify":["192.0.2.10","198.51.100.7:5300","[2001:db8::7]:5300"],
            "tsigSecretName":"xfr-key"}})));
        assert!(ok.is_empty(), "{ok:?}");
        let e = validate_zone(&zone(json!({"domain":"a.example","transfer":{
            "allowFrom":["192.0.2.0/24","192.0.2.0/40","ns1.example"],
            "notify":["192.0.2.10:0","x"],
            "tsigSecretName":"Bad_Name"}})));
        for field in [
            "spec.transfer.allowFrom[1]",
            "spec.transfer.allowFrom[2]",
            "spec.transfer.notify[0]",
            "spec.transfer.notify[1]",
            "spec.transfer.tsigSecretName",
        ] {
            assert!(e.iter().any(|m| m.starts_with(field)), "{field}: {e:?}");
        }
        assert!(
            !e.iter()
                .any(|m| m.starts_with("spec.transfer.allowFrom[0]"))
        );
    }
}
