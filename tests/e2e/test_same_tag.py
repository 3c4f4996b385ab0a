"""Two runs with the same release tag at once (issue #23): a re-queued CI job beside the original.

Whatever the interleaving, a run that exits 0 released exactly what the tag resolves to afterwards,
the GitOps manifests pin that, there is at most one release commit, and the loser says what
happened. The decisive window (tagging.decide reads, the tag write follows) is milliseconds wide,
so the first test holds it open on purpose: it takes the release claim itself, as "the other run",
and releases that run's images under the tag while buildctl waits; the second races two real runs.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from buildctl.registry import claims
from buildctl.registry.client import RegistryClient
from tests.helpers.claims import held_claim_tags
from tests.helpers.cli import REGISTRY, run_cli
from tests.helpers.gitops import git
from tests.helpers.reliability import (
    gitops_remote,
    record,
    resolve,
    scratch_service,
    start_cli,
    tip,
    unique_tag,
    wait_for,
    write_services,
)

pytestmark = pytest.mark.engine


def _project(root: Path, image: str, *, nonce: str, remote: Path) -> Path:
    """One service; the GitOps files pin the digest (so they say which images were released)."""
    scratch_service(root, "alpha", nonce=nonce)
    write_services(root, {"alpha": image}, gitops_repo=str(remote))
    with (root / "services.yaml").open("a") as services:
        services.write("  pin_digest: true\n")
    return root


def _pinned(remote: Path) -> str:
    return git("show", "main:apps/alpha.yaml", cwd=remote)


def test_a_run_waits_while_another_releases_the_tag_and_then_never_moves_it(tmp_path: Path) -> None:
    image, tag = f"buildctl-sametag/{unique_tag('w')}", unique_tag("rel")
    repository = f"{REGISTRY}/{image}"
    remote = gitops_remote(tmp_path / "git", {"alpha": repository})
    before = tip(remote)
    # The other run's images: another nonce, pushed under a tag of its own.
    other = _project(tmp_path / "other", image, nonce=unique_tag("other"), remote=remote)
    built = run_cli("build", "--rebuild", "--tag", "other-build", cwd=other)
    assert built.code == 0, built.output
    other_index = resolve(REGISTRY, image, "other-build")
    project = _project(tmp_path / "project", image, nonce=unique_tag("mine"), remote=remote)
    with RegistryClient() as client, claims.ReleaseClaim(client, repositories=[repository], tag=tag,
                                                          run_id="0ther000") as held:
        assert held.acquire() is None
        running = start_cli("run", "--rebuild", "--tag", tag, "--record", "rec.json", cwd=project, logs=tmp_path / "logs")
        wait_for(lambda: "waiting: another run is releasing this tag" in running.stdout + running.stderr,
                 timeout=240, what="buildctl to wait for the other run's claim")
        assert resolve(REGISTRY, image, tag) is None  # it waits before writing anything
        # The other run releases its images under the tag, then ends.
        subprocess.run(["docker", "buildx", "imagetools", "create", "--tag", f"{repository}:{tag}",
                        f"{repository}@{other_index}"], check=True, capture_output=True, timeout=120)
        held.release()
        code = running.wait(timeout=240)
    assert code == 1, running.stdout + running.stderr
    assert f"{repository}:{tag} (now {other_index[:19]}…) already exists with other images" in running.stderr
    assert resolve(REGISTRY, image, tag) == other_index  # never moved
    assert tip(remote) == before  # no commit: nothing of this run was released
    assert record(project / "rec.json")["services"][0]["tagged"] is False


def test_a_claim_that_outlives_the_wait_stops_the_run_before_anything_is_tagged(tmp_path: Path) -> None:
    image, tag = f"buildctl-sametag/{unique_tag('x')}", unique_tag("rel")
    repository = f"{REGISTRY}/{image}"
    remote = gitops_remote(tmp_path / "git", {"alpha": repository})
    before = tip(remote)
    project = _project(tmp_path / "project", image, nonce=unique_tag("n"), remote=remote)
    with RegistryClient() as client, claims.ReleaseClaim(client, repositories=[repository], tag=tag,
                                                          run_id="5t1ck000") as held:
        assert held.acquire() is None
        result = run_cli("run", "--rebuild", "--tag", tag, "--record", "rec.json", cwd=project,
                         env={"BUILDCTL_CLAIM_WAIT_SECONDS": "3"})
    assert result.code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("buildctl: error: ")]
    assert errors == [f"buildctl: error: another run is releasing {tag} at the same time: run 5t1ck000 "
                      f"(claimed {errors[0].split('(claimed ')[1].split(')')[0]}); waited 3s, nothing was tagged"]
    assert "rerun once it has ended" in result.stderr
    assert resolve(REGISTRY, image, tag) is None and tip(remote) == before
    with RegistryClient() as client:  # the run took its own claim back
        assert held_claim_tags(client, repository) == []


def test_two_real_runs_with_the_same_tag_release_one_set_of_images(tmp_path: Path) -> None:
    image, tag = f"buildctl-sametag/{unique_tag('r')}", unique_tag("rel")
    repository = f"{REGISTRY}/{image}"
    remote = gitops_remote(tmp_path / "git", {"alpha": repository})
    before = tip(remote)
    projects = [_project(tmp_path / f"p{i}", image, nonce=unique_tag(f"n{i}"), remote=remote) for i in range(2)]
    runs = [start_cli("run", "--rebuild", "--tag", tag, "--record", "rec.json", cwd=p, logs=tmp_path / f"logs{i}")
            for i, p in enumerate(projects)]
    codes = [r.wait(timeout=300) for r in runs]
    assert sorted(codes) == [0, 1], [r.stdout + r.stderr for r in runs]  # other images: one must lose
    winner = codes.index(0)
    released = record(projects[winner] / "rec.json")["services"][0]["index_digest"]
    assert resolve(REGISTRY, image, tag) == released
    assert f"{repository}:{tag}@{released}" in _pinned(remote)
    assert len(git("rev-list", f"{before}..main", cwd=remote).split()) == 1
    loser = runs[1 - winner]
    assert ("already exists with other images" in loser.stderr
            or f"another run is releasing {tag} at the same time" in loser.stderr), loser.stderr
    assert record(projects[1 - winner] / "rec.json")["gitops"] is None
