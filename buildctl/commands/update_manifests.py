"""`buildctl update-manifests`: point the GitOps manifests at a verified release, or check them."""

from __future__ import annotations

from pathlib import Path

from buildctl.gitops.results import DriftReport, GitOpsResult
from buildctl.model import Config
from buildctl.pipeline import gitops_step
from buildctl.pipeline.record import load_releases


def update_manifests(config: Config, *, record: Path, dry_run: bool = False, in_place: bool = False) -> GitOpsResult:
    """The released services of ``record`` that ``config`` selects, written into the GitOps files."""
    return gitops_step.update(config, _selected(config, record), dry_run=dry_run, in_place=in_place)


def check_manifests(config: Config, *, record: Path, in_place: bool = False) -> DriftReport:
    """``--check``: the GitOps files that do not reference the release (empty = in sync)."""
    return gitops_step.drift(config, _selected(config, record), in_place=in_place)


def _selected(config: Config, record: Path):
    wanted = {s.name for s in config.services}
    return tuple(r for r in load_releases(record) if r.service in wanted)
