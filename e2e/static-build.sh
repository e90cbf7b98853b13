#!/usr/bin/env bash
# Checks what the Dockerfile's build stage produces, without a container engine: builds zonegate
# from a copy of the Docker build context (what .dockerignore lets through) with the Dockerfile's
# cargo command and RUSTFLAGS, then checks that the binary is static and that it works as uid
# 65532 inside an empty root directory (like distroless/static: no libc, no shell), serving the
# quickstart zone over DNS.
#
#   e2e/static-build.sh      last line: ZONEGATE_STATIC=<path of the binary>
#
# The build reuses ~/.cache/zonegate/static-target (first build: ~8 min on 2 cores, the release
# profile uses thin LTO; later runs rebuild only when the sources changed).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
CACHE_ROOT=${ZONEGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zonegate}
TARGET_DIR="$CACHE_ROOT/static-target"
RUSTFLAGS_STATIC="-C target-feature=+crt-static"   # the Dockerfile's, checked below

log() { printf '[static-build] %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

grep -qF "RUSTFLAGS=\"$RUSTFLAGS_STATIC\"" "$REPO/Dockerfile" ||
  die "the Dockerfile no longer builds with RUSTFLAGS=\"$RUSTFLAGS_STATIC\": update this script"
grep -qF 'cargo build --release --locked --target "$triple" --bin zonegate' "$REPO/Dockerfile" ||
  die "the Dockerfile's cargo command changed: update this script"

# The build context: the paths .dockerignore allows (its `!` lines), as the Dockerfile COPYs
# them. Kept at a fixed path with the files' times preserved, so an unchanged tree is not
# rebuilt (cargo's fingerprints include the path).
ctx="$CACHE_ROOT/static-context"
root=""
trap 'rm -rf ${root:+"$root"}; [ -z "${srv:-}" ] || kill "$srv" 2>/dev/null || true' EXIT
mkdir -p "$CACHE_ROOT"
exec 8>"$CACHE_ROOT/.static-build.lock"
flock -n 8 || { log "another e2e/static-build.sh holds the lock; waiting"; flock 8; }
rm -rf "$ctx"
mkdir -p "$ctx"
while read -r line; do
  case "$line" in
    '!'*) p=${line#!}; p=${p%/}; mkdir -p "$ctx/$(dirname "$p")"; cp -a "$REPO/$p" "$ctx/$p" ;;
  esac
done < "$REPO/.dockerignore"

triple=$(rustc -vV | sed -n 's/^host: //p')
log "building $triple with RUSTFLAGS=\"$RUSTFLAGS_STATIC\" from the Docker build context ($(date +%T))"
mkdir -p "$TARGET_DIR"
(cd "$ctx" && RUSTFLAGS="$RUSTFLAGS_STATIC" CARGO_TARGET_DIR="$TARGET_DIR" \
  cargo build --release --locked --target "$triple" --bin zonegate)
bin="$TARGET_DIR/$triple/release/zonegate"

desc=$(file -b "$bin")
log "file: $desc"
case "$desc" in *"static-pie linked"* | *"statically linked"*) ;; *) die "not a static binary" ;; esac
lddout=$(ldd "$bin" 2>&1 || true)
log "ldd: $lddout"
case "$lddout" in *"not a dynamic executable"* | *"statically linked"*) ;; *) die "ldd lists libraries" ;; esac

# An empty root: the binary, the quickstart manifests and nothing else (distroless/static adds
# only /etc/passwd, CA certificates and tzdata). chroot needs root; otherwise run it directly.
root=$(mktemp -d)
mkdir -p "$root/bin" "$root/manifests" "$root/tmp"
cp "$bin" "$root/bin/zonegate"
cp "$REPO"/config/samples/quickstart/*.yaml "$root/manifests/"
chmod -R a+rX "$root"
if [ "$(id -u)" = 0 ] && command -v chroot >/dev/null; then
  ZG=(chroot --userspec=65532:65532 "$root" /bin/zonegate)   # chroot execs zonegate: same pid
  where="chroot $root as uid 65532"
else
  ZG=("$root/bin/zonegate")
  where="$root (not root: no chroot)"
fi
run() { "${ZG[@]}" "$@" 8>&-; }
log "running in $where"
run --version
run crd | grep -q 'name: dnszones.zonegate.dev' || die "zonegate crd"
run check --manifests /manifests >&2 || die "zonegate check"
run render --manifests /manifests | grep -q 'IN[[:space:]]*SOA' || die "zonegate render"

if command -v dig >/dev/null; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "${ZG[@]}" serve --manifests /manifests --listen "127.0.0.1:$port" 2>"$root/tmp/serve.log" 8>&- &
  srv=$!
  answer=""
  for _ in $(seq 50); do
    answer=$(dig @127.0.0.1 -p "$port" +short +norecurse +time=1 +tries=1 mail.acme.example.com A 2>/dev/null || true)
    [ -n "$answer" ] && break
    sleep 0.2
  done
  kill "$srv" 2>/dev/null || true
  wait "$srv" 2>/dev/null || true
  srv=""
  [ "$answer" = 192.0.2.25 ] || { cat "$root/tmp/serve.log" >&2; die "serve: mail.acme.example.com A gave '$answer'"; }
  log "serve: mail.acme.example.com A -> $answer"
fi
log "ok: static, runs as uid 65532 without any library"
echo "ZONEGATE_STATIC=$bin"
