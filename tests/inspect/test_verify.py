"""verify_image against the real local registry, on images buildx really built and pushed."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from buildctl.commands.verify import verify_references
from buildctl.errors import OperationError, UsageError
from buildctl.inspect.layers import LayerCache
from buildctl.inspect.results import Check, Verification
from buildctl.inspect.verify import (
    NO_COMMAND,
    check_platform_set,
    verify_image,
    verify_images,
)
from buildctl.registry.client import RegistryClient
from tests.helpers.buildx import build_push, docker_retried
from tests.helpers.cli import BASE_IMAGE, REGISTRY, run_cli
from tests.helpers.elf import elf_for

BOTH = ("linux/amd64", "linux/arm64")
PREFIX = f"{REGISTRY}/buildctl-test"
APP = "#!/usr/bin/env python3\nprint('hello')\n"

DOCKERFILES = {
    # (a) a real service: env shebang -> python3 symlink -> python3.11, from the multi-arch base.
    "good": (BOTH, f"FROM {BASE_IMAGE}\nCOPY --chmod=755 app /usr/local/bin/app\n"
                   'ENTRYPOINT ["app"]\nCMD ["--serve"]\n'),
    # (b) the classic mistake: base pinned to amd64, so the arm64 image carries x86-64 bytes.
    "pinned-base": (BOTH, f"FROM --platform=linux/amd64 {BASE_IMAGE}\n"
                          'ENTRYPOINT ["python3", "-m", "http.server"]\n'),
    # (c) one platform only.
    "amd64-only": (("linux/amd64",), "FROM scratch\nARG TARGETARCH\nCOPY --chmod=755 ${TARGETARCH}/app /app\n"
                                     'ENTRYPOINT ["/app"]\n'),
    # (d) nothing to run.
    "no-entrypoint": (BOTH, "FROM scratch\nARG TARGETARCH\nCOPY --chmod=755 ${TARGETARCH}/app /app\n"),
    # tiny and correct: for request counting and timing.
    "static": (BOTH, "FROM scratch\nARG TARGETARCH\nCOPY --chmod=755 ${TARGETARCH}/app /bin/app\n"
                     'ENV PATH=/bin\nENTRYPOINT ["app"]\n'),
}
TIMING_COPIES = 10


@dataclass(frozen=True)
class Built:
    ref: str  # repository:tag
    digest: str  # the index digest buildx reported


def _wait_for_base(timeout: float = 900) -> None:
    """scripts/stack.sh up builds the base image in the background on a fresh machine."""
    repo, _, tag = BASE_IMAGE.removeprefix(f"{REGISTRY}/").partition(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if tag in (httpx.get(f"http://{REGISTRY}/v2/{repo}/tags/list", timeout=5).json().get("tags") or []):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(5)
    pytest.fail(f"base image {BASE_IMAGE} did not appear in {timeout:.0f}s (scripts/stack.sh up builds it)")


def _build(context: Path, name: str) -> Built:
    platforms, dockerfile = DOCKERFILES[name]
    ctx = context / name
    for arch in ("amd64", "arm64"):
        (ctx / arch).mkdir(parents=True)
        (ctx / arch / "app").write_bytes(elf_for(arch))
    (ctx / "app").write_text(APP)
    (ctx / "Dockerfile").write_text(dockerfile)
    ref = f"{PREFIX}/{name}:1"
    metadata = ctx / "metadata.json"
    proc = build_push(["--platform", ",".join(platforms), "--tag", ref, "--push", "--metadata-file", str(metadata),
                       str(ctx)])
    assert proc.returncode == 0, f"building {name} failed:\n{proc.stderr[-3000:]}"
    return Built(ref, json.loads(metadata.read_text())["containerimage.digest"])


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Built]]:
    _wait_for_base()
    context = tmp_path_factory.mktemp("contexts")
    with ThreadPoolExecutor(max_workers=len(DOCKERFILES)) as pool:
        images = dict(zip(DOCKERFILES, pool.map(lambda n: _build(context, n), DOCKERFILES), strict=True))
    yield images
    # buildx's docker driver also keeps each image in the engine's store; the registry copies stay.
    subprocess.run(["docker", "image", "rm", "--force", *(b.ref for b in images.values())], capture_output=True)


@pytest.fixture(scope="module")
def client() -> Iterator[RegistryClient]:
    with RegistryClient() as c:
        yield c


@pytest.fixture(scope="module")
def layers(tmp_path_factory: pytest.TempPathFactory) -> LayerCache:
    return LayerCache(tmp_path_factory.mktemp("layer-cache"))


def checks(v: Verification) -> dict[tuple[str, str], Check]:
    return {(c.platform, c.name): c for c in v.checks}


pytestmark = pytest.mark.engine


def test_good_image_passes_everywhere_and_ignores_attestations(built, client, layers) -> None:
    good = built["good"]
    v = verify_image(good.ref, platforms=BOTH, client=client, layers=layers)
    assert v.ok, v.checks
    assert v.index_digest == good.digest
    assert v.reference == f"{PREFIX}/good@{good.digest}"
    index = client.get_manifest(good.ref).json()["manifests"]
    attestations = [m for m in index if m.get("annotations", {}).get("vnd.docker.reference.type")
                    == "attestation-manifest"]
    assert len(attestations) == 2, "buildx should attach provenance to each platform"
    assert {m["digest"] for m in index} - {m["digest"] for m in attestations} == {p.digest for p in v.platforms}
    by = checks(v)
    assert by[("", "platforms")].detail == "linux/amd64, linux/arm64 (2 attestation manifests ignored)"
    assert [p.platform for p in v.platforms] == list(BOTH)
    assert by[("linux/amd64", "elf")].detail == (
        "/usr/local/bin/app -> /usr/bin/env -> /usr/bin/python3.11: x86-64 (EM_X86_64)")
    assert by[("linux/arm64", "elf")].detail.endswith("/usr/bin/python3.11: aarch64 (EM_AARCH64)")
    assert by[("linux/arm64", "config")] == Check("linux/arm64", "config", "pass", "config says linux/arm64")


def test_arm64_variant_v8_is_the_same_platform(built, client, layers) -> None:
    v = verify_image(built["good"].ref, platforms=("linux/amd64", "linux/arm64/v8"), client=client, layers=layers)
    assert v.ok, v.checks


def test_amd64_bytes_in_the_arm64_image_fail_the_elf_check(built, client, layers) -> None:
    v = verify_image(built["pinned-base"].ref, platforms=BOTH, client=client, layers=layers)
    by = checks(v)
    assert not v.ok
    assert by[("linux/arm64", "config")].status == "pass"  # the config claims arm64...
    assert by[("linux/arm64", "elf")] == Check(  # ...but the bytes are x86-64
        "linux/arm64", "elf", "fail", "/usr/bin/python3.11 is x86-64 (EM_X86_64), expected aarch64")
    assert by[("linux/amd64", "elf")].status == "pass"


def test_missing_platform_fails_the_platform_check(built, client, layers) -> None:
    v = verify_image(built["amd64-only"].ref, platforms=BOTH, client=client, layers=layers)
    by = checks(v)
    assert by[("", "platforms")] == Check(
        "", "platforms", "fail", "missing linux/arm64 (image has linux/amd64)")
    assert by[("linux/amd64", "elf")].status == "pass"
    assert [p.platform for p in v.platforms] == ["linux/amd64"]


def test_extra_platform_fails_only_when_exact(built, client, layers) -> None:
    ref = built["good"].ref
    strict = verify_image(ref, platforms=["linux/amd64"], client=client, layers=layers)
    assert checks(strict)[("", "platforms")].detail.startswith("unexpected linux/arm64 (exact platform set required)")
    assert verify_image(ref, platforms=["linux/amd64"], exact=False, client=client, layers=layers).ok


def test_no_entrypoint_is_skipped_with_a_reason(built, client, layers) -> None:
    v = verify_image(built["no-entrypoint"].ref, platforms=BOTH, client=client, layers=layers)
    assert v.ok
    for platform in BOTH:
        assert checks(v)[(platform, "elf")] == Check(platform, "elf", "skip", NO_COMMAND)


def test_single_platform_manifest_is_one_platform(built, client, layers) -> None:
    amd64 = next(p for p in verify_image(built["static"].ref, platforms=BOTH, client=client, layers=layers).platforms
                 if p.platform == "linux/amd64")
    v = verify_image(f"{PREFIX}/static@{amd64.digest}", platforms=["linux/amd64"], client=client, layers=layers)
    assert v.ok and v.index_digest is None
    assert checks(v)[("linux/amd64", "elf")].detail == "/bin/app: x86-64 (EM_X86_64)"
    assert checks(v)[("linux/amd64", "config")].status == "skip"
    both = verify_image(f"{PREFIX}/static@{amd64.digest}", platforms=BOTH, client=client, layers=layers)
    assert checks(both)[("", "platforms")].detail == "missing linux/arm64 (image has linux/amd64)"


def test_unknown_reference_is_an_operation_error(client, layers) -> None:
    with pytest.raises(OperationError, match=rf"^manifest unknown: {PREFIX}/does-not-exist:nope does not exist"):
        verify_image(f"{PREFIX}/does-not-exist:nope", platforms=BOTH, client=client, layers=layers)


def test_bad_input_is_a_usage_error(client, layers) -> None:
    with pytest.raises(UsageError, match="repository names must be lowercase"):
        verify_image(f"{PREFIX}/Upper:1", platforms=BOTH, client=client, layers=layers)
    with pytest.raises(UsageError, match="invalid platform 'arm64'"):
        verify_image(f"{PREFIX}/static:1", platforms=["arm64"], client=client, layers=layers)


def test_second_verification_reads_no_layer_blob(built, tmp_path: Path) -> None:
    blob_gets: list[str] = []

    def count(request: httpx.Request) -> None:
        if "/blobs/" in request.url.path:
            blob_gets.append(request.url.path.rsplit("/", 1)[1])

    ref = built["good"].ref
    with RegistryClient(event_hooks={"request": [count]}) as counting:
        first = verify_image(ref, platforms=BOTH, client=counting, layers=LayerCache(tmp_path))
        manifests = [counting.get_manifest(f"{PREFIX}/good@{p.digest}").json() for p in first.platforms]
        layer_digests = {layer["digest"] for m in manifests for layer in m["layers"]}
        assert layer_digests <= set(blob_gets)  # the first run really read the layers
        blob_gets.clear()
        second = verify_image(ref, platforms=BOTH, client=counting, layers=LayerCache(tmp_path))  # disk only
        assert second == first
        assert blob_gets == []  # each platform's verdict is cached by its manifest digest
        for verdict in tmp_path.rglob("verdicts/*.json"):
            verdict.unlink()
        third = verify_image(ref, platforms=BOTH, client=counting, layers=LayerCache(tmp_path))  # tables only
        assert third == first
        assert layer_digests.isdisjoint(blob_gets)
        assert len(blob_gets) == 2  # just the two image configs


def test_ten_images_two_platforms_warm(built, client, layers) -> None:
    src = built["good"].ref
    refs = [f"{PREFIX}/copy-{i}:1" for i in range(TIMING_COPIES)]
    for ref in refs:
        made = docker_retried(["buildx", "imagetools", "create", "--tag", ref, src], timeout=120)
        assert made.returncode == 0, made.stderr[-2000:]
    verify_images(refs, platforms=BOTH, client=client, layers=layers)  # warm the layer tables
    loads = layers.loads
    start = time.perf_counter()
    results = verify_images(refs, platforms=BOTH, client=client, layers=layers)
    elapsed = time.perf_counter() - start
    print(f"\nverified {len(refs)} images x 2 platforms warm in {elapsed:.3f}s")  # the target: benchmarks/run.py verify
    assert all(v.ok for v in results) and len(results) == TIMING_COPIES
    assert layers.loads == loads  # warm: every layer table came from the cache, no blob was read again


def test_verify_images_takes_platforms_per_image(built, client, layers) -> None:
    results = verify_images([built["amd64-only"].ref, built["good"].ref],
                            platforms=[["linux/amd64"], BOTH], client=client, layers=layers)
    assert [v.ok for v in results] == [True, True]
    with pytest.raises(ValueError, match="1 platform lists for 2 references"):
        verify_images([built["good"].ref] * 2, platforms=[BOTH], client=client, layers=layers)


def test_verify_references_keeps_order(built) -> None:
    results = verify_references([built["amd64-only"].ref, built["good"].ref], platforms=BOTH)
    assert [v.index_digest for v in results] == [built["amd64-only"].digest, built["good"].digest]
    assert [v.ok for v in results] == [False, True]


def test_cli_exit_codes(built) -> None:
    ok = run_cli("verify", built["good"].ref, "--platform", "linux/amd64", "--platform", "linux/arm64")
    assert ok.code == 0, ok.output
    bad = run_cli("verify", built["pinned-base"].ref, "--platform", "linux/amd64", "--platform", "linux/arm64")
    assert bad.code == 1, bad.output
    assert "expected aarch64" in bad.output


# ------------------------------------------------------------------ pure helpers used above


def test_platform_set_reports_duplicates_and_everything_wrong_at_once() -> None:
    c = check_platform_set(["linux/amd64", "linux/arm64"], ["linux/amd64", "linux/amd64", "linux/s390x"], exact=True)
    assert c.status == "fail"
    assert c.detail == ("missing linux/arm64; linux/amd64 appears 2 times; "
                        "unexpected linux/s390x (exact platform set required) (image has linux/amd64, linux/s390x)")
