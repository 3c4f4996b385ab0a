"""The page-size check on images buildx really built and pushed to the local registry: a static arm64
binary cross-compiled with ``-z max-page-size=4096`` (fails on 16k/64k, a warning at 4k) and its
twin linked with ``-z max-page-size=65536`` (passes everywhere), verified with each setting through
the API, ``buildctl verify --page-size`` and services.yaml ``verify.page_size``.

The images are tagged by a hash of what they are built from, so a warm registry reuses them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildctl.inspect.layers import LayerCache
from buildctl.inspect.results import Check, CheckStatus, Verification
from buildctl.inspect.verify import VerifyOptions, page_size_bytes, verify_image
from buildctl.registry.client import RegistryClient
from tests.helpers.buildx import pushed_once
from tests.helpers.cli import REGISTRY, run_cli
from tests.helpers.elf import cross_compile_arm64

pytestmark = pytest.mark.engine

ARM = "linux/arm64"
PROBE = "/usr/local/bin/probe"
DOCKERFILE = f'FROM scratch\nCOPY --chmod=755 probe {PROBE}\nENTRYPOINT ["{PROBE}"]\n'
LINKED = {"narrow": 4096, "wide": 65536}  # -z max-page-size


def _image(context: Path, name: str) -> str:
    ctx = context / name
    ctx.mkdir()
    binary = cross_compile_arm64(ctx, max_page_size=LINKED[name])
    (ctx / "probe").write_bytes(binary)
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    content = hashlib.sha256(binary + DOCKERFILE.encode()).hexdigest()[:16]
    return pushed_once(f"{REGISTRY}/buildctl-test-pages/{name}:{content}", ctx, "--platform", ARM,
                       "--provenance=false", "--output", "type=registry,oci-mediatypes=true")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    context = tmp_path_factory.mktemp("pages")
    return {name: _image(context, name) for name in LINKED}


@pytest.fixture(scope="module")
def client() -> Iterator[RegistryClient]:
    with RegistryClient() as c:
        yield c


def page_check(images, client, name: str, page: str, cache: LayerCache) -> tuple[Verification, Check]:
    v = verify_image(images[name], platforms=[ARM], client=client, layers=cache,
                     options=VerifyOptions(page_size=page_size_bytes(page)))
    print(name, page, [(c.name, str(c.status), c.detail) for c in v.checks])
    return v, next(c for c in v.checks if c.name == "page-size")


def test_4k_linked_binary_warns_at_4k_and_fails_at_16k_and_64k(images, client, tmp_path) -> None:
    cache = LayerCache(tmp_path)  # one cache for all three: each verdict is the page size's own
    v, check = page_check(images, client, "narrow", "4k", cache)
    assert check.status is CheckStatus.WARN and v.ok
    assert check.detail.startswith(f"1 of 1 ELF files have PT_LOAD segments aligned to 4 KiB, e.g. {PROBE}: "
                                   "they fail on arm64 kernels with 16 KiB or 64 KiB pages")
    for page in ("16k", "64k"):
        v, check = page_check(images, client, "narrow", page, cache)
        assert check.status is CheckStatus.FAIL and not v.ok
        assert check.detail == (f"1 of 1 ELF files have PT_LOAD segments aligned to 4 KiB, e.g. {PROBE}: they "
                                f"cannot be mapped on {page[:-1]} KiB pages (verify.page_size: {page})")
    assert cache.loads == 1  # the layer was read once; the verdicts differ by page size


@pytest.mark.parametrize("page", ["4k", "16k", "64k"])
def test_64k_linked_binary_passes_at_every_page_size(images, client, tmp_path, page: str) -> None:
    v, check = page_check(images, client, "wide", page, LayerCache(tmp_path))
    assert v.ok
    assert (check.status, check.detail) == (CheckStatus.PASS, f"1 ELF file maps on {page[:-1]} KiB pages")


def test_cli_page_size_option(images, tmp_path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    failed = run_cli("verify", images["narrow"], "--platform", ARM, "--page-size", "16k", env=env)
    assert failed.code == 1, failed.output
    assert PROBE in failed.output and "aligned to 4 KiB" in failed.output and "FAIL" in failed.output
    warned = run_cli("verify", images["narrow"], "--platform", ARM, "--json", env=env)
    assert warned.code == 0, warned.output
    doc = json.loads(warned.stdout)
    pages = [c for r in doc for c in r["checks"] if c["name"] == "page-size"]
    assert [c["status"] for c in pages] == ["warn"] and PROBE in pages[0]["detail"]
    assert run_cli("verify", images["wide"], "--platform", ARM, "--page-size", "64k", env=env).code == 0
    bad = run_cli("verify", images["wide"], "--platform", ARM, "--page-size", "8k", env=env)
    assert bad.code == 2 and "page size '8k': expected 4k, 16k, 64k" in bad.output, bad.output


def _project(root: Path, verify: str) -> Path:
    root.mkdir()
    (root / "app").mkdir()
    (root / "app" / "Dockerfile").write_text(DOCKERFILE)
    (root / "services.yaml").write_text(f"platforms: [{ARM}]\n{verify}services:\n  app: {{context: app, image: x/app}}\n")
    return root / "services.yaml"


def test_services_yaml_page_size(images, tmp_path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    strict = _project(tmp_path / "strict", "verify:\n  page_size: 64k\n")
    failed = run_cli("verify", images["narrow"], "--config", str(strict), env=env)
    assert failed.code == 1 and "cannot be mapped on 64 KiB pages (verify.page_size: 64k)" in failed.output, failed.output
    assert run_cli("verify", images["wide"], "--config", str(strict), env=env).code == 0
    overridden = run_cli("verify", images["narrow"], "--config", str(strict), "--page-size", "4k", env=env)
    assert overridden.code == 0 and "warn" in overridden.output, overridden.output
    default = _project(tmp_path / "default", "")
    warned = run_cli("verify", images["narrow"], "--config", str(default), env=env)
    assert warned.code == 0 and "they fail on arm64 kernels with 16 KiB or 64 KiB pages" in warned.output
    wrong = _project(tmp_path / "wrong", "verify:\n  page_size: 16K\n")
    refused = run_cli("verify", images["wide"], "--config", str(wrong), env=env)
    assert refused.code == 2, refused.output
    assert "services.yaml:3" in refused.output and "page_size" in refused.output, refused.output


@pytest.mark.parametrize(("setting", "code", "status"), [("", 0, "warn"), ("verify: {page_size: 16k}\n", 1, "fail")])
def test_a_release_gates_on_it_and_records_it(tmp_path, setting: str, code: int, status: str) -> None:
    """buildctl build: the warning (default) or failure (16k) in the output and the release record;
    only a failure stops the gate."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "probe").write_bytes(cross_compile_arm64(tmp_path, max_page_size=4096))
    (tmp_path / "app" / "Dockerfile").write_text(DOCKERFILE)
    repository = "buildctl-test-pages/release-" + "".join(c for c in tmp_path.name.lower() if c.isalnum())[-12:]
    (tmp_path / "services.yaml").write_text(f"platforms: [{ARM}]\n{setting}services:\n"
                                            f"  app: {{context: app, image: {repository}}}\n")
    record = tmp_path / "release.json"
    result = run_cli("build", "--tag", "1", "--record", str(record), cwd=tmp_path,
                     env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert result.code == code, result.output
    service = json.loads(record.read_text())["services"][0]
    pages = [c for c in service["checks"] if c["name"] == "page-size"]
    assert [c["status"] for c in pages] == [status], service["checks"]
    assert f"aligned to 4 KiB, e.g. {PROBE}" in pages[0]["detail"]
    assert service["tagged"] is (status == "warn")
    assert "page-size" in result.output and PROBE in result.output
