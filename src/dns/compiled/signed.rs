//! Answers from a signed zone (`spec.dnssec`): the apex DNSKEY, CDS, CDNSKEY and NSEC3PARAM
//! for every query, and with the DO bit (RFC 3225, 4035 §3.1) the RRSIGs of the answer and
//! authority RRsets and the NSEC3 proofs of RFC 5155 §7.2: NODATA (the NSEC3 of the name),
//! NXDOMAIN (closest encloser, next closer, wildcard), wildcard answers (next closer), wildcard
//! NODATA (closest encloser, next closer, the wildcard's NSEC3) and referrals (DS and its RRSIG,
//! or the NSEC3 of the cut proving there is no DS). Pure functions over the index.

use super::{CompiledZone, Lookup, Outcome};
use crate::dnssec::sign::{DnssecRecord, SignedZone};
use hickory_proto::rr::rdata::NULL;
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// A DNSSEC record as a record to send, at `owner` with `ttl`.
fn record(r: &DnssecRecord, owner: &Name, ttl: u32) -> Record {
    Record::from_rdata(
        owner.clone(),
        ttl,
        RData::Unknown {
            code: r.rtype,
            rdata: NULL::with(r.rdata.clone()),
        },
    )
}

/// The types signing adds at the apex, answered from the signed zone.
fn apex_type(t: RecordType) -> bool {
    matches!(
        t,
        RecordType::DNSKEY | RecordType::CDS | RecordType::CDNSKEY | RecordType::NSEC3PARAM
    )
}

/// Adds `r` to `v` unless it is there.
fn push<'a>(v: &mut Vec<&'a DnssecRecord>, r: Option<&'a DnssecRecord>) {
    if let Some(r) = r
        && !v.iter().any(|x| std::ptr::eq(*x, r))
    {
        v.push(r);
    }
}

impl CompiledZone {
    /// [`Self::lookup`], with what signing adds when the zone is signed: the apex DNSSEC
    /// RRsets always, RRSIGs and NSEC3 proofs only when `dnssec_ok` (the query's DO bit).
    /// An unsigned zone answers exactly as `lookup`.
    pub fn lookup_for(&self, qname: &Name, qtype: RecordType, dnssec_ok: bool) -> Lookup {
        let Some(signed) = self.dnssec.as_deref() else {
            return self.lookup(qname, qtype);
        };
        let mut l = if *qname == self.origin && apex_type(qtype) {
            Lookup {
                outcome: Outcome::Answer,
                answers: signed
                    .apex
                    .iter()
                    .filter(|r| r.rtype == qtype)
                    .map(|r| record(r, &r.name, r.ttl))
                    .collect(),
                authorities: Vec::new(),
                additionals: Vec::new(),
            }
        } else {
            self.lookup(qname, qtype)
        };
        if dnssec_ok {
            self.add_dnssec(signed, qname, &mut l);
        }
        l
    }

    /// The closest encloser of a name that does not exist (RFC 5155 §7.2.1): its longest
    /// existing ancestor, and the next closer name (one label longer, towards `name`).
    fn closest_encloser(&self, name: &Name) -> (Name, Name) {
        let mut next = name.clone();
        let mut ce = name.base_name();
        while ce.num_labels() > self.origin.num_labels() && !self.exists(&ce) {
            next = ce.clone();
            ce = ce.base_name();
        }
        (ce, next)
    }

