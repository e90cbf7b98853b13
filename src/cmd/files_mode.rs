//! `serve --manifests`, `render` and `check`: the engine fed from a directory of manifests.

use super::check_report::{
    CheckFormat, Diagnostic, Report, document_line, leading_field, split_location,
};
use super::tree_watch::{Debounced, TreeWatch};
use crate::dns::ZoneSet;
use crate::dns::server::SharedZones;
use crate::error::{Error, Result};
use crate::feed::files::{LoadProblem, ManifestLoader};
use crate::http::{self, Health};
use crate::metrics::ServerMetrics;
use crate::process;
use crate::publish::{Publisher, ZoneReport};
use crate::serial::SerialKeeper;
use arc_swap::ArcSwap;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Loads, compiles and reports. Returns (load problems, reports).
pub struct Compiled {
    pub load_problems: Vec<LoadProblem>,
    pub reports: Vec<ZoneReport>,
    pub files: usize,
    /// The content's timestamp (newest mtime), the floor of new serials.
    pub content_time: u64,
    /// Where each object came from (`file.yaml#2`), by `Kind namespace/name`.
    pub locations: BTreeMap<String, String>,
    /// The objects loaded (the zones' DNSSEC key Secrets are looked up in it).
    pub store: crate::objects::store::ObjectStore,
}

/// Loads and compiles every zone under the loader's directory.
pub fn load_and_compile(loader: &mut ManifestLoader, publisher: &mut Publisher) -> Compiled {
    let loaded = loader.load();
    let reports = publisher.compile_all(&loaded.store);
    Compiled {
        load_problems: loaded.problems,
        reports,
        files: loaded.files,
        content_time: loaded.newest_mtime,
        locations: loaded.locations,
        store: loaded.store,
    }
}

/// `zonegate check`: exit code 0 when everything is valid, 1 otherwise. Errors are what the
/// server would report and drop; warnings (a hostname in no zone, a non-ASCII hostname) do not
/// change the exit code. Every problem names the file and document (and the document's first
/// line), the object and the field; the report goes to stdout in `format`.
pub fn check(dir: PathBuf, format: CheckFormat) -> i32 {
    let mut loader = ManifestLoader::new(&dir);
    let loaded = loader.load();
    let reports = Publisher::default().compile_all(&loaded.store);
    let locations = &loaded.locations;
    let at = |object: &str| -> String {
        locations
            .get(object)
            .map(|l| format!("{l}: "))
            .unwrap_or_default()
    };
    let mut texts: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut diagnostic = |severity: &'static str,
                          location: Option<&str>,
                          object: Option<&str>,
                          field: Option<String>,
                          message: String,
                          text: String| {
        let (file, document) = match location {
            Some(l) => {
                let (f, d) = split_location(l);
                (Some(f), d)
            }
            None => (None, None),
        };
        let line = match (&file, document) {
            (Some(f), Some(d)) => texts
                .entry(f.clone())
                .or_insert_with(|| std::fs::read_to_string(dir.join(f)).ok())
                .as_deref()
                .and_then(|t| document_line(t, d)),
            _ => None,
        };
        Diagnostic {
            file: file.map(|f| dir.join(f).display().to_string()),
            line,
            document,
            object: object.map(str::to_string),
            field,
            message,
            severity,
            text,
        }
    };
    let mut problems = Vec::new();
    for p in &loaded.problems {
        problems.push(diagnostic(
            "error",
            Some(&p.location),
            p.object.as_deref(),
            leading_field(&p.message),
            p.message.clone(),
            p.to_string(),
        ));
    }
    for r in &reports {
        if let Some(why) = &r.rejected {
            problems.push(diagnostic(
                "error",
                Some(&r.origin),
                Some(&format!("DNSZone {}", r.zone)),
                leading_field(why),
                why.clone(),
                format!("{}: DNSZone {}: {why}", r.origin, r.zone),
            ));
        }
        for p in &r.problems {
            problems.push(diagnostic(
                "error",
                locations.get(&p.object).map(String::as_str),
                Some(&p.object),
                Some(p.field.clone()).filter(|f| !f.is_empty()),
                p.message.clone(),
                format!("{}{p} (zone {}, {})", at(&p.object), r.zone, r.domain),
            ));
        }
    }
    let domains: Vec<String> = loaded
        .store
        .zones
        .values()
        .map(|z| {
            z.zone
                .spec
                .domain
                .trim_end_matches('.')
                .to_ascii_lowercase()
        })
        .collect();
    for (key, obj) in &loaded.store.objects {
        let object = key.to_string();
        for (field, message) in crate::compile::lint_hosts(obj, &domains) {
            let text = format!("{}{object}: {field}: {message}", at(&object));
            problems.push(diagnostic(
                "warning",
                locations.get(&object).map(String::as_str),
                Some(&object),
                Some(field),
                message,
                text,
            ));
        }
    }
    let report = Report::new(
        loaded.files,
        reports.iter().filter(|r| r.apex.is_some()).count(),
        problems,
    );
    print!("{}", report.render(format));
    if report.ok { 0 } else { 1 }
}

