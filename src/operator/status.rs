//! What a DNSZone's status says: its nameservers and their addresses, the records to create at
//! the parent, its secondaries' serials, its DNSSEC key's DS and DNSKEY, and the `Accepted`,
//! `Ready`, `Delegated`, `SecondariesInSync` and `DNSSECReady` conditions. Pure: observed objects in, status out, plus the events that
//! a change of status deserves.

use super::desired::{nameserver_hostnames, nameserver_object_name};
use super::placement::Placements;
use crate::api::{DNSZone, DNSZoneStatus, DnssecStatus, NameserverStatus, SecondaryStatus};
use crate::domain::{Verdict, is_at_or_below, normalize};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use std::net::IpAddr;

pub const ACCEPTED: &str = "Accepted";
pub const READY: &str = "Ready";
pub const DELEGATED: &str = "Delegated";
pub const SECONDARIES_IN_SYNC: &str = "SecondariesInSync";
pub const DNSSEC_READY: &str = "DNSSECReady";

/// What the last look at the zone's secondaries (`spec.transfer.notify`) found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecondariesCheck {
    /// Checks are turned off (`--secondary-check-interval 0`).
    Disabled,
    /// Not asked yet.
    Pending,
    /// The zone's servers have not agreed on a serial yet (the serial ConfigMap is empty).
    SerialUnknown,
    /// Each target's answer (the serial it serves, or why none), against the zone's `serial`
    /// when it was asked.
    Checked {
        serial: u32,
        answers: Vec<(String, Result<u32, String>)>,
    },
}

/// What the last look at the parent zone found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DelegationCheck {
    /// Checks are turned off.
    Disabled,
    /// Not checked yet.
    Pending,
    /// Every parent nameserver that answered returns exactly our NS set; `secure`: and one of
    /// our DS records (a signed zone).
    Delegated {
        parent: String,
        servers: Vec<String>,
        secure: bool,
        /// The DS records the parent servers returned (`dnssec::ds::text` form; empty when the
        /// zone is unsigned and DS was not asked).
        parent_ds: std::collections::BTreeSet<String>,
    },
    /// A signed zone delegated with the right NS set, without a DS at the parent.
    DsMissing { parent: String, detail: String },
    /// A signed zone whose parent has DS records, none of them for our keys.
    DsMismatch { parent: String, detail: String },
    /// The parent has no delegation for the zone.
    NotDelegated { parent: String, detail: String },
    /// The parent delegates to other nameservers (or glue with other addresses).
    Mismatch { parent: String, detail: String },
    /// No parent nameserver could be asked.
    Unreachable { detail: String },
}

/// What the status is computed from.
pub struct Observed<'a> {
    pub verdict: &'a Verdict,
    /// Per nameserver (index 0 is ns1): its Deployment and Service as the apiserver has them.
    pub deployments: Vec<Option<&'a Deployment>>,
    pub services: Vec<Option<&'a Service>>,
    /// Addresses of the nodes (for NodePort Services).
    pub node_addresses: &'a [String],
    pub delegation: &'a DelegationCheck,
    /// Where a DNSSEC key rollover stands (`rollover.rs`), for `status.dnssec.rollover`.
    pub rollover: Option<&'a str>,
    /// The zone's secondaries (ignored without `spec.transfer.notify`).
    pub secondaries: &'a SecondariesCheck,
    /// TTL of the records in `status.delegation`.
    pub delegation_ttl: u32,
    /// The platform's placements, for `spec.nameservers.placement`.
    pub placements: &'a Placements,
    /// The ConfigMap `<name>-serial` the nameservers publish their serial through.
    pub serial_configmap: Option<&'a ConfigMap>,
    /// The key Secret `<name>-dnssec` (read only with `spec.dnssec.enabled`).
    pub dnssec_secret: Option<&'a Secret>,
}

/// `status.serial`, `status.records` and `status.lastServed` from the serial ConfigMap: the
/// serial once a nameserver wrote one, the count and time only when they describe that serial.
fn served_fields(cm: Option<&ConfigMap>) -> (Option<u32>, Option<u64>, Option<Time>) {
    let Some(data) = cm.and_then(|c| c.data.as_ref()) else {
        return (None, None, None);
    };
    let serial = crate::feed::kube::serial_of(data);
    if serial == 0 {
        return (None, None, None);
    }
    match crate::feed::kube::served_of(data) {
        Some(s) => (
            Some(serial),
            Some(s.records),
            i64::try_from(s.since)
                .ok()
                .and_then(|t| k8s_openapi::jiff::Timestamp::from_second(t).ok())
                .map(Time),
        ),
        None => (Some(serial), None, None),
    }
}

/// External addresses of a nameserver Service: load-balancer IPs or hostnames, node addresses
/// for NodePort, the cluster IPs for ClusterIP.
pub fn service_addresses(svc: &Service, node_addresses: &[String]) -> Vec<String> {
    let type_ = svc
        .spec
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("ClusterIP");
    let mut out: Vec<String> = Vec::new();
    match type_ {
        "LoadBalancer" => {
            for ing in svc
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref())
                .into_iter()
                .flatten()
            {
                if let Some(a) = ing.ip.as_ref().or(ing.hostname.as_ref())
                    && !a.is_empty()
                {
                    out.push(a.clone());
                }
            }
        }
        "NodePort" => out.extend(node_addresses.iter().cloned()),
        _ => {
            let spec = svc.spec.as_ref();
            let ips = spec
                .and_then(|s| s.cluster_ips.clone())
                .or_else(|| spec.and_then(|s| s.cluster_ip.clone()).map(|ip| vec![ip]))
                .unwrap_or_default();
            out.extend(ips.into_iter().filter(|ip| !ip.is_empty() && ip != "None"));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|a| seen.insert(a.clone()));
    out
}

/// The CoreDNS server block forwarding `domain` to the cluster IPs of the nameserver
/// Services (port 53), nameserver order kept; `None` while a Service is missing or has no
/// cluster IP yet. `policy sequential`: ns1 first, the others on failure.
pub fn coredns_stanza(domain: &str, services: &[Option<&Service>]) -> Option<String> {
    let mut targets = Vec::new();
    for svc in services {
        let spec = (*svc)?.spec.as_ref()?;
        let ips = spec
            .cluster_ips
            .clone()
            .or_else(|| spec.cluster_ip.clone().map(|ip| vec![ip]))
            .unwrap_or_default();
        let before = targets.len();
        for ip in ips.iter().filter(|ip| !ip.is_empty() && *ip != "None") {
            targets.push(if ip.contains(':') {
                format!("[{ip}]:53")
            } else {
                format!("{ip}:53")
            });
        }
        if targets.len() == before {
            return None;
        }
    }
    if targets.is_empty() {
        return None;
    }
    Some(format!(
        "{domain}:53 {{\n    errors\n    cache 30\n    forward . {} {{\n        policy sequential\n    }}\n}}\n",
        targets.join(" ")
    ))
}

/// Addresses of the Ready nodes: each node's ExternalIPs, or its InternalIPs when it has none.
/// Sorted and without duplicates.
pub fn node_addresses(nodes: &[&Node]) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    for n in nodes {
        let Some(status) = &n.status else { continue };
        let ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        if !ready {
            continue;
        }
        let addrs = status.addresses.as_deref().unwrap_or_default();
        let of = |t: &str| -> Vec<String> {
            addrs
                .iter()
                .filter(|a| a.type_ == t)
                .map(|a| a.address.clone())
                .collect()
        };
        let ext = of("ExternalIP");
        out.extend(if ext.is_empty() {
            of("InternalIP")
        } else {
            ext
        });
    }
    out.into_iter().collect()
}

