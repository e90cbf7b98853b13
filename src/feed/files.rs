//! The file feed: every `*.yaml`/`*.yml` under a directory (multi-document, `kind: List`
//! expanded), as `kubectl get -o yaml` shows objects, status included. Used by `serve
//! --manifests`, `render` and `check`. A broken file or object never loses data: the last good
//! version of that file (or object) is kept and the problem is reported with file, document and
//! field.

use crate::api::DNSZone;
use crate::objects::SourceObject;
use crate::objects::secret::Secret;
use crate::objects::store::{ObjectStore, ZoneEntry};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A problem found while loading manifests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadProblem {
    /// `path/to/file.yaml` or `path/to/file.yaml#3` (document index, from 1).
    pub location: String,
    /// The object (`DNSZone acme/zone`) when known.
    pub object: Option<String>,
    pub message: String,
}

impl std::fmt::Display for LoadProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.object {
            Some(o) => write!(f, "{}: {}: {}", self.location, o, self.message),
            None => write!(f, "{}: {}", self.location, self.message),
        }
    }
}

/// One parsed object with its location.
#[derive(Clone, Debug)]
enum Parsed {
    Zone(Arc<DNSZone>),
    Source(Arc<SourceObject>),
    Secret(Arc<Secret>),
}

#[derive(Clone, Debug)]
struct ParsedDoc {
    location: String,
    object: Parsed,
}

/// Loads a directory repeatedly, remembering the last good state of every file and object.
#[derive(Debug, Default)]
pub struct ManifestLoader {
    root: PathBuf,
    /// Last good documents per file.
    last_good: BTreeMap<PathBuf, Vec<ParsedDoc>>,
    /// What each file gave when last read, by its (mtime, size): unchanged files are not
    /// read or parsed again, so a change to one file of a large tree costs one file's parse.
    parsed: BTreeMap<PathBuf, ParsedFile>,
    /// Last good version of each object by identity, for objects that later fail to parse.
    last_good_objects: BTreeMap<String, ParsedDoc>,
}

/// Result of one load.
#[derive(Debug, Default)]
pub struct Loaded {
    pub store: ObjectStore,
    pub problems: Vec<LoadProblem>,
    /// Number of YAML files read.
    pub files: usize,
    /// Newest modification time (Unix seconds) of the files and directories read: the
    /// content's timestamp, identical on every server that reads the same tree (see `serial`).
    pub newest_mtime: u64,
    /// Where each object in the store came from (`file.yaml#2`), by `Kind namespace/name` (as
    /// compile problems name objects).
    pub locations: BTreeMap<String, String>,
}

