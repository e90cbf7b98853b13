//! Multi-document YAML into JSON values for the manifest loader: libyaml's parser (through
//! `serde_norway`), which parses a large manifest tree about 2.7 times faster than the parser
//! the rest of the crate uses, with kubectl's strictness about duplicate mapping keys kept.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

/// Deepest nesting of collections accepted in a document. Kubernetes objects nest about ten
/// levels; libyaml's time grows with the square of the depth (a 120 KB file of nested lists
/// took 10 s), so deeper input is refused before it is parsed.
pub const MAX_DEPTH: usize = 64;
/// Largest document accepted, in bytes (a `kind: List` of a whole cluster is one document).
pub const MAX_DOCUMENT_BYTES: usize = 32 << 20;

/// Every document of `text`, in order (an empty document is `Value::Null`, so document numbers
/// count every `---`). An error anywhere fails the whole text.
pub fn documents(text: &str) -> Result<Vec<Value>, String> {
    prescan(text)?;
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let Strict(v) = Strict::deserialize(doc).map_err(|e| e.to_string())?;
        out.push(v);
    }
    Ok(out)
}

/// Checks the limits in one linear pass, before libyaml sees the text: the size of every
/// document and an upper bound of its nesting depth (block collections by indentation, flow
/// collections by brackets outside quotes, comments and block scalars).
fn prescan(text: &str) -> Result<(), String> {
    let mut doc = 1usize;
    let mut doc_start = 0usize;
    // indentation columns of the open block collections
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    // a block scalar (`|`, `>`) being skipped: lines indented more than this column
    let mut scalar: Option<usize> = None;
    // an open multi-line quoted scalar
    let mut quote: Option<u8> = None;
    let mut offset = 0usize;
    for (lineno, line) in text.split_inclusive('\n').enumerate() {
        let start = offset;
        offset += line.len();
        let body = line.trim_end_matches(['\n', '\r']);
        let too_deep = || {
            format!(
                "document {doc} (line {}): nested deeper than {MAX_DEPTH} levels (Kubernetes objects are shallow); not parsed",
                lineno + 1
            )
        };
        if quote.is_none() && (body.starts_with("---") || body.starts_with("...")) {
            let rest = &body[3..];
            if rest.is_empty() || rest.starts_with([' ', '\t']) {
                if body.starts_with("---") {
                    if start - doc_start > MAX_DOCUMENT_BYTES {
                        return Err(doc_too_big(doc, start - doc_start));
                    }
                    doc += 1;
                    doc_start = start;
                }
                indents.clear();
                flow = 0;
                scalar = None;
                continue;
            }
        }
        let indent = body.len() - body.trim_start_matches(' ').len();
        let content = &body[indent..];
        if let Some(col) = scalar {
            if content.is_empty() || indent > col {
                continue;
            }
            scalar = None;
        }
        let b = body.as_bytes();
        let mut i = indent;
        if quote.is_none() && flow == 0 {
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            // block structure: close what this line is not inside, open its sequence entries
            while indents.last().is_some_and(|&c| c >= indent) {
                indents.pop();
            }
            indents.push(indent);
            while i + 1 < b.len() && b[i] == b'-' && matches!(b[i + 1], b' ' | b'\t') {
                i += 2;
                while i < b.len() && b[i] == b' ' {
                    i += 1;
                }
                indents.push(i);
            }
            if indents.len() > MAX_DEPTH {
                return Err(too_deep());
            }
        }
        // the rest of the line: quotes, flow brackets, comments, block scalar headers
        let mut prev = b' ';
        while i < b.len() {
            let c = b[i];
            match quote {
                Some(b'\'') => {
                    if c == b'\'' {
                        if b.get(i + 1) == Some(&b'\'') {
                            i += 1;
                        } else {
                            quote = None;
                        }
                    }
                }
                Some(_) => {
                    if c == b'\\' {
                        i += 1;
                    } else if c == b'"' {
                        quote = None;
                    }
                }
                None => {
                    let at_value = flow > 0 || matches!(prev, b' ' | b'\t');
                    match c {
                        b'#' if matches!(prev, b' ' | b'\t') => break,
                        b'"' | b'\'' if at_value => quote = Some(c),
                        b'[' | b'{' if at_value || flow > 0 => {
                            flow += 1;
                            if indents.len() + flow > MAX_DEPTH {
                                return Err(too_deep());
                            }
                        }
                        b']' | b'}' if flow > 0 => flow -= 1,
                        b'|' | b'>' if flow == 0 && matches!(prev, b' ' | b'\t') => {
                            let rest = body[i + 1..].trim();
                            if rest.is_empty()
                                || rest.starts_with('#')
                                || rest.chars().all(|ch| matches!(ch, '+' | '-' | '0'..='9'))
                            {
                                scalar = Some(indent);
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            prev = c;
            i += 1;
        }
    }
    if text.len() - doc_start > MAX_DOCUMENT_BYTES {
        return Err(doc_too_big(doc, text.len() - doc_start));
    }
    Ok(())
}

fn doc_too_big(doc: usize, bytes: usize) -> String {
    format!(
        "document {doc} is {} MiB, more than the {} MiB a document may have; not parsed",
        bytes >> 20,
        MAX_DOCUMENT_BYTES >> 20
    )
}

/// A JSON value that rejects a mapping with a repeated key, as kubectl does.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        i64::try_from(v)
            .map(|v| Value::Number(v.into()))
            .or_else(|_| u64::try_from(v).map(|v| Value::Number(v.into())))
            .map_err(|_| E::custom(format!("integer {v} is out of range")))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        u64::try_from(v)
            .map(|v| Value::Number(v.into()))
            .map_err(|_| E::custom(format!("integer {v} is out of range")))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("{v} is not a finite number")))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Strict::deserialize(d).map(|Strict(v)| v)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<Strict>()? {
            let key = match key.0 {
                Value::String(s) => s,
                other => other.to_string(),
            };
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate mapping key: {key}")));
            }
            let Strict(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_in_order_with_empty_ones_as_null() {
        let docs = documents("a: 1\n---\n# empty\n---\nb: [x, 2]\n").unwrap();
        assert_eq!(
            docs,
            vec![json!({"a": 1}), Value::Null, json!({"b": ["x", 2]})]
        );
        assert_eq!(documents("").unwrap(), vec![Value::Null]);
    }

    #[test]
    fn yaml_1_2_scalars_anchors_and_tags() {
        let docs = documents(
            "a: yes\nb: on\nc: \"192.0.2.1\"\nd: 1.10\ne: ~\nf: &x {g: 1}\nh: *x\ni: !!str 5\n",
        )
        .unwrap();
        assert_eq!(
            docs[0],
            json!({"a": "yes", "b": "on", "c": "192.0.2.1", "d": 1.1, "e": null,
                "f": {"g": 1}, "h": {"g": 1}, "i": "5"})
        );
    }

    #[test]
    fn duplicate_keys_and_syntax_errors_fail_with_a_position() {
        let e = documents("a: 1\nb:\n  c: 1\n  c: 2\n").unwrap_err();
        assert!(e.contains("duplicate mapping key: c"), "{e}");
        let e = documents("ok: 1\n---\nkind: [unclosed\n").unwrap_err();
        assert!(e.contains("line 4") || e.contains("line 3"), "{e}");
        assert!(documents("a: .inf\n").is_err());
    }

    /// A 120 KB file of nested lists took 10 s to parse (and 200 KB more than 20 s).
    #[test]
    fn deep_nesting_fails_fast_with_the_document() {
        for text in [
            format!("a: {}{}\n", "[".repeat(60_000), "]".repeat(60_000)),
            format!("ok: 1\n---\n{}x\n", "- ".repeat(60_000)),
            (0..3000)
                .map(|d| format!("{}- \n", "  ".repeat(d)))
                .collect::<String>(),
            format!("a: {}\n", "{b: ".repeat(30_000)),
        ] {
            let t = std::time::Instant::now();
            let e = documents(&text).unwrap_err();
            assert!(
                t.elapsed() < std::time::Duration::from_millis(200),
                "{:?}",
                t.elapsed()
            );
            assert!(e.contains("nested deeper than 64 levels"), "{e}");
        }
        let e = documents(&format!("ok: 1\n---\n{}x\n", "- ".repeat(100))).unwrap_err();
        assert!(e.starts_with("document 2 (line 3)"), "{e}");
    }

    #[test]
    fn shallow_documents_of_every_style_pass_the_depth_check() {
        // depth near the limit, brackets and dashes inside scalars, comments and block scalars
        let deep = format!("a: {}1{}\n", "[".repeat(60), "]".repeat(60));
        assert!(documents(&deep).is_ok());
        let text = "metadata:\n  annotations:\n    x: 'a[b{c'\n    y: \"[[[[\"\n    z: foo[1 # [[[[[\n    s: |\n      [[[[[[[[[[[[[\n      - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -\nspec:\n- - - x\n";
        let docs = documents(text).unwrap();
        assert_eq!(docs[0]["metadata"]["annotations"]["z"], "foo[1");
        assert_eq!(docs[0]["spec"][0][0][0], "x");
        let many: String = (0..10_000)
            .map(|i| format!("- [{i}, {{a: [1]}}]\n"))
            .collect();
        assert_eq!(
            documents(&many).unwrap()[0].as_array().unwrap().len(),
            10_000
        );
    }

    #[test]
    fn oversized_document_is_refused() {
        let big = format!("a: \"{}\"\n", "x".repeat(MAX_DOCUMENT_BYTES));
        let e = documents(&format!("k: 1\n---\n{big}")).unwrap_err();
        assert!(e.starts_with("document 2 is 32 MiB"), "{e}");
    }
}
