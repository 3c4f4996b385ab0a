"""`buildctl run` end to end: verified release, then exactly one GitOps commit (issue #4)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.helpers.cli import PROJECT, REGISTRY, run_cli
from tests.helpers.gitops import git
from tests.helpers.project import GOOD, PINNED, make_project, seed_gitops

pytestmark = pytest.mark.engine


def test_run_on_the_sample_app_makes_one_commit_pointing_at_the_verified_release(tmp_path: Path) -> None:
    remote = seed_gitops(tmp_path, PROJECT / "k8s-specifications")
    before = git("--git-dir", str(remote), "rev-parse", "main").strip()
    tag = f"run-{uuid.uuid4().hex[:8]}"
    env = {"BUILDCTL_GITOPS_REPO": str(remote)}
    result = run_cli("run", "--tag", tag, "--record", str(tmp_path / "rec.json"), env=env)
    assert result.code == 0, result.output
    record = json.loads((tmp_path / "rec.json").read_text())
    log = git("--git-dir", str(remote), "log", "--format=%H", f"{before}..main").split()
    assert len(log) == 1 and record["gitops"]["commit"] == log[0] and record["gitops"]["pushed"]
    diff = git("--git-dir", str(remote), "diff", "--unified=0", before, "main")
    removed = [line for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    added = [line for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert len(removed) == len(added) == 3
    for svc in record["services"]:
        expected = f"{REGISTRY}/voting-app/{svc['name']}:{tag}@{svc['index_digest']}"
        manifest = git("--git-dir", str(remote), "show", f"main:k8s-specifications/{svc['name']}-deployment.yaml")
        assert f"image: {expected}" in manifest
        assert svc["verified"] and svc["tagged"]
    vote = git("--git-dir", str(remote), "show", "main:k8s-specifications/vote-deployment.yaml")
    assert "image: 127.0.0.1:5000/voting-app/toolbox:1.4" in vote  # the init container is left alone

    # The same release again changes nothing: no second commit.
    again = run_cli("update-manifests", "--record", str(tmp_path / "rec.json"), env=env)
    assert again.code == 0, again.output
    assert "already up to date" in again.stdout or "no commit" in again.stdout
    assert git("--git-dir", str(remote), "rev-parse", "main").strip() == log[0]


def test_failed_gate_changes_nothing_in_git(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    project = make_project(tmp_path / "p", {"good": GOOD, "pinned": PINNED})
    manifests = tmp_path / "deploy"
    manifests.mkdir()
    for name in ("good", "pinned"):
        (manifests / f"{name}.yaml").write_text(
            f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  containers:\n"
            f"    - name: {name}\n      image: {REGISTRY}/buildctl-e2e/{name}:old\n")
    remote = seed_gitops(tmp_path, manifests)
    text = (project / "services.yaml").read_text()
    text = text.replace("services:\n", f"gitops: {{repo: {remote}}}\nservices:\n", 1)
    for name in ("good", "pinned"):
        text = text.replace(f"image: buildctl-e2e/{name}\n", f"image: buildctl-e2e/{name}\n    manifests: [deploy/{name}.yaml]\n")
    (project / "services.yaml").write_text(text)
    before = git("--git-dir", str(remote), "rev-parse", "main").strip()
    result = run_cli("run", "--tag", f"run-{uuid.uuid4().hex[:8]}", cwd=project)
    assert result.code == 1, result.output
    assert "release gate FAILED" in result.stdout
    assert git("--git-dir", str(remote), "rev-parse", "main").strip() == before
