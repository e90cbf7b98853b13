//! `serve --zone NAMESPACE/NAME`: the engine fed from live Kubernetes objects.

use crate::compile::CompileOptions;
use crate::dns::ZoneSet;
use crate::dns::server::{self, SharedZones};
use crate::error::{Error, Result};
use crate::feed::kube::{
    ClusterState, FeedMsg, Resources, WatchKey, WatchKind, discover, spawn_watch,
};
use crate::http::{self, Health};
use crate::metrics::{NamespaceLabels, ServerMetrics, WatchLabels, ZoneLabels};
use crate::process;
use crate::publish::ZonePipeline;
use crate::serial::SerialKeeper;
use arc_swap::ArcSwap;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Options of `serve --zone`.
pub struct ServeCluster {
    pub zone: String,
    pub kubeconfig: Option<PathBuf>,
    pub listen: Vec<SocketAddr>,
    pub http: Option<SocketAddr>,
    pub state_dir: Option<PathBuf>,
    /// Called with the zone's content each time it is published (`zonegate hosts`). A process
    /// with no `listen` address answers no DNS and takes no part in serial agreement.
    pub on_publish: Option<PublishHook>,
}

/// See `ServeCluster::on_publish`.
pub type PublishHook = Box<dyn FnMut(&crate::zone::ZoneData) + Send>;

/// SOA serials shared by every server of a zone through a ConfigMap `<zone>-serial` in the
/// zone's namespace, holding the content hash and serial last published. A server whose content
/// hash matches uses that serial; one with new content writes `max(serial + 1, now)` with an
/// optimistic-concurrency replace, so all servers with the same content publish the same serial
/// and it only ever grows, across restarts and pod replacement. Falls back to a local keeper
/// (serial from the clock, never decreasing while the process lives) when the ConfigMap cannot
/// be read or written, and says so.
struct SharedSerial {
    api: Api<ConfigMap>,
    name: String,
    local: SerialKeeper,
    warned: bool,
}

impl SharedSerial {
    async fn serial(&mut self, zone: &str, hash: u64, now: u64) -> u32 {
        match self.shared(hash, now).await {
            Ok(s) => {
                self.local.remember(zone, hash, s);
                if self.warned {
                    tracing::info!(configmap = %self.name, "sharing the SOA serial through the ConfigMap again");
                    self.warned = false;
                }
                s
            }
            Err(e) => {
                if !self.warned {
                    tracing::warn!(configmap = %self.name, error = %e, "cannot share the SOA serial through the ConfigMap; keeping the last serial, and new content gets a local clock-based one");
                    self.warned = true;
                }
                // same content: the serial last agreed; new content: max(last + 1, now)
                self.local.serial(zone, hash, now)
            }
        }
    }

    async fn shared(&mut self, hash: u64, now: u64) -> std::result::Result<u32, kube::Error> {
        let hash_s = format!("{hash:016x}");
        for _ in 0..8 {
            let current = self.api.get_opt(&self.name).await?;
            let Some(mut cm) = current else {
                let serial = now.min(u32::MAX as u64) as u32;
                let cm: ConfigMap = serde_json::from_value(serde_json::json!({
                    "metadata": {"name": self.name, "labels": {"app.kubernetes.io/managed-by": "zonegate"}},
                    "data": {"hash": hash_s, "serial": serial.to_string()}
                }))
                .expect("valid ConfigMap");
                match self.api.create(&PostParams::default(), &cm).await {
                    Ok(_) => return Ok(serial),
                    Err(kube::Error::Api(s)) if s.code == 409 => continue,
                    Err(e) => return Err(e),
                }
            };
            let data = cm.data.get_or_insert_with(Default::default);
            let stored: u32 = data.get("serial").and_then(|s| s.parse().ok()).unwrap_or(0);
            if data.get("hash") == Some(&hash_s) {
                return Ok(stored);
            }
            let serial = (now.min(u32::MAX as u64) as u32).max(stored.wrapping_add(1));
            data.insert("hash".into(), hash_s.clone());
            data.insert("serial".into(), serial.to_string());
            // replace carries metadata.resourceVersion: a concurrent writer makes this 409
            match self
                .api
                .replace(&self.name, &PostParams::default(), &cm)
                .await
            {
                Ok(_) => return Ok(serial),
                Err(kube::Error::Api(s)) if s.code == 409 => continue,
                Err(e) => return Err(e),
            }
        }
        Err(kube::Error::Service(
            "too many concurrent serial updates".into(),
        ))
    }
}

