//! The apex: SOA, the NS RRset of the zone's nameservers, and their glue.

use super::names::{self, Syntax};
use super::{Class, Compiler, ZONE_ORIGIN, targets};
use crate::zone::SoaData;
use hickory_proto::rr::RData;
use hickory_proto::rr::rdata::NS;

/// The nameserver names: `spec.nameservers.hostnames`, or `ns1.<domain>` ... `nsN.<domain>` for
/// N = `spec.nameservers.count`. Invalid hostnames are reported and skipped; if none is valid,
/// the defaults are used so that the zone keeps an SOA MNAME and an NS RRset.
fn nameserver_names(c: &mut Compiler<'_>) -> Vec<hickory_proto::rr::Name> {
    let spec = &c.zone.spec.nameservers;
    let defaults = |c: &Compiler<'_>| -> Vec<_> {
        (1..=spec.count.max(1))
            .filter_map(|i| {
                names::parse_host(&format!("ns{i}.{}", c.domain), Syntax::Host, false).ok()
            })
            .collect()
    };
    let Some(hostnames) = &spec.hostnames else {
        return defaults(c);
    };
    let mut out = Vec::new();
    for (i, h) in hostnames.iter().enumerate() {
        match names::parse_host(&h.0, Syntax::Host, false) {
            Ok(name) if !out.contains(&name) => out.push(name),
            Ok(_) => c.report_zone(
                format!("spec.nameservers.hostnames[{i}]"),
                "duplicate nameserver hostname; ignored",
            ),
            Err(e) => c.report_zone(
                format!("spec.nameservers.hostnames[{i}]"),
                format!("{e}; nameserver ignored"),
            ),
        }
    }
    if out.is_empty() {
        c.report_zone(
            "spec.nameservers.hostnames",
            "no valid nameserver hostname; using the default names",
        );
        return defaults(c);
    }
    out
}

/// SOA data, apex NS and glue.
///
/// - MNAME is the first nameserver; RNAME is `spec.soa.rname` (an absolute name, trailing dot
///   optional) or `hostmaster.<domain>`; the SOA TTL is `spec.ttl` and MINIMUM is
///   `spec.soa.negativeTtl`.
/// - The apex NS RRset and the glue take `spec.ttl`.
/// - Glue: every nameserver name inside the zone gets A/AAAA records from the
///   `status.nameservers[]` entry of the same hostname. An address that is not an IP (a
///   load-balancer hostname) cannot be glue and is reported. A nameserver without addresses in
///   the status yet gets no glue and no problem: the status is written by the operator once the
///   nameserver Services have addresses, so that state is transient.
pub(crate) fn compile(c: &mut Compiler<'_>) {
    let nameservers = nameserver_names(c);
    let rname = match &c.zone.spec.soa.rname {
        Some(r) => match names::parse_host(r, Syntax::Dns, false) {
            Ok(n) => Some(n),
            Err(e) => {
                c.report_zone(
                    "spec.soa.rname",
                    format!("{e}; using hostmaster.{}", c.domain),
                );
                None
            }
        },
        None => None,
    };
    let rname = rname.unwrap_or_else(|| {
        names::parse_host(&format!("hostmaster.{}", c.domain), Syntax::Host, false)
            .expect("hostmaster.<valid domain> is valid")
    });
    let soa = &c.zone.spec.soa;
    c.soa = Some(SoaData {
        mname: nameservers[0].clone(),
        rname,
        refresh: soa.refresh,
        retry: soa.retry,
        expire: soa.expire,
        minimum: soa.negative_ttl,
        ttl: c.ttl,
    });

    let origin = c.origin.clone();
    for ns in &nameservers {
        c.add(
            ZONE_ORIGIN,
            Class::Apex,
            origin.clone(),
            c.ttl,
            RData::NS(NS(ns.clone())),
            "spec.nameservers",
        );
    }

    let zone = c.zone;
    let statuses = zone
        .status
        .as_ref()
        .map(|s| s.nameservers.as_slice())
        .unwrap_or_default();
    for ns in nameservers.iter().filter(|ns| origin.zone_of(ns)) {
        for (i, st) in statuses.iter().enumerate() {
            if names::parse_host(&st.hostname, Syntax::Host, false)
                .ok()
                .as_ref()
                != Some(ns)
            {
                continue;
            }
            for (j, addr) in st.addresses.iter().enumerate() {
                let field = format!("status.nameservers[{i}].addresses[{j}]");
                match targets::ip_rdata(addr) {
                    Ok(rdata) => c.add(ZONE_ORIGIN, Class::Apex, ns.clone(), c.ttl, rdata, field),
                    Err(e) => c.report_zone(
                        field,
                        format!("{e}; it cannot be glue for nameserver {}", names::show(ns)),
                    ),
                }
            }
        }
    }
    c.nameservers = nameservers;
}

#[cfg(test)]
mod tests {
    use crate::compile::testing::*;
    use hickory_proto::rr::RecordType;
    use serde_json::json;

    #[test]
    fn soa_defaults() {
        let out = compile_zone(zone(json!({})), &[]);
        let soa = &out.data.soa;
        assert_eq!(soa.mname, n("ns1.acme.example.com"));
        assert_eq!(soa.rname, n("hostmaster.acme.example.com"));
        assert_eq!(
            (soa.refresh, soa.retry, soa.expire, soa.minimum, soa.ttl),
            (3600, 600, 1209600, 60, 60)
        );
        assert_eq!(out.data.origin, n("acme.example.com"));
        assert!(out.problems.is_empty(), "{:?}", out.problems);
    }

