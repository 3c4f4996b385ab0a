"""engine/buildx_program: a buildx command runs the plugin itself when the `docker` on PATH is the
Docker CLI (found where that CLI looks for plugins, in its order), and `docker` otherwise."""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from pathlib import Path

import pytest

from buildctl.engine import buildx_program
from buildctl.engine.buildx_program import PLUGIN, program_argv
from tests.helpers.cli import BASE_IMAGE, run_cli

REAL_DOCKER = shutil.which("docker")


def _executable(path: Path, text: str = "#!/bin/sh\nexit 0\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


@pytest.fixture
def cli_on_path(tmp_path: Path) -> dict[str, str]:
    """A PATH whose `docker` is the real (ELF) Docker CLI, and a Docker config folder of its own."""
    if REAL_DOCKER is None:
        pytest.skip("no docker client")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").symlink_to(REAL_DOCKER)
    return {"PATH": str(bin_dir), "DOCKER_CONFIG": str(tmp_path / "docker-config")}


def test_the_plugin_in_the_docker_config_folder_runs_first(tmp_path: Path, cli_on_path: dict[str, str]) -> None:
    extra = _executable(tmp_path / "extra" / PLUGIN)
    own = _executable(Path(cli_on_path["DOCKER_CONFIG"]) / "cli-plugins" / PLUGIN)
    (Path(cli_on_path["DOCKER_CONFIG"]) / "config.json").write_text(json.dumps({"cliPluginsExtraDirs": [str(extra.parent)]}))
    argv = ("docker", "buildx", "build", "--builder", "b", ".")
    assert program_argv(argv, environ=cli_on_path) == [str(own), "build", "--builder", "b", "."]
    own.unlink()  # then config.json's extra folders, before the system's
    assert program_argv(argv, environ=cli_on_path) == [str(extra), "build", "--builder", "b", "."]


def test_other_commands_and_a_missing_plugin_go_through_docker(monkeypatch, cli_on_path: dict[str, str]) -> None:
    assert program_argv(("docker", "info", "--format", "x"), environ=cli_on_path) == ["docker", "info", "--format", "x"]
    monkeypatch.setattr(buildx_program, "SYSTEM_PLUGIN_DIRS", ())
    assert program_argv(("docker", "buildx", "inspect", "b"), environ=cli_on_path) == ["docker", "buildx", "inspect", "b"]


def test_a_docker_that_is_a_script_sees_every_command(tmp_path: Path) -> None:
    """A wrapper (podman-docker's, one that logs or rewrites arguments) is never bypassed."""
    bin_dir = tmp_path / "bin"
    _executable(bin_dir / "docker", '#!/bin/sh\nexec podman "$@"\n')
    config = tmp_path / "docker-config"
    _executable(config / "cli-plugins" / PLUGIN)
    env = {"PATH": str(bin_dir), "DOCKER_CONFIG": str(config)}
    assert program_argv(("docker", "buildx", "build", "."), environ=env) == ["docker", "buildx", "build", "."]
    assert program_argv(("docker", "buildx", "build", "."), environ={"PATH": str(tmp_path / "none")}) == [
        "docker", "buildx", "build", "."]


def test_an_unreadable_config_json_still_finds_the_plugin(cli_on_path: dict[str, str]) -> None:
    own = _executable(Path(cli_on_path["DOCKER_CONFIG"]) / "cli-plugins" / PLUGIN)
    (Path(cli_on_path["DOCKER_CONFIG"]) / "config.json").write_text("{not json")
    assert program_argv(("docker", "buildx", "version"), environ=cli_on_path) == [str(own), "version"]


SHIM = """#!{python}
import json, os, sys
with open(os.environ["ARGV_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
os.execv({plugin!r}, [{plugin!r}, *sys.argv[1:]])
"""


def _logged_project(tmp_path: Path, image: str, *, builder: str = "") -> tuple[Path, dict[str, str]]:
    """A one-service project and the environment that runs buildx through a logging plugin in
    DOCKER_CONFIG/cli-plugins that execs the real one (each argv a line of ARGV_LOG), with a cache
    of its own: the builder not yet checked there is inspected (pipeline/builder_check.py)."""
    real = buildx_program.buildx_plugin()
    if real is None:
        pytest.skip("no buildx plugin")
    project = tmp_path / "project"
    (project / "app").mkdir(parents=True)
    (project / "app" / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nCOPY app.py /app/app.py\n")
    (project / "app" / "app.py").write_text(f"print('{image}')\n")
    (project / "services.yaml").write_text(f"{builder}services:\n  app:\n    context: app\n    image: buildctl-e2e/{image}\n")
    config = tmp_path / "docker-config"
    _executable(config / "cli-plugins" / PLUGIN, SHIM.format(python=sys.executable, plugin=real))
    return project, {"DOCKER_CONFIG": str(config), "ARGV_LOG": str(tmp_path / "argv.jsonl"),
                     "XDG_CACHE_HOME": str(tmp_path / "cache")}


@pytest.mark.engine
def test_a_release_runs_the_plugin_directly_with_the_planned_arguments(tmp_path: Path) -> None:
    """Through a logging plugin in DOCKER_CONFIG/cli-plugins that execs the real one: the build and
    the builder's inspect ran it with no `docker` in between, with plan's arguments after
    `docker buildx`, and the release passed."""
    project, env = _logged_project(tmp_path, "direct", builder="builder: {name: default}\n")
    planned = run_cli("plan", "--json", "--tag", "direct-1", "-f", "services.yaml", cwd=project, env=env)
    assert planned.code == 0, planned.stderr
    printed = json.loads(planned.stdout)["services"][0]["buildx"]
    built = run_cli("build", "--tag", "direct-1", "-f", "services.yaml", "--retag", "--rebuild",
                    "--record", "release.json", cwd=project, env=env)
    assert built.code == 0, built.output
    calls = [json.loads(line) for line in (tmp_path / "argv.jsonl").read_text().splitlines()]
    builds = [argv for argv in calls if argv[:1] == ["build"]]
    assert builds and ["inspect", "default"] in calls, calls
    record = json.loads((project / "release.json").read_text())
    planned_id = printed[printed.index("--tag") + 1].rsplit("-", 1)[1]
    expected = [word.replace(planned_id, record["run_id"]) for word in printed[2:]]
    assert printed[:2] == ["docker", "buildx"] and len(builds) == 1 + built.output.count("failed, retrying in")
    # plan's words in plan's order (the release adds its input-digest annotations and --pull, pipeline/reuse.py)
    words = iter(builds[0])
    assert all(word in words for word in expected), (expected, builds[0])
    assert builds[0][:5] == expected[:5] == ["build", "--builder", "default", "--progress", "plain"]
    assert builds[0][-1] == expected[-1] == str(project / "app")
    assert record["services"][0]["index_digest"].startswith("sha256:")
    assert os.environ.get("DOCKER_CONFIG") != env["DOCKER_CONFIG"]  # the test's own environment is untouched


@pytest.mark.engine
def test_a_fresh_agent_inspects_its_builder_once_and_one_that_remembers_the_check_never(tmp_path: Path) -> None:
    """The first release on an empty cache inspects the builder once: the `buildx inspect` the CLI
    started before its imports is the check's read (engine/early_info.py), not one more beside it.
    The next release, the check remembered, inspects it not at all."""
    project, env = _logged_project(tmp_path, "fresh-agent")
    log = Path(env["ARGV_LOG"])
    for inspects in (1, 0):
        log.write_text("")
        built = run_cli("build", "--tag", f"fresh-{uuid.uuid4().hex[:8]}", "--rebuild", "-q", cwd=project, env=env)
        assert built.code == 0, built.output
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        assert calls.count(["inspect", "default"]) == inspects, calls
        assert sum(1 for argv in calls if argv[:1] == ["build"]) >= 1


@pytest.mark.engine
def test_a_release_that_builds_nothing_never_inspects_the_builder_remembered_or_not(tmp_path: Path) -> None:
    """Every service reused: nothing builds, so nothing reads the builder. Under another DOCKER_CONTEXT
    value the builder is not the one the first release's check remembered (pipeline/builder_check.py),
    and its inspect used to start anyway, the run's exit waiting for an answer it never read."""
    project, env = _logged_project(tmp_path, "reused-agent")
    log = Path(env["ARGV_LOG"])
    built = run_cli("build", "--tag", f"first-{uuid.uuid4().hex[:8]}", "--rebuild", "-q", cwd=project, env=env)
    assert built.code == 0, built.output
    for extra in ({}, {"DOCKER_CONTEXT": "default"}):  # remembered, then not
        log.write_text("")
        again = run_cli("build", "--tag", f"again-{uuid.uuid4().hex[:8]}", "--record", "again.json", "-q",
                        cwd=project, env={**env, **extra})
        assert again.code == 0, again.output
        assert json.loads((project / "again.json").read_text())["services"][0]["outcome"].startswith("reused")
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        assert not [argv for argv in calls if argv[:1] in (["inspect"], ["build"])], calls
