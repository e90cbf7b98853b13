//! The ExternalDNS webhook provider protocol (v0.23, media type version 1): its JSON shapes, and
//! the pure mapping from what ExternalDNS sends to the records a zone stores. No I/O here.
//!
//! What is refused (outside the zone, unsupported types, invalid data, set identifiers) is
//! refused per record: `/adjustendpoints` leaves such records out of the desired state, so
//! ExternalDNS never plans them, and `POST /records` skips them and applies the rest of the
//! batch. The protocol has no per-record error, so both are logged (see `Refusal`).

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// The media type of every request and reply (`provider/webhook/api/httpapi.go`); ExternalDNS
/// checks the negotiation reply's Content-Type for exactly this string.
pub const MEDIA_TYPE: &str = "application/external.dns.webhook+json;version=1";

/// `null` (Go's nil slice or map) reads as the empty value.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// One `providerSpecific` entry.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProviderSpecific {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: String,
}

/// An ExternalDNS endpoint, which is also a DNSEndpoint's `spec.endpoints[]` entry: every field
/// is kept as sent, so what `GET /records` returns is byte for byte what was stored (the TXT
/// registry's ownership records depend on that).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub dns_name: String,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub targets: Vec<String>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub record_type: String,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub set_identifier: String,
    /// Seconds; 0 is "not set" (the zone's default TTL applies).
    #[serde(
        default,
        rename = "recordTTL",
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero"
    )]
    pub record_ttl: i64,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub provider_specific: Vec<ProviderSpecific>,
}

/// Identifies a record the way ExternalDNS's planner does: name (case-insensitive, trailing dot
/// optional), type and set identifier.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordKey {
    pub name: String,
    pub rtype: String,
    pub set_identifier: String,
}

impl Endpoint {
    pub fn key(&self) -> RecordKey {
        RecordKey {
            name: normal_name(&self.dns_name),
            rtype: self.record_type.to_ascii_uppercase(),
            set_identifier: self.set_identifier.clone(),
        }
    }

    /// `www.acme.example.com A`, for messages.
    pub fn describe(&self) -> String {
        format!("{} {}", self.dns_name, self.record_type)
    }
}

/// A DNS name as a comparison key: lowercase, no trailing dot.
pub fn normal_name(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// `POST /records`. The camelCase keys arrived in ExternalDNS v0.17; older senders use
/// `Create`, `UpdateOld`, `UpdateNew`, `Delete`, which are accepted too.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Changes {
    #[serde(default, alias = "Create", deserialize_with = "null_default")]
    pub create: Vec<Endpoint>,
    #[serde(default, alias = "UpdateOld", deserialize_with = "null_default")]
    pub update_old: Vec<Endpoint>,
    #[serde(default, alias = "UpdateNew", deserialize_with = "null_default")]
    pub update_new: Vec<Endpoint>,
    #[serde(default, alias = "Delete", deserialize_with = "null_default")]
    pub delete: Vec<Endpoint>,
}

/// The negotiation reply: ExternalDNS only sends records of these domains (and below).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DomainFilter {
    pub include: Vec<String>,
}

/// A record the provider will not store, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// `create`, `updateNew`, `delete`, `adjustendpoints`.
    pub op: &'static str,
    pub record: String,
    pub reason: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.op, self.record, self.reason)
    }
}

/// The zone the provider stores records for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneScope {
    /// Lowercase, no trailing dot.
    pub domain: String,
}

impl ZoneScope {
    pub fn new(domain: &str) -> Self {
        Self {
            domain: normal_name(domain),
        }
    }

    pub fn filter(&self) -> DomainFilter {
        DomainFilter {
            include: vec![self.domain.clone()],
        }
    }

    /// Why `e` cannot be stored, if it cannot: the compiler's own rules for a DNSEndpoint
    /// (`compile::endpoint_refusal`, so what is stored is what is served), plus set identifiers,
    /// which a plain authoritative zone cannot honour (weighted or geo answers).
    pub fn refusal(&self, e: &Endpoint) -> Option<String> {
        if !e.set_identifier.is_empty() {
            return Some(format!(
                "set identifier {:?}: weighted, failover and geo routing are not supported",
                e.set_identifier
            ));
        }
        let ttl = (e.record_ttl != 0).then_some(e.record_ttl);
        crate::compile::endpoint_refusal(&self.domain, &e.dns_name, &e.record_type, ttl, &e.targets)
    }