/// `zonegate render --dnssec`: sign the zones with `spec.dnssec.enabled`, with their keys from
/// the tree or `state_dir` (`crate::dnssec::source`).
pub struct RenderDnssec {
    pub state_dir: Option<PathBuf>,
}

/// Keys and signing of one DNSSEC zone: the keys of `ns/name` (from the tree's Secret or the
/// state directory), or why there are none.
fn zone_keys(
    store: &crate::objects::store::ObjectStore,
    zone: &str,
    state_dir: Option<&std::path::Path>,
) -> Option<std::result::Result<crate::dnssec::keys::ZoneKeys, String>> {
    let (ns, name) = zone.split_once('/')?;
    let entry = store.zones.get(&(ns.to_string(), name.to_string()))?;
    let spec = entry.zone.spec.dnssec_enabled()?;
    Some(
        crate::dnssec::source::files_mode_keys(ns, name, spec.algorithm, store, state_dir)
            .map(|(k, _)| k),
    )
}

/// Seconds since the epoch, now.
fn unix_now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

/// `zonegate render`: master files on stdout. Problems go to stderr; exit 1 if the zone asked
/// for does not exist (or, with `--dnssec`, a signed zone has no key).
pub fn render(dir: PathBuf, zone: Option<String>, dnssec: Option<RenderDnssec>) -> i32 {
    let mut loader = ManifestLoader::new(&dir);
    let mut publisher = Publisher::default();
    let Compiled {
        load_problems,
        mut reports,
        content_time,
        store,
        ..
    } = load_and_compile(&mut loader, &mut publisher);
    for p in &load_problems {
        eprintln!("warning: {p}");
    }
    // with --dnssec the signed zones get their keys first: their serial follows the keys and
    // the signing generation, as `serve` publishes it
    let mut key_errors = BTreeMap::new();
    if let Some(d) = &dnssec {
        for r in reports
            .iter()
            .filter(|r| zone.as_ref().is_none_or(|z| *z == r.zone))
        {
            match zone_keys(&store, &r.zone, d.state_dir.as_deref()) {
                Some(Ok(keys)) => publisher.set_keys(&r.zone, Some(Arc::new(keys))),
                Some(Err(e)) => {
                    key_errors.insert(r.zone.clone(), e);
                }
                None => {}
            }
        }
    }
    let mut keeper = SerialKeeper::new(None);
    let set = publisher.build_zone_set(&mut reports, &mut keeper, content_time);
    let mut shown = 0;
    for r in &reports {
        if zone.as_ref().is_some_and(|z| *z != r.zone) {
            continue;
        }
        for p in &r.problems {
            eprintln!("warning: DNSZone {}: {p}", r.zone);
        }
        if let Some(why) = &r.rejected {
            eprintln!("warning: DNSZone {}: {why}", r.zone);
            continue;
        }
        if let (Some(data), Some(serial)) = (publisher.data(&r.zone), r.serial) {
            if let Some(e) = key_errors.get(&r.zone) {
                eprintln!("error: {e}");
                return 1;
            }
            if shown > 0 {
                println!();
            }
            println!("; DNSZone {} from {}", r.zone, r.origin);
            match set.get(&data.origin).and_then(|z| z.dnssec()) {
                Some(signed) => print!(
                    "{}",
                    crate::render::master_file_signed(data, serial, signed)
                ),
                None => print!("{}", crate::render::master_file(data, serial)),
            }
            shown += 1;
        }
    }
    if shown == 0 {
        eprintln!(
            "error: no zone to render{}",
            zone.map(|z| format!(" named {z}")).unwrap_or_default()
        );
        return 1;
    }
    0
}

