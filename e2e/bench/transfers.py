#!/usr/bin/env python3
"""Zone transfer benchmark: zonegate as the primary of a Knot secondary, next to Knot as the
primary of the same Knot secondary, in one run.

  * AXFR: a fresh Knot secondary (empty storage) is started with the primary as its master; the
    time from its start to its first answer with the primary's serial (SOA query, AXFR of the
    whole zone, load). The same secondary configuration against zonegate (`serve --manifests`)
    and against Knot (`knotd` loading exactly what `zonegate render` prints), alternating,
    --rounds times each; the median is shown.
  * IXFR: with a secondary in sync with zonegate (its refresh timer an hour, so NOTIFY is what
    moves it), --changes rewrites of one manifest with 10 changed addresses; the time from the
    rename to the secondary answering with the new serial (NOTIFY, SOA query, IXFR, apply),
    changes --gap (1 s) apart.
    zonegate's transfer counter shows they were IXFRs.
  * Memory: zonegate's RSS before the changes and after them (the IXFR history it keeps).

Usage: e2e/bench/transfers.py [--names 100000] [--rounds 3] [--changes 10]
Prints a Markdown report on stdout. Needs: cargo, knotd (e2e/deps.sh).
"""
import argparse, json, os, random, shutil, socket, statistics, struct, subprocess, sys, tempfile, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dns_vs_knot import ROOT, ZONE, Proc, free_port, ip_for, log, rss_kib, write_chunk  # noqa: E402


