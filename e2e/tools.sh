#!/usr/bin/env bash
# Builds the Go tools the tests use from the Go module proxy, once, into a cache outside the
# repository, and prints where they are: helm (chart tests), ExternalDNS (webhook provider tests)
# and CoreDNS (in-cluster forwarding tests). kustomize is not needed (`kubectl kustomize` from
# e2e/build-control-plane.sh's BIN directory renders config/).
#
#   e2e/tools.sh              builds every missing tool; prints HELM=, EXTERNAL_DNS=, COREDNS=
#   e2e/tools.sh helm         prints only the path of helm (building it if missing)
#   e2e/tools.sh externaldns  prints only the path of external-dns (building it if missing)
#   e2e/tools.sh coredns      prints only the path of coredns (building it if missing)
#
# Safe to run repeatedly and concurrently: a built binary is reused, and each tool's build takes
# its own lock (so a slow ExternalDNS build does not hold up helm).
set -euo pipefail

# The newest helm v3 on the proxy (`go list -m -versions helm.sh/helm/v3`); its go.mod says
# `go 1.26.0`, which the machine's go 1.26 builds without a toolchain download.
HELM_VERSION=${HELM_VERSION:-v3.22.0}
# The only ExternalDNS version the proxy serves; its go.mod says `go 1.27.0`.
EXTERNAL_DNS_VERSION=${EXTERNAL_DNS_VERSION:-v0.23.0}
COREDNS_VERSION=${COREDNS_VERSION:-v1.14.7}
# The toolchain for peers that need Go 1.27; the go command fetches it from the proxy once.
PEER_GOTOOLCHAIN=${PEER_GOTOOLCHAIN:-go1.27.3}

CACHE_ROOT=${ZONEGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zonegate}
TOOLS="$CACHE_ROOT/tools"
HELM="$TOOLS/helm-$HELM_VERSION/helm"
EXTERNAL_DNS="$TOOLS/external-dns-$EXTERNAL_DNS_VERSION/external-dns"
COREDNS="$TOOLS/coredns-$COREDNS_VERSION/coredns"

log() { printf '[tools] %s\n' "$*" >&2; }

command -v go >/dev/null || { log "go is required (the project's machines ship it)"; exit 1; }
mkdir -p "$TOOLS"

# with_lock NAME FN: runs FN holding $TOOLS/.lock-NAME (waiting, with a line, if it is taken).
with_lock() {
  local name=$1 fn=$2
  (
    exec 9>"$TOOLS/.lock-$name"
    flock -n 9 || { log "another e2e/tools.sh is building $name ($TOOLS/.lock-$name); waiting"; flock 9; }
    "$fn"
  )
}

# elapsed T0: seconds since T0 (from $SECONDS).
elapsed() { echo "$((SECONDS - $1))s"; }

build_helm() {
  [ -x "$HELM" ] && return 0
  local t0=$SECONDS tmp
  log "building helm $HELM_VERSION into $(dirname "$HELM") (first time only; a few minutes on 2 cores)"
  tmp=$(mktemp -d "$TOOLS/.helm-XXXXXX")
  trap "rm -rf '$tmp'" EXIT
  # GOFLAGS=-mod=mod keeps a surrounding go.work or vendor directory out of the way; the version
  # banner of `helm version` comes from the module version, no ldflags needed.
  GOBIN="$tmp" GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local \
    go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mkdir -p "$(dirname "$HELM")"
  mv "$tmp/helm" "$HELM"
  log "built $("$HELM" version --short 2>/dev/null || echo helm) in $(elapsed "$t0")"
}

