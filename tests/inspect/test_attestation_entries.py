"""An index entry is skipped as an attestation only when it is one as buildx writes it: the
attestation annotation and the platform unknown/unknown. containerd picks an index's entries by
platform alone, so an entry with that annotation and a real platform is pulled for that platform and
is verified as an image (adversarial review: an x86-64 /app behind an arm64 entry labelled as an
attestation, listed before the genuine arm64 image, passed)."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import pytest

from buildctl.inspect.descriptors import is_attestation
from buildctl.inspect.layers import LayerCache
from buildctl.inspect.results import CheckStatus
from buildctl.inspect.verify import verify_image
from buildctl.registry.client import RegistryClient
from tests.helpers.cli import REGISTRY
from tests.helpers.crafted_images import OCI_INDEX, OCI_MANIFEST, image_manifest, index_of, push_blob, push_manifest, sha
from tests.helpers.elf import elf_for

REPOSITORY = "buildctl-test-attestation-entries"
LABEL = {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": "sha256:" + "0" * 64}


@pytest.mark.parametrize(("entry", "skipped"), [
    ({"annotations": LABEL, "platform": {"os": "unknown", "architecture": "unknown"}}, True),
    ({"annotations": LABEL}, True),
    ({"annotations": LABEL, "platform": {"os": "linux", "architecture": "arm64"}}, False),
    ({"annotations": LABEL, "platform": {"os": "linux", "architecture": "unknown"}}, False),
    ({"platform": {"os": "unknown", "architecture": "unknown"}}, False),  # no annotation: not buildx's
])
def test_only_buildx_attestation_entries_are_skipped(entry: dict, skipped: bool) -> None:
    assert is_attestation(entry) is skipped


def _image(arch: str, binary_arch: str) -> dict:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        data = elf_for(binary_arch)
        info = tarfile.TarInfo("app")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    layer = gzip.compress(out.getvalue(), mtime=0)
    config = json.dumps({"architecture": arch, "os": "linux", "config": {"Entrypoint": ["/app"]},
                         "rootfs": {"type": "layers", "diff_ids": [sha(out.getvalue())]}}).encode()
    push_blob(REGISTRY, REPOSITORY, layer)
    push_blob(REGISTRY, REPOSITORY, config)
    body = image_manifest(config, [layer])
    raw = push_manifest(REGISTRY, REPOSITORY, sha(json.dumps(body, separators=(",", ":")).encode()), body, OCI_MANIFEST)
    return index_of(raw, {"os": "linux", "architecture": arch})["manifests"][0]


@pytest.mark.engine
def test_an_entry_labelled_attestation_with_a_real_platform_is_verified_as_the_image_it_is(tmp_path) -> None:
    posing = _image("arm64", "amd64") | {"annotations": LABEL}
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
             "manifests": [_image("amd64", "amd64"), posing, _image("arm64", "arm64")]}
    push_manifest(REGISTRY, REPOSITORY, "posing", index, OCI_INDEX)
    with RegistryClient() as client:
        result = verify_image(f"{REGISTRY}/{REPOSITORY}:posing", platforms=("linux/amd64", "linux/arm64"),
                              client=client, layers=LayerCache(tmp_path / "cache"))
    assert not result.ok
    failed = {(c.platform, c.name): c.detail for c in result.checks if c.status is CheckStatus.FAIL}
    assert failed[("", "platforms")].startswith("linux/arm64 appears 2 times")
    assert "x86-64" in failed[("linux/arm64", "elf")]
