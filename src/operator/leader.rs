//! Leader election through a `coordination.k8s.io/v1` Lease (kube-lease-manager): several
//! operator replicas may run; the one holding the Lease reconciles, the others wait. A leader
//! that loses the Lease stops reconciling at once and becomes a candidate again; on shutdown it
//! releases the Lease so a standby takes over without waiting for it to expire.

use super::error::RunError;
use super::metrics::OperatorMetrics;
use futures::future::{BoxFuture, Shared};
use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Where the Lease lives and how long it lasts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseSettings {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    /// Seconds a Lease stays valid after its last renewal.
    pub duration: u64,
    /// Seconds before expiry at which the holder renews.
    pub grace: u64,
}

/// Runs `work` while this replica holds the Lease, until `shutdown`.
pub async fn run_elected<F>(
    client: Client,
    lease: LeaseSettings,
    metrics: Arc<OperatorMetrics>,
    shutdown: Shared<BoxFuture<'static, ()>>,
    work: F,
) -> Result<(), RunError>
where
    F: Fn() -> BoxFuture<'static, Result<(), RunError>>,
{
    if lease.grace == 0 || lease.grace >= lease.duration {
        return Err(RunError::LeaseTiming {
            grace: lease.grace,
            duration: lease.duration,
        });
    }
    let lease_id = format!("{}/{}", lease.namespace, lease.name);
    let manager = LeaseManagerBuilder::new(client, &lease.name)
        .with_namespace(&lease.namespace)
        .with_identity(&lease.identity)
        .with_duration(lease.duration)
        .with_grace(lease.grace)
        .build()
        .await
        .map_err(|source| RunError::Lease {
            lease: lease_id.clone(),
            source,
        })?;
    let (mut leading, handle) = manager.watch().await;
    tracing::info!(lease = %lease_id, identity = %lease.identity, "waiting for the Lease");
    metrics.ready.store(true, Ordering::Release);
    let result = loop {
        tokio::select! {
            _ = shutdown.clone() => break Ok(()),
            r = leading.wait_for(|l| *l) => if r.is_err() {
                break Err(RunError::LeaseWatcher { lease: lease_id.clone() });
            },
        }
        tracing::info!(identity = %lease.identity, "holding the Lease: reconciling");
        metrics.leader.set(1);
        let mut lost = leading.clone();
        let outcome = tokio::select! {
            _ = shutdown.clone() => Some(Ok(())),
            _ = lost.wait_for(|l| !*l) => {
                tracing::warn!("lost the Lease: no longer reconciling");
                None
            }
            r = work() => Some(r),
        };
        metrics.leader.set(0);
        metrics.clear_zones();
        metrics.ready.store(true, Ordering::Release);
        if let Some(r) = outcome {
            break r;
        }
    };
    // Dropping the receiver makes the watcher release the Lease.
    drop(leading);
    match tokio::time::timeout(std::time::Duration::from_secs(5), handle).await {
        Ok(Ok(Ok(_))) => tracing::info!("released the Lease"),
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "releasing the Lease"),
        _ => tracing::warn!("could not release the Lease in time"),
    }
    result
}
