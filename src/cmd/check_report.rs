//! `zonegate check`'s report: every problem with file, line, object, field and message, written
//! as text (for people), JSON (for CI systems) or GitHub Actions annotations
//! (`::error file=...,line=...::...`, shown on the pull request's diff).

use serde::Serialize;

/// `check --format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckFormat {
    #[default]
    Text,
    Json,
    Github,
}

/// One problem found by `check`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The file, as a path under the directory given to `--manifests` (joined to it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based line where the object's YAML document starts, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// 1-based document number in the file (`---`-separated), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<usize>,
    /// The object, as `Ingress acme/web`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// The field, as `spec.rules[0].host`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
    /// `error` (what the server would report and drop; `check` exits 1) or `warning`.
    pub severity: &'static str,
    /// The text line as `--format text` prints it (without `error: `).
    #[serde(skip)]
    pub text: String,
}

/// What `check` found.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// No errors (warnings allowed).
    pub ok: bool,
    pub files: usize,
    pub zones: usize,
    pub problems: Vec<Diagnostic>,
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Splits a location `path/file.yaml#3` into the file and the document number.
pub fn split_location(location: &str) -> (String, Option<usize>) {
    match location.rsplit_once('#') {
        Some((f, n)) if n.parse::<usize>().is_ok() => (f.to_string(), n.parse().ok()),
        _ => (location.to_string(), None),
    }
}

/// The leading field path of a message (`spec.domain: "x" must ...` gives `spec.domain`).
pub fn leading_field(message: &str) -> Option<String> {
    let (head, _) = message.split_once(": ")?;
    let ok = head.starts_with(|c: char| c.is_ascii_alphabetic())
        && head.contains(['.', '['])
        && head
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._[]-/".contains(c));
    ok.then(|| head.to_string())
}

/// The 1-based line at which document `doc` (1-based, as the loader numbers them) of a YAML
/// stream starts: documents are separated by lines starting with `---`; a leading `---` (after
/// comments or blank lines only) opens the first document rather than ending one.
pub fn document_line(text: &str, doc: usize) -> Option<usize> {
    if doc == 0 {
        return None;
    }
    let mut current = 1;
    let mut start = 1;
    let mut content_seen = false;
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        let sep = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if sep {
            if content_seen || current > 1 {
                current += 1;
            }
            content_seen = true; // a second separator ends the (empty) first document
            start = lineno + 1;
            if current == doc {
                return Some(start);
            }
            continue;
        }
        let trimmed = line.trim();
        if !trimmed.is_empty() && !trimmed.starts_with('#') && !content_seen {
            content_seen = true;
            if doc == 1 {
                return Some(start);
            }
        }
    }
    (current == doc).then_some(start)
}

/// `%`, CR and LF escaped as GitHub's workflow commands want them (and `:` and `,` in
/// properties).
fn gh_escape(s: &str, property: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            ':' if property => out.push_str("%3A"),
            ',' if property => out.push_str("%2C"),
            c => out.push(c),
        }
    }
    out
}

impl Report {
    pub fn new(files: usize, zones: usize, problems: Vec<Diagnostic>) -> Report {
        Report {
            ok: problems.iter().all(|d| d.severity != "error"),
            files,
            zones,
            problems,
        }
    }

