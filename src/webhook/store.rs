//! Where the webhook provider keeps its records: DNSEndpoint objects in the zone's namespace
//! (cluster mode, which `serve --zone` answers), or one DNSEndpoint manifest in a directory
//! (files mode, which `serve --manifests` answers). Both hold the endpoints exactly as
//! ExternalDNS sent them.

use super::protocol::{Endpoint, RecordKey, normal_name};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The label every object the webhook writes carries (with the zone's name as
/// `zonegate.dev/webhook-zone`), and what it lists by.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "zonegate-webhook");
pub const ZONE_LABEL: &str = "zonegate.dev/webhook-zone";
/// On each DNSEndpoint the webhook writes: the DNS name it holds (object names are hashes).
pub const NAME_ANNOTATION: &str = "zonegate.dev/dns-name";
const FIELD_MANAGER: &str = "zonegate-webhook";

pub type Records = BTreeMap<RecordKey, Endpoint>;

/// A storage failure: answered with 500, which ExternalDNS retries next interval.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// The storage backend of one webhook.
pub enum Store {
    Files(FileStore),
    Cluster(Box<ClusterStore>),
}

impl Store {
    pub async fn load(&self) -> Result<Records, StoreError> {
        match self {
            Store::Files(s) => s.load(),
            Store::Cluster(s) => s.load().await,
        }
    }

    /// Replaces the stored records with `records` (`before` is what `load` returned).
    pub async fn save(&self, before: &Records, records: &Records) -> Result<(), StoreError> {
        match self {
            Store::Files(s) => s.save(records),
            Store::Cluster(s) => s.save(before, records).await,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Store::Files(s) => format!("manifest {}", s.path.display()),
            Store::Cluster(s) => format!("DNSEndpoints in namespace {}", s.namespace),
        }
    }
}

fn endpoint_list(records: &Records) -> Vec<&Endpoint> {
    records.values().collect()
}

fn dnsendpoint(
    name: &str,
    namespace: &str,
    zone: &str,
    annotations: serde_json::Value,
    endpoints: &[&Endpoint],
) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "externaldns.k8s.io/v1alpha1",
        "kind": "DNSEndpoint",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {MANAGED_BY.0: MANAGED_BY.1, ZONE_LABEL: zone},
            "annotations": annotations,
        },
        "spec": {"endpoints": endpoints},
    })
}

fn endpoints_of(obj: &serde_json::Value, what: &str) -> Result<Vec<Endpoint>, StoreError> {
    let eps = obj
        .pointer("/spec/endpoints")
        .cloned()
        .unwrap_or(serde_json::Value::Array(Vec::new()));
    serde_json::from_value(eps).map_err(|e| StoreError(format!("{what}: spec.endpoints: {e}")))
}

// ---------------------------------------------------------------- files mode

/// One DNSEndpoint manifest, `zonegate-webhook-<namespace>-<zone>.yaml`, rewritten whole on
/// each change through a temporary file and a rename, so a `serve --manifests` watching the
/// directory never reads half a file.
pub struct FileStore {
    pub path: PathBuf,
    namespace: String,
    zone: String,
}

impl FileStore {
    pub fn new(dir: &Path, namespace: &str, zone: &str) -> Self {
        Self {
            path: dir.join(format!("zonegate-webhook-{namespace}-{zone}.yaml")),
            namespace: namespace.to_string(),
            zone: zone.to_string(),
        }
    }

    fn load(&self) -> Result<Records, StoreError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Records::new()),
            Err(e) => return Err(StoreError(format!("{}: {e}", self.path.display()))),
        };
        let what = self.path.display().to_string();
        let obj: serde_json::Value = serde_norway::from_str(&text)
            .map_err(|e| StoreError(format!("{what}: not a DNSEndpoint manifest: {e}")))?;
        Ok(endpoints_of(&obj, &what)?
            .into_iter()
            .map(|e| (e.key(), e))
            .collect())
    }

    fn save(&self, records: &Records) -> Result<(), StoreError> {
        let obj = dnsendpoint(
            "zonegate-webhook",
            &self.namespace,
            &self.zone,
            serde_json::json!({}),
            &endpoint_list(records),
        );
        let yaml = serde_norway::to_string(&obj).map_err(|e| StoreError(e.to_string()))?;
        let text = format!(
            "# Written by `zonegate webhook` (the ExternalDNS webhook provider) for DNSZone {}/{}.\n\
             # Rewritten on every change: edits by hand are lost.\n{yaml}",
            self.namespace, self.zone
        );
        crate::atomic_file::write(&self.path, text.as_bytes())
            .map_err(|e| StoreError(format!("{}: {e}", self.path.display())))
    }
}

// ---------------------------------------------------------------- cluster mode

/// DNSEndpoints in the zone's namespace, one per DNS name (so no object grows past the
/// apiserver's size limit and a change touches only its names), named
/// `zonegate-webhook-<hash of the name>`, labelled `app.kubernetes.io/managed-by:
/// zonegate-webhook` and `zonegate.dev/webhook-zone: <zone>`. Written with server-side apply.
pub struct ClusterStore {
    api: Api<DynamicObject>,
    namespace: String,
    zone: String,
}

