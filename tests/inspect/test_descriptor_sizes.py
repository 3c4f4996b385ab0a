"""A blob (layer, config) or platform manifest shorter or longer than its descriptor's ``size``
fails verification: a pull on the node would fail (containerd checks the size). On the real
registry, with manifests whose descriptors lie (Distribution stores them as written), and through
a front of the real registry that serves a layer or config cut short or with bytes added."""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile
from collections.abc import Iterator

import pytest

from buildctl.errors import OperationError
from buildctl.inspect.layers import LayerCache
from buildctl.inspect.results import CheckStatus
from buildctl.inspect.verify import verify_image
from buildctl.registry.client import RegistryClient
from buildctl.registry.wire import DigestReader
from tests.helpers.cli import REGISTRY, run_cli
from tests.helpers.crafted_images import (
    OCI_INDEX,
    OCI_MANIFEST,
    BlobFront,
    image_manifest,
    index_of,
    push_blob,
    push_manifest,
    pushed_digest,
    sha,
)
from tests.helpers.elf import elf_for

REPOSITORY = "buildctl-test-sizes"
ARM = {"os": "linux", "architecture": "arm64"}
CONFIG = json.dumps({"architecture": "arm64", "os": "linux", "config": {"Entrypoint": ["/app"]},
                     "rootfs": {"type": "layers", "diff_ids": []}}).encode()


def _layer() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        data = elf_for("arm64") + bytes(4000)
        info = tarfile.TarInfo("app")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    return gzip.compress(out.getvalue(), mtime=0)


LAYER = _layer()
# case -> (layer size, config size, index entry's manifest size): deltas from the truth
CASES = {
    "honest": (0, 0, 0),
    "layer-short": (+100, 0, 0),  # the blob is 100 bytes shorter than its descriptor says
    "layer-long": (-10, 0, 0),
    "config-short": (0, +5, 0),
    "config-long": (0, -5, 0),
    "manifest-short": (0, 0, +7),
    "manifest-long": (0, 0, -7),
}


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    refs = {}
    for case, (layer, config, manifest) in CASES.items():
        repository = f"{REPOSITORY}/{case}"
        refs[case] = f"{repository}:1"
        body = image_manifest(CONFIG, [LAYER], config_size=len(CONFIG) + config, layer_sizes=[len(LAYER) + layer])
        raw = json.dumps(body, separators=(",", ":")).encode()
        index = json.dumps(index_of(raw, ARM, size=len(raw) + manifest), separators=(",", ":")).encode()
        if pushed_digest(REGISTRY, repository, "1") == sha(index):
            continue  # pushed by an earlier run: the same bytes
        push_blob(REGISTRY, repository, LAYER)
        push_blob(REGISTRY, repository, CONFIG)
        push_manifest(REGISTRY, repository, sha(raw), body, OCI_MANIFEST)
        push_manifest(REGISTRY, repository, "1", index_of(raw, ARM, size=len(raw) + manifest), OCI_INDEX)
    return refs


@pytest.fixture(scope="module")
def client() -> Iterator[RegistryClient]:
    with RegistryClient() as c:
        yield c


def _verify(client, ref: str, cache: LayerCache):
    return verify_image(ref, platforms=["linux/arm64"], client=client, layers=cache)


pytestmark = pytest.mark.engine


def test_honest_descriptors_pass(images, client, tmp_path) -> None:
    v = _verify(client, f"{REGISTRY}/{images['honest']}", LayerCache(tmp_path))
    assert v.ok, v.checks
    assert {c.name: c.status for c in v.checks}["elf"] is CheckStatus.PASS


@pytest.mark.parametrize(("case", "message"), [
    ("layer-short", rf"blob {sha(LAYER)} is {len(LAYER)} bytes but its descriptor says {len(LAYER) + 100}: "
                    "a pull of it would fail"),
    ("layer-long", rf"blob {sha(LAYER)} of .* is larger than the {len(LAYER) - 10} bytes its descriptor says"),
    ("config-short", rf"blob {sha(CONFIG)} of .* is {len(CONFIG)} bytes but its descriptor says {len(CONFIG) + 5}: "
                     "a pull of it would fail"),
    ("config-long", rf"blob {sha(CONFIG)} of .* is larger than the {len(CONFIG) - 5} bytes its descriptor says"),
    ("manifest-short", r"manifest sha256:[0-9a-f]{64} is (\d+) bytes but its descriptor says \d+: a pull of it would fail"),
    ("manifest-long", r"manifest sha256:[0-9a-f]{64} is (\d+) bytes but its descriptor says \d+: a pull of it would fail"),
])
def test_a_size_that_lies_fails_naming_the_blob_and_both_sizes(images, client, tmp_path, case, message) -> None:
    cache = LayerCache(tmp_path)
    assert _verify(client, f"{REGISTRY}/{images['honest']}", cache).ok  # the same layer, read honestly first
    with pytest.raises(OperationError) as caught:
        _verify(client, f"{REGISTRY}/{images[case]}", cache)  # ... does not vouch for a descriptor that lies
    assert re.search(message, caught.value.message), caught.value.message
    assert caught.value.message.startswith(f"{REGISTRY}/{images[case].split(':')[0]}@sha256:")
    assert " linux/arm64: " in caught.value.message


