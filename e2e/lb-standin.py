#!/usr/bin/env python3
"""A stand-in load balancer for the e2e node: Services of type LoadBalancer get an address from a
pool of host loopback addresses, and traffic to it is forwarded to the Service's ready pods.

    lb-standin.py --netns /run/netns/NODE --kubectl BIN/kubectl --kubeconfig KC \
                  --pool 127.77.0.0/24 [--tag X]

Every 0.5 s it lists Services and EndpointSlices (kubectl). A LoadBalancer Service without a
loadBalancerClass gets the next free pool address, written to status.loadBalancer.ingress[0].ip
(the only thing a cloud controller would write), and one listener per Service port on that
address in the host's network namespace. A UDP datagram or TCP connection to it is forwarded to
one ready endpoint of the port (random, then sticky per client address and port while that
endpoint stays ready, like kube-proxy's conntrack) through a socket created in the node's
network namespace, where the pod addresses live. No NAT, no iptables: clients see the listener
as the server, and the pods see this process's node-side address as the client (as with
externalTrafficPolicy: Cluster). Not implemented: NodePort, ClusterIP routing, health checks
beyond EndpointSlice readiness, IPv6. --tag is ignored (it names the run in `ps`).
"""
import argparse
import ctypes
import ipaddress
import json
import os
import queue
import random
import socket
import subprocess
import sys
import threading
import time

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)
UDP_IDLE = 30.0


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


class NetnsSockets:
    """Creates sockets inside the node's network namespace: a thread that entered it (setns
    changes only the calling thread's namespace) makes them on request; a socket stays in the
    namespace it was made in whichever thread uses it."""

    def __init__(self, path):
        self.requests = queue.Queue()
        ready = queue.Queue()

        def worker():
            fd = os.open(path, os.O_RDONLY)
            if libc.setns(fd, CLONE_NEWNET) != 0:
                ready.put(OSError(ctypes.get_errno(), "setns " + path))
                return
            os.close(fd)
            ready.put(None)
            while True:
                kind, reply = self.requests.get()
                try:
                    reply.put(socket.socket(socket.AF_INET, kind))
                except OSError as e:
                    reply.put(e)

        threading.Thread(target=worker, daemon=True).start()
        err = ready.get()
        if err:
            raise err

    def socket(self, kind):
        reply = queue.Queue()
        self.requests.put((kind, reply))
        s = reply.get()
        if isinstance(s, Exception):
            raise s
        return s


class Listener:
    """One Service port on its load-balancer address."""

    def __init__(self, lb, addr, port, proto):
        self.lb, self.addr, self.port, self.proto = lb, addr, port, proto
        self.endpoints = []          # [(ip, port)] of ready endpoints
        self.closed = False
        kind = socket.SOCK_DGRAM if proto == "UDP" else socket.SOCK_STREAM
        self.sock = socket.socket(socket.AF_INET, kind)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, port))
        if proto == "TCP":
            self.sock.listen(128)
            threading.Thread(target=self.accept_loop, daemon=True).start()
        else:
            self.flows = {}          # client -> (upstream socket, endpoint, last use)
            self.flows_lock = threading.Lock()
            threading.Thread(target=self.udp_loop, daemon=True).start()

    def pick(self):
        eps = self.endpoints
        return random.choice(eps) if eps else None

    def udp_loop(self):
        while not self.closed:
            try:
                data, client = self.sock.recvfrom(65535)
            except OSError:
                return
            with self.flows_lock:
                flow = self.flows.get(client)
                if flow and flow[1] not in self.endpoints:
                    flow[0].close()
                    flow = None
                if not flow:
                    ep = self.pick()
                    if not ep:
                        continue
                    up = self.lb.netns.socket(socket.SOCK_DGRAM)
                    up.connect(ep)
                    flow = [up, ep, time.monotonic()]
                    self.flows[client] = flow
                    threading.Thread(target=self.udp_back, args=(client, flow), daemon=True).start()
                flow[2] = time.monotonic()
            try:
                flow[0].send(data)
            except OSError:
                pass

    def udp_back(self, client, flow):
        up = flow[0]
        up.settimeout(1.0)
        while not self.closed:
            try:
                data = up.recv(65535)
            except socket.timeout:
                if time.monotonic() - flow[2] > UDP_IDLE or up.fileno() < 0:
                    break
                continue
            except OSError:
                break
            try:
                self.sock.sendto(data, client)
            except OSError:
                pass
        with self.flows_lock:
            if self.flows.get(client) is flow:
                del self.flows[client]
        up.close()

    def accept_loop(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.tcp_flow, args=(conn,), daemon=True).start()

    def tcp_flow(self, conn):
        ep = self.pick()
        if not ep:
            conn.close()
            return
        up = self.lb.netns.socket(socket.SOCK_STREAM)
        up.settimeout(5)
        try:
            up.connect(ep)
        except OSError:
            conn.close()
            up.close()
            return
        up.settimeout(None)
        t = threading.Thread(target=pump, args=(conn, up), daemon=True)
        t.start()
        pump(up, conn)
        t.join()
        conn.close()
        up.close()

    def close(self):
        self.closed = True
        self.sock.close()


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
        try:
            s.shutdown(how)
        except OSError:
            pass


