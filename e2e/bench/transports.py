#!/usr/bin/env python3
"""Stream and encrypted transports benchmark: zonegate next to its peers, in one run.

  * TCP (dnsperf -m tcp): `zonegate serve --manifests` next to Knot DNS (same zone: Knot loads
    exactly what `zonegate render` prints, 2 UDP and 2 TCP workers);
  * DoT (dnsperf -m dot): zonegate's DoT listener next to CoreDNS 1.14 (`tls://`
    server block, `file` plugin on the same zone file, the same ECDSA P-256 certificate);
  * DoH (h2load, HTTP/2 GET of /dns-query?dns=..., 8 connections x 64 streams): zonegate's own
    DoH listener next to CoreDNS's `https://` block. dnsperf 2.10's DoH is not used: it waits
    about 40 ms for every query against any server (CoreDNS as much as zonegate).

All servers run at once on loopback; the load generator (8 connections, 90% existing names /
10% NXDOMAIN, dnsperf with 500 queries outstanding) alternates between them for --rounds
rounds and the median is shown. Latency: p50/p99 at a fixed offered load for TCP and DoT
(dnsperf -Q: --rate, or half the slower server's QPS when that is lower); for DoH, h2load's
per-request times with one request outstanding on each of the 8 connections.

Usage: e2e/bench/transports.py [--names 10000] [--seconds 6] [--rounds 3] [--rate 5000]
Prints a Markdown report on stdout. Needs: cargo, knotd, dnsperf, h2load, openssl (e2e/deps.sh) and
CoreDNS (e2e/tools.sh coredns builds it).
"""
import argparse, base64, json, os, re, shutil, statistics, struct, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dns_vs_knot import (ROOT, ZONE, Proc, cpu_seconds, dnsperf, free_port, ip_for, log,  # noqa: E402
                         rss_kib, wait_answer, write_manifests, write_queries)


def doh_uris(queries, port, path):
    """The dnsperf query file as DoH GET URIs (RFC 8484 §4.1: id 0, base64url, no padding)."""
    types = {"A": 1, "AAAA": 28}
    with open(queries) as f, open(path, "w") as out:
        for line in f:
            name, qtype = line.split()
            q = struct.pack(">HHHHHH", 0, 0, 1, 0, 0, 0)
            for label in name.rstrip(".").split("."):
                q += bytes([len(label)]) + label.encode()
            q += b"\x00" + struct.pack(">HH", types[qtype], 1)
            b64 = base64.urlsafe_b64encode(q).decode().rstrip("=")
            out.write(f"https://127.0.0.1:{port}/dns-query?dns={b64}\n")
    return path


