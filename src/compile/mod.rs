//! The zone compiler: a pure function from one `DNSZone` and the objects the store knows to the
//! zone's content (`ZoneData`) and a list of problems.
//!
//! `compile` runs in three stages:
//! 1. every input (the apex, `spec.records`, `spec.delegations`, then the selected source
//!    objects in the store's key order) turns into *candidate* records, each remembering the
//!    object and field it came from; invalid input is reported and skipped right there;
//! 2. `merge` applies the zone-wide rules (apex, nameserver names, delegation cuts, CNAME
//!    exclusivity) and drops the candidates that break them, reporting each;
//! 3. the survivors are added, in candidate order, to the `ZoneData`.
//!
//! Everything iterates `BTreeMap`s or `Vec`s, so the same inputs always give the same output and
//! the same problems in the same order.
//!
//! Decisions where the contract is silent (each is also documented next to its code):
//! - A source object without addresses yet (pending load balancer, Gateway without
//!   `status.addresses`) publishes nothing and is not a problem: that state is transient.
//! - A load-balancer entry (or VirtualServer external endpoint) that has both `ip` and
//!   `hostname` gives the IP only: both describe the same load balancer.
//! - Hostname annotations (`coredns.io/hostname`, `external-dns[.alpha].kubernetes.io/hostname`)
//!   are read on Ingresses, Services and routes (as ExternalDNS does); their values are fully
//!   qualified names, trailing dot optional.
//! - Names written on Kubernetes objects (hosts, route hostnames, annotations, load-balancer
//!   hostnames) follow RFC 1123 (letters, digits, `-`); DNS data written as such
//!   (`spec.records`, DNSEndpoints) may also use `_` (`_acme-challenge`, `_sip._tcp`).
//! - A name is checked only once it is known to be in this zone: an invalid hostname that is
//!   outside the domain is some other zone's business and silently ignored.

mod annotations;
mod apex;
mod delegation;
mod dnsendpoint;
mod gateway;
mod hosts;
mod incremental;
mod ingress;
mod merge;
mod names;
mod selector;
mod service;
mod static_records;
mod targets;
pub mod transfer;
pub(crate) mod txt;
mod virtualserver;

#[cfg(test)]
pub(crate) mod testing;

pub use dnsendpoint::{record_type as endpoint_record_type, refusal as endpoint_refusal};
pub use hosts::{lint_hosts, requested_hosts};
pub use incremental::{Delta, ZoneCompiler};
#[cfg(test)]
pub(crate) use static_records::record_type;
pub use static_records::txt_value_issues;
#[cfg(test)]
pub(crate) use targets::parse_value;

use crate::api::{DNSZone, SourceKind};
use crate::objects::store::ObjectStore;
use crate::objects::{Meta, RouteKind, SourceObject};
use crate::zone::{SoaData, ZoneData};
use hickory_proto::rr::{Name, RData};
use std::collections::BTreeSet;
use std::fmt;

/// How `compile` chooses the namespaces it reads source objects from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompileOptions {
    /// Namespaces objects may be read from. None: as the DNSZone's spec says (its own namespace
    /// when `spec.sources.namespaces` is empty, else exactly the listed ones; files mode trusts
    /// that). Some(set): the caller (cluster mode) already applied consent; use exactly this set.
    pub namespaces: Option<BTreeSet<String>>,
}

/// Something in the inputs that was invalid, or valid but dropped by a zone rule.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Problem {
    /// The object, as `Ingress acme/web` or `DNSZone acme/zone`.
    pub object: String,
    /// The field of that object, as `spec.rules[0].host`.
    pub field: String,
    /// What is wrong and what the compiler did about it.
    pub message: String,
}

impl Problem {
    pub fn new(
        object: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            object: object.into(),
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    /// `Ingress acme/web: spec.rules[0].host: <message>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.object, self.message)
        } else {
            write!(f, "{}: {}: {}", self.object, self.field, self.message)
        }
    }
}

/// The compiler's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compiled {
    pub data: ZoneData,
    /// Deterministic order: inputs in compile order (apex, static records, delegations, source
    /// objects by kind/namespace/name), then the merge rules in rule order. No duplicates.
    pub problems: Vec<Problem>,
}

/// Compiles one DNSZone from the objects in `store`.
///
/// If `spec.domain` itself is not a valid domain name (the apiserver rejects such zones; a
/// manifest file may not) the result is an empty zone rooted at `.` with a problem on
/// `spec.domain`; callers must not serve it.
pub fn compile(zone: &DNSZone, store: &ObjectStore, opts: &CompileOptions) -> Compiled {
    let mut zc = ZoneCompiler::default();
    zc.update(zone, store, opts);
    zc.into_compiled()
}

