#!/usr/bin/env python3
"""Operator benchmark: N DNSZones from apply to Ready on the e2e control plane.

For each N (default 100 and 1000) the script creates a namespace, starts `zonegate operator`
(release build), creates N DNSZones at once, and plays the parts the control plane lacks:
a load-balancer controller (it gives every nameserver Service an address through the status
subresource, as MetalLB would) and a kubelet (it marks every server pod Ready, so that
kube-controller-manager's Deployment controller reports available replicas). It records when
each zone first shows Accepted=True and Ready=True, then watches the converged zones for a
while to count the operator's writes (should be 0), and prints a Markdown table.

Note that Ready also waits for kube-controller-manager to create the ReplicaSets and pods and
to update the Deployment status; its client is rate-limited (default 20 QPS per controller),
which dominates at 1000 zones. The "objects" column shows when the operator itself was done
applying every zone's objects.

Usage: e2e/bench/operator_scale.py [--zones 100,1000] [--nameservers 2] [--replicas 1]
                                   [--concurrency 16] [--idle 30] [--binary PATH]
Uses the cluster of $KUBECONFIG (an `e2e/cluster up` run: admin client certificate), or starts
one with e2e/cluster up and stops it at the end.
"""

import argparse
import base64
import concurrent.futures as cf
import http.client
import json
import os
import random
import re
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def log(*a):
    print("[bench]", *a, file=sys.stderr, flush=True)


class Kube:
    """A minimal Kubernetes REST client (client-certificate kubeconfig), one connection per
    thread."""

    def __init__(self, kubeconfig):
        text = open(kubeconfig).read()

        def field(name):
            m = re.search(rf"^\s*{name}:\s*(\S+)\s*$", text, re.M)
            if not m:
                sys.exit(f"{kubeconfig}: no {name}")
            return m.group(1)

        server = field("server")
        m = re.match(r"https://([^:/]+):(\d+)", server)
        self.host, self.port = m.group(1), int(m.group(2))
        self.tmp = tempfile.mkdtemp(prefix="zg-bench-")
        files = {}
        for key, name in [("certificate-authority-data", "ca.crt"),
                          ("client-certificate-data", "client.crt"),
                          ("client-key-data", "client.key")]:
            path = os.path.join(self.tmp, name)
            with open(path, "wb") as f:
                f.write(base64.b64decode(field(key)))
            files[name] = path
        self.ctx = ssl.create_default_context(cafile=files["ca.crt"])
        self.ctx.load_cert_chain(files["client.crt"], files["client.key"])
        self.local = threading.local()

    def conn(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=60)
            self.local.conn = c
        return c

    def request(self, method, path, body=None, ctype="application/json"):
        for attempt in range(5):
            c = self.conn()
            try:
                headers = {"Accept": "application/json"}
                data = None
                if body is not None:
                    data = json.dumps(body).encode()
                    headers["Content-Type"] = ctype
                c.request(method, path, body=data, headers=headers)
                r = c.getresponse()
                out = r.read()
                if r.status == 429 or r.status >= 500:
                    time.sleep(0.2 * (attempt + 1))
                    continue
                return r.status, (json.loads(out) if out else None)
            except (http.client.HTTPException, OSError):
                self.local.conn = None
                time.sleep(0.2)
        raise RuntimeError(f"{method} {path} kept failing")

    def ok(self, method, path, body=None, ctype="application/json", allow=()):
        status, out = self.request(method, path, body, ctype)
        if status >= 300 and status not in allow:
            raise RuntimeError(f"{method} {path}: {status} {out}")
        return out


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def http_get(port, path):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode()
    except OSError:
        return 0, ""


def metric(text, name):
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        head = re.split(r"[{ ]", line, 1)[0]
        if head == name:
            total += float(line.rsplit(" ", 1)[1])
    return total


def samples(text, name):
    """{labels: value} of metric family `name`."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name):].rsplit(" ", 1)
            out[labels] = float(value)
    return out


def proc_stats(pid):
    """(cpu seconds, peak RSS MiB) of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1]) / 1024
    return cpu, rss


def cond(zone, t):
    for c in (zone.get("status") or {}).get("conditions") or []:
        if c.get("type") == t:
            return c.get("status")
    return None


