#!/usr/bin/env bash
# The Helm chart on a real apiserver: installs charts/zonegate (two replicas: leader election and
# its Lease Role) into the e2e control plane, then runs the zonegate binary exactly as the chart's
# Deployment would (its args, the chart's ServiceAccount token, POD_NAMESPACE) and checks that,
# with nothing but the chart's RBAC, the operator reconciles the sample tenant of config/samples:
# it must be able to create every object of a zone, including the Roles and the
# ClusterRoleBinding that grant the nameservers their read access (Kubernetes refuses grants the
# operator does not hold itself). Finally uninstalls and cleans up.
#
# The e2e control plane has no kubelet: the chart's own pods never start, hence the binary runs
# here. Needs a running cluster (KUBECONFIG and ZONEGATE_E2E_BIN, as `e2e/cluster env` prints)
# and no other operator reconciling it at the same time.
#
#   e2e/helm.sh           (ZONEGATE_HELM: helm, default `e2e/tools.sh helm`;
#                          ZONEGATE_BIN: zonegate, default target/debug/zonegate)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
log() { printf '[helm-e2e] %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

: "${KUBECONFIG:?KUBECONFIG is not set: start a cluster (e2e/cluster up) and source its env}"
: "${ZONEGATE_E2E_BIN:?ZONEGATE_E2E_BIN is not set: source the env file of e2e/cluster up}"
HELM=${ZONEGATE_HELM:-$("$HERE/tools.sh" helm)}
BIN=${ZONEGATE_BIN:-$REPO/target/debug/zonegate}
[ -x "$BIN" ] || die "no zonegate binary at $BIN (cargo build, or set ZONEGATE_BIN)"
export KUBECONFIG
k() { "$ZONEGATE_E2E_BIN/kubectl" "$@"; }

NS=zonegate-system
RELEASE=zonegate
CHART=${ZONEGATE_CHART:-$REPO/charts/zonegate}   # another chart directory (e.g. a mutated copy)
work=$(mktemp -d)
op=""
cleanup() {
  [ -z "$op" ] || { kill "$op" 2>/dev/null || true; wait "$op" 2>/dev/null || true; }
  k delete -k "$REPO/config/samples" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  "$HELM" uninstall "$RELEASE" -n "$NS" >/dev/null 2>&1 || true
  k delete namespace "$NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  k delete clusterrole zonegate-gateway-reader --ignore-not-found >/dev/null 2>&1 || true
  k delete clusterrolebinding zonegate.acme.acme.gateways --ignore-not-found >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local t=$1 what=$2; shift 2
  for _ in $(seq $((t * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  [ -z "$op" ] || { log "operator log:"; tail -n 40 "$work/operator.log" >&2; }
  # what the apiserver holds, so a failure says where the operator stopped
  k get dnszones.zonegate.dev -A -o yaml >&2 2>/dev/null || true
  k get events -A --sort-by=.lastTimestamp 2>/dev/null | tail -n 20 >&2 || true
  die "$what (after ${t}s)"
}

# a namespace of an earlier run may still be terminating
gone() { ! k get namespace "$1" >/dev/null 2>&1; }
for ns in "$NS" acme shop; do
  [ "$(k get namespace "$ns" -o jsonpath='{.status.phase}' 2>/dev/null)" != Terminating ] ||
    wait_for 120 "namespace $ns is still terminating" gone "$ns"
done

# --- CRD upgrade after a Helm install, by the command docs/install.md documents ----------------
# Helm creates a chart's crds/ with field manager `helm` and never upgrades them; a plain
# `kubectl apply --server-side` then conflicts with `helm` on .spec.versions. Tested on a chart
# holding only zonegate's CRDs, moved to a throwaway API group (the real ones are in use).
upgrade_cmd=$(grep -o 'kubectl apply --server-side[^`]*-f charts/zonegate/crds/' "$REPO/docs/install.md" | head -1)
[ -n "$upgrade_cmd" ] || die "docs/install.md documents no CRD upgrade command"
group="crdup$$.test.zonegate.dev"
crdchart="$work/crdchart"
mkdir -p "$crdchart/crds" "$work/crds-new"
printf 'apiVersion: v2\nname: zonegate-crds\nversion: 0.1.0\n' >"$crdchart/Chart.yaml"
for f in "$REPO"/charts/zonegate/crds/*.yaml; do
  b=$(basename "$f")
  k create --dry-run=client -o json -f "$f" | python3 -c '
import json, sys
group, out_old, out_new = sys.argv[1:]
crd = json.load(sys.stdin)
crd["spec"]["group"] = group
crd["metadata"]["name"] = crd["spec"]["names"]["plural"] + "." + group
json.dump(crd, open(out_old, "w"))
# the next release changes the CRD where helm owns it: a description and a printer column
v = crd["spec"]["versions"][0]
v["schema"]["openAPIV3Schema"]["description"] = "changed by the upgrade"
v.setdefault("additionalPrinterColumns", []).append({"name": "Upgraded", "type": "string", "jsonPath": ".metadata.name", "priority": 1})
json.dump(crd, open(out_new, "w"))
' "$group" "$crdchart/crds/${b%.yaml}.json" "$work/crds-new/${b%.yaml}.json"
done
crdrelease="crdup$$"
# The throwaway CRDs have the real ones' names (plural dnszones, short name dz): until they are
# gone, kubectl may resolve `dnszone` to them, so they are waited for and the rest of this
# script names resources with their group (dnszones.zonegate.dev).
cleanup_crds() {
  "$HELM" uninstall "$crdrelease" -n default >/dev/null 2>&1 || true
  for f in "$work"/crds-new/*.json; do k delete -f "$f" --ignore-not-found --timeout=60s >/dev/null 2>&1 || true; done
}
trap 'cleanup_crds; cleanup' EXIT
log "CRD upgrade: helm install of the CRDs, then: $upgrade_cmd"
"$HELM" install "$crdrelease" "$crdchart" -n default >/dev/null
for f in "$work"/crds-new/*.json; do
  n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["metadata"]["name"])' "$f")
  k get crd "$n" -o jsonpath='{.metadata.managedFields[*].manager}' | grep -qw helm ||
    die "helm did not install CRD $n"
  # without --force-conflicts: the conflict with helm the documented command must get past
  if k apply --server-side -f "$f" >"$work/plain.out" 2>&1; then
    die "a plain server-side apply after helm install no longer conflicts: recheck docs/install.md"
  fi
  grep -q 'conflict' "$work/plain.out" || { cat "$work/plain.out" >&2; die "unexpected error from a plain apply"; }
done
# the documented command, on the changed CRDs (kubectl is this script's `k`)
upgrade_args=${upgrade_cmd#kubectl }
upgrade_args=${upgrade_args%charts/zonegate/crds/}
# shellcheck disable=SC2086
k $upgrade_args "$work/crds-new/" >"$work/upgrade.out" 2>&1 ||
  { cat "$work/upgrade.out" >&2; die "the documented CRD upgrade fails: $upgrade_cmd"; }
! grep -qi warning "$work/upgrade.out" || { cat "$work/upgrade.out" >&2; die "the CRD upgrade prints warnings"; }
for f in "$work"/crds-new/*.json; do
  n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["metadata"]["name"])' "$f")
  [ "$(k get crd "$n" -o jsonpath='{.spec.versions[0].additionalPrinterColumns[?(@.name=="Upgraded")].priority}')" = 1 ] ||
    die "the upgrade did not change CRD $n"
done
cleanup_crds
log "ok: CRDs installed by Helm, upgraded with: $upgrade_cmd"

log "helm install (replicas=2) with $("$HELM" version --short 2>/dev/null)"
# non-canonical quantities (the apiserver stores 1Gi and 50m) and a placement for the nameservers
"$HELM" install "$RELEASE" "$CHART" -n "$NS" --create-namespace --set replicas=2 \
  --set server.nodeSpread=preferred \
  --set server.resources.limits.memory=1024Mi --set server.resources.requests.cpu=0.05 \
  --set-json 'imagePullSecrets=[{"name":"regcred"}]' \
  --set-json 'server.placement={"nodeSelector":{"role":"dns"},"tolerations":[{"key":"dedicated","operator":"Equal","value":"dns","effect":"NoSchedule"}],"priorityClassName":"dns-critical","affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"kubernetes.io/os","operator":"In","values":["linux"]}]}]}}},"topologySpreadConstraints":[{"maxSkew":1,"topologyKey":"topology.kubernetes.io/zone","whenUnsatisfiable":"ScheduleAnyway"}]}' \
  --set-json 'server.placementProfiles={"edge":{"nodeSelector":{"role":"edge"}}}' \
  >/dev/null
for obj in serviceaccount/zonegate-operator deployment/zonegate-operator service/zonegate-operator \
  role/zonegate-operator-lease rolebinding/zonegate-operator-lease; do
  k -n "$NS" get "$obj" >/dev/null || die "the release has no $obj"
done
k get clusterrole/zonegate-operator clusterrolebinding/zonegate-operator >/dev/null
k get crd dnszones.zonegate.dev dnszonegrants.zonegate.dev >/dev/null
"$HELM" status "$RELEASE" -n "$NS" | grep 'STATUS: deployed' >/dev/null || die "release not deployed"

# The Deployment's args, as the pod would get them.
k -n "$NS" get deployment zonegate-operator -o jsonpath='{.spec.template.spec.containers[0].args}' >"$work/args.json"
mapfile -t ARGS < <(python3 - "$work/args.json" <<'PY'
import json, sys
args = json.load(open(sys.argv[1]))
assert args[0] == "operator", args
for a in args[1:]:
    # no kubelet here: metrics on a free loopback port, and no delegation checks
    if a.startswith("--http=") or a.startswith("--delegation-check-interval="):
        continue
    print(a)
PY
)
printf '%s\n' "${ARGS[@]}" | grep -qx -- '--leader-elect=true' || die "replicas=2 must elect a leader"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# A kubeconfig with nothing but the chart's ServiceAccount token.
token=$(k -n "$NS" create token zonegate-operator --duration=1h)
server=$(k config view --minify -o jsonpath='{.clusters[0].cluster.server}')
k config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d >"$work/ca.crt"
cat >"$work/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: "$server", certificate-authority: "$work/ca.crt"}}]
users: [{name: operator, user: {token: "$token"}}]
contexts: [{name: operator, context: {cluster: e2e, user: operator}}]
current-context: operator
EOF

log "running the operator as system:serviceaccount:$NS:zonegate-operator: ${ARGS[*]}"
POD_NAMESPACE=$NS POD_NAME=helm-e2e RUST_LOG=info "$BIN" operator "${ARGS[@]}" \
  --http "127.0.0.1:$port" --delegation-check-interval 0 --kubeconfig "$work/kubeconfig" \
  >"$work/operator.log" 2>&1 &
op=$!
wait_for 60 "the operator is not ready" curl -fsS "http://127.0.0.1:$port/readyz"
wait_for 60 "the operator holds no Lease" \
  bash -c "curl -fsS http://127.0.0.1:$port/metrics | grep -qx 'zonegate_operator_leader 1'"
k -n "$NS" get lease zonegate-operator -o jsonpath='{.spec.holderIdentity}' | grep -q helm-e2e ||
  die "the Lease zonegate-operator is not held by this operator"

log "applying config/samples (DNSZone acme/acme reading namespaces acme and shop)"
k apply -k "$REPO/config/samples" >/dev/null
accepted() { [ "$(k -n acme get dnszones.zonegate.dev acme -o jsonpath='{.status.conditions[?(@.type=="Accepted")].status}')" = True ]; }
wait_for 60 "DNSZone acme/acme is not Accepted" accepted
for obj in serviceaccount/acme-dns configmap/acme-serial role/acme-dns rolebinding/acme-dns \
  deployment/acme-ns1 deployment/acme-ns2 service/acme-ns1 service/acme-ns2 poddisruptionbudget/acme-dns; do
  wait_for 30 "the operator did not create $obj in acme" k -n acme get "$obj"
done
# the grant in shop: read access there (a Role the operator may only create because it holds it)
wait_for 30 "no Role acme-dns.acme in shop" k -n shop get role/acme-dns.acme rolebinding/acme-dns.acme
k -n shop get role acme-dns.acme -o jsonpath='{.rules}' | grep -q ingresses || die "shop's Role does not grant Ingresses"
# routes are read, so the Gateway reader ClusterRole and the zone's binding to it
wait_for 30 "no ClusterRole zonegate-gateway-reader" k get clusterrole zonegate-gateway-reader
wait_for 30 "no ClusterRoleBinding zonegate.acme.acme.gateways" k get clusterrolebinding zonegate.acme.acme.gateways
# the nameservers' ServiceAccount can do what serve --zone needs
sa=system:serviceaccount:acme:acme-dns
for check in "-n acme list ingresses.networking.k8s.io" "-n acme watch dnszones.zonegate.dev" \
  "-n acme update configmap/acme-serial" "-n shop list ingresses.networking.k8s.io" \
  "-n shop list dnszonegrants.zonegate.dev" "-n infra list gateways.gateway.networking.k8s.io"; do
  # shellcheck disable=SC2086
  [ "$(k auth can-i --as "$sa" $check)" = yes ] || die "$sa cannot: $check"
done
[ "$(k auth can-i --as "$sa" -n shop list services)" = no ] || die "$sa may read Services in shop, which the grant does not allow"

# the chart's nameserver placement reached the owned Deployments
tpl() { k -n acme get deployment acme-ns1 -o jsonpath="{.spec.template.spec.$1}"; }
[ "$(tpl 'nodeSelector.role')" = dns ] || die "acme-ns1 lacks server.placement's nodeSelector"
[ "$(tpl 'tolerations[0].key')" = dedicated ] || die "acme-ns1 lacks server.placement's tolerations"
[ "$(tpl 'imagePullSecrets[0].name')" = regcred ] || die "acme-ns1 lacks the chart's imagePullSecrets"
[ "$(tpl 'topologySpreadConstraints[0].labelSelector.matchLabels.zonegate\.dev/nameserver')" = ns1 ] ||
  die "acme-ns1's topology spread constraint does not select its own pods"
[ "$(tpl 'priorityClassName')" = dns-critical ] || die "acme-ns1 lacks server.placement's priorityClassName"
[ "$(tpl 'affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key')" = kubernetes.io/os ] ||
  die "acme-ns1 lacks server.placement's node affinity"
[ -n "$(tpl 'affinity.podAntiAffinity')" ] || die "acme-ns1 lost the nameserver spread (podAntiAffinity) next to the chart's affinity"
[ "$(tpl 'containers[0].resources.limits.memory')" = 1Gi ] || die "the apiserver did not store 1024Mi as 1Gi"
[ "$(tpl 'containers[0].resources.requests.cpu')" = 50m ] || die "the apiserver did not store 0.05 as 50m"

# Converged with non-canonical quantities: a restarted operator (no memory of its applies) finds
# nothing to write to the Deployments.
writes() { curl -fsS "http://127.0.0.1:$1/metrics" | awk '/^zonegate_operator_api_writes_total\{kind="Deployment",verb="apply"\}/ {print $2}'; }
kill "$op"; wait "$op" 2>/dev/null || true
port2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
POD_NAMESPACE=$NS POD_NAME=helm-e2e-2 RUST_LOG=info "$BIN" operator "${ARGS[@]}" \
  --http "127.0.0.1:$port2" --delegation-check-interval 0 --kubeconfig "$work/kubeconfig" \
  >>"$work/operator.log" 2>&1 &
op=$!
wait_for 60 "the restarted operator holds no Lease" \
  bash -c "curl -fsS http://127.0.0.1:$port2/metrics | grep -qx 'zonegate_operator_leader 1'"
reconciled() { curl -fsS "http://127.0.0.1:$port2/metrics" | grep -q '^zonegate_operator_reconciles_total{result="ok"} [1-9]'; }
wait_for 60 "the restarted operator reconciled nothing" reconciled
sleep 5
[ -z "$(writes "$port2")" ] || [ "$(writes "$port2")" = 0 ] ||
  die "the restarted operator rewrote converged Deployments $(writes "$port2") times (quantities compared as text?)"

if grep -qi forbidden "$work/operator.log"; then
  grep -i forbidden "$work/operator.log" | head -5 >&2
  die "the operator was refused something with the chart's RBAC"
fi
# a zone picks a profile of server.placementProfiles: its nodeSelector, the rest of the default
k -n acme patch dnszones.zonegate.dev acme --type=merge -p '{"spec":{"nameservers":{"placement":"edge"}}}' >/dev/null
edge() { [ "$(tpl 'nodeSelector.role')" = edge ]; }
wait_for 30 "acme-ns1 did not get the edge profile's nodeSelector" edge
[ "$(tpl 'priorityClassName')" = dns-critical ] || die "the edge profile dropped the default priorityClassName"
[ "$(tpl 'tolerations[0].key')" = dedicated ] || die "the edge profile dropped the default tolerations"
log "ok: with the chart's RBAC the operator elected itself, reconciled the sample zone, granted its nameservers their access, gave them the chart's placement (and a zone its profile), and wrote nothing more after a restart"
