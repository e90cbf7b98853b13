#!/usr/bin/env bash
# Builds the packaging tools from the Go module proxy, once, into a cache outside the repository,
# and prints where they are. Today that is helm; kustomize is not needed (`kubectl kustomize`
# from e2e/build-control-plane.sh's BIN directory renders config/).
#
#   e2e/tools.sh          builds helm if missing; last line: HELM=<path>
#   e2e/tools.sh helm     prints only the path of helm (building it if missing)
#
# Safe to run repeatedly and concurrently: a built binary is reused and builds take a lock.
set -euo pipefail

# The newest helm v3 on the proxy (`go list -m -versions helm.sh/helm/v3`); its go.mod says
# `go 1.26.0`, which the machine's go 1.26 builds without a toolchain download.
HELM_VERSION=${HELM_VERSION:-v3.22.0}

CACHE_ROOT=${ZONEGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zonegate}
TOOLS="$CACHE_ROOT/tools"
HELM="$TOOLS/helm-$HELM_VERSION/helm"

log() { printf '[tools] %s\n' "$*" >&2; }

command -v go >/dev/null || { log "go is required (the project's machines ship it)"; exit 1; }

mkdir -p "$TOOLS"
exec 9>"$TOOLS/.lock"
flock -n 9 || { log "another e2e/tools.sh holds $TOOLS/.lock; waiting"; flock 9; }

if [ ! -x "$HELM" ]; then
  log "building helm $HELM_VERSION into $(dirname "$HELM") (first time only; a few minutes on 2 cores)"
  tmp=$(mktemp -d "$TOOLS/.helm-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  # GOFLAGS=-mod=mod keeps a surrounding go.work or vendor directory out of the way; the version
  # banner of `helm version` comes from the module version, no ldflags needed.
  GOBIN="$tmp" GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local \
    go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mkdir -p "$(dirname "$HELM")"
  mv "$tmp/helm" "$HELM"
  log "built $("$HELM" version --short 2>/dev/null || echo helm)"
fi

case "${1:-}" in
  helm) echo "$HELM" ;;
  "") echo "HELM=$HELM" ;;
  *) log "usage: e2e/tools.sh [helm]"; exit 2 ;;
esac
