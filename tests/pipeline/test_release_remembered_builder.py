"""pipeline/release.py on a builder remembered from its last passed check (pipeline/builder_check.py):
a remembered state can be stale. When its check fails (here: a platform it no longer lists), the
builds begun under it were stopped; the builder as it is now is checked, the services build again
on it, and the release passes with the mark written anew."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buildctl.pipeline.builder_check import FOLDER
from tests.helpers.cli import BASE_IMAGE, run_cli

pytestmark = pytest.mark.engine


def _project(root: Path) -> Path:
    (root / "app").mkdir(parents=True)
    (root / "app" / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nCOPY app.py /app/app.py\n")
    (root / "app" / "app.py").write_text("print('remembered')\n")
    (root / "services.yaml").write_text(
        "builder: {name: default}\nservices:\n  app:\n    context: app\n    image: buildctl-e2e/remembered\n")
    return root


def _marks(cache: Path) -> list[Path]:
    return sorted((cache / "buildctl" / FOLDER).iterdir())


def _build(project: Path, env: dict[str, str], tag: str):
    return run_cli("build", "--tag", tag, "-f", "services.yaml", "--retag", "--rebuild",
                   "--record", "release.json", cwd=project, env=env)


def test_a_stale_remembered_builder_is_checked_again_and_the_services_build_on_it(tmp_path: Path) -> None:
    project, cache = _project(tmp_path / "project"), tmp_path / "cache"
    env = {"XDG_CACHE_HOME": str(cache)}
    first = _build(project, env, "remembered-1")
    assert first.code == 0, first.output
    [mark] = _marks(cache)
    state = json.loads(mark.read_text())
    assert any("linux/arm64" in node["platforms"] for node in state["nodes"]), state
    for node in state["nodes"]:  # as if arm64's emulation was gone when it was last checked
        node["platforms"] = [p for p in node["platforms"] if p != "linux/arm64"]
    mark.write_text(json.dumps(state))

    again = _build(project, env, "remembered-2")
    assert again.code == 0, again.output
    assert "stopped" not in again.output and "FAIL" not in again.output, again.output
    record = json.loads((project / "release.json").read_text())
    assert record["gate"] == "passed", record
    [svc] = record["services"]
    assert svc["tagged"] and set(svc["platforms"]) == {"linux/amd64", "linux/arm64"}, svc
    [mark] = _marks(cache)  # written again by the live check, arm64 in it
    assert any("linux/arm64" in node["platforms"] for node in json.loads(mark.read_text())["nodes"])
