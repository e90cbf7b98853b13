//! Who may serve which domain. Pure: every DNSZone of the cluster in, one verdict per zone out.
//!
//! 1. A zone whose name cannot name its owned objects is rejected (`InvalidName`).
//! 2. With a domain policy, a zone claiming a domain its namespace may not claim is rejected
//!    (`DomainNotAllowed`).
//! 3. Of the remaining zones claiming the same domain, the oldest (creationTimestamp, then
//!    namespace/name) keeps it; the others are rejected (`DomainConflict`), naming the holder.
//! 4. A zone inside the domain of another accepted zone (its nearest accepted ancestor) in a
//!    different namespace is rejected (`DomainConflict`) unless that ancestor delegates exactly
//!    this zone's domain to it with `spec.delegations[].zoneRef`. A parent decides about its
//!    subdomains, whatever their age: that is what the parent's nameservers will answer anyway.
//!
//! Rejected zones do not count as holders or ancestors, so a rejected duplicate or a zone outside
//! the policy never blocks anybody.

use super::ZoneKey;
use super::policy::DomainPolicy;
use crate::api::DNSZone;
use k8s_openapi::jiff::Timestamp;
use std::collections::BTreeMap;

/// Condition reasons of `Accepted=False`.
pub const REASON_CONFLICT: &str = "DomainConflict";
pub const REASON_NOT_ALLOWED: &str = "DomainNotAllowed";
pub const REASON_INVALID_NAME: &str = "InvalidName";

/// Longest DNSZone name: `<name>-ns4` must be a DNS-1035 label (Service names).
pub const MAX_ZONE_NAME: usize = 59;

/// The outcome for one zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Rejected {
        reason: &'static str,
        message: String,
    },
}

impl Verdict {
    pub fn is_accepted(&self) -> bool {
        matches!(self, Verdict::Accepted)
    }
}

/// What the tenancy rules need to know about one DNSZone.
#[derive(Clone, Debug)]
pub struct Claim {
    pub key: ZoneKey,
    /// Lowercase, without the trailing dot.
    pub domain: String,
    pub created: Option<Timestamp>,
    /// Child domains delegated with `zoneRef`, with the referenced zone.
    pub delegates: Vec<(String, ZoneKey)>,
}

impl Claim {
    /// The claim of a DNSZone object; `None` for a zone being deleted.
    pub fn of(zone: &DNSZone) -> Option<Claim> {
        if zone.metadata.deletion_timestamp.is_some() {
            return None;
        }
        let namespace = zone.metadata.namespace.clone().unwrap_or_default();
        let name = zone.metadata.name.clone().unwrap_or_default();
        let domain = normalize(&zone.spec.domain);
        let delegates = zone
            .spec
            .delegations
            .iter()
            .filter_map(|d| {
                let r = d.zone_ref.as_ref()?;
                let ns = r
                    .namespace
                    .as_ref()
                    .map(|n| n.0.clone())
                    .unwrap_or_else(|| namespace.clone());
                Some((
                    child_name(&d.name, &domain),
                    ZoneKey::new(ns, r.name.clone()),
                ))
            })
            .collect();
        Some(Claim {
            key: ZoneKey::new(namespace, name),
            domain,
            created: zone.metadata.creation_timestamp.as_ref().map(|t| t.0),
            delegates,
        })
    }
}