impl ManifestLoader {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            ..Default::default()
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads every manifest under the root. Never fails: problems are reported in `Loaded`.
    pub fn load(&mut self) -> Loaded {
        let mut loaded = Loaded::default();
        let mut files = Vec::new();
        let mut unreadable = Vec::new();
        collect_yaml_files(
            &self.root,
            &mut files,
            &mut unreadable,
            &mut loaded.newest_mtime,
        );
        files.sort_by(|a, b| a.0.cmp(&b.0));
        loaded.files = files.len();
        // Files new or changed since the last load are read and parsed on every core (parsing
        // is most of a large tree's start-up); what the parse means for last-good objects is
        // then settled in file order.
        let todo: Vec<(&Path, String)> = files
            .iter()
            .filter(|(file, stamp)| {
                !(stamp.is_some() && self.parsed.get(file).is_some_and(|p| p.0 == *stamp))
            })
            .map(|(file, _)| (file.as_path(), self.display(file)))
            .collect();
        let mut fresh: BTreeMap<&Path, Result<RawFile, String>> =
            crate::parallel::map_chunks(&todo, 1, |chunk| {
                chunk
                    .iter()
                    .map(|(file, display)| {
                        let raw = std::fs::read_to_string(file)
                            .map(|text| parse_file(display, &text))
                            .map_err(|e| format!("cannot read file: {e}"));
                        (*file, raw)
                    })
                    .collect()
            })
            .into_iter()
            .collect();
        let mut current: BTreeMap<PathBuf, Vec<ParsedDoc>> = BTreeMap::new();
        for (file, stamp) in &files {
            let docs = match fresh.remove(file.as_path()) {
                // unchanged: what it gave last time
                None => {
                    let (_, docs, problems) = &self.parsed[file];
                    loaded.problems.extend(problems.iter().cloned());
                    docs.clone()
                }
                Some(Ok(raw)) => {
                    let mut problems = raw.problems;
                    if raw.items.is_none() {
                        let suffix = self.keeping(file);
                        for p in &mut problems {
                            p.message.push_str(suffix);
                        }
                    }
                    let docs = raw.items.map(|items| self.resolve(items, &mut problems));
                    loaded.problems.extend(problems.iter().cloned());
                    self.parsed
                        .insert(file.clone(), (*stamp, docs.clone(), problems));
                    docs
                }
                Some(Err(message)) => {
                    loaded.problems.push(LoadProblem {
                        location: self.display(file),
                        object: None,
                        message: format!("{message}{}", self.keeping(file)),
                    });
                    None
                }
            };
            // an unreadable file keeps its last good documents
            if let Some(docs) = docs.or_else(|| self.last_good.get(file).cloned()) {
                current.insert(file.clone(), docs);
            }
        }
        // an unreadable directory keeps the last good documents of the files that were in it
        for (dir, e) in unreadable {
            let kept: Vec<(PathBuf, Vec<ParsedDoc>)> = self
                .last_good
                .range(dir.clone()..)
                .take_while(|(f, _)| f.starts_with(&dir))
                .filter(|(f, _)| !current.contains_key(*f))
                .map(|(f, d)| (f.clone(), d.clone()))
                .collect();
            let outcome = match kept.len() {
                0 => "nothing from it is served".to_string(),
                1 => "keeping the last good content of its 1 file".to_string(),
                n => format!("keeping the last good content of its {n} files"),
            };
            let location = match self.display(&dir) {
                d if d.is_empty() => self.root.display().to_string(),
                d => format!("{d}/"),
            };
            loaded.problems.push(LoadProblem {
                location,
                object: None,
                message: format!("cannot read directory: {e}; {outcome}"),
            });
            current.extend(kept);
        }
        for docs in current.values() {
            for doc in docs {
                match &doc.object {
                    Parsed::Zone(z) => {
                        let ns = z.metadata.namespace.clone().unwrap_or_default();
                        let name = z.metadata.name.clone().unwrap_or_default();
                        let key = (ns.clone(), name.clone());
                        if let Some(prev) = loaded.store.zones.get(&key) {
                            loaded.problems.push(LoadProblem {
                                location: doc.location.clone(),
                                object: Some(format!("DNSZone {ns}/{name}")),
                                message: format!(
                                    "duplicate object; the one in {} is used",
                                    prev.origin
                                ),
                            });
                            continue;
                        }
                        loaded
                            .locations
                            .insert(format!("DNSZone {ns}/{name}"), doc.location.clone());
                        loaded.store.zones.insert(
                            key,
                            ZoneEntry {
                                zone: z.clone(),
                                origin: doc.location.clone(),
                            },
                        );
                    }
                    Parsed::Source(o) => {
                        let key = o.key();
                        if loaded.store.objects.contains_key(&key) {
                            loaded.problems.push(LoadProblem {
                                location: doc.location.clone(),
                                object: Some(key.to_string()),
                                message: "duplicate object; the first one (in file order) is used"
                                    .into(),
                            });
                            continue;
                        }
                        loaded
                            .locations
                            .insert(key.to_string(), doc.location.clone());
                        loaded.store.objects.insert(key, o.clone());
                    }
                    Parsed::Secret(secret) => {
                        let key = (secret.namespace.clone(), secret.name.clone());
                        if loaded.store.secrets.contains_key(&key) {
                            loaded.problems.push(LoadProblem {
                                location: doc.location.clone(),
                                object: Some(format!("Secret {}/{}", key.0, key.1)),
                                message: "duplicate object; the first one (in file order) is used"
                                    .into(),
                            });
                            continue;
                        }
                        loaded.store.secrets.insert(key, secret.clone());
                    }
                }
            }
        }
        self.parsed
            .retain(|f, _| current.contains_key(f) || self.last_good.contains_key(f));
        self.last_good = current;
        loaded
    }

