#!/usr/bin/env bash
# e2e/fuzz.sh: builds the cargo-fuzz (libFuzzer) targets in e2e/fuzz and runs each one for a
# bounded time from its seed corpus in e2e/fuzz/corpus/<target>/; exits non-zero if any target
# crashes (panic, failed invariant, timeout, out of memory). See docs/testing.md.
#
#   e2e/fuzz.sh                 every target, FUZZ_SECONDS (default 30) each
#   e2e/fuzz.sh responder       one target
#
# cargo-fuzz is installed once into $CACHE/tools/cargo-fuzz and the build's target directory is
# kept in $CACHE/fuzz-target, so a second run only fuzzes. The nightly toolchain is installed
# with rustup when missing. Crashing inputs are written to e2e/fuzz/artifacts/<target>/; new
# corpus entries found while fuzzing go to $CACHE/fuzz-corpus/<target>/ (the committed seed
# corpus is read, never written).
#
# Environment: FUZZ_SECONDS (per target, default 30), FUZZ_SANITIZER (default
# none: the crate has no unsafe code of its own and ASan doubles the build; "address" works).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/zonegate
seconds=${FUZZ_SECONDS:-30}
sanitizer=${FUZZ_SANITIZER:-none}
fuzz_dir=$root/e2e/fuzz
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(responder manifests)

log() { printf 'fuzz.sh: %s\n' "$*" >&2; }
now_ms() { echo $(( ${EPOCHREALTIME/./} / 1000 )); }

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  log "installing the nightly toolchain (rustup toolchain install nightly --profile minimal)"
  rustup toolchain install nightly --profile minimal >&2
fi

tools=$cache/tools/cargo-fuzz
export PATH=$tools/bin:$PATH
if ! [ -x "$tools/bin/cargo-fuzz" ]; then
  t0=$(now_ms)
  log "installing cargo-fuzz into $tools"
  mkdir -p "$cache/tools"
  # a lock, so that two runs do not install at once
  flock "$cache/tools/.cargo-fuzz.lock" bash -c \
    '[ -x "$1/bin/cargo-fuzz" ] || cargo install cargo-fuzz --locked --root "$1" >&2' _ "$tools"
  log "cargo-fuzz installed in $(( ($(now_ms) - t0) / 1000 )) s"
fi

target_dir=$cache/fuzz-target
t0=$(now_ms)
log "building ${targets[*]} (cargo +nightly fuzz build, sanitizer $sanitizer, target dir $target_dir)"
for t in "${targets[@]}"; do
  cargo +nightly fuzz build --fuzz-dir "$fuzz_dir" --target-dir "$target_dir" \
    --sanitizer "$sanitizer" --debug-assertions "$t" >&2
done
log "built in $(( ($(now_ms) - t0) / 1000 )) s"

max_len() {
  case $1 in
    responder) echo 4096 ;;   # a DNS message over UDP or TCP is rarely larger in practice
    manifests) echo 16384 ;;  # a manifest file; the loader's own limits are far above this
    *) echo 4096 ;;
  esac
}

rc=0
for t in "${targets[@]}"; do
  seeds=$fuzz_dir/corpus/$t
  grown=$cache/fuzz-corpus/$t
  artifacts=$fuzz_dir/artifacts/$t
  mkdir -p "$grown" "$artifacts"
  [ -d "$seeds" ] || { log "no seed corpus $seeds"; exit 1; }
  log "fuzzing $t for ${seconds} s (seeds $seeds, crashes to $artifacts/)"
  out=$(mktemp)
  # the first corpus directory receives new inputs: the cache one, never the committed seeds
  if cargo +nightly fuzz run --fuzz-dir "$fuzz_dir" --target-dir "$target_dir" \
      --sanitizer "$sanitizer" --debug-assertions "$t" "$grown" "$seeds" -- \
      -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 >"$out" 2>&1; then
    # the last status line: how many runs, coverage, corpus size, execs per second
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$out" | tail -n 1 || true)
    log "$t: ok: ${done_line:-$(tail -n 1 "$out")}"
  else
    rc=1
    log "$t: CRASHED; the fuzzer's output:"
    grep -vE '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)' "$out" | tail -n 60 >&2
    log "$t: the crashing input is in $artifacts/ (reproduce: cargo +nightly fuzz run --fuzz-dir e2e/fuzz $t <file>)"
  fi
  rm -f "$out"
done
exit $rc