/// The DNSZone's namespace (`default` when unset).
pub(crate) fn zone_namespace(zone: &DNSZone) -> &str {
    zone.metadata.namespace.as_deref().unwrap_or("default")
}

/// Which source objects a zone reads: its kinds, namespaces and label selector.
pub(crate) struct Selection {
    namespaces: BTreeSet<String>,
    kinds: BTreeSet<SourceKind>,
    selector: selector::Selector,
}

impl Selection {
    /// The zone's selection; `Err((field, message))` when its selector is invalid.
    pub(crate) fn new(zone: &DNSZone, opts: &CompileOptions) -> Result<Self, (String, String)> {
        let namespaces: BTreeSet<String> = match &opts.namespaces {
            Some(set) => set.clone(),
            None if zone.spec.sources.namespaces.is_empty() => {
                BTreeSet::from([zone_namespace(zone).to_string()])
            }
            None => zone
                .spec
                .sources
                .namespaces
                .iter()
                .map(|n| n.0.clone())
                .collect(),
        };
        let kinds: BTreeSet<SourceKind> = zone.spec.sources.kinds.iter().copied().collect();
        let selector = selector::Selector::new(zone.spec.sources.selector.as_ref())?;
        Ok(Self {
            namespaces,
            kinds,
            selector,
        })
    }

    /// Whether the zone reads `obj`.
    pub(crate) fn selects(&self, obj: &SourceObject) -> bool {
        let Some(kind) = source_kind(obj) else {
            return false;
        };
        let meta = obj.meta();
        self.kinds.contains(&kind)
            && self.namespaces.contains(&meta.namespace)
            && !selector::ignored(&meta.labels)
            && self.selector.matches(&meta.labels)
    }
}

/// Turns one selected source object into candidates and problems.
pub(crate) fn compile_object(c: &mut Compiler<'_>, obj: &SourceObject) {
    match obj {
        SourceObject::Ingress(o) => ingress::compile(c, obj, o),
        SourceObject::Service(o) => service::compile(c, obj, o),
        SourceObject::Route(k, o) => gateway::compile(c, obj, *k, o),
        SourceObject::DnsEndpoint(o) => dnsendpoint::compile(c, obj, o),
        SourceObject::VirtualServer(o) => virtualserver::compile(c, obj, o),
        SourceObject::Gateway(_) => {}
    }
}

fn source_kind(obj: &SourceObject) -> Option<SourceKind> {
    Some(match obj {
        SourceObject::Ingress(_) => SourceKind::Ingress,
        SourceObject::Service(_) => SourceKind::Service,
        SourceObject::Route(RouteKind::HTTPRoute, _) => SourceKind::HTTPRoute,
        SourceObject::Route(RouteKind::GRPCRoute, _) => SourceKind::GRPCRoute,
        SourceObject::Route(RouteKind::TLSRoute, _) => SourceKind::TLSRoute,
        SourceObject::DnsEndpoint(_) => SourceKind::DNSEndpoint,
        SourceObject::VirtualServer(_) => SourceKind::VirtualServer,
        SourceObject::Gateway(_) => return None,
    })
}

/// Who contributed a candidate, for problem reports and CNAME conflicts.
#[derive(Clone, Debug)]
pub(crate) struct Origin {
    /// `Ingress acme/web`.
    pub object: String,
    pub seniority: Seniority,
}

/// Orders contributors, oldest first: the DNSZone's own data, then objects by
/// `creationTimestamp` (objects without one, as in manifest files, after those with one), then
/// kind, namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Seniority {
    Zone,
    Object {
        /// (timestamp missing, RFC 3339 timestamp): RFC 3339 UTC strings order chronologically.
        created: (bool, String),
        kind: &'static str,
        namespace: String,
        name: String,
    },
}

/// What a candidate is, for the merge rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// From `spec.nameservers` and the zone's status: apex NS and our nameservers' glue.
    Apex,
    /// The DNSZone's own data: `spec.records` and `spec.delegations`.
    Zone,
    /// A DNSEndpoint: DNS data written as such; like `spec.records` it may delegate and give
    /// glue.
    Endpoint,
    /// A name published by an Ingress, Service, route or VirtualServer.
    Host,
}

/// One record before the merge rules.
#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    pub name: Name,
    pub ttl: u32,
    pub rdata: RData,
    /// Index into `Compiler::origins`.
    pub origin: usize,
    pub class: Class,
    /// The field the record came from (its name, or its value for static records).
    pub field: String,
}

