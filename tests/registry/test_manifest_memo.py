"""A client's manifests by repository and digest (registry/manifest_memo.py): pure bounds, then
the real registry — a second GET by digest is no request, another repository's is, and the
client's own delete forgets."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from buildctl.errors import OperationError
from buildctl.registry.client import RegistryClient
from buildctl.registry.manifest_memo import ManifestMemo
from buildctl.registry.results import Manifest
from buildctl.registry.wire import sha256_digest
from tests.helpers.cli import REGISTRY

INDEX = "application/vnd.oci.image.index.v1+json"


def _manifest(n: int, size: int = 100) -> Manifest:
    content = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": [], "pad": "x" * size, "n": n}).encode()
    return Manifest(INDEX, content, sha256_digest(content))


def test_the_memo_is_bounded_keyed_by_repository_and_forgets() -> None:
    memo = ManifestMemo(max_bytes=4000)
    kept = [_manifest(n, 800) for n in range(6)]
    for manifest in kept:
        memo.keep("r", "a", manifest)
    assert memo.get("r", "a", kept[0].digest) is None  # the oldest went past the bound
    assert memo.get("r", "a", kept[-1].digest) == kept[-1]
    assert memo.get("r", "b", kept[-1].digest) is None and memo.get("q", "a", kept[-1].digest) is None
    memo.forget("r", "a", kept[-1].digest)
    assert memo.get("r", "a", kept[-1].digest) is None
    memo.keep("r", "a", _manifest(9, 2000))  # more than a quarter of the bound: not held
    assert memo.get("r", "a", _manifest(9, 2000).digest) is None


@pytest.mark.engine
def test_a_second_read_by_digest_is_no_request_and_a_delete_forgets() -> None:
    repository, other = (f"{REGISTRY}/buildctl-memo/{uuid.uuid4().hex[:8]}" for _ in range(2))
    manifest = _manifest(1)
    sent: list[str] = []

    def count(request: httpx.Request) -> None:
        if "/manifests/" in request.url.path:
            sent.append(request.method)

    with RegistryClient() as writer:
        writer.put_manifest(f"{repository}:t", manifest.content, INDEX)
        writer.put_manifest(f"{other}:t", manifest.content, INDEX)
    with RegistryClient(event_hooks={"request": [count]}) as client:
        first = client.get_manifest(f"{repository}@{manifest.digest}")
        again = client.get_manifest(f"{repository}@{manifest.digest}")
        assert first == again == manifest and sent == ["GET"]
        assert client.get_manifest(f"{other}@{manifest.digest}") == manifest and sent == ["GET", "GET"]
        assert client.get_manifest(f"{repository}:t") == manifest and sent == ["GET"] * 3  # a tag: always asked
        assert client.delete_manifest(f"{repository}@{manifest.digest}")
        with pytest.raises(OperationError, match="not found|unknown"):
            client.get_manifest(f"{repository}@{manifest.digest}")


@pytest.mark.engine
def test_a_release_tag_is_never_written_for_an_index_deleted_behind_the_run() -> None:
    """The memo answers bytes, not whether the registry still has them: the release tag's write
    asks (a HEAD), so an index deleted behind the run's back fails the tag instead of coming back."""
    from buildctl.engine.docker import tag_index

    repository = f"{REGISTRY}/buildctl-memo/{uuid.uuid4().hex[:8]}"
    manifest = _manifest(2)
    with RegistryClient() as run, RegistryClient() as other:
        run.put_manifest(f"{repository}:staging", manifest.content, INDEX)
        assert run.get_manifest(f"{repository}@{manifest.digest}") == manifest
        assert other.delete_manifest(f"{repository}@{manifest.digest}")
        assert run.get_manifest(f"{repository}@{manifest.digest}") == manifest  # bytes, from memory
        with pytest.raises(OperationError, match="no longer in the registry"):
            tag_index(source=f"{repository}@{manifest.digest}", tag_ref=f"{repository}:v1", client=run)
        assert other.head_manifest(f"{repository}:v1") is None
