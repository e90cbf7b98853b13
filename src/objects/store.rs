//! The object store: every DNSZone and source object currently known, from either feed.

use super::{ObjectKey, SourceObject};
use crate::api::DNSZone;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A DNSZone with where it came from.
#[derive(Clone, Debug)]
pub struct ZoneEntry {
    pub zone: Arc<DNSZone>,
    /// `file.yaml#3` or `apiserver`.
    pub origin: String,
}

/// All known objects. Cheap to clone (values are shared).
#[derive(Clone, Debug, Default)]
pub struct ObjectStore {
    /// DNSZones by (namespace, name).
    pub zones: BTreeMap<(String, String), ZoneEntry>,
    /// Source objects (and Gateways) by key.
    pub objects: BTreeMap<ObjectKey, Arc<SourceObject>>,
    /// Secrets by (namespace, name): only those a zone names (TSIG keys), in files mode any
    /// Secret in the tree.
    pub secrets: BTreeMap<(String, String), Arc<super::secret::Secret>>,
    /// Secrets a zone names that the feed could not read, with why (cluster mode: a forbidden
    /// or failing watch that never listed). Absent from `secrets`.
    pub unreadable_secrets: BTreeMap<(String, String), String>,
}

impl ObjectStore {
    pub fn insert_object(&mut self, obj: SourceObject) {
        self.objects.insert(obj.key(), Arc::new(obj));
    }

    /// A Gateway by namespace and name.
    pub fn gateway(&self, namespace: &str, name: &str) -> Option<&super::Gateway> {
        let key = ObjectKey {
            kind: "Gateway",
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        match self.objects.get(&key).map(|o| o.as_ref()) {
            Some(SourceObject::Gateway(g)) => Some(g),
            _ => None,
        }
    }
}
