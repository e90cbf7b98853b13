#!/usr/bin/env python3
"""DNS data-plane benchmark: `zonegate serve --manifests` side by side with Knot DNS.

Both servers get the same zone (Knot loads exactly what `zonegate render` prints), run on the
same machine in turn, and are measured with the same dnsperf runs:

  * max QPS: dnsperf, 90% existing names / 10% NXDOMAIN, fixed duration; the ratio of the
    medians and the "paired ratio", the median of each round's ratio to the Knot round next to
    it (less sensitive to load that drifts between rounds);
  * latency: p50/p99 at a fixed offered load (dnsperf -Q, per-query latencies with -v);
  * RSS after loading (VmRSS) at each zone size;
  * start-up: spawn to first correct answer;
  * zonegate only (Knot has no file watch): time from a manifest change to the changed answer;
  * with --rrl: a third server, zonegate with response rate limiting on at a rate no query
    reaches (every response is charged to its account, none is limited), to measure what the
    accounting costs next to zonegate without it;
  * with --dnssec: both servers sign (ECDSAP256SHA256, one combined key each, NSEC3 with 0
    iterations and no salt: zonegate from a key Secret in the tree, Knot with
    `dnssec-signing: on` and the same parameters from the unsigned zone file), every query has
    the DO bit, start-up includes signing, and a DO query to each must carry RRSIGs.

Usage: e2e/bench/dns_vs_knot.py [--names 10000,100000] [--seconds 10] [--rate 20000] [--rrl]
       [--dnssec]
Prints a Markdown report on stdout. Needs: cargo, knotd, dnsperf (e2e/deps.sh installs them).
"""
import argparse, json, os, random, re, shutil, signal, socket, statistics, struct, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ZONE = "bench.example"


def log(*a):
    print("[bench]", *a, file=sys.stderr, flush=True)


def free_port():
    while True:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()


def ip_for(i, gen=0):
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}" if gen == 0 else f"172.16.{(i >> 8) & 255}.{i & 255}"


