//! Packaging: the Helm chart (`charts/zonegate`), the kustomize bases (`config/`), the
//! Dockerfile and the generated API reference. No cluster is needed, but the chart and kustomize
//! tests run real tools, found through two environment variables (`make test` sets both):
//!
//! - `ZONEGATE_HELM`: the helm binary (`e2e/tools.sh helm` builds it and prints its path);
//! - `ZONEGATE_E2E_BIN`: the directory with kubectl v1.36 (`e2e/build-control-plane.sh` prints
//!   it as `BIN=...`), for `kubectl kustomize`.
//!
//! Without them those tests fail with a message saying so; they never skip.

#[path = "../examples/api-reference.rs"]
#[allow(dead_code)]
mod api_reference;

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use zonegate::api::{DNSZone, DNSZoneGrant};
use zonegate::operator::desired;

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const RELEASE: &str = "zonegate";
const NAMESPACE: &str = "zonegate-system";

fn repo(p: &str) -> PathBuf {
    Path::new(REPO).join(p)
}

fn read(p: &str) -> String {
    std::fs::read_to_string(repo(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// tools

fn helm() -> PathBuf {
    let Some(p) = std::env::var_os("ZONEGATE_HELM").filter(|p| !p.is_empty()) else {
        panic!(
            "ZONEGATE_HELM is not set: these tests need helm. Build it with `e2e/tools.sh helm` \
             (prints its path) and run `ZONEGATE_HELM=$(e2e/tools.sh helm) cargo test --test packaging`"
        );
    };
    let p = PathBuf::from(p);
    assert!(
        p.is_file(),
        "ZONEGATE_HELM={} is not a file (build it with `e2e/tools.sh helm`)",
        p.display()
    );
    p
}

fn kubectl() -> PathBuf {
    let Some(dir) = std::env::var_os("ZONEGATE_E2E_BIN").filter(|p| !p.is_empty()) else {
        panic!(
            "ZONEGATE_E2E_BIN is not set: these tests need kubectl (for `kubectl kustomize`). \
             `e2e/build-control-plane.sh` builds it and prints BIN=<dir>; run \
             `ZONEGATE_E2E_BIN=<dir> cargo test --test packaging`"
        );
    };
    let p = PathBuf::from(dir).join("kubectl");
    assert!(
        p.is_file(),
        "ZONEGATE_E2E_BIN has no kubectl: {} (run e2e/build-control-plane.sh)",
        p.display()
    );
    p
}

/// Runs a command; (success, stdout, stderr).
fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn helm_template_result(args: &[&str]) -> (bool, String, String) {
    run(Command::new(helm())
        .args(["template", RELEASE])
        .arg(repo("charts/zonegate"))
        .args(["--namespace", NAMESPACE, "--include-crds"])
        .args(args))
}

/// `helm template zonegate charts/zonegate -n zonegate-system --include-crds ARGS`, parsed.
fn helm_template(args: &[&str]) -> Vec<Value> {
    let (ok, out, err) = helm_template_result(args);
    assert!(ok, "helm template {args:?} failed:\n{err}");
    documents(&out)
}

fn kustomize(dir: &Path) -> Vec<Value> {
    let (ok, out, err) = run(Command::new(kubectl()).arg("kustomize").arg(dir));
    assert!(ok, "kubectl kustomize {} failed:\n{err}", dir.display());
    documents(&out)
}

/// config/default with the component config/default/ha, through an overlay in a temporary
/// directory (kustomize takes only relative paths).
fn kustomize_ha() -> Vec<Value> {
    let dir = std::env::temp_dir().join(format!("zonegate-packaging-ha-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rel = relative(&dir, &repo("config/default"));
    std::fs::write(
        dir.join("kustomization.yaml"),
        format!(
            "resources: [{}]\ncomponents: [{}/ha]\n",
            rel.display(),
            rel.display()
        ),
    )
    .unwrap();
    let docs = kustomize(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    docs
}

/// `to` relative to the directory `from` (both absolute).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let (from, to) = (
        std::fs::canonicalize(from).unwrap(),
        std::fs::canonicalize(to).unwrap(),
    );
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut p = PathBuf::new();
    for _ in common..from.len() {
        p.push("..");
    }
    for c in &to[common..] {
        p.push(c);
    }
    p
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(yaml)
        .unwrap_or_else(|e| panic!("rendered YAML does not parse: {e}\n{yaml}"))
        .into_iter()
        .filter(|d| d.is_object())
        .collect()
}

/// Integral floats as integers (YAML tools disagree on `4.0` vs `4`).
fn canon(v: &Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or_default();
            if f.fract() == 0.0 && f.abs() < 1e15 {
                json!(f as i64)
            } else {
                v.clone()
            }
        }
        Value::Array(a) => Value::Array(a.iter().map(canon).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), canon(v))).collect()),
        other => other.clone(),
    }
}

