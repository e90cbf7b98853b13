//! `spec.delegations`: child zones served by other nameservers (NS at the cut, glue below it,
//! and the DS of a child that signs at the cut).

use super::names::{self, Syntax};
use super::{Class, Compiler, ZONE_ORIGIN, targets, zone_namespace};
use hickory_proto::rr::rdata::NS;
use hickory_proto::rr::{Name, RData};

/// A child nameserver: hostname and addresses, with the fields to report against.
struct ChildNs<'a> {
    hostname: &'a str,
    hostname_field: String,
    /// (address, field) pairs.
    addresses: Vec<(&'a str, String)>,
}

/// Every delegation gives an NS RRset at the cut (TTL `spec.ttl`) and glue A/AAAA for the
/// nameserver hostnames at or below the cut; its `ds` and a `zoneRef` child's
/// `status.dnssec.ds` give a DS RRset at the cut (a DS that does not parse is a problem and is
/// left out, the delegation stays). Addresses of nameservers outside the cut are not
/// needed and not served (the CRD documents this), so they are ignored without a problem.
///
/// With `zoneRef`, the nameservers come from the referenced DNSZone's `status.nameservers`
/// (hostname and addresses). A missing DNSZone, one without nameservers in its status yet, or
/// one whose `spec.domain` is not the cut's name is a problem and gives no cut: a delegation to
/// nameservers that do not serve the child would be lame.
pub(crate) fn compile(c: &mut Compiler<'_>) {
    let zone = c.zone;
    let store = c.store;
    for (i, d) in zone.spec.delegations.iter().enumerate() {
        let base = format!("spec.delegations[{i}]");
        let cut = match names::zone_name(&d.name, &c.domain, false) {
            Ok(n) if n == c.origin => {
                c.report_zone(
                    format!("{base}.name"),
                    "a delegation must be strictly below the zone apex; ignored",
                );
                continue;
            }
            Ok(n) => n,
            Err(e) => {
                c.report_zone(format!("{base}.name"), format!("{e}; delegation ignored"));
                continue;
            }
        };
        // (DS text, field): the delegation's own, then a zoneRef child's status.dnssec.ds
        let mut ds: Vec<(&str, String)> =
            d.ds.iter()
                .enumerate()
                .map(|(k, x)| (x.0.as_str(), format!("{base}.ds[{k}]")))
                .collect();
        let servers: Vec<ChildNs<'_>> = if let Some(r) = &d.zone_ref {
            let ns = r
                .namespace
                .as_ref()
                .map(|n| n.0.as_str())
                .unwrap_or(zone_namespace(zone));
            let field = format!("{base}.zoneRef");
            let Some(entry) = store.zones.get(&(ns.to_string(), r.name.clone())) else {
                c.report_zone(
                    field,
                    format!("DNSZone {ns}/{} not found; no delegation", r.name),
                );
                continue;
            };
            let child = &entry.zone;
            let child_domain = crate::domain::normalize(&child.spec.domain);
            if names::parse_host(&child_domain, Syntax::Host, false)
                .ok()
                .as_ref()
                != Some(&cut)
            {
                c.report_zone(
                    field,
                    format!(
                        "DNSZone {ns}/{} serves {child_domain}, not {}; no delegation",
                        r.name,
                        names::show(&cut)
                    ),
                );
                continue;
            }
            let statuses = child
                .status
                .as_ref()
                .map(|s| s.nameservers.as_slice())
                .unwrap_or_default();
            if statuses.is_empty() {
                c.report_zone(
                    field,
                    format!(
                        "DNSZone {ns}/{} has no nameservers in its status yet; no delegation",
                        r.name
                    ),
                );
                continue;
            }
            let child_ds = child
                .status
                .as_ref()
                .and_then(|s| s.dnssec.as_ref())
                .map(|d| d.ds.as_slice())
                .unwrap_or_default();
            ds.extend(child_ds.iter().enumerate().map(|(k, x)| {
                (
                    x.as_str(),
                    format!("{field} (DNSZone {ns}/{} status.dnssec.ds[{k}])", r.name),
                )
            }));
            statuses
                .iter()
                .enumerate()
                .map(|(k, st)| ChildNs {
                    hostname: &st.hostname,
                    hostname_field: format!("{field} (DNSZone {ns}/{} status.nameservers[{k}].hostname)", r.name),
                    addresses: st
                        .addresses
                        .iter()
                        .enumerate()
                        .map(|(m, a)| {
                            (a.as_str(), format!("{field} (DNSZone {ns}/{} status.nameservers[{k}].addresses[{m}])", r.name))
                        })
                        .collect(),
                })
                .collect()
        } else {
            d.nameservers
                .iter()
                .enumerate()
                .map(|(k, s)| ChildNs {
                    hostname: &s.hostname,
                    hostname_field: format!("{base}.nameservers[{k}].hostname"),
                    addresses: s
                        .addresses
                        .iter()
                        .enumerate()
                        .map(|(m, a)| {
                            (
                                a.0.as_str(),
                                format!("{base}.nameservers[{k}].addresses[{m}]"),
                            )
                        })
                        .collect(),
                })
                .collect()
        };
        if servers.is_empty() {
            c.report_zone(base, "no nameservers; no delegation");
            continue;
        }
        add_cut(c, &cut, &servers);
        for (text, field) in ds {
            match crate::dnssec::ds::parse(text) {
                Ok(w) => c.add(
                    ZONE_ORIGIN,
                    Class::Zone,
                    cut.clone(),
                    c.ttl,
                    crate::dnssec::ds::rdata(w),
                    field,
                ),
                Err(e) => c.report_zone(field, format!("{e}; DS ignored")),
            }
        }
    }
}

