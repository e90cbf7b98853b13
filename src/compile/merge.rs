//! The zone-wide rules applied to all candidates, and the final `ZoneData`.

use super::names::show;
use super::{Candidate, Class, Origin};
use crate::zone::RRsets;
use hickory_proto::rr::{Name, RData, RecordType};
use std::collections::{BTreeSet, HashMap, HashSet};

/// The zone-wide rules, applied to the candidates of each owner name, in this order:
/// 1. the apex: NS records there come only from `spec.nameservers` and NS in `spec.records`
///    (DNSEndpoint NS at the apex are ignored); no CNAME at the apex; no CNAME to its own name
///    (a loop: ExternalDNS writes one for an Ingress whose target annotation is its own host);
/// 2. the zone's nameserver names (inside the zone) hold only their glue: anything else there
///    is dropped (the nameserver's glue wins);
/// 3. NS at a wildcard name are dropped (RFC 4592 §4.2);
/// 4. delegation cuts (NS below the apex, from `spec.delegations`, `spec.records` or
///    DNSEndpoints): at or below the topmost cut only its NS RRset, its DS RRset from the
///    DNSZone (`spec.delegations[].ds`, a zoneRef child's DS) and A/AAAA glue at its
///    nameserver names remain; everything else is occluded (a lower cut's NS too). Glue comes
///    from the DNSZone (`spec.delegations`, `spec.records`), or from DNSEndpoints when a
///    DNSEndpoint delegates the cut; never from Ingresses and the like, and a DNSEndpoint cannot
///    add addresses to a delegation only the DNSZone makes;
/// 5. CNAME exclusivity: a name with any other data loses all its CNAMEs; of competing CNAME
///    targets the oldest contributor's wins (`Seniority`; within one contributor the first);
/// 6. the rest is added to the zone in candidate order; RRsets merge and dedupe, with the
///    minimum TTL of their records.
///
/// Rules 1-3 look at one candidate, rule 4 at one candidate and the zone's cuts (`MergeCtx`),
/// rules 5 and 6 at the candidates of one name: so a name's records depend only on its own
/// candidates and the cuts, which is what lets `ZoneCompiler` re-merge just the names a change
/// touches. Every dropped candidate yields a `Drop` against its object and field.
#[derive(Debug, Default)]
pub(crate) struct MergeCtx {
    origin: Name,
    /// The zone's nameserver names inside the zone (apex excluded): rule 2.
    reserved: HashSet<Name>,
    /// Delegation points: names below the apex with an NS candidate that rules 1-3 keep.
    cuts: HashSet<Name>,
    /// Per topmost cut: its nameserver names, and whether a DNSEndpoint delegates it.
    glue_names: HashMap<Name, (BTreeSet<Name>, bool)>,
}

/// The merge phase that dropped a candidate: problems list rules 1-3 first, then rule 4, then
/// rule 5 (by name); within a phase in candidate order.
const PHASE_CANDIDATE: u8 = 0;
const PHASE_CUT: u8 = 1;
pub(crate) const PHASE_CNAME: u8 = 2;

/// One dropped candidate: its phase, its index among the name's candidates, and why.
pub(crate) struct Drop {
    pub phase: u8,
    pub index: usize,
    pub message: String,
}

