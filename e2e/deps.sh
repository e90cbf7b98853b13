#!/usr/bin/env bash
# Installs the tools the end-to-end tests use, on Debian (12+), and only the missing ones:
# nothing is downloaded when everything is already there. Go and the Rust toolchain are expected
# on the machine already; e2e/build-control-plane.sh builds the Kubernetes binaries.
set -euo pipefail

log() { printf '[deps] %s\n' "$*" >&2; }

# command -> Debian package that provides it
TOOLS=(
  openssl:openssl
  python3:python3
  dig:bind9-dnsutils
  kdig:knot-dnsutils
  named-checkzone:bind9-utils
  knotd:knot
  # DNSSEC: zone verifiers on `zonegate render --dnssec` (tests/dnssec_verify.rs), validators
  ldns-verify-zone:ldnsutils
  kzonecheck:knot-dnssecutils
  dnssec-verify:bind9-utils
  delv:bind9-dnsutils
  unbound:unbound
  # a clock a week ahead for the signing-generation test in tests/xfr.rs
  /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1:faketime
  nsd:nsd
  dnsmasq:dnsmasq-base
  dnsperf:dnsperf
  # DoH load in e2e/bench/transports.py (dnsperf 2.10's DoH waits 40 ms a query)
  h2load:nghttp2-client
  curl:curl
  zonemaster-cli:zonemaster-cli
  ip:iproute2
  flock:util-linux
  setsid:util-linux
  # the e2e node (e2e/node): container runtime, CNI plugins, namespaces, the pause binary
  containerd:containerd
  ctr:containerd
  runc:runc
  /usr/lib/cni/bridge:containernetworking-plugins
  nsenter:util-linux
  cc:gcc
  /usr/lib/x86_64-linux-gnu/libc.a:libc6-dev
  setpriv:util-linux
  promtool:prometheus
)

# a command on PATH (or in sbin), or a file given by its absolute path
have() {
  case $1 in /*) [ -e "$1" ]; return ;; esac
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]
}

missing=()
for entry in "${TOOLS[@]}"; do
  tool=${entry%%:*} pkg=${entry#*:}
  if ! have "$tool"; then
    case " ${missing[*]:-} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
  fi
done

# Python modules (Debian's python3, as the tests call /usr/bin/python3): module -> package
PYMODULES=(
  dns.tsig:python3-dnspython
)
have_py() { /usr/bin/python3 -c "import $1" >/dev/null 2>&1; }
for entry in "${PYMODULES[@]}"; do
  mod=${entry%%:*} pkg=${entry#*:}
  have_py "$mod" || missing+=("$pkg")
done

for tool in go cargo; do
  have "$tool" || log "warning: $tool not found on PATH (expected on the machine; not installed by this script)"
done

if [ ${#missing[@]} -eq 0 ]; then
  log "all tools present"
  exit 0
fi

command -v apt-get >/dev/null || { log "missing: ${missing[*]}; install them (no apt-get here)"; exit 1; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { log "missing: ${missing[*]}; run as root or install sudo"; exit 1; }
  SUDO=sudo
fi

log "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

still=()
for entry in "${TOOLS[@]}"; do
  tool=${entry%%:*}
  have "$tool" || still+=("$tool")
done
for entry in "${PYMODULES[@]}"; do
  mod=${entry%%:*}
  have_py "$mod" || still+=("python3 module $mod")
done
[ ${#still[@]} -eq 0 ] || { log "still missing after apt-get install: ${still[*]}"; exit 1; }
log "installed: ${missing[*]}"
