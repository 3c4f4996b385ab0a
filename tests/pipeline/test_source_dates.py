"""SOURCE_DATE_EPOCH per service (pipeline/source_dates.py), on a real git repository: the last
commit of the service's own inputs, so a commit to one folder leaves the other services' epochs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from buildctl.config.loader import load_config
from buildctl.pipeline.source_dates import commit_times, entry_lines
from tests.helpers.gitops import git

SERVICES = """\
registry: 127.0.0.1:5000
services:
  # the first
  one:
    context: one
    image: x/one

  two:
    context: two
    image: x/two
    build_args: {A: "1"}
"""


def _commit(root: Path, message: str, when: int) -> None:
    git("add", "-A", cwd=root)
    env = {**os.environ, "GIT_COMMITTER_DATE": f"{when} +0000", "GIT_AUTHOR_DATE": f"{when} +0000"}
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message], cwd=root,
                   env=env, check=True)


def test_entry_lines_cover_the_block_and_stop_before_the_next() -> None:
    assert entry_lines(SERVICES, 4) == (4, 6)
    assert entry_lines(SERVICES, 8) == (8, 11)
    assert entry_lines(SERVICES, 99) is None


def test_each_service_gets_the_time_of_its_own_last_commit(tmp_path: Path) -> None:
    git("init", "-q", "-b", "main", str(tmp_path))
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "services.yaml").write_text(SERVICES)
    _commit(tmp_path, "initial", 1_700_000_000)
    (tmp_path / "two" / "Dockerfile").write_text("FROM scratch\nLABEL a=b\n")
    _commit(tmp_path, "two: edit", 1_700_000_100)
    assert commit_times(load_config(tmp_path / "services.yaml")) == {"one": "1700000000", "two": "1700000100"}

    # An edit to one's services.yaml entry moves one's epoch, not two's.
    (tmp_path / "services.yaml").write_text(SERVICES.replace("image: x/one", "image: x/one\n    target: t"))
    _commit(tmp_path, "one: target", 1_700_000_200)
    assert commit_times(load_config(tmp_path / "services.yaml")) == {"one": "1700000200", "two": "1700000100"}

    # An unrelated commit moves nobody.
    (tmp_path / "README").write_text("x\n")
    _commit(tmp_path, "docs", 1_700_000_300)
    assert commit_times(load_config(tmp_path / "services.yaml")) == {"one": "1700000200", "two": "1700000100"}


def test_a_commit_to_a_file_the_build_does_not_see_moves_nothing(tmp_path: Path) -> None:
    git("init", "-q", "-b", "main", str(tmp_path))
    for name in ("one", "two"):
        (tmp_path / name / "docs").mkdir(parents=True)
        (tmp_path / name / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "one" / "app.py").write_text("x\n")
    (tmp_path / "one" / ".dockerignore").write_text("notes.txt\ndocs\n!docs/keep.md\n")
    (tmp_path / "services.yaml").write_text(SERVICES)
    _commit(tmp_path, "initial", 1_700_000_000)

    # Files .dockerignore leaves out (a file, a whole folder): one's epoch stays.
    (tmp_path / "one" / "notes.txt").write_text("x\n")
    (tmp_path / "one" / "docs" / "a.md").write_text("x\n")
    _commit(tmp_path, "one: notes", 1_700_000_100)
    assert commit_times(load_config(tmp_path / "services.yaml"))["one"] == "1700000000"

    # A removal or rename out of the seen set counts (the old path was seen), as does an
    # exception (!docs/keep.md) and an edit of the ignore file itself.
    for step, (change, when) in enumerate([
        (lambda: (tmp_path / "one" / "docs" / "keep.md").write_text("x\n"), 1_700_000_200),
        (lambda: (tmp_path / "one" / ".dockerignore").write_text("notes.txt\n"), 1_700_000_300),
        (lambda: (tmp_path / "one" / "app.py").rename(tmp_path / "one" / "notes.txt"), 1_700_000_400),
    ]):
        change()
        _commit(tmp_path, f"one: step {step}", when)
        assert commit_times(load_config(tmp_path / "services.yaml"))["one"] == str(when), step


def test_the_ignore_rules_are_dockerignore_rules(tmp_path: Path) -> None:
    from buildctl.inputs.context import seen_by_build

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / ".dockerignore").write_text("# comment\n**/__pycache__\n*.md\n!README.md\nbuild/\nDockerfile\n")
    seen = seen_by_build(tmp_path, tmp_path / "Dockerfile")
    assert [p for p in ("app.py", "README.md", "Dockerfile", ".dockerignore", "a/b/c.py") if not seen(p)] == []
    assert [p for p in ("x.md", "a/__pycache__/m.pyc", "build/out.o", "__pycache__/m.pyc") if seen(p)] == []


def _git_commands(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """Every git command source_dates runs, as it runs (the real git, only counted)."""
    from buildctl.gitops import git as gitops_git

    seen: list[tuple[str, ...]] = []
    real = gitops_git.Git.run

    def counted(self: gitops_git.Git, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        seen.append(args)
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(gitops_git.Git, "run", counted)
    return seen


def test_outside_git_each_service_costs_one_git_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No repository from the context upwards: the Dockerfile's log and services.yaml's -L would
    fail the same way, so they are not run (two processes a service, ~3 ms each, issue #20)."""
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "services.yaml").write_text(SERVICES)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # whatever holds the temp folder
    seen = _git_commands(monkeypatch)
    assert commit_times(load_config(tmp_path / "services.yaml")) == {}
    assert [args[0] for args in seen] == ["log", "log"]


def test_a_repository_without_commits_still_asks_every_question(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only 'not a git repository' skips the other two: a repository with no commit yet (or any
    other failure) keeps the three, as before."""
    git("init", "-q", "-b", "main", str(tmp_path))
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "services.yaml").write_text(SERVICES)
    seen = _git_commands(monkeypatch)
    assert commit_times(load_config(tmp_path / "services.yaml")) == {}
    assert len(seen) == 6
