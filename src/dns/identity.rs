//! What a server says about itself: the NSID (RFC 5001, `serve --nsid`) and the CHAOS-class
//! TXT names of RFC 4892's conventions: `id.server` and `hostname.bind` give the NSID when
//! one is set, `version.bind` and `version.server` the `--version` text when one is given;
//! everything else in class CHAOS is REFUSED, as Knot answers.

use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

/// Longest `--nsid` / `--version` text: one TXT character-string.
pub const MAX_TEXT: usize = 255;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    nsid: Option<String>,
    version: Option<String>,
}

/// The answer to a CHAOS-class question.
#[derive(Debug, PartialEq, Eq)]
pub enum Chaos {
    /// NOERROR with these records (empty: the name is known, the type is not TXT).
    Answer(Vec<Record>),
    Refused,
}

impl Identity {
    /// Both optional; each at most `MAX_TEXT` bytes of printable ASCII.
    pub fn new(nsid: Option<String>, version: Option<String>) -> Result<Self, String> {
        for (flag, v) in [("--nsid", &nsid), ("--version", &version)] {
            if let Some(t) = v
                && (t.is_empty()
                    || t.len() > MAX_TEXT
                    || !t.bytes().all(|b| b.is_ascii_graphic() || b == b' '))
            {
                return Err(format!(
                    "{flag}: 1 to {MAX_TEXT} printable ASCII characters"
                ));
            }
        }
        Ok(Self { nsid, version })
    }

    /// The NSID option payload, when one is set.
    pub fn nsid(&self) -> Option<&[u8]> {
        self.nsid.as_deref().map(str::as_bytes)
    }

    /// Answers `qname`/`qtype` in class CHAOS (`qname` lower-cased).
    pub fn chaos(&self, qname: &Name, qtype: RecordType) -> Chaos {
        let text = match qname.to_ascii().as_str() {
            "id.server." | "hostname.bind." => self.nsid.as_deref(),
            "version.server." | "version.bind." => self.version.as_deref(),
            _ => None,
        };
        let Some(text) = text else {
            return Chaos::Refused;
        };
        if !matches!(qtype, RecordType::TXT | RecordType::ANY) {
            return Chaos::Answer(Vec::new());
        }
        let mut r = Record::from_rdata(qname.clone(), 0, RData::TXT(TXT::new(vec![text.into()])));
        r.dns_class = DNSClass::CH;
        Chaos::Answer(vec![r])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn txt(c: Chaos) -> Option<String> {
        match c {
            Chaos::Answer(r) => Some(r.first().map(|r| r.data.to_string()).unwrap_or_default()),
            Chaos::Refused => None,
        }
    }

    #[test]
    fn names_answer_only_what_is_configured() {
        let none = Identity::default();
        for name in [
            "id.server.",
            "hostname.bind.",
            "version.bind.",
            "version.server.",
            "authors.bind.",
        ] {
            assert_eq!(
                none.chaos(&n(name), RecordType::TXT),
                Chaos::Refused,
                "{name}"
            );
        }
        let id = Identity::new(Some("ns-0".into()), None).unwrap();
        assert_eq!(
            txt(id.chaos(&n("id.server."), RecordType::TXT)).unwrap(),
            "ns-0"
        );
        assert_eq!(
            txt(id.chaos(&n("hostname.bind."), RecordType::ANY)).unwrap(),
            "ns-0"
        );
        assert_eq!(
            id.chaos(&n("version.bind."), RecordType::TXT),
            Chaos::Refused
        );
        assert_eq!(
            id.chaos(&n("authors.bind."), RecordType::TXT),
            Chaos::Refused
        );
        assert_eq!(txt(id.chaos(&n("id.server."), RecordType::A)).unwrap(), "");
        let both = Identity::new(Some("ns-0".into()), Some("zonegate 1".into())).unwrap();
        assert_eq!(
            txt(both.chaos(&n("version.server."), RecordType::TXT)).unwrap(),
            "zonegate 1"
        );
        let Chaos::Answer(r) = both.chaos(&n("version.bind."), RecordType::TXT) else {
            panic!()
        };
        assert_eq!((r[0].dns_class, r[0].ttl), (DNSClass::CH, 0));
        assert_eq!(both.nsid(), Some(&b"ns-0"[..]));
    }

    #[test]
    fn texts_are_bounded_and_printable() {
        assert!(Identity::new(Some(String::new()), None).is_err());
        assert!(Identity::new(Some("a".repeat(256)), None).is_err());
        assert!(Identity::new(Some("a".repeat(255)), None).is_ok());
        assert!(Identity::new(None, Some("bad\nline".into())).is_err());
    }
}
