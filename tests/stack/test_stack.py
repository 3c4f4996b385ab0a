"""scripts/stack.sh: the real stack is up, idempotent, and holds the multi-arch base image."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from buildctl.inspect.verify import verify_image
from buildctl.registry.client import RegistryClient
from tests.helpers.cli import BASE_IMAGE, PROJECT

pytestmark = pytest.mark.engine


def stack(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(PROJECT / "scripts" / "stack.sh"), *args], capture_output=True, text=True,
                          timeout=600, env=None if env is None else {**os.environ, **env})


def test_status_is_all_ok() -> None:
    result = stack("status")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()}
    assert {"engine", "buildx", "binfmt", "registry", "base"} <= rows.keys()  # plus buildkit rows once built
    broken = {name: state for name, state in rows.items()
              if state != "ok" and not (state == "off" and name.startswith("node-"))}  # a node not started yet
    assert not broken, result.stdout


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


def test_up_forgets_pid_files_of_processes_that_are_gone_and_never_kills_a_stranger(tmp_path: Path) -> None:
    # A killed stack or a restarted machine leaves pid files behind: one names a pid that is gone,
    # one a pid now used by an unrelated process (here a sleep, whose start time does not match).
    pids = tmp_path / "pids"
    pids.mkdir()
    gone = subprocess.Popen(["true"])
    gone.wait()
    stranger = subprocess.Popen(["sleep", "300"])
    try:
        (pids / "node-amd64.pid").write_text(f"{gone.pid} 12345\n")
        (pids / "node-arm64.pid").write_text(f"{stranger.pid} 1\n")
        (pids / "registry.pid").write_text(f"{stranger.pid}\n")  # the old format: a pid alone
        env = {"BUILDCTL_STACK_DIR": str(tmp_path)}
        status = stack("status", env=env)
        rows = {line.split()[0]: line.split()[1] for line in status.stdout.splitlines()}
        assert rows["node-amd64"] == rows["node-arm64"] == "off", status.stdout
        assert status.returncode == 0, status.stdout + status.stderr
        up = stack("up", env=env)
        assert up.returncode == 0, up.stdout + up.stderr
        assert sorted(pids.iterdir()) == [], up.stderr
        for name in ("node-amd64", "node-arm64", "registry"):
            assert f"forgetting stale pid file {name}.pid" in up.stderr
        assert "stopping" not in up.stderr and "starting" not in up.stderr
        time.sleep(0.2)
        assert stranger.poll() is None, "stack.sh signalled a process it did not start"
    finally:
        stranger.kill()
        stranger.wait()