fn id(d: &Value) -> (String, String, String) {
    (
        d["kind"].as_str().unwrap_or_default().to_string(),
        d["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        d["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

fn find<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found = find(docs, kind);
    assert_eq!(found.len(), 1, "expected one {kind}, got {}", found.len());
    found[0]
}

// ---------------------------------------------------------------------------------------------
// RBAC normalisation: every rule becomes (apiGroup, resource, resourceName or "", verb) tuples

type Grant = (String, String, String, String);

fn grants_of_rules(rules: &Value) -> BTreeSet<Grant> {
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    let mut out = BTreeSet::new();
    for r in rules.as_array().expect("rules is a list") {
        assert!(
            r.get("nonResourceURLs").is_none(),
            "no non-resource rule expected: {r}"
        );
        let names = match strs(&r["resourceNames"]) {
            n if n.is_empty() => vec![String::new()],
            n => n,
        };
        for g in strs(&r["apiGroups"]) {
            for res in strs(&r["resources"]) {
                for n in &names {
                    for v in strs(&r["verbs"]) {
                        out.insert((g.clone(), res.clone(), n.clone(), v));
                    }
                }
            }
        }
    }
    out
}

/// Kind and name of every (Cluster)Role with its normalised rules.
fn rbac(docs: &[Value]) -> BTreeMap<(String, String, String), BTreeSet<Grant>> {
    docs.iter()
        .filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "Role")
        .map(|d| (id(d), grants_of_rules(&d["rules"])))
        .collect()
}

/// Does `held` allow `wanted` (resourceNames: an unrestricted rule covers every name)?
fn covers(held: &BTreeSet<Grant>, (g, r, n, v): &Grant) -> bool {
    held.contains(&(g.clone(), r.clone(), n.clone(), v.clone()))
        || held.contains(&(g.clone(), r.clone(), String::new(), v.clone()))
}

/// The YAML block after `marker` in docs/operator.md, and the next block after that.
fn documented_rbac() -> (Value, Value) {
    let text = std::fs::read_to_string(repo("docs/operator.md")).expect(
        "docs/operator.md (the operator's documented permissions) must exist: the chart's RBAC is checked against it",
    );
    let (_, after) = text
        .split_once("<!-- operator-clusterrole -->")
        .expect("docs/operator.md has the <!-- operator-clusterrole --> marker");
    let mut blocks = after.split("```yaml\n").skip(1).map(|b| {
        let body = b.split("```").next().unwrap_or_default();
        serde_saphyr::from_str::<Value>(body).expect("a YAML block of docs/operator.md")
    });
    let cluster_role = blocks.next().expect("the ClusterRole block");
    let lease_role = blocks.next().expect("the Lease Role block");
    assert_eq!(cluster_role["kind"], "ClusterRole");
    assert_eq!(lease_role["kind"], "Role");
    (cluster_role, lease_role)
}

// ---------------------------------------------------------------------------------------------
// files only

#[test]
fn crd_copies_equal_crds_dir() {
    let mut names: Vec<String> = std::fs::read_dir(repo("crds"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(!names.is_empty());
    for copy in ["charts/zonegate/crds", "config/crd/bases"] {
        let mut theirs: Vec<String> = std::fs::read_dir(repo(copy))
            .unwrap_or_else(|e| panic!("{copy}: {e}"))
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        theirs.sort();
        assert_eq!(theirs, names, "{copy} must hold exactly the files of crds/");
        for n in &names {
            assert!(
                read(&format!("crds/{n}")) == read(&format!("{copy}/{n}")),
                "{copy}/{n} differs from crds/{n}: copy it (`cp crds/*.yaml {copy}/`)"
            );
        }
    }
    let listed = read("config/crd/kustomization.yaml");
    for n in &names {
        assert!(
            listed.contains(&format!("bases/{n}")),
            "config/crd/kustomization.yaml does not list bases/{n}"
        );
    }
}

#[test]
fn api_reference_is_current() {
    let committed = std::fs::read_to_string(repo("docs/api-reference.md")).unwrap_or_default();
    assert!(
        committed == api_reference::render(),
        "docs/api-reference.md is stale or missing: run `cargo run -q --example api-reference` and commit it"
    );
}

/// Cargo.toml's version = the chart's appVersion = the Dockerfile's VERSION; the chart's default
/// image is the Dockerfile's published repository at that version.
#[test]
fn default_image_follows_the_dockerfile() {
    let version = env!("CARGO_PKG_VERSION");
    let dockerfile = read("Dockerfile");
    let published = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("# Published as: "))
        .expect("the Dockerfile says `# Published as: <repository>:<version>`");
    let repository = published
        .strip_suffix(":<version>")
        .expect("published as <repository>:<version>");
    assert!(
        dockerfile.contains(&format!("ARG VERSION={version}\n")),
        "the Dockerfile's ARG VERSION must be Cargo.toml's version {version}"
    );
    let chart: Value = serde_saphyr::from_str(&read("charts/zonegate/Chart.yaml")).unwrap();
    assert_eq!(
        chart["appVersion"], version,
        "Chart.yaml appVersion must be Cargo.toml's version"
    );
    let values: Value = serde_saphyr::from_str(&read("charts/zonegate/values.yaml")).unwrap();
    assert_eq!(values["image"]["repository"], repository);
    assert_eq!(
        values["image"]["tag"], "",
        "the default tag is the appVersion"
    );
    let image = format!("{repository}:{version}");
    let manager: Value = serde_saphyr::from_str(&read("config/manager/deployment.yaml")).unwrap();
    let c = &manager["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], image.as_str());
    assert!(
        c["args"]
            .as_array()
            .unwrap()
            .contains(&json!(format!("--server-image={image}"))),
        "config/manager runs the nameservers from {image}"
    );
}

#[test]
fn dockerfile_builds_a_static_non_root_image() {
    let d = read("Dockerfile");
    assert!(d.contains("RUSTFLAGS=\"-C target-feature=+crt-static\""));
    assert!(d.contains("--bin zonegate"));
    let final_stage = d.rsplit("\nFROM ").next().unwrap();
    assert!(
        final_stage.starts_with("gcr.io/distroless/static-debian12:nonroot"),
        "final stage on distroless/static nonroot: {final_stage}"
    );
    let uid = desired::RUN_AS;
    assert!(
        final_stage.contains(&format!("\nUSER {uid}:{uid}\n")),
        "the image runs as {uid}, the uid of the operator's nameserver pods"
    );
    assert!(final_stage.contains("ENTRYPOINT [\"/usr/local/bin/zonegate\"]"));
    // Every COPY of the build stage is inside the build context .dockerignore lets through.
    let allowed: Vec<String> = read(".dockerignore")
        .lines()
        .filter_map(|l| l.strip_prefix('!'))
        .map(|l| l.trim_end_matches('/').to_string())
        .collect();
    for line in d
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let parts: Vec<&str> = line.split_whitespace().collect();
        for src in &parts[1..parts.len() - 1] {
            assert!(
                allowed.iter().any(|a| a == src),
                ".dockerignore keeps {src} out of the context but the Dockerfile copies it"
            );
            assert!(repo(src).exists(), "COPY {src}: no such path");
        }
    }
    // Every [[example]]/[[bench]] path Cargo.toml declares is in the context (cargo needs them).
    let cargo = read("Cargo.toml");
    for p in cargo
        .lines()
        .filter_map(|l| l.strip_prefix("path = \""))
        .map(|p| p.trim_end_matches('"'))
    {
        assert!(
            allowed
                .iter()
                .any(|a| p == a || p.starts_with(&format!("{a}/"))),
            "Cargo.toml's target {p} is outside the Docker build context"
        );
    }
}

/// Everything the operator may grant to a zone's nameserver pods, it holds itself (Kubernetes
/// refuses a Role with permissions its creator lacks).
#[test]
fn the_operator_holds_every_permission_it_grants() {
    let (cluster_role, _) = documented_rbac();
    let held = grants_of_rules(&cluster_role["rules"]);
    let zone: DNSZone = serde_json::from_value(json!({
        "apiVersion": "zonegate.dev/v1alpha1", "kind": "DNSZone",
        "metadata": {"name": "acme", "namespace": "acme", "uid": "u"},
        "spec": {
            "domain": "acme.example.com",
            "sources": {"namespaces": ["acme", "shop"]},
            "delegations": [{"name": "team", "zoneRef": {"namespace": "team", "name": "team"}}],
        },
    }))
    .unwrap();
    let grant: DNSZoneGrant = serde_json::from_value(json!({
        "apiVersion": "zonegate.dev/v1alpha1", "kind": "DNSZoneGrant",
        "metadata": {"name": "all", "namespace": "shop"},
        "spec": {"zones": [{"namespace": "acme"}]},
    }))
    .unwrap();
    let mut granted = BTreeSet::new();
    let mut objects = desired::desired_rbac(&zone, &[&grant]);
    objects.push(desired::desired_gateway_reader());
    for o in objects.iter().filter(|o| o.body.get("rules").is_some()) {
        granted.extend(grants_of_rules(&o.body["rules"]));
    }
    assert!(
        granted.len() > 20,
        "every source kind, grants, zones, serial ConfigMap, Gateways"
    );
    let missing: Vec<&Grant> = granted.iter().filter(|g| !covers(&held, g)).collect();
    assert!(
        missing.is_empty(),
        "the operator grants permissions it does not hold: {missing:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// helm and kustomize

#[test]
fn helm_lint_passes() {
    let (ok, out, err) = run(Command::new(helm())
        .args(["lint", "--strict"])
        .arg(repo("charts/zonegate")));
    assert!(ok, "helm lint --strict:\n{out}\n{err}");
    for set in [
        "replicas=3",
        "metrics.serviceMonitor.enabled=true",
        "logFormat=json",
    ] {
        let (ok, out, err) = run(Command::new(helm())
            .args(["lint", "--strict", "--set", set])
            .arg(repo("charts/zonegate")));
        assert!(ok, "helm lint --strict --set {set}:\n{out}\n{err}");
    }
}

#[test]
fn the_chart_renders_what_the_operator_needs() {
    let docs = helm_template(&[]);
    let ids: BTreeSet<_> = docs.iter().map(id).collect();
    let n = |k: &str, ns: &str, name: &str| (k.to_string(), ns.to_string(), name.to_string());
    let want: BTreeSet<_> = [
        n("CustomResourceDefinition", "", "dnszones.zonegate.dev"),
        n("CustomResourceDefinition", "", "dnszonegrants.zonegate.dev"),
        n("ServiceAccount", NAMESPACE, "zonegate-operator"),
        n("ClusterRole", "", "zonegate-operator"),
        n("ClusterRoleBinding", "", "zonegate-operator"),
        n("Service", NAMESPACE, "zonegate-operator"),
        n("Deployment", NAMESPACE, "zonegate-operator"),
    ]
    .into();
    assert_eq!(ids, want);
    // The chart's CRDs are crds/, object for object.
    let crds: Vec<Value> = zonegate::crdgen::crds()
        .iter()
        .flat_map(|(_, y)| documents(y))
        .collect();
    for crd in find(&docs, "CustomResourceDefinition") {
        assert!(crds.contains(crd), "{:?} differs from crds/", id(crd));
    }
    // Every rendered operator flag is one `zonegate operator` takes.
    for variant in [
        vec![],
        vec!["--set", "replicas=2"],
        vec![
            "--set-json",
            r#"domainPolicy={"team-*":["{namespace}.apps.example.com"]}"#,
            "--set",
            "delegation.parent=192.0.2.53:5300",
            "--set",
            "server.pullPolicy=Always",
            "--set",
            "server.nodeSpread=preferred",
        ],
    ] {
        let docs = helm_template(&variant);
        let args = operator_args(one(&docs, "Deployment"));
        let parsed = parse_operator_args(&args);
        assert!(
            parsed.watch_namespace.is_empty(),
            "every namespace by default"
        );
    }
    // watchNamespaces: one comma list the operator splits
    let docs = helm_template(&["--set-json", r#"watchNamespaces=["team-a","team-b"]"#]);
    let args = operator_args(one(&docs, "Deployment"));
    assert!(
        args.contains(&"--watch-namespace=team-a,team-b".to_string()),
        "{args:?}"
    );
    let scope =
        zonegate::operator::scope::Scope::parse(&parse_operator_args(&args).watch_namespace)
            .unwrap();
    assert!(scope.contains("team-b") && !scope.contains("team-c"));
}

/// The container args after `operator`, without `--log-format` (the binary's global flag).
fn operator_args(deployment: &Value) -> Vec<String> {
    let args: Vec<String> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert_eq!(args[0], "operator");
    args[1..].to_vec()
}

fn parse_operator_args(args: &[String]) -> zonegate::operator::OperatorArgs {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[arg(long)]
        log_format: Option<String>,
        #[command(flatten)]
        args: zonegate::operator::OperatorArgs,
    }
    let cli = Cli::try_parse_from(
        std::iter::once("zonegate-operator".to_string()).chain(args.iter().cloned()),
    )
    .unwrap_or_else(|e| {
        panic!("the chart renders flags `zonegate operator` rejects: {args:?}\n{e}")
    });
    assert!(matches!(cli.log_format.as_deref(), Some("text" | "json")));
    cli.args
}

#[test]
fn the_binary_takes_log_format_after_the_subcommand() {
    let (ok, _, err) = run(Command::new(env!("CARGO_BIN_EXE_zonegate")).args([
        "operator",
        "--log-format=json",
        "--help",
    ]));
    assert!(ok, "zonegate operator --log-format=json --help: {err}");
}

#[test]
fn leader_election_is_on_exactly_with_more_than_one_replica() {
    for (replicas, elect) in [(1, false), (2, true), (3, true)] {
        let docs = helm_template(&["--set", &format!("replicas={replicas}")]);
        let d = one(&docs, "Deployment");
        assert_eq!(d["spec"]["replicas"], replicas);
        let args = parse_operator_args(&operator_args(d));
        assert_eq!(args.leader_elect, elect, "replicas {replicas}");
        let strategy = d["spec"]["strategy"]["type"].as_str().unwrap();
        let roles = find(&docs, "Role");
        if elect {
            assert_eq!(strategy, "RollingUpdate");
            assert_eq!(args.lease_name.as_deref(), Some("zonegate-operator"));
            assert_eq!(roles.len(), 1);
            let rb = one(&docs, "RoleBinding");
            assert_eq!(rb["roleRef"]["name"], roles[0]["metadata"]["name"]);
            assert_eq!(rb["subjects"][0]["name"], "zonegate-operator");
        } else {
            // never two operators without a lock
            assert_eq!(strategy, "Recreate");
            assert!(roles.is_empty() && find(&docs, "RoleBinding").is_empty());
        }
    }
}

#[test]
fn the_rbac_is_the_documented_rbac_in_the_chart_and_in_kustomize() {
    let (cluster_role, lease_role) = documented_rbac();
    let documented = grants_of_rules(&cluster_role["rules"]);
    let documented_lease = grants_of_rules(&lease_role["rules"]);
    let key = |k: &str, ns: &str, n: &str| (k.to_string(), ns.to_string(), n.to_string());
    let single = BTreeMap::from([(
        key("ClusterRole", "", "zonegate-operator"),
        documented.clone(),
    )]);
    let mut ha = single.clone();
    ha.insert(
        key("Role", NAMESPACE, "zonegate-operator-lease"),
        documented_lease,
    );
    assert_eq!(rbac(&helm_template(&[])), single, "chart, one replica");
    assert_eq!(
        rbac(&helm_template(&["--set", "replicas=2"])),
        ha,
        "chart, two replicas"
    );
    assert_eq!(
        rbac(&kustomize(&repo("config/default"))),
        single,
        "config/default"
    );
    assert_eq!(rbac(&kustomize_ha()), ha, "config/default + ha");
}

/// The chart with default values and config/default render the same objects (Helm's labels
/// aside); with replicas 2, the same as config/default plus its ha component.
#[test]
fn kustomize_renders_the_chart_s_operator() {
    for (label, chart, kust) in [
        (
            "default",
            helm_template(&[]),
            kustomize(&repo("config/default")),
        ),
        (
            "ha",
            helm_template(&["--set", "replicas=2"]),
            kustomize_ha(),
        ),
    ] {
        let kust: Vec<Value> = kust
            .into_iter()
            .filter(|d| d["kind"] != "Namespace")
            .collect();
        let ids = |docs: &[Value]| docs.iter().map(id).collect::<BTreeSet<_>>();
        assert_eq!(ids(&chart), ids(&kust), "{label}: the same objects");
        for c in &chart {
            let k = kust.iter().find(|k| id(k) == id(c)).unwrap();
            let what = format!("{label}: {:?}", id(c));
            match c["kind"].as_str().unwrap() {
                // kustomize writes `maximum: 4.0` as `4`
                "CustomResourceDefinition" => assert!(canon(c) == canon(k), "{what} differs"),
                "ClusterRole" | "Role" => assert_eq!(
                    grants_of_rules(&c["rules"]),
                    grants_of_rules(&k["rules"]),
                    "{what}"
                ),
                "ClusterRoleBinding" | "RoleBinding" => {
                    assert_eq!(c["roleRef"], k["roleRef"], "{what}");
                    assert_eq!(c["subjects"], k["subjects"], "{what}");
                }
                "Deployment" | "Service" => assert_eq!(c["spec"], k["spec"], "{what}"),
                "ServiceAccount" => {}
                other => panic!("{what}: unexpected kind {other}"),
            }
        }
    }
}

#[test]
fn bad_values_fail_at_install_time() {
    let bad: &[&[&str]] = &[
        &["--set", "replicas=-1"],
        &["--set", "replicas=two"],
        &["--set-json", "image.repository=5"],
        &["--set", "image.repository="],
        &["--set", "image.pullPolicy=Sometimes"],
        &["--set", "logFormat=xml"],
        &["--set", "server.nodeSpread=anywhere"],
        &["--set", "server.resources.requests.cpu=half"],
        &["--set", "server.resources.limits.memory=64MB"],
        &["--set-json", "server.resources.requests.memory=64"],
        &["--set", "delegation.checkInterval=-5"],
        &["--set", "delegation.resolver=dns.example"],
        &[
            "--set",
            "delegation.resolver=192.0.2.1",
            "--set",
            "delegation.parent=192.0.2.2",
        ],
        &["--set-json", r#"domainPolicy={"team-*":[]}"#],
        &["--set", "replica=2"],
        &["--set", "metrics.serviceMonitor.enabled=yes"],
        &["--set-json", r#"watchNamespaces=["Team-A"]"#],
        &["--set-json", r#"watchNamespaces="team-a""#],
    ];
    for args in bad {
        let (ok, _, err) = helm_template_result(args);
        assert!(!ok, "helm template {args:?} should fail");
        assert!(
            err.contains("values don't meet the specifications of the schema"),
            "helm template {args:?}: expected a schema error, got:\n{err}"
        );
    }
    // and what the schema allows renders
    for args in [
        &["--set", "replicas=0"][..],
        &["--set", "delegation.resolver=[2001:db8::53]:53"][..],
        &["--set", "delegation.parent=192.0.2.53"][..],
        // quantities in any form Kubernetes takes: the operator compares them by value
        &[
            "--set",
            "server.resources.requests.cpu=1000m",
            "--set",
            "server.resources.limits.memory=1024Mi",
            "--set",
            "server.resources.requests.memory=0.5Gi",
        ][..],
    ] {
        let (ok, _, err) = helm_template_result(args);
        assert!(ok, "helm template {args:?}: {err}");
    }
    let digest = format!("image.digest=sha256:{}", "ab".repeat(32));
    let docs = helm_template(&["--set", &digest]);
    let d = one(&docs, "Deployment");
    let image = d["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap();
    assert!(image.ends_with(&format!("@sha256:{}", "ab".repeat(32))));
    assert!(
        operator_args(d).contains(&format!("--server-image={image}")),
        "the nameservers run the pinned image too"
    );
}

#[test]
fn values_reach_the_operator() {
    let docs = helm_template(&[
        "--set",
        "server.image.repository=registry.example/zg",
        "--set",
        "server.image.tag=9.9.9",
        "--set",
        "server.resources.requests.cpu=100m",
        "--set",
        "server.resources.limits.memory=512Mi",
        "--set",
        "logFormat=json",
        "--set",
        "logLevel=zonegate=debug",
        "--set-json",
        r#"domainPolicy={"platform":["example.com"],"team-*":["{namespace}.apps.example.com"]}"#,
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "metrics.podMonitor.enabled=true",
        "--set",
        "delegation.checkInterval=0",
    ]);
    let d = one(&docs, "Deployment");
    let raw = operator_args(d);
    assert!(
        d["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap()
            .contains(&json!("--log-format=json"))
    );
    let args = parse_operator_args(&raw);
    assert_eq!(args.server_image, "registry.example/zg:9.9.9");
    assert_eq!(args.server_requests, "cpu=100m,memory=64Mi");
    assert_eq!(args.server_limits, "memory=512Mi");
    assert_eq!(args.delegation_check_interval, 0);
    let policy_path = args.domain_policy.expect("--domain-policy");
    // The policy ConfigMap is mounted where the flag points, and parses as a policy.
    let cm = one(&docs, "ConfigMap");
    let pod = &d["spec"]["template"]["spec"];
    let mount = &pod["containers"][0]["volumeMounts"][0];
    assert_eq!(
        Path::new(mount["mountPath"].as_str().unwrap())
            .join(policy_path.file_name().unwrap())
            .as_path(),
        policy_path.as_path()
    );
    assert_eq!(
        pod["volumes"][0]["configMap"]["name"],
        cm["metadata"]["name"]
    );
    let file = cm["data"][policy_path.file_name().unwrap().to_str().unwrap()]
        .as_str()
        .expect("the policy file in the ConfigMap");
    let policy = zonegate::operator::policy::DomainPolicy::parse(file).unwrap();
    assert!(policy.check("team-a", "team-a.apps.example.com").is_ok());
    assert!(policy.check("team-a", "shop.example.com").is_err());
    assert!(policy.check("platform", "shop.example.com").is_ok());
    assert!(
        d["spec"]["template"]["metadata"]["annotations"]["checksum/domain-policy"].is_string(),
        "a policy change rolls the operator"
    );
    let env = pod["containers"][0]["env"].as_array().unwrap();
    assert!(env.contains(&json!({"name": "RUST_LOG", "value": "zonegate=debug"})));
    let sm = one(&docs, "ServiceMonitor");
    let svc = one(&docs, "Service");
    assert_eq!(
        sm["spec"]["endpoints"][0]["port"],
        svc["spec"]["ports"][0]["name"]
    );
    for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(&svc["metadata"]["labels"][k], v);
    }
    // The PodMonitor selects the labels the operator puts on nameserver pods.
    let pm = one(&docs, "PodMonitor");
    let zone: DNSZone = serde_json::from_value(json!({
        "apiVersion": "zonegate.dev/v1alpha1", "kind": "DNSZone",
        "metadata": {"name": "acme", "namespace": "acme", "uid": "u"},
        "spec": {"domain": "acme.example.com"},
    }))
    .unwrap();
    let server = desired::desired_deployment(&zone, &desired::ServerSettings::default(), 1);
    let tpl = &server.body["spec"]["template"];
    for (k, v) in pm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(&tpl["metadata"]["labels"][k], v, "PodMonitor label {k}");
    }
    let port = pm["spec"]["podMetricsEndpoints"][0]["port"]
        .as_str()
        .unwrap();
    assert!(
        tpl["spec"]["containers"][0]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == port),
        "nameserver pods have a port named {port}"
    );
}

/// Every pod template the chart or kustomize renders runs as non-root with a read-only root
/// filesystem, no capabilities, no privilege escalation and the RuntimeDefault seccomp profile.
#[test]
fn pods_are_non_root_and_locked_down() {
    let renders = [
        ("chart", helm_template(&[])),
        ("chart, replicas 2", helm_template(&["--set", "replicas=2"])),
        (
            "chart, domain policy",
            helm_template(&["--set-json", r#"domainPolicy={"a":["example.com"]}"#]),
        ),
        ("config/default", kustomize(&repo("config/default"))),
        ("config/default + ha", kustomize_ha()),
    ];
    for (label, docs) in renders {
        let deployments = find(&docs, "Deployment");
        assert!(!deployments.is_empty(), "{label}");
        for d in deployments {
            let pod = &d["spec"]["template"]["spec"];
            let sc = &pod["securityContext"];
            assert_eq!(sc["runAsNonRoot"], true, "{label}");
            assert_eq!(sc["runAsUser"], desired::RUN_AS, "{label}");
            assert_eq!(sc["runAsGroup"], desired::RUN_AS, "{label}");
            assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{label}");
            assert!(pod.get("hostNetwork").is_none() && pod.get("hostPID").is_none());
            for c in pod["containers"].as_array().unwrap() {
                let sc = &c["securityContext"];
                assert_eq!(sc["allowPrivilegeEscalation"], false, "{label}");
                assert_eq!(sc["readOnlyRootFilesystem"], true, "{label}");
                assert_eq!(sc["runAsNonRoot"], true, "{label}");
                assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{label}");
                assert!(sc["capabilities"].get("add").is_none(), "{label}");
                assert!(sc.get("privileged").is_none(), "{label}");
            }
        }
        // The namespace config/default creates enforces the restricted Pod Security Standard.
        for ns in find(&docs, "Namespace") {
            assert_eq!(
                ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
                "restricted"
            );
        }
    }
}

#[test]
fn samples_render_and_pass_zonegate_check() {
    let docs = kustomize(&repo("config/samples"));
    let zones = find(&docs, "DNSZone");
    assert_eq!(zones.len(), 1);
    assert_eq!(find(&docs, "DNSZoneGrant").len(), 1);
    let (ok, out, err) = run(Command::new(env!("CARGO_BIN_EXE_zonegate"))
        .args(["check", "--manifests"])
        .arg(repo("config/samples/tenant")));
    assert!(ok, "zonegate check config/samples/tenant:\n{out}\n{err}");
}

/// GitHub's anchor of a Markdown heading.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every relative link of the packaging docs points at an existing file and heading.
#[test]
fn doc_links_resolve() {
    let docs = [
        "docs/install.md",
        "docs/registrar.md",
        "docs/gitops.md",
        "docs/operations.md",
        "docs/migrate-k8s-gateway.md",
        "docs/migrate-externaldns.md",
        "docs/api-reference.md",
    ];
    let anchors = |file: &Path| -> BTreeSet<String> {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let mut in_code = false;
        let mut out = BTreeSet::new();
        for line in text.lines() {
            if line.starts_with("```") {
                in_code = !in_code;
            } else if !in_code && line.starts_with('#') {
                out.insert(slug(line.trim_start_matches('#')));
            }
        }
        out
    };
    let mut broken = Vec::new();
    for doc in docs {
        // Links outside code: fenced blocks and `inline code` dropped.
        let mut text = String::new();
        let mut in_code = false;
        for line in read(doc).lines() {
            if line.starts_with("```") {
                in_code = !in_code;
                continue;
            }
            if !in_code {
                text.extend(line.split('`').step_by(2));
                text.push('\n');
            }
        }
        let dir = repo(doc).parent().unwrap().to_path_buf();
        for (i, _) in text.match_indices("](") {
            let rest = &text[i + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = &rest[..end];
            if target.starts_with("http://") || target.starts_with("https://") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
            let file = if path.is_empty() {
                repo(doc)
            } else {
                dir.join(path)
            };
            if !file.exists() {
                broken.push(format!("{doc}: {target}: no such file"));
            } else if !anchor.is_empty() && !anchors(&file).contains(anchor) {
                broken.push(format!("{doc}: {target}: no such heading"));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// The fenced `sh` blocks of a Markdown file.
fn sh_blocks(doc: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in read(doc).lines() {
        match (&mut cur, line.trim_start()) {
            (None, "```sh") => cur = Some(String::new()),
            (Some(_), "```") => out.push(cur.take().unwrap()),
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            _ => {}
        }
    }
    out
}

/// docs/gitops.md's CI snippets, run as written under a strict umask (077): the rendering and
/// `zonegate check` as the CI user, and the `docker run` of the image as the image's user,
/// uid/gid 65532, with `setpriv` (the image runs the same binary). Needs root (setpriv) and
/// kubectl (`ZONEGATE_E2E_BIN`).
#[test]
fn gitops_ci_snippet_works_as_the_image_user() {
    let blocks = sh_blocks("docs/gitops.md");
    let render = blocks
        .iter()
        .find(|b| b.contains("mktemp -d"))
        .expect("docs/gitops.md: the CI block with mktemp -d");
    let image = blocks
        .iter()
        .find(|b| b.contains("docker run"))
        .expect("docs/gitops.md: the docker run block");
    // a world-readable work directory with the binaries and a clusters/prod overlay
    let work = std::env::temp_dir().join(format!("zonegate-gitops-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("bin")).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_zonegate"), work.join("bin/zonegate")).unwrap();
    std::os::unix::fs::symlink(kubectl(), work.join("bin/kubectl")).unwrap();
    let prod = work.join("clusters/prod");
    std::fs::create_dir_all(prod.join("tenant")).unwrap();
    for f in [
        "kustomization.yaml",
        "tenant/namespaces.yaml",
        "tenant/dnszone.yaml",
        "tenant/dnszonegrant.yaml",
    ] {
        std::fs::copy(repo(&format!("config/samples/{f}")), prod.join(f)).unwrap();
    }
    let script = format!(
        r#"set -euo pipefail
umask 077
# `docker run --rm -v SRC:/manifests:ro IMAGE ARGS...` as the image would run it
docker() {{
  [ "$1" = run ] || {{ echo "docker $1: not simulated" >&2; return 2; }}
  shift
  local src="" image=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --rm) shift ;;
      -v) src=${{2%%:*}}; shift 2 ;;
      *) image=$1; shift; break ;;
    esac
  done
  [ -n "$src" ] && [ -n "$image" ] || {{ echo "docker run: no -v or image" >&2; return 2; }}
  setpriv --reuid 65532 --regid 65532 --clear-groups zonegate "${{@//\/manifests/$src}}"
}}
{render}
{image}
"#
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(&work)
        .env(
            "PATH",
            format!(
                "{}:{}",
                work.join("bin").display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let zones = std::fs::read_to_string(work.join("zones.txt")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&work);
    assert!(
        out.status.success(),
        "docs/gitops.md's CI snippet fails:\n--- script\n{script}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    // both checks ran and passed: as the CI user and as uid 65532
    assert_eq!(stdout.matches("ok: ").count(), 2, "{stdout}\n{stderr}");
    assert!(
        zones.contains("IN\tSOA") || zones.contains(" SOA "),
        "render wrote no zone: {zones}"
    );
}

/// The chart's nameserver placement (server.placement, server.placementProfiles, the operator's
/// imagePullSecrets by default) reaches the operator's flags and, through them, the nameserver
/// Deployments the operator creates.
#[test]
fn server_placement_values_reach_the_nameserver_deployments() {
    let zone = |spec: Value| -> DNSZone {
        serde_json::from_value(json!({
            "apiVersion": "zonegate.dev/v1alpha1", "kind": "DNSZone",
            "metadata": {"name": "acme", "namespace": "acme", "uid": "u"},
            "spec": spec,
        }))
        .unwrap()
    };
    let pod_of = |args: &zonegate::operator::OperatorArgs, z: &DNSZone| -> Value {
        let config = args
            .config()
            .expect("the rendered flags make a configuration");
        desired::desired_deployment(z, &config.server, 1).body["spec"]["template"]["spec"].clone()
    };
    // by default: nothing, and the operator's pull secrets
    let docs = helm_template(&[]);
    let args = parse_operator_args(&operator_args(one(&docs, "Deployment")));
    let pod = pod_of(&args, &zone(json!({"domain": "acme.example.com"})));
    for f in [
        "imagePullSecrets",
        "nodeSelector",
        "tolerations",
        "priorityClassName",
        "topologySpreadConstraints",
    ] {
        assert!(pod.get(f).is_none(), "{f} without values: {pod}");
    }
    let docs = helm_template(&["--set-json", r#"imagePullSecrets=[{"name":"regcred"}]"#]);
    let d = one(&docs, "Deployment");
    assert_eq!(
        d["spec"]["template"]["spec"]["imagePullSecrets"],
        json!([{"name": "regcred"}])
    );
    let pod = pod_of(
        &parse_operator_args(&operator_args(d)),
        &zone(json!({"domain": "acme.example.com"})),
    );
    assert_eq!(
        pod["imagePullSecrets"],
        json!([{"name": "regcred"}]),
        "the nameservers pull with the operator's secrets"
    );

    let docs = helm_template(&[
        "--set-json",
        r#"imagePullSecrets=[{"name":"operator-only"}]"#,
        "--set-json",
        r#"server.placement={"imagePullSecrets":[{"name":"dns-pull"}],"nodeSelector":{"role":"dns"},"tolerations":[{"key":"dedicated","operator":"Equal","value":"dns","effect":"NoSchedule"}],"priorityClassName":"dns-critical","affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"kubernetes.io/os","operator":"In","values":["linux"]}]}]}}},"topologySpreadConstraints":[{"maxSkew":1,"topologyKey":"topology.kubernetes.io/zone","whenUnsatisfiable":"ScheduleAnyway"}]}"#,
        "--set-json",
        r#"server.placementProfiles={"edge":{"nodeSelector":{"role":"edge"}}}"#,
        "--set",
        "delegation.port=5353",
    ]);
    let d = one(&docs, "Deployment");
    let args = parse_operator_args(&operator_args(d));
    assert_eq!(args.delegation_port, 5353);
    let pod = pod_of(&args, &zone(json!({"domain": "acme.example.com"})));
    assert_eq!(pod["imagePullSecrets"], json!([{"name": "dns-pull"}]));
    assert_eq!(pod["nodeSelector"], json!({"role": "dns"}));
    assert_eq!(pod["tolerations"][0]["key"], "dedicated");
    assert_eq!(pod["priorityClassName"], "dns-critical");
    assert!(pod["affinity"]["nodeAffinity"].is_object());
    assert!(
        pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            .is_array()
    );
    assert_eq!(
        pod["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"]["zonegate.dev/nameserver"],
        "ns1"
    );
    // the operator pod keeps its own scheduling
    assert!(d["spec"]["template"]["spec"].get("nodeSelector").is_none());
    // a zone picks the edge profile
    let pod = pod_of(
        &args,
        &zone(json!({"domain": "acme.example.com", "nameservers": {"placement": "edge"}})),
    );
    assert_eq!(pod["nodeSelector"], json!({"role": "edge"}));
    assert_eq!(pod["priorityClassName"], "dns-critical");

    for bad in [
        r#"server.placement={"nodeSelecter":{}}"#,
        r#"server.placementProfiles={"Edge":{}}"#,
        r#"server.placement={"topologySpreadConstraints":[{"maxSkew":1}]}"#,
    ] {
        let (ok, _, err) = helm_template_result(&["--set-json", bad]);
        assert!(
            !ok && err.contains("values don't meet the specifications"),
            "{bad}: {err}"
        );
    }
}

/// The PrometheusRule and the Grafana dashboard render only when asked for, from the files the
/// tests below check.
#[test]
fn monitoring_objects_render_when_enabled() {
    let docs = helm_template(&[]);
    assert!(find(&docs, "PrometheusRule").is_empty());
    assert!(find(&docs, "ConfigMap").is_empty());
    let docs = helm_template(&[
        "--set",
        "metrics.prometheusRule.enabled=true",
        "--set",
        "metrics.grafanaDashboard.enabled=true",
    ]);
    let rule = one(&docs, "PrometheusRule");
    let file: Value =
        serde_saphyr::from_str(&read("charts/zonegate/files/prometheus-rules.yaml")).unwrap();
    assert_eq!(
        rule["spec"], file,
        "the PrometheusRule is files/prometheus-rules.yaml"
    );
    let cm = one(&docs, "ConfigMap");
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    let dash: Value = serde_json::from_str(cm["data"]["zonegate.json"].as_str().unwrap()).unwrap();
    assert_eq!(dash["uid"], "zonegate");
}

/// `promtool` from PATH (Debian's `prometheus` package; e2e/deps.sh installs it).
fn promtool() -> PathBuf {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/bin", "/usr/sbin"])
    {
        let p = Path::new(dir).join("promtool");
        if p.is_file() {
            return p;
        }
    }
    panic!("promtool not found: install it with e2e/deps.sh (Debian package prometheus)");
}

#[test]
fn alert_rules_load_in_promtool() {
    let (ok, out, err) = run(Command::new(promtool())
        .args(["check", "rules"])
        .arg(repo("charts/zonegate/files/prometheus-rules.yaml")));
    assert!(ok, "promtool check rules:\n{out}\n{err}");
    assert!(out.contains("SUCCESS"), "{out}");
}

/// Metric names a PromQL text uses (`zonegate_...`).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("zonegate_") {
        let start = i + at;
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
            end += 1;
        }
        let before_ok =
            start == 0 || !(b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_');
        if before_ok {
            out.insert(text[start..end].to_string());
        }
        i = end.max(start + 1);
    }
    out
}

/// Every metric an alert or a dashboard panel uses is exported by `zonegate serve` or
/// `zonegate operator`: the names are taken from their registries' own exposition (`# TYPE`
/// lines, with `_total` for counters and `_bucket`/`_sum`/`_count` for histograms), with one
/// sample in every labelled family (an empty family is not exposed).
#[test]
fn alerts_and_dashboard_use_only_exported_metrics() {
    use zonegate::metrics as sm;
    use zonegate::operator::metrics as om;
    let server = sm::ServerMetrics::new();
    let zone = sm::ZoneLabels { zone: "z.".into() };
    drop(server.queries.get_or_create(&sm::QueryLabels {
        zone: "z.".into(),
        qtype: "A".into(),
        rcode: "No Error".into(),
        transport: "udp",
    }));
    drop(server.records.get_or_create(&zone));
    drop(server.serial.get_or_create(&zone));
    drop(server.problems.get_or_create(&zone));
    drop(server.watch_failing.get_or_create(&sm::WatchLabels {
        namespace: "n".into(),
        kind: "Ingress".into(),
    }));
    drop(
        server
            .namespace_refused
            .get_or_create(&sm::NamespaceLabels {
                namespace: "n".into(),
            }),
    );
    drop(
        server
            .rrl_actions
            .get_or_create(&sm::RrlLabels { action: "dropped" }),
    );
    let operator = om::OperatorMetrics::new();
    drop(
        operator
            .reconciles
            .get_or_create(&om::ResultLabels { result: "ok" }),
    );
    operator.error("apply");
    operator.write("Deployment", "apply");
    drop(operator.zones.get_or_create(&om::ConditionLabels {
        condition: "Ready".into(),
        status: "True".into(),
    }));
    drop(operator.delegation_checks.get_or_create(&om::CheckLabels {
        result: "delegated",
    }));
    drop(
        operator
            .secondary_in_sync
            .get_or_create(&om::SecondaryLabels {
                namespace: "n".into(),
                zone: "z".into(),
                address: "192.0.2.1:53".into(),
            }),
    );
    let mut exported = BTreeSet::new();
    let texts = [server.encode(), operator.encode()];
    for text in &texts {
        for line in text.lines() {
            let mut f = line.split_whitespace();
            if (f.next(), f.next()) != (Some("#"), Some("TYPE")) {
                continue;
            }
            let (Some(name), Some(kind)) = (f.next(), f.next()) else {
                continue;
            };
            match kind {
                "counter" => {
                    exported.insert(format!("{name}_total"));
                }
                "histogram" => {
                    for s in ["_bucket", "_sum", "_count"] {
                        exported.insert(format!("{name}{s}"));
                    }
                }
                _ => {
                    exported.insert(name.to_string());
                }
            }
        }
    }
    assert!(exported.contains("zonegate_zones") && exported.contains("zonegate_operator_leader"));
    let rules: Value =
        serde_saphyr::from_str(&read("charts/zonegate/files/prometheus-rules.yaml")).unwrap();
    let dash: Value =
        serde_json::from_str(&read("charts/zonegate/files/grafana-dashboard.json")).unwrap();
    let mut used = Vec::new();
    for g in rules["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            used.push((
                format!("alert {}", r["alert"]),
                r["expr"].as_str().unwrap().to_string(),
            ));
        }
    }
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            used.push((
                format!("panel {}", p["title"]),
                t["expr"].as_str().unwrap().to_string(),
            ));
        }
    }
    assert!(used.len() > 20, "{used:?}");
    let mut missing = Vec::new();
    for (what, expr) in &used {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{what} uses no zonegate metric: {expr}");
        for n in names {
            if !exported.contains(&n) {
                missing.push(format!("{what}: {n}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "metrics nothing exports:\n{}",
        missing.join("\n")
    );
    // every alert is documented in docs/operations.md
    let ops = read("docs/operations.md");
    for g in rules["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            let name = r["alert"].as_str().unwrap();
            assert!(
                ops.contains(&format!("`{name}`")),
                "docs/operations.md does not explain {name}"
            );
        }
    }
}

/// Logs on a pipe (as in a pod, where `kubectl logs` reads them) carry no ANSI escape codes,
/// in text and JSON (colour needs a terminal: unit test in `zonegate::process`). `serve` is run
/// until it serves, then stopped with SIGTERM, and everything it wrote on stderr is checked.
#[test]
fn logs_on_a_pipe_have_no_colour_codes() {
    use std::io::BufRead;
    let dir = std::env::temp_dir().join(format!("zonegate-logs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        repo("config/samples/tenant/dnszone.yaml"),
        dir.join("zone.yaml"),
    )
    .unwrap();
    for format in ["text", "json"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_zonegate"))
            .args([
                "--log-format",
                format,
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--manifests",
            ])
            .arg(&dir)
            .env("RUST_LOG", "info")
            .env_remove("NO_COLOR")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("zonegate serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut stopped = false;
        while let Ok(line) =
            rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
        {
            let serving = line.contains("serving DNS");
            lines.push(line);
            if serving && !stopped {
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
                stopped = true;
            }
        }
        if !stopped {
            let _ = child.kill();
        }
        let _ = child.wait();
        let _ = reader.join();
        let all = lines.join("\n");
        assert!(stopped, "{format}: serve never said it serves:\n{all}");
        assert!(
            lines.len() >= 2,
            "{format}: expected the start and serving lines:\n{all}"
        );
        assert!(
            !all.contains('\u{1b}'),
            "{format}: escape codes on a pipe:\n{all:?}"
        );
        if format == "json" {
            for l in &lines {
                serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// On a terminal, text logs are coloured, and `NO_COLOR` turns that off: `zonegate serve` runs
/// under `script` (util-linux, Debian's essential bsdutils), which gives it a pseudo-terminal as
/// stderr, for 3 s.
#[test]
fn logs_on_a_terminal_are_coloured_unless_no_color_is_set() {
    let dir = std::env::temp_dir().join(format!("zonegate-tty-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        repo("config/samples/tenant/dnszone.yaml"),
        dir.join("zone.yaml"),
    )
    .unwrap();
    let cmd = format!(
        "timeout -s TERM 3 {} --log-format text serve --listen 127.0.0.1:0 --manifests {}",
        env!("CARGO_BIN_EXE_zonegate"),
        dir.display()
    );
    for no_color in [None, Some("1")] {
        let mut c = Command::new("script");
        c.args(["-qec", &cmd, "/dev/null"]).env("RUST_LOG", "info");
        match no_color {
            Some(v) => c.env("NO_COLOR", v),
            None => c.env_remove("NO_COLOR"),
        };
        let (_, out, err) = run(&mut c);
        assert!(
            out.contains("zones loaded: 1 zone: acme.example.com."),
            "NO_COLOR={no_color:?}: no start-up line on the terminal:\n{out:?}\n{err}"
        );
        assert_eq!(
            out.contains('\u{1b}'),
            no_color.is_none(),
            "NO_COLOR={no_color:?}: colour codes on a terminal should be {}:\n{out:?}",
            no_color.is_none()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `zonegate check --format json` and `--format github` name file, line, object and field.
#[test]
fn check_reports_problems_for_ci_systems() {
    let dir = std::env::temp_dir().join(format!("zonegate-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("all.yaml"),
        "# rendered\napiVersion: v1\nkind: Namespace\nmetadata: {name: acme}\n---\n\
         apiVersion: zonegate.dev/v1alpha1\nkind: DNSZone\nmetadata: {name: acme, namespace: acme}\n\
         spec:\n  domain: Bad_Domain\n",
    )
    .unwrap();
    let run_check = |format: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_zonegate"))
            .args(["check", "--format", format, "--manifests"])
            .arg(&dir)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{format}: exit 1 on a problem");
        String::from_utf8(out.stdout).unwrap()
    };
    let v: Value = serde_json::from_str(&run_check("json")).expect("check --format json is JSON");
    assert_eq!(v["ok"], false);
    let p = &v["problems"][0];
    assert_eq!(p["file"], dir.join("all.yaml").display().to_string());
    assert_eq!(p["line"], 6, "the DNSZone's document starts on line 6: {p}");
    assert_eq!(p["document"], 2);
    assert_eq!(p["object"], "DNSZone acme/acme");
    assert_eq!(p["field"], "spec.domain");
    assert_eq!(p["severity"], "error");
    assert!(p["message"].as_str().unwrap().contains("Bad_Domain"), "{p}");
    let gh = run_check("github");
    let first = gh.lines().next().unwrap();
    assert!(
        first.starts_with(&format!(
            "::error file={},line=6,title=DNSZone acme/acme::spec.domain: ",
            dir.join("all.yaml").display()
        )),
        "{gh}"
    );
    let text = run_check("text");
    assert!(
        text.starts_with("error: all.yaml#2: DNSZone acme/acme: spec.domain: "),
        "{text}"
    );
    assert!(
        text.contains("1 problem in 1 file (0 zones compiled)"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `zonegate --help` describes `crd` as what it prints: both CRDs.
#[test]
fn help_describes_crd_as_both_crds() {
    let (ok, out, err) = run(Command::new(env!("CARGO_BIN_EXE_zonegate")).arg("--help"));
    assert!(ok, "{err}");
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("crd "))
        .unwrap_or_else(|| panic!("no crd command in --help:\n{out}"));
    assert!(line.contains("DNSZone and DNSZoneGrant"), "{line}");
    let (ok, crds, err) = run(Command::new(env!("CARGO_BIN_EXE_zonegate")).arg("crd"));
    assert!(ok, "{err}");
    for kind in ["kind: DNSZone\n", "kind: DNSZoneGrant\n"] {
        assert!(crds.contains(kind), "zonegate crd prints no {kind}");
    }
}

/// Every flag of `zonegate operator` reaches the operator from a chart value: over two renders
/// with every optional value set (`delegation.resolver` and `delegation.parent` exclude each
/// other), the chart's Deployment passes each flag, or sets the environment variable the flag
/// reads. Only `--kubeconfig` is left out: pods use their in-cluster configuration.
#[test]
fn the_chart_sets_every_operator_flag() {
    use clap::Args;
    let cmd = zonegate::operator::OperatorArgs::augment_args(clap::Command::new("operator"));
    let common = [
        "--set",
        "server.pullPolicy=Always",
        "--set-json",
        r#"domainPolicy={"team-*":["{namespace}.apps.example.com"]}"#,
        "--set",
        "delegation.port=5353",
        "--set",
        "dnssec.rolloverHold=3600",
        "--set",
        "secondaries.checkInterval=30",
        "--set",
        "secondaries.timeout=3",
        "--set",
        "replicas=2",
        "--set-json",
        r#"server.placement={"nodeSelector":{"role":"dns"}}"#,
        "--set-json",
        r#"server.placementProfiles={"edge":{"nodeSelector":{"role":"edge"}}}"#,
        "--set-json",
        r#"watchNamespaces=["team-a"]"#,
    ];
    let mut set_flags = BTreeSet::new();
    let mut set_env = BTreeSet::new();
    for extra in [
        ["--set", "delegation.resolver=192.0.2.53"],
        ["--set", "delegation.parent=192.0.2.54:53"],
    ] {
        let mut args: Vec<&str> = common.to_vec();
        args.extend(extra);
        let docs = helm_template(&args);
        let d = one(&docs, "Deployment");
        for a in operator_args(d) {
            if let Some(flag) = a.strip_prefix("--") {
                set_flags.insert(flag.split('=').next().unwrap().to_string());
            }
        }
        for e in d["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .into_iter()
            .flatten()
        {
            set_env.insert(e["name"].as_str().unwrap().to_string());
        }
    }
    let mut missing = Vec::new();
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if long == "kubeconfig" || long == "help" {
            continue;
        }
        let by_env = arg
            .get_env()
            .is_some_and(|e| set_env.contains(e.to_str().unwrap()));
        if !set_flags.contains(long) && !by_env {
            missing.push(long.to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "operator flags no chart value sets: {missing:?} (set: {set_flags:?}, env: {set_env:?})"
    );
}