def h2load(uris, seconds, streams, log=None):
    cmd = ["h2load", "-c", "8", "-m", str(streams), "-t", "1", "-D", str(seconds), "-i", uris,
           "-H", "accept: application/dns-message"]
    if log:
        cmd += ["--log-file", log]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    res = {}
    m = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out)
    res["qps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded", out)
    res["completed"] = int(m.group(3)) if m else 0
    res["lost"] = (int(m.group(1)) - int(m.group(3))) if m else -1
    m = re.search(r"status codes: (.*)", out)
    res["rcodes"] = m.group(1).strip() if m else ""
    if log:
        lat = sorted(int(l.split()[2]) / 1000 for l in open(log) if len(l.split()) == 3)
        if lat:
            res["p50_ms"] = lat[len(lat) // 2]
            res["p99_ms"] = lat[int(len(lat) * 0.99)]
            res["samples"] = len(lat)
    return res


def make_cert(work):
    key, cert = os.path.join(work, "key.pem"), os.path.join(work, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return key, cert


def start_knot(work, zonefile, port):
    conf = os.path.join(work, "knot.conf")
    os.makedirs(os.path.join(work, "knot-db"), exist_ok=True)
    with open(conf, "w") as f:
        f.write(f"""server:
  listen: 127.0.0.1@{port}
  udp-workers: 2
  tcp-workers: 2
  background-workers: 1
  rundir: {work}
log:
  - target: stderr
    any: error
database:
  storage: {work}/knot-db
zone:
  - domain: {ZONE}
    file: {zonefile}
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
""")
    p = Proc(["knotd", "-c", conf])
    return p, wait_answer(port, f"host0.{ZONE}", ip_for(0))


def start_coredns(binary, work, zonefile, key, cert, dns, tls, https):
    corefile = os.path.join(work, "Corefile")
    block = f"  file {zonefile} {ZONE}\n  errors\n"
    with open(corefile, "w") as f:
        f.write(f"dns://{ZONE}:{dns} {{\n  bind 127.0.0.1\n{block}}}\n"
                f"tls://{ZONE}:{tls} {{\n  bind 127.0.0.1\n  tls {cert} {key}\n{block}}}\n"
                f"https://{ZONE}:{https} {{\n  bind 127.0.0.1\n  tls {cert} {key}\n{block}}}\n")
    p = Proc([binary, "-conf", corefile], env={**os.environ, "GOMAXPROCS": "2"})
    return p, wait_answer(dns, f"host0.{ZONE}", ip_for(0))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--names", type=int, default=10000)
    ap.add_argument("--seconds", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rate", type=int, default=5000, help="offered load for the latency run")
    args = ap.parse_args()
    for tool in ("knotd", "dnsperf", "h2load", "openssl"):
        if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
            sys.exit(f"{tool} not found: run e2e/deps.sh")
    coredns = subprocess.run([os.path.join(ROOT, "e2e", "tools.sh"), "coredns"], check=True,
                             capture_output=True, text=True).stdout.strip()
    log("building zonegate (release)")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "zonegate")
    work = tempfile.mkdtemp(prefix="zg-bench-tr-")
    n = args.names
    procs = {}
    try:
        d = os.path.join(work, "m")
        write_manifests(d, n)
        zonefile = os.path.join(work, f"{ZONE}.zone")
        with open(zonefile, "w") as f:
            subprocess.run([binary, "render", "--manifests", d], stdout=f, check=True)
        queries = os.path.join(work, "q.txt")
        write_queries(queries, n)
        key, cert = make_cert(work)

        zg = {k: free_port() for k in ("dns", "tls", "https")}
        p = Proc([binary, "serve", "--manifests", d, "--listen", f"127.0.0.1:{zg['dns']}",
                  "--tls-listen", f"127.0.0.1:{zg['tls']}", "--https-listen", f"127.0.0.1:{zg['https']}",
                  "--tls-cert", cert, "--tls-key", key], env={**os.environ, "RUST_LOG": "error"})
        procs["zonegate"] = (p, wait_answer(zg["dns"], f"host0.{ZONE}", ip_for(0)))
        kport = free_port()
        procs["knot"] = start_knot(work, zonefile, kport)
        cd = {k: free_port() for k in ("dns", "tls", "https")}
        procs["coredns"] = start_coredns(coredns, work, zonefile, key, cert, cd["dns"], cd["tls"], cd["https"])
        time.sleep(1)
        # (mode, [(server, port)]): the first server is zonegate, the second its peer
        cases = [
            ("tcp", [("zonegate", zg["dns"]), ("knot", kport)]),
            ("dot", [("zonegate", zg["tls"]), ("coredns", cd["tls"])]),
            ("doh", [("zonegate", zg["https"]), ("coredns", cd["https"])]),
        ]
        results = {"rss_kib": {s: rss_kib(pp.p.pid) for s, (pp, _) in procs.items()},
                   "startup_s": {s: t for s, (_, t) in procs.items()}}
        for mode, pair in cases:
            r = results[mode] = {s: {"rounds": [], "cpu_us": []} for s, _ in pair}
            uris = {port: doh_uris(queries, port, os.path.join(work, f"uris{port}.txt")) for _, port in pair} if mode == "doh" else {}
            for rnd in range(args.rounds):
                for server, port in pair:
                    pid = procs[server][0].p.pid
                    cpu0 = cpu_seconds(pid)
                    if mode == "doh":
                        out = h2load(uris[port], args.seconds, 64)
                    else:
                        out = dnsperf(port, queries, args.seconds, mode=mode)
                    cpu = cpu_seconds(pid) - cpu0
                    r[server]["rounds"].append(out["qps"])
                    r[server]["cpu_us"].append(cpu * 1e6 / max(1, out["completed"]))
                    r[server]["lost"] = out["lost"]
                    r[server]["rcodes"] = out["rcodes"]
                    log(f"{mode} round {rnd + 1}: {server} {out['qps']:.0f} qps, lost {out['lost']}")
            for server, _ in pair:
                r[server]["qps"] = statistics.median(r[server]["rounds"])
                r[server]["cpu_us_median"] = statistics.median(r[server]["cpu_us"])
            rate = int(min(args.rate, 0.5 * min(r[s]["qps"] for s, _ in pair)))
            for server, port in pair:
                if mode == "doh":
                    lat = h2load(uris[port], max(3, args.seconds // 2), 1, log=os.path.join(work, f"h2log{port}"))
                    lat["rate"] = f"{lat['qps']:.0f} (8 x 1 outstanding)"
                else:
                    lat = dnsperf(port, queries, max(3, args.seconds // 2), rate=rate, mode=mode)
                r[server].update({"rate": lat.pop("rate", rate), **{f"lat_{k}": v for k, v in lat.items()}})
            log(json.dumps(r))
    finally:
        for p, _ in procs.values():
            p.stop()
        shutil.rmtree(work, ignore_errors=True)

    cpu = subprocess.run(["sh", "-c", "nproc; grep -m1 'model name' /proc/cpuinfo"], capture_output=True, text=True).stdout.split("\n")
    print(f"Machine: {cpu[0]} cores, {cpu[1].split(':')[-1].strip() if len(cpu) > 1 else '?'}; {n} names; 8 connections "
          f"(dnsperf 500 outstanding, h2load 64 streams each), {args.rounds} alternating rounds of {args.seconds}s per server (median).\n")
    print("| transport | server | max QPS | ratio (zonegate / peer) | CPU µs per query | lost | offered qps | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for mode, pair in cases:
        r = results[mode]
        peer = pair[1][0]
        for server, _ in pair:
            x = r[server]
            ratio = f"**{x['qps'] / r[peer]['qps']:.2f}x**" if server == "zonegate" and r[peer]["qps"] else "1.00x"
            print(f"| {mode} | {server} | {x['qps']:.0f} | {ratio} | {x['cpu_us_median']:.2f} | {x['lost']} | {x['rate']} | "
                  f"{x.get('lat_p50_ms', 0):.3f} | {x.get('lat_p99_ms', 0):.3f} |")
    print("\nRSS after start (MiB): " + ", ".join(f"{s} {k / 1024:.1f}" for s, k in results["rss_kib"].items()))
    print("\n```json\n" + json.dumps(results, indent=1) + "\n```")


if __name__ == "__main__":
    main()