    #[test]
    fn soa_from_spec() {
        let z = zone(
            json!({"ttl": 300, "soa": {"rname": "DNS-Admin.Example.org.", "refresh": 7200, "retry": 900, "expire": 604800, "negativeTtl": 30},
            "nameservers": {"count": 1, "hostnames": ["a.ns.example.net"]}}),
        );
        let soa = compile_zone(z, &[]).data.soa;
        assert_eq!(soa.mname, n("a.ns.example.net"));
        assert_eq!(soa.rname, n("dns-admin.example.org"));
        assert_eq!(
            (soa.refresh, soa.retry, soa.expire, soa.minimum, soa.ttl),
            (7200, 900, 604800, 30, 300)
        );
    }

    #[test]
    fn default_ns_set_has_count_names() {
        let out = compile_zone(zone(json!({"nameservers": {"count": 3}})), &[]);
        assert_eq!(
            rrset(&out, "acme.example.com", RecordType::NS),
            vec![
                "ns1.acme.example.com.",
                "ns2.acme.example.com.",
                "ns3.acme.example.com."
            ]
        );
        assert_eq!(ttl_of(&out, "acme.example.com", RecordType::NS), Some(60));
    }

    #[test]
    fn explicit_hostnames_lowercased() {
        let z = zone(
            json!({"nameservers": {"count": 2, "hostnames": ["NS-A.acme.example.com", "ns.other.net."]}}),
        );
        let out = compile_zone(z, &[]);
        assert_eq!(
            rrset(&out, "acme.example.com", RecordType::NS),
            vec!["ns-a.acme.example.com.", "ns.other.net."]
        );
    }

    #[test]
    fn glue_from_status_for_in_zone_nameservers_only() {
        let z = with_status(
            zone(
                json!({"nameservers": {"count": 2, "hostnames": ["ns1.acme.example.com", "ns.other.net"]}}),
            ),
            json!({"nameservers": [
                {"hostname": "ns1.acme.example.com", "addresses": ["192.0.2.53", "2001:db8::53"]},
                {"hostname": "ns.other.net", "addresses": ["198.51.100.1"]}
            ]}),
        );
        let out = compile_zone(z, &[]);
        assert_eq!(
            rrset(&out, "ns1.acme.example.com", RecordType::A),
            vec!["192.0.2.53"]
        );
        assert_eq!(
            rrset(&out, "ns1.acme.example.com", RecordType::AAAA),
            vec!["2001:db8::53"]
        );
        assert!(absent(&out, "ns.other.net"));
        assert!(out.problems.is_empty(), "{:?}", out.problems);
    }

    #[test]
    fn glue_matches_hostname_case_insensitively() {
        let z = with_status(
            zone(json!({})),
            json!({"nameservers": [{"hostname": "NS2.acme.example.com.", "addresses": ["192.0.2.2"]}]}),
        );
        let out = compile_zone(z, &[]);
        assert_eq!(
            rrset(&out, "ns2.acme.example.com", RecordType::A),
            vec!["192.0.2.2"]
        );
    }

    #[test]
    fn non_ip_status_address_cannot_be_glue() {
        let z = with_status(
            zone(json!({})),
            json!({"nameservers": [{"hostname": "ns1.acme.example.com", "addresses": ["lb-1.elb.example.net", "192.0.2.1"]}]}),
        );
        let out = compile_zone(z, &[]);
        assert_eq!(
            rrset(&out, "ns1.acme.example.com", RecordType::A),
            vec!["192.0.2.1"]
        );
        assert_eq!(
            problems(&out),
            vec![
                "DNSZone acme/z: status.nameservers[0].addresses[0]: \"lb-1.elb.example.net\" is not an IP address; it cannot be glue for nameserver ns1.acme.example.com"
            ]
        );
    }

    #[test]
    fn invalid_nameserver_hostname_reported() {
        let z = zone(
            json!({"nameservers": {"count": 2, "hostnames": ["ns_1.acme.example.com", "ns2.acme.example.com"]}}),
        );
        let out = compile_zone(z, &[]);
        assert_eq!(
            rrset(&out, "acme.example.com", RecordType::NS),
            vec!["ns2.acme.example.com."]
        );
        assert_eq!(out.data.soa.mname, n("ns2.acme.example.com"));
        assert!(has_problem(
            &out,
            "DNSZone acme/z: spec.nameservers.hostnames[0]: invalid hostname"
        ));
    }

    #[test]
    fn invalid_rname_falls_back() {
        let out = compile_zone(zone(json!({"soa": {"rname": "bad..name"}})), &[]);
        assert_eq!(out.data.soa.rname, n("hostmaster.acme.example.com"));
        assert!(has_problem(&out, "spec.soa.rname: invalid hostname"));
    }

    #[test]
    fn invalid_domain_gives_empty_zone_and_problem() {
        let z = zone_json(
            json!({"apiVersion": "zonegate.dev/v1alpha1", "kind": "DNSZone",
            "metadata": {"name": "z", "namespace": "acme"}, "spec": {"domain": "bad_domain.example"}}),
        );
        let out = compile_zone(z, &[]);
        assert!(out.data.records.is_empty());
        assert!(out.data.origin.is_root());
        assert_eq!(out.problems.len(), 1);
        assert!(problems(&out)[0].starts_with("DNSZone acme/z: spec.domain: invalid hostname"));
    }
}
