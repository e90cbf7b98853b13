//! Why a reconcile failed. Each variant says what failed (which owned kind, the status, another
//! API call, the caches) and gives the `kind` label of
//! `zonegate_operator_reconcile_errors_total` ([`Error::metric_label`]), so the metric never
//! depends on the wording of a message.

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
}
