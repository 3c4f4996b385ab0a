"""Layer tables shared through the registry: a fresh agent takes what an earlier run scanned (#20).

Verification needs a layer's table (cache.dump_table: each path, its mode, an ELF file's head), and
making one means reading and inflating the layer: an 87 MB base layer is 1.6 s of CPU, and on a
fresh CI agent the sample's two base layers took ~3 s of the 2 cores while BuildKit built. Like
BuildKit's registry cache for layers, a run shares the table of every large layer it read in the
repositories of the images that hold it, and a run with an empty cache looks there first.

A shared table is an empty OCI index (as release claims are: one PUT, one GET, no blob upload)
under ``REPO:buildctl-layer-v<format>-<hex>``, whose annotations name the layer's digest, its size
and the table format, and carry the table (zlib, base64). It is used only when it is bound to what
is asked — same digest, same size, this format, a table ``load_table`` accepts (inflated within a
bound) — and the layer's blob is in that repository with that size; anything else is as if absent,
and the layer is read. A table in repository R vouches only for an image verified in R: whoever
can push to R could replace R's images themselves, so it adds no trust of its own there. It is
never kept in the layer cache, which holds only tables made from the bytes. Registry calls here
have a 5 s timeout and no retries, and publishing runs on a daemon thread: a slow or read-only
registry costs a read of the layer, never the release.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import threading
import zlib
from collections.abc import Mapping
from concurrent.futures import Future

from buildctl import jsonsafe
from buildctl.errors import OperationError
from buildctl.inspect import threads
from buildctl.inspect.cache import FORMAT_VERSION, dump_table, load_table
from buildctl.inspect.image_fs import LayerTable
from buildctl.model import Config
from buildctl.registry.bounds import Deadline
from buildctl.registry.client import RegistryClient
from buildctl.registry.results import RetryPolicy
from buildctl.registry.wire import OCI_INDEX as INDEX_TYPE

log = logging.getLogger(__name__)

DIGEST_KEY, SIZE_KEY = "org.buildctl.layer.digest", "org.buildctl.layer.size"
FORMAT_KEY, TABLE_KEY = "org.buildctl.layer.table-format", "org.buildctl.layer.table"
DISABLE_ENV = "BUILDCTL_SHARED_TABLES"  # "0": neither look for shared tables nor publish any
MIN_LAYER_BYTES = 1 << 20  # a smaller layer is read about as fast as its table is fetched
MAX_PACKED_BYTES = 3 << 20  # the index stays under the 4 MiB manifests may have (registry/client.py)
MAX_TABLE_BYTES = 16 << 20  # inflated: a table is ~1% of its layer (87 MB: 0.95 MB)
TIMEOUT = 5.0
MAX_PUTS = 4  # tables shared at once


def tag_of(digest: str) -> str:
    return f"buildctl-layer-v{FORMAT_VERSION}-{digest.removeprefix('sha256:')}"


class SharedTables:
    """One release's shared tables: fetched once per (repository, layer), shared in the background.
    ``taken`` counts the tables this run used instead of reading a layer (the record says it)."""

    def __init__(self, client: RegistryClient) -> None:
        # The run's credential lookup (each registry its own credentials), bounded as said above.
        self._client = RegistryClient(credentials=client.auth.source, timeout=TIMEOUT,
                                      retry=RetryPolicy(attempts=1, total_seconds=TIMEOUT))
        self._lock = threading.Lock()
        self._fetched: dict[tuple[str, str, int], Future[LayerTable | None]] = {}
        self._taken: set[tuple[str, str, int]] = set()
        self._documents: dict[tuple[str, int], bytes | None] = {}
        # By (the shared document's digest, as read and checked; the layer asked for): the same
        # document in another repository is the same table; under another layer's tag it is none.
        self._parsed: dict[tuple[str, str, int], LayerTable | None] = {}
        self._puts = threading.BoundedSemaphore(MAX_PUTS)

    @property
    def taken(self) -> int:
        """Distinct tables (repository, layer) that stood for a layer read in this run."""
        with self._lock:
            return len(self._taken)

    def took(self, repositories: tuple[str, ...], digest: str, size: int | None) -> None:
        with self._lock:
            self._taken.update((r, digest, size or 0) for r in repositories)

    def get(self, repository: str, digest: str, size: int | None) -> LayerTable | None:
        """The table shared in ``repository`` for the layer ``digest`` of ``size``, if one is bound to it."""
        if not _worth_sharing(digest, size):
            return None
        key = (repository, digest, size)
        with self._lock:
            pending, mine = self._fetched.get(key), False
            if pending is None:
                pending, mine = self._fetched.setdefault(key, Future()), True
        if mine:
            try:
                pending.set_result(self._fetch(repository, digest, size))
            except BaseException:  # those waiting for it read the layer; this caller sees the error
                pending.set_result(None)
                raise
        try:
            return pending.result(timeout=2 * TIMEOUT)
        except TimeoutError:  # another thread's fetch is stuck: read the layer
            return None

    def _fetch(self, repository: str, digest: str, size: int) -> LayerTable | None:
        try:
            head = self._client.head_manifest(f"{repository}:{tag_of(digest)}")
            if head is None or self._client.head_blob(repository, digest) != size:
                return None
            read = (head.digest, digest, size)  # the same document for the same layer: one table
            with self._lock:
                if read in self._parsed:
                    return self._parsed[read]
            shared = self._client.get_manifest(f"{repository}@{head.digest}",
                                               deadline=Deadline(TIMEOUT, what=f"the shared table of {digest}"))
            table = table_of(shared.content, digest=digest, size=size)
            with self._lock:
                self._parsed[read] = table
            return table
        except OperationError as exc:  # a registry that will not say: the layer is read instead
            log.info("no shared table of %s from %s: %s", digest, repository, exc.message)
            return None

    def publish(self, repository: str, digest: str, size: int | None, table: LayerTable) -> None:
        """Share ``table`` in ``repository`` unless it is there already; on a daemon thread."""
        if not _worth_sharing(digest, size):
            return
        with self._lock:
            known = self._fetched.get((repository, digest, size))
        if known is not None and known.done() and known.result() is not None:
            return
        threads.start(lambda: self._put(repository, digest, size, table), name="share-table")

    def _put(self, repository: str, digest: str, size: int, table: LayerTable) -> None:
        with self._puts:  # a few at a time: many layers and services must not crowd the connections
            with self._lock:
                known = (digest, size) in self._documents
                document = self._documents.get((digest, size))
            if not known:  # made once, however many repositories it is shared in
                document = document_of(table, digest=digest, size=size)
                with self._lock:
                    self._documents[(digest, size)] = document
            if document is not None:
                self._send(repository, digest, document)

    def _send(self, repository: str, digest: str, document: bytes) -> None:
        try:
            self._client.put_manifest(f"{repository}:{tag_of(digest)}", document, INDEX_TYPE)
        except OperationError as exc:  # a read-only registry, a quota: the next fresh agent reads the layer
            log.info("could not share the table of %s in %s: %s", digest, repository, exc.message)


def _worth_sharing(digest: str, size: int | None) -> bool:
    """A layer large enough that its table is fetched faster than it is read, of a known size."""
    return size is not None and size >= MIN_LAYER_BYTES and digest.startswith("sha256:")


def document_of(table: LayerTable, *, digest: str, size: int) -> bytes | None:
    """The index that shares ``table``; None when it would be too large to be a manifest."""
    packed = base64.b64encode(zlib.compress(dump_table(table), 6)).decode("ascii")
    if len(packed) > MAX_PACKED_BYTES:
        return None
    annotations = {DIGEST_KEY: digest, SIZE_KEY: str(size), FORMAT_KEY: str(FORMAT_VERSION), TABLE_KEY: packed}
    return json.dumps({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": [], "annotations": annotations},
                      sort_keys=True, separators=(",", ":")).encode()


def table_of(content: bytes, *, digest: str, size: int) -> LayerTable | None:
    """The table ``content`` shares, if it is bound to ``digest`` and ``size``; else None."""
    try:
        notes = jsonsafe.loads(content).get("annotations") or {}
        if (notes.get(DIGEST_KEY), notes.get(SIZE_KEY), notes.get(FORMAT_KEY)) != (digest, str(size),
                                                                                   str(FORMAT_VERSION)):
            return None
        inflate = zlib.decompressobj()
        data = inflate.decompress(base64.b64decode(notes[TABLE_KEY], validate=True), MAX_TABLE_BYTES)
        if inflate.unconsumed_tail or not inflate.eof:  # past the bound, or cut short
            return None
        return load_table(data)
    except (ValueError, TypeError, KeyError, AttributeError, binascii.Error, zlib.error):
        return None


def of_release(config: Config, client: RegistryClient, *, environ: Mapping[str, str] | None = None,
               ) -> SharedTables | None:
    """A release's shared tables; None when BUILDCTL_SHARED_TABLES=0."""
    if (os.environ if environ is None else environ).get(DISABLE_ENV, "1") == "0":
        return None
    return SharedTables(client)
