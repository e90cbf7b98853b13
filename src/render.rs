//! RFC 1035 master-file output of a compiled zone (`zonegate render`), accepted by
//! `named-checkzone` and loadable by Knot and NSD.

use crate::zone::ZoneData;
use hickory_proto::rr::RData;
use std::fmt::Write;

/// Renders `data` with `serial` as a master file.
pub fn master_file(data: &ZoneData, serial: u32) -> String {
    let mut out = String::new();
    let o = data.origin.to_ascii();
    let s = &data.soa;
    let _ = writeln!(out, "$ORIGIN {o}");
    let _ = writeln!(
        out,
        "{o}\t{}\tIN\tSOA\t{} {} {serial} {} {} {} {}",
        s.ttl,
        s.mname.to_ascii(),
        s.rname.to_ascii(),
        s.refresh,
        s.retry,
        s.expire,
        s.minimum
    );
    // Apex first, then the rest in canonical order.
    let names = data.names_sorted();
    let apex = names.iter().filter(|n| ***n == data.origin);
    let rest = names.iter().filter(|n| ***n != data.origin);
    for name in apex.chain(rest) {
        let sets = &data.records[*name];
        for (rtype, set) in sets {
            for rd in &set.rdata {
                let _ = writeln!(
                    out,
                    "{}\t{}\tIN\t{}\t{}",
                    name.to_ascii(),
                    set.ttl,
                    rtype,
                    presentation(rd)
                );
            }
        }
    }
    out
}

/// Renders `data` with `serial` and what signing added to it: the zone as [`master_file`]
/// writes it, then the apex DNSKEY, CDS, CDNSKEY and NSEC3PARAM, the NSEC3 chain and every
/// RRSIG (the form `ldns-verify-zone`, `kzonecheck` and `dnssec-verify` read).
pub fn master_file_signed(
    data: &ZoneData,
    serial: u32,
    signed: &crate::dnssec::sign::SignedZone,
) -> String {
    let mut out = master_file(data, serial);
    let _ = writeln!(
        out,
        "; DNSSEC: signatures valid from {} to {} (UTC)",
        crate::dnssec::sign::rrsig_time(signed.inception),
        crate::dnssec::sign::rrsig_time(signed.expiration)
    );
    for r in signed.records() {
        let _ = writeln!(
            out,
            "{}\t{}\tIN\t{}\t{}",
            r.name.to_ascii(),
            r.ttl,
            r.rtype,
            crate::dnssec::sign::rdata_presentation(r)
        );
    }
    out
}

