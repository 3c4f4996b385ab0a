"""scripts/stack.sh: the real stack is up, idempotent, and holds the multi-arch base image."""

from __future__ import annotations

import subprocess

import pytest

from buildctl.inspect.verify import verify_image
from buildctl.registry.client import RegistryClient
from tests.helpers.cli import BASE_IMAGE, PROJECT

pytestmark = pytest.mark.engine


def stack(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(PROJECT / "scripts" / "stack.sh"), *args], capture_output=True, text=True,
                          timeout=600)


def test_status_is_all_ok() -> None:
    result = stack("status")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()}
    assert {"engine", "buildx", "binfmt", "registry", "base"} <= rows.keys()  # plus buildkit rows once built
    assert set(rows.values()) == {"ok"}, result.stdout


def test_up_again_changes_nothing() -> None:
    engine_before = subprocess.run(["docker", "info", "--format", "{{.ID}}"], capture_output=True, text=True).stdout
    result = stack("up")
    assert result.returncode == 0, result.stderr
    assert "starting" not in result.stderr and "installing" not in result.stderr and "building" not in result.stderr
    assert subprocess.run(["docker", "info", "--format", "{{.ID}}"], capture_output=True, text=True).stdout == engine_before


def test_base_image_has_both_platforms_and_their_bytes() -> None:
    with RegistryClient() as client:
        verification = verify_image(BASE_IMAGE, platforms=["linux/amd64", "linux/arm64"], client=client)
    assert {p.platform for p in verification.platforms} == {"linux/amd64", "linux/arm64"}
    platform_check = next(c for c in verification.checks if c.name == "platforms")
    assert platform_check.status == "pass"
    assert all(c.status != "fail" for c in verification.checks)


def test_usage() -> None:
    result = stack("sideways")
    assert result.returncode == 2 and "usage:" in result.stderr
