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

/// RDATA in presentation format (hickory's Display, with TXT strings quoted and escaped).
fn presentation(rd: &RData) -> String {
    match rd {
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|s| {
                let mut q = String::from("\"");
                for &b in s.iter() {
                    match b {
                        b'"' | b'\\' => {
                            q.push('\\');
                            q.push(b as char);
                        }
                        0x20..=0x7e => q.push(b as char),
                        _ => {
                            let _ = write!(q, "\\{b:03}");
                        }
                    }
                }
                q.push('"');
                q
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}
