"""doctor: one line per check with a fix hint; non-zero exit when something is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli

pytestmark = pytest.mark.engine


def _kernel_flags(handler: str) -> str:
    """The flags the kernel shows for a binfmt handler (what doctor must report, not what it thinks)."""
    text = Path("/proc/sys/fs/binfmt_misc", handler).read_text()
    return next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("flags:"))


def test_doctor_is_all_green_on_the_stack() -> None:
    result = run_cli("doctor", "--json")
    assert result.code == 0, result.output
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert set(checks) == {"docker CLI", "docker daemon", "buildx", "multi-platform image store",
                           "binfmt linux/arm64", "registry", "git", "builder node default", "layer cache"}
    assert all(c["ok"] for c in checks.values())
    assert checks["multi-platform image store"]["detail"] == "io.containerd.snapshotter.v1"
    assert f", flags {_kernel_flags('qemu-aarch64')}, " in checks["binfmt linux/arm64"]["detail"]
    assert "F" in _kernel_flags("qemu-aarch64")  # the handler doctor called ok really has the F flag
    assert checks["buildx"]["detail"].startswith("0.")
    # each node of the configured builder: endpoint, status, BuildKit version, platforms
    assert checks["builder node default"]["detail"].startswith("default running, BuildKit ")
    assert "linux/arm64" in checks["builder node default"]["detail"]
    # where verified layers are cached, and the bound that evicts them
    assert "MiB" in checks["layer cache"]["detail"] and "buildctl" in checks["layer cache"]["detail"]


def test_doctor_fails_with_a_fix_when_the_registry_is_down() -> None:
    result = run_cli("doctor", "--registry", "127.0.0.1:5999")
    assert result.code == 1
    line = next(line for line in result.stdout.splitlines() if "registry:" in line)
    assert line.startswith("FAIL") and "127.0.0.1:5999 unreachable" in line
    assert "fix:" in result.stdout
    assert sum(line.startswith("ok") for line in result.stdout.splitlines()) == 8  # every check but the registry


def test_doctor_checks_every_configured_foreign_platform(project_dir) -> None:
    (project_dir / "services.yaml").write_text(
        "platforms: [linux/amd64, linux/arm64, linux/s390x]\nservices:\n  api: {context: api, image: team/api}\n")
    result = run_cli("doctor", "--json", cwd=project_dir)
    names = [c["name"] for c in json.loads(result.stdout)["checks"]]
    assert "binfmt linux/arm64" in names and "binfmt linux/s390x" in names