# ExternalDNS v0.23.0 does not `go install` as is: three dependencies are not on the proxy
# (github.com/civo/civogo, github.com/exoscale/egoscale/v3 and the pinned github.com/openshift/api
# pseudo-version). The module is copied out of the module cache and the civo and exoscale
# providers and the OpenShift Route source are cut out before building
# (../shared/reference/authoritative.md §5). Every other provider and source is kept.
strip_external_dns() {
  local src=$1
  rm -rf "$src/provider/civo" "$src/provider/exoscale"
  rm -f "$src"/source/openshift_route*.go
  python3 - "$src" <<'PY'
import re, sys
src = sys.argv[1]

def edit(path, fn):
    with open(path) as f:
        old = f.read()
    new = fn(old)
    if new == old:
        sys.exit(f"strip: nothing changed in {path}; has ExternalDNS moved on?")
    with open(path, "w") as f:
        f.write(new)

def drop_lines(pattern):
    return lambda text: "".join(l for l in text.splitlines(True) if not re.search(pattern, l))

def drop_func(name):
    # a top-level func (with its doc comment) up to the first "}" at column 0
    rx = re.compile(r"(?:^//[^\n]*\n)*^func [^\n]*\b" + re.escape(name) + r"\([^\n]*\n(?:.*\n)*?^}\n", re.M)
    return lambda text: rx.sub("", text, count=1)

edit(f"{src}/provider/factory/provider.go",
     drop_lines(r'"sigs\.k8s\.io/external-dns/provider/(civo|exoscale)"|\b(civo|exoscale)\.New\b'))

def store(text):
    text = drop_lines(r'openshift "github\.com/openshift/client-go|^\s*OpenShiftClient\(\) \(openshift\.Interface|^\s*openshift(Client|ClientErr|Once)\s')(text)
    text = drop_func("OpenShiftClient")(text)
    text = drop_func("buildOpenShiftRouteSource")(text)
    text = re.sub(r"^\s*case types\.OpenShiftRoute:\n[^\n]*\n", "", text, count=1, flags=re.M)
    if "openshift." in text or "OpenShiftRoute" in text.replace("// - \"openshift-route\"", ""):
        sys.exit("strip: source/store.go still mentions OpenShift")
    return text

edit(f"{src}/source/store.go", store)
PY
}

build_external_dns() {
  [ -x "$EXTERNAL_DNS" ] && return 0
  local t0=$SECONDS tmp dir
  log "building ExternalDNS $EXTERNAL_DNS_VERSION with $PEER_GOTOOLCHAIN into $(dirname "$EXTERNAL_DNS") (first time only; 5-10 minutes on 2 cores)"
  tmp=$(mktemp -d "$TOOLS/.external-dns-XXXXXX")
  # (module cache copies are read-only)
  trap "chmod -R u+w '$tmp' 2>/dev/null; rm -rf '$tmp'" EXIT
  export GOTOOLCHAIN=$PEER_GOTOOLCHAIN GOFLAGS=-mod=mod CGO_ENABLED=0
  log "external-dns: downloading the module"
  dir=$(cd "$tmp" && go mod download -json "sigs.k8s.io/external-dns@$EXTERNAL_DNS_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  cp -r "$dir" "$tmp/src"
  chmod -R u+w "$tmp/src"
  log "external-dns: stripping the civo and exoscale providers and the OpenShift Route source"
  strip_external_dns "$tmp/src"
  (cd "$tmp/src" && go mod edit -droprequire=github.com/civo/civogo \
    -droprequire=github.com/exoscale/egoscale/v3 -droprequire=github.com/openshift/api \
    -droprequire=github.com/openshift/client-go)
  log "external-dns: compiling (the slow part)"
  (cd "$tmp/src" && go build -trimpath -o "$tmp/external-dns" \
    -ldflags "-s -w -X sigs.k8s.io/external-dns/pkg/apis/externaldns.Version=$EXTERNAL_DNS_VERSION" .)
  "$tmp/external-dns" --version >/dev/null 2>&1
  mkdir -p "$(dirname "$EXTERNAL_DNS")"
  mv "$tmp/external-dns" "$EXTERNAL_DNS"
  log "built external-dns $("$EXTERNAL_DNS" --version 2>&1 | head -n 1) in $(elapsed "$t0")"
}

build_coredns() {
  [ -x "$COREDNS" ] && return 0
  local t0=$SECONDS tmp
  log "building CoreDNS $COREDNS_VERSION with $PEER_GOTOOLCHAIN into $(dirname "$COREDNS") (first time only; a few minutes on 2 cores)"
  tmp=$(mktemp -d "$TOOLS/.coredns-XXXXXX")
  trap "rm -rf '$tmp'" EXIT
  GOBIN="$tmp" GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=$PEER_GOTOOLCHAIN \
    go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
  "$tmp/coredns" -version >/dev/null
  mkdir -p "$(dirname "$COREDNS")"
  mv "$tmp/coredns" "$COREDNS"
  log "built $("$COREDNS" -version 2>&1 | head -n 1) in $(elapsed "$t0")"
}

case "${1:-}" in
  helm) with_lock helm build_helm; echo "$HELM" ;;
  externaldns) with_lock externaldns build_external_dns; echo "$EXTERNAL_DNS" ;;
  coredns) with_lock coredns build_coredns; echo "$COREDNS" ;;
  "")
    with_lock helm build_helm
    with_lock externaldns build_external_dns
    with_lock coredns build_coredns
    echo "HELM=$HELM"
    echo "EXTERNAL_DNS=$EXTERNAL_DNS"
    echo "COREDNS=$COREDNS"
    ;;
  *) log "usage: e2e/tools.sh [helm|externaldns|coredns]"; exit 2 ;;
esac
