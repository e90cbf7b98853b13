//! Domain names as written in DNSZones and on objects, and the rule of who serves a domain. Knows
//! no Kubernetes: the operator, the zone compiler, offline validation and `publish` (files mode)
//! all use these, so each rule exists once.
//!
//! **Who serves a domain** ([`resolve`]), over the claims of every DNSZone that is not being
//! deleted:
//!
//! 1. Claims the caller's own checks reject (`eligible`: the operator's name and policy rules)
//!    are rejected with the caller's reason.
//! 2. Of the remaining claims of one domain, the **holder** keeps it: the claim marked
//!    [`Claim::holds`] (the zone serving the domain now: how each mode knows is documented where
//!    it sets the mark, and in docs/multi-tenancy.md). With no holder (or several), the oldest
//!    (creationTimestamp; undated ones after dated ones) keeps it, then the first by
//!    namespace/name. The others are rejected (`DomainConflict`), naming the winner. So a zone
//!    added later never takes a domain away from the zone serving it; when the holder goes, the
//!    oldest of the rest takes over.
//! 3. With [`Mode::Operator`], a zone inside the domain of another accepted zone (its nearest
//!    accepted ancestor) in a different namespace is rejected (`DomainConflict`) unless that
//!    ancestor delegates exactly this zone's domain to it (`delegates`). A parent decides about
//!    its subdomains, whatever their age: that is what the parent's nameservers answer anyway.
//!
//! Rejected zones do not count as holders or ancestors, so a rejected duplicate or a zone outside
//! the policy never blocks anybody.

use std::collections::BTreeMap;

/// `namespace/name` of a DNSZone.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ZoneKey {
    pub namespace: String,
    pub name: String,
}

impl ZoneKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for ZoneKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Lowercase, no trailing dot.
pub fn normalize(domain: &str) -> String {
    domain.trim_end_matches('.').to_ascii_lowercase()
}

/// The absolute name (lowercase, no trailing dot) of `spec.delegations[].name` in zone `domain`:
/// `team` and `team.<domain>` and `team.<domain>.` all mean `team.<domain>`.
pub fn child_name(name: &str, domain: &str) -> String {
    let n = name.to_ascii_lowercase();
    if let Some(abs) = n.strip_suffix('.') {
        return abs.to_string();
    }
    if is_at_or_below(&n, domain) {
        return n;
    }
    format!("{n}.{domain}")
}

/// Whether `name` is `suffix` or below it (label-wise), both already normalized: exact bytes,
/// as the apiserver's CEL rules compare.
pub fn is_at_or_below(name: &str, suffix: &str) -> bool {
    name == suffix
        || (name.len() > suffix.len()
            && name.ends_with(suffix)
            && name.as_bytes()[name.len() - suffix.len() - 1] == b'.')
}

/// [`is_at_or_below`] for names as written (ASCII case ignored, one trailing dot optional on
/// either), without allocating: for scans over every zone, and for hostnames on objects, judged
/// on the text alone so that invalid names of other zones stay silent.
pub fn within(name: &str, suffix: &str) -> bool {
    let (n, s) = (
        name.strip_suffix('.').unwrap_or(name).as_bytes(),
        suffix.strip_suffix('.').unwrap_or(suffix).as_bytes(),
    );
    n.len() >= s.len()
        && n[n.len() - s.len()..].eq_ignore_ascii_case(s)
        && (n.len() == s.len() || n[n.len() - s.len() - 1] == b'.')
}

/// Proper ancestors of `domain`, nearest first (`a.b.c` gives `b.c`, `c`).
pub fn ancestors(domain: &str) -> impl Iterator<Item = &str> {
    domain
        .match_indices('.')
        .map(move |(i, _)| &domain[i + 1..])
}

/// Condition reasons of `Accepted=False`.
pub const REASON_CONFLICT: &str = "DomainConflict";

/// What the rule needs to know about one DNSZone.
#[derive(Clone, Debug)]
pub struct Claim {
    pub key: ZoneKey,
    /// Lowercase, without the trailing dot.
    pub domain: String,
    /// `metadata.creationTimestamp` in nanoseconds since the epoch.
    pub created: Option<i128>,
    /// Child domains delegated with `zoneRef`, with the referenced zone.
    pub delegates: Vec<(String, ZoneKey)>,
    /// This zone serves the domain now (see the module comment).
    pub holds: bool,
}

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

