"""Shared fixtures and the engine gate; helpers (the CLI driver, project paths) are in tests/helpers/.

Tests marked `engine` need the real stack (scripts/stack.sh up). Without it they are skipped on
a laptop, but under CI (CI=true) a missing engine fails the run: skipping is not passing.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers.cli import REGISTRY


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