/// `zonegate serve --zone NAMESPACE/NAME`.
pub async fn serve(mut opts: ServeCluster) -> Result<()> {
    let (zone_ns, zone_name) = opts
        .zone
        .split_once('/')
        .filter(|(a, b)| !a.is_empty() && !b.is_empty())
        .ok_or_else(|| Error::flag("--zone", format!("{}: expected NAMESPACE/NAME", opts.zone)))?;
    let (zone_ns, zone_name) = (zone_ns.to_string(), zone_name.to_string());
    process::install_signal_handlers();
    let client = process::kube_client(opts.kubeconfig.as_deref()).await?;
    let metrics = Arc::new(ServerMetrics::new());
    let health = Arc::new(Health::default());
    let zones: SharedZones = Arc::new(ArcSwap::from_pointee(ZoneSet::default()));
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
    let mut serial = SharedSerial {
        api: Api::namespaced(client.clone(), &zone_ns),
        name: format!("{zone_name}-serial"),
        local: SerialKeeper::new(opts.state_dir.clone()),
        warned: false,
    };

    let (tx, mut rx) = mpsc::unbounded_channel::<FeedMsg>();
    let mut state = ClusterState::new(&zone_ns, &zone_name);
    let mut running: BTreeMap<WatchKey, JoinHandle<()>> = BTreeMap::new();
    let all_kinds: BTreeSet<WatchKind> = crate::api::SourceKind::ALL
        .iter()
        .map(|k| WatchKind::Source(*k))
        .chain([
            WatchKind::Gateway,
            WatchKind::Grant,
            WatchKind::Zone(String::new()),
        ])
        .collect();
    let mut resources: Resources = discover(&client, &all_kinds).await;
    let mut missing_warned: BTreeSet<WatchKey> = BTreeSet::new();
    let mut listening = false;
    let notifier = crate::notifier::Notifier::spawn(metrics.clone());
    let mut dirty = true;
    let mut last_published: Option<u64> = None;
    // the zone from objects to index, incrementally; and what was published last (apex, content
    // hash, serial), to re-check the serial without recompiling
    let mut pipeline = ZonePipeline::default();
    let mut last_data: Option<(String, u64, u32)> = None;
    let mut refused_exported: Vec<String> = Vec::new();
    // logged once when they appear, not on every recompile
    let mut last_refused: BTreeMap<String, String> = BTreeMap::new();
    let mut last_problems: BTreeSet<String> = BTreeSet::new();
    let mut failing_exported: Vec<WatchLabels> = Vec::new();
    let mut discovery_tick = tokio::time::interval(Duration::from_secs(10));
    let mut status_tick = tokio::time::interval(Duration::from_secs(1));
    let mut serial_recheck = tokio::time::interval(Duration::from_secs(5));
    let shutdown = process::shutdown();
    tokio::pin!(shutdown);

    loop {
        // Start and stop watches to match what the zone needs now.
        let desired = state.desired_watches();
        for key in desired.iter() {
            if running.contains_key(key) {
                continue;
            }
            let lookup = match &key.kind {
                WatchKind::Zone(_) => WatchKind::Zone(String::new()),
                k => k.clone(),
            };
            match resources.by_kind.get(&lookup).cloned().flatten() {
                Some(ar) => {
                    tracing::debug!(watch = %key, "starting watch");
                    running.insert(
                        key.clone(),
                        spawn_watch(client.clone(), key.clone(), ar, tx.clone()),
                    );
                    missing_warned.remove(key);
                }
                None => {
                    if missing_warned.insert(key.clone()) {
                        tracing::warn!(watch = %key, "kind not served by the apiserver (CRD not installed?); skipped until it appears");
                    }
                }
            }
        }
        let stale: Vec<WatchKey> = running
            .keys()
            .filter(|k| !desired.contains(k))
            .cloned()
            .collect();
        for key in stale {
            if let Some(h) = running.remove(&key) {
                h.abort();
            }
            state.forget(&key);
            dirty = true;
        }

        let running_keys: BTreeSet<WatchKey> = running.keys().cloned().collect();
        if dirty && state.synced(&running_keys) {
            dirty = false;
            let zone = state
                .zone()
                .cloned()
                .expect("synced implies the zone is known");
            let access = state.access(&zone);
            for ns in refused_exported.drain(..) {
                metrics
                    .namespace_refused
                    .remove(&NamespaceLabels { namespace: ns });
            }
            for (ns, why) in &access.refused {
                metrics
                    .namespace_refused
                    .get_or_create(&NamespaceLabels {
                        namespace: ns.clone(),
                    })
                    .set(1);
                refused_exported.push(ns.clone());
                if last_refused.get(ns) != Some(why) {
                    tracing::warn!(namespace = %ns, "namespace refused: {why}");
                }
            }
            for ns in access.allowed.keys() {
                if last_refused.contains_key(ns) {
                    tracing::info!(namespace = %ns, "namespace now readable (consent given)");
                }
            }
            last_refused = access.refused.clone();
            let store = state.store(&access);
            let copts = CompileOptions {
                namespaces: Some(access.allowed.keys().cloned().collect()),
            };
            let hash = pipeline.compile(&zone, &store, &copts);
            let problems: BTreeSet<String> = pipeline
                .problems()
                .iter()
                .chain(pipeline.transfer_problems())
                .map(|p| p.to_string())
                .collect();
            for p in problems.difference(&last_problems) {
                tracing::warn!(problem = %p, "zone input dropped");
            }
            last_problems = problems;
            if !pipeline.data().origin.is_root() {
                let origin = pipeline.data().origin.to_ascii();
                let now = crate::publish::unix_now();
                let s = if opts.listen.is_empty() {
                    serial.local.serial(&origin, hash, now)
                } else {
                    serial.serial(&origin, hash, now).await
                };
                let z = pipeline.publish(s);
                if let Some(hook) = opts.on_publish.as_mut() {
                    hook(pipeline.data());
                }
                let l = ZoneLabels {
                    zone: origin.clone(),
                };
                metrics
                    .records
                    .get_or_create(&l)
                    .set(z.record_count() as i64);
                metrics.serial.get_or_create(&l).set(s as i64);
                metrics
                    .problems
                    .get_or_create(&l)
                    .set(pipeline.problems().len() as i64);
                metrics.zones.set(1);
                metrics.reloads.inc();
                let records = z.record_count();
                let mut set = ZoneSet::new([z.clone()]);
                if let Some(t) = pipeline.transfer() {
                    set.set_transfer(z.origin(), t.clone());
                }
                if let Some(h) = pipeline.history() {
                    set.set_history(z.origin(), h.clone());
                }
                let set = Arc::new(set);
                zones.store(set.clone());
                if listening {
                    notifier.published(&set);
                }
                last_data = Some((origin.clone(), hash, s));
                if last_published != Some(hash) {
                    tracing::info!(zone = %origin, serial = s, records, "zone published");
                    last_published = Some(hash);
                }
            }
            if !listening {
                for addr in &opts.listen {
                    let bound = server::serve(*addr, zones.clone(), metrics.clone())
                        .await
                        .map_err(|source| Error::Bind {
                            flag: "--listen",
                            addr: *addr,
                            source,
                        })?;
                    tracing::info!(%bound, "serving DNS over UDP and TCP");
                }
                listening = true;
                notifier.published(&zones.load());
                health.ready.store(true, Ordering::Release);
            }
        }

        tokio::select! {
            _ = &mut shutdown => {
                for (_, h) in running { h.abort(); }
                return Ok(());
            }
            msg = rx.recv() => {
                let Some(msg) = msg else { return Err(Error::Stopped("the watch channel")) };
                dirty |= log_and_apply(&mut state, msg);
                // take everything already queued before recompiling once
                let deadline = Instant::now() + Duration::from_millis(2);
                while let Ok(m) = rx.try_recv() {
                    dirty |= log_and_apply(&mut state, m);
                    if Instant::now() > deadline { break; }
                }
            }
            _ = discovery_tick.tick() => {
                if resources.by_kind.values().any(Option::is_none) {
                    let fresh = discover(&client, &all_kinds).await;
                    for (k, v) in &fresh.by_kind {
                        if v.is_some() && resources.by_kind.get(k).is_some_and(Option::is_none) {
                            tracing::info!(kind = %k, "kind now served by the apiserver; watching it");
                        }
                    }
                    resources = fresh;
                }
            }
            _ = status_tick.tick() => {
                for l in failing_exported.drain(..) { metrics.watch_failing.remove(&l); }
                let failing = state.failing();
                let oldest = failing.iter().map(|f| f.2).max().unwrap_or_default();
                for (k, _, _) in &failing {
                    let l = WatchLabels { namespace: k.namespace.clone(), kind: k.kind.to_string() };
                    metrics.watch_failing.get_or_create(&l).set(1);
                    failing_exported.push(l);
                }
                metrics.stale_seconds.set(oldest.as_secs() as i64);
                metrics.objects.set(state.object_count() as i64);
            }
            _ = serial_recheck.tick() => {
                // another server of this zone may have published a newer serial for this content
                // (only while the compiled data is servable: never publish an unservable zone)
                if let Some((origin, hash, current)) = &mut last_data
                    && !pipeline.data().origin.is_root()
                    && !opts.listen.is_empty()
                {
                    let s = serial.serial(origin, *hash, crate::publish::unix_now()).await;
                    if s != *current {
                        *current = s;
                        zones.store(Arc::new(ZoneSet::new([pipeline.publish(s)])));
                        metrics.serial.get_or_create(&ZoneLabels { zone: origin.clone() }).set(s as i64);
                    }
                }
            }
        }
    }
}

fn log_and_apply(state: &mut ClusterState, msg: FeedMsg) -> bool {
    use crate::feed::kube::WatchHealth;
    if let FeedMsg::Health(key, h) = &msg {
        let was_failing = matches!(
            state.health.get(key).map(|x| &x.0),
            Some(WatchHealth::Failing { .. })
        );
        match h {
            WatchHealth::Failing {
                error, forbidden, ..
            } if !was_failing => {
                tracing::warn!(watch = %key, forbidden, error = %error, "watch failing; serving its last known objects and retrying");
            }
            WatchHealth::Synced if was_failing => {
                tracing::info!(watch = %key, "watch recovered and resynced")
            }
            _ => {}
        }
    }
    state.apply(msg)
}
