"""Crafted arm64 ELF files (tests/helpers/elf.py crafted_elf) in images buildx really built FROM scratch
and pushed, verified with ``buildctl verify``: a binary the kernel refuses (PT_INTERP not
NUL-terminated) beside its good twin, and a relative PT_INTERP resolved from the image's WorkingDir.
No RUN: nothing is emulated. Tagged by a hash of what they are built from, so a warm registry
reuses them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.helpers.buildx import pushed_once
from tests.helpers.cli import REGISTRY, run_cli
from tests.helpers.elf import crafted_elf

pytestmark = pytest.mark.engine

ARM = "linux/arm64"
PROBE = "/usr/local/bin/probe"
LOADER = "/lib/ld-linux-aarch64.so.1"
STATIC = crafted_elf()
IMAGES = {
    "interp-no-nul": ({"probe": crafted_elf(interp=LOADER.encode()), "ld.so": STATIC}, "/", LOADER),
    "interp-good": ({"probe": crafted_elf(interp=LOADER.encode() + b"\0"), "ld.so": STATIC}, "/", LOADER),
    "interp-relative": ({"probe": crafted_elf(interp=b"lib/ld.so\0"), "ld.so": STATIC}, "/srv", "/srv/lib/ld.so"),
}


def _image(context: Path, name: str) -> str:
    files, workdir, loader = IMAGES[name]
    ctx = context / name
    ctx.mkdir()
    for file, data in files.items():
        (ctx / file).write_bytes(data)
    dockerfile = (f"FROM scratch\nCOPY --chmod=755 ld.so {loader}\nCOPY --chmod=755 probe {PROBE}\n"
                  f"WORKDIR {workdir}\nENTRYPOINT [\"{PROBE}\"]\n")
    (ctx / "Dockerfile").write_text(dockerfile)
    content = hashlib.sha256(b"".join(files.values()) + dockerfile.encode()).hexdigest()[:16]
    return pushed_once(f"{REGISTRY}/buildctl-test-crafted/{name}:{content}", ctx, "--platform", ARM,
                       "--provenance=false")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    context = tmp_path_factory.mktemp("crafted")
    return {name: _image(context, name) for name in IMAGES}


def verify(ref: str, tmp_path: Path):
    result = run_cli("verify", ref, "--platform", ARM, env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    print(result.output)
    return result


def test_a_binary_the_kernel_refuses_fails_naming_it(images, tmp_path) -> None:
    bad = verify(images["interp-no-nul"], tmp_path)
    assert bad.code == 1, bad.output
    assert f"{PROBE} cannot be executed: its PT_INTERP is not NUL-terminated" in bad.output
    assert "Traceback" not in bad.output
    good = verify(images["interp-good"], tmp_path)
    assert good.code == 0, good.output


def test_a_relative_pt_interp_resolves_from_the_working_directory(images, tmp_path) -> None:
    result = verify(images["interp-relative"], tmp_path)
    assert result.code == 0, result.output  # a warning, not a failure
    assert "lib/ld.so -> /srv/lib/ld.so" in result.output
    assert "relative PT_INTERP lib/ld.so" in result.output and "WorkingDir /srv" in result.output
