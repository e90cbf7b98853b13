//! The ExternalDNS / k8s_gateway annotations read on source objects.

use crate::objects::Meta;

/// Hostname annotations: every one present contributes its names.
pub(crate) const HOSTNAME: [&str; 3] = [
    "coredns.io/hostname",
    "external-dns.alpha.kubernetes.io/hostname",
    "external-dns.kubernetes.io/hostname",
];
/// Target annotations, in precedence order: the first one present is used.
pub(crate) const TARGET: [&str; 2] = [
    "external-dns.alpha.kubernetes.io/target",
    "external-dns.kubernetes.io/target",
];
/// TTL annotations, in precedence order: the first one present is used.
pub(crate) const TTL: [&str; 2] = [
    "external-dns.alpha.kubernetes.io/ttl",
    "external-dns.kubernetes.io/ttl",
];

/// Largest TTL an annotation may set (one day).
pub(crate) const MAX_TTL: u32 = 86400;

/// `metadata.annotations[<key>]`, the field name problems use.
pub(crate) fn field(key: &str) -> String {
    format!("metadata.annotations[{key}]")
}

/// Items of a comma-separated list: spaces trimmed, empty items skipped.
fn items(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Every hostname of every hostname annotation, with its field, in key order.
pub(crate) fn hostnames(meta: &Meta) -> Vec<(String, &str)> {
    HOSTNAME
        .iter()
        .filter_map(|key| meta.annotations.get(*key).map(|v| (field(key), v)))
        .flat_map(|(field, v)| items(v).map(move |item| (field.clone(), item)))
        .collect()
}

/// The first target annotation that is present and not blank: its field and items. A blank
/// annotation counts as absent (it does not erase the object's targets).
pub(crate) fn targets(meta: &Meta) -> Option<(String, Vec<&str>)> {
    TARGET.iter().find_map(|key| {
        let list: Vec<&str> = items(meta.annotations.get(*key)?).collect();
        (!list.is_empty()).then(|| (field(key), list))
    })
}

/// The first TTL annotation present: its field and the parsed TTL.
pub(crate) fn ttl(meta: &Meta) -> Option<(String, Result<u32, String>)> {
    TTL.iter().find_map(|key| {
        meta.annotations
            .get(*key)
            .map(|v| (field(key), parse_ttl(v)))
    })
}

/// A TTL as ExternalDNS reads it: whole seconds (`300`) or a Go duration (`10m`, `1h30m`,
/// `1.5h`), truncated to whole seconds; it must be within 1..=86400.
pub(crate) fn parse_ttl(raw: &str) -> Result<u32, String> {
    let s = raw.trim();
    let seconds = match s.parse::<i64>() {
        Ok(n) => n as f64,
        Err(_) => go_duration_seconds(s).map_err(|e| format!("invalid TTL {raw:?}: {e}"))?,
    };
    let whole = seconds.trunc();
    if !(1.0..=f64::from(MAX_TTL)).contains(&whole) {
        return Err(format!("TTL {raw:?} is out of range 1..{MAX_TTL} seconds"));
    }
    Ok(whole as u32)
}

/// Parses a Go `time.ParseDuration` string into seconds: a sequence of decimal numbers, each
/// with a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), optionally signed.
fn go_duration_seconds(s: &str) -> Result<f64, String> {
    let (negative, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0.0);
    }
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() || num == "." {
            return Err("expected a number".into());
        }
        let value: f64 = num.parse().map_err(|_| format!("bad number {num:?}"))?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err("missing unit".into()),
            other => return Err(format!("unknown unit {other:?}")),
        };
        total += value * scale;
        rest = tail;
    }
    Ok(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn meta(annotations: &[(&str, &str)]) -> Meta {
        Meta {
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            ..Meta::default()
        }
    }

    #[test]
    fn ttl_seconds_and_go_durations() {
        assert_eq!(parse_ttl("300"), Ok(300));
        assert_eq!(parse_ttl(" 60 "), Ok(60));
        assert_eq!(parse_ttl("10m"), Ok(600));
        assert_eq!(parse_ttl("1h30m"), Ok(5400));
        assert_eq!(parse_ttl("1.5h"), Ok(5400));
        assert_eq!(parse_ttl("90s"), Ok(90));
        assert_eq!(parse_ttl("1m500ms"), Ok(60));
        assert_eq!(parse_ttl("24h"), Ok(86400));
    }

    #[test]
    fn ttl_out_of_range_or_invalid() {
        assert!(parse_ttl("0").unwrap_err().contains("out of range"));
        assert!(parse_ttl("86401").unwrap_err().contains("out of range"));
        assert!(parse_ttl("25h").unwrap_err().contains("out of range"));
        assert!(parse_ttl("-5").is_err());
        assert!(parse_ttl("500ms").is_err());
        assert!(parse_ttl("ten").unwrap_err().contains("invalid TTL"));
        assert!(parse_ttl("10").is_ok());
        assert!(parse_ttl("10x").unwrap_err().contains("unknown unit"));
        assert!(parse_ttl("10").is_ok());
        assert!(parse_ttl("").is_err());
        assert!(parse_ttl("5m10").unwrap_err().contains("missing unit"));
    }

    #[test]
    fn ttl_annotation_precedence() {
        let m = meta(&[
            ("external-dns.kubernetes.io/ttl", "30"),
            ("external-dns.alpha.kubernetes.io/ttl", "40"),
        ]);
        let (field, ttl) = ttl(&m).unwrap();
        assert_eq!(
            field,
            "metadata.annotations[external-dns.alpha.kubernetes.io/ttl]"
        );
        assert_eq!(ttl, Ok(40));
        let m = meta(&[("external-dns.kubernetes.io/ttl", "30")]);
        assert_eq!(super::ttl(&m).unwrap().1, Ok(30));
        assert!(super::ttl(&meta(&[])).is_none());
    }

    #[test]
    fn hostname_lists_are_split_and_trimmed() {
        let m = meta(&[
            ("coredns.io/hostname", " a.example.com , b.example.com,,"),
            ("external-dns.kubernetes.io/hostname", "c.example.com"),
        ]);
        let got: Vec<(String, &str)> = hostnames(&m);
        assert_eq!(
            got,
            vec![
                (
                    "metadata.annotations[coredns.io/hostname]".to_string(),
                    "a.example.com"
                ),
                (
                    "metadata.annotations[coredns.io/hostname]".to_string(),
                    "b.example.com"
                ),
                (
                    "metadata.annotations[external-dns.kubernetes.io/hostname]".to_string(),
                    "c.example.com"
                ),
            ]
        );
    }

    #[test]
    fn targets_first_non_blank_annotation() {
        let m = meta(&[
            ("external-dns.alpha.kubernetes.io/target", "  "),
            (
                "external-dns.kubernetes.io/target",
                "192.0.2.1, lb.example.net",
            ),
        ]);
        let (field, list) = targets(&m).unwrap();
        assert_eq!(
            field,
            "metadata.annotations[external-dns.kubernetes.io/target]"
        );
        assert_eq!(list, vec!["192.0.2.1", "lb.example.net"]);
        assert!(targets(&meta(&[])).is_none());
    }
}
