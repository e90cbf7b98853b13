#!/usr/bin/env bash
# End-to-end DNS checks of the real binary with the standard tools:
#   1. dig and kdig against `serve --manifests config/samples/quickstart` (UDP and TCP);
#   2. `zonegate render` output passes named-checkzone (Knot loads the same file in the benchmark);
#   3. Zonemaster (undelegated test, ns1/ns2 on 127.0.0.1:53 and 127.0.0.2:53) reports no
#      ERROR or CRITICAL beyond those about the loopback addresses themselves;
#   4. the same zone signed (`spec.dnssec`), with the DS `zonegate ds` prints given to
#      Zonemaster as the parent's: its DNSSEC test cases run and find nothing to report above
#      INFO, and the whole test no ERROR or CRITICAL beyond the loopback addresses.
# Exits non-zero on the first failed check. Needs root for port 53 (CI runs as root).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${ZONEGATE_BIN:-target/debug/zonegate}
[ -x "$BIN" ] || cargo build --quiet
pids=()
work=$(mktemp -d)
cleanup() { for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
pass=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" serve --manifests config/samples/quickstart --listen "127.0.0.1:$port" 2>"$work/serve.log" &
pids+=($!)
for _ in $(seq 100); do dig +short +time=1 +tries=1 -p "$port" @127.0.0.1 acme.example.com SOA >/dev/null 2>&1 && break; sleep 0.1; done

d() { dig +norecurse +time=2 +tries=1 -p "$port" @127.0.0.1 "$@"; }
expect() { # expect DESCRIPTION PATTERN -- dig args
  local what=$1 pat=$2; shift 3
  local out; out=$(d "$@")
  grep -Eq "$pat" <<<"$out" || { echo "$out" >&2; fail "$what: no match for /$pat/"; }
  ok "$what"
}
expect "A over UDP" 'www\.acme\.example\.com\.\s+60\s+IN\s+A\s+198\.51\.100\.10' -- www.acme.example.com A
expect "AAAA over TCP" 'www\.acme\.example\.com\.\s+60\s+IN\s+AAAA\s+2001:db8::10' -- +tcp www.acme.example.com AAAA
expect "AA set, RA clear" 'flags: qr aa;' -- www.acme.example.com A
expect "NXDOMAIN" 'status: NXDOMAIN' -- nope.acme.example.com A
expect "empty non-terminal is NOERROR" 'status: NOERROR' -- _tcp.acme.example.com A
expect "empty non-terminal has no data, SOA in authority" 'ANSWER: 0, AUTHORITY: 1' -- _tcp.acme.example.com A
expect "REFUSED outside our zones" 'status: REFUSED' -- www.example.org A
expect "referral with glue" 'AUTHORITY: 1, ADDITIONAL: 2' -- host.lab.acme.example.com A
expect "BADVERS for EDNS version 1" 'status: BADVERS' -- +edns=1 +noednsneg www.acme.example.com A
expect "apex NS" 'IN\s+NS\s+ns2\.acme\.example\.com\.' -- acme.example.com NS
expect "wildcard" 'deep\.x\.preview\.acme\.example\.com\.\s+60\s+IN\s+A\s+192\.0\.2\.99' -- deep.x.preview.acme.example.com A
out=$(kdig +norecurse -p "$port" @127.0.0.1 +tcp www.acme.example.com A)
grep -q '198.51.100.10' <<<"$out" || { echo "$out"; fail "kdig over TCP"; }
ok "kdig over TCP"
expect "question echoed in the case sent" '^;WwW\.AcMe\.example\.com\.\s+IN\s+A' -- WwW.AcMe.example.com A

# 2. render -> named-checkzone
"$BIN" render --manifests config/samples/quickstart --zone acme/acme >"$work/acme.zone"
named-checkzone -i local acme.example.com "$work/acme.zone" >"$work/ncz.out" || { cat "$work/ncz.out"; fail "named-checkzone"; }
ok "named-checkzone: $(tail -1 "$work/ncz.out")"

# 3. Zonemaster, undelegated, on port 53 of two loopback addresses
"$BIN" serve --manifests e2e/fixtures/zonemaster --listen 127.0.0.1:53 --listen 127.0.0.2:53 2>"$work/zm-serve.log" &
pids+=($!)
for _ in $(seq 100); do dig +short +time=1 +tries=1 @127.0.0.2 zonegate-test.example.com SOA >/dev/null 2>&1 && break; sleep 0.1; done
dig +short @127.0.0.2 zonegate-test.example.com SOA | grep -q hostmaster || { cat "$work/zm-serve.log"; fail "serve on port 53 (needs root)"; }
zonemaster-cli --no-ipv6 --level WARNING --show-testcase --no-progress \
  --ns ns1.zonegate-test.example.com/127.0.0.1 --ns ns2.zonegate-test.example.com/127.0.0.2 \
  zonegate-test.example.com >"$work/zm.out" 2>&1 || true
cat "$work/zm.out"
bad=$(grep -E '^\s*[0-9.]+\s+(ERROR|CRITICAL)' "$work/zm.out" | grep -vE 'ADDRESS01 .*(127/8|Loopback)' || true)
[ -z "$bad" ] || fail "Zonemaster errors beyond loopback addresses: $bad"
grep -Eq 'ADDRESS01|ZONE0|NAMESERVER|Level' "$work/zm.out" || fail "Zonemaster produced no results"
ok "Zonemaster: no ERROR/CRITICAL beyond loopback addresses"
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

# 4. The same zone signed, its DS given to Zonemaster as the parent's
mkdir -p "$work/zm-signed" "$work/zm-state"
sed 's/^spec:$/spec:\n  dnssec: {enabled: true}/' e2e/fixtures/zonemaster/zone.yaml >"$work/zm-signed/zone.yaml"
grep -q 'dnssec: {enabled: true}' "$work/zm-signed/zone.yaml" || fail "signed fixture"
"$BIN" serve --manifests "$work/zm-signed" --state-dir "$work/zm-state" \
  --listen 127.0.0.1:53 --listen 127.0.0.2:53 2>"$work/zm-signed.log" &
pids+=($!)
for _ in $(seq 100); do dig +short +time=1 +tries=1 @127.0.0.2 zonegate-test.example.com DNSKEY | grep -q '^257 ' && break; sleep 0.1; done
dig +dnssec +norecurse @127.0.0.1 zonegate-test.example.com SOA | grep -q 'RRSIG' || { cat "$work/zm-signed.log"; fail "signed zone on port 53"; }
# "zonegate-test.example.com. 3600 IN DS 12345 13 2 ABCD..." -> "12345,13,2,ABCD..."
ds=$("$BIN" ds --manifests "$work/zm-signed" --state-dir "$work/zm-state" | awk '$4 == "DS" { print $5 "," $6 "," $7 "," $8 }')
[ -n "$ds" ] || fail "zonegate ds printed no DS"
zonemaster-cli --no-ipv6 --level INFO --show-testcase --no-progress --ds "$ds" \
  --ns ns1.zonegate-test.example.com/127.0.0.1 --ns ns2.zonegate-test.example.com/127.0.0.2 \
  zonegate-test.example.com >"$work/zm-signed.out" 2>&1 || true
grep -E '^\s*[0-9.]+\s+(NOTICE|WARNING|ERROR|CRITICAL)' "$work/zm-signed.out" || true
bad=$(grep -E '^\s*[0-9.]+\s+(ERROR|CRITICAL)' "$work/zm-signed.out" | grep -vE 'ADDRESS01 .*(127/8|Loopback)' || true)
[ -z "$bad" ] || { cat "$work/zm-signed.out"; fail "Zonemaster errors on the signed zone: $bad"; }
# the DNSSEC module ran on the signed zone (NSEC3 found, the key's algorithm and every RRSIG
# checked) and had nothing to warn about; with --ds its DS test cases (DNSSEC01/02) run but this
# Zonemaster reports nothing from them for an undelegated test
for tc in 'DNSSEC10 .*has NSEC3 records' 'DNSSEC05 .*algorithm number 13' 'DNSSEC04 .*RRSIG with keytag' 'DNSSEC15 .*CDNSKEY and CDS'; do
  grep -Eq "INFO +$tc" "$work/zm-signed.out" || { cat "$work/zm-signed.out"; fail "Zonemaster: no $tc"; }
done
dnssec_bad=$(grep -E '^\s*[0-9.]+\s+(NOTICE|WARNING|ERROR|CRITICAL)\s+DNSSEC' "$work/zm-signed.out" || true)
[ -z "$dnssec_bad" ] || fail "Zonemaster DNSSEC findings: $dnssec_bad"
ok "Zonemaster on the signed zone: DNSSEC test cases, no ERROR/CRITICAL beyond loopback addresses"

echo "$pass passed, 0 failed"
