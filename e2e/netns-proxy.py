#!/usr/bin/env python3
"""Forwards TCP connections made inside a network namespace to an address in the host's.

    netns-proxy.py --netns /run/netns/NAME --listen 10.96.0.1:443 --to 127.0.0.1:PORT [--tag X]

The e2e node (e2e/node) runs kubelet, kube-scheduler and the pods in a network namespace of its
own, while kube-apiserver listens on the host's 127.0.0.1. This process enters the namespace
(setns) only to create its listening socket, returns to the host's namespace and connects every
accepted connection to --to there: in-cluster clients reach the apiserver at the `kubernetes`
Service address (10.96.0.1:443, on the namespace's loopback), whose certificate already names
it. Bytes are copied unchanged (TLS end to end). --tag is ignored (it names the run in `ps`).
"""
import argparse
import ctypes
import os
import socket
import sys
import threading

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)


def setns(fd):
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def hostport(s):
    host, _, port = s.rpartition(":")
    return host, int(port)


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            try:
                s.shutdown(how)
            except OSError:
                pass


def serve(conn, to):
    try:
        up = socket.create_connection(to, timeout=5)
        up.settimeout(None)
    except OSError:
        conn.close()
        return
    a = threading.Thread(target=pump, args=(conn, up), daemon=True)
    a.start()
    pump(up, conn)
    a.join()
    conn.close()
    up.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--netns", required=True)
    p.add_argument("--listen", required=True, action="append")
    p.add_argument("--to", required=True)
    p.add_argument("--tag", default="")
    a = p.parse_args()
    host = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(a.netns, os.O_RDONLY)
    setns(target)
    listeners = []
    for spec in a.listen:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(hostport(spec))
        s.listen(128)
        listeners.append(s)
    setns(host)
    os.close(target)
    os.close(host)
    to = hostport(a.to)
    print(f"forwarding {', '.join(a.listen)} in {a.netns} to {a.to}", flush=True)

    def accept(s):
        while True:
            conn, _ = s.accept()
            threading.Thread(target=serve, args=(conn, to), daemon=True).start()

    for s in listeners[1:]:
        threading.Thread(target=accept, args=(s,), daemon=True).start()
    accept(listeners[0])


if __name__ == "__main__":
    sys.exit(main())
