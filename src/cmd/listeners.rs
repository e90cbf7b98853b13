//! Starting every DNS listener of `serve` (both modes): UDP and TCP on each `--listen`
//! address, then the encrypted ones, all under the same policy and zones.

use crate::dns::hickory::EncryptedArgs;
use crate::dns::policy::Policy;
use crate::dns::server::{self, SharedZones};
use crate::error::{Error, Result};
use crate::metrics::ServerMetrics;
use std::net::SocketAddr;
use std::sync::Arc;

/// Binds and serves every listener; fails with the flag and address that could not bind.
pub async fn start(
    listen: &[SocketAddr],
    encrypted: &EncryptedArgs,
    zones: &SharedZones,
    metrics: &Arc<ServerMetrics>,
    policy: &Arc<Policy>,
) -> Result<()> {
    for addr in listen {
        let bound = server::serve(*addr, zones.clone(), metrics.clone(), policy.clone())
            .await
            .map_err(|source| Error::Bind {
                flag: "--listen",
                addr: *addr,
                source,
            })?;
        tracing::info!(%bound, "serving DNS over UDP and TCP");
    }
    for (transport, bound) in
        crate::dns::hickory::start(encrypted, zones.clone(), metrics.clone(), policy.clone())
            .await?
    {
        tracing::info!(%bound, transport, "serving encrypted DNS");
    }
    Ok(())
}