    /// What happens to a file that cannot be used now, as the end of its problem's message.
    fn keeping(&self, file: &Path) -> &'static str {
        if self.last_good.contains_key(file) {
            "; keeping this file's last good content"
        } else {
            "; nothing from this file is served"
        }
    }

    /// A file's path as shown in problems: relative to the root.
    fn display(&self, file: &Path) -> String {
        file.strip_prefix(&self.root)
            .unwrap_or(file)
            .display()
            .to_string()
    }

    /// Settles a file's parsed objects against the last good versions: an object that fails
    /// to parse is replaced by its last good version, if there is one.
    fn resolve(&mut self, items: Vec<RawItem>, problems: &mut Vec<LoadProblem>) -> Vec<ParsedDoc> {
        let mut out = Vec::new();
        for item in items {
            let o = match item {
                RawItem::Problem(p) => {
                    problems.push(p);
                    continue;
                }
                RawItem::Object(o) => o,
            };
            match o.parsed {
                Ok(Some(object)) => {
                    let doc = ParsedDoc {
                        location: o.location,
                        object,
                    };
                    self.last_good_objects.insert(o.identity, doc.clone());
                    out.push(doc);
                }
                Ok(None) => {}
                Err(message) => {
                    let kept = self.last_good_objects.get(&o.identity).cloned();
                    let suffix = if kept.is_some() {
                        "; keeping its last good version"
                    } else {
                        "; skipped"
                    };
                    problems.push(LoadProblem {
                        location: o.location,
                        object: Some(o.ident),
                        message: format!("{message}{suffix}"),
                    });
                    if let Some(doc) = kept {
                        out.push(doc);
                    }
                }
            }
        }
        out
    }
}

/// A file as parsed, before last-good versions are considered.
struct RawFile {
    /// Objects and per-document problems in document order; `None` when the file as a whole
    /// is unreadable YAML.
    items: Option<Vec<RawItem>>,
    /// The whole-file problem, if any.
    problems: Vec<LoadProblem>,
}

/// One document's outcome.
enum RawItem {
    /// A document that is not even an identifiable object.
    Problem(LoadProblem),
    Object(RawObject),
}

/// One object as parsed: where, which, and the result.
struct RawObject {
    location: String,
    /// `apiVersion kind namespace/name`: the key of last good versions.
    identity: String,
    /// `kind namespace/name`, for messages.
    ident: String,
    /// `Ok(None)`: a kind we do not read.
    parsed: Result<Option<Parsed>, String>,
}

/// Parses one file's text.
fn parse_file(display: &str, text: &str) -> RawFile {
    let mut problems = Vec::new();
    let docs: Vec<Value> = match super::yaml::documents(text) {
        Ok(d) => d,
        Err(e) => {
            problems.push(LoadProblem {
                location: display.to_string(),
                object: None,
                message: format!("invalid YAML: {e}"),
            });
            return RawFile {
                items: None,
                problems,
            };
        }
    };
    let mut out = Vec::new();
    for (i, doc) in docs.into_iter().enumerate() {
        let location = format!("{display}#{}", i + 1);
        let items = match doc {
            Value::Null => continue,
            Value::Object(ref m) if m.get("kind").and_then(Value::as_str) == Some("List") => m
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            other => vec![other],
        };
        for (j, item) in items.into_iter().enumerate() {
            let location = if j == 0 && !location.contains('[') {
                location.clone()
            } else {
                format!("{location}[{j}]")
            };
            out.push(parse_object(location, item));
        }
    }
    RawFile {
        items: Some(out),
        problems,
    }
}