def write_manifests(d, n, dnssec=False):
    os.makedirs(d, exist_ok=True)
    sign = ", dnssec: {enabled: true, algorithm: ECDSAP256SHA256}" if dnssec else ""
    with open(os.path.join(d, "zone.yaml"), "w") as f:
        f.write(f"apiVersion: zonegate.dev/v1alpha1\nkind: DNSZone\nmetadata: {{name: bench, namespace: bench}}\n"
                f"spec: {{domain: {ZONE}{sign}}}\nstatus:\n  nameservers:\n"
                f"  - {{hostname: ns1.{ZONE}, addresses: [192.0.2.1]}}\n  - {{hostname: ns2.{ZONE}, addresses: [192.0.2.2]}}\n")
    if dnssec:
        pem = subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
                             capture_output=True, text=True, check=True).stdout
        body = "".join(f"    {l}\n" for l in pem.splitlines())
        with open(os.path.join(d, "key.yaml"), "w") as f:
            f.write(f"apiVersion: v1\nkind: Secret\nmetadata: {{name: bench-dnssec, namespace: bench}}\nstringData:\n  key.pem: |\n{body}")
    per = 1000
    for chunk in range((n + per - 1) // per):
        write_chunk(d, chunk, n, per, gen=0)


def write_chunk(d, chunk, n, per, gen):
    lines = [f"apiVersion: externaldns.k8s.io/v1alpha1\nkind: DNSEndpoint\nmetadata: {{name: e{chunk}, namespace: bench}}\nspec:\n  endpoints:\n"]
    for i in range(chunk * per, min(n, (chunk + 1) * per)):
        ip = ip_for(i, gen if i == chunk * per else 0)
        lines.append(f"  - {{dnsName: host{i}.{ZONE}, recordType: A, targets: [{ip}]}}\n")
    tmp = os.path.join(d, f".e{chunk}.tmp")
    with open(tmp, "w") as f:
        f.write("".join(lines))
    os.rename(tmp, os.path.join(d, f"e{chunk}.yaml"))


def write_queries(path, n, count=200000):
    rnd = random.Random(42)
    with open(path, "w") as f:
        for _ in range(count):
            if rnd.random() < 0.9:
                f.write(f"host{rnd.randrange(n)}.{ZONE} A\n")
            else:
                f.write(f"nx{rnd.randrange(10 * n)}.{ZONE} A\n")


def dns_query(port, name, timeout=0.5):
    """One A query over UDP; returns the first IPv4 in the answer (or None)."""
    qid = random.randrange(65536)
    q = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        # connected: while nothing listens yet, the ICMP port-unreachable fails recv at once
        # instead of after the timeout, so start-up is measured to the millisecond
        s.connect(("127.0.0.1", port))
        s.send(q)
        data = s.recv(4096)
    except OSError:
        return None
    finally:
        s.close()
    ancount = struct.unpack(">H", data[6:8])[0]
    if ancount == 0:
        return ""
    # find the first A rdata: scan for type A class IN after the question
    i = len(q)
    for _ in range(ancount):
        if data[i] & 0xC0 == 0xC0:
            i += 2
        else:
            while data[i] != 0:
                i += data[i] + 1
            i += 1
        rtype, _, _, rdlen = struct.unpack(">HHIH", data[i:i + 10])
        i += 10
        if rtype == 1 and rdlen == 4:
            return ".".join(str(b) for b in data[i:i + 4])
        i += rdlen
    return ""


def wait_answer(port, name, want, timeout=60.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if dns_query(port, name, 0.2) == want:
            return time.monotonic() - t0
        time.sleep(0.001)
    raise RuntimeError(f"no answer {want} for {name} within {timeout}s")


def cpu_seconds(pid):
    """user + system CPU time of a process (and its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def dnsperf(port, queries, seconds, rate=None, mode="udp", do=False):
    cmd = ["dnsperf", "-m", mode, "-s", "127.0.0.1", "-p", str(port), "-d", queries, "-l", str(seconds), "-c", "8", "-q", "500", "-T", "1"]
    if do:
        cmd += ["-D"]
    if rate:
        cmd += ["-Q", str(rate), "-v"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    res = {}
    m = re.search(r"Queries per second:\s+([\d.]+)", out)
    res["qps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Queries lost:\s+(\d+)", out)
    res["lost"] = int(m.group(1)) if m else -1
    m = re.search(r"Queries completed:\s+(\d+)", out)
    res["completed"] = int(m.group(1)) if m else 0
    m = re.search(r"Response codes:\s+(.*)", out)
    res["rcodes"] = m.group(1).strip() if m else ""
    if rate:
        lat = [float(x) for x in re.findall(r"^> \S+ .* ([\d.]+)$", out, re.M)]
        lat.sort()
        if lat:
            res["p50_ms"] = lat[len(lat) // 2] * 1000
            res["p99_ms"] = lat[int(len(lat) * 0.99)] * 1000
            res["samples"] = len(lat)
    return res


class Proc:
    def __init__(self, cmd, **kw):
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def start_zonegate(binary, manifests, port, extra=()):
    p = Proc([binary, "serve", "--manifests", manifests, "--listen", f"127.0.0.1:{port}", *extra], env={**os.environ, "RUST_LOG": "error"})
    startup = wait_answer(port, f"host0.{ZONE}", ip_for(0))
    return p, startup


def signed_answer(port):
    """Whether a DO query for host0 is answered with an RRSIG (the server really signs)."""
    out = subprocess.run(["kdig", f"@127.0.0.1", "-p", str(port), "+dnssec", "+short", f"host0.{ZONE}", "A"],
                         capture_output=True, text=True).stdout
    return any(l.startswith("A 13 ") for l in out.splitlines())


def start_knot(workdir, zonefile, port, dnssec=False):
    conf = os.path.join(workdir, "knot.conf")
    shutil.rmtree(os.path.join(workdir, "knot-db"), ignore_errors=True)
    os.makedirs(os.path.join(workdir, "knot-db"), exist_ok=True)
    policy = signing = ""
    if dnssec:
        # the parameters zonegate signs with (docs/dnssec.md)
        policy = """policy:
  - id: bench
    algorithm: ecdsap256sha256
    single-type-signing: on
    nsec3: on
    nsec3-iterations: 0
    nsec3-salt-length: 0
    nsec3-opt-out: off
    rrsig-lifetime: 14d
    rrsig-refresh: 7d
"""
        signing = "    dnssec-signing: on\n    dnssec-policy: bench\n"

    with open(conf, "w") as f:
        f.write(f"""server:
  listen: 127.0.0.1@{port}
  udp-workers: 2
  tcp-workers: 1
  background-workers: 1
  rundir: {workdir}
log:
  - target: stderr
    any: error
database:
  storage: {workdir}/knot-db
{policy}zone:
  - domain: {ZONE}
    file: {zonefile}
    zonefile-load: whole
    journal-content: none
    zonefile-sync: -1
    semantic-checks: off
{signing}""")
    p = Proc(["knotd", "-c", conf])
    startup = wait_answer(port, f"host0.{ZONE}", ip_for(0))
    return p, startup


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--names", default="10000,100000")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rate", type=int, default=20000, help="offered load for the latency run")
    ap.add_argument("--changes", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3, help="alternating dnsperf rounds per server")
    ap.add_argument("--rrl", action="store_true", help="also zonegate with RRL on at a rate never reached")
    ap.add_argument("--dnssec", action="store_true", help="both servers sign; every query has DO")
    args = ap.parse_args()
    servers = ("zonegate", "knot", "zonegate-rrl") if args.rrl else ("zonegate", "knot")
    for tool in ("knotd", "dnsperf"):
        if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
            sys.exit(f"{tool} not found: run e2e/deps.sh")
    log("building zonegate (release)")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "zonegate")
    results = {}
    work = tempfile.mkdtemp(prefix="zg-bench-")
    try:
        for n in [int(x) for x in args.names.split(",")]:
            d = os.path.join(work, f"m{n}")
            write_manifests(d, n, args.dnssec)
            zonefile = os.path.join(work, f"{ZONE}.{n}.zone")
            with open(zonefile, "w") as f:
                # unsigned: Knot signs it itself with --dnssec
                subprocess.run([binary, "render", "--manifests", d], stdout=f, check=True)
            queries = os.path.join(work, f"q{n}.txt")
            write_queries(queries, n)
            r = results[n] = {}
            # Both servers run side by side (an idle server costs nothing); dnsperf alternates
            # between them for --rounds rounds so that background load hits both alike, and the
            # medians are reported.
            procs = {}
            try:
                for name in servers:
                    port = free_port()
                    log(f"{n} names: starting {name}")
                    if name == "zonegate":
                        proc, startup = start_zonegate(binary, d, port)
                    elif name == "zonegate-rrl":
                        proc, startup = start_zonegate(binary, d, port, ["--rrl-responses-per-second", "1000000000"])
                    else:
                        proc, startup = start_knot(work, zonefile, port, args.dnssec)
                    if args.dnssec and not signed_answer(port):
                        sys.exit(f"{name} answers host0 without an RRSIG: not signing")
                    procs[name] = (proc, port)
                    time.sleep(0.5)
                    r[name] = {"startup_s": startup, "rss_kib": rss_kib(proc.p.pid), "rounds": []}
                for rnd in range(args.rounds):
                    for name in servers:
                        proc, port = procs[name]
                        cpu0 = cpu_seconds(proc.p.pid)
                        peak = dnsperf(port, queries, args.seconds, do=args.dnssec)
                        cpu = cpu_seconds(proc.p.pid) - cpu0
                        r[name]["rounds"].append(peak["qps"])
                        r[name].setdefault("cpu_us_per_query", []).append(cpu * 1e6 / max(1, peak["completed"]))
                        r[name]["max_lost"] = peak["lost"]
                        log(f"round {rnd + 1}: {name} {peak['qps']:.0f} qps")
                for name in servers:
                    proc, port = procs[name]
                    r[name]["max_qps"] = statistics.median(r[name]["rounds"])
                    r[name]["cpu_us"] = statistics.median(r[name]["cpu_us_per_query"])
                    lat = dnsperf(port, queries, max(3, args.seconds // 2), rate=args.rate, do=args.dnssec)
                    r[name].update({f"lat_{k}": v for k, v in lat.items()})
                    r[name]["rss_after_kib"] = rss_kib(proc.p.pid)
                proc, port = procs["zonegate"]
                times = []
                written = {}
                for c in range(args.changes):
                    chunk = c % max(1, n // 1000)
                    i = chunk * 1000
                    # changed, back, changed, ... per chunk: every rewrite changes an address
                    written[chunk] = written.get(chunk, 0) + 1
                    gen = written[chunk] % 2
                    write_chunk(d, chunk, n, 1000, gen)
                    t = wait_answer(port, f"host{i}.{ZONE}", ip_for(i, gen), 30)
                    times.append(t)
                    time.sleep(0.05)
                r["zonegate"]["change_ms_median"] = statistics.median(times) * 1000
                r["zonegate"]["change_ms_max"] = max(times) * 1000
            finally:
                for proc, _ in procs.values():
                    proc.stop()
            log(json.dumps(r))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    cpu = subprocess.run(["sh", "-c", "nproc; grep -m1 'model name' /proc/cpuinfo"], capture_output=True, text=True).stdout.split("\n")
    if args.dnssec:
        print("Signed zones (ECDSAP256SHA256, NSEC3 0 iterations, no salt), every query with DO; start-up includes signing.\n")
    print(f"Machine: {cpu[0]} cores, {cpu[1].split(':')[-1].strip() if len(cpu) > 1 else '?'}; dnsperf 8 clients, 500 outstanding, {args.rounds} alternating rounds of {args.seconds}s per server (median shown, all rounds in the JSON); latency at {args.rate} qps offered.\n")
    print("| names | server | max QPS | ratio vs Knot | paired ratio | CPU µs per query | Knot's CPU / ours | lost | p50 ms | p99 ms | RSS MiB | start-up s | change→answer ms (median / max) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n, r in results.items():
        for name in servers:
            x = r[name]
            ratio = x["max_qps"] / r["knot"]["max_qps"] if r["knot"]["max_qps"] else 0
            ch = f"{x['change_ms_median']:.1f} / {x['change_ms_max']:.1f}" if "change_ms_median" in x else "n/a (no watch)"
            eff = r["knot"]["cpu_us"] / x["cpu_us"] if x["cpu_us"] else 0
            # the median of each round's ratio to the Knot round right after it: background load
            # that drifts between rounds hits both servers of a pair alike
            paired = statistics.median(a / b for a, b in zip(x["rounds"], r["knot"]["rounds"]) if b)
            print(f"| {n} | {name} | {x['max_qps']:.0f} | {ratio:.2f}x | {paired:.2f}x | {x['cpu_us']:.2f} | {eff:.2f}x | {x['max_lost']} | {x.get('lat_p50_ms', 0):.3f} | {x.get('lat_p99_ms', 0):.3f} | {x['rss_kib'] / 1024:.1f} | {x['startup_s']:.3f} | {ch} |")
    if args.rrl:
        print("\n| names | zonegate with RRL on (never limiting) / without: max QPS | CPU µs per query, with / without |")
        print("|---|---|---|")
        for n, r in results.items():
            a, b = r["zonegate-rrl"], r["zonegate"]
            print(f"| {n} | {a['max_qps'] / b['max_qps']:.2f}x | {a['cpu_us']:.2f} / {b['cpu_us']:.2f} |")
    print("\n```json\n" + json.dumps(results, indent=1) + "\n```")


if __name__ == "__main__":
    main()