impl MergeCtx {
    /// `nameservers`: the zone's nameserver names; `candidates`: every candidate of the zone
    /// (only the NS ones matter).
    pub(crate) fn new<'c>(
        origin: &Name,
        nameservers: &[Name],
        candidates: impl Iterator<Item = &'c Candidate>,
    ) -> Self {
        let reserved: HashSet<Name> = nameservers
            .iter()
            .filter(|n| origin.zone_of(n) && *n != origin)
            .cloned()
            .collect();
        let mut ctx = MergeCtx {
            origin: origin.clone(),
            reserved,
            ..Default::default()
        };
        let ns: Vec<&Candidate> = candidates
            .filter(|c| ctx.is_cut_ns(c) && ctx.candidate_rule(c).is_none())
            .collect();
        ctx.cuts = ns.iter().map(|c| c.name.clone()).collect();
        for cand in ns {
            if let RData::NS(target) = &cand.rdata
                && ctx.topmost(&cand.name).as_ref() == Some(&cand.name)
            {
                let entry = ctx.glue_names.entry(cand.name.clone()).or_default();
                entry.0.insert(target.0.clone());
                entry.1 |= cand.class == Class::Endpoint;
            }
        }
        ctx
    }

    /// An NS candidate below the apex: the only kind of candidate that can change the cuts.
    pub(crate) fn is_cut_ns(&self, cand: &Candidate) -> bool {
        cand.rdata.record_type() == RecordType::NS && cand.name != self.origin
    }

    /// Rules 1-3 for one candidate: why it is dropped, if it is.
    fn candidate_rule(&self, cand: &Candidate) -> Option<String> {
        if cand.class == Class::Apex {
            return None;
        }
        let rtype = cand.rdata.record_type();
        if cand.name == self.origin && rtype == RecordType::NS && cand.class != Class::Zone {
            Some("NS records at the zone apex come from spec.nameservers; ignored".to_string())
        } else if cand.name == self.origin && rtype == RecordType::CNAME {
            Some("a CNAME cannot be at the zone apex; dropped".to_string())
        } else if matches!(&cand.rdata, RData::CNAME(t) if t.0 == cand.name) {
            Some("a CNAME to its own name would loop; dropped".to_string())
        } else if !self.reserved.is_empty() && self.reserved.contains(&cand.name) {
            Some(format!(
                "{} is a nameserver of this zone; its glue records win; dropped",
                show(&cand.name)
            ))
        } else if rtype == RecordType::NS && cand.name.is_wildcard() {
            Some("NS records cannot be at a wildcard name; dropped".to_string())
        } else {
            None
        }
    }

    /// The topmost cut at or above `name`, if any.
    fn topmost(&self, name: &Name) -> Option<Name> {
        if self.cuts.is_empty() {
            return None;
        }
        let mut found = None;
        let mut cur = name.clone();
        while cur != self.origin && !cur.is_root() {
            if self.cuts.contains(&cur) {
                found = Some(cur.clone());
            }
            cur = cur.base_name();
        }
        found
    }

    /// Rule 4 for one candidate at or below the topmost cut `cut`: why it is occluded, if it is.
    fn cut_rule(&self, cut: &Name, cand: &Candidate) -> Option<String> {
        if cand.class == Class::Apex {
            return None;
        }
        let rtype = cand.rdata.record_type();
        let is_cut_ns = rtype == RecordType::NS && cand.name == *cut;
        // the DS of a child that signs, from the DNSZone's delegation (the parent's side)
        let is_cut_ds = rtype == RecordType::DS && cand.name == *cut && cand.class == Class::Zone;
        let is_glue = matches!(rtype, RecordType::A | RecordType::AAAA)
            && self
                .glue_names
                .get(cut)
                .is_some_and(|(names, by_endpoint)| {
                    names.contains(&cand.name)
                        && (cand.class == Class::Zone
                            || (cand.class == Class::Endpoint && *by_endpoint))
                });
        (!is_cut_ns && !is_cut_ds && !is_glue)
            .then(|| format!("occluded by the delegation of {}; dropped", show(cut)))
    }

    /// Applies the rules to the candidates of one name (`cands`, in candidate order, each with
    /// its origin): the name's RRsets (empty when nothing survives) and the drops.
    pub(crate) fn merge_name(
        &self,
        name: &Name,
        cands: &[(&Candidate, &Origin)],
    ) -> (RRsets, Vec<Drop>) {
        let mut keep = vec![true; cands.len()];
        let mut drops = Vec::new();
        let mut drop = |index: usize, keep: &mut Vec<bool>, phase: u8, message: String| {
            keep[index] = false;
            drops.push(Drop {
                phase,
                index,
                message,
            });
        };

        // 1-3: per-candidate rules.
        for (i, (cand, _)) in cands.iter().enumerate() {
            if let Some(m) = self.candidate_rule(cand) {
                drop(i, &mut keep, PHASE_CANDIDATE, m);
            }
        }

        // 4: delegation cuts.
        if let Some(cut) = self.topmost(name) {
            for (i, (cand, _)) in cands.iter().enumerate() {
                if keep[i]
                    && let Some(m) = self.cut_rule(&cut, cand)
                {
                    drop(i, &mut keep, PHASE_CUT, m);
                }
            }
        }

        // 5: CNAME exclusivity.
        let (cnames, others): (Vec<usize>, Vec<usize>) = (0..cands.len())
            .filter(|&i| keep[i])
            .partition(|&i| cands[i].0.rdata.record_type() == RecordType::CNAME);
        if !cnames.is_empty() && !others.is_empty() {
            let types: BTreeSet<String> = others
                .iter()
                .map(|&i| cands[i].0.rdata.record_type().to_string())
                .collect();
            let types = types.into_iter().collect::<Vec<_>>().join(", ");
            for &i in &cnames {
                drop(
                    i,
                    &mut keep,
                    PHASE_CNAME,
                    format!(
                        "CNAME to {} dropped: {} also has {types} records",
                        target(cands[i].0),
                        show(name)
                    ),
                );
            }
        } else if !cnames.is_empty() {
            let winner = *cnames
                .iter()
                .min_by_key(|&&i| (&cands[i].1.seniority, i))
                .expect("non-empty");
            let (wc, wo) = cands[winner];
            for &i in &cnames {
                let (cand, origin) = cands[i];
                if cand.rdata == wc.rdata {
                    continue;
                }
                let why = if std::ptr::eq(origin, wo) {
                    "a name has only one CNAME".to_string()
                } else {
                    format!("{} (older) publishes it", wo.object)
                };
                drop(
                    i,
                    &mut keep,
                    PHASE_CNAME,
                    format!(
                        "CNAME to {} dropped: {} keeps its CNAME to {}, {why}",
                        target(cand),
                        show(name),
                        target(wc)
                    ),
                );
            }
        }

        // 6: the records.
        let mut sets = RRsets::new();
        for (cand, _) in cands.iter().zip(&keep).filter(|(_, k)| **k).map(|(c, _)| c) {
            sets.entry(cand.rdata.record_type(), cand.ttl)
                .push(cand.ttl, cand.rdata.clone());
        }
        (sets, drops)
    }
}