/// Lowercase, no trailing dot.
pub fn normalize(domain: &str) -> String {
    domain.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The absolute name (lowercase, no trailing dot) of `spec.delegations[].name` in zone `domain`:
/// `team` and `team.<domain>` and `team.<domain>.` all mean `team.<domain>`.
pub fn child_name(name: &str, domain: &str) -> String {
    let n = name.to_ascii_lowercase();
    if let Some(abs) = n.strip_suffix('.') {
        return abs.to_string();
    }
    if n == domain || n.ends_with(&format!(".{domain}")) {
        return n;
    }
    format!("{n}.{domain}")
}

/// Whether `name` is `suffix` or below it (label-wise).
pub fn is_at_or_below(name: &str, suffix: &str) -> bool {
    name == suffix
        || (name.len() > suffix.len()
            && name.ends_with(suffix)
            && name.as_bytes()[name.len() - suffix.len() - 1] == b'.')
}

/// [`is_at_or_below`] for domains as written (ASCII case and a trailing dot ignored), without
/// allocating: for scans over every zone.
pub fn within(name: &str, suffix: &str) -> bool {
    let (n, s) = (
        name.trim_end_matches('.').as_bytes(),
        suffix.trim_end_matches('.').as_bytes(),
    );
    n.len() >= s.len()
        && n[n.len() - s.len()..].eq_ignore_ascii_case(s)
        && (n.len() == s.len() || n[n.len() - s.len() - 1] == b'.')
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
    let mut out = BTreeMap::new();
    let mut eligible: Vec<&Claim> = Vec::new();
    for c in claims {
        if let Err(message) = check_zone_name(&c.key.name) {
            out.insert(
                c.key.clone(),
                Verdict::Rejected {
                    reason: REASON_INVALID_NAME,
                    message,
                },
            );
        } else if let Some(Err(message)) = policy.map(|p| p.check(&c.key.namespace, &c.domain)) {
            out.insert(
                c.key.clone(),
                Verdict::Rejected {
                    reason: REASON_NOT_ALLOWED,
                    message,
                },
            );
        } else {
            eligible.push(c);
        }
    }

    // Same domain: the oldest keeps it.
    let mut by_domain: BTreeMap<&str, Vec<&Claim>> = BTreeMap::new();
    for c in eligible {
        by_domain.entry(c.domain.as_str()).or_default().push(c);
    }
    let mut holders: BTreeMap<&str, &Claim> = BTreeMap::new();
    for (domain, mut cs) in by_domain {
        cs.sort_by(|a, b| {
            (a.created.is_none(), a.created, &a.key).cmp(&(b.created.is_none(), b.created, &b.key))
        });
        let holder = cs[0];
        for c in &cs[1..] {
            out.insert(
                c.key.clone(),
                Verdict::Rejected {
                    reason: REASON_CONFLICT,
                    message: format!(
                        "domain {domain} is already claimed by DNSZone {}, which is older; this zone gets no nameservers while it exists",
                        holder.key
                    ),
                },
            );
        }
        holders.insert(domain, holder);
    }

    // Nesting: parents first, so a rejected parent is never anybody's ancestor.
    let mut order: Vec<&Claim> = holders.values().copied().collect();
    order.sort_by_key(|c| (c.domain.split('.').count(), c.domain.clone()));
    let mut accepted: BTreeMap<&str, &Claim> = BTreeMap::new();
    for c in order {
        let parent = ancestors(&c.domain).find_map(|a| accepted.get(a).copied());
        match parent {
            Some(p) if p.key.namespace != c.key.namespace && !delegates_to(p, c) => {
                let relative = c
                    .domain
                    .strip_suffix(&format!(".{}", p.domain))
                    .unwrap_or(&c.domain);
                out.insert(
                    c.key.clone(),
                    Verdict::Rejected {
                        reason: REASON_CONFLICT,
                        message: format!(
                            "domain {} is inside {}, served by DNSZone {} of another namespace, which does not delegate it to this zone; its owner can delegate it with spec.delegations: [{{name: {relative}, zoneRef: {{namespace: {}, name: {}}}}}]",
                            c.domain, p.domain, p.key, c.key.namespace, c.key.name
                        ),
                    },
                );
            }
            _ => {
                accepted.insert(c.domain.as_str(), c);
                out.insert(c.key.clone(), Verdict::Accepted);
            }
        }
    }
    out
}

/// Proper ancestors of `domain`, nearest first (`a.b.c` gives `b.c`, `c`).
fn ancestors(domain: &str) -> impl Iterator<Item = &str> {
    domain
        .match_indices('.')
        .map(move |(i, _)| &domain[i + 1..])
}

fn delegates_to(parent: &Claim, child: &Claim) -> bool {
    parent
        .delegates
        .iter()
        .any(|(name, key)| *name == child.domain && *key == child.key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(ns: &str, name: &str, domain: &str, created: i64) -> Claim {
        Claim {
            key: ZoneKey::new(ns, name),
            domain: domain.into(),
            created: Some(Timestamp::from_second(created).unwrap()),
            delegates: Vec::new(),
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
    fn names_and_suffixes() {
        assert_eq!(child_name("team", "example.com"), "team.example.com");
        assert_eq!(
            child_name("Team.Example.com.", "example.com"),
            "team.example.com"
        );
        assert_eq!(
            child_name("team.example.com", "example.com"),
            "team.example.com"
        );
        assert!(is_at_or_below("a.example.com", "example.com"));
        assert!(is_at_or_below("example.com", "example.com"));
        assert!(!is_at_or_below("aexample.com", "example.com"));
        assert!(!is_at_or_below("com", "example.com"));
        assert!(within("A.Example.com.", "example.COM"));
        assert!(within("example.com", "example.com."));
        assert!(!within("aexample.com", "example.com"));
        assert!(!within("com", "example.com"));
        assert_eq!(ancestors("a.b.c").collect::<Vec<_>>(), vec!["b.c", "c"]);
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
        let c = Claim::of(&zone).unwrap();
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
}
