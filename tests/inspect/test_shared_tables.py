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
import time
import uuid
import zlib
from pathlib import Path

import httpx
import pytest

from buildctl.errors import OperationError
from buildctl.inspect import shared_tables
from buildctl.inspect.cache import FORMAT_VERSION, dump_table, load_table
from buildctl.inspect.image_fs import FILE, Entry, LayerTable
from buildctl.inspect.layers import LayerCache, scan_layer
from buildctl.inspect.results import CheckStatus
from buildctl.inspect.shared_tables import SharedTables, document_of, table_of, tag_of
from buildctl.inspect.verify import VerifyOptions, verify_image
from buildctl.registry.client import RegistryClient
from tests.helpers.cli import REGISTRY
from tests.helpers.crafted_images import OCI_INDEX, OCI_MANIFEST, image_manifest, index_of
from tests.helpers.crafted_images import push_blob, push_manifest, pushed_digest
from tests.helpers.elf import elf_for, make_tar

DIGEST, SIZE = "sha256:" + "ab" * 32, 5 << 20
TABLE = LayerTable({"/bin/app": Entry(FILE, 0o755, head=b"\x7fELF" + bytes(60))}, frozenset(), frozenset())


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
    with RegistryClient() as client:
        tables = SharedTables(client)
    tables._client = None  # type: ignore[assignment]  # any registry call would fail the test
    assert tables.get("r/x", DIGEST, shared_tables.MIN_LAYER_BYTES - 1) is None
    assert tables.get("r/x", DIGEST, None) is None
    tables.publish("r/x", DIGEST, shared_tables.MIN_LAYER_BYTES - 1, TABLE)


def test_a_table_that_is_not_one_scan_layer_makes_is_refused_whole() -> None:
    """load_table checks each entry as scan_layer makes them (a table from the registry is input)."""
    good = json.loads(dump_table(TABLE))
    for bad in (["app", "f", 493], ["/app", "f", "755"], ["/app", "x", 493], ["/a/../app", "f", 493],
                ["/app", "f", 493, "", "", ["a"]], ["/app", "f", 0o17777], ["/app", "f", True],
                ["/app", "f", 493, "", base64.b64encode(bytes(300)).decode()],
                # the three-field rows most tables are made of take a path of their own in load_table
                ["/app/", "f", 493], ["//app", "f", 493], ["/a/./b", "f", 493], ["/a//b", "d", 493], ["", "d", 493],
                [123, "f", 493], ["/app", "f", -1], ["/app", "f", 493.0], ["/app", None, 493], {"/app": "f"}):
        doc = {**good, "entries": [bad]}
        with pytest.raises((ValueError, TypeError)):
            load_table(json.dumps(doc).encode())
    with pytest.raises(ValueError):
        load_table(json.dumps({**good, "whiteouts": ["rel"]}).encode())


def test_every_table_a_scan_makes_loads_back_as_it_was() -> None:
    """The checks refuse no table scan_layer makes: whiteouts as tars name them, opaque folders,
    links, odd names (a table refused is a layer read again on every run)."""
    members = [("dir/.wh.", "f", b"", 0o644), ("dir/.wh..", "f", b"", 0o644), ("dir/.wh...", "f", b"", 0o644),
               ("opq/.wh..wh..opq", "f", b"", 0o644), ("./dot/a b", "f", b"x", 0o644), ("é/ü\nnew", "f", b"", 0o4755),
               ("link", "l", "/bin/sh", 0o777), ("bin/app", "f", elf_for("arm64"), 0o755), ("d/", "d", b"", 0o755)]
    table = scan_layer(io.BytesIO(make_tar(members)))
    assert load_table(dump_table(table)) == table and table.whiteouts and table.opaque


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


LAYER, TAR = _big_layer()


def _pushed_image(repository: str) -> tuple[str, str]:
    config = json.dumps({"architecture": "arm64", "os": "linux", "config": {"Entrypoint": ["/app"]},
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(TAR).hexdigest()]}}).encode()
    push_blob(REGISTRY, repository, LAYER)
    push_blob(REGISTRY, repository, config)
    manifest = push_manifest(REGISTRY, repository, "m", image_manifest(config, [LAYER]), OCI_MANIFEST)
    push_manifest(REGISTRY, repository, "v1", index_of(manifest, ARM), OCI_INDEX)
    return f"{REGISTRY}/{repository}:v1", "sha256:" + hashlib.sha256(LAYER).hexdigest()


def _verify(reference: str, cache: LayerCache, shared: SharedTables | None):
    with RegistryClient() as client:
        return verify_image(reference, platforms=["linux/arm64"], client=client, layers=cache,
                            options=VerifyOptions(shared=shared))


