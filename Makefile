# zonegate: build, lint and test.
#
#   make test          the project's one test command: lint, tools, control plane, e2e cluster,
#                      every test (unit, integration and e2e), cluster teardown; then the
#                      release image and a second cluster with a real node (e2e/node) for
#                      tests/e2e_node.rs (NODE=0 skips that part)
#   make unit          cargo test (no cluster; e2e tests are #[ignore]d)
#   make lint          rustfmt and clippy, warnings are errors
#   make cluster-up    start an e2e control plane (prints KUBECONFIG=...)
#   make cluster-down  stop the newest one (RUN=<dir> for another, KEEP=1 keeps its logs)
#   make crds          regenerate crds/ from the Rust types
#
# `make test` keeps nothing running: the cluster goes down whether the tests pass or not. Set
# KEEP=1 to keep the run directory (logs, etcd data) for a look afterwards.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DEFAULT_GOAL := test
.PHONY: test unit lint cluster-up cluster-down crds

CARGO ?= cargo
# extra arguments for the test binaries, e.g. `make test TEST_ARGS=e2e_crd`
TEST_ARGS ?=
# 0: no node phase (image, cluster with a kubelet, tests/e2e_node.rs)
NODE ?= 1

# phase NAME CMD...: runs CMD and prints how long it took (on stderr, like the tools' progress).
define PHASE
phase() {
  local name=$$1 t0=$${EPOCHREALTIME/./} rc=0 ms
  shift
  printf '\n==> %s\n' "$$name" >&2
  "$$@" || rc=$$?
  ms=$$(( ($${EPOCHREALTIME/./} - t0) / 1000 ))
  printf '==> %s: %d.%01ds%s\n' "$$name" $$((ms / 1000)) $$((ms % 1000 / 100)) \
    "$$( [ $$rc -eq 0 ] || echo " (FAILED, exit $$rc)")" >&2
  return $$rc
}
endef
export PHASE

test: lint
	@eval "$$PHASE"
	phase "e2e tools (e2e/deps.sh)" e2e/deps.sh
	phase "Go tools: helm, ExternalDNS, CoreDNS (e2e/tools.sh)" e2e/tools.sh >/dev/null
	export ZONEGATE_HELM=$$(e2e/tools.sh helm)
	export ZONEGATE_EXTERNAL_DNS=$$(e2e/tools.sh externaldns)
	export ZONEGATE_COREDNS=$$(e2e/tools.sh coredns)
	phase "control-plane binaries and CRDs (e2e/build-control-plane.sh)" e2e/build-control-plane.sh >/dev/null
	if [ "$(NODE)" = 1 ]; then
	  phase "node binaries: kubelet, kube-scheduler (e2e/build-control-plane.sh --node)" e2e/build-control-plane.sh --node >/dev/null
	  phase "release image: static binary, OCI archive (e2e/node image)" e2e/node image >/dev/null
	fi
	# compile before the cluster starts, so it does not idle through the build
	phase "build tests" $(CARGO) test --all-targets --no-run
	out=$$(mktemp)
	phase "e2e cluster up" e2e/cluster up | tee "$$out"
	kubeconfig=$$(tail -n 1 "$$out" | sed -n 's/^KUBECONFIG=//p'); rm -f "$$out"
	run=$$(dirname "$$kubeconfig")
	[ -f "$$run/env" ] || { echo "e2e/cluster up printed no usable KUBECONFIG" >&2; exit 1; }
	trap 'phase "e2e cluster down" e2e/cluster down "$$run" || true' EXIT
	set -a; . "$$run/env"; set +a
	rc=0
	# tests/e2e_node.rs (module real_node) needs the node: it runs below, on its own cluster
	phase "cargo test (unit, integration, e2e)" $(CARGO) test --all-targets --no-fail-fast -- --include-ignored --skip real_node:: $(TEST_ARGS) || rc=$$?
	phase "Helm chart on the control plane (e2e/helm.sh)" e2e/helm.sh || rc=$$?
	phase "DNS end to end with dig, kdig, named-checkzone, Zonemaster (e2e/dns_e2e.sh)" e2e/dns_e2e.sh || rc=$$?
	phase "hostile input with dig, kdig, named-checkzone and a packet flood (e2e/hostile.sh)" e2e/hostile.sh || rc=$$?
	phase "fuzz targets (e2e/fuzz.sh)" e2e/fuzz.sh || rc=$$?
	phase "e2e cluster down" e2e/cluster down "$$run" || true
	trap - EXIT
	[ "$(NODE)" = 1 ] || exit $$rc
	out=$$(mktemp)
	phase "e2e cluster with a node up (e2e/cluster up --node)" e2e/cluster up --node | tee "$$out"
	kubeconfig=$$(tail -n 1 "$$out" | sed -n 's/^KUBECONFIG=//p'); rm -f "$$out"
	run=$$(dirname "$$kubeconfig")
	[ -f "$$run/env" ] || { echo "e2e/cluster up --node printed no usable KUBECONFIG" >&2; exit 1; }
	trap 'phase "e2e cluster with a node down" e2e/cluster down "$$run" || true' EXIT
	set -a; . "$$run/env"; set +a
	phase "cargo test on a real node (tests/e2e_node.rs)" $(CARGO) test --test e2e_node -- --include-ignored --test-threads=1 --nocapture || rc=$$?
	exit $$rc

unit:
	ZONEGATE_HELM=$$(e2e/tools.sh helm) \
	ZONEGATE_E2E_BIN=$$(e2e/build-control-plane.sh | sed -n 's/^BIN=//p') \
	$(CARGO) test

lint:
	@eval "$$PHASE"
	phase "lint (rustfmt, clippy)" bash -c '$(CARGO) fmt --check && $(CARGO) clippy --all-targets -- -D warnings'

cluster-up:
	e2e/cluster up

cluster-down:
	e2e/cluster down $(RUN)

crds:
	$(CARGO) run -q --example write-crds
	cp crds/*.yaml charts/zonegate/crds/
	cp crds/*.yaml config/crd/bases/
	$(CARGO) run -q --example api-reference
