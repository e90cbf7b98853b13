//! The writer: the only place the operator changes owned objects. `ensure` applies an object with
//! server-side apply unless it is converged, `create_once` creates a Secret whose contents are made
//! once and never rewritten, `delete` removes one. Converged objects cost no
//! request: the memo remembers (hash, resourceVersion) of what this process last applied, so an
//! object still at that version is not even compared, and [`apply_reason`] decides for the rest.

use super::FIELD_MANAGER;
use super::apply::apply_reason;
use super::desired::{DesiredObject, OwnedKind};
use super::error::Error;
use super::metrics::OperatorMetrics;
use super::stores::ObjectId;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Writes owned objects and remembers what it wrote.
pub struct Writer {
    client: Client,
    metrics: Arc<OperatorMetrics>,
    /// (hash, resourceVersion) of what this process last applied, per object: an object still
    /// at that version needs no look for drift.
    applied: Mutex<HashMap<ObjectId, (String, String)>>,
}

impl Writer {
    pub fn new(client: Client, metrics: Arc<OperatorMetrics>) -> Self {
        Self {
            client,
            metrics,
            applied: Mutex::new(HashMap::new()),
        }
    }

    pub fn api(&self, kind: OwnedKind, ns: Option<&str>) -> Api<DynamicObject> {
        let ar = api_resource(kind);
        match ns {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &ar),
            None => Api::all_with(self.client.clone(), &ar),
        }
    }

    /// Applies `obj` unless the live object already is as desired. Returns whether it wrote.
    pub async fn ensure(
        &self,
        obj: &DesiredObject,
        live: Option<(Value, String)>,
    ) -> Result<bool, Error> {
        let id: ObjectId = (obj.kind, obj.namespace.clone(), obj.name.clone());
        if let Some((_, rv)) = &live {
            let applied = self.applied.lock().expect("applied lock");
            if applied.get(&id) == Some(&(obj.hash.clone(), rv.clone())) {
                return Ok(false);
            }
        }
        let Some(reason) = apply_reason(live.as_ref().map(|(v, _)| v), &obj.body, &obj.hash) else {
            if let Some((_, rv)) = live {
                self.applied
                    .lock()
                    .expect("applied lock")
                    .insert(id, (obj.hash.clone(), rv));
            }
            return Ok(false);
        };
        let api = self.api(obj.kind, obj.namespace.as_deref());
        let stored = match api
            .patch(
                &obj.name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&obj.body),
            )
            .await
        {
            Ok(o) => o,
            Err(e) if namespace_terminating(&e) => {
                // The namespace (the zone's, or one it reads) is going away with everything in it.
                tracing::debug!(object = %obj.describe(), "namespace terminating; not applied");
                return Ok(false);
            }
            Err(source) => {
                return Err(Error::Apply {
                    kind: obj.kind,
                    object: obj.describe(),
                    source,
                });
            }
        };
        self.metrics.write(obj.kind.kind(), "apply");
        tracing::info!(object = %obj.describe(), reason, "applied");
        self.applied.lock().expect("applied lock").insert(
            id,
            (
                obj.hash.clone(),
                stored.resource_version().unwrap_or_default(),
            ),
        );
        Ok(true)
    }

    /// Creates a created-once Secret (`obj.seed` set) when it is missing, with fresh contents;
    /// an existing one is never written, whatever it holds (so its secret is never rotated by
    /// the operator). `AlreadyExists` (a cache that has not seen the Secret yet) is fine.
    /// Returns the object it created (as the apiserver stored it), if it did.
    pub async fn create_once(
        &self,
        obj: &DesiredObject,
        live: Option<(Value, String)>,
    ) -> Result<Option<DynamicObject>, Error> {
        let Some(seed) = obj.seed else {
            self.ensure(obj, live).await?;
            return Ok(None);
        };
        if live.is_some() {
            return Ok(None);
        }
        let mut body = obj.body.clone();
        body["data"] = Value::Object(seed.data());
        let body: DynamicObject = serde_json::from_value(body).expect("a Kubernetes object");
        let api = self.api(obj.kind, obj.namespace.as_deref());
        match api
            .create(
                &PostParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..PostParams::default()
                },
                &body,
            )
            .await
        {
            Ok(created) => {
                self.metrics.write(obj.kind.kind(), "create");
                tracing::info!(object = %obj.describe(), "created");
                Ok(Some(created))
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(None),
            Err(e) if namespace_terminating(&e) => Ok(None),
            Err(source) => Err(Error::Apply {
                kind: obj.kind,
                object: obj.describe(),
                source,
            }),
        }
    }

    /// Rewrites entries of a created-once Secret with a JSON merge patch (`data`: key ->
    /// base64 text, or null to remove it): the one write such a Secret gets after its
    /// creation, a step of a DNSSEC key rollover (`rollover.rs`).
    pub async fn patch_secret_data(
        &self,
        ns: &str,
        name: &str,
        data: serde_json::Map<String, Value>,
    ) -> Result<(), Error> {
        let api = self.api(OwnedKind::Secret, Some(ns));
        api.patch(
            name,
            &PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..PatchParams::default()
            },
            &Patch::Merge(serde_json::json!({ "data": data })),
        )
        .await
        .map_err(|source| Error::Apply {
            kind: OwnedKind::Secret,
            object: format!("Secret {ns}/{name}"),
            source,
        })?;
        self.metrics.write("Secret", "patch");
        tracing::info!(object = %format!("Secret {ns}/{name}"), "patched for a DNSSEC key rollover");
        Ok(())
    }

    /// Deletes an object (gone already is fine) and forgets it.
    pub async fn delete(&self, kind: OwnedKind, ns: Option<&str>, name: &str) -> Result<(), Error> {
        let what = match ns {
            Some(ns) => format!("{} {ns}/{name}", kind.kind()),
            None => format!("{} {name}", kind.kind()),
        };
        match self
            .api(kind, ns)
            .delete(name, &DeleteParams::background())
            .await
        {
            Ok(_) => {
                self.metrics.write(kind.kind(), "delete");
                tracing::info!(object = %what, "deleted");
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(source) => {
                return Err(Error::Delete {
                    kind,
                    object: what,
                    source,
                });
            }
        }
        self.applied.lock().expect("applied lock").remove(&(
            kind,
            ns.map(str::to_string),
            name.to_string(),
        ));
        Ok(())
    }

    /// Forgets what was applied to objects for which `gone` says so (the garbage collector's
    /// deletions, which this process does not see as its own).
    pub fn forget(&self, gone: impl Fn(&ObjectId) -> bool) {
        self.applied
            .lock()
            .expect("applied lock")
            .retain(|id, _| !gone(id));
    }
}