    fn add_dnssec(&self, s: &SignedZone, qname: &Name, l: &mut Lookup) {
        let mut nsec3: Vec<&DnssecRecord> = Vec::new();
        // RRSIGs over each answer RRset; a synthesized (wildcard) one is signed at its source
        // and needs the proof that the next closer name does not exist
        let mut sigs = Vec::new();
        let mut done: Vec<(Name, RecordType)> = Vec::new();
        for r in &l.answers {
            let key = (r.name.clone(), r.record_type());
            if done.contains(&key) {
                continue;
            }
            let source = if self.nodes.contains_key(&r.name) || r.name == self.origin {
                r.name.clone()
            } else {
                let (ce, next) = self.closest_encloser(&r.name);
                push(&mut nsec3, s.nsec3_covering(&next));
                ce.prepend_label("*").unwrap_or(ce)
            };
            for sig in s.rrsigs_for(&source, key.1) {
                sigs.push(record(sig, &r.name, r.ttl));
            }
            done.push(key);
        }
        l.answers.extend(sigs);

        let mut auth_sigs = Vec::new();
        let negative = l
            .authorities
            .iter()
            .any(|r| r.record_type() == RecordType::SOA);
        if negative {
            for soa in l
                .authorities
                .iter()
                .filter(|r| r.record_type() == RecordType::SOA)
            {
                for sig in s.rrsigs_for(&self.origin, RecordType::SOA) {
                    auth_sigs.push(record(sig, &soa.name, soa.ttl));
                }
            }
            // the name denied: the last CNAME's target, else the question
            let target = l
                .answers
                .iter()
                .rev()
                .find_map(|r| match &r.data {
                    RData::CNAME(c) => Some(c.0.to_lowercase()),
                    _ => None,
                })
                .unwrap_or_else(|| qname.clone());
            if self.exists(&target) {
                push(&mut nsec3, s.nsec3_matching(&target)); // NODATA
            } else {
                let (ce, next) = self.closest_encloser(&target);
                let wild = ce.prepend_label("*").ok();
                push(&mut nsec3, s.nsec3_matching(&ce));
                push(&mut nsec3, s.nsec3_covering(&next));
                if let Some(w) = wild {
                    if self.nodes.contains_key(&w) {
                        push(&mut nsec3, s.nsec3_matching(&w)); // wildcard NODATA
                    } else {
                        push(&mut nsec3, s.nsec3_covering(&w)); // NXDOMAIN
                    }
                }
            }
        } else if l.outcome == Outcome::Referral
            && let Some(cut) = l.authorities.first().map(|r| r.name.clone())
        {
            match self.nodes.get(&cut).and_then(|n| n.get(RecordType::DS)) {
                Some(ds) => {
                    let ds = ds.to_vec();
                    for sig in s.rrsigs_for(&cut, RecordType::DS) {
                        auth_sigs.push(record(sig, &cut, ds[0].ttl));
                    }
                    l.authorities.extend(ds);
                }
                None => push(&mut nsec3, s.nsec3_matching(&cut)),
            }
        }
        for r in nsec3 {
            l.authorities.push(record(r, &r.name, r.ttl));
            for sig in s.rrsigs_for(&r.name, RecordType::NSEC3) {
                auth_sigs.push(record(sig, &r.name, r.ttl));
            }
        }
        l.authorities.extend(auth_sigs);
    }
}

#[cfg(test)]
mod tests {
    //! Every proof the responder adds verifies: RRSIGs over what is sent (with the wildcard's
    //! source owner), and the NSEC3s match or cover the hashes RFC 5155 §7.2 names.
    use super::*;
    use crate::dnssec::keys::{ACTIVE_KEY, Algorithm, SigningKey, ZoneKeys};
    use crate::dnssec::sign::{canonical_rdata, nsec3_hash, sign_zone, verify_rrsig};
    use crate::zone::ZoneData;
    use hickory_proto::rr::rdata::{A, CNAME, NS};
    use std::sync::Arc;

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn setup() -> (CompiledZone, ZoneKeys) {
        let mut d = ZoneData::acme_example();
        let a = |s: &str| RData::A(A(s.parse().unwrap()));
        d.add(
            n("acme.example.com."),
            3600,
            RData::NS(NS(n("ns1.acme.example.com."))),
        );
        d.add(n("ns1.acme.example.com."), 300, a("192.0.2.53"));
        d.add(n("www.acme.example.com."), 60, a("192.0.2.1"));
        d.add(
            n("alias.acme.example.com."),
            60,
            RData::CNAME(CNAME(n("www.acme.example.com."))),
        );
        d.add(
            n("dangling.acme.example.com."),
            60,
            RData::CNAME(CNAME(n("gone.acme.example.com."))),
        );
        d.add(n("*.wild.acme.example.com."), 60, a("192.0.2.9"));
        d.add(n("a.b.deep.acme.example.com."), 60, a("192.0.2.3"));
        d.add(
            n("child.acme.example.com."),
            3600,
            RData::NS(NS(n("ns.child.acme.example.com."))),
        );
        d.add(n("ns.child.acme.example.com."), 3600, a("192.0.2.77"));
        let pem = SigningKey::generate(Algorithm::EcdsaP256Sha256)
            .unwrap()
            .to_pkcs8_pem();
        let keys =
            ZoneKeys::from_entries("t", |k| (k == ACTIVE_KEY).then_some(pem.as_bytes())).unwrap();
        let signed = sign_zone(&d, 5, &keys, 1_800_000_000);
        (
            CompiledZone::build(&d, 5).with_dnssec(Arc::new(signed)),
            keys,
        )
    }