    /// The report in `format`, ready to print.
    pub fn render(&self, format: CheckFormat) -> String {
        match format {
            CheckFormat::Json => {
                let mut s = serde_json::to_string_pretty(self).expect("report serialises");
                s.push('\n');
                s
            }
            CheckFormat::Text | CheckFormat::Github => {
                let mut out = String::new();
                for d in &self.problems {
                    if format == CheckFormat::Text {
                        out.push_str(&format!("{}: {}\n", d.severity, d.text));
                        continue;
                    }
                    let mut props = Vec::new();
                    if let Some(f) = &d.file {
                        props.push(format!("file={}", gh_escape(f, true)));
                    }
                    if let Some(l) = d.line {
                        props.push(format!("line={l}"));
                    }
                    if let Some(o) = &d.object {
                        props.push(format!("title={}", gh_escape(o, true)));
                    }
                    let msg = match &d.field {
                        Some(f) if !d.message.starts_with(f.as_str()) => {
                            format!("{f}: {}", d.message)
                        }
                        _ => d.message.clone(),
                    };
                    out.push_str(&format!(
                        "::{} {}::{}\n",
                        d.severity,
                        props.join(","),
                        gh_escape(&msg, false)
                    ));
                }
                let errors = self
                    .problems
                    .iter()
                    .filter(|d| d.severity == "error")
                    .count();
                let warnings = self.problems.len() - errors;
                let files = plural(self.files, "file", "files");
                let zones = plural(self.zones, "zone", "zones");
                let warned = if warnings > 0 {
                    format!(", {}", plural(warnings, "warning", "warnings"))
                } else {
                    String::new()
                };
                if errors == 0 {
                    out.push_str(&format!("ok: {files}, {zones}, no problems{warned}\n"));
                } else {
                    out.push_str(&format!(
                        "{} in {files} ({zones} compiled){warned}\n",
                        plural(errors, "problem", "problems")
                    ));
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_lines() {
        let text = "# comment\napiVersion: v1\nkind: A\n---\nkind: B\n---\n\n---\nkind: D\n";
        assert_eq!(document_line(text, 1), Some(1));
        assert_eq!(document_line(text, 2), Some(5));
        assert_eq!(document_line(text, 3), Some(7));
        assert_eq!(document_line(text, 4), Some(9));
        assert_eq!(document_line(text, 5), None);
        // a leading separator opens the first document
        let text = "# generated\n---\nkind: A\n---\nkind: B\n";
        assert_eq!(document_line(text, 1), Some(3));
        assert_eq!(document_line(text, 2), Some(5));
        assert_eq!(document_line("kind: A\n", 1), Some(1));
    }

    #[test]
    fn fields_and_locations() {
        assert_eq!(split_location("a/b.yaml#3"), ("a/b.yaml".into(), Some(3)));
        assert_eq!(split_location("a/b.yaml"), ("a/b.yaml".into(), None));
        assert_eq!(
            leading_field("spec.domain: \"Bad\" must be lowercase").as_deref(),
            Some("spec.domain")
        );
        assert_eq!(
            leading_field("spec.records[0].values: bad").as_deref(),
            Some("spec.records[0].values")
        );
        assert_eq!(leading_field("document is not a mapping; skipped"), None);
        assert_eq!(leading_field("yaml: mapping values: x"), None);
    }

    fn report() -> Report {
        Report {
            ok: false,
            files: 1,
            zones: 0,
            problems: vec![Diagnostic {
                file: Some("deploy/all, 1.yaml".into()),
                line: Some(7),
                document: Some(2),
                object: Some("DNSZone acme/acme".into()),
                field: Some("spec.domain".into()),
                message: "\"Bad_Domain\" must be 100% lowercase\nskipped".into(),
                severity: "error",
                text: "deploy/all, 1.yaml#2: DNSZone acme/acme: spec.domain: bad".into(),
            }],
        }
    }

    #[test]
    fn github_annotations_escape_and_carry_file_and_line() {
        let out = report().render(CheckFormat::Github);
        let first = out.lines().next().unwrap();
        assert_eq!(
            first,
            "::error file=deploy/all%2C 1.yaml,line=7,title=DNSZone acme/acme::spec.domain: \"Bad_Domain\" must be 100%25 lowercase%0Askipped"
        );
        assert_eq!(
            out.lines().nth(1),
            Some("1 problem in 1 file (0 zones compiled)")
        );
    }

    #[test]
    fn json_has_every_field() {
        let v: serde_json::Value =
            serde_json::from_str(&report().render(CheckFormat::Json)).unwrap();
        assert_eq!(v["ok"], false);
        let p = &v["problems"][0];
        assert_eq!(p["file"], "deploy/all, 1.yaml");
        assert_eq!(p["line"], 7);
        assert_eq!(p["document"], 2);
        assert_eq!(p["object"], "DNSZone acme/acme");
        assert_eq!(p["field"], "spec.domain");
        assert_eq!(p["severity"], "error");
        assert!(p.get("text").is_none());
    }

    #[test]
    fn text_keeps_the_familiar_lines_with_plurals() {
        let out = report().render(CheckFormat::Text);
        assert!(
            out.starts_with("error: deploy/all, 1.yaml#2: DNSZone acme/acme: spec.domain: bad\n")
        );
        let ok = Report::new(3, 1, vec![]);
        assert_eq!(
            ok.render(CheckFormat::Text),
            "ok: 3 files, 1 zone, no problems\n"
        );
        // warnings do not fail the check
        let mut w = report().problems.remove(0);
        w.severity = "warning";
        w.text = "Ingress a/b: spec.rules[0].host: in no zone".into();
        let r = Report::new(1, 1, vec![w]);
        assert!(r.ok);
        assert_eq!(
            r.render(CheckFormat::Text),
            "warning: Ingress a/b: spec.rules[0].host: in no zone\nok: 1 file, 1 zone, no problems, 1 warning\n"
        );
        assert!(r.render(CheckFormat::Github).starts_with("::warning file="));
    }
}
