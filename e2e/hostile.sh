#!/usr/bin/env bash
# Hostile input against the real binary with real clients (dig, kdig, named-checkzone, a raw
# UDP flood from python3), next to tests/hostile.rs:
#   1. the served data of tricky manifests (quoted DKIM TXT, escapes, a CNAME loop) and the
#      protocol details (DO bit, class ANY, CHAOS, EDNS version 1, AXFR) as dig and kdig see them;
#   2. `zonegate render` of that tree passes named-checkzone (no RDLENGTH-0 TXT, escapes kept);
#   3. `zonegate check` names the lossy TXT value, the typo'd and the non-ASCII hostname;
#   4. a flood of malformed EDNS packets writes a bounded number of log lines;
#   5. a 120 KB nested-list file is refused at once, naming the file.
# Free loopback ports only. Exits non-zero on the first failed check.
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
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

tree=$work/tree
mkdir -p "$tree"
cat >"$tree/zone.yaml" <<'EOF'
apiVersion: zonegate.dev/v1alpha1
kind: DNSZone
metadata: {name: acme, namespace: acme}
spec:
  domain: acme.example.com
  records:
    - {name: www, type: A, values: ["192.0.2.10"]}
    - {name: loop-a, type: CNAME, values: ["loop-b.acme.example.com"]}
    - {name: loop-b, type: CNAME, values: ["loop-a.acme.example.com"]}
    - {name: dkim._domainkey, type: TXT, values: ['"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC"']}
    - {name: lossy._domainkey, type: TXT, values: ["v=DKIM1; k=rsa; p=MIGf"]}
    - {name: empty, type: TXT, values: [""]}
    - {name: quoted-empty, type: TXT, values: ['""']}
    - {name: escapes, type: TXT, values: ['"a\;b" "q\"uote" "back\\slash" "\065\066C" "tab\009end"']}
status:
  nameservers:
    - {hostname: ns1.acme.example.com, addresses: ["203.0.113.1"]}
    - {hostname: ns2.acme.example.com, addresses: ["203.0.113.2"]}
EOF
cat >"$tree/ingress.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: acme}
spec:
  rules:
    - host: www.acme.exmaple.com
    - host: bücher.acme.example.com
status: {loadBalancer: {ingress: [{ip: 192.0.2.20}]}}
EOF

port=$(free_port)
RUST_LOG=info "$BIN" serve --manifests "$tree" --listen "127.0.0.1:$port" 2>"$work/serve.log" &
pids+=($!)
for _ in $(seq 100); do dig +short +time=1 +tries=1 -p "$port" @127.0.0.1 www.acme.example.com A >/dev/null 2>&1 && break; sleep 0.1; done

d() { dig +norecurse +time=2 +tries=1 -p "$port" @127.0.0.1 "$@"; }
expect() { # expect DESCRIPTION PATTERN -- dig args
  local what=$1 pat=$2; shift 3
  local out; out=$(d "$@")
  grep -Eq "$pat" <<<"$out" || { echo "$out" >&2; fail "$what: no match for /$pat/"; }
  ok "$what"
}

# 1. served data and protocol details
expect "quoted DKIM TXT served whole" '"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC"' -- dkim._domainkey.acme.example.com TXT
expect "lossy unquoted TXT refused, not cut" 'status: NXDOMAIN' -- lossy._domainkey.acme.example.com TXT
expect "empty TXT value not served" 'status: NXDOMAIN' -- empty.acme.example.com TXT
expect "quoted empty TXT is one empty string" 'IN\s+TXT\s+""' -- quoted-empty.acme.example.com TXT
expect "TXT escapes" '"a;b" "q\\"uote" "back\\\\slash" "ABC" "tab\\009end"' -- escapes.acme.example.com TXT
out=$(d +tcp loop-a.acme.example.com A)
n=$(grep -cE '^loop-[ab]\.acme\.example\.com\.\s+[0-9]+\s+IN\s+CNAME' <<<"$out" || true)
[ "$n" = 2 ] || { echo "$out" >&2; fail "CNAME loop: $n CNAMEs, want 2"; }
ok "CNAME loop answered with each CNAME once"
expect "DO bit copied" 'flags: do;' -- +dnssec www.acme.example.com A
expect "class ANY answers the IN data" 'www\.acme\.example\.com\.\s+[0-9]+\s+IN\s+A\s+192\.0\.2\.10' -- -c ANY www.acme.example.com A
expect "CHAOS version.bind refused" 'status: REFUSED' -- -c CH version.bind TXT
expect "EDNS version 1: BADVERS" 'status: BADVERS' -- +edns=1 +noednsneg www.acme.example.com A
out=$(d AXFR acme.example.com || true)
grep -Eq 'Transfer failed|REFUSED' <<<"$out" || { echo "$out" >&2; fail "AXFR not refused"; }
ok "AXFR refused without spec.transfer"
out=$(kdig +norecurse +tcp -p "$port" @127.0.0.1 +edns +nsid www.acme.example.com A)
grep -q '192.0.2.10' <<<"$out" || { echo "$out" >&2; fail "kdig with an NSID option"; }
ok "kdig over TCP with an EDNS option"

