"""tagging.aftermath / tagging.failure: what a failed tag step leaves and says (pure logic; the
real walk against a registry is tests/e2e/test_tag_failure.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from buildctl.pipeline import tagging
from buildctl.pipeline.results import BuildResult, ServiceOutcome, TagAftermath, TagStatus
from buildctl.registry.results import TagDeletion


def outcome(name: str, status: TagStatus, *, tagged: bool = True, error: str | None = None,
            previous: str | None = None) -> ServiceOutcome:
    build = BuildResult(name, f"reg/{name}", "staging-1", True, index_digest="sha256:" + "a" * 64)
    return ServiceOutcome(name, f"reg/{name}", build, None, f"reg/{name}:1", tagged=tagged, tag_status=status,
                          previous_digest=previous, tag_error=error)


@pytest.mark.parametrize(("status", "error", "deletion", "left"), [
    (TagStatus.TAGGED, None, TagDeletion.DELETED, TagAftermath.REMOVED),
    (TagStatus.TAGGED, None, TagDeletion.ALREADY_GONE, TagAftermath.REMOVED),
    (TagStatus.TAGGED, None, TagDeletion.KEPT, TagAftermath.KEPT),
    (TagStatus.RETAGGED, None, None, TagAftermath.RESTORED),
    (TagStatus.IDENTICAL, None, None, TagAftermath.UNTOUCHED),
    (TagStatus.TAGGED, "cannot tag reg/x:1", None, TagAftermath.UNTOUCHED),
])
def test_aftermath(status, error, deletion, left) -> None:
    assert tagging.aftermath(outcome("x", status, error=error, tagged=error is None), deletion) is left


def test_a_retag_that_could_not_be_restored_says_the_tag_still_moved() -> None:
    moved = outcome("m", TagStatus.RETAGGED, previous="sha256:" + "c" * 64)
    assert tagging.aftermath(moved, None, restored=False) is TagAftermath.MOVED
    failed = outcome("f", TagStatus.TAGGED, tagged=False, error="cannot tag reg/f:1: denied")
    failure = tagging.failure((replace(moved, tagged=False, tag_left=TagAftermath.MOVED), failed))
    assert failure is not None and "release tags that exist now: reg/m:1;" in failure.hint


def test_no_failure_without_a_tag_error() -> None:
    assert tagging.failure((outcome("a", TagStatus.TAGGED),)) is None


def test_failure_lists_exactly_the_tags_that_exist() -> None:
    removed = replace(outcome("a", TagStatus.TAGGED, tagged=False), tag_left=TagAftermath.REMOVED)
    kept = replace(outcome("b", TagStatus.TAGGED, tagged=False), tag_left=TagAftermath.KEPT)
    identical = replace(outcome("c", TagStatus.IDENTICAL, tagged=False, previous="sha256:" + "b" * 64),
                        tag_left=TagAftermath.UNTOUCHED)
    new_failed = outcome("d", TagStatus.TAGGED, tagged=False, error="cannot tag reg/d:1: denied")
    moved_failed = outcome("e", TagStatus.RETAGGED, tagged=False, error="cannot tag reg/e:1: denied",
                           previous="sha256:" + "c" * 64)
    failure = tagging.failure((removed, kept, identical, new_failed, moved_failed))
    assert failure is not None and failure.message == "cannot tag reg/d:1: denied"
    assert failure.hint.startswith("nothing was released and nothing committed to Git; release tags that exist "
                                   "now: reg/b:1, reg/c:1, reg/e:1 (reg/b:1: this run's verified index")
    assert "tagging also failed for e" in failure.hint and failure.hint.endswith("fix the cause and run again")
    assert "reg/a:1," not in failure.hint and "reg/d:1," not in failure.hint
