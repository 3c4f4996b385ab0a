"""Layer tables shared through the registry (inspect/shared_tables.py): a table is used only when it
is bound to the layer asked for, and on the real registry a verification with an empty cache takes
an earlier run's table instead of reading the layer — shown by deleting the layer's blob first."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import tarfile
import uuid
import zlib
from pathlib import Path

import httpx
import pytest

from buildctl.errors import OperationError
from buildctl.inspect import shared_tables
from buildctl.inspect.cache import FORMAT_VERSION
from buildctl.inspect.image_fs import FILE, Entry, LayerTable
from buildctl.inspect.layers import LayerCache
from buildctl.inspect.results import CheckStatus
from buildctl.inspect.shared_tables import SharedTables, document_of, table_of, tag_of
from buildctl.inspect.verify import VerifyOptions, verify_image
from buildctl.registry.client import RegistryClient
from tests.helpers.cli import REGISTRY
from tests.helpers.crafted_images import OCI_INDEX, OCI_MANIFEST, image_manifest, index_of, push_blob, push_manifest
from tests.helpers.elf import elf_for

DIGEST, SIZE = "sha256:" + "ab" * 32, 5 << 20
TABLE = LayerTable({"bin/app": Entry(FILE, 0o755, head=b"\x7fELF" + bytes(60))}, frozenset(), frozenset())


def _annotations(document: bytes) -> dict:
    return json.loads(document)["annotations"]


def _with(document: bytes, **changes: str) -> bytes:
    doc = json.loads(document)
    doc["annotations"].update(changes)
    return json.dumps(doc).encode()


def test_a_shared_table_comes_back_as_it_was_published() -> None:
    document = document_of(TABLE, digest=DIGEST, size=SIZE)
    assert document is not None and len(document) < 4 << 20
    assert table_of(document, digest=DIGEST, size=SIZE) == TABLE
    assert tag_of(DIGEST) == f"buildctl-layer-v{FORMAT_VERSION}-" + "ab" * 32 and len(tag_of(DIGEST)) <= 128


@pytest.mark.parametrize("tamper", [
    lambda d: table_of(d, digest="sha256:" + "cd" * 32, size=SIZE),  # another layer's table
    lambda d: table_of(d, digest=DIGEST, size=SIZE + 1),  # a descriptor that claims another size
    lambda d: table_of(_with(d, **{shared_tables.FORMAT_KEY: str(FORMAT_VERSION - 1)}), digest=DIGEST, size=SIZE),
    lambda d: table_of(_with(d, **{shared_tables.TABLE_KEY: "not base64!"}), digest=DIGEST, size=SIZE),
    lambda d: table_of(_with(d, **{shared_tables.TABLE_KEY: _annotations(d)[shared_tables.TABLE_KEY][:-8]}),
                       digest=DIGEST, size=SIZE),  # cut short
    lambda d: table_of(_with(d, **{shared_tables.TABLE_KEY: base64.b64encode(
        zlib.compress(b'{"format": 5, "entries": [[1]]}')).decode()}), digest=DIGEST, size=SIZE),  # not a table
    lambda d: table_of(b"[]", digest=DIGEST, size=SIZE),
], ids=["other-digest", "other-size", "other-format", "bad-base64", "truncated", "not-a-table", "not-an-index"])
def test_a_table_not_bound_to_the_layer_asked_for_is_ignored(tamper) -> None:
    assert tamper(document_of(TABLE, digest=DIGEST, size=SIZE)) is None


def test_a_table_that_inflates_past_its_bound_is_ignored() -> None:
    bomb = base64.b64encode(zlib.compress(b" " * (shared_tables.MAX_TABLE_BYTES + 1), 9)).decode()
    document = _with(document_of(TABLE, digest=DIGEST, size=SIZE), **{shared_tables.TABLE_KEY: bomb})
    assert len(document) < 1 << 20 and table_of(document, digest=DIGEST, size=SIZE) is None


def test_small_layers_are_neither_fetched_nor_published() -> None:
    class Refusing:  # any registry call would fail the test
        def __getattr__(self, name: str):
            raise AssertionError(f"registry called: {name}")

    tables = SharedTables(Refusing(), ("r/x",))  # type: ignore[arg-type]
    assert tables.fetch(DIGEST, shared_tables.MIN_LAYER_BYTES - 1) is None
    tables.publish(DIGEST, shared_tables.MIN_LAYER_BYTES - 1, TABLE)
    assert tables.fetch(DIGEST, None) is None


# --------------------------------------------------------------------------- on the real registry

ARM = {"os": "linux", "architecture": "arm64"}


def _big_layer() -> tuple[bytes, bytes]:
    """A layer over MIN_LAYER_BYTES (random bytes do not compress) with an arm64 program: (gz, tar)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data, mode in (("app", elf_for("arm64"), 0o755), ("pad", os.urandom(1_200_000), 0o644)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(out.getvalue(), mtime=0), out.getvalue()


def _pushed_image(repository: str) -> tuple[str, str]:
    layer, tar = _big_layer()
    config = json.dumps({"architecture": "arm64", "os": "linux", "config": {"Entrypoint": ["/app"]},
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(
                             tar).hexdigest()]}}).encode()
    push_blob(REGISTRY, repository, layer)
    push_blob(REGISTRY, repository, config)
    manifest = push_manifest(REGISTRY, repository, "m", image_manifest(config, [layer]), OCI_MANIFEST)
    push_manifest(REGISTRY, repository, "v1", index_of(manifest, ARM), OCI_INDEX)
    return f"{REGISTRY}/{repository}:v1", "sha256:" + hashlib.sha256(layer).hexdigest()


def _verify(reference: str, cache_dir: Path, client: RegistryClient, shared: SharedTables | None):
    return verify_image(reference, platforms=["linux/arm64"], client=client, layers=LayerCache(cache_dir),
                        options=VerifyOptions(shared=shared))


@pytest.mark.engine
def test_an_empty_cache_takes_the_table_an_earlier_run_shared_instead_of_reading_the_layer(tmp_path: Path) -> None:
    repository = f"buildctl-test-shared/{uuid.uuid4().hex[:8]}"
    reference, layer = _pushed_image(repository)
    with RegistryClient() as client:
        shared = SharedTables(client, (f"{REGISTRY}/{repository}",))
        first = _verify(reference, tmp_path / "agent-1", client, shared)
        assert first.ok, first.checks
        assert tag_of(layer) in client.list_tags(f"{REGISTRY}/{repository}")  # published
        # The layer's bytes gone from the registry: only the shared table can vouch for them now.
        gone = httpx.delete(f"http://{REGISTRY}/v2/{repository}/blobs/{layer}", timeout=30)
        assert gone.status_code == 202, gone.text
        with pytest.raises(OperationError):  # without the shared table, an empty cache must read the layer
            _verify(reference, tmp_path / "agent-2", client, None)
        second = _verify(reference, tmp_path / "agent-3", client, shared)
        assert second.ok and [c.status for c in second.checks] == [c.status for c in first.checks]
        assert any(c.status is CheckStatus.PASS for c in second.checks)
        # A table bound to another layer, put under this layer's tag, vouches for nothing.
        forged = document_of(TABLE, digest="sha256:" + "ef" * 32, size=SIZE)
        client.put_manifest(f"{REGISTRY}/{repository}:{tag_of(layer)}", forged, shared_tables.INDEX_TYPE)
        with pytest.raises(OperationError):
            _verify(reference, tmp_path / "agent-4", client, shared)
