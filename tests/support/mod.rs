//! The one support module of the integration tests. Every test binary declares `mod support;`
//! and uses the parts it needs:
//!
//! - [`sockets`]: run the real `zonegate` binary and talk to it over UDP and TCP on loopback;
//! - [`cluster`]: `zonegate serve --zone` against the e2e control plane;
//! - [`peers`]: the real peers (ExternalDNS, CoreDNS, dnsmasq) next to zonegate;
//! - this file: the e2e harness. The e2e tests (`tests/e2e_*.rs`) run against the throwaway
//!   control plane of `e2e/cluster up` (etcd, kube-apiserver, kube-controller-manager; a node
//!   with `--node`), found through the environment that `make test` exports from the run's
//!   `env` file:
//!   - `KUBECONFIG`: the run's admin kubeconfig (`system:masters`);
//!   - `ZONEGATE_E2E_BIN`: the directory with `kubectl` and the control-plane binaries.
//!
//! Every e2e test is `#[ignore = "needs the e2e control plane: make test"]`, so a plain `cargo
//! test` skips them and `make test` runs them with `--include-ignored`. Each test works in its own
//! namespace ([`TestNamespace`]), deleted when the guard drops, also when the test panics.
#![allow(dead_code)] // every test binary compiles this module and uses a different part of it

pub mod cluster;
pub mod peers;
pub mod sockets;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{self, ApiCapabilities, Scope};
use kube::{Client, ResourceExt};
use std::fmt::Debug;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The field manager of every server-side apply the tests do.
pub const FIELD_MANAGER: &str = "zonegate-e2e";

/// Where the control plane of this test run is.
#[derive(Clone, Debug)]
pub struct E2eEnv {
    /// The admin kubeconfig (`$KUBECONFIG`).
    pub kubeconfig: PathBuf,
    /// Directory with `kubectl`, `kube-apiserver`, ... (`$ZONEGATE_E2E_BIN`).
    pub bin: PathBuf,
}

/// Reads the e2e environment, or panics with how to get one.
pub fn env() -> E2eEnv {
    fn var(name: &str) -> PathBuf {
        match std::env::var_os(name) {
            Some(v) if !v.is_empty() => PathBuf::from(v),
            _ => panic!(
                "${name} is not set: the e2e tests need a control plane; run `make test`, or \
                 `e2e/cluster up` and export the variables of its run directory's `env` file \
                 (`set -a; . <run>/env; set +a`)"
            ),
        }
    }
    let env = E2eEnv {
        kubeconfig: var("KUBECONFIG"),
        bin: var("ZONEGATE_E2E_BIN"),
    };
    assert!(
        env.kubeconfig.is_file(),
        "KUBECONFIG={} does not exist: is the e2e cluster still up? (run `make test` or `e2e/cluster up`)",
        env.kubeconfig.display()
    );
    assert!(
        env.bin.join("kubectl").is_file(),
        "ZONEGATE_E2E_BIN={} has no kubectl (run `make test` or `e2e/cluster up`)",
        env.bin.display()
    );
    env
}

/// A client for the e2e apiserver, from `$KUBECONFIG`. Build one per test: a client belongs to
/// the tokio runtime it was built on, and every `#[tokio::test]` has its own.
pub async fn client() -> Client {
    let env = env();
    let options = kube::config::KubeConfigOptions::default();
    let kubeconfig = kube::config::Kubeconfig::read_from(&env.kubeconfig)
        .unwrap_or_else(|e| panic!("reading {}: {e}", env.kubeconfig.display()));
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .unwrap_or_else(|e| panic!("kubeconfig {}: {e}", env.kubeconfig.display()));
    Client::try_from(config).expect("building the kube client")
}

/// A name unique across test processes and runs: `<prefix>-<8 base-36 characters>`, from the
/// time, the pid and a counter (no random-number crate needed).
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    let mut x = nanos
        ^ (u64::from(std::process::id()) << 32)
        ^ u64::from(COUNTER.fetch_add(1, Ordering::Relaxed)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // splitmix64 finaliser: spread the bits so consecutive names differ everywhere
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let suffix: String = (0..8)
        .map(|_| {
            let d = DIGITS[(x % 36) as usize] as char;
            x /= 36;
            d
        })
        .collect();
    format!("{prefix}-{suffix}")
}

/// A fresh namespace `zg-e2e-<random>` for one test. Dropping the guard deletes the namespace
/// (without waiting for it to be gone), also when the test panics, so keep it alive for the whole
/// test: `let ns = TestNamespace::create(&client).await;`. Set `ZONEGATE_E2E_KEEP_NS=1` to keep
/// namespaces for debugging.
pub struct TestNamespace {
    name: String,
    client: Client,
}