/// The compiler's working state.
pub(crate) struct Compiler<'a> {
    pub zone: &'a DNSZone,
    pub store: &'a ObjectStore,
    /// `DNSZone acme/zone`.
    pub zone_object: String,
    /// `acme.example.com`: lowercase, no trailing dot.
    pub domain: String,
    /// `acme.example.com.`
    pub origin: Name,
    /// `spec.ttl`.
    pub ttl: u32,
    /// Contributors; index 0 is the DNSZone.
    pub origins: Vec<Origin>,
    pub candidates: Vec<Candidate>,
    pub problems: Vec<Problem>,
    /// The zone's nameserver names (apex NS targets), in order.
    pub nameservers: Vec<Name>,
    pub soa: Option<SoaData>,
}

/// Index of the DNSZone in `Compiler::origins`.
pub(crate) const ZONE_ORIGIN: usize = 0;

/// A source object being compiled: who it is and what its annotations say.
pub(crate) struct Source<'o> {
    /// Index into `Compiler::origins`.
    pub origin: usize,
    /// `Ingress acme/web`.
    pub object: String,
    pub meta: &'o Meta,
    pub class: Class,
    /// `spec.ttl`, or the TTL annotation when it is valid.
    pub ttl: u32,
    /// The target annotation's records; they replace the object's own targets.
    pub target_override: Option<Vec<RData>>,
    /// Problems with the TTL and target annotations: reported only once the object publishes
    /// something in this zone (see `Compiler::flush`), so that an object of another zone does
    /// not flood this one with its problems.
    pub deferred: Vec<Problem>,
}

impl Source<'_> {
    /// Whether the target annotation replaces the object's own targets at `names`: it does
    /// unless every annotation target is a CNAME to one of the names themselves. A target equal
    /// to the object's own host (what the Desktop Kubernetes example Ingress carries, so that
    /// ExternalDNS publishes it at all) means "this host": the object's own addresses are used,
    /// not a CNAME loop.
    pub(crate) fn overrides(&self, names: &[(Name, String)]) -> bool {
        self.target_override.as_ref().is_some_and(|over| {
            !over
                .iter()
                .all(|r| matches!(r, RData::CNAME(t) if names.iter().any(|(n, _)| *n == t.0)))
        })
    }
}

impl<'a> Compiler<'a> {
    /// A compiler for `zone` (apex `origin`, `domain` its lowercase text) with nothing
    /// gathered yet; `zone_origin` is the zone's own origin (index 0).
    pub(crate) fn new(
        zone: &'a DNSZone,
        store: &'a ObjectStore,
        zone_origin: &Origin,
        domain: &str,
        origin: &Name,
    ) -> Self {
        Compiler {
            zone,
            store,
            zone_object: zone_origin.object.clone(),
            domain: domain.to_string(),
            origin: origin.clone(),
            ttl: zone.spec.ttl,
            origins: vec![zone_origin.clone()],
            candidates: Vec::new(),
            problems: Vec::new(),
            nameservers: Vec::new(),
            soa: None,
        }
    }

