#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager and kubectl from the Go module proxy at
# pinned versions, once, into a cache outside the repository, and fetches the third-party CRDs
# our sources read. Prints the bin directory on its last line. Safe to run repeatedly: a
# completed build is reused.
#
#   e2e/build-control-plane.sh [--node]    --node: also kubelet and kube-scheduler (e2e/node)
set -euo pipefail

NODE=0
case ${1:-} in
  --node) NODE=1 ;;
  "") ;;
  *) echo "usage: $0 [--node]" >&2; exit 2 ;;
esac

K8S_VERSION=${K8S_VERSION:-v1.36.3}        # matches k8s-openapi feature v1_36
ETCD_VERSION=${ETCD_VERSION:-v3.6.8}       # the etcd that k8s.io/kubernetes@$K8S_VERSION requires
GATEWAY_API_VERSION=${GATEWAY_API_VERSION:-v1.7.0}
EXTERNAL_DNS_VERSION=${EXTERNAL_DNS_VERSION:-v0.23.0}
# The proxy refuses `go list -m -versions` (403) for both github.com/nginx/kubernetes-ingress and
# github.com/nginxinc/kubernetes-ingress, but serves explicit versions of the v1 line; v1.12.5
# declares `module github.com/nginxinc/kubernetes-ingress` in its go.mod, so we fetch that path.
# Its VirtualServer CRD (k8s.nginx.org/v1) has spec.host and status.externalEndpoints, which is
# all our source reads. Newer majors (v2+, no /vN module path) are not on the proxy.
NGINX_INGRESS_MODULE=${NGINX_INGRESS_MODULE:-github.com/nginxinc/kubernetes-ingress}
NGINX_INGRESS_VERSION=${NGINX_INGRESS_VERSION:-v1.12.5}

CACHE_ROOT=${ZONEGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zonegate}
OUT="$CACHE_ROOT/e2e/k8s-$K8S_VERSION-etcd-$ETCD_VERSION"
BIN="$OUT/bin"
CRDS="$CACHE_ROOT/e2e/crds-gw-$GATEWAY_API_VERSION-edns-$EXTERNAL_DNS_VERSION-nginx-$NGINX_INGRESS_VERSION"

log() { printf '[build-control-plane] %s\n' "$*" >&2; }

work="" fetch=""          # temporary directories, removed on exit
trap 'rm -rf ${work:+"$work"} ${fetch:+"$fetch"}' EXIT

command -v go >/dev/null || { log "go is required (the project's machines ship it)"; exit 1; }

# One build at a time per cache: concurrent `e2e/cluster up` runs wait here for the first one.
mkdir -p "$CACHE_ROOT/e2e"
exec 9>"$CACHE_ROOT/e2e/.lock"
flock -n 9 || { log "another build-control-plane.sh holds $CACHE_ROOT/e2e/.lock; waiting"; flock 9; }

# wrapper_module: a throwaway module in $work that requires k8s.io/kubernetes and etcd at the
# pinned versions, with every staging module of that exact tag pinned to its published v0.x.y.
wrapper_module() {
  work=$(mktemp -d)
  minor=${K8S_VERSION#v1.}            # 36.3
  staging="v0.$minor"                  # v0.36.3
  cd "$work"
  modfile="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$K8S_VERSION.mod"
  [ -f "$modfile" ] || go mod download -json "k8s.io/kubernetes@$K8S_VERSION" >/dev/null
  {
    echo "module zonegate.dev/e2e-control-plane"
    echo
    echo "go 1.26"
    echo
    echo "require ("
    echo "  k8s.io/kubernetes $K8S_VERSION"
    echo "  go.etcd.io/etcd/server/v3 $ETCD_VERSION"
    echo ")"
    echo
    echo "replace ("
    sed -n '/^replace (/,/^)/p' "$modfile" | grep -o 'k8s.io/[a-z0-9-]* => ./staging' | \
      awk -v v="$staging" '{print "  " $1 " => " $1 " " v}'
    echo ")"
  } > go.mod
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
    -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor%%.*} \
    -X k8s.io/component-base/version.gitTreeState=clean"
  export GOFLAGS="-mod=mod -buildvcs=false"
  mkdir -p "$BIN"
}

build_k8s() { # build_k8s CMD...: k8s.io/kubernetes/cmd/CMD into $BIN
  local cmd
  for cmd in "$@"; do
    log "go build k8s.io/kubernetes/cmd/$cmd ($(date +%T))"
    go build -trimpath -ldflags "$ldflags" -o "$BIN/$cmd" "k8s.io/kubernetes/cmd/$cmd"
  done
}