    /// A CNAME to its own name is stored (ExternalDNS must see it again, or it re-creates it
    /// every interval) but not served: the compiler drops it as a loop. The note says so.
    pub fn note(&self, e: &Endpoint) -> Option<String> {
        let self_cname = e.record_type.eq_ignore_ascii_case("CNAME")
            && e.targets.len() == 1
            && normal_name(&e.targets[0]) == normal_name(&e.dns_name);
        self_cname.then(|| {
            "a CNAME to its own name: stored as sent, but not served (it would loop); the \
             name's other sources (the Ingress or Service it came from) give its addresses"
                .to_string()
        })
    }

    /// `POST /adjustendpoints`: the desired endpoints the zone can store, unchanged; the others
    /// are left out (ExternalDNS then neither creates nor deletes them) and returned as refusals.
    pub fn adjust(&self, desired: Vec<Endpoint>) -> (Vec<Endpoint>, Vec<Refusal>) {
        let mut keep = Vec::with_capacity(desired.len());
        let mut refused = Vec::new();
        for e in desired {
            match self.refusal(&e) {
                Some(reason) => refused.push(Refusal {
                    op: "adjustendpoints",
                    record: e.describe(),
                    reason,
                }),
                None => keep.push(e),
            }
        }
        (keep, refused)
    }

