"""The throwaway GitOps clone goes to memory where there is room, and to disk when it does not fit
(issue #20: a 1,000-file checkout took 0.88 s on an agent's disk, 0.05 s in /dev/shm)."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import pytest

from buildctl import workdir
from buildctl.gitops.publish import publish
from buildctl.model import GitOpsConfig, GitOpsFile, ReleasedImage
from tests.helpers.gitops import REG, deployment, make_remote, show

VOTE = ReleasedImage("vote", f"{REG}/vote", "42", "sha256:" + "ab" * 32)
TARGETS = {"vote": (GitOpsFile("apps/vote.yaml", ("vote",)),)}


def _no_user_tmpdir(monkeypatch) -> None:
    for name in ("TMPDIR", "TEMP", "TMP"):
        monkeypatch.delenv(name, raising=False)


def test_memory_comes_first_where_it_has_room(tmp_path: Path, monkeypatch) -> None:
    _no_user_tmpdir(monkeypatch)
    monkeypatch.setattr(workdir, "_MEMORY_FS", str(tmp_path))
    assert workdir.scratch_parents() == (str(tmp_path), None)
    monkeypatch.setattr(workdir, "_MEMORY_MIN_FREE", 1 << 62)  # a container's small /dev/shm
    assert workdir.scratch_parents() == (None,)


def test_the_users_tmpdir_and_a_missing_memory_folder_mean_disk(tmp_path: Path, monkeypatch) -> None:
    _no_user_tmpdir(monkeypatch)
    monkeypatch.setattr(workdir, "_MEMORY_FS", str(tmp_path))
    for name in ("TMPDIR", "TEMP", "TMP"):  # each is tempfile's, so each is the user's choice
        monkeypatch.setenv(name, str(tmp_path / "mine"))
        assert workdir.scratch_parents() == (None,)
        monkeypatch.delenv(name)
    assert workdir.scratch_parents() == (str(tmp_path), None)
    monkeypatch.setattr(workdir, "_MEMORY_FS", str(tmp_path / "absent"))
    assert workdir.scratch_parents() == (None,)


@pytest.fixture
def small_memory(tmp_path: Path, monkeypatch):
    """A 256 KiB tmpfs standing in for /dev/shm."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    where = tmp_path / "shm"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(where)], check=True)
    _no_user_tmpdir(monkeypatch)
    monkeypatch.setattr(workdir, "_MEMORY_FS", str(where))
    monkeypatch.setattr(workdir, "_MEMORY_MIN_FREE", 0)
    yield where
    subprocess.run(["umount", str(where)], check=True)


def test_a_clone_too_big_for_memory_is_made_on_disk(tmp_path: Path, small_memory: Path, caplog) -> None:
    big = os.urandom(600 << 10).hex()  # 1.2 MB of text: no room in 256 KiB
    remote = make_remote(tmp_path / "r", {"apps/vote.yaml": deployment("vote"), "blob.txt": big})
    cfg = GitOpsConfig(repo=str(remote))
    with caplog.at_level(logging.INFO, logger="buildctl.gitops.publish"):
        result = publish(cfg, releases=[VOTE], targets=TARGETS, dry_run=False, token=None)
    assert result.pushed and f"image: {REG}/vote:42" in show(remote, "main", "apps/vote.yaml").decode()
    assert f"the clone does not fit in {small_memory}; cloning to disk" in caplog.text
    assert list(small_memory.iterdir()) == []  # the failed attempt left nothing behind


def test_a_checkout_of_many_small_files_too_big_for_memory_is_made_on_disk(tmp_path: Path, small_memory: Path,
                                                                           caplog) -> None:
    # The objects fit; the work tree does not (a page per file), and git says only "unable to write".
    files = {"apps/vote.yaml": deployment("vote"), **{f"apps/s{i}.yaml": deployment(f"s{i}") for i in range(200)}}
    remote = make_remote(tmp_path / "r", files)
    with caplog.at_level(logging.INFO, logger="buildctl.gitops.publish"):
        result = publish(GitOpsConfig(repo=str(remote)), releases=[VOTE], targets=TARGETS, dry_run=False, token=None)
    assert result.pushed and f"the clone does not fit in {small_memory}; cloning to disk" in caplog.text
    assert list(small_memory.iterdir()) == []


def test_a_clone_that_fits_is_made_in_memory(tmp_path: Path, small_memory: Path, caplog, monkeypatch) -> None:
    remote = make_remote(tmp_path / "r", {"apps/vote.yaml": deployment("vote")})
    # Where the clone was made: git's own trace names the folder it cloned into.
    monkeypatch.setenv("GIT_TRACE2", str(tmp_path / "trace"))
    with caplog.at_level(logging.INFO, logger="buildctl.gitops.publish"):
        result = publish(GitOpsConfig(repo=str(remote)), releases=[VOTE], targets=TARGETS, dry_run=False, token=None)
    seen = [line for line in (tmp_path / "trace").read_text().splitlines() if " start git clone " in line]
    assert result.pushed and "cloning to disk" not in caplog.text
    assert len(seen) == 1 and f" {small_memory}/buildctl-gitops-" in seen[0]
    assert list(small_memory.iterdir()) == []  # removed afterwards