    /// A compiler for the same zone with nothing gathered yet.
    pub(crate) fn fresh(&self) -> Compiler<'a> {
        Compiler::new(
            self.zone,
            self.store,
            &self.origins[0],
            &self.domain,
            &self.origin,
        )
    }

    pub(crate) fn report(
        &mut self,
        object: &str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.problems.push(Problem::new(object, field, message));
    }

    pub(crate) fn report_zone(&mut self, field: impl Into<String>, message: impl Into<String>) {
        let object = self.zone_object.clone();
        self.report(&object, field, message);
    }

    pub(crate) fn add(
        &mut self,
        origin: usize,
        class: Class,
        name: Name,
        ttl: u32,
        rdata: RData,
        field: impl Into<String>,
    ) {
        self.candidates.push(Candidate {
            name,
            ttl,
            rdata,
            origin,
            class,
            field: field.into(),
        });
    }

    /// Starts a source object: registers it as a contributor and reads its TTL annotation and,
    /// for `Class::Host` objects, its target annotation. An invalid TTL annotation leaves
    /// `spec.ttl`; invalid target items are skipped, and when no item is valid the object keeps
    /// its own targets.
    pub(crate) fn source<'o>(&mut self, obj: &'o SourceObject, class: Class) -> Source<'o> {
        let meta = obj.meta();
        let key = obj.key();
        let object = key.to_string();
        self.origins.push(Origin {
            object: object.clone(),
            seniority: Seniority::Object {
                created: match &meta.creation_timestamp {
                    Some(t) => (false, t.clone()),
                    None => (true, String::new()),
                },
                kind: key.kind,
                namespace: key.namespace,
                name: key.name,
            },
        });
        let mut src = Source {
            origin: self.origins.len() - 1,
            object,
            meta,
            class,
            ttl: self.ttl,
            target_override: None,
            deferred: Vec::new(),
        };
        if let Some((field, ttl)) = annotations::ttl(meta) {
            match ttl {
                Ok(ttl) => src.ttl = ttl,
                Err(e) => src.deferred.push(Problem::new(
                    &src.object,
                    field,
                    format!("{e}; using spec.ttl ({})", self.ttl),
                )),
            }
        }
        if class == Class::Host
            && let Some((field, items)) = annotations::targets(meta)
        {
            let mut targets = Vec::new();
            for item in items {
                match targets::target_rdata(item) {
                    Ok(rdata) => targets.push(rdata),
                    Err(e) => src.deferred.push(Problem::new(
                        &src.object,
                        field.clone(),
                        format!("{e}; target ignored"),
                    )),
                }
            }
            // Only valid items replace the object's targets; if none is valid the object keeps
            // its own (the problems say why the annotation had no effect).
            src.target_override = (!targets.is_empty()).then_some(targets);
        }
        src
    }

    /// A hostname written on a source object: `None` when it is outside the zone (silently) or
    /// invalid (reported against `field`).
    pub(crate) fn host(
        &mut self,
        src: &Source<'_>,
        raw: &str,
        field: &str,
        syntax: names::Syntax,
    ) -> Option<Name> {
        if !crate::domain::within(raw, &self.domain) {
            return None;
        }
        match names::parse_host(raw, syntax, true) {
            Ok(name) => Some(name),
            Err(e) => {
                self.report(&src.object, field, format!("{e}; name ignored"));
                None
            }
        }
    }

    /// The names of the object's hostname annotations that are in this zone.
    pub(crate) fn annotation_hosts(&mut self, src: &Source<'_>) -> Vec<(Name, String)> {
        let mut out = Vec::new();
        for (field, item) in annotations::hostnames(src.meta) {
            if let Some(name) = self.host(src, item, &field, names::Syntax::Host) {
                out.push((name, field));
            }
        }
        out
    }

    /// Reports the object's deferred annotation problems (the final list drops duplicates).
    pub(crate) fn flush(&mut self, src: &Source<'_>) {
        self.problems.extend(src.deferred.iter().cloned());
    }

    /// Publishes the object's targets (or its target annotation's) at every name, each name
    /// once (the first field that gave it is the one reported).
    pub(crate) fn publish(
        &mut self,
        src: &Source<'_>,
        names: Vec<(Name, String)>,
        targets: Vec<RData>,
    ) {
        if names.is_empty() {
            return;
        }
        self.flush(src);
        let targets = match &src.target_override {
            Some(over) if src.overrides(&names) => over.clone(),
            _ => targets,
        };
        let mut seen = BTreeSet::new();
        for (name, field) in names {
            if !seen.insert(name.clone()) {
                continue;
            }
            for rdata in &targets {
                self.add(
                    src.origin,
                    src.class,
                    name.clone(),
                    src.ttl,
                    rdata.clone(),
                    field.clone(),
                );
            }
        }
    }

    /// Load-balancer style targets: per entry the IP when set (it must be an IP address), else
    /// the hostname as a CNAME target. Problems are reported against `object`.
    pub(crate) fn lb_targets<'e>(
        &mut self,
        object: &str,
        list: &str,
        entries: impl IntoIterator<Item = (Option<&'e str>, Option<&'e str>)>,
    ) -> Vec<RData> {
        let mut out = Vec::new();
        for (k, (ip, hostname)) in entries.into_iter().enumerate() {
            let field = format!("{list}[{k}]");
            let ip = ip.filter(|s| !s.is_empty());
            let hostname = hostname.filter(|s| !s.is_empty());
            let result = match (ip, hostname) {
                (Some(ip), _) => targets::ip_rdata(ip).map_err(|e| (format!("{field}.ip"), e)),
                (None, Some(h)) => targets::cname_rdata(h, names::Syntax::Host)
                    .map_err(|e| (format!("{field}.hostname"), e)),
                (None, None) => continue,
            };
            match result {
                Ok(rdata) => out.push(rdata),
                Err((field, e)) => self.report(object, field, format!("{e}; address ignored")),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
