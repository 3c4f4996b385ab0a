"""Base images resolved per target platform before the build (inspect/base_platforms.py): images in
the real local registry, written through the distribution API (a single-platform index, a lone
manifest) beside the stack's multi-arch base; a build FROM one that lacks a target platform is
refused with Dockerfile:LINE before anything is built."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import time
from pathlib import Path

import httpx
import pytest

from buildctl.config.loader import load_config
from buildctl.errors import ConfigError
from buildctl.inspect.base_platforms import refuse_missing_platforms
from buildctl.inspect.dockerfile import TARGET, BaseImage, base_images
from tests.helpers.cli import BASE_IMAGE, REGISTRY, run_cli
from tests.helpers.crafted_images import (
    OCI_INDEX,
    OCI_MANIFEST,
    image_manifest,
    index_of,
    push_blob,
    push_manifest,
    sha,
)

AMD64_INDEX = f"{REGISTRY}/buildctl-test-bases/amd64-index:1"
AMD64_LONE = f"{REGISTRY}/buildctl-test-bases/amd64-lone:1"


def test_base_images_are_the_images_of_the_stages_the_build_runs() -> None:
    text = ("ARG BASE=alpine\nFROM golang AS tools\nRUN --mount=from=busybox,target=/b true\n"
            "FROM --platform=$BUILDPLATFORM node AS unused\nFROM ${BASE}\nCOPY --from=tools /t /t\n"
            "COPY --from=nginx:1 /n /n\nARG LATER\nCOPY --from=${LATER} /x /x\n")
    assert base_images(text, path="D") == (
        BaseImage(2, "golang", TARGET), BaseImage(3, "busybox", TARGET), BaseImage(5, "alpine", TARGET),
        BaseImage(7, "nginx:1", TARGET))
    assert base_images(text, path="D", build_args={"BASE": "r.io/base:2"})[2] == BaseImage(5, "r.io/base:2", TARGET)
    assert base_images("FROM scratch\n", path="D") == ()


def _layer() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("hello")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    return gzip.compress(out.getvalue(), mtime=0)


@pytest.fixture(scope="module")
def single_platform_images() -> None:
    layer = _layer()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    for ref in (AMD64_INDEX, AMD64_LONE):
        repository = ref.removeprefix(f"{REGISTRY}/").partition(":")[0]
        push_blob(REGISTRY, repository, layer)
        push_blob(REGISTRY, repository, config)
        body = image_manifest(config, [layer])
        raw = json.dumps(body, separators=(",", ":")).encode()
        if ref == AMD64_LONE:
            push_manifest(REGISTRY, repository, "1", body, OCI_MANIFEST)
        else:
            push_manifest(REGISTRY, repository, sha(raw), body, OCI_MANIFEST)
            push_manifest(REGISTRY, repository, "1", index_of(raw, {"os": "linux", "architecture": "amd64"}), OCI_INDEX)


def _repository(root: Path) -> str:
    return "buildctl-test-bases/api-" + "".join(c for c in root.name.lower() if c.isalnum())[-12:]


def _config(root: Path, dockerfile: str, *, build_args: str = "", platforms: str = "[linux/amd64, linux/arm64]"):
    (root / "api").mkdir(exist_ok=True)
    (root / "api" / "Dockerfile").write_text(dockerfile)
    (root / "services.yaml").write_text(f"platforms: {platforms}\nservices:\n  api:\n    context: api\n"
                                        f"    image: {_repository(root)}\n{build_args}")
    return root / "services.yaml"


pytestmark = pytest.mark.engine


@pytest.mark.parametrize(("dockerfile", "line", "image"), [
    (f"FROM {AMD64_INDEX}\n", 1, AMD64_INDEX),
    (f"FROM {AMD64_LONE}\nENTRYPOINT [\"/hello\"]\n", 1, AMD64_LONE),  # no index: the config's platform
    (f"FROM {BASE_IMAGE}\nRUN true\nCOPY --from={AMD64_INDEX} /hello /hello\n", 3, AMD64_INDEX),
    (f"FROM {BASE_IMAGE} AS tools\nRUN --mount=from={AMD64_LONE},target=/x true\nFROM scratch\n"
     "COPY --from=tools /etc/os-release /r\n", 2, AMD64_LONE),
])
def test_an_image_lacking_a_target_platform_is_refused_at_its_line(single_platform_images, tmp_path, dockerfile,
                                                                    line, image) -> None:
    config = load_config(_config(tmp_path, dockerfile))
    with pytest.raises(ConfigError) as refused:
        refuse_missing_platforms(config)
    assert refused.value.message == (
        f"api/Dockerfile:{line}: service api: {image} has no linux/arm64 image (it has linux/amd64): the linux/arm64 "
        "build would use another platform's image or fail late")


def test_what_the_build_pulls_with_every_platform_passes(single_platform_images, tmp_path) -> None:
    for name, (dockerfile, extra) in {
        "multi": (f"FROM {BASE_IMAGE}\n", {}),
        "pinned": (f"FROM --platform=linux/amd64 {AMD64_INDEX}\n", {}),  # pulled for amd64 only
        "native": (f"FROM --platform=$BUILDPLATFORM {AMD64_INDEX} AS b\nFROM {BASE_IMAGE}\nCOPY --from=b /hello /h\n", {}),
        "amd64-only": (f"FROM {AMD64_INDEX}\n", {"platforms": "[linux/amd64]"}),
        "unreachable": ("FROM 127.0.0.1:1/nothing/here:1\n", {}),  # left to the build
        "unknown-repo": (f"FROM {REGISTRY}/buildctl-test-bases/never-pushed:1\n", {}),
    }.items():
        root = tmp_path / name
        root.mkdir()
        start = time.monotonic()
        refuse_missing_platforms(load_config(_config(root, dockerfile, **extra)))
        assert time.monotonic() - start < 15, name


def test_build_args_choose_the_base(single_platform_images, tmp_path) -> None:
    text = f"ARG BASE_IMAGE={BASE_IMAGE}\nFROM ${{BASE_IMAGE}}\n"
    good = tmp_path / "default"
    good.mkdir()
    refuse_missing_platforms(load_config(_config(good, text)))  # the multi-arch default
    bad = tmp_path / "override"
    bad.mkdir()
    config = load_config(_config(bad, text, build_args=f"    build_args: {{BASE_IMAGE: {AMD64_INDEX}}}\n"))
    with pytest.raises(ConfigError, match=rf"^api/Dockerfile:2: service api: {AMD64_INDEX} has no linux/arm64"):
        refuse_missing_platforms(config)


def test_a_build_from_it_is_refused_before_anything_is_built(single_platform_images, tmp_path) -> None:
    config = _config(tmp_path, f"FROM {AMD64_INDEX}\nCOPY . /src\n")
    result = run_cli("build", "-c", str(config), "--tag", "1")
    assert result.code == 2, result.output
    assert result.stderr.startswith(f"buildctl: error: api/Dockerfile:1: service api: {AMD64_INDEX} has no "
                                    "linux/arm64 image"), result.stderr
    repository = _repository(tmp_path)
    assert httpx.get(f"http://{REGISTRY}/v2/{repository}/tags/list", timeout=10).status_code == 404
    assert not list((tmp_path / ".buildctl").glob("runs/*/*.log"))  # no build started


def test_plan_diff_shows_each_base_digest_per_platform(single_platform_images, tmp_path) -> None:
    from buildctl.inspect.base_platforms import resolved_bases

    index = httpx.get(f"http://{REGISTRY}/v2/buildctl/base/manifests/bookworm-1", timeout=10,
                      headers={"Accept": OCI_INDEX}).json()
    want = {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"] for m in index["manifests"]
            if m.get("platform", {}).get("os") == "linux"}
    config = _config(tmp_path, f"FROM {BASE_IMAGE}\nCOPY --from={AMD64_INDEX} /hello /hello\n"
                               "COPY --from=127.0.0.1:1/nothing/here:1 /x /x\n")
    bases = resolved_bases(load_config(config))
    assert [(b.line, b.reference) for b in bases] == [(1, BASE_IMAGE), (2, AMD64_INDEX), (3, "127.0.0.1:1/nothing/here:1")]
    assert bases[0].digests == (("linux/amd64", want["linux/amd64"]), ("linux/arm64", want["linux/arm64"]))
    assert bases[1].digests[1] == ("linux/arm64", "absent") and bases[1].digests[0][1].startswith("sha256:")
    assert bases[2].digests == (("linux/amd64", "not resolved"), ("linux/arm64", "not resolved"))
    shown = run_cli("plan", "--diff", "-c", str(config))
    assert shown.code == 0, shown.output
    assert (f"base api api/Dockerfile:1 {BASE_IMAGE}: linux/amd64 {want['linux/amd64']}; "
            f"linux/arm64 {want['linux/arm64']}") in shown.stdout
    assert "api/Dockerfile:3 127.0.0.1:1/nothing/here:1: linux/amd64 not resolved; linux/arm64 not resolved" in shown.stdout
    assert "base api" not in run_cli("plan", "-c", str(config)).stdout  # plan alone stays pure