def test_cli_exits_1_with_one_line(images, tmp_path) -> None:
    result = run_cli("verify", f"{REGISTRY}/{images['layer-short']}", "--platform", "linux/arm64",
                     env={"XDG_CACHE_HOME": str(tmp_path)})
    assert result.code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "its descriptor says" in lines[0], result.stderr


@pytest.mark.parametrize(("digest", "keep", "extra", "message"), [
    (sha(LAYER), len(LAYER) // 2, b"", rf"blob {sha(LAYER)} is {len(LAYER) // 2} bytes but its descriptor says "
                                       rf"{len(LAYER)}"),
    (sha(LAYER), None, b"\0" * 10, rf"is larger than the {len(LAYER)} bytes its descriptor says"),
    (sha(CONFIG), len(CONFIG) - 3, b"", rf"is {len(CONFIG) - 3} bytes but its descriptor says {len(CONFIG)}"),
    (sha(CONFIG), None, b" ", rf"is larger than the {len(CONFIG)} bytes its descriptor says"),
], ids=["layer-cut-short", "layer-extended", "config-cut-short", "config-extended"])
def test_a_front_serving_another_size_fails(images, client, tmp_path, digest, keep, extra, message) -> None:
    with BlobFront(REGISTRY, digest, keep=keep, extra=extra) as front:
        with pytest.raises(OperationError, match=message):
            _verify(client, f"{front.address}/{images['honest']}", LayerCache(tmp_path))
        assert front.served >= 1


def test_the_reader_fails_where_a_short_body_ends() -> None:
    reader = DigestReader(iter([b"ab", b"c"]), sha(b"abc"), size=5)
    assert reader.read(2) == b"ab" and reader.read(1) == b"c"
    with pytest.raises(OperationError, match="is 3 bytes but its descriptor says 5"):
        reader.read(1)  # before the consumer sees an end of file
    DigestReader(iter([b"ab", b"c"]), sha(b"abc"), size=3).verify()


def _without_size(case: str) -> str:
    """An image whose one descriptor (``case``: what, and how its size is written) lacks a valid size."""
    what, _, written = case.partition(":")
    body = image_manifest(CONFIG, [LAYER])
    target = {"layer": body["layers"][0], "config": body["config"]}.get(what)
    raw = json.dumps(body, separators=(",", ":")).encode()
    index = index_of(raw, ARM)
    target = index["manifests"][0] if what == "manifest" else target
    if written == "missing":
        target.pop("size")
    else:
        target["size"] = json.loads(written)
    raw = json.dumps(body, separators=(",", ":")).encode()
    if what != "manifest":
        index = index_of(raw, ARM)
    repository = f"{REPOSITORY}/no-size-{what}"
    push_blob(REGISTRY, repository, LAYER)
    push_blob(REGISTRY, repository, CONFIG)
    push_manifest(REGISTRY, repository, sha(raw), body, OCI_MANIFEST)
    push_manifest(REGISTRY, repository, written.replace("-", "minus").replace(".", "-"), index, OCI_INDEX)
    return f"{REGISTRY}/{repository}:{written.replace('-', 'minus').replace('.', '-')}"


@pytest.mark.parametrize(("case", "message"), [
    ("layer:missing", rf"layer {sha(LAYER)}: its descriptor has no size \(the OCI image spec requires one"),
    ("layer:-1", rf"layer {sha(LAYER)}: its descriptor size is -1, not a byte count"),
    ("config:missing", rf"image config {sha(CONFIG)}: its descriptor has no size"),
    ("manifest:missing", r"platform manifest sha256:[0-9a-f]{64}: its descriptor has no size"),
])
def test_a_descriptor_without_a_valid_size_fails(case: str, message: str, client, tmp_path) -> None:
    # Distribution stores such manifests as they are; nothing could check the blob's length on a pull.
    with pytest.raises(OperationError) as caught:
        _verify(client, _without_size(case), LayerCache(tmp_path))
    assert re.search(message, caught.value.message), caught.value.message
