"""The manifests a client has read or written this run, by repository and digest (issue #20).

A release reads each new index three times within a second — its verification, the release tag
and the input pointer, each GET then PUT — and the bytes under a digest never change. So the
client answers a GET by digest from what it already holds, in that same repository only (a
digest in one repository says nothing of another). It answers bytes, not whether the registry
still has them: a delete by digest through the client forgets them, and a PUT of the same bytes
recreates a manifest deleted behind the client's back. At most MAX_BYTES are held.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from buildctl.registry.results import Manifest

MAX_BYTES = 16 << 20


class ManifestMemo:
    def __init__(self, *, max_bytes: int = MAX_BYTES) -> None:
        self._held: OrderedDict[tuple[str, str, str], Manifest] = OrderedDict()
        self._bytes, self._max = 0, max_bytes
        self._lock = threading.Lock()

    def get(self, registry: str, repository: str, digest: str) -> Manifest | None:
        with self._lock:
            return self._held.get((registry, repository, digest))

    def keep(self, registry: str, repository: str, manifest: Manifest) -> None:
        if len(manifest.content) > self._max // 4:
            return
        key = (registry, repository, manifest.digest)
        with self._lock:
            if key in self._held:
                return
            self._held[key] = manifest
            self._bytes += len(manifest.content)
            while self._bytes > self._max:
                _, dropped = self._held.popitem(last=False)
                self._bytes -= len(dropped.content)

    def forget(self, registry: str, repository: str, digest: str) -> None:
        with self._lock:
            if (dropped := self._held.pop((registry, repository, digest), None)) is not None:
                self._bytes -= len(dropped.content)
