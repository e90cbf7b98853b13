//! Name handling: the one function that turns a written hostname into a lowercase, fully
//! qualified `Name` (validating it), and the zone-relative forms of `spec.records` and
//! `spec.delegations`.

use crate::domain::within;
use hickory_proto::rr::Name;

/// Which characters a label may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Syntax {
    /// Hostnames written on Kubernetes objects (Ingress hosts, route and listener hostnames,
    /// annotations, load-balancer hostnames): RFC 1123 labels of letters, digits and `-`.
    Host,
    /// Names written as DNS data (`spec.records`, DNSEndpoints, names inside record values): `_`
    /// is also allowed, for `_acme-challenge`, `_sip._tcp` or DKIM selectors.
    Dns,
}

/// Parses `raw` as an absolute hostname: one trailing dot is optional, letters are lowercased,
/// labels are 1 to 63 characters of the `syntax`'s alphabet and neither start nor end with `-`,
/// the name is at most 253 characters (without the trailing dot). With `wildcard`, the first
/// label may be `*` (and only the whole first label).
pub(crate) fn parse_host(raw: &str, syntax: Syntax, wildcard: bool) -> Result<Name, String> {
    let invalid = |why: String| format!("invalid hostname {raw:?}: {why}");
    let s = raw.strip_suffix('.').unwrap_or(raw).to_ascii_lowercase();
    if s.is_empty() {
        return Err(invalid("empty name".into()));
    }
    if s.len() > 253 {
        return Err(invalid(format!("{} characters, more than 253", s.len())));
    }
    for (i, label) in s.split('.').enumerate() {
        if label.is_empty() {
            return Err(invalid("empty label".into()));
        }
        if label == "*" {
            if !wildcard {
                return Err(invalid("a wildcard is not allowed here".into()));
            }
            if i != 0 {
                return Err(invalid(
                    "`*` is allowed only as the whole first label".into(),
                ));
            }
            continue;
        }
        if label.len() > 63 {
            return Err(invalid(format!(
                "label {label:?} has {} characters, more than 63",
                label.len()
            )));
        }
        if let Some(ch) = label.chars().find(|&ch| {
            !(ch.is_ascii_lowercase()
                || ch.is_ascii_digit()
                || ch == '-'
                || (ch == '_' && syntax == Syntax::Dns))
        }) {
            return Err(invalid(format!("label {label:?} contains {ch:?}")));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid(format!("label {label:?} starts or ends with '-'")));
        }
    }
    Name::from_ascii(format!("{s}.")).map_err(|e| invalid(e.to_string()))
}

/// An owner name of `spec.records` or `spec.delegations`: `@` is the apex; a name ending in `.`
/// is fully qualified and must be inside the domain; a name without the trailing dot that
/// equals the domain or ends with `.<domain>` is also taken as fully qualified (so
/// `www.acme.example.com` does not become `www.acme.example.com.acme.example.com`); anything
/// else is relative to the domain (`www`, `*.apps`).
pub(crate) fn zone_name(raw: &str, domain: &str, wildcard: bool) -> Result<Name, String> {
    let absolute = if raw == "@" {
        domain.to_string()
    } else if let Some(fq) = raw.strip_suffix('.') {
        if !within(fq, domain) {
            return Err(format!("{raw:?} is not inside the zone {domain}"));
        }
        fq.to_string()
    } else if within(raw, domain) {
        raw.to_string()
    } else {
        format!("{raw}.{domain}")
    };
    parse_host(&absolute, Syntax::Dns, wildcard)
}

