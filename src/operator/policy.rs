//! The domain policy (`zonegate operator --domain-policy FILE`): which namespaces may claim which
//! domain suffixes. A YAML mapping of namespace globs to lists of suffixes:
//!
//! ```yaml
//! platform: [example.com, example.org]       # any domain at or below these
//! "team-*": ["{namespace}.apps.example.com"] # {namespace} is the claiming namespace
//! sandbox: ["*"]                             # anything
//! ```
//!
//! A namespace may claim a domain when some glob matching the namespace lists the domain or one
//! of its parents. With a policy file, namespaces that no glob matches may claim nothing; without
//! one, every namespace may claim any domain.

use std::collections::BTreeMap;

/// A parsed domain policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainPolicy {
    rules: Vec<(String, Vec<String>)>,
}

impl DomainPolicy {
    /// Parses the YAML mapping; every key a non-empty glob (`*`, `?`), every value a list of
    /// domain suffixes (a trailing dot is dropped), `*`, or a suffix containing `{namespace}`.
    pub fn parse(yaml: &str) -> Result<Self, String> {
        let map: BTreeMap<String, Vec<String>> = if yaml.trim().is_empty() {
            BTreeMap::new()
        } else {
            serde_saphyr::from_str(yaml).map_err(|e| {
                format!("domain policy: expected a mapping of namespace globs to lists of domain suffixes: {e}")
            })?
        };
        let mut rules = Vec::new();
        for (glob, suffixes) in map {
            if glob.is_empty() {
                return Err("domain policy: empty namespace glob".into());
            }
            let mut clean = Vec::new();
            for s in suffixes {
                let s = crate::domain::normalize(s.trim());
                if s.is_empty() {
                    return Err(format!("domain policy: {glob:?}: empty domain suffix"));
                }
                if s != "*" && s.split('.').any(str::is_empty) {
                    return Err(format!(
                        "domain policy: {glob:?}: invalid domain suffix {s:?}"
                    ));
                }
                clean.push(s);
            }
            rules.push((glob, clean));
        }
        Ok(Self { rules })
    }

    /// Reads and parses a policy file.
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading the domain policy {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The suffixes `namespace` may claim (placeholders filled in), in policy order.
    pub fn allowed_suffixes(&self, namespace: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (glob, suffixes) in &self.rules {
            if glob_match(glob, namespace) {
                for s in suffixes {
                    let s = s.replace("{namespace}", namespace);
                    if !out.contains(&s) {
                        out.push(s);
                    }
                }
            }
        }
        out
    }

    /// `Ok(())` when `namespace` may claim `domain`, else the message for the tenant.
    pub fn check(&self, namespace: &str, domain: &str) -> Result<(), String> {
        let allowed = self.allowed_suffixes(namespace);
        if allowed
            .iter()
            .any(|s| s == "*" || crate::domain::is_at_or_below(domain, s))
        {
            return Ok(());
        }
        if allowed.is_empty() {
            Err(format!(
                "the cluster's domain policy allows namespace {namespace} no domains; ask a cluster administrator to allow {domain}"
            ))
        } else {
            Err(format!(
                "the cluster's domain policy allows namespace {namespace} only domains at or below {}; {domain} is not one of them",
                allowed.join(", ")
            ))
        }
    }
}

/// Shell-style glob: `*` matches any run of characters, `?` one character.
pub fn glob_match(glob: &str, s: &str) -> bool {
    let (g, s): (Vec<char>, Vec<char>) = (glob.chars().collect(), s.chars().collect());
    let (mut gi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if gi < g.len() && (g[gi] == '?' || g[gi] == s[si]) {
            gi += 1;
            si += 1;
        } else if gi < g.len() && g[gi] == '*' {
            star = Some(gi);
            mark = si;
            gi += 1;
        } else if let Some(st) = star {
            gi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while gi < g.len() && g[gi] == '*' {
        gi += 1;
    }
    gi == g.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("team-*", "team-a"));
        assert!(glob_match("team-*", "team-"));
        assert!(!glob_match("team-*", "team"));
        assert!(glob_match("*", ""));
        assert!(glob_match("*-prod", "shop-prod"));
        assert!(!glob_match("*-prod", "shop-prod2"));
        assert!(glob_match("t?am", "team"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("platform", "platform"));
        assert!(!glob_match("platform", "platforms"));
    }

    #[test]
    fn allows_suffixes_per_namespace_glob() {
        let p = DomainPolicy::parse(
            "platform: [example.com, Example.ORG.]\n\"team-*\": [\"{namespace}.apps.example.com\"]\nsandbox: [\"*\"]\n",
        )
        .unwrap();
        assert!(p.check("platform", "example.com").is_ok());
        assert!(p.check("platform", "shop.example.org").is_ok());
        assert!(p.check("platform", "example.net").is_err());
        // label boundary: notexample.com is not below example.com
        assert!(p.check("platform", "notexample.com").is_err());
        assert!(p.check("team-a", "team-a.apps.example.com").is_ok());
        assert!(p.check("team-a", "www.team-a.apps.example.com").is_ok());
        let err = p.check("team-a", "team-b.apps.example.com").unwrap_err();
        assert_eq!(
            err,
            "the cluster's domain policy allows namespace team-a only domains at or below team-a.apps.example.com; team-b.apps.example.com is not one of them"
        );
        assert!(p.check("sandbox", "anything.test").is_ok());
        let err = p.check("other", "x.example.com").unwrap_err();
        assert!(err.contains("allows namespace other no domains"), "{err}");
    }

    #[test]
    fn several_globs_add_up() {
        let p = DomainPolicy::parse("\"*\": [shared.example]\nteam-a: [a.example]\n").unwrap();
        assert_eq!(
            p.allowed_suffixes("team-a"),
            vec!["shared.example".to_string(), "a.example".to_string()]
        );
        assert_eq!(p.allowed_suffixes("x"), vec!["shared.example".to_string()]);
    }

    #[test]
    fn rejects_bad_files() {
        assert!(DomainPolicy::parse("- a\n- b\n").is_err());
        assert!(DomainPolicy::parse("a: [\"\"]\n").is_err());
        assert!(DomainPolicy::parse("a: [\"x..y\"]\n").is_err());
        assert_eq!(
            DomainPolicy::parse("").unwrap().allowed_suffixes("a"),
            Vec::<String>::new()
        );
    }
}
