"""Everyday modes through the real CLI (issue #6): local cross-builds, dry runs, nightly, CI output."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from tests.helpers.cli import PROJECT, REGISTRY, run_cli
from tests.helpers.gitops import git
from tests.helpers.project import index_digest, seed_gitops

pytestmark = pytest.mark.engine


def test_local_cross_build_loads_an_arm64_image_that_runs_under_emulation() -> None:
    result = run_cli("build", "--local", "--platform", "linux/arm64", "worker")
    assert result.code == 0, result.output
    tag = "buildctl-local/voting-app/worker:linux-arm64"
    assert f"docker run --rm --platform linux/arm64 {tag}" in result.stdout
    arch = subprocess.run(["docker", "image", "inspect", "--format", "{{.Architecture}}", tag],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert arch == "arm64"
    machine = subprocess.run(["docker", "run", "--rm", "--platform", "linux/arm64", "--entrypoint", "uname", tag, "-m"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert machine == "aarch64"


def test_dry_run_shows_commands_tags_and_diff_and_changes_nothing(tmp_path: Path) -> None:
    remote = seed_gitops(tmp_path, PROJECT / "k8s-specifications")
    before = git("--git-dir", str(remote), "rev-parse", "main")
    tag = f"dry-{uuid.uuid4().hex[:8]}"
    result = run_cli("run", "--dry-run", "--tag", tag, env={"BUILDCTL_GITOPS_REPO": str(remote)})
    assert result.code == 0, result.output
    assert "docker buildx build --builder default --progress plain --platform linux/amd64,linux/arm64" in result.stdout
    assert f"would tag {REGISTRY}/voting-app/vote:{tag} (after verification)" in result.stdout
    assert f"+          image: {REGISTRY}/voting-app/vote:{tag}" in result.stdout
    assert "-          image: 127.0.0.1:5000/voting-app/vote:initial" in result.stdout
    assert git("--git-dir", str(remote), "rev-parse", "main") == before
    assert index_digest("voting-app/vote", tag) is None


def test_nightly_skips_the_commit_when_nothing_really_changed(tmp_path: Path) -> None:
    remote = seed_gitops(tmp_path, PROJECT / "k8s-specifications")
    env = {"BUILDCTL_GITOPS_REPO": str(remote)}
    first = run_cli("run", "--nightly", "--tag", f"n1-{uuid.uuid4().hex[:6]}", "worker", "-q", env=env)
    assert first.code == 0, first.output
    after_first = git("--git-dir", str(remote), "rev-parse", "main")
    second = run_cli("run", "--nightly", "--tag", f"n2-{uuid.uuid4().hex[:6]}", "worker", "--json", env=env)
    assert second.code == 0, second.output
    record = json.loads(second.stdout)
    assert record["gitops"]["commit"] is None
    assert "identical" in record["gitops"]["message"]
    assert git("--git-dir", str(remote), "rev-parse", "main") == after_first


def test_azure_and_github_outputs_from_a_real_release(tmp_path: Path) -> None:
    tag = f"ci-{uuid.uuid4().hex[:8]}"
    azure = run_cli("build", "worker", "--tag", tag, "-q", env={"TF_BUILD": "True"})
    assert azure.code == 0, azure.output
    digest = index_digest("voting-app/worker", tag)
    assert f"##vso[task.setvariable variable=BUILDCTL_DIGEST_WORKER;isOutput=true]{digest}" in azure.stdout
    outputs, summary = tmp_path / "out", tmp_path / "summary.md"
    gh = run_cli("build", "worker", "--tag", tag + "b", "--json", env={
        "GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(outputs), "GITHUB_STEP_SUMMARY": str(summary)})
    assert gh.code == 0, gh.output
    json.loads(gh.stdout)  # CI lines went to stderr: stdout is still one JSON document
    assert f"digest_worker={index_digest('voting-app/worker', tag + 'b')}" in outputs.read_text()
    assert "worker" in summary.read_text() and "linux/arm64" in summary.read_text()
    assert httpx.get(f"http://{REGISTRY}/v2/").status_code == 200