if [ ! -f "$BIN/.complete" ]; then
  log "building Kubernetes $K8S_VERSION and etcd $ETCD_VERSION into $BIN (first time only; ~10-30 min on 2 cores) ($(date +%T))"
  wrapper_module
  build_k8s kube-apiserver kube-controller-manager kubectl
  log "go build go.etcd.io/etcd/server/v3 ($(date +%T))"
  go build -trimpath -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3
  touch "$BIN/.complete"
  log "done ($(date +%T))"
fi

if [ "$NODE" = 1 ] && [ ! -f "$BIN/.complete-node" ]; then
  log "building kubelet and kube-scheduler $K8S_VERSION into $BIN (first time only; ~3-6 min on 2 cores) ($(date +%T))"
  [ -n "$work" ] || wrapper_module
  build_k8s kubelet kube-scheduler
  touch "$BIN/.complete-node"
  log "done ($(date +%T))"
fi

# Prints a directory holding the files of Go module $1 (path@version), fetched through the Go
# module proxy and checked against the checksum database. `go mod download` still fetches and
# verifies the zip of a module whose go.mod asks for a newer Go than ours (gateway-api v1.7.0 and
# external-dns v0.23.0 say `go 1.27.0`; GOTOOLCHAIN=local) but then reports an error and no Dir.
# We only need YAML files from it, so in that case we unpack the verified zip ourselves.
dl() {
  local json dir zip err out
  json=$(go mod download -json "$1") || true
  field() { sed -n 's/^[[:space:]]*"'"$1"'": "\(.*\)",\{0,1\}$/\1/p' <<<"$json" | head -1; }
  dir=$(field Dir); zip=$(field Zip); err=$(field Error)
  if [ -n "$dir" ] && [ -d "$dir" ]; then echo "$dir"; return 0; fi
  if [ -n "$zip" ] && [ -f "$zip" ] && [ -f "${zip%.zip}.ziphash" ]; then
    [ -z "$err" ] || log "note: $err (only reading files from its verified zip)"
    out="$fetch/$(printf '%s' "$1" | tr '/@' '__')"
    python3 -m zipfile -e "$zip" "$out" >&2
    echo "$out/$1"     # module zips hold one top-level directory, path@version/
    return 0
  fi
  log "cannot fetch Go module $1 from the module proxy: ${err:-no Dir or Zip in go mod download output}"
  return 1
}

if [ ! -f "$CRDS/.complete" ]; then
  log "fetching third-party CRDs into $CRDS"
  command -v python3 >/dev/null || { log "python3 is required (e2e/deps.sh installs it)"; exit 1; }
  fetch=$(mktemp -d)
  rm -rf "$CRDS"
  mkdir -p "$CRDS"
  gw=$(dl "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION")
  # experimental is a superset of standard. Only CRDs: drop kustomization.yaml and the
  # ValidatingAdmissionPolicy that guards against downgrades (gateway.networking.k8s.io_vap_*).
  for f in "$gw/config/crd/experimental/"*.yaml; do
    if grep -q '^kind: CustomResourceDefinition' "$f"; then cp "$f" "$CRDS/"; fi
  done
  ls "$CRDS"/gateway.networking.k8s.io_httproutes.yaml >/dev/null \
    || { log "HTTPRoute CRD not found in gateway-api $GATEWAY_API_VERSION"; exit 1; }
  edns=$(dl "sigs.k8s.io/external-dns@$EXTERNAL_DNS_VERSION")
  f=""
  for c in "$edns/config/crd/standard/dnsendpoints.externaldns.k8s.io.yaml" \
           "$edns/charts/external-dns/crds/dnsendpoints.externaldns.k8s.io.yaml" \
           "$edns/docs/contributing/crd-source/crd-manifest.yaml"; do
    if [ -f "$c" ]; then f=$c; break; fi
  done
  [ -n "$f" ] || { log "DNSEndpoint CRD not found in external-dns $EXTERNAL_DNS_VERSION"; exit 1; }
  cp "$f" "$CRDS/externaldns.k8s.io_dnsendpoints.yaml"
  ng=$(dl "$NGINX_INGRESS_MODULE@$NGINX_INGRESS_VERSION")
  f="$ng/deployments/common/crds/k8s.nginx.org_virtualservers.yaml"
  [ -f "$f" ] || { log "VirtualServer CRD not found in $NGINX_INGRESS_MODULE $NGINX_INGRESS_VERSION"; exit 1; }
  cp "$f" "$CRDS/k8s.nginx.org_virtualservers.yaml"
  chmod u+w "$CRDS"/*.yaml
  touch "$CRDS/.complete"
  log "third-party CRDs: $(cd "$CRDS" && ls *.yaml | tr '\n' ' ')"
fi

echo "CRDS=$CRDS"
echo "BIN=$BIN"
