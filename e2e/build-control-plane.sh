#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager and kubectl from the Go module proxy at
# pinned versions, once, into a cache outside the repository, and fetches the third-party CRDs
# our sources read. Prints the bin directory on its last line. Safe to run repeatedly: a
# completed build is reused.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.36.3}        # matches k8s-openapi feature v1_36
ETCD_VERSION=${ETCD_VERSION:-v3.6.8}       # the etcd that k8s.io/kubernetes@$K8S_VERSION requires
GATEWAY_API_VERSION=${GATEWAY_API_VERSION:-v1.7.0}
EXTERNAL_DNS_VERSION=${EXTERNAL_DNS_VERSION:-v0.23.0}
NGINX_INGRESS_VERSION=${NGINX_INGRESS_VERSION:-v1.12.5}

CACHE_ROOT=${ZONEGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zonegate}
OUT="$CACHE_ROOT/e2e/k8s-$K8S_VERSION-etcd-$ETCD_VERSION"
BIN="$OUT/bin"
CRDS="$CACHE_ROOT/e2e/crds-gw-$GATEWAY_API_VERSION-edns-$EXTERNAL_DNS_VERSION-nginx-$NGINX_INGRESS_VERSION"

log() { printf '[build-control-plane] %s\n' "$*" >&2; }

command -v go >/dev/null || { log "go is required (the project's machines ship it)"; exit 1; }

if [ ! -f "$BIN/.complete" ]; then
  log "building Kubernetes $K8S_VERSION and etcd $ETCD_VERSION into $BIN (first time only; ~15-30 min on 2 cores)"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
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
    # every staging module of that exact tag, pinned to its published v0.x.y
    sed -n '/^replace (/,/^)/p' "$modfile" | grep -o 'k8s.io/[a-z0-9-]* => ./staging' | \
      awk -v v="$staging" '{print "  " $1 " => " $1 " " v}'
    echo ")"
  } > go.mod
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
    -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor%%.*} \
    -X k8s.io/component-base/version.gitTreeState=clean"
  export GOFLAGS="-mod=mod -buildvcs=false"
  mkdir -p "$BIN"
  for cmd in kube-apiserver kube-controller-manager kubectl; do
    log "go build k8s.io/kubernetes/cmd/$cmd ($(date +%T))"
    go build -trimpath -ldflags "$ldflags" -o "$BIN/$cmd" "k8s.io/kubernetes/cmd/$cmd"
  done
  log "go build go.etcd.io/etcd/server/v3 ($(date +%T))"
  go build -trimpath -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3
  touch "$BIN/.complete"
  log "done ($(date +%T))"
fi

if [ ! -f "$CRDS/.complete" ]; then
  log "fetching third-party CRDs into $CRDS"
  mkdir -p "$CRDS"
  dl() { go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'; }
  gw=$(dl "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION")
  cp "$gw/config/crd/experimental/"*.yaml "$CRDS/"   # experimental is a superset of standard
  rm -f "$CRDS/kustomization.yaml"
  edns=$(dl "sigs.k8s.io/external-dns@$EXTERNAL_DNS_VERSION")
  f=$(find "$edns" -name '*dnsendpoint*.yaml' -path '*crd*' | head -1)
  [ -n "$f" ] || { log "DNSEndpoint CRD not found in external-dns $EXTERNAL_DNS_VERSION"; exit 1; }
  cp "$f" "$CRDS/externaldns.k8s.io_dnsendpoints.yaml"
  ng=$(dl "github.com/nginx/kubernetes-ingress@$NGINX_INGRESS_VERSION")
  f=$(find "$ng" -name 'k8s.nginx.org_virtualservers.yaml' | head -1)
  [ -n "$f" ] || { log "VirtualServer CRD not found in nginx kubernetes-ingress $NGINX_INGRESS_VERSION"; exit 1; }
  cp "$f" "$CRDS/k8s.nginx.org_virtualservers.yaml"
  chmod u+w "$CRDS"/*.yaml
  touch "$CRDS/.complete"
fi

echo "CRDS=$CRDS"
echo "BIN=$BIN"