impl TestNamespace {
    pub async fn create(client: &Client) -> Self {
        let name = unique_name("zg-e2e");
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": { "name": name, "labels": { "zonegate.dev/e2e": "true" } },
        }))
        .expect("namespace object");
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
        TestNamespace {
            name,
            client: client.clone(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// `Api<K>` in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }
}

impl std::ops::Deref for TestNamespace {
    type Target = str;
    fn deref(&self) -> &str {
        &self.name
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if std::env::var_os("ZONEGATE_E2E_KEEP_NS").is_some_and(|v| v == "1") {
            eprintln!("keeping namespace {} (ZONEGATE_E2E_KEEP_NS=1)", self.name);
            return;
        }
        // Drop cannot await, and may run while unwinding a panic inside the test's runtime; a
        // short synchronous kubectl call works in both cases.
        let out = kubectl(&[
            "delete",
            "namespace",
            &self.name,
            "--wait=false",
            "--ignore-not-found",
        ]);
        if !out.status.success() {
            eprintln!(
                "warning: deleting namespace {} failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
}

/// Runs `body` with a fresh namespace and deletes the namespace afterwards, also if `body`
/// panics (the panic is then resumed).
///
/// ```ignore
/// with_namespace(|client, ns| Box::pin(async move { /* ... */ })).await;
/// ```
pub async fn with_namespace<F>(body: F)
where
    F: for<'a> FnOnce(Client, &'a str) -> BoxFuture<'a, ()>,
{
    let client = client().await;
    let ns = TestNamespace::create(&client).await;
    // `ns` drops (deleting the namespace) when this frame unwinds or returns.
    body(client, ns.name()).await;
}

/// Runs `$ZONEGATE_E2E_BIN/kubectl ARGS` against the e2e cluster and returns its output
/// (whatever the exit status).
pub fn kubectl(args: &[&str]) -> Output {
    kubectl_with_stdin(args, None)
}

/// Like [`kubectl`], feeding `stdin` to the process.
pub fn kubectl_with_stdin(args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let env = env();
    let mut cmd = Command::new(env.bin.join("kubectl"));
    cmd.args(args)
        .env("KUBECONFIG", &env.kubeconfig)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("running kubectl {args:?}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("kubectl stdin");
        pipe.write_all(input.as_bytes())
            .expect("writing kubectl stdin");
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for kubectl {args:?}: {e}"))
}

/// Runs kubectl, panics with its stderr unless it succeeds, returns its stdout.
pub fn kubectl_ok(args: &[&str]) -> String {
    let out = kubectl(args);
    assert!(
        out.status.success(),
        "kubectl {} failed ({}):\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("kubectl output is UTF-8")
}

/// Finds the API resource of `group`/`kind` (any served version, the preferred one first).
pub async fn resolve_kind(
    client: &Client,
    group: &str,
    kind: &str,
) -> (ApiResource, ApiCapabilities) {
    let g = discovery::group(client, group)
        .await
        .unwrap_or_else(|e| panic!("discovering API group {group:?}: {e}"));
    g.recommended_kind(kind)
        .unwrap_or_else(|| panic!("API group {group:?} has no kind {kind}"))
}

/// `Api<DynamicObject>` for `group`/`kind`, in namespace `ns` when the kind is namespaced.
pub async fn dynamic_api(client: &Client, ns: &str, group: &str, kind: &str) -> Api<DynamicObject> {
    let (ar, caps) = resolve_kind(client, group, kind).await;
    match caps.scope {
        Scope::Namespaced => Api::namespaced_with(client.clone(), ns, &ar),
        Scope::Cluster => Api::all_with(client.clone(), &ar),
    }
}

/// Server-side applies every document of `yaml` (namespaced objects land in `ns` unless they
/// name a namespace) and returns the objects as the apiserver stored them. Each document needs
/// `apiVersion`, `kind` and `metadata.name`.
pub async fn apply_yaml(client: &Client, ns: &str, yaml: &str) -> Vec<DynamicObject> {
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(yaml).unwrap_or_else(|e| panic!("parsing YAML: {e}\n{yaml}"));
    let mut applied = Vec::new();
    for doc in docs.into_iter().filter(|d| !d.is_null()) {
        let obj: DynamicObject = serde_json::from_value(doc.clone())
            .unwrap_or_else(|e| panic!("not a Kubernetes object ({e}): {doc}"));
        let types = obj
            .types
            .clone()
            .unwrap_or_else(|| panic!("no apiVersion/kind: {doc}"));
        let gvk = GroupVersionKind::try_from(&types)
            .unwrap_or_else(|e| panic!("bad apiVersion {:?}: {e}", types.api_version));
        let (ar, caps) = discovery::pinned_kind(client, &gvk)
            .await
            .unwrap_or_else(|e| panic!("discovering {gvk:?}: {e}"));
        let name = obj.name_any();
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => Api::namespaced_with(
                client.clone(),
                obj.namespace().as_deref().unwrap_or(ns),
                &ar,
            ),
            Scope::Cluster => Api::all_with(client.clone(), &ar),
        };
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let stored = api
            .patch(&name, &params, &Patch::Apply(&obj))
            .await
            .unwrap_or_else(|e| panic!("applying {} {name}: {e}", types.kind));
        applied.push(stored);
    }
    applied
}

/// Polls `check` every 200 ms until it returns `Ok`, and returns that value; panics after
/// `timeout` with `what` and the last error.
pub async fn wait_for<T, E, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    E: Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(v) => return v,
            Err(e) if start.elapsed() >= timeout => {
                panic!("timed out after {timeout:?} waiting for {what}; last result: {e:?}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Collapses runs of whitespace into one space (for matching wrapped kubectl output).
pub fn squash_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The repository root (for fixtures).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}
