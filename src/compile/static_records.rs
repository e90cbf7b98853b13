//! `spec.records`: static records, served as written.

use super::{Class, Compiler, ZONE_ORIGIN, names, targets};
use crate::api::RecordKind;
use hickory_proto::rr::RecordType;

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
/// a bad value is reported and only that value dropped; a bad name drops the record. The TTL
/// defaults to `spec.ttl`. NS records at `@` join the apex NS set; NS records below the apex are
/// delegation cuts (the merge step handles both). Static records are the oldest contributor in
/// CNAME conflicts.
pub(crate) fn compile(c: &mut Compiler<'_>) {
    let zone = c.zone;
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
            match targets::parse_value(rtype, &value.0) {
                Ok(rdata) => c.add(ZONE_ORIGIN, Class::Zone, name.clone(), ttl, rdata, field),
                Err(e) => c.report_zone(field, format!("{e}; value ignored")),
            }
        }
    }
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
