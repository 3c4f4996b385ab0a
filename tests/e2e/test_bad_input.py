"""Bad input beyond services.yaml: CLI arguments, manifests, environment, the machine.

Each case: one clear line on stderr, the documented exit code, and no side effect — nothing
pushed or tagged, nothing changed in Git. (services.yaml cases: tests/test_config.py.)
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.helpers.cli import PROJECT, run_cli
from tests.helpers.gitops import git
from tests.helpers.project import GOOD, index_digest, make_project, seed_gitops

ERROR = "buildctl: error: "


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith(ERROR)]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0][len(ERROR):]


@pytest.mark.parametrize(("args", "expected"), [
    (["run", "--jobs", "0"], "Invalid value for '--jobs' / '-j'"),
    (["build", "--bogus"], "No such option: --bogus"),
    (["deploy"], "No such command 'deploy'"),
    (["verify"], "Missing argument 'images'"),
])
def test_cli_argument_errors_exit_2(args: list[str], expected: str) -> None:
    result = run_cli(*args)
    assert result.code == 2, result.output
    assert expected in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["plan", "nosuch"], "SERVICE: unknown service 'nosuch' (services: result, vote, worker)"),
    (["plan", "-c", "vote"], "vote: is a folder, not a file"),
    (["build", "--platform", "linux/arm64"], "--platform goes with --local; for releases set platforms: in services.yaml"),
    (["verify", "Bad/Image:1", "--platform", "linux/amd64"], "invalid image reference 'Bad/Image:1'"),
    (["verify", "127.0.0.1:5000/x:1", "--platform", "arm64"], "invalid platform 'arm64'"),
    (["update-manifests"], "--record PATH is required: the release record of a verified build (buildctl build --record PATH)"),
    (["update-manifests", "--record", "missing.json"], "missing.json"),
    (["binfmt", "--method", "magic"], "--method must be host or image, got 'magic'"),
])
def test_usage_errors_are_one_line_exit_2(args: list[str], message: str) -> None:
    result = run_cli(*args)
    assert result.code == 2, result.output
    assert one_error_line(result.stderr).startswith(message) or message in one_error_line(result.stderr)


def test_half_set_registry_credentials_exit_2() -> None:
    result = run_cli("build", "-q", env={"BUILDCTL_REGISTRY_USERNAME": "sp-id", "BUILDCTL_REGISTRY_PASSWORD": ""})
    assert result.code == 2
    assert one_error_line(result.stderr) == "BUILDCTL_REGISTRY_PASSWORD is not set (set both registry credential variables, or neither)"


def test_unverified_record_is_refused(tmp_path: Path) -> None:
    record = {"tag": "1", "registry": "127.0.0.1:5000", "services": [
        {"name": "vote", "repository": "127.0.0.1:5000/voting-app/vote", "tag": "1",
         "index_digest": "sha256:" + "a" * 64, "verified": False, "tagged": False}]}
    (tmp_path / "r.json").write_text(json.dumps(record))
    result = run_cli("update-manifests", "--record", str(tmp_path / "r.json"))
    assert result.code == 2
    assert "vote" in one_error_line(result.stderr) and "verified" in one_error_line(result.stderr)


@pytest.mark.engine
def test_no_daemon_is_one_clear_line() -> None:
    result = run_cli("build", "-q", env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert result.code == 1
    assert one_error_line(result.stderr).startswith("the Docker daemon is not reachable")
    assert "scripts/stack.sh up" in result.stderr


@pytest.mark.engine
def test_builder_missing_a_platform_builds_nothing(project_dir: Path) -> None:
    (project_dir / "services.yaml").write_text(
        "platforms: [linux/amd64, linux/arm/v7]\nservices:\n  api: {context: api, image: buildctl-e2e/v7}\n")
    tag = f"bad-{uuid.uuid4().hex[:8]}"
    result = run_cli("build", "--tag", tag, "-q", cwd=project_dir)
    assert result.code == 1
    assert "does not support linux/arm/v7" in one_error_line(result.stderr)
    assert not (project_dir / ".buildctl" / "runs").exists() or not any((project_dir / ".buildctl" / "runs").rglob("*.log"))
    assert index_digest("buildctl-e2e/v7", tag) is None


def _gitops_project(tmp_path: Path, manifest: str, *, branch: str = "main") -> tuple[Path, Path]:
    (tmp_path / "p").mkdir()
    project = make_project(tmp_path / "p", {"api": GOOD})
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    (deploy / "api.yaml").write_text(manifest)
    remote = seed_gitops(tmp_path, deploy)
    text = (project / "services.yaml").read_text().replace(
        "services:\n", f"gitops: {{repo: {remote}, branch: {branch}}}\nservices:\n", 1)
    (project / "services.yaml").write_text(text + "    manifests: [deploy/api.yaml]\n")
    return project, remote


@pytest.mark.engine
@pytest.mark.parametrize(("manifest", "branch", "message"), [
    ("just: [a, list\n", "main", "deploy/api.yaml:2: not valid YAML"),
    ("apiVersion: v1\nkind: ConfigMap\ndata: {image: x}\n", "main", "deploy/api.yaml"),
    ("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n    - {name: a, image: 127.0.0.1:5000/buildctl-e2e/api:1}\n",
     "release", "gitops.branch: branch 'release' does not exist in"),
], ids=["malformed-manifest", "no-matching-image", "missing-branch"])
def test_bad_gitops_input_fails_before_anything_is_built(tmp_path: Path, manifest: str, branch: str, message: str) -> None:
    project, remote = _gitops_project(tmp_path, manifest, branch=branch)
    before = git("--git-dir", str(remote), "rev-parse", "main")
    tag = f"bad-{uuid.uuid4().hex[:8]}"
    result = run_cli("run", "--tag", tag, "-q", cwd=project)
    assert result.code == 2, result.output
    assert message in one_error_line(result.stderr)
    assert index_digest("buildctl-e2e/api", tag) is None
    assert git("--git-dir", str(remote), "rev-parse", "main") == before
    assert subprocess.run(["git", "--git-dir", str(remote), "branch", "--list"], capture_output=True,
                          text=True).stdout.split() == ["*", "main"]


def test_plan_does_not_need_a_daemon() -> None:
    result = run_cli("plan", "--json", env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"}, cwd=PROJECT)
    assert result.code == 0 and json.loads(result.stdout)["services"]


def test_run_without_a_gitops_section_refuses_before_building(project_dir: Path) -> None:
    (project_dir / "services.yaml").write_text("services:\n  api: {context: api, image: buildctl-e2e/nogitops}\n")
    result = run_cli("run", "--tag", "never", "-q", cwd=project_dir)
    assert result.code == 2
    assert one_error_line(result.stderr) == (
        "`buildctl run` needs a gitops: section in services.yaml (or use `buildctl build`)")
    assert not (project_dir / ".buildctl").exists()