    fn raw(r: &Record) -> &[u8] {
        match &r.data {
            RData::Unknown { rdata, .. } => &rdata.anything,
            _ => panic!("not a DNSSEC record: {r:?}"),
        }
    }

    /// Checks every RRSIG in `records` against the RRset of its owner and covered type there
    /// (a wildcard's at its source owner); returns the covered types in order.
    fn check_sigs(z: &CompiledZone, keys: &ZoneKeys, records: &[Record]) -> Vec<String> {
        let mut out = Vec::new();
        for sig in records
            .iter()
            .filter(|r| r.record_type() == RecordType::RRSIG)
        {
            let rd = raw(sig);
            let covered = RecordType::from(u16::from_be_bytes([rd[0], rd[1]]));
            let set: Vec<Vec<u8>> = records
                .iter()
                .filter(|r| r.name == sig.name && r.record_type() == covered)
                .map(|r| match &r.data {
                    RData::Unknown { rdata, .. } => rdata.anything.clone(),
                    d => canonical_rdata(d).unwrap(),
                })
                .collect();
            assert!(
                !set.is_empty(),
                "RRSIG {covered} at {} without its RRset",
                sig.name
            );
            // labels < owner's: a wildcard expansion, signed at `*.` + the last `labels` labels
            let labels = rd[3] as usize;
            let owner = if labels < sig.name.num_labels() as usize {
                sig.name.trim_to(labels).prepend_label("*").unwrap()
            } else {
                sig.name.clone()
            };
            assert!(
                verify_rrsig(&keys.active, rd, &owner, &set),
                "RRSIG {covered} at {} does not verify",
                sig.name
            );
            let _ = z;
            out.push(format!("{}/{covered}", sig.name));
        }
        out
    }

    /// The NSEC3 hashes in `records`, as (owner hash, next hash).
    fn nsec3s(records: &[Record]) -> Vec<([u8; 20], [u8; 20])> {
        records
            .iter()
            .filter(|r| r.record_type() == RecordType::NSEC3)
            .map(|r| {
                let label = r.name.iter().next().unwrap();
                let owner = decode32(label);
                let rd = raw(r);
                (owner, rd[6..26].try_into().unwrap())
            })
            .collect()
    }

    fn decode32(label: &[u8]) -> [u8; 20] {
        let mut acc: u64 = 0;
        let mut bits = 0;
        let mut out = Vec::new();
        for c in label {
            let v = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'v' => c - b'a' + 10,
                _ => panic!(),
            };
            acc = (acc << 5) | u64::from(v);
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        out.try_into().unwrap()
    }

    fn matches(proofs: &[([u8; 20], [u8; 20])], name: &str) -> bool {
        let h = nsec3_hash(&n(name), &[], 0);
        proofs.iter().any(|(o, _)| *o == h)
    }

    fn covers(proofs: &[([u8; 20], [u8; 20])], name: &str) -> bool {
        let h = nsec3_hash(&n(name), &[], 0);
        proofs.iter().any(|(o, nx)| {
            if o < nx {
                *o < h && h < *nx
            } else {
                h > *o || h < *nx
            }
        })
    }

    #[test]
    fn without_do_a_signed_zone_answers_as_unsigned_but_with_its_apex_keys() {
        let (z, _) = setup();
        for (q, t) in [
            ("www.acme.example.com.", RecordType::A),
            ("nope.acme.example.com.", RecordType::A),
            ("x.wild.acme.example.com.", RecordType::A),
            ("child.acme.example.com.", RecordType::A),
        ] {
            let a = z.lookup_for(&n(q), t, false);
            let b = z.lookup(&n(q), t);
            assert_eq!(
                (a.answers, a.authorities),
                (b.answers, b.authorities),
                "{q}"
            );
        }
        let k = z.lookup_for(&n("acme.example.com."), RecordType::DNSKEY, false);
        assert_eq!(k.answers.len(), 1);
        assert_eq!(k.answers[0].record_type(), RecordType::DNSKEY);
    }

    #[test]
    fn positive_answers_carry_verifying_rrsigs() {
        let (z, k) = setup();
        let l = z.lookup_for(&n("www.acme.example.com."), RecordType::A, true);
        assert_eq!(check_sigs(&z, &k, &l.answers), ["www.acme.example.com./A"]);
        assert!(l.authorities.is_empty());
        let l = z.lookup_for(&n("acme.example.com."), RecordType::DNSKEY, true);
        assert_eq!(check_sigs(&z, &k, &l.answers), ["acme.example.com./DNSKEY"]);
        let l = z.lookup_for(&n("alias.acme.example.com."), RecordType::A, true);
        assert_eq!(
            check_sigs(&z, &k, &l.answers),
            ["alias.acme.example.com./CNAME", "www.acme.example.com./A"]
        );
    }