class StandIn:
    def __init__(self, a):
        self.a = a
        self.netns = NetnsSockets(a.netns)
        self.pool = [str(ip) for ip in ipaddress.ip_network(a.pool).hosts()]
        self.assigned = {}       # "ns/name" -> address
        self.listeners = {}      # ("ns/name", port, proto) -> Listener

    def kubectl(self, *args, stdin=None):
        return subprocess.run([self.a.kubectl, "--kubeconfig", self.a.kubeconfig, *args],
                              input=stdin, capture_output=True, text=True, timeout=20)

    def get(self, what):
        out = self.kubectl("get", what, "--all-namespaces", "-o", "json")
        if out.returncode != 0:
            raise RuntimeError(out.stderr.strip())
        return json.loads(out.stdout)["items"]

    def sync(self):
        services = self.get("services")
        slices = self.get("endpointslices.discovery.k8s.io")
        wanted = {}
        for svc in services:
            spec, meta = svc["spec"], svc["metadata"]
            if spec.get("type") != "LoadBalancer" or spec.get("loadBalancerClass"):
                continue
            key = f"{meta['namespace']}/{meta['name']}"
            addr = self.assigned.get(key)
            if not addr:
                used = set(self.assigned.values())
                free = [ip for ip in self.pool if ip not in used]
                if not free:
                    log(f"pool {self.a.pool} exhausted; {key} gets no address")
                    continue
                addr = self.assigned[key] = free[0]
            ingress = (svc.get("status", {}).get("loadBalancer", {}) or {}).get("ingress") or []
            if [i.get("ip") for i in ingress] != [addr]:
                body = json.dumps({"status": {"loadBalancer": {"ingress": [{"ip": addr, "ipMode": "VIP"}]}}})
                out = self.kubectl("patch", "-n", meta["namespace"], "service", meta["name"],
                                   "--subresource=status", "--type=merge", "-p", body)
                log(f"{key}: status.loadBalancer {addr}" + ("" if out.returncode == 0 else f" failed: {out.stderr.strip()}"))
            for p in spec.get("ports", []):
                proto = p.get("protocol", "TCP")
                eps = []
                for s in slices:
                    labels = s["metadata"].get("labels", {})
                    if s["metadata"]["namespace"] != meta["namespace"] or \
                            labels.get("kubernetes.io/service-name") != meta["name"]:
                        continue
                    ports = [q["port"] for q in s.get("ports") or []
                             if q.get("name", "") == p.get("name", "") and q.get("protocol", "TCP") == proto]
                    for e in s.get("endpoints") or []:
                        if (e.get("conditions") or {}).get("ready") is False:
                            continue
                        eps += [(ip, port) for ip in e.get("addresses", []) for port in ports]
                wanted[(key, p["port"], proto)] = (addr, sorted(eps))
        for k in list(self.listeners):
            if k not in wanted:
                self.listeners.pop(k).close()
                log(f"{k[0]}: {k[2]} {k[1]} closed")
        for k, (addr, eps) in wanted.items():
            lst = self.listeners.get(k)
            if not lst:
                try:
                    lst = self.listeners[k] = Listener(self, addr, k[1], k[2])
                except OSError as e:
                    log(f"{k[0]}: cannot listen on {addr}:{k[1]}/{k[2]}: {e}")
                    continue
                log(f"{k[0]}: {k[2]} {addr}:{k[1]}")
            if lst.endpoints != eps:
                lst.endpoints = eps
                log(f"{k[0]}: {k[2]} {addr}:{k[1]} -> {eps}")
        for key in [k for k in self.assigned if not any(w[0] == k for w in wanted)]:
            del self.assigned[key]

    def run(self):
        log(f"LoadBalancer stand-in: pool {self.a.pool}, pods in {self.a.netns}")
        while True:
            try:
                self.sync()
            except Exception as e:  # the apiserver may be down (outage tests): keep forwarding
                log(f"sync: {e}")
            time.sleep(0.5)


def main():
    p = argparse.ArgumentParser()
    for flag in ("--netns", "--kubectl", "--kubeconfig", "--pool"):
        p.add_argument(flag, required=True)
    p.add_argument("--tag", default="")
    StandIn(p.parse_args()).run()


if __name__ == "__main__":
    sys.exit(main())
