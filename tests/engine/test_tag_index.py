"""A release tag written through the registry API (engine.tag_index with the run's client): the
tag names the very bytes that were verified, with their content type, and a refused write is the
one-line "cannot tag" error the tag step reports (tests/e2e/test_tag_failure.py runs it end to end)."""

from __future__ import annotations

import json
import uuid

import pytest

from buildctl.engine import docker as engine
from buildctl.errors import OperationError
from buildctl.registry.client import RegistryClient
from tests.helpers.cli import REGISTRY
from tests.helpers.fault_proxy import FaultProxy

pytestmark = pytest.mark.engine

OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def _index() -> bytes:
    # Bytes no serializer would write back the same way (key order, spacing): a re-encoded copy
    # would have another digest.
    note = uuid.uuid4().hex
    return ('{"schemaVersion":2,  "mediaType":"%s","manifests":[],\n "annotations":{"z":"1","a":"%s"}}'
            % (OCI_INDEX, note)).encode()


def test_the_tag_holds_the_sources_bytes_media_type_and_digest() -> None:
    repository = f"{REGISTRY}/buildctl-test/tag-index"
    content = _index()
    with RegistryClient() as client:
        digest = client.put_manifest(f"{repository}:staging-{uuid.uuid4().hex[:8]}", content, OCI_INDEX)
        tag = f"{repository}:release-{uuid.uuid4().hex[:8]}"
        engine.tag_index(source=f"{repository}@{digest}", tag_ref=tag, client=client)
        tagged = client.get_manifest(tag)
    assert (tagged.digest, tagged.media_type, tagged.content) == (digest, OCI_INDEX, content)
    assert json.loads(tagged.content)["annotations"]["z"] == "1"


def test_a_refused_tag_write_is_one_cannot_tag_error() -> None:
    with FaultProxy() as proxy, RegistryClient() as client:
        repository = f"{proxy.address}/buildctl-test/tag-index"
        digest = client.put_manifest(f"{repository}:staging-{uuid.uuid4().hex[:8]}", _index(), OCI_INDEX)
        tag = f"release-{uuid.uuid4().hex[:8]}"
        proxy.fail(403, times=100, method="PUT", path=rf"/buildctl-test/tag-index/manifests/{tag}$")
        with pytest.raises(OperationError) as err:
            engine.tag_index(source=f"{repository}@{digest}", tag_ref=f"{repository}:{tag}", client=client)
        assert err.value.message.startswith(f"cannot tag {repository}:{tag}: "), err.value.message
        assert "403" in err.value.message
        assert client.head_manifest(f"{repository}:{tag}") is None
