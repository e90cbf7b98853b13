//! DS records as text: the one parser of `KEY-TAG ALGORITHM DIGEST-TYPE DIGEST` (RFC 4034
//! §5.3), used for the DS a parent zone serves at a delegation (`spec.delegations[].ds`, a
//! `zoneRef` child's `status.dnssec.ds`) and by the operator's `Delegated` check to compare the
//! parent's DS with ours. Pure; wire RDATA out.

/// Digest lengths of the digest types in use (RFC 4034, 4509, 6605): SHA-1, SHA-256, SHA-384.
fn digest_len(digest_type: u8) -> Option<usize> {
    match digest_type {
        1 => Some(20),
        2 => Some(32),
        4 => Some(48),
        _ => None,
    }
}

/// The wire RDATA of a DS in presentation form: `TAG ALG TYPE HEX` (the digest may be split by
/// spaces), or a whole record line (`owner [ttl] [IN] DS TAG ALG TYPE HEX`, as `zonegate ds`
/// and `status.dnssec.ds` have it). The digest's length must fit a known digest type.
pub fn parse(text: &str) -> Result<Vec<u8>, String> {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let fields = match tokens.iter().position(|t| t.eq_ignore_ascii_case("DS")) {
        Some(i) => &tokens[i + 1..],
        None => &tokens[..],
    };
    let [tag, alg, dt, _, ..] = fields else {
        return Err(format!(
            "{text:?} is not a DS record: expected KEY-TAG ALGORITHM DIGEST-TYPE DIGEST"
        ));
    };
    let tag: u16 = tag
        .parse()
        .map_err(|_| format!("DS {text:?}: key tag {tag:?} is not a number 0-65535"))?;
    let alg: u8 = alg
        .parse()
        .map_err(|_| format!("DS {text:?}: algorithm {alg:?} is not a number 0-255"))?;
    let dt: u8 = dt
        .parse()
        .map_err(|_| format!("DS {text:?}: digest type {dt:?} is not a number 0-255"))?;
    let hex: String = fields[3..].concat();
    if hex.is_empty() || !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(format!(
            "DS {text:?}: the digest must be an even number of hex digits"
        ));
    }
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digits"))
        .collect();
    if let Some(want) = digest_len(dt)
        && bytes.len() != want
    {
        return Err(format!(
            "DS {text:?}: a digest of type {dt} has {want} bytes, this one {}",
            bytes.len()
        ));
    }
    let mut out = Vec::with_capacity(4 + bytes.len());
    out.extend_from_slice(&tag.to_be_bytes());
    out.push(alg);
    out.push(dt);
    out.extend_from_slice(&bytes);
    Ok(out)
}

/// DS RDATA (wire form) as `TAG ALG TYPE HEX`, digest in uppercase hex without spaces: the form
/// two DS records are compared in. `None` for RDATA shorter than a DS.
pub fn text(rdata: &[u8]) -> Option<String> {
    if rdata.len() < 5 {
        return None;
    }
    let hex: String = rdata[4..].iter().map(|b| format!("{b:02X}")).collect();
    Some(format!(
        "{} {} {} {hex}",
        u16::from_be_bytes([rdata[0], rdata[1]]),
        rdata[2],
        rdata[3]
    ))
}

/// A DS in presentation form (as [`parse`] takes it) in the form of [`text`].
pub fn normalize(text_form: &str) -> Result<String, String> {
    let w = parse(text_form)?;
    Ok(text(&w).expect("a parsed DS has a digest"))
}

/// The RData of a DS with wire RDATA `rdata` (hickory-proto is built without DNSSEC types, so
/// a DS is carried as opaque RDATA, which is its wire and canonical form).
pub fn rdata(rdata: Vec<u8>) -> hickory_proto::rr::RData {
    hickory_proto::rr::RData::Unknown {
        code: hickory_proto::rr::RecordType::DS,
        rdata: hickory_proto::rr::rdata::NULL::with(rdata),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D32: &str = "3A1F00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDD";

    #[test]
    fn parses_fields_and_whole_lines_alike() {
        let w = parse(&format!("12345 13 2 {D32}")).unwrap();
        assert_eq!(&w[..4], &[0x30, 0x39, 13, 2]);
        assert_eq!(w.len(), 4 + 32);
        for t in [
            format!(
                "acme.example.com. 3600 IN DS 12345 13 2 {}",
                D32.to_lowercase()
            ),
            format!(
                "acme.example.com. ds 12345 13 2 {} {}",
                &D32[..10],
                &D32[10..]
            ),
        ] {
            assert_eq!(parse(&t).unwrap(), w, "{t}");
        }
        assert_eq!(text(&w).unwrap(), format!("12345 13 2 {D32}"));
        assert_eq!(parse(&text(&w).unwrap()).unwrap(), w, "round trip");
        assert_eq!(
            normalize(&format!("x. IN DS 12345 13 2 {}", D32.to_lowercase())).unwrap(),
            format!("12345 13 2 {D32}")
        );
        // an unknown digest type takes any length
        assert_eq!(parse("1 8 9 AB").unwrap(), vec![0, 1, 8, 9, 0xab]);
        assert_eq!(text(&[0, 1, 8, 2]), None);
    }

    #[test]
    fn bad_ds_say_what_is_wrong() {
        for (t, why) in [
            ("", "not a DS record"),
            ("acme. IN NS x.", "key tag"),
            ("acme. IN NS", "not a DS record"),
            ("a. DS 1 13 2", "not a DS record"),
            ("70000 13 2 AB", "key tag"),
            ("1 x 2 AB", "algorithm"),
            ("1 13 300 AB", "digest type"),
            ("1 13 2 XYZ", "hex digits"),
            ("1 13 2 ABC", "hex digits"),
            ("1 13 2 AB01", "has 32 bytes, this one 2"),
            ("1 13 1 AB01", "has 20 bytes"),
        ] {
            let e = parse(t).unwrap_err();
            assert!(e.contains(why), "{t}: {e}");
        }
    }
}
