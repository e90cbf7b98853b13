//! Test fixtures: DNSZones and source objects from JSON, and accessors for compiled zones.

use super::{CompileOptions, Compiled, compile};
use crate::api::DNSZone;
use crate::objects::SourceObject;
use crate::objects::store::{ObjectStore, ZoneEntry};
use hickory_proto::rr::{Name, RecordType};
use serde_json::{Value, json};
use std::sync::Arc;

/// A DNSZone `acme/z` for `acme.example.com` with `extra` merged into its spec.
pub(crate) fn zone(extra: Value) -> DNSZone {
    let mut spec = json!({"domain": "acme.example.com"});
    for (k, v) in extra.as_object().expect("spec object") {
        spec[k] = v.clone();
    }
    zone_json(
        json!({"apiVersion": "zonegate.dev/v1alpha1", "kind": "DNSZone",
        "metadata": {"name": "z", "namespace": "acme"}, "spec": spec}),
    )
}

pub(crate) fn zone_json(v: Value) -> DNSZone {
    serde_json::from_value(v).expect("DNSZone fixture")
}

pub(crate) fn with_status(mut z: DNSZone, status: Value) -> DNSZone {
    z.status = Some(serde_json::from_value(status).expect("status fixture"));
    z
}

/// A source object from JSON with `apiVersion` and `kind`.
pub(crate) fn obj(v: Value) -> SourceObject {
    let api = v["apiVersion"].as_str().expect("apiVersion").to_string();
    let kind = v["kind"].as_str().expect("kind").to_string();
    SourceObject::from_value(&api, &kind, v)
        .expect("valid object")
        .expect("known kind")
}

pub(crate) fn store_of(objs: &[Value]) -> ObjectStore {
    let mut store = ObjectStore::default();
    for v in objs {
        store.insert_object(obj(v.clone()));
    }
    store
}

/// Adds a DNSZone to the store's zones.
pub(crate) fn add_zone(store: &mut ObjectStore, z: DNSZone) {
    let key = (
        z.metadata.namespace.clone().unwrap_or_default(),
        z.metadata.name.clone().unwrap_or_default(),
    );
    store.zones.insert(
        key,
        ZoneEntry {
            zone: Arc::new(z),
            origin: "test".into(),
        },
    );
}

pub(crate) fn compile_zone(z: DNSZone, objs: &[Value]) -> Compiled {
    compile(&z, &store_of(objs), &CompileOptions::default())
}

pub(crate) fn n(s: &str) -> Name {
    Name::from_ascii(format!("{}.", s.trim_end_matches('.'))).expect("test name")
}

/// The RRset's values in presentation form, in insertion order; empty when absent.
pub(crate) fn rrset(out: &Compiled, name: &str, rtype: RecordType) -> Vec<String> {
    out.data
        .rrset(&n(name), rtype)
        .map(|s| s.rdata.iter().map(|r| r.to_string()).collect())
        .unwrap_or_default()
}

/// Whether the zone has no records at all at `name`.
pub(crate) fn absent(out: &Compiled, name: &str) -> bool {
    !out.data.records.contains_key(&n(name))
}

pub(crate) fn ttl_of(out: &Compiled, name: &str, rtype: RecordType) -> Option<u32> {
    out.data.rrset(&n(name), rtype).map(|s| s.ttl)
}

/// Every (name, type) in the zone other than the apex NS and nameserver glue.
pub(crate) fn published(out: &Compiled) -> Vec<(String, RecordType)> {
    // in canonical name order (records is a hash map)
    out.data
        .names_sorted()
        .into_iter()
        .flat_map(|name| {
            out.data.records[name]
                .keys()
                .map(move |t| (name.to_ascii(), *t))
        })
        .filter(|(name, t)| !(name == "acme.example.com." && *t == RecordType::NS))
        .collect()
}

pub(crate) fn problems(out: &Compiled) -> Vec<String> {
    out.problems.iter().map(|p| p.to_string()).collect()
}

pub(crate) fn has_problem(out: &Compiled, needle: &str) -> bool {
    out.problems.iter().any(|p| p.to_string().contains(needle))
}

// ------------------------------------------------------------------ object builders

pub(crate) fn meta(ns: &str, name: &str) -> Value {
    json!({"name": name, "namespace": ns})
}

/// `status.loadBalancer.ingress` entries from `"ip"` or `"hostname"` strings.
pub(crate) fn lb(addrs: &[&str]) -> Value {
    let entries: Vec<Value> = addrs
        .iter()
        .map(|a| {
            if a.parse::<std::net::IpAddr>().is_ok() {
                json!({"ip": a})
            } else {
                json!({"hostname": a})
            }
        })
        .collect();
    json!({"loadBalancer": {"ingress": entries}})
}

/// An Ingress in `acme` with one rule per host.
pub(crate) fn ingress(name: &str, hosts: &[&str], addrs: &[&str]) -> Value {
    let rules: Vec<Value> = hosts.iter().map(|h| json!({"host": h})).collect();
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta("acme", name),
        "spec": {"rules": rules}, "status": lb(addrs)})
}

/// A LoadBalancer Service.
pub(crate) fn lb_service(ns: &str, name: &str, addrs: &[&str]) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": meta(ns, name),
        "spec": {"type": "LoadBalancer"}, "status": lb(addrs)})
}

/// A DNSEndpoint in `acme` with the given endpoints.
pub(crate) fn dns_endpoint(name: &str, endpoints: Value) -> Value {
    json!({"apiVersion": "externaldns.k8s.io/v1alpha1", "kind": "DNSEndpoint", "metadata": meta("acme", name),
        "spec": {"endpoints": endpoints}})
}

/// Sets `metadata.<key>` of a fixture.
pub(crate) fn with_meta(mut v: Value, key: &str, value: Value) -> Value {
    v["metadata"][key] = value;
    v
}
