"""What the GitOps step reports: the edits it made or would make, the commit, drift from a release.

Plain frozen data beside the code that produces it (edits.py, publish.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True)
class FileChange:
    path: str  # relative to the GitOps repository
    before: str
    after: str
    edits: tuple[str, ...]  # human descriptions, e.g. "Deployment/vote container vote: old -> new"
    kept: tuple[str, ...] = ()  # references newer than the release, left alone (gitops.tag_order)
    diff: str | None = None  # the unified diff, where the plan made it already (on its workers); else file_diff.file_diff

    @property
    def modified(self) -> bool:
        return self.before != self.after


@dataclass(frozen=True)
class GitOpsChange:
    files: tuple[FileChange, ...]

    @property
    def changed(self) -> bool:
        return any(f.modified for f in self.files)

    @property
    def modified_files(self) -> tuple[FileChange, ...]:
        return tuple(f for f in self.files if f.modified)


@dataclass(frozen=True)
class GitOpsResult:
    repo: str  # with any userinfo removed
    branch: str
    commit: str | None  # None when nothing needed to change
    pushed: bool
    attempts: int
    diff: str = ""
    message: str = ""
    kept: tuple[str, ...] = ()  # "path: where: keeps REF (newer than TAG)": downgrades not written
    rendered: tuple[str, ...] = ()  # what the check before pushing read: "path: 2 documents", "dir: kustomize build"


@dataclass(frozen=True)
class DriftReport:
    """``--check``: the manifests that do not reference the release (empty = all in sync)."""

    repo: str  # with any userinfo removed
    branch: str
    drift: tuple[Drift, ...]

    @property
    def ok(self) -> bool:
        return not self.drift


class Drift(NamedTuple):
    service: str
    path: str
    found: str  # the reference the manifest holds now