/// The DNSEndpoint kind.
pub fn dnsendpoint_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("externaldns.k8s.io", "v1alpha1", "DNSEndpoint"),
        "dnsendpoints",
    )
}

/// The object name holding DNS name `name`: FNV-1a 64 of its normal form, stable across
/// versions and platforms.
pub fn object_name(name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in normal_name(name).bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("zonegate-webhook-{h:016x}")
}

impl ClusterStore {
    pub fn new(client: kube::Client, namespace: &str, zone: &str) -> Self {
        Self {
            api: Api::namespaced_with(client, namespace, &dnsendpoint_resource()),
            namespace: namespace.to_string(),
            zone: zone.to_string(),
        }
    }

    fn selector(&self) -> String {
        format!(
            "{}={},{ZONE_LABEL}={}",
            MANAGED_BY.0, MANAGED_BY.1, self.zone
        )
    }

    async fn load(&self) -> Result<Records, StoreError> {
        let list = self
            .api
            .list(&ListParams::default().labels(&self.selector()))
            .await
            .map_err(|e| {
                StoreError(format!(
                    "listing DNSEndpoints in namespace {}: {e}",
                    self.namespace
                ))
            })?;
        let mut records = Records::new();
        for obj in list.items {
            let what = format!(
                "DNSEndpoint {}/{}",
                self.namespace,
                obj.metadata.name.as_deref().unwrap_or("")
            );
            for e in endpoints_of(&obj.data, &what)? {
                records.insert(e.key(), e);
            }
        }
        Ok(records)
    }

    async fn save(&self, before: &Records, records: &Records) -> Result<(), StoreError> {
        let group = |r: &Records| {
            let mut by: BTreeMap<String, Vec<Endpoint>> = BTreeMap::new();
            for e in r.values() {
                by.entry(object_name(&e.dns_name))
                    .or_default()
                    .push(e.clone());
            }
            by
        };
        let (old, new) = (group(before), group(records));
        for (name, eps) in &new {
            if old.get(name) == Some(eps) {
                continue;
            }
            let refs: Vec<&Endpoint> = eps.iter().collect();
            let obj = dnsendpoint(
                name,
                &self.namespace,
                &self.zone,
                serde_json::json!({NAME_ANNOTATION: normal_name(&eps[0].dns_name)}),
                &refs,
            );
            self.api
                .patch(
                    name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(obj),
                )
                .await
                .map_err(|e| {
                    StoreError(format!(
                        "applying DNSEndpoint {}/{name}: {e}",
                        self.namespace
                    ))
                })?;
        }
        for name in old.keys().filter(|n| !new.contains_key(*n)) {
            match self.api.delete(name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => {
                    return Err(StoreError(format!(
                        "deleting DNSEndpoint {}/{name}: {e}",
                        self.namespace
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn object_names_are_stable_and_case_blind() {
        assert_eq!(
            object_name("WWW.acme.example.com."),
            object_name("www.acme.example.com")
        );
        assert_ne!(
            object_name("www.acme.example.com"),
            object_name("a-www.acme.example.com")
        );
        // pinned (FNV-1a 64, checked with an independent implementation): changing the hash
        // would orphan every stored object
        assert_eq!(
            object_name("www.acme.example.com"),
            "zonegate-webhook-e43765d98e585177"
        );
    }

    #[test]
    fn file_store_round_trips_and_writes_atomically() {
        let dir = std::env::temp_dir().join(format!("zg-webhook-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let s = FileStore::new(&dir, "acme", "zone");
        assert!(s.load().unwrap().is_empty());
        let heritage =
            "\"heritage=external-dns,external-dns/owner=o,external-dns/resource=ingress/acme/web\"";
        let eps: Vec<Endpoint> = serde_json::from_value(json!([
            {"dnsName":"a-web.acme.example.com","recordType":"TXT","targets":[heritage],"labels":{"ownedRecord":"web.acme.example.com"}},
            {"dnsName":"web.acme.example.com","recordType":"A","targets":["192.0.2.1","192.0.2.2"],"recordTTL":30,
             "providerSpecific":[{"name":"webhook/x","value":"y: z"}]},
        ]))
        .unwrap();
        let records: Records = eps.iter().map(|e| (e.key(), e.clone())).collect();
        s.save(&records).unwrap();
        assert_eq!(s.load().unwrap(), records);
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["zonegate-webhook-acme-zone.yaml"]);
        // what `serve --manifests` reads: a DNSEndpoint in the zone's namespace
        let text = std::fs::read_to_string(&s.path).unwrap();
        let obj: serde_json::Value = serde_norway::from_str(&text).unwrap();
        assert_eq!(obj["kind"], "DNSEndpoint");
        assert_eq!(obj["metadata"]["namespace"], "acme");
        assert_eq!(obj["spec"]["endpoints"][0]["targets"][0], heritage);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn file_store_refuses_to_overwrite_what_it_cannot_read() {
        let dir = std::env::temp_dir().join(format!("zg-webhook-bad-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let s = FileStore::new(&dir, "acme", "zone");
        std::fs::write(&s.path, "spec: {endpoints: 7}\n").unwrap();
        let e = s.load().unwrap_err().to_string();
        assert!(
            e.contains("zonegate-webhook-acme-zone.yaml: spec.endpoints"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
