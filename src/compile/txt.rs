//! TXT values of `spec.records` in RFC 1035 presentation format (§5.1): character-strings
//! separated by blanks, each quoted (`"a b"`) or not (`ab`), with the escapes `\X` (the
//! character X itself, so `\"`, `\\`, `\;`) and `\DDD` (the byte of decimal value DDD); an
//! unquoted `;` starts a comment to the end of the line and unquoted parentheses only group
//! lines. Strings longer than 255 bytes are split into 255-byte strings (long DKIM keys are
//! usually pasted as one).
//!
//! What zone files allow but a DNSZone author almost never means is reported (see `Issue`):
//! text after an unquoted `;` (the value is refused: serving `v=DKIM1` for a DKIM key loses the
//! key), several unquoted strings (served as written, but TXT readers such as SPF and DKIM join
//! strings without the spaces), and a value that has no string at all (refused: TXT RDATA has
//! at least one string, which may be empty: `""`).

/// A parsed TXT value: its character-strings (each at most 255 bytes, at least one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Txt {
    pub strings: Vec<Vec<u8>>,
    /// Valid presentation format that probably does not mean what the author wanted.
    pub warning: Option<String>,
}

/// Parses `raw`; `Err` when it is not valid presentation format, would lose text or has no
/// string. Messages name the quoted form to write instead.
pub(crate) fn parse(raw: &str) -> Result<Txt, String> {
    let b = raw.as_bytes();
    let mut strings: Vec<Vec<u8>> = Vec::new();
    let mut unquoted = 0usize;
    let mut comment: Option<String> = None;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' => i += 1,
            b';' => {
                // a comment, to the end of the line
                let end = b[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |p| i + p);
                let text = raw[i + 1..end].trim();
                if !text.is_empty() && comment.is_none() {
                    comment = Some(text.to_string());
                }
                i = end;
            }
            b'"' => {
                let mut s = Vec::new();
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Err("a quoted string is not closed (missing '\"')".into()),
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => i = escape(b, i, &mut s)?,
                        Some(&c) => {
                            s.push(c);
                            i += 1;
                        }
                    }
                }
                if let Some(&c) = b.get(i)
                    && !matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' | b';')
                {
                    return Err(format!(
                        "text right after a closing quote (at byte {i}); separate strings with a space"
                    ));
                }
                strings.push(s);
            }
            _ => {
                let mut s = Vec::new();
                while let Some(&c) = b.get(i) {
                    match c {
                        b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' | b';' => break,
                        b'"' => {
                            return Err(format!(
                                "a '\"' inside an unquoted string (at byte {i}); write \\\" for a quote character, or quote the whole value"
                            ));
                        }
                        b'\\' => i = escape(b, i, &mut s)?,
                        _ => {
                            s.push(c);
                            i += 1;
                        }
                    }
                }
                strings.push(s);
                unquoted += 1;
            }
        }
    }
    if let Some(text) = comment {
        return Err(format!(
            "an unquoted ';' starts a comment, so {text:?} would be dropped; quote the value to keep it: {}",
            suggestion(raw)
        ));
    }
    if strings.is_empty() {
        return Err("the value has no text; write '\"\"' for one empty string".into());
    }
    let warning = (unquoted > 0 && strings.len() > 1).then(|| {
        let shown: Vec<String> = strings.iter().map(|s| quote(s)).collect();
        format!(
            "unquoted blanks make {} separate strings ({}), which TXT readers (SPF, DKIM) join without the blanks; to serve one string with them, quote the value: {}",
            strings.len(),
            shown.join(" "),
            suggestion(raw)
        )
    });
    let strings = strings
        .iter()
        .flat_map(|s| {
            if s.is_empty() {
                vec![Vec::new()]
            } else {
                s.chunks(255).map(<[u8]>::to_vec).collect()
            }
        })
        .collect();
    Ok(Txt { strings, warning })
}

/// Reads the escape at `b[i]` (a backslash) into `out`; returns the index after it.
fn escape(b: &[u8], i: usize, out: &mut Vec<u8>) -> Result<usize, String> {
    let digits = b
        .get(i + 1..i + 4)
        .filter(|d| d.iter().all(u8::is_ascii_digit));
    if let Some(d) = digits {
        let v = (d[0] - b'0') as u16 * 100 + (d[1] - b'0') as u16 * 10 + (d[2] - b'0') as u16;
        let v = u8::try_from(v).map_err(|_| format!("\\{v} is not a byte (at most \\255)"))?;
        out.push(v);
        return Ok(i + 4);
    }
    match b.get(i + 1) {
        None => Err("a '\\' at the end of the value escapes nothing".into()),
        Some(c) if c.is_ascii_digit() => Err(format!(
            "\\{} is not an escape: a decimal escape has exactly three digits (\\DDD)",
            String::from_utf8_lossy(&b[i + 1..b.len().min(i + 4)])
        )),
        Some(_) => {
            // the next character itself (all its bytes, for a non-ASCII one)
            let len = utf8_len(b[i + 1]);
            let end = (i + 1 + len).min(b.len());
            out.extend_from_slice(&b[i + 1..end]);
            Ok(end)
        }
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xf0..=0xff => 4,
        0xe0..=0xef => 3,
        0xc0..=0xdf => 2,
        _ => 1,
    }
}