/// The parent-zone records, in zone-file text: NS for every nameserver, then glue A/AAAA for the
/// nameserver names inside the zone (IP addresses only; a load-balancer hostname cannot be glue).
pub fn delegation_records(domain: &str, nameservers: &[NameserverStatus], ttl: u32) -> Vec<String> {
    let domain = normalize(domain);
    let mut out: Vec<String> = nameservers
        .iter()
        .map(|ns| format!("{domain}. {ttl} IN NS {}.", ns.hostname))
        .collect();
    for ns in nameservers {
        if !is_at_or_below(&ns.hostname, &domain) {
            continue;
        }
        for a in &ns.addresses {
            match a.parse::<IpAddr>() {
                Ok(IpAddr::V4(ip)) => out.push(format!("{}. {ttl} IN A {ip}", ns.hostname)),
                Ok(IpAddr::V6(ip)) => out.push(format!("{}. {ttl} IN AAAA {ip}", ns.hostname)),
                Err(_) => {}
            }
        }
    }
    out
}

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    generation: Option<i64>,
) -> Condition {
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        // Filled in by `carry_transition_times`.
        last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    }
}

/// `Accepted=True`'s message: the domain, and any `spec.records` TXT value that would lose
/// text or change meaning, with the quoted form to use (the apiserver cannot check those).
fn accepted_message(zone: &DNSZone, domain: &str) -> String {
    let issues = crate::compile::txt_value_issues(zone);
    if issues.is_empty() {
        format!("this zone serves {domain}")
    } else {
        format!("this zone serves {domain}; {}", issues.join("; "))
    }
}

/// The field problems an `Accepted=True` message names (what [`accepted_message`] appends
/// after the domain, which has no `;`), if any.
fn accepted_problems(message: &str) -> Option<&str> {
    message.split_once("; ").map(|(_, problems)| problems)
}

/// The status the zone should have. `lastTransitionTime`s are taken from `zone.status` when a
/// condition keeps its status, else set to `now`.
pub fn compute_status(zone: &DNSZone, obs: &Observed<'_>, now: Time) -> DNSZoneStatus {
    let generation = zone.metadata.generation;
    let name = zone.metadata.name.as_deref().unwrap_or_default();
    let domain = normalize(&zone.spec.domain);
    let hostnames = nameserver_hostnames(zone);

    let (accepted, mut nameservers, mut delegation, ready) = match obs.verdict {
        Verdict::Rejected { reason, message } => (
            condition(ACCEPTED, "False", reason, message.clone(), generation),
            Vec::new(),
            Vec::new(),
            condition(
                READY,
                "False",
                "NotAccepted",
                "the zone is not accepted (see the Accepted condition), so it has no nameservers"
                    .into(),
                generation,
            ),
        ),
        Verdict::Accepted => {
            let nameservers: Vec<NameserverStatus> = hostnames
                .iter()
                .enumerate()
                .map(|(i, h)| NameserverStatus {
                    hostname: h.clone(),
                    addresses: obs
                        .services
                        .get(i)
                        .copied()
                        .flatten()
                        .map(|s| service_addresses(s, obs.node_addresses))
                        .unwrap_or_default(),
                })
                .collect();
            let mut ready = ready_condition(zone, name, &domain, &nameservers, obs, generation);
            if let Err(e) = obs
                .placements
                .for_zone(zone.spec.nameservers.placement.as_deref())
            {
                ready = condition(
                    READY,
                    "False",
                    "PlacementProfileUnknown",
                    format!("{e}; the pods run with the platform's default placement meanwhile"),
                    generation,
                );
            }
            let all_addressed = nameservers.iter().all(|n| !n.addresses.is_empty());
            let delegation = if all_addressed {
                delegation_records(&domain, &nameservers, obs.delegation_ttl)
            } else {
                Vec::new()
            };
            (
                condition(
                    ACCEPTED,
                    "True",
                    "Accepted",
                    accepted_message(zone, &domain),
                    generation,
                ),
                nameservers,
                delegation,
                ready,
            )
        }
    };
    let mut dnssec = None;
    let mut dnssec_ready = None;
    if let Some(spec) = zone.spec.dnssec_enabled() {
        let (c, d) = dnssec_condition(zone, spec.algorithm, obs, generation);
        dnssec_ready = Some(c);
        dnssec = d;
    }
    let ds = dnssec.as_ref().map(|d: &DnssecStatus| d.ds.as_slice());
    let delegated = delegated_condition(
        obs,
        &domain,
        &hostnames,
        &delegation,
        ds.unwrap_or_default(),
        generation,
    );
    if !obs.verdict.is_accepted() {
        nameservers.clear();
        delegation.clear();
    }
    let mut conditions = vec![accepted, ready, delegated];
    let mut secondaries = Vec::new();
    if zone
        .spec
        .transfer
        .as_ref()
        .is_some_and(|t| !t.notify.is_empty())
    {
        let (c, s) = secondaries_condition(obs, generation);
        conditions.push(c);
        secondaries = s;
    }
    conditions.extend(dnssec_ready);
    carry_transition_times(
        zone.status
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or_default(),
        &mut conditions,
        now,
    );
    let core_dns_stanza = obs
        .verdict
        .is_accepted()
        .then(|| coredns_stanza(&domain, &obs.services))
        .flatten();
    let (serial, records, last_served) = if obs.verdict.is_accepted() {
        served_fields(obs.serial_configmap)
    } else {
        (None, None, None)
    };
    DNSZoneStatus {
        observed_generation: generation,
        conditions,
        serial,
        records,
        last_served,
        nameservers,
        delegation,
        core_dns_stanza,
        secondaries,
        dnssec,
    }
}

/// `DNSSECReady` and `status.dnssec` of a zone with `spec.dnssec.enabled`: True with the key
/// tag, DS and DNSKEY of the key Secret's keys when it exists, parses and is of
/// `spec.dnssec.algorithm` (the nameservers sign with the same Secret); else `KeyMissing` or
/// `KeyInvalid`. The DS and DNSKEY lines are `zonegate ds`'s (`ZoneKeys::ds_presentation`).
pub fn dnssec_condition(
    zone: &DNSZone,
    algorithm: crate::dnssec::keys::Algorithm,
    obs: &Observed<'_>,
    generation: Option<i64>,
) -> (Condition, Option<DnssecStatus>) {
    let ns = zone.metadata.namespace.as_deref().unwrap_or_default();
    let name = zone.metadata.name.as_deref().unwrap_or_default();
    let secret = crate::dnssec::source::secret_name(name);
    if !obs.verdict.is_accepted() {
        let m = "the zone is not accepted, so it has no signing key".to_string();
        return (
            condition(DNSSEC_READY, "Unknown", "NotAccepted", m, generation),
            None,
        );
    }
    let Some(s) = obs.dnssec_secret else {
        let m = format!(
            "the key Secret {secret} does not exist yet (the operator creates it; the nameserver \
             pods wait for it)"
        );
        return (
            condition(DNSSEC_READY, "False", "KeyMissing", m, generation),
            None,
        );
    };
    let what = format!("Secret {ns}/{secret}");
    let data = s.data.as_ref();
    let keys = crate::dnssec::keys::ZoneKeys::from_entries(&what, |k| {
        data.and_then(|d| d.get(k)).map(|b| b.0.as_slice())
    })
    .and_then(|keys| {
        crate::dnssec::source::check_algorithm(ns, name, &what, &keys, algorithm).map(|()| keys)
    });
    match keys {
        Ok(keys) => {
            let domain = zone.spec.domain.trim_end_matches('.');
            let tag = keys.active.key_tag();
            let m = format!(
                "signing with key {tag} ({algorithm}) from {what}; give the registrar the DS in \
                 status.dnssec.ds"
            );
            (
                condition(DNSSEC_READY, "True", "KeyLoaded", m, generation),
                Some(DnssecStatus {
                    key_tag: tag,
                    ds: keys.ds_presentation(domain, crate::dnssec::keys::DS_TTL),
                    dnskey: keys.dnskey_presentation(domain, crate::dnssec::keys::DS_TTL),
                    rollover: obs.rollover.map(str::to_string),
                }),
            )
        }
        Err(e) => (
            condition(DNSSEC_READY, "False", "KeyInvalid", e, generation),
            None,
        ),
    }
}

