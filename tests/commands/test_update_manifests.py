"""buildctl.commands.update_manifests: release records, CLI overrides, --check, against real git."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from buildctl.commands.update_manifests import load_releases, update_manifests
from buildctl.config.loader import load_config
from buildctl.errors import ConfigError, UsageError
from buildctl.gitops.results import Drift, DriftReport
from buildctl.model import ReleasedImage
from tests.helpers.gitops import REG, deployment, git, log, make_remote, show

DIGEST = "sha256:" + "ab" * 32
SERVICE = {"name": "vote", "repository": f"{REG}/vote", "tag": "42", "index_digest": DIGEST,
           "platforms": {"linux/amd64": DIGEST}, "verified": True}  # fmt: skip


def record(tmp_path: Path, *services: dict, raw: str | None = None) -> Path:
    path = tmp_path / "release.json"
    body = {"tag": "42", "registry": "127.0.0.1:5000", "services": list(services)}
    path.write_text(raw if raw is not None else json.dumps(body, indent=2))
    return path


def test_load_releases(tmp_path):
    worker = {**SERVICE, "name": "worker", "repository": f"{REG}/worker", "tagged": True}
    assert load_releases(record(tmp_path, SERVICE, worker)) == (
        ReleasedImage("vote", f"{REG}/vote", "42", DIGEST),
        ReleasedImage("worker", f"{REG}/worker", "42", DIGEST),
    )


@pytest.mark.parametrize(
    ("services", "raw", "message"),
    [
        ((), '{"services": [\n  {"name": "vote",}\n]}', "release.json:2: not valid JSON: Expecting property name enclosed in double quotes"),
        ((), "[]", "release.json: not a release record: expected an object with a non-empty `services` list"),
        (({**SERVICE, "verified": False},), None,
         "release.json: services[0]: service vote is not verified (verified: false); refusing to deploy an image that did not pass verification"),
        (({k: v for k, v in SERVICE.items() if k != "verified"},), None,
         "release.json: services[0]: service vote is not verified (verified: null); refusing to deploy an image that did not pass verification"),
        (({**SERVICE, "tagged": False},), None, "release.json: services[0]: service vote was not tagged (the release gate failed)"),
        (({**SERVICE, "index_digest": "sha256:abc"},), None, "release.json: services[0].index_digest: `index_digest` must be sha256:<64 hex>"),
        (({**SERVICE, "repository": f"{REG}/vote:42"},), None, "release.json: services[0].repository: `repository` must not carry a tag or digest"),
        (({**SERVICE, "tag": ""},), None, "release.json: services[0]: missing or empty `tag`"),
    ],
    ids=["json", "not-an-object", "unverified", "no-verified", "untagged", "digest", "repo-with-tag", "empty-tag"],
)  # fmt: skip
def test_bad_release_records(tmp_path, monkeypatch, services, raw, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_releases(record(tmp_path, *services, raw=raw).relative_to(tmp_path))
    assert str(err.value) == message


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
    stale = update_manifests(cfg, releases=releases, check=True)
    assert stale == DriftReport(str(project / "remote.git"), "main", (Drift("vote", "apps/vote.yaml", f"{REG}/vote:41"),))
    assert not stale.ok
    result = update_manifests(cfg, releases=releases, pin_digest=True)
    assert result.pushed and f"image: {REG}/vote:42@{DIGEST}\n".encode() in show(project / "remote.git", "main", "apps/vote.yaml")
    assert update_manifests(cfg, releases=releases, check=True).ok


def test_overrides_and_refusals(project, tmp_path):
    cfg = load_config(project / "services.yaml", environ={})
    releases = (ReleasedImage("vote", f"{REG}/vote", "42", DIGEST),)
    other = make_remote(tmp_path / "other", {"apps/vote.yaml": deployment("vote")}, branch="prod")
    result = update_manifests(cfg, releases=releases, gitops_repo=str(other), branch="prod")
    assert (result.repo, result.branch) == (str(other), "prod") and len(log(other, "prod")) == 2
    assert len(log(project / "remote.git")) == 1  # the configured repository was not touched
    with pytest.raises(ConfigError, match="the release names service 'api', which is not in services.yaml"):
        update_manifests(cfg, releases=(ReleasedImage("api", f"{REG}/api", "1", DIGEST),))
    with pytest.raises(UsageError, match="no GitOps repository"):
        update_manifests(replace(cfg, gitops=None), releases=releases)
    assert git("rev-parse", "prod", cwd=other).strip() == result.commit
