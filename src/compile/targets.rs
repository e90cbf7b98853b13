//! Record data: the shared target-to-record rule of every source, and presentation-format values.

use super::names::{self, Syntax};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, SRV, TXT};
use hickory_proto::rr::{Name, RData, RecordType};
use std::net::IpAddr;

/// An IP address as an A (IPv4) or AAAA (IPv6) record.
pub(crate) fn ip_rdata(raw: &str) -> Result<RData, String> {
    match raw.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => Ok(RData::A(A(ip))),
        Ok(IpAddr::V6(ip)) => Ok(RData::AAAA(AAAA(ip))),
        Err(_) => Err(format!("{raw:?} is not an IP address")),
    }
}

/// A hostname (trailing dot optional) as a CNAME target.
pub(crate) fn cname_rdata(raw: &str, syntax: Syntax) -> Result<RData, String> {
    Ok(RData::CNAME(CNAME(names::parse_host(raw, syntax, false)?)))
}

/// The target rule shared by every source: an IPv4 address gives an A record, an IPv6 address
/// an AAAA record, anything else must be a hostname and gives a CNAME (never a lookup).
pub(crate) fn target_rdata(raw: &str) -> Result<RData, String> {
    ip_rdata(raw).or_else(|_| cname_rdata(raw, Syntax::Host))
}

/// Number of whitespace-separated fields a value of `rtype` has (CAA: at least 3; TXT: any).
fn field_count(rtype: RecordType) -> Option<(usize, &'static str)> {
    match rtype {
        RecordType::A => Some((1, "an IPv4 address")),
        RecordType::AAAA => Some((1, "an IPv6 address")),
        RecordType::CNAME | RecordType::NS => Some((1, "one hostname")),
        RecordType::MX => Some((2, "'<preference> <exchange>'")),
        RecordType::SRV => Some((4, "'<priority> <weight> <port> <target>'")),
        _ => None,
    }
}

/// Parses one value in zone-file presentation format (`RData::try_from_str`), then:
/// - checks A/AAAA/CNAME/NS/MX/SRV values have exactly their fields (the parser would ignore
///   extra ones) and CAA values at least `<flags> <tag> <value>`;
/// - makes names inside the value (CNAME, NS, MX exchange, SRV target) absolute, lowercase and
///   valid: they are fully qualified whether or not they end with `.` (there is no `$ORIGIN`;
///   writing `mail` means the top-level name `mail.`, not `mail.<domain>`);
/// - parses TXT values with `txt::parse` (full RFC 1035 escapes; 255-byte strings).
pub(crate) fn parse_value(rtype: RecordType, raw: &str) -> Result<RData, String> {
    parse_value_warn(rtype, raw).map(|(rdata, _)| rdata)
}

/// `parse_value`, with the warning of a value that is valid but probably not what was meant
/// (a TXT value of several unquoted strings).
pub(crate) fn parse_value_warn(
    rtype: RecordType,
    raw: &str,
) -> Result<(RData, Option<String>), String> {
    let invalid = |why: String| format!("invalid {rtype} value {raw:?}: {why}");
    if rtype == RecordType::TXT {
        let t = super::txt::parse(raw).map_err(invalid)?;
        let warning = t
            .warning
            .map(|w| format!("TXT value {raw:?}: {w}; served as written"));
        let strings: Vec<&[u8]> = t.strings.iter().map(Vec::as_slice).collect();
        return Ok((RData::TXT(TXT::from_bytes(strings)), warning));
    }
    let fields = raw.split_whitespace().count();
    match field_count(rtype) {
        Some((n, what)) if fields != n => return Err(invalid(format!("expected {what}"))),
        None if rtype == RecordType::CAA && fields < 3 => {
            return Err(invalid("expected '<flags> <tag> <value>'".into()));
        }
        _ => {}
    }
    let rdata = RData::try_from_str(rtype, raw).map_err(|e| invalid(e.to_string()))?;
    // The root (`.`) stays the root: a null MX (RFC 7505) or an SRV "no service" target.
    let absolute = |name: &Name| -> Result<Name, String> {
        if name.is_root() {
            return Ok(Name::root());
        }
        names::parse_host(&name.to_ascii(), Syntax::Dns, false).map_err(invalid)
    };
    Ok((
        match rdata {
            RData::CNAME(CNAME(n)) => RData::CNAME(CNAME(absolute(&n)?)),
            RData::NS(NS(n)) => RData::NS(NS(absolute(&n)?)),
            RData::MX(mx) => RData::MX(MX::new(mx.preference, absolute(&mx.exchange)?)),
            RData::SRV(srv) => RData::SRV(SRV::new(
                srv.priority,
                srv.weight,
                srv.port,
                absolute(&srv.target)?,
            )),
            RData::CAA(caa) => {
                // RFC 8659 §4.1: a tag is 1 to 15 ASCII letters and digits.
                if caa.tag.is_empty()
                    || caa.tag.len() > 15
                    || !caa.tag.chars().all(|c| c.is_ascii_alphanumeric())
                {
                    return Err(invalid(format!(
                        "tag {:?} is not 1 to 15 letters and digits",
                        caa.tag
                    )));
                }
                RData::CAA(caa)
            }
            other => other,
        },
        None,
    ))
}