    #[test]
    fn wildcard_answer_signed_at_its_source_with_a_next_closer_proof() {
        let (z, k) = setup();
        let l = z.lookup_for(&n("x.y.wild.acme.example.com."), RecordType::A, true);
        assert_eq!(
            check_sigs(&z, &k, &l.answers),
            ["x.y.wild.acme.example.com./A"]
        );
        let p = nsec3s(&l.authorities);
        assert_eq!(p.len(), 1);
        assert!(covers(&p, "y.wild.acme.example.com."), "next closer");
        check_sigs(&z, &k, &l.authorities);
    }

    #[test]
    fn nxdomain_proves_closest_encloser_next_closer_and_no_wildcard() {
        let (z, k) = setup();
        for (q, ce, next) in [
            (
                "nope.acme.example.com.",
                "acme.example.com.",
                "nope.acme.example.com.",
            ),
            (
                "x.nope.b.deep.acme.example.com.",
                "b.deep.acme.example.com.",
                "nope.b.deep.acme.example.com.",
            ),
            // through a CNAME: the proof is for its target
            (
                "dangling.acme.example.com.",
                "acme.example.com.",
                "gone.acme.example.com.",
            ),
        ] {
            let l = z.lookup_for(&n(q), RecordType::A, true);
            assert_eq!(l.outcome, Outcome::NxDomain, "{q}");
            let p = nsec3s(&l.authorities);
            assert!(matches(&p, ce), "{q}: closest encloser {ce}");
            assert!(covers(&p, next), "{q}: next closer {next}");
            assert!(covers(&p, &format!("*.{ce}")), "{q}: no wildcard");
            let signed = check_sigs(&z, &k, &l.authorities);
            assert!(
                signed.contains(&"acme.example.com./SOA".to_string()),
                "{signed:?}"
            );
            assert_eq!(signed.len(), 1 + p.len(), "{signed:?}");
        }
    }

    #[test]
    fn nodata_ent_and_wildcard_nodata_proofs() {
        let (z, k) = setup();
        let l = z.lookup_for(&n("www.acme.example.com."), RecordType::AAAA, true);
        assert_eq!(l.outcome, Outcome::NoData);
        let p = nsec3s(&l.authorities);
        assert_eq!(p.len(), 1);
        assert!(matches(&p, "www.acme.example.com."));
        check_sigs(&z, &k, &l.authorities);
        // an empty non-terminal
        let l = z.lookup_for(&n("b.deep.acme.example.com."), RecordType::A, true);
        assert_eq!(l.outcome, Outcome::NoData);
        assert!(matches(&nsec3s(&l.authorities), "b.deep.acme.example.com."));
        // wildcard NODATA
        let l = z.lookup_for(&n("x.wild.acme.example.com."), RecordType::TXT, true);
        assert_eq!(l.outcome, Outcome::NoData);
        let p = nsec3s(&l.authorities);
        assert!(matches(&p, "wild.acme.example.com."));
        assert!(covers(&p, "x.wild.acme.example.com."));
        assert!(matches(&p, "*.wild.acme.example.com."));
        check_sigs(&z, &k, &l.authorities);
        // DS at a delegation without one: the cut's NSEC3 (NS, no DS)
        let l = z.lookup_for(&n("child.acme.example.com."), RecordType::DS, true);
        assert!(matches(&nsec3s(&l.authorities), "child.acme.example.com."));
    }

    #[test]
    fn referral_without_ds_proves_it_and_signs_nothing_of_the_child() {
        let (z, k) = setup();
        let l = z.lookup_for(&n("www.child.acme.example.com."), RecordType::A, true);
        assert_eq!(l.outcome, Outcome::Referral);
        let p = nsec3s(&l.authorities);
        assert_eq!(p.len(), 1);
        assert!(matches(&p, "child.acme.example.com."));
        let signed = check_sigs(&z, &k, &l.authorities);
        assert_eq!(signed.len(), 1, "only the NSEC3: {signed:?}");
        assert!(
            !l.additionals
                .iter()
                .any(|r| r.record_type() == RecordType::RRSIG),
            "glue unsigned"
        );
    }
}