/// Parses one object; a problem when it cannot even be identified.
fn parse_object(location: String, mut value: Value) -> RawItem {
    let Some(obj) = value.as_object_mut() else {
        return RawItem::Problem(LoadProblem {
            location,
            object: None,
            message: "document is not a mapping; skipped".into(),
        });
    };
    let api_version = str_of(obj, "apiVersion");
    let kind = str_of(obj, "kind");
    // A missing namespace means `default`, as kubectl would apply it.
    let meta = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Default::default()));
    let (mut ns, name) = match meta.as_object_mut() {
        Some(m) => (str_of(m, "namespace"), str_of(m, "name")),
        None => (String::new(), String::new()),
    };
    if ns.is_empty() {
        ns = "default".to_string();
        if let Some(m) = meta.as_object_mut() {
            m.insert("namespace".into(), Value::String(ns.clone()));
        }
    }
    let ident = format!("{kind} {ns}/{name}");
    if kind.is_empty() || api_version.is_empty() {
        return RawItem::Problem(LoadProblem {
            location,
            object: None,
            message: "missing apiVersion or kind; skipped".into(),
        });
    }
    if name.is_empty() {
        return RawItem::Problem(LoadProblem {
            location,
            object: Some(ident),
            message: "metadata.name is required; skipped".into(),
        });
    }
    let identity = format!("{api_version} {ident}");
    let parsed = if kind == "DNSZone" && api_version.starts_with("zonegate.dev/") {
        if api_version != "zonegate.dev/v1alpha1" {
            Err(format!(
                "apiVersion {api_version} is not served; use zonegate.dev/v1alpha1"
            ))
        } else {
            match serde_json::from_value::<DNSZone>(value) {
                Ok(z) => {
                    let errs = crate::api::validate::validate_zone(&z);
                    if errs.is_empty() {
                        Ok(Some(Parsed::Zone(Arc::new(z))))
                    } else {
                        Err(errs.join("; "))
                    }
                }
                Err(e) => Err(describe_serde(e)),
            }
        }
    } else if kind == "Secret" && api_version == "v1" {
        Secret::from_value(value).map(|s| Some(Parsed::Secret(Arc::new(s))))
    } else {
        match SourceObject::from_value(&api_version, &kind, value) {
            Ok(Some(o)) => Ok(Some(Parsed::Source(Arc::new(o)))),
            Ok(None) => Ok(None), // a kind we do not read (Deployment, ...): ignore silently
            Err(e) => Err(describe_serde(e)),
        }
    };
    RawItem::Object(RawObject {
        location,
        identity,
        ident,
        parsed,
    })
}

