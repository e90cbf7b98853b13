//! The cluster feed's apiserver side: discovery of the kinds served, one watch task per
//! `WatchKey` sending what it sees to the zone's index (`feed::index`), and the serial
//! ConfigMap. Which watches run, and what their objects mean, is the index's business.
//!
//! - Discovery finds each kind's preferred served group/version; a kind whose CRD is missing
//!   is reported missing (the driver asks again every 10 s).
//! - Watches retry with backoff ([`WatchBackoff`]) and report their health; a completed
//!   (re-)list is sent as one `FeedMsg::Reset`, so the index replaces that watch's objects in
//!   one step.

use crate::api::{DNSZone, DNSZoneGrantSpec, SourceKind};
use crate::feed::index::{FeedMsg, Item, Resources, WatchHealth, WatchKey, WatchKind};
use crate::objects::SourceObject;
use crate::serial::{Record, SerialStore, Served, StoreError, Stored};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Candidate group/versions for each kind, preferred first.
fn candidates(
    kind: &WatchKind,
) -> &'static [(&'static str, &'static str, &'static str, &'static str)] {
    // (group, version, kind, plural)
    match kind {
        WatchKind::Source(SourceKind::Ingress) => {
            &[("networking.k8s.io", "v1", "Ingress", "ingresses")]
        }
        WatchKind::Source(SourceKind::Service) => &[("", "v1", "Service", "services")],
        WatchKind::Source(SourceKind::HTTPRoute) => &[
            ("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes"),
            (
                "gateway.networking.k8s.io",
                "v1beta1",
                "HTTPRoute",
                "httproutes",
            ),
        ],
        WatchKind::Source(SourceKind::GRPCRoute) => {
            &[("gateway.networking.k8s.io", "v1", "GRPCRoute", "grpcroutes")]
        }
        WatchKind::Source(SourceKind::TLSRoute) => &[
            ("gateway.networking.k8s.io", "v1", "TLSRoute", "tlsroutes"),
            (
                "gateway.networking.k8s.io",
                "v1alpha3",
                "TLSRoute",
                "tlsroutes",
            ),
            (
                "gateway.networking.k8s.io",
                "v1alpha2",
                "TLSRoute",
                "tlsroutes",
            ),
        ],
        WatchKind::Source(SourceKind::DNSEndpoint) => &[(
            "externaldns.k8s.io",
            "v1alpha1",
            "DNSEndpoint",
            "dnsendpoints",
        )],
        WatchKind::Source(SourceKind::VirtualServer) => {
            &[("k8s.nginx.org", "v1", "VirtualServer", "virtualservers")]
        }
        WatchKind::Gateway => &[
            ("gateway.networking.k8s.io", "v1", "Gateway", "gateways"),
            (
                "gateway.networking.k8s.io",
                "v1beta1",
                "Gateway",
                "gateways",
            ),
        ],
        WatchKind::Grant => &[("zonegate.dev", "v1alpha1", "DNSZoneGrant", "dnszonegrants")],
        WatchKind::Zone(_) => &[("zonegate.dev", "v1alpha1", "DNSZone", "dnszones")],
        WatchKind::Secret(_) => &[("", "v1", "Secret", "secrets")],
    }
}

/// Finds which kinds the apiserver serves. Kinds of unreachable groups are reported missing.
pub async fn discover(client: &Client, kinds: &BTreeSet<WatchKind>) -> Resources {
    let mut lists: BTreeMap<String, Option<Vec<String>>> = BTreeMap::new();
    let mut out = Resources::default();
    for kind in kinds {
        let mut found = None;
        for (group, version, k, plural) in candidates(kind) {
            let gv = if group.is_empty() {
                version.to_string()
            } else {
                format!("{group}/{version}")
            };
            if !lists.contains_key(&gv) {
                let res = if group.is_empty() {
                    client.list_core_api_resources(version).await
                } else {
                    client.list_api_group_resources(&gv).await
                };
                lists.insert(
                    gv.clone(),
                    res.ok()
                        .map(|l| l.resources.into_iter().map(|r| r.name).collect()),
                );
            }
            if lists[&gv]
                .as_ref()
                .is_some_and(|names| names.iter().any(|n| n == plural))
            {
                let gvk = GroupVersionKind::gvk(group, version, k);
                found = Some(ApiResource::from_gvk_with_plural(&gvk, plural));
                break;
            }
        }
        out.by_kind.insert(kind.clone(), found);
    }
    out
}

