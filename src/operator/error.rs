//! Why a reconcile failed, and why the operator stopped. Each [`Error`] variant says what failed
//! (which owned kind, the status, another API call, the caches) and gives the `kind` label of
//! `zonegate_operator_reconcile_errors_total` ([`Error::metric_label`]), so the metric never
//! depends on the wording of a message. [`RunError`] is what ends [`run`](super::run()) (the
//! HTTP endpoint, the Lease, the controller), reported by `zonegate operator` as it exits.

use super::ZoneKey;
use super::desired::OwnedKind;

/// A reconcile failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A server-side apply of an owned object was refused.
    #[error("applying {object}: {source}")]
    Apply {
        kind: OwnedKind,
        /// `Kind namespace/name`.
        object: String,
        #[source]
        source: kube::Error,
    },
    /// Deleting an owned object that is no longer wanted failed.
    #[error("deleting {object}: {source}")]
    Delete {
        kind: OwnedKind,
        object: String,
        #[source]
        source: kube::Error,
    },
    /// The status patch of the DNSZone failed.
    #[error("writing the status of DNSZone {zone}: {source}")]
    Status {
        zone: ZoneKey,
        #[source]
        source: kube::Error,
    },
    /// Any other API call (reading an object).
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
    /// The watch caches have not listed everything yet.
    #[error("the watch caches are not synced yet: {0}")]
    NotSynced(String),
    /// The reconcile did not finish in time (an API call that never answered) and was
    /// abandoned, to be retried.
    #[error("the reconcile took longer than {0:?} and was abandoned")]
    Timeout(std::time::Duration),
}

impl Error {
    /// The `kind` label of the error counter.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Apply { .. } => "apply",
            Error::Delete { .. } => "delete",
            Error::Status { .. } => "status",
            Error::Api { .. } => "api",
            Error::NotSynced(_) => "cache",
            Error::Timeout(_) => "timeout",
        }
    }

    /// The owned kind whose write failed, if a write of an owned object failed.
    pub fn owned_kind(&self) -> Option<OwnedKind> {
        match self {
            Error::Apply { kind, .. } | Error::Delete { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}

/// Why the operator's run loop ([`run`](super::run())) stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// `/metrics`, `/healthz` and `/readyz` cannot be served (the address of `--http`).
    #[error(transparent)]
    Http(Box<crate::error::Error>),
    /// The Lease timings cannot work (`--lease-grace`, `--lease-duration`).
    #[error(
        "--lease-grace ({grace}) must be more than 0 and less than --lease-duration ({duration})"
    )]
    LeaseTiming { grace: u64, duration: u64 },
    /// The Lease cannot be read or created (permissions, a missing namespace, the API).
    #[error("cannot use the Lease {lease}: {source}")]
    Lease {
        /// `namespace/name`.
        lease: String,
        #[source]
        source: kube_lease_manager::LeaseManagerError,
    },
    /// The task that holds and renews the Lease ended.
    #[error("the watcher of the Lease {lease} stopped")]
    LeaseWatcher { lease: String },
    /// The controller or the sweeper ended (their streams never end while the watches run).
    #[error("the controller stopped")]
    ControllerStopped,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(
            serde_json::from_value(serde_json::json!({
                "status": "Failure", "code": code, "reason": "Invalid", "message": "no"
            }))
            .unwrap(),
        ))
    }

    #[test]
    fn labels_come_from_the_variant_not_the_message() {
        let e = Error::Apply {
            kind: OwnedKind::Service,
            // a message that would have fooled a prefix match
            object: "deleting Service acme/web-ns1".into(),
            source: api_error(422),
        };
        assert_eq!(e.metric_label(), "apply");
        assert_eq!(e.owned_kind(), Some(OwnedKind::Service));
        assert!(e.to_string().starts_with("applying deleting Service"));
        let e = Error::Delete {
            kind: OwnedKind::Role,
            object: "Role shop/web-dns.acme".into(),
            source: api_error(500),
        };
        assert_eq!(e.metric_label(), "delete");
        let e = Error::Status {
            zone: ZoneKey::new("acme", "web"),
            source: api_error(409),
        };
        assert_eq!(e.metric_label(), "status");
        assert_eq!(e.owned_kind(), None);
        assert!(
            e.to_string()
                .starts_with("writing the status of DNSZone acme/web: ")
        );
        let e = Error::Api {
            what: "writing the status of ClusterRole x".into(),
            source: api_error(500),
        };
        assert_eq!(e.metric_label(), "api");
        assert_eq!(Error::NotSynced("x".into()).metric_label(), "cache");
    }

    #[test]
    fn run_errors_name_what_failed() {
        let e = RunError::LeaseTiming {
            grace: 5,
            duration: 5,
        };
        assert_eq!(
            e.to_string(),
            "--lease-grace (5) must be more than 0 and less than --lease-duration (5)"
        );
        let e = RunError::Lease {
            lease: "ops/zonegate-operator".into(),
            source: kube_lease_manager::LeaseManagerError::NonexistentLease("x".into()),
        };
        assert!(
            e.to_string()
                .starts_with("cannot use the Lease ops/zonegate-operator: "),
            "{e}"
        );
        let e = RunError::Http(Box::new(crate::error::Error::Bind {
            flag: "--http",
            addr: "127.0.0.1:1".parse().unwrap(),
            source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
        }));
        assert!(e.to_string().starts_with("--http 127.0.0.1:1: "), "{e}");
        // what `zonegate operator` prints: the same words
        let e = crate::error::Error::from(RunError::ControllerStopped);
        assert_eq!(e.to_string(), "the controller stopped");
        assert_eq!(e.exit_code(), 1);
        let e = crate::error::Error::from(RunError::LeaseTiming {
            grace: 0,
            duration: 15,
        });
        assert_eq!(e.exit_code(), 2, "a flag error");
    }
}