/// A string field of a mapping (empty when absent or not a string).
fn str_of(m: &serde_json::Map<String, Value>, key: &str) -> String {
    m.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

/// serde_json errors name the problem; add nothing but trim the position noise.
fn describe_serde(e: serde_json::Error) -> String {
    e.to_string()
}

/// A file as last read: its stamp, its documents (`None`: invalid YAML) and its problems.
type ParsedFile = (FileStamp, Option<Vec<ParsedDoc>>, Vec<LoadProblem>);

/// A file's identity for change detection: modification time (ns) and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp(Option<(u128, u64)>);

impl FileStamp {
    fn from(m: &std::fs::Metadata) -> Self {
        let t = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        FileStamp(t.map(|t| (t.as_nanos(), m.len())))
    }
    fn is_some(&self) -> bool {
        self.0.is_some()
    }
}

fn mtime_secs(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Collects YAML files below `dir` with their stamps, tracking the newest mtime of them and of
/// the directories (a directory's mtime changes when a file in it is created, removed or
/// renamed). A directory that cannot be read is listed in `unreadable` and the walk goes on.
fn collect_yaml_files(
    dir: &Path,
    out: &mut Vec<(PathBuf, FileStamp)>,
    unreadable: &mut Vec<(PathBuf, std::io::Error)>,
    newest: &mut u64,
) {
    if let Err(e) = walk(dir, out, unreadable, newest) {
        unreadable.push((dir.to_path_buf(), e));
    }
}

fn walk(
    dir: &Path,
    out: &mut Vec<(PathBuf, FileStamp)>,
    unreadable: &mut Vec<(PathBuf, std::io::Error)>,
    newest: &mut u64,
) -> std::io::Result<()> {
    let meta = std::fs::metadata(dir)?;
    *newest = (*newest).max(mtime_secs(&meta));
    if meta.is_file() {
        out.push((dir.to_path_buf(), FileStamp::from(&meta)));
        return Ok(());
    }
    // read the whole listing first: a directory that fails half way is unreadable as a whole
    let entries = std::fs::read_dir(dir)?.collect::<std::io::Result<Vec<_>>>()?;
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue; // .git, editor swap files
        }
        let Ok(ft) = entry.file_type() else {
            continue;
        };
        if ft.is_dir() {
            collect_yaml_files(&path, out, unreadable, newest);
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            // (following links: a mounted ConfigMap's files are links into a data directory)
            let stamp = match std::fs::metadata(&path) {
                Ok(m) => {
                    *newest = (*newest).max(mtime_secs(&m));
                    FileStamp::from(&m)
                }
                Err(_) => FileStamp(None),
            };
            out.push((path, stamp));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("zg-files-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    const ZONE: &str = "apiVersion: zonegate.dev/v1alpha1\nkind: DNSZone\nmetadata: {name: z, namespace: acme}\nspec: {domain: acme.example.com}\n";
    const ING: &str = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web}\nspec:\n  rules: [{host: www.acme.example.com}]\nstatus:\n  loadBalancer: {ingress: [{ip: 192.0.2.10}]}\n";

    #[test]
    fn problems_come_in_document_order_and_many_files_parse_alike() {
        let d = tmpdir("order");
        let bad = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: bad, namespace: acme}\nspec: 5\n";
        write(
            &d,
            "a.yaml",
            &format!("{bad}---\njust a string\n---\nkind: Service\n"),
        );
        // enough files for the parallel parse to split them between threads
        for i in 0..40 {
            write(
                &d,
                &format!("ing{i:02}.yaml"),
                &ING.replace("name: web", &format!("name: web{i}")),
            );
        }
        let mut l = ManifestLoader::new(&d);
        let out = l.load();
        let locations: Vec<&str> = out.problems.iter().map(|p| p.location.as_str()).collect();
        assert_eq!(
            locations,
            ["a.yaml#1", "a.yaml#2", "a.yaml#3"],
            "{:?}",
            out.problems
        );
        assert_eq!(out.store.objects.len(), 40);
        // the cached parse of an unchanged file reports the same problems in the same order
        let again = l.load();
        assert_eq!(again.problems, out.problems);
        assert_eq!(again.store.objects.len(), 40);
    }

    /// Runs `f` on this thread without root's right to read any file (Linux keeps the
    /// file-system uid per thread), so that mode 000 means unreadable even in CI, which runs
    /// as root.
    fn unprivileged<T>(f: impl FnOnce() -> T) -> T {
        // SAFETY: plain system calls; they change only this thread's file-system uid.
        let root = unsafe { libc::geteuid() } == 0;
        if root {
            unsafe { libc::setfsuid(65534) };
        }
        let out = f();
        if root {
            unsafe { libc::setfsuid(0) };
        }
        out
    }

    fn chmod(p: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// An unreadable subdirectory once made its files' records disappear and was reported as
    /// the root; the files after it in the walk were lost too.
    #[test]
    fn unreadable_subdirectory_keeps_its_last_good_content_and_is_named() {
        let d = tmpdir("unreadable-dir");
        write(&d, "zone.yaml", ZONE);
        std::fs::create_dir_all(d.join("team/apps")).unwrap();
        write(&d.join("team/apps"), "ing.yaml", ING);
        write(&d, "zz.yaml", &ING.replace("name: web", "name: after"));
        let mut l = ManifestLoader::new(&d);
        assert_eq!(l.load().store.objects.len(), 2);
        chmod(&d.join("team"), 0o000);
        let out = unprivileged(|| l.load());
        let fresh = unprivileged(|| ManifestLoader::new(&d).load());
        chmod(&d.join("team"), 0o755);
        assert_eq!(out.store.objects.len(), 2, "{:?}", out.problems);
        assert_eq!(out.store.zones.len(), 1);
        assert_eq!(out.problems.len(), 1, "{:?}", out.problems);
        assert_eq!(out.problems[0].location, "team/");
        assert!(
            out.problems[0]
                .message
                .starts_with("cannot read directory: Permission denied"),
            "{}",
            out.problems[0]
        );
        assert!(
            out.problems[0]
                .message
                .ends_with("; keeping the last good content of its 1 file"),
            "{}",
            out.problems[0]
        );
        // without a last good state there is nothing to keep, and the message says so
        assert_eq!(fresh.store.objects.len(), 1);
        assert!(
            fresh.problems[0]
                .message
                .ends_with("; nothing from it is served"),
            "{}",
            fresh.problems[0]
        );
        // readable again: back to normal
        let out = l.load();
        assert!(out.problems.is_empty(), "{:?}", out.problems);
        assert_eq!(out.store.objects.len(), 2);
    }

    #[test]
    fn invalid_yaml_without_last_good_content_says_nothing_is_kept() {
        let d = tmpdir("broken-first");
        write(&d, "bad.yaml", "kind: [unclosed\n");
        let out = ManifestLoader::new(&d).load();
        assert_eq!(out.problems.len(), 1);
        let m = &out.problems[0].message;
        assert!(m.starts_with("invalid YAML: "), "{m}");
        assert!(m.ends_with("; nothing from this file is served"), "{m}");
        assert!(!m.contains("last good"), "{m}");
    }

    /// Deep nesting is refused before libyaml parses it (this 120 KB file took 36 s in a debug
    /// build).
    #[test]
    fn deeply_nested_file_fails_fast_and_names_the_file() {
        let d = tmpdir("deep");
        write(&d, "zone.yaml", ZONE);
        let deep = format!("a: {}{}\n", "[".repeat(60_000), "]".repeat(60_000));
        write(&d, "deep.yaml", &format!("{ING}---\n{deep}"));
        let t = std::time::Instant::now();
        let out = ManifestLoader::new(&d).load();
        assert!(
            t.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(out.problems.len(), 1, "{:?}", out.problems);
        assert_eq!(out.problems[0].location, "deep.yaml");
        assert!(
            out.problems[0]
                .message
                .contains("document 2 (line 9): nested deeper than 64 levels"),
            "{}",
            out.problems[0]
        );
        assert_eq!(out.store.zones.len(), 1);
    }

    #[test]
    fn loads_multi_document_files_and_defaults_namespace() {
        let d = tmpdir("multi");
        write(&d, "all.yaml", &format!("{ZONE}---\n{ING}---\n# empty\n"));
        let mut l = ManifestLoader::new(&d);
        let out = l.load();
        assert!(out.problems.is_empty(), "{:?}", out.problems);
        assert_eq!(out.store.zones.len(), 1);
        let (key, _) = out.store.objects.iter().next().unwrap();
        assert_eq!(key.to_string(), "Ingress default/web");
    }

    #[test]
    fn expands_lists_and_ignores_unknown_kinds_and_hidden_dirs() {
        let d = tmpdir("list");
        std::fs::create_dir_all(d.join(".git")).unwrap();
        write(&d.join(".git"), "x.yaml", ZONE);
        let list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: d}\n- apiVersion: v1\n  kind: Service\n  metadata: {name: s, namespace: acme}\n  spec: {type: LoadBalancer}\n";
        write(&d, "list.yml", list);
        let out = ManifestLoader::new(&d).load();
        assert!(out.problems.is_empty(), "{:?}", out.problems);
        assert_eq!(out.store.zones.len(), 0);
        assert_eq!(out.store.objects.len(), 1);
    }

    #[test]
    fn broken_yaml_keeps_last_good_file_and_reports_location() {
        let d = tmpdir("broken");
        write(&d, "zone.yaml", ZONE);
        write(&d, "ing.yaml", ING);
        let mut l = ManifestLoader::new(&d);
        assert_eq!(l.load().store.objects.len(), 1);
        write(&d, "ing.yaml", "kind: [unclosed\n");
        let out = l.load();
        assert_eq!(out.store.objects.len(), 1, "last good content kept");
        assert_eq!(out.problems.len(), 1);
        assert!(
            out.problems[0].location == "ing.yaml",
            "{}",
            out.problems[0]
        );
        assert!(out.problems[0].message.contains("invalid YAML"));
    }

    #[test]
    fn bad_object_keeps_its_last_good_version_and_names_the_field() {
        let d = tmpdir("badobj");
        write(&d, "zone.yaml", ZONE);
        let mut l = ManifestLoader::new(&d);
        assert_eq!(l.load().store.zones.len(), 1);
        write(
            &d,
            "zone.yaml",
            &ZONE.replace(
                "spec: {domain: acme.example.com}",
                "spec: {domain: acme.example.com, ttl: nope}",
            ),
        );
        let out = l.load();
        assert_eq!(out.store.zones.len(), 1, "last good zone kept");
        let p = &out.problems[0];
        assert_eq!(p.location, "zone.yaml#1");
        assert_eq!(p.object.as_deref(), Some("DNSZone acme/z"));
        assert!(p.message.contains("keeping its last good version"), "{p}");
    }

    #[test]
    fn invalid_zone_is_rejected_with_field() {
        let d = tmpdir("invalid");
        write(
            &d,
            "zone.yaml",
            &ZONE.replace("acme.example.com", "Bad_Domain"),
        );
        let out = ManifestLoader::new(&d).load();
        assert_eq!(out.store.zones.len(), 0);
        assert!(
            out.problems[0].message.contains("spec.domain"),
            "{}",
            out.problems[0]
        );
    }

    #[test]
    fn duplicates_are_reported() {
        let d = tmpdir("dup");
        write(&d, "a.yaml", ZONE);
        write(&d, "b.yaml", ZONE);
        let out = ManifestLoader::new(&d).load();
        assert_eq!(out.store.zones.len(), 1);
        assert!(
            out.problems[0].message.contains("duplicate"),
            "{}",
            out.problems[0]
        );
        assert_eq!(out.problems[0].location, "b.yaml#1");
    }

    #[test]
    fn missing_name_or_kind_is_reported() {
        let d = tmpdir("noname");
        write(
            &d,
            "a.yaml",
            "apiVersion: v1\nkind: Service\nmetadata: {}\n---\nfoo: bar\n",
        );
        let out = ManifestLoader::new(&d).load();
        assert_eq!(out.problems.len(), 2, "{:?}", out.problems);
        assert!(out.problems[0].message.contains("metadata.name"));
        assert_eq!(out.problems[1].location, "a.yaml#2");
    }
}

#[cfg(test)]
mod fuzz {
    //! A bounded in-process fuzz of the manifest loader and what follows it (no nightly
    //! toolchain needed, so it runs in every `cargo test`): the seed corpus
    //! (`tests/corpus/manifests/` and the quickstart sample) mutated the ways broken YAML and
    //! hostile trees look (YAML indicators inserted, lines deleted or repeated, files spliced,
    //! bytes flipped), loaded twice (the second load from the parse cache), compiled, rendered
    //! and queried. Whatever the input: no panic, each load is fast, every problem has a
    //! location, the cached load reports exactly what the fresh one did, and every rendered
    //! zone is answered from.
    use super::*;
    use crate::dns::{Transport, respond};
    use crate::publish::Publisher;
    use crate::serial::SerialKeeper;
    use std::time::{Duration, Instant};

    use crate::test_rng::Rng;

    fn seeds() -> Vec<String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut out = Vec::new();
        for dir in ["tests/corpus/manifests", "config/samples/quickstart"] {
            let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            for f in files {
                out.push(std::fs::read_to_string(f).unwrap());
            }
        }
        out
    }

    fn mutate(r: &mut Rng, seeds: &[String]) -> String {
        let mut lines: Vec<String> = seeds[r.index(seeds.len())]
            .lines()
            .map(str::to_string)
            .collect();
        for _ in 0..1 + r.index(4) {
            let n = lines.len().max(1);
            match r.index(7) {
                0 => {
                    let i = r.index(n);
                    if i < lines.len() {
                        lines.remove(i);
                    }
                }
                1 => {
                    let i = r.index(n);
                    if let Some(l) = lines.get(i).cloned() {
                        lines.insert(i, l);
                    }
                }
                2 => {
                    // splice in part of another seed
                    let other: Vec<&str> = seeds[r.index(seeds.len())].lines().collect();
                    let from = r.index(other.len());
                    let take = r.index(8);
                    for (k, l) in other.iter().skip(from).take(take).enumerate() {
                        lines.insert((r.index(n) + k).min(lines.len()), l.to_string());
                    }
                }
                3 => lines.push("---".into()),
                _ => {
                    // a YAML indicator or an odd byte into a line
                    let i = r.index(n);
                    let pieces = [
                        "[", "]", "{", "}", "- ", ": ", "\"", "'", "#", "&a ", "*a", "!!str ", "|",
                        ">", "\t", "  ", "\\", ";", "é", "\u{0}", "---", ",",
                    ];
                    let piece = pieces[r.index(pieces.len())];
                    if let Some(l) = lines.get_mut(i) {
                        let mut at = r.index(l.len() + 1);
                        while !l.is_char_boundary(at) {
                            at -= 1;
                        }
                        l.insert_str(at, piece);
                    }
                }
            }
        }
        let mut text = lines.join("\n");
        text.push('\n');
        text
    }

    #[test]
    fn mutated_manifest_trees_load_compile_and_answer() {
        let seeds = seeds();
        let zone_seed = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("config/samples/quickstart/dnszone.yaml"),
        )
        .unwrap();
        let mut r = Rng(0xfeed_5eed_0bad_cafe);
        let d = std::env::temp_dir().join(format!("zg-loader-fuzz-{}", std::process::id()));
        let (mut served, mut with_problems) = (0usize, 0usize);
        let rounds = 300;
        for round in 0..rounds {
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            for k in 0..1 + r.index(3) {
                std::fs::write(d.join(format!("f{k}.yaml")), mutate(&mut r, &seeds)).unwrap();
            }
            if round % 2 == 0 {
                // an intact zone next to the broken files, so that mutated sources reach the
                // compiler and the server
                std::fs::write(d.join("zone.yaml"), &zone_seed).unwrap();
            }
            let mut loader = ManifestLoader::new(&d);
            let t = Instant::now();
            let out = loader.load();
            assert!(
                t.elapsed() < Duration::from_secs(2),
                "round {round}: {:?}",
                t.elapsed()
            );
            for p in &out.problems {
                assert!(!p.location.is_empty(), "round {round}: {p}");
                assert!(!p.message.is_empty(), "round {round}: {p}");
            }
            let again = loader.load();
            assert_eq!(
                again.problems, out.problems,
                "round {round}: cached load differs"
            );
            assert_eq!(again.store.zones.len(), out.store.zones.len());
            with_problems += usize::from(!out.problems.is_empty());
            let mut publisher = Publisher::default();
            let mut reports = publisher.compile_all(&out.store);
            let set =
                publisher.build_zone_set(&mut reports, &mut SerialKeeper::new(None), 1_800_000_000);
            for r in &reports {
                if let (Some(data), Some(serial)) = (publisher.data(&r.zone), r.serial) {
                    let text = crate::render::master_file(data, serial);
                    assert!(text.starts_with("$ORIGIN "), "round {round}");
                }
            }
            for zone in set.zones() {
                served += 1;
                for name in [zone.label().to_string(), format!("www.{}", zone.label())] {
                    let mut q = hickory_proto::op::Message::new(
                        7,
                        hickory_proto::op::MessageType::Query,
                        hickory_proto::op::OpCode::Query,
                    );
                    q.add_query(hickory_proto::op::Query::query(
                        hickory_proto::rr::Name::from_ascii(&name).unwrap(),
                        hickory_proto::rr::RecordType::ANY,
                    ));
                    let bytes = q.to_vec().unwrap();
                    for t in [Transport::Udp, Transport::Tcp] {
                        let (resp, _) = respond(&set, &bytes, t).expect("an answer");
                        hickory_proto::op::Message::from_vec(&resp)
                            .unwrap_or_else(|e| panic!("round {round}: {name}: {e}"));
                    }
                }
            }
        }
        let _ = std::fs::remove_dir_all(&d);
        // not vacuous: many trees served zones, many had problems
        assert!(
            served > rounds / 2,
            "{served} zones served in {rounds} rounds"
        );
        assert!(
            with_problems > rounds / 4,
            "{with_problems} rounds with problems"
        );
    }

    /// The YAML front end alone, on many more inputs: never panics, limits hold.
    #[test]
    fn mutated_yaml_never_panics() {
        let seeds = seeds();
        let mut r = Rng(0x0123_4567_89ab_cdef);
        let mut ok = 0;
        for _ in 0..5000 {
            let text = mutate(&mut r, &seeds);
            if super::super::yaml::documents(&text).is_ok() {
                ok += 1;
            }
        }
        assert!(ok > 500 && ok < 5000, "{ok} of 5000 parsed");
    }
}