/// A CNAME candidate's target, for messages.
fn target(cand: &Candidate) -> String {
    match &cand.rdata {
        RData::CNAME(t) => show(&t.0),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use crate::compile::testing::*;
    use hickory_proto::rr::RecordType;
    use serde_json::json;

    #[test]
    fn a_records_merge_across_objects_and_dedupe() {
        let out = compile_zone(
            zone(json!({})),
            &[
                ingress(
                    "one",
                    &["www.acme.example.com"],
                    &["192.0.2.1", "192.0.2.2"],
                ),
                ingress(
                    "two",
                    &["www.acme.example.com"],
                    &["192.0.2.2", "192.0.2.3"],
                ),
            ],
        );
        assert_eq!(
            rrset(&out, "www.acme.example.com", RecordType::A),
            vec!["192.0.2.1", "192.0.2.2", "192.0.2.3"]
        );
        assert!(out.problems.is_empty());
    }

    #[test]
    fn rrset_ttl_is_minimum() {
        let fast = with_meta(
            ingress("fast", &["www.acme.example.com"], &["192.0.2.2"]),
            "annotations",
            json!({"external-dns.alpha.kubernetes.io/ttl": "15"}),
        );
        let out = compile_zone(
            zone(json!({"ttl": 300})),
            &[
                ingress("slow", &["www.acme.example.com"], &["192.0.2.1"]),
                fast,
            ],
        );
        assert_eq!(
            ttl_of(&out, "www.acme.example.com", RecordType::A),
            Some(15)
        );
    }

    #[test]
    fn cname_dropped_when_name_has_other_data() {
        let out = compile_zone(
            zone(json!({})),
            &[
                ingress("ip", &["www.acme.example.com"], &["192.0.2.1"]),
                ingress("host", &["www.acme.example.com"], &["lb.example.net"]),
                ingress("host2", &["www.acme.example.com"], &["lb2.example.net"]),
            ],
        );
        assert_eq!(
            rrset(&out, "www.acme.example.com", RecordType::A),
            vec!["192.0.2.1"]
        );
        assert!(rrset(&out, "www.acme.example.com", RecordType::CNAME).is_empty());
        assert_eq!(
            problems(&out),
            vec![
                "Ingress acme/host: spec.rules[0].host: CNAME to lb.example.net dropped: www.acme.example.com also has A records",
                "Ingress acme/host2: spec.rules[0].host: CNAME to lb2.example.net dropped: www.acme.example.com also has A records",
            ]
        );
    }

    #[test]
    fn competing_cnames_oldest_wins() {
        let newer = with_meta(
            ingress("a-newer", &["www.acme.example.com"], &["new.example.net"]),
            "creationTimestamp",
            json!("2024-05-01T00:00:00Z"),
        );
        let older = with_meta(
            ingress("b-older", &["www.acme.example.com"], &["old.example.net"]),
            "creationTimestamp",
            json!("2023-01-01T00:00:00Z"),
        );
        let same = with_meta(
            ingress("c-same", &["www.acme.example.com"], &["old.example.net"]),
            "creationTimestamp",
            json!("2025-01-01T00:00:00Z"),
        );
        let out = compile_zone(zone(json!({})), &[newer, older, same]);
        assert_eq!(
            rrset(&out, "www.acme.example.com", RecordType::CNAME),
            vec!["old.example.net."]
        );
        assert_eq!(
            problems(&out),
            vec![
                "Ingress acme/a-newer: spec.rules[0].host: CNAME to new.example.net dropped: www.acme.example.com keeps its CNAME to old.example.net, Ingress acme/b-older (older) publishes it"
            ]
        );
    }

    #[test]
    fn competing_cnames_without_timestamps_order_by_kind_namespace_name() {
        let ep = dns_endpoint(
            "ep",
            json!([{"dnsName": "www.acme.example.com", "recordType": "CNAME", "targets": ["ep.example.net"]}]),
        );
        let out = compile_zone(
            zone(json!({})),
            &[
                ingress("web", &["www.acme.example.com"], &["ing.example.net"]),
                ep,
            ],
        );
        // "DNSEndpoint" sorts before "Ingress".
        assert_eq!(
            rrset(&out, "www.acme.example.com", RecordType::CNAME),
            vec!["ep.example.net."]
        );
        assert!(has_problem(
            &out,
            "Ingress acme/web: spec.rules[0].host: CNAME to ing.example.net dropped"
        ));
    }

    #[test]
    fn objects_with_timestamp_are_older_than_without() {
        let dated = with_meta(
            ingress("z", &["www.acme.example.com"], &["dated.example.net"]),
            "creationTimestamp",
            json!("2030-01-01T00:00:00Z"),
        );
        let out = compile_zone(
            zone(json!({})),
            &[
                ingress("a", &["www.acme.example.com"], &["undated.example.net"]),
                dated,
            ],
        );
        assert_eq!(
            rrset(&out, "www.acme.example.com", RecordType::CNAME),
            vec!["dated.example.net."]
        );
    }

    #[test]
    fn static_cname_is_oldest() {
        let old = with_meta(
            ingress("web", &["www.acme.example.com"], &["ing.example.net"]),
            "creationTimestamp",
            json!("2000-01-01T00:00:00Z"),
        );
        let out = compile_zone(
            zone(
                json!({"records": [{"name": "www", "type": "CNAME", "values": ["static.example.net"]}]}),
            ),
            &[old],
        );
        assert_eq!(
            rrset(&out, "www.acme.example.com", RecordType::CNAME),
            vec!["static.example.net."]
        );
        assert!(has_problem(
            &out,
            "keeps its CNAME to static.example.net, DNSZone acme/z (older) publishes it"
        ));
    }

    #[test]
    fn same_cname_from_two_objects_is_kept_silently() {
        let out = compile_zone(
            zone(json!({})),
            &[
                ingress("a", &["www.acme.example.com"], &["lb.example.net"]),
                ingress("b", &["www.acme.example.com"], &["LB.example.net."]),
            ],
        );
        assert_eq!(
            rrset(&out, "www.acme.example.com", RecordType::CNAME),
            vec!["lb.example.net."]
        );
        assert!(out.problems.is_empty(), "{:?}", out.problems);
    }

    #[test]
    fn two_cnames_from_one_object_keep_first() {
        let out = compile_zone(
            zone(json!({})),
            &[ingress(
                "a",
                &["www.acme.example.com"],
                &["lb1.example.net", "lb2.example.net"],
            )],
        );
        assert_eq!(
            rrset(&out, "www.acme.example.com", RecordType::CNAME),
            vec!["lb1.example.net."]
        );
        assert!(has_problem(
            &out,
            "CNAME to lb2.example.net dropped: www.acme.example.com keeps its CNAME to lb1.example.net, a name has only one CNAME"
        ));
    }

    #[test]
    fn cname_at_apex_from_source_dropped() {
        let out = compile_zone(
            zone(json!({})),
            &[ingress("web", &["acme.example.com"], &["lb.example.net"])],
        );
        assert!(rrset(&out, "acme.example.com", RecordType::CNAME).is_empty());
        assert_eq!(
            problems(&out),
            vec![
                "Ingress acme/web: spec.rules[0].host: a CNAME cannot be at the zone apex; dropped"
            ]
        );
    }

    #[test]
    fn source_records_at_nameserver_names_dropped() {
        let z = with_status(
            zone(json!({})),
            json!({"nameservers": [{"hostname": "ns1.acme.example.com", "addresses": ["192.0.2.53"]}]}),
        );
        let out = compile_zone(
            z,
            &[ingress(
                "web",
                &["ns1.acme.example.com", "ns2.acme.example.com"],
                &["192.0.2.1"],
            )],
        );
        assert_eq!(
            rrset(&out, "ns1.acme.example.com", RecordType::A),
            vec!["192.0.2.53"]
        );
        assert!(absent(&out, "ns2.acme.example.com"));
        assert_eq!(
            problems(&out),
            vec![
                "Ingress acme/web: spec.rules[0].host: ns1.acme.example.com is a nameserver of this zone; its glue records win; dropped",
                "Ingress acme/web: spec.rules[1].host: ns2.acme.example.com is a nameserver of this zone; its glue records win; dropped",
            ]
        );
    }

    #[test]
    fn static_records_at_nameserver_names_dropped_too() {
        let out = compile_zone(
            zone(json!({"records": [{"name": "ns1", "type": "TXT", "values": ["\"x\""]}]})),
            &[],
        );
        assert!(absent(&out, "ns1.acme.example.com"));
        assert!(has_problem(
            &out,
            "DNSZone acme/z: spec.records[0].values[0]: ns1.acme.example.com is a nameserver"
        ));
    }

    #[test]
    fn endpoint_cannot_add_glue_to_a_zone_delegation() {
        let z = zone(json!({"delegations": [{"name": "team-a", "nameservers": [
            {"hostname": "ns1.team-a.acme.example.com", "addresses": ["192.0.2.10"]}]}]}));
        let ep = dns_endpoint(
            "ep",
            json!([{"dnsName": "ns1.team-a.acme.example.com", "recordType": "A", "targets": ["203.0.113.66"]}]),
        );
        let out = compile_zone(z, &[ep]);
        assert_eq!(
            rrset(&out, "ns1.team-a.acme.example.com", RecordType::A),
            vec!["192.0.2.10"]
        );
        assert_eq!(
            problems(&out),
            vec![
                "DNSEndpoint acme/ep: spec.endpoints[0].dnsName: occluded by the delegation of team-a.acme.example.com; dropped"
            ]
        );
    }

    #[test]
    fn source_records_below_a_delegation_are_occluded_even_glue_shaped() {
        let z = zone(json!({"delegations": [{"name": "team-a", "nameservers": [
            {"hostname": "ns1.team-a.acme.example.com", "addresses": ["192.0.2.10"]}]}]}));
        let out = compile_zone(
            z,
            &[ingress(
                "web",
                &[
                    "team-a.acme.example.com",
                    "ns1.team-a.acme.example.com",
                    "x.y.team-a.acme.example.com",
                ],
                &["192.0.2.99"],
            )],
        );
        assert_eq!(
            rrset(&out, "ns1.team-a.acme.example.com", RecordType::A),
            vec!["192.0.2.10"]
        );
        assert!(rrset(&out, "team-a.acme.example.com", RecordType::A).is_empty());
        assert!(absent(&out, "x.y.team-a.acme.example.com"));
        assert_eq!(out.problems.len(), 3, "{:?}", out.problems);
        assert!(
            out.problems
                .iter()
                .all(|p| p.message
                    == "occluded by the delegation of team-a.acme.example.com; dropped")
        );
    }

    #[test]
    fn wildcard_ns_dropped() {
        let out = compile_zone(
            zone(json!({"records": [{"name": "*.x", "type": "NS", "values": ["ns.example.net"]}]})),
            &[],
        );
        assert!(absent(&out, "*.x.acme.example.com"));
        assert!(has_problem(
            &out,
            "NS records cannot be at a wildcard name; dropped"
        ));
    }

    #[test]
    fn wildcard_and_specific_coexist() {
        let out = compile_zone(
            zone(json!({})),
            &[
                ingress("wild", &["*.apps.acme.example.com"], &["192.0.2.1"]),
                ingress("one", &["x.apps.acme.example.com"], &["192.0.2.2"]),
            ],
        );
        assert_eq!(
            rrset(&out, "*.apps.acme.example.com", RecordType::A),
            vec!["192.0.2.1"]
        );
        assert_eq!(
            rrset(&out, "x.apps.acme.example.com", RecordType::A),
            vec!["192.0.2.2"]
        );
    }

    #[test]
    fn problems_are_deduplicated() {
        // The same bad Gateway address is reported once although two routes use it.
        let g = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": meta("acme", "gw"),
            "spec": {"listeners": [{"name": "h", "port": 80, "protocol": "HTTP"}]}, "status": {"addresses": [{"value": "bad"}, {"value": "192.0.2.1"}]}});
        let r = |name: &str| {
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": meta("acme", name),
            "spec": {"hostnames": [format!("{name}.acme.example.com")], "parentRefs": [{"name": "gw"}]},
            "status": {"parents": [{"parentRef": {"name": "gw"}, "conditions": [{"type": "Accepted", "status": "True"}]}]}})
        };
        let out = compile_zone(zone(json!({})), &[g, r("r1"), r("r2")]);
        assert_eq!(
            rrset(&out, "r2.acme.example.com", RecordType::A),
            vec!["192.0.2.1"]
        );
        assert_eq!(
            problems(&out),
            vec![
                "Gateway acme/gw: status.addresses[0]: \"bad\" is not an IP address; address ignored"
            ]
        );
    }
}
