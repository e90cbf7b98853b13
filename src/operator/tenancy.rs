//! Who may serve which domain, in the operator. The rule itself (the holder keeps a domain, else
//! the oldest claim; nesting across namespaces needs the parent's delegation) is
//! [`crate::domain::resolve`], shared with files mode; this module adds the operator's own
//! checks and knows which zone holds a domain now:
//!
//! 1. A zone whose name cannot name its owned objects is rejected (`InvalidName`).
//! 2. With a domain policy, a zone claiming a domain its namespace may not claim is rejected
//!    (`DomainNotAllowed`).
//! 3. The rest as [`crate::domain`] says, in [`Mode::Operator`].
//!
//! **The holder of a domain** ([`Holders`]) is the zone this operator process last accepted for
//! it, as long as that zone exists and still claims the domain. When the process knows none
//! (after a start or a change of leader), it is each zone whose status says `Accepted=True` for
//! its current spec (`status.observedGeneration` equal to `metadata.generation`): that status was
//! written by an operator that accepted the zone's current domain. A zone whose spec changed
//! since (a new domain, say) is no holder until it is reconciled again.

use super::ZoneKey;
use super::policy::DomainPolicy;
use super::status::ACCEPTED;
use crate::api::DNSZone;
use crate::domain::{self, Mode};
pub use crate::domain::{Claim, REASON_CONFLICT, Verdict};
use std::collections::{BTreeMap, HashMap, HashSet};

pub const REASON_NOT_ALLOWED: &str = "DomainNotAllowed";
pub const REASON_INVALID_NAME: &str = "InvalidName";

/// Longest DNSZone name: `<name>-ns4` must be a DNS-1035 label (Service names).
pub const MAX_ZONE_NAME: usize = 59;

/// The claim of a DNSZone object in the cluster; `None` for a zone being deleted. Marked as
/// holding when its status says it was accepted for its current spec (see the module comment;
/// [`Holders::mark`] overrides that with what this process knows).
pub fn claim_of(zone: &DNSZone) -> Option<Claim> {
    if zone.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let mut c = zone.claim();
    c.holds = status_holds(zone);
    Some(c)
}

/// Whether the zone's status says `Accepted=True` for the zone's current generation.
pub fn status_holds(zone: &DNSZone) -> bool {
    let Some(st) = &zone.status else {
        return false;
    };
    st.observed_generation.is_some()
        && st.observed_generation == zone.metadata.generation
        && st
            .conditions
            .iter()
            .any(|c| c.type_ == ACCEPTED && c.status == "True")
}

/// Which zone this process last accepted for each domain.
#[derive(Debug, Default)]
pub struct Holders {
    by_domain: HashMap<String, ZoneKey>,
}

impl Holders {
    /// Marks the holder of each domain in `claims`: where this process knows a holder that is
    /// among the domain's claims, it and only it holds; elsewhere the marks from the statuses
    /// stay.
    pub fn mark(&self, claims: &mut [Claim]) {
        let known: HashMap<String, ZoneKey> = claims
            .iter()
            .filter(|c| self.by_domain.get(&c.domain) == Some(&c.key))
            .map(|c| (c.domain.clone(), c.key.clone()))
            .collect();
        for c in claims.iter_mut() {
            if let Some(h) = known.get(&c.domain) {
                c.holds = c.key == *h;
            }
        }
    }

    /// Records the verdict of zone `key` for `domain`.
    pub fn record(&mut self, key: &ZoneKey, domain: &str, verdict: &Verdict) {
        self.by_domain.retain(|_, k| k != key);
        if verdict.is_accepted() {
            self.by_domain.insert(domain.to_string(), key.clone());
        }
    }

    /// Forgets zones not in `live`.
    pub fn retain(&mut self, live: &HashSet<String>) {
        self.by_domain.retain(|_, k| live.contains(&k.to_string()));
    }
}

/// Why a DNSZone's name cannot be used, if it cannot: owned objects are `<name>-ns<i>`
/// (Services: DNS-1035 labels of at most 63 characters) and the name is a label value.
pub fn check_zone_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let starts = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    let ends = name
        .chars()
        .last()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.len() <= MAX_ZONE_NAME && ok_chars && starts && ends {
        Ok(())
    } else {
        Err(format!(
            "the DNSZone name {name:?} cannot name its nameservers' Services ({name}-ns1, ...): use at most {MAX_ZONE_NAME} lowercase letters, digits and '-', starting with a letter and ending with a letter or digit; create a DNSZone with such a name"
        ))
    }
}

