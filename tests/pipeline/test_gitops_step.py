"""buildctl.pipeline.gitops_step: the GitOps step as a library, with overrides applied to the
Config once (Config.with_gitops), against real git repositories."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from buildctl.config.loader import load_config
from buildctl.errors import ConfigError, UsageError
from buildctl.gitops.results import Drift, DriftReport
from buildctl.model import ReleasedImage
from buildctl.pipeline import gitops_step
from tests.helpers.gitops import REG, deployment, git, log, make_remote, show

DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def project(tmp_path: Path) -> Path:
    make_remote(tmp_path, {"apps/vote.yaml": deployment("vote")})
    (tmp_path / "vote").mkdir()
    (tmp_path / "vote" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "services.yaml").write_text(
        "gitops: {repo: remote.git}\n"
        "services:\n"
        "  vote:\n    context: vote\n    image: voting-app/vote\n"
        "    manifests: [{path: apps/vote.yaml, containers: [vote]}]\n"
    )
    return tmp_path


def test_update_then_check(project):
    cfg = load_config(project / "services.yaml", environ={})
    releases = (ReleasedImage("vote", f"{REG}/vote", "42", DIGEST),)
    stale = gitops_step.drift(cfg, releases)
    assert stale == DriftReport(str(project / "remote.git"), "main", (Drift("vote", "apps/vote.yaml", f"{REG}/vote:41"),))
    assert not stale.ok
    result = gitops_step.update(cfg.with_gitops(pin_digest=True), releases)
    assert result.pushed and f"image: {REG}/vote:42@{DIGEST}\n".encode() in show(project / "remote.git", "main", "apps/vote.yaml")
    assert gitops_step.drift(cfg, releases).ok


def test_overrides_and_refusals(project, tmp_path):
    cfg = load_config(project / "services.yaml", environ={})
    releases = (ReleasedImage("vote", f"{REG}/vote", "42", DIGEST),)
    other = make_remote(tmp_path / "other", {"apps/vote.yaml": deployment("vote")}, branch="prod")
    result = gitops_step.update(cfg.with_gitops(repo=str(other), branch="prod"), releases)
    assert (result.repo, result.branch) == (str(other), "prod") and len(log(other, "prod")) == 2
    assert len(log(project / "remote.git")) == 1  # the configured repository was not touched
    with pytest.raises(ConfigError, match="the release names service 'api', which is not in services.yaml"):
        gitops_step.update(cfg, (ReleasedImage("api", f"{REG}/api", "1", DIGEST),))
    with pytest.raises(UsageError, match="no GitOps repository"):
        gitops_step.update(replace(cfg, gitops=None), releases)
    assert git("rev-parse", "prod", cwd=other).strip() == result.commit
