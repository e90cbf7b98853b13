//! `serve --zone NAMESPACE/NAME`: the engine fed from live Kubernetes objects. The loop here
//! only drives the zone's index (`feed::index::ZoneIndex`): it runs the watches the index asks
//! for, hands it what they see, re-runs discovery while a kind is missing, and publishes.

use crate::dns::ZoneSet;
use crate::dns::server::SharedZones;
use crate::error::{Error, Result};
use crate::feed::index::{FeedMsg, Published, WatchKey, ZoneIndex};
use crate::feed::kube::{ConfigMapSerials, discover, spawn_watch};
use crate::http::{self, Health};
use crate::metrics::ServerMetrics;
use crate::process;
use crate::serial::{SerialKeeper, SharedSerial};
use arc_swap::ArcSwap;
use kube::api::Api;
use std::collections::BTreeMap;
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
    /// DoT, DoH and DoQ listeners and their certificate.
    pub encrypted: crate::dns::hickory::EncryptedArgs,
    /// Query ACL, cookies, identity and rate limiting of every listener.
    pub policy: std::sync::Arc<crate::dns::policy::Policy>,
    /// `--dnssec-keys DIR`: the zone's key Secret as mounted (`key.pem`, maybe `next.pem`),
    /// re-read every [`KEY_CHECK`]. Needed when the zone has `spec.dnssec.enabled`.
    pub dnssec_keys: Option<PathBuf>,
    /// Called with the zone's content each time it is published (`zonegate hosts`). A process
    /// with no `listen` address answers no DNS and takes no part in serial agreement.
    pub on_publish: Option<PublishHook>,
}

/// How often the key directory is read again: the kubelet updates a Secret volume within
/// about a minute of a change, so this adds little to that.
const KEY_CHECK: Duration = Duration::from_secs(10);
/// How often the server checks whether a signed zone's signing generation has ended
/// (`dnssec::sign::needs_resign`: 7 of 14 days left), as `serve --manifests` does. Short, so
/// that the servers of a zone move to the new generation's serial within seconds of each other.
const RESIGN_CHECK: Duration = Duration::from_secs(10);

/// See `ServeCluster::on_publish`.
pub type PublishHook = Box<dyn FnMut(&crate::zone::ZoneData) + Send>;

/// `zonegate serve --zone NAMESPACE/NAME`.
pub async fn serve(mut opts: ServeCluster) -> Result<()> {
    let (zone_ns, zone_name) = opts
        .zone
        .split_once('/')
        .filter(|(a, b)| !a.is_empty() && !b.is_empty())
        .ok_or_else(|| Error::flag("--zone", format!("{}: expected NAMESPACE/NAME", opts.zone)))?;
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
    let mut serials = SharedSerial::new(
        ConfigMapSerials {
            api: Api::namespaced(client.clone(), zone_ns),
            namespace: zone_ns.to_string(),
            name: format!("{zone_name}-serial"),
        },
        SerialKeeper::new(opts.state_dir.clone()),
    );
    let all_kinds = ZoneIndex::all_kinds();
    let resources = discover(&client, &all_kinds).await;
    let mut index = ZoneIndex::new(
        zone_ns,
        zone_name,
        resources,
        metrics.clone(),
        zones.clone(),
    );
    if opts.listen.is_empty() {
        // answers no DNS (`zonegate hosts`): no signing, no key needed
        index.disable_signing();
    } else {
        index.set_key_dir(opts.dnssec_keys.clone());
    }

    let (tx, mut rx) = mpsc::unbounded_channel::<FeedMsg>();
    let mut running: BTreeMap<WatchKey, JoinHandle<()>> = BTreeMap::new();
    let mut listening = false;
    let notifier = crate::notifier::Notifier::spawn(metrics.clone());
    let mut discovery_tick = tokio::time::interval(Duration::from_secs(10));
    let mut status_tick = tokio::time::interval(Duration::from_secs(1));
    let mut serial_recheck = tokio::time::interval(Duration::from_secs(5));
    let mut key_check = tokio::time::interval(KEY_CHECK);
    let mut resign_check = tokio::time::interval(RESIGN_CHECK);
    let shutdown = process::shutdown();
    tokio::pin!(shutdown);

    loop {
        let plan = index.plan_watches();
        for key in plan.stop {
            if let Some(h) = running.remove(&key) {
                h.abort();
            }
        }
        for (key, ar) in plan.start {
            let task = spawn_watch(client.clone(), key.clone(), ar, tx.clone());
            running.insert(key, task);
        }
        // a process that answers no DNS keeps its serials to itself
        let published = if opts.listen.is_empty() {
            index.publish(&mut serials.local).await
        } else {
            index.publish(&mut serials).await
        };
        if let (Published::Zone { .. }, Some(hook)) = (&published, opts.on_publish.as_mut()) {
            hook(index.data());
        }
        if listening && matches!(published, Published::Zone { .. }) {
            notifier.published(&zones.load());
        }
        if !listening && let Some(e) = index.dnssec_refused() {
            // a server of a signed zone never starts answering unsigned
            return Err(Error::Command(e.to_string()));
        }
        if !listening && index.synced_once() {
            super::listeners::start(
                &opts.listen,
                &opts.encrypted,
                &zones,
                &metrics,
                &opts.policy,
            )
            .await?;
            listening = true;
            notifier.published(&zones.load());
            health.ready.store(true, Ordering::Release);
        }

        tokio::select! {
            _ = &mut shutdown => {
                for (_, h) in running { h.abort(); }
                return Ok(());
            }
            msg = rx.recv() => {
                let Some(msg) = msg else { return Err(Error::Stopped("the watch channel")) };
                index.handle(msg);
                // take everything already queued before recompiling once
                let deadline = Instant::now() + Duration::from_millis(2);
                while let Ok(m) = rx.try_recv() {
                    index.handle(m);
                    if Instant::now() > deadline { break; }
                }
            }
            _ = discovery_tick.tick() => {
                if index.needs_discovery() {
                    index.discovered(discover(&client, &all_kinds).await);
                }
            }
            _ = status_tick.tick() => index.export_health(),
            _ = key_check.tick(), if opts.dnssec_keys.is_some() => index.reload_keys(),
            _ = resign_check.tick() => index.refresh_signatures(),
            _ = serial_recheck.tick(), if !opts.listen.is_empty() => {
                if index.recheck_serial(&mut serials).await.is_some() && listening {
                    notifier.published(&zones.load());
                }
            }
        }
    }
}
