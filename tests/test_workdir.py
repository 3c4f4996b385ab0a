"""`.buildctl/` keeps itself out of Git: buildctl writes a `.gitignore` of `*` into it (issue #15)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from buildctl import workdir
from tests.helpers.cli import run_cli
from tests.helpers.gitops import git
from tests.helpers.project import GOOD, make_project


def _repo(root: Path) -> Path:
    git("init", "-q", "-b", "main", str(root))
    (root / "services.yaml").write_text("services: {}\n")
    return root


def _status(root: Path) -> list[str]:
    return git("status", "--porcelain", "--untracked-files=all", cwd=root).splitlines()


def test_run_dirs_stay_out_of_git(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    run_dir = workdir.run_dir(root, "20260101-000000-abcd")
    (run_dir / "release.json").write_text("{}")
    assert run_dir == root / ".buildctl" / "runs" / "20260101-000000-abcd" and run_dir.is_dir()
    assert (root / ".buildctl" / ".gitignore").read_text().splitlines()[-1] == "*"
    assert _status(root) == ["?? services.yaml"]
    # `git add .` after a release (the old script did exactly that) adds nothing from .buildctl/.
    git("add", ".", cwd=root)
    assert git("diff", "--cached", "--name-only", cwd=root).split() == ["services.yaml"]


def test_an_existing_gitignore_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / ".buildctl").mkdir()
    (tmp_path / ".buildctl" / ".gitignore").write_text("runs/\n")
    workdir.state_dir(tmp_path)
    workdir.state_dir(tmp_path)
    assert (tmp_path / ".buildctl" / ".gitignore").read_text() == "runs/\n"


def test_a_folder_made_before_gets_one(tmp_path: Path) -> None:
    # scripts/quickstart.sh makes .buildctl/gitops.git before buildctl first runs.
    (tmp_path / ".buildctl" / "gitops.git").mkdir(parents=True)
    assert workdir.state_dir(tmp_path) == tmp_path / ".buildctl"
    assert (tmp_path / ".buildctl" / ".gitignore").is_file()


@pytest.mark.engine
def test_build_local_leaves_git_status_clean(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"gitignore15": GOOD})
    git("init", "-q", "-b", "main", cwd=root)
    git("add", ".", cwd=root)
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "project", cwd=root)
    image = "buildctl-local/buildctl-e2e/gitignore15:linux-amd64"
    try:
        result = run_cli("build", "--local", "--platform", "linux/amd64", cwd=root)
        assert result.code == 0, result.output
        assert list((root / ".buildctl" / "runs").glob("*/gitignore15.local.log"))
        assert _status(root) == []
    finally:
        subprocess.run(["docker", "image", "rm", "-f", image], check=False, capture_output=True, timeout=120)


def test_a_mark_holds_what_was_written_and_nothing_that_is_not_a_small_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert workdir.read_mark("marks", "m") is None and not workdir.has_mark("marks", "m")
    workdir.set_mark("marks", "m", content=b'{"a": 1}')
    assert workdir.read_mark("marks", "m") == b'{"a": 1}' and workdir.has_mark("marks", "m")
    workdir.set_mark("marks", "m")  # rewritten whole: an empty mark
    assert workdir.read_mark("marks", "m") == b""
    assert [p.name for p in (tmp_path / "buildctl" / "marks").iterdir()] == ["m"]  # no temporary file left
    workdir.set_mark("marks", "m", present=False)
    assert workdir.read_mark("marks", "m") is None
    folder = tmp_path / "buildctl" / "marks"
    (folder / "big").write_bytes(b"x" * 100)
    assert workdir.read_mark("marks", "big", max_bytes=99) is None
    os.mkfifo(folder / "fifo")  # never blocks
    assert workdir.read_mark("marks", "fifo") is None
