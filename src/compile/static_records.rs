//! `spec.records`: static records, served as written.

use super::{Class, Compiler, ZONE_ORIGIN, names, targets};
use crate::api::RecordKind;
use hickory_proto::rr::{Name, RData, RecordType};
use std::collections::BTreeMap;

pub(crate) fn record_type(kind: RecordKind) -> RecordType {
    match kind {
        RecordKind::A => RecordType::A,
        RecordKind::AAAA => RecordType::AAAA,
        RecordKind::CNAME => RecordType::CNAME,
        RecordKind::TXT => RecordType::TXT,
        RecordKind::MX => RecordType::MX,
        RecordKind::SRV => RecordType::SRV,
        RecordKind::CAA => RecordType::CAA,
        RecordKind::NS => RecordType::NS,
    }
}

/// Static records: the owner name is `@`, relative or fully qualified (see `names::zone_name`);
/// wildcards are allowed as the first label. Each value is parsed in presentation format (see
/// `targets::parse_value`: names inside values are absolute with or without the trailing dot);
/// a bad value is reported and only that value dropped (a TXT value that would lose text after
/// an unquoted `;`, or has no string at all, is bad; one of several unquoted strings is served
/// with a problem showing the quoted form, see `txt`); a bad name drops the record. The TTL
/// defaults to `spec.ttl`. NS records at `@` join the apex NS set; NS records below the apex are
/// delegation cuts (the merge step handles both). Static records are the oldest contributor in
/// CNAME conflicts.
pub(crate) fn compile(c: &mut Compiler<'_>) {
    let zone = c.zone;
    // CNAMEs of the static records, owner -> (target, record index), for the loop check
    let mut cnames: BTreeMap<Name, (Name, usize)> = BTreeMap::new();
    for (i, rec) in zone.spec.records.iter().enumerate() {
        let name = match names::zone_name(&rec.name, &c.domain, true) {
            Ok(n) => n,
            Err(e) => {
                c.report_zone(
                    format!("spec.records[{i}].name"),
                    format!("{e}; record ignored"),
                );
                continue;
            }
        };
        let rtype = record_type(rec.type_);
        let ttl = rec.ttl.unwrap_or(c.ttl);
        for (j, value) in rec.values.iter().enumerate() {
            let field = format!("spec.records[{i}].values[{j}]");
            match targets::parse_value_warn(rtype, &value.0) {
                Ok((rdata, warning)) => {
                    if let Some(w) = warning {
                        c.report_zone(field.clone(), w);
                    }
                    // (a CNAME to its own name is dropped by the merge rules, and reported there)
                    if let RData::CNAME(t) = &rdata
                        && t.0.to_lowercase() != name.to_lowercase()
                    {
                        cnames.entry(name.clone()).or_insert((t.0.clone(), i));
                    }
                    c.add(ZONE_ORIGIN, Class::Zone, name.clone(), ttl, rdata, field)
                }
                Err(e) => c.report_zone(field, format!("{e}; value ignored")),
            }
        }
    }
    for (i, names) in cname_loops(&cnames) {
        let chain: Vec<String> = names.iter().map(Name::to_ascii).collect();
        c.report_zone(
            format!("spec.records[{i}]"),
            format!(
                "CNAME loop: {}; a resolver gets no address (each CNAME of the loop is served once)",
                chain.join(" -> ")
            ),
        );
    }
}

/// What `spec.records` holds that loses text or changes meaning (TXT values refused or served
/// as several strings), as `field: message` lines with the quoted form to use: for places that
/// report on a DNSZone without compiling it (the operator's `Accepted` condition).
pub fn txt_value_issues(zone: &crate::api::DNSZone) -> Vec<String> {
    let mut out = Vec::new();
    for (i, rec) in zone.spec.records.iter().enumerate() {
        if rec.type_ != RecordKind::TXT {
            continue;
        }
        for (j, value) in rec.values.iter().enumerate() {
            let issue = match targets::parse_value_warn(RecordType::TXT, &value.0) {
                Ok((_, warning)) => warning,
                Err(e) => Some(format!("{e}; value ignored")),
            };
            if let Some(m) = issue {
                out.push(format!("spec.records[{i}].values[{j}]: {m}"));
            }
        }
    }
    out
}

