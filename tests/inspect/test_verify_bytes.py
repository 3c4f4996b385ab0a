"""Every ELF file, PT_INTERP and the shebang as the kernel reads it, on images buildx really built
(from the local multi-arch base) and pushed: each failure beside its good twin."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from buildctl.inspect.layers import LayerCache
from buildctl.inspect.results import Check, CheckStatus, Verification
from buildctl.inspect.verify import VerifyOptions, verify_image
from buildctl.registry.client import RegistryClient
from tests.helpers.buildx import build_push
from tests.helpers.cli import BASE_IMAGE, REGISTRY, run_cli

pytestmark = pytest.mark.engine

BOTH = ("linux/amd64", "linux/arm64")
PREFIX = f"{REGISTRY}/buildctl-test-bytes"
SO = "/usr/local/lib/python3.11/site-packages/fast/_speedups.so"
# one shared library of the stage's platform, whatever its name there
PICK_SO = "mkdir /out && cp \"$(ls /usr/lib/python3.11/lib-dynload/*.so | head -1)\" /out/_speedups.so"
# a dynamically linked binary and exactly what it needs: its libraries and its loader (ldd's list)
WITH_LOADER = ("mkdir /out && cp /usr/bin/true /out/true && "
               "for f in $(ldd /usr/bin/true | grep -o '/[^ ]*'); do cp --parents -L \"$f\" /out; done")

DOCKERFILES = {
    # (1) a native library built on the build machine, copied into every target image
    "build-platform-so": f"FROM --platform=$BUILDPLATFORM {BASE_IMAGE} AS native\nRUN {PICK_SO}\n"
                         f"FROM {BASE_IMAGE}\nCOPY --from=native /out/_speedups.so {SO}\nENTRYPOINT [\"python3\"]\n",
    "target-platform-so": f"FROM {BASE_IMAGE} AS native\nRUN {PICK_SO}\n"
                          f"FROM {BASE_IMAGE}\nCOPY --from=native /out/_speedups.so {SO}\nENTRYPOINT [\"python3\"]\n",
    # (2) a glibc dynamically linked binary on a base without its loader, and with it
    "no-loader": f"FROM {BASE_IMAGE} AS src\nFROM scratch\nCOPY --from=src /usr/bin/true /true\nENTRYPOINT [\"/true\"]\n",
    "with-loader": f"FROM {BASE_IMAGE} AS src\nRUN {WITH_LOADER}\nFROM scratch\nCOPY --from=src /out/ /\n"
                   "ENTRYPOINT [\"/true\"]\n",
    # (3) a script with CRLF line endings, and its LF twin
    "crlf-script": f"FROM {BASE_IMAGE}\nCOPY --chmod=755 crlf.sh /app.sh\nENTRYPOINT [\"/app.sh\"]\n",
    "lf-script": f"FROM {BASE_IMAGE}\nCOPY --chmod=755 lf.sh /app.sh\nENTRYPOINT [\"/app.sh\"]\n",
}


def _build(context: Path, name: str) -> str:
    ctx = context / name
    ctx.mkdir()
    (ctx / "crlf.sh").write_bytes(b"#!/bin/sh\r\necho hello\r\n")
    (ctx / "lf.sh").write_bytes(b"#!/bin/sh\necho hello\n")
    (ctx / "Dockerfile").write_text(DOCKERFILES[name])
    ref = f"{PREFIX}/{name}:1"
    proc = build_push(["--platform", ",".join(BOTH), "--tag", ref, "--push", "--provenance=false", str(ctx)],
                      timeout=900)
    assert proc.returncode == 0, f"building {name} failed:\n{proc.stderr[-3000:]}"
    return ref


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    context = tmp_path_factory.mktemp("bytes")
    with ThreadPoolExecutor(max_workers=3) as pool:
        refs = dict(zip(DOCKERFILES, pool.map(lambda n: _build(context, n), DOCKERFILES), strict=True))
    yield refs
    subprocess.run(["docker", "image", "rm", "--force", *refs.values()], capture_output=True)


@pytest.fixture(scope="module")
def client() -> Iterator[RegistryClient]:
    with RegistryClient() as c:
        yield c


def verify(built, client, name: str, tmp_path: Path, **options) -> dict[tuple[str, str], Check]:
    v: Verification = verify_image(built[name], platforms=BOTH, client=client, layers=LayerCache(tmp_path),
                                   options=VerifyOptions(**options))
    for check in v.checks:
        print(f"{name:20} {check.platform or '*':12} {check.name:10} {check.status:5} {check.detail}")
    return {(c.platform, c.name): c for c in v.checks}


def test_build_platform_library_in_the_arm64_image_fails(built, client, tmp_path) -> None:
    by = verify(built, client, "build-platform-so", tmp_path)
    arm = by[("linux/arm64", "elf-files")]
    assert arm.status is CheckStatus.FAIL
    assert arm.detail.startswith("1 of ")
    assert arm.detail.endswith(f" ELF files are x86-64 (EM_X86_64), e.g. {SO} (expected aarch64)")
    assert by[("linux/arm64", "elf")].status is CheckStatus.PASS  # the entrypoint alone looks fine
    assert by[("linux/amd64", "elf-files")].status is CheckStatus.PASS


def test_target_platform_library_passes(built, client, tmp_path) -> None:
    by = verify(built, client, "target-platform-so", tmp_path)
    assert all(c.status is not CheckStatus.FAIL for c in by.values())
    assert by[("linux/arm64", "elf-files")].detail.endswith(" ELF files, all aarch64")


def test_allow_foreign_glob_exempts_and_is_shown(built, client, tmp_path) -> None:
    by = verify(built, client, "build-platform-so", tmp_path, allow_foreign=("/usr/local/lib/*/fast/*",))
    arm = by[("linux/arm64", "elf-files")]
    assert arm.status is CheckStatus.PASS
    assert arm.detail.endswith(f"; 1 foreign allowed by verify.allow_foreign (/usr/local/lib/*/fast/*: {SO})")


def test_dynamic_binary_without_its_loader_fails(built, client, tmp_path) -> None:
    by = verify(built, client, "no-loader", tmp_path)
    for platform, loader in (("linux/amd64", "/lib64/ld-linux-x86-64.so.2"), ("linux/arm64", "/lib/ld-linux-aarch64.so.1")):
        interp = by[(platform, "interp")]
        assert interp.status is CheckStatus.FAIL
        assert interp.detail.startswith(f"1 dynamically linked ELF file needs {loader}, which does not resolve (")
        assert interp.detail.endswith("e.g. /true")
        assert by[(platform, "elf")].status is CheckStatus.PASS  # right machine: only the loader is missing


def test_dynamic_binary_with_its_loader_passes(built, client, tmp_path) -> None:
    by = verify(built, client, "with-loader", tmp_path)
    assert all(c.status is not CheckStatus.FAIL for c in by.values())
    assert by[("linux/arm64", "interp")].detail == "2 dynamically linked ELF files: 2 via /lib/ld-linux-aarch64.so.1 (aarch64)"


def test_crlf_script_fails_naming_the_line_ending(built, client, tmp_path) -> None:
    by = verify(built, client, "crlf-script", tmp_path)
    for platform in BOTH:
        elf = by[(platform, "elf")]
        assert elf.status is CheckStatus.FAIL
        assert elf.detail.startswith('cannot start "/app.sh": /app.sh has a CRLF line ending: '
                                     'the kernel runs "#!/bin/sh\\r"; ')


def test_lf_script_passes(built, client, tmp_path) -> None:
    by = verify(built, client, "lf-script", tmp_path)
    assert by[("linux/arm64", "elf")] == Check("linux/arm64", "elf", "pass",
                                               "/app.sh -> /usr/bin/dash: aarch64 (EM_AARCH64)")


def test_cli_reports_the_offender_and_exits_1(built, tmp_path) -> None:
    bad = run_cli("verify", built["build-platform-so"], "--platform", "linux/amd64", "--platform", "linux/arm64")
    assert bad.code == 1, bad.output
    assert SO in bad.output and "x86-64" in bad.output
    good = run_cli("verify", built["target-platform-so"], "--platform", "linux/amd64", "--platform", "linux/arm64")
    assert good.code == 0, good.output
    doc = run_cli("verify", built["no-loader"], "--platform", "linux/arm64", "--json")
    assert doc.code == 1
    assert "interp" in doc.output and json.loads(doc.output)
