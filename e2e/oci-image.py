#!/usr/bin/env python3
"""Writes OCI image archives without a container engine, for the e2e node's containerd.

    oci-image.py zonegate --binary BIN --out TAR --name REF [--dockerfile Dockerfile]
    oci-image.py pause --binary BIN --out TAR --name REF

`zonegate` reads the final stage of the Dockerfile (LABEL, USER, EXPOSE, ENTRYPOINT, the COPY of
the binary, ARG VERSION) and writes the same image config with the static binary (from
e2e/static-build.sh) at the COPY's destination, on a stand-in for distroless/static-debian12:
the files of it that the binary can meet (/etc/passwd and /etc/group with root, nobody and
nonroot 65532, /home/nonroot, /tmp) and its config (PATH, SSL_CERT_FILE, WorkingDir). What
distroless has and this does not: the CA bundle, tzdata, /etc/os-release, the Debian package
metadata. `pause` writes the sandbox image: one static binary as /pause.

The archive is an OCI image layout (oci-layout, index.json, blobs/sha256/*) with one
uncompressed layer, written reproducibly (sorted entries, uid/gid 0 unless given, mtime 0), and
the index names the image (`io.containerd.image.name`, `org.opencontainers.image.ref.name`), so
`ctr -n k8s.io images import TAR` stores it under REF.
"""
import argparse
import hashlib
import io
import json
import re
import shlex
import sys
import tarfile


class Layer:
    """An uncompressed, reproducible layer tar built in memory."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)
        self.entries = {}

    def _info(self, path, type_, mode, uid, gid):
        info = tarfile.TarInfo(path.lstrip("/"))
        info.type, info.mode, info.uid, info.gid, info.mtime = type_, mode, uid, gid, 0
        info.uname = info.gname = ""
        return info

    def dir(self, path, mode=0o755, uid=0, gid=0):
        self.entries[path] = (self._info(path, tarfile.DIRTYPE, mode, uid, gid), None)

    def file(self, path, data, mode=0o644, uid=0, gid=0):
        info = self._info(path, tarfile.REGTYPE, mode, uid, gid)
        info.size = len(data)
        parent = path.rsplit("/", 1)[0]
        while parent and parent not in self.entries:
            self.dir(parent)
            parent = parent.rsplit("/", 1)[0]
        self.entries[path] = (info, data)

    def bytes(self):
        for path in sorted(self.entries):
            info, data = self.entries[path]
            self.tar.addfile(info, io.BytesIO(data) if data is not None else None)
        self.tar.close()
        return self.buf.getvalue()


def write_archive(out, name, layer_bytes, config):
    blobs = {}

    def blob(data, media_type):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    layer_desc = blob(layer_bytes, "application/vnd.oci.image.layer.v1.tar")
    config = dict(config)
    config["rootfs"] = {"type": "layers", "diff_ids": [layer_desc["digest"]]}
    config_desc = blob(json.dumps(config, sort_keys=True).encode(), "application/vnd.oci.image.config.v1+json")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc,
        "layers": [layer_desc],
    }
    manifest_desc = blob(json.dumps(manifest, sort_keys=True).encode(), manifest["mediaType"])
    manifest_desc["annotations"] = {
        "io.containerd.image.name": name,
        "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1],
    }
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [manifest_desc]}
    files = {
        "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
        "index.json": json.dumps(index, sort_keys=True).encode(),
    }
    for digest, data in blobs.items():
        files["blobs/sha256/" + digest.split(":", 1)[1]] = data
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for path in sorted(files):
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(files[path]), 0o644, 0
            tar.addfile(info, io.BytesIO(files[path]))
    return manifest_desc["digest"]


def final_stage(dockerfile):
    """The instructions of the Dockerfile's last stage, continuation lines joined, plus the
    global ARG defaults."""
    text = re.sub(r"\\\n", " ", open(dockerfile).read())
    lines = [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith("#")]
    stages, args = [], {}
    for line in lines:
        op, _, rest = line.partition(" ")
        op = op.upper()
        if op == "FROM":
            stages.append([])
        elif stages:
            stages[-1].append((op, rest.strip()))
        if op == "ARG" and "=" in rest:
            k, v = rest.strip().split("=", 1)
            args[k] = v
    if not stages:
        sys.exit(f"{dockerfile}: no FROM")
    return stages[-1], args


def zonegate(a):
    stage, args = final_stage(a.dockerfile)
    labels, expose, user, entrypoint, dest = {}, {}, None, None, None
    for op, rest in stage:
        if op == "ARG" and "=" in rest:
            k, v = rest.split("=", 1)
            args[k] = v
        elif op == "LABEL":
            for item in shlex.split(rest):
                k, v = item.split("=", 1)
                labels[k] = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), v)
        elif op == "USER":
            user = rest
        elif op == "EXPOSE":
            for p in rest.split():
                expose[p if "/" in p else p + "/tcp"] = {}
        elif op == "ENTRYPOINT":
            entrypoint = json.loads(rest)
        elif op == "COPY":
            words = rest.split()
            if "--from=build" in words:
                dest = words[-1]
    for what, v in (("USER", user), ("ENTRYPOINT", entrypoint), ("COPY --from=build", dest)):
        if not v:
            sys.exit(f"{a.dockerfile}: the final stage has no {what}")
    layer = Layer()
    layer.file("/etc/passwd", b"root:x:0:0:root:/root:/sbin/nologin\n"
               b"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
               b"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")
    layer.file("/etc/group", b"root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n")
    layer.dir("/home")
    layer.dir("/home/nonroot", 0o700, 65532, 65532)
    layer.dir("/tmp", 0o1777)
    layer.file(dest, open(a.binary, "rb").read(), 0o755)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": user,
            "Entrypoint": entrypoint,
            "Labels": labels,
            "ExposedPorts": expose,
            # distroless/static's
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"],
            "WorkingDir": "/home/nonroot",
        },
    }
    return layer, config


def pause(a):
    layer = Layer()
    layer.file("/pause", open(a.binary, "rb").read(), 0o755)
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Entrypoint": ["/pause"], "User": "65535:65535"}}
    return layer, config


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("kind", choices=["zonegate", "pause"])
    p.add_argument("--binary", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--dockerfile", default="Dockerfile")
    a = p.parse_args()
    layer, config = (zonegate if a.kind == "zonegate" else pause)(a)
    digest = write_archive(a.out, a.name, layer.bytes(), config)
    print(f"{a.name} {digest}")


if __name__ == "__main__":
    main()
