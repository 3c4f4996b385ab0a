"""compute_change over many files: planned on forked workers (buildctl.fork_map), with exactly the
result, the check outlines and the first error that planning in this process gives."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from buildctl.errors import ConfigError
from buildctl.fork_map import MIN_ITEMS, cores
from buildctl.gitops import render_check
from buildctl.gitops.edits import compute_change, unified_diff
from buildctl.model import GitOpsFile, ReleasedImage
from tests.helpers.gitops import REG, deployment

VOTE = ReleasedImage("vote", f"{REG}/vote", "42", "sha256:" + "ab" * 32)
PROXY = ReleasedImage("proxy", f"{REG}/proxy", "7", "sha256:" + "cd" * 32)
COUNT = MIN_ITEMS + 50


def _files(root: Path) -> dict[str, tuple[GitOpsFile, ...]]:
    paths = [f"env-{i:03d}/vote.yaml" for i in range(COUNT)]
    for i, path in enumerate(paths):
        (root / path).parent.mkdir(parents=True)
        (root / path).write_text(deployment("vote", tag=str(i % 40)))  # texts differ: no two alike
    return {"vote": tuple(GitOpsFile(p) for p in paths), "proxy": (GitOpsFile(paths[0]),)}


def _in_process(call):
    """``call()`` with another thread alive: fork_map then plans in this process."""
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        return call()
    finally:
        release.set()
        other.join()


@pytest.mark.skipif(cores() < 2, reason="needs two cores to fork")
def test_forked_planning_gives_what_planning_in_process_gives(tmp_path: Path) -> None:
    targets = _files(tmp_path)
    forked = compute_change(tmp_path, [VOTE], targets, pin_digest=True)
    render_check._OUTLINES.clear()
    alone = _in_process(lambda: compute_change(tmp_path, [VOTE], targets, pin_digest=True))
    assert forked == alone and len(forked[0].modified_files) == COUNT
    assert unified_diff(forked[0]).count("+++ b/env-") == COUNT
    # The outlines the workers remembered reached this process: the check composes nothing again.
    render_check._OUTLINES.clear()
    change, _ = compute_change(tmp_path, [VOTE], targets, pin_digest=True)
    assert all(f.before in render_check._OUTLINES and f.after in render_check._OUTLINES for f in change.files)


def test_the_first_error_in_services_yaml_order_is_raised_as_in_process(tmp_path: Path) -> None:
    """vote's edit of env-010 fails (not YAML) before proxy's edit of env-000 (no proxy image there),
    although env-000 is planned first: the error is the one a one-by-one plan meets first."""
    targets = _files(tmp_path)
    (tmp_path / "env-010/vote.yaml").write_text("image: [unclosed\n")
    errors = []
    for plan in (lambda c: c(), _in_process):
        with pytest.raises(ConfigError) as err:
            plan(lambda: compute_change(tmp_path, [VOTE, PROXY], targets, pin_digest=False))
        errors.append(str(err.value))
    assert errors[0] == errors[1] and errors[0].startswith("env-010/vote.yaml:2: not valid YAML")