/// The CNAME a name is answered with: its own, else a wildcard's at one of its ancestors.
fn cname_of<'m>(
    cnames: &'m BTreeMap<Name, (Name, usize)>,
    name: &Name,
) -> Option<&'m (Name, usize)> {
    if let Some(c) = cnames.get(name) {
        return Some(c);
    }
    let mut parent = name.base_name();
    while !parent.is_root() {
        if let Ok(wild) = parent.prepend_label("*")
            && let Some(c) = cnames.get(&wild)
        {
            return Some(c);
        }
        parent = parent.base_name();
    }
    None
}

/// Every CNAME loop once, as (index of the record that starts it, the names from that record
/// round to it again), in the order of the names that start them.
fn cname_loops(cnames: &BTreeMap<Name, (Name, usize)>) -> Vec<(usize, Vec<Name>)> {
    let mut out = Vec::new();
    let mut reported: std::collections::BTreeSet<std::collections::BTreeSet<Name>> =
        Default::default();
    for (start, (_, index)) in cnames {
        let mut path = vec![start.clone()];
        let mut at = start.clone();
        while let Some((next, _)) = cname_of(cnames, &at) {
            let next = next.to_lowercase();
            if let Some(pos) = path.iter().position(|p| *p == next) {
                // reported from the first of its members that starts a walk
                if pos == 0 && reported.insert(path.iter().cloned().collect()) {
                    path.push(next);
                    out.push((*index, path));
                }
                break;
            }
            if path.len() > cnames.len() {
                break;
            }
            path.push(next.clone());
            at = next;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::compile::testing::*;
    use hickory_proto::rr::RecordType;
    use serde_json::json;

    fn records(recs: serde_json::Value) -> crate::compile::Compiled {
        compile_zone(zone(json!({"records": recs})), &[])
    }

    #[test]
    fn apex_relative_and_absolute_names() {
        let out = records(json!([
            {"name": "@", "type": "A", "values": ["192.0.2.1"]},
            {"name": "www", "type": "A", "values": ["192.0.2.2"]},
            {"name": "Mail.acme.example.com.", "type": "A", "values": ["192.0.2.3"]},
            {"name": "ftp.acme.example.com", "type": "A", "values": ["192.0.2.4"]}
        ]));
        assert_eq!(
            rrset(&out, "acme.example.com", RecordType::A),
            vec!["192.0.2.1"]
        );
        assert_eq!(
            rrset(&out, "www.acme.example.com", RecordType::A),
            vec!["192.0.2.2"]
        );
        assert_eq!(
            rrset(&out, "mail.acme.example.com", RecordType::A),
            vec!["192.0.2.3"]
        );
        assert_eq!(
            rrset(&out, "ftp.acme.example.com", RecordType::A),
            vec!["192.0.2.4"]
        );
        assert!(out.problems.is_empty(), "{:?}", out.problems);
    }

    #[test]
    fn wildcard_static_record() {
        let out = records(json!([{"name": "*.apps", "type": "A", "values": ["192.0.2.9"]}]));
        assert_eq!(
            rrset(&out, "*.apps.acme.example.com", RecordType::A),
            vec!["192.0.2.9"]
        );
        assert!(out.data.records.keys().any(|k| k.is_wildcard()));
    }

    #[test]
    fn ttl_default_and_explicit() {
        let out = compile_zone(
            zone(json!({"ttl": 120, "records": [
                {"name": "a", "type": "A", "values": ["192.0.2.1"]},
                {"name": "b", "type": "A", "ttl": 3600, "values": ["192.0.2.1"]},
                {"name": "c", "type": "A", "ttl": 0, "values": ["192.0.2.1"]}
            ]})),
            &[],
        );
        assert_eq!(ttl_of(&out, "a.acme.example.com", RecordType::A), Some(120));
        assert_eq!(
            ttl_of(&out, "b.acme.example.com", RecordType::A),
            Some(3600)
        );
        assert_eq!(ttl_of(&out, "c.acme.example.com", RecordType::A), Some(0));
    }

    #[test]
    fn bad_value_drops_only_that_value() {
        let out = records(
            json!([{"name": "www", "type": "A", "values": ["192.0.2.1", "not-an-ip", "192.0.2.2"]}]),
        );
        assert_eq!(
            rrset(&out, "www.acme.example.com", RecordType::A),
            vec!["192.0.2.1", "192.0.2.2"]
        );
        assert_eq!(out.problems.len(), 1);
        assert!(problems(&out)[0].starts_with(
            "DNSZone acme/z: spec.records[0].values[1]: invalid A value \"not-an-ip\""
        ));
    }

    #[test]
    fn fqdn_outside_zone_is_reported() {
        let out =
            records(json!([{"name": "www.other.org.", "type": "A", "values": ["192.0.2.1"]}]));
        assert!(published(&out).is_empty());
        assert!(has_problem(
            &out,
            "spec.records[0].name: \"www.other.org.\" is not inside the zone acme.example.com; record ignored"
        ));
    }

    #[test]
    fn mx_srv_txt_caa_values() {
        let out = records(json!([
            {"name": "@", "type": "MX", "values": ["10 mx1.acme.example.com.", "20 MX2.acme.example.com"]},
            {"name": "_sip._tcp", "type": "SRV", "values": ["0 5 5060 sip.acme.example.com"]},
            {"name": "@", "type": "TXT", "values": ["\"v=spf1 -all\""]},
            {"name": "@", "type": "CAA", "values": ["0 issue \"letsencrypt.org\""]}
        ]));
        assert_eq!(
            rrset(&out, "acme.example.com", RecordType::MX),
            vec!["10 mx1.acme.example.com.", "20 mx2.acme.example.com."]
        );
        assert_eq!(
            rrset(&out, "_sip._tcp.acme.example.com", RecordType::SRV),
            vec!["0 5 5060 sip.acme.example.com."]
        );
        assert_eq!(rrset(&out, "acme.example.com", RecordType::TXT).len(), 1);
        assert_eq!(
            rrset(&out, "acme.example.com", RecordType::CAA),
            vec!["0 issue \"letsencrypt.org\""]
        );
        assert!(out.problems.is_empty(), "{:?}", out.problems);
    }

    /// An unquoted DKIM value once lost everything after its first `;`; an empty one was served
    /// with RDLENGTH 0, which no client parses.
    #[test]
    fn txt_values_that_lose_text_or_are_empty_are_refused_and_reported() {
        let out = records(json!([
            {"name": "k._domainkey", "type": "TXT", "values": [
                "v=DKIM1; k=rsa; p=MIGfMA0",
                "\"v=DKIM1; k=rsa; p=MIGfMA0\"",
                "",
                "   ",
                "; nothing",
                "\"\""
            ]},
            {"name": "spf", "type": "TXT", "values": ["v=spf1 -all"]}
        ]));
        let p = problems(&out);
        assert!(
            p[0].starts_with("DNSZone acme/z: spec.records[0].values[0]: invalid TXT value"),
            "{p:?}"
        );
        assert!(p[0].contains("'\"v=DKIM1; k=rsa; p=MIGfMA0\"'"), "{p:?}");
        assert!(p[0].ends_with("; value ignored"), "{p:?}");
        for (k, j) in [(1, 2), (2, 3), (3, 4)] {
            assert!(
                p[k].contains(&format!("spec.records[0].values[{j}]: invalid TXT value")),
                "{p:?}"
            );
        }
        assert!(p[4].contains("spec.records[1].values[0]: TXT value \"v=spf1 -all\": unquoted blanks make 2 separate strings"), "{p:?}");
        assert_eq!(p.len(), 5, "{p:?}");
        assert_eq!(
            rrset(&out, "k._domainkey.acme.example.com", RecordType::TXT),
            vec!["v=DKIM1; k=rsa; p=MIGfMA0", ""]
        );
        assert_eq!(
            rrset(&out, "spf.acme.example.com", RecordType::TXT),
            vec!["v=spf1-all"]
        );
    }

    #[test]
    fn cname_loops_are_reported_once_each() {
        let out = records(json!([
            {"name": "a", "type": "CNAME", "values": ["b.acme.example.com"]},
            {"name": "b", "type": "CNAME", "values": ["a.acme.example.com."]},
            {"name": "self", "type": "CNAME", "values": ["self.acme.example.com"]},
            {"name": "x", "type": "CNAME", "values": ["y.acme.example.com"]},
            {"name": "y", "type": "CNAME", "values": ["q.w.acme.example.com"]},
            {"name": "*.w", "type": "CNAME", "values": ["y.acme.example.com"]},
            {"name": "ok", "type": "CNAME", "values": ["a.acme.example.com"]},
            {"name": "out", "type": "CNAME", "values": ["www.example.net"]}
        ]));
        assert_eq!(
            problems(&out),
            vec![
                "DNSZone acme/z: spec.records[0]: CNAME loop: a.acme.example.com. -> b.acme.example.com. -> a.acme.example.com.; a resolver gets no address (each CNAME of the loop is served once)",
                "DNSZone acme/z: spec.records[4]: CNAME loop: y.acme.example.com. -> q.w.acme.example.com. -> y.acme.example.com.; a resolver gets no address (each CNAME of the loop is served once)",
                "DNSZone acme/z: spec.records[2].values[0]: a CNAME to its own name would loop; dropped",
            ]
        );
    }

    #[test]
    fn cname_target_without_dot_is_absolute() {
        let out =
            records(json!([{"name": "docs", "type": "CNAME", "values": ["pages.example.net"]}]));
        assert_eq!(
            rrset(&out, "docs.acme.example.com", RecordType::CNAME),
            vec!["pages.example.net."]
        );
    }

    #[test]
    fn ns_at_apex_joins_apex_set() {
        let out =
            records(json!([{"name": "@", "type": "NS", "values": ["ns.secondary.example.net"]}]));
        assert_eq!(
            rrset(&out, "acme.example.com", RecordType::NS),
            vec![
                "ns1.acme.example.com.",
                "ns2.acme.example.com.",
                "ns.secondary.example.net."
            ]
        );
        assert!(out.problems.is_empty(), "{:?}", out.problems);
    }

    #[test]
    fn cname_at_apex_is_dropped() {
        let out = records(json!([{"name": "@", "type": "CNAME", "values": ["other.example.net"]}]));
        assert!(rrset(&out, "acme.example.com", RecordType::CNAME).is_empty());
        assert!(has_problem(
            &out,
            "DNSZone acme/z: spec.records[0].values[0]: a CNAME cannot be at the zone apex"
        ));
    }

    #[test]
    fn equal_values_dedupe_with_min_ttl() {
        let out = records(json!([
            {"name": "x", "type": "A", "ttl": 300, "values": ["192.0.2.1"]},
            {"name": "X.acme.example.com.", "type": "A", "ttl": 30, "values": ["192.0.2.1"]}
        ]));
        assert_eq!(
            rrset(&out, "x.acme.example.com", RecordType::A),
            vec!["192.0.2.1"]
        );
        assert_eq!(ttl_of(&out, "x.acme.example.com", RecordType::A), Some(30));
    }
}