def _shared_in(repository: str, layer: str, *, within: float = 10.0) -> bool:
    """Publishing runs on a daemon thread: wait for the tag."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if pushed_digest(REGISTRY, repository, tag_of(layer)):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.engine
def test_an_empty_cache_takes_the_table_shared_in_the_images_own_repository(tmp_path: Path) -> None:
    own, other = (f"buildctl-test-shared/{uuid.uuid4().hex[:8]}" for _ in range(2))
    reference, layer = _pushed_image(own)
    with RegistryClient() as client:
        first_cache = LayerCache(tmp_path / "agent-1")
        first = _verify(reference, first_cache, SharedTables(client))
        assert first.ok and first_cache.loads == 1, first.checks
        assert _shared_in(own, layer)
        # A fresh agent: the table stands for the layer's bytes (no layer read), with the same verdicts.
        tables, fresh = SharedTables(client), LayerCache(tmp_path / "agent-2")
        second = _verify(reference, fresh, tables)
        assert second.ok and (fresh.loads, tables.taken) == (0, 1)
        assert [(c.name, c.status) for c in second.checks] == [(c.name, c.status) for c in first.checks]
        assert any(c.status is CheckStatus.PASS for c in second.checks)
        assert not list((tmp_path / "agent-2").rglob("*.json")) or all(
            "tables" not in p.parts for p in (tmp_path / "agent-2").rglob("*.json"))  # never kept as if read here
        # The same image in another repository: a table shared in `own` vouches for nothing there.
        other_reference, _ = _pushed_image(other)
        tables, cache = SharedTables(client), LayerCache(tmp_path / "agent-3")
        assert _verify(other_reference, cache, tables).ok and (cache.loads, tables.taken) == (1, 0)
        # What a shared table decided is no verdict for anything else: a forged table in `own`
        # (an empty layer: no entrypoint) fails `own`; the same image in `other`, with the same
        # cache, is checked again (from its own table or bytes) and passes.
        empty = document_of(LayerTable({}, frozenset(), frozenset()), digest=layer, size=len(LAYER))
        client.put_manifest(f"{REGISTRY}/{own}:{tag_of(layer)}", empty, shared_tables.INDEX_TYPE)
        tables, cache = SharedTables(client), LayerCache(tmp_path / "agent-shared")
        assert not _verify(reference, cache, tables).ok and tables.taken == 1
        assert _verify(other_reference, cache, SharedTables(client)).ok
        # A table bound to another layer, under this layer's tag, is no table for it.
        forged = document_of(TABLE, digest="sha256:" + "ef" * 32, size=SIZE)
        client.put_manifest(f"{REGISTRY}/{own}:{tag_of(layer)}", forged, shared_tables.INDEX_TYPE)
        tables, cache = SharedTables(client), LayerCache(tmp_path / "agent-4")
        assert _verify(reference, cache, tables).ok and (cache.loads, tables.taken) == (1, 0)
        assert _shared_in(own, layer)
        # The layer's blob gone: no table vouches for a layer a pull could not fetch.
        client.put_manifest(f"{REGISTRY}/{own}:{tag_of(layer)}", document_of(
            first_cache.get(f"{layer}/{len(LAYER)}", lambda: TABLE), digest=layer, size=len(LAYER)),
            shared_tables.INDEX_TYPE)
        gone = httpx.delete(f"http://{REGISTRY}/v2/{own}/blobs/{layer}", timeout=30)
        assert gone.status_code == 202, gone.text
        tables = SharedTables(client)
        with pytest.raises(OperationError):
            _verify(reference, LayerCache(tmp_path / "agent-5"), tables)
        assert tables.taken == 0


@pytest.mark.engine
def test_one_document_under_another_layers_tag_is_no_table_for_it(tmp_path: Path) -> None:
    """Tables read are kept by document and layer: the document of layer A, put under layer B's tag,
    is refused for B even right after it was taken for A."""
    repository = f"buildctl-test-shared/{uuid.uuid4().hex[:8]}"
    reference, layer = _pushed_image(repository)
    other_layer = push_blob(REGISTRY, repository, os.urandom(shared_tables.MIN_LAYER_BYTES + 10))
    document = document_of(TABLE, digest=layer, size=len(LAYER))
    with RegistryClient() as client:
        for tag in (tag_of(layer), tag_of(other_layer)):
            client.put_manifest(f"{REGISTRY}/{repository}:{tag}", document, shared_tables.INDEX_TYPE)
        tables = SharedTables(client)
        assert tables.get(f"{REGISTRY}/{repository}", layer, len(LAYER)) == TABLE
        assert tables.get(f"{REGISTRY}/{repository}", other_layer, shared_tables.MIN_LAYER_BYTES + 10) is None