/// A create refused because the namespace is being deleted, or is gone.
pub fn namespace_terminating(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => match (s.code, &s.details) {
            (403, Some(d)) => d.causes.iter().any(|c| c.reason == "NamespaceTerminating"),
            (404, Some(d)) => d.kind == "namespaces",
            _ => false,
        },
        _ => false,
    }
}

fn api_resource(kind: OwnedKind) -> ApiResource {
    let (group, version) = match kind.api_version().split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", kind.api_version()),
    };
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, kind.kind()),
        kind.plural(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn terminating_namespace_refusals_are_recognised() {
        let status: kube::core::Status = serde_json::from_value(json!({
            "status": "Failure", "code": 403, "reason": "Forbidden",
            "message": "unable to create new content in namespace x because it is being terminated",
            "details": {"causes": [{"reason": "NamespaceTerminating", "message": "namespace x is being terminated", "field": "metadata.namespace"}]}
        }))
        .unwrap();
        assert!(namespace_terminating(&kube::Error::Api(Box::new(
            status.clone()
        ))));
        let mut other = status;
        other.details = None;
        assert!(!namespace_terminating(&kube::Error::Api(Box::new(other))));
        let gone: kube::core::Status = serde_json::from_value(json!({
            "status": "Failure", "code": 404, "reason": "NotFound", "message": "namespaces \"x\" not found",
            "details": {"name": "x", "kind": "namespaces"}
        }))
        .unwrap();
        assert!(namespace_terminating(&kube::Error::Api(Box::new(
            gone.clone()
        ))));
        let mut svc = gone;
        svc.details.as_mut().unwrap().kind = "services".into();
        assert!(!namespace_terminating(&kube::Error::Api(Box::new(svc))));
    }

    #[test]
    fn api_resources_of_owned_kinds() {
        let ar = api_resource(OwnedKind::Deployment);
        assert_eq!(
            (ar.group.as_str(), ar.version.as_str(), ar.plural.as_str()),
            ("apps", "v1", "deployments")
        );
        let ar = api_resource(OwnedKind::Service);
        assert_eq!((ar.group.as_str(), ar.api_version.as_str()), ("", "v1"));
        let ar = api_resource(OwnedKind::ClusterRoleBinding);
        assert_eq!(ar.api_version, "rbac.authorization.k8s.io/v1");
    }
}
