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
  die "$what (after ${t}s)"
}

# a namespace of an earlier run may still be terminating
gone() { ! k get namespace "$1" >/dev/null 2>&1; }
for ns in "$NS" acme shop; do
  [ "$(k get namespace "$ns" -o jsonpath='{.status.phase}' 2>/dev/null)" != Terminating ] ||
    wait_for 120 "namespace $ns is still terminating" gone "$ns"
done

log "helm install (replicas=2) with $("$HELM" version --short 2>/dev/null)"
"$HELM" install "$RELEASE" "$CHART" -n "$NS" --create-namespace --set replicas=2 \
  --set server.nodeSpread=preferred >/dev/null
for obj in serviceaccount/zonegate-operator deployment/zonegate-operator service/zonegate-operator \
  role/zonegate-operator-lease rolebinding/zonegate-operator-lease; do
  k -n "$NS" get "$obj" >/dev/null || die "the release has no $obj"
done
k get clusterrole/zonegate-operator clusterrolebinding/zonegate-operator >/dev/null
k get crd dnszones.zonegate.dev dnszonegrants.zonegate.dev >/dev/null
"$HELM" status "$RELEASE" -n "$NS" | grep -q 'STATUS: deployed' || die "release not deployed"

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
accepted() { [ "$(k -n acme get dnszone acme -o jsonpath='{.status.conditions[?(@.type=="Accepted")].status}')" = True ]; }
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

if grep -qi forbidden "$work/operator.log"; then
  grep -i forbidden "$work/operator.log" | head -5 >&2
  die "the operator was refused something with the chart's RBAC"
fi
log "ok: with the chart's RBAC the operator elected itself, reconciled the sample zone and granted its nameservers their access"