/// The verdict for every claim.
pub fn resolve(claims: &[Claim], policy: Option<&DomainPolicy>) -> BTreeMap<ZoneKey, Verdict> {
    domain::resolve(claims, Mode::Operator, |c| {
        if let Err(message) = check_zone_name(&c.key.name) {
            Some(Verdict::Rejected {
                reason: REASON_INVALID_NAME,
                message,
            })
        } else if let Some(Err(message)) = policy.map(|p| p.check(&c.key.namespace, &c.domain)) {
            Some(Verdict::Rejected {
                reason: REASON_NOT_ALLOWED,
                message,
            })
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(ns: &str, name: &str, domain: &str, created: i64) -> Claim {
        Claim {
            key: ZoneKey::new(ns, name),
            domain: domain.into(),
            created: Some(i128::from(created) * 1_000_000_000),
            delegates: Vec::new(),
            holds: false,
        }
    }

    fn verdicts(claims: &[Claim], policy: Option<&DomainPolicy>) -> Vec<(String, String)> {
        resolve(claims, policy)
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Verdict::Accepted => "Accepted".to_string(),
                    Verdict::Rejected { reason, message } => format!("{reason}: {message}"),
                };
                (k.to_string(), v)
            })
            .collect()
    }

    fn get(v: &[(String, String)], key: &str) -> String {
        v.iter()
            .find(|(k, _)| k == key)
            .unwrap_or_else(|| panic!("no verdict for {key}: {v:?}"))
            .1
            .clone()
    }

    #[test]
    fn older_zone_keeps_the_domain() {
        let v = verdicts(
            &[
                claim("b", "new", "acme.example.com", 200),
                claim("a", "old", "acme.example.com", 100),
                claim("c", "other", "other.example.com", 300),
            ],
            None,
        );
        assert_eq!(get(&v, "a/old"), "Accepted");
        assert_eq!(
            get(&v, "b/new"),
            "DomainConflict: domain acme.example.com is already claimed by DNSZone a/old, which is older; this zone gets no nameservers while it exists"
        );
        assert_eq!(get(&v, "c/other"), "Accepted");
    }

    #[test]
    fn same_age_ties_break_by_namespace_and_name_and_undated_last() {
        let mut undated = claim("a", "a", "x.example", 0);
        undated.created = None;
        let v = verdicts(
            &[
                undated,
                claim("b", "z", "x.example", 5),
                claim("b", "y", "x.example", 5),
            ],
            None,
        );
        assert_eq!(get(&v, "b/y"), "Accepted");
        assert!(get(&v, "b/z").contains("claimed by DNSZone b/y"));
        assert!(get(&v, "a/a").contains("claimed by DNSZone b/y"));
    }

    #[test]
    fn nested_zone_in_another_namespace_needs_a_delegation() {
        let parent = claim("infra", "root", "example.com", 100);
        let child = claim("team", "web", "team.example.com", 50);
        let v = verdicts(&[parent.clone(), child.clone()], None);
        assert_eq!(get(&v, "infra/root"), "Accepted");
        assert_eq!(
            get(&v, "team/web"),
            "DomainConflict: domain team.example.com is inside example.com, served by DNSZone infra/root of another namespace, which does not delegate it to this zone; its owner can delegate it with spec.delegations: [{name: team, zoneRef: {namespace: team, name: web}}]"
        );

        // Delegating to another zone (or another name) does not help...
        let mut p = parent.clone();
        p.delegates = vec![
            ("team.example.com".into(), ZoneKey::new("team", "other")),
            ("x.example.com".into(), ZoneKey::new("team", "web")),
        ];
        let v = verdicts(&[p, child.clone()], None);
        assert!(get(&v, "team/web").starts_with("DomainConflict"));

        // ...delegating this domain to this zone does.
        let mut p = parent.clone();
        p.delegates = vec![("team.example.com".into(), ZoneKey::new("team", "web"))];
        let v = verdicts(&[p, child], None);
        assert_eq!(get(&v, "team/web"), "Accepted");
    }

    #[test]
    fn nested_zone_in_the_same_namespace_is_fine() {
        let v = verdicts(
            &[
                claim("a", "root", "example.com", 1),
                claim("a", "sub", "x.y.example.com", 2),
            ],
            None,
        );
        assert_eq!(get(&v, "a/sub"), "Accepted");
    }

    #[test]
    fn nearest_accepted_ancestor_decides() {
        // example.com (infra) delegates team.example.com to team/web; team/deep sits below
        // team.example.com in the same namespace as team/web: fine.
        let mut root = claim("infra", "root", "example.com", 1);
        root.delegates = vec![("team.example.com".into(), ZoneKey::new("team", "web"))];
        let v = verdicts(
            &[
                root,
                claim("team", "web", "team.example.com", 2),
                claim("team", "deep", "a.team.example.com", 3),
                claim("other", "deep", "b.team.example.com", 4),
            ],
            None,
        );
        assert_eq!(get(&v, "team/deep"), "Accepted");
        assert!(
            get(&v, "other/deep").contains("inside team.example.com, served by DNSZone team/web")
        );
    }

    #[test]
    fn rejected_zones_block_nobody() {
        // The duplicate parent in another namespace is rejected, so it is nobody's ancestor; a
        // zone outside the policy neither.
        let policy = DomainPolicy::parse("team: [\"*\"]\nsquat: [elsewhere.test]\n").unwrap();
        let v = verdicts(
            &[
                claim("squat", "root", "example.com", 1),
                claim("team", "web", "team.example.com", 2),
            ],
            Some(&policy),
        );
        assert!(get(&v, "squat/root").starts_with("DomainNotAllowed: the cluster's domain policy allows namespace squat only domains at or below elsewhere.test"));
        assert_eq!(get(&v, "team/web"), "Accepted");
        // And a policy-violating older zone does not keep the domain.
        let v = verdicts(
            &[
                claim("squat", "a", "team.example.com", 1),
                claim("team", "b", "team.example.com", 2),
            ],
            Some(&policy),
        );
        assert_eq!(get(&v, "team/b"), "Accepted");
    }

    #[test]
    fn invalid_names_are_rejected() {
        let v = verdicts(
            &[
                claim("a", "Bad.Name", "x.example", 1),
                claim("a", &"n".repeat(60), "y.example", 1),
                claim("a", "1abc", "z.example", 1),
                claim("a", &"n".repeat(59), "w.example", 1),
            ],
            None,
        );
        assert!(get(&v, "a/Bad.Name").starts_with("InvalidName: the DNSZone name \"Bad.Name\""));
        assert!(get(&v, &format!("a/{}", "n".repeat(60))).starts_with("InvalidName"));
        assert!(get(&v, "a/1abc").starts_with("InvalidName"));
        assert_eq!(get(&v, &format!("a/{}", "n".repeat(59))), "Accepted");
    }

    #[test]
    fn claim_of_a_zone_object() {
        let zone: DNSZone = serde_json::from_value(serde_json::json!({
            "apiVersion": "zonegate.dev/v1alpha1", "kind": "DNSZone",
            "metadata": {"namespace": "infra", "name": "root", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"domain": "Example.com", "delegations": [
                {"name": "team", "zoneRef": {"namespace": "team", "name": "web"}},
                {"name": "local.example.com.", "zoneRef": {"name": "sub"}},
                {"name": "ext", "nameservers": [{"hostname": "ns.other.net"}]}
            ]}
        }))
        .unwrap();
        let c = claim_of(&zone).unwrap();
        assert_eq!(c.domain, "example.com");
        assert_eq!(
            c.delegates,
            vec![
                ("team.example.com".into(), ZoneKey::new("team", "web")),
                ("local.example.com".into(), ZoneKey::new("infra", "sub")),
            ]
        );
        assert!(c.created.is_some());
    }

    fn zone_with_status(generation: i64, accepted_at: Option<i64>) -> DNSZone {
        let mut v = serde_json::json!({
            "apiVersion": "zonegate.dev/v1alpha1", "kind": "DNSZone",
            "metadata": {"namespace": "a", "name": "z", "generation": generation},
            "spec": {"domain": "x.example"}
        });
        if let Some(g) = accepted_at {
            v["status"] = serde_json::json!({"observedGeneration": g, "conditions": [
                {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
                 "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": g}]});
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_status_holds_only_for_the_current_generation() {
        assert!(status_holds(&zone_with_status(3, Some(3))));
        // the spec changed since (perhaps the domain): no holder until reconciled
        assert!(!status_holds(&zone_with_status(4, Some(3))));
        assert!(!status_holds(&zone_with_status(1, None)));
        assert!(claim_of(&zone_with_status(3, Some(3))).unwrap().holds);
    }

    #[test]
    fn what_this_process_accepted_overrides_the_statuses() {
        let mut h = Holders::default();
        let (old, new) = (
            claim("a", "old", "x.example", 1),
            claim("b", "new", "x.example", 2),
        );
        h.record(&new.key, "x.example", &Verdict::Accepted);
        // both statuses say Accepted (one stale): the process knows b/new holds
        let mut claims = vec![old.clone(), new.clone()];
        claims[0].holds = true;
        claims[1].holds = true;
        h.mark(&mut claims);
        assert_eq!((claims[0].holds, claims[1].holds), (false, true));
        assert_eq!(get(&verdicts(&claims, None), "b/new"), "Accepted");
        assert!(get(&verdicts(&claims, None), "a/old").contains("which serves it already"));

        // the holder no longer claims the domain: the statuses decide again
        let mut claims = vec![old.clone()];
        claims[0].holds = true;
        h.mark(&mut claims);
        assert!(claims[0].holds);

        // a rejection, or a new domain, ends the hold
        h.record(
            &new.key,
            "x.example",
            &Verdict::Rejected {
                reason: REASON_CONFLICT,
                message: String::new(),
            },
        );
        let mut claims = vec![old.clone(), new.clone()];
        h.mark(&mut claims);
        assert_eq!((claims[0].holds, claims[1].holds), (false, false));
        h.record(&new.key, "x.example", &Verdict::Accepted);
        h.record(&new.key, "y.example", &Verdict::Accepted);
        let mut claims = vec![old, new];
        h.mark(&mut claims);
        assert_eq!((claims[0].holds, claims[1].holds), (false, false));
        h.retain(&HashSet::new());
        assert!(h.by_domain.is_empty());
    }
}
