//! Writes `docs/api-reference.md`, generated from the CRDs (`zonegate::crdgen::crds()`, the same
//! text as `crds/`): every field with its type, default, constraints, validation rules and
//! description. `tests/packaging.rs` fails when the committed file differs from this output.
//!
//! ```sh
//! cargo run -q --example api-reference
//! ```

use serde_json::Value;
use std::fmt::Write as _;

/// The generated Markdown.
pub fn render() -> String {
    let mut out = String::new();
    out.push_str(
        "# API reference\n\n\
         <!-- Generated from the CRDs by `cargo run -q --example api-reference`; do not edit. -->\n\n\
         Generated from the CustomResourceDefinitions in `crds/` (`zonegate crd` prints them). \
         `kubectl explain` shows the same descriptions on a cluster. Field paths use `[]` for \
         list items and `{}` for map values; *required* fields must be set, everything else has \
         the default shown or is optional.\n",
    );
    let crds: Vec<Value> = zonegate::crdgen::crds()
        .into_iter()
        .map(|(file, yaml)| {
            let body = yaml
                .split_once("\n---\n")
                .map(|(_, b)| b)
                .unwrap_or(&yaml)
                .to_string();
            serde_saphyr::from_str(&body).unwrap_or_else(|e| panic!("{file}: {e}"))
        })
        .collect();
    out.push_str("\n| kind | group/version | scope | short names |\n|---|---|---|---|\n");
    for crd in &crds {
        let spec = &crd["spec"];
        for v in spec["versions"].as_array().into_iter().flatten() {
            let kind = spec["names"]["kind"].as_str().unwrap_or_default();
            let _ = writeln!(
                out,
                "| [{kind}](#{}) | `{}/{}` | {} | {} |",
                kind.to_lowercase(),
                spec["group"].as_str().unwrap_or_default(),
                v["name"].as_str().unwrap_or_default(),
                spec["scope"].as_str().unwrap_or_default(),
                list(&spec["names"]["shortNames"], |s| format!("`{s}`")),
            );
        }
    }
    for crd in &crds {
        render_crd(&mut out, crd);
    }
    out
}

fn render_crd(out: &mut String, crd: &Value) {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let kind = names["kind"].as_str().unwrap_or_default();
    for version in spec["versions"].as_array().into_iter().flatten() {
        let schema = &version["schema"]["openAPIV3Schema"];
        let _ = write!(
            out,
            "\n## {kind}\n\n`apiVersion: {}/{}`, `kind: {kind}`; {} (`kubectl get {}`{}",
            spec["group"].as_str().unwrap_or_default(),
            version["name"].as_str().unwrap_or_default(),
            if spec["scope"] == "Namespaced" {
                "namespaced"
            } else {
                "cluster-scoped"
            },
            names["plural"].as_str().unwrap_or_default(),
            match names["shortNames"].as_array() {
                Some(s) if !s.is_empty() => format!(
                    ", short name{} {}",
                    if s.len() > 1 { "s" } else { "" },
                    list(&names["shortNames"], |s| format!("`{s}`"))
                ),
                _ => String::new(),
            },
        );
        if let Some(c) = names["categories"].as_array().filter(|c| !c.is_empty()) {
            let _ = write!(
                out,
                ", categor{} {}",
                if c.len() > 1 { "ies" } else { "y" },
                list(&names["categories"], |s| format!("`{s}`"))
            );
        }
        out.push_str(").");
        if version
            .get("subresources")
            .and_then(|s| s.get("status"))
            .is_some()
        {
            out.push_str(" `status` is a subresource.");
        }
        out.push_str("\n\n");
        if let Some(d) = schema["description"].as_str() {
            let _ = writeln!(out, "{}\n", one_line(d));
        }
        if let Some(cols) = version["additionalPrinterColumns"]
            .as_array()
            .filter(|c| !c.is_empty())
        {
            out.push_str("`kubectl get` columns: ");
            let cols: Vec<String> = cols
                .iter()
                .map(|c| {
                    format!(
                        "{} (`{}`)",
                        c["name"].as_str().unwrap_or_default(),
                        c["jsonPath"].as_str().unwrap_or_default()
                    )
                })
                .collect();
            let _ = writeln!(out, "{}.\n", cols.join(", "));
        }
        for top in ["spec", "status"] {
            let Some(s) = schema["properties"].get(top) else {
                continue;
            };
            let _ = writeln!(out, "### {kind} `{top}`\n");
            if let Some(d) = s["description"].as_str() {
                let _ = writeln!(out, "{}\n", one_line(d));
            }
            let mut rows = Vec::new();
            let mut rules = Vec::new();
            walk(top, s, &mut rows, &mut rules);
            out.push_str("| field | type | required | default | constraints | description |\n");
            out.push_str("|---|---|---|---|---|---|\n");
            for r in rows {
                out.push_str(&r);
            }
            if !rules.is_empty() {
                out.push_str("\nValidation rules (CEL) the apiserver enforces:\n\n");
                out.push_str("| on | rule | message |\n|---|---|---|\n");
                for r in rules {
                    out.push_str(&r);
                }
            }
            out.push('\n');
        }
    }
}

