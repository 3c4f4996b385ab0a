"""pipeline/release.py on a builder remembered from its last passed check (pipeline/builder_check.py):
a remembered state can be stale. When its check fails (here: a platform it no longer lists), the
builds begun under it were stopped; the builder as it is now is checked, the services build again
on it, and the release passes with the mark written anew.

And on a builder never checked here that buildx lists (a fresh agent's): built on ahead, beside a
live check; a check that fails stops those builds and tags nothing, and the next release waits."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from buildctl.pipeline.builder_check import FAILED, FOLDER
from buildctl.registry.client import RegistryClient
from tests.helpers.buildx import new_container_builder
from tests.helpers.cli import BASE_IMAGE, REGISTRY, run_cli

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


def test_a_listed_builder_never_checked_here_is_built_on_ahead_and_once_its_check_failed_it_is_not(
        tmp_path: Path) -> None:
    """The builder services.yaml names exists in buildx's store and runs (made by the agent's set-up)
    but with another network: the first release starts its build at once (its log exists), the check
    finds the difference, stops the build and fails the release; nothing is tagged. Its mark now
    says the check failed: the second release waits for the check and starts no build."""
    with new_container_builder("buildctl-ahead") as cfg:
        subprocess.run(["docker", "buildx", "create", "--name", cfg.name, "--driver", "docker-container",
                        "--driver-opt", f"network=bridge,image={cfg.driver_opts['image']}", "--bootstrap"],
                       capture_output=True, check=True, timeout=300)
        project, cache = _project(tmp_path / "project"), tmp_path / "cache"
        (project / "services.yaml").write_text(
            f"builder: {{name: {cfg.name}, driver: docker-container, driver_opts: {{network: host, "
            f"image: '{cfg.driver_opts['image']}'}}}}\n"
            "services:\n  app:\n    context: app\n    image: buildctl-e2e/ahead\n")
        env = {"XDG_CACHE_HOME": str(cache)}
        runs = project / ".buildctl" / "runs"
        first = _build(project, env, "ahead-1")
        assert first.code != 0 and "differs from services.yaml" in first.output, first.output
        assert len(list(runs.glob("*/app.build.log"))) == 1  # begun before the check answered
        [mark] = _marks(cache)
        assert mark.read_bytes() == FAILED
        second = _build(project, env, "ahead-2")
        assert second.code != 0 and "differs from services.yaml" in second.output, second.output
        assert len(list(runs.glob("*/app.build.log"))) == 1  # the second waited: no build of its own
        with RegistryClient() as client:
            for tag in ("ahead-1", "ahead-2"):
                assert client.head_manifest(f"{REGISTRY}/buildctl-e2e/ahead:{tag}") is None


def test_a_listed_builder_whose_container_is_stopped_waits_for_its_check_and_the_release_passes(
        tmp_path: Path) -> None:
    """A node to start is not built on ahead: the build would start it too, racing the check's own
    start (the container half up: "error reading server preface"; 2 of 20 such releases failed). The
    check starts it and the release passes (that it is not built on ahead is running_in_store's test,
    tests/engine/test_builders.py: a race is not something one run can show)."""
    with new_container_builder("buildctl-stopped") as cfg:
        subprocess.run(["docker", "buildx", "create", "--name", cfg.name, "--driver", "docker-container",
                        "--driver-opt", f"network=host,image={cfg.driver_opts['image']}", "--bootstrap"],
                       capture_output=True, check=True, timeout=300)
        subprocess.run(["docker", "stop", f"buildx_buildkit_{cfg.name}0"], capture_output=True, check=True,
                       timeout=120)
        project, cache = _project(tmp_path / "project"), tmp_path / "cache"
        (project / "services.yaml").write_text(
            f"builder: {{name: {cfg.name}, driver: docker-container, driver_opts: {{network: host, "
            f"image: '{cfg.driver_opts['image']}'}}}}\n"
            "services:\n  app:\n    context: app\n    image: buildctl-e2e/halted\n")
        first = _build(project, {"XDG_CACHE_HOME": str(cache)}, "halted-1")
        assert first.code == 0, first.output
        [mark] = _marks(cache)
        assert json.loads(mark.read_text())["name"] == cfg.name
