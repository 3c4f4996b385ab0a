"""Images written straight into a registry through the OCI distribution API (blob uploads, manifest
PUTs), for what buildx never makes: descriptors whose ``size`` lies (Distribution stores such
manifests as they are). And ``BlobFront``: a loopback front of the real registry that serves one
blob cut short or with bytes added, forwarding everything else unchanged.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(registry: str, repository: str, data: bytes) -> str:
    """A monolithic upload (POST, then PUT ?digest=); the blob's digest."""
    started = httpx.post(f"http://{registry}/v2/{repository}/blobs/uploads/", timeout=30)
    started.raise_for_status()
    location = started.headers["Location"]
    url = location if location.startswith("http") else f"http://{registry}{location}"
    url += ("&" if "?" in url else "?") + "digest=" + sha(data)  # Location carries the upload's state
    done = httpx.put(url, content=data, timeout=60,
                     headers={"Content-Type": "application/octet-stream"})
    done.raise_for_status()
    return sha(data)


def push_manifest(registry: str, repository: str, reference: str, body: dict, media_type: str) -> bytes:
    """PUT a manifest or index as given; the bytes stored."""
    raw = json.dumps(body, separators=(",", ":")).encode()
    response = httpx.put(f"http://{registry}/v2/{repository}/manifests/{reference}", content=raw, timeout=30,
                         headers={"Content-Type": media_type})
    response.raise_for_status()
    return raw


def pushed_digest(registry: str, repository: str, reference: str) -> str | None:
    """The digest ``reference`` names in the registry now, or None."""
    response = httpx.head(f"http://{registry}/v2/{repository}/manifests/{reference}", timeout=30,
                          headers={"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}"})
    return response.headers.get("Docker-Content-Digest") if response.status_code == 200 else None


def image_manifest(config: bytes, layers: list[bytes], *, config_size: int | None = None,
                   layer_sizes: list[int] | None = None) -> dict:
    """An OCI image manifest for ``config`` and ``layers``; the sizes given replace the true ones."""
    sizes = layer_sizes if layer_sizes is not None else [len(la) for la in layers]
    return {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha(config),
                       "size": len(config) if config_size is None else config_size},
            "layers": [{"mediaType": OCI_LAYER, "digest": sha(la), "size": size}
                       for la, size in zip(layers, sizes, strict=True)]}


def index_of(manifest: bytes, platform: dict, *, size: int | None = None) -> dict:
    return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": sha(manifest), "size": len(manifest) if size is None else size,
         "platform": platform}]}


class BlobFront:
    """``with BlobFront(upstream, digest, keep=N, extra=b"...")``: GET /v2/.../blobs/<digest> answers
    the upstream's first ``keep`` bytes (all when None) plus ``extra``, with a Content-Length that
    matches what is sent; every other request is forwarded."""

    def __init__(self, upstream: str, digest: str, *, keep: int | None = None, extra: bytes = b"") -> None:
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, head_only: bool) -> None:
                answer = httpx.request(self.command, f"http://{upstream}{self.path}", timeout=60,
                                       headers={k: v for k, v in self.headers.items() if k.lower() == "accept"})
                body = answer.content
                if self.path.endswith(f"/blobs/{digest}") and answer.status_code == 200:
                    body = (body if keep is None else body[:keep]) + extra
                    front.served += 1
                self.send_response(answer.status_code)
                for name in ("Content-Type", "Docker-Content-Digest"):
                    if name in answer.headers:
                        self.send_header(name, answer.headers[name])
                length = answer.headers.get("Content-Length", "0") if head_only else str(len(body))
                self.send_header("Content-Length", length)
                self.end_headers()
                if not head_only:
                    self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                self._answer(head_only=False)

            def do_HEAD(self) -> None:  # noqa: N802
                self._answer(head_only=True)

        self.served = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.address = f"127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> BlobFront:
        threading.Thread(target=self._server.serve_forever, daemon=True, name="blob-front").start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