/// Adds a row per property below `path` (depth first, properties in schema order, which is
/// alphabetical in the generated CRDs).
fn walk(path: &str, schema: &Value, rows: &mut Vec<String>, rules: &mut Vec<String>) {
    push_rules(path, schema, rules);
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let Some(props) = schema["properties"].as_object() else {
        return;
    };
    for (name, p) in props {
        let field = format!("{path}.{name}");
        rows.push(format!(
            "| `{field}` | {} | {} | {} | {} | {} |\n",
            type_of(p),
            if required.contains(&name.as_str()) {
                "yes"
            } else {
                ""
            },
            p.get("default")
                .map(|d| format!("`{}`", cell(&compact(d))))
                .unwrap_or_default(),
            constraints(p),
            cell(&one_line(p["description"].as_str().unwrap_or_default())),
        ));
        if p.get("properties").is_none() {
            // Objects with properties list their own rules when walked.
            push_rules(&field, p, rules);
        }
        descend(&field, p, rows, rules);
    }
}

fn push_rules(on: &str, p: &Value, rules: &mut Vec<String>) {
    for r in p["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        rules.push(format!(
            "| `{on}` | `{}` | {} |\n",
            cell(r["rule"].as_str().unwrap_or_default()),
            cell(r["message"].as_str().unwrap_or_default()),
        ));
    }
}

/// Into objects, list items and map values.
fn descend(field: &str, p: &Value, rows: &mut Vec<String>, rules: &mut Vec<String>) {
    match p["type"].as_str() {
        Some("object") if p.get("properties").is_some() => walk(field, p, rows, rules),
        Some("object") if p["additionalProperties"].is_object() => {
            let v = &p["additionalProperties"];
            if v.get("properties").is_some() {
                walk(&format!("{field}{{}}"), v, rows, rules);
            }
        }
        Some("array") => {
            let items = &p["items"];
            let item = format!("{field}[]");
            // Rules on the items apply to each item.
            if items.get("properties").is_some() {
                walk(&item, items, rows, rules);
            } else {
                push_rules(&item, items, rules);
            }
        }
        _ => {}
    }
}

fn type_of(p: &Value) -> String {
    if p.get("x-kubernetes-int-or-string").is_some() {
        return "integer or string".into();
    }
    let t = p["type"].as_str().unwrap_or("any");
    let base = match t {
        "array" => format!("list of {}", type_of(&p["items"])),
        "object" if p["additionalProperties"].is_object() => {
            format!("map of {}", type_of(&p["additionalProperties"]))
        }
        "object" if p.get("x-kubernetes-preserve-unknown-fields").is_some() => {
            "object (any fields)".into()
        }
        "integer" | "number" => match p["format"].as_str() {
            Some(f) => format!("{t} ({f})"),
            None => t.into(),
        },
        "string" => match p["format"].as_str() {
            Some(f) => format!("string ({f})"),
            None => "string".into(),
        },
        other => other.into(),
    };
    if p["nullable"] == Value::Bool(true) {
        format!("{base}, nullable")
    } else {
        base
    }
}

fn constraints(p: &Value) -> String {
    let mut c = Vec::new();
    if let Some(e) = p["enum"].as_array() {
        c.push(format!(
            "one of {}",
            list(&Value::Array(e.clone()), |s| format!("`{s}`"))
        ));
    }
    if p["type"] == "array"
        && let Some(e) = p["items"]["enum"].as_array()
    {
        c.push(format!(
            "items: one of {}",
            list(&Value::Array(e.clone()), |s| format!("`{s}`"))
        ));
    }
    let range = |lo: &str, hi: &str, unit: &str| -> Option<String> {
        match (p.get(lo).map(compact), p.get(hi).map(compact)) {
            (Some(a), Some(b)) => Some(format!("{a}..{b}{unit}")),
            (Some(a), None) => Some(format!("≥ {a}{unit}")),
            (None, Some(b)) => Some(format!("≤ {b}{unit}")),
            (None, None) => None,
        }
    };
    c.extend(range("minimum", "maximum", ""));
    c.extend(range("minLength", "maxLength", " characters"));
    c.extend(range("minItems", "maxItems", " items"));
    c.extend(range("minProperties", "maxProperties", " entries"));
    if let Some(pat) = p["pattern"].as_str() {
        c.push(format!("pattern `{}`", cell(pat)));
    }
    if p["type"] == "array"
        && let Some(pat) = p["items"]["pattern"].as_str()
    {
        c.push(format!("items: pattern `{}`", cell(pat)));
    }
    if let Some(t) = p["x-kubernetes-list-type"].as_str() {
        c.push(format!("list type `{t}`"));
    }
    c.join("; ")
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        // `1.0` in the YAML: an integer bound
        Value::Number(n)
            if n.as_f64()
                .is_some_and(|f| f.fract() == 0.0 && f.abs() < 1e15) =>
        {
            format!("{}", n.as_f64().unwrap_or_default() as i64)
        }
        other => other.to_string(),
    }
}

fn list(v: &Value, f: impl Fn(&str) -> String) -> String {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|s| f(&compact(s)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Safe inside a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[allow(dead_code)]
fn main() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api-reference.md");
    std::fs::write(path, render()).expect("write docs/api-reference.md");
    println!("wrote docs/api-reference.md");
}
