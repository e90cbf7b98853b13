//! `serve --manifests`, `render` and `check`: the engine fed from a directory of manifests.

use crate::dns::ZoneSet;
use crate::dns::server::{self, SharedZones};
use crate::feed::files::{LoadProblem, ManifestLoader};
use crate::http::{self, Health};
use crate::metrics::{ServerMetrics, ZoneLabels};
use crate::publish::{Publisher, ZoneReport};
use crate::serial::SerialKeeper;
use arc_swap::ArcSwap;
use notify::Watcher;
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
    }
}

/// `zonegate check`: exit code 0 when everything is valid, 1 otherwise.
pub fn check(dir: PathBuf) -> i32 {
    let mut loader = ManifestLoader::new(&dir);
    let Compiled {
        load_problems,
        reports,
        files,
        ..
    } = load_and_compile(&mut loader, &mut Publisher::default());
    let mut errors = 0;
    for p in &load_problems {
        println!("error: {p}");
        errors += 1;
    }
    for r in &reports {
        if let Some(why) = &r.rejected {
            println!("error: {}: DNSZone {}: {why}", r.origin, r.zone);
            errors += 1;
        }
        for p in &r.problems {
            println!("error: DNSZone {} ({}): {p}", r.zone, r.domain);
            errors += 1;
        }
    }
    let zones = reports.iter().filter(|r| r.apex.is_some()).count();
    if errors == 0 {
        println!("ok: {files} files, {zones} zones, no problems");
        0
    } else {
        println!("{errors} problems in {files} files ({zones} zones compiled)");
        1
    }
}