/// `SecondariesInSync` and `status.secondaries`.
fn secondaries_condition(
    obs: &Observed<'_>,
    generation: Option<i64>,
) -> (Condition, Vec<SecondaryStatus>) {
    let unknown = |reason: &str, message: &str| {
        (
            condition(
                SECONDARIES_IN_SYNC,
                "Unknown",
                reason,
                message.into(),
                generation,
            ),
            Vec::new(),
        )
    };
    if !obs.verdict.is_accepted() {
        return unknown(
            "NotAccepted",
            "the zone is not accepted, so its secondaries are not checked",
        );
    }
    let (serial, answers) = match obs.secondaries {
        SecondariesCheck::Disabled => {
            return unknown(
                "CheckDisabled",
                "the operator does not check secondaries (--secondary-check-interval 0)",
            );
        }
        SecondariesCheck::Pending => {
            return unknown("CheckPending", "the secondaries have not been asked yet");
        }
        SecondariesCheck::SerialUnknown => {
            return unknown(
                "SerialUnknown",
                "the zone's nameservers have not published a serial yet",
            );
        }
        SecondariesCheck::Checked { serial, answers } => (*serial, answers),
    };
    let mut list = Vec::new();
    let mut behind = Vec::new();
    let mut down = Vec::new();
    for (address, answer) in answers {
        let (got, in_sync) = match answer {
            Ok(s) => (Some(*s), super::secondaries::serial_at_least(*s, serial)),
            Err(_) => (None, false),
        };
        match answer {
            Ok(s) if !in_sync => {
                behind.push(format!("{address} serves serial {s}"));
            }
            Err(e) => down.push(format!("{address}: {e}")),
            Ok(_) => {}
        }
        list.push(SecondaryStatus {
            address: address.clone(),
            serial: got,
            in_sync,
        });
    }
    let c = if behind.is_empty() && down.is_empty() {
        let all: Vec<&str> = list.iter().map(|s| s.address.as_str()).collect();
        condition(
            SECONDARIES_IN_SYNC,
            "True",
            "InSync",
            format!("every secondary serves serial {serial}: {}", all.join(", ")),
            generation,
        )
    } else {
        let reason = if behind.is_empty() {
            "Unreachable"
        } else {
            "Behind"
        };
        let mut parts = behind;
        parts.extend(down);
        condition(
            SECONDARIES_IN_SYNC,
            "False",
            reason,
            format!(
                "the zone's serial is {serial}; {} (NOTIFY and transfers: see docs/secondaries.md)",
                parts.join("; ")
            ),
            generation,
        )
    };
    (c, list)
}

fn ready_condition(
    zone: &DNSZone,
    name: &str,
    domain: &str,
    nameservers: &[NameserverStatus],
    obs: &Observed<'_>,
    generation: Option<i64>,
) -> Condition {
    let replicas = zone.spec.nameservers.replicas.max(1);
    let mut pods = Vec::new();
    let mut addresses = Vec::new();
    let mut notes = Vec::new();
    for (i, ns) in nameservers.iter().enumerate() {
        let obj = nameserver_object_name(name, i + 1);
        match obs.deployments.get(i).copied().flatten() {
            None => pods.push(format!(
                "{}: Deployment {obj} is not created yet",
                ns.hostname
            )),
            Some(d) => {
                let available = d
                    .status
                    .as_ref()
                    .and_then(|s| s.available_replicas)
                    .unwrap_or(0);
                if available < 1 {
                    pods.push(format!(
                        "{}: none of the {replicas} server pods of Deployment {obj} is available",
                        ns.hostname
                    ));
                } else if (available as u32) < replicas {
                    notes.push(format!(
                        "{}: {available} of {replicas} server pods available",
                        ns.hostname
                    ));
                }
            }
        }
        let svc = obs.services.get(i).copied().flatten();
        let type_ = svc
            .and_then(|s| s.spec.as_ref())
            .and_then(|s| s.type_.as_deref())
            .unwrap_or("");
        match svc {
            None => addresses.push(format!("{}: Service {obj} is not created yet", ns.hostname)),
            Some(_) if ns.addresses.is_empty() => addresses.push(match type_ {
                "LoadBalancer" => format!(
                    "{}: Service {obj} waits for a load balancer to assign it an external address (is a load-balancer controller such as MetalLB or the cloud's installed{}?)",
                    ns.hostname,
                    zone.spec
                        .nameservers
                        .service
                        .load_balancer_class
                        .as_ref()
                        .map(|c| format!(" for loadBalancerClass {c}"))
                        .unwrap_or_default()
                ),
                "NodePort" => format!("{}: Service {obj} is a NodePort but no Ready node has an address", ns.hostname),
                _ => format!("{}: Service {obj} has no cluster IP yet", ns.hostname),
            }),
            Some(s) => {
                if is_at_or_below(&ns.hostname, domain)
                    && ns.addresses.iter().all(|a| a.parse::<IpAddr>().is_err())
                {
                    notes.push(format!(
                        "{} is inside the zone and needs glue, but its load balancer has only a hostname ({}): use IP load balancers or nameserver hostnames outside the zone (spec.nameservers.hostnames)",
                        ns.hostname,
                        ns.addresses.join(", ")
                    ));
                }
                if type_ == "NodePort" {
                    let ports: Vec<String> = s
                        .spec
                        .as_ref()
                        .and_then(|sp| sp.ports.as_ref())
                        .into_iter()
                        .flatten()
                        .filter_map(|p| {
                            Some(format!("{}/{}", p.node_port?, p.protocol.as_deref().unwrap_or("TCP")))
                        })
                        .collect();
                    notes.push(format!(
                        "{} is a NodePort Service answering on node ports {} rather than 53: the parent zone reaches nameservers on port 53 only",
                        ns.hostname,
                        ports.join(" and ")
                    ));
                }
            }
        }
    }
    if pods.is_empty() && addresses.is_empty() {
        let list: Vec<String> = nameservers
            .iter()
            .map(|n| format!("{} ({})", n.hostname, n.addresses.join(", ")))
            .collect();
        let mut msg = format!(
            "{} nameservers answer: {}",
            nameservers.len(),
            list.join(", ")
        );
        for n in notes {
            msg.push_str("; ");
            msg.push_str(&n);
        }
        condition(READY, "True", "NameserversReady", msg, generation)
    } else {
        let reason = if pods.is_empty() {
            "AddressPending"
        } else {
            "PodsUnavailable"
        };
        let mut all = pods;
        all.extend(addresses);
        condition(READY, "False", reason, all.join("; "), generation)
    }
}