def write_tree(d, n, notify):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "zone.yaml"), "w") as f:
        f.write(f"apiVersion: zonegate.dev/v1alpha1\nkind: DNSZone\nmetadata: {{name: bench, namespace: bench}}\n"
                f"spec:\n  domain: {ZONE}\n  transfer:\n    allowFrom: [127.0.0.0/8]\n    notify: [\"127.0.0.1:{notify}\"]\n"
                f"status:\n  nameservers:\n"
                f"  - {{hostname: ns1.{ZONE}, addresses: [192.0.2.1]}}\n  - {{hostname: ns2.{ZONE}, addresses: [192.0.2.2]}}\n")
    for chunk in range((n + 999) // 1000):
        write_chunk(d, chunk, n, 1000, gen=0)


def write_ten_changed(d, chunk, n, gen):
    """Rewrites chunk `chunk` with its first 10 addresses changed to generation `gen`."""
    lines = [f"apiVersion: externaldns.k8s.io/v1alpha1\nkind: DNSEndpoint\nmetadata: {{name: e{chunk}, namespace: bench}}\nspec:\n  endpoints:\n"]
    for i in range(chunk * 1000, min(n, (chunk + 1) * 1000)):
        ip = ip_for(i, gen if i < chunk * 1000 + 10 else 0)
        lines.append(f"  - {{dnsName: host{i}.{ZONE}, recordType: A, targets: [{ip}]}}\n")
    tmp = os.path.join(d, f".e{chunk}.tmp")
    with open(tmp, "w") as f:
        f.write("".join(lines))
    os.rename(tmp, os.path.join(d, f"e{chunk}.yaml"))


def skip_name(data, i):
    while True:
        b = data[i]
        if b == 0:
            return i + 1
        if b & 0xC0 == 0xC0:
            return i + 2
        i += b + 1


def soa_serial(port, timeout=0.2):
    """The SOA serial the server on 127.0.0.1:`port` answers for the zone, or None."""
    q = struct.pack(">HHHHHH", random.randrange(65536), 0, 1, 0, 0, 0)
    for label in ZONE.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack(">HH", 6, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.connect(("127.0.0.1", port))
        s.send(q)
        data = s.recv(4096)
    except OSError:
        return None
    finally:
        s.close()
    if struct.unpack(">H", data[6:8])[0] == 0 or data[3] & 0x0F != 0:
        return None
    i = skip_name(data, len(q))
    rtype = struct.unpack(">H", data[i:i + 2])[0]
    if rtype != 6:
        return None
    i = skip_name(data, skip_name(data, i + 10))
    return struct.unpack(">I", data[i:i + 4])[0]


def first_serial(port, what, timeout=120.0):
    """The first SOA serial the server on `port` answers, waiting up to `timeout` for it."""
    t0 = time.monotonic()
    while (serial := soa_serial(port)) is None:
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"{what} does not answer")
        time.sleep(0.01)
    return serial


def wait_serial(port, serial, timeout=120.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if soa_serial(port) == serial:
            return time.monotonic() - t0
        time.sleep(0.001)
    raise RuntimeError(f"127.0.0.1:{port} does not serve serial {serial} within {timeout}s")


def knot_conf(work, name, port, zone_lines, extra=""):
    d = os.path.join(work, name)
    shutil.rmtree(d, ignore_errors=True)
    for sub in ("run", "db", "zones"):
        os.makedirs(os.path.join(d, sub))
    conf = os.path.join(d, "knot.conf")
    with open(conf, "w") as f:
        f.write(f"""server:
  listen: 127.0.0.1@{port}
  udp-workers: 2
  tcp-workers: 2
  background-workers: 2
  rundir: {d}/run
log:
  - target: {d}/knot.log
    any: info
database:
  storage: {d}/db
{extra}template:
  - id: default
    storage: {d}/zones
    semantic-checks: off
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: {ZONE}.
{zone_lines}""")
    return conf, d


def start_secondary(work, primary_port, port):
    conf, d = knot_conf(work, "secondary", port, "    master: primary\n    acl: [notify-in]\n",
                        f"remote:\n  - id: primary\n    address: 127.0.0.1@{primary_port}\n"
                        "acl:\n  - id: notify-in\n    address: 127.0.0.0/8\n    action: notify\n")
    return Proc(["knotd", "-c", conf]), d


def counter(http_port, family, *labels):
    """The sum of zonegate's `family` samples carrying every one of `labels` (`k="v"`)."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
               if line.startswith(family + "{") and all(l in line for l in labels))


def ixfrs_sent(http_port):
    """zonegate's count of incremental IXFRs sent."""
    return counter(http_port, "zonegate_transfers_total", 'kind="ixfr"', 'outcome="sent"')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--names", type=int, default=100000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--changes", type=int, default=10)
    ap.add_argument("--gap", type=float, default=1.0, help="seconds between changes")
    args = ap.parse_args()
    if not shutil.which("knotd") and not os.path.exists("/usr/sbin/knotd"):
        sys.exit("knotd not found: run e2e/deps.sh")
    log("building zonegate (release)")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "zonegate")
    work = tempfile.mkdtemp(prefix="zg-bench-xfr-")
    n = args.names
    procs = []
    res = {"axfr_s": {"zonegate": [], "knot": []}, "ixfr_ms": []}
    try:
        sec_port, zg_port, zg_http, knot_port = free_port(), free_port(), free_port(), free_port()
        d = os.path.join(work, "m")
        write_tree(d, n, sec_port)
        zonefile = os.path.join(work, f"{ZONE}.zone")
        with open(zonefile, "w") as f:
            subprocess.run([binary, "render", "--manifests", d], stdout=f, check=True)
        zg = Proc([binary, "serve", "--manifests", d, "--listen", f"127.0.0.1:{zg_port}", "--http", f"127.0.0.1:{zg_http}"],
                  env={**os.environ, "RUST_LOG": "error"})
        procs.append(zg)
        zg_serial = first_serial(zg_port, "zonegate")
        conf, _ = knot_conf(work, "primary", knot_port, f"    file: {zonefile}\n    zonefile-load: whole\n    acl: [xfr-out]\n",
                            "acl:\n  - id: xfr-out\n    address: 127.0.0.0/8\n    action: transfer\n")
        kp = Proc(["knotd", "-c", conf])
        procs.append(kp)
        knot_serial = first_serial(knot_port, "Knot (primary)")
        log(f"zonegate serial {zg_serial}, Knot primary serial {knot_serial}")
        for rnd in range(args.rounds):
            for name, port, serial in (("zonegate", zg_port, zg_serial), ("knot", knot_port, knot_serial)):
                s, _ = start_secondary(work, port, sec_port)
                t = wait_serial(sec_port, serial)
                s.stop()
                res["axfr_s"][name].append(t)
                log(f"round {rnd + 1}: AXFR from {name}: {t:.3f} s")
        # IXFR: a secondary of zonegate in sync, then changes through NOTIFY
        s, sdir = start_secondary(work, zg_port, sec_port)
        procs.append(s)
        wait_serial(sec_port, zg_serial)
        # Knot postpones a refresh that comes within about a second of its last one (changes
        # 0.3 s apart took 500-700 ms instead of 35): changes come --gap apart, as a user's do
        time.sleep(args.gap)
        res["rss_before_kib"] = rss_kib(zg.p.pid)
        ixfr0 = ixfrs_sent(zg_http)
        serial = zg_serial
        written = {}
        for c in range(args.changes):
            chunk = (c * 7) % max(1, n // 1000)
            # changed, back, changed, ... per chunk: every rewrite changes the 10 addresses
            written[chunk] = written.get(chunk, 0) + 1
            t0 = time.monotonic()
            write_ten_changed(d, chunk, n, written[chunk] % 2)
            while True:
                new = soa_serial(zg_port)
                if new is not None and new != serial:
                    break
                if time.monotonic() - t0 > 30:
                    raise RuntimeError("zonegate's serial does not change")
                time.sleep(0.001)
            t_primary = time.monotonic() - t0
            wait_serial(sec_port, new, 30)
            t = time.monotonic() - t0
            serial = new
            res["ixfr_ms"].append(t * 1000)
            res.setdefault("primary_ms", []).append(t_primary * 1000)
            log(f"change {c + 1}: zonegate {t_primary * 1000:.1f} ms, secondary {t * 1000:.1f} ms")
            time.sleep(args.gap)
        res["ixfr_count"] = ixfrs_sent(zg_http) - ixfr0
        res["notify_retried"] = counter(zg_http, "zonegate_notifies_total", 'result="retried"')
        res["rss_after_kib"] = rss_kib(zg.p.pid)
        res["history_bytes"] = counter(zg_http, "zonegate_ixfr_history_bytes")
        res["history_versions"] = counter(zg_http, "zonegate_ixfr_history_versions")
        res["knot_secondary_log_ixfr"] = sum(1 for l in open(os.path.join(sdir, "knot.log")) if "IXFR" in l and "finished" in l)
    finally:
        for p in procs:
            p.stop()
        shutil.rmtree(work, ignore_errors=True)

    a = {k: statistics.median(v) for k, v in res["axfr_s"].items()}
    print(f"Machine: {os.cpu_count()} cores; {n} names; {args.rounds} alternating rounds.\n")
    print("| measurement | zonegate | Knot | ratio |")
    print("|---|---|---|---|")
    print(f"| AXFR to a fresh Knot secondary, start to serving (median s) | {a['zonegate']:.3f} | {a['knot']:.3f} | **{a['zonegate'] / a['knot']:.2f}x** |")
    ix = sorted(res["ixfr_ms"])
    print(f"| IXFR of a 10-name change, file rename to the secondary serving it (median / max ms) | {statistics.median(ix):.1f} / {ix[-1]:.1f} | n/a | |")
    print(f"| of which the primary's own change to answer (median ms) | {statistics.median(res['primary_ms']):.1f} | n/a | |")
    print(f"| IXFRs served during the changes (zonegate's counter; Knot's log) | {res['ixfr_count']:.0f} of {args.changes}; {res['knot_secondary_log_ixfr']} | | |")
    print(f"| NOTIFY retransmissions (zonegate's counter) | {res['notify_retried']:.0f} | | |")
    print(f"| zonegate RSS before / after the changes (MiB) | {res['rss_before_kib'] / 1024:.1f} / {res['rss_after_kib'] / 1024:.1f} | | |")
    print(f"| IXFR history after the changes (zonegate's metrics: versions, estimated KiB) | {res['history_versions']:.0f}, {res['history_bytes'] / 1024:.0f} | | |")
    print("\n```json\n" + json.dumps(res, indent=1) + "\n```")


if __name__ == "__main__":
    main()