/// `zonegate ds`: the DS records of the zones with `spec.dnssec.enabled` (every key, SHA-256),
/// what a tenant gives the registrar; their keys from the tree or `state_dir` as `serve` finds
/// them (a key is generated there when there is none yet). Exit 1 when no such zone is found
/// or one has no key.
pub fn ds(dir: PathBuf, zone: Option<String>, state_dir: Option<PathBuf>) -> i32 {
    let mut loader = ManifestLoader::new(&dir);
    let loaded = loader.load();
    let store = &loaded.store;
    let (mut shown, mut failed) = (0, false);
    for ((ns, name), entry) in &store.zones {
        let key = format!("{ns}/{name}");
        if zone.as_ref().is_some_and(|z| *z != key) {
            continue;
        }
        let Some(spec) = entry.zone.spec.dnssec_enabled() else {
            continue;
        };
        let domain = entry.zone.spec.domain.trim_end_matches('.');
        match crate::dnssec::source::files_mode_keys(
            ns,
            name,
            spec.algorithm,
            store,
            state_dir.as_deref(),
        ) {
            Ok((keys, from)) => {
                println!("; DNSZone {key}, key from {from}");
                for line in keys.ds_presentation(domain, crate::dnssec::keys::DS_TTL) {
                    println!("{line}");
                }
                shown += 1;
            }
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if shown == 0 && !failed {
        eprintln!(
            "error: no DNSZone with spec.dnssec.enabled{}",
            zone.map(|z| format!(" named {z}")).unwrap_or_default()
        );
        return 1;
    }
    i32::from(failed)
}

/// Options of `serve --manifests`.
pub struct ServeFiles {
    pub dir: PathBuf,
    pub listen: Vec<SocketAddr>,
    pub http: Option<SocketAddr>,
    pub state_dir: Option<PathBuf>,
    /// Ready even when no zone is served (`--allow-empty`).
    pub allow_empty: bool,
    /// DoT, DoH and DoQ listeners and their certificate.
    pub encrypted: crate::dns::hickory::EncryptedArgs,
    /// Query ACL, cookies, identity and rate limiting of every listener.
    pub policy: std::sync::Arc<crate::dns::policy::Policy>,
}

struct Reloader {
    loader: ManifestLoader,
    publisher: Publisher,
    keeper: SerialKeeper,
    zones: SharedZones,
    metrics: Arc<ServerMetrics>,
    /// Zone labels exported last time, to clear gauges of zones that went away.
    exported: Vec<String>,
    /// What was served after the last reload: apex -> serial, for the "what changed" line.
    served: BTreeMap<String, u32>,
    loads: u64,
    /// Sends NOTIFY to secondaries when serials change (none in tests without a runtime).
    notifier: Option<crate::notifier::Notifier>,
    /// Zones served after the last reload.
    zone_count: usize,
    /// The watch of the tree's directories, brought in step before each load (`serve` only).
    watch: Option<TreeWatch<Debounced>>,
    /// `--state-dir`: where DNSSEC keys without a Secret in the tree are generated.
    state_dir: Option<PathBuf>,
    /// DNSSEC keys of the zones with `spec.dnssec.enabled`, by `namespace/name`.
    keys: BTreeMap<String, Arc<crate::dnssec::keys::ZoneKeys>>,
    /// Why zones with `spec.dnssec.enabled` have no keys, after the last reload.
    key_errors: Vec<String>,
}

/// `1 zone`, `2 zones`.
pub(crate) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl Reloader {
    /// The DNSSEC keys of every served zone with `spec.dnssec.enabled` (`key_errors` says why
    /// a zone has none). Keys are signing input only; serving signed answers is to come.
    fn load_keys(&mut self, store: &crate::objects::store::ObjectStore, reports: &[ZoneReport]) {
        let before = std::mem::take(&mut self.keys);
        self.key_errors.clear();
        for r in reports.iter().filter(|r| r.apex.is_some()) {
            match zone_keys(store, &r.zone, self.state_dir.as_deref()) {
                None => {}
                Some(Ok(k)) => {
                    let tags: Vec<u16> = k.all().map(|k| k.key_tag()).collect();
                    let known = before
                        .get(&r.zone)
                        .is_some_and(|b| b.all().map(|k| k.key_tag()).eq(tags.iter().copied()));
                    if !known {
                        let domain = r.domain.trim_end_matches('.');
                        tracing::info!(
                            zone = %r.zone,
                            key_tags = ?tags,
                            ds = ?k.ds_presentation(domain, 3600),
                            "DNSSEC keys loaded"
                        );
                    }
                    self.keys.insert(r.zone.clone(), Arc::new(k));
                }
                Some(Err(e)) => {
                    // a zone signed before stays signed with the keys it had: going unsigned
                    // under a DS at the parent would make it bogus for validating resolvers
                    if let Some(k) = before.get(&r.zone) {
                        self.keys.insert(r.zone.clone(), k.clone());
                        self.key_errors
                            .push(format!("{e}; still signing with the keys loaded before"));
                    } else {
                        self.key_errors.push(e);
                    }
                }
            }
        }
    }

    /// Loads, compiles and swaps in the zones; returns how many are served. Every problem is
    /// one warning line, and the summary line counts exactly those: `problems` =
    /// `manifest_problems` (files, objects, zones not served) + `zone_problems` (the sum of
    /// `zonegate_zone_problems`).
    fn reload(&mut self) -> usize {
        // first the watch, then the load: a file written in between is both read and seen
        let unwatched = self.watch.as_mut().map(TreeWatch::sync).unwrap_or_default();
        let Compiled {
            load_problems,
            mut reports,
            files,
            content_time,
            locations,
            store,
        } = load_and_compile(&mut self.loader, &mut self.publisher);
        self.load_keys(&store, &reports);
        for r in &reports {
            let keys = self.keys.get(&r.zone).cloned();
            self.publisher.set_keys(&r.zone, keys);
        }
        let set = self
            .publisher
            .build_zone_set(&mut reports, &mut self.keeper, content_time);
        if let Err(e) = self.keeper.persist() {
            tracing::warn!(error = %e, "cannot persist SOA serials");
        }
        let mut manifest_problems = load_problems.len() + self.key_errors.len();
        let mut zone_problems = 0;
        for e in &self.key_errors {
            tracing::warn!(problem = %e, "DNSSEC key problem");
        }
        for p in &load_problems {
            tracing::warn!(problem = %p, "manifest problem");
        }
        for z in self.exported.drain(..) {
            self.metrics.forget_zone(&z);
        }
        let mut served = BTreeMap::new();
        for r in &reports {
            if let Some(why) = &r.rejected {
                tracing::warn!(zone = %r.zone, origin = %r.origin, "{why}");
                manifest_problems += 1;
            }
            for p in &r.problems {
                let location = locations.get(&p.object).map_or("", String::as_str);
                tracing::warn!(zone = %r.zone, location, problem = %p, "zone input dropped");
            }
            let Some(zone) = r.apex.as_ref().and_then(|apex| set.get(apex)) else {
                manifest_problems += r.problems.len();
                continue;
            };
            zone_problems += r.problems.len();
            self.metrics.export_zone(zone, &set, r.problems.len());
            served.insert(zone.label().to_string(), zone.serial());
            self.exported.push(zone.label().to_string());
        }
        self.metrics.zones.set(set.len() as i64);
        self.metrics.manifest_problems.set(manifest_problems as i64);
        self.metrics.reloads.inc();
        let problems = manifest_problems + zone_problems;
        if problems > 0 {
            self.metrics.reload_errors.inc();
        }
        let list = |m: &BTreeMap<String, u32>| -> String {
            m.iter()
                .map(|(z, s)| format!("{z} (serial {s})"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let count = set.len();
        if self.loads == 0 {
            tracing::info!(
                files,
                zones = count,
                problems,
                manifest_problems,
                zone_problems,
                "zones loaded: {}{}",
                plural(count, "zone", "zones"),
                if served.is_empty() {
                    String::new()
                } else {
                    format!(": {}", list(&served))
                }
            );
        } else {
            let changed: BTreeMap<String, u32> = served
                .iter()
                .filter(|(z, s)| self.served.get(*z) != Some(*s))
                .map(|(z, s)| (z.clone(), *s))
                .collect();
            let gone: Vec<&String> = self
                .served
                .keys()
                .filter(|z| !served.contains_key(*z))
                .collect();
            let what = if changed.is_empty() && gone.is_empty() {
                "nothing changed".to_string()
            } else {
                let mut parts = Vec::new();
                if !changed.is_empty() {
                    parts.push(format!(
                        "{} changed: {}",
                        plural(changed.len(), "zone", "zones"),
                        list(&changed)
                    ));
                }
                if !gone.is_empty() {
                    let names: Vec<&str> = gone.iter().map(|z| z.as_str()).collect();
                    parts.push(format!(
                        "{} no longer served: {}",
                        plural(gone.len(), "zone", "zones"),
                        names.join(", ")
                    ));
                }
                parts.join("; ")
            };
            tracing::info!(
                files,
                zones = count,
                problems,
                manifest_problems,
                zone_problems,
                "zones reloaded: {}, {what}",
                plural(count, "zone", "zones")
            );
        }
        // (after the summary line, which counts the problems of the tree itself)
        for (dir, e) in unwatched {
            tracing::warn!(
                dir = %dir.display(),
                error = %e,
                "cannot watch a directory of the tree; its changes are read when another change reloads the tree"
            );
        }
        self.served = served;
        self.loads += 1;
        let set = Arc::new(set);
        self.zones.store(set.clone());
        if let Some(n) = &self.notifier {
            n.published(&set);
        }
        count
    }
}

/// Ready once listening and serving at least one zone (or any number with `--allow-empty`):
/// a tree with no servable zone must not receive traffic as if it answered.
fn set_ready(health: &Health, listening: bool, zones: usize, allow_empty: bool) {
    let ready = listening && (zones > 0 || allow_empty);
    health.ready.store(ready, Ordering::Release);
}

/// How long the manifest tree must be quiet before a burst of changes (an editor, `git
/// checkout`) is reloaded once.
const DEBOUNCE: Duration = Duration::from_millis(20);

/// How often `serve` checks whether a signed zone needs new signatures (a new signing
/// generation: `dnssec::sign::needs_resign`); a reload follows only when one does.
const RESIGN_CHECK: Duration = Duration::from_secs(10);

/// `zonegate serve --manifests DIR`.
pub async fn serve(opts: ServeFiles) -> Result<()> {
    if !opts.dir.exists() {
        return Err(Error::flag(
            "--manifests",
            format!("{}: no such directory", opts.dir.display()),
        ));
    }
    process::install_signal_handlers();
    let metrics = Arc::new(ServerMetrics::new());
    let health = Arc::new(Health::default());
    let zones: SharedZones = Arc::new(ArcSwap::from_pointee(ZoneSet::default()));
    // Watch the tree before the first load (a change during it is one more reload); the
    // debouncer turns a burst of events into one batch once the tree has been quiet for
    // DEBOUNCE, and batches queued during a reload become one more reload.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watch_error = |source| Error::WatchDir {
        path: opts.dir.clone(),
        source,
    };
    let debouncer = notify_debouncer_full::new_debouncer(
        DEBOUNCE,
        None,
        move |res: notify_debouncer_full::DebounceEventResult| {
            let changed = match res {
                // only changes count: our own reads raise access events, which must not loop
                Ok(events) => events.iter().any(|ev| {
                    matches!(
                        ev.kind,
                        notify::EventKind::Create(_)
                            | notify::EventKind::Modify(_)
                            | notify::EventKind::Remove(_)
                    )
                }),
                // lost events (queue overflow) are a change of unknown extent: reload
                Err(errors) => {
                    for e in &errors {
                        tracing::warn!(error = %e, "file watch error; reloading everything");
                    }
                    true
                }
            };
            if changed {
                let _ = tx.send(());
            }
        },
    )
    .map_err(watch_error)?;
    let watch = TreeWatch::new(debouncer, opts.dir.clone()).map_err(watch_error)?;
    let mut reloader = Reloader {
        loader: ManifestLoader::new(&opts.dir),
        publisher: Publisher::default(),
        keeper: SerialKeeper::new(opts.state_dir.clone()),
        zones: zones.clone(),
        metrics: metrics.clone(),
        exported: Vec::new(),
        served: BTreeMap::new(),
        loads: 0,
        notifier: None,
        zone_count: 0,
        watch: Some(watch),
        state_dir: opts.state_dir.clone(),
        keys: BTreeMap::new(),
        key_errors: Vec::new(),
    };
    reloader = reload_off_workers(reloader).await?;
    // a zone asking for DNSSEC without a key is refused at start (later: a warning each reload)
    if !reloader.key_errors.is_empty() {
        return Err(Error::Command(reloader.key_errors.join("; ")));
    }
    if reloader.zone_count == 0 && !opts.allow_empty {
        tracing::warn!(
            dir = %opts.dir.display(),
            "no zone is served: /readyz answers 503 until one is (pass --allow-empty to serve an empty tree)"
        );
    }
    super::listeners::start(
        &opts.listen,
        &opts.encrypted,
        &zones,
        &metrics,
        &opts.policy,
    )
    .await?;
    // NOTIFY once the listeners answer the secondaries' transfers
    let notifier = crate::notifier::Notifier::spawn(metrics.clone());
    notifier.published(&zones.load());
    reloader.notifier = Some(notifier);
    if let Some(addr) = opts.http {
        process::serve_http(
            "--http",
            addr,
            Arc::new(http::ServerEndpoint {
                health: health.clone(),
                metrics: metrics.clone(),
            }),
        )
        .await?;
    }
    set_ready(&health, true, reloader.zone_count, opts.allow_empty);

    let shutdown = process::shutdown();
    tokio::pin!(shutdown);
    // signed zones: a reload re-signs them (with a new serial) when a signing generation
    // ends, also when the tree does not change
    let mut resign = tokio::time::interval(RESIGN_CHECK);
    resign.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    resign.tick().await;
    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = resign.tick(), if !reloader.keys.is_empty() => {
                if reloader.publisher.resign_due_at(unix_now()) {
                    reloader = reload_off_workers(reloader).await?;
                    set_ready(&health, true, reloader.zone_count, opts.allow_empty);
                }
            }
            ev = rx.recv() => {
                if ev.is_none() {
                    return Err(Error::Stopped("the file watcher"));
                }
                while rx.try_recv().is_ok() {}
                reloader = reload_off_workers(reloader).await?;
                set_ready(&health, true, reloader.zone_count, opts.allow_empty);
            }
        }
    }
}

/// Runs a reload on the blocking pool: loading and compiling a large tree takes long enough to
/// stall the DNS server's async workers.
async fn reload_off_workers(mut reloader: Reloader) -> Result<Reloader> {
    tokio::task::spawn_blocking(move || {
        reloader.zone_count = reloader.reload();
        process::release_freed_memory();
        reloader
    })
    .await
    .map_err(|_| Error::Stopped("the reload task"))
}