/// `zonegate render`: master files on stdout. Problems go to stderr; exit 1 if the zone asked
/// for does not exist.
pub fn render(dir: PathBuf, zone: Option<String>) -> i32 {
    let mut loader = ManifestLoader::new(&dir);
    let mut publisher = Publisher::default();
    let Compiled {
        load_problems,
        mut reports,
        content_time,
        ..
    } = load_and_compile(&mut loader, &mut publisher);
    for p in &load_problems {
        eprintln!("warning: {p}");
    }
    let mut keeper = SerialKeeper::new(None);
    publisher.build_zone_set(&mut reports, &mut keeper, content_time);
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
            if shown > 0 {
                println!();
            }
            println!("; DNSZone {} from {}", r.zone, r.origin);
            print!("{}", crate::render::master_file(data, serial));
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

/// Options of `serve --manifests`.
pub struct ServeFiles {
    pub dir: PathBuf,
    pub listen: Vec<SocketAddr>,
    pub http: Option<SocketAddr>,
    pub state_dir: Option<PathBuf>,
}

struct Reloader {
    loader: ManifestLoader,
    publisher: Publisher,
    keeper: SerialKeeper,
    zones: SharedZones,
    metrics: Arc<ServerMetrics>,
    /// Zone labels exported last time, to clear gauges of zones that went away.
    exported: Vec<String>,
    /// Sends NOTIFY to secondaries when serials change (none in tests without a runtime).
    notifier: Option<crate::notifier::Notifier>,
}

impl Reloader {
    fn reload(&mut self) {
        let Compiled {
            load_problems,
            mut reports,
            files,
            content_time,
        } = load_and_compile(&mut self.loader, &mut self.publisher);
        let set = self
            .publisher
            .build_zone_set(&mut reports, &mut self.keeper, content_time);
        if let Err(e) = self.keeper.persist() {
            tracing::warn!(error = %e, "cannot persist SOA serials");
        }
        let mut errors = load_problems.len();
        for p in &load_problems {
            tracing::warn!(problem = %p, "manifest problem");
        }
        for r in &reports {
            if let Some(why) = &r.rejected {
                tracing::warn!(zone = %r.zone, origin = %r.origin, "{why}");
                errors += 1;
            }
            for p in &r.problems {
                tracing::warn!(zone = %r.zone, problem = %p, "zone input dropped");
            }
        }
        for z in self.exported.drain(..) {
            let l = ZoneLabels { zone: z };
            self.metrics.records.remove(&l);
            self.metrics.serial.remove(&l);
            self.metrics.problems.remove(&l);
        }
        for r in &reports {
            if let Some(zone) = r.apex.as_ref().and_then(|apex| set.get(apex)) {
                let l = ZoneLabels {
                    zone: zone.label().to_string(),
                };
                self.metrics
                    .records
                    .get_or_create(&l)
                    .set(zone.record_count() as i64);
                self.metrics
                    .serial
                    .get_or_create(&l)
                    .set(zone.serial() as i64);
                self.metrics
                    .problems
                    .get_or_create(&l)
                    .set(r.problems.len() as i64);
                self.exported.push(l.zone);
            }
        }
        self.metrics.zones.set(set.len() as i64);
        self.metrics.reloads.inc();
        if errors > 0 {
            self.metrics.reload_errors.inc();
        }
        tracing::info!(files, zones = set.len(), problems = errors, "zones loaded");
        let set = Arc::new(set);
        self.zones.store(set.clone());
        if let Some(n) = &self.notifier {
            n.published(&set);
        }
    }
}

/// `zonegate serve --manifests DIR`.
pub async fn serve(opts: ServeFiles) -> anyhow_like::Result<()> {
    if !opts.dir.exists() {
        return Err(format!("--manifests {}: no such directory", opts.dir.display()).into());
    }
    let metrics = Arc::new(ServerMetrics::new());
    let health = Arc::new(Health::default());
    let zones: SharedZones = Arc::new(ArcSwap::from_pointee(ZoneSet::default()));
    let mut reloader = Reloader {
        loader: ManifestLoader::new(&opts.dir),
        publisher: Publisher::default(),
        keeper: SerialKeeper::new(opts.state_dir.clone()),
        zones: zones.clone(),
        metrics: metrics.clone(),
        exported: Vec::new(),
        notifier: None,
    };
    reloader.reload();
    for addr in &opts.listen {
        let bound = server::serve(*addr, zones.clone(), metrics.clone())
            .await
            .map_err(|e| format!("--listen {addr}: {e}"))?;
        tracing::info!(%bound, "serving DNS over UDP and TCP");
    }
    // NOTIFY once the listeners answer the secondaries' transfers
    let notifier = crate::notifier::Notifier::spawn(metrics.clone());
    notifier.published(&zones.load());
    reloader.notifier = Some(notifier);
    if let Some(addr) = opts.http {
        let bound = http::serve(
            addr,
            Arc::new(http::ServerEndpoint {
                health: health.clone(),
                metrics: metrics.clone(),
            }),
        )
        .await
        .map_err(|e| format!("--http {addr}: {e}"))?;
        tracing::info!(%bound, "serving /healthz, /readyz and /metrics");
    }
    health.ready.store(true, Ordering::Release);

    // Watch the directory; coalesce bursts of events (an editor or `git checkout` writes many
    // files) into one reload shortly after the last event.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        // Only changes count: our own reads raise access events, which must not loop.
        if let Ok(ev) = ev
            && matches!(
                ev.kind,
                notify::EventKind::Create(_)
                    | notify::EventKind::Modify(_)
                    | notify::EventKind::Remove(_)
            )
        {
            let _ = tx.send(());
        }
    })
    .map_err(|e| format!("cannot watch {}: {e}", opts.dir.display()))?;
    watcher
        .watch(&opts.dir, notify::RecursiveMode::Recursive)
        .map_err(|e| format!("cannot watch {}: {e}", opts.dir.display()))?;
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => {
                tracing::info!("shutting down");
                return Ok(());
            }
            ev = rx.recv() => {
                if ev.is_none() {
                    return Err("file watcher stopped".into());
                }
                // debounce: wait until 20 ms pass without events
                while let Ok(Some(())) = tokio::time::timeout(Duration::from_millis(20), rx.recv()).await {}
                reloader.reload();
            }
        }
    }
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Minimal boxed-error result for command plumbing.
pub mod anyhow_like {
    pub type Error = Box<dyn std::error::Error + Send + Sync>;
    pub type Result<T> = std::result::Result<T, Error>;
}