def run(kube, n, args, binary):
    ns = f"zg-bench-{n}-{random.randrange(16**6):06x}"
    kube.ok("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                            "metadata": {"name": ns, "labels": {"zonegate.dev/bench": "true"}}})
    port = free_port()
    logf = open(os.path.join(kube.tmp, f"operator-{n}.log"), "w")
    op = subprocess.Popen(
        [binary, "--log-format", "json", "operator", "--server-image", "registry.example/zonegate:bench",
         "--kubeconfig", os.environ["KUBECONFIG"], "--http", f"127.0.0.1:{port}",
         "--leader-elect", "false", "--delegation-check-interval", "0",
         "--concurrency", str(args.concurrency), "--node-spread", "preferred"],
        stdout=subprocess.DEVNULL, stderr=logf, env={**os.environ, "RUST_LOG": "warn"})
    try:
        deadline = time.time() + 60
        while http_get(port, "/readyz")[0] != 200:
            if op.poll() is not None or time.time() > deadline:
                sys.exit(f"the operator did not start; see {logf.name}")
            time.sleep(0.1)
        base = f"/apis/zonegate.dev/v1alpha1/namespaces/{ns}/dnszones"
        zones = [{"apiVersion": "zonegate.dev/v1alpha1", "kind": "DNSZone",
                  "metadata": {"name": f"z{i}"},
                  "spec": {"domain": f"z{i}.{ns}.example.test",
                           "nameservers": {"count": args.nameservers, "replicas": args.replicas}}}
                 for i in range(n)]
        pool = cf.ThreadPoolExecutor(max_workers=16)
        t0 = time.time()
        list(pool.map(lambda z: kube.ok("POST", base, z), zones))
        t_created = time.time() - t0
        log(f"{n} zones created in {t_created:.1f}s")

        accepted, ready = {}, {}
        done_lb, done_pods = set(), set()
        objects_at = None
        expected_services = n * args.nameservers
        expected_deployments = n * args.nameservers
        stop = time.time() + args.timeout
        while len(ready) < n and time.time() < stop:
            now = time.time() - t0
            # load balancer: every new nameserver Service gets an address
            svcs = kube.ok("GET", f"/api/v1/namespaces/{ns}/services?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dzonegate")["items"]
            todo = [s["metadata"]["name"] for s in svcs if s["metadata"]["name"] not in done_lb]

            def give_ip(name):
                m = re.match(r"z(\d+)-ns(\d+)$", name)
                i = int(m.group(1)) * args.nameservers + int(m.group(2))
                ip = f"198.{18 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"
                kube.ok("PATCH", f"/api/v1/namespaces/{ns}/services/{name}/status",
                        {"status": {"loadBalancer": {"ingress": [{"ip": ip}]}}},
                        "application/merge-patch+json")
                return name
            done_lb.update(pool.map(give_ip, todo))
            # kubelet: every new server pod becomes Ready
            pods = kube.ok("GET", f"/api/v1/namespaces/{ns}/pods?labelSelector=zonegate.dev%2Fzone")["items"]
            todo = [p["metadata"]["name"] for p in pods if p["metadata"]["name"] not in done_pods]

            def make_ready(name):
                kube.ok("PATCH", f"/api/v1/namespaces/{ns}/pods/{name}/status",
                        {"status": {"phase": "Running", "conditions": [
                            {"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}]}},
                        "application/merge-patch+json", allow=(404,))
                return name
            done_pods.update(pool.map(make_ready, todo))
            if objects_at is None:
                deps = kube.ok("GET", f"/apis/apps/v1/namespaces/{ns}/deployments?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dzonegate")["items"]
                pdbs = kube.ok("GET", f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets")["items"]
                if len(svcs) >= expected_services and len(deps) >= expected_deployments and len(pdbs) >= n:
                    objects_at = now
            for z in kube.ok("GET", base)["items"]:
                name = z["metadata"]["name"]
                if name not in accepted and cond(z, "Accepted") == "True":
                    accepted[name] = now
                if name not in ready and cond(z, "Ready") == "True":
                    ready[name] = now
            time.sleep(0.5)
        total = time.time() - t0
        if len(ready) < n:
            log(f"only {len(ready)} of {n} zones Ready after {args.timeout}s")
        # converged: count writes while nothing changes
        _, text = http_get(port, "/metrics")
        writes_done = metric(text, "zonegate_operator_api_writes_total")
        before = samples(text, "zonegate_operator_api_writes_total")
        time.sleep(args.idle)
        _, text = http_get(port, "/metrics")
        idle_writes = metric(text, "zonegate_operator_api_writes_total") - writes_done
        after = samples(text, "zonegate_operator_api_writes_total")
        for labels, v in sorted(after.items()):
            if v != before.get(labels, 0.0):
                log(f"write while idle: {labels} +{v - before.get(labels, 0.0):.0f}")
        reconciles = metric(text, "zonegate_operator_reconciles_total")
        errors = metric(text, "zonegate_operator_reconcile_errors_total")
        dsum = metric(text, "zonegate_operator_reconcile_duration_seconds_sum")
        dcount = metric(text, "zonegate_operator_reconcile_duration_seconds_count")
        cpu, rss = proc_stats(op.pid)
        lat = sorted(ready.values())

        def pct(p):
            return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")
        return {
            "zones": n, "created": t_created, "accepted": max(accepted.values()) if len(accepted) == n else float("nan"),
            "objects": objects_at if objects_at is not None else float("nan"),
            "p50": pct(0.5), "p90": pct(0.9), "all": max(lat) if len(lat) == n else float("nan"),
            "ready": len(ready), "writes": writes_done, "idle_writes": idle_writes,
            "reconciles": reconciles, "errors": errors,
            "mean_ms": 1000 * dsum / dcount if dcount else float("nan"), "cpu": cpu, "rss": rss,
            "total": total,
        }
    finally:
        # Delete the zones with the operator still running, so that it removes the
        # ClusterRoleBindings (no owner references), and let the namespace go before the next run.
        kube.request("DELETE", f"/api/v1/namespaces/{ns}")
        sel = f"zonegate.dev%2Fzone-namespace%3D{ns}"
        deadline = time.time() + 900
        while time.time() < deadline:
            gone = kube.request("GET", f"/api/v1/namespaces/{ns}")[0] == 404
            crbs = kube.ok("GET", f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings?labelSelector={sel}")["items"]
            if gone and not crbs:
                break
            time.sleep(2)
        else:
            log(f"namespace {ns} or its ClusterRoleBindings still there after 900 s")
        op.terminate()
        try:
            op.wait(10)
        except subprocess.TimeoutExpired:
            op.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--zones", default="100,1000")
    ap.add_argument("--nameservers", type=int, default=2)
    ap.add_argument("--replicas", type=int, default=1)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--idle", type=int, default=30, help="seconds to count writes of converged zones")
    ap.add_argument("--timeout", type=int, default=1800)
    ap.add_argument("--binary", help="use this zonegate binary instead of building target/release/zonegate")
    args = ap.parse_args()

    binary = args.binary
    if not binary:
        log("building the release binary")
        subprocess.run(["cargo", "build", "--release", "--bin", "zonegate"], cwd=REPO, check=True,
                       stdout=sys.stderr)
        binary = os.path.join(REPO, "target", "release", "zonegate")

    run_dir = None
    if not os.environ.get("KUBECONFIG"):
        out = subprocess.run([os.path.join(REPO, "e2e", "cluster"), "up"], check=True,
                             stdout=subprocess.PIPE, text=True).stdout
        kc = out.strip().splitlines()[-1].split("=", 1)[1]
        os.environ["KUBECONFIG"] = kc
        run_dir = os.path.dirname(kc)
    try:
        kube = Kube(os.environ["KUBECONFIG"])
        results = []
        for n in [int(x) for x in args.zones.split(",")]:
            log(f"{n} zones")
            results.append(run(kube, n, args, binary))
    finally:
        if run_dir:
            subprocess.run([os.path.join(REPO, "e2e", "cluster"), "down", run_dir])

    print(f"Operator: DNSZones from apply to Ready ({args.nameservers} nameservers x {args.replicas} "
          f"replica each, --concurrency {args.concurrency}; {os.cpu_count()} CPUs; e2e control plane "
          f"on loopback; load balancer and kubelet simulated by the benchmark). Times in seconds from "
          f"the first create.\n")
    print("| zones | created | all Accepted | all objects applied | Ready p50 | Ready p90 | all Ready "
          "| operator writes | writes in converged idle | reconciles | errors | mean reconcile ms "
          "| operator CPU s | operator peak RSS MiB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['zones']} | {r['created']:.1f} | {r['accepted']:.1f} | {r['objects']:.1f} | {r['p50']:.1f} "
              f"| {r['p90']:.1f} | {r['all']:.1f} | {r['writes']:.0f} | {r['idle_writes']:.0f} ({args.idle} s) "
              f"| {r['reconciles']:.0f} | {r['errors']:.0f} | {r['mean_ms']:.1f} | {r['cpu']:.1f} | {r['rss']:.0f} |")


if __name__ == "__main__":
    main()