/// One character-string in presentation format: quoted, with `"` and `\` escaped and bytes
/// outside printable ASCII as `\DDD`. `parse` reads it back to the same bytes.
pub(crate) fn quote(s: &[u8]) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for &c in s {
        match c {
            b'"' | b'\\' => {
                q.push('\\');
                q.push(c as char);
            }
            0x20..=0x7e => q.push(c as char),
            _ => q.push_str(&format!("\\{c:03}")),
        }
    }
    q.push('"');
    q
}

/// The quoted form to suggest for `raw`, as a YAML list item: the whole value as one string
/// (its escapes kept, its quote characters escaped), in single quotes for YAML.
fn suggestion(raw: &str) -> String {
    let inner = raw.trim().replace('"', "\\\"");
    format!("'\"{}\"'", inner.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(raw: &str) -> Vec<Vec<u8>> {
        parse(raw)
            .unwrap_or_else(|e| panic!("{raw:?}: {e}"))
            .strings
    }

    fn one(s: &str) -> Vec<Vec<u8>> {
        vec![s.as_bytes().to_vec()]
    }

    #[test]
    fn quoted_unquoted_and_several_strings() {
        assert_eq!(strings("\"v=spf1 -all\""), one("v=spf1 -all"));
        assert_eq!(strings("abc"), one("abc"));
        assert_eq!(
            strings("\"a b\" \"c\""),
            vec![b"a b".to_vec(), b"c".to_vec()]
        );
        assert_eq!(strings("  \"x\"\t"), one("x"));
        assert_eq!(strings("\"\""), vec![Vec::<u8>::new()]);
        assert_eq!(strings("\"\" \"\""), vec![Vec::<u8>::new(), Vec::new()]);
        // parentheses group lines; inside quotes they are text
        assert_eq!(
            strings("( \"a\"\n  \"b\" )"),
            vec![b"a".to_vec(), b"b".to_vec()]
        );
        assert_eq!(strings("\"(x)\""), one("(x)"));
        assert!(parse("\"a\" \"b\"").unwrap().warning.is_none());
    }

    #[test]
    fn escapes() {
        assert_eq!(strings(r#""a\"b""#), one("a\"b"));
        assert_eq!(strings(r#""a\\b""#), one("a\\b"));
        assert_eq!(strings(r"a\;b"), one("a;b"));
        assert_eq!(strings(r#""a\;b""#), one("a;b"));
        assert_eq!(strings(r"a\ b"), one("a b"));
        assert_eq!(strings(r#""\065\066\067""#), one("ABC"));
        assert_eq!(strings(r#""\000\255""#), vec![vec![0u8, 255]]);
        assert_eq!(strings("\"caf\\é\""), one("café"));
        assert_eq!(strings("\"café\""), one("café"));
        assert!(parse(r#""\256""#).unwrap_err().contains("not a byte"));
        assert!(parse(r#""\12""#).unwrap_err().contains("three digits"));
        assert!(parse(r"abc\").unwrap_err().contains("escapes nothing"));
    }

    #[test]
    fn comment_that_drops_text_is_refused_with_the_quoted_form() {
        let e = parse("v=DKIM1; k=rsa; p=MIGf").unwrap_err();
        assert!(e.contains("\"k=rsa; p=MIGf\" would be dropped"), "{e}");
        assert!(e.ends_with("'\"v=DKIM1; k=rsa; p=MIGf\"'"), "{e}");
        // a quoted ';' is text
        assert_eq!(
            strings("\"v=DKIM1; k=rsa; p=MIGf\""),
            one("v=DKIM1; k=rsa; p=MIGf")
        );
        // a comment with nothing after it loses nothing
        assert_eq!(strings("\"x\" ;"), one("x"));
        assert_eq!(
            strings("\"x\" ; \n \"y\""),
            vec![b"x".to_vec(), b"y".to_vec()]
        );
    }

    #[test]
    fn unquoted_blanks_are_served_as_written_with_a_warning() {
        let t = parse("v=spf1 include:_spf.example.net -all").unwrap();
        assert_eq!(
            t.strings,
            vec![
                b"v=spf1".to_vec(),
                b"include:_spf.example.net".to_vec(),
                b"-all".to_vec()
            ]
        );
        let w = t.warning.unwrap();
        assert!(w.contains("3 separate strings"), "{w}");
        assert!(
            w.ends_with("'\"v=spf1 include:_spf.example.net -all\"'"),
            "{w}"
        );
    }

    #[test]
    fn empty_values_are_refused() {
        for raw in ["", "   ", "; only a comment", "()", "\n\t"] {
            let e = match parse(raw) {
                Ok(t) => panic!("{raw:?} parsed as {:?}", t.strings),
                Err(e) => e,
            };
            assert!(
                e.contains("no text") || e.contains("dropped"),
                "{raw:?}: {e}"
            );
        }
    }

    #[test]
    fn malformed_quotes_are_refused() {
        assert!(parse("\"open").unwrap_err().contains("not closed"));
        assert!(
            parse("\"a\"b")
                .unwrap_err()
                .contains("after a closing quote")
        );
        assert!(parse("a\"b").unwrap_err().contains("inside an unquoted"));
    }

    #[test]
    fn long_strings_are_split_at_255_bytes() {
        let long = "k".repeat(600);
        let lens: Vec<usize> = strings(&format!("\"{long}\""))
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(lens, vec![255, 255, 90]);
    }

    #[test]
    fn quote_round_trips_every_byte() {
        let all: Vec<u8> = (0..=255u8).collect();
        for chunk in all.chunks(255) {
            assert_eq!(strings(&quote(chunk)), vec![chunk.to_vec()]);
        }
        assert_eq!(quote(b"a\"b\\c;d"), r#""a\"b\\c;d""#);
    }
}