fn delegated_condition(
    obs: &Observed<'_>,
    domain: &str,
    hostnames: &[String],
    delegation: &[String],
    ds: &[String],
    generation: Option<i64>,
) -> Condition {
    if !obs.verdict.is_accepted() {
        return condition(
            DELEGATED,
            "Unknown",
            "NotAccepted",
            "the zone is not accepted, so its delegation is not checked".into(),
            generation,
        );
    }
    let records = if delegation.is_empty() {
        hostnames
            .iter()
            .map(|h| format!("{domain}. IN NS {h}."))
            .collect::<Vec<_>>()
            .join("; ")
            + " (and glue addresses once the nameservers have them)"
    } else {
        delegation.join("; ")
    };
    match obs.delegation {
        DelegationCheck::Disabled => condition(
            DELEGATED,
            "Unknown",
            "CheckDisabled",
            "the operator does not check delegations (--delegation-check-interval 0)".into(),
            generation,
        ),
        DelegationCheck::Pending => condition(
            DELEGATED,
            "Unknown",
            "CheckPending",
            "the parent zone has not been asked yet".into(),
            generation,
        ),
        DelegationCheck::Delegated {
            parent,
            servers,
            secure,
            ..
        } => condition(
            DELEGATED,
            "True",
            "Delegated",
            format!(
                "the nameservers of the parent zone {parent} ({}) return this zone's NS set: {}{}",
                servers.join(", "),
                hostnames.join(", "),
                if *secure {
                    " and its DS (a secure delegation)"
                } else {
                    ""
                }
            ),
            generation,
        ),
        DelegationCheck::DsMissing { parent, detail } => condition(
            DELEGATED,
            "False",
            "DSMissing",
            format!(
                "{detail}; create this DS at your registrar or in the parent zone {parent}: {}",
                ds.join("; ")
            ),
            generation,
        ),
        DelegationCheck::DsMismatch { parent, detail } => condition(
            DELEGATED,
            "False",
            "DSMismatch",
            format!(
                "{detail}; the parent zone {parent} should have this DS: {}",
                ds.join("; ")
            ),
            generation,
        ),
        DelegationCheck::NotDelegated { parent, detail } => condition(
            DELEGATED,
            "False",
            "NotDelegated",
            format!(
                "{detail}; create these records at your registrar or in the parent zone {parent}: {records}"
            ),
            generation,
        ),
        DelegationCheck::Mismatch { parent, detail } => condition(
            DELEGATED,
            "False",
            "NSMismatch",
            format!("{detail}; the parent zone {parent} should have exactly: {records}"),
            generation,
        ),
        DelegationCheck::Unreachable { detail } => condition(
            DELEGATED,
            "Unknown",
            "ParentUnreachable",
            detail.clone(),
            generation,
        ),
    }
}

/// Keeps the old `lastTransitionTime` of conditions whose status did not change.
pub fn carry_transition_times(old: &[Condition], new: &mut [Condition], now: Time) {
    for c in new {
        c.last_transition_time = match old.iter().find(|o| o.type_ == c.type_) {
            Some(o) if o.status == c.status => o.last_transition_time.clone(),
            _ => now.clone(),
        };
    }
}

/// An event to publish about the zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSpec {
    pub warning: bool,
    pub reason: String,
    pub action: String,
    pub note: String,
}

/// The events a status change deserves: one per condition whose status or reason changed, one
/// naming the fields to fix when an accepted zone's field problems changed, and one with the
/// records to register when `status.delegation` changed.
pub fn status_events(old: Option<&DNSZoneStatus>, new: &DNSZoneStatus) -> Vec<EventSpec> {
    let old_conditions = old.map(|s| s.conditions.as_slice()).unwrap_or_default();
    let mut out = Vec::new();
    for c in &new.conditions {
        let before = old_conditions.iter().find(|o| o.type_ == c.type_);
        if c.type_ == ACCEPTED
            && c.status == "True"
            && let Some(problems) = accepted_problems(&c.message)
            && before.is_none_or(|b| b.status != c.status || b.message != c.message)
        {
            out.push(EventSpec {
                warning: true,
                reason: "InvalidFieldValue".into(),
                action: "ReportFieldProblems".into(),
                note: truncate(&format!("fix {problems}")),
            });
        }
        if before.is_some_and(|b| b.status == c.status && b.reason == c.reason) {
            continue;
        }
        out.push(EventSpec {
            warning: c.status == "False",
            reason: c.reason.clone(),
            action: format!("Set{}{}", c.type_, c.status),
            note: truncate(&format!("{} {}: {}", c.type_, c.status, c.message)),
        });
    }
    // a secondary that was in sync and is not any more (the condition may already be False)
    let old_secondaries = old.map(|s| s.secondaries.as_slice()).unwrap_or_default();
    for s in new.secondaries.iter().filter(|s| !s.in_sync) {
        if old_secondaries
            .iter()
            .any(|o| o.address == s.address && o.in_sync)
        {
            out.push(EventSpec {
                warning: true,
                reason: "SecondaryBehind".into(),
                action: "CheckSecondary".into(),
                note: truncate(&match s.serial {
                    Some(serial) => format!(
                        "secondary {} fell behind: it serves serial {serial}",
                        s.address
                    ),
                    None => format!("secondary {} stopped answering for the zone", s.address),
                }),
            });
        }
    }
    let old_delegation = old.map(|s| s.delegation.as_slice()).unwrap_or_default();
    if !new.delegation.is_empty() && new.delegation != old_delegation {
        out.push(EventSpec {
            warning: false,
            reason: "DelegationRecords".into(),
            action: "PublishDelegation".into(),
            note: truncate(&format!(
                "create these records at your registrar or in the parent zone: {}",
                new.delegation.join("; ")
            )),
        });
    }
    out
}

