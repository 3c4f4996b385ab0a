"""Shared fixtures: the real CLI driver, the engine gate, project paths.

Tests marked `engine` need the real stack (scripts/stack.sh up). Without it they are skipped on
a laptop, but under CI (CI=true) a missing engine fails the run: skipping is not passing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
REGISTRY = "127.0.0.1:5000"
BASE_IMAGE = f"{REGISTRY}/buildctl/base:bookworm-1"


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 900,
            input: str | None = None) -> CliResult:
    """Drive the real CLI (`python -m buildctl`) in a subprocess, as a user would."""
    full_env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "buildctl", *args], cwd=cwd or PROJECT, env=full_env,
                          capture_output=True, text=True, timeout=timeout, input=input)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def _engine_available() -> str | None:
    try:
        proc = subprocess.run(["docker", "info", "--format", "{{json .DriverStatus}}"], capture_output=True,
                              text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"docker not usable: {exc}"
    if proc.returncode != 0:
        return "Docker daemon not reachable (run scripts/stack.sh up)"
    try:
        subprocess.run(["curl", "-fsS", f"http://{REGISTRY}/v2/"], check=True, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return f"local registry {REGISTRY} not answering (run scripts/stack.sh up)"
    return None


def pytest_collection_modifyitems(config, items):
    if not any(item.get_closest_marker("engine") for item in items):
        return
    problem = _engine_available()
    if problem is None:
        return
    if os.environ.get("CI"):
        raise pytest.UsageError(f"CI must run the engine tests, but: {problem}")
    skip = pytest.mark.skip(reason=problem)
    for item in items:
        if item.get_closest_marker("engine"):
            item.add_marker(skip)


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """A minimal project: two services with Dockerfiles, and a services.yaml writer."""
    for name in ("api", "web"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "Dockerfile").write_text("FROM scratch\n")
    return tmp_path
