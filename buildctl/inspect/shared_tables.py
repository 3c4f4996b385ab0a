"""Layer tables shared through the registry: a fresh agent takes what an earlier run scanned (#20).

Verification needs a layer's table (cache.dump_table: each path, its mode, an ELF file's head), and
making one means reading and inflating the layer: an 87 MB base layer is 1.6 s of CPU, and on a
fresh CI agent the sample's two base layers took ~3 s of the 2 cores while BuildKit built. Like
BuildKit's registry cache for layers, each run publishes the table of every large layer it read to
the release's own repository, and a run with an empty cache looks there before reading a layer.

A shared table is an empty OCI index (as release claims are: one PUT, one GET, no blob upload)
under ``REPO:buildctl-layer-v<format>-<hex>``, whose annotations name the layer's digest, its size
and the table format, and carry the table (gzip, base64). It is used only when it is bound to what
is asked: same digest, same size, this format, a table ``load_table`` accepts (inflated within a
bound); anything else is as if absent, and the layer is read. Whoever can push to the release
repository could replace the released images themselves: a table there adds no trust of its own.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from buildctl import jsonsafe
from buildctl.errors import OperationError
from buildctl.inspect.cache import FORMAT_VERSION, dump_table, load_table
from buildctl.inspect.image_fs import LayerTable
from buildctl.model import Config
from buildctl.registry.client import RegistryClient

log = logging.getLogger(__name__)

INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
DIGEST_KEY, SIZE_KEY = "org.buildctl.layer.digest", "org.buildctl.layer.size"
FORMAT_KEY, TABLE_KEY = "org.buildctl.layer.table-format", "org.buildctl.layer.table"
DISABLE_ENV = "BUILDCTL_SHARED_TABLES"  # "0": neither look for shared tables nor publish any
MIN_LAYER_BYTES = 1 << 20  # a smaller layer is read about as fast as its table is fetched
MAX_PACKED_BYTES = 3 << 20  # the index stays under the 4 MiB manifests may have (registry/client.py)
MAX_TABLE_BYTES = 64 << 20  # inflated: a table is ~1% of its layer


def tag_of(digest: str) -> str:
    return f"buildctl-layer-v{FORMAT_VERSION}-{digest.removeprefix('sha256:')}"


@dataclass(frozen=True)
class SharedTables:
    """Where this run looks for shared tables (``repositories``, in order) and publishes them (the
    first): the release's own repositories, on its registry client."""

    client: RegistryClient = field(repr=False, compare=False)
    repositories: tuple[str, ...]

    def fetch(self, digest: str, size: int | None) -> LayerTable | None:
        if size is None or size < MIN_LAYER_BYTES or not digest.startswith("sha256:"):
            return None
        for repository in self.repositories:
            try:
                head = self.client.head_manifest(f"{repository}:{tag_of(digest)}")
                if head is None:
                    continue
                table = table_of(self.client.get_manifest(f"{repository}@{head.digest}").content,
                                 digest=digest, size=size)
            except OperationError as exc:  # a registry that will not say: the layer is read instead
                log.info("no shared table of %s from %s: %s", digest, repository, exc.message)
                continue
            if table is not None:
                return table
        return None

    def publish(self, digest: str, size: int | None, table: LayerTable) -> None:
        if size is None or size < MIN_LAYER_BYTES or not self.repositories or not digest.startswith("sha256:"):
            return
        document = document_of(table, digest=digest, size=size)
        if document is None:
            return
        try:
            self.client.put_manifest(f"{self.repositories[0]}:{tag_of(digest)}", document, INDEX_TYPE)
        except OperationError as exc:  # a read-only registry, a quota: the next fresh agent reads the layer
            log.info("could not share the table of %s: %s", digest, exc.message)


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
    """A release's shared tables: in its services' repositories, sorted (the same first one run
    after run, whatever order services.yaml lists them in); None when BUILDCTL_SHARED_TABLES=0."""
    if (os.environ if environ is None else environ).get(DISABLE_ENV, "1") == "0":
        return None
    return SharedTables(client, tuple(sorted({f"{config.registry}/{s.image}" for s in config.services})))