/// A DNSEndpoint TXT target: the whole target is one text value; one pair of surrounding
/// double quotes is stripped (ExternalDNS writes `"heritage=..."`), and the text is split into
/// 255-byte character-strings.
pub(crate) fn txt_rdata(raw: &str) -> RData {
    let text = raw
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(raw);
    RData::TXT(TXT::from_bytes(chunks(text.as_bytes())))
}

/// `bytes` in pieces of at most 255 bytes; one empty piece for empty input.
fn chunks(bytes: &[u8]) -> Vec<&[u8]> {
    if bytes.is_empty() {
        return vec![bytes];
    }
    bytes.chunks(255).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txt_strings(r: &RData) -> Vec<Vec<u8>> {
        match r {
            RData::TXT(t) => t.txt_data.iter().map(|s| s.to_vec()).collect(),
            other => panic!("not TXT: {other:?}"),
        }
    }

    #[test]
    fn target_rule_ipv4_ipv6_hostname() {
        assert_eq!(
            target_rdata("192.0.2.1").unwrap().record_type(),
            RecordType::A
        );
        assert_eq!(
            target_rdata("2001:db8::1").unwrap().record_type(),
            RecordType::AAAA
        );
        let c = target_rdata("LB.Example.NET.").unwrap();
        assert_eq!(
            c,
            RData::CNAME(CNAME(Name::from_ascii("lb.example.net.").unwrap()))
        );
        assert!(
            target_rdata("not a host")
                .unwrap_err()
                .contains("invalid hostname")
        );
        assert!(target_rdata("foo_bar.example.net").is_err());
    }

    #[test]
    fn ip_rdata_rejects_hostnames() {
        assert!(
            ip_rdata("lb.example.net")
                .unwrap_err()
                .contains("not an IP address")
        );
        assert!(ip_rdata("192.0.2.256").is_err());
    }

    #[test]
    fn names_in_values_are_absolute_with_or_without_dot() {
        let a = parse_value(RecordType::CNAME, "Target.Example.org").unwrap();
        let b = parse_value(RecordType::CNAME, "target.example.org.").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "target.example.org.");
        let mx = parse_value(RecordType::MX, "10 mail.example.org").unwrap();
        assert_eq!(
            mx,
            RData::MX(MX::new(10, Name::from_ascii("mail.example.org.").unwrap()))
        );
        let srv = parse_value(RecordType::SRV, "0 5 5060 SIP.example.org").unwrap();
        assert_eq!(
            srv,
            RData::SRV(SRV::new(
                0,
                5,
                5060,
                Name::from_ascii("sip.example.org.").unwrap()
            ))
        );
        let ns = parse_value(RecordType::NS, "ns1.child.example.org").unwrap();
        assert_eq!(
            ns,
            RData::NS(NS(Name::from_ascii("ns1.child.example.org.").unwrap()))
        );
    }

    #[test]
    fn extra_or_missing_fields_are_rejected() {
        assert!(
            parse_value(RecordType::A, "192.0.2.1 192.0.2.2")
                .unwrap_err()
                .contains("expected an IPv4")
        );
        assert!(
            parse_value(RecordType::MX, "mail.example.org")
                .unwrap_err()
                .contains("<preference>")
        );
        assert!(parse_value(RecordType::SRV, "0 5 sip.example.org").is_err());
        assert!(parse_value(RecordType::CAA, "0 issue").is_err());
        assert!(parse_value(RecordType::CNAME, "a.example.org b.example.org").is_err());
    }

    #[test]
    fn bad_values_are_rejected() {
        assert!(parse_value(RecordType::A, "2001:db8::1").is_err());
        assert!(parse_value(RecordType::AAAA, "192.0.2.1").is_err());
        assert!(parse_value(RecordType::MX, "70000 mail.example.org").is_err());
        assert!(parse_value(RecordType::CNAME, "a..b").is_err());
        assert!(parse_value(RecordType::CNAME, "*.example.org").is_err());
    }

    #[test]
    fn root_targets_stay_root() {
        let mx = parse_value(RecordType::MX, "0 .").unwrap();
        assert_eq!(mx, RData::MX(MX::new(0, Name::root())));
        let srv = parse_value(RecordType::SRV, "0 0 0 .").unwrap();
        assert_eq!(srv.to_string(), "0 0 0 .");
    }

    #[test]
    fn caa_tag_must_be_alphanumeric() {
        assert!(
            parse_value(RecordType::CAA, "0 bad!tag \"x\"")
                .unwrap_err()
                .contains("tag")
        );
        assert!(parse_value(RecordType::CAA, "0 issuewild \";\"").is_ok());
        assert!(parse_value(RecordType::CAA, "256 issue \"x\"").is_err());
    }

    #[test]
    fn static_txt_is_presentation_format() {
        let one = parse_value(RecordType::TXT, "\"v=spf1 -all\"").unwrap();
        assert_eq!(txt_strings(&one), vec![b"v=spf1 -all".to_vec()]);
        let two = parse_value(RecordType::TXT, "v=spf1 -all").unwrap();
        assert_eq!(
            txt_strings(&two),
            vec![b"v=spf1".to_vec(), b"-all".to_vec()]
        );
    }

    #[test]
    fn long_static_txt_is_split() {
        let long = "k".repeat(600);
        let r = parse_value(RecordType::TXT, &format!("\"{long}\"")).unwrap();
        let lens: Vec<usize> = txt_strings(&r).iter().map(Vec::len).collect();
        assert_eq!(lens, vec![255, 255, 90]);
    }

    #[test]
    fn caa_value() {
        let r = parse_value(RecordType::CAA, "0 issue \"letsencrypt.org\"").unwrap();
        match &r {
            RData::CAA(caa) => {
                assert_eq!(caa.tag, "issue");
                assert_eq!(caa.value, b"letsencrypt.org");
                assert!(!caa.issuer_critical);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn endpoint_txt_strips_one_quote_pair_and_splits() {
        assert_eq!(
            txt_strings(&txt_rdata("\"hello world\"")),
            vec![b"hello world".to_vec()]
        );
        assert_eq!(
            txt_strings(&txt_rdata("\"\"x\"\"")),
            vec![b"\"x\"".to_vec()]
        );
        assert_eq!(
            txt_strings(&txt_rdata("no quotes")),
            vec![b"no quotes".to_vec()]
        );
        assert_eq!(txt_strings(&txt_rdata("\"half")), vec![b"\"half".to_vec()]);
        assert_eq!(txt_strings(&txt_rdata("")), vec![Vec::<u8>::new()]);
        let r = txt_rdata(&"x".repeat(510));
        assert_eq!(
            txt_strings(&r).iter().map(Vec::len).collect::<Vec<_>>(),
            vec![255, 255]
        );
    }
}