    /// `POST /records`: applies `changes` to the stored records. Deletes first, then each
    /// `updateOld[i]` -> `updateNew[i]` pair, then creates (a create of an existing record
    /// replaces it, so a retried batch is harmless). A refused `updateNew` leaves its old
    /// record in place; deleting a record that is not stored is not an error. Returns what
    /// was refused and the notes on what was stored (self-referencing CNAMEs).
    pub fn apply(
        &self,
        records: &mut BTreeMap<RecordKey, Endpoint>,
        changes: Changes,
    ) -> (Vec<Refusal>, Vec<String>) {
        let mut refused = Vec::new();
        let mut notes = Vec::new();
        for e in changes.delete {
            if !crate::domain::within(&e.dns_name, &self.domain) {
                refused.push(Refusal {
                    op: "delete",
                    record: e.describe(),
                    reason: format!("{:?} is outside the zone {}", e.dns_name, self.domain),
                });
                continue;
            }
            records.remove(&e.key());
        }
        if changes.update_old.len() != changes.update_new.len() {
            // ExternalDNS always pairs them; refuse the unpaired tail rather than guess
            let n = changes.update_old.len().min(changes.update_new.len());
            for e in changes.update_new.iter().skip(n) {
                refused.push(Refusal {
                    op: "updateNew",
                    record: e.describe(),
                    reason: "no matching updateOld entry".into(),
                });
            }
        }
        let mut stores = Vec::new();
        for (old, new) in changes.update_old.into_iter().zip(changes.update_new) {
            match self.refusal(&new) {
                Some(reason) => refused.push(Refusal {
                    op: "updateNew",
                    record: new.describe(),
                    reason,
                }),
                None => {
                    records.remove(&old.key());
                    stores.push(new);
                }
            }
        }
        for e in changes.create {
            match self.refusal(&e) {
                Some(reason) => refused.push(Refusal {
                    op: "create",
                    record: e.describe(),
                    reason,
                }),
                None => stores.push(e),
            }
        }
        for e in stores {
            if let Some(n) = self.note(&e) {
                notes.push(format!("{}: {n}", e.describe()));
            }
            records.insert(e.key(), e);
        }
        (refused, notes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ep(v: serde_json::Value) -> Endpoint {
        serde_json::from_value(v).unwrap()
    }

    fn scope() -> ZoneScope {
        ZoneScope::new("Acme.Example.com.")
    }

    fn store(eps: &[Endpoint]) -> BTreeMap<RecordKey, Endpoint> {
        eps.iter().map(|e| (e.key(), e.clone())).collect()
    }

    #[test]
    fn endpoint_json_round_trips_exactly_and_omits_empty_fields() {
        let v = json!({"dnsName":"a-shop.acme.example.com","targets":["\"heritage=external-dns,external-dns/owner=tenant-acme,external-dns/resource=ingress/acme/shop\""],
            "recordType":"TXT","recordTTL":120,"labels":{"ownedRecord":"shop.acme.example.com"},
            "providerSpecific":[{"name":"webhook/zone-class","value":"public"}]});
        let e = ep(v.clone());
        assert_eq!(serde_json::to_value(&e).unwrap(), v);
        let bare =
            ep(json!({"dnsName":"x.acme.example.com","recordType":"A","targets":["192.0.2.1"]}));
        assert_eq!(
            serde_json::to_string(&bare).unwrap(),
            r#"{"dnsName":"x.acme.example.com","targets":["192.0.2.1"],"recordType":"A"}"#
        );
        // Go's nil slices and maps arrive as null
        let nulls = ep(
            json!({"dnsName":"x.acme.example.com","targets":null,"labels":null,"providerSpecific":null,"recordType":"A"}),
        );
        assert!(nulls.targets.is_empty() && nulls.labels.is_empty());
    }

    #[test]
    fn changes_accept_both_key_spellings_and_nulls() {
        let new: Changes = serde_json::from_value(json!({"create":[{"dnsName":"a"}],"updateOld":null,"updateNew":[],"delete":[{"dnsName":"b"}]})).unwrap();
        let old: Changes =
            serde_json::from_value(json!({"Create":[{"dnsName":"a"}],"Delete":[{"dnsName":"b"}]}))
                .unwrap();
        assert_eq!(new, old);
        assert_eq!(new.create[0].dns_name, "a");
        assert!(serde_json::from_str::<Changes>("{\"create\": 5}").is_err());
    }

    #[test]
    fn key_ignores_case_and_trailing_dot_but_not_set_identifier() {
        let a = ep(json!({"dnsName":"WWW.acme.example.com.","recordType":"a"}));
        let b = ep(json!({"dnsName":"www.acme.example.com","recordType":"A"}));
        let c = ep(json!({"dnsName":"www.acme.example.com","recordType":"A","setIdentifier":"eu"}));
        assert_eq!(a.key(), b.key());
        assert_ne!(b.key(), c.key());
    }

    #[test]
    fn filter_is_the_zone_domain() {
        assert_eq!(
            serde_json::to_value(scope().filter()).unwrap(),
            json!({"include":["acme.example.com"]})
        );
    }

    #[test]
    fn adjust_keeps_valid_records_unchanged_and_refuses_the_rest() {
        let good = ep(
            json!({"dnsName":"www.acme.example.com","recordType":"A","targets":["192.0.2.1"],"labels":{"resource":"ingress/acme/web"}}),
        );
        let txt = ep(
            json!({"dnsName":"a-www.acme.example.com","recordType":"TXT","targets":["\"heritage=external-dns,external-dns/owner=x\""]}),
        );
        let selfc = ep(
            json!({"dnsName":"foo.acme.example.com","recordType":"CNAME","targets":["foo.acme.example.com"]}),
        );
        let outside =
            ep(json!({"dnsName":"www.other.org","recordType":"A","targets":["192.0.2.1"]}));
        let ptr = ep(
            json!({"dnsName":"p.acme.example.com","recordType":"PTR","targets":["x.example.net"]}),
        );
        let bad =
            ep(json!({"dnsName":"b.acme.example.com","recordType":"A","targets":["not-an-ip"]}));
        let weighted = ep(
            json!({"dnsName":"w.acme.example.com","recordType":"A","targets":["192.0.2.1"],"setIdentifier":"eu"}),
        );
        let (keep, refused) = scope().adjust(vec![
            good.clone(),
            outside,
            txt.clone(),
            ptr,
            selfc.clone(),
            bad,
            weighted,
        ]);
        assert_eq!(keep, vec![good, txt, selfc]);
        let msgs: Vec<String> = refused.iter().map(|r| r.to_string()).collect();
        assert_eq!(msgs.len(), 4, "{msgs:?}");
        assert_eq!(
            msgs[0],
            "adjustendpoints www.other.org A: \"www.other.org\" is outside the zone acme.example.com"
        );
        assert!(
            msgs[1].starts_with(
                "adjustendpoints p.acme.example.com PTR: record type \"PTR\" is not supported"
            ),
            "{msgs:?}"
        );
        assert!(
            msgs[2]
                .starts_with("adjustendpoints b.acme.example.com A: invalid A value \"not-an-ip\""),
            "{msgs:?}"
        );
        assert!(msgs[3].contains("set identifier \"eu\""), "{msgs:?}");
    }

    #[test]
    fn apply_create_update_delete() {
        let s = scope();
        let a1 = ep(
            json!({"dnsName":"shop.acme.example.com","recordType":"A","targets":["198.51.100.7"],"recordTTL":120}),
        );
        let a2 = ep(
            json!({"dnsName":"shop.acme.example.com","recordType":"A","targets":["198.51.100.8"],"recordTTL":120}),
        );
        let old = ep(
            json!({"dnsName":"old.acme.example.com","recordType":"AAAA","targets":["2001:db8::5"]}),
        );
        let api = ep(
            json!({"dnsName":"api.acme.example.com","recordType":"CNAME","targets":["lb-7.cloud.example"],
            "providerSpecific":[{"name":"webhook/zone-class","value":"public"}]}),
        );
        let mut records = store(&[a1.clone(), old.clone()]);
        let changes = Changes {
            create: vec![api.clone()],
            update_old: vec![a1],
            update_new: vec![a2.clone()],
            delete: vec![old],
        };
        let (refused, notes) = s.apply(&mut records, changes);
        assert!(refused.is_empty() && notes.is_empty());
        assert_eq!(records.values().cloned().collect::<Vec<_>>(), vec![api, a2]);
    }

    #[test]
    fn apply_refuses_per_record_and_keeps_the_rest_of_the_batch() {
        let s = scope();
        let kept =
            ep(json!({"dnsName":"keep.acme.example.com","recordType":"A","targets":["192.0.2.1"]}));
        let bad_new = ep(
            json!({"dnsName":"keep.acme.example.com","recordType":"A","targets":["192.0.2.300"]}),
        );
        let good =
            ep(json!({"dnsName":"new.acme.example.com","recordType":"A","targets":["192.0.2.2"]}));
        let outside =
            ep(json!({"dnsName":"evil.example.org","recordType":"A","targets":["192.0.2.3"]}));
        let naptr = ep(
            json!({"dnsName":"n.acme.example.com","recordType":"NAPTR","targets":["100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:x@example.net!\" ."]}),
        );
        let mut records = store(std::slice::from_ref(&kept));
        let (refused, _) = s.apply(
            &mut records,
            Changes {
                create: vec![outside, good.clone(), naptr],
                update_old: vec![kept.clone()],
                update_new: vec![bad_new],
                delete: vec![ep(json!({"dnsName":"x.example.org","recordType":"A"}))],
            },
        );
        assert_eq!(
            records.values().cloned().collect::<Vec<_>>(),
            vec![kept, good]
        );
        let ops: Vec<(&str, &str)> = refused.iter().map(|r| (r.op, r.record.as_str())).collect();
        assert_eq!(
            ops,
            vec![
                ("delete", "x.example.org A"),
                ("updateNew", "keep.acme.example.com A"),
                ("create", "evil.example.org A"),
                ("create", "n.acme.example.com NAPTR"),
            ]
        );
    }

    #[test]
    fn apply_is_idempotent_and_delete_of_missing_is_fine() {
        let s = scope();
        let a =
            ep(json!({"dnsName":"a.acme.example.com","recordType":"A","targets":["192.0.2.1"]}));
        let mut records = BTreeMap::new();
        let batch = Changes {
            create: vec![a.clone()],
            ..Default::default()
        };
        s.apply(&mut records, batch.clone());
        s.apply(&mut records, batch);
        assert_eq!(records.len(), 1);
        let (refused, _) = s.apply(
            &mut records,
            Changes {
                delete: vec![a.clone(), a],
                ..Default::default()
            },
        );
        assert!(refused.is_empty() && records.is_empty());
    }

    #[test]
    fn txt_registry_records_round_trip_exactly_with_and_without_prefix() {
        let s = scope();
        let heritage = "\"heritage=external-dns,external-dns/owner=zg-e2e,external-dns/resource=ingress/acme/web\"";
        let eps = vec![
            ep(
                json!({"dnsName":"a-web.acme.example.com","recordType":"TXT","targets":[heritage],"labels":{"ownedRecord":"web.acme.example.com"}}),
            ),
            ep(
                json!({"dnsName":"reg-a-web.acme.example.com","recordType":"TXT","targets":[heritage]}),
            ),
            ep(
                json!({"dnsName":"reg.cname-x.acme.example.com","recordType":"TXT","targets":[heritage]}),
            ),
            ep(json!({"dnsName":"web.acme.example.com","recordType":"A","targets":["192.0.2.10"]})),
        ];
        let mut records = BTreeMap::new();
        let (refused, _) = s.apply(
            &mut records,
            Changes {
                create: eps.clone(),
                ..Default::default()
            },
        );
        assert!(refused.is_empty());
        let back: Vec<Endpoint> = records.values().cloned().collect();
        let json_in: Vec<String> = {
            let mut v: Vec<String> = eps
                .iter()
                .map(|e| serde_json::to_string(e).unwrap())
                .collect();
            v.sort();
            v
        };
        let mut json_out: Vec<String> = back
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect();
        json_out.sort();
        assert_eq!(json_in, json_out);
    }

    #[test]
    fn self_cname_is_stored_with_a_note() {
        let s = scope();
        let c = ep(
            json!({"dnsName":"foo.acme.example.com","recordType":"CNAME","targets":["foo.acme.example.com."]}),
        );
        let mut records = BTreeMap::new();
        let (refused, notes) = s.apply(
            &mut records,
            Changes {
                create: vec![c.clone()],
                ..Default::default()
            },
        );
        assert!(refused.is_empty());
        assert_eq!(records.values().next(), Some(&c));
        assert_eq!(notes.len(), 1);
        assert!(notes[0].starts_with("foo.acme.example.com CNAME: a CNAME to its own name"));
    }
}
