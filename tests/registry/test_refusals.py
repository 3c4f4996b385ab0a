"""registry/refusals.py: a request the registry refused is not sent again for a day. On the real
stack: Distribution 2.x refuses a delete by tag (it deletes manifests by digest only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildctl.registry import refusals
from buildctl.registry.client import RegistryClient
from buildctl.registry.results import TagDeletion
from tests.helpers.fault_proxy import FaultProxy
from tests.helpers.reliability import unique_tag


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_a_refusal_counts_for_a_day_for_that_registry_and_kind_only() -> None:
    refusals.note_refusal(refusals.TAG_DELETE, "registry.example:5000", now=1_000_000.0)
    assert refusals.refused_lately(refusals.TAG_DELETE, "registry.example:5000", now=1_000_000.0 + 3600)
    assert not refusals.refused_lately(refusals.TAG_DELETE, "registry.example:5000", now=1_000_000.0 + 25 * 3600)
    assert not refusals.refused_lately(refusals.TAG_DELETE, "registry.example:5000", now=1_000_000.0 - 60)  # clock back
    assert not refusals.refused_lately(refusals.TAG_DELETE, "other.example:5000", now=1_000_000.0 + 3600)
    assert not refusals.refused_lately(refusals.MANIFEST_DELETE, "registry.example:5000", now=1_000_000.0 + 3600)


@pytest.mark.engine
def test_a_tag_delete_the_registry_refused_is_not_asked_again_in_that_repository() -> None:
    """Asked once per repository (a registry's rules may differ by repository: a lock, a path's policy)."""
    index = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}'
    with FaultProxy() as proxy, RegistryClient() as client:
        first, other = (f"{proxy.address}/buildctl-e2e/{unique_tag(name)}" for name in ("refusal", "refusal-other"))
        for repository in (first, other):
            client.put_manifest(f"{repository}:t", index, "application/vnd.oci.image.index.v1+json")
        assert client.delete_tag(f"{first}:t") is TagDeletion.KEPT
        assert client.delete_tag(f"{first}:t") is TagDeletion.KEPT
        assert client.delete_tag(f"{other}:t") is TagDeletion.KEPT
        deletes = [s for s in proxy.seen if s.method == "DELETE"]
    assert [(s.path.split("/manifests/")[0], s.outcome) for s in deletes] == [
        (f"/v2/{first.split('/', 1)[1]}", "forwarded 400"), (f"/v2/{other.split('/', 1)[1]}", "forwarded 400")], deletes
