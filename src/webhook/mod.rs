//! `zonegate webhook`: an ExternalDNS webhook provider (`--provider=webhook`) for one DNSZone.
//! ExternalDNS's sources (Ingress, Service, Istio, Contour, CRDs, ...) decide the records; this
//! provider stores them where a `zonegate serve` answers them: as DNSEndpoint objects in the
//! zone's namespace (`--zone` alone, cluster mode, as ExternalDNS's sidecar) or in one manifest
//! in a directory (`--manifests DIR`, files mode). The domain filter is the zone's domain.

pub mod protocol;
pub mod server;
pub mod store;

use crate::error::{Error, Result};
use clap::Args;
use protocol::ZoneScope;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use store::{ClusterStore, FileStore, Store};

/// Options of `zonegate webhook`.
#[derive(Args, Debug, Clone)]
pub struct WebhookArgs {
    /// The DNSZone whose records this provider keeps, as NAMESPACE/NAME.
    #[arg(long)]
    pub zone: String,
    /// Files mode: keep the records in one DNSEndpoint manifest in this directory (the one a
    /// `zonegate serve --manifests` reads; the DNSZone is read from there too). Without it,
    /// cluster mode: DNSEndpoint objects in the zone's namespace.
    #[arg(long)]
    pub manifests: Option<PathBuf>,
    /// Kubeconfig for cluster mode (default: in-cluster, then KUBECONFIG, then ~/.kube/config).
    #[arg(long, conflicts_with = "manifests")]
    pub kubeconfig: Option<PathBuf>,
    /// Address of the provider API (ExternalDNS's `--webhook-provider-url`). Keep it on
    /// loopback: the API has no authentication (the sidecar pattern).
    #[arg(long, default_value = "127.0.0.1:8888")]
    pub listen: SocketAddr,
    /// A second address answering only `/healthz` (for probes from outside the pod).
    #[arg(long)]
    pub http: Option<SocketAddr>,
    /// Largest request body accepted, in bytes; larger ones get 413 (ExternalDNS's own
    /// `--webhook-provider-max-body-size` default).
    #[arg(long, default_value_t = server::DEFAULT_MAX_BODY)]
    pub max_body_size: usize,
}

fn split_zone(zone: &str) -> Result<(String, String)> {
    zone.split_once('/')
        .filter(|(a, b)| !a.is_empty() && !b.is_empty() && !b.contains('/'))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .ok_or_else(|| format!("--zone {zone}: expected NAMESPACE/NAME").into())
}

/// The zone's domain from a directory of manifests.
fn domain_from_files(dir: &std::path::Path, ns: &str, name: &str) -> Result<String> {
    if !dir.is_dir() {
        return Err(format!("--manifests {}: no such directory", dir.display()).into());
    }
    let loaded = crate::feed::files::ManifestLoader::new(dir).load();
    match loaded.store.zones.get(&(ns.to_string(), name.to_string())) {
        Some(entry) => Ok(entry.zone.spec.domain.clone()),
        None => Err(format!(
            "--zone {ns}/{name}: no such DNSZone in {} ({} DNSZones there)",
            dir.display(),
            loaded.store.zones.len()
        )
        .into()),
    }
}

/// Builds the store and scope the arguments describe.
pub async fn build(args: &WebhookArgs) -> Result<server::Webhook> {
    let (ns, name) = split_zone(&args.zone)?;
    let (domain, store) = match &args.manifests {
        Some(dir) => (
            domain_from_files(dir, &ns, &name)?,
            Store::Files(FileStore::new(dir, &ns, &name)),
        ),
        None => {
            let client = crate::process::kube_client(args.kubeconfig.as_deref()).await?;
            let zones: kube::Api<crate::api::DNSZone> = kube::Api::namespaced(client.clone(), &ns);
            let zone = zones
                .get(&name)
                .await
                .map_err(|e| format!("--zone {ns}/{name}: cannot read the DNSZone: {e}"))?;
            (
                zone.spec.domain.clone(),
                Store::Cluster(Box::new(ClusterStore::new(client, &ns, &name))),
            )
        }
    };
    Ok(server::Webhook::new(
        ZoneScope::new(&domain),
        store,
        args.max_body_size,
    ))
}

/// `zonegate webhook`.
pub async fn run(args: WebhookArgs) -> Result<()> {
    crate::process::install_signal_handlers();
    let hook = Arc::new(build(&args).await?);
    // fail early (and loudly) when the store cannot be read, rather than on ExternalDNS's first call
    let records = hook
        .store
        .load()
        .await
        .map_err(|e| Error::from(e.to_string()))?;
    let (listener, bound) = server::bind(args.listen)
        .await
        .map_err(|source| Error::Bind {
            flag: "--listen",
            addr: args.listen,
            source,
        })?;
    tracing::info!(%bound, zone = %args.zone, domain = %hook.scope.domain, store = %hook.store.describe(), records = records.len(), "ExternalDNS webhook provider listening");
    if let Some(addr) = args.http {
        let (hl, hb) = server::bind(addr).await.map_err(|source| Error::Bind {
            flag: "--http",
            addr,
            source,
        })?;
        tracing::info!(bound = %hb, "serving /healthz");
        tokio::spawn(server::run(hl, hook.clone(), true));
    }
    tokio::select! {
        _ = server::run(listener, hook, false) => Err(Error::Stopped("the webhook server")),
        _ = crate::process::shutdown() => {
            tracing::info!("shutting down");
            Ok(())
        }
    }
}
