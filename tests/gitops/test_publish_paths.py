"""What the GitOps commit holds, against real git: the edited files only, each checked against what
git has stored for it (one ls-tree), whatever spelling services.yaml gives its path."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildctl.errors import OperationError
from buildctl.gitops.publish import publish
from buildctl.model import GitOpsConfig, GitOpsFile, ReleasedImage
from tests.helpers.gitops import REG, deployment, git, make_remote, show

VOTE = ReleasedImage("vote", f"{REG}/vote", "42", "sha256:" + "ab" * 32)


def _config(repo: Path) -> GitOpsConfig:
    return GitOpsConfig(repo=str(repo))


def test_a_path_spelled_with_dot_segments_is_checked_and_committed(tmp_path: Path) -> None:
    bare = make_remote(tmp_path, {"apps/vote.yaml": deployment("vote"), "apps/other.yaml": deployment("other")})
    targets = {"vote": (GitOpsFile("./apps/../apps/vote.yaml", ("vote",)),)}
    result = publish(_config(bare), releases=[VOTE], targets=targets, dry_run=False, token=None)
    assert result.pushed
    changed = git("diff-tree", "--no-commit-id", "--name-only", "-r", "main", cwd=bare).split()
    assert changed == ["apps/vote.yaml"]
    assert f"image: {REG}/vote:42\n".encode() in show(bare, "main", "apps/vote.yaml")


def test_a_manifest_git_does_not_track_stops_before_anything_is_committed(tmp_path: Path) -> None:
    bare = make_remote(tmp_path, {"apps/vote.yaml": deployment("vote")})
    checkout = tmp_path / "checkout"
    git("clone", "--quiet", str(bare), str(checkout))
    (checkout / "apps" / "new.yaml").write_text(deployment("vote"))  # untracked: the checkout is still clean
    head = git("rev-parse", "HEAD", cwd=checkout).strip()
    targets = {"vote": (GitOpsFile("apps/vote.yaml", ("vote",)), GitOpsFile("apps/new.yaml", ("vote",)))}
    with pytest.raises(OperationError) as err:
        publish(_config(checkout), releases=[VOTE], targets=targets, dry_run=False, in_place=True, token=None)
    assert err.value.message == ("apps/new.yaml is not committed in the GitOps repository; nothing was "
                                 "committed or pushed")
    assert git("rev-parse", "HEAD", cwd=checkout).strip() == head
    assert git("status", "--porcelain", "--untracked-files=no", cwd=checkout) == ""  # nothing left staged


def test_an_in_place_commit_holds_only_the_edited_files(tmp_path: Path) -> None:
    bare = make_remote(tmp_path, {"apps/vote.yaml": deployment("vote"), "apps/notes.txt": "a\n"})
    checkout = tmp_path / "checkout"
    git("clone", "--quiet", str(bare), str(checkout))
    (checkout / "stray.txt").write_text("not for the commit\n")  # untracked, never added
    targets = {"vote": (GitOpsFile("apps/vote.yaml", ("vote",)),)}
    result = publish(_config(checkout), releases=[VOTE], targets=targets, dry_run=False, in_place=True, token=None)
    assert result.pushed
    assert git("diff-tree", "--no-commit-id", "--name-only", "-r", "main", cwd=bare).split() == ["apps/vote.yaml"]
    assert (checkout / "stray.txt").exists() and "stray.txt" in git("status", "--porcelain", cwd=checkout)


@pytest.mark.parametrize("mark", ["--assume-unchanged", "--skip-worktree"])
def test_an_in_place_manifest_git_would_not_stage_stops_before_anything_changes(tmp_path: Path, mark: str) -> None:
    """A file marked assume-unchanged or skip-worktree is not staged by update-index (nor shown by
    `git status`): committing around it would land nothing, or half the release."""
    bare = make_remote(tmp_path, {"apps/vote.yaml": deployment("vote"), "apps/result.yaml": deployment("vote")})
    checkout = tmp_path / "checkout"
    git("clone", "--quiet", str(bare), str(checkout))
    git("update-index", mark, "apps/result.yaml", cwd=checkout)
    before = {p: (checkout / p).read_text() for p in ("apps/vote.yaml", "apps/result.yaml")}
    head = git("rev-parse", "main", cwd=bare).strip()
    targets = {"vote": (GitOpsFile("apps/vote.yaml", ("vote",)), GitOpsFile("apps/result.yaml", ("vote",)))}
    with pytest.raises(OperationError) as err:
        publish(_config(checkout), releases=[VOTE], targets=targets, dry_run=False, in_place=True, token=None)
    kind = mark.removeprefix("--")
    assert err.value.message == (f"apps/result.yaml is marked {kind} in the checkout, so git would not commit "
                                 "the edit; nothing was committed or pushed")
    assert f"--no-{kind}" in (err.value.hint or "")
    assert {p: (checkout / p).read_text() for p in before} == before
    assert git("rev-parse", "main", cwd=bare).strip() == head


def test_an_in_place_commit_that_fails_leaves_the_checkout_as_it_was(tmp_path: Path) -> None:
    bare = make_remote(tmp_path, {"apps/vote.yaml": deployment("vote")})
    checkout = tmp_path / "checkout"
    git("clone", "--quiet", str(bare), str(checkout))
    before = (checkout / "apps/vote.yaml").read_text()
    (checkout / ".git" / "index.lock").write_text("")  # another git process holds the index
    targets = {"vote": (GitOpsFile("apps/vote.yaml", ("vote",)),)}
    with pytest.raises(OperationError, match="staging the edited files"):
        publish(_config(checkout), releases=[VOTE], targets=targets, dry_run=False, in_place=True, token=None)
    assert (checkout / "apps/vote.yaml").read_text() == before