# 2. render -> named-checkzone
"$BIN" render --manifests "$tree" --zone acme/acme >"$work/acme.zone" 2>"$work/render.err"
named-checkzone -i local acme.example.com "$work/acme.zone" >"$work/ncz.out" || { cat "$work/acme.zone" "$work/ncz.out"; fail "named-checkzone"; }
grep -q 'quoted-empty.acme.example.com.*TXT.*""' "$work/acme.zone" || fail "render: the empty string is quoted"
ok "named-checkzone accepts the rendered zone: $(tail -1 "$work/ncz.out")"

# 3. check
if "$BIN" check --manifests "$tree" >"$work/check.out"; then fail "check passed a lossy TXT value"; fi
grep -q "^error: zone.yaml#1: DNSZone acme/acme: spec.records\[4\].values\[0\]: invalid TXT value .*would be dropped; quote the value to keep it: '\"v=DKIM1; k=rsa; p=MIGf\"'" "$work/check.out" \
  || { cat "$work/check.out"; fail "check: lossy TXT"; }
grep -q '^warning: ingress.yaml#1: Ingress acme/web: spec.rules\[0\].host: "www.acme.exmaple.com" is in no DNSZone' "$work/check.out" \
  || { cat "$work/check.out"; fail "check: typo'd hostname"; }
grep -q 'xn--bcher-kva.acme.example.com' "$work/check.out" || { cat "$work/check.out"; fail "check: xn-- form"; }
ok "check names the lossy TXT value, the typo and the xn-- form ($(tail -1 "$work/check.out"))"

# 4. a flood of malformed EDNS options, each with a new option code
before=$(wc -l <"$work/serve.log")
python3 - "$port" <<'EOF'
import socket, struct, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
qname = b"".join(bytes([len(l)]) + l for l in b"www.acme.example.com".split(b".")) + b"\0"
for i in range(5000):
    code = (0xfd00 + i) & 0xffff
    opt = b"\0" + struct.pack(">HHBBHH", 41, 1232, 0, 0, 0, 6) + struct.pack(">HH", code, 4) + b"\1\2"
    msg = struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 1) + qname + struct.pack(">HH", 1, 1) + opt
    s.sendto(msg, ("127.0.0.1", port))
EOF
sleep 1.5
after=$(wc -l <"$work/serve.log")
lines=$((after - before))
[ "$lines" -le 2 ] || { tail -5 "$work/serve.log"; fail "5000 malformed packets wrote $lines log lines"; }
expect "still answering after the flood" 'IN\s+A\s+192\.0\.2\.10' -- www.acme.example.com A
ok "5000 malformed EDNS packets: $lines log lines"

# 5. deep nesting
deep=$work/deep
mkdir -p "$deep"
cp "$tree/zone.yaml" "$deep/"
python3 -c 'import sys; open(sys.argv[1], "w").write("a: " + "[" * 60000 + "]" * 60000 + "\n")' "$deep/nested.yaml"
t0=${EPOCHREALTIME/./}
"$BIN" check --manifests "$deep" >"$work/deep.out" || true
ms=$(( (${EPOCHREALTIME/./} - t0) / 1000 ))
grep -q '^error: nested.yaml: invalid YAML: document 1 (line 1): nested deeper than 64 levels' "$work/deep.out" || { cat "$work/deep.out"; fail "deep YAML"; }
[ "$ms" -lt 3000 ] || fail "deep YAML took $ms ms"
ok "120 KB of nested lists refused in $ms ms, naming the file"

echo "$pass passed, 0 failed"