fn add_cut(c: &mut Compiler<'_>, cut: &Name, servers: &[ChildNs<'_>]) {
    for s in servers {
        let host = match names::parse_host(s.hostname, Syntax::Host, false) {
            Ok(h) => h,
            Err(e) => {
                c.report_zone(s.hostname_field.clone(), format!("{e}; nameserver ignored"));
                continue;
            }
        };
        c.add(
            ZONE_ORIGIN,
            Class::Zone,
            cut.clone(),
            c.ttl,
            RData::NS(NS(host.clone())),
            s.hostname_field.clone(),
        );
        if !cut.zone_of(&host) {
            continue;
        }
        for (addr, field) in &s.addresses {
            match targets::ip_rdata(addr) {
                Ok(rdata) => c.add(
                    ZONE_ORIGIN,
                    Class::Zone,
                    host.clone(),
                    c.ttl,
                    rdata,
                    field.clone(),
                ),
                Err(e) => c.report_zone(
                    field.clone(),
                    format!("{e}; it cannot be glue for {}", names::show(&host)),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::compile::testing::*;
    use crate::compile::{CompileOptions, compile};
    use hickory_proto::rr::RecordType;
    use serde_json::json;

    #[test]
    fn nameservers_give_ns_and_glue_below_the_cut_only() {
        let z = zone(json!({"delegations": [{"name": "team-a", "nameservers": [
            {"hostname": "ns1.team-a.acme.example.com", "addresses": ["192.0.2.10", "2001:db8::10"]},
            {"hostname": "ns.provider.net", "addresses": ["198.51.100.10"]}
        ]}]}));
        let out = compile_zone(z, &[]);
        assert_eq!(
            rrset(&out, "team-a.acme.example.com", RecordType::NS),
            vec!["ns1.team-a.acme.example.com.", "ns.provider.net."]
        );
        assert_eq!(
            rrset(&out, "ns1.team-a.acme.example.com", RecordType::A),
            vec!["192.0.2.10"]
        );
        assert_eq!(
            rrset(&out, "ns1.team-a.acme.example.com", RecordType::AAAA),
            vec!["2001:db8::10"]
        );
        assert!(absent(&out, "ns.provider.net"));
        assert!(out.problems.is_empty(), "{:?}", out.problems);
    }

    #[test]
    fn glue_at_the_cut_name_itself() {
        let z = zone(
            json!({"delegations": [{"name": "team-a.acme.example.com.", "nameservers": [
            {"hostname": "team-a.acme.example.com", "addresses": ["192.0.2.10"]}]}]}),
        );
        let out = compile_zone(z, &[]);
        assert_eq!(
            rrset(&out, "team-a.acme.example.com", RecordType::A),
            vec!["192.0.2.10"]
        );
        assert_eq!(
            rrset(&out, "team-a.acme.example.com", RecordType::NS),
            vec!["team-a.acme.example.com."]
        );
    }

    #[test]
    fn delegation_at_apex_rejected() {
        let z = zone(
            json!({"delegations": [{"name": "@", "nameservers": [{"hostname": "ns.provider.net"}]}]}),
        );
        let out = compile_zone(z, &[]);
        assert_eq!(rrset(&out, "acme.example.com", RecordType::NS).len(), 2);
        assert!(has_problem(
            &out,
            "spec.delegations[0].name: a delegation must be strictly below the zone apex"
        ));
    }

    #[test]
    fn non_ip_glue_address_reported() {
        let z = zone(json!({"delegations": [{"name": "b", "nameservers": [
            {"hostname": "ns1.b.acme.example.com", "addresses": ["lb.example.net"]}]}]}));
        let out = compile_zone(z, &[]);
        assert_eq!(
            rrset(&out, "b.acme.example.com", RecordType::NS),
            vec!["ns1.b.acme.example.com."]
        );
        assert!(has_problem(
            &out,
            "DNSZone acme/z: spec.delegations[0].nameservers[0].addresses[0]: \"lb.example.net\" is not an IP address; it cannot be glue for ns1.b.acme.example.com"
        ));
    }

    #[test]
    fn zone_ref_takes_child_status() {
        let child = with_status(
            zone_json(
                json!({"apiVersion": "zonegate.dev/v1alpha1", "kind": "DNSZone",
                "metadata": {"name": "child", "namespace": "team-a"}, "spec": {"domain": "team-a.acme.example.com"}}),
            ),
            json!({"nameservers": [
                {"hostname": "ns1.team-a.acme.example.com", "addresses": ["192.0.2.21"]},
                {"hostname": "ns2.team-a.acme.example.com", "addresses": ["192.0.2.22", "2001:db8::22"]}
            ]}),
        );
        let z = zone(
            json!({"delegations": [{"name": "team-a", "zoneRef": {"namespace": "team-a", "name": "child"}}]}),
        );
        let mut store = store_of(&[]);
        add_zone(&mut store, child);
        let out = compile(&z, &store, &CompileOptions::default());
        assert_eq!(
            rrset(&out, "team-a.acme.example.com", RecordType::NS),
            vec![
                "ns1.team-a.acme.example.com.",
                "ns2.team-a.acme.example.com."
            ]
        );
        assert_eq!(
            rrset(&out, "ns2.team-a.acme.example.com", RecordType::AAAA),
            vec!["2001:db8::22"]
        );
        assert_eq!(
            rrset(&out, "ns1.team-a.acme.example.com", RecordType::A),
            vec!["192.0.2.21"]
        );
        assert!(out.problems.is_empty(), "{:?}", out.problems);
    }

    /// The DS RRset at `name` as `dnssec::ds::text` strings.
    fn ds_at(out: &crate::compile::Compiled, name: &str) -> Vec<String> {
        out.data
            .rrset(&n(name), RecordType::DS)
            .map(|s| {
                s.rdata
                    .iter()
                    .map(|r| {
                        crate::dnssec::ds::text(&crate::dnssec::sign::canonical_rdata(r).unwrap())
                            .unwrap()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn ds_of_a_signing_child_is_served_at_the_cut_and_bad_ones_reported() {
        let d1 = "AB".repeat(32);
        let d2 = "CD".repeat(32);
        let z = zone(json!({"delegations": [{"name": "b", "nameservers": [
            {"hostname": "ns.provider.net"}],
            "ds": [format!("12345 13 2 {}", d1.to_lowercase()),
                   format!("b.acme.example.com. 3600 IN DS 4242 8 2 {d2}"),
                   "12345 13 2 AB01"]}]}));
        let out = compile_zone(z, &[]);
        assert_eq!(
            ds_at(&out, "b.acme.example.com"),
            vec![format!("12345 13 2 {d1}"), format!("4242 8 2 {d2}")]
        );
        assert_eq!(
            rrset(&out, "b.acme.example.com", RecordType::NS),
            vec!["ns.provider.net."],
            "a bad DS leaves the delegation"
        );
        assert!(
            has_problem(
                &out,
                "DNSZone acme/z: spec.delegations[0].ds[2]: DS \"12345 13 2 AB01\": a digest of type 2 has 32 bytes, this one 2; DS ignored"
            ),
            "{:?}",
            out.problems
        );
    }

    #[test]
    fn zone_ref_takes_a_signed_childs_ds_from_its_status() {
        let d = "3A".repeat(32);
        let child = with_status(
            zone_json(
                json!({"apiVersion": "zonegate.dev/v1alpha1", "kind": "DNSZone",
                "metadata": {"name": "child", "namespace": "acme"}, "spec": {"domain": "sub.acme.example.com"}}),
            ),
            json!({"nameservers": [{"hostname": "ns.provider.net"}],
                   "dnssec": {"keyTag": 7, "ds": [format!("sub.acme.example.com. 3600 IN DS 7 13 2 {d}"), "junk"], "dnskey": []}}),
        );
        let z = zone(json!({"delegations": [{"name": "sub", "zoneRef": {"name": "child"}}]}));
        let mut store = store_of(&[]);
        add_zone(&mut store, child);
        let out = compile(&z, &store, &CompileOptions::default());
        assert_eq!(
            ds_at(&out, "sub.acme.example.com"),
            vec![format!("7 13 2 {d}")]
        );
        assert!(
            has_problem(
                &out,
                "spec.delegations[0].zoneRef (DNSZone acme/child status.dnssec.ds[1]): \"junk\" is not a DS record"
            ),
            "{:?}",
            out.problems
        );
    }

    #[test]
    fn zone_ref_defaults_to_own_namespace() {
        let child = with_status(
            zone_json(
                json!({"apiVersion": "zonegate.dev/v1alpha1", "kind": "DNSZone",
                "metadata": {"name": "child", "namespace": "acme"}, "spec": {"domain": "sub.acme.example.com"}}),
            ),
            json!({"nameservers": [{"hostname": "ns.elsewhere.net", "addresses": ["192.0.2.1"]}]}),
        );
        let z = zone(json!({"delegations": [{"name": "sub", "zoneRef": {"name": "child"}}]}));
        let mut store = store_of(&[]);
        add_zone(&mut store, child);
        let out = compile(&z, &store, &CompileOptions::default());
        assert_eq!(
            rrset(&out, "sub.acme.example.com", RecordType::NS),
            vec!["ns.elsewhere.net."]
        );
    }

    #[test]
    fn zone_ref_missing_or_without_status() {
        let z = zone(json!({"delegations": [
            {"name": "a", "zoneRef": {"name": "nope"}},
            {"name": "b", "zoneRef": {"name": "pending"}}
        ]}));
        let mut store = store_of(&[]);
        add_zone(
            &mut store,
            zone_json(
                json!({"apiVersion": "zonegate.dev/v1alpha1", "kind": "DNSZone",
                "metadata": {"name": "pending", "namespace": "acme"}, "spec": {"domain": "b.acme.example.com"}}),
            ),
        );
        let out = compile(&z, &store, &CompileOptions::default());
        assert!(
            out.data
                .rrset(&n("a.acme.example.com"), RecordType::NS)
                .is_none()
        );
        assert!(
            out.data
                .rrset(&n("b.acme.example.com"), RecordType::NS)
                .is_none()
        );
        assert_eq!(
            problems(&out),
            vec![
                "DNSZone acme/z: spec.delegations[0].zoneRef: DNSZone acme/nope not found; no delegation",
                "DNSZone acme/z: spec.delegations[1].zoneRef: DNSZone acme/pending has no nameservers in its status yet; no delegation",
            ]
        );
    }

    #[test]
    fn zone_ref_domain_mismatch() {
        let child = with_status(
            zone_json(
                json!({"apiVersion": "zonegate.dev/v1alpha1", "kind": "DNSZone",
                "metadata": {"name": "child", "namespace": "acme"}, "spec": {"domain": "other.example.org"}}),
            ),
            json!({"nameservers": [{"hostname": "ns.elsewhere.net", "addresses": ["192.0.2.1"]}]}),
        );
        let z = zone(json!({"delegations": [{"name": "sub", "zoneRef": {"name": "child"}}]}));
        let mut store = store_of(&[]);
        add_zone(&mut store, child);
        let out = compile(&z, &store, &CompileOptions::default());
        assert!(
            out.data
                .rrset(&n("sub.acme.example.com"), RecordType::NS)
                .is_none()
        );
        assert!(has_problem(
            &out,
            "serves other.example.org, not sub.acme.example.com; no delegation"
        ));
    }

    #[test]
    fn static_records_below_a_delegation_are_occluded() {
        let z = zone(json!({
            "delegations": [{"name": "team-a", "nameservers": [{"hostname": "ns.provider.net"}]}],
            "records": [
                {"name": "www.team-a", "type": "A", "values": ["192.0.2.1"]},
                {"name": "team-a", "type": "TXT", "values": ["\"hello\""]}
            ]
        }));
        let out = compile_zone(z, &[]);
        assert!(absent(&out, "www.team-a.acme.example.com"));
        assert!(rrset(&out, "team-a.acme.example.com", RecordType::TXT).is_empty());
        assert!(has_problem(
            &out,
            "spec.records[0].values[0]: occluded by the delegation of team-a.acme.example.com"
        ));
        assert!(has_problem(
            &out,
            "spec.records[1].values[0]: occluded by the delegation of team-a.acme.example.com"
        ));
    }

    #[test]
    fn static_ns_below_apex_is_a_cut_with_static_glue() {
        let z = zone(json!({"records": [
            {"name": "lab", "type": "NS", "values": ["ns1.lab.acme.example.com"]},
            {"name": "ns1.lab", "type": "A", "values": ["192.0.2.77"]},
            {"name": "www.lab", "type": "A", "values": ["192.0.2.78"]}
        ]}));
        let out = compile_zone(z, &[]);
        assert_eq!(
            rrset(&out, "lab.acme.example.com", RecordType::NS),
            vec!["ns1.lab.acme.example.com."]
        );
        assert_eq!(
            rrset(&out, "ns1.lab.acme.example.com", RecordType::A),
            vec!["192.0.2.77"]
        );
        assert!(absent(&out, "www.lab.acme.example.com"));
        assert_eq!(out.problems.len(), 1, "{:?}", out.problems);
    }

    #[test]
    fn nested_cut_is_occluded_by_the_upper_one() {
        let z = zone(json!({"delegations": [
            {"name": "a", "nameservers": [{"hostname": "ns.provider.net"}]},
            {"name": "b.a", "nameservers": [{"hostname": "ns.other.net"}]}
        ]}));
        let out = compile_zone(z, &[]);
        assert!(absent(&out, "b.a.acme.example.com"));
        assert!(has_problem(
            &out,
            "spec.delegations[1].nameservers[0].hostname: occluded by the delegation of a.acme.example.com"
        ));
    }
}