/// Converts a watched object into the feed's form.
/// List items may come without apiVersion/kind: the watch's resource says what they are.
fn convert(
    kind: &WatchKind,
    ar: &ApiResource,
    obj: DynamicObject,
) -> Result<(String, Item), String> {
    let name = obj.metadata.name.clone().unwrap_or_default();
    let (api_version, k) = (ar.api_version.clone(), ar.kind.clone());
    let value = serde_json::to_value(&obj).map_err(|e| e.to_string())?;
    let item = match kind {
        WatchKind::Zone(_) => Item::Zone(Arc::new(
            serde_json::from_value::<DNSZone>(value).map_err(|e| format!("DNSZone {name}: {e}"))?,
        )),
        WatchKind::Grant => {
            let spec = value.get("spec").cloned().unwrap_or_default();
            Item::Grant(Arc::new(
                serde_json::from_value::<DNSZoneGrantSpec>(spec)
                    .map_err(|e| format!("DNSZoneGrant {name}: spec: {e}"))?,
            ))
        }
        WatchKind::Secret(_) => Item::Secret(Arc::new(
            crate::objects::secret::Secret::from_value(value)
                .map_err(|e| format!("Secret {name}: {e}"))?,
        )),
        WatchKind::Source(_) | WatchKind::Gateway => {
            match SourceObject::from_value(&api_version, &k, value) {
                Ok(Some(o)) => Item::Source(Arc::new(o)),
                Ok(None) => return Err(format!("{k} {name}: unexpected kind {api_version}")),
                Err(e) => return Err(format!("{k} {name}: {e}")),
            }
        }
    };
    Ok((name, item))
}

/// Retry delays of a failing watch: 250 ms doubling up to 4 s, back to 250 ms after a success.
/// Short on purpose: a DNS server should catch up within seconds of the apiserver's return
/// (kube's default grows to 30 s), and a few list calls per failing watch are cheap.
#[derive(Debug, Clone, Copy)]
pub struct WatchBackoff {
    next: Duration,
}

impl Default for WatchBackoff {
    fn default() -> Self {
        Self {
            next: Duration::from_millis(250),
        }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let d = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(4));
        Some(d)
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    fn reset(&mut self) {
        *self = Self::default();
    }
}

/// Runs one watch until aborted, sending what it sees to the feed.
pub fn spawn_watch(
    client: Client,
    key: WatchKey,
    ar: ApiResource,
    tx: mpsc::UnboundedSender<FeedMsg>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<DynamicObject> = Api::namespaced_with(client, &key.namespace, &ar);
        let mut config = watcher::Config::default();
        // single-object watches: RBAC `resourceNames` authorizes a list/watch only when it
        // selects that one name
        if let WatchKind::Zone(name) | WatchKind::Secret(name) = &key.kind {
            config = config.fields(&format!("metadata.name={name}"));
        }
        let mut stream = watcher(api, config)
            .backoff(WatchBackoff::default())
            .boxed();
        let mut buffer: Option<BTreeMap<String, Item>> = None;
        let mut synced = false;
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(watcher::Event::Init) => buffer = Some(BTreeMap::new()),
                Ok(watcher::Event::InitApply(obj)) => match convert(&key.kind, &ar, obj) {
                    Ok((name, item)) => {
                        buffer.get_or_insert_with(BTreeMap::new).insert(name, item);
                    }
                    Err(e) => tracing::warn!(watch = %key, error = %e, "object skipped"),
                },
                Ok(watcher::Event::InitDone) => {
                    let objects = buffer.take().unwrap_or_default();
                    synced = true;
                    let _ = tx.send(FeedMsg::Reset(key.clone(), objects));
                    let _ = tx.send(FeedMsg::Health(key.clone(), WatchHealth::Synced));
                }
                Ok(watcher::Event::Apply(obj)) => match convert(&key.kind, &ar, obj) {
                    Ok((name, item)) => {
                        let _ = tx.send(FeedMsg::Apply(key.clone(), name, item));
                    }
                    Err(e) => {
                        tracing::warn!(watch = %key, error = %e, "object skipped; its last good version is kept")
                    }
                },
                Ok(watcher::Event::Delete(obj)) => {
                    let _ = tx.send(FeedMsg::Delete(
                        key.clone(),
                        obj.metadata.name.unwrap_or_default(),
                    ));
                }
                Err(e) => {
                    let forbidden = matches!(&e,
                        watcher::Error::InitialListFailed(kube::Error::Api(s)) | watcher::Error::WatchStartFailed(kube::Error::Api(s)) | watcher::Error::WatchFailed(kube::Error::Api(s))
                        if s.code == 403);
                    let _ = tx.send(FeedMsg::Health(
                        key.clone(),
                        WatchHealth::Failing {
                            error: e.to_string(),
                            forbidden,
                            synced,
                        },
                    ));
                }
            }
        }
    })
}

