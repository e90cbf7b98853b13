#!/usr/bin/env python3
"""Memory benchmark: does `zonegate serve --manifests` give memory back?

Two measurements, both relative to zonegate itself (the targets of issue 16 §1 compare a
process with its own earlier state, so no peer runs here; Knot's RSS at the same zone sizes is
in dns_vs_knot.py):

  * cycles: a zone of --base names; then --cycles times: add a file of --objects DNSEndpoint
    names (wait until its last name answers), remove it (wait until that name is gone), read
    VmRSS 1.5 s later (zonegate trims its heap a second after a publication). Reported: RSS after each cycle, and the last cycle's over the first's (target
    <= 1.1x);
  * peak: VmRSS sampled every 5 ms while the base zone loads at start, against the steady
    RSS once it answers (target: peak <= 1.5x steady).

Usage: e2e/bench/memory_cycles.py [--base 10000] [--objects 10000] [--cycles 10]
Prints a Markdown report on stdout and the raw figures as JSON.
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dns_vs_knot import ROOT, ZONE, Proc, dns_query, free_port, ip_for, log, rss_kib, wait_answer, write_manifests  # noqa: E402


def write_big(d, first, count):
    """One file of `count` names, host<first>..; written beside the tree, then renamed in."""
    lines = [f"apiVersion: externaldns.k8s.io/v1alpha1\nkind: DNSEndpoint\nmetadata: {{name: big, namespace: bench}}\nspec:\n  endpoints:\n"]
    for i in range(first, first + count):
        lines.append(f"  - {{dnsName: host{i}.{ZONE}, recordType: A, targets: [{ip_for(i)}]}}\n")
    tmp = os.path.join(d, ".big.tmp")
    with open(tmp, "w") as f:
        f.write("".join(lines))
    os.rename(tmp, os.path.join(d, "big.yaml"))


def wait_gone(port, name, timeout=60.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if dns_query(port, name, 0.2) == "":
            return
        time.sleep(0.002)
    raise RuntimeError(f"{name} still answers after {timeout}s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", type=int, default=10000)
    ap.add_argument("--objects", type=int, default=10000)
    ap.add_argument("--cycles", type=int, default=10)
    args = ap.parse_args()
    log("building zonegate (release)")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "zonegate")
    work = tempfile.mkdtemp(prefix="zg-bench-mem-")
    res = {"rss_after_cycle_kib": []}
    zg = None
    try:
        d = os.path.join(work, "m")
        write_manifests(d, args.base)
        port = free_port()
        zg = Proc([binary, "serve", "--manifests", d, "--listen", f"127.0.0.1:{port}"],
                  env={**os.environ, "RUST_LOG": "error"})
        peak = [0]
        done = threading.Event()

        def sample():
            while not done.is_set():
                try:
                    peak[0] = max(peak[0], rss_kib(zg.p.pid))
                except OSError:
                    pass
                time.sleep(0.005)

        sampler = threading.Thread(target=sample)
        sampler.start()
        wait_answer(port, f"host{args.base - 1}.{ZONE}", ip_for(args.base - 1))
        time.sleep(0.5)
        done.set()
        sampler.join()
        res["steady_kib"] = rss_kib(zg.p.pid)
        res["peak_kib"] = peak[0]
        last = args.base + args.objects - 1
        for c in range(args.cycles):
            write_big(d, args.base, args.objects)
            wait_answer(port, f"host{last}.{ZONE}", ip_for(last))
            os.remove(os.path.join(d, "big.yaml"))
            wait_gone(port, f"host{last}.{ZONE}")
            # zonegate gives freed memory back a second after the last publication
            time.sleep(1.5)
            rss = rss_kib(zg.p.pid)
            res["rss_after_cycle_kib"].append(rss)
            log(f"cycle {c + 1}: RSS {rss / 1024:.1f} MiB")
    finally:
        if zg:
            zg.stop()
        shutil.rmtree(work, ignore_errors=True)
    cyc = res["rss_after_cycle_kib"]
    print(f"Machine: {os.cpu_count()} cores; a zone of {args.base} names; {args.cycles} cycles of "
          f"adding and removing one file of {args.objects} names.\n")
    print("| measurement | zonegate | target |")
    print("|---|---|---|")
    print(f"| RSS steady after start-up / peak during it (MiB) | {res['steady_kib'] / 1024:.1f} / "
          f"{res['peak_kib'] / 1024:.1f} = **{res['peak_kib'] / res['steady_kib']:.2f}x** | <= 1.5x |")
    print(f"| RSS after cycle 1 / cycle {len(cyc)} (MiB) | {cyc[0] / 1024:.1f} / {cyc[-1] / 1024:.1f} = "
          f"**{cyc[-1] / cyc[0]:.2f}x** | <= 1.1x |")
    print(f"| RSS after each cycle (MiB) | {', '.join(f'{r / 1024:.0f}' for r in cyc)} | |")
    print("\n```json\n" + json.dumps(res, indent=1) + "\n```")


if __name__ == "__main__":
    main()
