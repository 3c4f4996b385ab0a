"""Push a crafted multi-platform image (config fields chosen by the test) to a registry over the
Distribution API: no build, so an ENTRYPOINT can hold any text an attacker would put there."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import httpx

from tests.helpers.elf import gzip_bytes, make_tar

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _put_blob(client: httpx.Client, base: str, repository: str, data: bytes) -> str:
    digest = _digest(data)
    if client.head(f"{base}/v2/{repository}/blobs/{digest}").status_code == 200:
        return digest
    start = client.post(f"{base}/v2/{repository}/blobs/uploads/")
    start.raise_for_status()
    location = start.headers["Location"]
    url = location if location.startswith("http") else base + location
    url += ("&" if "?" in url else "?") + f"digest={digest}"  # keep the upload's own query (_state)
    client.put(url, content=data,
               headers={"Content-Type": "application/octet-stream"}).raise_for_status()
    return digest


def push_image(registry: str, repository: str, tag: str, *, entrypoint: Sequence[str],
               platforms: Sequence[str] = ("linux/amd64", "linux/arm64")) -> str:
    """``registry/repository:tag``: an index of one image per platform, each with ``entrypoint`` and a
    layer holding a text file; returns the reference."""
    base = f"http://{registry}"
    tar = make_tar([("etc/hostname", "f", b"crafted\n", 0o644)])
    layer = gzip_bytes(tar)
    entries = []
    with httpx.Client(timeout=30) as client:
        layer_digest = _put_blob(client, base, repository, layer)
        for platform in platforms:
            os_name, arch = platform.split("/")[:2]
            config = json.dumps({"architecture": arch, "os": os_name,
                                 "config": {"Entrypoint": list(entrypoint)},
                                 "rootfs": {"type": "layers", "diff_ids": [_digest(tar)]},
                                 }).encode()
            manifest = json.dumps({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": _put_blob(client, base, repository, config), "size": len(config)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest,
                            "size": len(layer)}],
            }).encode()
            client.put(f"{base}/v2/{repository}/manifests/{_digest(manifest)}", content=manifest,
                       headers={"Content-Type": OCI_MANIFEST}).raise_for_status()
            entries.append({"mediaType": OCI_MANIFEST, "digest": _digest(manifest), "size": len(manifest),
                            "platform": {"os": os_name, "architecture": arch}})
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
        client.put(f"{base}/v2/{repository}/manifests/{tag}", content=index,
                   headers={"Content-Type": OCI_INDEX}).raise_for_status()
    return f"{registry}/{repository}:{tag}"