/// Event notes are limited to 1 kB.
fn truncate(s: &str) -> String {
    const MAX: usize = 1000;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX - 3;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn zone(spec: Value, status: Option<Value>) -> DNSZone {
        let mut v = json!({
            "apiVersion": "zonegate.dev/v1alpha1", "kind": "DNSZone",
            "metadata": {"namespace": "acme", "name": "web", "uid": "u-1", "generation": 3},
            "spec": spec,
        });
        if let Some(s) = status {
            v["status"] = s;
        }
        serde_json::from_value(v).unwrap()
    }

    fn deployment(available: Option<i32>) -> Deployment {
        serde_json::from_value(
            json!({"metadata": {"name": "d"}, "status": {"availableReplicas": available}}),
        )
        .unwrap()
    }

    fn lb(ingress: Value) -> Service {
        serde_json::from_value(
            json!({"metadata": {"name": "s"}, "spec": {"type": "LoadBalancer"},
            "status": {"loadBalancer": {"ingress": ingress}}}),
        )
        .unwrap()
    }

    fn now() -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).unwrap())
    }

    fn cond<'a>(s: &'a DNSZoneStatus, t: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == t).unwrap()
    }

    /// A lossy TXT value in `spec.records` is named in the Accepted condition, with the quoted
    /// form to use.
    #[test]
    fn accepted_names_lossy_txt_values() {
        let z = zone(
            json!({"domain": "acme.example.com", "records": [
                {"name": "k._domainkey", "type": "TXT", "values": ["v=DKIM1; k=rsa; p=MIGf", "\"ok\""]}
            ]}),
            None,
        );
        let obs = Observed {
            verdict: &Verdict::Accepted,
            deployments: vec![None, None],
            services: vec![None, None],
            node_addresses: &[],
            delegation: &DelegationCheck::Pending,
            rollover: None,
            secondaries: &SecondariesCheck::Pending,
            delegation_ttl: 3600,
            placements: &Placements::default(),
            serial_configmap: None,
            dnssec_secret: None,
        };
        let st = compute_status(&z, &obs, now());
        let a = cond(&st, ACCEPTED);
        assert_eq!(a.status, "True");
        assert!(
            a.message.starts_with(
                "this zone serves acme.example.com; spec.records[0].values[0]: invalid TXT value"
            ),
            "{}",
            a.message
        );
        assert!(
            a.message.contains("'\"v=DKIM1; k=rsa; p=MIGf\"'"),
            "{}",
            a.message
        );
        assert!(!a.message.contains("values[1]"), "{}", a.message);
        // a Warning Event says which field to fix, once per change of the problems
        let ev = status_events(None, &st);
        let fix: Vec<&EventSpec> = ev
            .iter()
            .filter(|e| e.reason == "InvalidFieldValue")
            .collect();
        assert_eq!(fix.len(), 1, "{ev:?}");
        assert!(fix[0].warning);
        assert_eq!(
            fix[0].note,
            format!("fix {}", a.message.split_once("; ").unwrap().1)
        );
        assert!(
            fix[0]
                .note
                .starts_with("fix spec.records[0].values[0]: invalid TXT value"),
            "{}",
            fix[0].note
        );
        assert!(status_events(Some(&st), &st).is_empty());
        // fixed: no problem, no Event (Accepted stays True for the same reason)
        let fixed = zone(
            json!({"domain": "acme.example.com", "records": [
                {"name": "k._domainkey", "type": "TXT", "values": ["\"ok\""]}
            ]}),
            None,
        );
        let st2 = compute_status(&fixed, &obs, now());
        assert_eq!(
            cond(&st2, ACCEPTED).message,
            "this zone serves acme.example.com"
        );
        assert!(status_events(Some(&st), &st2).is_empty());
    }

    #[test]
    fn an_unknown_placement_profile_is_not_ready_and_names_the_field() {
        let z = zone(
            json!({"domain": "acme.example.com", "nameservers": {"placement": "gpu"}}),
            None,
        );
        let (d1, d2) = (deployment(Some(1)), deployment(Some(1)));
        let (s1, s2) = (
            lb(json!([{"ip": "192.0.2.1"}])),
            lb(json!([{"ip": "192.0.2.2"}])),
        );
        let placements = Placements {
            profiles: [("edge".to_string(), Default::default())].into(),
            ..Default::default()
        };
        let obs = Observed {
            verdict: &Verdict::Accepted,
            deployments: vec![Some(&d1), Some(&d2)],
            services: vec![Some(&s1), Some(&s2)],
            node_addresses: &[],
            delegation: &DelegationCheck::Pending,
            rollover: None,
            secondaries: &SecondariesCheck::Pending,
            delegation_ttl: 3600,
            placements: &placements,
            serial_configmap: None,
            dnssec_secret: None,
        };
        let st = compute_status(&z, &obs, now());
        let r = cond(&st, READY);
        assert_eq!(
            (r.status.as_str(), r.reason.as_str()),
            ("False", "PlacementProfileUnknown")
        );
        assert!(
            r.message.starts_with("spec.nameservers.placement: no placement profile \"gpu\"; the platform offers: edge"),
            "{}",
            r.message
        );
        // the condition change is a Warning Event naming the field
        let ev = status_events(None, &st);
        assert!(ev.iter().any(|e| e.warning
            && e.reason == "PlacementProfileUnknown"
            && e.note.contains("spec.nameservers.placement")));
        // a known profile is Ready
        let z = zone(
            json!({"domain": "acme.example.com", "nameservers": {"placement": "edge"}}),
            None,
        );
        assert_eq!(cond(&compute_status(&z, &obs, now()), READY).status, "True");
    }

    /// The serial ConfigMap's serial, record count and first-served time reach the status; the
    /// count and time only while they describe the serial (an older server may have replaced
    /// `spec.dnssec.enabled`: `DNSSECReady` False/KeyMissing without the key Secret,
    /// False/KeyInvalid for a Secret without a usable key or with a key of another algorithm,
    /// True/KeyLoaded with `status.dnssec` holding the key tag and exactly the DS and DNSKEY
    /// lines `zonegate ds` prints for the key; without `spec.dnssec` neither condition nor
    /// field.
    #[test]
    fn dnssec_status_comes_from_the_key_secret() {
        use crate::dnssec::keys::{Algorithm, SigningKey, ZoneKeys};
        use base64::Engine;
        let z = zone(
            json!({"domain": "acme.example.com.", "dnssec": {"enabled": true}}),
            None,
        );
        let secret = |pem: &str| -> Secret {
            serde_json::from_value(
                json!({"metadata": {"name": "web-dnssec", "namespace": "acme"},
                "data": {"key.pem": base64::engine::general_purpose::STANDARD.encode(pem)}}),
            )
            .unwrap()
        };
        let status_with = |z: &DNSZone, s: Option<&Secret>| {
            let obs = Observed {
                secondaries: &SecondariesCheck::Pending,
                verdict: &Verdict::Accepted,
                deployments: vec![None, None],
                services: vec![None, None],
                node_addresses: &[],
                delegation: &DelegationCheck::Pending,
                rollover: None,
                delegation_ttl: 3600,
                placements: &Placements::default(),
                serial_configmap: None,
                dnssec_secret: s,
            };
            let st = compute_status(z, &obs, now());
            let c = st
                .conditions
                .iter()
                .find(|c| c.type_ == DNSSEC_READY)
                .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()));
            (c, st.dnssec)
        };
        let (c, d) = status_with(&z, None);
        let c = c.unwrap();
        assert_eq!((c.0.as_str(), c.1.as_str()), ("False", "KeyMissing"));
        assert!(c.2.contains("web-dnssec"), "{}", c.2);
        assert_eq!(d, None);

        let (c, d) = status_with(&z, Some(&secret("not a key")));
        let c = c.unwrap();
        assert_eq!((c.0.as_str(), c.1.as_str()), ("False", "KeyInvalid"));
        assert!(
            c.2.starts_with("Secret acme/web-dnssec: key.pem"),
            "{}",
            c.2
        );
        assert_eq!(d, None);

        let ed = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let (c, _) = status_with(&z, Some(&secret(&ed.to_pkcs8_pem())));
        let c = c.unwrap();
        assert_eq!(c.1, "KeyInvalid");
        assert!(
            c.2.contains("holds an ED25519 key, spec.dnssec.algorithm is ECDSAP256SHA256"),
            "{}",
            c.2
        );

        let key = SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
        let pem = key.to_pkcs8_pem();
        let (c, d) = status_with(&z, Some(&secret(&pem)));
        let c = c.unwrap();
        assert_eq!((c.0.as_str(), c.1.as_str()), ("True", "KeyLoaded"));
        let d = d.expect("status.dnssec");
        assert_eq!(d.key_tag, key.key_tag());
        // what `zonegate ds` prints for the same key and domain
        let keys =
            ZoneKeys::from_entries("t", |k| (k == "key.pem").then_some(pem.as_bytes())).unwrap();
        assert_eq!(d.ds, keys.ds_presentation("acme.example.com", 3600));
        assert_eq!(d.ds.len(), 1);
        let tag = key.key_tag();
        assert!(
            d.ds[0].starts_with(&format!("acme.example.com. 3600 IN DS {tag} 13 2 ")),
            "{}",
            d.ds[0]
        );
        assert_eq!(d.dnskey, keys.dnskey_presentation("acme.example.com", 3600));
        assert!(
            d.dnskey[0].contains(" IN DNSKEY 257 3 13 "),
            "{}",
            d.dnskey[0]
        );

        let plain = zone(json!({"domain": "acme.example.com"}), None);
        assert_eq!(status_with(&plain, Some(&secret(&pem))), (None, None));
    }

    /// the serial alone), nothing while the ConfigMap is empty or the zone is not accepted.
    #[test]
    fn serial_records_and_last_served_come_from_the_serial_configmap() {
        let z = zone(json!({"domain": "acme.example.com"}), None);
        let cm = |data: Value| -> ConfigMap {
            serde_json::from_value(json!({"metadata": {"name": "web-serial"}, "data": data}))
                .unwrap()
        };
        let published = cm(json!({"hash": "00000000000000ff", "serial": "1800000001",
            "servedSerial": "1800000001", "records": "12", "lastServed": "2027-01-15T08:00:00Z"}));
        let status_with = |c: Option<&ConfigMap>, verdict: &Verdict| {
            let obs = Observed {
                secondaries: &SecondariesCheck::Pending,
                verdict,
                deployments: vec![None, None],
                services: vec![None, None],
                node_addresses: &[],
                delegation: &DelegationCheck::Pending,
                rollover: None,
                delegation_ttl: 3600,
                placements: &Placements::default(),
                serial_configmap: c,
                dnssec_secret: None,
            };
            let st = compute_status(&z, &obs, now());
            (st.serial, st.records, st.last_served)
        };
        assert_eq!(
            status_with(Some(&published), &Verdict::Accepted),
            (
                Some(1_800_000_001),
                Some(12),
                Some(Time(
                    k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).unwrap()
                ))
            )
        );
        let replaced = cm(json!({"hash": "0000000000000100", "serial": "1800000002",
            "servedSerial": "1800000001", "records": "12", "lastServed": "2027-01-15T08:00:00Z"}));
        assert_eq!(
            status_with(Some(&replaced), &Verdict::Accepted),
            (Some(1_800_000_002), None, None)
        );
        let empty = cm(Value::Null);
        assert_eq!(
            status_with(Some(&empty), &Verdict::Accepted),
            (None, None, None)
        );
        assert_eq!(status_with(None, &Verdict::Accepted), (None, None, None));
        let rejected = Verdict::Rejected {
            reason: "DomainConflict",
            message: "taken".into(),
        };
        assert_eq!(status_with(Some(&published), &rejected), (None, None, None));
        // as the status is written: lastServed in RFC 3339
        let obs = Observed {
            secondaries: &SecondariesCheck::Pending,
            verdict: &Verdict::Accepted,
            deployments: vec![None, None],
            services: vec![None, None],
            node_addresses: &[],
            delegation: &DelegationCheck::Pending,
            rollover: None,
            delegation_ttl: 3600,
            placements: &Placements::default(),
            serial_configmap: Some(&published),
            dnssec_secret: None,
        };
        let v = serde_json::to_value(compute_status(&z, &obs, now())).unwrap();
        assert_eq!(
            (&v["serial"], &v["records"], &v["lastServed"]),
            (
                &json!(1_800_000_001u32),
                &json!(12),
                &json!("2027-01-15T08:00:00Z")
            )
        );
    }

    #[test]
    fn ready_zone_with_load_balancers() {
        let z = zone(json!({"domain": "acme.example.com"}), None);
        let (d1, d2) = (deployment(Some(2)), deployment(Some(1)));
        let s1 = lb(json!([{"ip": "192.0.2.1"}, {"ip": "2001:db8::1"}]));
        let s2 = lb(json!([{"ip": "192.0.2.2"}]));
        let obs = Observed {
            verdict: &Verdict::Accepted,
            deployments: vec![Some(&d1), Some(&d2)],
            services: vec![Some(&s1), Some(&s2)],
            node_addresses: &[],
            delegation: &DelegationCheck::Pending,
            rollover: None,
            secondaries: &SecondariesCheck::Pending,
            delegation_ttl: 3600,
            placements: &Placements::default(),
            serial_configmap: None,
            dnssec_secret: None,
        };
        let st = compute_status(&z, &obs, now());
        assert_eq!(st.observed_generation, Some(3));
        assert_eq!(
            st.nameservers,
            vec![
                NameserverStatus {
                    hostname: "ns1.acme.example.com".into(),
                    addresses: vec!["192.0.2.1".into(), "2001:db8::1".into()]
                },
                NameserverStatus {
                    hostname: "ns2.acme.example.com".into(),
                    addresses: vec!["192.0.2.2".into()]
                },
            ]
        );
        assert_eq!(
            st.delegation,
            vec![
                "acme.example.com. 3600 IN NS ns1.acme.example.com.",
                "acme.example.com. 3600 IN NS ns2.acme.example.com.",
                "ns1.acme.example.com. 3600 IN A 192.0.2.1",
                "ns1.acme.example.com. 3600 IN AAAA 2001:db8::1",
                "ns2.acme.example.com. 3600 IN A 192.0.2.2",
            ]
        );
        let a = cond(&st, ACCEPTED);
        assert_eq!((a.status.as_str(), a.reason.as_str()), ("True", "Accepted"));
        let r = cond(&st, READY);
        assert_eq!(
            (r.status.as_str(), r.reason.as_str()),
            ("True", "NameserversReady")
        );
        assert_eq!(
            r.message,
            "2 nameservers answer: ns1.acme.example.com (192.0.2.1, 2001:db8::1), ns2.acme.example.com (192.0.2.2); ns2.acme.example.com: 1 of 2 server pods available"
        );
        assert_eq!(r.observed_generation, Some(3));
        assert_eq!(r.last_transition_time, now());
        let d = cond(&st, DELEGATED);
        assert_eq!(
            (d.status.as_str(), d.reason.as_str()),
            ("Unknown", "CheckPending")
        );
    }

    #[test]
    fn not_ready_says_what_is_missing() {
        let z = zone(
            json!({"domain": "acme.example.com", "nameservers": {"service": {"loadBalancerClass": "metallb"}}}),
            None,
        );
        let d1 = deployment(None);
        let s1 = lb(json!([]));
        let s2 = lb(json!([{"ip": "192.0.2.2"}]));
        let obs = Observed {
            verdict: &Verdict::Accepted,
            deployments: vec![Some(&d1), None],
            services: vec![Some(&s1), Some(&s2)],
            node_addresses: &[],
            delegation: &DelegationCheck::Pending,
            rollover: None,
            secondaries: &SecondariesCheck::Pending,
            delegation_ttl: 3600,
            placements: &Placements::default(),
            serial_configmap: None,
            dnssec_secret: None,
        };
        let st = compute_status(&z, &obs, now());
        let r = cond(&st, READY);
        assert_eq!(
            (r.status.as_str(), r.reason.as_str()),
            ("False", "PodsUnavailable")
        );
        assert_eq!(
            r.message,
            "ns1.acme.example.com: none of the 2 server pods of Deployment web-ns1 is available; ns2.acme.example.com: Deployment web-ns2 is not created yet; ns1.acme.example.com: Service web-ns1 waits for a load balancer to assign it an external address (is a load-balancer controller such as MetalLB or the cloud's installed for loadBalancerClass metallb?)"
        );
        assert!(
            st.delegation.is_empty(),
            "no delegation before every nameserver has an address"
        );
        assert_eq!(st.nameservers[0].addresses, Vec::<String>::new());

        let (d1, d2) = (deployment(Some(1)), deployment(Some(1)));
        let obs = Observed {
            deployments: vec![Some(&d1), Some(&d2)],
            ..obs
        };
        let r = cond(&compute_status(&z, &obs, now()), READY).clone();
        assert_eq!(
            (r.status.as_str(), r.reason.as_str()),
            ("False", "AddressPending")
        );
    }

    #[test]
    fn rejected_zone_has_no_nameservers() {
        let z = zone(json!({"domain": "acme.example.com"}), None);
        let v = Verdict::Rejected {
            reason: "DomainConflict",
            message: "taken by a/b".into(),
        };
        let s1 = lb(json!([{"ip": "192.0.2.1"}]));
        let obs = Observed {
            verdict: &v,
            deployments: vec![],
            services: vec![Some(&s1)],
            node_addresses: &[],
            delegation: &DelegationCheck::Pending,
            rollover: None,
            secondaries: &SecondariesCheck::Pending,
            delegation_ttl: 3600,
            placements: &Placements::default(),
            serial_configmap: None,
            dnssec_secret: None,
        };
        let st = compute_status(&z, &obs, now());
        let a = cond(&st, ACCEPTED);
        assert_eq!(
            (a.status.as_str(), a.reason.as_str(), a.message.as_str()),
            ("False", "DomainConflict", "taken by a/b")
        );
        assert_eq!(cond(&st, READY).reason, "NotAccepted");
        assert_eq!(cond(&st, DELEGATED).status, "Unknown");
        assert!(st.nameservers.is_empty() && st.delegation.is_empty());
    }

    #[test]
    fn load_balancer_hostname_is_reported_but_is_no_glue() {
        let z = zone(
            json!({"domain": "acme.example.com", "nameservers": {"count": 2, "hostnames": ["ns1.acme.example.com", "ns.dns.example.net"]}}),
            None,
        );
        let d = deployment(Some(2));
        let s1 = lb(json!([{"hostname": "abc.elb.example"}]));
        let s2 = lb(json!([{"hostname": "def.elb.example"}]));
        let obs = Observed {
            verdict: &Verdict::Accepted,
            deployments: vec![Some(&d), Some(&d)],
            services: vec![Some(&s1), Some(&s2)],
            node_addresses: &[],
            delegation: &DelegationCheck::Pending,
            rollover: None,
            secondaries: &SecondariesCheck::Pending,
            delegation_ttl: 86400,
            placements: &Placements::default(),
            serial_configmap: None,
            dnssec_secret: None,
        };
        let st = compute_status(&z, &obs, now());
        assert_eq!(st.nameservers[0].addresses, vec!["abc.elb.example"]);
        assert_eq!(
            st.delegation,
            vec![
                "acme.example.com. 86400 IN NS ns1.acme.example.com.",
                "acme.example.com. 86400 IN NS ns.dns.example.net."
            ]
        );
        let r = cond(&st, READY);
        assert_eq!(r.status, "True");
        assert!(r.message.contains("ns1.acme.example.com is inside the zone and needs glue, but its load balancer has only a hostname (abc.elb.example)"), "{}", r.message);
        assert!(
            !r.message.contains("ns.dns.example.net is inside"),
            "{}",
            r.message
        );
    }

    #[test]
    fn nodeport_uses_node_addresses_and_says_the_port() {
        let z = zone(
            json!({"domain": "acme.example.com", "nameservers": {"count": 1, "service": {"type": "NodePort"}}}),
            None,
        );
        let d = deployment(Some(2));
        let s: Service = serde_json::from_value(json!({"metadata": {"name": "s"}, "spec": {"type": "NodePort", "ports": [
            {"port": 53, "protocol": "UDP", "nodePort": 30053}, {"port": 53, "protocol": "TCP", "nodePort": 30054}]}})).unwrap();
        let nodes = vec!["198.51.100.1".to_string(), "198.51.100.2".to_string()];
        let obs = Observed {
            verdict: &Verdict::Accepted,
            deployments: vec![Some(&d)],
            services: vec![Some(&s)],
            node_addresses: &nodes,
            delegation: &DelegationCheck::Disabled,
            rollover: None,
            secondaries: &SecondariesCheck::Pending,
            delegation_ttl: 3600,
            placements: &Placements::default(),
            serial_configmap: None,
            dnssec_secret: None,
        };
        let st = compute_status(&z, &obs, now());
        assert_eq!(st.nameservers[0].addresses, nodes);
        let r = cond(&st, READY);
        assert!(
            r.message
                .contains("answering on node ports 30053/UDP and 30054/TCP rather than 53"),
            "{}",
            r.message
        );
        assert_eq!(cond(&st, DELEGATED).reason, "CheckDisabled");
    }

    #[test]
    fn coredns_stanza_forwards_to_every_nameserver_cluster_ip() {
        let svc = |v: Value| -> Service { serde_json::from_value(v).unwrap() };
        let a = svc(json!({"spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.10"}}));
        let b = svc(
            json!({"spec": {"clusterIP": "10.96.0.11", "clusterIPs": ["10.96.0.11", "fd00::11"]}}),
        );
        assert_eq!(
            coredns_stanza("acme.example.com", &[Some(&a), Some(&b)]).unwrap(),
            "acme.example.com:53 {\n    errors\n    cache 30\n    forward . 10.96.0.10:53 10.96.0.11:53 [fd00::11]:53 {\n        policy sequential\n    }\n}\n"
        );
        let pending = svc(json!({"spec": {"type": "ClusterIP"}}));
        let headless = svc(json!({"spec": {"clusterIP": "None"}}));
        assert_eq!(
            coredns_stanza("acme.example.com", &[Some(&a), Some(&pending)]),
            None
        );
        assert_eq!(
            coredns_stanza("acme.example.com", &[Some(&a), Some(&headless)]),
            None
        );
        assert_eq!(coredns_stanza("acme.example.com", &[Some(&a), None]), None);
        assert_eq!(coredns_stanza("acme.example.com", &[]), None);
    }

    #[test]
    fn cluster_ip_addresses() {
        let s: Service = serde_json::from_value(json!({"spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10", "fd00::10"]}})).unwrap();
        assert_eq!(service_addresses(&s, &[]), vec!["10.96.0.10", "fd00::10"]);
        let s: Service = serde_json::from_value(json!({"spec": {"clusterIP": "None"}})).unwrap();
        assert!(service_addresses(&s, &[]).is_empty());
    }

    #[test]
    fn node_addresses_prefer_external_and_skip_unready() {
        let n = |name: &str, ready: &str, addrs: Value| -> Node {
            serde_json::from_value(json!({"metadata": {"name": name}, "status": {
                "conditions": [{"type": "Ready", "status": ready}], "addresses": addrs}}))
            .unwrap()
        };
        let a = n(
            "a",
            "True",
            json!([{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "ExternalIP", "address": "203.0.113.1"}, {"type": "Hostname", "address": "a"}]),
        );
        let b = n(
            "b",
            "True",
            json!([{"type": "InternalIP", "address": "10.0.0.2"}]),
        );
        let c = n(
            "c",
            "False",
            json!([{"type": "ExternalIP", "address": "203.0.113.3"}]),
        );
        assert_eq!(
            node_addresses(&[&a, &b, &c]),
            vec!["10.0.0.2", "203.0.113.1"]
        );
    }

    #[test]
    fn secondaries_in_sync_behind_down_and_the_event_when_one_falls_behind() {
        let spec = json!({"domain": "acme.example.com", "nameservers": {"count": 1},
            "transfer": {"allowFrom": ["192.0.2.0/24"], "notify": ["192.0.2.10", "192.0.2.11:5300"]}});
        let d = deployment(Some(2));
        let s = lb(json!([{"ip": "192.0.2.1"}]));
        let status = |z: &DNSZone, c: SecondariesCheck, verdict: &Verdict| {
            let obs = Observed {
                serial_configmap: None,
                dnssec_secret: None,
                verdict,
                deployments: vec![Some(&d)],
                services: vec![Some(&s)],
                node_addresses: &[],
                delegation: &DelegationCheck::Pending,
                rollover: None,
                secondaries: &c,
                delegation_ttl: 3600,
                placements: &Placements::default(),
            };
            compute_status(z, &obs, now())
        };
        let z = zone(spec.clone(), None);
        let checked = |a: Result<u32, String>, b: Result<u32, String>| SecondariesCheck::Checked {
            serial: 7,
            answers: vec![("192.0.2.10:53".into(), a), ("192.0.2.11:5300".into(), b)],
        };
        let ok = status(&z, checked(Ok(7), Ok(8)), &Verdict::Accepted);
        let c = cond(&ok, SECONDARIES_IN_SYNC);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str(), c.message.as_str()),
            (
                "True",
                "InSync",
                "every secondary serves serial 7: 192.0.2.10:53, 192.0.2.11:5300"
            )
        );
        assert_eq!(
            ok.secondaries,
            vec![
                SecondaryStatus {
                    address: "192.0.2.10:53".into(),
                    serial: Some(7),
                    in_sync: true
                },
                SecondaryStatus {
                    address: "192.0.2.11:5300".into(),
                    serial: Some(8),
                    in_sync: true
                },
            ]
        );

        let behind = status(
            &z,
            checked(Ok(5), Err("no answer within 2s".into())),
            &Verdict::Accepted,
        );
        let c = cond(&behind, SECONDARIES_IN_SYNC);
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "Behind"));
        assert_eq!(
            c.message,
            "the zone's serial is 7; 192.0.2.10:53 serves serial 5; 192.0.2.11:5300: no answer within 2s (NOTIFY and transfers: see docs/secondaries.md)"
        );
        assert_eq!(behind.secondaries[0].serial, Some(5));
        assert_eq!(behind.secondaries[1].serial, None);
        assert!(!behind.secondaries[1].in_sync);
        let events = status_events(Some(&ok), &behind);
        let notes: Vec<(&str, &str)> = events
            .iter()
            .filter(|e| e.reason == "SecondaryBehind")
            .map(|e| (e.note.as_str(), e.action.as_str()))
            .collect();
        assert_eq!(
            notes,
            [
                (
                    "secondary 192.0.2.10:53 fell behind: it serves serial 5",
                    "CheckSecondary"
                ),
                (
                    "secondary 192.0.2.11:5300 stopped answering for the zone",
                    "CheckSecondary"
                )
            ]
        );
        assert!(events.iter().all(|e| e.warning));
        assert!(
            status_events(Some(&behind), &behind).is_empty(),
            "no repeats"
        );

        let down = status(
            &z,
            checked(Ok(7), Err("answers REFUSED".into())),
            &Verdict::Accepted,
        );
        assert_eq!(cond(&down, SECONDARIES_IN_SYNC).reason, "Unreachable");

        for (check, reason) in [
            (SecondariesCheck::Pending, "CheckPending"),
            (SecondariesCheck::Disabled, "CheckDisabled"),
            (SecondariesCheck::SerialUnknown, "SerialUnknown"),
        ] {
            let st = status(&z, check, &Verdict::Accepted);
            let c = cond(&st, SECONDARIES_IN_SYNC);
            assert_eq!((c.status.as_str(), c.reason.as_str()), ("Unknown", reason));
            assert!(st.secondaries.is_empty());
        }
        // without notify targets: neither the condition nor the list
        let plain = zone(
            json!({"domain": "acme.example.com", "nameservers": {"count": 1}}),
            None,
        );
        let st = status(&plain, checked(Ok(7), Ok(7)), &Verdict::Accepted);
        assert!(!st.conditions.iter().any(|c| c.type_ == SECONDARIES_IN_SYNC));
        assert!(st.secondaries.is_empty());
    }

    #[test]
    fn delegated_condition_variants() {
        let z = zone(
            json!({"domain": "acme.example.com", "nameservers": {"count": 1}}),
            None,
        );
        let d = deployment(Some(2));
        let s = lb(json!([{"ip": "192.0.2.1"}]));
        let check = |c: DelegationCheck| {
            let obs = Observed {
                verdict: &Verdict::Accepted,
                deployments: vec![Some(&d)],
                services: vec![Some(&s)],
                node_addresses: &[],
                delegation: &c,
                rollover: None,
                secondaries: &SecondariesCheck::Pending,
                delegation_ttl: 3600,
                placements: &Placements::default(),
                serial_configmap: None,
                dnssec_secret: None,
            };
            cond(&compute_status(&z, &obs, now()), DELEGATED).clone()
        };
        let c = check(DelegationCheck::Delegated {
            parent: "example.com".into(),
            servers: vec!["127.0.0.1:53".into()],
            secure: false,
            parent_ds: Default::default(),
        });
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", "Delegated")
        );
        assert_eq!(
            c.message,
            "the nameservers of the parent zone example.com (127.0.0.1:53) return this zone's NS set: ns1.acme.example.com"
        );
        let c = check(DelegationCheck::NotDelegated {
            parent: "example.com".into(),
            detail: "127.0.0.1:53 answers NXDOMAIN for acme.example.com".into(),
        });
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "NotDelegated")
        );
        assert_eq!(
            c.message,
            "127.0.0.1:53 answers NXDOMAIN for acme.example.com; create these records at your registrar or in the parent zone example.com: acme.example.com. 3600 IN NS ns1.acme.example.com.; ns1.acme.example.com. 3600 IN A 192.0.2.1"
        );
        let c = check(DelegationCheck::Mismatch {
            parent: "example.com".into(),
            detail: "x".into(),
        });
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "NSMismatch")
        );
        let c = check(DelegationCheck::Delegated {
            parent: "example.com".into(),
            servers: vec!["127.0.0.1:53".into()],
            secure: true,
            parent_ds: Default::default(),
        });
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", "Delegated")
        );
        assert!(
            c.message.ends_with(" and its DS (a secure delegation)"),
            "{}",
            c.message
        );
        let c = check(DelegationCheck::DsMissing {
            parent: "example.com".into(),
            detail: "no DS".into(),
        });
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "DSMissing")
        );
        assert!(
            c.message.starts_with(
                "no DS; create this DS at your registrar or in the parent zone example.com: "
            ),
            "{}",
            c.message
        );
        let c = check(DelegationCheck::DsMismatch {
            parent: "example.com".into(),
            detail: "other DS".into(),
        });
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "DSMismatch")
        );
        let c = check(DelegationCheck::Unreachable {
            detail: "no answer from 127.0.0.1:53".into(),
        });
        assert_eq!(
            (c.status.as_str(), c.reason.as_str(), c.message.as_str()),
            (
                "Unknown",
                "ParentUnreachable",
                "no answer from 127.0.0.1:53"
            )
        );
    }

    #[test]
    fn transition_times_survive_unchanged_status() {
        let earlier = "2026-01-01T00:00:00Z";
        let z = zone(
            json!({"domain": "acme.example.com", "nameservers": {"count": 1}}),
            Some(json!({"conditions": [
                {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "old words", "lastTransitionTime": earlier},
                {"type": "Ready", "status": "True", "reason": "NameserversReady", "message": "", "lastTransitionTime": earlier},
            ]})),
        );
        let d = deployment(None);
        let s = lb(json!([]));
        let obs = Observed {
            verdict: &Verdict::Accepted,
            deployments: vec![Some(&d)],
            services: vec![Some(&s)],
            node_addresses: &[],
            delegation: &DelegationCheck::Pending,
            rollover: None,
            secondaries: &SecondariesCheck::Pending,
            delegation_ttl: 3600,
            placements: &Placements::default(),
            serial_configmap: None,
            dnssec_secret: None,
        };
        let st = compute_status(&z, &obs, now());
        assert_eq!(
            cond(&st, ACCEPTED).last_transition_time.0.to_string(),
            earlier
        );
        assert_eq!(cond(&st, READY).last_transition_time, now());
        assert_eq!(cond(&st, DELEGATED).last_transition_time, now());
        // Same inputs, same status: nothing to write.
        let z2 = DNSZone {
            status: Some(st.clone()),
            ..z.clone()
        };
        assert_eq!(
            compute_status(
                &z2,
                &obs,
                Time(k8s_openapi::jiff::Timestamp::from_second(1_900_000_000).unwrap())
            ),
            st
        );
    }

    #[test]
    fn events_on_changes_only() {
        let z = zone(
            json!({"domain": "acme.example.com", "nameservers": {"count": 1}}),
            None,
        );
        let d = deployment(Some(1));
        let s = lb(json!([{"ip": "192.0.2.1"}]));
        let obs = Observed {
            verdict: &Verdict::Accepted,
            deployments: vec![Some(&d)],
            services: vec![Some(&s)],
            node_addresses: &[],
            delegation: &DelegationCheck::Pending,
            rollover: None,
            secondaries: &SecondariesCheck::Pending,
            delegation_ttl: 3600,
            placements: &Placements::default(),
            serial_configmap: None,
            dnssec_secret: None,
        };
        let st = compute_status(&z, &obs, now());
        let ev = status_events(None, &st);
        let reasons: Vec<&str> = ev.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(
            reasons,
            vec![
                "Accepted",
                "NameserversReady",
                "CheckPending",
                "DelegationRecords"
            ]
        );
        assert_eq!(
            ev[3].note,
            "create these records at your registrar or in the parent zone: acme.example.com. 3600 IN NS ns1.acme.example.com.; ns1.acme.example.com. 3600 IN A 192.0.2.1"
        );
        assert!(ev.iter().all(|e| !e.warning));
        assert!(status_events(Some(&st), &st).is_empty());
        // Delegated goes False: one warning.
        let mut st2 = st.clone();
        st2.conditions[2].status = "False".into();
        st2.conditions[2].reason = "NotDelegated".into();
        let ev = status_events(Some(&st), &st2);
        assert_eq!(ev.len(), 1);
        assert!(ev[0].warning);
        assert_eq!(ev[0].action, "SetDelegatedFalse");
        assert_eq!(truncate(&"x".repeat(2000)).len(), 1000);
    }
}