/// Where the claims come from, which decides whether rule 3 (nesting across namespaces)
/// applies and what a rejection means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The operator: namespaces are tenants, and a rejected zone gets no nameservers. Rule 3
    /// applies.
    Operator,
    /// A manifest tree (`serve --manifests`, `check`, `render`): one trusted source whose zones
    /// one server answers for, each name from its closest enclosing zone, so a nested zone needs
    /// no delegation to be answered. Rule 3 does not apply, as DNSZoneGrants are not required.
    Files,
}

impl Mode {
    fn consequence(self) -> &'static str {
        match self {
            Mode::Operator => "this zone gets no nameservers while it exists",
            Mode::Files => "this zone is not served while it exists",
        }
    }
}

/// The verdict for every claim. `eligible` returns the rejection of a claim the caller's own
/// rules refuse (rule 1).
pub fn resolve(
    claims: &[Claim],
    mode: Mode,
    eligible: impl Fn(&Claim) -> Option<Verdict>,
) -> BTreeMap<ZoneKey, Verdict> {
    let mut out = BTreeMap::new();
    let mut by_domain: BTreeMap<&str, Vec<&Claim>> = BTreeMap::new();
    for c in claims {
        match eligible(c) {
            Some(rejected) => {
                out.insert(c.key.clone(), rejected);
            }
            None => by_domain.entry(c.domain.as_str()).or_default().push(c),
        }
    }

    // Same domain: the holder keeps it, else the oldest.
    let age = |c: &Claim| (c.created.is_none(), c.created, c.key.clone());
    let mut holders: BTreeMap<&str, &Claim> = BTreeMap::new();
    for (domain, mut cs) in by_domain {
        cs.sort_by_key(|c| (!c.holds, age(c)));
        let holder = cs[0];
        for c in &cs[1..] {
            let older =
                (holder.created.is_none(), holder.created) < (c.created.is_none(), c.created);
            let why = if older {
                "which is older"
            } else if holder.holds {
                "which serves it already and keeps it until it goes away"
            } else {
                "which comes first by namespace/name (neither is older)"
            };
            out.insert(
                c.key.clone(),
                Verdict::Rejected {
                    reason: REASON_CONFLICT,
                    message: format!(
                        "domain {domain} is already claimed by DNSZone {}, {why}; {}",
                        holder.key,
                        mode.consequence()
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
            Some(p)
                if mode == Mode::Operator
                    && p.key.namespace != c.key.namespace
                    && !delegates_to(p, c) =>
            {
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

fn delegates_to(parent: &Claim, child: &Claim) -> bool {
    parent
        .delegates
        .iter()
        .any(|(name, key)| *name == child.domain && *key == child.key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(ns: &str, name: &str, domain: &str, created: Option<i128>) -> Claim {
        Claim {
            key: ZoneKey::new(ns, name),
            domain: domain.into(),
            created,
            delegates: Vec::new(),
            holds: false,
        }
    }

    fn verdict(v: &BTreeMap<ZoneKey, Verdict>, ns: &str, name: &str) -> String {
        match &v[&ZoneKey::new(ns, name)] {
            Verdict::Accepted => "Accepted".into(),
            Verdict::Rejected { reason, message } => format!("{reason}: {message}"),
        }
    }

    #[test]
    fn names_and_suffixes() {
        assert_eq!(normalize("Acme.Example.COM."), "acme.example.com");
        assert_eq!(child_name("team", "example.com"), "team.example.com");
        assert_eq!(
            child_name("Team.Example.com.", "example.com"),
            "team.example.com"
        );
        assert_eq!(
            child_name("team.example.com", "example.com"),
            "team.example.com"
        );
        // ends with the domain's text, not on a label boundary: relative
        assert_eq!(
            child_name("xexample.com", "example.com"),
            "xexample.com.example.com"
        );
        assert!(is_at_or_below("a.example.com", "example.com"));
        assert!(is_at_or_below("example.com", "example.com"));
        assert!(!is_at_or_below("aexample.com", "example.com"));
        assert!(!is_at_or_below("com", "example.com"));
        // exact: case matters, as in the apiserver's rules
        assert!(!is_at_or_below("www.Example.com", "example.com"));
        assert!(within("A.Example.com.", "example.COM"));
        assert!(within("example.com", "example.com."));
        assert!(within("*.apps.acme.example.com", "acme.example.com"));
        assert!(!within("aexample.com", "example.com"));
        assert!(!within("com", "example.com"));
        assert!(!within("acme.example.com.evil.org", "acme.example.com"));
        assert!(!within("", "acme.example.com"));
        // one trailing dot, not two
        assert!(!within("www.example.com..", "example.com"));
        assert_eq!(ancestors("a.b.c").collect::<Vec<_>>(), vec!["b.c", "c"]);
    }

    #[test]
    fn the_holder_keeps_its_domain_whatever_the_ages_and_names() {
        // b/new is newer and sorts after a/old, but serves the domain now.
        let mut holder = claim("b", "new", "x.example", Some(200));
        holder.holds = true;
        let v = resolve(
            &[holder, claim("a", "old", "x.example", Some(100))],
            Mode::Operator,
            |_| None,
        );
        assert_eq!(verdict(&v, "b", "new"), "Accepted");
        assert_eq!(
            verdict(&v, "a", "old"),
            "DomainConflict: domain x.example is already claimed by DNSZone b/new, which serves it already and keeps it until it goes away; this zone gets no nameservers while it exists"
        );
        // Undated (files mode): the holder wins over a name that sorts first.
        let mut holder = claim("team", "zz", "x.example", None);
        holder.holds = true;
        let v = resolve(
            &[claim("team", "aa", "x.example", None), holder],
            Mode::Files,
            |_| None,
        );
        assert_eq!(verdict(&v, "team", "zz"), "Accepted");
        assert_eq!(
            verdict(&v, "team", "aa"),
            "DomainConflict: domain x.example is already claimed by DNSZone team/zz, which serves it already and keeps it until it goes away; this zone is not served while it exists"
        );
    }

    #[test]
    fn without_a_holder_the_oldest_then_the_name_wins() {
        let v = resolve(
            &[
                claim("a", "a", "x.example", None),
                claim("b", "z", "x.example", Some(5)),
                claim("b", "y", "x.example", Some(5)),
            ],
            Mode::Operator,
            |_| None,
        );
        assert_eq!(verdict(&v, "b", "y"), "Accepted");
        assert_eq!(
            verdict(&v, "b", "z"),
            "DomainConflict: domain x.example is already claimed by DNSZone b/y, which comes first by namespace/name (neither is older); this zone gets no nameservers while it exists"
        );
        assert!(verdict(&v, "a", "a").contains("claimed by DNSZone b/y, which is older"));
        // Two holders (statuses written under another rule): the oldest of them.
        let (mut h1, mut h2) = (
            claim("a", "h1", "x.example", Some(9)),
            claim("a", "h2", "x.example", Some(8)),
        );
        (h1.holds, h2.holds) = (true, true);
        let v = resolve(
            &[h1, h2, claim("a", "old", "x.example", Some(1))],
            Mode::Operator,
            |_| None,
        );
        assert_eq!(verdict(&v, "a", "h2"), "Accepted");
        assert!(verdict(&v, "a", "h1").contains("which is older"));
        assert!(verdict(&v, "a", "old").contains("which serves it already"));
    }

    #[test]
    fn an_ineligible_holder_keeps_nothing() {
        let mut holder = claim("squat", "h", "x.example", Some(1));
        holder.holds = true;
        let v = resolve(
            &[holder, claim("team", "b", "x.example", Some(2))],
            Mode::Operator,
            |c| {
                (c.key.namespace == "squat").then(|| Verdict::Rejected {
                    reason: "DomainNotAllowed",
                    message: "no".into(),
                })
            },
        );
        assert_eq!(verdict(&v, "squat", "h"), "DomainNotAllowed: no");
        assert_eq!(verdict(&v, "team", "b"), "Accepted");
    }

    #[test]
    fn nesting_is_a_rule_only_where_namespaces_are_tenants() {
        let claims = [
            claim("infra", "root", "example.com", Some(1)),
            claim("team", "web", "team.example.com", Some(2)),
        ];
        let v = resolve(&claims, Mode::Operator, |_| None);
        assert!(
            verdict(&v, "team", "web")
                .starts_with("DomainConflict: domain team.example.com is inside example.com")
        );
        let v = resolve(&claims, Mode::Files, |_| None);
        assert_eq!(verdict(&v, "team", "web"), "Accepted");
        assert_eq!(verdict(&v, "infra", "root"), "Accepted");
    }
}