/// The serial record of a zone's servers: the ConfigMap `<zone>-serial` in the zone's
/// namespace, with `data.hash` and `data.serial` (see `serial::SharedSerial`), and what was first
/// served with that serial: `data.records` (record count, SOA included), `data.lastServed` (RFC
/// 3339, when the first server published it) and `data.servedSerial` (the serial those two
/// describe). The operator copies them into the DNSZone's status ([`served_of`]). A replace
/// carries the `resourceVersion` read, so a concurrent writer makes it fail with 409.
pub struct ConfigMapSerials {
    pub api: Api<ConfigMap>,
    pub namespace: String,
    pub name: String,
}

fn store_error(e: kube::Error) -> StoreError {
    match e {
        kube::Error::Api(s) if s.code == 409 => StoreError::Conflict,
        e => StoreError::Unavailable(e.to_string()),
    }
}

/// The serial of a serial ConfigMap's data (0 if absent or not a number).
pub fn serial_of(data: &BTreeMap<String, String>) -> u32 {
    data.get("serial").and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// What a serial ConfigMap's data says was first served with its serial; `None` when a field is
/// missing or describes another serial (a server that does not write these replaced it).
pub fn served_of(data: &BTreeMap<String, String>) -> Option<Served> {
    let serial = serial_of(data);
    let served: u32 = data.get("servedSerial")?.parse().ok()?;
    let records = data.get("records")?.parse().ok()?;
    let since: k8s_openapi::jiff::Timestamp = data.get("lastServed")?.parse().ok()?;
    (served == serial && serial != 0).then_some(Served {
        serial,
        records,
        since: u64::try_from(since.as_second()).ok()?,
    })
}

fn write_record(data: &mut BTreeMap<String, String>, r: &Record) {
    data.insert("hash".into(), r.hash.clone());
    data.insert("serial".into(), r.serial.to_string());
    data.insert("servedSerial".into(), r.served.serial.to_string());
    data.insert("records".into(), r.served.records.to_string());
    let since = i64::try_from(r.served.since)
        .ok()
        .and_then(|s| k8s_openapi::jiff::Timestamp::from_second(s).ok())
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
    data.insert("lastServed".into(), since.to_string());
}

impl SerialStore for ConfigMapSerials {
    type Version = ConfigMap;

    async fn read(&self) -> Result<Option<Stored<ConfigMap>>, StoreError> {
        let cm = self.api.get_opt(&self.name).await.map_err(store_error)?;
        Ok(cm.map(|cm| {
            let empty = BTreeMap::new();
            let data = cm.data.as_ref().unwrap_or(&empty);
            Stored {
                hash: data.get("hash").cloned(),
                serial: serial_of(data),
                served: served_of(data),
                version: cm,
            }
        }))
    }

    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        let mut data = BTreeMap::new();
        write_record(&mut data, record);
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": self.name, "labels": {"app.kubernetes.io/managed-by": "zonegate"}},
            "data": data,
        }))
        .expect("valid ConfigMap");
        self.api
            .create(&PostParams::default(), &cm)
            .await
            .map(drop)
            .map_err(store_error)
    }

    async fn replace(&self, mut cm: ConfigMap, record: &Record) -> Result<(), StoreError> {
        write_record(cm.data.get_or_insert_with(Default::default), record);
        self.api
            .replace(&self.name, &PostParams::default(), &cm)
            .await
            .map(drop)
            .map_err(store_error)
    }

    fn describe(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_fields_round_trip_and_count_only_for_their_serial() {
        let r = Record {
            hash: "00000000000000ff".into(),
            serial: 1_800_000_001,
            served: Served {
                serial: 1_800_000_001,
                records: 12,
                since: 1_800_000_000,
            },
        };
        let mut data = BTreeMap::new();
        write_record(&mut data, &r);
        assert_eq!(data["lastServed"], "2027-01-15T08:00:00Z");
        assert_eq!(data["records"], "12");
        assert_eq!(serial_of(&data), 1_800_000_001);
        assert_eq!(served_of(&data), Some(r.served));
        // an older server replaced hash and serial only
        data.insert("serial".into(), "1800000002".into());
        assert_eq!(served_of(&data), None);
        // the empty ConfigMap the operator creates
        assert_eq!(served_of(&BTreeMap::new()), None);
        assert_eq!(serial_of(&BTreeMap::new()), 0);
    }
}
