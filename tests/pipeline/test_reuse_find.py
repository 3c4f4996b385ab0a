"""pipeline/reuse.find on the real registry: a pointer is trusted only when the index it names
carries exactly the input digest looked for and is whole."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from buildctl.inputs import key as keys
from buildctl.pipeline.reuse import find
from buildctl.registry.client import RegistryClient
from tests.helpers.cli import BASE_IMAGE, REGISTRY

pytestmark = pytest.mark.engine


def _index(repository: str, digest: str | None) -> str:
    """A copy of the base image's index in ``repository``, annotated with ``digest`` (when given)."""
    ref = f"{repository}:src-{uuid.uuid4().hex[:6]}"
    note = ["--annotation", f"index:{keys.ANNOTATION}={digest}"] if digest else []
    subprocess.run(["docker", "buildx", "imagetools", "create", *note, "--tag", ref, BASE_IMAGE], check=True,
                   capture_output=True)
    return ref


def test_a_pointer_counts_only_for_the_digest_its_index_carries() -> None:
    repository = f"{REGISTRY}/reuse-find-{uuid.uuid4().hex[:8]}/x"
    wanted, other = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    with RegistryClient() as client:
        pointer = f"{repository}:{keys.pointer_tag(wanted)}"
        assert find(client, pointer, wanted) is None  # no pointer at all

        for source, expected in ((_index(repository, other), None), (_index(repository, None), None),
                                 (_index(repository, wanted), True)):
            index = client.get_manifest(source)
            client.put_manifest(pointer, index.content, index.media_type)
            assert find(client, pointer, wanted) == (index.digest if expected else None), source