/// RDATA in presentation format: hickory's Display, except TXT, whose strings are quoted and
/// escaped (`compile::txt::quote`) so that the text parses back to the same bytes.
fn presentation(rd: &RData) -> String {
    match rd {
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|s| crate::compile::txt::quote(s))
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    //! Every RDATA the compiler accepts round-trips: through the wire format (what is served
    //! parses back, no RDLENGTH 0 TXT) and through presentation format (what `render` writes
    //! parses back to the same data), over random values of every record type of
    //! `spec.records`.
    use super::presentation;
    use crate::api::RecordKind;
    use crate::compile::{parse_value, record_type};
    use hickory_proto::rr::{Name, Record};
    use hickory_proto::serialize::binary::{BinDecodable, BinEncodable};

    use crate::test_rng::Rng;

    fn label(r: &mut Rng) -> String {
        let chars = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let len = 1 + r.below(20) as usize;
        let mut s: String = (0..len)
            .map(|_| chars[r.below(chars.len() as u64) as usize] as char)
            .collect();
        if len > 2 && r.below(4) == 0 {
            s.insert(1, if r.below(2) == 0 { '-' } else { '_' });
        }
        s
    }

    fn name(r: &mut Rng) -> String {
        let n = 1 + r.below(4);
        let mut s: Vec<String> = (0..n).map(|_| label(r)).collect();
        s.push(r.pick(&["com", "net", "example", "org"]).to_string());
        let dot = if r.below(2) == 0 { "." } else { "" };
        format!("{}{dot}", s.join("."))
    }

    /// One of `items`, as a `&str` (the generic `Rng::pick` gives `&&str`).
    fn pick(r: &mut Rng, items: &[&'static str]) -> &'static str {
        let chosen: &&'static str = r.pick(items);
        chosen
    }

    fn txt(r: &mut Rng) -> String {
        let mut parts = Vec::new();
        for _ in 0..1 + r.below(3) {
            let mut s = String::new();
            let quoted = r.below(3) != 0;
            let len = match r.below(10) {
                0 => 0,
                1 => 250 + r.below(300),
                _ => r.below(40),
            };
            for _ in 0..len {
                match r.below(12) {
                    0 => s.push_str(&format!("\\{:03}", r.below(256))),
                    1 => s.push_str(pick(r, &["\\\"", "\\\\", "\\;", "\\ "])),
                    2 if quoted => s.push_str(pick(r, &[" ", ";", "(", ")", "'"])),
                    3 => s.push_str(pick(r, &["é", "ß", "日"])),
                    _ => s.push((b'a' + r.below(26) as u8) as char),
                }
            }
            if quoted {
                parts.push(format!("\"{s}\""));
            } else if !s.is_empty() {
                parts.push(s);
            }
        }
        if parts.is_empty() {
            parts.push("\"\"".into());
        }
        parts.join(*r.pick(&[" ", "  ", "\t"]))
    }

    fn value(r: &mut Rng, kind: RecordKind) -> String {
        match kind {
            RecordKind::A => format!(
                "{}.{}.{}.{}",
                r.below(256),
                r.below(256),
                r.below(256),
                r.below(256)
            ),
            RecordKind::AAAA => {
                let parts: Vec<String> = (0..8).map(|_| format!("{:x}", r.below(65536))).collect();
                parts.join(":")
            }
            RecordKind::CNAME | RecordKind::NS => name(r),
            RecordKind::MX => format!("{} {}", r.below(65536), name(r)),
            RecordKind::SRV => format!(
                "{} {} {} {}",
                r.below(65536),
                r.below(65536),
                r.below(65536),
                name(r)
            ),
            RecordKind::CAA => {
                let flags = r.pick(&["0", "128"]);
                match r.below(3) {
                    0 => format!("{flags} issue \"{}\"", name(r).trim_end_matches('.')),
                    1 => format!("{flags} issuewild \";\""),
                    _ => format!(
                        "{flags} iodef \"mailto:{}@{}\"",
                        label(r),
                        name(r).trim_end_matches('.')
                    ),
                }
            }
            RecordKind::TXT => txt(r),
        }
    }

    #[test]
    fn accepted_rdata_round_trips_through_wire_and_presentation() {
        let mut r = Rng(0x0dd_ba11_cafe_f00d);
        let kinds = [
            RecordKind::A,
            RecordKind::AAAA,
            RecordKind::CNAME,
            RecordKind::NS,
            RecordKind::MX,
            RecordKind::SRV,
            RecordKind::CAA,
            RecordKind::TXT,
        ];
        let owner = Name::from_ascii("x.acme.example.com.").unwrap();
        let mut accepted = 0;
        for i in 0..20_000 {
            let kind = kinds[i % kinds.len()];
            let rtype = record_type(kind);
            let raw = value(&mut r, kind);
            // (names with `_` are refused in targets: that is the only kind of rejection)
            let Ok(rdata) = parse_value(rtype, &raw) else {
                continue;
            };
            accepted += 1;
            // wire
            let rec = Record::from_rdata(owner.clone(), 300, rdata.clone());
            let bytes = rec.to_bytes().unwrap_or_else(|e| panic!("{raw:?}: {e}"));
            let back = Record::from_bytes(&bytes).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
            assert_eq!(back.data, rdata, "wire round trip of {raw:?}");
            // presentation, as `render` writes it
            let text = presentation(&rdata);
            let again = parse_value(rtype, &text)
                .unwrap_or_else(|e| panic!("{raw:?} rendered as {text:?} does not parse: {e}"));
            assert_eq!(again, rdata, "{raw:?} rendered as {text:?}");
        }
        assert!(
            accepted > 16_000,
            "only {accepted} of 20000 values accepted"
        );
    }
}
