"""A small hostile OCI registry on loopback, for the verifier's bounds (tests/inspect/test_hostile.py).

Each case is one repository ``hostile/<case>:1`` (an index with one linux/amd64 image): a layer
that never ends, a manifest drip-fed a byte at a time, oversized manifests and configs, sizes and
digests that lie, a gzip bomb, a million tar entries, long symlinks, deeply nested JSON. Bodies
are generated while sent, so the server itself stays small.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
Body = Callable[[], Iterator[bytes]]


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Blob:
    body: Body  # chunks to send
    length: int | None = None  # Content-Length, None = chunked (no length announced)


@dataclass
class Case:
    config: bytes = b'{"architecture":"amd64","os":"linux","config":{}}'
    config_size: int | None = None  # what the manifest's descriptor claims; None = the truth
    layers: list[tuple[str, int, Blob]] = field(default_factory=list)  # (digest, claimed size, blob)
    manifest_override: Blob | None = None  # sent instead of the platform manifest


def _once(data: bytes) -> Body:
    return lambda: iter([data])


def _endless(chunk: bytes = b"\0" * 65536) -> Body:
    def gen() -> Iterator[bytes]:
        while True:
            yield chunk
    return gen


def _drip(data: bytes, every: float) -> Body:
    def gen() -> Iterator[bytes]:
        for i in range(len(data)):
            time.sleep(every)
            yield data[i : i + 1]
    return gen


def _repeat(total: int, chunk: bytes = b" " * 65536) -> Body:
    def gen() -> Iterator[bytes]:
        sent = 0
        while sent < total:
            part = chunk[: total - sent]
            sent += len(part)
            yield part
    return gen


def layer_of(data: bytes) -> tuple[str, int, Blob]:
    return sha(data), len(data), Blob(_once(data), len(data))


def gzip_bomb(unpacked: int) -> bytes:
    """A gzip'd tar holding one file of ``unpacked`` zero bytes (about 1/1000 of that on the wire)."""
    head = tarfile.TarInfo("zeros")
    head.size = unpacked
    header = head.tobuf(format=tarfile.GNU_FORMAT)
    squeeze = zlib.compressobj(1, zlib.DEFLATED, 31)  # 31: a gzip wrapper
    out = [squeeze.compress(header)]
    block = b"\0" * (1 << 20)
    for _ in range(unpacked // len(block)):
        out.append(squeeze.compress(block))
    out.append(squeeze.compress(b"\0" * (unpacked % len(block) + 1024)))
    out.append(squeeze.flush())
    return b"".join(out)


def many_entries(count: int) -> bytes:
    """A gzip'd tar of ``count`` empty files (one 512-byte header each), built without tarfile."""
    template = tarfile.TarInfo("f0000000")
    template.mode = 0o644
    raw = bytearray()
    for i in range(count):
        template.name = f"d{i // 5000}/f{i:07d}"
        raw += template.tobuf(format=tarfile.USTAR_FORMAT)
    raw += b"\0" * 1024
    return gzip.compress(bytes(raw), compresslevel=1)


def tar_of(members: list[tarfile.TarInfo]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            tar.addfile(member)
    return gzip.compress(out.getvalue())


def symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


def _lying_digest() -> Case:
    data = gzip.compress(b"\0" * 1024)
    return Case(layers=[("sha256:" + "d" * 64, len(data), Blob(_once(data), len(data)))])


TEN_GB = 10 << 30
CASES: dict[str, Callable[[], Case]] = {
    "endless-layer": lambda: Case(layers=[("sha256:" + "e" * 64, TEN_GB, Blob(_endless()))]),
    "lying-size": lambda: Case(layers=[("sha256:" + "1" * 64, 100, Blob(_repeat(50 << 20)))]),  # chunked
    "lying-digest": _lying_digest,
    "drip-manifest": lambda: Case(manifest_override=Blob(_drip(b'{"schemaVersion":2,' + b" " * 1000 + b"}", 0.5))),
    "huge-manifest": lambda: Case(manifest_override=Blob(_repeat(600 << 20))),  # chunked: no length to refuse
    "huge-config": lambda: Case(config=b"", config_size=600 << 20),
    "config-beyond-size": lambda: Case(config_size=40),
    "deep-json": lambda: Case(config=b"[" * 200_000 + b"]" * 200_000),
    "gzip-bomb": lambda: Case(layers=[layer_of(gzip_bomb(1 << 30))]),
    "many-entries": lambda: Case(layers=[layer_of(many_entries(300_000))]),
    "long-symlink-header": lambda: Case(layers=[layer_of(tar_of([symlink("big", "x" * (4 << 20))]))]),
    "long-symlink": lambda: Case(layers=[layer_of(tar_of([symlink("long", "y" * 5000)]))]),
}


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hanging up on endless bodies is the point, not an error


class HostileRegistry:
    """``with HostileRegistry() as reg: reg.ref("drip-manifest")`` -> ``127.0.0.1:PORT/hostile/drip-manifest:1``."""

    def __init__(self, only: list[str] | None = None) -> None:
        built = {name: make() for name, make in CASES.items() if only is None or name in only}
        self.manifests: dict[str, tuple[str, Blob, str]] = {}  # "repo/ref" -> (media type, blob, digest)
        self.blobs: dict[str, Blob] = {}
        for name, case in built.items():
            self._add(name, case)
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.address = f"127.0.0.1:{self._server.server_address[1]}"

    def ref(self, case: str) -> str:
        return f"{self.address}/hostile/{case}:1"

    def _add(self, name: str, case: Case) -> None:
        repo = f"hostile/{name}"
        config_digest = sha(case.config) if case.config else "sha256:" + "c" * 64
        self.blobs[f"{repo}/{config_digest}"] = Blob(_once(case.config), len(case.config)) if case.config \
            else Blob(_repeat(case.config_size or 0))
        config_size = case.config_size if case.config_size is not None else len(case.config)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                       "size": config_size},
            "layers": [{"mediaType": LAYER_TYPE, "digest": d, "size": size} for d, size, _ in case.layers],
        }).encode()
        for digest, _, blob in case.layers:
            self.blobs[f"{repo}/{digest}"] = blob
        manifest_digest = sha(manifest)
        image = case.manifest_override or Blob(_once(manifest), len(manifest))
        self.manifests[f"{repo}/{manifest_digest}"] = (OCI_MANIFEST, image, manifest_digest)
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest),
             "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
        self.manifests[f"{repo}/1"] = (OCI_INDEX, Blob(_once(index), len(index)), sha(index))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.removeprefix("/v2/")
                if path in ("", "/"):
                    return self._send(200, Blob(_once(b"{}"), 2), "application/json")
                repo, kind, ref = path.rpartition("/")[0].rpartition("/")[0], path.split("/")[-2], path.split("/")[-1]
                if kind == "manifests" and f"{repo}/{ref}" in registry.manifests:
                    media, blob, digest = registry.manifests[f"{repo}/{ref}"]
                    return self._send(200, blob, media, digest)
                if kind == "blobs" and f"{repo}/{ref}" in registry.blobs:
                    return self._send(200, registry.blobs[f"{repo}/{ref}"], "application/octet-stream")
                self._send(404, Blob(_once(b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}'), 40), "application/json")

            def _send(self, status: int, blob: Blob, media: str, digest: str | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", media)
                if digest:
                    self.send_header("Docker-Content-Digest", digest)
                if blob.length is None:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(blob.length))
                self.end_headers()
                try:
                    for chunk in blob.body():
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if blob.length is None else chunk)
                        self.wfile.flush()
                    if blob.length is None:
                        self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

        return Handler

    def __enter__(self) -> HostileRegistry:
        threading.Thread(target=self._server.serve_forever, daemon=True, name="hostile-registry").start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