/// `Name` to text without the trailing dot, for messages.
pub(crate) fn show(name: &Name) -> String {
    let s = name.to_ascii();
    s.strip_suffix('.').map(str::to_string).unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str, syntax: Syntax, wildcard: bool) -> String {
        parse_host(raw, syntax, wildcard).unwrap().to_ascii()
    }

    #[test]
    fn lowercases_and_qualifies() {
        assert_eq!(
            ok("WWW.Acme.Example.COM", Syntax::Host, false),
            "www.acme.example.com."
        );
        let n = parse_host("a.b", Syntax::Host, false).unwrap();
        assert!(n.is_fqdn());
    }

    #[test]
    fn one_trailing_dot_is_optional() {
        assert_eq!(
            ok("www.example.com.", Syntax::Host, false),
            "www.example.com."
        );
        assert!(
            parse_host("www.example.com..", Syntax::Host, false)
                .unwrap_err()
                .contains("empty label")
        );
    }

    #[test]
    fn rejects_empty_and_empty_labels() {
        assert!(
            parse_host("", Syntax::Host, false)
                .unwrap_err()
                .contains("empty name")
        );
        assert!(
            parse_host(".", Syntax::Host, false)
                .unwrap_err()
                .contains("empty name")
        );
        assert!(
            parse_host("a..b", Syntax::Host, false)
                .unwrap_err()
                .contains("empty label")
        );
    }

    #[test]
    fn label_length_limit_is_63() {
        let l63 = "a".repeat(63);
        let l64 = "a".repeat(64);
        assert!(parse_host(&format!("{l63}.example.com"), Syntax::Host, false).is_ok());
        let err = parse_host(&format!("{l64}.example.com"), Syntax::Host, false).unwrap_err();
        assert!(err.contains("64 characters, more than 63"), "{err}");
    }

    #[test]
    fn name_length_limit_is_253() {
        let label = "a".repeat(63);
        let ok253 = format!("{label}.{label}.{label}.{}", "b".repeat(61));
        assert_eq!(ok253.len(), 253);
        assert!(parse_host(&ok253, Syntax::Host, false).is_ok());
        assert!(parse_host(&format!("{ok253}."), Syntax::Host, false).is_ok());
        let err = parse_host(&format!("c{ok253}"), Syntax::Host, false).unwrap_err();
        assert!(err.contains("more than 253"), "{err}");
    }

    #[test]
    fn underscore_only_in_dns_syntax() {
        let err = parse_host("foo_bar.example.com", Syntax::Host, false).unwrap_err();
        assert!(err.contains("contains '_'"), "{err}");
        assert_eq!(
            ok("_acme-challenge.Example.com", Syntax::Dns, false),
            "_acme-challenge.example.com."
        );
    }

    #[test]
    fn rejects_bad_characters_and_hyphens() {
        assert!(parse_host("a b.example.com", Syntax::Dns, false).is_err());
        assert!(parse_host("a@b.example.com", Syntax::Dns, false).is_err());
        assert!(parse_host("bücher.example.com", Syntax::Dns, false).is_err());
        assert!(
            parse_host("-a.example.com", Syntax::Host, false)
                .unwrap_err()
                .contains("starts or ends")
        );
        assert!(parse_host("a-.example.com", Syntax::Host, false).is_err());
        assert_eq!(
            ok("xn--bcher-kva.example.com", Syntax::Host, false),
            "xn--bcher-kva.example.com."
        );
    }

    #[test]
    fn wildcard_only_as_whole_first_label() {
        assert_eq!(
            ok("*.Apps.example.com", Syntax::Host, true),
            "*.apps.example.com."
        );
        assert!(
            parse_host("*.apps.example.com", Syntax::Host, true)
                .unwrap()
                .is_wildcard()
        );
        assert!(
            parse_host("*.apps.example.com", Syntax::Host, false)
                .unwrap_err()
                .contains("not allowed here")
        );
        assert!(
            parse_host("a.*.example.com", Syntax::Host, true)
                .unwrap_err()
                .contains("first label")
        );
        assert!(
            parse_host("*my.host", Syntax::Host, true)
                .unwrap_err()
                .contains("'*'")
        );
        assert!(parse_host("**my.host", Syntax::Host, true).is_err());
    }

    #[test]
    fn zone_names_at_relative_and_absolute() {
        let d = "acme.example.com";
        assert_eq!(
            zone_name("@", d, false).unwrap().to_ascii(),
            "acme.example.com."
        );
        assert_eq!(
            zone_name("www", d, false).unwrap().to_ascii(),
            "www.acme.example.com."
        );
        assert_eq!(
            zone_name("*.apps", d, true).unwrap().to_ascii(),
            "*.apps.acme.example.com."
        );
        assert_eq!(
            zone_name("WWW.acme.example.com.", d, false)
                .unwrap()
                .to_ascii(),
            "www.acme.example.com."
        );
        assert_eq!(
            zone_name("acme.example.com.", d, false).unwrap().to_ascii(),
            "acme.example.com."
        );
        // Without the trailing dot but ending with the domain: taken as fully qualified.
        assert_eq!(
            zone_name("www.acme.example.com", d, false)
                .unwrap()
                .to_ascii(),
            "www.acme.example.com."
        );
        assert_eq!(
            zone_name("acme.example.com", d, false).unwrap().to_ascii(),
            "acme.example.com."
        );
        // Ends with the domain text but not on a label boundary: relative.
        assert_eq!(
            zone_name("xacme.example.com", d, false).unwrap().to_ascii(),
            "xacme.example.com.acme.example.com."
        );
        assert!(
            zone_name("www.other.org.", d, false)
                .unwrap_err()
                .contains("not inside the zone")
        );
        assert!(zone_name("*.apps", d, false).is_err());
        assert_eq!(
            zone_name("_dmarc", d, false).unwrap().to_ascii(),
            "_dmarc.acme.example.com."
        );
    }

    #[test]
    fn show_drops_trailing_dot() {
        assert_eq!(
            show(&parse_host("a.b", Syntax::Host, false).unwrap()),
            "a.b"
        );
    }
}
